"""Analog crossbar forward: a 512×512 PCM crossbar, batch 256, full PCM + IO noise.

Measured in one process, best (and median) of ``--repeats`` after a warm-up,
and reported as ratios against the floor:

* floor     the noiseless float32 GEMM x·Wᵀ of the same shape (numpy/OpenBLAS);
* neurozo   ``Crossbar.read`` of a programmed ``pcm`` array read one day after
            programming: the drifted conductances with their 1/f noise are
            drawn once for that time (as aihwkit's ``drift_analog_weights``),
            each forward then does the DAC (α = max|x| per vector, 7 bits),
            the analog GEMM, output noise 0.06, the 9-bit ADC, iterative bound
            management, drift-compensation rescale and bias (goal ≤ 3× floor);
* also      the first read at a new time t (drift + 1/f noise + compensation
            read-out of I_512 through the IO path) and programming (noise,
            drift exponents, compensation baseline), per call;
* aihwkit   ``AnalogLinear(512, 512)`` with ``InferenceRPUConfig()`` (PCM noise
            model, global drift compensation, ω = 1 as neurozo's preset),
            ``drift_analog_weights(86400)``, eval-mode forward under
            ``torch.no_grad`` — only if aihwkit imports (it builds from source;
            the script skips it cleanly otherwise). With ``--aihwkit-src DIR``
            and no installed aihwkit, aihwkit's pure-PyTorch inference tile
            (``TorchInferenceRPUConfig``) is timed from its source tree instead
            (labelled as such: it is not the C++ tile REFERENCES.md measured).

Run (unset the OpenBLAS core-type override in this command only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python experiments/bench/bench_crossbar.py

On a loaded shared machine wall-clock minima are luck; the single-thread
CPU-time ratio is the robust figure:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
        python experiments/bench/bench_crossbar.py --clock process
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np


CLOCK = time.perf_counter


def best_of(fn, repeats):
    fn()                                       # warm-up (JIT, first-touch pages)
    ts = []
    for _ in range(repeats):
        t0 = CLOCK()
        fn()
        ts.append(CLOCK() - t0)
    return min(ts), float(np.median(ts))


def aihwkit_forward(W, x, t, repeats, src=None):
    """Time aihwkit's AnalogLinear eval forward; ((best, median) or None, note)."""
    try:
        import torch
        from aihwkit.nn import AnalogLinear
        from aihwkit.simulator.configs import InferenceRPUConfig
        cfg, note = InferenceRPUConfig(), "aihwkit " + __import__("aihwkit").__version__ + " InferenceRPUConfig"
    except Exception as e:  # not installed / not built
        if not src:
            return None, f"skipped: aihwkit not importable ({type(e).__name__}: {e})"
        # aihwkit's pure-PyTorch inference tile from a source tree (C++ extension stubbed, unused)
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        from validate_aihwkit_source import import_aihwkit

        import_aihwkit(src)
        import torch
        from aihwkit.nn import AnalogLinear
        from aihwkit.simulator.configs import TorchInferenceRPUConfig
        cfg = TorchInferenceRPUConfig()
        note = "aihwkit 1.2 TorchInferenceRPUConfig (pure-PyTorch tile, from source; not the C++ InferenceTile)"
    cfg.mapping.weight_scaling_omega = 1.0                  # as neurozo's pcm preset
    layer = AnalogLinear(W.shape[1], W.shape[0], bias=False, rpu_config=cfg)
    layer.set_weights(torch.from_numpy(W))
    layer.eval()
    layer.program_analog_weights()
    layer.drift_analog_weights(t)
    xt = torch.from_numpy(x)
    Wt = torch.from_numpy(W)

    def fwd():
        with torch.no_grad():
            layer(xt)

    def floor():
        with torch.no_grad():
            xt @ Wt.T

    return (best_of(fwd, repeats), best_of(floor, repeats)), note


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--t", type=float, default=86400.0, help="read time after programming (s)")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--json", default=None)
    ap.add_argument("--aihwkit-src", default=None,
                    help="if aihwkit is not installed: time its pure-PyTorch inference tile from this source tree")
    ap.add_argument("--clock", choices=["wall", "process"], default="wall",
                    help="process: CPU time of this process (robust on a loaded machine when run on one thread: "
                         "NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1)")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.perf_counter if args.clock == "wall" else time.process_time

    from neurozo import substrates
    from neurozo.substrates.weights import DenseWeights

    n, B = args.n, args.batch
    rng = np.random.default_rng(0)
    W = rng.uniform(-1 / np.sqrt(n), 1 / np.sqrt(n), (n, n)).astype(np.float32)
    x = rng.standard_normal((B, n)).astype(np.float32)

    WT = np.ascontiguousarray(W.T)
    floor = min(best_of(lambda: x @ W.T, args.repeats), best_of(lambda: x @ WT, args.repeats))

    sub = substrates.get("pcm", t_inference=args.t)
    syn = sub.synapse
    layer = DenseWeights(W[None].astype(np.float64), np.zeros((1, n)))
    prog = syn.program(layer, rng, sub.costs)
    x3 = x[None]
    read = best_of(lambda: syn.read(prog, x3, rng, sub.costs, t=args.t), args.repeats)
    sub.costs.reset()
    syn.read(prog, x3, rng, sub.costs, t=args.t)
    per_read = dict(sub.costs.counts)

    def fresh_state():
        prog.cache.clear()
        syn.state_at(prog, args.t, rng, sub.costs)

    drift = best_of(fresh_state, max(3, args.repeats // 5))
    program = best_of(lambda: syn.program(layer, rng, sub.costs), max(3, args.repeats // 5))
    full = best_of(lambda: sub.forward([layer], x, rng, ["identity"]), max(3, args.repeats // 5))
    ai, ai_note = aihwkit_forward(W, x, args.t, args.repeats, args.aihwkit_src)

    res = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "shape": f"{n}x{n}, batch {B}, t = {args.t:g} s",
        "clock": args.clock,
        "threads": {k: os.environ.get(k) for k in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
        "floor_gemm_ms": [1e3 * v for v in floor],
        "neurozo_read_ms": [1e3 * v for v in read],
        "ratio_read_vs_floor": read[0] / floor[0],
        "ratio_read_vs_floor_median": read[1] / floor[1],
        "first_read_at_new_t_ms": [1e3 * v for v in drift],
        "program_ms": [1e3 * v for v in program],
        "program_plus_read_ms": [1e3 * v for v in full],
        "per_read_counts": per_read,
        "aihwkit": ai_note,
    }
    if ai is not None:
        ai, torch_floor = ai
        res["aihwkit_forward_ms"] = [1e3 * v for v in ai]
        res["torch_floor_gemm_ms"] = [1e3 * v for v in torch_floor]
        res["ratio_read_vs_aihwkit"] = read[0] / ai[0]
        res["ratio_aihwkit_vs_torch_floor"] = ai[0] / torch_floor[0]
    print(f"{res['shape']} | {res['machine']} | clock {args.clock} | threads {res['threads']} | {res['load']}")
    print(f"floor float32 GEMM           best {floor[0] * 1e3:8.3f} ms  median {floor[1] * 1e3:8.3f} ms")
    print(f"neurozo pcm read (t cached)  best {read[0] * 1e3:8.3f} ms  median {read[1] * 1e3:8.3f} ms"
          f"  → {res['ratio_read_vs_floor']:.2f}× floor (median {res['ratio_read_vs_floor_median']:.2f}×; goal ≤ 3)")
    print(f"first read at a new t        best {drift[0] * 1e3:8.3f} ms  ({drift[0] / floor[0]:.1f}× floor)")
    print(f"program (2·512² writes)      best {program[0] * 1e3:8.3f} ms  ({program[0] / floor[0]:.1f}× floor)")
    print(f"Substrate.forward (prog+rd)  best {full[0] * 1e3:8.3f} ms  ({full[0] / floor[0]:.1f}× floor)")
    if ai is not None:
        print(f"aihwkit AnalogLinear eval    best {ai[0] * 1e3:8.3f} ms  median {ai[1] * 1e3:8.3f} ms"
              f"  → neurozo/aihwkit {res['ratio_read_vs_aihwkit']:.2f} ({ai_note})")
        print(f"torch float32 GEMM floor     best {torch_floor[0] * 1e3:8.3f} ms  (aihwkit/torch floor "
              f"{res['ratio_aihwkit_vs_torch_floor']:.2f}×)")
    else:
        print(f"aihwkit: {ai_note}")
    print(f"per-read counts: {per_read}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    main()
