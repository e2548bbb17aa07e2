"""Checking user-given state-space parameters, and moving them between coordinates.

The estimator fits in centred coordinates: ``y' = y - c_y`` (``c_y`` the observed
column means) and, where the fixed parameters allow, ``x' = x - c_x``. The model is
equivariant under these shifts (the offsets absorb them), the likelihood is unchanged,
and the sums of the M-step are then of residual-sized numbers, whatever the data's
offset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from emkit.models.ssm.model import PARAM_NAMES, SSMParams

__all__ = ["check_param_dict", "shift_params", "state_shift"]

_COVS = ("transition_cov", "observation_cov", "initial_cov")
_INITIAL = ("initial_mean", "initial_cov")


def _shapes(n: int, p: int) -> dict[str, tuple[int, ...]]:
    return {
        "transition": (n, n),
        "transition_offset": (n,),
        "observation": (p, n),
        "observation_offset": (p,),
        "transition_cov": (n, n),
        "observation_cov": (p, p),
        "initial_mean": (n,),
        "initial_cov": (n, n),
    }


def check_param_dict(
    values: Any, what: str, n: int, p: int, cov_types: Mapping[str, str], diffuse: bool
) -> dict[str, np.ndarray]:
    """Validated float64 copies of the parameters in ``values`` (``init`` or ``fixed``).

    Raises
    ------
    TypeError
        ``values`` is not a dict, or a value is not numeric.
    ValueError
        An unknown key, a wrong shape, a non-finite value, a covariance that is not
        symmetric positive definite (or not diagonal where its type is "diag"), or an
        initial moment with ``initial="diffuse"``.
    """
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise TypeError(f"{what} must be a dict of parameters, got {type(values).__name__}")
    unknown = sorted(set(values) - set(PARAM_NAMES))
    if unknown:
        raise ValueError(f"{what} has unknown keys {unknown}; use {', '.join(PARAM_NAMES)}")
    if diffuse and set(values) & set(_INITIAL):
        raise ValueError(
            f"{what} gives {sorted(set(values) & set(_INITIAL))}, but with initial='diffuse' "
            "the initial state has a flat prior and no such parameters"
        )
    shapes = _shapes(n, p)
    out = {}
    for key, value in values.items():
        try:
            arr = np.array(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{what}[{key!r}] must be numeric: {exc}") from None
        if arr.shape != shapes[key]:
            raise ValueError(
                f"{what}[{key!r}] must have shape {shapes[key]} (state_dim={n}, "
                f"{p} observed coordinates), got {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{what}[{key!r}] has non-finite values")
        if key in _COVS:
            _check_cov(arr, f"{what}[{key!r}]", cov_types.get(key, "full"))
        out[key] = arr
    return out


def _check_cov(S: np.ndarray, name: str, cov_type: str) -> None:
    if not np.allclose(S, S.T, rtol=1e-12, atol=0.0):
        raise ValueError(f"{name} must be symmetric")
    if cov_type == "diag" and np.any(S[~np.eye(len(S), dtype=bool)] != 0):
        raise ValueError(f"{name} must be diagonal (its covariance type is 'diag')")
    try:
        np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name} must be positive definite") from None


def state_shift(fixed: Mapping[str, np.ndarray], c_y: np.ndarray, n: int) -> np.ndarray:
    """The state centre ``c_x``: where ``C c_x + d = c_y`` when ``C`` and ``d`` are both
    fixed and a fixed ``b`` comes with a fixed ``A`` (otherwise the shift would move a
    fixed parameter, and ``c_x = 0``)."""
    if "observation" not in fixed or "observation_offset" not in fixed:
        return np.zeros(n)
    if "transition_offset" in fixed and "transition" not in fixed:
        return np.zeros(n)
    C, d = fixed["observation"], fixed["observation_offset"]
    return np.linalg.lstsq(C, c_y - d, rcond=None)[0]


def shift_params(values: Mapping[str, Any], c_x, c_y, sign: int, full: Mapping[str, Any]):
    """Parameters in ``values`` moved to centred coordinates (``sign=+1``) or back
    (``-1``); ``full`` supplies ``A`` and ``C`` for the offsets (the same dict, or the
    complete parameters; a starting ``b`` given without ``A`` is kept as it is: a
    start is just a start)."""
    out = dict(values)
    A, C = full.get("transition"), full.get("observation")
    if "transition_offset" in out and A is not None and np.any(c_x):
        out["transition_offset"] = out["transition_offset"] + sign * (A @ c_x - c_x)
    if "observation_offset" in out:
        out["observation_offset"] = out["observation_offset"] + sign * (
            (C @ c_x if np.any(c_x) else 0.0) - c_y
        )
    if "initial_mean" in out and np.any(c_x):
        out["initial_mean"] = out["initial_mean"] - sign * c_x
    return out


def params_back(p: SSMParams, c_x, c_y) -> SSMParams:
    """Fitted parameters in the data's coordinates."""
    return SSMParams(**shift_params(p._asdict(), c_x, c_y, -1, p._asdict()))
