"""The kernel's own trigger bench (lab/kernels/trigbench.py): reading its output, and building + running it for real.

The fixtures in tests/fixtures/kernel_bench/ are real output of the built bench on this host
(linux-source-6.12 6.12.118-1, kernel 6.18.44-fc-v782, a busy moment: load ~7; meta.json says how).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from lab.core.config import LabError
from lab.kernels import trigbench as kernelbench

FIX = Path(__file__).parents[1] / "fixtures" / "kernel_bench"


def fixture(name: str) -> kernelbench.BenchResult:
    res = kernelbench.parse_output(name, (FIX / f"{name}.txt").read_text(), warmup=1)
    res.cpu_s = json.loads((FIX / "meta.json").read_text())["runs"][name]["cpu_s"]
    return res


def test_parse_recorded_output():
    tp = fixture("trig-tp")
    assert (tp.rate, tp.stddev) == (2.141, 1.584)
    assert tp.iters == [1.277, 3.949, 2.859, 0.387]  # Iter 0 is the warm-up
    # hits = each second's rate times its real interval (1 s + the printed offset)
    assert tp.hits == pytest.approx(1.197 * 1.028064394 + 1.277 * (1 - 0.028033981) + 3.949 * 1.018183729
                                    + 2.859 * (1 - 0.015994867) + 0.387 * 1.26182366)
    assert tp.ns_per_event == pytest.approx(1000 / 2.141)
    assert tp.cpu_ns_per_event == pytest.approx(1.2212 * 1e3 / tp.hits)


def test_added_over_count():
    count, rawtp, tp = fixture("trig-kernel-count"), fixture("trig-rawtp"), fixture("trig-tp")
    assert count.rate == 28.286 and rawtp.rate == 5.106
    assert kernelbench.added_ns(rawtp, count) == pytest.approx(1000 / 5.106 - 1000 / 28.286)
    assert kernelbench.added_ns(tp, count) == pytest.approx(1000 / 2.141 - 1000 / 28.286)
    assert kernelbench.added_cpu_ns(rawtp, count) == pytest.approx(rawtp.cpu_ns_per_event - count.cpu_ns_per_event)
    per = kernelbench.per_iter_added(rawtp, count)
    assert per == pytest.approx([1000 / r - 1000 / 28.286 for r in (5.256, 4.953, 4.988, 5.233)])
    no_cpu = kernelbench.parse_output("trig-rawtp", (FIX / "trig-rawtp.txt").read_text())
    assert no_cpu.cpu_ns_per_event is None and kernelbench.added_cpu_ns(no_cpu, count) is None


def test_parse_refuses_output_without_summary():
    with pytest.raises(LabError, match="no 'Summary: hits' line"):
        kernelbench.parse_output("trig-tp", "libbpf: failed to determine tracepoint ...\nfailed to attach program!\n")
    with pytest.raises(LabError, match="nothing was counted"):
        kernelbench.parse_output("trig-tp", "Summary: hits    0.000 ± 0.000M/s (  0.000M/prod), drops ...\n")


def test_stubs_define_only_what_is_not_built():
    bench_c = ("extern struct argp bench_ringbufs_argp;\nextern struct argp bench_trigger_batch_argp;\n"
               "extern const struct bench bench_trig_tp;\nextern const struct bench bench_rb_libbpf;\n")
    text = kernelbench.stubs_source(bench_c, {"bench_trigger_batch_argp", "bench_trig_tp"})
    assert 'const struct bench bench_rb_libbpf = { .name = "not-built:bench_rb_libbpf" };' in text
    assert "struct argp bench_ringbufs_argp = { .options = bench_ringbufs_argp_opts };" in text
    assert "bench_trig_tp" not in text and "bench_trigger_batch_argp" not in text


def test_command_mounts_tracefs_privately():
    cmd = kernelbench.command(Path("/x/bench"), "trig-tp", cpu=1, warmup=1, duration=2, batch_iters=50)
    assert cmd[:4] == ["unshare", "--mount", "--propagation", "private"]
    assert cmd[-11:] == ["/x/bench", "-w", "1", "-d", "2", "-a", "--prod-affinity", "1", "--trig-batch-iters", "50",
                         "trig-tp"]
    assert "mount -t tracefs" in cmd[6]


@pytest.mark.host
@pytest.mark.network
def test_real_bench_builds_and_runs():
    """Fetch (or reuse) linux-source, build (or reuse) the bench, run two of its benchmarks briefly."""
    try:
        build = kernelbench.ensure()
    except LabError as e:
        if "apt-get update" in str(e) or "reachable" in str(e):
            pytest.skip(f"Debian's archive is unreachable and no linux-source is cached: {e}")
        raise
    assert build.binary.exists() and build.package.startswith("linux-source-")
    tracefs_before = [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines() if "tracefs" in ln]
    listed = subprocess.run([str(build.binary), "--list"], capture_output=True, text=True).stdout
    assert {"trig-kernel-count", "trig-rawtp", "trig-tp"} <= set(listed.split())
    count, _ = kernelbench.run(build.binary, "trig-kernel-count", cpu=0, warmup=1, duration=1)
    tp, text = kernelbench.run(build.binary, "trig-tp", cpu=0, warmup=1, duration=1)
    assert "Summary: hits" in text and count.rate > 0 and tp.rate > 0 and tp.hits > 0
    assert tp.cpu_s and tp.cpu_s > 0.1  # the producer spins on its CPU for the whole run
    assert kernelbench.added_ns(tp, count) > 0
    # nothing left behind: the bench's programs go with its process (freed shortly after it exits)
    for _ in range(40):
        left = [n for n in kernelbench.foreign_hooks() if n.startswith("bench_trigger_")]
        if not left:
            break
        time.sleep(0.25)
    assert not left
    # tracefs was mounted in the bench's own mount namespace only
    assert [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines() if "tracefs" in ln] == tracefs_before
