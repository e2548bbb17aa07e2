"""Mixtures of experts (Jacobs, Jordan, Nowlan & Hinton 1991; Jordan & Jacobs 1994).

Generative model::

    z_i | x_i ~ Categorical(softmax(gate_intercept + gate_coef x_i))     the gate
    y_i | x_i, z_i = k ~ expert k                                         an expert

with linear-Gaussian experts ``Normal(intercept_k + coef_k . x, noise_variance_k)``
for regression, or logistic experts (binary or multinomial) for classification.

:class:`MixtureOfExperts` is a front of the conditional mixture machinery
(:class:`~emkit.models.mixture.conditional.ConditionalMixtureModel`): the weights part
is a softmax gate on the inputs (:class:`~emkit.models.mixture.weights.SoftmaxGate`),
the component part the experts (:mod:`emkit.distributions.conditional`). The gate (and
the logistic experts) are fitted in the M-step by a guarded Newton (IRLS) step that
never lowers the expected complete-data log-likelihood (a generalized EM step,
declared to the engine), so the log-likelihood never decreases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from emkit._validation import check_choice, check_real, check_sample_weight
from emkit.distributions.conditional import LinearExperts, LogisticExperts
from emkit.distributions.softmax import design_bound
from emkit.models.mixture.conditional import ConditionalMixtureModel
from emkit.models.mixture.conditional_front import (
    ConditionalMixtureEstimator,
    check_response,
    check_start,
    r2_score,
    to_internal,
    to_public,
)
from emkit.models.mixture.weights import SoftmaxGate

__all__ = ["MixtureOfExperts"]


class MixtureOfExperts(ConditionalMixtureEstimator):
    """Mixture of experts with a softmax gate, fitted by (generalized) EM.

    Parameters
    ----------
    n_experts : int, default=2
    expert : {"linear", "logistic"}, default="linear"
        Linear-Gaussian experts (regression) or logistic experts (classification).
    multi_class : {"auto", "binary", "multinomial"}, default="auto"
        Logistic experts: binary (two classes, an error otherwise), multinomial, or
        chosen from the number of classes in ``y``.
    gate_alpha : float, default=0.0
        Ridge penalty on the gate's non-intercept coefficients (MAP-EM: the objective
        is then the log-likelihood minus ``gate_alpha / 2 ||gate_coef||^2``). A
        sharp switch (separable regions) makes the unpenalised gate coefficients grow
        without bound; a small penalty keeps them finite.
    alpha : float, default=0.0
        The same penalty on the logistic experts' coefficients.
    fit_intercept : bool, default=True
        Intercepts in the gate and the experts.
    reg_noise : float, default=1e-6
        Floor of the linear experts' noise variances, relative to the variance of ``y``.
    tol : float, default=1e-6
        Convergence when the objective gains less than ``tol`` per sample.
    max_iter : int, default=500
    n_init : int, default=5
        Restarts from independent seeds; the best objective is kept. The likelihood of
        a mixture of experts has many local maxima (an expert can settle on the wrong
        region, or two experts on the same one), so restarts matter: keep several.
    init : str or dict, default="kmeans++"
        Starting responsibilities from one of "kmeans++", "kmeans", "random",
        "random_from_data" on the standardised covariates and response side by side,
        then M-steps from them; or a dict with any of "gate_intercept" (K,),
        "gate_coef" (K, n_features) (the last expert's row is the reference and must
        be 0), "intercept", "coef" (shaped as the fitted attributes) and
        "noise_variance" (missing entries from the "kmeans++" start).
    random_state : None, int or Generator
    batch_size, progress, verbose, check_monotone, accel, variant, anneal, kappa, t0, n_jobs
        Engine options (see :data:`emkit.models.estimator.ENGINE_OPTIONS`).

    Attributes
    ----------
    gate_intercept_ : ndarray of shape (n_experts,)
    gate_coef_ : ndarray of shape (n_experts, n_features)
        Gate logits ``gate_intercept_ + gate_coef_ @ x``; the last expert's are 0.
    intercept_, coef_ : ndarray
        Linear experts: (n_experts,) and (n_experts, n_features). Binary logistic
        experts: the same shapes, the logit of ``classes_[1]``. Multinomial: (n_experts,
        n_classes) and (n_experts, n_classes, n_features), the last class's row 0.
    noise_variance_ : ndarray of shape (n_experts,)
        Linear experts only.
    classes_ : ndarray
        Logistic experts only: the class labels.
    loglik_ : float
        Total log-likelihood ``sum_i log p(y_i | x_i)`` of the fitted parameters.
    x_offset_, y_offset_, converged_, n_iter_, history_, n_features_in_

    Examples
    --------
    >>> import numpy as np
    >>> import emkit
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-2, 2, (400, 1))
    >>> y = np.where(x[:, 0] < 0, -x[:, 0], 2 * x[:, 0]) + rng.normal(0, 0.1, 400)
    >>> moe = emkit.MixtureOfExperts(2, n_init=2, random_state=0).fit(x, y)
    >>> np.round(np.sort(moe.coef_[:, 0]), 1)
    array([-1.,  2.])
    >>> moe.predict_gate(np.array([[-1.5], [1.5]])).argmax(axis=1).tolist() in ([0, 1], [1, 0])
    True
    """

    _size_name = "n_experts"
    _extra_attributes = ("fit_time_", "objective_name_", "noise_variance_", "classes_")

    def __init__(
        self,
        n_experts: int = 2,
        expert: str = "linear",
        *,
        multi_class: str = "auto",
        gate_alpha: float = 0.0,
        alpha: float = 0.0,
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
    ):
        self._set_hyperparameters(locals())

    _fitted_attributes = (
        "gate_intercept_",
        "gate_coef_",
        "intercept_",
        "coef_",
        "x_offset_",
        "y_offset_",
        *ConditionalMixtureEstimator.FIT_RECORD,
    )
    _float_attributes = ("gate_intercept_", "gate_coef_", "intercept_", "coef_", "x_offset_")

    @property
    def _estimator_type(self) -> str:  # type: ignore[override]
        return "classifier" if self.expert == "logistic" else "regressor"

    @property
    def _regression(self) -> bool:  # type: ignore[override]
        return self.expert != "logistic"

    @property
    def _n_components(self) -> int:
        return self.n_experts

    def _check_hyperparameters(self, n_samples: int) -> None:
        self._check_common(n_samples, self.n_experts)
        check_real(self.gate_alpha, "gate_alpha", 0.0)
        check_real(self.alpha, "alpha", 0.0)

    def _read_y(self, y, n_samples: int, fitting: bool):
        """Linear experts: a float response. Logistic: class labels, as codes."""
        check_choice(self.expert, "expert", ("linear", "logistic"))
        if self.expert == "linear":
            return check_response(y, n_samples), None
        check_choice(self.multi_class, "multi_class", ("auto", "binary", "multinomial"))
        labels = np.asarray(y)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.shape != (n_samples,):
            raise ValueError(f"y must have shape ({n_samples},) to match X, got {labels.shape}")
        if labels.dtype.kind == "f":
            if not np.all(np.isfinite(labels)):
                raise ValueError("Input y contains NaN or infinity.")
            if np.any(labels != np.round(labels)):
                raise ValueError(
                    "y holds non-integer values: logistic experts need class labels, "
                    "not a continuous response (use expert='linear')"
                )
        if labels.dtype.kind == "O":
            labels = labels.astype(str)
        if not fitting:
            codes = np.searchsorted(self.classes_, labels).clip(0, len(self.classes_) - 1)
            unknown = self.classes_[codes] != labels
            if unknown.any():
                raise ValueError(f"y has labels not seen in fit: {np.unique(labels[unknown])[:5]}")
            return codes, self.classes_
        classes, codes = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"y has a single class ({classes[0]!r}); logistic experts need two or more"
            )
        if self.multi_class == "binary" and len(classes) != 2:
            raise ValueError(
                f"multi_class='binary' needs labels of two classes, but y has {len(classes)}: "
                f"{classes[:10].tolist()}; use multi_class='multinomial'"
            )
        return codes.astype(np.intp), classes

    def _model(self, A, y, w, extra) -> ConditionalMixtureModel:
        bound = None if A is None else design_bound(A, w)
        gate = SoftmaxGate(self.fit_intercept, self.gate_alpha, bound)
        if self.expert == "linear":
            floor = 0.0 if y is None else self._variance_floor(y, w)
            experts = LinearExperts(self.fit_intercept, floor)
        else:
            n_classes = len(self.classes_ if extra is None else extra)
            experts = LogisticExperts(n_classes, self.fit_intercept, self.alpha, bound)
        init = self.init if isinstance(self.init, str) else "kmeans++"
        return ConditionalMixtureModel(gate, experts, self.n_experts, init)

    # ------------------------------------------------------------------ parameters
    def _public_experts(self, beta, x_offset, y_offset):
        """(intercept, coef) of the experts from the engine's centred ``beta``."""
        intercept, coef = to_public(beta, x_offset, y_offset, self.fit_intercept)
        if self.expert == "linear":
            return intercept, coef
        if coef.shape[1] == 1:  # binary: the engine fits class 0 against class 1; negate
            return -intercept[:, 0], -coef[:, 0]
        K, _, p = coef.shape
        return (
            np.concatenate([intercept, np.zeros((K, 1))], axis=1),
            np.concatenate([coef, np.zeros((K, 1, p))], axis=1),
        )

    def _internal_experts(self, intercept, coef, x_offset, y_offset) -> np.ndarray:
        intercept, coef = np.asarray(intercept, float), np.asarray(coef, float)
        if self.expert == "logistic":
            if coef.ndim == 2:
                intercept, coef = -intercept[:, None], -coef[:, None, :]
            else:
                intercept, coef = intercept[:, :-1], coef[:, :-1]
        return to_internal(intercept, coef, x_offset, y_offset, self.fit_intercept)

    def _store(self, params, extra) -> None:
        if self.expert == "logistic":
            self.classes_ = extra
        gate = np.vstack([params["gate"], np.zeros((1, params["gate"].shape[1]))])
        self.gate_intercept_, self.gate_coef_ = to_public(
            gate, self.x_offset_, 0.0, self.fit_intercept
        )
        self.intercept_, self.coef_ = self._public_experts(
            params["beta"], self.x_offset_, self.y_offset_
        )
        if self.expert == "linear":
            self.noise_variance_ = np.asarray(params["noise_variance"], dtype=np.float64)

    def _internal_params(self) -> dict[str, np.ndarray]:
        K = self.n_experts
        if self.gate_coef_.shape[0] != K or self.intercept_.shape[0] != K:
            raise ValueError("the fitted parameters do not have one row per expert")
        gate = to_internal(
            self.gate_intercept_[:-1], self.gate_coef_[:-1], self.x_offset_, 0.0, self.fit_intercept
        )
        beta = self._internal_experts(self.intercept_, self.coef_, self.x_offset_, self.y_offset_)
        params = {"gate": gate, "beta": beta}
        if self.expert == "linear":
            params["noise_variance"] = np.asarray(self.noise_variance_, dtype=np.float64)
        return params

    def _start(self, model, data, rng, x_offset, y_offset, extra) -> dict[str, np.ndarray]:
        values, K = self.init, self.n_experts
        keys = ("gate_intercept", "gate_coef", "intercept", "coef")
        keys += ("noise_variance",) if self.expert == "linear" else ()
        unknown = set(values) - set(keys)
        if unknown:
            raise ValueError(f"init dict has unknown keys {sorted(unknown)}; use {keys}")
        base = self._base_start(model, data, rng, keys)
        params = dict(base)
        gate = np.vstack([base["gate"], np.zeros((1, base["gate"].shape[1]))])
        g_int, g_coef = to_public(gate, x_offset, 0.0, self.fit_intercept)
        p = g_coef.shape[1]
        if "gate_intercept" in values:
            g_int = check_start(values, "gate_intercept", (K,))
        if "gate_coef" in values:
            g_coef = check_start(values, "gate_coef", (K, p))
        if g_int[-1] != 0 or np.any(g_coef[-1] != 0):
            raise ValueError("init gate: the last expert is the reference; its row must be 0")
        params["gate"] = to_internal(g_int[:-1], g_coef[:-1], x_offset, 0.0, self.fit_intercept)
        intercept, coef = self._public_experts(base["beta"], x_offset, y_offset)
        if "intercept" in values:
            intercept = check_start(values, "intercept", intercept.shape)
        if "coef" in values:
            coef = check_start(values, "coef", coef.shape)
        params["beta"] = self._internal_experts(intercept, coef, x_offset, y_offset)
        if "noise_variance" in values:
            var = check_start(values, "noise_variance", (K,), positive=True)
            params["noise_variance"] = np.maximum(var, model.components.min_variance)
        return params

    def _describe(self) -> str:
        return f"K={self.n_experts} {self.expert} "

    # ------------------------------------------------------------------ predictions
    def predict_gate(self, X) -> np.ndarray:
        """Gate probabilities ``P(expert k | x)``, shape (n_samples, n_experts)."""
        A, _ = self._validated(X)
        model, params = self._fitted()
        return model.gate(params, A)

    def predict_distribution(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of ``y`` given ``x`` under the mixture (linear experts).

        ``mean = sum_k g_k mu_k``, ``variance = sum_k g_k (sigma_k^2 + (mu_k - mean)^2)``.
        """
        if self.expert != "linear":
            raise TypeError("predict_distribution is for linear experts; use predict_proba")
        A, _ = self._validated(X)
        model, params = self._fitted()
        gate = model.gate(params, A)
        mu = model.components.mean(params, A)
        mean = np.einsum("nk,nk->n", gate, mu)
        spread = params["noise_variance"] + (mu - mean[:, None]) ** 2
        return mean + self.y_offset_, np.einsum("nk,nk->n", gate, spread)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``sum_k g_k(x) P_k(class | x)``, (n_samples, n_classes)
        (logistic experts)."""
        if self.expert != "logistic":
            raise TypeError("predict_proba is for logistic experts; use predict_distribution")
        A, _ = self._validated(X)
        model, params = self._fitted()
        proba = model.components.class_proba(params, A)
        return np.einsum("nk,nkc->nc", model.gate(params, A), proba)

    def predict(self, X) -> np.ndarray:
        """The mixture mean (linear experts) or the most probable class (logistic)."""
        if self.expert == "linear":
            return self.predict_distribution(X)[0]
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        """R^2 of :meth:`predict` (linear experts) or its accuracy (logistic), as
        scikit-learn's regressors and classifiers."""
        pred = self.predict(X)
        w = check_sample_weight(sample_weight, len(pred))
        if self.expert == "logistic":
            hits = pred == np.asarray(y).reshape(pred.shape)
            return float(np.average(hits, weights=w))
        return r2_score(check_response(y, len(pred)), pred, w)
