"""Benchmark: the kernel matrix's wall time with guests in parallel vs one after another.

Runs `bench.run PLAYBOOK` twice in one go, first with as many guests at once as the host allows,
then with `--jobs 1`, and prints both wall times (each also split into preparing kernels/images
and running jobs) and their ratio. Kernels and images are prepared before the first timing, so
neither run pays for downloads. Not a test: it prints figures.

    ./labctl bench.matrix                       # playbooks/smoke.yaml
    ./labctl bench.matrix --playbook nightly
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.core.config import Paths  # noqa: E402
from lab.run import playbooks  # noqa: E402


def timed_run(playbook: str, jobs: int, results: Path) -> tuple[float, dict]:
    env = dict(os.environ, LAB_RESULTS=str(results))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(ROOT), "bench.run", playbook,
                           "--jobs", str(jobs), "--no-report"], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"bench.run --jobs {jobs} failed (exit {proc.returncode}):\n"
                 f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    m = json.loads(max(results.glob("matrix-*/matrix.json"), key=lambda p: p.stat().st_mtime).read_text())
    return wall, m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--playbook", default="smoke")
    a = ap.parse_args()
    pb = playbooks.load(a.playbook)
    from lab.guest import images
    from lab.kernels import catalog as kernels

    paths = Paths()
    for k in pb.kernels:  # downloads and image builds are not what this measures
        images.image_for("debian-12", kernels.resolve(k, paths), paths, log=lambda m: None)
    results = Path(os.environ.get("LAB_RESULTS", "/tmp/lab-matrix-bench"))
    results.mkdir(parents=True, exist_ok=True)
    rows = []
    for jobs, label in ((0, "parallel (as the host allows)"), (1, "one after another (--jobs 1)")):
        wall, m = timed_run(str(pb.path), jobs, results)
        job_s = sum(j["seconds"] or 0 for j in m["jobs"])
        rows.append((label, wall, job_s))
        print(f"{label:32s} wall {wall:7.1f} s   (sum of job times {job_s:.0f} s, {len(m['jobs'])} jobs)", flush=True)
    print(f"ratio parallel / sequential: {rows[0][1] / rows[1][1]:.2f}x  "
          f"(playbook {pb.name}: {', '.join(pb.matrix)}; host cores {os.cpu_count()})")


if __name__ == "__main__":
    main()
