"""Hook suite: what one event costs on each attach type, with proof that the program fired.

All measuring happens in the static C helper `hookbench` (built on the host, pushed with the
agent); this module only picks what to run, turns its per-trial records into rows and keeps the
suite going when the kernel refuses a hook (a row with status "unsupported" and the kernel's text).

Parameters (playbook `suites.hooks`, all optional):
  trials (10), stats_trials (3), ops (20000 opens per trial), uprobe_ops (5000), net_ops (5000),
  hooks (all of HOOKS), variants (["body", "empty"]; "heavy" = the sanity-check program; "count" =
  kernel_batch rows only, the kernel bench's program: no tgid filter, an atomic per-CPU count),
  freqs ([99, 999, 9999]), perf_events (["sw", "hw"]), perf_samples (1000: samples every program
  arm of a perf trial generates at least; trials are sized by samples, not time), perf_trials (6),
  path ("/dev/null": the file the open loop opens), kernel_batch (true: also measure every selected
  open-path hook with method kernel_batch, lab/agent/hooks/batch.py; fmod_ret is measured only so),
  batch (100 triggers per driver
  run), batch_trials (30 ABBA pairs), batch_block_ms (100 ms per block), uprobe_targets (["lea", "nop"]),
  latency (false: true gives only the open path's latency percentiles under each open-path hook,
  lab/agent/latency/hooks.py, with latency_trials and latency_ops).

Every row says what its figure is per (`per`): "openat+close" (the talk's open loop), "call"
(uprobe: one call of the target, `uprobe_target` "lea" = first instruction single-stepped out of line,
"nop" = emulated), "datagram" (packets), "sample" (perf_event), "in-kernel trigger" or "getpgid"
(kernel_batch). Rows that pass their count checks go through the plausibility gates of
lab/agent/hooks/gates.py (re-measured once, then "inconclusive" with the reason).

Rows (see schema.SUITES["hooks"]); for each (hook, variant) that loads:
  method "wall_abba"     precise: added wall ns per op (hook trial minus the adjacent baseline
                         trial, ABBA order), median and bootstrap 95% CI over trials.
  method "cpu_abba"      the same trials timed with the thread's CPU clock (CLOCK_THREAD_CPUTIME_ID):
                         blind to other tasks preempting the loop, so steadier on a shared machine.
  method "talk_stime"    the talk's: added kernel-mode time per op from getrusage (open path).
  method "talk_jiffies"  the talk's exact metric: /proc/self/stat stime ticks per op (open path).
  method "bpf_stats"     body time per program run from run_time_ns / run_cnt (stats switched on
                         only for this phase); dispatch_ns = wall added - body x runs per op.
perf_event rows (lab/agent/hooks/perf.py): per variant none / empty / body, ns per sample over a
no-event baseline, with the none arm of the same trials paired in body/empty rows (none_samples,
minus_none_samples); loss_pct_* = throughput the loop lost.
"""

import os
import shutil
import subprocess
import time

from ..common import TCG_NOTE, check_params, median_ci, timing_fields
from ..latency import abba as latabba
from ..latency import hooks as latency
from . import precision
from .batch import (
    BATCH_HOOKS,
    BATCH_ONLY,
    PER_GETPGID,
    PER_KERNEL,
    batch_rows,
    kernel_has_trigger_tp,
    run_batch,
    stats_net,
)
from .gates import Gates, measure_gated
from .hookbench import Failed, Refused, run_bench  # noqa: F401 (tests')
from .perf import perf_rows_from_records
from .table import ATTACH, on, syscall_point
from .table import HOOKS as HOOKS_TABLE

# hook: (program prefix, attach point)
OPEN_HOOKS = {h: (h, syscall_point(h, "do_sys_openat2", "openat", 257)) for h in ATTACH}
UPROBE_HOOKS = {h: (HOOKS_TABLE[h].prog, HOOKS_TABLE[h].point) for h in on("uprobe")}
# uprobe targets: function in hookbench and what x86 does with its first instruction
UPROBE_TARGETS = {
    "lea": ("lab_uprobe_target", "first instruction lea: single-stepped out of line"),
    "nop": ("lab_uprobe_nop", "first instruction nop: emulated, no single-step"),
}
PER = {"open": "openat+close", "uprobe": "call", "net": "datagram"}
NET_HOOKS = {h: (HOOKS_TABLE[h].prog, HOOKS_TABLE[h].point) for h in on("net")}
HOOKS = list(HOOKS_TABLE)  # every attach type, in the registry's order

VARIANTS = ("body", "empty", "heavy", "count")
BATCH_VARIANTS = ("count",)  # kernel_batch only: the kernel bench's own program (hook_batch.bpf.c)
PARAMS = ("trials", "stats_trials", "ops", "uprobe_ops", "net_ops", "hooks", "variants", "freqs", "perf_events",
          "perf_samples", "perf_trials", "path", "kernel_batch", "batch", "batch_trials", "batch_block_ms",
          "uprobe_targets", "batch_only") + precision.PARAMS + latabba.PARAMS


def check(params):
    """Problems with the playbook's hooks parameters (checked on the host before anything boots)."""
    problems = precision.check(params) + latabba.check(params, ("open",))
    return problems + check_params(params, PARAMS, {"hooks": HOOKS, "variants": VARIANTS, "perf_events": ("sw", "hw"),
                                         "uprobe_targets": tuple(UPROBE_TARGETS),
                                         "freqs": lambda f: None if isinstance(f, int) and f > 0 else
                                         "a positive frequency in Hz"},
                        ints=("trials", "stats_trials", "ops", "uprobe_ops", "net_ops", "perf_samples", "perf_trials",
                              "batch", "batch_trials", "batch_block_ms"))

TICKS_UNDER_ICOUNT = ("not measurable in guest instructions: the talk's stime and jiffies figures count "
                      "scheduler ticks, and a tick is millions of instructions under instruction counting")


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
        self.perf_samples = int(p("perf_samples", 1000))
        self.perf_trials = int(p("perf_trials", 6))
        self.path = str(p("path", "/dev/null"))
        self.kernel_batch = bool(p("kernel_batch", True))
        # kernel_batch rows only (no open path, uprobe, perf_event or packet rows): the event-count runs
        self.batch_only = bool(p("batch_only", False))
        self.batch = int(p("batch", 100))
        self.batch_trials = int(p("batch_trials", 30))
        self.batch_block_ms = int(p("batch_block_ms", 100))
        self.halfwidth = p("halfwidth", None)  # open path: trials until this % of the median (precision.py)
        self.budget_s = int(p("budget_s", 300))
        self.max_trials = int(p("max_trials", 200))
        self.uprobe_targets = list(p("uprobe_targets", ["lea", "nop"]))
        self.gates = Gates()
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
        if self.ctx.param("latency", False):  # the open path's latency percentiles (lab/agent/latency/hooks.py)
            yield from latency.rows(self, OPEN_HOOKS)
            return
        has_tp, why = kernel_has_trigger_tp()
        self.drift_reference(has_tp)
        for hook in self.hooks:
            if self.batch_only and not (hook in BATCH_HOOKS and self.kernel_batch):
                continue
            if "perf" in HOOKS_TABLE[hook].workloads:  # sampled: one row per event and frequency
                for event in self.perf_events:
                    for freq in self.freqs:
                        yield from measure_gated(self.gates, lambda e=event, f=freq: self.perf_one(e, f))
                continue
            if hook in UPROBE_HOOKS:
                for target in self.uprobe_targets:
                    yield from measure_gated(self.gates, lambda h=hook, t=target: self.hook_rows(h, t))
                continue
            if hook not in BATCH_ONLY and not self.batch_only:
                yield from measure_gated(self.gates, lambda h=hook: self.hook_rows(h))
            if hook in BATCH_HOOKS and self.kernel_batch:
                yield from measure_gated(self.gates, lambda h=hook: stats_net([
                    r for v in self.variants if v != "heavy" for r in batch_rows(self, h, v, has_tp, why)]))

    def drift_reference(self, has_tp, trials=4):
        """The drift gate's reference, measured first: a few baseline-only trials (no program) per
        workload the run times with a gated baseline, so the first rows are gated too. ~1-2 s on the
        host, a few s under TCG. Uprobe calls are not calibrated (their blocks are too short to gate),
        nor packets (they need the veth pair: their rows compare with the run's earlier rows)."""
        runs = []
        if any(h in OPEN_HOOKS for h in self.hooks) and not self.batch_only:
            runs.append((PER["open"], None, [self.helper, "open", "--obj", self.ctx.path("hook_open.bpf.o"),
                                                "--prog", "none", "--trials", trials, "--ops", self.ops,
                                                "--path", self.path]))
        if self.kernel_batch:
            batch = [BATCH_HOOKS[h][0] for h in self.hooks if h in BATCH_HOOKS]
            for trig in sorted(set("getpgid" if t == "kfunc" and not has_tp else t for t in batch)):
                runs.append((PER_GETPGID if trig == "getpgid" else PER_KERNEL, trig, [
                    self.ctx.path("batchbench"), "--obj", self.ctx.path("hook_batch.bpf.o"), "--baseline-only",
                    "--trigger", trig, "--batch", self.batch, "--trials", trials,
                    "--block-ms", min(self.batch_block_ms, 50)]))
        for per, trig, cmd in runs:
            try:
                recs = run_bench(cmd[0], cmd[1], cmd[2:], timeout=300) if trig is None else \
                    run_batch(cmd[0], cmd[1:], timeout=300)
            except (Refused, Failed, RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                self.ctx.log("drift reference for %s (%s) not measured: %s" % (per, trig or "open", e))
                continue
            ops = [r for r in recs if r.get("kind") == "setup"][0]["ops"]
            trial = [r for r in recs if r.get("kind") == "trial"]
            cpu = [t["base_cpu_ns"] / float(ops) for t in trial]
            if trig is None:
                self.gates.reference(per, "wall_abba", None, [t["base_ns"] / float(ops) for t in trial])
                self.gates.reference(per, "cpu_abba", None, cpu)
            else:
                self.gates.reference(per, "kernel_batch", trig, cpu)
            unit = "insn/op [guest instructions]" if self.ctx.base["figure_unit"] == "insn" else "ns/op (CPU)"
            self.ctx.log("drift reference %s%s: %.2f %s, %d baseline-only trials"
                         % (per, " (%s)" % trig if trig else "", sorted(cpu)[len(cpu) // 2], unit, len(cpu)))

    def hook_rows(self, hook, target=None):
        """Every variant's rows of one hook (the gates compare variants, so they are measured together)."""
        rows = []
        for variant in self.variants:
            if variant in BATCH_VARIANTS:
                continue
            if hook in OPEN_HOOKS:
                rows += self.syscall_rows(hook, variant, "open", OPEN_HOOKS[hook], self.ops, "hook_open.bpf.o",
                                          ["--path", self.path])
            elif hook in UPROBE_HOOKS:
                func, what = UPROBE_TARGETS[target]
                prefix, point = UPROBE_HOOKS[hook]
                rows += [dict(r, uprobe_target=target, uprobe_target_note=what) for r in self.syscall_rows(
                    hook, variant, "uprobe", (prefix, point % func), self.uprobe_ops, "hook_uprobe.bpf.o",
                    ["--target", func])]
            else:
                rows += self.net_rows(hook, variant)
        return stats_net(rows)

    # -- open path, uprobe and packets share the row shape --
    def syscall_rows(self, hook, variant, mode, spec, ops, obj, extra, talk=None):
        prefix, attach_point = spec
        prog = "%s_%s" % (prefix, variant)
        base = dict(hook=hook, attach_point=attach_point, variant=variant, program=prog, per=PER[mode])
        args = ["--obj", self.ctx.path(obj), "--prog", prog, "--trials", self.trials,
                "--ops", ops, "--stats-trials", self.stats_trials] + extra
        self.ctx.log("%s %s: %d trials x %d ops" % (hook, variant, self.trials, ops))
        extra_fields = {}
        try:
            started = time.monotonic()
            recs = run_bench(self.helper, mode, args)
            if mode == "open" and self.halfwidth is not None:
                again = list(args)
                again[again.index("--stats-trials") + 1] = 0  # later rounds: ABBA trials only
                recs, extra_fields = precision.widen(
                    lambda: run_bench(self.helper, mode, again), lambda t: per_op_added(t, ops), recs,
                    self.halfwidth, self.budget_s, self.max_trials, self.ctx.log, started=started)
        except Refused as e:
            return [self.row("unsupported", str(e), **base)]
        except (Failed, subprocess.TimeoutExpired) as e:
            return [self.row("error", str(e), **base)]
        rows = self.rows_from_records(base, recs, ops, talk=(mode == "open") if talk is None else talk)
        for r in rows:
            if r.get("method") in ("wall_abba", "cpu_abba"):
                r.update(extra_fields)
        return rows

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
        base_wall = [t["base_ns"] / float(ops) for t in trials]
        common = dict(base, events=events, triggers=triggers, baseline_ns=median_ci(base_wall)[0])

        body, runs_per_op = stats_body(stats, ops)
        body_med = median_ci(body)[0] if body else None
        wall = dict(common, base_samples=[round(b, 3) for b in base_wall],
                    **timing_fields("wall_abba", per_op_added(trials, ops), ops))
        rows = []
        if body_med is not None:
            wall["body_ns"] = body_med
            wall["runs_per_op"] = runs_per_op
            wall["dispatch_ns"] = wall["ns_median"] - body_med * runs_per_op
        rows.append(self.row(status, reason, **wall))
        if trials and "hook_cpu_ns" in trials[0]:
            base_cpu = [t["base_cpu_ns"] / float(ops) for t in trials]
            cpu = dict(common, **timing_fields("cpu_abba", per_op_added(trials, ops, "base_cpu_ns", "hook_cpu_ns"),
                                               ops))
            cpu.update(baseline_ns=median_ci(base_cpu)[0], base_samples=[round(b, 3) for b in base_cpu])
            if body_med is not None:
                cpu.update(body_ns=body_med, runs_per_op=runs_per_op,
                           dispatch_ns=cpu["ns_median"] - body_med * runs_per_op)
            rows.append(self.row(status, reason, **cpu))
        if talk and self.ctx.accelerator == "icount":
            for m in ("talk_stime", "talk_jiffies"):
                rows.append(self.row("unsupported", TICKS_UNDER_ICOUNT, method=m, **base))
        elif talk:
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
        base = dict(hook=hook, attach_point=attach_point, variant=variant, program="%s_%s" % (prefix, variant),
                    per=PER["net"])
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
                p = subprocess.run([ip] + c, capture_output=True, text=True)
                if p.returncode != 0:
                    return [self.row("unsupported", "ip %s: %s" % (" ".join(c), p.stderr.strip()), **base)]
            return self.syscall_rows(hook, variant, "net", NET_HOOKS[hook], self.net_ops, "hook_net.bpf.o",
                                     ["--netns-tx", "/run/netns/" + tx, "--netns-rx", "/run/netns/" + rx,
                                      "--ifname", "vrx", "--dst", "10.201.0.2", "--port", 9000,
                                      "--xdp-mode", HOOKS_TABLE[hook].mode or "skb"], talk=False)
        finally:
            for ns in (tx, rx):
                subprocess.run([ip, "netns", "del", ns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # -- perf_event: what sampling costs a CPU-bound loop, per sample, with and without a program --
    def perf_one(self, event, freq):
        """One helper run per event and frequency: base, none and every variant's arm in each trial."""
        what = "software cpu-clock" if event == "sw" else "hardware cycles"
        base = dict(hook="perf_event", attach_point="%s %d Hz (this process)" % (what, freq), freq_hz=freq,
                    perf_event=event, per="sample")
        variants = [v for v in self.variants if v != "none" and v not in BATCH_VARIANTS]
        progs = ",".join("perf_event_%s" % v for v in variants) or "none"
        args = ["--obj", self.ctx.path("hook_perf.bpf.o"), "--prog", progs, "--event", event, "--freq", freq,
                "--samples", self.perf_samples, "--trials", self.perf_trials, "--stats-trials", self.stats_trials]
        self.ctx.log("perf_event %s %d Hz: none + %s, %d trials of >= %d samples"
                     % (event, freq, ", ".join(variants) or "no program", self.perf_trials, self.perf_samples))
        try:
            recs = run_bench(self.helper, "perf", args, timeout=3600)
        except Refused as e:
            return [self.row("unsupported", str(e), **dict(base, variant=v, program=p))
                    for v, p in [("none", "none")] + [(v, "perf_event_%s" % v) for v in variants]]
        except (Failed, subprocess.TimeoutExpired) as e:
            return [self.row("error", str(e), **dict(base, variant="none", program="none"))]
        return perf_rows_from_records(self.row, base, recs, freq, variants)


def run(ctx):
    yield from Suite(ctx).run()
