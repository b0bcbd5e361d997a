"""Discrete-time leaky integrate-and-fire (LIF) neurons and event-driven synapses, Numba CPU.

LIF scan (snnTorch ``Leaky`` semantics, Eshraghian et al., "Training spiking
neural networks using lessons from deep learning", Proc. IEEE 2023). For each
neuron, with decay β ∈ [0, 1], threshold θ > 0, input current I[t] and the
spike of the previous step R[t] = S[t−1] (S[−1] = 0, U[−1] = 0):

    reset "subtract":  U[t] = β·U[t−1] + I[t] − R[t]·θ
    reset "zero":      U[t] = β·((1 − R[t])·U[t−1]) + I[t]
    spike:             S[t] = H(U[t] − θ)             (strictly above θ)

The reset is applied one step after the spike (snnTorch's default
``reset_delay=True``); the float operations are done in the order snnTorch
does them, in the dtype of the input, so spike trains agree bit for bit.
Optional refractory period of ``ref`` steps: after a spike the next ``ref``
steps ignore their input (I[t] := 0) and cannot spike; the reset still applies.

The input current may have a time axis of length T, or of length 1 (a
constant current, broadcast over all T steps: one product per layer instead
of T).

Event-driven accumulate (what a spiking chip does, NeuroBench "AC"): for spike
inputs s ∈ {0, 1}^n,

    y[p, r, :] = b[p] + Σ_{j : s[r, j] ≠ 0} s[r, j]·W[p, :, j]

visiting only the active inputs of each row (a CSR list built once per call)
and streaming blocks of Wᵀ that stay in cache. Cost O(nnz·m) instead of the
dense O(R·n·m); each output element is summed by one thread in a fixed order
(ascending j), so the result does not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["LIFState", "lif_scan", "leaky_integrate", "spike_accumulate", "active_lists", "prefer_event", "event_threshold", "is_binary",
           "EVENT_MAX_DENSITY", "ROW_WISE_MAX_EVENTS", "CHUNK", "BLOCK_M"]

#: neurons per parallel work item of the LIF scan
CHUNK = 512
#: output columns per cache block of the event-driven accumulate (BLOCK_M·n·4 bytes of Wᵀ in L2)
BLOCK_M = 64


@njit(parallel=True, fastmath=False, cache=True)
def _lif_scan(z, T, t0, Ttot, beta, thr, one, zero, reset_zero, ref, write_spikes, spikes, record_mem, mem,
              su, sr, src, scnt, sfst):  # pragma: no cover - compiled
    # state (P, N) in z's dtype, read at the start and written back at the end: membrane u,
    # previous spike r, refractory steps left rc, spike count cnt, first-spike step fst (Ttot: none)
    P, Tz, N = z.shape
    nchunk = (N + CHUNK - 1) // CHUNK
    fref = one * ref
    fT = one * Ttot
    for job in prange(P * nchunk):
        p = job // nchunk
        c0 = (job % nchunk) * CHUNK
        c1 = min(c0 + CHUNK, N)
        w = c1 - c0
        u = su[p, c0:c1].copy()
        r = sr[p, c0:c1].copy()                 # spike of the previous step (0/1)
        rc = src[p, c0:c1].copy()               # refractory steps left
        cnt = scnt[p, c0:c1].copy()             # spike counts (exact: T < 2^24)
        fst = sfst[p, c0:c1].copy()             # first-spike step (exact: T < 2^24)
        for t in range(T):
            tf = one * (t0 + t)
            tt = t if Tz > 1 else 0
            zt = z[p, tt, c0:c1]
            if ref == 0 and not reset_zero:
                for i in range(w):
                    ui = beta * u[i] + zt[i]
                    ui = ui - r[i] * thr
                    s = one if ui - thr > zero else zero
                    u[i] = ui
                    r[i] = s
                    cnt[i] += s
                    fst[i] = tf if (s > zero and fst[i] == fT) else fst[i]
                    if write_spikes:
                        spikes[p, t, c0 + i] = s
            elif ref == 0:
                for i in range(w):
                    ui = (one - r[i]) * u[i]
                    ui = beta * ui + zt[i]
                    s = one if ui - thr > zero else zero
                    u[i] = ui
                    r[i] = s
                    cnt[i] += s
                    fst[i] = tf if (s > zero and fst[i] == fT) else fst[i]
                    if write_spikes:
                        spikes[p, t, c0 + i] = s
            else:               # refractory; rc counts in z's dtype (small integers, exact)
                for i in range(w):
                    refr = rc[i] > zero
                    cur = zero if refr else zt[i]
                    if reset_zero:
                        ui = beta * ((one - r[i]) * u[i]) + cur
                    else:
                        ui = beta * u[i] + cur
                        ui = ui - r[i] * thr
                    s = one if (ui - thr > zero and not refr) else zero
                    rc[i] = fref if s > zero else (rc[i] - one if refr else rc[i])
                    u[i] = ui
                    r[i] = s
                    cnt[i] += s
                    fst[i] = tf if (s > zero and fst[i] == fT) else fst[i]
                    if write_spikes:
                        spikes[p, t, c0 + i] = s
            if record_mem:
                for i in range(w):
                    mem[p, t, c0 + i] = u[i]
        for i in range(w):
            su[p, c0 + i] = u[i]
            sr[p, c0 + i] = r[i]
            src[p, c0 + i] = rc[i]
            scnt[p, c0 + i] = cnt[i]
            sfst[p, c0 + i] = fst[i]
    return scnt


class LIFState:
    """The state of P×N LIF neurons between two calls of ``lif_scan`` (time-blocked runs).

    ``u`` membrane, ``r`` spike of the last step, ``rc`` refractory steps left, ``cnt`` spikes so
    far, ``first`` first-spike step (``T_total``: none yet), ``t`` steps done; all (P, N) in the
    currents' dtype (integers exact below 2^24).
    """

    def __init__(self, P: int, N: int, T_total: int, dtype=np.float32):
        dt = np.dtype(dtype)
        self.T_total = int(T_total)
        self.t = 0
        self.u = np.zeros((P, N), dt)
        self.r = np.zeros((P, N), dt)
        self.rc = np.zeros((P, N), dt)
        self.cnt = np.zeros((P, N), dt)
        self.first = np.full((P, N), self.T_total, dt)

    def counts(self) -> np.ndarray:
        return self.cnt.astype(np.int64)

    def first_spike(self) -> np.ndarray:
        return self.first.astype(np.int64)


def lif_scan(z: np.ndarray, T: int, beta: float, threshold: float, reset: str = "subtract",
             refractory: int = 0, write_spikes: bool = True, record_mem: bool = False,
             state: "LIFState | None" = None):
    """Run LIF neurons over T steps.

    Parameters
    ----------
    z : (P, Tz, N) input currents, Tz ∈ {1, T} (1: constant over time); float32 or float64.
    T : number of time steps.
    beta, threshold : decay and threshold (cast to z's dtype, as snnTorch does).
    reset : "subtract" or "zero".
    refractory : steps after a spike that ignore input and cannot spike.
    write_spikes : also return the (P, T, N) spike array (0/1 in z's dtype).
    record_mem : also return the membrane potentials U[t] (P, T, N).
    state : a ``LIFState`` to continue from (time-blocked runs: the T steps here are steps
        ``state.t … state.t + T − 1`` of ``state.T_total``); updated in place. Running the
        blocks one after another gives exactly the spikes of one call over all steps.

    Returns ``(spikes or None, counts (P, N) int64, first (P, N) int64 — T if
    the neuron never spiked —, mem or None)``; with ``state``, counts and first-spike
    steps so far (first = ``state.T_total`` where none yet).
    """
    if z.ndim != 3:
        raise ValueError(f"z has shape {z.shape}: must be (P, Tz, N)")
    if z.dtype not in (np.float32, np.float64):
        z = z.astype(np.float32)
    z = np.ascontiguousarray(z)
    P, Tz, N = z.shape
    if Tz not in (1, T):
        raise ValueError(f"z has {Tz} time steps: must be 1 (constant current) or T={T}")
    if not 1 <= int(T) < 2**24:
        raise ValueError(f"T={T} must be in [1, 2^24 - 1]: counts and first-spike steps are kept exactly "
                         "in the currents' float dtype")
    dt = z.dtype.type
    spikes = np.empty((P, T, N), dtype=z.dtype) if write_spikes else np.empty((1, 1, 1), dtype=z.dtype)
    mem = np.empty((P, T, N), dtype=z.dtype) if record_mem else np.empty((1, 1, 1), dtype=z.dtype)
    st = LIFState(P, N, T, z.dtype) if state is None else state
    if st.u.shape != (P, N) or st.u.dtype != z.dtype:
        raise ValueError(f"state holds {st.u.shape} {st.u.dtype} neurons: need ({P}, {N}) {z.dtype}")
    if st.t + int(T) > st.T_total:
        raise ValueError(f"state is at step {st.t} of {st.T_total}: {T} more steps overrun it")
    _lif_scan(z, int(T), st.t, st.T_total, dt(beta), dt(threshold), dt(1.0), dt(0.0), reset == "zero",
              int(refractory), bool(write_spikes), spikes, bool(record_mem), mem, st.u, st.r, st.rc, st.cnt,
              st.first)
    st.t += int(T)
    counts, first = st.counts(), st.first_spike()
    return (spikes if write_spikes else None), counts, first, (mem if record_mem else None)


@njit(parallel=True, fastmath=False, cache=True)
def _leaky_integrate(z, T, beta, zero, mean, last, mem, record_mem):  # pragma: no cover - compiled
    P, Tz, N = z.shape
    for p in prange(P):
        for i in range(N):
            u = zero
            acc = 0.0
            for t in range(T):
                u = beta * u + z[p, t if Tz > 1 else 0, i]
                acc += u
                if record_mem:
                    mem[p, t, i] = u
            mean[p, i] = acc / T
            last[p, i] = u
    return mean


def leaky_integrate(z: np.ndarray, T: int, beta: float, record_mem: bool = False):
    """Non-spiking leaky integrator U[t] = β·U[t−1] + I[t] (a membrane readout layer).

    Returns ``(mean over t of U (P, N), U[T−1] (P, N), mem (P, T, N) or None)``.
    """
    z = np.ascontiguousarray(z)
    P, Tz, N = z.shape
    mean = np.empty((P, N), dtype=np.float64)
    last = np.empty((P, N), dtype=z.dtype)
    mem = np.empty((P, T, N), dtype=z.dtype) if record_mem else np.empty((1, 1, 1), dtype=z.dtype)
    _leaky_integrate(z, int(T), z.dtype.type(beta), z.dtype.type(0.0), mean, last, mem, bool(record_mem))
    return mean, last, (mem if record_mem else None)


# --------------------------------------------------------------------------- event-driven

#: input density below which the event-driven accumulate beats one GEMM of the same
#: product, by input width n (crossovers measured on the 2-core benchmark machine with
#: experiments/bench/bench_lif_opennm.py --sweep: ~2% at n = 512, ~7% at n = 1024,
#: ~9% at n = 4096 — small layers have cheap GEMMs and relatively costly event lists)
EVENT_DENSITY_BY_WIDTH = ((512, 0.02), (1024, 0.05))
EVENT_MAX_DENSITY = 0.08


def event_threshold(n: int) -> float:
    """Largest input density at which the event-driven path is chosen for width n."""
    for width, d in EVENT_DENSITY_BY_WIDTH:
        if n <= width:
            return min(d, EVENT_MAX_DENSITY)
    return EVENT_MAX_DENSITY


def prefer_event(nnz: int, size: int, n: int) -> bool:
    """True when ``nnz`` active inputs out of ``size`` (rows × n) are sparse enough for events."""
    return size > 0 and nnz < event_threshold(n) * size


@njit(cache=True)
def _is_binary(f):  # pragma: no cover - compiled
    for k in range(f.size):
        v = f[k]
        if v != 0 and v != 1:
            return False
    return True


def is_binary(a: np.ndarray) -> bool:
    """True when every value is 0 or 1 (stops at the first other value)."""
    return bool(_is_binary(np.ascontiguousarray(a).reshape(-1)))


@njit(parallel=True, fastmath=False, cache=True)
def _row_counts(x, cnt):  # pragma: no cover - compiled
    Px, R, n = x.shape
    for k in prange(Px * R):
        q = k // R
        r = k % R
        c = 0
        for j in range(n):
            c += 1 if x[q, r, j] != 0 else 0
        cnt[k + 1] = c
    return cnt


@njit(parallel=True, fastmath=False, cache=True)
def _row_fill(x, ptr, idx, val):  # pragma: no cover - compiled
    Px, R, n = x.shape
    for k in prange(Px * R):
        q = k // R
        r = k % R
        p0 = ptr[k]
        cnt = ptr[k + 1] - p0
        if cnt * 8 < n:                         # sparse row: a rarely taken branch is cheapest
            pos = p0
            for j in range(n):
                v = x[q, r, j]
                if v != 0:
                    idx[pos] = j
                    val[pos] = v
                    pos += 1
        else:                                   # dense row: branch-free compaction into a buffer
            ib = np.empty(n, dtype=np.int32)
            vb = np.empty(n, dtype=x.dtype)
            pos = 0
            for j in range(n):
                v = x[q, r, j]
                ib[pos] = j
                vb[pos] = v
                pos += 1 if v != 0 else 0
            for c in range(pos):
                idx[p0 + c] = ib[c]
                val[p0 + c] = vb[c]
    return idx


def row_pointers(x: np.ndarray) -> np.ndarray:
    """CSR row pointers of the non-zero inputs of x (Px, R, n): ptr[k+1] − ptr[k] active in row k.

    One parallel pass; ``ptr[-1]`` is the number of active inputs (what the event/dense choice
    needs), and ``active_lists(x, ptr)`` reuses it.
    """
    Px, R, n = x.shape
    cnt = np.zeros(Px * R + 1, dtype=np.int64)
    _row_counts(x, cnt)
    return np.cumsum(cnt)


def active_lists(x: np.ndarray, ptr: np.ndarray | None = None):
    """CSR lists of the non-zero inputs of every row of x (Px, R, n): (ptr, idx, val).

    ``ptr`` may pass ``row_pointers(x)`` when it is already known."""
    if ptr is None:
        ptr = row_pointers(x)
    nnz = int(ptr[-1])
    idx = np.empty(nnz, dtype=np.int32)
    val = np.empty(nnz, dtype=x.dtype)
    _row_fill(x, ptr, idx, val)
    return ptr, idx, val


@njit(parallel=True, fastmath=False, cache=True)
def _spike_accumulate(ptr, idx, val, binary, Px, R, W, b, out):  # pragma: no cover - compiled
    P, m, n = W.shape
    nblk = (m + BLOCK_M - 1) // BLOCK_M
    for job in prange(P * nblk):
        p = job // nblk
        m0 = (job % nblk) * BLOCK_M
        m1 = min(m0 + BLOCK_M, m)
        w = m1 - m0
        wt = np.empty((n, w), dtype=W.dtype)       # this block of W[p]ᵀ, kept in cache
        for c in range(w):
            for j in range(n):
                wt[j, c] = W[p, m0 + c, j]
        acc = np.empty(w, dtype=W.dtype)
        q = 0 if Px == 1 else p
        for r in range(R):
            for c in range(w):
                acc[c] = b[p, m0 + c]
            k0 = ptr[q * R + r]
            k1 = ptr[q * R + r + 1]
            if binary:
                for k in range(k0, k1):
                    j = idx[k]
                    for c in range(w):
                        acc[c] += wt[j, c]
            else:
                for k in range(k0, k1):
                    j = idx[k]
                    v = val[k]
                    for c in range(w):
                        acc[c] += v * wt[j, c]
            for c in range(w):
                out[p, r, m0 + c] = acc[c]
    return out


@njit(parallel=True, fastmath=False, cache=True)
def _spike_accumulate_rows(ptr, idx, val, binary, Px, R, Wt, b, out):  # pragma: no cover - compiled
    # very sparse input: one work item per (member, row), the whole output row at once
    P, n, m = Wt.shape
    for k in prange(P * R):
        p = k // R
        r = k % R
        q = 0 if Px == 1 else p
        for c in range(m):
            out[p, r, c] = b[p, c]
        k0 = ptr[q * R + r]
        k1 = ptr[q * R + r + 1]
        for e in range(k0, k1):
            j = idx[e]
            v = val[e]
            if binary:
                for c in range(m):
                    out[p, r, c] += Wt[p, j, c]
            else:
                for c in range(m):
                    out[p, r, c] += v * Wt[p, j, c]
    return out


#: below this many active inputs per row (on average) the accumulate runs row by row
ROW_WISE_MAX_EVENTS = 4.0


def spike_accumulate(x: np.ndarray, W: np.ndarray, b: np.ndarray, lists=None) -> np.ndarray:
    """Event-driven y[p] = b[p] + Σ_active x·W[p]ᵀ for sparse (spike) inputs.

    x : (Px, R, n) with Px ∈ {1, P}; W : (P, m, n); b : (P, m). Values of x other
    than 0/1 (graded spikes) are multiplied in. ``lists`` may pass a precomputed
    ``active_lists(x)``. Returns (P, R, m) in W's dtype.
    """
    if x.ndim != 3 or W.ndim != 3:
        raise ValueError(f"x {x.shape} and W {W.shape} must be 3-D (Px, R, n) and (P, m, n)")
    P, m, n = W.shape
    Px, R, nx = x.shape
    if Px not in (1, P) or nx != n:
        raise ValueError(f"x shape {x.shape} does not match W shape {W.shape}: need (1 or {P}, R, {n})")
    if b.shape != (P, m):
        raise ValueError(f"b shape {b.shape} does not match W: need ({P}, {m})")
    dt = W.dtype
    x = np.ascontiguousarray(x)
    ptr, idx, val = lists if lists is not None else active_lists(x)
    binary = bool(val.size == 0 or (np.all(val == 1)))
    out = np.empty((P, R, m), dtype=dt)
    if idx.size < ROW_WISE_MAX_EVENTS * Px * R:
        # very sparse (e.g. Poisson inputs at dt = 0.1 ms): row-parallel over a transposed copy
        Wt = np.ascontiguousarray(np.transpose(W, (0, 2, 1)))
        _spike_accumulate_rows(ptr, idx, val.astype(dt, copy=False), binary, Px, R, Wt,
                               np.ascontiguousarray(b, dtype=dt), out)
        return out
    _spike_accumulate(ptr, idx, val.astype(dt, copy=False), binary, Px, R, np.ascontiguousarray(W),
                      np.ascontiguousarray(b, dtype=dt), out)
    return out
