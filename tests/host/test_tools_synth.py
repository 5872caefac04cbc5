"""A tool of known cost is decomposed into the right parts (real BPF program, real load, host kernel).

synth_tool.py attaches a raw tracepoint program on sched_switch that counts to N per event and
burns a fixed share of a CPU in user space. The suite must find: the user-space part at that share,
the verifier's count at 2N+3 instructions, the program's time per run growing with N, and the
throughput-derived total of the same order as the measured parts.
"""

import os
import shutil
import sys

import pytest

from lab.agent import schema
from lab.agent.common import Context
from lab.agent.tools import mapaccess
from lab.agent.tools import suite as tools
from lab.agent.tools import verifier as toolverif
from lab.core.config import Paths
from lab.guest.bpfbuild import build_bpf

pytestmark = pytest.mark.host
SYNTH = os.path.join(os.path.dirname(__file__), os.pardir, "support", "synth_tool.py")
VARIANTS = {"synth_small": (2000, 0.2), "synth_big": (20000, 0.0)}


def measure(d, names, trials, combined):
    ctx = Context("tools", "synth", "host", str(d), dict(tools=names, trials=trials, seconds=2, proof_seconds=1,
                                                         tool_dir=str(d), combined=combined))
    return {r["tool"]: r for r in tools.ToolSuite(ctx).run()}


@pytest.fixture(scope="module")
def tooldir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tooldir")
    build_bpf()  # the verifier-statistics shim the proof run preloads, beside the tools (ctx.bpf_dir)
    for helper in (toolverif.SHIM, mapaccess.HELPER, mapaccess.OBJ):  # and the map-operation counter
        shutil.copy(Paths().build / "bpf" / helper, d)
    for name, (iters, share) in VARIANTS.items():
        path = d / name
        path.write_text(f"#!{sys.executable}\nimport os, runpy\n"
                        f"os.environ.update(LAB_SYNTH_ITERS={str(iters)!r}, LAB_SYNTH_SHARE={str(share)!r})\n"
                        f"runpy.run_path({SYNTH!r}, run_name='__main__')\n")
        path.chmod(0o755)
    return d


@pytest.fixture(scope="module")
def rows(tooldir):
    got = measure(tooldir, list(VARIANTS), 3, True)
    if set(got) != {*VARIANTS, "all"} or any(r["status"] != "ok" for r in got.values()):
        # once in a full CI run (after the VM tests) both synthetic rows came back not ok with no
        # reason on record, and never alone: say why, then measure once more
        print("synthetic tools, first attempt:", {k: (r["status"], r["reason"]) for k, r in got.items()},
              file=sys.stderr)
        got = measure(tooldir, list(VARIANTS), 3, True)
    return got


def test_rows_are_valid_and_measured(rows):
    assert set(rows) == {*VARIANTS, "all"}, {k: (r["status"], r["reason"]) for k, r in rows.items()}
    for r in rows.values():
        assert r["status"] == "ok", (r["tool"], r["reason"])
        assert schema.validate(r) == [], r
        assert len(r["cpu_exec_samples"]) == 3 and len(r["load_ms_samples"]) == 4 and r["maps"] == []
    for name in VARIANTS:
        prog = rows[name]["program_detail"]
        assert prog.keys() == {"lab_synth"}
        assert prog["lab_synth"]["hook"] == "raw_tp" and prog["lab_synth"]["target"] == "sched_switch"
        assert len(prog["lab_synth"]["runs_per_s_samples"]) == 3


def test_user_space_part_is_the_known_share(rows, tooldir):
    # 0.2 CPU = 200 ms/s (10 ms ticks over 2 s); the burner gets less when the 2 cores are shared
    # (127 ms/s with a busy host, 98 at load average 6): the bounds say it was counted, not starved
    small = rows["synth_small"]["cpu_user"]
    if not 60 <= small <= 250:  # a timing check never decides on one loaded measurement
        small = measure(tooldir, ["synth_small"], 3, False)["synth_small"]["cpu_user"]
    assert 60 <= small <= 250, small
    assert rows["synth_big"]["cpu_user"] <= 15  # it only sleeps


def test_verifier_count_and_program_time_follow_the_iterations(rows):
    for name, (iters, _) in VARIANTS.items():
        assert rows[name]["verified_insns"] == 2 * iters + 3
    small = rows["synth_small"]["program_detail"]["lab_synth"]["ns_per_run"]
    big = rows["synth_big"]["program_detail"]["lab_synth"]["ns_per_run"]
    assert 4 < big / small < 15, (small, big)
    assert rows["synth_big"]["cpu_exec"] > rows["synth_small"]["cpu_exec"]


def test_the_verifiers_own_time_is_read_from_its_statistics_log(rows):
    """verifstats.so gave the synthetic tool's own load BPF_LOG_STATS: processed insns = 2N+3 exactly,
    and ten times the iterations take the verifier clearly longer (25 ms vs 3 ms here)."""
    for name, (iters, _) in VARIANTS.items():
        r = rows[name]
        assert r["verifier_detail"]["lab_synth"]["processed_insns"] == 2 * iters + 3
        assert r["verifier_us"] > 0 and "BPF_LOG_STATS" in r["verifier_why"]
        assert "verifier_time" not in r["not_separable"]
    assert rows["synth_big"]["verifier_us"] > 2 * rows["synth_small"]["verifier_us"]
    # all at once: each tool's own statistics (the verifier's time is wall time, which a loaded host
    # stretches one run and not another: 93 ms all at once vs 226 ms alone was seen, so no time ratio)
    both = rows["all"]["verifier_detail"]
    for name, (iters, _) in VARIANTS.items():
        assert both[name]["lab_synth"]["processed_insns"] == 2 * iters + 3
    assert rows["all"]["verifier_us"] > 0


def test_both_at_once_is_one_row_with_each_tools_programs(rows):
    both = rows["all"]
    assert both["method"] == "combined_abba" and both["tools_combined"] == list(VARIANTS)
    assert both["program_detail"].keys() == {f"{n}:lab_synth" for n in VARIANTS}
    assert both["verified_insns"] == sum(2 * i + 3 for i, _ in VARIANTS.values())
    assert 50 <= both["cpu_user"] <= 265, both["cpu_user"]  # the small one's burner plus the big one's sleeps
    assert both["load"].startswith("stress-ng --cpu 1 --vm 1 --hdd 1 --sock 1")


def parts_account_for_total(r):
    """The throughput-derived total is of the order of the measured parts: on a 2-core machine
    shared with other work, the load pays only part of the tool's CPU (the rest comes out of the
    other work), so the bounds are generous: some trial's total within 0.25x..3x of the parts."""
    parts = r["cpu_user"] + r["cpu_exec"]
    return any(0.25 * parts <= t <= 3 * parts + 50 for t in r["cpu_total_samples"])


def test_total_is_the_measured_parts_plus_a_reported_remainder(rows, tooldir):
    r = rows["synth_small"]
    for t, e, u, x in zip(r["cpu_total_samples"], r["cpu_exec_samples"], r["cpu_user_samples"],
                          r["cpu_unexplained_samples"], strict=True):
        assert x == pytest.approx(t - e - u, abs=0.01)
    if not parts_account_for_total(r):  # a timing check never decides on one loaded measurement
        r = measure(tooldir, ["synth_small"], 5, False)["synth_small"]
    assert parts_account_for_total(r), (r["cpu_total_samples"], r["cpu_user"], r["cpu_exec"])


def test_map_access_is_counted_or_keeps_the_kernels_reason(rows):
    """The counting phase ran for real: where the kernel refuses the kprobes (this host: kprobe.multi
    EOPNOTSUPP, no kprobe PMU), map access stays not separable with the kernel's own text; where it
    allows them, the synthetic programs (no map calls) count none on their maps."""
    for name in VARIANTS:
        r = rows[name]
        if "map_count" in r:
            assert r["map_count"]["ops"] == {} and "map_access" not in r["not_separable"], r["map_count"]
        else:
            why = r["not_separable"]["map_access"]
            assert why.startswith("not separable: the kernel refused the map-operation counter ("), why
            assert "kprobe" in why and "stay inside exec" in why
