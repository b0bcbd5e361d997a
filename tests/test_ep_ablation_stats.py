"""The gap-recovery statistic of experiments/ep_homeostasis.py: exact on noiseless seeds, and its
paired bootstrap interval covers the true recovery at about the nominal rate."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_p = Path(__file__).resolve().parent.parent / "experiments" / "ep_homeostasis.py"
_spec = importlib.util.spec_from_file_location("ep_homeostasis_experiment", _p)
E = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(E)


def _final(sym, untied, homeo, seeds=None):
    seeds = range(len(sym)) if seeds is None else seeds
    return {k: pd.Series(v, index=list(seeds)) for k, v in (("sym", sym), ("untied", untied), ("homeo", homeo))}


def test_noiseless_recovery_is_exact():
    base = np.array([0.50, 0.55, 0.53, 0.52])
    b = E.recovery_bootstrap(_final(base + 0.04, base, base + 0.03), boot=2000)
    assert b["n"] == 4
    assert b["R"] == pytest.approx(0.75) and b["R_lo"] == pytest.approx(0.75) and b["R_hi"] == pytest.approx(0.75)
    assert b["p_goal"] == 0.0 and b["gap"] == pytest.approx(0.04)


def test_only_seeds_present_in_all_three_variants_are_used():
    f = _final([0.6, 0.6, 0.6], [0.5, 0.5, 0.5], [0.6, 0.6, 0.6])
    f["homeo"] = f["homeo"].iloc[:2]
    b = E.recovery_bootstrap(f, boot=500)
    assert b["n"] == 2 and b["R"] == pytest.approx(1.0)
    f["homeo"] = f["homeo"].iloc[:1]
    assert E.recovery_bootstrap(f)["n"] == 1 and "R" not in E.recovery_bootstrap(f)


def test_resamples_without_a_gap_count_against_the_goal():
    rng = np.random.default_rng(0)
    u = rng.normal(0.5, 0.01, 6)
    b = E.recovery_bootstrap(_final(u + rng.normal(0, 0.01, 6), u, u + 0.02), boot=4000)
    assert b["no_gap"] > 0.05          # the gap's sign is uncertain with a zero-mean difference
    assert b["p_goal"] <= 1 - b["no_gap"]


def test_bootstrap_interval_covers_the_true_recovery():
    """200 simulated 12-seed studies with true recovery 0.5 (gap 4 pp, seed sd 1.5 pp per run, a
    shared per-seed offset): the 95% percentile interval must cover 0.5 in ≥ 86% of them — nominal
    95% less ~4 points of the percentile method's known small-sample undercoverage, less 3 binomial
    standard errors (√(0.95·0.05/200) ≈ 1.5 points)."""
    rng = np.random.default_rng(1)
    n, trials, cover = 12, 200, 0
    for _ in range(trials):
        seed_off = rng.normal(0, 0.01, n)
        un = 0.54 + seed_off + rng.normal(0, 0.015, n)
        sy = 0.58 + seed_off + rng.normal(0, 0.015, n)
        ho = 0.56 + seed_off + rng.normal(0, 0.015, n)
        b = E.recovery_bootstrap(_final(sy, un, ho), boot=2000, seed=int(rng.integers(1 << 30)))
        cover += b["R_lo"] <= 0.5 <= b["R_hi"]
    assert cover / trials >= 0.86


def test_offline_mnist1d_copy_serves_the_same_data(tmp_path, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))        # the script prepends the repo and experiments/
    p = Path(__file__).resolve().parent.parent / "experiments" / "ep_homeostasis_seeds.py"
    spec = importlib.util.spec_from_file_location("ep_homeostasis_seeds", p)
    S = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(S)
    from neurozo.tasks.mnist1d import _make

    real = _make(42)
    S.main(["--save-mnist1d", str(tmp_path / "m.npz")])
    for name in ("mnist1d", "mnist1d.data"):
        monkeypatch.setitem(sys.modules, name, sys.modules.get(name))
    S._offline_mnist1d(str(tmp_path / "m.npz"))
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    d = make_dataset(args)
    for a, k in zip(real, ("x", "y", "x_test", "y_test")):
        np.testing.assert_array_equal(a, d[k])
    args.seed = 7
    with pytest.raises(ValueError, match="seed=7"):
        make_dataset(args)
    args.seed, args.num_samples = 42, 25_000       # never serves the paper-size copy under another size
    with pytest.raises(ValueError, match="num_samples=25000"):
        make_dataset(args)


def test_legacy_key_finds_runs_stored_before_the_probes_field():
    # a learner field added later is dropped from the key only at its run-preserving default
    import neurozo
    from neurozo.config import config_key

    sym = neurozo.build(**E.run_config("digits", "sym", 0, 0.05)).config
    orth = neurozo.build(**E.run_config("digits", "homeo5orth", 0, 0.05)).config
    assert sym["learner"]["homeostasis_probes"] == "gaussian"
    old = dict(sym, learner={k: v for k, v in sym["learner"].items() if k != "homeostasis_probes"})
    assert E.legacy_key(sym) == config_key(old, neurozo.__version__) != config_key(sym, neurozo.__version__)
    assert E.legacy_key(orth) == config_key(orth, neurozo.__version__)
    assert orth["learner"]["homeostasis_samples"] == 128 + 10     # "N": one probe per state variable


def test_bp_on_heps_examples_takes_the_nudge_plain_bp_ignores():
    # plain BP has no nudge (its runs are shared across --beta/--T2); BP on hEP's examples runs hEP's
    # nudged phases, so it takes them, and every variant gets the same number of training steps
    bp = E.run_config("mnist1d", "bp", 0, 1.0, beta=0.1, T2=30)
    bp_hep = E.run_config("mnist1d", "bp_hep", 0, 1.0, beta=0.1, T2=30)
    sym = E.run_config("mnist1d", "sym", 0, 1.0, beta=0.1, T2=30)
    assert (bp["learner"]["beta"], bp["learner"]["T2"]) == (E.HEP["beta"], E.HEP["T2"])
    assert (bp_hep["learner"]["beta"], bp_hep["learner"]["T2"]) == (0.1, 30) == (sym["learner"]["beta"],
                                                                              sym["learner"]["T2"])
    steps = E.TASKS["mnist1d"][1]
    assert (bp["budget"], bp_hep["budget"], sym["budget"]) == (2 * steps, 6 * steps, 5 * steps)


def _hist(task, variant, seed, evaluations, accs):
    n = len(accs)
    return pd.DataFrame({"task": task, "variant": variant, "seed": seed, "step": np.arange(n),
                         "evaluations": np.linspace(0, evaluations, n).astype(int), "test_acc": accs})


def test_prior_runs_are_taken_only_with_the_jobs_budget(tmp_path):
    budget = E.run_config("mnist1d", "sym", 0, 3.0, beta=0.1)["budget"]
    old = pd.concat([_hist("mnist1d", "sym", 0, budget, [0.1, 0.5, 0.6]),
                     _hist("mnist1d", "sym", 1, budget, [0.1, 0.4, 0.7]),
                     _hist("mnist1d", "untied", 0, budget // 3, [0.1, 0.3])])    # another --steps-scale
    path = tmp_path / "h.csv.gz"
    old.to_csv(path, index=False)
    job = lambda v, s, scale=3.0: ("mnist1d", v, s, scale, "STORE", None, 0.1, None, None)  # noqa: E731
    got = E.prior_runs([str(path)], [job("sym", 0), job("sym", 2), job("homeo5orth", 0)])
    assert set(got) == {("mnist1d", "sym", 0)} and list(got[("mnist1d", "sym", 0)]["test_acc"]) == [0.1, 0.5, 0.6]
    with pytest.raises(ValueError, match="untied seed 0 ran"):
        E.prior_runs([str(path)], [job("untied", 0)])
    assert E.prior_runs([], [job("sym", 0)]) == {}
    # a run carried by two files (one written with --history of the other) is taken once, from the first
    again = tmp_path / "h2.csv.gz"
    _hist("mnist1d", "sym", 0, budget, [0.1, 0.5, 0.9]).to_csv(again, index=False)
    got = E.prior_runs([str(again), str(path)], [job("sym", 0), job("sym", 1)])
    assert list(got[("mnist1d", "sym", 0)]["test_acc"]) == [0.1, 0.5, 0.9]
    assert list(got[("mnist1d", "sym", 1)]["test_acc"]) == [0.1, 0.4, 0.7]


def test_recovery_is_measured_from_each_variants_own_untied_baseline():
    summary = pd.DataFrame({"task": "mnist1d", "variant": ["sym", "untied", "homeo5orth", "untied_rec2",
                                                           "homeo5orth_rec2"],
                            "final_acc": [0.60, 0.54, 0.57, 0.56, 0.59]})
    d = E.gap_recovery(summary)["mnist1d"]
    assert d["gap"] == pytest.approx(0.06) and d["homeo5orth"] == pytest.approx(0.5)
    assert d["gap_untied_rec2"] == pytest.approx(0.04) and d["homeo5orth_rec2"] == pytest.approx(0.75)
    assert E.untied_base("homeo5orth_rec2") == "untied_rec2" and E.untied_base("homeo5s50") == "untied"


def test_recovery_of_any_variant_triple_is_reported_and_a_missing_gap_said():
    """--recovery SYM:UNTIED:HOMEO (the PCM variants have their own tied reference): the markdown line
    carries the exact R of noiseless seeds, and a triple whose 'symmetric' is worse says so."""
    summary = pd.DataFrame({"task": "mnist1d", "variant": ["pcm_sym_all", "pcm_untied_all", "pcm_homeo_all"],
                            "label": ["a", "b", "c"], "steps": 10, "final_acc": [0.45, 0.41, 0.44],
                            "final_ci": 0.01, "best_acc": 0.46, "cos_grad (2nd half)": np.nan,
                            "symmetry (end)": np.nan, "symmetry_device (end)": np.nan, "skipped": 0.0,
                            "energy_mJ": 1.0})
    f = _final([0.45, 0.46, 0.44], [0.41, 0.42, 0.40], [0.44, 0.45, 0.43])
    ok = E.recovery_bootstrap(f, boot=500)
    no = E.recovery_bootstrap(_final([0.40] * 3, [0.41] * 3, [0.42] * 3), boot=500)
    triples = {("mnist1d", "pcm_sym_all", "pcm_untied_all", "pcm_homeo_all"): ok,
               ("mnist1d", "pcm_sym", "pcm_untied", "pcm_homeo"): no}
    md = E.markdown(summary, {"mnist1d": {}}, "cmd", 1.0, triples=triples)     # no sym/untied/bp: no task line
    assert "recovery by pcm: untied hEP 90° + homeostasis, every example kept" in md
    assert "75% (95% paired bootstrap over 3 seeds: 75 … 75%" in md
    assert "pcm: tied hEP is not better than pcm: untied hEP 90° on average over 3 seeds" in md
    assert "- mnist1d: ." not in md


def test_paired_difference_is_exact_without_spread_and_uses_common_seeds():
    a = pd.Series([0.60, 0.55, 0.58, 0.9], index=[0, 1, 2, 7])
    b = pd.Series([0.58, 0.53, 0.56], index=[0, 1, 2])
    d = E.paired_difference(a, b, boot=500)
    assert d["n"] == 3 and d["diff"] == pytest.approx(0.02)
    assert d["lo"] == pytest.approx(0.02) and d["hi"] == pytest.approx(0.02)
    rng = np.random.default_rng(0)
    noisy = E.paired_difference(pd.Series(rng.normal(0.01, 0.01, 40)), pd.Series(np.zeros(40)))
    assert noisy["lo"] < noisy["diff"] < noisy["hi"] and noisy["hi"] - noisy["lo"] < 4 * 1.96 * 0.01 / np.sqrt(40)


def test_contrast_is_the_exact_difference_of_differences_over_common_seeds():
    """--contrast A:B:C:D: (A − B) − (C − D) per seed, only seeds that ran all four, exact without spread;
    the markdown line names the four variants and carries the figure."""
    rows = []
    for s in (0, 1, 2, 3):
        for v, acc in (("pcm_homeo_rn", 0.45), ("pcm_untied_rn", 0.46), ("pcm_homeo_all", 0.44),
                       ("pcm_untied_all", 0.42)):
            if s == 3 and v == "pcm_homeo_all":
                continue                              # seed 3 lacks one variant: left out
            rows += [{"task": "mnist1d", "variant": v, "seed": s, "step": t, "evaluations": t,
                      "test_acc": acc + 0.01 * s} for t in (0, 10, 20, 30)]
    hist = pd.DataFrame(rows)
    q = ("pcm_homeo_rn", "pcm_untied_rn", "pcm_homeo_all", "pcm_untied_all")
    d = E.contrast_of(hist, "mnist1d", *q, boot=500)
    assert d["n"] == 3 and d["diff"] == pytest.approx(-0.03)
    assert d["lo"] == pytest.approx(-0.03) and d["hi"] == pytest.approx(-0.03)
    summary = pd.DataFrame(columns=["task", "label", "steps", "final_acc", "final_ci", "best_acc",
                                    "cos_grad (2nd half)", "symmetry (end)", "symmetry_device (end)", "skipped",
                                    "energy_mJ"])
    md = E.markdown(summary, {}, "cmd", 1.0, contrasts={("mnist1d", *q): d})
    assert ("(pcm: untied hEP 90° + homeostasis, read-noise convergence test − pcm: untied hEP 90°, read-noise "
            "convergence test) − (") in md
    assert "= -3.00 pp (95% paired bootstrap over 3 seeds: -3.00 … -3.00)" in md


def test_contrast_and_paired_arguments_are_checked_before_any_run(capsys):
    for bad in (["--contrast", "pcm_homeo_rn:pcm_untied_rn:pcm_homeo_all"],
                ["--contrast", "pcm_homeo_rn:pcm_untied_rn:pcm_homeo_all:nope"]):
        with pytest.raises(SystemExit):
            E.main(["--tasks", "mnist1d", "--variants", "pcm_homeo_rn", "pcm_untied_rn", "pcm_homeo_all",
                    "--store", "/nonexistent/store"] + bad)
        assert "--contrast" in capsys.readouterr().err


def _history(r_of_step, seeds=(0, 1, 2, 3), steps=(0, 150, 300, 450, 600, 750), gap=0.04, task="mnist1d"):
    """Noiseless histories: untied acc a_s(t), symmetric a_s(t) + gap, homeostasis a_s(t) + r(t)·gap."""
    rows = []
    for s in seeds:
        for t in steps:
            base = 0.3 + 0.0004 * t + 0.01 * s
            for v, acc in (("untied", base), ("sym", base + gap), ("homeo5orth", base + r_of_step(t) * gap)):
                rows.append({"task": task, "variant": v, "seed": s, "step": t, "evaluations": t // 150 + 1,
                             "test_acc": acc})
    return pd.DataFrame(rows)


def test_recovery_over_training_follows_a_known_recovery_and_ends_at_the_final_one():
    r = {0: 0.0, 150: 0.2, 300: 0.4, 450: 0.6, 600: 0.8, 750: 1.0}
    hist = _history(r.get)
    c = E.recovery_over_training(hist, "mnist1d", "homeo5orth", boot=500)
    assert list(c["step"]) == [300, 450, 600, 750]                 # a window of 3 evaluations needs 3 logged steps
    for _, row in c.iterrows():                                      # the mean of r over each window, exactly
        want = np.mean([r[t] for t in (row["step"] - 300, row["step"] - 150, row["step"])])
        assert row["R"] == pytest.approx(want) and row["R_lo"] == pytest.approx(want)
        assert row["n"] == 4 and row["gap"] == pytest.approx(0.04)
        assert row["deficit"] == pytest.approx((1 - want) * 0.04) and row["deficit_hi"] == pytest.approx(row["deficit"])
    final = E.recovery_bootstrap({"sym": E.per_seed_final(hist, "mnist1d", "sym"),
                                  "untied": E.per_seed_final(hist, "mnist1d", "untied"),
                                  "homeo": E.per_seed_final(hist, "mnist1d", "homeo5orth")}, boot=500)
    assert c.iloc[-1]["R"] == pytest.approx(final["R"])


def test_recovery_over_training_of_a_loss_flips_the_sign_and_keeps_nats():
    hist = _history(lambda t: 0.25)
    hist["train_loss"] = 2.0 - 2 * hist["test_acc"]      # lower is better: gap 0.08 nats, homeostasis a quarter of it
    hist.loc[hist["variant"] == "homeo5orth", "train_loss"] = (
        2.0 - 2 * (hist["test_acc"] - 0.25 * 0.04) - 0.75 * 0.08)          # recovers 75 % of the loss gap
    c = E.recovery_over_training(hist, "mnist1d", "homeo5orth", boot=200, metric="train_loss")
    assert c["R"].to_numpy() == pytest.approx(np.full(len(c), 0.75))
    assert c["gap"].to_numpy() == pytest.approx(np.full(len(c), 0.08))      # untied − symmetric loss, > 0
    assert c["deficit"].to_numpy() == pytest.approx(np.full(len(c), 0.02))  # homeostasis − symmetric loss
    a = E.recovery_over_training(hist, "mnist1d", "homeo5orth", boot=200)   # accuracy unchanged: 25 %
    assert a["R"].to_numpy() == pytest.approx(np.full(len(a), 0.25))
    with pytest.raises(ValueError, match="metric='energy'"):
        E.recovery_over_training(hist, "mnist1d", "homeo5orth", metric="energy")


def test_recovery_over_training_uses_the_variants_own_baseline_and_common_seeds():
    hist = _history(lambda t: 0.5)
    hist = hist[~((hist["variant"] == "homeo5orth") & (hist["seed"] == 3))]          # one homeostasis run missing
    rec2 = hist[hist["variant"].isin(["untied", "homeo5orth"])].copy()
    rec2["variant"] = rec2["variant"].map({"untied": "untied_rec2", "homeo5orth": "homeo5orth_rec2"})
    rec2.loc[rec2["variant"] == "untied_rec2", "test_acc"] -= 0.04                   # its own baseline, 4 pp lower
    c = E.recovery_over_training(pd.concat([hist, rec2]), "mnist1d", "homeo5orth_rec2", boot=200)
    assert (c["n"] == 3).all()
    # from untied_rec2: homeo sits at base + 0.02, untied_rec2 at base − 0.04, sym at base + 0.04
    assert c["R"].to_numpy() == pytest.approx(np.full(len(c), 0.06 / 0.08))


def _growing_gap_history():
    """r(t) = t/750 and the symmetric runs' lead growing by 4e-5 per step: gap(t) = 0.04 + 4e-5·t,
    deficit(t) = gap(t) − r(t)·0.04; seed 3 lacks its homeostasis run."""
    hist = _history(lambda t: t / 750)
    sym = hist["variant"] == "sym"
    hist.loc[sym, "test_acc"] += 4e-5 * hist.loc[sym, "step"]
    return hist[~((hist["variant"] == "homeo5orth") & (hist["seed"] == 3))]


def test_change_between_is_the_exact_paired_change_of_the_window_means():
    ch = E.change_between(_growing_gap_history(), "mnist1d", "homeo5orth", 300, 750, boot=200)
    assert ch["n"] == 3 and list(ch["seeds"].index) == [0, 1, 2]
    # windows: steps 0, 150, 300 (means: t 150, r 0.2) and 450, 600, 750 (t 600, r 0.8)
    want = {"gap": 0.064 - 0.046, "deficit": (0.064 - 0.032) - (0.046 - 0.008), "untied": 0.0004 * 450,
            "sym": 0.0004 * 450 + 4e-5 * 450, "homeo": 0.0004 * 450 + 0.04 * 0.6}
    for k, v in want.items():
        c = ch[k]
        assert c["n"] == 3 and c["diff"] == pytest.approx(v)
        assert c["lo"] == pytest.approx(v) and c["hi"] == pytest.approx(v)
    assert ch["R_a"]["R"] == pytest.approx(0.008 / 0.046) and ch["R_b"]["R"] == pytest.approx(0.032 / 0.064)
    assert ch["seeds"]["gap_750"].to_numpy() == pytest.approx(np.full(3, 0.064))


def test_change_between_names_a_step_it_cannot_use():
    hist = _growing_gap_history()
    for a, b, msg in ((300, 700, "step=700: not a step all three runs logged"),
                      (150, 750, "step=150: not a step all three runs logged with 2 logged steps before"),
                      (750, 300, r"steps \(750, 300\): need two integer steps with step_a < step_b"),
                      (300.0, 750, "need two integer steps")):
        with pytest.raises(ValueError, match=msg):
            E.change_between(hist, "mnist1d", "homeo5orth", a, b)
    with pytest.raises(ValueError, match="metric='energy'"):
        E.change_between(hist, "mnist1d", "homeo5orth", 300, 750, metric="energy")


def test_recovery_curves_script_prints_the_change_between_two_steps(tmp_path, capsys):
    p = tmp_path / "h.csv.gz"
    _growing_gap_history().to_csv(p, index=False)
    C.main(["--out", str(tmp_path / "rec"), "--boot", "200", "--between", "300", "750",
            "--curve", f"grow={p}:mnist1d:homeo5orth"])
    out = capsys.readouterr().out
    assert "grow: test_acc from step 300 to step 750, 3 seeds" in out
    assert "| gap | 4.60 | 6.40 | +1.80 pp (+1.80 … +1.80) |" in out
    assert "| deficit | 3.80 | 3.20 | -0.60 pp (-0.60 … -0.60) |" in out
    assert "R at step 750: 50 %" in out
    h = _growing_gap_history()
    h["train_loss"] = 2.0 - h["test_acc"]                       # a loss: the variants' rows show it unsigned
    h.to_csv(p, index=False)
    C.main(["--out", str(tmp_path / "rec"), "--boot", "200", "--between", "300", "750", "--metric", "train_loss",
            "--curve", f"grow={p}:mnist1d:homeo5orth"])
    out = capsys.readouterr().out
    assert "| untied | 1.6300 | 1.4500 | -0.1800 nats (-0.1800 … -0.1800) |" in out
    assert "| gap | 0.0460 | 0.0640 | +0.0180 nats (+0.0180 … +0.0180) |" in out


def test_projected_recovery_adds_the_longer_runs_changes_to_the_population():
    """Population: 6 seeds ending at step 300 with gap 0.04 and deficit 0.02 on every seed; longer runs:
    the growing-gap history (ΔG = +0.018, ΔD = −0.006 from 300 to 750). Without spread the projection
    and its interval are exact."""
    pop = _history(lambda t: 0.5, seeds=range(6), steps=(0, 150, 300))
    pr = E.projected_recovery(pop, _growing_gap_history(), "mnist1d", "homeo5orth", 300, 750, boot=300)
    assert (pr["n_pop"], pr["n_long"]) == (6, 3)
    assert pr["G"] == pytest.approx(0.04) and pr["D"] == pytest.approx(0.02)
    assert pr["dG"] == pytest.approx(0.018) and pr["dD"] == pytest.approx(-0.006)
    want = (0.058 - 0.014) / 0.058
    for k in ("R", "R_lo", "R_hi"):
        assert pr[k] == pytest.approx(want)
    assert pr["gap"] == pytest.approx(0.058) and pr["deficit"] == pytest.approx(0.014)
    assert pr["p_goal"] == 0.0 and pr["no_gap"] == 0.0                     # 76 % < 80 % in every resample
    # no spread at step_a in the longer runs: the regression estimator falls back to slope 1, the difference one
    assert pr["slope_gap"] == 1.0 and pr["slope_deficit"] == 1.0
    for k in ("reg_R", "reg_R_lo", "reg_R_hi"):
        assert pr[k] == pytest.approx(want)
    assert pr["reg_gap"] == pytest.approx(0.058) and pr["reg_deficit"] == pytest.approx(0.014)
    assert pr["R_a"] == pytest.approx(0.5) and pr["R_lo_a"] == pytest.approx(0.5) and pr["p_goal_a"] == 0.0


def test_projected_recovery_takes_several_population_histories_each_with_its_own_windows():
    """Seeds 0–5 split over two histories give the same projection as one; a history logged every 100
    steps has its own window (100, 200, 300), so its value at 300 is not the other history's; a seed in
    two histories is refused."""
    long = _growing_gap_history()
    pop = _history(lambda t: 0.5, seeds=range(6), steps=(0, 150, 300))
    one = E.projected_recovery(pop, long, "mnist1d", "homeo5orth", 300, 750, boot=300)
    two = E.projected_recovery([pop[pop["seed"] < 2], pop[pop["seed"] >= 2]], long, "mnist1d", "homeo5orth",
                               300, 750, boot=300)
    assert two["n_pop"] == 6 and two["R"] == pytest.approx(one["R"]) and two["D"] == pytest.approx(one["D"])
    fine = _history(lambda t: t / 300, seeds=(6, 7), steps=(0, 100, 200, 300))   # r over 100, 200, 300: mean 2/3
    pr = E.projected_recovery([pop, fine], long, "mnist1d", "homeo5orth", 300, 750, boot=300)
    assert pr["n_pop"] == 8
    assert pr["D"] == pytest.approx((6 * 0.02 + 2 * 0.04 / 3) / 8)
    with pytest.raises(ValueError, match=r"pop: the population histories share seeds \[1\]"):
        E.projected_recovery([pop, pop[pop["seed"] == 1]], long, "mnist1d", "homeo5orth", 300, 750)
    with pytest.raises(ValueError, match=r"step_a=300: not a step all three population runs \(history 1\)"):
        E.projected_recovery([pop, fine[fine["step"] < 300]], long, "mnist1d", "homeo5orth", 300, 750)


def test_projected_recovery_interval_and_regression_warning():
    """Seeds that start with a larger deficit lose more of it (ΔD = −deficit at 300 + const): the
    correlation is −1; with spread in the population the interval brackets the point estimate."""
    long = _growing_gap_history()
    early = (long["variant"] == "homeo5orth") & (long["step"] <= 300)
    long.loc[early, "test_acc"] += 0.004 * long.loc[early, "seed"]            # deficit at 300 smaller by 0.004·s
    pop = _history(lambda t: 0.5, seeds=range(8), steps=(0, 150, 300))
    h = pop["variant"] == "homeo5orth"
    pop.loc[h, "test_acc"] += 0.003 * (pop.loc[h, "seed"] - 3.5)                 # deficit varies by seed, mean 0.02
    pr = E.projected_recovery(pop, long, "mnist1d", "homeo5orth", 300, 750, boot=2000)
    assert pr["corr_deficit"] == pytest.approx(-1.0, abs=1e-9)
    assert pr["D"] == pytest.approx(0.02)
    assert pr["dD"] == pytest.approx(-0.006 + 0.004 * 1.0)                     # seeds 0, 1, 2: mean s = 1
    assert pr["R_lo"] < pr["R"] < pr["R_hi"]
    assert pr["deficit_lo"] < pr["deficit"] < pr["deficit_hi"]
    # the deficit at 750 is 0.032 on every seed, whatever it was at 300: slope 0, so the regression
    # estimator gives 0.032 and ignores the population's deficit at 300; the gap has no spread at 300 (slope 1)
    assert pr["slope_deficit"] == pytest.approx(0.0, abs=1e-9) and pr["reg_deficit"] == pytest.approx(0.032)
    assert pr["slope_gap"] == 1.0 and pr["reg_gap"] == pytest.approx(pr["gap"])


def test_looks_adjusted_bounds_are_the_bonferroni_percentiles_and_give_the_verdict():
    """Resampled recoveries 0.000, 0.001, …, 0.999 (gap 1): the 95 % interval is the 2.5th and 97.5th
    percentiles, the bounds over 5 looks the 0.5th and 99.5th; the verdict on a goal follows them."""
    g, r = np.ones(1000), np.arange(1000) / 1000
    one = E._ratio_interval(g, r, 0.8, looks=1)
    assert (one["R_lo_looks"], one["R_hi_looks"]) == (one["R_lo"], one["R_hi"]) == (0.024, 0.975)
    five = E._ratio_interval(g, r, 0.8, looks=5)
    assert (five["R_lo_looks"], five["R_hi_looks"]) == (0.004, 0.995)
    assert five["verdict"] == "undecided"
    assert E._ratio_interval(g, r, 0.003, looks=5)["verdict"] == "established"   # 0.004 ≥ 0.003
    assert E._ratio_interval(g, r, 0.996, looks=5)["verdict"] == "refuted"       # 0.995 < 0.996
    assert E._ratio_interval(g, r, 0.004, looks=1)["verdict"] == "established"   # 0.024 ≥ 0.004 with one look …
    assert E._ratio_interval(g, r, 0.005, looks=5)["verdict"] == "undecided"     # … but not 0.004 ≥ 0.005 with five
    assert "verdict" not in E._ratio_interval(g, r, 0.8)


def test_projected_recovery_widens_its_bounds_with_the_looks_and_checks_them():
    long = _growing_gap_history()
    early = (long["variant"] == "homeo5orth") & (long["step"] <= 300)
    long.loc[early, "test_acc"] += 0.004 * long.loc[early, "seed"]
    pop = _history(lambda t: 0.5, seeds=range(8), steps=(0, 150, 300))
    h = pop["variant"] == "homeo5orth"
    pop.loc[h, "test_acc"] += 0.003 * (pop.loc[h, "seed"] - 3.5)
    one = E.projected_recovery(pop, long, "mnist1d", "homeo5orth", 300, 750, boot=2000)
    five = E.projected_recovery(pop, long, "mnist1d", "homeo5orth", 300, 750, boot=2000, looks=5)
    assert (one["R_lo_looks"], one["R_hi_looks"]) == (one["R_lo"], one["R_hi"])
    assert five["R_lo"] == one["R_lo"] and five["R"] == one["R"]           # same resamples, same 95 % interval
    assert five["R_lo_looks"] < five["R_lo"] and five["R_hi_looks"] > five["R_hi"]
    assert five["reg_R_lo_looks"] <= five["reg_R_lo"] and five["reg_R_hi_looks"] >= five["reg_R_hi"]
    assert five["verdict"] in ("established", "refuted", "undecided")
    with pytest.raises(ValueError, match=r"looks=0: the number of looks must be an integer ≥ 1"):
        E.projected_recovery(pop, long, "mnist1d", "homeo5orth", 300, 750, looks=0)
    with pytest.raises(ValueError, match=r"boot=1000: with looks=5 .* needs boot ≥ 2000"):
        E.projected_recovery(pop, long, "mnist1d", "homeo5orth", 300, 750, boot=1000, looks=5)


def test_projected_recovery_names_what_it_cannot_use():
    pop = _history(lambda t: 0.5, seeds=range(6), steps=(0, 150, 300))
    with pytest.raises(ValueError, match="step_a=150: not a step all three population runs logged"):
        E.projected_recovery(pop, _growing_gap_history(), "mnist1d", "homeo5orth", 150, 750)
    with pytest.raises(ValueError, match="need ≥ 2 seeds in each sample: population 1"):
        E.projected_recovery(pop[pop["seed"] == 0], _growing_gap_history(), "mnist1d", "homeo5orth", 300, 750)


def test_recovery_curves_script_prints_the_projection(tmp_path, capsys):
    p, q = tmp_path / "long.csv.gz", tmp_path / "pop.csv.gz"
    _growing_gap_history().to_csv(p, index=False)
    _history(lambda t: 0.5, seeds=range(6), steps=(0, 150, 300)).to_csv(q, index=False)
    C.main(["--out", str(tmp_path / "rec"), "--boot", "200", "--between", "300", "750", "--project", str(q),
            "--curve", f"grow={p}:mnist1d:homeo5orth"])
    out = capsys.readouterr().out
    assert ("grow: test_acc recovered by the 6 seeds at step 300: R = 50 % (50 … 50), P(R ≥ 80 %) = 0.00; "
            "projected to step 750 from the changes of 3 seeds: "
            "gap 4.00 +1.80 = 5.80 pp (5.80 … 5.80), deficit 2.00 -0.60 = 1.40 pp") in out
    assert "R = 76 % (76 … 76), P(R ≥ 80 %) = 0.00" in out
    assert "regression estimator (slope of step 750 on step 300: gap 1.00, deficit 1.00): gap 5.80 pp" in out
    r = tmp_path / "pop2.csv.gz"
    _history(lambda t: 0.0, seeds=(6, 7), steps=(0, 150, 300)).to_csv(r, index=False)   # deficit 0.04 on 2 seeds
    C.main(["--out", str(tmp_path / "rec"), "--boot", "200", "--between", "300", "750", "--project", str(q), str(r),
            "--curve", f"grow={p}:mnist1d:homeo5orth"])
    out = capsys.readouterr().out
    assert "recovered by the 8 seeds at step 300" in out and "looks" not in out
    C.main(["--out", str(tmp_path / "rec"), "--boot", "2000", "--between", "300", "750", "--project", str(q),
            "--looks", "5", "--curve", f"grow={p}:mnist1d:homeo5orth"])
    assert ("over 5 looks (one-sided 0.5 % each side): difference estimator 76 … 76 %, refuted; "
            "regression estimator 76 … 76 %, refuted") in capsys.readouterr().out
    for bad, msg in ((["--looks", "0", "--project", str(q), "--between", "300", "750"], "--looks 0"),
                     (["--looks", "3"], "--looks 3 needs --project")):
        with pytest.raises(SystemExit):
            C.main(["--out", str(tmp_path / "rec"), *bad, "--curve", f"grow={p}:mnist1d:homeo5orth"])
        assert msg in capsys.readouterr().err
    with pytest.raises(SystemExit):
        C.main(["--out", str(tmp_path / "rec"), "--project", str(q), "--curve", f"grow={p}:mnist1d:homeo5orth"])
    assert "--project" in capsys.readouterr().err


def test_prior_runs_check_the_run_key_where_the_history_carries_it(tmp_path):
    """A reused run of the right length but another configuration (here |β| 0.2 against 0.1) is
    refused when the history file carries the run's store key; the right key, or none (older
    files), is taken."""
    import neurozo

    job = lambda beta: ("digits", "sym", 0, 0.1, "STORE", None, beta, None, None)  # noqa: E731
    cfg = E.run_config(*job(0.1)[:4], beta=0.1)
    key = neurozo.build(**cfg).key
    other = neurozo.build(**E.run_config(*job(0.2)[:4], beta=0.2)).key
    assert key != other and cfg["budget"] == E.run_config(*job(0.2)[:4], beta=0.2)["budget"]
    h = _hist("digits", "sym", 0, cfg["budget"], [0.2, 0.6])
    for k, ok in ((key, True), (None, True), (other, False)):
        path = tmp_path / f"h{ok}{k}.csv.gz"
        h.assign(key=k).to_csv(path, index=False)
        if ok:
            assert set(E.prior_runs([str(path)], [job(0.1)])) == {("digits", "sym", 0)}
        else:
            with pytest.raises(ValueError, match=f"digits sym seed 0 is the run with key.*{other}.*{key}"):
                E.prior_runs([str(path)], [job(0.1)])


_pc = Path(__file__).resolve().parent.parent / "experiments" / "ep_recovery_curves.py"
_spec_c = importlib.util.spec_from_file_location("ep_recovery_curves_experiment", _pc)
C = importlib.util.module_from_spec(_spec_c)
_spec_c.loader.exec_module(C)


def test_recovery_curves_script_reads_several_histories_and_writes_one_table_and_figure(tmp_path):
    a, b = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    _history(lambda t: 0.5).to_csv(a, index=False)
    _history(lambda t: 0.9, task="mnist1d25k", seeds=(0, 1, 2)).to_csv(b, index=False)
    out = tmp_path / "fig" / "rec"
    C.main(["--out", str(out), "--boot", "200", "--curve", f"half={a}:mnist1d:homeo5orth",
            "--curve", f"most, 25k={b}:mnist1d25k:homeo5orth"])
    t = pd.read_csv(str(out) + ".csv")
    assert set(t["setting"]) == {"half", "most, 25k"} and (out.parent / "rec.png").stat().st_size > 0
    for name, r, n in (("half", 0.5, 4), ("most, 25k", 0.9, 3)):
        c = t[t["setting"] == name]
        assert c["R"].to_numpy() == pytest.approx(np.full(len(c), r)) and (c["n"] == n).all()


def test_recovery_curves_script_names_a_malformed_or_missing_curve(tmp_path):
    for bad in ("no-equals-sign", "x=path-without-task", "x=p:mnist1d:untied", "=p:mnist1d:homeo5orth"):
        with pytest.raises(ValueError, match="--curve"):
            C.parse_curve(bad)
    assert C.parse_curve("n=C:/dir/h.csv.gz:mnist1d:homeo5orth") == ("n", "C:/dir/h.csv.gz", "mnist1d", "homeo5orth")
    assert C.parse_curve("λ = 5=d/h.csv.gz:mnist1d:homeo5orth") == ("λ = 5", "d/h.csv.gz", "mnist1d", "homeo5orth")
    p = tmp_path / "h.csv.gz"
    _history(lambda t: 0.5).to_csv(p, index=False)
    with pytest.raises(ValueError, match=r"lacks task 'mnist1d' variant\(s\) \['homeo5s50'\]"):
        C.curves_of([C.parse_curve(f"g={p}:mnist1d:homeo5s50")])
    with pytest.raises(ValueError, match=r"--boot=10: needs at least 100"):
        C.curves_of([C.parse_curve(f"h={p}:mnist1d:homeo5orth")], boot=10)


_lp = Path(__file__).resolve().parent.parent / "experiments" / "ep_loss_curves.py"
_lspec = importlib.util.spec_from_file_location("ep_loss_curves_experiment", _lp)
LC = importlib.util.module_from_spec(_lspec)
_lspec.loader.exec_module(LC)


def _loss_history():
    """Seeds 0–3 (seed 3 lacks 'homeo5orth'); losses known per (variant, seed, step)."""
    rows = []
    for s in range(4):
        for t in (0, 150, 300):
            for v, dl, sym in (("sym", 0.0, np.nan), ("homeo5orth", 0.1, 0.8 + 0.01 * s)):
                if v == "homeo5orth" and s == 3:
                    continue
                rows.append({"task": "mnist1d", "variant": v, "seed": s, "step": t, "evaluations": t // 150 + 1,
                             "symmetry": sym, "test_acc": 0.5 + 0.01 * s - dl / 10,
                             "train_loss": 1.0 - 0.001 * t + 0.05 * s + dl * s,
                             "test_loss": 1.5 - 0.001 * t + 0.05 * s + 2 * dl})
    return pd.DataFrame(rows)


def test_loss_curves_average_the_common_seeds_and_pair_differences_by_seed():
    c = LC.loss_curves(_loss_history(), "mnist1d", ["sym", "homeo5orth"])
    assert (c["n"] == 3).all() and list(c["variant"].unique()) == ["sym", "homeo5orth"]   # seed 3 dropped
    h = c[(c["variant"] == "homeo5orth") & (c["step"] == 150)].iloc[0]
    seeds = np.arange(3)
    tr = 1.0 - 0.15 + 0.05 * seeds + 0.1 * seeds
    assert h["train_loss"] == pytest.approx(tr.mean())
    assert h["train_loss_ci"] == pytest.approx(1.96 * tr.std(ddof=1) / np.sqrt(3))
    assert h["d_train_loss"] == pytest.approx(0.1) and h["d_train_loss_ci"] == pytest.approx(1.96 * 0.1 / np.sqrt(3))
    assert h["d_test_loss"] == pytest.approx(0.2) and h["d_test_loss_ci"] == pytest.approx(0.0, abs=1e-12)
    assert h["gen_gap"] == pytest.approx((1.35 + 0.05 * seeds + 0.2 - tr).mean())
    assert h["a_over_s"] == pytest.approx(np.mean((1 - (0.8 + 0.01 * seeds)) / (0.8 + 0.01 * seeds)))
    s = c[c["variant"] == "sym"]
    assert (s["d_test_loss"] == 0).all() and s["symmetry"].isna().all()
    f = LC.paired_finals(_loss_history(), "mnist1d", ["sym", "homeo5orth"], boot=200).set_index("column")
    assert (f["n"] == 3).all() and (f["variant"] == "homeo5orth").all()
    want = {"test_acc": -0.01, "train_loss": 0.1, "test_loss": 0.2, "gen_gap": 0.1}   # per seed: −0.01, 0.1·s, 0.2, 0.2 − 0.1·s
    for col, d in want.items():
        assert f.loc[col, "diff"] == pytest.approx(d)
    assert f.loc["test_loss", "lo"] == pytest.approx(0.2) and f.loc["train_loss", "lo"] < 0.1 < f.loc["train_loss", "hi"]


def test_loss_curves_script_writes_files_and_names_bad_input(tmp_path):
    p = tmp_path / "h.csv.gz"
    _loss_history().to_csv(p, index=False)
    out = tmp_path / "o" / "loss"
    LC.main([str(p), "--variants", "sym", "homeo5orth", "--out", str(out)])
    assert len(pd.read_csv(str(out) + ".csv")) == 6 and (out.parent / "loss.png").stat().st_size > 0
    with pytest.raises(ValueError, match=r"lacks task 'mnist1d' variant\(s\) \['untied'\]"):
        LC.loss_curves(_loss_history(), "mnist1d", ["sym", "untied"])
    h = _loss_history()
    with pytest.raises(ValueError, match=r"1 seed\(s\) ran every variant"):     # homeostasis has seed 0 only
        LC.loss_curves(h[(h["variant"] == "sym") | (h["seed"] == 0)], "mnist1d", ["sym", "homeo5orth"])


_lcp = Path(__file__).resolve().parent.parent / "experiments" / "ep_lambda_curve.py"
_lcspec = importlib.util.spec_from_file_location("ep_lambda_curve_experiment", _lcp)
LAM = importlib.util.module_from_spec(_lcspec)
_lcspec.loader.exec_module(LAM)


def _lambda_history():
    """Seeds 0–3 (seed 3 lacks λ = 2). Per seed s: accuracy sym 0.6 + 0.01s, untied 0.5 + 0.01s,
    λ5 0.59 + 0.01s (R = 0.9 exactly), λ2 0.55 + 0.02s; losses and symmetry known. The first logged
    row of every run holds other values: the final is the mean of the last three rows only."""
    acc = {"sym": lambda s: 0.6 + 0.01 * s, "untied": lambda s: 0.5 + 0.01 * s,
           "homeo5orth": lambda s: 0.59 + 0.01 * s, "homeo2orth": lambda s: 0.55 + 0.02 * s}
    rows = []
    for v, f in acc.items():
        for s in range(4):
            if v == "homeo2orth" and s == 3:
                continue
            for e in range(4):
                first = e == 0
                rows.append({"task": "mnist1d", "variant": v, "seed": s, "step": 150 * e, "evaluations": e + 1,
                             "test_acc": 0.1 if first else f(s), "train_loss": 9.0 if first else 0.5 + 0.1 * s,
                             "test_loss": 9.0 if first else 1.0 + 0.1 * s + (0.05 if v == "homeo5orth" else 0.0),
                             "symmetry": np.nan if v == "sym" else (0.2 if first else 0.9 + 0.01 * s)})
    return pd.DataFrame(rows)


def test_lambda_curve_pairs_each_lambda_with_the_reference_over_common_seeds():
    lam = LAM.parse_lam(["homeo5orth=5", "untied=0", "homeo2orth=2"])
    c = LAM.lambda_curve(_lambda_history(), "mnist1d", lam, boot=500).set_index("variant")
    assert list(c.index) == ["untied", "homeo2orth", "homeo5orth", "sym"]        # sorted by λ, reference last
    assert (c["n"] == 3).all()                                                     # seed 3 dropped
    s = np.arange(3)
    assert c.loc["homeo2orth", "test_acc"] == pytest.approx(np.mean(0.55 + 0.02 * s))
    assert c.loc["homeo2orth", "d_test_acc"] == pytest.approx(np.mean(-0.05 + 0.01 * s))
    assert c.loc["homeo2orth", "d_test_acc_lo"] < c.loc["homeo2orth", "d_test_acc"] < c.loc["homeo2orth", "d_test_acc_hi"]
    assert c.loc["homeo5orth", "d_test_acc"] == pytest.approx(-0.01)
    assert c.loc["homeo5orth", "d_test_acc_lo"] == pytest.approx(-0.01)          # the same difference in every seed
    assert c.loc["homeo5orth", "d_gen_gap"] == pytest.approx(0.05) and c.loc["untied", "d_gen_gap"] == pytest.approx(0)
    assert c.loc["homeo5orth", "symmetry"] == pytest.approx(0.91) and np.isnan(c.loc["sym", "symmetry"])
    assert c.loc["homeo5orth", "R"] == pytest.approx(0.9) and c.loc["homeo5orth", "P_R80"] == 1.0
    assert c.loc["homeo2orth", "R"] == pytest.approx(np.mean(0.05 + 0.01 * s) / 0.1)
    assert np.isnan(c.loc["untied", "R"]) and np.isnan(c.loc["sym", "R"]) and np.isnan(c.loc["sym", "lam"])


def test_lambda_curve_script_writes_files_and_names_bad_input(tmp_path):
    p = tmp_path / "h.csv.gz"
    _lambda_history().to_csv(p, index=False)
    out = tmp_path / "o" / "lam"
    LAM.main([str(p), "--lam", "untied=0", "homeo5orth=5", "--out", str(out)])
    assert len(pd.read_csv(str(out) + ".csv")) == 3 and (out.parent / "lam.png").stat().st_size > 0
    for bad in (["homeo5orth"], ["homeo5orth=-1"], ["=5"], ["homeo5orth=x"], ["untied=0", "untied=1"]):
        with pytest.raises(ValueError, match="--lam"):
            LAM.parse_lam(bad)
    with pytest.raises(ValueError, match=r"lacks task 'mnist1d' variant\(s\) \['homeo20orth'\]"):
        LAM.lambda_curve(_lambda_history(), "mnist1d", {"homeo20orth": 20.0})
    h = _lambda_history()
    with pytest.raises(ValueError, match=r"1 seed\(s\) ran every variant"):
        LAM.lambda_curve(h[(h["variant"] != "homeo2orth") | (h["seed"] == 0)], "mnist1d", {"homeo2orth": 2.0})
    with pytest.raises(SystemExit):                                                # argparse reports it, exit 2
        LAM.main([str(p), "--lam", "untied=zero", "--out", str(out)])


def test_energy_accuracy_uses_the_groups_common_seeds():
    """experiments/ep_energy_accuracy.py: per variant the mean last energy (mJ) and the mean of each seed's
    last-three accuracy, over the seeds every variant of a group ran; a variant without runs is an error."""
    p = Path(__file__).resolve().parent.parent / "experiments" / "ep_energy_accuracy.py"
    spec = importlib.util.spec_from_file_location("ep_energy_accuracy_experiment", p)
    EA = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(EA)
    rows = []
    for variant, seeds, energy, acc in (("a", (0, 1, 2), 10e9, 0.5), ("b", (0, 1), 40e9, 0.6)):
        for s in seeds:
            for ev in range(1, 5):
                rows.append({"task": "t", "variant": variant, "seed": s, "evaluations": ev, "step": ev,
                             "energy_pj": energy * ev / 4 * (1 + s), "test_acc": acc + 0.01 * s})
    hist = pd.DataFrame(rows)
    tab = EA.energy_accuracy(hist, "t", [("net", ["a", "b"])]).set_index("variant")
    assert (tab.n == 2).all()                                   # seed 2 of "a" has no "b": left out
    assert tab.loc["a", "energy_mJ"] == pytest.approx(10 * 1.5) and tab.loc["b", "energy_mJ"] == pytest.approx(40 * 1.5)
    assert tab.loc["a", "acc"] == pytest.approx(50.5) and tab.loc["b", "acc"] == pytest.approx(60.5)
    with pytest.raises(ValueError, match="groups"):
        EA.energy_accuracy(hist, "t", [("net", ["a", "c"])])
    with pytest.raises(ValueError, match="groups"):
        EA.parse_group("no-colon")


def _stability_module():
    p = Path(__file__).resolve().parent.parent / "experiments" / "ep_stability.py"
    spec = importlib.util.spec_from_file_location("ep_stability_experiment", p)
    ST = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ST)
    return ST


def test_stability_figures_pairs_and_same_history():
    """experiments/ep_stability.py: per run the mean of the spectrum columns over rows from ``from_step`` (rows
    without a spectrum skipped), the stop's offset gain × floor, paired ratios over common seeds with the count of
    seeds where A > B, and the check that a run with the diagnostic has the history of the run without it."""
    ST = _stability_module()
    rows = []
    for variant, scale in (("a", 2.0), ("b", 1.0), ("b0", 1.0)):
        for s in (0, 1, 2):
            for step in (0, 50, 100, 150):
                spec = variant != "b0" and step != 150            # the last row: no spectrum
                g = scale * (1 + s) * (1 + step / 100) if spec else np.nan
                rows.append({"task": "t", "variant": variant, "seed": s, "step": step, "evaluations": step,
                             "contraction": 0.5 * scale if spec else np.nan, "contraction_max": 0.9 if spec else np.nan,
                             "offset_gain": g, "offset_gain_max": 2 * g, "noise_floor_free": 0.1,
                             "test_acc": 0.1 * s + step, "wall_time": np.random.rand()})
    hist = pd.DataFrame(rows)
    hist.loc[(hist.variant == "b0"), ["contraction", "contraction_max", "offset_gain", "offset_gain_max"]] = np.nan
    r = ST.per_run(hist, "t", "a", from_step=50)
    # rows 50 and 100 of seed s: g = 2(1 + s)·1.5 and 2(1 + s)·2 → mean 3.5(1 + s)
    np.testing.assert_allclose(r["offset_gain"], [3.5, 7.0, 10.5])
    np.testing.assert_allclose(r["stop_offset"], 0.1 * r["offset_gain"])
    assert (r["contraction"] == 1.0).all()
    p = ST.paired_ratio(r["offset_gain"], ST.per_run(hist, "t", "b", 50)["offset_gain"])
    assert p["n"] == 3 and p["ratio"] == pytest.approx(2.0) and p["a_larger"] == 3
    assert p["lo"] == pytest.approx(2.0) and p["hi"] == pytest.approx(2.0)     # the same ratio on every seed
    # "b" with its spectrum columns equals "b0" (which logged none) in every column b0 has
    same = ST.same_history(hist, "t", "b", "b0")
    assert same["equal"] == [0, 1, 2]
    hist.loc[(hist.variant == "b") & (hist.seed == 1) & (hist.step == 100), "test_acc"] += 1e-12
    assert ST.same_history(hist, "t", "b", "b0")["equal"] == [0, 2]
    with pytest.raises(ValueError, match="spectrum_every"):
        ST.per_run(hist, "t", "b0", 0)
    with pytest.raises(ValueError, match="variants"):
        ST.per_run(hist, "t", "zz", 0)
    with pytest.raises(ValueError, match="pair"):
        ST.parse_pair("a-b", {"a", "b"})
    with pytest.raises(ValueError, match="need ≥ 2"):
        ST.paired_ratio(pd.Series([1.0], index=[0]), pd.Series([1.0], index=[0]))


def test_stability_script_reads_the_state_offset_alone_or_beside_the_spectrum(tmp_path):
    """experiments/ep_stability.py on runs that logged the state offset (offset_every): per run the row means of
    offset/spread (batch median), excess offset (batch mean/spread) and max/spread over rows from ``from_step``
    (rows without the diagnostic left out), the pairs and counts on them, a table and a plot panel of their own;
    a run with only the spectrum keeps its old table; a run with neither is named."""
    ST = _stability_module()
    rows = []
    for variant, k in (("tied", 3.0), ("untied", 1.5), ("both", 1.0)):
        for s in (0, 1, 2):
            for step in (0, 50, 100, 150):
                logged = step != 150                                     # the last row: no diagnostic
                spread = 0.01 * (1 + s)
                r = {"task": "t", "variant": variant, "seed": s, "step": step, "evaluations": step,
                     "state_offset": k * spread * (1 + step / 100) if logged else np.nan,
                     "state_offset_mean": 2 * k * spread if logged else np.nan,
                     "state_offset_max": 10 * k * spread if logged else np.nan,
                     "state_spread": spread if logged else np.nan, "test_acc": 0.1 * s}
                if variant == "both":
                    r.update(contraction=0.5, contraction_max=0.9, offset_gain=2.0, offset_gain_max=4.0,
                             noise_floor_free=0.1)
                rows.append(r)
    hist = pd.DataFrame(rows)
    r = ST.per_run(hist, "t", "tied", from_step=50)
    # rows 50 and 100: offset/spread = 3·1.5 and 3·2 → 5.25 on every seed; mean/spread 6; max/spread 30
    np.testing.assert_allclose(r["offset_ratio"], 5.25)
    np.testing.assert_allclose(r["excess_offset"], 6.0)
    np.testing.assert_allclose(r["offset_ratio_max"], 30.0)
    assert "contraction" not in r
    both = ST.per_run(hist, "t", "both", from_step=0)
    assert {"contraction", "stop_offset", "offset_ratio", "excess_offset"} <= set(both)
    p = ST.paired_ratio(r["excess_offset"], ST.per_run(hist, "t", "untied", 50)["excess_offset"])
    assert p["ratio"] == pytest.approx(2.0) and p["a_larger"] == 3 and p["n"] == 3
    f = tmp_path / "h.csv.gz"
    hist.to_csv(f, index=False)
    out = tmp_path / "st"
    ST.main([str(f), "--task", "t", "--variants", "tied", "untied", "both", "--paired", "tied:untied",
             "--from-step", "50", "--out", str(out)])
    md = (tmp_path / "st.md").read_text()
    assert "| both | 3 | 0.5 ±" in md                                   # the spectrum table, for "both" only
    assert "| tied | 3 | 0.5 ±" not in md
    assert "| tied | 3 | 5.25 ± 0 [5.25 … 5.25] | 6 ± 0 [6 … 6] | 30 ±" in md           # (max: ± rounding only)
    assert "| tied : untied | excess_offset | 3 | 6 | 3 | 2.000 (2.000 … 2.000) | 3 of 3 |" in md
    assert (tmp_path / "st.png").stat().st_size > 0
    ST.main([str(f), "--task", "t", "--variants", "tied", "--out", str(tmp_path / "only")])   # one panel
    assert "contraction ρ" not in (tmp_path / "only.md").read_text()
    with pytest.raises(ValueError, match="offset_every"):
        ST.per_run(hist.drop(columns=["state_spread"]), "t", "tied", 0)
    noiseless = hist.assign(state_spread=hist["state_spread"].where(hist["step"] != 100, 0.0))
    np.testing.assert_allclose(ST.per_run(noiseless, "t", "tied", 50)["offset_ratio"], 4.5)   # row 100 has none
