"""Spike plots return their Axes and draw what was recorded."""

from __future__ import annotations

import numpy as np
import pytest

import neurozo

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from neurozo.plotting import membrane_traces, raster, spike_count_hist  # noqa: E402


@pytest.fixture(scope="module")
def trace():
    sub = neurozo.substrates.get("lif", T=12, record=True)
    model = neurozo.models.get("mlp", sizes=[64, 24, 10])
    rng = np.random.default_rng(0)
    x = neurozo.tasks.get("digits").batch(rng, 4)[0]
    model.forward(model.init(rng), x, sub, rng)
    return sub.neuron.trace


def test_raster_draws_one_point_per_spike(trace):
    import matplotlib.pyplot as plt

    s = trace["spikes"][0]
    ax = raster(s, sample=1)
    assert isinstance(ax, plt.Axes)
    xs = np.concatenate([ln.get_xdata() for ln in ax.lines])
    assert len(xs) == int(s[0, :, 1].sum()) > 0
    fig, ax2 = plt.subplots()
    assert raster(s[0, :, 1], ax=ax2) is ax2
    plt.close("all")


def test_spike_count_hist_counts_every_neuron(trace):
    import matplotlib.pyplot as plt

    s = trace["spikes"][0]
    ax = spike_count_hist(s)
    total = sum(p.get_height() for p in ax.patches)
    assert total == s.shape[0] * s.shape[2] * s.shape[3]
    ax = spike_count_hist(trace["counts"][0], time_axis=-1)
    assert sum(p.get_height() for p in ax.patches) == trace["counts"][0].size
    plt.close("all")


def test_membrane_traces_plot_selected_neurons(trace):
    import matplotlib.pyplot as plt

    mem, s = trace["membrane"][0], trace["spikes"][0]
    ax = membrane_traces(mem, neurons=[0, 3], threshold=1.0, spikes=s)
    labels = [ln.get_label() for ln in ax.lines]
    assert "neuron 0" in labels and "neuron 3" in labels
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), mem[0, :, 0, 0])
    plt.close("all")


def test_bad_shape_raises():
    with pytest.raises(ValueError, match="shape"):
        raster(np.zeros(5))
