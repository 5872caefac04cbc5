"""Benchmark: what instruction counting costs in wall time. The same playbook on one kernel, as a
whole `bench.<suite>` run (boot, push, suite, pull, stop), alternately under plain TCG and under
icount; prints each run's wall seconds, the medians and their ratio, and how many of the rows were
ok in each mode.

    ./labctl bench.icount --kernel 6.12 --playbook default --suite hooks --reps 1

The playbook's `icount:` overrides apply under icount (that is the point: exact counts need fewer
trials), so this is the cost of the mode as a user runs it. Target: icount at most ~1.5x plain TCG.
Not a test: it prints figures. Boots one guest at a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one(kernel: str, playbook: str, suite: str, accel: str) -> tuple[float, dict[str, int], str]:
    """(wall seconds, rows by status, run directory) of one `bench.<suite>` run under `accel`."""
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(ROOT), f"bench.{suite}",
                           "--kernel", kernel, "--playbook", playbook, "--accel", accel],
                          cwd=ROOT, capture_output=True, text=True)
    took = time.monotonic() - t0
    run_dir = next((ln.rsplit(" ", 1)[-1] for ln in proc.stdout.splitlines() if "rows in " in ln), "")
    counts: dict[str, int] = {}
    if run_dir and (Path(run_dir) / f"{suite}.jsonl").exists():
        for line in (Path(run_dir) / f"{suite}.jsonl").read_text().splitlines():
            st = json.loads(line).get("status", "?")
            counts[st] = counts.get(st, 0) + 1
    if proc.returncode not in (0, 1):
        sys.exit(f"bench.{suite} under {accel} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return took, counts, run_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernel", default="6.12")
    ap.add_argument("--playbook", default="default")
    ap.add_argument("--suite", default="hooks", choices=("hooks", "maps", "tools"))
    ap.add_argument("--reps", type=int, default=1, help="alternated runs per mode")
    a = ap.parse_args()
    times: dict[str, list[float]] = {"tcg": [], "icount": []}
    for r in range(a.reps):
        for accel in (("tcg", "icount") if r % 2 == 0 else ("icount", "tcg")):
            took, counts, run_dir = one(a.kernel, a.playbook, a.suite, accel)
            times[accel].append(took)
            print(f"{accel:7s} run {r + 1}: {took:7.1f} s  rows {counts}  {run_dir}", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nkernel {a.kernel}, playbook {a.playbook}, suite {a.suite}, {a.reps} run(s) per mode, "
          f"1 guest at a time on {Path('/proc/cpuinfo').read_text().count('processor')} host CPUs")
    print(f"median wall time: plain TCG {med['tcg']:.1f} s, icount {med['icount']:.1f} s, "
          f"ratio icount / TCG {med['icount'] / med['tcg']:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
