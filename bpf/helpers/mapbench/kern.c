/* mapbench, mode kern: map operations driven in the kernel by maps.bpf.o (its skeleton), on pinned
 * threads. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench.h"
#include "mb.h"
#include "mapbench.h" /* struct mb_state, before the skeleton that uses it */
#include "maps.skel.h"

struct worker {
	pthread_t tid;
	int cpu;
	int prog_fd;
	__u32 repeat;
	pthread_barrier_t *barrier;
	int err;
	__u32 duration; /* kernel: average ns per program run */
	__u64 wall_ns;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char pkt[64] = {0};
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = pkt, .data_size_in = sizeof(pkt), .repeat = w->repeat);
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

static int kern_run(const struct mb_args *a)
{
	struct maps *skel;
	struct bpf_program *prog;
	struct mb_state *st;
	struct worker w[MAX_THREADS];
	int cpus[MAX_THREADS], nthreads = 0, prog_fd, map_fd, err;
	double *ns = calloc(a->trials, sizeof(double)), *wall = calloc(a->trials, sizeof(double));
	double *agg = calloc(a->trials, sizeof(double));
	__u32 *keys, nkeys, loops = a->loops;
	void *val = calloc(1, value_buf_size(a));
	pthread_barrier_t barrier;
	cpu_set_t set;

	__u32 stride = 0, total, filler = 0;
	int bounded = a->bounded || has_bpf_loop() == 0;
	size_t sz;
	const void *elf = maps__elf_bytes(&sz);

	if (!ns || !wall || !agg || !val)
		fail(1, "calloc", ENOMEM);
	if (a->nkeys > MB_MAX_KEYS || a->nkeys == 0)
		fail(1, "key count out of range", E2BIG);
	if (bounded && loops > MB_BOUNDED_LOOPS)
		loops = MB_BOUNDED_LOOPS; /* the bounded program stops there: count what it does */

	/* CPUs: -j 1 runs on the current CPU unpinned; -j N / -j 0 pins one thread per allowed CPU */
	sched_getaffinity(0, sizeof(set), &set);
	for (int c = 0; c < CPU_SETSIZE && nthreads < MAX_THREADS; c++)
		if (CPU_ISSET(c, &set))
			cpus[nthreads++] = c;
	if (a->threads > 0 && a->threads < nthreads)
		nthreads = a->threads;
	if (nthreads == 1 && a->threads == 1)
		cpus[0] = -1;

	check_obj(a->obj, elf, sz);
	skel = maps__open();
	if (!skel)
		fail(1, "open object", errno);
	/* the driver of op: with bpf_loop, or the bounded loop (kernels before 5.17, or -b) */
	struct bpf_program *drivers[2][3] = {
		{skel->progs.map_update, skel->progs.map_lookup, skel->progs.map_empty},
		{skel->progs.map_update_bounded, skel->progs.map_lookup_bounded, skel->progs.map_empty_bounded},
	};
	struct bpf_program *p;

	prog = drivers[bounded][a->lookup];
	bpf_map__set_type(skel->maps.bench_map, a->type->type);
	bpf_map__set_map_flags(skel->maps.bench_map, a->flags);
	bpf_map__set_max_entries(skel->maps.bench_map, a->max_entries);
	bpf_object__for_each_program(p, skel->obj)
		bpf_program__set_autoload(p, p == prog);
	err = maps__load(skel);
	if (err)
		fail(refused(err) ? 2 : 1, "load", err);
	prog_fd = bpf_program__fd(prog);
	map_fd = bpf_map__fd(skel->maps.bench_map);
	st = &skel->bss->st; /* the program's state, mapped: written before the runs, read after */

	/* the keys, present in the map before the first timed operation (so every update replaces
	 * an element and every lookup finds one) */
	if (a->disjoint) { /* thread s: dense keys s*stride .. s*stride+nkeys-1 */
		stride = (a->nkeys + 15) / 16 * 16;
		if ((__u64)stride * nthreads > MB_MAX_KEYS)
			fail(1, "disjoint keys: threads x stride over the key table", E2BIG);
		total = stride * nthreads;
		keys = calloc(total, sizeof(*keys));
		if (!keys)
			fail(1, "calloc", ENOMEM);
		for (int t = 0; t < nthreads; t++) {
			for (__u32 j = 0; j < a->nkeys; j++) {
				keys[t * stride + j] = t * stride + j;
				*(__u64 *)val = keys[t * stride + j];
				if (bpf_map_update_elem(map_fd, &keys[t * stride + j], val, BPF_ANY))
					fail(refused(errno) ? 2 : 1, "insert a disjoint key (max_entries too small?)", errno);
			}
			if (cpus[t] >= 0 && cpus[t] < MB_MAX_CPUS)
				st->slot[cpus[t]] = t;
		}
		nkeys = a->nkeys;
	} else {
		keys = make_keys(a, a->nkeys);
		fill(map_fd, keys, a->nkeys, val);
		if (!strcmp(a->keyspace, "list")) { /* exactly these keys, or the row means nothing */
			nkeys = present(map_fd, keys, a->nkeys, val);
			if (nkeys != a->nkeys)
				fail(1, "a listed key could not be inserted", ENOSPC);
		} else {
			nkeys = present(map_fd, keys, a->nkeys, val);
		}
		total = nkeys;
	}
	if (nkeys == 0)
		fail(1, "no key could be inserted", ENOSPC);
	/* occupancy: other keys (NOEXIST: never one of the working set) until the map holds prefill */
	for (__u32 i = 0; a->prefill > nkeys && filler < a->prefill - nkeys && i < 4 * a->prefill; i++) {
		__u32 k = (__u32)(i * 2654435761u + 0x9e3779b9u);

		*(__u64 *)val = k;
		if (bpf_map_update_elem(map_fd, &k, val, BPF_NOEXIST) == 0)
			filler++;
	}
	if (filler) { /* an LRU map may have evicted working-set keys for filler: put them back */
		fill(map_fd, keys, nkeys, val);
		if (present(map_fd, keys, nkeys, val) != nkeys)
			fail(1, "the working set did not stay in the filled map", ENOSPC);
	}
	st->nkeys = nkeys;
	st->loops = loops;
	st->stride = stride;
	memcpy(st->keys, keys, total * sizeof(*keys));
	if (!strcmp(a->keyspace, "list") && nkeys <= 4096) /* where the keys landed, before any update */
		print_order(map_fd, nkeys);

	/* one untimed warm-up run per thread */
	pthread_barrier_init(&barrier, NULL, nthreads);
	for (int trial = -1; trial < a->trials; trial++) {
		__u64 tmax = 0;
		double sum = 0;

		for (int i = 0; i < nthreads; i++) {
			w[i] = (struct worker){.cpu = cpus[i], .prog_fd = prog_fd, .repeat = a->repeat, .barrier = &barrier};
			pthread_create(&w[i].tid, NULL, worker_main, &w[i]);
		}
		for (int i = 0; i < nthreads; i++) {
			pthread_join(w[i].tid, NULL);
			if (w[i].err)
				fail(refused(w[i].err) ? 2 : 1, "BPF_PROG_TEST_RUN", w[i].err);
			sum += (double)w[i].duration / loops;
			if (w[i].wall_ns > tmax)
				tmax = w[i].wall_ns;
		}
		if (trial < 0)
			continue;
		ns[trial] = sum / nthreads; /* mean ns per operation seen by each thread */
		wall[trial] = (double)tmax / ((double)a->repeat * loops);
		agg[trial] = (double)tmax / ((double)a->repeat * loops * nthreads);
	}

	printf("{\"mode\": \"kern\", \"map_type\": \"%s\", \"flags\": %u, \"max_entries\": %u, \"op\": \"%s\", "
	       "\"nkeys\": %u, \"threads\": %d, \"loops\": %u, \"repeat\": %u, \"ops_per_trial\": %llu, "
	       "\"events\": %llu, \"triggers\": %llu, \"live_entries\": %llu, \"key_min\": %u, \"key_max\": %u, "
	       "\"disjoint\": %d, \"stride\": %u, \"filler\": %u, \"loop\": \"%s\", ",
	       a->type->name, a->flags, a->max_entries, op_name(a->lookup), nkeys,
	       nthreads, loops, a->repeat, (unsigned long long)a->repeat * loops,
	       (unsigned long long)st->done,
	       (unsigned long long)(a->trials + 1) * nthreads * a->repeat * loops,
	       (unsigned long long)live_entries(a, map_fd), keys[0], keys[a->disjoint ? total - stride + nkeys - 1 : nkeys - 1],
	       a->disjoint, stride, filler, bounded ? "bounded" : "bpf_loop");
	print_list("ns_per_op", ns, a->trials);
	printf(", ");
	print_list("wall_ns_per_op", wall, a->trials);
	printf(", ");
	print_list("agg_ns_per_op", agg, a->trials);
	printf("}\n");
	maps__destroy(skel);
	return 0;
}

const struct mb_mode mb_kern = { .name = "kern", .run = kern_run };
