"""Hook suite, kernel_batch method and plausibility gates: unit tests (helper faked at its boundary)."""

import json
from pathlib import Path

from lab.agent import schema
from lab.agent.common import Context
from lab.agent.hooks import batch as hookbatch
from lab.agent.hooks import gates as hookgates


def ctx(tmp_path):
    return Context("hooks", "test", "host", str(tmp_path), {})


def records(base_cpu, hook_cpu, events=None, batch=100, runs=1000, stats=True, count_cpu=None, calls=None):
    ops = batch * runs
    recs = [{"kind": "setup", "prog": "raw_tp_empty", "mode": "batch", "trigger": "kfunc", "batch": batch,
             "runs": runs, "ops": ops, "cpu": 1, "clk_tck": 100, "count_driver": count_cpu is not None}]
    for i, (b, h) in enumerate(zip(base_cpu, hook_cpu, strict=True)):
        c = None if count_cpu is None else count_cpu[i]
        recs.append({"kind": "trial", "trial": i, "order": "AB" if i % 2 == 0 else "BA", "base_ns": b + 5,
                     "hook_ns": h + 9, "base_cpu_ns": b, "hook_cpu_ns": h,
                     "count_ns": None if c is None else c + 5, "count_cpu_ns": c,
                     "count_calls": None if c is None else (ops if calls is None else calls),
                     "events": ops if events is None else events, "base_events": 0, "triggers": ops})
    if stats:
        recs.append({"kind": "stats", "trial": 0, "run_time_ns": 50 * ops, "run_cnt": ops, "events": ops,
                     "triggers": ops, "hook_cpu_ns": 110 * ops, "off_cpu_ns": 50 * ops, "off_events": ops})
    return recs


def test_plan_triggers_and_fallback():
    assert hookbatch.plan("kprobe", 100, False)[:2] == ("helper", "kprobe")
    trig, prefix, point, per = hookbatch.plan("raw_tp", 100, True)
    assert (trig, prefix, per) == ("kfunc", "raw_tp", "in-kernel trigger") and "bpf_trigger_tp" in point
    trig, prefix, point, per = hookbatch.plan("tp_btf", 100, False)
    assert (trig, prefix, per) == ("getpgid", "tp_btf_pgid", "getpgid") and "121" in point


def test_kernel_has_trigger_tp(tmp_path):
    f = tmp_path / "btf"
    f.write_bytes(b"x\0bpf_modify_return_test_tp\0btf_trace_bpf_trigger_tp\0")
    assert hookbatch.kernel_has_trigger_tp(str(f)) == (True, "")
    f.write_bytes(b"x\0bpf_modify_return_test_tp\0")
    ok, why = hookbatch.kernel_has_trigger_tp(str(f))
    assert not ok and "btf_trace_bpf_trigger_tp" in why
    assert not hookbatch.kernel_has_trigger_tp(str(tmp_path / "none"))[0]


def test_rows_cpu_figure_wall_column_and_stats_cost(tmp_path):
    c = ctx(tmp_path)
    base = dict(hook="raw_tp", attach_point="x", variant="empty", program="raw_tp_empty", per="in-kernel trigger")
    ops = 100 * 1000
    rows = hookbatch.rows_from_records(c.row, base, records([8 * ops] * 6, [48 * ops] * 6))
    kb, st = rows
    assert kb["method"] == "kernel_batch" and kb["status"] == "ok" and kb["ns_median"] == 40.0
    assert kb["baseline"] == "bare" and "getpgid" in kb["baseline_note"] and kb["bare_ns_median"] == 40.0
    assert kb["baseline_ns"] == 8.0 and abs(kb["wall_ns_median"] - 40.0) < 0.01 and kb["per"] == "in-kernel trigger"
    assert kb["events"] == kb["triggers"] == 6 * ops and kb["trigger"] == "kfunc"
    assert st["method"] == "bpf_stats" and st["body_ns"] == 50.0 and st["stats_cost_ns"] == 60.0
    for r in rows:
        assert schema.validate(r) == [], r


def test_rows_headline_over_the_counting_driver(tmp_path):
    """With a counting driver the headline is hooked - kernel-count (the kernel bench's figure); the
    figure over the bare driver stays as bare_ns_*; the counting driver's own count must match."""
    c = ctx(tmp_path)
    base = dict(hook="raw_tp", variant="empty", per="in-kernel trigger")
    ops = 100 * 1000
    kb = hookbatch.rows_from_records(c.row, base, records([8 * ops] * 6, [48 * ops] * 6, count_cpu=[11 * ops] * 6))[0]
    assert kb["baseline"] == "kernel-count" and "baseline_note" not in kb and kb["status"] == "ok"
    assert kb["ns_median"] == 37.0 and kb["bare_ns_median"] == 40.0 and kb["count_ns"] == 11.0
    assert kb["baseline_ns"] == 8.0 and abs(kb["wall_ns_median"] - 37.0) < 0.01 and schema.validate(kb) == []
    bad = hookbatch.rows_from_records(c.row, base, records([8 * ops] * 2, [48 * ops] * 2, count_cpu=[11 * ops] * 2,
                                                           calls=5, stats=False))[0]
    assert bad["status"] == "invalid" and "counting driver counted" in bad["reason"]


def test_rows_count_mismatch_is_invalid(tmp_path):
    c = ctx(tmp_path)
    rows = hookbatch.rows_from_records(c.row, dict(hook="raw_tp", variant="empty"),
                                       records([1000] * 4, [2000] * 4, events=7, stats=False))
    assert rows[0]["status"] == "invalid" and "events for" in rows[0]["reason"]


def test_stats_net():
    rows = [dict(hook="raw_tp", per="p", method="bpf_stats", variant="empty", ns_median=50.0),
            dict(hook="raw_tp", per="p", method="bpf_stats", variant="body", ns_median=140.0),
            dict(hook="raw_tp", per="p", method="kernel_batch", variant="body", ns_median=150.0)]
    hookbatch.stats_net(rows)
    assert rows[1]["body_net_ns"] == 90.0 and rows[2]["body_net_ns"] == 90.0 and "body_net_ns" not in rows[0]


def timed(variant, med, lo, hi, base=None, method="cpu_abba", ops=100000, status="ok"):
    r = dict(hook="tracepoint", variant=variant, method=method, per="openat+close", status=status, reason="",
             ns_median=med, ns_ci_low=lo, ns_ci_high=hi, ops_per_trial=ops)
    if base is not None:
        r["base_samples"] = base
    return r


def test_gate_negative_beyond_interval():
    g = hookgates.Gates()
    # a negative cost per event is never ok, even when its interval spans zero (issue 18: a host run
    # wrote socket_filter empty -257 [-626, 286] as ok); the agent re-measures it once
    assert g.problems([timed("empty", -11, -23, 84)]) == {0: ["added cost -11.0 ns per event is negative"]}
    assert g.problems([timed("empty", 11, -23, 84)]) == {}  # positive, spanning zero: other gates decide
    p = g.problems([timed("empty", -11, -23, -2)])
    assert "negative beyond its interval" in p[0][0]


def test_gate_negative_perf_event_wall_row_recorded_on_the_host():
    """A perf_event throughput_abba row a default host run wrote as ok (sw, 9999 Hz, body:
    -48.0 us per sample [-68.2, -3.3]): its wall-time method is gated like the others."""
    row = json.loads((Path(__file__).parents[1] / "fixtures" / "perf_event_negative_ok_row.json").read_text())
    p = hookgates.Gates().problems([row])
    assert "negative beyond its interval" in p[0][0]


def test_gate_body_below_empty():
    g = hookgates.Gates()
    rows = [timed("body", 198, 190, 205), timed("empty", 227, 220, 240)]
    assert list(g.problems(rows)) == [0] and "below empty" in g.problems(rows)[0][0]
    assert g.problems([timed("body", 198, 190, 225), timed("empty", 227, 220, 240)]) == {}  # overlapping
    other = timed("empty", 227, 220, 240, method="wall_abba")
    assert g.problems([timed("body", 198, 190, 205), other]) == {}  # other method: not compared


def test_gate_baseline_drift_against_run():
    g = hookgates.Gates()
    g.record([timed("body", 100, 90, 110, base=[2000.0] * 6)])
    assert g.problems([timed("body", 100, 90, 110, base=[2100.0] * 6)]) == {}  # 5%: within bound
    p = g.problems([timed("body", 100, 90, 110, base=[2300.0] * 6)])
    assert "baseline drifted" in p[0][0] and "+15%" in p[0][0]
    # blocks too short for the clock (1.2 us): not checked
    g.record([timed("body", 100, 90, 110, base=[4.0] * 4, ops=300)])
    assert g.problems([timed("body", 100, 90, 110, base=[6.0] * 4, ops=300)]) == {}


def test_gate_foreign_programs_on_the_same_trigger(tmp_path):
    c = ctx(tmp_path)
    recs = records([8 * 10**5] * 4, [48 * 10**5] * 4, stats=False)
    recs[2]["foreign"] = 2
    kb = hookbatch.rows_from_records(c.row, dict(hook="raw_tp", variant="empty"), recs)[0]
    assert kb["foreign_trials"] == 1 and kb["status"] == "ok"
    p = hookgates.Gates().problems([kb])
    assert "1 of 4 trials" in p[0][0] and "another lab run" in p[0][0]


def test_gate_bpf_stats_switched_on_by_someone_else(tmp_path):
    """batchbench's stats_runs: our program's run count moved in a hooked block, so the kernel's BPF
    stats were on (another process): ~50 ns per run of clock reads are in the figure."""
    c = ctx(tmp_path)
    recs = records([8 * 10**5] * 4, [48 * 10**5] * 4, stats=False)
    recs[1]["stats_runs"] = 5000
    recs[3]["stats_runs"] = 0
    kb = hookbatch.rows_from_records(c.row, dict(hook="raw_tp", variant="empty"), recs)[0]
    assert kb["stats_on_trials"] == 1 and kb["foreign_trials"] == 0
    p = hookgates.Gates().problems([kb])
    assert "BPF stats were on" in p[0][0] and "1 of 4 trials" in p[0][0]


def test_gate_first_row_against_the_calibration():
    """The baseline-only blocks measured at the start of the run are the first row's reference."""
    g = hookgates.Gates()
    assert g.problems([timed("body", 100, 90, 110, base=[2300.0] * 6)]) == {}  # no reference yet
    g.reference("openat+close", "cpu_abba", None, [2000.0] * 4)
    p = g.problems([timed("body", 100, 90, 110, base=[2300.0] * 6)])
    assert "baseline drifted" in p[0][0] and "+15%" in p[0][0]
    assert g.problems([timed("body", 100, 90, 110, base=[2300.0] * 6, method="wall_abba")]) == {}


def test_measure_gated_remeasures_once_then_inconclusive():
    calls = []

    def bad():
        calls.append(1)
        return [timed("empty", -11, -23, -2)]

    rows = hookgates.measure_gated(hookgates.Gates(), bad)
    assert len(calls) == 2 and rows[0]["status"] == "inconclusive" and "re-measured once" in rows[0]["reason"]
    assert rows[0]["remeasured"] and "negative" in rows[0]["first_attempt"]
    seq = iter([[timed("empty", -11, -23, -2)], [timed("empty", 11, 2, 23)]])
    rows = hookgates.measure_gated(hookgates.Gates(), lambda: next(seq))
    assert rows[0]["status"] == "ok" and rows[0]["remeasured"]
    calls.clear()
    rows = hookgates.measure_gated(hookgates.Gates(), lambda: calls.append(1) or [timed("empty", 11, 2, 23)])
    assert len(calls) == 1 and "remeasured" not in rows[0]


def test_suite_falls_back_to_getpgid_when_the_kfunc_driver_is_refused(tmp_path, monkeypatch):
    """The suite end to end with batchbench faked: refused for the kfunc trigger, records for getpgid."""
    import json
    import stat

    from lab.agent.hooks import suite as hooks

    out = tmp_path / "recs.jsonl"
    out.write_text("".join(json.dumps(dict(r, trigger="getpgid") if r["kind"] == "setup" else r) + "\n"
                           for r in records([8 * 10**5] * 4, [48 * 10**5] * 4, runs=10**3)))
    helper = tmp_path / "batchbench"
    helper.write_text("#!/bin/sh\ncase \"$*\" in *kfunc*) echo 'no kfunc' >&2; exit 2;; esac\n"
                      f"cat '{out}'\n")
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "hookbench").write_text("#!/bin/sh\nexit 3\n")
    (tmp_path / "hookbench").chmod(0o755)
    monkeypatch.setattr(hooks, "kernel_has_trigger_tp", lambda: (True, ""))
    c = Context("hooks", "test", "host", str(tmp_path), {"hooks": ["raw_tp"], "variants": ["empty"]})
    rows = list(hooks.run(c))
    assert rows[0].get("method") is None and rows[0]["status"] == "unsupported" and rows[0]["per"] == "openat+close"
    kb = [r for r in rows if r.get("method") == "kernel_batch"][0]
    assert kb["status"] == "ok" and kb["per"] == "getpgid" and kb["program"] == "raw_tp_pgid_empty"
    assert "refused" in kb["fallback"] and "getpgid" in kb["attach_point"]
    for r in rows:
        assert schema.validate(r) == [], r


def test_suite_gates_the_first_row_against_its_start_of_run_reference(tmp_path):
    """The suite end to end with hookbench faked: baseline-only blocks first (--prog none), then a
    first row whose baseline is 33% above them: re-measured once, then inconclusive."""
    import json
    import stat

    from lab.agent.hooks import suite as hooks

    def recs(base, prog):
        out = [{"kind": "setup", "prog": prog, "mode": "open", "ops": 1000, "clk_tck": 100, "period_ns": 0,
                "warmup_events": 1}]
        out += [{"kind": "trial", "trial": i, "order": "AB", "base_ns": base, "hook_ns": base + 600_000,
                 "base_cpu_ns": base, "hook_cpu_ns": base + 600_000, "base_stime_ns": base,
                 "hook_stime_ns": base, "base_jiffies": 0, "hook_jiffies": 0, "events": 1000, "base_events": 0,
                 "triggers": 1000, "clock_ns": 0} for i in range(6)]
        return "".join(json.dumps(r) + "\n" for r in out)

    (tmp_path / "calib.jsonl").write_text(recs(1_500_000, "none"))
    (tmp_path / "rows.jsonl").write_text(recs(2_000_000, "raw_tp_empty"))
    helper = tmp_path / "hookbench"
    helper.write_text(f"#!/bin/sh\necho \"$*\" >> '{tmp_path}/calls'\ncase \"$*\" in *'--prog none'*) "
                      f"cat '{tmp_path}/calib.jsonl';; *) cat '{tmp_path}/rows.jsonl';; esac\n")
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    c = Context("hooks", "test", "host", str(tmp_path), {"hooks": ["raw_tp"], "variants": ["empty"],
                                                          "kernel_batch": False, "stats_trials": 0, "ops": 1000})
    rows = list(hooks.run(c))
    calls = (tmp_path / "calls").read_text().splitlines()
    assert "--prog none" in calls[0] and len(calls) == 3  # reference, the row, its one re-measurement
    for r in rows:
        if r["method"] in ("wall_abba", "cpu_abba"):
            assert r["status"] == "inconclusive" and "+33%" in r["reason"], r


def test_report_puts_kernel_batch_beside_the_published_figures():
    """The published kernel-bench figures come from lab/data/reference_hooks.yaml, derived over
    kernel-count, and sit beside the lab's empty-program kernel_batch rows, marked as published."""
    import pandas as pd

    from lab.report import tables

    ref = tables.reference_hooks()
    assert round(ref["added_ns"]["raw_tp"], 1) == 2.8 and round(ref["added_ns"]["kretprobe"], 1) == 51.2
    assert round(ref["added_ns"]["tracepoint"], 1) == 13.0 and "tp_btf" not in ref["added_ns"]
    row = dict(group="host", _file="hooks.jsonl", _line=1, suite="hooks", method="kernel_batch", variant="empty",
               per="in-kernel trigger",
               baseline="kernel-count", samples=[28.0, 28.2, 27.9, 28.1, 28.0, 28.3], status="ok", emulated=False,
               bare_samples=[30.0] * 6, wall_samples=[31.0] * 6)
    df = pd.DataFrame([dict(row, hook="raw_tp"), dict(row, hook="tp_btf"), dict(row, hook="raw_tp", variant="body")])
    t = tables.kernel_batch_table(df)
    assert len(t["rows"]) == 2 and "Published, not measured here" in t["note"] and "2025-07-03" in t["note"]
    raw, btf = (r["cells"] for r in t["rows"])
    assert raw[4] == "28.1" and raw[6] == "30.0" and raw[7] == "31.0" and raw[8].startswith("2.8 (166.8 rawtp")
    assert raw[9] == "x10.0" and btf[8] == "not published" and btf[9] == "-"
    tcg = tables.kernel_batch_table(pd.DataFrame([dict(row, hook="raw_tp", emulated=True)]))["rows"][0]["cells"]
    assert "TCG" in tcg[9]


def test_fmod_ret_plan_and_unsupported_without_the_kfunc(tmp_path):
    trig, prefix, point, per = hookbatch.plan("fmod_ret", 100, True)
    assert (trig, prefix, per) == ("kfunc", "fmod_ret", "in-kernel trigger") and "bpf_modify_return_test_tp" in point
    assert hookbatch.plan("fmod_ret", 100, False)[0] is None
    from lab.agent.hooks import suite as hooks

    suite = hooks.Suite(Context("hooks", "test", "host", str(tmp_path), {"hooks": ["fmod_ret"]}))
    rows = hookbatch.batch_rows(suite, "fmod_ret", "empty", False, "the kernel has no bpf_modify_return_test_tp")
    assert [r["status"] for r in rows] == ["unsupported"] and "kfunc" in rows[0]["reason"]
    assert schema.validate(rows[0]) == []
    assert hooks.check({"hooks": ["fmod_ret"]}) == []


def test_count_variant_is_kernel_batch_only_and_labelled(tmp_path, monkeypatch):
    """variant "count" (the kernel bench's program) gives kernel_batch rows only, labelled as such."""
    import json
    import stat

    from lab.agent.hooks import suite as hooks

    out = tmp_path / "recs.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in records([8 * 10**5] * 4, [48 * 10**5] * 4,
                                                                  count_cpu=[9 * 10**5] * 4, stats=False)))
    helper = tmp_path / "batchbench"
    helper.write_text(f"#!/bin/sh\necho \"$*\" >> '{tmp_path / 'args'}'\ncat '{out}'\n")
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "hookbench").write_text("#!/bin/sh\nexit 3\n")
    (tmp_path / "hookbench").chmod(0o755)
    monkeypatch.setattr(hooks, "kernel_has_trigger_tp", lambda: (True, ""))
    assert hooks.check({"variants": ["count", "empty"]}) == []
    c = Context("hooks", "test", "host", str(tmp_path), {"hooks": ["raw_tp"], "variants": ["count"]})
    rows = list(hooks.run(c))
    assert [r.get("method") for r in rows] == ["kernel_batch"]  # no open-path row for count
    kb = rows[0]
    assert kb["status"] == "ok" and kb["variant"] == "count" and kb["program"] == "raw_tp_count"
    assert "kernel bench's program" in kb["variant_note"] and "no tgid filter" in kb["variant_note"]
    assert "--prog raw_tp_count" in (tmp_path / "args").read_text()
    assert schema.validate(kb) == []
