"""The README's examples and the docs' examples run as written, in order, from a scratch directory,
and leave nothing in the repository (issue 18).

What runs.  The fenced blocks of the pages named in ``DEFAULT_PAGES`` and ``SLOW_PAGES``:

- ```` ```bash ```` blocks: every line, as a reader would paste it;
- ```` ```console ```` blocks: the lines after a ``$ `` prompt (and their ``\\`` continuations);
  the other lines are the output shown, not checked;
- ```` ```python ```` blocks: all of a page's Python blocks as one script (later blocks use the
  names earlier ones define), after the page's shell blocks.

Not run: ```` ```text ````, ```` ```toml ````, ```` ```json ````, ```` ```pycon ```` and other
languages (outputs, file contents), and any block whose fence is preceded (blank lines
allowed) by an HTML comment ``<!-- norun -->`` or ``<!-- norun: why -->``; say why in the
comment (a GPU, a cluster, minutes of work).  A fence without a language is refused on the
named pages, so that a command cannot hide from this test in an unlabelled block.

Within the blocks that run, ``pip install ...`` (the project is installed already) and
``python -m pytest ...`` (the suite cannot run itself) are left out; everything else runs.

Where.  A fresh ``tmp_path`` per page holds symbolic links ``spec -> <repo>/spec`` and
``docs/examples -> <repo>/docs/examples``, so the examples' repository-relative paths read the
shipped files and every file they write lands in the scratch directory.  ``ntksym`` and
``python`` on the ``PATH`` run this checkout's code (``cli.py`` and ``sys.executable`` with the
repository first on ``PYTHONPATH``), whatever ``ntksym`` is installed.  Afterwards ``git status
--ignored`` of the repository (``__pycache__`` aside) must be what it was before.

Pages, and the time budget (with a warm kernel cache the default set took 86 s of wall time, about
45 s of CPU, at load average 5 on the shared 2-core machine; the slow set about 5 minutes more):

- default: README.md, docs/spec.md, docs/data.md, docs/bounds.md, docs/output.md,
  docs/activations.md;
- slow: docs/usage.md (the full command-line tour, a GP fit), docs/empirical.md,
  docs/rnn.md (sequence programs, a quick reproduction), docs/predict.md (kernel regression,
  cross-validated estimators), docs/hyperparameters.md (GP fits), docs/pruning.md (finite pruned
  CNNs, quick reproductions), docs/cnn.md (a CNTK compile);
- not named: docs/gpu.md (needs a CUDA GPU), docs/scale.md (a 20 000-point run and cluster
  set-ups), docs/reliability.md and docs/startup.md (messages only), docs/graphs.md (its two
  commands regenerate the shipped figures: 5 to 16 minutes), docs/benchmarks.md (the benchmark
  scripts, minutes each), docs/architecture.md and docs/conventions.md (no commands).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testkit import ROOT

DEFAULT_PAGES = [
    "README.md",
    "docs/spec.md",
    "docs/data.md",
    "docs/bounds.md",
    "docs/output.md",
    "docs/activations.md",
]
SLOW_PAGES = [
    "docs/usage.md",
    "docs/empirical.md",
    "docs/rnn.md",
    "docs/predict.md",
    "docs/hyperparameters.md",
    "docs/pruning.md",
    "docs/cnn.md",
]

RUN_LANGS = {"bash", "console", "python"}
LINKED = ["spec", "docs/examples"]          # read-only inputs the examples name
BLOCK_TIMEOUT = 600

_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_NORUN = re.compile(r"^<!--\s*norun\b.*-->\s*$")
_PIP = re.compile(r"^\s*pip3? install\b[^&;]*(?:&&|;)\s*")


def blocks(page):
    """The fenced blocks of ``page``: (first line number, language, text, norun)."""
    lines = (ROOT / page).read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = m.groups()
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        prev = next((s.strip() for s in reversed(lines[:i]) if s.strip()), "")
        body = [s[len(indent):] if s.startswith(indent) else s for s in lines[i + 1:j]]
        out.append((i + 1, lang, "\n".join(body), bool(_NORUN.match(prev))))
        i = j + 1
    return out


def _logical_lines(text):
    """Lines with their backslash continuations joined (kept as written, newlines included)."""
    out, cur = [], []
    for line in text.splitlines():
        cur.append(line)
        if not line.rstrip().endswith("\\"):
            out.append("\n".join(cur))
            cur = []
    if cur:
        out.append("\n".join(cur))
    return out


def shell_script(lang, text):
    """The commands of a bash or console block, without installs and test runs."""
    if lang == "console":
        cmds, cont = [], False
        for line in text.splitlines():
            if line.startswith("$ "):
                cmds.append(line[2:])
            elif cont:
                cmds.append(line)
            else:
                continue
            cont = line.rstrip().endswith("\\")
        text = "\n".join(cmds)
    keep = []
    for cmd in _logical_lines(text):
        cmd = _PIP.sub("", cmd)
        if re.match(r"^\s*pip3? install\b", cmd) or "python -m pytest" in cmd:
            continue
        keep.append(cmd)
    return "\n".join(keep)


def _repo_state():
    """``git status`` of the repository, ignored files included, caches aside (None when the
    tree is not a git checkout)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    r = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
                       cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return sorted(line for line in r.stdout.splitlines()
                  if "__pycache__" not in line and ".pytest_cache" not in line
                  and ".hypothesis" not in line)


def _scratch(tmp_path):
    """The scratch directory: links to the shipped inputs, and a bin/ whose ``ntksym`` and
    ``python`` run this checkout."""
    work = tmp_path / "work"
    work.mkdir()
    for rel in LINKED:
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).symlink_to(ROOT / rel, target_is_directory=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "python3").symlink_to(sys.executable)
    shim = bin_dir / "ntksym"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "cli.py"}" "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["MPLBACKEND"] = "Agg"
    return work, env


def _run(argv, *, stdin, work, env, where):
    r = subprocess.run(argv, input=stdin, cwd=work, env=env, capture_output=True, text=True,
                       timeout=BLOCK_TIMEOUT)
    if r.returncode != 0:
        out = (r.stdout + r.stderr)[-6000:]
        pytest.fail(f"{where} does not run as written (exit {r.returncode}):\n"
                    f"{stdin}\n--- output (tail) ---\n{out}", pytrace=False)


def _pages():
    return ([pytest.param(p, id=p) for p in DEFAULT_PAGES]
            + [pytest.param(p, id=p, marks=pytest.mark.slow) for p in SLOW_PAGES])


@pytest.mark.parametrize("page", DEFAULT_PAGES + SLOW_PAGES)
def test_fences_are_labelled(page):
    """Every fence on a named page says its language, so a command cannot hide unlabelled."""
    bare = [line for line, lang, _, _ in blocks(page) if not lang]
    assert not bare, f"{page}: fences without a language at lines {bare} (use text, bash ...)"


@pytest.mark.parametrize("page", _pages())
def test_examples_run_as_written(page, tmp_path):
    before = _repo_state()
    work, env = _scratch(tmp_path)
    todo = [(line, lang, text) for line, lang, text, norun in blocks(page)
            if lang in RUN_LANGS and not norun]
    assert todo, f"{page} is named but has no runnable block"
    python = []
    for line, lang, text in todo:
        if lang == "python":
            python.append(f"# {page}:{line}\n{text}\n")
            continue
        script = shell_script(lang, text)
        if script.strip():
            _run(["bash", "-euo", "pipefail", "-s"], stdin=script + "\n", work=work, env=env,
                 where=f"{page}:{line} ({lang})")
    if python:
        _run([sys.executable, "-"], stdin="\n".join(python), work=work, env=env,
             where=f"{page}: its python blocks")
    assert _repo_state() == before, f"{page}'s examples changed files in the repository"


def test_shell_script_filters():
    """The filters of the runner itself: prompts, continuations, installs, test runs."""
    console = "$ ntksym check a.toml \\\n    --json\n{...}\n$ echo hi\nhi"
    assert shell_script("console", console) == "ntksym check a.toml \\\n    --json\necho hi"
    bash = "pip install -e '.[data]' && ntksym kernel s.toml\npip install x\n" \
           "pip install -e '.[test]' && python -m pytest -q\nls"
    assert shell_script("bash", bash) == "ntksym kernel s.toml\nls"
    assert Path(__file__).is_relative_to(ROOT)


def test_readme_keeps_the_two_commands_and_ci_runs_the_second():
    """The README's two commands stay as they are, and `.ci/run` runs the README's test command
    (its pytest line, with the same options)."""
    readme = (ROOT / "README.md").read_text()
    main = ("pip install -e '.[data]' && ntksym kernel spec/cntk_mlp_depth3.toml "
            "--dataset digits:200 -o K.npy --force")
    tests = "pip install -e '.[test]' && python -m pytest -q -n auto --dist loadfile"
    assert main in readme and tests in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^python3? -m pytest -q -n auto --dist loadfile\b", ci, re.M), \
        ".ci/run no longer runs the README's test command"
    assert "-e '.[test]'" in ci
