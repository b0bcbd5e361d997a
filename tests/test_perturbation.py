"""Weight perturbation, node perturbation (noise and activity variants) and intrinsic NP.

Correctness: averaged over many probes, each estimate points along the true gradient
of a small linear network (computed independently with torch autograd). Tolerances:
an estimator ĝ = g + e whose noise e has per-coordinate variance ≈ ‖g‖²·k/N (k the
dimension of one probe, N the probes) has cos(ĝ, g) ≈ 1/√(1 + D·k/N·c) for D
coordinates; the probe counts below make that ≥ 0.97 for every case, so the
thresholds (0.9; 0.8 for the biased activity variant) leave a wide margin while a
sign error, a wrong layer or transposed factor gives cos ≈ 0 or < 0.
"""

from __future__ import annotations

import numpy as np
import pytest

import neurozo
from neurozo.learners.base import Problem
from neurozo.models.population import Members
from neurozo.substrates.base import Substrate
from neurozo.substrates.ideal import FloatSynapse, RateNeuron


class GaussianReadSynapse(FloatSynapse):
    """Test substrate: float products plus N(0, σ_r²) read noise on every output."""

    def __init__(self, read_noise: float = 0.05):
        super().__init__("float64")
        self.read_noise = read_noise

    def read(self, prog, x, rng, costs, t=0.0, spiking=False):
        y = super().read(prog, x, rng, costs, t, spiking)
        return y + self.read_noise * rng.standard_normal(y.shape)


def noisy_substrate(read_noise=0.05):
    return Substrate(GaussianReadSynapse(read_noise), RateNeuron(), name="gaussian-read")


def cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def linear_problem(substrate=None, sizes=(8, 5, 3), batch=16, seed=0):
    """A small linear net (identity activations) on random data; θ and the torch-true gradient."""
    pytest.importorskip("torch")
    from neurozo.learners.bptt import BPTT
    from neurozo.models.mlp import MLP
    from neurozo.tasks.base import cross_entropy

    rng = np.random.default_rng(seed)
    model = MLP(list(sizes), activation="identity")
    sub = substrate or neurozo.substrates.get("ideal", dtype="float64")
    theta = model.init(rng) * 3
    x = rng.uniform(0, 1, (batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    prob = Problem(model, sub, lambda out, yy, per_sample=False: cross_entropy(out, yy, per_sample),
                   np.random.default_rng(seed + 1))
    prob.set_batch(x, y)
    _, g = BPTT().gradient(theta, model, neurozo.substrates.get("ideal"), x, y)
    return model, sub, prob, theta, g


def test_true_gradient_matches_finite_differences():
    # the reference itself: central differences of the float64 loss, O(h²) error
    model, sub, prob, theta, g = linear_problem()
    h = 1e-5
    idx = [0, 7, model.views["b0"][0].start, model.views["W1"][0].start + 3, model.n_params - 1]
    for i in idx:
        e = np.zeros_like(theta)
        e[i] = h
        fd = (prob.evaluate(theta + e)[0] - prob.evaluate(theta - e)[0]) / (2 * h)
        assert fd == pytest.approx(g[i], rel=1e-3, abs=1e-5)


# The activity variant is biased by design: in a deep net δa_k also carries the noise the
# layers below propagated, so E[ĝ] ≈ C·g with C = E[δa δaᵀ]·M/E‖δa‖² positive definite —
# aligned (cos > 0) but not parallel; with one layer δa = ξ and it is as good as "noise".
@pytest.mark.parametrize("variant,sizes,threshold", [("noise", (8, 5, 3), 0.9), ("activity", (8, 3), 0.9),
                                                    ("activity", (8, 5, 3), 0.5)])
def test_node_perturbation_estimate_points_along_gradient(variant, sizes, threshold):
    model, sub, prob, theta, g = linear_problem(sizes=sizes)
    L = neurozo.learners.get("node-perturbation", popsize=4001, sigma=1e-3, variant=variant)
    state = L.init(theta, seed=3)
    pop, _ = L.ask(state, model, prob.x.shape[0])
    with sub.recording() as rec:
        losses = prob.evaluate(pop, per_sample=True)
    assert losses.shape == (4001, 16)
    assert len(rec) == model.n_layers
    est = L.estimate(pop, losses, rec, model)
    assert cos(est, g) > threshold
    if variant == "noise":   # unbiased: the magnitude matches too (within the 1/√N noise)
        assert np.linalg.norm(est) == pytest.approx(np.linalg.norm(g), rel=0.25)


def test_node_perturbation_noise_is_zero_for_the_clean_member_and_seeded():
    model, sub, prob, theta, g = linear_problem()
    L = neurozo.learners.get("node-perturbation", popsize=3, sigma=0.5)
    st = L.init(theta, 1)
    a, _ = L.ask(st, model, 16)
    b, _ = L.ask(st, model, 16)
    for na, nb in zip(a.node_noise, b.node_noise):
        assert np.all(na[0] == 0) and np.array_equal(na, nb)
        assert na[1:].std() == pytest.approx(0.5, rel=0.2)


def test_weight_perturbation_estimate_points_along_gradient():
    model, sub, prob, theta, g = linear_problem()
    L = neurozo.learners.get("weight-perturbation", popsize=4001, sigma=1e-4)
    st = L.init(theta, 0)
    pop, st = L.ask(st)
    assert np.array_equal(pop.thetas[0], theta)
    est = L.estimate(st, prob.evaluate(pop))
    assert cos(est, g) > 0.9


# like the activity variant: parallel to g for one layer, aligned (cos > 0) but preconditioned
# by the propagated read noise for two
@pytest.mark.parametrize("sizes,threshold", [((8, 3), 0.9), ((8, 5, 3), 0.5)])
def test_intrinsic_np_estimate_from_read_noise_only(sizes, threshold):
    # the gradient estimate comes from two noisy reads; averaged over many steps of the
    # same batch it points along the true gradient
    sub = noisy_substrate(0.02)
    model, sub, prob, theta, g = linear_problem(sub, sizes=sizes)
    L = neurozo.learners.get("intrinsic-np", reads=2)
    prog = sub.program(model.layer_weights(Members(theta[None])), prob.device_rng)
    total = np.zeros_like(theta)
    for _ in range(400):
        losses, recs = [], []
        for _ in range(2):
            with sub.recording() as rec:
                out = sub.run(prog, prob.x, prob.device_rng, model.activations)
            losses.append(prob.loss_fn(out, prob.y, per_sample=True)[0])
            recs.append(rec)
        total += L.estimate(model, np.array(losses), recs)
    assert cos(total, g) > threshold


def test_intrinsic_np_makes_no_update_without_noise():
    r = neurozo.run(task="digits", learner="intrinsic-np", budget=20, seed=0)
    assert r.history.test_acc.nunique() == 1
    assert r.final["evaluations"] == 20


def test_intrinsic_np_learns_on_a_noisy_substrate():
    r = neurozo.run(task="digits", substrate=noisy_substrate(0.05), learner={"name": "intrinsic-np", "lr": 0.01},
                    budget=600, seed=0)
    assert r.status == "finished"
    assert r.final["test_acc"] > 0.7          # chance is 0.1
    assert r.final["evaluations"] == 600


@pytest.mark.parametrize("variant", ["noise", "activity"])
def test_node_perturbation_learns_digits(variant):
    r = neurozo.run(task="digits", learner={"name": "node-perturbation", "variant": variant}, budget=600, seed=0)
    assert r.final["test_acc"] > 0.7          # chance is 0.1
    assert r.final["evaluations"] == 600


def test_weight_perturbation_learns_digits():
    r = neurozo.run(task="digits", learner={"name": "weight-perturbation"}, budget=1600, seed=0)
    assert r.final["test_acc"] > 0.3          # chance is 0.1


def test_node_perturbation_runs_on_lif():
    r = neurozo.run(task="digits", model={"name": "mlp", "sizes": [64, 16, 10]}, substrate="lif",
                    learner="node-perturbation", budget=40, seed=0)
    assert r.status == "finished"


def test_same_seed_same_history():
    a = neurozo.run(task="digits", learner="node-perturbation", budget=60, seed=4)
    b = neurozo.run(task="digits", learner="node-perturbation", budget=60, seed=4)
    assert np.array_equal(a.theta, b.theta)


@pytest.mark.parametrize("name,kw,param", [
    ("node-perturbation", {"popsize": 1}, "popsize"),
    ("node-perturbation", {"sigma": 0.0}, "sigma"),
    ("node-perturbation", {"sigma": -1.0}, "sigma"),
    ("node-perturbation", {"variant": "bogus"}, "variant"),
    ("node-perturbation", {"lr": 0.0}, "lr"),
    ("weight-perturbation", {"popsize": 1}, "popsize"),
    ("weight-perturbation", {"sigma": 0}, "sigma"),
    ("weight-perturbation", {"probe": "uniform"}, "probe"),
    ("intrinsic-np", {"reads": 1}, "reads"),
    ("intrinsic-np", {"weight_decay": -0.1}, "weight_decay"),
])
def test_bad_parameters_raise_naming_them(name, kw, param):
    with pytest.raises(ValueError, match=rf"^{param}="):
        neurozo.learners.get(name, **kw)


@pytest.mark.parametrize("name", ["node-perturbation", "intrinsic-np"])
def test_layer_learners_refuse_the_point_model(name):
    with pytest.raises(ValueError, match="model="):
        neurozo.run(task="sphere", learner=name, budget=10, seed=0)
