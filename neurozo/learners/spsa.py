"""SPSA — Spall (1992), "Multivariate stochastic approximation using a
simultaneous perturbation gradient approximation", IEEE Trans. Automatic
Control 37(3); gains as in Spall (1998), "Implementation of the simultaneous
perturbation algorithm for stochastic optimization", IEEE Trans. AES 34(3).

At step k = 0, 1, … with Rademacher directions Δ ∈ {−1, +1}^D:

    c_k = c / (k + 1)^γ,         a_k = a / (A + k + 1)^α        (α 0.602, γ 0.101)
    ĝ_k = (1/q) Σ_{j<q} [L(θ + c_k Δ_j) − L(θ − c_k Δ_j)] / (2 c_k) · Δ_j⁻¹
    θ ← θ − a_k ĝ_k

(Δ_j⁻¹ = Δ_j elementwise for Rademacher.) Two evaluations per direction, q
directions per step (``n_directions``, default 1 = Spall's SPSA). Spall's
guidelines: A ≈ 10 % of the expected iterations, c ≈ the standard deviation
of the measurement noise, a such that a_0·|ĝ_0| is the wanted first move.
The estimate is unbiased for a quadratic: E[ΔΔᵀ] = I.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .._validate import check_float, check_int
from ..models.population import Members
from . import registry
from .base import BaseState, Learner, step_rng

__all__ = ["SPSA"]


@dataclass(frozen=True)
class SPSAParams:
    a: float = 1.0
    c: float = 0.02
    A: float = 1000.0
    alpha: float = 0.602
    gamma: float = 0.101
    n_directions: int = 1
    weight_decay: float = 0.0

    def __post_init__(self):
        check_float("a", self.a, 0, lo_open=True)
        check_float("c", self.c, 0, lo_open=True)
        check_float("A", self.A, 0)              # A + k + 1 > 0 for every k: the gain stays positive
        check_float("alpha", self.alpha, 0)      # negative exponents would make the gains grow
        check_float("gamma", self.gamma, 0)
        check_int("n_directions", self.n_directions, 1)
        check_float("weight_decay", self.weight_decay, 0)


@dataclass(frozen=True)
class SPSAState(BaseState):
    pass


@registry.register("spsa")
class SPSA(Learner):
    """Simultaneous-perturbation stochastic approximation with Spall's gain sequences."""

    Params = SPSAParams
    #: the default gains suit a network's loss (cross-entropy, curvature O(1)); Rastrigin's
    #: curvature is ≈ 400, so black-box functions need a smaller a (used by the registry test)
    function_params = {"a": 0.03}

    @property
    def evals_per_step(self) -> int:
        return 2 * self.params.n_directions

    def gains(self, k: int):
        """(a_k, c_k) at step k (k counts from 0)."""
        p = self.params
        return p.a / (p.A + k + 1) ** p.alpha, p.c / (k + 1) ** p.gamma

    def directions(self, state) -> np.ndarray:
        """Rademacher Δ (q, D) of this step, regenerated from (seed, step)."""
        rng = step_rng(state.seed, state.step)
        q, D = self.params.n_directions, state.mean.size
        return (rng.integers(0, 2, size=(q, D), dtype=np.int8) * 2 - 1).astype(np.float64)

    def init(self, theta0, seed):
        return SPSAState(mean=np.asarray(theta0, dtype=np.float64).copy(), seed=int(seed), step=0)

    def ask(self, state):
        """Members [θ + c_kΔ_1 … θ + c_kΔ_q, θ − c_kΔ_1 … θ − c_kΔ_q]."""
        _, ck = self.gains(state.step)
        d = ck * self.directions(state)
        return Members(np.concatenate([state.mean[None] + d, state.mean[None] - d])), state

    def gradient(self, state, losses) -> np.ndarray:
        """ĝ_k from the 2q losses of ``ask``'s population."""
        q = self.params.n_directions
        losses = np.asarray(losses, dtype=np.float64)
        _, ck = self.gains(state.step)
        diff = (losses[:q] - losses[q:]) / (2 * ck)
        return diff @ self.directions(state) / q

    def tell(self, state, population, losses):
        p = self.params
        g = self.gradient(state, losses)
        if p.weight_decay:
            g = g + p.weight_decay * state.mean
        ak, _ = self.gains(state.step)
        return replace(state, mean=state.mean - ak * g, step=state.step + 1)
