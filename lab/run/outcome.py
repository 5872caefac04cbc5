"""A run's outcome: what each suite's agent did, whether the VM died, and the run's status.

Statuses (manifest `status`, with `status_reason` when not complete):
  complete     every suite ran to its end, every agent exited 0, no `error` row
               (`unsupported` and `invalid` rows are results, not failures)
  partial      something broke but the run went on or ended early: the VM died, an agent exited
               non-zero or was killed, or a suite wrote an `error` row
  interrupted  SIGINT / SIGTERM / SIGHUP stopped it
  failed       the lab itself could not go on (a row or the manifest could not be written, the
               target could not be reached or set up)
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from lab.agent import schema
from lab.guest.labstate import file_tail

OOPS_RE = re.compile(r"(Oops|BUG:|kernel BUG at|Kernel panic|general protection fault|WARNING: CPU: \d+ PID)")
TAIL = 20  # stderr lines kept per agent


@dataclass
class AgentExit:
    """How one agent run ended. rc None: no exit status came back (killed by a signal over SSH, or
    its connection or VM went away); a negative rc is the signal that killed a local agent."""

    rc: int | None
    stderr_tail: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # what clean-up removed after it

    @property
    def cleaned_up(self) -> bool:
        """Did the agent end on its own terms (done, failed, or stopped by a signal it handled: then
        it removed its helpers, namespaces and cgroups itself)? Else clean-up is ours."""
        return self.rc is not None and (self.rc in (0, 1) or 128 < self.rc < 160)

    def describe(self) -> str:
        if self.rc is None:
            what = "the agent ended without an exit status (killed, or its connection went away)"
        elif self.rc < 0:
            what = f"the agent was killed by {_signame(-self.rc)}"
        elif self.rc > 128:
            what = f"the agent stopped on {_signame(self.rc - 128)} (exit {self.rc})"
        else:
            what = f"the agent exited {self.rc}"
        tail = [ln for ln in self.stderr_tail if ln.strip()][-5:]
        if tail:
            what += "; its last stderr lines: " + " | ".join(ln.strip() for ln in tail)
        if self.left:
            what += "; removed what it left: " + ", ".join(self.left)
        return what


def _signame(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


@dataclass
class SuiteResult:
    """One suite's run: row counts by status, how its agent ended, and why it broke if it did."""

    counts: dict[str, int] = field(default_factory=dict)
    agent: AgentExit | None = None
    fault: str | None = None  # why the suite did not end normally
    vm_died: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"rows": dict(self.counts), "agent_exit": None if self.agent is None else self.agent.rc,
                "fault": self.fault}


@dataclass
class LabWatch:
    """Watches a lab guest while a suite runs: has its QEMU died, and did the kernel oops?"""

    lab: Any  # labs.Lab
    offset: int = 0

    def mark(self) -> None:
        try:
            self.offset = self.lab.serial_log.stat().st_size
        except OSError:
            self.offset = 0

    def died(self) -> str | None:
        from lab.guest import vm

        st = self.lab.state()
        if st is not None and vm.qemu_pid(st.sid) is not None:
            return None
        why = "the VM died (QEMU exited)" if st is not None else "the VM was stopped (its lab state is gone)"
        oops = self.oops()
        return f"{why}{'; ' + oops if oops else ''}; {self.log_tail()}"

    def log_tail(self) -> str:
        """Where the serial log is and its last lines, for a fault's message."""
        return f"serial log {self.lab.serial_log}, last lines:\n{self.tail()}"

    def tail(self, n: int = 12) -> str:
        """The serial log's last non-blank lines."""
        return file_tail(self.lab.serial_log, n)

    def oops(self) -> str | None:
        try:
            with open(self.lab.serial_log, "rb") as f:
                f.seek(self.offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return None
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if OOPS_RE.search(line):
                return "kernel oops in the serial log: " + " | ".join(s.strip() for s in lines[i:i + 3])
        return None


class GuestHung(Exception):
    """The guest stopped answering while its QEMU still ran (a hung kernel, a stopped VM)."""


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class HangWatch:
    """Is a silent guest still there? After `quiet` seconds without agent output (LAB_HANG_QUIET,
    default 120; TCG suites can be silent for minutes, so silence alone proves nothing), the guest
    is asked to run `true` on a new SSH session; an answer restarts the wait, no answer within
    `probe_timeout` seconds (LAB_HANG_PROBE_TIMEOUT, 30) is probed again at once, and `probes`
    unanswered in a row (LAB_HANG_PROBES, 3) raise GuestHung. probe(timeout) -> answered."""

    probe: Any
    quiet: float = field(default_factory=lambda: _env_float("LAB_HANG_QUIET", 120.0))
    probes: int = field(default_factory=lambda: int(_env_float("LAB_HANG_PROBES", 3)))
    probe_timeout: float = field(default_factory=lambda: _env_float("LAB_HANG_PROBE_TIMEOUT", 30.0))
    last: float = field(default_factory=lambda: time.monotonic())
    failed: int = 0

    def tick(self, busy: bool) -> None:
        now = time.monotonic()
        if busy:
            self.last, self.failed = now, 0
            return
        if now - self.last < (self.quiet if self.failed == 0 else 0):
            return
        silent = now - self.last
        if self.probe(self.probe_timeout):
            self.last, self.failed = time.monotonic(), 0
            return
        self.failed += 1
        if self.failed >= self.probes:
            raise GuestHung(f"the guest stopped answering: no agent output for {silent:.0f} s and {self.failed} "
                            f"SSH probes ({self.probe_timeout:.0f} s each) went unanswered while its QEMU still ran")


def error_row(base: dict[str, Any], suite: str, run_id: str, reason: str) -> dict[str, Any]:
    """An `error` row for a suite whose agent or VM died: the common fields only (valid as such)."""
    row = {
        "schema": schema.SCHEMA_VERSION, "run_id": run_id, "suite": suite,
        "kernel": str(base.get("kernel") or "unknown"), "accelerator": str(base.get("accelerator") or "host"),
        "cpu_model": str(base.get("cpu_model") or "unknown"), "vcpus": int(base.get("vcpus") or 0),
        "status": "error", "reason": reason,
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    return row


def decide(results: dict[str, SuiteResult], planned: list[str], interrupted: str | None = None,
           failure: str | None = None) -> tuple[str, str]:
    """The run's (status, status_reason) from its suites and what stopped it, if anything."""
    if interrupted:
        return "interrupted", interrupted
    if failure:
        return "failed", failure
    faults = [f"suite {s}: {r.fault}" for s, r in results.items() if r.fault]
    errors = {s: r.counts.get("error", 0) for s, r in results.items() if r.counts.get("error")}
    not_run = [s for s in planned if s not in results]
    if not faults and not errors and not not_run:
        return "complete", ""
    parts = faults[:]
    if errors and not faults:
        parts.append("error rows: " + ", ".join(f"{s} {n}" for s, n in errors.items()))
    if not_run:
        parts.append("suites not run: " + ", ".join(not_run))
    return "partial", "; ".join(parts)
