"""Key sets whose hash bucket is known: the map suite's collision experiment.

A hash map created with BPF_F_ZERO_SEED hashes with seed 0 instead of a random one, so where a key
lands is computable here. The kernel (kernel/bpf/hashtab.c) puts a key in bucket
`htab_map_hash(key, key_size, hashrnd) & (n_buckets - 1)`, with htab_map_hash = jhash (jhash2 for
keys of a multiple of 4 bytes: the same value on a little-endian machine), hashrnd = 0 under
BPF_F_ZERO_SEED, and n_buckets = roundup_pow_of_two(max_entries). jhash is Bob Jenkins' lookup3
(include/linux/jhash.h); `jhash` below is that algorithm in pure Python (agent: standard library
only, Python 3.8+).
"""

import struct

ZERO_SEED = 0x40  # BPF_F_ZERO_SEED
JHASH_INITVAL = 0xDEADBEEF
M32 = 0xFFFFFFFF


def _rol(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


def _mix(a, b, c):
    a = (a - c) & M32; a ^= _rol(c, 4); c = (c + b) & M32  # noqa: E702
    b = (b - a) & M32; b ^= _rol(a, 6); a = (a + c) & M32  # noqa: E702
    c = (c - b) & M32; c ^= _rol(b, 8); b = (b + a) & M32  # noqa: E702
    a = (a - c) & M32; a ^= _rol(c, 16); c = (c + b) & M32  # noqa: E702
    b = (b - a) & M32; b ^= _rol(a, 19); a = (a + c) & M32  # noqa: E702
    c = (c - b) & M32; c ^= _rol(b, 4); b = (b + a) & M32  # noqa: E702
    return a, b, c


def _final(a, b, c):
    c ^= b; c = (c - _rol(b, 14)) & M32  # noqa: E702
    a ^= c; a = (a - _rol(c, 11)) & M32  # noqa: E702
    b ^= a; b = (b - _rol(a, 25)) & M32  # noqa: E702
    c ^= b; c = (c - _rol(b, 16)) & M32  # noqa: E702
    a ^= c; a = (a - _rol(c, 4)) & M32  # noqa: E702
    b ^= a; b = (b - _rol(a, 14)) & M32  # noqa: E702
    c ^= b; c = (c - _rol(b, 24)) & M32  # noqa: E702
    return c


def jhash(data, seed=0):
    """The kernel's jhash(key, length, initval) of a bytes object (lookup3's hashlittle)."""
    n = len(data)
    a = b = c = (JHASH_INITVAL + n + seed) & M32
    i = 0
    while n - i > 12:
        x, y, z = struct.unpack_from("<III", data, i)
        a, b, c = _mix((a + x) & M32, (b + y) & M32, (c + z) & M32)
        i += 12
    tail = data[i:]
    if not tail:
        return c
    tail = tail + b"\0" * (12 - len(tail))
    x, y, z = struct.unpack("<III", tail)
    return _final((a + x) & M32, (b + y) & M32, (c + z) & M32)


def jhash_u32(key, seed=0):
    """jhash of a 4-byte key (little-endian u32), inlined: the hot path of the key search."""
    a = b = c = (JHASH_INITVAL + 4 + seed) & M32
    return _final((a + key) & M32, b, c)


def n_buckets(max_entries):
    """roundup_pow_of_two(max_entries): the kernel's bucket count for a hash map."""
    return 1 << max(0, int(max_entries) - 1).bit_length()


def bucket(key, max_entries, seed=0):
    return jhash_u32(key, seed) & (n_buckets(max_entries) - 1)


def collide_keys(k, max_entries, seed=0, limit=1 << 26):
    """k distinct u32 keys that all land in one bucket (the first bucket to collect k keys when
    trying keys 0, 1, 2, ...). Expected work: about k x n_buckets hashes."""
    mask = n_buckets(max_entries) - 1
    seen = {}
    for key in range(limit):
        b = jhash_u32(key, seed) & mask
        lst = seen.setdefault(b, [])
        lst.append(key)
        if len(lst) == k:
            return lst
    raise ValueError("no %d keys in one bucket among the first %d keys" % (k, limit))


def spread_keys(k, max_entries, seed=0):
    """k distinct u32 keys, each in a bucket of its own (needs k <= n_buckets)."""
    mask = n_buckets(max_entries) - 1
    if k > mask + 1:
        raise ValueError("%d keys cannot have a bucket each among %d buckets" % (k, mask + 1))
    used, keys, key = set(), [], 0
    while len(keys) < k:
        b = jhash_u32(key, seed) & mask
        if b not in used:
            used.add(b)
            keys.append(key)
        key += 1
    return keys


def iteration_order(keys, max_entries, seed=0):
    """The order BPF_MAP_GET_NEXT_KEY returns `keys` in, after they were inserted in list order into an
    empty hash map: buckets in index order, each chain from its head (insertion puts the new element
    at the head, so within a bucket the last inserted comes first)."""
    pos = {key: i for i, key in enumerate(keys)}
    return sorted(keys, key=lambda key: (bucket(key, max_entries, seed), -pos[key]))


def placement_check(keys, order, max_entries, seed=0):
    """(status, reason): the kernel's iteration order must be the one the computed buckets predict."""
    want = iteration_order(keys, max_entries, seed)
    if list(order) == want:
        return "ok", ""
    first = next((i for i, (a, b) in enumerate(zip(order, want)) if a != b), min(len(order), len(want)))
    return "invalid", ("the kernel iterates the keys in another order than their computed buckets predict "
                       "(first difference at position %d of %d): the host's jhash does not match the kernel's "
                       "placement" % (first, len(want)))
