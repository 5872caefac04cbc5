"""Tool suite on this machine's own kernel: real libbpf-tools under a real stress-ng load.

On this host runqlat (sched tracepoints) loads and runs; vfsstat needs kprobes or fentry, which
this kernel refuses, so its row must be `unsupported` with libbpf's text. Nothing may be left
running and the kernel's BPF statistics switch must be as it was.
"""

import glob
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import run_rows

from lab.agent import schema

pytestmark = pytest.mark.host


def _under_a_live_agent(pid: str) -> bool:
    """Whether a process descends from a live agent (`-m lab.agent` or `-m agent`): another run's, on a
    machine other clones share. Ours has exited by the time the test looks, so what it left behind
    has no live agent above it."""
    while pid not in ("0", "1"):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            pid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        except OSError:
            return False
        if b"-m" in cmd and any(c in (b"lab.agent", b"agent") for c in cmd):
            return True
    return False


def running(name):
    """Processes named `name` left behind: those not under another run's live agent."""
    pids = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout.split()
    return [p for p in pids if not _under_a_live_agent(p)]


def stats_sysctl():
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        return f.read().strip()


@pytest.fixture(scope="module")
def quick_rows(tmp_path_factory):
    before = stats_sysctl()
    store, got = run_rows(["tools"], "host", "quick", tmp_path_factory.mktemp("results"))
    manifest = store.manifest()  # timings on a shared host carry the load they were taken at
    assert all(len(manifest[k]) == 3 and min(manifest[k]) >= 0 for k in ("host_load_start", "host_load_end"))
    return got["tools"], before


def test_a_tool_that_loads_is_measured_with_proof_it_ran(quick_rows):
    rows, _ = quick_rows
    for r in rows:
        assert schema.validate(r) == [], r
    (runqlat,) = [r for r in rows if r["tool"] == "runqlat"]
    assert runqlat["status"] == "ok", runqlat["reason"]
    assert runqlat["events"] > 0 and runqlat["programs"] >= 1
    assert runqlat["trials"] == 2 and len(runqlat["overhead_samples"]) == 2
    assert runqlat["overhead_ci_low"] is None and runqlat["overhead_ci_high"] is None  # 2 pairs: no interval
    assert len(runqlat["overhead_cpu_samples"]) == 2  # the same loss per second of the load's own CPU time
    assert runqlat["overhead_cpu_ci_low"] is None and runqlat["overhead_cpu_ci_high"] is None
    # and what the tool cost inside the load's processes, with execution taken out of it
    assert len(runqlat["cpu_incontext_samples"]) == len(runqlat["cpu_incontext_unexplained_samples"]) == 2
    rest = runqlat["cpu_incontext"] - runqlat["cpu_exec"]  # medians of 2 trials: means, so linear
    assert rest == pytest.approx(runqlat["cpu_incontext_unexplained"], abs=0.01)
    assert runqlat["baseline_ops"] > 0 and set(runqlat["per_stressor"]) == {"cpu", "switch"}  # what it watches
    assert runqlat["cpu_exec"] > 0 and runqlat["program_detail"] and runqlat["load_ms"] > 0
    assert len(runqlat["cpu_unexplained_samples"]) == 2 and "map_access" in runqlat["not_separable"]
    assert runqlat["load"].startswith("stress-ng --cpu 1 --switch 1")
    # each program says how it is attached (the host joins that with the hook suite's dispatch cost)
    switch = runqlat["program_detail"]["sched_switch"]
    assert switch["hook"] in ("tp_btf", "raw_tp") and switch["target"] == "sched_switch"
    assert len(switch["runs_per_s_samples"]) == 2 and min(switch["runs_per_s_samples"]) > 0


def test_a_tool_the_kernel_refuses_is_unsupported_with_its_reason(quick_rows):
    rows, _ = quick_rows
    (vfsstat,) = [r for r in rows if r["tool"] == "vfsstat"]
    if vfsstat["status"] == "ok":  # a kernel with kprobes or fentry for us: then it must have run
        assert vfsstat["events"] > 0
    else:
        assert vfsstat["status"] == "unsupported" and "libbpf" in vfsstat["reason"]


def test_the_tools_that_ran_run_once_more_all_at_once(quick_rows):
    rows, _ = quick_rows
    ran = [r["tool"] for r in rows if r["tool"] != "all" and r["status"] == "ok"]
    both = [r for r in rows if r["tool"] == "all"]
    if len(ran) < 2:
        assert both == []
        return
    (both,) = both
    assert both["method"] == "combined_abba" and both["tools_combined"] == ran, both["reason"]
    assert both["status"] == "ok" and {k.split(":")[0] for k in both["program_detail"]} == set(ran)


def test_leaves_nothing_running_and_stats_as_they_were(quick_rows):
    _, before = quick_rows
    assert running("stress-ng") == [] and running("runqlat") == [] and running("vfsstat") == []
    assert stats_sysctl() == before
    # lab-tools-<agent pid>-*: only a directory whose agent is gone is a leftover (another run may be live)
    left = [d for d in glob.glob(os.path.join(tempfile.gettempdir(), "lab-tools-*"))
            if not os.path.exists("/proc/" + os.path.basename(d).split("-")[2])]
    assert left == []
