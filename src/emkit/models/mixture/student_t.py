"""Mixtures of multivariate Student-t distributions, fitted by ECM or ECME.

Generative model (McLachlan & Peel 2000, ch. 7)::

    z_i ~ Categorical(weights)
    u_i | z_i = k ~ Gamma(dofs[k] / 2, rate=dofs[k] / 2)
    x_i | z_i = k, u_i ~ Normal(means[k], covariances[k] / u_i)

so that ``x_i | z_i = k`` is a multivariate t with location ``means[k]``, scale
matrix ``covariances[k]`` and ``dofs[k]`` degrees of freedom. The latent precision
weight ``u_i`` is what makes the fit robust: far from a component's centre its
conditional expectation ``u_ik = (nu_k + D) / (nu_k + delta_ik)`` (``delta`` the
squared Mahalanobis distance) is small, and the point hardly moves that component.

The E-step returns additive statistics: the sums over the data of ``tau``, ``tau u``,
``tau u x``, ``tau u x x'`` (in the covariance structure's packed form) and
``tau (log u - u)``, with ``tau`` the responsibilities (times sample weights).

Two algorithms, both monotone in the observed-data log-likelihood:

* **ECM** (Meng & Rubin 1993; here an ordinary EM, because the expected complete-data
  log-likelihood ``Q`` separates): the M-step sets the weights, then the locations and
  scales given the ``u_ik``, then each ``nu_k`` as the root of the score equation of
  ``Q`` in ``nu_k`` (concave, so the root is the maximiser), found with
  :func:`scipy.optimize.brentq`. Confined to :data:`DOF_BOUNDS` the root is the
  maximiser of ``Q`` over the interval, so the step is a full conditional
  maximisation there and never lowers ``Q`` (the generalised-EM condition; with a
  starting ``nu`` inside the bounds, which the estimator ensures).
* **ECME** (Liu & Rubin 1994, 1995; Peel & McLachlan 2000): the same first CM-step,
  then the ``nu_k`` maximise the *observed-data* log-likelihood of the mixture at the
  new weights, locations and scales. That needs the data, so it is not an M-step of
  the engine's protocol: the :class:`ECME` scheme runs the extra passes itself (each
  pass maps :meth:`StudentTMixtureModel.dof_derivatives` over the data source's
  batches on the engine's executor, so only parameters go out and sums come back),
  and keeps the engine's monitor, convergence test and monotonicity certificate (one
  record per full cycle). ``nu`` converges much faster than under ECM.

With a fixed ``dof`` only the first CM-step remains and ECM and ECME coincide; as
``dof`` grows the model tends to a Gaussian mixture.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from emkit._logspace import log_normalize
from emkit._validation import check_array, check_int
from emkit.distributions.covariance import CovarianceStructure, block_rows, get_structure
from emkit.distributions.student_t import DOF_BOUNDS, log_t_normaliser, solve_dofs
from emkit.engine.protocol import Reseeded, unwrap_reseeded
from emkit.engine.schemes import RunContext, Scheme
from emkit.models.estimator import EMEstimator
from emkit.models.init import initial_responsibilities
from emkit.models.mixture.base import MixtureMixin, split_components
from emkit.models.mixture.gaussian_model import GaussianMixtureModel

__all__ = [
    "DOF_BOUNDS",
    "ECME",
    "StudentTMixture",
    "StudentTMixtureModel",
    "TMMParams",
    "TMMStats",
]

_LOG_2PI = np.log(2.0 * np.pi)


#: Degrees of freedom at which an estimated-dof fit starts (moderately heavy tails).
DEFAULT_START_DOF = 10.0

COVARIANCE_TYPES = ("full", "diag")
ALGORITHMS = ("ecme", "ecm")


class TMMParams(NamedTuple):
    weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, D) locations
    covariances: np.ndarray  # scale matrices: (K, D, D) full, (K, D) diag
    precisions_cholesky: np.ndarray  # U with inv(scale) = U U', same shape
    dofs: np.ndarray  # (K,) degrees of freedom


class TMMStats(NamedTuple):
    nk: np.ndarray  # (K,) sum tau
    uk: np.ndarray  # (K,) sum tau u
    s1: np.ndarray  # (K, D) sum tau u x
    s2: np.ndarray  # sum tau u x x' in the covariance structure's form
    log_u: np.ndarray  # (K,) sum tau (log u - u)


# ---------------------------------------------------------------------- the EM model
class StudentTMixtureModel:
    """EM model of a Student-t mixture; data batches are ``(X, sample_weight or None)``.

    ``mstep`` is the ECM step (weights, locations and scales, then the degrees of
    freedom from ``Q``). For ECME pass ``scheme=ECME()`` to :func:`emkit.em`, which
    replaces the second CM-step by a maximisation of the observed-data likelihood.

    Parameters
    ----------
    n_components : int
    covariance_type : {"full", "diag"}
        Structure of the scale matrices.
    reg_covar : float
        Added to the diagonal of every scale matrix in the M-step.
    dof : "estimate" or float
        Estimate each component's degrees of freedom (within :data:`DOF_BOUNDS`), or
        keep them all fixed at this positive value.
    init : str
        How ``init_params`` starts: one of "kmeans++", "kmeans", "random",
        "random_from_data" (as :class:`~emkit.models.mixture.gaussian_model.GaussianMixtureModel`).
    dof_bounds : (float, float)
        Interval of the estimated degrees of freedom.
    """

    def __init__(
        self,
        n_components: int,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        dof: str | float = "estimate",
        init: str = "kmeans++",
        dof_bounds: tuple[float, float] = DOF_BOUNDS,
        block_rows: int | None = None,
    ):
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {COVARIANCE_TYPES} for a Student-t mixture, "
                f"got {covariance_type!r}"
            )
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.structure: CovarianceStructure = get_structure(covariance_type)
        self.reg_covar = reg_covar
        self.estimate_dofs = _check_dof(dof) is None
        self.dof = dof
        self.init = init
        lo, hi = (float(b) for b in dof_bounds)
        if not 0 < lo < hi < np.inf:
            raise ValueError(f"dof_bounds must satisfy 0 < low < high < inf, got {dof_bounds}")
        self.dof_bounds = (lo, hi)
        self.block_rows = block_rows

    # ------------------------------------------------------------------ the three steps
    def init_params(self, data: Any, rng: np.random.Generator) -> TMMParams:
        """Gaussian moments of a k-means-type start, with the starting degrees of freedom."""
        X, w = data
        resp = initial_responsibilities(self.init, X, w, self.n_components, rng)
        return self.params_from_responsibilities(X, w, resp)

    def params_from_responsibilities(self, X, w, resp, dofs=None) -> TMMParams:
        """Weights, means and covariances of the responsibility-weighted data (u = 1)."""
        gmm = GaussianMixtureModel(self.n_components, self.covariance_type, self.reg_covar)
        g = gmm.params_from_responsibilities(X, w, resp)
        return TMMParams(
            g.weights, g.means, g.covariances, g.precisions_cholesky, self.starting_dofs(dofs)
        )

    def starting_dofs(self, dofs=None) -> np.ndarray:
        """(K,) starting degrees of freedom: the fixed value, or ``dofs`` clipped into bounds."""
        K = self.n_components
        if not self.estimate_dofs:
            return np.full(K, float(self.dof))
        if dofs is None:
            dofs = DEFAULT_START_DOF
        return np.clip(np.broadcast_to(np.asarray(dofs, dtype=np.float64), (K,)), *self.dof_bounds)

    def estep(self, params: TMMParams, batch: Any) -> tuple[TMMStats, float]:
        X, w = batch
        st = self.structure
        D = params.means.shape[1]
        nu = params.dofs
        log1p_d_nu = np.log1p(D / nu)
        totals, value = None, 0.0
        for Xb, sl, delta, work, lj in self._blocks(params, X):
            ll_rows = log_normalize(lj)
            tau = lj
            if w is not None:
                tau *= w[sl, None]
                value += float(np.dot(w[sl], ll_rows))
            else:
                value += float(np.sum(ll_rows))
            u = (nu + D) / (nu + delta)
            # log u = log1p(D/nu) - log1p(delta/nu), without cancellation near u = 1
            log_u = log1p_d_nu - np.log1p(delta / nu)
            tu = tau * u
            uk, s1, s2 = st.block_stats(Xb, tu, work)
            block = (tau.sum(axis=0), uk, s1, s2, np.sum(tau * (log_u - u), axis=0))
            if totals is None:
                totals = [np.array(b, dtype=np.float64) for b in block]
            else:
                for acc, b in zip(totals, block):
                    acc += b
        return TMMStats(*totals), value

    def mstep(self, stats: TMMStats, params: TMMParams) -> TMMParams | Reseeded:
        """ECM step: weights, locations and scales given ``u``; then each ``nu`` from ``Q``."""
        new = self.update_location_scale(stats, params)
        new, reseeded = unwrap_reseeded(new)
        if self.estimate_dofs:
            new = new._replace(dofs=self.update_dofs_ecm(stats, params))
        return Reseeded(new) if reseeded else new

    # ------------------------------------------------------------------ CM-steps
    def update_location_scale(self, stats: TMMStats, params: TMMParams) -> TMMParams | Reseeded:
        """First CM-step (closed form): weights, locations and scales; ``dofs`` unchanged.

        ``mu_k = sum tau u x / sum tau u`` and ``Sigma_k = sum tau u (x - mu_k)(x - mu_k)'
        / sum tau`` (+ ``reg_covar`` on the diagonal).
        """
        st = self.structure
        K, D = params.means.shape
        nk = np.asarray(stats.nk, dtype=np.float64)
        uk = np.asarray(stats.uk, dtype=np.float64)
        total = nk.sum()
        if not total > 0:
            raise ValueError("the responsibilities sum to zero: every sample weight is zero")
        empty = (nk <= total * 1e-12) | ~(uk > 0)
        safe_nk = np.where(empty, 1.0, nk)
        safe_uk = np.where(empty, 1.0, uk)
        # the structure's moment estimate with weights tau*u gives sum tau u (x-mu)(x-mu)'
        # / sum tau u; Sigma divides by sum tau instead.
        means, moment = st.estimate(
            safe_uk, stats.s1, stats.s2, params.means, params.precisions_cholesky, 0.0
        )
        ratio = (safe_uk / safe_nk).reshape((K,) + (1,) * (np.ndim(moment) - 1))
        covs = moment * ratio + self.reg_covar * st.identity(K, D)
        weights = nk / total
        bad = empty | ~st.valid_components(covs, K) | ~np.all(np.isfinite(means), axis=1)
        if not bad.any():
            return TMMParams(weights, means, covs, st.precision_cholesky(covs), params.dofs)
        return Reseeded(self._reseed(weights, means, covs, params.dofs, bad))

    def update_dofs_ecm(self, stats: TMMStats, params: TMMParams) -> np.ndarray:
        """Second CM-step of ECM: each ``nu_k`` maximises ``Q`` (McLachlan & Peel 2000, 7.5).

        Solves ``log(nu/2) - psi(nu/2) + 1 + c_k = 0`` with ``c_k = sum tau (log u - u) /
        sum tau + psi((nu_old + D)/2) - log((nu_old + D)/2)``. The left side falls from
        +inf to ``1 + c_k < 0`` (``log u - u <= -1`` and ``psi(y) < log y``), so the root
        is unique; it is searched in ``log nu`` within :data:`DOF_BOUNDS`.
        """
        D = params.means.shape[1]
        lo, hi = self.dof_bounds
        nu_old = np.asarray(params.dofs, dtype=np.float64)
        nk = np.asarray(stats.nk, dtype=np.float64)
        half = 0.5 * (nu_old + D)
        c = stats.log_u / np.where(nk > 0, nk, 1.0) + special.digamma(half) - np.log(half)
        active = nk > nk.sum() * 1e-12
        out = nu_old.copy()
        out[active] = solve_dofs(c[active], lo, hi)
        return out

    def dof_derivatives(
        self, params: TMMParams, batch: Any
    ) -> tuple[tuple[np.ndarray, np.ndarray], float]:
        """Observed-data log-likelihood of ``batch`` at ``params``, with its gradient (K,)
        and Hessian (K, K) with respect to ``log dofs`` (additive over batches).

        For ECME: with ``l_ik = log(w_k t_k(x_i))``, ``r`` the responsibilities and
        ``a_ik``/``b_ik`` the first/second derivatives of ``l_ik`` in ``log nu_k``, the
        gradient is ``sum_i r_ik a_ik`` and the Hessian ``sum_i [delta_kj r_ik (b_ik +
        a_ik^2) - r_ik a_ik r_ij a_ij]`` (times the sample weights).
        """
        X, w = batch
        K, D = params.means.shape
        nu = params.dofs
        dpsi = special.digamma(0.5 * (nu + D)) - special.digamma(0.5 * nu)
        dpsi1 = special.polygamma(1, 0.5 * (nu + D)) - special.polygamma(1, 0.5 * nu)
        grad, hess, value = np.zeros(K), np.zeros((K, K)), 0.0
        for _, sl, delta, _, lj in self._blocks(params, X):
            ll_rows = log_normalize(lj)
            r = lj
            nd = nu + delta
            # d l / d nu = (psi((nu+D)/2) - psi(nu/2) - log1p(delta/nu) + (delta-D)/(nu+delta)) / 2
            d1 = 0.5 * (dpsi - np.log1p(delta / nu) + (delta - D) / nd)
            d2 = 0.5 * (0.5 * dpsi1 + delta / (nu * nd) - (delta - D) / nd**2)
            a = nu * d1
            b = nu * nu * d2 + a
            if w is not None:
                value += float(np.dot(w[sl], ll_rows))
                rw = r * w[sl, None]
            else:
                value += float(np.sum(ll_rows))
                rw = r
            ra = rw * a
            grad += ra.sum(axis=0)
            hess += np.diag(np.sum(rw * (b + a * a), axis=0)) - ra.T @ (r * a)
        return (grad, hess), value

    # ------------------------------------------------------------------ SQUAREM hooks
    def pack(self, params: TMMParams) -> np.ndarray:
        """Parameters as one unconstrained float64 vector (for SQUAREM acceleration of ECM).

        Centred log weights, the locations, the scales (full: log-diagonal and
        strictly-lower entries of the lower Cholesky factor; diag: log variances) and,
        when they are estimated, the log degrees of freedom.
        """
        log_w = np.log(np.asarray(params.weights, dtype=np.float64))
        cov = np.asarray(params.covariances, dtype=np.float64)
        if self.covariance_type == "full":
            chol = np.linalg.cholesky(cov)
            lower = np.tril_indices(cov.shape[-1], -1)
            cov_part = [
                np.log(np.diagonal(chol, axis1=1, axis2=2)).ravel(),
                chol[:, lower[0], lower[1]].ravel(),
            ]
        else:
            cov_part = [np.log(cov).ravel()]
        dof_part = [np.log(params.dofs)] if self.estimate_dofs else []
        return np.concatenate(
            [log_w - log_w.mean(), np.ravel(params.means), *cov_part, *dof_part]
        ).astype(np.float64)

    def unpack(self, vec: np.ndarray, like: TMMParams) -> TMMParams:
        """Inverse of :meth:`pack` (``like`` gives the shapes and any fixed dofs).

        Degrees of freedom are clipped into ``dof_bounds``. Raises ``ValueError`` when
        the vector does not give valid parameters.
        """
        K, D = np.shape(like.means)
        n_cov = K * D * (D + 1) // 2 if self.covariance_type == "full" else K * D
        n_dof = K if self.estimate_dofs else 0
        vec = np.asarray(vec, dtype=np.float64)
        if vec.shape != (K + K * D + n_cov + n_dof,):
            raise ValueError(
                f"expected a vector of length {K + K * D + n_cov + n_dof}, got {vec.shape}"
            )
        if not np.all(np.isfinite(vec)):
            raise ValueError("the parameter vector has non-finite entries")
        logits, means = vec[:K], vec[K : K + K * D].reshape(K, D)
        cov_part = vec[K + K * D : K + K * D + n_cov]
        with np.errstate(over="ignore", under="ignore"):
            weights = np.exp(logits - logits.max())
            weights /= weights.sum()
            if self.covariance_type == "full":
                chol = np.zeros((K, D, D))
                idx = np.arange(D)
                chol[:, idx, idx] = np.exp(cov_part[: K * D]).reshape(K, D)
                lower = np.tril_indices(D, -1)
                chol[:, lower[0], lower[1]] = cov_part[K * D :].reshape(K, -1)
                covs = chol @ np.swapaxes(chol, 1, 2)
            else:
                covs = np.exp(cov_part).reshape(K, D)
            if self.estimate_dofs:
                dofs = np.clip(np.exp(vec[-K:]), *self.dof_bounds)
            else:
                dofs = np.array(like.dofs, dtype=np.float64)
        if not (np.all(weights > 0) and np.all(np.isfinite(covs))):
            raise ValueError("the parameter vector gives a zero weight or a non-finite scale")
        prec_chol = self.structure.precision_cholesky(covs)  # LinAlgError is a ValueError
        return TMMParams(weights, means, covs, prec_chol, dofs)

    # ------------------------------------------------------------------ densities
    def weighted_log_prob(self, params: TMMParams, X: np.ndarray) -> np.ndarray:
        """log(weights_k) + log t(x | location_k, scale_k, dof_k), shape (N, K)."""
        out = np.empty((len(X), params.means.shape[0]))
        for _, sl, _, _, lj in self._blocks(params, X):
            out[sl] = lj
        return out

    def _blocks(self, params: TMMParams, X: np.ndarray):
        """Yield (rows as float64, slice, squared Mahalanobis distances, work, log joints)."""
        st = self.structure
        K, D = params.means.shape
        nu = np.asarray(params.dofs, dtype=np.float64)
        with np.errstate(divide="ignore"):  # a zero weight gives log 0 = -inf: never chosen
            const = (
                np.log(params.weights)
                + log_t_normaliser(nu, D)
                - 0.5 * D * _LOG_2PI
                + st.log_det_precision_cholesky(params.precisions_cholesky, D)
            )
        # offset 0: the structure's log-density is then -delta/2
        cache = st.prepare(params.means, params.precisions_cholesky, np.zeros(K), np.float64)
        size = self.block_rows or block_rows(st.work_per_row(K, D) + 8 * K)
        half_power = 0.5 * (nu + D)
        for start in range(0, len(X), size):
            sl = slice(start, start + size)
            Xb = np.asarray(X[sl], dtype=np.float64)
            neg_half_delta, work = st.log_density(Xb, cache)
            # round-off of the expanded quadratic form can give tiny negative distances
            delta = np.maximum(-2.0 * neg_half_delta, 0.0)
            lj = const - half_power * np.log1p(delta / nu)
            yield Xb, sl, delta, work, lj

    # ------------------------------------------------------------------ repairs
    def _reseed(self, weights, means, covs, dofs, bad) -> TMMParams:
        """Re-seed each bad component by splitting the heaviest good one along its main axis."""
        st = self.structure
        weights, means, covs, sources = split_components(
            weights, means, covs, bad, st, self.reg_covar, "scale matrix"
        )
        dofs = np.array(dofs, dtype=np.float64)
        for k, j in sources.items():
            dofs[k] = dofs[j]
        return TMMParams(weights, means, covs, st.precision_cholesky(covs), dofs)


# ---------------------------------------------------------------------- ECME
class ECME(Scheme):
    """ECME for Student-t mixtures (Liu & Rubin 1994, 1995; McLachlan & Peel 2000, 7.6).

    One cycle: the E-step at the current parameters; the first CM-step (weights,
    locations, scales in closed form, ``model.update_location_scale``); then the
    degrees of freedom maximise the observed-data log-likelihood ``L`` of the whole
    data at the new weights, locations and scales. ``L`` couples the ``nu_k`` of
    different components through each row's log-sum-exp, so they are maximised
    jointly in ``log nu`` within the model's ``dof_bounds`` by a projected Newton
    method: each data pass (``model.dof_derivatives`` mapped over the batches on the
    engine's executor) returns ``L`` with its exact gradient and Hessian, a step is
    kept only if it satisfies Armijo's condition and does not lower ``L``, and the
    iteration stops when the Newton decrement is below round-off. Typically 3 to 6
    passes; they are counted in ``n_estep``.

    Every CM-step is a conditional maximisation of ``Q`` or of ``L`` itself, so ``L``
    never decreases (the engine's monotonicity check applies to each full cycle,
    recorded once). The model is used unchanged: with fixed degrees of freedom this
    is plain EM.
    """

    max_newton: int = 50

    def run(self, ctx: RunContext, params: Any) -> tuple[Any, float, float]:
        model, monitor = ctx.model, ctx.monitor
        if model.estimate_dofs:  # start inside the bounds, so that no step leaves them
            params = params._replace(dofs=np.clip(params.dofs, *model.dof_bounds))
        stats, loglik, objective = ctx.evaluate(params)
        stop = monitor.start(params, loglik, objective) or monitor.max_iter == 0
        stop = stop or monitor.stopped_by_callback
        while not stop:
            params, reseeded = unwrap_reseeded(model.update_location_scale(stats, params))
            if model.estimate_dofs:
                params = self.dof_step(ctx, params)
            stats, loglik, objective = ctx.evaluate(params)
            stop = monitor.record(params, loglik, objective, reseeded=reseeded)
        return params, loglik, objective

    def _pass(self, ctx: RunContext, params: TMMParams):
        model = ctx.model
        (grad, hess), value = ctx.executor.map_reduce(
            lambda batch: model.dof_derivatives(params, batch), ctx.source.batches()
        )
        ctx.monitor.n_estep += 1
        return value, grad, hess

    def dof_step(self, ctx: RunContext, params: TMMParams) -> TMMParams:
        """The ``nu_k`` that maximise the observed-data log-likelihood, the rest fixed."""
        lo, hi = (np.log(b) for b in ctx.model.dof_bounds)
        eta = np.clip(np.log(params.dofs), lo, hi)

        def at(eta):
            return params._replace(dofs=np.clip(np.exp(eta), *ctx.model.dof_bounds))

        current = at(eta)
        value, grad, hess = self._pass(ctx, current)
        if not np.isfinite(value):
            return params
        tiny = ctx.monitor.roundoff(value) * 1e-3
        for _ in range(self.max_newton):
            # at a bound with the gradient pointing out, a coordinate stays put
            free = ~(((eta <= lo) & (grad < 0)) | ((eta >= hi) & (grad > 0)))
            if not free.any():
                break
            step = np.zeros_like(eta)
            step[free] = _ascent_direction(grad[free], -hess[np.ix_(free, free)])
            longest = np.max(np.abs(step))
            if longest > 4.0:  # at most a factor e^4 in nu per Newton step
                step *= 4.0 / longest
            if float(grad @ step) <= tiny:
                break  # Newton decrement below round-off: converged
            t, accepted = 1.0, False
            while t > 1e-12:
                trial = np.clip(eta + t * step, lo, hi)
                moved = trial - eta
                if not np.any(moved):
                    break
                cand = at(trial)
                v, g, h = self._pass(ctx, cand)
                if np.isfinite(v) and v >= value + 1e-4 * max(float(grad @ moved), 0.0):
                    accepted = True
                    break
                t *= 0.5
            if not accepted:
                break
            eta, current, value, grad, hess = trial, cand, v, g, h
            if np.max(np.abs(moved)) < 1e-12:
                break
        return current


def _ascent_direction(grad: np.ndarray, neg_hess: np.ndarray) -> np.ndarray:
    """Newton direction ``neg_hess^-1 grad``, with eigenvalues made positive where the
    log-likelihood is not concave (so the direction always goes uphill)."""
    vals, vecs = np.linalg.eigh(0.5 * (neg_hess + neg_hess.T))
    floor = 1e-10 * max(float(np.max(np.abs(vals))), 1e-300)
    vals = np.maximum(np.abs(vals), floor)
    return vecs @ ((vecs.T @ grad) / vals)


# ---------------------------------------------------------------------- the estimator
def _check_dof(dof: Any) -> float | None:
    """None for "estimate", else the fixed positive value (clear errors otherwise)."""
    if isinstance(dof, str):
        if dof != "estimate":
            raise ValueError(f"dof must be 'estimate' or a positive number, got {dof!r}")
        return None
    if isinstance(dof, (bool, np.bool_)) or not isinstance(dof, (int, float, np.number)):
        raise TypeError(f"dof must be 'estimate' or a positive number, got {dof!r}")
    if not (np.isfinite(dof) and dof > 0):
        raise ValueError(f"dof must be 'estimate' or a positive finite number, got {dof!r}")
    return float(dof)


class StudentTMixture(MixtureMixin, EMEstimator):
    """Mixture of multivariate Student-t distributions, fitted by ECME or ECM.

    Generative model::

        z_i ~ Categorical(weights)
        u_i | z_i = k ~ Gamma(dofs[k] / 2, rate=dofs[k] / 2)
        x_i | z_i = k, u_i ~ Normal(means[k], covariances[k] / u_i)

    Each component is a multivariate t with location ``means[k]``, scale matrix
    ``covariances[k]`` (its covariance is ``dofs/(dofs - 2)`` times the scale, for
    ``dofs > 2``) and ``dofs[k]`` degrees of freedom. Heavy tails make the fit robust
    to outliers; as ``dofs`` grows it tends to a Gaussian mixture.

    Parameters
    ----------
    n_components : int, default 1
        Number of mixture components K.
    covariance_type : {"full", "diag"}, default "full"
        Structure of the scale matrices.
    dof : "estimate" or float, default "estimate"
        Estimate each component's degrees of freedom (within ``[0.1, 1e6]``,
        :data:`DOF_BOUNDS`), or fix them all at this positive value.
    algorithm : {"ecme", "ecm"}, default "ecme"
        How the degrees of freedom are updated: ECME maximises the observed-data
        log-likelihood (a few extra passes over the data per iteration, far fewer
        iterations); ECM maximises the expected complete-data log-likelihood (one
        pass per iteration). Both are monotone; they coincide when ``dof`` is fixed.
    tol : float, default 1e-3
        Stop when the mean log-likelihood per sample rises by less than ``tol``.
    reg_covar : float, default 1e-6
        Added to the diagonal of every scale matrix.
    max_iter : int, default 100
        Maximum number of iterations (full ECM/ECME cycles).
    n_init : int, default 1
        Restarts from independent seeds; the best log-likelihood is kept.
    init : {"kmeans++", "kmeans", "random", "random_from_data"} or dict, default "kmeans++"
        How to start. A dict gives starting parameters ``{"weights", "means",
        "covariances", "dofs"}`` (any subset; the rest comes from "kmeans++", and
        estimated degrees of freedom start at 10). Starting ``dofs`` are clipped into
        :data:`DOF_BOUNDS`; with a fixed ``dof`` they must equal it.
    random_state : None, int or numpy Generator
        Seed of every random choice (initialisation, restarts, ``sample``).
    warm_start : bool, default False
        Start from the previous fit's parameters (``n_init`` is then 1).
    batch_size : int, optional
        E-step (and ECME passes) over chunks of this many rows.
    progress : bool, default False
        Show a progress bar with the log-likelihood.
    verbose : int, default 0
        1 prints a summary of each fit; 2 also prints every iteration.
    check_monotone : {"warn", "raise", "off"}, default "warn"
        What to do if the log-likelihood ever drops (which ECM and ECME never do).
    accel : {None, "squarem"}, default None
        Acceleration of the ECM iteration (not available with ``algorithm="ecme"``).
    n_jobs : int, optional
        Run the ``n_init`` restarts on this many threads.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
        Locations of the components.
    covariances_ : ndarray
        Scale matrices: (K, D, D) full, (K, D) diag.
    dofs_ : ndarray of shape (n_components,)
        Degrees of freedom.
    precisions_cholesky_ : ndarray, same shape as ``covariances_``
        ``U`` with ``inv(scale) = U @ U.T``.
    converged_ : bool
    n_iter_ : int
    history_ : ndarray of shape (n_iter_,)
        Total log-likelihood after each iteration.
    loglik_ : float
        Total (weighted) log-likelihood of the training data at the fitted parameters.
    lower_bound_ : float
        ``loglik_`` per sample.
    n_estep_ : int
        Passes over the data of the kept run (E-steps and ECME's extra passes).
    n_features_in_ : int

    References
    ----------
    McLachlan, G. J. & Peel, D. (2000). *Finite Mixture Models*, ch. 7. Wiley.
    Liu, C. & Rubin, D. B. (1995). ML estimation of the t distribution using EM and
    its extensions, ECM and ECME. *Statistica Sinica* 5, 19-39.
    Peel, D. & McLachlan, G. J. (2000). Robust mixture modelling using the t
    distribution. *Statistics and Computing* 10, 339-348.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.models.mixture.student_t import StudentTMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.standard_t(3, (300, 2)) - 4, rng.standard_t(3, (300, 2)) + 4])
    >>> tm = StudentTMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(np.sort(tm.means_[:, 0]))
    array([-4.,  4.])
    >>> bool(np.all((tm.dofs_ > 1.5) & (tm.dofs_ < 6)))
    True
    """

    _fitted_attributes = (
        "weights_",
        "means_",
        "covariances_",
        "dofs_",
        "precisions_cholesky_",
        "converged_",
        "n_iter_",
        "history_",
        "loglik_",
        "n_features_in_",
    )
    _extra_attributes = ("lower_bound_", "fit_time_", "n_estep_")

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        dof: str | float = "estimate",
        algorithm: str = "ecme",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init: str | Mapping[str, Any] = "kmeans++",
        random_state: Any = None,
        warm_start: bool = False,
        batch_size: int | None = None,
        progress: bool = False,
        verbose: int = 0,
        check_monotone: str = "warn",
        accel: str | None = None,
        n_jobs: int | None = None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.dof = dof
        self.algorithm = algorithm
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init = init
        self.random_state = random_state
        self.warm_start = warm_start
        self.batch_size = batch_size
        self.progress = progress
        self.verbose = verbose
        self.check_monotone = check_monotone
        self.accel = accel
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fitting
    def _model(self) -> StudentTMixtureModel:
        init = self.init if isinstance(self.init, str) else "kmeans++"
        return StudentTMixtureModel(
            self.n_components, self.covariance_type, self.reg_covar, dof=self.dof, init=init
        )

    def _check_hyperparameters(self, n_samples: int) -> None:
        check_int(self.n_components, "n_components", 1)
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {COVARIANCE_TYPES} for a Student-t mixture, "
                f"got {self.covariance_type!r}"
            )
        _check_dof(self.dof)
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        self._check_mixture_options(n_samples)
        if self.accel not in (None, "squarem"):
            raise ValueError(f"accel must be None or 'squarem', got {self.accel!r}")
        if self.accel is not None and self.algorithm == "ecme" and _check_dof(self.dof) is None:
            raise ValueError(
                "accel='squarem' accelerates ECM; it cannot be combined with algorithm='ecme' "
                "(use algorithm='ecm', or accel=None)"
            )

    def _params_from_dict(self, values: Mapping[str, Any], D: int) -> dict[str, np.ndarray]:
        """Validate a user's starting parameters (any subset of weights/means/covariances/dofs)."""
        K = self.n_components
        out = self._init_dict(values, D, extra=("dofs",))
        if "dofs" in values:
            nu = np.asarray(values["dofs"], dtype=np.float64)
            if nu.shape != (K,):
                raise ValueError(f"init dofs must have shape ({K},), got {nu.shape}")
            if not np.all(np.isfinite(nu)) or np.any(nu <= 0):
                raise ValueError("init dofs must be finite and positive")
            fixed = _check_dof(self.dof)
            if fixed is not None and not np.allclose(nu, fixed, rtol=1e-12, atol=0):
                raise ValueError(
                    f"init dofs {nu.tolist()} contradict the fixed dof={fixed}; leave 'dofs' "
                    "out of init or use dof='estimate'"
                )
            out["dofs"] = nu
        return out

    def _starting_params(self, model, Xc, w, shift, rng) -> TMMParams | None:
        if self.warm_start and self.__sklearn_is_fitted__():
            given = {
                "weights": self.weights_,
                "means": self.means_,
                "covariances": self.covariances_,
                "dofs": self.dofs_,
            }
            if not model.estimate_dofs:
                del given["dofs"]
        elif isinstance(self.init, Mapping):
            given = self._params_from_dict(self.init, Xc.shape[1])
        else:
            return None
        given = {k: np.asarray(v, dtype=np.float64) for k, v in given.items()}
        if "means" in given:
            given["means"] = given["means"] - shift
        if not {"weights", "means", "covariances"} <= set(given):
            base = model.init_params((Xc, w), rng)
            given = {**base._asdict(), **given}
        covs = given["covariances"]
        return TMMParams(
            given["weights"],
            given["means"],
            covs,
            model.structure.precision_cholesky(covs),
            model.starting_dofs(given.get("dofs")),
        )

    def fit(self, X, y=None, sample_weight=None) -> StudentTMixture:
        """Estimate the parameters by ECME or ECM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; a weight of 2 counts a row twice.

        Returns
        -------
        self
        """
        ecme = self.algorithm == "ecme" and self._model().estimate_dofs
        result, shift, X, n_obs = self._run_em(
            X,
            sample_weight,
            scheme=ECME() if ecme else None,
            accel=None if ecme else self.accel,
        )
        p = result.params
        dtype = X.dtype
        # Everything is computed; only now is the estimator changed.
        self.weights_ = p.weights.astype(dtype)
        self.means_ = (p.means + shift).astype(dtype)
        self.covariances_ = np.asarray(p.covariances, dtype=dtype)
        self.dofs_ = np.asarray(p.dofs, dtype=dtype)
        self.precisions_cholesky_ = np.asarray(p.precisions_cholesky, dtype=dtype)
        self.loglik_ = float(result.loglik)
        self.lower_bound_ = self.loglik_ / n_obs
        self.n_estep_ = int(result.n_estep)
        self.n_features_in_ = X.shape[1]
        self._finish_fit(result, self.algorithm.upper())
        return self

    def _check_fitted_state(self) -> None:
        self._check_float_arrays(
            ("weights_", "means_", "covariances_", "precisions_cholesky_", "dofs_")
        )
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"unknown covariance_type {self.covariance_type!r}")
        K, D = self.means_.shape if self.means_.ndim == 2 else (-1, -1)
        shape = get_structure(self.covariance_type).shape(K, D)
        if (
            K != self.n_components
            or D != self.n_features_in_
            or self.weights_.shape != (K,)
            or self.dofs_.shape != (K,)
            or self.covariances_.shape != shape
            or self.precisions_cholesky_.shape != shape
        ):
            raise ValueError("fitted arrays have inconsistent shapes")
        if np.any(self.dofs_ <= 0):
            raise ValueError("dofs_ must be positive")

    # ------------------------------------------------------------------ prediction
    def _params(self) -> TMMParams:
        self._check_is_fitted()
        return TMMParams(
            np.asarray(self.weights_, dtype=np.float64),
            np.asarray(self.means_, dtype=np.float64),
            np.asarray(self.covariances_, dtype=np.float64),
            np.asarray(self.precisions_cholesky_, dtype=np.float64),
            np.asarray(self.dofs_, dtype=np.float64),
        )

    def _validated(self, X) -> np.ndarray:
        self._check_is_fitted()
        X = check_array(X)
        self._check_n_features(X)
        return X

    def _log_joint(self, X: np.ndarray) -> np.ndarray:
        p = self._params()
        # Evaluate in centred coordinates (the locations' weighted mean), as in the fit.
        centre = p.weights @ p.means
        model = StudentTMixtureModel(self.n_components, self.covariance_type, self.reg_covar)
        lp = model.weighted_log_prob(p._replace(means=p.means - centre), X - centre)
        return lp.astype(X.dtype, copy=False)

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        n_dofs = K if _check_dof(self.dof) is None else 0
        return (K - 1) + K * D + get_structure(self.covariance_type).n_parameters(K, D) + n_dofs

    def _sample_component(self, rng: np.random.Generator, k: int, n: int) -> np.ndarray:
        """``mean + z / sqrt(g)``, ``z ~ N(0, scale)``, ``g ~ chi2(dof) / dof``."""
        p = self._params()
        K, D = p.means.shape
        cov_k = get_structure(self.covariance_type).to_full(p.covariances, K, D)[k]
        z = rng.multivariate_normal(np.zeros(D), cov_k, size=n, method="cholesky")
        g = rng.chisquare(p.dofs[k], size=n) / p.dofs[k]
        return (p.means[k] + z / np.sqrt(g)[:, None]).astype(self.means_.dtype)
