"""Population-batched dense layer, GPU twin of ``kernels/dense.py``.

The same equations as the CPU version:

    dense_population:  y[p] = x[p or 0] · W[p]ᵀ + b[p]                       (P × B × m)
    dense_lowrank:     y[p] = x[p or 0] · Wᵀ + s·(x[p or 0] · B[p]) · A[p]ᵀ + b[p]

never forming A·Bᵀ for the low-rank form (EGGROLL, Sarkar et al. 2025).

Two implementations, chosen by ``method``:

``cupy``   cuBLAS through CuPy: ``cupy.matmul`` is a strided-batched GEMM
           (one launch for all P members; a shared input x is one (B, n)×(n, P·m)
           GEMM), then the bias add. The fast path for CuPy arrays.
``numba``  a Numba CUDA shared-memory tiled GEMM (TILE×TILE threads per block,
           grid (⌈m/TILE⌉, ⌈B/TILE⌉, P)):

               C[p, i, j] = α · Σ_k X[qx, i, k] · Y'[qy, k, j] + D[qd, i, j] + bias[p, j]

           with Y' = Yᵀ or Y, each operand's leading index q = p or 0 (shared).
           Every output element is summed by one thread over k in ascending order
           (tile by tile), so the result does not depend on the launch shape. It
           runs on CuPy / CUDA-array-interface arrays, on host arrays (copied in and
           out) and under ``NUMBA_ENABLE_CUDASIM=1``, where the parity tests run it.

``auto`` takes ``cupy`` for CuPy inputs, ``numba`` otherwise. Floats match the CPU
twin within rounding (different summation order from BLAS), not bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32, float64

from ._cuda_common import SIMULATOR, check_method, cupy_or_none, device_empty, finish, is_cupy, is_device, to_device
from .dense import _as3d, dense_macs

__all__ = ["dense_population", "dense_lowrank", "dense_macs", "TILE"]

#: GEMM tile edge (threads per block = TILE²); small under the simulator, which runs one Python thread per CUDA thread
TILE = 4 if SIMULATOR else 16


def _make_gemm(nbtype):
    T = TILE
    T1 = TILE + 1  # padded row; a closure constant: numba-cuda 0.2x types `T + 1` inside a kernel as int64, not a literal

    @cuda.jit
    def gemm(X, Y, transY, alpha, D, has_D, bias, has_bias, C):  # pragma: no cover - device code
        sx = cuda.shared.array((T, T1), nbtype)   # X tile: [row i][k]
        sy = cuda.shared.array((T, T1), nbtype)   # Y' tile: [col j][k]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        p = cuda.blockIdx.z
        i = cuda.blockIdx.y * T + ty
        j = cuda.blockIdx.x * T + tx
        jl = cuda.blockIdx.x * T + ty                 # the Y' column this thread loads
        Bn = C.shape[1]
        m = C.shape[2]
        n = X.shape[2]
        qx = 0 if X.shape[0] == 1 else p
        qy = 0 if Y.shape[0] == 1 else p
        acc = nbtype(0)
        for k0 in range(0, n, T):
            k = k0 + tx
            if i < Bn and k < n:
                sx[ty, tx] = X[qx, i, k]
            else:
                sx[ty, tx] = nbtype(0)
            if jl < m and k < n:
                if transY:
                    sy[ty, tx] = Y[qy, jl, k]     # Y (., m, n): Y'[k, j] = Y[j, k]
                else:
                    sy[ty, tx] = Y[qy, k, jl]     # Y (., n, m)
            else:
                sy[ty, tx] = nbtype(0)
            cuda.syncthreads()
            for kk in range(T):
                acc += sx[ty, kk] * sy[tx, kk]
            cuda.syncthreads()
        if i < Bn and j < m:
            v = alpha * acc
            if has_D:
                v = (D[0 if D.shape[0] == 1 else p, i, j]) + v
            if has_bias:
                v = v + bias[p, j]
            C[p, i, j] = v

    return gemm


_GEMM = {}


def _gemm_kernel(dtype):
    dt = np.dtype(dtype)
    if dt not in _GEMM:
        _GEMM[dt] = _make_gemm(float32 if dt == np.float32 else float64)
    return _GEMM[dt]


def _launch_gemm(X, Y, transY, alpha, D, bias, C, P):
    """C ← α·X·Y' (+ D) (+ bias) on device arrays; P members along grid z."""
    Bn, m = C.shape[1], C.shape[2]
    dt = np.dtype(C.dtype)
    dummy = cuda.device_array((1, 1, 1), dtype=dt) if D is None else None
    dummy_b = cuda.device_array((1, 1), dtype=dt) if bias is None else None
    grid = (math.ceil(m / TILE), math.ceil(Bn / TILE), P)
    _gemm_kernel(dt)[grid, (TILE, TILE)](X, Y, bool(transY), dt.type(alpha), dummy if D is None else D,
                                          D is not None, dummy_b if bias is None else bias, bias is not None, C)


def _check_population(x, W, b):
    P, m, n = W.shape
    if x.shape[0] not in (1, P) or x.shape[2] != n:
        raise ValueError(f"x shape {x.shape} does not match W shape {W.shape}: need (1 or {P}, B, {n})")
    if tuple(b.shape) != (P, m):
        raise ValueError(f"b shape {b.shape} does not match W: need ({P}, {m})")


def dense_population(x, W, b, method: str = "auto"):
    """y[p] = x[p]·W[p]ᵀ + b[p] on the GPU; see ``kernels.dense.dense_population``.

    x : (Px, B, n) or (B, n), Px ∈ {1, P}; W : (P, m, n); b : (P, m).
    Returns (P, B, m) in W's dtype: a device array for device inputs, a host
    array for host inputs.
    """
    check_method(method)
    x = _as3d(x)
    _check_population(x, W, b)
    P, m, n = W.shape
    dt = np.dtype(W.dtype)
    use_cupy = method == "cupy" or (method == "auto" and is_cupy(W))
    if use_cupy:
        cp = cupy_or_none()
        if cp is None:
            raise RuntimeError("method='cupy' needs CuPy (pip install cupy-cuda12x) and a CUDA GPU")
        x = cp.asarray(x, dtype=dt)
        W = cp.asarray(W)
        b = cp.asarray(b, dtype=dt)
        if x.shape[0] == 1 and P > 1:
            # one GEMM (B, n) × (n, P·m), then (B, P, m) → (P, B, m)
            y = x[0] @ W.reshape(P * m, n).T
            y = y.reshape(x.shape[1], P, m).transpose(1, 0, 2)
            return cp.ascontiguousarray(y + b[:, None, :])
        y = cp.matmul(x, W.transpose(0, 2, 1))
        y += b[:, None, :]
        return y
    device_out = is_device(W) or is_device(x)
    Xd, Wd, bd = to_device(x, dt), to_device(W, dt), to_device(b, dt)
    C, handle = device_empty((P, x.shape[1], m), dt, device_out)
    _launch_gemm(Xd, Wd, True, 1.0, None, bd, C, P)
    return finish(handle, device_out)


def dense_lowrank(x, W, b, A, B, scale: float, method: str = "auto"):
    """y[p] = x[p]·Wᵀ + scale·(x[p]·B[p])·A[p]ᵀ + b[p] on the GPU, without forming A·Bᵀ.

    x : (Px, Bt, n); W : (m, n); b : (P, m); A : (P, m, r); B : (P, n, r).
    """
    check_method(method)
    x = _as3d(x)
    m, n = W.shape
    P, mA, r = A.shape
    if mA != m or tuple(B.shape) != (P, n, r):
        raise ValueError(f"factor shapes A {A.shape}, B {B.shape} do not match W {W.shape}")
    if x.shape[0] not in (1, P) or x.shape[2] != n:
        raise ValueError(f"x shape {x.shape} does not match W shape {W.shape}")
    if tuple(b.shape) != (P, m):
        raise ValueError(f"b shape {b.shape} does not match W: need ({P}, {m})")
    dt = np.dtype(W.dtype)
    Bt = x.shape[1]
    use_cupy = method == "cupy" or (method == "auto" and is_cupy(W))
    if use_cupy:
        cp = cupy_or_none()
        if cp is None:
            raise RuntimeError("method='cupy' needs CuPy (pip install cupy-cuda12x) and a CUDA GPU")
        x = cp.asarray(x, dtype=dt)
        W = cp.asarray(W)
        A, B, b = cp.asarray(A, dtype=dt), cp.asarray(B, dtype=dt), cp.asarray(b, dtype=dt)
        if x.shape[0] == 1:
            base = x[0] @ W.T                                   # (Bt, m), once
            proj = x[0] @ B.transpose(1, 0, 2).reshape(n, P * r)  # (Bt, P·r), one GEMM
            proj = proj.reshape(Bt, P, r).transpose(1, 0, 2)      # (P, Bt, r)
        else:
            base = cp.matmul(x, W.T)                            # (P, Bt, m)
            proj = cp.matmul(x, B)                              # (P, Bt, r)
        low = cp.matmul(proj, A.transpose(0, 2, 1))             # (P, Bt, m)
        low *= dt.type(scale)
        low += base
        low += b[:, None, :]
        return low
    device_out = any(is_device(a) for a in (x, W, A, B))
    Xd, Wd, bd = to_device(x, dt), to_device(W, dt), to_device(b, dt)
    Ad, Bd = to_device(A, dt), to_device(B, dt)
    Px = x.shape[0]
    # base = x·Wᵀ, once for a shared input
    base = cuda.device_array((Px, Bt, m), dtype=dt)
    _launch_gemm(Xd, Wd.reshape(1, m, n), True, 1.0, None, None, base, Px)
    proj = cuda.device_array((P, Bt, r), dtype=dt)
    _launch_gemm(Xd, Bd, False, 1.0, None, None, proj, P)        # x·B[p]
    C, handle = device_empty((P, Bt, m), dt, device_out)
    _launch_gemm(proj, Ad, True, scale, base, bd, C, P)          # base + s·proj·A[p]ᵀ + b[p]
    return finish(handle, device_out)
