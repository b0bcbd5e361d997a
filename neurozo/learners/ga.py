"""Deep GA — Such, Madhavan, Conti, Lehman, Stanley & Clune (2017), "Deep
Neuroevolution: Genetic Algorithms Are a Competitive Alternative for Training
Deep Neural Networks for Reinforcement Learning", arXiv:1712.06567.

A population of N individuals; each generation g:

    parents   = the T best individuals of generation g−1   (truncation selection)
    elites    = the E best individuals, copied unchanged  (elitism)
    children  θ' = θ_parent + σ_g·ε(τ),  parent uniform among the T, ε(τ) ~ N(0, I)
                 regenerated from the mutation's seed τ

An individual is stored as its chain of seeds [τ_1, …, τ_g] and rebuilt as

    θ = θ_0 + Σ_k σ_k·ε(τ_k)

(the paper's compact encoding; ``reconstruct`` does it). The learner keeps the
current generation's vectors as a cache, so a step costs N mutations, not N
chain replays. Mini-batch fitness is noisy, so the elites are re-evaluated on
every new batch together with the children; the centre (what is tested) is the
best individual of the last evaluated generation. σ_g = max(σ_min, σ·decay^g).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Tuple

import numpy as np

from .._validate import check_float, check_int, fail
from ..models.population import Members
from . import registry
from .base import BaseState, Learner, step_rng

__all__ = ["DeepGA", "reconstruct"]


@dataclass(frozen=True)
class DeepGAParams:
    popsize: int = 64
    truncation: int = 4
    elitism: int = 1
    sigma: float = 0.02
    sigma_decay: float = 1.0
    sigma_min: float = 0.0

    def __post_init__(self):
        check_int("popsize", self.popsize, 2)
        check_int("truncation", self.truncation, 1, self.popsize)
        check_int("elitism", self.elitism, 0, min(self.truncation, self.popsize - 1))
        check_float("sigma", self.sigma, 0, lo_open=True)
        check_float("sigma_decay", self.sigma_decay, 0, 1, lo_open=True)
        check_float("sigma_min", self.sigma_min, 0, self.sigma)


Chain = Tuple[Tuple[int, float], ...]   # ((seed τ_k, σ_k), …)


@dataclass(frozen=True)
class DeepGAState(BaseState):
    theta0: np.ndarray = None
    chains: Tuple[Chain, ...] = ()       # the population: one seed chain per individual
    thetas: np.ndarray = None            # cache: the chains' vectors (P, D)
    sigma: float = 0.0


def mutation(seed: int, dim: int) -> np.ndarray:
    """ε(τ): the standard-normal mutation direction regenerated from its seed."""
    return np.random.default_rng(seed).standard_normal(dim)


def reconstruct(theta0: np.ndarray, chain: Chain) -> np.ndarray:
    """θ = θ_0 + Σ_k σ_k·ε(τ_k), replayed in order (bit-identical to the incremental build)."""
    theta = np.array(theta0, dtype=np.float64)
    for seed, sigma in chain:
        theta += sigma * mutation(seed, theta.size)
    return theta


@registry.register("ga")
class DeepGA(Learner):
    """Deep GA: truncation selection, elitism, Gaussian mutation, seed-chain individuals."""

    Params = DeepGAParams

    def init(self, theta0, seed):
        theta0 = np.asarray(theta0, dtype=np.float64).copy()
        state = DeepGAState(mean=theta0, seed=int(seed), step=0, theta0=theta0, sigma=self.params.sigma)
        # generation 0: θ_0 itself (the elite slot) and N − 1 mutants of it
        return self._breed(state, [()], theta0[None], n_elite=1)

    def _breed(self, state, parent_chains, parent_thetas, n_elite):
        """Children of the given parents (best first); the first ``n_elite`` are copied unchanged."""
        p = self.params
        rng = step_rng(state.seed, state.step, 1)
        chains = list(parent_chains[:n_elite])
        thetas = np.empty((p.popsize, state.theta0.size))
        thetas[:n_elite] = np.asarray(parent_thetas[:n_elite])
        n_child = p.popsize - n_elite
        pick = rng.integers(0, len(parent_chains), size=n_child)
        seeds = rng.integers(0, 2**63 - 1, size=n_child, dtype=np.int64)
        for i, (j, tau) in enumerate(zip(pick, seeds)):
            chains.append(parent_chains[j] + ((int(tau), float(state.sigma)),))
            np.add(parent_thetas[j], state.sigma * mutation(int(tau), state.theta0.size), out=thetas[n_elite + i])
        return replace(state, chains=tuple(chains), thetas=thetas)

    def ask(self, state):
        return Members(state.thetas), state

    def tell(self, state, population, losses):
        p = self.params
        losses = np.asarray(losses, dtype=np.float64)
        if losses.shape != (p.popsize,):
            fail("losses", losses.shape, f"must have shape ({p.popsize},), one per individual")
        order = np.argsort(np.where(np.isfinite(losses), losses, np.inf), kind="stable")
        top = order[:p.truncation]
        sigma = max(p.sigma_min, state.sigma * p.sigma_decay)
        state = replace(state, mean=state.thetas[order[0]].copy(), step=state.step + 1, sigma=sigma)
        return self._breed(state, [state.chains[i] for i in top], state.thetas[top], n_elite=p.elitism)

    def center(self, state):
        return state.mean
