"""The report's view of where each tool's overhead comes from (lab/analysis/toolparts.py): the decomposition
table per tool and target, the talk's five sources with the measured share of each, all tools at
once vs the sum of them alone, and a stacked bar per tool (and for all at once) per target with the
unexplained part drawn (negative: left of zero, hatched). Plain data for the templates + one PNG.
One such view per unit: under icount a guest millisecond is 10^6 guest instructions, so "CPU ms/s"
reads "M guest insn per 10^9 guest insn" there, in a table and a plot of its own."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lab.analysis import toolparts
from lab.core import units
from lab.report.cells import group_meta
from lab.results import stats, unitview

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


def plot(parts: list[dict[str, Any]], df: pd.DataFrame, path: Path, unit: str = units.NS) -> Path | None:
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in parts:
        groups.setdefault(p["group"], []).append(p)
    if not groups:
        return None
    extra = 0.8 if unit == units.INSN else 0.4  # room for the note under instruction plots
    fig = Figure(figsize=(11, sum(0.4 * len(ps) + 1.3 for ps in groups.values()) + extra))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(groups), 1, squeeze=False)
    for ax, (g, ps) in zip(axes[:, 0], groups.items(), strict=True):
        _draw(ax, ps, unit)
        meta = group_meta(df[df["group"] == g])
        emu = (" - EMULATED: timing not representative" if meta["emulated"] else
               f" - {unitview.EMULATED_INSN}" if meta["unit"] == units.INSN else "")
        ax.set_title(f"kernel {meta['kernel']} | {meta['accelerator']}{emu} | {meta['cpu_model']}, "
                     f"{meta['vcpus']} vCPU", fontsize=8, loc="left", color="#b00" if meta["emulated"] else "black")
    if unit == units.INSN:  # the note travels with the PNG
        words = f"{unitview.EMULATED_INSN}: {unitview.note(unit)}"
        fig.text(0.01, 0.005, "\n".join(textwrap.wrap(words, 170)), fontsize=6, va="bottom")
        fig.tight_layout(rect=(0, 0.35 / fig.get_figheight(), 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _draw(ax: Axes, ps: list[dict[str, Any]], unit: str = units.NS) -> None:
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
    per = f"{INSN_MS[0]} of load" if unit == units.INSN else "CPU ms per second of load"
    ax.set_xlabel(f"{per} (medians; parts stacked, total with its interval)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


INSN_MS = ("M guest insn per 10^9 guest insn", "M insn/G insn")  # what "CPU ms/s" / "ms/s" read as under icount


def _relabel(t: dict[str, Any] | None, unit: str) -> dict[str, Any] | None:
    """A table's "CPU ms/s" in the unit's words (guest instructions: millions per 10^9 of the load's)."""
    if t is None or unit != units.INSN:
        return t

    def one(x: Any) -> Any:
        return x.replace("CPU ms/s", INSN_MS[0]).replace("ms/s", INSN_MS[1]) if isinstance(x, str) else x

    rows = [dict(r, cells=[one(c) for c in r["cells"]]) if isinstance(r, dict) else [one(c) for c in r]
            for r in t["rows"]]
    return dict(t, head=[one(h) for h in t["head"]], rows=rows)


def build_one(df: pd.DataFrame, out_dir: Path, talk_sources: list[str], unit: str = units.NS) -> dict[str, Any]:
    """The tools-decomposition part of one unit's rows; empty tables when no tools row has parts."""
    parts = toolparts.frame_parts(df)
    sfx = "" if unit == units.NS else "_" + units.short(unit)
    made = plot(parts, df, out_dir / f"tool_parts{sfx}.png", unit) if parts else None
    return {"unit": unit, "title": unitview.tag(unit), "note": unitview.note(unit),
            "plot": made.name if made else None, "parts": _relabel(parts_table(parts), unit) if parts else None,
            "sources": _relabel(sources_table(parts, talk_sources), unit) if parts else None,
            "combined": _relabel(combined_table(parts), unit) if parts and toolparts.combined_vs_sum(parts)
            else None}


def build(df: pd.DataFrame, out_dir: Path, talk_sources: list[str]) -> list[dict[str, Any]]:
    """One tools-decomposition view per unit of the rows (ns first), each with parts to show."""
    views = [build_one(d, out_dir, talk_sources, u) for u, d in unitview.by_unit(df)]
    return [v for v in views if v["parts"]]
