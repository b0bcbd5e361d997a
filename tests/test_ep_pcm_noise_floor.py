"""experiments/ep_pcm_noise_floor.py: the read-noise floor of an EP network's relaxation on PCM.

The mechanism behind hEP's "non-convergence" on PCM (docs/ep_homeostasis.md): the crossbar's output
noise and ADC range are relative to each array's max |W|, so scaling every weight by c scales the read
noise of every drive by c, while a noise-free substrate reads with no noise at all."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import neurozo

_root = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def nf():
    sys.path.insert(0, str(_root / "experiments"))
    try:
        spec = importlib.util.spec_from_file_location("ep_pcm_noise_floor",
                                                      _root / "experiments" / "ep_pcm_noise_floor.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(_root / "experiments"))
    return mod


def _net(substrate):
    return neurozo.build(task="digits", model={"name": "energy", "sizes": [64, 32, 10], "dt": 0.5, "T1": 60},
                         substrate=substrate, learner={"name": "ep"}, budget=10, seed=0)


def _sigma(nf, b, theta, x, r, seed):
    rng = np.random.default_rng(seed)
    prog = b.model.program(theta[None], b.substrate, rng)
    return nf.drive_noise(b.model, prog, x[None], r, b.substrate, rng)


def test_no_read_noise_on_the_ideal_substrate(nf):
    b = _net("ideal")
    theta = b.model.init(np.random.default_rng(1))
    x = np.ascontiguousarray(b.task.test_data()[0][:20], dtype=np.float64)
    rel = b.model.relax(b.model.program(theta[None], b.substrate, np.random.default_rng(2)), x, b.substrate,
                        np.random.default_rng(3))
    assert nf.drive_noise(b.model, b.model.program(theta[None], b.substrate, np.random.default_rng(4)), x[None],
                          rel.r, b.substrate, np.random.default_rng(5)) == 0.0


def test_pcm_read_noise_scales_with_the_weights(nf):
    """σ(c·θ) = c·σ(θ): the crossbar normalises each array by its max |W| and rescales digitally, so the
    whole read — noise included — scales with c (only the input DAC is unchanged, and r is the same).
    σ is estimated from 40 examples × 42 units = 1680 differences per weight scale: its relative standard
    error is ≈ 1/√(2·1680) = 1.7 %, so the ratio of two estimates is within ± 5 SE ≈ 12 % of c."""
    b_ideal, b_pcm = _net("ideal"), _net("pcm")
    m = b_pcm.model
    theta = m.init(np.random.default_rng(1))
    x = np.ascontiguousarray(b_pcm.task.test_data()[0][:40], dtype=np.float64)
    rel = m.relax(m.program(theta[None], b_ideal.substrate, np.random.default_rng(2)), x, b_ideal.substrate,
                  np.random.default_rng(3))
    s1 = _sigma(nf, b_pcm, theta, x, rel.r, 10)
    assert s1 > 0
    for c in (2.0, 4.0):
        # the weights scale, the biases (digital) do not matter for the noise
        assert _sigma(nf, b_pcm, c * theta, x, rel.r, 11) / s1 == pytest.approx(c, rel=0.12)
