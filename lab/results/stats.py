"""The lab's one statistics module (host side). The guest agent emits raw per-trial samples;
every interval, test and multiple-comparison adjustment a report or a comparison shows is computed
here, once.

- Interval of the median: distribution-free, from order statistics (the binomial argument): the
  narrowest [x(k), x(n-k+1)] whose coverage is at least 95%. With 3 to 5 trials no such interval
  exists; [min, max] is given with the coverage it really has (75% for 3 trials). Fewer than 3
  trials: no interval, and the text says so.
- Between two groups: Mann-Whitney U (default) or Welch's t, two-sided for a difference, one-sided
  shifted versions for equivalence (TOST) against a margin.
- Against a constant (a tool's overhead vs 0 % or a bound): Wilcoxon signed-rank (or one-sample t).
- Many tests at once: Benjamini-Hochberg q-values for `results.compare` (many unrelated pairs, a
  false-discovery rate); Holm within one claim (lab/analysis/verdicts.py: a few parts that must all hold).
- Latency percentiles (lab/agent/latency/, method latency_abba): each ABBA pair of trials gives, per
  percentile (p50, p90, p99, p99.9), the change with the tool or hook in % of that pair's baseline
  percentile; its interval is the order-statistics interval of the median above, over the pairs (the
  pair is the unit; no bootstrap). Each trial's percentile is a nearest-rank order statistic of its
  own requests, counted only with at least 10 requests above it (p99.9: 10,000 per arm and trial).
- Pooling: the run is the unit. `unit_values` summarises each run by its median when a side spans
  several runs; the trials themselves are the unit only within one run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

ALPHA = 0.05
LEVEL = 0.95
TESTS = ("mannwhitney", "welch")


def finite(x: Any) -> float | None:
    """x as a finite float, or None (None, NaN, infinities and non-numbers)."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def clean(xs: Sequence[float] | None) -> list[float]:
    """Finite floats of xs (None, NaN and non-numbers dropped)."""
    return [f for f in map(finite, xs or []) if f is not None]


@dataclass(frozen=True)
class Interval:
    """Median of samples with a distribution-free interval; low/high None when there is none."""

    median: float
    low: float | None
    high: float | None
    level: float | None  # the interval's real coverage (>= 0.95 from 6 samples on)
    n: int
    note: str = ""

    def text(self, digits: int = 1, unit: str = "") -> str:
        if self.n == 0:
            return "no samples"
        med = f"{self.median:,.{digits}f}{unit}"
        if self.low is None or self.high is None:
            return f"{med} ({self.note})"
        lvl = "" if self.level is not None and self.level >= LEVEL else f" {self.level:.0%} only"
        return f"{med} [{self.low:,.{digits}f}, {self.high:,.{digits}f}]{lvl}"


def median_ci(samples: Sequence[float] | None, level: float = LEVEL) -> Interval:
    """Median and the order-statistics interval of the median (see the module docstring)."""
    x = np.sort(np.asarray(clean(samples), dtype=float))
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, None, None, None, 0, "no samples")
    med = float(np.median(x))
    if n < 3:
        return Interval(med, None, None, None, n, f"{n} trial{'s' if n > 1 else ''}: no interval (3 or more needed)")
    # largest k with P(B(n, 1/2) <= k-1) <= (1-level)/2: the interval [x(k), x(n-k+1)] (1-based)
    k = 1
    while k + 1 <= n // 2 and sps.binom.cdf(k, n, 0.5) <= (1 - level) / 2:
        k += 1
    coverage = 1 - 2 * float(sps.binom.cdf(k - 1, n, 0.5))
    note = "" if coverage >= level else f"{n} trials: no {level:.0%} interval exists; [min, max] covers {coverage:.0%}"
    return Interval(med, float(x[k - 1]), float(x[n - k]), coverage, n, note)


def latency_change(pair_changes: Sequence[float] | None) -> Interval:
    """A percentile's change with the tool or hook (% of the baseline's), over the ABBA pairs (the
    module docstring's latency rule)."""
    return median_ci(pair_changes)


def spread_pct(iv: Interval) -> float | None:
    """Interval width relative to the median, in %; None without an interval or a median of 0."""
    if iv.low is None or iv.high is None or not iv.median:
        return None
    return (iv.high - iv.low) / abs(iv.median) * 100


def p_difference(a: Sequence[float], b: Sequence[float], test: str = "mannwhitney",
                 alternative: str = "two-sided") -> float | None:
    """p-value that a and b differ (alternative 'less': a below b; 'greater': a above b). None: fewer
    than 2 values on a side."""
    a, b = clean(a), clean(b)
    if len(a) < 2 or len(b) < 2:
        return None
    if test == "mannwhitney":
        if len(set(a) | set(b)) == 1:
            return 1.0
        return float(sps.mannwhitneyu(a, b, alternative=alternative).pvalue)
    if test == "welch":
        if np.std(a) == 0 and np.std(b) == 0:
            diff = np.mean(a) - np.mean(b)
            hit = {"two-sided": diff != 0, "less": diff < 0, "greater": diff > 0}[alternative]
            return 0.0 if hit else 1.0
        return float(sps.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue)
    raise ValueError(f"unknown test {test!r}: one of {', '.join(TESTS)}")


def p_equivalent(a: Sequence[float], b: Sequence[float], margin: float, test: str = "mannwhitney") -> float | None:
    """TOST: p-value that a and b differ by less than `margin` (absolute units) either way. Small p:
    shown equivalent within the margin. None: too few values."""
    a, b = clean(a), clean(b)
    if len(a) < 2 or len(b) < 2 or margin <= 0:
        return None
    lower = p_difference([x + margin for x in a], b, test, "greater")  # a > b - margin
    upper = p_difference([x - margin for x in a], b, test, "less")  # a < b + margin
    if lower is None or upper is None:
        return None
    return max(lower, upper)


def p_against(x: Sequence[float], value: float, alternative: str, test: str = "mannwhitney") -> float | None:
    """One-sample p-value that x lies above ('greater') or below ('less') a constant: Wilcoxon
    signed-rank (rank tests) or one-sample t (welch). None: fewer than 2 values."""
    x = clean(x)
    if len(x) < 2:
        return None
    d = [v - value for v in x]
    if all(v == 0 for v in d):
        return 1.0
    if test == "welch":
        if np.std(d) == 0:
            return 0.0 if (d[0] > 0) == (alternative == "greater") else 1.0
        return float(sps.ttest_1samp(d, 0.0, alternative=alternative).pvalue)
    return float(sps.wilcoxon(d, alternative=alternative, zero_method="zsplit").pvalue)


def bh(pvalues: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg q-values (None stays None). The family is the p-values given together."""
    idx = [i for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    out: list[float | None] = [None] * len(pvalues)
    if idx:
        qs = sps.false_discovery_control([float(pvalues[i]) for i in idx], method="bh")  # type: ignore[arg-type]
        for i, q in zip(idx, qs, strict=True):
            out[i] = float(q)
    return out


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values of one family (None stays None but still counts in the family's size:
    a part that could not be tested does not make the others' threshold looser)."""
    k = len(pvalues)
    idx = sorted((i for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)),
                 key=lambda i: float(pvalues[i]))  # type: ignore[arg-type]
    out: list[float | None] = [None] * k
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (k - rank) * float(pvalues[i])))  # type: ignore[arg-type]
        out[i] = running
    return out


def smallest_p(test: str, n_a: int, n_b: int = 0) -> float | None:
    """The smallest one-sided p-value a test can give with these sample sizes (n_b 0: one sample);
    None when it has no floor (welch) or a side has fewer than 2 values."""
    if n_a < 2 or (n_b and n_b < 2):
        return None
    if test in ("mannwhitney",) and n_b:
        return 1.0 / math.comb(n_a + n_b, n_a)
    if test in ("signed_rank", "mannwhitney") and not n_b:
        return 0.5 ** n_a
    return None


def trials_needed(test: str, level: float, two_sample: bool = True) -> int | None:
    """The fewest values per side (equal sides) whose smallest one-sided p is below `level`."""
    for n in range(2, 200):
        p = smallest_p(test, n, n if two_sample else 0)
        if p is None:
            return None
        if p < level:
            return n
    return None


def relative_pct(a: float, b: float) -> float:
    """(a - b) / |b| in %, NaN when b is 0 or missing."""
    if b is None or a is None or not b or math.isnan(a) or math.isnan(b):
        return math.nan
    return (a - b) / abs(b) * 100


@dataclass(frozen=True)
class Units:
    """The values a side is tested on: per-trial samples of one run, or one median per run."""

    values: list[float]
    unit: str  # "trials" or "runs"
    runs: int


def unit_values(samples_by_run: dict[str, list[float]], force_runs: bool = False) -> Units:
    """Trials when the side comes from one run (and force_runs is off), else each run's median."""
    per = {r: clean(s) for r, s in samples_by_run.items()}
    per = {r: s for r, s in per.items() if s}
    if len(per) <= 1 and not force_runs:
        values = next(iter(per.values()), [])
        return Units(values, "trials", len(per))
    return Units([float(np.median(s)) for _, s in sorted(per.items())], "runs", len(per))
