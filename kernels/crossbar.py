"""Noisy analog crossbar read (IBM aihwkit's IO-managed forward pass) and pulsed
device updates, Numba CPU versions.

Analog matrix–vector product of one input vector x ∈ Rⁿ with tile weights
W ∈ R^{m×n} (aihwkit 1.2, ``rpu_forward_backward_pass.cpp``
``forwardVector``, defaults in ``IOParameters``):

    α      = max_j |x_j|                         noise management "abs_max" (α = 1 if off)
    red    = 1, 2, 4, …                          iterative bound management round
    x̂_j    = clip(res_in · rint(x_j / (α·red) / res_in), ±b_in)        DAC
    z_i    = Σ_j W_ij x̂_j                                              analog MVM
    z_i   −= ir_drop · c_i · Σ_j W_ij x̂_j (1 − (1 − j/n)²)            optional IR drop
             c_i = a_i (a_i (0.05 a_i − 0.2) + 0.5), a_i = n/g_ratio · Σ_j |W_ij||x̂_j|
    z_i   += w_noise · ‖x̂‖₂ · ξ + σ_out · ξ'                           output-referred noise
    ŷ_i    = clip(res_out · rint(z_i / res_out), ±b_out)               ADC
    if some |z_i| exceeded b_out (after rounding): red ← 2·red and repeat, unless
       red > max_bm_factor or red > max_bm_res / res_in
    y_i    = ŷ_i · α · red · post_scale + bias_i                       digital output stage

res_in = 2·b_in/(2^{b_DAC} − 2), res_out = 2·b_out/(2^{b_ADC} − 2) (7 and 9 bits,
b_in = 1, b_out = 12 by default). With abs_max noise management an all-zero input vector gives y = bias
without a conversion (aihwkit's short cut).

The GEMM runs in BLAS (numpy ``matmul``, float32); the DAC (with α) and the
output stage (noise, ADC, bound test, rescale and bias) are each one fused
parallel pass. Output noise is drawn inside the kernel from a counter-based
generator: a splitmix64 hash of (seed, row, round, counter) and a 128-layer
ziggurat (Marsaglia & Tsang 2000), so
every row's noise depends only on the explicit seed and its position, never on
the thread count.

``pcm_programming_noise``, ``pcm_drift_coefficients`` and ``pcm_drift_and_read``
are the PCM device laws of ``neurozo.substrates.pcm`` (aihwkit
``PCMLikeNoiseModel``) as single fused passes with per-element normals from
the same counter-based generator.

``pulsed_update`` applies ⌊|Δ|/dw_min⌉ update pulses per device (aihwkit
``PulsedDevice``/``LinearStep`` update-once rules):

    up:   w ← w + (γ⁺·w + s⁺)·(1 + σ_c2c ξ)      (multiplicative c2c noise)
          w ← w + γ⁺·w + s⁺·(1 + σ_c2c ξ)        (additive c2c noise)
    down: w ← w − (γ⁻·w + s⁻)·(1 + σ_c2c ξ)      …
    w ← clip(w, b_min, b_max) after every pulse
"""

from __future__ import annotations

import math

import contextlib

import numba
import numpy as np
from numba import njit, prange

__all__ = ["analog_mvm", "dac", "normal_fill", "pulsed_update", "mvm_counts", "pcm_programming_noise",
           "pcm_drift_coefficients", "pcm_drift_and_read"]

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_PI = 2.0 * math.pi
_INV53 = 1.0 / 9007199254740992.0

#: below this many elements a kernel call runs on one thread: the parallel region's start-up and
#: (under load) its threads' spin-waiting cost more than the work; results do not depend on it
PARALLEL_MIN_WORK = 1 << 15


@contextlib.contextmanager
def threads_for(work: int):
    """Run the enclosed Numba calls on one thread when ``work`` (elements) is small."""
    n = numba.get_num_threads()
    if work >= PARALLEL_MIN_WORK or n == 1:
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(n)


@njit(inline="always", cache=True)
def _mix(z):  # pragma: no cover - compiled; splitmix64 finaliser
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(inline="always", cache=True)
def _key(seed, a, b):  # pragma: no cover - compiled; stream key of (seed, a, b)
    return _mix(_mix(seed + _GOLD) ^ _mix(np.uint64(a) * _GOLD + np.uint64(b)))


@njit(inline="always", cache=True)
def _uniform(key, k):  # pragma: no cover - compiled; k-th uniform in (0, 1] of a stream
    return ((_mix(key + (np.uint64(k) + np.uint64(1)) * _GOLD) >> np.uint64(11)) + np.uint64(1)) * _INV53


def _zig_tables(C=128, R=3.442619855899, V=9.91256303526217e-3):
    """Ziggurat layer tables (Marsaglia & Tsang 2000, in Doornik's ZIGNOR form, 128 layers)."""
    x = np.zeros(C + 1)
    f = math.exp(-0.5 * R * R)
    x[0] = V / f
    x[1] = R
    for i in range(2, C):
        x[i] = math.sqrt(-2.0 * math.log(V / x[i - 1] + f))
        f = math.exp(-0.5 * x[i] * x[i])
    return x, x[1:] / x[:-1], R


_ZX, _ZR, _ZTAIL = _zig_tables()


@njit(inline="always", cache=True)
def _normal(key, k, zx, zr):  # pragma: no cover - compiled; (normal, next counter)
    while True:
        h = _mix(key + (np.uint64(k) + np.uint64(1)) * _GOLD)
        k += 1
        i = np.int64(h & np.uint64(127))
        u = 2.0 * ((h >> np.uint64(11)) * _INV53) - 1.0
        if abs(u) < zr[i]:
            return u * zx[i], k
        if i == 0:  # the tail beyond R
            while True:
                xx = math.log(_uniform(key, k)) / _ZTAIL
                yy = math.log(_uniform(key, k + 1))
                k += 2
                if -2.0 * yy >= xx * xx:
                    return (xx - _ZTAIL) if u < 0 else (_ZTAIL - xx), k
        xv = u * zx[i]
        f0 = math.exp(-0.5 * (zx[i] * zx[i] - xv * xv))
        f1 = math.exp(-0.5 * (zx[i + 1] * zx[i + 1] - xv * xv))
        if f1 + _uniform(key, k) * (f0 - f1) < 1.0:
            return xv, k + 1
        k += 1


@njit(parallel=True, fastmath=False, cache=True)
def _normal_fill(out, seed, zx, zr):  # pragma: no cover - compiled
    R, m = out.shape
    for r in prange(R):
        key = _key(seed, r, 0)
        k = 0
        for i in range(m):
            g, k = _normal(key, k, zx, zr)
            out[r, i] = g
    return out


def normal_fill(shape, seed: int, dtype=np.float64) -> np.ndarray:
    """Standard normals of the counter-based generator (row r of a 2-D view uses stream r)."""
    shape = tuple(int(s) for s in np.atleast_1d(shape))
    m = shape[-1] if shape else 1
    out = np.empty((int(np.prod(shape[:-1])) if len(shape) > 1 else 1, m), dtype=dtype)
    with threads_for(out.size):
        _normal_fill(out, np.uint64(int(seed) % 2**64), _ZX, _ZR)
    return out.reshape(shape)


# ---------------------------------------------------------------------------------------------
# PCM device noise (aihwkit PCMLikeNoiseModel), one fused pass per call
# ---------------------------------------------------------------------------------------------
@njit(parallel=True, fastmath=False, cache=True)
def _pcm_prog(g, coeff, g_max, c_scale, scale, seed, zx, zr, out):  # pragma: no cover - compiled
    f = g.reshape(-1)
    o = out.reshape(-1)
    nc = coeff.size
    for e in prange(f.size):
        gh = f[e] / g_max
        sig = 0.0
        pw = 1.0
        for c in range(nc):
            sig += coeff[c] * pw
            pw *= gh
        xi, _ = _normal(_key(seed, e, 1), 0, zx, zr)
        o[e] = max(f[e] + scale * sig * c_scale * xi, 0.0)
    return out


@njit(parallel=True, fastmath=False, cache=True)
def _pcm_nu(g, g_max, scale, seed, zx, zr, out):  # pragma: no cover - compiled
    f = g.reshape(-1)
    o = out.reshape(-1)
    for e in prange(f.size):
        lg = math.log(max(abs(f[e] / g_max), 1e-7))
        mu = min(max(-0.0155 * lg + 0.0244, 0.049), 0.1)
        sd = min(max(-0.0125 * lg - 0.0059, 0.008), 0.045)
        xi, _ = _normal(_key(seed, e, 2), 0, zx, zr)
        o[e] = abs(mu + sd * xi) * scale
    return out


@njit(parallel=True, fastmath=False, cache=True)
def _pcm_at(g, nu, ratio, log_term, g_max, scale, seed, zx, zr, out):  # pragma: no cover - compiled
    f = g.reshape(-1)
    v = nu.reshape(-1)
    o = out.reshape(-1)
    lr = math.log(ratio)
    for e in prange(f.size):
        gp = f[e]
        gd = gp * math.exp(-v[e] * lr) if ratio > 1.0 else gp
        gh = abs(gp) / g_max
        q = min(0.0088 / max(gh ** 0.65, 1e-3), 0.2)
        xi, _ = _normal(_key(seed, e, 3), 0, zx, zr)
        o[e] = max(gd + abs(gd) * scale * q * log_term * xi, 0.0)
    return out


def pcm_programming_noise(g_target, coeff, g_max: float, coeff_scale: float, scale: float, seed: int):
    """g_prog = max(0, g + s·σ_prog(g)·ξ), σ_prog = Σ_k c_k (g/g_max)^k · coeff_scale (see ``substrates.pcm``)."""
    g = np.ascontiguousarray(g_target, dtype=np.float64)
    with threads_for(g.size):
        return _pcm_prog(g, np.ascontiguousarray(coeff, dtype=np.float64), float(g_max), float(coeff_scale),
                         float(scale), np.uint64(int(seed) % 2**64), _ZX, _ZR, np.empty_like(g))


def pcm_drift_coefficients(g_target, g_max: float, scale: float, seed: int):
    """ν = s·|μ_ν(g) + σ_ν(g)·ξ| with aihwkit's clipped log-conductance laws."""
    g = np.ascontiguousarray(g_target, dtype=np.float64)
    with threads_for(g.size):
        return _pcm_nu(g, float(g_max), float(scale), np.uint64(int(seed) % 2**64), _ZX, _ZR, np.empty_like(g))


def pcm_drift_and_read(g_prog, nu, t_inference: float, t0: float, t_read: float, g_max: float, scale: float,
                       seed: int):
    """g(t) = max(0, g_d + |g_d|·s·Q(g_prog)·√ln((t + t_read)/(2 t_read))·ξ), g_d = g_prog·(t/t0)^−ν, t = t_inf + t0."""
    g = np.ascontiguousarray(g_prog, dtype=np.float64)
    v = np.ascontiguousarray(np.broadcast_to(nu, g.shape), dtype=np.float64)
    t = float(t_inference) + float(t0)
    log_term = math.sqrt(math.log((t + t_read) / (2.0 * t_read)))
    with threads_for(g.size):
        return _pcm_at(g, v, t / float(t0), log_term, float(g_max), float(scale), np.uint64(int(seed) % 2**64),
                       _ZX, _ZR, np.empty_like(g))


# ---------------------------------------------------------------------------------------------
# DAC: α per row (noise management) and input quantisation, one pass per row
# ---------------------------------------------------------------------------------------------
@njit(parallel=True, fastmath=False, cache=True)
def _dac_rows(x, rows, red, nm, res, bound, alpha, out):  # pragma: no cover - compiled
    n = x.shape[1]
    for k in prange(rows.size):
        r = rows[k]
        a = 1.0
        if nm:
            a = 0.0
            for j in range(n):
                v = abs(x[r, j])
                if v > a:
                    a = v
        alpha[k] = a                          # 0 marks an all-zero vector (no conversion)
        if a == 0.0:
            a = 1.0
        s = 1.0 / (a * red[k])
        if res > 0:
            sr = s / res
            for j in range(n):
                out[k, j] = min(max(np.rint(x[r, j] * sr) * res, -bound), bound)
        else:
            for j in range(n):
                out[k, j] = min(max(x[r, j] * s, -bound), bound)
    return out


def dac(x2: np.ndarray, res: float, bound: float, noise_management: bool = True, red=None, rows=None):
    """Quantised, normalised inputs x̂ (K, n) and α (K,) for rows ``rows`` of x2 (R, n).

    α = max|x| per row with noise management (0 for an all-zero row, which is then
    normalised by 1), else 1.
    """
    x2 = np.ascontiguousarray(x2, dtype=np.float32)
    if rows is None:
        rows = np.arange(x2.shape[0], dtype=np.int64)
    if red is None:
        red = np.ones(rows.size, dtype=np.float64)
    out = np.empty((rows.size, x2.shape[1]), dtype=np.float32)
    alpha = np.empty(rows.size, dtype=np.float64)
    with threads_for(out.size):
        _dac_rows(x2, rows, red, bool(noise_management), float(res), float(bound), alpha, out)
    return out, alpha


# ---------------------------------------------------------------------------------------------
# Output stage: noise, ADC, bound test, rescale, bias — one pass per row
# ---------------------------------------------------------------------------------------------
@njit(parallel=True, fastmath=False, cache=True)
def _adc_rows(z, out, dst, member, rowscale, bias, wstd, out_noise, res, bound, seed, keys, rnd, zx, zr,
              passed):  # pragma: no cover - compiled
    m = z.shape[1]
    has_w = wstd.size > 0
    inv = 1.0 / res if res > 0 else 0.0
    for k in prange(z.shape[0]):
        d = dst[k]
        p = member[k]
        sd = out_noise
        if has_w:
            sd = math.sqrt(out_noise * out_noise + wstd[k] * wstd[k])
        key = _key(seed, keys[k], rnd)
        buf = np.empty(m)
        if sd > 0:
            c = 0
            for i in range(m):
                g, c = _normal(key, c, zx, zr)
                buf[i] = z[k, i] + sd * g
        else:
            for i in range(m):
                buf[i] = z[k, i]
        if res > 0:
            for i in range(m):
                buf[i] = np.rint(buf[i] * inv) * res
        hit = 0
        for i in range(m):
            v = buf[i]
            hit += (v > bound) | (v < -bound)
            v = min(max(v, -bound), bound)
            out[d, i] = v * rowscale[k] + bias[p, i]
        passed[k] = hit == 0
    return passed


def _ir_drop(z, xq, W, ir_drop, g_ratio):
    """aihwkit's steady-state IR-drop approximation, subtracted from z in place (numpy)."""
    n = W.shape[-1]
    cur = np.abs(xq) @ np.abs(W).T                         # Σ_j |W_ij||x̂_j|
    a = cur * (n / g_ratio)
    c = a * (a * (0.05 * a - 0.2) + 0.5)
    pos = 1.0 - np.arange(n, dtype=np.float32) / n
    xw = xq * (1.0 - pos * pos)[None, :]
    z -= (ir_drop * c * (xw @ W.T)).astype(z.dtype)
    return z


def analog_mvm(x: np.ndarray, W: np.ndarray, *, inp_res: float, inp_bound: float, out_res: float,
               out_bound: float, out_noise: float, w_noise: float = 0.0, noise_management: bool = True,
               bound_management: bool = True, max_bm_factor: float = 1000.0, max_bm_res: float = 0.25,
               ir_drop: float = 0.0, ir_drop_g_ratio: float = 1.0 / 0.35 / 5e-6,
               post_scale=None, bias=None, seed: int = 0):
    """IO-managed analog MVM of a population (see module docstring).

    x : (Px, R, n) inputs, Px ∈ {1, P}; W : (P, m, n) tile weights (float32);
    post_scale : (P,) digital output scale per member (default 1); bias : (P, m) (default 0).
    res values are absolute step sizes (0 = no quantisation).
    Returns y (P, R, m) float32 and rounds (P, R) int32 — the MVM rounds each
    vector needed (0 for an all-zero input vector, which is not converted).
    """
    if x.ndim != 3 or W.ndim != 3:
        raise ValueError(f"x and W must be 3-D (Px, R, n), (P, m, n); got {x.shape}, {W.shape}")
    Px, R, n = x.shape
    P, m, n2 = W.shape
    if n2 != n or Px not in (1, P):
        raise ValueError(f"x shape {x.shape} does not match W shape {W.shape}")
    W = np.ascontiguousarray(W, dtype=np.float32)
    xf = np.ascontiguousarray(x, dtype=np.float32).reshape(Px * R, n)
    post = np.ones(P) if post_scale is None else np.asarray(post_scale, dtype=np.float64).reshape(P)
    bias = np.zeros((P, m), np.float32) if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
    seed = np.uint64(int(seed) % 2**64)
    y = np.empty((P * R, m), dtype=np.float32)
    rounds = np.zeros(P * R, dtype=np.int32)

    # round 1: every vector
    red = 1.0
    xq, alpha = dac(xf, inp_res, inp_bound, noise_management)
    nz = alpha > 0                       # aihwkit short cut: an all-zero vector (with abs_max) is not converted
    alpha = np.where(nz, alpha, 1.0)
    z = np.matmul(xq.reshape(Px, R, n), W.transpose(0, 2, 1))          # (P, R, m)
    if z.shape != (P, R, m):
        z = np.broadcast_to(z, (P, R, m)).copy()
    z = z.reshape(P * R, m)
    if ir_drop > 0:
        for p in range(P):
            xp = xq.reshape(Px, R, n)[0 if Px == 1 else p]
            _ir_drop(z[p * R:(p + 1) * R], xp, W[p], ir_drop, ir_drop_g_ratio)
    member = np.repeat(np.arange(P, dtype=np.int64), R)
    rowsrc = np.tile(np.arange(R, dtype=np.int64), P) if Px == 1 else np.arange(P * R, dtype=np.int64)
    a_rows = alpha[rowsrc]
    wstd = _wstd(xq, rowsrc, w_noise)
    rowscale = (a_rows * red * post[member]).astype(np.float64)
    passed = np.empty(P * R, dtype=np.bool_)
    keys = np.arange(P * R, dtype=np.int64)
    with threads_for(z.size):
        _adc_rows(z, y, keys, member, rowscale, bias, wstd, float(out_noise), float(out_res), float(out_bound),
                  seed, keys, 0, _ZX, _ZR, passed)
    nzr = nz[rowsrc]
    rounds[nzr] = 1
    passed |= ~nzr
    if (~nzr).any():
        y[~nzr] = bias[member[~nzr]]

    # iterative bound management: only the vectors that hit the output bound are repeated
    rnd = 0
    while bound_management and not passed.all():
        if red > max_bm_factor or (inp_res > 0 and red > max_bm_res / inp_res):
            break
        red *= 2.0
        rnd += 1
        idx = np.nonzero(~passed)[0]
        src = rowsrc[idx]
        xq_s, a_s = dac(xf, inp_res, inp_bound, noise_management, np.full(idx.size, red), src)
        a_s = np.where(a_s > 0, a_s, 1.0)
        z_s = np.empty((idx.size, m), dtype=np.float32)
        mem = member[idx]
        for p in (np.unique(mem) if P > 1 else (0,)):
            sel = np.nonzero(mem == p)[0] if P > 1 else slice(None)
            zz = np.ascontiguousarray((W[p] @ np.ascontiguousarray(xq_s[sel].T)).T)   # few rows: W not packed
            if ir_drop > 0:
                _ir_drop(zz, xq_s[sel], W[p], ir_drop, ir_drop_g_ratio)
            z_s[sel] = zz
        wstd_s = _wstd(xq_s, np.arange(idx.size), w_noise)
        rs = (a_s * red * post[mem]).astype(np.float64)
        ok = np.empty(idx.size, dtype=np.bool_)
        with threads_for(z_s.size):
            _adc_rows(z_s, y, idx.astype(np.int64), mem, rs, bias, wstd_s, float(out_noise), float(out_res),
                      float(out_bound), seed, idx.astype(np.int64), rnd, _ZX, _ZR, ok)
        rounds[idx] += 1
        passed[idx] = ok
    return y.reshape(P, R, m), rounds.reshape(P, R)


def _wstd(xq, rows, w_noise):
    if w_noise <= 0:
        return np.empty(0, dtype=np.float64)
    nrm = np.sqrt((xq.astype(np.float64) ** 2).sum(axis=1))
    return (w_noise * nrm)[rows]


def mvm_counts(rounds: np.ndarray, m: int, n: int):
    """(dac, adc, macs) conversions and analog MACs of an ``analog_mvm`` call."""
    r = int(rounds.sum())
    return r * n, r * m, r * m * n


# ---------------------------------------------------------------------------------------------
# Pulsed updates
# ---------------------------------------------------------------------------------------------
@njit(parallel=True, fastmath=False, cache=True)
def _pulsed(w, delta, s_up, s_dn, g_up, g_dn, b_min, b_max, dw_nom, c2c, mult, stoch, max_pulses, seed,
            pulses):  # pragma: no cover - compiled
    f = w.reshape(-1)
    d = delta.reshape(-1)
    su = s_up.reshape(-1)
    sd = s_dn.reshape(-1)
    gu = g_up.reshape(-1)
    gd = g_dn.reshape(-1)
    lo = b_min.reshape(-1)
    hi = b_max.reshape(-1)
    cnt = pulses.reshape(-1)
    for e in prange(f.size):
        key = _key(seed, e, 7)
        k = 0
        v = abs(d[e]) / dw_nom
        if stoch:
            npl = int(math.floor(v + _uniform(key, k) - _INV53))
            k += 1
        else:
            npl = int(np.rint(v))
        if max_pulses >= 0 and npl > max_pulses:
            npl = max_pulses
        cnt[e] = npl
        up = d[e] > 0
        x = f[e]
        for _ in range(npl):
            xi = 0.0
            if c2c > 0:
                rad = math.sqrt(-2.0 * math.log(_uniform(key, k)))
                xi = rad * math.cos(_TWO_PI * _uniform(key, k + 1))
                k += 2
            if up:
                if mult:
                    x += (gu[e] * x + su[e]) * (1.0 + c2c * xi)
                else:
                    x += gu[e] * x + su[e] * (1.0 + c2c * xi)
            else:
                if mult:
                    x -= (gd[e] * x + sd[e]) * (1.0 + c2c * xi)
                else:
                    x -= gd[e] * x + sd[e] * (1.0 + c2c * xi)
            if x > hi[e]:
                x = hi[e]
            elif x < lo[e]:
                x = lo[e]
        f[e] = x
    return pulses


def pulsed_update(w, delta, scale_up, scale_down, slope_up, slope_down, w_min, w_max, dw_min: float,
                  c2c: float, mult_noise: bool, stochastic: bool, max_pulses: int, seed: int):
    """Apply ⌊|Δ|/dw_min⌉ pulses per device in place on w (float64); returns pulses per device (int64)."""
    w = np.ascontiguousarray(w, dtype=np.float64)
    arrs = [np.ascontiguousarray(np.broadcast_to(a, w.shape), dtype=np.float64)
            for a in (delta, scale_up, scale_down, slope_up, slope_down, w_min, w_max)]
    pulses = np.zeros(w.shape, dtype=np.int64)
    with threads_for(w.size):
        _pulsed(w, *arrs, float(dw_min), float(c2c), bool(mult_noise), bool(stochastic), int(max_pulses),
                np.uint64(int(seed) % 2**64), pulses)
    return w, pulses
