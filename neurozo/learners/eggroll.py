"""EGGROLL — Sarkar, Fellows, Duque, Letcher, et al. (2025), "Evolution
Strategies at the Hyperscale" (Evolution Guided General Optimization via
Low-rank Learning; reference code ESHyperscale/HyperscaleES).

Population i ∈ {1…N} (N even) perturbs every weight matrix W ∈ R^{m×n} by a
rank-r product, every other parameter (biases) by full Gaussian noise:

    E_i = (σ/√r)·A_i B_iᵀ,   A_i ∈ R^{m×r}, B_i ∈ R^{n×r} standard normal,
    antithetic pairs share the factors: E_{i+N/2} = −E_i  (A → −A, same B),
    biases: e_i = σ ε_i, e_{i+N/2} = −e_i.

The forward pass of member i is x·Wᵀ + (σ/√r)·(x·B_i)·A_iᵀ + b_i — the
perturbation is never materialised (``LowRank`` populations;
``kernels.dense.dense_lowrank`` on the ideal substrate). Fitness is
standardised, f̃_i = (L_i − mean L)/std L, and the update is

    g = √N · (1/N) Σ_i f̃_i E_i          (ascent direction of the loss)
      = (1/√N)·(σ/√r)·Σ_{j<N/2} (f̃_j − f̃_{j+N/2}) A_j B_jᵀ   per matrix,
    θ ← θ + opt(g + λθ)                   (any optimiser: Adam by default, SGD)

accumulated as one GEMM of the stacked factors, [A_1w_1 … A_{N/2}w_{N/2}]·[B_1 … B_{N/2}]ᵀ,
so it never forms an m×n matrix per member. E[⟨∇L, E⟩E] = σ²∇L (the rank-r
factors' second moments are the identity), so with raw fitness (``fitness="none"``)
E[g] = √N·σ²·∇L: an unbiased gradient direction for a quadratic.

The learner needs to know which parts of θ are matrices: ``neurozo.run`` and
``step`` take them from the model's ``views``; for direct ``ask``/``tell`` use
``init(theta0, seed, views=model.views)``. A model without matrices (the point
of a function task) gets full-rank noise everywhere, i.e. OpenAI-ES with
standardised fitness.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Tuple

import numpy as np

from .._validate import check_choice, check_float, check_int, fail
from ..models.population import LowRank, Members
from . import registry
from .base import BaseState, Learner, centered_ranks, step_rng
from .optim import Optimizer, OptState

__all__ = ["EggRoll", "lowrank_thetas"]

#: (name, slice into θ, (m, n)) of every weight matrix perturbed at low rank
Layout = Tuple[Tuple[str, slice, Tuple[int, int]], ...]


@dataclass(frozen=True)
class EggRollParams:
    popsize: int = 64
    rank: int = 1
    sigma: float = 0.05
    lr: float = 0.02
    optimizer: str = "adam"
    fitness: str = "standardize"
    weight_decay: float = 0.0
    sigma_decay: float = 1.0
    sigma_min: float = 0.0

    def __post_init__(self):
        check_int("popsize", self.popsize, 2)
        if self.popsize % 2:
            fail("popsize", self.popsize, "must be even: EGGROLL samples antithetic pairs")
        check_int("rank", self.rank, 1)
        check_float("sigma", self.sigma, 0, lo_open=True)
        check_choice("fitness", self.fitness, ["standardize", "centered_ranks", "none"])
        check_float("weight_decay", self.weight_decay, 0)
        check_float("sigma_decay", self.sigma_decay, 0, 1, lo_open=True)
        check_float("sigma_min", self.sigma_min, 0, self.sigma)
        Optimizer(self.optimizer, self.lr)  # validates optimizer and lr


@dataclass(frozen=True)
class EggRollState(BaseState):
    opt: OptState = None
    sigma: float = 0.0
    layout: Optional[Layout] = None     # None: not known yet (taken from the model at the first step)
    other: Optional[np.ndarray] = None  # indices of θ with full-rank noise
    factors: Optional[dict] = None      # this step's half-population factors {name: (A (N/2,m,r), B (N/2,n,r))}
    eps: Optional[np.ndarray] = None    # this step's half-population full noise (N/2, len(other))


def _layout(views, rank: int) -> Tuple[Layout, np.ndarray, int]:
    """Matrices of a model's views (rank-checked) and the indices of every other parameter."""
    mats, rest, D = [], [], 0
    for name, (sl, shape) in views.items():
        D = max(D, sl.stop)
        if len(shape) == 2:
            m, n = shape
            if rank > min(m, n):
                fail("rank", rank, f"must be <= {min(m, n)}, the width of weight matrix {name} ({m}x{n})")
            mats.append((name, sl, (int(m), int(n))))
        else:
            rest.append(np.arange(sl.start, sl.stop))
    other = np.sort(np.concatenate(rest)) if rest else np.zeros(0, dtype=np.intp)
    return tuple(mats), other.astype(np.intp), D


def lowrank_thetas(pop: LowRank, layout: Layout) -> np.ndarray:
    """Materialise every member θ_i = base + delta_i + scale·vec(A_i B_iᵀ) (tests, devices that need it)."""
    thetas = pop.base[None] + pop.full_delta()
    for name, sl, (m, n) in layout:
        A, B = pop.factors[name]
        thetas[:, sl] += pop.scale * np.einsum("pmr,pnr->pmn", A, B).reshape(len(A), m * n)
    return thetas


@registry.register("eggroll")
class EggRoll(Learner):
    """EGGROLL: low-rank antithetic ES with standardised fitness and any optimiser."""

    Params = EggRollParams

    def __init__(self, **kw):
        super().__init__(**kw)
        self.opt = Optimizer(self.params.optimizer, self.params.lr)

    def init(self, theta0, seed, views=None):
        theta0 = np.asarray(theta0, dtype=np.float64)
        state = EggRollState(mean=theta0.copy(), seed=int(seed), step=0, opt=self.opt.init(theta0.size),
                             sigma=self.params.sigma)
        return self.with_views(state, views) if views is not None else state

    def check_model(self, model) -> None:
        """rank must fit every weight matrix of the model: 1 <= rank <= min(m, n)."""
        views = getattr(model, "views", None)
        if views is None:
            fail("model", type(model).__name__, "EggRoll needs a model with named views (θ layout)")
        _layout(views, self.params.rank)

    def with_views(self, state, views):
        """The state with the model's matrix layout (checks rank against every matrix)."""
        layout, other, D = _layout(views, self.params.rank)
        if D != state.mean.size:
            fail("views", f"{D} parameters", f"must cover θ of length {state.mean.size}")
        return replace(state, layout=layout, other=other)

    def ask(self, state):
        p = self.params
        if state.layout is None:
            fail("views", None, "EggRoll needs the model's views: init(theta0, seed, views=model.views), "
                                "or run it through step()/neurozo.run")
        rng = step_rng(state.seed, state.step)
        half, r, s = p.popsize // 2, p.rank, state.sigma
        factors, full = {}, {}
        for name, _, (m, n) in state.layout:
            A = rng.standard_normal((half, m, r))
            B = rng.standard_normal((half, n, r))
            factors[name] = (A, B)
            full[name] = (np.concatenate([A, -A]), np.concatenate([B, B]))
        eps = rng.standard_normal((half, state.other.size))
        delta = np.concatenate([s * eps, -s * eps])           # (N, K): only the full-noise parameters
        state = replace(state, factors=factors, eps=eps)
        if not state.layout:
            thetas = np.repeat(state.mean[None], p.popsize, axis=0)
            thetas[:, state.other] += delta
            return Members(thetas), state
        return LowRank(state.mean, full, s / np.sqrt(r), delta, delta_index=state.other), state

    def shape_fitness(self, losses) -> np.ndarray:
        losses = np.asarray(losses, dtype=np.float64)
        if self.params.fitness == "standardize":
            return (losses - losses.mean()) / (losses.std() + 1e-12)
        if self.params.fitness == "centered_ranks":
            return centered_ranks(losses)
        return losses

    def gradient(self, state, losses) -> np.ndarray:
        """g = √N·mean_i(f̃_i E_i), from the stored half-population factors (low-rank sums)."""
        p = self.params
        f = self.shape_fitness(losses)
        half = p.popsize // 2
        w = f[:half] - f[half:]                      # antithetic pairs: f̃⁺E − f̃⁻E = (f̃⁺ − f̃⁻)E
        norm = 1.0 / np.sqrt(p.popsize)              # √N · (1/N)
        g = np.zeros(state.mean.size)
        for name, sl, (m, n) in state.layout:
            A, B = state.factors[name]
            Aw = (A * w[:, None, None]).transpose(1, 0, 2).reshape(m, half * p.rank)
            Bs = B.transpose(1, 0, 2).reshape(n, half * p.rank)
            g[sl] = (norm * state.sigma / np.sqrt(p.rank) * (Aw @ Bs.T)).ravel()
        g[state.other] = norm * state.sigma * (w @ state.eps)
        return g

    def tell(self, state, population, losses):
        p = self.params
        g = self.gradient(state, losses)
        if p.weight_decay:
            g = g + p.weight_decay * state.mean
        delta, opt = self.opt.update(state.opt, g)
        sigma = max(p.sigma_min, state.sigma * p.sigma_decay)
        return replace(state, mean=state.mean + delta, opt=opt, sigma=sigma, step=state.step + 1,
                       factors=None, eps=None)

    def step(self, state, problem):
        if state.layout is None:
            self.check_model(problem.model)
            state = self.with_views(state, problem.model.views)
        return super().step(state, problem)
