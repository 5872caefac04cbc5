"""Latency workloads for real on this machine's kernel, quick parameters: sockperf, cyclictest and fio
(Debian's, installed by ./labctl from lab/data/debian-packages.txt), the open loop (hookbench openlat)
under the hook suite's raw_tp and tracepoint, and the tool suite's latency mode with runqlat. Sizes
are below what p99.9 needs where only the pipeline is checked; no timing thresholds."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.agent import schema
from lab.agent.latency import quantiles, workloads
from lab.core.config import Paths
from lab.guest.bpfbuild import build_bpf

pytestmark = pytest.mark.host
ROOT = Path(__file__).resolve().parents[2]


def _bpf():
    build_bpf(Paths())
    return Paths().build / "bpf"


def test_rr_sockperf_gives_every_messages_round_trip(tmp_path):
    w = workloads.Workload("rr", str(tmp_path), seconds=1, rate=2000)
    w.start()
    server = w.server
    try:
        lat = w.trial()
    finally:
        w.stop()
    assert server.poll() is not None and w.server is None  # the server is stopped, by its pid
    assert len(lat) > 500 and min(lat) > 0
    assert not list(tmp_path.iterdir())  # its log is removed


def test_timer_cyclictest_gives_every_wake_up():
    w = workloads.Workload("timer", "/tmp", seconds=1, rate=2000)
    lat = w.trial()
    assert len(lat) == 2000 and min(lat) >= 0


def test_disk_fio_gives_every_io(tmp_path):
    w = workloads.Workload("disk", str(tmp_path), seconds=1, rate=1000)
    w.start()
    lat = w.trial()
    assert len(lat) > 500 and min(lat) > 0
    assert [p.name for p in tmp_path.iterdir()] == ["lat.0.0"]  # fio's file; its logs are removed


def test_open_loop_under_a_hook_counts_one_event_per_call():
    bpf = _bpf()
    trials = workloads.open_latencies(str(bpf / "hookbench"), str(bpf / "hook_open.bpf.o"), "raw_tp_body", 2, 3000)
    assert [t["order"] for t in trials] == ["AB", "BA"]
    for t in trials:
        assert len(t["base"]) == len(t["hook"]) == 3000 and t["events"] == 3000 and t["base_events"] == 0
    alone = workloads.open_latencies(str(bpf / "hookbench"), str(bpf / "hook_open.bpf.o"), "none", 1, 1000)
    assert len(alone[0]["base"]) == 1000 and "hook" not in alone[0]


def _agent(suite, params):
    proc = subprocess.run([sys.executable, "-m", "lab.agent", "--suite", suite, "--bpf-dir", str(_bpf()),
                           "--params", json.dumps(params)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_hook_suite_latency_rows():
    rows = _agent("hooks", {"latency": True, "hooks": ["raw_tp", "tracepoint"], "variants": ["body"],
                            "latency_trials": 3, "latency_ops": quantiles.MIN_REQUESTS})
    assert [r["hook"] for r in rows] == ["raw_tp", "tracepoint"]
    for r in rows:
        assert schema.validate(r) == [] and r["status"] == "ok", r["reason"]
        assert r["method"] == "latency_abba" and r["trials"] == 3 and r["requests_per_trial"] == 10000
        assert r["events"] == r["triggers"] == 30000 and len(r["latency_p99_change_samples"]) == 3
        assert r["latency_p50"] <= r["latency_p99"] <= r["latency_p999"]


def test_tool_suite_latency_rows_with_runqlat():
    rows = _agent("tools", {"latency": True, "tools": ["runqlat"], "latency_workloads": ["open"], "latency_trials": 3,
                            "latency_ops": quantiles.MIN_REQUESTS})
    assert len(rows) == 1
    r = rows[0]
    assert schema.validate(r) == [] and r["status"] == "ok", r["reason"]
    assert r["workload"] == "open" and r["events"] > 0 and r["trials"] == 3  # runqlat's programs ran
    assert r["baseline_latency_p99"] > 0 and r["latency_p99_change_ci_low"] <= r["latency_p99_change_pct"]
