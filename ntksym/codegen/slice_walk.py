"""The one lowering loop of the per-offset-slice schedule, shared by its targets.

:class:`SliceWalker` walks an image program on the slice schedule (see
:mod:`ntksym.codegen.slices` for why it is exact): the input products of one pixel offset,
every layer up to the readout, the offset's share of the readout, then the per-pair scalar
tail.  What each piece looks like is the target's business: the CPU target
(:class:`ntksym.codegen.slices.CpuSlices`) writes calls of shared Numba templates, the CUDA
target (:class:`ntksym.codegen.cuda_slices.CudaSlices`) writes block-wide thread loops with
barriers.  A target overrides ``emit_*`` methods and a few attributes; a structural op is
emitted by ``_emit_<OpClass>`` (looked up along the op's MRO), so a new op adds a method per
target, not a branch here.

>>> import ntksym
>>> from ntksym.codegen.liveness import Slots
>>> from ntksym.codegen.printer import NumbaPrinter
>>> arch = ntksym.loads_spec('name = "c"\\ninput = { shape = [3, 3, 1] }\\n'
...     '[[layer]]\\nkind = "conv"\\nactivation = "relu"\\n'
...     '[[layer]]\\nkind = "global_avg_pool"\\n[[layer]]\\nkind = "dense"\\n')
>>> p = arch.derive()
>>> from ntksym.codegen.slices import CpuSlices            # the CPU target
>>> w = CpuSlices(p, Slots(p), NumbaPrinter(), slice_plan(p))
>>> w.tail(store=False)[:2]
['Sigma_4 = acc[0] * 0.012345679012345678', 'Theta_4 = acc[1] * 0.012345679012345678']
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import sympy as sp

from ntksym.codegen.common import cse_block, emitter_of, hyper_lines
from ntksym.codegen.liveness import is_diag
from ntksym.codegen.printer import identifier
from ntksym.ir.ops import Flatten, GlobalAvg, PatchSum
from ntksym.ir.program import Structural


def slice_plan(program):
    """The schedule's facts when ``program`` fits the per-offset-slice schedule, else None.

    It fits when its structural steps are stride-1 patch sums (all circular or none), then one
    readout (``global_avg`` or ``flatten``), with only per-pair scalar steps after it.
    """
    structural = [k for k, s in enumerate(program.steps) if isinstance(s, Structural)]
    if not structural:
        return None
    red = structural[-1]
    rstep = program.steps[red]
    if not isinstance(rstep.op, (GlobalAvg, Flatten)):
        return None
    circ = set()
    for k in structural[:-1]:
        s = program.steps[k]
        if not isinstance(s.op, PatchSum) or not s.op.is_stride_one:
            return None
        circ.add(s.op.circular)
    if len(circ) > 1:
        return None
    for s in program.steps[red + 1:]:
        for a in s.cross:
            if program.shapes.get(a.target.name, (1, 1)) != (1, 1):
                return None
    H, W = rstep.op.in_hw
    return {"reduce_step": red, "circular": bool(circ and circ.pop()), "op": rstep.op,
            "final_hw": (int(H), int(W))}


def diag_symbols(step):
    """The per-image diagonals (``*_xx``, ``*_yy``) an elementwise step reads, sorted."""
    return sorted({s.name for a in step.cross for s in a.expr.free_symbols if is_diag(s.name)})


class SliceWalker(ABC):
    """The slice schedule of ``program`` (``plan`` from :func:`slice_plan`) over ``slots``
    (:class:`ntksym.codegen.liveness.Slots`), printed by ``printer``.

    ``walk(store)`` lists the lines that carry one offset slice through the layers; with
    ``store`` they belong to the self pair (x, x) and keep its per-pixel diagonals.
    ``tail(store)`` lists the scalar steps after the readout."""

    #: the readout accumulators the tail reads
    acc_name = "acc"
    #: where a self pair's tail keeps its scalar diagonals
    self_diag = "D"
    #: CSE the tail with the lowered correlation (the module defines ``_clip1``)
    lower_tail = False

    def __init__(self, program, plan, slots, printer):
        self.p = program
        self.plan = plan
        self.slots = slots
        self.printer = printer
        self.red = plan["reduce_step"]
        self.circ = plan["circular"]
        self.rstep = program.steps[self.red]
        self.reduced = [(a, b) for a, b in zip(self.rstep.inputs, self.rstep.outputs)
                        if not is_diag(b.name)]
        # the readout: every offset (global average) or offset 0 only (the trace)
        self.trace_only = isinstance(plan["op"], Flatten)
        Hf, Wf = plan["final_hw"]
        Pf = Hf * Wf
        self.norm = sp.Rational(1, Pf) if self.trace_only else sp.Rational(1, Pf * Pf)

    def literal(self, value):
        return repr(float(value))

    # ---- the walk
    def walk(self, store):
        L = self.prologue(store) + self.emit_input(store)
        for k, step in enumerate(self.p.steps[:self.red]):
            L.append(f"# {step.node}: {step.description}")
            if isinstance(step, Structural):
                L += self.emit_op(step, store)
            elif step.cross:
                L += self.emit_elementwise(k, step, store)
        L.append(f"# {self.rstep.node}: {self.rstep.description} (this offset's share)")
        return L + self.emit_readout(store)

    def emit_op(self, step, store):
        """Lines of a structural step: ``_emit_<OpClass>`` of the first class along its MRO."""
        return emitter_of(self, step.op)(step, store)

    def prologue(self, store):
        return []

    # ---- what each target says (CpuSlices in slices.py, CudaSlices in cuda_slices.py)
    @abstractmethod
    def emit_input(self, store):
        """Lines that fill the input slice (the offset's Gram products)."""

    @abstractmethod
    def emit_elementwise(self, k, step, store):
        """Lines of the elementwise step ``k`` on the current slice."""

    @abstractmethod
    def emit_readout(self, store):
        """Lines that add this offset's share of the readout to the accumulators."""

    # ---- the scalar tail, the same text on every target but for its names and literals
    def tail(self, store):
        L = (["Dx = D", "Dy = D"] if store else []) + hyper_lines(self.p)
        diag_slot = self.slots.diag_slot

        def keep(name):
            if store and name in diag_slot:
                L.append(f"{self.self_diag}[{diag_slot[name]}, 0] = {identifier(name)}")

        for n, (_, b) in enumerate(self.reduced):
            L.append(f"{identifier(b.name)} = {self.acc_name}[{n}] * {self.literal(self.norm)}")
            keep(b.name)
        for k, step in enumerate(self.p.steps[self.red + 1:], start=self.red + 1):
            L.append(f"# {step.node}: {step.description}")
            if not step.cross:
                continue
            for d in diag_symbols(step):
                side = "Dx" if d.endswith("_xx") else "Dy"
                L.append(f"{identifier(d)} = {side}[{diag_slot[d[:-3]]}, 0]")
            L += cse_block(step.cross, self.printer, f"c{k}_", lower=self.lower_tail)
            for a in step.cross:
                keep(a.target.name)
        pr = self.printer.doprint
        outs = [pr(e + sp.Float(0.0)) if e.is_Number else pr(e) for e in self.p.outputs.values()]
        L.append(f"return ({', '.join(outs)},)")
        return L
