"""Map suite: the experiments that isolate one cause each (contention, collisions, occupancy).

A mixin of maps.MapSuite (it uses the suite's kern_row, row and base): each method yields rows.
  contention_rows  key_space "contention": one pinned thread per CPU updating at once, contention
                   "shared" (all on the same K keys) or "disjoint" (each thread its own K keys, their
                   array values at least 128 bytes apart, so no cache line is shared either)
  collision_rows   hash with BPF_F_ZERO_SEED, key_space "collide" (K keys in one bucket) or "spread"
                   (a bucket each), lookups and updates; keys from maps/keys.py, their placement proved
                   by the kernel's iteration order before timing (else the row is invalid)
  occupancy_rows   key_space "occupancy-NN": the same W keys looked up in maps filled with other keys
                   to NN% of max_entries (chain lengths grow, the working set does not)
"""

from . import keys as mapkeys
from . import registry as map_types

CONTENTION_TYPES = map_types.CONTENTION_TYPES


def disjoint_size(ncpus, nkeys):
    """max_entries that holds every thread's disjoint key slot (dense keys up to ncpus x stride)."""
    return max(1, int(ncpus)) * (-(-int(nkeys) // 16) * 16)


class Experiments:
    def contention_rows(self):
        """Shared vs disjoint keys: every thread on the same K keys, or each on its own K keys."""
        size = max(self.max_entries, disjoint_size(self.info.get("online_cpus", 1), max(self.contention_keys)))
        for name, flags in self.contention_types:
            for k in self.contention_keys:
                for mode in ("shared", "disjoint"):
                    yield self.kern_row(name, flags, "update", "dense", k, size, mode, label="contention")

    def collision_rows(self):
        """Zero-seed hash: K keys in one bucket vs K keys one per bucket, lookups and updates."""
        m = self.collision_max_entries
        for k in self.collision_keys:
            for label in ("collide", "spread"):
                fields = self.base("hash", mapkeys.ZERO_SEED, driver="kernel", contention="1cpu", key_space=label,
                                   max_entries=m, nkeys=k)
                try:
                    keys = mapkeys.collide_keys(k, m) if label == "collide" else mapkeys.spread_keys(k, m)
                except ValueError as e:
                    for op in ("lookup", "update"):
                        yield self.row("unsupported", str(e), dict(fields, operation=op))
                    continue
                buckets = {mapkeys.bucket(x, m) for x in keys}
                more = dict(buckets=mapkeys.n_buckets(m), buckets_used=len(buckets), chain_len=k // len(buckets),
                            key_list=keys if k <= 64 else None)

                def check(rec, keys=keys):
                    if "order" not in rec:
                        return "invalid", "the helper did not report the kernel's iteration order"
                    return mapkeys.placement_check(keys, rec["order"], m)

                for op in ("lookup", "update"):
                    yield self.kern_row("hash", mapkeys.ZERO_SEED, op, "list", k, m, "1cpu", label=label,
                                        extra=["-L", ",".join(str(x) for x in keys)], check=check, more=more)

    def occupancy_rows(self):
        """The same W keys looked up in maps filled with other keys to NN% of max_entries."""
        m, w = self.occ_max_entries, self.occ_keys
        for level in self.occ_levels:
            total = max(w, m * level // 100)
            for name, flags in self.occ_types:
                yield self.kern_row(name, flags, "lookup", "dense", w, m, "1cpu", label="occupancy-%02d" % level,
                                    extra=["-P", total], more=dict(fill_entries=total, occupancy_pct=level))
