"""Precision asked for on the hook suite's open path: trials added until the added cost's interval
is narrow enough, instead of a fixed number of them.

Playbook `suites.hooks` (or `./labctl bench.hooks --halfwidth P --budget S`):
  halfwidth   per cent of the median: add ABBA trials (in rounds of `trials`, each a fresh helper
              run whose trials are ABBA pairs like the first) until the 95% interval of the added
              cost per openat+close (wall_abba) has a half-width of at most this share of its median
  budget_s    seconds for one hook and variant's trials (default 300): no round starts that the time
              left cannot hold (the mean round so far says how long one takes)
  max_trials  trials at most (default 200)
The interval is the order-statistics interval of the median (agent common.py, the rule of the host's
lab/results/stats.py); at least 6 trials. Rows then carry stopped_on ("halfwidth", "budget",
"max_trials"), halfwidth_target (%), halfwidth_reached (% of the median), trials_used,
trials_seconds, budget_s. Only the open path: the other workloads keep their fixed trials.
Standard library only.
"""

import time

from ..common import MIN_PAIRS, halfwidth

PARAMS = ("halfwidth", "budget_s", "max_trials")


def check(params):
    problems = []
    h = params.get("halfwidth")
    if h is not None and (isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 < h < 100):
        problems.append("halfwidth must be a per cent of the median between 0 and 100, not %r" % (h,))
    for k in ("budget_s", "max_trials"):
        v = params.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            problems.append("%s must be a positive integer, not %r" % (k, v))
    return problems


def reached(added):
    """(median, half-width as % of |median|) of the added costs so far; None while no 95% interval."""
    med, hw = halfwidth(added)
    if hw is None or not med:
        return med, None
    return med, 100.0 * hw / abs(med)


def widen(run_round, added_of, first, target, budget_s=300, max_trials=200, log=None, clock=time.monotonic,
          started=None):
    """Trial records: `first` (a helper run's records) plus as many more rounds of `run_round()` as it
    takes for the added cost's half-width to reach `target` % of its median, or the budget or
    max_trials to stop it. `added_of(trials)` gives per-trial added costs; `started` is when the first
    round began (its time then counts, in the budget and in the mean round). Returns (records, fields)."""
    t0 = clock() if started is None else started
    timed = 0 if started is None else 1  # rounds whose time `spent` holds
    recs = list(first)
    trials = [r for r in recs if r.get("kind") == "trial"]
    per_round = max(1, len(trials))
    while True:
        _, pct = reached(added_of(trials))
        if len(trials) >= MIN_PAIRS and pct is not None and pct <= target:
            why = "halfwidth"
            break
        spent = clock() - t0
        if len(trials) + per_round > max_trials:
            why = "max_trials"
            break
        if spent + (spent / timed if timed else 0) > budget_s:
            why = "budget"
            break
        more = [r for r in run_round() if r.get("kind") == "trial"]
        timed += 1
        recs += more
        trials += more
        if log:
            _, pct = reached(added_of(trials))
            log("  %d trials: half-width %s of the median (target %.1f%%), %.0f s of %d"
                % (len(trials), "%.1f%%" % pct if pct is not None else "not yet", target, clock() - t0, budget_s))
    _, pct = reached(added_of(trials))
    return recs, dict(stopped_on=why, halfwidth_target=target,
                      halfwidth_reached=round(pct, 3) if pct is not None else None,
                      trials_used=len(trials), trials_seconds=round(clock() - t0, 1), budget_s=budget_s)
