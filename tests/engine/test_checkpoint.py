"""Checkpoint and resume: an interrupted fit, run again, ends where an uninterrupted one does.

The reference is always the same fit run without interruption (and without a
checkpoint); each test also checks that the second run really resumed (it started
past iteration 0), so an implementation that silently starts again would fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import emkit
from emkit.models.mixture.gaussian_model import GaussianMixtureModel

SRC = Path(emkit.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(5)
    # overlapping clusters: EM moves slowly, so every step changes the parameters
    return np.vstack([rng.normal([0, 0], 1.0, (300, 2)), rng.normal([1.5, 0.5], 1.0, (300, 2))])


class Interrupt(Exception):
    pass


def interrupt_at(iteration: int, restart: int = 0):
    def callback(info):
        seen.append((info.restart, info.iteration))
        if info.restart == restart and info.iteration == iteration:
            raise Interrupt

    seen: list = []
    callback.seen = seen
    return callback


def watch():
    def callback(info):
        seen.append((info.restart, info.iteration))

    seen: list = []
    callback.seen = seen
    return callback


def assert_same_result(resumed, reference):
    assert resumed.n_iter == reference.n_iter
    assert resumed.best_restart == reference.best_restart
    np.testing.assert_allclose(resumed.history, reference.history, rtol=1e-12, atol=0)
    np.testing.assert_allclose(resumed.loglik, reference.loglik, rtol=1e-12)
    for a, b in zip(_leaves(resumed.params), _leaves(reference.params)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def _leaves(tree):
    from emkit._pytree import tree_leaves

    return [x for x in tree_leaves(tree) if x is not None]


CASES = {
    "plain": dict(),
    "squarem": dict(accel="squarem"),
    "online": dict(variant="online", batch_size=100),
    "hard": dict(variant="hard"),
    "restarts": dict(n_init=3, init_restart=1),
}


@pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")
@pytest.mark.parametrize("case", list(CASES))
def test_an_interrupted_fit_resumes_to_the_uninterrupted_result(X, tmp_path, case):
    options = dict(CASES[case])
    restart = options.pop("init_restart", 0)
    options = dict(tol=0.0, max_iter=12, random_state=3, **options)
    model = GaussianMixtureModel(3)
    data = (X, None)
    reference = emkit.em(model, data, **options)
    path = tmp_path / "fit.ckpt"
    with pytest.raises(Interrupt):
        emkit.em(model, data, checkpoint=path, callback=interrupt_at(5, restart), **options)
    callback = watch()
    resumed = emkit.em(model, data, checkpoint=path, callback=callback, **options)
    assert callback.seen[0] == (restart, 5)  # it went on from the checkpoint
    assert_same_result(resumed, reference)
    assert os.listdir(tmp_path) == ["fit.ckpt"]  # no temporary file left behind
    # run again: the finished fit is read back, nothing is iterated
    callback = watch()
    again = emkit.em(model, data, checkpoint=path, callback=callback, **options)
    assert callback.seen == []
    assert_same_result(again, reference)


def test_checkpoint_every_k_steps_resumes_from_the_last_write(X, tmp_path):
    model, data = GaussianMixtureModel(3), (X, None)
    options = dict(tol=0.0, max_iter=10, random_state=0, checkpoint_every=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        reference = emkit.em(
            model, data, **{k: v for k, v in options.items() if k != "checkpoint_every"}
        )
    with pytest.raises(Interrupt):
        emkit.em(model, data, checkpoint=tmp_path / "c", callback=interrupt_at(7), **options)
    callback = watch()
    resumed = emkit.em(model, data, checkpoint=tmp_path / "c", callback=callback, **options)
    assert callback.seen[0] == (0, 4)
    assert_same_result(resumed, reference)


CHILD = """
import json, sys, time
import numpy as np
import emkit
from emkit.models.mixture.gaussian_model import GaussianMixtureModel
X = np.load(sys.argv[1])
emkit.em(GaussianMixtureModel(3), (X, None), checkpoint=sys.argv[2],
         callback=lambda info: time.sleep(float(sys.argv[4])), **json.loads(sys.argv[3]))
"""


def _saved_iteration(path: Path) -> int:
    try:
        with zipfile.ZipFile(path) as zf:
            current = json.loads(zf.read("meta.json"))["current"]
    except (OSError, KeyError, zipfile.BadZipFile, ValueError):
        return -1
    return -1 if current is None else current["n_iter"]


def killed_fit(X, tmp_path: Path, options: dict, after: int, pause: float = 0.15) -> Path:
    """``emkit.em(GaussianMixtureModel(3), (X, None), **options)`` with a checkpoint, in
    a subprocess (pausing ``pause`` seconds at each step) killed with SIGKILL once the
    checkpoint holds ``after`` steps; returns the checkpoint's path."""
    np.save(tmp_path / "x.npy", X)
    path = tmp_path / "fit.ckpt"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    argv = [str(tmp_path / "x.npy"), str(path), json.dumps(options), str(pause)]
    child = subprocess.Popen([sys.executable, "-c", CHILD, *argv], env=env)
    try:
        deadline = time.monotonic() + 120
        while _saved_iteration(path) < after:
            assert child.poll() is None, "the child ended before it was killed"
            assert time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    return path


@pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")
def test_a_fit_killed_with_sigkill_resumes_to_the_uninterrupted_result(X, tmp_path):
    options = dict(tol=0.0, max_iter=25, random_state=1)
    path = killed_fit(X, tmp_path, options, after=4)
    killed_at = _saved_iteration(path)
    assert 4 <= killed_at < 25
    model = GaussianMixtureModel(3)
    reference = emkit.em(model, (X, None), **options)
    callback = watch()
    resumed = emkit.em(model, (X, None), checkpoint=path, callback=callback, **options)
    assert callback.seen[0] == (0, killed_at)
    assert_same_result(resumed, reference)
    assert sorted(os.listdir(tmp_path)) == ["fit.ckpt", "x.npy"]


def test_a_checkpoint_of_another_fit_is_refused(X, tmp_path):
    path = tmp_path / "fit.ckpt"
    model, data = GaussianMixtureModel(2), (X, None)
    emkit.em(model, data, tol=1e-3, max_iter=50, random_state=0, checkpoint=path)
    with pytest.raises(ValueError, match=r"another fit.*options.tol"):
        emkit.em(model, data, tol=1e-4, max_iter=50, random_state=0, checkpoint=path)
    with pytest.raises(ValueError, match=r"another fit.*n_components"):
        emkit.em(
            GaussianMixtureModel(3), data, tol=1e-3, max_iter=50, random_state=0, checkpoint=path
        )
    with pytest.raises(ValueError, match=r"another fit.*shapes"):
        emkit.em(model, (X[:500], None), tol=1e-3, max_iter=50, random_state=0, checkpoint=path)
    with pytest.raises(ValueError, match=r"another fit.*random_state"):
        emkit.em(model, data, tol=1e-3, max_iter=50, random_state=1, checkpoint=path)
    (tmp_path / "junk").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an emkit checkpoint"):
        emkit.em(model, data, checkpoint=tmp_path / "junk")
    with pytest.raises(ValueError, match="checkpoint_every"):
        emkit.em(model, data, checkpoint=tmp_path / "new", checkpoint_every=0)
    with pytest.raises(FileNotFoundError):
        emkit.em(model, data, checkpoint=tmp_path / "no" / "such" / "file")


@pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")
def test_estimators_take_checkpoint(X, tmp_path):
    kw = dict(n_components=3, tol=0.0, max_iter=8, random_state=0)
    reference = emkit.GaussianMixture(**kw).fit(X)
    path = tmp_path / "gm.ckpt"
    first = emkit.GaussianMixture(**kw, checkpoint=path, checkpoint_every=3).fit(X)
    again = emkit.GaussianMixture(**kw, checkpoint=path, checkpoint_every=3).fit(X)
    for fit in (first, again):
        np.testing.assert_allclose(fit.means_, reference.means_, rtol=1e-12)
        np.testing.assert_allclose(fit.history_, reference.history_, rtol=1e-12)
    with pytest.raises(ValueError, match="another fit"):
        emkit.GaussianMixture(**{**kw, "covariance_type": "diag"}, checkpoint=path).fit(X)
    with pytest.raises(ValueError, match="another fit"):
        emkit.GaussianMixture(**kw, checkpoint=path).fit(X[:, :1])
    imputer = emkit.GaussianImputer(checkpoint=tmp_path / "imp.ckpt").fit(X)
    np.testing.assert_allclose(imputer.mean_, X.mean(axis=0), rtol=1e-12)
