"""Relaxation step of a layered equilibrium-propagation network, GPU twin of ``kernels/ep.py``.

Laborieux & Zenke (2022, holomorphic EP; 2024, Jacobian homeostasis). One
explicit-Euler step of one layer, given its total drive W·r + b (+ nudge):

    f = drive − u,   u ← u + dt·f,   r ← φ(u),   res[row] += Σ_j |f_j|²

for real (float64) or complex (complex128) states, with φ ∈ {ep_sigmoid =
σ(4z − 2), sigmoid, tanh, hard_sigmoid (real only)}, and φ, φ' elementwise.

One CUDA thread per row does the step and sums its residual over j in the CPU
twin's order; φ and φ' run one thread per element. The same formulas as the
CPU (Numba lowers ``cmath`` identically for both targets); products that feed
a sum are rounded separately (no FMA contraction), so under the simulator the
results equal the CPU's bit for bit, and on a GPU they differ only by the last
ulps of exp/tanh.

Device in → device out (CuPy); host in → host out, the arrays updated in place
either way (``relax_update``).
"""

from __future__ import annotations

import cmath
import math

import numpy as np
from numba import cuda, float64

from ._cuda_common import is_cupy, launch, mul_f64
from .ep import HOLOMORPHIC, PHI, _code

__all__ = ["PHI", "HOLOMORPHIC", "phi", "phi_prime", "relax_update"]


@cuda.jit(device=True)
def _sig_real(v):  # pragma: no cover - device code
    if v >= 0:
        return float64(1.0) / (float64(1.0) + math.exp(-v))
    e = math.exp(v)
    return e / (float64(1.0) + e)


@cuda.jit(device=True)
def _sig_complex(v):  # pragma: no cover - device code
    if v.real >= 0:
        return 1.0 / (1.0 + cmath.exp(-v))
    e = cmath.exp(v)
    return e / (1.0 + e)


@cuda.jit(device=True)
def _phi_real(z, code):  # pragma: no cover - device code
    if code == 0:
        return _sig_real(float64(4.0) * z - float64(2.0))
    if code == 1:
        return _sig_real(z)
    if code == 2:
        return math.tanh(z)
    return float64(0.0) if z < 0 else (float64(1.0) if z > 1 else z)


@cuda.jit(device=True)
def _phi_complex(z, code):  # pragma: no cover - device code
    if code == 0:
        return _sig_complex(4.0 * z - 2.0)
    if code == 1:
        return _sig_complex(z)
    return cmath.tanh(z)


@cuda.jit(device=True)
def _dphi_real(z, code):  # pragma: no cover - device code
    if code == 0:
        s = _sig_real(float64(4.0) * z - float64(2.0))
        return float64(4.0) * s * (float64(1.0) - s)
    if code == 1:
        s = _sig_real(z)
        return s * (float64(1.0) - s)
    if code == 2:
        t = math.tanh(z)
        return float64(1.0) - mul_f64(t, t)
    return float64(1.0) if (z > 0 and z < 1) else float64(0.0)


@cuda.jit
def _relax_real(u, drive, r, res, dt, code):  # pragma: no cover - device code
    i = cuda.grid(1)
    if i >= u.shape[0]:
        return
    acc = float64(0.0)
    for j in range(u.shape[1]):
        f = drive[i, j] - u[i, j]
        acc += mul_f64(f, f)
        v = u[i, j] + mul_f64(dt, f)
        u[i, j] = v
        r[i, j] = _phi_real(v, code)
    res[i] += acc


@cuda.jit
def _relax_complex(u, drive, r, res, dt, code):  # pragma: no cover - device code
    i = cuda.grid(1)
    if i >= u.shape[0]:
        return
    acc = float64(0.0)
    for j in range(u.shape[1]):
        f = drive[i, j] - u[i, j]
        acc += mul_f64(f.real, f.real) + mul_f64(f.imag, f.imag)
        v = u[i, j] + complex(mul_f64(dt, f.real), mul_f64(dt, f.imag))
        u[i, j] = v
        r[i, j] = _phi_complex(v, code)
    res[i] += acc


@cuda.jit
def _phi_arr_real(z, out, code):  # pragma: no cover - device code
    i = cuda.grid(1)
    if i < z.size:
        out[i] = _phi_real(z[i], code)


@cuda.jit
def _phi_arr_complex(z, out, code):  # pragma: no cover - device code
    i = cuda.grid(1)
    if i < z.size:
        out[i] = _phi_complex(z[i], code)


@cuda.jit
def _dphi_arr(z, out, code):  # pragma: no cover - device code
    i = cuda.grid(1)
    if i < z.size:
        out[i] = _dphi_real(z[i], code)


def _xp(a):
    if is_cupy(a):
        import cupy

        return cupy
    return np


def phi(name: str, z):
    """φ(z) elementwise on the GPU for real (float64) or complex (complex128) z; a new array."""
    xp = _xp(z)
    z = xp.asarray(z)
    cplx = xp.iscomplexobj(z)
    code = _code(name, z.dtype)
    zc = xp.ascontiguousarray(z, dtype=np.complex128 if cplx else np.float64)
    out = xp.empty_like(zc)
    launch(_phi_arr_complex if cplx else _phi_arr_real, zc.size, zc.reshape(-1), out.reshape(-1), code, outs=(1,))
    return out


def phi_prime(name: str, z):
    """dφ/dz at real z (float64) on the GPU."""
    xp = _xp(z)
    z = xp.ascontiguousarray(xp.asarray(z), dtype=np.float64)
    out = xp.empty_like(z)
    launch(_dphi_arr, z.size, z.reshape(-1), out.reshape(-1), _code(name, z.dtype), outs=(1,))
    return out


def relax_update(u, drive, r, res, dt: float, name: str) -> None:
    """One Euler step of one layer, in place on the GPU; as ``kernels.ep.relax_update``."""
    xp = _xp(u)
    cplx = xp.iscomplexobj(u)
    code = _code(name, u.dtype)
    want = np.complex128 if cplx else np.float64
    for a, nm in ((u, "u"), (drive, "drive"), (r, "r")):
        if a.dtype != want or not a.flags.c_contiguous or a.shape != u.shape:
            raise ValueError(f"{nm} must be a C-contiguous {np.dtype(want).name} array of shape {u.shape}; "
                             f"got {a.dtype} {a.shape}")
    if res.dtype != np.float64 or res.shape != u.shape[:-1] or not res.flags.c_contiguous:
        raise ValueError(f"res must be a C-contiguous float64 array of shape {u.shape[:-1]}; got {res.shape}")
    n = u.shape[-1]
    rows = u.size // n if n else 0
    launch(_relax_complex if cplx else _relax_real, rows, u.reshape(-1, n), drive.reshape(-1, n), r.reshape(-1, n),
           res.reshape(-1), float(dt), code, outs=(0, 2, 3))
