/* mapbench, mode mem: memlock and the memory the kernel charges to the memory cgroup as maps fill.
 *
 * The memory charged is read from the child cgroup's page counter (v2 memory.current, v1
 * memory.usage_in_bytes), which runs ahead of what the maps hold: each CPU keeps a stock of
 * pages charged in advance (up to a batch of 64) and a stock of bytes for kernel objects. So:
 *
 *   - every reading is taken after draining those stocks: writing memory.high = 0 (v2; then "max"
 *     again) or a 1-page memory.limit_in_bytes (v1; refused with EBUSY, then -1 again) makes the
 *     kernel drain every CPU's stock of this cgroup (drain_all_stock) before it tries to reclaim,
 *     synchronously on the CPU the writer runs on: the maps' process and the reader are pinned to
 *     that one CPU. What is left over is kernel-object bytes below one page (obj_cgroup's
 *     nr_charged_bytes), so one reading is exact to the page;
 *   - -C COPIES identical maps are made and filled, and the stage's charge is the total divided by
 *     COPIES (to page_size / COPIES), with each copy's own figure beside it; one more map made
 *     first and left out takes what a cgroup's first map charges once;
 *   - the readings (drain, memory.current, /proc/<pid>/fdinfo) are taken by a reader process that
 *     stays outside the cgroup: reading a file from inside would charge the cgroup for its dentry,
 *     inode and file. The maps' process waits on an eventfd meanwhile and allocates nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "mb.h"

#define MAX_COPIES 64
#define MAX_STAGES 16

struct shared {			/* the reader's request and answer (a shared anonymous page) */
	int quit, fd;
	long long cur, memlock, peak;
	int drained;		/* 1: the stock drain was asked and accepted as expected */
};

static struct shared *sh;
static int req_fd = -1, resp_fd = -1, reader_pid = -1;

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

static int v1(const struct mb_args *a)
{
	return !strcmp(a->cgkind, "v1");
}

static int write_str(int fd, const char *s)
{
	return pwrite(fd, s, strlen(s), 0) == (ssize_t)strlen(s) ? 0 : -errno;
}

/* the stocks of the cgroup drained: 1 if the kernel took the request as it should */
static int drain(const struct mb_args *a, int ctl)
{
	int r;

	if (ctl < 0)
		return 0;
	if (v1(a)) {	/* below usage: drained, reclaim fails, EBUSY (limit unchanged); at usage 0 it sets */
		r = write_str(ctl, "4096\n");
		write_str(ctl, "-1\n");
		return r == -EBUSY || r == 0;
	}
	r = write_str(ctl, "0\n");
	return write_str(ctl, "max\n") == 0 && r == 0;
}

static long long pread_ll(int fd)
{
	char buf[64];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtoll(buf, NULL, 10);
}

static long long fdinfo_of(int pid, int fd, const char *field)
{
	char path[64], buf[4096], *p;
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	f = open(path, O_RDONLY);
	if (f < 0)
		return -1;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strstr(buf, field);
	return p ? strtoll(p + strlen(field), NULL, 10) : -1;
}

static int open_in(const struct mb_args *a, const char *name, int flags)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", a->cgroup, name);
	return open(path, flags);
}

/* the reader: outside the cgroup, on the maps' CPU; answers one request per eventfd count */
static void reader(const struct mb_args *a, int parent)
{
	int cur = -1, peak = -1, ctl = -1;
	uint64_t one = 1, got;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (a->cgroup) {
		cur = open_in(a, v1(a) ? "memory.usage_in_bytes" : "memory.current", O_RDONLY);
		peak = open_in(a, v1(a) ? "memory.max_usage_in_bytes" : "memory.peak", O_RDONLY);
		ctl = open_in(a, v1(a) ? "memory.limit_in_bytes" : "memory.high", O_WRONLY);
	}
	while (read(req_fd, &got, sizeof(got)) == sizeof(got) && !sh->quit) {
		sh->drained = drain(a, ctl);
		sh->cur = cur >= 0 ? pread_ll(cur) : -1;
		sh->peak = peak >= 0 ? pread_ll(peak) : -1;
		sh->memlock = sh->fd >= 0 ? fdinfo_of(parent, sh->fd, "memlock:") : -1;
		if (write(resp_fd, &one, sizeof(one)) != sizeof(one))
			break;
	}
	_exit(0);
}

/* pin to the CPU this runs on, start the reader there; before any cgroup is joined */
static void start_reader(const struct mb_args *a)
{
	cpu_set_t set;
	int cpu = sched_getcpu(), parent = getpid();

	CPU_ZERO(&set);
	CPU_SET(cpu < 0 ? 0 : cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	req_fd = eventfd(0, 0);
	resp_fd = eventfd(0, 0);
	if (sh == MAP_FAILED || req_fd < 0 || resp_fd < 0)
		fail(1, "reader set-up", errno);
	memset(sh, 0, 4096);
	reader_pid = fork();
	if (reader_pid < 0)
		fail(1, "fork", errno);
	if (reader_pid == 0)
		reader(a, parent);
}

static void ask(int fd)
{
	uint64_t one = 1, got;

	sh->fd = fd;
	if (write(req_fd, &one, sizeof(one)) != sizeof(one) || read(resp_fd, &got, sizeof(got)) != sizeof(got))
		fail(1, "reader", errno);
}

static void stop_reader(void)
{
	uint64_t one = 1;

	sh->quit = 1;
	if (write(req_fd, &one, sizeof(one)) == sizeof(one))
		waitpid(reader_pid, NULL, 0);
}

/* libbpf probes the kernel (a program load) on its first map creation: done here, outside the cgroup */
static void warm_up(const struct mb_args *a)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo);
	int fd = bpf_map_create(a->type->type, "warm_up", KEY_SIZE, VALUE_SIZE, 1, &mo);

	if (fd >= 0)
		close(fd);
}

static void print_ll_list(const char *name, const long long *v, int n)
{
	printf(", \"%s\": [", name);
	for (int i = 0; i < n; i++)
		printf("%s%lld", i ? ", " : "", v[i]);
	printf("]");
}

static int mem_run(const struct mb_args *a)
{
	__u32 stages[MAX_STAGES], nstages = 0, maxfill = 0, done[MAX_COPIES] = { 0 };
	__u32 *keys;
	char *vals, *s, *tok;
	long long before, created, prev, drained = 1;
	long long copy_cg[MAX_COPIES];	/* each copy's charge so far */
	struct {
		long long memlock, cg;
		long long copy[MAX_COPIES];
		__u64 live;
		__u32 fill, inserted;
	} *res;
	int fds[MAX_COPIES], copies = a->copies < 1 ? 1 : a->copies > MAX_COPIES ? MAX_COPIES : a->copies;

	s = strdup(a->fills ? a->fills : "0");
	for (tok = strtok(s, ","); tok && nstages < MAX_STAGES; tok = strtok(NULL, ",")) {
		stages[nstages] = strtoul(tok, NULL, 10);
		if (stages[nstages] > maxfill)
			maxfill = stages[nstages];
		nstages++;
	}
	/* every buffer allocated and touched before the cgroup is joined */
	keys = make_keys(a, maxfill);
	vals = calloc(1, value_buf_size(a));
	res = calloc(MAX_STAGES, sizeof(*res));
	if (!vals || !res)
		fail(1, "calloc", ENOMEM);
	memset(vals, 1, value_buf_size(a));
	memset(copy_cg, 0, sizeof(copy_cg));
	start_reader(a);
	warm_up(a);
	if (a->cgroup)
		join_cgroup(a);

	/* one more map first, not counted: what a cgroup's first map charges once (its first kernel
	 * objects' pages, object-stock remainders) stays out of the copies' figures */
	ask(create_map(a));
	before = prev = sh->cur;
	drained &= sh->drained;
	for (int c = 0; c < copies; c++) {
		fds[c] = create_map(a);
		ask(fds[c]);
		drained &= sh->drained;
		copy_cg[c] = sh->cur - prev;
		prev = sh->cur;
	}
	created = sh->cur;
	for (__u32 i = 0; i < nstages; i++) {
		__u32 want = stages[i];

		res[i].inserted = 0;
		for (int c = 0; c < copies; c++) {
			for (; done[c] < want; done[c]++) {
				*(__u64 *)vals = keys[done[c]];
				if (bpf_map_update_elem(fds[c], &keys[done[c]], vals, BPF_NOEXIST) == 0 && c == 0)
					res[i].inserted++;
			}
			ask(fds[c]);
			drained &= sh->drained;
			copy_cg[c] += sh->cur - prev;
			prev = sh->cur;
			res[i].copy[c] = copy_cg[c];
			if (c == 0)
				res[i].memlock = sh->memlock;
		}
		res[i].fill = want;
		res[i].cg = sh->cur;
		res[i].live = live_entries(a, fds[0]); /* after the readings: iterating allocates nothing anyway */
	}
	ask(-1);
	stop_reader();
	printf("{\"mode\": \"mem\", \"map_type\": \"%s\", \"flags\": %u, \"max_entries\": %u, \"key_size\": %d, "
	       "\"value_size\": %d, \"cg_before\": %lld, \"cg_created\": %lld, \"cg_peak\": %lld, "
	       "\"copies\": %d, \"drained\": %s, \"drain\": \"%s\", \"page_size\": %ld, "
	       "\"live_final\": %llu, \"stages\": [",
	       a->type->name, a->flags, a->max_entries, KEY_SIZE, VALUE_SIZE, before, created, sh->peak, copies,
	       a->cgroup && drained ? "true" : "false",
	       !a->cgroup ? "" : v1(a) ? "memory.limit_in_bytes" : "memory.high", sysconf(_SC_PAGESIZE),
	       (unsigned long long)live_entries(a, fds[0]));
	for (__u32 i = 0; i < nstages; i++) {
		printf("%s{\"fill\": %u, \"inserted\": %u, \"live\": %llu, \"memlock\": %lld, \"cg\": %lld",
		       i ? ", " : "", res[i].fill, res[i].inserted, (unsigned long long)res[i].live, res[i].memlock,
		       res[i].cg);
		print_ll_list("cg_copies", res[i].copy, copies);
		printf("}");
	}
	printf("]}\n");
	return 0;
}

const struct mb_mode mb_mem = { .name = "mem", .run = mem_run };
