"""CSV/TSV input for --x/--x2 (issue 18): the same kernels as .npy, rows reshaped to images and
sequences, delimiter and header options, one-line exit-2 errors naming file, line and column."""

import subprocess
import sys

import numpy as np
import pytest

from ntksym.data import load_array
from ntksym.errors import DataError
from ntksym.tabular import read_delimited, shape_rows
from testkit import ROOT

MLP_TEXT = ('name = "m"\ninput = { shape = [3] }\n[[layer]]\nkind = "dense"\nbias_var = 0.1\n'
            'activation = "erf"\n[[layer]]\nkind = "dense"\n')


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def write(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def X():
    return np.random.default_rng(0).standard_normal((5, 3))


def test_csv_tsv_and_other_delimiters_read_the_same_numbers(tmp_path, X):
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    np.savetxt(tmp_path / "x.tsv", X, delimiter="\t", header="a\tb\tc", comments="")
    np.savetxt(tmp_path / "x.txt", X, delimiter=";")
    np.savetxt(tmp_path / "w.dat", X, delimiter="   ")
    for path, kw in (("x.csv", {}), ("x.tsv", {}), ("x.txt", {"delimiter": "semicolon"}),
                     ("x.txt", {"delimiter": ";"}), ("w.dat", {"delimiter": "whitespace"})):
        np.testing.assert_array_equal(read_delimited(tmp_path / path, **kw), X)
    # quoted cells, blank lines, a byte-order mark and spaces after the commas
    q = write(tmp_path / "q.csv", '\ufeff"x","y"\n\n"1.5", 2\n3,"-4e-1"\n\n')
    np.testing.assert_array_equal(read_delimited(q), [[1.5, 2.0], [3.0, -0.4]])


def test_header_detection_and_override(tmp_path):
    p = write(tmp_path / "h.csv", "1,2\n3,4\n")
    assert read_delimited(p).shape == (2, 2)                     # numbers: no header
    assert read_delimited(p, header=True).tolist() == [[3.0, 4.0]]
    named = write(tmp_path / "n.csv", "a,b\n3,4\n")
    assert read_delimited(named).tolist() == [[3.0, 4.0]]        # no number: a header
    with pytest.raises(DataError, match="line 1, column 1: 'a' is not a number"):
        read_delimited(named, header=False)


@pytest.mark.parametrize("text, where", [
    ("1,2\n3,abc\n", "line 2, column 2: 'abc' is not a number"),
    ("1,2\n\n3,nan\n", "line 3, column 2: 'nan' is not a finite number"),
    ("1,2\n3,inf\n", "line 2, column 2: 'inf' is not a finite number"),
    ("1,2\n3,\n", "line 2, column 2: empty cell"),
    ("1,2\n3\n", "line 2, column 2: missing; the row has 1 column, line 1 has 2"),
    ("x,y\n1,2\n3,4,5\n", "line 3, column 3: an extra cell; the row has 3 columns, line 2 has 2"),
    ("1;2\n3;4\n", "line 1, column 1: '1;2' is not a number (the file looks "
                   "semicolon-separated: pass --delimiter semicolon)"),
    ("a,1\n2,3\n", "line 1, column 1: 'a' is not a number (if line 1 is a header, pass "
                   "--header)"),
    ("a,b\n", "no data rows (only a header)"),
    ("", "no data rows"),
])
def test_bad_cells_name_file_line_and_column(tmp_path, text, where):
    p = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError) as e:
        read_delimited(p, name="--x")
    assert str(e.value).startswith(f"--x: {p}: ")
    assert where in str(e.value)


def test_rows_are_reshaped_to_the_input_shape():
    rows = np.arange(24.0).reshape(2, 12)
    img = shape_rows(rows, [2, 2, 3])
    assert img[1, 0, 1, 2] == rows[1, (0 * 2 + 1) * 3 + 2]          # channels last, row-major
    assert shape_rows(rows, [3, 4]).shape == (2, 3, 4)
    assert shape_rows(rows, [-1, 4]).shape == (2, 3, 4)
    with pytest.raises(DataError, match="rows have 12 values, but an example of the spec's "
                                        r"input shape \[8\] is 8 values"):
        shape_rows(rows, [8], "--x", "x.csv")
    with pytest.raises(DataError, match="not whole steps of 5 features"):
        shape_rows(rows, [-1, 5])


def test_load_array_refuses_other_files_with_the_formats(tmp_path):
    p = write(tmp_path / "x.json", "[1]")
    with pytest.raises(DataError, match=r"expected a .npy, .npz, .csv or .tsv file"):
        load_array(p, "--x")
    with pytest.raises(DataError, match="delimiter 'ab' must be one character"):
        load_array(p, "--x", delimiter="ab")


@pytest.fixture
def MLP(tmp_path):
    return write(tmp_path / "mlp.toml", MLP_TEXT)


def test_kernel_cli_csv_equals_npy(tmp_path, X, MLP):
    """--delimiter applies to --x and --x2 alike."""
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "z.npy", X[:2] + 1)
    np.savetxt(tmp_path / "x.txt", X, delimiter="|", header="a|b|c", comments="")
    np.savetxt(tmp_path / "z.txt", X[:2] + 1, delimiter="|")
    r1 = run_cli("kernel", MLP, "--x", "x.npy", "--x2", "z.npy", "--kernel", "both", "-o",
                 "a.npz", cwd=tmp_path)
    r2 = run_cli("kernel", MLP, "--x", "x.txt", "--x2", "z.txt", "--delimiter", "pipe",
                 "--kernel", "both", "-o", "b.npz", cwd=tmp_path)
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    for k in ("nngp", "ntk"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-15, atol=0)


def test_image_and_sequence_specs_take_flattened_rows(tmp_path):
    imgs = np.random.default_rng(1).standard_normal((3, 4, 4, 2))
    np.savetxt(tmp_path / "img.csv", imgs.reshape(3, -1), delimiter=",")
    spec = write(tmp_path / "cnn.toml", 'name = "c"\ninput = { shape = [4, 4, 2] }\n'
                 '[[layer]]\nkind = "conv"\nactivation = "relu"\n[[layer]]\n'
                 'kind = "global_avg_pool"\n[[layer]]\nkind = "dense"\n')
    np.save(tmp_path / "img.npy", imgs)
    for x, out in (("img.csv", "a.npy"), ("img.npy", "b.npy")):
        r = run_cli("kernel", spec, "--x", x, "-o", out, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    seqs = np.random.default_rng(2).standard_normal((3, 5, 4))
    np.savetxt(tmp_path / "seq.tsv", seqs.reshape(3, -1), delimiter="\t")
    np.save(tmp_path / "seq.npy", seqs)
    rnn = ROOT / "spec" / "rntk_last.toml"                     # input [-1, 4]
    for x, out in (("seq.tsv", "s1.npy"), ("seq.npy", "s2.npy")):
        r = run_cli("kernel", rnn, "--x", x, "--kernel", "nngp", "-o", out, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "s1.npy"), np.load(tmp_path / "s2.npy"))


def test_cli_errors_are_one_line_exit_2(tmp_path, MLP):
    write(tmp_path / "bad.csv", "1,2,3\n4,five,6\n")
    write(tmp_path / "short.csv", "1,2\n3,4\n")
    write(tmp_path / "ok.csv", "1,2,3\n4,5,6\n")
    for args, message in (
            (("--x", "bad.csv"), "bad.csv: line 2, column 2: 'five' is not a number"),
            (("--x", "short.csv"), "rows have 2 values, but an example of the spec's input "
                                   "shape [3] is 3 values"),
            (("--x", "ok.csv", "--x2", "bad.csv"), "--x2: bad.csv: line 2, column 2"),
            (("--x", "ok.csv", "--no-header", "--delimiter", ";"),
             "--x: ok.csv: line 1, column 1: '1,2,3' is not a number")):
        r = run_cli("kernel", MLP, *args, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert message in r.stderr, r.stderr


def test_help_documents_csv():
    r = run_cli("kernel", "--help")
    assert ".csv/.tsv" in r.stdout and "--delimiter" in r.stdout and "--no-header" in r.stdout
    for cmd in ("empirical", "converge"):
        assert "--delimiter" in run_cli(cmd, "--help").stdout
