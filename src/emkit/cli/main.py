"""The ``emkit`` command: fit, select, inspect and apply mixture models from a shell.

Subcommands
-----------
``emkit fit DATA``
    Fit every (K, covariance type) candidate, print a table of them, choose the one
    with the lowest information criterion, print its parameters, and optionally save
    it (``--out``) and write a report of figures (``--report``).
``emkit predict MODEL DATA``
    Write ``label,prob_0,...,prob_{K-1}`` for every row of DATA as CSV.
``emkit info MODEL``
    Print a saved model's class, hyper-parameters and fitted parameters.
``emkit demo``
    The ``fit`` workflow on the embedded Old Faithful data.

DATA is a CSV file with a header row (``.tsv``: tab-separated), a ``.npy`` array, or a
``.parquet`` file (needs pyarrow). Bad input ends the command with exit status 2 and a
one-line ``emkit: error: ...`` message on stderr.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import product
from pathlib import Path
from typing import Any, NoReturn, TextIO

import numpy as np

__all__ = ["main", "parse_components", "read_data"]

COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")
CRITERIA = ("bic", "aic", "icl")
#: ``--model`` names and the estimator class each one fits
MODELS = {"gmm": "GaussianMixture"}
_MISSING = {"", "na", "nan", "null", "none"}


# ====================================================================== argument types
def parse_components(text: str) -> list[int]:
    """Numbers of components from ``"3"``, ``"1-8"``, ``"2,4,6"`` or ``"1-3,6"``.

    Parameters
    ----------
    text : str
        Comma-separated positive integers or inclusive ranges ``lo-hi``.

    Returns
    -------
    list of int
        Sorted distinct values.

    Raises
    ------
    argparse.ArgumentTypeError
        A part is not a positive integer or an empty range such as ``5-2``.
    """
    values: set[int] = set()
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            start = int(lo)
            stop = int(hi) if sep else start
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid value {text!r}: use a number (3), a range (1-8) or a list (2,4,6)"
            ) from None
        if start < 1:
            raise argparse.ArgumentTypeError(
                f"invalid value {text!r}: the number of components must be >= 1"
            )
        if stop < start:
            raise argparse.ArgumentTypeError(
                f"invalid range {part.strip()!r}: the start must not exceed the end"
            )
        values.update(range(start, stop + 1))
    return sorted(values)


def parse_covariances(text: str) -> list[str]:
    """Covariance types from ``"full"``, ``"full,diag"`` or ``"all"``."""
    out = []
    for name in filter(None, (part.strip().lower() for part in text.split(","))):
        if name == "all":
            out.extend(COVARIANCE_TYPES)
        elif name in COVARIANCE_TYPES:
            out.append(name)
        else:
            raise argparse.ArgumentTypeError(
                f"unknown covariance type {name!r}; choose from {', '.join(COVARIANCE_TYPES)}, all"
            )
    if not out:
        raise argparse.ArgumentTypeError("no covariance type given")
    return out


def parse_columns(text: str) -> list[str]:
    """Column names (or 0-based indices) from ``"a,b"``."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("no column given")
    return names


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


# ====================================================================== reading data
def read_data(
    path: str | os.PathLike, columns: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Read a numeric data matrix from a CSV, ``.npy`` or ``.parquet`` file.

    Parameters
    ----------
    path : str or path-like
        ``.npy``: a 1-D or 2-D numeric array (columns are named ``x0, x1, ...``);
        ``.parquet`` / ``.pq``: read with pyarrow; anything else: a CSV file with a
        header row (tab-separated if the name ends in ``.tsv``).
    columns : sequence of str, optional
        The columns to use, by name or 0-based index; all columns by default.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    feature_names : list of str

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Unreadable file, unknown column, a non-numeric column, a missing or
        non-finite value (each message names the column), or no rows.
    ImportError
        A ``.parquet`` file and pyarrow is not installed.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a data file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        reader: Callable[[Path], _Table] = _read_npy
    elif suffix in (".parquet", ".pq"):
        reader = _read_parquet
    else:
        reader = _read_csv
    table = reader(path)
    if not table.names:
        raise ValueError(f"{path} has no columns")
    if table.n_rows == 0:
        raise ValueError(f"{path} has no data rows")
    keep = _select_columns(table.names, columns, path)
    X = np.column_stack([table.numeric(j) for j in keep])
    return np.ascontiguousarray(X, dtype=np.float64), [table.names[j] for j in keep]


@dataclass
class _Table:
    """Columns read from a file, converted to float64 on demand with clear errors."""

    path: Path
    names: list[str]
    columns: list[Any]
    #: file line of each row (CSV), or None to report 1-based row numbers
    lines: list[int] | None = None
    #: per column: converts it to float64 or raises ValueError naming the column
    convert: Callable[[str, Any], np.ndarray] | None = None

    @property
    def n_rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def where(self, i: int) -> str:
        return f"line {self.lines[i]}" if self.lines is not None else f"row {i + 1}"

    def numeric(self, j: int) -> np.ndarray:
        name = self.names[j]
        values = self.columns[j]
        x = self.convert(name, values) if self.convert else np.asarray(values, np.float64)
        bad = np.flatnonzero(~np.isfinite(x))
        if bad.size:
            raise ValueError(
                f"{self.path}: column {name!r} has a missing or non-finite value at "
                f"{self.where(int(bad[0]))}"
            )
        return x


def _select_columns(names: list[str], columns: Sequence[str] | None, path: Path) -> list[int]:
    """Indices of the requested columns (by name, else by 0-based index)."""
    if not columns:
        return list(range(len(names)))
    keep = []
    for col in columns:
        if col in names:
            j = names.index(col)
        elif col.isdigit() and int(col) < len(names):
            j = int(col)
        else:
            raise ValueError(f"{path} has no column {col!r}; its columns are {', '.join(names)}")
        if j in keep:
            raise ValueError(f"column {col!r} is selected twice")
        keep.append(j)
    return keep


def _read_csv(path: Path) -> _Table:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=delimiter, skipinitialspace=True)
            header = next(reader, None)
            rows, lines = [], []
            for row in reader:
                if row:
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a UTF-8 text file") from None
    except csv.Error as exc:
        raise ValueError(f"{path} is not a valid CSV file: {exc}") from None
    if not header:
        raise ValueError(f"{path} is empty (a CSV file needs a header row)")
    names = [name.strip() for name in header]
    for row, line in zip(rows, lines):
        if len(row) != len(names):
            raise ValueError(
                f"{path}: line {line} has {len(row)} fields but the header has {len(names)}"
            )
    table = _Table(path, names, [list(col) for col in zip(*rows)] or [[] for _ in names], lines)
    table.convert = partial(_parse_floats, table)
    return table


def _parse_floats(table: _Table, name: str, values: list[str]) -> np.ndarray:
    """A CSV column as float64, or a ValueError naming the column and the first bad cell."""
    try:
        return np.asarray(values, dtype=np.float64)
    except ValueError:
        pass
    for i, value in enumerate(values):
        try:
            float(value)
        except ValueError:
            if value.strip().lower() in _MISSING:
                problem = "a missing value"
            else:
                problem = f"the non-numeric value {value!r}"
            raise ValueError(
                f"{table.path}: column {name!r} has {problem} at {table.where(i)}; "
                "select numeric columns with --columns"
            ) from None
    raise ValueError(f"{table.path}: column {name!r} is not numeric")


def _read_npy(path: Path) -> _Table:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable .npy array: {exc}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise ValueError(f"{path} must hold a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{path} must hold a 1-D or 2-D array, got shape {arr.shape}")
    return _Table(path, [f"x{j}" for j in range(arr.shape[1])], list(arr.T))


def _read_parquet(path: Path) -> _Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            "reading .parquet files needs pyarrow: pip install emkit[parquet]"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid / ArrowIOError types
        raise ValueError(f"{path} is not a readable parquet file: {exc}") from None
    out = _Table(path, list(table.column_names), list(table.columns))
    out.convert = partial(_arrow_floats, path)
    return out


def _arrow_floats(path: Path, name: str, column: Any) -> np.ndarray:
    """A pyarrow column as float64 (nulls become NaN), or a ValueError naming it."""
    import pyarrow as pa

    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise ValueError(
            f"{path}: column {name!r} is not numeric (type {column.type}); "
            "select numeric columns with --columns"
        )
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False)


# ====================================================================== model selection
@dataclass
class Candidate:
    """One fitted (K, covariance type) candidate and its scores on the data."""

    model: Any
    loglik: float
    bic: float
    aic: float
    icl: float
    notes: list[str] = field(default_factory=list)

    @property
    def n_components(self) -> int:
        return int(self.model.n_components)

    @property
    def covariance_type(self) -> str:
        return str(self.model.covariance_type)

    def row(self) -> dict[str, Any]:
        """The candidate as a JSON-ready dict (the rows of ``summary.json``)."""
        return {
            "n_components": self.n_components,
            "covariance_type": self.covariance_type,
            "loglik": self.loglik,
            "bic": self.bic,
            "aic": self.aic,
            "icl": self.icl,
            "n_iter": int(self.model.n_iter_),
            "converged": bool(self.model.converged_),
        }


def _estimator(name: str, **params: Any) -> Any:
    import emkit

    return getattr(emkit, MODELS[name])(**params)


def fit_candidate(X: np.ndarray, model_name: str, **params: Any) -> Candidate:
    """Fit one candidate, recording its warnings instead of printing them.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    model_name : str
        A key of :data:`MODELS`.
    **params
        Hyper-parameters of the estimator.

    Returns
    -------
    Candidate
        Non-convergence shows in the candidate's ``converged``; other warnings
        (degenerate components, ...) are kept in ``notes``.
    """
    from emkit.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = _estimator(model_name, **params).fit(X)
        scores = {"bic": model.bic(X), "aic": model.aic(X), "icl": model.icl(X)}
    notes = list(
        dict.fromkeys(
            str(w.message) for w in caught if not issubclass(w.category, ConvergenceWarning)
        )
    )
    return Candidate(
        model, float(model.loglik_), **{k: float(v) for k, v in scores.items()}, notes=notes
    )


def fit_candidates(
    X: np.ndarray,
    components: Sequence[int],
    covariances: Sequence[str],
    *,
    model_name: str = "gmm",
    progress: bool = True,
    **params: Any,
) -> list[Candidate]:
    """Fit every (K, covariance type) pair, with a progress bar on stderr.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    components : sequence of int
        Numbers of components to try; each must be <= ``n_samples``.
    covariances : sequence of str
        Covariance types to try.
    model_name : str, default "gmm"
    progress : bool, default True
        Show a tqdm bar over the candidates (only when stderr is a terminal).
    **params
        Other hyper-parameters, passed to every estimator.

    Returns
    -------
    list of Candidate
        In the order K-major, covariance type minor.
    """
    if max(components) > len(X):
        raise ValueError(
            f"the data have {len(X)} rows, fewer than the largest number of components "
            f"K = {max(components)}; choose smaller values with --components"
        )
    from tqdm.auto import tqdm

    grid = list(product(components, dict.fromkeys(covariances)))
    bar = tqdm(
        grid,
        desc="fitting",
        unit="model",
        file=sys.stderr,
        leave=False,
        disable=not progress or not sys.stderr.isatty(),
    )
    out = []
    with bar:
        for k, cov in bar:
            bar.set_postfix_str(f"K={k} {cov}")
            out.append(fit_candidate(X, model_name, n_components=k, covariance_type=cov, **params))
    return out


def choose(candidates: Sequence[Candidate], criterion: str) -> Candidate:
    """The candidate with the lowest ``criterion`` (the simplest one on ties)."""
    return min(candidates, key=lambda c: getattr(c, criterion))


# ====================================================================== formatting
def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[int] = ()) -> str:
    """A plain-text table, right-aligned except the columns in ``left``."""
    widths = [max(len(r[j]) for r in (header, *rows)) for j in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if j in left else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join(line(r) for r in (header, *rows))


def format_candidates(candidates: Sequence[Candidate], chosen: Candidate, criterion: str) -> str:
    """Table of every candidate, the chosen one marked with ``*``."""
    header = ["", "K", "covariance", "log-lik", "BIC", "AIC", "ICL", "iter", "converged"]
    rows = [
        [
            "*" if c is chosen else "",
            str(c.n_components),
            c.covariance_type,
            f"{c.loglik:.2f}",
            f"{c.bic:.2f}",
            f"{c.aic:.2f}",
            f"{c.icl:.2f}",
            str(c.model.n_iter_),
            "yes" if c.model.converged_ else "no",
        ]
        for c in candidates
    ]
    note = f"* chosen: lowest {criterion.upper()}"
    return _table(header, rows, left=(0, 2)) + "\n" + note


def _array(values: Any, indent: int) -> str:
    """A compact array string whose continuation lines are indented by ``indent``."""
    with np.printoptions(precision=4, suppress=False, threshold=50, edgeitems=3):
        return np.array2string(np.asarray(values), separator=", ", prefix=" " * indent)


def format_mixture(model: Any, feature_names: Sequence[str] | None = None) -> str:
    """Weights, means and covariances of a fitted mixture, one block per component."""
    K, D = model.means_.shape
    names = list(feature_names) if feature_names else [f"x{j}" for j in range(D)]
    cov_type = model.covariance_type
    label = {"full": "covariance", "diag": "variances", "spherical": "variance"}
    lines = [f"features: {', '.join(names)}"]
    for k in range(K):
        lines.append(f"component {k}: weight {model.weights_[k]:.4f}")
        lines.append(f"  mean        {_array(model.means_[k], 14)}")
        if cov_type != "tied":
            lines.append(f"  {label[cov_type]:<11} {_array(model.covariances_[k], 14)}")
    if cov_type == "tied":
        lines.append(f"shared covariance  {_array(model.covariances_, 19)}")
    return "\n".join(lines)


def _describe_attribute(name: str, value: Any, width: int) -> list[str]:
    """Lines describing one fitted attribute (arrays compactly, histories summarised)."""
    if name == "history_":
        history = np.asarray(value)
        text = f"{history.size} values"
        if history.size:
            text += f", from {history[0]:.6g} to {history[-1]:.6g}"
    elif isinstance(value, np.ndarray):
        return [f"  {name} (shape {value.shape}):", f"    {_array(value, 4)}"]
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return [f"  {name:<{width}}  {text}"]


def format_model(model: Any) -> str:
    """Class, hyper-parameters and fitted attributes of any fitted emkit estimator."""
    params = model.get_params()
    width = max(map(len, [*params, *model._fitted_attributes]), default=0)
    lines = [type(model).__name__, "hyper-parameters:"]
    lines += [f"  {name:<{width}}  {value!r}" for name, value in params.items()]
    mixture = all(hasattr(model, a) for a in ("weights_", "means_", "covariances_"))
    # A mixture's parameters are printed per component below (precisions follow from them).
    skip = {"weights_", "means_", "covariances_", "precisions_cholesky_"} if mixture else set()
    lines.append("fitted:")
    for name in model._fitted_attributes:
        if name not in skip:
            lines += _describe_attribute(name, getattr(model, name), width)
    if mixture:
        lines.append("parameters:")
        lines += ["  " + line for line in format_mixture(model).splitlines()]
    return "\n".join(lines)


# ====================================================================== commands
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
        progress=not args.quiet,
        n_init=args.n_init,
        max_iter=args.max_iter,
        tol=args.tol,
        random_state=args.seed,
    )
    chosen = choose(candidates, args.criterion)
    print(format_candidates(candidates, chosen, args.criterion))
    if not args.quiet:
        for c in candidates:
            for note in c.notes:
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


def write_predictions(fh: TextIO, proba: np.ndarray) -> None:
    """Write ``label,prob_0,...`` rows (label = most probable component) to ``fh``."""
    labels = proba.argmax(axis=1)
    fh.write(",".join(["label"] + [f"prob_{k}" for k in range(proba.shape[1])]) + "\n")
    for label, row in zip(labels, proba):
        fh.write(f"{label}," + ",".join(f"{p:.10g}" for p in row) + "\n")


def cmd_info(args: argparse.Namespace) -> int:
    """``emkit info``: describe a saved model."""
    model = _load_model(args.model_file)
    print(f"{args.model_file}: ", end="")
    print(format_model(model))
    return 0


# ====================================================================== parser
class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``emkit: error: ...`` and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"emkit: error: {message} (see '{self.prog} --help')\n")


def _add_selection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--report",
        metavar="DIR",
        help="write figures (loglik.png, criterion.png, clusters.png) and summary.json to DIR",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or warnings")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")


def build_parser() -> argparse.ArgumentParser:
    """The ``emkit`` argument parser with its subcommands."""
    from emkit import __version__

    parser = _Parser(
        prog="emkit",
        description="Fit latent-variable models by Expectation-Maximization.",
        epilog="Run 'emkit COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"emkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    fit = sub.add_parser(
        "fit",
        help="fit and select a mixture model on a data file",
        description="Fit every (K, covariance) candidate, print a table of them and the "
        "parameters of the one with the lowest criterion.",
    )
    fit.add_argument("data", metavar="DATA", help="CSV with a header row, .npy or .parquet file")
    fit.add_argument("--model", choices=sorted(MODELS), default="gmm", help="model (default: gmm)")
    fit.add_argument(
        "--components",
        "-k",
        type=parse_components,
        default=parse_components("1-8"),
        metavar="K",
        help="numbers of components: 3, 1-8 or 2,4,6 (default: 1-8)",
    )
    fit.add_argument(
        "--criterion", choices=CRITERIA, default="bic", help="selection criterion (default: bic)"
    )
    fit.add_argument(
        "--covariance",
        type=parse_covariances,
        nargs="+",
        default=[["full"]],
        metavar="TYPE",
        help="one or more of full, diag, tied, spherical, or all (default: full)",
    )
    fit.add_argument(
        "--n-init", type=_positive_int, default=5, metavar="N", help="restarts per fit (default: 5)"
    )
    fit.add_argument(
        "--max-iter", type=_positive_int, default=500, metavar="N", help="EM steps (default: 500)"
    )
    fit.add_argument(
        "--tol",
        type=_non_negative_float,
        default=1e-6,
        metavar="T",
        help="stop when the mean log-likelihood per row rises less (default: 1e-6)",
    )
    fit.add_argument(
        "--columns",
        type=parse_columns,
        metavar="A,B",
        help="columns to use, by name or 0-based index (default: all)",
    )
    fit.add_argument("--out", "-o", metavar="MODEL", help="save the chosen model to this file")
    _add_selection_options(fit)
    fit.set_defaults(func=cmd_fit)

    demo = sub.add_parser(
        "demo",
        help="model selection on the embedded Old Faithful data",
        description="Fit K = 1..6 with every covariance type to the Old Faithful data and "
        "choose by BIC.",
    )
    _add_selection_options(demo)
    demo.set_defaults(
        func=cmd_demo,
        model="gmm",
        components=list(range(1, 7)),
        covariance=[list(COVARIANCE_TYPES)],
        criterion="bic",
        n_init=10,
        max_iter=1000,
        tol=1e-8,
        out=None,
    )

    predict = sub.add_parser(
        "predict",
        help="cluster labels and probabilities of new data",
        description="Write label,prob_0,...,prob_{K-1} as CSV for every row of DATA.",
    )
    predict.add_argument("model_file", metavar="MODEL", help="a model saved by 'emkit fit --out'")
    predict.add_argument(
        "data", metavar="DATA", help="CSV with a header row, .npy or .parquet file"
    )
    predict.add_argument(
        "--columns",
        type=parse_columns,
        metavar="A,B",
        help="columns to use, by name or 0-based index (default: all)",
    )
    predict.add_argument("--out", "-o", metavar="FILE", help="write to FILE instead of stdout")
    predict.set_defaults(func=cmd_predict)

    info = sub.add_parser("info", help="describe a saved model")
    info.add_argument("model_file", metavar="MODEL", help="a model saved by 'emkit fit --out'")
    info.set_defaults(func=cmd_info)
    return parser


# ====================================================================== entry point
def _warn(message: str) -> None:
    print(f"emkit: warning: {message}", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    """An exception as one line of text."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.strerror}: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``emkit`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        Exit status: 0 on success, 2 on bad input (with a one-line message on stderr),
        130 when interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    if hasattr(args, "covariance"):  # nargs="+" of comma lists -> one flat list
        args.covariance = list(dict.fromkeys(c for group in args.covariance for c in group))
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("emkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `emkit predict ... | head`
        _silence_stdout()
        return 1
    except (ValueError, TypeError, OSError, ImportError, ArithmeticError) as exc:
        print(f"emkit: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
