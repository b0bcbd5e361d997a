import numpy as np
import pytest

from neurozo import tasks


def test_digits_fixed_split_and_batches():
    t = tasks.get("digits")
    assert (t.n_inputs, t.n_outputs) == (64, 10)
    assert len(t.y_train) == 1400 and len(t.y_test) == 397
    assert 0.0 <= t.x_train.min() and t.x_train.max() <= 1.0
    t2 = tasks.get("digits")
    np.testing.assert_array_equal(t.y_test, t2.y_test)  # fixed split
    # no test example leaks into training
    tr = {a.tobytes() for a in t.x_train}
    assert sum(a.tobytes() in tr for a in t.x_test) < 5  # (a few exact duplicate images exist in the data set)
    x1, y1 = t.batch(np.random.default_rng(3), 128)
    x2, y2 = t.batch(np.random.default_rng(3), 128)
    np.testing.assert_array_equal(y1, y2)
    assert x1.shape == (128, 64) and len(set(map(bytes, x1))) > 100  # sampled without replacement
    x3, _ = t.batch(np.random.default_rng(4), 128)
    assert not np.array_equal(x1, x3)


def test_mnist1d_generated_not_downloaded():
    t = tasks.get("mnist1d")
    assert t.x_train.shape == (4000, 40) and t.x_test.shape == (1000, 40)
    assert set(np.unique(t.y_train)) == set(range(10))


def test_mnist1d_num_samples_split_80_20_and_paper_default_keeps_run_keys():
    import neurozo
    t = tasks.get("mnist1d", num_samples=2000)
    assert t.x_train.shape == (1600, 40) and t.x_test.shape == (400, 40)
    assert set(np.unique(t.y_test)) == set(range(10))
    # the paper's 5000 is left out of the spec (runs stored before the parameter keep their keys) ...
    assert "num_samples" not in tasks.get("mnist1d").registry_spec
    assert "num_samples" not in tasks.get("mnist1d", num_samples=5000).registry_spec
    # ... and any other value is in it, so the two data sets never share a key
    assert t.registry_spec["num_samples"] == 2000
    cfg = dict(model={"name": "mlp", "sizes": [40, 8, 10]}, learner="openes", budget=1000)
    k0 = neurozo.build(task="mnist1d", **cfg).key
    assert neurozo.build(task={"name": "mnist1d", "num_samples": 5000}, **cfg).key == k0
    assert neurozo.build(task={"name": "mnist1d", "num_samples": 2000}, **cfg).key != k0


@pytest.mark.parametrize("bad", [0, 99, -5, 2.5, "many"])
def test_mnist1d_bad_num_samples(bad):
    with pytest.raises(ValueError, match="num_samples"):
        tasks.get("mnist1d", num_samples=bad)


def test_registry_added_parameter_must_exist():
    from neurozo.registry import Registry

    r = Registry("thing")

    def f(a=1):
        return object()

    with pytest.raises(ValueError, match="added parameter"):
        r.register("f", f, added={"b": 2})


@pytest.mark.parametrize("name", ["sphere", "rastrigin", "ackley"])
@pytest.mark.parametrize("dim", [1, 7, 50])
def test_function_minimum_at_zero(name, dim):
    t = tasks.get(name, dim=dim)
    assert abs(t.evaluate(np.zeros(dim))) < 1e-12
    rng = np.random.default_rng(dim)
    X = rng.uniform(-3, 3, (100, dim))
    assert np.all(t.evaluate(X) > 0)
    assert t.evaluate(X[None]).shape == (1, 100)


def test_rastrigin_and_ackley_formulas():
    x = np.array([0.5, -1.0, 2.0])
    r = 10 * 3 + sum(v * v - 10 * np.cos(2 * np.pi * v) for v in x)
    assert tasks.get("rastrigin", dim=3).evaluate(x) == pytest.approx(r)
    a = -20 * np.exp(-0.2 * np.sqrt(np.mean(x**2))) - np.exp(np.mean(np.cos(2 * np.pi * x))) + 20 + np.e
    assert tasks.get("ackley", dim=3).evaluate(x) == pytest.approx(a)


def test_cross_entropy_matches_direct_formula():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, 5, 4)) * 3
    y = rng.integers(0, 4, 5)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    ref = -np.log(p[:, np.arange(5), y]).mean(-1)
    t = tasks.get("digits")
    np.testing.assert_allclose(t.loss(z, y), ref, rtol=1e-12)
    acc = t.accuracy(z, y)
    np.testing.assert_allclose(acc, (z.argmax(-1) == y).mean(-1))


def test_task_bad_input():
    with pytest.raises(ValueError, match="task='cifar'"):
        tasks.get("cifar")
    with pytest.raises(ValueError, match="dim=0"):
        tasks.get("sphere", dim=0)
    with pytest.raises(ValueError, match="unknown parameter"):
        tasks.get("digits", size=3)
    with pytest.raises(ValueError, match="batch_size=5000"):
        tasks.get("digits").batch(np.random.default_rng(0), 5000)
