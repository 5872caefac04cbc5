/* hookbench openlat: the open path's latency per call, not only its mean. hook_open.bpf.o's program
 * (or --prog none: no program, the tool suite's latency workload) on openat()+close() of --path, in a
 * loop that reads CLOCK_MONOTONIC once per call: call i's latency is t[i] - t[i-1], from the end of
 * the call before (when this one could start) to its own end, so a stall between two calls is in the
 * next call's latency and no interval of the loop goes unseen (a closed loop's coordinated omission,
 * the time it was not issuing, is thus counted). One clock read per call (vDSO, ~20 ns) is inside
 * every latency, on both arms alike.
 *
 * Per trial, ABBA like the other modes (A = no program, B = attached; even trials AB, odd BA), one
 * record per arm with every call's latency in ns:
 *   {"kind":"lat","trial":i,"order":"AB"|"BA","arm":"base"|"hook","events":..,"triggers":..,"ns":[...]}
 * ("events": the program's runs during that arm: 0 on base, or it was not detached). --prog none:
 * base arms only. The agent computes each arm's percentiles (lab/agent/latency/quantiles.py). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "hookbench.h"
#include "hook_open.skel.h"

static struct hook_open *skel;
static struct bpf_link *cur_link;
static long long *lat;

static void openlat_setup(struct hb_ctx *c)
{
	ensure_tracefs();
	skel = OPEN_SKEL(hook_open, c);
	if (pick_progs(skel->obj, c->args, 0, &c->prog, 1)) /* else --prog none: base arms only */
		LOAD_SKEL(skel, c);
	lat = calloc(c->args->ops, sizeof(*lat));
	if (!lat)
		die(1, "no memory for %ld latencies", c->args->ops);
}

static int openlat_attach(struct hb_ctx *c)
{
	cur_link = bpf_program__attach(c->prog);
	return link_ok(c->prog, cur_link);
}

static void openlat_detach(struct hb_ctx *c)
{
	bpf_link__destroy(cur_link);
	cur_link = NULL;
}

/* ops calls, each latency into lat[] */
static void openlat_trigger(const struct hb_args *a, long ops)
{
	long long prev = now_ns();

	for (long i = 0; i < ops; i++) {
		int fd = openat(AT_FDCWD, a->path, O_RDONLY);
		long long t;

		if (fd < 0)
			die(1, "open %s: %s", a->path, strerror(errno));
		close(fd);
		t = now_ns();
		lat[i] = t - prev;
		prev = t;
	}
}

static void print_arm(int t, int ab, const char *arm, unsigned long long events, long ops)
{
	printf("{\"kind\":\"lat\",\"trial\":%d,\"order\":\"%s\",\"arm\":\"%s\",\"events\":%llu,\"triggers\":%ld,\"ns\":[",
	       t, ab ? "AB" : "BA", arm, events, ops);
	for (long i = 0; i < ops; i++)
		printf(i ? ",%lld" : "%lld", lat[i]);
	printf("]}\n");
	fflush(stdout);
}

static void openlat_measure(struct hb_ctx *c)
{
	const struct hb_args *a = c->args;
	struct sample s;
	unsigned long long ev = 0;

	if (c->prog && run_hooked(c, a->ops / 10 + 1, &s, &ev)) /* the kernel takes it; warm-up */
		die(3, "attaching %s refused", a->prog);
	measure(c, a->ops / 10 + 1);
	printf("{\"kind\":\"setup\",\"prog\":\"%s\",\"mode\":\"openlat\",\"ops\":%ld,\"warmup_events\":%llu}\n",
	       a->prog, a->ops, ev);
	for (int t = 0; t < a->trials; t++) {
		int ab = (t % 2) == 0;

		for (int side = 0; side < 2; side++) {
			int hooked = (side == 0) != ab; /* AB: base then hook; BA: hook then base */

			if (hooked && !c->prog)
				continue;
			if (hooked) {
				if (run_hooked(c, a->ops, &s, &ev))
					die(3, "attach failed at trial %d", t);
			} else {
				s = measure_baseline(c, a->ops, &ev);
			}
			print_arm(t, ab, hooked ? "hook" : "base", ev, a->ops);
		}
	}
}

static void openlat_teardown(struct hb_ctx *c)
{
	hook_open__destroy(skel);
	free(lat);
}

const struct hb_mode hb_openlat = {
	.name = "openlat",
	.setup = openlat_setup,
	.attach = openlat_attach,
	.detach = openlat_detach,
	.trigger = openlat_trigger,
	.measure = openlat_measure,
	.teardown = openlat_teardown,
};
