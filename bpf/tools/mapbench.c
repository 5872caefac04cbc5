/* mapbench: the map suite's helper. Loads maps.bpf.o with the map type/flags/max_entries asked
 * for, or creates bare maps, and measures:
 *
 *   mapbench info                       possible/online CPUs, page size, kernel struct sizes and the
 *                                       members of struct bpf_htab (BTF), whether bpf_loop exists
 *   mapbench kern -O OBJ [map opts] -o update|lookup -l LOOPS -r REPEAT -T TRIALS -j THREADS [-D] [-P N] [-b]
 *       map operations driven in the kernel: bpf_loop(LOOPS) inside a tc program run by
 *       BPF_PROG_TEST_RUN with repeat REPEAT, on 1 thread or on THREADS pinned threads at once
 *       (-j 0: one per CPU this process may run on). ns/op from the kernel's own test-run timer.
 *       Every thread walks the same NKEYS keys, or with -D (disjoint) keys of its own: thread s
 *       uses dense keys s*STRIDE .. s*STRIDE+NKEYS-1, STRIDE = NKEYS rounded up to 16 (so two
 *       threads' array values never share a cache line). -P N: before timing, insert other keys
 *       until the map holds N entries (occupancy with a fixed working set).
 *       Where the kernel lacks bpf_loop (libbpf's helper probe; before 5.17), or with -b, the
 *       *_bounded programs run instead: a plain loop of at most MB_BOUNDED_LOOPS iterations, so
 *       LOOPS is capped to it (the record's "loops"; "loop": "bpf_loop" | "bounded").
 *   mapbench user [map opts] -o update|lookup -N OPS -T TRIALS [-B]
 *       the same operations from user space: one bpf(2) call per element, or batches (-B)
 *   mapbench mem [map opts] -F N1,N2,... [-c CGROUP_DIR -g v1|v2]
 *       memlock from /proc/self/fdinfo after creation and after filling to each Ni entries,
 *       live entries counted by iteration, and memory-cgroup usage around it all
 *
 *   map opts: -t TYPE -f FLAGS -m MAX_ENTRIES -k dense|sparse|hashed|list -n NKEYS -K KEY_SPACE
 *             -L K1,K2,... (the keys of -k list, in insertion order). With -k list, `kern` also
 *             prints "order": the keys in the kernel's iteration order (BPF_MAP_GET_NEXT_KEY walks
 *             the buckets in index order, each chain from its head), which shows where they landed.
 *
 * Output: JSON objects, one per line, on stdout. A kernel refusal (map type, flag, batch op,
 * load) prints "unsupported: <op>: <kernel/libbpf error>" on stderr and exits 2; other
 * failures exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "mapbench.h"

#define VALUE_SIZE 8
#define KEY_SIZE 4
#define MAX_THREADS 256

static const struct {
	const char *name;
	enum bpf_map_type type;
	int percpu;
} map_types[] = {
	{"array", BPF_MAP_TYPE_ARRAY, 0},
	{"percpu_array", BPF_MAP_TYPE_PERCPU_ARRAY, 1},
	{"hash", BPF_MAP_TYPE_HASH, 0},
	{"percpu_hash", BPF_MAP_TYPE_PERCPU_HASH, 1},
	{"lru_hash", BPF_MAP_TYPE_LRU_HASH, 0},
	{"lru_percpu_hash", BPF_MAP_TYPE_LRU_PERCPU_HASH, 1},
};

struct opts {
	const char *mode;
	const char *obj;
	int type_idx;
	__u32 flags;
	__u32 max_entries;
	const char *keyspace;
	__u32 nkeys;
	__u64 key_space; /* keys are drawn from [0, key_space) for "sparse" */
	int lookup;      /* op: 0 update, 1 lookup, 2 empty (kern only: the loop without the map call) */
	__u32 loops;
	__u32 repeat;
	int trials;
	int threads;
	__u64 ops;
	int batch;
	const char *fills;
	const char *cgroup;
	const char *cgkind;
	const char *keylist; /* -L: explicit keys for -k list */
	int disjoint;        /* -D: each thread its own keys */
	__u32 prefill;       /* -P: fill the map to this many entries with other keys */
	int bounded;         /* -b: the bounded-loop programs even where bpf_loop exists */
};

static struct opts o = {
	.type_idx = 2, .max_entries = 10240, .keyspace = "dense", .nkeys = 1024,
	.key_space = 4194304, .loops = 1024, .repeat = 100, .trials = 5, .threads = 1, .ops = 100000,
};

static const char *prog_names[] = {"map_update", "map_lookup", "map_empty"};
static const char *bounded_names[] = {"map_update_bounded", "map_lookup_bounded", "map_empty_bounded"};
static const char *op_names[] = {"update", "lookup", "empty"};
static int ncpus_possible;
static char libbpf_err[16384];

/* keep the tail of libbpf's messages: the verifier's/kernel's reason comes last */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[4096];
	size_t len = strlen(libbpf_err), n;

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	if (len + n >= sizeof(libbpf_err)) {
		size_t drop = len + n - sizeof(libbpf_err) + 1;

		if (drop > len)
			drop = len;
		memmove(libbpf_err, libbpf_err + drop, len - drop + 1);
		len -= drop;
	}
	memcpy(libbpf_err + len, line, n + 1 <= sizeof(libbpf_err) - len ? n + 1 : sizeof(libbpf_err) - len);
	libbpf_err[sizeof(libbpf_err) - 1] = 0;
	return 0;
}

static void die(int code, const char *what, int err)
{
	char *last = libbpf_err;
	size_t n = strlen(libbpf_err);

	/* keep the tail of libbpf's log: the verifier's/kernel's reason is at the end */
	if (n > 1500)
		last = libbpf_err + n - 1500;
	err = err > 0 ? err : -err;
	fprintf(stderr, "%s%s: %s%s%s\n", code == 2 ? "unsupported: " : "", what,
		err == 524 ? "ENOTSUPP (524: not supported for this map type/flags)" : strerror(err),
		*last ? "\n" : "", last);
	exit(code);
}

/* a refusal by the kernel of a feature (not a bug of ours) */
static int refused(int err)
{
	err = err < 0 ? -err : err;
	return err == EINVAL || err == ENOTSUP || err == EOPNOTSUPP || err == E2BIG || err == EPERM ||
	       err == 524 /* ENOTSUPP, kernel-internal */;
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int type_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(map_types) / sizeof(map_types[0]); i++)
		if (!strcmp(map_types[i].name, name))
			return (int)i;
	fprintf(stderr, "unknown map type %s\n", name);
	exit(1);
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
static __u32 *make_keys(__u32 n)
{
	__u32 *keys = calloc(n ? n : 1, sizeof(*keys));
	__u64 mult = 2654435761ull;

	if (!keys)
		die(1, "calloc", ENOMEM);
	if (!strcmp(o.keyspace, "dense")) {
		for (__u32 i = 0; i < n; i++)
			keys[i] = i;
	} else if (!strcmp(o.keyspace, "sparse")) {
		__u64 m = o.key_space - 1; /* keys 1..key_space-1, like PIDs */

		if (n > m)
			die(1, "sparse key space smaller than the key count", EINVAL);
		while (gcd(mult % m, m) != 1)
			mult++;
		for (__u32 i = 0; i < n; i++)
			keys[i] = 1 + (__u32)(((__u64)i * mult + 12345) % m);
	} else if (!strcmp(o.keyspace, "hashed")) {
		for (__u32 i = 0; i < n; i++)
			keys[i] = (__u32)(i * 2654435761u + 0x9e3779b9u);
	} else if (!strcmp(o.keyspace, "list")) {
		const char *p = o.keylist ? o.keylist : "";
		__u32 i = 0;

		while (*p && i < n) {
			char *end;

			keys[i++] = (__u32)strtoul(p, &end, 0);
			p = *end == ',' ? end + 1 : end;
			if (end == p && *p)
				die(1, "bad key list (-L)", EINVAL);
		}
		if (i != n)
			die(1, "key list (-L) shorter than -n", EINVAL);
	} else {
		die(1, "unknown key space (dense|sparse|hashed|list)", EINVAL);
	}
	return keys;
}

static size_t value_buf_size(void)
{
	return map_types[o.type_idx].percpu ? (size_t)ncpus_possible * VALUE_SIZE : VALUE_SIZE;
}

static int create_map(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = o.flags);
	int fd = bpf_map_create(map_types[o.type_idx].type, "bench_map", KEY_SIZE, VALUE_SIZE,
				o.max_entries, &mo);

	if (fd < 0)
		die(refused(errno) ? 2 : 1, "map create", errno);
	return fd;
}

/* insert keys[0..n) from user space; returns how many updates succeeded */
static __u32 fill(int fd, const __u32 *keys, __u32 n, void *val)
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
static __u32 present(int fd, __u32 *keys, __u32 n, void *val)
{
	__u32 m = 0;

	for (__u32 i = 0; i < n; i++)
		if (bpf_map_lookup_elem(fd, &keys[i], val) == 0)
			keys[m++] = keys[i];
	return m;
}

static __u64 live_entries(int fd)
{
	__u32 key, next;
	__u64 n = 0;
	void *prev = NULL;

	/* every index of an array exists: no need to walk millions of them with syscalls */
	if (map_types[o.type_idx].type == BPF_MAP_TYPE_ARRAY || map_types[o.type_idx].type == BPF_MAP_TYPE_PERCPU_ARRAY)
		return o.max_entries;
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

static long long fdinfo_field(int fd, const char *field)
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

static long long read_ll(const char *dir, const char *name)
{
	char path[512], buf[64];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (slurp(path, buf, sizeof(buf)) < 0)
		return -1;
	return strtoll(buf, NULL, 10);
}

/* ---------------------------------------------------------------- info */

static int btf_size(const struct btf *btf, const char *name)
{
	int id = btf ? btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT) : -1;

	return id > 0 ? (int)btf__resolve_size(btf, id) : -1;
}

/* whether the kernel has the bpf_loop helper (5.17+): 1 yes, 0 no, -1 cannot tell */
static int has_bpf_loop(void)
{
	int r = libbpf_probe_bpf_helper(BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_loop, NULL);

	return r > 0 ? 1 : r == 0 ? 0 : -1;
}

/* the member names of struct NAME in the kernel's BTF, as a JSON list (null without BTF) */
static void print_members(const struct btf *btf, const char *name)
{
	int id = btf ? btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT) : -1;
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	const struct btf_member *m;

	if (!t) {
		printf("null");
		return;
	}
	m = btf_members(t);
	printf("[");
	for (int i = 0; i < btf_vlen(t); i++, m++)
		printf("%s\"%s\"", i ? ", " : "", btf__name_by_offset(btf, m->name_off));
	printf("]");
}

static int cmd_info(void)
{
	static const char *structs[] = {"bpf_htab", "bucket", "htab_elem", "bpf_array", "llist_node", "bpf_map"};
	struct btf *btf = btf__load_vmlinux_btf();
	long pid_max = -1;
	char buf[32];
	int f = open("/proc/sys/kernel/pid_max", O_RDONLY);

	if (f >= 0) {
		ssize_t n = read(f, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = 0;
			pid_max = strtol(buf, NULL, 10);
		}
		close(f);
	}
	if (libbpf_get_error(btf))
		btf = NULL;
	printf("{\"possible_cpus\": %d, \"online_cpus\": %ld, \"page_size\": %ld, \"pid_max\": %ld, "
	       "\"btf\": %s, \"sizes\": {", ncpus_possible, sysconf(_SC_NPROCESSORS_ONLN), sysconf(_SC_PAGESIZE),
	       pid_max, btf ? "true" : "false");
	for (size_t i = 0; i < sizeof(structs) / sizeof(structs[0]); i++)
		printf("%s\"%s\": %d", i ? ", " : "", structs[i], btf_size(btf, structs[i]));
	printf("}, \"members\": {\"bpf_htab\": ");
	print_members(btf, "bpf_htab");
	printf("}, \"bpf_loop\": %d}\n", has_bpf_loop());
	btf__free(btf);
	return 0;
}

/* ---------------------------------------------------------------- kern */

struct worker {
	pthread_t tid;
	int cpu;
	int prog_fd;
	pthread_barrier_t *barrier;
	int err;
	__u32 duration; /* kernel: average ns per program run */
	__u64 wall_ns;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char pkt[64] = {0};
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = pkt, .data_size_in = sizeof(pkt), .repeat = o.repeat);
	__u64 t0;

	if (w->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	pthread_barrier_wait(w->barrier);
	t0 = now_ns();
	w->err = bpf_prog_test_run_opts(w->prog_fd, &t) ? -errno : 0;
	w->wall_ns = now_ns() - t0;
	w->duration = t.duration;
	return NULL;
}

static void print_list(const char *name, const double *v, int n)
{
	printf("\"%s\": [", name);
	for (int i = 0; i < n; i++)
		printf("%s%.4f", i ? ", " : "", v[i]);
	printf("]");
}

/* The first n keys in the kernel's iteration order: for a hash map, bucket by bucket in index
 * order, each bucket's chain from its head (the most recently inserted element first). */
static void print_order(int fd, __u32 n)
{
	__u32 key, next;
	void *prev = NULL;

	printf("{\"mode\": \"order\", \"order\": [");
	for (__u32 i = 0; i < n && bpf_map_get_next_key(fd, prev, &next) == 0; i++) {
		printf("%s%u", i ? ", " : "", next);
		key = next;
		prev = &key;
	}
	printf("]}\n");
}

static int cmd_kern(void)
{
	struct bpf_object *obj;
	struct bpf_map *map, *bss = NULL;
	struct bpf_program *prog;
	struct mb_state *st = calloc(1, sizeof(*st));
	struct worker w[MAX_THREADS];
	int cpus[MAX_THREADS], nthreads = 0, prog_fd, map_fd, err;
	double *ns = calloc(o.trials, sizeof(double)), *wall = calloc(o.trials, sizeof(double));
	double *agg = calloc(o.trials, sizeof(double));
	__u32 *keys, nkeys, zero = 0;
	void *val = calloc(1, value_buf_size());
	pthread_barrier_t barrier;
	cpu_set_t set;

	__u32 stride = 0, total, filler = 0;
	int bounded = o.bounded || has_bpf_loop() == 0;
	const char *pname = (bounded ? bounded_names : prog_names)[o.lookup];

	if (!st || !ns || !wall || !agg || !val)
		die(1, "calloc", ENOMEM);
	if (o.nkeys > MB_MAX_KEYS || o.nkeys == 0)
		die(1, "key count out of range", E2BIG);
	if (bounded && o.loops > MB_BOUNDED_LOOPS)
		o.loops = MB_BOUNDED_LOOPS; /* the bounded program stops there: count what it does */

	/* CPUs: -j 1 runs on the current CPU unpinned; -j N / -j 0 pins one thread per allowed CPU */
	sched_getaffinity(0, sizeof(set), &set);
	for (int c = 0; c < CPU_SETSIZE && nthreads < MAX_THREADS; c++)
		if (CPU_ISSET(c, &set))
			cpus[nthreads++] = c;
	if (o.threads > 0 && o.threads < nthreads)
		nthreads = o.threads;
	if (nthreads == 1 && o.threads == 1)
		cpus[0] = -1;

	obj = bpf_object__open_file(o.obj, NULL);
	if (libbpf_get_error(obj))
		die(1, "open object", (int)libbpf_get_error(obj));
	map = bpf_object__find_map_by_name(obj, "bench_map");
	bpf_object__for_each_map(bss, obj)
		if (strstr(bpf_map__name(bss), ".bss"))
			break;
	if (!map || !bss)
		die(1, "bench_map or .bss not in object", ENOENT);
	bpf_map__set_type(map, map_types[o.type_idx].type);
	bpf_map__set_map_flags(map, o.flags);
	bpf_map__set_max_entries(map, o.max_entries);
	bpf_object__for_each_program(prog, obj)
		bpf_program__set_autoload(prog, !strcmp(bpf_program__name(prog), pname));
	err = bpf_object__load(obj);
	if (err)
		die(refused(err) ? 2 : 1, "load", err);
	prog = bpf_object__find_program_by_name(obj, pname);
	prog_fd = bpf_program__fd(prog);
	map_fd = bpf_map__fd(map);

	/* the keys, present in the map before the first timed operation (so every update replaces
	 * an element and every lookup finds one) */
	if (o.disjoint) { /* thread s: dense keys s*stride .. s*stride+nkeys-1 */
		stride = (o.nkeys + 15) / 16 * 16;
		if ((__u64)stride * nthreads > MB_MAX_KEYS)
			die(1, "disjoint keys: threads x stride over the key table", E2BIG);
		total = stride * nthreads;
		keys = calloc(total, sizeof(*keys));
		if (!keys)
			die(1, "calloc", ENOMEM);
		for (int t = 0; t < nthreads; t++) {
			for (__u32 j = 0; j < o.nkeys; j++) {
				keys[t * stride + j] = t * stride + j;
				*(__u64 *)val = keys[t * stride + j];
				if (bpf_map_update_elem(map_fd, &keys[t * stride + j], val, BPF_ANY))
					die(refused(errno) ? 2 : 1, "insert a disjoint key (max_entries too small?)", errno);
			}
			if (cpus[t] >= 0 && cpus[t] < MB_MAX_CPUS)
				st->slot[cpus[t]] = t;
		}
		nkeys = o.nkeys;
	} else {
		keys = make_keys(o.nkeys);
		fill(map_fd, keys, o.nkeys, val);
		if (!strcmp(o.keyspace, "list")) { /* exactly these keys, or the row means nothing */
			nkeys = present(map_fd, keys, o.nkeys, val);
			if (nkeys != o.nkeys)
				die(1, "a listed key could not be inserted", ENOSPC);
		} else {
			nkeys = present(map_fd, keys, o.nkeys, val);
		}
		total = nkeys;
	}
	if (nkeys == 0)
		die(1, "no key could be inserted", ENOSPC);
	/* occupancy: other keys (NOEXIST: never one of the working set) until the map holds prefill */
	for (__u32 i = 0; o.prefill > nkeys && filler < o.prefill - nkeys && i < 4 * o.prefill; i++) {
		__u32 k = (__u32)(i * 2654435761u + 0x9e3779b9u);

		*(__u64 *)val = k;
		if (bpf_map_update_elem(map_fd, &k, val, BPF_NOEXIST) == 0)
			filler++;
	}
	if (filler) { /* an LRU map may have evicted working-set keys for filler: put them back */
		fill(map_fd, keys, nkeys, val);
		if (present(map_fd, keys, nkeys, val) != nkeys)
			die(1, "the working set did not stay in the filled map", ENOSPC);
	}
	st->nkeys = nkeys;
	st->loops = o.loops;
	st->stride = stride;
	memcpy(st->keys, keys, total * sizeof(*keys));
	if (bpf_map_update_elem(bpf_map__fd(bss), &zero, st, 0))
		die(1, "write .bss", errno);
	if (!strcmp(o.keyspace, "list") && nkeys <= 4096) /* where the keys landed, before any update */
		print_order(map_fd, nkeys);

	/* one untimed warm-up run per thread */
	pthread_barrier_init(&barrier, NULL, nthreads);
	for (int trial = -1; trial < o.trials; trial++) {
		__u64 tmax = 0;
		double sum = 0;

		for (int i = 0; i < nthreads; i++) {
			w[i] = (struct worker){.cpu = cpus[i], .prog_fd = prog_fd, .barrier = &barrier};
			pthread_create(&w[i].tid, NULL, worker_main, &w[i]);
		}
		for (int i = 0; i < nthreads; i++) {
			pthread_join(w[i].tid, NULL);
			if (w[i].err)
				die(refused(w[i].err) ? 2 : 1, "BPF_PROG_TEST_RUN", w[i].err);
			sum += (double)w[i].duration / o.loops;
			if (w[i].wall_ns > tmax)
				tmax = w[i].wall_ns;
		}
		if (trial < 0)
			continue;
		ns[trial] = sum / nthreads; /* mean ns per operation seen by each thread */
		wall[trial] = (double)tmax / ((double)o.repeat * o.loops);
		agg[trial] = (double)tmax / ((double)o.repeat * o.loops * nthreads);
	}
	if (bpf_map_lookup_elem(bpf_map__fd(bss), &zero, st))
		die(1, "read .bss", errno);

	printf("{\"mode\": \"kern\", \"map_type\": \"%s\", \"flags\": %u, \"max_entries\": %u, \"op\": \"%s\", "
	       "\"nkeys\": %u, \"threads\": %d, \"loops\": %u, \"repeat\": %u, \"ops_per_trial\": %llu, "
	       "\"events\": %llu, \"triggers\": %llu, \"live_entries\": %llu, \"key_min\": %u, \"key_max\": %u, "
	       "\"disjoint\": %d, \"stride\": %u, \"filler\": %u, \"loop\": \"%s\", ",
	       map_types[o.type_idx].name, o.flags, o.max_entries, op_names[o.lookup], nkeys,
	       nthreads, o.loops, o.repeat, (unsigned long long)o.repeat * o.loops,
	       (unsigned long long)st->done,
	       (unsigned long long)(o.trials + 1) * nthreads * o.repeat * o.loops,
	       (unsigned long long)live_entries(map_fd), keys[0], keys[o.disjoint ? total - stride + nkeys - 1 : nkeys - 1],
	       o.disjoint, stride, filler, bounded ? "bounded" : "bpf_loop");
	print_list("ns_per_op", ns, o.trials);
	printf(", ");
	print_list("wall_ns_per_op", wall, o.trials);
	printf(", ");
	print_list("agg_ns_per_op", agg, o.trials);
	printf("}\n");
	bpf_object__close(obj);
	return 0;
}

/* ---------------------------------------------------------------- user */

static int cmd_user(void)
{
	int fd = create_map();
	__u32 *keys = make_keys(o.nkeys), n;
	size_t vsz = value_buf_size();
	char *vals = calloc(o.nkeys, vsz);
	__u32 *kbuf = calloc(o.nkeys, sizeof(__u32));
	double *ns = calloc(o.trials, sizeof(double));
	__u64 events = 0, triggers = 0, per_trial = 0;

	if (!vals || !ns || !kbuf)
		die(1, "calloc", ENOMEM);
	fill(fd, keys, o.nkeys, vals);
	n = present(fd, keys, o.nkeys, vals);
	for (__u32 i = 0; i < n; i++)
		*(__u64 *)(vals + i * vsz) = keys[i];

	for (int trial = -1; trial < o.trials; trial++) {
		__u64 done = 0, elems = 0, t0 = now_ns(), dt;

		if (!o.batch) {
			for (__u64 i = 0; i < o.ops; i++) {
				__u32 *k = &keys[i % n];
				int r = o.lookup ? bpf_map_lookup_elem(fd, k, vals) : bpf_map_update_elem(fd, k, vals, BPF_ANY);

				if (r == 0)
					done++;
			}
			elems = o.ops;
		} else {
			while (elems < o.ops) {
				__u32 count = n;
				int r;

				if (!o.lookup) {
					r = bpf_map_update_batch(fd, keys, vals, &count, NULL);
					if (r && refused(errno))
						die(2, "BPF_MAP_UPDATE_BATCH", errno);
					done += count;
					elems += n;
					if (r)
						die(1, "BPF_MAP_UPDATE_BATCH", errno);
				} else {
					/* one pass over the whole map in batches of n elements */
					__u64 token = 0;
					void *in = NULL;

					for (;;) {
						__u64 outb = 0;
						count = n;
						r = bpf_map_lookup_batch(fd, in, &outb, kbuf, vals, &count, NULL);
						if (r && errno != ENOENT)
							die(refused(errno) ? 2 : 1, "BPF_MAP_LOOKUP_BATCH", errno);
						done += count;
						elems += count;
						if (r)
							break;
						token = outb;
						in = &token;
					}
					if (elems == 0)
						die(1, "BPF_MAP_LOOKUP_BATCH returned nothing", ENOENT);
				}
			}
		}
		dt = now_ns() - t0;
		if (trial < 0)
			continue;
		ns[trial] = (double)dt / elems;
		events += done;
		triggers += elems;
		per_trial = elems;
	}
	printf("{\"mode\": \"user\", \"map_type\": \"%s\", \"flags\": %u, \"max_entries\": %u, \"op\": \"%s\", "
	       "\"batch\": %d, \"nkeys\": %u, \"ops_per_trial\": %llu, \"events\": %llu, \"triggers\": %llu, "
	       "\"live_entries\": %llu, ",
	       map_types[o.type_idx].name, o.flags, o.max_entries, op_names[o.lookup], o.batch, n,
	       (unsigned long long)per_trial, (unsigned long long)events, (unsigned long long)triggers,
	       (unsigned long long)live_entries(fd));
	print_list("ns_per_op", ns, o.trials);
	printf("}\n");
	return 0;
}

/* ---------------------------------------------------------------- mem */

static void join_cgroup(void)
{
	char path[512], pid[32];
	int f, len;

	snprintf(path, sizeof(path), "%s/cgroup.procs", o.cgroup);
	f = open(path, O_WRONLY);
	if (f < 0)
		die(1, "open cgroup.procs", errno);
	len = snprintf(pid, sizeof(pid), "%d\n", getpid());
	if (write(f, pid, len) != len)
		die(1, "join cgroup", errno);
	close(f);
}

static long long cg_current(void)
{
	if (!o.cgroup)
		return -1;
	return read_ll(o.cgroup, !strcmp(o.cgkind, "v1") ? "memory.usage_in_bytes" : "memory.current");
}

static long long cg_peak(void)
{
	if (!o.cgroup)
		return -1;
	return read_ll(o.cgroup, !strcmp(o.cgkind, "v1") ? "memory.max_usage_in_bytes" : "memory.peak");
}

static int cmd_mem(void)
{
	__u32 stages[16], nstages = 0, maxfill = 0, done = 0;
	__u32 *keys;
	char *vals, *s, *tok;
	long long before, created;
	struct {
		long long memlock, cg;
		__u64 live;
		__u32 fill, inserted;
	} res[16];
	int fd;

	s = strdup(o.fills ? o.fills : "0");
	for (tok = strtok(s, ","); tok && nstages < 16; tok = strtok(NULL, ",")) {
		stages[nstages] = strtoul(tok, NULL, 10);
		if (stages[nstages] > maxfill)
			maxfill = stages[nstages];
		nstages++;
	}
	/* every buffer allocated and touched before the first cgroup reading */
	keys = make_keys(maxfill);
	vals = calloc(1, value_buf_size());
	if (!vals)
		die(1, "calloc", ENOMEM);
	memset(vals, 1, value_buf_size());
	if (o.cgroup)
		join_cgroup();

	before = cg_current();
	fd = create_map();
	created = cg_current();
	for (__u32 i = 0; i < nstages; i++) {
		__u32 want = stages[i];

		res[i].inserted = 0;

		for (; done < want; done++) {
			*(__u64 *)vals = keys[done];
			if (bpf_map_update_elem(fd, &keys[done], vals, BPF_NOEXIST) == 0)
				res[i].inserted++;
		}
		res[i].fill = want;
		res[i].memlock = fdinfo_field(fd, "memlock:");
		res[i].cg = cg_current();
		res[i].live = live_entries(fd); /* after the readings: iterating allocates nothing anyway */
	}
	printf("{\"mode\": \"mem\", \"map_type\": \"%s\", \"flags\": %u, \"max_entries\": %u, \"key_size\": %d, "
	       "\"value_size\": %d, \"cg_before\": %lld, \"cg_created\": %lld, \"cg_peak\": %lld, "
	       "\"live_final\": %llu, \"stages\": [",
	       map_types[o.type_idx].name, o.flags, o.max_entries, KEY_SIZE, VALUE_SIZE, before, created, cg_peak(),
	       (unsigned long long)live_entries(fd));
	for (__u32 i = 0; i < nstages; i++)
		printf("%s{\"fill\": %u, \"inserted\": %u, \"live\": %llu, \"memlock\": %lld, \"cg\": %lld}",
		       i ? ", " : "", res[i].fill, res[i].inserted, (unsigned long long)res[i].live, res[i].memlock,
		       res[i].cg);
	printf("]}\n");
	return 0;
}

int main(int argc, char **argv)
{
	int c;

	if (argc < 2) {
		fprintf(stderr, "usage: mapbench info|kern|user|mem [options] (see the source's header)\n");
		return 1;
	}
	o.mode = argv[1];
	optind = 2;
	while ((c = getopt(argc, argv, "O:t:f:m:k:n:K:o:l:r:T:j:N:BF:c:g:L:DP:b")) != -1) {
		switch (c) {
		case 'O': o.obj = optarg; break;
		case 't': o.type_idx = type_by_name(optarg); break;
		case 'f': o.flags = strtoul(optarg, NULL, 0); break;
		case 'm': o.max_entries = strtoul(optarg, NULL, 0); break;
		case 'k': o.keyspace = optarg; break;
		case 'n': o.nkeys = strtoul(optarg, NULL, 0); break;
		case 'K': o.key_space = strtoull(optarg, NULL, 0); break;
		case 'o': o.lookup = !strcmp(optarg, "lookup") ? 1 : !strcmp(optarg, "empty") ? 2 : 0; break;
		case 'l': o.loops = strtoul(optarg, NULL, 0); break;
		case 'r': o.repeat = strtoul(optarg, NULL, 0); break;
		case 'T': o.trials = atoi(optarg); break;
		case 'j': o.threads = atoi(optarg); break;
		case 'N': o.ops = strtoull(optarg, NULL, 0); break;
		case 'B': o.batch = 1; break;
		case 'F': o.fills = optarg; break;
		case 'c': o.cgroup = optarg; break;
		case 'g': o.cgkind = optarg; break;
		case 'L': o.keylist = optarg; break;
		case 'D': o.disjoint = 1; break;
		case 'P': o.prefill = strtoul(optarg, NULL, 0); break;
		case 'b': o.bounded = 1; break;
		default: return 1;
		}
	}
	if (!o.cgkind)
		o.cgkind = "v2";
	if (o.trials < 1)
		o.trials = 1;
	libbpf_set_print(libbpf_print);
	ncpus_possible = libbpf_num_possible_cpus();
	if (ncpus_possible <= 0)
		die(1, "possible CPUs", ncpus_possible);
	if (!strcmp(o.mode, "info"))
		return cmd_info();
	if (!strcmp(o.mode, "kern"))
		return cmd_kern();
	if (!strcmp(o.mode, "user"))
		return cmd_user();
	if (!strcmp(o.mode, "mem"))
		return cmd_mem();
	fprintf(stderr, "unknown mode %s\n", o.mode);
	return 1;
}
