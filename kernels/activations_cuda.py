"""Elementwise rate nonlinearities, GPU twin of ``kernels/activations.py``.

    relu(z)         = max(z, 0)          (z < 0 → 0; NaN passes through, as on the CPU)
    tanh(z)         = tanh z
    sigmoid(z)      = 1 / (1 + e^{−z})   (z ≥ 0), e^{z} / (1 + e^{z}) (z < 0): never overflows
    hard_sigmoid(z) = clip(z, 0, 1)
    ep_sigmoid(z)   = σ(4z − 2)          (Laborieux & Zenke 2022)
    identity(z)     = z

``method="numba"``: one Numba CUDA kernel (one thread per element, the activation
chosen by an integer code), runnable under ``NUMBA_ENABLE_CUDASIM=1``.
``method="cupy"``: CuPy ElementwiseKernels with the same branches.
``auto``: CuPy for CuPy arrays, Numba otherwise. Results agree with the CPU
twin to the last few ulps of the device's exp/tanh.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from ._cuda_common import check_method, cupy_or_none, grid1d, is_cupy, is_device
from .activations import ACTIVATIONS

__all__ = ["CODES", "apply", "derivative"]

#: activation name → integer code used inside the Numba kernel
CODES = {"relu": 0, "tanh": 1, "sigmoid": 2, "hard_sigmoid": 3, "ep_sigmoid": 4, "identity": 5}


@cuda.jit(device=True)
def _sig(v):  # pragma: no cover - device code
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


@cuda.jit
def _act_kernel(z, out, code, zero, one):  # pragma: no cover - device code
    i = cuda.grid(1)
    if i >= z.size:
        return
    v = z[i]
    r = v
    if code == 0:
        if v < zero:           # NaN is not < 0 and passes through, as on the CPU
            r = zero
    elif code == 1:
        r = math.tanh(v)
    elif code == 2:
        r = _sig(v)
    elif code == 3:
        if v < zero:
            r = zero
        elif v > one:
            r = one
    elif code == 4:
        r = _sig(float64(4.0) * v - float64(2.0))   # float64, as numba types the CPU twin
    out[i] = r


_CUPY_SRC = {
    "relu": "y = z < (T)0 ? (T)0 : z",
    "tanh": "y = tanh(z)",
    "sigmoid": "if (z >= (T)0) { y = (T)1 / ((T)1 + exp(-z)); } else { T e = exp(z); y = e / ((T)1 + e); }",
    "hard_sigmoid": "y = z < (T)0 ? (T)0 : (z > (T)1 ? (T)1 : z)",
    "ep_sigmoid": ("T v = (T)4 * z - (T)2; "
                   "if (v >= (T)0) { y = (T)1 / ((T)1 + exp(-v)); } else { T e = exp(v); y = e / ((T)1 + e); }"),
}
_CUPY_KERNELS = {}


def _cupy_kernel(name):
    if name not in _CUPY_KERNELS:
        cp = cupy_or_none()
        _CUPY_KERNELS[name] = cp.ElementwiseKernel("T z", "T y", _CUPY_SRC[name], f"neurozo_{name}")
    return _CUPY_KERNELS[name]


def _check_name(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name!r} is unknown; allowed: {sorted(ACTIVATIONS)}")


def apply(name: str, z, inplace: bool = False, method: str = "auto"):
    """Activation ``name`` of ``z`` on the GPU (a copy unless ``inplace`` on a device array).

    Device in → device out; host in → host out (computed on the device or simulator).
    The dtype is kept; the Numba kernel types its arithmetic exactly like the CPU twin
    (float32 exp, float64 division, one rounding on store).
    """
    _check_name(name)
    check_method(method)
    if method == "cupy" or (method == "auto" and is_cupy(z)):
        cp = cupy_or_none()
        if cp is None:
            raise RuntimeError("method='cupy' needs CuPy (pip install cupy-cuda12x) and a CUDA GPU")
        z = cp.asarray(z)
        if name == "identity":
            return z if inplace else z.copy()
        if inplace and z.flags.c_contiguous:
            return _cupy_kernel(name)(z, z)
        return _cupy_kernel(name)(z)
    dt = np.dtype(z.dtype)
    if is_cupy(z):                       # Numba kernel on CuPy memory
        cp = cupy_or_none()
        zc = cp.ascontiguousarray(z)
        res = zc if (inplace or zc is not z) else zc.copy()   # zc is already a copy when z was strided
        if name != "identity":
            src, dst = cuda.as_cuda_array(zc.reshape(-1)), cuda.as_cuda_array(res.reshape(-1))
            blocks, threads = grid1d(zc.size)
            _act_kernel[blocks, threads](src, dst, CODES[name], dt.type(0), dt.type(1))
        return res
    if is_device(z):                     # a Numba device array (real or simulated)
        res = z if inplace else _device_copy(z)
        if name != "identity":
            flat = res.reshape(res.size)
            blocks, threads = grid1d(res.size)
            _act_kernel[blocks, threads](flat, flat, CODES[name], dt.type(0), dt.type(1))
        return res
    out = np.array(z, copy=True, order="C")
    if name == "identity" or out.size == 0:
        return out
    d = cuda.to_device(out.reshape(-1))
    blocks, threads = grid1d(out.size)
    _act_kernel[blocks, threads](d, d, CODES[name], dt.type(0), dt.type(1))
    return d.copy_to_host().reshape(out.shape)


def _device_copy(z):
    out = cuda.device_array(z.shape, dtype=z.dtype)
    out.copy_to_device(z)
    return out


def derivative(name: str, z):
    """dφ/dz at z for a CuPy array (array expressions; host arrays go to the CPU twin)."""
    _check_name(name)
    if not is_cupy(z):
        from .activations import derivative as cpu_derivative

        return cpu_derivative(name, z)
    cp = cupy_or_none()
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "tanh":
        return 1 - cp.tanh(z) ** 2
    if name == "sigmoid":
        s = apply("sigmoid", z)
        return s * (1 - s)
    if name == "ep_sigmoid":
        s = apply("ep_sigmoid", z)
        return 4 * s * (1 - s)
    if name == "hard_sigmoid":
        return ((z > 0) & (z < 1)).astype(z.dtype)
    return cp.ones_like(z)
