"""Fit small models with emkit 0.1.0 (commit bd7d0b8) and save them, with the
predictions they make, for the persistence compatibility test.

Run by hand (``python make_files.py``) with that version installed; never again with a
later one, whose files are not the point of the test."""

import json
import warnings

import numpy as np

import emkit
from emkit.distributions import Categorical, Gaussian, Independent, Poisson


def main():
    warnings.simplefilter("ignore")
    out = __import__("os").path.dirname(__file__)
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-2, 1, (60, 3)), rng.normal(3, 0.5, (40, 3))])
    Xq = X[::7]
    expected = {}

    def record(name, est, calls):
        est.save(f"{out}/{name}.npz")
        expected[name] = {k: np.asarray(f()).tolist() for k, f in calls.items()}

    for ct in ("full", "diag", "tied", "spherical"):
        gm = emkit.GaussianMixture(2, covariance_type=ct, random_state=0).fit(X)
        record(
            f"gmm_{ct}",
            gm,
            {
                "score_samples": lambda gm=gm: gm.score_samples(Xq),
                "predict_proba": lambda gm=gm: gm.predict_proba(Xq),
            },
        )
    for ct in ("full", "diag"):
        tm = emkit.StudentTMixture(2, covariance_type=ct, random_state=0).fit(X)
        record(f"tmm_{ct}", tm, {"score_samples": lambda tm=tm: tm.score_samples(Xq)})
    table = np.column_stack([X[:, :2], rng.integers(0, 3, len(X)), rng.poisson(3, len(X))]).astype(
        float
    )
    mix = emkit.Mixture(
        Independent({(0, 1): Gaussian("diag"), 2: Categorical(3), 3: Poisson()}), 2, random_state=0
    ).fit(table)
    record("mixture_independent", mix, {"score_samples": lambda: mix.score_samples(table[::7])})
    hmm = emkit.HMM(2, emission="gaussian", covariance_type="diag", random_state=0).fit(
        X, lengths=[50, 50]
    )
    record(
        "hmm_gaussian",
        hmm,
        {"score": lambda: hmm.score(X, [50, 50]), "decode": lambda: hmm.decode(X, [50, 50])[1]},
    )
    S = rng.integers(0, 4, (120, 1))
    hc = emkit.HMM(2, emission="categorical", random_state=0).fit(S)
    record("hmm_categorical", hc, {"score": lambda: hc.score(S)})
    Xm = X.copy()
    Xm[::5, 1] = np.nan
    imp = emkit.GaussianImputer(random_state=0).fit(Xm)
    record("imputer", imp, {"transform": lambda: imp.transform(Xm[:10])})
    fa = emkit.FactorAnalysis(1, random_state=0).fit(X)
    record("factor_analysis", fa, {"score_samples": lambda: fa.score_samples(Xq)})
    np.savez(f"{out}/inputs.npz", X=X, Xq=Xq, table=table, S=S, Xm=Xm)
    json.dump(expected, open(f"{out}/expected.json", "w"))
    print(sorted(expected))


if __name__ == "__main__":  # run by hand with emkit 0.1.0 only: never on import
    main()
