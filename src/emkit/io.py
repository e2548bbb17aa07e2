"""Save and load fitted estimators: JSON metadata and NumPy arrays in one zip (``.npz``).

Loading never runs code: arrays are read with ``allow_pickle=False`` and the class is
looked up by name in the registry of estimator classes (:mod:`emkit._registry`), which
the estimators fill themselves when they are defined; so this module imports nothing
from ``emkit.models``. What is saved is what the estimator's ``_get_state()`` returns
(its hyper-parameters and its fitted attributes), and loading hands the same back to
the class's ``_from_state``. Files are written atomically (to a temporary file in the
same folder, then renamed), so a crash mid-save leaves any old file intact.

The file: ``meta.json`` holds the format name and version, the emkit version, the
class key, the hyper-parameters (JSON values; ``{"__dict_of_arrays__": keys}`` for a
dict of arrays, stored as ``param.<name>.<key>.npy``; ``{"__distribution__": spec}``
for a distribution; ``null`` for what JSON cannot hold, such as a Generator) and the
attributes (``{"value": v}``, ``{"array": true}`` stored as ``attr.<name>.npy``, or
``{"dict_of_arrays": keys}`` stored as ``attr.<name>.<key>.npy``).
"""

from __future__ import annotations

import io as _io
import json
import numbers
import os
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from emkit._files import atomic_write
from emkit._registry import estimator_class, estimator_key
from emkit._version import __version__

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save"]

FORMAT = "emkit-model"
FORMAT_VERSION = 1
_META = "meta.json"


def _is_json_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, str, numbers.Integral, numbers.Real))


def _to_json_scalar(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def _plain_array(value: np.ndarray, name: str) -> np.ndarray:
    if value.dtype == object:
        raise TypeError(f"attribute {name} has dtype object and cannot be saved")
    return value


def save(estimator: Any, path: str | os.PathLike) -> None:
    """Write a fitted emkit estimator to ``path`` atomically.

    Parameters
    ----------
    estimator : EMEstimator
        A fitted estimator of a registered class (every public subclass of
        ``EMEstimator`` is); what is written is what its ``_get_state()`` returns.
    path : str or path-like
        The file; its folder must exist. A file already there is replaced only once
        the new one is complete.

    Raises
    ------
    TypeError
        ``estimator`` is not an emkit estimator (its class is not registered or has no
        ``_get_state``), or a state value cannot be stored without pickle.
    NotFittedError
        ``estimator`` is not fitted.
    FileNotFoundError
        The folder of ``path`` does not exist.
    """
    class_key = estimator_key(type(estimator))
    if class_key is None or not callable(getattr(estimator, "_get_state", None)):
        raise TypeError(
            "only emkit estimators (public subclasses of EMEstimator) can be saved, got "
            f"{type(estimator).__name__}"
        )
    estimator._check_is_fitted()
    state_params, state_attributes = estimator._get_state()
    arrays: dict[str, np.ndarray] = {}
    params: dict[str, Any] = {}
    for name, value in state_params.items():
        if callable(getattr(value, "get_spec", None)):  # a distribution
            params[name] = {"__distribution__": value.get_spec()}
        elif isinstance(value, Mapping):
            keys = []
            for key, item in value.items():
                arrays[f"param.{name}.{key}"] = np.asarray(item)
                keys.append(str(key))
            params[name] = {"__dict_of_arrays__": keys}
        elif _is_json_scalar(value):
            params[name] = _to_json_scalar(value)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            params[name] = list(value)  # names (such as fixed=["weights"])
        else:  # a Generator or RandomState cannot be stored without pickle
            params[name] = None
    attributes: dict[str, Any] = {}
    for name, value in state_attributes.items():
        if isinstance(value, Mapping):
            for key, item in value.items():
                arrays[f"attr.{name}.{key}"] = _plain_array(np.asarray(item), name)
            attributes[name] = {"dict_of_arrays": [str(k) for k in value]}
        elif isinstance(value, np.ndarray):
            arrays[f"attr.{name}"] = _plain_array(value, name)
            attributes[name] = {"array": True}
        elif _is_json_scalar(value):
            attributes[name] = {"value": _to_json_scalar(value)}
        else:
            raise TypeError(f"attribute {name} of type {type(value).__name__} cannot be saved")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "emkit_version": __version__,
        "class": class_key,
        "params": params,
        "attributes": attributes,
    }

    def write(fh) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(_META, json.dumps(meta, indent=1, sort_keys=True))
            for key, arr in arrays.items():
                buf = _io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
                zf.writestr(f"{key}.npy", buf.getvalue())

    try:
        atomic_write(path, write)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"cannot save to {path}: folder {Path(path).parent} does not exist"
        ) from None


_CORRUPT = (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, UnicodeDecodeError)


def load(path: str | os.PathLike) -> Any:
    """Read an estimator written by ``save``.

    The file's class key is looked up in the registry of estimator classes: emkit's
    own (whose module is imported if it was not yet), and any public subclass of
    ``EMEstimator`` whose module has been imported (a user's class must be imported
    before its files are loaded). The class's
    ``_from_state`` builds the estimator, whose fitted state is then checked.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file is not an emkit model, is corrupt or truncated, or comes from a newer
        format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(
            f"{path} is not an emkit model file (not a readable archive: {exc})"
        ) from None
    with zf:
        try:
            meta = json.loads(zf.read(_META).decode("utf-8"))
        except KeyError:
            raise ValueError(f"{path} is not an emkit model file (no {_META})") from None
        except _CORRUPT as exc:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"{path} is corrupt or truncated: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not an emkit model file")
        version = meta.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(
                f"{path} has format version {version!r}; this emkit reads versions up to "
                f"{FORMAT_VERSION} (upgrade emkit)"
            )
        # The registry imports the module of one of emkit's own estimators when its key
        # is looked up first (``import emkit`` imports none of them).
        name = meta.get("class")
        cls = estimator_class(name) if isinstance(name, str) else None
        if cls is None:
            raise ValueError(f"{path} holds an unknown estimator class {meta.get('class')!r}")

        def array(key: str) -> np.ndarray:
            try:
                with zf.open(f"{key}.npy") as fh:
                    return np.lib.format.read_array(_io.BytesIO(fh.read()), allow_pickle=False)
            except KeyError:
                raise ValueError(f"{path} is corrupt: array {key} is missing") from None
            except _CORRUPT as exc:
                raise ValueError(f"{path} is corrupt or truncated ({key}): {exc}") from None

        try:
            params = {}
            for name, value in meta["params"].items():
                if isinstance(value, dict) and "__dict_of_arrays__" in value:
                    value = {k: array(f"param.{name}.{k}") for k in value["__dict_of_arrays__"]}
                elif isinstance(value, dict) and "__distribution__" in value:
                    from emkit.distributions import from_spec

                    value = from_spec(value["__distribution__"])
                params[name] = value
            attributes = {}
            for name, spec in meta["attributes"].items():
                if "dict_of_arrays" in spec:
                    value = {k: array(f"attr.{name}.{k}") for k in spec["dict_of_arrays"]}
                elif spec.get("array"):
                    value = array(f"attr.{name}")
                else:
                    value = spec["value"]
                attributes[name] = value
            estimator = cls._from_state(params, attributes)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path} is corrupt: {exc}") from None
    if not estimator.__sklearn_is_fitted__():
        raise ValueError(f"{path} is corrupt: fitted attributes are missing")
    try:
        estimator._check_fitted_state()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path} is corrupt: {exc}") from None
    return estimator
