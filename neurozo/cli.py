"""The ``neurozo`` command line.

    neurozo list                      every task, model, substrate and learner with its parameters
    neurozo run [FILE.toml] [flags]   one run; writes its record to --out
    neurozo compare [--preset quick]  the main job: learners × substrates, table + plots
    neurozo sweep FILE.toml           a sweep spec (grid/zip axes) on Dask
    neurozo report DIR                consolidate a result store into a table and plots
    neurozo bench                     side-by-side benchmarks, rewrites docs/benchmarks.md

Bad input exits with status 2 and a one-line message naming the parameter.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from typing import Any, Dict, List, Optional

from ._validate import fail

__all__ = ["main", "parse_set", "load_toml"]


def _toml():
    try:
        import tomllib  # Python ≥ 3.11
    except ModuleNotFoundError:  # pragma: no cover
        import tomli as tomllib
    return tomllib


def load_toml(path: str) -> Dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return _toml().load(f)
    except FileNotFoundError:
        fail("FILE", path, "file not found")
    except _toml().TOMLDecodeError as e:
        fail("FILE", path, f"not valid TOML ({e})")


def _value(text: str):
    try:
        return _toml().loads(f"v = {text}")["v"]
    except Exception:
        return text


def parse_set(items: List[str]) -> Dict[str, Any]:
    """``["learner.sigma=0.1", "budget=5000"]`` → nested dict of overrides."""
    out: Dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            fail("--set", item, "must look like key=value or component.param=value")
        key, val = item.split("=", 1)
        parts = key.strip().split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = _value(val.strip())
    return out


def _merge(base: Dict[str, Any], over: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), (dict, str)):
            cur = out[k] if isinstance(out[k], dict) else {"name": out[k]}
            out[k] = _merge(cur, v)
        else:
            out[k] = v
    return out


def run_config(args) -> Dict[str, Any]:
    from .config import COMPONENTS, RUN_KEYS

    cfg: Dict[str, Any] = {}
    if args.file:
        cfg = load_toml(args.file)
        unknown = sorted(set(cfg) - set(RUN_KEYS))
        if unknown:
            fail("FILE", args.file, f"unknown key(s) {unknown}; allowed: {list(RUN_KEYS)}")
    flags = {"task": args.task, "model": args.model, "substrate": args.substrate, "learner": args.learner,
             "budget": args.budget, "seed": args.seed, "batch_size": args.batch_size,
             "eval_every": args.eval_every, "backend": args.backend}
    for k, v in flags.items():
        if v is not None:
            if k in COMPONENTS and isinstance(cfg.get(k), dict) and cfg[k].get("name") != v:
                cfg[k] = {"name": v}
            elif k in COMPONENTS and isinstance(cfg.get(k), dict):
                pass
            else:
                cfg[k] = v
    overrides = parse_set(args.set)
    defaults = {"task": "digits", "model": "mlp", "substrate": "ideal", "learner": "openes"}
    for k, v in overrides.items():
        if isinstance(v, dict) and "name" not in v and k not in cfg and k in defaults:
            cfg[k] = defaults[k]
    cfg = _merge(cfg, overrides)
    unknown = sorted(set(cfg) - set(RUN_KEYS))
    if unknown:
        fail("--set", unknown, f"unknown key(s); allowed: {list(RUN_KEYS)}")
    return cfg


def cmd_list(args) -> int:
    from . import learners, models, substrates, tasks

    regs = [("tasks", tasks.registry), ("models", models.registry), ("substrates", substrates.registry),
            ("synapse models", substrates.synapses), ("neuron models", substrates.neurons),
            ("learners", learners.registry)]
    if args.json:
        print(json.dumps({title: {n: {k: (None if v is inspect.Parameter.empty else v) for k, v in p.items()}
                                  for n, p in reg.describe().items()} for title, reg in regs},
                         indent=1, default=str))
        return 0
    for title, reg in regs:
        print(f"{title}:")
        for name, params in reg.describe().items():
            doc = (inspect.getdoc(reg.factory(name)) or "").split("\n")[0]
            ps = ", ".join(f"{k}" if v is inspect.Parameter.empty else f"{k}={v!r}" for k, v in params.items())
            print(f"  {name:<22} {doc}")
            if ps:
                print(f"  {'':<22}   ({ps})")
        print()
    return 0


def cmd_run(args) -> int:
    from .run import run

    cfg = run_config(args)
    res = run(**cfg, progress=False if args.no_progress else None, store=args.out)
    from .learners import trains_on_substrate

    f = res.final
    energy = (f"energy {f.get('energy_pj', 0) / 1e6:.3g} µJ" if trains_on_substrate(res.config["learner"]["name"])
              else "energy not modelled (trains off the substrate)")
    print(f"status {res.status}{(' (' + res.message + ')') if res.message else ''}; "
          f"evaluations {f['evaluations']}; test acc {f.get('test_acc', float('nan')):.4f}; "
          f"test loss {f.get('test_loss', float('nan')):.4g}; {energy}; "
          f"wall {f['wall_time']:.1f} s")
    print(f"record: {args.out}/{res.key}.json")
    return 0


def cmd_compare(args) -> int:
    from .compare import compare

    seeds = list(range(args.seeds)) if args.seeds is not None else None
    table = compare(args.preset, out=args.out, progress=False if args.no_progress else None,
                    budget=args.budget, seeds=seeds, backend=args.backend)
    from .compare import to_markdown

    print(to_markdown(table))
    return 0


def _missing(name: str):
    def cmd(args) -> int:
        print(f"neurozo {name}: not available in this build", file=sys.stderr)
        return 2
    return cmd


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="neurozo", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Run 'neurozo COMMAND --help' for a command's options.")
    p.add_argument("--version", action="version", version=f"neurozo {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("list", help="every registered task/model/substrate/learner with parameters and defaults")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("run", help="one run from flags and/or a TOML file; writes its record",
                       description="One run. A TOML file may hold the keys task, model, substrate, learner "
                                   "(each a name or a table with 'name' and parameters), budget, seed, "
                                   "batch_size, eval_every, backend. Flags override the file.")
    s.add_argument("file", nargs="?", help="TOML run file")
    s.add_argument("--task")
    s.add_argument("--model")
    s.add_argument("--substrate")
    s.add_argument("--learner")
    s.add_argument("--budget", type=int, help="mini-batch forward evaluations")
    s.add_argument("--seed", type=int)
    s.add_argument("--batch-size", dest="batch_size", type=int)
    s.add_argument("--eval-every", dest="eval_every", type=int)
    s.add_argument("--backend", choices=["cpu", "cuda"])
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="set a parameter, e.g. learner.sigma=0.1 or substrate.dtype='float64' (repeatable)")
    s.add_argument("--out", default="results", help="result store directory (default: results)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("compare", help="the main job: every learner on every substrate of a preset")
    s.add_argument("--preset", default="quick", help="quick (default, < 3 min) or full")
    s.add_argument("--out", default="compare-out", help="output directory (default: compare-out)")
    s.add_argument("--budget", type=int, help="override the preset's budget")
    s.add_argument("--seeds", type=int, help="number of seeds (0..N-1) instead of the preset's")
    s.add_argument("--backend", choices=["cpu", "cuda"], help="cpu (default) or cuda")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_compare)

    _extend(sub)
    for name, helptext in [("sweep", "run a TOML sweep spec on Dask"),
                           ("report", "consolidate a result store into a table and plots"),
                           ("bench", "run the side-by-side benchmarks")]:
        if name in sub.choices:  # defined by neurozo.sweep.add_cli_commands
            continue
        s = sub.add_parser(name, help=helptext)
        s.set_defaults(func=_missing(name))
    return p


def _extend(sub) -> None:
    """Commands defined in other modules (sweep, report, bench); placeholders fill any that are missing."""
    try:
        from . import sweep as _sweep
    except ImportError:
        return
    add = getattr(_sweep, "add_cli_commands", None)
    if add is not None:
        add(sub)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as e:
        print(f"neurozo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # e.g. backend='cuda' without a GPU
        print(f"neurozo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
