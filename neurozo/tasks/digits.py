"""scikit-learn's 8×8 handwritten digits (shipped with the package).

1797 images, pixels scaled to [0, 1] (÷16). Fixed split from a permutation
with seed 0: 1400 train / 397 test (the split the snnTorch BPTT reference in
REFERENCES.md used).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .._validate import check_int
from . import registry
from .base import ClassificationTask


@lru_cache(maxsize=4)
def _load(n_train: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.data.astype(np.float32) / 16.0
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(y))
    tr, te = perm[:n_train], perm[n_train:]
    return x[tr], y[tr], x[te], y[te]


@registry.register("digits")
def digits(n_train: int = 1400) -> ClassificationTask:
    """8×8 digits, 10 classes, 64 inputs in [0, 1]; ``n_train`` of 1797 for training."""
    n_train = check_int("n_train", n_train, 10, 1787)
    return ClassificationTask(*_load(n_train), n_classes=10, params={"n_train": n_train})
