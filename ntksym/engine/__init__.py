"""Evaluation: validate data once, pick the compiled program and its target, run, finish."""
