"""Cross-check neurozo's analog model against IBM aihwkit 1.2's own reference code.

aihwkit builds a C++ extension from source, so it is usually not installed.
Its noise models and its torch-tile IO (``AnalogMVM``) are pure Python,
though: this script imports them from an unpacked aihwkit source tree with
a stub in place of the extension (none of the compared code calls it) and
compares, at ten conductance levels / on random vectors:

1. programming noise: std of g_prog − g (aihwkit ``apply_programming_noise_to_conductance``);
2. drift exponents ν: mean and std (``generate_drift_coefficients``);
3. drift + 1/f read noise at t = 1 day: mean and std of g(t)/g_prog
   (``apply_drift_noise_to_conductance``);
4. the conductance-pair converter (``SinglePairConductanceConverter``);
5. the IO-managed MVM with default ``IOParameters`` and zero output noise
   (DAC, ADC, iterative bound management) on single vectors — aihwkit's
   torch tile tests the bound per batch, the C++ tile per vector; with one
   vector per call they coincide.

Each statistical comparison is a two-sample test on N draws per side: the
z-score of the difference of means (or of standard deviations, SE σ/√(2N))
is printed, |z| < 4 passes.

    pip download aihwkit==1.2.0 --no-deps -d /tmp/aihwkit && tar xzf /tmp/aihwkit/aihwkit-1.2.0.tar.gz -C /tmp/aihwkit
    python experiments/validate_aihwkit_source.py --src /tmp/aihwkit/aihwkit-1.2.0/src
"""

from __future__ import annotations

import argparse
import math
import sys
import types

import numpy as np


def import_aihwkit(src):
    sys.path.insert(0, src)
    stub = types.ModuleType("aihwkit.simulator.rpu_base")

    class _Any:
        def __getattr__(self, k):
            return _Any()

        def __call__(self, *a, **k):
            return _Any()

    stub.devices = stub.tiles = stub.cuda = _Any()
    sys.modules["aihwkit.simulator.rpu_base"] = stub
    import aihwkit.simulator

    aihwkit.simulator.rpu_base = stub
    from aihwkit.inference.converter.conductance import SinglePairConductanceConverter
    from aihwkit.inference.noise.pcm import PCMLikeNoiseModel
    from aihwkit.simulator.parameters.io import IOParameters
    from aihwkit.simulator.tiles.analog_mvm import AnalogMVM

    return PCMLikeNoiseModel, SinglePairConductanceConverter, IOParameters, AnalogMVM


def z_mean(a, b):
    return (a.mean() - b.mean()) / math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)


def z_std(a, b):
    sa, sb = a.std(ddof=1), b.std(ddof=1)
    return (sa - sb) / math.sqrt(sa ** 2 / (2 * a.size) + sb ** 2 / (2 * b.size))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", required=True, help="aihwkit source tree (the folder holding the aihwkit package)")
    ap.add_argument("--n", type=int, default=50_000)
    args = ap.parse_args(argv)
    import torch

    PCM, Conv, IOP, MVM = import_aihwkit(args.src)
    from kernels import crossbar as xk
    from neurozo.substrates.io import IOParams
    from neurozo.substrates.pcm import PCMNoise

    torch.manual_seed(0)
    N = args.n
    ref, ours = PCM(), PCMNoise()
    rng = np.random.default_rng(0)
    worst = 0.0
    print(f"{'g (µS)':>8} | {'z prog std':>10} | {'z ν mean':>8} | {'z ν std':>8} | {'z g(t) mean':>11} | {'z g(t) std':>10}")
    for g in np.geomspace(0.25, 25.0, 10):
        gt = torch.full((N,), float(g), dtype=torch.float64)
        gn = np.full(N, g)
        a = ref.apply_programming_noise_to_conductance(gt).numpy() - g
        b = ours.apply_programming_noise(gn, rng) - g
        z1 = z_std(a, b)
        nu_a = ref.generate_drift_coefficients(gt).numpy()
        nu_b = ours.generate_drift_coefficients(gn, rng)
        z2, z3 = z_mean(nu_a, nu_b), z_std(nu_a, nu_b)
        gp = np.full(N, g)
        nu = np.full(N, 0.06)
        ra = ref.apply_drift_noise_to_conductance(torch.from_numpy(gp), torch.from_numpy(nu), 86400.0).numpy() / g
        rb = ours.at_time(gp, nu, 86400.0, rng) / g
        z4, z5 = z_mean(ra, rb), z_std(ra, rb)
        worst = max(worst, *(abs(z) for z in (z1, z2, z3, z4, z5)))
        print(f"{g:8.3f} | {z1:10.2f} | {z2:8.2f} | {z3:8.2f} | {z4:11.2f} | {z5:10.2f}")

    W = rng.uniform(-0.7, 0.3, (16, 24))
    cs, params = Conv(g_max=25.0).convert_to_conductances(torch.from_numpy(W))
    s = 25.0 / np.abs(W).max()
    conv_ok = (np.allclose(cs[0].numpy(), np.clip(s * W, 0, 25)) and np.allclose(cs[1].numpy(), np.clip(-s * W, 0, 25))
               and abs(float(params["scale_ratio"]) - s) < 1e-9)
    print(f"conductance-pair converter identical: {conv_ok}")

    io = IOP()
    io.out_noise = 0.0
    args_k = IOParams(out_noise=0.0).kernel_args()
    n, m = 128, 64
    Wt = rng.uniform(-1, 1, (m, n)).astype(np.float32)
    exact = steps = 0
    trials = 300
    for k in range(trials):
        x = (rng.standard_normal(n) * rng.uniform(0.1, 4)).astype(np.float32)
        if k % 3 == 0:
            x = np.abs(x)                      # large outputs: bound management rounds
        ya = MVM.matmul(torch.from_numpy(Wt), torch.from_numpy(x[None]), io, is_test=True).numpy()[0]
        yb, rounds = xk.analog_mvm(x[None, None], Wt[None], seed=k, **args_k)
        d = np.abs(ya - yb[0, 0])
        step = io.out_res * 2 * io.out_bound * np.abs(x).max() * 2 ** (rounds[0, 0] - 1)
        exact += int(np.all(d <= 1e-5 * max(1.0, np.abs(ya).max())))
        steps = max(steps, float(d.max() / step))
    print(f"IO-managed MVM: {exact}/{trials} vectors identical, largest difference {steps:.2f} ADC steps")
    ok = worst < 4 and conv_ok and steps <= 1.0 + 1e-6
    print(f"largest |z| = {worst:.2f}; {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
