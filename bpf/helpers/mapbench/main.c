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
 *   mapbench mem [map opts] -F N1,N2,... [-c CGROUP_DIR -g v1|v2] [-C COPIES]
 *       memlock from fdinfo after creation and after filling to each Ni entries, live entries
 *       counted by iteration, and the memory charged to the cgroup, its per-CPU stocks drained
 *       before each reading, for COPIES identical maps (mem.c says how)
 *
 *   map opts: -t TYPE -f FLAGS -m MAX_ENTRIES -k dense|sparse|hashed|list -n NKEYS -K KEY_SPACE
 *             -L K1,K2,... (the keys of -k list, in insertion order). With -k list, `kern` also
 *             prints "order": the keys in the kernel's iteration order (BPF_MAP_GET_NEXT_KEY walks
 *             the buckets in index order, each chain from its head), which shows where they landed.
 *
 * Output: JSON objects, one per line, on stdout. A kernel refusal (map type, flag, batch op,
 * load) prints "unsupported: <op>: <kernel/libbpf error>" on stderr and exits 2; other
 * failures exit 1.
 *
 * Layout: this file holds the options and the table of modes; each mode is a struct mb_mode in a
 * file of its own (info.c, kern.c, user.c, mem.c; kern reaches maps.bpf.o through its bpftool
 * skeleton); maps.c has the map types, keys and map access, report.c the output and error exit.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "mb.h"

static const struct mb_mode *modes[] = { &mb_info, &mb_kern, &mb_user, &mb_mem };

static struct mb_args args = {
	.max_entries = 10240, .keyspace = "dense", .nkeys = 1024,
	.key_space = 4194304, .loops = 1024, .repeat = 100, .trials = 5, .threads = 1, .ops = 100000, .copies = 1,
};

static const struct map_type_info *type_by_name(const char *name)
{
	const struct map_type_info *t = map_type_named(name);

	if (!t) {
		fprintf(stderr, "unknown map type %s\n", name);
		exit(1);
	}
	return t;
}

int main(int argc, char **argv)
{
	int c;

	if (argc < 2) {
		fprintf(stderr, "usage: mapbench info|kern|user|mem [options] (see the source's header)\n");
		return 1;
	}
	args.mode = argv[1];
	args.type = map_type_named("hash");
	optind = 2;
	while ((c = getopt(argc, argv, "O:t:f:m:k:n:K:o:l:r:T:j:N:BF:c:g:L:DP:bC:")) != -1) {
		switch (c) {
		case 'O': args.obj = optarg; break;
		case 't': args.type = type_by_name(optarg); break;
		case 'f': args.flags = strtoul(optarg, NULL, 0); break;
		case 'm': args.max_entries = strtoul(optarg, NULL, 0); break;
		case 'k': args.keyspace = optarg; break;
		case 'n': args.nkeys = strtoul(optarg, NULL, 0); break;
		case 'K': args.key_space = strtoull(optarg, NULL, 0); break;
		case 'o': args.lookup = !strcmp(optarg, "lookup") ? 1 : !strcmp(optarg, "empty") ? 2 : 0; break;
		case 'l': args.loops = strtoul(optarg, NULL, 0); break;
		case 'r': args.repeat = strtoul(optarg, NULL, 0); break;
		case 'T': args.trials = atoi(optarg); break;
		case 'j': args.threads = atoi(optarg); break;
		case 'N': args.ops = strtoull(optarg, NULL, 0); break;
		case 'B': args.batch = 1; break;
		case 'F': args.fills = optarg; break;
		case 'c': args.cgroup = optarg; break;
		case 'g': args.cgkind = optarg; break;
		case 'L': args.keylist = optarg; break;
		case 'D': args.disjoint = 1; break;
		case 'P': args.prefill = strtoul(optarg, NULL, 0); break;
		case 'b': args.bounded = 1; break;
		case 'C': args.copies = atoi(optarg); break;
		default: return 1;
		}
	}
	if (!args.cgkind)
		args.cgkind = "v2";
	if (args.trials < 1)
		args.trials = 1;
	capture_libbpf();
	args.ncpus_possible = libbpf_num_possible_cpus();
	if (args.ncpus_possible <= 0)
		fail(1, "possible CPUs", args.ncpus_possible);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(modes[i]->name, args.mode))
			return modes[i]->run(&args);
	fprintf(stderr, "unknown mode %s\n", args.mode);
	return 1;
}
