"""The attach types the hook suite measures: the one registry of them (guest agent and host read it).

Each entry says how libbpf names its attach kind, its family, the workloads it runs on, its program
prefix in the BPF objects (programs PREFIX_empty / _body / _heavy, and _count under kernel_batch) and,
for hooks that are not on the open path, where it attaches. Everything else derives from here: the
suite's hook lists and parameters, the kernel_batch table, the plots' and tables' groups and order,
the reference bench's program names. Adding an attach type: its programs in bpf/hook_*.bpf.c, an
entry here, and (only if it attaches in a new way) a mode of the C helper (docs/extending.md).

Workloads: "open" (openat+close, lab/agent/hooks/suite.py), "batch" (kernel_batch: in-kernel triggers,
lab/agent/hooks/batch.py), "uprobe" (a call in the helper), "perf" (perf_event samples), "net" (a
datagram through veth). Function hooks attach to a kernel function (do_sys_openat2 on the open path;
bpf_get_numa_node_id under kernel_batch); tracepoint hooks to a tracepoint (the syscall's own, or
sys_enter filtered to its number; bpf_test_run:bpf_trigger_tp under kernel_batch).
Standard library only.
"""

from collections import OrderedDict, namedtuple

# kind: libbpf's attach kind; family: function | tracepoint | uprobe | perf | net; workloads: where it
# runs; prog: its programs' prefix; point: where it attaches off the open path; show: its place in the
# figures' order (the kernel bench's, cheapest first as it publishes them; None: after those, in
# registry order); mode: what the net helper is told (--xdp-mode); batch_on: what kernel_batch attaches
# it to ("" the hook's family decides: the helper for function hooks, the trigger tracepoint for
# tracepoint hooks; "kfunc": the kfunc itself, so it needs the kfunc trigger, as fmod_ret does); probe: where
# a kprobe sits ("" its function's entry, on the ftrace site; "off": past the ftrace site, an int3 or a
# jump as the kernel decides; "int3": the same with kprobe optimization off, always the int3).
Hook = namedtuple("Hook", "kind family workloads prog point show mode batch_on probe", defaults=(None, "", "", ""))
OPEN_BATCH = ("open", "batch")

HOOKS = OrderedDict([
    # name: Hook(libbpf attach kind, family, workloads, program prefix, attach point off the open path)
    ("kprobe", Hook("kprobe", "function", OPEN_BATCH, "kprobe", "", show=6)),
    ("kretprobe", Hook("kretprobe", "function", OPEN_BATCH, "kretprobe", "", show=9)),
    ("kprobe_multi", Hook("kprobe.multi", "function", OPEN_BATCH, "kprobe_multi", "", show=7)),
    ("kretprobe_multi", Hook("kretprobe.multi", "function", OPEN_BATCH, "kretprobe_multi", "", show=8)),
    ("tracepoint", Hook("tracepoint", "tracepoint", OPEN_BATCH, "tracepoint", "", show=5)),
    ("raw_tp", Hook("raw_tracepoint", "tracepoint", OPEN_BATCH, "raw_tp", "", show=0)),
    ("tp_btf", Hook("tp_btf", "tracepoint", OPEN_BATCH, "tp_btf", "", show=1)),
    ("fentry", Hook("fentry", "function", OPEN_BATCH, "fentry", "", show=2)),
    ("fexit", Hook("fexit", "function", OPEN_BATCH, "fexit", "", show=3)),
    ("fmod_ret", Hook("fmod_ret", "function", ("batch",), "fmod_ret", "", show=4, batch_on="kfunc")),
    # the kprobe's int3 path (kernel_batch only): off the ftrace site of bpf_get_numa_node_id (the first
    # instruction boundary past it), so the kernel places an int3 or, where it can, a jump (optprobe);
    # kprobe_int3 is the same with debug.kprobes-optimization=0: always the int3 (lab/agent/hooks/kprobes.py)
    ("kprobe_off", Hook("kprobe", "function", ("batch",), "kprobe", "", show=10, probe="off")),
    ("kprobe_int3", Hook("kprobe", "function", ("batch",), "kprobe", "", show=11, probe="int3")),
    ("uprobe", Hook("uprobe", "uprobe", ("uprobe",), "uprobe", "uprobe hookbench:%s", show=12)),
    ("uretprobe", Hook("uretprobe", "uprobe", ("uprobe",), "uretprobe", "uretprobe hookbench:%s", show=13)),
    ("perf_event", Hook("perf_event", "perf", ("perf",), "perf_event", "")),
    ("xdp", Hook("xdp", "net", ("net",), "xdp", "XDP generic (SKB) mode on veth vrx, UDP from a peer netns",
                 mode="skb")),
    ("xdp_drv", Hook("xdp", "net", ("net",),
                     "xdp", "XDP native (driver) mode on veth vrx, run from its NAPI poll, UDP from a peer netns",
                     mode="drv")),
    ("socket_filter", Hook("socket", "net", ("net",), "socket", "SO_ATTACH_BPF on the receiving UDP socket")),
])

# The order figures are shown in (tables, plots, the instruction matrix), from each entry's `show`.
SHOW_ORDER = tuple(sorted((h for h, e in HOOKS.items() if e.show is not None), key=lambda h: HOOKS[h].show))


def on(workload):
    """The hooks that run on a workload, in registry order."""
    return tuple(h for h, e in HOOKS.items() if workload in e.workloads)


def shown(hooks):
    """`hooks` in the order figures are shown."""
    rank = {h: i for i, h in enumerate(SHOW_ORDER + tuple(h for h in HOOKS if h not in SHOW_ORDER))}
    return tuple(sorted(hooks, key=lambda h: rank.get(h, len(rank))))


# hook: (attach kind, family) of the hooks on the open path (and, but for fmod_ret, kernel_batch)
ATTACH = OrderedDict((h, (HOOKS[h].kind, HOOKS[h].family)) for h in on("open"))


def syscall_point(hook, function, syscall, nr):
    """Where a hook attaches to observe one syscall: function hooks on `function`, tracepoint on the
    syscall's sys_enter_ tracepoint, raw_tp and tp_btf on sys_enter filtered to its number `nr`."""
    kind, family = ATTACH[hook]
    if family == "function":
        return "%s %s" % (kind, function)
    if hook == "tracepoint":
        return "tracepoint syscalls:sys_enter_%s" % syscall
    return "%s sys_enter, id == %d (%s)" % (kind, nr, syscall)
