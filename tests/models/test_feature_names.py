"""Column names of pandas DataFrames, as scikit-learn handles them: recorded by fit,
checked by every method that takes X, saved with the model, used for output names."""

import warnings

import numpy as np
import pytest

import emkit

pd = pytest.importorskip("pandas")


def _frame():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3)) + np.where(rng.random((120, 1)) < 0.5, 3.0, -3.0)
    return pd.DataFrame(X, columns=["height", "weight", "age"])


MAKERS = {
    "gmm": lambda: emkit.GaussianMixture(2, random_state=0),
    "student-t": lambda: emkit.StudentTMixture(2, random_state=0),
    "hmm": lambda: emkit.HMM(2, random_state=0),
    "imputer": lambda: emkit.GaussianImputer(),
    "fa": lambda: emkit.FactorAnalysis(1, random_state=0),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_names_are_recorded_checked_and_saved(name, tmp_path):
    df = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MAKERS[name]().fit(df)
    np.testing.assert_array_equal(est.feature_names_in_, ["height", "weight", "age"])
    # the same columns give the same answers as the plain array
    assert est.score(df) == pytest.approx(est.score(df.to_numpy()), rel=1e-12)
    with pytest.raises(ValueError, match="another order"):
        est.score(df[["weight", "height", "age"]])
    with pytest.raises(ValueError, match=r"X has columns \['h', 'weight', 'age'\]"):
        est.score(df.rename(columns={"height": "h"}))
    est.save(tmp_path / "m.npz")
    loaded = emkit.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.feature_names_in_, est.feature_names_in_)
    with pytest.raises(ValueError, match="another order"):
        loaded.score(df[["age", "weight", "height"]])
    # a later fit on a plain array forgets the names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(df.to_numpy())
    assert not hasattr(est, "feature_names_in_")


def test_output_names_follow_the_input_names():
    df = _frame()
    imp = emkit.GaussianImputer().fit(df)
    assert list(imp.get_feature_names_out()) == ["height", "weight", "age"]
    fa = emkit.FactorAnalysis(2, random_state=0).fit(df)
    assert list(fa.get_feature_names_out()) == ["factoranalysis0", "factoranalysis1"]
    plain = emkit.GaussianImputer().fit(df.to_numpy())
    assert list(plain.get_feature_names_out()) == ["x0", "x1", "x2"]
