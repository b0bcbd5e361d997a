"""Plots for notebooks and reports.

Every function takes ``ax=None`` (a new figure when None), draws, and returns
the ``Axes``; none sets a global style. Import matplotlib lazily so that the
rest of neurozo works without a display.

curves   learning curves (mean ± 95% CI over seeds)
spikes   raster, spike-count histogram, membrane traces (spiking substrates)
noise    accuracy vs noise level per learner (mean ± 95% CI over seeds)
pareto   accuracy vs energy with the Pareto front
bars     evaluations-to-target bar chart
"""

from .bars import evaluations_to_target, time_to_target  # noqa: F401
from .curves import learning_curves  # noqa: F401
from .noise import accuracy_vs_noise  # noqa: F401
from .pareto import accuracy_vs_energy, pareto_front  # noqa: F401

try:  # modules added by later issues register here
    from .spikes import membrane_traces, raster, spike_count_hist  # noqa: F401
except ImportError:  # pragma: no cover
    pass
