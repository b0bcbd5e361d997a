"""Consensus-based optimization (CBO) kernels, Numba CPU version.

References: Pinnau, Totzeck, Tse & Martin (2017), "A consensus-based model for
global optimization and its mean-field limit" (isotropic CBO, Heaviside
correction); Carrillo, Jin, Li & Zhu (2021), "A consensus-based global
optimization method for high dimensional machine learning problems"
(anisotropic noise, particle mini-batches); Carrillo, Hoffmann, Stuart & Vaes
(2022), "Consensus-based sampling" (weighted-covariance noise); Bungert,
Roith & Wacker (2022), "Polarized consensus-based dynamics" (kernel-weighted
local consensus); Riedl, Klock, Geldhauser & Fornasier (2023), "Gradient is
all you need?" (consensus hopping). The (runs M, particles N, dims d) layout
follows CBXpy.

Arrays: positions x (M, N, d); for every run m the consensus set is the
particle batch idx[m] (B indices) with objective values E (M, B); the moving
particles are mov[m] (K indices: the batch itself, "partial", or all N).

Consensus (log-sum-exp; a non-finite E gets weight 0)

    w_k = exp(−α_m E_k − max_l(−α_m E_l)) / Σ_l (same),   c_m = Σ_k w_k x_k

Polarized consensus (one per particle i; Gaussian kernel ‖x_i − x_k‖²/(2κ²)
or Laplace ‖x_i − x_k‖/κ, multiplied by α_m when ``kernel_alpha``)

    w_ik ∝ exp(−α_m E_k − a·κ-term(x_i, x_k)),   c_i = Σ_k w_ik x_k

Euler–Maruyama step of the moving particles, drift D = h_i (x_i − c_i) with
h the (optional) Heaviside correction factor

    x_i ← x_i − λ dt D + σ·n_i
    isotropic     n_i = √dt ‖D‖₂ ξ            (ξ ~ N(0, I_d))
    anisotropic   n_i = √dt D ⊙ ξ
    covariance    n_i = √(2 dt) C^{1/2} ξ,   C = Σ_k w_k (x_k − c)(x_k − c)ᵀ
    sampling      n_i = √(2 dt (1 + α_m)) C^{1/2} ξ      (CBS, sampling mode)

C^{1/2} ξ is drawn as Σ_k √w_k (x_k − c) ζ_k with ζ ~ N(0, I_B): a Gaussian
with covariance exactly C, at O(B d) per particle and no matrix square root.
Consensus hopping replaces the step by x_i ← c_i + σ ξ.

Random numbers. Each (seed, step, run, particle) owns a counter-based stream:
a SplitMix64 sequence (Steele, Lea & Flood 2014) keyed by a hash of the four
integers, turned into normals by a 256-layer ziggurat (Marsaglia & Tsang
2000; tables computed below). Every particle's draws depend only on its key,
so results do not depend on the thread count or the order of the loop.

All reductions over particles run sequentially inside one run's (or one
particle's) loop, so the result is bit-identical for any thread count.
Inputs are plain arrays (float64, int64, bool) so a GPU twin
(``kernels/cbo_cuda.py``) can take the same arguments.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit, prange, set_num_threads

__all__ = [
    "NOISES", "SCHEMES", "POLAR_KERNELS",
    "cbo_step", "consensus", "move", "ess_alpha", "effective_sample_size", "add_noise",
    "normals", "uniforms",
]

#: below this many element updates a call runs on one thread. A parallel region costs more than it saves
#: on small work, and on a shared, oversubscribed machine far more: every barrier waits for a descheduled
#: thread (measured here with two other busy processes on 2 cores: the 100 × 40 × 20 step took 9 ms on two
#: threads against 0.6 ms on one). Results do not depend on it; set it to 0 to always use every thread.
PARALLEL_MIN_WORK = 1 << 17

NOISES = {"isotropic": 0, "anisotropic": 1, "covariance": 2, "sampling": 3}
SCHEMES = {"cbo": 0, "hopping": 1}
POLAR_KERNELS = {"none": 0, "gaussian": 1, "laplace": 2}

# ---------------------------------------------------------------------------
# counter-based random numbers: SplitMix64 + ziggurat
# ---------------------------------------------------------------------------

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_K_STEP = np.uint64(0xD1B54A32D192ED03)
_K_RUN = np.uint64(0xA0761D6478BD642F)
_K_PART = np.uint64(0xE7037ED1A0B428DB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S8 = np.uint64(8)
_S11 = np.uint64(11)
_S12 = np.uint64(12)
_ONE = np.uint64(1)
_MASK8 = np.uint64(0xFF)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


def _ziggurat_tables(n: int = 256, r: float = 3.6541528853610088, v: float = 0.00492867323399):
    """Layers of equal area v under f(x) = exp(−x²/2), x ≥ 0 (Marsaglia & Tsang 2000).

    xs[0] = r, xs[i] = f⁻¹(f(xs[i−1]) + v / xs[i−1]), xs[n−1] = 0. Layer 0 is the
    base strip [0, r] × [0, f(r)] plus the tail (width v / f(r)); layer i ≥ 1 is
    [0, xs[i−1]] × [f(xs[i−1]), f(xs[i])]. For a 52-bit integer j the candidate
    is x = j·w[i]; it is accepted outright when j < k[i].
    """
    f = lambda x: math.exp(-0.5 * x * x)  # noqa: E731
    xs = np.empty(n)
    xs[0] = r
    for i in range(1, n - 1):
        y = f(xs[i - 1]) + v / xs[i - 1]
        xs[i] = math.sqrt(-2.0 * math.log(y))
    xs[n - 1] = 0.0
    width = np.empty(n)
    width[0] = v / f(r)
    width[1:] = xs[:-1]
    two52 = float(2 ** 52)
    w = width / two52
    k = np.empty(n, dtype=np.uint64)
    k[0] = np.uint64(int(r / width[0] * two52))
    for i in range(1, n):
        k[i] = np.uint64(int(xs[i] / width[i] * two52))
    fx = np.exp(-0.5 * xs * xs)
    return w, k, fx


_ZW, _ZK, _ZF = _ziggurat_tables()
_ZR = 3.6541528853610088


@njit(inline="always")
def _mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always")
def _stream_key(seed, step, run, particle):
    """Hash of (seed, step, run, particle) → the starting state of one stream."""
    k = _mix64(np.uint64(seed) ^ _mix64(np.uint64(step) * _K_STEP + _GAMMA))
    return _mix64(k ^ (np.uint64(run) * _K_RUN + np.uint64(particle) * _K_PART))


@njit(inline="always")
def _next_u64(s):
    s = s + _GAMMA
    return s, _mix64(s)


@njit(inline="always")
def _u01(r):
    """A uint64 → a double in (0, 1) (53 bits, never 0 or 1)."""
    return (np.float64(np.int64(r >> _S11)) + 0.5) * _INV53  # < 2**53: the signed conversion is exact


@njit(inline="always")
def _normal(s):
    """One standard normal from stream state s; returns (new state, value)."""
    while True:
        s, r = _next_u64(s)
        i = np.intp(r & _MASK8)
        neg = ((r >> _S8) & _ONE) == _ONE
        j = r >> _S12
        x = np.float64(np.int64(j)) * _ZW[i]  # j < 2**52: the signed conversion is exact (and one instruction)
        if j < _ZK[i]:
            return s, (-x if neg else x)
        if i == 0:  # tail beyond r (Marsaglia 1964)
            while True:
                s, r1 = _next_u64(s)
                s, r2 = _next_u64(s)
                xx = -math.log(_u01(r1)) / _ZR
                yy = -math.log(_u01(r2))
                if yy + yy > xx * xx:
                    break
            x = _ZR + xx
            return s, (-x if neg else x)
        s, r1 = _next_u64(s)
        if _ZF[i - 1] + _u01(r1) * (_ZF[i] - _ZF[i - 1]) < math.exp(-0.5 * x * x):
            return s, (-x if neg else x)


@njit(parallel=True, fastmath=False, cache=True)
def _normals(seed, step, rows, n, out):  # pragma: no cover - compiled
    for t in prange(rows):
        s = _stream_key(seed, step, 0, t)
        for j in range(n):
            s, out[t, j] = _normal(s)
    return out


@njit(parallel=True, fastmath=False, cache=True)
def _uniforms(seed, step, rows, n, out):  # pragma: no cover - compiled
    for t in prange(rows):
        s = _stream_key(seed, step, 0, t)
        for j in range(n):
            s, r = _next_u64(s)
            out[t, j] = _u01(r)
    return out


def normals(seed: int, step: int, rows: int, n: int) -> np.ndarray:
    """(rows, n) standard normals; row t is the stream (seed, step, run 0, particle t)."""
    return _normals(np.uint64(seed), np.int64(step), int(rows), int(n), np.empty((rows, n)))


def uniforms(seed: int, step: int, rows: int, n: int) -> np.ndarray:
    """(rows, n) uniforms in (0, 1) from the same streams as :func:`normals`."""
    return _uniforms(np.uint64(seed), np.int64(step), int(rows), int(n), np.empty((rows, n)))


# ---------------------------------------------------------------------------
# per-run and per-particle pieces (inlined into the parallel drivers)
# ---------------------------------------------------------------------------

@njit(inline="always")
def _consensus_run(x, E, a, idx, m, c, w, best_x, best_e, fmin):
    """Consensus of run m over its batch; best-particle bookkeeping."""
    B = idx.shape[1]
    d = x.shape[2]
    mx = -np.inf
    kbest = -1
    ebest = np.inf
    for k in range(B):
        e = E[m, k]
        if math.isfinite(e):
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
    if kbest < 0:  # no finite objective value: keep the previous consensus
        for k in range(B):
            w[m, 0, k] = 0.0
        return
    tot = 0.0
    for k in range(B):
        e = E[m, k]
        wk = 0.0
        if math.isfinite(e):
            t = -a * e - mx
            if t > -746.0:  # exp underflows to exactly 0 below −745.13: skip the call (a large α makes most such)
                wk = math.exp(t)
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
                c[m, 0, j] += wk * x[m, i, j]


@njit(inline="always")
def _polar_particle(x, E, a, idx, m, i, ci, c, w, kernel, kfac):
    """Polarized consensus of particle i of run m, written to c[m, ci], weights w[m, ci]."""
    B = idx.shape[1]
    d = x.shape[2]
    mx = -np.inf
    for k in range(B):
        e = E[m, k]
        if math.isfinite(e):
            q = 0.0
            ik = idx[m, k]
            for j in range(d):
                t = x[m, i, j] - x[m, ik, j]
                q += t * t
            if kernel == 2:
                q = math.sqrt(q)
            v = -a * e - kfac * q
            w[m, ci, k] = v
            if v > mx:
                mx = v
        else:
            w[m, ci, k] = -np.inf
    if mx == -np.inf:
        for k in range(B):
            w[m, ci, k] = 0.0
        return
    tot = 0.0
    for k in range(B):
        v = w[m, ci, k] - mx
        wk = math.exp(v) if v > -746.0 else 0.0
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
                c[m, ci, j] += wk * x[m, ik, j]


@njit(inline="always")
def _put(x, m, i, j, xn, clip):
    """Clip (NaN → +clip) and store x[m, i, j] = xn; returns the squared change."""
    if not (xn <= clip):
        xn = clip
    elif xn < -clip:
        xn = -clip
    t = xn - x[m, i, j]
    x[m, i, j] = xn
    return t * t


@njit(inline="always")
def _move_particle(x, c, ci, w, wi, snap, m, i, h, hm, a, lam, dt, sigma, noise, scheme, seed, step, clip, zr,
                   want):
    """One Euler–Maruyama (or hopping) step of particle i of run m; returns ‖Δx‖² (0 unless ``want``).

    The particle's normals are drawn first into the scratch row zr (the stream is sequential), then the
    update runs as a separate loop the compiler can vectorize; each branch below is a loop of its own.
    """
    d = x.shape[2]
    s = _stream_key(seed, step, m, i)
    dsq = 0.0
    if scheme == 1:  # consensus hopping
        for j in range(d):
            s, zr[j] = _normal(s)
        if want:
            for j in range(d):
                dsq += _put(x, m, i, j, c[m, ci, j] + sigma * zr[j], clip)
        else:
            for j in range(d):
                _put(x, m, i, j, c[m, ci, j] + sigma * zr[j], clip)
        return dsq
    hi = h[m, i] if hm else 1.0
    sdt = math.sqrt(dt)
    if noise <= 1:
        scale = sigma * sdt
        if noise == 0:
            q = 0.0
            for j in range(d):
                t = hi * (x[m, i, j] - c[m, ci, j])
                q += t * t
            scale = scale * math.sqrt(q)
        for j in range(d):
            s, zr[j] = _normal(s)
        if noise == 1:
            if want:
                for j in range(d):
                    dj = hi * (x[m, i, j] - c[m, ci, j])
                    dsq += _put(x, m, i, j, x[m, i, j] - lam * dt * dj + scale * dj * zr[j], clip)
            else:
                for j in range(d):
                    dj = hi * (x[m, i, j] - c[m, ci, j])
                    _put(x, m, i, j, x[m, i, j] - lam * dt * dj + scale * dj * zr[j], clip)
        else:
            if want:
                for j in range(d):
                    dj = hi * (x[m, i, j] - c[m, ci, j])
                    dsq += _put(x, m, i, j, x[m, i, j] - lam * dt * dj + scale * zr[j], clip)
            else:
                for j in range(d):
                    dj = hi * (x[m, i, j] - c[m, ci, j])
                    _put(x, m, i, j, x[m, i, j] - lam * dt * dj + scale * zr[j], clip)
        return dsq
    # covariance / sampling noise: Σ_k √w_k (x_k − c) ζ_k, accumulated in zr
    B = w.shape[2]
    fac = sigma * math.sqrt(2.0 * dt * ((1.0 + a) if noise == 3 else 1.0))
    for j in range(d):
        zr[j] = 0.0
    for k in range(B):
        s, z = _normal(s)
        wk = w[m, wi, k]
        if wk != 0.0:
            g = math.sqrt(wk) * z
            for j in range(d):
                zr[j] += g * (snap[m, k, j] - c[m, ci, j])
    for j in range(d):
        dj = hi * (x[m, i, j] - c[m, ci, j])
        dsq += _put(x, m, i, j, x[m, i, j] - lam * dt * dj + fac * zr[j], clip)
    return dsq if want else 0.0


@njit(inline="always")
def _snapshot_run(x, idx, m, snap):
    for k in range(idx.shape[1]):
        i = idx[m, k]
        for j in range(x.shape[2]):
            snap[m, k, j] = x[m, i, j]


# ---------------------------------------------------------------------------
# parallel drivers
# ---------------------------------------------------------------------------

@njit(parallel=True, fastmath=False, cache=True)
def _step_runs(x, E, alpha, idx, mov, active, h, hm, lam, dt, sigma, noise, scheme, polar, kappa_fac,
               kernel_alpha, seed, step, clip, c, w, snap, best_x, best_e, fmin, dsq, zs, want):  # pragma: no cover
    """Fused step, one run per iteration: consensus, noise and update in one pass (zs: (M, d) scratch)."""
    M = x.shape[0]
    K = mov.shape[1]
    for m in prange(M):
        if not active[m]:
            continue
        a = alpha[m]
        _consensus_run(x, E, a, idx, m, c, w, best_x, best_e, fmin)
        if polar > 0:
            kfac = kappa_fac * (a if kernel_alpha else 1.0)
            for k in range(K):
                i = mov[m, k]
                _polar_particle(x, E, a, idx, m, i, i, c, w, polar, kfac)
        if noise >= 2:
            _snapshot_run(x, idx, m, snap)
        tot = 0.0
        for k in range(K):
            i = mov[m, k]
            ci = i if polar > 0 else 0
            tot += _move_particle(x, c, ci, w, ci, snap, m, i, h, hm, a, lam, dt, sigma, noise, scheme,
                                  seed, step, clip, zs[m], want)
        dsq[m] = tot
    return c


@njit(parallel=True, fastmath=False, cache=True)
def _consensus_runs(x, E, alpha, idx, active, c, w, best_x, best_e, fmin):  # pragma: no cover
    for m in prange(x.shape[0]):
        if active[m]:
            _consensus_run(x, E, alpha[m], idx, m, c, w, best_x, best_e, fmin)
    return c


@njit(parallel=True, fastmath=False, cache=True)
def _polar_pairs(x, E, alpha, idx, mov, active, polar, kappa_fac, kernel_alpha, c, w):  # pragma: no cover
    M = x.shape[0]
    K = mov.shape[1]
    for t in prange(M * K):
        m = t // K
        if active[m]:
            i = mov[m, t % K]
            a = alpha[m]
            _polar_particle(x, E, a, idx, m, i, i, c, w, polar, kappa_fac * (a if kernel_alpha else 1.0))
    return c


@njit(parallel=True, fastmath=False, cache=True)
def _move_pairs(x, c, w, idx, mov, active, h, hm, alpha, lam, dt, sigma, noise, scheme, polar, seed, step,
                clip, snap, dsq, zs, want):  # pragma: no cover
    """Update, one particle per iteration (for few runs of many particles; zs: (M·K, d) scratch)."""
    M = x.shape[0]
    K = mov.shape[1]
    if noise >= 2:
        for m in prange(M):
            if active[m]:
                _snapshot_run(x, idx, m, snap)
    for t in prange(M * K):
        m = t // K
        if not active[m]:
            dsq[m, t % K] = 0.0
            continue
        i = mov[m, t % K]
        ci = i if polar > 0 else 0
        dsq[m, t % K] = _move_particle(x, c, ci, w, ci, snap, m, i, h, hm, alpha[m], lam, dt, sigma, noise,
                                       scheme, seed, step, clip, zs[t], want)
    return x


# ---------------------------------------------------------------------------
# effective sample size and α by bisection
# ---------------------------------------------------------------------------

@njit(inline="always")
def _ess_run(E, m, a):
    mx = -np.inf
    for k in range(E.shape[1]):
        e = E[m, k]
        if math.isfinite(e) and -a * e > mx:
            mx = -a * e
    if mx == -np.inf:
        return 0.0
    s1 = 0.0
    s2 = 0.0
    for k in range(E.shape[1]):
        e = E[m, k]
        if math.isfinite(e):
            wk = math.exp(-a * e - mx)
            s1 += wk
            s2 += wk * wk
    return s1 * s1 / s2


@njit(parallel=True, fastmath=False, cache=True)
def _ess(E, alpha, out):  # pragma: no cover
    for m in prange(E.shape[0]):
        out[m] = _ess_run(E, m, alpha[m])
    return out


@njit(parallel=True, fastmath=False, cache=True)
def _ess_alpha(E, eta, lo, hi, rtol, max_it, active, out):  # pragma: no cover
    """Per run: α ∈ [lo, hi] with ESS(α) = η·n (n finite values), bisection on log α."""
    for m in prange(E.shape[0]):
        if not active[m]:
            continue
        n = 0
        for k in range(E.shape[1]):
            if math.isfinite(E[m, k]):
                n += 1
        target = eta * n
        if n == 0 or _ess_run(E, m, lo) <= target:
            out[m] = lo
            continue
        if _ess_run(E, m, hi) >= target:
            out[m] = hi
            continue
        a_lo = math.log(lo)
        a_hi = math.log(hi)
        mid = 0.5 * (a_lo + a_hi)
        for _ in range(max_it):
            mid = 0.5 * (a_lo + a_hi)
            g = _ess_run(E, m, math.exp(mid)) - target
            if abs(g) <= rtol * n:
                break
            if g > 0:
                a_lo = mid
            else:
                a_hi = mid
        out[m] = math.exp(mid)
    return out


# ---------------------------------------------------------------------------
# independent noise (resampling)
# ---------------------------------------------------------------------------

@njit(parallel=True, fastmath=False, cache=True)
def _add_noise(x, runs, scale, seed, step, clip):  # pragma: no cover
    M, N, d = x.shape
    for t in prange(M * N):
        m = t // N
        if not runs[m]:
            continue
        i = t % N
        s = _stream_key(seed, step, m, i)
        for j in range(d):
            s, z = _normal(s)
            xn = x[m, i, j] + scale * z
            if not (xn <= clip):
                xn = clip
            elif xn < -clip:
                xn = -clip
            x[m, i, j] = xn
    return x


# ---------------------------------------------------------------------------
# Python entry points (shapes and dtypes checked here; no compute before)
# ---------------------------------------------------------------------------

_NO_H = np.ones((1, 1))


class _Threads:
    """Run the enclosed kernel calls on one thread when the work is small (results are identical)."""

    __slots__ = ("small", "old")

    def __init__(self, work: int):
        self.small = work < PARALLEL_MIN_WORK
        self.old = 0

    def __enter__(self):
        if self.small:
            self.old = get_num_threads()
            if self.old > 1:
                set_num_threads(1)
        return self

    def __exit__(self, *exc):
        if self.small and self.old > 1:
            set_num_threads(self.old)
        return False


def _as_idx(a, M, name):
    a = np.ascontiguousarray(a, dtype=np.int64)
    if a.ndim != 2 or a.shape[0] != M:
        raise ValueError(f"{name} shape {a.shape} is invalid: must be ({M}, k)")
    return a


def _prep(x, energy, alpha, idx, mov, active, h):
    if not (isinstance(x, np.ndarray) and x.dtype == np.float64 and x.ndim == 3 and x.flags.c_contiguous):
        raise ValueError("x is invalid: must be a C-contiguous float64 array of shape (M, N, d) (updated in place)")
    M, N = x.shape[:2]
    idx = np.tile(np.arange(N, dtype=np.int64), (M, 1)) if idx is None else _as_idx(idx, M, "idx")
    mov = idx if mov is None else _as_idx(mov, M, "mov")
    E = np.ascontiguousarray(energy, dtype=np.float64)
    if E.shape != idx.shape:
        raise ValueError(f"energy shape {E.shape} is invalid: must match the batch indices {idx.shape}")
    if not (isinstance(alpha, np.ndarray) and alpha.shape == (M,) and alpha.dtype == np.float64
            and alpha.flags.c_contiguous):
        alpha = np.ascontiguousarray(np.broadcast_to(np.asarray(alpha, dtype=np.float64), (M,)))
    active = np.ones(M, dtype=np.bool_) if active is None else np.ascontiguousarray(active, dtype=np.bool_)
    if active.shape != (M,):
        raise ValueError(f"active shape {active.shape} is invalid: must be ({M},)")
    if h is None:
        h, hm = _NO_H, False
    else:
        h = np.ascontiguousarray(h, dtype=np.float64)
        if h.shape != (M, N):
            raise ValueError(f"h shape {h.shape} is invalid: must be ({M}, {N})")
        hm = True
    return x, E, alpha, idx, mov, active, h, hm


class StepOut:
    """What a step leaves behind besides the moved x."""

    __slots__ = ("consensus", "weights", "fmin", "step_sq")

    def __init__(self, consensus, weights, fmin, step_sq):
        self.consensus = consensus   # (M, 1, d), or (M, N, d) for polarized CBO
        self.weights = weights       # (M, 1, B), or (M, N, B)
        self.fmin = fmin             # (M,) smallest finite E of the batch (inf if none)
        self.step_sq = step_sq       # (M,) Σ ‖Δx_i‖² over the moved particles


def cbo_step(x, energy, alpha, *, idx=None, mov=None, active=None, h=None, lam=1.0, dt=0.01, sigma=5.1,
             noise="isotropic", scheme="cbo", polar="none", kappa=1.0, kernel_alpha=True, seed=0, step=0,
             clip=1e8, consensus=None, best_x=None, best_e=None, layout="auto", want_step_sq=True) -> StepOut:
    """One CBO step in place: consensus of each run's batch, then noise and update of the movers.

    x : (M, N, d) float64, C-contiguous, updated in place.
    energy : (M, B) objective values of the particles idx (M, B) (default: all N).
    alpha : scalar or (M,).
    mov : (M, K) particles that move (default: idx).  active : (M,) bool, runs that step.
    h : (M, N) drift factor (Heaviside correction) or None.
    consensus : (M, 1, d) (or (M, N, d) with polar) array reused in place; where a run has no finite
        objective value it keeps what it holds (initialise it, e.g. with the particle mean).
    best_x (M, d), best_e (M,) : best particle so far, updated in place when given.
    layout : "runs" (one run per thread: fused single pass), "particles" (consensus per run, then one
        particle per thread), or "auto" (runs when M ≥ 2·threads). Results are identical.
    want_step_sq : compute Σ‖Δx‖² per run (``step_sq``; zeros otherwise — it costs a sequential sum).
    """
    x, E, alpha, idx, mov, active, h, hm = _prep(x, energy, alpha, idx, mov, active, h)
    M, N, d = x.shape
    B, K = idx.shape[1], mov.shape[1]
    nz = NOISES[noise]
    sc = SCHEMES[scheme]
    pk = POLAR_KERNELS[polar]
    Nc = N if pk else 1
    c = consensus
    if c is None:
        c = np.repeat(x.mean(axis=1, keepdims=True), Nc, axis=1) if pk else x.mean(axis=1, keepdims=True)
    if c.shape != (M, Nc, d) or c.dtype != np.float64 or not c.flags.c_contiguous or not c.flags.writeable:
        raise ValueError(f"consensus is invalid: must be a writeable C-contiguous float64 array of shape {(M, Nc, d)}")
    w = np.zeros((M, Nc, B))
    snap = np.empty((M, B, d)) if nz >= 2 else np.empty((1, 1, 1))
    if best_x is None:
        best_x = np.empty((M, d))
        best_e = np.full(M, np.inf)
    fmin = np.full(M, np.inf)
    kappa_fac = 1.0 / (2.0 * kappa * kappa) if pk == 1 else 1.0 / kappa
    work = M * K * d * (B if nz >= 2 or pk else 1)
    if layout == "auto":
        layout = "runs" if M >= 2 * get_num_threads() else "particles"
    with _Threads(work):
        dsq = _step_dispatch(layout, x, E, alpha, idx, mov, active, h, hm, lam, dt, sigma, nz, sc, pk, kappa_fac,
                             kernel_alpha, seed, step, clip, c, w, snap, best_x, best_e, fmin, bool(want_step_sq))
    return StepOut(c, w, fmin, dsq)


def _step_dispatch(layout, x, E, alpha, idx, mov, active, h, hm, lam, dt, sigma, nz, sc, pk, kappa_fac,
                   kernel_alpha, seed, step, clip, c, w, snap, best_x, best_e, fmin, want):
    M, K, d = x.shape[0], mov.shape[1], x.shape[2]
    if layout == "runs":
        dsq = np.zeros(M)
        _step_runs(x, E, alpha, idx, mov, active, h, hm, float(lam), float(dt), float(sigma), nz, sc, pk,
                   kappa_fac, bool(kernel_alpha), np.uint64(seed), np.int64(step), float(clip), c, w, snap,
                   best_x, best_e, fmin, dsq, np.empty((M, d)), want)
    elif layout == "particles":
        _consensus_runs(x, E, alpha, idx, active, c[:, :1] if pk else c, w[:, :1] if pk else w, best_x, best_e,
                        fmin)
        if pk:
            _polar_pairs(x, E, alpha, idx, mov, active, pk, kappa_fac, bool(kernel_alpha), c, w)
        dk = np.zeros((M, K))
        _move_pairs(x, c, w, idx, mov, active, h, hm, alpha, float(lam), float(dt), float(sigma), nz, sc, pk,
                    np.uint64(seed), np.int64(step), float(clip), snap, dk, np.empty((M * K, d)), want)
        dsq = dk.sum(axis=1)
    else:
        raise ValueError(f"layout={layout!r} is invalid: must be one of ['auto', 'runs', 'particles']")
    return dsq


def consensus(x, energy, alpha, idx=None, polar="none", kappa=1.0, kernel_alpha=True):
    """Consensus point(s) without moving anything: (M, 1, d) (or (M, N, d) polarized) and weights."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"x shape {x.shape} is invalid: must be (M, N, d)")
    x, E, alpha, idx, _, active, _, _ = _prep(x, energy, alpha, idx, None, None, None)
    M, N, d = x.shape
    pk = POLAR_KERNELS[polar]
    c = x.mean(axis=1, keepdims=True)
    w = np.zeros((M, 1, idx.shape[1]))
    with _Threads(M * idx.shape[1] * d):
        _consensus_runs(x, E, alpha, idx, active, c, w, np.empty((M, d)), np.full(M, np.inf), np.empty(M))
    if not pk:
        return c, w
    cp = np.repeat(c, N, axis=1)
    wp = np.zeros((M, N, idx.shape[1]))
    allp = np.tile(np.arange(N, dtype=np.int64), (M, 1))
    kfac = 1.0 / (2.0 * kappa * kappa) if pk == 1 else 1.0 / kappa
    with _Threads(M * N * idx.shape[1] * d):
        _polar_pairs(x, E, alpha, idx, allp, active, pk, kfac, bool(kernel_alpha), cp, wp)
    return cp, wp


def move(x, c, w, *, idx=None, mov=None, active=None, h=None, alpha=1.0, lam=1.0, dt=0.01, sigma=5.1,
         noise="isotropic", scheme="cbo", seed=0, step=0, clip=1e8, want_step_sq=True) -> np.ndarray:
    """The update alone, given consensus c (M, 1 or N, d) and weights w (M, 1 or N, B).

    Returns Σ‖Δx‖² per run (zeros unless ``want_step_sq``)."""
    M, N, d = x.shape
    x, _, alpha, idx, mov, active, h, hm = _prep(x, np.zeros((M, N if idx is None else np.shape(idx)[1])), alpha,
                                                 idx, mov, active, h)
    nz = NOISES[noise]
    polar = 1 if c.shape[1] == N and N > 1 else 0
    snap = np.empty((M, idx.shape[1], d)) if nz >= 2 else np.empty((1, 1, 1))
    dk = np.zeros((M, mov.shape[1]))
    with _Threads(M * mov.shape[1] * d * (idx.shape[1] if nz >= 2 else 1)):
        _move_pairs(x, np.ascontiguousarray(c, dtype=np.float64), np.ascontiguousarray(w, dtype=np.float64), idx,
                    mov, active, h, hm, alpha, float(lam), float(dt), float(sigma), nz, SCHEMES[scheme], polar,
                    np.uint64(seed), np.int64(step), float(clip), snap, dk, np.empty((M * mov.shape[1], d)),
                    bool(want_step_sq))
    return dk.sum(axis=1)


def effective_sample_size(energy, alpha) -> np.ndarray:
    """(Σw)²/Σw² per run for w = exp(−α E) over the finite E (0 if none)."""
    E = np.ascontiguousarray(np.atleast_2d(energy), dtype=np.float64)
    a = np.ascontiguousarray(np.broadcast_to(np.asarray(alpha, dtype=np.float64), (E.shape[0],)))
    with _Threads(E.size):
        return _ess(E, a, np.empty(E.shape[0]))


def ess_alpha(energy, eta=0.5, lo=1e-5, hi=1e5, rtol=1e-3, max_it=100, active=None, out=None) -> np.ndarray:
    """α per run with ESS(α) = η·n by bisection on log α in [lo, hi] (|ESS − ηn| ≤ rtol·n).

    Runs whose target lies outside [ESS(hi), ESS(lo)] get the nearer end.
    """
    E = np.ascontiguousarray(np.atleast_2d(energy), dtype=np.float64)
    M = E.shape[0]
    out = np.full(M, float(lo)) if out is None else out
    active = np.ones(M, dtype=np.bool_) if active is None else np.ascontiguousarray(active, dtype=np.bool_)
    with _Threads(E.size * 40):
        return _ess_alpha(E, float(eta), float(lo), float(hi), float(rtol), int(max_it), active, out)


def add_noise(x, runs, scale, seed, step, clip=1e8) -> np.ndarray:
    """x[m] += scale·ξ for every run m with runs[m] (independent streams per particle); in place."""
    runs = np.ascontiguousarray(runs, dtype=np.bool_)
    with _Threads(x.size):
        return _add_noise(x, runs, float(scale), np.uint64(seed), np.int64(step), float(clip))
