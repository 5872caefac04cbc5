"""What the report's tables show: the manifest facts of each run (with its completion status), the
target groups, every row with the host's median and interval (never the agent's own), and the
talk's two summary tables with a measured column per group. Plain data for the templates."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from lab.agent.hooks import table as hook_table
from lab.analysis.published import reference_hooks
from lab.core import units
from lab.report.cells import group_meta, interval
from lab.results import stats, unitview
from lab.results.selectors import select
from lab.results.store import LoadedRun

COMPLETE = "complete"


def fmt(v: Any, digits: int = 1) -> str:
    """A number as tables show it ('-' for missing)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float) and v.is_integer() and abs(v) >= 1000:
        return f"{int(v):,}"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


UNKNOWN = "unknown"


def run_status(run: LoadedRun) -> tuple[str, str]:
    """The run's completion status and reason from its manifest; a run recorded before runs had a
    status reads "unknown" (never "complete": nothing says it finished)."""
    status = run.status
    if status == UNKNOWN:
        return UNKNOWN, "recorded before runs had a status"
    return status, str(run.manifest.get("status_reason") or "")


# What an instruction count depends on (recorded for icount runs): shown beside the run's facts.
ICOUNT_FACTS = (("icount", "icount"), ("QEMU version", "qemu_version"), ("guest CPU", "cpu_model_guest"),
                ("guest CPU flags (md5)", "cpu_flags_md5"), ("guest kernel command line", "guest_cmdline"),
                ("TSC calibration", "tsc"))


def run_facts(run: LoadedRun) -> dict[str, Any]:
    guest = run.fact("guest")
    guest_txt = (f"{guest.get('vcpus')} vCPUs, {guest.get('memory')} memory" if isinstance(guest, dict)
                 else "none (no VM: the machine's own kernel)" if run.fact("accelerator") == "host" else "-")
    suites = run.fact("suites") or {}
    status, why = run_status(run)
    return {
        "run_id": run.run_id,
        "status": status,
        "status_reason": why,
        "complete": status == COMPLETE,
        "facts": [
            ("status", status + (f": {why}" if why else "")),
            ("time", run.fact("time")),
            ("playbook", f"{run.fact('playbook_name') or '-'} ({run.fact('playbook') or '-'})"),
            ("kernel", f"{run.kernel} (alias {run.fact('kernel_alias') or '-'})"),
            ("kernel source", run.fact("kernel_source")),
            ("accelerator", unitview.mode(run.accelerator) + (f" (chosen because: {run.fact('accelerator_reason')})"
                                                             if run.fact("accelerator_reason") else "")),
            ("image recipe hash", run.fact("image_recipe_hash")),
            ("host CPU", f"{run.fact('host_cpu_model') or '-'} x {run.fact('host_cpus') or '-'}"),
            ("host kernel", run.fact("host_kernel")),
            ("host load average (1, 5, 15 min)", f"{_words(run.fact('host_load_start'))} at the start, "
                                                  f"{_words(run.fact('host_load_end'))} at the end"),
            ("guest", guest_txt),
            *[(name, run.fact(key)) for name, key in ICOUNT_FACTS if run.fact(key)],
            ("lab version", run.fact("lab_version")),
            ("rows", f"{len(run.rows)} valid ({', '.join(run.suites) or 'none'}), {len(run.problems)} problems"),
        ],
        "params": params_table(suites, run.fact("icount_overrides")),
        "outcome": outcome_table(run.fact("outcome")),
        "missing": run.missing_manifest_fields(),
        "emulated": run.accelerator == "tcg",
        "insn": run.accelerator == "icount",
        "mode": unitview.mode(run.accelerator),
    }


def _words(v: Any) -> str:
    """A manifest value in words: lists joined, nested mappings as key value pairs, never a repr."""
    if isinstance(v, dict):
        return "; ".join(f"{k} {_words(x)}" for k, x in v.items()) or "-"
    if isinstance(v, list | tuple):
        return ", ".join(_words(x) for x in v) or "-"
    return "-" if v is None else str(v)


def params_table(suites: Any, overrides: Any = None) -> dict[str, Any]:
    """The run's suites and their parameters, one line per parameter (icount overrides marked)."""
    rows = []
    over = overrides if isinstance(overrides, dict) else {}
    for suite, params in (suites.items() if isinstance(suites, dict) else []):
        if not isinstance(params, dict) or not params:
            rows.append([suite, "-", "the playbook's defaults"])
            continue
        for k, v in params.items():
            mark = " (icount override)" if isinstance(over.get(suite), dict) and k in over[suite] else ""
            rows.append([suite, k, _words(v) + mark])
    return {"head": ["suite", "parameter", "value"], "rows": rows}


def outcome_table(outcome: Any) -> dict[str, Any]:
    """Rows per status of each suite (the manifest's outcome), one line per suite."""
    rows = [[suite, _words(counts).replace(";", ",")] for suite, counts in
            (outcome.items() if isinstance(outcome, dict) else [])]
    return {"head": ["suite", "rows by status"], "rows": rows}


def groups(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [group_meta(g) for _, g in df.groupby("group")] if not df.empty else []


def _host_interval(r: pd.Series, column: str) -> tuple[str, str]:
    v = r.get(column)
    vals = stats.clean(v) if isinstance(v, list) else []
    if not vals:
        return "-", "-"
    iv = stats.median_ci(vals)
    if iv.low is None:
        return fmt(iv.median), iv.note
    lvl = "" if iv.level is not None and iv.level >= stats.LEVEL else f" ({iv.level:.0%})"
    return fmt(iv.median), f"[{fmt(iv.low)}, {fmt(iv.high)}]{lvl}"


# table key -> (the row's per-trial samples, 0: the median's cell / 1: the interval's cell)
INTERVALS = {"median": ("samples", 0), "interval": ("samples", 1),
             "overhead": ("overhead_samples", 0), "overhead_ci": ("overhead_samples", 1),
             "overhead_cpu": ("overhead_cpu_samples", 0), "overhead_cpu_ci": ("overhead_cpu_samples", 1),
             "loss": ("loss_samples", 0), "loss_ci": ("loss_samples", 1),
             "latency_p99": ("latency_p99_change_samples", 0), "latency_p99_ci": ("latency_p99_change_samples", 1),
             "latency_p999": ("latency_p999_change_samples", 0),
             "latency_p999_ci": ("latency_p999_change_samples", 1)}


def _cells(r: pd.Series, cols: list[tuple[str, str]], with_run: bool = False) -> dict[str, Any]:
    cells = []
    for key, _ in cols:
        if key in INTERVALS:
            column, which = INTERVALS[key]
            cells.append(_host_interval(r, column)[which])
        elif key == "events":
            ev, tr = r.get("events"), r.get("triggers")
            cells.append("-" if pd.isna(ev) else f"{fmt(int(ev))}/{fmt(int(tr)) if pd.notna(tr) else '-'}")
        elif key == "reason":
            cells.append(str(r.get("reason") or "")[:160])
        elif key == "precision":
            cells.append(precision_cell(r))
        elif key == "row":  # named with its run when the table holds several (runs are the unit)
            run = f"{r['run']}/" if with_run and isinstance(r.get("run"), str) else ""
            cells.append(f"{run}{r['_file']}:{int(r['_line'])}")
        else:
            v = r.get(key)
            if key == "flags" and v is not None and not pd.isna(v):
                v = f"{int(v):#x}"
            elif isinstance(v, float) and v.is_integer():
                v = int(v)
            cells.append(fmt(v))
    return {"cells": cells, "emulated": bool(r["emulated"]), "insn": units.of(r) == units.INSN, "status": r["status"]}


def precision_cell(r: pd.Series) -> str:
    """A tools row's pairs and why they stopped (`--halfwidth`, tools/precision.py), with the half-width
    the host's own interval gives from the row's samples; "-" for a fixed number of trials."""
    why = r.get("stopped_on")
    if not isinstance(why, str):
        return "-"
    column = {"cpu": "overhead_cpu_samples", "latency_p99": "latency_p99_change_samples"}.get(
        str(r.get("halfwidth_of")), "overhead_samples")
    iv = stats.median_ci(stats.clean(r.get(column) if isinstance(r.get(column), list) else []))
    hw = f"+-{(iv.high - iv.low) / 2:.2f}" if iv.low is not None else "no interval"
    what = ("% of the baseline p99 (p99 latency change)" if r.get("halfwidth_of") == "latency_p99"
            else f"points of {r.get('halfwidth_of')} loss")
    return (f"{int(r['trials'])} pairs, stopped on {why}: {hw} {what} "
            f"(asked +-{r.get('halfwidth_target'):g}, {r.get('pairs_seconds'):.0f} of {r.get('budget_s'):.0f} s)")


def several_runs(df: pd.DataFrame) -> bool:
    return "run" in df and df["run"].nunique() > 1


def table(df: pd.DataFrame, cols: list[tuple[str, str]], unit: str = units.NS,
          with_run: bool | None = None) -> dict[str, Any]:
    """Rows of one unit as a table; a header names the unit as {u} (lab/results/unitview.py). with_run: name
    each row with its run (default: when these rows come from several runs)."""
    cols = [("group", "target"), ("row", "row")] + cols
    with_run = several_runs(df) if with_run is None else with_run
    return {"head": [unitview.label(unit, h) for _, h in cols],
            "rows": [_cells(r, cols, with_run) for _, r in df.iterrows()],
            "unit": unit, "title": unitview.tag(unit), "note": unitview.note(unit)}


def per_unit(df: pd.DataFrame, cols: list[tuple[str, str]], with_run: bool | None = None) -> list[dict[str, Any]]:
    """One table per unit of the rows (ns first): ns and guest instructions never share a table."""
    return [table(d, cols, u, with_run) for u, d in unitview.by_unit(df)]


HOOK_COLS = [("hook", "hook"), ("attach_point", "attach point"), ("variant", "variant"), ("method", "method"),
             ("freq_hz", "Hz"), ("trials", "trials"), ("median", "added {u}/op"), ("interval", "interval"),
             ("loss", "loss %"), ("loss_ci", "loss interval"), ("body_ns", "body {u}"), ("dispatch_ns", "dispatch {u}"),
             ("events", "events/triggers"), ("status", "status"), ("reason", "reason")]
MAP_COLS = [("map_type", "map type"), ("flags", "flags"), ("operation", "op"), ("key_space", "keys"),
            ("nkeys", "nkeys"), ("driver", "driver"), ("contention", "CPUs"), ("threads", "threads"),
            ("max_entries", "max entries"), ("trials", "trials"), ("median", "{u}/op"),
            ("interval", "interval"), ("status", "status"), ("reason", "reason")]
MEM_COLS = [("map_type", "map type"), ("flags", "flags"), ("key_space", "keys"),
            ("max_entries", "max entries"), ("inserted", "inserted"), ("live_entries", "live"),
            ("memlock_measured", "memlock measured B"), ("memlock_predicted", "predicted B"),
            ("mem_charged", "charged B (per map)"), ("mem_charged_resolution", "to B"),
            ("real_memory", "memory cgroup B"), ("memlock_note", "note"), ("status", "status"), ("reason", "reason")]
TOOL_COLS = [("tool", "tool"), ("load", "load"), ("trials", "trials"), ("baseline_ops", "baseline ops/{s}"),
             ("tool_ops", "with tool ops/{s}"), ("overhead", "throughput lost %"), ("overhead_ci", "interval"),
             ("overhead_cpu", "per CPU second %"), ("overhead_cpu_ci", "interval"),
             ("latency_p99", "p99 latency change %"), ("latency_p99_ci", "interval"),
             ("latency_p999", "p99.9 latency change %"), ("latency_p999_ci", "interval"),
             ("precision", "pairs / precision"), ("tool_build", "build"),
             ("status", "status"), ("reason", "reason")]


def row_tables(df: pd.DataFrame) -> dict[str, Any]:
    """Every row as tables: hooks, maps, kernel_batch and tools one table per unit (lists); memlock
    bytes in one table (bytes are bytes under any accelerator)."""
    hooks = select(df, {"suite": "hooks"})
    maps = select(df, {"suite": "maps"})
    tools = select(df, {"suite": "tools"})
    mem = maps["operation"] == "memory" if not maps.empty else pd.Series(dtype=bool)
    runs = several_runs(df)  # rows are named with their run when the report holds several
    return {
        "hooks": per_unit(hooks, HOOK_COLS, runs),
        "maps": per_unit(maps[~mem] if not maps.empty else maps, MAP_COLS, runs),
        "memlock": table(maps[mem] if not maps.empty else maps, MEM_COLS, with_run=runs),
        "kernel_batch": [kernel_batch_table(d) for _, d in unitview.by_unit(hooks)],
        "tools": per_unit(tools, TOOL_COLS, runs) if not tools.empty else None,
    }


def kernel_batch_table(hooks: pd.DataFrame) -> dict[str, Any]:
    """Per target, the lab's kernel_batch rows of the empty program (the closest to the bench's
    count-only program) beside the published kernel-bench figure of the same attach type. The rows
    are of one unit (a frame mixing ns and guest instructions is refused); in guest instructions the
    ratio to the published ns is not shown (different units: compare the order only)."""
    ref = reference_hooks()
    src = ref["source"]
    unit = unitview.one_unit(hooks, "kernel_batch rows")
    insn = unit == units.INSN
    head = ["target", "row", "hook", "per", unitview.label(unit, "lab: added {u}/event over kernel-count ")
            + ("(guest clock)" if insn else "(CPU time)"), "interval",
            unitview.label(unit, "over the bare driver ({u})"), unitview.label(unit, "wall time ({u})"),
            "published: ns/event over kernel-count (M events/s)",
            "lab / published", "status"]
    rows = []
    kb = select(hooks, {"method": "kernel_batch", "variant": "empty"}) if not hooks.empty else hooks
    for _, r in kb.iterrows():
        med, iv = _host_interval(r, "samples")
        pub = ref["added_ns"].get(str(r["hook"]))
        name = ref["hooks"].get(str(r["hook"]))
        lab = stats.median_ci(stats.clean(r.get("samples") if isinstance(r.get("samples"), list) else [])).median
        base = str(r.get("baseline") or "kernel-count")
        over = "" if base == "kernel-count" else f" (over {base})"
        rows.append({"cells": [
            r["group"], f"{r['_file']}:{int(r['_line'])}", r["hook"], str(r.get("per") or "-"), med + over,
            iv, _host_interval(r, "bare_samples")[0], _host_interval(r, "wall_samples")[0],
            f"{pub:.1f} ({ref['rates_m_per_s'][name]} {name})" if pub is not None else "not published",
            "- (TCG: not a figure)" if bool(r["emulated"]) else
            "- (guest instructions vs ns: compare the order)" if insn else
            f"x{lab / pub:.1f}" if pub and lab is not None and base == "kernel-count" else "-", r["status"]],
            "emulated": bool(r["emulated"]), "insn": insn, "status": r["status"]})
    note = (f"Published, not measured here: {src['author']}, \"{src['title']}\", {src['where']}, {src['date']}; "
            f"{src['machine']}; {src['unit']}, per {src['per']}; ns over {ref['baseline']} derived as "
            f"1000/rate - 1000/rate({ref['baseline']}). Lab figures: method kernel_batch, the thread's CPU time "
            "(reported, like cpu_abba), wall time kept as a column; empty program (tgid filter + per-CPU count; "
            "the bench's program counts only). Different machines: compare orders and ratios, not ns.")
    if insn:
        note = f"{unitview.EMULATED_INSN}: {unitview.note(unit)}. {note}"
    return {"head": head, "rows": rows, "note": note, "unit": unit, "title": unitview.tag(unit)}


def _cell(rows: pd.DataFrame, unit: str = "", column: str = "samples") -> str:
    if rows.empty:
        return "not measured"
    iv, status = interval(rows, column)
    if iv is None:
        return status
    return iv.text(1, unit)


def talk_tables(df: pd.DataFrame, talk: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The talk's map and hook tables with a measured column per target, for rows of one unit (a
    frame mixing ns and guest instructions is refused: the report makes one pair per unit)."""
    funit = unitview.one_unit(df, "the talk tables' rows")
    gl = list(df.groupby("group")) if not df.empty else []
    head = ["type", "fits (talk)", "strength (talk)", "weakness (talk)"]
    gunit = {name: unitview.one_unit(g, f"target {name}") for name, g in gl}
    head += [f"measured: {name}" + (" †" if bool(g["emulated"].any()) else "")
             + (f" ({unitview.tag(gunit[name])})" if gunit[name] == units.INSN else "") for name, g in gl]
    kernel = {"suite": "maps", "driver": "kernel", "key_space": "dense", "contention": "1cpu", "flags": 0}
    maps_rows = []
    for t in talk["map_table"]:
        cells = [t["type"], t["fits"], t["strength"], t["weakness"]]
        for name, g in gl:
            u = unitview.suffix(gunit[name])
            upd = select(g, dict(kernel, map_type=t["key"], operation="update"))
            look = select(g, dict(kernel, map_type=t["key"], operation="lookup"))
            cont = {"suite": "maps", "map_type": t["key"], "operation": "update", "key_space": "contention",
                    "nkeys": 1, "flags": 0}
            shared, disjoint = interval(select(g, dict(cont, contention="shared"))), interval(
                select(g, dict(cont, contention="disjoint")))
            slow = (f"x{shared[0].median / disjoint[0].median:.2f}" if shared[0] and disjoint[0]
                    and disjoint[0].median else "not measured")
            mem = select(g, {"suite": "maps", "operation": "memory", "status": "ok", "map_type": t["key"],
                             "flags": 0, "key_space": "dense", "max_entries": 10240, "inserted": 0})
            memtxt = f"{int(mem['memlock_measured'].iloc[0]):,} B" if not mem.empty else "not measured"
            cells.append(f"update {_cell(upd, u)}; lookup {_cell(look, u)}; shared-key / disjoint-key "
                         f"update (1 key) {slow}; memlock@10240 {memtxt}")
        maps_rows.append(cells)
    hooks_rows = []
    for t in talk["hook_table"]:
        cells = [t["type"], t["fits"], t["strength"], t["weakness"]]
        for name, g in gl:
            if t["key"] == "perf_event":
                r = select(g, {"suite": "hooks", "hook": "perf_event", "variant": "body",
                               "method": "throughput_abba", "status": "ok"})
                cells.append("; ".join(f"{e} {int(f)} Hz: {_cell(x, '% lost', 'loss_samples')}"
                                       for (e, f), x in r.groupby(["perf_event", "freq_hz"]))
                             if not r.empty else "not measured")
            else:
                rows = select(g, {"suite": "hooks", "hook": t["key"], "variant": "body", "method": "wall_abba"})
                if rows.empty:
                    rows = select(g, {"suite": "hooks", "hook": t["key"], "variant": "body"})
                xdp = t["key"] in hook_table.HOOKS and hook_table.HOOKS[t["key"]].kind == "xdp"
                unit = unitview.suffix(gunit[name]) + ("/packet" if xdp else "/event")
                cells.append(_cell(rows, unit))
        hooks_rows.append(cells)
    extra = {"unit": funit, "title": unitview.tag(funit), "note": unitview.note(funit)}
    return dict(extra, head=head, rows=maps_rows), dict(extra, head=head, rows=hooks_rows)


def lacking(df: pd.DataFrame) -> dict[str, Any]:
    """What each kernel/target lacks: its `unsupported` rows, one line per feature, with the
    kernel's own reason (the first row's, shortened)."""
    out: dict[str, Any] = {"head": ["target", "suite", "feature", "rows", "the kernel's reason"], "rows": []}
    if df.empty or "status" not in df:
        return out
    bad = df[df["status"] == "unsupported"]
    names = [c for c in ("hook", "map_type", "operation", "driver", "tool", "perf_event") if c in bad]
    for (group, suite), g in bad.groupby(["group", "suite"], sort=True):
        feats: dict[str, list[Any]] = {}
        for _, r in g.iterrows():
            key = " ".join(str(r[c]) for c in names if isinstance(r.get(c), str) and r.get(c))
            feats.setdefault(key or "?", []).append(r)
        for feat, rs in feats.items():
            reason = str(rs[0].get("reason", "")).replace("unsupported: ", "")
            out["rows"].append({"cells": [group, suite, feat, len(rs), reason[:140]],
                                "emulated": bool(rs[0].get("emulated"))})
    return out
