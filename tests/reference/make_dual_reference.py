"""High-precision references for the dual kernels of the activations without closed forms.

    PYTHONPATH=. python tests/reference/make_dual_reference.py [--quick]

writes tests/reference/duals_mpmath.json: for tanh, swish(h=1), huberized_relu(h=0.5) and the
expressions "z*(1+erf(z/sqrt(2)))/2" (GELU) and "log(1+exp(z))" (softplus), the values of
E[phi(u) phi(v)] and E[phi'(u) phi'(v)], (u, v) ~ N(0, [[a, c], [c, b]]), c = rho sqrt(ab), at
variances 1e-3 .. 1e4 and rho over [-1, 1], and the diagonals E[phi(u)^2], E[phi'(u)^2].
Everything is computed with mpmath at 30 significant digits, by three independent routes:

* |rho| <= 0.9: the Mehler series sum_k h_k(a) h_k(b) rho^k, h_k(a) = E[phi(sqrt(a) z)
  He_k(z)] / sqrt(k!) by piecewise Gauss-Legendre (30 nodes per piece of length <= 1/2 on
  [-R, R], R = sqrt(4K + 2) + 12, pieces graded towards the activation's kinks and soft
  features), K <= 400 terms, truncated where the Cauchy-Schwarz tail bound
  |rho|^(K+1) sqrt(T_K(a) T_K(b)) (T_K = E[phi^2] - sum_{k<=K} h_k^2) is below 1e-17 of
  sqrt(E_a E_b); the bound reached is recorded (tests use the points where it is < 1e-12);
* |rho| = 1: the one-dimensional integral E[phi(sqrt(a) z) phi(+-sqrt(b) z)];
* otherwise (rho = 0.99, -0.9999): a two-dimensional rule in the natural variables
  (u ~ N(0, a), then v | u ~ N(c u / a, b - c^2 / a)), Gauss-Legendre of order 14 on pieces
  graded geometrically (ratio 4) towards every kink and soft feature of the integrand, at two
  orders (10 and 14): their difference is recorded as the error estimate (order 16 agrees
  with order 24 to 1e-19 for tanh at a = 1, b = 1e4, rho = 0.99);
* GELU's values are also those of its closed form (the activation "gelu"), evaluated at 30
  digits: the file records both, and the generator checks that they agree.

The JSON holds, per activation, "points": [a, b, rho, E_phi, E_dphi, err_bound_phi,
err_bound_dphi, route] and "diag": [a, E[phi^2], E[phi'^2]].  tests/duals/test_hermite.py
compares the library's duals against these numbers.  ``--quick`` computes a small subset
(a smoke test of this script, not a reference).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import mpmath as mp

mp.mp.dps = 30
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "reference" / "duals_mpmath.json"

HALF_PI = mp.pi / 2


def _swish(h):
    h = mp.mpf(h)

    def f(x):
        return x * (1 + mp.tanh(x / h)) / mp.mpf("2.2")

    def df(x):
        t = mp.tanh(x / h)
        return (1 + t) / mp.mpf("2.2") + x * (1 - t * t) / (mp.mpf("2.2") * h)
    return f, df


def _huber(h):
    h = mp.mpf(h)

    def f(x):
        return 0 if x < 0 else (x * x / (2 * h) if x <= h else x - h / 2)

    def df(x):
        return 0 if x < 0 else (x / h if x <= h else mp.mpf(1))
    return f, df


def _gelu(x):
    return x * (1 + mp.erf(x / mp.sqrt(2))) / 2


def _dgelu(x):
    return (1 + mp.erf(x / mp.sqrt(2))) / 2 + x * mp.npdf(x)


def _softplus(x):
    return mp.log1p(mp.exp(x)) if x < 30 else x + mp.log1p(mp.exp(-x))


def _sigmoid(x):
    return 1 / (1 + mp.exp(-x))


# name -> (phi, phi', features [(point, width)]: width 0 = a kink, > 0 = the distance of the
# nearest complex singularity, or 1 for an entire function with Gaussian growth)
ACTIVATIONS = {
    "tanh": (mp.tanh, lambda x: 1 - mp.tanh(x) ** 2, [(0, HALF_PI)]),
    "swish(h=1.0)": (*_swish(1.0), [(0, HALF_PI)]),
    "huberized_relu(h=0.5)": (*_huber(0.5), [(0, 0), (mp.mpf("0.5"), 0)]),
    "activation(expr='z*(1+erf(z/sqrt(2)))/2')": (_gelu, _dgelu, [(0, 1)]),
    "activation(expr='log(1+exp(z))')": (_softplus, _sigmoid, [(0, mp.pi)]),
}

VARIANCES = [1e-3, 1.0, 1e2, 1e4]
PAIRS = [(v, v) for v in VARIANCES] + [(1e-3, 1.0), (1.0, 1e4)]
MEHLER_RHOS = [-0.9, -0.5, 0.0, 0.3, 0.7, 0.9]
HARD_PAIRS = [(1.0, 1.0), (1.0, 1e4)]
HARD_RHOS = [-0.9999, 0.99]
K_REF = 400

_GL = {}


def gl(n):
    if n not in _GL:
        _GL[n] = mp.gauss_quadrature(n, "legendre")
    return _GL[n]


def graded(center, width, lo, hi, ratio=4):
    """Cuts at center and center +- width * ratio^j inside (lo, hi) (only center if width = 0)."""
    out = [center]
    if width > 0:
        d = width
        while d < hi - lo:
            out += [center - d, center + d]
            d *= ratio
    return [x for x in out if lo < x < hi]


def pieces(cuts, lo, hi, max_len):
    pts = sorted(set([lo, hi] + [c for c in cuts if lo < c < hi]))
    out = []
    for l, h in zip(pts[:-1], pts[1:]):
        m = max(1, int(mp.ceil((h - l) / max_len)))
        out += [(l + (h - l) * i / m, l + (h - l) * (i + 1) / m) for i in range(m)]
    return out


def rule(intervals, n):
    x, w = gl(n)
    nodes = []
    for l, h in intervals:
        half, mid = (h - l) / 2, (h + l) / 2
        nodes += [(mid + half * xi, half * wi) for xi, wi in zip(x, w)]
    return nodes


def coefficients(f, a, feats, K):
    """h_0..h_K and E = E[f(sqrt(a) z)^2] (mp)."""
    sa = mp.sqrt(a)
    R = mp.sqrt(4 * K + 2) + 12
    cuts = [0]
    for p, w in feats:
        cuts += graded(p / sa, w / sa, -R, R)
    nodes = rule(pieces(cuts, -R, R, mp.mpf("0.5")), 30)
    h = [mp.mpf(0)] * (K + 1)
    E = mp.mpf(0)
    sq = [mp.sqrt(k) for k in range(K + 2)]
    for z, w in nodes:
        fz = f(sa * z) * w * mp.npdf(z)
        if fz == 0:
            continue
        E += fz * f(sa * z)
        p0, p1 = mp.mpf(1), z
        h[0] += fz
        if K >= 1:
            h[1] += fz * z
        for k in range(1, K):
            p0, p1 = p1, (z * p1 - sq[k] * p0) / sq[k + 1]
            h[k + 1] += fz * p1
    return h, E


def mehler(ha, Ea, hb, Eb, rho):
    """(value, tail bound relative to sqrt(Ea Eb), terms)."""
    rho = mp.mpf(rho)
    acc, p = mp.mpf(0), mp.mpf(1)
    Ta, Tb = Ea, Eb
    scale = mp.sqrt(Ea * Eb) if Ea * Eb > 0 else mp.mpf(1)
    for k in range(len(ha)):
        acc += ha[k] * hb[k] * p
        Ta -= ha[k] ** 2
        Tb -= hb[k] ** 2
        p *= rho
        bound = abs(p) * mp.sqrt(max(Ta, 0) * max(Tb, 0)) / scale
        if bound < mp.mpf("1e-17"):
            return acc, bound, k
    return acc, bound, len(ha) - 1


def expect_1d(g, mean, sd, feats, n):
    """E[g(v)], v ~ N(mean, sd^2) (sd > 0), pieces graded towards the features of g."""
    lo, hi = mean - 14 * sd, mean + 14 * sd
    cuts = [mean + sd * k for k in (-8, -4, -2, -1, -0.5, 0, 0.5, 1, 2, 4, 8)]
    for p, w in feats:
        cuts += graded(p, w, lo, hi)
    acc = mp.mpf(0)
    for v, w in rule(pieces(cuts, lo, hi, 2 * sd), n):
        acc += w * g(v) * mp.npdf(v, mean, sd)
    return acc


def dual_2d(f, a, b, rho, feats, n):
    a, b, rho = mp.mpf(a), mp.mpf(b), mp.mpf(rho)
    c = rho * mp.sqrt(a * b)
    sa = mp.sqrt(a)
    sig = mp.sqrt(b * (1 - rho * rho))
    lo, hi = -14 * sa, 14 * sa
    cuts = [sa * k for k in (-8, -4, -2, -1, -0.5, 0, 0.5, 1, 2, 4, 8)]
    for p, w in feats:
        cuts += graded(p, w, lo, hi)                       # features of f(u)
        cuts += graded(p * a / c, (w + sig) * a / abs(c), lo, hi)   # of G(u) = E[f(v) | u]
    acc = mp.mpf(0)
    for u, w in rule(pieces(cuts, lo, hi, 2 * sa), n):
        G = expect_1d(f, c * u / a, sig, feats, n)
        acc += w * f(u) * G * mp.npdf(u, 0, sa)
    return acc


def dual_rho_one(f, a, b, sign, feats):
    sa, sb = mp.sqrt(a), mp.sqrt(b)
    cuts = [0]
    for p, w in feats:
        cuts += graded(p / sa, w / sa, -14, 14) + graded(sign * p / sb, w / sb, -14, 14)
    acc = mp.mpf(0)
    for z, w in rule(pieces(cuts, -14, 14, mp.mpf("0.5")), 30):
        acc += w * f(sa * z) * f(sign * sb * z) * mp.npdf(z)
    return acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=None, help="one activation name")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    K = 60 if args.quick else K_REF
    variances = [1.0, 1e4] if args.quick else VARIANCES
    pairs = [(1.0, 1.0), (1.0, 1e4)] if args.quick else PAIRS
    hard = [(1.0, 1.0)] if args.quick else HARD_PAIRS
    hard_rhos = HARD_RHOS[:1] if args.quick else HARD_RHOS
    out = {}
    if Path(args.out).exists() and args.only:
        out = json.loads(Path(args.out).read_text())
    for name, (f, df, feats) in ACTIVATIONS.items():
        if args.only and args.only != name:
            continue
        t0 = time.time()
        coef = {}
        for v in variances:
            coef[v] = (coefficients(f, v, feats, K), coefficients(df, v, feats, K))
        rec = {"points": [], "diag": [[v, float(coef[v][0][1]), float(coef[v][1][1])]
                                      for v in variances]}
        for a, b in pairs:
            (ha, Ea), (dha, dEa) = coef[a]
            (hb, Eb), (dhb, dEb) = coef[b]
            for rho in MEHLER_RHOS:
                v, ev, _ = mehler(ha, Ea, hb, Eb, rho)
                dv, edv, _ = mehler(dha, dEa, dhb, dEb, rho)
                rec["points"].append([a, b, rho, float(v), float(dv), float(ev), float(edv),
                                      "mehler"])
            for s in (1, -1):
                v = dual_rho_one(f, a, b, s, feats)
                dv = dual_rho_one(df, a, b, s, feats)
                rec["points"].append([a, b, float(s), float(v), float(dv), 0.0, 0.0, "rho=+-1"])
        for a, b in ([] if "erf" in name else hard):   # GELU: its closed form checks
            for rho in hard_rhos:
                vals = []
                for g in (f, df):
                    v10, v14 = dual_2d(g, a, b, rho, feats, 10), dual_2d(g, a, b, rho, feats, 14)
                    (Ea, Eb) = (coef[a][0][1], coef[b][0][1]) if g is f else \
                        (coef[a][1][1], coef[b][1][1])
                    vals.append((v14, abs(v14 - v10) / mp.sqrt(Ea * Eb)))
                rec["points"].append([a, b, rho, float(vals[0][0]), float(vals[1][0]),
                                      float(vals[0][1]), float(vals[1][1]), "2d"])
        out[name] = rec
        print(f"{name}: {len(rec['points'])} points, {time.time() - t0:.0f} s", flush=True)
        if "erf" in name:
            _check_gelu(rec)
    if not args.quick or args.out != str(OUT):     # --only: merged into an existing file
        Path(args.out).write_text(json.dumps(out, indent=0) + "\n")
        print("wrote", args.out)
    return 0


def _check_gelu(rec):
    """GELU's closed form (the activation "gelu") at 30 digits against every point."""
    worst = 0.0
    for a, b, rho, v, dv, *_ in rec["points"]:
        a, b = mp.mpf(a), mp.mpf(b)
        c = mp.mpf(rho) * mp.sqrt(a * b)
        p = (1 + a) * (1 + b)
        d = p - c * c
        th = mp.asin(c / mp.sqrt(p))
        cv = c / 4 + c * th / (2 * mp.pi) + (a * b * d + c * c) / (2 * mp.pi * p * mp.sqrt(d))
        cdv = (mp.mpf(1) / 4 + th / (2 * mp.pi) + c * (a + b + 2) / (2 * mp.pi * p * mp.sqrt(d))
               + c / (2 * mp.pi * d ** mp.mpf(1.5)))
        Ea = a / 4 + a * mp.asin(a / (1 + a)) / (2 * mp.pi) + a * a / (
            mp.pi * (1 + a) * mp.sqrt(1 + 2 * a))
        Eb = b / 4 + b * mp.asin(b / (1 + b)) / (2 * mp.pi) + b * b / (
            mp.pi * (1 + b) * mp.sqrt(1 + 2 * b))
        worst = max(worst, float(abs(cv - v) / mp.sqrt(Ea * Eb)), float(abs(cdv - dv)))
    print(f"  GELU closed form vs the references: {worst:.2e} (relative)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
