"""The ``bptt`` ceiling: surrogate-gradient backpropagation (through time) in float.

Not a gradient-free learner — a *baseline* (``category = "baseline"``) that tells
every table how far the gradient-free learners are from what end-to-end gradients
reach on the same architecture. It trains the model's float weights θ with
torch autograd and the neurozo Adam (θ ← θ + Adam(∇L(θ) + λθ)); the run loop then
tests θ on the real substrate, like every other learner. One step = one mini-batch
forward + backward = one evaluation of the budget.

The differentiable twin of the substrate is read off the substrate's parameters:

rate neurons    exact gradients of h = φ(x·Wᵀ + b) (the model's activations; the
                last layer uses the neuron's ``output_activation``).
quantized       straight-through estimator (Bengio et al. 2013; Jacob et al. 2018):
synapses        forward with ŵ = s·clip(round(w/s), ±(2^(b−1) − 1)), s = max|w|/(2^(b−1) − 1)
                (binary: s·sign(w), s = mean|w|) and fixed-point activations
                x̂ = Δ·clip(round(x/Δ), ±(2^(a−1) − 1)); backward as identity (inside the
                clip range for activations).
crossbar / pcm  float weights, hardware-unaware (read noise is left to the substrate).
LIF neurons     snnTorch ``Leaky`` (Eshraghian et al. 2023), the same semantics as the
                ``lif`` substrate: U[t] = β·U[t−1] + I[t] − S[t−1]·θ ("subtract"; "zero"
                resets U), S[t] = H(U[t] − θ), T steps, current / rate / latency input
                coding, spike-count (or membrane-mean) logits, with the arctan surrogate
                ∂S/∂U ≈ 1/(π(1 + (πα(U − θ)/2)²)) (Fang et al. 2021; snnTorch ``atan``,
                α = 2) or the fast sigmoid (Zenke & Ganguli 2018).

Reference here (REFERENCES.md): 64-64-10 hard LIF, β 0.9, T 16, constant current,
spike-count logits, atan surrogate, Adam 2e-3, 40 epochs, batch 64 on ``digits``:
98.5% final, 99.0% best.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .._validate import check_choice, check_float, check_int, fail
from . import registry
from .base import BaseState, Learner, step_rng
from .optim import Optimizer, OptState

__all__ = ["BPTT", "TorchTwin"]


def _torch():
    import torch

    return torch


class _STE:
    """Straight-through rounding helpers (built lazily: torch is imported on first use)."""

    @staticmethod
    def round(x):
        return x + (x.round() - x).detach()


class TorchTwin:
    """A differentiable float model of (model, substrate) for one parameter vector."""

    def __init__(self, model, substrate, surrogate: str = "atan", slope: float = 2.0):
        torch = _torch()
        self.model = model
        self.substrate = substrate
        syn, neu = substrate.synapse, substrate.neuron
        self.syn_name = getattr(type(syn), "registry_name", type(syn).__name__)
        self.neu_name = getattr(type(neu), "registry_name", type(neu).__name__)
        self.spiking = bool(getattr(neu, "spiking", False))
        if self.spiking and self.neu_name != "lif":
            fail("substrate", substrate.name, "bptt models spiking neurons of the 'lif' kind only")
        self.sp = syn.params
        self.np_ = neu.params
        if self.spiking:
            if self.np_.refractory:
                fail("substrate.refractory", self.np_.refractory, "bptt's snnTorch twin has no refractory period: "
                     "use refractory=0")
            if self.np_.readout == "first_spike":
                fail("substrate.readout", self.np_.readout, "bptt supports 'counts' and 'membrane' readouts")
            import snntorch as snn
            from snntorch import surrogate as sg

            grad = sg.atan(alpha=slope) if surrogate == "atan" else sg.fast_sigmoid(slope=slope * 12.5)
            self.leaky = [snn.Leaky(beta=float(self.np_.beta), threshold=float(self.np_.threshold),
                                    spike_grad=grad, reset_mechanism=self.np_.reset)
                          for _ in range(model.n_layers)]
        self.torch = torch

    # -- pieces ----------------------------------------------------------------------------------
    def weight(self, W):
        if self.syn_name != "quantized":
            return W
        bits, per_channel = self.sp.bits, self.sp.per_channel
        a = W.abs().detach()
        dims = (-1,) if per_channel else (-2, -1)
        if bits == 1:
            s = a.mean(dim=dims, keepdim=True).clamp_min(1e-12)
            return W + (s * W.sign() - W).detach()
        lim = 2 ** (bits - 1) - 1
        s = (a.amax(dim=dims, keepdim=True) / lim).clamp_min(1e-12)
        q = (W / s).clamp(-lim, lim)
        return s * _STE.round(q)

    def act_in(self, x):
        """Fixed-point activations at a quantized synapse's input (STE inside the range)."""
        if self.syn_name != "quantized" or self.sp.act_bits is None:
            return x
        lim = 2 ** (self.sp.act_bits - 1) - 1
        step = self.sp.act_range / lim
        return step * _STE.round((x / step).clamp(-lim, lim))

    def act(self, name, z):
        t = self.torch
        if name == "identity":
            return z
        if name == "relu":
            return t.relu(z)
        if name == "tanh":
            return t.tanh(z)
        if name == "sigmoid":
            return t.sigmoid(z)
        if name == "hard_sigmoid":
            return z.clamp(0, 1)
        if name == "ep_sigmoid":
            return t.sigmoid(4 * z - 2)
        fail("activation", name, "unknown to bptt")

    def encode(self, x, gen):
        t = self.torch
        p = self.np_
        T = p.T
        if p.encoding == "current":
            return (x * p.gain).unsqueeze(0).expand(T, *x.shape)
        if p.encoding == "rate":
            prob = (x * p.gain).clamp(0, 1)
            return t.bernoulli(prob.unsqueeze(0).expand(T, *x.shape), generator=gen)
        tt = t.round((1 - x * p.gain) * (T - 1)).long()
        out = t.zeros(T, *x.shape, dtype=x.dtype)
        valid = (x * p.gain) > 0
        idx = tt.clamp(0, T - 1)
        out.scatter_(0, idx.unsqueeze(0), valid.to(x.dtype).unsqueeze(0))
        return out

    def forward(self, params, x, gen=None):
        """Logits (B, C) for float parameters [(W_k, b_k)] and input x (B, n)."""
        acts = self.model.activations
        n = len(params)
        if not self.spiking:
            h = x
            out_act = getattr(self.np_, "output_activation", "identity")
            for k, (W, b) in enumerate(params):
                z = self.act_in(h) @ self.weight(W).T + b
                h = self.act(out_act if k == n - 1 else acts[k], z)
            return h
        p = self.np_
        inp = self.encode(x, gen)                               # (T, B, n)
        mems = [L.init_leaky() for L in self.leaky]
        ws = [self.weight(W) for W, _ in params]
        total = 0
        beta = float(p.beta)
        U_out = None
        for t in range(p.T):
            h = inp[t]
            for k in range(n):
                cur = self.act_in(h) @ ws[k].T + params[k][1]
                if k == n - 1 and p.readout == "membrane":
                    U_out = cur if U_out is None else beta * U_out + cur
                    total = total + U_out
                    break
                h, mems[k] = self.leaky[k](cur, mems[k])
            else:
                total = total + h
        return total / p.T if p.readout == "membrane" else total


@dataclass(frozen=True)
class BPTTParams:
    lr: float = 2e-3
    optimizer: str = "adam"
    surrogate: str = "atan"
    slope: float = 2.0
    weight_decay: float = 0.0
    threads: int = 1        # torch intra-op threads during a step (0: leave torch's setting)

    def __post_init__(self):
        check_int("threads", self.threads, 0)
        check_choice("surrogate", self.surrogate, ["atan", "fast_sigmoid"])
        check_float("slope", self.slope, 0, lo_open=True)
        check_float("weight_decay", self.weight_decay, 0)
        Optimizer(self.optimizer, self.lr)


@dataclass(frozen=True)
class BPTTState(BaseState):
    opt: OptState = None


@registry.register("bptt")
class BPTT(Learner):
    """Surrogate-gradient BPTT / exact backprop in float: the ceiling, not a gradient-free learner."""

    Params = BPTTParams
    category = "baseline"
    trains_on_substrate = False   # autograd in float: the device's cost model sees no training step
    function_tasks = False

    def __init__(self, **kw):
        super().__init__(**kw)
        self.opt = Optimizer(self.params.optimizer, self.params.lr)
        self._twin = None
        self._twin_key = None

    @property
    def evals_per_step(self) -> int:
        return 1

    def init(self, theta0, seed):
        theta0 = np.asarray(theta0, dtype=np.float64)
        return BPTTState(mean=theta0.copy(), seed=int(seed), step=0, opt=self.opt.init(theta0.size))

    def twin(self, model, substrate) -> TorchTwin:
        key = (id(model), id(substrate))
        if self._twin_key != key:
            if not hasattr(model, "n_layers"):
                fail("model", getattr(model, "spec", type(model).__name__), "bptt needs a layered model such as 'mlp'")
            self._twin = TorchTwin(model, substrate, self.params.surrogate, self.params.slope)
            self._twin_key = key
        return self._twin

    def gradient(self, theta, model, substrate, x, y, seed: int = 0):
        """(loss, flat gradient) of the mean cross-entropy on (x, y) at θ."""
        tw = self.twin(model, substrate)
        torch = tw.torch
        if self.params.threads:
            # tiny per-step graphs: one thread is ~40x faster than an OpenMP pool on a busy 2-core machine
            prev = torch.get_num_threads()
            torch.set_num_threads(self.params.threads)
            try:
                return self._gradient(tw, theta, model, x, y, seed)
            finally:
                torch.set_num_threads(prev)
        return self._gradient(tw, theta, model, x, y, seed)

    def _gradient(self, tw, theta, model, x, y, seed):
        torch = tw.torch
        th = torch.tensor(theta, dtype=torch.float32, requires_grad=True)
        params = [(model.view(th, f"W{k}"), model.view(th, f"b{k}")) for k in range(model.n_layers)]
        gen = torch.Generator().manual_seed(int(seed))
        logits = tw.forward(params, torch.as_tensor(np.asarray(x, np.float32)), gen)
        loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(np.asarray(y), dtype=torch.long))
        loss.backward()
        return float(loss.detach()), th.grad.detach().numpy().astype(np.float64)

    def ask(self, state):
        from ..models.population import Members

        return Members(state.mean[None]), state

    def tell(self, state, population, losses, grad=None):
        if grad is None:
            fail("grad", None, "bptt's tell needs the gradient from BPTT.gradient")
        g = grad + self.params.weight_decay * state.mean if self.params.weight_decay else grad
        delta, opt = self.opt.update(state.opt, g)
        return replace(state, mean=state.mean + delta, opt=opt, step=state.step + 1)

    def step(self, state, problem):
        if problem.x is None:
            fail("task", "function", "bptt trains classifiers: it needs a data batch")
        problem.count(1)
        loss, g = self.gradient(state.mean, problem.model, problem.substrate, problem.x, problem.y,
                                seed=int(step_rng(state.seed, state.step, 3).integers(0, 2**62)))
        return self.tell(state, None, np.array([loss]), grad=g), np.array([loss])
