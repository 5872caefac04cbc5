"""`inv results.compare A B`: per measurement, A and B with intervals, the change, its test and a
verdict, like mmtests' compare-kernels. Statistics from lab/results/stats.py, the policy the claims use:

- each side is tested on per-trial samples when it comes from one run, on run medians when it
  spans several runs (the run is the unit);
- ns/op on `samples` (change in % of A), tool overhead on `overhead_samples` (change in percentage
  points), memlock bytes exactly (no test: bytes do not vary by chance);
- one family per comparison: Benjamini-Hochberg q-values over every test in the table; a change is
  a regression or improvement when q < alpha and it is at least the threshold (2 % for relative
  metrics, 1 point for % metrics). Rows without per-trial samples are not tested ("no samples").
- latency rows (method latency_abba, lab/results/latency.py) are compared once per percentile (p50,
  p90, p99, p99.9: method "latency_abba p99"), on their per-pair changes in % of the baseline
  percentile, in points like tool overhead;
- a pair whose sample sizes cannot reach p < alpha (Mann-Whitney: the smallest two-sided p of n_a vs
  n_b values is 2 / C(n_a + n_b, n_a), 0.1 for 3 vs 3) is not tested and stays out of the family:
  "untestable", listed apart with the other pairs that were not tested;
- a change whose medians lie on both sides of zero is a "sign change", never an improvement or a
  regression (a percentage of a figure that crosses zero says nothing);
- figures in guest instructions (icount) are compared only with figures in guest instructions (a
  comparison of ns with instructions is refused, `UnitMismatch`); a method with a determinism
  tolerance (lab/agent/hooks/gates.py ICOUNT_TOLERANCE: kernel_batch 0.5 %, the map suite's in-kernel
  rows 2 %) is compared exactly: a difference of the medians beyond the tolerance is a change,
  within it "no change", with no test; a side whose own trials differ beyond it is "untestable" (it
  was disturbed). Other methods in instructions (the open path) are tested like time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lab.core import units
from lab.results import latency, stats, unitview
from lab.results.aggregate import KEYS
from lab.results.selectors import select

try:
    from lab.agent.hooks.gates import ICOUNT_TOLERANCE
except ImportError:  # before the agent's determinism gate existed: its measured value
    ICOUNT_TOLERANCE = {"kernel_batch": 0.005}


def tolerance_words() -> str:
    """The determinism tolerances by method, the map suite's long method names as "in-kernel map rows"."""
    named: dict[str, float] = {}
    for method, tol in ICOUNT_TOLERANCE.items():
        named.setdefault("in-kernel map rows" if "BPF_PROG_TEST_RUN" in method else method, tol)
    return ", ".join(f"{k} {100 * v:g}%" for k, v in named.items())

THRESHOLD_PCT = 2.0  # relative change (ns/op, bytes) below which nothing counts
THRESHOLD_POINTS = 1.0  # change in percentage points (tool overhead) below which nothing counts
COLUMNS = ["suite", "what", "metric", "a_median", "a_ci_low", "a_ci_high", "a_n", "b_median", "b_ci_low",
           "b_ci_high", "b_n", "unit", "delta", "delta_unit", "delta_abs", "p_value", "q_value", "verdict", "note",
           "tested"]
CHANGES = ("regression", "improvement", "sign change")  # what a tested pair's verdict says when it moved


class UnitMismatch(ValueError):
    """The two sides are in different units (ns and guest instructions): never compared."""


@dataclass(frozen=True)
class Measure:
    metric: str
    column: str
    points: bool
    exact: bool


def measure_of(suite: str, rows: pd.DataFrame, unit: str = units.NS) -> Measure:
    if latency.is_spread(rows):
        return Measure(f"{latency.level_of(str(rows['method'].iloc[0]))} change %", latency.CHANGE, True, False)
    if suite == "tools":
        return Measure("overhead %", "overhead_samples", True, False)
    if suite == "maps" and (rows["operation"] == "memory").all():
        return Measure("memlock B", "memlock_measured", False, True)
    return Measure(f"{units.short(unit)}/op", "samples", False, False)


def check_units(a: pd.DataFrame, b: pd.DataFrame) -> str:
    """The one unit both sides are in; UnitMismatch (with the reason) when they differ or a side mixes."""
    ua, ub = unitview.frame_units(a), unitview.frame_units(b)
    if len(set(ua) | set(ub)) > 1:
        def side(name: str, df: pd.DataFrame, us: list[str]) -> str:
            acc = ", ".join(sorted({str(x) for x in df.get("accelerator", pd.Series(dtype=str))})) or "?"
            return f"{name} is in {' and '.join(units.label(u) for u in us)} (accelerator {acc})"
        raise UnitMismatch(f"refused: {side('A', a, ua)}, {side('B', b, ub)}: figures in ns and in guest "
                           "instructions are never compared (compare icount runs with icount runs, timed "
                           "runs with timed runs)")
    return (ua or ub or [units.NS])[0]


def min_p(na: int, nb: int, test: str) -> float:
    """The smallest two-sided p a test can give for n_a vs n_b values (Mann-Whitney, no ties:
    2 / C(n_a + n_b, n_a)); Welch can reach any p from 2 per side."""
    if na < 2 or nb < 2:
        return 1.0
    return min(1.0, 2.0 / math.comb(na + nb, na)) if test == "mannwhitney" else 0.0


def tolerance(rows: pd.DataFrame, unit: str) -> float | None:
    """The determinism tolerance of these rows' method in guest instructions (None: not exact)."""
    if unit != units.INSN or "method" not in rows:
        return None
    tols = {ICOUNT_TOLERANCE.get(str(m)) for m in rows["method"]}
    return tols.pop() if len(tols) == 1 else None


def _spread(values: list[float]) -> float | None:
    med = stats.median_ci(values).median if values else None
    return (max(values) - min(values)) / abs(med) if len(values) >= 2 and med else None


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
    """One line per measurement present in a or b (see the module docstring for the policy).
    Raises UnitMismatch when the sides are not in one unit."""
    unit = check_units(a, b)
    a, b = latency.spread(a), latency.spread(b)  # a latency row: one measurement per percentile
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
            m = measure_of(suite, pd.concat([x for x in (ra, rb) if x is not None]), unit)
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
            rec["delta_abs"] = ib.median - ia.median
            tol = tolerance(pd.concat([oka, okb]), unit) if not m.exact else None
            rec["_tol"] = tol
            rec["_exact"] = m.exact or tol is not None
            rec["_emulated"] = bool(oka["emulated"].any() or okb["emulated"].any()) and not m.exact
            rec["p_value"] = None
            if tol is not None:
                wide = [(n, sp) for n, sp in (("A", _spread(ua.values)), ("B", _spread(ub.values)))
                        if sp is not None and sp > tol]
                if wide:
                    rec["_untestable"] = "; ".join(f"{n}'s trials differ by {100 * sp:.3f}%" for n, sp in wide) + \
                        f", beyond the determinism tolerance {100 * tol:g}%: not an exact count"
            elif not m.exact:
                floor = min_p(len(ua.values), len(ub.values), test)
                if floor >= alpha:
                    more = ("more runs per side decide it (a side spans several runs: the run is the unit)"
                            if ua.unit == "runs" else "more trials decide it")
                    rec["_untestable"] = (f"n={len(ua.values)}/{len(ub.values)} {ua.unit} cannot reach p < {alpha:g} "
                                          f"(the smallest {test} p is {floor:.2g}): {more}")
                else:
                    rec["p_value"] = stats.p_difference(ua.values, ub.values, test)
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
        r["tested"] = "_exact" in r and "_untestable" not in r
        if "_exact" not in r:
            continue  # only in, not comparable: decided already
        exact, emulated, tol = r.pop("_exact"), r.pop("_emulated"), r.pop("_tol")
        if "_untestable" in r:
            r["verdict"], r["note"] = "untestable", r.pop("_untestable")
            continue
        delta = r["delta"]
        threshold = 100 * tol if tol is not None else THRESHOLD_POINTS if r["delta_unit"] == "pt" else THRESHOLD_PCT
        significant = exact or (q is not None and q < alpha)
        beyond = abs(delta) > threshold if tol is not None else abs(delta) >= threshold
        if delta is not None and not math.isnan(delta) and significant and beyond:
            a, b = r["a_median"], r["b_median"]
            if a * b < 0:
                verdict = "sign change"
                r["note"] = f"from {a:,.1f} to {b:,.1f}: the figure crosses zero"
            else:
                verdict = "regression" if delta > 0 else "improvement"
        else:
            verdict = "no change"
        if tol is not None:
            r["note"] = (f"exact: {r['delta_abs']:+,.1f} insn, "
                         f"{'beyond' if verdict != 'no change' else 'within'} the determinism tolerance {100 * tol:g}%")
        r["verdict"] = verdict + (" (emulated)" if emulated else "")


def _num(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.{digits}f}"


def _side(r: pd.Series, s: str) -> str:
    if r[f"{s}_median"] is None or (isinstance(r[f"{s}_median"], float) and math.isnan(r[f"{s}_median"])):
        return "-"
    ci = (f"[{_num(r[f'{s}_ci_low'])}, {_num(r[f'{s}_ci_high'])}]" if pd.notna(r[f"{s}_ci_low"])
          else "[no interval]")
    return f"{_num(r[f'{s}_median'])} {ci} n={int(r[f'{s}_n'])}"


def _change(r: pd.Series) -> str:
    delta = r["delta"]
    if delta is None or (isinstance(delta, float) and math.isnan(delta)):
        return "-"
    if r["delta_unit"] != "%":
        return f"{delta:+.1f} pt"
    if r["metric"] == f"{units.short(units.INSN)}/op" and pd.notna(r["delta_abs"]):
        return f"{r['delta_abs']:+,.1f} ({delta:+.2f}%)"
    return f"{delta:+.1f}%"


def _columns(table: list[dict[str, Any]], numeric: set[str]) -> list[str]:
    heads = list(table[0])
    widths = {h: max(len(h), *(len(str(t[h])) for t in table)) for h in heads}

    def line(cells: dict[str, Any]) -> str:
        return "  ".join(str(cells[h]).rjust(widths[h]) if h in numeric else str(cells[h]).ljust(widths[h])
                         for h in heads).rstrip()

    return [line({h: h for h in heads})] + [line(t) for t in table]


def format_compare(res: pd.DataFrame, a_name: str, b_name: str, test: str = "mannwhitney",
                   unit: str = units.NS, same_kernel: bool = False) -> str:
    """The comparison as text: the tested measurements, then the pairs not tested, listed apart.
    same_kernel: both sides ran one kernel, so every change is a false change (its rate is printed)."""
    lines = [f"A = {a_name}", f"B = {b_name}"]
    if unit == units.INSN:
        lines += [f"figures in {units.label(unit)} ({unitview.EMULATED_INSN}): {units.INSN_NOTE}",
                  "change = B - A in guest instructions (% of A); methods with a determinism tolerance ("
                  + tolerance_words() + ") compare exactly: beyond it a change, within it no change, no test"]
    lines += [f"change = B - A (% of A; points for overhead %); lower is better; a change counts if it is at least "
              f"{THRESHOLD_PCT:g}% ({THRESHOLD_POINTS:g} point) and q < {stats.ALPHA} (q: the {test} two-sided "
              "p-value adjusted for every test in this table, Benjamini-Hochberg); n = trials, or runs when a side "
              "spans several runs (each run then counts once, by its median); intervals: order statistics of the "
              "median, none below 3; a change whose medians lie on both sides of zero is a sign change", ""]
    tested = [{
        "suite": r["suite"], "measurement": r["what"], "metric": r["metric"] or "",
        "A median [CI]": _side(r, "a"), "B median [CI]": _side(r, "b"), "change": _change(r),
        "p": "-" if pd.isna(r["p_value"]) else f"{r['p_value']:.3g}",
        "q": "-" if pd.isna(r["q_value"]) else f"{r['q_value']:.3g}",
        "verdict": r["verdict"] + (f" ({r['note'][:90]})" if isinstance(r["note"], str) and r["note"] else ""),
    } for _, r in res.iterrows() if bool(r["tested"])]
    apart = [{
        "suite": r["suite"], "measurement": r["what"], "metric": r["metric"] or "",
        "A median [CI]": _side(r, "a"), "B median [CI]": _side(r, "b"), "verdict": r["verdict"],
        "why": str(r["note"])[:140] if isinstance(r["note"], str) else "",
    } for _, r in res.iterrows() if not bool(r["tested"])]
    if not tested and not apart:
        return "\n".join(lines + ["no rows to compare"])
    out = lines + (_columns(tested, {"change", "p", "q"}) if tested else ["no measurement could be tested"])
    if apart:
        out += ["", f"not tested ({len(apart)}: only on one side, not comparable or untestable):"]
        out += _columns(apart, set())
    verdicts = res["verdict"].str.replace(" (emulated)", "", regex=False)
    done = res["tested"].fillna(False).astype(bool)
    counts = verdicts[done].value_counts()
    moved = int(verdicts[done].isin(CHANGES).sum())
    out += ["", "summary: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
            + (f"; {len(apart)} not tested" if apart else ""),
            f"changes: {moved} of {len(tested)} tested measurements"
            + (f" (both sides ran one kernel: false-change rate {moved}/{len(tested)})" if same_kernel else "")]
    if res["verdict"].str.contains("emulated").any():
        out.append("(emulated) = measured under TCG: pipeline checked, timing not representative")
    return "\n".join(out)


PARAM_FACTS = ("playbook_name", "suites", "icount_overrides", "qemu_version", "cpu_model_guest", "cpu_flags_md5",
               "guest_cmdline", "guest")


def _flat(value: Any, prefix: str) -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k, v in value.items():
            out |= _flat(v, f"{prefix}.{k}")
        return out
    return {prefix: str(value)}


def param_differences(manifests_a: list[dict[str, Any]], manifests_b: list[dict[str, Any]]) -> list[str]:
    """What differs between the two sides' playbook parameters and (icount) what an instruction count
    depends on: one line per fact, "name: A value vs B value" (several values of a side joined by |)."""
    def side(ms: list[dict[str, Any]]) -> dict[str, set[str]]:
        got: dict[str, set[str]] = {}
        for m in ms:
            for fact in PARAM_FACTS:
                if m.get(fact) is not None:
                    for k, v in _flat(m[fact], fact).items():
                        got.setdefault(k, set()).add(v)
        return got

    a, b = side(manifests_a), side(manifests_b)
    lines = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, {"(not recorded)"}), b.get(k, {"(not recorded)"})
        if va != vb:
            lines.append(f"{k}: {' | '.join(sorted(va))} vs {' | '.join(sorted(vb))}")
    return lines
