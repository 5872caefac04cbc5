/* batchbench, blocks: R runs of a driver (or of the getpgid loop) timed on this thread, with the
 * program under test attached or not, and the events its hooks counted meanwhile. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "bench.h"
#include "batchbench.h"
#include "evmark.h"

/* A per-CPU counter array of the mapped .bss, summed over CPUs (between blocks only). */
static unsigned long long read_sum(const volatile __u64 *v)
{
	unsigned long long sum = 0;

	for (int i = 0; i < LAB_CPUS; i++)
		sum += v[i];
	return sum;
}

/* One run of a driver (fd; -1: the getpgid loop): --batch triggers. */
void run_once(const struct bb_ctx *c, int fd)
{
	if (fd >= 0) {
		LIBBPF_OPTS(bpf_test_run_opts, topts);

		if (bpf_prog_test_run_opts(fd, &topts))
			die(1, "BPF_PROG_TEST_RUN of the driver: %s", strerror(errno));
	} else {
		for (long i = 0; i < c->args->batch; i++)
			syscall(SYS_getpgid, 0);
	}
}

/* The hardware's own count of retired instructions on this thread (kernel and user), where the
 * kernel offers it (bare metal, a KVM guest with a PMU): instructions per event measured on the
 * CPU, beside time. Where it is not offered, hw_why says why and every block's insns is -1. */
void open_hw_insns(struct bb_ctx *c)
{
	struct perf_event_attr a = { .type = PERF_TYPE_HARDWARE, .size = sizeof(a),
				     .config = PERF_COUNT_HW_INSTRUCTIONS, .exclude_hv = 1 };

	c->hw_fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
	if (c->hw_fd < 0)
		snprintf(c->hw_why, sizeof(c->hw_why), "perf_event_open(PERF_COUNT_HW_INSTRUCTIONS): %s", strerror(errno));
}

static long long hw_insns(const struct bb_ctx *c)
{
	long long v;

	if (c->hw_fd < 0 || read(c->hw_fd, &v, sizeof(v)) != sizeof(v))
		return -1;
	return v;
}

struct block run_block_of(struct bb_ctx *c, int fd, long n)
{
	struct block b;
	unsigned long long e0 = read_sum(c->cpu_events), k0 = read_sum(c->cpu_counts);
	long long i0 = hw_insns(c);
	long long t0 = clock_of(CLOCK_MONOTONIC), c0 = clock_of(CLOCK_THREAD_CPUTIME_ID);

	if (c->mark_block >= 0 && c->args->mark_id)
		evm_begin(c->mark_block);
	for (long i = 0; i < n; i++)
		run_once(c, fd);
	if (c->mark_block >= 0 && c->args->mark_id)
		evm_end(c->mark_block);
	b.cpu = clock_of(CLOCK_THREAD_CPUTIME_ID) - c0;
	b.insns = i0 >= 0 ? hw_insns(c) - i0 : -1;
	b.ns = clock_of(CLOCK_MONOTONIC) - t0;
	b.events = read_sum(c->cpu_events) - e0;
	b.calls = read_sum(c->cpu_counts) - k0;
	return b;
}

struct block run_block(struct bb_ctx *c, long n)
{
	return run_block_of(c, c->driver_fd, n);
}

void prog_stats(const struct bpf_program *p, unsigned long long *time_ns, unsigned long long *cnt)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len);
	*time_ns = info.run_time_ns;
	*cnt = info.run_cnt;
}

/* A block with the program attached just before and detached after. stats_runs: the program's runs
 * the kernel's BPF stats counted meanwhile, nonzero only while someone (another process's
 * BPF_ENABLE_STATS fd, the sysctl) had the stats on, which adds their cost (~50 ns per run here) to
 * every run of ours. */
struct block hooked_block(struct bb_ctx *c, long n)
{
	const char *kind = bpf_program__section_name(c->prog);
	int kp = !strncmp(kind, "?kprobe/", 8) || !strncmp(kind, "?kretprobe/", 11) || !strncmp(kind, "kprobe/", 7) ||
		 !strncmp(kind, "kretprobe/", 10);
	struct bpf_link *link = c->args->kprobe_off ? attach_off_ftrace(c->prog, c->args->func, &c->offset, c->mechanism,
									  sizeof(c->mechanism))
						    : bpf_program__attach(c->prog);
	unsigned long long t0, c0, t1, c1;
	struct block b;

	if (!link)
		die(3, "attaching %s refused: %s", c->args->prog, strerror(errno));
	if (kp && !c->args->kprobe_off && !c->mechanism[0])
		kprobe_mechanism(c->args->func, c->mechanism, sizeof(c->mechanism));
	prog_stats(c->prog, &t0, &c0);
	b = run_block(c, n);
	prog_stats(c->prog, &t1, &c1);
	c->stats_runs = c1 - c0;
	bpf_link__destroy(link);
	return b;
}

/* R such that a baseline block takes about --block-ms of wall time. */
long calibrate(struct bb_ctx *c)
{
	long n = 1;
	long long t;

	for (;;) {
		t = clock_of(CLOCK_MONOTONIC);
		run_block(c, n);
		t = clock_of(CLOCK_MONOTONIC) - t;
		if (t > 20000000LL || n > (1L << 30))
			break;
		n *= 4;
	}
	n = (long)((double)n * c->args->block_ms * 1e6 / (double)(t > 0 ? t : 1));
	n = n < 1 ? 1 : n;
	/* once more at the estimated size: the first blocks run cold and overestimate a run's cost */
	t = clock_of(CLOCK_MONOTONIC);
	run_block(c, n);
	t = clock_of(CLOCK_MONOTONIC) - t;
	n = (long)((double)n * c->args->block_ms * 1e6 / (double)(t > 0 ? t : 1));
	return n < 1 ? 1 : n;
}

/* Under the QEMU event-count plugin (bpf/qemu/eventcount.c): the entry points it counts as
 * exceptions and interrupts, then the id of the windows that follow. Markers are NOPs elsewhere. */
void send_marks(const struct bb_ctx *c)
{
	const char *p = c->args->exc;

	if (!c->args->mark_id)
		return;
	while (p && *p) {
		char *end;
		int cls = (int)strtol(p, &end, 10);
		unsigned long long addr;

		if (*end != ':')
			die(1, "--exc wants class:hexaddr[,...], not %s", c->args->exc);
		addr = strtoull(end + 1, &end, 16);
		evm_exc_add(addr, cls);
		p = *end == ',' ? end + 1 : end;
	}
	EVM_X(0x20); /* EVM_EXC_COMMIT */
	evm_value(c->args->mark_id);
	EVM_X(0x03); /* EVM_ID */
}
