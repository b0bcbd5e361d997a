"""``neurozo bench``: run the side-by-side benchmarks and rewrite the table in ``docs/benchmarks.md``.

Convention for a bench script (``experiments/bench/bench_<topic>.py``):

* it runs with no arguments from the repository root, measures neurozo and
  its peer (or floor) in the same process, and prints one line per result::

      BENCH {"case": "n=4096", "neurozo": 0.93, "peer": "snnTorch", "peer_value": 4.46,
             "unit": "s", "ratio": 4.8, "goal": ">= 5x", "met": false}

  Every field is optional; ``bench`` defaults to the script's topic, and
  other fields are shown in the table's details column.
* a script that prints no ``BENCH`` line is read from the file its
  ``--json FILE`` option writes, when it declares one (``{"rows": [...]}``,
  a list of objects or one object; ``meta`` is left out), else from its last
  output line when that is a JSON object (or a list of objects).
* a peer that is not installed is skipped by the script, which prints
  ``BENCH {"case": ..., "peer": "cbx", "skipped": "cbx not installed"}``
  (and still measures neurozo against its floor where it can); a script that
  cannot run at all prints only such a line and exits 0.
* ``NEUROZO_BENCH_QUICK=1`` (``neurozo bench --quick``) asks for smoke sizes;
  scripts that do not read it run their normal sizes.
* a non-zero exit, or no result line, is reported as an error row; the other
  scripts still run.

The table between ``<!-- neurozo bench: begin -->`` and ``<!-- neurozo
bench: end -->`` in the doc is replaced (the markers are appended if
missing; the rest of the file is kept), headed by the date, the machine
(CPU model, cores, memory, load average before the run) and the command.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ._validate import check_float, fail

__all__ = ["bench", "discover", "run_script", "parse_output", "render_table", "rewrite_doc", "machine",
           "BEGIN", "END"]

BEGIN = "<!-- neurozo bench: begin -->"
END = "<!-- neurozo bench: end -->"
_KNOWN = ("bench", "case", "neurozo", "peer", "peer_value", "unit", "ratio", "goal", "met", "skipped", "error")


def _checkout() -> Path:
    return Path(__file__).resolve().parent.parent


def discover(directory=None, only: Sequence[str] = ()) -> List[Path]:
    """``bench_*.py`` scripts in ``directory`` (default: this checkout's ``experiments/bench``)."""
    d = Path(directory) if directory else _checkout() / "experiments" / "bench"
    if not d.is_dir():
        fail("--dir", str(d), "must be a folder of bench_*.py scripts (experiments/bench in a neurozo checkout)")
    scripts = sorted(d.glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if any(o == s.name or o == s.stem or o in s.stem for o in only)]
        if not scripts:
            fail("scripts", list(only), f"match no bench script in {d}; have: "
                                        f"{[s.name for s in sorted(d.glob('bench_*.py'))]}")
    return scripts


def parse_output(stdout: str) -> List[Dict[str, Any]]:
    """Result rows of a script's stdout (``BENCH {json}`` lines, else a final JSON line)."""
    rows = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("BENCH "):
            try:
                obj = json.loads(line[6:])
            except json.JSONDecodeError:
                rows.append({"error": f"unparsable BENCH line: {line[:80]}"})
                continue
            rows.extend(obj if isinstance(obj, list) else [obj])
    if rows:
        return [r if isinstance(r, dict) else {"error": f"BENCH value is not an object: {r!r}"[:80]} for r in rows]
    for line in reversed([ln.strip() for ln in stdout.splitlines() if ln.strip()]):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            break
        if isinstance(obj, dict):
            return [obj]
        if isinstance(obj, list) and all(isinstance(o, dict) for o in obj):
            return obj
        break
    return []


def _json_rows(path: Path) -> List[Dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return []
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        data = data["rows"]
    if isinstance(data, dict):
        data = [{k: v for k, v in data.items() if k != "meta"}]
    if isinstance(data, list):
        return [r for r in data if isinstance(r, dict)]
    return []


def _declares_json(path: Path) -> bool:
    try:
        text = path.read_text()
    except OSError:
        return False
    return "add_argument(\"--json\"" in text or "add_argument('--json'" in text


def run_script(path: Path, quick: bool = False, timeout: float = 1800.0, cwd: Optional[Path] = None) -> Dict[str, Any]:
    """Run one script; returns {script, rows, returncode, wall_s, stderr_tail}."""
    import tempfile

    env = dict(os.environ)
    if quick:
        env["NEUROZO_BENCH_QUICK"] = "1"
    topic = path.stem[len("bench_"):] if path.stem.startswith("bench_") else path.stem
    cmd = [sys.executable, str(path)]
    jfile = None
    if _declares_json(path):
        fd, jfile = tempfile.mkstemp(prefix=f"neurozo-bench-{topic}-", suffix=".json")
        os.close(fd)
        os.unlink(jfile)
        cmd += ["--json", jfile]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(cwd or _checkout()),
                           env=env)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc = None
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = f"timed out after {timeout:g} s"
    wall = time.perf_counter() - t0
    rows = parse_output(out) if "BENCH " in out else []
    if not rows and jfile is not None:
        rows = _json_rows(Path(jfile))
    if not rows:
        rows = parse_output(out)
    if jfile is not None and os.path.exists(jfile):
        os.unlink(jfile)
    tail = [ln for ln in (err or "").strip().splitlines() if ln.strip()][-1:] or [""]
    if rc != 0:
        rows.append({"error": f"exit {rc}: {tail[0][:160]}" if rc is not None else err})
    elif not rows:
        rows.append({"error": "printed no BENCH line"})
    for r in rows:
        r.setdefault("bench", topic)
    return {"script": path.name, "rows": rows, "returncode": rc, "wall_s": wall, "stderr_tail": tail[0]}


def _num(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            return "–"
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    return "" if v is None else str(v)


_HIDDEN = ("machine", "date", "load", "loadavg", "meta", "hostname")  # the table's header says these


def _normalise(r: Dict[str, Any]) -> Dict[str, Any]:
    """Map a script's own field names onto the table's columns where the meaning is plain."""
    r = {k: v for k, v in r.items() if k not in _HIDDEN}
    if "ratio" not in r:
        key = next((k for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                    and ("ratio" in k or "speedup" in k)), None)
        if key is not None:
            r["ratio"] = r.pop(key)
            r["ratio_of"] = key
    if "skipped" not in r:
        skips = [f"{k}: {v[len('skipped'):].lstrip(': ')}" for k, v in r.items()
                 if isinstance(v, str) and v.lower().startswith("skipped")]
        if skips:
            r = {k: v for k, v in r.items() if not (isinstance(v, str) and v.lower().startswith("skipped"))}
            r["skipped"] = "; ".join(skips)
    return r


def render_table(results: List[Dict[str, Any]]) -> str:
    lines = ["| bench | case | neurozo | peer | peer value | ratio | goal | met | details |",
             "|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        for r in map(_normalise, res["rows"]):
            unit = f" {r['unit']}" if r.get("unit") else ""
            nz = _num(r.get("neurozo"))
            pv = _num(r.get("peer_value"))
            details = []
            if r.get("skipped"):
                details.append(f"skipped: {r['skipped']}")
            if r.get("error"):
                details.append(f"error: {r['error']}")
            extra = [f"{k}={_num(v)}" for k, v in r.items() if k not in _KNOWN and not isinstance(v, (dict, list))]
            extra += [f"{k}={json.dumps(v, default=str)}" for k, v in r.items()
                      if k not in _KNOWN and isinstance(v, (dict, list))]
            details += extra
            text = "; ".join(details)
            details = [text if len(text) <= 300 else text[:297] + "..."]
            ratio = r.get("ratio")
            cells = [str(r.get("bench", "")), _num(r.get("case")), nz + (unit if nz else ""), _num(r.get("peer")),
                     pv + (unit if pv else ""), (_num(ratio) + "×") if isinstance(ratio, (int, float)) else _num(ratio),
                     _num(r.get("goal")), _num(r.get("met")), "; ".join(details)]
            lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cores = os.cpu_count() or 0
    mem = ""
    try:
        kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    load = ""
    try:
        load = ", load average {:.2f} / {:.2f} / {:.2f} (1/5/15 min) at start".format(*os.getloadavg())
    except OSError:  # pragma: no cover
        pass
    return f"{cpu}, {cores} cores{mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}{load}"


def rewrite_doc(doc: Path, block: str) -> None:
    """Replace the text between the markers in ``doc`` with ``block`` (create the doc or markers if missing)."""
    doc = Path(doc)
    body = f"{BEGIN}\n{block.rstrip()}\n{END}"
    if doc.exists():
        text = doc.read_text()
        if BEGIN in text and END in text and text.index(BEGIN) < text.index(END):
            new = text[: text.index(BEGIN)] + body + text[text.index(END) + len(END):]
        else:
            new = text.rstrip() + "\n\n## Latest `neurozo bench` run\n\n" + body + "\n"
    else:
        doc.parent.mkdir(parents=True, exist_ok=True)
        new = ("# Benchmarks\n\nEvery figure is a ratio against a peer or a floor measured in the same process. "
               "The table below is rewritten by `neurozo bench`.\n\n" + body + "\n")
    tmp = doc.with_name(f".{doc.name}.tmp")
    tmp.write_text(new)
    os.replace(tmp, doc)


def bench(scripts: Sequence[str] = (), directory=None, doc=None, quick: bool = False, timeout: float = 1800.0,
          write: bool = True, command: Optional[str] = None, verbose: bool = True) -> int:
    """Run the bench scripts and (unless ``write=False``) rewrite the doc's table. Returns 0, or 1 on errors."""
    timeout = check_float("timeout", timeout, 0, lo_open=True)
    paths = discover(directory, scripts)
    if not paths:
        fail("--dir", str(directory or "experiments/bench"), "holds no bench_*.py script")
    doc = Path(doc) if doc else _checkout() / "docs" / "benchmarks.md"
    mach = machine()
    when = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    command = command or "neurozo bench" + (" --quick" if quick else "")
    results = []
    for p in paths:
        if verbose:
            print(f"running {p.name} ...", flush=True)
        res = run_script(p, quick=quick, timeout=timeout)
        results.append(res)
        if verbose:
            state = "error" if any("error" in r for r in res["rows"]) else "ok"
            print(f"  {state}: {len(res['rows'])} row(s) in {res['wall_s']:.1f} s", flush=True)
    table = render_table(results)
    block = (f"Run {when} on {mach}, with `{command}`"
             + (" (smoke sizes: NEUROZO_BENCH_QUICK=1)" if quick else "") + ".\n\n" + table)
    if verbose:
        print()
        print(table)
    if write:
        rewrite_doc(doc, block)
        if verbose:
            print(f"rewrote the table in {doc}")
    return 1 if any("error" in r for res in results for r in res["rows"]) else 0
