"""A tiny tiled run and the states a killed run leaves on disk, shared by the resume tests.

``tiny`` is a 12 x 5 data set, a vector MLP spec and tiles of 4 (6 tiles for K(X, X), 6 for
K(X, Z) with 8 columns of Z), compiled once per session.  ``tiny.state(name)`` is the bytes of
every file a run leaves in its folder at one of the moments in :data:`STATES`;
``tiny.restore(name, folder)`` writes them back, ``tiny.resume(name, folder)`` runs
``--resume`` on them and ``tiny.matches(name, folder)`` says whether the outputs are, bit for
bit, those of the uninterrupted run.
"""

import io
import os
from pathlib import Path

import numpy as np
import pytest

import ntksym
from ntksym.scale.tiles import partial_path, tiled_kernel
from testkit import SPEC_DIR

# name -> (kind, cross?, what happened): an int k = killed after k tiles (SIGKILL after the
# checkpoint of tile k: checkpoints after every tile); "finished": ran to the end;
# "unrenamed": the manifest says complete, the rename of the partial files had not happened
STATES = {
    "killed-0": ("ntk", False, 0),
    "killed-2": ("ntk", False, 2),
    "killed-5": ("ntk", False, 5),
    "all-done": ("ntk", False, 6),
    "unrenamed": ("ntk", False, "unrenamed"),
    "finished": ("ntk", False, "finished"),
    "cross-3": ("ntk", True, 3),
    "both-4": ("both", False, 4),
    "both-unrenamed": ("both", False, "unrenamed"),
}
TILE = 4


class Stop(Exception):
    """Stands for a kill: raised from the progress callback after a tile is checkpointed."""


def stop_after(k):
    def cb(done, total):
        if done >= k:
            raise Stop
    return cb


class Tiny:
    def __init__(self, root):
        self.arch = ntksym.load_spec(SPEC_DIR / "cntk_mlp_depth3.toml").with_input_shape((5,))
        rng = np.random.default_rng(0)
        self.X, self.Z = rng.normal(size=(12, 5)), rng.normal(size=(8, 5))
        self.root = Path(root)
        self.names = list(STATES)
        self._states, self._refs = {}, {}

    def args(self, name):
        kind, cross, _ = STATES[name]
        return (self.arch, self.X, self.Z if cross else None), {"kind": kind}

    def run(self, name, folder, **kw):
        (arch, X, Z), opts = self.args(name)
        return tiled_kernel(arch, X, Z, output=Path(folder) / "K.npy", progress=False,
                            tile=kw.pop("tile", None), **opts, **kw)

    def ref(self, name):
        """name -> bytes of the uninterrupted run's output files (by file name)."""
        kind, cross, _ = STATES[name]
        key = (kind, cross)
        if key not in self._refs:
            folder = self.root / f"ref-{kind}-{cross}"
            info = self.run(name, folder, tile=TILE)
            self._refs[key] = {Path(f).name: Path(f).read_bytes()
                               for f in info["files"].values()}
        return self._refs[key]

    def state(self, name):
        """File name -> bytes of the folder a run leaves at the moment ``name``."""
        if name not in self._states:
            self.ref(name)
            folder = self.root / name
            what = STATES[name][2]
            if isinstance(what, int):
                with pytest.raises(Stop):
                    self.run(name, folder, tile=TILE, checkpoint_every=0.0,
                             on_tile=stop_after(what))
            else:
                info = self.run(name, folder, tile=TILE)
                if what == "unrenamed":
                    for f in info["files"].values():
                        os.replace(f, partial_path(f))
            self._states[name] = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
        return self._states[name]

    def restore(self, name, folder):
        folder = Path(folder)
        for p in folder.iterdir():
            p.unlink()
        for f, data in self.state(name).items():
            (folder / f).write_bytes(data)
        return folder / "K.npy"

    def resume(self, name, folder, **kw):
        return self.run(name, folder, resume=True, **kw)

    def matches(self, name, folder):
        """The folder holds exactly the finished run: outputs bit for bit, no partial file."""
        folder = Path(folder)
        ref = self.ref(name)
        left = {p.name for p in folder.iterdir()} - set(ref) - {"K.npy.manifest.json"}
        return not left and all(_same_array(folder / f, data) for f, data in ref.items())


def _same_array(path, data):
    if not path.exists():
        return False
    a, b = np.load(path), np.load(io.BytesIO(data))
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return Tiny(tmp_path_factory.mktemp("resume"))
