"""Pulsed update devices for learners that change weights in place on the array —
aihwkit 1.2 ``ConstantStepDevice``, ``LinearStepDevice`` and ``SoftBoundsDevice``
(Gokmen & Vlasov, "Acceleration of deep neural network training with resistive
cross-point devices", Front. Neurosci. 10, 333 (2016); Rasch et al., AICAS 2021;
defaults from aihwkit's ``PulsedDevice``, as in REFERENCES.md).

Device-to-device variation, drawn once per device array from ``seed``
(aihwkit ``PulsedRPUDevice::populate``)::

    b_max = |w_max·(1 + σ_bmax ξ)|,  b_min = −|w_min·(1 + σ_bmin ξ)|        (bounds; swapped if crossed)
    g     = 1 + σ_dtod ξ,  r = σ_updown ξ
    s⁺    = |(β⁺ + g + r)·dw_min|,  s⁻ = |(β⁻ + g − r)·dw_min|               β⁺ = min(up_down, 0), β⁻ = −max(up_down, 0)
    LinearStep slopes: γ⁺ = −|γ_up + σ_γ ξ|·s⁺/w_max,  γ⁻ = −|γ_down + σ_γ ξ|·s⁻/w_min
    SoftBounds: γ_up = γ_down = 1 with each device's own bounds (the step vanishes at the bound)

``apply_update(Δ)`` turns a desired change into n = ⌊|Δ|/dw_min⌉ pulses in
the direction of Δ (stochastic rounding by default, E n = |Δ|/dw_min; the
controller only knows the nominal dw_min), applies them one by one, and
counts them::

    up:    w ← w + (γ⁺ w + s⁺)(1 + σ_c2c ξ)          (multiplicative c2c noise; LinearStep, SoftBounds)
           w ← w + s⁺(1 + σ_c2c ξ)                   (ConstantStep, additive)
    down:  w ← w − (γ⁻ w + s⁻)(1 + σ_c2c ξ)
    w ← clip(w, b_min, b_max) after each pulse

so SoftBounds steps scale as (1 − w/b_max) up and (1 − w/b_min) down.
Pulse noise comes from a counter-based generator seeded per call from the
generator (or seed) passed in: results do not depend on the thread count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from kernels import crossbar as xbar_k

from .._validate import check_bool, check_choice, check_float, check_int, check_seed, fail

__all__ = ["PulsedParams", "PulsedDevice", "ConstantStep", "LinearStep", "SoftBounds", "DEVICES"]


@dataclass(frozen=True)
class PulsedParams:
    dw_min: float = 0.001
    dw_min_dtod: float = 0.3
    dw_min_std: float = 0.3
    up_down: float = 0.0
    up_down_dtod: float = 0.01
    w_max: float = 0.6
    w_max_dtod: float = 0.3
    w_min: float = -0.6
    w_min_dtod: float = 0.3
    gamma_up: float = 0.0
    gamma_down: float = 0.0
    gamma_dtod: float = 0.05
    mult_noise: bool = True
    rounding: str = "stochastic"
    max_pulses: Optional[int] = None

    def __post_init__(self):
        check_float("dw_min", self.dw_min, 0, lo_open=True)
        for name in ("dw_min_dtod", "dw_min_std", "up_down_dtod", "w_max_dtod", "w_min_dtod", "gamma_dtod",
                     "gamma_up", "gamma_down"):
            check_float(name, getattr(self, name), 0)
        check_float("up_down", self.up_down, -1, 1)
        check_float("w_max", self.w_max, 0)
        check_float("w_min", self.w_min, None, 0)
        if self.w_max == self.w_min:
            fail("w_max", self.w_max, "must be > w_min (the range [w_min, w_max] must contain 0 and be non-empty)")
        check_bool("mult_noise", self.mult_noise)
        check_choice("rounding", self.rounding, ["stochastic", "nearest"])
        if self.max_pulses is not None:
            check_int("max_pulses", self.max_pulses, 0)


class PulsedDevice:
    """An array of pulsed devices with its d2d variation, weights ``w`` and a pulse counter."""

    kind = "pulsed"
    #: field overrides that define the device type
    _fixed: dict = {}
    _defaults: dict = {}

    def __init__(self, shape, seed: int = 0, w0=None, **params):
        bad = sorted(set(params) & set(self._fixed))
        if bad:
            fail(bad[0], params[bad[0]], f"is fixed for {type(self).__name__}")
        kw = dict(self._defaults)
        kw.update(params)
        kw.update(self._fixed)
        self.params = PulsedParams(**kw)
        try:
            self.shape = tuple(check_int("shape", s, 1) for s in np.atleast_1d(shape))
        except TypeError:
            fail("shape", shape, "must be a tuple of positive integers")
        self.seed = check_seed("seed", seed)
        self._populate()
        self.w = np.zeros(self.shape)
        self.pulses = 0
        if w0 is not None:
            self.set_weights(w0)

    def _populate(self):
        p = self.params
        rng = np.random.default_rng([self.seed, 0xD2D])
        sh = self.shape
        bmax = p.w_max * (1 + p.w_max_dtod * rng.standard_normal(sh))
        bmin = p.w_min * (1 + p.w_min_dtod * rng.standard_normal(sh))
        swap = bmin > bmax
        bmax, bmin = np.where(swap, bmin, bmax), np.where(swap, bmax, bmin)
        self.b_max, self.b_min = np.abs(bmax), -np.abs(bmin)
        gain = 1 + p.dw_min_dtod * rng.standard_normal(sh)
        r = p.up_down_dtod * rng.standard_normal(sh)
        up_bias = min(p.up_down, 0.0)
        down_bias = -max(p.up_down, 0.0)
        self.scale_up = np.abs((up_bias + gain + r) * p.dw_min)
        self.scale_down = np.abs((down_bias + gain - r) * p.dw_min)
        self.slope_up, self.slope_down = self._slopes(rng)

    def _slopes(self, rng):
        z = np.zeros(self.shape)
        return z, z.copy()

    def set_weights(self, w) -> None:
        """Set the weights directly (clipped to each device's bounds); no pulses are counted."""
        w = np.broadcast_to(np.asarray(w, dtype=np.float64), self.shape)
        self.w = np.clip(w, self.b_min, self.b_max).copy()

    def apply_update(self, delta, rng=None, costs=None) -> np.ndarray:
        """Move w towards w + Δ with update pulses; returns the pulses per device and counts them."""
        p = self.params
        delta = np.asarray(delta, dtype=np.float64)
        if delta.shape != self.shape:
            try:
                delta = np.broadcast_to(delta, self.shape)
            except ValueError:
                fail("delta", delta.shape, f"must broadcast to the device array shape {self.shape}")
        if not np.all(np.isfinite(delta)):
            fail("delta", "non-finite values", "must be finite")
        if isinstance(rng, np.random.Generator):
            seed = int(rng.integers(0, 2**63))
        else:
            seed = check_seed("rng", 0 if rng is None else rng)
        w, pulses = xbar_k.pulsed_update(
            self.w, delta, self.scale_up, self.scale_down, self.slope_up, self.slope_down, self.b_min, self.b_max,
            p.dw_min, p.dw_min_std, p.mult_noise, p.rounding == "stochastic",
            -1 if p.max_pulses is None else p.max_pulses, seed)
        self.w = w
        total = int(pulses.sum())
        self.pulses += total
        if costs is not None:
            costs.add(pulses=total)
        return pulses


class ConstantStep(PulsedDevice):
    """Constant step up to hard bounds, additive cycle-to-cycle noise."""

    kind = "constant_step"
    _fixed = {"gamma_up": 0.0, "gamma_down": 0.0, "gamma_dtod": 0.0, "mult_noise": False}


class LinearStep(PulsedDevice):
    """Step decreasing linearly with w: by a fraction γ at the mean bound (aihwkit defaults γ = 0, dtod 0.05)."""

    kind = "linear_step"

    def _slopes(self, rng):
        p = self.params
        du = np.abs(p.gamma_up + p.gamma_dtod * rng.standard_normal(self.shape))
        dd = np.abs(p.gamma_down + p.gamma_dtod * rng.standard_normal(self.shape))
        up = -du * self.scale_up / p.w_max if p.w_max != 0 else np.zeros(self.shape)
        down = -dd * self.scale_down / p.w_min if p.w_min != 0 else np.zeros(self.shape)
        return up, down


class SoftBounds(PulsedDevice):
    """Step vanishing at each device's own bounds: ∝ (1 − w/b_max) up, (1 − w/b_min) down."""

    kind = "soft_bounds"
    _fixed = {"gamma_up": 1.0, "gamma_down": 1.0, "gamma_dtod": 0.0}

    def _slopes(self, rng):
        up = np.where(self.b_max != 0, -self.scale_up / np.where(self.b_max != 0, self.b_max, 1), 0.0)
        down = np.where(self.b_min != 0, -self.scale_down / np.where(self.b_min != 0, self.b_min, 1), 0.0)
        return up, down


DEVICES = {"constant_step": ConstantStep, "linear_step": LinearStep, "soft_bounds": SoftBounds}
