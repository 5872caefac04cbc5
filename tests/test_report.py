"""The report: renders from fixture runs (HTML + Markdown + plots), survives a corrupt row file, is
screenshotted in headless Chromium, and runs end to end after a real hook run on this kernel."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import parse, screenshot

from lab import bench, report

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "runs"
TCG_RUN = FIXTURES / "20250101T000000Z-6.12.38+deb12-amd64-f1x7"
HOST_RUN = FIXTURES / "20250101T010000Z-6.18.0-host-a2c4"


def test_report_from_fixtures_has_plots_tables_claims_and_screenshot(tmp_path):
    html = report.write_report([TCG_RUN, HOST_RUN], tmp_path / "rep")
    page = parse(html)
    text = html.read_text()
    assert {"runs", "claims", "hooks", "maps", "memlock", "tools", "talk-tables"} <= page.ids
    assert len(page.imgs) >= 5
    for src in page.imgs:
        png = html.parent / src
        assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", src
    assert page.tables >= 10
    # the TCG run is visibly marked and never decides a timing verdict
    assert "TCG: emulated" in text and "pipeline checked, timing not representative" in text
    # each of the talk's 9 claims, with a verdict per kernel
    ctx = report.build([TCG_RUN, HOST_RUN], tmp_path / "ctx")
    assert [c["id"] for c in ctx["claims"]] == list(range(1, 10))
    verdicts = {c["id"]: {v.group: v for v in c["verdicts"]} for c in ctx["claims"]}
    tcg, host = "6.12.38+deb12-amd64 (tcg)", "6.18.0 (host)"
    for cid in (1, 2, 3, 4, 5, 6):
        assert verdicts[cid][tcg].verdict == "not measurable here"
        assert verdicts[cid][tcg].note.startswith("pipeline checked, timing not representative")
    assert verdicts[1][host].verdict == "not measurable here"  # kprobe and fentry unsupported here
    assert "Operation not permitted" in verdicts[1][host].note
    assert verdicts[3][host].verdict == "holds" and verdicts[4][host].verdict == "holds"
    assert verdicts[7][tcg].verdict == "holds" and verdicts[7][host].verdict == "holds"  # memory: any accel
    assert verdicts[9][tcg].verdict == "not measurable here"
    assert all(v.rows for v in verdicts[7].values())  # the rows behind the verdict, file:line
    assert "hooks.jsonl:" in text and "931,712" in text
    # the talk's two summary tables with one measured column per kernel
    assert ctx["talk_maps"]["head"][-2:] == [f"measured: {tcg} †", f"measured: {host}"]
    assert [r[0] for r in ctx["talk_hooks"]["rows"]] == ["Tracepoint", "Fentry", "Perf_event", "XDP", "Kprobe"]
    md = (html.parent / "report.md").read_text()
    assert "## The talk's claims" in md and "![hooks](hooks_open.png)" in md
    # what a reader sees: a screenshot in headless Chromium
    shot = tmp_path / "report.png"
    screenshot(html, shot, tmp_path)
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_report_with_corrupt_line_still_renders_and_names_it(tmp_path):
    run_dir = tmp_path / "store" / HOST_RUN.name
    shutil.copytree(HOST_RUN, run_dir)
    with (run_dir / "maps.jsonl").open("a") as f:
        f.write('{"schema": 1, "suite": "maps", "kernel": "6.18.0", "acc\n')
    n = len((run_dir / "maps.jsonl").read_text().splitlines())
    html = report.write_report([run_dir], tmp_path / "rep")
    text = html.read_text()
    assert f"maps.jsonl:{n}: not JSON" in text
    assert "1 problem(s) reading the store" in text
    assert len(parse(html).imgs) >= 4  # the rest still made it into the plots
    assert f"maps.jsonl:{n}" in (html.parent / "report.md").read_text()


def test_report_without_tools_says_not_measured(tmp_path):
    html = report.write_report([TCG_RUN], tmp_path)
    text = html.read_text()
    assert "Tool overhead: <b>not measured</b>" in text
    assert "tools.png" not in text


def test_report_of_a_run_without_rows(tmp_path):
    run_dir = tmp_path / "empty-run"
    run_dir.mkdir()
    (run_dir / "manifest.json").write_text(json.dumps({"run_id": "empty-run", "accelerator": "host"}))
    html = report.write_report([run_dir], tmp_path / "rep")
    text = html.read_text()
    assert "Hook suite: not measured" in text and "manifest lacks" in text


@pytest.mark.host
def test_bench_then_report_on_this_kernel(tmp_path, monkeypatch):
    """A real run of the hook suite on the host kernel, then the report for it (what bench.all does)."""
    monkeypatch.setenv("LAB_RESULTS", str(tmp_path / "results"))
    store = bench.run(["hooks"], kernel="host", playbook=str(ROOT / "tests" / "report_playbook.yaml"),
                      report=True)
    html = store.path / "report.html"
    assert html.exists()
    ctx = report.build([store.path], tmp_path / "ctx")
    assert ctx["problems"] == []
    (group,) = ctx["groups"]
    assert group["accelerator"] == "host"
    claim1 = ctx["claims"][0]["verdicts"][0]
    # kprobe and fentry do not work on this host kernel: the claim cannot be decided here
    assert claim1.verdict == "not measurable here"
    statuses = {r["cells"][1]: r["status"] for r in ctx["tables"]["hooks"]["rows"]}
    assert statuses["tracepoint"] == "ok" and statuses["kprobe"] == "unsupported"
    for src in parse(html).imgs:
        assert (store.path / src).exists()
