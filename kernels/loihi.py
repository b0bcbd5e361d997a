"""Bit-accurate fixed-point LIF of Loihi (Lava ``PyLifModelBitAcc``), Numba CPU.

Davies et al., "Loihi: a neuromorphic manycore processor with on-chip
learning", IEEE Micro 38(1), 2018; arithmetic as in Lava's bit-accurate
process models (``lava.proc.lif.models.PyLifModelBitAcc``,
``lava.proc.dense.models.PyDenseModelBitAcc``). Per neuron and step t, all
integers, with the dendritic input a[t] (the synaptic accumulator of the
previous step — Lava's Dense delivers its sum one step later):

    decay(x, d) = sign(x · (4096 − d)) · (|x · (4096 − d)| >> 12)      (int64 product)
    u ← decay(u, du + 1) + (a[t] << 6)                 current; the +1 is Loihi-1's
                                                       ds_offset, so du = 4095 empties u
    u ← u − 2²⁴ if u > 2²³;  u ← u + 2²⁴ if u ≤ −2²³   24-bit wrap-around of the current
    v ← clip(decay(v, dv) + u + (bias_mant << bias_exp), −2²³ + 1, 2²³ − 1)
                                                       24-bit saturating voltage
    s = v > (vth << 6);  v ← 0 where s                 spike and reset to zero

Bit widths: du, dv unsigned 12 bit (0…4095), bias_mant signed 13 bit
(−4096…4095), bias_exp 0…7, vth unsigned 17 bit (0…131071), u and v 24 bit.
No refractory period (as in Lava's model). The dendritic sum arrives as
int32 in Lava and is shifted left by 6 before it enters u.

Synapse side (``quantize_weights``): 8-bit weights with an exponent, as
Lava's Dense: weights clipped to [−256, 255] (mixed sign), [0, 255]
(excitatory) or [−255, 0] (inhibitory); then ``8 − num_weight_bits + mixed``
low bits are dropped (w ← (w >> k) << k: mixed-sign weights are even with
8-bit weights), and the accumulated sum is shifted by ``weight_exp``
(a ← Σ w·s << weight_exp, or >> −weight_exp: an arithmetic, flooring shift).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["loihi_lif", "quantize_weights", "decay", "wrap24", "U_MAX", "V_MAX", "CHUNK"]

U_MAX = 2 ** 23          # |u| limit; u wraps beyond it
V_MAX = 2 ** 23 - 1      # v saturates at ±V_MAX
CHUNK = 512


@njit(inline="always", cache=True)
def _decay(x, d):  # pragma: no cover - compiled
    y = x * (4096 - d)
    if y < 0:
        return -((-y) >> 12)
    return y >> 12


@njit(inline="always", cache=True)
def _wrap24(u):  # pragma: no cover - compiled
    if u > 8388608:
        return u - 16777216
    if u <= -8388608:
        return u + 16777216
    return u


@njit(parallel=True, fastmath=False, cache=True)
def _loihi_lif(a, T, du, dv, bias, vth, delay, fire, spikes, write_spikes, urec, vrec, record,
               counts, first, vsum):  # pragma: no cover - compiled
    P, Tz, N = a.shape
    nchunk = (N + CHUNK - 1) // CHUNK
    for job in prange(P * nchunk):
        p = job // nchunk
        c0 = (job % nchunk) * CHUNK
        c1 = min(c0 + CHUNK, N)
        for i in range(c0, c1):
            u = np.int64(0)
            v = np.int64(0)
            cnt = 0
            fst = T
            acc = 0.0
            for t in range(T):
                if t >= delay:
                    ai = a[p, (t - delay) if Tz > 1 else 0, i]
                else:
                    ai = np.int64(0)
                u = _wrap24(_decay(u, du + 1) + (ai << 6))
                v = _decay(v, dv) + u + bias
                if v > 8388607:
                    v = np.int64(8388607)
                elif v < -8388607:
                    v = np.int64(-8388607)
                s = fire and v > vth
                if record:
                    urec[p, t, i] = u
                if s:
                    v = np.int64(0)
                    cnt += 1
                    if fst == T:
                        fst = t
                if record:
                    vrec[p, t, i] = v
                if write_spikes:
                    spikes[p, t, i] = 1.0 if s else 0.0
                acc += v
            counts[p, i] = cnt
            first[p, i] = fst
            vsum[p, i] = acc / T
    return counts


def loihi_lif(a_in: np.ndarray, T: int, du: int, dv: int, bias_mant: int = 0, bias_exp: int = 0,
              vth: int = 64, delay: int = 1, fire: bool = True, write_spikes: bool = True,
              record: bool = False, spike_dtype=np.float32):
    """Run Loihi LIF neurons over T steps.

    a_in : (P, Tz, N) integer dendritic sums per step, Tz ∈ {1, T} (1: constant);
        float inputs are floored to integers.
    delay : steps between a presynaptic spike and its arrival (Lava's Dense: 1).
    fire : False turns the neurons into non-spiking integrators (membrane readout).

    Returns ``(spikes (P, T, N) or None, counts (P, N), first (P, N) — T if
    silent —, mean_t v (P, N), u (P, T, N) or None, v (P, T, N) or None)``;
    the recorded v is after the reset of a spiking step.
    """
    a_in = np.asarray(a_in)
    if a_in.ndim != 3:
        raise ValueError(f"a_in has shape {a_in.shape}: must be (P, Tz, N)")
    if a_in.dtype.kind == "f":
        a_in = np.floor(a_in)
    a = np.ascontiguousarray(a_in, dtype=np.int64)
    P, Tz, N = a.shape
    if Tz not in (1, T):
        raise ValueError(f"a_in has {Tz} time steps: must be 1 (constant) or T={T}")
    bias = int(bias_mant) << int(bias_exp)
    vth_eff = int(vth) << 6
    spikes = np.empty((P, T, N), dtype=spike_dtype) if write_spikes else np.empty((1, 1, 1), dtype=spike_dtype)
    shape_rec = (P, T, N) if record else (1, 1, 1)
    urec = np.empty(shape_rec, dtype=np.int64)
    vrec = np.empty(shape_rec, dtype=np.int64)
    counts = np.empty((P, N), dtype=np.int64)
    first = np.empty((P, N), dtype=np.int64)
    vsum = np.empty((P, N), dtype=np.float64)
    _loihi_lif(a, int(T), int(du), int(dv), np.int64(bias), np.int64(vth_eff), int(delay), bool(fire),
               spikes, bool(write_spikes), urec, vrec, bool(record), counts, first, vsum)
    return ((spikes if write_spikes else None), counts, first, vsum,
            (urec if record else None), (vrec if record else None))


def decay(x, d):
    """Loihi's sign-magnitude decay sign(x(4096 − d))·(|x(4096 − d)| >> 12) (numpy, int64)."""
    y = np.asarray(x, dtype=np.int64) * (4096 - int(d))
    return np.sign(y) * (np.abs(y) >> 12)


def wrap24(u):
    """Lava's single 24-bit wrap of the current: > 2²³ → −2²⁴; ≤ −2²³ → +2²⁴ (numpy)."""
    u = np.asarray(u, dtype=np.int64)
    return np.where(u > U_MAX, u - 2 * U_MAX, np.where(u <= -U_MAX, u + 2 * U_MAX, u))


def quantize_weights(w: np.ndarray, num_weight_bits: int = 8):
    """Clip and truncate integer weights (one matrix) as Lava's bit-accurate Dense does.

    w : integer-valued weights (any shape). Sign mode from the values: mixed if
    both signs occur. Returns (int64 weights, sign mode name).
    """
    w = np.asarray(w, dtype=np.int64)
    lo, hi = (int(w.min()), int(w.max())) if w.size else (0, 0)
    if lo >= 0:
        mode, mixed, inhib = "excitatory", 0, False
    elif hi <= 0:
        mode, mixed, inhib = "inhibitory", 0, True
    else:
        mode, mixed, inhib = "mixed", 1, False
    if inhib:
        w = -w
    w = np.clip(w, -256 * mixed, 255)
    k = 8 - int(num_weight_bits) + mixed
    w = (w >> k) << k
    return (-w if inhib else w), mode
