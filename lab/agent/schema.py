"""The result row schema, shared by the agent (checks before writing) and the host (validates on read).

Every row is one JSON object on one line. Fields common to all suites are in COMMON; each suite
adds its own. Types are Python types; a tuple means "any of". None is allowed only where listed
in OPTIONAL. See results/README.md for the meaning of each field.
"""

# 2: every field a suite writes is declared below, and a row of version 2 or later with a field its
# suite does not declare is refused (the host lists it as a problem). Rows of version 1 (runs before
# it) are read through their recorded version: their undeclared fields are kept, not checked.
SCHEMA_VERSION = 2
STRICT_FROM = 2  # the first version whose rows may carry no undeclared field

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

# The latency mode of the hook and tool suites (method "latency_abba", lab/agent/latency/): per arm the
# median over trials of each trial's percentile (baseline_latency_*: without the tool or hook; latency_*:
# with it), in ns; per percentile the change with it in % of the baseline's (median over ABBA pairs) with
# its interval and per-pair samples; every pair's figures in latency_trials.
LATENCY_LEVELS = ("p50", "p90", "p99", "p999")
LATENCY = dict(
    workload=str,  # rr | timer | disk | open (lab/agent/latency/workloads.py)
    latency_unit=str,  # ns
    coordinated_omission=str,  # how the workload treats it
    requests_per_trial=int,  # the fewest requests in any arm of any trial
    min_requests=int,  # what p99.9 needs per arm and trial (10000)
    latency_levels=list,  # the percentiles of each arm's "q" list in latency_trials
    latency_trials=list,  # per ABBA pair: order, base {n, p50, p90, p99, p999, max, q}, tool {...}
    **{f"{arm}latency_{lv}": NUM for lv in LATENCY_LEVELS for arm in ("", "baseline_")},
    **{f"latency_{lv}_change_{x}": NUM for lv in LATENCY_LEVELS for x in ("pct", "ci_low", "ci_high")},
    **{f"latency_{lv}_change_samples": list for lv in LATENCY_LEVELS},
)

SUITES = {
    "hooks": dict(
        TIMED,
        **LATENCY,
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
        **LATENCY,
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

# The rest of what each suite writes, declared (results/README.md says what each means). All optional:
# a row carries those of the method, the workload and the kernel it measured.
MORE = {
    "hooks": dict(
        note=str, emulated=bool, unit=str, per=str, program=str, trigger=str, trigger_check=str, load=str,
        batch=int, cpu=int, runs=int, runs_per_block=int, runs_per_op=NUM, clock=str, clk_tck=int,
        irq_time_accounting=bool, fallback=str, first_attempt=str, remeasured=bool, foreign_trials=int,
        baseline=str, baseline_note=str, baseline_ns=NUM, base_samples=list, loop_ns=NUM,
        bare_ns_median=NUM, bare_ns_ci_low=NUM, bare_ns_ci_high=NUM, bare_samples=list,
        wall_ns_median=NUM, wall_ns_ci_low=NUM, wall_ns_ci_high=NUM, wall_samples=list,
        count_ns=NUM, count_samples=list, body_net_ns=NUM, delivered_pct=NUM,
        hw_insn_median=NUM, hw_insn_ci_low=NUM, hw_insn_ci_high=NUM, hw_insn_samples=list, hw_insn_note=str,
        stats_cost_ns=NUM, stats_cost_samples=list, stats_floor_ns=NUM, stats_on_trials=int,
        perf_event=str, freq_hz=int, samples_target=int, sample_counts=list, sample_note=str,
        loss_pct_median=NUM, loss_pct_ci_low=NUM, loss_pct_ci_high=NUM, loss_samples=list,
        none_samples=list, minus_none_samples=list, uprobe_target=str, uprobe_target_note=str,
        variant_note=str, stopped_on=str, halfwidth_target=NUM, halfwidth_reached=NUM, trials_used=int,
        trials_seconds=NUM, budget_s=int, halfwidth_of=str, pairs_seconds=NUM,  # the latter two: latency pairs
    ),
    "maps": dict(
        note=str, events=int, triggers=int, loop=str, loops=int, loop_ns=NUM, map_ns=NUM, agg_ns_per_op=NUM,
        wall_samples=list, cgroup=str, key_list=list, key_min=int, key_max=int, key_stride=int,
        buckets=int, buckets_used=int, chain_len=int, fill_entries=int, filler_entries=int, inserted=int,
        occupancy_pct=NUM, pid_max=int, possible_cpus=int, memlock_map_locked=str, memlock_regime=str,
        memlock_terms=dict, talk_setup_predicted=int, real_memory_note=str, real_memory_peak=int,
        real_memory_raw_delta=int,
        mem_charged_regime=str, mem_charged_method=str, mem_charged_resolution=int, mem_charged_copies=list,
        mem_charged_spread=int, mem_charged_vs_memlock_pct=NUM,  # maps/charge.py
    ),
    "tools": dict(
        note=str, emulated=bool, resource=str, disk=str, bpf_stats=str, programs=int, cpu_note=str, per=str,
        cpu_unit=str, per_stressor=dict, tool_build=str, tool_build_refused=list,
        tool_builds=dict, overhead_ci_low=NUM, overhead_ci_high=NUM, overhead_samples=list,
        overhead_cpu_ci_low=NUM, overhead_cpu_ci_high=NUM, events_per_s_samples=list,
        load_cpu_base_samples=list, load_cpu_tool_samples=list, load_ms_samples=list,
        tool_switches_per_s_samples=list, trials_used=int,
        cpu_incontext=NUM, cpu_incontext_samples=list, cpu_incontext_unexplained=NUM,
        cpu_incontext_unexplained_samples=list,  # tools/cost.py's cpu_<part>[_samples]
    ),
}
# What a kernel_batch row carries under the event-count plugin (the TCG plugin bpf/qemu/eventcount.c,
# its counters by name; the host adds them from its log: lab/results/events.py), and the kprobe's
# mechanism (lab/agent/hooks/kprobes.py).
EVENT_COUNTERS = ("insn", "pushf", "popf", "lock", "cpuid", "wrmsr", "iret", "swapgs", "fence", "syscall", "sysret",
                  "int3", "call", "ret", "indirect", "ret_miss", "ind_change", "exc_int3", "exc_other", "irq")
MORE["hooks"].update(
    event_windows=dict, events_note=str, ev_samples=dict, est_cycles=NUM, est_samples=list, est_unit=str,
    est_model=int, est_parts=dict, est_spread=NUM,  # est_model: the model's version (lab/data/cost_model.yaml)
    mechanism=str, kprobe_offset=(int, str),
    kprobes_optimization=int, **{"ev_" + n: NUM for n in EVENT_COUNTERS})
for _more in MORE.values():
    _more.update(mitigations=str)  # every row: "off" where booted with mitigations=off, else "default"
for _suite, _more in MORE.items():
    for _name, _typ in _more.items():
        SUITES[_suite].setdefault(_name, _typ)

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
} | {name for more in MORE.values() for name in more} | set(LATENCY)


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
        if (isinstance(value, bool) and typ is not bool) or not isinstance(value, typ):
            problems.append("field %r has type %s" % (name, type(value).__name__))
    version = row.get("schema")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        problems.append("row of schema version %d, newer than this lab reads (%d): update the lab"
                        % (version, SCHEMA_VERSION))
    elif suite in SUITES and isinstance(version, int) and not isinstance(version, bool) and version >= STRICT_FROM:
        unknown = sorted(k for k in row if k not in fields and not k.startswith("_"))
        if unknown:
            problems.append("field%s %s not in the %s suite's schema (version %d)"
                            % ("s" if len(unknown) > 1 else "", ", ".join(repr(k) for k in unknown), suite, version))
    if row.get("status") not in STATUSES:
        problems.append("status %r not in %s" % (row.get("status"), STATUSES))
    if row.get("accelerator") not in ACCELERATORS:
        problems.append("accelerator %r not in %s" % (row.get("accelerator"), ACCELERATORS))
    if row.get("figure_unit", "ns") not in UNITS:
        problems.append("figure_unit %r not in %s" % (row.get("figure_unit"), UNITS))
    if row.get("status") != "ok" and not row.get("reason"):
        problems.append("status %r without a reason" % row.get("status"))
    return problems
