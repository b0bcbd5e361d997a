"""Pulsed update devices (ConstantStep, LinearStep, SoftBounds) — aihwkit PulsedDevice rules.

Statistical tolerances: k = 4 standard errors of each estimate for its sample size.
"""

import math

import numba
import numpy as np
import pytest

from neurozo.substrates import CostCounter
from neurozo.substrates.pulsed import ConstantStep, LinearStep, SoftBounds

IDEAL = dict(dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)


def test_constant_step_exact_pulses_and_bounds():
    d = ConstantStep((4, 5), **IDEAL, rounding="nearest")
    delta = np.arange(-10, 10).reshape(4, 5) * 0.001
    pulses = d.apply_update(delta)
    assert np.array_equal(pulses, np.abs(np.arange(-10, 10)).reshape(4, 5))
    assert np.allclose(d.w, delta)
    d.apply_update(np.full((4, 5), 5.0))        # far beyond the bound: clipped at w_max
    assert np.allclose(d.w, 0.6)
    assert d.pulses == int(pulses.sum()) + 20 * 5000


def test_stochastic_pulse_count_is_unbiased_and_counted():
    N = 100_000
    d = ConstantStep((N,), **IDEAL)
    costs = CostCounter({"pulses": 1.0})
    v = 2.37
    pulses = d.apply_update(np.full(N, v * 0.001), rng=np.random.default_rng(0), costs=costs)
    f = v - math.floor(v)
    assert set(np.unique(pulses)) == {2, 3}
    assert abs(pulses.mean() - v) < 4 * math.sqrt(f * (1 - f) / N)
    assert costs.counts["pulses"] == pulses.sum() == d.pulses


def test_cycle_to_cycle_and_device_to_device_variation():
    N = 40_000
    d = ConstantStep((N,), dw_min_std=0.3, dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
                     rounding="nearest")
    d.apply_update(np.full(N, 0.001), rng=1)
    steps = d.w / 0.001                                  # one pulse: 1 + 0.3 ξ
    assert abs(steps.mean() - 1) < 4 * 0.3 / math.sqrt(N)
    assert abs(steps.std(ddof=1) - 0.3) < 4 * 0.3 / math.sqrt(2 * (N - 1))
    d2 = ConstantStep((N,), seed=3, dw_min_dtod=0.3, up_down_dtod=0.0)
    g = d2.scale_up / 0.001                              # |1 + 0.3 ξ|
    assert abs(g.std(ddof=1) - 0.3) < 4 * 0.3 / math.sqrt(2 * (N - 1))
    b = d2.b_max / 0.6
    assert abs(b.std(ddof=1) - 0.3) < 4 * 0.3 / math.sqrt(2 * (N - 1))
    assert np.all(d2.b_min <= 0) and np.all(d2.b_max >= 0)


def test_up_down_asymmetry():
    d = ConstantStep((10,), **IDEAL, up_down=0.5, rounding="nearest")
    assert np.allclose(d.scale_up, 0.001) and np.allclose(d.scale_down, 0.0005)
    d.apply_update(np.full(10, 0.01))
    d.apply_update(np.full(10, -0.01))                   # 10 up, 10 down pulses: net +10·0.0005
    assert np.allclose(d.w, 0.005)
    d = ConstantStep((10,), **IDEAL, up_down=-0.5)
    assert np.allclose(d.scale_up, 0.0005) and np.allclose(d.scale_down, 0.001)


def test_soft_bounds_step_scales_with_distance_to_bound():
    d = SoftBounds((3,), **IDEAL, rounding="nearest")
    for w0 in (0.0, 0.3, -0.3):
        d.set_weights(np.full(3, w0))
        d.apply_update(np.full(3, 0.001))
        assert np.allclose(d.w - w0, 0.001 * (1 - w0 / 0.6))
        d.set_weights(np.full(3, w0))
        d.apply_update(np.full(3, -0.001))
        assert np.allclose(w0 - d.w, 0.001 * (1 - w0 / -0.6))
    d.set_weights(np.zeros(3))
    d.apply_update(np.full(3, 10.0))                     # 10 000 up pulses: approaches, never passes, b_max
    assert np.all(d.w < 0.6) and np.all(d.w > 0.59)


def test_linear_step_slope():
    d = LinearStep((2,), **IDEAL, gamma_up=0.5, gamma_down=0.5, gamma_dtod=0.0, rounding="nearest")
    # step = dw_min·(1 − γ·w/w_max): 3/4 of dw_min half way to the bound (γ = 0.5)
    d.set_weights(np.full(2, 0.3))
    d.apply_update(np.full(2, 0.001))
    assert np.allclose(d.w - 0.3, 0.00075)
    d.set_weights(np.full(2, -0.3))
    d.apply_update(np.full(2, -0.001))
    assert np.allclose(-0.3 - d.w, 0.00075)


def test_pulse_noise_seeded_and_thread_independent():
    shape = (256, 256)                                   # above kernels.crossbar.PARALLEL_MIN_WORK
    d1 = SoftBounds(shape, seed=2)
    d2 = SoftBounds(shape, seed=2)
    delta = np.random.default_rng(0).normal(0, 0.01, shape)
    d1.apply_update(delta, rng=5)
    n = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        d2.apply_update(delta, rng=5)
    finally:
        numba.set_num_threads(n)
    assert np.array_equal(d1.w, d2.w)
    d3 = SoftBounds(shape, seed=2)
    d3.apply_update(delta, rng=6)
    assert not np.array_equal(d1.w, d3.w)


def test_max_pulses_caps_the_train():
    d = ConstantStep((3,), **IDEAL, max_pulses=7, rounding="nearest")
    p = d.apply_update(np.full(3, 1.0))
    assert np.all(p == 7) and np.allclose(d.w, 0.007)


@pytest.mark.parametrize("kw, name", [
    ({"dw_min": 0.0}, "dw_min"), ({"dw_min": -1e-3}, "dw_min"), ({"dw_min_std": -0.1}, "dw_min_std"),
    ({"dw_min_dtod": -0.3}, "dw_min_dtod"), ({"w_max": -0.6}, "w_max"), ({"w_min": 0.6}, "w_min"),
    ({"up_down": 2.0}, "up_down"), ({"rounding": "floor"}, "rounding"), ({"max_pulses": -1}, "max_pulses"),
    ({"w_max_dtod": -1.0}, "w_max_dtod"),
])
def test_bad_device_parameters(kw, name):
    with pytest.raises(ValueError, match=name):
        ConstantStep((2, 2), **kw)


def test_bad_update_and_fixed_fields():
    d = ConstantStep((2, 2))
    with pytest.raises(ValueError, match="delta"):
        d.apply_update(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="delta"):
        d.apply_update(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="gamma_up"):
        SoftBounds((2,), gamma_up=0.3)
    with pytest.raises(ValueError, match="shape"):
        ConstantStep((0, 3))
