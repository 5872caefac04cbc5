"""Where a tool's overhead comes from: the kernel's and the tool process's own counters.

The talk names five sources of an eBPF tool's overhead: user-space processing, map access, hook
triggering, the verifier and running the program in the kernel. Per timed trial with the tool
(tools/suite.py), this module reads, all in one unit (CPU milliseconds per second of load):

  total        the throughput-derived cost: the trial's throughput lost (fraction) x the CPU time
               per second the load used without the tool (its stress-ng process tree's utime+stime
               from getrusage(RUSAGE_CHILDREN), the paired baseline trial);
  exec         the tool's programs' run_time_ns deltas (BPF_ENABLE_STATS on), summed;
  user         the tool process's utime+stime deltas (/proc/PID/stat; its map reads through the
               bpf() syscall are in its stime), with its context switches (/proc/PID/status);
  unexplained  total - exec - user: hook dispatch outside the timed program run (the kernel starts
               run_time_ns after the attach point's trampoline/tracepoint glue), cache and TLB
               pollution, and noise.
The verifier is a one-time cost, not per second: exec-to-attached time of each start and each
program's verified_insns (bpf_prog_info, kernels >= 5.16). Map access is counted in a phase of
its own (tools/mapaccess.py; the host costs it with the map suite and carves it out of exec); the tool's
maps are described (type, entries, memlock, live entries of hash maps). Standard library only; raw samples, the host
computes intervals.
"""

import ctypes
import os
import resource
import struct

from ..maps import registry as map_types

SYS_BPF = 321  # x86_64
BPF_MAP_GET_NEXT_KEY = 4
BPF_PROG_GET_NEXT_ID = 11
BPF_PROG_GET_FD_BY_ID = 13
BPF_MAP_GET_FD_BY_ID = 14
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0
PROG_INFO_LEN = 232  # struct bpf_prog_info up to attach_btf_id (5.16+); older kernels fill less
VERIFIED_INSNS_OFF = 216
MAP_INFO_LEN = 40
HASH_MAPS = map_types.HASH_IDS
MAP_TYPES = map_types.KERNEL_IDS
PROG_TYPES = {1: "socket_filter", 2: "kprobe", 5: "tracepoint", 7: "xdp", 8: "perf_event",
              17: "raw_tracepoint", 26: "tracing", 30: "lsm"}
LIVE_ENTRIES_LIMIT = 100000
CLK_TCK = os.sysconf("SC_CLK_TCK")
CPU_NOTE = ("CPU ms per second of load; total = throughput lost x the load's CPU/s without the tool; "
            "unexplained = total - exec - user; incontext = the loss per CPU second x the load's CPU/s with "
            "the tool (the tool's cost inside the load's processes), incontext_unexplained = incontext - exec")
NOT_SEPARABLE = {
    "map_access": "not separable: not counted here (the counting phase, tools/mapaccess.py, replaces this with "
                  "its counts or the kernel's reason); map helper calls stay inside exec (user-space map "
                  "reads are in user, as syscall time)",
    "triggering": "not separable in the agent: hook dispatch outside the timed program run is inside "
                  "unexplained; the host joins each program's runs/s (program_detail) with the hook "
                  "suite's dispatch cost of its attach type in the same run (lab/analysis/toolparts.py)",
    "verifier_time": "not measured: the proof run did not start the tool with the verifier-statistics "
                     "shim (tools/verifier.py)",
}

_libc = None


def _bpf(cmd, attr):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    ret = _libc.syscall(SYS_BPF, cmd, attr, ctypes.c_uint(len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def bpf_stats_fd():
    """BPF_ENABLE_STATS(BPF_STATS_RUN_TIME): run_cnt/run_time_ns count while the fd is open."""
    attr = ctypes.create_string_buffer(120)
    struct.pack_into("<I", attr, 0, BPF_STATS_RUN_TIME)
    try:
        return _bpf(BPF_ENABLE_STATS, attr)
    except OSError as e:
        raise OSError(e.errno, "BPF_ENABLE_STATS: %s" % e.strerror) from None


def next_ids(cmd):
    """Every id a BPF_*_GET_NEXT_ID command walks (programs, links, maps), in order."""
    ids, cur = [], 0
    while True:
        attr = ctypes.create_string_buffer(120)
        struct.pack_into("<I", attr, 0, cur)
        try:
            _bpf(cmd, attr)
        except OSError:
            return ids
        cur = struct.unpack_from("<I", attr, 4)[0]
        ids.append(cur)


def prog_ids():
    """Ids of every BPF program loaded on the system."""
    return next_ids(BPF_PROG_GET_NEXT_ID)


def _info(get_cmd, obj_id, length, extra=None):
    attr = ctypes.create_string_buffer(120)
    struct.pack_into("<I", attr, 0, obj_id)
    fd = _bpf(get_cmd, attr)
    try:
        info = ctypes.create_string_buffer(length)
        if extra:
            extra(info)
        attr = ctypes.create_string_buffer(120)
        struct.pack_into("<IIQ", attr, 0, fd, length, ctypes.addressof(info))
        _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
        got = struct.unpack_from("<I", attr, 4)[0]
        return fd, info, got
    except BaseException:
        os.close(fd)
        raise


def prog_info(prog_id):
    """One program's bpf_prog_info: type, name, run_cnt, run_time_ns, verified_insns (None before
    5.16), map_ids; None if it is gone."""
    ids = (ctypes.c_uint32 * 64)()

    def want_maps(info):
        struct.pack_into("<I", info, 52, 64)
        struct.pack_into("<Q", info, 56, ctypes.addressof(ids))

    try:
        fd, info, got = _info(BPF_PROG_GET_FD_BY_ID, prog_id, PROG_INFO_LEN, want_maps)
    except OSError:
        return None
    os.close(fd)
    ptype = struct.unpack_from("<I", info, 0)[0]
    nmaps = min(64, struct.unpack_from("<I", info, 52)[0])
    return dict(
        id=prog_id, type=PROG_TYPES.get(ptype, str(ptype)),
        name=info.raw[64:80].split(b"\0")[0].decode(errors="replace"),
        run_time_ns=struct.unpack_from("<Q", info, 192)[0] if got >= 200 else 0,
        run_cnt=struct.unpack_from("<Q", info, 200)[0] if got >= 208 else 0,
        verified_insns=struct.unpack_from("<I", info, VERIFIED_INSNS_OFF)[0] if got >= 220 else None,
        map_ids=list(ids[:nmaps]))


def progs(ids):
    """id -> prog_info of the programs still loaded."""
    out = {}
    for i in ids:
        p = prog_info(i)
        if p is not None:
            out[i] = p
    return out


def _memlock(fd):
    try:
        with open("/proc/self/fdinfo/%d" % fd) as f:
            for line in f:
                if line.startswith("memlock:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _live_entries(fd, key_size):
    key = ctypes.create_string_buffer(max(1, key_size))
    nxt = ctypes.create_string_buffer(max(1, key_size))
    n, first = 0, True
    while n < LIVE_ENTRIES_LIMIT:
        attr = ctypes.create_string_buffer(120)
        struct.pack_into("<IIQQ", attr, 0, fd, 0, 0 if first else ctypes.addressof(key), ctypes.addressof(nxt))
        try:
            _bpf(BPF_MAP_GET_NEXT_KEY, attr)
        except OSError:
            break
        ctypes.memmove(key, nxt, key_size)
        first = False
        n += 1
    return n


def map_info(map_id):
    """One map: type, key/value size, max_entries, memlock, and live entries for hash maps."""
    try:
        fd, info, _ = _info(BPF_MAP_GET_FD_BY_ID, map_id, MAP_INFO_LEN)
    except OSError:
        return None
    try:
        mtype, _, ksize, vsize, maxe = struct.unpack_from("<IIIII", info, 0)
        out = dict(type=MAP_TYPES.get(mtype, str(mtype)), name=info.raw[24:40].split(b"\0")[0].decode(errors="replace"),
                   key_size=ksize, value_size=vsize, max_entries=maxe, memlock=_memlock(fd))
        if mtype in HASH_MAPS:
            out["live_entries"] = _live_entries(fd, ksize)
        return out
    finally:
        os.close(fd)


def tool_maps(prog_list):
    """The maps the tool's programs use, each once."""
    ids = sorted({m for p in prog_list for m in p["map_ids"]})
    return [m for m in (map_info(i) for i in ids) if m is not None]


# ---- the processes' own counters ----

def proc_cpu(pid):
    """(utime+stime in seconds, voluntary + involuntary context switches) of a live process."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / float(CLK_TCK)  # fields 14, 15 of proc(5)
    switches = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                switches += int(line.split()[1])
    return cpu, switches


def held_prog_ids(pid):
    """Ids of the BPF programs a process holds open (prog_id: in /proc/PID/fdinfo), empty if unreadable."""
    ids = set()
    try:
        fds = os.listdir("/proc/%d/fdinfo" % pid)
    except OSError:
        return ids
    for fd in fds:
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except (OSError, ValueError):
            pass
    return ids


def children_cpu():
    """utime+stime of this process's reaped children (the stress-ng tree once it has exited)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---- the decomposition (pure, unit-tested) ----

def decompose(loss_pct, base_load_cpu, wall, exec_ns, user_cpu):
    """One trial's parts in CPU ms per second of load. loss_pct: throughput lost (%); base_load_cpu:
    the load's CPU seconds per second without the tool; wall: seconds the tool trial ran; exec_ns:
    the tool's programs' run_time_ns over it; user_cpu: the tool process's CPU seconds over it."""
    total = None if loss_pct is None else loss_pct / 100.0 * base_load_cpu * 1000.0
    exec_ms = exec_ns / 1e6 / wall
    user_ms = user_cpu * 1000.0 / wall
    return dict(total=total, exec=exec_ms, user=user_ms,
                unexplained=None if total is None else total - exec_ms - user_ms)


def in_context(cpu_loss_pct, tool_load_cpu, exec_ms):
    """The CPU the tool cost inside the load's own processes, ms per second: the load did cpu_loss_pct
    less work per CPU second, so that share of the CPU it used with the tool (tool_load_cpu, s/s)
    went to the tool (its programs and their dispatch, run in the load's context); what execution
    does not cover of it is incontext_unexplained (the tool process's own CPU is not in it)."""
    if cpu_loss_pct is None:
        return dict(incontext=None, incontext_unexplained=None)
    ms = cpu_loss_pct / 100.0 * tool_load_cpu * 1000.0
    return dict(incontext=ms, incontext_unexplained=ms - exec_ms)


def program_rows(before, after, attach=None, key=None):
    """Per program of the tool (matched by name, or key(id, name)): runs, run time, the verifier's
    count and, given attach (toolattach.attach_of), the hook suite's attach type and the target."""
    out = {}
    for i, a in after.items():
        b = before.get(i, {})
        r = out.setdefault(key(i, a["name"]) if key else a["name"],
                           dict(type=a["type"], run_cnt=0, run_time_ns=0, verified_insns=a["verified_insns"]))
        if attach and i in attach:
            r.update(hook=attach[i]["hook"], target=attach[i]["target"])
        r["run_cnt"] += a["run_cnt"] - b.get("run_cnt", 0)
        r["run_time_ns"] += a["run_time_ns"] - b.get("run_time_ns", 0)
    return out


def _median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2.0


def sources_fields(losses, sides, load_ms, proof, cpu_losses=None):
    """The row's decomposition fields from the trials: losses[i] is trial i's throughput lost (%),
    cpu_losses[i] its loss per CPU second (% or None), sides[i] = ((metrics, load CPU/s, wall) of the
    baseline, tool_side() of the tool run);
    load_ms: exec-to-attached of every start; proof: the proof run's tool_side()."""
    parts = {k: [] for k in ("total", "exec", "user", "unexplained", "incontext", "incontext_unexplained")}
    events, switches, base_cpu, tool_cpu = [], [], [], []
    per_prog = {}
    for loss, cpu_loss, (a, b) in zip(losses, cpu_losses or [None] * len(losses), sides):
        d = decompose(loss, a[1], b["wall"], b["exec_ns"], b["user_cpu"])
        d.update(in_context(cpu_loss, b["load_cpu"], d["exec"]))
        for k, v in d.items():
            if v is not None:
                parts[k].append(round(v, 3))
        events.append(round(b["events"] / b["wall"], 1))
        switches.append(round(b["switches"] / b["wall"], 2))
        base_cpu.append(round(a[1], 4))
        tool_cpu.append(round(b["load_cpu"], 4))
        for name, p in b["progs"].items():
            r = per_prog.setdefault(name, dict(type=p["type"], run_cnt=0, run_time_ns=0, runs_per_s_samples=[],
                                               verified_insns=proof["progs"].get(name, p)["verified_insns"]))
            for k in ("hook", "target"):
                if k in p:
                    r[k] = p[k]
            r["run_cnt"] += p["run_cnt"]
            r["run_time_ns"] += p["run_time_ns"]
            r["runs_per_s_samples"].append(round(p["run_cnt"] / b["wall"], 1))
    for r in per_prog.values():
        r["ns_per_run"] = round(r["run_time_ns"] / r["run_cnt"], 1) if r["run_cnt"] else None
    fields = {}
    for k, v in parts.items():
        fields["cpu_%s_samples" % k] = v
        fields["cpu_%s" % k] = _median(v)
    insns = [p["verified_insns"] for p in proof["progs"].values()]
    fields.update(
        cpu_unit="cpu_ms_per_s", cpu_note=CPU_NOTE, bpf_stats="on in every trial, both sides",
        events_per_s_samples=events, tool_switches_per_s_samples=switches,
        load_cpu_base_samples=base_cpu, load_cpu_tool_samples=tool_cpu,
        load_ms_samples=[round(x, 1) for x in load_ms], load_ms=_median(load_ms),
        verified_insns=None if not insns or None in insns else sum(insns),
        program_detail=per_prog or {n: dict(p, ns_per_run=None) for n, p in proof["progs"].items()},
        maps=proof["maps"], not_separable=dict(NOT_SEPARABLE))
    vf = proof.get("verifier") or {}
    if vf.get("verifier_us") is not None:
        del fields["not_separable"]["verifier_time"]
        fields.update(vf)
    elif vf:
        fields["not_separable"]["verifier_time"] = vf["verifier_why"]
        fields["verifier_detail"] = vf.get("verifier_detail")
    return fields
