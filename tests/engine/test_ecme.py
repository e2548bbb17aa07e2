"""The ECME scheme on a toy model: the observed-data step sees the data only through
passes over the batches, its passes are counted, and the engine's certificate applies."""

import numpy as np
import pytest

import emkit
from emkit.engine.ecme import ECME


class HalfStepMean:
    """Normal mean with unit variance. ``mstep`` goes half way to the sample mean (a
    generalized EM step); ``observed_step`` maximises the log-likelihood exactly, from
    sums that come back from a pass over the batches."""

    generalized = True

    def __init__(self, wrong: bool = False):
        self.wrong = wrong

    def init_params(self, data, rng):
        return np.array([10.0])

    def estep(self, params, batch):
        x = batch[:, 0]
        loglik = -0.5 * float(np.sum((x - params[0]) ** 2)) - 0.5 * len(x) * np.log(2 * np.pi)
        return (np.array([x.sum()]), np.array([float(len(x))])), loglik

    def mstep(self, stats, params):
        target = stats[0] / stats[1]
        return params + 0.5 * (target - params)

    def observed_step(self, params, evaluate):
        (total, count), _ = evaluate(self.estep, params)
        best = total / count
        return best + 5.0 if self.wrong else best


def _data():
    return np.random.default_rng(0).normal(3.0, 1.0, size=(101, 1))


@pytest.mark.parametrize(
    "options", [{}, {"batch_size": 7}, {"batch_size": 7, "executor": "threads"}]
)
def test_observed_step_reaches_the_maximum_in_one_cycle(options):
    X = _data()
    result = emkit.em(
        HalfStepMean(), X, scheme=ECME(), tol=1e-12, check_monotone="raise", **options
    )
    assert result.params[0] == pytest.approx(X.mean(), rel=1e-12)
    assert result.converged and result.n_iter == 2  # the second cycle changes nothing
    # the start, then per cycle one observed-data pass and one E-step
    assert result.n_estep == 1 + 2 * result.n_iter
    plain = emkit.em(HalfStepMean(), X, tol=1e-12, max_iter=500)
    assert plain.n_iter > 20
    assert result.loglik == pytest.approx(plain.loglik, rel=1e-12)


def test_a_lowering_observed_step_is_caught():
    with pytest.raises(emkit.MonotonicityError):
        emkit.em(
            HalfStepMean(wrong=True),
            _data(),
            init=np.array([3.0]),
            scheme=ECME(),
            check_monotone="raise",
        )


def test_a_model_without_observed_step_is_refused():
    class NoObserved(HalfStepMean):
        observed_step = None

    with pytest.raises(TypeError, match="observed_step"):
        emkit.em(NoObserved(), _data(), scheme=ECME())
