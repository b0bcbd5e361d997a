"""The training loop: one learner, one model on one substrate, one task, one budget.

``run(task, model, substrate, learner, budget, seed, ...) -> Result``

* The **budget** counts forward evaluations of one mini-batch — what a chip
  in the loop would be asked for. A learner step runs only if it fits in what
  is left.
* Every ``eval_every`` evaluations a row is logged: step, evaluations, device
  cost counters, train loss (mean over the step's evaluations), and the
  learner's centre on the test set (test loss and accuracy). Monitoring runs
  on the same substrate but is not counted in the budget or the costs.
* A non-finite loss or centre stops the run with status ``diverged``; a
  callback returning True stops it with status ``stopped``. Neither raises.
* Everything random flows from ``seed`` through independent streams (model
  init, learner, data, device noise), so the same seed gives the same history
  (wall time aside).
* A learner's ``step`` may return ``(state, losses, info)``: the scalar entries
  of ``info`` (residuals, alignment cosines, …) become extra history columns,
  averaged over the steps since the previous row.
* All arguments are validated — names, parameters, shape compatibility —
  before any compute starts; bad input raises ``ValueError``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Optional

import numpy as np
import pandas as pd

from . import __version__
from . import learners as _learners
from . import models as _models
from . import substrates as _substrates
from . import tasks as _tasks
from ._validate import check_choice, check_int, check_seed, fail
from .backend import BACKENDS, resolve
from .config import component_spec, config_key, split_spec
from .learners.base import Problem
from .models.population import Members

__all__ = ["run", "Result", "build", "Built"]

STATUSES = ("finished", "diverged", "stopped", "failed")


@dataclass
class Result:
    """Outcome of one run. ``history`` has one row per logged step."""

    config: Dict[str, Any]
    key: str
    status: str
    history: pd.DataFrame
    final: Dict[str, Any]
    message: str = ""
    theta: Optional[np.ndarray] = None
    version: str = __version__
    backend: str = "cpu"
    extra: Dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> Dict[str, Any]:
        import datetime as _dt

        return {
            "key": self.key, "config": self.config, "status": self.status, "message": self.message,
            "history": self.history.to_dict(orient="records"), "final": self.final,
            "version": self.version, "backend": self.backend,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }

    def __repr__(self):
        acc = self.final.get("test_acc")
        return (f"Result(status={self.status!r}, evaluations={self.final.get('evaluations')}, "
                f"test_acc={acc}, test_loss={self.final.get('test_loss')}, key={self.key!r})")


@dataclass
class Built:
    """Components of a run, built and cross-checked; nothing computed yet."""

    config: Dict[str, Any]
    key: str
    task: Any
    model: Any
    substrate: Any
    learner: Any


def _make(kind: str, registry_get, value, extra: Optional[dict] = None):
    if value is None:
        return None
    if not isinstance(value, (str, dict)):
        return value  # an already built object
    name, kw = split_spec(component_spec(kind, value))
    if extra:
        for k, v in extra.items():
            kw.setdefault(k, v)
    return registry_get(name, **kw)


def build(task="digits", model=None, substrate="ideal", learner="openes", budget: int = 10_000,
          seed: int = 0, batch_size: int = 128, eval_every: Optional[int] = None,
          backend: str = "cpu") -> Built:
    """Validate every argument and build the components (no compute)."""
    budget = check_int("budget", budget, 1)
    seed = check_seed("seed", seed)
    batch_size = check_int("batch_size", batch_size, 1)
    if eval_every is not None:
        eval_every = check_int("eval_every", eval_every, 1)
    check_choice("backend", backend, BACKENDS)
    resolve(backend)

    task_o = _make("task", _tasks.get, task)
    if model is None:
        model = task_o.default_model()
        learner_model = getattr(_learners.registry.factory(learner if isinstance(learner, str) else
                                                         component_spec("learner", learner)["name"]),
                                "default_model", None) if isinstance(learner, (str, dict)) else \
            getattr(learner, "default_model", None)
        if learner_model is not None and task_o.kind == "classification":
            # a learner that trains its own architecture (EP: an energy model), sized to the task
            model = dict(learner_model)
            if "sizes" in model:
                model["sizes"] = [task_o.n_inputs, *list(model["sizes"])[1:-1], task_o.n_outputs]
    model_o = _make("model", _models.get, model)
    sub_extra = {"backend": backend} if backend != "cpu" else None
    substrate_o = _make("substrate", _substrates.get, substrate, sub_extra)
    learner_o = _make("learner", _learners.get, learner)

    n_in, n_out = model_o.io_shape
    if (n_in, n_out) != (task_o.n_inputs, task_o.n_outputs):
        what = "sizes" if hasattr(model_o, "sizes") else "dim"
        val = getattr(model_o, "sizes", getattr(model_o, "dim", None))
        fail(f"model.{what}", val,
             f"task {task_o.spec['name']!r} needs {task_o.n_inputs} inputs and {task_o.n_outputs} outputs")
    if task_o.kind == "classification":
        if batch_size > task_o.n_train:
            fail("batch_size", batch_size, f"must be <= the task's {task_o.n_train} training examples")
    check_model = getattr(learner_o, "check_model", None)
    if callable(check_model):  # e.g. a low-rank learner's rank against the layer widths
        check_model(model_o)
    steps_fit = getattr(learner_o, "evals_per_step", 1)
    if budget < steps_fit:
        fail("budget", budget, f"must be >= {steps_fit}, the evaluations of one learner step")

    config = {
        "task": component_spec("task", task_o), "model": component_spec("model", model_o),
        "substrate": component_spec("substrate", substrate_o),
        "learner": component_spec("learner", learner_o),
        "budget": budget, "seed": seed, "batch_size": batch_size, "eval_every": eval_every, "backend": backend,
    }
    return Built(config, config_key(config, __version__), task_o, model_o, substrate_o, learner_o)


def _streams(seed: int):
    ss = np.random.SeedSequence(seed)
    init, learner, data, device, monitor = ss.spawn(5)
    return (np.random.default_rng(init), int(learner.generate_state(1, np.uint64)[0] >> 1),
            np.random.default_rng(data), np.random.default_rng(device), np.random.default_rng(monitor))


def _monitor(b: Built, theta: np.ndarray, rng) -> Dict[str, float]:
    """Test loss/accuracy of the centre θ (not counted in budget or costs)."""
    task, model, sub = b.task, b.model, b.substrate
    with sub.costs.paused():
        if task.kind == "function":
            loss = float(task.loss(model.forward(Members(theta[None]), None, sub, rng))[0])
            return {"test_loss": loss, "test_acc": float("nan")}
        x, y = task.test_data()
        out = model.forward(Members(theta[None]), x, sub, rng)
        return {"test_loss": float(task.loss(out, y)[0]), "test_acc": float(task.accuracy(out, y)[0])}


def run(task="digits", model=None, substrate="ideal", learner="openes", budget: int = 10_000, seed: int = 0,
        batch_size: int = 128, eval_every: Optional[int] = None, callbacks: Iterable[Callable] = (),
        progress: Optional[bool] = None, backend: str = "cpu", store=None) -> Result:
    """Train ``model`` on ``substrate`` with ``learner`` on ``task`` for ``budget`` evaluations.

    Parameters
    ----------
    task, model, substrate, learner : name, ``{"name": ..., **params}`` dict, or built object.
        ``model=None`` takes the task's default (an MLP 64-32-10 for digits).
    budget : mini-batch forward evaluations allowed (≥ one learner step).
    seed : the only source of randomness.
    batch_size : mini-batch size of classification tasks.
    eval_every : evaluations between logged rows (default budget/50).
    callbacks : ``cb(row: dict, state) -> bool``; True stops the run.
    progress : tqdm bar; default on only when stderr is a terminal.
    store : a directory or ``ResultStore``; the record is written there.
    """
    b = build(task, model, substrate, learner, budget, seed, batch_size, eval_every, backend)
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            fail("callbacks", cb, "each callback must be callable")
    rng_init, learner_seed, rng_data, rng_device, rng_mon = _streams(seed)
    theta0 = b.model.init(rng_init)
    state = b.learner.init(theta0, learner_seed)
    problem = Problem(b.model, b.substrate, b.task.loss, rng_device)
    sub = b.substrate
    sub.costs.reset()
    per_step = b.learner.evals_per_step
    every = b.config["eval_every"] or max(per_step, budget // 50)

    if progress is None:
        progress = sys.stderr.isatty()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=budget, unit="eval", desc=f"{b.config['learner']['name']}@{sub.name}", leave=False)

    rows = []
    status, message = "finished", ""
    t0 = time.perf_counter()
    next_log = 0
    step = 0
    train_losses = []
    step_info: Dict[str, list] = {}  # learner-reported scalars since the last row

    def log_row(theta):
        row = {"step": step, "evaluations": problem.evaluations}
        row.update(sub.costs.snapshot())
        row.pop("evaluations", None)
        row["evaluations"] = problem.evaluations
        row["train_loss"] = float(np.mean(train_losses)) if train_losses else float("nan")
        row.update(_monitor(b, theta, rng_mon))
        row["wall_time"] = time.perf_counter() - t0
        for k, v in step_info.items():
            row.setdefault(k, float(np.nanmean(v)) if np.any(np.isfinite(v)) else float("nan"))
        step_info.clear()
        rows.append(row)
        return row

    try:
        log_row(b.learner.center(state))
        next_log = every
        while problem.evaluations + per_step <= budget:
            x, y = b.task.batch(rng_data, b.config["batch_size"])
            problem.set_batch(x, y)
            before = problem.evaluations
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected below
                out = b.learner.step(state, problem)
            state, losses = out[0], out[1]
            # optional third item: a dict of scalars logged as extra history columns (mean since the last row)
            for k, v in (out[2] if len(out) > 2 and out[2] else {}).items():
                if np.ndim(v) == 0:
                    step_info.setdefault(str(k), []).append(float(v))
            step += 1
            losses = np.asarray(losses, dtype=np.float64)
            theta = b.learner.center(state)
            if bar is not None:
                bar.update(problem.evaluations - before)
            if losses.size == 0 or not np.all(np.isfinite(losses)) or not np.all(np.isfinite(theta)):
                status, message = "diverged", f"non-finite loss or parameters at step {step}"
                train_losses = [float(np.nanmean(losses))] if np.any(np.isfinite(losses)) else [float("nan")]
                break
            train_losses.append(float(losses.mean()))
            if problem.evaluations >= next_log:
                row = log_row(theta)
                train_losses = []
                next_log += every
                if any(cb(row, state) for cb in callbacks):
                    status, message = "stopped", f"stopped by a callback at step {step}"
                    break
            if problem.evaluations == before:
                fail("learner", b.config["learner"]["name"], "a learner step must use at least one evaluation")
    finally:
        if bar is not None:
            bar.close()

    theta = b.learner.center(state)
    if status == "finished" and (not rows or rows[-1]["evaluations"] != problem.evaluations):
        log_row(theta)
    elif status == "diverged":
        row = {"step": step, "evaluations": problem.evaluations, **sub.costs.snapshot()}
        row.update(evaluations=problem.evaluations, train_loss=train_losses[-1],
                   test_loss=float("nan"), test_acc=float("nan"), wall_time=time.perf_counter() - t0)
        rows.append(row)
    history = pd.DataFrame(rows)
    final = {k: v for k, v in rows[-1].items()}
    final["steps"] = step
    final["wall_time"] = time.perf_counter() - t0
    res = Result(b.config, b.key, status, history, final, message,
                 theta=np.asarray(theta), backend=backend)
    if store is not None:
        from .store import ResultStore

        (store if isinstance(store, ResultStore) else ResultStore(store)).write(res.to_record())
    return res
