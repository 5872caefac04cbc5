"""Hook suite: unit tests of the record-to-row logic, with the helper faked at its boundary."""

import json
import stat

import pytest

from lab.agent import hooks, schema
from lab.agent.common import Context


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


def test_perf_check_tolerance():
    period = 1_000_000
    good = [trial(0, 1, 2, 1, events=100, clock_ns=100_500_000), trial(1, 1, 2, 1, events=99, clock_ns=99_000_000)]
    assert hooks.perf_check(good, period) == ("ok", "", 199)
    bad = [trial(0, 1, 2, 1, events=50, clock_ns=100_000_000)]
    status, reason, expected = hooks.perf_check(bad, period)
    assert status == "invalid" and expected == 100 and "50 events, 100 expected" in reason


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
    ctx = make_ctx(tmp_path, {"hooks": ["fentry", "tracepoint"], "variants": ["body"]})
    rows = list(hooks.run(ctx))
    assert [r["hook"] for r in rows] == ["fentry", "tracepoint"]  # the suite goes on
    for r in rows:
        assert r["status"] == status and "Operation not permitted" in r["reason"]
        assert schema.validate(r) == []


def test_fake_helper_records_become_rows(tmp_path):
    out = "".join(json.dumps(r) + "\n" for r in records())
    fake_helper(tmp_path, 0, "", stdout=out)
    ctx = make_ctx(tmp_path, {"hooks": ["raw_tp"], "variants": ["empty"]})
    rows = list(hooks.run(ctx))
    assert [r["method"] for r in rows] == ["wall_abba", "cpu_abba", "talk_stime", "talk_jiffies", "bpf_stats"]
    assert all(r["status"] == "ok" for r in rows)


def test_unknown_hook_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown hooks"):
        hooks.Suite(make_ctx(tmp_path, {"hooks": ["kprobe", "nope"]}))


def test_sample_check_against_the_ring_buffer_count():
    counts = [{"trial": 0, "events": 90, "samples": 88, "lost": 2, "clock_ns": 100_000_000},
              {"trial": 1, "events": 75, "samples": 75, "lost": 0, "clock_ns": 100_000_000}]
    assert hooks.sample_check(counts) == ("ok", "", 165, 165)
    assert hooks.delivered_pct(counts, 1_000_000) == pytest.approx(82.5)
    bad = counts + [{"trial": 2, "events": 10, "samples": 12, "lost": 0, "clock_ns": 1}]
    status, reason, events, samples = hooks.sample_check(bad)
    assert status == "invalid" and "10 events" in reason and "12 samples" in reason and samples == 177
