"""Activations and their Gaussian expectations (dual kernels): closed forms, Hermite expansions,
quadrature, and the whitelist parser of user expressions."""
