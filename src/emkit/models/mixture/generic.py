"""Finite mixtures of any distribution in :mod:`emkit.distributions`.

Generative model::

    z_i ~ Categorical(weights)
    x_i | z_i = k ~ component distribution with parameters theta_k

:class:`Mixture` is the estimator front of the one mixture machinery
(:class:`~emkit.models.mixture.model.MixtureModel`): any distribution with weighted
statistics is a component (Gaussian, Poisson, Categorical, ..., or an
:class:`~emkit.distributions.Independent` product over column groups for tables that
mix types). ``Mixture(Gaussian(...))`` runs the same code as
:class:`emkit.GaussianMixture`, re-seeding of collapsed components included.

Semi-supervised fitting: rows with a known component (``y >= 0``) keep that component
as their responsibility, so EM maximises

    sum_{labelled i} log(w_{y_i} p(x_i | theta_{y_i})) + sum_{unlabelled i} log sum_k w_k p(x_i | theta_k)

and the engine's monotonicity check applies to that objective.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from emkit._pytree import tree_map
from emkit._random import seed_sequence
from emkit._validation import (
    check_gaussian_scale,
    check_probabilities,
    check_real,
    check_sample_weight,
    drop_all_missing_rows,
)
from emkit.distributions.base import Distribution, component
from emkit.distributions.missing import MissingBatch, group_by_pattern
from emkit.distributions.spec import from_spec
from emkit.engine.fixed import name_list
from emkit.models.estimator import EMEstimator
from emkit.models.mixture.base import MixtureMixin
from emkit.models.mixture.model import MixtureModel, MixtureParams
from emkit.models.mixture.weights import ConstantWeights

__all__ = ["Mixture"]


def _check_labels(y: Any, n_samples: int, n_components: int) -> np.ndarray | None:
    """Semi-supervised labels: integers in [-1, K-1], -1 meaning unknown."""
    if y is None:
        return None
    labels = np.asarray(y)
    if labels.shape != (n_samples,):
        raise ValueError(f"y must have shape ({n_samples},), got {labels.shape}")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ValueError("y must hold integer component labels (-1 for unknown)")
    elif labels.dtype.kind not in "iu":
        raise TypeError(f"y must hold integer component labels, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    bad = (labels < -1) | (labels >= n_components)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"y must be -1 (unknown) or a component in 0..{n_components - 1}; "
            f"row {i} has {labels[i]}"
        )
    return labels if (labels >= 0).any() else None


def _check_weights(values: Any, K: int, what: str) -> np.ndarray:
    """Mixture weights given in ``init`` or ``fixed``: (K,), non-negative, summing to 1."""
    w = np.asarray(values, dtype=np.float64)
    if w.shape != (K,):
        raise ValueError(f"{what} weights must have shape ({K},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
        raise ValueError(f"{what} weights must be non-negative and sum to 1")
    return w / w.sum()


def _stack_components(values: Any, K: int, what: str) -> Any:
    """K parameter sets (as ``components_``) stacked on a leading axis."""
    comps = list(values)
    if len(comps) != K:
        raise ValueError(f"{what} components must list {K} parameter sets, got {len(comps)}")
    return tree_map(lambda *leaves: np.stack([np.asarray(x) for x in leaves]), *comps)


def _component_name(name: Any, K: int) -> bool:
    """Whether ``name`` is ``"components[k]"`` with ``k`` in 0..K-1."""
    if not isinstance(name, str) or not (name.startswith("components[") and name.endswith("]")):
        return False
    index = name[len("components[") : -1]
    return index.isdigit() and int(index) < K


class Mixture(MixtureMixin, EMEstimator):
    """Finite mixture of any emkit distribution, fitted by EM.

    Parameters
    ----------
    component : Distribution
        The distribution of every component, e.g. ``Poisson()``, ``Bernoulli()``,
        ``Categorical(n_categories)``, ``Gaussian("diag")`` or an
        ``Independent({columns: distribution, ...})`` product for mixed-type tables.
    n_components : int, default=1
    prior : optional
        Conjugate prior pseudo-counts on the components (MAP-EM), in the form the
        distribution takes (``DirichletPrior``, ``GammaPrior``, a tuple per part of
        an ``Independent``).
    weight_concentration : float, default=1.0
        Symmetric Dirichlet pseudo-count ``alpha >= 1`` on the mixture weights.
    all_missing : {"error", "drop"}, default="error"
        What ``fit`` does with rows whose values are all missing: raise, or drop them
        with a warning. Other NaN entries are missing values, integrated out (missing
        at random): each row's observed values give its likelihood, and the
        statistics of a missing value are its expectation under each component.
    tol : float, default=1e-3
        Convergence when the log-likelihood gains less than ``tol`` per sample.
    max_iter : int, default=100
    n_init : int, default=1
        Restarts from independent seeds; the best is kept.
    init : str or dict, default="kmeans++"
        "kmeans++" (seeds then nearest-seed labels), "kmeans" (Lloyd's), "random"
        (random responsibilities) or "random_from_data" (random rows as seeds), all on
        ``component.init_features(X)``: standardised columns for Gaussians, square
        roots of counts (Anscombe) for Poisson, logs for positive values, one-hot
        categories, the concatenation for ``Independent``. Or a dict with "weights"
        (K,) and/or "components" (a list of K parameter tuples, as ``components_``).
    random_state : None, int or Generator
    batch_size, progress, verbose, check_monotone, accel, variant, anneal, kappa, t0, n_jobs
        Engine options, as in :class:`emkit.GaussianMixture` (restarts in parallel,
        SQUAREM, online, hard and annealed EM, batches).
    fixed : dict or collection of str, optional
        Parameters held fixed while EM maximises the others given them. A dict with
        ``"weights"`` (K,) and/or ``"components"``: a list of K parameter sets (as
        ``components_``; every component held) or a dict ``{k: parameter set}`` holding
        component ``k`` only (e.g. ``{"components": {1: PoissonParams(rate=[3.0])}}``);
        or a collection of names, ``"weights"``, ``"components"`` or
        ``"components[k]"``, held at their starting values. The mixture's M-step
        separates into the weights and each component, so the others get their exact
        M-step. A component whose parameters are shared (a tied Gaussian) cannot be held
        alone. Re-seeding a collapsed component would move held values: with ``fixed``
        it is an error instead.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    components_ : list of parameter tuples
        One per component, with fields named as the distribution's parameters
        (``mix.components_[0].rate`` for a Poisson mixture).
    component_arrays_ : dict of str to ndarray
        The same parameters stacked over components (leading axis K), by name.
    loglik_ : float
        Final total log-likelihood (semi-supervised: of the objective above).
    converged_, n_iter_, history_, lower_bound_, n_features_in_

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import Mixture
    >>> from emkit.distributions import Poisson
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.poisson(2.0, (300, 1)), rng.poisson(15.0, (300, 1))])
    >>> mix = Mixture(Poisson(), n_components=2, random_state=0).fit(X)
    >>> rates = sorted(float(c.rate[0]) for c in mix.components_)
    >>> [round(r) for r in rates]
    [2, 15]
    """

    _allow_nan = True
    _fitted_attributes = ("weights_", "component_arrays_", "n_features_in_")
    _extra_attributes = ("loglik_", "lower_bound_", "converged_", "n_iter_", "history_")

    def __init__(
        self,
        component: Distribution | None = None,
        n_components: int = 1,
        *,
        prior: Any = None,
        weight_concentration: float = 1.0,
        all_missing: str = "error",
        tol: float = 1e-3,
        max_iter: int = 100,
        n_init: int = 1,
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

    def _engine_fixed(self, fixed: Any) -> Any:
        """``fixed`` as the mixture model's parameter paths (see :meth:`MixtureModel.hold`)."""
        if fixed is None:
            return None
        K = self.n_components
        if not isinstance(fixed, Mapping):
            names = name_list(fixed)
            for name in names:
                if name not in ("weights", "components") and not _component_name(name, K):
                    raise ValueError(
                        f"fixed names unknown parameter {name!r}; use 'weights', 'components' "
                        "or 'components[k]'"
                    )
            return names or None
        unknown = set(fixed) - {"weights", "components"}
        if unknown:
            raise ValueError(
                f"fixed has unknown keys {sorted(unknown)}; use 'weights', 'components'"
            )
        out: dict[str, Any] = {}
        if "weights" in fixed:
            out["weights"] = _check_weights(fixed["weights"], K, "fixed")
        comps = fixed.get("components")
        if isinstance(comps, Mapping):  # {k: parameters of component k}
            for k, value in comps.items():
                if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k < K:
                    raise ValueError(
                        f"fixed components are keyed by component index 0..{K - 1}, got {k!r}"
                    )
                out[f"components[{int(k)}]"] = value
        elif comps is not None:
            out["components"] = _stack_components(comps, K, "fixed")
        return out

    # ------------------------------------------------------------------ fitting
    def _gaussian_reg_covar(self) -> float | bool | None:
        return getattr(self._distribution(), "reg_covar", False)

    def _distribution(self) -> Distribution:
        dist = self.component
        if isinstance(dist, Mapping):  # a spec, as stored by save()
            dist = from_spec(dist)
        if not isinstance(dist, Distribution):
            raise TypeError(
                "component must be a distribution from emkit.distributions, e.g. Poisson(), "
                f"got {type(dist).__name__}"
            )
        return dist

    def _model(self) -> MixtureModel:
        init = self.init if isinstance(self.init, str) else "kmeans++"
        return MixtureModel(
            self._distribution(),
            self.n_components,
            init=init,
            prior=self.prior,
            weights=ConstantWeights(self.weight_concentration),
        )

    def _check_hyperparameters(self, n_samples: int) -> None:
        self._check_mixture_options(n_samples)
        if check_real(self.weight_concentration, "weight_concentration", 0.0) < 1.0:
            raise ValueError(f"weight_concentration must be >= 1, got {self.weight_concentration}")

    def _starting_params(self, model: MixtureModel, data, rng) -> MixtureParams | None:
        if not isinstance(self.init, Mapping):
            return None
        K = self.n_components
        unknown = set(self.init) - {"weights", "components"}
        if unknown:
            raise ValueError(
                f"init dict has unknown keys {sorted(unknown)}; use 'weights', 'components'"
            )
        base = None
        if "components" in self.init:
            stacked = _stack_components(self.init["components"], K, "init")
            try:
                X = data[0]
                model.component.log_prob(stacked, X[:1])
            except Exception as exc:
                raise ValueError(f"init components do not fit the data: {exc}") from None
            components = stacked
        else:
            base = model.init_params(data, rng)
            components = base.components
        if "weights" in self.init:
            weights = _check_weights(self.init["weights"], K, "init")
        else:
            weights = np.full(K, 1.0 / K) if base is None else base.weights
        return MixtureParams(weights, components)

    def fit(self, X, y=None, sample_weight=None) -> Mixture:
        """Estimate the weights and component parameters by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Values in the component distribution's support.
        y : array-like of shape (n_samples,), optional
            Known components for semi-supervised fitting, -1 where unknown.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; a weight of 2 counts a row twice.

        Returns
        -------
        self
        """

        dist = self._distribution()
        X = dist.validate(X)
        w = check_sample_weight(sample_weight, len(X))
        self._check_hyperparameters(len(X))
        labels = _check_labels(y, len(X), self.n_components)
        keep = drop_all_missing_rows(X, w, self.all_missing)
        if not keep.all():
            X, w = X[keep], None if w is None else w[keep]
            labels = (
                None if labels is None else _check_labels(labels[keep], len(X), self.n_components)
            )
        if w is not None and np.count_nonzero(w) < self.n_components:
            raise ValueError(
                f"only {np.count_nonzero(w)} samples have positive weight, fewer than "
                f"n_components = {self.n_components}"
            )
        if self._gaussian_reg_covar() is not False:
            check_gaussian_scale(X, self._gaussian_reg_covar())
        model = self._model()
        data = (X, w, labels)
        if labels is None and np.isnan(X).any():
            # Rows grouped by pattern of missing values: a component with a fused E-step
            # (the Gaussian) conditions each pattern once; others read the rows as they are.
            order, pattern = group_by_pattern(np.isnan(X))
            data = MissingBatch(X[order], None if w is None else w[order], pattern)
        rng = np.random.default_rng(seed_sequence(self.random_state))
        init = self._starting_params(model, data, rng)
        n_obs = float(len(X) if w is None else w.sum())
        result = self._run_engine(model, data, init, n_obs)
        # Everything is computed; only now is the estimator changed.
        p = result.params
        self.weights_ = np.asarray(p.weights, dtype=np.float64)
        self.component_arrays_ = dist.params_to_dict(p.components)
        self.n_features_in_ = X.shape[1]
        self.loglik_ = float(result.loglik)
        self.lower_bound_ = self.loglik_ / n_obs
        self._finish_fit(result)
        return self

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """As the base, with component values of ``fixed`` saved as flat arrays
        (``"components[k].<name>"`` or ``"components.<name>"``, the distribution's names)."""
        params, attributes = super()._get_state()
        fixed = params.get("fixed")
        if isinstance(fixed, Mapping) and "components" in fixed:
            dist, comps = self._distribution(), fixed["components"]
            flat = {k: v for k, v in fixed.items() if k != "components"}
            parts = (
                {f"components[{k}]": p for k, p in comps.items()}
                if isinstance(comps, Mapping)
                else {"components": _stack_components(comps, self.n_components, "fixed")}
            )
            for prefix, p in parts.items():
                for name, value in dist.params_to_dict(p).items():
                    flat[f"{prefix}.{name}"] = np.asarray(value)
            params = {**params, "fixed": flat}
        return params, attributes

    @classmethod
    def _from_state(cls, params: dict[str, Any], attributes: dict[str, Any]) -> Mixture:
        fixed = params.get("fixed")
        if isinstance(fixed, Mapping) and any(k.startswith("components") for k in fixed):
            spec = params["component"]
            dist = from_spec(spec) if isinstance(spec, Mapping) else spec
            groups: dict[str, dict[str, Any]] = {}
            out = {k: v for k, v in fixed.items() if not k.startswith("components")}
            for key, value in fixed.items():
                if key.startswith("components"):
                    prefix, name = key.split(".", 1)
                    groups.setdefault(prefix, {})[name] = value
            for prefix, values in groups.items():
                p = dist.params_from_dict(values)
                if prefix == "components":
                    out["components"] = [component(p, k) for k in range(params["n_components"])]
                else:
                    out.setdefault("components", {})[int(prefix[len("components[") : -1])] = p
            params = {**params, "fixed": out}
        return super()._from_state(params, attributes)

    def _check_fitted_state(self) -> None:
        dist = self._distribution()
        params = dist.params_from_dict(self.component_arrays_)
        check_probabilities(self.weights_, (self.n_components,), "weights_")
        dist.check_params(params, self.n_components)

    def _describe(self) -> str:
        return f"K={self.n_components} {self._distribution()!r} "

    # ------------------------------------------------------------------ fitted values
    def _params(self) -> MixtureParams:
        self._check_is_fitted()
        comps = self._distribution().params_from_dict(self.component_arrays_)
        return MixtureParams(np.asarray(self.weights_, dtype=np.float64), comps)

    @property
    def components_(self) -> list:
        """Fitted parameters of each component (a list of K parameter tuples)."""
        p = self._params()
        return [component(p.components, k) for k in range(len(p.weights))]

    def _validated(self, X) -> np.ndarray:
        self._check_is_fitted()
        X = self._distribution().validate(X)
        self._check_n_features(X)
        return X

    def _log_joint(self, X: np.ndarray) -> np.ndarray:
        return self._model().log_joint(self._params(), X)

    def _mahalanobis_shape(self) -> tuple[np.ndarray, np.ndarray] | None:
        dist = self._distribution()
        if not hasattr(dist, "structure") or "mean" not in self.component_arrays_:
            return None
        mean = np.asarray(self.component_arrays_["mean"], dtype=np.float64)
        cov = np.asarray(self.component_arrays_["covariance"], dtype=np.float64)
        full = dist.structure.to_full(cov, *mean.shape)
        return mean, np.linalg.inv(full)

    def _n_parameters(self) -> int:
        return (self.n_components - 1) + self._distribution().n_parameters(
            self.n_components, self.n_features_in_
        )

    def _sample_component(self, rng: np.random.Generator, k: int, n: int) -> np.ndarray:
        p = self._params()
        return self._distribution().sample(component(p.components, k), n, rng).reshape(n, -1)
