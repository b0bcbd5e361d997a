"""Learning curves: metric vs evaluations, mean ± 95% CI over seeds."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

__all__ = ["learning_curves", "mean_ci"]


def mean_ci(values: np.ndarray, axis: int = 0):
    """Mean and 95% Student-t half-width along ``axis`` (0 half-width for one sample)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    n = np.sum(np.isfinite(v), axis=axis)
    mean = np.nanmean(v, axis=axis)
    sd = np.nanstd(v, axis=axis, ddof=1) if v.shape[axis] > 1 else np.zeros_like(mean)
    t = stats.t.ppf(0.975, np.maximum(n - 1, 1))
    half = np.where(n > 1, t * sd / np.sqrt(np.maximum(n, 1)), 0.0)
    return mean, half


def learning_curves(history: pd.DataFrame, metric: str = "test_acc", by: str = "label",
                    x: str = "evaluations", ax=None, seed_col: str = "seed", title: Optional[str] = None):
    """Plot ``metric`` against ``x`` for each group in column ``by``.

    ``history`` is long format (one row per logged step, columns ``by``,
    ``seed_col``, ``x`` and ``metric``). Seeds of a group are aligned on the
    union of their x values by linear interpolation; the band is the 95% CI of
    the mean over seeds.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    if history.empty:
        return ax
    for label, g in history.groupby(by, sort=True):
        seeds = list(g.groupby(seed_col)) if seed_col in g else [(0, g)]
        grid = np.unique(g[x].to_numpy())
        curves = []
        for _, s in seeds:
            s = s.sort_values(x)
            curves.append(np.interp(grid, s[x].to_numpy(), s[metric].to_numpy().astype(float),
                                    right=np.nan))
        mean, half = mean_ci(np.vstack(curves))
        (line,) = ax.plot(grid, mean, label=str(label))
        if len(curves) > 1:
            ax.fill_between(grid, mean - half, mean + half, color=line.get_color(), alpha=0.2)
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(metric.replace("_", " "))
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax
