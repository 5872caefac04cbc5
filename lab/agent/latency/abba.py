"""ABBA pairs of latency trials and the row fields they give (the tool and hook suites' latency mode).

A pair is one trial without the tool or hook (A) and one with it (B), in AB order on even pairs and
BA on odd ones, so a linear drift cancels. Each arm of a trial gives its percentiles (quantiles.py);
each pair gives, per percentile, the change with the tool in % of that pair's baseline percentile.
The row keeps every pair's figures (`latency_trials`) and per-percentile change samples; the host
recomputes every interval from them with lab/results/stats.py (the order-statistics interval of the
median over pairs). The agent's own medians and intervals (the same rule, common.order_interval) are
there for the stop rule and for reading a row alone.

Precision (`halfwidth`, `budget_s`, `max_trials` of the suite): pairs are added until the p99
change's 95% interval has a half-width of at most `halfwidth` % of the baseline p99 (the change is
already in % of it), at least MIN_PAIRS pairs, or until the budget's time (the mean pair so far says
whether one more fits) or max_trials pairs. Without `halfwidth`: `latency_trials` pairs.
Standard library only.
"""

import statistics
import time

from ..common import MIN_PAIRS, halfwidth, order_interval
from . import quantiles

PARAMS = ("latency", "latency_workloads", "latency_trials", "latency_seconds", "latency_ops", "latency_rates")
DEFAULT_PAIRS = MIN_PAIRS
ICOUNT_REASON = ("not measurable in guest instructions: under icount a wait is not time (the guest clock "
                 "jumps over idle time, sleep=on), so a latency that includes waiting for a timer, a packet "
                 "or a disk is not a count of the guest's work; latency needs the host, an ssh:// target or KVM")


def check(params, workloads):
    """Problems with the latency parameters of a suite's playbook section."""
    problems = []
    if not isinstance(params.get("latency", False), bool):
        problems.append("latency must be true or false")
    wl = params.get("latency_workloads")
    if wl is not None and (not isinstance(wl, list) or not wl or any(w not in workloads for w in wl)):
        problems.append("latency_workloads must be a non-empty list of %s" % ", ".join(workloads))
    for k in ("latency_trials", "latency_seconds", "latency_ops"):
        v = params.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            problems.append("%s must be a positive integer, not %r" % (k, v))
    ops = params.get("latency_ops")
    if isinstance(ops, int) and not isinstance(ops, bool) and 0 < ops < quantiles.MIN_REQUESTS:
        problems.append("latency_ops %d: p99.9 needs at least %d calls per arm and trial"
                        % (ops, quantiles.MIN_REQUESTS))
    rates = params.get("latency_rates", {})
    if not isinstance(rates, dict) or any(k not in ("rr", "timer", "disk") or isinstance(v, bool)
                                          or not isinstance(v, int) or v < 1 for k, v in rates.items()):
        problems.append("latency_rates must map rr / timer / disk to requests per second (positive integers)")
    else:
        secs = params.get("latency_seconds", 3)
        for k, v in rates.items():
            if isinstance(secs, int) and v * secs < quantiles.MIN_REQUESTS:
                problems.append("latency_rates.%s %d x latency_seconds %d = %d requests per arm: p99.9 needs at "
                                "least %d" % (k, v, secs, v * secs, quantiles.MIN_REQUESTS))
    if params.get("latency_trials") is not None and params.get("latency_trials", 6) < 3:
        problems.append("latency_trials must be at least 3 (an interval needs 3 pairs, a 95%% one %d)" % MIN_PAIRS)
    return problems


def pair_of(order, base, tool):
    """One pair's record from its two arms' latencies (ns)."""
    return {"order": order, "base": quantiles.figures(base), "tool": quantiles.figures(tool)}


def changes(pairs, name):
    """Per pair: the change of percentile `name` (p50, p90, p99, p999) in % of the baseline's."""
    out = [quantiles.change_pct(p["base"][name], p["tool"][name]) for p in pairs]
    return [round(x, 4) for x in out if x is not None]


def collect(next_pairs, pairs_wanted, target=None, budget_s=600, max_pairs=200, log=None, clock=time.monotonic):
    """Pairs from `next_pairs(done)` (a list of one or more pairs each call) until the stop rule (module
    docstring) says; returns (pairs, stop fields)."""
    t0 = clock()
    pairs, calls = [], 0
    why = None
    while True:
        pairs += next_pairs(len(pairs))
        calls += 1
        spent = clock() - t0
        med, hw = halfwidth(changes(pairs, "p99"))
        if target is None:
            if len(pairs) >= pairs_wanted:
                break
            continue
        if log:
            log("  %d pairs: p99 change %s, half-width %s (target +-%g%% of the baseline p99), %.0f of %d s"
                % (len(pairs), "-" if med is None else "%+.2f%%" % med, "not yet" if hw is None else "%.2f" % hw,
                   target, spent, budget_s))
        if len(pairs) >= max(MIN_PAIRS, pairs_wanted) and hw is not None and hw <= target:
            why = "halfwidth"
            break
        if len(pairs) >= max_pairs:
            why = "max_trials"
            break
        if spent + spent / calls > budget_s:
            why = "budget"
            break
    fields = {}
    if target is not None:
        fields = dict(stopped_on=why, halfwidth_target=float(target), halfwidth_of="latency_p99",
                      halfwidth_reached=None if hw is None else round(hw, 3), pairs_seconds=round(clock() - t0, 1),
                      budget_s=int(budget_s))
    return pairs, fields


def row_fields(pairs, workload, label, per, co):
    """The latency row's fields from its pairs, and (status, reason): "invalid" when an arm had fewer
    requests than p99.9 needs."""
    f = dict(method="latency_abba", workload=workload, load=label, per=per, latency_unit="ns", coordinated_omission=co,
             trials=len(pairs), latency_levels=list(quantiles.PLOT_LEVELS), min_requests=quantiles.MIN_REQUESTS,
             latency_trials=pairs)
    ns = [p[arm]["n"] for p in pairs for arm in ("base", "tool")]
    f["requests_per_trial"] = min(ns) if ns else 0
    for name in ("p50", "p90", "p99", "p999"):
        base = [p["base"][name] for p in pairs if p["base"][name] is not None]
        tool = [p["tool"][name] for p in pairs if p["tool"][name] is not None]
        f["baseline_latency_" + name] = statistics.median(base) if base else None
        f["latency_" + name] = statistics.median(tool) if tool else None
        ch = changes(pairs, name)
        med, lo, hi, _ = order_interval(ch)
        f["latency_%s_change_pct" % name] = med
        f["latency_%s_change_ci_low" % name] = lo
        f["latency_%s_change_ci_high" % name] = hi
        f["latency_%s_change_samples" % name] = ch
    short = quantiles.short_of(f["requests_per_trial"]) if pairs else "no pairs"
    return f, ("ok", "") if short is None else ("invalid", short)
