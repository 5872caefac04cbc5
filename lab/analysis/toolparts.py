"""Where a tool's overhead comes from, on the host: the agent's parts joined with the hook suite.

The agent (lab/agent/tools/cost.py) measures, per tool and trial in CPU ms per second of load, the
throughput-derived total, the programs' execution (run_time_ns) and the tool process's own CPU
(user); the rest was unexplained. Triggering, getting from the event into the program, needs the
per-event dispatch cost of each program's attach type, which the hook suite measures: when both
suites ran in the same run (same run id, hence the same kernel and machine), each program's runs
per second (program_detail.runs_per_s_samples, per trial) x its attach type's dispatch ns give the
triggering part, and unexplained becomes total - exec - user - triggering. The part names the hook
row it took; otherwise it says why it is not measured (hook suite did not run in this run / the
attach type was not measured / only unusable rows), never a guess.

Dispatch of an attach type = the hook row's added ns per program run with BPF statistics off, for
the empty program (its filter and count, a few instructions, included: the hook suite's body_ns
is measured with the statistics on, whose clock reads cost as much as an empty program); from a
body row, minus body_ns. Preferred: the in-kernel trigger (kernel_batch, over the bare driver),
then the open() path (cpu_abba, then wall_abba, per run: added per op / runs per op); empty before
body; ok rows only; a negative figure is noise and the next row is tried. The tool trials run with
the statistics on: their clock reads (the row's stats_cost_ns per run) are paid there too and,
outside run_time_ns, stay in unexplained. The interval of triggering reflects the trials' event
rates; the dispatch figure is the hook row's median.

Map access (lab/analysis/mapparts.py): the agent's counted map operations per second x the map suite's
per-op cost of the same run, carved out of execution (exec becomes the rest of execution); not
separable where the kernel refused the counter (the agent's reason), or not measured with why.

The talk's five sources, per tool and for all at once: user space, map access, triggering, the
verifier (one-time: exec to attached, verified_insns; its reported time where the row has it) and
execution; plus what is unexplained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lab.analysis import mapparts
from lab.results import stats
from lab.results.selectors import select

METHODS = ("kernel_batch", "cpu_abba", "wall_abba")
VARIANTS = ("empty", "body")
PARTS = ("user", "map", "exec", "triggering", "unexplained")  # per-second parts, stacked in this order
SOURCES = ("user space", "map access", "triggering", "verifier", "execution")


@dataclass(frozen=True)
class Dispatch:
    hook: str
    ns: float
    source: str  # which hook row, in words


def _candidates(ok: pd.DataFrame):
    for method in METHODS:
        for variant in VARIANTS:
            for _, r in select(ok, {"method": method, "variant": variant}).iterrows():
                yield method, variant, r


def _dispatch(hook: str, rows: pd.DataFrame) -> Dispatch | str:
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        reasons = [str(r) for r in rows["reason"] if r]
        return f"hook suite: {hook} {rows['status'].iloc[0]}" + (f" ({reasons[0][:120]})" if reasons else "")
    timed = rows[rows["method"].isin(METHODS)] if "method" in rows else rows
    bad = timed[timed["status"] != "ok"]
    why = f"the hook suite's {hook} rows have no usable figure" + (
        f" ({', '.join(sorted(set(bad['method'].astype(str))))} {bad['status'].iloc[0]}: "
        f"{str(bad['reason'].iloc[0])[:120]})" if not bad.empty else "")
    for method, variant, r in _candidates(ok):
        added, what = _added_per_run(method, r)
        if added is None:
            continue
        body = stats.finite(r.get("body_ns")) if variant == "body" else 0.0
        if body is None:
            continue
        d = added - body
        if d < 0:
            why = f"the hook suite's {hook} dispatch came out negative ({d:.1f} ns: noise)"
            continue
        where = str(r.get("attach_point") or "")
        at = f" {r['_file']}:{int(r['_line'])}" if isinstance(r.get("_file"), str) else ""
        text = (f"{what} {added:.1f} - body {body:.1f}" if variant == "body" else
                f"{what} {added:.1f} (empty program: its filter + count included)")
        stats_cost = stats.finite(r.get("stats_cost_ns"))
        extra = f"; BPF statistics cost {stats_cost:.1f} ns/run on top (in unexplained)" if stats_cost else ""
        return Dispatch(hook, d, f"hooks {hook} {method} {variant} ({where}){at}: {text} = {d:.1f} ns/run{extra}")
    return why


def _added_per_run(method: str, r: pd.Series) -> tuple[float | None, str]:
    """The hook row's added ns per program run, with BPF statistics off: kernel_batch over the bare
    driver (its headline is over the counting driver, which does a helper call of its own); the
    open path's added ns per operation over its runs per operation."""
    if method == "kernel_batch":
        if str(r.get("baseline") or "kernel-count") == "kernel-count":
            return stats.finite(r.get("bare_ns_median")), "added over the bare driver"
        return stats.finite(r.get("ns_median")), "added over the bare loop"
    added, runs = stats.finite(r.get("ns_median")), stats.finite(r.get("runs_per_op"))
    if added is None:
        return None, ""
    if runs and runs > 0:
        return added / runs, f"added per op / {runs:.2f} runs per op ="
    return added, "added per op"


def dispatch_costs(hooks: pd.DataFrame) -> dict[str, Dispatch | str]:
    """hook -> its dispatch cost per event from one run's hook rows, or why there is none."""
    if hooks.empty:
        return {}
    return {str(h): _dispatch(str(h), rows) for h, rows in hooks.groupby("hook")}


@dataclass
class Triggering:
    status: str  # measured | partial | not measured
    samples: list[float] = field(default_factory=list)  # CPU ms per s of load, per trial
    sources: list[str] = field(default_factory=list)  # hook rows taken
    why: str = ""  # what is not measured and why

    def text(self) -> str:
        return "; ".join([*self.sources, *([self.why] if self.why else [])])


def triggering(row: pd.Series | dict[str, Any], costs: dict[str, Dispatch | str] | None) -> Triggering:
    """Triggering part of one tools row: per trial, sum over its programs of runs/s x dispatch ns."""
    progs = row.get("program_detail") if isinstance(row.get("program_detail"), dict) else {}
    if costs is None:
        return Triggering("not measured", why="not measured: the hook suite did not run in this run")
    if not progs:
        return Triggering("not measured", why="not measured: the row has no per-program runs")
    per_trial: list[float] = []
    sources: list[str] = []
    missing: list[str] = []
    for name, p in sorted(progs.items()):
        hook = p.get("hook")
        runs = p.get("runs_per_s_samples")
        if not hook or not isinstance(runs, list):
            missing.append(f"{name}: no attach type or runs per trial in the row (recorded before they were)")
            continue
        cost = costs.get(hook)
        if not isinstance(cost, Dispatch):
            missing.append(f"{name} ({hook}): " + (cost or f"attach type {hook} not measured by the hook suite"))
            continue
        if cost.source not in sources:
            sources.append(cost.source)
        if not per_trial:
            per_trial = [0.0] * len(runs)
        for i, n in enumerate(runs[:len(per_trial)]):
            per_trial[i] += float(n) * cost.ns / 1e6
    if not sources:
        return Triggering("not measured", why="not measured: " + "; ".join(missing))
    return Triggering("partial" if missing else "measured", [round(x, 4) for x in per_trial], sources,
                      ("partial, not counted: " + "; ".join(missing)) if missing else "")


def _iv(samples: Any) -> stats.Interval | None:
    vals = stats.clean(samples) if isinstance(samples, list) else []
    return stats.median_ci(vals) if vals else None


def _rest(row: pd.Series | dict[str, Any], trig: Triggering, column: str = "cpu_unexplained_samples") -> list[float]:
    """The row's per-trial unexplained samples (`column`) minus triggering."""
    unexp = row.get(column)
    if not isinstance(unexp, list):
        return []
    if not trig.samples:
        return list(unexp)
    if len(trig.samples) == len(unexp):
        return [u - t for u, t in zip(unexp, trig.samples, strict=True)]
    med = stats.median_ci(trig.samples).median
    return [u - med for u in unexp]


def tool_parts(row: pd.Series | dict[str, Any], costs: dict[str, Dispatch | str] | None,
               map_costs: dict[tuple[str, str], mapparts.OpCost | str] | None = None) -> dict[str, Any]:
    """One tools row's parts with intervals, the five sources and which measured one dominates.
    map_costs: the map suite's per-op costs of the same run (None: it did not run)."""
    trig = triggering(row, costs)
    exec_iv = _iv(row.get("cpu_exec_samples"))
    macc = mapparts.map_access(row, map_costs, exec_iv.median if exec_iv else None)
    exec_samples = row.get("cpu_exec_samples")
    carve = macc.ms is not None and macc.status in ("measured", "partial")
    if carve and isinstance(exec_samples, list):
        exec_samples = [x - macc.ms for x in stats.clean(exec_samples)]
    ivs = {"total": _iv(row.get("cpu_total_samples")), "exec": _iv(exec_samples),
           "user": _iv(row.get("cpu_user_samples")), "triggering": _iv(trig.samples) if trig.samples else None,
           "map": _iv([macc.ms]) if carve else None, "unexplained": _iv(_rest(row, trig)),
           # the same parts against the tool's cost inside the load's processes (loss per CPU second)
           "incontext": _iv(row.get("cpu_incontext_samples")),
           "incontext_unexplained": _iv(_rest(row, trig, "cpu_incontext_unexplained_samples"))}
    measured = {k: ivs[k].median for k in ("user", "map", "exec", "triggering") if ivs[k] is not None}
    dominant = max(measured, key=lambda k: measured[k]) if measured else None
    ns = row.get("not_separable") if isinstance(row.get("not_separable"), dict) else {}
    insns, load_ms = row.get("verified_insns"), stats.finite(row.get("load_ms"))
    vtime = stats.finite(row.get("verifier_us"))
    verifier = "; ".join(x for x in (
        f"exec to attached {load_ms:.0f} ms" if load_ms is not None else "",
        f"{int(insns):,} insns verified" if stats.finite(insns) is not None else "verified_insns not reported (< 5.16)",
        f"verification {vtime:.0f} us" if vtime is not None else str(ns.get("verifier_time", "")),
    ) if x)
    return {"ivs": ivs, "triggering": trig, "dominant": dominant, "verifier": verifier, "map": macc,
            "map_access": macc.text() or macc.status, "exec_carved": carve,
            "tools_combined": row.get("tools_combined") if isinstance(row.get("tools_combined"), list) else None}


def frame_parts(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Every ok tools row of the frame with its parts; each joined with its own run's hook rows."""
    tools = select(df, {"suite": "tools", "status": "ok"}) if not df.empty else df
    out = []
    if tools.empty or "cpu_total_samples" not in tools:
        return out
    for run_id, rows in tools.groupby("run"):
        hooks = select(df, {"suite": "hooks", "run": run_id})
        costs = dispatch_costs(hooks) if not hooks.empty else None
        maps = select(df, {"suite": "maps", "run": run_id})
        map_costs = mapparts.op_costs(maps) if not maps.empty else None
        for _, r in rows.iterrows():
            if not isinstance(r.get("cpu_total_samples"), list):
                continue
            out.append(dict(tool_parts(r, costs, map_costs), group=r["group"], run=run_id, tool=str(r["tool"]),
                            emulated=bool(r["emulated"]), row=r))
    return out


def _sum(ivs: list[stats.Interval]) -> tuple[float, float, float]:
    return (sum(i.median for i in ivs), sum(i.median if i.low is None else i.low for i in ivs),
            sum(i.median if i.high is None else i.high for i in ivs))


def combined_vs_sum(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per run with an "all" row: its total and throughput lost vs the sum of the tools alone
    (sum of their medians; interval = the sums of their interval ends)."""
    out = []
    by_run: dict[str, dict[str, dict[str, Any]]] = {}
    for p in parts:
        by_run.setdefault(p["run"], {})[p["tool"]] = p
    for run_id, tools in by_run.items():
        both = tools.get("all")
        if both is None:
            continue
        alone = [tools[t] for t in (both["tools_combined"] or []) if t in tools]
        line = {"group": both["group"], "run": run_id, "emulated": both["emulated"],
                "tools": ", ".join(both["tools_combined"] or []), "n_alone": len(alone)}
        for key, column in (("cpu", "cpu_total_samples"), ("pct", "overhead_samples")):
            iv = _iv(both["row"].get(column))
            ivs = [_iv(a["row"].get(column)) for a in alone]
            line[f"{key}_all"] = iv
            line[f"{key}_sum"] = None if not ivs or any(i is None for i in ivs) else _sum(ivs)
        out.append(line)
    return out
