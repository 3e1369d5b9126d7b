"""Applications built on the kernels: prediction, regression, scikit-learn estimators,
convergence studies, the pruning simulator and the papers' reproductions."""
