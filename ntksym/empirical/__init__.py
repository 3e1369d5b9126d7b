"""The same graph as a finite network: empirical NTK and Monte Carlo NNGP/NTK."""
