"""Property: whatever happens to the files of a killed tiled run, ``--resume`` refuses with one
ResumeError line or produces the uninterrupted run's matrix bit for bit (issue 15).

Hypothesis takes one of the states of tests/scale/conftest.py (killed after k tiles, all tiles
done but not finished, complete but not renamed, finished; K(X, X), K(X, Z), two kernels) and
applies a few mutations: to the manifest as JSON (delete a field, replace a value with any JSON
value, retype it, nudge it to a plausible neighbour: a number +-1, the other status, another
bitmap, a moved or forged checksum) or as text (truncate, flip a byte), to a partial or output
file (truncate, extend, flip a byte, zero a region, delete it), or a stale lock file.  Then it
resumes.  Any other exception, or a success with other bits, fails the property.
"""

import base64
import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ntksym.scale.manifest import ResumeError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 100) | st.text(max_size=6)
    | st.floats(allow_nan=False, allow_infinity=False, width=32),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=6)

RETYPE = {"str": str, "list": lambda v: [v], "object": lambda v: {"v": v},
          "null": lambda v: None, "float": lambda v: float(v) if isinstance(v, int) else 4.0,
          "bool": lambda v: bool(v) if not isinstance(v, bool) else int(v)}


def _nudge(data, key, value, m):
    """A plausible wrong value for ``key``: what a careless edit or a bug would write."""
    if key == "status":
        return data.draw(st.sampled_from(["running", "complete", "done", ""]))
    if key == "done":
        n = max(1, m.get("n_tiles", 6) if isinstance(m.get("n_tiles"), int) else 6)
        bits = data.draw(st.lists(st.booleans(), min_size=n, max_size=n + 9))
        packed = bytes(int("".join("1" if b else "0" for b in bits[i:i + 8]).ljust(8, "0"), 2)
                       for i in range(0, len(bits), 8))
        return base64.b64encode(packed).decode()
    if key == "checksums" and isinstance(value, list) and value:
        value = list(value)
        i = data.draw(st.integers(0, len(value) - 1))
        value[i] = data.draw(st.sampled_from([None, "0" * 16, "deadbeefdeadbeef"])
                             | st.sampled_from(value))
        return value
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + data.draw(st.sampled_from([-1, 1, -value]))
    if isinstance(value, str):
        return data.draw(st.sampled_from([value[:-1], value + "0", value.upper()]))
    if isinstance(value, list) and value:
        return data.draw(st.sampled_from([value[:-1], value + value[-1:], value[::-1]]))
    return data.draw(JSON)


def _mutate_manifest(data, path):
    text = path.read_bytes()
    how = data.draw(st.sampled_from(["delete", "replace", "retype", "nudge", "nudge",
                                     "truncate", "flip"]), label="manifest mutation")
    if how in ("truncate", "flip") and not text:
        return
    if how == "truncate":
        path.write_bytes(text[:data.draw(st.integers(0, len(text) - 1))])
        return
    if how == "flip":
        i = data.draw(st.integers(0, len(text) - 1))
        path.write_bytes(text[:i] + bytes([text[i] ^ data.draw(st.integers(1, 255))])
                         + text[i + 1:])
        return
    try:
        m = json.loads(text)
    except ValueError:
        return                                   # an earlier mutation broke the JSON
    if not isinstance(m, dict) or not m:
        return
    key = data.draw(st.sampled_from(sorted(m)), label="field")
    if how == "delete":
        del m[key]
    elif how == "replace":
        m[key] = data.draw(JSON, label="value")
    elif how == "retype":
        m[key] = RETYPE[data.draw(st.sampled_from(sorted(RETYPE)))](m[key])
    else:
        m[key] = _nudge(data, key, m[key], m)
    path.write_text(json.dumps(m, indent=1))


def _mutate_array_file(data, folder):
    files = sorted(p.name for p in folder.iterdir() if p.name.endswith((".npy", ".partial")))
    if not files:
        return
    path = folder / data.draw(st.sampled_from(files), label="file")
    raw = path.read_bytes()
    how = data.draw(st.sampled_from(["truncate", "extend", "flip", "flip", "zero", "zero",
                                     "delete"]), label="file mutation")
    if how not in ("extend", "delete") and not raw:
        return
    if how == "delete":
        path.unlink()
        return
    if how == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif how == "extend":
        raw = raw + data.draw(st.binary(min_size=1, max_size=64))
    else:
        # positions past the 128-byte header are where the tiles are: draw them more often
        i = data.draw(st.integers(min(128, len(raw) - 1), len(raw) - 1)
                      | st.integers(0, len(raw) - 1))
        if how == "flip":
            raw = raw[:i] + bytes([raw[i] ^ data.draw(st.integers(1, 255))]) + raw[i + 1:]
        else:
            n = data.draw(st.integers(1, 96))
            raw = raw[:i] + bytes(len(raw[i:i + n])) + raw[i + n:]
    path.write_bytes(raw)


def _mutate(data, folder):
    target = data.draw(st.sampled_from(["manifest", "manifest", "array", "array",
                                        "lock", "delete manifest"]), label="target")
    manifest = folder / "K.npy.manifest.json"
    if target == "manifest" and manifest.exists():
        _mutate_manifest(data, manifest)
    elif target == "array":
        _mutate_array_file(data, folder)
    elif target == "lock":
        (folder / "K.npy.lock").write_text("pid 999999999 on a-host-long-gone\n")
    elif target == "delete manifest" and manifest.exists():
        manifest.unlink()


def _check_one_resume(tiny, data):
    name = data.draw(st.sampled_from(tiny.names), label="state")
    with tempfile.TemporaryDirectory(dir=RAM) as tmp:
        folder = Path(tmp)
        tiny.restore(name, folder)
        for _ in range(data.draw(st.integers(1, 3), label="mutations")):
            _mutate(data, folder)
        try:
            # --tile as the run was started (a fresh run with another tile size may differ in
            # the last bits of the Gram products)
            tiny.resume(name, folder, tile=4)
        except ResumeError as e:
            assert "\n" not in str(e) and "--force" in str(e), str(e)
            assert not (folder / "K.npy.lock").exists()           # the lock was let go
            problem = re.sub(r"\S+\.(npy|partial|json)\b,?|\d+", "", str(e).split(": ", 1)[-1])
            event("refused: " + " ".join(problem.split()[:3]))
            return "refused"
        assert tiny.matches(name, folder), "resume succeeded with a different matrix"
        event(f"resumed {name}")
        return "resumed"


# thousands of runs, each with a few fsyncs: in memory where the machine has a tmpfs
RAM = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=400, **SETTINGS)
@given(data=st.data())
def test_mutated_killed_run_refuses_or_resumes_bit_for_bit(tiny, data):
    _check_one_resume(tiny, data)


@pytest.mark.slow
@settings(max_examples=5000, **SETTINGS)
@given(data=st.data())
def test_mutated_killed_run_refuses_or_resumes_bit_for_bit_long(tiny, data):
    _check_one_resume(tiny, data)


def test_the_mutations_reach_both_outcomes(tiny):
    """The property is not vacuous: some mutated states resume, some are refused."""
    seen = set()

    @settings(max_examples=60, **SETTINGS)
    @given(data=st.data())
    def run(data):
        seen.add(_check_one_resume(tiny, data))

    run()
    assert seen == {"refused", "resumed"}
