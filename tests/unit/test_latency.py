"""Latency percentiles (lab/agent/latency/): the percentile rule against known distributions, the
interval rule over ABBA pairs, the workloads' parsers on the programs' real output, the stop rule,
and the host side (schema, gates, compare, report) on rows recorded from real host runs."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lab.agent import schema
from lab.agent.latency import abba, quantiles, workloads
from lab.agent.latency import hooks as lathooks
from lab.analysis import compare
from lab.report import latency as latreport
from lab.results import latency, stats
from lab.results.aggregate import rows_frame
from lab.results.store import load_runs

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "latency"
RUNS = sorted((FIX / "runs").iterdir())


# ---- the percentile rule ----

def test_nearest_rank_percentiles_of_a_known_distribution():
    x = list(range(1, 100001))  # 1..100000: percentile p is exactly p% of 100000
    random.Random(3).shuffle(x)
    f = quantiles.figures(x)
    assert (f["n"], f["p50"], f["p90"], f["p99"], f["p999"], f["max"]) == (100000, 50000, 90000, 99000, 99900, 100000)
    assert f["q"] == [50000, 75000, 90000, 95000, 99000, 99500, 99900, 99950, 99990]
    assert quantiles.percentile([7], 99.9) == 7 and quantiles.percentile([], 50) is None


def test_percentiles_of_an_exponential_sample_are_near_its_quantiles():
    rng = np.random.default_rng(11)
    x = rng.exponential(1000.0, 200000).tolist()  # quantile p: -1000 ln(1 - p)
    f = quantiles.figures(x)
    for name, lv in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)):
        true = -1000.0 * math.log(1 - lv / 100.0)
        # nearest rank p of n draws: its rank's binomial spread, 4 sigma (deterministic: fixed seed)
        sd = math.sqrt(lv / 100 * (1 - lv / 100) / 200000) / (1 - lv / 100)  # d quantile / d p of exp
        assert abs(f[name] - true) <= 4 * 1000.0 * sd + 1, (name, f[name], true)


def test_p999_needs_ten_thousand_requests_and_fewer_are_refused():
    assert quantiles.MIN_REQUESTS == 10000 and quantiles.needed(99.9) == 10000 and quantiles.needed(99) == 1000
    assert quantiles.short_of(10000) is None
    assert "p99.9 needs at least 10000" in quantiles.short_of(9999)
    assert quantiles.figures(range(9999))["q"][6] is None  # p99.9 not drawn either
    pairs = [abba.pair_of("AB", range(9999), range(20000)) for _ in range(3)]
    _, (status, reason) = abba.row_fields(pairs, "open", "x", "call", "co")
    assert status == "invalid" and "9999 requests" in reason


def test_the_interval_over_pairs_covers_the_true_change():
    """The host's rule (stats.latency_change: order statistics of the median over pairs) on pairs drawn
    from a known distribution of changes (median 5%): it covers 5 in at least 95% of 2000 repetitions."""
    rng = np.random.default_rng(5)
    hits = 0
    for _ in range(2000):
        iv = stats.latency_change((5 + 3 * rng.standard_t(3, 10)).tolist())
        hits += iv.low <= 5 <= iv.high
    assert hits / 2000 >= 0.95
    assert stats.latency_change([1, 2, 3, 4, 5, 6]) == stats.median_ci([1, 2, 3, 4, 5, 6])


def test_a_pair_gives_each_percentiles_change_in_percent_of_its_baseline():
    pairs = [abba.pair_of(o, [100] * 10000, [110] * 9990 + [300] * 10) for o in ("AB", "BA", "AB")]
    f, (status, _) = abba.row_fields(pairs, "rr", "sockperf", "request", "co")
    assert status == "ok" and f["requests_per_trial"] == 10000 and f["trials"] == 3
    assert f["latency_p50_change_pct"] == pytest.approx(10) and f["latency_p999_change_pct"] == pytest.approx(10)
    assert f["latency_p99"] == 110 and f["baseline_latency_p99"] == 100
    assert f["latency_p50_change_samples"] == [10.0] * 3


# ---- the workloads' output, recorded from the real programs ----

def test_sockperf_latency_runs_from_the_intended_send_time():
    text = (FIX / "sockperf_full_log.csv").read_text()
    lat = workloads.sockperf_latencies(text, 10000)
    rows = [[float(v) for v in line.split(",")] for line in text.splitlines() if line[:1].isdigit()]
    assert len(lat) == len(rows) == 40
    assert all(ns >= (rx - tx) * 1e9 - 1 for ns, (_, tx, rx, _) in zip(lat, rows, strict=True))  # never below the RTT
    # a stall: slots every 1 ms, messages 2..4 sent late at 5 ms (a burst), each answered 10 us after it left
    log = "\n".join(f"{i}, {tx:.6f}, {tx + 1e-5:.6f}, 5.0" for i, tx in
                    enumerate([0.0, 0.001, 0.005, 0.005, 0.005, 0.005, 0.006]))
    got = workloads.sockperf_latencies(log, 1000)
    assert got == [10000, 10000, 3010000, 2010000, 1010000, 10000, 10000]  # the omitted time is counted


def test_cyclictest_and_fio_outputs_parse():
    cyc = workloads.cyclictest_latencies((FIX / "cyclictest_v.txt").read_text())
    assert len(cyc) == 30 and cyc[0] == 80205 and min(cyc) > 0
    fio = workloads.fio_latencies((FIX / "fio_lat.log").read_text())
    assert len(fio) == 30 and fio[:2] == [3615022, 126819]


def test_bad_latency_parameters_are_named():
    got = abba.check({"latency": "yes", "latency_ops": 500, "latency_workloads": ["web"], "latency_trials": 2,
                      "latency_rates": {"rr": 100}}, workloads.NAMES)
    text = " | ".join(got)
    for part in ("latency must be true", "latency_ops 500", "latency_workloads", "latency_trials must be at least 3",
                 "latency_rates.rr 100"):
        assert part in text, text
    assert abba.check({"latency": True, "latency_trials": 6, "latency_ops": 20000}, workloads.NAMES) == []


# ---- the stop rule ----

def test_pairs_are_added_until_the_p99_change_is_within_the_half_width():
    clock = iter(range(0, 10000, 10))
    rng = random.Random(2)

    def pairs(done):
        return [abba.pair_of("AB", [1000] * 10, [1000 + rng.randint(40, 60)] * 10)]

    got, f = abba.collect(pairs, 6, target=1.0, budget_s=1000, clock=lambda: next(clock))
    assert f["stopped_on"] == "halfwidth" and len(got) >= 6 and f["halfwidth_reached"] <= 1.0
    assert f["halfwidth_of"] == "latency_p99"
    clock = iter(range(0, 10000, 100))
    got, f = abba.collect(pairs, 6, target=0.001, budget_s=1000, clock=lambda: next(clock))
    assert f["stopped_on"] == "budget" and len(got) == 10  # 100 s per pair: an 11th would pass the 1000 s
    got, f = abba.collect(pairs, 4)
    assert len(got) == 4 and f == {}


def test_under_icount_latency_rows_are_unsupported():
    class Ctx:
        accelerator = "icount"

        def row(self, status="ok", reason="", **f):
            return dict(f, status=status, reason=reason)

    class Suite:
        ctx, path = Ctx(), "/dev/null"

    r = lathooks.one(Suite(), "raw_tp", "body", ("raw_tp", "raw_tp sys_enter"), 6, 20000, None)
    assert r["status"] == "unsupported" and "a wait is not time" in r["reason"] and r["method"] == "latency_abba"


# ---- the host side, on rows recorded from real host runs ----

def _frame(dirs):
    return rows_frame(load_runs(dirs))


def test_recorded_rows_validate_and_pass_the_gates():
    df = _frame(RUNS)
    rows = [json.loads(line) for d in RUNS for f in d.glob("*.jsonl") for line in f.read_text().splitlines()]
    assert rows and all(schema.validate(r) == [] for r in rows)
    lat = df[latency.is_latency(df)]
    assert set(lat["status"]) == {"ok", "unsupported"}  # kprobe: this kernel refuses it
    ok = lat[lat["status"] == "ok"]
    for _, r in ok.iterrows():
        iv = latency.change(r, "p99")
        assert iv.n == r["trials"] and iv.median == pytest.approx(r["latency_p99_change_pct"])
        xs, ys = latency.curve(r, "tool")
        assert xs[:4] == [50.0, 75.0, 90.0, 95.0] and ys == sorted(ys)


def test_compare_tests_each_percentile_like_any_figure():
    hooks_run = [d for d in RUNS if (d / "hooks.jsonl").exists()]
    df = _frame(hooks_run)
    res = compare.compare(df, df)
    lat = res[res["what"].str.contains("latency_abba")]
    ok = lat[lat["verdict"] != "not comparable"]
    assert set(ok["metric"]) == {"p50 change %", "p90 change %", "p99 change %", "p99.9 change %"}
    assert len(ok) == 8 and set(ok["delta_unit"]) == {"pt"}  # raw_tp and tracepoint x 4 percentiles
    assert set(ok["verdict"]) <= {"no change", "untestable"}  # 4 pairs a side: a run against itself


def test_the_report_has_the_latency_table_and_a_plot_per_workload(tmp_path):
    df = _frame(RUNS)
    got = latreport.build(df, tmp_path)
    assert [p["workload"] for p in got["plots"]] == ["open", "timer"]
    assert all((tmp_path / p["file"]).stat().st_size > 1000 for p in got["plots"])
    cells = {r["cells"][2]: r["cells"] for r in got["table"]["rows"]}
    assert set(cells) == {"raw_tp (body)", "tracepoint (body)", "kprobe (body)", "runqlat"}
    assert "%" in cells["raw_tp (body)"][10] and cells["kprobe (body)"][-2] == "unsupported"
    assert latreport.build(pd.DataFrame(), tmp_path) == {"table": None, "plots": []}


def test_two_back_to_back_host_runs_agree_per_percentile():
    """Two hook-suite latency runs recorded back to back on the shared host (raw_tp, tracepoint, open
    path, --halfwidth 5): compare finds no change in the p50, p90 and p99 changes of either hook."""
    a, b = sorted((FIX / "backtoback").iterdir())
    res = compare.compare(_frame([a]), _frame([b]))
    assert len(res) == 8 and set(res["tested"]) == {True}
    core = res[~res["what"].str.endswith("p99.9")]
    assert set(core["verdict"]) == {"no change"}
    assert (res["verdict"] == "no change").sum() >= 7  # the p99.9 tail of a shared host may move
