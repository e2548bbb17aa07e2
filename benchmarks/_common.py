"""Shared pieces of the benchmark modules: interleaved timing and the result row.

This module imports neither numpy nor any library under test, so ``run.py`` can
import it before it has pinned the thread-count environment variables.

A result row is a plain dict (it goes straight into ``results/latest.json``); the
keys that ``run.py`` prints are built by :func:`comparison_row`.
"""

from __future__ import annotations

import gc
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["comparison_row", "quiet", "relative_difference", "time_interleaved"]


def time_interleaved(
    runners: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Time each runner ``repeats`` times, alternating between them.

    Repetition ``r`` runs the runners in the given order when ``r`` is even and in
    reverse order when it is odd, so slow drifts of the machine (other jobs, CPU
    frequency) hit every runner alike and no runner always goes first. The garbage
    collector is run before and disabled during each call.

    Returns the wall-clock seconds of every call, per runner, and the value each
    runner returned on its last call.
    """
    names = list(runners)
    times: dict[str, list[float]] = {name: [] for name in names}
    last: dict[str, Any] = {}
    for rep in range(repeats):
        for name in names if rep % 2 == 0 else names[::-1]:
            seconds, last[name] = _time_once(runners[name])
            times[name].append(seconds)
    return times, last


def _time_once(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by one call of ``fn`` (with the garbage collector off), and its value."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - start
    finally:
        gc.enable()
    return seconds, value


@contextmanager
def quiet(*categories: type[Warning]) -> Iterator[None]:
    """Ignore the given warning categories inside the block (others still show)."""
    with warnings.catch_warnings():
        for category in categories:
            warnings.simplefilter("ignore", category)
        yield


def relative_difference(value: float, reference: float) -> float:
    """``|value - reference| / |reference|`` (the absolute difference if reference is 0)."""
    scale = abs(reference) if reference != 0 else 1.0
    return abs(value - reference) / scale


def comparison_row(
    *,
    workload: str,
    peer: str,
    emkit_times: Sequence[float],
    peer_times: Sequence[float],
    emkit_iters: int,
    peer_iters: int,
    emkit_loglik: float,
    peer_loglik: float,
    **details: Any,
) -> dict[str, Any]:
    """One result row: emkit against a peer library on one workload.

    ``*_times`` are whole-fit seconds of each repetition and ``*_iters`` the number of
    EM iterations each fit ran; per-iteration times are their ratio. ``speedup`` is
    peer time over emkit time (above 1: emkit is faster); ``speedup_paired``, the median
    of the ratios within each repetition, is less sensitive to slow drifts. ``details`` (sizes, dtype,
    notes) are stored as they are.
    """
    emkit_per_iter = [t / max(emkit_iters, 1) for t in emkit_times]
    peer_per_iter = [t / max(peer_iters, 1) for t in peer_times]
    emkit_median = statistics.median(emkit_per_iter)
    peer_median = statistics.median(peer_per_iter)
    return {
        "workload": workload,
        "peer": peer,
        "emkit_s_per_iter": emkit_median,
        "peer_s_per_iter": peer_median,
        "speedup": peer_median / emkit_median,
        "speedup_paired": statistics.median(p / e for p, e in zip(peer_per_iter, emkit_per_iter)),
        "loglik_rel_diff": relative_difference(emkit_loglik, peer_loglik),
        "spread": max(_spread(emkit_per_iter), _spread(peer_per_iter)),
        "emkit_iters": emkit_iters,
        "peer_iters": peer_iters,
        "emkit_loglik": emkit_loglik,
        "peer_loglik": peer_loglik,
        "emkit_s_per_iter_all": emkit_per_iter,
        "peer_s_per_iter_all": peer_per_iter,
        **details,
    }


def _spread(values: Sequence[float]) -> float:
    """(max - min) / median: how noisy the repetitions were."""
    return (max(values) - min(values)) / statistics.median(values)
