/* mapbench, mode mem: memlock and memory-cgroup usage as the map fills. */
#include "mb.h"

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

int cmd_mem(void)
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
