"""PCM noise model against aihwkit 1.2's formulas (REFERENCES.md, "Analog in-memory").

Statistical checks use fixed seeds; each tolerance is k standard errors of the
estimate for the sample size used (k = 4: a false failure has probability
< 1e-4 per check for a correct model), with the standard error of a sample
standard deviation s of N normal draws taken as σ/√(2(N − 1)).
"""

import math

import numpy as np
import pytest

from neurozo import substrates
from neurozo.substrates.pcm import PCMNoise
from neurozo.substrates.reram import ReRAMNoise
from neurozo.substrates.weights import DenseWeights

G_MAX = 25.0
C = (0.26348, 1.9650, -1.1731)
N = 20_000
K = 4.0


def sigma_prog_ref(g):  # REFERENCES.md, written out independently of the implementation
    gh = g / G_MAX
    return (C[0] + C[1] * gh + C[2] * gh ** 2) * G_MAX / 25.0


def nu_moments_ref(g):
    gh = max(g / G_MAX, 1e-7)
    mu = min(max(-0.0155 * math.log(gh) + 0.0244, 0.049), 0.1)
    sd = min(max(-0.0125 * math.log(gh) - 0.0059, 0.008), 0.045)
    # ν = |μ + σξ|: folded normal, E ν = σ√(2/π)e^{−μ²/2σ²} + μ(1 − 2Φ(−μ/σ)), E ν² = μ² + σ²
    phi = 0.5 * (1 + math.erf(-mu / sd / math.sqrt(2)))
    mean = sd * math.sqrt(2 / math.pi) * math.exp(-mu ** 2 / (2 * sd ** 2)) + mu * (1 - 2 * phi)
    return mean, math.sqrt(mu ** 2 + sd ** 2 - mean ** 2)


def read_sigma_ref(g, t_inf):
    q = min(0.2, 0.0088 / max(1e-3, (g / G_MAX) ** 0.65))
    t = t_inf + 20.0
    return q * math.sqrt(math.log((t + 250e-9) / (2 * 250e-9)))


LEVELS_PROG = np.linspace(2.5, 25.0, 10)          # clipping at 0 is < 1e-7 likely at these levels
LEVELS_DRIFT = G_MAX * np.logspace(-3, 0, 10)      # covers both clip regions of μ_ν and σ_ν
LEVELS_READ = G_MAX * np.linspace(0.1, 1.0, 10)    # σ_read ≤ 0.19 at 1 h: no clipping at 0


@pytest.mark.parametrize("g", LEVELS_PROG)
def test_programming_noise_std_matches_polynomial(g):
    pcm = PCMNoise()
    rng = np.random.default_rng(int(g * 100))
    gp = pcm.apply_programming_noise(np.full(N, g), rng)
    sig = sigma_prog_ref(g)
    assert pcm.prog_sigma(np.array(g)) == pytest.approx(sig, rel=1e-12)
    assert abs(gp.mean() - g) < K * sig / math.sqrt(N)
    assert abs(gp.std(ddof=1) - sig) < K * sig / math.sqrt(2 * (N - 1))


@pytest.mark.parametrize("g", LEVELS_DRIFT)
def test_drift_exponent_distribution_matches_laws(g):
    pcm = PCMNoise()
    rng = np.random.default_rng(int(g * 1e4))
    nu = pcm.generate_drift_coefficients(np.full(N, g), rng)
    mean, sd = nu_moments_ref(g)
    assert abs(nu.mean() - mean) < K * sd / math.sqrt(N)
    # the std of a folded normal sample: SE ≈ sd/√(2N) (normal approximation, |μ|/σ ≥ 1.09 here)
    assert abs(nu.std(ddof=1) - sd) < K * sd / math.sqrt(2 * (N - 1)) * 1.5
    assert np.all(nu >= 0)


@pytest.mark.parametrize("t_inf", [1.0, 3600.0, 86400.0, 3.15e7])
def test_drift_is_power_law_with_the_drawn_exponent(t_inf):
    pcm = PCMNoise()
    rng = np.random.default_rng(0)
    g = rng.uniform(0.5, 25, 1000)
    nu = pcm.generate_drift_coefficients(g, rng)
    gd = pcm.apply_drift_noise(g, nu, t_inf)
    # ν recovered exactly from g(t) = g·(t/t0)^−ν with t = t_inference + t0
    assert np.allclose(np.log(g / gd) / math.log((t_inf + 20.0) / 20.0), nu, rtol=1e-9)
    assert np.array_equal(pcm.apply_drift_noise(g, nu, 0.0), g)


@pytest.mark.parametrize("g", LEVELS_READ)
def test_read_noise_std_matches_1_over_f_law(g):
    pcm = PCMNoise()
    t_inf = 3600.0
    rng = np.random.default_rng(int(g * 1000))
    g_prog = np.full(N, g)
    gd = pcm.apply_drift_noise(g_prog, np.full(N, 0.06), t_inf)
    gr = pcm.apply_read_noise(gd, g_prog, t_inf, rng)
    rel = gr / gd - 1
    sig = read_sigma_ref(g, t_inf)
    assert pcm.read_noise_sigma(np.array(g), t_inf) == pytest.approx(sig, rel=1e-12)
    assert abs(rel.mean()) < K * sig / math.sqrt(N)
    assert abs(rel.std(ddof=1) - sig) < K * sig / math.sqrt(2 * (N - 1))


@pytest.mark.parametrize("g", LEVELS_READ)
def test_fused_drift_and_read_noise_matches_laws(g):
    # at_time (the crossbar's path) = drift ∘ 1/f read noise in one pass
    pcm = PCMNoise()
    t_inf = 86400.0
    nu = 0.05
    g_prog = np.full(N, g)
    gt = pcm.at_time(g_prog, np.full(N, nu), t_inf, np.random.default_rng(int(g * 77)))
    gd = g * ((t_inf + 20.0) / 20.0) ** -nu
    rel = gt / gd - 1
    sig = read_sigma_ref(g, t_inf)
    assert abs(rel.mean()) < K * sig / math.sqrt(N)
    assert abs(rel.std(ddof=1) - sig) < K * sig / math.sqrt(2 * (N - 1))
    quiet = PCMNoise(read_noise_scale=0.0).at_time(g_prog[:10], np.full(10, nu), t_inf, np.random.default_rng(0))
    assert np.allclose(quiet, gd, rtol=1e-12)


def test_read_noise_q_clips():
    pcm = PCMNoise()
    assert pcm.read_noise_q(np.array(1e-6)) == pytest.approx(0.2)
    assert pcm.read_noise_q(np.array(G_MAX)) == pytest.approx(0.0088)
    # σ grows with the read time as √ln((t + t_read)/(2 t_read))
    s = [float(pcm.read_noise_sigma(np.array(10.0), t)) for t in (0.0, 3600.0, 3.15e7)]
    assert s[0] < s[1] < s[2]


def test_noise_scales_and_determinism():
    g = np.full(5000, 12.0)
    a = PCMNoise().apply_programming_noise(g, np.random.default_rng(1))
    b = PCMNoise().apply_programming_noise(g, np.random.default_rng(1))
    assert np.array_equal(a, b)
    z = PCMNoise(prog_noise_scale=0.0).apply_programming_noise(g, np.random.default_rng(1))
    assert np.array_equal(z, g)
    s2 = PCMNoise(prog_noise_scale=2.0).apply_programming_noise(g, np.random.default_rng(1))
    assert np.allclose(s2 - g, 2 * (a - g))
    nu = PCMNoise(drift_scale=0.0).generate_drift_coefficients(g, np.random.default_rng(1))
    assert np.all(nu == 0)


def _mean_abs_output(t, comp, seeds=range(4)):
    rng = np.random.default_rng(123)
    W = rng.uniform(-1, 1, (1, 128, 128))
    x = rng.uniform(0, 1, (256, 128)).astype(np.float32)
    outs = []
    for s in seeds:
        sub = substrates.get("pcm", drift_compensation=comp, device_seed=s)
        r = np.random.default_rng(s)
        prog = sub.program([DenseWeights(W, np.zeros((1, 128)))], r)
        outs.append(np.abs(sub.run(prog, x, r, ["identity"], t=t)).mean())
    return np.mean(outs)


def test_global_drift_compensation_restores_mean_output_after_one_day():
    y0 = _mean_abs_output(0.0, True)
    y_day = _mean_abs_output(86400.0, True)
    y_day_raw = _mean_abs_output(86400.0, False)
    assert abs(y_day / y0 - 1) < 0.02
    assert y_day_raw / y0 < 0.8            # without compensation the drift is plainly visible


def test_reram_sigma_interpolates_between_fitted_times():
    rr = ReRAMNoise()
    g = np.linspace(0, 40, 9)
    for t, c in zip(rr.times, rr.coeffs):
        ref = np.abs(sum(ck * (g / 40.0) ** k for k, ck in enumerate(c)))
        assert np.allclose(rr.sigma_at(g, t), ref)
    mid = rr.sigma_at(g, math.sqrt(86400.0 * 172800.0))     # halfway in log t
    assert np.allclose(mid, 0.5 * (rr.sigma_at(g, 86400.0) + rr.sigma_at(g, 172800.0)))
    assert np.allclose(rr.sigma_at(g, 1e9), rr.sigma_at(g, 172800.0))
    # relaxation redraws around the target with σ_t
    gt = np.full(N, 20.0)
    gr = rr.apply_drift_noise(gt, gt, 86400.0, np.random.default_rng(3))
    sig = float(rr.sigma_at(np.array(20.0), 86400.0))
    assert abs(gr.std(ddof=1) - sig) < K * sig / math.sqrt(2 * (N - 1))


@pytest.mark.parametrize("kw, name", [
    ({"g_max": 0.0}, "g_max"), ({"g_max": -25.0}, "g_max"), ({"prog_noise_scale": -1.0}, "prog_noise_scale"),
    ({"read_noise_scale": -0.1}, "read_noise_scale"), ({"drift_scale": -1.0}, "drift_scale"),
    ({"t0": 0.0}, "t0"), ({"t_read": -1.0}, "t_read"), ({"prog_coeff": []}, "prog_coeff"),
])
def test_bad_pcm_parameters(kw, name):
    with pytest.raises(ValueError, match=name):
        PCMNoise(**kw)
    with pytest.raises(ValueError, match=name):
        substrates.get("pcm", noise=kw)


def test_negative_time_rejected():
    pcm = PCMNoise()
    with pytest.raises(ValueError, match="t="):
        pcm.apply_drift_noise(np.ones(3), np.zeros(3), -1.0)
    with pytest.raises(ValueError, match="t_inference"):
        substrates.get("pcm", t_inference=-5.0)
