"""GPU twin of the CBO kernels (kernels/cbo_cuda.py) against the CPU twin.

Runs under NUMBA_ENABLE_CUDASIM=1 (via tests/test_gpu_parity.py) or on a real GPU;
skipped in a plain CPU process. Both twins draw from the same counter-based streams
(SplitMix64 keyed by seed, step, run, particle; the same ziggurat tables) and do the
same operations in the same order, so under the simulator one step is identical bit
for bit; on a GPU exp/log/sqrt may differ in the last ulp, so the comparison there is
to 1e-12 (one step, O(1) values). A NaN objective value must get zero weight on both.
"""

import numpy as np
import pytest
from numba import config, cuda

from kernels import cbo, cbo_cuda

if not cuda.is_available():
    pytest.skip("needs Numba CUDA: runs under NUMBA_ENABLE_CUDASIM=1 via tests/test_gpu_parity.py, or on a GPU",
                allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered")   # intended uint64 wrap (simulator)
SIM = bool(config.ENABLE_CUDASIM)


def _same(a, b):
    if SIM:
        assert np.array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _setup(M=3, N=6, d=4, seed=91):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, (M, N, d))
    E = (x ** 2).sum(axis=-1)
    E[1, 2] = np.nan                       # a broken evaluation: zero weight, no poisoning
    return x, E


def test_streams_identical():
    _same(cbo_cuda.normals(7, 3, 4, 9), cbo.normals(7, 3, 4, 9))
    _same(cbo_cuda.uniforms(7, 3, 4, 9), cbo.uniforms(7, 3, 4, 9))


@pytest.mark.parametrize("polar", ["none", "gaussian", "laplace"])
def test_consensus_identical(polar):
    x, E = _setup()
    for g, c in zip(cbo_cuda.consensus(x, E, 2.0, polar=polar), cbo.consensus(x, E, 2.0, polar=polar)):
        _same(g, c)
    w = cbo_cuda.consensus(x, E, 2.0)[1]
    assert w[1, 0, 2] == 0.0 and np.all(np.isfinite(w))


@pytest.mark.parametrize("noise", list(cbo.NOISES))
def test_step_identical(noise):
    x, E = _setup()
    alpha = np.array([1.0, 5.0, 30.0])
    kw = dict(noise=noise, sigma=2.0, dt=0.05, seed=11, step=4)
    xc, xg = x.copy(), x.copy()
    oc = cbo.cbo_step(xc, E, alpha, layout="particles", **kw)
    og = cbo_cuda.cbo_step(xg, E, alpha, **kw)
    _same(xg, xc)
    for a in ("consensus", "weights", "fmin", "step_sq"):
        _same(getattr(og, a), getattr(oc, a))
    assert not np.array_equal(xc, x)


def test_step_with_batches_mask_heaviside_hopping_and_polar():
    x, E_all = _setup(M=2, N=7, d=3, seed=92)
    idx = np.array([[0, 2, 4, 6], [1, 2, 3, 5]])
    E = np.take_along_axis(E_all, idx, axis=1)
    mov = np.array([[0, 2], [3, 5]])
    h = (np.random.default_rng(93).random((2, 7)) > 0.3).astype(float)
    for extra in (dict(h=h, active=np.array([True, False])), dict(scheme="hopping"), dict(polar="gaussian", kappa=0.7)):
        xc, xg = x.copy(), x.copy()
        kw = dict(idx=idx, mov=mov, noise="anisotropic", sigma=1.5, seed=3, step=2, **extra)
        oc = cbo.cbo_step(xc, E, 3.0, layout="particles", **kw)
        og = cbo_cuda.cbo_step(xg, E, 3.0, **kw)
        _same(xg, xc)
        _same(og.consensus, oc.consensus)


@pytest.mark.parametrize("noise", ["isotropic", "covariance"])
def test_move_alone_identical(noise):
    x, E = _setup(seed=94)
    E[1, 2] = 1.0
    c, w = cbo.consensus(x, E, 4.0)
    xc, xg = x.copy(), x.copy()
    kw = dict(alpha=4.0, noise=noise, sigma=1.2, seed=8, step=1)
    _same(cbo_cuda.move(xg, c, w, **kw), cbo.move(xc, c, w, **kw))
    _same(xg, xc)


def test_ess_alpha_and_resampling_noise():
    _, E = _setup(M=4, N=12)
    _same(cbo_cuda.effective_sample_size(E, 0.7), cbo.effective_sample_size(E, 0.7))
    _same(cbo_cuda.ess_alpha(E, eta=0.4), cbo.ess_alpha(E, eta=0.4))
    x, _ = _setup(M=3, N=5)
    runs = np.array([True, False, True])
    xc, xg = x.copy(), x.copy()
    cbo.add_noise(xc, runs, 0.3, 5, 1)
    cbo_cuda.add_noise(xg, runs, 0.3, 5, 1)
    _same(xg, xc)
    assert np.array_equal(xg[1], x[1]) and not np.array_equal(xg[0], x[0])


def test_bad_names_raise():
    x, E = _setup()
    with pytest.raises(ValueError, match="noise='pink' is invalid"):
        cbo_cuda.cbo_step(x, E, 1.0, noise="pink")
