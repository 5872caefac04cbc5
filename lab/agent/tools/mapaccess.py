"""Map access of a tool's programs, counted (the tool suite's counting phase; tools.py runs it per
tool after the proof run, never during the timed trials: the kprobes add their own cost).

The verifier rewrites map helper calls, so the functions counted are those the rewritten programs
call: array (and, from 6.11, per-CPU array and per-CPU hash) lookups are inlined into the program
and call nothing (not countable); other hash lookups call __htab_map_lookup_elem from inlined code
(or, where not inlined, the map type's lookup op, which calls it in turn); updates and deletes call
the map type's ops directly (htab_map_update_elem, array_map_update_elem, htab_map_delete_elem, ...);
output goes through bpf_perf_event_output (kernel/trace is not ftrace-able: a kprobe of its own) or
bpf_ringbuf_*. Each function is checked against the kernel's available_filter_functions (one
kprobe.multi) and /proc/kallsyms (a kprobe); bpf/helpers/mapcount/ attaches bpf/mapcount.bpf.o and
counts per function and per map (map id read from the function's map argument), calls by the tool's
own process apart (its bpf() syscalls: already in its utime+stime) and calls on other maps apart.

The row's `map_count` (the host turns it into ns per second with the map suite's per-op costs,
lab/analysis/toolparts.py): functions (calls/s on the tool's maps, per map), ops ("hash update": calls/s),
excluded (calls/s by the tool's process, on other maps), missed (calls the kernel did not hand to
the counter: it skips kprobe programs while another kprobe or tracepoint program runs on the CPU),
not_counted (what could not be counted and why). Standard library only.
"""

import json
import os
import subprocess

from ..maps.registry import MAP_TYPES
from . import cost as toolcost

HELPER, OBJ = "mapcount", "mapcount.bpf.o"
MAX_MAPS = 16
# function -> (argument holding struct bpf_map * (1-based, 0: none), operation). A lookup op calls
# __htab_map_lookup_elem in turn: per map, lookups = the larger of the two counts.
FUNCS = {"__htab_map_lookup_elem": (1, "lookup")}  # what every hash lookup calls in turn
FUNCS.update((fn, (1, op)) for t in MAP_TYPES.values() for op, fn in
             (("lookup", t.lookup), ("update", t.update), ("delete", t.delete)) if fn)
FUNCS.update({  # a tool's output to user space: perf event arrays and ring buffers (no map type of the suite's)
    "bpf_perf_event_output": (2, "output"),
    "bpf_perf_event_output_tp": (2, "output"),
    "bpf_perf_event_output_raw_tp": (2, "output"),
    "bpf_ringbuf_output": (1, "output"),
    "bpf_ringbuf_reserve": (1, "output"),
    "bpf_ringbuf_submit": (0, "output"),
    "bpf_ringbuf_discard": (0, "output"),
})
LOOKUP_ENTRY = "__htab_map_lookup_elem"
INLINED = ("array lookups are inlined by the verifier (no function call: not countable); so are per-CPU "
           "array lookups from 6.11, and hash lookups only through __htab_map_lookup_elem")
TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def _names(path, column):
    try:
        with open(path) as f:
            return {ln.split()[column] for ln in f if len(ln.split()) > column}
    except OSError:
        return None


def traceable():
    """(names ftrace can hook or None if unreadable, names in kallsyms or None)."""
    ftrace = None
    for d in TRACEFS:
        ftrace = _names(os.path.join(d, "available_filter_functions"), 0)
        if ftrace is not None:
            break
    return ftrace, _names("/proc/kallsyms", 2)


def plan(ftrace, kallsyms):
    """[(name, map arg, single kprobe?)] to attach and {name: why not} for the rest."""
    out, skipped = [], {}
    for name, (arg, _) in FUNCS.items():
        if ftrace is not None and name in ftrace:
            out.append((name, arg, False))
        elif kallsyms is not None and name not in kallsyms:
            skipped[name] = "not in this kernel (kallsyms)"
        elif ftrace is not None:
            out.append((name, arg, True))  # not ftrace-able (e.g. kernel/trace): a kprobe of its own
        else:
            out.append((name, arg, False))  # tracefs unreadable: let the kernel decide
    return out, skipped


class Refused(Exception):
    """The kernel refused the counter (no kprobes, program load refused, ...)."""


class Counter:
    """The counting helper, running: started attached, snapshots on demand, stopped on every path."""

    def __init__(self, bpf_dir, tgids, map_ids):
        ftrace, kallsyms = traceable()
        funcs, self.skipped = plan(ftrace, kallsyms)
        self.map_ids = list(map_ids)[:MAX_MAPS]
        self.uncounted_maps = list(map_ids)[MAX_MAPS:]
        cmd = [os.path.join(bpf_dir, HELPER), "--obj", os.path.join(bpf_dir, OBJ)]
        for t in tgids:
            cmd += ["--exclude-tgid", str(t)]
        for m in self.map_ids:
            cmd += ["--map-id", str(m)]
        for name, arg, single in funcs:
            cmd += ["--func", "%s:%d%s" % (name, arg, ":kprobe" if single else "")]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         universal_newlines=True)
        except OSError as e:
            raise Refused("cannot run %s: %s" % (cmd[0], e)) from None
        line = self.proc.stdout.readline()
        if not line.startswith("{"):
            err = self.stop()
            raise Refused(err or "mapcount exited %s" % self.proc.returncode)
        self.attached = json.loads(line)

    def snap(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self):
        """Detach (end of input) and wait; the helper's stderr."""
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        except (OSError, ValueError):
            self.proc.kill()
            self.proc.wait()
            err = ""
        return " | ".join(ln.strip() for ln in (err or "").splitlines() if ln.strip())[-1500:]


def summarize(attached, s0, s1, maps, skipped=None, uncounted_maps=(), events=None):
    """The row's map_count from two snapshots around the load. maps: map id -> map_info (type, name);
    events: the tool's program runs over the same window."""
    secs = (s1["t_ns"] - s0["t_ns"]) / 1e9
    if secs <= 0:
        secs = 1e-9
    funcs, ops, other, self_calls = {}, {}, {}, {}
    per_map = {}  # (map id, op) -> {function: calls}
    for name, c1 in s1["counts"].items():
        c0 = s0["counts"].get(name, {})
        d = {k: v - c0.get(k, 0) for k, v in c1.items()}
        op = FUNCS.get(name, (0, "?"))[1]
        by_map = {}
        for k, v in d.items():
            if k in ("other", "self"):
                continue
            if v:
                m = maps.get(int(k)) or {}
                by_map["%s %s (id %s)" % (m.get("type", "?"), m.get("name", ""), k)] = round(v / secs, 1)
                per_map.setdefault((int(k), op), {})[name] = v
        if d.get("other"):
            other[name] = round(d["other"] / secs, 1)
        if d.get("self"):
            self_calls[name] = round(d["self"] / secs, 1)
        total = sum(v for k, v in d.items() if k not in ("other", "self"))
        if total:
            funcs[name] = dict(calls_per_s=round(total / secs, 1), op=op, by_map=by_map)
    for (mid, op), calls in per_map.items():
        if op == "lookup":  # a lookup op calls __htab_map_lookup_elem in turn: count each lookup once
            n = max(calls.get(LOOKUP_ENTRY, 0), sum(v for f, v in calls.items() if f != LOOKUP_ENTRY))
        else:
            n = sum(calls.values())
        mtype = (maps.get(mid) or {}).get("type", "?")
        key = "%s %s" % (mtype, op)
        ops[key] = round(ops.get(key, 0) + n / secs, 1)
    not_counted = [INLINED]
    not_counted += ["%s: %s" % (n, w) for n, w in sorted((skipped or {}).items())]
    refused = sorted(attached.get("refused", {}).items())
    if refused:  # e.g. bpf_perf_event_output*: kernel/trace is not ftrace-able, and 6.12 refuses kprobes there
        not_counted.append("refused by the kernel: " + ", ".join("%s (%s)" % (n, w.split(":")[0]) for n, w in refused))
    if uncounted_maps:
        not_counted.append("maps beyond the first %d (ids %s): counted as other maps" % (
            MAX_MAPS, ", ".join(map(str, uncounted_maps))))
    missed = s1.get("missed", 0) - s0.get("missed", 0)
    if missed:
        not_counted.append("%.1f calls/s missed: the kernel does not run a kprobe program while another kprobe "
                           "or tracepoint program runs on that CPU (the counts are lower bounds)" % (missed / secs))
    return dict(mode=attached.get("mode"), seconds=round(secs, 3), functions=funcs, ops=ops,
                events_per_s=None if events is None else round(events / secs, 1),
                excluded=dict(tool_process_per_s=self_calls, other_maps_per_s=other),
                missed_per_s=round(missed / secs, 1), attached=attached.get("funcs", []), not_counted=not_counted)


def map_types(map_ids):
    return {m: toolcost.map_info(m) or {} for m in map_ids}


def count_phase(suite, names, load, seconds):
    """The counting phase: the tools started by `suite` (tools.ToolSuite) under their load for
    `seconds` with the counter on, outside the timed trials; the row's map_count. Refused if the
    kernel refuses the counter. The tools and the counter are stopped on every path."""
    procs, owner, counter = [], [], None
    try:
        for name in names:
            before = set(toolcost.prog_ids())
            proc = suite.start_tool(name)
            procs.append(proc)
            held = toolcost.held_prog_ids(proc.pid)
            owner += [i for i in toolcost.prog_ids() if i not in before and (not held or i in held)]
        map_ids = sorted({m for p in toolcost.progs(owner).values() for m in p["map_ids"]})
        maps = map_types(map_ids)
        counter = Counter(suite.ctx.bpf_dir, [p.pid for p in procs], map_ids)
        s0, p0 = counter.snap(), toolcost.progs(owner)
        suite.stress_run(seconds, load)
        p1, s1 = toolcost.progs(owner), counter.snap()
    finally:
        if counter is not None:
            counter.stop()
        for p in procs:
            suite.stop_tool(p)
    events = sum(p1[i]["run_cnt"] - p0[i]["run_cnt"] for i in p1 if i in p0)
    return summarize(counter.attached, s0, s1, maps, counter.skipped, counter.uncounted_maps, events)


OFF = "not separable: the counting phase was off (playbook map_count: false); map helper calls stay inside exec"
REFUSED = ("not separable: the kernel refused the map-operation counter (%s); the programs' map helper "
           "calls stay inside exec (user-space map reads are in user, as syscall time)")


def with_not_separable(fields, why):
    """The row's sources fields with map access counted (why None: not_separable drops it) or not (why)."""
    ns = dict(fields.get("not_separable") or {})
    if why is None:
        ns.pop("map_access", None)
    else:
        ns["map_access"] = why
    return dict(fields, not_separable=ns)
