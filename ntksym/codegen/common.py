"""What every code generator shares: CSE'd blocks, the lowered clipped correlation, the
quadrature helpers, and the text templates of the generated modules (header, ``_corr``,
``_clip1``, ``_pick``), each written once and parameterised by what a target must say
(its decorator and its literals).

The generators (:mod:`~ntksym.codegen.vector`, :mod:`~ntksym.codegen.image`,
:mod:`~ntksym.codegen.sequence`, :mod:`~ntksym.codegen.cuda`,
:mod:`~ntksym.codegen.cuda_slices`) import from here and never from each other's privates.

>>> print(pick_source(2, "njit(cache=True)", "math.nan"))
@njit(cache=True)
def _pick(v, s):
    if s == 0:
        return v[0]
    elif s == 1:
        return v[1]
    return math.nan
<BLANKLINE>
"""

from __future__ import annotations

import sympy as sp

from ntksym.codegen.printer import NumbaPrinter, identifier
from ntksym.ir.program import ClippedCorrelation, y_side

#: the CPU's decorator of small helpers
NJIT = "njit(cache=True)"


class Clip1(sp.Function):
    """clip(c / d, -1, 1) with d = sqrt(a b) >= 0, and 0 when d = 0 (a zero variance: the pair
    is uncorrelated): the lowered ClippedCorrelation."""

    nargs = 2


def lower_clipped(expr):
    """ClippedCorrelation(c, a, b) -> Clip1(c, sqrt(a b)), so that CSE shares sqrt(a b) with
    the sqrt(a b) prefactor of the dual kernels (one square root per layer instead of two)."""
    return expr.replace(ClippedCorrelation,
                        lambda c, a, b: Clip1(c, sp.sqrt(a * b)))


def cse_block(assignments, printer, prefix, lower=False):
    """Lines for one step: shared subexpressions first, then the assignments.

    ``lower``: rewrite clipped correlations for CSE (the module must define ``_clip1``).

    >>> from ntksym.ir.program import Assign
    >>> x, y = sp.symbols("x y")
    >>> cse_block([Assign(y, sp.sin(x) + sp.sin(x) ** 2)], NumbaPrinter(), "c0_")
    ['c0_0 = math.sin(x)', 'y = c0_0*(c0_0 + 1.0)']
    """
    if not assignments:
        return []
    names = sp.numbered_symbols(prefix)
    exprs = [lower_clipped(a.expr) if lower else a.expr for a in assignments]
    repl, exprs = sp.cse(exprs, symbols=names,
                         optimizations="basic")
    lines = [f"{printer.doprint(s)} = {printer.doprint(e)}" for s, e in repl]
    for a, e in zip(assignments, exprs):
        lines.append(f"{identifier(a.target.name)} = {printer.doprint(e)}")
    return lines


def quadrature_source(printer):
    """Integrand functions and wrappers for every quadrature or Hermite expectation the printer
    met (:mod:`ntksym.duals.quadrature`, :mod:`ntksym.duals.hermite`)."""
    if not printer.quadrature_names:
        return ""
    from ntksym.duals.hermite import (
        NUMBA_HERMITE_SOURCE,
        hermite_k_source,
        numba_hermite_family,
        reflection,
    )
    from ntksym.duals.quadrature import NUMBA_QUADRATURE_SOURCE, numba_quadrature_wrapper
    from ntksym.ir.functions import HermiteExpectationBase
    from ntksym.ir.program import Z
    out = ["", "# ---- Gaussian expectations by piecewise Gauss-Legendre quadrature",
           NUMBA_QUADRATURE_SOURCE]
    fp = NumbaPrinter()
    mixed = {}                  # {family key: [(i, j) of the mixed members printed]}
    for cls in printer.quadrature_names:
        if issubclass(cls, HermiteExpectationBase) and cls.member_y is not None:
            mixed.setdefault(cls.family, []).append((cls.member, cls.member_y))
    if printer.hermite_families:
        out.append(NUMBA_HERMITE_SOURCE)
    for K in sorted({cls.hermite_k for _, cls in printer.hermite_families.values()}
                    - {HermiteExpectationBase.hermite_k}):
        out.append(hermite_k_source(K))
    rows = bool(printer.hoist)      # the vector target's row forms (a row's pairs at once)
    if rows:
        from ntksym.duals.hermite_rows import NUMBA_HERMITE_ROWS_SOURCE, numba_hermite_rows
        out.append(NUMBA_HERMITE_ROWS_SOURCE)
    for key, (fam, cls) in printer.hermite_families.items():
        names, reflections = [], []
        for i, (label, f) in enumerate(zip(cls.family[0], cls.members)):
            names.append(f"{fam}_f{i}")
            out.append(f"""
# {label}: f(z) = {sp.sstr(f)}
@njit(cache=True)
def {fam}_f{i}(z):
    return {fp.doprint(f + 0 * Z)} + 0.0 * z
""")
            refl = reflection(f, Z)      # f(-z) = sign f(z) + r(z): one evaluation per +-z
            if refl is not None and refl[1] != 0:
                out.append(f"""
# f(-z) = {'' if refl[0] > 0 else '-'}f(z) + r(z)
@njit(cache=True)
def {fam}_r{i}(z):
    return {fp.doprint(refl[1] + 0 * Z)} + 0.0 * z
""")
            reflections.append(None if refl is None else
                               (refl[0], f"{fam}_r{i}" if refl[1] != 0 else ""))
        out.append(numba_hermite_family(fam, names, cls.breakpoints, cls.soft,
                                        mixed=mixed.get(key, ()), K=cls.hermite_k,
                                        reflections=reflections))
        if rows:
            out.append(numba_hermite_rows(fam, len(names), mixed.get(key, ()), cls.hermite_k))
    for cls, name in printer.quadrature_names.items():
        if issubclass(cls, HermiteExpectationBase):
            continue
        f = fp.doprint(cls.f + 0 * Z)
        out.append(f"""
# {cls.label}: f(z) = {sp.sstr(cls.f)}
@njit(cache=True)
def {name}_f(z):
    return {f} + 0.0 * z

""")
        g = fp.doprint(cls.g + 0 * Z)
        out.append(f"""
@njit(cache=True)
def {name}_g(z):
    return {g} + 0.0 * z

""")
        out.append(numba_quadrature_wrapper(name, f"{name}_f", f"{name}_g", cls.breakpoints,
                                            soft=cls.soft))
    return "\n".join(out)


def emitter_of(target, op):
    """``target._emit_<OpClass>`` for the first class along ``op``'s MRO that the target
    writes: a new structural op adds a method per target, not a branch in a lowering loop."""
    for cls in type(op).__mro__:
        method = getattr(target, f"_emit_{cls.__name__}", None)
        if method is not None:
            return method
    raise ValueError(f"{type(target).__name__} has no template for structural op {op!r}")


# ---------------------------------------------------------------------------- templates

def module_header(program, *, version, notes, imports, constants, tool="codegen", dtype=None):
    """The generated module's docstring, imports and constants, up to INPUT_KIND; then the
    lines of ``constants`` (each target's own, in its order)."""
    about = f", {dtype}" if dtype else ""
    if program.hyperparameters:
        notes += ("\nLearnable constants: their values are the argument hp of every entry "
                  "point (a float64 array\nin the order of HYPERPARAMETERS); the code does not "
                  "depend on them.")
    title = (f"Generated by ntksym {tool} from spec '{program.name}' "
             f"(sha256 {program.spec_hash}){about}.")
    lines = "".join(f"{c}\n" for c in constants)
    return f'''"""{title}

{notes}
"""

import math

import numpy as np
{imports}

SPEC_NAME = {program.name!r}
SPEC_HASH = {program.spec_hash!r}
CODEGEN_VERSION = {version!r}
INPUT_KIND = "{program.input_kind}"
''' + lines


def corr_source(decorator=NJIT, zero="0.0", one="1.0"):
    """``_corr(c, a, b)``: the clipped correlation, 0 for a zero variance."""
    return f'''

@{decorator}
def _corr(c, a, b):
    # clip(c / sqrt(a b), -1, 1); a zero variance makes the pair uncorrelated
    d = math.sqrt(a * b)
    if d <= {zero}:
        return {zero}
    r = c / d
    return {one} if r > {one} else (-{one} if r < -{one} else r)
'''


def clip1_source(decorator=NJIT, zero="0.0", one="1.0"):
    """``_clip1(c, d)``: the lowered clipped correlation (:class:`Clip1`)."""
    return f'''

@{decorator}
def _clip1(c, d):
    # c / d clipped to [-1, 1], d = sqrt(a b); a zero variance makes the pair uncorrelated
    if d <= {zero}:
        return {zero}
    r = c / d
    return {one} if r > {one} else (-{one} if r < -{one} else r)
'''


def pick_body(n_out, fallback):
    """The body of ``_pick(v, s)``: output ``s`` of the tuple ``v``."""
    return "\n".join(f"    {'if' if k == 0 else 'elif'} s == {k}:\n        return v[{k}]"
                     for k in range(n_out)) + f"\n    return {fallback}"


def pick_source(n_out, decorator, fallback):
    """``_pick(v, s)`` under ``decorator`` (``fallback``: the value of an unknown s)."""
    return f"@{decorator}\ndef _pick(v, s):\n{pick_body(n_out, fallback)}\n"


def hyper_arg(program):
    """", hp" when the program has learnable constants (their values, a float64 array in the
    order of ``program.hyperparameters``, are an argument of every generated function that
    evaluates expressions), else "" (the module is then what it was before learnable
    constants existed)."""
    return ", hp" if program.hyperparameters else ""


def hyper_lines(program):
    """The lines that unpack ``hp`` into the locals the printer names (``hp_weight_var``).

    >>> import ntksym
    >>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [2] }\\n[[layer]]\\n'
    ...                          'kind = "dense"\\nweight_var = { value = 2.0, learn = true }\\n')
    >>> hyper_lines(arch.derive())
    ['hp_weight_var_dense_0 = hp[0]']
    """
    return [f"hp_{identifier(h.name)} = hp[{k}]"
            for k, h in enumerate(program.hyperparameters)]


def hyper_check(program):
    """The lines of a convenience entry point (``kernel``) that check its ``hp`` argument
    (none without learnable constants)."""
    if not program.hyperparameters:
        return ""
    return ('''    hp = np.ascontiguousarray(hp, dtype=np.float64)
    if hp.shape != (len(HYPERPARAMETERS),):
        raise ValueError("hp: one value per name of HYPERPARAMETERS, in that order")
''')


def hyper_constants(program):
    """The module constant naming the learnable constants (none without them)."""
    if not program.hyperparameters:
        return []
    names = tuple(h.name for h in program.hyperparameters)
    return [f"HYPERPARAMETERS = {names!r}"]


def function(header, lines, indent="    "):
    """A function's source: ``header`` (decorator and def line) and its indented body."""
    return header + "".join(f"{indent}{l}\n" for l in lines)


# ------------------------------------------------------------ the vector (MLP) recursion

def vector_functions(program, printer, decorator, lower, typed_constants=False, inline=None):
    """(source of ``diag_state(sq)`` and ``pair(...)``, n_diag) of a vector program, for the
    CPU (:mod:`~ntksym.codegen.vector`) and the GPU (:mod:`~ntksym.codegen.cuda`).

    ``lower``: CSE with the lowered correlation; ``typed_constants``: a constant diagonal
    output becomes ``c + 0*sq``, typed like sq (fp32 on the device).  A printer with a
    ``hoist`` dict (:class:`~ntksym.codegen.printer.NumbaPrinter`) fills it while the pair is
    printed: ``diag_state`` then also computes each hoisted per-example vector (returned after
    the outputs; the driver stores vector h in the columns ``_H<h>_OFF`` onwards of D, after
    the n_diag scalars) and ``pair`` takes ``Dx, ix, Dy, iy``: the state arrays and rows of
    both examples.

    ``inline``: a dict that receives the pair's pieces for a driver that writes the recursion
    into its own loop (:mod:`~ntksym.codegen.vector`): "params" (the pair's parameter names),
    "body" (its lines) and "returns" (the printed outputs)."""
    diag_needed = program.diag_symbols_used_by_cross()
    out_names = tuple(program.outputs)

    # the pair first: printing it records the per-example vectors it needs (printer.hoist)
    hp = hyper_arg(program)
    x_args = [identifier(s.name) for s in diag_needed]
    y_args = [identifier(y_side(s).name) for s in diag_needed]
    body = hyper_lines(program)
    for k, step in enumerate(program.steps):
        body += [f"# {step.node}: {step.description}"] + cse_block(step.cross, printer,
                                                                   f"c{k}_", lower=lower)
    ret = [printer.doprint(program.outputs[o]) for o in out_names]
    hoisted = [(printer.hermite_families[fam][0], xx, v)
               for (fam, xx), v in (printer.hoist or {}).items()]
    params = [identifier(program.input_cross.name)] + x_args + y_args + (
        ["Dx", "ix", "Dy", "iy"] if hoisted else []) + (["hp"] if hp else [])
    pair_fn = function(f"\n\n@{decorator}\ndef pair(" + ", ".join(params) + "):\n",
                       body + [f"return ({', '.join(ret)},)"])
    if inline is not None:
        inline.update(params=params, body=body, returns=ret)
    widths = hoisted_widths(printer)
    if hoisted:
        offs = [len(diag_needed) + sum(widths[:h]) for h in range(len(hoisted))]
        pair_fn = "\n\n" + "".join(
            f"_{v}_OFF = {o}  # columns of vector {v} in D\n"
            for o, (_, _, v) in zip(offs, hoisted)) + pair_fn

    # each per-example vector as soon as its variance is known: the diagonal duals of the
    # same family at that variance read its E[f_i^2] (vec_E[i], the coefficient rule's own;
    # printer.diag_vectors), instead of evaluating the rule again
    pending = list(zip(hoisted, widths))

    def coefficients(known):
        lines = []
        for (fam, xx, v), w in [p for p in pending if p[0][1] in known]:
            lines += [f"{v}_xx = np.empty({w})", f"{v}_E = {fam}_coef({identifier(xx)}, {v}_xx)"]
            pending.remove(((fam, xx, v), w))
            if printer.hoist is not None:
                key = next(k for k, vec in printer.hoist.items() if vec == v)
                printer.diag_vectors[key] = v
        return (["# per-example Hermite coefficient vectors of the pair's duals"] + lines
                if lines else [])

    body = hyper_lines(program) + [f"{identifier(program.input_diag.name)} = sq"]
    body += coefficients({program.input_diag.name})
    for k, step in enumerate(program.steps):
        body += [f"# {step.node}"] + cse_block(step.diag, printer, f"d{k}_", lower=lower)
        body += coefficients({a.target.name for a in step.diag})
    assert not pending, pending
    printer.diag_vectors.clear()
    ret = [identifier(s.name) for s in diag_needed]
    for o in out_names:
        e = program.diag_outputs[o]
        # "+ 0*sq" keeps a constant output (a network without weights on x) typed like sq
        ret.append(printer.doprint(e + 0 * program.input_diag) if typed_constants and e.is_Number
                   else printer.doprint(e))
    ret += [f"{v}_xx" for _, _, v in hoisted]
    diag_fn = function(f"\n\n@{decorator}\ndef diag_state(sq{hp}):\n",
                       body + [f"return ({', '.join(ret)},)"])
    return diag_fn + pair_fn, len(diag_needed)


def hoisted_widths(printer):
    """The lengths of the per-example vectors the printer hoisted (in order)."""
    from ntksym.duals.hermite import hermite_width
    return [len(cls.members) * hermite_width(cls.hermite_k)
            for cls in (printer.hermite_families[fam][1] for fam, _ in (printer.hoist or {}))]


def vector_driver_lines(n_diag, n_out, widths=()):
    """(the stores of diag_state's tuple t into D[i] and O[i], the arguments of pair(...)).

    Per-example vectors of the ``widths`` (after the outputs in t) go to the columns of D
    after the ``n_diag`` scalars; pair then reads them from D1[i] and D2[j]."""
    n_vec = len(widths)
    offs = [n_diag + sum(widths[:h]) for h in range(n_vec + 1)]
    cols = list(zip(offs[:-1], offs[1:]))
    stores = "\n".join([f"        D[i, {k}] = t[{k}]" for k in range(n_diag)] +
                       [f"        O[i, {k}] = t[{n_diag + k}]" for k in range(n_out)] +
                       [f"        D[i, {lo}:{hi}] = t[{n_diag + n_out + h}]"
                        for h, (lo, hi) in enumerate(cols)])
    pair_args = ", ".join([f"D1[i, {k}]" for k in range(n_diag)] +
                          [f"D2[j, {k}]" for k in range(n_diag)] +
                          (["D1", "i", "D2", "j"] if n_vec else []))
    return stores, pair_args
