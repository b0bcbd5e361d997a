"""`neurozo report` and the plots behind it: tables match the records, the configuration grouping, the
accuracy-vs-noise / Pareto / evaluations-to-target plots, Markdown summary, CLI; plus `neurozo bench`."""

import json
import sys
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neurozo.bench import BEGIN, END, bench, parse_output  # noqa: E402
from neurozo.cli import main  # noqa: E402
from neurozo.plotting import (accuracy_vs_energy, accuracy_vs_noise, evaluations_to_target,  # noqa: E402
                              pareto_front, time_to_target)
from neurozo.report import configuration_columns, report  # noqa: E402
from neurozo.store import ResultStore  # noqa: E402
from neurozo.sweep import execute_run, plan  # noqa: E402

LEARNERS = {"openes": 0.95, "spsa": 0.85}
NOISE = [0.0, 0.5, 1.0]
SEEDS = [0, 1, 2]


def _acc(learner, noise, seed):
    return LEARNERS[learner] - 0.2 * noise + 0.01 * (seed - 1) * (1 + noise)


def _fake_store(root: Path, failed=True) -> ResultStore:
    """Records shaped like neurozo.run's: learners × read-noise levels × seeds, known accuracies."""
    store = ResultStore(root / "runs")
    i = 0
    for learner in LEARNERS:
        for noise in NOISE:
            for seed in SEEDS:
                acc = _acc(learner, noise, seed)
                hist = [{"step": s, "evaluations": 100 * s, "test_acc": 0.1 + (acc - 0.1) * s / 10,
                         "test_loss": 2.0 - s / 10, "energy_pj": 1e6 * s * (2 if learner == "spsa" else 1)}
                        for s in range(11)]
                cfg = {"task": {"name": "digits"}, "substrate": {"name": "pcm", "read_noise": noise},
                       "learner": {"name": learner, "sigma": 0.05}, "seed": seed, "budget": 1000}
                store.write({"key": f"{i:016x}", "config": cfg, "status": "finished", "message": "",
                             "history": hist, "final": dict(hist[-1]), "version": "0.1.0", "backend": "cpu"})
                i += 1
    if failed:
        cfg = {"task": {"name": "digits"}, "substrate": {"name": "pcm", "read_noise": 1.0},
               "learner": {"name": "openes", "sigma": 0.05}, "seed": 9, "budget": 1000}
        store.write({"key": "f" * 16, "config": cfg, "status": "failed", "message": "RuntimeError: ADC on fire",
                     "history": [], "final": {}, "version": "0.1.0", "backend": "cpu"})
    return store


def test_report_tables_match_the_records(tmp_path):
    _fake_store(tmp_path)
    rep = report(tmp_path, formats=["csv", "parquet"])
    out = tmp_path / "report"
    assert rep.metric == "test_acc" and rep.x == "substrate.read_noise"
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 19 and (runs["status"] == "failed").sum() == 1
    assert {"learner.name", "substrate.read_noise", "seed", "final.test_acc", "final.energy_pj"} <= set(runs.columns)
    try:
        import pyarrow  # noqa: F401  (Parquet is optional: without pyarrow the report says so)
    except ImportError:
        assert not (out / "runs.parquet").exists() and any("pyarrow" in n for n in rep.notes)
    else:
        pq = pd.read_parquet(out / "runs.parquet")
        assert len(pq) == 19 and set(pq["key"]) == set(runs["key"])
    hist = pd.read_csv(out / "histories.csv")
    assert len(hist) == 18 * 11
    s = pd.read_csv(out / "summary.csv")
    assert len(s) == 6  # 2 learners × 3 noise levels (the failed seed joins openes @ 1.0)
    for learner in LEARNERS:
        for noise in NOISE:
            row = s[(s["label"] == learner) & (s["substrate.read_noise"] == noise)].iloc[0]
            v = np.array([_acc(learner, noise, sd) for sd in SEEDS])
            assert row["final_test_acc"] == pytest.approx(v.mean())
            from scipy import stats  # 95% Student-t half-width of the mean over 3 seeds
            assert row["final_test_acc_ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * v.std(ddof=1) / np.sqrt(3))
            assert row["evaluations"] == 1000
            assert row["energy_uj"] == pytest.approx(10 * (2 if learner == "spsa" else 1))
            assert row["runs"] == (4 if (learner, noise) == ("openes", 1.0) else 3)


def test_report_plots_and_markdown(tmp_path):
    _fake_store(tmp_path)
    rep = report(tmp_path)
    out = tmp_path / "report"
    for name in ("learning_curves.png", "test_acc_vs_substrate_read_noise.png", "pareto.png",
                 "evals_to_target.png"):
        assert (out / name).stat().st_size > 2000, name
    md = (out / "summary.md").read_text()
    assert "RuntimeError: ADC on fire" in md and "failed 1" in md and "finished 18" in md
    assert "![test_acc_vs_substrate_read_noise.png]" in md
    # default target: 90% of the way from the mean initial accuracy (0.1) to the best mean final one
    best = max(np.mean([_acc(lr, n, sd) for sd in SEEDS]) for lr in LEARNERS for n in NOISE)
    assert rep.target == pytest.approx(0.1 + 0.9 * (best - 0.1))


def test_a_paired_setting_is_not_taken_for_the_x_axis(tmp_path):
    """budget paired with the task (a zip axis) must not become the x of the metric-vs-x plot."""
    store = ResultStore(tmp_path / "runs")
    for i, (task, budget) in enumerate([("a", 100), ("b", 200)]):
        for seed in range(2):
            cfg = {"task": {"name": task}, "learner": {"name": "l"}, "budget": budget, "seed": seed}
            store.write({"key": f"{i}{seed:015x}", "config": cfg, "status": "finished", "message": "",
                         "history": [{"evaluations": 0, "test_loss": 1.0}, {"evaluations": budget, "test_loss": 0.5}],
                         "final": {"evaluations": budget, "test_loss": 0.5}, "version": "0", "backend": "cpu"})
    rep = report(tmp_path, formats=["csv"])
    assert rep.x is None and set(rep.summary["label"]) == {"a", "b"}


def test_configuration_columns_pick_the_fewest_that_separate():
    runs = pd.DataFrame({"learner.name": ["a", "a", "b", "b"], "learner.popsize": [4, 4, np.nan, np.nan],
                         "learner.sigma": [0.1, 0.2, 0.1, 0.2], "seed": [0, 1, 0, 1], "budget": [9, 9, 9, 9]})
    assert configuration_columns(runs) == ["learner.name", "learner.sigma"]
    assert configuration_columns(runs, exclude=["learner.sigma"]) == ["learner.name"]


def test_accuracy_vs_noise_draws_one_line_per_group_with_the_means():
    rows = [{"label": lr, "noise": n, "seed": sd, "acc": _acc(lr, n, sd)}
            for lr in LEARNERS for n in NOISE for sd in SEEDS]
    rows.append({"label": "openes", "noise": 0.5, "seed": 7, "acc": np.nan})  # a diverged run: left out
    fig, ax = plt.subplots()
    assert accuracy_vs_noise(pd.DataFrame(rows), x="noise", metric="acc", ax=ax) is ax
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {"openes (1 non-finite)", "spsa"}
    y = lines["spsa"].get_ydata()
    assert np.allclose(y, [np.mean([_acc("spsa", n, sd) for sd in SEEDS]) for n in NOISE])
    plt.close(fig)
    assert accuracy_vs_noise(pd.DataFrame(rows), x="noise", metric="acc") is not None  # ax=None: new figure
    plt.close("all")


def test_pareto_front_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        c, v = rng.random(12), rng.random(12)
        v[rng.integers(12)] = np.nan
        front = set(pareto_front(c, v).tolist())
        brute = {i for i in range(12) if np.isfinite(v[i]) and not any(
            np.isfinite(v[j]) and c[j] <= c[i] and v[j] >= v[i] and (c[j] < c[i] or v[j] > v[i]) for j in range(12))}
        assert front == brute
    assert pareto_front([1.0, 2.0], [0.5, 0.1], higher_is_better=False).tolist() == [0, 1]
    with pytest.raises(ValueError, match="shapes"):
        pareto_front([1, 2], [1])


def test_accuracy_vs_energy_marks_the_front():
    t = pd.DataFrame({"label": ["a", "b", "c"], "e": [1e6, 2e6, 3e6], "m": [0.5, 0.9, 0.8]})
    fig, ax = plt.subplots()
    assert accuracy_vs_energy(t, energy="e", metric="m", ax=ax) is ax
    front = [ln for ln in ax.get_lines() if ln.get_label() == "Pareto front"][0]
    assert np.allclose(front.get_xdata(), [1, 2]) and np.allclose(front.get_ydata(), [0.5, 0.9])
    plt.close(fig)


def test_evaluations_to_target_counts_runs_that_reach_it():
    h = pd.DataFrame([{"key": k, "label": lab, "evaluations": e, "test_acc": a}
                      for k, lab, curve in [("r1", "x", [0.1, 0.5, 0.9]), ("r2", "x", [0.1, 0.9, 0.95]),
                                            ("r3", "y", [0.1, 0.2, 0.3])]
                      for e, a in zip([0, 10, 20], curve)])
    t = time_to_target(h, 0.8).set_index("key")["evaluations"]
    assert t["r1"] == 20 and t["r2"] == 10 and np.isnan(t["r3"])
    fig, ax = plt.subplots()
    assert evaluations_to_target(h, 0.8, ax=ax) is ax
    heights = [b.get_height() for b in ax.patches]
    assert heights == [15.0, 0.0]
    texts = [tx.get_text() for tx in ax.texts]
    assert "2/2" in texts[0] and "0/1" in texts[1] and "not reached" in texts[1]
    plt.close(fig)


def test_report_on_real_records_of_a_function_task(tmp_path):
    """Records written by the sweep's task function itself (no cluster); sphere has no accuracy → loss."""
    spec = {"base": {"task": {"name": "sphere", "dim": 3}, "learner": {"name": "openes", "popsize": 4},
                     "budget": 40}, "grid": {"learner.sigma": [0.05, 0.5], "seed": [0, 1]}}
    _, runs = plan(spec)
    for r in runs:
        execute_run(r.config, r.key, str(tmp_path / "runs"), r.point)
    rep = report(tmp_path, formats=["csv"])
    assert rep.metric == "test_loss" and rep.x == "learner.sigma"
    assert (tmp_path / "report" / "test_loss_vs_learner_sigma.png").exists()
    assert not (tmp_path / "report" / "runs.parquet").exists()
    assert any("no energy" in n for n in rep.notes)


def test_report_cli_and_bad_input(tmp_path, capsys):
    _fake_store(tmp_path, failed=False)
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r2"), "--format", "csv", "--target", "0.5"]) == 0
    assert (tmp_path / "r2" / "summary.md").exists() and not (tmp_path / "r2" / "runs.parquet").exists()
    assert "reached_target" in pd.read_csv(tmp_path / "r2" / "summary.csv").columns
    capsys.readouterr()
    for argv, needle in [(["report", str(tmp_path / "nothing")], "DIR="),
                         (["report", str(tmp_path), "--x", "learner.nope"], "x='learner.nope'"),
                         (["report", str(tmp_path), "--x", "learner.name"], "must be a numeric"),
                         (["report", str(tmp_path), "--format", "xls"], "format='xls'"),
                         (["report", str(tmp_path), "--metric", "f1"], "metric='f1'")]:
        assert main(argv) == 2
        assert needle in capsys.readouterr().err


# --- neurozo bench ------------------------------------------------------------------------------------


def _script(d: Path, name: str, body: str):
    (d / name).write_text(textwrap.dedent(body))


def test_bench_runs_scripts_and_rewrites_only_its_table(tmp_path, capsys):
    d = tmp_path / "bench"
    d.mkdir()
    _script(d, "bench_good.py", """
        import json, os
        print("warming up")
        print("BENCH " + json.dumps({"case": "n=8", "neurozo": 0.5, "peer": "numpy", "peer_value": 1.0,
                                     "unit": "s", "ratio": 2.0, "goal": ">= 1.5x", "met": True,
                                     "quick": os.environ.get("NEUROZO_BENCH_QUICK")}))
        print("BENCH " + json.dumps({"case": "vs cbx", "peer": "cbx", "skipped": "cbx not installed"}))
    """)
    _script(d, "bench_lastline.py", """
        print('{"case": "json last line", "ratio": 3.5}')
    """)
    _script(d, "bench_jsonfile.py", """
        import argparse, json
        ap = argparse.ArgumentParser()
        ap.add_argument("--json", default=None)
        args = ap.parse_args()
        print("a human-readable table")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"meta": {"host": "x"}, "rows": [{"case": "from --json", "ratio": 1.5}]}, f)
    """)
    _script(d, "bench_broken.py", """
        raise SystemExit("kernel exploded")
    """)
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nintro kept\n\n{BEGIN}\nold table\n{END}\n\ntrailer kept\n")
    rc = bench(directory=d, doc=doc, quick=True, verbose=False, command="neurozo bench --quick")
    assert rc == 1  # one script failed; the others still ran
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nintro kept") and text.rstrip().endswith("trailer kept")
    assert "old table" not in text and "`neurozo bench --quick`" in text and " cores" in text
    assert "| good | n=8 | 0.5 s | numpy | 1 s | 2× | >= 1.5x | yes | quick=1 |" in text
    assert "skipped: cbx not installed" in text
    assert "| lastline | json last line |" in text and "3.5×" in text
    assert "error: exit 1: kernel exploded" in text
    assert "| jsonfile | from --json |" in text and "host" not in text  # rows of its --json file, meta left out
    # only some scripts, and --no-write leaves the doc alone
    before = doc.read_text()
    assert main(["bench", "good", "--dir", str(d), "--doc", str(doc), "--no-write"]) == 0
    assert doc.read_text() == before and "| good | n=8 |" in capsys.readouterr().out
    assert main(["bench", "nope", "--dir", str(d), "--doc", str(doc)]) == 2


def test_bench_table_maps_a_scripts_own_field_names():
    from neurozo.bench import render_table

    rows = [{"bench": "x", "machine": "m", "date": "d", "ratio_read_vs_floor": 4.06,
             "aihwkit": "skipped: aihwkit not importable"}]
    line = render_table([{"rows": rows}]).splitlines()[2]
    assert "4.06×" in line and "ratio_of=ratio_read_vs_floor" in line
    assert "skipped: aihwkit: aihwkit not importable" in line and "machine" not in line


def test_bench_creates_the_doc_and_parses_lists():
    assert parse_output('x\nBENCH [{"a": 1}, {"b": 2}]\n') == [{"a": 1}, {"b": 2}]
    assert parse_output("no json here") == []
    assert parse_output("BENCH {oops") == [{"error": "unparsable BENCH line: BENCH {oops"}]


def test_bench_doc_created_with_markers(tmp_path):
    d = tmp_path / "b"
    d.mkdir()
    _script(d, "bench_one.py", 'print("BENCH {\\"ratio\\": 1.25}")\n')
    doc = tmp_path / "docs" / "benchmarks.md"
    assert bench(directory=d, doc=doc, verbose=False) == 0
    text = doc.read_text()
    assert BEGIN in text and END in text and "| one |" in text and "1.25×" in text
    doc.write_text("# mine\n")  # no markers: appended, own text kept
    assert bench(directory=d, doc=doc, verbose=False) == 0
    assert doc.read_text().startswith("# mine\n") and BEGIN in doc.read_text()


def test_off_substrate_learner_has_no_energy_in_the_summary(tmp_path):
    """bptt trains in float off the substrate: its (zero) recorded training energy is not a cost."""
    store = ResultStore(tmp_path / "runs")
    for i, (learner, e) in enumerate([("bptt", 0.0), ("bptt", 0.0), ("spsa", 3e6), ("spsa", 5e6)]):
        hist = [{"step": 1, "evaluations": 10, "test_acc": 0.5 + i / 10, "energy_pj": e}]
        cfg = {"task": {"name": "digits"}, "substrate": {"name": "ideal"}, "learner": {"name": learner},
               "seed": i, "budget": 10}
        store.write({"key": f"{i:016x}", "config": cfg, "status": "finished", "message": "",
                     "history": hist, "final": dict(hist[-1]), "version": "0.1.0", "backend": "cpu"})
    report(tmp_path, formats=["csv"])
    s = pd.read_csv(tmp_path / "report" / "summary.csv").set_index("label")
    assert np.isnan(s.loc["bptt", "energy_uj"])
    assert s.loc["spsa", "energy_uj"] == pytest.approx(4.0)
