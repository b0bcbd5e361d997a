"""GPU twin of the quantisation kernels (kernels/quant_cuda.py) against the CPU twin: exact.

Runs under NUMBA_ENABLE_CUDASIM=1 (via tests/test_gpu_parity.py) or on a real GPU;
skipped in a plain CPU process. Integer codes and saturating accumulators must be
identical: round-half-even ties, the stochastic-rounding hash, and saturation exactly
at the configured bounds.
"""

import numpy as np
import pytest
from numba import cuda

from kernels import quant, quant_cuda

if not cuda.is_available():
    pytest.skip("needs Numba CUDA: runs under NUMBA_ENABLE_CUDASIM=1 via tests/test_gpu_parity.py, or on a GPU",
                allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered")   # intended uint64 wrap (simulator)


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("per_channel", [False, True])
def test_nearest_codes_identical(bits, per_channel):
    rng = np.random.default_rng(61)
    w = rng.standard_normal((2, 5, 7))
    s = quant.symmetric_scale(w, bits, per_channel)
    if bits > 1:
        w[0, 0, :3] = np.array([0.5, 1.5, -2.5]) * s[0, 0 if per_channel else 0, 0]   # exact ties
    ref = quant.quantize(w, s, bits)
    got = quant_cuda.quantize(w, s, bits)
    assert got.dtype == ref.dtype and np.array_equal(got, ref)


@pytest.mark.parametrize("seed", [0, 2**63 + 5])
def test_stochastic_codes_identical(seed):
    w = np.random.default_rng(62).standard_normal((3, 4, 9))
    s = quant.symmetric_scale(w, 4)
    ref = quant.quantize(w, s, 4, rounding="stochastic", seed=seed)
    got = quant_cuda.quantize(w, s, 4, rounding="stochastic", seed=seed)
    assert np.array_equal(got, ref)
    assert not np.array_equal(ref, quant.quantize(w, s, 4))          # stochastic differs from nearest somewhere


@pytest.mark.parametrize("acc_bits", [8, 12, 32])
@pytest.mark.parametrize("shared", [True, False])
def test_int_matmul_identical_including_saturation(acc_bits, shared):
    rng = np.random.default_rng(63)
    P, R, n, m = 2, 3, 11, 4
    xq = rng.integers(-127, 128, (1 if shared else P, R, n)).astype(np.int8)
    wq = rng.integers(-127, 128, (P, m, n)).astype(np.int8)
    ref, nref = quant.int_matmul(xq, wq, acc_bits)
    got, ngot = quant_cuda.int_matmul(xq, wq, acc_bits)
    assert got.dtype == np.int64 and np.array_equal(got, ref) and ngot == nref
    lo, hi = quant.acc_bounds(acc_bits)
    if acc_bits == 8:
        assert (ref == hi).any() or (ref == lo).any()                 # saturation was exercised


def test_bad_bits_raise():
    with pytest.raises(ValueError, match="bits=17"):
        quant_cuda.quantize(np.zeros(3), np.ones(1), 17)
    with pytest.raises(ValueError, match="rounding="):
        quant_cuda.quantize(np.zeros(3), np.ones(1), 4, rounding="up")
