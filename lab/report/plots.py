"""The report's plots (matplotlib's object API: a Figure per plot, no global pyplot state), one facet
per target group. Every interval drawn is lab/results/stats.py's, from the rows' per-trial samples.
TCG-emulated facets are hatched with a red title: pipeline checked, timing not representative.
Figures in guest instructions (icount) get plots of their own (file names ending in _insn), never a
facet beside ns: their axes say "guest instructions" and their titles "emulated, in guest instructions"."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lab.agent.hooks import table as hook_table
from lab.core import units
from lab.report.cells import Bar, group_meta, interval  # noqa: F401 (the plots' cells)
from lab.results import stats, unitview
from lab.results.selectors import select

OPEN_PATH_HOOKS = hook_table.on("open")
OTHER_HOOKS = hook_table.on("uprobe") + hook_table.on("net")


def _title(meta: dict[str, Any], timing: bool) -> str:
    emu = " - EMULATED: timing not representative" if timing else " - emulated (memory accounting unaffected)"
    acc = meta["accelerator"] + (emu if meta["emulated"] else "")
    if meta.get("unit") == units.INSN:
        acc += f" - {unitview.EMULATED_INSN} (exact counts, a path length)" if timing else " - emulated"
    return (f"kernel {meta['kernel']} | {acc}\n{meta['cpu_model']}, {meta['vcpus']} vCPU | "
            f"trials {meta['trials']} | spread (CI width / median) {meta['spread']}")


def bars(ax: Axes, labels: list[str], series: list[tuple[str, list[Bar], str]], emulated: bool, xlabel: str) -> None:
    n = len(series)
    height = 0.8 / max(n, 1)
    seen: set[str] = set()
    for i, (name, sides, color) in enumerate(series):
        for j, (iv, status) in enumerate(sides):
            y = j + (i - (n - 1) / 2) * height
            if iv is None:
                if status:
                    ax.text(0, y, f"  {status}", va="center", fontsize=7, color="#a33")
                continue
            lo = iv.median if iv.low is None else iv.low
            hi = iv.median if iv.high is None else iv.high
            ax.barh(y, iv.median, height=height * 0.95, color=color, hatch="//" if emulated else None,
                    edgecolor="#555" if emulated else color, capsize=2,
                    xerr=[[max(0.0, iv.median - lo)], [max(0.0, hi - iv.median)]],
                    label=None if name in seen else name)
            seen.add(name)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    if seen:
        ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)


def facets(groups: list[tuple[str, pd.DataFrame]], draw: Callable[[Axes, pd.DataFrame, dict[str, Any]], None],
           path: Path, row_height: float, timing: bool = True) -> Path | None:
    if not groups:
        return None
    metas = [group_meta(g) for _, g in groups]
    insn = timing and any(m["unit"] == units.INSN for m in metas)
    if len({m["unit"] for m in metas}) > 1 and timing:
        raise ValueError(f"{path.name}: facets in ns and in guest instructions are never drawn together")
    fig = Figure(figsize=(9, row_height * len(groups) + 0.6 + (0.4 if insn else 0)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(groups), 1, squeeze=False)
    for ax, (_, g), meta in zip(axes[:, 0], groups, metas, strict=True):
        draw(ax, g, meta)
        ax.set_title(_title(meta, timing), fontsize=8, loc="left",
                     color="#b00" if meta["emulated"] and timing else "black")
    if insn:  # the note travels with the PNG
        words = f"{unitview.EMULATED_INSN}: {unitview.note(units.INSN)}"
        fig.text(0.01, 0.005, "\n".join(textwrap.wrap(words, 150)), fontsize=6,
                 va="bottom", color="#444")
        fig.tight_layout(rect=(0, 0.35 / fig.get_figheight(), 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _groups(df: pd.DataFrame, sel: dict[str, Any]) -> list[tuple[str, pd.DataFrame]]:
    return [(k, g) for k, g in df.groupby("group") if not select(g, sel).empty]


def plot_hooks(df: pd.DataFrame, out: Path, hooks: tuple[str, ...], name: str) -> Path | None:
    def draw(ax: Axes, g: pd.DataFrame, meta: dict[str, Any]) -> None:
        present = [h for h in hooks if not select(g, {"suite": "hooks", "hook": h}).empty]
        series = []
        for variant, color, label in (("body", "#2a6fbb", "body (PID+comm into a map)"),
                                      ("empty", "#9cc3e6", "empty program")):
            sides = [interval(select(g, {"suite": "hooks", "hook": h, "variant": variant, "method": "wall_abba"}))
                     if not select(g, {"suite": "hooks", "hook": h, "variant": variant}).empty else (None, "")
                     for h in present]
            if any(s[0] is not None or s[1] for s in sides):
                series.append((label, sides, color))
        bars(ax, present, series, meta["emulated"],
             unitview.label(meta["unit"], "added {u} per event, wall_abba (median, interval)"))

    return facets(_groups(df, {"suite": "hooks", "hook": list(hooks)}), draw, out / name, 0.35 * len(hooks) + 1.2)


BATCH = {"suite": "hooks", "method": "kernel_batch"}
BATCH_ORDER = hook_table.shown(hook_table.on("batch"))


def plot_batch(df: pd.DataFrame, out: Path, sfx: str = "") -> Path | None:
    """kernel_batch, the most precise hook method: added cost per in-kernel trigger per attach type,
    empty and body programs (median, interval over trials)."""
    def draw(ax: Axes, g: pd.DataFrame, meta: dict[str, Any]) -> None:
        kb = select(g, BATCH)
        present = sorted({str(h) for h in kb["hook"]},
                         key=lambda h: (BATCH_ORDER.index(h) if h in BATCH_ORDER else len(BATCH_ORDER), h))
        series = []
        for variant, color, label in (("body", "#2a6fbb", "body (PID+comm into a map)"),
                                      ("empty", "#9cc3e6", "empty program")):
            sides = [interval(select(kb, {"hook": h, "variant": variant})) for h in present]
            if any(s[0] is not None or s[1] for s in sides):
                series.append((label, sides, color))
        bars(ax, present, series, meta["emulated"],
             unitview.label(meta["unit"], "added {u} per in-kernel trigger, kernel_batch (median, interval)"))

    groups = _groups(df, BATCH)
    rows = max((len({str(h) for h in select(g, BATCH)["hook"]}) for _, g in groups), default=0)
    return facets(groups, draw, out / f"hooks_batch{sfx}.png", 0.35 * rows + 1.2)


def plot_perf(df: pd.DataFrame, out: Path, sfx: str = "") -> Path | None:
    sel = {"suite": "hooks", "hook": "perf_event", "method": "throughput_abba", "status": "ok"}

    def draw(ax: Axes, g: pd.DataFrame, meta: dict[str, Any]) -> None:
        rows = select(g, sel)
        for (event, variant), r in rows.groupby(["perf_event", "variant"]):
            col = "loss_samples" if "loss_samples" in r and r["loss_samples"].map(
                lambda s: isinstance(s, list)).any() else None
            pts = []
            for f, x in sorted(r.groupby("freq_hz"), key=lambda t: t[0]):
                iv, _ = interval(x, col) if col else (None, "")
                if iv is None:  # rows recorded before loss_samples: the agent's own median, no interval
                    med = float(x["loss_pct_median"].median())
                    iv = stats.Interval(med, None, None, None, 1, "")
                pts.append((float(f), iv))
            xs = [p[0] for p in pts]
            ys = [p[1].median for p in pts]
            lo = [p[1].median - (p[1].low if p[1].low is not None else p[1].median) for p in pts]
            hi = [(p[1].high if p[1].high is not None else p[1].median) - p[1].median for p in pts]
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o-", capsize=3, label=f"{event} {variant}", alpha=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("sampling frequency (Hz)", fontsize=8)
        ax.set_ylabel("throughput lost (%)", fontsize=8)
        ax.axhline(0, color="#888", lw=0.6)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)

    return facets(_groups(df, sel), draw, out / f"perf_event{sfx}.png", 2.6)


MAP_KERNEL = {"suite": "maps", "driver": "kernel", "key_space": "dense"}


def plot_maps(df: pd.DataFrame, out: Path, sfx: str = "") -> Path | None:
    def draw(ax: Axes, g: pd.DataFrame, meta: dict[str, Any]) -> None:
        m = select(g, dict(MAP_KERNEL, operation=["update", "lookup"]))
        kinds = sorted({(str(t), int(f)) for t, f in zip(m["map_type"], m["flags"].fillna(0), strict=True)})
        series = []
        for op, cont, color, label in (("update", "1cpu", "#c0504d", "update, 1 CPU"),
                                       ("lookup", "1cpu", "#4f81bd", "lookup, 1 CPU"),
                                       ("update", "allcpu", "#f2a09e", "update, every vCPU at once")):
            sides = [interval(select(g, dict(MAP_KERNEL, map_type=t, flags=f, operation=op, contention=cont)))
                     for t, f in kinds]
            if any(s[0] is not None for s in sides):
                series.append((label, sides, color))
        labels = [t + (" NO_PREALLOC" if f & 1 else "") for t, f in kinds]
        bars(ax, labels, series, meta["emulated"],
             unitview.label(meta["unit"], "{u} per operation, in-kernel, dense keys (median, interval)"))

    return facets(_groups(df, dict(MAP_KERNEL, operation=["update", "lookup"])), draw, out / f"maps{sfx}.png", 3.6)


def plot_memlock(df: pd.DataFrame, out: Path, example: dict[str, Any]) -> Path | None:
    sel = {"suite": "maps", "operation": "memory", "status": "ok", "key_space": "dense",
           "max_entries": example["max_entries"], "inserted": 0}

    def draw(ax: Axes, g: pd.DataFrame, meta: dict[str, Any]) -> None:
        m = select(g, sel).drop_duplicates(["map_type", "flags"])
        labels = [f"{t}{' NO_PREALLOC' if int(f) & 1 else ''}" for t, f in zip(m["map_type"], m["flags"], strict=True)]
        y = list(range(len(labels)))
        ax.barh([i - 0.2 for i in y], m["memlock_measured"], height=0.4, color="#4f81bd", label="measured (fdinfo)")
        ax.barh([i + 0.2 for i in y], m["memlock_predicted"].fillna(0), height=0.4, color="#f79646",
                label="predicted (model)")
        for i, (t, f) in enumerate(zip(m["map_type"], m["flags"], strict=True)):
            if t == "hash":
                v = example["no_prealloc_bytes"] if int(f) & 1 else example["prealloc_bytes"]
                ax.plot([v], [i], marker="*", markersize=11, color="black", linestyle="none",
                        label="the talk (6.2, bpftool)" if not any(
                            h == "the talk (6.2, bpftool)" for h in ax.get_legend_handles_labels()[1]) else None)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"memlock bytes, max_entries={example['max_entries']}, empty map", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(axis="x", alpha=0.3)

    return facets(_groups(df, sel), draw, out / "memlock.png", 3.2, timing=False)


def plot_tools(df: pd.DataFrame, out: Path, sfx: str = "") -> Path | None:
    sel = {"suite": "tools", "status": "ok", "method": ["throughput_abba", "combined_abba"]}  # latency: its own plots

    def draw(ax: Axes, g: pd.DataFrame, meta: dict[str, Any]) -> None:
        t = select(g, sel)
        sides = [interval(select(t, {"tool": name}), "overhead_samples") for name in t["tool"]]
        bars(ax, [str(x) for x in t["tool"]], [("throughput lost", sides, "#8064a2")], meta["emulated"],
             "throughput lost under load, % (median, interval)")

    return facets(_groups(df, sel), draw, out / f"tools{sfx}.png", 2.8)


def all_plots(df: pd.DataFrame, out: Path, talk: dict[str, Any]) -> dict[str, str]:
    """Each timed plot once per unit (key and file name suffixed _insn for guest instructions);
    memlock bytes in one plot."""
    made: dict[str, Path | None] = {}
    for unit, d in unitview.by_unit(df):
        sfx = "" if unit == units.NS else "_" + units.short(unit)
        made |= {"hooks_batch" + sfx: plot_batch(d, out, sfx),
                 "hooks" + sfx: plot_hooks(d, out, OPEN_PATH_HOOKS, f"hooks_open{sfx}.png"),
                 "hooks_other" + sfx: plot_hooks(d, out, OTHER_HOOKS, f"hooks_other{sfx}.png"),
                 "perf_event" + sfx: plot_perf(d, out, sfx), "maps" + sfx: plot_maps(d, out, sfx),
                 "tools" + sfx: plot_tools(d, out, sfx)}
    made["memlock"] = plot_memlock(df, out, talk["memlock_example"])
    return {k: v.name for k, v in made.items() if v is not None}
