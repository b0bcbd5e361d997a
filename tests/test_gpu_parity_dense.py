"""GPU twin of the population dense kernels (kernels/dense_cuda.py) against the CPU twin.

Runs wherever Numba CUDA runs: under NUMBA_ENABLE_CUDASIM=1 (tests/test_gpu_parity.py
launches this file in a subprocess with it set, on the CPU) or on a real GPU; skipped in
a plain CPU process. Sizes are small and deliberately not multiples of the tile edge so
that every edge branch of the tiled GEMM runs.

Tolerance: the GPU sums each output over k in a different order from BLAS; with
|x|, |W| ~ N(0, 1) and n ≤ 20 terms the rounding error is below n·eps·Σ|x_k W_k| ≲
n·eps·n, so rtol = atol = 1e-4 (float32, eps 6e-8) and 1e-12 (float64) are loose but
still catch any wrong index (errors of O(1)).
"""

import numpy as np
import pytest
from numba import cuda

from kernels import dense, dense_cuda

if not cuda.is_available():
    pytest.skip("needs Numba CUDA: runs under NUMBA_ENABLE_CUDASIM=1 via tests/test_gpu_parity.py, or on a GPU",
                allow_module_level=True)

TOL = {np.float32: 1e-4, np.float64: 1e-12}


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shared", [True, False])
def test_dense_population_parity(shared, dtype):
    rng = np.random.default_rng(11)
    P, B, n, m = 3, 5, 9, 6          # B, m, n not multiples of TILE
    x = _rand(rng, (1 if shared else P, B, n), dtype)
    W, b = _rand(rng, (P, m, n), dtype), _rand(rng, (P, m), dtype)
    got = dense_cuda.dense_population(x, W, b, method="numba")
    ref = dense.dense_population(x, W, b)
    assert isinstance(got, np.ndarray) and got.shape == (P, B, m) and got.dtype == dtype
    np.testing.assert_allclose(got, ref, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shared", [True, False])
def test_dense_lowrank_parity(shared, dtype):
    rng = np.random.default_rng(12)
    P, B, n, m, r = 3, 5, 7, 6, 2
    x = _rand(rng, (1 if shared else P, B, n), dtype)
    W, b = _rand(rng, (m, n), dtype), _rand(rng, (P, m), dtype)
    A, Bf = _rand(rng, (P, m, r), dtype), _rand(rng, (P, n, r), dtype)
    got = dense_cuda.dense_lowrank(x, W, b, A, Bf, 0.37, method="numba")
    ref = dense.dense_lowrank(x, W, b, A, Bf, 0.37)
    assert got.shape == (P, B, m) and got.dtype == dtype
    np.testing.assert_allclose(got, ref, rtol=TOL[dtype], atol=TOL[dtype])


def test_device_inputs_give_device_outputs():
    rng = np.random.default_rng(13)
    x, W, b = _rand(rng, (1, 3, 5), np.float32), _rand(rng, (2, 4, 5), np.float32), _rand(rng, (2, 4), np.float32)
    out = dense_cuda.dense_population(cuda.to_device(x), cuda.to_device(W), cuda.to_device(b), method="numba")
    assert not isinstance(out, np.ndarray)
    host = out.get() if hasattr(out, "get") else out.copy_to_host()
    np.testing.assert_allclose(host, dense.dense_population(x, W, b), rtol=1e-4, atol=1e-4)


def test_bad_shapes_and_method_raise_before_compute():
    W, b = np.zeros((2, 3, 4)), np.zeros((2, 3))
    with pytest.raises(ValueError, match="x shape"):
        dense_cuda.dense_population(np.zeros((3, 5, 4)), W, b)
    with pytest.raises(ValueError, match="b shape"):
        dense_cuda.dense_population(np.zeros((1, 5, 4)), W, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="method="):
        dense_cuda.dense_population(np.zeros((1, 5, 4)), W, b, method="blas")
    with pytest.raises(ValueError, match="factor shapes"):
        dense_cuda.dense_lowrank(np.zeros((1, 5, 4)), np.zeros((3, 4)), b, np.zeros((2, 3, 1)),
                                 np.zeros((2, 5, 1)), 1.0)
