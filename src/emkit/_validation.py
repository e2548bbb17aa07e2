"""Input validation shared by every estimator: clear errors that name the problem."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = [
    "ALL_MISSING",
    "check_array",
    "check_int",
    "check_observed_values",
    "check_real",
    "check_sample_weight",
    "drop_all_missing_rows",
]


def check_array(
    X: Any,
    *,
    name: str = "X",
    allow_nan: bool = False,
    min_samples: int = 1,
    dtype=None,
) -> np.ndarray:
    """A 2-D float array (float64, or float32 if given float32) from array-like ``X``."""
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"sparse input is not supported for {name}; pass a dense array")
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} could not be read as a numeric array: {exc}") from None
    if np.iscomplexobj(arr):
        raise ValueError(f"Complex data not supported: {name} has complex values")
    if arr.dtype.kind in "OUS":
        try:
            arr = arr.astype(np.float64)
        except TypeError as exc:
            raise TypeError(f"{name} must be numeric: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"{name} must be numeric: {exc}") from None
    elif arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"Expected 2D array for {name}, got a scalar {arr!r}")
    if arr.ndim == 1:
        raise ValueError(
            f"Expected 2D array for {name}, got 1D array instead (shape {arr.shape}). Reshape "
            "your data either using array.reshape(-1, 1) if your data has a single feature or "
            "array.reshape(1, -1) if it contains a single sample."
        )
    if arr.ndim > 2:
        raise ValueError(
            f"Expected 2D array for {name}, got {arr.ndim}D array with shape {arr.shape}"
        )
    if dtype is None:
        dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64
    arr = np.asarray(arr, dtype=dtype)
    n, d = arr.shape
    if n < min_samples:
        raise ValueError(
            f"Found array with {n} sample(s) (shape={arr.shape}) while a minimum of "
            f"{min_samples} is required for {name}."
        )
    if d < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    if not allow_nan and not np.all(np.isfinite(arr)):
        if np.isnan(arr).any():
            raise ValueError(f"Input {name} contains NaN.")
        raise ValueError(f"Input {name} contains infinity or a value too large for {arr.dtype!r}.")
    if allow_nan and np.isinf(arr).any():
        raise ValueError(f"Input {name} contains infinity or a value too large for {arr.dtype!r}.")
    return arr


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    """Validated float64 weights of shape (n_samples,), or None."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be numeric, got dtype {w.dtype}")
    w = w.astype(np.float64)
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},) to match X, got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinity")
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative; negative weights were given")
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero; at least one sample needs positive weight")
    return w


def check_probabilities(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Probabilities of the given shape: finite, non-negative, each last-axis row summing
    to 1 (within 1e-8; 1e-5 for float32 values); returned renormalised (as given when
    they sum to 1 up to round-off). ``ValueError``
    names what is wrong."""
    single = np.asarray(value).dtype == np.float32
    p = np.asarray(value, dtype=np.float64)
    if p.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    sums = np.atleast_1d(p.sum(axis=-1))
    bad = np.flatnonzero(np.abs(sums - 1.0) > (1e-5 if single else 1e-8))
    if bad.size:
        where = "" if p.ndim == 1 else f"row {bad[0]} of "
        raise ValueError(
            f"{where}{name} sums to {float(sums[bad[0]]):.6g}, not 1; "
            "probabilities must sum to 1" + (" along each row" if p.ndim > 1 else "")
        )
    if np.all(np.abs(sums - 1.0) <= 4 * np.finfo(np.float64).eps * p.shape[-1]):
        return p.copy()  # sums to 1 up to round-off: the values as given (a held value stays)
    return p / p.sum(axis=-1, keepdims=True)


#: the largest spread (max - min of a column) a Gaussian fit takes: squares of larger
#: residuals overflow float64 once summed
MAX_SPREAD = 1e150
#: the smallest: squares of smaller residuals underflow to subnormal numbers
MIN_SPREAD = 1e-150
#: a fit stops when the largest column variance is below this multiple of reg_covar
#: (the regularisation would dominate every covariance and merge the components)
MIN_VARIANCE_OVER_REG = 10.0


def check_gaussian_scale(X: np.ndarray, reg_covar: float | None) -> None:
    """Refuse data whose scale a Gaussian fit cannot represent, saying what to do.

    Column spreads above :data:`MAX_SPREAD` overflow the squared residuals; a largest
    column variance below ``MIN_VARIANCE_OVER_REG * reg_covar`` would let the
    covariance regularisation swallow the data (every component the same, every label
    the same: scikit-learn's silent collapse on tiny scales). Both are errors that say
    how to rescale, so a fit of ``X * c`` either equals the fit of ``X`` or stops.
    """
    observed = ~np.isnan(X).all(axis=0)  # columns with no value are another check's
    if not observed.any():
        return
    X = X[:, observed]
    with np.errstate(over="ignore", invalid="ignore"):
        spread = np.nanmax(X, axis=0).astype(np.float64) - np.nanmin(X, axis=0)
    if np.any(np.isinf(spread) | (spread > MAX_SPREAD)):
        big = float(np.nanmax(np.abs(X)))
        raise ValueError(
            f"the data's spread is too large for float64 ({big:.3g} in absolute value; "
            f"squared residuals overflow above {MAX_SPREAD:.0e}): divide X by a power of "
            "ten (a Gaussian fit is equivariant: means and covariances scale back)"
        )
    widest = float(np.nanmax(spread))
    if 0 < widest < MIN_SPREAD:
        raise ValueError(
            f"the data's spread is too small for float64 (largest column range {widest:.3g}; "
            f"squared residuals underflow below {MIN_SPREAD:.0e}): multiply X by a power of "
            "ten (a Gaussian fit is equivariant: means and covariances scale back)"
        )
    if reg_covar:
        with np.errstate(invalid="ignore"):
            top = float(np.nanmax(np.nanvar(X, axis=0, dtype=np.float64)))
        # (constant data, top == 0, have no scale to lose: they fit a point mass)
        if 0 < top < MIN_VARIANCE_OVER_REG * reg_covar:
            raise ValueError(
                f"the data's largest column variance ({top:.3g}) is below "
                f"{MIN_VARIANCE_OVER_REG:g} x reg_covar = {reg_covar:.3g}: the covariance "
                "regularisation would swallow the data and merge every component; "
                "standardise X (or multiply it by a power of ten), or lower reg_covar"
            )


def check_not_swallowed(X: np.ndarray, variances: np.ndarray, reg_covar: float) -> None:
    """After a Gaussian fit on small-scale data: refuse the result when a component's
    variance (``variances``, its covariances' diagonals) came out within 10x of
    ``reg_covar``, so the regularisation, not the data, shaped it. Data of ordinary
    scale (largest column variance above ``1e4 * reg_covar``) are never refused:
    there a component at the floor is a genuine degenerate one (duplicates)."""
    if not reg_covar:
        return
    with np.errstate(invalid="ignore"):
        top = float(np.nanmax(np.nanvar(X, axis=0, dtype=np.float64)))
    low = float(np.min(variances))
    if 0 < top < 1e4 * reg_covar and low < MIN_VARIANCE_OVER_REG * reg_covar:
        raise ValueError(
            f"a fitted component's variance ({low:.3g}) is within {MIN_VARIANCE_OVER_REG:g}x "
            f"of reg_covar = {reg_covar:.3g} on data this small (largest column variance "
            f"{top:.3g}): the regularisation, not the data, shaped the fit; standardise X "
            "(or multiply it by a power of ten), or lower reg_covar"
        )


def check_int(value: Any, name: str, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def check_real(value: Any, name: str, low: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value) or (low is not None and value < low):
        raise ValueError(f"{name} must be a finite number >= {low}, got {value}")
    return float(value)


def check_choice(value: Any, name: str, choices: tuple) -> Any:
    """``value`` if it is one of ``choices``, else a ValueError naming both."""
    if not isinstance(value, str | int | float | type(None)) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_init(init: Any, methods: tuple[str, ...]) -> None:
    """``init`` must name one of ``methods`` or be a dict (mapping) of parameters."""
    from collections.abc import Mapping

    if isinstance(init, str):
        if init not in methods:
            raise ValueError(f"init must be one of {methods} or a dict of parameters, got {init!r}")
    elif not isinstance(init, Mapping):
        raise TypeError(f"init must be a string or a dict, got {type(init).__name__}")


ALL_MISSING = ("error", "drop")


def drop_all_missing_rows(
    X: np.ndarray, w: np.ndarray | None, all_missing: str, min_rows: int = 2
) -> np.ndarray:
    """Rows of ``X`` to keep: those with at least one observed (non-NaN) value.

    Rows with every value missing carry no information: ``all_missing="error"``
    rejects them with a ValueError naming them, ``"drop"`` drops them with a warning.
    Returns a boolean mask over the rows (all True when nothing is dropped).
    """
    import warnings

    check_choice(all_missing, "all_missing", ALL_MISSING)
    empty_rows = np.isnan(X).all(axis=1)
    keep = ~empty_rows
    if not empty_rows.any():
        return keep
    idx = np.flatnonzero(empty_rows)
    what = f"{idx.size} row(s) of X have every value missing (rows {idx[:10].tolist()}"
    what += ", ...)" if idx.size > 10 else ")"
    if all_missing == "error":
        raise ValueError(
            f"{what}; they carry no information: remove them or pass all_missing='drop'"
        )
    warnings.warn(f"{what}; dropping them", UserWarning, stacklevel=3)
    if keep.sum() < min_rows:
        raise ValueError(f"fewer than {min_rows} rows of X have an observed value")
    if w is not None and not w[keep].sum() > 0:
        raise ValueError("the rows with observed values all have zero sample_weight")
    return keep


def check_observed_values(
    X: np.ndarray, w: np.ndarray | None, n_params: int | None, model: str = "the model"
) -> None:
    """Check that data with NaN can estimate ``model``: every column has an observed value
    and there are at least ``n_params`` observed values (among rows with positive weight).
    Raises a ValueError that names the columns or the counts."""
    observed = ~np.isnan(X if w is None else X[w > 0])
    per_column = observed.sum(axis=0)
    if np.any(per_column == 0):
        cols = np.flatnonzero(per_column == 0).tolist()
        raise ValueError(
            f"column(s) {cols} of X have every value missing (among rows with positive "
            "weight): their distribution cannot be estimated; drop them"
        )
    n_values = int(observed.sum())
    if n_params is not None and n_values < n_params:
        raise ValueError(
            f"X has {n_values} observed values, fewer than the {n_params} parameters "
            f"of {model}; provide more data or a smaller model"
        )
