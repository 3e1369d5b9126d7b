"""Checks before work: every problem a run would meet at its end is found at its start.

A command that writes a large result first checks, in this order,

1. the output path: a supported format (its suffix), not a directory, its nearest existing
   parent a directory that this process may write in (missing parents are created later);
2. the free disk space where the output goes, against the bytes the output will take plus a
   margin (:data:`DISK_MARGIN`, at least :data:`DISK_MARGIN_MIN`);
3. the memory an in-memory run needs, against the memory available now (``MemAvailable`` of
   /proc/meminfo, or the cgroup limit when smaller; ``os.sysconf`` elsewhere; unknown: no
   check) and against ``--max-memory``.

Each check returns a list of problems (one line each).  A run refuses with the first
(:func:`enforce`: DataError, exit status 2, nothing computed or written); ``--dry-run``
prints each as a warning (:func:`warn`) and goes on planning.  The system is asked through
:func:`shutil.disk_usage` and :func:`available_memory`, which tests replace.

>>> output_problems("K.txt", (".npy", ".npz"))
["-o K.txt: unsupported output format '.txt'; the file name must end in .npy or .npz"]
>>> disk_problems(".", 10**30)[0].startswith("not enough disk space")
True
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ntksym.errors import DataError

#: free disk required beyond the output's size: this fraction of it, at least DISK_MARGIN_MIN
DISK_MARGIN = 0.05
DISK_MARGIN_MIN = 1 << 20


def human(n):
    """Bytes as text: 1536 -> '1.5 KiB'."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def existing_parent(path):
    """The nearest existing directory entry above ``path`` (maybe a file, which is then the
    problem)."""
    p = Path(os.path.abspath(path)).parent
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def output_problems(path, formats=None, option="-o"):
    """Problems with writing a file at ``path``: its suffix not in ``formats`` (lower case,
    with the dot; None: any), a directory in its place, a parent that is a file, or a
    parent directory this process may not write in."""
    if path is None:
        return []
    p = Path(path)
    if formats and p.suffix.lower() not in formats:
        got = f"'{p.suffix}'" if p.suffix else "none"
        return [f"{option} {path}: unsupported output format {got}; the file name must end "
                f"in {' or '.join(formats)}"]
    if p.is_dir():
        return [f"{option} {path} is a directory; give a file name"]
    parent = existing_parent(p)
    if not parent.is_dir():
        return [f"{option} {path}: {parent} is a file, not a directory"]
    if not os.access(parent, os.W_OK | os.X_OK):
        return [f"{option} {path}: cannot write in {parent} (permission denied or a "
                "read-only file system)"]
    return []


def directory_problems(path, option="--out"):
    """Problems with writing files into directory ``path`` (created if missing)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        return [f"{option} {path} is a file, not a directory"]
    parent = p if p.exists() else existing_parent(p)
    if not parent.is_dir():
        return [f"{option} {path}: {parent} is a file, not a directory"]
    if not os.access(parent, os.W_OK | os.X_OK):
        return [f"{option} {path}: cannot write in {parent} (permission denied or a "
                "read-only file system)"]
    return []


def free_disk(path):
    """Free bytes on the file system that will hold ``path`` (None where unknown)."""
    try:
        where = Path(path) if Path(path).is_dir() else existing_parent(path)
        return int(shutil.disk_usage(where).free)
    except OSError:
        return None


def disk_problems(path, need, option="-o"):
    """Problems with ``need`` more bytes at ``path``: fewer free than need plus the margin."""
    if path is None or need <= 0:
        return []
    free = free_disk(path)
    want = need + max(DISK_MARGIN * need, DISK_MARGIN_MIN)
    if free is None or free >= want:
        return []
    return [f"not enough disk space for {option} {path}: the output needs about {human(need)} "
            f"(plus a {human(want - need)} margin) but {human(free)} is free there"]


def _meminfo_available():
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available():
    """Room left under a cgroup v2 memory limit (containers, batch jobs), None if no limit."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def available_memory():
    """Bytes of memory a new allocation can get now without swapping: MemAvailable (Linux),
    capped by a cgroup limit; ``os.sysconf`` available pages elsewhere; None where unknown."""
    avail = _meminfo_available()
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            avail = None
    cg = _cgroup_available()
    if cg is not None:
        avail = cg if avail is None else min(avail, cg)
    return avail


def memory_problems(need, what, advice):
    """Problems with allocating ``need`` bytes for ``what``: more than is available now."""
    avail = available_memory()
    if avail is None or need <= avail:
        return []
    return [f"{what} needs about {human(need)} of memory but {human(avail)} is available; "
            f"{advice}"]


def kernel_problems(output, n1, n2, n_outputs, dtype, *, tiled, resume=False,
                    max_memory=None, output_files=()):
    """The problems of ``ntksym kernel`` with an (n1, n2) result of ``n_outputs`` kernels in
    ``dtype``: disk for the output (``output_files``: the files a tiled run writes, whose
    already allocated blocks a resumed run does not need again) and, for an in-memory run,
    memory against the available memory and ``max_memory`` (bytes or None)."""
    from ntksym.scale.run import in_memory_bytes
    item = 4 if dtype == "float32" else 8
    out_bytes = n_outputs * n1 * n2 * item
    problems = []
    if output is not None:
        need = out_bytes
        if resume:
            for f in output_files:
                try:
                    need -= os.stat(f).st_blocks * 512
                except (OSError, AttributeError):
                    pass
        problems += disk_problems(output, need)
    in_memory = not tiled and (max_memory is None
                               or in_memory_bytes(n1, n2, n_outputs, dtype) <= max_memory)
    if in_memory:
        need = in_memory_bytes(n1, n2, n_outputs, dtype)
        problems += memory_problems(
            need, f"the in-memory kernel ({n1} x {n2}, {n_outputs} kernel(s), {dtype})",
            "compute it in tiles on disk instead: --tile 4096 -o OUT.npy (or --max-memory "
            "SIZE -o OUT.npy)")
    return problems


def enforce(problems):
    """Refuse with the first problem: DataError (exit status 2, one line)."""
    if problems:
        raise DataError(problems[0])


def report(problems, dry_run):
    """--dry-run: print the problems as warnings; otherwise refuse with the first.  Returns
    them."""
    warn(problems) if dry_run else enforce(problems)
    return problems


def plan_warnings(summary, problems):
    """A --dry-run summary of :func:`ntksym.scale.run.kernel_command` with the memory the
    planned run holds (the process and its tile buffers; the output memmap is file-backed)
    checked against the available memory, and every warning under ``"warnings"``."""
    late = memory_problems(summary["peak_rss_estimate_bytes"] - summary["output_bytes"],
                           "the planned run (this process and its tile buffers)",
                           "lower --tile or give --max-memory")
    warn(late)
    return dict(summary, warnings=problems + late) if problems + late else summary


def warn(problems):
    """Print each problem as one ``ntksym: warning:`` line on stderr (``--dry-run``)."""
    for p in problems:
        print(f"ntksym: warning: {p}", file=sys.stderr, flush=True)


def kernel_preflight(arch, X, X2=None, *, output=None, kind="ntk", per_layer=False,
                     dtype="float64", tiled=False, resume=False, max_memory=None):
    """:func:`kernel_problems` of ``ntksym kernel`` on loaded data (X, X2 arrays with the
    examples first; ``max_memory`` as given, e.g. "8G")."""
    from ntksym.engine.common import output_names
    from ntksym.scale.run import parse_bytes
    from ntksym.scale.tiles import output_files, partial_path
    names = output_names(arch, kind, per_layer)
    n1 = len(X)
    n2 = n1 if X2 is None else len(X2)
    files = []
    if output is not None and resume:
        files = [partial_path(f) for f in output_files(output, names).values()]
    return kernel_problems(output, n1, n2, len(names), dtype, tiled=tiled, resume=resume,
                           max_memory=parse_bytes(max_memory) if max_memory else None,
                           output_files=files)


def check_output(path, force=False, formats=None, option="-o"):
    """Before the work of a command writing ``path``: refuse a bad path or format
    (:func:`output_problems`) and an existing file without ``force`` (None: no output)."""
    from ntksym.io import refuse_existing
    enforce(output_problems(path, formats, option))
    refuse_existing(path, force)
