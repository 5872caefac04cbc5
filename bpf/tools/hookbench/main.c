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
 */
#include "hb.h"

struct hb_opts opt = {
	.path = "/dev/null", .target = "lab_uprobe_target", .event = "sw", .ifname = "vrx", .dst = "10.201.0.2", .xdp_mode = "skb",
	.trials = 10, .stats_trials = 3, .port = 9000, .freq = 999, .ms = 100, .ops = 10000, .samples = 1000,
};

struct bpf_program *perf_progs[MAX_PROGS]; /* perf mode: the programs of --prog (none: 0) */
int nperf_progs;
struct bpf_object *obj;
struct bpf_program *prog; /* NULL for perf --prog none */
struct bpf_link *cur_link;
int perf_fd = -1, tx_fd = -1, rx_fd = -1, ifindex;
long long last_clock_ns; /* perf: cpu-clock count of the last hooked run */
void *perf_ring;          /* perf count phase: the event's ring buffer (NULL otherwise) */
char bss_buf[4096];
struct bpf_map *bss_map;

long long stime_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_stime.tv_sec * 1000000000LL + ru.ru_stime.tv_usec * 1000LL;
}

/* Kernel-mode time in clock ticks, field 15 of /proc/self/stat: what the talk measured. */
long long stime_jiffies(void)
{
	static int fd = -1; /* opened once: an open() here would count as a trigger */
	char buf[1024], *p;
	long long v = -1;
	int n, field = 3;

	if (fd < 0)
		fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p)
		return -1;
	for (p += 2; *p && field < 15; p++)
		if (*p == ' ')
			field++;
	sscanf(p, "%lld", &v);
	return v;
}

/* ---- BPF globals by name (offsets from the object's BTF DATASEC) ---- */
int global_off(const char *sec_suffix, const char *var, struct bpf_map **mapp)
{
	struct btf *btf = bpf_object__btf(obj);
	struct bpf_map *map;
	const char *want = NULL;

	bpf_object__for_each_map(map, obj) {
		const char *n = bpf_map__name(map);
		size_t ln = strlen(n), ls = strlen(sec_suffix);

		if (ln >= ls && !strcmp(n + ln - ls, sec_suffix)) {
			*mapp = map;
			want = sec_suffix;
			break;
		}
	}
	if (!want || !btf)
		return -1;
	int id = btf__find_by_name_kind(btf, sec_suffix, BTF_KIND_DATASEC);
	if (id < 0)
		return -1;
	const struct btf_type *t = btf__type_by_id(btf, id);
	const struct btf_var_secinfo *vs = btf_var_secinfos(t);

	for (int i = 0; i < btf_vlen(t); i++, vs++) {
		const struct btf_type *vt = btf__type_by_id(btf, vs->type);

		if (!strcmp(btf__name_by_offset(btf, vt->name_off), var))
			return vs->offset;
	}
	return -1;
}

void set_rodata(const char *var, const void *val, size_t sz)
{
	struct bpf_map *map;
	size_t msz;
	int off = global_off(".rodata", var, &map);
	char *data;

	if (off < 0)
		die(1, "no .rodata variable %s in %s", var, opt.obj);
	data = (char *)bpf_map__initial_value(map, &msz);
	if (!data || off + sz > msz)
		die(1, "cannot set %s", var);
	memcpy(data + off, val, sz);
}

/* Read the object's .bss into bss_buf; returns the offset of `var` in it. Between trials only. */

int bss_read(const char *var)
{
	int zero = 0, off = global_off(".bss", var, &bss_map);

	if (off < 0 || bpf_map__value_size(bss_map) > sizeof(bss_buf))
		die(1, "no %s in .bss of %s", var, opt.obj);
	if (bpf_map_lookup_elem(bpf_map__fd(bss_map), &zero, bss_buf))
		die(1, "reading .bss of %s: %s", opt.obj, strerror(errno));
	return off;
}

unsigned long long read_events(void)
{
	return *(unsigned long long *)(bss_buf + bss_read("lab_events"));
}

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, args);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"obj", 1, 0, 'o'}, {"prog", 1, 0, 'p'}, {"trials", 1, 0, 't'}, {"ops", 1, 0, 'n'},
		{"stats-trials", 1, 0, 's'}, {"path", 1, 0, 'f'}, {"event", 1, 0, 'e'}, {"freq", 1, 0, 'F'},
		{"ms", 1, 0, 'm'}, {"netns-tx", 1, 0, 'X'}, {"netns-rx", 1, 0, 'R'}, {"ifname", 1, 0, 'i'},
		{"dst", 1, 0, 'd'}, {"port", 1, 0, 'P'}, {"xdp-mode", 1, 0, 'x'}, {"samples", 1, 0, 'S'},
		{"target", 1, 0, 'T'}, {0, 0, 0, 0},
	};
	struct bpf_program *p;
	int c;

	if (argc < 2)
		die(1, "usage: hookbench open|uprobe|perf|net --obj F --prog NAME [options]");
	opt.mode = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': opt.obj = optarg; break;
		case 'p': opt.prog = optarg; break;
		case 't': opt.trials = atoi(optarg); break;
		case 'n': opt.ops = atol(optarg); break;
		case 's': opt.stats_trials = atoi(optarg); break;
		case 'f': opt.path = optarg; break;
		case 'e': opt.event = optarg; break;
		case 'F': opt.freq = atoi(optarg); break;
		case 'm': opt.ms = atoi(optarg); break;
		case 'X': opt.netns_tx = optarg; break;
		case 'R': opt.netns_rx = optarg; break;
		case 'i': opt.ifname = optarg; break;
		case 'd': opt.dst = optarg; break;
		case 'P': opt.port = atoi(optarg); break;
		case 'x': opt.xdp_mode = optarg; break;
		case 'S': opt.samples = atoi(optarg); break;
		case 'T': opt.target = optarg; break;
		default: die(1, "bad option");
		}
	}
	if (strcmp(opt.mode, "open") && strcmp(opt.mode, "uprobe") && strcmp(opt.mode, "perf") &&
	    strcmp(opt.mode, "net"))
		die(1, "unknown mode %s", opt.mode);
	if (!opt.obj || !opt.prog || opt.trials < 1 || opt.ops < 1 || opt.freq < 1)
		die(1, "need --obj, --prog, --trials >= 1, --ops >= 1, --freq >= 1");
	libbpf_set_print(print_libbpf);
	stime_jiffies();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(opt.mode, "open"))
		ensure_tracefs();

	obj = bpf_object__open_file(opt.obj, NULL);
	if (!obj)
		die(2, "open %s: %s", opt.obj, strerror(errno));
	bpf_object__for_each_program(p, obj) {
		int perf = !strcmp(opt.mode, "perf");
		int mine = perf ? in_list(bpf_program__name(p), opt.prog) : !strcmp(bpf_program__name(p), opt.prog);

		bpf_program__set_autoload(p, mine);
		if (mine && perf && nperf_progs < MAX_PROGS)
			perf_progs[nperf_progs++] = p;
		if (mine && !prog)
			prog = p;
	}
	/* --prog none outside perf mode: baseline trials only (the suite's drift reference) */
	int baseline_only = strcmp(opt.mode, "perf") && !strcmp(opt.prog, "none");

	if (!prog && !baseline_only && !(strcmp(opt.mode, "perf") == 0 && strcmp(opt.prog, "none") == 0))
		die(2, "no program %s in %s", opt.prog, opt.obj);
	if (nperf_progs) { /* every listed program must exist */
		int listed = 1;

		for (const char *c = opt.prog; *c; c++)
			listed += *c == ',';
		if (listed != nperf_progs)
			die(2, "not every program of %s is in %s (found %d of %d)", opt.prog, opt.obj, nperf_progs,
			    listed);
	}
	if (prog) {
		__u32 tgid = getpid();

		set_rodata("lab_target_tgid", &tgid, sizeof(tgid));
		if (!strcmp(opt.mode, "net")) {
			__u16 port = htons(opt.port);

			set_rodata("lab_target_port", &port, sizeof(port));
		}
		if (bpf_object__load(obj))
			die(2, "loading %s from %s refused: %s", opt.prog, opt.obj, strerror(errno));
	}
	if (!strcmp(opt.mode, "net"))
		setup_net();
	if (!strcmp(opt.mode, "perf")) {
		if (opt.samples < 1)
			die(1, "need --samples >= 1");
		perf_main();
		if (nperf_progs)
			bpf_object__close(obj);
		return 0;
	}

	/* A first attach proves the kernel takes it (else: exit 3 with its reason) and warms up. */
	struct sample s = {0};
	unsigned long long ev = 0;

	if (!baseline_only && run_hooked(opt.ops / 10 + 1, &s, &ev))
		die(3, "attaching %s refused", opt.prog);
	measure(opt.ops / 10 + 1);
	printf("{\"kind\":\"setup\",\"prog\":\"%s\",\"mode\":\"%s\",\"ops\":%ld,\"clk_tck\":%ld,\"period_ns\":%lld,"
	       "\"warmup_events\":%llu}\n", opt.prog, opt.mode, opt.ops, sysconf(_SC_CLK_TCK),
	       !strcmp(opt.mode, "perf") && strcmp(opt.event, "hw") ? 1000000000LL / opt.freq : 0, ev);

	for (int t = 0; t < opt.trials; t++) {
		struct sample a, b = {0};
		int ab = (t % 2) == 0; /* ABBA: even trials baseline first, odd trials hook first */
		unsigned long long base_ev = 0;

		if (ab)
			a = measure_baseline(opt.ops, &base_ev);
		if (!baseline_only && run_hooked(opt.ops, &b, &ev))
			die(3, "attach failed at trial %d", t);
		if (!ab)
			a = measure_baseline(opt.ops, &base_ev);
		printf("{\"kind\":\"trial\",\"trial\":%d,\"order\":\"%s\",\"base_ns\":%lld,\"hook_ns\":%lld,"
		       "\"base_cpu_ns\":%lld,\"hook_cpu_ns\":%lld,\"base_stime_ns\":%lld,\"hook_stime_ns\":%lld,\"base_jiffies\":%lld,\"hook_jiffies\":%lld,"
		       "\"events\":%llu,\"base_events\":%llu,\"triggers\":%ld,\"clock_ns\":%lld}\n",
		       t, ab ? "AB" : "BA", a.ns, b.ns, a.cpu, b.cpu, a.stime, b.stime, a.jiffies, b.jiffies, ev, base_ev,
		       opt.ops, last_clock_ns);
	}
	if (prog && opt.stats_trials > 0)
		stats_phase(opt.ops);
	if (prog)
		bpf_object__close(obj);
	return 0;
}
