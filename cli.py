"""The ``ntksym`` command line: thin click commands over the ntksym library.

Exit status: 0 success, 1 internal failure, 2 user error (bad spec, bad data, refused
overwrite).  Every user error is one line on stderr, without a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def _abort_while_loading(signum, frame):
    # Ctrl-C while the modules below load (seconds: sympy, networkx): nothing is written yet
    sys.stderr.write("aborted\n")
    sys.stderr.flush()
    os._exit(130)


try:
    _LOADING = signal.signal(signal.SIGINT, _abort_while_loading)
except ValueError:          # imported outside the main thread
    _LOADING = None

# Only light modules here: numpy, sympy, networkx and numba load inside the commands that use
# them, so that `ntksym --help` and the spec-only commands start fast (docs/startup.md).
import click  # noqa: E402

import ntksym  # noqa: E402  (the package itself is light: its API loads on first use)
from ntksym import console  # noqa: E402
from ntksym.bounds.commands import bounds_group  # noqa: E402
from ntksym.errors import DataError, NtksymError  # noqa: E402
from ntksym.inputs import load_examples, table_options, table_settings  # noqa: E402
from ntksym.io import atomic_write, refuse_existing, save_arrays  # noqa: E402
from ntksym.preflight import check_output  # noqa: E402

SPEC_ARG = click.argument("spec", type=click.Path(dir_okay=False))


class UserError(click.ClickException):
    exit_code = 2


class OutputPath(click.Path):
    """A file to write: click.Path(dir_okay=False) that refuses an empty name."""

    def __init__(self):
        super().__init__(dir_okay=False)

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("empty path; give a file name", param, ctx)
        return super().convert(value, param, ctx)


class ByteSize(click.ParamType):
    """A memory size such as 512M, 4G or 1.5GiB (binary units), kept as the text given."""

    name = "size"

    def convert(self, value, param, ctx):
        from ntksym.scale.run import parse_bytes
        try:
            parse_bytes(value)
        except DataError as e:
            self.fail(str(e), param, ctx)
        return value


POSITIVE = click.IntRange(min=1)


def _check_threads(threads):
    """--threads must be 1..the number of threads numba can run (NUMBA_NUM_THREADS)."""
    if threads is None:
        return
    from numba.core.config import NUMBA_NUM_THREADS
    if threads > NUMBA_NUM_THREADS:
        raise click.BadParameter(f"{threads} is more than the {NUMBA_NUM_THREADS} threads numba "
                                 f"can run here; give 1..{NUMBA_NUM_THREADS} (or set the "
                                 "NUMBA_NUM_THREADS environment variable)",
                                 param_hint="'--threads'")


def _load(spec):
    return ntksym.load_spec(spec)


def _data(x, dataset, arch, name="--x"):
    """Examples from --x FILE or --dataset NAME[:N], shaped for the spec's input."""
    from ntksym.data import load_dataset
    if (x is None) == (dataset is None):
        raise DataError(f"give exactly one of {name} FILE or --dataset NAME[:N]")
    if x is not None:               # .npy, .npz, or CSV/TSV rows (--delimiter, --header)
        return load_examples(x, arch.input_shape, name, **table_settings())
    data = load_dataset(dataset)
    X = data.X
    if len(arch.input_shape) == 3 and X.ndim == 2 and X.shape[1] == 64:
        X = X.reshape(-1, 8, 8, 1)              # digits as 8x8x1 images for image specs
    return X


def _emit(obj, as_json):
    """A summary as JSON (--json, every digit) or as text for people (ntksym.report)."""
    from ntksym.report import render, to_json
    click.echo(to_json(obj) if as_json else render(obj))


PROGRESS = click.option("--progress/--quiet", "progress", default=None,
                        help="progress on stderr (default: only when stderr is a terminal).")


def _show_progress(flag):
    """--progress/--quiet: the default of ntksym.progress until the command ends."""
    from ntksym import progress
    click.get_current_context().call_on_close(progress.configure(flag))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(ntksym.__version__, prog_name="ntksym")
def app():
    """Infinite-width NNGP and NTK kernels of MLPs, CNNs and RNNs from a spec file.

    A spec (TOML, see docs/spec.md) describes the network; ntksym derives its kernel recursion with
    sympy, evaluates it with generated Numba code, and checks it against finite networks.
    """


@app.command()
@click.argument("spec", type=click.Path(dir_okay=False), required=False)
@click.option("--keys", is_flag=False, flag_value="", default=None, metavar="[KIND]",
              help="instead of checking a spec, print the reference of layer KIND: every key "
                   "with its type, default and meaning, and an example (as docs/spec.md); "
                   "--keys alone lists the kinds.")
@click.option("--json", "as_json", is_flag=True,
              help="print the layers, shapes, constants and hash as JSON.")
def check(spec, keys, as_json):
    """Validate SPEC; print its layers, shapes and constants.

    The spec format: docs/spec.md, or `ntksym check --keys dense` for one kind."""
    if keys is not None:
        from ntksym.spec.reference import keys_text
        click.echo(keys_text(keys))
        return
    if spec is None:
        raise click.UsageError("give a SPEC file to check, or --keys [KIND] for the reference")
    from ntksym.spec.graph import graph_summary, graph_text
    arch = _load(spec)
    # the graph as plain dicts: checking a spec loads neither networkx nor sympy
    if as_json:
        _emit(dict(graph_summary(arch.layer_graph), sha256=arch.hash), True)
        return
    click.echo(graph_text(arch.layer_graph))
    click.echo(f"spec sha256: {arch.hash}")


@app.command()
@SPEC_ARG
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "png"]), default="text",
              show_default=True,
              help="text table, Graphviz DOT, or a PNG drawing (matplotlib; needs -o).")
@click.option("-o", "--output", type=OutputPath(), help="write to FILE.")
@click.option("--force", is_flag=True, help="overwrite an existing output.")
def graph(spec, fmt, output, force):
    """Print the networkx graph of SPEC as text or Graphviz DOT, or draw it to a PNG."""
    from ntksym.spec.graph import graph_dot, graph_png, graph_text
    if fmt == "png" and not output:
        raise DataError("--format png needs -o FILE.png")
    check_output(output, force, (".png",) if fmt == "png" else None)
    arch = _load(spec)
    if fmt == "png":
        graph_png(arch.graph, output)
        return
    text = graph_text(arch.layer_graph) if fmt == "text" else graph_dot(arch.layer_graph)
    _write_text(output, text, force)


@app.command()
@SPEC_ARG
@click.option("--kernel", "which", type=click.Choice(["nngp", "ntk", "both"]), default="both",
              show_default=True, help="which recursion to print (nngp omits the Theta lines).")
@click.option("--format", "fmt", type=click.Choice(["text", "latex", "python"]), default="text",
              show_default=True, help="plain text, a LaTeX align* block, or sympy source.")
@click.option("--per-layer", is_flag=True, help="keep one NTK term per trainable parameter group.")
@click.option("--gradient", is_flag=True,
              help="also the derivative recursion: the tangents dK/dtheta of every learnable "
                   "constant (docs/hyperparameters.md).")
def derive(spec, which, fmt, per_layer, gradient):
    """Print the NNGP/NTK recursion of SPEC, every constant visible."""
    arch = _load(spec)
    program = arch.derive(per_layer=per_layer, gradient=gradient)
    if which == "nngp":
        from ntksym.derive import restrict_to_nngp
        program = restrict_to_nngp(program)
    text = {"text": str, "latex": lambda p: p.latex(), "python": lambda p: p.python()}[fmt](program)
    click.echo(text)


@app.command()
@SPEC_ARG
@click.option("-o", "--output", type=OutputPath(),
              help="write the module to FILE (default: stdout).")
@click.option("--force", is_flag=True, help="overwrite an existing output.")
def codegen(spec, output, force):
    """Emit the standalone Numba module of SPEC (needs only numpy and numba)."""
    from ntksym.codegen.generate import generate_source
    check_output(output, force)
    arch = _load(spec)
    _write_text(output, generate_source(arch.derive()), force)


def _write_text(output, text, force):
    if output is None:
        click.echo(text)
        return
    refuse_existing(output, force)
    with atomic_write(output) as fh:
        fh.write(text if text.endswith("\n") else text + "\n")


@app.command()
@SPEC_ARG
@click.option("--x", "x", type=click.Path(dir_okay=False),
              help="examples: .npy or .npz (n, *input_shape), or .csv/.tsv with one example "
                   "per row, flattened row-major (docs/data.md).")
@click.option("--x2", "x2", type=click.Path(dir_okay=False), help="second set: compute K(X, X2).")
@table_options
@click.option("--dataset", help="embedded data NAME[:N], e.g. digits:200 (see docs/data.md).")
@click.option("--kernel", "kind", type=click.Choice(["nngp", "ntk", "both"]), default="ntk",
              show_default=True)
@click.option("--per-layer", is_flag=True, help="also write each parameter group's NTK term.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64",
              show_default=True)
@click.option("--threads", type=POSITIVE,
              help="threads, 1..NUMBA_NUM_THREADS (default: all cores).")
@click.option("--device", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="gpu: closed-form MLP specs and stride-1 convolutional specs "
                   "(global_avg_pool / flatten readout) on an NVIDIA GPU via numba.cuda "
                   "(float32 then computes in float32); exit status 2 when no GPU is "
                   "available.")
@click.option("-o", "--output", type=OutputPath(),
              help="OUT.npy (one kernel) or OUT.npz (several, keyed by name); tiled runs: "
                   "OUT.npy, or OUT.<name>.npy per kernel when several.")
@click.option("--force", is_flag=True, help="overwrite an existing output.")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON.")
@click.option("--tile", type=POSITIVE, help="compute in tiles of N x N into an OUT.npy memmap "
              "with a manifest (resumable); see docs/scale.md.")
@click.option("--resume", is_flag=True, help="continue the interrupted tiled run of -o OUT.npy "
              "(refused if the spec, data, kind or dtype differ, if the manifest or partial "
              "file is inconsistent or a finished tile fails its checksum, or if another run "
              "holds the output's lock; docs/reliability.md).")
@click.option("--dry-run", is_flag=True, help="print pairs, tiles, estimated time and memory, "
              "and a warning for each problem a run would refuse (disk, memory, output path); "
              "compile nothing: the time comes from the compiled program when it is cached, "
              "else from the NumPy tier timed on a sample (within about 2.5x, "
              "docs/startup.md).")
@click.option("--max-memory", type=ByteSize(),
              help="memory bound, e.g. 8G: shrink the tiles to fit, or refuse.")
@click.option("--scheduler", help="Dask scheduler address (tcp://HOST:8786) or scheduler file: "
              "send the tiles to that cluster.")
@click.option("--workers", type=POSITIVE,
              help="start a local Dask cluster of N worker processes.")
@click.option("--progress/--quiet", "progress", default=None,
              help="progress on stderr (default: only on a terminal).")
@click.option("--engine", type=click.Choice(["auto", "numpy", "compiled"]), default="auto",
              show_default=True,
              help="numpy: evaluate the program with NumPy, no compilation (fast to start, "
                   "slow per pair; vector and image specs); compiled: generated Numba code "
                   "(15-60 s to compile a new spec, cached afterwards); auto: numpy when it "
                   "is estimated to finish before compiling would (docs/startup.md).")
def kernel(spec, x, x2, dataset, kind, per_layer, dtype, threads, device, output, force,
           as_json, tile, resume, dry_run, max_memory, scheduler, workers, progress, engine):
    """Compute the infinite-width kernel matrix of SPEC on data.

    Only the upper triangle of K(X, X) is computed; the diagonal uses the exact per-example
    rule.  The output is written to a temporary name and renamed when complete.  With --tile,
    --resume, --scheduler or --workers the matrix is computed tile by tile into OUT.npy
    (OUT.npy.partial until complete, progress in OUT.npy.manifest.json); several kernels
    (--kernel both, --per-layer) go to one memmap each, OUT.nngp.npy, OUT.ntk.npy, ...
    """
    from ntksym.preflight import kernel_preflight, output_problems, plan_warnings, report
    _show_progress(progress)
    _check_threads(threads)
    tiled = bool(tile or resume or scheduler or workers)
    # checks before work: the output's path and format now, disk and memory once n is known
    problems = report(output_problems(output, (".npy",) if tiled else (".npy", ".npz")),
                      dry_run)
    if not resume:
        refuse_existing(output, force)
    arch = _load(spec)
    X = _data(x, dataset, arch)
    kw, X2 = {}, None
    if isinstance(X, tuple):                # sequences: padded array and lengths, same for --x2
        X, kw["lengths"] = X
        if x2:
            X2, kw["lengths2"] = _data(x2, None, arch, name="--x2")
    elif x2:
        X2 = _data(x2, None, arch, name="--x2")
    if kw and (tile or resume or dry_run or max_memory or scheduler or workers):
        raise DataError("sequence specs do not support --tile, --resume, --dry-run, "
                        "--max-memory, --scheduler or --workers yet")
    problems += report(kernel_preflight(arch, X, X2, output=output, kind=kind,
                                        per_layer=per_layer, dtype=dtype, tiled=tiled,
                                        resume=resume, max_memory=max_memory), dry_run)
    if tile or resume or dry_run or max_memory or scheduler or workers:
        if device != "cpu":
            # the GPU path tiles on its own; its tiles do not feed the resumable/Dask runs yet
            raise DataError("--device gpu does not combine with --tile, --resume, --dry-run, "
                            "--max-memory, --scheduler or --workers yet; drop those options")
        if engine == "numpy" and tiled:
            raise DataError("--engine numpy evaluates in memory; the tiles of --tile, --resume, "
                            "--scheduler and --workers run the compiled program: drop one")
        from ntksym.scale.run import kernel_command
        summary = kernel_command(arch, X, X2, output=output, kind=kind, per_layer=per_layer,
                                 dtype=dtype, threads=threads, tile=tile, resume=resume,
                                 force=force, dry_run=dry_run, max_memory=max_memory,
                                 scheduler=scheduler, workers=workers, progress=progress,
                                 engine=engine)
        if summary is not None:
            _emit(plan_warnings(summary, problems) if dry_run else summary, as_json)
            return
    t0 = time.perf_counter()
    engine = _engine_choice(arch, X, X2, engine, device, per_layer, progress)
    from ntksym.progress import task
    with task(f"{kind} kernel {len(X)} x {len(X if X2 is None else X2)} ({engine})",
              enabled=progress):           # elapsed time; a cold compile and pairs nest in it
        K = ntksym.kernel(arch, X, X2, kind=kind, dtype=dtype, per_layer=per_layer,
                          threads=threads, device=device, engine=engine, progress=progress, **kw)
    elapsed = time.perf_counter() - t0
    arrays = K if isinstance(K, dict) else {kind: K}
    if output:
        save_arrays(output, arrays, force=force)
    first = next(iter(arrays.values()))
    _emit({"spec": arch.name, "kernels": list(arrays), "shape": list(first.shape),
           "dtype": dtype, "device": device, "engine": engine, "seconds": round(elapsed, 4),
           "output": output}, as_json)


def _engine_choice(arch, X, X2, engine, device, per_layer, progress):
    """The engine that runs (\"numpy\" or \"compiled\"); the choice and how to change it in
    one line on stderr when progress is shown (a terminal, or --progress)."""
    from ntksym.engine.common import program
    from ntksym.engine.numpy_tier import choice_line, choose_engine
    n2 = None if X2 is None else len(X2)
    choice = choose_engine(arch, program(arch, per_layer), len(X), n2 or len(X), X2 is None,
                           engine, device, per_layer=per_layer)
    if progress or (progress is None and sys.stderr.isatty()):
        click.echo(f"ntksym: {choice_line(choice)}", err=True)
    return choice.engine


@app.command()
@SPEC_ARG
@click.option("--x", "x", type=click.Path(dir_okay=False),
              help="examples: .npy, .npz, or .csv/.tsv (a row per example; docs/data.md).")
@table_options
@click.option("--dataset", help="embedded data NAME[:N], e.g. digits:50.")
@click.option("--width", type=int, required=True,
              help="width of every hidden layer left open in the spec.")
@click.option("--samples", type=int, default=16, show_default=True, help="independent networks.")
@click.option("--seed", type=int, default=0, show_default=True, help="network s uses seed+s.")
@click.option("--kernel", "kind", type=click.Choice(["nngp", "ntk", "both"]), default="both",
              show_default=True)
@click.option("--gradient", type=click.Choice(["true", "fresh"]), default="true", show_default=True,
              help="pruned networks: the true gradient or a fresh mask copy for backward.")
@click.option("--compare", is_flag=True,
              help="also compute the analytic kernel: the largest deviation of the mean in "
                   "standard errors, the tolerance (family-wise 1% over the entries, Student "
                   "t) and a pass/fail verdict (\"pass\" in --json).")
@click.option("--per-output", is_flag=True,
              help="readouts of width k > 1: also write ntk_per_output (k, n, n), each "
                   "output's NTK (the ntk kernel is their mean; all have the same limit).")
@click.option("-o", "--output", type=OutputPath(),
              help="OUT.npz: mean, std, stderr per kernel.")
@click.option("--force", is_flag=True, help="overwrite an existing output.")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON.")
@PROGRESS
def empirical(spec, x, dataset, width, samples, seed, kind, gradient, compare, per_output,
              output, force, as_json, progress):
    """Monte Carlo NNGP and empirical NTK of finite networks built from SPEC.

    A readout of width k > 1 has k outputs per example: ntk is the mean of the k per-output
    NTKs, nngp the same for every output (docs/spec.md)."""
    _show_progress(progress)
    check_output(output, force, (".npz",))
    arch = _load(spec)
    X = _data(x, dataset, arch)
    t0 = time.perf_counter()
    kw = {}
    if isinstance(X, tuple):                # sequences: padded array and lengths
        X, kw["lengths"] = X
    E = ntksym.empirical_kernel(arch, X, width=width, samples=samples, seed=seed, kind=kind,
                                gradient=gradient, per_output=per_output, **kw)
    summary = {"spec": arch.name, "width": width, "samples": samples, "n": int(X.shape[0]),
               "outputs": int(arch.graph.nodes[arch.graph.graph["output"]]["width"]),
               "seconds": round(time.perf_counter() - t0, 3)}
    if compare:
        from ntksym.empirical.compare import compare_summary
        summary.update(compare_summary(E, {k: ntksym.kernel(arch, X, kind=k, **kw)
                                           for k in E.mean if k in ("nngp", "ntk")}))
    if output:
        arrays = {}
        for k in E.mean:
            arrays[f"{k}_mean"], arrays[f"{k}_std"] = E.mean[k], E.std[k]
            arrays[f"{k}_stderr"] = E.stderr[k]
        save_arrays(output, arrays, force=force)
        summary["output"] = output
    _emit(summary, as_json)


@app.command()
@click.argument("name", required=False)
@click.option("--list", "list_", is_flag=True, help="list the registered reproductions.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reproduce-out",
              show_default=True, help="directory for the CSV and PNG files.")
@click.option("--quick", is_flag=True, help="a small, fast version (for tests and smoke runs).")
@click.option("--force", is_flag=True, help="overwrite the CSV and PNG files of an earlier run.")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON.")
@PROGRESS
def reproduce(name, list_, out_dir, quick, force, as_json, progress):
    """Reproduce a paper's figure or table (ntksym reproduce --list names them).

    Refused before any work when --out is not a writable directory, when one of the files the
    reproduction writes exists there (unless --force), or when it draws a PNG and matplotlib
    is missing.
    """
    from ntksym.apps import reproduce as registry
    _show_progress(progress)
    if list_ or name is None:
        if name is None and not list_:
            raise UserError("give a reproduction NAME or --list")
        listing = {n: registry.get(n)[0] for n in registry.names()}
        if as_json:
            return _emit(listing, True)
        click.echo("\n".join(f"{n:28s} {d}" for n, d in listing.items()))
        return
    registry.preflight(name, out_dir, force)
    _emit(registry.run(name, out_dir, quick=quick), as_json)


@app.command("prune-sim")
@click.option("--width", "d", type=int, default=1024, show_default=True, help="hidden width d.")
@click.option("--depth", "l", type=int, default=3, show_default=True,
              help="number of weight layers l >= 3 (layers 2..l-1 are pruned).")
@click.option("--alpha", type=float, default=0.5, show_default=True,
              help="floor(D^(1-alpha)) entries pruned per middle layer.")
@click.option("--weights", type=click.Choice(["uniform", "gaussian"]), default="uniform",
              show_default=True)
@click.option("--pruning", type=click.Choice(["magnitude", "random"]), default="magnitude",
              show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quick", is_flag=True, help="fewer random inputs and ascent steps.")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON.")
@PROGRESS
def prune_sim(d, l, alpha, weights, pruning, seed, quick, as_json, progress):
    """Qian & Klabjan simulator: observed gap <= certificate, beside Theorem 1's bound."""
    _show_progress(progress)
    from ntksym.apps.pruning_sim import simulate
    search = dict(n_random=256, n_ascent=8, steps=30) if quick else {}
    r = simulate(d=d, l=l, alpha=alpha, weights=weights, pruning=pruning, seed=seed, **search)
    _emit(r, as_json)


# list | show | eval | solve, --latex, --json: the group lives in ntksym/bounds/commands.py
app.add_command(bounds_group, name="bounds")


@app.command()
@SPEC_ARG
@click.option("--dataset", required=True,
              help="NAME[:N]: diabetes, iris, digits ... (see docs/predict.md); class labels "
                   "become one-hot targets.")
@click.option("--kernel", "kind", type=click.Choice(["nngp", "ntk"]), default="nngp",
              show_default=True, help="the GP covariance: the NNGP, or the NTK as a GP.")
@click.option("--train", "n_train", type=POSITIVE,
              help="fit on N examples of a seeded permutation (default: all of the dataset).")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of that permutation.")
@click.option("--noise", type=float, default=0.1, show_default=True,
              help="starting noise variance of the (standardized) targets.")
@click.option("--fix-noise", is_flag=True, help="keep the noise variance at --noise.")
@click.option("--maxiter", type=POSITIVE, default=100, show_default=True,
              help="most L-BFGS-B iterations.")
@click.option("-o", "--output", type=OutputPath(),
              help="write the fitted spec (the same file with the values filled in) to FILE.")
@click.option("--force", is_flag=True, help="overwrite an existing output.")
@click.option("--quiet", is_flag=True, help="print only the result, not the path.")
@click.option("--json", "as_json", is_flag=True, help="print the result and path as JSON.")
def fit(spec, dataset, kind, n_train, seed, noise, fix_noise, maxiter, output, force, quiet,
        as_json):
    """Fit SPEC's learnable constants by maximizing the GP log marginal likelihood.

    Constants marked { value = ..., learn = true } (docs/hyperparameters.md) and the noise
    variance are optimized in log space by L-BFGS-B with exact gradients (one fused pass of
    the kernel and its derivatives per step); each iteration prints the values, the LML and
    the gradient norm.  -o writes the fitted spec.
    """
    from ntksym.apps.fit import fit_dataset, format_step
    arch = _load(spec)
    if output:
        refuse_existing(output, force)
    show = None if quiet or as_json else (lambda step: click.echo(format_step(step)))
    r = fit_dataset(arch, dataset, n_train=n_train, seed=seed, kind=kind, noise=noise,
                    learn_noise=not fix_noise, maxiter=maxiter, callback=show)
    if output:
        with atomic_write(output) as fh:
            fh.write(r.spec_text)
    d = r.as_dict()
    if not as_json:
        d.pop("path")
        d["seconds"] = round(d["seconds"], 2)
        d["values"] = ", ".join(f"{k}={v:.6g}" for k, v in r.values.items())
    if output:
        d["wrote"] = output
    _emit(d, as_json)


@app.command()
@SPEC_ARG
@click.option("--dataset", required=True,
              help="NAME[:N]: digits, digits-images, iris, wine, breast_cancer, diabetes, "
                   "cifar10:DIR, mnist:DIR (see docs/predict.md).")
@click.option("--train", "n_train", type=int, required=True, help="number of training examples.")
@click.option("--test", "n_test", type=int, required=True, help="number of test examples.")
@click.option("--ridge", type=float, default=0.0, show_default=True,
              help="absolute value added to the diagonal of K_train (0: unregularized solve).")
@click.option("--kernel", "kind", type=click.Choice(["ntk", "nngp"]), default="ntk",
              show_default=True, help="ntk: trained infinite network; nngp: GP posterior mean.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="seed of the random train/test split.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64",
              show_default=True, help="kernel evaluation; the solve is always float64.")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON.")
@PROGRESS
def regress(spec, dataset, n_train, n_test, ridge, kind, seed, dtype, as_json, progress):
    """Kernel regression / classification with SPEC's kernel on a random dataset split.

    As in the CNTK paper (Arora et al. 2019): class c is regressed as the target -0.1*1 + e_c,
    with an unregularized solve unless --ridge is given, and the predicted class is the
    argmax; reports the test accuracy (classification) or MSE and R^2 (regression), the
    kernel and solve times and the condition number of K_train.  Only the train-train (upper
    triangle) and test-train blocks are computed, never test-test.  Vector specs adapt their
    input dimension to the dataset; image specs take flat rows such as digits as H x W x C.
    """
    from ntksym.apps.regress import regress as run_regress
    _show_progress(progress)
    arch = _load(spec)
    r = run_regress(arch, dataset, n_train, n_test, ridge=ridge, kind=kind, seed=seed,
                    dtype=dtype)
    _emit(r.as_dict(), as_json)


@app.command()
@SPEC_ARG
@click.option("--x", "x", type=click.Path(dir_okay=False),
              help="examples: .npy, .npz, or .csv/.tsv (a row per example; docs/data.md).")
@table_options
@click.option("--dataset", help="embedded data NAME[:N], e.g. digits:20 (keep N small).")
@click.option("--widths", required=True,
              help="comma-separated widths of the hidden layers left open, e.g. 64,256,1024.")
@click.option("--samples", type=int, default=8, show_default=True,
              help="independent networks per width (>= 2).")
@click.option("--seed", type=int, default=0, show_default=True, help="network s uses seed+s.")
@click.option("--kernel", "kind", type=click.Choice(["ntk", "nngp"]), default="ntk",
              show_default=True)
@click.option("--plot", type=OutputPath(), help="write a log-log plot to FIG.png.")
@click.option("-o", "--output", type=OutputPath(),
              help="write the per-width table to TABLE.csv.")
@click.option("--force", is_flag=True, help="overwrite existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON.")
@PROGRESS
def converge(spec, x, dataset, widths, samples, seed, kind, plot, output, force, as_json,
             progress):
    """Analytic vs empirical kernels of SPEC over a list of widths.

    For every width, SAMPLES finite networks of the spec's graph are drawn and each network's
    kernel matrix K_n is compared with the infinite-width K: the mean over networks of
    mean|K_n - K| (with its standard error), the same relative to mean|K|, and the deviation
    of the Monte Carlo average.  The slope of log(mean|K_n - K|) against log(width) is fitted
    by weighted least squares; a single network's kernel fluctuates by O(width^-1/2), so
    expect about -0.5.  Columns of the CSV: width, samples, mean_abs_dev, mean_abs_dev_se,
    mean_rel_dev, mean_rel_dev_se, mc_mean_abs_dev, max_abs_dev, seconds.
    """
    from ntksym.apps.convergence import convergence_study, parse_widths, plot_convergence, write_csv
    _show_progress(progress)
    width_list = parse_widths(widths)
    for path, suffix, opt in ((plot, ".png", "--plot"), (output, ".csv", "-o")):
        check_output(path, force, (suffix,), opt)
    if plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise DataError("--plot needs matplotlib: pip install 'ntksym[plot]'") from None
    arch = _load(spec)
    X = _data(x, dataset, arch)
    r = convergence_study(arch, X, width_list, samples=samples, seed=seed, kind=kind)
    if output:
        write_csv(r, output)
    if plot:
        plot_convergence(r, plot)
    if as_json:
        _emit(dict(r.summary(), csv=output, plot=plot), True)
        return
    click.echo(r.text())
    for path in (output, plot):
        if path:
            click.echo(f"wrote {path}")


def main(argv=None):
    """Console entry point: user errors exit 2 with one message, internal errors keep their
    traceback (exit 1), Ctrl-C prints "aborted" and exits 130 (outputs are written to a
    temporary name and renamed when complete, so nothing is left half-written)."""
    restore = console.install()
    try:
        app.main(args=argv, prog_name="ntksym", standalone_mode=False)
    except BaseException as e:          # Ctrl-C may surface as any exception
        if not isinstance(e, SystemExit) and console.interrupted(e):
            click.echo("aborted", err=True)
            sys.exit(130)
        _exit_for(e)
    finally:
        restore()
    sys.exit(0)


def _exit_for(e):
    """Exit status and message of an exception from the click application."""
    if isinstance(e, NtksymError):
        click.echo(f"ntksym: error: {e}", err=True)
        sys.exit(2)
    if isinstance(e, click.UsageError):
        # one line, like every other user error: the usage block would bury the message
        ctx = getattr(e, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        click.echo(f"ntksym: error: {e.format_message()}{where}", err=True)
        sys.exit(2)
    if isinstance(e, click.ClickException):
        e.show()
        sys.exit(2 if e.exit_code in (1, 2) else e.exit_code)
    if isinstance(e, click.exceptions.Exit):
        sys.exit(e.exit_code)
    raise e


if _LOADING is not None:     # loaded: Python's handler again until main() installs its own
    signal.signal(signal.SIGINT, _LOADING)

if __name__ == "__main__":
    main()
