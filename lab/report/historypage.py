"""The history page: one static HTML file (plots inlined as PNG data, no script, opens offline) of
lab/analysis/history.py's series: the change points first (the newest first), each linked to the runs
either side; then the series that moved, one small plot each in the figure's unit with every point's
interval; then, per comparable identity, unit and suite (ns and guest instructions never share a
figure), one small plot per attach type, map type and tool overlaying its series as % of each one's
own median (so hundreds of series draw in seconds). A change point is a red line (a regression) or a
green one (an improvement) between the two runs."""

from __future__ import annotations

import base64
import html
import io
import math
import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lab.analysis import history
from lab.core import units

COLS = 6  # small plots per figure row
MAX_PLOTS = 24  # series with change points drawn in detail (the newest changes first)
COLOURS = {"regression": "#c0392b", "improvement": "#1e8449"}


def _facet(s: history.Series) -> str:
    """What a figure gathers: the attach type (hooks), map type (maps) or tool (tools)."""
    field = {"hooks": "hook", "maps": "map_type", "tools": "tool"}.get(s.suite, "")
    return f"{s.suite} {s.key.get(field, '') or ''}".strip()


def _axes_style(ax, title: str, ylabel: str, n: int) -> None:
    """Few texts per plot: drawing tick labels is most of a page's time. x: the runs in order (the
    table names them), no labels; y: three ticks."""
    title = "\n".join(t if len(t) <= 34 else t[:33] + "…" for t in title.split("\n"))
    ax.set_title(f"{title} ({n} runs)", fontsize=6, pad=2)
    ax.tick_params(labelsize=5, length=2, pad=1, labelbottom=False)
    ax.xaxis.set_major_locator(MaxNLocator(3, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(3))
    ax.set_ylabel(ylabel, fontsize=5, labelpad=1)


def _png(fig: Figure, rows: int) -> str:
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.08 / rows + 0.02, top=1 - 0.25 / rows, wspace=0.5,
                        hspace=0.9)  # fixed margins: tight_layout would measure every label (seconds per page)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode()


def _grid(n: int) -> tuple[Figure, int, int]:
    cols = max(1, min(n, COLS))
    rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(cols * 2.1, rows * 1.45), dpi=90)
    FigureCanvasAgg(fig)
    return fig, rows, cols


def _detail(series: list[history.Series]) -> str:
    """One small plot per series with a change point, in the figure's unit, every point with its interval."""
    fig, rows, cols = _grid(len(series))
    for i, s in enumerate(series):
        ax = fig.add_subplot(rows, cols, i + 1)
        xs = list(range(len(s.points)))
        med = [p.median for p in s.points]
        lo = [p.median - p.low if p.low is not None else 0 for p in s.points]
        hi = [p.high - p.median if p.high is not None else 0 for p in s.points]
        ax.errorbar(xs, med, yerr=[lo, hi], fmt="o-", ms=2, lw=0.8, elinewidth=0.5, color="#34495e")
        for c in s.changes:
            ax.axvline(c.index - 0.5, color=COLOURS[c.direction], lw=1.2)
        _axes_style(ax, f"{s.row_key.split('/', 1)[-1]}\n{s.identity.kernel} {s.identity.accelerator}",
                    f"{units.short(s.unit)}/op" if s.metric.endswith("/op") else s.metric, len(xs))
    return _png(fig, rows)


def _overview(facets: list[tuple[str, list[history.Series]]]) -> str:
    """One small plot per attach type / map type / tool: each of its series as % of its own median
    across the runs (grey; red or green from a change point on), the change points as vertical lines."""
    fig, rows, cols = _grid(len(facets))
    for i, (facet, series) in enumerate(facets):
        ax = fig.add_subplot(rows, cols, i + 1)
        n = 0
        for s in sorted(series, key=lambda s: bool(s.changes)):
            vals = [p.median for p in s.points]
            mid = sorted(vals)[len(vals) // 2] if vals else 0
            if not mid:
                continue
            n = max(n, len(vals))
            colour = COLOURS[s.changes[0].direction] if s.changes else "#95a5a6"
            ax.plot(range(len(vals)), [100 * (v / mid - 1) for v in vals], lw=0.9 if s.changes else 0.5,
                    color=colour)
            for c in s.changes:
                ax.axvline(c.index - 0.5, color=COLOURS[c.direction], lw=0.8, ls="--")
        _axes_style(ax, f"{facet}: {len(series)} series", "% of median", n)
    return _png(fig, rows)


def _run_link(run: str, dirs: dict[str, Path], out: Path) -> str:
    d = dirs.get(run)
    if d is None:
        return html.escape(run)
    target = d / "report.html" if (d / "report.html").is_file() else d
    rel = os.path.relpath(target, out.parent)
    return f'<a href="{html.escape(rel)}">{html.escape(run)}</a>'


CSS = ("body{font:13px sans-serif;margin:12px}table{border-collapse:collapse}td,th{padding:2px 6px;"
       "border-bottom:1px solid #ddd;text-align:left}td.n{text-align:right;white-space:nowrap}"
       ".regression{color:#c0392b}"
       ".improvement{color:#1e8449}h2{font-size:14px;margin:14px 0 4px}img{max-width:100%}"
       "details{margin:2px 0}summary{cursor:pointer}")


def write(series: list[history.Series], notes: list[str], run_dirs: list[Path], out: Path) -> Path:
    """The page for these series at `out` (an .html file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    dirs = {d.name: d for d in run_dirs}
    pairs = history.changes(series)
    runs = len({p.run for s in series for p in s.points})
    body = [f"<h1>History: {len(series)} series over {runs} runs, {len(pairs)} change points</h1>",
            f"<p>Change points by Apache Otava (E-Divisive, p &lt; {history.MAX_PVALUE:g}); floors: the determinism "
            "tolerance for exact instruction rows, significance (Mann-Whitney of the runs either side, "
            "Benjamini-Hochberg over every noisy series) and 2% for the rest. Lower is better. A series never "
            "spans two kernels, accelerators, QEMU versions, CPU models or suite parameters.</p>"]
    body.append("<h2>Change points, the newest first</h2>")
    if pairs:
        body.append("<table><tr><th>change</th><th>row</th><th>old</th><th>new</th><th>between</th><th>and</th>"
                    "<th>kernel, accelerator</th></tr>")
        for s, c in pairs:
            u = units.short(s.unit)
            body.append(f'<tr><td class="n {c.direction}">{c.change_pct:+.2f}% ({c.change:+,.1f} {u})</td>'
                        f"<td>{html.escape(s.row_key)}</td><td class=n>{c.old:,.1f}</td><td class=n>{c.new:,.1f}</td>"
                        f"<td>{_run_link(c.before, dirs, out)}</td><td>{_run_link(c.after, dirs, out)}</td>"
                        f"<td>{html.escape(s.identity.kernel)}, {html.escape(s.identity.accelerator)}</td></tr>")
        body.append("</table>")
    else:
        body.append("<p>none</p>")
    moved = [s for s, _ in pairs]
    if moved:
        unique = list({id(s): s for s in moved}.values())
        shown = unique[:MAX_PLOTS]
        body.append(f"<h2>The series that moved ({len(shown)} of {len(unique)} shown), with intervals</h2>"
                    f'<img alt="series with change points" src="data:image/png;base64,{_detail(shown)}">')
    groups: dict[tuple[history.Identity, str, str], dict[str, list[history.Series]]] = {}
    for s in series:
        groups.setdefault((s.identity, s.unit, s.suite), {}).setdefault(_facet(s), []).append(s)
    order = sorted(groups, key=lambda k: (not any(s.changes for f in groups[k].values() for s in f),
                                          k[0].kernel, k[1], k[2]))
    body.append("<h2>Every series per attach type, map type and tool (as % of its own median)</h2>")
    for key in order:
        ident, unit, suite = key
        facets = sorted(groups[key].items())
        n = sum(len(s.changes) for _, f in facets for s in f)
        count = sum(len(f) for _, f in facets)
        head = (f"{html.escape(suite)}: {html.escape(ident.kernel)} ({html.escape(ident.accelerator)}, "
                f"{units.label(unit)}), {count} series, {n} change point{'s' if n != 1 else ''}")
        img = f'<img alt="{html.escape(suite)}" src="data:image/png;base64,{_overview(facets)}">'
        more = f"<p>{html.escape(ident.text())}</p>"
        body.append(f"<details{' open' if n else ''}><summary>{head}</summary>{more}{img}</details>")
    body += [f"<p>note: {html.escape(x)}</p>" for x in notes]
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>eBPF lab history</title><style>{CSS}</style>"
            f"</head><body>{''.join(body)}</body></html>")
    out.write_text(page)
    return out
