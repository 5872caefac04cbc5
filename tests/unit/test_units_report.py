"""Units never mixed in the report: figures in guest instructions (icount) get tables and plots of
their own, labelled "guest instructions" with the note, never shaded as noise; every target says how
it ran; a run without a recorded status reads "unknown". Recorded runs: tests/fixtures/icount/ (an
icount run and a plain TCG run of the same 5-hook playbook on 6.12)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from lab.core import units
from lab.report import page as report
from lab.report import tables
from lab.results import aggregate, unitview
from lab.results import store as results

ROOT = Path(__file__).resolve().parents[2]
ICOUNT = ROOT / "tests" / "fixtures" / "icount"
ICOUNT_RUN = ICOUNT / "20261207T081111Z-6.12.118_deb12-amd64-0962"
TCG_RUN = ICOUNT / "20261207T081227Z-6.12.118_deb12-amd64-6288"
HOST_RUN = ROOT / "tests" / "fixtures" / "runs" / "20261127T053143Z-6.18.44-fc-v782-ee1e"


def test_by_unit_splits_and_one_unit_refuses_a_mix():
    df = pd.DataFrame({"figure_unit": ["insn", "ns", "insn"], "x": [1, 2, 3]})
    split = unitview.by_unit(df)
    assert [u for u, _ in split] == ["ns", "insn"] and list(split[1][1]["x"]) == [1, 3]
    with pytest.raises(ValueError, match="ns and guest instructions"):
        unitview.one_unit(df)
    assert unitview.one_unit(df[df["figure_unit"] == "insn"]) == "insn"
    # a frame without figure_unit is read by its accelerator (units.of)
    assert unitview.frame_units(pd.DataFrame({"accelerator": ["icount"]})) == ["insn"]
    assert unitview.label("insn", "added {u}/op") == "added guest instructions/op"


def test_report_keeps_instructions_apart_labelled_and_not_shaded(tmp_path):
    ctx = report.build([ICOUNT_RUN, HOST_RUN], tmp_path)
    hooks = ctx["tables"]["hooks"]
    assert [t["unit"] for t in hooks] == ["ns", "insn"]
    ns, insn = hooks
    assert "added ns/op" in ns["head"] and "added guest instructions/op" in insn["head"]
    assert not any("ns" in h.split() for h in insn["head"]) and not any("instructions" in h for h in ns["head"])
    assert insn["title"] == "emulated, in guest instructions" and insn["note"] == units.INSN_NOTE
    assert ns["title"] == "" and ns["note"] == ""
    assert {r["cells"][0] for r in insn["rows"]} == {g["group"] for g in ctx["groups"] if "icount" in g["group"]}
    assert all(r["insn"] and not r["emulated"] for r in insn["rows"])  # exact figures, not TCG noise
    # two runs in the report: each row names its run, not only its file and line
    assert insn["rows"][0]["cells"][1] == f"{ICOUNT_RUN.name}/hooks.jsonl:1"
    assert ns["rows"][0]["cells"][1].startswith(f"{HOST_RUN.name}/hooks.jsonl:")
    # kernel_batch beside the published ns: one table per unit, no ns/insn ratio
    kb = {t["unit"]: t for t in ctx["tables"]["kernel_batch"]}
    assert set(kb) == {"ns", "insn"} and "guest instructions" in kb["insn"]["head"][4]
    assert kb["insn"]["head"][6:8] == ["over the bare driver (guest instructions)", "wall time (guest instructions)"]
    assert kb["ns"]["head"][6:8] == ["over the bare driver (ns)", "wall time (ns)"]
    assert all(r["cells"][9].startswith("- (guest instructions vs ns") for r in kb["insn"]["rows"])
    assert units.INSN_NOTE in kb["insn"]["note"]
    # plots: instruction facets in a file of their own
    assert ctx["plots"]["hooks"] == "hooks_open.png" and ctx["plots"]["hooks_insn"] == "hooks_open_insn.png"
    # every target says how it ran
    modes = {g["accelerator"]: g["mode"] for g in ctx["groups"]}
    assert modes["icount"].startswith("icount: emulated") and "guest instructions" in modes["icount"]
    assert "figures in ns" in modes["host"]


def test_talk_table_column_of_an_icount_target_is_in_instructions(tmp_path):
    """The talk's hook table reads the body variant; the recorded run has the empty one, so a copy
    names its rows body (the figures stay as recorded) to fill the cells."""
    run_dir = tmp_path / ICOUNT_RUN.name
    shutil.copytree(ICOUNT_RUN, run_dir)
    rows = (run_dir / "hooks.jsonl").read_text().replace('"variant": "empty"', '"variant": "body"')
    (run_dir / "hooks.jsonl").write_text(rows)
    ctx = report.build([run_dir, HOST_RUN], tmp_path / "rep")
    ns, insn = ctx["talk_hooks"]  # one table per unit: never an ns column beside an instruction column
    assert (ns["unit"], insn["unit"]) == ("ns", "insn") and insn["note"] == units.INSN_NOTE
    assert len(insn["head"]) == len(ns["head"]) == 5 and "(host" in ns["head"][4]
    assert insn["head"][4].endswith("(emulated, in guest instructions)")
    cells = {row[0]: row[4] for row in insn["rows"]}
    assert cells["Tracepoint"].startswith("613.3 insn/event") and cells["Kprobe"].startswith("376.7 insn/event")
    # the host run's open-path rows were gated on read (intervals wider than their medians): no figure, no insn
    assert "insn" not in " ".join(r[4] for r in ns["rows"]) and ns["rows"][0][4] == "inconclusive"
    df = aggregate.load_frame([run_dir, HOST_RUN])[0]
    with pytest.raises(ValueError, match="never shown or compared together"):
        tables.talk_tables(df, report.talk_data())


def test_rendered_report_carries_the_note_beside_instruction_figures(tmp_path):
    html = report.write_report([ICOUNT_RUN, TCG_RUN], tmp_path).read_text()
    md = (tmp_path / "report.md").read_text()
    for text in (html, md):
        assert "emulated, in guest instructions" in text and units.INSN_NOTE in text
        assert "hooks_open_insn.png" in text and "hooks_open.png" in text
        assert "Ran as icount: emulated" in text and "Ran as tcg: emulated" in text
    assert (tmp_path / "hooks_open_insn.png").read_bytes()[:4] == b"\x89PNG"
    # the most precise method leads the hook figures: kernel_batch before the open path
    assert md.index("(hooks_batch_insn.png)") < md.index("(hooks_open_insn.png)")
    assert html.index('src="hooks_batch_insn.png"') < html.index('src="hooks_open_insn.png"')
    # the icount run's rows are not shaded as TCG noise; the plain TCG run's are
    assert 'class="insn st-ok"' in html and 'class="tcg st-ok"' in html


def test_a_run_without_a_status_reads_unknown(tmp_path):
    run_dir = tmp_path / ICOUNT_RUN.name
    shutil.copytree(ICOUNT_RUN, run_dir)
    m = json.loads((run_dir / "manifest.json").read_text())
    del m["status"]
    (run_dir / "manifest.json").write_text(json.dumps(m))
    facts = tables.run_facts(results.load_run(run_dir))
    assert facts["status"] == "unknown" and not facts["complete"]
    assert dict(facts["facts"])["status"] == "unknown: recorded before runs had a status"
    html = report.write_report([run_dir], tmp_path / "rep").read_text()
    assert "status <b>unknown</b>" in html and "is unknown" not in html


def test_frame_units_of_the_recorded_pair():
    df = aggregate.load_frame([ICOUNT_RUN, TCG_RUN])[0]
    assert set(df.loc[df["accelerator"] == "icount", "figure_unit"]) == {"insn"}
    assert set(df.loc[df["accelerator"] == "tcg", "figure_unit"]) == {"ns"}
    assert not df.loc[df["accelerator"] == "icount", "emulated"].any()


def test_perf_program_cost_is_one_table_per_unit():
    """The perf_event cost per sample: the host's rows in ns, the same rows marked as counted
    instructions (figure_unit insn, another target) in a table of their own. (The recorded host rows
    are gated on read for their wide intervals; they are marked ok here: this is about units.)"""
    df = aggregate.load_frame([HOST_RUN])[0]
    perf = df[(df["hook"] == "perf_event") & (df["method"] == "throughput_abba")].assign(status="ok")
    counted = perf.assign(figure_unit="insn", group="6.12 (icount, 2 vCPU, max)")
    ns, insn = report.perf_program_cost(pd.concat([perf, counted]))
    assert ns["head"][-1] == "ns per sample" and insn["head"][-1] == "guest instructions per sample"
    assert all(r["cells"][4].split(" ")[1] == "ns/sample" for r in ns["rows"])
    assert all(r["cells"][4].split(" ")[1] == "insn/sample" and r["insn"] for r in insn["rows"])
    assert {r["cells"][0] for r in insn["rows"]} == {"6.12 (icount, 2 vCPU, max)"} and insn["note"] == units.INSN_NOTE
    assert ns["rows"][0]["cells"][2] == "999"


def test_report_sets_the_instruction_order_beside_the_published_one(tmp_path):
    """lab/analysis/ranks.py in the report: orders and ratios across units (never one figure), in both formats."""
    ctx = report.build([ICOUNT_RUN], tmp_path)
    (row,) = ctx["ranks"]["rows"]
    assert row["cells"][1] == "published (kernel bench, x86 hardware, ns)" and row["cells"][3] == "+1.00"
    assert row["cells"][2] == "raw_tp < fentry < tracepoint < kprobe < kretprobe"
    md = (report.write_report([ICOUNT_RUN], tmp_path / "rep").parent / "report.md").read_text()
    assert "### Order of the attach types: guest instructions against ns" in md and "kretprobe 6.07 vs 18.24" in md
    assert report.build([HOST_RUN], tmp_path / "host")["ranks"] is None  # no instruction-counted target


def test_plots_and_talk_cells_take_each_run_once(tmp_path):
    """Rows of several runs are summarised per run first (the run is the unit): the interval is over
    run medians, never over trials pooled across runs with different ops per trial."""
    from lab.report import cells

    rows = pd.DataFrame([
        {"status": "ok", "run": "a", "samples": [10.0, 10.2, 9.8, 10.1, 9.9, 10.0]},
        {"status": "ok", "run": "b", "samples": [20.0, 20.2, 19.8]},
        {"status": "ok", "run": "c", "samples": [30.0, 29.0, 31.0]},
    ])
    iv, status = cells.interval(rows)
    assert status == "ok" and iv.n == 3 and iv.median == pytest.approx(20.0)  # pooled trials: 15.05 of 12
    assert "medians of 3 runs" in iv.note
    one, _ = cells.interval(rows.iloc[:1])
    assert one.n == 6 and one.note == ""  # one run: its trials
    two, _ = cells.interval(rows.iloc[:2])
    assert two.low is None and two.text(1) == "15.0 (2 runs: no interval (3 or more needed) (medians of 2 runs))"
