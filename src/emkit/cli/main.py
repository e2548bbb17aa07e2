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

DATA is a CSV file (``.tsv``: tab-separated), a ``.npy`` array, or a ``.parquet`` file,
read in a stream by pyarrow into one float64 matrix. Options of ``fit`` and ``predict``:

``--columns A,B``
    The columns to use, by name or 0-based index. ``fit`` saves the file's names of
    the selected columns with the model (not the ``x0, x1, ...`` of a ``.npy`` file or
    a CSV file without a header); ``predict`` then finds them by name in DATA, in any
    order among other columns (``emkit info`` prints them).
``--header`` / ``--no-header``
    Whether a CSV file's first row holds the column names. By default it is
    detected (a first row that reads as numbers is data; a note on stderr says so,
    and the columns are named ``x0, x1, ...``).
``--missing {allow,drop,error}``
    Missing values: empty cells, ``NA``, ``NaN``, ``null`` or ``None`` (any case),
    Parquet nulls, NaN. ``allow`` (default) hands them to the model, which integrates
    them out; ``drop`` leaves out their rows (``predict``: writes empty fields for
    them, one output row per input row stays); ``error`` refuses them. An infinite
    value is always an error.

Bad input ends the command with exit status 2 and a one-line ``emkit: error: ...``
message on stderr, naming the column and the line of a bad value; an output path that
cannot be written (``--out``, ``--report``) is reported before any data are read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from emkit.cli.parser import build_parser

__all__ = ["main"]


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
