"""The 14 parsimonious covariance structures of mclust (Banfield & Raftery 1993;
Celeux & Govaert 1995; Fraley & Raftery 2002).

Each component's covariance is decomposed as ``Sigma_k = lambda_k D_k A_k D_k'``:
volume ``lambda_k = det(Sigma_k)^(1/D)``, shape ``A_k`` (diagonal, determinant 1) and
orientation ``D_k`` (orthogonal). A structure's name says, in that order, whether the
volume, the shape and the orientation are Equal across components, Varying, or the
Identity (shape: a sphere; orientation: the coordinate axes)::

    EII VII                  spherical
    EEI VEI EVI VVI          diagonal (axis-aligned)
    EEE VEE EVE VVE          ellipsoidal, common orientation
    EEV VEV EVV VVV          ellipsoidal, varying orientation

The covariances are stored as (K, D, D) matrices, so the E-step is the full
structure's (:class:`~emkit.distributions.covariance.matrices.Full`); what differs is
the M-step (:mod:`emkit.distributions.covariance._eigen_steps`), the parameter count
(mclust's ``nVarParams``) and the unconstrained parametrisation used by SQUAREM:
log-volumes, log-shapes (the last one minus the sum of the others) and, per
orientation, the strictly upper entries of a skew-symmetric ``S`` with
``D = expm(S)``. VEI, VEE, VEV, EVE and VVE have iterative M-steps and are declared
generalized (``exact = False``): warm-started from the previous parameters, they
never lower the expected complete-data log-likelihood.

``reg_covar`` is added to the scatter matrices as ``n_k * reg_covar * I`` before the
constrained M-step, so the structure is kept (for VVV this is ``reg_covar`` on the
diagonal of each covariance, as for ``full``).
"""

from __future__ import annotations

import numpy as np

from emkit.distributions.covariance._eigen_steps import Decomposition, compose, solve
from emkit.distributions.covariance.base import unpack_symmetric
from emkit.distributions.covariance.matrices import Full, _check_unpacked, _check_vector

__all__ = ["MCLUST_MODELS", "Parsimonious"]

#: mclust's model names, in the order of its tables
MCLUST_MODELS = (
    "EII",
    "VII",
    "EEI",
    "VEI",
    "EVI",
    "VVI",
    "EEE",
    "VEE",
    "EVE",
    "VVE",
    "EEV",
    "VEV",
    "EVV",
    "VVV",
)
_ITERATIVE = frozenset({"VEI", "VEE", "VEV", "EVE", "VVE"})
#: distinct weights of the combination of covariances whose eigenvectors are the
#: common orientation (any generic positive weights do)
_GOLDEN = 0.6180339887498949


def _n_units(letter: str, K: int) -> int:
    """How many copies of a part there are: none (I), one (E) or one per component (V)."""
    return {"I": 0, "E": 1, "V": K}[letter]


class Parsimonious(Full):
    """One of mclust's structures, e.g. ``Parsimonious("VEV")``.

    Parameters
    ----------
    name : str
        Three letters: volume (E/V), shape (I/E/V), orientation (I/E/V).
    """

    label = "covariance"

    def __init__(self, name: str):
        if name not in MCLUST_MODELS:
            raise ValueError(f"unknown mclust model {name!r}; use one of {MCLUST_MODELS}")
        self.name = name
        self.volume, self.shape_kind, self.orientation = name
        self.exact = name not in _ITERATIVE

    def __repr__(self) -> str:
        return f"Parsimonious({self.name!r})"

    # ------------------------------------------------------------------ counts
    def n_parameters(self, K, D):
        r = D * (D - 1) // 2
        shape_free = {"I": 0, "E": D - 1, "V": K * (D - 1)}[self.shape_kind]
        return _n_units(self.volume, K) + shape_free + _n_units(self.orientation, K) * r

    # ------------------------------------------------------------------ M-step
    def estimate(self, nk, s1, s2, means, prec_chol, reg_covar):
        D = s1.shape[1]
        nk = np.asarray(nk, dtype=np.float64)
        new_means = s1 / nk[:, None]
        W = unpack_symmetric(s2, D) - nk[:, None, None] * (
            new_means[:, :, None] * new_means[:, None, :]
        )
        W = 0.5 * (W + np.swapaxes(W, 1, 2))
        W[:, np.arange(D), np.arange(D)] += reg_covar * nk[:, None]
        previous = None
        if prec_chol is not None and not self.exact:
            previous = self.decompose(np.linalg.inv(self.precisions(prec_chol)))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            cov = compose(solve(self.name, W, nk, previous))
        return new_means, cov

    # ------------------------------------------------------------------ decomposition
    def decompose(self, covariances) -> Decomposition:
        """Volumes (K,), shapes (K, D) and orientations (K, D, D) of covariances of this
        structure (parts shared by the structure are the same for every component)."""
        cov = np.asarray(covariances, dtype=np.float64)
        K, D = cov.shape[:2]
        if self.orientation == "I":
            rot = np.broadcast_to(np.eye(D), (K, D, D)).copy()
            B = np.diagonal(cov, axis1=1, axis2=2)
        elif self.orientation == "E":
            weights = 1.0 + _GOLDEN * np.arange(K)
            scale = np.trace(cov, axis1=1, axis2=2)[:, None, None]
            _, vecs = np.linalg.eigh(np.sum(weights[:, None, None] * cov / scale, axis=0))
            rot = np.broadcast_to(vecs[:, ::-1], (K, D, D)).copy()
            B = np.einsum("kji,kjl,kli->ki", rot, cov, rot)
        else:
            vals, vecs = np.linalg.eigh(cov)
            rot, B = vecs[..., ::-1].copy(), vals[..., ::-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_b = np.log(B)
        log_vol = log_b.mean(axis=1)
        log_shape = log_b - log_vol[:, None]
        if self.volume == "E":
            log_vol = np.full(K, log_vol.mean())
        if self.shape_kind == "I":
            log_shape = np.zeros((K, D))
        elif self.shape_kind == "E":
            log_shape = np.tile(log_shape.mean(axis=0), (K, 1))
        return Decomposition(np.exp(log_vol), np.exp(log_shape), _proper(rot))

    def check(self, covariances, n_components, n_features):
        cov = super().check(covariances, n_components, n_features)
        again = compose(self.decompose(cov))
        scale = np.abs(cov).max()
        if not np.allclose(again, cov, rtol=1e-6, atol=1e-9 * scale):
            raise ValueError(
                f"the covariances do not have the {self.name} structure "
                f"(volume {self.volume}, shape {self.shape_kind}, orientation "
                f"{self.orientation}: E equal, V varying, I identity); start from "
                "responsibilities instead, or give covariances of this structure"
            )
        return cov

    # ------------------------------------------------------------------ parametrisation
    def n_packed(self, n_components, n_features):
        return self.n_parameters(n_components, n_features)

    def pack(self, covariances):
        cov = np.asarray(covariances, dtype=np.float64)
        K, D = cov.shape[:2]
        import scipy.linalg

        dec = self.decompose(cov)
        parts = [np.log(dec.volume[: _n_units(self.volume, K)])]
        n_shape = _n_units(self.shape_kind, K)
        parts.append(np.log(dec.shape[:n_shape, : D - 1]).ravel())
        iu = np.triu_indices(D, 1)
        for rot in dec.orientation[: _n_units(self.orientation, K)]:
            S = np.real(scipy.linalg.logm(rot))
            parts.append(0.5 * (S - S.T)[iu])
        return np.concatenate(parts)

    def unpack(self, vec, n_components, n_features):
        K, D = n_components, n_features
        import scipy.linalg

        vec = _check_vector(vec, self.n_packed(K, D))
        nv, ns, no = (_n_units(c, K) for c in self.name)
        r = D * (D - 1) // 2
        log_vol = vec[:nv]
        log_shape = vec[nv : nv + ns * (D - 1)].reshape(ns, D - 1)
        skew = vec[nv + ns * (D - 1) :].reshape(no, r)
        log_shape = np.column_stack([log_shape, -log_shape.sum(axis=1)])
        iu = np.triu_indices(D, 1)
        rotations = []
        for s in skew:
            S = np.zeros((D, D))
            S[iu] = s
            rotations.append(scipy.linalg.expm(S - S.T))
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            dec = Decomposition(
                np.exp(np.broadcast_to(log_vol, (K,))) if nv else np.ones(K),
                np.exp(np.broadcast_to(log_shape, (K, D))) if ns else np.ones((K, D)),
                np.broadcast_to(rotations, (K, D, D))
                if no
                else np.broadcast_to(np.eye(D), (K, D, D)),
            )
            cov = compose(dec)
        return _check_unpacked(self, cov)


def _proper(rot: np.ndarray) -> np.ndarray:
    """Orthogonal matrices with each column's sign chosen so that the diagonal is
    non-negative and the determinant +1 (flipping a column leaves ``D A D'`` as it is),
    so that ``logm`` gives a real skew-symmetric matrix near the identity."""
    rot = np.array(rot, dtype=np.float64)
    diag = np.diagonal(rot, axis1=1, axis2=2)
    rot *= np.where(diag < 0, -1.0, 1.0)[:, None, :]
    flip = np.linalg.det(rot) < 0
    if flip.any():
        j = np.argmin(np.abs(np.diagonal(rot, axis1=1, axis2=2)), axis=1)
        for k in np.flatnonzero(flip):
            rot[k, :, j[k]] *= -1.0
    return rot
