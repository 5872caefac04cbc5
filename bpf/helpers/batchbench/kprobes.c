/* batchbench, kprobes: how the kernel placed a kprobe (the talk's int3 is one of three ways), and a
 * kprobe off the function's ftrace site. /sys/kernel/debug/kprobes/list flags each probe [FTRACE]
 * (on the function's ftrace call site, KPROBES_ON_FTRACE: no trap), [OPTIMIZED] (an int3 replaced by a
 * jump, CONFIG_OPTPROBES) or neither (an int3: a breakpoint exception on every hit). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "bench.h"
#include "batchbench.h"

#define KPROBES_LIST "/sys/kernel/debug/kprobes/list"

static void ensure_debugfs(void)
{
	if (!access(KPROBES_LIST, R_OK))
		return;
	/* in a private mount namespace, as ensure_tracefs does: nothing changes outside this process */
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL))
		fprintf(stderr, "warning: cannot mount debugfs privately: %s\n", strerror(errno));
}

/* The mechanism of the kprobes on `func` now attached: "ftrace", "optimized", "int3", or why not known. */
void kprobe_mechanism(const char *func, char *out, size_t len)
{
	char line[512];
	FILE *f;
	int found = 0;

	ensure_debugfs();
	f = fopen(KPROBES_LIST, "r");
	if (!f) {
		snprintf(out, len, "unknown (%s: %s)", KPROBES_LIST, strerror(errno));
		return;
	}
	snprintf(out, len, "none listed");
	while (fgets(line, sizeof(line), f)) {
		char *at = strstr(line, func);
		if (!at || (at[strlen(func)] != '+' && at[strlen(func)] != ' ' && at[strlen(func)] != '\n'))
			continue;
		found = 1;
		snprintf(out, len, "%s", strstr(line, "[FTRACE]") ? "ftrace" : strstr(line, "[OPTIMIZED]") ? "optimized"
					: strstr(line, "[DISABLED]") ? "disabled" : "int3");
		break;
	}
	fclose(f);
	(void)found;
}

/* Attach `prog` as a kprobe at the first instruction boundary past the function's ftrace site: try
 * offsets 1..48, skip those the kernel refuses (not an instruction boundary: EILSEQ) and those it
 * places on ftrace; *offset is the one taken. */
struct bpf_link *attach_off_ftrace(struct bpf_program *prog, const char *func, int *offset, char *mech, size_t len)
{
	for (int off = 1; off <= 48; off++) {
		LIBBPF_OPTS(bpf_kprobe_opts, o, .offset = (size_t)off);
		struct bpf_link *l = bpf_program__attach_kprobe_opts(prog, func, &o);

		if (!l)
			continue;
		kprobe_mechanism(func, mech, len);
		if (strcmp(mech, "ftrace")) {
			*offset = off;
			return l;
		}
		bpf_link__destroy(l);
	}
	die(3, "no offset in %s+1..48 takes a kprobe off its ftrace site", func);
	return NULL;
}
