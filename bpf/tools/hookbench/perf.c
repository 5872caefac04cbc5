/* hookbench, perf mode: base / none / program arms per trial. */
#include "hb.h"

int in_list(const char *name, const char *list)
{
	size_t n = strlen(name);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && !strncmp(p, name, n))
			return 1;
		p = end ? end + 1 : NULL;
	}
	return 0;
}

/* One arm of a perf trial: no event (base), the event alone (none, prog NULL) or with a program. */
void perf_arm(const char *name, struct bpf_program *p, int with_event, int first)
{
	unsigned long long ev = 0;
	struct sample s;

	prog = p;
	last_clock_ns = 0;
	if (!with_event) {
		unsigned long long e0 = nperf_progs ? read_events() : 0;

		s = measure(opt.ops);
		ev = nperf_progs ? read_events() - e0 : 0;
	} else {
		unsigned long long e0 = nperf_progs ? read_events() : 0;

		if (attach())
			die(3, "attach failed (%s)", name);
		s = measure(opt.ops);
		detach();
		ev = nperf_progs ? read_events() - e0 : 0;
	}
	printf("%s{\"arm\":\"%s\",\"ns\":%lld,\"cpu_ns\":%lld,\"count\":%lld,\"events\":%llu}", first ? "" : ",",
	       name, s.ns, s.cpu, with_event ? last_clock_ns : 0, ev);
}

/* perf mode: base / none / each program per trial, sized by samples (see the header). */
void perf_main(void)
{
	long calib_ops;
	unsigned long long ev = 0;
	struct sample s;
	long long period = strcmp(opt.event, "hw") ? 1000000000LL / opt.freq : 0;

	/* loop length for samples / freq seconds of CPU, then corrected by a calibration run's
	 * samples per iteration (a late timer, e.g. under emulation, delivers fewer) */
	opt.ms = (int)(1000.0 * opt.samples / opt.freq) + 1;
	opt.ops = calibrate();
	calib_ops = opt.ops / 5 + 1; /* ~200 samples: the rate estimate is within a few % */
	prog = nperf_progs ? perf_progs[0] : NULL;
	if (run_hooked(calib_ops, &s, &ev))
		die(3, "attaching %s refused", prog ? bpf_program__name(prog) : "the perf event");
	if (prog && ev >= 20)
		opt.ops = (long)(1.15 * opt.samples * (double)calib_ops / ev) + 1;
	else
		opt.ops = (long)(1.15 * opt.ops) + 1;
	printf("{\"kind\":\"setup\",\"prog\":\"%s\",\"mode\":\"perf\",\"ops\":%ld,\"clk_tck\":%ld,"
	       "\"period_ns\":%lld,\"samples_target\":%d,\"calib_ops\":%ld,\"calib_events\":%llu,\"progs\":[",
	       opt.prog, opt.ops, sysconf(_SC_CLK_TCK), period, opt.samples, calib_ops, prog ? ev : 0ULL);
	for (int i = 0; i < nperf_progs; i++)
		printf("%s\"%s\"", i ? "," : "", bpf_program__name(perf_progs[i]));
	printf("]}\n");

	for (int t = 0; t < opt.trials; t++) {
		int narms = 2 + nperf_progs, fwd = t % 2 == 0;

		printf("{\"kind\":\"ptrial\",\"trial\":%d,\"order\":\"%s\",\"arms\":[", t, fwd ? "fwd" : "rev");
		for (int k = 0; k < narms; k++) {
			int a = fwd ? k : narms - 1 - k;

			if (a == 0)
				perf_arm("base", NULL, 0, k == 0);
			else if (a == 1)
				perf_arm("none", NULL, 1, k == 0);
			else
				perf_arm(bpf_program__name(perf_progs[a - 2]), perf_progs[a - 2], 1, k == 0);
		}
		printf("]}\n");
		fflush(stdout);
	}
	/* body time (bpf_stats) and the independent sample count, per program, on shorter runs */
	opt.ops = opt.ops / 5 + 1;
	for (int i = 0; i < nperf_progs && opt.stats_trials > 0; i++) {
		prog = perf_progs[i];
		stats_phase(opt.ops);
		count_phase(opt.ops);
	}
}
