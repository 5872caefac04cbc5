"""Map access of a tool: the agent's counting-phase summary (lab/agent/tools/mapaccess.py) and the host's
join with the map suite's per-op costs (lab/analysis/mapparts.py, lab/analysis/toolparts.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lab.agent.tools import mapaccess
from lab.analysis import mapparts, toolparts
from lab.results import aggregate, stats
from lab.results.store import load_runs


def snap(t_ns, counts, missed=0):
    return {"kind": "snap", "t_ns": t_ns, "missed": missed, "counts": counts}


MAPS = {7: {"type": "hash", "name": "start"}, 8: {"type": "array", "name": "hists"},
        9: {"type": "perf_event_array", "name": "events"}}


def test_plan_hooks_ftrace_functions_together_and_the_rest_with_kprobes():
    funcs, skipped = mapaccess.plan({"__htab_map_lookup_elem", "htab_map_update_elem"},
                                    {"__htab_map_lookup_elem", "htab_map_update_elem", "bpf_perf_event_output"})
    by = {n: (a, single) for n, a, single in funcs}
    assert by["__htab_map_lookup_elem"] == (1, False) and by["bpf_perf_event_output"] == (2, True)
    assert skipped["htab_lru_map_update_elem"] == "not in this kernel (kallsyms)"
    funcs, skipped = mapaccess.plan(None, None)  # nothing readable: every function, the kernel decides
    assert len(funcs) == len(mapaccess.FUNCS) and not skipped


def test_summary_counts_each_lookup_once_and_says_what_it_could_not_count():
    s0 = snap(0, {"__htab_map_lookup_elem": {"7": 0, "8": 0, "other": 0, "self": 0},
                  "htab_map_lookup_elem": {"7": 0, "other": 0, "self": 0},
                  "htab_map_update_elem": {"7": 0, "other": 0, "self": 0},
                  "bpf_perf_event_output": {"9": 0, "other": 0, "self": 0}})
    s1 = snap(2_000_000_000, {"__htab_map_lookup_elem": {"7": 400, "8": 0, "other": 10, "self": 6},
                              "htab_map_lookup_elem": {"7": 100, "other": 0, "self": 6},
                              "htab_map_update_elem": {"7": 200, "other": 0, "self": 0},
                              "bpf_perf_event_output": {"9": 50, "other": 0, "self": 0}}, missed=4)
    mc = mapaccess.summarize({"mode": "kprobe_multi", "funcs": ["x"], "refused": {"bpf_ringbuf_output": "EINVAL"}},
                             s0, s1, MAPS, {"htab_lru_map_update_elem": "not in this kernel (kallsyms)"}, [], 100)
    # a lookup op calls __htab_map_lookup_elem in turn: 400 inlined + nested, not 500
    assert mc["ops"] == {"hash lookup": 200.0, "hash update": 100.0, "perf_event_array output": 25.0}
    assert mc["functions"]["htab_map_update_elem"] == dict(calls_per_s=100.0, op="update",
                                                           by_map={"hash start (id 7)": 100.0})
    assert mc["excluded"] == {"tool_process_per_s": {"__htab_map_lookup_elem": 3.0, "htab_map_lookup_elem": 3.0},
                              "other_maps_per_s": {"__htab_map_lookup_elem": 5.0}}
    assert mc["events_per_s"] == 50.0 and mc["missed_per_s"] == 2.0 and mc["seconds"] == 2.0
    text = " | ".join(mc["not_counted"])
    assert "inlined" in text and "htab_lru_map_update_elem: not in this kernel" in text
    assert "refused by the kernel: bpf_ringbuf_output (EINVAL)" in text and "2.0 calls/s missed" in text


def test_not_separable_keeps_the_reason_or_drops_map_access():
    f = {"not_separable": {"map_access": "old", "triggering": "t"}}
    assert mapaccess.with_not_separable(f, None)["not_separable"] == {"triggering": "t"}
    assert mapaccess.with_not_separable(f, "why")["not_separable"]["map_access"] == "why"


def maprow(mtype, op, ns, key_space="dense", flags=0, status="ok", contention="1cpu"):
    return dict(suite="maps", map_type=mtype, operation=op, driver="kernel", contention=contention,
                key_space=key_space, flags=flags, status=status, map_ns=ns, _file="maps.jsonl", _line=4)


def test_per_op_cost_prefers_dense_flags_0_single_thread_rows():
    costs = mapparts.op_costs(pd.DataFrame([
        maprow("hash", "update", 900.0, flags=1), maprow("hash", "update", 300.0, key_space="sparse"),
        maprow("hash", "update", 250.0), maprow("hash", "update", 50.0, contention="allcpu"),
        maprow("hash", "lookup", 80.0, status="invalid")]))
    assert costs[("hash", "update")].ns == 250.0 and "hash update kernel 1cpu dense flags 0 maps.jsonl:4" in \
        costs[("hash", "update")].source
    assert "no usable figure (invalid)" in costs[("hash", "lookup")]


def tool_row(ops, exec_samples=(1.0, 1.0, 1.0)):
    return dict(cpu_total_samples=[10.0, 12.0, 14.0], cpu_exec_samples=list(exec_samples),
                cpu_user_samples=[2.0] * 3, cpu_unexplained_samples=[7.0, 9.0, 11.0], program_detail={},
                not_separable={}, map_count=dict(mode="kprobe_multi", ops=ops, not_counted=["array inlined"]))


def test_map_access_is_carved_out_of_execution_and_names_its_rows():
    costs = {("hash", "update"): mapparts.OpCost(400.0, "maps hash update row"),
             ("hash", "lookup"): mapparts.OpCost(100.0, "maps hash lookup row")}
    p = toolparts.tool_parts(tool_row({"hash update": 1000.0, "hash lookup": 2000.0,
                                       "perf_event_array output": 30.0}), None, costs)
    assert p["map"].status == "partial" and p["ivs"]["map"].median == pytest.approx(0.6)
    assert p["ivs"]["exec"].median == pytest.approx(0.4)  # 1.0 of execution, 0.6 of it map access
    assert "hash update 1,000/s x maps hash update row" in p["map_access"]
    assert "perf_event_array output 30/s (the map suite does not time output)" in p["map_access"]


def test_map_access_says_why_it_is_not_measured_or_implausible():
    row = tool_row({"hash update": 1000.0})
    p = toolparts.tool_parts(row, None, None)
    assert p["map"].status == "not measured" and "the map suite did not run in this run" in p["map_access"]
    assert p["ivs"]["map"] is None and p["ivs"]["exec"].median == 1.0
    p = toolparts.tool_parts(row, None, {})
    assert "no map suite row for hash update" in p["map_access"]
    p = toolparts.tool_parts(row, None, {("hash", "update"): mapparts.OpCost(5000.0, "x")})
    assert p["map"].status == "implausible" and "more than execution" in p["map_access"]
    assert p["ivs"]["map"] is None and p["ivs"]["exec"].median == 1.0  # not carved out
    refused = dict(row, map_count=None, not_separable={"map_access": "not separable: the kernel refused (EPERM)"})
    p = toolparts.tool_parts(refused, None, {})
    assert p["map"].status == "not separable" and p["map_access"].endswith("(EPERM)")


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mapacc" / "20261127T115923Z-6.12.117_deb12-amd64-c429"


def test_a_recorded_6_12_run_costs_each_tools_counted_ops_with_the_same_runs_map_rows():
    """Rows recorded on a 6.12 guest (TCG): runqlat/cpudist/biolatency make hash lookups and updates
    (the map suite's ns/op of the same run cost them), cachestat/vfsstat only touch arrays and
    global counters (inlined: nothing to count), tcplife's classic tracepoint program hides its
    calls from the counter (missed)."""
    df = aggregate.rows_frame(load_runs([FIXTURE]))
    maps = {(r["map_type"], r["operation"]): r["map_ns"] for _, r in df[df["suite"] == "maps"].iterrows()
            if not r["flags"]}  # dense keys, one thread, flags 0: the row the join takes
    parts = {p["tool"]: p for p in toolparts.frame_parts(df)}
    assert set(parts) == {"runqlat", "cpudist", "cachestat", "biolatency", "vfsstat", "tcplife"}
    for name in ("runqlat", "cpudist", "biolatency"):
        p, row = parts[name], parts[name]["row"]
        ops = row["map_count"]["ops"]
        assert ops["hash update"] > 0 and ops["hash lookup"] > 0, ops
        want = (ops["hash update"] * maps[("hash", "update")] + ops["hash lookup"] * maps[("hash", "lookup")]) / 1e6
        assert p["map"].ms == pytest.approx(want) and p["ivs"]["map"].median == pytest.approx(want)
        assert "x maps hash update kernel 1cpu dense flags 0 maps.jsonl:" in p["map_access"]
        assert p["map"].status == ("partial" if "hash delete" in ops else "measured"), p["map_access"]
        # carved out of execution: per trial, the parts still add up to the total
        for t, e, u, x in zip(row["cpu_total_samples"], row["cpu_exec_samples"], row["cpu_user_samples"],
                              row["cpu_unexplained_samples"], strict=True):
            assert (e - p["map"].ms) + p["map"].ms + u + x == pytest.approx(t, abs=0.01)
        assert p["ivs"]["exec"].median == pytest.approx(stats.median_ci(row["cpu_exec_samples"]).median - want)
    assert "hash delete 708/s (the map suite does not time delete)" in parts["runqlat"]["map_access"]
    for name in ("cachestat", "vfsstat"):
        assert parts[name]["map"].ms == 0.0 and "no map operation on the tool's maps" in parts[name]["map_access"]
        assert "array lookups are inlined" in parts[name]["map_access"]
    tcp = parts["tcplife"]
    assert tcp["map"].status == "partial" and "calls/s missed" in tcp["map_access"]
    assert "refused by the kernel: bpf_perf_event_output (Invalid argument)" in tcp["map_access"]
