"""GPU twin of the spike coders (kernels/coding_cuda.py) against the CPU twin: bit-exact.

Runs under NUMBA_ENABLE_CUDASIM=1 (via tests/test_gpu_parity.py) or on a real GPU;
skipped in a plain CPU process. Both twins evaluate the same counter-based
generator (SplitMix64 per element), so the device draws the CPU's numbers.
"""

import numpy as np
import pytest
from numba import cuda

from kernels import coding, coding_cuda

if not cuda.is_available():
    pytest.skip("needs Numba CUDA: runs under NUMBA_ENABLE_CUDASIM=1 via tests/test_gpu_parity.py, or on a GPU",
                allow_module_level=True)

# uint64 wrap-around is intended (SplitMix64); the simulator evaluates it with numpy scalars, which warn
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered")


def test_uniform_stream_identical():
    got = coding_cuda.uniform(12345, (3, 7), device=False)
    ref = coding.uniform(12345, (3, 7))
    assert got.dtype == np.float64 and np.array_equal(got, ref)
    assert not np.array_equal(coding_cuda.uniform(12346, (3, 7), device=False), ref)   # the seed matters


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_rate_code_identical(gain):
    x = np.random.default_rng(41).random((3, 5))
    got = coding_cuda.rate_code(x, 6, seed=2**40 + 7, gain=gain)
    ref = coding.rate_code(x, 6, seed=2**40 + 7, gain=gain)
    assert got.dtype == ref.dtype and 0 < ref.sum() < ref.size and np.array_equal(got, ref)


def test_latency_code_identical_including_ties():
    T = 5
    # (1 − x)(T − 1) = 0.5, 1.5, 2.5 are exact ties: round half to even, as np.round
    x = np.array([[0.875, 0.625, 0.375, 1.2, -0.3, 0.0], [0.5, 0.9, 0.1, 0.33, 0.66, 1.0]])
    got = coding_cuda.latency_code(x, T, x_min=0.0)
    ref = coding.latency_code(x, T, x_min=0.0)
    assert np.array_equal(got, ref)
    assert np.array_equal(coding_cuda.latency_code(x, T, x_min=0.5), coding.latency_code(x, T, x_min=0.5))
