"""Aggregation: every run's rows in one tidy pandas table, statistics, exports and comparisons.

Statistics follow mmtests / LISA practice: each row carries its per-trial samples (ns/op), so the
host can pool trials across runs, put a bootstrap 95% confidence interval on the median, and test
whether two groups differ (Mann-Whitney U by default: no normality assumption; Welch's t-test on
request). `compare` gives the kernel-comparison table that `inv results.compare A B` prints.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .results import LoadedRun, load_runs

# What identifies "the same measurement" in each suite, for comparisons and tables.
KEYS: dict[str, tuple[str, ...]] = {
    "hooks": ("hook", "attach_point", "variant", "method", "freq_hz"),
    "maps": ("map_type", "flags", "key_space", "operation", "driver", "contention", "max_entries"),
    "tools": ("tool", "load", "method"),
}
RUN_COLUMNS = ("run", "kernel_alias", "kernel_source", "playbook_name", "lab_version")
ALPHA = 0.05
THRESHOLD_PCT = 2.0  # smaller relative changes are "no change" even when significant


def rows_frame(runs: list[LoadedRun]) -> pd.DataFrame:
    """One tidy table: one line per stored row, with run-level facts and derived columns."""
    records: list[dict[str, Any]] = []
    for run in runs:
        for r in run.rows:
            rec = dict(r)
            rec["run"] = run.run_id
            rec["kernel_alias"] = run.fact("kernel_alias") or r["kernel"]
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
    if "freq_hz" in df.columns:
        df["freq_hz"] = df.apply(_freq_hz, axis=1)
    for col in ("ns_median", "ns_ci_low", "ns_ci_high"):
        if col not in df.columns:
            df[col] = np.nan
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df["emulated"] = df["accelerator"] == "tcg"
    spread = (df["ns_ci_high"] - df["ns_ci_low"]) / df["ns_median"].abs() * 100
    df["spread_pct"] = spread.where(np.isfinite(spread))  # a median of 0 has no relative spread
    df["group"] = df["kernel"] + " (" + df["accelerator"] + ")"
    return df


def _freq_hz(row: pd.Series) -> float | None:
    """perf_event sampling frequency: a numeric field if the suite gave one, else '<N>Hz' in a label."""
    for k in ("freq_hz", "frequency", "sample_freq", "freq"):
        v = row.get(k)
        if isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v)):
            return float(v)
    import re

    for k in ("attach_point", "variant", "hook"):
        v = row.get(k)
        if isinstance(v, str):
            m = re.search(r"(\d+)\s*hz", v, re.I)
            if m:
                return float(m.group(1))
    return None


def load_frame(run_dirs: list[Path]) -> tuple[pd.DataFrame, list[LoadedRun]]:
    runs = load_runs(run_dirs)
    return rows_frame(runs), runs


def export(df: pd.DataFrame, out_dir: Path, stem: str = "rows") -> list[Path]:
    """Write the tidy table as CSV (samples as a JSON list) and Parquet (samples as a list column)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = out_dir / f"{stem}.csv"
    pq = out_dir / f"{stem}.parquet"
    flat = df.copy()
    if "samples" in flat.columns:
        flat["samples"] = flat["samples"].map(lambda s: json.dumps(s) if isinstance(s, list) else "")
    flat.to_csv(csv, index=False)
    typed = df.copy()
    for col in typed.columns:
        if col == "samples":
            typed[col] = typed[col].map(lambda s: [float(x) for x in s] if isinstance(s, list) else None)
            continue
        if typed[col].dtype == object:
            kinds = {type(v) for v in typed[col] if v is not None and not _isnan(v)}
            if len(kinds) > 1 or kinds - {str, bool}:
                typed[col] = typed[col].map(lambda v: None if v is None or _isnan(v) else str(v))
    typed.to_parquet(pq, index=False)
    return [csv, pq]


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


# ---------------------------------------------------------------------------------------------
# statistics


def median_ci(samples: list[float] | np.ndarray, level: float = 0.95, resamples: int = 4000,
              seed: int = 1) -> tuple[float, float, float]:
    """Median and a percentile-bootstrap confidence interval of the median."""
    x = np.asarray([s for s in samples if s is not None], dtype=float)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    med = float(np.median(x))
    if x.size < 3:
        return med, float(x.min()), float(x.max())
    rng = np.random.default_rng(seed)
    meds = np.median(x[rng.integers(0, x.size, size=(resamples, x.size))], axis=1)
    lo, hi = np.quantile(meds, [(1 - level) / 2, (1 + level) / 2])
    return med, float(lo), float(hi)


def significance(a: list[float], b: list[float], test: str = "mannwhitney") -> float | None:
    """Two-sided p-value that samples a and b come from the same distribution (None: too few)."""
    a = [float(x) for x in a if x is not None]
    b = [float(x) for x in b if x is not None]
    if len(a) < 2 or len(b) < 2:
        return None
    if test == "welch":
        if np.std(a) == 0 and np.std(b) == 0:
            return 1.0 if np.mean(a) == np.mean(b) else 0.0
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    if test == "mannwhitney":
        return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    raise ValueError(f"unknown test {test!r}: mannwhitney or welch")


@dataclass(frozen=True)
class Side:
    """One side of a comparison (pooled over the rows of one key)."""

    median: float
    ci_low: float
    ci_high: float
    samples: list[float]
    n_rows: int
    status: str
    reason: str
    emulated: bool
    metric: str


def metric_of(row: pd.Series) -> tuple[str, float | None]:
    """What a row measures, lower is better: ns/op, else memlock bytes, else overhead %."""
    for col, name in (("ns_median", "ns/op"), ("memlock_measured", "memlock B"), ("overhead_pct", "overhead %")):
        v = row.get(col)
        if v is not None and not _isnan(v):
            return name, float(v)
    return "", None


def pool(rows: pd.DataFrame) -> Side:
    if rows.empty:
        return Side(math.nan, math.nan, math.nan, [], 0, "missing", "no rows", False, "")
    ok = rows[rows["status"] == "ok"]
    emulated = bool(rows["emulated"].any())
    if ok.empty:
        first = rows.iloc[0]
        return Side(math.nan, math.nan, math.nan, [], len(rows), str(first["status"]),
                    str(first.get("reason", "")), emulated, "")
    samples: list[float] = []
    values: list[float] = []
    metric = ""
    for _, r in ok.iterrows():
        metric, v = metric_of(r)
        s = r.get("samples")
        if metric == "ns/op" and isinstance(s, list) and s:
            samples.extend(float(x) for x in s)
        if v is not None:
            values.append(v)
    if samples:
        med, lo, hi = median_ci(samples)
    elif len(ok) == 1 and metric == "ns/op":
        r = ok.iloc[0]
        med, lo, hi = float(r["ns_median"]), float(r["ns_ci_low"]), float(r["ns_ci_high"])
    elif values:
        med = float(np.median(values))
        lo, hi = float(min(values)), float(max(values))
    else:
        med = lo = hi = math.nan
    return Side(med, lo, hi, samples, len(ok), "ok", "", emulated, metric)


def _key_cols(df: pd.DataFrame, suite: str) -> list[str]:
    return [k for k in KEYS.get(suite, ()) if k in df.columns]


def _label(values: dict[str, Any]) -> str:
    parts = []
    for k, v in values.items():
        if v is None or _isnan(v) or v == "":
            continue
        if k == "flags":
            parts.append(f"flags={int(v):#x}")
        elif k == "max_entries":
            parts.append(f"n={int(v)}")
        elif k == "freq_hz":
            parts.append(f"{int(v)}Hz")
        else:
            parts.append(str(v))
    return " ".join(parts)


def _norm(v: Any) -> Any:
    if v is None or _isnan(v):
        return ""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _by_key(df: pd.DataFrame, keys: list[str]) -> dict[tuple, pd.DataFrame]:
    """Rows grouped by their measurement key; missing values compare equal (unlike NaN)."""
    if df.empty:
        return {}
    tuples = [tuple(_norm(v) for v in vals) for vals in df[keys].itertuples(index=False, name=None)]
    out: dict[tuple, list[int]] = {}
    for pos, t in enumerate(tuples):
        out.setdefault(t, []).append(pos)
    return {k: df.iloc[v] for k, v in out.items()}


def _decide(recs: list[dict[str, Any]], alpha: float, threshold_pct: float) -> None:
    """Verdicts for compared records. p-values are adjusted for the number of comparisons made
    (Benjamini-Hochberg q-values): with dozens of measurements per run, p < 0.05 alone would flag
    a few changes between two runs of the same kernel by chance."""
    tested = [r for r in recs if r.get("p_value") is not None and not math.isnan(r["p_value"])]
    if tested:
        qs = stats.false_discovery_control([r["p_value"] for r in tested], method="bh")
        for r, q in zip(tested, qs, strict=True):
            r["q_value"] = float(q)
            r["_significant"] = q < alpha
    for r in recs:
        if "_emulated" not in r:
            continue  # "only in", "not comparable": decided already
        delta = r["delta_pct"]
        if not math.isnan(delta) and r.pop("_significant", False) and abs(delta) >= threshold_pct:
            verdict = "regression" if delta > 0 else "improvement"
        else:
            verdict = "no change"
        if r.pop("_emulated"):
            verdict += " (emulated)"
        r["verdict"] = verdict


def compare(a: pd.DataFrame, b: pd.DataFrame, test: str = "mannwhitney", alpha: float = ALPHA,
            threshold_pct: float = THRESHOLD_PCT) -> pd.DataFrame:
    """Per measurement present in a or b: A and B medians with CIs, change, p-value and a verdict.

    Verdict (lower is better for every metric here): "regression" / "improvement" when the change is
    at least threshold_pct and significant (p < alpha; exact metrics such as memlock bytes need no
    test), "no change" otherwise, "not comparable" when either side has no ok row. Rows measured
    under TCG emulation get "(emulated)" appended: they check the pipeline, not real overhead.
    """
    out: list[dict[str, Any]] = []
    suites = sorted(set(a.get("suite", pd.Series(dtype=str))) | set(b.get("suite", pd.Series(dtype=str))))
    for suite in suites:
        sa = a[a["suite"] == suite] if not a.empty else a
        sb = b[b["suite"] == suite] if not b.empty else b
        keys = _key_cols(pd.concat([sa, sb]), suite)
        ga, gb = _by_key(sa, keys), _by_key(sb, keys)
        for key in sorted(set(ga) | set(gb), key=lambda k: tuple(str(x) for x in k)):
            rec: dict[str, Any] = {"suite": suite, "what": _label(dict(zip(keys, key, strict=True)))}
            if key not in ga or key not in gb:
                rec.update(verdict="only in " + ("A" if key in ga else "B"))
                side = pool(ga.get(key, gb.get(key)))
                rec.update(metric=side.metric)
                out.append(rec)
                continue
            pa, pb = pool(ga[key]), pool(gb[key])
            rec.update(metric=pa.metric or pb.metric, a_median=pa.median, a_ci_low=pa.ci_low,
                       a_ci_high=pa.ci_high, b_median=pb.median, b_ci_low=pb.ci_low, b_ci_high=pb.ci_high,
                       a_trials=len(pa.samples) or pa.n_rows, b_trials=len(pb.samples) or pb.n_rows)
            if pa.status != "ok" or pb.status != "ok":
                why = "; ".join(f"{n} {s.status}: {s.reason[:80]}" for n, s in (("A", pa), ("B", pb))
                                if s.status != "ok")
                rec.update(verdict="not comparable", note=why)
                out.append(rec)
                continue
            rec["delta_pct"] = (pb.median - pa.median) / abs(pa.median) * 100 if pa.median else math.nan
            if pa.samples and pb.samples:
                rec["p_value"] = significance(pa.samples, pb.samples, test)
            else:
                rec["p_value"] = None
                exact = rec["metric"] != "ns/op"
                # no samples: exact metrics count as measured; timed ones fall back to disjoint CIs
                rec["_significant"] = exact or pa.ci_high < pb.ci_low or pb.ci_high < pa.ci_low
            rec["_emulated"] = (pa.emulated or pb.emulated) and rec["metric"] != "memlock B"
            out.append(rec)
    _decide(out, alpha, threshold_pct)
    cols = ["suite", "what", "metric", "a_median", "a_ci_low", "a_ci_high", "a_trials", "b_median",
            "b_ci_low", "b_ci_high", "b_trials", "delta_pct", "p_value", "q_value", "verdict", "note"]
    res = pd.DataFrame.from_records(out)
    for c in cols:
        if c not in res.columns:
            res[c] = None
    return res[cols]


def format_compare(res: pd.DataFrame, a_name: str, b_name: str, test: str = "mannwhitney") -> str:
    """The comparison as text: one line per measurement, like mmtests' compare-kernels."""

    def num(v: Any, digits: int = 1) -> str:
        if v is None or _isnan(v):
            return "-"
        return f"{v:,.{digits}f}"

    lines = [f"A = {a_name}", f"B = {b_name}",
             f"change = (B - A) / A; lower is better; a change counts if |change| >= {THRESHOLD_PCT}% and "
             f"q < {ALPHA} (q: the {test} two-sided p-value adjusted for the number of comparisons, "
             "Benjamini-Hochberg)", ""]
    table = []
    for _, r in res.iterrows():
        table.append({
            "suite": r["suite"], "measurement": r["what"], "metric": r["metric"] or "",
            "A median [95% CI]": f"{num(r['a_median'])} [{num(r['a_ci_low'])}, {num(r['a_ci_high'])}]"
            if r["a_median"] is not None and not _isnan(r["a_median"]) else "-",
            "B median [95% CI]": f"{num(r['b_median'])} [{num(r['b_ci_low'])}, {num(r['b_ci_high'])}]"
            if r["b_median"] is not None and not _isnan(r["b_median"]) else "-",
            "change": "-" if r["delta_pct"] is None or _isnan(r["delta_pct"]) else f"{r['delta_pct']:+.1f}%",
            "p": "-" if r["p_value"] is None or _isnan(r["p_value"]) else f"{r['p_value']:.3g}",
            "q": "-" if r["q_value"] is None or _isnan(r["q_value"]) else f"{r['q_value']:.3g}",
            "verdict": r["verdict"] + (f" ({r['note'][:60]})" if isinstance(r["note"], str) and r["note"] else ""),
        })
    if not table:
        return "\n".join(lines + ["no rows to compare"])
    heads = list(table[0])
    widths = {h: max(len(h), *(len(str(t[h])) for t in table)) for h in heads}
    numeric = {"change", "p", "q"}

    def line(cells: dict[str, Any]) -> str:
        return "  ".join(str(cells[h]).rjust(widths[h]) if h in numeric else str(cells[h]).ljust(widths[h])
                         for h in heads).rstrip()

    text = "\n".join([line({h: h for h in heads})] + [line(t) for t in table])
    counts = res["verdict"].str.replace(" (emulated)", "", regex=False).value_counts()
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    tail = [f"summary: {summary}"]
    if res["verdict"].str.contains("emulated").any():
        tail.append("(emulated) = measured under TCG: pipeline checked, timing not representative")
    return "\n".join(lines + [text, ""] + tail)
