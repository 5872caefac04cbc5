"""Every run's rows in one tidy pandas table (one line per stored row, with run-level facts and
the target group), and its export as CSV / Parquet. Statistics live in lab/results/stats.py; comparisons
in lab/analysis/compare.py; claims in lab/analysis/claims.py.

A target group is what makes measurements comparable: kernel release, accelerator, CPU model and
vCPU count. Rows of two machines never share a group, so they are never pooled.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from lab.core import units
from lab.results import readgates
from lab.results.store import LoadedRun, load_runs

# What identifies "the same measurement" in each suite, for comparisons and tables.
KEYS: dict[str, tuple[str, ...]] = {
    "hooks": ("hook", "attach_point", "variant", "method", "freq_hz"),
    "maps": ("map_type", "flags", "key_space", "operation", "driver", "contention", "nkeys", "max_entries",
             "inserted"),
    "tools": ("tool", "load", "method"),
}
GROUP_KEYS = ("kernel", "accelerator", "cpu_model", "vcpus")


def rows_frame(runs: list[LoadedRun]) -> pd.DataFrame:
    """One tidy table: one line per stored row, with run-level facts and derived columns. Every
    row passes the plausibility gates first (lab/results/readgates.py): no reader sees an ungated row."""
    records: list[dict[str, Any]] = []
    for run in runs:
        for rec in readgates.gate_rows(run.rows):
            rec["run"] = run.run_id
            rec["kernel_alias"] = run.fact("kernel_alias") or rec["kernel"]
            rec["kernel_source"] = run.fact("kernel_source")
            rec["playbook_name"] = run.fact("playbook_name")
            rec["lab_version"] = run.fact("lab_version")
            records.append(rec)
    df = pd.DataFrame.from_records(records)
    if df.empty:
        return df
    for suite_keys in KEYS.values():
        for k in suite_keys:
            if k not in df.columns:
                df[k] = None
    for col in ("ns_median", "samples"):
        if col not in df.columns:
            df[col] = None
    # emulated: plain TCG timings (noise, never a figure). icount rows are emulated too, but their
    # figures are exact instruction counts: `figure_unit` says so (filled in for rows recorded before
    # it existed), and they decide in their own unit.
    df["emulated"] = df["accelerator"] == "tcg"
    fu = df["figure_unit"] if "figure_unit" in df.columns else pd.Series([None] * len(df), index=df.index)
    df["figure_unit"] = [units.of({"figure_unit": u, "accelerator": a})
                         for u, a in zip(fu, df["accelerator"], strict=True)]
    df["group"] = [group_label(k, a, c, v) for k, a, c, v in df[list(GROUP_KEYS)].itertuples(index=False)]
    return df


def group_label(kernel: str, accelerator: str, cpu_model: str, vcpus: Any) -> str:
    """A target group's name: kernel (accelerator, vCPUs, CPU model)."""
    return f"{kernel} ({accelerator}, {int(vcpus)} vCPU, {cpu_model})"


def load_frame(run_dirs: list[Path]) -> tuple[pd.DataFrame, list[LoadedRun]]:
    runs = load_runs(run_dirs)
    return rows_frame(runs), runs


def export(df: pd.DataFrame, out_dir: Path, stem: str = "rows") -> list[Path]:
    """Write the tidy table as CSV (list fields such as samples as JSON) and Parquet (list columns)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = out_dir / f"{stem}.csv"
    pq = out_dir / f"{stem}.parquet"
    lists = [c for c in df.columns if df[c].map(lambda v: isinstance(v, list)).any()]
    flat = df.copy()
    for col in lists:
        flat[col] = flat[col].map(lambda s: json.dumps(s) if isinstance(s, list) else "")
    flat.to_csv(csv, index=False)
    typed = df.copy()
    for col in typed.columns:
        if col in lists:
            numeric = all(isinstance(x, int | float) for v in typed[col] if isinstance(v, list) for x in v)
            typed[col] = typed[col].map(lambda s, n=numeric: ([float(x) for x in s] if n else [str(x) for x in s])
                                        if isinstance(s, list) else None)
            continue
        if typed[col].dtype == object:
            kinds = {type(v) for v in typed[col] if v is not None and not _isnan(v)}
            if len(kinds) > 1 or kinds - {str, bool}:
                typed[col] = typed[col].map(lambda v: None if v is None or _isnan(v) else str(v))
    typed.to_parquet(pq, index=False)
    return [csv, pq]


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)
