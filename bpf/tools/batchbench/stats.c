// SPDX-License-Identifier: GPL-2.0
/* batchbench: what else is running on the same hooks (other processes' programs, the kernel's BPF
 * stats switched on by someone), the bpf_stats phase, and --stats-probe. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "benchutil.h"
#include "bb.h"

/* Programs of this object's hook names (not drivers) loaded by someone else right now: another
 * batchbench, whose hooked blocks attach to the same helper / tracepoint as ours. */
int foreign_programs(void)
{
	__u32 id = 0, mine = prog ? bpf_program__fd(prog) : 0;
	struct bpf_prog_info self = {0};
	__u32 len = sizeof(self);
	int n = 0;

	if (prog)
		bpf_obj_get_info_by_fd(mine, &self, &len);
	while (!bpf_prog_get_next_id(id, &id)) {
		struct bpf_prog_info info = {0};
		struct bpf_program *p;
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue;
		len = sizeof(info);
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.id != self.id) {
			bpf_object__for_each_program(p, obj) {
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

void prog_stats(unsigned long long *time_ns, unsigned long long *cnt)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len);
	*time_ns = info.run_time_ns;
	*cnt = info.run_cnt;
}

void stats_phase(void)
{
	int sfd;

	for (int i = 0; i < opt.stats_trials; i++) {
		unsigned long long t0, c0, t1, c1;
		struct block off, on;

		off = hooked_block(runs);
		sfd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (sfd < 0) {
			printf("{\"kind\":\"stats_error\",\"reason\":\"BPF_ENABLE_STATS: %s\"}\n", strerror(errno));
			return;
		}
		prog_stats(&t0, &c0);
		on = hooked_block(runs);
		prog_stats(&t1, &c1);
		close(sfd); /* the kernel switches the stats off when the last such fd closes */
		printf("{\"kind\":\"stats\",\"prog\":\"%s\",\"trial\":%d,\"run_time_ns\":%llu,\"run_cnt\":%llu,"
		       "\"events\":%llu,\"triggers\":%ld,\"hook_cpu_ns\":%lld,\"off_cpu_ns\":%lld,\"off_events\":%llu}\n",
		       opt.prog, i, t1 - t0, c1 - c0, on.events, runs * opt.batch, on.cpu, off.cpu, off.events);
	}
}

/* --stats-probe MS: were the kernel's BPF stats on (someone's BPF_ENABLE_STATS fd or the sysctl)
 * at any time in the next MS ms? Runs driver_helper (one trigger) with BPF_PROG_TEST_RUN five times a
 * second and reports how many of those runs the stats counted: {"kind":"probe","runs":N,"stats_runs":M}.
 * For watching another benchmark (the kernel's own bench) while it runs; costs next to nothing. */
int stats_probe(void)
{
	struct bpf_program *p;
	unsigned long long t, c0, c1;
	__u32 one = 1;
	struct bpf_map *ro;
	long n = 0;

	obj = bpf_object__open_file(opt.obj, NULL);
	if (!obj)
		die(2, "open %s: %s", opt.obj, strerror(errno));
	bpf_object__for_each_program(p, obj) {
		bpf_program__set_autoload(p, !strcmp(bpf_program__name(p), "driver_helper"));
		if (!strcmp(bpf_program__name(p), "driver_helper"))
			prog = p;
	}
	if (!prog)
		die(2, "no driver_helper in %s", opt.obj);
	*(__u32 *)global_ptr(".rodata", "lab_batch", sizeof(one), &ro) = one;
	if (bpf_object__load(obj))
		die(2, "loading driver_helper from %s refused: %s", opt.obj, strerror(errno));
	prog_stats(&t, &c0);
	for (long long end = clock_of(CLOCK_MONOTONIC) + opt.probe_ms * 1000000LL; clock_of(CLOCK_MONOTONIC) < end; n++) {
		run_once(bpf_program__fd(prog));
		usleep(200000);
	}
	prog_stats(&t, &c1);
	printf("{\"kind\":\"probe\",\"runs\":%ld,\"stats_runs\":%llu}\n", n, c1 - c0);
	bpf_object__close(obj);
	return 0;
}
