"""Population dense kernels and activations against plain numpy."""

import numpy as np
import pytest

from kernels import activations, dense


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_population_matches_numpy(shared, dtype):
    rng = np.random.default_rng(0)
    P, B, n, m = 5, 7, 11, 3
    x = rng.standard_normal((1 if shared else P, B, n)).astype(dtype)
    W = rng.standard_normal((P, m, n)).astype(dtype)
    b = rng.standard_normal((P, m)).astype(dtype)
    ref = np.einsum("pbn,pmn->pbm", np.broadcast_to(x, (P, B, n)).astype(np.float64), W.astype(np.float64)) + b[:, None]
    out = dense.dense_population(x, W, b)
    assert out.shape == (P, B, m) and out.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("shared", [True, False])
def test_dense_lowrank_equals_materialized(shared):
    rng = np.random.default_rng(1)
    P, B, n, m, r = 4, 6, 9, 5, 2
    x = rng.standard_normal((1 if shared else P, B, n))
    W = rng.standard_normal((m, n))
    b = rng.standard_normal((P, m))
    A = rng.standard_normal((P, m, r))
    Bf = rng.standard_normal((P, n, r))
    s = 0.37
    full = W[None] + s * np.einsum("pmr,pnr->pmn", A, Bf)
    ref = dense.dense_population(x, full, b)
    np.testing.assert_allclose(dense.dense_lowrank(x, W, b, A, Bf, s), ref, rtol=1e-10, atol=1e-10)


def test_dense_shape_errors_name_the_problem():
    W = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="x shape"):
        dense.dense_population(np.zeros((1, 5, 3)), W, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="b shape"):
        dense.dense_population(np.zeros((1, 5, 4)), W, np.zeros((2, 4)))


def test_activations_match_numpy():
    z = np.linspace(-6, 6, 303).reshape(3, 101)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    refs = {"relu": np.maximum(z, 0), "tanh": np.tanh(z), "sigmoid": sig(z), "hard_sigmoid": np.clip(z, 0, 1),
            "ep_sigmoid": sig(4 * z - 2), "identity": z}
    assert set(refs) == set(activations.ACTIVATIONS)
    for name, ref in refs.items():
        np.testing.assert_allclose(activations.apply(name, z), ref, rtol=1e-12, atol=1e-12, err_msg=name)
        # derivative against a central difference
        h = 1e-6
        fd = (activations.apply(name, z + h) - activations.apply(name, z - h)) / (2 * h)
        mask = np.abs(z) > 1e-3
        if name == "hard_sigmoid":
            mask &= np.abs(z - 1) > 1e-3
        np.testing.assert_allclose(activations.derivative(name, z)[mask], fd[mask], atol=1e-5, err_msg=name)
    with pytest.raises(ValueError, match="activation='swish'"):
        activations.apply("swish", z)


def test_activation_apply_copies_unless_inplace():
    z = np.array([-1.0, 2.0])
    activations.apply("relu", z)
    assert z[0] == -1.0
    activations.apply("relu", z, inplace=True)
    assert z[0] == 0.0
