"""What the nightly workflow asks the lab: kernels.matrix, kernels.cachekey, results.check and
results.summary (lab/run/nightly.py), each also run for real through ./labctl."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.core.config import LabError
from lab.kernels import catalog as kernels
from lab.run import nightly

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "runs"
HOST_RUN = FIXTURES / "20261127T053143Z-6.18.44-fc-v782-ee1e"
TCG_RUN = next(d for d in sorted(FIXTURES.iterdir()) if '"accelerator": "tcg"' in (d / "manifest.json").read_text())


def labctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "labctl"), *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, **(env or {})))


def test_matrix_lists_every_catalog_kernel():
    _, entries = kernels.catalog()
    assert nightly.matrix() == {"kernel": list(entries)}
    assert {"5.10", "6.1", "6.12", "latest", "next", "6.2", "host"} <= set(entries)


def test_matrix_of_a_playbook_and_of_one_without_matrix():
    m = nightly.matrix("nightly")
    assert m["kernel"][-1] == "host" and "6.12" in m["kernel"]
    with pytest.raises(LabError, match="has no matrix"):
        nightly.matrix("default")


def test_kernels_matrix_task_prints_json():
    proc = labctl("kernels.matrix")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == nightly.matrix()
    proc = labctl("kernels.matrix", "--playbook", "nightly")
    assert json.loads(proc.stdout) == nightly.matrix("nightly")
    proc = labctl("kernels.matrix", "--playbook", "default")
    assert proc.returncode == 2 and "has no matrix" in proc.stderr


def test_cachekey_without_the_network():
    assert nightly.cachekey("host") == "host"
    key = nightly.cachekey("6.2")
    assert key.startswith("6.2-v6.2-debian-12-") and len(key.rsplit("-", 1)[1]) == 12
    with pytest.raises(LabError, match="catalog alias"):
        nightly.cachekey("/some/path")


def test_check_accelerator_on_recorded_runs():
    assert nightly.check_accelerator(TCG_RUN, "tcg") == "tcg"
    with pytest.raises(LabError, match="ran under tcg, not kvm"):
        nightly.check_accelerator(TCG_RUN, "kvm")
    with pytest.raises(LabError, match="not a run directory"):
        nightly.check_accelerator(FIXTURES, "kvm")


def test_summary_markdown(tmp_path):
    (tmp_path / "claims.json").write_text(json.dumps([
        {"claim": 1, "title": "kprobe dearer", "group": "6.12 tcg", "verdict": "not measurable here"},
        {"claim": 1, "title": "kprobe dearer", "group": "host", "verdict": "holds"},
        {"claim": 2, "title": "maps", "group": "host", "verdict": "inconclusive"}]))
    md = nightly.summary([HOST_RUN, TCG_RUN], tmp_path, "regressions: none\n")
    assert "| 20261127T053143Z-6.18.44-fc-v782-ee1e | 6.18.44" in md
    assert "| 1. kprobe dearer | not measurable here | holds |" in md
    assert "| 2. maps | - | inconclusive |" in md
    assert "regressions: none" in md
    assert "No previous nightly" in nightly.summary([HOST_RUN], None, "")


def test_check_report_compare_summary_for_real(tmp_path):
    """The final job's commands, through ./labctl, on two recorded runs."""
    store = tmp_path / "results"
    store.mkdir()
    for d in (HOST_RUN, TCG_RUN):
        shutil.copytree(d, store / d.name)
    env = {"LAB_RESULTS": str(store)}
    proc = labctl("results.check", "--accelerator", "kvm", env=env)
    assert proc.returncode == 1 and "ran under tcg, not kvm" in proc.stderr
    proc = labctl("results.check", "--run", str(store / TCG_RUN.name), "--accelerator", "tcg", env=env)
    assert proc.returncode == 0, proc.stderr
    report = tmp_path / "report"
    proc = labctl("results.report", "--all", "--out", str(report), env=env)
    assert proc.returncode == 0, proc.stderr
    proc = labctl("results.compare", str(store / HOST_RUN.name), str(store / HOST_RUN.name), env=env)
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "compare.txt").write_text(proc.stdout)
    proc = labctl("results.summary", "--report", str(report), "--compare", str(tmp_path / "compare.txt"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Nightly eBPF overhead lab") and "## Claims per kernel" in proc.stdout
    assert proc.stdout.count("| 20261127T") == 2
    previous = tmp_path / "previous"  # the previous night: the host run alone
    shutil.copytree(HOST_RUN, previous / HOST_RUN.name)
    proc = labctl("results.summary", "--report", str(report), "--previous", str(previous), env=env)
    assert proc.returncode == 0, proc.stderr
    assert ": no previous run" in proc.stdout
    assert "host:\n" in proc.stdout and HOST_RUN.name in proc.stdout.split("host:\n", 1)[1]


def test_check_accelerator_wants_kvm_clock_under_kvm(tmp_path):
    """A run recorded as kvm passes only if its guest ran on kvm-clock (KVM's paravirtual clock)."""
    run = tmp_path / TCG_RUN.name
    shutil.copytree(TCG_RUN, run)
    for f in run.glob("*.jsonl"):
        f.write_text(f.read_text().replace('"accelerator": "tcg"', '"accelerator": "kvm"'))
    manifest = json.loads((run / "manifest.json").read_text())
    for clock, ok in (("kvm-clock", True), ("tsc", False), (None, False)):
        manifest.update(accelerator="kvm", clocksource=clock)
        (run / "manifest.json").write_text(json.dumps(manifest))
        if ok:
            assert nightly.check_accelerator(run, "kvm") == "kvm"
        else:
            with pytest.raises(LabError, match=f"clocksource was {clock or 'not recorded'}, not kvm-clock"):
                nightly.check_accelerator(run, "kvm")


def _meta(tmp_path: Path) -> Path:
    """What .ci/previous gathers: four nights, newest first as gh lists them; one manual, one on a branch."""
    meta = tmp_path / "baseline"
    meta.mkdir()
    runs = [
        {"databaseId": 4, "createdAt": "2026-12-06T02:17:00Z", "event": "schedule", "headBranch": "main", "url": "u4"},
        {"databaseId": 3, "createdAt": "2026-12-05T12:00:00Z", "event": "workflow_dispatch", "headBranch": "main"},
        {"databaseId": 2, "createdAt": "2026-12-05T02:17:00Z", "event": "schedule", "headBranch": "feature"},
        {"databaseId": 1, "createdAt": "2026-12-01T02:17:00Z", "event": "schedule", "headBranch": "main", "url": "u1"},
    ]
    (meta / "runs.json").write_text(json.dumps(runs))
    legs = {4: {"6.12": "success", "6.1": "failure", "matrix": "success"},
            3: {"6.12": "success", "6.1": "success"}, 2: {"6.1": "success"}, 1: {"6.1": "success", "5.10": "cancelled"}}
    for rid, jobs in legs.items():
        lines = [json.dumps({"name": k if k == "matrix" else f"bench ({k})", "conclusion": v}) for k, v in jobs.items()]
        (meta / f"jobs-{rid}.json").write_text("\n".join(lines) + "\n")
    return meta


def test_baseline_per_kernel_scheduled_default_branch_only(tmp_path):
    from lab.run import baseline

    chosen = baseline.pick(_meta(tmp_path), branch="main")
    # 6.12 from last night; 6.1's leg failed last night: the newest scheduled run on main where it passed
    # (not the manual run 3, not the feature branch's run 2); 5.10 never passed
    assert {k: v["run_id"] for k, v in chosen.items()} == {"6.12": 4, "6.1": 1}
    import datetime

    now = datetime.datetime(2026, 12, 7, 3, 17, tzinfo=datetime.UTC)
    md = baseline.markdown(chosen, ["6.12", "6.1", "5.10"], now)
    assert "| 6.12 | [4](u4) | 2026-12-06T02:17:00Z | 1 d 1 h |" in md
    assert "| 6.1 | [1](u1) | 2026-12-01T02:17:00Z | 6 d 1 h |" in md
    assert "| 5.10 | none" in md
    with pytest.raises(LabError, match="gather it first"):
        baseline.pick(tmp_path / "nothing")


def test_baseline_task_and_summary_show_the_age(tmp_path):
    meta = _meta(tmp_path)
    proc = labctl("results.baseline", "--meta", str(meta), "--branch", "main", "--out", str(meta / "baseline.json"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["6.12 4 2026-12-06T02:17:00Z", "6.1 1 2026-12-01T02:17:00Z"]
    chosen = json.loads((meta / "baseline.json").read_text())
    md = nightly.summary([HOST_RUN], None, "", chosen)
    assert "| kernel | baseline run | started | age |" in md and "| host | none" in md
