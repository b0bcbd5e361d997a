"""PolyStep — Le (2026), "Training Non-Differentiable Networks via Optimal Transport"
(arXiv:2605.01928), extending Sinkhorn Step (Le et al., NeurIPS 2023).

Parameters live in a low-rank subspace per weight matrix: for W_k (m×n),
ΔW_k = A_k·S_k with S_k (r×n) a fixed random matrix with orthonormal rows and the
coordinates A_k (m×r); biases are coordinates themselves. So θ = θ₀ + Π x. Every
``rotation_interval`` steps the displacement is absorbed (θ₀ ← θ₀ + Πx, x ← 0) and
fresh S_k are drawn. x is split into particles X_i of dimension p. Per step, for
each active particle i (the others held fixed):

    R_i           a random rotation (Haar; optionally its first column biased to
                  the particle's previous descent direction, then re-orthogonalised)
    v_j           polytope vertices: orthoplex ±e_k (2p, default), regular simplex
                  (p + 1), cube (±1/√p)^p (2^p)
    Y_ij          = X_i + s_t·R_i v_j                    step points, radius s_t
    probes        X_i + c_k·ρ_t·R_i v_j, c_k = (k − ½)/K   (K probes per vertex, radius ρ_t)
    C_ij          = mean over the K probes of the mini-batch loss
    W_ij          = softmax_j(−C_ij / ε_t)
    X_i          ← Σ_j W_ij Y_ij                          (barycentric projection)

To first order ΔX_i ≈ −(s_t·ρ_t·c̄/(ε_t·p))·∇_{X_i}L: the softmax of the one-sided
entropic optimal-transport limit acts as a gradient step without gradients.
Defaults (paper): ε 0.1, step 1, probe 2, radii s_t = step·ε_t, ρ_t = probe·ε_t
(coupled to ε, ``radius_schedule="eps"``), orthoplex. Schedules for ε and for the
radii: constant, linear, cosine or exponential from the start value to
``*_final`` over ``schedule_steps`` steps. ``cost_scale="std"`` standardises each
particle's cost row, (C_ij − mean_j)/std_j, so that ε sets the concentration of W
whatever the loss scale (an option of ours; the paper uses raw costs). Evaluations per step:
particles_per_step × vertices × num_probe.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import List, Tuple

import numpy as np

from .._validate import check_bool, check_choice, check_float, check_int, fail
from ..models.population import Members
from . import registry
from .base import BaseState, Learner, step_rng

__all__ = ["PolyStep", "polytope_vertices", "random_rotations", "schedule_value", "softmax_weights",
           "barycentric_step"]

SCHEDULES = ["constant", "linear", "cosine", "exponential"]


def polytope_vertices(kind: str, p: int) -> np.ndarray:
    """Unit-norm, mean-centred vertices (V, p) of the orthoplex, regular simplex or cube."""
    if kind == "orthoplex":
        return np.concatenate([np.eye(p), -np.eye(p)])
    if kind == "simplex":
        E = np.eye(p + 1) - 1.0 / (p + 1)           # centred standard basis of R^{p+1}
        U, _, _ = np.linalg.svd(E)                  # orthonormal basis of the hyperplane Σ = 0
        V = E @ U[:, :p]
        return V / np.linalg.norm(V, axis=1, keepdims=True)
    if kind == "cube":
        return np.array(list(itertools.product([1.0, -1.0], repeat=p))) / math.sqrt(p)
    fail("polytope", kind, "must be one of ['orthoplex', 'simplex', 'cube']")


def random_rotations(rng: np.random.Generator, n: int, p: int, bias: np.ndarray | None = None) -> np.ndarray:
    """n Haar-random rotations (n, p, p); with ``bias`` (n, p) the first column is bias/‖bias‖."""
    G = rng.standard_normal((n, p, p))
    if bias is not None:
        nb = np.linalg.norm(bias, axis=1)
        ok = nb > 1e-12
        G[ok, :, 0] = bias[ok] / nb[ok, None]
    Q, R = np.linalg.qr(G)
    d = np.sign(np.diagonal(R, axis1=1, axis2=2))
    d[d == 0] = 1.0
    Q = Q * d[:, None, :]                             # Haar measure; keeps column 0 = +bias direction
    det = np.linalg.det(Q)
    Q[det < 0, :, -1] *= -1                           # proper rotations (det +1)
    return Q


def schedule_value(kind: str, start: float, final: float, step: int, horizon: int) -> float:
    """Value at ``step`` of a schedule from ``start`` to ``final`` over ``horizon`` steps (held after)."""
    u = min(step / horizon, 1.0) if horizon > 0 else 1.0
    if kind == "constant":
        return start
    if kind == "linear":
        return start + (final - start) * u
    if kind == "cosine":
        return final + 0.5 * (start - final) * (1 + math.cos(math.pi * u))
    if kind == "exponential":
        return start * (final / start) ** u
    fail("schedule", kind, f"must be one of {SCHEDULES}")


def softmax_weights(C: np.ndarray, eps: float) -> np.ndarray:
    """W_ij = softmax_j(−C_ij/ε), computed stably (row minimum subtracted)."""
    Z = -(C - C.min(axis=1, keepdims=True)) / eps
    W = np.exp(Z)
    return W / W.sum(axis=1, keepdims=True)


def barycentric_step(X: np.ndarray, R: np.ndarray, V: np.ndarray, radius: float, W: np.ndarray) -> np.ndarray:
    """X_i ← Σ_j W_ij (X_i + radius·R_i v_j) for particles X (n, p), rotations R (n, p, p)."""
    dirs = np.einsum("npq,vq->nvp", R, V)            # R_i v_j  (n, V, p)
    return X + radius * np.einsum("nv,nvp->np", W, dirs)


@dataclass(frozen=True)
class PolyStepParams:
    rank: int = 4
    particle_dim: int = 8
    particles_per_step: int = 4
    polytope: str = "orthoplex"
    eps: float = 0.1
    step: float = 1.0
    probe: float = 2.0
    num_probe: int = 1
    eps_schedule: str = "constant"
    eps_final: float = 0.01
    radius_schedule: str = "eps"
    radius_final: float = 0.1        # final radius as a fraction of the start radius
    schedule_steps: int = 1000
    biased_rotation: bool = False
    rotation_interval: int = 10
    cost_scale: str = "std"          # "none" (paper) | "std": standardise each particle's cost row before the softmax

    def __post_init__(self):
        check_int("rank", self.rank, 1)
        check_int("particle_dim", self.particle_dim, 1)
        check_int("particles_per_step", self.particles_per_step, 1)
        check_choice("polytope", self.polytope, ["orthoplex", "simplex", "cube"])
        if self.polytope == "cube" and self.particle_dim > 12:
            fail("particle_dim", self.particle_dim, "must be <= 12 with polytope='cube' (2^p vertices)")
        check_float("eps", self.eps, 0, lo_open=True)
        check_float("step", self.step, 0, lo_open=True)
        check_float("probe", self.probe, 0, lo_open=True)
        check_int("num_probe", self.num_probe, 1)
        check_choice("eps_schedule", self.eps_schedule, SCHEDULES)
        check_choice("radius_schedule", self.radius_schedule, ["eps"] + SCHEDULES)
        check_int("schedule_steps", self.schedule_steps, 1)
        # schedules must stay positive: their end points must be > 0
        if self.eps_schedule != "constant":
            check_float("eps_final", self.eps_final, 0, lo_open=True)
        if self.radius_schedule not in ("eps", "constant"):
            check_float("radius_final", self.radius_final, 0, lo_open=True)
        check_bool("biased_rotation", self.biased_rotation)
        check_int("rotation_interval", self.rotation_interval, 0)
        check_choice("cost_scale", self.cost_scale, ["none", "std"])

    @property
    def n_vertices(self) -> int:
        p = self.particle_dim
        return {"orthoplex": 2 * p, "simplex": p + 1, "cube": 2 ** p}[self.polytope]


@dataclass(frozen=True)
class PolyStepState(BaseState):
    base: np.ndarray = None          # θ₀ (absorbed)
    X: np.ndarray = None             # particles (n_particles, p)
    epoch: int = 0                   # subspace draw (S_k redrawn each epoch)
    prev_dir: np.ndarray = None      # last descent direction per particle (biased rotation)


class _Subspace:
    """Π for one model layout and one draw of the S_k: coordinate j → (flat indices, values)."""

    def __init__(self, model, rank: int, p: int, seed: int, epoch: int):
        rng = np.random.default_rng([int(seed), int(epoch), 7])
        idx: List[np.ndarray] = []
        val: List[np.ndarray] = []
        for k in range(model.n_layers):
            sl, (m, n) = model.views[f"W{k}"]
            r = min(rank, m, n)
            S, _ = np.linalg.qr(rng.standard_normal((n, r)))      # (n, r) orthonormal columns
            rows = sl.start + np.arange(m)[:, None] * n + np.arange(n)[None, :]   # (m, n) flat indices
            for a in range(m):
                for c in range(r):
                    idx.append(rows[a])
                    val.append(S[:, c])
            slb, (mb,) = model.views[f"b{k}"]
            for a in range(mb):
                idx.append(np.array([slb.start + a]))
                val.append(np.array([1.0]))
        self.dim = len(idx)
        self.n_particles = -(-self.dim // p)
        width = max(len(i) for i in idx)
        total = self.n_particles * p
        self.idx = np.zeros((total, width), dtype=np.intp)
        self.val = np.zeros((total, width))
        for j, (i, v) in enumerate(zip(idx, val)):
            self.idx[j, : len(i)] = i
            self.val[j, : len(v)] = v
        self.p = p

    def apply(self, thetas: np.ndarray, coords: np.ndarray, particle: np.ndarray, delta: np.ndarray) -> None:
        """thetas[q] += Π (delta[q] placed at particle[q]'s coordinates), in place."""
        p = self.p
        cols = particle[:, None] * p + np.arange(p)[None, :]          # (Q, p) coordinate ids
        I = self.idx[cols]                                              # (Q, p, w)
        Vv = self.val[cols] * delta[:, :, None]                         # (Q, p, w)
        q = np.broadcast_to(np.arange(len(particle))[:, None, None], I.shape)
        np.add.at(thetas, (q.reshape(-1), I.reshape(-1)), Vv.reshape(-1))

    def to_theta(self, base: np.ndarray, X: np.ndarray) -> np.ndarray:
        theta = base.copy()
        flat = X.reshape(-1)
        np.add.at(theta, self.idx.reshape(-1), (self.val * flat[:, None]).reshape(-1))
        return theta


@registry.register("polystep")
class PolyStep(Learner):
    """Polytope probes in a low-rank subspace, softmax over −C/ε, barycentric particle step."""

    Params = PolyStepParams
    function_tasks = False   # the subspace is built per weight matrix of a layered model

    def __init__(self, **kw):
        super().__init__(**kw)
        self.vertices = polytope_vertices(self.params.polytope, self.params.particle_dim)
        self._sub = None
        self._sub_key = None

    @property
    def evals_per_step(self) -> int:
        p = self.params
        return p.particles_per_step * p.n_vertices * p.num_probe

    def check_model(self, model) -> None:
        """rank must fit every weight matrix: 1 <= rank <= min(m, n)."""
        n_layers = getattr(model, "n_layers", None)
        if n_layers is None or not hasattr(model, "views"):
            fail("model", getattr(model, "spec", type(model).__name__),
                 "polystep needs a layered model such as 'mlp' (rank-r subspace per weight matrix)")
        width = min(min(model.views[f"W{k}"][1]) for k in range(n_layers))
        if self.params.rank > width:
            fail("rank", self.params.rank, f"must be an integer >= 1 and <= {width}, the narrowest layer width")

    def subspace(self, model, seed: int, epoch: int) -> _Subspace:
        key = (id(model), seed, epoch)
        if self._sub_key != key:
            self._sub = _Subspace(model, self.params.rank, self.params.particle_dim, seed, epoch)
            self._sub_key = key
        return self._sub

    def init(self, theta0, seed):
        theta0 = np.asarray(theta0, dtype=np.float64)
        return PolyStepState(mean=theta0.copy(), seed=int(seed), step=0, base=theta0.copy(), X=None, epoch=0)

    def radii(self, t: int) -> Tuple[float, float, float]:
        """(ε_t, step radius s_t, probe radius ρ_t)."""
        p = self.params
        eps = schedule_value(p.eps_schedule, p.eps, p.eps_final, t, p.schedule_steps)
        if p.radius_schedule == "eps":
            scale = eps
        else:
            scale = p.eps * schedule_value(p.radius_schedule, 1.0, p.radius_final, t, p.schedule_steps)
        return eps, p.step * scale, p.probe * scale

    def ask_for(self, state, model):
        """The probe population (Members) and the bookkeeping tell needs."""
        p = self.params
        sub = self.subspace(model, state.seed, state.epoch)
        X = state.X if state.X is not None else np.zeros((sub.n_particles, p.particle_dim))
        rng = step_rng(state.seed, state.step, 1)
        n_act = min(p.particles_per_step, sub.n_particles)
        active = np.sort(rng.choice(sub.n_particles, n_act, replace=False))
        bias = state.prev_dir[active] if (p.biased_rotation and state.prev_dir is not None) else None
        R = random_rotations(rng, n_act, p.particle_dim, bias)
        eps, s, rho = self.radii(state.step)
        dirs = np.einsum("npq,vq->nvp", R, self.vertices)              # (n_act, V, p)
        c = (np.arange(p.num_probe) + 0.5) / p.num_probe
        offs = rho * c[None, None, :, None] * dirs[:, :, None, :]       # (n_act, V, K, p)
        Vn = self.vertices.shape[0]
        Q = n_act * Vn * p.num_probe
        center = sub.to_theta(state.base, X)
        thetas = np.repeat(center[None], Q, axis=0)
        particle = np.repeat(active, Vn * p.num_probe)
        sub.apply(thetas, X, particle, offs.reshape(Q, p.particle_dim))
        info = dict(X=X, active=active, R=R, eps=eps, s=s, center=center)
        return Members(thetas), info

    def ask(self, state, model=None):
        if model is None:
            fail("model", None, "polystep's ask needs the layered model (its subspace is per weight matrix)")
        pop, info = self.ask_for(state, model)
        return pop, replace(state, X=info["X"])

    def tell_with(self, state, losses, info, model):
        p = self.params
        n_act = len(info["active"])
        C = np.asarray(losses, dtype=np.float64).reshape(n_act, -1, p.num_probe).mean(axis=2)   # (n_act, V)
        if not np.all(np.isfinite(C)):      # a diverged probe is a bad vertex, not a crash
            finite = np.isfinite(C)
            C = np.where(finite, C, (np.abs(C[finite]).max() * 2 + 1) if finite.any() else 1.0)
        if p.cost_scale == "std":
            C = (C - C.mean(axis=1, keepdims=True)) / (C.std(axis=1, keepdims=True) + 1e-12)
        W = softmax_weights(C, info["eps"])
        X = info["X"].copy()
        Xa = barycentric_step(X[info["active"]], info["R"], self.vertices, info["s"], W)
        prev = state.prev_dir if state.prev_dir is not None else np.zeros_like(X)
        prev = prev.copy()
        prev[info["active"]] = Xa - X[info["active"]]
        X[info["active"]] = Xa
        sub = self.subspace(model, state.seed, state.epoch)
        theta = sub.to_theta(state.base, X)
        step = state.step + 1
        if p.rotation_interval and step % p.rotation_interval == 0:   # absorb, redraw the subspace
            return replace(state, mean=theta, base=theta, X=np.zeros_like(X), epoch=state.epoch + 1,
                           prev_dir=None, step=step)
        return replace(state, mean=theta, X=X, prev_dir=prev, step=step)

    def tell(self, state, population, losses, info=None, model=None):
        if info is None or model is None:
            fail("info", info, "polystep's tell needs the bookkeeping from ask_for and the model")
        return self.tell_with(state, losses, info, model)

    def step(self, state, problem):
        if state.step == 0:
            self.check_model(problem.model)
        pop, info = self.ask_for(state, problem.model)
        losses = problem.evaluate(pop)
        return self.tell_with(state, losses, info, problem.model), losses
