"""`ntksym reproduce` checks before work (issue 15): existing outputs need --force, the output
directory must be writable, a figure needs matplotlib; each refusal is one line, exit 2."""

import sys

import pytest

import cli
from ntksym.apps import reproduce as registry


def run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.fixture
def calls(monkeypatch):
    """Replace every reproduction by a stub recording its calls (no work in these tests)."""
    seen = []
    registry.names()
    for name, (desc, fn, mod) in list(registry.REGISTRY.items()):
        def stub(out_dir, quick=False, _name=name):
            seen.append(_name)
            return {"quick": quick}
        monkeypatch.setitem(registry.REGISTRY, name, (desc, stub, mod))
    return seen


def one_error(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ntksym: error: "), err
    return lines[0]


def test_every_reproduction_names_its_outputs():
    for name in registry.names():
        files = registry.OUTPUTS[name]
        assert files and all(f.endswith((".csv", ".png")) for f in files), name


def test_existing_output_refused_without_force(capsys, tmp_path, calls):
    old = tmp_path / "yang_wang_fig1.png"
    old.write_bytes(b"keep")
    code, _, err = run(capsys, "reproduce", "yang-wang-fig1", "--out", tmp_path)
    assert code == 2 and "yang_wang_fig1.png exists; pass --force" in one_error(err)
    assert calls == [] and old.read_bytes() == b"keep"
    code, _, err = run(capsys, "reproduce", "yang-wang-fig1", "--out", tmp_path, "--force")
    assert code == 0 and calls == ["yang-wang-fig1"], err


def test_missing_matplotlib_refused_before_work(capsys, tmp_path, monkeypatch, calls):
    monkeypatch.setitem(sys.modules, "matplotlib", None)       # import matplotlib fails
    code, _, err = run(capsys, "reproduce", "yang-wang-fig1", "--quick", "--out", tmp_path)
    line = one_error(err)
    assert code == 2 and "matplotlib" in line and "pip install 'ntksym[plot]'" in line
    assert calls == [] and list(tmp_path.iterdir()) == []
    # a table-only reproduction does not need it
    code, _, err = run(capsys, "reproduce", "qian-klabjan-table2", "--quick", "--out", tmp_path)
    assert code == 0 and calls == ["qian-klabjan-table2"], err


def test_out_must_be_a_writable_directory(capsys, tmp_path, calls):
    f = tmp_path / "file"
    f.write_text("x")
    code, _, err = run(capsys, "reproduce", "qian-klabjan-table2", "--out", f)
    assert code == 2 and "is a file" in one_error(err)        # click's own check
    code, _, err = run(capsys, "reproduce", "qian-klabjan-table2", "--out", f / "sub")
    assert code == 2 and "is a file, not a directory" in one_error(err)
    assert calls == []
