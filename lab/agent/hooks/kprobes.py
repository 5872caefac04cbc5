"""The kprobe's three mechanisms under kernel_batch. On x86 a kprobe on a function's entry sits on
its ftrace site (KPROBES_ON_FTRACE: no trap); off it, the kernel places an int3, or a jump where it
can optimize the probe (CONFIG_OPTPROBES). batchbench reads which from /sys/kernel/debug/kprobes/list
while the probe is attached (`mechanism`: ftrace, optimized, int3); these two attach types measure
the int3 path the talk describes:
  kprobe_off   the first instruction boundary past the ftrace site of bpf_get_numa_node_id
               (`kprobe_offset`), optimized or not as the kernel decides;
  kprobe_int3  the same with debug.kprobes-optimization=0 (set for the run, restored after): an int3.
Under the event-count plugin, exceptions taken (`ev_exc_int3`) are > 0 only on the int3 path.
"""

from .table import HOOKS

OPT_SYSCTL = "/proc/sys/debug/kprobes-optimization"
OFF_FTRACE = tuple(h for h, e in HOOKS.items() if e.probe)  # attach types placed past the ftrace site


def helper_args(hook):
    return ["--kprobe-off-ftrace"] if hook in OFF_FTRACE else []


class Optimization:
    """Context manager: kprobe optimization off for kprobe_int3 (restored on exit), else nothing."""

    def __init__(self, hook, path=OPT_SYSCTL):
        self.hook, self.path, self.old = hook, path, None

    def __enter__(self):
        if HOOKS[self.hook].probe != "int3":
            return self
        try:
            with open(self.path) as f:
                self.old = f.read().strip()
            with open(self.path, "w") as f:
                f.write("0")
        except OSError as e:  # as a refused helper run: the row is unsupported, with why
            raise RuntimeError(2, "cannot switch kprobe optimization off (%s): %s" % (self.path, e)) from None
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            with open(self.path, "w") as f:
                f.write(self.old)
        return False


def row_fields(hook, setup):
    """mechanism / kprobe_offset of a kprobe-family row (read while attached), else nothing."""
    out = {}
    if setup.get("mechanism"):
        out["mechanism"] = setup["mechanism"]
    if hook in OFF_FTRACE and setup.get("kprobe_offset"):
        out["kprobe_offset"] = setup["kprobe_offset"]
    if HOOKS[hook].probe == "int3":
        out["kprobes_optimization"] = 0
    return out
