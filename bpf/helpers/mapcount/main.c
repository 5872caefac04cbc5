// SPDX-License-Identifier: GPL-2.0
/* mapcount: counts calls to the kernel functions that carry out BPF programs' map operations,
 * per function and per map (the tool suite's map-access phase, lab/agent/tools/mapaccess.py).
 *
 *   mapcount --obj mapcount.bpf.o --exclude-tgid PID... [--map-id ID]... --func NAME:ARG...
 *            [--mode auto|multi|kprobe]
 *
 * ARG: the 1-based argument of NAME that holds its struct bpf_map * (0: none); NAME:ARG:kprobe: a
 * function ftrace cannot hook (not in available_filter_functions, e.g. kernel/trace's
 * bpf_perf_event_output), given a kprobe of its own. --map-id: the tool's
 * maps (up to 16); calls on other maps are counted apart, calls by the processes PID (up to 8: the tools'
 * own bpf() syscalls) too. Attaches mapcount.bpf.o's program with one kprobe.multi link over every function
 * (the function's index as its cookie); where that is refused (--mode auto), one kprobe per function,
 * each refusal kept (the :kprobe ones always get their own). Then, per line read on stdin, prints a snapshot of the counts (read from the
 * mmap'ed .bss, no syscall) and, on end of input (or SIGINT/SIGTERM), detaches and exits 0.
 *
 * Output, one JSON object per line on stdout:
 *   {"kind":"attached","mode":"kprobe_multi"|"kprobe_multi+kprobe"|"kprobe","funcs":[names attached],
 *    "refused":{"name":"why",...},"multi_refused":"why"|null}
 *   {"kind":"snap","t_ns":T,"missed":N,"counts":{"name":{"ID":n,...,"other":n,"self":n}}}
 * missed: the program's recursion_misses (calls the kernel did not hand to it because another
 * kprobe/tracepoint program was running on that CPU). Exit 2: load refused; 3: nothing attached
 * (the kernel's/libbpf's text on stderr); 1: anything else. MAPCOUNT_DEBUG=1: libbpf's whole log
 * (the verifier's included) on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench.h"
#include "mapcount.h" /* struct mc_config, before the skeleton that uses it */
#include "mapcount.skel.h"

static char libbpf_log[8192];
static const char *names[MC_FUNCS];
static int single[MC_FUNCS];  /* NAME:ARG:kprobe: a function ftrace cannot hook (kprobe.multi cannot) */
static int nfuncs, nmaps, ntools;
static struct mc_config cfg;
static volatile sig_atomic_t stop;

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	size_t len = strlen(libbpf_log);

	if (getenv("MAPCOUNT_DEBUG")) {  /* libbpf's whole log, the verifier's included */
		va_list cp;

		va_copy(cp, ap);
		vfprintf(stderr, fmt, cp);
		va_end(cp);
	}
	if (level == LIBBPF_DEBUG || len > sizeof(libbpf_log) - 512)
		return 0;
	vsnprintf(libbpf_log + len, sizeof(libbpf_log) - len, fmt, ap);
	return 0;
}

/* the errno text and the last lines libbpf logged (its reason); the log is cleared */
static const char *why(int err, char *buf, size_t n)
{
	char *end = libbpf_log + strlen(libbpf_log), *from = libbpf_log;
	int lines = 0;

	while (end > libbpf_log && end[-1] == '\n')
		*--end = 0;
	for (char *p = end; p > libbpf_log; p--)
		if (p[-1] == '\n' && ++lines == 3) {
			from = p;
			break;
		}
	snprintf(buf, n, "%s%s%s", strerror(err < 0 ? -err : err), *from ? ": " : "", from);
	for (char *p = buf; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = ' ';
	libbpf_log[0] = 0;
	return buf;
}

/* The object with mapcount_kprobe, and with `multi` mapcount_multi too; NULL if that is refused. */
static struct mapcount *open_load(const char *path, int multi)
{
	struct mapcount *skel = mapcount__open();
	char buf[1024];
	int err;

	if (!skel)
		die(1, "open %s: %s", path, strerror(errno));
	bpf_program__set_autoload(skel->progs.mapcount_multi, multi);
	bpf_program__set_autoload(skel->progs.mapcount_kprobe, 1);
	skel->rodata->mc_cfg = cfg;
	err = mapcount__load(skel);
	if (err) {
		mapcount__destroy(skel);
		if (multi)
			return NULL;
		die(2, "load %s: %s", "mapcount_kprobe", why(err, buf, sizeof(buf)));
	}
	return skel;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"obj", 1, 0, 'o'}, {"exclude-tgid", 1, 0, 'x'}, {"map-id", 1, 0, 'm'}, {"func", 1, 0, 'f'},
		{"mode", 1, 0, 'M'}, {0, 0, 0, 0}};
	const char *objpath = NULL, *mode = "auto";
	struct bpf_link *links[MC_FUNCS] = {0}, *multi = NULL;
	char reasons[MC_FUNCS][512] = {{0}}, multi_why[512] = "";
	struct mapcount *obj = NULL;
	int c, used_multi = 0;
	size_t elf_size;
	const void *elf = mapcount__elf_bytes(&elf_size);

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'o') {
			objpath = optarg;
		} else if (c == 'x') {
			if (ntools < MC_TOOLS)
				cfg.exclude_tgid[ntools++] = (__u32)strtoul(optarg, NULL, 10);
		} else if (c == 'm') {
			if (nmaps < MC_MAPS)
				cfg.map_ids[nmaps++] = (__u32)strtoul(optarg, NULL, 10);
		} else if (c == 'f') {
			char *colon = strchr(optarg, ':');

			if (nfuncs >= MC_FUNCS)
				die(1, "at most %d functions", MC_FUNCS);
			if (colon) {
				*colon = 0;
				cfg.map_arg[nfuncs] = (__u8)atoi(colon + 1);
				single[nfuncs] = strstr(colon + 1, ":kprobe") != NULL;
			}
			names[nfuncs++] = optarg;
		} else if (c == 'M') {
			mode = optarg;
		} else {
			die(1, "usage: mapcount --obj O --exclude-tgid PID [--map-id ID].. --func NAME:ARG.. [--mode M]");
		}
	}
	if (!objpath || !nfuncs)
		die(1, "--obj and at least one --func are needed");
	check_obj(objpath, elf, elf_size);
	libbpf_set_print(print_libbpf);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	ensure_tracefs();

	if (strcmp(mode, "kprobe")) {  /* one kprobe.multi link over the ftrace-able ones, cookie = index */
		const char *msyms[MC_FUNCS];
		__u64 cookies[MC_FUNCS];
		int n = 0;

		for (int i = 0; i < nfuncs; i++)
			if (!single[i]) {
				msyms[n] = names[i];
				cookies[n++] = i;
			}
		obj = open_load(objpath, 1);
		if (!obj) {
			why(-EINVAL, multi_why, sizeof(multi_why));
		} else if (n) {
			LIBBPF_OPTS(bpf_kprobe_multi_opts, mo, .syms = msyms, .cnt = n, .cookies = cookies);
			multi = bpf_program__attach_kprobe_multi_opts(obj->progs.mapcount_multi, NULL, &mo);
			if (multi) {
				used_multi = 1;
			} else {
				why(-errno, multi_why, sizeof(multi_why));
				mapcount__destroy(obj);
				obj = NULL;
			}
		}
		if (!used_multi && !strcmp(mode, "multi"))
			die(3, "kprobe.multi refused: %s", multi_why);
	}
	if (!obj)
		obj = open_load(objpath, 0);
	{  /* one kprobe per remaining function, each with its index as cookie */
		int any = used_multi;
		struct bpf_program *p = obj->progs.mapcount_kprobe;

		for (int i = 0; i < nfuncs; i++) {
			LIBBPF_OPTS(bpf_kprobe_opts, ko, .bpf_cookie = i);

			if (used_multi && !single[i])
				continue;
			links[i] = bpf_program__attach_kprobe_opts(p, names[i], &ko);
			if (links[i])
				any = 1;
			else
				why(-errno, reasons[i], sizeof(reasons[i]));
		}
		if (!any)
			die(3, "no kprobe attached (kprobe.multi: %s; kprobe on %s: %s)",
			    *multi_why ? multi_why : "not tried", names[0], reasons[0]);
	}
	/* the counters, read through the skeleton's mapping of .bss (the kernel's own memory): reading
	 * them calls nothing */
	const volatile __u64 *counts = obj->bss->mc_counts;
	int pfd = bpf_program__fd(obj->progs.mapcount_kprobe);
	int mfd = used_multi ? bpf_program__fd(obj->progs.mapcount_multi) : -1;

	int singles = 0;

	for (int i = 0; i < nfuncs; i++)
		singles += links[i] != NULL;
	printf("{\"kind\":\"attached\",\"mode\":\"%s\",\"funcs\":[",
	       used_multi ? (singles ? "kprobe_multi+kprobe" : "kprobe_multi") : "kprobe");
	for (int i = 0, first = 1; i < nfuncs; i++)
		if ((used_multi && !single[i]) || links[i]) {
			printf("%s\"%s\"", first ? "" : ",", names[i]);
			first = 0;
		}
	printf("],\"refused\":{");
	for (int i = 0, first = 1; i < nfuncs; i++)
		if (!links[i] && !(used_multi && !single[i])) {
			printf("%s\"%s\":\"%s\"", first ? "" : ",", names[i], reasons[i]);
			first = 0;
		}
	if (*multi_why)
		printf("},\"multi_refused\":\"%s\"}\n", multi_why);
	else
		printf("},\"multi_refused\":null}\n");
	fflush(stdout);

	char line[256];

	while (!stop && fgets(line, sizeof(line), stdin)) {
		unsigned long long missed = 0;

		for (int k = 0; k < 2; k++) {
			struct bpf_prog_info info = {0};
			__u32 ilen = sizeof(info);
			int fd = k ? mfd : pfd;

			if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &ilen))
				missed += info.recursion_misses;
		}
		printf("{\"kind\":\"snap\",\"t_ns\":%lld,\"missed\":%llu,\"counts\":{", now_ns(), missed);
		for (int i = 0; i < nfuncs; i++) {
			const volatile __u64 *row = counts + (size_t)i * MC_SLOTS;

			printf("%s\"%s\":{", i ? "," : "", names[i]);
			for (int s = 0; s < nmaps; s++)
				printf("\"%u\":%llu,", cfg.map_ids[s], (unsigned long long)row[s]);
			printf("\"other\":%llu,\"self\":%llu}", (unsigned long long)row[MC_MAPS],
			       (unsigned long long)row[MC_MAPS + 1]);
		}
		printf("}}\n");
		fflush(stdout);
	}
	for (int i = 0; i < MC_FUNCS; i++)
		if (links[i])
			bpf_link__destroy(links[i]);
	if (multi)
		bpf_link__destroy(multi);
	mapcount__destroy(obj);
	return 0;
}
