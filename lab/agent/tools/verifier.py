"""The verifier's own time for a tool's real programs, read from the kernel's statistics log.

The proof run starts each tool with LD_PRELOAD=verifstats.so (bpf/preload/verifstats.c): its
libbpf's BPF_PROG_LOAD calls get log_level BPF_LOG_STATS, and the shim writes one line per load to
LAB_VERIFIER_OUT (program name, the verifier's "verification time N usec", processed insns, the
load syscall's wall time, result). The tool's programs are picked by name (the kernel keeps 15
characters); libbpf's feature probes are other loads and are left out. Only the proof run has the
shim: the timed trials run the tools as they are. One-time cost, in microseconds. Standard library.
"""

import os

SHIM = "verifstats.so"


def env(shim_path, out_path):
    """Environment for a tool start with the shim, or None when the shim was not built/pushed."""
    if not os.path.exists(shim_path):
        return None
    e = dict(os.environ)
    e["LD_PRELOAD"] = ":".join(x for x in (e.get("LD_PRELOAD", ""), shim_path) if x)
    e["LAB_VERIFIER_OUT"] = out_path
    return e


def parse(text):
    """Lines of the shim's file -> [(name, verification us, processed insns, load us, result)]."""
    out = []
    for line in text.splitlines():
        f = line.split("\t")
        if len(f) != 5:
            continue
        try:
            out.append((f[0], int(f[1]), int(f[2]), float(f[3]), int(f[4])))
        except ValueError:
            continue
    return out


def fields(loads, prog_names, shim_present):
    """Row fields for the tool whose programs are prog_names: verifier_us (sum over them),
    verifier_detail per program, or verifier_why when not measured."""
    if not shim_present:
        return dict(verifier_us=None, verifier_why="not measured: %s was not built into the pushed helpers" % SHIM)
    want = {n[:15] for n in prog_names}
    mine = [x for x in loads if x[0] in want and x[4] >= 0]
    if not loads:
        return dict(verifier_us=None, verifier_why="not measured: the shim saw no BPF_PROG_LOAD from the tool "
                                                   "(its loader ignores LD_PRELOAD or does not call syscall())")
    if not mine:
        return dict(verifier_us=None, verifier_why="not measured: none of the %d loads the shim saw was one of the "
                                                   "tool's programs" % len(loads))
    detail = {}
    for name, us, insns, load_us, _ in mine:
        d = detail.setdefault(name, dict(verification_us=0, processed_insns=0, load_us=0.0, loads=0))
        d["verification_us"] += us
        d["processed_insns"] += insns
        d["load_us"] = round(d["load_us"] + load_us, 1)
        d["loads"] += 1
    total = sum(d["verification_us"] for d in detail.values())
    if total == 0:
        return dict(verifier_us=None, verifier_detail=detail,
                    verifier_why="not measured: the kernel's statistics log printed no verification time")
    return dict(verifier_us=total, verifier_detail=detail,
                verifier_why="BPF_LOG_STATS on the tool's own loads in the proof run (LD_PRELOAD %s)" % SHIM)


def read(path):
    try:
        with open(path) as f:
            return parse(f.read())
    except OSError:
        return []
