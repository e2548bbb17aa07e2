"""The candidate models of ``emkit fit``: a call to :func:`emkit.select`, whose
:class:`~emkit.selection.Candidate` rows the command prints and reports, and the status
lines it writes while it fits.

The command's engine settings differ from the library's defaults, for large files:

* SQUAREM acceleration (``accel="squarem"``);
* the restarts of every candidate run on a random subsample of at most
  :data:`SUBSAMPLE` rows, and only the best start is then run to convergence on all
  rows (``select(subsample=...)``);
* each K also starts from the fit of K - 1 components split in each of its components
  (``select(warm_start=True)``), and a start whose component collapsed onto the
  regularisation floor (a spurious maximum) loses to one that did not.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import numpy as np

from emkit.selection import Candidate, Selection, select

__all__ = [
    "CRITERIA",
    "MODELS",
    "STATUS_INTERVAL",
    "SUBSAMPLE",
    "Candidate",
    "StatusLine",
    "choose",
    "fit_candidates",
]

#: the information criteria a candidate is scored by (attributes of :class:`Candidate`)
CRITERIA = ("bic", "aic", "icl")
#: ``--model`` names and the estimator class each one fits
MODELS = {"gmm": "GaussianMixture"}
#: rows the restarts run on (the default of ``--subsample``)
SUBSAMPLE = 20_000
#: seconds between two status lines when stderr is not a terminal
STATUS_INTERVAL = 10.0


def fit_candidates(
    X: np.ndarray,
    components: Sequence[int],
    covariances: Sequence[str],
    *,
    model_name: str = "gmm",
    criterion: str = "bic",
    progress: bool = True,
    jobs: int = 1,
    subsample: int | None = SUBSAMPLE,
    warm_start: bool = True,
    status_interval: float | None = None,
    **params: Any,
) -> Selection:
    """Fit every (K, covariance type) pair by :func:`emkit.select`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    components : sequence of int
        Numbers of components to try; each must be <= ``n_samples``.
    covariances : sequence of str
        Covariance types to try.
    model_name : str, default "gmm"
        A key of :data:`MODELS`.
    criterion : str, default "bic"
    progress : bool, default True
        Report progress on stderr: a progress bar when stderr is a terminal, else a
        :class:`StatusLine` every ``status_interval`` seconds.
    jobs : int, default 1
        Candidates fitted at once, on threads.
    subsample : int or None, default :data:`SUBSAMPLE`
        Rows the restarts run on when the data have more (None or 0: all rows).
    warm_start : bool, default True
        Also start each K from the fit of K - 1 components, split.
    status_interval : float, optional
        Seconds between two status lines (default: :data:`STATUS_INTERVAL`).
    **params
        Other hyper-parameters (``init``, ``n_init``, ``tol``, ``accel``,
        ``screen_tol``, ...), passed to :func:`emkit.select`; ``accel`` is "squarem"
        unless given.

    Returns
    -------
    Selection
        ``candidates`` in the order K-major, covariance type minor.
    """
    if model_name not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; choose from {', '.join(MODELS)}")
    if max(components) > len(X):
        raise ValueError(
            f"the data have {len(X)} rows, fewer than the largest number of components "
            f"K = {max(components)}; choose smaller values with --components"
        )
    params.setdefault("accel", "squarem")
    stream = sys.stderr
    status = None
    if progress and not _is_terminal(stream):
        total = len(components) * len(covariances)
        interval = STATUS_INTERVAL if status_interval is None else status_interval
        status = StatusLine(total, stream, interval, criterion)
    try:
        return select(
            X,
            components,
            list(covariances),
            criterion,
            progress=progress,
            n_jobs=jobs,
            subsample=subsample or None,
            warm_start=warm_start,
            callback=status.update if status is not None else None,
            **params,
        )
    finally:
        if status is not None:
            status.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real file
        return False


def _duration(seconds: float) -> str:
    """``"45s"``, ``"2m13s"`` or ``"1h02m"``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class StatusLine:
    """Status lines on a stream that is not a terminal (a log file, a pipe), where a
    progress bar would be noise: ``emkit: fitted 5/8 candidates (K=5 full: BIC 123.4),
    2m13s elapsed``.

    A line is written when a candidate is finished and at least ``interval`` seconds
    passed since the last line, and every ``interval`` seconds in between (a long
    candidate still shows the command is alive). When any line was written,
    :meth:`close` writes a last one with the total time.

    Parameters
    ----------
    total : int
        Number of candidates.
    stream : text stream
    interval : float
        Seconds between two lines (0: a line for every candidate, no timer).
    criterion : str, default "bic"
        The criterion shown for the last finished candidate.
    clock : callable, default time.monotonic
    """

    def __init__(
        self,
        total: int,
        stream: TextIO,
        interval: float,
        criterion: str = "bic",
        clock: Callable[[], float] = time.monotonic,
    ):
        if not interval >= 0:
            raise ValueError(f"interval must be a number >= 0, got {interval!r}")
        self.total, self.stream, self.interval = total, stream, float(interval)
        self.criterion, self.clock = criterion, clock
        self.start = self.last = clock()
        self.done, self.latest, self.lines = 0, None, 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._timer = None
        if self.interval > 0:
            self._timer = threading.Thread(target=self._tick, name="emkit-status", daemon=True)
            self._timer.start()

    def update(self, candidate: Candidate, done: int, total: int) -> None:
        """Record a finished candidate (the ``callback`` of :func:`emkit.select`)."""
        with self._lock:
            self.done, self.total, self.latest = done, total, candidate
            if self.clock() - self.last >= self.interval:
                self._write()

    def close(self) -> None:
        """Stop the timer; write the total time if any line was written."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        with self._lock:
            if self.lines:
                elapsed = _duration(self.clock() - self.start)
                self._emit(f"emkit: fitted {self.done}/{self.total} candidates in {elapsed}")

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                if self.clock() - self.last >= self.interval:
                    self._write()

    def _write(self) -> None:
        text = f"emkit: fitted {self.done}/{self.total} candidates"
        c = self.latest
        if c is not None:
            score = getattr(c, self.criterion)
            what = f"{self.criterion.upper()} {score:.1f}" if c.ok else "failed"
            text += f" (K={c.n_components} {c.covariance_type}: {what})"
        self._emit(f"{text}, {_duration(self.clock() - self.start)} elapsed")

    def _emit(self, text: str) -> None:
        self.last = self.clock()
        self.lines += 1
        try:
            print(text, file=self.stream, flush=True)
        except (OSError, ValueError):  # the stream went away; the fit goes on
            pass


def choose(candidates: Sequence[Candidate], criterion: str) -> Candidate:
    """The fitted candidate with the lowest ``criterion`` (the simplest one on ties)."""
    return min((c for c in candidates if c.ok), key=lambda c: getattr(c, criterion))
