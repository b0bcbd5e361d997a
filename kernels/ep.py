"""Relaxation step of a layered equilibrium-propagation network, Numba CPU version.

Laborieux & Zenke (2022), "Holomorphic equilibrium propagation computes exact
gradients through finite size oscillations"; Laborieux & Zenke (2024),
"Improving equilibrium propagation without weight symmetry through Jacobian
homeostasis".

The network's state is u (pre-activations), its rates r = φ(u) and its vector
field F(u) = W·r + b − u (+ β·∂ℓ/∂r on the output layer while nudged). The
products W·r are done by a substrate; this file holds the elementwise part of
one explicit-Euler relaxation step of one layer, given the layer's total drive
``drive = W·r + b (+ nudge)``:

    f = drive − u              (the layer's block of F(u))
    u ← u + dt·f               (dt = 1: the fixed-point iteration u ← W·r + b)
    r ← φ(u)
    res[row] += Σ_j |f_j|²     (squared residual ‖F(u)‖², summed over layers by the caller)

Every function takes real or complex arrays: complex states are what
holomorphic EP relaxes with a complex nudge β = |β|·e^{iϑ}. φ must then be
holomorphic (``ep_sigmoid``, ``sigmoid``, ``tanh``; not ``hard_sigmoid``).

    ep_sigmoid(z)   = σ(4z − 2)            (Laborieux & Zenke's default φ)
    sigmoid(z)      = σ(z)
    tanh(z)         = tanh z
    hard_sigmoid(z) = clip(z, 0, 1)        (real states only)

Rows (all axes but the last) run in parallel over ``prange`` (serially below
``PARALLEL_MIN`` elements, where a parallel launch costs more than the work);
each row's residual is summed sequentially, so results do not depend on the
thread count.
"""

from __future__ import annotations

import cmath
import math

import numpy as np
from numba import njit, prange

__all__ = ["PHI", "HOLOMORPHIC", "phi", "phi_prime", "relax_update"]

#: activation name → integer code used inside the kernels
PHI = {"ep_sigmoid": 0, "sigmoid": 1, "tanh": 2, "hard_sigmoid": 3}
#: activations that extend to complex states (holomorphic)
HOLOMORPHIC = ("ep_sigmoid", "sigmoid", "tanh")


@njit(fastmath=False, cache=True)
def _sig_real(v):  # pragma: no cover - compiled
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


@njit(fastmath=False, cache=True)
def _sig_complex(v):  # pragma: no cover - compiled
    # split on the real part so that exp never overflows
    if v.real >= 0:
        return 1.0 / (1.0 + cmath.exp(-v))
    e = cmath.exp(v)
    return e / (1.0 + e)


@njit(fastmath=False, cache=True)
def _phi_real(z, code):  # pragma: no cover - compiled
    if code == 0:
        return _sig_real(4.0 * z - 2.0)
    if code == 1:
        return _sig_real(z)
    if code == 2:
        return math.tanh(z)
    return 0.0 if z < 0 else (1.0 if z > 1 else z)


@njit(fastmath=False, cache=True)
def _phi_complex(z, code):  # pragma: no cover - compiled
    if code == 0:
        return _sig_complex(4.0 * z - 2.0)
    if code == 1:
        return _sig_complex(z)
    return cmath.tanh(z)


@njit(fastmath=False, cache=True)
def _dphi_real(z, code):  # pragma: no cover - compiled
    if code == 0:
        s = _sig_real(4.0 * z - 2.0)
        return 4.0 * s * (1.0 - s)
    if code == 1:
        s = _sig_real(z)
        return s * (1.0 - s)
    if code == 2:
        t = math.tanh(z)
        return 1.0 - t * t
    return 1.0 if (z > 0 and z < 1) else 0.0


@njit(fastmath=False, cache=True)
def _row_real(u, drive, r, res, dt, code, i):  # pragma: no cover - compiled
    acc = 0.0
    for j in range(u.shape[1]):
        f = drive[i, j] - u[i, j]
        acc += f * f
        v = u[i, j] + dt * f
        u[i, j] = v
        r[i, j] = _phi_real(v, code)
    res[i] += acc


@njit(fastmath=False, cache=True)
def _row_complex(u, drive, r, res, dt, code, i):  # pragma: no cover - compiled
    acc = 0.0
    for j in range(u.shape[1]):
        f = drive[i, j] - u[i, j]
        acc += f.real * f.real + f.imag * f.imag
        v = u[i, j] + dt * f
        u[i, j] = v
        r[i, j] = _phi_complex(v, code)
    res[i] += acc


@njit(parallel=True, fastmath=False, cache=True)
def _relax_real(u, drive, r, res, dt, code):  # pragma: no cover - compiled
    for i in prange(u.shape[0]):
        _row_real(u, drive, r, res, dt, code, i)


@njit(parallel=True, fastmath=False, cache=True)
def _relax_complex(u, drive, r, res, dt, code):  # pragma: no cover - compiled
    for i in prange(u.shape[0]):
        _row_complex(u, drive, r, res, dt, code, i)


# serial twins for small layers: a parallel launch costs more than the work there, and
# loaded machines make it much worse; row arithmetic is identical, so are the results
@njit(fastmath=False, cache=True)
def _relax_real_serial(u, drive, r, res, dt, code):  # pragma: no cover - compiled
    for i in range(u.shape[0]):
        _row_real(u, drive, r, res, dt, code, i)


@njit(fastmath=False, cache=True)
def _relax_complex_serial(u, drive, r, res, dt, code):  # pragma: no cover - compiled
    for i in range(u.shape[0]):
        _row_complex(u, drive, r, res, dt, code, i)


#: elements below which the serial twins run
PARALLEL_MIN = 1 << 16


@njit(parallel=True, fastmath=False, cache=True)
def _phi_arr_real(z, out, code):  # pragma: no cover - compiled
    for i in prange(z.size):
        out[i] = _phi_real(z[i], code)


@njit(parallel=True, fastmath=False, cache=True)
def _phi_arr_complex(z, out, code):  # pragma: no cover - compiled
    for i in prange(z.size):
        out[i] = _phi_complex(z[i], code)


@njit(parallel=True, fastmath=False, cache=True)
def _dphi_arr(z, out, code):  # pragma: no cover - compiled
    for i in prange(z.size):
        out[i] = _dphi_real(z[i], code)


def _code(name: str, dtype) -> int:
    if name not in PHI:
        raise ValueError(f"activation={name!r} is unknown; allowed: {sorted(PHI)}")
    if np.iscomplexobj(np.empty(0, dtype)) and name not in HOLOMORPHIC:
        raise ValueError(f"activation={name!r} is invalid for complex states: must be one of "
                         f"{list(HOLOMORPHIC)} (holomorphic)")
    return PHI[name]


def phi(name: str, z: np.ndarray) -> np.ndarray:
    """φ(z) elementwise for real (float64) or complex (complex128) z; returns a new array."""
    z = np.asarray(z)
    cplx = np.iscomplexobj(z)
    code = _code(name, z.dtype)
    zc = np.ascontiguousarray(z, dtype=np.complex128 if cplx else np.float64)
    out = np.empty_like(zc)
    (_phi_arr_complex if cplx else _phi_arr_real)(zc.reshape(-1), out.reshape(-1), code)
    return out


def phi_prime(name: str, z: np.ndarray) -> np.ndarray:
    """dφ/dz at real z (float64)."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    out = np.empty_like(z)
    _dphi_arr(z.reshape(-1), out.reshape(-1), _code(name, z.dtype))
    return out


def relax_update(u: np.ndarray, drive: np.ndarray, r: np.ndarray, res: np.ndarray, dt: float,
                 name: str) -> None:
    """One Euler step of one layer, in place: u ← u + dt·(drive − u), r ← φ(u), res += ‖drive − u‖².

    u, drive, r : (..., n) C-contiguous, the same dtype (float64 or complex128);
    res : float64 with shape u.shape[:-1] (one squared residual per row).
    The residual is that of the state *before* the step (‖F(u_t)‖²).
    """
    cplx = np.iscomplexobj(u)
    code = _code(name, u.dtype)
    want = np.complex128 if cplx else np.float64
    for a, nm in ((u, "u"), (drive, "drive"), (r, "r")):
        if a.dtype != want or not a.flags.c_contiguous or a.shape != u.shape:
            raise ValueError(f"{nm} must be a C-contiguous {np.dtype(want).name} array of shape {u.shape}; "
                             f"got {a.dtype} {a.shape}")
    if res.dtype != np.float64 or res.shape != u.shape[:-1] or not res.flags.c_contiguous:
        raise ValueError(f"res must be a C-contiguous float64 array of shape {u.shape[:-1]}; got {res.shape}")
    n = u.shape[-1]
    if u.size >= PARALLEL_MIN:
        fn = _relax_complex if cplx else _relax_real
    else:
        fn = _relax_complex_serial if cplx else _relax_real_serial
    fn(u.reshape(-1, n), drive.reshape(-1, n), r.reshape(-1, n), res.reshape(-1), float(dt), code)
