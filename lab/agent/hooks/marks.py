"""kernel_batch under the QEMU event-count plugin (bpf/qemu/eventcount.c, lab/guest/tcgplugin.py):
what the agent tells batchbench so that each measured block is a window of exact event counts.

- `--mark-id`: a fresh 64-bit id per helper run; batchbench sends it before its blocks and marks each
  measured block (bpf/helpers/evmark.h: NOPs anywhere but under the plugin). The plugin writes one line
  per window to the lab's events.log on the host; the host matches them to the row by this id
  (lab/results/events.py), in the row's trial order.
- `--exc`: the entry points of exceptions and interrupts, from /proc/kallsyms (the guest runs with
  nokaslr, so they are fixed per boot), which the plugin counts as `exc_int3`, `exc_other`, `irq`.
Only under icount: elsewhere there is no plugin and the row stays as it was.
"""

import os

INT3, OTHER, IRQ = 0, 1, 2
MAX_ENTRIES = 60  # the plugin's table holds 64
_ENTRIES = {}


def entry_class(name):
    """The plugin's class of a kernel symbol that is an exception or interrupt entry, else None."""
    if name == "asm_exc_int3":
        return INT3
    if name.startswith("asm_exc_"):
        return OTHER
    if name.startswith("asm_sysvec_") or name in ("asm_common_interrupt", "asm_spurious_interrupt"):
        return IRQ
    return None


def entries(path="/proc/kallsyms"):
    """'class:hexaddr,...' of the entry points in `path` (read once per agent), '' if unreadable."""
    if path in _ENTRIES:
        return _ENTRIES[path]
    found = []
    try:
        with open(path) as f:
            for ln in f:
                if "asm_" not in ln:
                    continue
                parts = ln.split()
                if len(parts) >= 3 and parts[1] in ("T", "t"):
                    cls = entry_class(parts[2])
                    if cls is not None and int(parts[0], 16):
                        found.append((cls, parts[0]))
    except (OSError, ValueError):
        found = []
    found.sort()  # int3 first: it must be in the table whatever else is
    _ENTRIES[path] = ",".join("%d:%s" % (c, a) for c, a in found[:MAX_ENTRIES])
    return _ENTRIES[path]


def helper_args(accelerator):
    """batchbench's extra arguments for a run under `accelerator` (none outside icount)."""
    if accelerator != "icount":
        return []
    args = ["--mark-id", os.urandom(8).hex()]
    exc = entries()
    if exc:
        args += ["--exc", exc]
    return args


def row_fields(setup, trials):
    """The row's `event_windows`: what the host needs to find its windows in events.log."""
    mark = setup.get("mark_id")
    if not mark or mark == "0":
        return {}
    return {"event_windows": {"mark_id": mark, "orders": [t.get("order") for t in trials], "ops": setup["ops"]}}
