"""The command line's data files: streaming CSV reading, missing values, header
detection, early checks of the output paths, and the column names a model keeps."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import emkit
from emkit import cli
from emkit.cli.readers import column_names, read_data, read_table
from emkit.models.estimator import record_feature_names

MEANS = np.array([[-4.0, 0.0, 1.0], [4.0, 1.0, -1.0]])


def sample(n: int, seed: int = 0) -> np.ndarray:
    """Rows of a well separated 3-D mixture of two Gaussians."""
    rng = np.random.default_rng(seed)
    return MEANS[rng.integers(0, 2, n)] + rng.normal(size=(n, 3))


def write_rows(path: Path, header: list[str] | None, rows, sep: str = ",", eol: str = "\n") -> Path:
    """A CSV file of the given cells, written as they are (no quoting added)."""
    lines = ([sep.join(header)] if header else []) + [sep.join(map(str, r)) for r in rows]
    path.write_bytes((eol.join(lines) + eol).encode())
    return path


def cells(X: np.ndarray) -> list[list[str]]:
    """Cells that read back exactly (repr of each float), NaN as an empty cell."""
    return [["" if np.isnan(v) else repr(float(v)) for v in row] for row in X]


def run(argv, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def posterior(model, X: np.ndarray) -> np.ndarray:
    """Mixture posteriors with missing values integrated out, by scipy: each row's
    observed coordinates under each component's marginal Gaussian."""
    covs = model.covariances_
    out = np.empty((len(X), model.n_components))
    for i, x in enumerate(X):
        seen = ~np.isnan(x)
        if not seen.any():
            out[i] = model.weights_
            continue
        logp = [
            np.log(w) + multivariate_normal(m[seen], S[np.ix_(seen, seen)]).logpdf(x[seen])
            for w, m, S in zip(model.weights_, model.means_, covs)
        ]
        out[i] = np.exp(np.asarray(logp) - logsumexp(logp))
    return out


@pytest.fixture(scope="module")
def model_abc(tmp_path_factory) -> tuple[Path, emkit.GaussianMixture]:
    """A full-covariance 2-component mixture fitted by the library, saved with names a, b, c."""
    model = emkit.GaussianMixture(2, random_state=0).fit(sample(400, seed=1))
    record_feature_names(model, ["a", "b", "c"])
    path = tmp_path_factory.mktemp("model") / "abc.npz"
    model.save(path)
    return path, model


# ---------------------------------------------------------------------- reading
def test_csv_values_read_exactly_with_quotes_spaces_crlf_and_bom(tmp_path):
    X = sample(500)
    rows = [[f'"{a}"', f" {b}", f"{c}  "] for a, b, c in cells(X)]
    path = write_rows(tmp_path / "x.csv", ["a", "b", "c"], rows, eol="\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    table = read_table(path)
    np.testing.assert_array_equal(table.X, X)
    assert table.names == ["a", "b", "c"] and table.named
    assert table.X.dtype == np.float64 and table.X.flags.c_contiguous


def test_large_csv_is_read_in_many_batches_in_order(tmp_path):
    X = sample(60_000)  # about 3.5 MB: several of pyarrow's blocks
    rows = [[*r, "label"] for r in cells(X)]
    path = write_rows(tmp_path / "big.csv", ["a", "b", "c", "kind"], rows)
    table = read_table(path, ["c", "0"])  # by name and by 0-based index, reordered
    np.testing.assert_array_equal(table.X, X[:, [2, 0]])
    assert table.names == ["c", "a"]


def test_tsv_and_quoted_line_breaks_in_a_text_column(tmp_path):
    X = sample(20)
    path = write_rows(tmp_path / "x.tsv", ["a", "b", "c"], cells(X), sep="\t")
    np.testing.assert_array_equal(read_data(path)[0], X)
    text = 'a,note,b\n1.5,"two\nlines",2\n3,plain,4\n'
    (tmp_path / "n.csv").write_text(text)
    np.testing.assert_array_equal(read_data(tmp_path / "n.csv", ["a", "b"])[0], [[1.5, 2], [3, 4]])


def test_parquet_row_groups_nulls_and_integers(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X = sample(1000)
    X[[3, 500, 999], 1] = np.nan
    table = pa.table(
        {
            "a": X[:, 0],
            "b": pa.array(X[:, 1], from_pandas=True),  # NaN -> null
            "n": np.arange(1000, dtype=np.int32),
            "s": ["t"] * 1000,
        }
    )
    pq.write_table(table, tmp_path / "x.parquet", row_group_size=128)
    assert pq.ParquetFile(tmp_path / "x.parquet").num_row_groups == 8
    got = read_table(tmp_path / "x.parquet", ["b", "n", "a"])
    expected = np.column_stack([X[:, 1], np.arange(1000.0), X[:, 0]])
    np.testing.assert_array_equal(got.X, expected)  # NaN where the nulls are
    assert got.names == ["b", "n", "a"] and got.named
    dropped = read_table(tmp_path / "x.parquet", ["a", "b"], missing="drop")
    np.testing.assert_array_equal(dropped.X, np.delete(X[:, :2], [3, 500, 999], axis=0))
    with pytest.raises(ValueError, match="missing value in column 'b' at row 4;"):
        read_table(tmp_path / "x.parquet", ["a", "b"], missing="error")
    with pytest.raises(ValueError, match="'s' is not numeric"):
        read_table(tmp_path / "x.parquet")


def test_npy_missing_and_infinite_values(tmp_path):
    X = sample(50)
    X[7, 2] = np.nan
    np.save(tmp_path / "x.npy", X)
    got = read_table(tmp_path / "x.npy")
    np.testing.assert_array_equal(got.X, X)
    assert got.names == ["x0", "x1", "x2"] and not got.named
    assert len(read_table(tmp_path / "x.npy", missing="drop").X) == 49
    with pytest.raises(ValueError, match="missing value in column 'x2' at row 8"):
        read_table(tmp_path / "x.npy", missing="error")
    X[9, 0] = -np.inf
    np.save(tmp_path / "x.npy", X)
    with pytest.raises(ValueError, match="'x0' has an infinite value at row 10"):
        read_table(tmp_path / "x.npy")


# ---------------------------------------------------------------------- missing values
MARKERS = ["", "NA", "na", "NaN", "nan", "null", "NULL", "None", "none", " NA", "  ", "nA "]


@pytest.mark.parametrize("marker", MARKERS)
def test_missing_markers_are_nan_in_any_case_and_padding(marker, tmp_path):
    X = sample(30)
    rows = cells(X)
    rows[20][1] = marker
    path = write_rows(tmp_path / "x.csv", ["a", "b", "c"], rows)
    expected = X.copy()
    expected[20, 1] = np.nan
    np.testing.assert_array_equal(read_table(path).X, expected)
    np.testing.assert_array_equal(read_table(path, missing="drop").X, np.delete(X, 20, axis=0))
    with pytest.raises(ValueError, match="missing value in column 'b' at line 22; use --missing"):
        read_table(path, missing="error")


def test_missing_value_lines_count_blank_lines_and_later_blocks(tmp_path):
    X = sample(40_000)
    rows = cells(X)
    rows[35_000][2] = " NA"  # pyarrow does not take a padded marker: read a second way
    lines = ["a,b,c", "", *(",".join(r) for r in rows)]  # a blank line after the header
    path = tmp_path / "x.csv"
    path.write_text("\n".join(lines) + "\n")
    expected = X.copy()
    expected[35_000, 2] = np.nan
    np.testing.assert_array_equal(read_table(path).X, expected)
    # file line: 1 header, 2 blank, data row i on line i + 3
    with pytest.raises(ValueError, match=f"'c' at line {35_000 + 3};"):
        read_table(path, missing="error")


def test_drop_counts_rows_and_says_so(tmp_path, capsys):
    X = sample(200)
    X[::10, 0] = np.nan
    X[5, 1] = np.nan
    path = write_rows(tmp_path / "x.csv", ["a", "b", "c"], cells(X))
    table = read_table(path, missing="drop")
    keep = ~np.isnan(X).any(axis=1)
    np.testing.assert_array_equal(table.X, X[keep])
    assert (table.n_rows_read, table.n_dropped) == (200, 21)
    code, out, err = run(["fit", path, "-k", "2", "--n-init", "1", "--missing", "drop"], capsys)
    assert code == 0, err
    assert "179 rows x 3 features" in out
    assert "emkit: note: 21 of 200 rows" in err


BAD_CELLS = {
    "text": ("abc", "column 'b' has the non-numeric value 'abc' at line {line}"),
    "inf": ("inf", "column 'b' has an infinite value at line {line}"),
    "minus infinity": ("-Infinity", "column 'b' has an infinite value at line {line}"),
    "comma number": ('"1,5"', "the non-numeric value '1,5' at line {line}"),
}


@pytest.mark.parametrize("case", list(BAD_CELLS))
@pytest.mark.parametrize("missing", ["allow", "drop", "error"])
def test_bad_values_name_column_and_line_in_every_mode(case, missing, tmp_path):
    cell, message = BAD_CELLS[case]
    rows = cells(sample(30_000))  # the bad cell in a later block of pyarrow's reader
    rows[25_000][1] = cell
    path = write_rows(tmp_path / "x.csv", ["a", "b", "c"], rows)
    with pytest.raises(ValueError, match=message.format(line=25_002)):
        read_table(path, missing=missing)


def test_malformed_files(tmp_path):
    rows = cells(sample(20_000))
    rows[15_000] = rows[15_000][:2]
    bad = write_rows(tmp_path / "ragged.csv", ["a", "b", "c"], rows)
    with pytest.raises(ValueError, match="line 15002 has 2 fields but the header has 3 fields"):
        read_table(bad)
    rows = cells(sample(20_000))
    text = "a,b,c\n" + "\n".join(",".join(r) for r in rows) + "\n"
    data = text.encode().replace(rows[18_000][0].encode(), b"\xe91.5", 1)
    (tmp_path / "latin.csv").write_bytes(data)
    with pytest.raises(ValueError, match=r"not a UTF-8 text file \(line 18002\)"):
        read_table(tmp_path / "latin.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "blank.csv").write_text("\n\n")
    with pytest.raises(ValueError, match="empty"):
        read_table(tmp_path / "blank.csv")
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="no data rows"):
        read_table(tmp_path / "header.csv")
    with pytest.raises(ValueError, match="is a folder"):
        read_table(tmp_path)
    with pytest.raises(ValueError, match="no column 'z'; its columns are a, b, c"):
        read_table(bad, ["a", "z"])
    (tmp_path / "all.csv").write_text("a,b\n1,\n,NA\n")
    with pytest.raises(ValueError, match=r"every row .* has a missing value"):
        read_table(tmp_path / "all.csv", missing="drop")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's VmHWM")
def test_peak_memory_is_about_the_float64_size(tmp_path):
    """A child process reads a 250,000 x 8 CSV; its peak memory beyond that of a child
    reading a tiny file is below 2.5 times the 15 MiB of float64 (the csv module's
    lists of strings took 15 times).

    The peak is the child's VmHWM: ``ru_maxrss`` keeps the parent's peak across exec."""
    pa = pytest.importorskip("pyarrow")
    pacsv = pytest.importorskip("pyarrow.csv")
    n, d = 250_000, 8
    X = np.random.default_rng(0).normal(size=(n, d))
    pacsv.write_csv(pa.table({f"c{j}": X[:, j] for j in range(d)}), tmp_path / "big.csv")
    write_rows(tmp_path / "tiny.csv", ["a"], [[1.0]])
    script = textwrap.dedent(
        """
        import sys
        from emkit.cli.readers import read_table
        read_table(sys.argv[2])  # pyarrow's start-up costs, as in the baseline
        X = read_table(sys.argv[1]).X
        status = open("/proc/self/status").read().split("VmHWM:")[1]
        print(int(status.split()[0]) * 1024, X.shape[0])
        """
    )

    def peak(path: Path) -> int:
        argv = [sys.executable, "-c", script, str(path), str(tmp_path / "tiny.csv")]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
        assert out.stdout.split()[1] == str(n if path.name == "big.csv" else 1)
        return int(out.stdout.split()[0])

    extra = peak(tmp_path / "big.csv") - peak(tmp_path / "tiny.csv")
    assert extra < 2.5 * X.nbytes, f"{extra / 2**20:.0f} MiB for {X.nbytes / 2**20:.0f} MiB"


# ---------------------------------------------------------------------- fit / predict
def test_predict_integrates_missing_values_out(model_abc, tmp_path, capsys):
    path, model = model_abc
    X = sample(60, seed=5)
    X[3, 0] = X[10, 1:] = X[11] = np.nan  # one, two and all three values missing
    data = write_rows(tmp_path / "new.csv", ["a", "b", "c"], cells(X))
    out_file = tmp_path / "pred.csv"
    code, _, err = run(["predict", path, data, "--out", out_file], capsys)
    assert code == 0, err
    values = np.loadtxt(out_file, delimiter=",", skiprows=1)
    expected = posterior(model, X)
    np.testing.assert_allclose(values[:, 1:], expected, rtol=1e-7, atol=1e-12)
    np.testing.assert_array_equal(values[:, 0], expected.argmax(axis=1))
    np.testing.assert_allclose(values[11, 1:], model.weights_, rtol=1e-9)

    code, _, err = run(["predict", path, data, "--missing", "drop", "-o", out_file], capsys)
    assert code == 0, err
    lines = out_file.read_text().splitlines()
    assert len(lines) == 61  # one output row per input row
    for i in (3, 10, 11):
        assert lines[i + 1] == ",,"
    kept = [i for i in range(60) if i not in (3, 10, 11)]
    got = np.array([[float(v) for v in lines[i + 1].split(",")] for i in kept])
    np.testing.assert_allclose(got[:, 1:], expected[kept], rtol=1e-7, atol=1e-12)
    assert "3 of 60 rows" in err

    code, _, err = run(["predict", path, data, "--missing", "error"], capsys)
    assert code == 2 and "missing value in column 'a' at line 5" in err


def test_fit_with_missing_values(tmp_path, capsys):
    X = sample(300, seed=2)
    X[::7, 1] = np.nan
    X[4] = np.nan  # a row without any value carries no information: left out
    path = write_rows(tmp_path / "x.csv", ["a", "b", "c"], cells(X))
    model_path = tmp_path / "m.npz"
    code, out, err = run(["fit", path, "-k", "2", "--n-init", "2", "-o", model_path], capsys)
    assert code == 0, err
    assert "299 rows x 3 features" in out
    assert "1 rows of" in err and "no value in the selected columns" in err
    model = emkit.load(model_path)
    order = np.argsort(model.means_[:, 0])
    np.testing.assert_allclose(model.means_[order], MEANS, atol=0.35)
    # the fit maximised the observed-data likelihood: scipy's value at its parameters
    rows = X[~np.isnan(X).all(axis=1)]
    loglik = 0.0
    for x in rows:
        seen = ~np.isnan(x)
        loglik += logsumexp(
            [
                np.log(w) + multivariate_normal(m[seen], S[np.ix_(seen, seen)]).logpdf(x[seen])
                for w, m, S in zip(model.weights_, model.means_, model.covariances_)
            ]
        )
    np.testing.assert_allclose(model.score(rows) * len(rows), loglik, rtol=1e-9)
    code, _, err = run(["fit", path, "-k", "2", "--missing", "error"], capsys)
    assert code == 2
    assert "missing value in column 'b' at line 2; use --missing allow or drop" in err


# ---------------------------------------------------------------------- header detection
@pytest.mark.parametrize(
    ("text", "header"),
    [
        ("a,b\n1,2\n", True),
        ("1,2\n3,4\n", False),
        ("1.5e3,-2\n", False),
        ("NA,2\n1,3\n", False),  # a missing value, not a name
        ("Na,K\n1,2\n", True),  # sodium and potassium: K is text above a number
        ("1.0,2.0,a\n3.0,4.0,b\n", False),  # a text column in headerless data
        ("x,y,kind\n1,2,a\n", True),
        ("name,city\nbob,paris\n", True),  # all text: a header
        ("a,b\n", True),
    ],
)
def test_header_detection(text, header, tmp_path):
    (tmp_path / "x.csv").write_text(text)
    names, named = column_names(tmp_path / "x.csv")
    assert named == header
    first = text.split("\n")[0].split(",")
    assert names == (first if header else [f"x{j}" for j in range(len(first))])


def test_header_options_and_notes(tmp_path, capsys):
    X = sample(100)
    path = write_rows(tmp_path / "x.csv", None, cells(X))
    code, out, err = run(["fit", path, "-k", "2", "--n-init", "1", "--columns", "2,0"], capsys)
    assert code == 0, err
    assert "100 rows x 2 features (x2, x0)" in out
    assert err.startswith("emkit: note: ") and "has no header row" in err
    assert "columns are named x0..x2; pass --header" in err
    code, out, err = run(["fit", path, "-k", "2", "--n-init", "1", "--no-header"], capsys)
    assert code == 0 and "note" not in err
    # --header: the first row holds names, even numeric ones
    code, out, err = run(["fit", path, "-k", "2", "--n-init", "1", "--header"], capsys)
    assert code == 0, err
    assert f"99 rows x 3 features ({', '.join(cells(X)[0])})" in out
    # the selected values are the file's: compare with the library on the same columns
    table = read_table(path, ["2", "0"])
    np.testing.assert_array_equal(table.X, X[:, [2, 0]])
    code, _, err = run(["fit", path, "--header", "--no-header"], capsys)
    assert code == 2 and "not allowed with argument" in err
    np.save(tmp_path / "x.npy", X)
    code, _, err = run(["fit", tmp_path / "x.npy", "--no-header"], capsys)
    assert code == 2 and "--no-header applies to CSV and TSV files" in err


# ---------------------------------------------------------------------- early failures
EARLY = {
    "out in a missing folder": (
        ["fit", "{data}", "-o", "{tmp}/nope/m.npz"],
        "cannot save to {tmp}/nope/m.npz: folder {tmp}/nope does not exist",
    ),
    "out under a file": (
        ["fit", "{data}", "-o", "{tmp}/file.txt/m.npz"],
        "cannot save to {tmp}/file.txt/m.npz: {tmp}/file.txt is not a folder",
    ),
    "out deeper under a file": (
        ["fit", "{data}", "-o", "{tmp}/file.txt/a/m.npz"],
        "{tmp}/file.txt is not a folder",
    ),
    "out is a folder": (["fit", "{data}", "-o", "{tmp}"], "cannot save to {tmp}: it is a folder"),
    "report is a file": (
        ["fit", "{data}", "--report", "{tmp}/file.txt"],
        "cannot write the report to {tmp}/file.txt: it is a file, not a folder",
    ),
    "report under a file": (
        ["fit", "{data}", "--report", "{tmp}/file.txt/r"],
        "{tmp}/file.txt is not a folder",
    ),
    "predict out in a missing folder": (
        ["predict", "{model}", "{data}", "-o", "{tmp}/nope/p.csv"],
        "cannot write to {tmp}/nope/p.csv: folder {tmp}/nope does not exist",
    ),
    "predict out is a folder": (
        ["predict", "{model}", "{data}", "-o", "{tmp}"],
        "cannot write to {tmp}: it is a folder",
    ),
}


@pytest.mark.parametrize("case", list(EARLY))
def test_output_paths_fail_before_any_reading(case, tmp_path, capsys):
    """DATA (and MODEL) do not exist: the message is about the output all the same."""
    (tmp_path / "file.txt").write_text("not a folder")
    names = {"tmp": tmp_path, "data": tmp_path / "absent.csv", "model": tmp_path / "absent.npz"}
    argv, expected = EARLY[case]
    code, out, err = run([a.format(**names) for a in argv], capsys)
    assert code == 2
    assert err.startswith("emkit: error: ") and expected.format(**names) in err
    assert err.count("\n") == 1 and out == ""


def test_output_must_not_be_the_data_file(tmp_path, capsys):
    path = write_rows(tmp_path / "x.csv", ["a", "b", "c"], cells(sample(30)))
    before = path.read_bytes()
    code, _, err = run(["fit", path, "-k", "2", "-o", path], capsys)
    assert code == 2 and "it is the data file" in err
    assert path.read_bytes() == before


# ---------------------------------------------------------------------- column names
def test_fit_records_the_selected_column_names(tmp_path, capsys):
    X = sample(200)
    rows = [[r[0], "t", r[1], r[2]] for r in cells(X)]
    path = write_rows(tmp_path / "x.csv", ["a", "kind", "b", "c"], rows)
    model_path = tmp_path / "m.npz"
    argv = ["fit", path, "-k", "2", "--n-init", "1", "--columns", "c,a", "-o", model_path]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    model = emkit.load(model_path)
    assert model.feature_names_in_.tolist() == ["c", "a"]
    code, out, err = run(["info", model_path], capsys)
    assert code == 0, err
    assert "\nfeatures: c, a\n" in out


def test_repeated_names_are_not_recorded(tmp_path, capsys):
    X = sample(100)
    path = write_rows(tmp_path / "x.csv", ["a", "a", "c"], cells(X))
    argv = ["fit", path, "-k", "2", "--n-init", "1", "--columns", "0,1", "-o", tmp_path / "m.npz"]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert "names repeat (a, a); the model keeps no names" in err
    assert not hasattr(emkit.load(tmp_path / "m.npz"), "feature_names_in_")


@pytest.mark.parametrize("data", ["headerless csv", "npy"])
def test_generated_names_are_not_recorded(data, tmp_path, capsys):
    X = sample(100)
    if data == "npy":
        path = tmp_path / "x.npy"
        np.save(path, X)
    else:
        path = write_rows(tmp_path / "x.csv", None, cells(X))
    code, _, err = run(["fit", path, "-k", "2", "--n-init", "1", "-o", tmp_path / "m.npz"], capsys)
    assert code == 0, err
    model = emkit.load(tmp_path / "m.npz")
    assert not hasattr(model, "feature_names_in_")
    code, out, _ = run(["info", tmp_path / "m.npz"], capsys)
    assert "features: 3 (fitted without names)" in out
    # such a model takes the columns by position, from any file
    named = write_rows(tmp_path / "n.csv", ["p", "q", "r"], cells(X[:5]))
    code, out, err = run(["predict", tmp_path / "m.npz", named], capsys)
    assert code == 0, err
    labels = np.loadtxt(out.splitlines()[1:], delimiter=",")[:, 0]
    np.testing.assert_array_equal(labels, model.predict(X[:5]))


def test_predict_finds_the_model_columns_by_name(model_abc, tmp_path, capsys):
    path, model = model_abc
    X = sample(40, seed=3)
    rows = [[r[2], "x", r[0], r[1]] for r in cells(X)]  # c, text, a, b
    data = write_rows(tmp_path / "shuffled.csv", ["c", "note", "a", "b"], rows)
    code, out, err = run(["predict", path, data], capsys)
    assert code == 0, err
    values = np.loadtxt(out.splitlines()[1:], delimiter=",")
    np.testing.assert_allclose(values[:, 1:], posterior(model, X), rtol=1e-7, atol=1e-12)
    code, out2, err = run(["predict", path, data, "--columns", "a,b,c"], capsys)
    assert code == 0 and out2 == out
    code, out2, err = run(["predict", path, data, "--columns", "2,3,0"], capsys)
    assert code == 0 and out2 == out

    code, _, err = run(["predict", path, data, "--columns", "b,a,c"], capsys)
    assert code == 2
    assert "--columns selects b, a, c, but the model was fitted on the features a, b, c" in err
    short = write_rows(tmp_path / "short.csv", ["c", "z", "a"], [r[:3] for r in rows])
    code, _, err = run(["predict", path, short], capsys)
    assert code == 2
    assert "has no column 'b' of the model's features (a, b, c); its columns are c, z, a" in err


def test_headerless_data_is_taken_by_position_by_a_named_model(model_abc, tmp_path, capsys):
    path, model = model_abc
    X = sample(20, seed=4)
    data = write_rows(tmp_path / "plain.csv", None, cells(X))
    code, out, err = run(["predict", path, data], capsys)
    assert code == 0, err
    assert "taken by position as the model's features a, b, c" in err
    values = np.loadtxt(out.splitlines()[1:], delimiter=",")
    np.testing.assert_allclose(values[:, 1:], posterior(model, X), rtol=1e-7, atol=1e-12)


def test_parquet_fit_records_names(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X = sample(150)
    pq.write_table(pa.table({"u": X[:, 0], "v": X[:, 1]}), tmp_path / "x.parquet")
    code, _, err = run(
        ["fit", tmp_path / "x.parquet", "-k", "2", "--n-init", "1", "-o", tmp_path / "m.npz"],
        capsys,
    )
    assert code == 0, err
    assert emkit.load(tmp_path / "m.npz").feature_names_in_.tolist() == ["u", "v"]


def test_record_feature_names_checks_its_input():
    model = emkit.GaussianMixture(1)
    with pytest.raises(ValueError, match="not fitted"):
        record_feature_names(model, ["a", "b"])
    model.fit(sample(20)[:, :2])
    with pytest.raises(ValueError, match="3 feature names for a GaussianMixture fitted on 2"):
        record_feature_names(model, ["a", "b", "c"])
    with pytest.raises(ValueError, match="must be strings"):
        record_feature_names(model, ["a", 1])
    with pytest.raises(ValueError, match="distinct; repeated: a"):
        record_feature_names(model, ["a", "a"])
    record_feature_names(model, ("p", "q"))
    assert model.feature_names_in_.tolist() == ["p", "q"]
    # the estimator's own check of DataFrame columns now applies
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(sample(5)[:, :2], columns=["q", "p"])
    with pytest.raises(ValueError, match="another order"):
        model.predict(frame)


def test_report_leaves_out_rows_with_missing_values(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    X = sample(120)
    X[::9, 2] = np.nan
    path = write_rows(tmp_path / "x.csv", ["a", "b", "c"], cells(X))
    report = tmp_path / "rep"
    code, _, err = run(["fit", path, "-k", "2", "--n-init", "1", "--report", report, "-q"], capsys)
    assert code == 0, err
    summary = json.loads((report / "summary.json").read_text())
    assert summary["n_samples"] == 120
    assert (report / "clusters.png").stat().st_size > 0
