"""GPU twin of the LIF kernels (kernels/lif_cuda.py) against the CPU twin: bit-exact.

Runs under NUMBA_ENABLE_CUDASIM=1 (via tests/test_gpu_parity.py) or on a real GPU;
skipped in a plain CPU process. The twin does the same float operations in the same
order and dtype (no FMA contraction), so spike trains, counts, first-spike times and
membrane potentials must be identical, not merely close. Inputs are scaled so that
neurons spike often and sit near threshold (where any rounding difference would flip
a spike).
"""

import numpy as np
import pytest
from numba import cuda

from kernels import lif, lif_cuda

if not cuda.is_available():
    pytest.skip("needs Numba CUDA: runs under NUMBA_ENABLE_CUDASIM=1 via tests/test_gpu_parity.py, or on a GPU",
                allow_module_level=True)


def _z(dtype, P=2, T=9, N=11, seed=31):
    rng = np.random.default_rng(seed)
    return (0.6 * rng.standard_normal((P, T, N)) + 0.4).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("refractory", [0, 2])
def test_lif_scan_bit_exact(dtype, reset, refractory):
    z = _z(dtype)
    kw = dict(T=9, beta=0.9, threshold=1.0, reset=reset, refractory=refractory, record_mem=True)
    s_c, n_c, f_c, u_c = lif.lif_scan(z, **kw)
    s_g, n_g, f_g, u_g = lif_cuda.lif_scan(z, **kw)
    assert s_c.sum() > 0 and (s_c == 0).any()          # the test input spikes, but not always
    assert s_g.dtype == s_c.dtype and n_g.dtype == np.int64
    assert np.array_equal(s_g, s_c) and np.array_equal(n_g, n_c) and np.array_equal(f_g, f_c)
    assert np.array_equal(u_g, u_c)


def test_lif_scan_constant_current_and_no_spike_output():
    z = _z(np.float32, T=1)
    s_c, n_c, f_c, _ = lif.lif_scan(z, 12, 0.95, 0.8, write_spikes=True)
    s_g, n_g, f_g, m_g = lif_cuda.lif_scan(z, 12, 0.95, 0.8, write_spikes=True)
    assert np.array_equal(s_g, s_c) and np.array_equal(n_g, n_c) and np.array_equal(f_g, f_c) and m_g is None
    none, n2, _, _ = lif_cuda.lif_scan(z, 12, 0.95, 0.8, write_spikes=False)
    assert none is None and np.array_equal(n2, n_c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leaky_integrate_bit_exact(dtype):
    z = _z(dtype, T=7)
    mean_c, last_c, mem_c = lif.leaky_integrate(z, 7, 0.8, record_mem=True)
    mean_g, last_g, mem_g = lif_cuda.leaky_integrate(z, 7, 0.8, record_mem=True)
    assert np.array_equal(mean_g, mean_c) and np.array_equal(last_g, last_c) and np.array_equal(mem_g, mem_c)


def test_active_lists_identical():
    rng = np.random.default_rng(32)
    x = (rng.random((2, 5, 13)) < 0.3).astype(np.float32)
    x[1, 2] = 0                                            # an empty row
    for a, b in zip(lif_cuda.active_lists(x), lif.active_lists(x)):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("graded", [False, True])
@pytest.mark.parametrize("shared", [True, False])
def test_spike_accumulate_bit_exact(graded, shared):
    rng = np.random.default_rng(33)
    P, R, n, m = 3, 4, 13, 5
    x = (rng.random((1 if shared else P, R, n)) < 0.3).astype(np.float32)
    if graded:
        x *= rng.random(x.shape).astype(np.float32) * 2
    W = rng.standard_normal((P, m, n)).astype(np.float32)
    b = rng.standard_normal((P, m)).astype(np.float32)
    assert np.array_equal(lif_cuda.spike_accumulate(x, W, b), lif.spike_accumulate(x, W, b))


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="time steps"):
        lif_cuda.lif_scan(np.zeros((1, 3, 4), np.float32), 5, 0.9, 1.0)
    with pytest.raises(ValueError, match="does not match"):
        lif_cuda.spike_accumulate(np.zeros((2, 3, 4)), np.zeros((3, 5, 4)), np.zeros((3, 5)))
