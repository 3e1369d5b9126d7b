"""Numerical check of Chatterji-Long-Bartlett Theorem 3.1 on a finite network.

The paper's network: width p = input dimension, L hidden layers, no biases, scalar output,
f_V(x) = V_{L+1} phi(V_L ... phi(V_1 x)) with the Huberized ReLU phi (smoothing h), all layers
trained by full-batch GD on the logistic loss J.  Losses are kept in the log domain throughout
(thresholds like n^-(1+24L) underflow float64): the gradient is formed as grad J / J, and the
step alpha * J * (grad J / J) never builds J itself.

>>> import numpy as np
>>> X = np.eye(3)
>>> V = init_weights(p=3, L=1, seed=0)
>>> r = check_theorem_3_1(V, X, np.array([1, -1, 1]), h=0.01, steps=0)
>>> r["applies"], "J_1 >= n^-(1+24L)" in " ".join(r["reasons"])
(False, True)
"""

from __future__ import annotations

import math

import numpy as np

from ntksym.errors import DataError


def huberized_relu(z, h):
    """phi(z) = 0 (z<0), z^2/(2h) (0<=z<=h), z - h/2 (z>h)."""
    return np.where(z < 0, 0.0, np.where(z <= h, z * z / (2 * h), z - h / 2))


def huberized_relu_grad(z, h):
    """phi'(z) = clip(z/h, 0, 1)."""
    return np.clip(z / h, 0.0, 1.0)


def init_weights(p, L, seed=0, scale=1.0):
    """The paper's initialization: hidden V_l ~ N(0, 2/p) (p x p), output N(0, 1) (1 x p),
    all multiplied by ``scale``."""
    rng = np.random.default_rng(seed)
    V = [rng.normal(0.0, math.sqrt(2.0 / p), size=(p, p)) for _ in range(L)]
    V.append(rng.normal(0.0, 1.0, size=(1, p)))
    return [scale * v for v in V]


def forward(V, X, h):
    """Pre-activations u_l, activations x_l (x_0 = X) and outputs f, for rows of X."""
    xs, us = [X], []
    for W in V[:-1]:
        us.append(xs[-1] @ W.T)
        xs.append(huberized_relu(us[-1], h))
    return xs, us, (xs[-1] @ V[-1].T)[:, 0]


def _backprop(V, xs, us, h, c):
    """Gradients of sum_s c_s f(x_s) w.r.t. every layer (list like V)."""
    grads = [None] * len(V)
    grads[-1] = (c @ xs[-1])[None, :]
    b = c[:, None] * V[-1]                      # d(sum c f)/d x_L, per example
    for l in range(len(V) - 2, -1, -1):
        delta = b * huberized_relu_grad(us[l], h)
        grads[l] = delta.T @ xs[l]
        b = delta @ V[l]
    return grads


def ntk_gram(V, X, h):
    """Empirical NTK Gram K_st = grad f(x_s) . grad f(x_t) over all L+1 layers."""
    xs, us, _ = forward(V, X, h)
    n = X.shape[0]
    K = xs[-1] @ xs[-1].T
    b = np.repeat(V[-1], n, axis=0)
    for l in range(len(V) - 2, -1, -1):
        delta = b * huberized_relu_grad(us[l], h)
        K += (delta @ delta.T) * (xs[l] @ xs[l].T)
        b = delta @ V[l]
    return K


def log_losses(margins):
    """log J_s = log(log(1 + exp(-m_s))), accurate for margins up to any size."""
    m = np.asarray(margins, dtype=float)
    out = np.empty_like(m)
    big = m > 30
    u = np.exp(-m[big])                         # may underflow to 0: then log1p(..) = 0
    out[big] = -m[big] + np.log1p(-u / 2 + u * u / 3)
    out[~big] = np.log(np.logaddexp(0.0, -m[~big]))
    return out


def _log_mean_exp(v):
    mx = v.max()
    return mx + math.log(np.exp(v - mx).sum()) - math.log(len(v))


def _state(V, X, y, h):
    xs, us, f = forward(V, X, h)
    m = y * f
    logJ = _log_mean_exp(log_losses(m))
    log_g = -np.logaddexp(0.0, m)               # g_s = 1/(1 + exp(y_s f_s))
    w = np.exp(log_g - logJ)                    # g_s / J, O(1) even when J underflows
    n = len(y)
    c = -(y * w) / n                            # (grad J / J) = sum_s c_s grad f_s
    grads = _backprop(V, xs, us, h, c)
    norm_V = math.sqrt(sum(float((W * W).sum()) for W in V))
    G = math.sqrt(sum(float((g * g).sum()) for g in grads))
    return {"logJ": logJ, "grads": grads, "G": G, "N": norm_V, "margins": m, "w": w}


def _log_quantities(L, p, logJ1, N1, h):
    logL1 = -logJ1                              # log(1/J_1) > 0
    h_max = min(L ** (L / 2 - 3) * logL1 / (24 * math.sqrt(p) * N1 ** L), 1.0)
    la1 = math.log(h) - math.log(1024 * (L + 1) ** 2 * p) - logJ1 - (3 * L + 5) * math.log(N1)
    la2 = (math.log((L + 0.5) * N1 ** 2 / (2 * L * (L + 0.75) ** 2)) - logJ1
           - (2 / L) * math.log(logL1)) if logL1 > 0 else math.inf
    return h_max, min(la1, la2)


def check_theorem_3_1(V, X, y, h, *, steps=50, alpha=None, Q=None):
    """Applicability of CLB Theorem 3.1 and a monitored GD run.

    ``V``: list of L+1 arrays (p x p hidden layers, 1 x p output), e.g. from
    :func:`init_weights`; ``X``: (n, p) unit-norm rows; ``y``: labels in {-1, +1}; ``h``: the
    Huberized ReLU's smoothing.  ``alpha`` defaults to alpha_max(h) and ``Q`` to
    Q_tilde(alpha) when the theorem's conditions allow.

    Returns a dict with ``applies`` (bool), ``reasons`` (failed conditions), the quantities
    ``log_J1``, ``log_threshold``, ``N1`` (= ||V^(1)||), ``h_max``, ``log_alpha_max``,
    ``log_Q_tilde``, ``horizon`` (1/Q_tilde steps for the bound to halve), and, when
    ``steps > 0``, a ``trajectory`` of per-step arrays (``log_J``, ``log_bound``, ``norm``,
    ``grad_over_J``) plus ``checks``: for each monitored statement (I1 rate bound, I2, I3,
    Lemma 4.3 upper and 4.5 lower gradient bounds, Lemma 4.4 descent, Lemma B.18 at t = 1) the
    number of steps where it failed (beyond float rounding).  ``invariants_hold`` is True when
    every count is 0.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    V = [np.array(W, dtype=float) for W in V]
    n, p = X.shape
    L = len(V) - 1
    if L < 1 or any(W.shape != (p, p) for W in V[:-1]) or V[-1].shape != (1, p):
        raise DataError(f"weights must be L >= 1 matrices {p}x{p} then one 1x{p}; got "
                        f"{[W.shape for W in V]}")
    if y.shape != (n,) or not np.all(np.isin(y, (-1.0, 1.0))):
        raise DataError("y must hold one label in {-1, +1} per row of X")
    if not h > 0:
        raise DataError(f"h must be positive, got {h}")
    reasons = []
    if n < 3:
        reasons.append("n < 3")
    if np.abs(np.linalg.norm(X, axis=1) - 1).max() > 1e-9:
        reasons.append("inputs not on the unit sphere")
    s = _state(V, X, y, h)
    logJ1, N1 = s["logJ"], s["N"]
    log_thr = -(1 + 24 * L) * math.log(n)
    if not logJ1 < log_thr:
        reasons.append(f"J_1 >= n^-(1+24L): log J_1 = {logJ1:.4g} >= {log_thr:.4g}")
    h_max, log_amax = _log_quantities(L, p, logJ1, N1, h)
    if not h < h_max:
        reasons.append(f"h = {h:.4g} >= h_max = {h_max:.4g}")
    log_alpha = log_amax if alpha is None else math.log(alpha)
    if alpha is not None and log_alpha > log_amax + 1e-12:
        reasons.append(f"alpha = {alpha:.4g} > alpha_max(h) = {math.exp(log_amax):.4g}")
    log1J = -logJ1
    log_Qt = (log_alpha + logJ1 + math.log(L * (L + 0.75) ** 2 / (L + 0.5)) - 2 * math.log(N1)
              + (2 / L) * math.log(log1J)) if log1J > 0 else -math.inf
    log_Q = log_Qt if Q is None else math.log(Q)
    if Q is not None and log_Q > log_Qt + 1e-12:
        reasons.append(f"Q = {Q:.4g} > Q_tilde(alpha)")
    out = {"applies": not reasons, "reasons": reasons, "n": n, "p": p, "L": L, "h": h,
           "log_J1": logJ1, "log_threshold": log_thr, "N1": N1, "h_max": h_max,
           "log_alpha_max": log_amax, "log_alpha": log_alpha, "log_Q_tilde": log_Qt,
           "log_Q": log_Q, "horizon": math.exp(-log_Qt) if log_Qt > -700 else math.inf}
    if steps <= 0:
        return out
    tol = lambda v: 1e-12 * max(1.0, abs(v))   # noqa: E731  float rounding of log-values
    fails = dict.fromkeys(["I1_rate_bound", "I2", "I3", "lemma_4_3_upper", "lemma_4_5_lower",
                           "lemma_4_4_descent", "lemma_b_18"], 0)
    # Lemma B.18 at the start, per hidden layer, divided by J (log domain)
    G_mean = float(s["w"].mean())                       # (1/n) sum g_s / J
    G_yf = float((s["w"] * s["margins"]).mean())        # (1/n) sum g_s y_s f_s / J
    rhs = G_yf - G_mean * math.sqrt(p) * h * N1 ** L / (2 * L ** (L / 2 - 1))
    for l in range(L):
        lhs = -float((s["grads"][l] * V[l]).sum())
        if lhs < rhs - tol(rhs):
            fails["lemma_b_18"] += 1
    traj = {k: [] for k in ("log_J", "log_bound", "norm", "grad_over_J")}
    lim_I2 = log1J / N1 ** L
    for t in range(1, steps + 1):
        logJ, N, G = s["logJ"], s["N"], s["G"]
        log_bound = logJ1 - math.log1p(math.exp(log_Q) * (t - 1))
        traj["log_J"].append(logJ)
        traj["log_bound"].append(log_bound)
        traj["norm"].append(N)
        traj["grad_over_J"].append(G)
        if logJ > log_bound + tol(log_bound):
            fails["I1_rate_bound"] += 1
        if -logJ / N ** L < lim_I2 * (1 - 1e-12):
            fails["I2"] += 1
        if (log_alpha + logJ > math.log(h / (1024 * (L + 1) ** 2 * p)) - (3 * L + 5)
                * math.log(N) + 1e-12):
            fails["I3"] += 1
        if logJ <= 0 and G > math.sqrt((L + 1) * p) * N ** (L + 1) * (1 + 1e-12):
            fails["lemma_4_3_upper"] += 1
        if G < (L + 0.75) * (-logJ) / N * (1 - 1e-12):
            fails["lemma_4_5_lower"] += 1
        step = math.exp(log_alpha + logJ)               # alpha * J_t, representable
        V = [W - step * g for W, g in zip(V, s["grads"])]
        s_next = _state(V, X, y, h)
        dec = step * L / (L + 0.5) * G * G
        allowed = math.log1p(-dec) if dec < 1 else -math.inf
        if s_next["logJ"] - logJ > allowed + tol(logJ):
            fails["lemma_4_4_descent"] += 1
        s = s_next
    out["trajectory"] = {k: np.array(v) for k, v in traj.items()}
    out["checks"] = fails
    out["invariants_hold"] = not any(fails.values())
    return out


def make_separable_example(p=4, n=4, L=1, h=1e-3, seed=0, factor=1e-3):
    """A network and data where Theorem 3.1 applies: labels from the network itself, then all
    layers scaled up until J_1 < ``factor`` * n^-(1+24L).  Returns (V, X, y).

    >>> V, X, y = make_separable_example()
    >>> check_theorem_3_1(V, X, y, h=1e-3, steps=0)["applies"]
    True
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    V = init_weights(p, L, seed)
    y = np.sign(forward(V, X, h)[2])
    y[y == 0] = 1.0
    target = math.log(factor) - (1 + 24 * L) * math.log(n)
    c = 1.0
    for _ in range(200):
        if _state([c * W for W in V], X, y, h)["logJ"] < target:
            break
        c *= 1.25
    return [c * W for W in V], X, y
