/* mapbench, mode user: the same operations from user space, one call per element or batched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <bpf/bpf.h>

#include "bench.h"
#include "mb.h"

static int user_run(const struct mb_args *a)
{
	int fd = create_map(a);
	__u32 *keys = make_keys(a, a->nkeys), n;
	size_t vsz = value_buf_size(a);
	char *vals = calloc(a->nkeys, vsz);
	__u32 *kbuf = calloc(a->nkeys, sizeof(__u32));
	double *ns = calloc(a->trials, sizeof(double));
	__u64 events = 0, triggers = 0, per_trial = 0;

	if (!vals || !ns || !kbuf)
		fail(1, "calloc", ENOMEM);
	fill(fd, keys, a->nkeys, vals);
	n = present(fd, keys, a->nkeys, vals);
	for (__u32 i = 0; i < n; i++)
		*(__u64 *)(vals + i * vsz) = keys[i];

	for (int trial = -1; trial < a->trials; trial++) {
		__u64 done = 0, elems = 0, t0 = now_ns(), dt;

		if (!a->batch) {
			for (__u64 i = 0; i < a->ops; i++) {
				__u32 *k = &keys[i % n];
				int r = a->lookup ? bpf_map_lookup_elem(fd, k, vals) : bpf_map_update_elem(fd, k, vals, BPF_ANY);

				if (r == 0)
					done++;
			}
			elems = a->ops;
		} else {
			while (elems < a->ops) {
				__u32 count = n;
				int r;

				if (!a->lookup) {
					r = bpf_map_update_batch(fd, keys, vals, &count, NULL);
					if (r && refused(errno))
						fail(2, "BPF_MAP_UPDATE_BATCH", errno);
					done += count;
					elems += n;
					if (r)
						fail(1, "BPF_MAP_UPDATE_BATCH", errno);
				} else {
					/* one pass over the whole map in batches of n elements */
					__u64 token = 0;
					void *in = NULL;

					for (;;) {
						__u64 outb = 0;
						count = n;
						r = bpf_map_lookup_batch(fd, in, &outb, kbuf, vals, &count, NULL);
						if (r && errno != ENOENT)
							fail(refused(errno) ? 2 : 1, "BPF_MAP_LOOKUP_BATCH", errno);
						done += count;
						elems += count;
						if (r)
							break;
						token = outb;
						in = &token;
					}
					if (elems == 0)
						fail(1, "BPF_MAP_LOOKUP_BATCH returned nothing", ENOENT);
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
	       a->type->name, a->flags, a->max_entries, op_name(a->lookup), a->batch, n,
	       (unsigned long long)per_trial, (unsigned long long)events, (unsigned long long)triggers,
	       (unsigned long long)live_entries(a, fd));
	print_list("ns_per_op", ns, a->trials);
	printf("}\n");
	return 0;
}

const struct mb_mode mb_user = { .name = "user", .run = user_run };
