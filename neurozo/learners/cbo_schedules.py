"""Parameter schedules for consensus-based optimization (α and σ).

α (the inverse temperature of the consensus weights w ∝ exp(−α f)):

``constant``          α fixed.
``multiply``          α ← min(α·r, α_max) after every step (CBXpy default, r = 1.05, α_max = 1e5).
``ess``               before every consensus, α solves ESS(α) = η·n by bisection on log α in
                      [α_min, α_max], ESS(α) = (Σ_k w_k)² / Σ_k w_k² over the n finite objective
                      values (Carrillo, Hoffmann, Stuart & Vaes 2022, "Consensus-based sampling";
                      η = 0.5 by default). ESS falls from n at α = 0 towards 1 as α grows.
``double_per_epoch``  α ← min(2α, α_max) after every epoch (Carrillo, Jin, Li & Zhu 2021).

σ (the noise strength):

``constant``          σ fixed.
``log_cooling``       after epoch e = 1, 2, … : σ ← σ·log₂(e + 1)/log₂(e + 2), i.e.
                      σ_e = σ_0 / log₂(e + 2) (Carrillo, Jin, Li & Zhu 2021).
"""

from __future__ import annotations

import math

import numpy as np

from kernels import cbo as _k

__all__ = ["ALPHA_SCHEDULES", "SIGMA_SCHEDULES", "effective_sample_size", "ess_alpha", "alpha_after_step",
           "alpha_after_epoch", "sigma_after_epoch"]

ALPHA_SCHEDULES = ("constant", "multiply", "ess", "double_per_epoch")
SIGMA_SCHEDULES = ("constant", "log_cooling")


def effective_sample_size(energy, alpha) -> np.ndarray:
    """(Σw)²/Σw² per run for w = exp(−α·E) over the finite values of E (M, B) (or (B,))."""
    return _k.effective_sample_size(energy, alpha)


def ess_alpha(energy, eta: float = 0.5, alpha_min: float = 1e-5, alpha_max: float = 1e5, rtol: float = 1e-3,
              max_it: int = 100, active=None, out=None) -> np.ndarray:
    """α per run with ESS(α) = η·n within rtol·n (bisection on log α); see the module docstring."""
    return _k.ess_alpha(energy, eta, alpha_min, alpha_max, rtol, max_it, active, out)


def alpha_after_step(alpha: np.ndarray, schedule: str, factor: float, alpha_max: float, active=None) -> np.ndarray:
    """In place: the per-step part of the α schedule (only ``multiply`` acts here)."""
    if schedule == "multiply":
        if active is None:
            np.multiply(alpha, factor, out=alpha)
            np.minimum(alpha, alpha_max, out=alpha)
        else:
            alpha[active] = np.minimum(alpha[active] * factor, alpha_max)
    return alpha


def alpha_after_epoch(alpha: np.ndarray, schedule: str, alpha_max: float, active=None) -> np.ndarray:
    """In place: the per-epoch part of the α schedule (only ``double_per_epoch`` acts here)."""
    if schedule == "double_per_epoch":
        sel = slice(None) if active is None else active
        alpha[sel] = np.minimum(alpha[sel] * 2.0, alpha_max)
    return alpha


def sigma_after_epoch(sigma: float, schedule: str, epoch: int) -> float:
    """σ after finishing epoch ``epoch`` (1-based)."""
    if schedule == "log_cooling":
        return sigma * math.log2(epoch + 1) / math.log2(epoch + 2)
    return sigma
