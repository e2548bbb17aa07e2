"""End-to-end tests of the ``emkit`` command, the report and the embedded data sets."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import emkit
from emkit import cli
from emkit.datasets import available, load, load_faithful, load_iris

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRUE_MEANS = np.array([[-6.0, 0.0], [0.0, 6.0], [6.0, 0.0]])
TRUE_WEIGHTS = np.array([0.3, 0.3, 0.4])


def sample_mixture(n: int, seed: int = 0) -> np.ndarray:
    """Rows from a well separated 2-D mixture of three Gaussians."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=TRUE_WEIGHTS)
    cov = np.array([[1.0, 0.3], [0.3, 0.6]])
    return TRUE_MEANS[labels] + rng.multivariate_normal(np.zeros(2), cov, size=n)


def write_csv(path: Path, X: np.ndarray, names=("x", "y"), extra=None) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*names, *(extra or {})])
        for i, row in enumerate(X):
            writer.writerow([*row, *(v[i] for v in (extra or {}).values())])
    return path


def run(argv, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, np.ndarray]:
    X = sample_mixture(300)
    return write_csv(tmp_path_factory.mktemp("data") / "mix.csv", X), X


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory) -> Path:
    """A model chosen and saved by ``emkit fit``."""
    path, _ = data
    model = tmp_path_factory.mktemp("model") / "model.npz"
    argv = ["fit", path, "-k", "1-4", "--covariance", "full", "diag", "--out", model, "-q"]
    code = cli.main([str(a) for a in argv])
    assert code == 0
    return model


# ---------------------------------------------------------------------- fit
def table_rows(out: str) -> list[list[str]]:
    """The candidate rows of the printed table (marker, K, covariance, ...)."""
    rows = []
    for line in out.splitlines():
        cells = line.split()
        if cells and cells[0] == "*":
            cells = cells[1:]
            marked = True
        else:
            marked = False
        if len(cells) == 8 and cells[0].isdigit() and cells[1] in cli.COVARIANCE_TYPES:
            rows.append([marked, *cells])
    return rows


def test_fit_picks_true_k_prints_every_candidate_and_saves(data, tmp_path, capsys):
    path, X = data
    model_path = tmp_path / "m.npz"
    argv = ["fit", path, "-k", "1-4", "--covariance", "full,diag", "--out", model_path, "-q"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    rows = table_rows(out)
    assert {(int(r[1]), r[2]) for r in rows} == {
        (k, c) for k in range(1, 5) for c in ("full", "diag")
    }
    assert len(rows) == 8
    chosen = [r for r in rows if r[0]]
    assert len(chosen) == 1
    assert int(chosen[0][1]) == 3
    bics = [float(r[4]) for r in rows]
    assert float(chosen[0][4]) == min(bics)
    assert "weight" in out and "mean" in out and "covariance" in out

    loaded = emkit.load(model_path)
    assert loaded.n_components == 3
    same = emkit.GaussianMixture(
        3, covariance_type=chosen[0][2], random_state=0, n_init=5, tol=1e-6, max_iter=500
    ).fit(X)  # the command's defaults
    np.testing.assert_array_equal(loaded.predict(X), same.predict(X))
    np.testing.assert_allclose(loaded.means_, same.means_)
    np.testing.assert_allclose(np.sort(loaded.means_[:, 0]), TRUE_MEANS[:, 0], atol=0.3)


def test_fit_npy_input_and_criterion(data, tmp_path, capsys):
    _, X = data
    np.save(tmp_path / "X.npy", X)
    code, out, err = run(
        ["fit", tmp_path / "X.npy", "-k", "2,3", "--criterion", "aic", "-q"], capsys
    )
    assert code == 0, err
    rows = table_rows(out)
    assert [int(r[1]) for r in rows] == [2, 3]
    assert "lowest AIC" in out
    assert "features: x0, x1" in out


def test_fit_parquet_input(data, tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    _, X = data
    table = pa.table({"a": X[:, 0], "b": X[:, 1], "name": ["r"] * len(X)})
    pq.write_table(table, tmp_path / "X.parquet")
    code, out, err = run(["fit", tmp_path / "X.parquet", "-k", "3", "--columns", "a,b"], capsys)
    assert code == 0, err
    assert "features: a, b" in out
    code, _, err = run(["fit", tmp_path / "X.parquet", "-k", "3"], capsys)
    assert code == 2
    assert "'name'" in err and "not numeric" in err


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path, capsys, monkeypatch):
    (tmp_path / "X.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    code, _, err = run(["fit", tmp_path / "X.parquet"], capsys)
    assert code == 2
    assert "pip install pyarrow" in err


def test_columns_leave_out_a_text_column(data, tmp_path, capsys):
    _, X = data
    path = write_csv(tmp_path / "t.csv", X[:60], extra={"kind": ["a"] * 60})
    code, out, err = run(["fit", path, "-k", "1-2", "--columns", "x,y", "-q"], capsys)
    assert code == 0, err
    assert "60 rows x 2 features (x, y)" in out


# ---------------------------------------------------------------------- predict / info
def test_predict_writes_labels_and_probabilities(data, fitted, tmp_path, capsys):
    path, X = data
    model_path = fitted
    out_file = tmp_path / "pred.csv"
    code, out, err = run(["predict", model_path, path, "--out", out_file], capsys)
    assert code == 0, err
    assert out == ""
    lines = out_file.read_text().splitlines()
    assert lines[0] == "label,prob_0,prob_1,prob_2"
    values = np.loadtxt(out_file, delimiter=",", skiprows=1)
    assert values.shape == (len(X), 4)
    np.testing.assert_allclose(values[:, 1:].sum(axis=1), 1.0, atol=1e-8)
    model = emkit.load(model_path)
    np.testing.assert_array_equal(values[:, 0].astype(int), model.predict(X))
    np.testing.assert_array_equal(values[:, 0].astype(int), values[:, 1:].argmax(axis=1))

    code, stdout, err = run(["predict", model_path, path], capsys)
    assert code == 0, err
    assert stdout.splitlines() == lines


def test_info_prints_class_hyperparameters_and_parameters(fitted, capsys):
    model_path = fitted
    code, out, err = run(["info", model_path], capsys)
    assert code == 0, err
    for text in ("GaussianMixture", "n_components", "covariance_type", "converged_", "weight"):
        assert text in out
    assert out.count("component ") == 3


@pytest.mark.parametrize(
    "cov_type, label, shared",
    [
        ("full", "covariance", False),
        ("diag", "variances", False),
        ("tied", "covariance", True),
        ("spherical", "variance", False),
    ],
)
def test_mixture_description_names_each_covariance_structure(cov_type, label, shared):
    from emkit.cli.formatting import format_mixture

    model = emkit.GaussianMixture(2, covariance_type=cov_type, random_state=0).fit(
        sample_mixture(60)
    )
    lines = format_mixture(model, ["x", "y"]).splitlines()
    assert lines[0] == "features: x, y"
    # entries of a component are indented by two spaces (array continuations by more)
    entries = [line for line in lines if line.startswith("  ") and not line.startswith("   ")]
    per_component = [line.split()[0] for line in entries]
    if shared:  # one matrix, printed once after the components
        assert per_component == ["mean", "mean"]
        assert lines[-2].split()[:2] == ["shared", label]
    else:
        assert per_component == ["mean", label, "mean", label]
        assert not any(line.startswith("shared") for line in lines)


# ---------------------------------------------------------------------- demo / report
@pytest.mark.slow
def test_demo_writes_report(tmp_path, capsys):
    report = tmp_path / "rep"
    code, out, err = run(["demo", "--report", report, "--quiet"], capsys)
    assert code == 0, err
    assert "Old Faithful" in out
    assert len(table_rows(out)) == 6 * 4
    for name in ("loglik.png", "criterion.png", "clusters.png"):
        assert (report / name).read_bytes()[:8] == PNG_SIGNATURE
    summary = json.loads((report / "summary.json").read_text())
    bics = [row["bic"] for row in summary["candidates"]]
    assert len(bics) == 24
    assert summary["criterion"] == "bic"
    assert summary["chosen"]["bic"] == pytest.approx(min(bics), rel=1e-12)  # recomputed on X
    chosen = summary["chosen"]
    K = chosen["n_components"]
    assert len(chosen["weights"]) == K and np.isclose(sum(chosen["weights"]), 1.0)
    assert np.shape(chosen["means"]) == (K, 2)


@pytest.mark.parametrize("n_features", [1, 3])
def test_report_projects_or_histograms_other_dimensions(n_features, tmp_path):
    from emkit.cli.report import write_report

    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(-4, 1, (40, n_features)), rng.normal(4, 1, (40, n_features))])
    names = [f"f{j}" for j in range(n_features)]
    model = emkit.GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    row = {
        "n_components": 2,
        "covariance_type": "diag",
        "bic": model.bic(X),
        "aic": model.aic(X),
    }
    paths = write_report(tmp_path, X, names, [row], model, "bic")
    assert [p.name for p in paths] == [
        "loglik.png",
        "criterion.png",
        "clusters.png",
        "summary.json",
    ]
    assert (tmp_path / "clusters.png").read_bytes()[:8] == PNG_SIGNATURE
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert np.shape(summary["chosen"]["covariances"]) == (2, n_features)


def test_principal_axes_project_covariances():
    from emkit.cli.report import principal_axes

    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 3)) * [5.0, 1.0, 0.1]
    centre, P = principal_axes(X)
    assert P.shape == (3, 2)
    np.testing.assert_allclose(P.T @ P, np.eye(2), atol=1e-12)
    assert abs(P[0, 0]) > 0.99 and abs(P[1, 1]) > 0.99
    np.testing.assert_allclose(centre, X.mean(axis=0))


# ---------------------------------------------------------------------- bad input
@pytest.fixture
def bad_files(tmp_path, data) -> dict[str, Path]:
    _, X = data
    files = {
        "text": write_csv(tmp_path / "text.csv", X[:10], extra={"kind": ["a"] * 10}),
        "small": write_csv(tmp_path / "small.csv", X[:3]),
        "empty": tmp_path / "empty.csv",
        "header": tmp_path / "header.csv",
        "ragged": tmp_path / "ragged.csv",
        "missing": tmp_path / "missing.csv",
        "corrupt": tmp_path / "corrupt.npz",
        "three": write_csv(tmp_path / "three.csv", np.ones((5, 3)), names=("a", "b", "c")),
    }
    files["empty"].write_text("")
    files["header"].write_text("x,y\n")
    files["ragged"].write_text("x,y\n1,2\n3\n")
    files["missing"].write_text("x,y\n1,2\n3,\n4,5\n")
    files["corrupt"].write_bytes(b"PK\x03\x04 this is not a model")
    return files


BAD_INPUTS = {
    "missing file": (["fit", "{tmp}/nope.csv"], "no such file"),
    "non-numeric column": (["fit", "{text}"], "'kind'"),
    "too few rows for K": (["fit", "{small}", "-k", "1-5"], "fewer than"),
    "unknown option": (["fit", "{small}", "--bogus"], "unrecognized arguments"),
    "bad range": (["fit", "{small}", "-k", "5-2"], "5-2"),
    "not a number of components": (["fit", "{small}", "-k", "two"], "invalid value"),
    "unknown covariance": (["fit", "{small}", "--covariance", "fulll"], "fulll"),
    "unknown column": (["fit", "{small}", "--columns", "x,z"], "no column 'z'"),
    "empty csv": (["fit", "{empty}"], "empty"),
    "header only": (["fit", "{header}"], "no data rows"),
    "ragged csv": (["fit", "{ragged}"], "line 3"),
    "missing value": (["fit", "{missing}", "--missing", "error"], "missing value"),
    "corrupt model (info)": (["info", "{corrupt}"], "not an emkit model"),
    "corrupt model (predict)": (["predict", "{corrupt}", "{small}"], "not an emkit model"),
    "missing model": (["info", "{tmp}/none.npz"], "no such model file"),
    "wrong number of features": (["predict", "{model}", "{three}"], "features"),
    "no command": ([], "required"),
    "unknown command": (["frobnicate"], "invalid choice"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line(case, bad_files, fitted, tmp_path, capsys):
    argv, expected = BAD_INPUTS[case]
    names = {**bad_files, "tmp": tmp_path, "model": fitted}
    code, out, err = run([a.format(**names) for a in argv], capsys)
    assert code == 2
    assert err.startswith("emkit: error: ")
    assert err.count("\n") == 1 and err.endswith("\n")
    assert expected in err
    assert "Traceback" not in err + out


def test_fit_failure_saves_nothing(bad_files, tmp_path, capsys):
    out_path = tmp_path / "never.npz"
    code, _, _ = run(["fit", bad_files["small"], "-k", "1-5", "--out", out_path], capsys)
    assert code == 2
    assert not out_path.exists()


# ---------------------------------------------------------------------- parser
@pytest.mark.parametrize(
    ("text", "expected"),
    [("3", [3]), ("1-4", [1, 2, 3, 4]), ("2,4,6", [2, 4, 6]), ("1-3,6, 2", [1, 2, 3, 6])],
)
def test_parse_components(text, expected):
    assert cli.parse_components(text) == expected


@pytest.mark.parametrize("text", ["", "0", "5-2", "a", "1-", "-3", "2,,3"])
def test_parse_components_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_components(text)


def test_help_and_version(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    assert "fit" in out and "predict" in out and "demo" in out and "info" in out
    code, out, _ = run(["--version"], capsys)
    assert code == 0
    assert out.strip() == f"emkit {emkit.__version__}"
    code, out, _ = run(["fit", "--help"], capsys)
    assert code == 0 and "--components" in out


def test_subprocess_entry_point(data):
    path, _ = data
    proc = subprocess.run(
        [sys.executable, "-m", "emkit.cli", "fit", str(path), "-k", "3", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "chosen model: K=3" in proc.stdout
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------- datasets
def test_embedded_datasets():
    assert {"faithful", "iris"} <= set(available())
    X, names = load_faithful()
    assert X.shape == (272, 2) and X.dtype == np.float64
    assert names == ["eruptions", "waiting"]
    np.testing.assert_array_equal(load("faithful")[0], X)
    X, names, species = load_iris(return_species=True)
    assert X.shape == (150, 4) and len(names) == 4
    assert sorted(set(species)) == ["setosa", "versicolor", "virginica"]
    with pytest.raises(ValueError, match="unknown data set"):
        load("nope")


def test_covariance_all_is_selects_all_without_fitting_a_model_twice():
    from emkit.cli.parser import parse_covariances
    from emkit.selection import _covariance_types

    names = parse_covariances("all")
    assert names == _covariance_types("all") and len(names) == len(set(names)) == 14
    # scikit-learn's four names are models already among the 14: the same fits
    X, _ = load_faithful()
    for plain, twin in [("full", "VVV"), ("diag", "VVI"), ("tied", "EEE"), ("spherical", "VII")]:
        assert plain not in names and twin in names
        fits = [
            emkit.GaussianMixture(3, covariance_type=c, random_state=0, tol=1e-10).fit(X)
            for c in (plain, twin)
        ]
        assert fits[0].loglik_ == pytest.approx(fits[1].loglik_, rel=1e-12)
        np.testing.assert_allclose(fits[0].means_, fits[1].means_, rtol=1e-9)
