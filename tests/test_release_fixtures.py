"""Model files written by the estimators added after 0.1.0 still load and predict the
same (files written once by ``tests/data/fixtures_0_2/write_fixtures.py``)."""

import json
from pathlib import Path

import numpy as np
import pytest

import emkit

HERE = Path(__file__).parent / "data" / "fixtures_0_2"
EXPECTED = json.loads((HERE / "expected.json").read_text()) if HERE.exists() else {}
INPUTS = dict(np.load(HERE / "inputs.npz")) if HERE.exists() else {}

CALLS = {
    "score": lambda m: [m.score(INPUTS["X"])],
    "smooth": lambda m: m.smooth(INPUTS["X"])[0],
    "transform": lambda m: m.transform(INPUTS["counts"][:5]),
    "predict": lambda m: m.predict(INPUTS["X"][:10]),
    "predict_proba": lambda m: m.predict_proba(INPUTS["X"][:10]),
    "score_samples": lambda m: m.score_samples(INPUTS["X"][:10]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_file_loads_and_predicts_the_same(name):
    model = emkit.load(HERE / f"{name}.npz")
    for call, values in EXPECTED[name].items():
        got = np.asarray(CALLS[call](model), dtype=float)
        np.testing.assert_allclose(got, np.asarray(values, dtype=float), rtol=1e-9, atol=1e-12)
