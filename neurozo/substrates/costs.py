"""Device cost counters and energy estimates.

Counted operations (NeuroBench vocabulary where it has one):

macs            multiply-accumulates of dense (non-spike) inputs
acs             accumulates driven by spikes (effective synaptic ops, AC)
neuron_updates  state updates of neurons (one per neuron per time step)
spikes          emitted spikes
dac / adc       digital→analog and analog→digital conversions
writes          weight (conductance) writes when programming a device
pulses          update pulses of in-place (pulsed) training
evaluations     mini-batch forward evaluations (the budget unit)
periphery_macs  digital multiply-accumulates done beside an analog array (output
                rescaling and bias, perturbations added in the periphery)

Energy is Σ count × pJ-per-op from the substrate's table.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Mapping

__all__ = ["CostCounter", "COST_FIELDS"]

COST_FIELDS = ("macs", "acs", "neuron_updates", "spikes", "dac", "adc", "writes", "pulses", "evaluations",
               "periphery_macs")


class CostCounter:
    """Accumulates operation counts; ``paused()`` suspends counting (monitoring)."""

    def __init__(self, energy_pj: Mapping[str, float] | None = None):
        self.energy_table: Dict[str, float] = dict(energy_pj or {})
        self.counts: Dict[str, int] = {k: 0 for k in COST_FIELDS}
        self._paused = 0

    def add(self, **kw: int) -> None:
        if self._paused:
            return
        for k, v in kw.items():
            if k not in self.counts:
                raise KeyError(f"unknown cost field {k!r}; known: {COST_FIELDS}")
            self.counts[k] += int(v)

    @contextlib.contextmanager
    def paused(self):
        self._paused += 1
        try:
            yield self
        finally:
            self._paused -= 1

    def energy_pj(self) -> float:
        return float(sum(self.counts[k] * self.energy_table.get(k, 0.0) for k in self.counts))

    def snapshot(self) -> Dict[str, float]:
        out: Dict[str, float] = dict(self.counts)
        out["energy_pj"] = self.energy_pj()
        return out

    def reset(self) -> None:
        for k in self.counts:
            self.counts[k] = 0
