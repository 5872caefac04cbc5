"""Where a tool's overhead comes from, on the host (lab/analysis/toolparts.py): triggering = each program's
runs/s x its attach type's dispatch cost from the hook rows of the same run, or why not."""

from pathlib import Path

import pandas as pd
import pytest
from conftest import run_rows

from lab.analysis import toolparts
from lab.report import page as report
from lab.results import aggregate
from lab.results.store import load_runs
from tests.conftest import PLAYBOOKS

HERE = Path(__file__).resolve().parent


def hook(hook, method, variant, added, body, status="ok", reason="", **kw):
    return dict(suite="hooks", hook=hook, method=method, variant=variant, ns_median=added, body_ns=body,
                status=status, reason=reason, attach_point=f"{hook} point", _file="hooks.jsonl", _line=3, **kw)


def tool_row(**kw):
    prog = dict(type="tracing", hook="tp_btf", target="sched_switch", runs_per_s_samples=[1000.0, 2000.0, 3000.0])
    r = dict(suite="tools", status="ok", tool="runqlat", cpu_total_samples=[10.0, 12.0, 14.0],
             cpu_exec_samples=[1.0, 1.0, 1.0], cpu_user_samples=[2.0, 2.0, 2.0],
             cpu_unexplained_samples=[7.0, 9.0, 11.0], program_detail={"sched_switch": prog}, load_ms=40.0,
             verified_insns=120, not_separable={"map_access": "not separable: x", "verifier_time": "not measured: y"})
    r.update(kw)
    return r


def test_dispatch_prefers_the_in_kernel_trigger_and_the_empty_program():
    costs = toolparts.dispatch_costs(pd.DataFrame([
        hook("tp_btf", "cpu_abba", "empty", 300.0, 100.0, runs_per_op=2.0),
        hook("tp_btf", "kernel_batch", "body", 150.0, 110.0, bare_ns_median=160.0),
        hook("tp_btf", "kernel_batch", "empty", 30.0, 45.0, bare_ns_median=38.0, baseline="kernel-count",
             stats_cost_ns=44.0),
        hook("fentry", "kernel_batch", "body", 30.0, 45.0, bare_ns_median=40.0),
        hook("fentry", "cpu_abba", "empty", 180.0, 40.0, runs_per_op=2.0),
        hook("raw_tp", "kernel_batch", "body", 20.0, 30.0, bare_ns_median=25.0),
        hook("tracepoint", "kernel_batch", "empty", 12.0, 30.0, baseline="bare"),
        hook("kprobe", None, "empty", None, None, status="unsupported", reason="kprobes refused: EINVAL")]))
    # empty program, in-kernel trigger, over the bare driver (the headline is over the counting one)
    assert costs["tp_btf"].ns == pytest.approx(38.0) and "tp_btf kernel_batch empty" in costs["tp_btf"].source
    assert "hooks.jsonl:3" in costs["tp_btf"].source and "statistics cost 44.0" in costs["tp_btf"].source
    assert costs["fentry"].ns == pytest.approx(90.0)  # open path: added per op / runs per op (empty first)
    assert costs["tracepoint"].ns == pytest.approx(12.0)  # a getpgid fallback's headline is over the bare loop
    assert "negative" in costs["raw_tp"] and "unsupported (kprobes refused" in costs["kprobe"]


def test_triggering_is_runs_times_dispatch_and_comes_out_of_unexplained():
    costs = {"tp_btf": toolparts.Dispatch("tp_btf", 500.0, "hooks tp_btf row")}
    p = toolparts.tool_parts(tool_row(), costs)
    trig = p["triggering"]
    assert trig.status == "measured" and trig.samples == [0.5, 1.0, 1.5] and trig.sources == ["hooks tp_btf row"]
    assert p["ivs"]["unexplained"].median == pytest.approx(9.0 - 1.0)
    assert p["ivs"]["triggering"].median == pytest.approx(1.0)
    assert p["dominant"] == "user"  # 2 ms/s user > 1 triggering > 1 exec (unexplained is not a source)
    assert "40 ms" in p["verifier"] and "120 insns" in p["verifier"] and "not measured: y" in p["verifier"]


def test_triggering_says_why_it_is_not_measured():
    assert toolparts.triggering(tool_row(), None).why == "not measured: the hook suite did not run in this run"
    t = toolparts.triggering(tool_row(), {"raw_tp": toolparts.Dispatch("raw_tp", 1.0, "x")})
    assert t.status == "not measured" and "tp_btf not measured by the hook suite" in t.why
    two = tool_row(program_detail={
        "a": dict(hook="tp_btf", runs_per_s_samples=[10.0]), "b": dict(hook="fentry", runs_per_s_samples=[10.0])})
    t = toolparts.triggering(two, {"tp_btf": toolparts.Dispatch("tp_btf", 100.0, "x"), "fentry": "hook suite: "
                                   "fentry unsupported (no BTF)"})
    assert t.status == "partial" and t.samples == [0.001] and "b (fentry): hook suite: fentry unsupported" in t.why
    old = toolparts.triggering(tool_row(program_detail={"p": dict(type="tracing")}), {})
    assert "recorded before they were" in old.why
    p = toolparts.tool_parts(tool_row(), None)
    assert p["ivs"]["triggering"] is None and p["ivs"]["unexplained"].median == pytest.approx(9.0)


def test_hook_rows_and_a_tool_in_one_run_give_a_measured_triggering_part(tmp_path):
    """For real on this kernel: tp_btf/raw_tp hook rows and runqlat in one run, joined."""
    store, rows = run_rows(["hooks", "tools"], "host", str(PLAYBOOKS / "tools_parts_playbook.yaml"), tmp_path)
    (runqlat,) = rows["tools"]
    assert runqlat["status"] == "ok", runqlat["reason"]
    df = aggregate.rows_frame(load_runs([store.path]))
    (p,) = toolparts.frame_parts(df)
    hook = runqlat["program_detail"]["sched_switch"]["hook"]
    trig = p["triggering"]
    if trig.status == "measured":
        assert trig.sources[0].startswith(f"hooks {hook} ") and p["ivs"]["triggering"].median > 0
    else:  # the hook suite gave no usable figure for this attach type here: the part must say so
        assert trig.status == "not measured" and hook in trig.why, trig.why
    assert p["ivs"]["total"] is not None and p["dominant"] in ("user", "exec", "triggering")
    out = report.write_report([store.path], tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert (tmp_path / "report" / "tool_parts.png").exists() and "![tool parts](tool_parts.png)" in md
    assert "### The talk's five sources, measured" in md and "| runqlat |" in md
    assert "Where each tool's overhead comes from" in out.read_text()


def test_a_hook_whose_timed_rows_were_all_inconclusive_says_so():
    costs = toolparts.dispatch_costs(pd.DataFrame([
        hook("tracepoint", "cpu_abba", "empty", 900.0, 50.0, status="inconclusive", reason="baseline drifted: +25%"),
        hook("tracepoint", "bpf_stats", "empty", 50.0, 50.0)]))
    assert "cpu_abba inconclusive: baseline drifted" in costs["tracepoint"]
