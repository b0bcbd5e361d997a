"""Zeroth-order gradient estimators: unbiasedness on a quadratic, and bad input.

On L(θ) = ½(θ − θ*)ᵀH(θ − θ*) a central (antithetic) difference is exact,
L(θ + e) − L(θ − e) = 2⟨∇L, e⟩, so the estimators' means are exactly
E[ĝ_SPSA] = ∇L (E[ΔΔᵀ] = I), E[ĝ_ES] ∝ ∇L and E[g_EGGROLL] = √N·σ²·∇L
(E[⟨∇, E⟩E] = σ²∇ for E = (σ/√r)ABᵀ). Averaged over n probes the error
of the mean shrinks like √(k·D/n) for a dimension D and a per-probe variance
factor k (k = 1 for SPSA; a few for low-rank probes), so cos(ĝ, ∇) ≈
1/√(1 + k·D/n). With D = 54 and n = 10 000 probe pairs that is ≥ 0.997 for
k ≤ 2, against the required 0.99 (k·D/n ≤ 0.02): the tests below have
several standard errors of margin at their fixed seeds.
"""

import dataclasses

import numpy as np
import pytest

import neurozo
from neurozo.learners import get
from neurozo.learners.eggroll import lowrank_thetas
from neurozo.learners.ga import reconstruct
from neurozo.models import get as get_model
from neurozo.models.population import LowRank

M, N = 6, 8
VIEWS = {"W0": (slice(0, M * N), (M, N)), "b0": (slice(M * N, M * N + M), (M,))}
D = M * N + M


@pytest.fixture(scope="module")
def quadratic():
    rng = np.random.default_rng(0)
    h = rng.uniform(0.5, 2.0, D)
    star = rng.standard_normal(D)
    theta = rng.standard_normal(D)

    def loss(thetas):
        d = np.atleast_2d(thetas) - star
        return 0.5 * (d * d * h).sum(axis=-1)

    return theta, loss, h * (theta - star)


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_spsa_estimate_is_unbiased(quadratic):
    theta, loss, grad = quadratic
    q = 10_000
    learner = get("spsa", n_directions=q)
    state = learner.init(theta, seed=1)
    pop, state = learner.ask(state)
    assert pop.thetas.shape == (2 * q, D)
    g = learner.gradient(state, loss(pop.thetas))
    assert cosine(g, grad) >= 0.99
    # per-coordinate variance ≤ ‖∇‖²/q: the relative error of the mean is ≤ √(D/q) ≈ 0.073 (1σ)
    assert np.linalg.norm(g - grad) / np.linalg.norm(grad) < 3 * np.sqrt(D / q)


def test_mezo_estimate_is_unbiased_and_regenerates_z(quadratic):
    theta, loss, grad = quadratic
    n = 10_000
    learner = get("mezo", n_directions=n)
    state = learner.init(theta, seed=2)
    pop, state = learner.ask(state)
    # no stored perturbation: the state is θ, the seed, the step and the optimiser's moments
    assert {f.name for f in dataclasses.fields(state)} == {"mean", "seed", "step", "opt"}
    g = learner.gradient(state, loss(pop.thetas))
    assert cosine(g, grad) >= 0.99
    # Gaussian z: per-coordinate variance ‖∇‖² + ∇_i², so the relative error is ≈ √((D+1)/n) (1σ)
    assert np.linalg.norm(g - grad) / np.linalg.norm(grad) < 3 * np.sqrt((D + 1) / n)
    # the population is θ ± εz with z regenerated from the step's seed
    z0 = learner.z(state.seed, state.step, 0, D)
    np.testing.assert_allclose(pop.thetas[0], theta + learner.params.eps * z0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(pop.thetas[n], theta - learner.params.eps * z0, rtol=0, atol=1e-15)


@pytest.mark.parametrize("rank_shaping", [False, True])
def test_openes_estimate_points_along_the_gradient(quadratic, rank_shaping):
    theta, loss, grad = quadratic
    learner = get("openes", popsize=20_000, sigma=0.01, rank_shaping=rank_shaping)
    state = learner.init(theta, seed=3)
    pop, state = learner.ask(state)
    g = learner.gradient(state, loss(pop.thetas))
    assert cosine(g, grad) >= 0.99


@pytest.mark.parametrize("rank", [1, 4])
def test_eggroll_estimate_is_unbiased(quadratic, rank):
    theta, loss, grad = quadratic
    P, sigma = 20_000, 0.01
    learner = get("eggroll", popsize=P, rank=rank, sigma=sigma, fitness="none")
    state = learner.init(theta, seed=4, views=VIEWS)
    pop, state = learner.ask(state)
    assert isinstance(pop, LowRank)
    A, B = pop.factors["W0"]
    assert A.shape == (P, M, rank) and B.shape == (P, N, rank)
    np.testing.assert_array_equal(A[: P // 2], -A[P // 2:])   # antithetic pairs share A, B (E → −E)
    np.testing.assert_array_equal(B[: P // 2], B[P // 2:])
    thetas = lowrank_thetas(pop, state.layout)
    g = learner.gradient(state, loss(thetas))
    mean_g = g / (np.sqrt(P) * sigma ** 2)                      # E[g] = √N σ² ∇L
    assert cosine(mean_g, grad) >= 0.99
    # low-rank probes have heavier tails than Gaussian ones (k ≈ 2–3): bound 3σ at k = 3
    assert np.linalg.norm(mean_g - grad) / np.linalg.norm(grad) < 3 * np.sqrt(3 * D / (P // 2))


def test_eggroll_standardised_fitness_points_along_the_gradient(quadratic):
    theta, loss, grad = quadratic
    learner = get("eggroll", popsize=20_000, rank=2, sigma=0.01)
    state = learner.init(theta, seed=5, views=VIEWS)
    pop, state = learner.ask(state)
    assert cosine(learner.gradient(state, loss(lowrank_thetas(pop, state.layout))), grad) >= 0.99


def test_eggroll_lowrank_forward_equals_materialised_members():
    model = get_model("mlp", sizes=[8, 6, 3])
    theta0 = model.init(np.random.default_rng(0))
    learner = get("eggroll", popsize=6, rank=2, sigma=0.1)
    state = learner.init(theta0, seed=0, views=model.views)
    pop, state = learner.ask(state)
    x = np.random.default_rng(1).uniform(0, 1, (5, 8))
    sub = neurozo.substrates.get("ideal", dtype="float64")
    out_lr = model.forward(pop, x, sub, np.random.default_rng(2))
    out_full = model.forward(lowrank_thetas(pop, state.layout), x, sub, np.random.default_rng(2))
    np.testing.assert_allclose(out_lr, out_full, rtol=1e-10, atol=1e-10)


def test_ga_individuals_are_rebuilt_from_their_seed_chains():
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal(30)
    learner = get("ga", popsize=10, truncation=3, elitism=1, sigma=0.1, sigma_decay=0.9)
    state = learner.init(theta0, seed=7)
    for _ in range(6):
        pop, state = learner.ask(state)
        state = learner.tell(state, pop, (pop.thetas ** 2).sum(axis=1))
    assert len(state.chains) == 10 and max(len(c) for c in state.chains) >= 5
    for chain, theta in zip(state.chains, state.thetas):
        np.testing.assert_array_equal(reconstruct(theta0, chain), theta)
    # elitism: the previous generation's best survives unchanged and is the centre
    np.testing.assert_array_equal(state.thetas[0], learner.center(state))


def test_spsa_gains_follow_spall():
    learner = get("spsa", a=0.5, c=0.1, A=10, alpha=0.602, gamma=0.101)
    for k in (0, 1, 100):
        ak, ck = learner.gains(k)
        assert ak == pytest.approx(0.5 / (10 + k + 1) ** 0.602)
        assert ck == pytest.approx(0.1 / (k + 1) ** 0.101)


@pytest.mark.parametrize("name,kw,param", [
    ("spsa", {"a": 0.0}, "a"),
    ("spsa", {"c": -0.1}, "c"),
    ("spsa", {"A": -2.0}, "A"),                 # A + k + 1 ≤ 0: the gain schedule would go negative
    ("spsa", {"alpha": -0.6}, "alpha"),
    ("spsa", {"n_directions": 0}, "n_directions"),
    ("mezo", {"eps": 0.0}, "eps"),
    ("mezo", {"eps": -1e-3}, "eps"),
    ("mezo", {"lr": 0.0}, "lr"),
    ("mezo", {"n_directions": 0}, "n_directions"),
    ("openes", {"popsize": 1}, "popsize"),
    ("openes", {"popsize": 7}, "popsize"),      # odd with antithetic sampling
    ("openes", {"sigma": 0.0}, "sigma"),
    ("openes", {"sigma_decay": 0.0}, "sigma_decay"),
    ("openes", {"sigma_min": -0.01}, "sigma_min"),
    ("openes", {"sigma": 0.05, "sigma_min": 0.1}, "sigma_min"),
    ("eggroll", {"popsize": 1}, "popsize"),
    ("eggroll", {"popsize": 9}, "popsize"),     # antithetic pairs
    ("eggroll", {"rank": 0}, "rank"),
    ("eggroll", {"sigma": -0.1}, "sigma"),
    ("eggroll", {"sigma_decay": 1.5}, "sigma_decay"),
    ("eggroll", {"sigma_min": -1.0}, "sigma_min"),
    ("eggroll", {"fitness": "softmax"}, "fitness"),
    ("eggroll", {"optimizer": "rmsprop"}, "optimizer"),
    ("ga", {"popsize": 1}, "popsize"),
    ("ga", {"truncation": 0}, "truncation"),
    ("ga", {"popsize": 8, "truncation": 9}, "truncation"),
    ("ga", {"truncation": 2, "elitism": 3}, "elitism"),
    ("ga", {"sigma": 0.0}, "sigma"),
    ("ga", {"sigma_decay": -0.5}, "sigma_decay"),
])
def test_bad_parameters_raise_naming_the_parameter(name, kw, param):
    with pytest.raises(ValueError, match=rf"^{param}="):
        get(name, **kw)


def test_eggroll_rank_wider_than_a_layer_is_refused():
    model = get_model("mlp", sizes=[64, 32, 10])
    get("eggroll", rank=10).check_model(model)                  # 10 = the narrowest width (W1 is 10×32)
    with pytest.raises(ValueError, match=r"^rank=11 .*W1"):
        get("eggroll", rank=11).check_model(model)
    with pytest.raises(ValueError, match=r"^rank=11"):
        neurozo.run(task="digits", learner={"name": "eggroll", "rank": 11}, budget=640, seed=0, progress=False)


def test_eggroll_ask_without_views_is_refused():
    learner = get("eggroll")
    with pytest.raises(ValueError, match=r"^views="):
        learner.ask(learner.init(np.zeros(5), seed=0))
