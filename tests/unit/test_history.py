"""results.history on series made from recorded runs (tests/support/history_store.py): a planted 1%
step in instruction rows is found where it was planted and nowhere else; host ns rows without a step
give no change point; a series never spans two identities; the JSON, CSV and page; the CLI for real."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab.analysis import history
from tests.support import history_store

ROOT = Path(__file__).resolve().parents[2]
ICOUNT_RUN = ROOT / "tests/fixtures/icount_matrix/20261207T090430Z-6.12.118_deb12-amd64-fc06"
HOST_RUN = ROOT / "tests/fixtures/runs/20261127T053143Z-6.18.44-fc-v782-ee1e"
PLANTED = ("hooks/raw_tp/empty/kernel_batch", "hooks/raw_tp/body/kernel_batch")


def planted(row: dict) -> bool:
    return row.get("hook") == "raw_tp" and row.get("method") == "kernel_batch"


@pytest.fixture(scope="module")
def icount_store(tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("icount") / "store"
    history_store.plant(ICOUNT_RUN, store, n=20, step_at=10, step_pct=1.0, planted=planted, seed=0)
    return store


def test_planted_one_percent_step_found_and_nothing_else(icount_store):
    series, _ = history.build(history.find_runs(icount_store))
    assert len(series) > 40 and all(len(s.points) == 20 for s in series)
    found = {s.row_key: s.changes for s in series if s.changes}
    assert set(found) == set(PLANTED), found
    for key in PLANTED:
        (c,) = found[key]
        assert c.index == 10 and c.direction == "regression"
        assert c.before.endswith("-0009") and c.after.endswith("-000a")
        assert 0.8 < c.change_pct < 1.2
    # the rows it was not planted in include exact rows (other hooks' kernel_batch, the map suite's
    # in-kernel rows) and noisy open-path rows in instructions: none has a change point
    others = [s for s in series if s.row_key not in PLANTED]
    assert any(s.row_key.endswith("/kernel_batch") for s in others) and any(s.suite == "maps" for s in others)
    assert any(s.row_key.endswith("/wall_abba") for s in others)


def test_host_ns_rows_without_a_step_give_none(tmp_path):
    store = tmp_path / "host"
    history_store.plant(HOST_RUN, store, n=20, seed=0)
    series, _ = history.build(history.find_runs(store))
    assert {s.unit for s in series} == {"ns"} and len(series) > 100
    assert [(s.row_key, s.changes) for s in series if s.changes] == []


def test_never_across_identities(tmp_path):
    """Ten runs of 6.12 then ten of 6.1 (another kernel, another figure): two series per row, no step."""
    store = tmp_path / "mixed"
    history_store.plant(ICOUNT_RUN, store / "a", n=10, seed=1)
    other = ROOT / "tests/fixtures/icount_matrix/20261207T090302Z-6.1.0-57-amd64-4737"
    history_store.plant(other, store / "b", n=10, seed=2)
    series, _ = history.build(history.find_runs(store))
    kernels = {s.identity.kernel for s in series}
    assert kernels == {"6.12.118+deb12-amd64", "6.1.0-57-amd64"}
    names = {k: {d.name for d in (store / k).iterdir()} for k in ("a", "b")}
    for s in series:  # every point of a series comes from its own kernel's runs (a gated row may drop one)
        side = "a" if s.identity.kernel.startswith("6.12") else "b"
        assert {p.run for p in s.points} <= names[side] and 1 <= len(s.points) <= 10
    assert sum(len(s.points) == 10 for s in series) > 40
    assert not any(s.changes for s in series)
    # a run with other suite parameters is an identity of its own too
    d = sorted((store / "a").iterdir())[-1]
    m = json.loads((d / "manifest.json").read_text())
    m["suites"]["hooks"]["ops"] = 2000
    (d / "manifest.json").write_text(json.dumps(m))
    series, _ = history.build(history.find_runs(store))
    lone = [s for s in series if s.suite == "hooks" and len(s.points) == 1]
    assert lone and all(s.identity.kernel == "6.12.118+deb12-amd64" for s in lone)


def test_nested_store_counts_a_run_once(tmp_path, icount_store):
    """Nightly artifacts laid as STORE/<night>/<artifact>/<run>: found, and a run in two nights once."""
    runs = history.find_runs(icount_store)
    for i, d in enumerate(runs[:3]):
        shutil.copytree(d, tmp_path / f"night{i}" / "results-6.12" / d.name)
    shutil.copytree(runs[0], tmp_path / "night9" / "results-6.12" / runs[0].name)
    assert [d.name for d in history.find_runs(tmp_path)] == [d.name for d in runs[:3]]


def test_json_csv_page_and_report_through_the_cli(tmp_path, icount_store):
    cmd = [sys.executable, "-m", "lab.cli", "results.history", "--store", str(icount_store)]
    proc = subprocess.run([*cmd, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {d["row_key"] for d in doc} == set(PLANTED)
    d = doc[0]
    assert d["before"].endswith("-0009") and d["after"].endswith("-000a") and d["unit"] == "insn"
    assert d["identity"]["accelerator"] == "icount" and d["row"]["hook"] == "raw_tp"
    assert abs(d["change"] / d["old"] * 100 - d["change_pct"]) < 1e-9
    page, csv = tmp_path / "page" / "history.html", tmp_path / "cp.csv"
    proc = subprocess.run([*cmd, "--csv", str(csv), "--html", str(page), "--report", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "2 change points" in proc.stdout
    assert "ebpf-lab noticed a +1.0" in proc.stdout and "regression of hooks/raw_tp/" in proc.stdout
    assert "reproduce:" in proc.stdout and "--accel icount" in proc.stdout
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("row_key,") and len(lines) == 3
    html = page.read_text()
    # the moved series in detail, then one figure per identity and suite (hooks, maps): offline, no link out
    assert html.count("data:image/png;base64,") == 3 and "http" not in html
    assert "The series that moved (2 of 2 shown)" in html and "hooks raw_tp: 4 series" not in html
    assert html.index("raw_tp/empty/kernel_batch") < html.index("<details")  # change points first
    proc = subprocess.run([*cmd[:-2], "--store", str(tmp_path / "none")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "no results store" in proc.stderr
