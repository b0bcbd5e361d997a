"""Symmetric integer quantisation and integer matmul with a saturating accumulator.

Symmetric, narrow-range quantisation of a weight tensor to b bits
(REFERENCES.md, "Quantization"; Jacob et al., CVPR 2018, for the integer
arithmetic):

    q_max = 2^(b−1) − 1
    s     = max|w| / q_max                       per tensor, or per output row (channel)
    q     = clip(round(w / s), −q_max, q_max)    round-to-nearest (ties to even)
    q     = clip(⌊w / s + u⌋, −q_max, q_max)     stochastic rounding, u ~ U[0, 1)
    ŵ     = q · s

Stochastic rounding is unbiased, E[q] = w/s inside the range; its uniform u
for element i comes from a counter-based hash of (seed, i), so results do not
depend on the thread count. Binary (b = 1): q = sign(w) ∈ {−1, +1} (sign(0) =
+1), s = mean|w| (BinaryConnect / XNOR-Net scaling).

Fixed-point activations: a signed b-bit format with range R has step
Δ = R / (2^(b−1) − 1); x_q = clip(round(x / Δ), −q_max, q_max).

Integer matmul with an a-bit two's-complement accumulator that saturates at
every addition (a hardware saturating MAC):

    acc ← clip(acc + x_j · w_ij,  −2^(a−1),  2^(a−1) − 1)     for j = 0 … n−1 in order

Rows whose worst case Σ_j |x_j| · max|w| cannot reach the bounds take an
exact float64 GEMM instead (all partial sums are integers below 2^53, so the
result is identical).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .crossbar import threads_for

__all__ = ["qmax", "symmetric_scale", "quantize", "dequantize", "fixed_point", "int_matmul",
           "acc_bounds", "int_dtype"]

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@njit(inline="always", cache=True)
def _mix(z):  # pragma: no cover - compiled; splitmix64 finaliser
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _check_bits(bits, lo=1, hi=16, name="bits"):
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not lo <= int(bits) <= hi:
        raise ValueError(f"{name}={bits!r} is invalid: must be an integer >= {lo} and <= {hi}")
    return int(bits)


def qmax(bits: int) -> int:
    """Largest magnitude of a narrow-range signed b-bit code (1 for binary)."""
    bits = _check_bits(bits)
    return 1 if bits == 1 else 2 ** (bits - 1) - 1


def int_dtype(bits: int):
    """Smallest numpy integer type holding b-bit codes."""
    return np.int8 if bits <= 8 else np.int16


def symmetric_scale(w: np.ndarray, bits: int, per_channel: bool = False) -> np.ndarray:
    """Scale s of (..., m, n) weights: per tensor → (..., 1, 1); per channel (row) → (..., m, 1).

    A zero tensor (or row) gets s = 1 so that q = 0 round-trips exactly.
    """
    bits = _check_bits(bits)
    w = np.asarray(w)
    axes = (-1,) if per_channel else (-2, -1)
    a = np.abs(w)
    if bits == 1:
        s = a.mean(axis=axes, keepdims=True)
    else:
        s = a.max(axis=axes, keepdims=True) / qmax(bits)
    s = np.asarray(s, dtype=np.float64)
    s[s == 0] = 1.0
    return s


@njit(parallel=True, fastmath=False, cache=True)
def _stochastic_codes(v, seed, lim, out):  # pragma: no cover - compiled
    f = v.reshape(-1)
    o = out.reshape(-1)
    key = _mix(np.uint64(seed) + _GOLD)
    for i in prange(f.size):
        u = (_mix(key ^ _mix(np.uint64(i) + _GOLD)) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
        q = np.floor(f[i] + u)
        if q > lim:
            q = lim
        elif q < -lim:
            q = -lim
        o[i] = q
    return out


def quantize(w: np.ndarray, scale: np.ndarray, bits: int, rounding: str = "nearest", seed: int = 0) -> np.ndarray:
    """Integer codes of w at the given scale (broadcast against w)."""
    bits = _check_bits(bits)
    if rounding not in ("nearest", "stochastic"):
        raise ValueError(f"rounding={rounding!r} is invalid: must be one of ['nearest', 'stochastic']")
    w = np.asarray(w, dtype=np.float64)
    dt = int_dtype(bits)
    if bits == 1:
        if rounding != "nearest":
            raise ValueError("rounding='stochastic' is invalid for bits=1: binary weights use sign(w)")
        return np.where(w >= 0, 1, -1).astype(dt)
    lim = float(qmax(bits))
    v = np.ascontiguousarray(w / scale)
    if rounding == "nearest":
        return np.clip(np.rint(v), -lim, lim).astype(dt)
    out = np.empty(v.shape, dtype=np.float64)
    with threads_for(v.size):
        _stochastic_codes(v, np.uint64(int(seed) % 2**64), lim, out)
    return out.astype(dt)


def dequantize(q: np.ndarray, scale: np.ndarray, dtype=np.float32) -> np.ndarray:
    return (q.astype(np.float64) * scale).astype(dtype)


def fixed_point(x: np.ndarray, bits: int, range_: float):
    """Signed b-bit fixed-point codes of x with range ±range_: (codes int, step Δ)."""
    bits = _check_bits(bits, 2, 16)
    if not (np.isfinite(range_) and range_ > 0):
        raise ValueError(f"range={range_!r} is invalid: must be a finite real number > 0")
    lim = float(qmax(bits))
    step = float(range_) / lim
    q = np.clip(np.rint(np.asarray(x, dtype=np.float64) / step), -lim, lim)
    return q.astype(int_dtype(bits)), step


def acc_bounds(acc_bits: int):
    """(lo, hi) of an a-bit two's-complement accumulator."""
    a = _check_bits(acc_bits, 2, 64, "acc_bits")
    return -(2 ** (a - 1)), 2 ** (a - 1) - 1


@njit(parallel=True, fastmath=False, cache=True)
def _sat_rows(x, w, pidx, ridx, lo, hi, out):  # pragma: no cover - compiled
    shared = x.shape[0] == 1
    m = w.shape[1]
    n = w.shape[2]
    for k in prange(pidx.size):
        p = pidx[k]
        r = ridx[k]
        xr = x[0, r] if shared else x[p, r]
        for i in range(m):
            acc = np.int64(0)
            for j in range(n):
                xv = np.int64(xr[j])
                if xv != 0:
                    acc += xv * np.int64(w[p, i, j])
                    if acc > hi:
                        acc = hi
                    elif acc < lo:
                        acc = lo
            out[p, r, i] = acc
    return out


def int_matmul(xq: np.ndarray, wq: np.ndarray, acc_bits: int = 32):
    """acc[p, r, i] = Σ_j xq[p|0, r, j] · wq[p, i, j] in a saturating a-bit accumulator.

    xq : (Px, R, n) integer codes, Px ∈ {1, P}; wq : (P, m, n) integer codes.
    Returns (acc (P, R, m) int64, number of (member, row) pairs that needed the
    saturating loop).
    """
    lo, hi = acc_bounds(acc_bits)
    if xq.ndim != 3 or wq.ndim != 3:
        raise ValueError(f"xq and wq must be 3-D (Px, R, n), (P, m, n); got {xq.shape}, {wq.shape}")
    Px, R, n = xq.shape
    P, m, n2 = wq.shape
    if n2 != n or Px not in (1, P):
        raise ValueError(f"xq shape {xq.shape} does not match wq shape {wq.shape}")
    xf = xq.astype(np.float64)
    wf = wq.astype(np.float64)
    acc = np.matmul(xf, np.swapaxes(wf, 1, 2))
    acc = np.broadcast_to(acc, (P, R, m)).astype(np.int64)
    # worst case |partial sum| per (member, row): Σ_j |x_j| · max_ij |w_ij|
    wmax = np.abs(wf).max(axis=(1, 2)) if m * n else np.zeros(P)
    worst = np.abs(xf).sum(axis=-1) * wmax[:, None]          # (P, R) (broadcast over Px)
    risky = np.broadcast_to(worst > min(hi, 2 ** 53), (P, R))   # float64 GEMM exact below 2^53
    if risky.any():
        pidx, ridx = np.nonzero(risky)
        with threads_for(pidx.size * m * n):
            _sat_rows(np.ascontiguousarray(xq.astype(np.int64)), np.ascontiguousarray(wq.astype(np.int64)),
                      pidx.astype(np.int64), ridx.astype(np.int64), np.int64(lo), np.int64(hi), acc)
        return acc, int(pidx.size)
    return acc, 0
