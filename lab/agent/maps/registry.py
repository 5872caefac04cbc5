"""The map types: the one registry of them (guest agent and host read it). Standard library only.

KERNEL_IDS names the kernel's enum bpf_map_type values the lab can meet (a tool's maps, counted by the
tool suite); MAP_TYPES are the ones the map suite measures, with their kernel id, family (array or
hash: which memlock model and key space apply), whether each CPU has its own value, whether the suite
also runs its BPF_F_NO_PREALLOC variant by default (TYPE:1, map flags 1: elements allocated on
update instead of at creation; hash types only), whether the contention experiment runs it, and the
kernel functions its lookups, updates and deletes call (what the tool suite's map-operation counter
attaches to: tools/mapaccess.py; "" where there is none to count, as for inlined array lookups).
The suite's accepted and default types, the memlock model's families, the tool suite's names and the
map-operation counter's functions derive from here; the C helper's map table (bpf/helpers/mapbench/)
is checked against it by tests/host/test_registries.py. Adding a map type: docs/extending.md.
"""

from collections import OrderedDict, namedtuple

KERNEL_IDS = {1: "hash", 2: "array", 3: "prog_array", 4: "perf_event_array", 5: "percpu_hash", 6: "percpu_array",
              7: "stack_trace", 8: "cgroup_array", 9: "lru_hash", 10: "lru_percpu_hash", 12: "array_of_maps",
              13: "hash_of_maps", 19: "sk_storage", 27: "ringbuf", 28: "inode_storage", 29: "task_storage",
              30: "bloom_filter", 31: "user_ringbuf"}

MapType = namedtuple("MapType", "kernel_id family percpu no_prealloc contention lookup update delete")

MAP_TYPES = OrderedDict([
    ("array", MapType(2, "array", False, False, True, "", "array_map_update_elem", "")),
    ("percpu_array", MapType(6, "array", True, False, True, "percpu_array_map_lookup_elem", "", "")),
    ("hash", MapType(1, "hash", False, True, True, "htab_map_lookup_elem", "htab_map_update_elem",
                     "htab_map_delete_elem")),
    ("percpu_hash", MapType(5, "hash", True, True, True, "htab_percpu_map_lookup_elem",
                            "htab_percpu_map_update_elem", "")),
    ("lru_hash", MapType(9, "hash", False, False, False, "htab_lru_map_lookup_elem", "htab_lru_map_update_elem",
                         "htab_lru_map_delete_elem")),
    ("lru_percpu_hash", MapType(10, "hash", True, False, False, "htab_lru_percpu_map_lookup_elem",
                                "htab_lru_percpu_map_update_elem", "")),
])


def of(family=None, percpu=None):
    """Names of the measured map types of a family and/or per-CPU-ness, in registry order."""
    return tuple(n for n, t in MAP_TYPES.items()
                 if (family is None or t.family == family) and (percpu is None or t.percpu == percpu))


HASH_TYPES = of("hash")
ARRAY_TYPES = of("array")
PERCPU_TYPES = of(percpu=True)
HASH_IDS = frozenset(t.kernel_id for t in MAP_TYPES.values() if t.family == "hash")
CONTENTION_TYPES = [n for n, t in MAP_TYPES.items() if t.contention]
# the suite's default types: each type, and after it its BPF_F_NO_PREALLOC variant where it has one
DEFAULT_TYPES = [v for n, t in MAP_TYPES.items() for v in ((n, n + ":1") if t.no_prealloc else (n,))]
