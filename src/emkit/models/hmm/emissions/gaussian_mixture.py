"""A Gaussian mixture per state (hmmlearn's GMMHMM) as an HMM emission.

The K*M Gaussians are one :class:`~emkit.distributions.Gaussian` of K*M components,
evaluated by THE Gaussian kernel; the statistics of component (k, m) are weighted by
the state posterior of k times the within-state responsibility of m.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import numpy as np

from emkit.distributions.base import component
from emkit.distributions.covariance import get_structure
from emkit.distributions.gaussian import Gaussian, GaussianParams
from emkit.models.hmm.emissions._gaussian_map import GaussianPrior
from emkit.models.hmm.emissions._weights import column_sums, floor_empty, floored, with_nk
from emkit.models.hmm.emissions.gaussian import CentredGaussianEmission
from emkit.models.hmm.rows import ProbabilityRows
from emkit.models.init import kmeans

__all__ = ["GaussianMixtureEmission", "MixtureParams", "MixtureStats"]

_TINY = np.finfo(np.float64).tiny
#: Share of the uniform distribution mixed into starting responsibilities.
_SMOOTHING = 0.1


class MixtureParams(NamedTuple):
    """Per-state Gaussian mixtures: ``weights`` (K, M) and K*M Gaussians (state-major)."""

    weights: np.ndarray
    gaussians: GaussianParams


class MixtureStats(NamedTuple):
    """``counts`` (K, M) summed joint weights and the statistics of the K*M Gaussians."""

    counts: np.ndarray
    gaussians: Any


class GaussianMixtureEmission(CentredGaussianEmission):
    """A Gaussian mixture per state (hmmlearn's GMMHMM)::

        m_t | z_t = k ~ Categorical(weights[k])
        x_t | z_t = k, m_t = m ~ Normal(means[k, m], covariances[k, m])

    ``covariance_type`` is the structure of the M components of one state. A structure
    whose components share one covariance (``shared``, as "tied") shares it among the
    M components of a state (as in hmmlearn), not across states: the K*M Gaussians are
    then "full" ones, and the M-step pools each state's covariances by their weights.

    Fitted attributes: ``weights`` (K, M), ``means`` (K, M, D), ``covariances``
    (K, *shape of M components): (K, M, D, D) full, (K, M, D) diag, (K, D, D) tied,
    (K, M) spherical.

    MAP-EM and held parameters: ``prior`` is a :class:`GaussianPrior` over the K*M
    Gaussians (state-major; a state's tied covariance gets the sum of its components'
    ``psi`` and ``dof``), ``weights_prior`` Dirichlet pseudo-counts on each state's
    weights; :meth:`hold` keeps any of the three attributes. ``about_previous`` takes
    the covariances about the E-step's means (hmmlearn's GMMHMM step, see
    :func:`map_step`).
    """

    attributes = ("weights", "means", "covariances")
    paths: ClassVar[dict[str, str]] = {
        "weights": "emission.weights",
        "means": "emission.gaussians.mean",
        "covariances": "emission.gaussians.covariance",
    }

    def __init__(
        self,
        n_mix: int,
        covariance_type: str = "diag",
        reg_covar: float = 1e-6,
        shift=None,
        *,
        prior: GaussianPrior | None = None,
        weights_prior: Any = 1.0,
        about_previous: bool = False,
    ):
        #: the covariance structure of the M components of one state
        self.structure = get_structure(covariance_type)
        self.tied = self.structure.shared
        # Tied within states but not across them: the K*M Gaussians each get a full
        # matrix, and the K distinct ones (one per state) are stored as full matrices.
        super().__init__(Gaussian("full" if self.tied else covariance_type, reg_covar))
        self.n_mix = int(n_mix)
        self.covariance_type = covariance_type
        self.shift = None if shift is None else np.asarray(shift, dtype=np.float64)
        self.weight_rows = ProbabilityRows("weights", weights_prior)
        self.prior = prior
        self.about_previous = about_previous

    def _n_distinct(self, K: int) -> int:
        """Number of distinct covariances of K states: one per state when tied."""
        return K if self.tied else K * self.n_mix

    def _distinct(self, cov: np.ndarray) -> np.ndarray:
        """The distinct covariances, in the layout of the K*M Gaussians' structure."""
        cov = np.asarray(cov)
        return cov[:: self.n_mix] if self.tied else cov

    def frame(self, params: MixtureParams, data: Any) -> tuple[np.ndarray, Any]:
        K, M = np.shape(params.weights)
        lp, works = self._log_densities(params.gaussians, data)
        joint = lp.reshape(len(lp), K, M)
        with np.errstate(divide="ignore"):  # a zero weight: log 0 = -inf, never chosen
            joint += np.log(np.asarray(params.weights, dtype=np.float64))
        top = joint.max(axis=2)
        top[~np.isfinite(top)] = 0.0
        # Within-state responsibilities of the mixture components (suff_stats reuses
        # them), and the state log-densities log sum_m w_km N(x | k, m).
        joint -= top[:, :, None]
        np.exp(joint, out=joint)
        total = joint.sum(axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            joint /= total[:, :, None]
            frame = np.log(total) + top
        joint[~(total > 0)] = 0.0
        return frame, (joint, works)

    def shift_stats(self, stats: MixtureStats, old: MixtureParams, new: MixtureParams):
        """The Gaussians' moments re-expressed about the new means (online EM)."""
        gaussians = self.dist.shift_stats(stats.gaussians, old.gaussians, new.gaussians)
        return stats._replace(gaussians=gaussians)

    def suff_stats(self, data: Any, weights: np.ndarray, params: Any, aux: Any = None):
        if aux is None:
            aux = self.frame(params, data)[1]
        resp, works = aux
        T, K, M = resp.shape
        joint = (resp * weights[:, :, None]).reshape(T, K * M)
        gauss = None if params is None else params.gaussians
        stats = floored(lambda w: with_nk(self._moments(data, w, gauss, works)), joint)
        return MixtureStats(np.asarray(stats.nk).reshape(K, M), stats)

    def mstep(self, stats: MixtureStats, params: MixtureParams | None) -> MixtureParams:
        held = self.held if params is not None else frozenset()
        counts = np.asarray(stats.counts)
        current = np.ones_like(counts) / counts.shape[1] if params is None else params.weights
        if "weights" in held:
            weights = params.weights
        else:
            weights = self.weight_rows.mstep(counts, current)
        previous = None if params is None else params.gaussians
        if held >= {"means", "covariances"}:
            return MixtureParams(weights, previous)
        if self.prior is None and not self.about_previous and not held:
            gauss, pool = self.dist.mstep(stats.gaussians, previous=previous), counts
        else:
            gauss, pool = self._map_step(
                stats.gaussians,
                previous,
                hold_means="means" in held,
                hold_covariances="covariances" in held,
                about_previous=self.about_previous,
            )
        if self.tied and "covariances" not in held:
            gauss = self._pool(gauss, np.reshape(pool, counts.shape))
        return MixtureParams(weights, gauss)

    def log_prior(self, params: MixtureParams) -> float:
        return self.weight_rows.log_prior(params.weights) + self._gaussian_log_prior(
            params.gaussians
        )

    def _pool(self, gauss: GaussianParams, counts: np.ndarray) -> GaussianParams:
        """Each state's M full covariances averaged with their weights (tied per state).

        The tied maximum-likelihood covariance of a state is the weighted average of
        its components' full ones (each about its own mean), and ``reg_covar``, added
        to each, is added once to the average. With a prior the weights are the
        denominators ``n + q`` of :func:`map_step`, which pool the numerators.
        """
        K, M = counts.shape
        cov = np.asarray(gauss.covariance).reshape(K, M, *np.shape(gauss.covariance)[1:])
        w = counts / np.maximum(counts.sum(axis=1, keepdims=True), _TINY)
        pooled = np.einsum("km,kmij->kij", w, cov)
        return GaussianParams(gauss.mean, np.repeat(pooled, M, axis=0))

    def init_params(self, data: Any, resp: np.ndarray, rng: np.random.Generator):
        """Within each state's k-means cluster, k-means into ``n_mix`` components."""
        X = np.nan_to_num(data[0])
        T, K = resp.shape
        M = self.n_mix
        labels = resp.argmax(axis=1)
        sub = np.full((T, M), 1.0 / M)
        for k in range(K):
            rows = np.flatnonzero((labels == k) & (resp[:, k] > 0))
            if rows.size >= M:
                sub_labels = kmeans(X[rows], M, rng)[1]
                sub[rows] = (1.0 - _SMOOTHING) * np.eye(M)[sub_labels] + _SMOOTHING / M
        joint = (resp[:, :, None] * sub[:, None, :]).reshape(T, K * M)
        stats = self._moments(data, floor_empty(joint), None, None)
        counts = column_sums(joint).reshape(K, M)
        gauss = self.dist.mstep(stats)
        if self.tied:
            gauss = self._pool(gauss, counts)
        return MixtureParams(counts / counts.sum(axis=1, keepdims=True), gauss)

    def sample(self, params: MixtureParams, states: np.ndarray, rng: np.random.Generator):
        """One draw per entry of ``states`` (its mixture component drawn first), in the
        data's coordinates."""
        M = np.shape(params.weights)[1]
        cdf = np.cumsum(params.weights, axis=1)[states]
        mix = np.minimum((rng.random((states.size, 1)) >= cdf).sum(axis=1), M - 1)
        flat = states * M + mix
        out = None
        for c in np.unique(flat):
            rows = np.flatnonzero(flat == c)
            draws = self.dist.sample(component(params.gaussians, int(c)), rows.size, rng)
            if out is None:
                out = np.empty((states.size, draws.shape[1]))
            out[rows] = draws
        return self._uncentre(out)

    def n_parameters(self, params: MixtureParams, n_features: int) -> int:
        K, M = np.shape(params.weights)
        D = n_features
        n_cov = K * self.structure.n_parameters(M, D)  # M components per state
        return ProbabilityRows.n_free(params.weights) + K * M * D + n_cov

    def pack(self, params: MixtureParams) -> np.ndarray:
        gauss = params.gaussians
        cov = self.dist.structure.pack(self._distinct(gauss.covariance))
        return np.concatenate([ProbabilityRows.pack(params.weights), np.ravel(gauss.mean), cov])

    def unpack(self, vec: np.ndarray, like: MixtureParams) -> MixtureParams:
        K, M = np.shape(like.weights)
        KM, D = np.shape(like.gaussians.mean)
        weights = ProbabilityRows.unpack(vec[: K * M], like.weights)
        means = np.asarray(vec[K * M : K * M + KM * D], dtype=np.float64).reshape(KM, D)
        # ValueError unless finite and positive definite
        cov = self.dist.structure.unpack(vec[K * M + KM * D :], self._n_distinct(K), D)
        if self.tied:
            cov = np.repeat(cov, M, axis=0)
        return MixtureParams(weights, GaussianParams(means, cov))

    def to_attributes(self, params: MixtureParams) -> dict[str, Any]:
        K, M = np.shape(params.weights)
        D = np.shape(params.gaussians.mean)[1]
        cov = self._distinct(params.gaussians.covariance)
        return {
            "weights": np.asarray(params.weights),
            "means": np.asarray(params.gaussians.mean).reshape(K, M, D) + self.shift,
            "covariances": cov.reshape(K, *self.structure.shape(M, D)),
        }

    def from_attributes(self, values: dict[str, Any], n_states: int, n_features: int) -> Any:
        K, M, D = n_states, self.n_mix, n_features
        weights = ProbabilityRows("weights").check(values["weights"], (K, M))
        means = np.asarray(values["means"], dtype=np.float64)
        if means.shape != (K, M, D):
            raise ValueError(f"means must have shape ({K}, {M}, {D}), got {means.shape}")
        if not np.all(np.isfinite(means)):
            raise ValueError("means must be finite")
        cov = np.asarray(values["covariances"], dtype=np.float64)
        shape = (K, *self.structure.shape(M, D))
        if cov.shape != shape:
            raise ValueError(
                f"'{self.covariance_type}' covariances must have shape {shape}, got {cov.shape}"
            )
        n = self._n_distinct(K)
        distinct = self.dist.structure
        cov = distinct.check(cov.reshape(distinct.shape(n, D)), n, D)
        if self.tied:
            cov = np.repeat(cov, M, axis=0)
        gauss = GaussianParams(means.reshape(K * M, D) - self.shift, cov)
        return MixtureParams(weights, gauss)
