"""Mixtures of linear regressions (DeSarbo & Cron 1988; Quandt & Ramsey 1978).

Generative model::

    z_i ~ Categorical(weights)
    y_i | x_i, z_i = k ~ Normal(intercept_k + coef_k . x_i, noise_variance_k)

:class:`MixtureOfRegressions` is a front of the conditional mixture machinery
(:class:`~emkit.models.mixture.conditional.ConditionalMixtureModel`): constant weights
(the weights part every mixture uses) and linear-Gaussian experts
(:class:`~emkit.distributions.conditional.LinearExperts`). The M-step is weighted least
squares per component, solved stably from statistics about the current fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from emkit._random import seed_sequence
from emkit._validation import check_sample_weight
from emkit.distributions.conditional import LinearExperts
from emkit.models.mixture.conditional import ConditionalMixtureModel, ConstantPart
from emkit.models.mixture.conditional_front import (
    ConditionalMixtureEstimator,
    centred_intercept,
    check_response,
    check_start,
    original_intercept,
    r2_score,
)

__all__ = ["MixtureOfRegressions"]


class MixtureOfRegressions(ConditionalMixtureEstimator):
    """Mixture of linear regressions fitted by EM.

    Parameters
    ----------
    n_components : int, default=2
        Number of regression lines (planes).
    fit_intercept : bool, default=True
        Whether each component has an intercept.
    reg_noise : float, default=1e-6
        Floor of the noise variances, relative to the variance of ``y``: a component
        through as few points as it has coefficients would otherwise reach an infinite
        likelihood. The M-step maximises the likelihood over variances at or above the
        floor, so EM stays monotone.
    tol : float, default=1e-6
        Convergence when the log-likelihood gains less than ``tol`` per sample.
    max_iter : int, default=500
    n_init : int, default=5
        Restarts from independent seeds; the best log-likelihood is kept. The
        likelihood of a mixture of regressions has many local maxima (crossing lines
        are easily confused), so restarts matter.
    init : str or dict, default="kmeans++"
        Starting responsibilities from one of "kmeans++", "kmeans", "random",
        "random_from_data" on the standardised ``(X, y)`` columns, then an M-step; or a
        dict with any of "weights" (K,), "intercept" (K,), "coef" (K, n_features) and
        "noise_variance" (K,) (missing entries from the "kmeans++" start; variances
        below the floor set by ``reg_noise`` start at the floor).
    random_state : None, int or Generator
    batch_size, progress, verbose, check_monotone, accel, variant, anneal, kappa, t0, n_jobs
        Engine options (see :data:`emkit.models.estimator.ENGINE_OPTIONS`).
    fixed : collection of str or dict, optional
        Parameters held fixed while the others are estimated: names of the init dict
        (held at their starting values) or a dict of them -> values. Holding an
        intercept holds it in the original coordinates (the data are then not centred).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    intercept_ : ndarray of shape (n_components,)
    coef_ : ndarray of shape (n_components, n_features)
    noise_variance_ : ndarray of shape (n_components,)
    loglik_ : float
        Total log-likelihood ``sum_i log p(y_i | x_i)`` of the fitted parameters.
    x_offset_, y_offset_ : the centre the data were fitted about
    converged_, n_iter_, history_, n_features_in_

    Examples
    --------
    >>> import numpy as np
    >>> import emkit
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-3, 3, (400, 1))
    >>> up = rng.random(400) < 0.5
    >>> y = np.where(up, 1 + 2 * x[:, 0], -1 - x[:, 0]) + rng.normal(0, 0.3, 400)
    >>> mr = emkit.MixtureOfRegressions(2, random_state=0).fit(x, y)
    >>> order = np.argsort(mr.coef_[:, 0])
    >>> np.round(mr.coef_[order, 0], 1), np.round(mr.intercept_[order], 1)
    (array([-1.,  2.]), array([-1.,  1.]))
    """

    _estimator_type = "regressor"
    _size_name = "n_components"
    _fitted_attributes = (
        "weights_",
        "intercept_",
        "coef_",
        "noise_variance_",
        "x_offset_",
        "y_offset_",
        *ConditionalMixtureEstimator.FIT_RECORD,
    )
    _extra_attributes = ("fit_time_", "objective_name_")
    _float_attributes = ("weights_", "intercept_", "coef_", "noise_variance_", "x_offset_")

    def __init__(
        self,
        n_components: int = 2,
        *,
        fit_intercept: bool = True,
        reg_noise: float = 1e-6,
        tol: float = 1e-6,
        max_iter: int = 500,
        n_init: int = 5,
        init: str | Mapping[str, Any] = "kmeans++",
        random_state: Any = None,
        batch_size: int | None = None,
        progress: bool = False,
        verbose: int = 0,
        check_monotone: str = "warn",
        accel: str | None = None,
        variant: str = "em",
        anneal: Any = None,
        kappa: float = 0.6,
        t0: float = 2.0,
        n_jobs: int | None = None,
        fixed: Any = None,
    ):
        self._set_hyperparameters(locals())

    @property
    def _n_components(self) -> int:
        return self.n_components

    def _check_hyperparameters(self, n_samples: int) -> None:
        self._check_common(n_samples, self.n_components)

    def _model(self, A, y, w, extra) -> ConditionalMixtureModel:
        floor = 0.0 if y is None else self._variance_floor(y, w)
        experts = LinearExperts(self.fit_intercept, floor)
        init = self.init if isinstance(self.init, str) else "kmeans++"
        return ConditionalMixtureModel(ConstantPart(), experts, self.n_components, init)

    @staticmethod
    def _keys() -> tuple[str, ...]:
        return ("weights", "intercept", "coef", "noise_variance")

    def _check_values(self, values, n_features: int, extra, what: str) -> dict[str, np.ndarray]:
        """Parameters given by the user (init or fixed), checked, in the original coordinates."""
        K, out = self.n_components, {}
        if "weights" in values:
            w = check_start(values, "weights", (K,), what=what)
            if np.any(w < 0) or not np.isclose(w.sum(), 1.0):
                raise ValueError(f"{what} weights must be non-negative and sum to 1")
            out["weights"] = w / w.sum()
        if "intercept" in values:
            out["intercept"] = check_start(values, "intercept", (K,), what=what)
        if "coef" in values:
            out["coef"] = check_start(values, "coef", (K, n_features), what=what)
        if "noise_variance" in values:
            out["noise_variance"] = check_start(values, "noise_variance", (K,), True, what)
        return out

    def _to_public(self, params, x_offset, y_offset) -> dict[str, np.ndarray]:
        out = {key: np.array(params[key], dtype=np.float64) for key in self._keys()}
        out["intercept"] = original_intercept(
            params["intercept"], params["coef"], x_offset, y_offset
        )
        return out

    def _to_internal(self, values, x_offset, y_offset) -> dict[str, np.ndarray]:
        out = {key: np.array(values[key], dtype=np.float64) for key in self._keys()}
        out["intercept"] = centred_intercept(
            values["intercept"], values["coef"], x_offset, y_offset
        )
        K = len(out["weights"])
        if any(len(out[key]) != K for key in self._keys()):
            raise ValueError("the parameters do not have one row per component")
        return out

    def _describe(self) -> str:
        return f"K={self.n_components} "

    # ------------------------------------------------------------------ predictions
    def _component_means(self, X) -> np.ndarray:
        A, _ = self._validated(X)
        params = self._internal_params()
        return self._model(None, None, None, None).components.mean(params, A)

    def predict(self, X) -> np.ndarray:
        """The mixture mean ``sum_k weights_k (intercept_k + coef_k . x)``, (n_samples,)."""
        return self._component_means(X) @ self.weights_ + self.y_offset_

    def predict_proba(self, X, y) -> np.ndarray:
        """Posterior probability of each component given ``x`` and ``y``,
        shape (n_samples, n_components)."""
        return self.predict_proba_components(X, y)

    def score(self, X, y, sample_weight=None) -> float:
        """Coefficient of determination R^2 of :meth:`predict` (as scikit-learn's regressors)."""
        pred = self.predict(X)
        w = check_sample_weight(sample_weight, len(pred))
        return r2_score(check_response(y, len(pred)), pred, w)

    def sample(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Draw a response for each row of ``X`` from the fitted mixture (seeded by
        ``random_state``).

        Returns
        -------
        y : ndarray of shape (n_samples,)
        labels : ndarray of shape (n_samples,)
            The component that produced each draw.
        """
        means = self._component_means(X)
        rng = np.random.default_rng(seed_sequence(self.random_state))
        w = self.weights_ / self.weights_.sum()
        labels = rng.choice(len(w), size=len(means), p=w)
        noise = rng.standard_normal(len(means)) * np.sqrt(self.noise_variance_[labels])
        return means[np.arange(len(means)), labels] + self.y_offset_ + noise, labels
