"""Run more seeds of the EP ablation (experiments/ep_homeostasis.py) in many processes, on a
machine that may lack pandas, matplotlib or the mnist1d package (e.g. the CPUs of a lent GPU
machine). Every finished run is written to STORE exactly as the ablation script would write it
(same configuration, same key; runs already in STORE are not run again), so
`ep_homeostasis.py --store STORE ...` afterwards reads them instead of running them again. Jobs
go seed by seed (all variants of a seed first), so a run cut off by a time limit leaves complete
seeds behind.

    python experiments/ep_homeostasis_seeds.py STORE JOBS SEED... [--variants sym homeo5s50 untied]
           [--task mnist1d] [--steps-scale 3] [--beta 0.1] [--T2 60] [--hidden 128 64]
           [--lr 0.01 0.04] [--mnist1d-npz PATH]
    python experiments/ep_homeostasis_seeds.py --save-mnist1d PATH     # on a machine that has mnist1d

``--mnist1d-npz`` serves the seed-42 mnist1d data set from a file saved with ``--save-mnist1d``
(a machine without internet access cannot install the generator). Copy the store's files back
as one archive: `tar czf store.tgz -C STORE .`.
"""

from __future__ import annotations

import os
import sys
import types

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]
try:
    import pandas  # noqa: F401
except ImportError:                                   # the ablation script imports it; run_config does not use it
    sys.modules["pandas"] = types.ModuleType("pandas")
import ep_homeostasis as E  # noqa: E402


def _offline_mnist1d(path: str) -> None:
    """Install a stand-in ``mnist1d.data`` that serves the saved seed-42 data set (of the size it was saved)."""
    import numpy as np

    from neurozo.tasks.mnist1d import PAPER_SAMPLES

    def make_dataset(args):
        d = np.load(path)
        n = len(d["x"]) + len(d["x_test"])
        if args.seed != 42 or args.num_samples != n:
            raise ValueError(f"mnist1d seed={args.seed}, num_samples={args.num_samples}: the saved data set "
                             f"{path} holds seed 42 with num_samples={n} only")
        return {k: d[k] for k in ("x", "y", "x_test", "y_test")}

    data = types.ModuleType("mnist1d.data")
    data.get_dataset_args = lambda: types.SimpleNamespace(seed=42, num_samples=PAPER_SAMPLES)
    data.make_dataset = make_dataset
    pkg = types.ModuleType("mnist1d")
    pkg.data = data
    sys.modules["mnist1d"], sys.modules["mnist1d.data"] = pkg, data


def one(job):
    *run, npz = job
    if npz:
        _offline_mnist1d(npz)
    E.run_or_read(*run)


def main(argv=None):
    import argparse
    import multiprocessing as mp

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save-mnist1d", metavar="PATH",
                    help="save the seed-42 mnist1d data set (of --task's size) and exit")
    ap.add_argument("store", nargs="?")
    ap.add_argument("jobs", nargs="?", type=int)
    ap.add_argument("seeds", nargs="*", type=int)
    ap.add_argument("--variants", nargs="+", default=["sym", "homeo5s50", "untied"], choices=list(E.VARIANTS))
    ap.add_argument("--task", default="mnist1d", choices=list(E.TASKS))
    ap.add_argument("--steps-scale", type=float, default=3.0)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--T2", type=int, default=None)
    ap.add_argument("--hidden", nargs="+", type=int, default=None, help="hidden widths (default: one layer of 128)")
    ap.add_argument("--lr", nargs="+", type=float, default=[None],
                    help="learning rates (default: the variant's own); every run is done at each")
    ap.add_argument("--mnist1d-npz", default=None)
    a = ap.parse_args(argv)
    if a.save_mnist1d:
        import numpy as np

        from neurozo.tasks.mnist1d import PAPER_SAMPLES, _make

        x, y, xt, yt = _make(42, E.TASK_SPECS.get(a.task, {}).get("num_samples", PAPER_SAMPLES))   # --task's size
        np.savez_compressed(a.save_mnist1d, x=x, y=y, x_test=xt, y_test=yt)
        return
    if not a.store or not a.jobs or not a.seeds:
        ap.error("STORE, JOBS and at least one SEED are required")
    jobs = [(a.task, v, s, a.steps_scale, a.store, a.hidden, a.beta, a.T2, lr, a.mnist1d_npz)
            for s in a.seeds for lr in a.lr for v in a.variants]
    with mp.get_context("spawn").Pool(a.jobs) as pool:
        for _ in pool.imap_unordered(one, jobs, chunksize=1):
            pass


if __name__ == "__main__":
    main()
