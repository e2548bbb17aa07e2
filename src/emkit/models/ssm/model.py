"""The linear-Gaussian state-space model as a pure EM model (Shumway & Stoffer 1982).

Generative model, for each sequence ``y_1 .. y_T``::

    x_1 ~ Normal(initial_mean, initial_cov)          (or a flat prior: diffuse start)
    x_t = A x_{t-1} + b + w_t,   w_t ~ Normal(0, Q)  (t = 2 .. T)
    y_t = C x_t + d + v_t,       v_t ~ Normal(0, R)

E-step: the Kalman filter and Rauch-Tung-Striebel smoother of every sequence
(:mod:`emkit.models.ssm.kernels`) give the smoothed moments of the states; a missing
entry of ``y_t`` is a latent variable as well, replaced by its conditional moments
given the states and the observed entries. The statistics are sums over steps and
sequences (additive over any split into sequences):

* ``x_sum, x_sxx``: sums of ``E[x_t]`` and ``E[x_t x_t^T]`` over all steps;
* ``y_sum, yx, yy``: sums of ``E[y_t]``, ``E[y_t x_t^T]``, ``E[y_t y_t^T]``;
* ``prev_*, next_*, cross_sxx``: over the transitions ``t-1 -> t``, the moments of
  ``x_{t-1}``, of ``x_t`` and ``sum E[x_t x_{t-1}^T]``;
* ``first_*``: over sequences, the moments of ``x_1``.

M-step in closed form: ``[C d]`` is the regression of ``y_t`` on ``[x_t, 1]``, ``[A b]``
that of ``x_t`` on ``[x_{t-1}, 1]``, jointly in each pair; ``R`` and ``Q`` are the
expected residual covariances at the new coefficients (their diagonals for
``"diag"``); a parameter held fixed (:meth:`LinearGaussianSSMModel.hold`) is kept and
the others are maximised given it. With a diffuse start the initial moments are not
parameters, and the objective is the diffuse log-likelihood.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

from emkit.data.sequences import SequenceBatch
from emkit.engine.protocol import Reseeded
from emkit.models.ssm.kernels import run_kalman

__all__ = ["COV_TYPES", "INIT_METHODS", "LinearGaussianSSMModel", "SSMParams", "SSMStats"]

COV_TYPES = ("full", "diag")
INIT_METHODS = ("pca", "random")


class SSMParams(NamedTuple):
    """Parameters, named like the estimator's fitted attributes."""

    transition: np.ndarray  # A (n, n)
    transition_offset: np.ndarray  # b (n,)
    observation: np.ndarray  # C (p, n)
    observation_offset: np.ndarray  # d (p,)
    transition_cov: np.ndarray  # Q (n, n)
    observation_cov: np.ndarray  # R (p, p)
    initial_mean: np.ndarray  # (n,)
    initial_cov: np.ndarray  # (n, n)


PARAM_NAMES: tuple[str, ...] = SSMParams._fields


class SSMStats(NamedTuple):
    """Expected sufficient statistics (sums; see the module docstring)."""

    n_seq: np.ndarray
    first_sum: np.ndarray
    first_sxx: np.ndarray
    n_trans: np.ndarray
    prev_sum: np.ndarray
    prev_sxx: np.ndarray
    next_sum: np.ndarray
    next_sxx: np.ndarray
    cross_sxx: np.ndarray
    n_obs: np.ndarray
    x_sum: np.ndarray
    x_sxx: np.ndarray
    y_sum: np.ndarray
    yx: np.ndarray
    yy: np.ndarray


def _sym(M: np.ndarray) -> np.ndarray:
    return 0.5 * (M + M.T)


def _regress(Syx, sy, Sxx, sx, N, B, c, hold_B: bool, hold_c: bool):
    """Maximise over ``(B, c)`` the expected Gaussian log-likelihood of ``y = B x + c``
    from the sums ``Syx = E[y x^T]``, ``sy``, ``Sxx``, ``sx`` over ``N`` terms; a held
    coefficient is kept and the other maximised given it."""
    if hold_B and hold_c:
        return B, c
    if hold_B:
        return B, (sy - B @ sx) / N
    if hold_c:
        return np.linalg.solve(Sxx, (Syx - np.outer(c, sx)).T).T, c
    k = Sxx.shape[0]
    Szz = np.empty((k + 1, k + 1))
    Szz[:k, :k], Szz[:k, k], Szz[k, :k], Szz[k, k] = Sxx, sx, sx, N
    Syz = np.column_stack([Syx, sy])
    coef = np.linalg.solve(Szz, Syz.T).T
    return coef[:, :k], coef[:, k]


def _residual_cov(Syy, Syx, sy, Sxx, sx, N, B, c, cov_type: str):
    """``(1/N) sum E[(y - B x - c)(y - B x - c)^T]`` from the sums (diagonal for "diag")."""
    BSxy = B @ Syx.T
    cs = np.outer(c, sy - B @ sx)
    S = Syy - BSxy - BSxy.T + B @ Sxx @ B.T - cs - cs.T + N * np.outer(c, c)
    S = _sym(S / N)
    return np.diag(np.diag(S)) if cov_type == "diag" else S


def _positive_definite(S: np.ndarray) -> np.ndarray:
    """``S``, or ``S`` plus the smallest ridge ``10^k * 1e-12 * mean(diag S)`` that makes it
    positive definite when round-off has left it singular (a covariance the data drive to
    zero, such as the initial covariance of a single sequence): a change far below what
    the log-likelihood can see, instead of a failed fit."""
    scale = max(float(np.mean(np.diag(S))), np.finfo(float).tiny)
    for k in range(8):
        try:
            np.linalg.cholesky(
                S if k == 0 else S + 10.0 ** (k - 1) * 1e-12 * scale * np.eye(len(S))
            )
        except np.linalg.LinAlgError:
            continue
        return S if k == 0 else S + 10.0 ** (k - 1) * 1e-12 * scale * np.eye(len(S))
    return S


class LinearGaussianSSMModel:
    """Kalman-filter EM as the engine's pure functions; batches are
    :class:`~emkit.data.sequences.SequenceBatch` of ``(Y, observed)``: the data with
    any finite value where missing, and the boolean mask of observed entries.

    Parameters
    ----------
    state_dim : int
    transition_cov_type, observation_cov_type : {"full", "diag"}
    diffuse : bool
        Exact diffuse start: ``initial_mean``/``initial_cov`` are ignored and never
        estimated.
    init : {"pca", "random"}
        How :meth:`init_params` draws what ``given`` does not hold (see there).
    given : dict, optional
        Starting values (keys of :class:`SSMParams`) that :meth:`init_params` keeps.
    """

    def __init__(
        self,
        state_dim: int,
        *,
        transition_cov_type: str = "full",
        observation_cov_type: str = "full",
        diffuse: bool = False,
        init: str = "pca",
        given: Mapping[str, Any] | None = None,
    ):
        self.state_dim = state_dim
        self.transition_cov_type = transition_cov_type
        self.observation_cov_type = observation_cov_type
        self.diffuse = diffuse
        self.init = init
        self.given = dict(given or {})
        self.held: frozenset[str] = frozenset()

    # ------------------------------------------------------------------ fixed parameters
    def hold(self, names: Iterable[str]) -> LinearGaussianSSMModel:
        """A copy of the model whose M-step keeps the parameters ``names`` as they are
        and maximises the others given them.

        Raises
        ------
        ValueError
            A name is not a parameter (see :class:`SSMParams`).
        """
        names = [names] if isinstance(names, str) else list(names)
        unknown = sorted(set(names) - set(PARAM_NAMES))
        if unknown:
            raise ValueError(
                f"cannot hold {unknown}: not parameters of the state-space model; use "
                f"{', '.join(PARAM_NAMES)}"
            )
        out = copy.copy(self)
        out.held = self.held | frozenset(names)
        return out

    # ------------------------------------------------------------------ the three steps
    def init_params(self, data: SequenceBatch, rng: np.random.Generator) -> SSMParams:
        """Starting parameters: ``given`` values, the rest from the data.

        ``"pca"``: ``C`` spans the leading principal axes of the observed covariance
        (half of each axis' variance goes to the state), the states are projected
        observations, ``A, b`` their lag-one regression and ``Q`` its residual
        covariance, ``R`` the variance the states leave (at least a tenth of each
        coordinate's); ``"random"``: the same with a random ``C``. State coordinates
        beyond the number of observed ones get small random loadings.
        """
        (Y, obs), offsets = data
        n, p, g = self.state_dim, Y.shape[1], self.given
        counts = np.maximum(obs.sum(axis=0), 1)
        mu = np.where(obs, Y, 0.0).sum(axis=0) / counts
        Yc = np.where(obs, Y - mu, 0.0)
        pairs = np.maximum(obs.T.astype(np.float64) @ obs, 1.0)
        cov = _sym(Yc.T @ Yc / pairs)
        evals, evecs = np.linalg.eigh(cov)
        evals, evecs = np.maximum(evals[::-1], 0.0), evecs[:, ::-1]
        scale = max(float(np.mean(np.diag(cov))), np.finfo(float).tiny)
        C = g.get("observation")
        if C is None:
            C = rng.normal(size=(p, n)) * np.sqrt(scale / (2 * n))
            if self.init == "pca":
                k = min(n, p)
                C[:, :k] = evecs[:, :k] * np.sqrt(np.maximum(evals[:k] / 2, 1e-3 * scale))
                C[:, k:] *= 1e-2
        d = g.get("observation_offset", mu)
        X = (np.where(obs, Y, mu) - d) @ np.linalg.pinv(C).T
        first = offsets[:-1]
        has_prev = np.ones(len(Y), dtype=bool)
        has_prev[first] = False
        has_next = np.roll(has_prev, -1)
        Xp, Xn = X[has_next], X[has_prev]
        spread = float(np.trace(np.atleast_2d(np.cov(X.T)))) / n  # X does not scale with Y
        eps = 1e-3 * (spread if spread > 0 else 1.0)
        A, b = g.get("transition"), g.get("transition_offset")
        if A is None:
            ridge = eps * len(Xp) * np.eye(n)
            if b is None:
                Z = np.column_stack([Xp, np.ones(len(Xp))])
                coef = np.linalg.solve(Z.T @ Z + np.pad(ridge, (0, 1)), Z.T @ Xn).T
                A, b = coef[:, :n], coef[:, n]
            else:
                A = np.linalg.solve(Xp.T @ Xp + ridge, Xp.T @ (Xn - b)).T
        elif b is None:
            b = np.mean(Xn - Xp @ A.T, axis=0)
        Q = g.get("transition_cov")
        if Q is None:
            res = Xn - Xp @ A.T - b
            Q = _sym(res.T @ res / max(len(res), 1)) + eps * np.eye(n)
        R = g.get("observation_cov")
        if R is None:
            explained = np.diag(C @ np.atleast_2d(np.cov(X.T)) @ C.T)
            R = np.diag(np.maximum(np.diag(cov) - explained, 0.1 * np.diag(cov)) + 1e-9 * scale)
        m0 = g.get("initial_mean", X[first].mean(axis=0))
        P0 = g.get("initial_cov")
        if P0 is None:
            P0 = np.atleast_2d(np.cov(X.T)) + eps * np.eye(n)
        if self.transition_cov_type == "diag":
            Q = np.diag(np.diag(Q))
        if self.observation_cov_type == "diag":
            R = np.diag(np.diag(R))
        if self.diffuse:  # not parameters: zeros that stay (finite, for SQUAREM's vectors)
            m0, P0 = np.zeros(n), np.zeros((n, n))
        Q, R, P0 = (v if k in g else _positive_definite(v) for k, v in
                    (("transition_cov", Q), ("observation_cov", R), ("initial_cov", P0)))  # fmt: skip
        vals = (A, b, C, d, Q, R, m0, P0)
        return SSMParams(*(np.array(v, dtype=np.float64) for v in vals))

    def run(self, params: SSMParams, Y, obs, offsets, store: bool = False):
        """The filter and smoother at ``params`` (a ValueError when they fail, or when a
        covariance is not positive definite: for example a SQUAREM trial point)."""
        covs = ["transition_cov", "observation_cov"] + ([] if self.diffuse else ["initial_cov"])
        for name in covs:
            try:
                np.linalg.cholesky(getattr(params, name))
            except np.linalg.LinAlgError:
                raise ValueError(f"{name} is not positive definite") from None
        out = run_kalman(
            Y,
            obs,
            offsets,
            params,
            diffuse=self.diffuse,
            r_diag=self.observation_cov_type == "diag",
            store=store,
        )
        bad = np.flatnonzero(out.failed)
        if bad.size:
            s = int(bad[0])
            if out.failed[s] == 1:
                raise ValueError(
                    f"the innovation covariance C P C^T + R of sequence {s} at step "
                    f"{int(out.failed_step[s])} is not positive definite: the parameters "
                    "are degenerate or too ill-conditioned (an over-sized state_dim, or an "
                    "initial_cov estimated from too few sequences: fix it, or use "
                    "initial='diffuse')"
                )
            raise ValueError(
                f"sequence {s} does not identify its diffuse initial state (initial="
                "'diffuse' needs at least state_dim observed values that determine it); "
                "give a longer series or initial='estimate'"
            )
        return out

    def estep(self, params: SSMParams, batch: SequenceBatch) -> tuple[SSMStats, float]:
        (Y, obs), offsets = batch
        out = self.run(params, Y, obs, offsets)
        n, p = params.transition.shape[0], Y.shape[1]
        M, Yh, acc = out.means, out.yhat, out.acc
        has_prev = np.ones(len(Y), dtype=bool)
        has_prev[offsets[:-1]] = False
        has_next = np.roll(has_prev, -1)
        Mn, Mp = M[has_prev], M[has_next]
        sumP, P1, PT = acc[0, :n, :n], acc[1, :n, :n], acc[2, :n, :n]
        F = out.first_means
        stats = SSMStats(
            n_seq=np.float64(len(offsets) - 1),
            first_sum=F.sum(axis=0),
            first_sxx=P1 + F.T @ F,
            n_trans=np.float64(len(Mn)),
            prev_sum=Mp.sum(axis=0),
            prev_sxx=(sumP - PT) + Mp.T @ Mp,
            next_sum=Mn.sum(axis=0),
            next_sxx=(sumP - P1) + Mn.T @ Mn,
            cross_sxx=acc[3, :n, :n] + Mn.T @ Mp,
            n_obs=np.float64(len(Y)),
            x_sum=M.sum(axis=0),
            x_sxx=sumP + M.T @ M,
            y_sum=Yh.sum(axis=0),
            yx=Yh.T @ M + acc[4, :p, :n],
            yy=Yh.T @ Yh + acc[5, :p, :p],
        )
        return stats, float(out.loglik.sum())

    def mstep(self, stats: SSMStats, params: SSMParams) -> SSMParams:
        s = stats
        C, d, R = self._block(
            (s.yy, s.yx, s.y_sum, s.x_sxx, s.x_sum, s.n_obs),
            params, ("observation", "observation_offset", "observation_cov"),
            self.observation_cov_type,
        )  # fmt: skip
        A, b, Q = self._block(
            (s.next_sxx, s.cross_sxx, s.next_sum, s.prev_sxx, s.prev_sum, s.n_trans),
            params, ("transition", "transition_offset", "transition_cov"),
            self.transition_cov_type,
        )  # fmt: skip
        m0, P0 = params.initial_mean, params.initial_cov
        h = self.held
        if not self.diffuse:
            if "initial_mean" not in h:
                m0 = s.first_sum / s.n_seq
            if "initial_cov" not in h:
                one = np.ones((1, 1))
                P0 = _residual_cov(
                    s.first_sxx, s.first_sum[:, None], s.first_sum, one, np.ones(1), s.n_seq,
                    np.zeros((len(m0), 1)), m0, "full",
                )  # fmt: skip
        new = SSMParams(A, b, C, d, Q, R, m0, P0)
        # A covariance that round-off left singular gets a tiny ridge; the step is then
        # not an exact EM step, and the engine is told so (Reseeded).
        fixes = {}
        for name in ("transition_cov", "observation_cov", "initial_cov"):
            if name not in self.held and not (self.diffuse and name == "initial_cov"):
                value = getattr(new, name)
                fixed = _positive_definite(value)
                if fixed is not value:
                    fixes[name] = fixed
        return Reseeded(new._replace(**fixes)) if fixes else new

    def _block(self, sums, params: SSMParams, names: tuple[str, str, str], cov_type: str):
        """``(B, c, S)`` of one regression ``y = B x + c + noise(S)`` (the observation
        or the transition equation) from its sums ``(Syy, Syx, sy, Sxx, sx, N)``: held
        ones kept, the others maximised given them."""
        Syy, Syx, sy, Sxx, sx, N = sums
        B, c, S = (getattr(params, name) for name in names)
        held = [name in self.held for name in names]
        B, c = _regress(Syx, sy, Sxx, sx, N, B, c, held[0], held[1])
        if not held[2]:
            S = _residual_cov(Syy, Syx, sy, Sxx, sx, N, B, c, cov_type)
        return B, c, S
