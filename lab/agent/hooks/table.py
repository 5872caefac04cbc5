"""The attach types the hook suite measures on two workloads (the open path, lab/agent/hooks/suite.py, and
in-kernel triggers, lab/agent/hooks/batch.py), in one table: each hook's attach kind as libbpf names it
and its family. Function hooks attach to a kernel function (do_sys_openat2; bpf_get_numa_node_id for
kernel_batch), tracepoint hooks to a tracepoint (the syscall's own, or sys_enter filtered to its
number; bpf_test_run:bpf_trigger_tp for kernel_batch)."""

ATTACH = {
    # hook: (attach kind, family)
    "kprobe": ("kprobe", "function"),
    "kretprobe": ("kretprobe", "function"),
    "kprobe_multi": ("kprobe.multi", "function"),
    "tracepoint": ("tracepoint", "tracepoint"),
    "raw_tp": ("raw_tracepoint", "tracepoint"),
    "tp_btf": ("tp_btf", "tracepoint"),
    "fentry": ("fentry", "function"),
    "fexit": ("fexit", "function"),
}


def syscall_point(hook, function, syscall, nr):
    """Where a hook attaches to observe one syscall: function hooks on `function`, tracepoint on the
    syscall's sys_enter_ tracepoint, raw_tp and tp_btf on sys_enter filtered to its number `nr`."""
    kind, family = ATTACH[hook]
    if family == "function":
        return "%s %s" % (kind, function)
    if hook == "tracepoint":
        return "tracepoint syscalls:sys_enter_%s" % syscall
    return "%s sys_enter, id == %d (%s)" % (kind, nr, syscall)
