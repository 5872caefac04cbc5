/* batchbench: what else is running on the same hooks (other processes' programs, the kernel's BPF
 * stats switched on by someone), and the bpf_stats phase. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "bench.h"
#include "batchbench.h"

/* Programs of this object's hook names (not drivers) loaded by someone else right now: another
 * batchbench, whose hooked blocks attach to the same helper / tracepoint as ours. */
int foreign_programs(const struct bb_ctx *c)
{
	__u32 id = 0, mine = c->prog ? bpf_program__fd(c->prog) : 0;
	struct bpf_prog_info self = {0};
	__u32 len = sizeof(self);
	int n = 0;

	if (c->prog)
		bpf_obj_get_info_by_fd(mine, &self, &len);
	while (!bpf_prog_get_next_id(id, &id)) {
		struct bpf_prog_info info = {0};
		struct bpf_program *p;
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue;
		len = sizeof(info);
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.id != self.id) {
			bpf_object__for_each_program(p, c->obj) {
				const char *nm = bpf_program__name(p);

				/* the kernel keeps 15 characters of a program's name */
				if (strncmp(nm, "driver_", 7) && !strncmp(info.name, nm, BPF_OBJ_NAME_LEN - 1)) {
					n++;
					break;
				}
			}
		}
		close(fd);
	}
	return n;
}

/* Per trial a hooked block with BPF stats off and one with them on (the difference per run is
 * what the stats themselves cost; run_time_ns / run_cnt includes part of it). */
void stats_phase(struct bb_ctx *c)
{
	const struct bb_args *a = c->args;
	int sfd;

	for (int i = 0; i < a->stats_trials; i++) {
		unsigned long long t0, c0, t1, c1;
		struct block off, on;

		off = hooked_block(c, c->runs);
		sfd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (sfd < 0) {
			printf("{\"kind\":\"stats_error\",\"reason\":\"BPF_ENABLE_STATS: %s\"}\n", strerror(errno));
			return;
		}
		prog_stats(c->prog, &t0, &c0);
		on = hooked_block(c, c->runs);
		prog_stats(c->prog, &t1, &c1);
		close(sfd); /* the kernel switches the stats off when the last such fd closes */
		printf("{\"kind\":\"stats\",\"prog\":\"%s\",\"trial\":%d,\"run_time_ns\":%llu,\"run_cnt\":%llu,"
		       "\"events\":%llu,\"triggers\":%ld,\"hook_cpu_ns\":%lld,\"off_cpu_ns\":%lld,\"off_events\":%llu}\n",
		       a->prog, i, t1 - t0, c1 - c0, on.events, c->runs * a->batch, on.cpu, off.cpu, off.events);
	}
}
