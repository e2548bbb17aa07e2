"""``emkit.em``: the one EM driver every model runs on."""

from __future__ import annotations

import numbers
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from emkit._random import seed_sequence
from emkit.data.convert import source_of
from emkit.engine.checkpoint import Checkpoint, fingerprint
from emkit.engine.executors import Executor, SerialExecutor, ThreadExecutor, as_executor
from emkit.engine.fixed import HeldModel, held_model, parse_fixed, set_path, start_values
from emkit.engine.monitor import _MONOTONE_MODES, Monitor
from emkit.engine.protocol import EMResult, IterationInfo, objective_name
from emkit.engine.schemes import PlainEM, RunContext, Scheme
from emkit.engine.variants import Annealed, HardEM, check_schedule

__all__ = ["em", "make_scheme"]


def em(
    model: Any,
    data: Any,
    *,
    init: Any = None,
    max_iter: int = 100,
    tol: float | None = 1e-6,
    n_init: int = 1,
    random_state: Any = None,
    batch_size: int | None = None,
    callback: Callable[[IterationInfo], Any] | None = None,
    progress: bool = False,
    check_monotone: str | bool | None = "warn",
    monotone_rtol: float = 1e-9,
    tol_scale: float | None = None,
    executor: Executor | str | None = None,
    scheme: Scheme | None = None,
    accel: str | None = None,
    variant: str = "em",
    anneal: Any = None,
    kappa: float = 0.6,
    t0: float = 2.0,
    n_jobs: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    fixed: Any = None,
) -> EMResult:
    """Fit ``model`` to ``data`` by Expectation-Maximization.

    Parameters
    ----------
    model : object
        Any object with ``init_params(data, rng)``, ``estep(params, batch) ->
        (stats, loglik)`` and ``mstep(stats, params) -> params`` (see
        :class:`emkit.engine.EMModel`). An optional ``log_prior(params)`` turns the fit
        into MAP-EM; an optional ``objective`` (``"loglik"``, the default, or
        ``"elbo"``) names what ``estep`` reports and EM increases.
    data : array, pytree of arrays, DataSource, or Dask collection
        The observations; arrays share their first axis (the one batches cut). A
        source reads batches from disk (:func:`emkit.data.from_npy`,
        :func:`~emkit.data.from_parquet`, :func:`~emkit.data.from_csv`) or a Dask
        collection (:func:`~emkit.data.from_dask`; a Dask array or DataFrame may be
        passed directly); ``init_params`` then sees the source's ``init_data()``, a
        subsample.
    init : pytree, optional
        Starting parameters. When given, ``init_params`` is not called and ``n_init``
        must be 1.
    max_iter : int, default 100
        Maximum number of EM steps (M-steps); with ``accel="squarem"``, of SQUAREM
        cycles (and ``tol`` applies to the change over a cycle); with
        ``variant="online"``, of passes over the data; with ``anneal``, per stage.
        ``0`` evaluates the starting point.
    tol : float, default 1e-6
        Stop when the objective rises by less than ``tol`` per observation
        (``tol * n_samples`` in total). A decrease beyond round-off never counts as
        convergence. ``None`` runs exactly ``max_iter`` steps (as hmmlearn's
        ``tol=-inf``), for comparing paths step by step.
    n_init : int, default 1
        Number of restarts from independent seeds spawned from ``random_state``;
        the run with the highest final objective is kept.
    random_state : None, int, Generator, RandomState or SeedSequence
        Seeds every restart. The same value gives the same result.
    batch_size : int, optional
        Run the E-step over chunks of this many rows and add the statistics; the
        result equals the one-batch result to round-off.
    callback : callable, optional
        Called with an :class:`IterationInfo` at the start and after every EM step;
        returning ``True`` stops the run.
    progress : bool, default False
        Show a tqdm progress bar with the current objective (log-likelihood or ELBO).
    check_monotone : {"warn", "raise", "off"}, default "warn"
        What to do when the objective drops by more than round-off: emit a
        :class:`MonotonicityWarning`, raise :class:`MonotonicityError`, or nothing;
        the message names the objective.
    monotone_rtol : float, default 1e-9
        Round-off allowance: a change smaller than ``monotone_rtol * (|objective| +
        n_samples)`` counts as zero.
    tol_scale : float, optional
        Number of observations used to scale ``tol`` (default: the number of rows; an
        estimator with sample weights passes their sum).
    executor : {"serial", "threads", "dask"}, distributed.Client or Executor, optional
        Where the per-batch E-steps run. "dask" (the current ``dask.distributed``
        client) or a client: each partition's E-step runs on the worker that holds it
        (see :class:`emkit.engine.dask_executor.DaskExecutor`). By default, a Dask
        source runs on the current client when there is one; otherwise E-steps run
        in this thread (or on ``n_jobs`` threads).
    scheme : Scheme, optional
        A custom iteration scheme (overrides ``accel``, ``variant`` and ``anneal``).
    accel : {None, "squarem"}
        Acceleration: SQUAREM (Varadhan & Roland 2008), never worse than plain EM.
    variant : {"em", "online", "hard", "ecme"}, default "em"
        Plain EM; online / mini-batch EM (Cappe & Moulines 2009) with ``batch_size``
        rows per step and step sizes ``(t + t0) ** -kappa`` (``max_iter`` counts
        passes); hard (classification) EM, which needs the model's ``estep_variant``;
        or ECME (Liu & Rubin 1994), which needs the model's ``observed_step``.
    anneal : "default" or sequence of float, optional
        Deterministic annealing (Ueda & Nakano 1998): rising inverse temperatures
        ending at 1; needs the model's ``estep_variant``.
    kappa, t0 : float
        Step-size schedule of online EM; ``kappa`` in (0.5, 1].
    n_jobs : int, optional
        Threads for the fit (same result as one). When the data come in several
        batches (``batch_size``, or a source read from disk or Dask), the batches'
        E-steps run on ``n_jobs`` threads; otherwise the ``n_init`` restarts do.
        Ignored when ``executor`` is given (except by "threads", which it sizes).
    checkpoint : str or path-like, optional
        Save the engine's state to this file every ``checkpoint_every`` EM steps
        (atomically), and resume from it when it exists: the resumed fit ends with
        the same result as an uninterrupted one. A file from another fit (model,
        options, data shape) is refused with a ``ValueError``. See
        :mod:`emkit.engine.checkpoint`. Every scheme, variant and option resumes
        exactly: annealing at the stage and step it reached (the schedule is part
        of the fingerprint), online EM with its generator, step count and running
        statistics, restarts with the ones already finished (they then run one after
        the other, with the same result). A custom ``scheme`` resumes exactly when
        it keeps what it carries between steps in ``RunContext.scheme_state``.
    checkpoint_every : int, default 1
        Steps between two writes of the checkpoint.
    fixed : collection of str or dict, optional
        Parameters held fixed: names (held at the starting values of each restart) or
        a dict name -> value (substituted into the starting parameters of every
        restart, ``init`` included, and held). A name is a field of the parameters
        (``"weights"``), a nested field (``"components.mean"``) or rows of one
        (``"components[1]"``: row 1 of every array below). The model must provide
        ``hold(names)`` (see :mod:`emkit.engine.fixed`); every scheme keeps the held
        values bit-for-bit, and the monotonicity check stays on.

    Returns
    -------
    EMResult
        With ``objective_name``, the model's objective, naming ``history``.

    Raises
    ------
    ValueError
        Bad options, or a model whose ``objective`` is neither ``"loglik"`` nor
        ``"elbo"``; with ``fixed``: a name the model does not know or cannot hold, or a
        value of the wrong shape.
    TypeError
        ``fixed`` is given and the model has no ``hold``.
    """
    _check_options(max_iter, tol, n_init, callback, check_monotone, monotone_rtol)
    what = objective_name(model)
    with_prior = getattr(model, "log_prior", None) is not None
    if init is not None and n_init != 1:
        raise ValueError("n_init must be 1 when starting parameters are given in init")
    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs < 1
    ):
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    if scheme is None:
        scheme = make_scheme(
            accel=accel, variant=variant, anneal=anneal, batch_size=batch_size, kappa=kappa, t0=t0
        )
        if variant == "online":
            batch_size = None  # the scheme draws its own mini-batches
    names, fixed_values = parse_fixed(fixed) if fixed is not None else ((), None)
    held = held_model(model, names) if names else None
    check_fixed = getattr(held, "check_fixed", None)
    if fixed_values and callable(check_fixed):  # the model's constraints (weights sum to 1)
        check_fixed(fixed_values)
    source = source_of(data, batch_size)
    scale = float(source.n_samples if tol_scale is None else tol_scale)
    exe, own_executor = _executor(executor, n_jobs, source)
    restart_threads = (
        n_jobs is not None and n_jobs > 1 and n_init > 1 and isinstance(exe, SerialExecutor)
    )
    ckpt = None
    seed = seed_sequence(random_state)
    if checkpoint is not None:
        options = dict(
            tol=tol, max_iter=max_iter, n_init=n_init, tol_scale=tol_scale,
            random_state=random_state if random_state is None or isinstance(random_state, int)
            else type(random_state).__name__, scheme=scheme, accel=accel, variant=variant,
            anneal=list(scheme.schedule) if isinstance(scheme, Annealed) else None,
            kappa=kappa, t0=t0, batch_size=batch_size, fixed=fixed,
        )  # fmt: skip
        ckpt = Checkpoint(checkpoint, checkpoint_every, fingerprint(model, source, options, init))
        if ckpt.load() and ckpt.seed is not None:
            seed = np.random.SeedSequence(ckpt.seed)  # the restarts' seeds of the first run
        ckpt.set_seed(seed.entropy)
        restart_threads = False  # one restart after the other, each checkpointed
    start = time.perf_counter()

    def one_run(i: int, rng: np.random.Generator):
        if ckpt is not None and (done := ckpt.finished(i)) is not None:
            return _finished_run(ckpt, model, source, init, rng, i, done, what, with_prior)
        params0 = init if init is not None else model.init_params(source.init_data(), rng)
        run_model = model
        if held is not None:
            for name, value in (fixed_values or {}).items():
                params0 = set_path(params0, name, value)
            run_model = HeldModel(held, start_values(params0, names))
        monitor = Monitor(
            max_iter=max_iter,
            tol=tol,
            scale=scale,
            check_monotone=check_monotone,
            monotone_rtol=monotone_rtol,
            callback=callback,
            progress=progress,
            restart=i,
            n_restarts=n_init,
            objective_name=what,
            with_prior=with_prior,
        )
        try:
            ctx = RunContext(run_model, source, exe, monitor, random_state=rng)
            if ckpt is not None:
                params0 = _resume(ckpt, i, params0, monitor, ctx)
                monitor.on_record = lambda p: ckpt.record(i, p, monitor, rng, ctx.scheme_state)
            params, loglik, objective = scheme.run(ctx, params0)
            if ckpt is not None:
                ckpt.finish(i, objective, loglik, params, monitor)
        finally:
            monitor.close()
        return objective, loglik, params, monitor

    rngs = [np.random.default_rng(s) for s in seed.spawn(n_init)]
    try:
        if not restart_threads:
            runs = [one_run(i, rng) for i, rng in enumerate(rngs)]
        else:
            # Restarts are independent (own seed, own monitor): threads give the same
            # results as a loop, and NumPy/BLAS release the GIL.
            with ThreadPoolExecutor(min(n_jobs, n_init)) as pool:
                runs = list(pool.map(one_run, range(n_init), rngs))
    finally:
        if own_executor:
            exe.close()

    best = int(np.argmax([r[0] for r in runs]))
    objective, loglik, params, monitor = runs[best]
    return EMResult(
        params=params,
        loglik=float(loglik),
        history=monitor.history_array(),
        n_iter=monitor.n_iter,
        converged=monitor.converged,
        time=time.perf_counter() - start,
        objective=float(objective),
        initial_loglik=float(monitor.initial),
        n_estep=monitor.n_estep,
        restarts=[float(r[0]) for r in runs],
        best_restart=best,
        objective_name=what,
    )


VARIANTS = ("em", "online", "hard", "ecme")


def make_scheme(
    *,
    accel: str | None = None,
    variant: str = "em",
    anneal: Any = None,
    batch_size: int | None = None,
    kappa: float = 0.6,
    t0: float = 2.0,
) -> Scheme:
    """The iteration scheme for a combination of options (validated here, once)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if accel not in (None, "squarem"):
        raise ValueError(f"accel must be None or 'squarem', got {accel!r}")
    if variant == "online":
        if accel is not None or anneal is not None:
            raise ValueError("online EM cannot be combined with accel or anneal")
        if batch_size is None:
            raise ValueError("online EM needs batch_size (rows per step)")
        from emkit.engine.online import OnlineEM

        return OnlineEM(batch_size=batch_size, kappa=kappa, t0=t0)
    if variant == "ecme":
        if accel is not None or anneal is not None:
            raise ValueError("ECME cannot be combined with accel or anneal")
        from emkit.engine.ecme import ECME

        return ECME()
    if accel == "squarem":
        from emkit.engine.accel import SQUAREM

        inner: Scheme = SQUAREM()
    else:
        inner = PlainEM()
    if variant == "hard":
        if anneal is not None:
            raise ValueError("hard EM cannot be combined with anneal")
        return HardEM(inner)
    if anneal is not None:
        return Annealed(inner, check_schedule(anneal))
    return inner


def _executor(executor: Any, n_jobs: int | None, source: Any) -> tuple[Executor, bool]:
    """The executor of a fit, and whether the fit made it (and closes it)."""
    if isinstance(executor, Executor):
        return executor, False
    if (isinstance(executor, str) and executor == "dask") or _is_client(executor):
        from emkit.engine.dask_executor import DaskExecutor

        return DaskExecutor(None if isinstance(executor, str) else executor), True
    if executor is not None:
        return as_executor(executor, n_jobs), True
    base = source
    while hasattr(base, "base"):
        base = base.base
    if type(base).__name__ == "DaskSource":
        try:
            from distributed import get_client

            client = get_client()
        except (ImportError, ValueError):  # no client: Dask's scheduler computes each batch
            client = None
        if client is not None:
            from emkit.engine.dask_executor import DaskExecutor

            return DaskExecutor(client), True
    if n_jobs is not None and n_jobs > 1 and getattr(source, "n_batches", 1) > 1:
        return ThreadExecutor(n_jobs), True
    return SerialExecutor(), True


def _is_client(executor: Any) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed"


def _resume(ckpt: Checkpoint, i: int, params0: Any, monitor: Monitor, ctx: RunContext) -> Any:
    """Restart ``i``'s parameters, monitor, generator and scheme state from the checkpoint."""
    cur = ckpt.current(i)
    if cur is None:
        return params0
    params = ckpt.tree(f"r{i}.params", params0)
    monitor.load_state(cur)
    ctx.rng.bit_generator.state = cur["rng"]
    names = set(cur["scheme"])

    def resumed(name: str, like: Any) -> Any:
        if name not in names:
            return like
        names.discard(name)  # read once: a later stage (annealing) starts afresh
        return ckpt.tree(f"r{i}.scheme.{name}", like)

    ctx._resume = resumed
    return params


def _finished_run(ckpt, model, source, init, rng, i, done, what, with_prior):
    """A restart the checkpoint holds as finished: its result, without running it."""
    like = init if init is not None else model.init_params(source.init_data(), rng)
    monitor = Monitor(max_iter=0, tol=0.0, scale=1.0, objective_name=what, with_prior=with_prior)
    monitor.load_state(done)
    params = ckpt.tree(f"r{i}.params", like)
    return float(done["objective"]), float(done["loglik"]), params, monitor


def _check_options(max_iter, tol, n_init, callback, check_monotone, monotone_rtol) -> None:
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral):
        raise TypeError(f"max_iter must be an integer, got {type(max_iter).__name__}")
    if max_iter < 0:
        raise ValueError(f"max_iter must be non-negative, got {max_iter}")
    if isinstance(n_init, bool) or not isinstance(n_init, numbers.Integral):
        raise TypeError(f"n_init must be an integer, got {type(n_init).__name__}")
    if n_init < 1:
        raise ValueError(f"n_init must be at least 1, got {n_init}")
    if tol is not None and (not isinstance(tol, numbers.Real) or isinstance(tol, bool)):
        raise TypeError(f"tol must be a number or None, got {type(tol).__name__}")
    if tol is not None and not tol >= 0:
        raise ValueError(f"tol must be non-negative (or None), got {tol}")
    if not monotone_rtol >= 0:
        raise ValueError(f"monotone_rtol must be non-negative, got {monotone_rtol}")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    try:
        ok = check_monotone in _MONOTONE_MODES
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"check_monotone must be 'warn', 'raise' or 'off', got {check_monotone!r}")
