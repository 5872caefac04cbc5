"""The report: report.html, report.md, claims.json and PNG plots for one or more runs.

It is assembled from parts that each do one thing: lab/analysis/claims.py decides the talk's claims
(pure, on the rows frame), lab/results/stats.py computes every interval and test, lab/report/plots.py
draws, lab/report/tables.py shapes the tables, lab/report/render.py renders (jinja2, HTML autoescaped).
The claims section shows what claims.evaluate returned and nothing else;
claims.json beside report.html holds the same verdicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from lab.agent import schema
from lab.analysis import claims, expected, insntable, ranks
from lab.analysis.claims import TCG_NOTE
from lab.core import units
from lab.core.config import DATA
from lab.report import latency as latreport
from lab.report import outputs, plots, render, tables
from lab.report import tools as toolreport
from lab.report.cells import interval as cell_interval
from lab.results import aggregate, unitview
from lab.results.selectors import select
from lab.results.store import load_runs

HERE = Path(__file__).resolve().parent


def talk_data() -> dict[str, Any]:
    return yaml.safe_load((DATA / "talk.yaml").read_text())


def perf_program_cost(df: pd.DataFrame) -> list[dict[str, Any]]:
    """perf_event program cost per sample, body - none (and empty - none), where rows carry it: one
    table per unit (ns, guest instructions)."""
    out = []
    rows = select(df, {"suite": "hooks", "hook": "perf_event", "method": "throughput_abba", "status": "ok"})
    if rows.empty or "minus_none_samples" not in rows:
        return out
    for unit, d in unitview.by_unit(rows):
        lines = []
        for _, r in d.iterrows():
            iv, _ = cell_interval(pd.DataFrame([r]), "minus_none_samples")
            hz = tables.fmt(int(r["freq_hz"]) if pd.notna(r["freq_hz"]) else None)
            if iv is not None:
                lines.append({"cells": [r["group"], str(r.get("perf_event")), hz,
                                        f"{r['variant']} - none", iv.text(0, unitview.suffix(unit) + "/sample")],
                              "emulated": bool(r["emulated"]), "insn": unit == units.INSN})
        if lines:
            out.append({"head": ["target", "event", "Hz", "variant", unitview.label(unit, "{u} per sample")],
                        "rows": lines, "unit": unit, "title": unitview.tag(unit), "note": unitview.note(unit)})
    return out


def ranks_table(items: list[ranks.Ordering]) -> dict[str, Any] | None:
    """lab/analysis/ranks.py's orderings as a table: orders and ratios across units, never one figure."""
    if not items:
        return None
    head = ["target (guest instructions; estimated cycles (model, emulated) where named)", "compared with",
            "order on the target", "Spearman rho", f"each hook / {ranks.ANCHOR}: target vs other"]
    rows = [{"cells": [o.target, o.versus, " < ".join(o.hooks), f"{o.rho:+.2f}" if o.rho is not None
                       else "- (under 3 hooks)", ", ".join(f"{h} {a:.2f} vs {b:.2f}" for h, (a, b) in o.ratios.items()
                                                         if h != ranks.ANCHOR) or "-"], "insn": True}
            for o in items]
    notes = sorted({f"{o.target} against {o.versus}: {o.note}" for o in items if o.note})
    return {"head": head, "rows": rows, **({"note": "; ".join(notes)} if notes else {})}


def build(run_dirs: list[Path], out_dir: Path) -> dict[str, Any]:
    """Everything the templates show (plots are written into out_dir), plus the verdicts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    talk = talk_data()
    spec = claims.parse_claims(talk)
    runs = load_runs(run_dirs)
    df = aggregate.rows_frame(runs)
    facts = [tables.run_facts(r) for r in runs]
    verdicts = claims.evaluate(df, spec, asked=expected.asked(runs))
    by_claim = [dict(c, verdicts=[v for v in verdicts if v.claim == c["id"]]) for c in spec]
    ctx: dict[str, Any] = {
        "talk": talk, "runs": facts,
        "incomplete": [f for f in facts if not f["complete"] and f["status"] != tables.UNKNOWN],
        "problems": [str(p) for r in runs for p in r.problems], "tcg_note": TCG_NOTE,
        "unknown": [f for f in facts if f["status"] == tables.UNKNOWN],
        "any_tcg": bool(not df.empty and df["emulated"].any()), "groups": tables.groups(df),
        "any_insn": bool(not df.empty and (df["figure_unit"] == units.INSN).any()),
        "insn_note": unitview.note(units.INSN), "insn_tag": unitview.EMULATED_INSN,
        "claims": by_claim, "verdicts": verdicts, "plots": {}, "perf_cost": [],
        "tables": {"hooks": [], "maps": [], "memlock": None, "tools": None, "kernel_batch": []},
        "lacking": {"head": [], "rows": []}, "tool_parts": [],
        "latency": {"table": None, "plots": []}, "insn_matrix": [], "ranks": None,
        "suites_absent": [s for s in schema.SUITES if df.empty or select(df, {"suite": s}).empty],
    }
    if df.empty:
        ctx["talk_maps"], ctx["talk_hooks"] = [], []
        return ctx
    ctx["plots"] = plots.all_plots(df, out_dir, talk)
    ctx["insn_matrix"] = insntable.build(df)
    ctx["ranks"] = ranks_table(ranks.orderings(df))
    ctx["tables"] = tables.row_tables(df)
    pairs = [tables.talk_tables(d, talk) for _, d in unitview.by_unit(df)]  # one pair per unit
    ctx["talk_maps"], ctx["talk_hooks"] = [m for m, _ in pairs], [h for _, h in pairs]
    ctx["perf_cost"] = perf_program_cost(df)
    ctx["lacking"] = tables.lacking(df)
    ctx["tool_parts"] = toolreport.build(df, out_dir, talk["overhead_sources"])
    ctx["latency"] = latreport.build(df, out_dir)
    return ctx


def write_report(run_dirs: list[Path], out_dir: Path, legacy: bool = False) -> Path:
    """Render report.html, report.md and claims.json (plus PNG plots) for the given runs into out_dir,
    never over a file it did not write (lab/report/outputs.py: OutputRefused, nothing written)."""
    def make(stage: Path) -> Path:
        ctx = build([Path(p) for p in run_dirs], stage)
        (stage / "claims.json").write_text(json.dumps([v.json() for v in ctx["verdicts"]], indent=1) + "\n")
        return render.write(ctx, stage)

    return outputs.write(Path(out_dir), make, legacy=legacy)
