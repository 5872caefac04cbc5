"""Hook suite: unit tests of the record-to-row logic, with the helper faked at its boundary."""

import json
import stat

import pytest

from lab.agent import schema
from lab.agent.common import Context
from lab.agent.hooks import perf as hookperf
from lab.agent.hooks import suite as hooks


def make_ctx(tmp_path, params=None, accelerator="host"):
    return Context("hooks", "test", accelerator, str(tmp_path), params or {})


def trial(i, base, hook, ops, events=None, **kw):
    t = {"kind": "trial", "trial": i, "order": "AB" if i % 2 == 0 else "BA", "base_ns": base, "hook_ns": hook,
         "base_cpu_ns": base, "hook_cpu_ns": hook, "base_stime_ns": base, "hook_stime_ns": hook,
         "base_jiffies": 1, "hook_jiffies": 2,
         "events": ops if events is None else events, "triggers": ops, "clock_ns": 0}
    t.update(kw)
    return t


def test_per_op_added_and_jiffies():
    trials = [trial(0, 1000, 1500, 10), trial(1, 2000, 2100, 10)]
    assert hooks.per_op_added(trials, 10) == [50.0, 10.0]
    assert hooks.jiffies_added(trials, 10, 100) == [1e6, 1e6]  # one 10 ms tick over 10 ops


def test_count_check():
    assert hooks.count_check(5, 5) == ("ok", "")
    status, reason = hooks.count_check(4, 5)
    assert status == "invalid" and "4 events for 5 triggers" in reason


def test_stats_body_runs_per_op():
    stats = [{"run_time_ns": 1000, "run_cnt": 20}, {"run_time_ns": 3000, "run_cnt": 20}]
    body, runs = hooks.stats_body(stats, 10)
    assert body == [50.0, 150.0] and runs == 2.0


def test_spread():
    assert hooks.spread({"ns_median": 100.0, "ns_ci_low": 90.0, "ns_ci_high": 110.0}) == pytest.approx(0.2)
    assert hooks.spread({"ns_median": None}) is None


def records(ops=10, events=None):
    recs = [{"kind": "setup", "prog": "tracepoint_body", "mode": "open", "ops": ops, "clk_tck": 100,
             "period_ns": 0, "warmup_events": 1}]
    recs += [trial(i, 1000 + i, 1600 + i, ops, events=events) for i in range(6)]
    recs += [{"kind": "stats", "trial": i, "run_time_ns": 200, "run_cnt": ops, "events": ops, "triggers": ops,
              "hook_ns": 1600, "clock_ns": 0} for i in range(3)]
    return recs


def test_rows_from_records_methods_and_schema(tmp_path):
    suite = hooks.Suite(make_ctx(tmp_path))
    base = dict(hook="tracepoint", attach_point="tp", variant="body", program="tracepoint_body")
    rows = suite.rows_from_records(base, records(), 10, talk=True)
    assert [r["method"] for r in rows] == ["wall_abba", "cpu_abba", "talk_stime", "talk_jiffies", "bpf_stats"]
    for r in rows:
        assert schema.validate(r) == [], r
        assert r["status"] == "ok"
    wall, cpu, _, _, st = rows
    assert wall["ns_median"] == pytest.approx(60.0) and wall["trials"] == 6 and len(wall["samples"]) == 6
    assert wall["events"] == wall["triggers"] == 60
    assert st["body_ns"] == pytest.approx(20.0) and wall["dispatch_ns"] == pytest.approx(40.0)
    assert cpu["ns_median"] == pytest.approx(60.0) and cpu["dispatch_ns"] == pytest.approx(40.0)


def test_rows_invalid_when_counts_differ(tmp_path):
    suite = hooks.Suite(make_ctx(tmp_path, accelerator="tcg"))
    base = dict(hook="tracepoint", attach_point="tp", variant="body", program="tracepoint_body")
    rows = suite.rows_from_records(base, records(events=9), 10, talk=False)
    assert rows[0]["status"] == "invalid" and "54 events for 60 triggers" in rows[0]["reason"]
    assert rows[0]["emulated"] is True and "TCG" in rows[0]["note"]  # TCG rows say so


def fake_helper(tmp_path, rc, stderr, stdout=""):
    (tmp_path / "records.jsonl").write_text(stdout)
    path = tmp_path / "hookbench"
    path.write_text(f"#!/bin/sh\ncat '{tmp_path / 'records.jsonl'}'\necho '{stderr}' >&2\nexit {rc}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.mark.parametrize("rc,status", [(2, "unsupported"), (3, "unsupported"), (1, "error")])
def test_refusal_and_failure_rows(tmp_path, rc, status):
    fake_helper(tmp_path, rc, "libbpf: prog 'fentry_body': BPF program load failed: Operation not permitted")
    ctx = make_ctx(tmp_path, {"hooks": ["fentry", "tracepoint"], "variants": ["body"], "kernel_batch": False})
    rows = list(hooks.run(ctx))
    assert [r["hook"] for r in rows] == ["fentry", "tracepoint"]  # the suite goes on
    for r in rows:
        assert r["status"] == status and "Operation not permitted" in r["reason"]
        assert schema.validate(r) == []


def test_fake_helper_records_become_rows(tmp_path):
    out = "".join(json.dumps(r) + "\n" for r in records())
    fake_helper(tmp_path, 0, "", stdout=out)
    ctx = make_ctx(tmp_path, {"hooks": ["raw_tp"], "variants": ["empty"], "kernel_batch": False})
    rows = list(hooks.run(ctx))
    assert [r["method"] for r in rows] == ["wall_abba", "cpu_abba", "talk_stime", "talk_jiffies", "bpf_stats"]
    assert all(r["status"] == "ok" for r in rows)


def test_unknown_hook_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown hooks"):
        hooks.Suite(make_ctx(tmp_path, {"hooks": ["kprobe", "nope"]}))


def test_sample_check_against_the_ring_buffer_count():
    counts = [{"trial": 0, "events": 90, "samples": 88, "lost": 2, "clock_ns": 100_000_000},
              {"trial": 1, "events": 75, "samples": 75, "lost": 0, "clock_ns": 100_000_000}]
    assert hookperf.sample_check(counts) == ("ok", "", 165, 165)
    assert hookperf.delivered_pct(counts, 1_000_000) == pytest.approx(82.5)
    bad = counts + [{"trial": 2, "events": 10, "samples": 12, "lost": 0, "clock_ns": 1}]
    status, reason, events, samples = hookperf.sample_check(bad)
    assert status == "invalid" and "10 events" in reason and "12 samples" in reason and samples == 177


# ---- perf_event: arms base / none / programs per trial, sized by samples ----

def arm(name, ns, count, events, cpu=None):
    return {"arm": name, "ns": ns, "cpu_ns": ns if cpu is None else cpu, "count": count, "events": events}


def perf_records(stray=0, body_events=1000, counts_ok=True):
    """Two trials (fwd, rev) of a 1 ms-period cpu-clock event: base 1 s; the none arm loses 2 us per
    sample, empty 2.5 us, body 3 us (over base)."""
    recs = [{"kind": "setup", "prog": "perf_event_body,perf_event_empty", "mode": "perf", "ops": 10**6,
             "clk_tck": 100, "period_ns": 1_000_000, "samples_target": 1000, "calib_ops": 10**5,
             "calib_events": 100, "progs": ["perf_event_empty", "perf_event_body"]}]
    for t in range(2):
        arms = [arm("base", 10**9, 0, 0), arm("none", 10**9 + 2000 * 1000, 1_002_000_000, stray),
                arm("perf_event_empty", 10**9 + 2500 * 1000, 1_002_500_000, 1000),
                arm("perf_event_body", 10**9 + 3000 * body_events, 1_003_000_000, body_events)]
        recs.append({"kind": "ptrial", "trial": t, "order": "fwd" if t == 0 else "rev",
                     "arms": arms if t == 0 else arms[::-1]})
    for p in ("perf_event_empty", "perf_event_body"):
        recs.append({"kind": "stats", "prog": p, "trial": 0, "run_time_ns": 200 * 200, "run_cnt": 200,
                     "events": 200, "triggers": 10, "hook_ns": 1, "clock_ns": 200_000_000})
        recs.append({"kind": "count", "prog": p, "trial": 0, "events": 200, "samples": 200 if counts_ok else 150,
                     "lost": 0, "clock_ns": 200_000_000})
    return recs


def perf_rows(tmp_path, recs, accelerator="host"):
    suite = hooks.Suite(make_ctx(tmp_path, accelerator=accelerator))
    base = dict(hook="perf_event", attach_point="cpu-clock 999 Hz", freq_hz=999, perf_event="sw")
    return hookperf.perf_rows_from_records(suite.row, base, recs, 999, ["body", "empty"])


def pick(rows, method, variant):
    out = [r for r in rows if r["method"] == method and r["variant"] == variant]
    assert len(out) == 1, (method, variant)
    return out[0]


def test_perf_rows_pair_none_with_each_program(tmp_path):
    rows = perf_rows(tmp_path, perf_records())
    assert {(r["method"], r["variant"]) for r in rows} == {
        (m, v) for m in ("throughput_abba", "cpu_abba") for v in ("none", "body", "empty")} | {
        ("bpf_stats", "body"), ("bpf_stats", "empty")}
    for r in rows:
        assert schema.validate(r) == [], r
        assert r["status"] == "ok", r["reason"]
        assert r["hook"] == "perf_event" and r["freq_hz"] == 999 and r["perf_event"] == "sw"
    for method in ("throughput_abba", "cpu_abba"):
        none, body, empty = (pick(rows, method, v) for v in ("none", "body", "empty"))
        # the none arm's samples: each program's count scaled by the event's own count ratio
        assert none["sample_counts"] == [999, 999] and none["events"] is None  # 1000 x 1.002 / 1.0025-1.003
        assert none["samples"] == pytest.approx([2000.0, 2000.0], rel=1e-3)
        assert body["samples"] == pytest.approx([3000.0, 3000.0]) and body["sample_counts"] == [1000, 1000]
        assert body["none_samples"] == none["samples"]
        assert body["minus_none_samples"] == pytest.approx([1000.0, 1000.0], rel=1e-2)
        assert empty["minus_none_samples"] == pytest.approx([500.0, 500.0], rel=1e-2)
        assert "none_samples" not in none and "minus_none_median" not in body  # intervals: the host's job
        assert body["events"] == body["triggers"] == 200 and "ring buffer" in body["trigger_check"]
        assert body["delivered_pct"] == pytest.approx(100.0)
        assert body["loss_pct_median"] == pytest.approx(100 * 3e6 / (1e9 + 3e6))
        assert body["loss_samples"] == pytest.approx([100 * 3e6 / (1e9 + 3e6)] * 2, abs=1e-4)
        assert body["samples_target"] == 1000 and "sample_note" not in body
    assert pick(rows, "cpu_abba", "body")["irq_time_accounting"] in (True, False, None)
    assert pick(rows, "bpf_stats", "body")["body_ns"] == pytest.approx(200.0)


def test_perf_rows_invalid_when_a_program_runs_detached_or_counts_differ(tmp_path):
    rows = perf_rows(tmp_path, perf_records(stray=3))
    assert all(r["status"] == "invalid" and "none arm" in r["reason"] for r in rows)
    rows = perf_rows(tmp_path, perf_records(counts_ok=False))
    body = pick(rows, "throughput_abba", "body")
    assert body["status"] == "invalid" and "200 events" in body["reason"] and "150 samples" in body["reason"]
    assert pick(rows, "throughput_abba", "none")["status"] == "ok"


def test_perf_rows_a_program_that_never_fired_is_invalid_and_short_trials_say_so(tmp_path):
    rows = perf_rows(tmp_path, perf_records(body_events=0))
    body = pick(rows, "cpu_abba", "body")
    assert body["status"] == "invalid" and "never fired" in body["reason"]
    assert "fewer than the 1000" in body["sample_note"]
    assert pick(rows, "cpu_abba", "empty")["status"] == "ok"


def test_perf_helper_is_asked_for_every_variant_at_once(tmp_path):
    out = "".join(json.dumps(r) + "\n" for r in perf_records())
    path = fake_helper(tmp_path, 0, "", stdout=out)
    path.write_text(path.read_text().replace("cat ", f"echo \"$@\" > '{tmp_path / 'args'}'\ncat ", 1))
    ctx = make_ctx(tmp_path, {"hooks": ["perf_event"], "variants": ["body", "empty"], "freqs": [999],
                              "perf_events": ["sw"], "perf_samples": 1000, "perf_trials": 2})
    rows = list(hooks.run(ctx))
    args = (tmp_path / "args").read_text().split()
    assert args[args.index("--prog") + 1] == "perf_event_body,perf_event_empty"
    assert args[args.index("--samples") + 1] == "1000" and args[args.index("--trials") + 1] == "2"
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
    assert hooks.check({"perf_ms": 100}) and not hooks.check({"perf_samples": 1000, "perf_trials": 4})
