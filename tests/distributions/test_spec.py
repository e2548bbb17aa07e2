"""Distributions from their specs: every kind (and nested products) round-trips, and
classes are found by name wherever they are defined."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emkit.distributions import (
    Bernoulli,
    Categorical,
    DiagGaussian,
    Distribution,
    Exponential,
    Gamma,
    Gaussian,
    Independent,
    LogNormal,
    Poisson,
    StudentT,
    from_spec,
)
from emkit.distributions.base import distribution_classes

EXAMPLES = [
    Categorical(5),
    Bernoulli(),
    Poisson(),
    Exponential(),
    Gamma(),
    LogNormal(reg_var=1e-3, shift=[0.5, -1.0]),
    DiagGaussian(reg_var=0.0, shift=2.0),
    Gaussian("diag", reg_covar=1e-4),
    StudentT("full", dof=4.0),
    Independent({(0, 2): DiagGaussian(), 1: Independent({0: Poisson()})}),
]


@pytest.mark.parametrize("dist", EXAMPLES, ids=[type(d).__name__ for d in EXAMPLES])
def test_spec_round_trips_through_json(dist):
    spec = json.loads(json.dumps(dist.get_spec()))
    back = from_spec(spec)
    assert type(back) is type(dist)
    assert back.get_spec() == dist.get_spec()
    assert repr(back) == repr(dist)


def test_independent_spec_rebuilds_its_parts():
    dist = from_spec(EXAMPLES[-1].get_spec())
    assert [c.tolist() for c in dist.columns] == [[0, 2], [1]]
    assert isinstance(dist.parts[1], Independent)
    assert isinstance(dist.parts[1].parts[0], Poisson)


def test_a_new_distribution_class_is_found_by_name():
    class HalfPoisson(Poisson):
        """A user's own distribution, defined after emkit was imported."""

        def __init__(self, scale: float = 0.5):
            self.scale = scale

    back = from_spec({"type": "HalfPoisson", "scale": 0.25})
    assert type(back) is HalfPoisson and back.scale == 0.25
    assert "HalfPoisson" in distribution_classes()


def test_shared_bases_are_not_distributions_one_can_build():
    classes = distribution_classes()
    assert not any(name.startswith("_") for name in classes)
    assert {"Gaussian", "StudentT", "Independent", "Categorical"} <= set(classes)
    assert all(issubclass(cls, Distribution) for cls in classes.values())
    with pytest.raises(TypeError):
        classes["Poisson"] = Poisson  # read-only


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"type": "Nope"}, r"unknown distribution type 'Nope'; known: \[.*'Poisson'"),
        ({"n_categories": 3}, "a dict with a 'type'"),
        (["Poisson"], "a dict with a 'type'"),
    ],
)
def test_bad_specs_are_clear_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        from_spec(spec)


def test_spec_of_an_array_argument_is_a_list():
    spec = LogNormal(shift=np.array([1.0, 2.0])).get_spec()
    assert spec["shift"] == [1.0, 2.0]
