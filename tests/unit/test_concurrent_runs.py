"""Two runs at once on one checkout (issue 26, item 4), on a fake target (tests/support/fakebench.py:
the real lab.run.suites.run, rows replayed from a recorded run): the second bench on the same lab
waits for the first, two benches on two labs never mix rows, and a report while a run appends
reads only whole rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lab.core.config import ROOT
from lab.results import store as results
from tests.support.badinput import cli, isolate

FAKE = Path(__file__).resolve().parents[1] / "support" / "fakebench.py"


def _start(tmp_path: Path, kernel: str, rows: int, delay: float, tag: str) -> subprocess.Popen:
    env = dict(os.environ, LAB_RESULTS=str(tmp_path / "store"), LAB_CACHE=str(tmp_path / "cache"),
               PYTHONUNBUFFERED="1")
    out = (tmp_path / f"{tag}.out").open("w")
    return subprocess.Popen([sys.executable, str(FAKE), kernel, str(rows), str(delay)], cwd=ROOT, env=env,
                            stdout=out, stderr=subprocess.STDOUT, text=True)


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in (path.read_text() if path.exists() else ""):
        assert proc.poll() is None, path.read_text()
        assert time.monotonic() < deadline, f"no {text!r} in {path}"
        time.sleep(0.05)


def _run_of(out: Path) -> Path:
    ids = [ln.split()[1] for ln in out.read_text().splitlines() if ln.startswith("RUN ")]
    assert len(ids) == 1, out.read_text()
    return out.parent / "store" / ids[0]


def _own_rows_only(run: Path, n: int) -> None:
    rows = [json.loads(ln) for ln in (run / "hooks.jsonl").read_text().splitlines()]
    assert len(rows) == n and {r["run_id"] for r in rows} == {run.name}


def test_a_second_bench_on_the_same_lab_waits_for_the_first(tmp_path):
    a = _start(tmp_path, "host", 15, 0.1, "a")
    _wait_for(tmp_path / "a.out", "suite hooks ...", a)  # a holds the lab
    b = _start(tmp_path, "host", 3, 0.0, "b")
    _wait_for(tmp_path / "b.out", "is in use by another run of this checkout", b)
    assert a.wait(120) == 0 and b.wait(120) == 0, (tmp_path / "a.out").read_text() + (tmp_path / "b.out").read_text()
    out_b = (tmp_path / "b.out").read_text()
    assert out_b.index("waiting for it to end") < out_b.index("the other run ended") < out_b.index("suite hooks ...")
    ra, rb = _run_of(tmp_path / "a.out"), _run_of(tmp_path / "b.out")
    assert (rb / "manifest.json").stat().st_mtime >= (ra / "hooks.jsonl").stat().st_mtime  # b after a's last row
    _own_rows_only(ra, 15)
    _own_rows_only(rb, 3)


def test_two_benches_on_two_labs_run_at_once_and_never_mix_rows(tmp_path):
    a = _start(tmp_path, "host", 12, 0.05, "a")
    b = _start(tmp_path, "6.12", 12, 0.05, "b")
    assert a.wait(120) == 0 and b.wait(120) == 0, (tmp_path / "a.out").read_text() + (tmp_path / "b.out").read_text()
    assert "in use" not in (tmp_path / "a.out").read_text() + (tmp_path / "b.out").read_text()
    ra, rb = _run_of(tmp_path / "a.out"), _run_of(tmp_path / "b.out")
    assert ra != rb
    _own_rows_only(ra, 12)
    _own_rows_only(rb, 12)


def test_a_report_while_a_run_appends_reads_only_whole_rows(tmp_path, monkeypatch):
    store, _ = isolate(monkeypatch, tmp_path)
    a = _start(tmp_path, "host", 60, 0.02, "a")
    _wait_for(tmp_path / "a.out", "suite hooks ...", a)
    seen, reads = 0, 0
    while a.poll() is None:
        for d in results.list_runs(store):
            run = results.load_run(d)
            assert not run.problems, [str(p) for p in run.problems]
            n = len(run.rows)
            assert n >= seen
            seen, reads = n, reads + 1
        if reads == 5:  # and one whole report meanwhile: no problem listed
            code, out, err = cli("results.report")
            assert code == 0 and "problem:" not in out, out + err
    assert a.wait(60) == 0
    assert reads >= 5 and len(results.load_run(_run_of(tmp_path / "a.out")).rows) == 60
