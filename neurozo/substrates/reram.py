"""ReRAM inference noise model — aihwkit 1.2 ``ReRamWan2022NoiseModel``.

Source of the parameter set: Wan et al., "A compute-in-memory chip based on
resistive random-access memory", Nature 608, 504–512 (2022) (the NeuRRAM
chip); aihwkit fitted the conductance dependence of the deviation from the
target, read from that paper's figures, with 4th-order polynomials at
t = 1 s, 1 day and 2 days after programming (g_max = 40 µS reference)::

    σ_t(g) = Σ_k c_{t,k} · ĝ^k · g_max / g_ref,  ĝ = g / g_max        (µS)

    c_1s  = [0.348, 16.030, −43.853, 45.393, −16.815]
    c_1d  = [0.701, 22.086, −50.773, 47.095, −16.458]
    c_2d  = [0.782, 20.274, −43.507, 37.062, −11.934]

ReRAM relaxes instead of drifting: the state read at time t is a fresh draw
around the *target*, g(t) = max(0, g_T + s·σ_t(g_T)·ξ); programming uses the
1 s polynomial. aihwkit only accepts the three fitted times; here σ_t is
interpolated linearly in log t between them and held constant outside
[1 s, 2 days] (t < 1 s → the 1 s fit) — our extension, stated as such.
No 1/f read-noise data exists for this chip; aihwkit suggests modelling
short-term read noise (~1 %) as output-referred weight noise
(``IOParams.w_noise = 0.01``), which the ``rram`` preset does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .._validate import check_float, fail

__all__ = ["ReRAMNoise", "WAN2022_TIMES", "WAN2022_COEFF"]

WAN2022_TIMES = (1.0, 86400.0, 172800.0)
WAN2022_COEFF = (
    (0.348, 16.030, -43.853, 45.393, -16.815),
    (0.701, 22.086, -50.773, 47.095, -16.458),
    (0.782, 20.274, -43.507, 37.062, -11.934),
)


@dataclass(frozen=True)
class ReRAMNoise:
    g_max: float = 40.0
    times: Sequence[float] = WAN2022_TIMES
    coeffs: Sequence[Sequence[float]] = WAN2022_COEFF
    coeff_g_max_reference: float = 40.0
    noise_scale: float = 1.0

    def __post_init__(self):
        check_float("g_max", self.g_max, 0, lo_open=True)
        check_float("coeff_g_max_reference", self.coeff_g_max_reference, 0, lo_open=True)
        check_float("noise_scale", self.noise_scale, 0)
        try:
            times = tuple(float(t) for t in self.times)
            coeffs = tuple(tuple(float(c) for c in row) for row in self.coeffs)
        except (TypeError, ValueError):
            fail("coeffs", self.coeffs, "must be one list of polynomial coefficients per time in `times`")
        if not times or len(coeffs) != len(times) or any(len(c) == 0 for c in coeffs):
            fail("coeffs", self.coeffs, f"must have one non-empty coefficient list per time ({len(times)} times)")
        if any(t <= 0 for t in times) or list(times) != sorted(times):
            fail("times", self.times, "must be positive and increasing (seconds)")
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "coeffs", coeffs)

    def sigma_at(self, g_target: np.ndarray, t_inference: float) -> np.ndarray:
        """σ_t(g) in µS, interpolated in log t between the fitted times."""
        t = max(check_float("t", t_inference, 0), self.times[0])
        gh = np.asarray(g_target, dtype=np.float64) / self.g_max
        sig = [sum(c * gh ** k for k, c in enumerate(row)) for row in self.coeffs]
        lt = np.log(self.times)
        if t >= self.times[-1] or len(self.times) == 1:
            s = sig[-1]
        else:
            i = int(np.searchsorted(lt, np.log(t), side="right")) - 1
            w = (np.log(t) - lt[i]) / (lt[i + 1] - lt[i])
            s = (1 - w) * sig[i] + w * sig[i + 1]
        return np.abs(s) * (self.g_max / self.coeff_g_max_reference)

    def apply_programming_noise(self, g_target, rng):
        g = np.asarray(g_target, dtype=np.float64)
        return np.maximum(g + self.noise_scale * self.sigma_at(g, self.times[0]) * rng.standard_normal(g.shape), 0.0)

    def generate_drift_coefficients(self, g_target, rng):
        """ReRAM keeps its targets: relaxation redraws around them."""
        return np.asarray(g_target, dtype=np.float64).copy()

    def apply_drift_noise(self, g_prog, g_target: Optional[np.ndarray], t_inference: float, rng=None):
        t_inference = check_float("t", t_inference, 0)
        if t_inference <= self.times[0] or g_target is None:
            return np.asarray(g_prog, dtype=np.float64).copy()
        g = np.asarray(g_target, dtype=np.float64)
        return np.maximum(g + self.noise_scale * self.sigma_at(g, t_inference) * rng.standard_normal(g.shape), 0.0)

    def apply_read_noise(self, g_drift, g_prog, t_inference, rng):
        return np.asarray(g_drift, dtype=np.float64)

    def at_time(self, g_prog, g_target, t_inference, rng):
        return self.apply_read_noise(self.apply_drift_noise(g_prog, g_target, t_inference, rng), g_prog,
                                     t_inference, rng)
