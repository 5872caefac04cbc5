"""The result row schema, shared by the agent (checks before writing) and the host (validates on read).

Every row is one JSON object on one line. Fields common to all suites are in COMMON; each suite
adds its own. Types are Python types; a tuple means "any of". None is allowed only where listed
in OPTIONAL. See results/README.md for the meaning of each field.
"""

SCHEMA_VERSION = 1

NUM = (int, float)
STATUSES = ("ok", "unsupported", "invalid", "inconclusive", "error")
ACCELERATORS = ("kvm", "tcg", "icount", "host")
# What a timed row's figures (ns_median, ns_ci_*, samples, body_ns, ...) count: nanoseconds, or guest
# instructions under QEMU's instruction counting (icount, shift=0: the guest clock advances one ns per
# instruction executed). The field names keep "ns"; `figure_unit` says what they are. Never mixed.
UNITS = ("ns", "insn")

COMMON = {
    "schema": int,
    "run_id": str,
    "suite": str,
    "kernel": str,  # uname -r of the kernel measured
    "accelerator": str,  # kvm | tcg | icount | host (the machine's own kernel, no lab VM)
    "figure_unit": str,  # ns | insn: what the row's timing figures count (absent in rows before it: ns)
    "cpu_model": str,
    "vcpus": int,
    "status": str,  # ok | unsupported | invalid | error
    "reason": str,  # why, for any status but ok ("" when ok)
    "time": str,  # ISO 8601 UTC, when the row was produced
}

# Timing statistics every timed row carries (ns per operation).
TIMED = {
    "method": str,
    "trials": int,
    "ops_per_trial": int,
    "ns_median": NUM,
    "ns_ci_low": NUM,
    "ns_ci_high": NUM,
    "samples": list,  # per-trial ns/op values, for significance tests on the host
}

SUITES = {
    "hooks": dict(
        TIMED,
        hook=str,  # kprobe, kretprobe, tracepoint, raw_tp, tp_btf, fentry, fexit, kprobe_multi, ...
        attach_point=str,
        variant=str,  # body | empty
        body_ns=NUM,  # from kernel.bpf_stats_enabled run_time_ns/run_cnt
        dispatch_ns=NUM,  # ns_median - body_ns
        events=int,  # counted by the program
        triggers=int,  # issued by the trigger loop
    ),
    "maps": dict(
        TIMED,
        map_type=str,
        flags=int,
        key_space=str,  # dense | sparse | talk | cgroup | contention | collide | spread | occupancy-NN
        operation=str,  # update | lookup | memory
        driver=str,  # kernel | user | user_batch
        contention=str,  # 1cpu | allcpu | shared | disjoint
        nkeys=int,  # keys per thread (the working set)
        threads=int,  # threads updating/looking up at once (one pinned per CPU unless 1)
        max_entries=int,
        live_entries=int,
        memlock_measured=int,
        memlock_predicted=int,
        memlock_note=str,
        real_memory=int,
        fill=int,  # memory rows: the entries the stage asked to insert (inserted: how many went in)
        mem_charged=int,  # bytes per map the kernel charges (maps/charge.py): memcg 5.11+, rlimit before
    ),
    "tools": dict(
        TIMED,
        tool=str,
        load=str,
        baseline_ops=NUM,
        tool_ops=NUM,
        overhead_pct=NUM,
        overhead_cpu_pct=NUM,  # the same loss in work per second of the stressors' own CPU time
        overhead_cpu_samples=list,
        events=int,  # runs of the tool's programs in the proof phase
        cpu_total=NUM,  # decomposition (tools/cost.py), CPU ms per second of load: agent medians
        cpu_exec=NUM,
        cpu_user=NUM,
        cpu_unexplained=NUM,
        cpu_total_samples=list,  # per trial (the host computes the intervals)
        cpu_exec_samples=list,
        cpu_user_samples=list,
        cpu_unexplained_samples=list,
        load_ms=NUM,  # exec to attached, median over starts (one-time cost)
        verified_insns=int,  # summed over the tool's programs (None before 5.16)
        program_detail=dict,
        maps=list,
        not_separable=dict,
        verifier_us=NUM,  # the verifier's own "verification time", summed over the tool's programs (one-time)
        verifier_detail=dict,
        verifier_why=str,
        tools_combined=list,  # tool "all": the tools started together (method combined_abba)
        map_count=dict,  # the counting phase: map-operation calls/s per function and op (tools/mapaccess.py)
        user_tool=str,  # a user's tool (tools/user.py): command | push | bpftrace (resource "user")
        stopped_on=str,  # with halfwidth (tools/precision.py): halfwidth | budget | max_trials
        halfwidth_target=NUM,  # points asked for
        halfwidth_of=str,  # cpu (overhead_cpu_pct) | throughput (overhead_pct)
        halfwidth_reached=NUM,  # the agent's interval's half-width when it stopped (points)
        pairs_seconds=NUM,  # seconds the pairs took
        budget_s=int,  # the time budget for them
    ),
}

# Suite fields that may be absent or null (not every row measures everything).
OPTIONAL = {
    "figure_unit", "ns_median", "ns_ci_low", "ns_ci_high", "samples", "trials", "ops_per_trial", "method",
    "body_ns", "dispatch_ns", "events", "triggers",
    "max_entries", "live_entries", "memlock_measured", "memlock_predicted", "memlock_note",
    "real_memory", "mem_charged", "fill", "flags", "key_space", "driver", "contention", "nkeys", "threads",
    "baseline_ops", "tool_ops", "overhead_pct", "overhead_cpu_pct", "overhead_cpu_samples", "load", "variant",
    "attach_point",
    "cpu_total", "cpu_exec", "cpu_user", "cpu_unexplained", "cpu_total_samples", "cpu_exec_samples",
    "cpu_user_samples", "cpu_unexplained_samples", "load_ms", "verified_insns", "program_detail", "maps",
    "not_separable", "tools_combined", "verifier_us", "verifier_detail", "verifier_why", "map_count",
    "user_tool", "stopped_on", "halfwidth_target", "halfwidth_of", "halfwidth_reached", "pairs_seconds", "budget_s",
}


def validate(row):
    """Return a list of problems with `row` (empty when it is valid)."""
    problems = []
    if not isinstance(row, dict):
        return ["row is not a JSON object"]
    suite = row.get("suite")
    fields = dict(COMMON)
    if suite in SUITES:
        fields.update(SUITES[suite])
    else:
        problems.append("unknown suite %r" % (suite,))
    crashed = row.get("status") == "error" and suite in SUITES  # a suite that died has only COMMON fields
    for name, typ in fields.items():
        if name not in row or row[name] is None:
            if name not in OPTIONAL and not (crashed and name not in COMMON):
                problems.append("missing field %r" % name)
            continue
        value = row[name]
        if isinstance(value, bool) or not isinstance(value, typ):
            problems.append("field %r has type %s" % (name, type(value).__name__))
    if row.get("status") not in STATUSES:
        problems.append("status %r not in %s" % (row.get("status"), STATUSES))
    if row.get("accelerator") not in ACCELERATORS:
        problems.append("accelerator %r not in %s" % (row.get("accelerator"), ACCELERATORS))
    if row.get("figure_unit", "ns") not in UNITS:
        problems.append("figure_unit %r not in %s" % (row.get("figure_unit"), UNITS))
    if row.get("status") != "ok" and not row.get("reason"):
        problems.append("status %r without a reason" % row.get("status"))
    return problems
