"""What a matrix run shows while it runs and when it ends: a live table (rich) on a terminal,
plain progress lines otherwise, and the summary table."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.live import Live
from rich.table import Table


class Job(Protocol):
    """What the view reads of a matrix job (lab/run/matrix.py's Job); the matrix imports the view,
    never the other way round."""
    kind: str
    name: str
    phase: str
    reason: str
    status: str
    kernel_release: str
    accelerator: str
    run_id: str
    rows: dict[str, int]
    estimate: float | None

    @property
    def key(self) -> str: ...

    @property
    def failed(self) -> bool: ...

    @property
    def seconds(self) -> float | None: ...


class Paths(Protocol):
    @property
    def results(self) -> Path: ...


class Matrix(Protocol):
    """What the view reads of a matrix run (lab/run/matrix.py's Matrix)."""
    id: str
    pb: Any
    jobs: list[Job]
    paths: Paths

COLUMNS = ("kernel / target", "phase", "release", "accel", "elapsed / estimate")


def _elapsed(job: Job) -> str:
    s = job.seconds
    return f"{s:.0f} s" if s is not None else ""


def progress(job: Job) -> str:
    """Elapsed time beside the run's estimate (lab/run/sizes.py): `120 s of ~11 min (18%)`."""
    s, est = job.seconds, getattr(job, "estimate", None)
    if not est:
        return _elapsed(job)
    from lab.run.sizes import human

    return f"{_elapsed(job) or '-'} of ~{human(est)}" + (f" ({100 * s / est:.0f}%)" if s is not None else "")


def live_table(m: Matrix) -> Table:
    t = Table(title=f"{m.id}  ({m.pb.path.name})", title_justify="left")
    for c in COLUMNS:
        t.add_column(c)
    for j in m.jobs:
        style = "red" if j.failed else "green" if j.phase == "done" else ""
        t.add_row(j.key, j.phase + (f" ({j.reason[:60]})" if j.failed and j.reason else ""), j.kernel_release,
                  j.accelerator, progress(j), style=style)
    return t


class PlainView:
    """One line per change of a job's phase (for logs and CI)."""

    def __init__(self, out=sys.stdout):
        self.out = out
        self.seen: dict[str, str] = {}
        self.lock = threading.Lock()

    def update(self, m: Matrix) -> None:
        with self.lock:
            for j in m.jobs:
                if self.seen.get(j.key) != j.phase:
                    self.seen[j.key] = j.phase
                    extra = f" ({j.reason})" if j.failed and j.reason else ""
                    if j.phase in ("done", "failed") and j.seconds:
                        extra += f" after {progress(j)}"
                    elif j.phase.startswith("suite") and j.estimate:
                        extra += f" [{progress(j)}]"
                    self.out.write(f"[{time.strftime('%H:%M:%S')}] {j.key}: {j.phase}{extra}\n")
            self.out.flush()

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class LiveView:
    """A table redrawn in place, one line per kernel/target, with elapsed time."""

    def __init__(self, m: Matrix):
        self.m = m
        self.live = Live(live_table(m), refresh_per_second=2, console=Console(), transient=False)

    def update(self, m: Matrix) -> None:
        self.live.update(live_table(m))

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(live_table(self.m))
        self.live.__exit__(None, None, None)


def view_for(m: Matrix) -> LiveView | PlainView:
    return LiveView(m) if sys.stdout.isatty() else PlainView()


def summary(m: Matrix) -> str:
    """The end-of-run table as plain text: kernel, target, accelerator, status, rows by status,
    run directory, seconds."""
    head = ("kernel", "target", "accel", "status", "rows", "run directory", "seconds")
    lines = [head]
    for j in m.jobs:
        target = j.kind if j.kind != "remote" else j.name
        kernel = j.kernel_release or (j.name if j.kind == "guest" else "")
        rows = ", ".join(f"{k} {v}" for k, v in sorted(j.rows.items())) or "-"
        run_dir = str(m.paths.results / j.run_id) if j.run_id else "-"
        status = j.status or ("failed" if j.failed else j.phase)
        if j.failed and j.reason:
            status += f": {j.reason[:80]}"
        lines.append((kernel, target if j.kind != "guest" else f"vm ({j.key})", j.accelerator or "-", status,
                      rows, run_dir, f"{j.seconds:.0f}" if j.seconds else "-"))
    widths = [max(len(r[i]) for r in lines) for i in range(len(head) - 1)]
    out = []
    for r in lines:
        out.append("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1].rjust(7))
    return "\n".join(out)
