/* mapbench, what every mode uses: the map types, the keys and the map accessed from user space. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "mb.h"

static const struct map_type_info map_types[] = {
	{"array", BPF_MAP_TYPE_ARRAY, 0},
	{"percpu_array", BPF_MAP_TYPE_PERCPU_ARRAY, 1},
	{"hash", BPF_MAP_TYPE_HASH, 0},
	{"percpu_hash", BPF_MAP_TYPE_PERCPU_HASH, 1},
	{"lru_hash", BPF_MAP_TYPE_LRU_HASH, 0},
	{"lru_percpu_hash", BPF_MAP_TYPE_LRU_PERCPU_HASH, 1},
};

static const char *op_names[] = {"update", "lookup", "empty"};

/* the entry of map_types[] called `name`, NULL if none */
const struct map_type_info *map_type_named(const char *name)
{
	for (size_t i = 0; i < sizeof(map_types) / sizeof(map_types[0]); i++)
		if (!strcmp(map_types[i].name, name))
			return &map_types[i];
	return NULL;
}

const char *op_name(int op)
{
	return op_names[op];
}

/* whether the kernel has the bpf_loop helper (5.17+): 1 yes, 0 no, -1 cannot tell */
int has_bpf_loop(void)
{
	int r = libbpf_probe_bpf_helper(BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_loop, NULL);

	return r > 0 ? 1 : r == 0 ? 0 : -1;
}

static __u32 gcd(__u64 a, __u64 b)
{
	while (b) {
		__u64 t = a % b;
		a = b;
		b = t;
	}
	return (__u32)a;
}

/* The keys: dense 0..n-1; sparse: n distinct PID-like keys spread over [1, key_space);
 * hashed: n distinct keys scattered over the whole u32 range (for fill sweeps). */
__u32 *make_keys(const struct mb_args *a, __u32 n)
{
	__u32 *keys = calloc(n ? n : 1, sizeof(*keys));
	__u64 mult = 2654435761ull;

	if (!keys)
		fail(1, "calloc", ENOMEM);
	if (!strcmp(a->keyspace, "dense")) {
		for (__u32 i = 0; i < n; i++)
			keys[i] = i;
	} else if (!strcmp(a->keyspace, "sparse")) {
		__u64 m = a->key_space - 1; /* keys 1..key_space-1, like PIDs */

		if (n > m)
			fail(1, "sparse key space smaller than the key count", EINVAL);
		while (gcd(mult % m, m) != 1)
			mult++;
		for (__u32 i = 0; i < n; i++)
			keys[i] = 1 + (__u32)(((__u64)i * mult + 12345) % m);
	} else if (!strcmp(a->keyspace, "hashed")) {
		for (__u32 i = 0; i < n; i++)
			keys[i] = (__u32)(i * 2654435761u + 0x9e3779b9u);
	} else if (!strcmp(a->keyspace, "list")) {
		const char *p = a->keylist ? a->keylist : "";
		__u32 i = 0;

		while (*p && i < n) {
			char *end;

			keys[i++] = (__u32)strtoul(p, &end, 0);
			p = *end == ',' ? end + 1 : end;
			if (end == p && *p)
				fail(1, "bad key list (-L)", EINVAL);
		}
		if (i != n)
			fail(1, "key list (-L) shorter than -n", EINVAL);
	} else {
		fail(1, "unknown key space (dense|sparse|hashed|list)", EINVAL);
	}
	return keys;
}

size_t value_buf_size(const struct mb_args *a)
{
	return a->type->percpu ? (size_t)a->ncpus_possible * VALUE_SIZE : VALUE_SIZE;
}

int create_map(const struct mb_args *a)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = a->flags);
	int fd = bpf_map_create(a->type->type, "bench_map", KEY_SIZE, VALUE_SIZE,
				a->max_entries, &mo);

	if (fd < 0)
		fail(refused(errno) ? 2 : 1, "map create", errno);
	return fd;
}

/* insert keys[0..n) from user space; returns how many updates succeeded */
__u32 fill(int fd, const __u32 *keys, __u32 n, void *val)
{
	__u32 ok = 0;

	for (__u32 i = 0; i < n; i++) {
		*(__u64 *)val = keys[i];
		if (bpf_map_update_elem(fd, &keys[i], val, BPF_ANY) == 0)
			ok++;
	}
	return ok;
}

/* keep only the keys present in the map (an LRU map may have evicted some while filling) */
__u32 present(int fd, __u32 *keys, __u32 n, void *val)
{
	__u32 m = 0;

	for (__u32 i = 0; i < n; i++)
		if (bpf_map_lookup_elem(fd, &keys[i], val) == 0)
			keys[m++] = keys[i];
	return m;
}

__u64 live_entries(const struct mb_args *a, int fd)
{
	__u32 key, next;
	__u64 n = 0;
	void *prev = NULL;

	/* every index of an array exists: no need to walk millions of them with syscalls */
	if (a->type->type == BPF_MAP_TYPE_ARRAY || a->type->type == BPF_MAP_TYPE_PERCPU_ARRAY)
		return a->max_entries;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		n++;
		key = next;
		prev = &key;
	}
	return n;
}

/* Read a small file into buf, NUL-terminated; -1 if it cannot be read or is empty. */
static int slurp(const char *path, char *buf, size_t size)
{
	ssize_t len;
	int f = open(path, O_RDONLY);

	if (f < 0)
		return -1;
	len = read(f, buf, size - 1);
	close(f);
	if (len <= 0)
		return -1;
	buf[len] = 0;
	return 0;
}

long long fdinfo_field(int fd, const char *field)
{
	char path[64], buf[4096];
	char *p;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (slurp(path, buf, sizeof(buf)) < 0)
		return -1;
	p = strstr(buf, field);
	if (!p)
		return -1;
	return strtoll(p + strlen(field), NULL, 10);
}

long long read_ll(const char *dir, const char *name)
{
	char path[512], buf[64];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (slurp(path, buf, sizeof(buf)) < 0)
		return -1;
	return strtoll(buf, NULL, 10);
}
