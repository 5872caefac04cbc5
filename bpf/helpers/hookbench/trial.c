/* hookbench, the harness's timed runs: the trigger loop with and without the program attached, the
 * clocks of one run, and the bpf_stats phase. A mode is reached only through its callbacks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "bench.h"
#include "hookbench.h"

static int stat_fd = -1; /* /proc/self/stat, opened once: an open() per run would count as a trigger */

static long long stime_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_stime.tv_sec * 1000000000LL + ru.ru_stime.tv_usec * 1000LL;
}

/* Kernel-mode time in clock ticks, field 15 of /proc/self/stat: what the talk measured. */
static long long stime_jiffies(void)
{
	char buf[1024], *p;
	long long v = -1;
	int n, field = 3;

	n = stat_fd < 0 ? -1 : pread(stat_fd, buf, sizeof(buf) - 1, 0);
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

void trial_init(void)
{
	stat_fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
}

/* The program's lab_events, read from the mapped .bss (between runs only); 0 when nothing is loaded. */
unsigned long long read_events(const struct hb_ctx *c)
{
	return c->events ? *c->events : 0;
}

struct sample measure(struct hb_ctx *c, long ops)
{
	struct sample s;
	long long j0 = stime_jiffies(), s0 = stime_ns(), c0 = cpu_ns(), t0 = now_ns();

	c->mode->trigger(c->args, ops);
	s.ns = now_ns() - t0;
	s.cpu = cpu_ns() - c0;
	s.stime = stime_ns() - s0;
	s.jiffies = stime_jiffies() - j0;
	return s;
}

/* A baseline trial, and the events the program counted meanwhile: 0, or it was not detached. */
struct sample measure_baseline(struct hb_ctx *c, long ops, unsigned long long *events)
{
	unsigned long long e0 = read_events(c);
	struct sample s = measure(c, ops);

	*events = read_events(c) - e0;
	return s;
}

int run_hooked(struct hb_ctx *c, long ops, struct sample *s, unsigned long long *events)
{
	unsigned long long e0 = read_events(c);

	if (c->mode->attach(c))
		return -1;
	*s = measure(c, ops);
	c->mode->detach(c);
	*events = read_events(c) - e0;
	return 0;
}

/* Body time: hooked runs with the kernel's BPF stats on (they add two clock reads to every run). */
void stats_phase(struct hb_ctx *c, long ops)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int sfd, pfd = bpf_program__fd(c->prog);

	sfd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (sfd < 0) {
		printf("{\"kind\":\"stats_error\",\"reason\":\"BPF_ENABLE_STATS: %s\"}\n", strerror(errno));
		return;
	}
	for (int i = 0; i < c->args->stats_trials; i++) {
		unsigned long long t0, c0, ev;
		struct sample s;

		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		bpf_obj_get_info_by_fd(pfd, &info, &len);
		t0 = info.run_time_ns;
		c0 = info.run_cnt;
		if (run_hooked(c, ops, &s, &ev))
			die(3, "attach failed during the stats phase");
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		bpf_obj_get_info_by_fd(pfd, &info, &len);
		printf("{\"kind\":\"stats\",\"prog\":\"%s\",\"trial\":%d,\"run_time_ns\":%llu,\"run_cnt\":%llu,"
		       "\"events\":%llu,\"triggers\":%ld,\"hook_ns\":%lld,\"clock_ns\":%lld}\n",
		       bpf_program__name(c->prog), i, (unsigned long long)info.run_time_ns - t0,
		       (unsigned long long)info.run_cnt - c0, ev, ops, s.ns, c->clock_ns);
		fflush(stdout);
	}
	close(sfd); /* the kernel turns the stats off again when the last such fd closes */
}
