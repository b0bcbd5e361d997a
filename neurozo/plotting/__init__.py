"""Plots for notebooks and reports.

Every function takes ``ax=None`` (a new figure when None), draws, and returns
the ``Axes``; none sets a global style. Import matplotlib lazily so that the
rest of neurozo works without a display.

curves   learning curves (mean ± 95% CI over seeds)
spikes   raster, spike-count histogram, membrane traces (spiking substrates)
"""

from .curves import learning_curves  # noqa: F401

try:  # modules added by later issues register here
    from .spikes import membrane_traces, raster, spike_count_hist  # noqa: F401
except ImportError:  # pragma: no cover
    pass
