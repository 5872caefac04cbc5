"""The percentile rule of the latency rows, and the fewest requests a percentile needs.

Percentile p of n latencies: nearest rank, the smallest latency with at least p% of them at or below
it, x(ceil(p/100 * n)) of the sorted values (1-based); no interpolation, so a percentile is always
a latency that was measured. Support: a percentile counts only when at least SUPPORT requests lie
above it, n * (1 - p/100) >= SUPPORT: p99.9 needs 10,000 requests per arm and trial (MIN_REQUESTS),
p99.99 100,000. An arm with fewer requests than MIN_REQUESTS is refused (the row is "invalid": its
p99.9 would rest on fewer than 10 requests). Standard library only.
"""

import math

LEVELS = (50.0, 90.0, 99.0, 99.9)  # the row's percentiles: latency_p50, _p90, _p99, _p999
NAMES = {50.0: "p50", 90.0: "p90", 99.0: "p99", 99.9: "p999"}
PLOT_LEVELS = (50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99)  # the percentile plot's (where supported)
SUPPORT = 10  # requests above a percentile for it to count
MIN_REQUESTS = int(round(SUPPORT / (1 - LEVELS[-1] / 100.0)))  # 10000: p99.9 supported


def needed(level, support=SUPPORT):
    """The fewest requests with `support` of them above percentile `level`."""
    return int(math.ceil(round(support / (1 - level / 100.0), 6)))  # rounded: 1 - 0.999 is not exact


def percentile(sorted_values, level):
    """Nearest-rank percentile of already sorted values (None for none)."""
    n = len(sorted_values)
    if not n:
        return None
    rank = max(1, int(math.ceil(level / 100.0 * n - 1e-9)))
    return sorted_values[min(n, rank) - 1]


def figures(latencies):
    """One arm of one trial: n, the row's percentiles, the plot's (None where not supported), max."""
    x = sorted(latencies)
    n = len(x)
    out = {"n": n, "max": x[-1] if x else None}
    for lv in LEVELS:
        out[NAMES[lv]] = percentile(x, lv)
    out["q"] = [percentile(x, lv) if n >= needed(lv) else None for lv in PLOT_LEVELS]
    return out


def short_of(n):
    """Why an arm of n requests is refused, or None when p99.9 has support."""
    if n >= MIN_REQUESTS:
        return None
    return ("%d requests in an arm: p99.9 needs at least %d (%d above it), so its figure would rest on %.1f "
            "requests" % (n, MIN_REQUESTS, SUPPORT, n * (1 - LEVELS[-1] / 100.0)))


def change_pct(base, tool):
    """The change of one percentile with the tool, in % of the baseline's."""
    if base is None or tool is None or not base:
        return None
    return 100.0 * (tool - base) / base
