"""Hook suite, perf_event: what a BPF program costs per sample of a sampling event.

`hookbench perf` runs, per trial, the same CPU-bound loop in several arms: `base` (no event open),
`none` (the event open, no program: the sampling interrupt alone), and the event with each program
(`perf_event_empty`, `perf_event_body`, ...), in one order on even trials and the reverse on odd
ones, so the arms of a trial pair. The loop is sized by samples, not time: every program arm
generates at least `perf_samples` samples (from a calibration run's samples per loop iteration).

Per trial and arm, the measured quantity is the time the loop lost over `base`, per sample:
(arm - base) / samples of that arm. A program counts its own runs (= samples, proven in a count
phase against the samples the kernel wrote into the event's ring buffer); the `none` arm's samples
are the program arms' counts scaled by the ratio of the event's own counts (cpu-clock ns or cycles),
i.e. the same sampling rate over that arm's length. Rows (one per variant none / empty / body, per
event and frequency, and per method):
  throughput_abba  wall time of the loop (includes other tasks preempting it)
  cpu_abba         the thread's CPU time (blind to preemption; includes the sampling interrupt only
                   where the kernel does not account IRQ time apart: `irq_time_accounting`)
  `samples`        per trial ns per sample over base; body/empty rows also `none_samples` (the none
                   arm of the same trials) and `minus_none_samples` (per trial: program - none), the
                   program's own cost per sample. Medians and intervals of those are the host's job.
  bpf_stats        body time per run from run_time_ns / run_cnt (a separate phase).
"""

import gzip
import os
import platform
import statistics

from ..common import median_ci, timing_fields

METHODS = (("throughput_abba", "ns"), ("cpu_abba", "cpu_ns"))
UNIT = "ns per sample (loop time lost over the no-event baseline, per sample generated)"


def perf_expected(clock_ns, period_ns):
    """Samples a cpu-clock event with a fixed period must produce over clock_ns of task time."""
    return int(clock_ns // period_ns)


def generated(count):
    """Samples the kernel generated in one count trial: recorded in the ring buffer, or reported lost."""
    return count["samples"] + count["lost"]


def sample_check(counts):
    """The count phase: the program's events against the samples the kernel generated, trial by
    trial. (status, reason, events, samples)."""
    events = sum(c["events"] for c in counts)
    samples = sum(generated(c) for c in counts)
    for c in counts:
        if c["events"] != generated(c):
            return "invalid", ("count trial %d: the program counted %d events, the kernel generated %d samples"
                               % (c["trial"], c["events"], generated(c))), events, samples
    return "ok", "", events, samples


def delivered_pct(counts, period_ns):
    """Samples the kernel generated as a percentage of clock / period (below 100 when its timer
    fires late, e.g. under emulation, and missed periods are skipped)."""
    exp = sum(perf_expected(c["clock_ns"], period_ns) for c in counts)
    return 100.0 * sum(generated(c) for c in counts) / exp if exp else None


def none_samples(arms, progs, period_ns, freq):
    """Samples the `none` arm generated (no program counts them): each program arm's count scaled
    by the event's own count ratio (same rate, other length), averaged; without a program arm,
    cpu-clock time / period, or freq x CPU time for hardware events."""
    none = arms["none"]
    est = [arms[p]["events"] * float(none["count"]) / arms[p]["count"] for p in progs
           if arms[p]["count"] > 0 and arms[p]["events"] > 0]
    if est:
        return statistics.mean(est)
    if period_ns:
        return none["count"] / float(period_ns)
    return freq * none["cpu_ns"] / 1e9


def per_sample(trials, progs, period_ns, freq, key):
    """Per arm (none and each program): per-trial ns per sample over base, samples, loss %."""
    out = {a: {"x": [], "n": [], "loss": []} for a in ["none"] + list(progs)}
    for t in trials:
        arms = {a["arm"]: a for a in t["arms"]}
        base = arms["base"][key]
        for a in out:
            n = none_samples(arms, progs, period_ns, freq) if a == "none" else arms[a]["events"]
            v = arms[a][key]
            out[a]["x"].append((v - base) / float(max(n, 1)))
            out[a]["n"].append(n)
            out[a]["loss"].append(100.0 * (v - base) / v if v else 0.0)
    return out


def stray_check(trials):
    """(status, reason): no program may run in the base and none arms (it was detached)."""
    for t in trials:
        for a in t["arms"]:
            if a["arm"] in ("base", "none") and a["events"]:
                return "invalid", ("trial %d: a program counted %d events in the %s arm, where none was attached"
                                   % (t["trial"], a["events"], a["arm"]))
    return "ok", ""


def fired_check(trials, prog):
    """(status, reason): the program ran in every trial."""
    for t in trials:
        for a in t["arms"]:
            if a["arm"] == prog and a["events"] == 0:
                return "invalid", "trial %d: the program never fired" % t["trial"]
    return "ok", ""


def irq_time_accounting():
    """CONFIG_IRQ_TIME_ACCOUNTING of the running kernel (True/False), None when no config is readable.
    When set, interrupt time is not charged to the interrupted task: cpu_abba misses the sampling
    interrupt itself."""
    paths = ["/proc/config.gz", "/boot/config-%s" % platform.release()]
    for path in paths:
        if not os.path.exists(path):
            continue
        try:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as f:
                return any(line.strip() == "CONFIG_IRQ_TIME_ACCOUNTING=y" for line in f)
        except OSError:
            continue
    return None


def _program_fields(f, recs, trials, prog, period, status, reason):
    """Count phase, fired check and body time of a program row: (status, reason, stats records)."""
    counts = [c for c in recs if c.get("kind") == "count" and c.get("prog") == prog]
    if status == "ok":
        status, reason = fired_check(trials, prog)
    if counts:
        c_status, c_reason, events, triggers = sample_check(counts)
        if status == "ok":
            status, reason = c_status, c_reason
        f.update(events=events, triggers=triggers,
                 trigger_check="events vs samples the kernel recorded in the event's ring buffer (+ lost), "
                               "%d count trials" % len(counts))
        if period:
            f["delivered_pct"] = delivered_pct(counts, period)
    else:
        f.update(events=int(sum(f["sample_counts"])), triggers=None, trigger_check="events > 0 (no count phase)")
    stats = [r for r in recs if r.get("kind") == "stats" and r.get("prog") == prog]
    body = [r["run_time_ns"] / float(r["run_cnt"]) for r in stats if r["run_cnt"] > 0]
    if body:
        f["body_ns"] = median_ci(body)[0]
        f["dispatch_ns"] = f["ns_median"] - f["body_ns"]
    return status, reason, stats, body


def perf_rows_from_records(row, base, recs, freq, variants):
    """Rows of one `hookbench perf` run. row(status, reason, **fields) builds a row; base: the
    fields every row shares except variant/program; variants: the program variants run."""
    setup = [r for r in recs if r.get("kind") == "setup"][0]
    trials = [r for r in recs if r.get("kind") == "ptrial"]
    progs = ["perf_event_%s" % v for v in variants]
    ops, period, target = setup["ops"], setup["period_ns"], setup["samples_target"]
    irq = irq_time_accounting()
    rows = []
    for method, key in METHODS:
        series = per_sample(trials, progs, period, freq, key)
        nx = series["none"]["x"]
        for variant in ["none"] + list(variants):
            prog = "none" if variant == "none" else "perf_event_%s" % variant
            s = series["none" if variant == "none" else prog]
            f = dict(base, variant=variant, program=prog, unit=UNIT, samples_target=target,
                     sample_counts=[int(round(n)) for n in s["n"]], **timing_fields(method, s["x"], ops))
            lmed, llo, lhi = median_ci(s["loss"])
            base_times = [a[key] for t in trials for a in t["arms"] if a["arm"] == "base"]
            f.update(loss_pct_median=lmed, loss_pct_ci_low=llo, loss_pct_ci_high=lhi,
                     loss_samples=[round(x, 4) for x in s["loss"]], loop_ns=median_ci(base_times)[0])
            if method == "cpu_abba":
                f["irq_time_accounting"] = irq
            if s["n"] and min(s["n"]) < target:
                f["sample_note"] = ("a trial generated %d samples, fewer than the %d asked for (the sampling timer "
                                    "fired late, e.g. under emulation)" % (min(s["n"]), target))
            status, reason = stray_check(trials)
            if variant == "none":
                f.update(events=None, triggers=int(round(sum(s["n"]))),
                         trigger_check="samples estimated from the program arms' counts (same rate, scaled "
                                       "by the event's own count), or clock / period")
                rows.append(row(status, reason, **f))
                continue
            f["none_samples"] = [round(x, 3) for x in nx]
            f["minus_none_samples"] = [round(a - b, 3) for a, b in zip(s["x"], nx)]
            status, reason, stats, body = _program_fields(f, recs, trials, prog, period, status, reason)
            rows.append(row(status, reason, **f))
            if method == METHODS[0][0] and body:
                srow = dict(base, variant=variant, program=prog, events=f["events"], triggers=f["triggers"],
                            runs=sum(r["run_cnt"] for r in stats), **timing_fields("bpf_stats", body, ops))
                srow.update(body_ns=f["body_ns"], dispatch_ns=f["dispatch_ns"], trigger_check=f["trigger_check"])
                if "delivered_pct" in f:
                    srow["delivered_pct"] = f["delivered_pct"]
                rows.append(row(status, reason, **srow))
    return rows
