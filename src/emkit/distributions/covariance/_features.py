"""How the E-step evaluates K Gaussians on a block of rows with one or two large matrix
products (see :mod:`emkit.distributions.covariance.base` for the choice between them)."""

from __future__ import annotations

import numpy as np


def _quadratic_features(X: np.ndarray, squares: str) -> np.ndarray:
    """Per-row features, transposed to (F, B) so that each is built by one contiguous op.

    The rows are the squares, then ``x``, then a row of ones. ``squares`` is "packed"
    (``x_i x_j`` for i <= j), "diag" (``x**2``) or "norm" (``|x|^2``). The ones carry
    the constant of each log-density into the same product, and give the counts in
    the moment product.
    """
    # Rows of X.T are contiguous when X is Fortran-ordered (the estimators centre their
    # data into that layout): then no transposed copy is needed.
    xt = X.T if X.strides[0] == X.itemsize else np.ascontiguousarray(X.T)
    D, B = xt.shape
    n_sq = _n_squares(squares, D)
    phi = np.empty((n_sq + D + 1, B), dtype=X.dtype)
    if squares == "packed":
        row = 0
        for i in range(D):
            np.multiply(xt[i:], xt[i], out=phi[row : row + D - i])
            row += D - i
    elif squares == "diag":
        np.multiply(xt, xt, out=phi[:D])
    else:
        np.einsum("db,db->b", xt, xt, out=phi[0])
    phi[n_sq : n_sq + D] = xt
    phi[-1] = 1.0
    return phi


def _n_squares(squares: str, D: int) -> int:
    return {"packed": D * (D + 1) // 2, "diag": D, "norm": 1}[squares]


class _Expanded:
    """Log-densities as one product of quadratic features with a coefficient matrix."""

    __slots__ = ("coef", "squares")

    def __init__(self, squares: str, quad: np.ndarray, lin: np.ndarray, const: np.ndarray):
        # log p_k(x) = const_k - (x'L_k x - 2 x'L_k mu_k) / 2
        self.squares = squares
        self.coef = np.ascontiguousarray(np.column_stack([-0.5 * quad, lin, const]))

    @staticmethod
    def build(squares, quad, prec_mu, means, offset, dtype) -> _Expanded:
        """``quad`` (K, F): coefficients of the squares; ``prec_mu`` (K, D) = L_k mu_k.

        ``dtype`` is the arithmetic of the log-densities; the caller chooses float32
        only where the cancellation of the expansion stays small. Features, and so
        the statistics, are always float64: their cancellation happens in the M-step.
        """
        const = offset - 0.5 * np.einsum("kd,kd->k", prec_mu, means)
        out = _Expanded(squares, quad, prec_mu, const)
        out.coef = out.coef.astype(dtype)
        return out

    def log_density(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phi = _quadratic_features(X.astype(np.float64, copy=False), self.squares)
        # (K, B) products are the faster shape for BLAS; callers get a (B, K) view.
        if self.coef.dtype == np.float64:
            return (self.coef @ phi).T, phi
        return (self.coef @ phi.astype(self.coef.dtype)).T, phi

    @staticmethod
    def moments(phi: np.ndarray, resp: np.ndarray, D: int):
        g = resp.T @ phi.T  # (K, F): responsibility-weighted sums of every feature
        return g[:, -1], g[:, -1 - D : -1], g[:, : -1 - D]


class _Whitened:
    """Whitened residuals of every component from one product (large D, few components)."""

    __slots__ = ("means", "offset", "u_aug", "u_inv")

    def __init__(self, u_aug, offset, u_inv, means):
        self.u_aug, self.offset, self.u_inv, self.means = u_aug, offset, u_inv, means

    def log_density(self, X: np.ndarray) -> tuple[np.ndarray, _WhitenedBlock]:
        B, D = X.shape
        xa = np.empty((B, D + 1), dtype=self.u_aug.dtype)
        xa[:, :D] = X
        xa[:, D] = 1.0
        za = (xa @ self.u_aug).reshape(B, -1, D + 1)
        lp = np.einsum("bkd,bkd->bk", za, za)
        lp -= 1.0
        lp *= -0.5
        lp += self.offset
        return lp, _WhitenedBlock(za, self)


class _WhitenedBlock:
    __slots__ = ("cache", "za")

    def __init__(self, za, cache):
        self.za, self.cache = za, cache

    def centred_moments(self, resp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Counts, ``sum r (x - mu)`` (K, D) and ``sum r (x - mu)(x - mu)'`` (K, D, D),
        about the means the cache was prepared with (accurate even in float32, and
        whatever the offset of the data)."""
        za, D = self.za, self.za.shape[2] - 1
        rz = za * resp[:, :, None]
        m = np.matmul(rz.transpose(1, 2, 0), za.transpose(1, 0, 2)).astype(np.float64)
        nk, u_inv = m[:, D, D], self.cache.u_inv
        d1 = np.einsum("kd,kde->ke", m[:, D, :D], u_inv)  # sum r (x - mu)
        c2 = np.swapaxes(u_inv, 1, 2) @ m[:, :D, :D] @ u_inv  # sum r (x - mu)(x - mu)'
        return nk, d1, c2

    def moments(self, resp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw moments (sum r x, packed sum r x x') from the centred ones."""
        nk, d1, c2 = self.centred_moments(resp)
        D, mu = d1.shape[1], self.cache.means
        outer = mu[:, :, None] * d1[:, None, :]
        s2 = (
            c2
            + outer
            + np.swapaxes(outer, 1, 2)
            + nk[:, None, None] * (mu[:, :, None] * mu[:, None, :])
        )
        iu = np.triu_indices(D)
        return nk, d1 + nk[:, None] * mu, s2[:, iu[0], iu[1]]


def _upper_inverse(u: np.ndarray) -> np.ndarray:
    """Inverse of a stack of upper triangular matrices."""
    return np.triu(np.linalg.solve(u, np.broadcast_to(np.eye(u.shape[-1]), u.shape)))


def whitened(means: np.ndarray, prec_chol: np.ndarray, offset, dtype) -> _Whitened:
    """The E-step constants of whitened residuals for K components (prec_chol (K, D, D)).

    One (D+1, K*(D+1)) matrix whitens a row for every component in one product: with x
    augmented by a 1, component k's block of columns gives ``[(x - mu_k) U_k, 1]``. The
    trailing 1 makes the moment product return the first moments and the counts as
    well, with no extra pass over the data.
    """
    K, D = means.shape
    u_aug = np.zeros((D + 1, K, D + 1))
    u_aug[:D, :, :D] = prec_chol.transpose(1, 0, 2)
    u_aug[D, :, :D] = -np.einsum("kd,kde->ke", means, prec_chol)
    u_aug[D, :, D] = 1.0
    return _Whitened(
        u_aug.reshape(D + 1, K * (D + 1)).astype(dtype),
        np.asarray(offset, dtype=dtype),
        _upper_inverse(prec_chol),
        means,
    )
