"""The M-step of C Gaussians with a conjugate (normal / inverse-Wishart-like) prior,
with means or covariances held fixed: what the HMM's Gaussian emissions take when they
have a prior or a held part (otherwise the Gaussian distribution's own M-step).

For component ``c`` with posterior weight ``n_c`` and scatter ``S_c(mu)`` about a
mean ``mu``, the prior (hmmlearn's, written once for every covariance structure) is::

    log p = -(q_c / 2) log det(Sigma_c) - tr(Psi_c Sigma_c^-1) / 2
            - (lam_c / 2) (mu_c - m_c)' Sigma_c^-1 (mu_c - m_c)

and the M-step is its exact maximiser with the expected log-likelihood::

    mu_c    = (sum_t w_tc x_t + lam_c m_c) / (n_c + lam_c)     (does not depend on Sigma)
    Sigma_c = (Psi_c + S_c(mu_c) + lam_c (mu_c - m_c)(mu_c - m_c)') / (n_c + q_c)

in the covariance structure's layout: the numerator is packed like the second moments
(diagonal, trace, pooled sum) and ``n_c + q_c`` takes the place of the weights in the
structure's own estimate, so diagonal, spherical and tied covariances follow without
a branch on the structure (a shared covariance pools numerators and denominators;
spelling its prior per component as ``Psi / C`` and ``q / C`` gives one Psi and one q).
A held mean makes ``S_c`` the scatter about it; the E-step's moments are taken about
the current means, so a held mean's scatter is the second moment itself, exactly.

``about_previous`` is hmmlearn's GMM-HMM step: the scatter about the E-step's means
(a conditional maximisation of the covariances before the means; it still never
lowers the likelihood).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from emkit.distributions.gaussian import Gaussian, GaussianParams, GaussianStats

__all__ = ["GaussianPrior", "map_step"]


class GaussianPrior(NamedTuple):
    """A conjugate prior on C Gaussians in full-matrix terms (see the module docstring).

    ``mean`` (C, D) in the data's coordinates, ``mean_weight`` (C,), ``psi`` (C, D, D)
    and ``dof`` (C,).
    """

    mean: np.ndarray
    mean_weight: np.ndarray
    psi: np.ndarray
    dof: np.ndarray

    def shifted(self, shift: np.ndarray | None) -> GaussianPrior:
        """The prior in coordinates centred at ``shift``."""
        return self if shift is None else self._replace(mean=self.mean - shift)

    def log_prior(self, dist: Gaussian, params: GaussianParams) -> float:
        means = np.asarray(params.mean, dtype=np.float64)
        C, D = means.shape
        full = dist.structure.to_full(dist.storage(params.covariance), C, D)
        sign, logdet = np.linalg.slogdet(full)
        if np.any(sign <= 0):
            return -np.inf
        inv = np.linalg.inv(full)
        e = means - self.mean
        quad = np.einsum("cd,cde,ce->c", e, inv, e)
        trace = np.einsum("cde,ced->c", self.psi, inv)
        return float(np.sum(-0.5 * self.dof * logdet - 0.5 * trace - 0.5 * self.mean_weight * quad))


def _outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[:, :, None] * b[:, None, :]


def map_step(
    dist: Gaussian,
    stats: GaussianStats,
    previous: GaussianParams | None,
    prior: GaussianPrior | None,
    *,
    hold_means: bool = False,
    hold_covariances: bool = False,
    about_previous: bool = False,
) -> tuple[GaussianParams, np.ndarray]:
    """New means and covariances, and the weights ``n_c + q_c`` a pooling step uses.

    ``stats`` are about ``previous.mean`` (raw moments when ``previous`` is None);
    ``prior`` is in the same (centred) coordinates, or None for maximum likelihood.
    """
    nk = np.asarray(stats.nk, dtype=np.float64)
    s1 = np.asarray(stats.s1, dtype=np.float64)
    C, D = s1.shape
    centre = np.zeros((C, D)) if previous is None else np.asarray(previous.mean, np.float64)
    if prior is None:
        lam, m0 = np.zeros(C), centre
        psi, dof = np.zeros((C, D, D)), np.zeros(C)
    else:
        lam, m0, psi, dof = prior.mean_weight, prior.mean, prior.psi, prior.dof
    if hold_means:
        means = centre
    else:
        means = centre + (lam[:, None] * (m0 - centre) + s1) / (lam + nk)[:, None]
    weights = nk + dof
    if hold_covariances:
        return GaussianParams(means, previous.covariance), weights
    st = dist.structure
    d = np.zeros((C, D)) if about_previous else means - centre
    # scatter about the new means from the moments about the centre, plus the prior
    cross = _outer(s1, d)
    extra = psi + lam[:, None, None] * _outer(means - m0, means - m0)
    extra -= cross + np.swapaxes(cross, 1, 2) - nk[:, None, None] * _outer(d, d)
    s2 = np.asarray(stats.s2, dtype=np.float64) + st.pack_second_moments(extra)
    cov = st.estimate(weights, np.zeros((C, D)), s2, None, None, dist.reg_covar)[1]
    bad = ~st.valid_components(cov, C)
    if bad.any():
        raise ValueError(
            f"component(s) {np.flatnonzero(bad).tolist()} have a singular covariance; "
            "increase reg_covar or the covariance prior, or scale the data"
        )
    return GaussianParams(means, dist.from_storage(cov, C)), weights
