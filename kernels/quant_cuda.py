"""Symmetric integer quantisation and saturating integer matmul, GPU twin of ``kernels/quant.py``.

The same equations as the CPU twin (Jacob et al., CVPR 2018):

    q = clip(round_half_even(w / s), −q_max, q_max)          round-to-nearest
    q = clip(⌊w / s + u_i⌋, −q_max, q_max)                    stochastic, u_i = hash(seed, i)
    q = sign(w) ∈ {−1, +1}                                     binary (b = 1)
    acc[p, r, i] = Σ_j x[r, j]·w[p, i, j], saturated at every addition to [−2^(a−1), 2^(a−1) − 1]

Stochastic rounding draws u_i from the CPU twin's counter-based hash
(SplitMix64 finaliser of seed and element index), so the device codes are the
CPU codes, bit for bit. The integer matmul first takes an exact float64 GEMM
(cuBLAS DGEMM through CuPy, or the Numba CUDA tiled GEMM of ``dense_cuda``:
every partial sum is an integer below 2^53, so any summation order is exact)
and re-runs only the (member, row) pairs whose worst case Σ|x|·max|w| can reach
the accumulator bounds through a saturating loop, one CUDA thread per output,
adding in the CPU's order (j ascending). Results are identical to the CPU twin.

CuPy in → CuPy out; other inputs (host arrays, Numba device arrays) → host
``quantize`` codes; ``int_matmul`` returns a device array for device inputs.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64, int64, uint64

from ._cuda_common import cupy_or_none, floor_f64, device_empty, finish, grid1d, is_cupy, is_device, to_device
from .quant import _check_bits, acc_bounds, int_dtype, qmax

__all__ = ["quantize", "dequantize", "int_matmul"]


@cuda.jit(device=True)
def _mix(z):  # pragma: no cover - device code; splitmix64 finaliser
    z = (z ^ (z >> uint64(30))) * uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> uint64(27))) * uint64(0x94D049BB133111EB)
    return z ^ (z >> uint64(31))


@cuda.jit
def _stochastic_codes(v, seed, lim, out):  # pragma: no cover - device code
    i = cuda.grid(1)
    if i >= v.size:
        return
    gold = uint64(0x9E3779B97F4A7C15)
    key = _mix(seed + gold)
    u = float64(_mix(key ^ _mix(uint64(i) + gold)) >> uint64(11)) * float64(1.0 / 9007199254740992.0)
    q = floor_f64(v[i] + u)
    if q > lim:
        q = lim
    elif q < -lim:
        q = -lim
    out[i] = q


@cuda.jit
def _nearest_codes(v, lim, out):  # pragma: no cover - device code
    i = cuda.grid(1)
    if i >= v.size:
        return
    y = v[i]
    f = floor_f64(y)
    d = y - f
    q = f
    if d > 0.5 or (d == 0.5 and (f * 0.5) != floor_f64(f * 0.5)):
        q = f + 1.0                       # round half to even, = np.rint
    if q > lim:
        q = lim
    elif q < -lim:
        q = -lim
    out[i] = q


def quantize(w, scale, bits: int, rounding: str = "nearest", seed: int = 0):
    """Integer codes of w at ``scale`` on the GPU; as ``kernels.quant.quantize``."""
    bits = _check_bits(bits)
    if rounding not in ("nearest", "stochastic"):
        raise ValueError(f"rounding={rounding!r} is invalid: must be one of ['nearest', 'stochastic']")
    dt = int_dtype(bits)
    dev = is_device(w)
    cp = cupy_or_none() if is_cupy(w) else None
    xp = cp if cp is not None else np
    if bits == 1:
        if rounding != "nearest":
            raise ValueError("rounding='stochastic' is invalid for bits=1: binary weights use sign(w)")
        w = xp.asarray(w, dtype=np.float64)
        return xp.where(w >= 0, 1, -1).astype(dt)
    lim = float(qmax(bits))
    if cp is not None:
        v = cp.ascontiguousarray(cp.asarray(w, dtype=np.float64) / cp.asarray(scale))
    else:
        wh = w.copy_to_host() if dev else np.asarray(w, dtype=np.float64)
        v = np.ascontiguousarray(np.asarray(wh, dtype=np.float64) / np.asarray(scale))
    shape = v.shape
    vd = to_device(v.reshape(-1))
    out, h = device_empty(int(np.prod(shape)), np.float64, dev and cp is not None)
    blocks, threads = grid1d(max(vd.size, 1))
    if rounding == "nearest":
        _nearest_codes[blocks, threads](vd, lim, out)
    else:
        _stochastic_codes[blocks, threads](vd, np.uint64(int(seed) % 2**64), lim, out)
    res = finish(h, dev and cp is not None)
    return res.reshape(shape).astype(dt)


def dequantize(q, scale, dtype=np.float32):
    """ŵ = q·s (array expression; works on CuPy and numpy arrays alike)."""
    return (q.astype(np.float64) * scale).astype(dtype)


@cuda.jit
def _sat_rows(x, w, pidx, ridx, lo, hi, out):  # pragma: no cover - device code
    m = w.shape[1]
    n = w.shape[2]
    k = cuda.grid(1)
    if k >= pidx.size * m:
        return
    pair = k // m
    i = k % m
    p = pidx[pair]
    r = ridx[pair]
    q = 0 if x.shape[0] == 1 else p
    acc = int64(0)
    for j in range(n):
        xv = int64(x[q, r, j])
        if xv != 0:
            acc += xv * int64(w[p, i, j])
            if acc > hi:
                acc = hi
            elif acc < lo:
                acc = lo
    out[p, r, i] = acc


def int_matmul(xq, wq, acc_bits: int = 32):
    """Saturating integer matmul on the GPU; as ``kernels.quant.int_matmul``.

    Returns (acc (P, R, m) int64, number of (member, row) pairs that took the saturating loop).
    """
    lo, hi = acc_bounds(acc_bits)
    if xq.ndim != 3 or wq.ndim != 3:
        raise ValueError(f"xq and wq must be 3-D (Px, R, n), (P, m, n); got {xq.shape}, {wq.shape}")
    Px, R, n = xq.shape
    P, m, n2 = wq.shape
    if n2 != n or Px not in (1, P):
        raise ValueError(f"xq shape {xq.shape} does not match wq shape {wq.shape}")
    cp = cupy_or_none() if (is_cupy(xq) or is_cupy(wq)) else None
    if cp is not None:
        xf = cp.asarray(xq, dtype=np.float64)
        wf = cp.asarray(wq, dtype=np.float64)
        acc = cp.matmul(xf, wf.transpose(0, 2, 1))                       # exact: integers < 2^53
        acc = cp.ascontiguousarray(cp.broadcast_to(acc, (P, R, m)).astype(np.int64))
        wmax = cp.abs(wf).max(axis=(1, 2)) if m * n else cp.zeros(P)
        worst = cp.abs(xf).sum(axis=-1) * wmax[:, None]
        risky = cp.broadcast_to(worst > min(hi, 2 ** 53), (P, R))
        pidx, ridx = cp.nonzero(risky)
        npairs = int(pidx.size)
        if npairs:
            xi = cp.ascontiguousarray(cp.asarray(xq, dtype=np.int64))
            wi = cp.ascontiguousarray(cp.asarray(wq, dtype=np.int64))
            blocks, threads = grid1d(npairs * m)
            _sat_rows[blocks, threads](cuda.as_cuda_array(xi), cuda.as_cuda_array(wi),
                                       cuda.as_cuda_array(pidx.astype(np.int64)),
                                       cuda.as_cuda_array(ridx.astype(np.int64)), int64(lo), int64(hi),
                                       cuda.as_cuda_array(acc))
        return acc, npairs
    # Numba path (host arrays, or Numba device arrays): exact float64 GEMM on the device, then the loop
    from . import dense_cuda

    dev = is_device(xq) or is_device(wq)
    xh = xq.copy_to_host() if is_device(xq) else np.asarray(xq)
    wh = wq.copy_to_host() if is_device(wq) else np.asarray(wq)
    xf, wf = xh.astype(np.float64), wh.astype(np.float64)
    accf = dense_cuda.dense_population(xf, wf, np.zeros((P, m)), method="numba")
    acc = np.ascontiguousarray(accf.astype(np.int64))
    wmax = np.abs(wf).max(axis=(1, 2)) if m * n else np.zeros(P)
    worst = np.abs(xf).sum(axis=-1) * wmax[:, None]
    risky = np.broadcast_to(worst > min(hi, 2 ** 53), (P, R))
    pidx, ridx = np.nonzero(risky)
    if pidx.size:
        accd = cuda.to_device(acc)
        blocks, threads = grid1d(pidx.size * m)
        _sat_rows[blocks, threads](cuda.to_device(np.ascontiguousarray(xh.astype(np.int64))),
                                   cuda.to_device(np.ascontiguousarray(wh.astype(np.int64))),
                                   cuda.to_device(pidx.astype(np.int64)), cuda.to_device(ridx.astype(np.int64)),
                                   int64(lo), int64(hi), accd)
        acc = accd.copy_to_host()
    return (cuda.to_device(acc) if dev else acc), int(pidx.size)
