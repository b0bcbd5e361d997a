"""Consensus-based optimization (CBO) kernels, GPU twin of ``kernels/cbo.py``.

Same references and equations as the CPU twin (Pinnau et al. 2017; Carrillo et
al. 2021, 2022; Bungert et al. 2022; Riedl et al. 2023), arrays (runs M,
particles N, dims d) as in CBXpy:

    w_k = exp(−α E_k − max_l(−α E_l)) / Σ_l (same),   c_m = Σ_k w_k x_k       (non-finite E: w = 0)
    x_i ← x_i − λ dt h_i (x_i − c) + σ n_i,   n_i isotropic √dt‖D‖ξ | anisotropic √dt D⊙ξ |
          covariance √(2dt) Σ_k √w_k (x_k − c) ζ_k | sampling √(2dt(1+α)) (same);  hopping x_i ← c + σξ
    polarized: c_i from weights exp(−α E_k − κ-term(x_i, x_k))

GPU layout ("particles" in the CPU's words): one thread per run computes its
consensus (the sum over the batch in the CPU's order), one thread per (run,
moving particle) draws its noise and moves it; polarized consensus is one
thread per (run, particle). Random numbers: the CPU twin's counter-based
streams — a SplitMix64 sequence keyed by (seed, step, run, particle) and the
same 256-layer ziggurat tables — so every particle draws the CPU's normals.
Products that feed sums are rounded on their own (no FMA contraction), so
under the simulator a step equals the CPU's bit for bit; on a GPU exp/log/sqrt
may differ in the last ulp (compare with a tolerance).

Entry points take numpy arrays (computed on the device or simulator, x updated
in place) or CuPy arrays (kept on the device, x updated in place).
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64, int64, uint64

from ._cuda_common import cupy_or_none, is_cupy, launch, mul_f64
from .cbo import NOISES, POLAR_KERNELS, SCHEMES, StepOut, _ZF, _ZK, _ZR, _ZW

__all__ = ["NOISES", "SCHEMES", "POLAR_KERNELS", "cbo_step", "consensus", "move", "effective_sample_size",
           "ess_alpha", "add_noise", "normals", "uniforms"]

ZW = np.ascontiguousarray(_ZW, dtype=np.float64)
ZK = np.ascontiguousarray(_ZK, dtype=np.uint64)
ZF = np.ascontiguousarray(_ZF, dtype=np.float64)
ZR = float(_ZR)
INV53 = 1.0 / 9007199254740992.0
NEG_INF = -math.inf


# ------------------------------------------------------------------ counter-based normals (device)

@cuda.jit(device=True)
def _mix64(z):  # pragma: no cover - device code
    z = (z ^ (z >> uint64(30))) * uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> uint64(27))) * uint64(0x94D049BB133111EB)
    return z ^ (z >> uint64(31))


@cuda.jit(device=True)
def _stream_key(seed, step, run, particle):  # pragma: no cover - device code
    k = _mix64(uint64(seed) ^ _mix64(uint64(step) * uint64(0xD1B54A32D192ED03) + uint64(0x9E3779B97F4A7C15)))
    return _mix64(k ^ (uint64(run) * uint64(0xA0761D6478BD642F) + uint64(particle) * uint64(0xE7037ED1A0B428DB)))


@cuda.jit(device=True)
def _next_u64(s):  # pragma: no cover - device code
    s = s + uint64(0x9E3779B97F4A7C15)
    return s, _mix64(s)


@cuda.jit(device=True)
def _u01(r):  # pragma: no cover - device code
    return (float64(r >> uint64(11)) + float64(0.5)) * float64(INV53)


@cuda.jit(device=True)
def _normal(s, zw, zk, zf):  # pragma: no cover - device code
    while True:
        s, r = _next_u64(s)
        i = int64(r & uint64(0xFF))
        neg = ((r >> uint64(8)) & uint64(1)) == uint64(1)
        j = r >> uint64(12)
        x = float64(j) * zw[i]
        if j < zk[i]:
            return s, (-x if neg else x)
        if i == 0:
            while True:
                s, r1 = _next_u64(s)
                s, r2 = _next_u64(s)
                xx = -math.log(_u01(r1)) / float64(ZR)
                yy = -math.log(_u01(r2))
                if yy + yy > mul_f64(xx, xx):
                    break
            x = float64(ZR) + xx
            return s, (-x if neg else x)
        s, r1 = _next_u64(s)
        if zf[i - 1] + mul_f64(_u01(r1), zf[i] - zf[i - 1]) < math.exp(float64(-0.5) * x * x):
            return s, (-x if neg else x)


@cuda.jit(device=True)
def _finite(e):  # pragma: no cover - device code
    return not (math.isinf(e) or math.isnan(e))


@cuda.jit
def _k_normals(seed, step, out, zw, zk, zf):  # pragma: no cover - device code
    t = cuda.grid(1)
    if t >= out.shape[0]:
        return
    s = _stream_key(seed, step, 0, t)
    for j in range(out.shape[1]):
        s, z = _normal(s, zw, zk, zf)
        out[t, j] = z


@cuda.jit
def _k_uniforms(seed, step, out):  # pragma: no cover - device code
    t = cuda.grid(1)
    if t >= out.shape[0]:
        return
    s = _stream_key(seed, step, 0, t)
    for j in range(out.shape[1]):
        s, r = _next_u64(s)
        out[t, j] = _u01(r)


# ------------------------------------------------------------------ consensus, polar, move (device)

@cuda.jit
def _k_consensus(x, E, alpha, idx, active, c, w, best_x, best_e, fmin):  # pragma: no cover - device code
    m = cuda.grid(1)
    if m >= x.shape[0] or not active[m]:
        return
    a = alpha[m]
    B = idx.shape[1]
    d = x.shape[2]
    mx = float64(NEG_INF)
    kbest = -1
    ebest = -float64(NEG_INF)
    for k in range(B):
        e = E[m, k]
        if _finite(e):
            v = -a * e
            if v > mx:
                mx = v
            if e < ebest:
                ebest = e
                kbest = k
    fmin[m] = ebest
    if kbest >= 0 and ebest < best_e[m]:
        best_e[m] = ebest
        ib = idx[m, kbest]
        for j in range(d):
            best_x[m, j] = x[m, ib, j]
    if kbest < 0:
        for k in range(B):
            w[m, 0, k] = 0.0
        return
    tot = float64(0.0)
    for k in range(B):
        e = E[m, k]
        wk = math.exp(-a * e - mx) if _finite(e) else float64(0.0)
        w[m, 0, k] = wk
        tot += wk
    for j in range(d):
        c[m, 0, j] = 0.0
    for k in range(B):
        wk = w[m, 0, k] / tot
        w[m, 0, k] = wk
        if wk != 0.0:
            i = idx[m, k]
            for j in range(d):
                c[m, 0, j] += mul_f64(wk, x[m, i, j])


@cuda.jit
def _k_polar(x, E, alpha, idx, mov, active, kernel, kappa_fac, kernel_alpha, c, w):  # pragma: no cover
    t = cuda.grid(1)
    M = x.shape[0]
    K = mov.shape[1]
    if t >= M * K:
        return
    m = t // K
    if not active[m]:
        return
    i = mov[m, t % K]
    ci = i
    a = alpha[m]
    kfac = kappa_fac * (a if kernel_alpha else float64(1.0))
    B = idx.shape[1]
    d = x.shape[2]
    mx = float64(NEG_INF)
    for k in range(B):
        e = E[m, k]
        if _finite(e):
            q = float64(0.0)
            ik = idx[m, k]
            for j in range(d):
                tt = x[m, i, j] - x[m, ik, j]
                q += mul_f64(tt, tt)
            if kernel == 2:
                q = math.sqrt(q)
            v = -a * e - mul_f64(kfac, q)
            w[m, ci, k] = v
            if v > mx:
                mx = v
        else:
            w[m, ci, k] = float64(NEG_INF)
    if mx == float64(NEG_INF):
        for k in range(B):
            w[m, ci, k] = 0.0
        return
    tot = float64(0.0)
    for k in range(B):
        v = w[m, ci, k]
        wk = math.exp(v - mx) if v > float64(NEG_INF) else float64(0.0)
        w[m, ci, k] = wk
        tot += wk
    for j in range(d):
        c[m, ci, j] = 0.0
    for k in range(B):
        wk = w[m, ci, k] / tot
        w[m, ci, k] = wk
        if wk != 0.0:
            ik = idx[m, k]
            for j in range(d):
                c[m, ci, j] += mul_f64(wk, x[m, ik, j])


@cuda.jit
def _k_snapshot(x, idx, active, snap):  # pragma: no cover - device code
    m = cuda.grid(1)
    if m >= x.shape[0] or not active[m]:
        return
    for k in range(idx.shape[1]):
        i = idx[m, k]
        for j in range(x.shape[2]):
            snap[m, k, j] = x[m, i, j]


@cuda.jit(device=True)
def _clip(xn, clip):  # pragma: no cover - device code
    if not (xn <= clip):
        return clip
    if xn < -clip:
        return -clip
    return xn


@cuda.jit
def _k_move(x, c, w, mov, active, h, hm, alpha, lam, dt, sigma, noise, scheme, polar, seed, step, clip, snap,
            nzb, dsq, zw, zk, zf):  # pragma: no cover - device code
    t = cuda.grid(1)
    M = x.shape[0]
    K = mov.shape[1]
    if t >= M * K:
        return
    m = t // K
    if not active[m]:
        dsq[m, t % K] = 0.0
        return
    i = mov[m, t % K]
    ci = i if polar > 0 else 0
    a = alpha[m]
    d = x.shape[2]
    s = _stream_key(seed, step, m, i)
    acc = float64(0.0)
    if scheme == 1:  # consensus hopping
        for j in range(d):
            s, z = _normal(s, zw, zk, zf)
            xn = _clip(c[m, ci, j] + mul_f64(sigma, z), clip)
            tt = xn - x[m, i, j]
            acc += mul_f64(tt, tt)
            x[m, i, j] = xn
        dsq[m, t % K] = acc
        return
    hi = h[m, i] if hm else float64(1.0)
    sdt = math.sqrt(dt)
    ldt = lam * dt
    if noise <= 1:
        scale = sigma * sdt
        if noise == 0:
            q = float64(0.0)
            for j in range(d):
                tt = hi * (x[m, i, j] - c[m, ci, j])
                q += mul_f64(tt, tt)
            scale = scale * math.sqrt(q)
        for j in range(d):
            dj = hi * (x[m, i, j] - c[m, ci, j])
            s, z = _normal(s, zw, zk, zf)
            if noise == 1:
                xn = x[m, i, j] - mul_f64(ldt, dj) + mul_f64(mul_f64(scale, dj), z)
            else:
                xn = x[m, i, j] - mul_f64(ldt, dj) + mul_f64(scale, z)
            xn = _clip(xn, clip)
            tt = xn - x[m, i, j]
            acc += mul_f64(tt, tt)
            x[m, i, j] = xn
        dsq[m, t % K] = acc
        return
    B = w.shape[2]
    fac = sigma * math.sqrt(float64(2.0) * dt * ((float64(1.0) + a) if noise == 3 else float64(1.0)))
    for j in range(d):
        nzb[t, j] = 0.0
    for k in range(B):
        s, z = _normal(s, zw, zk, zf)
        wk = w[m, ci, k]
        if wk != 0.0:
            g = math.sqrt(wk) * z
            for j in range(d):
                nzb[t, j] += mul_f64(g, snap[m, k, j] - c[m, ci, j])
    for j in range(d):
        dj = hi * (x[m, i, j] - c[m, ci, j])
        xn = _clip(x[m, i, j] - mul_f64(ldt, dj) + mul_f64(fac, nzb[t, j]), clip)
        tt = xn - x[m, i, j]
        acc += mul_f64(tt, tt)
        x[m, i, j] = xn
    dsq[m, t % K] = acc


# ------------------------------------------------------------------ ESS, α bisection, resampling noise

@cuda.jit(device=True)
def _ess_run(E, m, a):  # pragma: no cover - device code
    mx = float64(NEG_INF)
    for k in range(E.shape[1]):
        e = E[m, k]
        if _finite(e) and -a * e > mx:
            mx = -a * e
    if mx == float64(NEG_INF):
        return float64(0.0)
    s1 = float64(0.0)
    s2 = float64(0.0)
    for k in range(E.shape[1]):
        e = E[m, k]
        if _finite(e):
            wk = math.exp(-a * e - mx)
            s1 += wk
            s2 += mul_f64(wk, wk)
    return s1 * s1 / s2


@cuda.jit
def _k_ess(E, alpha, out):  # pragma: no cover - device code
    m = cuda.grid(1)
    if m < E.shape[0]:
        out[m] = _ess_run(E, m, alpha[m])


@cuda.jit
def _k_ess_alpha(E, eta, lo, hi, rtol, max_it, active, out):  # pragma: no cover - device code
    m = cuda.grid(1)
    if m >= E.shape[0] or not active[m]:
        return
    n = 0
    for k in range(E.shape[1]):
        if _finite(E[m, k]):
            n += 1
    target = eta * n
    if n == 0 or _ess_run(E, m, lo) <= target:
        out[m] = lo
        return
    if _ess_run(E, m, hi) >= target:
        out[m] = hi
        return
    a_lo = math.log(lo)
    a_hi = math.log(hi)
    mid = float64(0.5) * (a_lo + a_hi)
    for _ in range(max_it):
        mid = float64(0.5) * (a_lo + a_hi)
        g = _ess_run(E, m, math.exp(mid)) - target
        if abs(g) <= rtol * n:
            break
        if g > 0:
            a_lo = mid
        else:
            a_hi = mid
    out[m] = math.exp(mid)


@cuda.jit
def _k_add_noise(x, runs, scale, seed, step, clip, zw, zk, zf):  # pragma: no cover - device code
    M, N, d = x.shape
    t = cuda.grid(1)
    if t >= M * N:
        return
    m = t // N
    if not runs[m]:
        return
    i = t % N
    s = _stream_key(seed, step, m, i)
    for j in range(d):
        s, z = _normal(s, zw, zk, zf)
        x[m, i, j] = _clip(x[m, i, j] + mul_f64(scale, z), clip)


# ------------------------------------------------------------------ Python entry points

def _xp(*arrays):
    return cupy_or_none() if any(is_cupy(a) for a in arrays) else np


def _tables(xp):
    if xp is np:
        return ZW, ZK, ZF
    if not hasattr(_tables, "dev"):
        _tables.dev = (xp.asarray(ZW), xp.asarray(ZK), xp.asarray(ZF))
    return _tables.dev


def _as_idx(xp, a, M, name):
    a = xp.ascontiguousarray(xp.asarray(a), dtype=np.int64)
    if a.ndim != 2 or a.shape[0] != M:
        raise ValueError(f"{name} shape {a.shape} is invalid: must be ({M}, k)")
    return a


def _prep(xp, x, energy, alpha, idx, mov, active, h):
    if not (x.dtype == np.float64 and x.ndim == 3 and x.flags.c_contiguous):
        raise ValueError("x is invalid: must be a C-contiguous float64 array of shape (M, N, d) (updated in place)")
    M, N, d = x.shape
    idx = xp.tile(xp.arange(N, dtype=np.int64), (M, 1)) if idx is None else _as_idx(xp, idx, M, "idx")
    mov = idx if mov is None else _as_idx(xp, mov, M, "mov")
    E = xp.ascontiguousarray(xp.asarray(energy), dtype=np.float64)
    if E.shape != idx.shape:
        raise ValueError(f"energy shape {E.shape} is invalid: must match the batch indices {idx.shape}")
    alpha = xp.ascontiguousarray(xp.broadcast_to(xp.asarray(alpha, dtype=np.float64), (M,)))
    active = (xp.ones(M, dtype=np.bool_) if active is None
              else xp.ascontiguousarray(xp.asarray(active), dtype=np.bool_))
    if active.shape != (M,):
        raise ValueError(f"active shape {active.shape} is invalid: must be ({M},)")
    if h is None:
        h, hm = xp.ones((1, 1)), False
    else:
        h = xp.ascontiguousarray(xp.asarray(h), dtype=np.float64)
        if h.shape != (M, N):
            raise ValueError(f"h shape {h.shape} is invalid: must be ({M}, {N})")
        hm = True
    return E, alpha, idx, mov, active, h, hm


def _check_names(noise, scheme, polar):
    for nm, v, table in (("noise", noise, NOISES), ("scheme", scheme, SCHEMES), ("polar", polar, POLAR_KERNELS)):
        if v not in table:
            raise ValueError(f"{nm}={v!r} is invalid: must be one of {sorted(table)}")
    return NOISES[noise], SCHEMES[scheme], POLAR_KERNELS[polar]


def cbo_step(x, energy, alpha, *, idx=None, mov=None, active=None, h=None, lam=1.0, dt=0.01, sigma=5.1,
             noise="isotropic", scheme="cbo", polar="none", kappa=1.0, kernel_alpha=True, seed=0, step=0,
             clip=1e8, consensus=None, best_x=None, best_e=None) -> StepOut:
    """One CBO step in place on the GPU; arguments and result as ``kernels.cbo.cbo_step``."""
    xp = _xp(x, energy)
    nz, sc, pk = _check_names(noise, scheme, polar)
    E, alpha, idx, mov, active, h, hm = _prep(xp, x, energy, alpha, idx, mov, active, h)
    M, N, d = x.shape
    B, K = idx.shape[1], mov.shape[1]
    Nc = N if pk else 1
    c = consensus
    if c is None:
        c = xp.repeat(x.mean(axis=1, keepdims=True), Nc, axis=1) if pk else x.mean(axis=1, keepdims=True)
        c = xp.ascontiguousarray(c)
    if c.shape != (M, Nc, d) or c.dtype != np.float64 or not c.flags.c_contiguous:
        raise ValueError(f"consensus is invalid: must be a writeable C-contiguous float64 array of shape {(M, Nc, d)}")
    w = xp.zeros((M, Nc, B))
    snap = xp.empty((M, B, d)) if nz >= 2 else xp.empty((1, 1, 1))
    nzb = xp.empty((M * K, d)) if nz >= 2 else xp.empty((1, 1))
    if best_x is None:
        best_x = xp.empty((M, d))
        best_e = xp.full(M, np.inf)
    fmin = xp.full(M, np.inf)
    kappa_fac = 1.0 / (2.0 * kappa * kappa) if pk == 1 else 1.0 / kappa
    zt = _tables(xp)
    if pk:
        c1, w1 = xp.ascontiguousarray(c[:, :1]), xp.ascontiguousarray(w[:, :1])
        launch(_k_consensus, M, x, E, alpha, idx, active, c1, w1, best_x, best_e, fmin, outs=(5, 6, 7, 8, 9))
        c[:, :1], w[:, :1] = c1, w1
        launch(_k_polar, M * K, x, E, alpha, idx, mov, active, pk, float(kappa_fac), bool(kernel_alpha), c, w,
               outs=(9, 10))
    else:
        launch(_k_consensus, M, x, E, alpha, idx, active, c, w, best_x, best_e, fmin, outs=(5, 6, 7, 8, 9))
    if nz >= 2:
        launch(_k_snapshot, M, x, idx, active, snap, outs=(3,))
    dk = xp.zeros((M, K))
    launch(_k_move, M * K, x, c, w, mov, active, h, hm, alpha, float(lam), float(dt), float(sigma), nz, sc, pk,
           np.uint64(seed), np.int64(step), float(clip), snap, nzb, dk, *zt, outs=(0, 19))
    return StepOut(c, w, fmin, dk.sum(axis=1))


def consensus(x, energy, alpha, idx=None, polar="none", kappa=1.0, kernel_alpha=True):
    """Consensus point(s) and weights on the GPU; as ``kernels.cbo.consensus``."""
    xp = _xp(x, energy)
    _, _, pk = _check_names("isotropic", "cbo", polar)
    x = xp.ascontiguousarray(xp.asarray(x), dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"x shape {x.shape} is invalid: must be (M, N, d)")
    E, alpha, idx, _, active, _, _ = _prep(xp, x, energy, alpha, idx, None, None, None)
    M, N, d = x.shape
    c = xp.ascontiguousarray(x.mean(axis=1, keepdims=True))
    w = xp.zeros((M, 1, idx.shape[1]))
    launch(_k_consensus, M, x, E, alpha, idx, active, c, w, xp.empty((M, d)), xp.full(M, np.inf), xp.empty(M),
           outs=(5, 6))
    if not pk:
        return c, w
    cp_ = xp.ascontiguousarray(xp.repeat(c, N, axis=1))
    wp = xp.zeros((M, N, idx.shape[1]))
    allp = xp.tile(xp.arange(N, dtype=np.int64), (M, 1))
    kfac = 1.0 / (2.0 * kappa * kappa) if pk == 1 else 1.0 / kappa
    launch(_k_polar, M * N, x, E, alpha, idx, allp, active, pk, float(kfac), bool(kernel_alpha), cp_, wp,
           outs=(9, 10))
    return cp_, wp


def move(x, c, w, *, idx=None, mov=None, active=None, h=None, alpha=1.0, lam=1.0, dt=0.01, sigma=5.1,
         noise="isotropic", scheme="cbo", seed=0, step=0, clip=1e8):
    """The update alone on the GPU, given consensus c and weights w; as ``kernels.cbo.move``."""
    xp = _xp(x, c)
    nz, sc, _ = _check_names(noise, scheme, "none")
    M, N, d = x.shape
    B = N if idx is None else np.shape(idx)[1]
    _, alpha, idx, mov, active, h, hm = _prep(xp, x, xp.zeros((M, B)), alpha, idx, mov, active, h)
    polar = 1 if c.shape[1] == N and N > 1 else 0
    K = mov.shape[1]
    snap = xp.empty((M, idx.shape[1], d)) if nz >= 2 else xp.empty((1, 1, 1))
    nzb = xp.empty((M * K, d)) if nz >= 2 else xp.empty((1, 1))
    if nz >= 2:
        launch(_k_snapshot, M, x, idx, active, snap, outs=(3,))
    dk = xp.zeros((M, K))
    launch(_k_move, M * K, x, xp.ascontiguousarray(xp.asarray(c), dtype=np.float64),
           xp.ascontiguousarray(xp.asarray(w), dtype=np.float64), mov, active, h, hm, alpha, float(lam), float(dt),
           float(sigma), nz, sc, polar, np.uint64(seed), np.int64(step), float(clip), snap, nzb, dk, *_tables(xp),
           outs=(0, 19))
    return dk.sum(axis=1)


def effective_sample_size(energy, alpha):
    """(Σw)²/Σw² per run on the GPU; as ``kernels.cbo.effective_sample_size``."""
    xp = _xp(energy)
    E = xp.ascontiguousarray(xp.atleast_2d(xp.asarray(energy)), dtype=np.float64)
    a = xp.ascontiguousarray(xp.broadcast_to(xp.asarray(alpha, dtype=np.float64), (E.shape[0],)))
    out = xp.empty(E.shape[0])
    launch(_k_ess, E.shape[0], E, a, out, outs=(2,))
    return out


def ess_alpha(energy, eta=0.5, lo=1e-5, hi=1e5, rtol=1e-3, max_it=100, active=None, out=None):
    """α per run with ESS(α) = η·n, bisection on the GPU; as ``kernels.cbo.ess_alpha``."""
    xp = _xp(energy)
    E = xp.ascontiguousarray(xp.atleast_2d(xp.asarray(energy)), dtype=np.float64)
    M = E.shape[0]
    out = xp.full(M, float(lo)) if out is None else out
    active = xp.ones(M, dtype=np.bool_) if active is None else xp.ascontiguousarray(xp.asarray(active), dtype=np.bool_)
    launch(_k_ess_alpha, M, E, float(eta), float(lo), float(hi), float(rtol), int(max_it), active, out, outs=(7,))
    return out


def add_noise(x, runs, scale, seed, step, clip=1e8):
    """x[m] += scale·ξ for the runs marked, on the GPU, in place; as ``kernels.cbo.add_noise``."""
    xp = _xp(x)
    runs = xp.ascontiguousarray(xp.asarray(runs), dtype=np.bool_)
    M, N, d = x.shape
    launch(_k_add_noise, M * N, x, runs, float(scale), np.uint64(seed), np.int64(step), float(clip), *_tables(xp),
           outs=(0,))
    return x


def normals(seed: int, step: int, rows: int, n: int, device: bool = False):
    """(rows, n) standard normals of the CPU twin's streams (seed, step, run 0, particle t)."""
    xp = cupy_or_none() if device else np
    out = xp.empty((int(rows), int(n)))
    launch(_k_normals, int(rows), np.uint64(seed), np.int64(step), out, *_tables(xp), outs=(2,))
    return out


def uniforms(seed: int, step: int, rows: int, n: int, device: bool = False):
    """(rows, n) uniforms in (0, 1) of the same streams."""
    xp = cupy_or_none() if device else np
    out = xp.empty((int(rows), int(n)))
    launch(_k_uniforms, int(rows), np.uint64(seed), np.int64(step), out, outs=(2,))
    return out
