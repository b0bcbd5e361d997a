"""PolyStep: polytope geometry, rotations, softmax/barycentre maths, subspace, schedules, errors."""

from __future__ import annotations

import numpy as np
import pytest

import neurozo
from neurozo.learners.polystep import (_Subspace, barycentric_step, polytope_vertices, random_rotations,
                                       schedule_value, softmax_weights)
from neurozo.models.mlp import MLP


@pytest.mark.parametrize("kind,count", [("orthoplex", lambda p: 2 * p), ("simplex", lambda p: p + 1),
                                        ("cube", lambda p: 2 ** p)])
@pytest.mark.parametrize("p", [1, 2, 5])
def test_vertices_are_unit_and_mean_centred(kind, count, p):
    V = polytope_vertices(kind, p)
    assert V.shape == (count(p), p)
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(V.sum(axis=0), 0.0, atol=1e-12)
    # tight frame: Σ_j v_j v_jᵀ = (V/p)·I (what the first-order step size relies on)
    np.testing.assert_allclose(V.T @ V, len(V) / p * np.eye(p), atol=1e-12)


def test_simplex_vertices_are_equiangular():
    V = polytope_vertices("simplex", 4)
    G = V @ V.T
    off = G[~np.eye(5, dtype=bool)]
    np.testing.assert_allclose(off, -1 / 4, atol=1e-12)


def test_rotations_are_proper_and_biased_column():
    rng = np.random.default_rng(0)
    R = random_rotations(rng, 50, 4)
    np.testing.assert_allclose(np.einsum("npq,npr->nqr", R, R), np.broadcast_to(np.eye(4), (50, 4, 4)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    bias = rng.standard_normal((50, 4))
    Rb = random_rotations(rng, 50, 4, bias)
    np.testing.assert_allclose(Rb[:, :, 0], bias / np.linalg.norm(bias, axis=1, keepdims=True), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(Rb), 1.0, atol=1e-12)


def test_softmax_weights():
    C = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]])
    W = softmax_weights(C, 0.5)
    ref = np.exp(-C / 0.5) / np.exp(-C / 0.5).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(W, ref, rtol=1e-12)
    np.testing.assert_allclose(softmax_weights(C + 1000.0, 0.5), ref, rtol=1e-12)   # shift-invariant, stable
    np.testing.assert_allclose(softmax_weights(C, 1e-6)[0], [1, 0, 0])                 # ε → 0: argmin


def test_barycentric_step_uniform_and_one_hot():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 2))
    R = random_rotations(rng, 3, 2)
    V = polytope_vertices("orthoplex", 2)
    np.testing.assert_allclose(barycentric_step(X, R, V, 0.7, np.full((3, 4), 0.25)), X, atol=1e-12)
    W = np.zeros((3, 4))
    W[:, 2] = 1
    np.testing.assert_allclose(barycentric_step(X, R, V, 0.7, W), X + 0.7 * (R @ V[2]), atol=1e-12)


@pytest.mark.parametrize("kind", ["orthoplex", "simplex", "cube"])
def test_first_order_step_is_a_gradient_step(kind):
    # linear cost C_j = gᵀ(X + c̄ρ R v_j): for large ε, ΔX = −(s c̄ ρ/(ε p))·g (tight frame)
    p, s, rho, eps = 3, 0.5, 1.0, 1e4
    rng = np.random.default_rng(2)
    g = rng.standard_normal(p)
    X = np.zeros((1, p))
    R = random_rotations(rng, 1, p)
    V = polytope_vertices(kind, p)
    C = (0.5 * rho * (R[0] @ V.T).T @ g)[None]
    dX = barycentric_step(X, R, V, s, softmax_weights(C, eps)) - X
    np.testing.assert_allclose(dX[0], -(s * 0.5 * rho / (eps * p)) * g, rtol=1e-3)


def test_subspace_perturbations_are_low_rank_and_linear():
    model = MLP([6, 5, 3])
    sub = _Subspace(model, rank=2, p=4, seed=0, epoch=0)
    assert sub.dim == 5 * 2 + 5 + 3 * 2 + 3
    base = np.zeros(model.n_params)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((sub.n_particles, 4))
    X.reshape(-1)[sub.dim:] = 0        # padding coordinates
    theta = sub.to_theta(base, X)
    for k in range(2):
        assert np.linalg.matrix_rank(model.view(theta, f"W{k}")) <= 2
    # apply() of one particle's displacement equals to_theta's difference
    d = rng.standard_normal((1, 4))
    th = theta[None].copy()
    sub.apply(th, X, np.array([1]), d)
    X2 = X.copy()
    X2[1] += d[0]
    np.testing.assert_allclose(th[0], sub.to_theta(base, X2), atol=1e-12)


def test_schedules():
    for kind in ["linear", "cosine", "exponential"]:
        assert schedule_value(kind, 0.1, 0.01, 0, 100) == pytest.approx(0.1)
        assert schedule_value(kind, 0.1, 0.01, 100, 100) == pytest.approx(0.01)
        assert schedule_value(kind, 0.1, 0.01, 500, 100) == pytest.approx(0.01)
        vals = [schedule_value(kind, 0.1, 0.01, t, 100) for t in range(101)]
        assert all(v > 0 for v in vals) and all(np.diff(vals) <= 1e-15)
    assert schedule_value("constant", 0.1, 0.01, 50, 100) == 0.1


def test_polystep_learns_digits_and_counts_evaluations():
    L = {"name": "polystep", "polytope": "simplex", "eps": 0.3, "particles_per_step": 8, "rank": 8}
    r = neurozo.run(task="digits", learner=L, budget=72 * 40, seed=0)
    assert r.final["evaluations"] == 72 * 40            # 8 particles × 9 simplex vertices per step
    assert r.final["test_acc"] > 0.3                    # chance 0.1


@pytest.mark.parametrize("polytope,biased", [("simplex", True), ("cube", False)])
def test_polystep_variants_run_and_improve(polytope, biased):
    L = {"name": "polystep", "polytope": polytope, "particle_dim": 3, "biased_rotation": biased,
         "eps_schedule": "cosine", "radius_schedule": "linear", "schedule_steps": 20}
    r = neurozo.run(task="digits", learner=L, budget=1600, seed=1)
    assert r.status == "finished"
    assert r.history.train_loss.iloc[-1] < r.history.train_loss.iloc[1]


@pytest.mark.parametrize("kw,param", [
    ({"rank": 0}, "rank"), ({"particle_dim": 0}, "particle_dim"), ({"particles_per_step": 0}, "particles_per_step"),
    ({"eps": 0.0}, "eps"), ({"eps": -0.1}, "eps"), ({"step": 0}, "step"), ({"probe": -1}, "probe"),
    ({"num_probe": 0}, "num_probe"), ({"polytope": "hexagon"}, "polytope"),
    ({"eps_schedule": "linear", "eps_final": 0.0}, "eps_final"),
    ({"eps_schedule": "linear", "eps_final": -0.05}, "eps_final"),
    ({"radius_schedule": "cosine", "radius_final": -1.0}, "radius_final"),
    ({"eps_schedule": "sawtooth"}, "eps_schedule"), ({"schedule_steps": 0}, "schedule_steps"),
    ({"polytope": "cube", "particle_dim": 20}, "particle_dim"), ({"cost_scale": "max"}, "cost_scale"),
])
def test_bad_parameters_raise_naming_them(kw, param):
    with pytest.raises(ValueError, match=rf"^{param}="):
        neurozo.learners.get("polystep", **kw)


def test_rank_wider_than_a_layer_raises_before_evaluating():
    with pytest.raises(ValueError, match=r"^rank=11 .*<= 10"):
        neurozo.run(task="digits", learner={"name": "polystep", "rank": 11}, budget=1000, seed=0)
