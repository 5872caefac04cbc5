"""Shared by the fault-injection tests: run labctl as a user would, watch its output, signal it,
and look for anything it left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.core.config import ROOT
from lab.guest import vm


@dataclass
class Labctl:
    """`./labctl ARGS` in its own session, its output collected line by line."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.proc = subprocess.Popen([str(ROOT / "labctl"), *self.args], cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True, env=dict(os.environ, **self.env))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise AssertionError(f"labctl exited {self.proc.returncode} before {text!r}:\n{self.output}")
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} within {timeout} s:\n{self.output}")

    def signal(self, sig: int) -> float:
        """Signal labctl (the invoke process it execs) and time how long it takes to exit."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        self.wait(60)
        return time.monotonic() - t0

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout)
        finally:
            self.kill()
        self.reader.join(5)
        return rc

    def kill(self) -> None:
        """Teardown: anything of this labctl still running is stopped (its session, by our child's pid)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def run_dir(self) -> Path | None:
        for line in self.lines:
            if "rows in " in line:
                return Path(line.rsplit("rows in ", 1)[1].strip())
        return None


def children(ppid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == ppid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def session_members(sid: int) -> list[str]:
    """Live processes of session `sid` (the labctl we started and everything it started in it)."""
    return [f"{pid} {cmdline(pid)}" for pid in vm.session_pids(sid)]


def netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


def rows_of(run_dir: Path, suite: str) -> list[dict]:
    data = (run_dir / f"{suite}.jsonl").read_bytes()
    assert not data or data.endswith(b"\n"), "the rows file does not end with a complete line"
    return [json.loads(line) for line in data.decode().splitlines()]


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())
