"""The memory the kernel charges for a map, per kernel accounting regime, and the words for each
regime (the claims' reasons name them: lab/analysis/claims.py imports REGIME_WORDS).

Two quantities, two regimes each kernel has one of:

* memlock (what fdinfo prints; memlock.py models it): `pages<5.11` the rlimit charge itself;
  `footprint5.11-6.3` bpf_map_memory_footprint(), an estimate that cannot see preallocation;
  `mem_usage6.4+` the map type's map_mem_usage(), what the map holds.
* the charge: `rlimit<5.11` RLIMIT_MEMLOCK charged at creation (memlock is that charge: exact, in
  pages); `memcg5.11+` the memory cgroup, charged as the kernel allocates (kernel objects, vmalloc
  and per-CPU memory). mapbench mem measures it (bpf/helpers/mapbench/mem.c): the cgroup's per-CPU
  stocks drained before each reading, COPIES identical maps, the total divided by COPIES, so the
  resolution is page_size / COPIES; each copy's own figure is kept (their spread: the method's
  repeatability within one boot).

Standard library only (the guest agent).
"""

REGIME_WORDS = {
    "pages<5.11": "memlock is the RLIMIT_MEMLOCK charge (before 5.11: pages charged at creation for "
                  "max_entries elements, whatever the flags)",
    "footprint5.11-6.3": "memlock is bpf_map_memory_footprint() (5.11-6.3: max_entries x round_up(key+value, 8), "
                         "paged), which by construction ignores preallocation",
    "mem_usage6.4+": "memlock is the map type's map_mem_usage() (6.4+: what the map holds, preallocated "
                     "or live elements)",
    "rlimit<5.11": "the charge is RLIMIT_MEMLOCK's (before 5.11: charged at creation for max_entries "
                   "elements, so the rlimit charge ignores BPF_F_NO_PREALLOC; no memory cgroup charge)",
    "memcg5.11+": "the charge is the memory cgroup's (5.11+: charged as the kernel allocates)",
}


def regime(version):
    return "rlimit<5.11" if version < (5, 11) else "memcg5.11+"


def charge_fields(rec, stage, version, memlock_measured, memlock_regime):
    """mem_charged* fields of one fill stage of a `mapbench mem` record (None where not measured)."""
    reg = regime(version)
    f = {"mem_charged_regime": reg}
    if reg == "rlimit<5.11":
        f.update(mem_charged=memlock_measured, mem_charged_resolution=1 if memlock_measured is not None else None,
                 mem_charged_method="fdinfo memlock: before 5.11 it is the RLIMIT_MEMLOCK charge itself (exact)")
        return f
    copies = int(rec.get("copies") or 1)
    page = int(rec.get("page_size") or 4096)
    before, cg = rec.get("cg_before", -1), stage.get("cg", -1)
    if before is None or cg is None or before < 0 or cg < 0:
        f.update(mem_charged=None, mem_charged_method="no memory cgroup reading")
        return f
    drained = bool(rec.get("drained"))
    total = cg - before
    f["mem_charged"] = int(round(float(total) / copies))
    f["mem_charged_copies"] = list(stage.get("cg_copies") or [])
    if f["mem_charged_copies"]:
        f["mem_charged_spread"] = max(f["mem_charged_copies"]) - min(f["mem_charged_copies"])
    if drained:
        f["mem_charged_resolution"] = page // copies
        f["mem_charged_method"] = ("memory cgroup, per-CPU stocks drained (%s) before each reading, %d identical "
                                   "map(s), total / %d: to %d B" % (rec.get("drain"), copies, copies, page // copies))
    else:
        # undrained, a reading may hold one charge batch (64 pages) per CPU
        f["mem_charged_resolution"] = 64 * page // copies
        f["mem_charged_method"] = ("memory cgroup, stocks NOT drained (%s refused), %d map(s): up to one charge "
                                   "batch (64 pages) off per reading" % (rec.get("drain") or "no control file", copies))
    if memlock_measured and memlock_regime == "mem_usage6.4+":
        f["mem_charged_vs_memlock_pct"] = round(100.0 * (f["mem_charged"] - memlock_measured) / memlock_measured, 2)
    return f
