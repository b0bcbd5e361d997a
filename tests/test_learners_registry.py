"""One registry-driven test: every registered learner, with its defaults, improves.

Each learner in ``neurozo.learners.names()`` runs on ``sphere`` and
``rastrigin`` (d = 10, start U(−3, 3)^10) for an equal budget of 2000
evaluations (at least 20 of its steps) and must end at a loss below 0.8×
where it started (both functions are deterministic, so this is a plain
descent check; the starting losses are ≈ 30 and ≈ 130).

A learner that does not apply to black-box functions declares it with class
attributes, and is then checked on a tiny ``digits`` run (30 steps, batch 64),
where its test loss must fall:

``function_tasks = False``         it needs a layered model and data
``needs_noisy_substrate = True``   it learns from the device's own noise: run on ``pcm``
``default_model = {...}``          the model spec to train (default: the task's MLP)
``function_params = {...}``        parameters to use on black-box functions instead of
                                   the defaults (a fixed gain tuned for a network loss
                                   can be two orders too large for Rastrigin's curvature)

A new learner file joins this test automatically through the registry.
"""

import numpy as np
import pytest

import neurozo
from neurozo import learners

NAMES = learners.names()


def _applies_to_functions(name):
    return getattr(learners.registry.factory(name), "function_tasks", True)


@pytest.mark.parametrize("name", NAMES)
def test_every_learner_improves(name):
    cls = learners.registry.factory(name)
    per_step = learners.get(name).evals_per_step
    if _applies_to_functions(name):
        for fn in ("sphere", "rastrigin"):
            spec = {"name": name, **getattr(cls, "function_params", {})}
            res = neurozo.run(task={"name": fn, "dim": 10}, learner=spec, budget=max(2000, 20 * per_step),
                              seed=0, progress=False)
            h = res.history
            assert res.status == "finished", (fn, res.message)
            start, end = h["test_loss"].iloc[0], h["test_loss"].iloc[-1]
            assert end < 0.8 * start, f"{name} on {fn}: loss {start:.3g} -> {end:.3g}"
    else:
        substrate = "pcm" if getattr(cls, "needs_noisy_substrate", False) else "ideal"
        model = getattr(cls, "default_model", None)
        res = neurozo.run(task="digits", model=model, substrate=substrate, learner=name,
                          budget=30 * per_step, batch_size=64, seed=0, progress=False)
        h = res.history
        assert res.status == "finished", res.message
        assert np.isfinite(h["test_loss"].iloc[-1])
        assert h["test_loss"].iloc[-1] < h["test_loss"].iloc[0], \
            f"{name} on digits/{substrate}: test loss {h['test_loss'].iloc[0]:.3f} -> {h['test_loss'].iloc[-1]:.3f}"
