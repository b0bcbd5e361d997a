"""NeuroBench footprint / connection sparsity and per-evaluation costs (issue 4)."""

import numpy as np
import pytest

import neurozo
from neurozo import models, substrates
from neurozo.models.population import Members
from neurozo.substrates.metrics import connection_sparsity, footprint, per_evaluation, stored_weights


def test_footprint_per_storage_type():
    mlp = models.get("mlp", sizes=[64, 32, 10])
    nw, nb = 64 * 32 + 32 * 10, 32 + 10
    f = footprint(substrates.get("ideal"), mlp)
    assert f == {"bytes": 4 * (nw + nb), "parameters": nw + nb, "devices": 0}
    f8 = footprint(substrates.get("int8"), mlp)
    assert f8["bytes"] == nw + 2 * 4 + 4 * nb              # 1 byte/weight, one fp32 scale per layer, fp32 bias
    f4 = footprint(substrates.get("int4", per_channel=True), mlp)
    assert f4["bytes"] == nw // 2 + 4 * (32 + 10) + 4 * nb
    fb = footprint(substrates.get("binary"), mlp)
    assert fb["bytes"] == nw // 8 + 2 * 4 + 4 * nb
    fx = footprint(substrates.get("pcm"), [(32, 64), (10, 32)])
    assert fx["devices"] == 2 * nw and fx["bytes"] == 4 * nb + 2 * 8
    assert f["bytes"] > f8["bytes"] > f4["bytes"] > fb["bytes"]


def test_connection_sparsity_of_stored_weights():
    assert connection_sparsity([np.array([0, 1, 0, 2]), np.zeros(4)]) == 0.75
    mlp = models.get("mlp", sizes=[16, 8, 4])
    theta = mlp.init(np.random.default_rng(0))
    theta[mlp.views["W0"][0]] *= 1e-3                  # tiny weights of layer 0 quantise to 0 at 2 bits…
    theta[mlp.views["W0"][0].start] = 1.0              # …next to one large weight
    layers = mlp.layer_weights(Members(theta[None]))
    q = stored_weights(substrates.get("custom", synapse={"name": "quantized", "bits": 2}), layers)
    assert q[0].size == 16 * 8 and connection_sparsity(q[:1]) > 0.99
    assert connection_sparsity(stored_weights(substrates.get("ideal"), layers)) == 0.0
    sub = substrates.get("pcm", p_stuck_off=1.0)
    assert connection_sparsity(stored_weights(sub, layers)) == 1.0
    assert sub.costs.counts["writes"] == 0             # monitoring reads are not counted
    with pytest.raises(ValueError, match="weights"):
        connection_sparsity([])
    with pytest.raises(ValueError, match="layers"):
        footprint(substrates.get("ideal"), 5)


def test_per_evaluation_costs_of_a_run():
    res = neurozo.run(task="digits", substrate="analog-ideal-io", learner={"name": "openes", "popsize": 16},
                      budget=64, seed=0)
    assert res.final["evaluations"] == 64
    sub = substrates.get("analog-ideal-io")
    with pytest.raises(ValueError, match="evaluations"):
        per_evaluation(sub.costs)
    sub.costs.add(evaluations=4, macs=400, adc=8)
    pe = per_evaluation(sub.costs)
    assert pe["macs"] == 100 and pe["adc"] == 2 and pe["energy_pj"] == pytest.approx(100 * 0.205)
