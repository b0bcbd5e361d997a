"""CBO: neurozo's ``CBODynamics`` against CBXpy 1.0 (``cbx``), side by side in the same process.

Issue 7's setting: Rastrigin d = 20 (10 d + Σ x² − 10 cos 2πx, as CBXpy computes it),
M = 100 runs, N = 40 particles, anisotropic noise, α = 30 with the ×1.05 schedule
(capped at 1e5, CBXpy's default), σ = 10.1, dt = 0.01, λ = 1, 5000 steps, start
U(−3, 3)^d (the same array for both), success ‖c_m − 0‖∞ < 0.25 for the final
consensus c_m of run m (the best particle of each run is reported too). Goal:
neurozo 100/100 and ≥ 5× faster per step. The same for Ackley (d = 20) and for
Rastrigin at d = 100.

Per step both libraries evaluate the objective on (M, N, d) and update; the
per-step time is split into

* ``same f``      both given the same objective: a Numba-compiled one defined
                  below (cos 2πx by exact reduction x − rint(x) and a Taylor
                  polynomial, |error| < 3e-16), so the ratio measures the
                  optimisers;
* ``numpy f``     both given a numpy objective (CBXpy's own ``cbx.objectives``
                  class; neurozo's task ``evaluate``), what a user gets by default;
* ``update only`` the per-step time minus the objective's own time (measured on
                  the same arrays in the same run).

CBXpy runs with tracking off and verbosity 0 (its fastest configuration).
Both run on one core by default (``--threads``): CBXpy's numpy does, and on this
shared 2-core machine a two-thread Numba region mostly waits for a descheduled
thread. Timings are interleaved blocks of steps (neurozo, CBXpy, neurozo, …) so that a
load change on this shared machine hits both; the figure is the median over
blocks, the ratio the median of the per-block ratios. Success counts come from
full-length runs.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python experiments/bench/bench_cbo.py [--json FILE]

``NEUROZO_BENCH_QUICK=1`` runs smoke sizes (M = 10, 300 steps).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np
from numba import get_num_threads, njit, prange, set_num_threads

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from kernels import cbo as _k  # noqa: E402
from neurozo.learners.cbo_dynamics import CBODynamics  # noqa: E402
from neurozo.tasks.functions import Ackley, Rastrigin  # noqa: E402

# ----------------------------------------------------------------------------- compiled objectives

_TWO_PI = 2.0 * math.pi
# Taylor coefficients of cos t, (−1)^k / (2k)!, k = 0 … 10; the remainder for t ≤ π/2 is < t^22/22! < 2e-17
_COS_C = tuple((-1) ** k / math.factorial(2 * k) for k in range(11))
C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10 = _COS_C


@njit(inline="always")
def cos2pi(v):
    """cos(2πv): r = |v − rint(v)| is exact; fold r into [0, 1/4] (cos 2π(1/2 − r) = −cos 2πr, 1/2 − r exact
    by Sterbenz); even Taylor polynomial in t = 2πr. Branch-free, so the loop that calls it vectorizes."""
    r = abs(v - np.rint(v))
    flip = r > 0.25
    rr = (0.5 - r) if flip else r
    t = _TWO_PI * rr
    u = t * t
    p = ((((((((((C10 * u + C9) * u + C8) * u + C7) * u + C6) * u + C5) * u + C4) * u + C3) * u + C2) * u + C1)
         * u + C0)
    return -p if flip else p


@njit(parallel=True, fastmath=False, cache=True)
def _rastrigin(X, out):  # pragma: no cover - compiled
    M, B, d = X.shape
    for m in prange(M):
        buf = np.empty(d)
        for k in range(B):
            for j in range(d):           # independent terms: vectorized
                v = X[m, k, j]
                buf[j] = v * v - 10.0 * cos2pi(v)
            s = 10.0 * d
            for j in range(d):           # summed in order
                s += buf[j]
            out[m, k] = s
    return out


@njit(parallel=True, fastmath=False, cache=True)
def _ackley(X, out):  # pragma: no cover - compiled
    M, B, d = X.shape
    for m in prange(M):
        buf = np.empty(d)
        for k in range(B):
            for j in range(d):           # independent terms: vectorized
                buf[j] = cos2pi(X[m, k, j])
            q = 0.0
            cs = 0.0
            for j in range(d):           # summed in order
                v = X[m, k, j]
                q += v * v
                cs += buf[j]
            out[m, k] = -20.0 * math.exp(-0.2 * math.sqrt(q / d)) - math.exp(cs / d) + 20.0 + math.e
    return out


def rastrigin_nb(X):
    X = np.ascontiguousarray(X, dtype=np.float64)
    return _rastrigin(X, np.empty(X.shape[:2]))


def ackley_nb(X):
    X = np.ascontiguousarray(X, dtype=np.float64)
    return _ackley(X, np.empty(X.shape[:2]))


COMPILED = {"rastrigin": rastrigin_nb, "ackley": ackley_nb}
NEUROZO_NUMPY = {"rastrigin": Rastrigin, "ackley": Ackley}

SETTING = dict(alpha=30.0, alpha_factor=1.05, alpha_max=1e5, sigma=10.1, dt=0.01, lam=1.0)


# ----------------------------------------------------------------------------- the two optimisers

def make_neurozo(f, x0, steps, seed):
    return CBODynamics(f, x=x0, seed=seed, noise="anisotropic", max_it=steps, **SETTING)


def make_cbx(f, x0, steps, seed):
    from cbx.dynamics import CBO

    return CBO(f, f_dim="3D", x=x0.copy(), noise="anisotropic", alpha=SETTING["alpha"], sigma=SETTING["sigma"],
               dt=SETTING["dt"], lamda=SETTING["lam"], max_it=steps, verbosity=0, seed=seed,
               track_args={"names": []})


def cbx_sched():
    from cbx.scheduler import multiply, scheduler

    return scheduler([multiply(name="alpha", factor=SETTING["alpha_factor"], maximum=SETTING["alpha_max"])])


def full_run(lib, f, x0, steps, seed):
    """(seconds, final consensus (M, d), best particle (M, d))."""
    if lib == "neurozo":
        dyn = make_neurozo(f, x0, steps, seed)
        t = time.perf_counter()
        dyn.optimize()
        secs = time.perf_counter() - t
        return secs, dyn.consensus.copy(), dyn.best_x.copy()
    dyn = make_cbx(f, x0, steps, seed)
    t = time.perf_counter()
    dyn.optimize(sched=cbx_sched())
    secs = time.perf_counter() - t
    return secs, np.asarray(dyn.consensus)[:, 0].copy(), np.asarray(dyn.best_particle).copy()


def block_times(f_nz, f_cbx, x0, block, blocks, seed):
    """Interleaved blocks of ``block`` steps (neurozo, CBXpy, then the objectives alone on neurozo's
    current particles): per-step seconds of each per block, and the objectives' own seconds per call."""
    nz = make_neurozo(f_nz, x0, None, seed)
    cb = make_cbx(f_cbx, x0, 10 ** 9, seed)
    sch = cbx_sched()
    tn, tc, fn, fc = [], [], [], []
    for _ in range(blocks):
        t = time.perf_counter()
        for _ in range(block):
            nz.step()
        tn.append((time.perf_counter() - t) / block)
        t = time.perf_counter()
        for _ in range(block):
            cb.terminate()       # what CBXpy's optimize() does every step
            cb.step()
            sch.update(cb)
        tc.append((time.perf_counter() - t) / block)
        X = nz.x.copy()
        t = time.perf_counter()
        for _ in range(block):
            nz.evaluate(X)
        fn.append((time.perf_counter() - t) / block)
        t = time.perf_counter()
        for _ in range(block):
            f_cbx(X)
        fc.append((time.perf_counter() - t) / block)
    return np.array(tn), np.array(tc), np.array(fn), np.array(fc)


def f_time(f, X, reps):
    f(X)
    t = time.perf_counter()
    for _ in range(reps):
        f(X)
    return (time.perf_counter() - t) / reps


def success(points, tol=0.25):
    return int(np.sum(np.max(np.abs(points), axis=1) < tol))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None, help="write the rows and the machine here")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--runs", type=int, default=None, help="M (default 100)")
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", default="rastrigin:20,ackley:20,rastrigin:100")
    ap.add_argument("--threads", type=int, default=1,
                    help="Numba threads (default 1: CBXpy's numpy runs on one core, and on a shared machine "
                         "a two-thread parallel region waits for descheduled threads)")
    args = ap.parse_args()
    set_num_threads(args.threads)
    if args.threads > 1:
        _k.PARALLEL_MIN_WORK = 0
    quick = os.environ.get("NEUROZO_BENCH_QUICK") == "1"
    M = args.runs or (10 if quick else 100)
    steps = args.steps or (300 if quick else 5000)
    N = 40
    block = max(20, min(250, steps // 10))
    try:
        import cbx  # noqa: F401
        from importlib.metadata import version

        peer = f"CBXpy {version('cbx')}"
    except ImportError:
        peer = None
    rows = []
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "numba_threads": get_num_threads(), "load_before": os.getloadavg(),
            "M": M, "N": N, "steps": steps, "setting": SETTING, "command": " ".join(sys.argv)}
    for case in args.cases.split(","):
        name, d = case.split(":")
        d = int(d)
        rng = np.random.default_rng(args.seed)
        x0 = rng.uniform(-3.0, 3.0, (M, N, d))
        f_nb = COMPILED[name]
        f_np_nz = NEUROZO_NUMPY[name](dim=d)
        label = f"{name} d={d}"
        # warm-up (compilation) outside every timing
        make_neurozo(f_nb, x0[:2].copy(), 3, 0).optimize()
        make_neurozo(f_np_nz, x0[:2].copy(), 3, 0).optimize()
        secs_nz, c_nz, b_nz = full_run("neurozo", f_nb, x0, steps, args.seed)
        row_nz = {"case": label, "success_neurozo": f"{success(c_nz)}/{M}",
                  "success_best_neurozo": f"{success(b_nz)}/{M}", "full_run_ms_neurozo": secs_nz / steps * 1e3}
        if peer is None:
            print(f"BENCH {json.dumps({'case': label, 'peer': 'cbx', 'skipped': 'cbx not installed', **row_nz})}")
            rows.append({**row_nz, "skipped": "cbx not installed"})
            continue
        from cbx import objectives as cobj

        f_np_cbx = {"rastrigin": cobj.Rastrigin, "ackley": cobj.Ackley}[name]()
        secs_cb, c_cb, b_cb = full_run("cbx", f_nb, x0, steps, args.seed)
        # interleaved timing blocks: the same compiled f for both, then each library's numpy f
        tn, tc, fn, _ = block_times(f_nb, f_nb, x0, block, args.blocks, args.seed)
        tn2, tc2, fn2, fc2 = block_times(f_np_nz, f_np_cbx, x0, block, max(3, args.blocks // 2), args.seed)
        med = lambda a: float(np.median(a))  # noqa: E731
        ms_nz, ms_cb = med(tn) * 1e3, med(tc) * 1e3
        ratio = med(tc / tn)
        ok_nz, ok_cb = success(c_nz), success(c_cb)
        upd_nz, upd_cb = (tn - fn) * 1e3, (tc - fn) * 1e3       # per block: step − f of the same block
        base = {"peer": peer, "unit": "ms/step", "success_neurozo": f"{ok_nz}/{M}", "success_peer": f"{ok_cb}/{M}",
                "success_best_neurozo": f"{success(b_nz)}/{M}", "success_best_peer": f"{success(b_cb)}/{M}",
                "full_run_ms_neurozo": round(secs_nz / steps * 1e3, 4),
                "full_run_ms_peer": round(secs_cb / steps * 1e3, 4), "M": M, "N": N, "steps": steps,
                "numba_threads": get_num_threads()}
        r1 = {"case": f"{label}, same compiled f", "neurozo": round(ms_nz, 4), "peer_value": round(ms_cb, 4),
              "ratio": round(ratio, 2), **base}
        if name == "rastrigin" and d == 20:
            r1["goal"] = ">= 5x and 100/100"
            r1["met"] = bool(ratio >= 5 and ok_nz == M)
        r2 = {"case": f"{label}, numpy f (each library's own)", "neurozo": round(med(tn2) * 1e3, 4),
              "peer_value": round(med(tc2) * 1e3, 4), "ratio": round(med(tc2 / tn2), 2),
              "f_ms_neurozo": round(med(fn2) * 1e3, 4), "f_ms_peer": round(med(fc2) * 1e3, 4), "peer": peer,
              "unit": "ms/step", "numba_threads": get_num_threads()}
        r3 = {"case": f"{label}, update only (step − f)", "neurozo": round(med(upd_nz), 4),
              "peer_value": round(med(upd_cb), 4), "ratio": round(med(upd_cb / upd_nz), 2),
              "f_ms": round(med(fn) * 1e3, 4), "peer": peer, "unit": "ms/step", "numba_threads": get_num_threads()}
        for r in (r1, r2, r3):
            print("BENCH " + json.dumps(r), flush=True)
            rows.append(r)
        print(f"# {label}: neurozo {ok_nz}/{M} ({ms_nz:.3f} ms/step), {peer} {ok_cb}/{M} ({ms_cb:.3f} ms/step), "
              f"same f ×{ratio:.1f}; numpy f ×{r2['ratio']:.1f}; update only ×{r3['ratio']}", flush=True)
    meta["load_after"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=1)
    print("# " + json.dumps(meta))


if __name__ == "__main__":
    main()
