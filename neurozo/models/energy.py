"""Layered recurrent network for equilibrium propagation, forward and feedback weights apart.

Laborieux & Zenke (2022), "Holomorphic equilibrium propagation computes exact
gradients through finite size oscillations"; Laborieux & Zenke (2024),
"Improving equilibrium propagation without weight symmetry through Jacobian
homeostasis".

State layers k = 0 … L−1 of widths sizes[1:] — hidden layers and the output
layer, whose C = sizes[−1] units are part of the dynamics (784-256-256-10 in
the paper); the input x (sizes[0]) is clamped, and a separate linear softmax
readout V (C×C) on the output layer gives the logits. With u_k the
pre-activations and r_k = φ(u_k):

    F_k(u) = W_k·r_{k−1} + B_k·r_{k+1} + b_k − u_k        (r_{−1} = x, no B_{L−1})
    F_{L−1} += β·∂ℓ/∂r_{L−1}  while nudged,  ℓ = CE(softmax(V·r_{L−1} + c), y)
    ∂ℓ/∂r_{L−1} = Vᵀ·(softmax(V·r_{L−1} + c) − onehot(y))

and the relaxation is explicit Euler from u = 0:  u ← u + dt·F(u)  (dt = 1 is
the fixed-point iteration u ← W·r + b), all layers updated together, for at
most T1 steps, stopping early once every example's residual
‖F(u)‖₂/√N (N state units) is below ``tol``. A relaxation that ends above
``tol`` is *not converged*: ``forward`` warns and ``relax`` reports it.

Convergence on a noisy substrate (``convergence="read_noise"``). Every read of a device array
carries fresh noise, so the residual cannot fall below a floor set by the read noise: with the
drive of each unit read with noise of variance σ² per read and dt the Euler step, a settled state
(linearised, the noise's feedback through φ neglected) is an exponential average of noisy drives,
var(u) = dt·σ²/(2 − dt), and the residual F = d_t − u_{t−1} has E‖F‖²/N = c·σ̄², c = 2/(2 − dt)
(≈ 1.15·σ̄ at dt = 0.5, measured 1.10–1.15·σ̄ on the PCM crossbar, docs/ep_homeostasis.md).
In this mode the relaxation runs all its steps (a noisy residual that dips below a threshold
once says nothing), then reads every drive twice more at the end rates r_T and estimates each
example's read noise per layer, s_k² = ‖d⁽¹⁾_k − d⁽²⁾_k‖²/(2·n_k). An example is converged if

    ‖F‖²/N ≤ tol² + q·c·s²,     s² = Σ_k n_k·s_k² / N,   q = F⁻¹_{ν,ν}(1 − noise_alpha)

with ν = (Σ_k n_k s_k²)²/Σ_k n_k s_k⁴ the Satterthwaite degrees of freedom (N when every unit is
equally noisy; complex states count real and imaginary parts as groups of their own): if the
state has settled and the noise is Gaussian and homogeneous within each group,
‖F‖²/(c·s²) is F(ν, ν)-distributed, so a settled example is flagged with probability
≈ noise_alpha, and an example whose dynamics have not settled is flagged when its excess
residual stands out of the noise. On a noise-free substrate s = 0 and the test is the absolute
one, ‖F‖/√N ≤ tol. The two extra reads are device reads and count in the costs.

Noise-aware early stop (``noise_check_every = K ≥ 1``, read-noise mode only). Running every step
costs energy after the state has settled. Every K steps the examples still relaxing are read twice
more (two device reads each, counted) and an example stops, as it would stop at ``tol`` in the
absolute mode, once

    ‖F‖²/N ≤ tol² + c·s²       (1 = F⁻¹_{ν,ν}(½): X/Y with X, Y i.i.d. has median 1)

i.e. once its residual is no larger than a settled state's median one. The stop uses the median,
not the verdict's 1 − noise_alpha quantile, because it is a sequential test: a residual with a
deterministic part of power δ·c·s² passes a check with probability P(F(ν, ν) ≤ 1/(1 + δ)), which
for ν ≈ N ≈ 140 (relative SD of F ≈ √(4/ν) ≈ 0.17) is 0.5 at δ = 0 and ≈ 0.16 at δ = 0.2: an
example stops when what is left of its dynamics is small against the read noise's own jitter of the
state. A stopped example keeps the floor of its last check; its verdict is the same test with q
(it passed the stricter one, so it is converged). With ``noise_patience = P`` > 1 an example stops only
after P checks in a row have passed (a failed check resets the count): a settled example then stops
at the P-th check with probability ½ᴾ (checks K ≫ 1/(1 − ρ) steps apart are nearly independent), and
a residual whose deterministic part is still decaying must stay under the median for P·K steps.
Examples still relaxing after T1 steps get the end-of-relaxation test above. No early stop with a
per-step β (continuous-time hEP: the state never settles) or with ``on_step``.

In a layered network W_rec couples only neighbouring layers (a bipartite
graph), so the spectrum of W_rec·diag(φ') is symmetric about 0: an example
near marginal stability also has an eigenvalue near −1, where the dt = 1
iteration oscillates with period 2; dt = 0.5 converges wherever the
continuous dynamics du/dt = F(u) do (used in docs/ep_homeostasis.md).

Weights: forward W_k (into layer k), feedback B_k (from layer k+1 into layer
k), readout V (``Wout``) and c (``bout``). ``tied=True`` makes B_k = W_{k+1}ᵀ
one parameter (symmetric EP); untied feedback starts at angle α from the
forward weights (Laborieux & Zenke 2024):

    B_k ← sin α·B_k + cos α·W_{k+1}ᵀ        (α = 0°: symmetric, 90°: independent)

with B_k drawn like W_{k+1}ᵀ, so the mix keeps the weights' scale.

θ = [W0, b0, …, W_{L−1}, b_{L−1}, B0, …, B_{L−2} (untied only), Wout, bout].

On a substrate every matrix–vector product is a read of a programmed array:
forward, feedback, readout and the readout's transpose (the nudge Vᵀ·e) are
separate arrays (``program``), so on an analog device programming noise makes
B_k and W_{k+1}ᵀ differ even when θ ties them. Biases are added in the
(digital) neuron periphery. Complex states (holomorphic EP) are read as two
real reads, the real and the imaginary part, which is what a device would do.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np
from scipy import stats

from kernels import ep as ep_k

from .._validate import check_bool, check_choice, check_float, check_int, fail
from ..substrates.weights import DenseWeights
from . import registry
from .base import Model
from .population import LowRank, Members, as_population

__all__ = ["EnergyNet", "Programmed", "Relaxation"]


@dataclass
class Programmed:
    """A population's arrays written to a substrate (see ``EnergyNet.program``)."""

    fwd: List             # L programmed forward arrays, W_k (P, n_k, n_{k−1})
    fbk: List             # L−1 programmed feedback arrays, B_k (P, n_k, n_{k+1})
    out: object           # readout V (P, C, n_{L−1})
    out_t: object         # Vᵀ (P, n_{L−1}, C), for the nudge
    b: List[np.ndarray]   # biases (P, 1, n_k), added digitally
    bout: np.ndarray      # (P, 1, C)
    P: int


@dataclass
class Relaxation:
    """End state of a relaxation: per layer u, r = φ(u) (P, B, n_k); residual (P, B)."""

    u: List[np.ndarray]
    r: List[np.ndarray]
    residual: np.ndarray    # ‖F(u)‖₂/√N per example at the last step
    steps: int
    tol: float
    #: read-noise mode only (else None): σ̂ = s per example (P, B) from two reads at the end rates,
    #: and the floor √(q·c)·s the residual may reach by noise alone (see EnergyNet)
    noise: Optional[np.ndarray] = None
    floor: Optional[np.ndarray] = None
    #: (B,) the step after which each example stopped relaxing (early stop), ``steps`` if it never did
    stop_steps: Optional[np.ndarray] = None

    @property
    def converged(self) -> np.ndarray:
        if self.floor is None:
            return self.residual <= self.tol
        return self.residual ** 2 <= self.tol ** 2 + self.floor ** 2

    @property
    def threshold(self) -> np.ndarray:
        """The residual each example had to reach: tol, or √(tol² + floor²) in read-noise mode."""
        if self.floor is None:
            return np.full(self.residual.shape, self.tol)
        return np.sqrt(self.tol ** 2 + self.floor ** 2)

    @property
    def max_residual(self) -> float:
        return float(np.max(self.residual)) if self.residual.size else 0.0


CONVERGENCE = ["absolute", "read_noise"]
#: parameters added after runs were stored, with the values those runs had: left out of the spec at these
#: values (by the registry, and by ``spec`` for a model built directly), so stored runs keep their keys
ADDED = {"convergence": "absolute", "noise_alpha": 0.01, "noise_check_every": 0, "noise_patience": 1}


@registry.register("energy", added=ADDED)
class EnergyNet(Model):
    """Layered recurrent (EP) network: sizes [n_in, hidden..., n_out] (all but n_in are state
    layers; a linear softmax readout n_out → n_out gives the logits), flat θ.

    ``convergence``: "absolute" (‖F‖/√N ≤ tol, early stop per example) or "read_noise" (the
    residual is tested against tol and the read-noise floor measured at the end, with false-alarm
    rate ``noise_alpha`` for a settled example; no early stop unless ``noise_check_every`` = K ≥ 1:
    then every K steps an example whose residual is at or below a settled one's median stops, after
    ``noise_patience`` such checks in a row) — see the module docstring."""

    def __init__(self, sizes: Sequence[int] = (64, 128, 10), activation: str = "ep_sigmoid",
                 tied: bool = True, alpha: float = 0.0, init_scale: float = 1.0, T1: int = 150,
                 dt: float = 1.0, tol: float = 1e-5, convergence: str = "absolute",
                 noise_alpha: float = 0.01, noise_check_every: int = 0, noise_patience: int = 1):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) < 2:
            fail("sizes", sizes, "must list at least two widths [n_in, hidden..., n_out], e.g. [64, 128, 10]")
        self.sizes = [check_int(f"sizes[{i}]", s, 1) for i, s in enumerate(sizes)]
        self.activation = check_choice("activation", activation, sorted(ep_k.PHI))
        self.tied = check_bool("tied", tied)
        self.alpha = check_float("alpha", alpha, 0.0, 180.0)
        if self.tied and self.alpha != 0.0:
            fail("alpha", alpha, "must be 0 when tied=true (the feedback is the forward weights' transpose); "
                                 "set tied=false for an angle")
        self.init_scale = check_float("init_scale", init_scale, 0, lo_open=True)
        self.T1 = check_int("T1", T1, 1)
        self.dt = check_float("dt", dt, 0, 1, lo_open=True)
        self.tol = check_float("tol", tol, 0)
        self.convergence = check_choice("convergence", convergence, CONVERGENCE)
        self.noise_alpha = check_float("noise_alpha", noise_alpha, 0, 0.5, lo_open=True, hi_open=True)
        self.noise_check_every = check_int("noise_check_every", noise_check_every, 0)
        if self.noise_check_every and self.convergence != "read_noise":
            fail("noise_check_every", noise_check_every, "must be 0 unless convergence='read_noise' (the "
                                                         "absolute test stops early at tol by itself)")
        self.noise_patience = check_int("noise_patience", noise_patience, 1)
        if self.noise_patience > 1 and not self.noise_check_every:
            fail("noise_patience", noise_patience, "must be 1 unless noise_check_every ≥ 1 (it counts that "
                                                   "rule's checks)")
        self._params = {"sizes": list(self.sizes), "activation": activation, "tied": tied, "alpha": alpha,
                        "init_scale": init_scale, "T1": T1, "dt": dt, "tol": tol}
        self._params.update({k: v for k, v in (("convergence", convergence), ("noise_alpha", noise_alpha),
                                               ("noise_check_every", noise_check_every),
                                               ("noise_patience", noise_patience)) if v != ADDED[k]})
        self.state_sizes = self.sizes[1:]
        self.L = len(self.state_sizes)
        self.n_state = int(sum(self.state_sizes))
        self.views = {}
        off = 0

        def add(name, shape):
            nonlocal off
            size = int(np.prod(shape))
            self.views[name] = (slice(off, off + size), tuple(shape))
            off += size

        for k in range(self.L):
            add(f"W{k}", (self.sizes[k + 1], self.sizes[k]))
            add(f"b{k}", (self.sizes[k + 1],))
        if not self.tied:
            for k in range(self.L - 1):
                add(f"B{k}", (self.state_sizes[k], self.state_sizes[k + 1]))
        add("Wout", (self.sizes[-1], self.state_sizes[-1]))
        add("bout", (self.sizes[-1],))
        self.n_params = off
        self.last_relaxation: Optional[Relaxation] = None

    # ------------------------------------------------------------------ layout
    @property
    def io_shape(self):
        return self.sizes[0], self.sizes[-1]

    def init(self, rng):
        """W ~ U(±1/√n_in)·init_scale (torch.nn.Linear's default), feedback by angle α."""
        theta = np.zeros(self.n_params)
        s = self.init_scale
        for k in range(self.L):
            n_in = self.sizes[k]
            bound = s / np.sqrt(n_in)
            self.view(theta, f"W{k}")[...] = rng.uniform(-bound, bound, self.views[f"W{k}"][1])
            self.view(theta, f"b{k}")[...] = rng.uniform(-bound, bound, self.views[f"b{k}"][1])
        if not self.tied:
            a = np.deg2rad(self.alpha)
            ca = 0.0 if self.alpha == 90.0 else np.cos(a)
            for k in range(self.L - 1):
                Wt = self.view(theta, f"W{k + 1}").T
                bound = s / np.sqrt(self.sizes[k + 1])       # the scale of W_{k+1}
                B = rng.uniform(-bound, bound, Wt.shape)
                self.view(theta, f"B{k}")[...] = np.sin(a) * B + ca * Wt
        bound = s / np.sqrt(self.state_sizes[-1])
        self.view(theta, "Wout")[...] = rng.uniform(-bound, bound, self.views["Wout"][1])
        self.view(theta, "bout")[...] = rng.uniform(-bound, bound, self.views["bout"][1])
        return theta

    def feedback(self, thetas: np.ndarray, k: int) -> np.ndarray:
        """B_k (…, n_k, n_{k+1}) of θ (…, D): its own view, or W_{k+1}ᵀ when tied."""
        if self.tied:
            return np.swapaxes(self.view(thetas, f"W{k + 1}"), -1, -2)
        return self.view(thetas, f"B{k}")

    def _assemble(self, W: Sequence[np.ndarray], B: Sequence[np.ndarray]) -> np.ndarray:
        off = np.concatenate([[0], np.cumsum(self.state_sizes)])
        M = np.zeros((self.n_state, self.n_state))
        for k in range(self.L - 1):
            M[off[k + 1]:off[k + 2], off[k]:off[k + 1]] = W[k + 1]
            M[off[k]:off[k + 1], off[k + 1]:off[k + 2]] = B[k]
        return M

    def recurrent_matrix(self, theta: np.ndarray) -> np.ndarray:
        """W_rec (N, N) of one θ: block (k, k−1) = W_k, block (k, k+1) = B_k; J = ∂F/∂r = W_rec − I."""
        return self._assemble([self.view(theta, f"W{k}") for k in range(self.L)],
                              [self.feedback(theta, k) for k in range(self.L - 1)])

    def device_recurrent_matrix(self, prog: "Programmed", substrate, rng) -> Optional[np.ndarray]:
        """W_rec as programmed on the device (member 0), if the synapse model can report its
        effective weights (analog crossbars: programming noise, drift, compensation); else None.
        Not counted in the costs (a diagnostic)."""
        eff = getattr(substrate.synapse, "effective_weights", None)
        if eff is None:
            return None
        with substrate.costs.paused():
            W = [None] + [np.asarray(eff(p, substrate.t, rng, substrate.costs))[0] for p in prog.fwd[1:]]
            B = [np.asarray(eff(p, substrate.t, rng, substrate.costs))[0] for p in prog.fbk]
        return self._assemble(W, B)

    def linear_stability(self, M: np.ndarray, u: Sequence[np.ndarray]):
        """Linear stability of the relaxation at the states ``u`` (per layer (B, n_k)), W_rec = ``M``
        (N, N).

        Per example b, with D_b = diag(φ'(u_b)) and the Jacobian of the vector field

            J_b = ∂F/∂u = M·D_b − I ,

        the Euler step u ← u + dt·F(u) maps an offset e from the fixed point to (I + dt·J_b)·e, so

            ρ_b = max_i |1 + dt·λ_i(J_b)|     (contraction per step: the slowest mode decays as ρ_bᵗ,
                                                in ≈ 1/(1 − ρ_b) steps; ≥ 1: not stable there)
            g_b = ‖J_b⁻¹‖₂ = 1/σ_min(J_b)      (offset per unit residual: ‖u − u*‖ ≤ g_b·‖F(u)‖ to first
                                                order, with equality along J_b's weakest direction)

        A residual-based stop (``tol``, ``noise_check_every``) bounds ‖F‖, not the distance to the fixed
        point; g says how far a state with a given residual may still be from it. The real part of u is
        used (a free state is real). Returns (ρ (B,), g (B,); g = inf where J_b is singular).
        """
        D = np.concatenate([ep_k.phi_prime(self.activation, np.real(np.asarray(a))) for a in u], axis=-1)
        N = self.n_state
        if M.shape != (N, N) or D.shape[-1] != N:
            fail("M", M.shape, f"must be the ({N}, {N}) recurrent matrix of states with {N} units")
        J = M[None, :, :] * D[:, None, :] - np.eye(N)[None]
        rho = np.abs(1.0 + self.dt * np.linalg.eigvals(J)).max(axis=-1)
        smin = np.linalg.svd(J, compute_uv=False)[:, -1]
        with np.errstate(divide="ignore"):
            g = np.where(smin > 0, 1.0 / smin, np.inf)
        return rho, g

    def settle_offset(self, prog: Programmed, x: np.ndarray, u: Sequence[np.ndarray], substrate, rng,
                      steps: int = 300):
        """How far the states ``u`` (per layer (P, B, n_k), e.g. where a free relaxation stopped) lie from
        where the relaxation settles on this substrate.

        The relaxation is continued from u for ``steps`` Euler steps with no stop (free phase, β = 0),
        reading the programmed arrays with ``rng``'s read noise; over the last half of them (W = ⌊steps/2⌋
        steps) the state's mean ū estimates the point the noisy device settles at, and per example

            offset = ‖u − ū‖ / √N ,    spread = √( (1/W) Σ_t ‖u_t − ū‖² / N )

        (N state units): the offset the stop left, and the read noise's own scatter of a settled state
        around ū. A state drawn from the settled scatter, independent of the window, has offset ≈ spread
        (larger by ≈ √((1 + 1/W_eff)/(1 − 1/W_eff)) for W_eff independent samples in the window); on a
        noiseless substrate spread → 0 and offset → ‖u − u*‖/√N, bounded to first order by
        ‖J⁻¹‖·‖F(u)‖/√N (``linear_stability``). The continuation is not counted in the substrate's
        costs. Returns (offset (P, B), spread (P, B))."""
        steps = check_int("steps", steps, 2)
        W = steps // 2
        N = self.n_state
        ref, s1 = [], [np.zeros(np.shape(a)) for a in u]     # sums of u_t − ref, ref the window's first state
        s2 = np.zeros(np.shape(u[0])[:2])

        def on_step(t, r, ut):
            nonlocal s2
            if t == steps - W + 1:
                ref[:] = [b.real.copy() for b in ut]
            if t > steps - W:
                d = [b.real - c for b, c in zip(ut, ref)]
                for a, b in zip(s1, d):
                    a += b
                s2 = s2 + sum((b ** 2).sum(-1) for b in d)

        with substrate.costs.paused():
            self.relax(prog, x, substrate, rng, steps=steps, u0=u, on_step=on_step)
        shift = [a / W for a in s1]                           # ū − ref
        off2 = sum(((np.real(a) - c - m) ** 2).sum(-1) for a, c, m in zip(u, ref, shift))
        var = np.maximum(s2 / W - sum((m ** 2).sum(-1) for m in shift), 0.0)
        return np.sqrt(off2 / N), np.sqrt(var / N)

    def pack_grad(self, g_fwd: Sequence[np.ndarray], g_b: Sequence[np.ndarray],
                  g_fbk: Sequence[np.ndarray], g_out: np.ndarray, g_bout: np.ndarray) -> np.ndarray:
        """θ-shaped gradient from per-array gradients (tied: B_k's gradient is added to W_{k+1}ᵀ)."""
        g = np.zeros(self.n_params)
        for k in range(self.L):
            self.view(g, f"W{k}")[...] = g_fwd[k]
            self.view(g, f"b{k}")[...] = g_b[k]
        for k in range(self.L - 1):
            if self.tied:
                self.view(g, f"W{k + 1}")[...] += g_fbk[k].T
            else:
                self.view(g, f"B{k}")[...] = g_fbk[k]
        self.view(g, "Wout")[...] = g_out
        self.view(g, "bout")[...] = g_bout
        return g

    def scale_recurrent(self, g: np.ndarray, scale: float) -> np.ndarray:
        """Multiply, in place, the recurrent blocks of the θ-shaped ``g`` (W_k for k ≥ 1 — the weights
        that also carry feedback — and B_k) by ``scale``; input weights, biases and the readout are
        left alone. Returns ``g``."""
        for k in range(1, self.L):
            self.view(g, f"W{k}")[...] *= scale
            if not self.tied:
                self.view(g, f"B{k - 1}")[...] *= scale
        return g

    def recurrent_mask(self, scale: float) -> np.ndarray:
        """θ-shaped factor: ``scale`` on the recurrent blocks, 1 elsewhere (``scale_recurrent`` of ones)."""
        return self.scale_recurrent(np.ones(self.n_params), scale)

    def thetas_of(self, population) -> np.ndarray:
        """(P, D) parameter vectors of a population (low-rank factors are materialised)."""
        pop = as_population(population)
        if pop.node_noise is not None:
            fail("population.node_noise", "given", "the energy model does not take node noise")
        if isinstance(pop, Members):
            th = np.asarray(pop.thetas, dtype=np.float64)
        elif isinstance(pop, LowRank):
            th = np.asarray(pop.base, dtype=np.float64)[None] + pop.delta
            for name, (A, B) in pop.factors.items():
                if name not in self.views:
                    fail("population.factors", name, f"must name a matrix view of {sorted(self.views)}")
                v = self.view(th, name)
                v += pop.scale * np.einsum("pmr,pnr->pmn", A, B)
        else:  # pragma: no cover - as_population guards
            fail("population", type(pop).__name__, "must be Members or LowRank")
        if th.shape[-1] != self.n_params:
            fail("population", th.shape, f"parameter vectors must have length {self.n_params}")
        return th

    # ------------------------------------------------------------------ device
    def program(self, thetas: np.ndarray, substrate, rng) -> Programmed:
        """Write forward, feedback, readout and readout-transpose arrays of (P, D) θ to the substrate."""
        if getattr(substrate.neuron, "spiking", False):
            fail("substrate", substrate.name, "equilibrium propagation needs rate neurons (a non-spiking substrate)")
        thetas = np.atleast_2d(thetas)
        P = thetas.shape[0]
        syn, costs = substrate.synapse, substrate.costs
        L = self.L

        def prog(W, idx):
            W = np.ascontiguousarray(W)
            return syn.program(DenseWeights(W, np.zeros(W.shape[:2])), rng, costs, idx)

        fwd = [prog(self.view(thetas, f"W{k}"), k) for k in range(L)]
        fbk = [prog(self.feedback(thetas, k), L + k) for k in range(L - 1)]
        V = self.view(thetas, "Wout")
        out = prog(V, 2 * L - 1)
        out_t = prog(np.swapaxes(V, -1, -2), 2 * L)
        b = [self.view(thetas, f"b{k}")[:, None, :].copy() for k in range(L)]
        return Programmed(fwd, fbk, out, out_t, b, self.view(thetas, "bout")[:, None, :].copy(), P)

    @staticmethod
    def read(substrate, programmed, z: np.ndarray, rng) -> np.ndarray:
        """One product through the synapse model; complex z is read as real and imaginary parts."""
        syn = substrate.synapse
        if np.iscomplexobj(z):
            B = z.shape[-2]
            y = syn.read(programmed, np.concatenate([z.real, z.imag], axis=-2), rng, substrate.costs,
                         t=substrate.t)
            y = np.asarray(y, dtype=np.float64)
            return y[..., :B, :] + 1j * y[..., B:, :]
        y = syn.read(programmed, z, rng, substrate.costs, t=substrate.t)
        return np.asarray(y, dtype=np.float64)

    def logits(self, prog: Programmed, r_last: np.ndarray, substrate, rng) -> np.ndarray:
        """Readout o = V·r + c (P, B, C)."""
        return self.read(substrate, prog.out, r_last, rng) + prog.bout

    def output_error(self, prog: Programmed, r_last, y: np.ndarray, substrate, rng):
        """(logits, e = softmax(o) − onehot(y), ∂ℓ/∂r_last = Vᵀ·e), per example; complex-safe."""
        o = self.logits(prog, r_last, substrate, rng)
        z = o - o.real.max(axis=-1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=-1, keepdims=True)
        p[..., np.arange(len(y)), y] -= 1.0
        return o, p, self.read(substrate, prog.out_t, p, rng)

    def jvp(self, prog: Programmed, eps: Sequence[np.ndarray], substrate, rng) -> List[np.ndarray]:
        """W_rec·ε on the device, per layer (..., n_k): reads of the forward and feedback arrays."""
        out = []
        for k in range(self.L):
            v = np.zeros(eps[k].shape)
            if k > 0:
                v = v + self.read(substrate, prog.fwd[k], eps[k - 1], rng)
            if k < self.L - 1:
                v = v + self.read(substrate, prog.fbk[k], eps[k + 1], rng)
            out.append(v)
        return out

    def convergence_bound(self, floor: Optional[np.ndarray] = None) -> str:
        """The convergence test's threshold in words (warnings, errors); ``floor``: a relaxation's floors."""
        if self.convergence == "absolute":
            return f"tol={self.tol:g}"
        med = "" if floor is None else f", median floor {np.median(floor):.3g}"
        return f"√(tol² + read-noise floor²) (tol={self.tol:g}, noise_alpha={self.noise_alpha:g}{med})"

    # ------------------------------------------------------------- relaxation
    def drives(self, prog: Programmed, x: np.ndarray, r: Sequence[np.ndarray], substrate, rng, beta=0.0,
               y: Optional[np.ndarray] = None) -> List[np.ndarray]:
        """Every state layer's drive at rates r (per layer (P, B, n_k)), read on the substrate:

            d_k = W_k·(x or r_{k−1}) + B_k·r_{k+1} + b_k,     F_k(u) = d_k − u_k
            d_{L−1} += β·Vᵀ·(softmax(V·r_{L−1} + c) − onehot(y))         (β ≠ 0: needs y)

        x is (1 or P, B, n_in). Reads in the relaxation's order: per layer the forward array, then the
        feedback array; then the readout and its transpose for the nudge."""
        out = []
        for k in range(self.L):
            d = self.read(substrate, prog.fwd[k], x if k == 0 else r[k - 1], rng) + prog.b[k]
            if k < self.L - 1:
                d = d + self.read(substrate, prog.fbk[k], r[k + 1], rng)
            out.append(d)
        if beta != 0:
            _, _, g = self.output_error(prog, r[-1], y, substrate, rng)
            out[-1] = out[-1] + beta * g
        return out

    def read_noise_floor(self, prog: Programmed, x: np.ndarray, r: Sequence[np.ndarray], substrate, rng,
                         beta=0.0, y: Optional[np.ndarray] = None):
        """(σ̂, floor) per example (P, B) from two reads of every drive at rates r (module docstring):
        σ̂² = s² = Σ_k n_k·s_k²/N with s_k² = ‖d⁽¹⁾_k − d⁽²⁾_k‖²/(2·n_k), floor = √(q·c)·σ̂, c = 2/(2 − dt),
        q = F⁻¹_{ν,ν}(1 − noise_alpha) with ν the Satterthwaite degrees of freedom over the groups of
        equally noisy components: each layer, and for complex states each layer's real and imaginary
        parts apart (the input x is real, so the first layer's imaginary drive has one noisy read
        fewer than its real drive). Both are 0 on a noise-free substrate."""
        s2, nu = self._read_noise(prog, x, r, substrate, rng, beta, y)
        return np.sqrt(s2), self._floor(s2, nu)

    def _floor(self, s2: np.ndarray, nu: np.ndarray) -> np.ndarray:
        """√(q·c·s²), q the (1 − noise_alpha) quantile of F(ν, ν), c = 2/(2 − dt)."""
        return np.sqrt(stats.f.ppf(1.0 - self.noise_alpha, nu, nu) * 2.0 / (2.0 - self.dt) * s2)

    def _read_noise(self, prog, x, r, substrate, rng, beta, y):
        """(s², ν) per example (P, B) from two more reads of every drive (``read_noise_floor``)."""
        d1 = self.drives(prog, x, r, substrate, rng, beta, y)
        d2 = self.drives(prog, x, r, substrate, rng, beta, y)
        groups = []                    # (n·s² of the group per example (P, B), n components)
        for a, b, n in zip(d1, d2, self.state_sizes):
            diff = a - b
            parts = (diff.real, diff.imag) if np.iscomplexobj(diff) else (diff,)
            groups += [(np.sum(p * p, axis=-1) / 2.0, n) for p in parts]
        tot = sum(g for g, _ in groups)
        sq = sum(g * g / n for g, n in groups)                                         # Σ n·s⁴
        with np.errstate(divide="ignore", invalid="ignore"):
            nu = np.where(sq > 0, tot * tot / np.where(sq > 0, sq, 1.0), float(sum(n for _, n in groups)))
        return tot / self.n_state, nu

    def relax(self, prog: Programmed, x: np.ndarray, substrate, rng, steps: Optional[int] = None,
              u0: Optional[Sequence[np.ndarray]] = None, beta=0.0, y: Optional[np.ndarray] = None,
              complex_state: bool = False, tol: Optional[float] = None,
              on_step: Optional[Callable[[int, List[np.ndarray], List[np.ndarray]], None]] = None
              ) -> Relaxation:
        """Relax from u0 (default 0) for at most ``steps`` (default T1) Euler steps on the substrate.

        ``beta`` is the nudge strength: a number (real or complex) or an array of one β per step
        (continuous-time hEP); a nonzero β needs labels ``y``. ``on_step(t, r, u)`` is called after
        every step with the new rates and states (no early stop then). Early stop per example: an
        example whose residual is ≤ tol (default the model's) stops relaxing (is no longer read or
        updated, nor counted in the costs); the loop ends when none is left. With
        ``convergence="read_noise"`` there is no early stop unless ``noise_check_every`` = K ≥ 1
        (then every K steps, by the median rule of the module docstring); at the end
        ``read_noise_floor`` at the end rates (with the last step's β) gives each example still
        relaxing its floor.
        """
        steps = self.T1 if steps is None else check_int("steps", steps, 1)
        tol = self.tol if tol is None else tol
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[-1] != self.sizes[0]:
            fail("x", x.shape, f"inputs must be (batch, {self.sizes[0]}) (model sizes[0])")
        betas = np.asarray(beta)
        per_step = betas.ndim == 1
        if per_step and len(betas) != steps:
            fail("beta", betas.shape, f"a per-step β must have one value per step ({steps})")
        cplx = bool(complex_state or np.iscomplexobj(betas))
        nudged = bool(np.any(betas != 0))
        if nudged and y is None:
            fail("y", None, "labels are needed for a nudged relaxation")
        P, B = prog.P, x.shape[0]
        dtype = np.complex128 if cplx else np.float64
        if u0 is None:
            u = [np.zeros((P, B, n), dtype) for n in self.state_sizes]
        else:
            u = [np.array(np.broadcast_to(a, (P, B, n)), dtype=dtype, order="C")
                 for a, n in zip(u0, self.state_sizes)]
        r = [ep_k.phi(self.activation, a) for a in u]
        x1 = np.ascontiguousarray(x[None], dtype=np.float64)
        y = None if y is None else np.asarray(y)
        res = np.zeros((P, B))        # squared residual of every example's last step
        early = on_step is None and self.convergence == "absolute"
        K = self.noise_check_every if (on_step is None and self.convergence == "read_noise" and not per_step) else 0
        stopping = early or K > 0
        active = np.arange(B)         # examples still relaxing (early stop is per example)
        stop_steps = np.zeros(B, dtype=np.int64)
        passes = np.zeros(B, dtype=np.int64)     # noise-aware stop: checks passed in a row
        if self.convergence == "read_noise":
            noise, floor = np.full((P, B), np.nan), np.full((P, B), np.nan)
        N = self.n_state
        t = 0
        for t in range(1, steps + 1):
            part = stopping and len(active) < B
            if part:                  # only the examples still relaxing are read and updated
                uu = [np.ascontiguousarray(a[:, active]) for a in u]
                rr = [np.ascontiguousarray(a[:, active]) for a in r]
                xx, yy = x1[:, active], (None if y is None else y[active])
            else:
                uu, rr, xx, yy = u, r, x1, y
            nb = uu[0].shape[1]
            bt = (betas[t - 1] if per_step else betas) if nudged else 0.0
            drives = self.drives(prog, xx, rr, substrate, rng, bt, yy)
            rs = np.zeros((P, nb))
            for k in range(self.L):
                ep_k.relax_update(uu[k], np.ascontiguousarray(drives[k], dtype=dtype), rr[k], rs, self.dt,
                                  self.activation)
            if part:
                for k in range(self.L):
                    u[k][:, active] = uu[k]
                    r[k][:, active] = rr[k]
                res[:, active] = rs
            else:
                res[...] = rs
            substrate.costs.add(neuron_updates=P * nb * N * (2 if cplx else 1))
            if on_step is not None:
                on_step(t, r, u)
            if early:
                done = np.sqrt(rs.max(axis=0) / N) <= tol       # converged for every member
            elif K and t % K == 0 and t < steps:  # noise-aware stop of the examples that have settled
                s2, nu = self._read_noise(prog, xx, rr, substrate, rng, bt, yy)
                ok = np.all(rs / N <= tol ** 2 + 2.0 / (2.0 - self.dt) * s2, axis=0)     # the median floor
                passes[active] = np.where(ok, passes[active] + 1, 0)
                done = passes[active] >= self.noise_patience
                noise[:, active[done]] = np.sqrt(s2[:, done])
                floor[:, active[done]] = self._floor(s2[:, done], nu[:, done])
            else:
                continue
            stop_steps[active[done]] = t           # active is arange(B) until an example has stopped
            active = active[~done]
            if len(active) == 0:
                break
        if self.convergence != "read_noise":
            noise = floor = None
        elif len(active):                         # r is the end state of every example still relaxing, bt the last β
            sel = slice(None) if len(active) == B else active
            noise[:, sel], floor[:, sel] = self.read_noise_floor(prog, x1[:, sel], [a[:, sel] for a in r], substrate,
                                                                 rng, bt, None if y is None else y[sel])
        stop_steps[active] = t
        return Relaxation(u, r, np.sqrt(res / self.n_state), t, tol, noise, floor, stop_steps)

    def forward(self, population, x, substrate, rng):
        """Free relaxation (T1 steps) of every member, then the readout: logits (P, B, C).

        Warns if a relaxation did not converge within T1 (residual above ``tol``); the
        end state is kept in ``last_relaxation``.
        """
        thetas = self.thetas_of(population)
        if x is None or np.ndim(x) != 2 or np.shape(x)[-1] != self.sizes[0]:
            fail("x", None if x is None else np.shape(x), f"inputs must be (batch, {self.sizes[0]}) (model sizes[0])")
        prog = self.program(thetas, substrate, rng)
        rel = self.relax(prog, x, substrate, rng)
        self.last_relaxation = rel
        if not rel.converged.all():
            warnings.warn(f"free relaxation did not converge within T1={self.T1} steps: residual "
                          f"‖F(u)‖/√N = {rel.max_residual:.3g} > {self.convergence_bound(rel.floor)} for "
                          f"{int((~rel.converged).sum())} of {rel.residual.size} examples",
                          RuntimeWarning, stacklevel=2)
        return self.logits(prog, rel.r[-1], substrate, rng)
