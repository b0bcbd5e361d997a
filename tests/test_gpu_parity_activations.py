"""GPU twin of the rate nonlinearities (kernels/activations_cuda.py) against the CPU twin.

Runs under NUMBA_ENABLE_CUDASIM=1 (via tests/test_gpu_parity.py) or on a real GPU;
skipped in a plain CPU process. Piecewise-linear activations must agree exactly
(including NaN and ±inf); the transcendental ones within 4 ulps of the dtype (device
and host libm each round exp/tanh to within ~1 ulp, and σ adds one division).
"""

import numpy as np
import pytest
from numba import cuda

from kernels import activations, activations_cuda

if not cuda.is_available():
    pytest.skip("needs Numba CUDA: runs under NUMBA_ENABLE_CUDASIM=1 via tests/test_gpu_parity.py, or on a GPU",
                allow_module_level=True)

EXACT = ("relu", "hard_sigmoid", "identity")


def _inputs(dtype):
    rng = np.random.default_rng(21)
    z = (4 * rng.standard_normal((2, 3, 7))).astype(dtype)
    z[0, 0, :6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0]
    return z


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_activation_parity(name, dtype):
    z = _inputs(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        ref = activations.apply(name, z)
    got = activations_cuda.apply(name, z, method="numba")
    assert got.shape == z.shape and got.dtype == z.dtype
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    if name in EXACT:
        assert np.array_equal(got, ref, equal_nan=True)
    else:
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(got, ref, rtol=4 * eps, atol=4 * eps, equal_nan=True)


@pytest.mark.parametrize("name", ["relu", "ep_sigmoid"])
def test_inplace_on_device_array(name):
    z = _inputs(np.float32)
    d = cuda.to_device(z)
    out = activations_cuda.apply(name, d, inplace=True, method="numba")
    assert out is d
    ref = activations.apply(name, z)
    np.testing.assert_allclose(d.copy_to_host(), ref, rtol=1e-6, atol=1e-6, equal_nan=True)
    # not in place: the input is left alone
    z2 = _inputs(np.float32)
    d2 = cuda.to_device(z2)
    activations_cuda.apply(name, d2, method="numba")
    assert np.array_equal(d2.copy_to_host(), z2, equal_nan=True)


def test_unknown_activation_raises():
    with pytest.raises(ValueError, match="activation='gelu' is unknown"):
        activations_cuda.apply("gelu", np.zeros(3))
