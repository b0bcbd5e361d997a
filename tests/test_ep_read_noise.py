"""The energy model's read-noise convergence test (``convergence="read_noise"``, models/energy.py).

On a substrate whose every read adds Gaussian noise of known σ, a settled relaxation's residual sits at
the floor E‖F‖²/N = c·σ̄², c = 2/(2 − dt), and the test flags a settled example with probability
``noise_alpha``; the absolute test flags them all. Tolerances are from the statistics (binomial for
rates, χ² for means of squares), with the network kept near-linear (init_scale 0.2) where the test's
model — noise not fed back through φ — holds."""

import warnings

import numpy as np
import pytest

import neurozo
from neurozo.learners.ep import ep_error
from neurozo.models.energy import ADDED, EnergyNet
from neurozo.substrates.base import Substrate
from neurozo.substrates.ideal import FloatSynapse, RateNeuron

SIGMA = 0.01
B = 4000
ALPHA = 0.01


class NoisyFloat(FloatSynapse):
    """Exact float64 products plus fresh N(0, σ²) noise on every output of every read."""

    def __init__(self, sigma):
        super().__init__("float64")
        self.sigma = sigma

    def read(self, prog, x, rng, costs, t=0.0, spiking=False):
        y = super().read(prog, x, rng, costs, t, spiking)
        return y + self.sigma * rng.standard_normal(y.shape)


@pytest.fixture(scope="module")
def noisy():
    return Substrate(NoisyFloat(SIGMA), RateNeuron())


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (B, 64)), rng.integers(0, 10, B)


def _net(convergence="read_noise", init_scale=0.2, **kw):
    return EnergyNet([64, 32, 10], dt=0.5, T1=150, tol=1e-4, init_scale=init_scale, convergence=convergence,
                     noise_alpha=ALPHA, **kw)


def _prog(m, sub, seed=1):
    return m.program(m.init(np.random.default_rng(seed))[None], sub, np.random.default_rng(seed + 1))


def _rate_tol(p, n, k=4.0):
    return k * np.sqrt(p * (1 - p) / n)


def test_noise_estimate_and_floor_match_the_known_read_noise(noisy, data):
    """σ̂² from two reads: hidden units have two reads in their drive (forward + feedback), output units
    one, so E σ̂² = (32·2 + 10)·σ²/42. Each example's σ̂² is a χ² mean with ≈ 40 degrees of freedom
    (relative SD √(2/40) ≈ 0.22); over 4000 examples the mean's SE is ≈ 0.35 %: ± 2 % is > 5 SE. The
    residual² at the end has mean c·σ̄² (c = 4/3 at dt = 0.5), same SE: their ratio within ± 3 %."""
    x, _ = data
    m = _net()
    rel = m.relax(_prog(m, noisy), x, noisy, np.random.default_rng(3))
    assert rel.steps == m.T1                  # no early stop in read-noise mode
    s2 = np.mean(rel.noise ** 2)
    assert s2 / ((32 * 2 + 10) * SIGMA ** 2 / 42) == pytest.approx(1.0, abs=0.02)
    assert np.mean(rel.residual ** 2) / (4 / 3 * s2) == pytest.approx(1.0, abs=0.03)
    assert np.all(rel.floor > np.sqrt(4 / 3) * rel.noise)      # q > 1 for noise_alpha < 0.5


@pytest.mark.parametrize("complex_state", [False, True])
def test_a_settled_relaxation_is_flagged_at_the_false_alarm_rate(noisy, data, complex_state):
    """A settled example is flagged with probability noise_alpha (complex states: real and imaginary
    parts, twice the degrees of freedom); the absolute test with tol = 1e-4 flags every one of them —
    the residual floor ≈ 1.15·σ̄ ≈ 0.01 is 100 × tol."""
    x, _ = data
    m = _net()
    prog = _prog(m, noisy)
    rel = m.relax(prog, x, noisy, np.random.default_rng(3), complex_state=complex_state)
    assert abs((1 - rel.converged.mean()) - ALPHA) <= _rate_tol(ALPHA, B)
    a = _net("absolute")
    rel_a = a.relax(prog, x, noisy, np.random.default_rng(3), complex_state=complex_state)
    assert rel_a.floor is None and rel_a.noise is None
    assert not rel_a.converged.any()


def test_an_unsettled_relaxation_is_flagged(noisy, data):
    """Two Euler steps from u = 0 at the default init scale leave residuals far above the floor: every
    example is flagged, as the noise-free relaxation of the same θ confirms it has not settled."""
    x, _ = data
    m = _net(init_scale=1.0)
    th = m.init(np.random.default_rng(1))
    rel = m.relax(m.program(th[None], noisy, np.random.default_rng(2)), x, noisy, np.random.default_rng(3),
                  steps=2)
    ideal = neurozo.substrates.get("ideal", dtype="float64")
    clean = m.relax(m.program(th[None], ideal, np.random.default_rng(2)), x, ideal, np.random.default_rng(3),
                    steps=2)
    assert np.all(clean.residual > 3 * rel.threshold)          # the dynamics are far from settled …
    assert not rel.converged.any()                              # … and the test says so


def test_on_a_noise_free_substrate_it_is_the_absolute_test(data):
    x, _ = data
    ideal = neurozo.substrates.get("ideal", dtype="float64")
    m = _net(init_scale=1.0)
    prog = _prog(m, ideal)
    for steps in (5, 40, 150):
        rel = m.relax(prog, x[:300], ideal, np.random.default_rng(3), steps=steps)
        assert np.all(rel.noise == 0) and np.all(rel.floor == 0)
        np.testing.assert_array_equal(rel.converged, rel.residual <= m.tol)


@pytest.mark.parametrize("estimator,N,phases", [("one_sided", 1, 1), ("symmetric", 2, 2), ("holomorphic", 4, 3)])
def test_nudged_phases_are_tested_against_their_own_floor(noisy, data, estimator, N, phases):
    """ep_error's per-example verdict: an example passes if every nudged relaxation (holomorphic N = 4: the
    real points ±|β| and one complex pair, 3 relaxations) passes; each phase's floor includes the noise of
    the nudge's reads (readout and its transpose), so settled phases fail at 1 − (1 − α)^phases."""
    x, y = data
    m = _net()
    prog = _prog(m, noisy)
    rng = np.random.default_rng(3)
    free = m.relax(prog, x, noisy, rng)
    _, _, _, ok = ep_error(m, prog, x, y, free, noisy, rng, estimator, 0.5, N, T2=40)
    p = 1 - (1 - ALPHA) ** phases
    assert abs((1 - ok.mean()) - p) <= _rate_tol(p, B)


def test_learner_logs_the_floor_and_tests_against_it():
    """One EP run on PCM in read-noise mode logs the batch's median σ̂ and floor; on the ideal substrate
    both are 0, and the run learns exactly as an absolute-mode run without early stop (tol = 0)."""
    def run(substrate, convergence, tol=1e-4, nonconverged="skip"):
        model = {"name": "energy", "sizes": [64, 16, 10], "dt": 0.5, "T1": 40, "tol": tol,
                 "convergence": convergence}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return neurozo.run(task="digits", model=model, substrate=substrate,
                               learner={"name": "ep", "N": 2, "T2": 10, "nonconverged": nonconverged},
                               budget=4 * 3, seed=0, eval_every=1)
    h = run("pcm", "read_noise").history.iloc[1:]              # row 0: before the first step
    assert len(h) == 4 and (h["read_noise_free"] > 0).all()
    assert (h["noise_floor_free"] > np.sqrt(4 / 3) * h["read_noise_free"]).all()
    ideal = {"name": "ideal", "dtype": "float64"}
    hi, ha = run(ideal, "read_noise", nonconverged="report").history, \
        run(ideal, "absolute", tol=0.0, nonconverged="report").history
    assert hi["train_loss"].iloc[-1] < hi["train_loss"].iloc[1]         # it learned
    assert (hi["read_noise_free"].iloc[1:] == 0).all() and (hi["noise_floor_free"].iloc[1:] == 0).all()
    for c in ("train_loss", "test_acc"):
        np.testing.assert_array_equal(hi[c], ha[c])


def test_bad_convergence_settings_raise():
    with pytest.raises(ValueError, match="convergence"):
        EnergyNet([4, 3, 2], convergence="noise")
    for a in (0.0, 0.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="noise_alpha"):
            EnergyNet([4, 3, 2], noise_alpha=a)


def test_default_spec_keeps_stored_keys():
    """Runs stored before the read-noise mode existed keep their keys: the defaults stay out of the spec."""
    assert "convergence" not in neurozo.models.get("energy").registry_spec
    assert neurozo.models.get("energy", convergence="read_noise").registry_spec["convergence"] == "read_noise"
    assert neurozo.models.get("energy", noise_alpha=0.05).registry_spec["noise_alpha"] == 0.05
    # a model built directly leaves out the same added parameters as the registry does
    for kw in ({}, {"convergence": "read_noise"}, {"noise_alpha": 0.05},
               {"convergence": "read_noise", "noise_alpha": 0.2}):
        direct, reg = EnergyNet(**kw).spec, neurozo.models.get("energy", **kw).registry_spec
        assert {k: direct.get(k) for k in ADDED} == {k: reg.get(k) for k in ADDED}
