"""MNIST-1D (Greydanus 2020), generated in code by the ``mnist1d`` package.

``make_dataset(get_dataset_args())`` builds 4000 train / 1000 test sequences
of 40 features from templates shipped in the package; we never call its
download path. Paper reference accuracies: logistic ≈ 32%, MLP ≈ 68%,
CNN ≈ 94%.
"""

from __future__ import annotations

from functools import lru_cache

from .._validate import check_seed
from . import registry
from .base import ClassificationTask


@lru_cache(maxsize=4)
def _make(seed: int):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    d = make_dataset(args)
    return d["x"], d["y"], d["x_test"], d["y_test"]


@registry.register("mnist1d")
def mnist1d(seed: int = 42) -> ClassificationTask:
    """MNIST-1D: 40 inputs, 10 classes, 4000/1000 split; ``seed`` of the generator (42 = paper)."""
    seed = check_seed("seed", seed)
    xtr, ytr, xte, yte = _make(seed)
    return ClassificationTask(xtr, ytr, xte, yte, n_classes=10, params={"seed": seed})
