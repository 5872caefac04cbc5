"""lab/results/readgates.py: plausibility gates on read, on recorded runs (made before the gates existed) and on
rows built with the agent's own row builder."""

from __future__ import annotations

from pathlib import Path

from lab.agent.common import timing_fields
from lab.agent.hooks import gates as hookgates
from lab.results import aggregate, readgates
from lab.results.store import load_runs

ROOT = Path(__file__).resolve().parents[2]
HOST_RUN = ROOT / "tests" / "fixtures" / "runs" / "20261127T053143Z-6.18.44-fc-v782-ee1e"
ICOUNT_RUN = ROOT / "tests" / "fixtures" / "icount" / "20261207T081111Z-6.12.118_deb12-amd64-0962"


def hook_row(samples: list[float], method: str = "wall_abba", accel: str = "host", **extra) -> dict:
    return {"suite": "hooks", "status": "ok", "reason": "", "hook": "raw_tp", "attach_point": "x", "variant": "body",
            "per": "openat+close", "accelerator": accel, **timing_fields(method, samples, 1000), **extra}


def frame(run: Path):
    return aggregate.load_frame([run])[0]


def test_no_ok_row_of_an_old_run_has_a_negative_added_cost():
    df = frame(HOST_RUN)
    assert df[(df["status"] == "ok") & (df["ns_median"] < 0) & (df["method"] != "bpf_stats")].empty


def test_a_gated_row_keeps_its_figures():
    df = frame(HOST_RUN)
    r = df[(df["hook"] == "socket_filter") & (df["method"] == "wall_abba")].iloc[0]
    assert (r["status"], round(r["ns_median"], 1)) == ("inconclusive", -555.4)


def test_negative_added_cost_inside_its_interval_is_gated():
    assert "is negative" in readgates.problems([hook_row([-30.0, -10.0, 5.0, 20.0, -12.0])])[0][0]


def test_interval_wider_than_the_median_is_gated():
    assert "wider than its median" in readgates.problems([hook_row([10.0, 100.0, 200.0, 20.0])])[0][0]


def _stats(body: list[float], empty: list[float]) -> list[dict]:
    return [hook_row(body, method="bpf_stats", runs_per_op=1.0),
            dict(hook_row(empty, method="bpf_stats", runs_per_op=1.0), variant="empty")]


def test_added_cost_below_the_program_run_time_is_gated():
    rows = [hook_row([50.0, 51.0, 49.0, 50.5])] + _stats([130.0, 131.0], [30.0, 30.0])
    assert "below the program's own run time 100.5" in readgates.problems(rows)[0][0]


def test_added_cost_above_the_program_run_time_passes():
    rows = [hook_row([150.0, 151.0, 149.0, 150.5])] + _stats([130.0, 131.0], [30.0, 30.0])
    assert readgates.problems(rows) == {}


def test_the_program_run_time_is_net_of_the_stats_clock_reads():
    rows = [hook_row([50.0, 51.0, 49.0, 50.5]), hook_row([100.0, 101.0], method="bpf_stats", runs_per_op=1.0)]
    assert readgates.problems(rows) == {}  # no empty variant: the raw run time is mostly the stats' own cost


def test_monotone_trend_across_trials_is_gated():
    assert "rise monotonically" in readgates.problems([hook_row([100.0, 104.0, 108.0, 112.0, 116.0, 120.0])])[0][0]


def test_icount_tick_methods_are_gated():
    df = frame(ICOUNT_RUN)
    assert set(df[df["method"].isin(["talk_stime", "talk_jiffies"])]["status"]) == {"inconclusive"}


def test_icount_kernel_batch_rows_pass_the_determinism_gate():
    df = frame(ICOUNT_RUN)
    assert set(df[df["method"] == "kernel_batch"]["status"]) == {"ok"}


def test_icount_trials_beyond_the_tolerance_are_gated():
    r = hook_row([1000.0, 1000.0, 1010.0, 1000.0, 1000.0, 1000.0, 999.0, 1000.0], method="kernel_batch",
                 accel="icount")
    assert readgates.problems([r])[0] == ["trials differ by 1.100% in guest instructions, beyond the determinism "
                                      "tolerance 0.50% of kernel_batch"]


def test_methods_without_a_tolerance_are_not_checked_for_determinism():
    r = hook_row([1000.0, 1000.0, 1010.0, 1000.0], method="throughput_abba", accel="icount")
    assert readgates.problems([r]) == {}


def test_rows_of_other_suites_are_left_alone():
    r = dict(hook_row([-5.0, -4.0, -6.0]), suite="maps")
    assert readgates.gate_rows([r])[0]["status"] == "ok"


def test_the_reason_says_it_was_gated_on_read():
    out = readgates.gate_rows([hook_row([-30.0, -10.0, 5.0, 20.0, -12.0])])[0]
    assert out["reason"].startswith("gated on read: added cost")


def test_gating_copies_rather_than_changes_the_loaded_rows():
    rows = [hook_row([-30.0, -10.0, 5.0, 20.0, -12.0])]
    readgates.gate_rows(rows)
    assert rows[0]["status"] == "ok"


def test_map_rows_in_instructions_beyond_the_tolerance_are_gated():
    r = dict(hook_row([1000.0, 1000.0, 1030.0], accel="icount", method=hookgates.MAP_KERNEL_METHODS[0]),
             suite="maps")
    assert readgates.gate_rows([r])[0]["status"] == "inconclusive"


def test_every_reader_gets_gated_rows():
    runs = load_runs([HOST_RUN])
    assert aggregate.rows_frame(runs)["status"].tolist().count("inconclusive") == 15
