"""Hook suite: what one event costs on each attach type, with proof that the program fired.

All measuring happens in the static C helper `hookbench` (built on the host, pushed with the
agent); this module only picks what to run, turns its per-trial records into rows and keeps the
suite going when the kernel refuses a hook (a row with status "unsupported" and the kernel's text).

Parameters (playbook `suites.hooks`, all optional):
  trials (10), stats_trials (3), ops (20000 opens per trial), uprobe_ops (5000), net_ops (5000),
  hooks (all of HOOKS), variants (["body", "empty"]; "heavy" = the sanity-check program),
  freqs ([99, 999, 9999]), perf_events (["sw", "hw"]), perf_ms (100 ms of loop per trial),
  perf_trials (same as trials), path ("/dev/null": the file the open loop opens).

Rows (see schema.SUITES["hooks"]); for each (hook, variant) that loads:
  method "wall_abba"     precise: added wall ns per op (hook trial minus the adjacent baseline
                         trial, ABBA order), median and bootstrap 95% CI over trials.
  method "cpu_abba"      the same trials timed with the thread's CPU clock (CLOCK_THREAD_CPUTIME_ID):
                         blind to other tasks preempting the loop, so steadier on a shared machine.
  method "talk_stime"    the talk's: added kernel-mode time per op from getrusage (open path).
  method "talk_jiffies"  the talk's exact metric: /proc/self/stat stime ticks per op (open path).
  method "bpf_stats"     body time per program run from run_time_ns / run_cnt (stats switched on
                         only for this phase); dispatch_ns = wall added - body x runs per op.
perf_event rows: ns_* = added ns per sample event; loss_pct_* = throughput the loop lost.
"""

import os
import shutil
import subprocess

from .common import check_params, median_ci, timing_fields

OPEN_HOOKS = {
    # hook: (program prefix, attach point)
    "kprobe": ("kprobe", "kprobe do_sys_openat2"),
    "kretprobe": ("kretprobe", "kretprobe do_sys_openat2"),
    "kprobe_multi": ("kprobe_multi", "kprobe.multi do_sys_openat2"),
    "tracepoint": ("tracepoint", "tracepoint syscalls:sys_enter_openat"),
    "raw_tp": ("raw_tp", "raw_tracepoint sys_enter, id == 257 (openat)"),
    "tp_btf": ("tp_btf", "tp_btf sys_enter, id == 257 (openat)"),
    "fentry": ("fentry", "fentry do_sys_openat2"),
    "fexit": ("fexit", "fexit do_sys_openat2"),
}
UPROBE_HOOKS = {
    "uprobe": ("uprobe", "uprobe hookbench:lab_uprobe_target"),
    "uretprobe": ("uretprobe", "uretprobe hookbench:lab_uprobe_target"),
}
NET_HOOKS = {
    "xdp": ("xdp", "XDP generic (SKB) mode on veth vrx, UDP from a peer netns"),
    "xdp_drv": ("xdp", "XDP native (driver) mode on veth vrx, run from its NAPI poll, UDP from a peer netns"),
    "socket_filter": ("socket", "SO_ATTACH_BPF on the receiving UDP socket"),
}
HOOKS = list(OPEN_HOOKS) + list(UPROBE_HOOKS) + ["perf_event"] + list(NET_HOOKS)

VARIANTS = ("body", "empty", "heavy")
PARAMS = ("trials", "stats_trials", "ops", "uprobe_ops", "net_ops", "hooks", "variants", "freqs", "perf_events",
          "perf_ms", "perf_trials", "path")


def check(params):
    """Problems with the playbook's hooks parameters (checked on the host before anything boots)."""
    return check_params(params, PARAMS, {"hooks": HOOKS, "variants": VARIANTS, "perf_events": ("sw", "hw"),
                                         "freqs": lambda f: None if isinstance(f, int) and f > 0 else
                                         "a positive frequency in Hz"},
                        ints=("trials", "stats_trials", "ops", "uprobe_ops", "net_ops", "perf_ms", "perf_trials"))


TCG_NOTE = "emulated (TCG): timings check the pipeline, they are not overhead figures"
PERF_TOLERANCE = 0.02  # perf: events may differ from clock/period by 2% (or 2 samples)


class Refused(Exception):
    """The kernel refused to load or attach (helper exit 2 or 3): an unsupported row."""


class Failed(Exception):
    """Anything else went wrong: an error row."""


def _reason(stderr):
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return " | ".join(lines)[-1500:] or "no message"


def run_bench(helper, mode, args, timeout=900):
    """Run hookbench; return its records. Exit 2/3 raises Refused, anything else Failed."""
    import json

    proc = subprocess.run([helper, mode] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
    if proc.returncode in (2, 3):
        raise Refused(_reason(proc.stderr))
    if proc.returncode != 0:
        raise Failed("hookbench %s exit %d: %s" % (mode, proc.returncode, _reason(proc.stderr)))
    return [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]


# ---- turning helper records into figures (pure functions, unit-tested) ----

def per_op_added(trials, ops, base_key="base_ns", hook_key="hook_ns"):
    """Per trial: hook minus baseline, per op (ns)."""
    return [(t[hook_key] - t[base_key]) / float(ops) for t in trials]


def jiffies_added(trials, ops, clk_tck):
    return [(t["hook_jiffies"] - t["base_jiffies"]) * 1e9 / clk_tck / float(ops) for t in trials]


def count_check(events, triggers):
    """(status, reason) for an exact events == triggers check."""
    if events == triggers:
        return "ok", ""
    return "invalid", "program counted %d events for %d triggers" % (events, triggers)


def baseline_check(trials):
    """(status, reason): the program must not run during baseline trials (it was not detached)."""
    for t in trials:
        if t.get("base_events"):
            return "invalid", ("trial %d: the program counted %d events during the baseline trial: it was not "
                               "detached, so the baseline includes its cost" % (t["trial"], t["base_events"]))
    return "ok", ""


def perf_expected(clock_ns, period_ns):
    """Samples a cpu-clock event with a fixed period must produce over clock_ns of task time."""
    return int(clock_ns // period_ns)


def perf_check(trials, period_ns):
    """Every trial's event count within tolerance of clock/period: (status, reason, expected)."""
    expected = sum(perf_expected(t["clock_ns"], period_ns) for t in trials)
    for t in trials:
        exp = perf_expected(t["clock_ns"], period_ns)
        if abs(t["events"] - exp) > max(2, PERF_TOLERANCE * exp):
            return "invalid", ("trial %d: %d events, %d expected from %d ns of cpu-clock at a %d ns period"
                               % (t["trial"], t["events"], exp, t["clock_ns"], period_ns)), expected
    return "ok", "", expected


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


def stats_body(stats, ops):
    """From the bpf_stats records: per-trial body ns per run, and program runs per op."""
    body = [s["run_time_ns"] / float(s["run_cnt"]) for s in stats if s["run_cnt"] > 0]
    runs = sum(s["run_cnt"] for s in stats)
    return body, (runs / float(ops * len(stats)) if stats else None)


def spread(row):
    """CI width over median: the repeatability figure."""
    med = row.get("ns_median")
    if not med or row.get("ns_ci_low") is None:
        return None
    return (row["ns_ci_high"] - row["ns_ci_low"]) / abs(med)


# ---- the suite ----

class Suite:
    def __init__(self, ctx):
        self.ctx = ctx
        p = ctx.param
        self.trials = int(p("trials", 10))
        self.stats_trials = int(p("stats_trials", 3))
        self.ops = int(p("ops", 20000))
        self.uprobe_ops = int(p("uprobe_ops", 5000))
        self.net_ops = int(p("net_ops", 5000))
        self.hooks = list(p("hooks", HOOKS))
        self.variants = list(p("variants", ["body", "empty"]))
        self.freqs = [int(f) for f in p("freqs", [99, 999, 9999])]
        self.perf_events = list(p("perf_events", ["sw", "hw"]))
        self.perf_ms = int(p("perf_ms", 100))
        self.perf_trials = int(p("perf_trials", self.trials))
        self.path = str(p("path", "/dev/null"))
        self.helper = ctx.path("hookbench")
        unknown = [h for h in self.hooks if h not in HOOKS]
        if unknown:
            raise ValueError("unknown hooks %s; known: %s" % (unknown, ", ".join(HOOKS)))

    def row(self, status="ok", reason="", **f):
        if self.ctx.accelerator == "tcg":
            f["note"] = TCG_NOTE
            f["emulated"] = True
        return self.ctx.row(status=status, reason=reason, **f)

    def run(self):
        for hook in self.hooks:
            if hook == "perf_event":
                for row in self.perf_rows():
                    yield row
                continue
            for variant in self.variants:
                if hook in OPEN_HOOKS:
                    rows = self.syscall_rows(hook, variant, "open", OPEN_HOOKS[hook], self.ops, "hook_open.bpf.o",
                                             ["--path", self.path])
                elif hook in UPROBE_HOOKS:
                    rows = self.syscall_rows(hook, variant, "uprobe", UPROBE_HOOKS[hook], self.uprobe_ops,
                                             "hook_uprobe.bpf.o", [])
                else:
                    rows = self.net_rows(hook, variant)
                for row in rows:
                    yield row

    # -- open path, uprobe and packets share the row shape --
    def syscall_rows(self, hook, variant, mode, spec, ops, obj, extra, talk=None):
        prefix, attach_point = spec
        prog = "%s_%s" % (prefix, variant)
        base = dict(hook=hook, attach_point=attach_point, variant=variant, program=prog)
        args = ["--obj", self.ctx.path(obj), "--prog", prog, "--trials", self.trials,
                "--ops", ops, "--stats-trials", self.stats_trials] + extra
        self.ctx.log("%s %s: %d trials x %d ops" % (hook, variant, self.trials, ops))
        try:
            recs = run_bench(self.helper, mode, args)
        except Refused as e:
            return [self.row("unsupported", str(e), **base)]
        except (Failed, subprocess.TimeoutExpired) as e:
            return [self.row("error", str(e), **base)]
        return self.rows_from_records(base, recs, ops, talk=(mode == "open") if talk is None else talk)

    def rows_from_records(self, base, recs, ops, talk):
        setup = [r for r in recs if r.get("kind") == "setup"][0]
        trials = [r for r in recs if r.get("kind") == "trial"]
        stats = [r for r in recs if r.get("kind") == "stats"]
        stats_err = [r["reason"] for r in recs if r.get("kind") == "stats_error"]
        events = sum(t["events"] for t in trials)
        triggers = sum(t["triggers"] for t in trials)
        status, reason = count_check(events, triggers)
        if status == "ok":
            status, reason = baseline_check(trials)
        baseline, _, _ = median_ci([t["base_ns"] / float(ops) for t in trials])
        common = dict(base, events=events, triggers=triggers, baseline_ns=baseline)

        body, runs_per_op = stats_body(stats, ops)
        body_med = median_ci(body)[0] if body else None
        wall = dict(common, **timing_fields("wall_abba", per_op_added(trials, ops), ops))
        rows = []
        if body_med is not None:
            wall["body_ns"] = body_med
            wall["runs_per_op"] = runs_per_op
            wall["dispatch_ns"] = wall["ns_median"] - body_med * runs_per_op
        rows.append(self.row(status, reason, **wall))
        if trials and "hook_cpu_ns" in trials[0]:
            cpu = dict(common, **timing_fields("cpu_abba", per_op_added(trials, ops, "base_cpu_ns", "hook_cpu_ns"),
                                               ops))
            if body_med is not None:
                cpu.update(body_ns=body_med, runs_per_op=runs_per_op,
                           dispatch_ns=cpu["ns_median"] - body_med * runs_per_op)
            rows.append(self.row(status, reason, **cpu))
        if talk:
            rows.append(self.row(status, reason, **dict(
                common, **timing_fields("talk_stime", per_op_added(trials, ops, "base_stime_ns", "hook_stime_ns"),
                                        ops))))
            rows.append(self.row(status, reason, **dict(
                common, clk_tck=setup["clk_tck"],
                **timing_fields("talk_jiffies", jiffies_added(trials, ops, setup["clk_tck"]), ops))))
        if stats:
            s_events = sum(s["events"] for s in stats)
            s_status, s_reason = count_check(s_events, sum(s["triggers"] for s in stats))
            srow = dict(base, events=s_events, triggers=sum(s["triggers"] for s in stats),
                        runs_per_op=runs_per_op, **timing_fields("bpf_stats", body, ops))
            srow["body_ns"] = body_med
            if body_med is not None:
                srow["dispatch_ns"] = wall["ns_median"] - body_med * runs_per_op
            rows.append(self.row(s_status, s_reason, **srow))
        elif stats_err:
            rows.append(self.row("unsupported", stats_err[0], method="bpf_stats", **base))
        return rows

    # -- packets: the agent makes (and always removes) two netns joined by a veth pair --
    def net_rows(self, hook, variant):
        prefix, attach_point = NET_HOOKS[hook]
        base = dict(hook=hook, attach_point=attach_point, variant=variant, program="%s_%s" % (prefix, variant))
        ip = shutil.which("ip") or ("/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else None)
        if not ip:
            return [self.row("unsupported", "iproute2's ip command not found: cannot make the veth pair", **base)]
        tag = "labhook%d" % os.getpid()
        tx, rx = tag + "tx", tag + "rx"
        cmds = [["netns", "add", tx], ["netns", "add", rx],
                ["-n", tx, "link", "add", "vtx", "type", "veth", "peer", "name", "vrx", "netns", rx],
                ["-n", tx, "addr", "add", "10.201.0.1/24", "dev", "vtx"],
                ["-n", rx, "addr", "add", "10.201.0.2/24", "dev", "vrx"],
                ["-n", tx, "link", "set", "vtx", "up"], ["-n", rx, "link", "set", "vrx", "up"]]
        try:
            for c in cmds:
                p = subprocess.run([ip] + c, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   universal_newlines=True)
                if p.returncode != 0:
                    return [self.row("unsupported", "ip %s: %s" % (" ".join(c), p.stderr.strip()), **base)]
            return self.syscall_rows(hook, variant, "net", NET_HOOKS[hook], self.net_ops, "hook_net.bpf.o",
                                     ["--netns-tx", "/run/netns/" + tx, "--netns-rx", "/run/netns/" + rx,
                                      "--ifname", "vrx", "--dst", "10.201.0.2", "--port", 9000,
                                      "--xdp-mode", "drv" if hook == "xdp_drv" else "skb"], talk=False)
        finally:
            for ns in (tx, rx):
                subprocess.run([ip, "netns", "del", ns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # -- perf_event: throughput a CPU-bound loop loses to sampling at each frequency --
    def perf_rows(self):
        for event in self.perf_events:
            for freq in self.freqs:
                for variant in ["none"] + self.variants:
                    for row in self.perf_one(event, freq, variant):
                        yield row

    def perf_one(self, event, freq, variant):
        prog = "none" if variant == "none" else "perf_event_%s" % variant
        what = "software cpu-clock" if event == "sw" else "hardware cycles"
        base = dict(hook="perf_event", attach_point="%s %d Hz (this process)" % (what, freq),
                    variant=variant, program=prog, freq_hz=freq, perf_event=event)
        args = ["--obj", self.ctx.path("hook_perf.bpf.o"), "--prog", prog, "--event", event, "--freq", freq,
                "--ms", self.perf_ms, "--trials", self.perf_trials, "--stats-trials", self.stats_trials]
        self.ctx.log("perf_event %s %d Hz %s" % (event, freq, variant))
        try:
            recs = run_bench(self.helper, "perf", args)
        except Refused as e:
            return [self.row("unsupported", str(e), **base)]
        except (Failed, subprocess.TimeoutExpired) as e:
            return [self.row("error", str(e), **base)]
        setup = [r for r in recs if r.get("kind") == "setup"][0]
        trials = [r for r in recs if r.get("kind") == "trial"]
        stats = [r for r in recs if r.get("kind") == "stats"]
        counts = [r for r in recs if r.get("kind") == "count"]
        ops, period = setup["ops"], setup["period_ns"]
        extra = {}
        if counts:  # the independent count: samples the kernel recorded in the event's ring buffer
            status, reason, events, expected = sample_check(counts)
            check = ("events vs samples the kernel recorded in the event's ring buffer (+ lost), "
                     "%d count trials" % len(counts))
            if period:
                extra["delivered_pct"] = delivered_pct(counts, period)
            per_trial_events = [t["events"] for t in trials]  # proven equal to the samples above
        elif period:
            status, reason, expected = perf_check(trials, period)
            if prog == "none":  # no program: nothing to count, clock/period is only the sample estimate
                status, reason = "ok", ""
            events = sum(t["events"] for t in trials) if prog != "none" else None
            per_trial_events = [perf_expected(t["clock_ns"], period) for t in trials]
            check = "events vs cpu-clock time / period (tolerance %d%%)" % (PERF_TOLERANCE * 100)
        else:  # hardware cycles in frequency mode without a count phase: no independent count
            expected = None
            per_trial_events = [t["events"] for t in trials]
            events = sum(per_trial_events) if prog != "none" else None
            fired = prog == "none" or sum(per_trial_events) > 0
            status, reason = ("ok", "") if fired else ("invalid", "the program never fired")
            check = "events > 0 (frequency mode has no independent trigger count)"
        added = [(t["hook_ns"] - t["base_ns"]) / float(max(1, e)) for t, e in zip(trials, per_trial_events)]
        loss = [100.0 * (t["hook_ns"] - t["base_ns"]) / t["hook_ns"] for t in trials]
        lmed, llo, lhi = median_ci(loss)
        fields = dict(base, **timing_fields("throughput_abba", added, ops))
        fields.update(events=events, triggers=expected,
                      loss_pct_median=lmed, loss_pct_ci_low=llo, loss_pct_ci_high=lhi,
                      loss_samples=[round(x, 4) for x in loss], trigger_check=check,
                      loop_ns=median_ci([t["base_ns"] for t in trials])[0], **extra)
        if extra.get("delivered_pct") is not None and extra["delivered_pct"] < 100 * (1 - PERF_TOLERANCE):
            fields["sample_note"] = ("the kernel generated %.0f%% of the clock/period samples (its timer fired late; "
                              "missed periods are skipped): cost is per sample generated" % extra["delivered_pct"])
        body, runs_per_op = stats_body(stats, ops)
        rows = []
        if body:
            fields["body_ns"] = median_ci(body)[0]
            fields["dispatch_ns"] = fields["ns_median"] - fields["body_ns"]
        rows.append(self.row(status, reason, **fields))
        if body:
            # bpf_stats rows share the throughput row's count check (run_cnt == events in this phase)
            srow = dict(base, events=events, triggers=expected, runs=sum(s["run_cnt"] for s in stats),
                        **timing_fields("bpf_stats", body, ops))
            srow.update(body_ns=fields["body_ns"], dispatch_ns=fields["dispatch_ns"], trigger_check=check, **extra)
            rows.append(self.row(status, reason, **srow))
        return rows


def run(ctx):
    for row in Suite(ctx).run():
        yield row
