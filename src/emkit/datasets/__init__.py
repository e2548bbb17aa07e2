"""Small data sets embedded in emkit, used by the demo, the documentation and the tests.

Each data set is a CSV file with a header row shipped inside this package and read
with :mod:`importlib.resources`, so it works from a wheel, a zip or a source tree.

=========  =====  ========  =====================================================
name       rows   columns   what it is
=========  =====  ========  =====================================================
faithful   272    2         Old Faithful geyser: eruption length (min), waiting
                            time to the next eruption (min)
iris       150    4 (+1)    Fisher's iris flowers: sepal and petal length and
                            width (cm), and the species (text, not loaded as X)
=========  =====  ========  =====================================================

Examples
--------
>>> from emkit.datasets import available, load_faithful
>>> "faithful" in available()
True
>>> X, names = load_faithful()
>>> X.shape, names
((272, 2), ['eruptions', 'waiting'])
"""

from __future__ import annotations

import csv
import io
from importlib import resources

import numpy as np

__all__ = ["available", "load", "load_faithful", "load_iris"]


def available() -> list[str]:
    """Names of the embedded data sets.

    Returns
    -------
    list of str
        Sorted names, each accepted by :func:`load`.
    """
    root = resources.files(__name__)
    return sorted(p.name[: -len(".csv")] for p in root.iterdir() if p.name.endswith(".csv"))


def _read_table(name: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (as strings) of the embedded CSV file ``name``."""
    names = available()
    if name not in names:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(names)}")
    text = resources.files(__name__).joinpath(f"{name}.csv").read_text(encoding="utf-8")
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    return rows[0], rows[1:]


def _is_numeric(values: list[str]) -> bool:
    try:
        np.asarray(values, dtype=np.float64)
    except ValueError:
        return False
    return True


def load(name: str) -> tuple[np.ndarray, list[str]]:
    """Load the numeric columns of an embedded data set.

    Parameters
    ----------
    name : str
        One of :func:`available`.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
        The numeric columns, in file order (text columns are left out).
    feature_names : list of str
        The names of the columns of ``X``.

    Raises
    ------
    ValueError
        ``name`` is not an embedded data set.
    """
    header, rows = _read_table(name)
    columns = [list(col) for col in zip(*rows)]
    keep = [j for j, col in enumerate(columns) if _is_numeric(col)]
    X = np.asarray([columns[j] for j in keep], dtype=np.float64).T
    return np.ascontiguousarray(X), [header[j] for j in keep]


def load_faithful() -> tuple[np.ndarray, list[str]]:
    """The Old Faithful geyser data (Azzalini and Bowman 1990; R's ``faithful``).

    Returns
    -------
    X : ndarray of shape (272, 2), float64
        Eruption time and waiting time to the next eruption, in minutes.
    feature_names : list of str
        ``["eruptions", "waiting"]``.
    """
    return load("faithful")


def load_iris(
    return_species: bool = False,
) -> tuple[np.ndarray, list[str]] | tuple[np.ndarray, list[str], np.ndarray]:
    """Fisher's iris data (R's ``iris``): 50 flowers of each of three species.

    Parameters
    ----------
    return_species : bool, default False
        Also return the species of each flower.

    Returns
    -------
    X : ndarray of shape (150, 4), float64
        Sepal length, sepal width, petal length and petal width, in cm.
    feature_names : list of str
    species : ndarray of shape (150,), str
        Only when ``return_species`` is true.
    """
    X, feature_names = load("iris")
    if not return_species:
        return X, feature_names
    header, rows = _read_table("iris")
    species = np.asarray([row[header.index("Species")] for row in rows])
    return X, feature_names, species
