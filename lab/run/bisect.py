"""`bench.bisect`: the first commit of a kernel tree that moved one row, by `git bisect`.

The two ends are built and measured first; they must differ beyond the row's floor (the determinism
tolerance under icount, else results.compare's 2 %), or there is nothing to look for. Each step then
builds the commit git checked out (lab/kernels/kbuild.py: one object tree per tree, so a step rebuilds
only what changed; ccache where installed), measures only that row (one guest run under icount: an
exact count, so one run per step decides), and calls it good or bad by which end its figure lies
nearer (the midpoint of the two ends' figures). A figure nearer neither end by more than the floor is
said in the step's line (several commits may share the move). `git bisect reset` runs on every exit.

The builder and the measurer are objects with one method each (`build(work, rev)` -> a kernel image,
`measure(kernel, rev)` -> Measured): tests drive the logic with fakes over a real small git repository.

Catalog mode (`--good 6.1 --bad 6.12`, no --tree): the packaged kernels of the catalog whose release
lies between the two ends, measured in order of release, the first one nearer the bad end named.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lab.core.config import InputError, LabError


@dataclass
class Measured:
    value: float
    unit: str = "insn"
    run_dir: Path | None = None
    note: str = ""


class Builder(Protocol):
    def build(self, work: Path, rev: str) -> Path: ...


class Measurer(Protocol):
    def measure(self, kernel: Path | str, rev: str) -> Measured: ...


@dataclass
class Step:
    n: int
    rev: str
    subject: str
    value: float
    verdict: str  # good | bad
    build_s: float
    measure_s: float
    note: str = ""
    run_dir: Path | None = None


@dataclass
class Result:
    row: str
    unit: str
    good: Step
    bad: Step
    steps: list[Step] = field(default_factory=list)
    first_bad: str = ""
    subject: str = ""

    def step_of(self, rev: str) -> Step | None:
        for s in [self.good, self.bad, *self.steps]:
            if s.rev == rev:
                return s
        return None


def decide(value: float, good: float, bad: float, floor: float) -> tuple[str, str]:
    """(good | bad, note): the end whose figure this one lies nearer; the note says when it lies
    beyond the floor (relative) from both ends."""
    verdict = "bad" if abs(value - bad) < abs(value - good) else "good"
    note = ""
    if all(abs(value - end) > floor * abs(end) for end in (good, bad)):
        note = f"between the ends ({value:,.1f}: beyond {100 * floor:g}% of both): several commits may move it"
    return verdict, note


def git(work: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", "-C", str(work), *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise LabError(f"git {' '.join(args)} in {work} failed: {(proc.stderr or proc.stdout).strip()[:300]}")
    return proc.stdout + proc.stderr


def worktree(tree: Path, work: Path) -> Path:
    """A detached worktree of `tree` at `work` (made once, reused: its build objects stay beside it),
    so the bisection never moves the user's own checkout."""
    if not (tree / ".git").exists() and git(tree, "rev-parse", "--git-dir", check=False).startswith("fatal"):
        raise InputError(f"--tree {tree} is not a git tree: give the kernel source checkout (git clone ...)")
    if not (work / ".git").exists():
        work.parent.mkdir(parents=True, exist_ok=True)
        git(tree, "worktree", "add", "--detach", str(work))
    return work


def _rev(work: Path, rev: str) -> str:
    out = git(work, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False).strip()
    if not re.fullmatch(r"[0-9a-f]{40}", out):
        raise InputError(f"{rev!r} is not a commit of the tree: give a commit, tag or branch it has")
    return out


def _subject(work: Path, rev: str) -> str:
    return git(work, "log", "-1", "--format=%s", rev).strip()


FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.M)
LEFT = re.compile(r"roughly (\d+) steps?")


def run(work: Path, good: str, bad: str, row: str, builder: Builder, measurer: Measurer, floor: float,
        progress: Callable[[str], None] = print) -> Result:
    """Bisect `work` (a git worktree) from `good` to `bad` for the row (see the module docstring)."""
    g, b = _rev(work, good), _rev(work, bad)
    if subprocess.run(["git", "-C", str(work), "merge-base", "--is-ancestor", g, b], capture_output=True,
                      timeout=60).returncode != 0:
        raise InputError(f"--good {good} is not an ancestor of --bad {bad}: swap them or pick other ends")

    def measure(n: int, rev: str) -> tuple[Measured, float, float]:
        git(work, "checkout", "--quiet", "--detach", rev)
        t0 = time.monotonic()
        kernel = builder.build(work, rev)
        t1 = time.monotonic()
        m = measurer.measure(kernel, rev)
        return m, t1 - t0, time.monotonic() - t1

    git(work, "bisect", "reset", check=False)
    ends = {}
    for name, rev in (("good", g), ("bad", b)):
        m, bs, ms = measure(0, rev)
        ends[name] = Step(0, rev, _subject(work, rev), m.value, name, bs, ms, run_dir=m.run_dir)
        progress(f"{name} end {rev[:12]} {ends[name].subject[:60]!r}: {m.value:,.1f} {m.unit} "
                 f"(build {bs:.1f} s, measure {ms:.1f} s)")
        unit = m.unit
    gv, bv = ends["good"].value, ends["bad"].value
    if abs(bv - gv) <= floor * abs(gv):
        raise InputError(f"the ends do not differ beyond {100 * floor:g}% ({gv:,.1f} vs {bv:,.1f} {unit}): "
                         f"nothing to bisect for {row}")
    result = Result(row=row, unit=unit, good=ends["good"], bad=ends["bad"])
    try:
        out = git(work, "bisect", "start", b, g)
        n = 0
        while True:
            found = FIRST_BAD.search(out)
            if found:
                result.first_bad = found.group(1)
                result.subject = _subject(work, result.first_bad)
                break
            n += 1
            rev = git(work, "rev-parse", "HEAD").strip()
            left = LEFT.search(out)
            m, bs, ms = measure(n, rev)
            verdict, note = decide(m.value, gv, bv, floor)
            step = Step(n, rev, _subject(work, rev), m.value, verdict, bs, ms, note, m.run_dir)
            result.steps.append(step)
            progress(f"step {n}{f' (~{left.group(1)} more)' if left else ''}: {rev[:12]} {step.subject[:60]!r}: "
                     f"{m.value:,.1f} {m.unit} -> {verdict} (build {bs:.1f} s, measure {ms:.1f} s)"
                     + (f"; {note}" if note else ""))
            out = git(work, "bisect", verdict)
    finally:
        git(work, "bisect", "reset", check=False)
    return result


def report(result: Result) -> str:
    """The bisection's ending: the commit found and the row's figure on either side, then (when both
    sides have a run directory) the regression report of lab/report/regression.py for the two runs."""
    bad = result.step_of(result.first_bad) or result.bad
    goods = [s for s in [result.good, *result.steps] if s.verdict == "good"]
    before = goods[-1] if goods else result.good
    pct = 100 * (bad.value - before.value) / abs(before.value) if before.value else float("nan")
    kind = "regression" if bad.value > before.value else "improvement"
    lines = [f"first bad commit: {result.first_bad[:12]} {result.subject!r}",
             f"ebpf-lab bisected a {pct:+.2f}% {kind} of {result.row} ({result.unit}/op) to commit "
             f"{result.first_bad[:12]} ({result.subject})",
             "", f"  good end {result.good.rev[:12]}: {result.good.value:,.1f}",
             f"  bad end  {result.bad.rev[:12]}: {result.bad.value:,.1f}",
             f"  last good measured {before.rev[:12]}: {before.value:,.1f}; first bad {bad.rev[:12]}: {bad.value:,.1f}",
             f"  steps: {len(result.steps)} (+2 ends); build s: "
             + ", ".join(f"{s.build_s:.1f}" for s in [result.good, result.bad, *result.steps])
             + "; measure s: " + ", ".join(f"{s.measure_s:.1f}" for s in [result.good, result.bad, *result.steps])]
    if before.run_dir and bad.run_dir:
        from lab.report import regression

        what = result.row.split("/", 1)[-1].replace("/", " ")
        focus = {"suite": result.row.split("/")[0] if "/" in result.row else "hooks", "what": what,
                 "row_key": result.row}
        text, _ = regression.for_runs([before.run_dir], [bad.run_dir], focus=focus)
        lines += ["", text]
    return "\n".join(lines) + "\n"


def version_key(release: str) -> tuple[int, ...]:
    """6.12.118+deb12-amd64 -> (6, 12, 118); 6.1.0-57-amd64 -> (6, 1, 0, 57)."""
    return tuple(int(x) for x in re.findall(r"\d+", release.split("+")[0])[:4])


def between(good: str, bad: str, releases: dict[str, str]) -> list[str]:
    """The catalog aliases whose release lies between the two ends' (both included), oldest first."""
    for end in (good, bad):
        if end not in releases:
            raise InputError(f"{end!r} is not a catalog kernel with a known release ({', '.join(releases)})")
    lo, hi = sorted((version_key(releases[good]), version_key(releases[bad])))
    inside = [a for a, r in releases.items() if lo <= version_key(r) <= hi]
    return sorted(inside, key=lambda a: version_key(releases[a]))


def catalog(good: str, bad: str, releases: dict[str, str], measurer: Measurer, floor: float,
            progress: Callable[[str], None] = print) -> tuple[list[Step], str]:
    """Measure the catalog kernels between the ends in order; (steps, the first alias nearer the bad end)."""
    order = between(good, bad, releases)
    if order[0] != good:
        order.reverse()  # the good end is the newer one: walk from it
    steps: list[Step] = []
    vals: dict[str, float] = {}
    for n, alias in enumerate([good, bad] + [a for a in order if a not in (good, bad)]):
        t0 = time.monotonic()
        m = measurer.measure(alias, alias)
        vals[alias] = m.value
        steps.append(Step(n, alias, releases[alias], m.value, "", 0.0, time.monotonic() - t0, run_dir=m.run_dir))
        progress(f"{alias} ({releases[alias]}): {m.value:,.1f} {m.unit} (measure {steps[-1].measure_s:.1f} s)")
    gv, bv = vals[good], vals[bad]
    ordered = sorted(steps, key=lambda s: order.index(s.rev))
    for s in ordered:
        s.verdict, s.note = decide(s.value, gv, bv, floor)
    return ordered, next((s.rev for s in ordered if s.verdict == "bad"), bad)
