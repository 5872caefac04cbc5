"""lab/agent/hooks/precision.py: trials added until the half-width is reached, the budget or the cap
stops them, and the row says which; bad parameters are named."""

from lab.agent.hooks import precision
from lab.agent.hooks import suite as hooks


def trial(added):
    return {"kind": "trial", "base_ns": 1000.0, "hook_ns": 1000.0 + added}


def test_rounds_are_added_until_the_half_width_is_reached():
    rounds = iter([[trial(100), trial(101), trial(99)]] * 10)
    recs, f = precision.widen(lambda: next(rounds), lambda t: [r["hook_ns"] - r["base_ns"] for r in t],
                              [{"kind": "setup"}, trial(100), trial(102), trial(98)], target=5.0)
    assert f["stopped_on"] == "halfwidth" and f["trials_used"] == 6 and f["halfwidth_reached"] <= 5.0
    assert len([r for r in recs if r["kind"] == "trial"]) == 6 and recs[0] == {"kind": "setup"}


def test_the_cap_and_the_budget_stop_a_row_that_never_narrows():
    wide = [trial(10), trial(500), trial(1000)]
    _, f = precision.widen(lambda: wide, lambda t: [r["hook_ns"] - r["base_ns"] for r in t], wide, target=1.0,
                           max_trials=12)
    assert f["stopped_on"] == "max_trials" and f["trials_used"] == 12 and f["halfwidth_reached"] > 1.0
    ticks = iter(range(0, 10000, 50))
    _, f = precision.widen(lambda: wide, lambda t: [r["hook_ns"] - r["base_ns"] for r in t], wide, target=1.0,
                           budget_s=120, clock=lambda: next(ticks))
    assert f["stopped_on"] == "budget" and f["trials_seconds"] <= 120 + 50


def test_bad_precision_parameters_are_named():
    problems = hooks.check({"halfwidth": 0, "budget_s": -1, "max_trials": 2.5})
    assert any("halfwidth must be a per cent" in p for p in problems)
    assert any("budget_s must be a positive integer" in p for p in problems)
    assert any("max_trials must be a positive integer" in p for p in problems)
    assert hooks.check({"halfwidth": 5, "budget_s": 60}) == []
