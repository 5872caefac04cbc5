"""The report's view of where each tool's overhead comes from (lab/toolparts.py): the decomposition
table per tool and target, the talk's five sources with the measured share of each, all tools at
once vs the sum of them alone, and a stacked bar per tool (and for all at once) per target with the
unexplained part drawn (negative: left of zero, hatched). Plain data for the templates + one PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import stats, toolparts
from .plots import group_meta

COLORS = {"user": "#c0504d", "map": "#9bbb59", "exec": "#4f81bd", "triggering": "#f79646", "unexplained": "#bfbfbf"}
LABELS = {"user": "user space (tool process)", "map": "map access (counted ops x map suite ns/op)",
          "exec": "execution (run_time_ns; minus map access where counted)",
          "triggering": "triggering (runs x hook dispatch)", "unexplained": "unexplained (total - parts)"}
SOURCE_OF = {"user": "user space", "map": "map access", "exec": "execution", "triggering": "triggering"}


def _txt(iv: stats.Interval | None, total: stats.Interval | None = None) -> str:
    if iv is None:
        return "-"
    share = (f" ({100 * iv.median / total.median:.0f}%)" if total is not None and total.median
             and total.median > 0 else "")
    return _ivtext(iv) + share


def _ivtext(iv: stats.Interval, unit: str = "") -> str:
    return iv.text(1, unit) if iv.low is not None else f"{iv.median:,.1f}{unit} (n={iv.n}, no interval)"


def _label(p: dict[str, Any]) -> str:
    return f"all {len(p['tools_combined'])} at once" if p["tool"] == "all" and p["tools_combined"] else p["tool"]


def parts_table(parts: list[dict[str, Any]]) -> dict[str, Any]:
    head = ["target", "tool", "load", "total CPU ms/s", "user space", "map access", "execution", "triggering",
            "unexplained", "in the load's processes (per CPU second)", "unexplained there",
            "dominant measured source", "one-time (verifier, load)",
            "map access: counted ops x map row taken / why not", "triggering: hook row taken / why not"]
    rows = []
    for p in parts:
        iv, r = p["ivs"], p["row"]
        cells = [p["group"], _label(p), str(r.get("load") or "-"), _txt(iv["total"])]
        cells += [_txt(iv["user"], iv["total"]), _map_cell(p, iv)]
        cells += [_txt(iv[k], iv["total"]) for k in ("exec", "triggering", "unexplained")]
        cells += [_txt(iv.get("incontext")), _txt(iv.get("incontext_unexplained"), iv.get("incontext"))]
        cells += [SOURCE_OF.get(p["dominant"] or "", "-"), p["verifier"], p["map_access"][:400],
                  p["triggering"].text()[:300]]
        rows.append({"cells": cells, "emulated": p["emulated"], "status": "ok"})
    return {"head": head, "rows": rows}


def _map_cell(p: dict[str, Any], iv: dict[str, Any]) -> str:
    m = p["map"]
    if iv.get("map") is not None:
        return _txt(iv["map"], iv["total"]) + ("" if m.status == "measured" else f" ({m.status})")
    if m.status == "implausible" and m.ms is not None:
        return f"{m.ms:,.3f} implausible (> execution)"
    return _short(p["map_access"]) if m.status == "not separable" else m.status


def sources_table(parts: list[dict[str, Any]], talk_sources: list[str]) -> dict[str, Any]:
    """The talk's five sources (its words) with the measured share, per target: for all tools at
    once where that row exists, else summed over the tools measured alone."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for p in parts:
        by_group.setdefault(p["group"], []).append(p)
    head = ["source (the talk)"]
    cols = []
    for g, ps in by_group.items():
        both = [p for p in ps if p["tool"] == "all"]
        pick = both[:1] or [p for p in ps if p["tool"] != "all"]
        emu = " †" if ps[0]["emulated"] else ""
        head.append(f"{g}{emu}: " + (_label(pick[0]) if both else f"sum of {len(pick)} tools alone"))
        cols.append(pick)
    keys = ["user", "map", "triggering", "verifier", "exec"]
    rows = []
    for key, words in zip(keys, talk_sources, strict=False):
        cells = [words]
        for pick in cols:
            cells.append(_source_cell(key, pick))
        rows.append(cells)
    rows.append(["unexplained: total - the parts measured"] + [_source_cell("unexplained", pick) for pick in cols])
    rows.append(["total (throughput lost x the load's CPU/s)"] + [_source_cell("total", pick) for pick in cols])
    return {"head": head, "rows": rows}


def _sum(pick: list[dict[str, Any]], key: str) -> float | None:
    vals = [p["ivs"][key].median for p in pick if p["ivs"].get(key) is not None]
    return sum(vals) if vals else None


def _source_cell(key: str, pick: list[dict[str, Any]]) -> str:
    if key == "map" and _sum(pick, "map") is None:
        m = pick[0]["map_access"]
        return (_short(m) + "; " + m.split(":", 1)[-1].strip()[:160]) if m.startswith("not separable") else m[:300]
    if key == "verifier":
        return " | ".join(f"{_label(p)}: {p['verifier']}" for p in pick)[:400] + " (one-time, not per second)"
    total = _sum(pick, "total")
    v = _sum(pick, key)
    if v is None:
        if key == "triggering":
            return "; ".join(sorted({p["triggering"].why for p in pick if p["triggering"].why}))[:300]
        return "not measured"
    share = f" ({100 * v / total:.0f}% of total)" if total and total > 0 and key != "total" else ""
    if key == "map":
        return f"{v:,.3f} ms/s{share}, carved out of execution: " + " | ".join(
            f"{_label(p)}: {p['map_access']}" for p in pick if p["ivs"].get("map") is not None)[:400]
    if len(pick) == 1 and pick[0]["ivs"].get(key) is not None:
        return _ivtext(pick[0]["ivs"][key], " ms/s") + share
    return f"{v:,.1f} ms/s{share}"


def _short(text: str) -> str:
    return "not separable: inside execution" if text.startswith("not separable") else text.split(";")[0][:90]


def combined_table(parts: list[dict[str, Any]]) -> dict[str, Any]:
    head = ["target", "tools", "all at once: CPU ms/s", "sum alone: CPU ms/s", "all at once: throughput lost %",
            "sum alone: throughput lost %"]
    rows = []
    for c in toolparts.combined_vs_sum(parts):
        def s(t: tuple[float, float, float] | None) -> str:
            return "-" if t is None else f"{t[0]:,.1f} [{t[1]:,.1f}, {t[2]:,.1f}]"
        rows.append({"cells": [c["group"], c["tools"], _txt(c["cpu_all"]), s(c["cpu_sum"]), _txt(c["pct_all"]),
                               s(c["pct_sum"])], "emulated": c["emulated"]})
    return {"head": head, "rows": rows}


def plot(parts: list[dict[str, Any]], df: pd.DataFrame, path: Path) -> Path | None:
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in parts:
        groups.setdefault(p["group"], []).append(p)
    if not groups:
        return None
    fig = Figure(figsize=(11, sum(0.4 * len(ps) + 1.3 for ps in groups.values()) + 0.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(groups), 1, squeeze=False)
    for ax, (g, ps) in zip(axes[:, 0], groups.items(), strict=True):
        _draw(ax, ps)
        meta = group_meta(df[df["group"] == g])
        emu = " - EMULATED: timing not representative" if meta["emulated"] else ""
        ax.set_title(f"kernel {meta['kernel']} | {meta['accelerator']}{emu} | {meta['cpu_model']}, "
                     f"{meta['vcpus']} vCPU", fontsize=8, loc="left", color="#b00" if meta["emulated"] else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _draw(ax: Axes, ps: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for y, p in enumerate(ps):
        left_pos, left_neg = 0.0, 0.0
        for k in toolparts.PARTS:
            iv = p["ivs"].get(k)
            if iv is None:
                continue
            v = iv.median
            start = left_pos if v >= 0 else left_neg
            ax.barh(y, v, left=start, height=0.6, color=COLORS[k], edgecolor="#555",
                    hatch="//" if k == "unexplained" or p["emulated"] else None,
                    label=None if k in seen else LABELS[k])
            seen.add(k)
            if v >= 0:
                left_pos += v
            else:
                left_neg += v
        tot = p["ivs"].get("total")
        if tot is not None:
            lo = tot.median if tot.low is None else tot.low
            hi = tot.median if tot.high is None else tot.high
            ax.errorbar(tot.median, y, xerr=[[tot.median - lo], [hi - tot.median]], fmt="kD", ms=4, capsize=3,
                        label=None if "total" in seen else "total (throughput-derived, interval)")
            seen.add("total")
    ax.axvline(0, color="black", lw=0.6)
    ax.set_yticks(range(len(ps)))
    ax.set_yticklabels([_label(p) for p in ps], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("CPU ms per second of load (medians; parts stacked, total with its interval)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def build(df: pd.DataFrame, out_dir: Path, talk_sources: list[str]) -> dict[str, Any]:
    """Everything the templates' tools-decomposition part shows; empty tables when no tools row has parts."""
    parts = toolparts.frame_parts(df)
    made = plot(parts, df, out_dir / "tool_parts.png") if parts else None
    return {"plot": made.name if made else None, "parts": parts_table(parts) if parts else None,
            "sources": sources_table(parts, talk_sources) if parts else None,
            "combined": combined_table(parts) if parts and toolparts.combined_vs_sum(parts) else None}
