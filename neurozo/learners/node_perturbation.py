"""Node perturbation — Hiratani, Mehta, Lillicrap & Latham (2022), "On the stability
and scalability of node perturbation learning" (NeurIPS 2022); activity-difference
variant: Dalm, Ahmad & van Gerven (2023), "Effective learning with node perturbation
in deep neural networks".

Each step runs one clean pass and N = popsize − 1 noisy passes of the same weights
on one mini-batch. In noisy pass i, ξ_{i,k} ~ N(0, σ²) — one value per sample and
unit, shared over time steps of a spiking substrate — is added to layer k's
pre-activations z_k (the population's ``node_noise``). With per-sample losses L_b
(clean) and L̃_{i,b} (noisy) and the clean layer inputs h_{k−1,b}:

variant ``noise`` (Hiratani et al.), the known injected noise is correlated:

    ĝ_{W_k} = 1/(N·B) Σ_i Σ_b ((L̃_{i,b} − L_b)/σ²) · ξ_{i,k,b} h_{k−1,b}ᵀ,
    ĝ_{b_k} = 1/(N·B) Σ_i Σ_b ((L̃_{i,b} − L_b)/σ²) · ξ_{i,k,b}

variant ``activity`` (Dalm et al.), the measured activity difference
δa_{i,k,b} = z̃_{i,k,b} − z_{k,b} (injected noise plus what the layers below
propagated) replaces ξ, normalised by the total perturbation of that pass:

    ĝ_{W_k} = 1/(N·B) Σ_i Σ_b M·(L̃_{i,b} − L_b) · δa_{i,k,b} h_{k−1,b}ᵀ / Σ_l ‖δa_{i,l,b}‖²

(M = number of perturbed units, so that E[δa δaᵀ/‖δa‖²] = I/M is undone for
isotropic δa). The update is θ ← θ + Optimizer(ĝ + λθ) (Adam by default; plain
SGD gives the papers' ΔW_k = −η ĝ_{W_k}).

On a spiking substrate z and h carry a time axis; the estimate of ∂L/∂z (one ξ
per sample for all T steps) is paired with the time-averaged input h̄_{k−1}.
Needs a layered model (``MLP``): the point model of function tasks has no nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Sequence, Tuple

import numpy as np

from .._validate import check_choice, check_float, check_int, fail
from ..models.population import Members
from . import registry
from .base import BaseState, Learner, step_rng
from .optim import Optimizer, OptState

__all__ = ["NodePerturbation", "layered", "per_sample_view", "layer_gradients_to_flat"]


def layered(model, learner: str) -> int:
    """Number of layers of a layered model, or a ValueError naming the model."""
    n = getattr(model, "n_layers", None)
    if n is None or not hasattr(model, "layer_weights"):
        fail("model", getattr(model, "spec", type(model).__name__),
             f"learner {learner!r} perturbs layer nodes: it needs a layered model such as 'mlp'")
    return int(n)


def per_sample_view(a: np.ndarray, batch: int) -> np.ndarray:
    """(P, ..., B, m) → (P, B, m), averaging any axes (time) between P and the batch."""
    a = np.asarray(a, dtype=np.float64)
    if a.shape[-2] != batch:
        raise ValueError(f"recorded activity has shape {a.shape}: expected batch {batch} on axis −2")
    if a.ndim == 3:
        return a
    return a.reshape(a.shape[0], -1, batch, a.shape[-1]).mean(axis=1)


def layer_gradients_to_flat(model, grads: Sequence[Tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """[(g_W_k (m,n), g_b_k (m,))] → flat gradient in the model's θ layout."""
    g = np.zeros(model.n_params)
    for k, (gW, gb) in enumerate(grads):
        sl, shape = model.views[f"W{k}"]
        g[sl] = gW.reshape(-1)
        sl, shape = model.views[f"b{k}"]
        g[sl] = gb.reshape(-1)
    return g


def correlate(coef: np.ndarray, acts: List[np.ndarray], inputs: List[np.ndarray]):
    """Σ over probes and samples of coef·act_k·input_kᵀ, per layer.

    coef (N, B); acts[k] (N, B, m_k) — the probe direction; inputs[k] (1 or N, B, n_k).
    Returns [(g_W (m,n), g_b (m,))], divided by N·B.
    """
    N, B = coef.shape
    out = []
    for a, h in zip(acts, inputs):
        ca = coef[..., None] * a                               # (N, B, m)
        if h.shape[0] == 1:
            gW = ca.reshape(-1, ca.shape[-1]).T @ np.broadcast_to(h, (N, *h.shape[1:])).reshape(-1, h.shape[-1])
        else:
            gW = np.einsum("pbm,pbn->mn", ca, h)
        out.append((gW / (N * B), ca.sum(axis=(0, 1)) / (N * B)))
    return out


@dataclass(frozen=True)
class NodePerturbationParams:
    popsize: int = 2            # 1 clean pass + popsize − 1 noisy passes
    sigma: float = 0.1
    lr: float = 0.003
    optimizer: str = "adam"
    variant: str = "noise"
    weight_decay: float = 0.0

    def __post_init__(self):
        check_int("popsize", self.popsize, 2)
        check_float("sigma", self.sigma, 0, lo_open=True)
        check_choice("variant", self.variant, ["noise", "activity"])
        check_float("weight_decay", self.weight_decay, 0)
        Optimizer(self.optimizer, self.lr)


@dataclass(frozen=True)
class NodePerturbationState(BaseState):
    opt: OptState = None


@registry.register("node-perturbation")
class NodePerturbation(Learner):
    """Node perturbation with per-sample loss differences (noise or activity-difference variant)."""

    Params = NodePerturbationParams
    function_tasks = False  # perturbs hidden nodes: needs a layered model, not the point model

    def __init__(self, **kw):
        super().__init__(**kw)
        self.opt = Optimizer(self.params.optimizer, self.params.lr)

    def init(self, theta0, seed):
        theta0 = np.asarray(theta0, dtype=np.float64)
        return NodePerturbationState(mean=theta0.copy(), seed=int(seed), step=0, opt=self.opt.init(theta0.size))

    def noise(self, state, sizes: Sequence[int], batch: int) -> List[np.ndarray]:
        """Per layer (popsize, B, m_k): zeros for the clean member 0, N(0, σ²) for the others."""
        p = self.params
        rng = step_rng(state.seed, state.step)
        out = []
        for m in sizes:
            z = np.zeros((p.popsize, batch, m))
            z[1:] = p.sigma * rng.standard_normal((p.popsize - 1, batch, m))
            out.append(z)
        return out

    def ask(self, state, model=None, batch: int = 1):
        """Clean member + noisy copies; the noise is in ``node_noise`` (needs the model's layer sizes)."""
        if model is None:
            fail("model", None, "node perturbation's ask needs the layered model to size its node noise")
        sizes = model.sizes[1:]
        thetas = np.repeat(state.mean[None], self.params.popsize, axis=0)
        return Members(thetas, node_noise=self.noise(state, sizes, batch)), state

    def estimate(self, population, losses, record, model) -> np.ndarray:
        """Flat gradient estimate from per-sample losses (P, B) and the layer record of one evaluation."""
        p = self.params
        losses = np.asarray(losses, dtype=np.float64)
        if losses.ndim != 2 or record is None or model is None:
            fail("losses", getattr(losses, "shape", None),
                 "node perturbation needs per-sample losses (P, B), the layer record and the model")
        B = losses.shape[1]
        dL = losses[1:] - losses[0:1]                                      # (N, B)
        inputs = [per_sample_view(h, B)[:1] for h, _ in record]            # clean inputs (1, B, n)
        if p.variant == "noise":
            acts = [np.asarray(nz[1:], dtype=np.float64) for nz in population.node_noise]
            coef = dL / p.sigma ** 2
        else:
            zs = [per_sample_view(z, B) for _, z in record]
            acts = [z[1:] - z[0:1] for z in zs]                            # measured δa (N, B, m)
            M = sum(a.shape[-1] for a in acts)
            norm2 = sum((a * a).sum(axis=-1) for a in acts)                # (N, B)
            coef = np.where(norm2 > 0, M * dL / np.where(norm2 > 0, norm2, 1.0), 0.0)
        return layer_gradients_to_flat(model, correlate(coef, acts, inputs))

    def tell(self, state, population, losses, record=None, model=None):
        """losses (P, B) per sample; record [(h_{k−1}, z_k)] per layer from ``Substrate.recording``;
        model: the layered model whose θ layout the gradient takes."""
        g = self.estimate(population, losses, record, model)
        if self.params.weight_decay:
            g = g + self.params.weight_decay * state.mean
        delta, opt = self.opt.update(state.opt, g)
        return replace(state, mean=state.mean + delta, opt=opt, step=state.step + 1)

    def step(self, state, problem):
        layered(problem.model, "node-perturbation")
        B = problem.x.shape[0]
        pop, state = self.ask(state, problem.model, B)
        with problem.substrate.recording() as rec:
            losses = problem.evaluate(pop, per_sample=True)
        state = self.tell(state, pop, losses, record=rec, model=problem.model)
        return state, losses.mean(axis=1)
