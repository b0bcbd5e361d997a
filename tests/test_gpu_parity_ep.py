"""GPU twin of the EP relaxation kernels (kernels/ep_cuda.py) against the CPU twin.

Runs under NUMBA_ENABLE_CUDASIM=1 (via tests/test_gpu_parity.py) or on a real GPU;
skipped in a plain CPU process. Real states: identical under the simulator (same
operations, same order, no FMA), within 1e-13 on a GPU (device exp/tanh differ in the
last ulps). Complex states: within 1e-13 (Python's and Numba's complex division round
differently in the simulator). Several relaxation steps are chained so that errors
would compound.
"""

import numpy as np
import pytest
from numba import config, cuda

from kernels import ep, ep_cuda

if not cuda.is_available():
    pytest.skip("needs Numba CUDA: runs under NUMBA_ENABLE_CUDASIM=1 via tests/test_gpu_parity.py, or on a GPU",
                allow_module_level=True)

SIM = bool(config.ENABLE_CUDASIM)


def _check(got, ref, exact):
    if exact and SIM:
        assert np.array_equal(got, ref)
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", sorted(ep.PHI))
def test_phi_and_derivative_real(name):
    z = np.random.default_rng(81).standard_normal((3, 7)) * 2
    _check(ep_cuda.phi(name, z), ep.phi(name, z), True)
    _check(ep_cuda.phi_prime(name, z), ep.phi_prime(name, z), True)


@pytest.mark.parametrize("name", ep.HOLOMORPHIC)
def test_phi_complex(name):
    rng = np.random.default_rng(82)
    z = rng.standard_normal((2, 5)) + 1j * rng.standard_normal((2, 5))
    _check(ep_cuda.phi(name, z), ep.phi(name, z), False)


@pytest.mark.parametrize("cplx", [False, True])
@pytest.mark.parametrize("name", ["ep_sigmoid", "tanh"])
def test_relax_steps(cplx, name):
    rng = np.random.default_rng(83)
    shape = (2, 3, 6)
    dtype = np.complex128 if cplx else np.float64

    def rand():
        a = rng.standard_normal(shape)
        return (a + 1j * rng.standard_normal(shape)).astype(dtype) if cplx else a

    u0, drive = rand(), rand()
    states = []
    for mod in (ep, ep_cuda):
        u, r, res = u0.copy(), np.zeros(shape, dtype), np.zeros(shape[:-1])
        for _ in range(3):
            mod.relax_update(u, drive, r, res, 0.5, name)
        states.append((u, r, res))
    for g, c in zip(states[1], states[0]):
        _check(g, c, not cplx)
    assert states[0][2].min() > 0


def test_bad_inputs_raise():
    u = np.zeros((2, 3))
    with pytest.raises(ValueError, match="activation='hard_sigmoid' is invalid for complex"):
        ep_cuda.phi("hard_sigmoid", u + 0j)
    with pytest.raises(ValueError, match="res must be"):
        ep_cuda.relax_update(u, u.copy(), u.copy(), np.zeros(3), 1.0, "tanh")
