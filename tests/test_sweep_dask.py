"""Sweeps on Dask: a killed worker loses nothing and duplicates nothing, interrupt + resume runs only the
missing keys, diverging and raising runs are recorded while the sweep goes on, and the CLI end to end.

Runs are tiny (sphere in 3-D, OpenAI-ES with 4 members); timeouts are generous and nothing is timed, so the
tests hold on a loaded 2-core machine.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from neurozo.cli import main  # noqa: E402
from neurozo.store import ResultStore  # noqa: E402
from neurozo.sweep import plan, run_sweep  # noqa: E402

TINY = {"task": {"name": "sphere", "dim": 3}, "learner": {"name": "openes", "popsize": 4}, "budget": 40}


def _records(directory: Path):
    return {p.stem: json.loads(p.read_text()) for p in (directory / "runs").glob("*.json")}


def test_killed_worker_every_run_recorded_exactly_once(tmp_path):
    """40 runs on 2 worker processes; after 10 results the busiest worker is SIGKILLed mid-run."""
    import dask
    from distributed import Client, LocalCluster

    # long enough (≈0.1–0.5 s each) that the killed worker is inside a run, short enough for CI
    spec = {"name": "fault", "base": {**TINY, "budget": 6000}, "grid": {"seed": list(range(40))}}
    _, planned = plan(spec)
    assert len(planned) == 40
    killed = {}

    with dask.config.set({"distributed.scheduler.allowed-failures": 5}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                               env={"NUMBA_NUM_THREADS": "1"})
    try:
        with Client(cluster) as client:
            pids_before = client.run(os.getpid)

            def kill_one(summary, result):
                if len(result.ran) == 10 and not killed:
                    busy = client.processing()
                    addr = max(pids_before, key=lambda a: len(busy.get(a, ())))
                    killed["pid"], killed["busy"] = pids_before[addr], len(busy.get(addr, ()))
                    os.kill(killed["pid"], signal.SIGKILL)
                return False

            res = run_sweep(spec, root=tmp_path, client=client, callbacks=[kill_one], verbose=False,
                            progress=False)
            deadline = time.time() + 120
            while len(client.scheduler_info()["workers"]) < 2 and time.time() < deadline:
                time.sleep(0.2)  # the nanny restarts the killed worker
            pids_after = set(client.run(os.getpid).values())
    finally:
        cluster.close()

    assert killed and killed["busy"] >= 1 and killed["pid"] not in pids_after  # it had a run in hand
    assert not res.interrupted
    assert len(res.ran) == 40 and len(set(res.ran)) == 40  # one completion per run, no duplicate
    assert set(res.ran) == {r.key for r in planned}
    recs = _records(tmp_path / "fault")
    assert set(recs) == {r.key for r in planned}  # 40 records, one file per key
    assert all(r["status"] == "finished" for r in recs.values())
    assert {r["config"]["seed"] for r in recs.values()} == set(range(40))
    # the sweep went on after the kill: some runs were done by the restarted worker
    assert any(r["sweep"]["pid"] not in pids_before.values() for r in recs.values())


def test_interrupt_then_resume_runs_only_the_missing_keys(tmp_path):
    # runs of ≈0.1–0.5 s, so that stopping after 3 results leaves most of the 16 undone
    spec = {"name": "resume", "base": {**TINY, "budget": 6000}, "grid": {"seed": list(range(16))}}
    stop_after = 3
    res1 = run_sweep(spec, root=tmp_path, n_workers=2, callbacks=[lambda s, r: len(r.ran) >= stop_after],
                     verbose=False, progress=False)
    assert res1.interrupted
    store = ResultStore(tmp_path / "resume" / "runs")
    done1 = set(store.keys())
    assert stop_after <= len(done1) < 16
    stamps = {k: (store.path(k).stat().st_mtime_ns, store.path(k).read_text()) for k in done1}
    manifest = json.loads((tmp_path / "resume" / "manifest.json").read_text())
    assert len(manifest["runs"]) == 16 and manifest["axes"] == ["seed"]

    res2 = run_sweep(spec, root=tmp_path, n_workers=2, verbose=False, progress=False)
    assert set(res2.skipped) == done1
    assert set(res2.ran) == set(res2.planned) - done1 and len(res2.ran) == 16 - len(done1)
    assert set(store.keys()) == set(res2.planned)
    cores = len(os.sched_getaffinity(0))
    for k in store.keys():  # the embedded cluster splits the cores between its workers
        assert store.read(k)["sweep"]["numba_threads"] == max(1, cores // 2)
    for k, stamp in stamps.items():  # records finished before the interruption were not touched
        assert (store.path(k).stat().st_mtime_ns, store.path(k).read_text()) == stamp
    res3 = run_sweep(spec, root=tmp_path, verbose=False, progress=False)  # nothing left: no cluster at all
    assert res3.ran == [] and len(res3.skipped) == 16


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the lr=1e300 run overflows on purpose
def test_diverging_and_raising_runs_are_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch, capsys):
    """In-process (threaded) cluster, so a learner that raises can be registered for this test only."""
    from distributed import Client, LocalCluster

    from neurozo import learners
    from neurozo.learners.openes import OpenES

    class Exploding(OpenES):
        """OpenES that raises at its third step (a bug in a learner, a device error, ...)."""

        def step(self, state, problem):
            if state.step >= 2:
                raise RuntimeError("device fell over at step 3")
            return super().step(state, problem)

    learners.registry.names()  # autoload first, then add the test learner for this test only
    monkeypatch.setitem(learners.registry._items, "exploding-test", Exploding)
    spec = {"name": "faults", "base": TINY,
            "grid": {"learner": [{"name": "openes", "popsize": 4},
                                 {"name": "openes", "popsize": 4, "lr": 1e300},
                                 {"name": "exploding-test", "popsize": 4}],
                     "seed": [0, 1]}}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        res = run_sweep(spec, root=tmp_path, client=client, verbose=False, progress=True)
    assert res.counts() == {"finished": 2, "diverged": 2, "failed": 2}
    assert "6/6" in capsys.readouterr().err  # the progress bar counts runs
    recs = _records(tmp_path / "faults")
    assert len(recs) == 6
    for r in recs.values():
        name, lr = r["config"]["learner"]["name"], r["config"]["learner"].get("lr")
        for field in ("config", "status", "message", "history", "final", "version", "backend", "created"):
            assert field in r
        if name == "exploding-test":
            assert r["status"] == "failed" and "RuntimeError: device fell over at step 3" in r["message"]
            assert "Traceback" in r["traceback"]
        elif lr == 1e300:
            assert r["status"] == "diverged" and "non-finite" in r["message"] and r["history"]
        else:
            assert r["status"] == "finished" and r["final"]["evaluations"] == 40
            assert {"macs", "energy_pj", "evaluations", "test_loss"} <= set(r["final"])  # metrics and costs
    # resuming skips failed runs unless asked
    res2 = run_sweep(spec, root=tmp_path, client=None, verbose=False, progress=False)
    assert res2.ran == [] and len(res2.skipped) == 6


def test_cli_sweep_on_a_running_scheduler_then_report(tmp_path, capsys):
    from distributed import LocalCluster

    f = tmp_path / "s.toml"
    f.write_text('name = "cli"\n[base]\ntask = {name = "sphere", dim = 3}\n'
                 'learner = {name = "openes", popsize = 4}\nbudget = 40\n'
                 '[grid]\nseed = [0, 1]\n"learner.sigma" = [0.05, 0.5]\n')
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        assert main(["sweep", str(f), "--out", str(tmp_path / "res"), "--scheduler", cluster.scheduler_address,
                     "--no-progress", "--report"]) == 0
    out = capsys.readouterr().out
    assert "4 runs, 0 done before, 4 to run" in out and "dashboard:" in out and "[4/4]" in out
    assert "embedded LocalCluster" not in out
    d = tmp_path / "res" / "cli"
    assert len(list((d / "runs").glob("*.json"))) == 4
    for name in ("runs.csv", "summary.md", "learning_curves.png", "test_loss_vs_learner_sigma.png"):
        assert (d / "report" / name).exists(), name
    assert main(["sweep", str(f), "--out", str(tmp_path / "res"), "--no-progress"]) == 0
    assert "4 done before, 0 to run" in capsys.readouterr().out


def test_cli_ctrl_c_then_rerun_resumes(tmp_path):
    """SIGINT to `neurozo sweep` mid-sweep: exit 130, finished runs kept; the rerun runs only the rest."""
    f = tmp_path / "s.toml"
    f.write_text('name = "ctrlc"\n[base]\ntask = {name = "sphere", dim = 3}\n'
                 'learner = {name = "openes", popsize = 4}\nbudget = 6000\n[grid]\nseed = ' +
                 str(list(range(30))) + "\n")
    runs = tmp_path / "res" / "ctrlc" / "runs"
    cmd = [sys.executable, "-m", "neurozo", "sweep", str(f), "--out", str(tmp_path / "res"), "--workers", "1",
           "--no-progress"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(list(runs.glob("*.json"))) < 3 and p.poll() is None:
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=240)
    assert p.returncode == 130, (out, err)
    assert "rerun the same command to resume" in err
    done = {q.stem for q in runs.glob("*.json")}
    assert 3 <= len(done) < 30
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{len(done)} done before, {30 - len(done)} to run" in r.stdout
    assert len(list(runs.glob("*.json"))) == 30
