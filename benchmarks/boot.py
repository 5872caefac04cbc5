"""Benchmark: lab.up boot-to-SSH next to bare virtme-ng (`vng --run K --root R --exec true`) on the
same kernel, root and accelerator, alternated in one run; prints medians and their ratio.

    ./labctl bench.boot --kernel 6.12 --reps 5

Target: lab.up at most 1.3x bare virtme-ng. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import accel, images, kernels, vm  # noqa: E402
from lab.agent.common import cpu_model  # noqa: E402
from lab.config import Paths  # noqa: E402
from lab.labs import Lab  # noqa: E402
from lab.playbooks import VmSpec  # noqa: E402


def bare_vng(k, img, acc, spec: VmSpec) -> float:
    cmd = vm.vng_command(k, img, acc, vm.VmSpec(spec.cpus, spec.memory, 0, "bench-bare"), Path("/nonexistent"),
                         exec_cmd="true")
    cmd.remove("--verbose")  # as a user would run it (with --verbose vng exits 255 on the console fallback)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    t0 = time.monotonic()
    subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False, env=env)  # exit 255 here: see README (virtme console fallback)
    return time.monotonic() - t0


def lab_up(kernel: str, spec: VmSpec) -> tuple[float, float]:
    lab = Lab("bench-boot", Paths())
    t0 = time.monotonic()
    st = lab.up(kernel, spec, log=lambda m: None)
    total = time.monotonic() - t0
    lab.down(log=lambda m: None)
    return total, st.boot_seconds or float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernel", default="6.12")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--memory", default="2G")
    a = ap.parse_args()
    spec = VmSpec(a.cpus, a.memory)
    k = kernels.resolve(a.kernel)
    img = images.image_for("debian-12", k)
    acc = accel.choose(k.vmlinuz, Paths().cache)
    lab_up(a.kernel, spec)  # warm caches (kernel, image, accelerator verdict, page cache)
    bare, total, boot = [], [], []
    for i in range(a.reps):  # alternate so drift hits both alike
        bare.append(bare_vng(k, img, acc, spec))
        t, b = lab_up(a.kernel, spec)
        total.append(t)
        boot.append(b)
        print(f"  rep {i + 1}: bare vng --exec true {bare[-1]:.2f} s   lab.up {t:.2f} s (boot-to-SSH {b:.2f} s)",
              flush=True)

    def fmt(xs: list[float]) -> str:
        return f"median {statistics.median(xs):.2f} s  [min {min(xs):.2f}, max {max(xs):.2f}]"

    print(f"kernel {k.release}  accelerator {acc.name}  host CPU {cpu_model()} x{os.cpu_count()}  "
          f"guest {a.cpus} vCPU {a.memory}  reps {a.reps}")
    print(f"bare virtme-ng (--exec true):     {fmt(bare)}")
    print(f"lab.up (call to SSH answering):   {fmt(total)}")
    print(f"lab.up boot-to-SSH (launch->SSH): {fmt(boot)}")
    print(f"ratio lab.up / bare vng: {statistics.median(total) / statistics.median(bare):.2f}x "
          f"(target <= 1.3x)")


if __name__ == "__main__":
    main()
