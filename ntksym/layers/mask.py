"""Pruning masks on weight matrices: spec keys, the sympy factors of the kernel rule, and the
finite-width mask sampling.  Shared by every weight layer that accepts ``mask`` (``dense``,
``conv`` and ``rnn`` use the same functions).

Spec (SPEC.md §1)::

    mask = { kind = "bernoulli", keep = 0.5, rescale = true }    # Yang & Wang (2023)
    mask = { kind = "magnitude", keep = 0.9, scope = "layer" }   # keep the largest |w|
    mask = { kind = "count", remove = 1000, replacement = true } # Qian & Klabjan (2021)
    mask = { kind = "bernoulli", keep = 0.5, matrices = ["W"] }  # rnn: which matrices (W, A)

Conventions
-----------
The masked layer computes ``c_W (W ⊙ m) y`` with W ~ N(0, 1).  ``m`` takes the values 0 and
``s`` (s = 1/sqrt(keep) for a rescaled Bernoulli mask, 1 otherwise).  Gradients are taken with
respect to W (Yang & Wang's convention), so the gradient of a kept entry carries the factor s
and a pruned entry has gradient 0.  (With respect to W' = W ⊙ m the NTK term of the layer is
E[1{m != 0}] / E[m^2] times this one: a factor keep smaller for a rescaled Bernoulli mask.)

Two factors enter the kernel rule of the layer:

* ``weight``: E[(W m)^2], multiplying the weight variance (forward NNGP and the backward NTK
  propagation);
* ``grad``: E[m^2], multiplying the W-gradient term of the layer's own NTK contribution.

=============  ======================================  =====================
kind           weight = E[(W m)^2]                      grad = E[m^2]
=============  ======================================  =====================
bernoulli      keep  (1 if rescale)                     keep  (1 if rescale)
magnitude      keep + 2 t phi(t), t = Phi^-1(1-keep/2)  keep
count          kept fraction q                          q
=============  ======================================  =====================

Magnitude pruning at initialization keeps |W_ij| > t where t is the (1 - keep) quantile of
|W| (|W| has CDF 2 Phi(t) - 1, so t = Phi^{-1}(1 - keep/2)); its second moment is the
truncated-Gaussian moment E[W^2 1{|W| > t}], which :func:`magnitude_second_moment` derives by
integration in sympy.  Magnitudes are those of the unit-variance draws W, so within a layer
the ranking is that of the effective weights c_W W; ``scope = "global"`` ranks all globally
masked layers together, which in the limit keeps the same fraction in every layer.

A count mask removes ``remove`` = N entries drawn uniformly from the P = fan_in * width
entries: without replacement q = 1 - N/P, with replacement (N draws, repeats allowed)
q = (1 - 1/P)^N.  With an open (infinite) width the fraction tends to 1.

The factors of bernoulli, filter and count masks are exact fractions, computed without sympy
(``ntksym check`` prints them; the kernel rules turn them into sympy Rationals with
``sympy_number``); the magnitude moment is a sympy Float.

>>> f = mask_factors({"kind": "bernoulli", "keep": 0.5, "rescale": False}, 8, 16)
>>> f.weight, f.grad
(Fraction(1, 2), Fraction(1, 2))
>>> round(float(mask_factors({"kind": "magnitude", "keep": 0.5, "scope": "layer"},
...                          8, 16).weight), 6)
0.928674
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .base import REQUIRED

# sympy and NumPy are imported inside the functions that use them: validating a mask and
# describing a bernoulli, filter or count mask need neither (ntksym.layers.base)

#: kind -> {key: (type name, default or REQUIRED)}
MASK_KINDS = {
    "bernoulli": {"keep": ("number", REQUIRED), "rescale": ("bool", False)},
    "magnitude": {"keep": ("number", REQUIRED), "scope": ("string", "layer")},
    "count": {"remove": ("int", REQUIRED), "replacement": ("bool", False)},
    # conv only: whole q x q filters (one in-channel -> out-channel slice) kept with P = keep
    "filter": {"keep": ("number", REQUIRED)},
}
SCOPES = ("layer", "global")


def validate_mask(value, error, extra=None):
    """Check a ``mask`` table; return it with defaults filled in.

    ``error(message, key)`` raises the caller's SpecError (file, line, layer, key).
    Keys are reported as ``mask.keep`` etc.  ``extra``: layer-specific keys accepted by every
    kind, {key: (type name, default)} (type "list" is a list of strings; the layer checks
    the values), e.g. ``matrices`` on ``rnn``.

    >>> validate_mask({"kind": "bernoulli", "keep": 0.5}, None)
    {'kind': 'bernoulli', 'keep': 0.5, 'rescale': False}
    """
    if not isinstance(value, dict):
        error(f"expected a table like {{ kind = \"bernoulli\", keep = 0.5 }}, got {value!r}",
              "mask")
    kind = value.get("kind")
    if kind is None:
        error("missing 'kind'; valid mask kinds: " + ", ".join(MASK_KINDS), "mask.kind")
    if kind not in MASK_KINDS:
        close = difflib.get_close_matches(str(kind), list(MASK_KINDS), n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        error(f"unknown mask kind {kind!r}; valid: {', '.join(MASK_KINDS)}{hint}", "mask.kind")
    keys = dict(MASK_KINDS[kind], **(extra or {}))
    out = {"kind": kind}
    for k in value:
        if k != "kind" and k not in keys:
            close = difflib.get_close_matches(k, list(keys), n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            error(f"unknown key for a '{kind}' mask; valid: kind, {', '.join(keys)}{hint}",
                  f"mask.{k}")
    for k, (typ, default) in keys.items():
        if k not in value:
            if default == REQUIRED:
                error(f"a '{kind}' mask needs '{k}'", f"mask.{k}")
            out[k] = list(default) if isinstance(default, list) else default
            continue
        v = value[k]
        isnum = isinstance(v, (int, float)) and not isinstance(v, bool)
        if typ == "number" and not isnum:
            error(f"expected a number, got {v!r}", f"mask.{k}")
        if typ == "int" and not (isinstance(v, int) and not isinstance(v, bool)):
            error(f"expected an integer, got {v!r}", f"mask.{k}")
        if typ == "bool" and not isinstance(v, bool):
            error(f"expected true or false, got {v!r}", f"mask.{k}")
        if typ == "string" and not isinstance(v, str):
            error(f"expected a string, got {v!r}", f"mask.{k}")
        if typ == "list" and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            error(f"expected a list of names, got {v!r}", f"mask.{k}")
        out[k] = float(v) if typ == "number" else (list(v) if typ == "list" else v)
    if "keep" in out and not (0.0 < out["keep"] <= 1.0):
        error(f"keep is the kept fraction and must be in (0, 1], got {out['keep']!r}", "mask.keep")
    if kind == "magnitude" and out["scope"] not in SCOPES:
        error(f"scope must be one of {', '.join(map(repr, SCOPES))}, got {out['scope']!r}",
              "mask.scope")
    if kind == "count" and out["remove"] < 0:
        error(f"remove must be >= 0, got {out['remove']!r}", "mask.remove")
    return out


def check_mask_size(mask, fan_in, width, error, what="this weight matrix"):
    """A count mask without replacement cannot remove more entries than the matrix has.

    Checked whenever both sizes are known (a finite network, or widths given in the spec).
    ``what`` names the matrix in the message (e.g. "the recurrent matrix W" on rnn).
    """
    if mask is None or mask["kind"] != "count" or fan_in is None or width is None:
        return
    total = int(fan_in) * int(width)
    if not mask["replacement"] and mask["remove"] > total:
        error(f"mask.remove = {mask['remove']} exceeds the {fan_in} x {width} = {total} entries "
              f"of {what} (without replacement); lower remove, widen the layer, or "
              "set replacement = true", "mask.remove")


# --------------------------------------------------------------------- the sympy factors

def _symbols():
    """t (the threshold) and w (the weight), the symbols of the truncated moment."""
    import sympy as sp
    return sp.Symbol("t", positive=True), sp.Symbol("w", real=True)


@dataclass
class MaskFactors:
    """The mask's multipliers of the kernel rule and how they were obtained.

    weight : E[(W m)^2]; grad : E[m^2] (exact: a Fraction or int, or for the magnitude moment
    a sympy Float); text : one line for ``describe``; note : the derivation, printed by
    ``ntksym derive``.
    """

    weight: Any
    grad: Any
    text: str
    note: str


def magnitude_threshold(keep):
    """t with P(|W| > t) = keep for W ~ N(0, 1):
    t = Phi^{-1}(1 - keep/2) = sqrt(2) erfinv(1 - keep).

    >>> import sympy as sp
    >>> round(float(magnitude_threshold(sp.Rational(1, 2))), 6)
    0.67449
    """
    import sympy as sp
    return sp.sqrt(2) * sp.erfinv(1 - keep)


def magnitude_second_moment(keep=None):
    """E[W^2 1{|W| > t}] for W ~ N(0, 1), derived by sympy, and t = Phi^{-1}(1 - keep/2).

    Returns ``(moment as an expression of t, t as an expression of keep)``; with ``keep`` None
    the symbol ``keep`` is used.  The closed form is
    erfc(t/sqrt 2) + 2 t phi(t) = keep + 2 t phi(t).

    >>> import sympy as sp
    >>> m, t = magnitude_second_moment()
    >>> T = sp.Symbol("t", positive=True)
    >>> closed = sp.erfc(T / sp.sqrt(2)) + 2 * T * sp.exp(-T**2 / 2) / sp.sqrt(2 * sp.pi)
    >>> sp.simplify((m - closed).rewrite(sp.erf))
    0
    """
    import sympy as sp
    k = sp.Symbol("keep", positive=True) if keep is None else keep
    return _truncated_moment(), magnitude_threshold(k)


@functools.lru_cache(maxsize=None)
def _truncated_moment():
    """E[W^2 1{|W| > t}] as an expression of t (integrated once, then memoized)."""
    import sympy as sp
    T, W = _symbols()
    density = sp.exp(-W ** 2 / 2) / sp.sqrt(2 * sp.pi)
    # both tails, by symmetry twice the upper one
    return sp.simplify(2 * sp.integrate(W ** 2 * density, (W, T, sp.oo)))


def count_kept_fraction(remove, total, replacement):
    """Expected kept fraction of a count mask: 1 - N/P, or (1 - 1/P)^N with replacement
    (exact).

    >>> count_kept_fraction(7, 30, False), count_kept_fraction(2, 4, True)
    (Fraction(23, 30), Fraction(9, 16))
    """
    N, P = int(remove), Fraction(int(total))
    return (1 - 1 / P) ** N if replacement else 1 - N / P


def mask_factors(mask, fan_in=None, width=None, digits=30):
    """The :class:`MaskFactors` of a validated mask on a fan_in x width weight matrix.

    Exact fractions where possible (the spec's decimal keep = 0.05 is 1/20, as
    ``sympy_number`` reads it); the magnitude moment (an erfinv of keep) as a sympy Float of
    ``digits`` significant digits, its symbolic form in ``note``.
    """
    kind = mask["kind"]
    if kind == "bernoulli":
        keep = _exact(mask["keep"])
        f = 1 if mask["rescale"] else keep
        how = ("m = Bernoulli(keep)/sqrt(keep): E[m^2] = 1, the dense kernel (Yang & Wang Cor. 3.3)"
               if mask["rescale"] else "m = Bernoulli(keep): E[m^2] = keep (Yang & Wang Thm. 3.1)")
        return MaskFactors(f, f, f"bernoulli mask keep={mask['keep']}, rescale="
                           f"{str(mask['rescale']).lower()}: weight variance x {f}, "
                           f"W-gradient term x {f}", how)
    if kind == "magnitude":
        import sympy as sp  # the moment is an integral and an erfinv: sympy
        keep = _exact(mask["keep"])
        moment, t = magnitude_second_moment(sp.Rational(keep.numerator, keep.denominator))
        tval = sp.Float(t.evalf(digits), digits)
        weight = (sp.Float(moment.subs(_symbols()[0], tval).evalf(digits), digits) if keep != 1
                  else sp.Integer(1))
        how = (f"keep |W| > t, t = sqrt(2) erfinv(1 - keep) = {float(tval):.12g}; "
               f"E[W^2 1{{|W|>t}}] = {moment} = {float(weight):.12g}; E[m^2] = keep = {keep}")
        return MaskFactors(weight, keep, f"magnitude mask keep={mask['keep']} "
                           f"(scope {mask['scope']}): weight variance x {float(weight):.12g}, "
                           f"W-gradient term x {keep}", how)
    if kind == "filter":
        keep = _exact(mask["keep"])
        return MaskFactors(keep, keep, f"filter mask keep={mask['keep']}: weight variance x "
                           f"{keep}, W-gradient term x {keep}",
                           "whole q x q filters kept with probability keep: every entry has "
                           "E[m^2] = keep (the shared mask of a filter's offsets does not "
                           "matter: the kernel only involves E[W_i^2 m_i^2] entry by entry)")
    if kind == "count":
        if fan_in is None or width is None:
            q = 1
            how = (f"removes {mask['remove']} of fan_in x width entries; with an open width the "
                   "kept fraction tends to 1 (the mask has no effect in the limit)")
        else:
            q = count_kept_fraction(mask["remove"], int(fan_in) * int(width), mask["replacement"])
            form = "(1 - 1/P)^N" if mask["replacement"] else "1 - N/P"
            how = (f"kept fraction {form}, N = {mask['remove']}, P = {fan_in} x {width}: "
                   f"{float(q):.12g}")
        return MaskFactors(q, q, f"count mask remove={mask['remove']}, replacement="
                           f"{str(mask['replacement']).lower()}: weight variance x "
                           f"{float(q):.12g}, W-gradient term x {float(q):.12g}", how)
    raise ValueError(f"unknown mask kind {kind!r}")


def _exact(value):
    """A spec number as an exact fraction of its decimal text: 0.05 -> 1/20 (as
    ``ntksym.layers.base.sympy_number`` reads it)."""
    return Fraction(value) if isinstance(value, int) else Fraction(repr(float(value)))


# ------------------------------------------------------------------ finite-width sampling

def bernoulli_keep(rng, shape, keep):
    """A boolean matrix with P(True) = keep, from random bytes (fast: 1-4 bytes per entry).

    The threshold is exact when keep * 2^8 (resp. 2^16) is an integer; otherwise 32-bit draws
    set P(True) to keep within 2^-32.
    """
    import numpy as np
    if keep >= 1.0:
        return np.ones(shape, dtype=bool)
    for bits, dtype in ((8, np.uint8), (16, np.uint16)):
        thr = keep * 2.0 ** bits
        if thr == int(thr):
            return rng.integers(0, 2 ** bits, size=shape, dtype=dtype) < int(thr)
    u = rng.integers(0, 2 ** 32, size=shape, dtype=np.uint32)
    return u < np.uint64(round(keep * 2.0 ** 32))


def sample_mask(mask, W, rng):
    """(kept: bool array like W, value s of m on kept entries) for one draw of W.

    ``magnitude`` with ``scope = "global"`` returns None here: its threshold needs every
    globally masked layer (see :func:`apply_global_magnitude`).
    """
    import numpy as np
    kind = mask["kind"]
    if kind == "bernoulli":
        kept = bernoulli_keep(rng, W.shape, mask["keep"])
        return kept, (1.0 / np.sqrt(mask["keep"]) if mask["rescale"] else 1.0)
    if kind == "magnitude":
        if mask["scope"] == "global":
            return None, 1.0
        return magnitude_keep(np.abs(W), mask["keep"]), 1.0
    if kind == "count":
        kept = np.ones(W.shape, dtype=bool)
        total = W.size
        if mask["replacement"]:
            idx = rng.integers(0, total, size=mask["remove"])
        else:
            idx = rng.choice(total, size=mask["remove"], replace=False)
        kept.reshape(-1)[idx] = False
        return kept, 1.0
    raise ValueError(kind)


def magnitude_keep(absw, keep):
    """Keep the round(keep * size) largest entries of ``absw`` (ties are measure zero)."""
    import numpy as np
    k = int(round(keep * absw.size))
    kept = np.zeros(absw.shape, dtype=bool)
    if k <= 0:
        return kept
    flat = absw.reshape(-1)
    idx = np.argpartition(flat, flat.size - k)[flat.size - k:]
    kept.reshape(-1)[idx] = True
    return kept


def apply_global_magnitude(arrays, keep):
    """Masks for global magnitude pruning: one threshold over all ``arrays`` (|W| compared
    across layers); returns one boolean mask per array."""
    import numpy as np
    flat = np.concatenate([np.abs(a).reshape(-1) for a in arrays])
    kept = magnitude_keep(flat, keep)
    out, start = [], 0
    for a in arrays:
        out.append(kept[start:start + a.size].reshape(a.shape))
        start += a.size
    return out


def finalize_global_masks(graph, weights):
    """Apply ``magnitude`` masks with ``scope = "global"``: one |W| threshold over every such
    layer of the network (and, separately, over their fresh backward copies ``W_back``).

    ``weights`` is {node: weight dict} as made by the layers' ``init``; matrices are masked in
    place and ``mask`` / ``mask_back`` are filled in.
    """
    nodes = [n for n in weights
             if (graph.nodes[n]["params"].get("mask") or {}).get("scope") == "global"]
    if not nodes:
        return
    keeps = {graph.nodes[n]["params"]["mask"]["keep"] for n in nodes}
    if len(keeps) != 1:
        # one threshold cannot give different kept fractions: a spec error, caught here because
        # only the finite network needs the common threshold
        from ntksym.errors import SpecError
        raise SpecError("all layers with a global magnitude mask must have the same keep "
                        f"(found {sorted(keeps)})", key="mask.keep")
    keep = keeps.pop()
    for key, mkey in (("W", "mask"), ("W_back", "mask_back")):
        have = [n for n in nodes if key in weights[n]]
        if not have:
            continue
        kept = apply_global_magnitude([weights[n][key] for n in have], keep)
        for n, k in zip(have, kept):
            weights[n][key] *= k
            weights[n][mkey] = k


# ---------------------------------------------------------------- symbolic kernel ratios

def inline_output(program, name="ntk"):
    """The output ``name`` of a KernelProgram as one expression of the input statistics
    Sigma_0, Sigma_0_xx, Sigma_0_yy (every SSA symbol substituted, mask factors evaluated)."""
    from ntksym.ir.symbols import y_side
    sub = {}
    for a in program.diag_assignments():
        e = a.expr.xreplace(sub)
        sub[a.target] = e
        sub[y_side(a.target)] = e.xreplace({s: y_side(s) for s in e.free_symbols
                                            if s.name.endswith("_xx")})
    for a in program.cross_assignments():
        sub[a.target] = a.expr.xreplace(sub)
    return _canonical_rho(program.outputs[name].xreplace(sub).doit())


def _canonical_rho(expr):
    """Rewrite every rho(c; a, b) as rho(c/a; 1, b/a): the correlation c / sqrt(a b) depends
    only on the ratios (a > 0), so kernels that differ by a positive scale of a layer's
    covariance get identical correlation terms and their ratio simplifies."""
    import sympy as sp

    from ntksym.ir.functions import ClippedCorrelation

    def canon(e):
        if isinstance(e, ClippedCorrelation):
            c, a, b = (canon(x) for x in e.args)
            return ClippedCorrelation(sp.cancel(c / a), sp.Integer(1), sp.cancel(b / a))
        if e.args:
            return e.func(*[canon(x) for x in e.args])
        return e

    return canon(expr)


def symbolic_ratio(program_a, program_b, name="ntk"):
    """simplify(K_a / K_b) of two kernel programs, fully inlined; a number when the kernels
    are proportional (e.g. alpha^L for Bernoulli-pruned vs dense ReLU MLPs, Yang & Wang
    Thm. 3.1; 1 with rescaled masks, Cor. 3.3).

    >>> import ntksym
    >>> pruned = ntksym.load_spec("spec/yang_wang_mlp.toml").derive()
    >>> dense = ntksym.load_spec("spec/cntk_mlp_depth3.toml").derive()
    >>> symbolic_ratio(pruned, dense)
    1/8
    """
    import sympy as sp
    r = sp.factor_terms(inline_output(program_a, name) / inline_output(program_b, name))
    # factor_terms suffices when the expressions differ by a constant factor; simplify is
    # the (slow) general fallback
    return r if not r.free_symbols else sp.simplify(r)


def evaluate_inline(program, X, name="ntk"):
    """K(X, X) from the fully inlined sympy expression of ``program`` (numpy, no compilation):
    an independent evaluation path beside the generated Numba code, for checks.

    >>> import ntksym, numpy as np
    >>> p = ntksym.load_spec("spec/yang_wang_mlp_rescaled.toml").derive()
    >>> float(evaluate_inline(p, np.eye(64)[:1])[0, 0])        # (L + 1) |x|^2
    4.0
    """
    import numpy as np
    import sympy as sp
    expr = inline_output(program, name)
    syms = [sp.Symbol(n, real=True) for n in ("Sigma_0", "Sigma_0_xx", "Sigma_0_yy")]
    fn = sp.lambdify(syms, expr, modules=[{
        "ClippedCorrelation": lambda c, a, b: np.clip(c / np.sqrt(a * b), -1.0, 1.0)}, "numpy"])
    X = np.asarray(X, dtype=np.float64)
    G = X @ X.T / program.input_scale
    d = np.diag(G)
    return np.broadcast_to(fn(G, d[:, None], d[None, :]), G.shape).copy()


def apply_mask(mask, W, rng):
    """Sample the mask for W and apply it in place (W <- W ⊙ m); global magnitude masks are
    applied later by :func:`finalize_global_masks`."""
    kept, value = sample_mask(mask, W, rng)
    if kept is not None:
        W *= kept
        if value != 1.0:
            W *= value
    return kept, value
