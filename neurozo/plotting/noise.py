"""Accuracy (or any final metric) against a swept noise level, one line per learner.

Each point is the mean over seeds at one noise level; the band is the 95%
Student-t confidence interval of that mean (``curves.mean_ci``).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from .curves import mean_ci

__all__ = ["accuracy_vs_noise"]


def accuracy_vs_noise(table: pd.DataFrame, x: str, metric: str = "final.test_acc", by: Optional[str] = "label",
                      ax=None, logx: bool = False, title: Optional[str] = None, xlabel: Optional[str] = None,
                      ylabel: Optional[str] = None, bounds: Optional[tuple] = None):
    """Plot ``metric`` against the numeric column ``x`` (e.g. a read-noise scale) for each group in ``by``.

    ``table`` has one row per run (``neurozo report``'s ``runs.csv``, or
    ``ResultStore.table()``); rows of a group at the same ``x`` are seeds.
    Non-finite metrics (failed or diverged runs) are left out of the mean and
    counted in the legend. ``bounds=(lo, hi)`` clips the band to the metric's
    range (e.g. (0, 1) for an accuracy; with few seeds the t-interval is wide).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    if table.empty or x not in table or metric not in table:
        return ax
    df = table.copy()
    df[x] = pd.to_numeric(df[x], errors="coerce")
    df[metric] = pd.to_numeric(df[metric], errors="coerce")
    df = df[np.isfinite(df[x])]
    groups = df.groupby(by, sort=True) if by and by in df else [("", df)]
    for label, g in groups:
        xs, means, halves, lost = [], [], [], 0
        for xv, gx in g.groupby(x, sort=True):
            v = gx[metric].to_numpy(dtype=float)
            ok = v[np.isfinite(v)]
            lost += len(v) - len(ok)
            if len(ok) == 0:
                continue
            m, h = mean_ci(ok[:, None])
            xs.append(xv)
            means.append(float(m[0]))
            halves.append(float(h[0]))
        if not xs:
            continue
        xs, means, halves = map(np.asarray, (xs, means, halves))
        name = str(label) + (f" ({lost} non-finite)" if lost else "")
        (line,) = ax.plot(xs, means, marker="o", label=name)
        if np.any(halves > 0):
            lo, hi = means - halves, means + halves
            if bounds is not None:
                lo, hi = np.clip(lo, *bounds), np.clip(hi, *bounds)
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2)
    if logx:
        ax.set_xscale("symlog", linthresh=_linthresh(df[x].to_numpy(dtype=float)))
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or metric.replace("final.", "final ").replace("_", " "))
    if title:
        ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def _linthresh(x: np.ndarray) -> float:
    pos = x[np.isfinite(x) & (x > 0)]
    return float(pos.min()) if pos.size else 1.0
