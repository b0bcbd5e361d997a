"""First-order optimisers applied to estimated gradients (ZO learners use them).

sgd    v ← μ·v + g;  Δθ = −η·(g + μ·v if nesterov else v)
adam   Kingma & Ba 2015: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
       Δθ = −η·m̂/(√v̂ + ε) with bias-corrected m̂, v̂

Weight decay (L2, coupled, as OpenAI-ES: g ← g + λ·θ) is applied by the learner.
Frozen ``params`` and ``OptState``; ``update`` returns (Δθ, new state).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .._validate import check_choice, check_float

__all__ = ["Optimizer", "OptState"]


@dataclass(frozen=True)
class OptState:
    m: np.ndarray
    v: np.ndarray
    t: int = 0


@dataclass(frozen=True)
class Optimizer:
    name: str = "adam"
    lr: float = 0.03
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    momentum: float = 0.0

    def __post_init__(self):
        check_choice("optimizer", self.name, ["adam", "sgd"])
        check_float("lr", self.lr, 0, lo_open=True)
        check_float("beta1", self.beta1, 0, 1, hi_open=True)
        check_float("beta2", self.beta2, 0, 1, hi_open=True)
        check_float("eps", self.eps, 0, lo_open=True)
        check_float("momentum", self.momentum, 0, 1, hi_open=True)

    def init(self, dim: int) -> OptState:
        return OptState(np.zeros(dim), np.zeros(dim), 0)

    def update(self, state: OptState, grad: np.ndarray, lr: float | None = None):
        lr = self.lr if lr is None else lr
        t = state.t + 1
        if self.name == "sgd":
            v = self.momentum * state.v + grad
            return -lr * v, replace(state, v=v, t=t)
        m = self.beta1 * state.m + (1 - self.beta1) * grad
        v = self.beta2 * state.v + (1 - self.beta2) * grad * grad
        mhat = m / (1 - self.beta1 ** t)
        vhat = v / (1 - self.beta2 ** t)
        return -lr * mhat / (np.sqrt(vhat) + self.eps), OptState(m, v, t)
