"""Phase-change-memory (PCM) inference noise model — IBM aihwkit 1.2
``PCMLikeNoiseModel`` with its default parameters.

Statistical model fitted to measured PCM devices: Nandakumar et al., "Phase-
change memory models for deep learning training and inference", ICECS 2019;
Joshi et al., "Accurate deep neural network inference using computational
phase-change memory", Nat. Commun. 11, 2473 (2020). Conductances in µS,
ĝ = g / g_max, g_max = 25 µS.

Programming (``apply_programming_noise``)::

    σ_prog(g) = (c0 + c1·ĝ + c2·ĝ²) · g_max / g_ref,  c = [0.26348, 1.9650, −1.1731] µS, g_ref = 25 µS
    g_prog    = max(0, g_T + s_prog · σ_prog(g_T) · ξ)

Drift coefficients, drawn at programming (``generate_drift_coefficients``)::

    μ_ν(g) = clip(−0.0155 · ln ĝ + 0.0244, 0.049, 0.1)
    σ_ν(g) = clip(−0.0125 · ln ĝ − 0.0059, 0.008, 0.045)       ĝ clipped below at 1e−7
    ν      = s_drift · |μ_ν(g_T) + σ_ν(g_T) · ξ|

Drift at inference time t_inference ≥ 0 after programming, t = t_inference + t0,
t0 = 20 s (``apply_drift_noise``)::

    g_drift = g_prog · (t / t0)^(−ν)            (g_drift = g_prog when t_inference = 0)

Accumulated 1/f read noise (``apply_read_noise``), t_read = 250 ns::

    Q(g)    = min(0.2, 0.0088 / max(1e−3, (g_prog/g_max)^0.65))
    σ_read  = Q(g_prog) · √ln((t + t_read) / (2 t_read))
    g_read  = max(0, g_drift + |g_drift| · s_read · σ_read · ξ)

aihwkit applies drift and read noise together in ``apply_drift_noise``; here
they are two steps with the same law (``at_time`` does both in one fused pass,
as the crossbar uses them). ξ are standard normals seeded from the generator
passed in (explicit seeds): programming noise, drift exponents and ``at_time``
use the fused kernels of ``kernels.crossbar`` (counter-based normals keyed by
a seed drawn from the generator), ``apply_read_noise`` draws from the
generator directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from kernels import crossbar as xbar_k

from .._validate import check_float, fail

__all__ = ["PCMNoise", "PCM_PROG_COEFF"]

#: aihwkit 1.2 default programming-noise polynomial (µS), fitted at g_max = 25 µS
PCM_PROG_COEFF = (0.26348, 1.9650, -1.1731)

_ZERO_CLIP = 1e-7


@dataclass(frozen=True)
class PCMNoise:
    """aihwkit's PCM statistical noise model (defaults = aihwkit 1.2)."""

    g_max: float = 25.0
    prog_coeff: Sequence[float] = PCM_PROG_COEFF
    prog_coeff_g_max_reference: float = 25.0
    t0: float = 20.0
    t_read: float = 250e-9
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0

    def __post_init__(self):
        check_float("g_max", self.g_max, 0, lo_open=True)
        coeff = tuple(float(c) for c in self.prog_coeff) if _is_seq(self.prog_coeff) else None
        if not coeff or not all(np.isfinite(coeff)):
            fail("prog_coeff", self.prog_coeff, "must be a non-empty list of finite polynomial coefficients (µS)")
        object.__setattr__(self, "prog_coeff", coeff)
        check_float("prog_coeff_g_max_reference", self.prog_coeff_g_max_reference, 0, lo_open=True)
        check_float("t0", self.t0, 0, lo_open=True)
        check_float("t_read", self.t_read, 0, lo_open=True)
        check_float("prog_noise_scale", self.prog_noise_scale, 0)
        check_float("read_noise_scale", self.read_noise_scale, 0)
        check_float("drift_scale", self.drift_scale, 0)

    # -- the fitted laws (deterministic functions of conductance) ------------------------------
    def prog_sigma(self, g_target: np.ndarray) -> np.ndarray:
        """σ_prog(g) in µS."""
        gh = np.asarray(g_target, dtype=np.float64) / self.g_max
        sig = np.zeros_like(gh)
        for k, c in enumerate(self.prog_coeff):
            sig = sig + c * gh ** k
        return sig * (self.g_max / self.prog_coeff_g_max_reference)

    def drift_mu(self, g_target: np.ndarray) -> np.ndarray:
        lg = np.log(np.maximum(np.abs(np.asarray(g_target, dtype=np.float64) / self.g_max), _ZERO_CLIP))
        return np.clip(-0.0155 * lg + 0.0244, 0.049, 0.1)

    def drift_sigma(self, g_target: np.ndarray) -> np.ndarray:
        lg = np.log(np.maximum(np.abs(np.asarray(g_target, dtype=np.float64) / self.g_max), _ZERO_CLIP))
        return np.clip(-0.0125 * lg - 0.0059, 0.008, 0.045)

    def read_noise_q(self, g_prog: np.ndarray) -> np.ndarray:
        gh = np.abs(np.asarray(g_prog, dtype=np.float64)) / self.g_max
        return np.minimum(0.0088 / np.maximum(gh ** 0.65, 1e-3), 0.2)

    def read_noise_sigma(self, g_prog: np.ndarray, t_inference: float) -> np.ndarray:
        """Relative std of the accumulated 1/f noise at t_inference (before s_read)."""
        t = _check_t(t_inference) + self.t0
        return self.read_noise_q(g_prog) * np.sqrt(np.log((t + self.t_read) / (2 * self.t_read)))

    # -- aihwkit's three steps -----------------------------------------------------------------
    def apply_programming_noise(self, g_target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """g_prog = max(0, g_T + s_prog·σ_prog(g_T)·ξ) (fused kernel; ξ seeded from ``rng``)."""
        return xbar_k.pcm_programming_noise(g_target, self.prog_coeff, self.g_max,
                                            self.g_max / self.prog_coeff_g_max_reference, self.prog_noise_scale,
                                            _seed(rng))

    def generate_drift_coefficients(self, g_target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """ν = s_drift·|μ_ν(g_T) + σ_ν(g_T)·ξ| (fused kernel; ξ seeded from ``rng``)."""
        return xbar_k.pcm_drift_coefficients(g_target, self.g_max, self.drift_scale, _seed(rng))

    def at_time(self, g_prog: np.ndarray, nu: np.ndarray, t_inference: float, rng: np.random.Generator) -> np.ndarray:
        """Drift and accumulated 1/f noise at t_inference in one fused pass (= read noise ∘ drift)."""
        t_inference = _check_t(t_inference)
        return xbar_k.pcm_drift_and_read(g_prog, 0.0 if nu is None else nu, t_inference, self.t0, self.t_read,
                                         self.g_max, self.read_noise_scale, _seed(rng))

    def apply_drift_noise(self, g_prog: np.ndarray, nu: Optional[np.ndarray], t_inference: float,
                          rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """Deterministic power-law drift g_prog·(t/t0)^−ν (``rng`` unused; kept for a common interface)."""
        t_inference = _check_t(t_inference)
        g = np.asarray(g_prog, dtype=np.float64)
        if t_inference <= 0 or nu is None:
            return g.copy()
        return g * ((t_inference + self.t0) / self.t0) ** (-np.asarray(nu))

    def apply_read_noise(self, g_drift: np.ndarray, g_prog: np.ndarray, t_inference: float,
                         rng: np.random.Generator) -> np.ndarray:
        g = np.asarray(g_drift, dtype=np.float64)
        sig = self.read_noise_sigma(g_prog, t_inference) * self.read_noise_scale
        xi = rng.standard_normal(g.shape)
        return np.maximum(g + np.abs(g) * sig * xi, 0.0)


def _seed(rng) -> int:
    return int(rng.integers(0, 2**63))


def _is_seq(x) -> bool:
    return isinstance(x, (list, tuple, np.ndarray)) and len(x) > 0


def _check_t(t) -> float:
    return check_float("t", t, 0)
