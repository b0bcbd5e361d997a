"""Learner base (evosax-style): frozen ``Params`` and ``State``, ``init / ask / tell``.

A population learner:

    state = learner.init(theta0, seed)
    pop, state = learner.ask(state)          # a population (Members / LowRank)
    losses = problem.evaluate(pop)           # one mini-batch forward per member
    state = learner.tell(state, pop, losses)

``step(state, problem)`` does one ask–evaluate–tell round; learners that are
not population methods (equilibrium propagation) override ``step`` and use the
problem's model, substrate and batch directly. Randomness is derived from
(seed, step) only, so the same seed gives the same history.

``Problem`` is what the run loop hands a learner: the model, substrate and
current mini-batch, and an ``evaluate`` that counts the budget.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..models.population import as_population

__all__ = ["Learner", "Problem", "BaseState", "centered_ranks", "step_rng"]


def step_rng(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    """Generator for (seed, step, stream): reproducible and order-independent."""
    return np.random.default_rng([int(seed), int(step), int(stream)])


def centered_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks of x mapped linearly to [−0.5, 0.5] (Salimans et al. 2017); ties broken by position."""
    x = np.asarray(x)
    r = np.empty(len(x))
    r[np.argsort(x, kind="stable")] = np.arange(len(x))
    return r / max(len(x) - 1, 1) - 0.5


@dataclass(frozen=True)
class BaseState:
    mean: np.ndarray
    seed: int
    step: int = 0


class Problem:
    """The learner's view of one run: model, substrate, task loss and the current batch."""

    def __init__(self, model, substrate, loss_fn: Callable, device_rng: np.random.Generator):
        self.model = model
        self.substrate = substrate
        self.loss_fn = loss_fn
        self.device_rng = device_rng
        self.x: Optional[np.ndarray] = None
        self.y: Any = None
        self.evaluations = 0

    def set_batch(self, x, y) -> None:
        self.x, self.y = x, y

    def outputs(self, population) -> np.ndarray:
        """Model outputs (P, B, C) of a population on the current batch; counts P evaluations."""
        pop = as_population(population)
        self.evaluations += pop.size
        self.substrate.costs.add(evaluations=pop.size)
        return self.model.forward(pop, self.x, self.substrate, self.device_rng)

    def evaluate(self, population, per_sample: bool = False) -> np.ndarray:
        """Loss of every member on the current batch, shape (P,) — or (P, B) per sample."""
        out = self.outputs(population)
        if per_sample:
            return np.asarray(self.loss_fn(out, self.y, per_sample=True), dtype=np.float64)
        return np.asarray(self.loss_fn(out, self.y), dtype=np.float64)

    def count(self, n: int) -> None:
        """Count n mini-batch evaluations a learner ran on the substrate directly (e.g. repeated reads)."""
        self.evaluations += int(n)
        self.substrate.costs.add(evaluations=int(n))


class Learner:
    """Base class. Subclasses set ``Params`` (a frozen dataclass) and implement init/ask/tell."""

    Params: type = None
    #: "gradient-free" for every learner but the surrogate-gradient ceiling ("baseline")
    category = "gradient-free"
    #: False for a learner whose training steps run off the substrate (bptt: float autograd), so the
    #: substrate's cost model sees none of its training and tables show its training energy as "–"
    trains_on_substrate = True

    def __init__(self, **kw):
        fields = {f.name for f in dataclasses.fields(self.Params)}
        unknown = sorted(set(kw) - fields)
        if unknown:
            raise ValueError(f"learner {type(self).__name__}: unknown parameter(s) {unknown}; "
                             f"allowed: {sorted(fields)}")
        self.params = self.Params(**kw)

    @property
    def spec(self) -> dict:
        return {"name": getattr(type(self), "registry_name", type(self).__name__),
                **dataclasses.asdict(self.params)}

    @property
    def evals_per_step(self) -> int:
        """Upper bound on mini-batch evaluations one ``step`` uses (for budget checks)."""
        return self.params.popsize

    def init(self, theta0: np.ndarray, seed: int):
        raise NotImplementedError

    def ask(self, state):
        raise NotImplementedError

    def tell(self, state, population, losses):
        raise NotImplementedError

    def center(self, state) -> np.ndarray:
        """The learner's current best guess of θ (what is tested)."""
        return state.mean

    def step(self, state, problem: Problem):
        pop, state = self.ask(state)
        losses = problem.evaluate(pop)
        return self.tell(state, pop, losses), losses
