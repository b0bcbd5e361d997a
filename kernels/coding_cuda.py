"""Spike input coding from an explicit seed, GPU twin of ``kernels/coding.py``.

The same counter-based generator as the CPU twin — SplitMix64 (Steele, Lea &
Flood, OOPSLA 2014) of seed ⊕ (k · 0x9E3779B97F4A7C15) for element k, top 53
bits → u ∈ [0, 1) — evaluated by one CUDA thread per element, so the device
draws exactly the numbers the CPU draws from the same seed:

    uniform:  u[k] = splitmix64(seed ⊕ k·φ64) >> 11 · 2⁻⁵³
    rate:     S[t, b, i] = 1 if u(seed, (t·B + b)·n + i) < g·x[b, i] else 0
    latency:  one spike at t = round_half_even((1 − x̂)(T − 1)), x̂ = clip(x, 0, 1), none if x̂ ≤ x_min

Spike trains are bit-identical to the CPU twin. Device in → device out; host in → host out.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64, uint64

from ._cuda_common import device_empty, finish, grid1d, is_device, to_device

__all__ = ["uniform", "rate_code", "latency_code", "u01"]


@cuda.jit(device=True)
def _splitmix(z):  # pragma: no cover - device code
    z = z + uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> uint64(30))) * uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> uint64(27))) * uint64(0x94D049BB133111EB)
    return z ^ (z >> uint64(31))


@cuda.jit(device=True)
def u01(seed, k):  # pragma: no cover - device code
    """U[0, 1) draw number k of the stream ``seed`` (uint64), as ``kernels.coding._u01``."""
    h = _splitmix(seed ^ (uint64(k) * uint64(0x9E3779B97F4A7C15)))
    return float64(h >> uint64(11)) * float64(1.0 / 9007199254740992.0)


@cuda.jit
def _uniform(seed, out):  # pragma: no cover - device code
    k = cuda.grid(1)
    if k < out.size:
        out[k] = u01(seed, k)


@cuda.jit
def _rate(x, T, gain, seed, one, zero, out):  # pragma: no cover - device code
    B, n = x.shape
    k = cuda.grid(1)
    if k >= T * B * n:
        return
    t = k // (B * n)
    b = (k // n) % B
    i = k % n
    p = gain * x[b, i]
    out[t, b, i] = one if u01(seed, k) < p else zero


@cuda.jit(device=True)
def _round_half_even(y):  # pragma: no cover - device code
    f = math.floor(y)
    d = y - f
    r = int(f)
    if d > 0.5 or (d == 0.5 and r % 2 != 0):
        r += 1
    return r


@cuda.jit
def _latency(x, T, x_min, one, zero, out):  # pragma: no cover - device code
    B, n = x.shape
    k = cuda.grid(1)
    if k >= B * n:
        return
    b = k // n
    i = k % n
    for t in range(T):
        out[t, b, i] = zero
    v = x[b, i]
    v = 0.0 if v < 0.0 else (1.0 if v > 1.0 else v)
    if v > x_min:
        out[_round_half_even((float64(1.0) - v) * float64(T - 1)), b, i] = one


def uniform(seed: int, shape, device: bool = True):
    """Counter-based U[0, 1) draws (float64) from ``seed``; identical to ``kernels.coding.uniform``.

    ``device``: return a device array (CuPy when available); else a host copy.
    """
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    size = int(np.prod(shape))
    out, h = device_empty(size, np.float64, device)
    blocks, threads = grid1d(size)
    _uniform[blocks, threads](np.uint64(seed), out)
    return finish(h, device).reshape(shape)


def _check_x(x):
    if x.ndim != 2:
        raise ValueError(f"x has shape {x.shape}: must be (B, n)")


def rate_code(x, T: int, seed: int, gain: float = 1.0, dtype=np.float32):
    """Bernoulli rate code (B, n) → (T, B, n) spikes on the GPU; as ``kernels.coding.rate_code``."""
    _check_x(x)
    dev = is_device(x)
    xd = to_device(x, np.float64)
    B, n = x.shape
    dt = np.dtype(dtype)
    out, h = device_empty((int(T), B, n), dt, dev)
    blocks, threads = grid1d(int(T) * B * n)
    _rate[blocks, threads](xd, int(T), float(gain), np.uint64(seed), dt.type(1), dt.type(0), out)
    return finish(h, dev)


def latency_code(x, T: int, x_min: float = 0.0, dtype=np.float32):
    """Linear latency code on the GPU; as ``kernels.coding.latency_code``."""
    _check_x(x)
    dev = is_device(x)
    xd = to_device(x, np.float64)
    B, n = x.shape
    dt = np.dtype(dtype)
    out, h = device_empty((int(T), B, n), dt, dev)
    blocks, threads = grid1d(B * n)
    _latency[blocks, threads](xd, int(T), float(x_min), dt.type(1), dt.type(0), out)
    return finish(h, dev)
