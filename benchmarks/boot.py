"""Benchmark: lab.up boot-to-SSH next to bare virtme-ng (`vng --run K --root R --exec 'printf ...'`)
on the same kernel, root and accelerator, alternated in one run; prints medians and their ratio.
A bare run counts only if the marker its command printed is in vng's output (else it stops with
the output's last lines: the guest never ran the command, so its time means nothing).

    ./labctl bench.boot --kernel 6.12 --reps 5

Target: lab.up at most 1.3x bare virtme-ng. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.agent.common import cpu_model  # noqa: E402
from lab.core.config import Paths  # noqa: E402
from lab.guest import accel, images, vm
from lab.kernels import catalog as kernels  # noqa: E402
from lab.run.labs import Lab  # noqa: E402
from lab.run.playbooks import VmSpec  # noqa: E402


class GuestDidNotRun(RuntimeError):
    """The bare guest's output lacks the marker its command prints: it did not run the command."""


def bare_vng(k, img, acc, spec: VmSpec, timeout: float = 600) -> float:
    """Seconds for a bare `vng --run ... --exec 'printf ...'`; raises GuestDidNotRun unless the
    marker printed by the guest's command is in vng's output."""
    token = secrets.token_hex(6)
    marker = f"lab-boot-{token}"  # only the command's output joins the two words: its text has a space
    cmd = vm.vng_command(k, img, acc, vm.VmSpec(spec.cpus, spec.memory, 0, "bench-bare"), Path("/nonexistent"),
                         exec_cmd=f"printf '%s-%s\\n' lab-boot {token}")
    # --verbose stays: without a virtio console vng runs the command on the serial console ("console
    # fallback") and only --verbose shows that console; vng then exits 255 even when the command ran,
    # so the marker, not the exit code, proves it ran.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:  # timed out or interrupted: stop the guest's whole session
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    took = time.monotonic() - t0
    text = out.decode(errors="replace")
    if marker not in (ln.strip() for ln in text.splitlines()):
        tail = "\n".join(text.splitlines()[-15:])
        raise GuestDidNotRun(f"bare vng (exit {proc.returncode}) did not run its command: {marker!r} is not in its "
                             f"output; last lines:\n{tail}")
    return took


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
        try:
            bare.append(bare_vng(k, img, acc, spec))
        except GuestDidNotRun as e:
            raise SystemExit(f"error: {e}") from None
        t, b = lab_up(a.kernel, spec)
        total.append(t)
        boot.append(b)
        print(f"  rep {i + 1}: bare vng --exec printf (marker seen) {bare[-1]:.2f} s   "
              f"lab.up {t:.2f} s (boot-to-SSH {b:.2f} s)", flush=True)

    def fmt(xs: list[float]) -> str:
        return f"median {statistics.median(xs):.2f} s  [min {min(xs):.2f}, max {max(xs):.2f}]"

    print(f"kernel {k.release}  accelerator {acc.name}  host CPU {cpu_model()} x{os.cpu_count()}  "
          f"guest {a.cpus} vCPU {a.memory}  reps {a.reps}")
    print(f"bare virtme-ng (--exec printf, marker seen): {fmt(bare)}")
    print(f"lab.up (call to SSH answering):   {fmt(total)}")
    print(f"lab.up boot-to-SSH (launch->SSH): {fmt(boot)}")
    print(f"ratio lab.up / bare vng: {statistics.median(total) / statistics.median(bare):.2f}x "
          f"(target <= 1.3x)")


if __name__ == "__main__":
    main()
