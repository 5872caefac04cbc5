"""Plausibility gates for hook rows: simple checks on figures the agent already has, no statistics.

A timed row that passes its event count check is still not `ok` when it cannot be right:
  negative   its added cost per event is negative (beyond its interval or inside it: never ok);
  inversion  the body variant is below the empty variant of the same hook, method and workload,
             with disjoint intervals (body ns_ci_high < empty ns_ci_low);
  drift      its baseline (median over the row's trials, per op) is more than DRIFT_BOUND away from
             the run's baseline median for the same workload, method and trigger: the baseline-only
             blocks measured at the start of the run (the calibration, `reference`) and the rows
             measured before it, i.e. the machine was in another state while the row ran (ABBA
             cancels a linear drift of the cost, not a slower machine). Only rows whose baseline block
             lasts at least DRIFT_MIN_BLOCK_NS are checked: shorter blocks vary with the clock's own
             resolution.
  foreign    (kernel_batch) another process had this suite's hook programs loaded during some trials
             (another lab run): its hooked blocks attach to the same helper or tracepoint, so its
             program's cost can land in ours (`foreign_trials`, counted by batchbench); or the kernel's
             BPF stats were on during some hooked blocks (`stats_on_trials`: our program's run count
             moved; another process held BPF_ENABLE_STATS), which adds their clock reads to every run.
  determinism  (icount: figures in guest instructions) the row's trials differ by more than
             ICOUNT_TOLERANCE of its method (max - min over |median|): counted instructions should
             repeat, so a row whose trials do not was disturbed (a host-driven event in a timed loop).
The suite re-measures a flagged hook once; rows still flagged become status "inconclusive" with the
reasons (the figures stay in the row).

Row checks the host applies on read (lab/results/readgates.py, to every stored row, old runs included); pure
functions of one row and the program's own run time, here so the agent can apply them too:
  negative   a negative added cost per event (median below 0) inside its interval (beyond it: above);
  wide       the interval is wider than the median's magnitude: the figure says nothing;
  program    the whole interval is below the program's own run time per op (bpf_stats of the same
             hook, variant and trigger, times its runs per op): dispatch cannot cost less than nothing;
  trend      the trials rise (or fall) monotonically over at least TREND_MIN_TRIALS trials (chance
             2/n! for trials in random order: 0.3% at 6) and by more than DRIFT_BOUND of the median;
  ticks      under instruction counting, the tick-based methods (TICK_METHODS) count no instructions.
"""

import statistics

DRIFT_BOUND = 0.10
# Determinism tolerance per method under icount, as a fraction of the median (max - min of the
# trials). Measured on 6.12 (icount, 2 vCPUs, a loaded 2-core host): kernel_batch trials differ by
# at most 0.062% (8 trials x 5 hooks), their bpf_stats rows by 0.06%; the tolerance is 8x that. The
# open path (wall_abba, cpu_abba: 1.3-11%, the difference of two ~6000-instruction openat+close
# loops) is not steady enough to gate this way: it is not listed. The map suite's in-kernel rows
# (bpf_loop in BPF_PROG_TEST_RUN): p90 0.45%, max 0.71% over 140 rows of two default runs (one
# more row at 28%: its first trial ran cold): 2%. Across two boots the same rows' medians moved by
# at most 0.52%, kernel_batch by 0.022%. User-space map rows (a syscall per op, 0.6-6%) are not gated.
MAP_KERNEL_METHODS = ("bpf_loop in BPF_PROG_TEST_RUN (tc), kernel test-run timer",
                      "bounded loop in BPF_PROG_TEST_RUN (tc), kernel test-run timer")
ICOUNT_TOLERANCE = dict({"kernel_batch": 0.005}, **{m: 0.02 for m in MAP_KERNEL_METHODS})
DRIFT_MIN_BLOCK_NS = 1e6
TIMED = ("wall_abba", "cpu_abba", "kernel_batch", "talk_stime", "talk_jiffies", "bpf_stats",
         "throughput_abba")  # the last: perf_event's wall-time rows (hooks/perf.py)
TREND_MIN_TRIALS = 6
TICK_METHODS = ("talk_stime", "talk_jiffies")  # getrusage / stime ticks: no meaning under icount


def _key(row):
    return (row.get("per"), row.get("method"), row.get("trigger"))


def spread_of(row):
    """max - min of the row's trials over |median| (None without two samples or a median)."""
    s, med = row.get("samples") or [], row.get("ns_median")
    if len(s) < 2 or not med:
        return None
    return (max(s) - min(s)) / abs(med)


def determinism_problem(row):
    """The reason a guest-instruction row's trials differ beyond ICOUNT_TOLERANCE, else None."""
    tol = ICOUNT_TOLERANCE.get(row.get("method"))
    if row.get("figure_unit") != "insn" or tol is None:
        return None
    sp = spread_of(row)
    if sp is None or sp <= tol:
        return None
    return ("trials differ by %.3f%% in guest instructions, beyond the determinism tolerance %.2f%% of %s"
            % (100 * sp, 100 * tol, row.get("method")))


class Gates:
    def __init__(self, bound=DRIFT_BOUND):
        self.bound = bound
        self.baselines = {}  # (per, method, trigger) -> per-trial baselines of every row so far

    def reference(self, per, method, trigger, samples):
        """Baseline-only samples (per op) measured at the start of the run: the first rows' reference."""
        self.baselines.setdefault((per, method, trigger), []).extend(samples)

    def record(self, rows):
        """Add these rows' per-trial baselines to the run's."""
        for r in rows:
            if r.get("base_samples"):
                self.reference(*_key(r), r["base_samples"])

    def problems(self, rows):
        """{index in rows: [reason, ...]} for the rows of one hook (all its variants)."""
        out = {}
        for i, r in enumerate(rows):
            if r.get("status") != "ok" or r.get("method") not in TIMED or r.get("ns_median") is None:
                continue
            hi = r.get("ns_ci_high")
            if hi is not None and hi < 0:
                out.setdefault(i, []).append("added cost %.1f ns [%.1f, %.1f] is negative beyond its interval"
                                             % (r["ns_median"], r["ns_ci_low"], hi))
            elif r["ns_median"] < 0 and r.get("method") != "bpf_stats":  # never ok, whatever its interval
                out.setdefault(i, []).append("added cost %.1f ns per event is negative" % r["ns_median"])
            det = determinism_problem(r)
            if det:
                out.setdefault(i, []).append(det)
            if r.get("foreign_trials"):
                out.setdefault(i, []).append(
                    "another process had this suite's hook programs loaded during %d of %d trials (another lab "
                    "run?): they attach to the same trigger, so their cost can be in this figure"
                    % (r["foreign_trials"], r.get("trials") or 0))
            if r.get("stats_on_trials"):
                out.setdefault(i, []).append(
                    "the kernel's BPF stats were on (another process) during %d of %d trials: their clock "
                    "reads are in this figure" % (r["stats_on_trials"], r.get("trials") or 0))
            run = self.baselines.get(_key(r))
            if run and r.get("base_samples"):
                ref, mine = statistics.median(run), statistics.median(r["base_samples"])
                long_enough = mine * (r.get("ops_per_trial") or 0) >= DRIFT_MIN_BLOCK_NS
                if ref > 0 and long_enough and abs(mine - ref) / ref > self.bound:
                    out.setdefault(i, []).append(
                        "baseline drifted: %.1f ns/op during this row, %.1f ns/op over the run (%+.0f%%, bound "
                        "%.0f%%)" % (mine, ref, 100.0 * (mine - ref) / ref, 100 * self.bound))
        for i, b in enumerate(rows):
            if b.get("variant") != "body" or b.get("status") != "ok" or b.get("ns_ci_high") is None:
                continue
            for e in rows:
                if (e.get("variant") == "empty" and e.get("status") == "ok" and _key(e) == _key(b)
                        and e.get("ns_ci_low") is not None and b["ns_ci_high"] < e["ns_ci_low"]):
                    out.setdefault(i, []).append(
                        "body %.1f ns [%.1f, %.1f] is below empty %.1f ns [%.1f, %.1f] with disjoint intervals"
                        % (b["ns_median"], b["ns_ci_low"], b["ns_ci_high"], e["ns_median"], e["ns_ci_low"],
                           e["ns_ci_high"]))
        return out


def measure_gated(gates, measure):
    """measure() -> rows of one hook. Re-measured once if a gate fires; still-flagged rows become
    "inconclusive". Returns the final rows."""
    rows = measure()
    flagged = gates.problems(rows)
    if flagged:
        first = "; ".join(sorted({r for rs in flagged.values() for r in rs}))
        rows = measure()
        flagged = gates.problems(rows)
        for r in rows:
            r["remeasured"] = True
            r["first_attempt"] = first[:1000]
        for i, reasons in flagged.items():
            rows[i]["status"] = "inconclusive"
            rows[i]["reason"] = "; ".join(reasons) + " (re-measured once, still so)"
    gates.record(rows)
    return rows


def row_problems(row, program_ns=None, insn=False):
    """Reasons an ok timed hook row cannot be right (the checks of the module docstring beyond the
    agent's). program_ns: the program's own run time per op (bpf_stats body x runs per op), if known;
    insn: the row's figures are guest instructions (icount)."""
    out = []
    method, med = row.get("method"), row.get("ns_median")
    if row.get("status") != "ok" or method not in TIMED or med is None:
        return out
    lo, hi = row.get("ns_ci_low"), row.get("ns_ci_high")
    unit = "insn" if insn else "ns"
    if insn and method in TICK_METHODS:
        out.append("%s counts clock ticks: meaningless under instruction counting" % method)
    if med < 0 and method != "bpf_stats" and (hi is None or hi >= 0):  # beyond its interval: Gates.problems
        out.append("added cost %.1f %s per event is negative" % (med, unit))
    if lo is not None and hi is not None and hi - lo > abs(med):
        out.append("interval [%.1f, %.1f] is wider than its median %.1f %s" % (lo, hi, med, unit))
    if program_ns is not None and method != "bpf_stats" and (hi if hi is not None else med) < program_ns:
        out.append("added cost %.1f %s [up to %.1f] is below the program's own run time %.1f %s (bpf_stats)"
                   % (med, unit, hi if hi is not None else med, program_ns, unit))
    xs = [float(x) for x in row.get("samples") or []]
    if len(xs) >= TREND_MIN_TRIALS and med:
        steps = [b - a for a, b in zip(xs, xs[1:])]
        if (all(d > 0 for d in steps) or all(d < 0 for d in steps)) and abs(xs[-1] - xs[0]) > DRIFT_BOUND * abs(med):
            out.append("its %d trials %s monotonically (%.1f to %.1f %s): the machine changed while it ran"
                       % (len(xs), "rise" if steps[0] > 0 else "fall", xs[0], xs[-1], unit))
    return out
