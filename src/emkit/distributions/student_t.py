"""Multivariate Student-t components: the t building block of mixtures and HMM emissions.

Generative model of one component (McLachlan & Peel 2000, ch. 7)::

    u ~ Gamma(dof / 2, rate=dof / 2)
    x | u ~ Normal(mean, covariance / u)

so ``x`` is a multivariate t with location ``mean``, scale matrix ``covariance`` and
``dof`` degrees of freedom. Given the current parameters the E-step weighs each row by
``u = (dof + D) / (dof + delta)`` (``delta`` the squared Mahalanobis distance), so far
points hardly move the location: the fit is robust. The statistics are the sums of
``w``, ``w u``, ``w u x``, ``w u x x'`` (in the covariance structure's layout) and
``w (log u - u + psi((dof+D)/2) - log((dof+D)/2))``; they depend on the parameters
they were computed at (pass ``params`` to ``suff_stats``), and still add up over
batches. The M-step is closed form for location and scale and a one-dimensional root
for each ``dof`` (ECM; an exact EM step because the expected complete-data
log-likelihood separates).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_t(3.0, size=(4000, 1))
>>> t = StudentT("full")
>>> params = t.init_params(X, np.ones((4000, 1)))
>>> for _ in range(200):
...     params = t.mstep(t.suff_stats(X, np.ones((4000, 1)), params))
>>> round(float(params.dof[0]))
3
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import optimize, special

from emkit._validation import check_real
from emkit.distributions.base import Distribution, check_weights
from emkit.distributions.covariance import CovarianceStructure, block_rows, get_structure

__all__ = [
    "DOF_BOUNDS",
    "StudentT",
    "StudentTParams",
    "StudentTStats",
    "log_t_normaliser",
    "solve_dofs",
]

_LOG_2PI = float(np.log(2.0 * np.pi))
#: Degrees of freedom at which an estimated-dof fit starts (moderately heavy tails).
DEFAULT_START_DOF = 10.0

#: Interval to which estimated degrees of freedom are confined. Above 1e6 a t equals
#: a Gaussian to about 1e-6 in the log-density and the likelihood is flat in ``nu``.
#: Below 0.1 a fit is degenerate rather than heavy-tailed: the likelihood is unbounded
#: as ``nu -> 0`` when many points lie near a subspace (Kent & Tyler 1991), a
#: component then shrinks onto them until ``reg_covar`` stops it, and the fit is
#: ill-conditioned (at ``nu -> 0`` the t density no longer depends on the size of the
#: scale matrix).
DOF_BOUNDS = (0.1, 1e6)


# ---------------------------------------------------------------------- t densities
def _stirling_correction(x: np.ndarray) -> np.ndarray:
    """``lgamma(x) - ((x - 1/2) log x - x + log(2 pi) / 2)`` for x >= 30 (error < 1e-17)."""
    x2 = x * x
    return (1.0 / 12.0 - (1.0 / 360.0 - (1.0 / 1260.0 - 1.0 / (1680.0 * x2)) / x2) / x2) / x


def log_t_normaliser(nu: np.ndarray, n_features: int) -> np.ndarray:
    """``lgamma((nu + D)/2) - lgamma(nu/2) - (D/2) log(nu/2)``, accurate for any ``nu``.

    The t log-density is this plus ``-(D/2) log(2 pi) + log det U - (nu + D)/2 *
    log1p(delta/nu)``. The term tends to 0 as ``nu`` grows; the difference of two
    large ``lgamma`` values would lose ``eps * nu log nu`` to cancellation, so large
    ``nu`` use Stirling's series, where the large parts cancel analytically.
    """
    nu = np.asarray(nu, dtype=np.float64)
    h = 0.5 * n_features
    x0 = 0.5 * nu
    big = x0 >= 30.0
    xb = np.where(big, x0, 30.0)
    stirling = (
        (xb + h - 0.5) * np.log1p(h / xb)
        - h
        + _stirling_correction(xb + h)
        - _stirling_correction(xb)
    )
    xs = np.where(big, 1.0, x0)
    direct = special.gammaln(xs + h) - special.gammaln(xs) - h * np.log(xs)
    return np.where(big, stirling, direct)


def solve_dofs(
    c: np.ndarray, low: float = DOF_BOUNDS[0], high: float = DOF_BOUNDS[1]
) -> np.ndarray:
    """Degrees of freedom maximising the expected complete-data log-likelihood.

    Each ``nu`` solves ``log(nu/2) - psi(nu/2) + 1 + c = 0`` (McLachlan & Peel 2000,
    7.5), with ``c = sum w (log u - u) / sum w + psi((nu_old + D)/2) - log((nu_old +
    D)/2)``. The left side falls from +inf to ``1 + c < 0``, so the root is unique; it
    is searched in ``log nu`` within ``[low, high]`` (a bound when the root lies out).
    """
    c = np.atleast_1d(np.asarray(c, dtype=np.float64))
    out = np.empty_like(c)
    a, b = np.log(low), np.log(high)
    for k, ck in enumerate(c):

        def score(log_nu: float, ck: float = float(ck)) -> float:
            y = 0.5 * np.exp(log_nu)
            return float(np.log(y) - special.digamma(y) + 1.0 + ck)

        if score(a) <= 0.0:
            out[k] = low
        elif score(b) >= 0.0:
            out[k] = high
        else:
            root = optimize.brentq(score, a, b, xtol=1e-13, rtol=4 * np.finfo(float).eps)
            out[k] = float(np.clip(np.exp(root), low, high))
    return out


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
        Estimate each component's degrees of freedom (within :data:`DOF_BOUNDS`) or
        keep them fixed at this value.
    """

    name = "StudentT"
    params_type = StudentTParams

    def __init__(
        self, covariance_type: str = "full", reg_covar: float = 1e-6, dof: Any = "estimate"
    ):
        if covariance_type not in ("full", "diag"):
            raise ValueError(
                f"covariance_type must be 'full' or 'diag' for a Student-t, got {covariance_type!r}"
            )
        self.covariance_type = covariance_type
        self.structure: CovarianceStructure = get_structure(covariance_type)
        self.reg_covar = check_real(reg_covar, "reg_covar", 0.0)
        if dof != "estimate" and check_real(dof, "dof", 0.0) <= 0:
            raise ValueError(f"dof must be 'estimate' or a positive number, got {dof!r}")
        self.dof = dof

    def __repr__(self) -> str:
        return (
            f"StudentT(covariance_type={self.covariance_type!r}, reg_covar={self.reg_covar!r}, "
            f"dof={self.dof!r})"
        )

    def _prepared(self, params: StudentTParams):
        st = self.structure
        means = np.asarray(params.mean, dtype=np.float64)
        K, D = means.shape
        prec_chol = st.precision_cholesky(np.asarray(params.covariance, dtype=np.float64))
        nu = np.asarray(params.dof, dtype=np.float64)
        const = (
            log_t_normaliser(nu, D)
            - 0.5 * D * _LOG_2PI
            + st.log_det_precision_cholesky(prec_chol, D)
        )
        # offset 0: the structure's log-density is then -delta/2
        cache = st.prepare(means, prec_chol, np.zeros(K), np.float64)
        return cache, const, nu, D

    def _blocks(self, params: StudentTParams, X: np.ndarray):
        """Yield (slice, squared Mahalanobis distances (B, K), work arrays)."""
        st = self.structure
        cache, _, _, D = self._prepared(params)
        K = len(params.dof)
        size = block_rows(st.work_per_row(K, D) + 8 * K)
        for start in range(0, len(X), size):
            sl = slice(start, start + size)
            neg_half_delta, work = st.log_density(X[sl], cache)
            # round-off of the expanded quadratic form can give tiny negative distances
            yield sl, np.maximum(-2.0 * neg_half_delta, 0.0), work

    def validate(self, X: Any, *, columns=None) -> np.ndarray:
        arr = super().validate(X, columns=columns)
        if np.isnan(arr).any():
            raise ValueError(f"{self.name}: X has missing values (NaN), which a t does not support")
        return arr

    def log_prob(self, params: StudentTParams, X: np.ndarray) -> np.ndarray:
        _, const, nu, D = self._prepared(params)
        out = np.empty((len(X), len(nu)))
        for sl, delta, _ in self._blocks(params, X):
            out[sl] = const - 0.5 * (nu + D) * np.log1p(delta / nu)
        return out

    def suff_stats(self, X: np.ndarray, weights: Any, params: StudentTParams | None = None):
        if params is None:
            raise ValueError(
                f"{self.name}: the statistics are expectations of the latent precision "
                "weights under the current parameters: pass params"
            )
        w = check_weights(weights, len(X))
        st = self.structure
        nu = np.asarray(params.dof, dtype=np.float64)
        K, D = len(nu), X.shape[1]
        half = 0.5 * (nu + D)
        shift = special.digamma(half) - np.log(half)
        log1p_d_nu = np.log1p(D / nu)
        nk, uk, s1, s2, term = np.zeros(K), np.zeros(K), np.zeros((K, D)), None, np.zeros(K)
        for sl, delta, work in self._blocks(params, X):
            u = (nu + D) / (nu + delta)
            # log u = log1p(D/nu) - log1p(delta/nu), without cancellation near u = 1
            log_u = log1p_d_nu - np.log1p(delta / nu)
            wb = w[sl]
            b_uk, b_s1, b_s2 = st.block_stats(X[sl], wb * u, work)
            nk += wb.sum(axis=0)
            uk += b_uk
            s1 += b_s1
            s2 = np.array(b_s2, dtype=np.float64) if s2 is None else s2 + b_s2
            term += np.sum(wb * (log_u - u + shift), axis=0)
        if s2 is None:
            s2 = st.pack_second_moments(np.zeros((K, D, D)))
        return StudentTStats(nk, uk, s1, s2, term)

    def mstep(
        self, stats: StudentTStats, prior: Any = None, previous: Any = None
    ) -> StudentTParams:
        if prior is not None:
            raise ValueError(f"{self.name}: conjugate priors are not supported; use reg_covar")
        nk = np.asarray(stats.nk, dtype=np.float64)
        uk = np.asarray(stats.uk, dtype=np.float64)
        empty = ~(nk > 0) | ~(uk > 0)
        if empty.any():
            raise ValueError(
                f"component(s) {np.flatnonzero(empty).tolist()} have zero total weight, so "
                "their location is undefined; re-seed them or decrease n_components"
            )
        means, covs = self._location_scale(stats)
        if self.dof == "estimate":
            dofs = solve_dofs(stats.dof_term / nk)
        else:
            dofs = np.full(len(nk), float(self.dof))
        return StudentTParams(means, covs, dofs)

    def _location_scale(self, stats: StudentTStats) -> tuple[np.ndarray, np.ndarray]:
        st = self.structure
        nk = np.asarray(stats.nk, dtype=np.float64)
        uk = np.asarray(stats.uk, dtype=np.float64)
        K, D = np.shape(stats.s1)
        # The structure's moment estimate with weights w*u gives sum w u (x-mu)(x-mu)' /
        # sum w u; the scale divides by sum w instead.
        means, moment = st.estimate(uk, stats.s1, stats.s2, np.zeros((K, D)), None, 0.0)
        ratio = (uk / nk).reshape((K,) + (1,) * (np.ndim(moment) - 1))
        covs = moment * ratio + self.reg_covar * st.identity(K, D)
        bad = ~st.valid_components(covs, K)
        if bad.any():
            raise ValueError(
                f"component(s) {np.flatnonzero(bad).tolist()} have a singular scale matrix; "
                "increase reg_covar, decrease n_components, or scale the data"
            )
        return means, covs

    def init_params(self, X: Any, resp: Any, rng: np.random.Generator | None = None):
        """Gaussian moments of the responsibility-weighted data, with the starting dof."""
        X = self.validate(X)
        w = check_weights(resp, len(X))
        K, D = w.shape[1], X.shape[1]
        start = StudentTParams(
            np.zeros((K, D)),
            self.structure.identity(K, D),
            np.full(K, 1e300),  # u = 1 for every row: a Gaussian M-step
        )
        stats = self.suff_stats(X, w, start)
        if not np.all(stats.nk > 0):
            empty = np.flatnonzero(~(stats.nk > 0)).tolist()
            raise ValueError(f"component(s) {empty} have zero total weight")
        means, covs = self._location_scale(stats)
        first = DEFAULT_START_DOF if self.dof == "estimate" else float(self.dof)
        return StudentTParams(means, covs, np.full(K, first))

    def sample(self, params_k: StudentTParams, n: int, rng: np.random.Generator) -> np.ndarray:
        mean = np.asarray(params_k.mean, dtype=np.float64)
        cov = np.asarray(params_k.covariance, dtype=np.float64)
        if cov.ndim == 1:
            cov = np.diag(cov)
        z = rng.multivariate_normal(np.zeros(mean.size), cov, size=n, method="cholesky")
        g = rng.chisquare(float(params_k.dof), size=n) / float(params_k.dof)
        return mean + z / np.sqrt(g)[:, None]

    def n_parameters(self, n_components: int, n_features: int) -> int:
        n_dofs = n_components if self.dof == "estimate" else 0
        return (
            n_components * n_features
            + self.structure.n_parameters(n_components, n_features)
            + n_dofs
        )
