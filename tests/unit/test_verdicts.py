"""Properties of the claim decision (lab/analysis/claims.py, lab/analysis/verdicts.py), checked with hypothesis on
frames made with the agent's own row builder and on the recorded host run: a verdict is a function
of the rows its claim names and nothing else."""

from __future__ import annotations

import random

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_claims import HOST_RUN, SPEC, _manifest_run, frame, row, tool

from lab.analysis import claims, expected
from lab.results import aggregate, stats
from lab.results.store import load_runs

H, N = claims.HOLDS, claims.NOT_MEASURABLE
CLAIM4 = [c for c in SPEC if c["id"] == 4]
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

side = st.tuples(st.floats(20, 600), st.integers(2, 8), st.floats(0.001, 0.4), st.integers(0, 10_000),
                 st.sampled_from(["ok", "ok", "ok", "invalid", "unsupported"]))


def rows_of(sides: list[tuple]) -> list[dict]:
    out = []
    for i, (hook, (center, n, spread, seed, status)) in enumerate(zip(["xdp", "xdp_drv", "socket_filter"], sides,
                                                                      strict=True)):
        r = row(hook, center, n=n, seed=seed, spread=spread, _line=i + 1)
        if status != "ok":
            r.update(status=status, reason=f"{status}: refused")
        out.append(r)
    return out


def outcome(vs: list[claims.ClaimVerdict]) -> list[dict]:
    return [v.json() for v in vs]


@FAST
@given(st.lists(side, min_size=3, max_size=3), st.integers(0, 2))
def test_removing_a_row_never_turns_not_measurable_into_holds(sides, drop):
    rows = rows_of(sides)
    before = claims.evaluate(frame(rows), CLAIM4)[0].verdict
    after = claims.evaluate(frame(rows[:drop] + rows[drop + 1:]), CLAIM4)
    assert not (before == N and after and after[0].verdict == H)


@FAST
@given(st.lists(side, min_size=3, max_size=3), st.lists(side, min_size=3, max_size=3))
def test_unrelated_claims_and_rows_never_change_a_verdict(sides, others):
    rows = rows_of(sides)
    alone = claims.evaluate(frame(rows), CLAIM4)
    unrelated = [dict(r, hook={"xdp": "kprobe", "xdp_drv": "fentry", "socket_filter": "tracepoint"}[r["hook"]],
                      _line=r["_line"] + 10) for r in rows_of(others)]
    together = claims.evaluate(frame(rows + unrelated), SPEC)
    assert outcome(alone) == outcome([v for v in together if v.claim == 4])


@FAST
@given(st.lists(side, min_size=3, max_size=3), st.randoms(use_true_random=False))
def test_shuffling_rows_changes_nothing(sides, rnd):
    rows = rows_of(sides) + rows_of([(s[0] * 1.1, *s[1:]) for s in sides])
    for i, r in enumerate(rows):
        r["_line"] = i + 1
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    assert outcome(claims.evaluate(frame(rows), CLAIM4)) == outcome(claims.evaluate(frame(shuffled), CLAIM4))


def _host() -> pd.DataFrame:
    return aggregate.rows_frame(load_runs([HOST_RUN]))


def test_recorded_rows_in_any_order_give_the_same_verdicts():
    df = _host()
    shuffled = df.sample(frac=1.0, random_state=random.Random(7).randrange(1 << 30))
    assert outcome(claims.evaluate(df, SPEC)) == outcome(claims.evaluate(shuffled, SPEC))


def test_a_part_verdict_does_not_move_when_other_suites_and_claims_are_added():
    clear = [row("xdp", 100, seed=1), row("xdp_drv", 150, seed=2), row("socket_filter", 300, seed=3)]
    alone = claims.evaluate(frame(clear), CLAIM4)[0]
    df = pd.concat([frame(clear), _host().assign(group=frame(clear)["group"].iloc[0])], ignore_index=True)
    df = df[~((df["suite"] == "hooks") & df["hook"].isin(["xdp", "xdp_drv", "socket_filter"]) & (df["run"] != "r1"))]
    together = next(v for v in claims.evaluate(df, SPEC) if v.claim == 4)
    assert [(p.verdict, p.q) for p in alone.parts] == [(p.verdict, p.q) for p in together.parts]


@FAST
@given(st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=1, max_size=8))
def test_holm_never_lowers_a_p_value(ps):
    assert all(q is None or q >= p for p, q in zip(ps, stats.holm(ps), strict=True))


@FAST
@given(st.integers(0, 2), st.lists(st.floats(1, 9), min_size=8, max_size=8))
def test_a_tool_asked_for_and_missing_never_lets_the_claim_hold(drop, overhead):
    names = ["runqlat", "vfsstat", "biolatency"]
    rows = [dict(tool(n, overhead), _line=i + 1) for i, n in enumerate(names)]
    run = _manifest_run(rows[:drop] + rows[drop + 1:], names)
    v = claims.evaluate(aggregate.rows_frame([run]), [c for c in SPEC if c["id"] == 9], asked=expected.asked([run]))
    assert v[0].verdict == N


# the playbook parameter that sets a part's trials per side, by what its side a selects
TRIALS = (({"suite": "hooks", "method": "kernel_batch"}, "hooks", "batch_trials", 30),
          ({"suite": "hooks", "hook": "perf_event"}, "hooks", "perf_trials", 6),
          ({"suite": "hooks"}, "hooks", "trials", 10), ({"suite": "maps"}, "maps", "trials", 5),
          ({"suite": "tools"}, "tools", "trials", 10))


def _trials(sel: dict, suites: dict) -> int:
    for want, suite, key, default in TRIALS:
        if all(sel.get(k) == v for k, v in want.items()):
            return int(suites[suite].get(key, default))
    raise AssertionError(sel)


def test_the_default_playbook_sizes_trials_so_every_tested_part_can_be_decided():
    from lab.results import selectors
    from lab.run import playbooks

    suites = playbooks.load("default").suites
    empty = pd.DataFrame(columns=["status", "suite", "hook", "freq_hz", "perf_event", "tool", "nkeys", "max_entries"])
    short = []
    for c in SPEC:
        for role in ("decides", "context"):
            specs = [p for p in c["parts"] if p.role == role and p.timing and p.relation != "grows_with_vcpus"]
            concrete = [(p, cp) for p in specs for cp in selectors.expand(p, empty, expected.values(p.expect, suites))]
            for p, cp in concrete:
                n = _trials(cp.a, suites)
                floor = stats.smallest_p("mannwhitney", n, n) if p.relation != "between" else stats.smallest_p(
                    p.test, n)
                if floor is None or floor >= stats.ALPHA / len(concrete):
                    short.append((c["id"], cp.name, n, len(concrete)))
    assert short == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000))
def test_removing_a_recorded_row_never_turns_not_measurable_into_holds(pick):
    runs = load_runs([HOST_RUN])
    before = {v.claim: v.verdict for v in claims.evaluate(aggregate.rows_frame(runs), SPEC,
                                                           asked=expected.asked(runs))}
    runs[0].rows.pop(pick % len(runs[0].rows))
    after = {v.claim: v.verdict for v in claims.evaluate(aggregate.rows_frame(runs), SPEC,
                                                          asked=expected.asked(runs))}
    assert not [c for c, v in before.items() if v == N and after.get(c) == H]
