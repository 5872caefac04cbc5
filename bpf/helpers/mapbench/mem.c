/* mapbench, mode mem: memlock and memory-cgroup usage as the map fills. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "mb.h"

static void join_cgroup(const struct mb_args *a)
{
	char path[512], pid[32];
	int f, len;

	snprintf(path, sizeof(path), "%s/cgroup.procs", a->cgroup);
	f = open(path, O_WRONLY);
	if (f < 0)
		fail(1, "open cgroup.procs", errno);
	len = snprintf(pid, sizeof(pid), "%d\n", getpid());
	if (write(f, pid, len) != len)
		fail(1, "join cgroup", errno);
	close(f);
}

static long long cg_current(const struct mb_args *a)
{
	if (!a->cgroup)
		return -1;
	return read_ll(a->cgroup, !strcmp(a->cgkind, "v1") ? "memory.usage_in_bytes" : "memory.current");
}

static long long cg_peak(const struct mb_args *a)
{
	if (!a->cgroup)
		return -1;
	return read_ll(a->cgroup, !strcmp(a->cgkind, "v1") ? "memory.max_usage_in_bytes" : "memory.peak");
}

static int mem_run(const struct mb_args *a)
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

	s = strdup(a->fills ? a->fills : "0");
	for (tok = strtok(s, ","); tok && nstages < 16; tok = strtok(NULL, ",")) {
		stages[nstages] = strtoul(tok, NULL, 10);
		if (stages[nstages] > maxfill)
			maxfill = stages[nstages];
		nstages++;
	}
	/* every buffer allocated and touched before the first cgroup reading */
	keys = make_keys(a, maxfill);
	vals = calloc(1, value_buf_size(a));
	if (!vals)
		fail(1, "calloc", ENOMEM);
	memset(vals, 1, value_buf_size(a));
	if (a->cgroup)
		join_cgroup(a);

	before = cg_current(a);
	fd = create_map(a);
	created = cg_current(a);
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
		res[i].cg = cg_current(a);
		res[i].live = live_entries(a, fd); /* after the readings: iterating allocates nothing anyway */
	}
	printf("{\"mode\": \"mem\", \"map_type\": \"%s\", \"flags\": %u, \"max_entries\": %u, \"key_size\": %d, "
	       "\"value_size\": %d, \"cg_before\": %lld, \"cg_created\": %lld, \"cg_peak\": %lld, "
	       "\"live_final\": %llu, \"stages\": [",
	       a->type->name, a->flags, a->max_entries, KEY_SIZE, VALUE_SIZE, before, created, cg_peak(a),
	       (unsigned long long)live_entries(a, fd));
	for (__u32 i = 0; i < nstages; i++)
		printf("%s{\"fill\": %u, \"inserted\": %u, \"live\": %llu, \"memlock\": %lld, \"cg\": %lld}",
		       i ? ", " : "", res[i].fill, res[i].inserted, (unsigned long long)res[i].live, res[i].memlock,
		       res[i].cg);
	printf("]}\n");
	return 0;
}

const struct mb_mode mb_mem = { .name = "mem", .run = mem_run };
