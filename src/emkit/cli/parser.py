"""The ``emkit`` argument parser and the types of its arguments.

The covariance structures offered by ``--covariance`` are the ones the covariance
package registers (:data:`emkit.distributions.covariance.COVARIANCE_TYPES`); ``all``
means mclust's 14 (:data:`~emkit.distributions.covariance.MCLUST_MODELS`), which
include the models of scikit-learn's four names. ``demo`` fits those four.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

import numpy as np

from emkit.cli.candidates import CRITERIA, MODELS, SUBSAMPLE
from emkit.cli.commands import cmd_demo, cmd_fit, cmd_info, cmd_predict
from emkit.cli.readers import MISSING_MODES
from emkit.distributions.covariance import COVARIANCE_TYPES, MCLUST_MODELS

__all__ = ["build_parser", "parse_columns", "parse_components", "parse_covariances"]


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
    """Covariance types from ``"full"``, ``"full,diag"``, ``"EII,VEV"`` or ``"all"``
    (any case).

    ``all`` is mclust's 14 structures, as in :func:`emkit.select`: they include the
    same models as scikit-learn's names (full = VVV, diag = VVI, tied = EEE,
    spherical = VII), which would only fit each of those twice.
    """
    out = []
    known = {n.lower(): n for n in COVARIANCE_TYPES}  # "vev" and "VEV" alike
    for name in filter(None, (part.strip().lower() for part in text.split(","))):
        if name == "all":
            out.extend(MCLUST_MODELS)
        elif name in known:
            out.append(known[name])
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


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


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
    p.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bar, status lines or warnings"
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    p.add_argument(
        "--jobs",
        "-j",
        type=_positive_int,
        default=1,
        metavar="N",
        help="candidates fitted at once, on threads (default: 1). Each fit's E-steps already "
        "use every core through BLAS and Numba; with N > 1 set OMP_NUM_THREADS, "
        "OPENBLAS_NUM_THREADS and NUMBA_NUM_THREADS to about cores / N",
    )


def _add_reading_options(p: argparse.ArgumentParser, drop_help: str) -> None:
    """``--header`` / ``--no-header`` and ``--missing``, for the commands that read DATA."""
    header = p.add_mutually_exclusive_group()
    header.add_argument(
        "--header",
        dest="header",
        action="store_true",
        default=None,
        help="the first row of the CSV file holds the column names (default: detected; "
        "a first row that reads as numbers is data)",
    )
    header.add_argument(
        "--no-header",
        dest="header",
        action="store_false",
        help="the first row of the CSV file is data; columns are named x0, x1, ...",
    )
    p.add_argument(
        "--missing",
        choices=MISSING_MODES,
        default="allow",
        help="missing values (empty cells, NA, NaN, null, None, in any case): allow (default; "
        f"the model integrates them out), {drop_help}, or error",
    )


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
        "parameters of the one with the lowest criterion. Each candidate is started from "
        "--n-init restarts (on a subsample of --subsample rows) and from the fit of K - 1 "
        "components split in each of its components; the best start then runs to "
        "convergence on all rows, with SQUAREM acceleration. Progress goes to stderr: a "
        "bar on a terminal, otherwise a status line every 10 s.",
    )
    fit.add_argument("data", metavar="DATA", help="CSV (or .tsv), .npy or .parquet file")
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
        help=f"one or more of {', '.join(COVARIANCE_TYPES)}, or all (mclust's 14 "
        "structures, EII ... VVV, which include full, diag, tied and spherical; default: full)",
    )
    fit.add_argument(
        "--n-init", type=_positive_int, default=5, metavar="N", help="restarts per fit (default: 5)"
    )
    fit.add_argument(
        "--init",
        choices=("kmeans++", "hc"),
        default="kmeans++",
        help="start: k-means++ restarts, or mclust's hierarchical agglomeration (hc)",
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
    fit.add_argument(
        "--subsample",
        type=_non_negative_int,
        default=SUBSAMPLE,
        metavar="ROWS",
        help=f"run the restarts of each candidate on min(n, ROWS) random rows and only the "
        f"best start on all rows (default: {SUBSAMPLE}; 0: every restart on all rows)",
    )
    _add_reading_options(fit, drop_help="drop (leave out the rows that have one)")
    fit.add_argument("--out", "-o", metavar="MODEL", help="save the chosen model to this file")
    _add_selection_options(fit)
    fit.set_defaults(func=cmd_fit)

    demo = sub.add_parser(
        "demo",
        help="model selection on the embedded Old Faithful data",
        description="Fit K = 1..6 with the full, diag, tied and spherical covariances to the "
        "Old Faithful data and choose by BIC. Each candidate starts from mclust's "
        "hierarchical agglomeration and from the fit of K - 1 components split in each of "
        "its components (screened to a tolerance of 1e-4); the best start runs on to 1e-8 "
        "with SQUAREM.",
    )
    _add_selection_options(demo)
    demo.set_defaults(
        func=cmd_demo,
        model="gmm",
        components=list(range(1, 7)),
        covariance=[[n for n in COVARIANCE_TYPES if n not in MCLUST_MODELS]],
        init="hc",
        criterion="bic",
        n_init=1,
        max_iter=1000,
        tol=1e-8,
        screen_tol=1e-4,
        subsample=0,
        out=None,
    )

    predict = sub.add_parser(
        "predict",
        help="cluster labels and probabilities of new data",
        description="Write label,prob_0,...,prob_{K-1} as CSV for every row of DATA.",
    )
    predict.add_argument("model_file", metavar="MODEL", help="a model saved by 'emkit fit --out'")
    predict.add_argument("data", metavar="DATA", help="CSV (or .tsv), .npy or .parquet file")
    predict.add_argument(
        "--columns",
        type=parse_columns,
        metavar="A,B",
        help="columns to use, by name or 0-based index (default: the model's features, "
        "found by name, when it was fitted on named columns; else all)",
    )
    _add_reading_options(
        predict, drop_help="drop (write empty label and probabilities for the rows that have one)"
    )
    predict.add_argument("--out", "-o", metavar="FILE", help="write to FILE instead of stdout")
    predict.set_defaults(func=cmd_predict)

    info = sub.add_parser("info", help="describe a saved model")
    info.add_argument("model_file", metavar="MODEL", help="a model saved by 'emkit fit --out'")
    info.set_defaults(func=cmd_info)
    return parser
