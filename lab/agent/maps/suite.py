"""Map suite: what one map update or lookup costs per map type, alone and under contention, from
the kernel and from user space, and what each map costs in memory (memlock measured vs predicted
by lab/agent/maps/memlock.py, and memory-cgroup usage).

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
  loop         in-kernel driver: "auto" (bpf_loop where the kernel has it, else the bounded loop) or
               "bounded" (the bounded loop everywhere, to compare the two); the bounded loop runs at
               most BOUNDED_LOOPS iterations per program run, so loops is capped to it there
  max_entries  max_entries of the timed maps (10240)
  nkeys        keys 0..nkeys-1 in the dense key space, and the number of sparse keys (1024)
  operations   (["update", "lookup"])
  contention   also run every update from all vCPUs at once, one pinned thread each (true)
  contention_keys     key counts K of the shared/disjoint contention rows ([1, 16, 1024]); [] skips them
  contention_types    map configurations of those rows (["array", "percpu_array", "hash", "percpu_hash"])
  collision_keys      key counts K of the collide/spread rows ([64]); [] skips them
  collision_max_entries  max_entries of those maps (1024: 1024 buckets)
  sparse       sparse PID-like keys from [1, pid_max), arrays sized pid_max (true)
  sparse_alloc_limit  largest predicted array (bytes) the sparse run may create (536870912)
  occupancy_levels    percent occupancy levels of the occupancy sweep ([6, 25, 50, 75, 100]); [] skips it
  occupancy_max_entries  max_entries of the occupancy maps (16384)
  occupancy_keys      the fixed working set W looked up at every level (256)
  occupancy_types     map configurations of the occupancy sweep (every hash configuration of `types`)
  user         user-space driver rows: one syscall per element and batch ops (true)
  user_ops, user_trials   operations per trial (20000) and trials (5) of the user driver
  memory       memory rows (true)
  mem_max_entries     max_entries sweep of the memory rows ([1024, 10240, 102400])
  mem_copies   identical maps per memory row (maps up to 10240 entries; one above), read together: the
               charge is their total / copies, to page_size / copies (4: 1 KiB); each copy's figure
               is on the row (lab/agent/maps/charge.py)
  memory_vcpus the host's, not the agent's: vCPU counts whose guests the main job (bench.all) boots
               once more, plain TCG, for the memory rows alone (claim 8; lab/run/vcpumem.py)
  talk_example the talk's map (hash, key 4, value 8, max_entries 10240, flags 0x0 / 0x1, filled
               with keys 0..1023) with memlock measured and predicted (true)

Rows (schema.SUITES["maps"]): operation update/lookup (timed: ns per operation, median and 95%
CI over trials, events = successful operations vs triggers = operations issued) or memory.
Experiments that isolate one cause each (results/README.md, "maps"):
  contention  key_space "contention", contention "shared" (one pinned thread per CPU, all updating
              the same K keys) or "disjoint" (each thread its own K keys), nkeys K, threads N;
  collisions  hash with BPF_F_ZERO_SEED (flags 0x40), key_space "collide" (K keys in one bucket) or
              "spread" (K keys, a bucket each), keys chosen here (maps/keys.py) and their placement
              checked against the kernel's iteration order (a mismatch makes the row invalid);
  occupancy   key_space "occupancy-NN": the same W keys looked up in a map filled with other keys to
              NN% of max_entries (this replaced the fill-NN rows, whose working set grew with the fill).
Kernel-driven rows say which driver ran: loop "bpf_loop" (5.17+) or "bounded" (a plain loop the
verifier walks, for kernels without bpf_loop, or forced by the `loop` parameter).
Extra fields: loop_ns (the loop + key fetch alone, same run shape and driver), map_ns (ns_median -
loop_ns), threads, agg_ns_per_op (wall time / all threads' operations), memlock_regime,
memlock_terms, real_memory_peak, cgroup, possible_cpus, talk_setup_predicted.
"""

import platform
import subprocess

from ..common import ICOUNT_SERIAL, TCG_NOTE, check_params, timing_fields
from . import memlock
from . import registry as map_types
from .experiments import CONTENTION_TYPES, Experiments, disjoint_size
from .mapbench import Failed, Refused, run_mapbench, timed_fields, validity  # noqa: F401 (tests')
from .mem import make_cgroup, memory_fields, remove_cgroup

DEFAULT_TYPES = map_types.DEFAULT_TYPES
KEY_SIZE, VALUE_SIZE = 4, 8
# The talk's setup (the talk, part 3: map types): kernel 6.2, 16 CPUs; its figures live in lab/data/talk_maps.yaml.
TALK_VERSION, TALK_CPUS = (6, 2), 16
COPIES_UP_TO = 10240  # memory rows of maps up to this size are read over mem_copies identical maps
BOUNDED_LOOPS = 256  # MB_BOUNDED_LOOPS of the C helper (checked: tests/host/test_registries.py)
LOOP_DRIVERS = ("auto", "bounded")


def parse_type(spec):
    """'hash:1' -> ('hash', 1); 'array' -> ('array', 0)."""
    name, _, flags = str(spec).partition(":")
    return name, int(flags, 0) if flags else 0


PARAMS = ("types", "ops", "trials", "loops", "loop", "max_entries", "nkeys", "operations", "contention",
          "contention_keys",
          "contention_types", "collision_keys", "collision_max_entries", "sparse", "sparse_alloc_limit",
          "occupancy_levels", "occupancy_max_entries", "occupancy_keys", "occupancy_types", "user", "user_ops",
          "user_trials", "memory", "mem_max_entries", "mem_copies", "memory_vcpus", "talk_example")



def _type_problem(spec):
    try:
        name, _ = parse_type(spec)
    except ValueError:
        return "TYPE or TYPE:FLAGS (e.g. hash:1)"
    known = tuple(map_types.MAP_TYPES)
    return None if name in known else "a map type this suite runs (%s)" % ", ".join(known)


def check(params):
    """Problems with the playbook's maps parameters (checked on the host before anything boots)."""
    def count(v):
        return None if isinstance(v, int) and not isinstance(v, bool) and v > 0 else "a positive integer"

    def level(v):
        return None if isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 100 else "a percentage 1..100"

    loop = [] if params.get("loop", "auto") in LOOP_DRIVERS else [
        "loop must be one of %s, not %r" % (", ".join(LOOP_DRIVERS), params.get("loop"))]
    return loop + check_params(params, PARAMS, {"types": _type_problem, "occupancy_types": _type_problem,
                                         "contention_types": _type_problem, "operations": ("update", "lookup"),
                                         "contention_keys": count, "collision_keys": count,
                                         "occupancy_levels": level, "memory_vcpus": count},
                        ints=("ops", "trials", "loops", "max_entries", "nkeys", "occupancy_max_entries",
                              "occupancy_keys", "collision_max_entries", "user_ops", "user_trials", "mem_copies"))


def is_hash(name):
    return name in memlock.HASH_TYPES


# ---- the suite ----

class MapSuite(Experiments):
    def __init__(self, ctx):
        self.ctx = ctx
        p = ctx.param
        self.helper = ctx.path("mapbench")
        self.obj = ctx.path("maps.bpf.o")
        self.types = [parse_type(t) for t in p("types", DEFAULT_TYPES)]
        self.ops = int(p("ops", 1048576))
        self.trials = int(p("trials", 5))
        self.loops = int(p("loops", 1024))
        self.loop = str(p("loop", "auto"))
        self.max_entries = int(p("max_entries", 10240))
        self.nkeys = int(p("nkeys", 1024))
        self.operations = list(p("operations", ["update", "lookup"]))
        self.contention = bool(p("contention", True))
        self.contention_keys = [int(k) for k in p("contention_keys", [1, 16, 1024])]
        self.contention_types = [parse_type(t) for t in p("contention_types", CONTENTION_TYPES)]
        self.collision_keys = [int(k) for k in p("collision_keys", [64])]
        self.collision_max_entries = int(p("collision_max_entries", 1024))
        self.sparse = bool(p("sparse", True))
        self.sparse_alloc_limit = int(p("sparse_alloc_limit", 512 << 20))
        self.occ_levels = [int(x) for x in p("occupancy_levels", [6, 25, 50, 75, 100])]
        self.occ_max_entries = int(p("occupancy_max_entries", 16384))
        self.occ_keys = int(p("occupancy_keys", 256))
        occ_types = p("occupancy_types", None)
        self.occ_types = ([parse_type(t) for t in occ_types] if occ_types is not None
                          else [t for t in self.types if is_hash(t[0])])
        self.user = bool(p("user", True))
        self.user_ops = int(p("user_ops", 20000))
        self.user_trials = int(p("user_trials", 5))
        self.memory = bool(p("memory", True))
        self.mem_max_entries = [int(x) for x in p("mem_max_entries", [1024, 10240, 102400])]
        self.mem_copies = int(p("mem_copies", 4))
        self.talk_example = bool(p("talk_example", True))
        self.version = memlock.kernel_version(platform.release())
        self.info = {}
        self.htab_members = None
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

    @property
    def bounded(self):
        """The bounded-loop driver runs: forced, or the kernel has no bpf_loop (helper's probe)."""
        return self.loop == "bounded" or self.info.get("bpf_loop") == 0

    def kern(self, name, flags, op, keyspace, nkeys, max_entries, threads, key_space_size=None, extra=()):
        """One `mapbench kern` run; extra: more helper options (-D disjoint, -L keys, -P prefill)."""
        loops = min(self.loops, BOUNDED_LOOPS) if self.bounded else self.loops
        repeat = max(1, -(-self.ops // loops))
        args = ["-O", self.obj, "-t", name, "-f", flags, "-m", max_entries, "-o", op, "-k", keyspace,
                "-n", nkeys, "-l", loops, "-r", repeat, "-T", self.trials, "-j", threads] + list(extra)
        if self.loop == "bounded":
            args.append("-b")
        if key_space_size:
            args += ["-K", key_space_size]
        return run_mapbench(self.helper, "kern", args)

    def baseline(self, threads, nkeys, disjoint=False):
        """ns per iteration of the same loop (same threads, same key count, same key slots) without
        the map operation: the program only fetches the key. Cached per run shape."""
        key = (threads, nkeys, disjoint)
        if key not in self.loop_ns:
            try:
                size = disjoint_size(self.info.get("online_cpus", 1), nkeys) if disjoint else nkeys
                rec = self.kern("array", 0, "empty", "dense", nkeys, size, threads, extra=["-D"] if disjoint else [])
                self.loop_ns[key] = timing_fields("x", rec["ns_per_op"], 1)["ns_median"]
            except (Refused, Failed) as e:
                self.ctx.log("loop baseline failed: %s" % e)
                self.loop_ns[key] = None
        return self.loop_ns[key]

    def kern_row(self, name, flags, op, keyspace, nkeys, max_entries, contention, key_space_size=None,
                 label=None, extra=(), check=None, more=None):
        """One kernel-driven row. contention: 1cpu (one thread), allcpu / shared / disjoint (one pinned
        thread per CPU; disjoint: each its own keys). check(rec) -> (status, reason) adds a proof;
        more: extra row fields."""
        threads = 1 if contention == "1cpu" else 0
        disjoint = contention == "disjoint"
        fields = self.base(name, flags, operation=op, driver="kernel", contention=contention,
                           key_space=label or keyspace, max_entries=max_entries, **(more or {}))
        if threads != 1 and self.ctx.accelerator == "icount":
            return self.row("unsupported", ICOUNT_SERIAL, dict(fields, nkeys=nkeys))
        method = "%s in BPF_PROG_TEST_RUN (tc), kernel test-run timer" % (
            "bounded loop" if self.bounded else "bpf_loop")
        args = list(extra) + (["-D"] if disjoint else [])

        def go():
            loop_ns = self.baseline(threads, nkeys, disjoint)
            rec = self.kern(name, flags, op, keyspace, nkeys, max_entries, threads,
                            key_space_size=key_space_size, extra=args)
            status, reason = validity(rec)
            if status == "ok" and check:
                status, reason = check(rec)
            f = timed_fields(rec, method, loop_ns)
            f.update(nkeys=rec["nkeys"], key_min=rec["key_min"], key_max=rec["key_max"],
                     loop=rec.get("loop", "bpf_loop"), loops=rec.get("loops"))
            if disjoint:
                f["key_stride"] = rec["stride"]
            if rec.get("filler"):
                f["filler_entries"] = rec["filler"]
            return status, reason, f

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

    def copies_for(self, max_entries):
        """mem_copies for maps up to COPIES_UP_TO entries; one above (already exact to the page, and
        filling copies of large maps is what would cost time)."""
        return self.mem_copies if max_entries <= COPIES_UP_TO else 1

    def mem_rows(self, name, flags, max_entries, fills, key_space, keyspace="dense", key_space_size=None,
                 extra=None, copies=None):
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
                args += ["-c", cg, "-g", cg_kind, "-C", copies or self.copies_for(max_entries)]
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
                              self.info["page_size"], cg_kind if cg else None, self.htab_members)
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
        self.htab_members = (self.info.get("members") or {}).get("bpf_htab")
        if not self.info.get("btf"):
            self.ctx.log("no kernel BTF: struct sizes for the memlock model fall back to Debian 6.12's")
        self.ctx.log("possible CPUs %d, pid_max %d, struct sizes %s, bpf_htab members %s, bpf_loop %s" % (
            self.info["possible_cpus"], self.info["pid_max"], self.sizes,
            (self.info.get("members") or {}).get("bpf_htab"), self.info.get("bpf_loop")))

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
        # contention: the same updates from every vCPU at once; then shared vs disjoint keys
        if self.contention:
            for name, flags in self.types:
                yield self.kern_row(name, flags, "update", "dense", self.nkeys, self.max_entries, "allcpu")
        if self.contention_keys:
            yield from self.contention_rows()
        if self.collision_keys:
            yield from self.collision_rows()
        # sparse PID-like keys: arrays need max_entries = pid_max
        if self.sparse:
            pid_max = int(self.info["pid_max"]) if self.info.get("pid_max", -1) > 0 else 4194304
            for name, flags in self.types:
                size = pid_max if name in memlock.ARRAY_TYPES else self.max_entries
                pred = memlock.predict(self.version, name, KEY_SIZE, VALUE_SIZE, size, flags,
                                       self.info["possible_cpus"], self.nkeys, self.sizes, self.info["page_size"],
                                       self.htab_members)
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
                                             extra={"pid_max": pid_max}, copies=1)  # arrays of pid_max: one
        # occupancy: a fixed working set in maps filled with other keys
        yield from self.occupancy_rows()
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
