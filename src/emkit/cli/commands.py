"""The subcommands of ``emkit``: ``fit``, ``demo``, ``predict`` and ``info``.

Each ``cmd_*`` function takes the parsed arguments and returns the exit status; bad
input raises (``ValueError``, ``OSError``, ...) and :func:`emkit.cli.main.main` turns
it into a one-line message.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from emkit.cli.candidates import choose, fit_candidates
from emkit.cli.formatting import format_candidates, format_mixture, format_model, write_predictions
from emkit.cli.readers import DataTable, column_names, read_table, select_columns
from emkit.models.estimator import record_feature_names

__all__ = ["cmd_demo", "cmd_fit", "cmd_info", "cmd_predict"]


def _warn(message: str) -> None:
    print(f"emkit: warning: {message}", file=sys.stderr)


def _note(message: str) -> None:
    print(f"emkit: note: {message}", file=sys.stderr)


def _existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_file(path: str, action: str = "save to", data: str | None = None) -> None:
    """Fail early (before any reading or fitting) when ``path`` cannot be written.

    Raises
    ------
    ValueError
        ``path`` is a folder, its folder does not exist or is not writable, an
        ancestor is a file, or it is the data file ``data``.
    """
    target = Path(path)
    what = f"cannot {action} {path}"
    if target.is_dir():
        raise ValueError(f"{what}: it is a folder; give a file name in it")
    folder = target.parent
    ancestor = _existing_ancestor(folder)
    if not ancestor.is_dir():
        raise ValueError(f"{what}: {ancestor} is not a folder")
    if ancestor != folder:
        raise ValueError(f"{what}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{what}: folder {folder} is not writable")
    if data is not None and target.exists() and target.resolve() == Path(data).resolve():
        raise ValueError(f"{what}: it is the data file; choose another name")


def check_report_folder(path: str) -> None:
    """Fail early when ``path`` cannot be the report's folder (it is created if missing)."""
    target = Path(path)
    what = f"cannot write the report to {path}"
    if target.exists() and not target.is_dir():
        raise ValueError(f"{what}: it is a file, not a folder")
    ancestor = _existing_ancestor(target)
    if not ancestor.is_dir():
        raise ValueError(f"{what}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK):
        raise ValueError(f"{what}: folder {ancestor} is not writable")


def _check_outputs(args: argparse.Namespace) -> None:
    """``--out`` and ``--report`` of ``fit`` and ``demo``, checked before any work."""
    if args.out:
        check_output_file(args.out, data=getattr(args, "data", None))
    if args.report:
        from emkit.cli.report import require_matplotlib

        check_report_folder(args.report)
        require_matplotlib()


def _read(args: argparse.Namespace, columns: list[str] | None, missing: str) -> DataTable:
    """The data file of ``fit`` or ``predict``, with its notes printed."""
    table = read_table(args.data, columns, missing=missing, header=args.header)
    if not getattr(args, "quiet", False):
        for note in table.notes:
            _note(note)
    return table


def _selection(
    X: np.ndarray,
    feature_names: list[str],
    source: str,
    args: argparse.Namespace,
    named: bool = True,
) -> int:
    """The shared body of ``fit`` and ``demo``: fit, print, save, report.

    ``named``: whether ``feature_names`` are the data's own (then the chosen model
    records them as ``feature_names_in_``) or generated (``x0, x1, ...``).
    """
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
    if named:
        record_feature_names(chosen.model, feature_names)
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
    _check_outputs(args)
    table = _read(args, args.columns, args.missing)
    X = table.X
    empty = np.isnan(X).all(axis=1)
    if empty.any():  # no observed value: no information about any parameter
        X = X[~empty]
        if not args.quiet:
            _note(
                f"{int(empty.sum())} rows of {args.data} have no value in the selected "
                "columns and were left out"
            )
        if len(X) == 0:
            raise ValueError(f"{args.data} has no row with a value in the selected columns")
    # Generated names (x0, x1, ...) mean nothing: the model records names from the file only.
    named = table.named
    if named and len(set(table.names)) < len(table.names):
        named = False
        if not args.quiet:
            _note(
                f"the selected columns' names repeat ({', '.join(table.names)}); the model "
                "keeps no names"
            )
    return _selection(X, table.names, str(args.data), args, named=named)


def cmd_demo(args: argparse.Namespace) -> int:
    """``emkit demo``: model selection on the embedded Old Faithful data."""
    from emkit.datasets import load_faithful

    _check_outputs(args)
    X, names = load_faithful()
    return _selection(X, names, "Old Faithful geyser (embedded)", args)


def _load_model(path: str) -> Any:
    import emkit

    return emkit.load(path)


def _model_columns(model: Any, args: argparse.Namespace) -> list[str] | None:
    """The columns of DATA to predict on: the model's features, found by name.

    A model fitted on named columns (a CSV header, a Parquet schema) takes them by
    name from a file with names, in any order among other columns; ``--columns``
    must then select the same names. A model without names, or a file without them
    (``.npy``, a CSV file without a header row), takes the columns by position.
    """
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is None:
        return args.columns
    fitted = [str(name) for name in fitted]
    names, named = column_names(args.data, args.header)
    if not named:
        if args.columns is None:
            _note(
                f"{args.data} has no column names; its columns are taken by position as the "
                f"model's features {', '.join(fitted)}"
            )
        return args.columns
    if args.columns is None:
        absent = [name for name in fitted if name not in names]
        if absent:
            raise ValueError(
                f"{args.data} has no column {', '.join(map(repr, absent))} of the model's "
                f"features ({', '.join(fitted)}); its columns are {', '.join(names)}"
            )
        return fitted
    chosen = [names[j] for j in select_columns(names, args.columns, args.data)]
    if chosen != fitted:
        raise ValueError(
            f"--columns selects {', '.join(chosen)}, but the model was fitted on the "
            f"features {', '.join(fitted)} (in this order); select those, or leave "
            "--columns out to take them by name"
        )
    return args.columns


def cmd_predict(args: argparse.Namespace) -> int:
    """``emkit predict``: cluster labels and posterior probabilities as CSV."""
    if args.out:
        check_output_file(args.out, action="write to", data=args.data)
    model = _load_model(args.model_file)
    if not hasattr(model, "predict_proba"):
        raise ValueError(f"{type(model).__name__} models do not assign clusters")
    columns = _model_columns(model, args)
    # "drop" keeps one output row per input row: rows with a missing value get empty fields.
    table = _read(args, columns, "error" if args.missing == "error" else "allow")
    X = table.X
    kept = None
    if args.missing == "drop":
        kept = ~np.isnan(X).any(axis=1)
        if not kept.all():
            _note(
                f"{int((~kept).sum())} of {len(X)} rows of {args.data} have a missing value; "
                "their label and probabilities are left empty (--missing drop)"
            )
            X = X[kept]
    proba = model.predict_proba(X) if len(X) else np.empty((0, model.n_components))
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as fh:
            write_predictions(fh, proba, kept)
    else:
        write_predictions(sys.stdout, proba, kept)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """``emkit info``: describe a saved model."""
    model = _load_model(args.model_file)
    print(f"{args.model_file}: ", end="")
    print(format_model(model))
    return 0
