"""A regression report in the style kernel engineers act on (the kernel test robot's mails): a
headline with the signed change of the metric that moved most, the kernel(s), the accelerator and the
unit; a context block (host, CPUs, QEMU, playbook, parameters, the exact commands that reproduce both
sides); the table of only the rows that moved (old, new, change, spread); the rows that could not be
compared and why. Plain text, to paste into a mail. It renders results.compare's table
(lab/analysis/compare.py decides every verdict; nothing is decided here)."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from lab.analysis import compare as comparing
from lab.core import units
from lab.results.store import LoadedRun

MOVED = comparing.CHANGES


def _one(runs: list[LoadedRun], get: Any) -> str:
    vals = list(dict.fromkeys(str(v) for v in (get(r) for r in runs) if v not in (None, "")))
    return " | ".join(vals) if vals else "not recorded"


def command(run: LoadedRun) -> str:
    """The lab command that measures this run's side again: the suite task (or bench.all for several)
    with the run's kernel, playbook and accelerator."""
    suites = run.manifest.get("suites")
    names = sorted(suites) if isinstance(suites, dict) and suites else run.suites
    task = f"bench.{names[0]}" if len(names) == 1 else "bench.all"
    kernel = run.fact("kernel_alias") or run.fact("kernel_image") or run.kernel
    playbook = run.fact("playbook") or run.fact("playbook_name") or "default"
    parts = ["./labctl", task, "--kernel", str(kernel), "--playbook", str(playbook)]
    if run.accelerator not in ("host", "unknown", "") and str(kernel) != "host":
        parts += ["--accel", run.accelerator]
    return " ".join(parts)


def _params(runs: list[LoadedRun]) -> list[str]:
    out: dict[str, str] = {}
    for r in runs:
        suites = r.manifest.get("suites")
        if isinstance(suites, dict):
            for suite, p in suites.items():
                out.setdefault(suite, json.dumps(p, sort_keys=True, default=str))
    return [f"    {k}: {v}" for k, v in sorted(out.items())]


def _spread(lo: Any, hi: Any, med: Any) -> str:
    if lo is None or hi is None or med in (None, 0) or any(isinstance(v, float) and math.isnan(v)
                                                           for v in (lo, hi, med)):
        return "-"
    return f"±{50 * (hi - lo) / abs(med):.2f}%"


def _fmt(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.2f}"


def headline(row: pd.Series, kernels: str, accelerator: str, unit: str, name: str = "") -> str:
    what = "regression" if str(row["verdict"]).startswith("regression") else \
        "improvement" if str(row["verdict"]).startswith("improvement") else str(row["verdict"])
    change = f"{row['delta']:+.1f} points" if row["delta_unit"] == "pt" else f"{row['delta']:+.2f}%"
    name = name or f"{row['suite']} {row['what']}"
    name = name if len(name) <= 90 else name[:89] + "…"
    metric = str(row["metric"])
    unit_words = f"{metric}, {units.label(unit)}" if metric.endswith("/op") else metric  # memlock B, overhead %
    return f"ebpf-lab noticed a {change} {what} of {name} ({unit_words}) on kernel {kernels} under {accelerator}"


def render(res: pd.DataFrame, runs_a: list[LoadedRun], runs_b: list[LoadedRun], unit: str,
           focus: dict[str, Any] | None = None, params_differ: list[str] | None = None) -> str:
    """The report of results.compare's table `res` (A: the old side, B: the new). `focus` picks the
    headline row ({"suite", "what"}: a change point's row); else the largest move."""
    moved = res[res["verdict"].fillna("").str.replace(" (emulated)", "", regex=False).isin(MOVED)]
    ka, kb = _one(runs_a, lambda r: r.kernel), _one(runs_b, lambda r: r.kernel)
    kernels = ka if ka == kb else f"{ka} -> {kb}"
    accel = _one(runs_a + runs_b, lambda r: r.accelerator)
    lines: list[str] = []
    if moved.empty:
        lines.append(f"ebpf-lab found no row that moved beyond its floor from A to B on kernel {kernels} "
                     f"under {accel} ({units.label(unit)})")
    else:
        pick, sel = moved, moved.iloc[0:0]
        if focus:
            sel = moved[(moved["suite"] == focus.get("suite")) & (moved["what"] == focus.get("what"))]
            pick = sel if not sel.empty else moved
        top = pick.loc[pick["delta"].abs().idxmax()]
        named = focus and not sel.empty and str(focus.get("row_key") or "")
        lines.append(headline(top, kernels, accel, unit, named or ""))
    lines += ["", "A (old): " + ", ".join(r.run_id for r in runs_a), "B (new): " + ", ".join(r.run_id for r in runs_b),
              "", "context:",
              f"  host:        {_one(runs_a + runs_b, lambda r: r.fact('host_kernel'))}, "
              f"{_one(runs_a + runs_b, lambda r: r.fact('host_cpus'))} CPUs",
              f"  CPU:         host {_one(runs_a + runs_b, lambda r: r.fact('host_cpu_model'))}; guest "
              f"{_one(runs_a + runs_b, lambda r: r.fact('cpu_model_guest'))}",
              f"  QEMU:        {_one(runs_a + runs_b, lambda r: r.fact('qemu_version'))}",
              f"  accelerator: {accel} (figures in {units.label(unit)})",
              f"  kernel:      A {ka} ({_one(runs_a, lambda r: r.fact('kernel_source'))}); "
              f"B {kb} ({_one(runs_b, lambda r: r.fact('kernel_source'))})",
              f"  playbook:    {_one(runs_a + runs_b, lambda r: r.fact('playbook_name'))} "
              f"({_one(runs_a + runs_b, lambda r: r.fact('playbook'))})",
              f"  lab version: A {_one(runs_a, lambda r: r.fact('lab_version'))}, "
              f"B {_one(runs_b, lambda r: r.fact('lab_version'))}",
              "  parameters:"] + _params(runs_a + runs_b) + [
              "  reproduce:"] + [f"    A: {c}" for c in dict.fromkeys(command(r) for r in runs_a)] + [
              f"    B: {c}" for c in dict.fromkeys(command(r) for r in runs_b)] + [
              "    then: ./labctl results.compare A-RUN B-RUN --report"]
    for d in params_differ or []:
        lines.append(f"  differs:     {d}")
    lines += ["", f"rows that moved ({len(moved)}; lower is better; spread: half the median's interval, % of it):", ""]
    if not moved.empty:
        table = [{"old (A)": _fmt(r["a_median"]), "spread A": _spread(r["a_ci_low"], r["a_ci_high"], r["a_median"]),
                  "change": (f"{r['delta']:+.1f} pt" if r["delta_unit"] == "pt" else f"{r['delta']:+.2f}%"),
                  "new (B)": _fmt(r["b_median"]), "spread B": _spread(r["b_ci_low"], r["b_ci_high"], r["b_median"]),
                  "unit": r["metric"], "row": f"{r['suite']} {r['what']}"}
                 for _, r in moved.sort_values("delta", key=abs, ascending=False).iterrows()]
        lines += ["  " + t for t in comparing._columns(table, {"old (A)", "spread A", "change", "new (B)", "spread B"})]
    apart = res[~res["tested"].fillna(False).astype(bool)]
    lines += ["", f"rows not compared ({len(apart)}):"]
    for _, r in apart.iterrows():
        why = r["note"] if isinstance(r["note"], str) and r["note"] else r["verdict"]
        lines.append(f"  {r['suite']} {r['what']}: {r['verdict']}" + (f" ({why[:120]})" if why != r["verdict"] else ""))
    if apart.empty:
        lines.append("  none")
    tested = int(res["tested"].fillna(False).astype(bool).sum())
    lines += ["", f"{len(moved)} of {tested} compared rows moved; verdicts by results.compare "
                  "(docs/results-and-claims.md)"]
    return "\n".join(lines) + "\n"


def for_runs(dirs_a: list[Any], dirs_b: list[Any], focus: dict[str, Any] | None = None) -> tuple[str, pd.DataFrame]:
    """Compare the runs of two sides (results.compare's policy) and render the report; the text
    says why when the sides cannot be compared (no rows, ns against instructions)."""
    from lab.results import aggregate

    fa, runs_a = aggregate.load_frame(list(dirs_a))
    fb, runs_b = aggregate.load_frame(list(dirs_b))
    empty = pd.DataFrame(columns=comparing.COLUMNS)
    if fa.empty or fb.empty:
        return f"not compared: no valid rows in {'A' if fa.empty else 'B'}\n", empty
    try:
        unit = comparing.check_units(fa, fb)
    except comparing.UnitMismatch as e:
        return f"not compared: {e}\n", empty
    res = comparing.compare(fa, fb)
    differ = comparing.param_differences([r.manifest for r in runs_a], [r.manifest for r in runs_b])
    return render(res, runs_a, runs_b, unit, focus, differ), res


def beyond(res: pd.DataFrame, pct: float) -> pd.DataFrame:
    """The regressions of a compare table at least `pct` (% of A; points for overhead %)."""
    if res.empty:
        return res
    reg = res["verdict"].fillna("").str.startswith("regression")
    return res[reg & (res["delta"].astype(float) >= pct)]
