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

import os as _os

# OpenBLAS's worker threads spin-wait for ~2^28 cycles after every GEMM; on a small
# machine they then steal the cores of the Numba parallel region that follows (the
# crossbar read measured 16x the GEMM floor on 2 threads, 2.6x with 2^16 cycles; a much
# shorter timeout slows back-to-back GEMMs instead).
# OpenBLAS reads this when numpy first loads it: effective when neurozo is imported
# before numpy (CLI, sweep workers, tests); set it in the shell otherwise.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")


def _numpy_compat_for_numba_cuda() -> None:
    """Give NumPy ≥ 2.5 back ``np.row_stack`` (an alias of ``np.vstack``) for numba-cuda.

    numba-cuda's ``numba/cuda/np/arrayobj.py`` registers ``overload(np.row_stack)`` when
    ``numba.cuda`` is imported; NumPy 2.5 removed the alias, so the import fails and no
    GPU kernel can be compiled (seen on an H200 machine with numpy 2.5.2, numba 0.68.0
    and cupy 14.2.0). The alias is exactly ``np.vstack``, so restoring it changes nothing
    else. Done here because every GPU twin imports ``kernels`` before ``numba.cuda``.
    """
    import numpy as np

    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack


_numpy_compat_for_numba_cuda()


from . import activations, dense  # noqa: F401

__all__ = ["activations", "dense"]
