"""Finite mixtures as pure EM functions: the one mixture machinery.

Generative model::

    z_i ~ Categorical(weights)
    x_i | z_i = k ~ component distribution with parameters theta_k

A mixture is a **weights part** (:class:`~emkit.models.mixture.weights.ConstantWeights`
today; a gate on covariates for mixtures of experts) plus a **component part**: any
distribution of :mod:`emkit.distributions`. The E-step is "weight each component's
statistics by its responsibilities", so any distribution with weighted statistics is a
component; one whose class offers a fused mixture E-step (``mixture_estep``: the
Gaussian through its compiled kernels) gets it used. Every front
(:class:`emkit.GaussianMixture`, :class:`emkit.StudentTMixture`, :class:`emkit.Mixture`)
runs this class, so re-seeding of collapsed components, hard EM, annealing and SQUAREM
mean the same thing for all of them.

Re-seeding: a component part that can repair itself has ``estimate(stats, prior,
previous, skip) -> (params, bad)`` (an M-step that flags the components it could not
estimate, e.g. empty or with a singular covariance) and ``reseed(weights, params, bad)``
(split a heavy component into two). The M-step then returns
:class:`~emkit.engine.Reseeded` parameters with a ``DegenerateComponentWarning``. Other
components raise a clear error when a component loses every sample.

Data batches are ``(X, sample_weight or None)``, ``(X, sample_weight, labels)`` with
labels -1 where the component is unknown (semi-supervised EM: labelled rows keep their
component), or a :class:`~emkit.distributions.missing.MissingBatch` (rows sorted by
pattern of missing values). Semi-supervised EM maximises

    sum_{labelled i} log(w_{y_i} p(x_i | theta_{y_i})) + sum_{unlabelled i} log sum_k w_k p(x_i | theta_k)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from emkit._logspace import log_normalize, posterior_in_place
from emkit._pytree import tree_map
from emkit.distributions.base import Distribution
from emkit.distributions.missing import MissingBatch, nan_average
from emkit.engine.fixed import parse_path
from emkit.engine.protocol import Reseeded, unwrap_reseeded
from emkit.models.init import initial_responsibilities
from emkit.models.mixture.weights import ConstantWeights

__all__ = ["MixtureModel", "MixtureParams", "MixtureStats"]


#: engine hooks a mixture offers when its component does
_HOOKS = ("pack", "unpack", "perturb", "shift_stats", "observed_step", "dof_derivatives")


class MixtureParams(NamedTuple):
    weights: np.ndarray  # (K,)
    components: Any  # the distribution's parameter pytree, leading axis K


class MixtureStats(NamedTuple):
    nk: np.ndarray  # (K,) summed responsibilities (times sample weights)
    components: Any  # the distribution's statistics weighted by the responsibilities


def batch_parts(batch: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(X, sample weights or None, labels or None)`` of any batch format."""
    if isinstance(batch, MissingBatch):
        return batch.X, batch.weights, None
    X, w, *rest = batch
    return X, w, (rest[0] if rest else None)


class _Held(NamedTuple):
    """What a held mixture keeps fixed (see :meth:`MixtureModel.hold`)."""

    weights: bool
    rows: frozenset  # components held whole
    fields: frozenset  # component fields held in every component


class MixtureModel:
    """EM model of a finite mixture of ``component``.

    Parameters
    ----------
    component : Distribution
        The distribution of every component.
    n_components : int
    init : str, default "kmeans++"
        How ``init_params`` starts: one of "kmeans++", "kmeans", "random",
        "random_from_data", run on ``component.init_features(X)``.
    prior : optional
        Conjugate prior of the components (MAP-EM), as the distribution takes it.
    weights : ConstantWeights, optional
        The weights part (default: maximum-likelihood weights).
    """

    def __init__(
        self,
        component: Distribution,
        n_components: int,
        init: str = "kmeans++",
        prior: Any = None,
        weights: ConstantWeights | None = None,
    ):
        self.component = component
        self.n_components = n_components
        self.init = init
        self.prior = prior
        self.weights = ConstantWeights() if weights is None else weights
        self.generalized = component.generalized
        self._held: _Held | None = None

    # ------------------------------------------------------------------ held parameters
    def hold(self, names) -> MixtureModel:
        """A copy whose M-step keeps the named parameters fixed (``emkit.em(fixed=...)``).

        Names: ``"weights"``; ``"components"`` (every component); ``"components[k]"``
        (component ``k`` whole, not with a component whose parameters are shared, such
        as a tied Gaussian); ``"components.<field>"`` (that field of every component,
        where the distribution can hold it: a Gaussian's ``mean`` or ``covariance``, a
        Student-t's ``mean``, ``covariance`` or ``dof``). The other parameters get their
        exact M-step given the held ones (the mixture's M-step separates into the
        weights and each component; see the distribution's ``held_stats``). Re-seeding
        a collapsed component would move held values: with anything held it is an error.

        Raises
        ------
        ValueError
            A name the mixture does not know or cannot hold.
        """
        import copy

        K = self.n_components
        weights, rows, fields = False, set(), set()
        for name in names:
            path, index = parse_path(name)
            if path[0] == "weights" and len(path) == 1 and not index:
                weights = True
            elif path[0] == "components" and len(path) == 1 and not index:
                rows.update(range(K))
            elif path[0] == "components" and len(path) == 1 and len(index) == 1:
                k = index[0]
                if not -K <= k < K:
                    raise ValueError(f"cannot hold {name!r}: there are {K} components")
                if self.component.shares_parameters:
                    raise ValueError(
                        f"cannot hold {name!r} alone: the components of {self.component!r} "
                        "share parameters; hold one of its fields in every component instead"
                    )
                rows.add(k % K)
            elif path[0] == "components" and len(path) == 2 and not index:
                self.component.held_stats(None, None, frozenset([path[1]]))  # can it?
                fields.add(path[1])
            else:
                raise ValueError(
                    f"unknown parameter {name!r} of a mixture: hold 'weights', 'components', "
                    "'components[k]' or 'components.<field>'"
                )
        held = copy.copy(self)
        held._held = _Held(weights, frozenset(rows), frozenset(fields))
        return held

    # ------------------------------------------------------------------ the three steps
    def init_params(self, data: Any, rng: np.random.Generator) -> MixtureParams:
        """Starting parameters by ``init``; NaN are filled by column means for this only."""
        X, w, labels = batch_parts(data)
        if np.isnan(X).any():
            X = np.where(np.isnan(X), nan_average(X, w).astype(X.dtype), X)
        features = self.component.init_features(X)
        resp = initial_responsibilities(self.init, features, w, self.n_components, rng)
        return self.params_from_responsibilities(X, w, fix_labelled(resp, labels))

    def estep(self, params: MixtureParams, batch: Any) -> tuple[MixtureStats, float]:
        return self.estep_variant(params, batch)

    def estep_variant(
        self, params: MixtureParams, batch: Any, *, beta: float = 1.0, hard: bool = False
    ) -> tuple[MixtureStats, float]:
        """E-step with exact (beta=1), tempered (beta < 1) or hard posteriors.

        Returns the statistics and the batch's objective: the log-likelihood, the
        tempered log-likelihood ``(1/beta) sum log sum_k (w_k p_k(x))^beta``, or the
        classification log-likelihood ``sum max_k log w_k p_k(x)``.
        """
        X, w, labels = batch_parts(batch)
        log_w = self.weights.log_weights(params.weights)
        fused = getattr(self.component, "mixture_estep", None)
        if fused is not None and labels is None:
            nk, stats, value = fused(params.components, log_w, batch, beta=beta, hard=hard)
            return MixtureStats(nk, stats), value
        resp = self.component.log_prob(params.components, X) + log_w
        known = None if labels is None else np.flatnonzero(labels >= 0)
        if known is not None:
            known_rows = resp[known, labels[known]]
        rows = posterior_in_place(resp, beta, hard)
        if known is not None:
            rows[known] = known_rows
            resp[known] = 0.0
            resp[known, labels[known]] = 1.0
        if w is not None:
            resp *= w[:, None]
            value = float(np.dot(w, rows))
        else:
            value = float(np.sum(rows))
        stats = self.component.suff_stats(X, resp, params.components)
        return MixtureStats(resp.sum(axis=0), stats), value

    def check_fixed(self, values: dict[str, Any]) -> None:
        """``ValueError`` for held weights that are negative or do not sum to 1."""
        if "weights" in values:
            w = np.asarray(values["weights"], dtype=np.float64)
            if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
                raise ValueError("fixed weights must be non-negative and sum to 1")

    def mstep(self, stats: MixtureStats, params: MixtureParams | None) -> MixtureParams | Reseeded:
        if self._held is not None and params is not None:
            return self._held_mstep(stats, params)
        nk = np.asarray(stats.nk, dtype=np.float64)
        total = nk.sum()
        if not total > 0:
            raise ValueError("the responsibilities sum to zero: every sample weight is zero")
        empty = ~(nk > total * 1e-12)
        weights = self.weights.mstep(nk)
        previous = None if params is None else params.components
        reseed = getattr(self.component, "reseed", None)
        if reseed is None:
            if empty.any() and self.prior is None:
                raise ValueError(
                    f"mixture component(s) {np.flatnonzero(empty).tolist()} lost every sample "
                    "(zero total responsibility); decrease n_components, try another init or "
                    "random_state, or give a prior"
                )
            components = self.component.mstep(stats.components, self.prior, previous)
            return MixtureParams(weights, components)
        components, bad = self.component.estimate(stats.components, self.prior, previous, empty)
        if not bad.any():
            return MixtureParams(weights, components)
        return Reseeded(MixtureParams(*reseed(weights, components, bad)))

    def _held_mstep(self, stats: MixtureStats, params: MixtureParams) -> MixtureParams:
        """The M-step of the parameters not held, given the held ones (``params``'s)."""
        held = self._held
        nk = np.asarray(stats.nk, dtype=np.float64)
        total = nk.sum()
        if not total > 0:
            raise ValueError("the responsibilities sum to zero: every sample weight is zero")
        weights = params.weights if held.weights else self.weights.mstep(nk)
        K = len(nk)
        if len(held.rows) == K:
            return MixtureParams(weights, params.components)
        kept = np.zeros(K, dtype=bool)
        kept[list(held.rows)] = True
        empty = ~(nk > total * 1e-12)
        comp_stats = stats.components
        if (empty & kept).any():  # a held component's statistics are never used: borrow some
            comp_stats = _borrow_rows(comp_stats, empty & kept, int(np.argmax(nk)), K)
        comp_stats = self.component.held_stats(comp_stats, params.components, held.fields)
        previous = params.components
        component, prior = self.component, self.prior
        if hasattr(component, "estimate"):
            components, bad = component.estimate(comp_stats, prior, previous, empty & ~kept)
            bad &= ~kept
        else:
            bad = empty & ~kept if prior is None else np.zeros(K, dtype=bool)
            components = None if bad.any() else component.mstep(comp_stats, prior, previous)
        if bad.any():
            raise ValueError(
                f"mixture component(s) {np.flatnonzero(bad).tolist()} collapsed (no "
                "samples, or a singular covariance) while parameters are held fixed, so they "
                "cannot be re-seeded; hold other parameters, decrease n_components, increase "
                "reg_covar, or try another start"
            )
        for field in held.fields:
            components = components._replace(**{field: getattr(previous, field)})
        if held.rows:
            components = _keep_rows(components, previous, kept)
        return MixtureParams(weights, components)

    def _log_prior(self, params: MixtureParams) -> float:
        value = self.component.log_prior(params.components, self.prior)
        return float(value + self.weights.log_prior(params.weights))

    # ------------------------------------------------------------------ engine hooks
    def __getattr__(self, name: str) -> Any:
        # SQUAREM's pack/unpack, annealing's perturb, online EM's shift_stats and ECME's
        # observed_step exist when the component has them (otherwise the engine falls
        # back to a flat view, skips the perturbation, averages the statistics as they
        # are, or refuses ECME).
        if name in _HOOKS and hasattr(self.component, name):
            return getattr(self, f"_{name}")
        # MAP-EM only with a prior: then the engine maximises log-likelihood + log-prior
        if name == "log_prior" and (self.prior is not None or self.weights.concentration != 1):
            return self._log_prior
        raise AttributeError(name)

    def _pack(self, params: MixtureParams) -> np.ndarray:
        """Weights and component parameters as one unconstrained vector (for SQUAREM)."""
        return np.concatenate(
            [self.weights.pack(params.weights), self.component.pack(params.components)]
        )

    def _unpack(self, vec: np.ndarray, like: MixtureParams) -> MixtureParams:
        """Inverse of ``pack``; raises ``ValueError`` when ``vec`` gives invalid parameters."""
        vec = np.asarray(vec, dtype=np.float64)
        if not np.all(np.isfinite(vec)):
            raise ValueError("the parameter vector has non-finite entries")
        K = len(like.weights)
        return MixtureParams(
            self.weights.unpack(vec[:K]), self.component.unpack(vec[K:], like.components)
        )

    def _shift_stats(self, stats: MixtureStats, old: MixtureParams, new: MixtureParams):
        """Statistics taken at ``old`` parameters re-expressed at ``new`` (online EM)."""
        components = self.component.shift_stats(stats.components, old.components, new.components)
        return MixtureStats(stats.nk, components)

    def _observed_step(self, params: MixtureParams, evaluate: Any) -> MixtureParams:
        """ECME's step (:class:`emkit.engine.ecme.ECME`): the component parameters that
        the component maximises on the observed-data likelihood (the Student-t's degrees
        of freedom), the weights and the rest fixed."""
        held = self._held
        if held is not None and (held.rows or held.fields):
            # a joint step over every component would move held values: ECM's step only
            return params
        log_w = self.weights.log_weights(params.weights)
        components = self.component.observed_step(params.components, log_w, evaluate)
        return params._replace(components=components)

    def _dof_derivatives(self, params: MixtureParams, batch: Any):
        """Observed-data log-likelihood of ``batch`` with its gradient and Hessian in the
        log degrees of freedom (what the Student-t's ``observed_step`` sums over batches)."""
        X, w, labels = batch_parts(batch)
        log_w = self.weights.log_weights(params.weights)
        return self.component.dof_derivatives(params.components, log_w, (X, w, labels))

    def _perturb(self, params: MixtureParams, rng: np.random.Generator) -> MixtureParams:
        """A small random move of the components (between annealing stages)."""
        return params._replace(components=self.component.perturb(params.components, rng))

    # ------------------------------------------------------------------ helpers
    def params_from_responsibilities(self, X, w, resp) -> MixtureParams:
        """M-step from given responsibilities (starting from labels or soft assignments)."""
        r = resp if w is None else resp * w[:, None]
        nk = r.sum(axis=0)
        params = unwrap_reseeded(
            self.mstep(MixtureStats(nk, self.component.suff_stats(X, r)), None)
        )[0]
        if hasattr(self.component, "shift_stats"):
            # Statistics about the parameters they were taken at (the Gaussian's moments
            # about its means): a second pass about the first pass's estimate is exact
            # far from the origin, where raw moments are not.
            stats = MixtureStats(nk, self.component.suff_stats(X, r, params.components))
            params = unwrap_reseeded(self.mstep(stats, params))[0]
        return params

    def log_joint(self, params: MixtureParams, X: np.ndarray) -> np.ndarray:
        """``log weights_k + log p(x_o | theta_k)``, shape (N, K); NaN integrated out."""
        log_w = self.weights.log_weights(params.weights)
        joint = getattr(self.component, "log_joint", None)
        if joint is not None:
            return joint(params.components, log_w, X)
        return self.component.log_prob(params.components, X) + log_w

    def posterior(self, params: MixtureParams, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Responsibilities (N, K) and log-likelihood per row (N,)."""
        resp = self.log_joint(params, X)
        return resp, log_normalize(resp)


def _keep_rows(new: Any, old: Any, rows: np.ndarray) -> Any:
    """``new`` with the ``rows`` (boolean, K) of every leaf taken from ``old``."""

    def keep(a, b):
        out = np.array(a, copy=True)
        out[rows] = np.asarray(b)[rows]
        return out

    return tree_map(keep, new, old)


def _borrow_rows(stats: Any, rows: np.ndarray, source: int, K: int) -> Any:
    """``stats`` with the ``rows`` of every per-component leaf copied from row ``source``."""

    def borrow(a):
        a = np.asarray(a)
        if a.ndim == 0 or a.shape[0] != K:
            return a
        out = np.array(a, copy=True)
        out[rows] = a[source]
        return out

    return tree_map(borrow, stats)


def fix_labelled(resp: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Starting responsibilities that agree with the known labels.

    The initial clusters are renumbered to match the labelled rows best (an
    assignment problem on the cluster/label contingency table), so that component k
    starts where the rows labelled k are; then labelled rows get their label.
    """
    if labels is None:
        return resp
    from scipy.optimize import linear_sum_assignment

    known = np.flatnonzero(labels >= 0)
    K = resp.shape[1]
    agreement = np.zeros((K, K))  # agreement[label, cluster]
    np.add.at(agreement, labels[known], resp[known])
    rows, cols = linear_sum_assignment(agreement, maximize=True)
    order = np.empty(K, dtype=np.intp)
    order[rows] = cols
    resp = np.array(resp[:, order], dtype=np.float64)
    resp[known] = 0.0
    resp[known, labels[known]] = 1.0
    return resp
