"""Output writers shared by the reproductions: CSV tables and PNG figures, written atomically
(:func:`ntksym.io.atomic_write`), so a half-written file never sits under its final name.

>>> import os, tempfile
>>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
>>> write_csv(p, ["width", "error"], [[32, 0.5], [64, 0.25]])
>>> open(p, newline="").read()
'width,error\\r\\n32,0.5\\r\\n64,0.25\\r\\n'
"""

from __future__ import annotations

import csv

from ntksym.io import atomic_write


def write_csv(path, header, rows):
    """A CSV file of one ``header`` row and ``rows`` (any iterable of sequences)."""
    with atomic_write(path, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def save_figure(fig, path, dpi=120):
    """Save a matplotlib figure as PNG at ``path`` and close it."""
    import matplotlib.pyplot as plt
    try:
        with atomic_write(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=dpi)
    finally:
        plt.close(fig)


def plot(path, draw, figsize=(6.4, 4.2), dpi=120):
    """One-axes PNG: ``draw(ax)`` fills the axes, then the figure is laid out and saved."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=figsize)
    draw(ax)
    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)
