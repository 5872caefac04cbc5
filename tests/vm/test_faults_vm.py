"""Fault injection with a real 6.12 guest (labctl as a subprocess, as a user runs it): the guest
agent killed mid-suite, then the lab's QEMU killed with SIGKILL in the next suite (one boot for
both); SIGTERM and SIGINT to labctl (one boot each). Each checks the exit code, the message, the
run's status, the rows kept, and that nothing is left: no QEMU of the run, no lab state, and in
the guest no zombie, helper or network namespace after the agent was killed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from lab.agent import schema
from lab.core.config import Paths
from lab.guest import vm
from lab.run.labs import Lab, lab_name
from tests.conftest import PLAYBOOKS
from tests.support.faults import Labctl, manifest, rows_of

pytestmark = pytest.mark.vm

PLAYBOOK = str(PLAYBOOKS / "fault_vm_playbook.yaml")
KERNEL = "6.12"


def qemu_of(lab: Lab) -> int | None:
    st = lab.state()
    return vm.qemu_pid(st.sid) if st else None


def qemus_named(name: str) -> list[int]:
    """Live QEMU processes of this lab (virtme-ng names the VM lab-<lab name>)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and vm.alive(int(entry)):
            try:
                args = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if args[0].split(b"/")[-1].startswith(b"qemu-system") and f"lab-{name}".encode() in args:
                out.append(int(entry))
    return out


@pytest.fixture
def lab(tmp_path):
    """The lab the run boots (it must not be up already, or the run would use it and leave it up)."""
    lab = Lab(lab_name(KERNEL), Paths())
    assert lab.running() is None, f"lab {lab.name} is up: these tests need the run to boot its own"
    yield lab
    if lab.state() is not None:  # a failed test: leave nothing running
        lab.down(log=lambda m: None)


def start(tmp_path: Path, task: str, **env: str) -> Labctl:
    env = {"LAB_RESULTS": str(tmp_path / "results"), **env}
    return Labctl([task, "--kernel", KERNEL, "--playbook", PLAYBOOK], env=env)


def signal_qemu(lab: Lab, run: Labctl, sig: int, timeout: float) -> tuple[int, float]:
    """Send QEMU `sig`, wait for labctl to exit: (its exit code, seconds it took). A stopped QEMU is
    resumed afterwards, whatever happened, so the lab fixture can stop it."""
    qemu = qemu_of(lab)
    assert qemu
    t0 = time.monotonic()
    try:
        os.kill(qemu, sig)
        rc = run.wait(timeout)
    finally:
        if sig == signal.SIGSTOP and vm.alive(qemu):
            os.kill(qemu, signal.SIGCONT)
    return rc, time.monotonic() - t0


def test_agent_killed_then_vm_killed(lab, tmp_path):
    run = start(tmp_path, "bench.all")
    try:
        run.wait_for("[hooks] ok", 600)
        conn = lab.connection()
        conn.run("kill -9 $(cat /tmp/lab/agent-*.pid)", hide=True)
        run.wait_for("suite hooks: the agent ended without an exit status", 60)
        time.sleep(1)
        # the killed agent's helpers are gone, reaped (no zombie), its namespaces removed
        ps = conn.run("ps -eo stat=,pid=,ppid=,args=", hide=True).stdout
        assert not [ln for ln in ps.splitlines() if ln.split()[0].startswith("Z")], ps
        assert "hookbench" not in ps, ps
        assert "labhook" not in conn.run("ip netns list", hide=True).stdout
        conn.close()
        run.wait_for("[maps] ok", 600)
        rc, took = signal_qemu(lab, run, signal.SIGKILL, 120)
    finally:
        run.kill()
    assert rc == 1, run.output
    assert "the VM died (QEMU exited)" in run.output and "serial log" in run.output
    assert "Traceback" not in run.output
    d = run.run_dir()
    m = manifest(d)
    assert m["status"] == "partial" and "the VM died" in m["status_reason"], m["status_reason"]
    hooks, maps = rows_of(d, "hooks"), rows_of(d, "maps")
    assert [r for r in hooks if r["status"] == "ok"] and [r for r in maps if r["status"] == "ok"]
    assert hooks[-1]["status"] == "error" and "without an exit status" in hooks[-1]["reason"]
    assert maps[-1]["status"] == "error" and "the VM died" in maps[-1]["reason"]
    assert all(schema.validate(r) == [] for r in hooks + maps)
    assert qemus_named(lab.name) == [] and lab.state() is None
    print(f"\nFAULT agent -9 then QEMU -9 ({m['accelerator']}): exit {rc}, stopped {took:.1f} s after QEMU died, "
          f"rows {len(hooks)}+{len(maps)}, status {m['status']}")


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_the_run_and_its_vm_within_10_s(lab, tmp_path, sig, code):
    run = start(tmp_path, "bench.hooks")
    try:
        run.wait_for("[hooks] ok", 600)
        assert qemu_of(lab)
        took = run.signal(sig)
    finally:
        run.kill()
    assert run.proc.returncode == code, run.output
    assert took < 10, f"{took:.1f} s to stop"
    assert "Traceback" not in run.output
    d = run.run_dir()
    m = manifest(d)
    assert m["status"] == "interrupted" and signal.Signals(sig).name in m["status_reason"]
    rows = rows_of(d, "hooks")
    assert [r for r in rows if r["status"] == "ok"] and rows[-1]["status"] == "error"
    assert qemus_named(lab.name) == [] and lab.state() is None
    print(f"\nFAULT {signal.Signals(sig).name} ({m['accelerator']}): exit {code}, {took:.1f} s, "
          f"{len(rows)} rows, status {m['status']}")


def test_a_hung_guest_is_found_and_its_vm_stopped(lab, tmp_path):
    """QEMU stopped (SIGSTOP) mid-suite: it stays alive, the guest stops answering. The run probes
    the silent guest (short thresholds here, minutes by default), gives up, exits 1 and stops the VM."""
    run = start(tmp_path, "bench.hooks", LAB_HANG_QUIET="10", LAB_HANG_PROBES="2", LAB_HANG_PROBE_TIMEOUT="5")
    try:
        run.wait_for("[hooks] ok", 600)
        rc, took = signal_qemu(lab, run, signal.SIGSTOP, 180)
    finally:
        run.kill()
    assert rc == 1, run.output
    assert "the guest stopped answering" in run.output and "Traceback" not in run.output
    d = run.run_dir()
    m = manifest(d)
    assert m["status"] == "partial" and "the guest stopped answering" in m["status_reason"], m["status_reason"]
    rows = rows_of(d, "hooks")
    assert [r for r in rows if r["status"] == "ok"] and rows[-1]["status"] == "error"
    assert all(schema.validate(r) == [] for r in rows)
    assert qemus_named(lab.name) == [] and lab.state() is None
    print(f"\nFAULT QEMU SIGSTOP ({m['accelerator']}): exit {rc}, {took:.1f} s to give up and stop the VM, "
          f"{len(rows)} rows, status {m['status']}")
