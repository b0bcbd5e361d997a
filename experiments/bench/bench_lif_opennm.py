"""Open Neuromorphic SNN benchmark configuration: Linear(n, n) + LIF, forward only.

T = 500 steps, batch 16, randn input (T, B, n), float32, CPU, n ∈ {512, 4096}
(16384 with --big). Measured in one process, best of ``--repeats`` after a
warm-up, and reported as ratios:

* floor      one float32 GEMM (T·B)×n by n×n with numpy (the same FLOPs);
* neurozo    the ``lif`` substrate's forward of the layer (one GEMM for all T
             steps + the LIF scan, spike counts out), and the same with the
             full spike train written (``kernels.lif.lif_scan`` write_spikes);
* snnTorch   ``nn.Linear`` + ``snn.Leaky`` stepped over T (torch.no_grad).

Second layer, spike input of 5% density: the event-driven accumulate
(``kernels.lif.spike_accumulate``) against the dense floor GEMM of the same
product, and the full substrate read + LIF (which picks the event path by
measured density). A density sweep locates the crossover used by
``kernels.lif.EVENT_MAX_DENSITY``.

Run (unset the OpenBLAS core-type override in this command only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python experiments/bench/bench_lif_opennm.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def best_of(fn, repeats):
    fn()                                       # warm-up (JIT, first-touch pages)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), float(np.median(ts))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[512, 4096])
    ap.add_argument("--big", action="store_true", help="add n = 16384 (needs ~6 GB)")
    ap.add_argument("--T", type=int, default=500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer-repeats", type=int, default=1, help="timed snnTorch runs after its warm-up")
    ap.add_argument("--no-snntorch", action="store_true")
    ap.add_argument("--sweep", action="store_true", help="density sweep of event vs GEMM")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()

    import neurozo
    from kernels import lif as lif_k
    from neurozo.substrates.weights import DenseWeights

    sizes = list(args.sizes) + ([16384] if args.big else [])
    T, B = args.T, args.batch
    rows = []
    for n in sizes:
        rng = np.random.default_rng(n)
        x = rng.standard_normal((T, B, n), dtype=np.float32)
        bound = 1 / np.sqrt(n)
        W = rng.uniform(-bound, bound, (n, n)).astype(np.float32)
        b = rng.uniform(-bound, bound, n).astype(np.float32)
        x2 = x.reshape(T * B, n)
        r = {"n": n, "T": T, "batch": B}

        r["floor_s"], r["floor_med_s"] = best_of(lambda: x2 @ W.T, args.repeats)

        sub = neurozo.substrates.get("lif", T=T, beta=0.9)
        prog = sub.program([DenseWeights(W[None], b[None])], np.random.default_rng(0))
        dev = np.random.default_rng(0)
        r["neurozo_s"], r["neurozo_med_s"] = best_of(lambda: sub.run(prog, x, dev, ["relu"]), args.repeats)

        r["read_s"], _ = best_of(lambda: sub.synapse.read(prog[0], x[None], dev, sub.costs), args.repeats)

        def layer_with_spikes():
            z = sub.synapse.read(prog[0], x[None], dev, sub.costs)
            return lif_k.lif_scan(z.reshape(1, T, B * n), T, 0.9, 1.0, write_spikes=True)

        r["neurozo_spikes_s"], r["neurozo_spikes_med_s"] = best_of(layer_with_spikes, args.repeats)
        spikes = layer_with_spikes()[0]
        r["density_layer1"] = float(spikes.mean())

        if not args.no_snntorch:
            import snntorch as snn
            import torch

            fc = torch.nn.Linear(n, n)
            with torch.no_grad():
                fc.weight.copy_(torch.from_numpy(W))
                fc.bias.copy_(torch.from_numpy(b))
            lif = snn.Leaky(beta=0.9)
            xt = torch.from_numpy(x)

            def snntorch_forward():
                with torch.no_grad():
                    mem = lif.reset_mem()
                    out = []
                    for t in range(T):
                        spk, mem = lif(fc(xt[t]), mem)
                        out.append(spk)
                    return torch.stack(out)

            r["snntorch_s"], r["snntorch_med_s"] = best_of(snntorch_forward, args.peer_repeats)
            r["torch_threads"] = torch.get_num_threads()

        # second layer: spike inputs of the requested density
        s_in = (rng.random((1, T * B, n), dtype=np.float32) < args.density).astype(np.float32)
        r["density_in"] = float(s_in.mean())
        r["floor_spikes_s"], _ = best_of(lambda: s_in[0] @ W.T, args.repeats)
        r["event_s"], r["event_med_s"] = best_of(lambda: lif_k.spike_accumulate(s_in, W[None], b[None]),
                                                 args.repeats)

        def layer2():
            z = sub.synapse.read(prog[0], s_in.reshape(1, T, B, n), dev, sub.costs, spiking=True)
            return lif_k.lif_scan(z.reshape(1, T, B * n), T, 0.9, 1.0, write_spikes=True)

        r["layer2_s"], _ = best_of(layer2, args.repeats)
        if args.sweep:
            sweep = {}
            for d in (0.01, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3):
                s_d = (rng.random((1, T * B, n), dtype=np.float32) < d).astype(np.float32)
                te, _ = best_of(lambda: lif_k.spike_accumulate(s_d, W[None], b[None]), max(1, args.repeats - 1))
                tg, _ = best_of(lambda: s_d[0] @ W.T, max(1, args.repeats - 1))
                sweep[d] = te / tg
                print(f"  n={n} density {d:.2f}: event/GEMM = {te / tg:.2f}", flush=True)
            r["sweep_event_over_gemm"] = sweep
        rows.append(r)
        f = r["floor_s"]
        line = (f"n={n}: floor {f:.3f} s | neurozo {r['neurozo_s']:.3f} s ({r['neurozo_s'] / f:.2f}x floor), "
                f"with spike train {r['neurozo_spikes_s']:.3f} s ({r['neurozo_spikes_s'] / f:.2f}x)")
        if "snntorch_s" in r:
            line += (f" | snnTorch {r['snntorch_s']:.3f} s ({r['snntorch_s'] / f:.2f}x floor; "
                     f"neurozo {r['snntorch_s'] / r['neurozo_spikes_s']:.1f}x faster)")
        print(line, flush=True)
        print(f"  of which the synapse read (dense_population GEMM + bias) {r['read_s']:.3f} s "
              f"({r['read_s'] / f:.2f}x floor); layer-1 spike density {r['density_layer1']:.3f}", flush=True)
        print(f"  layer 2, {r['density_in']:.3f} spike density: event-driven {r['event_s']:.3f} s = "
              f"{r['event_s'] / r['floor_spikes_s']:.2f}x the dense floor ({r['floor_spikes_s']:.3f} s); "
              f"read + LIF {r['layer2_s']:.3f} s = {r['layer2_s'] / r['floor_spikes_s']:.2f}x", flush=True)
        del x, x2, W, spikes, s_in

    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(), "numpy": np.__version__,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    print(json.dumps(meta))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
