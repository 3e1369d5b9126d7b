"""The KernelProgram IR: the shared vocabulary of symbolic derivation, printing and codegen.

A kernel program is a straight-line list of steps over a small per-pair state:

* cross quantities of the pair (x, x'): ``Sigma_k`` (NNGP) and ``Theta_k`` (NTK), one SSA symbol
  per node k of the graph;
* per-example (diagonal) quantities ``Sigma_k_xx`` / ``Theta_k_xx`` computed by their own exact
  rule (e.g. ReLU: Sigma' = c * Sigma / 2) so that diagonals carry no arccos round-off.  In a
  cross expression the diagonal of the second example appears as ``Sigma_k_yy``.

``Elementwise`` steps assign new symbols from sympy expressions of old ones.  ``Structural`` steps
are index-moving operations with a fixed loop template (patch sum, pooling, time shift ...); the
vector (MLP) programs have none.

The special functions inside expressions (``ClippedCorrelation``, the quadrature expectations)
are in :mod:`ntksym.ir.functions`, the structural operations in :mod:`ntksym.ir.ops`, and the
text / LaTeX / Python printers of a program in :mod:`ntksym.ir.printing`.

Example
-------
>>> import sympy as sp
>>> a = Assign(sp.Symbol("Sigma_1"), 2 * sp.Symbol("Sigma_0"))
>>> Elementwise("dense_0", "dense", cross=[a]).cross[0].target
Sigma_1
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from .functions import ClippedCorrelation, Z  # noqa: F401  (re-exported for codegen)
from .ops import Readout, TimeRecurrence
from .printing import program_latex, program_python, program_text
from .symbols import y_side  # noqa: F401  (re-exported)

# ----------------------------------------------------------------------------------- steps

@dataclass(frozen=True)
class Assign:
    """target := expr (SSA: each target is assigned once)."""

    target: sp.Symbol
    expr: sp.Expr


@dataclass
class Elementwise:
    """New state entries as expressions of old ones at the same index.

    ``cross`` assignments compute pair quantities; they may read diagonal symbols of both
    examples (``*_xx`` for x, ``*_yy`` for x').  ``diag`` assignments compute per-example
    quantities from diagonal symbols of the same example only (written with ``*_xx`` names).
    ``joins``: the nodes a join (``add``, ``concat``) reads, in order; empty for one input.
    """

    node: str
    description: str
    cross: list = field(default_factory=list)
    diag: list = field(default_factory=list)
    joins: tuple = ()


@dataclass
class Structural:
    """An index-moving operation with a fixed loop template (patch sum, pooling, time shift...).

    ``op`` is the operation: a :class:`ntksym.ir.ops.StructuralOp` carrying its static
    parameters; ``inputs``/``outputs`` the symbols it reads and writes (cross and diagonal
    alike).
    """

    node: str
    description: str
    op: object
    inputs: tuple = ()
    outputs: tuple = ()


@dataclass
class KernelProgram:
    """A straight-line kernel recursion, printable as mathematics and as Numba code.

    Attributes
    ----------
    name, spec_hash : identify the spec it was derived from.
    input_kind : "vector" (the only kind with no structural steps), "image" or "sequence".
    input_cross, input_diag : the symbols of the input statistics: Sigma_0 = <x, x'> / d
        and Sigma_0_xx = |x|^2 / d for vectors.
    input_scale : d, the divisor of the input products.
    steps : list of Elementwise | Structural.
    outputs : ordered {name: symbol} of the cross results ("nngp", "ntk", "ntk[node.param]"...).
    diag_outputs : the same names for the per-example diagonal results (K(x, x)).
    layers : {node id: description} in order, for printing.
    """

    name: str
    spec_hash: str
    input_kind: str
    input_cross: sp.Symbol
    input_diag: sp.Symbol
    input_scale: int
    steps: list
    outputs: dict
    diag_outputs: dict
    per_layer: bool = False
    notes: list = field(default_factory=list)
    #: {symbol name: (H, W)} pixel grid of each state entry of an image program ((1, 1) for
    #: per-pair scalars after flatten / global_avg_pool)
    shapes: dict = field(default_factory=dict)
    #: {HyperSymbol: value when derived} of the learnable constants, in the spec's order;
    #: the generated code takes their values at run time (``hp``), in this order
    hyperparameters: dict = field(default_factory=dict)
    #: the hyperparameters whose tangents (``d<entry>/d[<name>]``) the program computes
    #: (:func:`ntksym.ir.tangent.tangent_program`)
    gradient: tuple = ()

    # --- symbol bookkeeping
    def cross_assignments(self):
        return [a for s in self.steps if isinstance(s, Elementwise) for a in s.cross]

    def diag_assignments(self):
        return [a for s in self.steps if isinstance(s, Elementwise) for a in s.diag]

    def diag_symbols_used_by_cross(self):
        """Diagonal (x side) symbols that cross expressions read, in assignment order."""
        needed = set()
        for a in self.cross_assignments():
            for s in a.expr.free_symbols:
                n = s.name
                if n.endswith("_xx") or n.endswith("_yy"):
                    needed.add(n[:-3] + "_xx")
        order = [self.input_diag.name] + [a.target.name for a in self.diag_assignments()]
        return [sp.Symbol(n, real=True) for n in order if n in needed]

    def grid_symbols(self):
        """Names of the symbols indexed by a time pair: in a sequence program, those assigned
        before a last/mean readout (empty for other programs)."""
        if self.input_kind != "sequence":
            return set()
        names = {self.input_cross.name, self.input_diag.name}
        for s in self.steps:
            op = getattr(s, "op", None)
            if isinstance(op, Readout) and op.mode != "all":
                break
            if isinstance(op, TimeRecurrence):
                names.update(a.target.name for a in op.cross + op.diag)
                names.update(prev.name for prev, _, _ in op.carry + op.carry_diag)
            elif isinstance(s, Elementwise):
                names.update(a.target.name for a in s.cross + s.diag)
        return names

    def __str__(self):
        return program_text(self)

    def latex(self):
        return program_latex(self)

    def python(self):
        return program_python(self)
