import os

# before numpy loads OpenBLAS (see neurozo/__init__.py)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

import kernels  # noqa: E402,F401  (before numba.cuda: see kernels._numpy_compat_for_numba_cuda)
import matplotlib  # noqa: E402

matplotlib.use("Agg")
os.environ.setdefault("NEUROZO_TEST", "1")


def _numba_cuda_usable() -> bool:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return True
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:
        return False


# The per-family GPU parity files run here only under the CUDA simulator or on a GPU;
# on a CPU-only machine tests/test_gpu_parity.py runs them all in a CUDASIM subprocess
# (so they are not collected, and not reported as skipped, in this process).
collect_ignore_glob = [] if _numba_cuda_usable() else ["test_gpu_parity_*.py"]
