"""Mixtures of experts (Jacobs, Jordan, Nowlan & Hinton 1991; Jordan & Jacobs 1994).

Generative model::

    z_i | x_i ~ Categorical(softmax(gate_intercept + gate_coef x_i))     the gate
    y_i | x_i, z_i = k ~ expert k                                         an expert

with linear-Gaussian experts ``Normal(intercept_k + coef_k . x, noise_variance_k)``
for regression, or logistic experts (binary or multinomial) for classification.

:class:`MixtureOfExperts` is a front of the conditional mixture machinery
(:class:`~emkit.models.mixture.conditional.ConditionalMixtureModel`): the weights part
is a softmax gate on the inputs (:class:`~emkit.models.mixture.weights.SoftmaxGate`),
the component part the experts (:mod:`emkit.distributions.conditional`). The gate is
fitted in the M-step by ``gate_steps`` Newton (IRLS) steps, the logistic experts by
one, each with a step-halving line search that never lowers the expected
complete-data log-likelihood (a generalized EM step, declared to the engine), so the
log-likelihood never decreases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from emkit._validation import check_choice, check_int, check_real, check_sample_weight
from emkit.distributions.conditional import LinearExperts, LogisticExperts
from emkit.distributions.softmax import design_bound
from emkit.models.mixture.conditional import ConditionalMixtureModel
from emkit.models.mixture.conditional_front import (
    ConditionalMixtureEstimator,
    centred_intercept,
    check_response,
    check_start,
    column_response,
    original_intercept,
    r2_score,
)
from emkit.models.mixture.weights import SoftmaxGate

__all__ = ["MixtureOfExperts"]


class _ForExpert:
    """A method that exists only for one kind of expert: for the other, reading it is
    an ``AttributeError`` (so ``hasattr`` says no, as scikit-learn hides
    ``predict_proba`` from regressors)."""

    def __init__(self, kind: str, fn):
        self.kind, self.fn = kind, fn
        self.__doc__ = fn.__doc__

    def __get__(self, obj, owner=None):
        if obj is None:
            return self.fn
        if obj.expert != self.kind:
            raise AttributeError(
                f"{self.fn.__name__} is for expert={self.kind!r}, this one has {obj.expert!r}"
            )
        return self.fn.__get__(obj, owner)


def _for_expert(kind: str):
    return lambda fn: _ForExpert(kind, fn)


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
    gate_steps : int, default=3
        Iteratively-reweighted-least-squares (Newton) steps of the gate per M-step,
        each with a step-halving line search that never lowers the gate's part of Q
        (the M-step is a generalized EM step, declared to the engine). The first uses
        the E-step's statistics; the others pass over the data held in memory, so
        online EM, hard EM and annealing (whose E-steps are not the exact posterior)
        take one.
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
    fixed : collection of str or dict, optional
        Parameters held fixed while the others are estimated: names of the init dict
        (held at their starting values) or a dict of them -> values. Holding an
        intercept holds it in the original coordinates (the data are then not centred).

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
        gate_steps: int = 3,
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
        fixed: Any = None,
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
        check_int(self.gate_steps, "gate_steps", 1)
        check_real(self.alpha, "alpha", 0.0)

    def _read_y(self, y, n_samples: int, fitting: bool):
        """Linear experts: a float response. Logistic: class labels, as codes."""
        check_choice(self.expert, "expert", ("linear", "logistic"))
        if self.expert == "linear":
            return check_response(y, n_samples), None
        check_choice(self.multi_class, "multi_class", ("auto", "binary", "multinomial"))
        labels = column_response(y, n_samples)
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
        # The whole data for the gate's steps on Q itself: only with exact E-steps (Q is
        # then the gate's part with the exact posterior), not with online EM's
        # mini-batches nor the tempered or hard posteriors of annealing and hard EM.
        exact = self.variant not in ("online", "hard") and self.anneal is None
        data = (A, y, w) if A is not None and exact else None
        return ConditionalMixtureModel(
            gate, experts, self.n_experts, init, data=data, gate_steps=self.gate_steps
        )

    # ------------------------------------------------------------------ parameters
    def _keys(self) -> tuple[str, ...]:
        keys = ("gate_intercept", "gate_coef", "intercept", "coef")
        return keys + (("noise_variance",) if self.expert == "linear" else ())

    def _check_values(self, values, n_features: int, extra, what: str) -> dict[str, np.ndarray]:
        """Parameters given by the user (init or fixed), checked, in the original coordinates."""
        K, p, out = self.n_experts, n_features, {}
        if "gate_intercept" in values:
            out["gate_intercept"] = check_start(values, "gate_intercept", (K,), what=what)
        if "gate_coef" in values:
            out["gate_coef"] = check_start(values, "gate_coef", (K, p), what=what)
        if out.get("gate_intercept", np.zeros(1))[-1] != 0 or np.any(
            out.get("gate_coef", np.zeros((1, 1)))[-1]
        ):
            raise ValueError(f"{what} gate: the last expert is the reference; its row must be 0")
        shapes = {"intercept": (K,), "coef": (K, p)}
        if self.expert == "logistic":
            C = len(self.classes_ if extra is None else extra)
            if C > 2:
                shapes = {"intercept": (K, C), "coef": (K, C, p)}
        for key, shape in shapes.items():
            if key in values:
                out[key] = check_start(values, key, shape, what=what)
                if len(shape) > 1 + (key == "coef") and np.any(out[key][:, -1]):
                    raise ValueError(f"{what} {key}: the last class is the reference; it must be 0")
        if "noise_variance" in values and self.expert == "linear":
            out["noise_variance"] = check_start(values, "noise_variance", (K,), True, what)
        return out

    def _to_public(self, params, x_offset, y_offset) -> dict[str, np.ndarray]:
        gi = original_intercept(params["gate_intercept"], params["gate_coef"], x_offset, 0.0)
        gc = params["gate_coef"]
        out = {
            "gate_intercept": np.append(gi, 0.0),
            "gate_coef": np.vstack([gc, np.zeros((1, gc.shape[1]))]),
        }
        coef = np.array(params["coef"], dtype=np.float64)
        intercept = original_intercept(params["intercept"], coef, x_offset, y_offset)
        if self.expert == "linear":
            out["noise_variance"] = np.array(params["noise_variance"], dtype=np.float64)
        elif coef.shape[1] == 1:  # binary: the engine fits class 0 against class 1; negate
            intercept, coef = -intercept[:, 0], -coef[:, 0]
        else:  # the reference class's zeros appended
            K, _, p = coef.shape
            intercept = np.concatenate([intercept, np.zeros((K, 1))], axis=1)
            coef = np.concatenate([coef, np.zeros((K, 1, p))], axis=1)
        return {**out, "intercept": intercept, "coef": coef}

    def _to_internal(self, values, x_offset, y_offset) -> dict[str, np.ndarray]:
        gc = np.asarray(values["gate_coef"], dtype=np.float64)
        K = len(gc)
        if any(len(values[key]) != K for key in self._keys()):
            raise ValueError("the parameters do not have one row per expert")
        out = {
            "gate_intercept": centred_intercept(values["gate_intercept"], gc, x_offset, 0.0)[:-1],
            "gate_coef": gc[:-1].copy(),
        }
        intercept = np.asarray(values["intercept"], dtype=np.float64)
        coef = np.asarray(values["coef"], dtype=np.float64)
        if self.expert == "linear":
            out["noise_variance"] = np.array(values["noise_variance"], dtype=np.float64)
        elif coef.ndim == 2:  # binary
            intercept, coef = -intercept[:, None], -coef[:, None, :]
        else:
            intercept, coef = intercept[:, :-1], coef[:, :-1]
        out["intercept"] = centred_intercept(intercept, coef, x_offset, y_offset)
        out["coef"] = coef.copy()
        return out

    def _describe(self) -> str:
        return f"K={self.n_experts} {self.expert} "

    # ------------------------------------------------------------------ predictions
    def predict_gate(self, X) -> np.ndarray:
        """Gate probabilities ``P(expert k | x)``, shape (n_samples, n_experts)."""
        A, _ = self._validated(X)
        model, params = self._fitted()
        return model.gate(params, A)

    @_for_expert("linear")
    def predict_distribution(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of ``y`` given ``x`` under the mixture (linear experts).

        ``mean = sum_k g_k mu_k``, ``variance = sum_k g_k (sigma_k^2 + (mu_k - mean)^2)``.
        """
        A, _ = self._validated(X)
        model, params = self._fitted()
        gate = model.gate(params, A)
        mu = model.components.mean(params, A)
        mean = np.einsum("nk,nk->n", gate, mu)
        spread = params["noise_variance"] + (mu - mean[:, None]) ** 2
        return mean + self.y_offset_, np.einsum("nk,nk->n", gate, spread)

    @_for_expert("logistic")
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``sum_k g_k(x) P_k(class | x)``, (n_samples, n_classes)
        (logistic experts)."""
        A, _ = self._validated(X)
        model, params = self._fitted()
        proba = model.components.class_proba(params, A)
        return np.einsum("nk,nkc->nc", model.gate(params, A), proba)

    def predict(self, X) -> np.ndarray:
        """The mixture mean (linear experts) or the most probable class (logistic)."""
        if self.expert == "linear":
            return self.predict_distribution(X)[0]
        best = self.predict_proba(X).argmax(axis=1)
        return self.classes_[best]

    def score(self, X, y, sample_weight=None) -> float:
        """R^2 of :meth:`predict` (linear experts) or its accuracy (logistic), as
        scikit-learn's regressors and classifiers."""
        pred = self.predict(X)
        w = check_sample_weight(sample_weight, len(pred))
        if self.expert == "logistic":
            hits = pred == np.asarray(y).reshape(pred.shape)
            return float(np.average(hits, weights=w))
        return r2_score(check_response(y, len(pred)), pred, w)
