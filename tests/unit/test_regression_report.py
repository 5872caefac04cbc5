"""The kernel-style regression report (lab/report/regression.py) on recorded runs: results.compare
--report between two recorded icount kernels, results.check --fail-on PCT on a recorded run and its
planted successor, and the nightly summary's comparison, all through the command line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from lab.run import nightly
from tests.support import history_store

ROOT = Path(__file__).resolve().parents[2]
MATRIX = ROOT / "tests/fixtures/icount_matrix"
K61 = MATRIX / "20261207T090302Z-6.1.0-57-amd64-4737"
K612 = MATRIX / "20261207T090430Z-6.12.118_deb12-amd64-fc06"


def lab(*args: str, store: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, LAB_RESULTS=str(store)))


def test_compare_report_between_recorded_kernels(tmp_path):
    proc = lab("results.compare", str(K61), str(K612), "--report", store=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    head = text.splitlines()[0]
    assert head.startswith("ebpf-lab noticed a ") and ("% regression of " in head or "% improvement of " in head)
    assert "  differs:     cpu_flags_md5: " in text
    assert "on kernel 6.1.0-57-amd64 -> 6.12.118+deb12-amd64 under icount" in head
    assert "(insn/op, guest instructions)" in head or ("(memlock B)" in head and "instructions" not in head)
    for part in ("context:", "  QEMU:        QEMU emulator version 7.2.22", "  CPU:         host AMD EPYC",
                 "  playbook:    smoke (playbooks/smoke.yaml)", "  reproduce:",
                 "    A: ./labctl bench.all --kernel 6.1 --playbook playbooks/smoke.yaml --accel icount",
                 "    B: ./labctl bench.all --kernel 6.12 --playbook playbooks/smoke.yaml --accel icount",
                 "rows that moved (", "rows not compared ("):
        assert part in text, part
    assert re.search(r"old \(A\)\s+spread A\s+change\s+new \(B\)\s+spread B\s+unit\s+row", text)
    # a refusal stays a refusal: ns against instructions
    host = ROOT / "tests/fixtures/runs/20261127T053143Z-6.18.44-fc-v782-ee1e"
    proc = lab("results.compare", str(host), str(K612), "--report", store=tmp_path)
    assert proc.returncode == 2 and "never compared" in proc.stderr


def test_check_fail_on_uses_the_report(tmp_path):
    store = tmp_path / "results"
    history_store.plant(K612, store, n=2, step_at=1, step_pct=1.0, seed=0,
                        planted=lambda r: r.get("hook") == "raw_tp" and r.get("method") == "kernel_batch")
    newest = sorted(store.iterdir())[-1]
    proc = lab("results.check", "--run", str(newest), "--fail-on", "0.8", store=store)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "regressed by 0.8% or more" in proc.stdout
    assert "ebpf-lab noticed a +1.0" in proc.stdout and "raw_tp" in proc.stdout.splitlines()[2]
    assert "regressed by 0.8% or more (report above)" in proc.stderr
    proc = lab("results.check", "--run", str(newest), "--fail-on", "5", store=store)
    assert proc.returncode == 0 and "no regression of 5% or more" in proc.stdout
    proc = lab("results.check", "--fail-on", "five", store=store)
    assert proc.returncode == 2 and "takes a percentage" in proc.stderr
    # the first run has no baseline: said, not failed
    proc = lab("results.check", "--run", str(sorted(store.iterdir())[0]), "--fail-on", "1", store=store)
    assert proc.returncode == 0 and "no earlier run" in proc.stdout


def test_nightly_comparison_leads_with_the_report(tmp_path):
    before, now = tmp_path / "before", tmp_path / "now"
    history_store.plant(K612, before, n=1, seed=0)
    history_store.plant(K612, tmp_path / "pair", n=2, step_at=1, step_pct=1.0, seed=0,
                        planted=lambda r: r.get("hook") == "fentry" and r.get("method") == "kernel_batch")
    shutil.copytree(sorted((tmp_path / "pair").iterdir())[-1], now / "run")
    text = nightly.compare_previous([now / "run"], sorted(before.iterdir()))
    assert text.startswith("6.12: regression report\nebpf-lab noticed a +1.0")
    assert "fentry" in text.splitlines()[1] and "\n6.12:\nA = " in text
