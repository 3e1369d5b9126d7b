"""The generated convolutional kernels against a brute-force numpy CNTK written from
Arora et al. 2019, Appendix E (and the authors' code), by loops over pixel pairs.

The network (Sec. 4.1/4.2): q x q = 3 x 3 filters, stride 1, zero "same" padding, c_sigma = 2,
first layer unnormalized, no bias.  Recursion (Appendix E, with its final step: no patch
trace at the top layer):

    K0[p, p']       = sum_c x[p, c] x'[p', c]
    Sigma1          = Ltr(K0)                 (unnormalized first layer: trace without c/q^2)
    Theta1          = Sigma1  (0 if the first layer is fixed)
    for h = 1..L-1:  Kh, Kdot_h = (c/q^2) relu duals of Sigma_h   (per pixel pair)
                     Theta_{h+1} = Ltr(Kdot_h * Theta_h + Kh),  Sigma_{h+1} = Ltr(Kh)
    top:             Theta = (c/q^2)(Kdot_L * Theta_L + K_L)   (K_L dropped if the last is fixed)
    CNTK-V = trace(Theta),  CNTK-GAP = mean(Theta)

where Ltr(M)[(i,j),(i',j')] = sum_{a,b in {-1,0,1}} M[(i+a,j+b),(i'+a,j'+b)] (zero outside).
"""

import math

import numpy as np
import pytest

import ntksym

H = W = 5
C = 2
Q = 3
CS = 2.0


def patch_trace(M):
    out = np.zeros_like(M)
    for i in range(H):
        for j in range(W):
            for i2 in range(H):
                for j2 in range(W):
                    acc = 0.0
                    for a in (-1, 0, 1):
                        for b in (-1, 0, 1):
                            r, c, r2, c2 = i + a, j + b, i2 + a, j2 + b
                            if 0 <= r < H and 0 <= c < W and 0 <= r2 < H and 0 <= c2 < W:
                                acc += M[r, c, r2, c2]
                    out[i, j, i2, j2] = acc
    return out


def relu_duals(S, dx, dy):
    """(c/q^2) E[relu relu] and (c/q^2) E[relu' relu'] per pixel pair (eqs. 17-20)."""
    K, Kd = np.zeros_like(S), np.zeros_like(S)
    for idx in np.ndindex(S.shape):
        i, j, i2, j2 = idx
        a, b = dx[i, j], dy[i2, j2]
        lam = min(1.0, max(-1.0, S[idx] / math.sqrt(a * b)))
        K[idx] = CS / Q**2 * (lam * (math.pi - math.acos(lam)) + math.sqrt(1 - lam**2)) \
            * math.sqrt(a * b) / (2 * math.pi)
        Kd[idx] = CS / Q**2 * (math.pi - math.acos(lam)) / (2 * math.pi)
    return K, Kd


def diag_of(S):
    return np.einsum("ijij->ij", S)


def cntk_brute(x, y, L, gap, fix):
    """Per pair: the recursion above on (x, y), with the self recursions for the diagonals."""
    def run(u, v):
        S = patch_trace(np.einsum("ijc,klc->ijkl", u, v))
        T = np.zeros_like(S) if fix else S.copy()
        return S, T

    Sx, _ = run(x, x)
    Sy, _ = run(y, y)
    S, T = run(x, y)
    for h in range(1, L + 1):
        K, Kd = relu_duals(S, diag_of(Sx), diag_of(Sy))
        Kx, _ = relu_duals(Sx, diag_of(Sx), diag_of(Sx))
        Ky, _ = relu_duals(Sy, diag_of(Sy), diag_of(Sy))
        if h < L:
            T = patch_trace(Kd * T + K)
            S, Sx, Sy = patch_trace(K), patch_trace(Kx), patch_trace(Ky)
        else:
            T = Kd * T + (0.0 if fix else K)
    return T.mean() if gap else np.einsum("ijij->", T)


def cntk_arch(gap, fix, spec_dir, cntk_spec):
    """Depth 3 (L = 2 convolutions) on H x W x C inputs: the shipped CNTK-GAP files; CNTK-V's
    shipped readout variance c H W / q^2 is for 32 x 32 inputs, so its variant is built here."""
    if gap:
        name = "cntk_gap_fixed_depth3.toml" if fix else "cntk_gap_depth3.toml"
        return ntksym.load_spec(spec_dir / name).with_input_shape([H, W, C])
    assert not fix
    return ntksym.loads_spec(cntk_spec([H, W, C], readout="flatten",
                                       dense={"weight_var": CS * H * W / Q**2}))


@pytest.mark.parametrize("gap,fix", [(False, False), (True, True), (True, False)])
def test_generated_cntk_equals_appendix_e(gap, fix, spec_dir, cntk_spec):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3, H, W, C))
    K = ntksym.kernel(cntk_arch(gap, fix, spec_dir, cntk_spec), X, progress=False)
    for i in range(3):
        for j in range(i, 3):
            ref = cntk_brute(X[i], X[j], 2, gap, fix)
            assert abs(K[i, j] - ref) <= 1e-12 * abs(ref), (i, j, K[i, j], ref)
            assert K[j, i] == K[i, j]
