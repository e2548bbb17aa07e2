"""Every compiled kernel of emkit is cached on disk.

A first fit in a fresh process compiles emkit's Numba kernels and saves them under
``NUMBA_CACHE_DIR``; a second fresh process sharing that directory must load every
one of them instead of compiling it again. A kernel Numba cannot save (a function
passed as an argument, a large global array, a ctypes pointer) is compiled in every
process, seconds to tens of seconds, and Numba tells the user so with a
``NumbaWarning`` ("Cannot cache compiled function ..."). The compilations are counted
with Numba's own ``"numba:compile"`` events, which fire only when a dispatcher
compiles (not when it loads a cached overload).

Run this file as a script to print the first-fit times of both processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Fits and predicts every estimator (and emission, covariance type, component family)
#: once on small data; prints a JSON report: the emkit dispatchers Numba compiled, the
#: Numba warnings, and the seconds each step took.
CHILD = r"""
import json, time, warnings
from collections import Counter

from numba.core import event
from numba.core.errors import NumbaWarning

compiled = Counter()


class _Compiles(event.Listener):
    def on_start(self, ev):
        func = ev.data["dispatcher"].py_func
        if func.__module__.startswith("emkit"):
            compiled[f"{func.__module__}.{func.__qualname__}"] += 1

    def on_end(self, ev):
        pass


event.register("numba:compile", _Compiles())

import numpy as np

import emkit
from emkit.distributions import Categorical, Exponential, Gaussian, Poisson

rng = np.random.default_rng(0)
X = np.concatenate([rng.normal(-2, 1, (150, 2)), rng.normal(2, 1, (150, 2))])
counts = np.concatenate([rng.poisson(2.0, (150, 2)), rng.poisson(9.0, (150, 2))])
symbols = rng.integers(0, 4, (300, 1))
lengths = [100, 120, 80]
x_reg = rng.uniform(-2, 2, (200, 1))
y_reg = np.where(x_reg[:, 0] < 0, -x_reg[:, 0], 2 * x_reg[:, 0]) + rng.normal(0, 0.1, 200)
X_missing = X.copy()
X_missing[rng.random(len(X)) < 0.2, 1] = np.nan
docs = np.array([rng.multinomial(30, [0.4, 0.4, 0.1, 0.1] if d % 2 else [0.1, 0.1, 0.4, 0.4])
                 for d in range(40)])
series = 10 + np.cumsum(rng.normal(0, 1.0, 120)) + rng.normal(0, 1.0, 120)


def hmm(data, **kwargs):
    model = emkit.HMM(2, random_state=0, max_iter=5, **kwargs).fit(data, lengths)
    model.predict(data, lengths)
    model.decode(data, lengths)
    model.predict_proba(data, lengths)
    model.score(data, lengths)


steps = {
    **{
        f"GaussianMixture {ct}": lambda ct=ct: emkit.GaussianMixture(
            2, covariance_type=ct, random_state=0, max_iter=5
        ).fit(X).predict_proba(X)
        for ct in ("full", "tied", "diag", "spherical")
    },
    "GaussianMixture missing": lambda: emkit.GaussianMixture(2, random_state=0, max_iter=5)
    .fit(X_missing).predict(X_missing),
    "StudentTMixture": lambda: emkit.StudentTMixture(2, random_state=0, max_iter=5).fit(X).predict(X),
    "Mixture Poisson": lambda: emkit.Mixture(Poisson(), n_components=2, random_state=0, max_iter=5)
    .fit(counts).predict(counts),
    "Mixture Categorical": lambda: emkit.Mixture(Categorical(4), n_components=2, random_state=0,
                                                 max_iter=5).fit(symbols).predict(symbols),
    "Mixture Exponential": lambda: emkit.Mixture(Exponential(), n_components=2, random_state=0,
                                                 max_iter=5).fit(np.abs(X)).predict(np.abs(X)),
    "Mixture Gaussian": lambda: emkit.Mixture(Gaussian(), n_components=2, random_state=0,
                                              max_iter=5).fit(X_missing).predict(X_missing),
    "HMM gaussian": lambda: hmm(X),
    "HMM gaussian full": lambda: hmm(X, covariance_type="full"),
    "HMM gaussian missing": lambda: hmm(X_missing),
    "HMM categorical": lambda: hmm(symbols, emission="categorical"),
    "HMM poisson": lambda: hmm(counts, emission="poisson"),
    "HMM gmm": lambda: hmm(X, emission="gmm", n_mix=2),
    "LDA": lambda: emkit.LDA(2, random_state=0, max_iter=5).fit(docs).transform(docs),
    "VariationalGaussianMixture": lambda: emkit.VariationalGaussianMixture(
        3, random_state=0, max_iter=5).fit(X).predict(X),
    "LinearGaussianSSM": lambda: emkit.LinearGaussianSSM(max_iter=5).fit(series).smooth(series),
    "FactorAnalysis": lambda: emkit.FactorAnalysis(1, max_iter=5).fit(X_missing).transform(X_missing),
    "GaussianImputer": lambda: emkit.GaussianImputer(max_iter=5).fit(X_missing).transform(X_missing),
    "MixtureOfRegressions": lambda: emkit.MixtureOfRegressions(2, n_init=1, random_state=0,
                                                               max_iter=5).fit(x_reg, y_reg),
    "MixtureOfExperts": lambda: emkit.MixtureOfExperts(2, n_init=1, random_state=0, max_iter=5)
    .fit(x_reg, y_reg).predict(x_reg),
}

seconds = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for name, step in steps.items():
        t = time.perf_counter()
        step()
        seconds[name] = time.perf_counter() - t
numba_warnings = [str(w.message) for w in caught if issubclass(w.category, NumbaWarning)]
print(json.dumps({"compiled": compiled, "warnings": numba_warnings, "seconds": seconds}))
"""


def run_child(cache_dir: Path, src: Path = SRC) -> dict:
    """Run :data:`CHILD` in a fresh interpreter importing emkit from ``src``, with
    Numba's cache in ``cache_dir``; return its report."""
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(cache_dir),
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Reports of two fresh processes sharing one Numba cache, empty at the start."""
    cache = tmp_path_factory.mktemp("numba_cache")
    return run_child(cache), run_child(cache)


@pytest.mark.slow
def test_the_first_process_caches_without_warnings(two_processes):
    first, _ = two_processes
    assert first["warnings"] == []
    # the cache started empty, so the first process compiled (the count is not vacuous)
    assert sum(first["compiled"].values()) > 0


@pytest.mark.slow
def test_a_second_process_compiles_no_emkit_kernel(two_processes):
    _, second = two_processes
    assert second["compiled"] == {}, "compiled again: " + ", ".join(sorted(second["compiled"]))
    assert second["warnings"] == []


if __name__ == "__main__":
    import tempfile

    src = Path(sys.argv[1]) if len(sys.argv) > 1 else SRC
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold cache", "warm cache"):
            report = run_child(Path(cache), src)
            print(f"{label}: {sum(report['seconds'].values()):.1f} s in all")
            for name, sec in report["seconds"].items():
                print(f"  {name:28s} {sec:7.2f} s")
            print(f"  compiled: {dict(report['compiled'])}")
            print(f"  Numba warnings: {len(report['warnings'])}")
            for message in sorted(set(report["warnings"])):
                print(f"    {message[:160]}")
