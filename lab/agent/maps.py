"""Map suite: what one map update or lookup costs per map type, alone and under contention, from
the kernel and from user space, and what each map costs in memory (memlock measured vs predicted
by lab/agent/memlock.py, and memory-cgroup usage).

All measuring happens in the static C helper `mapbench` (built on the host, pushed with the
agent) and maps.bpf.o; this module picks what to run and turns the helper's records into rows.
A map type, flag or batch operation the kernel refuses gives a row with status "unsupported" and
the kernel's text; the suite goes on.

Parameters (playbook `suites.maps`, all optional):
  types        map configurations, "TYPE" or "TYPE:FLAGS" (default: array, percpu_array, hash,
               hash:1, percpu_hash, percpu_hash:1, lru_hash, lru_percpu_hash; 1 = BPF_F_NO_PREALLOC)
  ops          map operations per trial, kernel driver (1048576; the talk's run: 10000000)
  trials       trials per kernel-driven row (5)
  loops        bpf_loop iterations per program run (1024); repeat = ceil(ops / loops)
  max_entries  max_entries of the timed maps (10240)
  nkeys        keys 0..nkeys-1 in the dense key space, and the number of sparse keys (1024)
  operations   (["update", "lookup"])
  contention   also run every update from all vCPUs at once, one pinned thread each (true)
  sparse       sparse PID-like keys from [1, pid_max), arrays sized pid_max (true)
  sparse_alloc_limit  largest predicted array (bytes) the sparse run may create (536870912)
  fill_levels  percent fill levels of the fill sweep ([6, 25, 50, 75, 100]); [] skips it
  fill_max_entries    max_entries of the fill sweep maps (16384)
  fill_types   map configurations of the fill sweep (every hash configuration of `types`)
  user         user-space driver rows: one syscall per element and batch ops (true)
  user_ops, user_trials   operations per trial (20000) and trials (5) of the user driver
  memory       memory rows (true)
  mem_max_entries     max_entries sweep of the memory rows ([1024, 10240, 102400])
  talk_example the talk's map (hash, key 4, value 8, max_entries 10240, flags 0x0 / 0x1, filled
               with keys 0..1023) with memlock measured and predicted (true)

Rows (schema.SUITES["maps"]): operation update/lookup (timed: ns per operation, median and 95%
CI over trials, events = successful operations vs triggers = operations issued) or memory.
Extra fields: loop_ns (the bpf_loop + key fetch alone, same run shape), map_ns (ns_median -
loop_ns), threads, agg_ns_per_op (wall time / all threads' operations), memlock_regime,
memlock_terms, real_memory_peak, cgroup, possible_cpus, talk_setup_predicted.
"""

import json
import os
import platform
import subprocess

from . import memlock
from .common import check_params, timing_fields

DEFAULT_TYPES = ["array", "percpu_array", "hash", "hash:1", "percpu_hash", "percpu_hash:1",
                 "lru_hash", "lru_percpu_hash"]
TCG_NOTE = "emulated (TCG): timings check the pipeline, they are not overhead figures"
KEY_SIZE, VALUE_SIZE = 4, 8
# The talk's setup (TALK.md Part 3): kernel 6.2, 16 CPUs; its figures live in lab/data/talk_maps.yaml.
TALK_VERSION, TALK_CPUS = (6, 2), 16


class Refused(Exception):
    """The kernel refused (helper exit 2): an unsupported row."""


class Failed(Exception):
    """Anything else went wrong: an error row."""


def run_mapbench(helper, mode, args, timeout=1800):
    proc = subprocess.run([helper, mode] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
    text = " | ".join(ln.strip() for ln in proc.stderr.splitlines() if ln.strip())[-1500:]
    if proc.returncode == 2:
        raise Refused(text or "refused")
    if proc.returncode != 0:
        raise Failed("mapbench %s exit %d: %s" % (mode, proc.returncode, text or "no message"))
    recs = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not recs:
        raise Failed("mapbench %s printed no record" % mode)
    return recs[0]


def parse_type(spec):
    """'hash:1' -> ('hash', 1); 'array' -> ('array', 0)."""
    name, _, flags = str(spec).partition(":")
    return name, int(flags, 0) if flags else 0


PARAMS = ("types", "ops", "trials", "loops", "max_entries", "nkeys", "operations", "contention", "sparse",
          "sparse_alloc_limit", "fill_levels", "fill_max_entries", "fill_types", "user", "user_ops", "user_trials",
          "memory", "mem_max_entries", "talk_example")


def _type_problem(spec):
    try:
        name, _ = parse_type(spec)
    except ValueError:
        return "TYPE or TYPE:FLAGS (e.g. hash:1)"
    known = memlock.ARRAY_TYPES + memlock.HASH_TYPES
    return None if name in known else "a map type this suite runs (%s)" % ", ".join(known)


def check(params):
    """Problems with the playbook's maps parameters (checked on the host before anything boots)."""
    return check_params(params, PARAMS, {"types": _type_problem, "fill_types": _type_problem,
                                         "operations": ("update", "lookup")},
                        ints=("ops", "trials", "loops", "max_entries", "nkeys", "fill_max_entries", "user_ops",
                              "user_trials"))


def is_hash(name):
    return name in memlock.HASH_TYPES


# ---- turning helper records into row fields (pure functions, unit-tested) ----

def timed_fields(rec, method, loop_ns=None):
    """Row fields of a timed record from `mapbench kern` or `mapbench user`."""
    f = timing_fields(method, rec["ns_per_op"], rec["ops_per_trial"])
    f.update(events=rec["events"], triggers=rec["triggers"], live_entries=rec.get("live_entries"))
    if "threads" in rec:
        f["threads"] = rec["threads"]
        f["agg_ns_per_op"] = timing_fields(method, rec["agg_ns_per_op"], rec["ops_per_trial"])["ns_median"]
        f["wall_samples"] = [round(x, 3) for x in rec["wall_ns_per_op"]]
    if loop_ns is not None and f["ns_median"] is not None:
        f["loop_ns"] = loop_ns
        f["map_ns"] = f["ns_median"] - loop_ns
    return f


def validity(rec):
    """(status, reason): every issued operation must have succeeded (update) / found (lookup)."""
    if rec["events"] != rec["triggers"]:
        return "invalid", "events %d != triggers %d: the program did not do every map operation" % (
            rec["events"], rec["triggers"])
    return "ok", ""


def memory_fields(rec, stage, version, ncpus, sizes, page_size, cg_kind):
    """Row fields of one fill stage of a `mapbench mem` record, with the model's prediction."""
    pred = memlock.predict(version, rec["map_type"], rec["key_size"], rec["value_size"], rec["max_entries"],
                           rec["flags"], ncpus, stage["live"], sizes, page_size)
    measured = stage["memlock"] if stage["memlock"] >= 0 else None
    real = peak = None
    if rec["cg_before"] >= 0 and stage["cg"] >= 0:
        real = stage["cg"] - rec["cg_before"]
        peak = rec["cg_peak"] - rec["cg_before"] if rec["cg_peak"] >= 0 else None
    f = dict(max_entries=rec["max_entries"], live_entries=stage["live"], memlock_measured=measured,
             memlock_predicted=pred.bytes if pred else None, memlock_note=memlock.note(measured, pred, real),
             real_memory=real, real_memory_peak=peak, cgroup=cg_kind, possible_cpus=ncpus,
             inserted=stage["inserted"])
    if real is not None and real < 0:  # the cgroup gave back more (cached per-CPU charge) than the map took
        f.update(real_memory=None, real_memory_raw_delta=real,
                 real_memory_note="no figure: the memory cgroup %s fell by %d B while the map was made "
                                  "(its per-CPU charge cache was returned meanwhile)" % (cg_kind, -real))
        real = None
    if pred:
        f["memlock_regime"] = pred.regime
        f["memlock_terms"] = pred.terms
        if real is not None:
            f["real_memory_note"] = ("memory cgroup %s delta since before map creation; the cgroup charges "
                                     "in per-CPU batches (up to 64 pages), so small maps read coarse" % cg_kind)
    return f


# ---- memory cgroup for real-memory readings ----

def _mounts():
    try:
        with open("/proc/mounts") as f:
            return [ln.split() for ln in f]
    except OSError:
        return []


def make_cgroup():
    """Create a child memory cgroup; returns (path, kind) or (None, reason)."""
    name = "lab-maps-%d" % os.getpid()
    for _dev, mnt, fstype, _opts, *_ in _mounts():
        if fstype == "cgroup2":
            try:
                with open(os.path.join(mnt, "cgroup.controllers")) as f:
                    if "memory" not in f.read().split():
                        continue
                with open(os.path.join(mnt, "cgroup.subtree_control")) as f:
                    if "memory" not in f.read().split():
                        continue
                path = os.path.join(mnt, name)
                os.mkdir(path)
                return path, "v2"
            except OSError:
                continue
    for _dev, mnt, fstype, opts, *_ in _mounts():
        if fstype == "cgroup" and "memory" in opts.split(","):
            try:
                path = os.path.join(mnt, name)
                os.mkdir(path)
                return path, "v1"
            except OSError as e:
                return None, "cannot create a memory cgroup under %s: %s" % (mnt, e)
    return None, ("no memory cgroup: cgroup v2 has no memory controller enabled for children and no "
                  "cgroup v1 memory hierarchy is mounted")


def remove_cgroup(path):
    if path:
        try:
            os.rmdir(path)
        except OSError:
            pass


# ---- the suite ----

class MapSuite:
    def __init__(self, ctx):
        self.ctx = ctx
        p = ctx.param
        self.helper = ctx.path("mapbench")
        self.obj = ctx.path("maps.bpf.o")
        self.types = [parse_type(t) for t in p("types", DEFAULT_TYPES)]
        self.ops = int(p("ops", 1048576))
        self.trials = int(p("trials", 5))
        self.loops = int(p("loops", 1024))
        self.max_entries = int(p("max_entries", 10240))
        self.nkeys = int(p("nkeys", 1024))
        self.operations = list(p("operations", ["update", "lookup"]))
        self.contention = bool(p("contention", True))
        self.sparse = bool(p("sparse", True))
        self.sparse_alloc_limit = int(p("sparse_alloc_limit", 512 << 20))
        self.fill_levels = list(p("fill_levels", [6, 25, 50, 75, 100]))
        self.fill_max_entries = int(p("fill_max_entries", 16384))
        fill_types = p("fill_types", None)
        self.fill_types = ([parse_type(t) for t in fill_types] if fill_types is not None
                           else [t for t in self.types if is_hash(t[0])])
        self.user = bool(p("user", True))
        self.user_ops = int(p("user_ops", 20000))
        self.user_trials = int(p("user_trials", 5))
        self.memory = bool(p("memory", True))
        self.mem_max_entries = [int(x) for x in p("mem_max_entries", [1024, 10240, 102400])]
        self.talk_example = bool(p("talk_example", True))
        self.version = memlock.kernel_version(platform.release())
        self.info = {}
        self.loop_ns = {}

    def base(self, name, flags, **kw):
        b = dict(map_type=name, flags=flags, contention=None, driver=None, key_space=None)
        b.update(kw)
        return b

    def row(self, status, reason, fields):
        if status == "ok" and self.ctx.accelerator == "tcg":
            fields = dict(fields, note=TCG_NOTE)
        return self.ctx.row(status, reason, **fields)

    def guarded(self, fields, fn):
        """Run fn() -> (status, reason, extra fields); a refusal/failure becomes its row."""
        try:
            status, reason, extra = fn()
        except Refused as e:
            return self.row("unsupported", str(e), fields)
        except (Failed, subprocess.TimeoutExpired, ValueError, KeyError) as e:
            return self.row("error", "%s: %s" % (type(e).__name__, e), fields)
        return self.row(status, reason, dict(fields, **extra))

    # -- kernel driver

    def kern(self, name, flags, op, keyspace, nkeys, max_entries, threads, ops=None, key_space_size=None):
        ops = ops or self.ops
        loops = min(self.loops, nkeys)
        repeat = max(1, -(-ops // loops))
        args = ["-O", self.obj, "-t", name, "-f", flags, "-m", max_entries, "-o", op, "-k", keyspace,
                "-n", nkeys, "-l", loops, "-r", repeat, "-T", self.trials, "-j", threads]
        if key_space_size:
            args += ["-K", key_space_size]
        return run_mapbench(self.helper, "kern", args)

    def baseline(self, threads, nkeys):
        """ns per iteration of the same loop (same threads, same key count) without the map
        operation: the program only fetches the key. Cached per run shape."""
        key = (threads, nkeys)
        if key not in self.loop_ns:
            try:
                rec = self.kern("array", 0, "empty", "dense", nkeys, nkeys, threads)
                self.loop_ns[key] = timing_fields("x", rec["ns_per_op"], 1)["ns_median"]
            except (Refused, Failed) as e:
                self.ctx.log("loop baseline failed: %s" % e)
                self.loop_ns[key] = None
        return self.loop_ns[key]

    def kern_row(self, name, flags, op, keyspace, nkeys, max_entries, contention, key_space_size=None,
                 label=None):
        threads = 0 if contention == "allcpu" else 1
        fields = self.base(name, flags, operation=op, driver="kernel", contention=contention,
                           key_space=label or keyspace, max_entries=max_entries)
        method = "bpf_loop in BPF_PROG_TEST_RUN (tc), kernel test-run timer"

        def go():
            loop_ns = self.baseline(threads, nkeys)
            rec = self.kern(name, flags, op, keyspace, nkeys, max_entries, threads,
                            key_space_size=key_space_size)
            status, reason = validity(rec)
            extra = timed_fields(rec, method, loop_ns)
            extra.update(nkeys=rec["nkeys"], key_min=rec["key_min"], key_max=rec["key_max"])
            return status, reason, extra

        return self.guarded(fields, go)

    # -- user driver

    def user_row(self, name, flags, op, batch):
        fields = self.base(name, flags, operation=op, driver="user_batch" if batch else "user",
                           contention="1cpu", key_space="dense", max_entries=self.max_entries)
        method = ("BPF_MAP_%s_BATCH, %s" % (op.upper(), "batches of nkeys keys" if op == "update"
                                            else "whole-map passes in batches of nkeys")) if batch \
            else "one bpf(BPF_MAP_%s_ELEM) syscall per element" % op.upper()

        def go():
            args = ["-t", name, "-f", flags, "-m", self.max_entries, "-o", op, "-k", "dense", "-n", self.nkeys,
                    "-N", self.user_ops, "-T", self.user_trials] + (["-B"] if batch else [])
            rec = run_mapbench(self.helper, "user", args)
            status, reason = validity(rec)
            return status, reason, timed_fields(rec, method)

        return self.guarded(fields, go)

    # -- memory

    def mem_rows(self, name, flags, max_entries, fills, key_space, keyspace="dense", key_space_size=None,
                 extra=None):
        fields = self.base(name, flags, operation="memory", driver="user", key_space=key_space,
                           max_entries=max_entries)
        fields.update(extra or {})
        cg, cg_kind = make_cgroup()
        try:
            args = ["-t", name, "-f", flags, "-m", max_entries, "-F", ",".join(str(x) for x in fills),
                    "-k", keyspace]
            if key_space_size:
                args += ["-K", key_space_size]
            if cg:
                args += ["-c", cg, "-g", cg_kind]
            rec = run_mapbench(self.helper, "mem", args)
        except Refused as e:
            return [self.row("unsupported", str(e), fields)]
        except (Failed, subprocess.TimeoutExpired) as e:
            return [self.row("error", "%s: %s" % (type(e).__name__, e), fields)]
        finally:
            remove_cgroup(cg)
        rows = []
        for stage in rec["stages"]:
            f = memory_fields(rec, stage, self.version, self.info["possible_cpus"], self.sizes,
                              self.info["page_size"], cg_kind if cg else None)
            if not cg:
                f["real_memory_note"] = "unsupported: %s" % cg_kind
            talk = memlock.predict(TALK_VERSION, name, KEY_SIZE, VALUE_SIZE, max_entries, flags, TALK_CPUS,
                                   stage["live"])
            f["talk_setup_predicted"] = talk.bytes if talk else None
            rows.append(self.row("ok", "", dict(fields, **f)))
        return rows

    def run(self):
        self.info = run_mapbench(self.helper, "info", [])
        self.sizes = {k: v for k, v in self.info["sizes"].items() if v and v > 0}
        if not self.info.get("btf"):
            self.ctx.log("no kernel BTF: struct sizes for the memlock model fall back to Debian 6.12's")
        self.ctx.log("possible CPUs %d, pid_max %d, struct sizes %s" % (
            self.info["possible_cpus"], self.info["pid_max"], self.sizes))

        if self.memory:
            cg, why = make_cgroup()
            remove_cgroup(cg)
            if not cg:
                yield self.row("unsupported", "real memory: " + why,
                               self.base("*", 0, operation="memory", driver="user", key_space="cgroup"))
        # the talk's run: dense keys 0..nkeys-1, each map type, update and lookup, 1 CPU
        for name, flags in self.types:
            for op in self.operations:
                yield self.kern_row(name, flags, op, "dense", self.nkeys, self.max_entries, "1cpu")
        # contention: the same updates from every vCPU at once
        if self.contention:
            for name, flags in self.types:
                yield self.kern_row(name, flags, "update", "dense", self.nkeys, self.max_entries, "allcpu")
        # sparse PID-like keys: arrays need max_entries = pid_max
        if self.sparse:
            pid_max = int(self.info["pid_max"]) if self.info.get("pid_max", -1) > 0 else 4194304
            for name, flags in self.types:
                size = pid_max if name in memlock.ARRAY_TYPES else self.max_entries
                pred = memlock.predict(self.version, name, KEY_SIZE, VALUE_SIZE, size, flags,
                                       self.info["possible_cpus"], self.nkeys, self.sizes, self.info["page_size"])
                if pred and pred.bytes > self.sparse_alloc_limit:
                    fields = self.base(name, flags, operation="memory", driver="user", key_space="sparse",
                                       max_entries=size, memlock_predicted=pred.bytes,
                                       memlock_note="not created: predicted %d B is over sparse_alloc_limit %d B"
                                       % (pred.bytes, self.sparse_alloc_limit))
                    yield self.row("unsupported", "array for pid_max %d keys over the suite's allocation "
                                   "limit" % pid_max, fields)
                    continue
                for op in self.operations:
                    yield self.kern_row(name, flags, op, "sparse", self.nkeys, size, "1cpu", key_space_size=pid_max)
                if self.memory:
                    yield from self.mem_rows(name, flags, size, [self.nkeys], "sparse", "sparse", pid_max,
                                             extra={"pid_max": pid_max})
        # fill sweep: lookups in hash maps filled to a share of max_entries
        for level in self.fill_levels:
            n = max(1, self.fill_max_entries * int(level) // 100)
            for name, flags in self.fill_types:
                yield self.kern_row(name, flags, "lookup", "hashed", n, self.fill_max_entries, "1cpu",
                                    label="fill-%02d" % int(level))
        # user space: one syscall per element, and batches
        if self.user:
            for name, flags in self.types:
                for op in self.operations:
                    for batch in (False, True):
                        yield self.user_row(name, flags, op, batch)
        # memory: max_entries sweep, empty and full
        if self.memory:
            for name, flags in self.types:
                for m in self.mem_max_entries:
                    yield from self.mem_rows(name, flags, m, [0, m], "dense")
        if self.talk_example:
            for flags in (0, 1):
                yield from self.mem_rows("hash", flags, 10240, [0, 1024], "talk")


def run(ctx):
    yield from MapSuite(ctx).run()
