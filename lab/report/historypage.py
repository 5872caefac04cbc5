"""The history page: one static HTML file (plots inlined as PNG data, no script, opens offline) of
lab/analysis/history.py's series: the change points first (the newest first), each linked to the runs
either side, then one small-multiples figure per attach type, map type and tool, per comparable
identity and unit (ns and guest instructions never share a figure). A change point is a red line (a
regression) or a green one (an improvement) between the two runs; every point carries its interval."""

from __future__ import annotations

import base64
import html
import io
import math
import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lab.analysis import history
from lab.core import units

COLS = 6  # small plots per figure row
MAX_PLOTS = 24  # per figure: the series with change points first, then the rest by row key
COLOURS = {"regression": "#c0392b", "improvement": "#1e8449"}


def _facet(s: history.Series) -> str:
    """What a figure gathers: the attach type (hooks), map type (maps) or tool (tools)."""
    field = {"hooks": "hook", "maps": "map_type", "tools": "tool"}.get(s.suite, "")
    return f"{s.suite} {s.key.get(field, '') or ''}".strip()


def _figure(series: list[history.Series]) -> str:
    shown = sorted(series, key=lambda s: (not s.changes, s.row_key))[:MAX_PLOTS]
    rows = math.ceil(len(shown) / COLS)
    fig = Figure(figsize=(COLS * 2.1, rows * 1.35), dpi=72)
    FigureCanvasAgg(fig)
    for i, s in enumerate(shown):
        ax = fig.add_subplot(rows, COLS, i + 1)
        xs = list(range(len(s.points)))
        med = [p.median for p in s.points]
        lo = [p.median - p.low if p.low is not None else 0 for p in s.points]
        hi = [p.high - p.median if p.high is not None else 0 for p in s.points]
        ax.errorbar(xs, med, yerr=[lo, hi], fmt="o-", ms=2, lw=0.8, elinewidth=0.5, color="#34495e")
        for c in s.changes:
            ax.axvline(c.index - 0.5, color=COLOURS[c.direction], lw=1.2)
        title = s.row_key.split("/", 2)[-1]
        ax.set_title(title if len(title) <= 34 else title[:33] + "…", fontsize=6)
        ax.tick_params(labelsize=5)
        ax.set_xlabel(f"run (of {len(xs)})", fontsize=5)
        ax.set_ylabel(f"{units.short(s.unit)}/op" if s.metric.endswith("/op") else s.metric, fontsize=5)
    fig.tight_layout(pad=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode()


def _run_link(run: str, dirs: dict[str, Path], out: Path) -> str:
    d = dirs.get(run)
    if d is None:
        return html.escape(run)
    target = d / "report.html" if (d / "report.html").is_file() else d
    rel = os.path.relpath(target, out.parent)
    return f'<a href="{html.escape(rel)}">{html.escape(run)}</a>'


CSS = ("body{font:13px sans-serif;margin:12px}table{border-collapse:collapse}td,th{padding:2px 6px;"
       "border-bottom:1px solid #ddd;text-align:left}td.n{text-align:right}.regression{color:#c0392b}"
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
    groups: dict[tuple[history.Identity, str, str], list[history.Series]] = {}
    for s in series:
        groups.setdefault((s.identity, s.unit, _facet(s)), []).append(s)
    order = sorted(groups, key=lambda k: (not any(s.changes for s in groups[k]), k[0].kernel, k[1], k[2]))
    for key in order:
        ident, unit, facet = key
        mine = groups[key]
        n = sum(len(s.changes) for s in mine)
        head = (f"{html.escape(facet)}: {html.escape(ident.kernel)} ({html.escape(ident.accelerator)}, "
                f"{units.label(unit)}), {len(mine)} series, {n} change point{'s' if n != 1 else ''}")
        img = f'<img alt="{html.escape(facet)}" src="data:image/png;base64,{_figure(mine)}">'
        more = f"<p>{html.escape(ident.text())}</p>"
        body.append(f"<details{' open' if n else ''}><summary>{head}</summary>{more}{img}</details>")
    body += [f"<p>note: {html.escape(x)}</p>" for x in notes]
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>eBPF lab history</title><style>{CSS}</style>"
            f"</head><body>{''.join(body)}</body></html>")
    out.write_text(page)
    return out
