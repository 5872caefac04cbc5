"""Runs agent suites on a target and streams their rows into the result store.

A target is where the agent runs: this machine's own kernel (`host`), a lab guest reached over
SSH, or a remote machine (`ssh://user@host[:port]`). Same agent, same rows.
"""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .config import ROOT, Paths

LineSink = Callable[[str], None]
# what a progress line names for each row, in this order (absent fields are skipped)
PROGRESS_KEYS = ("hook", "variant", "freq_hz", "map_type", "key_space", "operation", "driver",
                 "contention", "max_entries", "tool", "method")


class Target(Protocol):
    kernel_alias: str
    accelerator: str

    def run_agent(self, agent_args: list[str], on_row: LineSink) -> int: ...

    def describe(self) -> dict[str, Any]: ...


def bundle(paths: Paths) -> bytes:
    """A tarball of what the guest needs: the agent package and the host-built BPF artefacts."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(ROOT / "lab" / "agent", arcname="agent",
                filter=lambda ti: None if "__pycache__" in ti.name else ti)
        tar.add(paths.build / "bpf", arcname="bpf",
                filter=lambda ti: None if ti.name.endswith("vmlinux.h") else ti)
    return buf.getvalue()


class LineSplitter(io.TextIOBase):
    """A writable stream that hands complete lines to a callback (fabric's out_stream)."""

    def __init__(self, on_line: LineSink):
        self.on_line = on_line
        self.buf = ""

    def write(self, s: str) -> int:
        self.buf += s
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            self.on_line(line)
        return len(s)

    def flush(self) -> None:
        pass


@dataclass
class LocalTarget:
    """The agent on this machine's own kernel: no VM."""

    paths: Paths = field(default_factory=Paths)
    kernel_alias: str = "host"
    accelerator: str = "host"
    python: str = "/usr/bin/python3"

    def run_agent(self, agent_args: list[str], on_row: LineSink) -> int:
        cmd = [self.python, "-m", "lab.agent", "--bpf-dir", str(self.paths.build / "bpf"), *agent_args]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert proc.stdout
        for line in proc.stdout:
            on_row(line.rstrip("\n"))
        return proc.wait()

    def describe(self) -> dict[str, Any]:
        import platform

        return {"target": "local", "kernel_alias": "host", "kernel_release": platform.release(),
                "accelerator": "host", "kernel_source": "the machine's running kernel"}


@dataclass
class RemoteTarget:
    """The agent on a machine reached over SSH (a lab guest or a real box)."""

    conn: Any  # fabric.Connection
    kernel_alias: str
    accelerator: str
    info: dict[str, Any]
    paths: Paths = field(default_factory=Paths)
    workdir: str = "/tmp/lab"
    pushed: bool = False

    def push(self) -> None:
        data = bundle(self.paths)
        self.conn.run(f"rm -rf {self.workdir} && mkdir -p {self.workdir}", hide=True)
        self.conn.put(io.BytesIO(data), f"{self.workdir}/bundle.tgz")
        self.conn.run(f"cd {self.workdir} && tar xzf bundle.tgz", hide=True)
        self.pushed = True

    def run_agent(self, agent_args: list[str], on_row: LineSink) -> int:
        if not self.pushed:
            self.push()
        cmd = (f"cd {self.workdir} && python3 -m agent --bpf-dir {self.workdir}/bpf "
               + " ".join(shlex.quote(a) for a in agent_args))
        res = self.conn.run(cmd, warn=True, hide=False, pty=False,
                            out_stream=LineSplitter(on_row), err_stream=sys.stderr)
        return res.exited

    def describe(self) -> dict[str, Any]:
        return dict(self.info, target="ssh", kernel_alias=self.kernel_alias, accelerator=self.accelerator)


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
    fig = f"{med:.1f} ns/op" if isinstance(med, int | float) else ""
    if row.get("memlock_measured") is not None:
        fig = f"memlock {row['memlock_measured']} B (predicted {row.get('memlock_predicted')})"
    if isinstance(row.get("overhead_pct"), int | float):
        fig = (f"throughput lost {row['overhead_pct']:.2f}% [{row.get('overhead_ci_low', 0):.2f}, "
               f"{row.get('overhead_ci_high', 0):.2f}], {row.get('events')} program runs")
    if fig and row.get("accelerator") == "tcg":
        fig += " [emulated]"
    return f"  [{suite}] {row.get('status', '?'):11s} {' '.join(parts)} {fig} {str(row.get('reason', ''))[:100]}"


def run_suite(target: Target, store, suite: str, params: dict[str, Any] | None = None) -> dict[str, int]:
    """Run one suite; every row line is appended to the store as it arrives. Returns status counts."""
    counts: dict[str, int] = {}

    def on_row(line: str) -> None:
        if not line.startswith("{"):
            sys.stderr.write(line + "\n")
            return
        store.append_line(suite, line)
        try:
            row = json.loads(line)
            status = row.get("status", "?")
            counts[status] = counts.get(status, 0) + 1
            sys.stdout.write(progress_line(suite, row) + "\n")  # one write: stderr lines may interleave
            sys.stdout.flush()
        except (json.JSONDecodeError, AttributeError):
            counts["corrupt"] = counts.get("corrupt", 0) + 1

    args = ["--suite", suite, "--run-id", store.run_id, "--accelerator", target.accelerator,
            "--params", json.dumps(params or {})]
    rc = target.run_agent(args, on_row)
    if rc != 0:
        counts["agent_exit_nonzero"] = 1
    return counts
