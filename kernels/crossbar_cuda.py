"""Noisy analog crossbar read and pulsed updates, GPU twin of ``kernels/crossbar.py``.

The IO-managed analog MVM of IBM aihwkit 1.2 (``forwardVector``; equations in
``kernels/crossbar.py``), per input vector x:

    α = max_j |x_j| (noise management),  x̂ = clip(res_in·rint(x/(α·red)/res_in), ±b_in)     DAC
    z = W x̂  (− IR drop),  ŷ = clip(res_out·rint((z + σ ξ)/res_out), ±b_out)                  ADC
    y = ŷ·α·red·post_scale + bias,   repeated with red ← 2·red for vectors that hit ±b_out

and the pulsed device update (aihwkit PulsedDevice/LinearStep)

    n = round(|Δ|/dw_min) pulses,  w ← clip(w ± (γ·w + s)(1 + σ_c2c ξ), b_min, b_max) per pulse.

and the PCM device laws of ``neurozo.substrates.pcm`` (aihwkit PCMLikeNoiseModel:
programming noise, drift exponents, drift with 1/f read noise at time t).

GPU layout: the GEMM is cuBLAS (CuPy ``matmul``) or the Numba CUDA tiled GEMM
(``dense_cuda``); the DAC is one thread per input vector, the output stage
(noise, ADC, bound test, rescale, bias) one thread per output vector, the
normal fill one thread per row, the PCM laws and the pulsed update one thread
per device. Random numbers come from the CPU twin's counter-based generator —
splitmix64 keys of (seed, row or element, round) and the same 128-layer
ziggurat (Box–Muller for the pulsed update's cycle-to-cycle noise) — so the
device draws the CPU's noise. Every product that feeds a sum is rounded on its own (no FMA
contraction), as on the CPU; on a real GPU the only differences left are the
last-ulp differences of log/cos/sin/sqrt, which can move an ADC output by one
step when z + noise falls within an ulp of a rounding boundary. The float32
GEMM itself is summed in a different order from BLAS, so the full
``analog_mvm`` matches the CPU within one ADC step per element (and almost
always exactly); the DAC/ADC/update kernels on identical inputs match exactly
under the simulator.

``analog_mvm`` and ``pulsed_update`` take numpy arrays (computed on the device
or the simulator, returned as numpy) or CuPy arrays (kept on the device).
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64, int64, uint64

from ._cuda_common import cupy_or_none, is_cupy, launch, mul_f64, rint_f64
from .crossbar import _ZR, _ZTAIL, _ZX, mvm_counts  # noqa: F401  (mvm_counts: host arithmetic, shared)

ZX = np.ascontiguousarray(_ZX, dtype=np.float64)
ZRT = np.ascontiguousarray(_ZR, dtype=np.float64)
ZTAIL = float(_ZTAIL)

__all__ = ["analog_mvm", "dac", "normal_fill", "pulsed_update", "mvm_counts", "pcm_programming_noise",
           "pcm_drift_coefficients", "pcm_drift_and_read"]

_TWO_PI = 2.0 * math.pi
_INV53 = 1.0 / 9007199254740992.0


@cuda.jit(device=True)
def _mix(z):  # pragma: no cover - device code
    z = (z ^ (z >> uint64(30))) * uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> uint64(27))) * uint64(0x94D049BB133111EB)
    return z ^ (z >> uint64(31))


@cuda.jit(device=True)
def _key(seed, a, b):  # pragma: no cover - device code
    gold = uint64(0x9E3779B97F4A7C15)
    return _mix(_mix(seed + gold) ^ _mix(uint64(a) * gold + uint64(b)))


@cuda.jit(device=True)
def _uniform(key, k):  # pragma: no cover - device code; k-th uniform in (0, 1]
    gold = uint64(0x9E3779B97F4A7C15)
    return float64((_mix(key + (uint64(k) + uint64(1)) * gold) >> uint64(11)) + uint64(1)) * float64(_INV53)


@cuda.jit(device=True)
def _normal(key, k, zx, zr):  # pragma: no cover - device code; (normal, next counter), 128-layer ziggurat
    while True:
        h = _mix(key + (uint64(k) + uint64(1)) * uint64(0x9E3779B97F4A7C15))
        k += 1
        i = int64(h & uint64(127))
        u = mul_f64(float64(2.0), float64(h >> uint64(11)) * float64(_INV53)) - float64(1.0)
        if abs(u) < zr[i]:
            return u * zx[i], k
        if i == 0:
            while True:
                xx = math.log(_uniform(key, k)) / float64(ZTAIL)
                yy = math.log(_uniform(key, k + 1))
                k += 2
                if float64(-2.0) * yy >= mul_f64(xx, xx):
                    return ((xx - float64(ZTAIL)) if u < 0 else (float64(ZTAIL) - xx)), k
        xv = u * zx[i]
        f0 = math.exp(float64(-0.5) * (mul_f64(zx[i], zx[i]) - mul_f64(xv, xv)))
        f1 = math.exp(float64(-0.5) * (mul_f64(zx[i + 1], zx[i + 1]) - mul_f64(xv, xv)))
        if f1 + mul_f64(_uniform(key, k), f0 - f1) < 1.0:
            return xv, k + 1
        k += 1


@cuda.jit
def _normal_fill(out, seed, zx, zr):  # pragma: no cover - device code
    r = cuda.grid(1)
    if r >= out.shape[0]:
        return
    key = _key(seed, r, 0)
    k = 0
    for i in range(out.shape[1]):
        g, k = _normal(key, k, zx, zr)
        out[r, i] = g


def _tables(xp):
    if xp is np:
        return ZX, ZRT
    if not hasattr(_tables, "dev"):
        _tables.dev = (xp.asarray(ZX), xp.asarray(ZRT))
    return _tables.dev


def normal_fill(shape, seed: int, dtype=np.float64, device: bool = False):
    """Standard normals of the CPU twin's counter-based generator (row r of the 2-D view uses stream r)."""
    shape = tuple(int(s) for s in np.atleast_1d(shape))
    m = shape[-1] if shape else 1
    R = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    xp = cupy_or_none() if device else np
    out = xp.empty((R, m), dtype=dtype)
    launch(_normal_fill, R, out, np.uint64(int(seed) % 2**64), *_tables(xp), outs=(0,))
    return out.reshape(shape)


# ------------------------------------------------------------------ PCM device laws, one thread per device

@cuda.jit
def _pcm_prog(f, coeff, g_max, c_scale, scale, seed, zx, zr, o):  # pragma: no cover - device code
    e = cuda.grid(1)
    if e >= f.size:
        return
    gh = f[e] / g_max
    sig = float64(0.0)
    pw = float64(1.0)
    for c in range(coeff.size):
        sig += mul_f64(coeff[c], pw)
        pw *= gh
    xi, _k = _normal(_key(seed, e, 1), 0, zx, zr)
    o[e] = max(f[e] + mul_f64(scale * sig * c_scale, xi), float64(0.0))


@cuda.jit
def _pcm_nu(f, g_max, scale, seed, zx, zr, o):  # pragma: no cover - device code
    e = cuda.grid(1)
    if e >= f.size:
        return
    lg = math.log(max(abs(f[e] / g_max), float64(1e-7)))
    mu = min(max(mul_f64(float64(-0.0155), lg) + float64(0.0244), float64(0.049)), float64(0.1))
    sd = min(max(mul_f64(float64(-0.0125), lg) - float64(0.0059), float64(0.008)), float64(0.045))
    xi, _k = _normal(_key(seed, e, 2), 0, zx, zr)
    o[e] = abs(mu + mul_f64(sd, xi)) * scale


@cuda.jit
def _pcm_at(f, v, ratio, lr, log_term, g_max, scale, seed, zx, zr, o):  # pragma: no cover - device code
    e = cuda.grid(1)
    if e >= f.size:
        return
    gp = f[e]
    gd = gp * math.exp(-v[e] * lr) if ratio > 1.0 else gp
    gh = abs(gp) / g_max
    q = min(float64(0.0088) / max(gh ** float64(0.65), float64(1e-3)), float64(0.2))
    xi, _k = _normal(_key(seed, e, 3), 0, zx, zr)
    o[e] = max(gd + mul_f64(abs(gd) * scale * q * log_term, xi), float64(0.0))


def _flat64(xp, a):
    return xp.ascontiguousarray(xp.asarray(a), dtype=np.float64)


def pcm_programming_noise(g_target, coeff, g_max: float, coeff_scale: float, scale: float, seed: int):
    """As ``kernels.crossbar.pcm_programming_noise``, on the GPU."""
    xp = cupy_or_none() if is_cupy(g_target) else np
    g = _flat64(xp, g_target)
    out = xp.empty_like(g)
    launch(_pcm_prog, g.size, g.reshape(-1), _flat64(xp, coeff), float(g_max), float(coeff_scale), float(scale),
           np.uint64(int(seed) % 2**64), *_tables(xp), out.reshape(-1), outs=(8,))
    return out


def pcm_drift_coefficients(g_target, g_max: float, scale: float, seed: int):
    """As ``kernels.crossbar.pcm_drift_coefficients``, on the GPU."""
    xp = cupy_or_none() if is_cupy(g_target) else np
    g = _flat64(xp, g_target)
    out = xp.empty_like(g)
    launch(_pcm_nu, g.size, g.reshape(-1), float(g_max), float(scale), np.uint64(int(seed) % 2**64), *_tables(xp),
           out.reshape(-1), outs=(6,))
    return out


def pcm_drift_and_read(g_prog, nu, t_inference: float, t0: float, t_read: float, g_max: float, scale: float,
                       seed: int):
    """As ``kernels.crossbar.pcm_drift_and_read``, on the GPU."""
    xp = cupy_or_none() if is_cupy(g_prog) else np
    g = _flat64(xp, g_prog)
    v = xp.ascontiguousarray(xp.broadcast_to(xp.asarray(nu), g.shape), dtype=np.float64)
    t = float(t_inference) + float(t0)
    log_term = math.sqrt(math.log((t + t_read) / (2.0 * t_read)))
    ratio = t / float(t0)
    out = xp.empty_like(g)
    launch(_pcm_at, g.size, g.reshape(-1), v.reshape(-1), ratio, math.log(ratio), log_term, float(g_max),
           float(scale), np.uint64(int(seed) % 2**64), *_tables(xp), out.reshape(-1), outs=(10,))
    return out


@cuda.jit
def _dac_rows(x, rows, red, nm, res, bound, alpha, out):  # pragma: no cover - device code
    k = cuda.grid(1)
    if k >= rows.size:
        return
    n = x.shape[1]
    r = rows[k]
    a = float64(1.0)
    if nm:
        a = float64(0.0)
        for j in range(n):
            v = abs(x[r, j])
            if v > a:
                a = v
    alpha[k] = a                          # 0 marks an all-zero vector (no conversion)
    if a == 0.0:
        a = float64(1.0)
    s = float64(1.0) / (a * red[k])
    if res > 0:
        sr = s / res
        for j in range(n):
            out[k, j] = min(max(rint_f64(x[r, j] * sr) * res, -bound), bound)
    else:
        for j in range(n):
            out[k, j] = min(max(x[r, j] * s, -bound), bound)


def dac(x2, res: float, bound: float, noise_management: bool = True, red=None, rows=None):
    """Quantised, normalised inputs x̂ (K, n) float32 and α (K,) float64; as ``kernels.crossbar.dac``."""
    xp = cupy_or_none() if is_cupy(x2) else np
    x2 = xp.ascontiguousarray(xp.asarray(x2, dtype=np.float32))
    if rows is None:
        rows = xp.arange(x2.shape[0], dtype=np.int64)
    rows = xp.asarray(rows, dtype=np.int64)
    if red is None:
        red = xp.ones(rows.size, dtype=np.float64)
    red = xp.asarray(red, dtype=np.float64)
    out = xp.empty((rows.size, x2.shape[1]), dtype=np.float32)
    alpha = xp.empty(rows.size, dtype=np.float64)
    launch(_dac_rows, rows.size, x2, rows, red, bool(noise_management), float(res), float(bound), alpha, out,
           outs=(6, 7))
    return out, alpha


@cuda.jit
def _adc_rows(z, out, dst, member, rowscale, bias, wstd, has_w, out_noise, res, bound, seed, keys, rnd, zx, zr,
              passed):  # pragma: no cover - device code
    k = cuda.grid(1)
    if k >= z.shape[0]:
        return
    m = z.shape[1]
    inv = float64(1.0) / res if res > 0 else float64(0.0)
    d = dst[k]
    p = member[k]
    sd = out_noise
    if has_w:
        sd = math.sqrt(mul_f64(out_noise, out_noise) + mul_f64(wstd[k], wstd[k]))
    key = _key(seed, keys[k], rnd)
    c = 0
    hit = 0
    for i in range(m):
        v = float64(z[k, i])
        if sd > 0:
            g, c = _normal(key, c, zx, zr)
            v = v + mul_f64(sd, g)
        if res > 0:
            v = rint_f64(v * inv) * res
        if v > bound or v < -bound:
            hit += 1
        v = min(max(v, -bound), bound)
        out[d, i] = mul_f64(v, rowscale[k]) + bias[p, i]
    passed[k] = hit == 0


def _ir_drop(xp, z, xq, W, ir_drop, g_ratio):
    """aihwkit's steady-state IR-drop approximation, subtracted from z in place (array ops)."""
    n = W.shape[-1]
    cur = xp.abs(xq) @ xp.abs(W).T
    a = cur * (n / g_ratio)
    c = a * (a * (0.05 * a - 0.2) + 0.5)
    pos = 1.0 - xp.arange(n, dtype=np.float32) / n
    xw = xq * (1.0 - pos * pos)[None, :]
    z -= (ir_drop * c * (xw @ W.T)).astype(z.dtype)
    return z


def _wstd(xp, xq, rows, w_noise):
    if w_noise <= 0:
        return xp.zeros(1, dtype=np.float64), False
    nrm = xp.sqrt((xq.astype(np.float64) ** 2).sum(axis=1))
    return xp.ascontiguousarray((w_noise * nrm)[rows]), True


def _matmul(xp, a, b):
    """Float32 product a @ b on the device: cuBLAS for CuPy, the Numba CUDA GEMM for host arrays."""
    if xp is not np:
        return xp.matmul(a, b)
    from . import dense_cuda

    a3 = a if a.ndim == 3 else a[None]
    bt = np.swapaxes(b if b.ndim == 3 else b[None], -1, -2)            # (., m, n)
    P = max(a3.shape[0], bt.shape[0])
    if bt.shape[0] == 1 and P > 1:
        bt = np.broadcast_to(bt, (P,) + bt.shape[1:])
    y = dense_cuda.dense_population(np.ascontiguousarray(a3), np.ascontiguousarray(bt),
                                    np.zeros((P, bt.shape[1]), np.float32), method="numba")
    return y if (a.ndim == 3 or b.ndim == 3) else y[0]


def analog_mvm(x, W, *, inp_res: float, inp_bound: float, out_res: float, out_bound: float, out_noise: float,
               w_noise: float = 0.0, noise_management: bool = True, bound_management: bool = True,
               max_bm_factor: float = 1000.0, max_bm_res: float = 0.25, ir_drop: float = 0.0,
               ir_drop_g_ratio: float = 1.0 / 0.35 / 5e-6, post_scale=None, bias=None, seed: int = 0):
    """IO-managed analog MVM of a population on the GPU; arguments and returns as
    ``kernels.crossbar.analog_mvm`` (y (P, R, m) float32, rounds (P, R) int32)."""
    if x.ndim != 3 or W.ndim != 3:
        raise ValueError(f"x and W must be 3-D (Px, R, n), (P, m, n); got {x.shape}, {W.shape}")
    Px, R, n = x.shape
    P, m, n2 = W.shape
    if n2 != n or Px not in (1, P):
        raise ValueError(f"x shape {x.shape} does not match W shape {W.shape}")
    xp = cupy_or_none() if (is_cupy(x) or is_cupy(W)) else np
    W = xp.ascontiguousarray(xp.asarray(W, dtype=np.float32))
    xf = xp.ascontiguousarray(xp.asarray(x, dtype=np.float32)).reshape(Px * R, n)
    post = xp.ones(P) if post_scale is None else xp.asarray(post_scale, dtype=np.float64).reshape(P)
    bias = (xp.zeros((P, m), np.float32) if bias is None
            else xp.ascontiguousarray(xp.asarray(bias, dtype=np.float32)))
    seed = np.uint64(int(seed) % 2**64)
    zt = _tables(xp)
    y = xp.empty((P * R, m), dtype=np.float32)
    rounds = xp.zeros(P * R, dtype=np.int32)

    red = 1.0
    xq, alpha = dac(xf, inp_res, inp_bound, noise_management)
    nz = alpha > 0
    alpha = xp.where(nz, alpha, 1.0)
    z = _matmul(xp, xq.reshape(Px, R, n), W.transpose(0, 2, 1))
    if z.shape != (P, R, m):
        z = xp.broadcast_to(z, (P, R, m)).copy()
    z = xp.ascontiguousarray(z).reshape(P * R, m)
    if ir_drop > 0:
        for p in range(P):
            xpp = xq.reshape(Px, R, n)[0 if Px == 1 else p]
            _ir_drop(xp, z[p * R:(p + 1) * R], xpp, W[p], ir_drop, ir_drop_g_ratio)
    member = xp.repeat(xp.arange(P, dtype=np.int64), R)
    rowsrc = xp.tile(xp.arange(R, dtype=np.int64), P) if Px == 1 else xp.arange(P * R, dtype=np.int64)
    wstd, has_w = _wstd(xp, xq, rowsrc, w_noise)
    rowscale = xp.ascontiguousarray((alpha[rowsrc] * red * post[member]).astype(np.float64))
    passed = xp.empty(P * R, dtype=np.bool_)
    keys = xp.arange(P * R, dtype=np.int64)
    launch(_adc_rows, P * R, z, y, keys, member, rowscale, bias, wstd, has_w, float(out_noise), float(out_res),
           float(out_bound), seed, keys, 0, *zt, passed, outs=(1, 16))
    nzr = nz[rowsrc]
    rounds[nzr] = 1
    passed |= ~nzr
    if bool((~nzr).any()):
        y[~nzr] = bias[member[~nzr]]

    rnd = 0
    while bound_management and not bool(passed.all()):
        if red > max_bm_factor or (inp_res > 0 and red > max_bm_res / inp_res):
            break
        red *= 2.0
        rnd += 1
        idx = xp.nonzero(~passed)[0]
        src = rowsrc[idx]
        xq_s, a_s = dac(xf, inp_res, inp_bound, noise_management, xp.full(idx.size, red), src)
        a_s = xp.where(a_s > 0, a_s, 1.0)
        mem = member[idx]
        z_s = xp.empty((idx.size, m), dtype=np.float32)
        for p in (xp.unique(mem).tolist() if xp is not np else np.unique(mem)):
            sel = xp.nonzero(mem == p)[0]
            z_s[sel] = _matmul(xp, xq_s[sel], W[p].T)
            if ir_drop > 0:
                # as the CPU twin does: z_s[sel] is a copy (fancy index), so this correction is not
                # kept in bound-management rounds; mirrored for parity until the CPU changes
                _ir_drop(xp, z_s[sel], xq_s[sel], W[p], ir_drop, ir_drop_g_ratio)
        wstd_s, has_w = _wstd(xp, xq_s, xp.arange(idx.size), w_noise)
        rs = xp.ascontiguousarray((a_s * red * post[mem]).astype(np.float64))
        ok = xp.empty(idx.size, dtype=np.bool_)
        idx64 = xp.ascontiguousarray(idx.astype(np.int64))
        launch(_adc_rows, idx.size, z_s, y, idx64, xp.ascontiguousarray(mem), rs, bias, wstd_s, has_w,
               float(out_noise), float(out_res), float(out_bound), seed, idx64, rnd, *zt, ok, outs=(1, 16))
        rounds[idx] += 1
        passed[idx] = ok
    return y.reshape(P, R, m), rounds.reshape(P, R)


@cuda.jit
def _pulsed(w, d, su, sd, gu, gd, lo, hi, dw_nom, c2c, mult, stoch, max_pulses, seed,
            cnt):  # pragma: no cover - device code
    e = cuda.grid(1)
    if e >= w.size:
        return
    key = _key(seed, e, 7)
    k = 0
    v = abs(d[e]) / dw_nom
    if stoch:
        npl = int(math.floor(v + _uniform(key, k) - float64(_INV53)))
        k += 1
    else:
        npl = int(rint_f64(v))
    if max_pulses >= 0 and npl > max_pulses:
        npl = max_pulses
    cnt[e] = npl
    up = d[e] > 0
    x = w[e]
    for _ in range(npl):
        xi = float64(0.0)
        if c2c > 0:
            rad = math.sqrt(float64(-2.0) * math.log(_uniform(key, k)))
            xi = rad * math.cos(float64(_TWO_PI) * _uniform(key, k + 1))
            k += 2
        f = float64(1.0) + mul_f64(c2c, xi)
        if up:
            if mult:
                x += mul_f64(mul_f64(gu[e], x) + su[e], f)
            else:
                x += mul_f64(gu[e], x) + mul_f64(su[e], f)
        else:
            if mult:
                x -= mul_f64(mul_f64(gd[e], x) + sd[e], f)
            else:
                x -= mul_f64(gd[e], x) + mul_f64(sd[e], f)
        if x > hi[e]:
            x = hi[e]
        elif x < lo[e]:
            x = lo[e]
    w[e] = x


def pulsed_update(w, delta, scale_up, scale_down, slope_up, slope_down, w_min, w_max, dw_min: float,
                  c2c: float, mult_noise: bool, stochastic: bool, max_pulses: int, seed: int):
    """Pulsed update on the GPU; as ``kernels.crossbar.pulsed_update`` (returns (w float64, pulses int64))."""
    xp = cupy_or_none() if is_cupy(w) else np
    w = xp.ascontiguousarray(xp.asarray(w, dtype=np.float64))          # updated in place, as on the CPU
    arrs = [xp.ascontiguousarray(xp.broadcast_to(xp.asarray(a, dtype=np.float64), w.shape)).reshape(-1)
            for a in (delta, scale_up, scale_down, slope_up, slope_down, w_min, w_max)]
    pulses = xp.zeros(w.shape, dtype=np.int64)
    wf, pf = w.reshape(-1), pulses.reshape(-1)
    launch(_pulsed, wf.size, wf, *arrs, float(dw_min), float(c2c), bool(mult_noise), bool(stochastic),
           int(max_pulses), np.uint64(int(seed) % 2**64), pf, outs=(0, 14))
    return w, pulses
