"""Gaussian-process regression on scikit-learn's diabetes data with the NNGP (and the NTK) of a
ReLU MLP whose weight and bias variances are learned by maximizing the log marginal
likelihood, beside scikit-learn's RBF kernel (docs/hyperparameters.md).

    python docs/examples/diabetes_gp.py

300 training and 142 test examples (a seeded split of the 442, features standardized),
targets normalized by the regressor (normalize_y=True), one L-BFGS-B run per kernel from the
kernels' starting values.
"""

import time
from pathlib import Path

from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

from ntksym.data import load_dataset, split_dataset
from ntksym.gp import NNGPKernel, NTKKernel

SPEC = str(Path(__file__).with_name("mlp_relu_learnable.toml"))


def main():
    train, test = split_dataset(load_dataset("diabetes"), 300, 142, seed=0)
    kernels = {"NNGP + White": NNGPKernel(spec=SPEC) + WhiteKernel(),
               "NTK + White": NTKKernel(spec=SPEC) + WhiteKernel(),
               "Constant * RBF + White": ConstantKernel() * RBF() + WhiteKernel()}
    rows = []
    for name, kernel in kernels.items():
        t = time.perf_counter()
        gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=0)
        gp.fit(train.X, train.y)
        rows.append((name, gp.log_marginal_likelihood(kernel.theta),
                     gp.log_marginal_likelihood_value_, gp.score(test.X, test.y),
                     time.perf_counter() - t, gp.kernel_))
    print(f"{'kernel':24s} {'LML start':>10s} {'LML fitted':>10s} {'test R^2':>8s} {'s':>6s}")
    for name, l0, l1, r2, s, k in rows:
        print(f"{name:24s} {l0:10.2f} {l1:10.2f} {r2:8.4f} {s:6.1f}   {k}")
    return rows


if __name__ == "__main__":
    main()
