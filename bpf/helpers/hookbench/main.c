// SPDX-License-Identifier: GPL-2.0
/* hookbench: loads one hook-suite BPF program, attaches/detaches it between trials and times the
 * trigger loop with and without it. Statically linked against libbpf so the guest needs nothing.
 *
 *   hookbench open   --obj hook_open.bpf.o --prog tracepoint_body --trials 20 --ops 20000 [--path F]
 *   hookbench uprobe --obj hook_uprobe.bpf.o --prog uprobe_body [--target lab_uprobe_target|lab_uprobe_nop] ...
 *                    (lab_uprobe_target starts with lea, which x86 single-steps out of line;
 *                     lab_uprobe_nop starts with nop, which the kernel emulates)
 *   hookbench perf   --obj hook_perf.bpf.o --prog perf_event_body[,perf_event_empty...] --event sw|hw
 *                    --freq 999 --samples 1000 (--prog none: sampling without a program only)
 *   hookbench net    --obj hook_net.bpf.o --prog xdp_body|socket_body --netns-tx P --netns-rx P
 *                    --ifname vrx --dst 10.201.0.2 --port 9000 [--xdp-mode skb|drv] ...
 *   hookbench openlat --obj hook_open.bpf.o --prog tracepoint_body|none --trials 6 --ops 20000: per-call
 *                    latencies of the open path, ABBA (openlat.c)
 *   open / uprobe / net with --prog none: baseline trials only, no program (hook_* fields 0): the
 *   suite's drift reference at the start of a run
 *
 * Output, one JSON object per line on stdout:
 *   {"kind":"setup",...}  once, after load and a first successful attach
 *   {"kind":"trial","trial":i,"order":"AB"|"BA","base_ns":..,"hook_ns":..,"base_stime_ns":..,
 *    "base_cpu_ns":..,"hook_cpu_ns":..,"hook_stime_ns":..,"base_jiffies":..,"hook_jiffies":..,"events":..,
 *    "base_events":.. (counted during the baseline: must be 0),"triggers":..,...}
 *   {"kind":"stats","trial":i,"run_time_ns":..,"run_cnt":..,"events":..,"triggers":..,"hook_ns":..}
 *   {"kind":"count","trial":i,"events":..,"samples":..,"lost":..,"clock_ns":..}   (perf mode)
 * perf mode replaces "trial" records with
 *   {"kind":"ptrial","trial":i,"order":"fwd"|"rev","arms":[{"arm":"base"|"none"|PROG,"ns":..,
 *    "cpu_ns":..,"count":..,"events":..},...]}
 * one per trial: the same loop with no event open (base), the event open without a program (none)
 * and the event with each program, in one order on even trials and the reverse on odd ones, so the
 * arms pair within a trial and a linear drift cancels over two. The loop is sized so that every
 * program arm generates at least --samples samples (from a calibration run's samples per loop
 * iteration, +15%); "count" is the event's own count (cpu-clock ns, or cycles); "events" the
 * program's runs (for base and none: runs counted meanwhile, which must be 0).
 * Trials run baseline and hook alternately in ABBA order (A = no program, B = attached), so a
 * linear drift cancels in the per-pair difference. Body time (bpf_stats) is measured in its own
 * phase because enabling the stats adds two clock reads to every program run. The stats are
 * switched on with BPF_ENABLE_STATS, which the kernel undoes when the fd closes (even on a crash).
 * perf mode also has a count phase: the program lets each sample through to a ring buffer too
 * (lab_pass = 1), and the samples the kernel recorded there (plus any it reports lost) are the
 * independent trigger count its lab_events must match.
 * A refused load/attach: libbpf's/the kernel's text on stderr, exit 2 (load) or 3 (attach).
 *
 * Layout: this file holds the options, the table of modes and the ABBA trials of open / uprobe /
 * net; each mode is a struct hb_mode in a file of its own (open.c, uprobe.c, perf.c, net.c) that
 * reaches its object through a bpftool skeleton; trial.c times runs, prog.c picks and loads programs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "hookbench.h"

static const struct hb_mode *modes[] = { &hb_open, &hb_uprobe, &hb_perf, &hb_net, &hb_openlat };

static struct hb_args args = {
	.path = "/dev/null", .target = "lab_uprobe_target", .event = "sw", .ifname = "vrx", .dst = "10.201.0.2", .xdp_mode = "skb",
	.trials = 10, .stats_trials = 3, .port = 9000, .freq = 999, .ms = 100, .ops = 10000, .samples = 1000,
};

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"obj", 1, 0, 'o'}, {"prog", 1, 0, 'p'}, {"trials", 1, 0, 't'}, {"ops", 1, 0, 'n'},
		{"stats-trials", 1, 0, 's'}, {"path", 1, 0, 'f'}, {"event", 1, 0, 'e'}, {"freq", 1, 0, 'F'},
		{"ms", 1, 0, 'm'}, {"netns-tx", 1, 0, 'X'}, {"netns-rx", 1, 0, 'R'}, {"ifname", 1, 0, 'i'},
		{"dst", 1, 0, 'd'}, {"port", 1, 0, 'P'}, {"xdp-mode", 1, 0, 'x'}, {"samples", 1, 0, 'S'},
		{"target", 1, 0, 'T'}, {0, 0, 0, 0},
	};
	int c;

	if (argc < 2)
		die(1, "usage: hookbench open|uprobe|perf|net --obj F --prog NAME [options]");
	args.mode = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': args.obj = optarg; break;
		case 'p': args.prog = optarg; break;
		case 't': args.trials = atoi(optarg); break;
		case 'n': args.ops = atol(optarg); break;
		case 's': args.stats_trials = atoi(optarg); break;
		case 'f': args.path = optarg; break;
		case 'e': args.event = optarg; break;
		case 'F': args.freq = atoi(optarg); break;
		case 'm': args.ms = atoi(optarg); break;
		case 'X': args.netns_tx = optarg; break;
		case 'R': args.netns_rx = optarg; break;
		case 'i': args.ifname = optarg; break;
		case 'd': args.dst = optarg; break;
		case 'P': args.port = atoi(optarg); break;
		case 'x': args.xdp_mode = optarg; break;
		case 'S': args.samples = atoi(optarg); break;
		case 'T': args.target = optarg; break;
		default: die(1, "bad option");
		}
	}
}

static const struct hb_mode *mode_named(const char *name)
{
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(modes[i]->name, name))
			return modes[i];
	die(1, "unknown mode %s", name);
}

/* open / uprobe / net: a warm-up, then baseline (A) and hooked (B) runs in ABBA order, then the
 * bpf_stats phase; --prog none: baseline runs only (the suite's drift reference). */
static void abba_trials(struct hb_ctx *c)
{
	const struct hb_args *a = c->args;
	int baseline_only = !c->prog;
	/* A first attach proves the kernel takes it (else: exit 3 with its reason) and warms up. */
	struct sample s = {0};
	unsigned long long ev = 0;

	if (!baseline_only && run_hooked(c, a->ops / 10 + 1, &s, &ev))
		die(3, "attaching %s refused", a->prog);
	measure(c, a->ops / 10 + 1);
	/* period_ns: 0 here (perf prints its own setup record) */
	printf("{\"kind\":\"setup\",\"prog\":\"%s\",\"mode\":\"%s\",\"ops\":%ld,\"clk_tck\":%ld,\"period_ns\":%lld,"
	       "\"warmup_events\":%llu}\n", a->prog, a->mode, a->ops, sysconf(_SC_CLK_TCK), 0LL, ev);

	for (int t = 0; t < a->trials; t++) {
		struct sample sa, b = {0};
		int ab = (t % 2) == 0; /* ABBA: even trials baseline first, odd trials hook first */
		unsigned long long base_ev = 0;

		if (ab)
			sa = measure_baseline(c, a->ops, &base_ev);
		if (!baseline_only && run_hooked(c, a->ops, &b, &ev))
			die(3, "attach failed at trial %d", t);
		if (!ab)
			sa = measure_baseline(c, a->ops, &base_ev);
		printf("{\"kind\":\"trial\",\"trial\":%d,\"order\":\"%s\",\"base_ns\":%lld,\"hook_ns\":%lld,"
		       "\"base_cpu_ns\":%lld,\"hook_cpu_ns\":%lld,\"base_stime_ns\":%lld,\"hook_stime_ns\":%lld,\"base_jiffies\":%lld,\"hook_jiffies\":%lld,"
		       "\"events\":%llu,\"base_events\":%llu,\"triggers\":%ld,\"clock_ns\":%lld}\n",
		       t, ab ? "AB" : "BA", sa.ns, b.ns, sa.cpu, b.cpu, sa.stime, b.stime, sa.jiffies, b.jiffies, ev, base_ev,
		       a->ops, c->clock_ns);
	}
	if (c->prog && a->stats_trials > 0)
		stats_phase(c, a->ops);
}

int main(int argc, char **argv)
{
	struct hb_ctx c = { .args = &args };

	parse_args(argc, argv);
	c.mode = mode_named(args.mode);
	if (!args.obj || !args.prog || args.trials < 1 || args.ops < 1 || args.freq < 1)
		die(1, "need --obj, --prog, --trials >= 1, --ops >= 1, --freq >= 1");
	if (c.mode->validate)
		c.mode->validate(&args);
	libbpf_quiet();
	trial_init();
	setvbuf(stdout, NULL, _IOLBF, 0);

	c.mode->setup(&c);
	if (c.mode->measure)
		c.mode->measure(&c);
	else
		abba_trials(&c);
	c.mode->teardown(&c);
	return 0;
}
