"""LIF time loop and event-driven accumulate, GPU twin of ``kernels/lif.py``.

The same equations as the CPU version (snnTorch ``Leaky``, Eshraghian et al.,
Proc. IEEE 2023), per neuron, R[t] = S[t−1]:

    reset "subtract":  U[t] = β·U[t−1] + I[t] − R[t]·θ
    reset "zero":      U[t] = β·((1 − R[t])·U[t−1]) + I[t]
    spike:             S[t] = H(U[t] − θ)
    refractory k:      after a spike the next k steps take I[t] := 0 and cannot spike

    leaky integrator:  U[t] = β·U[t−1] + I[t],  mean_t U[t] summed in float64
    accumulate:        y[p, r, :] = b[p] + Σ_{j active, ascending} s[r, j]·W[p, :, j]

One CUDA thread per (member, neuron) walks the T steps (reads and writes of
z[p, t, :] and spikes[p, t, :] are coalesced over neurons). Every float
operation is the CPU twin's, in the same order and dtype; products use
round-to-nearest multiplies (``libdevice.fmul_rn``/``dmul_rn``) so that the
compiler cannot fuse β·U + I into one FMA, whose single rounding would differ
from the CPU's two. Spike trains, counts, first-spike times and membrane
potentials are therefore bit-identical to the CPU twin.

The accumulate takes the same CSR lists of active inputs (``active_lists``:
count kernel, prefix sum, fill kernel — identical lists), one thread per
(member, row, output) summing in ascending input order: bit-identical too.

Device arrays in → device arrays out; host arrays in → host arrays out (the
simulator path of the parity tests).
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float32, float64

from ._cuda_common import SIMULATOR, cupy_or_none, device_empty, finish, grid1d, is_cupy, is_device, to_device

__all__ = ["lif_scan", "leaky_integrate", "active_lists", "spike_accumulate", "mul_rn"]


def mul_rn(nbtype):
    """Device multiply rounded to nearest, never contracted into an FMA (plain * in the simulator)."""
    if SIMULATOR:
        @cuda.jit(device=True)
        def mul(a, b):  # pragma: no cover - device code
            return a * b
        return mul
    from numba.cuda import libdevice

    fn = libdevice.fmul_rn if nbtype == float32 else libdevice.dmul_rn

    @cuda.jit(device=True)
    def mul(a, b):  # pragma: no cover - device code
        return fn(a, b)
    return mul


def _make_scan(nbtype):
    mul = mul_rn(nbtype)

    @cuda.jit
    def scan(z, T, beta, thr, one, zero, reset_zero, ref, write_spikes, spikes, record_mem, mem,
             counts, first):  # pragma: no cover - device code
        P, Tz, N = z.shape
        k = cuda.grid(1)
        if k >= P * N:
            return
        p = k // N
        i = k % N
        u = zero
        r = zero
        rc = 0
        cnt = 0
        fst = T
        for t in range(T):
            zi = z[p, t if Tz > 1 else 0, i]
            if ref == 0:
                if reset_zero:
                    ui = mul(one - r, u)
                    ui = mul(beta, ui) + zi
                else:
                    ui = mul(beta, u) + zi
                    ui = ui - mul(r, thr)
                s = one if ui - thr > zero else zero
            else:
                refr = rc > 0
                cur = zero if refr else zi
                if reset_zero:
                    ui = mul(beta, mul(one - r, u)) + cur
                else:
                    ui = mul(beta, u) + cur
                    ui = ui - mul(r, thr)
                s = one if (ui - thr > zero and not refr) else zero
                if refr:
                    rc -= 1
                if s > zero:
                    rc = ref
            u = ui
            r = s
            if r > zero:
                cnt += 1
                if fst == T:
                    fst = t
            if write_spikes:
                spikes[p, t, i] = r
            if record_mem:
                mem[p, t, i] = u
        counts[p, i] = cnt
        first[p, i] = fst

    return scan


def _make_leaky(nbtype):
    mul = mul_rn(nbtype)

    @cuda.jit
    def leaky(z, T, beta, zero, mean, last, mem, record_mem):  # pragma: no cover - device code
        P, Tz, N = z.shape
        k = cuda.grid(1)
        if k >= P * N:
            return
        p = k // N
        i = k % N
        u = zero
        acc = float64(0.0)          # typed: the simulator would otherwise keep float32 (NEP 50)
        for t in range(T):
            u = mul(beta, u) + z[p, t if Tz > 1 else 0, i]
            acc += u
            if record_mem:
                mem[p, t, i] = u
        mean[p, i] = acc / T
        last[p, i] = u

    return leaky


def _make_accumulate(nbtype):
    mul = mul_rn(nbtype)

    @cuda.jit
    def accumulate(ptr, idx, val, binary, Px, R, W, b, out):  # pragma: no cover - device code
        P, m, n = W.shape
        k = cuda.grid(1)
        if k >= P * R * m:
            return
        c = k % m
        r = (k // m) % R
        p = k // (m * R)
        q = 0 if Px == 1 else p
        acc = b[p, c]
        k0 = ptr[q * R + r]
        k1 = ptr[q * R + r + 1]
        if binary:
            for kk in range(k0, k1):
                acc += W[p, c, idx[kk]]
        else:
            for kk in range(k0, k1):
                acc += mul(val[kk], W[p, c, idx[kk]])
        out[p, r, c] = acc

    return accumulate


@cuda.jit
def _row_counts(x, cnt):  # pragma: no cover - device code
    Px, R, n = x.shape
    k = cuda.grid(1)
    if k >= Px * R:
        return
    q = k // R
    r = k % R
    c = 0
    for j in range(n):
        if x[q, r, j] != 0:
            c += 1
    cnt[k + 1] = c


@cuda.jit
def _row_fill(x, ptr, idx, val):  # pragma: no cover - device code
    Px, R, n = x.shape
    k = cuda.grid(1)
    if k >= Px * R:
        return
    q = k // R
    r = k % R
    pos = ptr[k]
    for j in range(n):
        v = x[q, r, j]
        if v != 0:
            idx[pos] = j
            val[pos] = v
            pos += 1


_CACHE = {}


def _kernel(kind, dtype):
    key = (kind, np.dtype(dtype))
    if key not in _CACHE:
        nb = float32 if np.dtype(dtype) == np.float32 else float64
        _CACHE[key] = {"scan": _make_scan, "leaky": _make_leaky, "acc": _make_accumulate}[kind](nb)
    return _CACHE[key]


def _dummy(dtype):
    return cuda.device_array((1, 1, 1), dtype=dtype)


def lif_scan(z, T: int, beta: float, threshold: float, reset: str = "subtract", refractory: int = 0,
             write_spikes: bool = True, record_mem: bool = False):
    """LIF neurons over T steps on the GPU; arguments and returns as ``kernels.lif.lif_scan``."""
    if z.ndim != 3:
        raise ValueError(f"z has shape {z.shape}: must be (P, Tz, N)")
    dt = np.dtype(z.dtype)
    if dt not in (np.float32, np.float64):
        dt = np.dtype(np.float32)
    P, Tz, N = z.shape
    if Tz not in (1, T):
        raise ValueError(f"z has {Tz} time steps: must be 1 (constant current) or T={T}")
    dev = is_device(z)
    zd = to_device(z, dt)
    spikes, sp_h = device_empty((P, T, N), dt, dev) if write_spikes else (_dummy(dt), None)
    mem, mem_h = device_empty((P, T, N), dt, dev) if record_mem else (_dummy(dt), None)
    counts, counts_h = device_empty((P, N), np.int64, dev)
    first, first_h = device_empty((P, N), np.int64, dev)
    blocks, threads = grid1d(P * N)
    c = dt.type
    _kernel("scan", dt)[blocks, threads](zd, int(T), c(beta), c(threshold), c(1.0), c(0.0), reset == "zero",
                                         int(refractory), bool(write_spikes), spikes, bool(record_mem), mem,
                                         counts, first)
    return ((finish(sp_h, dev) if write_spikes else None), finish(counts_h, dev), finish(first_h, dev),
            (finish(mem_h, dev) if record_mem else None))


def leaky_integrate(z, T: int, beta: float, record_mem: bool = False):
    """Non-spiking leaky integrator on the GPU; as ``kernels.lif.leaky_integrate``."""
    dt = np.dtype(z.dtype)
    P, Tz, N = z.shape
    dev = is_device(z)
    zd = to_device(z, dt)
    mean, mean_h = device_empty((P, N), np.float64, dev)
    last, last_h = device_empty((P, N), dt, dev)
    mem, mem_h = device_empty((P, T, N), dt, dev) if record_mem else (_dummy(dt), None)
    blocks, threads = grid1d(P * N)
    _kernel("leaky", dt)[blocks, threads](zd, int(T), dt.type(beta), dt.type(0.0), mean, last, mem, bool(record_mem))
    return finish(mean_h, dev), finish(last_h, dev), (finish(mem_h, dev) if record_mem else None)


def active_lists(x):
    """CSR lists (ptr int64, idx int32, val) of the non-zero inputs of every row of x (Px, R, n).

    Identical to ``kernels.lif.active_lists``; device in → device out.
    """
    Px, R, n = x.shape
    dev = is_device(x)
    xd = to_device(x)
    cnt = cuda.to_device(np.zeros(Px * R + 1, dtype=np.int64))
    blocks, threads = grid1d(Px * R)
    _row_counts[blocks, threads](xd, cnt)
    cp = cupy_or_none() if (dev and not SIMULATOR) else None
    if cp is not None:
        ptr_c = cp.cumsum(cp.asarray(cnt))
        nnz = int(ptr_c[-1])
        ptr = cuda.as_cuda_array(ptr_c)
    else:
        ptr_h = np.cumsum(cnt.copy_to_host())
        nnz = int(ptr_h[-1])
        ptr = cuda.to_device(ptr_h)
        ptr_c = ptr
    idx, idx_h = device_empty(max(nnz, 1), np.int32, dev)
    val, val_h = device_empty(max(nnz, 1), np.dtype(x.dtype), dev)
    _row_fill[blocks, threads](xd, ptr, idx, val)
    if dev:
        return ptr_c, idx_h[:nnz], val_h[:nnz]
    return ptr_c.copy_to_host(), idx_h.copy_to_host()[:nnz], val_h.copy_to_host()[:nnz]


def spike_accumulate(x, W, b, lists=None):
    """Event-driven y[p] = b[p] + Σ_active x·W[p]ᵀ on the GPU; as ``kernels.lif.spike_accumulate``."""
    if x.ndim != 3 or W.ndim != 3:
        raise ValueError(f"x {x.shape} and W {W.shape} must be 3-D (Px, R, n) and (P, m, n)")
    P, m, n = W.shape
    Px, R, nx = x.shape
    if Px not in (1, P) or nx != n:
        raise ValueError(f"x shape {x.shape} does not match W shape {W.shape}: need (1 or {P}, R, {n})")
    if tuple(b.shape) != (P, m):
        raise ValueError(f"b shape {b.shape} does not match W: need ({P}, {m})")
    dt = np.dtype(W.dtype)
    dev = is_device(x) or is_device(W)
    ptr, idx, val = lists if lists is not None else active_lists(x)
    if is_cupy(val):
        binary = bool(val.size == 0 or bool((val == 1).all()))
    else:
        vh = val.copy_to_host() if is_device(val) else np.asarray(val)
        binary = bool(vh.size == 0 or np.all(vh == 1))
    vd = to_device(val, dt) if (val.size if hasattr(val, "size") else len(val)) else cuda.to_device(np.zeros(1, dt))
    idd = to_device(idx) if idx.size else cuda.to_device(np.zeros(1, np.int32))
    out, out_h = device_empty((P, R, m), dt, dev)
    blocks, threads = grid1d(P * R * m)
    _kernel("acc", dt)[blocks, threads](to_device(ptr), idd, vd, binary, Px, R, to_device(W, dt), to_device(b, dt), out)
    return finish(out_h, dev)
