"""The estimator base: engine options declared once and handed to the engine as given."""

import numpy as np
import pytest

import emkit
from emkit.models.estimator import ENGINE_OPTIONS, EMEstimator

ESTIMATORS = [getattr(emkit, name) for name in emkit.__all__]
ESTIMATORS = [c for c in ESTIMATORS if isinstance(c, type) and issubclass(c, EMEstimator)]

# a non-default value of each option that every estimator accepts at fit time
SETTINGS = {
    "tol": 0.5,
    "max_iter": 3,
    "n_init": 2,
    "random_state": 7,
    "batch_size": 64,
    "progress": False,
    "verbose": 0,
    "check_monotone": "off",
    "accel": "squarem",
    "variant": "em",
    "anneal": None,
    "kappa": 0.75,
    "t0": 5.0,
    "n_jobs": 2,
    "fixed": None,
}


def test_every_estimator_offers_the_core_engine_options():
    assert set(SETTINGS) == set(ENGINE_OPTIONS)  # the settings below cover every option
    for cls in ESTIMATORS:
        offered = set(cls._engine_options)
        assert {"tol", "max_iter", "check_monotone", "random_state"} <= offered, cls.__name__


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_engine_options_reach_the_engine(cls, monkeypatch):
    import emkit.engine

    seen = {}
    real_em = emkit.engine.em

    def spy(model, data, **options):
        seen.update(options)
        return real_em(model, data, **options)

    monkeypatch.setattr(emkit.engine, "em", spy)
    options = {name: SETTINGS[name] for name in cls._engine_options}
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    est = cls(**options)
    if cls is emkit.Mixture:
        from emkit.distributions import Gaussian

        est.set_params(component=Gaussian("diag"), n_components=2)
    if cls is emkit.StudentTMixture:
        est.set_params(algorithm="ecm")  # SQUAREM accelerates ECM
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if est._estimator_type == "regressor":  # fitted to a response
                est.fit(X, X @ [1.0, -1.0] + rng.normal(size=200))
            else:
                est.fit(X)
    for name, value in options.items():
        if name == "verbose":
            continue
        assert name in seen, (cls.__name__, name)
        if name == "batch_size" and cls is emkit.HMM:
            continue  # batches of whole sequences: used by online EM only
        if name == "random_state" and cls is emkit.GaussianImputer:
            continue  # its start is deterministic: the engine gets a fixed seed
        assert seen[name] == value, (cls.__name__, name, seen[name])
