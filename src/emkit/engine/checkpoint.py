"""Checkpoint and resume: the engine's state in one file, written atomically.

``emkit.em(..., checkpoint=PATH, checkpoint_every=k)`` writes, every ``k`` EM steps
(and when each restart ends), everything needed to carry on:

* a **fingerprint** of the fit: the model's class and settings, the options that
  change the result, the shape of the data and the seed;
* the restarts already **finished** (their parameters, objective, history, counts);
* the **current** restart: its index, parameters after the last recorded step, the
  monitor's history, counts, stage and convergence flag, its random generator's state,
  and the state a scheme keeps between steps (SQUAREM's step bound; online EM's running
  statistics and step counter; annealing's stage, the index of its inverse temperature,
  whose steps so far the monitor counts).

Running the same fit again with the same path resumes from the file: finished
restarts are not run again, and the current one continues from its parameters. The
E-step at those parameters is deterministic, so the resumed run goes through the
same iterates as an uninterrupted one and ends with the same result: parameters,
history, counts (the E-step repeated at the resumed parameters is not counted) and
the choice of the best restart. This holds for every scheme (plain EM, SQUAREM,
online, hard, annealed, ECME, and a custom scheme that keeps its state between steps
in ``RunContext.scheme_state``), with ``fixed`` parameters, chunked batches and
threads (their E-step sums are taken in batch order). Restarts run one after the
other when checkpointed; their results do not depend on that. A file whose
fingerprint differs (another model, other options, data of another shape) is refused
with a ``ValueError`` naming what differs; it is never used silently.

The file is a zip of ``meta.json`` (JSON) and ``.npy`` arrays, as model files
(:mod:`emkit.io`): no pickle. It is written to a temporary file in the same folder
and renamed over the old one, so a crash mid-write leaves the previous checkpoint
intact and no temporary file. It is kept after the fit: running the fit again
returns the finished result at once. Delete it to start afresh.
"""

from __future__ import annotations

import hashlib
import io as _io
import json
import numbers
import os
import zipfile
from typing import Any

import numpy as np

from emkit._files import atomic_write
from emkit._pytree import tree_flatten, tree_unflatten

__all__ = ["Checkpoint", "fingerprint"]

FORMAT = "emkit-checkpoint"
FORMAT_VERSION = 1


def _describe(value: Any) -> Any:
    """A JSON description of a setting: scalars as they are, objects by class and repr."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_describe(v) for v in items]
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, np.ndarray):
        return {"array": list(value.shape), "sha1": hashlib.sha1(value.tobytes()).hexdigest()}
    cls = type(value)
    if cls.__repr__ is not object.__repr__:
        return f"{cls.__qualname__}: {value!r}"
    return cls.__qualname__


def _describe_model(model: Any) -> dict[str, Any]:
    settings = {
        name: _describe(value)
        for name, value in sorted(vars(model).items())
        if not name.startswith("_") and not callable(value)
    }
    return {"class": f"{type(model).__module__}.{type(model).__qualname__}", "settings": settings}


def _tree_digest(tree: Any) -> str:
    leaves, _ = tree_flatten(tree)
    h = hashlib.sha1()
    for leaf in leaves:
        if leaf is not None:
            arr = np.ascontiguousarray(leaf)
            h.update(repr((arr.shape, arr.dtype.str)).encode())
            h.update(arr.tobytes())
    return h.hexdigest()


def fingerprint(model: Any, source: Any, options: dict[str, Any], init: Any) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed (JSON)."""
    base = source
    while hasattr(base, "base"):  # a mapped source: describe the data underneath
        base = base.base
    data: dict[str, Any] = {"n_samples": int(source.n_samples)}
    if hasattr(base, "n_features"):
        data["n_features"] = int(base.n_features)
    elif hasattr(base, "data"):
        leaves, _ = tree_flatten(base.data)
        data["shapes"] = [None if x is None else list(np.shape(x)) for x in leaves]
    return {
        "model": _describe_model(model),
        "options": {k: _describe(v) for k, v in sorted(options.items())},
        "data": data,
        "init": None if init is None else _tree_digest(init),
    }


def _differences(saved: Any, current: Any, where: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current)):
            out += _differences(saved.get(key), current.get(key), f"{where}.{key}".lstrip("."))
        return out
    return (
        [] if saved == current else [f"{where or 'value'}: {saved!r} in the file, {current!r} now"]
    )


class Checkpoint:
    """One checkpoint file: read, check against a fingerprint, and write.

    Parameters
    ----------
    path : str or path-like
        The file (its folder must exist).
    every : int
        Write every ``every`` recorded EM steps (and at the end of every restart).
    fingerprint : dict
        What the fit is (:func:`fingerprint`); a file with another one is refused.
    """

    def __init__(self, path: str | os.PathLike, every: int, fingerprint: dict[str, Any]):
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ValueError(f"checkpoint_every must be a positive integer, got {every!r}")
        path = os.fspath(path)
        folder = os.path.dirname(path) or "."
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"cannot write checkpoint {path}: folder {folder} does not exist"
            )
        self.path = path
        self.every = int(every)
        _remove_stale_temporaries(path)
        self.fingerprint = json.loads(json.dumps(fingerprint))  # as it reads back
        self.meta: dict[str, Any] = {"finished": [], "current": None, "seed": None}
        self.arrays: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ reading
    def load(self) -> bool:
        """Read the file if there is one; True if it was read. Refuses a foreign file."""
        if not os.path.exists(self.path):
            return False
        try:
            with zipfile.ZipFile(self.path) as zf:
                meta = json.loads(zf.read("meta.json"))
                arrays = {
                    name[:-4]: np.lib.format.read_array(
                        _io.BytesIO(zf.read(name)), allow_pickle=False
                    )
                    for name in zf.namelist()
                    if name.endswith(".npy")
                }
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
            raise ValueError(f"{self.path} is not an emkit checkpoint: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{self.path} is not an emkit checkpoint")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{self.path} is a checkpoint of format version {meta.get('format_version')}; "
                f"this emkit reads version {FORMAT_VERSION}"
            )
        diff = _differences(meta.get("fingerprint"), self.fingerprint)
        if diff:
            raise ValueError(
                f"checkpoint {self.path} belongs to another fit and is not used; it differs "
                f"in {'; '.join(diff[:5])}. Delete it, or pass another checkpoint path"
            )
        self.meta = {k: meta[k] for k in ("finished", "current", "seed")}
        self.arrays = arrays
        return True

    @property
    def seed(self) -> Any:
        """The entropy of the seed sequence the fit's restarts were spawned from."""
        return self.meta["seed"]

    def set_seed(self, entropy: Any) -> None:
        self.meta["seed"] = entropy

    def finished(self, restart: int) -> dict[str, Any] | None:
        for entry in self.meta["finished"]:
            if entry["restart"] == restart:
                return entry
        return None

    def current(self, restart: int) -> dict[str, Any] | None:
        cur = self.meta["current"]
        return cur if cur is not None and cur["restart"] == restart else None

    def tree(self, key: str, like: Any) -> Any:
        """The pytree stored under ``key``, in the structure of ``like`` (checked)."""
        leaves, treedef = tree_flatten(like)
        stored = []
        for i, leaf in enumerate(leaves):
            name = f"{key}.{i}"
            if leaf is None:
                stored.append(None)
                continue
            if name not in self.arrays:
                raise ValueError(f"checkpoint {self.path} does not match the model's parameters")
            arr = self.arrays[name]
            ref = np.asarray(leaf)
            if arr.shape != ref.shape or arr.dtype != ref.dtype:
                raise ValueError(
                    f"checkpoint {self.path} does not match the model's parameters: an array "
                    f"of shape {arr.shape} ({arr.dtype}) where the model has {ref.shape} ({ref.dtype})"
                )
            stored.append(arr if isinstance(leaf, np.ndarray) else arr[()].item())
        if sum(k.startswith(f"{key}.") for k in self.arrays) != sum(x is not None for x in leaves):
            raise ValueError(f"checkpoint {self.path} does not match the model's parameters")
        return tree_unflatten(treedef, stored)

    # ------------------------------------------------------------------ writing
    def _put_tree(self, key: str, tree: Any) -> None:
        for name in [k for k in self.arrays if k.startswith(f"{key}.")]:
            del self.arrays[name]
        leaves, _ = tree_flatten(tree)
        for i, leaf in enumerate(leaves):
            if leaf is not None:
                self.arrays[f"{key}.{i}"] = np.asarray(leaf)

    def record(
        self, restart: int, params: Any, monitor: Any, rng: np.random.Generator, scheme_state: dict
    ) -> None:
        """The current restart after a recorded step (written every ``every`` steps)."""
        if monitor.n_iter % self.every:
            return
        self._put_tree(f"r{restart}.params", params)
        for name, value in scheme_state.items():
            self._put_tree(f"r{restart}.scheme.{name}", value)
        self.meta["current"] = {
            "restart": restart,
            **monitor.state_dict(),
            "rng": rng.bit_generator.state,
            "scheme": sorted(scheme_state),
        }
        self.write()

    def finish(
        self, restart: int, objective: float, loglik: float, params: Any, monitor: Any
    ) -> None:
        """A restart has ended: keep its result, drop its progress."""
        self._put_tree(f"r{restart}.params", params)
        for name in [k for k in self.arrays if k.startswith(f"r{restart}.scheme.")]:
            del self.arrays[name]
        self.meta["finished"] = [e for e in self.meta["finished"] if e["restart"] != restart]
        self.meta["finished"].append(
            {
                "restart": restart,
                "objective": float(objective),
                "loglik": float(loglik),
                **monitor.state_dict(),
            }
        )
        self.meta["current"] = None
        self.write()

    def write(self) -> None:
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "fingerprint": self.fingerprint}
        meta.update(self.meta)
        arrays = dict(self.arrays)

        def write(fh) -> None:
            with zipfile.ZipFile(fh, "w") as zf:
                zf.writestr("meta.json", json.dumps(meta))
                for key, arr in arrays.items():
                    buf = _io.BytesIO()
                    np.lib.format.write_array(buf, np.asarray(arr, order="C"), allow_pickle=False)
                    zf.writestr(f"{key}.npy", buf.getvalue())

        atomic_write(self.path, write)


def _remove_stale_temporaries(path: str) -> None:
    """Remove temporary files a killed writer of ``path`` left (``atomic_write``'s names)."""
    folder, name = os.path.split(path)
    folder = folder or "."
    for entry in os.listdir(folder):
        if entry.startswith(f".{name}.") and entry.endswith(".tmp"):
            try:
                os.unlink(os.path.join(folder, entry))
            except FileNotFoundError:
                pass
