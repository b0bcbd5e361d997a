"""GPU twin of the analog crossbar kernels (kernels/crossbar_cuda.py) against the CPU twin.

Runs under NUMBA_ENABLE_CUDASIM=1 (via tests/test_gpu_parity.py) or on a real GPU;
skipped in a plain CPU process. Both twins draw noise from the same counter-based
generator (ziggurat normals). Under the simulator the DAC, the normal fill, the PCM
device laws and the pulsed update on identical inputs must agree exactly; on a GPU, log/cos/sin may differ in the last ulp,
so those are compared to 1e-12. The full analog MVM sums its float32 GEMM in another
order than BLAS, so an ADC output may move by one step (res_out·α·red) where z lands
within rounding of a step boundary: at most one step anywhere, and identical almost
everywhere (≥ 99% of the outputs; a flip needs |Δz| ~ 1e-7 against a step of ~5e-2).
"""

import numpy as np
import pytest
from numba import config, cuda

from kernels import crossbar, crossbar_cuda

if not cuda.is_available():
    pytest.skip("needs Numba CUDA: runs under NUMBA_ENABLE_CUDASIM=1 via tests/test_gpu_parity.py, or on a GPU",
                allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered")   # intended uint64 wrap (simulator)
SIM = bool(config.ENABLE_CUDASIM)
IO = dict(inp_res=2 / 126, inp_bound=1.0, out_res=24 / 510, out_bound=12.0, out_noise=0.06)


def _close(a, b):
    if SIM:
        assert np.array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_normal_fill_same_stream():
    _close(crossbar_cuda.normal_fill((3, 5), seed=77), crossbar.normal_fill((3, 5), seed=77))
    big = crossbar_cuda.normal_fill((2, 400), seed=78)          # enough draws to visit the ziggurat's slow paths
    _close(big, crossbar.normal_fill((2, 400), seed=78))


def test_pcm_device_laws_identical():
    rng = np.random.default_rng(75)
    g = rng.uniform(0, 25, (4, 6))
    g[0, 0] = 0.0
    coeff = np.array([0.26348, 1.9650, -1.1731])
    _close(crossbar_cuda.pcm_programming_noise(g, coeff, 25.0, 1.0, 1.0, 3),
           crossbar.pcm_programming_noise(g, coeff, 25.0, 1.0, 1.0, 3))
    nu_c = crossbar.pcm_drift_coefficients(g, 25.0, 1.0, 4)
    _close(crossbar_cuda.pcm_drift_coefficients(g, 25.0, 1.0, 4), nu_c)
    for t in (0.0, 3600.0, 86400.0):
        _close(crossbar_cuda.pcm_drift_and_read(g, nu_c, t, 20.0, 250e-9, 25.0, 1.0, 5),
               crossbar.pcm_drift_and_read(g, nu_c, t, 20.0, 250e-9, 25.0, 1.0, 5))


@pytest.mark.parametrize("nm", [True, False])
def test_dac_identical(nm):
    rng = np.random.default_rng(71)
    x = (3 * rng.standard_normal((4, 9))).astype(np.float32)
    x[2] = 0                                                   # an all-zero vector
    rows = np.array([0, 2, 3], dtype=np.int64)
    red = np.array([1.0, 2.0, 4.0])
    for g, c in zip(crossbar_cuda.dac(x, 2 / 126, 1.0, nm, red, rows), crossbar.dac(x, 2 / 126, 1.0, nm, red, rows)):
        assert g.dtype == c.dtype and np.array_equal(g, c)


@pytest.mark.parametrize("shared, w_noise, ir_drop", [(True, 0.0, 0.0), (False, 0.02, 0.0), (True, 0.02, 1.0),
                                                    (False, 0.0, 1.0)])
def test_analog_mvm_within_one_adc_step(shared, w_noise, ir_drop):
    rng = np.random.default_rng(72)
    P, R, n, m = 2, 4, 10, 6
    x = rng.standard_normal((1 if shared else P, R, n)).astype(np.float32)
    x[0, 1] = 0                                                # all-zero vector: bias only, no conversion
    W = (8 * rng.standard_normal((P, m, n))).astype(np.float32)   # large enough for bound management
    post, bias = np.array([1.0, 0.5]), rng.standard_normal((P, m)).astype(np.float32)
    kw = dict(IO, w_noise=w_noise, post_scale=post, bias=bias, seed=5, ir_drop=ir_drop)
    y_c, r_c = crossbar.analog_mvm(x, W, **kw)
    y_g, r_g = crossbar_cuda.analog_mvm(x, W, **kw)
    assert y_g.dtype == np.float32 and r_g.dtype == r_c.dtype
    assert (r_c > 1).any()                                     # bound management ran
    assert np.array_equal(r_g, r_c)
    alpha = np.abs(np.broadcast_to(x, (P, R, n))).max(axis=-1)
    step = IO["out_res"] * np.maximum(alpha, 1e-30) * 2.0 ** (r_c - 1) * post[:, None]
    diff = np.abs(y_g - y_c)
    assert (diff <= step[..., None] * 1.001 + 1e-5).all()
    assert (diff <= 1e-5).mean() >= 0.99


def test_analog_mvm_noiseless_io_is_exact_product_on_grid():
    rng = np.random.default_rng(73)
    x = rng.standard_normal((1, 3, 8)).astype(np.float32)
    W = (0.1 * rng.standard_normal((2, 5, 8))).astype(np.float32)
    kw = dict(inp_res=0.0, inp_bound=1e9, out_res=0.0, out_bound=1e9, out_noise=0.0, seed=1)
    y_c, _ = crossbar.analog_mvm(x, W, **kw)
    y_g, _ = crossbar_cuda.analog_mvm(x, W, **kw)
    np.testing.assert_allclose(y_g, y_c, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mult", [True, False])
@pytest.mark.parametrize("stochastic", [True, False])
def test_pulsed_update_same_pulses_and_weights(mult, stochastic):
    rng = np.random.default_rng(74)
    shape = (3, 7)
    w = rng.uniform(-0.5, 0.5, shape)
    delta = rng.uniform(-0.05, 0.05, shape)
    args = (delta, 0.001, 0.0012, 0.01, 0.02, -1.0, 1.0, 0.001, 0.3, mult, stochastic, 40, 9)
    w_c, p_c = crossbar.pulsed_update(w.copy(), *args)
    w_g, p_g = crossbar_cuda.pulsed_update(w.copy(), *args)
    assert np.array_equal(p_g, p_c) and p_c.sum() > 0
    _close(w_g, w_c)
