"""Benchmark: how repeatable is a hook row, and how does its spread shrink with more trials?

Runs the hook suite's agent (the same C trigger loop as `inv bench.hooks`) on this machine's own
kernel for one hook, at several trial counts, and prints for each method the median added ns/op,
its bootstrap 95% CI and the spread (CI width / median). Not a test: it prints figures.

    ./labctl bench.repeat                      # tracepoint, body variant, 5/10/20/40 trials
    ./labctl bench.repeat --hook raw_tp --trials 5,10,20,40,80
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.agent.common import cpu_model  # noqa: E402
from lab.core.config import Paths  # noqa: E402
from lab.guest.bpfbuild import build_bpf  # noqa: E402

METHODS = ("wall_abba", "cpu_abba", "talk_stime")


def run_hook(hook: str, variant: str, trials: int, ops: int, bpf_dir: Path) -> list[dict]:
    params = {"hooks": [hook], "variants": [variant], "trials": trials, "ops": ops, "stats_trials": 1}
    out = subprocess.run([sys.executable, "-m", "lab.agent", "--suite", "hooks", "--bpf-dir", str(bpf_dir),
                          "--params", json.dumps(params)], cwd=ROOT, capture_output=True, text=True, check=False)
    rows = [json.loads(ln) for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not rows:
        sys.exit(f"the agent produced no rows (exit {out.returncode}): {out.stderr[-1500:]}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hook", default="tracepoint")
    ap.add_argument("--variant", default="body")
    ap.add_argument("--trials", default="5,10,20,40", help="comma-separated trial counts")
    ap.add_argument("--ops", type=int, default=20000, help="opens per trial (the default playbook's)")
    a = ap.parse_args()
    paths = Paths()
    build_bpf(paths)
    print(f"kernel {os.uname().release}  accelerator host  CPU {cpu_model()} x{os.cpu_count()}  "
          f"hook {a.hook} ({a.variant})  ops/trial {a.ops}")
    print(f"{'trials':>6s} {'method':11s} {'median ns':>10s} {'95% CI':>22s} {'spread':>8s}  events=triggers")
    for n in [int(x) for x in a.trials.split(",")]:
        for r in run_hook(a.hook, a.variant, n, a.ops, paths.build / "bpf"):
            if r.get("method") not in METHODS:
                continue
            if r["status"] != "ok":
                print(f"{n:6d} {r['method']:11s} {r['status']}: {r['reason'][:100]}")
                continue
            med, lo, hi = r["ns_median"], r["ns_ci_low"], r["ns_ci_high"]
            spread = f"{(hi - lo) / abs(med) * 100:7.1f}%" if med else "     n/a"
            print(f"{n:6d} {r['method']:11s} {med:10.1f} [{lo:9.1f}, {hi:9.1f}] {spread}  "
                  f"{r['events']}={r['triggers']}", flush=True)


if __name__ == "__main__":
    main()
