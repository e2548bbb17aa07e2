"""Variational Bayes for a Gaussian mixture, as pure variational-EM functions.

Generative model (Bishop 2006, section 10.2; Blei & Jordan 2006 for the stick-breaking
prior)::

    weights ~ Dirichlet(alpha0, ..., alpha0)                   "dirichlet_distribution"
        or weights_k = v_k prod_{j<k} (1 - v_j),  v_k ~ Beta(1, alpha0), k = 1..K
                                                               "dirichlet_process" (truncated)
    Lambda_k ~ Wishart(W0, nu0),   mu_k | Lambda_k ~ Normal(m0, (beta0 Lambda_k)^-1)
    z_i ~ Categorical(weights),    x_i | z_i = k ~ Normal(mu_k, Lambda_k^-1)

The posterior is approximated by ``q(z) q(weights) prod_k q(mu_k, Lambda_k)``. The
E-step sets ``q(z)`` (the responsibilities) from the current factors; the M-step sets
every other factor from the responsibilities' statistics; each maximises the evidence
lower bound (ELBO) over its own factors, so the ELBO never decreases.

The parametrisation and the updates are scikit-learn's ``BayesianGaussianMixture``
(``covariances`` is ``inv(nu_k W_k)``, the inverse of the posterior mean precision;
``reg_covar`` is added to each component's scatter per unit of weight; the diag and
spherical precisions have the Wishart normaliser over D dimensions; tied: K Wishart
priors and one shared posterior factor, with ``nu = nu0 + N / K``), so fits and ELBO
paths can be compared with it iteration by iteration. For diag and spherical that is
scikit-learn's choice, not independent Gamma factors per precision: ``nu_k`` grows by
one per unit of weight and ``E[log |Lambda_k|]`` is the Wishart's sum of digammas, as
for full; the updates are still exact coordinate ascent for that family, so the bound
never decreases.

The ELBO and the engine. After an M-step the parameters are the optimum given the
responsibilities ``r`` they came from, and the bound at that pair is, by conjugacy,

    ELBO = -sum r log r - sum_k log B(W_k, nu_k) - log C(weights) - D/2 sum_k log beta_k + const

(``B`` the Wishart normaliser, ``C`` the Dirichlet's or the product of the sticks' Beta
normalisers); scikit-learn's ``lower_bound_`` drops the same constant (the prior's
normalisers and ``-N D/2 log 2 pi``), and so does this model. The parameters carry the
entropy ``-sum r log r`` of the responsibilities they were computed from, so the bound
is a function of the parameters alone: ``log_prior(params)``; the E-step reports 0. The
value the engine records after each step is then the ELBO at the pair (responsibilities,
parameters) that step produced, scikit-learn's ``lower_bounds_`` iteration by iteration.
That identity holds only for parameters an M-step made. SQUAREM keeps that: the point
it records is an EM step from its extrapolated one (a flat view of the parameters).
The schemes that would record other points (online EM, annealing, held parameters) do
not apply: the model has no ``estep_variant`` or ``shift_stats``, and ``hold`` refuses. As in
scikit-learn, ``reg_covar`` enters the M-step only (not the E-step's expected
log-densities), which makes each step an exact coordinate ascent up to a term of order
``reg_covar**2``; the monotonicity check holds to round-off in the tests.

The E-step's expected log-density of component k is a Gaussian log-density with the
precision ``nu_k W_k`` plus a constant per component::

    E[log N(x | mu_k, Lambda_k)] = log N(x | m_k, inv(nu_k W_k)) + (E[log |Lambda_k|]
                                   - D log nu_k - D / beta_k) / 2

so the one Gaussian kernel (:class:`~emkit.distributions.gaussian.GaussianKernel`)
evaluates it, with the constants and ``E[log weights_k]`` as its log-weights, and takes
the moments about the component means (exact far from the origin).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.special import betaln, digamma, entr, gammaln

from emkit.distributions.gaussian import GaussianKernel
from emkit.models.init import initial_responsibilities

__all__ = [
    "VB_COVARIANCE_TYPES",
    "WEIGHT_PRIOR_TYPES",
    "VBParams",
    "VBPrior",
    "VBStats",
    "VariationalGaussianMixtureModel",
]

#: the covariance structures with a conjugate (Wishart-type) posterior factor
VB_COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")
#: the priors on the weights (scikit-learn's ``weight_concentration_prior_type``)
WEIGHT_PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")

_LOG_2 = float(np.log(2.0))
_LOG_2PI = float(np.log(2.0 * np.pi))
#: added to every component's count, as scikit-learn does, so an empty one has a mean
_EMPTY = 10.0 * np.finfo(np.float64).eps


class VBPrior(NamedTuple):
    """Hyper-parameters of the priors (scikit-learn's names without ``_prior``)."""

    weight_concentration: float  # alpha0 (Dirichlet) or the sticks' Beta(1, alpha0)
    mean_precision: float  # beta0
    mean: np.ndarray  # m0 (D,)
    degrees_of_freedom: float  # nu0 > D - 1
    covariance: np.ndarray  # inv(W0), one component's in the structure's layout


class VBParams(NamedTuple):
    """The variational factors, in scikit-learn's parametrisation."""

    weight_concentration: np.ndarray  # (K,) Dirichlet; (2, K) the sticks' Beta(a, b)
    mean_precision: np.ndarray  # beta_k (K,)
    means: np.ndarray  # m_k (K, D)
    degrees_of_freedom: np.ndarray  # nu_k (K,) (tied: K equal values)
    covariances: np.ndarray  # inv(nu_k W_k), the structure's layout
    precisions_cholesky: np.ndarray  # its precision Cholesky factor
    entropy: np.ndarray  # () -sum r log r of the responsibilities these came from


class VBStats(NamedTuple):
    """Additive statistics of a batch: the responsibilities' moments about the means of
    the parameters of the E-step (``nk`` (K,), ``s1`` (K, D), ``s2`` in the structure's
    layout) and their entropy ``-sum r log r``."""

    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    entropy: np.ndarray


class VariationalGaussianMixtureModel:
    """Variational EM model of a Bayesian Gaussian mixture; batches are ``(X, w or None)``.

    Parameters
    ----------
    n_components : int
        Number of components K (the truncation level of the Dirichlet process).
    covariance_type : {"full", "diag", "tied", "spherical"}
    prior : VBPrior
        The priors, in the coordinates of the data the model sees.
    weight_concentration_prior_type : {"dirichlet_process", "dirichlet_distribution"}
    reg_covar : float
        Added to the diagonal of each component's scatter per unit of weight.
    init : str
        How ``init_params`` starts: a method of :data:`emkit.models.init.INIT_METHODS`.

    Examples
    --------
    >>> import numpy as np
    >>> import emkit
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))])
    >>> X -= X.mean(axis=0)
    >>> prior = VBPrior(0.01, 1.0, np.zeros(2), 2.0, np.cov(X.T))
    >>> model = VariationalGaussianMixtureModel(4, "full", prior)
    >>> result = emkit.em(model, (X, None), random_state=0)
    >>> result.objective_name
    'elbo'
    >>> weights = model.mean_weights(result.params.weight_concentration)
    >>> int(np.sum(weights > 0.01))  # two components carry the data, two are emptied
    2
    """

    objective = "elbo"

    def __init__(
        self,
        n_components: int,
        covariance_type: str,
        prior: VBPrior,
        weight_concentration_prior_type: str = "dirichlet_process",
        reg_covar: float = 1e-6,
        init: str = "kmeans",
    ):
        if covariance_type not in VB_COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {VB_COVARIANCE_TYPES} for a variational "
                f"mixture, got {covariance_type!r}"
            )
        if weight_concentration_prior_type not in WEIGHT_PRIOR_TYPES:
            raise ValueError(
                f"weight_concentration_prior_type must be one of {WEIGHT_PRIOR_TYPES}, "
                f"got {weight_concentration_prior_type!r}"
            )
        self.n_components = n_components
        self.prior = prior
        self.stick_breaking = weight_concentration_prior_type == "dirichlet_process"
        self.kernel = GaussianKernel(covariance_type, reg_covar)
        #: the kernel's moments without regularisation (the E-step's quadratic terms)
        self.quadratic_kernel = GaussianKernel(covariance_type, 0.0)
        self.structure = self.kernel.structure
        self.init = init

    # ------------------------------------------------------------------ weights part
    def expected_log_weights(self, concentration: np.ndarray) -> np.ndarray:
        """``E[log weights_k]`` (K,) under ``q(weights)``."""
        if self.stick_breaking:
            a, b = concentration
            log_total = digamma(a + b)
            log_rest = digamma(b) - log_total
            return digamma(a) - log_total + np.concatenate(([0.0], np.cumsum(log_rest)[:-1]))
        return digamma(concentration) - digamma(np.sum(concentration))

    def mean_weights(self, concentration: np.ndarray) -> np.ndarray:
        """The posterior mean of the weights (K,), normalised (the sticks' are truncated)."""
        if self.stick_breaking:
            a, b = concentration
            rest = b / (a + b)
            weights = a / (a + b) * np.concatenate(([1.0], np.cumprod(rest[:-1])))
        else:
            weights = np.asarray(concentration, dtype=np.float64)
        return weights / weights.sum()

    def _weights_posterior(self, nk: np.ndarray) -> np.ndarray:
        alpha0 = self.prior.weight_concentration
        if self.stick_breaking:
            beyond = np.concatenate((np.cumsum(nk[::-1])[-2::-1], [0.0]))  # sum_{j>k} n_j
            return np.stack([1.0 + nk, alpha0 + beyond])
        return alpha0 + nk

    def _log_weights_normaliser(self, concentration: np.ndarray) -> float:
        """``log`` of the normaliser of ``q(weights)`` (the bound's weights term, negated)."""
        if self.stick_breaking:
            return -float(np.sum(betaln(*concentration)))
        return float(gammaln(np.sum(concentration)) - np.sum(gammaln(concentration)))

    # ------------------------------------------------------------------ the three steps
    def init_params(self, data: Any, rng: np.random.Generator) -> VBParams:
        """The M-step from starting responsibilities drawn by ``init``."""
        X, w = data[0], data[1]
        resp = initial_responsibilities(self.init, X, w, self.n_components, rng)
        return self.params_from_responsibilities(X, w, resp)

    def estep(self, params: VBParams, batch: Any) -> tuple[VBStats, float]:
        """Responsibilities' moments and entropy; the objective lives in :meth:`log_prior`.

        One pass of the Gaussian kernel's mixture E-step gives the moments about the
        means and ``sum_n log sum_k rho_nk``; the entropy follows from the identity
        ``-sum r log r = sum_n log sum_k rho_nk - sum_nk r_nk log rho_nk``, whose last
        term is ``sum_k n_k c_k - tr(P_k S_k) / 2`` (``c_k`` the log-density's constant,
        ``P_k`` the precision, ``S_k`` the second moments about the mean).
        """
        X, w = batch[0], batch[1]
        means, prec_chol = params.means, params.precisions_cholesky
        offsets = self._log_offsets(params)
        stats, value = self.kernel.estep(means, prec_chol, offsets, X, w)
        nk, s1, s2 = stats
        st = self.structure
        K, D = np.shape(means)
        constants = (
            offsets
            + np.broadcast_to(st.log_det_precision_cholesky(prec_chol, D), (K,))
            - 0.5 * D * _LOG_2PI
        )
        weight = np.asarray(nk, dtype=np.float64) + _EMPTY
        shift, cov = self.quadratic_kernel.estimate(weight, s1, s2)  # about the means
        precisions = st.to_full(st.precisions(prec_chol), K, D)
        # a shared (pooled) covariance counts every sample once, whichever its component
        pooled = np.full(K, weight.mean()) if st.shared else weight
        quadratic = pooled * np.einsum("kij,kji->k", precisions, st.to_full(cov, K, D))
        quadratic += weight * np.einsum("ki,kij,kj->k", shift, precisions, shift)
        entropy = value - float(np.sum(nk * constants)) + 0.5 * float(np.sum(quadratic))
        return VBStats(nk, s1, s2, np.asarray(entropy)), 0.0

    def mstep(self, stats: VBStats, params: VBParams | None) -> VBParams:
        """Every factor but ``q(z)`` from the statistics taken at ``params``."""
        centre = None if params is None else params.means
        return self._posterior(stats, centre)

    def log_prior(self, params: VBParams) -> float:
        """The ELBO at ``params`` and the responsibilities they came from (see the module
        docstring): scikit-learn's ``lower_bound_`` convention."""
        K, D = np.shape(params.means)
        nu = np.asarray(params.degrees_of_freedom, dtype=np.float64)
        log_det = self.structure.log_det_precision_cholesky(params.precisions_cholesky, D)
        log_det_w = np.broadcast_to(log_det, (K,)) - 0.5 * D * np.log(nu)
        half = 0.5 * (nu - np.arange(D)[:, None])
        log_wishart = -(nu * log_det_w + nu * D * 0.5 * _LOG_2 + np.sum(gammaln(half), axis=0))
        return float(
            params.entropy
            - np.sum(log_wishart)
            - self._log_weights_normaliser(params.weight_concentration)
            - 0.5 * D * np.sum(np.log(params.mean_precision))
        )

    def hold(self, names: Any):
        """Holding factors fixed is not supported: the ELBO this model reports is the
        bound at the M-step's optimum, which a held factor would not be."""
        raise ValueError(
            "VariationalGaussianMixture cannot hold parameters fixed (fixed=): its ELBO "
            "is evaluated at the M-step's optimum of every factor; fix a prior instead"
        )

    # ------------------------------------------------------------------ helpers
    def _log_offsets(self, params: VBParams) -> np.ndarray:
        """``E[log weights_k] + (E[log|Lambda_k|] - D log nu_k - D / beta_k) / 2`` (K,)."""
        D = np.shape(params.means)[1]
        nu = np.asarray(params.degrees_of_freedom, dtype=np.float64)
        log_lambda = D * _LOG_2 + np.sum(digamma(0.5 * (nu - np.arange(D)[:, None])), axis=0)
        return self.expected_log_weights(params.weight_concentration) + 0.5 * (
            log_lambda - D * np.log(nu) - D / params.mean_precision
        )

    def _posterior(self, stats: VBStats, centre: np.ndarray | None) -> VBParams:
        """The factors' parameters from moments about ``centre`` (None: the origin)."""
        st, p = self.structure, self.prior
        nk = np.asarray(stats.nk, dtype=np.float64) + _EMPTY
        K, D = np.shape(stats.s1)
        xbar, cov = self.kernel.estimate(nk, np.asarray(stats.s1), np.asarray(stats.s2), centre)
        beta = p.mean_precision + nk
        means = (p.mean_precision * p.mean + nk[:, None] * xbar) / beta[:, None]
        diff = xbar - p.mean
        spread = nk[:, None, None] * st.to_full(cov, K, D)
        spread += (p.mean_precision * nk / beta)[:, None, None] * (
            diff[:, :, None] * diff[:, None, :]
        )
        scatter = st.from_full(spread)  # tied: the mean over components
        nu = p.degrees_of_freedom + (np.full(K, nk.mean()) if st.shared else nk)
        per = nu[0] if st.shared else nu.reshape(-1, *([1] * (scatter.ndim - 1)))
        covariances = (p.covariance + scatter) / per
        try:
            prec_chol = st.precision_cholesky(covariances)
        except np.linalg.LinAlgError:
            raise ValueError(
                "a posterior covariance is not positive definite; increase reg_covar or "
                "covariance_prior, or scale the data"
            ) from None
        return VBParams(
            self._weights_posterior(nk),
            beta,
            means,
            nu,
            covariances,
            prec_chol,
            np.asarray(stats.entropy, dtype=np.float64),
        )

    def params_from_responsibilities(self, X: np.ndarray, w, resp: np.ndarray) -> VBParams:
        """The M-step from given responsibilities (N, K): moments about their means."""
        r = resp if w is None else resp * w[:, None]
        nk = r.sum(axis=0)
        centre = (r.T @ X) / (nk + _EMPTY)[:, None]
        nk, s1, s2 = self.kernel.moments(X, r, centre=centre)
        h = entr(resp) if w is None else entr(resp) * w[:, None]
        return self._posterior(VBStats(nk, s1, s2, np.asarray(np.sum(h))), centre)

    def step_from(self, params: VBParams, data: Any) -> VBParams:
        """One E-step at ``params`` and the M-step after it (a start from given factors)."""
        return self.mstep(self.estep(params, data)[0], params)

    def log_resp(self, params: VBParams, X: np.ndarray) -> np.ndarray:
        """``log r_nk`` before normalisation: ``E[log weights_k] + E[log N(x | k)]`` (N, K)."""
        return self.kernel.log_densities(
            params.means, params.precisions_cholesky, X, self._log_offsets(params)
        )[0]
