"""Multivariate Student-t components: the one t kernel of emkit.

Generative model of one component (McLachlan & Peel 2000, ch. 7)::

    u ~ Gamma(dof / 2, rate=dof / 2)
    x | u ~ Normal(mean, covariance / u)

so ``x`` is a multivariate t with location ``mean``, scale matrix ``covariance`` and
``dof`` degrees of freedom. Given the current parameters the E-step weighs each row by
``u = (dof + D) / (dof + delta)`` (``delta`` the squared Mahalanobis distance), so far
points hardly move the location: the fit is robust.

:class:`StudentT` is the only place that knows the t: its log-density, the E-step
quantities (the weights ``u``, the ``u``-weighted moments, ``log u - u``), the M-step
of location and scale, and the degrees-of-freedom updates (ECM's root and ECME's
observed-data Newton step, :mod:`emkit.distributions.student_t_dof`). Every front runs
it: :class:`emkit.StudentTMixture`, ``emkit.Mixture(StudentT(...))`` and anything
with t components next. The statistics are the sums of ``w``, ``w u``, ``w u x``,
``w u x x'`` (in the covariance structure's layout) and ``w (log u - u + psi((dof+D)/2)
- log((dof+D)/2))``; they depend on the parameters they were computed at (pass
``params`` to ``suff_stats``) and still add up over batches. The M-step is closed form
for location and scale and a one-dimensional root for each ``dof`` (ECM: an exact EM
step, because the expected complete-data log-likelihood separates).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_t(3.0, size=(4000, 1))
>>> t = StudentT("full")
>>> params = t.init_params(X, np.ones((4000, 1)))
>>> for _ in range(200):
...     params = t.mstep(t.suff_stats(X, np.ones((4000, 1)), params), previous=params)
>>> round(float(params.dof[0]))
3
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from emkit._logspace import posterior_in_place
from emkit._validation import check_real
from emkit.distributions.base import Distribution, add_blocks, check_weights
from emkit.distributions.covariance import CovarianceStructure, block_rows, get_structure
from emkit.distributions.covariance._kernels import normalise_columns
from emkit.distributions.reseed import split_components
from emkit.distributions.student_t_dof import (
    DEFAULT_START_DOF,
    DOF_BOUNDS,
    check_dof,
    check_dof_bounds,
    log_t_normaliser,
    maximise_log_dofs,
    solve_dofs,
)

__all__ = [
    "DEFAULT_START_DOF",
    "DOF_BOUNDS",
    "SCALE_STRUCTURES",
    "StudentT",
    "StudentTParams",
    "StudentTStats",
    "check_dof",
    "log_t_normaliser",
    "scale_structure",
    "solve_dofs",
]

_LOG_2PI = float(np.log(2.0 * np.pi))

#: Covariance structures a t's scale matrices may have. The M-step divides each
#: component's ``u``-weighted moment by its own ``sum w``; a structure pooled over
#: components (tied) or constrained across them would need the weights inside its fit.
SCALE_STRUCTURES = ("full", "diag")


def scale_structure(covariance_type: Any) -> CovarianceStructure:
    """The covariance structure of a t's scale matrices (ValueError for unsupported ones)."""
    if not isinstance(covariance_type, str) or covariance_type not in SCALE_STRUCTURES:
        raise ValueError(
            f"covariance_type must be 'full' or 'diag' for a Student-t, got {covariance_type!r}"
        )
    return get_structure(covariance_type)


class StudentTParams(NamedTuple):
    mean: np.ndarray  # (K, D) locations
    covariance: np.ndarray  # (K, D, D) full or (K, D) diag scale matrices
    dof: np.ndarray  # (K,) degrees of freedom


class StudentTStats(NamedTuple):
    nk: np.ndarray  # (K,) sum w
    uk: np.ndarray  # (K,) sum w u
    s1: np.ndarray  # (K, D) sum w u x
    s2: np.ndarray  # sum w u x x' in the covariance structure's layout
    dof_term: np.ndarray  # (K,) sum w (log u - u + psi(h) - log h), h = (dof + D)/2


class StudentT(Distribution):
    """K multivariate Student-t components over all D columns.

    Parameters
    ----------
    covariance_type : {"full", "diag"}, default="full"
        Structure of the scale matrices.
    reg_covar : float, default=1e-6
        Added to the diagonal of every scale matrix in the M-step.
    dof : "estimate" or float, default="estimate"
        Estimate each component's degrees of freedom (within ``dof_bounds``) or keep
        them fixed at this value.
    dof_bounds : (float, float), default=:data:`DOF_BOUNDS`
        Interval of the estimated degrees of freedom.
    """

    name = "StudentT"
    params_type = StudentTParams
    #: rows per block of the E-step (None: chosen from the structure's work per row)
    block_rows: int | None = None

    def __init__(
        self,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        dof: Any = "estimate",
        *,
        dof_bounds: tuple[float, float] = DOF_BOUNDS,
    ):
        self.structure: CovarianceStructure = scale_structure(covariance_type)
        self.covariance_type = covariance_type
        self.reg_covar = check_real(reg_covar, "reg_covar", 0.0)
        self.fixed_dof = check_dof(dof)
        self.dof = dof
        self.dof_bounds = check_dof_bounds(dof_bounds)

    def __repr__(self) -> str:
        bounds = "" if self.dof_bounds == DOF_BOUNDS else f", dof_bounds={self.dof_bounds!r}"
        return (
            f"StudentT(covariance_type={self.covariance_type!r}, reg_covar={self.reg_covar!r}, "
            f"dof={self.dof!r}{bounds})"
        )

    def check_params(self, params: StudentTParams, n_components: int | None = None) -> None:
        mean = np.asarray(params.mean, dtype=np.float64)
        if mean.ndim != 2 or (n_components is not None and len(mean) != n_components):
            raise ValueError(f"StudentT mean must have shape (K, D), got {mean.shape}")
        if not np.all(np.isfinite(mean)):
            raise ValueError("StudentT mean must be finite")
        self.structure.check(params.covariance, *mean.shape)  # shape, symmetric, PD
        dof = np.asarray(params.dof, dtype=np.float64)
        if dof.shape != (len(mean),) or not np.all(np.isfinite(dof)) or np.any(dof <= 0):
            raise ValueError("StudentT dof must be finite and positive, one per component")

    @property
    def estimates_dofs(self) -> bool:
        """Whether the M-step estimates the degrees of freedom (else they stay fixed)."""
        return self.fixed_dof is None

    def validate(self, X: Any, *, columns=None) -> np.ndarray:
        arr = super().validate(X, columns=columns)
        if np.isnan(arr).any():
            raise ValueError(f"{self.name}: X has missing values (NaN), which a t does not support")
        return arr

    # ---------------------------------------------------------------- the kernel
    def _blocks(self, params: StudentTParams, X: np.ndarray, log_weights=None):
        """Row blocks of ``X`` (float64) with what the E-step quantities are made of.

        Yields ``(slice, rows, delta, log1p(delta/nu), work, log joint)``: squared
        Mahalanobis distances (B, K), their log term, the structure's work arrays (for
        its moments) and ``log_weights_k + log t_k(x)`` (B, K).
        """
        st = self.structure
        means = np.asarray(params.mean, dtype=np.float64)
        K, D = means.shape
        prec_chol = st.precision_cholesky(np.asarray(params.covariance, dtype=np.float64))
        nu = np.asarray(params.dof, dtype=np.float64)
        const = log_t_normaliser(nu, D) - 0.5 * D * _LOG_2PI
        const = const + st.log_det_precision_cholesky(prec_chol, D)
        if log_weights is not None:
            const = const + log_weights
        # offset 0: the structure's log-density is then -delta/2
        cache = st.prepare(means, prec_chol, np.zeros(K), np.float64)
        size = self.block_rows or block_rows(st.work_per_row(K, D) + 8 * K)
        half_power = 0.5 * (nu + D)
        for start in range(0, len(X), size):
            sl = slice(start, start + size)
            rows = np.asarray(X[sl], dtype=np.float64)
            neg_half_delta, work = st.log_density(rows, cache)
            # (in place where possible: these (B, K) passes are most of an E-step's time)
            delta = neg_half_delta * -2.0
            # round-off of the expanded quadratic form can give tiny negative distances
            np.maximum(delta, 0.0, out=delta)
            log_term = delta / nu
            np.log1p(log_term, out=log_term)
            joint = log_term * -half_power
            joint += const
            yield sl, rows, delta, log_term, work, joint

    def _weighted_stats(self, params, rows, tau, delta, log_term, work) -> tuple:
        """A block's statistics for weights ``tau`` (B, K): (nk, uk, s1, s2, dof_term)."""
        nu = np.asarray(params.dof, dtype=np.float64)
        D = rows.shape[1]
        u = delta + nu
        np.divide(nu + D, u, out=u)
        # log u = log1p(D/nu) - log1p(delta/nu), without cancellation near u = 1
        log_u_minus_u = np.log1p(D / nu) - log_term
        log_u_minus_u -= u
        log_u_minus_u *= tau
        nk = tau.sum(axis=0)
        u *= tau
        uk, s1, s2 = self.structure.block_stats(rows, u, work)
        half = 0.5 * (nu + D)
        dof_term = log_u_minus_u.sum(axis=0) + nk * (special.digamma(half) - np.log(half))
        return nk, uk, s1, s2, dof_term

    def _empty_stats(self, K: int, D: int) -> StudentTStats:
        s2 = self.structure.pack_second_moments(np.zeros((K, D, D)))
        return StudentTStats(np.zeros(K), np.zeros(K), np.zeros((K, D)), s2, np.zeros(K))

    # ---------------------------------------------------------------- the contract
    def log_prob(self, params: StudentTParams, X: np.ndarray) -> np.ndarray:
        """Log-density (N, K) of each row under each component."""
        return self.log_joint(params, None, X)

    def log_joint(self, params: StudentTParams, log_weights, X: np.ndarray) -> np.ndarray:
        """``log_weights_k + log t_k(x)`` (N, K) (``log_weights`` None: the densities)."""
        out = np.empty((len(X), len(params.dof)))
        for sl, _, _, _, _, lj in self._blocks(params, X, log_weights):
            out[sl] = lj
        return out

    def suff_stats(self, X: np.ndarray, weights: Any, params: StudentTParams | None = None):
        """Statistics weighted by ``weights`` (N, K), with ``u`` at ``params``.

        Without ``params`` they are taken at ``u = 1`` (the Gaussian limit): an M-step
        from them gives the weighted means and covariances, which is how a fit starts
        from responsibilities.
        """
        w = check_weights(weights, len(X))
        K, D = w.shape[1], X.shape[1]
        if params is None:
            # dof = 1e300 gives u = 1 to the last bit, and finite log terms
            params = StudentTParams(
                np.zeros((K, D)), self.structure.identity(K, D), np.full(K, 1e300)
            )
        totals = None
        for sl, rows, delta, log_term, work, _ in self._blocks(params, X):
            block = self._weighted_stats(params, rows, w[sl], delta, log_term, work)
            totals = add_blocks(totals, block)
        return self._empty_stats(K, D) if totals is None else StudentTStats(*totals)

    def mstep(
        self, stats: StudentTStats, prior: Any = None, previous: Any = None
    ) -> StudentTParams:
        """Location and scale in closed form, then each ``dof`` from its score equation.

        ``previous`` (the parameters the E-step used) is where the search for the new
        degrees of freedom starts.
        """
        nk = np.asarray(stats.nk, dtype=np.float64)
        empty = ~(nk > 0) | ~(np.asarray(stats.uk) > 0)
        if empty.any():
            raise ValueError(
                f"component(s) {np.flatnonzero(empty).tolist()} have zero total weight, so "
                "their location is undefined; re-seed them or decrease n_components"
            )
        params, bad = self._estimate(stats, prior, empty, previous)
        if bad.any():
            raise ValueError(
                f"component(s) {np.flatnonzero(bad).tolist()} have a singular scale matrix; "
                "increase reg_covar, decrease n_components, or scale the data"
            )
        dofs = self._dofs(stats, ~empty, previous)
        return params._replace(dof=dofs)

    def _estimate(self, stats: StudentTStats, prior: Any, skip: np.ndarray, previous: Any):
        """Locations and scales of the components not in ``skip`` (placeholders there),
        the components that could not be estimated, ``dof`` unset (zeros)."""
        if prior is not None:
            raise ValueError(f"{self.name}: conjugate priors are not supported; use reg_covar")
        st = self.structure
        nk = np.asarray(stats.nk, dtype=np.float64)
        uk = np.asarray(stats.uk, dtype=np.float64)
        K, D = np.shape(stats.s1)
        safe_nk, safe_uk = np.where(skip, 1.0, nk), np.where(skip, 1.0, uk)
        prev_means = prev_chol = None
        if previous is not None and not st.exact:  # an iterative M-step starts there
            prev_means = np.asarray(previous.mean, dtype=np.float64)
            prev_chol = st.precision_cholesky(np.asarray(previous.covariance, dtype=np.float64))
        # The structure's moment estimate with weights w*u gives sum w u (x-mu)(x-mu)' /
        # sum w u; the scale divides by sum w instead.
        means, moment = st.estimate(safe_uk, stats.s1, stats.s2, prev_means, prev_chol, 0.0)
        ratio = (safe_uk / safe_nk).reshape((K,) + (1,) * (np.ndim(moment) - 1))
        covs = moment * ratio + self.reg_covar * st.identity(K, D)
        bad = skip | ~st.valid_components(covs, K) | ~np.all(np.isfinite(means), axis=1)
        return StudentTParams(means, covs, np.zeros(K)), bad

    def _dofs(self, stats: StudentTStats, active: np.ndarray, previous: Any) -> np.ndarray:
        """ECM's degrees of freedom: the roots of the score equations of the ``active``
        components (the search starts at ``previous``); the others keep ``previous``."""
        K = len(active)
        if not self.estimates_dofs:
            return np.full(K, self.fixed_dof)
        if previous is None:
            dofs, start = self.starting_dofs(K), None
        else:
            dofs = np.clip(np.asarray(previous.dof, dtype=np.float64), *self.dof_bounds)
            start = dofs[active]
        nk = np.asarray(stats.nk, dtype=np.float64)[active]
        c = np.asarray(stats.dof_term, dtype=np.float64)[active] / nk
        dofs[active] = solve_dofs(c, *self.dof_bounds, start=start)
        return dofs

    def starting_dofs(self, n_components: int, dofs: Any = None) -> np.ndarray:
        """(K,) starting degrees of freedom: the fixed value, or ``dofs`` (default
        :data:`DEFAULT_START_DOF`) clipped into ``dof_bounds``."""
        if not self.estimates_dofs:
            return np.full(n_components, self.fixed_dof)
        start = DEFAULT_START_DOF if dofs is None else dofs
        start = np.broadcast_to(np.asarray(start, dtype=np.float64), (n_components,))
        return np.clip(start, *self.dof_bounds)

    def init_params(self, X: Any, resp: Any, rng: np.random.Generator | None = None):
        """Gaussian moments of the responsibility-weighted data, with the starting dof."""
        X = self.validate(X)
        w = check_weights(resp, len(X))
        stats = self.suff_stats(X, w)
        if not np.all(stats.nk > 0):
            empty = np.flatnonzero(~(stats.nk > 0)).tolist()
            raise ValueError(f"component(s) {empty} have zero total weight")
        params, bad = self.estimate(stats, None, None, np.zeros(w.shape[1], dtype=bool))
        if bad.any():
            raise ValueError(
                f"component(s) {np.flatnonzero(bad).tolist()} have a singular scale matrix; "
                "increase reg_covar, decrease n_components, or scale the data"
            )
        return params

    def sample(self, params_k: StudentTParams, n: int, rng: np.random.Generator) -> np.ndarray:
        """``mean + z / sqrt(g)``, ``z ~ N(0, scale)``, ``g ~ chi2(dof) / dof``."""
        mean = np.asarray(params_k.mean, dtype=np.float64)
        cov = np.asarray(params_k.covariance, dtype=np.float64)
        full = self.structure.to_full(cov[None], 1, mean.size)[0]
        z = rng.multivariate_normal(np.zeros(mean.size), full, size=n, method="cholesky")
        g = rng.chisquare(float(params_k.dof), size=n) / float(params_k.dof)
        return mean + z / np.sqrt(g)[:, None]

    def n_parameters(self, n_components: int, n_features: int) -> int:
        n_dofs = n_components if self.estimates_dofs else 0
        return (
            n_components * n_features
            + self.structure.n_parameters(n_components, n_features)
            + n_dofs
        )

    # ---------------------------------------------------------------- as a mixture component
    def init_features(self, X: np.ndarray) -> np.ndarray:
        """k-means++ starts on the data themselves (the estimators have centred them)."""
        return X

    holdable_fields = ("mean", "covariance", "dof")

    def held_stats(self, stats, previous, fields):
        """Hold any of ``mean``, ``covariance`` (the scale) and ``dof``. ECM's CM-steps
        given the held ones: held locations ``m`` give the scale
        ``sum w u (x - m)(x - m)' / sum w`` (the ``u``-weighted moments re-expressed about
        ``m``, first moments then zero); a held scale leaves the location
        ``sum w u x / sum w u``; held degrees of freedom skip their step."""
        stats = super().held_stats(stats, previous, fields)
        if stats is None or "mean" not in fields:
            return stats
        centre = np.asarray(previous.mean, dtype=np.float64)
        uk = np.asarray(stats.uk, dtype=np.float64)
        _, _, s2 = self.structure.recentre(uk, np.asarray(stats.s1), np.asarray(stats.s2), centre)
        return stats._replace(s1=np.zeros_like(centre), s2=s2)

    def mixture_estep(self, params: StudentTParams, log_weights, batch, *, beta=1.0, hard=False):
        """A mixture's whole E-step in one blocked pass: (nk, statistics, objective).

        ``batch`` is ``(X, sample weights or None, ...)``. Responsibilities are
        proportional to ``(w_k t_k(x))**beta`` (``hard``: one-hot at the largest), times
        the sample weights; the objective is the (tempered or classification)
        log-likelihood, as :meth:`emkit.models.mixture.model.MixtureModel.estep_variant`.
        """
        X, w = batch[0], batch[1]
        K, D = len(params.dof), X.shape[1]
        totals, value = None, 0.0
        for sl, rows, delta, log_term, work, tau in self._blocks(params, X, log_weights):
            columns = tau.T  # (K, B), contiguous when the structure computed it so
            if not hard and columns.flags.c_contiguous:
                # compiled: responsibilities times the sample weights, in one pass
                value += normalise_columns(columns, None if w is None else w[sl], beta)
            else:
                objective = posterior_in_place(tau, beta, hard)
                if w is not None:
                    tau *= w[sl, None]
                    value += float(np.dot(w[sl], objective))
                else:
                    value += float(np.sum(objective))
            totals = add_blocks(
                totals, self._weighted_stats(params, rows, tau, delta, log_term, work)
            )
        stats = self._empty_stats(K, D) if totals is None else StudentTStats(*totals)
        return stats.nk, stats, value

    def estimate(self, stats: StudentTStats, prior: Any, previous: Any, skip: np.ndarray):
        """The M-step of every component not in ``skip`` (empty ones), without raising.

        Returns the parameters and the components that could not be estimated (in
        ``skip``, no ``u`` weight, a singular scale or non-finite locations); their
        entries are placeholders for :meth:`reseed` to replace. ``previous`` None marks
        a start from responsibilities (statistics at ``u = 1``): the degrees of freedom
        then start at the fixed value or :data:`DEFAULT_START_DOF`.
        """
        skip = np.asarray(skip, dtype=bool) | ~(np.asarray(stats.uk) > 0)
        params, bad = self._estimate(stats, prior, skip, previous)
        if previous is None:
            dofs = self.starting_dofs(len(skip))
        else:
            dofs = self._dofs(stats, ~skip, previous)
        return params._replace(dof=dofs), bad

    def reseed(self, weights: np.ndarray, params: StudentTParams, bad: np.ndarray):
        """Re-seed each ``bad`` component by splitting the heaviest good one along its
        main axis (warns with :class:`~emkit.exceptions.DegenerateComponentWarning`);
        the two halves share its scale matrix and degrees of freedom."""
        weights, means, covs, sources = split_components(
            weights,
            params.mean,
            params.covariance,
            bad,
            self.structure,
            self.reg_covar,
            "scale matrix",
        )
        dofs = np.array(params.dof, dtype=np.float64)
        for k, j in sources.items():
            dofs[k] = dofs[j]
        return weights, StudentTParams(means, covs, dofs)

    def pack(self, params: StudentTParams) -> np.ndarray:
        """Locations, scales (the structure's unconstrained ``pack``) and, when they are
        estimated, the log degrees of freedom, as one vector (for SQUAREM)."""
        parts = [
            np.ravel(np.asarray(params.mean, dtype=np.float64)),
            self.structure.pack(params.covariance),
        ]
        if self.estimates_dofs:
            parts.append(np.log(np.asarray(params.dof, dtype=np.float64)))
        return np.concatenate(parts)

    def unpack(self, vec: np.ndarray, like: StudentTParams) -> StudentTParams:
        """Inverse of :meth:`pack` (``like`` gives the shapes and any fixed dofs); degrees
        of freedom are clipped into ``dof_bounds``. Raises ``ValueError`` when ``vec``
        gives invalid scales."""
        K, D = np.shape(like.mean)
        n_cov = self.structure.n_packed(K, D)
        n = K * D + n_cov + (K if self.estimates_dofs else 0)
        vec = np.asarray(vec, dtype=np.float64)
        if vec.shape != (n,):
            raise ValueError(f"expected a vector of length {n}, got {vec.shape}")
        covs = self.structure.unpack(vec[K * D : K * D + n_cov], K, D)
        if self.estimates_dofs:
            with np.errstate(over="ignore", under="ignore"):
                dofs = np.clip(np.exp(vec[K * D + n_cov :]), *self.dof_bounds)
        else:
            dofs = np.array(like.dof, dtype=np.float64)
        return StudentTParams(vec[: K * D].reshape(K, D).copy(), covs, dofs)

    def perturb(
        self, params: StudentTParams, rng: np.random.Generator, scale: float = 0.05
    ) -> StudentTParams:
        """Locations moved by ``scale`` times the scales' square roots in random
        directions (between annealing stages)."""
        means = np.asarray(params.mean)
        K, D = means.shape
        full = self.structure.to_full(np.asarray(params.covariance), K, D)
        sd = np.sqrt(np.diagonal(full, axis1=1, axis2=2))
        return params._replace(mean=means + scale * sd * rng.standard_normal((K, D)))

    # ---------------------------------------------------------------- ECME
    def dof_derivatives(self, params: StudentTParams, log_weights, batch):
        """The mixture's observed-data log-likelihood of ``batch``, with its gradient (K,)
        and Hessian (K, K) in ``log dofs``: ``((gradient, Hessian), value)``, additive
        over batches.

        With ``l_ik = log(w_k t_k(x_i))``, ``r`` the responsibilities and ``a_ik``/``b_ik``
        the first/second derivatives of ``l_ik`` in ``log nu_k``, the gradient is
        ``sum_i r_ik a_ik`` and the Hessian ``sum_i [delta_kj r_ik (b_ik + a_ik^2) - r_ik
        a_ik r_ij a_ij]`` (times the sample weights). Rows with a known component
        (``batch[2] >= 0``) count ``l_{i y_i}`` alone.
        """
        X, w = batch[0], batch[1]
        labels = batch[2] if len(batch) > 2 else None
        nu = np.asarray(params.dof, dtype=np.float64)
        K, D = len(nu), X.shape[1]
        dpsi = special.digamma(0.5 * (nu + D)) - special.digamma(0.5 * nu)
        dpsi1 = special.polygamma(1, 0.5 * (nu + D)) - special.polygamma(1, 0.5 * nu)
        grad, hess, value = np.zeros(K), np.zeros((K, K)), 0.0
        for sl, _, delta, log_term, _, r in self._blocks(params, X, log_weights):
            known = None if labels is None else np.flatnonzero(labels[sl] >= 0)
            if known is not None:
                y = labels[sl][known]
                known_rows = r[known, y]
            rows = posterior_in_place(r, 1.0, False)
            if known is not None:
                rows[known] = known_rows
                r[known] = 0.0
                r[known, y] = 1.0
            nd = nu + delta
            # d l / d nu = (psi((nu+D)/2) - psi(nu/2) - log1p(delta/nu) + (delta-D)/(nu+delta)) / 2
            d1 = 0.5 * (dpsi - log_term + (delta - D) / nd)
            d2 = 0.5 * (0.5 * dpsi1 + delta / (nu * nd) - (delta - D) / nd**2)
            a = nu * d1
            b = nu * nu * d2 + a
            if w is not None:
                value += float(np.dot(w[sl], rows))
                rw = r * w[sl, None]
            else:
                value += float(np.sum(rows))
                rw = r
            ra = rw * a
            grad += ra.sum(axis=0)
            hess += np.diag(np.sum(rw * (b + a * a), axis=0)) - ra.T @ (r * a)
        return (grad, hess), value

    def observed_step(self, params: StudentTParams, log_weights, evaluate) -> StudentTParams:
        """ECME's CM-step: the degrees of freedom that maximise the mixture's observed-data
        log-likelihood, the weights, locations and scales fixed (Liu & Rubin 1995).

        ``evaluate(fn, params)`` sums ``fn(params, batch)`` over the data's batches (one
        pass) and ``evaluate.roundoff(value)`` is the objective's round-off (see
        :class:`emkit.engine.ecme.ECME`). Fixed degrees of freedom: ``params`` unchanged.
        """
        if not self.estimates_dofs:
            return params

        def derivatives(p: StudentTParams, batch: Any):
            return self.dof_derivatives(p, log_weights, batch)

        def evaluate_at(dofs: np.ndarray):
            (grad, hess), value = evaluate(derivatives, params._replace(dof=dofs))
            return value, grad, hess

        dofs = np.asarray(params.dof, dtype=np.float64)
        roundoff: Callable[[float], float] = evaluate.roundoff
        return params._replace(dof=maximise_log_dofs(evaluate_at, dofs, self.dof_bounds, roundoff))
