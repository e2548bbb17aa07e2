"""``emkit fit`` and ``emkit demo`` at scale: the subsample of the restarts, warm starts
from K - 1 components, starts that collapse, ``--jobs``, and the status lines on stderr.

Reference values come from scikit-learn's ``GaussianMixture`` (many restarts, a tight
tolerance: a brute-force search for the optimum), from the closed-form maximum of one
Gaussian, and from SciPy's densities at the fitted parameters.
"""

from __future__ import annotations

import io
import re
import time
import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import emkit
from emkit import cli
from emkit.cli import candidates as cli_candidates
from emkit.cli.candidates import StatusLine
from emkit.datasets import load_faithful
from emkit.selection import Candidate, collapsed_component, select, split_starts

sklearn_mixture = pytest.importorskip("sklearn.mixture")

MEANS = np.array([[-6.0, 0.0], [0.0, 6.0], [6.0, 0.0]])
COV = np.array([[1.0, 0.3], [0.3, 0.6]])


def blobs(n: int, seed: int = 0) -> np.ndarray:
    """Rows of three well separated 2-D Gaussians (weights 0.3, 0.3, 0.4)."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=[0.3, 0.3, 0.4])
    return MEANS[labels] + rng.multivariate_normal(np.zeros(2), COV, size=n)


def sklearn_loglik(X, K, cov_type="full", n_init=10, seed=0) -> float:
    """The best log-likelihood scikit-learn finds: ``n_init`` restarts to a tolerance of
    1e-5, the best of them then run on to 1e-10 (its ``warm_start``). Restarts from
    random rows as means (cheap); for "tied", from k-means (whose restarts from random
    rows stop at the saddle of equal components on Old Faithful)."""
    gm = sklearn_mixture.GaussianMixture(
        K,
        covariance_type=cov_type,
        n_init=n_init,
        init_params="kmeans" if cov_type == "tied" else "random_from_data",
        tol=1e-5,
        max_iter=5000,
        random_state=seed,
    ).fit(X)
    gm.set_params(warm_start=True, n_init=1, tol=1e-10, max_iter=100_000).fit(X)
    return float(gm.score(X) * len(X))


def mixture_loglik(model, X) -> float:
    """The log-likelihood of ``model``'s parameters on ``X``, by SciPy's densities."""
    K, D = model.means_.shape
    covs = emkit.distributions.covariance.get_structure(model.covariance_type).to_full(
        np.asarray(model.covariances_, dtype=float), K, D
    )
    dens = sum(
        w * multivariate_normal(m, c).pdf(X)
        for w, m, c in zip(model.weights_, model.means_, covs, strict=True)
    )
    return float(np.log(dens).sum())


def write_csv(path, X) -> str:
    np.savetxt(path, X, delimiter=",", header="x,y", comments="")
    return str(path)


def table(out: str) -> dict[tuple[int, str], list[str]]:
    """The printed candidate rows: (K, covariance) -> [log-lik, BIC, AIC, ICL, ...]."""
    rows = {}
    for line in out.splitlines():
        cells = line.replace("*", " ").split()
        if len(cells) == 8 and cells[0].isdigit():
            rows[int(cells[0]), cells[1]] = cells[2:]
    return rows


def chosen(out: str) -> tuple[int, str, float]:
    match = re.search(r"chosen model: K=(\d+), covariance '(\w+)', BIC ([-\d.]+)", out)
    assert match, out
    return int(match.group(1)), match.group(2), float(match.group(3))


# ---------------------------------------------------------------------- demo
@pytest.fixture(scope="module")
def demo_output():
    import contextlib

    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = cli.main(["demo", "-q"])
    assert code == 0
    return out.getvalue(), time.perf_counter() - start


@pytest.mark.slow
def test_demo_chooses_the_brute_force_optimum(demo_output):
    out, _ = demo_output
    rows = table(out)
    assert len(rows) == 24
    K, cov, bic = chosen(out)
    assert (K, cov) == (3, "tied")
    # Scrucca et al. (2016) publish EEE,3 (= tied) at BIC 2314.316 (mclust stops earlier)
    assert bic == pytest.approx(2314.316, abs=0.03)
    X, _ = load_faithful()
    reference = sklearn_loglik(X, 3, "tied", n_init=10)
    ours = float(rows[3, "tied"][0])
    assert ours == pytest.approx(reference, abs=0.005)  # printed to 2 decimals
    # the fitted model itself, to 1e-6 relative
    sel = select(X, 3, "tied", init="hc", warm_start=False, tol=1e-8, accel="squarem")
    assert sel.candidates[0].loglik == pytest.approx(reference, rel=1e-6)


@pytest.mark.slow
def test_demo_rows_where_the_optimum_is_robust_match_brute_force(demo_output):
    """Candidates whose best optimum most restarts reach (K <= 2, spherical K = 3, diag
    K = 4; tied K = 3 is the test above): the printed log-likelihood and BIC are
    scikit-learn's best of 20 restarts, and K = 1 is the closed-form maximum."""
    out, _ = demo_output
    rows = table(out)
    X, _ = load_faithful()
    n = len(X)
    robust = [(K, c) for K in (1, 2) for c in ("full", "diag", "tied", "spherical")]
    robust += [(3, "spherical"), (4, "diag")]
    for K, cov in robust:
        reference = sklearn_loglik(X, K, cov, n_init=20)
        loglik, bic = float(rows[K, cov][0]), float(rows[K, cov][1])
        assert loglik == pytest.approx(reference, abs=0.006), (K, cov)
        n_par = (K - 1) + 2 * K + {"full": 3 * K, "diag": 2 * K, "tied": 3, "spherical": K}[cov]
        assert bic == pytest.approx(-2 * reference + n_par * np.log(n), abs=0.02)
    # one Gaussian: the maximum is the sample mean and covariance (divisor n)
    closed = multivariate_normal(X.mean(0), np.cov(X.T, bias=True)).logpdf(X).sum()
    assert float(rows[1, "full"][0]) == pytest.approx(closed, abs=0.006)
    assert round(float(rows[1, "full"][1]) - (-2 * closed + 5 * np.log(n)), 1) == 0


# ---------------------------------------------------------------------- fit defaults
@pytest.mark.parametrize("subsample", [None, "200"])
def test_fit_defaults_agree_with_sklearn_on_small_data(subsample, tmp_path, capsys):
    X = blobs(600, seed=1)
    path = write_csv(tmp_path / "d.csv", X)
    model_path = tmp_path / "m.npz"
    argv = ["fit", path, "-k", "1-4", "-q", "--out", str(model_path)]
    assert cli.main(argv + (["--subsample", subsample] if subsample else [])) == 0
    out = capsys.readouterr().out
    assert chosen(out)[:2] == (3, "full")
    rows = table(out)
    for k in (1, 2, 3):
        assert float(rows[k, "full"][0]) == pytest.approx(sklearn_loglik(X, k), abs=0.006)
    model = emkit.load(model_path)
    assert model.loglik_ == pytest.approx(sklearn_loglik(X, 3), rel=1e-6)
    assert model.loglik_ == pytest.approx(mixture_loglik(model, X), rel=1e-9)  # on all rows


def test_jobs_give_the_same_table(tmp_path, capsys):
    X = blobs(400, seed=2)
    path = write_csv(tmp_path / "d.csv", X)
    outs = []
    for jobs in ("1", "2"):
        argv = ["fit", path, "-k", "1-4", "--covariance", "full,diag", "--jobs", jobs, "-q"]
        assert cli.main(argv) == 0
        outs.append(capsys.readouterr().out)
    assert table(outs[0]) == table(outs[1])
    assert chosen(outs[0])[:2] == (3, "full")


@pytest.mark.parametrize(
    ("option", "value"), [("--jobs", "0"), ("--subsample", "-1"), ("--subsample", "x")]
)
def test_bad_scale_options_exit_2(option, value, tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", blobs(50))
    assert cli.main(["fit", path, option, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emkit: error:") and option in err and len(err.splitlines()) == 1


def test_help_documents_the_subsample_rule(capsys):
    assert cli.main(["fit", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "min(n, ROWS)" in text and "20000" in text and "--jobs" in text


# ---------------------------------------------------------------------- select
def test_subsample_runs_the_best_start_on_all_rows():
    X = blobs(3000, seed=3)
    sel = select(
        X, [2, 3], "full", init="kmeans++", n_init=3, subsample=300, tol=1e-8, random_state=0
    )
    best = sel.candidates[sel.best_index_]
    assert best.n_components == 3
    assert best.loglik == pytest.approx(mixture_loglik(best.model, X), rel=1e-10)
    assert best.loglik == pytest.approx(sklearn_loglik(X, 3, n_init=3), rel=1e-7)
    assert best.converged
    # the BIC counts every row, not the subsample
    assert best.bic == pytest.approx(-2 * best.loglik + 17 * np.log(len(X)))


def test_threads_warm_start_and_subsample_give_the_same_results():
    X = blobs(1500, seed=4)
    opts = dict(init="kmeans++", n_init=2, subsample=400, warm_start=True, random_state=5, tol=1e-7)
    one = select(X, range(1, 5), ["full", "spherical"], **opts)
    two = select(X, range(1, 5), ["full", "spherical"], n_jobs=2, **opts)
    np.testing.assert_array_equal(
        [c.loglik for c in one.candidates], [c.loglik for c in two.candidates]
    )
    assert one.candidates[one.best_index_].loglik == pytest.approx(
        sklearn_loglik(X, 3, "full"), rel=1e-6
    )


@pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")  # max_iter=1
def test_split_starts_halve_a_component_along_its_principal_axis():
    X = blobs(600, seed=5)
    for cov_type in ("full", "diag", "tied", "spherical", "VEV"):
        est = emkit.GaussianMixture(2, covariance_type=cov_type, random_state=0).fit(X)
        starts = split_starts(est)
        assert len(starts) == 2
        full = emkit.distributions.covariance.get_structure(cov_type).to_full(
            np.asarray(est.covariances_), 2, 2
        )
        for j, start in enumerate(starts):
            assert start["weights"].sum() == pytest.approx(1.0)
            assert start["means"].shape == (3, 2)
            a, b = start["means"][-2:]
            np.testing.assert_allclose((a + b) / 2, est.means_[j])
            # (b - a) is an eigenvector of covariance j with the largest eigenvalue
            lam = np.max(np.linalg.eigvals(full[j]).real)
            np.testing.assert_allclose(full[j] @ (b - a), lam * (b - a), atol=1e-9)
            assert np.linalg.norm(b - a) == pytest.approx(np.sqrt(lam))
            # the start is valid for the structure: a fit of 3 components accepts it
            emkit.GaussianMixture(3, covariance_type=cov_type, init=start, max_iter=1).fit(X)


@pytest.mark.slow
def test_warm_start_reaches_the_optimum_that_few_restarts_find():
    """Old Faithful, 4 spherical components: 8 % of k-means++ restarts reach the best
    optimum (-1569.41), mclust's hc start does not (-1579.35); split from K = 3 it does."""
    X, _ = load_faithful()
    reference = sklearn_loglik(X, 4, "spherical", n_init=60)
    hc = select(X, range(1, 5), "spherical", init="hc", tol=1e-8)
    warm = select(X, range(1, 5), "spherical", init="hc", tol=1e-8, warm_start=True)
    assert hc.candidates[3].loglik < reference - 5
    assert warm.candidates[3].loglik == pytest.approx(reference, rel=1e-6)


def test_collapsed_component_is_found():
    rng = np.random.default_rng(6)
    X = np.vstack([rng.normal(size=(200, 2)), np.full((3, 2), 10.0)])
    start = {"weights": [0.9, 0.1], "means": [[0.0, 0.0], [10.0, 10.0]]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = emkit.GaussianMixture(2, init=start, tol=1e-8).fit(X)
    spike = int(np.argmin(np.linalg.norm(est.means_ - 10.0, axis=1)))
    assert np.linalg.eigvalsh(est.covariances_[spike]).min() < 1e-5  # at reg_covar
    assert collapsed_component(est) == spike
    assert collapsed_component(emkit.GaussianMixture(1).fit(X[:200])) is None


@pytest.mark.slow
def test_a_start_that_collapses_loses_to_one_that_does_not():
    """Old Faithful, 5 diagonal components: some restarts put a component on the 14
    rows with waiting = 83 exactly (variance at reg_covar, log-likelihood -1043.04, a
    spurious maximum that BIC would choose). Searching the starts one by one keeps the
    best start without a collapse."""
    X, _ = load_faithful()
    opts = dict(init="kmeans++", n_init=20, tol=1e-8, random_state=3, accel="squarem")
    plain = select(X, 5, "diag", **opts)  # n_init restarts in one fit: highest wins
    searched = select(X, 5, "diag", warm_start=True, **opts)
    assert collapsed_component(plain.best_) is not None
    assert plain.candidates[0].loglik > -1050
    assert any("collapsed onto the reg_covar floor" in n for n in plain.candidates[0].notes)
    assert collapsed_component(searched.best_) is None
    assert searched.candidates[0].loglik < -1080
    waiting = searched.best_.covariances_[:, 1]
    assert waiting.min() > 1.0  # every component spreads over several waiting times


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(subsample=1), ValueError, "subsample"),
        (dict(subsample=2.5), TypeError, "subsample"),
        (dict(subsample=True), TypeError, "subsample"),
        (dict(screen_tol=-1.0), ValueError, "screen_tol"),
        (dict(callback=3), TypeError, "callback"),
    ],
)
def test_select_rejects_bad_scale_options(kwargs, error, match):
    X = blobs(40)
    with pytest.raises(error, match=match):
        select(X, [1, 2], "full", **kwargs)


# ---------------------------------------------------------------------- status lines
def test_status_lines_on_a_stream_that_is_not_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli_candidates, "STATUS_INTERVAL", 0.0)  # a line per candidate
    X = blobs(300, seed=7)
    path = write_csv(tmp_path / "d.csv", X)
    assert cli.main(["fit", path, "-k", "1-3"]) == 0
    err = capsys.readouterr().err.splitlines()
    status = [line for line in err if line.startswith("emkit: fitted")]
    pattern = r"emkit: fitted (\d)/3 candidates \(K=(\d) full: BIC ([\d.]+)\), \d+s elapsed"
    found = [re.fullmatch(pattern, line) for line in status[:-1]]
    assert all(found), status
    assert [int(m.group(1)) for m in found] == [1, 2, 3]
    bics = {int(m.group(2)): float(m.group(3)) for m in found}
    reference = sklearn_mixture.GaussianMixture(1, tol=1e-10).fit(X).bic(X)
    assert bics[1] == pytest.approx(reference, abs=0.06)  # printed to 1 decimal
    assert re.fullmatch(r"emkit: fitted 3/3 candidates in \d+s", status[-1])

    assert cli.main(["fit", path, "-k", "1-3", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_status_line_timer_shows_a_long_candidate_is_alive():
    stream = io.StringIO()
    status = StatusLine(2, stream, interval=0.02)
    time.sleep(0.2)  # no candidate finished yet: the timer still writes
    status.update(Candidate(1, "full", bic=12.34), 1, 2)
    time.sleep(0.2)
    status.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 3
    assert re.fullmatch(r"emkit: fitted 0/2 candidates, 0s elapsed", lines[0])
    assert any("(K=1 full: BIC 12.3)" in line for line in lines)
    assert lines[-1] == "emkit: fitted 1/2 candidates in 0s"
    n = len(lines)
    time.sleep(0.1)  # closed: the timer stopped
    assert len(stream.getvalue().splitlines()) == n


def test_status_line_formats_elapsed_time_and_failures():
    now = [0.0]
    stream = io.StringIO()
    status = StatusLine(8, stream, interval=10.0, clock=lambda: now[0])
    now[0] = 5.0
    status.update(Candidate(2, "diag", bic=1.0), 1, 8)  # under the interval: no line
    assert stream.getvalue() == ""
    now[0] = 133.0
    status.update(Candidate(3, "tied", status="failed: singular"), 2, 8)
    now[0] = 3725.0
    status.update(Candidate(4, "full", aic=7.25, bic=9.0), 3, 8)
    status.close()
    assert stream.getvalue().splitlines() == [
        "emkit: fitted 2/8 candidates (K=3 tied: failed), 2m13s elapsed",
        "emkit: fitted 3/8 candidates (K=4 full: BIC 9.0), 1h02m elapsed",
        "emkit: fitted 3/8 candidates in 1h02m",
    ]
    with pytest.raises(ValueError, match="interval"):
        StatusLine(1, stream, interval=-1.0)
