import os

# first: kernels sets OPENBLAS_THREAD_TIMEOUT before numpy loads OpenBLAS, and restores
# np.row_stack before numba.cuda is imported (kernels/__init__.py)
import kernels  # noqa: F401
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
