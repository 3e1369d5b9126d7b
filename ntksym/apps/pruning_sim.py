"""Pruning simulator in Qian & Klabjan's (2021) setting: observed gap vs certificate vs Theorem 1.

A random *target* FCN ``F(x) = W_l s(W_{l-1} s(... s(W_1 x)))`` (ReLU ``s``, no biases, no
activation after ``W_l``) is pruned in its middle layers ``2 .. l-1`` only (layers 1 and ``l``
are never pruned, as in the paper), giving ``f``.  Three numbers are reported:

* the **observed gap** ``max ||f(x) - F(x)||_2`` over random points of the unit sphere, refined
  by Riemannian gradient ascent on the sphere.  Both nets are positively homogeneous (ReLU, no
  bias), so the supremum over the unit *ball* is attained on the sphere; any point we evaluate
  gives a **lower bound** on ``sup_{||x||<=1} ||f - F||``.
* the **certificate**: the paper's layer-by-layer error recursion (proofs of Thm 1/2, eqs.
  21-22) evaluated on the *realized* matrices, with ``N_k = ||W_k*||_2`` and
  ``eta_k = ||W_k - W_k*||_2`` (exact spectral norms)::

      B_0 = 1,  B_k = L N_k B_{k-1},  e_1 = 0,
      e_k = L [(N_k + eta_k) e_{k-1} + eta_k B_{k-1}]   (k = 2 .. l-1),
      sup ||f - F|| <= N_l e_{l-1}                       (W_l is unpruned, no activation)

  It is a rigorous **upper bound** for this particular network, so
  ``observed gap <= certificate`` always (``tests/test_pruning_sim.py`` checks it over seeds).
* **Theorem 1's bound** ``(2^(l-2) - 1) d^-alpha L^(l-1) c_0^(l-1)``
  (:data:`ntksym.bounds.qian_klabjan.theorem_1_error`), which holds with probability
  ``p_0`` over the weights and only for magnitude pruning of uniform weights.

Conventions: ``alpha`` is the paper's pruning exponent: each pruned layer loses
``floor(D_k^(1 - alpha))`` of its ``D_k = d_k d_{k-1}`` entries (a *smaller* alpha prunes more).
Magnitude pruning removes the smallest ``|W|`` of the layer (layer-wise); random pruning draws
that many ``(i, j)`` pairs uniformly *with replacement* (Thm 2; repeated pairs prune once).
Weights: ``uniform`` = i.i.d. ``U[-K/sqrt(m), K/sqrt(m)]`` with ``m = max(d_k, d_{k-1})``
(Thm 1's assumption); ``gaussian`` = ``N(0, K^2/(3m))``, the same variance.

>>> r = simulate(d=32, l=3, alpha=0.5, seed=0, n_random=64, n_ascent=4, steps=20)
>>> r["observed_gap"] <= r["certificate"] <= r["theorem_1_bound"]
True
>>> r["pruned_per_layer"]
[32]
"""

from __future__ import annotations

import math
import time

import numpy as np

from ntksym.errors import NtksymError
from ntksym.progress import track

WEIGHTS = ("uniform", "gaussian")
PRUNINGS = ("magnitude", "random")
#: Table 2's 99.99% quantile of ||B||_2 for 512 x 512 uniform matrices, K = 1 (c_0 of Lemma 3)
C0_TABLE2 = 1.174


def _check(d, l, alpha, weights, pruning, d_in, d_out, K):
    if not (isinstance(l, int) and l >= 3):
        raise NtksymError(f"depth l must be an integer >= 3 (layers 2..l-1 are pruned), got {l!r}")
    if not (isinstance(d, int) and d >= 2):
        raise NtksymError(f"width d must be an integer >= 2, got {d!r}")
    if not 0 < alpha < 1:
        raise NtksymError(f"alpha must lie in (0, 1) (floor(D^(1-alpha)) pruned), got {alpha!r}")
    if weights not in WEIGHTS:
        raise NtksymError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    if pruning not in PRUNINGS:
        raise NtksymError(f"pruning must be one of {', '.join(PRUNINGS)}, got {pruning!r}")
    if d_in < 1 or d_out < 1 or d_in > d or d_out > d:
        # Thm 1 assumes d = min hidden width >= max(d_0, d_l)
        raise NtksymError(f"need 1 <= d_in, d_out <= d (Thm 1's assumption), got d_in={d_in}, "
                          f"d_out={d_out}, d={d}")
    if not K > 0:
        raise NtksymError(f"K must be positive, got {K!r}")


def target_network(d, l, rng, weights="uniform", d_in=None, d_out=1, K=1.0):
    """The weights ``[W_1 .. W_l]`` of a random target FCN (``W_k`` is ``d_k x d_{k-1}``)."""
    d_in = d if d_in is None else d_in
    dims = [d_in] + [d] * (l - 1) + [d_out]
    Ws = []
    for k in range(1, l + 1):
        m = max(dims[k], dims[k - 1])
        a = K / math.sqrt(m)
        if weights == "uniform":
            Ws.append(rng.uniform(-a, a, size=(dims[k], dims[k - 1])))
        else:   # same variance a^2/3 as the uniform law
            Ws.append(rng.normal(0.0, a / math.sqrt(3.0), size=(dims[k], dims[k - 1])))
    return Ws


def prune(W, n_prune, pruning, rng):
    """``W`` with ``n_prune`` entries zeroed: the smallest ``|W|`` or uniform draws with
    replacement (then fewer than ``n_prune`` distinct entries may be zeroed)."""
    out = W.copy()
    flat = out.reshape(-1)
    if n_prune <= 0:
        return out
    if pruning == "magnitude":
        idx = np.argpartition(np.abs(flat), n_prune - 1)[:n_prune]
    else:
        idx = rng.integers(0, flat.size, size=n_prune)
    flat[idx] = 0.0
    return out


def _forward(Ws, X):
    """Pre-activations of every layer for inputs ``X`` (n x d_0); returns (hs, output)."""
    hs, y = [], X
    for k, W in enumerate(Ws):
        h = y @ W.T
        if k == len(Ws) - 1:
            return hs, h
        hs.append(h)
        y = np.maximum(h, 0.0)


def _backward(Ws, hs, g):
    """d(<g, net(X)>)/dX given the stored pre-activations (ReLU)."""
    for k in range(len(Ws) - 1, -1, -1):
        g = g @ Ws[k]
        if k > 0:
            g = g * (hs[k - 1] > 0)
    return g


def gaps(Ws_f, Ws_F, X):
    """``||f(x) - F(x)||_2`` for each row of ``X``."""
    return np.linalg.norm(_forward(Ws_f, X)[1] - _forward(Ws_F, X)[1], axis=1)


def gap_gradient(Ws_f, Ws_F, X):
    """``(gap^2/2, d(gap^2/2)/dX)`` row-wise, by backpropagation through both networks."""
    hf, of = _forward(Ws_f, X)
    hF, oF = _forward(Ws_F, X)
    r = of - oF
    return 0.5 * np.sum(r * r, axis=1), _backward(Ws_f, hf, r) - _backward(Ws_F, hF, r)


def observed_gap(Ws_f, Ws_F, rng, n_random=2048, n_ascent=32, steps=100, lr=0.3, chunk=512):
    """Lower bound on ``sup_{||x||<=1} ||f(x) - F(x)||``: random sphere points, then the best
    ``n_ascent`` of them refined by projected gradient ascent on the sphere.

    Returns ``(best_gap, best_random_gap)``; every value is a gap actually evaluated at a unit
    vector, so both are valid lower bounds.
    """
    d0 = Ws_F[0].shape[1]
    best_vals, best_X = [], []
    for s in track(range(0, n_random, chunk), "random input batches"):
        X = rng.standard_normal((min(chunk, n_random - s), d0))
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        best_vals.append(gaps(Ws_f, Ws_F, X))
        best_X.append(X)
    vals, X = np.concatenate(best_vals), np.concatenate(best_X)
    random_best = float(vals.max())
    X = X[np.argsort(vals)[-n_ascent:]].copy()
    best = random_best
    for t in track(range(steps), "gradient ascent steps"):
        _, G = gap_gradient(Ws_f, Ws_F, X)
        G -= np.sum(G * X, axis=1, keepdims=True) * X       # tangent to the sphere
        norm = np.linalg.norm(G, axis=1, keepdims=True)
        # normalized steps with a decaying length: the objective's scale (~1e-5 .. 1e-1) varies
        # by orders of magnitude with alpha, so raw gradient steps would need per-run tuning
        step = lr / math.sqrt(1 + t)
        X = X + step * np.divide(G, norm, out=np.zeros_like(G), where=norm > 0)
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        best = max(best, float(gaps(Ws_f, Ws_F, X).max()))
    return best, random_best


def certificate(Ws_f, Ws_F, lipschitz=1.0):
    """The paper's error recursion on realized matrices (an upper bound on the gap).

    Returns ``(bound, N, eta)`` with the spectral norms ``N_k = ||W_k*||`` and
    ``eta_k = ||W_k - W_k*||``.
    """
    N = [float(np.linalg.norm(W, 2)) for W in Ws_F]
    eta = [float(np.linalg.norm(Wf - WF, 2)) for Wf, WF in zip(Ws_f, Ws_F)]
    L, l = lipschitz, len(Ws_F)
    B = L * N[0]                    # B_1: ||y_1*|| <= L N_1 ||x||, ||x|| <= 1
    e = L * eta[0] * 1.0            # e_1 = 0 when layer 1 is unpruned (eta_1 = 0)
    for k in range(1, l - 1):
        e = L * ((N[k] + eta[k]) * e + eta[k] * B)
        B = L * N[k] * B
    # last layer: no activation; ||W_l y - W_l* y*|| <= (N_l + eta_l) e + eta_l B
    return (N[-1] + eta[-1]) * e + eta[-1] * B, N, eta


def theorem_1_bound(d, l, alpha, c_0=C0_TABLE2, lipschitz=1.0):
    """Theorem 1's error bound ``(2^(l-2)-1) d^-alpha L^(l-1) c_0^(l-1)`` (via the registry)."""
    from ntksym.bounds.qian_klabjan import theorem_1_error
    return float(theorem_1_error.evaluate(l=l, d=d, alpha=alpha, L_prod=lipschitz ** (l - 1),
                                          c_0=c_0))


def simulate(d=1024, l=3, alpha=0.5, weights="uniform", pruning="magnitude", seed=0,
             d_in=None, d_out=1, K=1.0, c_0=C0_TABLE2, n_random=2048, n_ascent=32, steps=100):
    """Build, prune and measure one network; returns a dict of the numbers (see module doc).

    ``theorem_1_bound`` is reported for every setting, but Theorem 1 covers only magnitude
    pruning of uniform weights (``theorem_1_applies``).
    """
    d_in = d if d_in is None else d_in
    _check(d, l, alpha, weights, pruning, d_in, d_out, K)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    Ws_F = target_network(d, l, rng, weights, d_in, d_out, K)
    Ws_f, pruned = list(Ws_F), []
    for k in range(1, l - 1):       # 0-based indices of layers 2 .. l-1
        n_prune = math.floor((Ws_F[k].size) ** (1 - alpha))
        Ws_f[k] = prune(Ws_F[k], n_prune, pruning, rng)
        pruned.append(n_prune)
    cert, N, eta = certificate(Ws_f, Ws_F)
    obs, obs_random = observed_gap(Ws_f, Ws_F, rng, n_random, n_ascent, steps)
    return {
        "d": d, "l": l, "alpha": alpha, "weights": weights, "pruning": pruning, "seed": seed,
        "d_in": d_in, "d_out": d_out, "K": K,
        "pruned_per_layer": pruned,
        "zeroed_per_layer": [int(np.sum((Ws_f[k] == 0) & (Ws_F[k] != 0)))
                             for k in range(1, l - 1)],
        "observed_gap": obs, "observed_gap_random_only": obs_random,
        "certificate": cert,
        "theorem_1_bound": theorem_1_bound(d, l, alpha, c_0),
        "theorem_1_applies": weights == "uniform" and pruning == "magnitude",
        "c_0": c_0, "norms": N, "residual_norms": eta[1:-1], "d_pow_minus_alpha": d ** -alpha,
        "seconds": time.perf_counter() - t0,
    }
