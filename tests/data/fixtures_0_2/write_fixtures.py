"""Fit small models with the current release and save them, with the predictions they
make, for the persistence compatibility test (tests/test_release_fixtures.py).

Run by hand (``python write_fixtures.py``) when a release adds estimators; the files are
then committed and never rewritten, so a later change to the file format or to an
estimator's state that breaks them is caught."""

import json
import os
import warnings

import numpy as np

import emkit


def main():
    warnings.simplefilter("ignore")
    out = os.path.dirname(os.path.abspath(__file__))
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(-2, 1, (60, 2)), rng.normal(3, 0.5, (40, 2))])
    y = np.where(X[:, 0] > 0, 2.0 * X[:, 1] + 1, -X[:, 1]) + rng.normal(0, 0.3, len(X))
    labels = (X[:, 0] * X[:, 1] > 0).astype(int)
    counts = rng.poisson(2.0, size=(40, 12))
    expected = {}

    def record(name, est, calls):
        est.save(f"{out}/{name}.npz")
        expected[name] = {k: np.asarray(f(), dtype=float).tolist() for k, f in calls.items()}

    ssm = emkit.LinearGaussianSSM(state_dim=1, random_state=0, max_iter=20).fit(X)
    record("ssm", ssm, {"score": lambda: [ssm.score(X)], "smooth": lambda: ssm.smooth(X)[0]})
    lda = emkit.LDA(3, random_state=0, max_iter=5).fit(counts)
    record("lda", lda, {"transform": lambda: lda.transform(counts[:5])})
    mr = emkit.MixtureOfRegressions(2, random_state=0, n_init=1).fit(X, y)
    record("regressions", mr, {"predict": lambda: mr.predict(X[:10])})
    moe = emkit.MixtureOfExperts(2, random_state=0, n_init=1).fit(X, y)
    record("experts", moe, {"predict": lambda: moe.predict(X[:10])})
    clf = emkit.MixtureOfExperts(2, expert="logistic", random_state=0, n_init=1).fit(X, labels)
    record("experts_logistic", clf, {"predict_proba": lambda: clf.predict_proba(X[:10])})
    gm = emkit.GaussianMixture(2, random_state=0, fixed={"weights": [0.5, 0.5]}).fit(X)
    record("gmm_fixed", gm, {"predict_proba": lambda: gm.predict_proba(X[:10])})
    ev = emkit.GaussianMixture(2, covariance_type="VEV", random_state=0).fit(X)
    record("gmm_vev", ev, {"predict_proba": lambda: ev.predict_proba(X[:10])})
    vb = emkit.VariationalGaussianMixture(3, random_state=0).fit(X)
    record("vbgmm", vb, {"predict_proba": lambda: vb.predict_proba(X[:10])})
    from emkit.compat.hmmlearn import GaussianHMM
    from emkit.compat.sklearn import GaussianMixture as SkGM

    sk = SkGM(2, random_state=0).fit(X)
    record("compat_sklearn", sk, {"score_samples": lambda: sk.score_samples(X[:10])})
    hl = GaussianHMM(2, random_state=0, n_iter=5).fit(X)
    record("compat_hmmlearn", hl, {"score": lambda: [hl.score(X)]})
    np.savez(f"{out}/inputs.npz", X=X, y=y, labels=labels, counts=counts)
    with open(f"{out}/expected.json", "w") as fh:
        json.dump(expected, fh)
    print(sorted(expected))


if __name__ == "__main__":  # run by hand only: never on import
    main()
