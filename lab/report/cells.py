"""What a table cell and a plot bar share, computed once for both (tables.py, tools.py, page.py and
plots.py import it; it imports no plotting): a group of rows' interval and a target group's facts."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from lab.core import units
from lab.results import stats, unitview

Bar = tuple[stats.Interval | None, str]  # interval (None: no ok row) and the status to show instead


def interval(rows: pd.DataFrame, column: str = "samples") -> Bar:
    """The host's interval of ok rows: over one run's per-trial samples, or, when the rows come from
    several runs, over each run's median (the run is the unit: runs may differ in ops per trial, and
    trials of different runs are not exchangeable); its note then counts runs."""
    if rows.empty:
        return None, ""
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        return None, str(rows["status"].iloc[0])
    per: dict[str, list[float]] = {}
    if column in ok:
        runs = ok["run"] if "run" in ok else pd.Series(["-"] * len(ok), index=ok.index)
        for run, v in zip(runs, ok[column], strict=True):
            if isinstance(v, list):
                per.setdefault(str(run), []).extend(stats.clean(v))
    u = stats.unit_values({r: v for r, v in per.items() if v})
    if not u.values:
        return None, "no samples"
    iv = stats.median_ci(u.values)
    if u.unit == "runs":
        iv = dataclasses.replace(iv, note=iv.note.replace("trial", "run") + f" (medians of {u.runs} runs)")
    return iv, "ok"


def group_meta(g: pd.DataFrame) -> dict[str, Any]:
    first = g.iloc[0]
    timed = g[(g["status"] == "ok") & g["samples"].map(lambda s: isinstance(s, list) and len(s) > 0)]
    trials = sorted({len(s) for s in timed["samples"]})
    spreads = [x for x in (stats.spread_pct(stats.median_ci(s)) for s in timed["samples"]) if x is not None]
    unit = units.of(first)
    return {
        "group": first["group"], "kernel": first["kernel"], "accelerator": first["accelerator"],
        "unit": unit, "mode": unitview.mode(first["accelerator"]),
        "emulated": bool(first["emulated"]), "cpu_model": first["cpu_model"], "vcpus": int(first["vcpus"]),
        "trials": "-" if not trials else str(trials[0]) if len(trials) == 1 else f"{trials[0]}-{trials[-1]}",
        "spread": f"median {pd.Series(spreads).median():.0f}%, max {max(spreads):.0f}%" if spreads else
        "- (no intervals: fewer than 3 trials)" if trials else "-",
    }
