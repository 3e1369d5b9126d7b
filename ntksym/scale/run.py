"""What ``ntksym kernel`` does beyond one in-memory call: plan a run (``--dry-run``: pairs,
calibrated time, peak memory), fit it to ``--max-memory`` (refuse, or re-tile), and hand it to
the tiled engine (:mod:`ntksym.scale.tiles`), locally or on Dask (:mod:`ntksym.scale.cluster`).

Kept apart from :mod:`ntksym.scale.tiles`, which is the durable tile store itself (manifest, memmap,
resume); this module only decides sizes and estimates times.

>>> parse_bytes("512M") == 512 * 2**20, human_bytes(3 * 2**30)
(True, '3.0 GiB')
"""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

from ntksym.engine.common import check_data, output_names
from ntksym.errors import DataError
from ntksym.scale.tiles import (
    DEFAULT_TILE,
    compute_tile,
    compute_tiles,
    manifest_path,
    pairs_computed,
    tile_grid,
)

# ------------------------------------------------------------------------ planning

_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "KIB": 2**10, "M": 2**20, "MB": 2**20,
          "MIB": 2**20, "G": 2**30, "GB": 2**30, "GIB": 2**30, "T": 2**40, "TB": 2**40,
          "TIB": 2**40}


def parse_bytes(text):
    """``"4G"``, ``"512MB"``, ``"1.5GiB"`` or a plain number of bytes -> int (binary units).

    >>> parse_bytes("1.5G") == 3 * 2**29, parse_bytes("4096")
    (True, 4096)
    """
    s = str(text).strip().upper().replace(" ", "")
    num = s.rstrip("KMGTIB")
    unit = s[len(num):]
    try:
        value = float(num) * _UNITS[unit]
    except (ValueError, KeyError):
        value = -1.0
    if not math.isfinite(value) or value < 1:     # nan, inf, 1e999, 0, 0.5 bytes
        raise DataError(f"cannot read memory size {text!r}; write a positive size such as "
                        "512M, 4G or 1.5GiB")
    return int(value)


def human_bytes(n):
    """1536 -> '1.5 KiB'."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def current_rss():
    """Resident set size of this process now, in bytes (Linux /proc; else the high-water
    mark from getrusage, an over-estimate)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def process_age():
    """Seconds since this process started (Linux /proc; 0 where unknown)."""
    try:
        with open("/proc/self/stat") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def tile_working_bytes(tile, dtype="float64", in_flight=0, n_outputs=1):
    """Bytes a tiled run holds per tile besides the output memmaps: the Gram block (computed in
    place for one float64 kernel), a float64 buffer per kernel plus its cast otherwise, a
    mirror copy at the end, and ``in_flight`` finished tiles queued from Dask workers."""
    t2 = tile * tile
    item = np.dtype(dtype).itemsize
    one = n_outputs == 1 and dtype == "float64"
    per = 8 * t2 + (0 if one else n_outputs * (8 * t2 + item * t2)) + item * t2
    return per + in_flight * n_outputs * item * t2


def calibrate(arch, X, X2=None, kind="ntk", dtype="float64", tile=DEFAULT_TILE, budget_s=1.0,
              max_tiles=3, per_layer=False):
    """(seconds per pair of the compiled program, seconds to load or compile it, how the two
    were found), without compiling anything.

    When the compiled module is on disk (or loaded), a few tiles of the real data are timed
    with it, after one tiny warm-up call that loads it; off-diagonal blocks are timed where the
    data allow, because they dominate the work, and blocks are at most 1024 rows so
    calibration stays short.  Otherwise the NumPy tier is timed on a sample and divided by the
    measured speed-up of compiled programs
    (:func:`ntksym.engine.numpy_tier.compiled_estimate`), with the time a compilation takes.
    """
    from ntksym.engine.common import compiled_on_disk, program
    from ntksym.engine.numpy_tier import compiled_estimate, supported
    prog = program(arch, per_layer)
    if not compiled_on_disk(arch, per_layer) and supported(prog) is None:
        return compiled_estimate(prog, X, X2, output_names(arch, kind, per_layer), budget_s / 2)
    cols_src = X if X2 is None else X2
    b = max(1, min(int(tile), 1024, X.shape[0]))
    t = time.perf_counter()
    compute_tile(arch, X[:2], cols_src[:2], kind=kind, dtype=dtype,         # load the kernel
                 per_layer=per_layer)
    load_seconds = time.perf_counter() - t
    spent, pairs, k = 0.0, 0, 0
    while k < max_tiles and (k == 0 or spent < budget_s):
        r0 = (k * b) % max(1, X.shape[0] - b + 1)
        rows = X[r0:r0 + b]
        if X2 is None and X.shape[0] >= 2 * b:
            c0 = (r0 + b) % (X.shape[0] - b + 1)
            cols = X[c0:c0 + b]
        elif X2 is None:
            cols = None
        else:
            cols = X2[:b]
        t = time.perf_counter()
        compute_tile(arch, rows, cols, kind=kind, dtype=dtype, per_layer=per_layer)
        spent += time.perf_counter() - t
        r = rows.shape[0]
        pairs += r * (r + 1) // 2 if cols is None else r * cols.shape[0]
        k += 1
    return spent / max(pairs, 1), load_seconds, f"compiled program timed on {pairs} pairs"


def plan(arch, X, X2=None, kind="ntk", dtype="float64", tile=None, max_memory=None,
         parallel=1, in_flight=0, calibrate_time=True, per_layer=False, engine="compiled"):
    """What a run would cost, before running it: pairs, tiles, output size, memory and time.

    ``max_memory`` (bytes) bounds the memory the run cannot give back: this process now
    (interpreter, compiled kernel, data) plus the per-tile buffers.  The output memmap is not
    counted against it: its pages are file-backed page cache, written back and reclaimed by
    the OS under pressure (they do show in RSS, so ``peak_rss_bytes`` includes them).  When the
    tiles would not fit, the tile size shrinks to fit (``retiled``); when even the base does
    not fit, DataError.  ``parallel`` divides the time estimate (remote Dask workers, each
    with as many cores as this machine).  X and X2 are data already checked
    (:func:`ntksym.engine.common.check_data`), as :func:`kernel_command` passes them.

    ``engine``: "numpy" times the NumPy tier itself (an in-memory run that the automatic
    choice evaluates without compiling); otherwise :func:`calibrate`.

    Example: ``plan(arch, X, tile=2048, max_memory=parse_bytes("8G"))["estimated_seconds"]``.
    """
    n_out = len(output_names(arch, kind, per_layer))
    n1 = X.shape[0]
    n2 = n1 if X2 is None else X2.shape[0]
    symmetric = X2 is None
    tile = int(tile or DEFAULT_TILE)
    info = {"shape": [n1, n2], "symmetric": symmetric, "kind": kind, "dtype": dtype}
    if calibrate_time:
        # first: it may load the compiled kernel, which the memory baseline must include
        t = time.perf_counter()
        if engine == "numpy":
            from ntksym.engine.common import program
            from ntksym.engine.numpy_tier import time_numpy
            spp, timed = time_numpy(program(arch, per_layer), X, X2,
                                    output_names(arch, kind, per_layer))
            load, how = 0.0, f"NumPy tier (no compile) timed on {timed} pairs"
        else:
            spp, load, how = calibrate(arch, X, X2, kind=kind, dtype=dtype,
                                       tile=min(tile, 1024), per_layer=per_layer)
        info.update(calibration_seconds=time.perf_counter() - t, load_seconds=load,
                    estimate=how)
    base = current_rss()
    if engine != "numpy" and "numba" not in sys.modules:
        base += NUMBA_RSS_BYTES             # not loaded for the estimate
    retiled = False
    if max_memory is not None:
        if base + tile_working_bytes(16, dtype, in_flight, n_out) > max_memory:
            raise DataError(f"--max-memory {human_bytes(max_memory)} is below what this process "
                            f"already holds ({human_bytes(base)}: interpreter, compiled kernel, "
                            "data); raise it")
        while tile > 16 and base + tile_working_bytes(tile, dtype, in_flight, n_out) > max_memory:
            tile = max(16, int(tile * 0.8))
            retiled = True
    item = np.dtype(dtype).itemsize
    work = tile_working_bytes(min(tile, max(n1, n2)), dtype, in_flight, n_out)
    out_bytes = n_out * n1 * n2 * item
    info.update(pairs=pairs_computed(n1, n2, symmetric), tile=tile, retiled=retiled,
                tiles=len(tile_grid(n1, n2, tile, symmetric)), output_bytes=out_bytes,
                base_rss_bytes=base, working_bytes=work,
                peak_rss_bytes=base + work + out_bytes)
    if calibrate_time:
        # mirroring the lower triangle is a memory copy of half the output
        mirror = (out_bytes / 2) / 1e9 if symmetric else 0.0
        info.update(seconds_per_pair=spp,
                    estimated_seconds=info["pairs"] * spp / max(1, parallel) + mirror)
    return info


#: what importing Numba and loading a compiled kernel add to the resident memory (measured:
#: about 120 MiB), counted when the estimate did not load them
NUMBA_RSS_BYTES = 120 * 2**20


def in_memory_bytes(n1, n2, n_outputs=1, dtype="float64"):
    """Bytes the plain (untiled) engine holds: the Gram matrix (reused as the output when one
    float64 kernel is asked) or a float64 stack of outputs plus their casts."""
    g = n1 * n2 * 8
    if n_outputs == 1 and dtype == "float64":
        return g
    return g + n_outputs * n1 * n2 * 8 + (n_outputs * n1 * n2 * 4 if dtype == "float32" else 0)


# ------------------------------------------------------------------------ the CLI's entry

def _say(msg):
    print(f"ntksym: {msg}", file=sys.stderr, flush=True)


def kernel_command(arch, X, X2=None, *, output=None, kind="ntk", per_layer=False,
                   dtype="float64", threads=None, tile=None, resume=False, force=False,
                   dry_run=False, max_memory=None, scheduler=None, workers=None, progress=None,
                   engine="auto"):
    """What ``ntksym kernel`` does with --tile/--resume/--dry-run/--max-memory/--scheduler/
    --workers: returns the summary dict to print, or None when the plain in-memory run fits
    within --max-memory and nothing else asked for tiles (the caller then runs it).

    ``engine``: the engine of an in-memory run, as ``ntksym.kernel`` takes it (a dry run
    estimates that engine); tiles always run the compiled program.

    Example: ``kernel_command(arch, X, output="K.npy", tile=1024, resume=True)``.
    """
    names = output_names(arch, kind, per_layer)
    # the one check of the data: plan, calibration and tiles take these arrays as they are
    X = check_data(X, arch.input_shape, "X")
    X2 = None if X2 is None else check_data(X2, arch.input_shape, "X2")
    n1, n2 = X.shape[0], (X if X2 is None else X2).shape[0]
    max_b = parse_bytes(max_memory) if max_memory else None
    tiled = bool(tile or resume or scheduler or workers)
    if not tiled and max_b is not None:
        need = current_rss() + in_memory_bytes(n1, n2, len(names), dtype)
        if need <= max_b and not dry_run:
            return None
        if need > max_b:
            if not dry_run and (output is None or not str(output).endswith(".npy")):
                raise DataError(f"the in-memory kernel needs about {human_bytes(need)}, more than "
                                f"--max-memory {human_bytes(max_b)}; "
                                "to compute it in tiles instead, give -o OUT.npy")
            where = f"into {output}" if output else "(a real run needs -o OUT.npy)"
            _say(f"in memory this run needs about {human_bytes(need)} > --max-memory "
                 f"{human_bytes(max_b)}: computing in tiles {where}")
            tiled = True
    distributed = bool(scheduler or workers)
    in_flight = 0
    client = cluster = None
    try:
        if distributed:
            from ntksym.scale.cluster import connect
            client, cluster = connect(scheduler=scheduler, workers=workers, threads=threads)
            in_flight = 4 * (sum(client.nthreads().values()) or 1)
        parallel = len(client.nthreads()) if (client is not None and cluster is None) else 1
        if dry_run:
            run_engine = "compiled"
            if not tiled and engine != "compiled":
                from ntksym.engine.common import program
                from ntksym.engine.numpy_tier import choose_engine
                run_engine = choose_engine(arch, program(arch, per_layer), n1, n2, X2 is None,
                                           engine, per_layer=per_layer).engine
            p = plan(arch, X, X2, kind=kind, dtype=dtype, tile=tile, max_memory=max_b,
                     parallel=parallel, in_flight=in_flight, per_layer=per_layer,
                     engine=run_engine)
            # a real run also pays this process's start-up (imports, spec, data) and the
            # loading or compiling of the compiled kernel
            est = p["estimated_seconds"] + process_age() + p["load_seconds"]
            return {"spec": arch.name, "kernel": kind, "kernels": names, "dtype": dtype,
                    "engine": run_engine, "estimate": p["estimate"],
                    "shape": p["shape"],
                    "pairs": p["pairs"], "tile": p["tile"], "tiles": p["tiles"],
                    "retiled_for_max_memory": p["retiled"],
                    "seconds_per_pair": float(f"{p['seconds_per_pair']:.4g}"),
                    "estimated_seconds": round(est, 1),
                    "estimated_time": time.strftime("%H:%M:%S", time.gmtime(est))
                    if est < 86400 else f"{est / 86400:.1f} days",
                    "output_bytes": p["output_bytes"],
                    "output_size": human_bytes(p["output_bytes"]),
                    "working_memory": human_bytes(p["base_rss_bytes"] + p["working_bytes"]),
                    "peak_rss_estimate": human_bytes(p["peak_rss_bytes"]),
                    "peak_rss_estimate_bytes": p["peak_rss_bytes"],
                    "workers": parallel if client is not None else None}
        if output is None:
            raise DataError("a tiled run writes to a file: give -o OUT.npy")
        if client is None:                  # tiles compile here: say so on a terminal
            from ntksym.engine.common import announce_compile
            announce_compile(arch, per_layer, progress)
        if max_b is not None:
            # load the compiled kernel first: the memory the tiles may use is what is left
            # after it (as --dry-run measures it)
            compute_tile(arch, X[:2], (X if X2 is None else X2)[:2], kind=kind, dtype=dtype,
                         per_layer=per_layer)
            p = plan(arch, X, X2, kind=kind, dtype=dtype, tile=tile, max_memory=max_b,
                     in_flight=in_flight, calibrate_time=False, per_layer=per_layer)
            if p["retiled"]:
                _say(f"tiles of {p['tile']} rows fit --max-memory {human_bytes(max_b)}"
                     + (f" (asked: {tile})" if tile else ""))
                tile = p["tile"]
            elif tile is None and not resume:
                tile = p["tile"]
        # how often tile data are made durable and recorded; tests shorten it
        every = float(os.environ.get("NTKSYM_CHECKPOINT_SECONDS", "0.5"))
        info = compute_tiles(arch, X, X2, output=output, kind=kind, dtype=dtype, tile=tile,
                             resume=resume, force=force, progress=progress, client=client,
                             threads=threads, checkpoint_every=every, per_layer=per_layer)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return {"spec": arch.name, "kernels": names, "shape": info["shape"], "dtype": dtype,
            "tile": info["tile"], "tiles": info["tiles"], "tiles_computed": info["computed"],
            "seconds": info["seconds"],
            "output": info["output"] if len(names) == 1 else info["files"],
            "manifest": str(manifest_path(output))}
