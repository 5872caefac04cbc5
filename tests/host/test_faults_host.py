"""Fault injection on this machine's kernel (`--kernel host`, no VM): labctl is run as a user runs
it, then signalled, its agent killed, or its results directory filled or made read-only. Each test
checks the exit code, the run's status, the rows kept, the message, and that nothing is left
(agent, hookbench, network namespaces, an empty run directory)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lab.agent import schema
from tests.conftest import PLAYBOOKS
from tests.support.faults import Labctl, cmdline, descendants, manifest, netns, rows_of

pytestmark = pytest.mark.host

PLAYBOOK = str(PLAYBOOKS / "fault_playbook.yaml")


def start(results: Path, **env: str) -> Labctl:
    return Labctl(["bench.hooks", "--kernel", "host", "--playbook", PLAYBOOK], env={"LAB_RESULTS": str(results), **env})


def agent_tree(run: Labctl) -> list[int]:
    """The agent the run started and its children (hookbench), by pid, while it runs."""
    return [p for p in descendants(run.proc.pid) if "lab.agent" in cmdline(p) or "hookbench" in cmdline(p)]


def gone(pids: list[int]) -> list[str]:
    """What is left of these processes, and of the network namespaces named after them (other
    runs on this machine may have their own: only ours count)."""
    left = []
    for p in pids:
        c = cmdline(p)
        if "lab.agent" in c or "hookbench" in c:
            left.append(f"{p} {c}")
    return left + [ns for ns in netns() if any(ns.startswith(f"labhook{p}") for p in pids)]


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_suite_stops_within_10_s_keeps_rows_leaves_nothing(tmp_path, sig, code):
    run = start(tmp_path / "results")
    try:
        run.wait_for("[hooks] ok", 120)
        run.wait_for("xdp", 60)  # the packet hooks' network namespaces exist now or soon
        tree = agent_tree(run)
        assert tree, run.output
        took = run.signal(sig)
    finally:
        run.kill()
    assert run.proc.returncode == code, run.output
    assert took < 10, f"took {took:.1f} s to stop"
    assert f"{signal.Signals(sig).name} received: stopping the run" in run.output
    assert "Traceback" not in run.output
    d = run.run_dir()
    assert d is not None, run.output
    m = manifest(d)
    assert m["status"] == "interrupted" and signal.Signals(sig).name in m["status_reason"]
    rows = rows_of(d, "hooks")
    assert [r for r in rows if r["status"] == "ok"], "rows written before the signal are kept"
    assert all(schema.validate(r) == [] for r in rows)
    assert rows[-1]["status"] == "error" and "interrupted" in rows[-1]["reason"]
    assert gone(tree) == []
    print(f"\nFAULT {signal.Signals(sig).name} host: exit {code}, {took:.1f} s, {len(rows)} rows, status {m['status']}")


def test_agent_killed_mid_suite_is_an_error_row_and_a_failed_exit(tmp_path):
    run = start(tmp_path / "results")
    try:
        run.wait_for("[hooks] ok", 120)
        run.wait_for("xdp", 60)
        tree = agent_tree(run)
        agent = [p for p in tree if "lab.agent" in cmdline(p)]
        assert agent, run.output
        t0 = time.monotonic()
        subprocess.run(["kill", "-KILL", str(agent[0])], check=True)
        rc = run.wait(60)
        took = time.monotonic() - t0
    finally:
        run.kill()
    assert rc == 1, run.output
    assert "the agent was killed by SIGKILL" in run.output and "Traceback" not in run.output
    d = run.run_dir()
    m = manifest(d)
    assert m["status"] == "partial" and "killed by SIGKILL" in m["status_reason"]
    rows = rows_of(d, "hooks")
    assert rows[-1]["status"] == "error" and "SIGKILL" in rows[-1]["reason"]
    assert all(schema.validate(r) == [] for r in rows) and len(rows) > 1
    assert gone(tree) == []  # hookbench and the namespaces went with it
    print(f"\nFAULT agent -9 host: exit {rc}, {took:.1f} s, {len(rows)} rows, status {m['status']}")


@pytest.fixture
def tmpfs(tmp_path):
    """A small tmpfs (40 KiB) as the results directory; unmounted in teardown."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_results_dir_too_small_or_read_only_is_refused_before_anything_runs(tmpfs):
    run = start(tmpfs)
    rc = run.wait(120)
    assert rc == 1 and "Traceback" not in run.output
    assert f"error: results directory {tmpfs} has 40 KiB free, a run needs at least 1024 KiB" in run.output
    assert "building BPF" not in run.output and list(tmpfs.iterdir()) == []
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    run = start(tmpfs)
    assert run.wait(120) == 1
    assert f"error: results directory {tmpfs} is not writable (Read-only file system)" in run.output
    print(f"\nFAULT results dir 40k/ro: exit 1, {run.lines[-1]}")


def test_results_dir_filling_up_mid_run_keeps_whole_rows_and_fails(tmpfs):
    """The free-space floor lowered so that the run starts; the tmpfs fills up with rows."""
    run = start(tmpfs, LAB_MIN_FREE_BYTES="4096")
    t0 = time.monotonic()
    rc = run.wait(180)
    took = time.monotonic() - t0
    assert rc == 1, run.output
    assert "no space left; the file ends at its last complete row" in run.output
    assert "Traceback" not in run.output
    (d,) = [p for p in tmpfs.iterdir() if p.is_dir()]
    rows = rows_of(d, "hooks")  # every line whole: the failed write was cut back
    assert rows and all(schema.validate(r) == [] for r in rows)
    m = manifest(d)
    assert m["status"] == "failed" and "no space left" in m["status_reason"], m
    assert not list(d.glob("*.tmp"))
    print(f"\nFAULT results dir fills: exit {rc}, {took:.1f} s, {len(rows)} rows, status {m['status']}")


def test_store_writes_whole_rows_or_none_on_a_real_full_or_read_only_disk(tmpfs):
    from lab.results.store import RowWriteError, RunStore

    store = RunStore.create(tmpfs, "r1", {"status": "running"})
    row = json.dumps({"x": "y" * 3000})
    n = 0
    with pytest.raises(RowWriteError, match="no space left; the file ends at its last complete row"):
        for n in range(100):  # noqa: B007
            store.append_line("hooks", row)
    data = store.rows_file("hooks").read_bytes()
    assert data.endswith(b"\n") and data.count(b"\n") == n
    store.update_manifest(status="failed", status_reason="disk full")  # in place: no new blocks needed
    assert store.manifest()["status"] == "failed"
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    with pytest.raises(RowWriteError, match="read-only file system"):
        store.append_line("hooks", row)
