"""Equilibrium propagation — Scellier & Bengio (2017); holomorphic EP: Laborieux & Zenke
(2022), "Holomorphic equilibrium propagation computes exact gradients through finite size
oscillations"; untied weights with Jacobian homeostasis: Laborieux & Zenke (2024).

The network (``models.energy.EnergyNet``) relaxes on the substrate to a free fixed
point u*₀ (T1 steps), then, nudged at its output by F_out += β·∂ℓ/∂r_out, to u*_β
(T2 steps from u*₀). The neuronal error d ≈ dφ(u*_β)/dβ at β = 0 is estimated by

    one_sided    d = (φ(u*_β) − φ(u*₀))/β                          bias O(β)
    symmetric    d = (φ(u*_β) − φ(u*_−β))/(2β)                      bias O(β²)
    holomorphic  d = (1/N) Σ_k (φ(u*_{β_k}) − φ(u*₀))/β_k,  β_k = |β|·e^{2πik/N}
                 (complex states; bias O(|β|^N)). For real θ, u*_{β̄} = conj(u*_β), so
                 only k ≤ N/2 are relaxed: real β_k once, a conjugate pair as 2·Re(·)
    continuous   one relaxation with β_t = |β|·e^{2πit/T2} rotating, T2 steps a period,
                 ``periods`` periods; d = Re Σ_t (φ(u_t) − φ(u*₀))/β_t / T2 over the last
    rbp          the exact gradient δ (recurrent backprop, below) — the BP baseline; an example
                 whose δ iteration diverges (J not stable there) contributes nothing. With
                 ``rbp_examples="nudged"`` it also runs the holomorphic estimator's nudged phases
                 (β, N, T2) only to drop the examples whose nudged phases do not settle — the
                 examples hEP with ``nonconverged="skip"`` drops — so BP and hEP learn from the same
                 examples (a like-for-like baseline; those examples carry large exact gradients)

and the weights learn locally, ΔW_pre→post ∝ −d_post·r_preᵀ (r at the free fixed
point; biases −d; the readout by its own gradient (softmax − onehot)·r_outᵀ).
With symmetric weights d = δ as β → 0; untied weights bias d, which Jacobian
homeostasis (``ep_homeostasis``, weight λ = ``homeostasis``) reduces.

Learning rate of the recurrent blocks (``recurrent_lr_scale``, default 1). With tied weights
the shared matrix W_{k+1} (= B_kᵀ) gets the sum of its forward and feedback updates,
−(d_{k+1}·r_kᵀ + r_{k+1}·d_kᵀ); an untied network updates W_{k+1} and B_k separately, so the
symmetric part S = (W_{k+1} + B_kᵀ)/2 — all there is once homeostasis has removed the
antisymmetric part — moves by half the tied update at the same lr. ``recurrent_lr_scale`` = 2
on an untied network moves S exactly as the tied network moves its weights (the EP gradient of
W_{k+1}, B_k, k < L − 1, is scaled; input weights, biases, readout and the homeostasis term
are not).

Reference (measured, not used to learn unless estimator="rbp"): recurrent backprop
δ = −J⁻ᵀ·∂ℓ/∂u, J = ∂F/∂u = W_rec·diag(φ'(u*)) − I, by iterating
δ ← δ + Jᵀδ + ∂ℓ/∂u with θ's weights at the free fixed point. Every step logs
cos(d_k, δ_k) per state layer and cos of the weight gradients (``align_every``), and
the norm ratio ‖g_EP‖/‖g_RBP‖ of the recurrent weight gradients (``grad_norm_ratio``): a
direction can be right while the step is longer or shorter than gradient descent's, which
acts as a different learning rate.

Budget: one evaluation = one relaxation phase of one mini-batch on the substrate
(the free phase, each real nudged phase); a complex phase is two evaluations (real
and imaginary parts are two reads of every product). Per step: one_sided 2,
symmetric 3, holomorphic N + 1, continuous 1 + 2·periods, rbp 2 (the backward
relaxation is done digitally; its MACs are counted), rbp with ``rbp_examples="nudged"``
N + 2. Homeostasis JVPs are not mini-batch evaluations; their reads count MACs.

Convergence and the size of β: the N-point expansion holds inside the radius of convergence
of β ↦ u*_β, bounded by the poles of the complex φ (σ(4u − 2): Im u = ±π/4) and shrinking as
training drives examples towards marginal stability (the readout gain grows, J approaches
singularity); on the small nets here |β| = 0.5 leaves it after a few hundred steps, |β| ≤ 0.2
stays inside (docs/ep_homeostasis.md).

Non-convergence: the residual ‖F(u)‖/√N of the free and nudged phases is logged every step
(``residual_free``/``residual_nudged``: largest in the batch; ``nonconverged``/
``nonconverged_nudged``: fraction of the batch above the model's ``tol`` after T1/T2 steps;
``relax_steps_free``: the free phase's mean steps per example, less than T1 where an early stop
ended it; ``relax_steps_nudged``: the same over the nudged phases). ``nonconverged="skip"`` drops
those examples from the update (``skipped``: the fraction dropped), ``"raise"`` stops with an error,
``"report"`` (default) keeps them and logs. On a noisy device the residual never falls below the
read-noise floor (on the PCM crossbar ≈ 1.1 × the RMS read noise of a unit's drive), and on a
crossbar that floor grows with the weights (output noise and ADC range are relative to each array's
max |W|): a ``tol`` set at the floor measured at the start ends up below most examples' residuals
once training has grown the weights, and ``"skip"`` then drops most of every batch — tied hEP on PCM
fell from 40 % to 10 % on mnist1d that way, and kept 45 % with ``"report"``
(docs/ep_homeostasis.md). On noisy substrates either keep every example (``"report"``) and read the
logged residuals against the floor (experiments/ep_pcm_noise_floor.py measures it), or — better —
give the model ``convergence="read_noise"``: each relaxation then runs all its steps, measures its
own floor with two extra reads at its end state and tests the residual against tol and that floor
(``models.energy``), so "not converged" means "not settled beyond what the read noise explains"
(``read_noise_free``/``noise_floor_free``: the batch's median σ̂ and floor) and ``"skip"`` is safe
again (≈ 4 % of examples dropped with the holomorphic N = 4 estimator). A ``tol`` above the floor is
no way out: its early stop ends relaxations before they have settled, which cost 3.6 pp (tied) and
4.7 pp (untied) on PCM/mnist1d against running every relaxation to its end, at 2–5× less energy
(docs/ep_homeostasis.md). To save that energy without stopping on a noise dip, give the model
``noise_check_every=K`` as well: every K steps an example stops once its residual is no larger than
a settled example's median (``models.energy``): on PCM/mnist1d 0.41–0.43× the energy, the untied
networks' accuracy kept, tied hEP 1.2 pp lower — the tied device contracts more slowly
(``spectrum_every`` below) — and with ``noise_patience=2`` (two passed checks in a row) 0.75× the
energy with every network within 0.25 pp of the full relaxation (docs/ep_homeostasis.md). (The
continuous-time estimator's state follows a rotating nudge and has no fixed point; its residual is
logged, not tested.)

Linear stability (``spectrum_every = K ≥ 1``, a diagnostic; 0 = off): every K steps the Jacobian
J = W_rec·diag(φ'(u*₀)) − I of every example's free fixed point (the device's programmed weights where
the synapse model reports them, else θ's) gives ``contraction`` — the Euler step's per-step
contraction max|1 + dt·λ(J)|, the slowest mode decaying as ρᵗ — and ``offset_gain`` = ‖J⁻¹‖₂, the
distance to the fixed point per unit residual (``models.energy.EnergyNet.linear_stability``); logged as
the batch's median and max (``*_max``). A stop on the residual bounds the offset only through this gain.
Costs nothing on the substrate and draws nothing from the run's random streams.

State offset (``offset_every = K ≥ 1``, a diagnostic; 0 = off): every K steps the free relaxation is
continued from where it stopped for ``offset_steps`` steps with no stop, and ``state_offset`` =
‖u_stop − ū‖/√N is logged against ``state_spread``, the read noise's scatter of a settled state around
ū, the mean state over the continuation's second half (``models.energy.EnergyNet.settle_offset``;
batch medians, and ``state_offset_mean``, ``state_offset_max``: an early stop's cost lies in its
tail). A state that has settled has offset ≈ spread; one stopped early lies farther. Not counted in
the costs; its reads draw from their own random stream, so the run's history is the one without it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, List, Tuple

import numpy as np

from kernels import ep as ep_k

from .._validate import check_choice, check_float, check_int, fail
from . import registry
from .base import BaseState, Learner, step_rng
from .ep_homeostasis import JacobianHomeostasis, symmetry_ratio
from .optim import Optimizer, OptState

__all__ = ["EP", "EPParams", "recurrent_backprop", "ep_error"]

ESTIMATORS = ["one_sided", "symmetric", "holomorphic", "continuous", "rbp"]


@dataclass(frozen=True)
class EPParams:
    estimator: str = "holomorphic"
    beta: float = 0.5
    N: int = 4
    T2: int = 20
    periods: int = 2
    optimizer: str = "sgd"
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 0.0
    homeostasis: float = 0.0
    homeostasis_samples: int = 5
    homeostasis_jvp: str = "device"
    homeostasis_probes: str = "gaussian"
    align_every: int = 1
    rbp_steps: int = 500
    nonconverged: str = "report"
    rbp_examples: str = "converged"
    recurrent_lr_scale: float = 1.0
    spectrum_every: int = 0
    offset_every: int = 0
    offset_steps: int = 300

    def __post_init__(self):
        check_choice("estimator", self.estimator, ESTIMATORS)
        check_float("beta", self.beta)
        check_choice("rbp_examples", self.rbp_examples, ["converged", "nudged"])
        if self.estimator != "rbp" and self.beta == 0:
            fail("beta", self.beta, f"must be nonzero: the {self.estimator} estimator divides by β")
        if self.estimator == "rbp" and self.rbp_examples == "nudged" and self.beta == 0:
            fail("beta", self.beta, "must be nonzero with rbp_examples='nudged': a nudge of 0 tests no example")
        if self.estimator == "rbp" and self.rbp_examples == "nudged" and self.nonconverged != "skip":
            fail("rbp_examples", self.rbp_examples, "drops examples: needs nonconverged='skip'")
        check_int("N", self.N, 1)
        check_int("T2", self.T2, 1)
        check_int("periods", self.periods, 1)
        check_float("weight_decay", self.weight_decay, 0)
        check_float("homeostasis", self.homeostasis, 0)
        check_int("homeostasis_samples", self.homeostasis_samples, 1)
        check_choice("homeostasis_jvp", self.homeostasis_jvp, ["device", "closed"])
        check_choice("homeostasis_probes", self.homeostasis_probes, ["gaussian", "orthogonal"])
        check_int("align_every", self.align_every, 0)
        check_int("rbp_steps", self.rbp_steps, 1)
        check_choice("nonconverged", self.nonconverged, ["report", "skip", "raise"])
        check_float("recurrent_lr_scale", self.recurrent_lr_scale, 0, lo_open=True)
        check_int("spectrum_every", self.spectrum_every, 0)
        check_int("offset_every", self.offset_every, 0)
        check_int("offset_steps", self.offset_steps, 2)
        Optimizer(self.optimizer, self.lr, momentum=self.momentum)  # validates optimizer, lr, momentum


@dataclass(frozen=True)
class EPState(BaseState):
    opt: OptState = None


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(np.vdot(a, b).real / (na * nb)) if na > 0 and nb > 0 else float("nan")


def recurrent_backprop(model, theta: np.ndarray, u: List[np.ndarray], g_r: np.ndarray, steps: int = 500,
                       tol: float = 1e-10) -> Tuple[List[np.ndarray], np.ndarray, int]:
    """δ = −J⁻ᵀ·∂ℓ/∂u at the fixed point u (per layer (B, n_k)) by δ ← φ'(u)⊙(W_recᵀδ) + ∂ℓ/∂u.

    g_r is ∂ℓ/∂r of the last layer (B, n_{L−1}); θ's weights are used. Stops when every
    example's RMS change of δ is ≤ tol·RMS(δ), or after ``steps``. Returns (δ per layer,
    per-example relative change at the last iteration (B,) — the iteration's non-convergence
    measure: it grows without bound where J is not stable —, iterations done).
    """
    L = model.L
    D = [ep_k.phi_prime(model.activation, np.real(a)) for a in u]
    g_u = [np.zeros_like(a) for a in D]
    g_u[-1] = D[-1] * g_r
    W = [model.view(theta, f"W{k}") for k in range(L)]
    Bk = [model.feedback(theta, k) for k in range(L - 1)]
    delta = [a.copy() for a in g_u]
    change = np.full(len(g_r), np.inf)
    it = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for it in range(1, steps + 1):
            new = []
            for k in range(L):
                s = np.zeros_like(delta[k])
                if k < L - 1:
                    s += delta[k + 1] @ W[k + 1]
                if k > 0:
                    s += delta[k - 1] @ Bk[k - 1]
                new.append(D[k] * s + g_u[k])
            num = sum(np.sum((a - b) ** 2, axis=-1) for a, b in zip(new, delta))
            den = sum(np.sum(a * a, axis=-1) for a in new)
            change = np.where(den > 0, np.sqrt(num / np.where(den > 0, den, 1.0)), 0.0)
            change = np.where(np.isfinite(change), change, np.inf)
            delta = new
            if np.all(change <= tol):
                break
    return delta, change, it


#: relative change of the RBP iteration above which an example's δ counts as not converged
RBP_ACCEPT = 1e-6


def ep_error(model, prog, x, y, free, substrate, rng, estimator: str, beta: float, N: int, T2: int,
             periods: int = 2,
             lengths: list | None = None) -> Tuple[List[np.ndarray], int, np.ndarray, np.ndarray]:
    """EP neuronal error d per layer (B, n_k) from the free state ``free`` (a ``Relaxation``).

    Returns (d, evaluations used, per-example largest residual of the nudged phases (B,),
    per-example "every nudged phase converged" (B,) by the model's convergence test). A list given as
    ``lengths`` gets each nudged relaxation's ``stop_steps`` (B,) appended.
    """
    r0 = [a[0] for a in free.r]
    res = np.zeros(len(x))
    ok = np.ones(len(x), dtype=bool)

    def nudged(b, steps=T2, **kw):
        nonlocal res, ok
        rel = model.relax(prog, x, substrate, rng, steps=steps, u0=free.u, beta=b, y=y, **kw)
        if lengths is not None:
            lengths.append(rel.stop_steps)
        res = np.maximum(res, rel.residual[0])
        ok = ok & rel.converged[0]
        return [a[0] for a in rel.r]

    if estimator == "one_sided":
        rp = nudged(beta)
        return [(a - b) / beta for a, b in zip(rp, r0)], 1, res, ok
    if estimator == "symmetric":
        rp, rm = nudged(beta), nudged(-beta)
        return [(a - b) / (2 * beta) for a, b in zip(rp, rm)], 2, res, ok
    if estimator == "holomorphic":
        rad = abs(beta)
        d = [np.zeros_like(a) for a in r0]
        evals = 0
        for k in range(N // 2 + 1):
            if 2 * k == N and N > 1 or k == 0:        # real points: β = |β|, and −|β| when N is even
                bk = rad if k == 0 else -rad
                rk = nudged(bk)
                for dd, a, b in zip(d, rk, r0):
                    dd += (a - b) / bk
                evals += 1
            else:                                      # a conjugate pair k, N − k
                bk = rad * np.exp(2j * np.pi * k / N)
                rk = nudged(bk)
                for dd, a, b in zip(d, rk, r0):
                    dd += 2.0 * ((a - b) / bk).real
                evals += 2
        return [dd / N for dd in d], evals, res, ok
    if estimator == "continuous":
        total = T2 * periods
        t = np.arange(1, total + 1)
        betas = abs(beta) * np.exp(2j * np.pi * t / T2)
        acc = [np.zeros(a.shape, np.complex128) for a in r0]
        start = total - T2

        def on_step(step, r, u):
            if step > start:
                for a, rr, b in zip(acc, r, r0):
                    a += (rr[0] - b) / betas[step - 1]

        nudged(betas, steps=total, on_step=on_step)
        return [a.real / T2 for a in acc], 2 * periods, res, ok
    raise ValueError(f"estimator={estimator!r} is unknown; allowed: {ESTIMATORS}")  # pragma: no cover


# runs stored before these parameters existed keep their keys
@registry.register("ep", added={"rbp_examples": "converged", "recurrent_lr_scale": 1.0, "spectrum_every": 0,
                                "offset_every": 0, "offset_steps": 300})
class EP(Learner):
    """Equilibrium propagation (one-sided / symmetric / holomorphic / continuous-time) with
    optional Jacobian homeostasis; needs an ``energy`` model."""

    Params = EPParams
    category = "gradient-free"
    #: EP trains a layered recurrent network on data, not a black-box function
    function_tasks = False
    default_model = {"name": "energy", "sizes": [64, 32, 10], "dt": 0.5, "tol": 1e-4}

    def __init__(self, **kw):
        super().__init__(**kw)
        p = self.params
        self.opt = Optimizer(p.optimizer, p.lr, momentum=p.momentum)
        self.homeo = JacobianHomeostasis(p.homeostasis, p.homeostasis_samples, p.homeostasis_jvp,
                                         p.homeostasis_probes)

    @property
    def evals_per_step(self) -> int:
        p = self.params
        return 1 + {"one_sided": 1, "symmetric": 2, "holomorphic": p.N, "continuous": 2 * p.periods,
                    "rbp": 1 + (p.N if p.rbp_examples == "nudged" else 0)}[p.estimator]

    def init(self, theta0, seed):
        theta0 = np.asarray(theta0, dtype=np.float64)
        return EPState(mean=theta0.copy(), seed=int(seed), step=0, opt=self.opt.init(theta0.size))

    def ask(self, state):  # pragma: no cover - not a population learner
        raise NotImplementedError("EP is not a population learner: use step(state, problem)")

    def tell(self, state, population, losses):  # pragma: no cover
        raise NotImplementedError("EP is not a population learner: use step(state, problem)")

    def step(self, state, problem):
        p = self.params
        model, sub = problem.model, problem.substrate
        if not hasattr(model, "relax"):
            fail("model", getattr(model, "spec", {}).get("name", type(model).__name__),
                 "the ep learner needs an energy model ({'name': 'energy', ...})")
        nudged_rbp = p.estimator == "rbp" and p.rbp_examples == "nudged"
        if p.estimator == "continuous" or ((p.estimator == "holomorphic" or nudged_rbp) and p.N > 2):
            if model.activation not in ep_k.HOLOMORPHIC:
                fail("model.activation", model.activation, f"the {p.estimator} estimator relaxes complex states: "
                     f"must be one of {list(ep_k.HOLOMORPHIC)}")
        theta = state.mean
        x, y = np.asarray(problem.x), np.asarray(problem.y)
        rng = problem.device_rng
        info: Dict[str, float] = {}

        prog = model.program(theta[None], sub, rng)
        free = model.relax(prog, x, sub, rng)
        problem.count(1)
        logits = model.logits(prog, free.r[-1], sub, rng)[0]
        z = logits - logits.max(axis=-1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=-1))
        loss = float(np.mean(lse - z[np.arange(len(y)), y]))
        e = np.exp(z - lse[:, None])
        e[np.arange(len(y)), y] -= 1.0                       # softmax − onehot (B, C)

        conv = free.converged[0]
        info["residual_free"] = free.max_residual
        info["nonconverged"] = float(1.0 - conv.mean())
        info["relax_steps_free"] = float(np.mean(free.stop_steps))
        if free.noise is not None:      # read-noise convergence test: the floor it allowed
            info["read_noise_free"] = float(np.median(free.noise))
            info["noise_floor_free"] = float(np.median(free.floor))
        if not conv.all() and p.nonconverged == "raise":
            raise RuntimeError(f"free relaxation did not converge within T1={model.T1}: residual "
                               f"{free.max_residual:.3g} > {model.convergence_bound(free.floor)} for "
                               f"{int((~conv).sum())} examples")

        r0 = [a[0] for a in free.r]
        u0 = [a[0] for a in free.u]
        V = model.view(theta, "Wout")
        need_rbp = p.estimator == "rbp" or (p.align_every and state.step % p.align_every == 0)
        delta = None
        rbp_ok = np.ones_like(conv)
        if need_rbp:
            delta, rbp_change, rbp_iters = recurrent_backprop(model, theta, u0, e @ V, steps=p.rbp_steps)
            rbp_ok = rbp_change <= RBP_ACCEPT
            info["rbp_residual"] = float(np.max(rbp_change))
            info["rbp_nonconverged"] = float(1.0 - rbp_ok.mean())
            delta = [np.where(rbp_ok[:, None], a, 0.0) for a in delta]    # never use a diverged δ
        lengths: list = []       # stop steps of every nudged relaxation
        if p.estimator == "rbp":
            d = delta
            problem.count(1)
            sub.costs.add(macs=int(rbp_iters * len(y) * 2 * sum(np.prod(model.views[f"W{k}"][1])
                                                                  for k in range(1, model.L))))
            conv = conv & rbp_ok
            res = None
            if nudged_rbp:      # hEP's nudged phases, only to find the examples hEP drops
                _, used, res, ok_n = ep_error(model, prog, x, y, free, sub, rng, "holomorphic", p.beta, p.N,
                                              p.T2, lengths=lengths)
                problem.count(used)
        else:
            d, used, res, ok_n = ep_error(model, prog, x, y, free, sub, rng, p.estimator, p.beta, p.N, p.T2,
                                          p.periods, lengths=lengths)
            problem.count(used)
        if lengths:
            info["relax_steps_nudged"] = float(np.mean(np.concatenate(lengths)))
        if res is not None:
            info["residual_nudged"] = float(res.max())
            if p.estimator != "continuous":   # a rotating nudge keeps the state moving: no fixed point
                info["nonconverged_nudged"] = float(1.0 - ok_n.mean())
                if not ok_n.all() and p.nonconverged == "raise":
                    raise RuntimeError(f"nudged relaxation did not converge within T2={p.T2}: residual "
                                       f"{res.max():.3g} > {model.convergence_bound()} for "
                                       f"{int((~ok_n).sum())} examples")
                conv = conv & ok_n
        keep = conv if p.nonconverged == "skip" else np.ones_like(conv)
        info["skipped"] = float(1.0 - keep.mean())
        nb = int(keep.sum())

        def grads(err, mask=None):
            mask = keep if mask is None else mask
            w = mask[:, None] / max(int(mask.sum()), 1)
            pre = [x.astype(np.float64)] + r0[:-1]
            g_fwd = [(err[k] * w).T @ pre[k] for k in range(model.L)]
            g_b = [(err[k] * w).sum(0) for k in range(model.L)]
            g_fbk = [(err[k] * w).T @ r0[k + 1] for k in range(model.L - 1)]
            return g_fwd, g_b, g_fbk

        g_fwd, g_b, g_fbk = grads(d)
        w = keep[:, None] / max(nb, 1)
        g_out = (e * w).T @ r0[-1]
        g_bout = (e * w).sum(0)
        zero_out = np.zeros_like(g_out), np.zeros_like(g_bout)
        g = model.pack_grad(g_fwd, g_b, g_fbk, g_out, g_bout)
        if p.recurrent_lr_scale != 1.0:
            model.scale_recurrent(g, p.recurrent_lr_scale)     # g is this step's own array

        if delta is not None and p.estimator != "rbp":
            both = keep & rbp_ok      # alignment over the examples whose d and δ are both used/defined
            for k in range(model.L):
                info[f"cos_d{k}"] = _cos(d[k][both], delta[k][both])
            g_rec = model.pack_grad(*grads(d, both), *zero_out)
            g_ref = model.pack_grad(*grads(delta, both), *zero_out)
            info["cos_grad"] = _cos(g_rec, g_ref)
            nref = float(np.linalg.norm(g_ref))
            info["grad_norm_ratio"] = float(np.linalg.norm(g_rec)) / nref if nref > 0 else float("nan")

        Md = None
        if delta is not None:
            Md = model.device_recurrent_matrix(prog, sub, rng)
            if Md is not None:
                info["symmetry_device"] = symmetry_ratio(Md)
        if p.spectrum_every and state.step % p.spectrum_every == 0:
            # the device's weights where the synapse reports them (own random stream: the run's device
            # stream is not touched, so the history is the one without the diagnostic), else θ's
            if Md is None and delta is None:
                Md = model.device_recurrent_matrix(prog, sub, step_rng(state.seed, state.step, 2))
            rho, gain = model.linear_stability(model.recurrent_matrix(theta) if Md is None else Md, u0)
            info["contraction"] = float(np.median(rho))
            info["contraction_max"] = float(np.max(rho))
            info["offset_gain"] = float(np.median(gain))
            info["offset_gain_max"] = float(np.max(gain))
        if p.offset_every and state.step % p.offset_every == 0:
            # where the free phase stopped against where the device settles: the relaxation continued
            # offset_steps with no stop, on its own random stream and outside the costs (history unchanged)
            off, spread = model.settle_offset(prog, x, free.u, sub, step_rng(state.seed, state.step, 3),
                                              p.offset_steps)
            info["state_offset"] = float(np.median(off))
            info["state_offset_mean"] = float(np.mean(off))
            info["state_offset_max"] = float(np.max(off))
            info["state_spread"] = float(np.median(spread))
        if not model.tied:
            info["symmetry"] = symmetry_ratio(model.recurrent_matrix(theta))
            if p.homeostasis > 0:
                lh, gh = self.homeo.loss_and_grad(model, theta, step_rng(state.seed, state.step, 1), sub,
                                                  prog if p.homeostasis_jvp == "device" else None)
                info["homeo_loss"] = lh
                g = g + gh
        if nb == 0:
            g = np.zeros_like(g)
        if p.weight_decay:
            g = g + p.weight_decay * theta
        delta_theta, opt = self.opt.update(state.opt, g)
        new = replace(state, mean=theta + delta_theta, opt=opt, step=state.step + 1)
        return new, np.array([loss]), info
