"""GPU twin of the bit-accurate Loihi LIF (kernels/loihi_cuda.py) against the CPU twin: bit-exact.

Runs under NUMBA_ENABLE_CUDASIM=1 (via tests/test_gpu_parity.py) or on a real GPU;
skipped in a plain CPU process. The inputs are large enough to drive the current
through its 24-bit wrap-around and the voltage into saturation, which is where an
integer-width mistake would show.
"""

import numpy as np
import pytest
from numba import cuda

from kernels import loihi, loihi_cuda

if not cuda.is_available():
    pytest.skip("needs Numba CUDA: runs under NUMBA_ENABLE_CUDASIM=1 via tests/test_gpu_parity.py, or on a GPU",
                allow_module_level=True)


@pytest.mark.parametrize("delay", [0, 1])
@pytest.mark.parametrize("Tz", [1, 8])
def test_loihi_lif_bit_exact(delay, Tz):
    rng = np.random.default_rng(51)
    T = 8
    a = rng.integers(-3000, 90000, (2, Tz, 9)).astype(np.int64)
    a[0, :, 0] = 2**17                     # (a << 6) = 2²³: the current wraps
    kw = dict(T=T, du=300, dv=200, bias_mant=100, bias_exp=3, vth=400, delay=delay, record=True)
    ref = loihi.loihi_lif(a, **kw)
    got = loihi_cuda.loihi_lif(a, **kw)
    u = ref[4]
    assert (u < 0).any() and (ref[1] > 0).any()     # wrap-around and spikes happen
    for g, r in zip(got, ref):
        assert g.dtype == r.dtype and np.array_equal(g, r)


def test_loihi_lif_saturation_and_no_fire():
    a = np.full((1, 1, 4), 2**16, dtype=np.int64)
    kw = dict(T=6, du=4095, dv=0, vth=131071, fire=False, record=True)
    ref = loihi.loihi_lif(a, **kw)
    got = loihi_cuda.loihi_lif(a, **kw)
    assert (ref[5] == loihi.V_MAX).any()             # the voltage saturates
    for g, r in zip(got, ref):
        assert np.array_equal(g, r)


def test_float_input_is_floored_like_cpu():
    a = np.array([[[1.7, -1.2, 3.0]]])
    for g, r in zip(loihi_cuda.loihi_lif(a, 4, 100, 100, vth=0), loihi.loihi_lif(a, 4, 100, 100, vth=0)):
        assert (g is None and r is None) or np.array_equal(g, r)
