/* What every helper in bpf/helpers/ shares (common/bench.c): the one fatal-error exit with the code the
 * agent maps to a row status, the clocks the helpers time with, a private tracefs mount for libbpf,
 * libbpf's messages without its debug level, and the check that the object named by --obj is the one
 * built into the helper (every helper reaches its BPF object through a bpftool skeleton). */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <time.h>

/* Message on stderr, then exit: 2 = load refused, 3 = attach refused, 1 = anything else. */
void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

long long clock_of(clockid_t id);
/* CLOCK_MONOTONIC, ns */
long long now_ns(void);
/* This thread's CPU time: unlike wall time, blind to other tasks running on our CPU. */
long long cpu_ns(void);

/* libbpf finds tracepoint ids (and legacy kprobes) in tracefs; mount it privately if the system has
 * not, in a mount namespace of our own that dies with this process. */
void ensure_tracefs(void);

/* libbpf's warnings and info on stderr, its debug messages dropped */
void libbpf_quiet(void);

/* The helpers run the object their skeleton embeds; --obj names the file the agent pushed beside
 * them, which must be that same object (exit 1 otherwise: a stale build). */
void check_obj(const char *path, const void *elf, size_t size);

#endif /* BENCH_H */
