// SPDX-License-Identifier: GPL-2.0
/* batchbench: the hook suite's kernel_batch method. Triggers fire inside the kernel in batches (no
 * syscall per event), as the kernel's selftests/bpf trigger benchmarks do: a driver program
 * (hook_batch.bpf.c) run with BPF_PROG_TEST_RUN on this thread's CPU calls a cheap helper or kfunc
 * --batch times per run; the hook under test attaches to that helper or to the tracepoint the kfunc
 * fires. Two baselines: the same driver with nothing attached ("bare"), and the counting driver
 * (driver_count: an atomic add to this CPU's counter per iteration, nothing else: the kernel bench's
 * trig-kernel-count, which is what the kernel bench subtracts).
 *
 *   batchbench --obj hook_batch.bpf.o --prog raw_tp_empty --trigger kfunc|helper|getpgid
 *              --batch 100 --trials 30 --block-ms 100 [--stats-trials 3] [--baseline-only]
 *
 * --trigger getpgid: no driver; N getpgid() calls per run from user space (the fallback for kernels
 * without the bpf_trigger_tp tracepoint). The thread is pinned to the CPU it starts on. A block runs
 * the driver R times (R calibrated so a baseline block takes about --block-ms); every trial is one
 * baseline block (A), one hooked block (B, program attached just before, detached after) and one
 * counting-driver block (C), in the order ABC on even trials and CBA on odd ones, so a linear drift
 * cancels within two trials for both differences (getpgid: no C, AB / BA). One warm-up pair before
 * the trials is discarded. --baseline-only: no program, A (and C) blocks only (the suite's drift
 * reference, measured at the start of a run).
 *
 * Output, one JSON object per line on stdout (the record shapes of hookbench, ops = R x batch):
 *   {"kind":"setup","prog":..,"mode":"batch","trigger":..,"batch":N,"runs":R,"ops":R*N,"cpu":C,...}
 *   {"kind":"trial","trial":i,"order":"ABC"|"CBA"|"AB"|"BA","base_ns","hook_ns","base_cpu_ns","hook_cpu_ns",
 *    "count_ns","count_cpu_ns","count_calls","events","base_events","triggers"}: count_* are null
 *    without a counting driver; count_calls is driver_count's own count (must equal triggers);
 *    base_events counts program runs during A and C blocks (must be 0); "foreign": hook programs of
 *    this object loaded by another process (another batchbench) seen before or after the trial:
 *    in its hooked blocks they attach to the same points, and their cost lands in ours; "stats_runs":
 *    runs of our program the kernel's BPF stats counted in the hooked block (nonzero: someone else had
 *    the stats on, ~50 ns per run here)
 *   {"kind":"stats","trial":i,"run_time_ns","run_cnt","events","triggers","hook_cpu_ns",
 *    "off_cpu_ns"}: a hooked block with BPF stats on and one with them off (the difference per run
 *    is what the stats themselves cost, run_time_ns / run_cnt includes part of it)
 *   batchbench --obj hook_batch.bpf.o --stats-probe MS: see stats_probe()
 * Exit 2: load refused; 3: attach refused (the kernel's/libbpf's text on stderr); 1: anything else.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/perf_event.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "benchutil.h"
#include "bb.h"

#define LAB_CPUS 256

struct bb_opt opt = { .trigger = "kfunc", .trials = 30, .stats_trials = 3, .block_ms = 100, .batch = 100 };

struct bpf_object *obj;
struct bpf_program *prog;
static struct bpf_program *driver, *counter;
static int driver_fd = -1, count_fd = -1;
long runs = 1;
static long events_off = -1, counts_off = -1; /* offsets of lab_cpu_events / lab_cpu_counts in .bss */
static struct bpf_map *bss;

/* Offset of a global in a data section (.rodata / .bss), from the object's BTF DATASEC. */
void *global_ptr(const char *sec, const char *var, size_t sz, struct bpf_map **mapp)
{
	struct btf *btf = bpf_object__btf(obj);
	struct bpf_map *map;
	size_t msz;

	bpf_object__for_each_map(map, obj) {
		const char *n = bpf_map__name(map);
		size_t ln = strlen(n), ls = strlen(sec);

		if (ln < ls || strcmp(n + ln - ls, sec))
			continue;
		int id = btf ? btf__find_by_name_kind(btf, sec, BTF_KIND_DATASEC) : -1;
		if (id < 0)
			break;
		const struct btf_type *t = btf__type_by_id(btf, id);
		const struct btf_var_secinfo *vs = btf_var_secinfos(t);
		char *data = (char *)bpf_map__initial_value(map, &msz);

		for (int i = 0; i < btf_vlen(t); i++, vs++) {
			const struct btf_type *vt = btf__type_by_id(btf, vs->type);

			if (!strcmp(btf__name_by_offset(btf, vt->name_off), var) && data && vs->offset + sz <= msz) {
				*mapp = map;
				return data + vs->offset;
			}
		}
	}
	die(1, "no %s variable %s in %s", sec, var, opt.obj);
	return NULL;
}

/* A per-CPU array of .bss (at off) summed over CPUs, read with one map lookup. */
static unsigned long long read_sum(long off)
{
	static char buf[65536];
	unsigned long long sum = 0, v;
	int zero = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(bss), &zero, buf))
		die(1, "reading .bss: %s", strerror(errno));
	for (int i = 0; i < LAB_CPUS; i++) {
		memcpy(&v, buf + off + i * sizeof(v), sizeof(v));
		sum += v;
	}
	return sum;
}

/* One run of a driver (fd; -1: the getpgid loop): opt.batch triggers. */
void run_once(int fd)
{
	if (fd >= 0) {
		LIBBPF_OPTS(bpf_test_run_opts, topts);

		if (bpf_prog_test_run_opts(fd, &topts))
			die(1, "BPF_PROG_TEST_RUN of the driver: %s", strerror(errno));
	} else {
		for (long i = 0; i < opt.batch; i++)
			syscall(SYS_getpgid, 0);
	}
}

/* The hardware's own count of retired instructions on this thread (kernel and user), where the
 * kernel offers it (bare metal, a KVM guest with a PMU): instructions per event measured on the
 * CPU, beside time. Where it is not offered, hw_why says why and every block's insns is -1. */
static int hw_fd = -1;
static char hw_why[200] = "";

static void open_hw_insns(void)
{
	struct perf_event_attr a = { .type = PERF_TYPE_HARDWARE, .size = sizeof(a),
				     .config = PERF_COUNT_HW_INSTRUCTIONS, .exclude_hv = 1 };

	hw_fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
	if (hw_fd < 0)
		snprintf(hw_why, sizeof(hw_why), "perf_event_open(PERF_COUNT_HW_INSTRUCTIONS): %s", strerror(errno));
}

static long long hw_insns(void)
{
	long long v;

	if (hw_fd < 0 || read(hw_fd, &v, sizeof(v)) != sizeof(v))
		return -1;
	return v;
}

static struct block run_block_of(int fd, long n)
{
	struct block b;
	unsigned long long e0 = read_sum(events_off), k0 = read_sum(counts_off);
	long long i0 = hw_insns();
	long long t0 = clock_of(CLOCK_MONOTONIC), c0 = clock_of(CLOCK_THREAD_CPUTIME_ID);

	for (long i = 0; i < n; i++)
		run_once(fd);
	b.cpu = clock_of(CLOCK_THREAD_CPUTIME_ID) - c0;
	b.insns = i0 >= 0 ? hw_insns() - i0 : -1;
	b.ns = clock_of(CLOCK_MONOTONIC) - t0;
	b.events = read_sum(events_off) - e0;
	b.calls = read_sum(counts_off) - k0;
	return b;
}

static struct block run_block(long n)
{
	return run_block_of(driver_fd, n);
}

/* Program runs the kernel's BPF stats counted during the last hooked_block(): nonzero only while
 * someone (another process's BPF_ENABLE_STATS fd, the sysctl) had the stats on, which adds their
 * cost (~50 ns per run here) to every run of ours. */
unsigned long long stats_runs;

struct block hooked_block(long n)
{
	struct bpf_link *link = bpf_program__attach(prog);
	unsigned long long t0, c0, t1, c1;
	struct block b;

	if (!link)
		die(3, "attaching %s refused: %s", opt.prog, strerror(errno));
	prog_stats(&t0, &c0);
	b = run_block(n);
	prog_stats(&t1, &c1);
	stats_runs = c1 - c0;
	bpf_link__destroy(link);
	return b;
}

/* R such that a baseline block takes about --block-ms of wall time. */
static long calibrate(void)
{
	long n = 1;
	long long t;

	for (;;) {
		t = clock_of(CLOCK_MONOTONIC);
		run_block(n);
		t = clock_of(CLOCK_MONOTONIC) - t;
		if (t > 20000000LL || n > (1L << 30))
			break;
		n *= 4;
	}
	n = (long)((double)n * opt.block_ms * 1e6 / (double)(t > 0 ? t : 1));
	n = n < 1 ? 1 : n;
	/* once more at the estimated size: the first blocks run cold and overestimate a run's cost */
	t = clock_of(CLOCK_MONOTONIC);
	run_block(n);
	t = clock_of(CLOCK_MONOTONIC) - t;
	n = (long)((double)n * opt.block_ms * 1e6 / (double)(t > 0 ? t : 1));
	return n < 1 ? 1 : n;
}

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, args);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"obj", 1, 0, 'o'}, {"prog", 1, 0, 'p'}, {"trigger", 1, 0, 'g'}, {"batch", 1, 0, 'b'},
		{"trials", 1, 0, 't'}, {"stats-trials", 1, 0, 's'}, {"block-ms", 1, 0, 'm'},
		{"baseline-only", 0, 0, 'B'}, {"stats-probe", 1, 0, 'P'}, {0, 0, 0, 0},
	};
	struct bpf_program *p;
	const char *drv = NULL;
	int c, cpu;
	cpu_set_t set;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': opt.obj = optarg; break;
		case 'p': opt.prog = optarg; break;
		case 'g': opt.trigger = optarg; break;
		case 'b': opt.batch = atol(optarg); break;
		case 't': opt.trials = atoi(optarg); break;
		case 's': opt.stats_trials = atoi(optarg); break;
		case 'm': opt.block_ms = atoi(optarg); break;
		case 'B': opt.baseline_only = 1; break;
		case 'P': opt.probe_ms = atoi(optarg); break;
		default: die(1, "bad option");
		}
	}
	if (opt.obj && opt.probe_ms > 0)
		return stats_probe();
	if (!opt.obj || (!opt.prog && !opt.baseline_only) || opt.trials < 1 || opt.batch < 1 || opt.batch > 100000 || opt.block_ms < 1)
		die(1, "need --obj, --prog (or --baseline-only), --trials >= 1, 1 <= --batch <= 100000, --block-ms >= 1");
	if (!strcmp(opt.trigger, "kfunc"))
		drv = "driver_kfunc";
	else if (!strcmp(opt.trigger, "helper"))
		drv = "driver_helper";
	else if (strcmp(opt.trigger, "getpgid"))
		die(1, "unknown --trigger %s (kfunc, helper, getpgid)", opt.trigger);
	libbpf_set_print(print_libbpf);
	ensure_tracefs();
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Pin to the CPU we start on: the driver runs there, and so does every trigger. */
	cpu = sched_getcpu();
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die(1, "pinning to CPU %d: %s", cpu, strerror(errno));

	obj = bpf_object__open_file(opt.obj, NULL);
	if (!obj)
		die(2, "open %s: %s", opt.obj, strerror(errno));
	bpf_object__for_each_program(p, obj) {
		const char *n = bpf_program__name(p);
		int mine = opt.prog && !strcmp(n, opt.prog), is_drv = drv && !strcmp(n, drv);
		int is_cnt = drv && !strcmp(n, "driver_count");

		bpf_program__set_autoload(p, mine || is_drv || is_cnt);
		if (mine)
			prog = p;
		if (is_drv)
			driver = p;
		if (is_cnt)
			counter = p;
	}
	if ((!prog && !opt.baseline_only) || (drv && (!driver || !counter)))
		die(2, "no program %s (or driver %s, driver_count) in %s", opt.prog ? opt.prog : "-", drv ? drv : "-",
		    opt.obj);
	__u32 tgid = getpid(), batch = (__u32)opt.batch;

	struct bpf_map *ro;
	char *bss0;

	*(__u32 *)global_ptr(".rodata", "lab_target_tgid", sizeof(tgid), &ro) = tgid;
	*(__u32 *)global_ptr(".rodata", "lab_batch", sizeof(batch), &ro) = batch;
	bss0 = global_ptr(".bss", "lab_cpu_events", LAB_CPUS * sizeof(__u64), &bss);
	events_off = bss0 - (char *)bpf_map__initial_value(bss, &(size_t){0});
	counts_off = (char *)global_ptr(".bss", "lab_cpu_counts", LAB_CPUS * sizeof(__u64), &bss) -
		     (char *)bpf_map__initial_value(bss, &(size_t){0});
	if (bpf_map__value_size(bss) > 65536)
		die(1, ".bss of %s too large", opt.obj);
	if (bpf_object__load(obj))
		die(2, "loading %s (driver %s) from %s refused: %s", opt.prog ? opt.prog : "-", drv ? drv : "-", opt.obj,
		    strerror(errno));
	driver_fd = driver ? bpf_program__fd(driver) : -1;
	count_fd = counter ? bpf_program__fd(counter) : -1;

	open_hw_insns();
	/* Warm-up (discarded): also proves the kernel takes the attachment and counts. */
	runs = calibrate();
	struct block wb = {0}, wa = run_block(runs);

	if (!opt.baseline_only)
		wb = hooked_block(runs);
	if (count_fd >= 0)
		run_block_of(count_fd, runs);
	printf("{\"kind\":\"setup\",\"prog\":\"%s\",\"mode\":\"%s\",\"trigger\":\"%s\",\"batch\":%ld,\"runs\":%ld,"
	       "\"ops\":%ld,\"cpu\":%d,\"clk_tck\":%ld,\"count_driver\":%s,\"warmup_events\":%llu,"
	       "\"warmup_base_events\":%llu,\"warmup_base_ns\":%lld,\"warmup_hook_ns\":%lld,\"hw_insns\":\"%s\"}\n",
	       opt.prog ? opt.prog : "", opt.baseline_only ? "baseline" : "batch", opt.trigger, opt.batch, runs,
	       runs * opt.batch, cpu, sysconf(_SC_CLK_TCK), count_fd >= 0 ? "true" : "false", wb.events, wa.events,
	       wa.ns, wb.ns, hw_fd >= 0 ? "ok" : hw_why);
	for (int t = 0; t < opt.trials; t++) {
		struct block a, b = {0}, c = {0, 0, -1, 0, 0};
		int fwd = (t % 2) == 0, foreign = foreign_programs();

		/* ABC on even trials, CBA on odd ones (AB / BA without C) */
		if (fwd)
			a = run_block(runs);
		else if (count_fd >= 0)
			c = run_block_of(count_fd, runs);
		if (!opt.baseline_only)
			b = hooked_block(runs);
		if (!fwd)
			a = run_block(runs);
		else if (count_fd >= 0)
			c = run_block_of(count_fd, runs);
		printf("{\"kind\":\"trial\",\"trial\":%d,\"order\":\"%s\",\"base_ns\":%lld,\"hook_ns\":%lld,"
		       "\"base_cpu_ns\":%lld,\"hook_cpu_ns\":%lld,", t,
		       count_fd >= 0 ? (fwd ? "ABC" : "CBA") : (fwd ? "AB" : "BA"), a.ns, b.ns, a.cpu, b.cpu);
		if (count_fd >= 0)
			printf("\"count_ns\":%lld,\"count_cpu_ns\":%lld,\"count_calls\":%llu,", c.ns, c.cpu, c.calls);
		else
			printf("\"count_ns\":null,\"count_cpu_ns\":null,\"count_calls\":null,");
		if (hw_fd >= 0)
			printf("\"base_insns\":%lld,\"hook_insns\":%lld,\"count_insns\":%lld,", a.insns, b.insns,
			       count_fd >= 0 ? c.insns : -1LL);
		foreign += foreign_programs();
		printf("\"events\":%llu,\"base_events\":%llu,\"triggers\":%ld,\"foreign\":%d,\"stats_runs\":%llu}\n",
		       b.events, a.events + c.events, runs * opt.batch, foreign, opt.baseline_only ? 0ULL : stats_runs);
	}
	if (opt.stats_trials > 0 && !opt.baseline_only)
		stats_phase();
	bpf_object__close(obj);
	return 0;
}
