/* Small helpers shared by the hook suite's C helpers (hookbench/, batchbench.c): fatal errors with
 * an exit code the agent maps to a row status, the two clocks they time with, and a private tracefs
 * mount for libbpf. Header-only (static inline: included by every part of a helper); the .c
 * file defines _GNU_SOURCE before including anything. */
#ifndef BENCHUTIL_H
#define BENCHUTIL_H

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

/* Message on stderr, then exit: 2 = load refused, 3 = attach refused, 1 = anything else. */
static inline void die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static inline long long clock_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline long long now_ns(void)
{
	return clock_of(CLOCK_MONOTONIC);
}

/* This thread's CPU time: unlike wall time, blind to other tasks running on our CPU. */
static inline long long cpu_ns(void)
{
	return clock_of(CLOCK_THREAD_CPUTIME_ID);
}

/* libbpf finds tracepoint ids (and legacy kprobes) in tracefs; mount it privately if the system has
 * not, in a mount namespace of our own that dies with this process. */
static inline void ensure_tracefs(void)
{
	if (!access("/sys/kernel/tracing/events", F_OK) || !access("/sys/kernel/debug/tracing/events", F_OK))
		return;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL))
		fprintf(stderr, "warning: cannot mount tracefs privately: %s\n", strerror(errno));
}

#endif /* BENCHUTIL_H */
