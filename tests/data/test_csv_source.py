"""``emkit.data.from_csv``: a CSV file streamed with pyarrow as an out-of-core source.

The values every test expects are the file's as NumPy's own text parser
(``numpy.loadtxt``) reads them, or the matrix the test wrote with ``repr`` of each
float (which reads back exactly); fits are compared with the in-memory fit of the
same rows from the same start.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import emkit
from emkit.data import from_csv
from emkit.data.tables import CsvSource


def write_csv(path: Path, X: np.ndarray, names=None, cells=None) -> Path:
    """``X`` with a header, each float as its ``repr``; ``cells`` replaces some cells."""
    names = names or [f"c{j}" for j in range(X.shape[1])]
    rows = [[repr(float(v)) for v in row] for row in X]
    for (i, j), text in (cells or {}).items():
        rows[i][j] = text
    path.write_text("\n".join([",".join(names), *(",".join(r) for r in rows)]) + "\n")
    return path


@pytest.fixture(scope="module")
def long_file(tmp_path_factory):
    """150,000 x 3 numbers with six decimals (about 4 MB: many of pyarrow's blocks)."""
    X = np.round(np.random.default_rng(0).normal(size=(150_000, 3)), 6)
    path = tmp_path_factory.mktemp("csv") / "long.csv"
    np.savetxt(path, X, fmt="%.6f", delimiter=",", header="a,b,c", comments="")
    return path, np.loadtxt(path, delimiter=",", skiprows=1)


def test_from_csv_needs_no_pandas(tmp_path):
    """In a child process where pandas cannot be imported (as if not installed), a
    table with missing values and a sequence source read, and pandas stays out."""
    X = np.random.default_rng(1).normal(size=(50, 2))
    write_csv(tmp_path / "x.csv", X, ["a", "b"], {(3, 1): "NA", (7, 0): ""})
    (tmp_path / "s.csv").write_text("id,x\nu,1\nu,2\nv,3\n")
    code = textwrap.dedent(
        f"""
        import json, sys

        class NoPandas:
            def find_spec(self, name, path=None, target=None):
                if name == "pandas" or name.startswith("pandas."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}")

        sys.meta_path.insert(0, NoPandas())
        import numpy as np
        from emkit.data import from_csv

        src = from_csv({str(tmp_path / "x.csv")!r}, batch_size=16)
        X = np.concatenate(list(src.batches()))
        seqs = from_csv({str(tmp_path / "s.csv")!r}, sequence_column="id")
        print(json.dumps([X.tolist(), seqs.lengths.tolist(), "pandas" in sys.modules]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    values, lengths, pandas_loaded = json.loads(out.stdout.replace("NaN", "null"))
    expected = X.copy()
    expected[3, 1] = expected[7, 0] = np.nan
    np.testing.assert_array_equal(np.array(values, dtype=float), expected)
    assert lengths == [2, 1] and not pandas_loaded


@pytest.mark.parametrize("batch_size", [1, 7, 4096, 60_000, 10**6])
def test_batches_are_the_files_rows_at_every_boundary(long_file, batch_size):
    path, X = long_file
    if batch_size == 1:  # row by row: a short file
        X = X[:300]
        path = write_csv(path.with_name("short.csv"), X, ["a", "b", "c"])
    src = from_csv(path, batch_size=batch_size)
    blocks = list(src.batches())
    n = len(X)
    assert src.n_samples == n and src.n_features == 3 and src.n_batches == len(blocks)
    sizes = [len(b) for b in blocks]
    assert sizes == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    np.testing.assert_array_equal(np.concatenate(blocks), X)
    assert all(b.dtype == np.float64 and b.shape[1] == 3 for b in blocks)
    # a second pass gives the same rows (the source re-reads the file)
    np.testing.assert_array_equal(np.concatenate(list(src.batches())), X)


def test_columns_are_chosen_by_name_in_any_order(long_file):
    path, X = long_file
    src = from_csv(path, ["c", "a"], batch_size=50_000)
    np.testing.assert_array_equal(np.concatenate(list(src.batches())), X[:, [2, 0]])
    np.testing.assert_array_equal(src._read(123_456, 123_470), X[123_456:123_470][:, [2, 0]])


MARKERS = ["", "NA", "na", "NaN", "nan", "null", "NULL", "None", "none", " NA", "nA "]


def test_missing_markers_in_any_case_and_padding_are_nan(tmp_path):
    X = np.random.default_rng(2).normal(size=(40, 3))
    cells = {(i + 2, i % 3): marker for i, marker in enumerate(MARKERS)}
    path = write_csv(tmp_path / "x.csv", X, ["a", "b", "c"], cells)
    expected = X.copy()
    for i, j in cells:
        expected[i, j] = np.nan
    src = from_csv(path, batch_size=9)
    for _ in range(2):  # padded markers send later passes to the text reader
        np.testing.assert_array_equal(np.concatenate(list(src.batches())), expected)
    np.testing.assert_array_equal(src._read(10, 13), expected[10:13])
    np.testing.assert_allclose(src.column_mean(), np.nanmean(expected, axis=0), rtol=1e-13)


def test_quoted_cells_line_breaks_crlf_and_a_tsv(tmp_path):
    X = np.random.default_rng(3).normal(size=(30, 2))
    lines = ["a,note,b"] + [
        f'"{x!r}","two\r\nlines",{y!r}' if i % 4 == 0 else f"{x!r},plain,{y!r}"
        for i, (x, y) in enumerate(X.tolist())
    ]
    (tmp_path / "q.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    src = from_csv(tmp_path / "q.csv", ["a", "b"], batch_size=8)
    assert src.n_samples == 30
    np.testing.assert_array_equal(np.concatenate(list(src.batches())), X)
    np.testing.assert_array_equal(src._read(21, 27), X[21:27])
    write_csv(tmp_path / "x.csv", X, ["a", "b"])
    (tmp_path / "x.tsv").write_text((tmp_path / "x.csv").read_text().replace(",", "\t"))
    np.testing.assert_array_equal(from_csv(tmp_path / "x.tsv").init_data(), X)


def test_a_late_read_parses_only_the_rows_near_it(long_file, tmp_path):
    """After the rows are counted, the lines of the first half of the file are joined
    into one in place (a comma for every line end: later rows keep their byte offsets):
    a read of late rows still gives the file's values, so it did not read the file
    from the top, where the rows are no longer what they were."""
    path, X = long_file
    copy = tmp_path / "long.csv"
    copy.write_bytes(path.read_bytes())
    src = from_csv(copy, batch_size=50_000)
    assert src.n_samples == len(X)
    np.testing.assert_array_equal(src._read(140_001, 140_777), X[140_001:140_777])
    data = bytearray(copy.read_bytes())
    body, half = data.index(b"\n") + 1, len(data) // 2  # after the header
    data[body:half] = data[body:half].replace(b"\n", b",")
    copy.write_bytes(bytes(data))
    for lo, hi in [(140_001, 140_777), (130_000, 150_000), (149_990, 150_000)]:
        np.testing.assert_array_equal(src._read(lo, hi), X[lo:hi])
    with pytest.raises(ValueError, match=r"line 2 has .* fields but the header has 3"):
        src._read(0, 10)
    with pytest.raises(ValueError, match=r"before row 150001; was it changed"):
        src._read(149_990, 150_001)


def test_a_quoted_file_reads_late_rows_by_streaming(long_file, tmp_path):
    path, X = long_file
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    quoted = tmp_path / "quoted.csv"  # quotes: rows cannot be found from line ends
    quoted.write_text('"a","b","c"\n' + "".join(f'"{a}",{b},{c}\n' for a, b, c in rows))
    src = from_csv(quoted, batch_size=40_000)
    assert src.n_samples == len(X)
    np.testing.assert_array_equal(src._read(140_001, 140_777), X[140_001:140_777])
    np.testing.assert_array_equal(np.concatenate(list(src.batches())), X)


def test_delayed_parts_and_pickled_sources_read_their_own_rows(long_file):
    pytest.importorskip("dask")
    import dask

    path, X = long_file
    src = from_csv(path, batch_size=40_000)
    parts = dask.compute(*src.delayed_parts(), scheduler="sync")
    np.testing.assert_array_equal(np.concatenate(parts), X)
    again = pickle.loads(pickle.dumps(src))
    np.testing.assert_array_equal(again._read(99_999, 100_100), X[99_999:100_100])


@pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")
def test_gaussian_mixture_on_a_csv_with_missing_values_equals_the_in_memory_fit(tmp_path):
    rng = np.random.default_rng(4)
    X = np.vstack([rng.normal(-2.0, 1.0, (600, 3)), rng.normal(2.0, 0.7, (400, 3))])
    X = X[rng.permutation(len(X))] + 30.0
    holes = rng.random(X.shape) < 0.05
    cells = {
        (int(i), int(j)): ("" if k % 2 else "NA") for k, (i, j) in enumerate(np.argwhere(holes))
    }
    path = write_csv(tmp_path / "x.csv", X, ["a", "b", "c"], cells)
    Xm = np.where(holes, np.nan, X)
    kw = dict(n_components=2, covariance_type="full", tol=0, max_iter=10, random_state=0)
    ref = emkit.GaussianMixture(**kw).fit(Xm)
    fit = emkit.GaussianMixture(**kw).fit(from_csv(path, batch_size=300))
    assert fit.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(fit.loglik_, ref.loglik_, rtol=1e-10)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(fit, name), getattr(ref, name), rtol=1e-10, atol=0)


def test_sequences_from_a_csv_and_their_ids(tmp_path):
    X = np.random.default_rng(5).normal(size=(10, 2))
    ids = ["s1"] * 3 + ["s2"] * 4 + ["3"] * 3
    lines = ["a,seq,b"] + [f"{x!r},{s},{y!r}" for (x, y), s in zip(X.tolist(), ids)]
    (tmp_path / "x.csv").write_text("\n".join(lines) + "\n")
    seqs = from_csv(tmp_path / "x.csv", sequence_column="seq", batch_size=5)
    assert seqs.lengths.tolist() == [3, 4, 3] and seqs.n_features == 2
    batches = list(seqs.batches())
    assert [b.offsets.tolist() for b in batches] == [[0, 3], [0, 4], [0, 3]]
    np.testing.assert_array_equal(np.concatenate([b.data for b in batches]), X)
    table = CsvSource(tmp_path / "x.csv", exclude=("seq",))
    assert [c.tolist() for c in table.column_chunks("seq")] == [ids]
    lines[5] = lines[5].replace(",s2,", ",NA,")
    (tmp_path / "gap.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="missing id at row 4"):
        from_csv(tmp_path / "gap.csv", sequence_column="seq")


def test_bad_files_and_columns_are_refused_clearly(long_file, tmp_path):
    path, X = long_file
    with pytest.raises(FileNotFoundError, match="no such CSV file"):
        from_csv(tmp_path / "nothing.csv")
    with pytest.raises(
        ValueError, match=r"columns \['z'\] are not in .* \(it has \['a', 'b', 'c'\]\)"
    ):
        from_csv(path, ["a", "z"])
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        from_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="has no rows"):
        _ = from_csv(tmp_path / "header.csv").n_samples
    Y = X[:100]
    lines = ["a,b,kind,c"] + [f"{a!r},{b!r},k{i},{c!r}" for i, (a, b, c) in enumerate(Y.tolist())]
    labelled = tmp_path / "l.csv"
    labelled.write_text("\n".join(lines) + "\n")
    with pytest.raises(TypeError, match=r"columns kind \(text, such as 'k0'\) of .* not numeric"):
        from_csv(labelled)
    np.testing.assert_array_equal(from_csv(labelled, ["a", "c"]).init_data(), Y[:, [0, 2]])
    # text far down, past the rows checked at the start: the pass names column and line
    late = write_csv(tmp_path / "late.csv", X[:3000], ["a", "b", "c"], {(2500, 1): "abc"})
    src = from_csv(late, batch_size=1000)
    with pytest.raises(ValueError, match="column 'b' has the non-numeric value 'abc' at line 2502"):
        list(src.batches())
    ragged = write_csv(tmp_path / "r.csv", X[:3000], ["a", "b", "c"], {(2000, 2): "1,2"})
    with pytest.raises(ValueError, match="line 2002 has 4 fields but the header has 3 fields"):
        list(from_csv(ragged).batches())
    with pytest.raises(TypeError, match="columns must be a non-empty list"):
        from_csv(path, "a")
    grown = write_csv(tmp_path / "g.csv", X[:50], ["a", "b", "c"])
    src = from_csv(grown, batch_size=20)
    assert src.n_samples == 50
    with grown.open("a") as fh:
        fh.write("1,2,3\n")
    with pytest.raises(ValueError, match="has 51 rows, not the 50 counted before"):
        list(src.batches())
