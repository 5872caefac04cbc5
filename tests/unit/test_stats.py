"""lab/results/stats.py: the one statistics module (intervals, tests, Benjamini-Hochberg, run as the unit)."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from lab.results import stats


def test_median_interval_needs_three_trials_and_says_so():
    assert stats.median_ci([]).n == 0 and stats.median_ci([]).text() == "no samples"
    for xs in ([5.0], [5.0, 7.0]):
        iv = stats.median_ci(xs)
        assert iv.low is None and iv.high is None and "no interval" in iv.note
        assert "no interval (3 or more needed)" in iv.text()
    iv = stats.median_ci([3.0, 1.0, 2.0])
    assert (iv.median, iv.low, iv.high) == (2.0, 1.0, 3.0)
    assert iv.level == pytest.approx(0.75) and "no 95% interval exists" in iv.note and "75% only" in iv.text()


def test_median_interval_from_order_statistics():
    xs = [float(x) for x in range(1, 11)]  # 10 trials: [x(2), x(9)] covers 1 - 2 * P(B(10, 1/2) <= 1)
    iv = stats.median_ci(xs)
    assert (iv.low, iv.high) == (2.0, 9.0)
    assert iv.level == pytest.approx(1 - 2 * sps.binom.cdf(1, 10, 0.5)) and iv.level >= 0.95
    assert iv.note == "" and "only" not in iv.text()
    big = stats.median_ci(list(range(100)))
    assert big.low < big.median < big.high and big.level >= 0.95
    assert stats.median_ci([1, None, float("nan"), 2, 3]).n == 3  # missing values dropped


def test_between_group_tests():
    lo, hi = [1, 2, 3, 4, 5, 6], [11, 12, 13, 14, 15, 16]
    assert stats.p_difference(lo, hi) < 0.01
    assert stats.p_difference(lo, [1.5, 2.5, 3.5, 4.5, 5.5, 6.5]) > 0.05
    assert stats.p_difference(lo, hi, alternative="less") < stats.p_difference(lo, hi)
    assert stats.p_difference([1, 2, 3], [11, 12, 13], test="welch") < 0.01
    assert stats.p_difference([1], [2]) is None
    assert stats.p_difference([2, 2], [2, 2]) == 1.0
    with pytest.raises(ValueError):
        stats.p_difference(lo, hi, test="ttest")


def test_equivalence_and_one_sample_tests():
    a = [100 + 0.1 * i for i in range(10)]
    b = [100.05 + 0.1 * i for i in range(10)]
    assert stats.p_equivalent(a, b, margin=5) < 0.01  # same within +-5
    assert stats.p_equivalent(a, [150 + x for x in range(10)], margin=5) > 0.5
    assert stats.p_against([5, 6, 7, 8, 9, 10], 0, "greater") < 0.05
    assert stats.p_against([8, 9, 10, 11, 12, 13], 10, "less") > 0.05
    assert stats.p_against([1, 2], 0, "greater") >= 0.25  # 2 trials can never be significant


def test_benjamini_hochberg_keeps_none():
    ps = [0.01, None, 0.04, 0.03, float("nan")]
    qs = stats.bh(ps)
    assert qs[1] is None and qs[4] is None
    assert qs[0] == pytest.approx(0.03) and qs[2] == pytest.approx(0.04) and qs[3] == pytest.approx(0.04)


def test_the_run_is_the_unit_when_a_side_spans_runs():
    one = stats.unit_values({"r1": [1.0, 2.0, 3.0]})
    assert one.unit == "trials" and one.values == [1.0, 2.0, 3.0] and one.runs == 1
    two = stats.unit_values({"r1": [1.0, 2.0, 3.0], "r2": [10.0, 11.0, 12.0, 13.0]})
    assert two.unit == "runs" and two.values == [2.0, 11.5]
    assert stats.unit_values({"r1": [1.0, 3.0]}, force_runs=True).values == [2.0]
    assert math.isnan(stats.relative_pct(1.0, 0.0)) and stats.relative_pct(90.0, 100.0) == pytest.approx(-10.0)


def test_holm_counts_an_untested_part_in_the_family():
    assert stats.holm([0.01, 0.04, None]) == [pytest.approx(0.03), pytest.approx(0.08), None]


def test_smallest_mann_whitney_p_of_three_against_three_is_one_in_twenty():
    assert stats.smallest_p("mannwhitney", 3, 3) == pytest.approx(0.05)


def test_trials_needed_for_a_family_of_five():
    assert stats.trials_needed("mannwhitney", 0.05 / 5) == 5


def test_agent_and_host_compute_the_same_interval():
    """One interval rule on both sides of the wire: the agent's median_ci (what rows carry, and what
    its gates and half-width stops read) and the host's stats.median_ci, fed the same samples."""
    import random

    from lab.agent import common as agent

    rng = random.Random(7)
    for n in [1, 2, 3, 4, 5, 6, 7, 8, 10, 13, 20, 31, 64, 101]:
        for _ in range(5):
            xs = [rng.lognormvariate(5, 0.4) for _ in range(n)]
            med, lo, hi = agent.median_ci(xs)
            host = stats.median_ci(xs)
            assert med == pytest.approx(host.median)
            if host.low is None:
                assert lo is None and hi is None
            else:
                assert (lo, hi) == (host.low, host.high)
            fields = agent.timing_fields("wall_abba", xs, 1000)
            assert (fields["ns_ci_low"], fields["ns_ci_high"]) == (lo, hi)
