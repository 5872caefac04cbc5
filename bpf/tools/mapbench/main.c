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
#include "mb.h"

const struct map_type_info map_types[] = {
	{"array", BPF_MAP_TYPE_ARRAY, 0},
	{"percpu_array", BPF_MAP_TYPE_PERCPU_ARRAY, 1},
	{"hash", BPF_MAP_TYPE_HASH, 0},
	{"percpu_hash", BPF_MAP_TYPE_PERCPU_HASH, 1},
	{"lru_hash", BPF_MAP_TYPE_LRU_HASH, 0},
	{"lru_percpu_hash", BPF_MAP_TYPE_LRU_PERCPU_HASH, 1},
};


struct opts o = {
	.type_idx = 2, .max_entries = 10240, .keyspace = "dense", .nkeys = 1024,
	.key_space = 4194304, .loops = 1024, .repeat = 100, .trials = 5, .threads = 1, .ops = 100000,
};

const char *prog_names[] = {"map_update", "map_lookup", "map_empty"};
const char *bounded_names[] = {"map_update_bounded", "map_lookup_bounded", "map_empty_bounded"};
const char *op_names[] = {"update", "lookup", "empty"};
int ncpus_possible;
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

void die(int code, const char *what, int err)
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
int refused(int err)
{
	err = err < 0 ? -err : err;
	return err == EINVAL || err == ENOTSUP || err == EOPNOTSUPP || err == E2BIG || err == EPERM ||
	       err == 524 /* ENOTSUPP, kernel-internal */;
}

__u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void print_list(const char *name, const double *v, int n)
{
	printf("\"%s\": [", name);
	for (int i = 0; i < n; i++)
		printf("%s%.4f", i ? ", " : "", v[i]);
	printf("]");
}

static int type_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(map_types) / sizeof(map_types[0]); i++)
		if (!strcmp(map_types[i].name, name))
			return (int)i;
	fprintf(stderr, "unknown map type %s\n", name);
	exit(1);
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
