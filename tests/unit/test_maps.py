"""Map suite, unit level: the memlock model against hand-computed figures for each kernel regime,
the arithmetic behind the talk's figures, and helper-record-to-row conversion (faked records)."""

import pytest
import yaml

from lab.agent.maps import memlock
from lab.agent.maps import suite as maps
from lab.analysis import talkmaps
from lab.core.config import ROOT

HOST_618 = {"bpf_htab": 832, "bucket": 16, "htab_elem": 48, "bpf_array": 312, "llist_node": 8}


def test_parse_cpu_list():
    assert memlock.parse_cpu_list("0-1\n") == 2
    assert memlock.parse_cpu_list("0-3,8,10-11") == 7
    assert memlock.parse_cpu_list("0") == 1


def test_kernel_version_and_regimes():
    assert memlock.kernel_version("6.12.117+deb12-amd64") == (6, 12)
    assert memlock.kernel_version("6.1.0-56-amd64") == (6, 1)
    assert memlock.regime((5, 10)) == "pages<5.11"
    assert memlock.regime((6, 1)) == "footprint5.11-6.3"
    assert memlock.regime((6, 3)) == "footprint5.11-6.3"
    assert memlock.regime((6, 4)) == "mem_usage6.4+"


@pytest.mark.parametrize("map_type,flags,ncpus,expected", [
    # round_up(10240 * round_up(4 + 8, 8), 4096) = 10240 * 16 = 163840, whatever the flags
    ("hash", 0, 2, 163840),
    ("hash", 1, 2, 163840),
    ("lru_hash", 0, 16, 163840),
    ("array", 0, 2, 163840),
    # per-CPU: value size round_up(8, 8) * cpus: 10240 * round_up(4 + 16, 8) = 10240 * 24
    ("percpu_hash", 0, 2, 245760),
    ("percpu_array", 0, 2, 245760),
    # 4 CPUs: 10240 * round_up(4 + 32, 8) = 10240 * 40 = 409600 (a page multiple)
    ("percpu_hash", 0, 4, 409600),
])
def test_model_6_1_footprint(map_type, flags, ncpus, expected):
    p = memlock.predict((6, 1), map_type, 4, 8, 10240, flags, ncpus, live_entries=1024)
    assert p.bytes == expected


def test_model_6_1_page_rounding():
    # 1000 entries * 16 B = 16000 -> 16384 (4 pages)
    assert memlock.predict((6, 1), "hash", 4, 8, 1000, 0, 2).bytes == 16384


# 6.4+ by hand, host 6.18 struct sizes, 2 possible CPUs, key 4 value 8, max_entries 10240:
# elem_size = 48 + 8 + 8 = 64 (per-CPU: 48 + 8 + pointer 8 = 64); buckets 16384 * 16 = 262144;
# bucket locks 4 * 2 * 8 = 64.
@pytest.mark.parametrize("map_type,flags,live,expected", [
    ("hash", 0, 0, 832 + 262144 + 64 + 64 * (10240 + 2) + 8 * 2),            # 918544
    ("hash", 1, 0, 832 + 262144 + 64),                                          # 263040
    ("hash", 1, 1024, 832 + 262144 + 64 + (64 + 8) * 1024),                    # 336768
    ("percpu_hash", 0, 0, 832 + 262144 + 64 + 64 * 10240 + 8 * 2 * 10240),     # 1082240
    ("percpu_hash", 1, 1024, 832 + 262144 + 64 + 72 * 1024 + 16 * 1024 + 16 * 1024),  # 369536
    ("lru_hash", 0, 0, 832 + 262144 + 64 + 64 * 10240),                         # 918400
    ("lru_percpu_hash", 0, 0, 832 + 262144 + 64 + 64 * 10240 + 8 * 2 * 10240),  # 1082240
    ("array", 0, 0, 312 + 8 * 10240),                                           # 82232
    ("percpu_array", 0, 0, 312 + 8 * 10240 + 8 * 10240 * 2),                    # 246072
])
def test_model_6_4_plus_mem_usage(map_type, flags, live, expected):
    p = memlock.predict((6, 18), map_type, 4, 8, 10240, flags, 2, live, HOST_618)
    assert p.bytes == expected
    assert sum(p.terms.values()) == expected


def test_model_pre_5_11_pages():
    # 5.10: buckets 262144 + 64 * 10240 + spare 64 * 2 = 917632 -> 225 pages = 921600, both flags
    for flags in (0, 1):
        assert memlock.predict((5, 10), "hash", 4, 8, 10240, flags, 2).bytes == 921600


def test_talk_figures_fit_6_12_layout_with_128_cpus():
    """931712 / 340864 = the 6.4+ model with sizeof(bpf_htab) 896 (Debian 6.12), 128 possible
    CPUs, 1024 live entries in the 0x1 map; the 5.11..6.3 model (the talk's stated 6.2) gives
    163840 for both."""
    talk = yaml.safe_load((ROOT / "lab" / "data" / "talk_maps.yaml").read_text())
    fig = talk["memlock_example"]["memlock"]
    assert memlock.predict((6, 12), "hash", 4, 8, 10240, 0, 128).bytes == fig[0] == 931712
    assert memlock.predict((6, 12), "hash", 4, 8, 10240, 1, 128, 1024).bytes == fig[1] == 340864
    assert memlock.predict((6, 2), "hash", 4, 8, 10240, 0, 16).bytes == 163840
    best = memlock.implied_setup(fig[0], fig[1])[0]
    assert (best["possible_cpus"], best["live_entries"], best["sizeof_bpf_htab"]) == (128, 1024, 896)
    lines = talkmaps.talk_comparison([], talk)
    assert any("possible CPUs 128" in ln for ln in lines)


def test_note_says_by_how_much():
    p = memlock.predict((6, 18), "hash", 4, 8, 10240, 0, 2, 0, HOST_618)
    assert memlock.note(p.bytes, p).startswith("predicted == measured")
    n = memlock.note(p.bytes + 64, p)
    assert "+64 B" in n
    p61 = memlock.predict((6, 1), "hash", 4, 8, 10240, 0, 2)
    assert "ignores buckets" in memlock.note(p61.bytes, p61, real=1 << 20)


def test_parse_type():
    assert maps.parse_type("hash:1") == ("hash", 1)
    assert maps.parse_type("lru_hash") == ("lru_hash", 0)


def kern_record(**kw):
    rec = {"mode": "kern", "map_type": "hash", "flags": 0, "max_entries": 10240, "op": "update",
           "nkeys": 1024, "threads": 2, "loops": 1024, "repeat": 10, "ops_per_trial": 10240,
           "events": 4 * 2 * 10240, "triggers": 4 * 2 * 10240, "live_entries": 1024, "key_min": 0,
           "key_max": 1023, "ns_per_op": [30.0, 31.0, 29.0], "wall_ns_per_op": [31.0, 32.0, 30.0],
           "agg_ns_per_op": [15.5, 16.0, 15.0]}
    rec.update(kw)
    return rec


def test_timed_fields_and_validity():
    rec = kern_record()
    f = maps.timed_fields(rec, "m", loop_ns=2.0)
    assert f["ns_median"] == 30.0 and f["trials"] == 3 and f["ops_per_trial"] == 10240
    assert f["map_ns"] == 28.0 and f["agg_ns_per_op"] == 15.5 and f["threads"] == 2
    assert maps.validity(rec) == ("ok", "")
    status, reason = maps.validity(kern_record(events=5))
    assert status == "invalid" and "events 5" in reason


def test_memory_fields_prediction_and_cgroup_delta():
    rec = {"mode": "mem", "map_type": "hash", "flags": 1, "max_entries": 10240, "key_size": 4, "value_size": 8,
           "cg_before": 1000, "cg_created": 263040 + 1000, "cg_peak": 500000, "live_final": 1024,
           "stages": [{"fill": 1024, "inserted": 1024, "live": 1024, "memlock": 336768, "cg": 400000}]}
    f = maps.memory_fields(rec, rec["stages"][0], (6, 18), 2, HOST_618, 4096, "v2")
    assert f["memlock_measured"] == f["memlock_predicted"] == 336768
    assert f["real_memory"] == 399000 and f["real_memory_peak"] == 499000
    assert f["memlock_note"].startswith("predicted == measured")


def test_a_negative_cgroup_delta_is_no_real_memory_figure():
    rec = {"mode": "mem", "map_type": "percpu_array", "flags": 0, "max_entries": 10240, "key_size": 4,
           "value_size": 8, "cg_before": 500000, "cg_peak": 600000, "live_final": 10240,
           "stages": [{"fill": 10240, "inserted": 10240, "live": 10240, "memlock": 246072, "cg": 344352}]}
    f = maps.memory_fields(rec, rec["stages"][0], (6, 18), 2, HOST_618, 4096, "v2")
    assert f["real_memory"] is None and f["real_memory_raw_delta"] == -155648
    assert "fell by 155648 B" in f["real_memory_note"]


def test_map_locked_term_follows_btf_then_release():
    with_member = ["map", "buckets", "map_locked", "n_buckets"]
    rqspin = ["map", "ma", "pcpu_ma", "buckets", "elems", "n_buckets"]  # 6.15+: no map_locked member
    assert memlock.htab_locks_counted((6, 12), with_member)[0]
    assert memlock.htab_locks_counted((7, 2), with_member)[0]  # the member decides where it exists
    assert memlock.htab_locks_counted((6, 18), rqspin)[0]  # stale term, still counted (host 6.18)
    assert not memlock.htab_locks_counted((7, 2), rqspin)[0]
    assert memlock.htab_locks_counted((6, 12), None)[0] and not memlock.htab_locks_counted((7, 3), None)[0]


@pytest.mark.parametrize("version,members,expected", [
    # Debian 7.2, 2 CPUs, bpf_htab 896 (measured 918544): 896 + 262144 + 64 * 10242 + 16, no map_locked
    ((7, 2), ["map", "buckets"], 918544),
    ((7, 3), None, 918544),
    # the same struct on 6.12 (map_locked present): 64 B more
    ((6, 12), ["map", "map_locked"], 918608),
])
def test_model_7x_drops_map_locked(version, members, expected):
    p = memlock.predict(version, "hash", 4, 8, 10240, 0, 2, 0, {"bpf_htab": 896}, htab_members=members)
    assert p.bytes == expected
    assert ("map_locked" in p.terms) == (expected == 918608)


def test_loop_parameter_is_checked():
    assert maps.check({"loop": "bounded"}) == [] and maps.check({"loop": "auto"}) == []
    assert any("loop must be one of" in p for p in maps.check({"loop": "unrolled"}))
