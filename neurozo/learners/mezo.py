"""MeZO — Malladi, Gao, Nichani, Damian, Lee, Chen & Arora (2023),
"Fine-Tuning Language Models with Just Forward Passes", NeurIPS 2023.

Memory-efficient zeroth-order SGD: at step k draw a seed s_k, let
z = z(s_k) ~ N(0, I_D) and

    ĝ = [L(θ + εz) − L(θ − εz)] / (2ε)            (projected gradient, a scalar)
    θ ← θ − η_k (ĝ·z + λθ)                          (z regenerated from s_k)

The perturbation is never stored: ``ask`` and ``tell`` each regenerate z from
the step's seed (the paper perturbs θ in place, +εz, −2εz, +εz, then
regenerates z for the update). ``n_directions`` = n averages n such
estimates per step (the paper's n-SPSA); ``optimizer="adam"`` is its MeZO-Adam
variant (then the state holds Adam's moments, still no z).
Defaults: ε = 1e−3 (the paper's), constant η.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .._validate import check_float, check_int
from ..models.population import Members
from . import registry
from .base import BaseState, Learner
from .optim import Optimizer, OptState

__all__ = ["MeZO"]


@dataclass(frozen=True)
class MeZOParams:
    lr: float = 0.005
    eps: float = 1e-3
    n_directions: int = 1
    optimizer: str = "sgd"
    weight_decay: float = 0.0

    def __post_init__(self):
        check_float("eps", self.eps, 0, lo_open=True)
        check_int("n_directions", self.n_directions, 1)
        check_float("weight_decay", self.weight_decay, 0)
        Optimizer(self.optimizer, self.lr)  # validates optimizer and lr


@dataclass(frozen=True)
class MeZOState(BaseState):
    opt: OptState = None


def _z_seed(seed: int, step: int, j: int) -> int:
    """The seed s_k of direction j at step k: all MeZO keeps of its perturbation."""
    return int(np.random.SeedSequence([int(seed), int(step), int(j)]).generate_state(1, np.uint64)[0])


@registry.register("mezo")
class MeZO(Learner):
    """Zeroth-order SGD along seed-regenerated Gaussian directions (no stored perturbation)."""

    Params = MeZOParams
    #: the default step suits a network's loss; Rastrigin's curvature (≈ 400) needs a
    #: smaller one on black-box functions (used by the registry test)
    function_params = {"lr": 0.001}

    def __init__(self, **kw):
        super().__init__(**kw)
        self.opt = Optimizer(self.params.optimizer, self.params.lr)

    @property
    def evals_per_step(self) -> int:
        return 2 * self.params.n_directions

    @staticmethod
    def z(seed: int, step: int, j: int, dim: int) -> np.ndarray:
        """Direction j of step ``step``, regenerated from its seed."""
        return np.random.default_rng(_z_seed(seed, step, j)).standard_normal(dim)

    def init(self, theta0, seed):
        theta0 = np.asarray(theta0, dtype=np.float64)
        return MeZOState(mean=theta0.copy(), seed=int(seed), step=0, opt=self.opt.init(theta0.size))

    def ask(self, state):
        """Members [θ + εz_1 … θ + εz_n, θ − εz_1 … θ − εz_n]."""
        n, D, eps = self.params.n_directions, state.mean.size, self.params.eps
        thetas = np.empty((2 * n, D))
        for j in range(n):
            ez = eps * self.z(state.seed, state.step, j, D)
            np.add(state.mean, ez, out=thetas[j])
            np.subtract(state.mean, ez, out=thetas[n + j])
        return Members(thetas), state

    def projected_gradients(self, losses) -> np.ndarray:
        """The n scalars [L(θ + εz_j) − L(θ − εz_j)] / (2ε)."""
        n = self.params.n_directions
        losses = np.asarray(losses, dtype=np.float64)
        return (losses[:n] - losses[n:]) / (2 * self.params.eps)

    def gradient(self, state, losses) -> np.ndarray:
        """(1/n) Σ_j ĝ_j z_j, each z_j regenerated from its seed."""
        pg = self.projected_gradients(losses)
        g = np.zeros(state.mean.size)
        for j, s in enumerate(pg):
            g += s * self.z(state.seed, state.step, j, state.mean.size)
        return g / len(pg)

    def tell(self, state, population, losses):
        p = self.params
        g = self.gradient(state, losses)
        if p.weight_decay:
            g = g + p.weight_decay * state.mean
        delta, opt = self.opt.update(state.opt, g)
        return replace(state, mean=state.mean + delta, opt=opt, step=state.step + 1)
