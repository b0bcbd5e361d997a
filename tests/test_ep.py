"""EP learner: inside neurozo.run, budget counting, logged residual/alignment, non-convergence
handling, the analog substrate, bad input."""

import warnings

import numpy as np
import pytest

import neurozo
from neurozo.learners.base import Problem
from neurozo.learners.ep import EP
from neurozo.models.energy import EnergyNet

SMALL = {"name": "energy", "sizes": [64, 24, 16, 10], "T1": 60, "tol": 1e-4}
FAST = {"name": "energy", "sizes": [64, 32, 10], "T1": 100, "dt": 0.5, "tol": 1e-4}


def _problem(model, substrate="ideal", B=16, seed=0):
    task = neurozo.tasks.get("digits")
    sub = neurozo.substrates.get(substrate) if isinstance(substrate, str) else substrate
    prob = Problem(model, sub, task.loss, np.random.default_rng(seed))
    prob.set_batch(*task.batch(np.random.default_rng(seed), B))
    return prob


def test_run_learns_digits_and_logs_diagnostics():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = neurozo.run(task="digits", model=FAST, learner={"name": "ep", "estimator": "symmetric", "beta": 0.1,
                                                             "lr": 0.05, "nonconverged": "skip"},
                          budget=240, seed=0, batch_size=32, eval_every=60)
    h = res.history
    assert res.status == "finished"
    for col in ("residual_free", "nonconverged", "residual_nudged", "nonconverged_nudged", "skipped", "cos_d0",
                "cos_d1", "cos_grad", "grad_norm_ratio", "rbp_residual"):
        assert col in h and np.isfinite(h[col].iloc[-1]), col
    assert h["evaluations"].iloc[-1] == 240 and h["step"].iloc[-1] == 80     # 3 evaluations a step
    # 80 steps of symmetric EP on a small tied net: far above chance (10%), aligned with RBP
    assert h["test_acc"].iloc[-1] > 0.25 and h["test_loss"].iloc[-1] < h["test_loss"].iloc[0] - 0.2
    assert h["cos_grad"].iloc[-1] > 0.9


def test_same_seed_same_history():
    kw = dict(task="digits", model=SMALL, learner={"name": "ep", "estimator": "holomorphic", "N": 3},
              budget=32, seed=3, batch_size=16, eval_every=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a, b = neurozo.run(**kw).history, neurozo.run(**kw).history
    a, b = a.drop(columns="wall_time"), b.drop(columns="wall_time")
    assert a.equals(b)


@pytest.mark.parametrize("learner, evals", [
    ({"estimator": "one_sided"}, 2), ({"estimator": "symmetric"}, 3), ({"estimator": "holomorphic", "N": 4}, 5),
    ({"estimator": "holomorphic", "N": 5}, 6), ({"estimator": "continuous", "periods": 2, "T2": 8}, 5),
    ({"estimator": "rbp"}, 2), ({"estimator": "rbp", "rbp_examples": "nudged", "nonconverged": "skip"}, 6),
])
def test_evaluations_per_step(learner, evals):
    model = EnergyNet(**{k: v for k, v in SMALL.items() if k != "name"})
    ep = EP(**learner)
    prob = _problem(model)
    state = ep.init(model.init(np.random.default_rng(0)), 0)
    state, loss, info = ep.step(state, prob)
    assert ep.evals_per_step == evals == prob.evaluations == prob.substrate.costs.counts["evaluations"]
    assert loss.shape == (1,) and np.isfinite(loss[0]) and state.step == 1


def test_rbp_estimator_follows_the_exact_gradient():
    # one SGD step (no momentum) along RBP's gradient lowers the batch loss at the fixed point
    model = EnergyNet(**{k: v for k, v in SMALL.items() if k != "name"})
    ep = EP(estimator="rbp", lr=0.1, momentum=0.0)
    prob = _problem(model, neurozo.substrates.get("ideal", dtype="float64"), B=64)
    state = ep.init(model.init(np.random.default_rng(0)), 0)
    s1, l0, _ = ep.step(state, prob)
    _, l1, _ = ep.step(s1, prob)
    assert l1[0] < l0[0]


def test_nonconvergence_modes():
    model = EnergyNet(sizes=[64, 24, 16, 10], T1=1, tol=1e-6)
    th = model.init(np.random.default_rng(0))
    prob = _problem(model)
    _, _, info = EP(estimator="symmetric", beta=0.1).step(EP().init(th, 0), prob)
    assert info["nonconverged"] == 1.0 and info["residual_free"] > 1e-6
    with pytest.raises(RuntimeError, match="did not converge within T1=1"):
        EP(estimator="symmetric", beta=0.1, nonconverged="raise").step(EP().init(th, 0), prob)
    ep = EP(estimator="symmetric", beta=0.1, nonconverged="skip", momentum=0.0)
    s, _, info = ep.step(ep.init(th, 0), prob)
    assert info["skipped"] == 1.0
    np.testing.assert_array_equal(s.mean, th)        # every example skipped: no update


def test_untied_logs_symmetry_and_homeostasis():
    model = EnergyNet(sizes=[64, 24, 16, 10], tied=False, alpha=90.0, T1=60, tol=1e-4)
    prob = _problem(model)
    ep = EP(estimator="symmetric", beta=0.1, homeostasis=1.0)
    _, _, info = ep.step(ep.init(model.init(np.random.default_rng(0)), 0), prob)
    assert 0.3 < info["symmetry"] < 0.7 and info["homeo_loss"] > 0


def test_on_pcm_programming_noise_breaks_tied_symmetry():
    # tied θ, but forward and feedback are separate PCM conductances: the device's W_rec is
    # not symmetric, and every relaxation read is noisy (reported as a residual above tol)
    model = EnergyNet(sizes=[64, 24, 16, 10], T1=30, tol=1e-4)
    prob = _problem(model, "pcm")
    ep = EP(estimator="holomorphic", beta=0.5, N=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        state, loss, info = ep.step(ep.init(model.init(np.random.default_rng(0)), 0), prob)
    assert np.isfinite(loss[0]) and np.all(np.isfinite(state.mean))
    assert 0.8 < info["symmetry_device"] < 0.999
    assert info["nonconverged"] > 0 and info["residual_free"] > 1e-4
    assert prob.substrate.costs.counts["writes"] > 0 and info["cos_grad"] > 0.5


def test_ep_needs_an_energy_model():
    prob = _problem(neurozo.models.get("mlp", sizes=[64, 10, 10]))
    with pytest.raises(ValueError, match="^model="):
        EP().step(EP().init(np.zeros(10), 0), prob)


def test_complex_estimators_need_a_holomorphic_activation():
    model = EnergyNet(sizes=[64, 24, 16, 10], activation="hard_sigmoid")
    prob = _problem(model)
    th = model.init(np.random.default_rng(0))
    with pytest.raises(ValueError, match="^model.activation="):
        EP(estimator="holomorphic", N=4).step(EP().init(th, 0), prob)
    EP(estimator="holomorphic", N=2, beta=0.1).step(EP().init(th, 0), prob)   # real points only: fine


@pytest.mark.parametrize("kw, name", [
    ({"T2": 0}, "T2"), ({"N": 0}, "N"), ({"beta": 0.0}, "beta"), ({"estimator": "symmetric", "beta": 0.0}, "beta"),
    ({"estimator": "one_sided", "beta": 0.0}, "beta"), ({"estimator": "continuous", "beta": 0.0}, "beta"),
    ({"homeostasis": -0.5}, "homeostasis"), ({"estimator": "two_sided"}, "estimator"), ({"periods": 0}, "periods"),
    ({"lr": 0.0}, "lr"), ({"momentum": 1.0}, "momentum"), ({"nonconverged": "ignore"}, "nonconverged"),
    ({"homeostasis_samples": 0}, "homeostasis_samples"), ({"homeostasis_probes": "qmc"}, "homeostasis_probes"),
    ({"align_every": -1}, "align_every"), ({"rbp_examples": "all"}, "rbp_examples"),
    ({"estimator": "rbp", "rbp_examples": "nudged"}, "rbp_examples"),           # needs nonconverged="skip"
    ({"estimator": "rbp", "rbp_examples": "nudged", "nonconverged": "skip", "beta": 0.0}, "beta"),
    ({"recurrent_lr_scale": 0.0}, "recurrent_lr_scale"), ({"recurrent_lr_scale": float("inf")}, "recurrent_lr_scale"),
])
def test_bad_learner_parameters(kw, name):
    with pytest.raises(ValueError, match=rf"^{name}="):
        EP(**kw)
    with pytest.raises(ValueError, match=rf"{name}="):
        neurozo.build(task="digits", model=SMALL, learner={"name": "ep", **kw}, budget=100)


def test_rbp_ignores_beta():
    assert EP(estimator="rbp", beta=0.0).evals_per_step == 2


def test_rbp_on_heps_examples_drops_what_hep_drops():
    # BP with rbp_examples="nudged" learns from exactly the examples symmetric hEP (same β, N, T2) keeps
    model = EnergyNet(**{k: v for k, v in SMALL.items() if k != "name"})
    th = model.init(np.random.default_rng(0))
    kw = dict(beta=0.2, N=4, nonconverged="skip", momentum=0.0)

    def one(T2, **lkw):
        ep = EP(T2=T2, **kw, **lkw)
        s, _, info = ep.step(ep.init(th, 0), _problem(model, B=32))
        return s.mean, info

    for T2 in (3, 5):                                  # nudged phases cut short: some examples do not settle
        _, hep = one(T2, estimator="holomorphic")
        _, bp = one(T2, estimator="rbp")
        _, bp_hep = one(T2, estimator="rbp", rbp_examples="nudged")
        assert bp_hep["skipped"] == hep["skipped"] > bp["skipped"]
        assert bp_hep["nonconverged_nudged"] == hep["nonconverged_nudged"]
    # when every nudged phase settles it is plain BP, update for update
    th_bp, bp = one(200, estimator="rbp")
    th_bp_hep, bp_hep = one(200, estimator="rbp", rbp_examples="nudged")
    assert bp_hep["nonconverged_nudged"] == 0.0 and bp_hep["skipped"] == bp["skipped"]
    np.testing.assert_array_equal(th_bp_hep, th_bp)


def test_rbp_examples_keeps_the_keys_of_stored_runs():
    cfg = dict(task="digits", model=SMALL, budget=100)
    plain = neurozo.build(learner={"name": "ep", "estimator": "rbp", "nonconverged": "skip"}, **cfg)
    nudged = neurozo.build(learner={"name": "ep", "estimator": "rbp", "nonconverged": "skip",
                                    "rbp_examples": "nudged"}, **cfg)
    assert "rbp_examples" not in plain.config["learner"] and nudged.config["learner"]["rbp_examples"] == "nudged"
    assert plain.key != nudged.key


def _untied_copy(tied, th):
    """The untied twin of a tied network: same θ, B_k = W_{k+1}ᵀ."""
    spec = {k: v for k, v in SMALL.items() if k != "name"}
    untied = EnergyNet(**spec, tied=False)
    thu = np.zeros(untied.n_params)
    for name in tied.views:
        untied.view(thu, name)[...] = tied.view(th, name)
    for k in range(untied.L - 1):
        untied.view(thu, f"B{k}")[...] = tied.view(th, f"W{k + 1}").T
    return untied, thu


def test_recurrent_lr_scale_2_moves_an_untied_nets_symmetric_part_as_the_tied_net_moves():
    tied = EnergyNet(**{k: v for k, v in SMALL.items() if k != "name"})
    th = tied.init(np.random.default_rng(1))
    untied, thu = _untied_copy(tied, th)
    kw = dict(estimator="symmetric", beta=0.1, T2=200, momentum=0.0, lr=0.05)
    # tolerances: rounding only (two relaxation code paths; Δθ read back as θ' − θ)

    def delta(model, theta, **lkw):
        ep = EP(**kw, **lkw)
        s, _, _ = ep.step(ep.init(theta, 0), _problem(model, B=32))
        return s.mean - theta

    dt = delta(tied, th)
    for scale, share in ((2.0, 1.0), (1.0, 0.5)):
        du = delta(untied, thu, recurrent_lr_scale=scale)
        for k in range(1, tied.L):       # S = (W_k + B_{k-1}ᵀ)/2 moves by share × the tied update
            S = (untied.view(du, f"W{k}") + untied.view(du, f"B{k - 1}").T) / 2
            np.testing.assert_allclose(S, share * tied.view(dt, f"W{k}"), rtol=1e-6, atol=1e-10)
            assert np.abs(tied.view(dt, f"W{k}")).max() > 1e-4
        for name in ("W0", "b0", "b1", "b2", "Wout", "bout"):    # the rest is not scaled
            np.testing.assert_allclose(untied.view(du, name), tied.view(dt, name), rtol=1e-6, atol=1e-10)
    # tied: the shared matrices are scaled too
    dt2 = delta(tied, th, recurrent_lr_scale=2.0)
    np.testing.assert_allclose(tied.view(dt2, "W1"), 2 * tied.view(dt, "W1"), rtol=1e-9, atol=1e-15)
    np.testing.assert_array_equal(tied.view(dt2, "W0"), tied.view(dt, "W0"))


def test_recurrent_lr_scale_leaves_the_homeostasis_term_alone():
    tied = EnergyNet(**{k: v for k, v in SMALL.items() if k != "name"})
    untied = EnergyNet(**{k: v for k, v in SMALL.items() if k != "name"}, tied=False, alpha=90.0)
    th = untied.init(np.random.default_rng(2))
    kw = dict(estimator="symmetric", beta=0.1, T2=200, momentum=0.0, lr=0.05)

    def delta(**lkw):
        ep = EP(**kw, **lkw)
        s, _, _ = ep.step(ep.init(th, 0), _problem(untied, B=32))
        return s.mean - th

    ep_only, ep_homeo = delta(), delta(homeostasis=5.0)
    scaled = delta(homeostasis=5.0, recurrent_lr_scale=2.0)
    mask = untied.recurrent_mask(2.0) == 2.0
    assert mask.sum() == 2 * 16 * 24 + 2 * 10 * 16 and tied.recurrent_mask(2.0).sum() > 0
    # recurrent blocks: 2·(EP) + homeostasis = (EP + homeostasis) + EP; elsewhere unchanged
    np.testing.assert_allclose(scaled[mask], (ep_homeo + ep_only)[mask], rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(scaled[~mask], ep_homeo[~mask])
    assert np.abs((ep_homeo - ep_only)[mask]).max() > 1e-6      # homeostasis did act


def test_recurrent_lr_scale_keeps_the_keys_of_stored_runs():
    cfg = dict(task="digits", model=SMALL, budget=100)
    plain = neurozo.build(learner={"name": "ep"}, **cfg)
    scaled = neurozo.build(learner={"name": "ep", "recurrent_lr_scale": 2.0}, **cfg)
    assert "recurrent_lr_scale" not in plain.config["learner"] and plain.key != scaled.key
