"""lab/analysis/claims.py and lab/analysis/verdicts.py: the decision, one verdict pinned per test, on rows recorded
from real runs (host, a 6.12 TCG guest, a 6.12 icount guest; gated on read like every reader's) and
on small frames built with the agent's own row builder."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from lab.agent.common import timing_fields
from lab.analysis import claims, expected
from lab.report import page as report
from lab.results import aggregate
from lab.results.store import LoadedRun, load_runs

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "runs"
HOST_RUN = FIXTURES / "20261127T053143Z-6.18.44-fc-v782-ee1e"
TCG_RUN = FIXTURES / "20261127T055106Z-6.12.117_deb12-amd64-f721"
ICOUNT_RUN = ROOT / "tests" / "fixtures" / "icount" / "20261207T081111Z-6.12.118_deb12-amd64-0962"
SPEC = claims.parse_claims(report.talk_data())
H, F, INC, N = claims.HOLDS, claims.FAILS, claims.INCONCLUSIVE, claims.NOT_MEASURABLE


def verdicts(run_dirs: list[Path], spec: list | None = None) -> dict[int, claims.ClaimVerdict]:
    runs = load_runs(run_dirs)
    out = claims.evaluate(aggregate.rows_frame(runs), spec or SPEC, asked=expected.asked(runs))
    assert len({v.group for v in out}) == 1
    return {v.claim: v for v in out}


def part(v: claims.ClaimVerdict, prefix: str) -> claims.Part:
    return next(p for p in v.parts if p.name.startswith(prefix))


def empty_variant(spec: list[dict]) -> list[dict]:
    """The claims with variant body read as empty (the recorded icount run measured empty only)."""
    def sw(sel: dict | None) -> dict | None:
        return {**sel, "variant": "empty"} if sel and sel.get("variant") == "body" else sel
    return [dict(c, parts=[claims.PartSpec(**{**p.__dict__, "a": sw(p.a), "b": sw(p.b)}) for p in c["parts"]])
            for c in spec]


@pytest.fixture(scope="module")
def host() -> dict[int, claims.ClaimVerdict]:
    return verdicts([HOST_RUN])


@pytest.fixture(scope="module")
def icount() -> dict[int, claims.ClaimVerdict]:
    return verdicts([ICOUNT_RUN], empty_variant(SPEC))


# ---------------------------------------------------------------------------------------------
# the recorded host run (kprobe and fentry refused by this kernel; 3-4 trials a side)


def test_host_claim1_is_not_measurable(host):
    assert host[1].verdict == N


def test_host_claim1_names_the_refusal(host):
    assert "Operation not permitted" in part(host[1], "fentry < kprobe (kernel_batch)").reason


def test_host_claim1_says_the_refusal_in_one_plain_sentence(host):
    assert "fentry: this kernel refused it (Operation not permitted, EPERM)" in host[1].reason


def test_host_open_path_tracepoint_is_gated_on_read(host):
    assert "gated on read: interval [512.4, 7694.2]" in part(host[1], "open path: tracepoint").reason


def test_host_claim3_keeps_the_refused_hw_event_as_a_part(host):
    assert part(host[3], "program cost at a lower frequency < at the next higher [perf_event=hw").verdict == N


def test_host_claim4_rows_are_gated(host):
    assert host[4].verdict == N


def test_host_map_part_says_how_many_trials_would_decide(host):
    assert "needs >= 4 trials per side (now 3 vs 3" in part(host[6], "lookup: keys spread").reason


def test_host_collision_sides_share_keys_count_and_map_size(host):
    coll = part(host[6], "lookup: keys spread")
    df = aggregate.rows_frame(load_runs([HOST_RUN]))
    df = df[df["_file"] == "maps.jsonl"].set_index("_line")
    ra = df.loc[[int(r.split(":")[-1]) for r in coll.rows_a]]
    rb = df.loc[[int(r.split(":")[-1]) for r in coll.rows_b]]
    assert [(set(ra[c]), len(set(ra[c]))) for c in ("operation", "nkeys", "max_entries", "flags")] == \
        [(set(rb[c]), 1) for c in ("operation", "nkeys", "max_entries", "flags")]


def test_host_memlock_claim_holds(host):
    assert host[7].verdict == H


def test_host_percpu_claim_needs_another_vcpu_count(host):
    assert "one vCPU count (2)" in host[8].reason


def test_host_tool_claim_names_the_refused_tool(host):
    assert "unsupported" in part(host[9], "0 < overhead < 10% [tool=vfsstat]").reason


def test_host_tool_part_needs_more_trials(host):
    assert "needs >= 6 trials (now 2" in part(host[9], "0 < overhead < 10% [tool=runqlat]").reason


def test_rows_behind_each_side_are_named(host):
    p = part(host[7], "memlock reported")  # the recorded run predates the charge: memlock decides
    assert p.rows_a and p.rows_b and all(r.startswith(HOST_RUN.name + "/maps.jsonl:") for r in p.rows_a + p.rows_b)


# ---------------------------------------------------------------------------------------------
# plain TCG and instruction counting


@pytest.mark.parametrize("cid", [1, 2, 4, 5, 6, 9])
def test_tcg_run_never_decides_timing(cid):
    assert verdicts([TCG_RUN])[cid].reason == "TCG: pipeline checked, timing not representative"


def test_tcg_run_decides_memory():
    assert verdicts([TCG_RUN])[7].verdict == H


def test_icount_claim1_holds_in_instructions(icount):
    assert (icount[1].verdict, icount[1].unit) == (H, "insn")


def test_icount_part_is_labelled_as_instructions(icount):
    assert part(icount[1], "tracepoint < kprobe (kernel_batch)").reason.startswith("in guest instructions (emulated)")


def test_icount_open_path_is_not_compared_value_against_value(icount):
    assert "no determinism tolerance" in part(icount[1], "open path: tracepoint").reason  # 1.3-11% apart


def test_icount_part_has_no_p_value(icount):
    assert part(icount[2], "kprobe < kretprobe (kernel_batch)").p is None


def test_icount_row_beyond_the_tolerance_is_not_measurable():
    run = load_runs([ICOUNT_RUN])[0]
    for r in run.rows:
        if r["hook"] == "fentry" and r["method"] == "kernel_batch":
            r["samples"] = [s * (1.01 if i == 0 else 1.0) for i, s in enumerate(r["samples"])]
    v = claims.evaluate(aggregate.rows_frame([run]), empty_variant(SPEC)[:1], asked=expected.asked([run]))[0]
    assert "beyond the determinism tolerance 0.50%" in part(v, "fentry < kprobe (kernel_batch)").reason


def test_sides_in_different_units_are_not_measurable():
    rows = [row("xdp", 100, seed=1, figure_unit="insn"), row("xdp_drv", 150, seed=2),
            row("socket_filter", 300, seed=3)]
    assert "never compared" in part(claim4(rows), "xdp <").reason


# ---------------------------------------------------------------------------------------------
# small frames made with the agent's own row builder


def row(hook: str, center: float, n: int = 8, accel: str = "host", seed: int = 1, spread: float = 0.01,
        run: str = "r1", **extra) -> dict:
    rng = random.Random(seed)
    samples = [rng.gauss(center, center * spread) for _ in range(n)]
    return {"schema": 1, "run_id": run, "suite": "hooks", "kernel": "6.1.0", "accelerator": accel,
            "cpu_model": "cpu", "vcpus": 2, "status": "ok", "reason": "", "time": "2025-01-01T00:00:00+00:00",
            "hook": hook, "attach_point": hook, "variant": "body", "run": run, "_file": "hooks.jsonl",
            "_line": seed, **timing_fields("wall_abba", samples, 1000), **extra}


def frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["emulated"] = df["accelerator"] == "tcg"
    if "figure_unit" not in df:
        df["figure_unit"] = "ns"
    df["figure_unit"] = df["figure_unit"].fillna("ns")
    df["group"] = [aggregate.group_label(*k) for k in df[list(aggregate.GROUP_KEYS)].itertuples(index=False)]
    return df


def claim4(rows: list[dict]) -> claims.ClaimVerdict:
    return claims.evaluate(frame(rows), [c for c in SPEC if c["id"] == 4])[0]


def test_clear_difference_holds():
    v = claim4([row("xdp", 100, seed=1), row("xdp_drv", 150, seed=2), row("socket_filter", 300, seed=3)])
    assert v.verdict == H


def test_opposite_difference_does_not_hold():
    v = claim4([row("xdp", 100, seed=1), row("xdp_drv", 400, seed=2), row("socket_filter", 300, seed=3)])
    assert "the opposite" in part(v, "xdp_drv").reason


def test_same_cost_within_the_margin_is_not_cheaper():
    v = claim4([row("xdp", 100, seed=1), row("xdp_drv", 300.5, seed=2), row("socket_filter", 300, seed=3)])
    assert "not cheaper" in part(v, "xdp_drv").reason


def test_three_trials_a_side_say_how_many_would_decide():
    v = claim4([row("xdp", 100, n=3, seed=1), row("xdp_drv", 150, n=3, seed=2), row("socket_filter", 300, n=3, seed=3)])
    assert "needs >= 4 trials per side (now 3 vs 3" in part(v, "xdp <").reason


def test_holm_q_is_within_the_claim():
    v = claim4([row("xdp", 100, seed=1), row("xdp_drv", 150, seed=2), row("socket_filter", 300, seed=3)])
    assert part(v, "xdp <").family == 2


def test_a_missing_part_makes_the_claim_not_measurable():
    assert claim4([row("xdp", 100, seed=1), row("socket_filter", 300, seed=3)]).verdict == N


def test_a_failed_row_is_named():
    bad = dict(row("socket_filter", 300, seed=3), status="invalid", reason="events 3 != triggers 4")
    v = claim4([row("xdp", 100, seed=1), row("xdp_drv", 150, seed=2), bad])
    assert "socket_filter wall_abba: invalid (events 3 != triggers 4)" in v.reason


def test_runs_are_the_unit_when_pooled():
    rows = [row("xdp", 100, seed=1, run="r1"), row("xdp", 100, seed=2, run="r2"),
            row("xdp_drv", 150, seed=3, run="r1"), row("socket_filter", 300, seed=4, run="r1"),
            row("socket_filter", 300, seed=5, run="r2")]
    p = part(claim4(rows), "xdp <")
    assert (p.unit, p.n_a, p.n_b, p.verdict) == ("runs", 2, 2, INC)


def tool(name: str, samples: list[float], **extra) -> dict:
    """A tools row as the agent writes it (every one carries its resource; a user's tool's is "user")."""
    r = row("x", 1, seed=len(samples))
    r.update(suite="tools", tool=name, method="throughput_abba", overhead_samples=samples, resource="cpu")
    r.update(extra)
    return r


INSIDE = [3.0, 4.0, 5.0, 4.5, 3.5, 4.2, 3.8, 4.1]


def test_tool_inside_the_bound_holds():
    v = claims.evaluate(frame([tool("a", INSIDE)]), [c for c in SPEC if c["id"] == 9])[0]
    assert v.verdict == H


def test_tool_spanning_the_bound_is_inconclusive():
    wide = [2.0, 14.0, 8.0, 3.0, 13.0, 9.0, 7.0, 12.0]  # about 8% [2, 14]: not shown below 10%
    v = claims.evaluate(frame([tool("b", wide)]), [c for c in SPEC if c["id"] == 9])[0]
    assert v.verdict == INC


def test_tool_above_the_bound_does_not_hold():
    v = claims.evaluate(frame([tool("a", [x + 20 for x in INSIDE])]), [c for c in SPEC if c["id"] == 9])[0]
    assert "above the range" in v.reason


def _manifest_run(rows: list[dict], tools: list[str]) -> LoadedRun:
    rows = [{k: v for k, v in r.items() if k != "run"} for r in rows]
    return LoadedRun(Path("r1"), {"run_id": "r1", "suites": {"tools": {"tools": tools}}}, rows)


def test_tools_asked_for_but_lost_make_the_claim_not_measurable():
    err = {k: v for k, v in tool("a", INSIDE).items() if k not in ("tool", "method", "overhead_samples")}
    err.update(status="error", reason="agent died: out of memory", _line=9)
    run = _manifest_run([tool("runqlat", INSIDE), tool("vfsstat", INSIDE), err], ["runqlat", "vfsstat", "biolatency"])
    v = claims.evaluate(aggregate.rows_frame([run]), [c for c in SPEC if c["id"] == 9], asked=expected.asked([run]))[0]
    assert "error: agent died" in part(v, "0 < overhead < 10% [tool=biolatency]").reason


def perf(freq: int, loss: float, seed: int, per_sample: float = 500.0) -> dict:
    r = row("perf_event", 1000, seed=seed)
    rng = random.Random(seed)
    r.update(method="throughput_abba", freq_hz=freq, perf_event="sw",
             loss_samples=[rng.gauss(loss, 0.2) for _ in range(8)],
             minus_none_samples=[rng.gauss(per_sample, per_sample * 0.05) for _ in range(8)])
    return r


CLAIM3 = [c for c in SPEC if c["id"] == 3]


def test_series_expands_into_consecutive_frequencies():
    v = claims.evaluate(frame([perf(99, 1, 1), perf(999, 5, 2), perf(9999, 30, 3)]), CLAIM3)[0]
    assert [p.name.split("[")[1] for p in v.parts if p.role == "decides"] == [
        "perf_event=sw, freq_hz 99 < 999]", "perf_event=sw, freq_hz 999 < 9999]"]


def test_program_cost_per_second_grows_with_the_frequency():
    assert claims.evaluate(frame([perf(99, 1, 1), perf(999, 5, 2), perf(9999, 30, 3)]), CLAIM3)[0].verdict == H


def test_program_cost_is_the_body_minus_the_interrupt():
    v = claims.evaluate(frame([perf(99, 1, 1, per_sample=5000), perf(999, 5, 2, per_sample=50)]), CLAIM3)[0]
    assert v.verdict == F  # the loss grows, the program's own share (0.05% -> 0.005% of a CPU) does not


def test_close_losses_are_shown_not_to_differ_in_the_context_part():
    v = claims.evaluate(frame([perf(99, 1, 1), perf(999, 1.05, 2)]), CLAIM3)[0]
    assert part(v, "loss (interrupt included)").verdict == F


def test_talk_yaml_cheaper_parts_carry_a_margin():
    assert all(p.margin for c in SPEC for p in c["parts"] if p.relation in ("less", "equal") and p.timing)


def test_malformed_part_is_refused():
    with pytest.raises(ValueError):
        claims.PartSpec.parse({"name": "x", "a": {}, "metric": "bogus", "relation": "less", "test": "exact"})


def test_contention_on_one_vcpu_says_why():
    df = aggregate.rows_frame(load_runs([HOST_RUN]))
    df["vcpus"] = 1
    df["group"] = [aggregate.group_label(*k) for k in df[list(aggregate.GROUP_KEYS)].itertuples(index=False)]
    v = claims.evaluate(df, [c for c in SPEC if c["id"] == 5])[0]
    why = part(v, "hash: disjoint").reason
    assert why.startswith("1 vCPU here: needs at least 2 for concurrency; decided on --kernel host"), why


def test_a_users_tool_never_decides_claim_9():
    rows = [tool("a", INSIDE), tool("mine", [x + 20 for x in INSIDE], resource="user")]
    v = claims.evaluate(frame(rows), [c for c in SPEC if c["id"] == 9])[0]
    assert [p.name for p in v.parts] == ["0 < overhead < 10% [tool=a]"] and v.verdict == "holds"
