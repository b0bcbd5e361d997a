"""The neurozo command line: exit codes, one-line errors, records and compare outputs."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from neurozo.cli import main


def test_list_names_everything(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ["digits", "mnist1d", "sphere", "rastrigin", "ackley", "mlp", "ideal", "openes", "popsize=64"]:
        assert name in out
    assert main(["list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["learners"]["openes"]["sigma"] == 0.05


def test_run_writes_record(tmp_path, capsys):
    rc = main(["run", "--task", "sphere", "--set", "task.dim=3", "--set", "learner.popsize=4", "--budget", "40",
               "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "status finished" in out
    (rec,) = list(tmp_path.glob("*.json"))
    data = json.loads(rec.read_text())
    assert data["config"]["task"] == {"name": "sphere", "dim": 3, "init_low": -3.0, "init_high": 3.0}
    assert data["config"]["learner"]["popsize"] == 4


def test_run_prints_energy_only_for_learners_on_the_substrate(tmp_path, capsys):
    assert main(["run", "--task", "digits", "--learner", "bptt", "--budget", "20", "--out", str(tmp_path / "b"),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "energy not modelled (trains off the substrate)" in out and "µJ" not in out
    assert main(["run", "--task", "digits", "--learner", "spsa", "--budget", "20", "--out", str(tmp_path / "s"),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "µJ" in out and "not modelled" not in out


def test_run_from_toml_with_flag_override(tmp_path, capsys):
    f = tmp_path / "run.toml"
    f.write_text('budget = 40\nseed = 3\n[task]\nname = "sphere"\ndim = 2\n[learner]\nname = "openes"\npopsize = 4\n')
    assert main(["run", str(f), "--seed", "5", "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    (rec,) = list((tmp_path / "o").glob("*.json"))
    cfg = json.loads(rec.read_text())["config"]
    assert cfg["seed"] == 5 and cfg["task"]["dim"] == 2 and cfg["budget"] == 40


@pytest.mark.parametrize("argv,needle", [
    (["run", "--learner", "nope"], "learner='nope' is unknown"),
    (["run", "--set", "learner.popsize=0"], "popsize=0"),
    (["run", "--set", "learner.sigma=-1"], "sigma=-1"),
    (["run", "--budget", "0"], "budget=0"),
    (["run", "--set", "model.sizes=[10, 5, 10]"], "model.sizes=[10, 5, 10]"),
    (["compare", "--preset", "enormous"], "preset='enormous'"),
])
def test_bad_input_exits_2_with_one_line(argv, needle, capsys, tmp_path):
    assert main(argv + (["--out", str(tmp_path)] if argv[0] in ("run", "compare") else [])) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err
    assert not list(tmp_path.glob("**/*.json"))  # nothing ran


def test_toml_with_unknown_keys_exits_2(tmp_path, capsys):
    f = tmp_path / "bad.toml"
    f.write_text("budget = 100\nepochs = 3\n")
    assert main(["run", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert "epochs" in err and "allowed" in err and "\n" not in err


def test_compare_writes_table_markdown_and_plot(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--budget", "640", "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out / "table.csv")
    assert {"task", "substrate", "learner", "final_acc", "evaluations", "energy_uj"} <= set(table.columns)
    assert len(table) >= 1 and (table["evaluations"] <= 640).all()
    assert (out / "table.md").read_text().startswith("| task |")
    # bptt trains off the substrate: its training energy is not modelled (NaN, shown "–"), never 0
    off = table[table["learner"] == "bptt"]
    assert len(off) >= 1 and off["energy_uj"].isna().all() and not off["trains_on_substrate"].any()
    on = table[table["trains_on_substrate"] & (table["evaluations"] > 0)]
    assert len(on) >= 1 and (on["energy_uj"] > 0).all()
    assert "bptt trains off the substrate" in (out / "table.md").read_text()
    assert (out / "learning_curves.png").stat().st_size > 1000
    # resuming skips finished runs
    assert main(["compare", "--budget", "640", "--out", str(out), "--no-progress"]) == 0
    assert "skipped" in capsys.readouterr().out


def test_console_script_help():
    r = subprocess.run([sys.executable, "-m", "neurozo", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "compare" in r.stdout
    r = subprocess.run([sys.executable, "-m", "neurozo", "run", "--budget", "-1"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
