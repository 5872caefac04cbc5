"""Map suite experiments, unit level: the host-side jhash against the kernel's algorithm (lookup3, in
C as include/linux/jhash.h has it), key choice for collide/spread, the placement check, playbook
checks, and the rows the contention / collision / occupancy experiments build (faked helper)."""

import shutil
import struct
import subprocess

import pytest

from lab.agent import schema
from lab.agent.common import Context
from lab.agent.maps import experiments as mapexp
from lab.agent.maps import keys as mapkeys
from lab.agent.maps import suite as maps

# include/linux/jhash.h (the kernel's copy of Bob Jenkins' lookup3), as a tiny program: prints
# jhash(key, 4, seed) for each (key, seed) read from stdin, and jhash of a byte string.
JHASH_C = r"""
#include <stdio.h>
#include <stdint.h>
#include <string.h>
typedef uint32_t u32;
static inline u32 rol32(u32 w, unsigned s) { return (w << s) | (w >> ((-s) & 31)); }
#define __jhash_mix(a, b, c) { a -= c; a ^= rol32(c, 4); c += b; b -= a; b ^= rol32(a, 6); a += c; \
  c -= b; c ^= rol32(b, 8); b += a; a -= c; a ^= rol32(c, 16); c += b; b -= a; b ^= rol32(a, 19); a += c; \
  c -= b; c ^= rol32(b, 4); b += a; }
#define __jhash_final(a, b, c) { c ^= b; c -= rol32(b, 14); a ^= c; a -= rol32(c, 11); b ^= a; \
  b -= rol32(a, 25); c ^= b; c -= rol32(b, 16); a ^= c; a -= rol32(c, 4); b ^= a; b -= rol32(a, 14); \
  c ^= b; c -= rol32(b, 24); }
#define JHASH_INITVAL 0xdeadbeef
static u32 jhash(const void *key, u32 length, u32 initval) {
  u32 a, b, c; const uint8_t *k = key;
  a = b = c = JHASH_INITVAL + length + initval;
  while (length > 12) { u32 x[3]; memcpy(x, k, 12); a += x[0]; b += x[1]; c += x[2];
    __jhash_mix(a, b, c); length -= 12; k += 12; }
  switch (length) {
  case 12: c += (u32)k[11] << 24; case 11: c += (u32)k[10] << 16; case 10: c += (u32)k[9] << 8;
  case 9: c += k[8]; case 8: b += (u32)k[7] << 24; case 7: b += (u32)k[6] << 16; case 6: b += (u32)k[5] << 8;
  case 5: b += k[4]; case 4: a += (u32)k[3] << 24; case 3: a += (u32)k[2] << 16; case 2: a += (u32)k[1] << 8;
  case 1: a += k[0]; __jhash_final(a, b, c); case 0: break; }
  return c;
}
static u32 jhash2(const u32 *k, u32 length, u32 initval) {  /* htab_map_hash for 4-byte-multiple keys */
  u32 a, b, c; a = b = c = JHASH_INITVAL + (length << 2) + initval;
  while (length > 3) { a += k[0]; b += k[1]; c += k[2]; __jhash_mix(a, b, c); length -= 3; k += 3; }
  switch (length) { case 3: c += k[2]; case 2: b += k[1]; case 1: a += k[0]; __jhash_final(a, b, c); case 0: break; }
  return c;
}
int main(void) {
  unsigned key, seed; char s[256];
  while (scanf("%u %u", &key, &seed) == 2) {
    u32 k = key;
    printf("%u %u\n", jhash(&k, 4, seed), jhash2(&k, 1, seed));
  }
  strcpy(s, "Four score and seven years ago");
  printf("%u %u\n", jhash(s, strlen(s), 0), jhash(s, strlen(s), 1));
  return 0;
}
"""


@pytest.fixture(scope="module")
def kernel_jhash(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        pytest.fail("no C compiler: labctl installs one (clang), the jhash check needs it")
    d = tmp_path_factory.mktemp("jhash")
    (d / "jhash.c").write_text(JHASH_C)
    subprocess.run([cc, "-O1", "-w", "-o", str(d / "jhash"), str(d / "jhash.c")], check=True)
    return d / "jhash"


def test_jhash_matches_the_kernels_algorithm(kernel_jhash):
    cases = [(k, s) for k in (0, 1, 2, 255, 256, 65535, 1 << 31, 0xFFFFFFFF, 123456789) for s in (0, 1, 0xDEADBEEF)]
    cases += [(k, 0) for k in range(0, 5000, 7)]
    stdin = "".join(f"{k} {s}\n" for k, s in cases)
    out = subprocess.run([str(kernel_jhash)], input=stdin, capture_output=True, text=True, check=True).stdout
    lines = out.split("\n")
    for (k, s), line in zip(cases, lines[:len(cases)], strict=True):
        j, j2 = (int(x) for x in line.split())
        assert j == j2  # jhash and jhash2 agree for one u32 (little endian)
        assert mapkeys.jhash_u32(k, s) == j, (k, s)
        assert mapkeys.jhash(struct.pack("<I", k), s) == j, (k, s)
    # lookup3's published values (hashlittle), also what the C prints
    assert mapkeys.jhash(b"Four score and seven years ago", 0) == 0x17770551
    assert mapkeys.jhash(b"Four score and seven years ago", 1) == 0xCD628161
    assert lines[len(cases)] == f"{0x17770551} {0xCD628161}"
    assert mapkeys.jhash(b"", 0) == 0xDEADBEEF


def test_bucket_count_is_roundup_pow_of_two():
    assert [mapkeys.n_buckets(m) for m in (1, 2, 3, 1000, 1024, 1025, 10240)] == [1, 2, 4, 1024, 1024, 2048, 16384]


def test_collide_and_spread_keys():
    c = mapkeys.collide_keys(32, 1024)
    s = mapkeys.spread_keys(32, 1024)
    assert len(set(c)) == len(set(s)) == 32
    assert len({mapkeys.bucket(k, 1024) for k in c}) == 1
    assert len({mapkeys.bucket(k, 1024) for k in s}) == 32
    with pytest.raises(ValueError):
        mapkeys.spread_keys(2048, 1024)


def test_placement_check_against_iteration_order():
    keys = mapkeys.collide_keys(4, 64)
    assert mapkeys.iteration_order(keys, 64) == list(reversed(keys))  # one chain, head first
    assert mapkeys.placement_check(keys, list(reversed(keys)), 64) == ("ok", "")
    spread = mapkeys.spread_keys(8, 64)
    by_bucket = sorted(spread, key=lambda k: mapkeys.bucket(k, 64))
    assert mapkeys.placement_check(spread, by_bucket, 64) == ("ok", "")
    status, reason = mapkeys.placement_check(spread, spread[::-1], 64)
    assert status == "invalid" and "jhash" in reason


def test_playbook_checks_for_the_new_parameters():
    assert maps.check({"contention_keys": [1, 16], "collision_keys": [64], "occupancy_levels": [6, 100],
                       "occupancy_keys": 128, "contention_types": ["hash", "array"]}) == []
    problems = maps.check({"contention_keys": [0], "occupancy_levels": [101], "contention_types": ["nope"],
                           "fill_levels": [6]})
    assert len(problems) == 4 and any("fill_levels" in p for p in problems)


def test_disjoint_size_holds_every_slot():
    assert mapexp.disjoint_size(2, 1) == 32 and mapexp.disjoint_size(2, 1024) == 2048
    assert mapexp.disjoint_size(3, 17) == 96


class FakeHelper:
    """Stands in for `mapbench kern`: answers from the arguments, records the calls."""

    def __init__(self, reorder=False):
        self.calls = []
        self.reorder = reorder

    def __call__(self, helper, mode, args):
        a = [str(x) for x in args]
        opt = {a[i]: a[i + 1] for i in range(len(a) - 1) if a[i].startswith("-") and not a[i + 1].startswith("-")}
        self.calls.append(a)
        n, threads, disjoint = int(opt["-n"]), 2 if opt["-j"] == "0" else 1, "-D" in a
        ops = 1024 * 4
        rec = {"mode": "kern", "map_type": opt["-t"], "flags": int(opt["-f"], 0), "max_entries": int(opt["-m"]),
               "op": opt["-o"], "nkeys": n, "threads": threads, "ops_per_trial": ops, "events": 4 * threads * ops,
               "triggers": 4 * threads * ops, "live_entries": n, "key_min": 0, "key_max": n - 1,
               "disjoint": int(disjoint), "stride": (-(-n // 16) * 16) if disjoint else 0,
               "filler": max(0, int(opt.get("-P", 0)) - n), "ns_per_op": [10.0, 11.0, 12.0],
               "wall_ns_per_op": [10.0, 11.0, 12.0], "agg_ns_per_op": [5.0, 5.5, 6.0]}
        if "-L" in opt:
            keys = [int(x) for x in opt["-L"].split(",")]
            order = mapkeys.iteration_order(keys, int(opt["-m"]))
            rec["order"] = order[::-1] if self.reorder else order
        return rec


def suite(monkeypatch, fake, **params):
    ctx = Context("maps", "t", "host", "/nonexistent", params)
    s = maps.MapSuite(ctx)
    s.info = {"online_cpus": 2, "possible_cpus": 2, "page_size": 4096}
    monkeypatch.setattr(maps, "run_mapbench", fake)
    return s


def test_contention_rows(monkeypatch):
    fake = FakeHelper()
    s = suite(monkeypatch, fake, contention_keys=[1, 16], contention_types=["hash", "array"])
    rows = list(s.contention_rows())
    assert len(rows) == 2 * 2 * 2
    for r in rows:
        assert schema.validate(r) == [], r
        assert r["status"] == "ok" and r["operation"] == "update" and r["driver"] == "kernel"
        assert r["key_space"] == "contention" and r["contention"] in ("shared", "disjoint")
        assert r["threads"] == 2 and r["nkeys"] in (1, 16) and r["max_entries"] == 10240
        assert (r["contention"] == "disjoint") == ("key_stride" in r)
    kern = [c for c in fake.calls if "-o" in c and c[c.index("-o") + 1] == "update"]
    assert all(c[c.index("-j") + 1] == "0" for c in kern)  # one thread per CPU
    assert sum("-D" in c for c in kern) == 4


def test_collision_rows_and_a_misplaced_key_set(monkeypatch):
    rows = list(suite(monkeypatch, FakeHelper(), collision_keys=[8]).collision_rows())
    assert {(r["key_space"], r["operation"]) for r in rows} == {
        (k, o) for k in ("collide", "spread") for o in ("lookup", "update")}
    for r in rows:
        assert schema.validate(r) == [], r
        assert r["status"] == "ok" and r["flags"] == 0x40 and r["nkeys"] == 8 and r["max_entries"] == 1024
        assert r["contention"] == "1cpu" and r["driver"] == "kernel"
        assert r["buckets_used"] == (1 if r["key_space"] == "collide" else 8)
    bad = list(suite(monkeypatch, FakeHelper(reorder=True), collision_keys=[8]).collision_rows())
    assert all(r["status"] == "invalid" and "jhash" in r["reason"] for r in bad)


def test_occupancy_rows_keep_the_working_set(monkeypatch):
    fake = FakeHelper()
    rows = list(suite(monkeypatch, fake, types=["hash", "array"], occupancy_levels=[6, 50],
                      occupancy_max_entries=4096, occupancy_keys=128).occupancy_rows())
    assert [r["key_space"] for r in rows] == ["occupancy-06", "occupancy-50"]  # hash types only
    for r in rows:
        assert schema.validate(r) == [], r
        assert r["nkeys"] == 128 and r["operation"] == "lookup" and r["max_entries"] == 4096
    assert [r["fill_entries"] for r in rows] == [245, 2048]


@pytest.mark.parametrize("loop,bpf_loop,flag,loops", [("auto", 1, False, 4096), ("auto", 0, False, 256),
                                                     ("bounded", 1, True, 256)])
def test_bounded_driver_where_bpf_loop_is_missing_or_forced(monkeypatch, loop, bpf_loop, flag, loops):
    fake = FakeHelper()
    s = suite(monkeypatch, fake, loop=loop, loops=4096, ops=8192)
    s.info["bpf_loop"] = bpf_loop
    row = s.kern_row("hash", 0, "update", "dense", 16, 1024, "1cpu")
    assert row["status"] == "ok"
    kern = [c for c in fake.calls if "-o" in c]
    assert all(("-b" in c) == flag for c in kern)
    assert all(c[c.index("-l") + 1] == str(loops) for c in kern)
    assert all(c[c.index("-r") + 1] == str(8192 // loops) for c in kern)
    assert row["method"].startswith("bounded loop" if loops == maps.BOUNDED_LOOPS else "bpf_loop")
