"""Runs agent suites on a target and streams their rows into the result store.

A target is where the agent runs: this machine's own kernel (`host`), a lab guest reached over
SSH, or a remote machine (`ssh://user@host[:port]`). Same agent, same rows.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import select
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import paramiko

from lab.agent import mitigations
from lab.agent.common import cleanup_after
from lab.core import interrupt, units
from lab.core.config import IMPORT_ROOT, LabError, Paths
from lab.guest.accel import ICOUNT_FACTS_CMD, icount_facts
from lab.guest.bundle import bundle, toolbuilds_bundle
from lab.results import events
from lab.run.outcome import AgentExit, GuestHung, HangWatch, SuiteResult, error_row
from lab.run.streams import LineSink, LineSplitter, StderrTail

# what a progress line names for each row, in this order (absent fields are skipped)
PROGRESS_KEYS = ("hook", "variant", "freq_hz", "map_type", "key_space", "operation", "driver",
                 "contention", "max_entries", "tool", "method")


CLOCKSOURCE = "/sys/devices/system/clocksource/clocksource0/current_clocksource"
MITIGATIONS_CMD = f"cat /proc/cmdline; grep . {mitigations.VULN_DIR}/* 2>/dev/null"
STOP_GRACE = 6.0  # seconds a stopped agent gets to clean up and exit before its group is killed


class Target(Protocol):
    kernel_alias: str
    accelerator: str

    def run_agent(self, agent_args: list[str], on_row: LineSink) -> AgentExit: ...

    def describe(self) -> dict[str, Any]: ...


def _exited(pid: int) -> bool:
    """Has our child `pid` exited? (not reaped: its pid, and so its process group id, stay ours)"""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


@dataclass
class LocalTarget:
    """The agent on this machine's own kernel: no VM. It runs in its own session and process
    group, which is signalled (TERM, then KILL for what is left) on every exit path."""

    paths: Paths = field(default_factory=Paths)
    kernel_alias: str = "host"
    accelerator: str = "host"
    python: str = "/usr/bin/python3"

    def run_agent(self, agent_args: list[str], on_row: LineSink) -> AgentExit:
        cmd = [self.python, "-m", "lab.agent", "--bpf-dir", str(self.paths.build / "bpf"), *agent_args]
        proc = subprocess.Popen(cmd, cwd=IMPORT_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        assert proc.stdout and proc.stderr
        out, err = LineSplitter(on_row), StderrTail()
        streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
        try:
            try:
                _pump(streams, None)
            except BaseException:
                self._signal(proc, signal.SIGTERM)
                _pump(streams, time.monotonic() + STOP_GRACE)  # its clean-up, its last rows
                raise
        finally:
            deadline = time.monotonic() + STOP_GRACE
            while not _exited(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            self._signal(proc, signal.SIGKILL)  # the leader is not reaped yet: the group id is still ours
            rc = proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        left = [] if AgentExit(rc).cleaned_up else cleanup_after(proc.pid)
        return AgentExit(rc, list(err.tail), left)

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def describe(self) -> dict[str, Any]:
        import platform

        try:
            clock = Path(CLOCKSOURCE).read_text().strip()
        except OSError:
            clock = None
        return {"target": "local", "kernel_alias": "host", "kernel_release": platform.release(),
                "accelerator": "host", "kernel_source": "the machine's running kernel", "clocksource": clock,
                **mitigations.read()}


def _pump(streams: dict[int, LineSplitter], deadline: float | None) -> bool:
    """Read the agent's pipes into their splitters until both close (True) or `deadline` (False)."""
    open_fds = set(streams)
    while open_fds:
        timeout = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
        ready, _, _ = select.select(list(open_fds), [], [], timeout)
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                streams[fd].feed(data)
            else:
                open_fds.discard(fd)
        if deadline is not None and time.monotonic() >= deadline and open_fds:
            return False
    return True


@dataclass
class RemoteTarget:
    """The agent on a machine reached over SSH (a lab guest or a real box). The agent runs as the
    leader of the SSH session's process group (its pid in a file): a run that stops signals that
    group through a second SSH session, and a killed agent's leftovers are removed the same way."""

    conn: Any  # fabric.Connection
    kernel_alias: str
    accelerator: str
    info: dict[str, Any]
    paths: Paths = field(default_factory=Paths)
    workdir: str = "/tmp/lab"
    pushed: bool = False
    tools_pushed: bool = False
    watch: Any = None  # outcome.LabWatch for a lab guest: did the VM die?

    def push(self) -> None:
        data = bundle(self.paths)
        self.conn.run(f"rm -rf {self.workdir} && mkdir -p {self.workdir}", hide=True)
        self._put_and_unpack(data)
        self.pushed = True

    def _put_and_unpack(self, data: bytes) -> None:
        self.conn.put(io.BytesIO(data), f"{self.workdir}/bundle.tgz")
        self.conn.run(f"cd {self.workdir} && tar xzf bundle.tgz && rm bundle.tgz", hide=True)

    def run_agent(self, agent_args: list[str], on_row: LineSink) -> AgentExit:
        if not self.pushed:
            self.push()
        if agent_args[agent_args.index("--suite") + 1] == "tools" and not self.tools_pushed:
            data = toolbuilds_bundle(self.paths)  # only the tools suite needs them: pushed once, with it
            if data:
                self._put_and_unpack(data)
            self.tools_pushed = True
        pidfile = f"{self.workdir}/agent-{secrets.token_hex(4)}.pid"
        # the shell writes its pid (= the agent's, after exec) before anything can ask for it
        cmd = (f"cd {self.workdir} && echo $$ > {pidfile} && exec python3 -m agent --bpf-dir {self.workdir}/bpf "
               f"--pidfile {pidfile} " + " ".join(shlex.quote(a) for a in agent_args))
        chan = self.conn.transport.open_session(timeout=15)
        out, err = LineSplitter(on_row), StderrTail()
        rc: int | None = None
        ended = False
        try:
            chan.exec_command(cmd)
            chan.shutdown_write()
            try:
                ended = self._pump(chan, out, err, None)
            except BaseException:
                t0 = time.monotonic()
                self._guest(f"kill -s TERM -- -$(cat {pidfile}) 2>/dev/null")
                ended = self._pump(chan, out, err, time.monotonic() + STOP_GRACE)
                print(f"agent in the guest {'stopped' if ended else 'did not stop'} within "
                      f"{time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
                raise
        finally:
            if ended and chan.exit_status_ready() and chan.exit_status != -1:
                rc = chan.exit_status
            chan.close()
            left: list[str] = []
            if not AgentExit(rc).cleaned_up:  # killed or lost: remove what it may have left in the guest
                res = self._guest(f"cd {self.workdir} && python3 -m agent --cleanup $(cat {pidfile}) 2>&1; "
                                  f"rm -f {pidfile}", timeout=20)
                left = [ln.split(" left ", 1)[1].removesuffix(": removed") for ln in (res or "").splitlines()
                        if " left " in ln]
        return AgentExit(rc, list(err.tail), left)

    def _pump(self, chan, out: LineSplitter, err: LineSplitter, deadline: float | None) -> bool:
        """Read the channel until it ends (True) or `deadline` (False). Ends too when the SSH
        connection drops (the VM died). Without a deadline, a silent agent makes the guest probed
        (HangWatch): a guest that stops answering raises GuestHung."""
        transport = self.conn.transport
        hang = HangWatch(lambda t: self._guest("true", timeout=t) is not None) if deadline is None else None
        while deadline is None or time.monotonic() < deadline:
            eof = chan.eof_received or chan.closed or not transport.is_active()
            busy = False
            while chan.recv_ready():
                out.feed(chan.recv(65536))
                busy = True
            while chan.recv_stderr_ready():
                err.feed(chan.recv_stderr(65536))
                busy = True
            if eof and not busy:
                if chan.eof_received and not chan.exit_status_ready():
                    chan.status_event.wait(2)  # the exit status follows the data
                return True
            if hang:
                hang.tick(busy)
            if not busy:
                time.sleep(0.05)
        return False

    def _guest(self, cmd: str, timeout: float = 8.0) -> str | None:
        """Run a short command in the guest on a second SSH session; its output, or None."""
        transport = self.conn.transport
        if transport is None or not transport.is_active():
            return None
        try:
            chan = transport.open_session(timeout=timeout)
            chan.settimeout(timeout)
            chan.exec_command(cmd)
            data = b""
            while True:
                d = chan.recv(65536)
                if not d:
                    break
                data += d
            chan.close()
            return data.decode(errors="replace")
        except Exception:  # noqa: BLE001 - best effort: the connection may be going away
            return None

    def describe(self) -> dict[str, Any]:
        """The target's facts for the manifest, with the kernel's clocksource read now (a guest under
        KVM uses kvm-clock: the nightly's proof that KVM really ran)."""
        got = self.conn.run(f"cat {CLOCKSOURCE}", hide=True, warn=True)
        clock = got.stdout.strip() if got.ok else None
        facts = dict(self.info, target="ssh", kernel_alias=self.kernel_alias, accelerator=self.accelerator,
                     clocksource=clock or None)
        got = self.conn.run(MITIGATIONS_CMD, hide=True, warn=True)  # what the kernel runs against CPU bugs
        lines = (got.stdout or "").splitlines()
        facts.update(mitigations=mitigations.setting_of(lines[0] if lines else ""),
                     vulnerabilities=mitigations.parse_lines("\n".join(lines[1:])))
        if self.accelerator == "icount":
            got = self.conn.run(ICOUNT_FACTS_CMD, hide=True, warn=True)
            facts.update(icount_facts(got.stdout or ""))
        return facts


def events_log(target: Any) -> Path | None:
    """The event-count plugin's log of a lab guest running under it (lab/guest/tcgplugin.py), else None."""
    plugin = (getattr(target, "info", None) or {}).get("event_plugin") or {}
    return Path(plugin["log"]) if plugin.get("log") else None


def _ci(row: dict[str, Any], prefix: str) -> str:
    """ " [low, high]" of a row's interval, or " (no interval)" where it has none (fewer than 3 trials)."""
    lo, hi = row.get(f"{prefix}_ci_low"), row.get(f"{prefix}_ci_high")
    if isinstance(lo, int | float) and isinstance(hi, int | float):
        return f" [{lo:.2f}, {hi:.2f}]"
    return " (no interval)"


def progress_line(suite: str, row: dict[str, Any]) -> str:
    """One line per row as it arrives: status, what was measured, and its figure."""
    parts = []
    for k in PROGRESS_KEYS:
        v = row.get(k)
        if v in (None, ""):
            continue
        parts.append(str(v))
        if k == "map_type" and row.get("flags"):
            parts[-1] += f"(flags 0x{row['flags']:x})"
    med = row.get("ns_median")
    fig = f"{med:.1f} {units.short(units.of(row))}/op" if isinstance(med, int | float) else ""
    if row.get("memlock_measured") is not None:
        fig = f"memlock {row['memlock_measured']} B (predicted {row.get('memlock_predicted')})"
    if isinstance(row.get("overhead_pct"), int | float):
        fig = (f"throughput lost {row['overhead_pct']:.2f}%{_ci(row, 'overhead')}, "
               f"{row.get('events')} program runs")
        if isinstance(row.get("overhead_cpu_pct"), int | float):
            fig += f"; per CPU second {row['overhead_cpu_pct']:.2f}%{_ci(row, 'overhead_cpu')}"
    if fig and row.get("accelerator") == "tcg":
        fig += " [emulated]"
    elif fig and units.of(row) == units.INSN:  # a percentage stays one: the run counted instructions
        fig += " [guest instructions]" if "/op" in fig else " [icount]"
    if row.get("trials_used") and row.get("stopped_on"):  # the hook suite's --halfwidth
        reached = row.get("halfwidth_reached")
        fig += (f" ({row['trials_used']} trials, +-{reached:.1f}% of the median" if reached is not None
                else f" ({row['trials_used']} trials, no interval") + f", stopped on {row['stopped_on']})"
    return f"  [{suite}] {row.get('status', '?'):11s} {' '.join(parts)} {fig} {str(row.get('reason', ''))[:100]}"


def run_suite(target: Target, store, suite: str, params: dict[str, Any] | None = None,
              base: dict[str, Any] | None = None, res: SuiteResult | None = None) -> SuiteResult:
    """Run one suite; every row line is appended to the store, whole, as it arrives. When the agent
    or the VM dies, or a signal stops the run, an `error` row says so (unless the agent wrote one).
    `base` holds the common row fields for such a row (updated from every row that arrives); `res`,
    if given, is filled in as rows arrive (so it is there even when a signal cuts the suite short)."""
    res = res if res is not None else SuiteResult()
    base = base if base is not None else {}
    last: dict[str, Any] = {"status": None, "broken": False}
    watch = getattr(target, "watch", None)
    if watch:
        watch.mark()

    def write(line: str) -> bool:
        if last["broken"]:
            return False  # a row could not be written: the run is failing, the agent is being stopped
        try:
            with interrupt.deferred():  # a signal waits until the row is whole in the file
                store.append_line(suite, line)
        except LabError:
            last["broken"] = True
            raise
        return True

    def record(line: str, row: dict[str, Any]) -> None:
        if not write(line):
            return
        status = row.get("status", "?")
        res.counts[status] = res.counts.get(status, 0) + 1
        last["status"] = status
        sys.stdout.write(progress_line(suite, row) + "\n")  # one write: stderr lines may interleave
        sys.stdout.flush()

    def on_row(line: str) -> None:
        if not line.startswith("{"):
            sys.stderr.write(line + "\n")
            return
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not an object")
        except ValueError:
            write(line)  # kept: results.* report it with its line number
            res.counts["corrupt"] = res.counts.get("corrupt", 0) + 1
            return
        base.update({k: row[k] for k in ("kernel", "accelerator", "cpu_model", "vcpus") if k in row})
        if row.get("event_windows"):  # kernel_batch under the event-count plugin: its exact counts
            row = events.enrich(row, events_log(target))
            line = json.dumps(row, sort_keys=True)
        record(line, row)

    def error(reason: str) -> None:
        row = error_row(base, suite, store.run_id, reason)
        record(json.dumps(row, sort_keys=True), row)

    args = ["--suite", suite, "--run-id", store.run_id, "--accelerator", target.accelerator,
            "--params", json.dumps(params or {})]
    try:
        res.agent = target.run_agent(args, on_row)
    except interrupt.Interrupted as e:
        if last["status"] != "error":
            try:
                error(f"interrupted by {e.name}: the run was stopped")
            except LabError:
                pass
        raise
    except GuestHung as e:
        res.fault, res.vm_died = str(e), True  # nothing more can run there
        if watch:
            res.fault += "; " + watch.log_tail()
    except (OSError, EOFError, paramiko.SSHException) as e:
        res.fault = f"lost the connection to the agent ({type(e).__name__}: {e})"
    died = watch.died() if watch and not res.vm_died else None
    if died:
        res.fault, res.vm_died = died, True
    elif res.agent is not None and res.agent.rc != 0:
        res.fault = res.agent.describe()
        oops = watch.oops() if watch else None
        if oops:
            res.fault += "; " + oops
    if res.fault and not (res.agent and res.agent.rc and res.agent.rc > 0 and last["status"] == "error"):
        error(res.fault)
    if res.agent is not None and res.agent.rc != 0:
        res.counts["agent_exit_nonzero"] = 1
    return res
