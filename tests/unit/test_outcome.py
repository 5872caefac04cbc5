"""Run outcome pieces: status decisions, agent exits, error rows, signals deferred while a row is
written, and the agent's clean-up of what a killed agent left (real processes and namespaces)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from lab.agent import schema
from lab.agent.common import cleanup_after, group_members
from lab.core import interrupt
from lab.run.outcome import AgentExit, SuiteResult, decide, error_row


def test_status_decisions():
    ok = SuiteResult(counts={"ok": 3, "unsupported": 2, "invalid": 1}, agent=AgentExit(0))
    assert decide({"hooks": ok}, ["hooks"]) == ("complete", "")
    err = SuiteResult(counts={"ok": 3, "error": 1}, agent=AgentExit(0))
    assert decide({"hooks": err}, ["hooks"]) == ("partial", "error rows: hooks 1")
    died = SuiteResult(counts={"ok": 1, "error": 1}, agent=AgentExit(None), fault="the VM died (QEMU exited)",
                       vm_died=True)
    status, reason = decide({"hooks": died}, ["hooks", "maps"])
    assert status == "partial" and "suite hooks: the VM died" in reason and "suites not run: maps" in reason
    assert decide({"hooks": ok}, ["hooks"], interrupted="interrupted by SIGTERM") == (
        "interrupted", "interrupted by SIGTERM")
    assert decide({}, ["hooks"], failure="disk full")[0] == "failed"


def test_agent_exit_says_how_it_ended():
    assert "killed by SIGKILL" in AgentExit(-9).describe()
    assert "stopped on SIGTERM (exit 143)" in AgentExit(143).describe()
    assert "without an exit status" in AgentExit(None, ["a", "boom"]).describe()
    assert AgentExit(None, ["x", "Traceback", "boom"]).describe().endswith("x | Traceback | boom")
    assert AgentExit(0).cleaned_up and AgentExit(1).cleaned_up and AgentExit(143).cleaned_up
    assert not AgentExit(None).cleaned_up and not AgentExit(-9).cleaned_up


def test_error_row_for_a_dead_suite_validates():
    row = error_row({"kernel": "6.12.1", "accelerator": "tcg", "cpu_model": "x", "vcpus": 2}, "maps", "r",
                    "the VM died")
    assert schema.validate(row) == [] and row["status"] == "error"


def test_a_signal_waits_until_the_row_is_written():
    events = []
    with pytest.raises(interrupt.Interrupted) as e, interrupt.handling():
        with interrupt.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            events.append("row written")
        events.append("not reached")
    assert events == ["row written"] and e.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_cleanup_after_a_killed_agent_removes_its_group_and_namespaces():
    """A stand-in for a killed agent: a process group led by a sleeper, with a child, and the
    network namespaces an agent of that pid makes. cleanup_after removes all of them."""
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & exec sleep 60"], start_new_session=True)
    pid = proc.pid
    names = [f"labhook{pid}tx", f"labhook{pid}rx"]
    try:
        for ns in names:
            subprocess.run(["ip", "netns", "add", ns], check=True)
        time.sleep(0.2)
        done = cleanup_after(pid)
        assert proc.wait(5) == -signal.SIGKILL
        assert [f"netns {ns}" for ns in names] == [d for d in done if d.startswith("netns")]
        assert not [ns for ns in names if os.path.exists(f"/run/netns/{ns}")]
        assert group_members(pid) == []  # the background sleeper too
    finally:
        if proc.poll() is None:
            os.killpg(pid, signal.SIGKILL)
            proc.wait()
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_vm_death_names_the_serial_log_its_last_lines_and_an_oops(tmp_path):
    """The VM side faked: a lab whose state is gone and whose serial log holds an oops."""
    from lab.run.outcome import LabWatch

    class GoneLab:
        serial_log = tmp_path / "serial.log"

        def state(self):
            return None

    GoneLab.serial_log.write_bytes(b"booting\r\n\r\n")
    watch = LabWatch(GoneLab())
    watch.mark()
    with open(GoneLab.serial_log, "ab") as f:
        f.write(b"[ 12.0] BUG: kernel NULL pointer dereference\r\n\r\n[ 12.1] Oops: 0000 [#1]\r\nlast\r\n")
    msg = watch.died()
    assert msg.startswith("the VM was stopped (its lab state is gone); kernel oops in the serial log: "
                          "[ 12.0] BUG: kernel NULL pointer dereference")
    assert msg.endswith("    booting\n    [ 12.0] BUG: kernel NULL pointer dereference\n    [ 12.1] Oops: 0000 [#1]\n"
                        "    last")
