"""Map suite on this machine's own kernel: real maps, real programs, real memlock.

One run of playbooks/quick.yaml's maps block through lab.run.suites (the `inv bench.maps --kernel host`
path), plus a direct agent call for a configuration the kernel refuses (LRU without
preallocation), which must come back as an `unsupported` row carrying the kernel's text.
"""

import glob
import json
import os
import statistics
import subprocess
import sys

import pytest
from conftest import run_rows

from lab.agent import schema
from lab.agent.maps import suite as maps
from lab.core.config import ROOT, Paths

pytestmark = pytest.mark.host

TYPES = [maps.parse_type(t) for t in maps.DEFAULT_TYPES]


def lab_cgroups():
    return sorted(glob.glob("/sys/fs/cgroup/**/lab-maps-*", recursive=True))


@pytest.fixture(scope="module")
def quick_rows(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    before = lab_cgroups()
    rows = run_rows(["maps"], "host", "quick", results)[1]["maps"]
    return rows, before, lab_cgroups()


def test_rows_valid_and_host_labelled(quick_rows):
    rows, _, _ = quick_rows
    assert rows
    for r in rows:
        assert schema.validate(r) == [], r
        assert r["accelerator"] == "host" and r["suite"] == "maps"
    assert not [r for r in rows if r["status"] in ("error", "invalid")], \
        [(r["map_type"], r["operation"], r["reason"]) for r in rows if r["status"] in ("error", "invalid")]


@pytest.mark.parametrize("name,flags", TYPES)
@pytest.mark.parametrize("op", ["update", "lookup"])
def test_every_type_updates_and_looks_up_in_kernel(quick_rows, name, flags, op):
    rows, _, _ = quick_rows
    r = [r for r in rows if r["map_type"] == name and r["flags"] == flags and r["operation"] == op
         and r["driver"] == "kernel" and r["key_space"] == "dense" and r["contention"] == "1cpu"]
    assert len(r) == 1
    r = r[0]
    assert r["status"] == "ok", r["reason"]
    assert r["events"] == r["triggers"] > 0
    assert r["trials"] == len(r["samples"]) == 3 and r["ns_ci_low"] <= r["ns_median"] <= r["ns_ci_high"]
    assert r["ns_median"] > 0


@pytest.mark.parametrize("name,flags", TYPES)
def test_contention_sparse_user_and_batch_rows(quick_rows, name, flags):
    rows, _, _ = quick_rows
    mine = [r for r in rows if r["map_type"] == name and r["flags"] == flags]
    allcpu = [r for r in mine if r["contention"] == "allcpu"]
    assert allcpu and allcpu[0]["status"] == "ok" and allcpu[0]["threads"] == os.cpu_count()
    sparse = [r for r in mine if r["key_space"] == "sparse" and r["operation"] in ("update", "lookup")]
    assert {r["operation"] for r in sparse if r["status"] == "ok"} == {"update", "lookup"}
    drivers = {(r["driver"], r["operation"]) for r in mine if r["driver"] in ("user", "user_batch")
               and r["operation"] != "memory"
               and r["status"] == "ok"}
    # batch ops exist since 5.6 (hash) / 5.7 (array): the host has them
    assert drivers == {(d, o) for d in ("user", "user_batch") for o in ("update", "lookup")}


def test_sparse_array_is_sized_by_pid_max(quick_rows):
    rows, _, _ = quick_rows
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    arr = [r for r in rows if r["map_type"] == "array" and r["key_space"] == "sparse" and r["operation"] == "memory"]
    assert arr and arr[0]["max_entries"] == pid_max
    assert arr[0]["memlock_measured"] >= pid_max * 8


@pytest.mark.parametrize("name,flags", TYPES)
def test_memory_sweep_predicted_equals_measured(quick_rows, name, flags):
    rows, _, _ = quick_rows
    mem = [r for r in rows if r["map_type"] == name and r["flags"] == flags and r["operation"] == "memory"
           and r["key_space"] == "dense"]
    assert {r["max_entries"] for r in mem} == {1024, 10240, 102400}
    for r in mem:
        assert r["status"] == "ok"
        # the host runs 6.18: map_mem_usage, struct sizes from its BTF
        assert r["memlock_regime"] == "mem_usage6.4+"
        assert r["memlock_predicted"] == r["memlock_measured"], r["memlock_note"]
        assert r["memlock_note"].startswith("predicted == measured")
        # a figure, or why not: no memory cgroup, or its usage fell meanwhile (per-CPU charge cache)
        assert r["real_memory"] is not None or r["real_memory_note"].startswith(("unsupported", "no figure"))


def test_no_prealloc_memlock_grows_with_live_entries(quick_rows):
    rows, _, _ = quick_rows
    talk = sorted((r for r in rows if r["key_space"] == "talk"), key=lambda r: (r["flags"], r["live_entries"]))
    assert [(r["flags"], r["live_entries"]) for r in talk] == [(0, 0), (0, 1024), (1, 0), (1, 1024)]
    pre0, pre1, np0, np1 = (r["memlock_measured"] for r in talk)
    assert pre0 == pre1 and np1 > np0 and pre0 > np1
    assert all(r["talk_setup_predicted"] == 163840 for r in talk)


def test_real_memory_or_unsupported_row(quick_rows):
    rows, _, _ = quick_rows
    cg = [r for r in rows if r["key_space"] == "cgroup"]
    real = [r for r in rows if r["operation"] == "memory" and r.get("real_memory") is not None]
    assert real or (cg and cg[0]["status"] == "unsupported" and cg[0]["reason"])


def test_occupancy_rows_keep_the_working_set(quick_rows):
    rows, _, _ = quick_rows
    occ = [r for r in rows if str(r["key_space"]).startswith("occupancy-")]
    assert {r["key_space"] for r in occ} == {"occupancy-06", "occupancy-100"}
    for r in occ:
        assert r["status"] == "ok" and r["operation"] == "lookup", r["reason"]
        assert r["nkeys"] == 128 and r["max_entries"] == 4096  # the same working set at every level
        want = max(128, 4096 * int(r["key_space"][10:]) // 100)
        assert r["fill_entries"] == want and r["live_entries"] <= want
        assert r["live_entries"] >= 0.95 * want  # the filler keys went in (LRU may evict a few)


CONTENTION_TYPES = ["array", "percpu_array", "hash", "percpu_hash"]


def test_contention_rows_shared_and_disjoint(quick_rows):
    rows, _, _ = quick_rows
    con = [r for r in rows if r["key_space"] == "contention"]
    got = {(r["map_type"], r["contention"], r["nkeys"]) for r in con}
    assert got == {(t, m, k) for t in CONTENTION_TYPES for m in ("shared", "disjoint") for k in (1, 16, 1024)}
    for r in con:
        assert r["status"] == "ok", r["reason"]
        assert r["operation"] == "update" and r["driver"] == "kernel" and r["threads"] == os.cpu_count()
        assert r["events"] == r["triggers"] > 0 and len(r["samples"]) == r["trials"] == 3
    sizes = {r["max_entries"] for r in con}
    assert len(sizes) == 1  # shared and disjoint rows use one map size


def test_collide_and_spread_rows_place_their_keys(quick_rows):
    """Zero-seed hash: 64 keys in one bucket against 64 keys one per bucket, same map size. The
    placement was checked against the kernel's own iteration order (else the rows would be invalid)."""
    rows, _, _ = quick_rows
    for op in ("lookup", "update"):
        col = [r for r in rows if r["key_space"] == "collide" and r["operation"] == op]
        spr = [r for r in rows if r["key_space"] == "spread" and r["operation"] == op]
        assert len(col) == len(spr) == 1
        col, spr = col[0], spr[0]
        for r in (col, spr):
            assert r["status"] == "ok", r["reason"]
            assert r["flags"] & 0x40 and r["map_type"] == "hash" and r["nkeys"] == 64 and r["contention"] == "1cpu"
        assert col["max_entries"] == spr["max_entries"]
        assert col["buckets_used"] == 1 and spr["buckets_used"] == 64


COLLISION_KEYS = 256  # one chain of 256 against 256 chains of 1: the walk dominates, so the margin is large


@pytest.mark.parametrize("op", ["update", "lookup"])
def test_collide_is_far_slower_than_spread(op):
    """What the chain walk guarantees, with room: the median trial with 256 keys in one bucket above
    twice the median trial with the keys one per bucket (same map, 256 buckets). Measured 12 times on a loaded
    2-core host (load 3.5): worst ratio 3.08 for update (~328 vs ~104 ns), 3.85 for lookup (~155 vs
    ~38 ns). With the quick playbook's 64 keys the same host gave 1.31 and 1.39: too close to any bound."""
    params = {"types": ["hash"], "operations": [op], "contention": False, "sparse": False, "occupancy_levels": [],
              "contention_keys": [], "collision_keys": [COLLISION_KEYS], "collision_max_entries": COLLISION_KEYS,
              "user": False, "memory": False, "talk_example": False, "ops": 65536, "trials": 5}
    out = subprocess.run([sys.executable, "-m", "lab.agent", "--suite", "maps", "--bpf-dir", str(Paths().build / "bpf"),
                          "--params", json.dumps(params)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    rows = {r["key_space"]: r for r in map(json.loads, (ln for ln in out.stdout.splitlines() if ln.startswith("{")))
            if r.get("key_space") in ("collide", "spread") and r.get("status") == "ok"}
    col, spr = rows["collide"]["samples"], rows["spread"]["samples"]
    # medians of the 5 trials: one trial preempted on a busy host (spread lookup 385.6 ns among
    # 102.8-107.0 in a fresh-clone CI run) must not decide; collide was 341.7-354.4 there (3.3x)
    assert statistics.median(col) > 2 * statistics.median(spr), (op, col, spr)


def test_leaves_no_cgroup_behind(quick_rows):
    _, before, after = quick_rows
    assert set(after) <= set(before)  # another run's cgroup may vanish meanwhile; none of ours may stay


def test_refused_configuration_is_unsupported_with_reason():
    build = Paths().build / "bpf"
    params = {"types": ["lru_hash:1"], "operations": ["update"], "contention": False, "sparse": False,
              "occupancy_levels": [], "contention_keys": [], "collision_keys": [], "user": False,
              "mem_max_entries": [1024], "talk_example": False,
              "ops": 1024, "trials": 1}
    out = subprocess.run([sys.executable, "-m", "lab.agent", "--suite", "maps", "--bpf-dir", str(build),
                          "--params", json.dumps(params)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    rows = [json.loads(ln) for ln in out.stdout.splitlines() if ln.startswith("{")]
    refused = [r for r in rows if r["map_type"] == "lru_hash"]
    assert refused and all(r["status"] == "unsupported" for r in refused)
    assert all("ENOTSUPP" in r["reason"] or "not supported" in r["reason"] for r in refused)


@pytest.mark.parametrize("op", ["update", "lookup", "empty"])
def test_both_in_kernel_drivers_run_every_operation(op):
    """The bounded-loop programs (kernels without bpf_loop) forced with -b, and bpf_loop, on the
    host: each does every map operation it issues and says which driver ran."""
    build = Paths().build / "bpf"
    for flag, driver in (([], "bpf_loop"), (["-b"], "bounded")):
        out = subprocess.run([str(build / "mapbench"), "kern", "-O", str(build / "maps.bpf.o"), "-t", "hash",
                              "-o", op, "-l", "4096", "-r", "4", "-T", "2"] + flag,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        rec = json.loads(out.stdout.splitlines()[0])
        assert rec["loop"] == driver
        assert rec["loops"] == (4096 if driver == "bpf_loop" else maps.BOUNDED_LOOPS)
        assert rec["events"] == rec["triggers"] == 3 * 4 * rec["loops"]


def test_memory_charged_is_drained_and_within_a_page_per_copy(quick_rows):
    """The charge per map (lab/agent/maps/charge.py): readings drained, the copies within two pages
    of each other (object-stock remainders; the first copy of a small map may carry a page more),
    the talk's map with NO_PREALLOC charged less than preallocated."""
    rows, _, _ = quick_rows
    mem = [r for r in rows if r["operation"] == "memory" and r["status"] == "ok" and r.get("mem_charged")]
    if not mem:
        pytest.skip("no memory cgroup on this host: " + str([r["reason"] for r in rows if r["key_space"] == "cgroup"]))
    for r in mem:
        assert r["mem_charged_regime"] == "memcg5.11+" and "drained" in r["mem_charged_method"], r["mem_charged_method"]
        copies = r["mem_charged_copies"]
        assert r["mem_charged_resolution"] == 4096 // len(copies)
        assert max(copies) - min(copies) <= 2 * 4096, copies
        assert min(copies) <= r["mem_charged"] <= max(copies)
    talk = {r["flags"]: r for r in mem if r["key_space"] == "talk" and r["inserted"] == 1024}
    assert talk[1]["mem_charged"] < talk[0]["mem_charged"]
