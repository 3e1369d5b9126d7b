"""Yang & Wang (2023), Sec. 6.1: the empirical NTK of randomly pruned MLPs against the limit.

The network is ``spec/yang_wang_mlp_rescaled.toml`` (3 hidden ReLU layers, NTK
parameterization, c_sigma = 2, unnormalized and unpruned input layer, Bernoulli(alpha) masks
rescaled by 1/sqrt(alpha) on layers 2..4).  Its limit kernel is the dense one (Cor. 3.3), computed
by ``ntksym.kernel`` from the spec.

* ``yang-wang-fig1``: Theta(x, y) of the full and the pruned (alpha = 0.5) network at widths
  32 ... 8192, mean and spread over 64 samples, two random unit inputs x, y in R^64, against
  the limit.  The full network is sampled exactly by Gaussian conditioning
  (:func:`dense_ntk_conditioned`, O(width) random numbers per layer); the pruned one by its
  weight matrices, with Gaussian entries drawn only where the mask keeps them.
* ``yang-wang-fig2``: mean absolute deviation |Theta(x, y) - Theta_inf(x, y)| over 100 samples
  for keep probabilities alpha, with the width scaled linearly (1024 / alpha) and
  quadratically (1024 / alpha^2) in 1/alpha.  The paper stops at pruning probability 0.5
  (alpha >= 0.5) for the quadratic scaling; the linear scaling continues to alpha = 0.25.

The fast path (:func:`masked_mlp_ntk`) uses the structure of the problem: for a handful of
inputs the empirical NTK needs only matrix-vector products with each weight matrix
(forward, backward) and the mask-weighted Gram of Eq. (10) of the paper,
Theta_h(x, x') = sum_j b_j(x) b_j(x') sum_i g_i(x) g_i(x') m_ij^2, all float64 BLAS; the cost is
drawing the random matrices, done in row blocks by several threads (numpy's generators release
the GIL).  It equals :class:`ntksym.empirical.network.FiniteNetwork` on the same weights (tested).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_normal((2, 4))
>>> E = [rng.standard_normal((4, 8)), rng.standard_normal((8, 1))]
>>> K = masked_mlp_ntk(X, E, [None, None])
>>> K.shape, bool(np.allclose(K, K.T))
((2, 2), True)
"""

from __future__ import annotations

import math
import os
import pathlib
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ntksym.apps.reproduce import register
from ntksym.apps.reproduce.common import plot, write_csv
from ntksym.progress import track

SPEC_DIR = pathlib.Path(__file__).resolve().parents[3] / "spec"
DEPTH = 3                # hidden layers
D0 = 64                  # input dimension of the shipped spec
BLOCKS = 8               # row blocks (one generator each) of every random matrix
SMALL = 1 << 20          # matrices below this many entries: no threads, plain numpy


def masked_mlp_ntk(X, forward, masks, backward=None, c_sigma=2.0):
    """Empirical NTK of the Yang & Wang MLP for the rows of X (a few inputs).

    Parameters
    ----------
    X : (n, d0) inputs.
    forward : effective weight matrices E_1 .. E_{L+1} = W_h * m_h (mask values included),
        shapes (d0, d1), (d1, d2), ..., (dL, 1).  Layer 1 is unnormalized,
        g_h = sqrt(c_sigma / d_h) relu(f_h), f_{h+1} = g_h E_{h+1}.
    masks : per layer None (unmasked) or (kept: bool array, s: the mask value), so that
        m_ij^2 = s^2 kept_ij enters the W-gradient (gradients w.r.t. W, the paper's Eq. (2)).
    backward : matrices used by the backward pass (default: ``forward``, the true gradient;
        independent copies give the "fresh copy for backprop" variant of Thm. 3.1).

    Returns the (n, n) NTK, the sum over layers of the paper's Eq. (10).
    """
    backward = forward if backward is None else backward
    L1 = len(forward)
    gs, ds = [X], []
    for h in range(L1 - 1):
        f = gs[-1] @ forward[h]
        width = f.shape[1]
        c = math.sqrt(c_sigma / width)
        gs.append(c * np.maximum(f, 0.0))
        ds.append(c * (f > 0))
    b = np.ones((X.shape[0], 1))
    K = np.zeros((X.shape[0], X.shape[0]))
    for h in range(L1 - 1, -1, -1):
        K += _layer_term(gs[h], b, masks[h])
        if h > 0:
            b = ds[h - 1] * (b @ backward[h].T)
    return K


def _layer_term(g, b, mask):
    """sum_j b_aj b_bj sum_i g_ai g_bi m_ij^2 (Eq. (10)), one pass over the boolean mask."""
    n = g.shape[0]
    if mask is None:
        return (g @ g.T) * (b @ b.T)
    kept, s = mask
    pairs = [(a, c) for a in range(n) for c in range(a, n)]
    U = np.ascontiguousarray(np.stack([g[a] * g[c] for a, c in pairs]))   # (pairs, fan_in)
    if kept.size < SMALL:       # BLAS on a float copy: cheaper than a parallel launch
        acc = U @ kept.astype(np.float64)
    else:
        acc = _kept_products(U, np.ascontiguousarray(kept).view(np.uint8))
    out = np.zeros((n, n))
    for q, (a, c) in enumerate(pairs):
        out[a, c] = out[c, a] = s * s * np.dot(acc[q], b[a] * b[c])
    return out


def _numba_kernels():
    """Compiled helpers (numba, cached on disk): the mask-weighted products and the scatter
    of compact normal draws into the kept entries."""
    global _kept_products, _scatter_kept
    import numba

    @numba.njit(parallel=True, cache=True)
    def kept_products(U, kept):
        # acc[q, j] = sum_i U[q, i] kept[i, j]; columns split into blocks, one per task,
        # rows streamed in order so the mask is read once, contiguously
        P, N = U.shape
        M = kept.shape[1]
        acc = np.zeros((P, M))
        nb = (M + 255) // 256
        for jb in numba.prange(nb):
            j0 = jb * 256
            j1 = min(M, j0 + 256)
            for i in range(N):
                for j in range(j0, j1):
                    if kept[i, j]:
                        for q in range(P):
                            acc[q, j] += U[q, i]
        return acc

    @numba.njit(cache=True)
    def scatter_kept(kept, vals, out):
        t = 0
        for i in range(kept.shape[0]):
            for j in range(kept.shape[1]):
                if kept[i, j]:
                    out[i, j] = vals[t]
                    t += 1

    _kept_products, _scatter_kept = kept_products, scatter_kept


def _kept_products(U, kept):
    _numba_kernels()
    return _kept_products(U, kept)


def _scatter_kept(kept, vals, out):
    _numba_kernels()
    return _scatter_kept(kept, vals, out)


# ------------------------------------------------------------------------- sampling

def _threads():
    return max(1, min(4, os.cpu_count() or 1))


def _run_blocks(fill, size, threads):
    """fill(i) for every row block: in threads for large matrices, inline for small ones
    (thread start-up costs more than it saves there)."""
    if size < SMALL or threads == 1:
        for i in range(BLOCKS):
            fill(i)
        return
    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(fill, range(BLOCKS)))


def _normal(seed_seq, shape, threads):
    """N(0, 1) matrix filled in BLOCKS row blocks, one generator each, by ``threads`` threads
    (the result depends on the seed only, not on the thread count)."""
    out = np.empty(shape)
    blocks = np.array_split(np.arange(shape[0]), BLOCKS)
    gens = [np.random.default_rng(s) for s in seed_seq.spawn(BLOCKS)]

    def fill(i):
        if len(blocks[i]):
            gens[i].standard_normal(out=out[blocks[i][0]:blocks[i][-1] + 1])

    _run_blocks(fill, out.size, threads)
    return out


def _bernoulli(seed_seq, shape, keep, threads):
    from ntksym.layers.mask import bernoulli_keep
    out = np.empty(shape, dtype=bool)
    blocks = np.array_split(np.arange(shape[0]), BLOCKS)
    gens = [np.random.default_rng(s) for s in seed_seq.spawn(BLOCKS)]

    def fill(i):
        b = blocks[i]
        if len(b):
            out[b[0]:b[-1] + 1] = bernoulli_keep(gens[i], (len(b), shape[1]), keep)

    _run_blocks(fill, out.size, threads)
    return out


def _psd_sqrt(G):
    """A symmetric square root of a PSD matrix (eigen-decomposition: robust to rank loss)."""
    w, V = np.linalg.eigh(G)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def _gaussian_rows(rng, n, cov):
    """n i.i.d. rows ~ N(0, cov)."""
    return rng.standard_normal((n, cov.shape[0])) @ _psd_sqrt(cov)


def dense_ntk_conditioned(X, width, rng, depth=DEPTH, gradient="true", c_sigma=2.0):
    """Empirical NTK of one draw of the *dense* Yang & Wang MLP, sampled exactly with O(width)
    random numbers per layer instead of O(width^2).

    Why this is exact: for a few inputs the network touches a hidden weight matrix W (N x N,
    i.i.d. N(0, 1), independent of its input g) only through u = W^T g (forward) and
    v = W beta (backward, beta depends on u).  The columns of W^T g are i.i.d. N(0, g^T g);
    given u, W = g (g^T g)^+ u^T + (I - P_g) Xi with Xi independent N(0, 1), so
    v = g (g^T g)^+ u^T beta + (I - P_g) Xi beta and the rows of Xi beta are i.i.d.
    N(0, beta^T beta) (Gaussian conditioning; the "fresh" variant drops the first term and
    the projection).  The readout vector is independent of everything below it.
    """
    gs, ds, us = [X], [], []
    G = X @ X.T
    f = _gaussian_rows(rng, width, G).T                     # f_1 = X W_1, columns ~ N(0, XX^T)
    for h in range(depth):
        c = math.sqrt(c_sigma / width)
        gs.append(c * np.maximum(f, 0.0))
        ds.append(c * (f > 0))
        if h == depth - 1:
            break
        g = gs[-1]                                           # (n, N)
        G = g @ g.T
        u = _gaussian_rows(rng, width, G)                    # (N, n) = W^T g^T
        us.append((g, G, u))
        f = u.T
    b = ds[-1] * rng.standard_normal(width)[None, :]         # readout w ~ N(0, I), independent
    K = gs[-1] @ gs[-1].T                                    # readout layer term (b = 1)
    for h in range(depth - 1, -1, -1):
        K += (gs[h] @ gs[h].T) * (b @ b.T)
        if h == 0:
            break
        g, G, u = us[h - 1]                                  # W_{h+1}: input g_h, output u
        beta = b.T                                           # (N, n)
        noise = _gaussian_rows(rng, width, beta.T @ beta)    # rows of Xi beta
        if gradient == "true":
            Gp = np.linalg.pinv(G)
            noise = noise - g.T @ (Gp @ (g @ noise))         # (I - P_g) Xi beta
            v = g.T @ (Gp @ (u.T @ beta)) + noise
        else:
            v = noise
        b = ds[h - 1] * v.T
    return K


def _masked_normal(seed_seq, kept, s, threads):
    """W * m for a boolean ``kept``: N(0, 1) values (times s) drawn only for kept entries."""
    out = np.zeros(kept.shape)
    blocks = np.array_split(np.arange(kept.shape[0]), BLOCKS)
    gens = [np.random.default_rng(q) for q in seed_seq.spawn(BLOCKS)]

    def fill(i):
        b = blocks[i]
        if len(b):
            k = kept[b[0]:b[-1] + 1]
            vals = gens[i].standard_normal(int(np.count_nonzero(k)))
            if s != 1.0:
                vals *= s
            if k.size < SMALL // BLOCKS:
                out[b[0]:b[-1] + 1][k] = vals          # same order as the scatter kernel
            else:
                _scatter_kept(k.view(np.uint8), vals, out[b[0]:b[-1] + 1])

    _run_blocks(fill, out.size, threads)
    return out


def sample_pair(X, width, keep, seed, rescale=True, gradient="true", depth=DEPTH,
                full=True, threads=None):
    """One draw: {"full": NTK of the dense net, "pruned": NTK of the pruned net} on the rows
    of X (independent networks).  Layers 2..depth+1 of the pruned net carry Bernoulli(keep)
    masks (times 1/sqrt(keep) when ``rescale``); its Gaussian entries are drawn only where the
    mask keeps them.  The dense net is sampled exactly by :func:`dense_ntk_conditioned`."""
    threads = threads or _threads()
    ss = np.random.SeedSequence(seed)
    shapes = [(X.shape[1], width)] + [(width, width)] * (depth - 1) + [(width, 1)]
    kids = ss.spawn(4 * len(shapes) + 1)
    out = {}
    if full:
        out["full"] = dense_ntk_conditioned(X, width, np.random.default_rng(kids[-1]),
                                            depth, gradient)
    s = 1.0 / math.sqrt(keep) if rescale else 1.0
    Ws = [_normal(kids[0], shapes[0], threads)]
    Bs = [Ws[0]] if gradient == "fresh" else None           # layer 1: no backward pass
    masks = [None]
    for h in range(1, len(shapes)):
        kept = _bernoulli(kids[4 * h], shapes[h], keep, threads)
        Ws.append(_masked_normal(kids[4 * h + 1], kept, s, threads))
        masks.append((kept, s))
        if Bs is not None:
            kb = _bernoulli(kids[4 * h + 2], shapes[h], keep, threads)
            Bs.append(_masked_normal(kids[4 * h + 3], kb, s, threads))
    out["pruned"] = masked_mlp_ntk(X, Ws, masks, Bs)
    return out


def two_inputs(seed=0, d=D0):
    """Two random points on the unit sphere of R^d (the paper's inputs are unspecified;
    the theory needs |x| <= 1)."""
    X = np.random.default_rng(seed).standard_normal((2, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def limit_ntk(X, keep=None, rescale=True):
    """Theta_inf on the rows of X from the spec (dense, or pruned with the given keep)."""
    import ntksym
    if keep is None:        # the same network unpruned: the CNTK paper's depth-3 MLP spec
        return ntksym.kernel(ntksym.load_spec(SPEC_DIR / "cntk_mlp_depth3.toml"), X, kind="ntk")
    text = (SPEC_DIR / "yang_wang_mlp_rescaled.toml").read_text()
    text = text.replace("keep = 0.5, rescale = true",
                        f"keep = {keep!r}, rescale = {str(rescale).lower()}")
    return ntksym.kernel(ntksym.loads_spec(text), X, kind="ntk")


@register("yang-wang-fig1", "Yang & Wang Fig. 1: empirical NTK of the full and the pruned "
          "(alpha = 0.5, rescaled) MLP vs width 32..8192 against the limit (64 samples)",
          outputs=["yang_wang_fig1.csv", "yang_wang_fig1.png"])
def run_fig1(out_dir, quick=False, seed=0):
    """Fig. 1; writes ``yang_wang_fig1.csv`` and ``yang_wang_fig1.png`` into ``out_dir``."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    widths = [32, 64, 128, 256] if quick else [2 ** k for k in range(5, 14)]
    samples = 8 if quick else 64
    keep = 0.5
    X = two_inputs(seed)
    lim = limit_ntk(X)
    t0 = time.perf_counter()
    rows, stats = [], {}
    for w in track(widths, "widths"):
        draws = [sample_pair(X, w, keep, seed=(seed, w, s))
                 for s in track(range(samples), f"samples of width {w}")]
        for net in ("full", "pruned"):
            v = np.array([d[net] for d in draws])                  # (samples, 2, 2)
            m, sd = v.mean(0), v.std(0, ddof=1)
            stats[(net, w)] = (m[0, 1], sd[0, 1])
            rows.append([w, net, samples, *(f"{x:.6g}" for x in
                         (m[0, 1], sd[0, 1], sd[0, 1] / math.sqrt(samples), m[0, 0], sd[0, 0],
                          m[1, 1], sd[1, 1], lim[0, 1], lim[0, 0], lim[1, 1]))])
    seconds = time.perf_counter() - t0
    csv_path = out_dir / "yang_wang_fig1.csv"
    write_csv(csv_path, ["width", "network", "samples", "ntk_xy_mean", "ntk_xy_std",
                          "ntk_xy_stderr", "ntk_xx_mean", "ntk_xx_std", "ntk_yy_mean",
                          "ntk_yy_std", "limit_xy", "limit_xx", "limit_yy"], rows)

    def draw(ax):
        for net, color, dx in (("full", "C0", 0.97), ("pruned", "C1", 1.03)):
            m = np.array([stats[(net, w)][0] for w in widths])
            sd = np.array([stats[(net, w)][1] for w in widths])
            label = "full" if net == "full" else f"pruned, alpha = {keep}, rescaled"
            ax.errorbar(np.array(widths) * dx, m, yerr=sd, color=color, marker="o",
                        capsize=3, label=f"{label} (mean ± std)")
        ax.axhline(lim[0, 1], color="k", ls="--", label="limit (Cor. 3.3)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("width")
        ax.set_ylabel("Theta(x, y)")
        ax.set_title(f"Yang & Wang Fig. 1: {samples} samples per width")
        ax.legend(fontsize=8)

    png = out_dir / "yang_wang_fig1.png"
    plot(png, draw)
    return {"csv": str(csv_path), "png": str(png), "widths": widths, "samples": samples,
            "limit_xy": float(lim[0, 1]), "seconds": round(seconds, 1),
            "threads": _threads()}


@register("yang-wang-fig2", "Yang & Wang Fig. 2: mean absolute deviation from the limit, "
          "width scaled linearly and quadratically in 1/alpha (100 samples)",
          outputs=["yang_wang_fig2.csv", "yang_wang_fig2.png"])
def run_fig2(out_dir, quick=False, seed=0):
    """Fig. 2; writes ``yang_wang_fig2.csv`` and ``yang_wang_fig2.png`` into ``out_dir``."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = 64 if quick else 1024
    samples = 16 if quick else 100
    alphas_quad = [1.0, 0.875, 0.75, 0.625, 0.5]
    alphas_lin = alphas_quad + [0.375, 0.25]
    X = two_inputs(seed)
    lim = limit_ntk(X)[0, 1]
    t0 = time.perf_counter()
    rows, mad = [], {}
    grid = [(scaling, power, a) for scaling, alphas, power in
            (("linear", alphas_lin, 1), ("quadratic", alphas_quad, 2)) for a in alphas]
    for scaling, power, a in track(grid, "widths"):
        w = int(round(base / a ** power))
        v = np.array([sample_pair(X, w, a, seed=(seed, 2, power, w, s), full=False)
                      ["pruned"][0, 1] for s in track(range(samples), f"samples of width {w}")])
        dev = np.abs(v - lim)
        mad[(scaling, a)] = (dev.mean(), dev.std(ddof=1) / math.sqrt(samples))
        rows.append([scaling, a, 1 - a, w, samples, f"{dev.mean():.6g}",
                     f"{dev.std(ddof=1) / math.sqrt(samples):.6g}", f"{v.mean():.6g}",
                     f"{lim:.6g}"])
    seconds = time.perf_counter() - t0
    csv_path = out_dir / "yang_wang_fig2.csv"
    write_csv(csv_path, ["scaling", "alpha_keep", "pruning_probability", "width", "samples",
                          "mad", "mad_stderr", "ntk_xy_mean", "limit_xy"], rows)

    def draw(ax):
        for scaling, alphas, color in (("linear", alphas_lin, "C0"),
                                       ("quadratic", alphas_quad, "C1")):
            p = [1 - a for a in alphas]
            m = [mad[(scaling, a)][0] for a in alphas]
            e = [mad[(scaling, a)][1] for a in alphas]
            label = f"width = {base}/alpha" + ("^2" if scaling == "quadratic" else "")
            ax.errorbar(p, m, yerr=e, color=color, marker="o", capsize=3, label=label)
        ax.set_xlabel("pruning probability 1 - alpha")
        ax.set_ylabel("mean |Theta(x, y) - Theta_inf(x, y)|")
        ax.set_title(f"Yang & Wang Fig. 2: {samples} samples, rescaled masks")
        ax.legend(fontsize=8)

    png = out_dir / "yang_wang_fig2.png"
    plot(png, draw)
    return {"csv": str(csv_path), "png": str(png), "samples": samples, "base_width": base,
            "limit_xy": float(lim), "seconds": round(seconds, 1)}
