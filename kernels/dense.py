"""Population-batched dense layer, Numba CPU version.

For a population of P weight matrices W[p] ∈ R^{m×n} with biases b[p] ∈ R^m
and inputs x ∈ R^{Px×B×n} (Px = P, or Px = 1 for an input shared by every
member) the kernel computes

    y[p, i, :] = x[p or 0, i, :] · W[p]ᵀ + b[p]          (P × B × m)

With a shared input (Px = 1, a population's first layer) all members' products
are one GEMM (B×n)·(n×P·m); otherwise numpy's batched matmul does one threaded
GEMM per member. The dense products are BLAS (as the GPU twin uses cuBLAS);
Numba kernels do the elementwise and structured work around them.

``dense_lowrank`` is the structured twin for low-rank perturbations
(EGGROLL): with a shared base W ∈ R^{m×n}, factors A[p] ∈ R^{m×r},
B[p] ∈ R^{n×r} and scale s,

    y[p] = x[p]·Wᵀ + s·(x[p]·B[p])·A[p]ᵀ + b[p]

never forming A·Bᵀ: cost O(B·(m·n + r·(m + n))) per member instead of
O(m·n) extra memory per member. Because W is shared, x·Wᵀ for all members is
one GEMM over the stacked (Px·B) rows (one per layer, as fast as inference of
a single network); the rank-r terms are added per member in ``prange``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["dense_population", "dense_lowrank", "dense_macs"]


@njit(parallel=True, fastmath=False, cache=True)
def _lowrank_add(base, b, proj, At, scale, out):  # pragma: no cover - compiled
    # out[p] = base[p or 0] + b[p] + scale·proj[p]·A[p]ᵀ with proj = x·B (P, nb, r) and
    # At = Aᵀ (P, r, m); no reductions across threads (thread-count independent)
    P, nb, m = out.shape
    r = At.shape[1]
    shared = base.shape[0] == 1
    for p in prange(P):
        bq = base[0] if shared else base[p]
        for i in range(nb):
            for j in range(m):
                out[p, i, j] = bq[i, j] + b[p, j]
            for s in range(r):
                c = scale * proj[p, i, s]
                for j in range(m):
                    out[p, i, j] += c * At[p, s, j]
    return out


def _as3d(x: np.ndarray) -> np.ndarray:
    if x.ndim == 2:
        return x[None]
    if x.ndim != 3:
        raise ValueError(f"x must have 2 or 3 dimensions (P, B, n); got shape {x.shape}")
    return x


def dense_population(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y[p] = x[p]·W[p]ᵀ + b[p] for every population member.

    Parameters
    ----------
    x : (Px, B, n) or (B, n) array, Px ∈ {1, P}
    W : (P, m, n) array
    b : (P, m) array
    Returns (P, B, m) in the dtype of W.
    """
    x = _as3d(x)
    P, m, n = W.shape
    if x.shape[0] not in (1, P) or x.shape[2] != n:
        raise ValueError(f"x shape {x.shape} does not match W shape {W.shape}: need (1 or {P}, B, {n})")
    if b.shape != (P, m):
        raise ValueError(f"b shape {b.shape} does not match W: need ({P}, {m})")
    dt = W.dtype
    x = np.ascontiguousarray(x, dtype=dt)
    out = np.empty((P, x.shape[1], m), dtype=dt)
    if P == 1:
        # one member (monitoring, large layers): the GEMM straight into the output (no
        # transposing copy) and a vectorised bias add
        np.matmul(x[0], W[0].T, out=out[0])
        out[0] += b[0].astype(dt, copy=False)
        return out
    if x.shape[0] == 1:
        # one input shared by every member (a population's first layer): all P·m output
        # rows are one GEMM (B × n)·(n × P·m), then a copy into (P, B, m) with the bias
        y = x[0] @ np.ascontiguousarray(W).reshape(P * m, n).T          # (B, P·m)
        np.add(y.reshape(x.shape[1], P, m).transpose(1, 0, 2), np.asarray(b, dtype=dt)[:, None, :], out=out)
        return out
    # one input per member: numpy's batched GEMM (a loop of threaded GEMMs). A Numba
    # prange over members with a BLAS call in each nests two thread pools and was
    # 1.2x to 50x slower here depending on OpenBLAS's spin-wait setting.
    np.matmul(x, np.ascontiguousarray(W).transpose(0, 2, 1), out=out)
    out += np.asarray(b, dtype=dt)[:, None, :]
    return out


def dense_lowrank(x, W, b, A, B, scale: float) -> np.ndarray:
    """y[p] = x[p]·Wᵀ + scale·(x[p]·B[p])·A[p]ᵀ + b[p] without forming A·Bᵀ.

    x : (Px, Bt, n); W : (m, n); b : (P, m); A : (P, m, r); B : (P, n, r).
    """
    x = _as3d(x)
    m, n = W.shape
    P, mA, r = A.shape
    if mA != m or B.shape != (P, n, r):
        raise ValueError(f"factor shapes A {A.shape}, B {B.shape} do not match W {W.shape}")
    if x.shape[0] not in (1, P) or x.shape[2] != n:
        raise ValueError(f"x shape {x.shape} does not match W shape {W.shape}")
    dt = W.dtype
    x = np.ascontiguousarray(x, dtype=dt)
    # the shared product x·Wᵀ of every member is one GEMM over all Px·Bt rows
    base = (x.reshape(-1, n) @ W.T).reshape(x.shape[0], x.shape[1], m)
    out = np.empty((P, x.shape[1], m), dtype=dt)
    proj = np.matmul(x, np.asarray(B, dtype=dt))          # (P, Bt, r): x[p or 0]·B[p], batched BLAS
    At = np.ascontiguousarray(A.transpose(0, 2, 1), dtype=dt)
    return _lowrank_add(base, np.ascontiguousarray(b, dtype=dt), np.ascontiguousarray(proj), At,
                        dt.type(scale), out)


def dense_macs(P: int, B: int, m: int, n: int, rank: int = 0) -> int:
    """Multiply-accumulates of one population dense call (rank>0: low-rank extra)."""
    return int(P * B * (m * n + rank * (m + n)))
