"""The network learner ``cbo``: init / ask / tell, budget accounting, training, NaN losses, bad input."""

import numpy as np
import pytest

import neurozo
from neurozo import learners, substrates
from neurozo.learners.base import Problem
from neurozo.models.point import Point
from neurozo.models.population import Members


def _sphere_problem(dim=4, nan_half=False):
    def loss(out, y=None):
        e = np.sum(out * out, axis=-1)
        if nan_half:
            e = np.where(out[:, 0] > 0.5, np.nan, e)
        return e

    model = Point(dim=dim)
    return model, Problem(model, substrates.get("ideal"), loss, np.random.default_rng(0))


def test_registered_with_its_parameters():
    assert "cbo" in learners.names()
    params = learners.registry.parameters("cbo")
    for name in ("popsize", "batch_size", "partial", "dt", "lam", "sigma", "alpha", "noise", "scheme",
                 "correction", "alpha_schedule", "sigma_schedule", "epoch_steps", "stagnation_tol"):
        assert name in params


@pytest.mark.parametrize("partial", [True, False])
def test_ask_tell_moves_the_batch_or_everyone(partial):
    # small α: no particle coincides with the consensus (which would neither drift nor get noise)
    lrn = learners.get("cbo", popsize=12, batch_size=4, partial=partial, init_std=1.0, alpha=0.1)
    state = lrn.init(np.zeros(5), seed=3)
    pop, state = lrn.ask(state)
    assert isinstance(pop, Members) and pop.thetas.shape == (4, 5)
    np.testing.assert_array_equal(pop.thetas, state.x[0, state.batch])
    losses = np.sum(pop.thetas ** 2, axis=1)
    new = lrn.tell(state, pop, losses)
    moved = np.any(new.x[0] != state.x[0], axis=1)
    assert moved.sum() == (4 if partial else 12)
    assert np.array_equal(np.flatnonzero(moved), np.sort(state.batch)) or not partial
    # the centre is the consensus of the batch: softmax(−α·loss) weights
    w = np.exp(-lrn.params.alpha * (losses - losses.min()))
    np.testing.assert_allclose(lrn.center(new), w @ pop.thetas / w.sum(), rtol=1e-10, atol=1e-12)
    assert state.x is not new.x  # the state is not mutated


def test_a_step_is_one_sweep_over_the_particle_batches():
    model, problem = _sphere_problem()
    lrn = learners.get("cbo", popsize=12, batch_size=5)
    assert lrn.evals_per_step == 12
    state = lrn.init(np.ones(4), seed=0)
    state, losses = lrn.step(state, problem)
    assert problem.evaluations == 12 and losses.shape == (12,) and state.step == 1 and state.tells == 3
    heavi = learners.get("cbo", popsize=12, batch_size=5, correction="heaviside")
    assert heavi.evals_per_step == 15  # + f(c) once per particle batch
    _, problem = _sphere_problem()
    state, _ = heavi.step(heavi.init(np.ones(4), seed=0), problem)
    assert problem.evaluations == 15


def test_epoch_schedules():
    _, problem = _sphere_problem()
    lrn = learners.get("cbo", popsize=6, batch_size=6, epoch_steps=2, alpha=3.0, sigma=1.0)
    state = lrn.init(np.ones(4), seed=0)
    for _ in range(6):
        state, _ = lrn.step(state, problem)
    assert state.epoch == 3 and state.alpha == 3.0 * 2 ** 3
    assert np.isclose(state.sigma, 1.0 / np.log2(3 + 2))


def test_nan_losses_get_zero_weight_and_do_not_stop_training():
    _, problem = _sphere_problem(nan_half=True)
    lrn = learners.get("cbo", popsize=30, batch_size=30, init_std=1.0, alpha=10.0, sigma=0.5,
                       alpha_schedule="constant", sigma_schedule="constant")
    state = lrn.init(np.zeros(4), seed=1)
    for _ in range(60):
        state, losses = lrn.step(state, problem)
        assert np.all(np.isfinite(losses)) and losses.size > 0
    assert np.all(np.isfinite(state.x)) and np.linalg.norm(lrn.center(state)) < 0.3  # started ≈ 2 away


def test_trains_mlp_on_digits_beyond_chance_and_is_reproducible():
    kw = dict(task="digits", learner={"name": "cbo", "popsize": 20, "batch_size": 10, "init_std": 0.3,
                                      "epoch_steps": 10}, budget=3000, seed=0, batch_size=60, progress=False)
    a = neurozo.run(**kw)
    assert a.status == "finished" and a.final["evaluations"] == 3000
    assert a.final["test_acc"] > 0.3  # chance is 0.1
    assert a.history["train_loss"].iloc[-1] < a.history["train_loss"].iloc[1]
    b = neurozo.run(**kw)
    cols = [c for c in a.history.columns if c != "wall_time"]
    assert a.history[cols].equals(b.history[cols])


@pytest.mark.parametrize("extra", [dict(scheme="hopping", sigma=0.05), dict(scheme="polar", kappa=5.0),
                                   dict(noise="isotropic"), dict(alpha_schedule="ess"),
                                   dict(correction="heaviside_reg", partial=True)])
def test_variants_run_on_a_network(extra):
    res = neurozo.run(task="digits", learner={"name": "cbo", "popsize": 10, "batch_size": 5, "init_std": 0.3,
                                               **extra}, budget=200, seed=0, batch_size=32, progress=False)
    assert res.status == "finished" and np.all(np.isfinite(res.theta))


@pytest.mark.parametrize("kw,msg", [
    (dict(popsize=1), "popsize=1"),
    (dict(popsize=10, batch_size=11), "batch_size=11"),
    (dict(dt=0.0), "dt=0.0"),
    (dict(alpha=-2.0), "alpha=-2.0"),
    (dict(sigma=-0.1), "sigma=-0.1"),
    (dict(noise="pink"), "noise='pink'"),
    (dict(scheme="polar", correction="heaviside"), "correction='heaviside'"),
])
def test_bad_input_is_rejected_before_compute(kw, msg):
    with pytest.raises(ValueError, match=msg):
        neurozo.build(task="digits", learner={"name": "cbo", **kw})


def test_tell_checks_the_losses():
    lrn = learners.get("cbo", popsize=6, batch_size=3)
    state = lrn.init(np.zeros(2), seed=0)
    pop, state = lrn.ask(state)
    with pytest.raises(ValueError, match="losses="):
        lrn.tell(state, pop, np.zeros(4))
