"""A model of the kernel's memlock accounting for BPF maps (what /proc/<pid>/fdinfo/<fd> prints as
"memlock:" and `bpftool map show` as "memlock ...B"), per kernel version range.

Written from the kernel's own code; standard library only, so the agent can put predictions into
rows in the guest and the host can import it.

Three regimes:

* before 5.11 -- pages charged at creation (bpf_map_charge_init(round_up(cost, PAGE_SIZE))), the
  cost computed by each map type's alloc function (5.10 kernel/bpf/hashtab.c htab_map_alloc,
  arraymap.c array_map_alloc); fdinfo prints map->memory.pages << PAGE_SHIFT.
* 5.11 .. 6.3 -- memory is charged to the memory cgroup instead, and fdinfo prints an
  approximation, kernel/bpf/syscall.c bpf_map_memory_footprint():
      round_up(max_entries * round_up(key_size + bpf_map_value_size(map), 8), PAGE_SIZE)
  where bpf_map_value_size() is round_up(value_size, 8) * num_possible_cpus() for per-CPU maps.
  It ignores buckets, element headers, preallocation and live entries.
* 6.4 and later -- each map type's map_mem_usage callback (hashtab.c htab_map_mem_usage,
  arraymap.c array_map_mem_usage): the struct, buckets, bucket locks, preallocated elements
  (plus one spare element per possible CPU for non-LRU, non-per-CPU hash maps), per-CPU value
  copies, or, without preallocation, the live elements.

The 6.4+ term for the per-CPU bucket-lock counters (map_locked: 4 B x possible CPUs x
HASHTAB_MAP_LOCK_COUNT) depends on the kernel (htab_locks_counted): kernels whose struct bpf_htab
has a map_locked member (BTF) count it; 6.15 replaced those counters (rqspinlock) but
htab_map_mem_usage kept counting them through 6.18 (measured: host 6.18, predicted == measured
with the term), and 7.x counts them no more (Debian 7.2 and 7.3-rc: 64 B less with 2 CPUs). The
BTF of 6.18 and 7.2 gives bpf_htab the same members, so past 6.14 the release decides.

Inputs measured on the kernel being modelled: possible CPUs (/sys/devices/system/cpu/possible),
struct sizes from its BTF (sizeof(struct bpf_htab), bucket, htab_elem, bpf_array, llist_node),
page size, and live entries. SIZES_6_12 (Debian 6.12's BTF) is used when BTF is not available.
"""

import re

BPF_F_NO_PREALLOC = 1
BPF_F_MMAPABLE = 1 << 10
HASHTAB_MAP_LOCK_COUNT = 8
PTR = 8  # sizeof(void *), x86_64

from .registry import ARRAY_TYPES, HASH_TYPES, PERCPU_TYPES  # noqa: E402 (the registry: registry.py)

# sizeof() of the kernel structs the 6.4+ model needs, from Debian 6.12.117's BTF (the host kernel
# of this lab, 6.18, has bpf_htab 832 and bpf_array 312: struct sizes change between versions,
# so the agent reads them from the running kernel's BTF and uses these only as a fallback).
SIZES_6_12 = {"bpf_htab": 896, "bucket": 16, "htab_elem": 48, "bpf_array": 264, "llist_node": 8}


def round_up(x, to):
    return (x + to - 1) // to * to


def roundup_pow_of_two(x):
    return 1 if x <= 1 else 1 << (x - 1).bit_length()


def kernel_version(release):
    """(major, minor) from a uname -r string such as '6.12.117+deb12-amd64'."""
    m = re.match(r"(\d+)\.(\d+)", release)
    if not m:
        raise ValueError("not a kernel release: %r" % (release,))
    return int(m.group(1)), int(m.group(2))


def parse_cpu_list(text):
    """Number of CPUs in a kernel CPU list such as '0-3,8,10-11'."""
    n = 0
    for part in text.strip().split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-")
            n += int(hi) - int(lo) + 1
        else:
            n += 1
    return n


def possible_cpus(path="/sys/devices/system/cpu/possible"):
    with open(path) as f:
        return parse_cpu_list(f.read())


# The first release whose htab_map_mem_usage no longer counts the map_locked counters. 6.18 still
# does (measured), 7.2 does not (measured); 6.19 was not measured: assumed to behave as 7.x.
LOCKS_UNCOUNTED_FROM = (6, 19)


def htab_locks_counted(version, members=None):
    """(counted, why): whether the 6.4+ htab memlock counts the per-CPU map_locked counters.
    members: the member names of struct bpf_htab from the running kernel's BTF (None without BTF)."""
    if members is not None and "map_locked" in members:
        return True, "struct bpf_htab has map_locked (BTF)"
    if version >= LOCKS_UNCOUNTED_FROM:
        return False, "%d.%d >= %d.%d: htab_map_mem_usage dropped the map_locked term" % (
            version + LOCKS_UNCOUNTED_FROM)
    if members is not None:
        return True, ("struct bpf_htab has no map_locked (BTF: rqspinlock, 6.15+) but %d.%d < %d.%d still "
                      "counts the term" % (version + LOCKS_UNCOUNTED_FROM))
    return True, "no BTF: %d.%d < %d.%d counts map_locked" % (version + LOCKS_UNCOUNTED_FROM)


def regime(version):
    if version < (5, 11):
        return "pages<5.11"
    if version < (6, 4):
        return "footprint5.11-6.3"
    return "mem_usage6.4+"


class Prediction:
    """A predicted memlock figure with the terms that make it up (name -> bytes)."""

    def __init__(self, bytes_, regime_, terms, inputs):
        self.bytes = int(bytes_)
        self.regime = regime_
        self.terms = terms
        self.inputs = inputs

    def explain(self):
        return "%s: %s = %d B" % (self.regime, " + ".join("%s %d" % kv for kv in self.terms.items()), self.bytes)

    def __repr__(self):
        return "Prediction(%d, %r)" % (self.bytes, self.regime)


def _htab_elem_size(map_type, key_size, value_size, sizes):
    # hashtab.c htab_map_alloc: elem_size = sizeof(struct htab_elem) + round_up(key_size, 8) +
    # (percpu ? sizeof(void *) : round_up(value_size, 8))
    tail = PTR if map_type in PERCPU_TYPES else round_up(value_size, 8)
    return sizes["htab_elem"] + round_up(key_size, 8) + tail


def predict(version, map_type, key_size, value_size, max_entries, flags, ncpus, live_entries=0,
            sizes=None, page_size=4096, htab_members=None):
    """Predicted memlock in bytes for a map on a kernel `version` ((major, minor)) with `ncpus`
    possible CPUs. `live_entries` matters only for hash maps without preallocation on 6.4+;
    `htab_members`, struct bpf_htab's members from the kernel's BTF, only for the map_locked term.
    Returns a Prediction, or None for a map type the model does not cover."""
    sizes = dict(SIZES_6_12, **(sizes or {}))
    reg = regime(version)
    percpu = map_type in PERCPU_TYPES
    vs8 = round_up(value_size, 8)
    inputs = dict(map_type=map_type, key_size=key_size, value_size=value_size, max_entries=max_entries,
                  flags=flags, possible_cpus=ncpus, live_entries=live_entries, page_size=page_size)
    if map_type not in HASH_TYPES + ARRAY_TYPES:
        return None
    terms = {}

    if reg == "footprint5.11-6.3":
        # syscall.c bpf_map_memory_footprint + bpf_map_value_size
        vsize = vs8 * ncpus if percpu else value_size
        per = round_up(key_size + vsize, 8)
        terms["max_entries*round_up(key+value,8)"] = max_entries * per
        total = round_up(max_entries * per, page_size)
        terms["page round-up"] = total - max_entries * per
        return Prediction(total, reg, terms, inputs)

    if map_type in ARRAY_TYPES:
        elem = vs8  # array->elem_size = round_up(value_size, 8)
        if reg == "pages<5.11":
            # 5.10 array_map_alloc: cost = sizeof(*array) + entries * (elem | pointer) (+ per-CPU
            # values), charged in pages. sizeof(struct bpf_array) of 5.10 is not known here: the
            # page round-up absorbs it unless it crosses a page boundary.
            base = sizes.get("bpf_array", SIZES_6_12["bpf_array"])
        else:
            base = sizes["bpf_array"]
        terms["sizeof(bpf_array)"] = base
        if percpu:
            terms["entries*pointer"] = max_entries * PTR
            terms["entries*elem*cpus"] = max_entries * elem * ncpus
        elif flags & BPF_F_MMAPABLE:
            terms["sizeof(bpf_array)"] = round_up(base, page_size)
            terms["entries*elem (page aligned)"] = round_up(max_entries * elem, page_size)
        else:
            terms["entries*elem"] = max_entries * elem
        total = sum(terms.values())
        if reg == "pages<5.11":
            terms["page round-up"] = round_up(total, page_size) - total
            total = round_up(total, page_size)
        return Prediction(total, reg, terms, inputs)

    # hash family
    lru = map_type.startswith("lru")
    prealloc = not (flags & BPF_F_NO_PREALLOC)
    n_buckets = roundup_pow_of_two(max_entries)
    elem_size = _htab_elem_size(map_type, key_size, value_size, sizes)
    inputs.update(n_buckets=n_buckets, elem_size=elem_size)
    if reg == "pages<5.11":
        # 5.10 htab_map_alloc: cost = buckets + elem_size * max_entries, plus per-CPU values
        # or one spare element per CPU; charged in pages whether or not it preallocates.
        terms["buckets"] = n_buckets * sizes["bucket"]
        terms["elem_size*max_entries"] = elem_size * max_entries
        if percpu:
            terms["value*cpus*max_entries"] = vs8 * ncpus * max_entries
        else:
            terms["elem_size*cpus (extra)"] = elem_size * ncpus
        total = sum(terms.values())
        terms["page round-up"] = round_up(total, page_size) - total
        return Prediction(round_up(total, page_size), reg, terms, inputs)

    # 6.4+: htab_map_mem_usage
    terms["sizeof(bpf_htab)"] = sizes["bpf_htab"]
    terms["buckets"] = sizes["bucket"] * n_buckets
    counted, why = htab_locks_counted(version, htab_members)
    inputs["map_locked"] = why
    if counted:
        terms["map_locked"] = 4 * ncpus * HASHTAB_MAP_LOCK_COUNT
    if prealloc:
        extra = not percpu and not lru  # htab_has_extra_elems
        num = max_entries + (ncpus if extra else 0)
        terms["elem_size*(max_entries%s)" % ("+cpus" if extra else "")] = elem_size * num
        if percpu:
            terms["value*cpus*entries"] = vs8 * ncpus * num
        elif not lru:
            terms["extra_elems pointers"] = PTR * ncpus
    else:
        llist = sizes["llist_node"]
        terms["(elem_size+llist_node)*live"] = (elem_size + llist) * live_entries
        if percpu:
            terms["(llist_node+pointer)*live"] = (llist + PTR) * live_entries
            terms["value*cpus*live"] = vs8 * ncpus * live_entries
    return Prediction(sum(terms.values()), reg, terms, inputs)


def note(measured, pred, real=None):
    """The memlock_note of a memory row: agreement, or by how much and why not."""
    if pred is None:
        return "no model for this map type"
    if measured is None or measured < 0:
        return "memlock not reported by this kernel; predicted %d B (%s)" % (pred.bytes, pred.regime)
    diff = measured - pred.bytes
    parts = []
    if diff == 0:
        parts.append("predicted == measured (%s)" % pred.explain())
    else:
        parts.append("measured - predicted = %+d B (%+.2f%%); model %s" % (
            diff, 100.0 * diff / max(1, pred.bytes), pred.explain()))
        if pred.regime == "pages<5.11":
            parts.append("pre-5.11 model written from 5.10 source, struct sizes of that kernel unknown")
        elif pred.regime == "mem_usage6.4+":
            parts.append("a term of map_mem_usage changed in this kernel or a struct size differs")
    if pred.regime == "footprint5.11-6.3":
        parts.append("5.11..6.3 memlock is only entries x rounded key+value: it ignores buckets, "
                     "element headers, per-CPU spares and preallocation")
    if real is not None and real >= 0:
        parts.append("memory cgroup saw %d B (%.2fx memlock)" % (real, float(real) / max(1, measured or 1)))
    return "; ".join(parts)


def implied_setup(prealloc_bytes, noprealloc_bytes, max_entries=10240, key_size=4, value_size=8,
                  sizes=None, align=64, cpu_range=range(1, 1025)):
    """Which (possible CPUs, live entries, sizeof(bpf_htab)) make the 6.4+ hash model give the two
    figures of a flags 0x0 / 0x1 pair (a hash map with key_size/value_size/max_entries).

    prealloc:   S + B*nb + 32c + E*(max+c) + 8c          (c possible CPUs, E elem size)
    noprealloc: S + B*nb + 32c + (E+8)*live
    => E*(max+c) + 8c - (E+8)*live = prealloc - noprealloc  -> live = c + (E*max - diff)/(E+8)
    and S = prealloc - B*nb - 32c - E*(max+c) - 8c must be a plausible struct size (a multiple of
    the cache line, as bpf_htab is). Returns the candidate solutions, most plausible first.
    """
    sizes = dict(SIZES_6_12, **(sizes or {}))
    elem = _htab_elem_size("hash", key_size, value_size, sizes)
    nb = roundup_pow_of_two(max_entries)
    diff = prealloc_bytes - noprealloc_bytes
    out = []
    for c in cpu_range:
        num = elem * (max_entries + c) + PTR * c - diff
        if num < 0 or num % (elem + sizes["llist_node"]):
            continue
        live = num // (elem + sizes["llist_node"])
        s = prealloc_bytes - sizes["bucket"] * nb - 4 * c * HASHTAB_MAP_LOCK_COUNT - elem * (max_entries + c) - PTR * c
        if s <= 0 or s % align:
            continue
        out.append({"possible_cpus": c, "live_entries": live, "sizeof_bpf_htab": s, "elem_size": elem,
                    "n_buckets": nb})
    # a bpf_htab of a real kernel is a few hundred bytes: closest to the 6.12 size first
    out.sort(key=lambda d: abs(d["sizeof_bpf_htab"] - sizes["bpf_htab"]))
    return out

