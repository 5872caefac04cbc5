"""The tool suite's registry: the talk's six tools (each with the resource it watches, for claim 9)
and the load each watches, and the stress-ng stressors a load may name, with their options. The
suite (suite.py), the playbook check and the host (the report's tool tables, guest/vm.py's scratch
disk aside) read them here. Standard library only."""

# The talk's six tools, one pair per resource, as the CO-RE builds of libbpf-tools name them.
TOOLS = {
    "runqlat": "cpu",      # run-queue latency histogram (sched tracepoints)
    "cpudist": "cpu",      # on-CPU time histogram (sched_switch)
    "cachestat": "memory", # page cache hit/miss (kprobes / fentry)
    "biolatency": "io",    # block I/O latency (block tracepoints)
    "vfsstat": "io",       # VFS call counts (kprobes / fentry)
    "tcplife": "network",  # TCP session lifetimes (sock:inet_sock_set_state)
}
STRESSORS = ("cpu", "vm", "hdd", "sock", "udp", "matrix", "memcpy", "io", "switch", "readahead", "open",
             "sockmany", "seek", "iomix", "pipe")
STRESSOR_OPTS = {"vm": ["--vm-bytes", "64M"], "hdd": ["--hdd-bytes", "16M"], "readahead": ["--readahead-bytes", "16M"],
                 "seek": ["--seek-size", "16M"]}
# The load each tool watches: stressors that make its hook fire (playbook `loads` overrides per tool;
# `load` gives every tool the same one).
WATCHED = {
    "runqlat": ["cpu", "switch"],     # wakeups and context switches (sched_wakeup, sched_switch)
    "cpudist": ["cpu", "switch"],     # on-CPU intervals end at every sched_switch
    "cachestat": ["readahead", "hdd"],  # page cache adds, accesses and dirtied pages
    "biolatency": ["hdd"],            # block requests issued and completed (writeback of its writes)
    "vfsstat": ["open", "hdd"],       # vfs_open / vfs_read / vfs_write calls
    "tcplife": ["sock"],              # TCP state changes: stress-ng's sock makes ~1000 short connections/s
}
PORTED = ("sock", "sockmany", "udp")  # stressors that bind a fixed default port (22000, 24000, 7000)
