"""Latency rows (method latency_abba, lab/agent/latency/) on the host: each percentile's change with
its interval from the row's per-pair samples (the rule of lab/results/stats.py), each arm's
percentile curve for the plot, and the rows spread one per percentile for `results.compare`."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from lab.results import stats

METHOD = "latency_abba"
LEVELS = ("p50", "p90", "p99", "p999")
LABEL = {"p50": "p50", "p90": "p90", "p99": "p99", "p999": "p99.9"}
CHANGE = "latency_change_samples"  # the column compare tests, on the spread rows


def is_latency(df: pd.DataFrame) -> pd.Series:
    if df.empty or "method" not in df:
        return pd.Series([False] * len(df), index=df.index)
    return df["method"] == METHOD


def change(r: pd.Series | dict[str, Any], level: str) -> stats.Interval:
    """Percentile `level`'s change in % of the baseline's: median and interval over the row's pairs."""
    v = r.get(f"latency_{level}_change_samples")
    return stats.latency_change(v if isinstance(v, list) else [])


def arm_median(r: pd.Series | dict[str, Any], arm: str, level: str) -> float | None:
    """An arm's (base / tool) percentile, median over the row's trials."""
    vals = [p[arm].get(level) for p in _pairs(r)]
    vals = stats.clean(vals)
    return stats.median_ci(vals).median if vals else None


def curve(r: pd.Series | dict[str, Any], arm: str) -> tuple[list[float], list[float]]:
    """(levels, latency ns) of an arm: per plot level, the median over trials of that trial's
    percentile (levels without support in every trial left out)."""
    levels = r.get("latency_levels")
    pairs = _pairs(r)
    if not isinstance(levels, list) or not pairs:
        return [], []
    xs, ys = [], []
    for i, lv in enumerate(levels):
        vals = [p[arm]["q"][i] for p in pairs if isinstance(p.get(arm, {}).get("q"), list) and len(p[arm]["q"]) > i]
        if vals and all(v is not None for v in vals):
            xs.append(float(lv))
            ys.append(stats.median_ci([float(v) for v in vals]).median)
    return xs, ys


def _pairs(r: pd.Series | dict[str, Any]) -> list[dict[str, Any]]:
    v = r.get("latency_trials")
    return [p for p in v if isinstance(p, dict) and "base" in p and "tool" in p] if isinstance(v, list) else []


def spread(df: pd.DataFrame) -> pd.DataFrame:
    """The frame with each latency row replaced by one row per percentile (method "latency_abba p99",
    CHANGE its per-pair changes in %), so compare tests every percentile like any figure."""
    mask = is_latency(df)
    if not mask.any():
        return df
    out = []
    for _, r in df[mask].iterrows():
        for lv in LEVELS:
            samples = r.get(f"latency_{lv}_change_samples")
            out.append(dict(r, method=f"{METHOD} {LABEL[lv]}", **{CHANGE: samples if isinstance(samples, list)
                                                                   else None}))
    return pd.concat([df[~mask], pd.DataFrame.from_records(out, columns=list(df.columns) + [CHANGE])],
                     ignore_index=True)


def is_spread(rows: pd.DataFrame) -> bool:
    """Rows spread by spread() (every one a latency percentile)."""
    return ("method" in rows and not rows.empty
            and all(isinstance(m, str) and m.startswith(METHOD + " ") for m in rows["method"]))


def level_of(method: str) -> str:
    return method[len(METHOD) + 1:] if method.startswith(METHOD + " ") else ""


def text(iv: stats.Interval, digits: int = 1) -> str:
    if iv.n == 0 or math.isnan(iv.median):
        return "-"
    return iv.text(digits, "%")
