"""Analog in-memory crossbar synapses — the inference model of IBM aihwkit 1.2
(Rasch et al., "A flexible and fast PyTorch toolkit for simulating training
and inference on analog crossbar arrays", AICAS 2021; Le Gallo et al.,
"Using the IBM analog in-memory hardware acceleration kit for neural network
training and inference", APL Machine Learning 1, 041102 (2023)).

Weights → a differential conductance pair per weight (aihwkit
``SinglePairConductanceConverter``, g_min = 0)::

    s = g_max / max|W|,   G⁺ = clip(s·W, 0, g_max),   G⁻ = clip(−s·W, 0, g_max)

``program`` writes every weight of every candidate (2 device writes per
weight): programming noise and drift coefficients from the noise model
(``pcm.PCMNoise``, ``reram.ReRAMNoise`` or none), stuck-at cells and
device-to-device variation of the conductance range (a fixed property of the
chip, drawn once from ``device_seed`` per layer: each device's maximal
conductance is g_max·(1 + g_dtod·ξ) and a target above it is clipped to it;
stuck-on cells sit at their maximal conductance, stuck-off cells at 0). If
drift compensation is on, the compensation baseline is read right after
programming (aihwkit ``GlobalDriftCompensation``)::

    β₀ = mean |MVM(I_n)|            (identity inputs through the full IO path)

``read`` at time t after programming (the substrate's clock, ``t_inference``
seconds): the conductances drift and gather 1/f noise (once per programmed
state and time t, as aihwkit's ``drift_analog_weights(t)``), the drift
compensation factor is γ = β₀ / mean|MVM_t(I_n)|, and every read passes the
IO model (``io.IOParams``: DAC, output noise, ADC, iterative bound
management, optional IR drop)::

    W_tile = (G⁺(t) − G⁻(t)) · ω / g_max         tile weights (max |W_tile| = ω, ω = weight_scaling_omega)
    y      = γ · (max|W| / ω) · IO(x, W_tile) + b          (bias in the digital output stage)

ω = 0 reproduces aihwkit's ``InferenceRPUConfig`` default (no weight scaling:
W_tile = (G⁺ − G⁻)/s in the weights' own units); the presets use ω = 1 so that
the ADC range does not depend on the network's arbitrary weight scale (as in
aihwkit's ``StandardHWATrainingPreset``).

Populations (``perturb``):

``"program"``    every candidate is written to the crossbar (realistic: programming
                 noise and write energy per candidate; low-rank populations are
                 materialised). Cost: 2·P·m·n writes per layer.
``"periphery"``  the base weights are written once (and again only when they
                 change) and each candidate's perturbation is added by the digital
                 periphery: y_p = IO(x, W_base) + s·(x·B_p)·A_pᵀ + b_p for low-rank
                 populations, y_p = IO(x, W̄) + x·(W_p − W̄)ᵀ + b_p for full ones
                 (W̄ = population mean). Cheaper in writes and closer to the base's
                 noise realisation, less faithful: the perturbation never meets
                 device noise. The digital work is counted as ``periphery_macs``
                 (r·(m + n) per vector for low rank, m·n for full perturbations).

Every read also counts one digital multiply–add per output (rescale + bias)
as ``periphery_macs``.

Energy table (pJ per operation) — order-of-magnitude figures, each cited:

* ``macs``/``acs`` 0.205 pJ: 2 ops per MAC at 9.76 TOPS/W, the core-level
  efficiency of IBM's 64-core PCM chip for 8-bit I/O MVMs in its one-phase
  read mode (Le Gallo et al., Nature Electronics 6, 680–693 (2023)); the
  figure includes the converters, so ``dac`` and ``adc`` are priced 0 (their
  counts are still reported); a bound-management repeat is another full MVM.
* ``periphery_macs`` 1.5 pJ: fp16 multiply 1.1 + add 0.4 pJ (Horowitz, ISSCC
  2014, 45 nm).
* ``writes`` (one device programmed to its target) and ``pulses``: PCM ≈ 50 pJ
  per programming pulse (RESET ~0.5 mA × ~2 V × ~50 ns, the order reported for
  mushroom cells in Burr et al., "Phase change memory technology", J. Vac. Sci.
  Technol. B 28, 223 (2010)) and ~10 program-and-verify iterations per write
  (Joshi et al., Nat. Commun. 11, 2473 (2020)) → 500 pJ per write. ReRAM:
  ≈ 10 pJ per pulse (~100 µA × ~2 V × ~50 ns for HfOx cells) × 10 write-verify
  iterations (Wan et al., Nature 608, 504 (2022)) → 100 pJ per write. These
  write figures are estimates of the right order, not chip measurements.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import numpy as np

from kernels import dense as dense_k

from .._validate import check_bool, check_choice, check_float, check_seed, fail
from . import registry, synapses
from .base import Substrate, SynapseModel
from .io import IOParams, analog_read
from .pcm import PCMNoise
from .reram import ReRAMNoise
from .weights import LowRankWeights

__all__ = ["Crossbar", "CrossbarParams", "CrossbarState", "NOISE_MODELS", "CROSSBAR_ENERGY_PJ"]

_ZERO_CLIP = 1e-7

NOISE_MODELS = {"pcm": PCMNoise, "reram": ReRAMNoise, "none": None}

CROSSBAR_ENERGY_PJ = {
    "pcm": {"macs": 0.205, "acs": 0.205, "dac": 0.0, "adc": 0.0, "periphery_macs": 1.5,
            "writes": 500.0, "pulses": 50.0},
    "reram": {"macs": 0.205, "acs": 0.205, "dac": 0.0, "adc": 0.0, "periphery_macs": 1.5,
              "writes": 100.0, "pulses": 10.0},
}
CROSSBAR_ENERGY_PJ["none"] = CROSSBAR_ENERGY_PJ["pcm"]


@dataclass(frozen=True)
class CrossbarParams:
    noise: Dict[str, Any] = field(default_factory=lambda: {"name": "pcm"})
    io: IOParams = field(default_factory=IOParams)
    drift_compensation: bool = True
    perturb: str = "program"
    weight_scaling_omega: float = 1.0
    p_stuck_on: float = 0.0
    p_stuck_off: float = 0.0
    g_dtod: float = 0.0
    device_seed: int = 0

    def __post_init__(self):
        check_bool("drift_compensation", self.drift_compensation)
        check_choice("perturb", self.perturb, ["program", "periphery"])
        check_float("weight_scaling_omega", self.weight_scaling_omega, 0)
        check_float("p_stuck_on", self.p_stuck_on, 0, 1)
        check_float("p_stuck_off", self.p_stuck_off, 0, 1)
        if self.p_stuck_on + self.p_stuck_off > 1:
            fail("p_stuck_off", self.p_stuck_off, f"must be <= 1 - p_stuck_on = {1 - self.p_stuck_on}")
        check_float("g_dtod", self.g_dtod, 0)
        check_seed("device_seed", self.device_seed)


def _noise_model(spec):
    if spec is None:
        spec = {"name": "none"}
    if isinstance(spec, str):
        spec = {"name": spec}
    if dataclasses.is_dataclass(spec) and not isinstance(spec, type):
        name = {PCMNoise: "pcm", ReRAMNoise: "reram"}.get(type(spec))
        if name is None:
            fail("noise", spec, f"must be one of {sorted(NOISE_MODELS)} or a dict with a 'name' key")
        return {"name": name, **dataclasses.asdict(spec)}, spec
    if not isinstance(spec, dict) or "name" not in spec:
        fail("noise", spec, f"must be one of {sorted(NOISE_MODELS)} or a dict with a 'name' key")
    kw = dict(spec)
    name = check_choice("noise", kw.pop("name"), sorted(NOISE_MODELS))
    cls = NOISE_MODELS[name]
    if cls is None:
        if kw:
            fail("noise", spec, "the 'none' noise model takes no parameters")
        return {"name": "none"}, None
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(kw) - allowed)
    if unknown:
        raise ValueError(f"noise {name!r}: unknown parameter(s) {unknown}; allowed: {sorted(allowed)}")
    model = cls(**kw)
    return {"name": name, **dataclasses.asdict(model)}, model


def _io_params(spec) -> IOParams:
    if spec is None:
        return IOParams()
    if isinstance(spec, IOParams):
        return spec
    if not isinstance(spec, dict):
        fail("io", spec, "must be a dict of IO parameters")
    allowed = {f.name for f in dataclasses.fields(IOParams)}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"io: unknown parameter(s) {unknown}; allowed: {sorted(allowed)}")
    return IOParams(**spec)


@dataclass
class CrossbarState:
    """A programmed population: conductances (µS), drift parameters, scales, bias and a cache of read states."""

    gp: np.ndarray                      # (P, m, n) G⁺ after programming
    gm: np.ndarray                      # (P, m, n) G⁻
    aux_p: Optional[np.ndarray]         # drift parameters (ν for PCM, targets for ReRAM)
    aux_m: Optional[np.ndarray]
    c_tile: np.ndarray                  # (P,) W_tile = (G⁺ − G⁻)·c_tile
    post: np.ndarray                    # (P,) digital output scale
    b: np.ndarray                       # (P, m) digital bias
    chip: dict                          # stuck masks and device ranges of the physical array
    baseline: Optional[np.ndarray] = None
    cache: dict = field(default_factory=dict)

    @property
    def P(self):
        return self.gp.shape[0]

    @property
    def shape(self):
        return self.gp.shape[1:]


@dataclass
class PeripheryState:
    base: CrossbarState                 # P = 1: the base weights on the array
    b: np.ndarray                       # (P, m)
    A: Optional[np.ndarray] = None      # low rank: (P, m, r), (P, n, r), scale
    B: Optional[np.ndarray] = None
    scale: float = 0.0
    delta: Optional[np.ndarray] = None  # full: (P, m, n) digital residual

    @property
    def P(self):
        return self.b.shape[0]

    @property
    def shape(self):
        return self.base.shape


@synapses.register("crossbar")
class Crossbar(SynapseModel):
    """Differential-pair analog crossbar with aihwkit's PCM/ReRAM noise and IO models."""

    def __init__(self, noise="pcm", io=None, drift_compensation: bool = True, perturb: str = "program",
                 weight_scaling_omega: float = 1.0, p_stuck_on: float = 0.0, p_stuck_off: float = 0.0,
                 g_dtod: float = 0.0, device_seed: int = 0):
        noise_spec, self.noise = _noise_model(noise)
        self.params = CrossbarParams(noise_spec, _io_params(io), drift_compensation, perturb,
                                     weight_scaling_omega, p_stuck_on, p_stuck_off, g_dtod, device_seed)
        self.g_max = self.noise.g_max if self.noise is not None else 25.0
        self.energy_pj = dict(CROSSBAR_ENERGY_PJ[noise_spec["name"]])
        self._chips: Dict[tuple, dict] = {}
        self._base_cache: Dict[int, tuple] = {}

    # -- the physical array ---------------------------------------------------------------------
    def chip(self, index: int, shape) -> dict:
        """Stuck masks and device ranges of layer ``index``'s array (fixed per device_seed)."""
        key = (index, tuple(shape))
        if key not in self._chips:
            p = self.params
            rng = np.random.default_rng([p.device_seed, index, 0x5EED])
            full = (2, *shape)
            u = rng.random(full)
            on = u < p.p_stuck_on
            off = (u >= p.p_stuck_on) & (u < p.p_stuck_on + p.p_stuck_off)
            gdev = self.g_max * np.maximum(1.0 + p.g_dtod * rng.standard_normal(full), 0.0) if p.g_dtod > 0 else None
            self._chips[key] = {"on": on if on.any() else None, "off": off if off.any() else None, "gmax": gdev}
        return self._chips[key]

    def _stuck(self, g, chip, k):
        if chip["off"] is not None:
            g = np.where(chip["off"][k], 0.0, g)
        if chip["on"] is not None:
            gm = chip["gmax"][k] if chip["gmax"] is not None else self.g_max
            g = np.where(chip["on"][k], gm, g)
        return g

    # -- programming ------------------------------------------------------------------------------
    def program_dense(self, W: np.ndarray, b: np.ndarray, rng, costs, index: int = 0) -> CrossbarState:
        """Write W (P, m, n) to the array: conversion, device range, programming noise, stuck cells."""
        p = self.params
        W = np.asarray(W, dtype=np.float64)
        P, m, n = W.shape
        chip = self.chip(index, (m, n))
        wmax = np.maximum(np.abs(W).max(axis=(1, 2)) if W.size else np.zeros(P), _ZERO_CLIP)
        s = (self.g_max / wmax)[:, None, None]
        gs = []
        for k, sign in enumerate((1.0, -1.0)):
            gt = np.clip(sign * s * W, 0.0, self.g_max)
            if chip["gmax"] is not None:
                gt = np.minimum(gt, chip["gmax"][k])
            gs.append(gt)
        aux = [None, None]
        gprog = []
        for k, gt in enumerate(gs):
            if self.noise is not None:
                g = self.noise.apply_programming_noise(gt, rng)
                aux[k] = self.noise.generate_drift_coefficients(gt, rng)
            else:
                g = gt
            gprog.append(self._stuck(g, chip, k))
        omega = p.weight_scaling_omega
        if omega > 0:
            c_tile, post = np.full(P, omega / self.g_max), wmax / omega
        else:
            c_tile, post = wmax / self.g_max, np.ones(P)
        costs.add(writes=2 * P * m * n)
        st = CrossbarState(gprog[0], gprog[1], aux[0], aux[1], c_tile, post,
                           np.asarray(b, dtype=np.float32).reshape(P, m), chip)
        if p.drift_compensation:
            st.baseline = self._readout(self._tile(st.gp, st.gm, st.c_tile), rng, costs)
        return st

    def program(self, layer, rng, costs, index=0):
        if self.params.perturb == "program":
            if isinstance(layer, LowRankWeights):
                layer = layer.materialize()
            return self.program_dense(layer.W, layer.b, rng, costs, index)
        # periphery: the base is written once (and again only when it changes)
        if isinstance(layer, LowRankWeights):
            base_W = np.asarray(layer.W)
            extra = dict(A=np.asarray(layer.A), B=np.asarray(layer.B), scale=float(layer.scale))
        else:
            W = np.asarray(layer.W)
            base_W = W.mean(axis=0) if W.shape[0] > 1 else W[0]
            delta = W - base_W[None]
            extra = dict(delta=delta if np.any(delta) else None)
        base = self._program_base(base_W, rng, costs, index)
        return PeripheryState(base, np.asarray(layer.b, dtype=np.float32), **extra)

    def _program_base(self, W, rng, costs, index):
        digest = hashlib.blake2b(np.ascontiguousarray(W, dtype=np.float64).tobytes(), digest_size=16).hexdigest()
        hit = self._base_cache.get(index)
        if hit is not None and hit[0] == digest:
            return hit[1]
        m = W.shape[0]
        st = self.program_dense(W[None], np.zeros((1, m), np.float32), rng, costs, index)
        if not getattr(costs, "_paused", 0):  # a monitoring read does not leave weights behind
            self._base_cache[index] = (digest, st)
        return st

    # -- state at time t --------------------------------------------------------------------------
    @staticmethod
    def _tile(gp, gm, c_tile) -> np.ndarray:
        return ((gp - gm) * c_tile[:, None, None]).astype(np.float32)

    def _readout(self, W_tile, rng, costs) -> np.ndarray:
        """mean |MVM(I_n)| per member through the full IO path (drift-compensation reference)."""
        P, m, n = W_tile.shape
        eye = np.eye(n, dtype=np.float32)[None]
        y = analog_read(self.params.io, eye, W_tile, int(rng.integers(0, 2**63)), costs=costs)
        return np.maximum(np.abs(y).mean(axis=(1, 2)), 1e-4)

    def state_at(self, st: CrossbarState, t: float, rng, costs):
        """(W_tile (P, m, n) float32, γ (P,)) at t seconds after programming (cached per t)."""
        t = float(check_float("t", t, 0))
        hit = st.cache.get(t)
        if hit is not None:
            return hit
        if self.noise is None:
            gp, gm = st.gp, st.gm
        else:
            gs = []
            for k, (g, aux) in enumerate(((st.gp, st.aux_p), (st.gm, st.aux_m))):
                gs.append(self._stuck(self.noise.at_time(g, aux, t, rng), st.chip, k))
            gp, gm = gs
        W_tile = self._tile(gp, gm, st.c_tile)
        gamma = np.ones(st.P)
        if st.baseline is not None:
            gamma = st.baseline / self._readout(W_tile, rng, costs)
        if len(st.cache) >= 4:
            st.cache.pop(next(iter(st.cache)))
        st.cache[t] = (W_tile, gamma)
        return W_tile, gamma

    def effective_weights(self, st, t: float, rng, costs) -> np.ndarray:
        """The weights the array realises at time t, in the network's units (P, m, n), incl. γ."""
        base = st.base if isinstance(st, PeripheryState) else st
        W_tile, gamma = self.state_at(base, t, rng, costs)
        return W_tile * (gamma * base.post)[:, None, None]

    # -- read -------------------------------------------------------------------------------------
    def read(self, prog, x, rng, costs, t=0.0, spiking=False):
        lead = x.shape[1:-1]
        x2 = x.reshape(x.shape[0], -1, x.shape[-1])
        P = prog.P
        m, n = prog.shape
        if x2.shape[0] not in (1, P) or x2.shape[-1] != n:
            raise ValueError(f"x shape {x.shape} does not match the programmed weights ({P}, {m}, {n})")
        R = x2.shape[1]
        io = self.params.io
        if isinstance(prog, CrossbarState):
            W_tile, gamma = self.state_at(prog, t, rng, costs)
            y = analog_read(io, x2, W_tile, int(rng.integers(0, 2**63)), post_scale=gamma * prog.post,
                            bias=prog.b, costs=costs, spiking=spiking)
            costs.add(periphery_macs=P * R * m)
            return y.reshape(P, *lead, m)
        base = prog.base
        W_tile, gamma = self.state_at(base, t, rng, costs)
        Px = x2.shape[0]
        ya = analog_read(io, x2.reshape(1, Px * R, n), W_tile, int(rng.integers(0, 2**63)),
                         post_scale=gamma * base.post, costs=costs, spiking=spiking).reshape(Px, R, m)
        y = ya + prog.b[:, None, :]
        xf = np.asarray(x2, dtype=np.float32)
        pm = Px * R * m
        if prog.A is not None:
            r = prog.A.shape[-1]
            low = np.matmul(np.matmul(xf, prog.B.astype(np.float32)), np.swapaxes(prog.A, 1, 2).astype(np.float32))
            y = y + np.float32(prog.scale) * low
            pm = P * R * (m + r * (m + n))
        elif prog.delta is not None:
            y = y + dense_k.dense_population(xf, prog.delta.astype(np.float32), np.zeros((P, m), np.float32))
            pm = P * R * (m + m * n)
        else:
            pm = P * R * m
        costs.add(periphery_macs=pm)
        if y.shape != (P, R, m):
            y = np.broadcast_to(y, (P, R, m)).copy()
        return np.ascontiguousarray(y, dtype=np.float32).reshape(P, *lead, m)


# -------------------------------------------------------------------------------------------------
# Presets
# -------------------------------------------------------------------------------------------------
def _merge(default: dict, override) -> dict:
    if override is None:
        return dict(default)
    if not isinstance(override, dict):
        fail("noise/io", override, "overrides must be a dict of parameters")
    out = dict(default)
    out.update(override)
    return out


def _analog_preset(name, noise, io, t_inference, perturb, drift_compensation, weight_scaling_omega,
                   p_stuck_on, p_stuck_off, g_dtod, device_seed, output_activation, backend) -> Substrate:
    from . import compose

    t = check_float("t_inference", t_inference, 0)
    syn = {"name": "crossbar", "noise": noise, "io": io, "drift_compensation": drift_compensation,
           "perturb": perturb, "weight_scaling_omega": weight_scaling_omega, "p_stuck_on": p_stuck_on,
           "p_stuck_off": p_stuck_off, "g_dtod": g_dtod, "device_seed": device_seed}
    sub = compose(syn, {"name": "rate", "output_activation": output_activation}, backend, name=name)
    sub.t = t
    return sub


@registry.register("pcm")
def pcm(t_inference: float = 0.0, perturb: str = "program", drift_compensation: bool = True,
        noise: Optional[dict] = None, io: Optional[dict] = None, weight_scaling_omega: float = 1.0,
        p_stuck_on: float = 0.0, p_stuck_off: float = 0.0, g_dtod: float = 0.0, device_seed: int = 0,
        output_activation: str = "identity", backend: str = "cpu") -> Substrate:
    """PCM crossbar with aihwkit 1.2 defaults: programming noise, drift, 1/f read noise, global drift
    compensation, 7-bit DAC / 9-bit ADC / output noise 0.06 / iterative bound management.
    ``noise`` and ``io`` override single parameters, e.g. noise={"read_noise_scale": 2.0}."""
    return _analog_preset("pcm", _merge({"name": "pcm"}, noise), _merge({}, io), t_inference, perturb,
                          drift_compensation, weight_scaling_omega, p_stuck_on, p_stuck_off, g_dtod,
                          device_seed, output_activation, backend)


@registry.register("rram")
def rram(t_inference: float = 0.0, perturb: str = "program", drift_compensation: bool = True,
         noise: Optional[dict] = None, io: Optional[dict] = None, weight_scaling_omega: float = 1.0,
         p_stuck_on: float = 0.0, p_stuck_off: float = 0.0, g_dtod: float = 0.0, device_seed: int = 0,
         output_activation: str = "identity", backend: str = "cpu") -> Substrate:
    """ReRAM crossbar: Wan et al. 2022 (NeuRRAM) relaxation noise as fitted in aihwkit's
    ReRamWan2022NoiseModel (g_max 40 µS), 1 % output-referred short-term read noise (w_noise 0.01),
    aihwkit default IO and global drift compensation."""
    return _analog_preset("rram", _merge({"name": "reram"}, noise), _merge({"w_noise": 0.01}, io), t_inference,
                          perturb, drift_compensation, weight_scaling_omega, p_stuck_on, p_stuck_off, g_dtod,
                          device_seed, output_activation, backend)


@registry.register("analog-ideal-io")
def analog_ideal_io(perturb: str = "program", io: Optional[dict] = None, weight_scaling_omega: float = 1.0,
                    output_activation: str = "identity", backend: str = "cpu") -> Substrate:
    """Noiseless conductances read through the converters only: 7-bit DAC, 9-bit ADC with bound
    management, no output noise, no drift, no compensation."""
    return _analog_preset("analog-ideal-io", {"name": "none"}, _merge({"out_noise": 0.0}, io), 0.0, perturb,
                          False, weight_scaling_omega, 0.0, 0.0, 0.0, 0, output_activation, backend)
