"""The bptt ceiling: its differentiable twins match the substrates' forward passes, it learns
quickly, it is labelled a baseline and it counts its mini-batch steps in the budget."""

from __future__ import annotations

import numpy as np
import pytest

import neurozo
from neurozo.learners.bptt import BPTT
from neurozo.models.mlp import MLP
from neurozo.models.population import Members

pytest.importorskip("torch")
pytest.importorskip("snntorch")


def twin_outputs(model, substrate, theta, x):
    import torch

    tw = BPTT().twin(model, substrate)
    T = torch.tensor(theta, dtype=torch.float32)
    params = [(model.view(T, f"W{k}"), model.view(T, f"b{k}")) for k in range(model.n_layers)]
    return tw.forward(params, torch.tensor(x)).detach().numpy()


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lif_twin_spikes_like_the_substrate(reset):
    # same weights, same constant-current input: identical spike counts (hard threshold forward)
    sub = neurozo.substrates.get("lif", reset=reset, T=12)
    model = MLP([64, 32, 10])
    theta = model.init(np.random.default_rng(0)) * 3
    x, _ = neurozo.tasks.get("digits").test_data()
    x = x[:100]
    ref = model.forward(Members(theta[None]), x, sub, np.random.default_rng(0))[0]
    out = twin_outputs(model, sub, theta, x)
    assert ref.sum() > 0                                  # the check is not vacuous
    assert np.mean(out == ref) > 0.995                    # float32 ties at the threshold may differ
    assert np.abs(out - ref).sum() <= 0.01 * ref.sum()


def test_lif_membrane_readout_twin():
    sub = neurozo.substrates.get("lif", readout="membrane")
    model = MLP([64, 32, 10])
    theta = model.init(np.random.default_rng(1)) * 3
    x, _ = neurozo.tasks.get("digits").test_data()
    ref = model.forward(Members(theta[None]), x[:50], sub, np.random.default_rng(0))[0]
    np.testing.assert_allclose(twin_outputs(model, sub, theta, x[:50]), ref, rtol=1e-3, atol=1e-3)


def test_int8_twin_matches_the_quantized_forward():
    sub = neurozo.substrates.get("int8")
    model = MLP([64, 32, 10])
    theta = model.init(np.random.default_rng(2))
    x, _ = neurozo.tasks.get("digits").test_data()
    ref = model.forward(Members(theta[None]), x, sub, np.random.default_rng(0))[0]
    out = twin_outputs(model, sub, theta, x)
    ideal = model.forward(Members(theta[None]), x, neurozo.substrates.get("ideal"), np.random.default_rng(0))[0]
    # the twin is the quantized network (up to rounding ties), much closer to it than to float
    assert np.abs(out - ref).max() < 0.25 * np.abs(ideal - ref).max() + 1e-6
    assert np.mean(out.argmax(1) == ref.argmax(1)) > 0.99


def test_bptt_reaches_a_sensible_accuracy_quickly():
    r = neurozo.run(task="digits", learner="bptt", budget=300, seed=0, batch_size=64)
    assert r.final["evaluations"] == 300                  # one evaluation per mini-batch step
    assert r.final["steps"] == 300
    assert r.final["test_acc"] > 0.9                      # chance 0.1; ~0.96 here


def test_bptt_trains_hard_lif():
    r = neurozo.run(task="digits", model={"name": "mlp", "sizes": [64, 32, 10]}, substrate="lif",
                    learner="bptt", budget=120, seed=0, batch_size=64)
    assert r.final["test_acc"] > 0.5                      # chance 0.1; tested with hard thresholds


def test_bptt_is_a_labelled_baseline():
    assert neurozo.learners.registry.factory("bptt").category == "baseline"
    assert neurozo.learners.registry.factory("openes").category == "gradient-free"


@pytest.mark.parametrize("kw,param", [({"surrogate": "sigmoid"}, "surrogate"), ({"slope": 0}, "slope"),
                                      ({"lr": -1.0}, "lr"), ({"optimizer": "rmsprop"}, "optimizer"),
                                      ({"weight_decay": -1e-4}, "weight_decay"), ({"threads": -1}, "threads")])
def test_bad_parameters_raise_naming_them(kw, param):
    with pytest.raises(ValueError, match=rf"^{param}="):
        neurozo.learners.get("bptt", **kw)


@pytest.mark.parametrize("sub,param", [({"name": "lif", "refractory": 2}, "substrate.refractory"),
                                       ({"name": "lif", "readout": "first_spike"}, "substrate.readout")])
def test_unsupported_substrate_settings_raise(sub, param):
    with pytest.raises(ValueError, match=rf"^{param}="):
        neurozo.run(task="digits", substrate=sub, learner="bptt", budget=5, seed=0)


def test_function_tasks_are_refused():
    with pytest.raises(ValueError, match="^task="):
        neurozo.run(task="sphere", learner="bptt", budget=5, seed=0)
