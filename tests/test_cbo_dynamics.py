"""CBODynamics: convergence theory, schedules, batches, resampling, termination, bad input."""

import math

import numpy as np
import pytest

from neurozo.learners.cbo_dynamics import CBODynamics
from neurozo.learners.cbo_schedules import effective_sample_size
from neurozo.tasks.functions import Rastrigin


def sphere(X):
    return np.sum(X * X, axis=-1)


def test_anisotropic_cbo_decay_rate_on_a_convex_quadratic():
    """Mean squared distance to the minimiser decays like exp(−(2λ − σ²) t) for anisotropic noise.

    Theory (Fornasier, Klock & Riedl 2021, anisotropic CBO; Carrillo et al. 2021): with
    V(t) = E‖X_t − x*‖² and the consensus at x* (the limit α → ∞, N → ∞),
        dV/dt = −2λ E⟨X − x*, X − c⟩ + σ² E Σ_j (X − c)_j² = −(2λ − σ²) V,
    independent of the dimension (isotropic noise would give −(2λ − dσ²)). The Euler–Maruyama
    step multiplies each coordinate's E(x − c)_j² by (1 − λdt)² + σ²dt, i.e. a slope of
    log((1 − λdt)² + σ²dt)/dt = −1.755 for λ = 1, σ = 0.5, dt = 0.01 (theory −1.75).
    Tolerance: each coordinate is a geometric random walk whose squared value has
    log-variance ≈ 4σ²T = 2 at T = 2, so the relative standard error of V(T) over
    n = M·N·d = 20 000 coordinates is √((e² − 1)/n) ≈ 0.018, a slope SE of ≈ 0.009; we allow
    0.06 (5 SE plus the small finite-α/finite-N slow-down ϑ of the theorem). A wrong law is far
    outside: σ in place of σ² gives −1.5, no noise −2, isotropic noise +0.
    """
    lam, sigma, dt = 1.0, 0.5, 0.01
    dyn = CBODynamics(sphere, M=10, N=500, d=4, init_low=-1, init_high=1, seed=0, noise="anisotropic",
                      lam=lam, sigma=sigma, alpha=1e3, alpha_schedule="constant", dt=dt, max_it=200)
    V = [np.mean(np.sum(dyn.x ** 2, axis=-1))]
    while dyn.step():
        V.append(np.mean(np.sum(dyn.x ** 2, axis=-1)))
    t = np.arange(len(V)) * dt
    slope = np.polyfit(t, np.log(V), 1)[0]
    assert abs(slope - (-(2 * lam - sigma ** 2))) < 0.06, slope


def test_rastrigin_is_solved_in_every_run():
    # the benchmark's setting (CBXpy: 100/100 runs) with M = 10: every run reaches the global basin
    dyn = CBODynamics(Rastrigin(dim=20), M=10, N=40, d=20, init_low=-3, init_high=3, seed=1, noise="anisotropic",
                      alpha=30.0, sigma=10.1, dt=0.01, lam=1.0, max_it=5000)
    dyn.optimize()
    assert np.all(np.abs(dyn.consensus).max(axis=1) < 0.25)
    assert np.all(dyn.term_reason == "max_it") and np.all(dyn.num_f_eval == 5000 * 40)
    assert np.all(dyn.alpha == 1e5)  # ×1.05 per step, capped


def test_same_seed_same_trajectory():
    kw = dict(M=3, N=10, d=4, seed=5, noise="isotropic", max_it=30, batch_size=4, resample=["no_improvement"])
    a, b = CBODynamics(sphere, **kw), CBODynamics(sphere, **kw)
    a.optimize()
    b.optimize()
    assert np.array_equal(a.x, b.x) and np.array_equal(a.best_x, b.best_x)
    c = CBODynamics(sphere, **{**kw, "seed": 6})
    c.optimize()
    assert not np.array_equal(a.x, c.x)


def test_ess_schedule_reaches_eta_n():
    rng = np.random.default_rng(0)
    f = lambda X: sphere(X) * rng.uniform(0.5, 2)  # noqa: E731 - a changing scale
    dyn = CBODynamics(f, M=4, N=60, d=3, seed=0, alpha_schedule="ess", eta=0.3, max_it=5)
    for _ in range(5):
        dyn.step()
        ess = effective_sample_size(dyn.energy, dyn.alpha)
        np.testing.assert_allclose(ess, 0.3 * 60, atol=1e-3 * 60)


def test_multiplicative_alpha_and_epoch_schedules():
    dyn = CBODynamics(sphere, M=2, N=10, d=2, seed=0, alpha=2.0, alpha_factor=1.5, alpha_max=10.0, max_it=None)
    for k in range(1, 6):
        dyn.step()
        np.testing.assert_allclose(dyn.alpha, min(2.0 * 1.5 ** k, 10.0))
    dyn = CBODynamics(sphere, M=1, N=12, d=2, seed=0, alpha=1.0, alpha_schedule="double_per_epoch",
                      sigma=2.0, sigma_schedule="log_cooling", batch_size=4, max_it=None)
    assert dyn.epoch_steps == 3  # one epoch = one pass over the particle batches
    for _ in range(9):
        dyn.step()
    assert dyn.epoch == 3 and dyn.alpha[0] == 8.0
    assert math.isclose(dyn.sigma, 2.0 / math.log2(3 + 2))  # σ_e = σ_0 / log2(e + 2)


@pytest.mark.parametrize("partial", [True, False])
def test_particle_batches(partial):
    calls = []

    def f(X):
        calls.append(X.shape)
        return sphere(X)

    dyn = CBODynamics(f, M=3, N=12, d=2, seed=0, batch_size=5, batch_partial=partial, max_it=None)
    x0 = dyn.x.copy()
    dyn.step()
    assert calls == [(3, 5, 2)] and np.all(dyn.num_f_eval == 5)
    moved = np.any(dyn.x != x0, axis=2).sum(axis=1)
    assert np.all(moved == (5 if partial else 12))
    # every particle is in exactly one batch per pass of ⌈N/B⌉ = 3 steps... except the last short one
    seen = np.zeros((3, 12), int)
    dyn = CBODynamics(sphere, M=3, N=12, d=2, seed=0, batch_size=4, max_it=None)
    for _ in range(3):
        e0 = dyn.energy.copy()
        dyn.step()
        seen += (dyn.energy != e0)
    assert np.all(seen == 1)


def test_runs_terminate_individually():
    shift = np.array([0.0, 1.0])  # run 1 cannot get below 1.0
    shapes = []

    def f(X):
        shapes.append(X.shape[0])
        off = shift if X.shape[0] == 2 else shift[1:]
        return sphere(X) + off[:, None]

    dyn = CBODynamics(f, M=2, N=20, d=2, seed=0, energy_tol=1e-3, max_it=300, sigma=1.0, noise="anisotropic")
    dyn.optimize()
    assert dyn.term_reason[0] == "energy_tol" and dyn.term_reason[1] == "max_it"
    assert dyn.num_f_eval[0] < dyn.num_f_eval[1] == 300 * 20
    assert 1 in shapes  # after run 0 stopped, only run 1 was evaluated


def test_other_termination_criteria():
    dyn = CBODynamics(sphere, M=3, N=10, d=2, seed=0, max_it=None, max_eval=95)
    dyn.optimize()
    assert np.all(dyn.num_f_eval <= 95) and np.all(dyn.term_reason == "max_eval")
    dyn = CBODynamics(sphere, M=2, N=10, d=2, seed=0, max_it=5000, sigma=0.0, diff_tol=1e-6)
    dyn.optimize()
    assert np.all(dyn.term_reason == "diff_tol") and dyn.it < 5000
    dyn = CBODynamics(sphere, M=2, N=10, d=2, seed=0, max_it=5000, sigma=0.0, stagnation_patience=10,
                      stagnation_tol=1e-12)
    dyn.optimize()
    assert np.all(dyn.term_reason == "stagnation") and dyn.it < 5000
    # f(c) is evaluated once per run and step on top of the N particles
    assert np.all(dyn.num_f_eval % 11 == 0) and dyn.num_f_eval.max() == dyn.it * 11


def test_resampling_heuristics():
    # σ = 0: the swarm collapses, the consensus stops moving → independent noise is added
    dyn = CBODynamics(sphere, M=2, N=10, d=2, seed=0, sigma=0.0, max_it=400, resample=["consensus_stagnation"],
                      resample_tol=1e-4, resample_patience=5)
    dyn.optimize()
    assert np.all(dyn.num_resampled > 0)
    spread_with = np.std(dyn.x, axis=1).max()
    ref = CBODynamics(sphere, M=2, N=10, d=2, seed=0, sigma=0.0, max_it=400)
    ref.optimize()
    assert spread_with > np.std(ref.x, axis=1).max()
    dyn = CBODynamics(lambda X: np.ones(X.shape[:2]), M=2, N=10, d=2, seed=0, max_it=12, resample=["no_improvement"],
                      resample_patience=5)
    dyn.optimize()
    assert np.all(dyn.num_resampled == 2)  # best never improves after step 1: resampled at steps 6 and 11


def test_nan_objective_values_do_not_poison_the_run():
    def f(X):
        E = sphere(X)
        E[X[..., 0] > 0.5] = np.nan  # half-space where the objective is undefined
        return E

    dyn = CBODynamics(f, M=5, N=30, d=3, seed=0, max_it=400, noise="anisotropic", sigma=1.0)
    dyn.optimize()
    assert np.all(np.isfinite(dyn.x)) and np.all(np.isfinite(dyn.consensus))
    assert np.all(np.abs(dyn.consensus).max(axis=1) < 0.05)
    assert np.all(np.isfinite(dyn.best_energy))


def test_heaviside_correction_freezes_particles_better_than_consensus():
    f = Rastrigin(dim=3)  # non-convex: the consensus (an average) is worse than some particles
    dyn = CBODynamics(f, M=2, N=20, d=3, seed=0, correction="heaviside", sigma=1.0, alpha=1.0,
                      noise="anisotropic", max_it=None)
    x0 = dyn.x.copy()
    E0 = f.evaluate(x0)
    dyn.step()
    fc = f.evaluate(dyn.consensus)
    still = ~np.any(dyn.x != x0, axis=2)
    assert np.array_equal(still, E0 <= fc[:, None])
    assert still.any() and (~still).any()
    assert np.all(dyn.num_f_eval == 21)  # N particles + f(c)


def test_polarized_cbo_finds_both_minima():
    a, b = np.array([-2.0, 0.0]), np.array([2.0, 0.0])

    def f(X):
        return np.minimum(np.sum((X - a) ** 2, -1), np.sum((X - b) ** 2, -1))

    kw = dict(M=1, N=100, d=2, init_low=-4, init_high=4, seed=3, sigma=0.5, alpha=30.0, alpha_schedule="constant",
              noise="isotropic", max_it=400)
    polar = CBODynamics(f, scheme="polar", kappa=0.5, kernel_alpha=False, **kw)
    polar.optimize()
    near_a = np.linalg.norm(polar.x[0] - a, axis=1) < 0.5
    near_b = np.linalg.norm(polar.x[0] - b, axis=1) < 0.5
    assert (near_a | near_b).sum() >= 95 and near_a.sum() >= 10 and near_b.sum() >= 10
    plain = CBODynamics(f, **kw)
    plain.optimize()
    na = (np.linalg.norm(plain.x[0] - a, axis=1) < 0.5).sum()
    nb = (np.linalg.norm(plain.x[0] - b, axis=1) < 0.5).sum()
    assert min(na, nb) <= 2  # plain CBO gathers around one of them


def test_consensus_hopping_converges_on_a_quadratic():
    dyn = CBODynamics(sphere, M=4, N=50, d=3, seed=0, scheme="hopping", sigma=0.05, alpha=100.0,
                      alpha_schedule="constant", max_it=200)
    dyn.optimize()
    assert np.all(np.linalg.norm(dyn.consensus, axis=1) < 0.1)


@pytest.mark.parametrize("noise", ["covariance", "sampling", "isotropic"])
def test_other_noises_minimise_a_quadratic(noise):
    dyn = CBODynamics(sphere, M=3, N=40, d=3, seed=0, noise=noise, sigma=0.5 if noise != "isotropic" else 0.5,
                      alpha=10.0, alpha_schedule="constant", max_it=800)
    dyn.optimize()
    assert np.all(np.linalg.norm(dyn.consensus, axis=1) < 0.2)


@pytest.mark.parametrize("kw,param", [
    (dict(N=1), "N=1"),
    (dict(dt=0.0), "dt=0.0"),
    (dict(dt=-0.1), "dt=-0.1"),
    (dict(alpha=-1.0), "alpha=-1.0"),
    (dict(sigma=-0.5), "sigma=-0.5"),
    (dict(batch_size=11), "batch_size=11"),
    (dict(noise="gaussian"), "noise='gaussian'"),
    (dict(scheme="swarm"), "scheme='swarm'"),
    (dict(alpha_schedule="cosine"), "alpha_schedule='cosine'"),
    (dict(resample=["restart"]), "resample='restart'"),
    (dict(eta=1.5), "eta=1.5"),
    (dict(temperature=1.0), "temperature"),
])
def test_bad_input_names_the_parameter(kw, param):
    base = dict(M=2, N=10, d=3)
    base.update(kw)
    with pytest.raises(ValueError, match=param.replace("[", r"\[").replace("(", r"\(")):
        CBODynamics(sphere, **base)


def test_bad_initial_positions():
    with pytest.raises(ValueError, match="N=1"):
        CBODynamics(sphere, x=np.zeros((3, 1, 2)))
    with pytest.raises(ValueError, match="x="):
        CBODynamics(sphere, x=np.full((1, 4, 2), np.nan))
    with pytest.raises(ValueError, match="f="):
        CBODynamics(42, M=1, N=4, d=2)


def test_update_diff_is_the_frobenius_step_over_n():
    dyn = CBODynamics(sphere, M=3, N=8, d=2, seed=0, track_update_diff=True, max_it=None)
    x0 = dyn.x.copy()
    dyn.step()
    np.testing.assert_allclose(dyn.update_diff, np.linalg.norm(dyn.x - x0, axis=(1, 2)) / 8, rtol=1e-12)
    assert np.all(np.isnan(CBODynamics(sphere, M=3, N=8, d=2, seed=0).update_diff))  # not tracked by default
