"""Intrinsic node perturbation: the device's own read noise is the probe.

Node perturbation (Hiratani et al. 2022) with the activity-difference estimate of
Dalm, Ahmad & van Gerven (2023), "Effective learning with node perturbation in deep
neural networks", but with no injected noise at all: the weights θ are programmed
once per step and read R ≥ 2 times on the same mini-batch. A noisy substrate (an
analog crossbar's read and ADC noise, stochastic spike coding) makes every read
differ; the measured pre-activations z_{r,k,b} and per-sample losses L_{r,b} of the
reads are compared with their mean over reads (z̄, L̄, inputs h̄):

    δa_{r,k,b} = z_{r,k,b} − z̄_{k,b},        δL_{r,b} = L_{r,b} − L̄_b
    ĝ_{W_k} = 1/(R·B) Σ_r Σ_b M·δL_{r,b} · δa_{r,k,b} h̄_{k−1,b}ᵀ / Σ_l ‖δa_{r,l,b}‖²
    ĝ_{b_k} = the same without h̄,          θ ← θ + Optimizer(ĝ + λθ)

(M = number of units; for R = 2 this is M·(L₁ − L₂)(z₁ − z₂)h̄ᵀ/‖z₁ − z₂‖²). It is the
zeroth-order paradigm's claim made literal: hardware noise is a resource. On a
noiseless substrate every δa is zero and the learner makes no update.
Each step costs R evaluations and one programming of the weights.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .._validate import check_float, check_int
from ..models.population import Members
from . import registry
from .base import BaseState, Learner
from .node_perturbation import correlate, layer_gradients_to_flat, layered, per_sample_view
from .optim import Optimizer, OptState

__all__ = ["IntrinsicNP"]


@dataclass(frozen=True)
class IntrinsicNPParams:
    reads: int = 2
    lr: float = 0.003
    optimizer: str = "adam"
    weight_decay: float = 0.0

    def __post_init__(self):
        check_int("reads", self.reads, 2)
        check_float("weight_decay", self.weight_decay, 0)
        Optimizer(self.optimizer, self.lr)


@dataclass(frozen=True)
class IntrinsicNPState(BaseState):
    opt: OptState = None


@registry.register("intrinsic-np")
class IntrinsicNP(Learner):
    """Node perturbation driven by the substrate's intrinsic read noise (no injected noise)."""

    Params = IntrinsicNPParams
    function_tasks = False      # needs a layered model on a substrate that has read noise
    needs_noisy_substrate = True

    def __init__(self, **kw):
        super().__init__(**kw)
        self.opt = Optimizer(self.params.optimizer, self.params.lr)

    @property
    def evals_per_step(self) -> int:
        return self.params.reads

    def init(self, theta0, seed):
        theta0 = np.asarray(theta0, dtype=np.float64)
        return IntrinsicNPState(mean=theta0.copy(), seed=int(seed), step=0, opt=self.opt.init(theta0.size))

    def ask(self, state):
        return Members(state.mean[None]), state

    def estimate(self, model, losses: np.ndarray, records) -> np.ndarray:
        """Flat gradient estimate from per-read losses (R, B) and per-read layer records."""
        R, B = losses.shape
        L = losses - losses.mean(axis=0, keepdims=True)                        # δL (R, B)
        n_layers = len(records[0])
        zs = [np.concatenate([per_sample_view(rec[k][1], B) for rec in records]) for k in range(n_layers)]
        hs = [np.mean([per_sample_view(rec[k][0], B)[0] for rec in records], axis=0)[None]
              for k in range(n_layers)]                                          # h̄ (1, B, n)
        acts = [z - z.mean(axis=0, keepdims=True) for z in zs]                 # δa (R, B, m)
        M = sum(a.shape[-1] for a in acts)
        norm2 = sum((a * a).sum(axis=-1) for a in acts)
        coef = np.where(norm2 > 0, M * L / np.where(norm2 > 0, norm2, 1.0), 0.0)
        return layer_gradients_to_flat(model, correlate(coef, acts, hs))

    def tell(self, state, population, losses, records=None, model=None):
        g = self.estimate(model, np.asarray(losses, dtype=np.float64), records)
        if self.params.weight_decay:
            g = g + self.params.weight_decay * state.mean
        delta, opt = self.opt.update(state.opt, g)
        return replace(state, mean=state.mean + delta, opt=opt, step=state.step + 1)

    def step(self, state, problem):
        model, sub = problem.model, problem.substrate
        layered(model, "intrinsic-np")
        pop, state = self.ask(state)
        programmed = sub.program(model.layer_weights(pop), problem.device_rng)
        problem.count(self.params.reads)
        losses, records = [], []
        for _ in range(self.params.reads):
            with sub.recording() as rec:
                out = sub.run(programmed, problem.x, problem.device_rng, model.activations)
            losses.append(problem.loss_fn(out, problem.y, per_sample=True)[0])
            records.append(rec)
        losses = np.asarray(losses, dtype=np.float64)
        state = self.tell(state, pop, losses, records=records, model=model)
        return state, losses.mean(axis=1)
