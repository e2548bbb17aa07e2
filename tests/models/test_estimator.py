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
    "executor": "serial",
    "checkpoint": None,
    "checkpoint_every": 2,
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
    if cls is emkit.LDA:
        X = rng.poisson(2.0, size=(200, 5))  # word counts
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


# ------------------------------------------------ a fit that fails half-way through
def _fit_data(cls, rng):
    """(constructor keywords, fit arguments) of a small ordinary fit of ``cls``."""
    X = rng.normal(size=(120, 2)) + np.where(rng.random((120, 1)) < 0.5, 3.0, -3.0)
    if cls is emkit.Mixture:
        from emkit.distributions import Gaussian

        return {"component": Gaussian("diag"), "n_components": 2}, (X,)
    if cls is emkit.HMM:
        return {"n_states": 2}, (X, [60, 60])
    if cls in (emkit.GaussianImputer, emkit.FactorAnalysis):
        X = X.copy()
        X[rng.random(len(X)) < 0.1, 0] = np.nan
        if cls is emkit.FactorAnalysis:
            X = np.column_stack([X, X @ rng.normal(size=(2, 2)) + rng.normal(size=(120, 2))])
            return {"n_components": 1}, (np.nan_to_num(X),)
        return {}, (X,)
    if cls in (emkit.GaussianMixture, emkit.StudentTMixture, emkit.VariationalGaussianMixture):
        return {"n_components": 2}, (X,)
    if cls is emkit.LinearGaussianSSM:
        return {"state_dim": 1}, (X,)
    if cls is emkit.LDA:
        return {"n_topics": 2}, (rng.poisson(2.0, size=(120, 6)),)
    if cls in (emkit.MixtureOfRegressions, emkit.MixtureOfExperts):  # fitted to a response
        return {"n_init": 1}, (X, X @ [1.0, -1.0] + rng.normal(size=len(X)))
    raise AssertionError(f"add a small fit of {cls.__name__} to _fit_data")


class _FailingModel:
    """The engine's model with an M-step that raises on its second call."""

    def __init__(self, model):
        self._model, self._calls = model, 0

    def __getattr__(self, name):
        return getattr(self._model, name)

    def mstep(self, *args, **kwargs):
        self._calls += 1
        if self._calls == 2:
            raise RuntimeError("planted failure in the M-step")
        return self._model.mstep(*args, **kwargs)


def _fitted_state(est):
    return {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_a_fit_failing_mid_way_leaves_the_earlier_fit(cls, monkeypatch):
    import warnings

    import emkit.engine

    rng = np.random.default_rng(3)
    kwargs, args = _fit_data(cls, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = cls(random_state=0, **kwargs).fit(*args)
    before = _fitted_state(est)
    assert before
    predicted = est.score(*args)
    real_em = emkit.engine.em
    calls = []

    def failing_em(model, data, **options):
        calls.append(1)
        return real_em(_FailingModel(model), data, **options)

    monkeypatch.setattr(emkit.engine, "em", failing_em)
    _, other = _fit_data(cls, np.random.default_rng(4))
    with pytest.raises(RuntimeError, match="planted failure"):
        est.set_params(tol=0.0, max_iter=5).fit(*other)
    assert calls  # the failure happened inside the engine, not before it
    after = _fitted_state(est)
    assert after.keys() == before.keys()
    for name, value in before.items():
        np.testing.assert_equal(after[name], value, err_msg=name)
    assert est.score(*args) == predicted
