"""Tool overhead decomposition: the pure parts and the counters read from this process."""

import os

import pytest

from lab.agent import schema
from lab.agent.tools import cost as toolcost


def test_parts_are_cpu_ms_per_second_and_the_rest_is_unexplained():
    d = toolcost.decompose(loss_pct=10.0, base_load_cpu=2.0, wall=2.0, exec_ns=40e6, user_cpu=0.2)
    assert d == pytest.approx(dict(total=200.0, exec=20.0, user=100.0, unexplained=80.0))
    assert toolcost.decompose(None, 2.0, 1.0, 0, 0.0)["unexplained"] is None


def test_program_runs_are_deltas_summed_per_program_name():
    before = {7: dict(name="a", type="tracing", run_cnt=10, run_time_ns=1000, verified_insns=5)}
    after = {7: dict(name="a", type="tracing", run_cnt=30, run_time_ns=5000, verified_insns=5),
             8: dict(name="a", type="tracing", run_cnt=5, run_time_ns=500, verified_insns=5)}
    assert toolcost.program_rows(before, after) == {
        "a": dict(type="tracing", run_cnt=25, run_time_ns=4500, verified_insns=5)}


def test_sources_fields_carry_raw_samples_and_validate():
    prog = dict(type="raw_tracepoint", run_cnt=100, run_time_ns=10**6, verified_insns=9)
    b = dict(wall=2.0, exec_ns=4e6, user_cpu=0.1, events=200, switches=10, load_cpu=1.5, progs={"p": prog})
    proof = dict(progs={"p": prog}, maps=[dict(type="hash", max_entries=10, live_entries=3)])
    f = toolcost.sources_fields([5.0, None], [(({}, 2.0, 2.0), b), (({}, 2.0, 2.0), b)], [40.0, 50.0], proof)
    assert f["cpu_total_samples"] == [100.0] and f["cpu_exec_samples"] == [2.0, 2.0]
    assert f["cpu_user_samples"] == [50.0, 50.0] and f["cpu_unexplained_samples"] == [48.0]
    assert f["verified_insns"] == 9 and f["load_ms"] == 45.0
    assert f["program_detail"]["p"]["run_cnt"] == 200 and f["program_detail"]["p"]["ns_per_run"] == 10000.0
    assert set(f["not_separable"]) == {"map_access", "triggering", "verifier_time"}
    row = dict(schema="x", run_id="r", suite="tools", kernel="k", accelerator="host", cpu_model="c", vcpus=2,
               status="ok", reason="", time="t", tool="runqlat", load="l", ns_median=None, ns_ci_low=None,
               ns_ci_high=None, **f)
    assert [p for p in schema.validate(row) if "cpu_" in p or "maps" in p or "load_ms" in p] == []


def test_process_counters_are_read_from_proc():
    cpu0, sw0 = toolcost.proc_cpu(os.getpid())
    x = 0
    for i in range(3_000_000):
        x += i
    cpu1, sw1 = toolcost.proc_cpu(os.getpid())
    assert cpu1 > cpu0 and sw1 >= sw0 >= 0


def test_verifier_shim_lines_pick_the_tools_programs():
    from lab.agent.tools import verifier as toolverif

    loads = toolverif.parse("\t48\t2\t142.2\t3\nsched_switch\t1108\t815\t1133.8\t12\n"
                            "sched_wakeup_ne\t223\t23\t248\t11\nsched_switch\t0\t0\t5.0\t-13\nbroken line\n")
    f = toolverif.fields(loads, ["sched_switch", "sched_wakeup_new"], True)
    assert f["verifier_us"] == 1331 and f["verifier_detail"]["sched_switch"]["processed_insns"] == 815
    assert "not built" in toolverif.fields([], ["x"], False)["verifier_why"]
    assert "saw no BPF_PROG_LOAD" in toolverif.fields([], ["x"], True)["verifier_why"]
    assert "none of the 4 loads" in toolverif.fields(loads, ["other"], True)["verifier_why"]
