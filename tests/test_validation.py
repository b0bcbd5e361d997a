"""Bad input raises a ValueError naming the parameter, the value and what is allowed — before any compute."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurozo
from neurozo.models.mlp import MLP
from neurozo.models.point import Point


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if any forward pass or model initialisation runs."""
    def boom(*a, **k):
        raise AssertionError("compute started before validation finished")
    for cls in (MLP, Point):
        monkeypatch.setattr(cls, "forward", boom)
        monkeypatch.setattr(cls, "init", boom)


BAD = [
    (dict(task="imagenet"), "task='imagenet'", "allowed"),
    (dict(substrate="memristor9000"), "substrate='memristor9000'", "allowed"),
    (dict(learner="adamw"), "learner='adamw'", "allowed"),
    (dict(learner={"name": "openes", "popsize": 0}), "popsize=0", ">= 2"),
    (dict(learner={"name": "openes", "popsize": -4}), "popsize=-4", ">= 2"),
    (dict(learner={"name": "openes", "popsize": 7}), "popsize=7", "even"),
    (dict(learner={"name": "openes", "sigma": 0.0}), "sigma=0.0", "> 0"),
    (dict(learner={"name": "openes", "sigma": -0.1}), "sigma=-0.1", "> 0"),
    (dict(learner={"name": "openes", "lr": float("nan")}), "lr=nan", "finite"),
    (dict(learner={"name": "openes", "temperature": 1}), "temperature", "allowed"),
    (dict(budget=0), "budget=0", ">= 1"),
    (dict(budget=-5), "budget=-5", ">= 1"),
    (dict(budget=10), "budget=10", "evaluations of one learner step"),
    (dict(seed=-1), "seed=-1", ">= 0"),
    (dict(batch_size=0), "batch_size=0", ">= 1"),
    (dict(batch_size=10_000), "batch_size=10000", "training examples"),
    (dict(model={"name": "mlp", "sizes": [63, 32, 10]}), "model.sizes=[63, 32, 10]", "64 inputs and 10 outputs"),
    (dict(model={"name": "mlp", "sizes": [64, 32, 3]}), "model.sizes=[64, 32, 3]", "64 inputs and 10 outputs"),
    (dict(model={"name": "mlp", "sizes": [64, 0, 10]}), "sizes[1]=0", ">= 1"),
    (dict(model={"name": "mlp", "activation": "swish"}), "activation='swish'", "one of"),
    (dict(task={"name": "sphere", "dim": 5}, model={"name": "point", "dim": 4}), "model.dim=4", "5 outputs"),
    (dict(substrate={"name": "ideal", "dtype": "float16"}), "dtype='float16'", "one of"),
    (dict(backend="tpu"), "backend='tpu'", "one of"),
]


@pytest.mark.parametrize("kw,name,allowed", BAD, ids=[b[1] for b in BAD])
def test_bad_input_is_named_before_compute(kw, name, allowed, no_compute):
    with pytest.raises(ValueError) as e:
        neurozo.run(**kw, progress=False)
    msg = str(e.value)
    assert name in msg and allowed in msg and "\n" not in msg


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(popsize=st.integers(-4, 12), sigma=st.floats(-1, 1) | st.just(float("nan")) | st.just(float("inf")), lr=st.floats(-1, 1),
       budget=st.integers(-20, 120), batch_size=st.integers(-2, 64), seed=st.integers(-3, 2**40),
       hidden=st.integers(-1, 6), dim=st.integers(-1, 6), task=st.sampled_from(["digits", "sphere"]))
def test_fuzz_run_parameters(popsize, sigma, lr, budget, batch_size, seed, hidden, dim, task):
    """Any parameter combination either runs within budget or raises one clear ValueError."""
    if task == "digits":
        kw = dict(task="digits", model={"name": "mlp", "sizes": [64, hidden, 10]})
    else:
        kw = dict(task={"name": "sphere", "dim": dim})
    learner = {"name": "openes", "popsize": popsize, "sigma": sigma, "lr": lr}
    valid = (popsize >= 2 and popsize % 2 == 0 and math.isfinite(sigma) and sigma > 0 and lr > 0
             and budget >= max(popsize, 1) and batch_size >= 1 and seed >= 0
             and (hidden >= 1 if task == "digits" else dim >= 1))
    try:
        res = neurozo.run(**kw, learner=learner, budget=budget, batch_size=batch_size, seed=seed, progress=False)
    except ValueError as e:
        assert not valid, f"valid input rejected: {e}"
        msg = str(e)
        assert "=" in msg and "invalid" in msg or "unknown" in msg
        return
    assert valid, "invalid input was accepted"
    assert res.status in ("finished", "diverged")
    assert 0 < res.final["evaluations"] <= budget
    assert res.final["evaluations"] + popsize > budget or res.status != "finished"
