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
 *
 * Layout: this file holds the options, the table of triggers (each naming its driver in the
 * skeleton), the object's setup and the trials; block.c times blocks, stats.c the rest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "bench.h"
#include "batchbench.h"
#include "hook_batch.skel.h"

static struct bpf_program *driver_kfunc(struct hook_batch *s) { return s->progs.driver_kfunc; }
static struct bpf_program *driver_helper(struct hook_batch *s) { return s->progs.driver_helper; }

/* --trigger: what fires the hooks, and the driver program that runs it (NULL: user space) */
static const struct bb_trigger {
	const char *name;
	struct bpf_program *(*driver)(struct hook_batch *s);
} triggers[] = {
	{"kfunc", driver_kfunc},   /* bpf_modify_return_test_tp(): the tracepoint bpf_trigger_tp */
	{"helper", driver_helper}, /* bpf_get_numa_node_id() */
	{"getpgid", NULL},         /* getpgid() from user space, no driver */
};

static struct bb_args args = { .trigger = "kfunc", .trials = 30, .stats_trials = 3, .block_ms = 100, .batch = 100,
				.func = "bpf_get_numa_node_id" };
static struct hook_batch *skel;

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"obj", 1, 0, 'o'}, {"prog", 1, 0, 'p'}, {"trigger", 1, 0, 'g'}, {"batch", 1, 0, 'b'},
		{"trials", 1, 0, 't'}, {"stats-trials", 1, 0, 's'}, {"block-ms", 1, 0, 'm'},
		{"baseline-only", 0, 0, 'B'}, {"stats-probe", 1, 0, 'P'}, {"mark-id", 1, 0, 'M'}, {"exc", 1, 0, 'X'},
		{"kprobe-off-ftrace", 0, 0, 'K'},
		{0, 0, 0, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': args.obj = optarg; break;
		case 'p': args.prog = optarg; break;
		case 'g': args.trigger = optarg; break;
		case 'b': args.batch = atol(optarg); break;
		case 't': args.trials = atoi(optarg); break;
		case 's': args.stats_trials = atoi(optarg); break;
		case 'm': args.block_ms = atoi(optarg); break;
		case 'B': args.baseline_only = 1; break;
		case 'P': args.probe_ms = atoi(optarg); break;
		case 'M': args.mark_id = strtoull(optarg, NULL, 16); break;
		case 'X': args.exc = optarg; break;
		case 'K': args.kprobe_off = 1; break;
		default: die(1, "bad option");
		}
	}
}

static const struct bb_trigger *trigger_named(const char *name)
{
	for (size_t i = 0; i < sizeof(triggers) / sizeof(triggers[0]); i++)
		if (!strcmp(triggers[i].name, name))
			return &triggers[i];
	die(1, "unknown --trigger %s (kfunc, helper, getpgid)", name);
}

static void open_skel(void)
{
	size_t sz;
	const void *elf = hook_batch__elf_bytes(&sz);

	check_obj(args.obj, elf, sz);
	skel = hook_batch__open();
	if (!skel)
		die(2, "open %s: %s", args.obj, strerror(errno));
}

/* Autoload exactly the given programs (the object's are all optional: SEC("?...")). */
static void autoload_only(struct bpf_program *a, struct bpf_program *b, struct bpf_program *c)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p, skel->obj)
		bpf_program__set_autoload(p, p == a || p == b || p == c);
}

/* --stats-probe MS: were the kernel's BPF stats on (someone's BPF_ENABLE_STATS fd or the sysctl)
 * at any time in the next MS ms? Runs driver_helper (one trigger) with BPF_PROG_TEST_RUN five times a
 * second and reports how many of those runs the stats counted: {"kind":"probe","runs":N,"stats_runs":M}.
 * For watching another benchmark (the kernel's own bench) while it runs; costs next to nothing. */
static int stats_probe(void)
{
	struct bb_ctx c = { .args = &args };
	unsigned long long t, c0, c1;
	struct bpf_program *p;
	long n = 0;

	open_skel();
	p = skel->progs.driver_helper;
	autoload_only(p, NULL, NULL);
	skel->rodata->lab_batch = 1;
	if (hook_batch__load(skel))
		die(2, "loading driver_helper from %s refused: %s", args.obj, strerror(errno));
	prog_stats(p, &t, &c0);
	for (long long end = clock_of(CLOCK_MONOTONIC) + args.probe_ms * 1000000LL; clock_of(CLOCK_MONOTONIC) < end; n++) {
		run_once(&c, bpf_program__fd(p));
		usleep(200000);
	}
	prog_stats(p, &t, &c1);
	printf("{\"kind\":\"probe\",\"runs\":%ld,\"stats_runs\":%llu}\n", n, c1 - c0);
	hook_batch__destroy(skel);
	return 0;
}

/* The object with the program under test, the trigger's driver and driver_count, loaded. */
static void setup(struct bb_ctx *c, const struct bb_trigger *trig)
{
	struct bpf_program *driver = NULL, *counter = NULL;

	open_skel();
	if (args.prog)
		c->prog = bpf_object__find_program_by_name(skel->obj, args.prog);
	if (trig->driver) {
		driver = trig->driver(skel);
		counter = skel->progs.driver_count;
	}
	if (!c->prog && !args.baseline_only)
		die(2, "no program %s (or driver %s, driver_count) in %s", args.prog ? args.prog : "-",
		    driver ? bpf_program__name(driver) : "-", args.obj);
	autoload_only(c->prog, driver, counter);
	skel->rodata->lab_target_tgid = getpid();
	skel->rodata->lab_batch = (__u32)args.batch;
	if (hook_batch__load(skel))
		die(2, "loading %s (driver %s) from %s refused: %s", args.prog ? args.prog : "-",
		    driver ? bpf_program__name(driver) : "-", args.obj, strerror(errno));
	c->obj = skel->obj;
	c->driver_fd = driver ? bpf_program__fd(driver) : -1;
	c->count_fd = counter ? bpf_program__fd(counter) : -1;
	c->cpu_events = skel->bss->lab_cpu_events;
	c->cpu_counts = skel->bss->lab_cpu_counts;
}

int main(int argc, char **argv)
{
	struct bb_ctx ctx = { .args = &args, .runs = 1, .hw_fd = -1, .mark_block = -1 }, *c = &ctx;
	const struct bb_trigger *trig;
	int cpu;
	cpu_set_t set;

	parse_args(argc, argv);
	if (args.obj && args.probe_ms > 0)
		return stats_probe();
	if (!args.obj || (!args.prog && !args.baseline_only) || args.trials < 1 || args.batch < 1 || args.batch > 100000 || args.block_ms < 1)
		die(1, "need --obj, --prog (or --baseline-only), --trials >= 1, 1 <= --batch <= 100000, --block-ms >= 1");
	trig = trigger_named(args.trigger);
	libbpf_quiet();
	ensure_tracefs();
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Pin to the CPU we start on: the driver runs there, and so does every trigger. */
	cpu = sched_getcpu();
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die(1, "pinning to CPU %d: %s", cpu, strerror(errno));

	setup(c, trig);
	open_hw_insns(c);
	send_marks(c);
	/* Warm-up (discarded): also proves the kernel takes the attachment and counts. */
	c->runs = calibrate(c);
	struct block wb = {0}, wa = run_block(c, c->runs);

	if (!args.baseline_only)
		wb = hooked_block(c, c->runs);
	if (c->count_fd >= 0)
		run_block_of(c, c->count_fd, c->runs);
	printf("{\"kind\":\"setup\",\"prog\":\"%s\",\"mode\":\"%s\",\"trigger\":\"%s\",\"batch\":%ld,\"runs\":%ld,"
	       "\"ops\":%ld,\"cpu\":%d,\"clk_tck\":%ld,\"count_driver\":%s,\"warmup_events\":%llu,"
	       "\"warmup_base_events\":%llu,\"warmup_base_ns\":%lld,\"warmup_hook_ns\":%lld,\"hw_insns\":\"%s\","
	       "\"mark_id\":\"%llx\",\"mechanism\":\"%s\",\"kprobe_offset\":%d}\n",
	       args.prog ? args.prog : "", args.baseline_only ? "baseline" : "batch", args.trigger, args.batch, c->runs,
	       c->runs * args.batch, cpu, sysconf(_SC_CLK_TCK), c->count_fd >= 0 ? "true" : "false", wb.events, wa.events,
	       wa.ns, wb.ns, c->hw_fd >= 0 ? "ok" : c->hw_why, args.mark_id, c->mechanism, c->offset);
	for (int t = 0; t < args.trials; t++) {
		struct block a, b = {0}, k = {0, 0, -1, 0, 0};
		int fwd = (t % 2) == 0, foreign = foreign_programs(c);

		/* ABC on even trials, CBA on odd ones (AB / BA without C); each block marked (evmark.h) */
		if (fwd)
			c->mark_block = 0, a = run_block(c, c->runs);
		else if (c->count_fd >= 0)
			c->mark_block = 2, k = run_block_of(c, c->count_fd, c->runs);
		if (!args.baseline_only)
			c->mark_block = 1, b = hooked_block(c, c->runs);
		if (!fwd)
			c->mark_block = 0, a = run_block(c, c->runs);
		else if (c->count_fd >= 0)
			c->mark_block = 2, k = run_block_of(c, c->count_fd, c->runs);
		c->mark_block = -1;
		printf("{\"kind\":\"trial\",\"trial\":%d,\"order\":\"%s\",\"base_ns\":%lld,\"hook_ns\":%lld,"
		       "\"base_cpu_ns\":%lld,\"hook_cpu_ns\":%lld,", t,
		       c->count_fd >= 0 ? (fwd ? "ABC" : "CBA") : (fwd ? "AB" : "BA"), a.ns, b.ns, a.cpu, b.cpu);
		if (c->count_fd >= 0)
			printf("\"count_ns\":%lld,\"count_cpu_ns\":%lld,\"count_calls\":%llu,", k.ns, k.cpu, k.calls);
		else
			printf("\"count_ns\":null,\"count_cpu_ns\":null,\"count_calls\":null,");
		if (c->hw_fd >= 0)
			printf("\"base_insns\":%lld,\"hook_insns\":%lld,\"count_insns\":%lld,", a.insns, b.insns,
			       c->count_fd >= 0 ? k.insns : -1LL);
		foreign += foreign_programs(c);
		printf("\"events\":%llu,\"base_events\":%llu,\"triggers\":%ld,\"foreign\":%d,\"stats_runs\":%llu}\n",
		       b.events, a.events + k.events, c->runs * args.batch, foreign, args.baseline_only ? 0ULL : c->stats_runs);
	}
	if (args.stats_trials > 0 && !args.baseline_only)
		stats_phase(c);
	hook_batch__destroy(skel);
	return 0;
}
