// SPDX-License-Identifier: GPL-2.0
/* LD_PRELOAD shim for the tool suite: the verifier's own time for a tool's real programs.
 *
 * libbpf (linked into each libbpf-tools binary) loads programs with syscall(__NR_bpf,
 * BPF_PROG_LOAD, ...) through glibc's syscall(). Where the loader passes no log of its own, this
 * adds log_level BPF_LOG_STATS (4) with a buffer of ours (the kernel then prints only its
 * statistics: "processed N insns ...", "verification time N usec"), restores the loader's fields
 * after the call and appends one line per load to $LAB_VERIFIER_OUT:
 *     prog_name <TAB> verification usec <TAB> processed insns <TAB> load syscall usec <TAB> result
 * (result: the fd, or -errno). Without LAB_VERIFIER_OUT it only forwards. A kernel that refuses
 * the stats level (EINVAL) gets the loader's attributes unchanged. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef long (*syscall_fn)(long, ...);
static char logbuf[1 << 16];

static long real(long nr, long a, long b, long c, long d, long e, long f)
{
	static syscall_fn next;

	if (!next)
		next = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
	return next(nr, a, b, c, d, e, f);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static unsigned long long after(const char *log, const char *key)
{
	const char *p = strstr(log, key);

	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

long syscall(long nr, ...)
{
	const char *out = getenv("LAB_VERIFIER_OUT");
	long a[6], ret;
	union bpf_attr *attr;
	unsigned long size;
	int err;
	va_list ap;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	attr = (union bpf_attr *)a[1];
	size = (unsigned long)a[2];
	if (nr != SYS_bpf || a[0] != BPF_PROG_LOAD || !out || !attr ||
	    size < offsetof(union bpf_attr, prog_name) + sizeof(attr->prog_name) || attr->log_level || attr->log_buf)
		return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);

	logbuf[0] = 0;
	attr->log_level = 4; /* BPF_LOG_STATS */
	attr->log_buf = (unsigned long)logbuf;
	attr->log_size = sizeof(logbuf);
	double t0 = now_us();
	ret = real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	double t1 = now_us();
	err = errno;
	attr->log_level = 0;
	attr->log_buf = 0;
	attr->log_size = 0;
	if (ret < 0 && err == EINVAL && !logbuf[0]) { /* the stats level refused: load as the loader asked */
		ret = real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		err = errno;
	}
	FILE *f = fopen(out, "a");
	if (f) {
		char name[sizeof(attr->prog_name) + 1] = {0};

		memcpy(name, attr->prog_name, sizeof(attr->prog_name));
		fprintf(f, "%s\t%llu\t%llu\t%.1f\t%ld\n", name, after(logbuf, "verification time "),
			after(logbuf, "processed "), t1 - t0, ret < 0 ? -(long)err : ret);
		fclose(f);
	}
	errno = err;
	return ret;
}
