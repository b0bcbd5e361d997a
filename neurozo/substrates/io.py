"""Periphery (IO) model of an analog crossbar tile — aihwkit 1.2 ``IOParameters``
defaults for the forward pass.

Per input vector (see ``kernels.crossbar`` for the fused implementation)::

    α   = max_j |x_j|                                   noise management "abs_max"
    x̂   = clip(q_in(x / (α·red)), ±inp_bound)           DAC, 7 bits: step 2·inp_bound/(2^7 − 2) = 2/126
    z   = W x̂  [− IR drop]  + w_noise·‖x̂‖₂·ξ + out_noise·ξ'
    ŷ   = clip(q_out(z), ±out_bound)                    ADC, 9 bits: step 2·out_bound/(2^9 − 2) = 24/510
    bound management "iterative": if any |q_out(z)| > out_bound, red ← 2·red and the vector is read
    again, until it fits or red > max_bm_factor (1000) or red > max_bm_res / step_in (0.25·63)
    y   = ŷ · α · red                                   (then the digital output scale and bias)

Defaults (aihwkit ``IOParameters``): inp_bound 1, inp_res 1/(2^7 − 2),
out_bound 12, out_res 1/(2^9 − 2), out_noise 0.06, w_noise 0 (type
"additive constant" when > 0: output-referred std w_noise·‖x̂‖₂), bound
management iterative, noise management abs_max, max_bm_factor 1000,
max_bm_res 0.25, ir_drop 0 (optional; aihwkit's steady-state approximation
with ir_drop_g_ratio = 1/0.35/5e−6, the wire-to-device conductance ratio).
``inp_bits`` / ``out_bits`` = None means an ideal (unquantised) converter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from kernels import crossbar as xbar_k

from .._validate import check_choice, check_float, check_int

__all__ = ["IOParams", "analog_read"]


@dataclass(frozen=True)
class IOParams:
    inp_bits: Optional[int] = 7
    inp_bound: float = 1.0
    out_bits: Optional[int] = 9
    out_bound: float = 12.0
    out_noise: float = 0.06
    w_noise: float = 0.0
    bound_management: str = "iterative"
    noise_management: str = "abs_max"
    max_bm_factor: float = 1000.0
    max_bm_res: float = 0.25
    ir_drop: float = 0.0
    ir_drop_g_ratio: float = 1.0 / 0.35 / 5e-6

    def __post_init__(self):
        if self.inp_bits is not None:
            check_int("inp_bits", self.inp_bits, 2, 16)
        if self.out_bits is not None:
            check_int("out_bits", self.out_bits, 2, 16)
        check_float("inp_bound", self.inp_bound, 0, lo_open=True)
        check_float("out_bound", self.out_bound, 0, lo_open=True)
        check_float("out_noise", self.out_noise, 0)
        check_float("w_noise", self.w_noise, 0)
        check_choice("bound_management", self.bound_management, ["iterative", "none"])
        check_choice("noise_management", self.noise_management, ["abs_max", "none"])
        check_float("max_bm_factor", self.max_bm_factor, 1)
        check_float("max_bm_res", self.max_bm_res, 0, lo_open=True)
        check_float("ir_drop", self.ir_drop, 0)
        check_float("ir_drop_g_ratio", self.ir_drop_g_ratio, 0, lo_open=True)

    @property
    def inp_res(self) -> float:
        """Absolute DAC step (0: ideal DAC)."""
        return 0.0 if self.inp_bits is None else 2 * self.inp_bound / (2 ** self.inp_bits - 2)

    @property
    def out_res(self) -> float:
        """Absolute ADC step (0: ideal ADC)."""
        return 0.0 if self.out_bits is None else 2 * self.out_bound / (2 ** self.out_bits - 2)

    def kernel_args(self) -> dict:
        return dict(inp_res=self.inp_res, inp_bound=self.inp_bound, out_res=self.out_res,
                    out_bound=self.out_bound, out_noise=self.out_noise, w_noise=self.w_noise,
                    noise_management=self.noise_management == "abs_max",
                    bound_management=self.bound_management == "iterative",
                    max_bm_factor=self.max_bm_factor, max_bm_res=self.max_bm_res,
                    ir_drop=self.ir_drop, ir_drop_g_ratio=self.ir_drop_g_ratio)


def analog_read(io: IOParams, x: np.ndarray, W: np.ndarray, seed: int, post_scale=None, bias=None,
                costs=None, spiking: bool = False) -> np.ndarray:
    """IO-managed MVM of x (Px, R, n) with tile weights W (P, m, n); counts DAC/ADC/MACs (or ACs)."""
    y, rounds = xbar_k.analog_mvm(x, W, post_scale=post_scale, bias=bias, seed=seed, **io.kernel_args())
    if costs is not None:
        P, m, n = W.shape
        dac, adc, macs = xbar_k.mvm_counts(rounds, m, n)
        if spiking:  # event inputs: only active rows of the array conduct
            R = x.shape[1]
            active = np.count_nonzero(x.reshape(x.shape[0], R, n), axis=-1)          # (Px, R)
            acs = int((np.broadcast_to(active, rounds.shape) * rounds).sum()) * m
            costs.add(dac=dac, adc=adc, acs=acs)
        else:
            costs.add(dac=dac, adc=adc, macs=macs)
    return y
