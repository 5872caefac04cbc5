// SPDX-License-Identifier: GPL-2.0
/* The helpers' shared functions (see bench.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "bench.h"

void die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

long long clock_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long long now_ns(void)
{
	return clock_of(CLOCK_MONOTONIC);
}

long long cpu_ns(void)
{
	return clock_of(CLOCK_THREAD_CPUTIME_ID);
}

void ensure_tracefs(void)
{
	if (!access("/sys/kernel/tracing/events", F_OK) || !access("/sys/kernel/debug/tracing/events", F_OK))
		return;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL))
		fprintf(stderr, "warning: cannot mount tracefs privately: %s\n", strerror(errno));
}

static int print_quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, args);
}

void libbpf_quiet(void)
{
	libbpf_set_print(print_quiet);
}

void check_obj(const char *path, const void *elf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	ssize_t got = -1;

	if (fd >= 0 && !fstat(fd, &st) && (size_t)st.st_size == size && (buf = malloc(size ? size : 1)))
		got = pread(fd, buf, size, 0);
	if (fd < 0)
		die(1, "open %s: %s", path, strerror(errno));
	close(fd);
	if (got != (ssize_t)size || memcmp(buf, elf, size))
		die(1, "%s is not the object this helper was built with (rebuild: make -C bpf)", path);
	free(buf);
}
