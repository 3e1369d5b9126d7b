"""The NTK margin gamma of Chatterji-Long-Bartlett's Assumption 3.2, from a Gram matrix.

For gradient features phi_s = grad f(x_s) with Gram K = Phi Phi^T and labels y in {-1, +1}:

    primal   gamma = max_{||W|| <= 1} min_s y_s phi_s . W / sqrt(p)
    dual     gamma = sqrt(min_{a in simplex} a^T Y K Y a) / sqrt(p)

(Sion's minimax theorem; Y = diag(y), p = the network width, pass ``width=None`` for the
unnormalised margin).  The dual is solved by an exact active-set method on the simplex; the
primal independently as a hard-margin SVM without bias (min ||w||^2 s.t. y_s phi_s . w >= 1,
margin 1/||w||) on features factored from K.  Both are returned so that they can be compared.

>>> import numpy as np
>>> r = ntk_margin(np.eye(4), np.array([1, -1, 1, -1]))
>>> round(r["gamma"], 12), round(r["gamma_primal"], 12)
(0.5, 0.5)
"""

from __future__ import annotations

import numpy as np

from ntksym.errors import DataError


def _check(K, y):
    K = np.asarray(K, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise DataError(f"Gram matrix must be square, got shape {K.shape}")
    if y.shape[0] != K.shape[0]:
        raise DataError(f"labels: {y.shape[0]} values for a {K.shape[0]}x{K.shape[0]} Gram")
    if not np.all(np.isfinite(K)):
        raise DataError("Gram matrix contains NaN or inf")
    if not np.all(np.isin(y, (-1.0, 1.0))):
        raise DataError("labels must be -1 or +1")
    if np.abs(K - K.T).max() > 1e-8 * max(1.0, np.abs(K).max()):
        raise DataError("Gram matrix is not symmetric")
    return 0.5 * (K + K.T), y


def simplex_qp(M, tol=1e-13, max_iter=None):
    """Minimise a^T M a over the probability simplex (M symmetric PSD), exactly.

    Primal active-set method: solve the equality-constrained problem on the support, step back
    to feasibility when a weight would turn negative, add the most violating index otherwise.
    Returns ``(a, value)``.
    """
    M = np.asarray(M, dtype=float)
    n = M.shape[0]
    scale = max(np.abs(M).max(), 1e-300)
    i0 = int(np.argmin(np.diag(M)))
    a = np.zeros(n)
    a[i0] = 1.0
    S = [i0]
    for _ in range(max_iter or 50 * n + 50):
        k = len(S)
        kkt = np.zeros((k + 1, k + 1))
        kkt[:k, :k] = M[np.ix_(S, S)]
        kkt[:k, k] = kkt[k, :k] = 1.0
        rhs = np.zeros(k + 1)
        rhs[k] = 1.0
        z = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:k]
        if np.all(z > 0):
            a = np.zeros(n)
            a[S] = z
            g = M @ a
            v = float(a @ g)
            j = int(np.argmin(g))
            if g[j] >= v - tol * scale or j in S:
                return a, max(v, 0.0)
            S.append(j)
            continue
        # step from the feasible a toward z until the first weight reaches 0, then drop it
        cur = a[S]
        dirn = z - cur
        neg = dirn < 0
        ts = np.where(neg, cur / np.where(neg, -dirn, 1.0), np.inf)
        t = float(ts.min())
        new = cur + t * dirn
        new[int(np.argmin(ts))] = 0.0
        keep = [s for s, w in zip(S, new) if w > 0]
        a = np.zeros(n)
        a[keep] = new[new > 0]
        a /= a.sum()
        S = keep
    raise RuntimeError("simplex_qp: no convergence")


def _svm_primal(K, y):
    """Hard-margin SVM without bias on features F with F F^T = K; returns the margin."""
    from scipy.optimize import minimize
    lam, U = np.linalg.eigh(K)
    keep = lam > 1e-12 * max(lam.max(), 1e-300)
    F = U[:, keep] * np.sqrt(lam[keep])
    B = y[:, None] * F
    res = minimize(lambda w: w @ w, np.linalg.lstsq(B, np.ones(len(y)), rcond=None)[0],
                   jac=lambda w: 2 * w, method="SLSQP",
                   constraints=[{"type": "ineq", "fun": lambda w: B @ w - 1.0,
                                 "jac": lambda w: B}],
                   options={"ftol": 1e-15, "maxiter": 500})
    w = res.x
    if np.min(B @ w) < 1 - 1e-6:
        return 0.0   # not separable in feature space: the margin is 0
    # polish on the active constraints: min ||w|| s.t. B_A w = 1 has w = B_A^+ 1
    for _ in range(5):
        act = B @ w < 1 + 1e-7
        w_new = np.linalg.pinv(B[act]) @ np.ones(int(act.sum()))
        if np.min(B @ w_new) >= 1 - 1e-10:
            w = w_new
            break
        w = w_new if np.min(B @ w_new) > 0 else w
    return float(np.min(B @ w) / np.linalg.norm(w))


def ntk_margin(K, y, width=None):
    """NTK margin of Assumption 3.2 from the gradient Gram matrix ``K`` and labels ``y``.

    Returns a dict: ``gamma`` (dual), ``gamma_primal`` (independent SVM primal),
    ``gamma_witness`` (the margin of W* = sum_s a_s y_s phi_s, normalised, built from the dual
    weights), ``weights`` (the dual a), ``support`` (indices with a_s > 0).  All three gammas
    are divided by sqrt(width) when ``width`` is given.

    >>> import numpy as np
    >>> r = ntk_margin(np.array([[1.0, 0.0], [0.0, 4.0]]), np.array([1, 1]))
    >>> round(r["gamma"], 12)   # min over a of a1^2 + 4 a2^2 = 4/5
    0.894427191
    """
    K, y = _check(K, y)
    M = y[:, None] * K * y[None, :]
    a, v = simplex_qp(M)
    norm = np.sqrt(float(width)) if width is not None else 1.0
    gamma = np.sqrt(v) / norm
    witness = float((M @ a).min() / np.sqrt(v)) / norm if v > 0 else 0.0
    return {"gamma": float(gamma), "gamma_primal": _svm_primal(K, y) / norm,
            "gamma_witness": witness, "weights": a, "support": np.flatnonzero(a > 0)}
