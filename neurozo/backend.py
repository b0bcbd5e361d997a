"""Backend selection: ``"cpu"`` (Numba, the reference) or ``"cuda"`` (CuPy + GPU kernels).

``resolve(name)`` returns the array module (numpy or cupy) after checking that
the backend is usable; asking for ``"cuda"`` without CuPy or without a GPU
raises one clear ``RuntimeError`` naming what is missing.

``kernels_for(module, *arrays)`` picks a kernel family's GPU twin
(``kernels/<family>_cuda.py``, imported only then) when any array is a CuPy
array, else the CPU module itself: the one dispatch a substrate needs.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_choice

__all__ = ["BACKENDS", "resolve", "cuda_status", "to_numpy", "is_cupy", "kernels_for"]

BACKENDS = ("cpu", "cuda")


def cuda_status() -> str | None:
    """None when a CUDA GPU is usable through CuPy, else a one-line reason."""
    try:
        import cupy  # noqa: F401
    except Exception as e:  # ImportError, or a broken CUDA install
        return f"backend='cuda' needs CuPy (pip install 'neurozo[gpu]'): import cupy failed ({type(e).__name__}: {e})"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return f"backend='cuda' found CuPy but no usable CUDA device ({type(e).__name__}: {e})"
    if n < 1:
        return "backend='cuda' found CuPy but no CUDA GPU (device count 0)"
    return None


def resolve(name: str):
    check_choice("backend", name, BACKENDS)
    if name == "cpu":
        return np
    reason = cuda_status()
    if reason:
        raise RuntimeError(reason)
    import cupy

    return cupy


def to_numpy(a):
    """Host copy of a numpy or cupy array (numpy passes through)."""
    get = getattr(a, "get", None)
    return get() if callable(get) and not isinstance(a, np.ndarray) else np.asarray(a)


def is_cupy(a) -> bool:
    """True for a CuPy array (checked by type, without importing CuPy)."""
    return type(a).__module__.split(".")[0] == "cupy"


def kernels_for(module, *arrays):
    """``module`` (a CPU kernel family, e.g. ``kernels.dense``) or, when any of ``arrays`` lives
    on the GPU, its twin ``kernels.dense_cuda`` — imported lazily, so CPU-only use never loads it."""
    if not any(is_cupy(a) for a in arrays):
        return module
    import importlib

    return importlib.import_module(module.__name__ + "_cuda")
