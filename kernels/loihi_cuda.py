"""Bit-accurate Loihi LIF (Lava ``PyLifModelBitAcc``), GPU twin of ``kernels/loihi.py``.

Davies et al., IEEE Micro 38(1), 2018; Lava's bit-accurate LIF and Dense models.
Per neuron and step, all int64 arithmetic, a[t] the dendritic sum (delayed by
``delay`` steps):

    decay(x, d) = sign(x·(4096 − d))·(|x·(4096 − d)| >> 12)
    u ← wrap24(decay(u, du + 1) + (a[t] << 6))          24-bit wrap-around
    v ← clip(decay(v, dv) + u + bias, −2²³ + 1, 2²³ − 1)  24-bit saturation
    s = v > (vth << 6);  v ← 0 where s

One CUDA thread per (member, neuron) runs the T steps; integer arithmetic is
exact, and the float64 mean of v is summed in the CPU twin's order, so every
output is bit-identical to the CPU twin. Device in → device out; host in → host out.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64, int64

from ._cuda_common import device_empty, finish, grid1d, is_device, to_device

__all__ = ["loihi_lif"]


@cuda.jit(device=True)
def _decay(x, d):  # pragma: no cover - device code
    y = x * (4096 - d)
    if y < 0:
        return -((-y) >> 12)
    return y >> 12


@cuda.jit(device=True)
def _wrap24(u):  # pragma: no cover - device code
    if u > 8388608:
        return u - 16777216
    if u <= -8388608:
        return u + 16777216
    return u


@cuda.jit
def _loihi(a, T, du, dv, bias, vth, delay, fire, spikes, write_spikes, one, zero, urec, vrec, record,
           counts, first, vsum):  # pragma: no cover - device code
    P, Tz, N = a.shape
    k = cuda.grid(1)
    if k >= P * N:
        return
    p = k // N
    i = k % N
    u = int64(0)
    v = int64(0)
    cnt = 0
    fst = T
    acc = float64(0.0)
    for t in range(T):
        if t >= delay:
            ai = a[p, (t - delay) if Tz > 1 else 0, i]
        else:
            ai = int64(0)
        u = _wrap24(_decay(u, du + 1) + (ai << 6))
        v = _decay(v, dv) + u + bias
        if v > 8388607:
            v = int64(8388607)
        elif v < -8388607:
            v = int64(-8388607)
        s = fire and v > vth
        if record:
            urec[p, t, i] = u
        if s:
            v = int64(0)
            cnt += 1
            if fst == T:
                fst = t
        if record:
            vrec[p, t, i] = v
        if write_spikes:
            spikes[p, t, i] = one if s else zero
        acc += v
    counts[p, i] = cnt
    first[p, i] = fst
    vsum[p, i] = acc / T


def loihi_lif(a_in, T: int, du: int, dv: int, bias_mant: int = 0, bias_exp: int = 0, vth: int = 64,
              delay: int = 1, fire: bool = True, write_spikes: bool = True, record: bool = False,
              spike_dtype=np.float32):
    """Loihi LIF neurons over T steps on the GPU; arguments and returns as ``kernels.loihi.loihi_lif``."""
    if a_in.ndim != 3:
        raise ValueError(f"a_in has shape {a_in.shape}: must be (P, Tz, N)")
    dev = is_device(a_in)
    if np.dtype(a_in.dtype).kind == "f":
        if dev:
            cp = __import__("cupy")
            a_in = cp.floor(a_in)
        else:
            a_in = np.floor(a_in)
    P, Tz, N = a_in.shape
    if Tz not in (1, T):
        raise ValueError(f"a_in has {Tz} time steps: must be 1 (constant) or T={T}")
    ad = to_device(a_in, np.int64)
    sdt = np.dtype(spike_dtype)
    dummy_s = cuda.device_array((1, 1, 1), dtype=sdt)
    dummy_i = cuda.device_array((1, 1, 1), dtype=np.int64)
    spikes, sp_h = device_empty((P, T, N), sdt, dev) if write_spikes else (dummy_s, None)
    urec, u_h = device_empty((P, T, N), np.int64, dev) if record else (dummy_i, None)
    vrec, v_h = device_empty((P, T, N), np.int64, dev) if record else (dummy_i, None)
    counts, c_h = device_empty((P, N), np.int64, dev)
    first, f_h = device_empty((P, N), np.int64, dev)
    vsum, s_h = device_empty((P, N), np.float64, dev)
    blocks, threads = grid1d(P * N)
    _loihi[blocks, threads](ad, int(T), int(du), int(dv), np.int64(int(bias_mant) << int(bias_exp)),
                            np.int64(int(vth) << 6), int(delay), bool(fire), spikes, bool(write_spikes),
                            sdt.type(1), sdt.type(0), urec, vrec, bool(record), counts, first, vsum)
    return ((finish(sp_h, dev) if write_spikes else None), finish(c_h, dev), finish(f_h, dev), finish(s_h, dev),
            (finish(u_h, dev) if record else None), (finish(v_h, dev) if record else None))
