"""Dask backend: the tiles of a :class:`ntksym.scale.tiles.TiledRun` as ``dask.distributed`` tasks.

Nothing ntksym-specific runs on the cluster: any Dask scheduler with workers that can import
ntksym will do (a LocalCluster, ``dask-jobqueue`` on SLURM, the Dask Helm chart on Kubernetes;
see docs/scale.md).  What travels:

* the spec *text* (workers parse it and compile the kernel once, through the on-disk cache of
  :mod:`ntksym.codegen.cache`; later tasks on the same worker reuse the compiled module);
* the data, scattered once to every worker (``broadcast=True``); a task names only its tile's
  row and column ranges;
* each finished tile back to the client, which alone writes the memmap and the manifest, so
  workers need no shared filesystem and a lost worker costs only its tiles in flight (the
  scheduler reruns them elsewhere).

Dask is an optional extra (``pip install ntksym[dask]``); it is imported only here, lazily.

Example::

    from dask.distributed import Client
    client = Client("tcp://scheduler:8786")
    ntksym.scale.tiles.tiled_kernel(arch, X, output="K.npy", tile=2048, client=client, resume=True)
"""

from __future__ import annotations

import hashlib
import os

from ntksym.errors import DeviceError

_WORKER_ARCH: dict = {}


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise DeviceError("the Dask backend needs dask.distributed: pip install 'ntksym[dask]'"
                          ) from None
    return distributed


def connect(scheduler=None, workers=None, threads=None):
    """A ``dask.distributed.Client``: to ``scheduler`` (an address such as
    ``tcp://host:8786``, or a scheduler JSON file), or to a new LocalCluster of ``workers``
    processes with one task thread each.  Returns (client, cluster or None); close both.

    Example: ``client, cluster = connect(workers=2)``.
    """
    distributed = _import_distributed()
    if scheduler:
        try:
            if os.path.exists(scheduler):
                return distributed.Client(scheduler_file=scheduler, timeout=30), None
            return distributed.Client(scheduler, timeout=30), None
        except (OSError, TimeoutError) as e:
            raise DeviceError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    n = int(workers or 1)
    if n < 1:
        raise DeviceError(f"--workers must be at least 1, got {workers}")
    # processes, not threads: numba releases the GIL, but separate processes are what a real
    # cluster looks like and what a killed worker means; each worker runs one tile at a time
    # with its own numba threads (threads or cores / workers)
    cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    return distributed.Client(cluster), cluster


def _arch_from_text(spec_text, spec_path):
    key = hashlib.sha256(spec_text.encode()).hexdigest()
    arch = _WORKER_ARCH.get(key)
    if arch is None:
        from ntksym.architecture import loads_spec_arch
        arch = _WORKER_ARCH[key] = loads_spec_arch(spec_text, spec_path)
    return arch


def _hold(X):
    return X


def dask_tile(spec_text, spec_path, X, X2, bounds, diagonal, names, dtype, threads,
              per_layer=False):
    """Worker side of one tile: rebuild the architecture from its text (memoized per worker
    process) and evaluate the tile's slices of the data the client checked
    (:func:`ntksym.engine.dispatch.evaluate`, as :func:`ntksym.scale.tiles.compute_tile` does
    in one process; the compiled program is memoized per worker process too)."""
    from ntksym.engine.dispatch import evaluate
    if threads:
        import numba
        numba.set_num_threads(int(threads))
    arch = _arch_from_text(spec_text, spec_path)
    i0, i1, j0, j1 = bounds
    cols = None if diagonal else (X if X2 is None else X2)[j0:j1]
    return evaluate(arch, X[i0:i1], cols, list(names), dtype=dtype, per_layer=per_layer,
                    progress=False, offset=(i0, j0), engine="compiled")


def run_dask(run, client, progress=None, threads=None, window=None):
    """Compute the pending tiles of ``run`` on the workers of ``client``, writing each into the
    run's memmap as it arrives (in completion order; the manifest records which are done).

    At most ``window`` tiles are in flight (default: 4 per worker thread), so the client holds
    a bounded number of results however many tiles the run has.
    """
    distributed = _import_distributed()
    spec = run.arch.spec
    if not getattr(spec, "text", ""):
        raise DeviceError("the Dask backend ships the spec's text to the workers; this "
                          "architecture has none (build it with load_spec or loads_spec)")
    nthreads = sum(client.nthreads().values()) or 1
    if threads is None and client.cluster is not None and hasattr(client.cluster, "workers"):
        # a LocalCluster shares this machine's cores among its workers
        threads = max(1, len(os.sched_getaffinity(0)) // max(1, len(client.nthreads())))
    window = window or 4 * nthreads
    ident = run.identity()
    key = ident["spec_hash"][:8] + ident["x_hash"][:8] + os.urandom(4).hex()
    # the data as a task, not client.scatter: scattered data lost with a worker cannot be
    # recovered (every tile depending on it is cancelled), a task can be rerun elsewhere
    X = client.submit(_hold, run.X, key=f"ntksym-data-{key}-x", pure=False)
    X2 = (None if run.X2 is None else
          client.submit(_hold, run.X2, key=f"ntksym-data-{key}-x2", pure=False))
    todo = iter(run.pending())

    owner, attempts = {}, {}

    def submit(k):
        i0, i1, j0, j1 = run.bounds(k)
        diag = run.symmetric and i0 == j0
        # no retries=: a worker's death is retried by the scheduler (allowed-failures); an
        # error raised by the tile itself (bad data) would only fail again
        fut = client.submit(dask_tile, spec.text, spec.path, X, X2, (i0, i1, j0, j1), diag,
                            run.names, run.dtype, threads, run.per_layer, pure=False,
                            key=f"ntksym-tile-{key}-{k}-{attempts.get(k, 0)}")
        owner[fut.key] = k
        return fut

    first = [submit(k) for _, k in zip(range(window), todo)]
    queue = distributed.as_completed(first)
    for fut in queue:
        k = owner.pop(fut.key)
        try:
            block = fut.result()
        except distributed.client.FutureCancelledError:
            # cancelled by the cluster (e.g. an input lost with a worker): submit it again;
            # errors raised by the tile itself propagate from fut.result() unchanged
            attempts[k] = attempts.get(k, 0) + 1
            if attempts[k] > 3:
                raise
            queue.add(submit(k))
            continue
        fut.release()
        run.write(k, block)
        if progress is not None:
            progress.update(run.n_done)
        nxt = next(todo, None)
        if nxt is not None:
            queue.add(submit(nxt))
