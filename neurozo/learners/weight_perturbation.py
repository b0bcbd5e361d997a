"""Weight perturbation — Jabri & Flower (1992), "Weight perturbation: an optimal
architecture and learning technique for analog VLSI feedforward and recurrent
multilayer networks" (IEEE Trans. Neural Networks 3(1)); the parallel random-probe
form of Cauwenberghs (1993), "A fast stochastic error-descent algorithm for
supervised learning and optimization" (NIPS 5).

Each step evaluates the clean weights θ and N = popsize − 1 randomly probed copies
θ + σ·ε_i, ε_i ~ N(0, I), on one mini-batch, and correlates each loss difference
with its probe:

    ĝ = 1/N Σ_i ((L(θ + σε_i) − L(θ)) / σ) · ε_i,        θ ← θ + Optimizer(ĝ + λθ)

(E[ĝ] = ∇L + O(σ) for smooth L; plain SGD gives the papers' Δθ = −η ĝ.)
Probes may be Rademacher (±1 per weight, as in analog-VLSI implementations).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .._validate import check_choice, check_float, check_int
from ..models.population import Members
from . import registry
from .base import BaseState, Learner, step_rng
from .optim import Optimizer, OptState

__all__ = ["WeightPerturbation"]


@dataclass(frozen=True)
class WeightPerturbationParams:
    popsize: int = 16           # 1 clean evaluation + popsize − 1 probes
    sigma: float = 0.01
    lr: float = 0.01
    optimizer: str = "adam"
    probe: str = "gaussian"
    weight_decay: float = 0.0

    def __post_init__(self):
        check_int("popsize", self.popsize, 2)
        check_float("sigma", self.sigma, 0, lo_open=True)
        check_choice("probe", self.probe, ["gaussian", "rademacher"])
        check_float("weight_decay", self.weight_decay, 0)
        Optimizer(self.optimizer, self.lr)


@dataclass(frozen=True)
class WeightPerturbationState(BaseState):
    opt: OptState = None
    eps: np.ndarray = None


@registry.register("weight-perturbation")
class WeightPerturbation(Learner):
    """Random weight probes; loss differences against the clean weights correlated with the probe."""

    Params = WeightPerturbationParams

    def __init__(self, **kw):
        super().__init__(**kw)
        self.opt = Optimizer(self.params.optimizer, self.params.lr)

    def init(self, theta0, seed):
        theta0 = np.asarray(theta0, dtype=np.float64)
        return WeightPerturbationState(mean=theta0.copy(), seed=int(seed), step=0, opt=self.opt.init(theta0.size))

    def ask(self, state):
        p = self.params
        rng = step_rng(state.seed, state.step)
        shape = (p.popsize - 1, state.mean.size)
        if p.probe == "gaussian":
            eps = rng.standard_normal(shape)
        else:
            eps = rng.integers(0, 2, shape) * 2.0 - 1.0
        thetas = np.concatenate([state.mean[None], state.mean[None] + p.sigma * eps])
        return Members(thetas), replace(state, eps=eps)

    def estimate(self, state, losses) -> np.ndarray:
        """ĝ = 1/N Σ_i ((L_i − L_0)/σ)·ε_i from the losses of ``ask``'s population."""
        p = self.params
        losses = np.asarray(losses, dtype=np.float64)
        return (losses[1:] - losses[0]) / p.sigma @ state.eps / (p.popsize - 1)

    def tell(self, state, population, losses):
        p = self.params
        g = self.estimate(state, losses)
        if p.weight_decay:
            g = g + p.weight_decay * state.mean
        delta, opt = self.opt.update(state.opt, g)
        return replace(state, mean=state.mean + delta, opt=opt, step=state.step + 1, eps=None)
