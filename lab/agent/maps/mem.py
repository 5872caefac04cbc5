"""Map suite, memory side: the row fields of a memory reading (memlock measured vs the model of
lab/agent/maps/memlock.py, memory-cgroup usage) and the child memory cgroup the readings are taken in."""

import os

from . import memlock
from .charge import charge_fields


def memory_fields(rec, stage, version, ncpus, sizes, page_size, cg_kind, htab_members=None):
    """Row fields of one fill stage of a `mapbench mem` record, with the model's prediction
    (htab_members: struct bpf_htab's members from the kernel's BTF, None without)."""
    pred = memlock.predict(version, rec["map_type"], rec["key_size"], rec["value_size"], rec["max_entries"],
                           rec["flags"], ncpus, stage["live"], sizes, page_size, htab_members)
    measured = stage["memlock"] if stage["memlock"] >= 0 else None
    real = peak = None
    copies = int(rec.get("copies") or 1)
    if rec["cg_before"] >= 0 and stage["cg"] >= 0:
        real = int(round(float(stage["cg"] - rec["cg_before"]) / copies))
        peak = rec["cg_peak"] - rec["cg_before"] if rec["cg_peak"] >= 0 else None
    f = dict(max_entries=rec["max_entries"], live_entries=stage["live"], memlock_measured=measured,
             memlock_predicted=pred.bytes if pred else None, memlock_note=memlock.note(measured, pred, real),
             real_memory=real, real_memory_peak=peak, cgroup=cg_kind, possible_cpus=ncpus,
             inserted=stage["inserted"], fill=stage["fill"])
    if real is not None and real < 0:  # the cgroup gave back more (cached per-CPU charge) than the map took
        f.update(real_memory=None, real_memory_raw_delta=real,
                 real_memory_note="no figure: the memory cgroup %s fell by %d B while the map was made "
                                  "(its per-CPU charge cache was returned meanwhile)" % (cg_kind, -real))
        real = None
    if pred:
        f["memlock_regime"] = pred.regime
        f["memlock_terms"] = pred.terms
        if "map_locked" in pred.inputs:
            f["memlock_map_locked"] = pred.inputs["map_locked"]
        if real is not None and rec.get("drained"):
            f["real_memory_note"] = ("memory cgroup %s delta per map since before creation, its per-CPU stocks "
                                     "drained before each reading (%d map(s))" % (cg_kind, copies))
        elif real is not None:
            f["real_memory_note"] = ("memory cgroup %s delta since before map creation; the cgroup charges "
                                     "in per-CPU batches (up to 64 pages), so small maps read coarse" % cg_kind)
    f.update(charge_fields(rec, stage, version, measured, pred.regime if pred else None))
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
