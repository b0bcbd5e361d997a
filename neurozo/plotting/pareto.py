"""Accuracy against energy with the Pareto front of the configurations.

A configuration (group) is on the front when no other has both lower energy
and a better metric. Points are per-configuration means over seeds; single
runs are drawn faintly behind them.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

__all__ = ["pareto_front", "accuracy_vs_energy"]


def pareto_front(cost, value, higher_is_better: bool = True) -> np.ndarray:
    """Indices of the non-dominated points (lower ``cost``, better ``value``), sorted by cost.

    Non-finite points are never on the front.
    """
    cost = np.asarray(cost, dtype=float)
    value = np.asarray(value, dtype=float)
    if cost.shape != value.shape or cost.ndim != 1:
        raise ValueError(f"cost/value shapes {cost.shape}/{value.shape} are invalid: must be equal 1-D shapes")
    v = value if higher_is_better else -value
    ok = np.flatnonzero(np.isfinite(cost) & np.isfinite(v))
    order = ok[np.lexsort((-v[ok], cost[ok]))]  # by cost, then best value first
    front, best = [], -np.inf
    for i in order:
        if v[i] > best:
            front.append(i)
            best = v[i]
    return np.asarray(front, dtype=int)


def accuracy_vs_energy(table: pd.DataFrame, energy: str = "final.energy_pj", metric: str = "final.test_acc",
                       by: Optional[str] = "label", point: Optional[str] = None, ax=None,
                       higher_is_better: bool = True, logx: Optional[bool] = None, energy_scale: float = 1e-6,
                       energy_unit: str = "µJ", title: Optional[str] = None):
    """Scatter ``metric`` against ``energy`` per configuration (mean over seeds) and draw the Pareto front.

    Configurations are the groups of ``by`` (one colour each) or, with
    ``point`` (e.g. a swept noise level), the (``by``, ``point``) pairs: one
    colour per ``by`` group, each point annotated with its ``point`` value.
    Single runs are drawn faintly behind the means. ``energy_scale`` converts
    the column (pJ by default) to ``energy_unit``; ``logx`` defaults to True
    when every energy is positive and they span more than a decade.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    if table.empty or energy not in table or metric not in table:
        return ax
    df = table.copy()
    df["_e"] = pd.to_numeric(df[energy], errors="coerce") * energy_scale
    df["_m"] = pd.to_numeric(df[metric], errors="coerce")
    df = df[np.isfinite(df["_e"]) & np.isfinite(df["_m"])]
    if df.empty:
        return ax
    if not (by and by in df):
        df["_g"] = ""
        by = "_g"
    keys = [by] + ([point] if point and point in df else [])
    means = df.groupby(keys, sort=True)[["_e", "_m"]].mean().reset_index()
    for i, (label, g) in enumerate(means.groupby(by, sort=True)):
        color = f"C{i % 10}"
        ax.plot(g["_e"], g["_m"], "o-" if len(keys) > 1 else "o", color=color, markersize=7, lw=0.8,
                label=str(label))
        runs = df[df[by] == label]
        if len(runs) > len(g):
            ax.plot(runs["_e"], runs["_m"], ".", color=color, alpha=0.35)
        if len(keys) > 1:
            for _, r in g.iterrows():
                v = r[point]
                ax.annotate(f"{v:g}" if isinstance(v, (int, float)) else str(v), (r["_e"], r["_m"]),
                            textcoords="offset points", xytext=(5, 3), fontsize="x-small", color=color)
    idx = pareto_front(means["_e"].to_numpy(), means["_m"].to_numpy(), higher_is_better)
    if len(idx):
        fe, fm = means["_e"].to_numpy()[idx], means["_m"].to_numpy()[idx]
        ax.step(fe, fm, where="post", color="k", lw=1, ls="--", label="Pareto front")
        ax.plot(fe, fm, "o", mfc="none", mec="k", markersize=12)
    e = df["_e"].to_numpy()
    if logx is None:
        logx = bool(np.all(e > 0) and e.max() > 10 * e.min())
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(f"energy per run ({energy_unit})")
    ax.set_ylabel(metric.replace("final.", "final ").replace("_", " "))
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", title=point.split(".")[-1] + " annotated" if len(keys) > 1 else None,
              title_fontsize="x-small")
    ax.grid(alpha=0.3)
    return ax
