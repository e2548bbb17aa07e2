"""Model files written by emkit 0.1.0 (before the renovation) still load and predict.

``tests/data/legacy_0_1_0/make_files.py`` wrote them with that version, together with
the predictions the fitted estimators made before saving (``expected.json``). Besides
those, the loaded Gaussian mixtures are checked against ``scipy.stats`` densities of
their own parameters, an independent evaluation of the same model.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import emkit

HERE = Path(__file__).parent / "data" / "legacy_0_1_0"
EXPECTED = json.loads((HERE / "expected.json").read_text())
INPUTS = dict(np.load(HERE / "inputs.npz"))

CALLS = {
    "score_samples": lambda m, name: m.score_samples(_query(name)),
    "predict_proba": lambda m, name: m.predict_proba(_query(name)),
    "score": lambda m, name: m.score(*_sequence(name)),
    "decode": lambda m, name: m.decode(*_sequence(name))[1],
    "transform": lambda m, name: m.transform(INPUTS["Xm"][:10]),
}


def _query(name):
    return INPUTS["table"][::7] if name.startswith("mixture") else INPUTS["Xq"]


def _sequence(name):
    return (INPUTS["S"],) if name == "hmm_categorical" else (INPUTS["X"], [50, 50])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_legacy_file_loads_and_predicts_the_same(name):
    model = emkit.load(HERE / f"{name}.npz")
    for call, values in EXPECTED[name].items():
        got = np.asarray(CALLS[call](model, name), dtype=float)
        np.testing.assert_allclose(got, np.asarray(values, dtype=float), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("ct", ["full", "diag", "tied", "spherical"])
def test_legacy_gaussian_mixture_matches_scipy(ct):
    gm = emkit.load(HERE / f"gmm_{ct}.npz")
    Xq = INPUTS["Xq"]
    K, D = gm.means_.shape
    cov = {
        "full": lambda k: gm.covariances_[k],
        "diag": lambda k: np.diag(gm.covariances_[k]),
        "tied": lambda k: gm.covariances_,
        "spherical": lambda k: gm.covariances_[k] * np.eye(D),
    }[ct]
    logp = np.column_stack(
        [
            np.log(gm.weights_[k]) + stats.multivariate_normal(gm.means_[k], cov(k)).logpdf(Xq)
            for k in range(K)
        ]
    )
    np.testing.assert_allclose(gm.score_samples(Xq), logsumexp(logp, axis=1), rtol=1e-10)
