"""Evaluations needed to reach a target metric, one bar per configuration.

For each run, the first logged row whose metric reaches the target gives its
evaluations-to-target; a bar is the mean over the runs that reached it (error
bar: 95% CI over them), labelled with how many of the group's runs did.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from .curves import mean_ci

__all__ = ["evaluations_to_target", "time_to_target"]


def time_to_target(histories: pd.DataFrame, target: float, metric: str = "test_acc", by: Optional[str] = "label",
                   x: str = "evaluations", run: str = "key", higher_is_better: bool = True) -> pd.DataFrame:
    """One row per run: its group, and the first ``x`` at which ``metric`` reaches ``target`` (NaN if never)."""
    cols = [by] if by and by in histories else []
    rows = []
    if histories.empty:
        return pd.DataFrame(columns=cols + [run, x])
    for rid, h in histories.groupby(run, sort=False):
        h = h.sort_values(x)
        m = pd.to_numeric(h[metric], errors="coerce").to_numpy(dtype=float)
        hit = (m >= target) if higher_is_better else (m <= target)
        hit &= np.isfinite(m)
        val = float(h[x].to_numpy()[np.argmax(hit)]) if hit.any() else np.nan
        row = {run: rid, x: val}
        if cols:
            row[by] = h[by].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def evaluations_to_target(histories: pd.DataFrame, target: float, metric: str = "test_acc",
                          by: Optional[str] = "label", x: str = "evaluations", run: str = "key",
                          higher_is_better: bool = True, ax=None, title: Optional[str] = None):
    """Bar chart of evaluations-to-target per group (``histories`` in long format, a ``run`` id column)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    t = time_to_target(histories, target, metric, by, x, run, higher_is_better)
    if t.empty:
        return ax
    if not (by and by in t):
        t["_g"] = ""
        by = "_g"
    labels, means, halves, notes = [], [], [], []
    for label, g in t.groupby(by, sort=True):
        v = g[x].to_numpy(dtype=float)
        ok = v[np.isfinite(v)]
        labels.append(str(label))
        if len(ok):
            m, h = mean_ci(ok[:, None])
            means.append(float(m[0]))
            halves.append(float(h[0]))
        else:
            means.append(0.0)
            halves.append(0.0)
        notes.append(f"{len(ok)}/{len(v)}")
    pos = np.arange(len(labels))
    bars = ax.bar(pos, means, yerr=halves, capsize=3, color="C0", alpha=0.8)
    top = max([m + h for m, h in zip(means, halves)] + [0.0]) or 1.0
    for b, note, m in zip(bars, notes, means):
        ax.text(b.get_x() + b.get_width() / 2, 0.02 * top if m <= 0 else m + 0.02 * top,
                note if m > 0 or len(labels) > 6 else f"{note}\nnot reached", ha="center", va="bottom",
                fontsize="x-small")
    ax.set_xticks(pos)
    ax.set_xticklabels(labels, rotation=30 if len(labels) > 3 else 0, ha="right" if len(labels) > 3 else "center",
                       fontsize="small")
    ax.set_ylabel(f"{x.replace('_', ' ')} to {metric.replace('_', ' ')} "
                  f"{'≥' if higher_is_better else '≤'} {target:.4g}")
    ax.set_xlabel("k/n above a bar: runs of the configuration that reached the target", fontsize="x-small")
    ax.set_ylim(0, top * 1.2)
    if title:
        ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return ax
