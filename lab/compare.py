"""`inv results.compare A B`: per measurement, A and B with intervals, the change, its test and a
verdict, like mmtests' compare-kernels. Statistics from lab/stats.py, the policy the claims use:

- each side is tested on per-trial samples when it comes from one run, on run medians when it
  spans several runs (the run is the unit);
- ns/op on `samples` (change in % of A), tool overhead on `overhead_samples` (change in percentage
  points), memlock bytes exactly (no test: bytes do not vary by chance);
- one family per comparison: Benjamini-Hochberg q-values over every test in the table; a change is
  a regression or improvement when q < alpha and it is at least the threshold (2 % for relative
  metrics, 1 point for % metrics). Rows without per-trial samples are not tested ("no samples").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import stats
from .aggregate import KEYS
from .selectors import select

THRESHOLD_PCT = 2.0  # relative change (ns/op, bytes) below which nothing counts
THRESHOLD_POINTS = 1.0  # change in percentage points (tool overhead) below which nothing counts
COLUMNS = ["suite", "what", "metric", "a_median", "a_ci_low", "a_ci_high", "a_n", "b_median", "b_ci_low",
           "b_ci_high", "b_n", "unit", "delta", "delta_unit", "p_value", "q_value", "verdict", "note"]


@dataclass(frozen=True)
class Measure:
    metric: str
    column: str
    points: bool
    exact: bool


def measure_of(suite: str, rows: pd.DataFrame) -> Measure:
    if suite == "tools":
        return Measure("overhead %", "overhead_samples", True, False)
    if suite == "maps" and (rows["operation"] == "memory").all():
        return Measure("memlock B", "memlock_measured", False, True)
    return Measure("ns/op", "samples", False, False)


def _norm(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def label(values: dict[str, Any]) -> str:
    parts = []
    for k, v in values.items():
        if v in ("", None):
            continue
        if k == "flags":
            parts.append(f"flags={int(v):#x}")
        elif k in ("max_entries", "nkeys", "inserted"):
            parts.append(f"{ {'max_entries': 'n', 'nkeys': 'keys', 'inserted': 'inserted'}[k]}={int(v)}")
        elif k == "freq_hz":
            parts.append(f"{int(v)}Hz")
        else:
            parts.append(str(v))
    return " ".join(parts)


def by_key(df: pd.DataFrame, keys: list[str]) -> dict[tuple, pd.DataFrame]:
    """Rows grouped by their measurement key; missing values compare equal (unlike NaN)."""
    if df.empty:
        return {}
    out: dict[tuple, list[int]] = {}
    for pos, vals in enumerate(df[keys].itertuples(index=False, name=None)):
        out.setdefault(tuple(_norm(v) for v in vals), []).append(pos)
    return {k: df.iloc[v] for k, v in out.items()}


def _per_run(rows: pd.DataFrame, column: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for _, r in rows.iterrows():
        v = r.get(column)
        vals = stats.clean(v if isinstance(v, list) else [v])
        if vals:
            out.setdefault(str(r["run"]), []).extend(vals)
    return out


def compare(a: pd.DataFrame, b: pd.DataFrame, test: str = "mannwhitney", alpha: float = stats.ALPHA) -> pd.DataFrame:
    """One line per measurement present in a or b (see the module docstring for the policy)."""
    out: list[dict[str, Any]] = []
    suites = sorted(set(a.get("suite", pd.Series(dtype=str))) | set(b.get("suite", pd.Series(dtype=str))))
    for suite in suites:
        sa = a[a["suite"] == suite] if not a.empty else a
        sb = b[b["suite"] == suite] if not b.empty else b
        both = pd.concat([sa, sb])
        keys = [k for k in KEYS.get(suite, ()) if k in both.columns]
        ga, gb = by_key(sa, keys), by_key(sb, keys)
        for key in sorted(set(ga) | set(gb), key=lambda k: tuple(str(x) for x in k)):
            rec: dict[str, Any] = {"suite": suite, "what": label(dict(zip(keys, key, strict=True)))}
            ra, rb = ga.get(key), gb.get(key)
            m = measure_of(suite, pd.concat([x for x in (ra, rb) if x is not None]))
            rec["metric"] = m.metric
            if ra is None or rb is None:
                other = sb if rb is None else sa  # a row that failed before measuring lacks the method etc.
                sel = {k: v for k, v in zip(keys, key, strict=True) if v != ""}
                failed = select(other[other["status"] != "ok"], sel, missing_matches=True) if not other.empty \
                    else other
                if failed.empty:
                    rec["verdict"] = "only in " + ("A" if rb is None else "B")
                else:
                    rec["verdict"] = "not comparable"
                    rec["note"] = (f"{'B' if rb is None else 'A'} {failed['status'].iloc[0]}: "
                                   f"{str(failed['reason'].iloc[0])[:80]}")
                out.append(rec)
                continue
            oka, okb = ra[ra["status"] == "ok"], rb[rb["status"] == "ok"]
            if oka.empty or okb.empty:
                rec["verdict"] = "not comparable"
                rec["note"] = "; ".join(f"{n} {r['status'].iloc[0]}: {str(r['reason'].iloc[0])[:80]}"
                                        for n, r, ok in (("A", ra, oka), ("B", rb, okb)) if ok.empty)
                out.append(rec)
                continue
            pa, pb = _per_run(oka, m.column), _per_run(okb, m.column)
            if not pa or not pb:
                rec["verdict"] = "not comparable"
                rec["note"] = f"no per-trial {m.column}"
                out.append(rec)
                continue
            force = len(pa) > 1 or len(pb) > 1
            ua, ub = stats.unit_values(pa, force), stats.unit_values(pb, force)
            ia, ib = stats.median_ci(ua.values), stats.median_ci(ub.values)
            rec.update(a_median=ia.median, a_ci_low=ia.low, a_ci_high=ia.high, a_n=ia.n, b_median=ib.median,
                       b_ci_low=ib.low, b_ci_high=ib.high, b_n=ib.n, unit="rows" if m.exact else ua.unit)
            rec["delta"] = ib.median - ia.median if m.points else stats.relative_pct(ib.median, ia.median)
            rec["delta_unit"] = "pt" if m.points else "%"
            rec["p_value"] = None if m.exact else stats.p_difference(ua.values, ub.values, test)
            rec["_exact"] = m.exact
            rec["_emulated"] = bool(oka["emulated"].any() or okb["emulated"].any()) and not m.exact
            out.append(rec)
    _decide(out, alpha)
    res = pd.DataFrame.from_records(out)
    for c in COLUMNS:
        if c not in res.columns:
            res[c] = None
    return res[COLUMNS]


def _decide(recs: list[dict[str, Any]], alpha: float) -> None:
    qs = stats.bh([r.get("p_value") for r in recs])
    for r, q in zip(recs, qs, strict=True):
        r["q_value"] = q
        if "_exact" not in r:
            continue  # only in, not comparable: decided already
        exact, emulated = r.pop("_exact"), r.pop("_emulated")
        delta = r["delta"]
        threshold = THRESHOLD_POINTS if r["delta_unit"] == "pt" else THRESHOLD_PCT
        significant = exact or (q is not None and q < alpha)
        if delta is not None and not math.isnan(delta) and significant and abs(delta) >= threshold:
            verdict = "regression" if delta > 0 else "improvement"
        else:
            verdict = "no change"
        r["verdict"] = verdict + (" (emulated)" if emulated else "")


def format_compare(res: pd.DataFrame, a_name: str, b_name: str, test: str = "mannwhitney") -> str:
    """The comparison as text: one line per measurement."""

    def num(v: Any, digits: int = 1) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        return f"{v:,.{digits}f}"

    def side(r: pd.Series, s: str) -> str:
        if r[f"{s}_median"] is None or (isinstance(r[f"{s}_median"], float) and math.isnan(r[f"{s}_median"])):
            return "-"
        ci = (f"[{num(r[f'{s}_ci_low'])}, {num(r[f'{s}_ci_high'])}]" if pd.notna(r[f"{s}_ci_low"])
              else "[no interval]")
        return f"{num(r[f'{s}_median'])} {ci} n={int(r[f'{s}_n'])}"

    lines = [f"A = {a_name}", f"B = {b_name}",
             f"change = B - A (% of A; points for overhead %); lower is better; a change counts if it is at least "
             f"{THRESHOLD_PCT:g}% ({THRESHOLD_POINTS:g} point) and q < {stats.ALPHA} (q: the {test} two-sided "
             "p-value adjusted for every test in this table, Benjamini-Hochberg); n = trials, or runs when a side "
             "spans several runs (each run then counts once, by its median); intervals: order statistics of the "
             "median, none below 3", ""]
    table = []
    for _, r in res.iterrows():
        delta = r["delta"]
        table.append({
            "suite": r["suite"], "measurement": r["what"], "metric": r["metric"] or "",
            "A median [CI]": side(r, "a"), "B median [CI]": side(r, "b"),
            "change": "-" if delta is None or (isinstance(delta, float) and math.isnan(delta))
            else f"{delta:+.1f}{'%' if r['delta_unit'] == '%' else ' pt'}",
            "p": "-" if pd.isna(r["p_value"]) else f"{r['p_value']:.3g}",
            "q": "-" if pd.isna(r["q_value"]) else f"{r['q_value']:.3g}",
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
    tail = ["summary: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))]
    if res["verdict"].str.contains("emulated").any():
        tail.append("(emulated) = measured under TCG: pipeline checked, timing not representative")
    return "\n".join(lines + [text, ""] + tail)
