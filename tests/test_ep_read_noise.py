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
    assert (h["relax_steps_free"] == 40).all()                  # no early stop: every example runs T1
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
    for k in (-1, 2.5):
        with pytest.raises(ValueError, match="noise_check_every"):
            EnergyNet([4, 3, 2], convergence="read_noise", noise_check_every=k)
    with pytest.raises(ValueError, match="noise_check_every"):       # the absolute test stops by itself
        EnergyNet([4, 3, 2], noise_check_every=5)
    for p in (0, -1, 1.5):
        with pytest.raises(ValueError, match="noise_patience"):
            EnergyNet([4, 3, 2], convergence="read_noise", noise_check_every=5, noise_patience=p)
    with pytest.raises(ValueError, match="noise_patience"):          # it counts the noise-aware stop's checks
        EnergyNet([4, 3, 2], convergence="read_noise", noise_patience=2)


def test_default_spec_keeps_stored_keys():
    """Runs stored before the read-noise mode existed keep their keys: the defaults stay out of the spec."""
    assert "convergence" not in neurozo.models.get("energy").registry_spec
    assert neurozo.models.get("energy", convergence="read_noise").registry_spec["convergence"] == "read_noise"
    assert neurozo.models.get("energy", noise_alpha=0.05).registry_spec["noise_alpha"] == 0.05
    # a model built directly leaves out the same added parameters as the registry does
    for kw in ({}, {"convergence": "read_noise"}, {"noise_alpha": 0.05},
               {"convergence": "read_noise", "noise_alpha": 0.2},
               {"convergence": "read_noise", "noise_check_every": 10},
               {"convergence": "read_noise", "noise_check_every": 10, "noise_patience": 2}):
        direct, reg = EnergyNet(**kw).spec, neurozo.models.get("energy", **kw).registry_spec
        assert {k: direct.get(k) for k in ADDED} == {k: reg.get(k) for k in ADDED}


# ---------------------------------------------------------------- noise-aware early stop (noise_check_every)

def test_noise_aware_stop_on_a_noise_free_substrate_is_the_absolute_early_stop(data):
    """s = 0: checking every step with the median rule is the absolute test's per-example early stop —
    same stop steps, same end states, same verdicts (only the costs differ, by the checks' reads)."""
    x, _ = data
    ideal = neurozo.substrates.get("ideal", dtype="float64")
    a = _net("absolute", init_scale=1.0)
    n = _net(init_scale=1.0, noise_check_every=1)
    prog = _prog(a, ideal)
    ra = a.relax(prog, x[:500], ideal, np.random.default_rng(3))
    rn = n.relax(prog, x[:500], ideal, np.random.default_rng(3))
    assert 1 < ra.steps < a.T1 and len(np.unique(ra.stop_steps)) > 1     # stops early, per example
    assert rn.steps == ra.steps
    np.testing.assert_array_equal(rn.stop_steps, ra.stop_steps)
    for ua, un in zip(ra.u, rn.u):
        np.testing.assert_array_equal(un, ua)
    assert np.all(rn.floor == 0) and rn.converged.all() and ra.converged.all()


def test_a_settled_example_stops_at_a_check_with_probability_one_half(noisy, data):
    """From a settled state (the end of a full relaxation) the residual² over c·s² is F(ν, ν)-distributed,
    whose median is 1: half the examples stop at the first check (K = 1). Binomial tolerance, 4 SE
    (B = 4000: ± 0.032). Every stopped example is converged by the verdict (its floor is the 1 − α one)."""
    x, _ = data
    m = _net()
    prog = _prog(m, noisy)
    settled = m.relax(prog, x, noisy, np.random.default_rng(3))
    k = _net(noise_check_every=1).relax(prog, x, noisy, np.random.default_rng(4), steps=2, u0=settled.u)
    first = k.stop_steps == 1
    assert abs(first.mean() - 0.5) <= _rate_tol(0.5, B)
    assert k.converged[0, first].all()
    assert np.all(k.floor > np.sqrt(4 / 3) * k.noise)


def test_with_patience_a_settled_example_stops_after_passing_checks_in_a_row(noisy, data):
    """noise_patience = 2, checks K = 10 steps apart (the near-linear net forgets its noise within a few steps,
    so the two checks are independent): from a settled state no example stops at the first check and a quarter
    (½·½) stop at the second. Binomial tolerance, 4 SE (B = 4000: ± 0.027)."""
    x, _ = data
    m = _net()
    prog = _prog(m, noisy)
    settled = m.relax(prog, x, noisy, np.random.default_rng(3))
    k = _net(noise_check_every=10, noise_patience=2).relax(prog, x, noisy, np.random.default_rng(4), steps=21,
                                                            u0=settled.u)
    assert not np.any(k.stop_steps == 10)
    assert abs(np.mean(k.stop_steps == 20) - 0.25) <= _rate_tol(0.25, B)
    assert k.converged[0, k.stop_steps == 20].all()


def test_noise_aware_stop_saves_steps_and_keeps_the_verdict(noisy, data):
    """From u = 0 at the default init scale the relaxation settles within 10 steps: with checks every
    K = 10 steps a settled example stops at each check with probability ≈ ½, so the stop step is ≈ K times
    a geometric(½) count, mean 2K (SD of the mean over 1000 examples ≈ 0.05K; ≤ 3K allows the settling
    and the residual's small excess over the noise model). The relaxation costs fewer neuron updates than the full
    relaxation — reads (MACs) included, the checks' two extra reads with them — and the verdict flags none
    (each stopped example passed a stricter test)."""
    x, _ = data
    m = _net(init_scale=1.0)
    prog = _prog(m, noisy)
    costs = []
    for K in (0, 10):
        noisy.costs.reset()
        rel = _net(init_scale=1.0, noise_check_every=K).relax(prog, x[:1000], noisy, np.random.default_rng(3))
        costs.append((noisy.costs.counts["neuron_updates"], noisy.costs.counts["macs"]))
        if K:
            assert rel.stop_steps.mean() <= 3 * K and np.all((rel.stop_steps % K == 0) | (rel.stop_steps == m.T1))
            assert rel.converged.all()
    assert costs[1][0] < 0.8 * costs[0][0] and costs[1][1] < 0.8 * costs[0][1]


def test_no_noise_aware_stop_with_a_per_step_beta(noisy, data):
    """Continuous-time hEP rotates β at every step: the state never settles, so no early stop."""
    x, y = data
    m = _net(noise_check_every=1)
    prog = _prog(m, noisy)
    betas = 0.1 * np.exp(2j * np.pi * np.arange(30) / 30)
    rel = m.relax(prog, x[:200], noisy, np.random.default_rng(3), steps=30, beta=betas, y=y[:200])
    assert rel.steps == 30 and np.all(rel.stop_steps == 30)


def test_learner_logs_the_relaxation_length():
    """relax_steps_free / relax_steps_nudged: the free / nudged phases' mean steps per example — T1 / T2
    without early stop, fewer with the noise-aware stop on PCM (every 5 steps; the net settles within
    T1 = 40 at the start)."""
    def run(check):
        model = {"name": "energy", "sizes": [64, 16, 10], "dt": 0.5, "T1": 40, "tol": 1e-4,
                 "convergence": "read_noise", "noise_check_every": check}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return neurozo.run(task="digits", model=model, substrate="pcm",
                               learner={"name": "ep", "N": 2, "T2": 10, "nonconverged": "report"},
                               budget=4 * 3, seed=0, eval_every=1).history.iloc[1:]
    full, early = run(0), run(5)
    assert (full["relax_steps_free"] == 40).all()
    assert (early["relax_steps_free"] < 30).all()
    # the nudged phases (T2 = 10, one check at step 5; N = 2: two phases of 128 examples a step) start from the
    # free state and move with the nudge: some examples stop at the check (mean 8.7 steps seen when written), and
    # none stops before it
    assert (full["relax_steps_nudged"] == 10).all()
    assert (early["relax_steps_nudged"] < 10).all() and (early["relax_steps_nudged"] >= 5).all()
    assert early["energy_pj"].iloc[-1] < full["energy_pj"].iloc[-1]
