"""Plots of spiking activity: raster, spike-count histogram, membrane traces.

Arrays come as the spiking neuron models record them (``record=True`` keeps
``neuron.trace``): spikes and membranes of shape (P, T, B, n), or (T, B, n),
or (T, n); ``member`` and ``sample`` pick the population member and the
batch example. Every function takes ``ax=None`` (a new figure when None) and
returns the ``Axes``; none sets a global style.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

__all__ = ["raster", "spike_count_hist", "membrane_traces"]


def _time_by_neuron(a, member: int, sample: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 4:
        a = a[member]
    if a.ndim == 3:
        a = a[:, sample]
    if a.ndim != 2:
        raise ValueError(f"array has shape {np.shape(a)}: must be (T, n), (T, B, n) or (P, T, B, n)")
    return a


def _axes(ax, figsize=(6, 4)):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax


def raster(spikes, ax=None, member: int = 0, sample: int = 0, dt: Optional[float] = None,
           color: str = "k", markersize: float = 2.0, title: Optional[str] = None):
    """Dot per spike: time step (or time, with ``dt``) against neuron index."""
    s = _time_by_neuron(spikes, member, sample)
    ax = _axes(ax)
    t, i = np.nonzero(s)
    tt = t * dt if dt else t
    ax.plot(tt, i, "|" if markersize >= 4 else ".", color=color, markersize=markersize, linestyle="none")
    T, n = s.shape
    ax.set_xlim(-0.5 * (dt or 1), (T - 0.5) * (dt or 1))
    ax.set_ylim(-0.5, n - 0.5)
    ax.set_xlabel("time" if dt else "time step")
    ax.set_ylabel("neuron")
    if title:
        ax.set_title(title)
    return ax


def spike_count_hist(spikes_or_counts, ax=None, bins=None, time_axis: Optional[int] = None,
                     title: Optional[str] = None, **hist_kw):
    """Histogram of spike counts per neuron (and example).

    Give spikes with their time axis (``time_axis``; default 1 for 4-D (P, T, B, n)
    arrays and 0 for 2-D/3-D arrays) or counts directly (``time_axis=-1`` means
    "already counts").
    """
    a = np.asarray(spikes_or_counts)
    if time_axis is None:
        time_axis = 1 if a.ndim == 4 else (0 if a.ndim in (2, 3) else -1)
    counts = a if time_axis == -1 else a.sum(axis=time_axis)
    counts = counts.ravel()
    ax = _axes(ax)
    if bins is None:
        hi = int(counts.max()) if counts.size else 0
        bins = np.arange(-0.5, hi + 1.5, max(1, (hi + 1) // 40))
    ax.hist(counts, bins=bins, **hist_kw)
    ax.set_xlabel("spike count")
    ax.set_ylabel("neurons × examples")
    if title:
        ax.set_title(title)
    return ax


def membrane_traces(mem, ax=None, neurons: Optional[Sequence[int]] = None, member: int = 0, sample: int = 0,
                    threshold: Optional[float] = None, spikes=None, dt: Optional[float] = None,
                    title: Optional[str] = None):
    """Membrane potential over time of a few neurons (first five by default).

    ``threshold`` draws a dashed line; ``spikes`` (same shape as ``mem``) marks spike times.
    """
    u = _time_by_neuron(mem, member, sample)
    T, n = u.shape
    idx = list(range(min(5, n))) if neurons is None else list(neurons)
    ax = _axes(ax)
    t = np.arange(T) * (dt or 1)
    s = _time_by_neuron(spikes, member, sample) if spikes is not None else None
    for i in idx:
        (line,) = ax.plot(t, u[:, i], label=f"neuron {i}", lw=1.2)
        if s is not None:
            k = np.flatnonzero(s[:, i])
            ax.plot(t[k], u[k, i], "o", color=line.get_color(), markersize=3)
    if threshold is not None:
        ax.axhline(threshold, color="0.4", ls="--", lw=1, label="threshold")
    ax.set_xlabel("time" if dt else "time step")
    ax.set_ylabel("membrane potential")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return ax
