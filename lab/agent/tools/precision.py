"""Precision asked for, not trials guessed: the tool suite's ABBA pairs, a fixed number of them or
as many as it takes for the loss's interval to reach a half-width.

Playbook `suites.tools` (or `./labctl bench.tools --halfwidth H --budget S`):
  halfwidth     points of loss: add ABBA pairs until the 95% interval's half-width ((high - low) / 2)
                of the loss is at most this (absent: `trials` pairs, as before)
  halfwidth_of  "cpu" (default: the loss per CPU second, overhead_cpu_pct) or "throughput" (overhead_pct)
  budget_s      seconds for one tool's pairs (default 600): no pair starts that the time left cannot
                hold (the mean pair so far says how long one takes)
  max_trials    pairs at most (default 200)
`trials` is then the minimum number of pairs (at least 6: with fewer no 95% interval exists).
The interval used to stop is the distribution-free order-statistics interval of the median, the
rule of the host's lab/results/stats.py written here in the standard library; the row keeps every
pair's raw samples and the host recomputes its intervals with stats.py. Row fields: stopped_on
("halfwidth", "budget", "max_trials"; absent without `halfwidth`), halfwidth_target, halfwidth_of,
halfwidth_reached (points), pairs_seconds, budget_s.
Standard library only.
"""

import time

from ..common import MIN_PAIRS, halfwidth, order_interval  # noqa: F401 (the suite's)
from .load import loss_pct

PARAMS = ("halfwidth", "halfwidth_of", "budget_s", "max_trials")
OF = ("cpu", "throughput")


def check(params):
    problems = []
    h = params.get("halfwidth")
    if h is not None and (isinstance(h, bool) or not isinstance(h, (int, float)) or h <= 0):
        problems.append("halfwidth must be a positive number of points, not %r" % (h,))
    if params.get("halfwidth_of", "cpu") not in OF:
        problems.append("halfwidth_of must be one of %s" % ", ".join(OF))
    for k in ("budget_s", "max_trials"):
        v = params.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            problems.append("%s must be a positive integer, not %r" % (k, v))
    return problems


class Precision:
    def __init__(self, param):
        self.target = param("halfwidth", None)
        self.of = param("halfwidth_of", "cpu")
        self.budget = int(param("budget_s", 600))
        self.max_trials = int(param("max_trials", 200))
        self.trials = int(param("trials", 5))

    def describe(self, trials):
        if self.target is None:
            return "%d trials" % trials
        return "ABBA pairs until the %s loss is within +-%g points (at least %d, budget %d s)" % (
            "per-CPU-second" if self.of == "cpu" else "throughput", self.target, max(MIN_PAIRS, trials),
            self.budget)

    def stop(self, losses, cpu_losses, elapsed, per_pair):
        """None to go on, else why it stops (and the half-width reached)."""
        med, hw = halfwidth(cpu_losses if self.of == "cpu" else losses)
        n = len(losses)
        if self.target is None:
            return ("trials" if n >= self.trials else None), med, hw
        if n >= max(MIN_PAIRS, self.trials) and hw is not None and hw <= self.target:
            return "halfwidth", med, hw
        if n >= self.max_trials:
            return "max_trials", med, hw
        if elapsed + per_pair > self.budget:
            return "budget", med, hw
        return None, med, hw

    def pairs(self, suite, names, load):
        """Run ABBA pairs (A = the load alone, B = with the tools) until stop() says; returns
        (pairs of metrics, sides, exec-to-attached of each start, the row's stop fields)."""
        pairs, sides, loads, losses, cpu_losses = [], [], [], [], []
        t0 = time.monotonic()
        label = names[0] if len(names) == 1 else "all"
        while True:
            got = {}
            for side in ("AB" if len(pairs) % 2 == 0 else "BA"):
                if side == "A":
                    got["A"] = suite.stress_run(suite.seconds, load)
                else:
                    got["B"] = suite.tool_side(names, suite.seconds, load)
            pairs.append((got["A"][0], got["B"]["metrics"]))
            sides.append((got["A"], got["B"]))
            loads.append(got["B"]["load_ms"])
            losses.append(loss_pct(got["A"][0], got["B"]["metrics"]))
            cpu_losses.append(loss_pct(got["A"][3], got["B"]["cpu_metrics"]))
            elapsed = time.monotonic() - t0
            why, med, hw = self.stop(losses, cpu_losses, elapsed, elapsed / len(pairs))
            if self.target is not None:  # the live progress line
                suite.ctx.log("%s: pair %d, %s loss %s +-%s points (target +-%g), %.0f of %d s%s" % (
                    label, len(pairs), self.of, "-" if med is None else "%.2f" % med,
                    "n/a" if hw is None else "%.2f" % hw, self.target, elapsed, self.budget,
                    "; stopped on " + why if why else ""))
            if why:
                break
        fields = {}
        if self.target is not None:
            fields = dict(stopped_on=why, halfwidth_target=float(self.target), halfwidth_of=self.of,
                          halfwidth_reached=None if hw is None else round(hw, 3),
                          pairs_seconds=round(elapsed, 1), budget_s=self.budget)
        return pairs, sides, loads, fields
