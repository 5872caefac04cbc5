"""The kernel matrix in guest instructions (icount): one table of attach type x kernel (the hook
suite's `kernel_batch` rows, empty and body programs, per in-kernel trigger) and one of map type x
kernel (the map suite's rows driven in the kernel, dense keys, one CPU, update and lookup), with the
change from each kernel to the next, absolute and in %. Kernels in version order.

Only rows in guest instructions are read (lab/core/units.py), so these tables never hold ns. A cell is
the median of the row's trials (the median of run medians when several runs measured it); a change
within the method's determinism tolerance (ICOUNT_TOLERANCE, via lab/analysis/compare.py) is marked "=".
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from lab.agent.hooks import table as hook_table
from lab.analysis.compare import ICOUNT_TOLERANCE, tolerance
from lab.core import units
from lab.results import stats, unitview
from lab.results.selectors import select

HOOK_ORDER = hook_table.shown(hook_table.on("batch") + hook_table.on("uprobe"))
MAP_SEL = {"suite": "maps", "driver": "kernel", "key_space": "dense", "contention": "1cpu",
           "operation": ["update", "lookup"]}


def version_key(release: str) -> tuple:
    """A kernel release in version order: 5.10.x < 6.1.x < 6.12.x; an -rc before its release."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?(-rc(\d+))?", str(release))
    if not m:
        return (1_000_000, str(release))
    major, minor, patch, rc, rcn = m.groups()
    return (int(major), int(minor), int(patch or 0), int(rcn) if rc else 1_000_000, str(release))


def columns(df: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(target group, column label, short name) per kernel, in version order; the label is the
    kernel release (with its alias), plus the group's vCPUs and CPU when one kernel ran on several
    targets; the short name (the alias, else the release) heads the change columns."""
    if df.empty:
        return []
    first = df.drop_duplicates("group").set_index("group")
    groups = sorted(first.index, key=lambda g: (version_key(first.loc[g, "kernel"]), g))
    kernels = [str(first.loc[g, "kernel"]) for g in groups]
    out = []
    for g, k in zip(groups, kernels, strict=True):
        alias = first.loc[g].get("kernel_alias")
        label = k + (f" ({alias})" if isinstance(alias, str) and alias and alias != k else "")
        short = alias if isinstance(alias, str) and alias else k
        if kernels.count(k) > 1:
            label += f" [{int(first.loc[g, 'vcpus'])} vCPU, {first.loc[g, 'cpu_model']}]"
            short += f" [{int(first.loc[g, 'vcpus'])} vCPU]"
        out.append((g, label, short))
    return out


def value(rows: pd.DataFrame) -> tuple[float | None, str]:
    """The cell of one measurement on one kernel: (median, text); not ok rows give their status."""
    if rows.empty:
        return None, "not measured"
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        return None, str(rows["status"].iloc[0])
    per = {str(r["run"]): stats.clean(r["samples"]) for _, r in ok.iterrows() if isinstance(r["samples"], list)}
    u = stats.unit_values({k: v for k, v in per.items() if v})
    if not u.values:
        return None, "no samples"
    med = stats.median_ci(u.values).median
    return med, f"{med:,.1f}" + (f" ({u.n} runs)" if u.unit == "runs" else "")


def change(a: float | None, b: float | None, tol: float | None) -> str:
    """b - a, absolute and in % of a; "=" when within the determinism tolerance."""
    if a is None or b is None:
        return "-"
    pct = stats.relative_pct(b, a) if a else float("nan")
    same = tol is not None and abs(b - a) <= tol * abs(a)
    return f"{b - a:+,.1f} ({pct:+.2f}%)" + (" =" if same else "")


def matrix(df: pd.DataFrame, keys: list[tuple[str, dict[str, Any]]], tol: float | None, first_head: str,
           title: str) -> dict[str, Any]:
    """One table: a line per (label, selector), per kernel its value, between kernels the change."""
    cols = columns(df)
    head = [first_head]
    for i, (_, label, short) in enumerate(cols):
        if i:
            head.append(f"change {cols[i - 1][2]} -> {short}")
        head.append(label)
    rows = []
    for name, sel in keys:
        cells: list[str] = [name]
        prev: float | None = None
        for i, (g, _, _) in enumerate(cols):
            v, text = value(select(df[df["group"] == g], sel))
            if i:
                cells.append(change(prev, v, tol))
            cells.append(text)
            prev = v
        rows.append({"cells": cells, "insn": True})
    note = (f"{unitview.EMULATED_INSN}: {units.INSN_NOTE}. Cells: median over trials (of run medians where "
            "several runs measured it); change = next kernel - previous, in guest instructions and % of the "
            "previous. " + (f"'=' marks a change within the determinism tolerance ({100 * tol:g}%): no change."
                            if tol is not None else "No determinism tolerance is stated for these rows: a "
                            "small change may be the run, not the kernel."))
    return {"title": title, "head": head, "rows": rows, "note": note, "kernels": [c[1] for c in cols],
            "unit": units.INSN}


def attach_table(df: pd.DataFrame) -> dict[str, Any] | None:
    kb = select(df, {"suite": "hooks", "method": "kernel_batch", "variant": ["empty", "body"]})
    if kb.empty:
        return None
    hooks = sorted({str(h) for h in kb["hook"]},
                   key=lambda h: (HOOK_ORDER.index(h) if h in HOOK_ORDER else len(HOOK_ORDER), h))
    keys = [(f"{h} {v}", {"suite": "hooks", "method": "kernel_batch", "hook": h, "variant": v})
            for h in hooks for v in ("empty", "body") if not select(kb, {"hook": h, "variant": v}).empty]
    return matrix(df, keys, ICOUNT_TOLERANCE.get("kernel_batch"), "attach type, program",
                  "Attach type x kernel: added guest instructions per in-kernel trigger (kernel_batch)")


def est_table(df: pd.DataFrame) -> dict[str, Any] | None:
    """Attach type x kernel in the stated model's estimated cycles (lab/results/costmodel.py), where the
    kernel_batch rows carry them (the event-count plugin ran): its own table, its own unit."""
    if "est_samples" not in df.columns:
        return None
    est = df[df["est_samples"].apply(lambda v: isinstance(v, list) and bool(v))].copy()
    if est.empty:
        return None
    est["samples"] = est["est_samples"]  # the cells read `samples`: here, the estimate per trial
    t = attach_table(est)
    if t is None:
        return None
    label = units.label(units.MODEL)
    t.update(title=f"Attach type x kernel: {label} per in-kernel trigger (kernel_batch)", unit=units.MODEL,
             note=(f"{label}: guest instructions at a base rate plus a fixed weight per counted event (pushf/popf, "
                   "locked ops, serializing instructions, return mispredicts, indirect-target changes, exceptions), "
                   "weights from published per-instruction tables for one core (lab/data/cost_model.yaml), never "
                   "fitted; not ns, not instructions. Change and '=' as in the instruction table."))
    return t


def map_table(df: pd.DataFrame) -> dict[str, Any] | None:
    m = select(df, MAP_SEL)
    if m.empty:
        return None
    kinds = sorted({(str(t), int(f) if pd.notna(f) else 0, str(o)) for t, f, o in
                    zip(m["map_type"], m["flags"], m["operation"], strict=True)})
    keys = [(f"{t}{' NO_PREALLOC' if f & 1 else ''}{f' flags={f:#x}' if f & ~1 else ''} {o}",
             dict(MAP_SEL, map_type=t, flags=f, operation=o)) for t, f, o in kinds]
    return matrix(df, keys, tolerance(m, units.INSN), "map type, operation",
                  "Map type x kernel: guest instructions per operation (driven in the kernel, dense keys, 1 CPU)")


def build(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The instruction tables of these rows (only rows in guest instructions; none: [])."""
    if df.empty or "figure_unit" not in df:
        return []
    insn = df[df["figure_unit"] == units.INSN]
    return [t for t in (attach_table(insn), est_table(insn), map_table(insn)) if t is not None]


def markdown(tables: list[dict[str, Any]]) -> str:
    """The tables as Markdown (results.summary)."""
    out: list[str] = []
    for t in tables:
        out += [f"### {t['title']}", "", "| " + " | ".join(t["head"]) + " |", "|" + "---|" * len(t["head"])]
        out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r["cells"]) + " |" for r in t["rows"]]
        out += ["", f"_{t['note']}_", ""]
    return "\n".join(out)
