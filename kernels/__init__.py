"""Array-only compute kernels for neurozo.

One module per kernel family. Each family has a Numba CPU version
(``njit(parallel=True, fastmath=False, cache=True)``) in ``<family>.py`` and,
where it exists, a GPU twin in ``<family>_cuda.py`` (Numba CUDA kernels on
CuPy arrays, or CuPy Raw/Elementwise kernels). Kernels know arrays only: no
learner, task or configuration words live here.

Families
--------
dense        population-batched dense layer  y[p] = x[p] · W[p]ᵀ + b[p]
activations  elementwise rate nonlinearities (relu, tanh, sigmoid, ...)
"""

from . import activations, dense  # noqa: F401

__all__ = ["activations", "dense"]
