"""The subcommands of ``emkit``: ``fit``, ``demo``, ``predict`` and ``info``.

Each ``cmd_*`` function takes the parsed arguments and returns the exit status; bad
input raises (``ValueError``, ``OSError``, ...) and :func:`emkit.cli.main.main` turns
it into a one-line message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from emkit.cli.candidates import choose, fit_candidates
from emkit.cli.formatting import format_candidates, format_mixture, format_model, write_predictions
from emkit.cli.readers import read_data

__all__ = ["cmd_demo", "cmd_fit", "cmd_info", "cmd_predict"]


def _warn(message: str) -> None:
    print(f"emkit: warning: {message}", file=sys.stderr)


def _selection(
    X: np.ndarray, feature_names: list[str], source: str, args: argparse.Namespace
) -> int:
    """The shared body of ``fit`` and ``demo``: fit, print, save, report."""
    # Fail before the (possibly long) fits, not after them.
    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise FileNotFoundError(f"cannot save to {args.out}: its folder does not exist")
    if args.report:
        from emkit.cli.report import require_matplotlib

        require_matplotlib()
    print(f"data: {source}: {X.shape[0]} rows x {X.shape[1]} features ({', '.join(feature_names)})")
    candidates = fit_candidates(
        X,
        args.components,
        args.covariance,
        model_name=args.model,
        criterion=args.criterion,
        progress=not args.quiet,
        init=getattr(args, "init", "kmeans++"),
        n_init=args.n_init,
        max_iter=args.max_iter,
        tol=args.tol,
        random_state=args.seed,
        jobs=args.jobs,
        subsample=args.subsample,
        screen_tol=getattr(args, "screen_tol", None),
    ).candidates
    chosen = choose(candidates, args.criterion)
    print(format_candidates(candidates, chosen, args.criterion))
    if not args.quiet:
        for c in candidates:
            for note in c.notes if c.ok else [c.status]:
                _warn(f"K={c.n_components} {c.covariance_type}: {note}")
    print()
    print(
        f"chosen model: K={chosen.n_components}, covariance {chosen.covariance_type!r}, "
        f"{args.criterion.upper()} {getattr(chosen, args.criterion):.2f}"
    )
    print(format_mixture(chosen.model, feature_names))
    if args.out:
        chosen.model.save(args.out)
        print(f"model saved to {args.out}")
    if args.report:
        from emkit.cli.report import write_report

        rows = [c.row() for c in candidates]
        paths = write_report(args.report, X, feature_names, rows, chosen.model, args.criterion)
        print(f"report written to {args.report}: {', '.join(p.name for p in paths)}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    """``emkit fit``: model selection on a data file."""
    X, names = read_data(args.data, args.columns)
    return _selection(X, names, str(args.data), args)


def cmd_demo(args: argparse.Namespace) -> int:
    """``emkit demo``: model selection on the embedded Old Faithful data."""
    from emkit.datasets import load_faithful

    X, names = load_faithful()
    return _selection(X, names, "Old Faithful geyser (embedded)", args)


def _load_model(path: str) -> Any:
    import emkit

    return emkit.load(path)


def cmd_predict(args: argparse.Namespace) -> int:
    """``emkit predict``: cluster labels and posterior probabilities as CSV."""
    model = _load_model(args.model_file)
    if not hasattr(model, "predict_proba"):
        raise ValueError(f"{type(model).__name__} models do not assign clusters")
    X, _ = read_data(args.data, args.columns)
    proba = model.predict_proba(X)
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as fh:
            write_predictions(fh, proba)
    else:
        write_predictions(sys.stdout, proba)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """``emkit info``: describe a saved model."""
    model = _load_model(args.model_file)
    print(f"{args.model_file}: ", end="")
    print(format_model(model))
    return 0
