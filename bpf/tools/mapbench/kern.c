/* mapbench, mode kern: map operations driven in the kernel by maps.bpf.o, on pinned threads. */
#include "mb.h"

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

int cmd_kern(void)
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
