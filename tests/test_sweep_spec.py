"""Sweep specs: grid/zip expansion, validation listing every problem, and the two safety refusals
(a spec cannot execute code; a spec cannot write outside the output root). No Dask cluster here."""

import os
import sys
from pathlib import Path

import pytest

from neurozo.cli import main
from neurozo.sweep import load_spec, plan, resolve_out, run_sweep

TINY = {"task": {"name": "sphere", "dim": 3}, "learner": {"name": "openes", "popsize": 4}, "budget": 40}


def test_grid_times_zip_expands_every_combination():
    spec = {"name": "t", "base": TINY,
            "grid": {"seed": [0, 1, 2], "learner.sigma": [0.1, 0.2]},
            "zip": {"learner.lr": [0.01, 0.02], "budget": [40, 80]}}
    _, runs = plan(spec)
    assert len(runs) == 3 * 2 * 2
    assert len({r.key for r in runs}) == len(runs)
    combos = {(r.config["seed"], r.config["learner"]["sigma"], r.config["learner"]["lr"], r.config["budget"])
              for r in runs}
    assert len(combos) == 12
    assert all((lr, b) in {(0.01, 40), (0.02, 80)} for *_, lr, b in combos)  # zip pairs, never crossed
    for r in runs:  # nested parameters keep the base's other parameters
        assert r.config["learner"]["popsize"] == 4 and r.config["task"] == {"name": "sphere", "dim": 3}
        assert r.point["seed"] == r.config["seed"]


def test_toml_tables_equal_quoted_paths_and_components_apply_before_their_parameters(tmp_path):
    head = '[base]\ntask = {name = "sphere", dim = 3}\nlearner = {name = "openes", popsize = 4}\nbudget = 40\n'
    a = tmp_path / "a.toml"
    a.write_text(head + '[grid.learner]\nsigma = [0.1, 0.3]\npopsize = [4, 6]\n')
    b = tmp_path / "b.toml"
    b.write_text(head + '[grid]\n"learner.sigma" = [0.1, 0.3]\n"learner.popsize" = [4, 6]\n')
    _, ra = plan(a)
    _, rb = plan(b)
    assert len(ra) == 4 and {r.key for r in ra} == {r.key for r in rb}
    # a whole-component axis is applied first, whatever the order in the file
    c = tmp_path / "c.toml"
    c.write_text(head + '[grid]\n"learner.sigma" = [0.1, 0.3]\n'
                 'learner = [{name = "openes", popsize = 4}, {name = "openes", popsize = 6}]\n')
    _, rc = plan(c)
    assert {r.key for r in rc} == {r.key for r in ra}
    assert sorted((r.config["learner"]["popsize"], r.config["learner"]["sigma"]) for r in rc) == \
        [(4, 0.1), (4, 0.3), (6, 0.1), (6, 0.3)]


def test_several_zip_groups_cross_each_other():
    spec = {"base": TINY, "zip": [{"seed": [0, 1], "budget": [40, 48]}, {"learner.sigma": [0.1, 0.2, 0.3]}]}
    _, runs = plan(spec)
    assert len(runs) == 6


def test_same_config_twice_runs_once():
    _, runs = plan({"base": TINY, "grid": {"seed": [0, 0, 1]}})
    assert len(runs) == 2


def test_every_problem_is_listed_in_one_error(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('epochs = 3\nout = "x"\n'
                 '[base]\ntask = {name = "sphere", dim = 3}\nlearner = {name = "openes", popsize = 4}\n'
                 'budget = 40\nlearning_rate = 0.1\n'
                 '[grid]\nseed = []\n"learner.sigmaa" = [0.1]\n"optimizer.lr" = [1]\nbatch_size = 5\n'
                 '[zip]\n"learner.lr" = [0.1, 0.2]\nbudget = [40]\n'
                 '[report]\ncolour = "red"\n')
    with pytest.raises(ValueError) as e:
        load_spec(f)
    msg = str(e.value)
    for needle in ["problems:", "'epochs' is unknown", "base.'learning_rate' is unknown",
                   "grid.'seed' is an empty axis", "grid.'batch_size'=5 is invalid", "unknown key 'optimizer'",
                   "equal lengths", "report.'colour' is unknown"]:
        assert needle in msg, needle
    assert msg.count("\n  - ") >= 7
    assert not (tmp_path / "x").exists()


def test_run_level_problems_are_collected_before_anything_runs(tmp_path):
    spec = {"base": TINY, "grid": {"learner.sigmaa": [0.1], "seed": [0, 1]}}
    with pytest.raises(ValueError, match=r"sigmaa.*\(and 1 more run\)"):
        plan(spec)
    spec = {"base": {**TINY, "budget": "many"},
            "grid": {"learner": [{"name": "openes", "popsize": 0}, {"name": "nope"}], "seed": [0, 1]}}
    with pytest.raises(ValueError) as e:
        run_sweep(spec, root=tmp_path, verbose=False)
    msg = str(e.value)
    assert "budget='many' is invalid" in msg and "(and 3 more runs)" in msg
    assert not any(tmp_path.iterdir())  # nothing written, no cluster started
    spec = {"base": TINY, "grid": {"learner": [{"name": "openes", "popsize": 0}, {"name": "nope"}]}}
    with pytest.raises(ValueError) as e:
        plan(spec)
    assert "popsize=0 is invalid" in str(e.value) and "learner='nope' is unknown" in str(e.value)


def test_spec_problems_and_run_problems_are_listed_together():
    spec = {"base": {**TINY, "epochs": 3}, "grid": {"seed": [], "learner.sigmaa": [0.1]},
            "zip": {"budget": [40, 48], "learner.lr": [0.1]}}
    with pytest.raises(ValueError) as e:
        plan(spec)
    msg = str(e.value)
    assert "base.'epochs' is unknown" in msg and "grid.'seed' is an empty axis" in msg and "equal lengths" in msg
    assert "unknown parameter(s) ['sigmaa']" in msg  # found by building the runs of what is left
    assert "3 problems" not in msg and msg.count("\n  - ") == 4


@pytest.mark.parametrize("spec,needle", [
    ({"base": TINY, "grid": {"seed": 3}}, "must be a list"),
    ({"base": TINY, "grid": {"seed.x": [1]}}, "is a number"),
    ({"base": TINY, "grid": {"seed": [0]}, "zip": {"seed": [1]}}, "given twice"),
    ({"base": [1, 2]}, "base=[1, 2] is invalid"),
    ({"base": {**TINY, "learner": 5}}, "base.learner=5 is invalid"),
    ({"base": {**TINY, "learner": {"popsize": 4}}}, "needs a 'name' key"),
    ({"base": TINY, "report": {"target": "high"}}, "report.target='high'"),
    ({"base": TINY, "name": "../up"}, "without path separators"),
    ({"base": TINY, "zip": {}}, None),  # an empty [zip] table is allowed (no axis)
])
def test_spec_type_errors(spec, needle):
    if needle is None:
        assert len(plan(spec)[1]) == 1
        return
    with pytest.raises(ValueError) as e:
        load_spec(spec)
    assert needle in str(e.value)


# --- safety: a spec is data ---------------------------------------------------------------------------


def test_spec_cannot_execute_code(tmp_path, monkeypatch):
    """Values that would run code if evaluated or imported are refused as unknown names or bad values."""
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    sys.modules.pop("this", None)
    payload = f"__import__('os').system('touch {marker}')"
    f = tmp_path / "evil.toml"
    f.write_text(
        "callbacks = \"os.system\"\n"
        "[base]\n"
        f"learner = {{name = \"{payload}\"}}\n"
        "task = {name = \"this\"}\n"
        "substrate = {name = \"os:system\", cmd = \"touch PWNED\"}\n"
        f"budget = \"{payload}\"\n"
        "[grid]\n"
        f"seed = [\"{payload}\"]\n")
    with pytest.raises(ValueError) as e:
        run_sweep(f, root=tmp_path / "out", verbose=False)
    msg = str(e.value)
    assert "'callbacks' is unknown" in msg
    for where, base, needle in [
            ("learner name", {**TINY, "learner": {"name": payload}}, "is unknown"),
            ("task name", {**TINY, "task": {"name": "this"}}, "task='this' is unknown"),
            ("substrate name", {**TINY, "substrate": {"name": "os:system", "cmd": "touch PWNED"}}, "is unknown"),
            ("a number", {**TINY, "budget": payload}, "budget="),
            ("a parameter", {**TINY, "learner": {"name": "openes", "sigma": payload}}, "sigma="),
    ]:
        with pytest.raises(ValueError, match="problem") as e2:
            plan({"base": base})
        assert needle in str(e2.value), where
    with pytest.raises(ValueError, match="seed="):
        plan({"base": TINY, "grid": {"seed": [payload]}})
    assert not marker.exists()
    assert "this" not in sys.modules  # no module named by a spec was imported
    assert not (tmp_path / "out").exists()
    # the CLI refuses it the same way: exit 2, nothing run
    assert main(["sweep", str(f), "--out", str(tmp_path / "out")]) == 2
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("out", ["../escape", "a/../../escape", "/tmp/neurozo-absolute-escape", "link/inside"])
def test_spec_cannot_write_outside_the_output_root(tmp_path, out, capsys):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "link")  # a symlink inside the root that points out of it
    spec = {"base": TINY, "grid": {"seed": [0, 1]}, "out": out}
    with pytest.raises(ValueError, match="out=.*(outside the output root|not an absolute path)"):
        run_sweep(spec, root=root, verbose=False)
    f = tmp_path / "s.toml"
    f.write_text(f'out = "{out}"\n[base]\ntask = {{name = "sphere", dim = 3}}\n'
                 'learner = {name = "openes", popsize = 4}\nbudget = 40\n')
    assert main(["sweep", str(f), "--out", str(root)]) == 2
    err = capsys.readouterr().err
    assert "out=" in err and ("outside the output root" in err or "not an absolute path" in err)
    assert not any(outside.iterdir())
    assert not Path("/tmp/neurozo-absolute-escape").exists()
    assert sorted(p.name for p in root.iterdir()) == ["link"]


def test_resolve_out_allows_nested_folders_inside(tmp_path):
    assert resolve_out(tmp_path, "a/b") == (tmp_path / "a" / "b").resolve()
    assert resolve_out(tmp_path, "a/../b") == (tmp_path / "b").resolve()


def test_dry_run_lists_runs_and_writes_nothing(tmp_path, capsys):
    f = tmp_path / "s.toml"
    f.write_text('[base]\ntask = {name = "sphere", dim = 3}\nlearner = {name = "openes", popsize = 4}\n'
                 'budget = 40\n[grid]\nseed = [0, 1, 2]\n')
    assert main(["sweep", str(f), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 runs valid, 0 done before, 3 to run" in out and out.count("seed=") == 3
    assert not (tmp_path / "o").exists()


# --- overrides (neurozo sweep --set) and the shipped experiment specs ----------------------------------


def test_overrides_change_the_spec_before_validation(tmp_path, capsys):
    from neurozo.sweep import parse_overrides

    f = tmp_path / "s.toml"
    f.write_text('[base]\ntask = {name = "sphere", dim = 3}\nlearner = "openes"\nbudget = 40\n'
                 '[grid]\n"learner.sigma" = [0.1, 0.2]\nseed = [0, 1, 2]\n')
    ov = parse_overrides(["base.learner.popsize=4", "grid.seed=[5]", "grid.learner.sigma=[0.3]", "out=small"])
    spec, runs = plan(f, overrides=ov)
    assert spec.out == "small" and len(runs) == 1
    assert runs[0].config["learner"] == {"name": "openes", "popsize": 4, "sigma": 0.3} and runs[0].config["seed"] == 5
    assert main(["sweep", str(f), "--dry-run", "--out", str(tmp_path / "o"), "--set", "grid.seed=[]"]) == 2
    assert "grid.'seed' is an empty axis" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--set"):
        parse_overrides(["budget"])


EXPERIMENTS = sorted((Path(__file__).resolve().parent.parent / "experiments").glob("*.toml"))


def _missing_components(spec) -> list:
    """Registered names a spec uses that this checkout does not have (substrates/learners still to land)."""
    from neurozo import learners, models, substrates, tasks

    regs = {"task": tasks.registry, "model": models.registry, "substrate": substrates.registry,
            "learner": learners.registry}
    values = [(k, v) for k, v in spec.base.items() if k in regs]
    for axes in [spec.grid, *spec.zips]:
        values += [(p, v) for p, vs in axes.items() if p in regs for v in vs]
    missing = []
    for kind, v in values:
        name = v if isinstance(v, str) else v.get("name") if isinstance(v, dict) else None
        if name is not None and name not in regs[kind]:
            missing.append(f"{kind} {name!r}")
    return sorted(set(missing))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_shipped_experiment_specs_validate(path):
    spec = load_spec(path)  # the spec's own shape always
    missing = _missing_components(spec)
    if missing:
        pytest.skip(f"{path.name} names components not in this checkout: {missing}")
    spec, runs = plan(path)  # every run builds
    assert len(runs) >= 2 and spec.description


def test_the_noise_study_sweeps_learners_and_read_noise_on_pcm():
    spec = load_spec(Path(__file__).resolve().parent.parent / "experiments" / "noise_study.toml")
    assert spec.base["substrate"]["name"] == "pcm"
    assert len(spec.grid["learner"]) >= 3 and spec.report["x"] in spec.grid
    assert len(spec.grid[spec.report["x"]]) >= 4 and len(spec.grid["seed"]) >= 3
