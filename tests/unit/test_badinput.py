"""Issue 26's table: bad input and a damaged store refused in one line, nothing booted, nothing
written outside the store (the command line in this process, the boot boundary faked)."""

from __future__ import annotations

import json
import subprocess

import pytest

from lab.results import store as results
from lab.run import matrixview, sizes
from tests.support.badinput import Booted, cli, fake_boot, isolate, one_error_line, small_run, snapshot


@pytest.fixture
def lab(tmp_path, monkeypatch):
    store, cache = isolate(monkeypatch, tmp_path)
    fake_boot(monkeypatch)
    return store


def test_report_on_a_directory_that_is_not_a_run_writes_nothing(lab, tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    before = snapshot(tmp_path)
    for d in (etc, empty):
        code, _, err = cli("results.report", "--run", str(d))
        line = one_error_line(err)
        assert code == 2 and str(d) in line and "not a run directory" in line
    assert snapshot(tmp_path) == before


def test_report_on_a_run_with_nothing_readable_exits_1_and_lists_the_problems(lab):
    run = lab / "20260101T000000Z-x-0000"
    run.mkdir()
    (run / "manifest.json").write_bytes(b"\xff{not json")
    (run / "hooks.jsonl").write_bytes(b"\xfe\xff\n{\"half\": \n")
    before = snapshot(lab)
    code, out, err = cli("results.report", "--run", str(run))
    assert code == 1
    assert "unreadable manifest" in out and "not UTF-8" in out and "not JSON" in out
    assert "no readable row" in one_error_line(err)
    assert snapshot(lab) == before


def test_a_size_past_its_bound_is_refused_before_anything_boots(lab, tmp_path):
    pb = tmp_path / "huge.yaml"
    pb.write_text("suites:\n  hooks: {ops: 1000000000000000}\n")
    code, _, err = cli("bench.hooks", "--kernel", "6.12", "--playbook", str(pb))
    line = one_error_line(err)
    assert code == 2 and "ops 1000000000000000 is above its bound" in line
    assert not any(lab.iterdir())


def test_a_run_estimated_past_the_bound_needs_max_hours(lab, tmp_path, capsys):
    pb = tmp_path / "long.yaml"
    pb.write_text("suites:\n  hooks: {ops: 1000000, trials: 500}\n")
    code, _, err = cli("bench.hooks", "--kernel", "6.12", "--accel", "icount", "--playbook", str(pb))
    line = one_error_line(err)
    assert code == 2 and "estimated length" in line and "--max-hours" in line
    with pytest.raises(Booted):  # allowed: it gets as far as the build, its estimate printed first
        cli("bench.hooks", "--kernel", "6.12", "--accel", "icount", "--playbook", str(pb), "--max-hours", "100000")


def test_the_estimate_is_printed_before_the_boot_and_recorded(tmp_path, monkeypatch):
    """A run with a fake target: the estimate line comes before the target opens, the manifest
    records it, and each suite's line compares its time with it."""
    from tests.support import fakebench

    isolate(monkeypatch, tmp_path)
    store, out = fakebench.run_in_process(tmp_path, "host", rows=2)
    first = out.splitlines()
    assert first[0].startswith("estimated length") and "under host" in first[0]
    assert any(ln.startswith("suite hooks:") and "(estimated" in ln for ln in first)
    est = store.manifest()["estimate"]
    assert est["accelerator"] == "host" and est["seconds"] >= 0 and "hooks" in est["suites"]


@pytest.mark.parametrize("task,option,value,says", [
    ("bench.tools", "--halfwidth", "abc", "--halfwidth takes a positive number of points"),
    ("bench.hooks", "--halfwidth", "abc", "--halfwidth takes a per cent of the median"),
    ("bench.hooks", "--halfwidth", "150", "--halfwidth takes a per cent of the median"),
    ("bench.hooks", "--budget", "1.5", "--budget takes a positive whole number of seconds"),
    ("bench.run", "--jobs", "abc", "--jobs takes a whole number"),
    ("bench.hooks", "--max-hours", "-1", "--max-hours takes a positive number of hours"),
    ("bench.hooks", "--nonsense", "1", "No idea what '--nonsense' is"),
])
def test_an_option_of_the_wrong_kind_is_one_line_naming_it(lab, task, option, value, says):
    args = [task, "smoke"] if task == "bench.run" else [task, "--kernel", "host"]
    code, _, err = cli(*args, option, value)
    assert code == 2 and says in one_error_line(err)


def test_ssh_target_without_known_hosts_says_how_to_pin_the_key(lab, tmp_path):
    code, _, err = cli("bench.hooks", "--kernel", "ssh://user@box:2222")
    line = one_error_line(err)
    assert code == 2 and "ssh-keyscan -p 2222 box" in line and str(tmp_path / "known_hosts") in line
    (tmp_path / "known_hosts").write_text("")
    code, _, err = cli("bench.hooks", "--kernel", "ssh://user@box:2222")
    assert code == 2 and "holds no host key for [box]:2222" in one_error_line(err)
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp_path / "known_hosts").write_text("[box]:2222 " + " ".join(key.with_suffix(".pub").read_text().split()[:2]))
    with pytest.raises(Booted):  # pinned: the run goes on
        cli("bench.hooks", "--kernel", "ssh://user@box:2222")


def test_report_output_defaults_inside_the_store_and_never_overwrites_others_files(lab, tmp_path):
    outside = small_run(tmp_path / "elsewhere" / "20261127T055106Z-6.12.117_deb12-amd64-f721")
    before = snapshot(tmp_path / "elsewhere")
    code, out, err = cli("results.report", "--run", str(outside))
    assert code == 0, err
    assert snapshot(tmp_path / "elsewhere") == before  # the run outside the store is only read
    assert (lab / f"report-{outside.name}" / "report.html").is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my notes\n")
    code, _, err = cli("results.report", "--run", str(outside), "-o", str(mine))
    line = one_error_line(err)
    assert code == 2 and "report.md" in line and "not written by a report" in line
    assert sorted(p.name for p in mine.iterdir()) == ["report.md"] and (mine / "report.md").read_text() == "my notes\n"
    fresh = tmp_path / "fresh"
    for _ in range(2):  # its own files it replaces
        code, _, err = cli("results.report", "--run", str(outside), "-o", str(fresh))
        assert code == 0, err
    listed = json.loads((fresh / ".report-outputs.json").read_text())["files"]
    assert {"report.html", "report.md", "claims.json"} <= set(listed)
    (fresh / "claims.json").write_text("[]  # edited by hand\n")
    code, _, err = cli("results.report", "--run", str(outside), "-o", str(fresh))
    assert code == 2 and "claims.json" in one_error_line(err)


def test_a_report_never_writes_through_a_symlink(lab, tmp_path):
    run = small_run(lab / "20261127T055106Z-6.12.117_deb12-amd64-f721")
    secret = tmp_path / "secret"
    secret.write_text("keep\n")
    (run / "report.html").symlink_to(secret)
    code, _, err = cli("results.report", "--run", run.name)
    assert code == 2 and "report.html" in one_error_line(err)
    assert secret.read_text() == "keep\n"


def test_only_whole_rows_are_read_and_a_cut_row_is_a_problem_once_the_run_ended(tmp_path):
    run = small_run(tmp_path / "r", rows=2)
    with (run / "hooks.jsonl").open("ab") as f:
        f.write(b'{"suite": "hooks", "run_id": "r", "sta')
    man = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps(dict(man, status="running")))
    loaded = results.load_run(run)
    assert len([r for r in loaded.rows if r["suite"] == "hooks"]) == 2
    assert not [p for p in loaded.problems if "hooks.jsonl" in str(p)]
    (run / "manifest.json").write_text(json.dumps(dict(man, status="complete")))
    probs = [str(p) for p in results.load_run(run).problems]
    assert any("hooks.jsonl:3: incomplete last line" in p for p in probs), probs


def test_damage_the_store_reports_in_words(tmp_path):
    run = small_run(tmp_path / "run", rows=2)
    maps_row = (run / "maps.jsonl").read_text().splitlines()[0]
    with (run / "hooks.jsonl").open("a") as f:
        f.write(maps_row + "\n")
    man = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps(dict(man, manifest_version=7)))
    (tmp_path / "out.jsonl").write_text("x\n")
    (run / "tools.jsonl").unlink()
    (run / "tools.jsonl").symlink_to(tmp_path / "out.jsonl")
    probs = " | ".join(str(p) for p in results.load_run(run).problems)
    assert "a maps row in hooks.jsonl" in probs
    assert "manifest_version 7: this lab reads version 1" in probs
    assert "outside the run: not read" in probs


def test_the_live_view_compares_progress_with_the_estimate():
    class J:
        seconds, estimate = 90.0, 600.0

    assert matrixview.progress(J()) == "90 s of ~10 min (15%)"
    assert sizes.human(5400) == "90 min" and sizes.human(3 * 3600) == "3.0 h"


def test_a_matrix_estimates_every_job_before_it_fetches_anything(lab, tmp_path):
    pb = tmp_path / "m.yaml"
    pb.write_text("targets: [host]\nsuites:\n  hooks: {ops: 5000000, trials: 200}\n")
    code, _, err = cli("bench.run", str(pb))
    line = one_error_line(err)
    assert code == 2 and "host: " not in line and "estimated length" in line and "--max-hours" in line
    with pytest.raises(Booted):
        cli("bench.run", str(pb), "--max-hours", "100000")
