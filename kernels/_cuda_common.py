"""Shared plumbing of the GPU kernel twins (``kernels/<family>_cuda.py``).

Arrays only. Every GPU twin accepts either

* device arrays — CuPy arrays, or anything exposing ``__cuda_array_interface__``
  (Numba CUDA kernels read them zero-copy), and returns device arrays (CuPy when
  CuPy is importable); or
* host numpy arrays — copied to the device, computed there and copied back, so
  that the same call runs under Numba's CUDA simulator
  (``NUMBA_ENABLE_CUDASIM=1``, no GPU) and the parity tests can compare it with
  the CPU twin on the CPU.

CuPy is imported lazily: importing a ``*_cuda`` module needs Numba only, never
CuPy or a GPU. ``method="auto"`` in the twins picks the CuPy path (cuBLAS,
ElementwiseKernels) for CuPy inputs and the Numba CUDA kernel otherwise.
"""

from __future__ import annotations

import math

import numpy as np
from numba import config as _nb_config
from numba import cuda

__all__ = ["SIMULATOR", "cupy_or_none", "is_device", "is_cupy", "to_device", "device_empty", "finish",
           "check_method", "grid1d", "THREADS", "floor_f64", "rint_f64", "mul_f64", "launch"]

#: True when Numba runs CUDA kernels in its Python simulator (set before numba was imported)
SIMULATOR = bool(_nb_config.ENABLE_CUDASIM)
#: threads per block of 1-D launches (small under the simulator, which runs a Python thread per CUDA thread)
THREADS = 32 if SIMULATOR else 256

_cupy = None
_cupy_tried = False


def cupy_or_none():
    """The cupy module, or None when it is not importable (never raises)."""
    global _cupy, _cupy_tried
    if not _cupy_tried:
        _cupy_tried = True
        try:
            import cupy  # noqa: F401

            _cupy = cupy
        except Exception:  # ImportError, or a CUDA install that cannot load
            _cupy = None
    return _cupy


def is_cupy(a) -> bool:
    return type(a).__module__.split(".")[0] == "cupy"


def is_device(a) -> bool:
    """A GPU array (CuPy / CUDA array interface / Numba device array, simulated or real)."""
    if isinstance(a, np.ndarray):
        return False
    return hasattr(a, "__cuda_array_interface__") or hasattr(a, "copy_to_host")


def to_device(a, dtype=None):
    """A C-contiguous Numba device view/copy of ``a`` (host arrays are copied to the device)."""
    if is_cupy(a):
        cp = cupy_or_none()
        a = cp.ascontiguousarray(a, dtype=dtype)
        return cuda.as_cuda_array(a)
    if is_device(a):
        if dtype is not None and np.dtype(a.dtype) != np.dtype(dtype):
            raise ValueError(f"device array has dtype {a.dtype}: expected {np.dtype(dtype)}")
        return a if not hasattr(a, "__cuda_array_interface__") else cuda.as_cuda_array(a)
    return cuda.to_device(np.ascontiguousarray(a, dtype=dtype))


def device_empty(shape, dtype, device_out: bool):
    """Output buffer: a CuPy array when results stay on a real device and CuPy exists,
    else a Numba device array. Returns (buffer for the kernel, object to hand back)."""
    cp = cupy_or_none() if device_out and not SIMULATOR else None
    if cp is not None:
        out = cp.empty(shape, dtype=dtype)
        return cuda.as_cuda_array(out), out
    out = cuda.device_array(shape, dtype=dtype)
    return out, out


def finish(handle, device_out: bool):
    """Hand back a result: the device array, or a host copy when the inputs were host arrays."""
    if device_out:
        return handle
    return handle.copy_to_host()


def check_method(method: str, allowed=("auto", "numba", "cupy")) -> str:
    if method not in allowed:
        raise ValueError(f"method={method!r} is invalid: must be one of {list(allowed)}")
    return method


def grid1d(n: int, threads: int = THREADS):
    """(blocks, threads) covering n elements with one thread each."""
    return max(1, math.ceil(n / threads)), threads


# Device helpers that behave exactly like the CPU twins' numpy/LLVM arithmetic. On a real GPU
# they call libdevice: rint/floor are exact, and ``dmul_rn`` is a multiply the compiler may not
# contract into an FMA with a following add (the CPU rounds the product and the sum separately).
# The simulator runs plain numpy, which already rounds every operation.
if SIMULATOR:
    @cuda.jit(device=True)
    def rint_f64(y):  # pragma: no cover - device code
        return np.rint(y)

    @cuda.jit(device=True)
    def mul_f64(a, b):  # pragma: no cover - device code
        return a * b

    @cuda.jit(device=True)
    def floor_f64(y):  # pragma: no cover - device code
        """⌊y⌋ as float64 (no int64 overflow for huge |y|), like np.floor."""
        return np.floor(y)
else:
    from numba.cuda import libdevice as _libdevice

    @cuda.jit(device=True)
    def rint_f64(y):  # pragma: no cover - device code
        return _libdevice.rint(y)

    @cuda.jit(device=True)
    def mul_f64(a, b):  # pragma: no cover - device code
        return _libdevice.dmul_rn(a, b)

    @cuda.jit(device=True)
    def floor_f64(y):  # pragma: no cover - device code
        """⌊y⌋ as float64 (no int64 overflow for huge |y|), like np.floor."""
        return _libdevice.floor(y)


def launch(kernel, nthreads: int, *args, outs=()):
    """Launch a 1-D ``kernel`` over ``nthreads`` on numpy or CuPy arrays alike.

    CuPy arrays are passed zero-copy; numpy arrays are copied to the device, and those
    whose positions are in ``outs`` are copied back into the same numpy arrays afterwards.
    """
    dev_args = []
    back = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            d = cuda.to_device(np.ascontiguousarray(a))
            dev_args.append(d)
            if i in outs:
                back.append((a, d))
        elif is_cupy(a):
            dev_args.append(cuda.as_cuda_array(a))
        else:
            dev_args.append(a)
    blocks, threads = grid1d(max(int(nthreads), 1))
    kernel[blocks, threads](*dev_args)
    for a, d in back:
        a[...] = d.copy_to_host()
