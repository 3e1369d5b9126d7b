"""Buffer slots of an image program's pixel-level state entries, by liveness, and the
diagonal slots that cross expressions read: one allocator for every image target (CPU full
and slice schedules, CUDA shared-memory slots).

Elementwise steps may write in place (every pixel's inputs are loaded before its outputs
are stored), so a dying read frees its slot before the step's targets take one; a
structural step reads neighbouring pixels, so its outputs take fresh slots and its dying
inputs are freed after it.

>>> import ntksym
>>> arch = ntksym.loads_spec('name = "c"\\ninput = { shape = [3, 3, 1] }\\n'
...     '[[layer]]\\nkind = "conv"\\nactivation = "relu"\\n'
...     '[[layer]]\\nkind = "global_avg_pool"\\n[[layer]]\\nkind = "dense"\\n')
>>> slots = Slots(arch.derive())
>>> slots.nbuf, sorted(slots.diag_slot)
(4, ['Sigma_2'])
"""

from __future__ import annotations

import sympy as sp

from ntksym.ir.program import Elementwise
from ntksym.ir.symbols import HyperSymbol


def is_diag(name):
    """A per-image diagonal symbol (``X_xx`` / ``X_yy``), not a pixel-pair entry."""
    return name.endswith(("_xx", "_yy"))


def reads(step):
    """The pixel-pair entries a step reads (names, sorted for elementwise steps)."""
    if isinstance(step, Elementwise):
        return sorted({s.name for a in step.cross for s in a.expr.free_symbols
                       if not is_diag(s.name) and not isinstance(s, HyperSymbol)})
    return [s.name for s in step.inputs if isinstance(s, sp.Symbol) and not is_diag(s.name)]


def targets(step):
    """The pixel-pair entries a step writes."""
    if isinstance(step, Elementwise):
        return [a.target.name for a in step.cross]
    return [s.name for s in step.outputs if not s.name.endswith("_xx")]


class Slots:
    """``slot[name]``: the buffer of each entry; ``diag_slot[base]``: the row of D holding the
    per-pixel diagonal of ``base`` (read as ``base_xx`` / ``base_yy``); ``nbuf``: buffers.

    ``stop``: allocate the steps before it only (the rest are a target's scalar tail; default
    every step); ``free_unread``: an entry nothing reads (computed for its diagonal only)
    frees its slot at once.
    """

    def __init__(self, program, stop=None, free_unread=False):
        steps = program.steps
        stop = len(steps) if stop is None else stop
        cross_names = {program.input_cross.name}
        for step in steps:
            cross_names |= set(targets(step))
        self.diag_slot = {}
        for step in steps:
            if isinstance(step, Elementwise):
                for a in step.cross:
                    for s in sorted(a.expr.free_symbols, key=lambda s: s.name):
                        if is_diag(s.name):
                            base = s.name[:-3]
                            if base not in cross_names:
                                raise AssertionError(f"diagonal {s} has no cross symbol {base}")
                            self.diag_slot.setdefault(base, len(self.diag_slot))
        # last use of every entry (index of the step reading it; outputs live to the end)
        last = {}
        for k, step in enumerate(steps[:stop + 1]):
            for s in reads(step):
                last[s] = k
        for e in program.outputs.values():
            for s in e.free_symbols:
                last[s.name] = len(steps)
        self.last = last
        self.slot, free, self.nbuf = {}, [], 0

        def take():
            if free:
                return free.pop()
            self.nbuf += 1
            return self.nbuf - 1

        self.slot[program.input_cross.name] = take()
        for k, step in enumerate(steps[:stop]):
            dying = [s for s in reads(step) if last.get(s) == k and s in self.slot]
            if isinstance(step, Elementwise):
                free.extend(self.slot[s] for s in dying)       # in place: loads precede stores
            for t in targets(step):
                self.slot[t] = take()
            if not isinstance(step, Elementwise):
                free.extend(self.slot[s] for s in dying)
            if free_unread:
                free.extend(self.slot[t] for t in targets(step) if t not in last)
        self.nbuf = max(self.nbuf, 1)

    reads = staticmethod(reads)
