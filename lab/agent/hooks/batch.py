"""Hook suite, method "kernel_batch": added ns per event with the triggers fired inside the kernel.

The static helper `batchbench` (bpf/helpers/batchbench/, programs in bpf/hook_batch.bpf.c) runs a
driver program with BPF_PROG_TEST_RUN on its pinned CPU; the driver calls a cheap trigger `batch`
times per run, as the kernel's selftests/bpf trigger benchmarks do:
  kprobe, kretprobe, kprobe_multi, fentry, fexit  attach to bpf_get_numa_node_id(), the helper the
                                                 driver calls;
  tracepoint, raw_tp, tp_btf                     attach to bpf_test_run:bpf_trigger_tp, which the kfunc
                                                 bpf_modify_return_test_tp() fires (Linux 6.10+);
  fmod_ret                                       to that kfunc itself (kernel_batch only: the open path
                                                 has no function fmod_ret may attach to; no fallback).
Two baselines, both measured in every trial (blocks in ABC / CBA order, A bare, B hooked, C count):
  kernel-count  the counting driver (an atomic add to this CPU's counter per iteration, no helper
                call: the kernel bench's `trig-kernel-count` exactly). hooked - kernel-count is the
                figure the kernel bench reports as a hook's cost over its counting baseline; for
                tracepoint / raw_tp / tp_btf it includes
                the kfunc call and the tracepoint glue. This is the headline `ns_median` (`baseline`
                = "kernel-count"), so the row compares with the kernel bench's published figures.
  bare          the same driver with nothing attached: `bare_ns_median` / `bare_ns_ci_*`.
Where the kernel lacks that kfunc or tracepoint, the tracepoint family falls back to a getpgid()
loop in user space with the hooks on sys_enter (filtered to getpgid) and the row says so (`per:
"getpgid"`, `fallback`); it has no counting driver, so its headline is over the bare loop
(`baseline` = "bare").
Blocks last about `batch_block_ms`, on a pinned thread, after a discarded warm-up. The reported
figure is the thread's CPU time per trigger (blind to other tasks preempting the thread); wall
time over the same baseline is kept as `wall_*` columns. Events are counted per CPU by the program
and must equal the triggers exactly; so must the counting driver's own count.
"""

import subprocess

from ..common import median_ci, timing_fields
from . import kprobes, marks
from .table import ATTACH, HOOKS, on, syscall_point

PER_KERNEL = "in-kernel trigger"
COUNT_NOTE = ("the kernel bench's program: no tgid filter, an atomic add to this CPU's counter "
              "(counts every process's events on the hook; the empty variant filters by tgid first)")
PER_GETPGID = "getpgid"

HELPER_POINT = "bpf_get_numa_node_id (helper the driver calls %d times per BPF_PROG_TEST_RUN)"
TP_POINT = "bpf_test_run:bpf_trigger_tp (fired by the kfunc bpf_modify_return_test_tp, %d per run)"
FMODRET_POINT = ("fmod_ret bpf_modify_return_test_tp (the kfunc the driver calls %d times per run; returns 0, "
                 "so the kfunc runs)")
# hook: (trigger, attach kind): function hooks on the helper, tracepoint hooks on bpf_trigger_tp
BATCH_HOOKS = {h: ("helper" if family == "function" else "kfunc", kind) for h, (kind, family) in ATTACH.items()}
BATCH_HOOKS.update((h, ("kfunc" if h == "fmod_ret" else "helper", HOOKS[h].kind)) for h in on("batch")
                   if h not in ATTACH)  # fmod_ret on the kfunc; kprobe_off / kprobe_int3 on the helper
BATCH_ONLY = tuple(h for h in on("batch") if h not in ATTACH)  # no open-path rows (fmod_ret)
PGID_POINT = {h: syscall_point(h, "", "getpgid", 121) for h, (_, family) in ATTACH.items() if family == "tracepoint"}


def kernel_has_trigger_tp(btf_path="/sys/kernel/btf/vmlinux"):
    """(bool, why): does the kernel have the kfunc and tracepoint the kfunc driver needs?"""
    try:
        with open(btf_path, "rb") as f:
            data = f.read()
    except OSError as e:
        return False, "cannot read %s (%s)" % (btf_path, e)
    missing = [n for n in ("bpf_modify_return_test_tp", "btf_trace_bpf_trigger_tp")
               if b"\0" + n.encode() + b"\0" not in data]
    if missing:
        return False, "the kernel has no %s (Linux 6.10+)" % " / ".join(missing)
    return True, ""


def plan(hook, batch, has_tp):
    """(trigger, program prefix, attach_point, per) for a hook on this kernel; trigger None: the
    kernel cannot run it (fmod_ret without the kfunc)."""
    trigger, kind = BATCH_HOOKS[hook]
    if HOOKS[hook].batch_on == "kfunc":  # attached to the kfunc itself (fmod_ret): only its trigger runs it
        return ("kfunc" if has_tp else None), hook, FMODRET_POINT % batch, PER_KERNEL
    if trigger == "helper":
        where = " (off its ftrace site)" if hook in kprobes.OFF_FTRACE else ""
        return "helper", HOOKS[hook].prog, "%s %s%s" % (kind, HELPER_POINT % batch, where), PER_KERNEL
    if has_tp:
        return "kfunc", hook, "%s %s" % (kind, TP_POINT % batch), PER_KERNEL
    return "getpgid", hook + "_pgid", PGID_POINT[hook], PER_GETPGID


def added(trials, ops, base_key, hook_key):
    return [(t[hook_key] - t[base_key]) / float(ops) for t in trials]


def hw_insn_fields(setup, trials, ops, ref):
    """Instructions per event counted by the CPU itself (PERF_COUNT_HW_INSTRUCTIONS around the
    hooked and baseline blocks), where the kernel offers the counter; else why not."""
    hw = setup.get("hw_insns")
    if hw is None:
        return {}
    if hw != "ok" or not trials or any(t.get("hook_insns") is None or t.get(ref, -1) < 0 for t in trials):
        return {"hw_insn_note": "the CPU's instruction counter is not offered here (%s)" % hw}
    per = [(t["hook_insns"] - t[ref]) / float(ops) for t in trials]
    med, lo, hi = median_ci(per)
    return {"hw_insn_median": med, "hw_insn_ci_low": lo, "hw_insn_ci_high": hi,
            "hw_insn_samples": [round(x, 3) for x in per]}


def rows_from_records(row, base, recs):
    """kernel_batch (+ bpf_stats) rows from batchbench's records; `row(status, reason, **fields)`."""
    setup = [r for r in recs if r.get("kind") == "setup"][0]
    trials = [r for r in recs if r.get("kind") == "trial"]
    stats = [r for r in recs if r.get("kind") == "stats"]
    stats_err = [r["reason"] for r in recs if r.get("kind") == "stats_error"]
    ops = setup["ops"]
    events = sum(t["events"] for t in trials)
    triggers = sum(t["triggers"] for t in trials)
    status, reason = "ok", ""
    if events != triggers:
        status, reason = "invalid", "program counted %d events for %d triggers" % (events, triggers)
    elif any(t["base_events"] for t in trials):
        status, reason = "invalid", "the program counted events during a baseline block (it was not detached)"
    elif any(t.get("count_calls") not in (None, t["triggers"]) for t in trials):
        status, reason = "invalid", "the counting driver counted %s calls for %d triggers" % (
            [t["count_calls"] for t in trials], trials[0]["triggers"])
    counting = bool(trials) and all(t.get("count_cpu_ns") is not None for t in trials)
    ref, ref_cpu = ("count_ns", "count_cpu_ns") if counting else ("base_ns", "base_cpu_ns")
    base = dict(base, events=events, triggers=triggers, batch=setup["batch"], runs_per_block=setup["runs"],
                cpu=setup["cpu"], trigger=setup["trigger"], clock="thread CPU time",
                baseline="kernel-count" if counting else "bare")
    if not counting:
        base["baseline_note"] = "no counting driver for the getpgid loop: over the bare loop"
    base_cpu = [t["base_cpu_ns"] / float(ops) for t in trials]
    wall = added(trials, ops, ref, "hook_ns")
    wmed, wlo, whi = median_ci(wall)
    fields = dict(base, **timing_fields("kernel_batch", added(trials, ops, ref_cpu, "hook_cpu_ns"), ops))
    bare = added(trials, ops, "base_cpu_ns", "hook_cpu_ns")
    bmed, blo, bhi = median_ci(bare)
    fields.update(baseline_ns=median_ci(base_cpu)[0], base_samples=[round(b, 4) for b in base_cpu],
                  bare_ns_median=bmed, bare_ns_ci_low=blo, bare_ns_ci_high=bhi,
                  bare_samples=[round(b, 3) for b in bare],
                  wall_ns_median=wmed, wall_ns_ci_low=wlo, wall_ns_ci_high=whi,
                  wall_samples=[round(w, 3) for w in wall])
    fields["foreign_trials"] = sum(1 for t in trials if t.get("foreign"))
    # another process had the kernel's BPF stats on during the hooked block: its clock reads are in ours
    fields["stats_on_trials"] = sum(1 for t in trials if t.get("stats_runs"))
    if counting:
        count_cpu = [t["count_cpu_ns"] / float(ops) for t in trials]
        fields.update(count_ns=median_ci(count_cpu)[0], count_samples=[round(c, 4) for c in count_cpu])
    fields.update(hw_insn_fields(setup, trials, ops, "count_insns" if counting else "base_insns"))
    fields.update(marks.row_fields(setup, trials))
    fields.update(kprobes.row_fields(base["hook"], setup))
    rows = [row(status, reason, **fields)]
    if stats:
        body = [s["run_time_ns"] / float(s["run_cnt"]) for s in stats if s["run_cnt"]]
        # what switching the stats on costs per program run: hooked block with stats minus without
        cost = [(s["hook_cpu_ns"] - s["off_cpu_ns"]) / float(s["run_cnt"]) for s in stats if s["run_cnt"]]
        s_ev, s_tr = sum(s["events"] for s in stats), sum(s["triggers"] for s in stats)
        s_status, s_reason = ("ok", "") if s_ev == s_tr else (
            "invalid", "program counted %d events for %d triggers" % (s_ev, s_tr))
        srow = dict(base, events=s_ev, triggers=s_tr, **timing_fields("bpf_stats", body, ops))
        srow["body_ns"] = srow["ns_median"]
        srow["stats_cost_ns"] = median_ci(cost)[0] if cost else None
        srow["stats_cost_samples"] = [round(c, 3) for c in cost]
        rows[0]["body_ns"] = srow["body_ns"]
        rows[0]["stats_cost_ns"] = srow["stats_cost_ns"]
        rows.append(row(s_status, s_reason, **srow))
    elif stats_err:
        rows.append(row("unsupported", stats_err[0], method="bpf_stats", **base))
    return rows


def stats_net(rows):
    """bpf_stats corrected for its own clock reads: body_net_ns = the body program's run_time_ns per run
    minus the empty program's (same hook, workload), which is mostly the stats' own in-window cost.
    Sets it on the body variant's rows; the raw body_ns is kept."""
    empty = {(r.get("hook"), r.get("per"), r.get("uprobe_target")): r["ns_median"] for r in rows
             if r.get("method") == "bpf_stats" and r.get("variant") == "empty" and r.get("ns_median") is not None}
    stats = {(r.get("hook"), r.get("per"), r.get("uprobe_target")): r for r in rows
             if r.get("method") == "bpf_stats" and r.get("variant") == "body" and r.get("ns_median") is not None}
    for r in rows:
        key = (r.get("hook"), r.get("per"), r.get("uprobe_target"))
        if r.get("variant") == "body" and key in empty and key in stats:
            r["body_net_ns"] = stats[key]["ns_median"] - empty[key]
            r["stats_floor_ns"] = empty[key]
    return rows


def run_batch(helper, args, timeout):
    """batchbench's records; raises (code, stderr text) as RuntimeError on failure."""
    import json

    proc = subprocess.run([helper] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        raise RuntimeError(proc.returncode, " | ".join(lines)[-1500:] or "no message")
    return [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]


def batch_rows(suite, hook, variant, has_tp, why_no_tp):
    """Rows for one (hook, variant) with method kernel_batch; falls back to getpgid if the kfunc
    driver is refused."""
    trigger, prefix, point, per = plan(hook, suite.batch, has_tp)
    fallback = "" if has_tp or trigger in ("helper", None) else "getpgid fallback: %s" % why_no_tp
    if trigger is None:
        return [suite.row("unsupported", "fmod_ret needs the kfunc bpf_modify_return_test_tp: %s" % why_no_tp,
                          method="kernel_batch", hook=hook, attach_point=point, variant=variant,
                          program="%s_%s" % (prefix, variant), per=per)]
    for attempt in (0, 1):
        prog = "%s_%s" % (prefix, variant)
        base = dict(hook=hook, attach_point=point, variant=variant, program=prog, per=per)
        if variant == "count":
            base["variant_note"] = COUNT_NOTE
        if fallback:
            base["fallback"] = fallback
        args = ["--obj", suite.ctx.path("hook_batch.bpf.o"), "--prog", prog, "--trigger", trigger,
                "--batch", suite.batch, "--trials", suite.batch_trials, "--block-ms", suite.batch_block_ms,
                "--stats-trials", suite.stats_trials] + marks.helper_args(suite.ctx.accelerator) + \
            kprobes.helper_args(hook)
        suite.ctx.log("%s %s kernel_batch (%s trigger): %d trials of 3 blocks of %d ms (bare, hooked, kernel-count)"
                      % (hook, variant, trigger, suite.batch_trials, suite.batch_block_ms))
        try:
            with kprobes.Optimization(hook):
                recs = run_batch(suite.ctx.path("batchbench"), args, timeout=600)
        except RuntimeError as e:
            code, text = e.args
            if code in (2, 3) and trigger == "kfunc" and attempt == 0 and hook in PGID_POINT:
                trigger, prefix, point, per = "getpgid", hook + "_pgid", PGID_POINT[hook], PER_GETPGID
                fallback = "getpgid fallback: the kfunc driver was refused: %s" % text[-300:]
                continue
            return [suite.row("unsupported" if code in (2, 3) else "error", text, method="kernel_batch", **base)]
        except (OSError, subprocess.TimeoutExpired) as e:
            return [suite.row("error", str(e), method="kernel_batch", **base)]
        return rows_from_records(suite.row, base, recs)
    return []
