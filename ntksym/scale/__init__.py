"""Scale: tiled runs on disk with a manifest (resumable), planning (--dry-run, memory), Dask."""
