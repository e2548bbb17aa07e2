"""Online (mini-batch) EM: a running average of scaled mini-batch statistics.

Cappe, O. and Moulines, E. (2009). On-line expectation-maximization algorithm for
latent data models. *Journal of the Royal Statistical Society, Series B* 71(3),
593-613.

Batch EM alternates a full E-step (the statistics of the whole data) and an M-step.
Online EM replaces the full statistics by a stochastic-approximation estimate that is
updated after every mini-batch,

    s_t = (1 - rho_t) s_{t-1} + rho_t (N / n_t) S(batch_t; theta_{t-1}),
    theta_t = M(s_t),

where ``S(batch; theta)`` are the batch's expected sufficient statistics at ``theta``
(the model's ``estep``), ``N`` the number of rows of the data, ``n_t`` the rows of the
batch, and ``M`` the model's ``mstep``. Scaling by ``N / n_t`` makes ``s_t`` an estimate
of the statistics of the whole data, so M-steps whose result depends on the amount of
data (MAP-EM with a prior) see the right amount. This needs statistics that can be
averaged across iterations: *natural* statistics (sums of fixed functions of the data,
weighted by posteriors) that do not depend on the parameters they were computed at, as
the Gaussian mixture's raw moments. Any model whose ``estep`` returns such statistics
works unchanged.

The model-agnostic step is :func:`online_step` (one mini-batch; an estimator's
``partial_fit`` calls it); :class:`OnlineEM` is the engine scheme that runs it over
shuffled passes of the data.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from emkit._pytree import tree_map, tree_scale
from emkit.data.sources import DataSource
from emkit.engine.protocol import unwrap_reseeded
from emkit.engine.schemes import RunContext, Scheme

__all__ = ["OnlineEM", "OnlineState", "online_step"]


def online_step(
    model: Any,
    params: Any,
    running_stats: Any,
    batch: Any,
    rho: float,
    scale: float,
    *,
    return_loglik: bool = False,
) -> tuple[Any, Any] | tuple[Any, Any, float]:
    """One step of online EM (Cappe & Moulines 2009) on one mini-batch.

    Computes the batch's expected sufficient statistics at ``params``, scales them by
    ``scale``, averages them into the running statistics with weight ``rho``, and
    takes an M-step from the result::

        stats, _ = model.estep(params, batch)
        running_stats = (1 - rho) * running_stats + rho * scale * stats   # leaf-wise
        params = model.mstep(running_stats, params)

    The function is pure: nothing passed in is modified.

    Parameters
    ----------
    model : object
        An EM model (``estep``, ``mstep``) whose statistics are additive and do not
        depend on the parameters they were computed at, so they may be averaged
        across steps.
    params : pytree
        Current parameters (the E-step runs at them).
    running_stats : pytree or None
        Running statistics from the previous step; ``None`` for the first step, whose
        running statistics are then the batch's scaled statistics (``rho`` is ignored).
    batch : pytree of arrays
        The mini-batch, in the form ``model.estep`` takes.
    rho : float
        Step size in (0, 1]; 1 forgets the past statistics.
    scale : float
        Positive factor applied to the batch's statistics, normally
        ``n_samples / n_batch_rows`` so that the running statistics estimate those of
        the whole data set.
    return_loglik : bool, default False
        Also return the batch's log-likelihood at ``params`` (before the step), which
        the E-step computes anyway.

    Returns
    -------
    params : pytree
        Parameters after the M-step (a re-seeding M-step's :class:`Reseeded` is
        unwrapped).
    running_stats : pytree
        The updated running statistics (new arrays). A model whose statistics are
        taken about its current parameters (the Gaussian's moments about the means, to
        stay exact far from the origin) defines ``shift_stats(stats, old, new)``: the
        running statistics are then re-expressed about the returned parameters, the
        ones the next step's E-step uses, so they are averaged on a common footing.

    Raises
    ------
    ValueError
        If ``rho`` is not in (0, 1] or ``scale`` is not positive and finite.

    Notes
    -----
    Unlike an exact EM step, an online step may lower the log-likelihood of the data:
    it only follows the full-data EM step on average.
    """
    rho = _check_rho(rho, "rho")
    if not _is_real(scale) or not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    stats, loglik = model.estep(params, batch)
    if running_stats is None or rho == 1.0:
        running_stats = tree_scale(stats, float(scale))
    else:
        keep, gain = 1.0 - rho, rho * float(scale)
        running_stats = tree_map(lambda s, b: keep * s + gain * b, running_stats, stats)
    new_params, _ = unwrap_reseeded(model.mstep(running_stats, params))
    shift = getattr(model, "shift_stats", None)
    if shift is not None:  # keep the running statistics about the next E-step's parameters
        running_stats = shift(running_stats, params, new_params)
    if return_loglik:
        return new_params, running_stats, float(loglik)
    return new_params, running_stats


class OnlineEM(Scheme):
    """Online / mini-batch EM (Cappe & Moulines 2009) as an engine scheme.

    Each pass over the data shuffles the rows with the restart's generator
    (``ctx.rng``) and cuts them into ``ceil(n_samples / batch_size)`` mini-batches of
    nearly equal size (at most ``batch_size`` rows; sizes differ by at most one row, so
    no tiny remainder batch gets a full step). Every mini-batch is one
    :func:`online_step` with step size::

        rho_t = (t + t0) ** -kappa,

    where ``t = 1, 2, ...`` counts mini-batches across passes (it is not reset at the
    start of a pass). The running statistics start as the full-data statistics of the
    E-step the run makes at its starting point anyway (to record the starting
    objective), so the first, noisiest mini-batches are averaged with the whole data
    instead of replacing it: from a poor start this lands in batch EM's basin more
    often (at N=2,000,000, 1 in 20 shuffles went elsewhere, against 4 in 20 when the
    first mini-batch replaced the statistics). With ``kappa = 1, t0 = 0``,
    ``rho_1 = 1`` and the running statistics are the plain mean of all scaled
    mini-batch statistics so far.

    Parameters
    ----------
    batch_size : int
        Rows per mini-batch (at least 1). ``batch_size >= n_samples`` gives one
        mini-batch per pass.
    kappa : float, default 0.6
        Decay exponent of the step sizes, in (0.5, 1]: the Robbins-Monro conditions
        ``sum rho_t = inf`` and ``sum rho_t**2 < inf`` hold exactly there.
    t0 : float, default 2.0
        Non-negative offset of the step sizes; a larger ``t0`` makes the early steps
        smaller (more averaging, less noise, slower forgetting of the start).
    step_size : callable, optional
        A function ``t -> rho_t`` that replaces ``(t + t0) ** -kappa``
        (values must lie in (0, 1]); for experiments. ``lambda t: 1.0`` with
        ``batch_size >= n_samples`` is batch EM. The convergence guarantee below is
        then the caller's to check.

    Notes
    -----
    ``max_iter`` counts passes over the data. At the end of every pass the full-data
    objective is evaluated at the current parameters (one extra E-step over the whole
    data), recorded in ``history`` and passed to callbacks; a callback returning
    ``True`` stops after that pass. Each pass therefore costs about two full E-steps
    (the mini-batch E-steps and the evaluation) plus one M-step per mini-batch;
    ``EMResult.n_estep`` counts both kinds of pass (``2 * n_iter + 1``).

    Guarantees. Online EM is **not monotone**: the log-likelihood may go down from one
    pass to the next, so the engine's monotonicity certificate does not apply (the
    passes are recorded as non-EM steps) and ``check_monotone`` has no effect.
    Cappe & Moulines (2009) show that for models whose complete-data likelihood is in
    the exponential family, with a well-defined M-step and step sizes satisfying the
    Robbins-Monro conditions (here ``kappa`` in (0.5, 1]), the running statistics
    converge almost surely to the set of fixed points of the (limiting) EM map, i.e.
    the parameters to stationary points of the log-likelihood. Their theorem is for an
    infinite stream of independent observations; repeated shuffled passes over a finite
    data set are the usual practical counterpart, whose fixed points are those of batch
    EM on that data set. Nothing is guaranteed after a finite number of passes, and the
    run may end near another local maximum than batch EM from the same start: the
    early, large steps on noisy mini-batches take another path (small mini-batches
    make this more likely).

    Convergence test. Because the objective is noisy, a pass counts as converged when
    the full-data objective changed by less than ``tol * scale`` in absolute value
    (``tol`` per observation), whichever the direction; the run then stops with
    ``converged=True``. With the default ``tol`` the noise of the step sizes usually
    keeps the change above that, and the run ends after ``max_iter`` passes.

    The mini-batch E-steps run one after the other in the calling thread (each depends
    on the previous M-step); the executor is used for the full-data evaluations only.
    The data source must give random access to rows (``DataSource.take``), as
    in-memory arrays do.

    Examples
    --------
    >>> import numpy as np
    >>> import emkit
    >>> from emkit.models.mixture.gaussian_model import GaussianMixtureModel
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (500, 2)), rng.normal(3, 1, (500, 2))])
    >>> result = emkit.em(
    ...     GaussianMixtureModel(2), (X, None), variant="online", batch_size=100,
    ...     max_iter=3, random_state=0,
    ... )
    >>> result.n_iter
    3
    >>> np.round(np.sort(result.params.components.mean[:, 0]))
    array([-3.,  3.])
    """

    def __init__(
        self,
        *,
        batch_size: int,
        kappa: float = 0.6,
        t0: float = 2.0,
        step_size: Callable[[int], float] | None = None,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(
                f"batch_size must be an integer (rows per mini-batch), got {batch_size!r}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if not _is_real(kappa):
            raise TypeError(f"kappa must be a number, got {kappa!r}")
        if not 0.5 < kappa <= 1.0:
            raise ValueError(
                f"kappa must lie in (0.5, 1] (the Robbins-Monro conditions of online EM), "
                f"got {kappa!r}"
            )
        if not _is_real(t0):
            raise TypeError(f"t0 must be a number, got {t0!r}")
        if not (math.isfinite(t0) and t0 >= 0):
            raise ValueError(f"t0 must be a non-negative finite number, got {t0!r}")
        if step_size is not None and not callable(step_size):
            raise TypeError("step_size must be a callable t -> rho_t")
        self.batch_size = int(batch_size)
        self.kappa = float(kappa)
        self.t0 = float(t0)
        self.step_size = step_size

    def __repr__(self) -> str:
        extra = "" if self.step_size is None else f", step_size={self.step_size!r}"
        return f"OnlineEM(batch_size={self.batch_size}, kappa={self.kappa}, t0={self.t0}{extra})"

    def rho(self, t: int) -> float:
        """Step size of mini-batch ``t`` (``t = 1, 2, ...`` across passes)."""
        if self.step_size is not None:
            return _check_rho(self.step_size(t), f"step_size({t})")
        return (t + self.t0) ** -self.kappa

    def partial_step(
        self, model: Any, params: Any, state: OnlineState | None, batch: Any, scale: float
    ) -> tuple[Any, OnlineState, float]:
        """One mini-batch of this scheme, driven from outside (an estimator's ``partial_fit``).

        ``state`` is what the previous call returned (None at the first call, whose
        step replaces the running statistics); the step size is :meth:`rho` of the
        mini-batch's number, as in :meth:`run`. Returns the new parameters, the new
        state and the batch's log-likelihood at the parameters its E-step used.
        """
        t = 1 if state is None else state.t + 1
        running = None if state is None else state.stats
        params, stats, loglik = online_step(
            model, params, running, batch, self.rho(t), scale, return_loglik=True
        )
        return params, OnlineState(t, stats), loglik

    def run(self, ctx: RunContext, params: Any) -> tuple[Any, float, float]:
        source, monitor, model = ctx.source, ctx.monitor, ctx.model
        _check_source(source)
        n = int(source.n_samples)
        if n < 1:
            raise ValueError("online EM needs at least one observation")
        n_batches = -(-n // self.batch_size)
        running, loglik, objective = ctx.evaluate(params)
        stop = monitor.start(params, loglik, objective) or monitor.max_iter == 0
        stop = stop or monitor.stopped_by_callback
        t = 0  # all state is local: one scheme serves restarts on threads
        running, t = ctx.resumed("running", running), int(ctx.resumed("t", t))
        while not stop:
            for rows in np.array_split(ctx.rng.permutation(n), n_batches):
                t += 1
                # Sorted rows: the same batch, gathered in memory order (cache-friendly).
                batch = source.take(np.sort(rows))
                params, running = online_step(
                    model, params, running, batch, self.rho(t), n / len(rows)
                )
            monitor.n_estep += 1  # the pass of mini-batch E-steps
            previous = objective
            _, loglik, objective = ctx.evaluate(params)
            # Not an exact EM step: neither a drop nor a small change means anything
            # to the monitor's monotone test, so convergence is decided here (before the
            # record, so that a checkpoint taken there knows the run ended).
            if monitor.tol is not None and abs(objective - previous) < monitor.tol * monitor.scale:
                monitor.converged = True
            ctx.scheme_state.update(running=running, t=t)
            stop = monitor.record(params, loglik, objective, reseeded=True)
        return params, loglik, objective


class OnlineState(NamedTuple):
    """Where a sequence of :meth:`OnlineEM.partial_step` calls stands."""

    t: int  # mini-batches taken
    stats: Any  # running statistics


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _check_rho(rho: Any, name: str) -> float:
    if not _is_real(rho) or not (0.0 < rho <= 1.0):
        raise ValueError(f"{name} must be a step size in (0, 1], got {rho!r}")
    return float(rho)


def _check_source(source: DataSource) -> None:
    if type(source).take is DataSource.take:
        raise TypeError(
            f"online EM draws shuffled mini-batches and needs a data source with random "
            f"access to rows (DataSource.take); {type(source).__name__} has none. Pass the "
            "data as in-memory arrays"
        )
