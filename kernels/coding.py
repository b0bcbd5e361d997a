"""Spike input coding from an explicit seed, Numba CPU.

For inputs x ∈ R^{B×n} (clipped to [0, 1] where a probability or intensity
is meant) and T time steps:

rate (Bernoulli / discrete Poisson, snnTorch ``spikegen.rate``):
    S[t, b, i] = 1  if  u(seed, t, b, i) < clip(g·x[b, i], 0, 1)   else 0
    with u ~ U[0, 1) and gain g; E[Σ_t S] = T·clip(g·x, 0, 1).

latency (linear time-to-first-spike, snnTorch ``spikegen.latency(linear=True)``):
    one spike at t = round((1 − x̂)·(T − 1)),  x̂ = clip(x, 0, 1),
    none where x̂ ≤ x_min (brighter → earlier; a dark pixel stays silent).

The uniform u comes from a counter-based generator: SplitMix64 (Steele,
Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014)
applied to seed ⊕ (element index · golden-ratio constant), top 53 bits → [0, 1).
Every element has its own counter, so the spike trains depend only on the
seed, never on the thread count or the order of evaluation.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["rate_code", "latency_code", "uniform"]

@njit(inline="always", cache=True)
def _splitmix(z):  # pragma: no cover - compiled
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(inline="always", cache=True)
def _u01(seed, k):  # pragma: no cover - compiled
    h = _splitmix(seed ^ (np.uint64(k) * np.uint64(0x9E3779B97F4A7C15)))
    return (h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(parallel=True, fastmath=False, cache=True)
def _uniform(seed, out):  # pragma: no cover - compiled
    f = out.reshape(-1)
    for k in prange(f.size):
        f[k] = _u01(seed, k)
    return out


def uniform(seed: int, shape) -> np.ndarray:
    """Counter-based U[0, 1) draws (float64) of the given shape from ``seed``."""
    out = np.empty(shape, dtype=np.float64)
    return _uniform(np.uint64(seed), out)


@njit(cache=True)
def _threshold53(p):  # pragma: no cover - compiled
    # u = m·2^-53 < p  ⇔  m < ceil(p·2^53) for the 53-bit integer m (scaling by 2^53 is exact):
    # the Bernoulli test on the integer, bit-identical to ``_u01(seed, k) < p``
    if not p > 0.0:                 # also NaN: never fires, like u < NaN
        return np.uint64(0)
    if p >= 1.0:
        return np.uint64(9007199254740992)
    return np.uint64(np.ceil(p * 9007199254740992.0))


@njit(parallel=True, fastmath=False, cache=True)
def _rate(x, T, t0, gain, seed, out):  # pragma: no cover - compiled
    B, n = x.shape
    thr = np.empty((B, n), dtype=np.uint64)
    for b in range(B):
        for i in range(n):
            thr[b, i] = _threshold53(gain * x[b, i])
    g = np.uint64(0x9E3779B97F4A7C15)
    for t in prange(T):
        for b in range(B):
            k0 = np.uint64(((t0 + t) * B + b) * n)
            for i in range(n):
                h = _splitmix(seed ^ ((k0 + np.uint64(i)) * g))
                out[t, b, i] = 1.0 if (h >> np.uint64(11)) < thr[b, i] else 0.0
    return out


def rate_code(x: np.ndarray, T: int, seed: int, gain: float = 1.0, dtype=np.float32, t0: int = 0) -> np.ndarray:
    """Bernoulli rate code: (B, n) intensities → (T, B, n) spikes (0/1 in ``dtype``).

    s[t, b, i] = 1 if u_k < gain·x[b, i], u_k the k-th counter-based uniform of ``seed`` with
    k = (t·B + b)·n + i. ``t0`` returns steps t0 … t0 + T − 1 of the same train (time blocks)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x has shape {x.shape}: must be (B, n)")
    out = np.empty((int(T), *x.shape), dtype=dtype)
    return _rate(x, int(T), int(t0), float(gain), np.uint64(seed), out)


@njit(parallel=True, fastmath=False, cache=True)
def _latency(x, T, t0, T_total, x_min, out):  # pragma: no cover - compiled
    B, n = x.shape
    for b in prange(B):
        for i in range(n):
            for t in range(T):
                out[t, b, i] = 0.0
            v = x[b, i]
            v = 0.0 if v < 0.0 else (1.0 if v > 1.0 else v)
            if v > x_min:
                t = int(np.round((1.0 - v) * (T_total - 1))) - t0
                if 0 <= t < T:
                    out[t, b, i] = 1.0
    return out


def latency_code(x: np.ndarray, T: int, x_min: float = 0.0, dtype=np.float32, t0: int = 0,
                 T_total: int | None = None) -> np.ndarray:
    """Linear latency code: one spike per input at t = round((1 − x)(T_total − 1)); none if x ≤ x_min.

    ``t0``/``T_total`` return steps t0 … t0 + T − 1 of a train of T_total steps (time blocks;
    default T_total = T)."""
    T_total = int(T) if T_total is None else int(T_total)
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x has shape {x.shape}: must be (B, n)")
    out = np.empty((int(T), *x.shape), dtype=dtype)
    return _latency(x, int(T), int(t0), T_total, float(x_min), out)
