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
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "benchutil.h"

#ifndef SO_ATTACH_BPF
#define SO_ATTACH_BPF 50
#endif
#ifndef SO_DETACH_BPF
#define SO_DETACH_BPF 27
#endif

static struct {
	const char *mode, *obj, *prog, *path, *target, *event, *netns_tx, *netns_rx, *ifname, *dst, *xdp_mode;
	int trials, stats_trials, port, freq, ms, samples;
	long ops;
} opt = {
	.path = "/dev/null", .target = "lab_uprobe_target", .event = "sw", .ifname = "vrx", .dst = "10.201.0.2", .xdp_mode = "skb",
	.trials = 10, .stats_trials = 3, .port = 9000, .freq = 999, .ms = 100, .ops = 10000, .samples = 1000,
};

#define MAX_PROGS 4
static struct bpf_program *perf_progs[MAX_PROGS]; /* perf mode: the programs of --prog (none: 0) */
static int nperf_progs;

static struct bpf_object *obj;
static struct bpf_program *prog; /* NULL for perf --prog none */
static struct bpf_link *cur_link;
static int perf_fd = -1, tx_fd = -1, rx_fd = -1, ifindex;
static long long last_clock_ns; /* perf: cpu-clock count of the last hooked run */
static void *perf_ring;          /* perf count phase: the event's ring buffer (NULL otherwise) */
#define RING_PAGES 256           /* data pages; 8-byte sample records: 262144 samples per run */

static long long stime_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_stime.tv_sec * 1000000000LL + ru.ru_stime.tv_usec * 1000LL;
}

/* Kernel-mode time in clock ticks, field 15 of /proc/self/stat: what the talk measured. */
static long long stime_jiffies(void)
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
static int global_off(const char *sec_suffix, const char *var, struct bpf_map **mapp)
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

static void set_rodata(const char *var, const void *val, size_t sz)
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
static char bss_buf[4096];
static struct bpf_map *bss_map;

static int bss_read(const char *var)
{
	int zero = 0, off = global_off(".bss", var, &bss_map);

	if (off < 0 || bpf_map__value_size(bss_map) > sizeof(bss_buf))
		die(1, "no %s in .bss of %s", var, opt.obj);
	if (bpf_map_lookup_elem(bpf_map__fd(bss_map), &zero, bss_buf))
		die(1, "reading .bss of %s: %s", opt.obj, strerror(errno));
	return off;
}

static unsigned long long read_events(void)
{
	return *(unsigned long long *)(bss_buf + bss_read("lab_events"));
}

/* ---- the trigger loops (what a trial times) ---- */
__attribute__((noinline)) int lab_uprobe_target(int x)
{
	asm volatile("" ::: "memory");
	return x + 1;
}

/* The same function with a nop first: x86 uprobes emulate nop instead of single-stepping it. */
int lab_uprobe_nop(int x);
asm(".text\n.globl lab_uprobe_nop\n.type lab_uprobe_nop, @function\n.p2align 4\nlab_uprobe_nop:\n"
    "\tnop\n\tlea 1(%rdi), %eax\n\tret\n.size lab_uprobe_nop, .-lab_uprobe_nop\n");

static volatile unsigned long long sink;

static unsigned long long spin(long n)
{
	unsigned long long x = 88172645463325252ULL;

	for (long i = 0; i < n; i++) { /* xorshift: CPU-bound, no memory traffic */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

static void loop_once(long ops)
{
	char pkt[64] = "hookbench";
	long i;

	if (!strcmp(opt.mode, "open")) {
		for (i = 0; i < ops; i++) {
			int fd = openat(AT_FDCWD, opt.path, O_RDONLY);

			if (fd < 0)
				die(1, "open %s: %s", opt.path, strerror(errno));
			close(fd);
		}
	} else if (!strcmp(opt.mode, "uprobe")) {
		int acc = 0;

		int (*fn)(int) = strcmp(opt.target, "lab_uprobe_nop") ? lab_uprobe_target : lab_uprobe_nop;

		for (i = 0; i < ops; i++)
			acc = fn(acc);
		sink = acc;
	} else if (!strcmp(opt.mode, "perf")) {
		sink = spin(ops);
	} else { /* net: one datagram out of the tx namespace, received in the rx namespace */
		for (i = 0; i < ops; i++) {
			if (send(tx_fd, pkt, sizeof(pkt), 0) != sizeof(pkt))
				die(1, "send: %s", strerror(errno));
			if (recv(rx_fd, pkt, sizeof(pkt), 0) < 0)
				die(1, "recv (packet %ld of %ld lost?): %s", i, ops, strerror(errno));
		}
	}
}

struct sample { long long ns, cpu, stime, jiffies; };

static struct sample measure(long ops)
{
	struct sample s;
	long long j0 = stime_jiffies(), s0 = stime_ns(), c0 = cpu_ns(), t0 = now_ns();

	loop_once(ops);
	s.ns = now_ns() - t0;
	s.cpu = cpu_ns() - c0;
	s.stime = stime_ns() - s0;
	s.jiffies = stime_jiffies() - j0;
	return s;
}

/* ---- attach / detach per mode ---- */
/* XDP attach mode: "skb" (generic, in the stack after the skb is built) or "drv" (native, in
 * the driver: veth runs it from its NAPI poll before the packet enters the stack). */
static __u32 xdp_flags(void)
{
	return strcmp(opt.xdp_mode, "drv") ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
}

static int want_ring; /* perf count phase: map a ring buffer so the kernel records each sample */

static int attach(void)
{
	int fd = prog ? bpf_program__fd(prog) : -1, err;

	if (!strcmp(opt.mode, "perf")) {
		struct perf_event_attr a = { .size = sizeof(a), .disabled = 1 }; /* on once attached */

		if (!strcmp(opt.event, "hw")) {
			a.type = PERF_TYPE_HARDWARE;
			a.config = PERF_COUNT_HW_CPU_CYCLES;
			a.freq = 1;
			a.sample_freq = opt.freq;
		} else { /* cpu-clock counts ns: a fixed period gives exactly freq samples per second */
			a.type = PERF_TYPE_SOFTWARE;
			a.config = PERF_COUNT_SW_CPU_CLOCK;
			a.sample_period = 1000000000ULL / opt.freq;
		}
		perf_fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
		if (perf_fd < 0) {
			fprintf(stderr, "perf_event_open(%s, %d Hz): %s\n",
				strcmp(opt.event, "hw") ? "software cpu-clock" : "hardware cycles", opt.freq,
				strerror(errno));
			return -1;
		}
		if (want_ring) {
			perf_ring = mmap(NULL, (RING_PAGES + 1) * sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
					 MAP_SHARED, perf_fd, 0);
			if (perf_ring == MAP_FAILED) {
				perf_ring = NULL;
				fprintf(stderr, "mmap of the perf ring buffer: %s\n", strerror(errno));
				return -1;
			}
		}
		if (!prog) /* the baseline event of --prog none: sampling without a program */
			return ioctl(perf_fd, PERF_EVENT_IOC_ENABLE, 0);
		cur_link = bpf_program__attach_perf_event(prog, perf_fd); /* libbpf enables it after attaching */
	} else if (!strcmp(opt.mode, "uprobe")) {
		LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = opt.target,
			    .retprobe = strncmp(bpf_program__name(prog), "uretprobe", 9) == 0);
		/* /proc/self/exe, not its target: still valid if the file was rebuilt meanwhile */
		cur_link = bpf_program__attach_uprobe_opts(prog, getpid(), "/proc/self/exe", 0, &uo);
	} else if (!strcmp(opt.mode, "net")) {
		if (!strncmp(bpf_program__name(prog), "xdp", 3)) {
			err = bpf_xdp_attach(ifindex, fd, xdp_flags(), NULL);
			if (err)
				fprintf(stderr, "XDP attach (%s mode) to %s: %s\n", opt.xdp_mode, opt.ifname, strerror(-err));
		} else {
			err = setsockopt(rx_fd, SOL_SOCKET, SO_ATTACH_BPF, &fd, sizeof(fd));
			if (err)
				fprintf(stderr, "SO_ATTACH_BPF: %s\n", strerror(errno));
		}
		return err ? -1 : 0;
	} else {
		cur_link = bpf_program__attach(prog);
	}
	if (!cur_link) {
		fprintf(stderr, "attach %s: %s\n", bpf_program__name(prog), strerror(errno));
		return -1;
	}
	return 0;
}

static unsigned long long ring_samples, ring_lost;

/* Walk the records the kernel wrote into the ring buffer: samples, and samples it reports lost. */
static void count_ring(void)
{
	struct perf_event_mmap_page *meta = perf_ring;
	size_t page = sysconf(_SC_PAGESIZE), size = RING_PAGES * page;
	char *data = (char *)perf_ring + page;
	__u64 head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE), pos = meta->data_tail;

	ring_samples = ring_lost = 0;
	while (pos < head) {
		struct perf_event_header h;
		size_t off = pos % size;

		for (size_t i = 0; i < sizeof(h); i++) /* a header may wrap around the buffer's end */
			((char *)&h)[i] = data[(off + i) % size];
		if (!h.size)
			break;
		if (h.type == PERF_RECORD_SAMPLE) {
			ring_samples++;
		} else if (h.type == PERF_RECORD_LOST) { /* u64 id, u64 lost */
			__u64 lost = 0;

			for (size_t i = 0; i < sizeof(lost); i++)
				((char *)&lost)[i] = data[(off + sizeof(h) + 8 + i) % size];
			ring_lost += lost;
		}
		pos += h.size;
	}
}

static void set_pass(__u32 v)
{
	int zero = 0, off = bss_read("lab_pass");

	memcpy(bss_buf + off, &v, sizeof(v));
	if (bpf_map_update_elem(bpf_map__fd(bss_map), &zero, bss_buf, BPF_ANY))
		die(1, "writing lab_pass: %s", strerror(errno));
}

static int run_hooked(long ops, struct sample *s, unsigned long long *events);

/* perf mode: events counted by the program vs samples the kernel generated (its ring buffer). */
static void count_phase(long ops)
{
	for (int i = 0; i < opt.stats_trials; i++) {
		unsigned long long ev;
		struct sample s;

		set_pass(1);
		want_ring = 1;
		if (run_hooked(ops, &s, &ev))
			die(3, "attach failed during the count phase");
		want_ring = 0;
		set_pass(0);
		printf("{\"kind\":\"count\",\"prog\":\"%s\",\"trial\":%d,\"events\":%llu,\"samples\":%llu,"
		       "\"lost\":%llu,\"clock_ns\":%lld}\n", bpf_program__name(prog), i, ev, ring_samples, ring_lost,
		       last_clock_ns);
		fflush(stdout);
	}
}

static void detach(void)
{
	if (!strcmp(opt.mode, "net")) {
		int err, zero = 0;

		if (!strncmp(bpf_program__name(prog), "xdp", 3))
			err = bpf_xdp_detach(ifindex, xdp_flags(), NULL);
		else /* the kernel wants an int-sized optval even here (optlen 0 is EINVAL: still attached) */
			err = setsockopt(rx_fd, SOL_SOCKET, SO_DETACH_BPF, &zero, sizeof(zero)) ? -errno : 0;
		if (err)
			die(1, "detaching %s: %s", bpf_program__name(prog), strerror(-err));
		return;
	}
	if (perf_fd >= 0) { /* the clock this run consumed: expected samples = clock / period */
		long long v = 0;

		ioctl(perf_fd, PERF_EVENT_IOC_DISABLE, 0); /* no sample after this: counts stay consistent */
		if (read(perf_fd, &v, sizeof(v)) == sizeof(v))
			last_clock_ns = v;
		if (perf_ring) {
			count_ring();
			munmap(perf_ring, (RING_PAGES + 1) * sysconf(_SC_PAGESIZE));
			perf_ring = NULL;
		}
	}
	if (cur_link)
		bpf_link__destroy(cur_link); /* a perf link closes its perf fd too */
	else if (perf_fd >= 0)
		close(perf_fd);
	cur_link = NULL;
	perf_fd = -1;
}

/* A baseline trial, and the events the program counted meanwhile: 0, or it was not detached. */
static struct sample measure_baseline(long ops, unsigned long long *events)
{
	unsigned long long e0 = prog ? read_events() : 0;
	struct sample s = measure(ops);

	*events = prog ? read_events() - e0 : 0;
	return s;
}

static int run_hooked(long ops, struct sample *s, unsigned long long *events)
{
	unsigned long long e0 = prog ? read_events() : 0;

	if (attach())
		return -1;
	*s = measure(ops);
	detach();
	*events = prog ? read_events() - e0 : 0;
	return 0;
}

/* ---- setup per mode ---- */
static void enter_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || setns(fd, CLONE_NEWNET))
		die(1, "setns %s: %s", path, strerror(errno));
	close(fd);
}

static void setup_net(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(opt.port) };
	struct timeval tv = { .tv_sec = 2 };
	char pkt[64] = "warmup";

	if (!opt.netns_tx || !opt.netns_rx)
		die(1, "net mode needs --netns-tx and --netns-rx");
	if (inet_pton(AF_INET, opt.dst, &a.sin_addr) != 1)
		die(1, "bad --dst %s", opt.dst);
	enter_netns(opt.netns_tx);
	tx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (tx_fd < 0 || connect(tx_fd, (struct sockaddr *)&a, sizeof(a)))
		die(1, "tx socket: %s", strerror(errno));
	enter_netns(opt.netns_rx); /* stay here: XDP attaches over netlink in this namespace */
	rx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (rx_fd < 0 || bind(rx_fd, (struct sockaddr *)&a, sizeof(a)))
		die(1, "rx socket bound to %s:%d: %s", opt.dst, opt.port, strerror(errno));
	setsockopt(rx_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ifindex = if_nametoindex(opt.ifname);
	if (!ifindex)
		die(1, "no interface %s in %s", opt.ifname, opt.netns_rx);
	for (int i = 0; i < 5; i++) { /* resolves ARP; the first datagram may be dropped meanwhile */
		send(tx_fd, pkt, sizeof(pkt), 0);
		if (recv(rx_fd, pkt, sizeof(pkt), 0) > 0)
			return;
	}
	die(1, "no datagram arrives from %s to %s:%d", opt.netns_tx, opt.dst, opt.port);
}

/* perf mode: pick the loop length so one run takes about --ms milliseconds of this thread's CPU
 * time (what a per-task cpu-clock event samples; wall time would count other tasks running). */
static long calibrate(void)
{
	long n = 1000000;
	long long t;

	for (;;) {
		t = cpu_ns();
		sink = spin(n);
		t = cpu_ns() - t;
		if (t > 20000000LL)
			break;
		n *= 4;
	}
	return (long)((double)n * opt.ms * 1e6 / t);
}

static void stats_phase(long ops)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int sfd, pfd = bpf_program__fd(prog);

	sfd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (sfd < 0) {
		printf("{\"kind\":\"stats_error\",\"reason\":\"BPF_ENABLE_STATS: %s\"}\n", strerror(errno));
		return;
	}
	for (int i = 0; i < opt.stats_trials; i++) {
		unsigned long long t0, c0, ev;
		struct sample s;

		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		bpf_obj_get_info_by_fd(pfd, &info, &len);
		t0 = info.run_time_ns;
		c0 = info.run_cnt;
		if (run_hooked(ops, &s, &ev))
			die(3, "attach failed during the stats phase");
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		bpf_obj_get_info_by_fd(pfd, &info, &len);
		printf("{\"kind\":\"stats\",\"prog\":\"%s\",\"trial\":%d,\"run_time_ns\":%llu,\"run_cnt\":%llu,"
		       "\"events\":%llu,\"triggers\":%ld,\"hook_ns\":%lld,\"clock_ns\":%lld}\n",
		       bpf_program__name(prog), i, (unsigned long long)info.run_time_ns - t0,
		       (unsigned long long)info.run_cnt - c0, ev, ops, s.ns, last_clock_ns);
		fflush(stdout);
	}
	close(sfd); /* the kernel turns the stats off again when the last such fd closes */
}

/* Is `name` one of the comma-separated names in `list`? */
static int in_list(const char *name, const char *list)
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
static void perf_arm(const char *name, struct bpf_program *p, int with_event, int first)
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
static void perf_main(void)
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
