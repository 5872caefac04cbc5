/* hookbench perf: hook_perf.bpf.o's programs on a sampling event (software cpu-clock or hardware
 * cycles, --freq), triggered by a CPU-bound loop. Per trial: base / none / each program's arm (see
 * main.c's header), then per program the bpf_stats phase and the count phase. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "hookbench.h"
#include "hook_perf.skel.h"

#define MAX_PROGS 4
#define RING_PAGES 256 /* data pages; 8-byte sample records: 262144 samples per run */

static struct hook_perf *skel;
static struct bpf_program *progs[MAX_PROGS]; /* the programs of --prog (none: 0) */
static int nprogs;
static struct bpf_link *cur_link;
static int perf_fd = -1;
static void *ring;      /* count phase: the event's ring buffer (NULL otherwise) */
static int want_ring;   /* count phase: map a ring buffer so the kernel records each sample */
static unsigned long long ring_samples, ring_lost;
static volatile unsigned long long sink;

static void perf_validate(const struct hb_args *a)
{
	if (a->samples < 1)
		die(1, "need --samples >= 1");
}

static void perf_setup(struct hb_ctx *c)
{
	skel = OPEN_SKEL(hook_perf, c);
	nprogs = pick_progs(skel->obj, c->args, 1, progs, MAX_PROGS);
	if (nprogs) /* else --prog none: sampling without a program only */
		LOAD_SKEL(skel, c);
}

static int perf_attach(struct hb_ctx *c)
{
	const struct hb_args *o = c->args;
	struct perf_event_attr a = { .size = sizeof(a), .disabled = 1 }; /* on once attached */

	if (!strcmp(o->event, "hw")) {
		a.type = PERF_TYPE_HARDWARE;
		a.config = PERF_COUNT_HW_CPU_CYCLES;
		a.freq = 1;
		a.sample_freq = o->freq;
	} else { /* cpu-clock counts ns: a fixed period gives exactly freq samples per second */
		a.type = PERF_TYPE_SOFTWARE;
		a.config = PERF_COUNT_SW_CPU_CLOCK;
		a.sample_period = 1000000000ULL / o->freq;
	}
	perf_fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (perf_fd < 0) {
		fprintf(stderr, "perf_event_open(%s, %d Hz): %s\n",
			strcmp(o->event, "hw") ? "software cpu-clock" : "hardware cycles", o->freq, strerror(errno));
		return -1;
	}
	if (want_ring) {
		ring = mmap(NULL, (RING_PAGES + 1) * sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED,
			    perf_fd, 0);
		if (ring == MAP_FAILED) {
			ring = NULL;
			fprintf(stderr, "mmap of the perf ring buffer: %s\n", strerror(errno));
			return -1;
		}
	}
	if (!c->prog) /* the baseline event of --prog none: sampling without a program */
		return ioctl(perf_fd, PERF_EVENT_IOC_ENABLE, 0);
	cur_link = bpf_program__attach_perf_event(c->prog, perf_fd); /* libbpf enables it after attaching */
	return link_ok(c->prog, cur_link);
}

/* Walk the records the kernel wrote into the ring buffer: samples, and samples it reports lost. */
static void count_ring(void)
{
	struct perf_event_mmap_page *meta = ring;
	size_t page = sysconf(_SC_PAGESIZE), size = RING_PAGES * page;
	char *data = (char *)ring + page;
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

static void perf_detach(struct hb_ctx *c)
{
	if (perf_fd >= 0) { /* the clock this run consumed: expected samples = clock / period */
		long long v = 0;

		ioctl(perf_fd, PERF_EVENT_IOC_DISABLE, 0); /* no sample after this: counts stay consistent */
		if (read(perf_fd, &v, sizeof(v)) == sizeof(v))
			c->clock_ns = v;
		if (ring) {
			count_ring();
			munmap(ring, (RING_PAGES + 1) * sysconf(_SC_PAGESIZE));
			ring = NULL;
		}
	}
	if (cur_link)
		bpf_link__destroy(cur_link); /* a perf cur_link closes its perf fd too */
	else if (perf_fd >= 0)
		close(perf_fd);
	cur_link = NULL;
	perf_fd = -1;
}

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

static void perf_trigger(const struct hb_args *a, long ops)
{
	sink = spin(ops);
}

/* Pick the loop length so one run takes about --ms milliseconds of this thread's CPU time (what a
 * per-task cpu-clock event samples; wall time would count other tasks running). */
static long calibrate(const struct hb_args *a)
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
	return (long)((double)n * a->ms * 1e6 / t);
}

/* The program lets each sample through to the ring buffer too (lab_pass = 1) or not (0). */
static void set_pass(__u32 v)
{
	skel->bss->lab_pass = v;
}

/* Events counted by the program vs samples the kernel generated (its ring buffer). */
static void count_phase(struct hb_ctx *c, long ops)
{
	for (int i = 0; i < c->args->stats_trials; i++) {
		unsigned long long ev;
		struct sample s;

		set_pass(1);
		want_ring = 1;
		if (run_hooked(c, ops, &s, &ev))
			die(3, "attach failed during the count phase");
		want_ring = 0;
		set_pass(0);
		printf("{\"kind\":\"count\",\"prog\":\"%s\",\"trial\":%d,\"events\":%llu,\"samples\":%llu,"
		       "\"lost\":%llu,\"clock_ns\":%lld}\n", bpf_program__name(c->prog), i, ev, ring_samples, ring_lost,
		       c->clock_ns);
		fflush(stdout);
	}
}

/* One arm of a perf trial: no event (base), the event alone (none, p NULL) or with a program. */
static void perf_arm(struct hb_ctx *c, const char *name, struct bpf_program *p, int with_event, int first)
{
	unsigned long long ev = 0, e0;
	struct sample s;

	c->prog = p;
	c->clock_ns = 0;
	e0 = read_events(c);
	if (!with_event) {
		s = measure(c, c->args->ops);
	} else {
		if (c->mode->attach(c))
			die(3, "attach failed (%s)", name);
		s = measure(c, c->args->ops);
		c->mode->detach(c);
	}
	ev = read_events(c) - e0;
	printf("%s{\"arm\":\"%s\",\"ns\":%lld,\"cpu_ns\":%lld,\"count\":%lld,\"events\":%llu}", first ? "" : ",",
	       name, s.ns, s.cpu, with_event ? c->clock_ns : 0, ev);
}

/* base / none / each program per trial, sized by samples (see main.c's header). */
static void perf_measure(struct hb_ctx *c)
{
	struct hb_args *o = c->args;
	long calib_ops;
	unsigned long long ev = 0;
	struct sample s;
	long long period = strcmp(o->event, "hw") ? 1000000000LL / o->freq : 0;

	/* loop length for samples / freq seconds of CPU, then corrected by a calibration run's
	 * samples per iteration (a late timer, e.g. under emulation, delivers fewer) */
	o->ms = (int)(1000.0 * o->samples / o->freq) + 1;
	o->ops = calibrate(o);
	calib_ops = o->ops / 5 + 1; /* ~200 samples: the rate estimate is within a few % */
	c->prog = nprogs ? progs[0] : NULL;
	if (run_hooked(c, calib_ops, &s, &ev))
		die(3, "attaching %s refused", c->prog ? bpf_program__name(c->prog) : "the perf event");
	if (c->prog && ev >= 20)
		o->ops = (long)(1.15 * o->samples * (double)calib_ops / ev) + 1;
	else
		o->ops = (long)(1.15 * o->ops) + 1;
	printf("{\"kind\":\"setup\",\"prog\":\"%s\",\"mode\":\"perf\",\"ops\":%ld,\"clk_tck\":%ld,"
	       "\"period_ns\":%lld,\"samples_target\":%d,\"calib_ops\":%ld,\"calib_events\":%llu,\"progs\":[",
	       o->prog, o->ops, sysconf(_SC_CLK_TCK), period, o->samples, calib_ops, c->prog ? ev : 0ULL);
	for (int i = 0; i < nprogs; i++)
		printf("%s\"%s\"", i ? "," : "", bpf_program__name(progs[i]));
	printf("]}\n");

	for (int t = 0; t < o->trials; t++) {
		int narms = 2 + nprogs, fwd = t % 2 == 0;

		printf("{\"kind\":\"ptrial\",\"trial\":%d,\"order\":\"%s\",\"arms\":[", t, fwd ? "fwd" : "rev");
		for (int k = 0; k < narms; k++) {
			int a = fwd ? k : narms - 1 - k;

			if (a == 0)
				perf_arm(c, "base", NULL, 0, k == 0);
			else if (a == 1)
				perf_arm(c, "none", NULL, 1, k == 0);
			else
				perf_arm(c, bpf_program__name(progs[a - 2]), progs[a - 2], 1, k == 0);
		}
		printf("]}\n");
		fflush(stdout);
	}
	/* body time (bpf_stats) and the independent sample count, per program, on shorter runs */
	o->ops = o->ops / 5 + 1;
	for (int i = 0; i < nprogs && o->stats_trials > 0; i++) {
		c->prog = progs[i];
		stats_phase(c, o->ops);
		count_phase(c, o->ops);
	}
}

static void perf_teardown(struct hb_ctx *c)
{
	hook_perf__destroy(skel);
}

const struct hb_mode hb_perf = {
	.name = "perf",
	.validate = perf_validate,
	.setup = perf_setup,
	.attach = perf_attach,
	.detach = perf_detach,
	.trigger = perf_trigger,
	.measure = perf_measure,
	.teardown = perf_teardown,
};
