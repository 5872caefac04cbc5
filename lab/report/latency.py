"""The report's latency part (lab/agent/latency/, method latency_abba): one table of every latency row
(the arms' p50 / p99 / p99.9 and each percentile's change with its interval, from the host's
statistics) and a percentile plot per workload (HDR style: latency on a log axis against the
percentile on a log axis of 1 / (1 - p), each row's arm without and with the tool or hook). Rows are
in ns only: under icount they are unsupported (a wait is not time), under TCG marked emulated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, ScalarFormatter

from lab.results import latency, unitview
from lab.results.selectors import select

HEAD = ["target", "suite", "tool / hook", "workload", "per", "pairs", "requests per arm",
        "baseline p50 / p99 / p99.9 us", "with p50 / p99 / p99.9 us", "p50 change %", "p99 change %",
        "p99.9 change %", "coordinated omission",
        "status", "reason"]
TICKS = (50.0, 90.0, 99.0, 99.9, 99.99)


def _us(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{float(v) / 1000:,.1f}"


def _who(r: pd.Series) -> str:
    if r.get("suite") == "hooks":
        return f"{r.get('hook')} ({r.get('variant')})"
    return str(r.get("tool"))


def table(df: pd.DataFrame) -> dict[str, Any] | None:
    rows = df[latency.is_latency(df)] if not df.empty else df
    if rows.empty:
        return None
    out = []
    for _, r in rows.iterrows():
        ok = r["status"] == "ok"
        arms = [" / ".join(_us(latency.arm_median(r, arm, lv)) for lv in ("p50", "p99", "p999")) if ok else "-"
                for arm in ("base", "tool")]
        out.append({"cells": [r["group"], r["suite"], _who(r), str(r.get("workload") or "-"), str(r.get("per") or "-"),
                              _int(r.get("trials")), _int(r.get("requests_per_trial")), *arms,
                              *[latency.text(latency.change(r, lv)) if ok else "-" for lv in ("p50", "p99", "p999")],
                              str(r.get("coordinated_omission") or "-"), r["status"], str(r.get("reason") or "")[:160]],
                    "emulated": bool(r["emulated"]), "status": r["status"]})
    return {"head": HEAD, "rows": out}


def _int(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{int(v):,}"


def _x(levels: list[float]) -> list[float]:
    return [1.0 / (1.0 - lv / 100.0) for lv in levels]


def plot(df: pd.DataFrame, workload: str, path: Path) -> Path | None:
    sel = {"method": latency.METHOD, "workload": workload, "status": "ok"}
    groups = [(k, g) for k, g in df.groupby("group") if not select(g, sel).empty]

    def draw(ax: Axes, g: pd.DataFrame, meta: dict[str, Any]) -> None:
        rows = select(g, sel)
        colors = iter(["#c0504d", "#4f81bd", "#9bbb59", "#8064a2", "#f79646", "#4bacc6", "#7f7f7f", "#2c4d75",
                       "#772c2a", "#5f7530"] * 3)
        drew_base = False
        for _, r in rows.iterrows():
            bx, by = latency.curve(r, "base")
            tx, ty = latency.curve(r, "tool")
            if bx:
                ax.plot(_x(bx), [y / 1000 for y in by], color="#999", lw=1, ls="--",
                        label=None if drew_base else "without (each row's baseline arm)")
                drew_base = True
            if tx:
                ax.plot(_x(tx), [y / 1000 for y in ty], color=next(colors), lw=1.6, marker=".", label=f"with {_who(r)}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(_x(list(TICKS)))
        ax.set_xticklabels([f"p{t:g}" for t in TICKS], fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("percentile (log of 1 / (1 - p); median over trials of each trial's percentile)", fontsize=8)
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.set_ylabel("latency, us (log)", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6, loc="upper left")

    if not groups:
        return None
    fig = Figure(figsize=(9, 3.2 * len(groups) + 0.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(groups), 1, squeeze=False)
    for ax, (_, g) in zip(axes[:, 0], groups, strict=True):
        rows = select(g, sel)
        first = rows.iloc[0]
        emulated = bool(first["emulated"])
        draw(ax, g, {})
        pairs = sorted({int(t) for t in rows["trials"]})
        ax.set_title(f"kernel {first['kernel']} | {first['accelerator']}"
                     f"{' - EMULATED: timing not representative' if emulated else ''}\n{first['cpu_model']}, "
                     f"{int(first['vcpus'])} vCPU | {pairs[0]}-{pairs[-1]} ABBA pairs, at least "
                     f"{int(rows['requests_per_trial'].min()):,} requests per arm and trial", fontsize=8, loc="left",
                     color="#b00" if emulated else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def build(df: pd.DataFrame, out_dir: Path) -> dict[str, Any]:
    """The latency table and one plot per workload (file latency_<workload>.png); empty without rows."""
    rows = df[latency.is_latency(df)] if not df.empty else df
    if rows.empty:
        return {"table": None, "plots": []}
    plots = []
    for wl in sorted({str(w) for w in rows["workload"].dropna()}):
        ns = rows[rows["figure_unit"] == "ns"]
        made = plot(ns, wl, out_dir / f"latency_{wl}.png") if not ns.empty else None
        if made is not None:
            plots.append({"file": made.name, "workload": wl})
    return {"table": table(rows), "plots": plots, "note": unitview.note("ns")}
