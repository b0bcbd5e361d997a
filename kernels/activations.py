"""Elementwise rate nonlinearities, Numba CPU versions.

    relu(z)         = max(z, 0)
    tanh(z)         = tanh z
    sigmoid(z)      = 1 / (1 + e^{−z})
    hard_sigmoid(z) = clip(z, 0, 1)             (Laborieux et al. EP)
    ep_sigmoid(z)   = σ(4z − 2)                 (Laborieux & Zenke 2022 φ)
    identity(z)     = z

All work in place on a C-contiguous array of any shape and return it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["ACTIVATIONS", "apply", "derivative"]


@njit(parallel=True, fastmath=False, cache=True)
def _relu(z):  # pragma: no cover - compiled
    f = z.reshape(-1)
    for i in prange(f.size):
        if f[i] < 0:
            f[i] = 0
    return z


@njit(parallel=True, fastmath=False, cache=True)
def _tanh(z):  # pragma: no cover - compiled
    f = z.reshape(-1)
    for i in prange(f.size):
        f[i] = math.tanh(f[i])
    return z


@njit(parallel=True, fastmath=False, cache=True)
def _sigmoid(z):  # pragma: no cover - compiled
    f = z.reshape(-1)
    for i in prange(f.size):
        v = f[i]
        if v >= 0:
            f[i] = 1.0 / (1.0 + math.exp(-v))
        else:
            e = math.exp(v)
            f[i] = e / (1.0 + e)
    return z


@njit(parallel=True, fastmath=False, cache=True)
def _hard_sigmoid(z):  # pragma: no cover - compiled
    f = z.reshape(-1)
    for i in prange(f.size):
        v = f[i]
        f[i] = 0 if v < 0 else (1 if v > 1 else v)
    return z


@njit(parallel=True, fastmath=False, cache=True)
def _ep_sigmoid(z):  # pragma: no cover - compiled
    f = z.reshape(-1)
    for i in prange(f.size):
        v = 4.0 * f[i] - 2.0
        if v >= 0:
            f[i] = 1.0 / (1.0 + math.exp(-v))
        else:
            e = math.exp(v)
            f[i] = e / (1.0 + e)
    return z


def _identity(z):
    return z


ACTIVATIONS = {
    "relu": _relu,
    "tanh": _tanh,
    "sigmoid": _sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "ep_sigmoid": _ep_sigmoid,
    "identity": _identity,
}


def apply(name: str, z: np.ndarray, inplace: bool = False) -> np.ndarray:
    """Apply activation ``name`` to ``z`` (a copy unless ``inplace``)."""
    try:
        fn = ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation={name!r} is unknown; allowed: {sorted(ACTIVATIONS)}") from None
    if not inplace or not z.flags.c_contiguous:
        z = np.array(z, copy=True, order="C")
    return fn(z)


def derivative(name: str, z: np.ndarray) -> np.ndarray:
    """dφ/dz evaluated at pre-activation z (numpy; for EP and node perturbation)."""
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "sigmoid":
        s = apply("sigmoid", z)
        return s * (1 - s)
    if name == "ep_sigmoid":
        s = apply("ep_sigmoid", z)
        return 4 * s * (1 - s)
    if name == "hard_sigmoid":
        return ((z > 0) & (z < 1)).astype(z.dtype)
    if name == "identity":
        return np.ones_like(z)
    raise ValueError(f"activation={name!r} is unknown; allowed: {sorted(ACTIVATIONS)}")
