"""`results.check --fail-on PCT`: each run against its baseline (the newest earlier run of the same
kernel alias and accelerator, in --previous DIR or else in the store itself), failing with the
regression report (lab/report/regression.py) when a row regressed by at least PCT."""

from __future__ import annotations

from pathlib import Path

from lab.report import regression
from lab.results import store as results


def _key(d: Path) -> tuple[str, str]:
    run = results.load_run(d)
    return str(run.fact("kernel_alias") or run.kernel), run.accelerator


def baseline(run_dir: Path, candidates: list[Path]) -> Path | None:
    """The newest candidate older than run_dir (by run id: ids start with their UTC time) of the same
    kernel alias and accelerator."""
    want = _key(run_dir)
    older = [d for d in candidates if d.name < run_dir.name and d.resolve() != run_dir.resolve()]
    same = [d for d in older if _key(d) == want]
    return max(same, key=lambda d: d.name) if same else None


def check(run_dirs: list[Path], candidates: list[Path], pct: float) -> tuple[list[str], bool]:
    """(lines to print, failed): per run, its baseline and either the report (a regression of at least
    pct) or one line saying none, or that there was no baseline."""
    out: list[str] = []
    failed = False
    for d in run_dirs:
        base = baseline(d, candidates)
        if base is None:
            out.append(f"{d.name}: no earlier run of kernel {_key(d)[0]} under {_key(d)[1]} to compare with")
            continue
        text, res = regression.for_runs([base], [d])
        bad = regression.beyond(res, pct)
        if bad.empty:
            out.append(f"{d.name}: no regression of {pct:g}% or more against {base.name}")
            continue
        failed = True
        out.append(f"{d.name}: {len(bad)} row(s) regressed by {pct:g}% or more against {base.name}:\n\n{text}")
    return out, failed
