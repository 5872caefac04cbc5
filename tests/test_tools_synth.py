"""A tool of known cost is decomposed into the right parts (real BPF program, real load, host kernel).

synth_tool.py attaches a raw tracepoint program on sched_switch that counts to N per event and
burns a fixed share of a CPU in user space. The suite must find: the user-space part at that share,
the verifier's count at 2N+3 instructions, the program's time per run growing with N, and the
throughput-derived total of the same order as the measured parts.
"""

import os
import sys

import pytest

from lab.agent import schema, tools
from lab.agent.common import Context

pytestmark = pytest.mark.host
SYNTH = os.path.join(os.path.dirname(__file__), "synth_tool.py")
VARIANTS = {"synth_small": (2000, 0.2), "synth_big": (20000, 0.0)}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    d = tmp_path_factory.mktemp("tooldir")
    for name, (iters, share) in VARIANTS.items():
        path = d / name
        path.write_text(f"#!{sys.executable}\nimport os, runpy\n"
                        f"os.environ.update(LAB_SYNTH_ITERS={str(iters)!r}, LAB_SYNTH_SHARE={str(share)!r})\n"
                        f"runpy.run_path({SYNTH!r}, run_name='__main__')\n")
        path.chmod(0o755)
    ctx = Context("tools", "synth", "host", str(d), dict(tools=list(VARIANTS), trials=3, seconds=2,
                                                         proof_seconds=1, tool_dir=str(d)))
    return {r["tool"]: r for r in tools.ToolSuite(ctx).run()}


def test_rows_are_valid_and_measured(rows):
    for r in rows.values():
        assert r["status"] == "ok", r["reason"]
        assert schema.validate(r) == [], r
        assert len(r["cpu_exec_samples"]) == 3 and len(r["load_ms_samples"]) == 4
        assert r["program_detail"].keys() == {"lab_synth"} and r["maps"] == []


def test_user_space_part_is_the_known_share(rows):
    # 0.2 CPU = 200 ms/s (10 ms ticks over 2 s); on a busy 2-core host the burner got 127 ms/s
    assert 100 <= rows["synth_small"]["cpu_user"] <= 250
    assert rows["synth_big"]["cpu_user"] <= 15  # it only sleeps


def test_verifier_count_and_program_time_follow_the_iterations(rows):
    for name, (iters, _) in VARIANTS.items():
        assert rows[name]["verified_insns"] == 2 * iters + 3
    small = rows["synth_small"]["program_detail"]["lab_synth"]["ns_per_run"]
    big = rows["synth_big"]["program_detail"]["lab_synth"]["ns_per_run"]
    assert 4 < big / small < 15, (small, big)
    assert rows["synth_big"]["cpu_exec"] > rows["synth_small"]["cpu_exec"]


def test_total_is_the_measured_parts_plus_a_reported_remainder(rows):
    r = rows["synth_small"]
    for t, e, u, x in zip(r["cpu_total_samples"], r["cpu_exec_samples"], r["cpu_user_samples"],
                          r["cpu_unexplained_samples"], strict=True):
        assert x == pytest.approx(t - e - u, abs=0.01)
    assert r["cpu_total"] > 0.5 * (r["cpu_user"] + r["cpu_exec"])  # a 0.2 CPU tool costs the load CPU
