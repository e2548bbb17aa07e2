"""The objective a model declares (``objective = "loglik"`` or ``"elbo"``) and how the
engine names it: ``EMResult.objective_name``, ``IterationInfo.objective_name``, the
monotonicity message, the progress bar and the estimators' reports.

The reference values are the genetic-linkage example of Dempster, Laird & Rubin (1977,
section 1): counts (125, 18, 20, 34) in cells with probabilities (1/2 + θ/4, (1-θ)/4,
(1-θ)/4, θ/4). EM is variational EM whose variational distribution is the exact
posterior, and the ELBO at that distribution equals the log-likelihood; so the same
model declared ``"elbo"`` must give the same numbers, only named differently.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

import emkit
from emkit.engine import (
    OBJECTIVES,
    IterationInfo,
    Monitor,
    MonotonicityError,
    MonotonicityWarning,
    objective_name,
)
from emkit.models.estimator import EMEstimator
from emkit.models.estimator import _print_iteration as print_iteration

COUNTS = np.array([125, 18, 20, 34])
START = {"theta": np.array(0.5)}


def linkage_data() -> np.ndarray:
    return np.repeat(np.arange(4), COUNTS)


def cell_probs(theta: float) -> np.ndarray:
    return np.array([0.5 + theta / 4, (1 - theta) / 4, (1 - theta) / 4, theta / 4])


class Linkage:
    """Exact EM for the linkage model; ``objective`` is not declared (the default)."""

    def init_params(self, data, rng):
        return {"theta": np.array(rng.uniform(0.05, 0.95))}

    def estep(self, params, batch):
        theta = float(params["theta"])
        counts = np.bincount(batch, minlength=4).astype(np.float64)
        p = cell_probs(theta)
        return {"split": counts[0] * p[3] / p[0], "counts": counts}, float(counts @ np.log(p))

    def mstep(self, stats_, params):
        c = stats_["counts"]
        yes = stats_["split"] + c[3]
        return {"theta": np.array(yes / (yes + c[1] + c[2]))}


class LinkageELBO(Linkage):
    """The same model as variational EM: q(z) is the exact posterior, so the ELBO after
    each E-step is the log-likelihood."""

    objective = "elbo"


class WrongAtStep3(Linkage):
    """Exact EM except the third M-step, which moves θ away from the MLE."""

    def __init__(self):
        self.steps = 0

    def mstep(self, stats_, params):
        self.steps += 1
        return {"theta": np.array(0.2)} if self.steps == 3 else super().mstep(stats_, params)


class DecreasingELBO:
    """A variational model whose E-step reports a bound that falls by 1 at every step
    (a broken M-step): the engine must say the ELBO decreased."""

    objective = "elbo"

    def init_params(self, data, rng):
        return {"step": np.array(0.0)}

    def estep(self, params, batch):
        return {"n": np.array(float(len(batch)))}, -100.0 - float(params["step"])

    def mstep(self, stats_, params):
        return {"step": params["step"] + 1.0}


class WrongELBOAtStep3(WrongAtStep3):
    objective = "elbo"


class WrongMAPAtStep3(WrongAtStep3):
    """MAP-EM with a Beta(2, 2) prior on θ, wrong at the third M-step."""

    def log_prior(self, params):
        return float(stats.beta.logpdf(float(params["theta"]), 2.0, 2.0))

    def mstep(self, stats_, params):
        self.steps += 1
        if self.steps == 3:
            return {"theta": np.array(0.2)}
        c = stats_["counts"]
        yes = stats_["split"] + c[3] + 1.0
        return {"theta": np.array(yes / (yes + c[1] + c[2] + 1.0))}


# ----------------------------------------------------------------------------- the name


def test_objectives_are_loglik_and_elbo():
    assert set(OBJECTIVES) == {"loglik", "elbo"}


def test_a_model_without_the_attribute_maximises_the_log_likelihood():
    infos: list[IterationInfo] = []
    result = emkit.em(Linkage(), linkage_data(), init=START, max_iter=3, callback=infos.append)
    assert result.objective_name == "loglik"
    assert [i.objective_name for i in infos] == ["loglik"] * 4
    assert objective_name(Linkage()) == "loglik"


def test_an_elbo_model_is_named_everywhere_and_fits_like_em():
    infos: list[IterationInfo] = []
    plain = emkit.em(Linkage(), linkage_data(), init=START, tol=0.0, max_iter=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a rising ELBO raises no warning
        result = emkit.em(
            LinkageELBO(), linkage_data(), init=START, tol=0.0, max_iter=8, callback=infos.append
        )
    assert result.objective_name == "elbo"
    assert [i.objective_name for i in infos] == ["elbo"] * 9
    # exact posterior: the ELBO equals the log-likelihood, step by step
    np.testing.assert_array_equal(result.history, plain.history)
    assert result.params["theta"] == plain.params["theta"]
    # DLR (1977), Table 1: the eighth EM iterate from 0.5
    assert float(result.params["theta"]) == pytest.approx(0.626821484, abs=1e-9)


def test_an_elbo_drop_warns_in_the_words_of_the_elbo():
    with pytest.warns(MonotonicityWarning, match=r"^the ELBO decreased by 1 at iteration 1\b"):
        result = emkit.em(DecreasingELBO(), np.zeros(5), max_iter=1, random_state=0)
    assert result.objective_name == "elbo"
    np.testing.assert_array_equal(result.history, [-101.0])

    with pytest.warns(MonotonicityWarning) as record:
        emkit.em(DecreasingELBO(), np.zeros(5), max_iter=4, random_state=0)
    messages = [str(w.message) for w in record if issubclass(w.category, MonotonicityWarning)]
    assert len(messages) == 4
    assert all("ELBO" in m and "log-likelihood" not in m for m in messages)
    assert all("variational EM never lowers the ELBO" in m for m in messages)


def test_an_elbo_drop_raises_in_the_words_of_the_elbo():
    with pytest.raises(MonotonicityError, match=r"the ELBO decreased by .* at iteration 3\b"):
        emkit.em(WrongELBOAtStep3(), linkage_data(), init=START, check_monotone="raise")


def test_a_log_likelihood_drop_is_worded_as_before():
    with pytest.warns(MonotonicityWarning, match=r"^the log-likelihood decreased by") as record:
        emkit.em(WrongAtStep3(), linkage_data(), init=START, tol=1e-10)
    message = str(next(w.message for w in record if w.category is MonotonicityWarning))
    assert "iteration 3" in message and "exact EM never lowers the log-likelihood" in message
    assert "log-prior" not in message and "ELBO" not in message


def test_a_map_drop_names_the_log_prior():
    with pytest.warns(
        MonotonicityWarning, match=r"^the log-likelihood plus log-prior decreased by .* iteration 3"
    ):
        emkit.em(WrongMAPAtStep3(), linkage_data(), init=START, tol=1e-10)


def test_a_non_finite_elbo_is_named():
    class NaNELBO(LinkageELBO):
        def estep(self, params, batch):
            return super().estep(params, batch)[0], math.nan

    with pytest.raises(FloatingPointError, match=r"the ELBO is nan at iteration 0"):
        emkit.em(NaNELBO(), linkage_data(), init=START)


# ----------------------------------------------------------------------------- bad names


class Declares:
    def __init__(self, objective):
        self.objective = objective
        self.init_calls = 0

    def init_params(self, data, rng):
        self.init_calls += 1
        return START

    estep = Linkage.estep
    mstep = Linkage.mstep


@pytest.mark.parametrize("bad", ["foo", "ELBO", "", None, 1, ("loglik",), ["elbo"]])
def test_an_unknown_objective_is_a_clear_error_before_anything_runs(bad):
    model = Declares(bad)
    with pytest.raises(
        ValueError, match=r"Declares\.objective must be one of \['elbo', 'loglik'\]"
    ):
        emkit.em(model, linkage_data())
    assert model.init_calls == 0


@pytest.mark.parametrize("good", ["loglik", "elbo"])
def test_a_declared_objective_is_accepted(good):
    assert emkit.em(Declares(good), linkage_data(), max_iter=2).objective_name == good


# ----------------------------------------------------------------------------- progress bar


@pytest.mark.parametrize(
    ("name", "with_prior"), [("loglik", False), ("loglik", True), ("elbo", True)]
)
def test_the_progress_bar_shows_the_objective_by_name(name, with_prior):
    pytest.importorskip("tqdm")
    monitor = Monitor(
        max_iter=5, tol=0.0, scale=10, progress=True, objective_name=name, with_prior=with_prior
    )
    try:
        # loglik -3, log-prior -1: the bar shows the log-likelihood itself, or the whole ELBO
        monitor.start(START, -3.0, -4.0)
        shown = "loglik=-3" if name == "loglik" else "elbo=-4"
        assert monitor._bar.postfix == shown
        monitor.record(START, -2.0, -2.5)
        assert monitor._bar.postfix == ("loglik=-2" if name == "loglik" else "elbo=-2.5")
    finally:
        monitor.close()


def test_the_progress_bar_of_an_elbo_fit(capsys):
    pytest.importorskip("tqdm")
    result = emkit.em(LinkageELBO(), linkage_data(), init=START, max_iter=3, progress=True)
    assert result.objective_name == "elbo"
    assert "EM" in capsys.readouterr().err


# ----------------------------------------------------------------------------- estimators


class _Linkage(EMEstimator):
    """The smallest estimator: θ of the linkage model, by exact or variational EM."""

    _fitted_attributes = ("theta_",)

    def __init__(self, *, elbo=False, max_iter=100, tol=1e-12, verbose=0):
        self.elbo = elbo
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose

    def fit(self, X):
        model = LinkageELBO() if self.elbo else Linkage()
        callback = print_iteration if self.verbose >= 2 else None
        result = emkit.em(
            model, X, init=START, max_iter=self.max_iter, tol=self.tol, callback=callback
        )
        self.theta_ = float(result.params["theta"])
        self.loglik_ = result.loglik
        self._finish_fit(result)
        return self


def test_private_estimators_are_not_registered():
    from emkit._registry import estimator_key

    assert estimator_key(_Linkage) is None


@pytest.mark.parametrize(("elbo", "name"), [(False, "loglik"), (True, "elbo")])
def test_an_estimator_records_and_reports_its_objective(capsys, elbo, name):
    est = _Linkage(elbo=elbo, verbose=2).fit(linkage_data())
    assert est.objective_name_ == name
    assert est.theta_ == pytest.approx(0.6268214980, abs=1e-6)  # the MLE, DLR (1977)
    out = capsys.readouterr().out
    assert f"EM {name}=" in out
    assert out.count(f"  {name} ") == est.n_iter_ + 1  # one line per iteration and the start
    other = "elbo" if name == "loglik" else "loglik"
    assert other not in out


def test_an_estimator_that_stops_early_names_its_objective():
    with pytest.warns(emkit.ConvergenceWarning, match=r"on the ELBO per observation"):
        _Linkage(elbo=True, max_iter=1).fit(linkage_data())
    with pytest.warns(emkit.ConvergenceWarning, match=r"on the log-likelihood per observation"):
        _Linkage(max_iter=1).fit(linkage_data())


def test_the_gaussian_mixture_maximises_the_log_likelihood():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-3, 1, (50, 2)), rng.normal(3, 1, (50, 2))])
    gm = emkit.GaussianMixture(2, random_state=0).fit(X)
    assert gm.objective_name_ == "loglik"
