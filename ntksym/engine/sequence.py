"""Evaluate sequence (RNN) kernel programs: input checks, lengths, the generated module.

Inputs: a padded array X (n, T, d) with optional ``lengths`` (n,) (sequence i is X[i, :len_i];
default: every sequence has length T), or a list of arrays (T_i, d) (padded here).  The
"last" readout aligns sequences of different lengths from the end: K(x, x') reads the pair of
final states (T, T').

>>> import numpy as np, ntksym
>>> arch = ntksym.loads_spec('name = "r"\\ninput = { shape = [-1, 2] }\\n'
...     '[[layer]]\\nkind = "rnn"\\n[[layer]]\\nkind = "dense"\\n')
>>> X, L = as_sequences([np.ones((3, 2)), np.ones((2, 2))], arch.input_shape)
>>> X.shape, L.tolist()
((2, 3, 2), [3, 2])
"""

from __future__ import annotations

import numpy as np

from ntksym.errors import DataError


def as_sequences(X, input_shape, lengths=None, name="X"):
    """(padded float64 array (n, T, d), int64 lengths (n,)), or DataError naming the problem."""
    T_spec, d = input_shape
    if isinstance(X, (list, tuple)):
        if lengths is not None:
            raise DataError(f"{name} is a list of sequences; their lengths are implied, "
                            "do not pass lengths as well")
        if not X:
            raise DataError(f"{name} has no sequences")
        seqs = []
        for i, s in enumerate(X):
            try:
                a = np.asarray(s, dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise DataError(f"{name}[{i}] is not a numeric array: {e}") from None
            if a.ndim != 2 or a.shape[1] != d:
                raise DataError(f"{name}[{i}] has shape {a.shape} but sequences need (T_i, {d})")
            seqs.append(a)
        L = np.array([len(a) for a in seqs], dtype=np.int64)
        Xp = np.zeros((len(seqs), max(int(L.max()), 1), d))
        for i, a in enumerate(seqs):
            Xp[i, :len(a)] = a
        X, lengths = Xp, L
    else:
        arr = np.asarray(X) if not isinstance(X, np.ndarray) else X
        if arr.dtype == object:
            raise DataError(f"{name} holds ragged sequences; pass a padded (n, T, {d}) array "
                            "with lengths, or a list of (T_i, d) arrays")
        try:
            X = np.asarray(arr, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise DataError(f"{name} is not a numeric array: {e}") from None
    if X.ndim != 3 or X.shape[2] != d:
        raise DataError(f"{name} has shape {X.shape} but the spec's input needs (n, T, {d}) "
                        f"sequences of {d}-dimensional vectors; check the feature dimension or "
                        "the spec's input.shape")
    n, T = X.shape[0], X.shape[1]
    if n == 0 or T == 0:
        raise DataError(f"{name} has no sequences or no time steps (shape {X.shape})")
    if T_spec != -1 and T != T_spec:
        raise DataError(f"{name} has sequences of length {T} but the spec's input.shape fixes "
                        f"T = {T_spec}; use T = -1 in the spec for other lengths")
    if lengths is None:
        L = np.full(n, T, dtype=np.int64)
    else:
        try:
            L = np.asarray(lengths)
        except (TypeError, ValueError) as e:
            raise DataError(f"lengths of {name}: {e}") from None
        if L.shape != (n,) or L.dtype.kind not in "iu" and not (
                L.dtype.kind == "f" and np.all(L == np.round(L))):
            raise DataError(f"lengths of {name} must be {n} integers, got shape {L.shape} "
                            f"dtype {L.dtype}")
        L = L.astype(np.int64)
        if (L < 1).any() or (L > T).any():
            i = int(np.argmax((L < 1) | (L > T)))
            raise DataError(f"lengths of {name}: sequence {i} has length {int(L[i])}, but "
                            f"lengths must lie in 1..{T} (the padded length T of {name})")
    mask = np.arange(T)[None, :] < L[:, None]
    bad = ~np.isfinite(X) & mask[:, :, None]
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{name} contains NaN or inf (first at index {idx}); clean the data first")
    X = np.where(mask[:, :, None], X, 0.0)        # padding never enters a sum
    return np.ascontiguousarray(X), L


def check_readout_lengths(program, L, name):
    """DataError when a sequence is shorter than the readout's first step (readout_from)."""
    from ntksym.codegen.sequence import split_phases
    _, readout, _ = split_phases(program)
    frm = readout.op.start
    if frm > 1 and (L < frm).any():
        i = int(np.argmax(L < frm))
        raise DataError(f"{name}: sequence {i} has length {int(L[i])}, shorter than the "
                        f"readout's first step readout_from = {frm}")


def check_sequences(program, X, input_shape, lengths=None, name="X"):
    """:func:`as_sequences` and the readout's length check: (X, lengths) ready to evaluate."""
    X, L = as_sequences(X, input_shape, lengths, name)
    check_readout_lengths(program, L, name)
    return X, L


def sequence_kernel(program, mod, X, L, X2, L2, names, hp=None):
    """Stacked outputs (len(names), n1, n2) for the "last"/"mean" readouts, (len(names), n1,
    n2, T1', T2') for ``readout = "all"`` (T' = T - readout_from + 1; entries past a
    sequence's length are 0), for :func:`ntksym.engine.common.finish`.

    X, X2 are padded float64 arrays checked by :func:`check_sequences`; L = None (from a
    tile of a tiled run, which checks X as a plain array) means every sequence has length T.
    ``hp``: the values of the module's learnable constants, if it has any.
    """
    if L is None:
        L = np.full(X.shape[0], X.shape[1], dtype=np.int64)
        check_readout_lengths(program, L, "X")
    if X2 is not None and L2 is None:
        L2 = np.full(X2.shape[0], X2.shape[1], dtype=np.int64)
        check_readout_lengths(program, L2, "X2")
    res = mod.kernel(X, L, X2, L2) if hp is None else mod.kernel(X, L, X2, L2, hp)
    return np.stack([res[n] for n in names])


def load_sequences(path, name="--x"):
    """Sequences from a file: ``.npy`` (n, T, d) (every sequence of length T), or ``.npz``
    holding ``x`` (n, T, d) with optional ``lengths`` (n,), or only (T_i, d) arrays (a list of
    sequences, e.g. ``np.savez(f, *seqs)``, in key order arr_0, arr_1, ...).

    Returns (X, lengths) where X is an array or a list and lengths may be None.  Never unpickles.
    """
    from pathlib import Path

    from ntksym.data import load_array, read_numpy
    if Path(path).suffix != ".npz":
        return load_array(path, name=name), None
    arrays = read_numpy(path, name)
    if not isinstance(arrays, dict):            # a single array saved under an .npz name
        arrays = {"x": arrays}
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise DataError(f"{name}: {path}: array {k!r} is not numeric (dtype {a.dtype})")
    key = next((k for k in ("x", "X") if k in arrays), None)
    if key is not None:
        return arrays[key], arrays.get("lengths")
    if "lengths" in arrays:
        raise DataError(f"{name}: {path}: has lengths but no array named 'x'")

    def order(k):
        tail = k.rsplit("_", 1)[-1]
        return (0, int(tail)) if tail.isdigit() else (1, k)
    return [arrays[k] for k in sorted(arrays, key=order)], None
