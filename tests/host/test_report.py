"""The report: renders from fixture runs (HTML + Markdown + plots), survives a corrupt row file, is
screenshotted in headless Chromium, and runs end to end after a real hook run on this kernel."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import parse, screenshot

from lab.report import page as report
from lab.run import suites as bench
from tests.conftest import PLAYBOOKS

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "runs"
HOST_RUN = FIXTURES / "20261127T053143Z-6.18.44-fc-v782-ee1e"
TCG_RUN = FIXTURES / "20261127T055106Z-6.12.117_deb12-amd64-f721"


def test_report_from_fixtures_has_plots_tables_claims_json_and_screenshot(tmp_path):
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
    # claims.json beside the report: what the claims section shows
    verdicts = json.loads((html.parent / "claims.json").read_text())
    assert {v["claim"] for v in verdicts} == set(range(1, 10)) and len(verdicts) == 18
    by = {(v["claim"], v["group"].split(" (")[1].split(",")[0]): v for v in verdicts}
    for cid in (1, 2, 4, 9):
        assert by[(cid, "tcg")]["verdict"] == "not measurable here"
    assert by[(7, "tcg")]["verdict"] == "holds" and by[(7, "host")]["verdict"] == "holds"
    for v in verdicts:
        assert v["verdict"] in ("holds", "does not hold", "inconclusive", "not measurable here")
        assert v["verdict"] in text
        for p in v["parts"]:
            assert set(p) >= {"name", "verdict", "test", "effect", "p", "q", "n_a", "n_b", "rows_a", "rows_b"}
        if v["verdict"] == "holds":  # context parts are shown beside a claim but do not decide it
            deciding = [p for p in v["parts"] if p["role"] == "decides"]
            if all(p["verdict"] == "not measurable here" for p in deciding):  # fallback parts decided
                deciding = [p for p in v["parts"] if p["role"] == "fallback"]
            assert deciding and all(p["verdict"] == "holds" for p in deciding)
    assert "maps.jsonl:" in text and "918,544" in text
    # the talk's two summary tables with one measured column per target
    ctx = report.build([TCG_RUN, HOST_RUN], tmp_path / "ctx")
    assert ctx["talk_maps"][0]["head"][-1].startswith("measured: 6.18.44-fc-v782 (host, 2 vCPU")
    assert ctx["talk_maps"][0]["head"][-2].endswith(" †")
    assert [r[0] for r in ctx["talk_hooks"][0]["rows"]] == ["Tracepoint", "Fentry", "Perf_event", "XDP", "Kprobe"]
    md = (html.parent / "report.md").read_text()
    assert "## The talk's claims" in md and "![hooks](hooks_open.png)" in md
    # what each kernel lacks: the host kernel here refuses kprobes and fentry, in its own words
    lack = {(r["cells"][0].split(" ")[0], r["cells"][2]): r["cells"][4] for r in ctx["lacking"]["rows"]}
    host = ctx["talk_maps"][0]["head"][-1].removeprefix("measured: ").split(" ")[0]
    assert (host, "kprobe") in lack and lack[(host, "kprobe")]
    assert "## What each kernel lacks" in md
    # what a reader sees: a screenshot in headless Chromium
    shot = tmp_path / "report.png"
    screenshot(html, shot, tmp_path)
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_report_escapes_row_text_and_warns_on_incomplete_runs(tmp_path):
    run_dir = tmp_path / "store" / HOST_RUN.name
    shutil.copytree(HOST_RUN, run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest.update(status="interrupted", status_reason="SIGINT <during maps>")
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    lines = (run_dir / "hooks.jsonl").read_text().splitlines()
    bad = json.loads(next(ln for ln in lines if '"unsupported"' in ln))
    bad["reason"] = "<script>alert(1)</script>"
    (run_dir / "hooks.jsonl").write_text("\n".join(lines + [json.dumps(bad)]) + "\n")
    html = report.write_report([run_dir], tmp_path / "rep").read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "is interrupted</b>: SIGINT &lt;during maps&gt;" in html
    assert "Run " + HOST_RUN.name + " is interrupted" in (tmp_path / "rep" / "report.md").read_text()


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
    assert (html.parent / "claims.json").exists()
    assert f"maps.jsonl:{n}" in (html.parent / "report.md").read_text()


def test_report_without_tools_says_not_measured(tmp_path):
    run_dir = tmp_path / "store" / TCG_RUN.name
    shutil.copytree(TCG_RUN, run_dir)
    (run_dir / "tools.jsonl").unlink()
    html = report.write_report([run_dir], tmp_path)
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
    store = bench.run(["hooks"], kernel="host", playbook=str(PLAYBOOKS / "report_playbook.yaml"),
                      report=True)
    html = store.path / "report.html"
    assert html.exists()
    assert (store.path / "claims.json").exists()
    ctx = report.build([store.path], tmp_path / "ctx")
    assert ctx["problems"] == []
    (group,) = ctx["groups"]
    assert group["accelerator"] == "host"
    claim1 = ctx["claims"][0]["verdicts"][0]
    # kprobe and fentry do not work on this host kernel: the claim cannot be decided here
    assert claim1.verdict == "not measurable here"
    statuses = {r["cells"][2]: r["status"] for r in ctx["tables"]["hooks"][0]["rows"]}
    assert statuses["tracepoint"] == "ok" and statuses["kprobe"] == "unsupported"
    for src in parse(html).imgs:
        assert (store.path / src).exists()


def test_talk_memlock_text_says_one_solution_of_several():
    from lab.agent.maps import memlock
    from lab.analysis import talkmaps

    talk = talkmaps.load_talk()
    fig = talk["memlock_example"]["memlock"]
    n = len(memlock.implied_setup(fig[0], fig[1]))
    line = talkmaps.talk_comparison([], talk)[-1]
    assert n == 17
    assert "one solution consistent with the talk's figures" in line and "possible CPUs 128" in line
    assert f"{n - 1} other integer solutions fit as well" in line and "fit only" not in line


def test_report_answers_first_and_run_facts_are_tables_last(tmp_path):
    """The claims x targets grid leads (HTML and Markdown); run facts come last, as tables: no
    Python dict or list reprs anywhere in the page."""
    html = report.write_report([TCG_RUN, HOST_RUN], tmp_path).read_text()
    md = (tmp_path / "report.md").read_text()
    for text, claims, targets, runs in ((html, 'id="claims"', 'id="targets"', 'id="runs"'),
                                        (md, "## The talk's claims", "## Targets", "## Runs: the facts of each")):
        assert text.index(claims) < text.index(targets) < text.index(runs)
        assert text.index(runs) > text.rindex("talk-tables" if text is html else "### Hook types")
        assert "{'" not in text and "{&#39;" not in text  # a dict repr, raw or escaped
    grid = md[md.index("## The talk's claims"):md.index("### Each claim, part by part")]
    assert grid.count("\n| ") == 10  # header + nine claims, one verdict per target
    assert "| suite | parameter | value |" in md and "| suite | rows by status |" in md
    assert "<th>parameter</th>" in html and "<th>rows by status</th>" in html


def test_report_has_no_sideways_scroll_at_1280_px(tmp_path):
    """Headless Chromium lays the page out 1280 px wide: the document is no wider than the window
    (wide tables scroll inside their own box), with the instruction-counted run in it too."""
    import subprocess

    from conftest import CHROMIUM

    icount = ROOT / "tests" / "fixtures" / "icount" / "20261207T081111Z-6.12.118_deb12-amd64-0962"
    html = report.write_report([TCG_RUN, HOST_RUN, icount], tmp_path / "rep")
    probe = ('<script>addEventListener("load", () => { const d = document.createElement("div"); d.id = "measured"; '
             'd.textContent = document.documentElement.scrollWidth + "/" + innerWidth; '
             'document.body.appendChild(d); });</script>')
    page = html.with_name("measure.html")
    page.write_text(html.read_text().replace("</body>", probe + "</body>"))
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900",
                          "--virtual-time-budget=5000", "--dump-dom", f"file://{page}"],
                         capture_output=True, text=True, timeout=90)
    measured = out.stdout.split('id="measured">', 1)[1].split("<", 1)[0]
    width, window = (int(x) for x in measured.split("/"))
    assert window == 1280 and width <= window, measured
