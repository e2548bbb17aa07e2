"""Persistence: ``estimator.save(path)`` / ``emkit.load(path)`` (JSON + .npy in a zip, no pickle)."""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import emkit
from emkit import GaussianMixture, NotFittedError

COVARIANCE_TYPES = ["full", "diag", "tied", "spherical"]

# documented fitted attributes of GaussianMixture (its docstring, "Attributes")
FITTED = [
    "weights_",
    "means_",
    "covariances_",
    "precisions_cholesky_",
    "converged_",
    "n_iter_",
    "history_",
    "loglik_",
    "n_features_in_",
]


def _data(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack(
        [
            rng.normal([-3.0, 0.0, 1.0], [1.0, 0.5, 0.8], size=(60, 3)),
            rng.normal([3.0, 1.0, -1.0], [0.7, 1.2, 0.5], size=(80, 3)),
        ]
    )


@pytest.fixture(scope="module")
def fitted() -> dict[str, GaussianMixture]:
    X = _data()
    return {
        ct: GaussianMixture(2, covariance_type=ct, random_state=0, tol=1e-6).fit(X)
        for ct in COVARIANCE_TYPES
    }


@pytest.fixture
def saved(tmp_path, fitted) -> Path:
    path = tmp_path / "model.npz"
    fitted["full"].save(path)
    return path


def _same_value(a, b) -> None:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
        assert a.dtype == b.dtype
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    else:
        assert type(a) is type(b)
        assert a == b


# ----------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_round_trip_every_covariance_type(tmp_path, fitted, covariance_type):
    gm = fitted[covariance_type]
    path = tmp_path / f"{covariance_type}.npz"
    gm.save(path)
    loaded = emkit.load(path)
    assert type(loaded) is GaussianMixture
    assert loaded is not gm

    for name in FITTED:
        _same_value(getattr(loaded, name), getattr(gm, name))
    assert loaded.get_params() == gm.get_params()

    X_new = _data(seed=1)
    np.testing.assert_array_equal(loaded.predict(X_new), gm.predict(X_new))
    np.testing.assert_array_equal(loaded.predict_proba(X_new), gm.predict_proba(X_new))
    np.testing.assert_array_equal(loaded.score_samples(X_new), gm.score_samples(X_new))
    assert loaded.score(X_new) == gm.score(X_new)
    assert loaded.bic(X_new) == gm.bic(X_new)
    assert loaded.aic(X_new) == gm.aic(X_new)
    np.testing.assert_array_equal(loaded.precisions_, gm.precisions_)
    # sample() draws from random_state, which was saved
    np.testing.assert_array_equal(loaded.sample(5)[0], gm.sample(5)[0])


def test_round_trip_float32(tmp_path):
    X = _data().astype(np.float32)
    gm = GaussianMixture(2, covariance_type="diag", random_state=1).fit(X)
    gm.save(tmp_path / "f32.npz")
    loaded = emkit.load(tmp_path / "f32.npz")
    for name in FITTED:
        _same_value(getattr(loaded, name), getattr(gm, name))
    assert loaded.means_.dtype == np.float32
    np.testing.assert_array_equal(loaded.score_samples(X), gm.score_samples(X))


def test_round_trip_hyper_parameters_with_an_init_dict(tmp_path):
    X = _data()
    init = {
        "weights": np.array([0.4, 0.6]),
        "means": np.array([[-3.0, 0.0, 1.0], [3.0, 1.0, -1.0]]),
        "covariances": np.array([np.eye(3), 2.0 * np.eye(3)]),
    }
    gm = GaussianMixture(
        2,
        covariance_type="full",
        tol=1e-5,
        reg_covar=1e-4,
        max_iter=50,
        init=init,
        random_state=12,
        batch_size=33,
        check_monotone="raise",
    ).fit(X)
    path = tmp_path / "init.npz"
    gm.save(str(path))  # a str path works too
    loaded = emkit.load(str(path))

    params, expected = loaded.get_params(), gm.get_params()
    assert set(params) == set(expected)
    for name, value in expected.items():
        if name == "init":
            continue
        _same_value(params[name], value)
    assert set(params["init"]) == set(init)
    for key, value in init.items():
        _same_value(params["init"][key], value)
    for name in FITTED:
        _same_value(getattr(loaded, name), getattr(gm, name))
    # the loaded estimator refits to the same answer (same init, same options)
    refit = loaded.fit(X)
    np.testing.assert_allclose(refit.means_, gm.means_, rtol=1e-12)


def test_round_trip_keeps_lower_bound(tmp_path, fitted):
    gm = fitted["full"]
    gm.save(tmp_path / "m.npz")
    loaded = emkit.load(tmp_path / "m.npz")
    assert loaded.lower_bound_ == gm.lower_bound_


def test_saving_twice_overwrites(tmp_path, fitted):
    path = tmp_path / "m.npz"
    fitted["full"].save(path)
    fitted["spherical"].save(path)
    assert emkit.load(path).covariance_type == "spherical"
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_saved_file_has_default_permissions(tmp_path, fitted):
    old = os.umask(0o022)
    try:
        reference = tmp_path / "plain"
        reference.write_bytes(b"")  # what open() creates under this umask: 0644
        path = tmp_path / "m.npz"
        fitted["full"].save(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(reference.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# ----------------------------------------------------------------------------- bad saves


def test_saving_an_unfitted_estimator_raises(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted"):
        GaussianMixture(2).save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_saving_into_a_missing_folder_raises(tmp_path, fitted):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fitted["full"].save(tmp_path / "missing" / "m.npz")
    assert os.listdir(tmp_path) == []


def test_saving_something_else_raises(tmp_path):
    from emkit.io import save

    with pytest.raises(TypeError, match="emkit estimators"):
        save({"means_": np.zeros(2)}, tmp_path / "m.npz")


def _fail_after_first_call(monkeypatch, module, name):
    original = getattr(module, name)
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise OSError("disk full (simulated)")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, failing)
    return calls


@pytest.mark.parametrize(
    ("module", "name"),
    [(np.lib.format, "write_array"), (zipfile.ZipFile, "writestr")],
    ids=["write_array", "writestr"],
)
def test_failed_save_keeps_the_previous_file(tmp_path, fitted, monkeypatch, module, name):
    path = tmp_path / "m.npz"
    fitted["full"].save(path)
    before = path.read_bytes()

    calls = _fail_after_first_call(monkeypatch, module, name)
    with pytest.raises(OSError, match="simulated"):
        fitted["diag"].save(path)
    assert len(calls) == 2  # it failed midway, after something was written
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]  # no temporary file left behind
    loaded = emkit.load(path)
    assert loaded.covariance_type == "full"
    np.testing.assert_array_equal(loaded.means_, fitted["full"].means_)


def test_failed_first_save_leaves_nothing(tmp_path, fitted, monkeypatch):
    _fail_after_first_call(monkeypatch, np.lib.format, "write_array")
    with pytest.raises(OSError, match="simulated"):
        fitted["full"].save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_failed_rename_keeps_the_previous_file(tmp_path, fitted, monkeypatch):
    path = tmp_path / "m.npz"
    fitted["full"].save(path)
    before = path.read_bytes()

    def no_replace(src, dst):
        raise PermissionError("rename refused (simulated)")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(PermissionError, match="simulated"):
        fitted["tied"].save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


# ----------------------------------------------------------------------------- bad files


def test_loading_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        emkit.load(tmp_path / "nothing.npz")


def test_loading_a_truncated_file(tmp_path, saved):
    data = saved.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 10):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=r"not an emkit model|corrupt"):
            emkit.load(bad)


def test_loading_random_bytes(tmp_path):
    bad = tmp_path / "random.npz"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="not an emkit model"):
        emkit.load(bad)


def test_loading_a_text_file(tmp_path):
    bad = tmp_path / "model.json"
    bad.write_text('{"format": "emkit-model"}')
    with pytest.raises(ValueError, match="not an emkit model"):
        emkit.load(bad)


def test_loading_a_zip_without_meta(tmp_path):
    bad = tmp_path / "nometa.npz"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match=r"meta\.json"):
        emkit.load(bad)


def test_loading_a_foreign_npz(tmp_path):
    bad = tmp_path / "foreign.npz"
    np.savez(bad, means_=np.zeros((2, 3)), weights_=np.ones(2) / 2)
    with pytest.raises(ValueError, match="not an emkit model"):
        emkit.load(bad)


def _rewrite(saved: Path, dest: Path, edit_meta=None, extra: dict[str, bytes] | None = None):
    """Copy the archive at ``saved`` to ``dest``, editing meta.json and adding members."""
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(dest, "w") as out:
        for info in src.infolist():
            payload = src.read(info.filename)
            if info.filename == "meta.json" and edit_meta is not None:
                meta = json.loads(payload)
                edit_meta(meta)
                payload = json.dumps(meta).encode()
            if extra and info.filename in extra:
                payload = extra.pop(info.filename)
            out.writestr(info.filename, payload)
        for name, payload in (extra or {}).items():
            out.writestr(name, payload)
    return dest


def test_rewritten_archive_still_loads(tmp_path, saved):
    # the helper itself keeps a valid file valid
    copy = _rewrite(saved, tmp_path / "copy.npz")
    np.testing.assert_array_equal(emkit.load(copy).means_, emkit.load(saved).means_)


def test_loading_a_future_format_version(tmp_path, saved):
    bad = _rewrite(saved, tmp_path / "future.npz", lambda m: m.update(format_version=99))
    with pytest.raises(ValueError, match=r"format version 99.*upgrade emkit"):
        emkit.load(bad)


@pytest.mark.parametrize("version", ["1", None, 1.5])
def test_loading_a_bad_format_version(tmp_path, saved, version):
    bad = _rewrite(saved, tmp_path / "bad.npz", lambda m: m.update(format_version=version))
    with pytest.raises(ValueError, match="format version"):
        emkit.load(bad)


def test_loading_a_wrong_format_name(tmp_path, saved):
    bad = _rewrite(saved, tmp_path / "bad.npz", lambda m: m.update(format="other-model"))
    with pytest.raises(ValueError, match="not an emkit model"):
        emkit.load(bad)


@pytest.mark.parametrize("name", ["NoSuchMixture", "EMEstimator", "MixtureMixin", "Path", None])
def test_loading_an_unknown_class(tmp_path, saved, name):
    bad = _rewrite(saved, tmp_path / "class.npz", lambda m: m.update({"class": name}))
    with pytest.raises(ValueError, match="unknown estimator class"):
        emkit.load(bad)


def test_loading_a_class_name_that_is_not_a_string(tmp_path, saved):
    bad = _rewrite(
        saved, tmp_path / "class.npz", lambda m: m.update({"class": ["GaussianMixture"]})
    )
    with pytest.raises(ValueError):
        emkit.load(bad)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.pop("params"),
        lambda m: m.pop("attributes"),
        lambda m: m["params"].update(no_such_option=1),
        lambda m: m.update(attributes=[]),
        lambda m: m["attributes"].update(means_="array"),
        lambda m: m["attributes"].pop("means_"),
    ],
    ids=["no-params", "no-attributes", "unknown-param", "attr-list", "attr-str", "attr-missing"],
)
def test_loading_inconsistent_meta(tmp_path, saved, edit):
    bad = _rewrite(saved, tmp_path / "bad.npz", edit)
    with pytest.raises(ValueError, match=r"corrupt|not fitted|missing"):
        emkit.load(bad)


def test_loading_an_array_attribute_stored_as_a_json_value(tmp_path, saved):
    def edit(meta):
        meta["attributes"]["means_"] = {"value": None}

    bad = _rewrite(saved, tmp_path / "bad.npz", edit)
    with pytest.raises(ValueError, match="means_"):
        emkit.load(bad)


def test_loading_with_a_missing_array(tmp_path, saved):
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(bad, "w") as out:
        for info in src.infolist():
            if info.filename != "attr.means_.npy":
                out.writestr(info.filename, src.read(info.filename))
    with pytest.raises(ValueError, match="means_"):
        emkit.load(bad)


def test_meta_json_that_is_not_json(tmp_path, saved):
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(bad, "w") as out:
        for info in src.infolist():
            payload = b"{not json" if info.filename == "meta.json" else src.read(info.filename)
            out.writestr(info.filename, payload)
    with pytest.raises(ValueError, match="corrupt"):
        emkit.load(bad)


def _data_offset(path: Path, member: str) -> int:
    """Byte offset of a member's (compressed) data in the archive."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len


@pytest.mark.parametrize("member", ["meta.json", "attr.means_.npy"])
def test_loading_a_file_with_corrupted_bytes_crc(tmp_path, saved, member):
    # flip bytes in the middle of a stored (uncompressed) member: the CRC check catches it
    stored = _rewrite(saved, tmp_path / "stored.npz")
    data = bytearray(stored.read_bytes())
    with zipfile.ZipFile(stored) as zf:
        assert zf.getinfo(member).compress_type == zipfile.ZIP_STORED
        size = zf.getinfo(member).compress_size
    start = _data_offset(stored, member) + size // 2
    for i in range(start, start + 4):
        data[i] ^= 0x01
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt"):
        emkit.load(bad)


@pytest.mark.parametrize("member", ["meta.json", "attr.means_.npy"])
def test_loading_a_file_with_a_damaged_deflate_stream(tmp_path, saved, member):
    data = bytearray(saved.read_bytes())
    # 0xFF as the first byte of a deflate stream: last block, block type 3 (reserved)
    data[_data_offset(saved, member)] = 0xFF
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt"):
        emkit.load(bad)


class _Payload:
    """Unpickling this object creates the marker file: proof that code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_object_arrays_are_never_unpickled(tmp_path, saved):
    marker = tmp_path / "pwned"
    evil = np.empty(2, dtype=object)
    evil[0] = _Payload(str(marker))
    evil[1] = _Payload(str(marker))
    buf = io.BytesIO()
    np.lib.format.write_array(buf, evil, allow_pickle=True)
    # sanity: this payload does run code when unpickled
    probe = tmp_path / "probe"
    probe_buf = io.BytesIO()
    np.lib.format.write_array(probe_buf, np.array([_Payload(str(probe))], dtype=object))
    probe_buf.seek(0)
    np.lib.format.read_array(probe_buf, allow_pickle=True)
    assert probe.exists()

    for member in ("attr.means_.npy", "attr.weights_.npy"):
        bad = _rewrite(saved, tmp_path / f"evil-{member}.npz", extra={member: buf.getvalue()})
        with pytest.raises(ValueError):
            emkit.load(bad)
        assert not marker.exists()


def test_object_array_in_an_init_dict_is_not_unpickled(tmp_path):
    X = _data()
    gm = GaussianMixture(2, init={"weights": np.array([0.5, 0.5])}, random_state=0).fit(X)
    good = tmp_path / "good.npz"
    gm.save(good)
    with zipfile.ZipFile(good) as zf:
        assert "param.init.weights.npy" in zf.namelist()
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    np.lib.format.write_array(
        buf, np.array([_Payload(str(marker))], dtype=object), allow_pickle=True
    )
    bad = _rewrite(good, tmp_path / "evil.npz", extra={"param.init.weights.npy": buf.getvalue()})
    with pytest.raises(ValueError):
        emkit.load(bad)
    assert not marker.exists()


def test_load_of_an_unfitted_model_claims(tmp_path, saved):
    def drop_all(meta):
        meta["attributes"] = {}

    bad = _rewrite(saved, tmp_path / "empty.npz", drop_all)
    with pytest.raises(ValueError, match="fitted attributes are missing"):
        emkit.load(bad)


# ----------------------------------------------------------------------------- the format

LEGACY = Path(__file__).parent / "data" / "legacy_0_1_0"


@pytest.mark.parametrize("name", sorted(p.stem for p in LEGACY.glob("*.npz") if p.stem != "inputs"))
def test_saving_a_legacy_model_again_writes_the_same_file(tmp_path, name):
    """The format has not changed: a model loaded from a file of emkit 0.1.0 and saved
    again gives the same members in the same order, the same metadata (but for the
    emkit version) and byte-identical arrays."""
    legacy = LEGACY / f"{name}.npz"
    again = tmp_path / "again.npz"
    emkit.load(legacy).save(again)
    with zipfile.ZipFile(legacy) as old, zipfile.ZipFile(again) as new:
        assert new.namelist() == old.namelist()
        old_meta, new_meta = (json.loads(z.read("meta.json")) for z in (old, new))
        for meta in (old_meta, new_meta):
            meta.pop("emkit_version")
        # hyper-parameters added since are saved at their defaults; the rest is the same
        added = set(new_meta["params"]) - set(old_meta["params"])
        defaults = type(emkit.load(legacy))().get_params()
        assert all(new_meta["params"].pop(k) == defaults[k] for k in added)
        assert new_meta == old_meta
        for member in old.namelist():
            if member != "meta.json":
                assert new.read(member) == old.read(member), member


def test_a_save_removes_the_temporaries_of_killed_saves(tmp_path):
    import subprocess
    import sys

    import emkit

    gm = emkit.GaussianMixture(1, random_state=0).fit(np.random.default_rng(0).normal(size=(20, 2)))
    target = tmp_path / "model.npz"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f".model.npz.{int(dead.stdout)}.abc123.tmp"
    stale.write_bytes(b"x" * 1000)  # what a save killed by SIGKILL leaves
    live = tmp_path / f".model.npz.{os.getpid()}.def456.tmp"
    live.write_bytes(b"y")  # another save of this process, still running
    other = tmp_path / ".other.npz.1.abc.tmp"
    other.write_bytes(b"z")  # another target's
    gm.save(target)
    assert not stale.exists() and live.exists() and other.exists()
    assert emkit.load(target).means_.shape == (1, 2)
