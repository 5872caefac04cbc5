"""bench.bisect's measurer: one guest run (icount by default) of only the suite, attach type and
variant (or map type) of the row asked for, from a playbook derived from `quick` (lab/run/tooloptions.py
derive), and the row's figure read back from the run: the median of its per-trial samples. The hook
suite measures every method of a hook and variant in one go (kernel_batch only when the row asks for
it), so "only that row" is that hook and variant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.analysis import history
from lab.core import units
from lab.core.config import InputError, LabError
from lab.results import stats
from lab.run.bisect import Measured


def parse_row(row: str) -> tuple[str, dict[str, str]]:
    """HOOK/VARIANT/METHOD (hooks) or maps/MAP_TYPE/... -> (suite, what the playbook narrows to)."""
    parts = [p for p in row.split("/") if p]
    if parts and parts[0] in ("hooks", "maps"):
        suite, parts = parts[0], parts[1:]
    else:
        suite = "hooks"
    if suite == "hooks":
        if len(parts) != 3:
            raise InputError(f"--row {row!r}: give HOOK/VARIANT/METHOD (e.g. raw_tp/empty/kernel_batch)")
        return suite, {"hook": parts[0], "variant": parts[1], "method": parts[2]}
    if not parts:
        raise InputError(f"--row {row!r}: give maps/MAP_TYPE/... as results.history names it")
    return suite, {"map_type": parts[0], "rest": "/".join(parts[1:])}


@dataclass
class RowMeasurer:
    row: str
    playbook: str = "quick"
    accel: str = "icount"

    def playbook_for(self) -> str:
        from lab.run import tooloptions

        suite, want = parse_row(self.row)
        over: dict[str, Any]
        if suite == "hooks":
            over = {"hooks": [want["hook"]], "variants": [want["variant"]],
                    "kernel_batch": want["method"] == "kernel_batch"}
        else:
            over = {"types": [want["map_type"]]}
        return tooloptions.derive(self.playbook, over, suite=suite)

    def measure(self, kernel: Path | str, rev: str) -> Measured:
        from lab.run import suites

        suite, _ = parse_row(self.row)
        store = suites.run([suite], kernel=str(kernel), playbook=self.playbook_for(), accel=self.accel)
        if store is None:
            raise LabError(f"the run on {rev[:12]} ended before its first row (see above)")
        return figure(store.path, self.row)


def figure(run_dir: Path, row: str) -> Measured:
    """The row's figure in one run: the median of its per-trial samples (results.history's row key)."""
    series, _ = history.build([run_dir])
    want = row if row.startswith(("hooks/", "maps/")) else f"hooks/{row}"
    mine = [s for s in series if s.row_key == want or s.row_key.startswith(want + "@")]
    if not mine:
        known = ", ".join(sorted(s.row_key for s in series)[:12])
        raise LabError(f"run {run_dir.name} has no ok row {want} (it has: {known}...)")
    s = mine[0]
    vals = [p.median for p in s.points]
    return Measured(value=stats.median_ci(vals).median, unit=units.short(s.unit), run_dir=run_dir,
                    note=f"{len(mine)} series matched" if len(mine) > 1 else "")

