/* batchbench's interface between its harness (main.c: options, the table of triggers, the skeleton,
 * the trials) and its parts: block.c times blocks of driver runs with and without the program;
 * stats.c looks at what else runs on the same hooks and runs the bpf_stats phase. Dependencies
 * point main -> stats -> block, never back. */
#ifndef BATCHBENCH_H
#define BATCHBENCH_H

#include <linux/types.h>
#include <bpf/libbpf.h>

#define LAB_CPUS 256 /* the per-CPU counters of hook_batch.bpf.c */

struct bb_args {
	const char *obj, *prog, *trigger;
	int trials, stats_trials, block_ms, baseline_only, probe_ms;
	long batch;
	unsigned long long mark_id; /* nonzero: mark each measured block for the QEMU event-count plugin */
	const char *exc;            /* "class:hexaddr,..." exception and interrupt entry points to send it */
	int kprobe_off;             /* attach the kprobe off its function's ftrace site (kprobes.c) */
	const char *func;           /* the function the kprobes attach to (bpf_get_numa_node_id) */
};

struct block {
	long long ns, cpu, insns; /* insns: the CPU's retired instructions (PMU), -1 where not offered */
	unsigned long long events, calls;
};

/* One run of the helper: the loaded object and what the blocks need of it. */
struct bb_ctx {
	const struct bb_args *args;
	struct bpf_object *obj;
	struct bpf_program *prog;          /* the program under test (NULL: --baseline-only) */
	int driver_fd, count_fd;           /* the trigger's driver and driver_count (-1: getpgid) */
	const volatile __u64 *cpu_events;  /* skel->bss->lab_cpu_events: the hook programs' runs */
	const volatile __u64 *cpu_counts;  /* skel->bss->lab_cpu_counts: driver_count's own count */
	long runs;                         /* driver runs per block */
	unsigned long long stats_runs;     /* runs of prog the kernel's BPF stats counted in the last hooked block */
	int hw_fd;                         /* the PMU's retired-instructions counter, -1: not offered */
	char hw_why[200];                  /* why not */
	int mark_block;                    /* the block run_block_of marks (0 bare, 1 hooked, 2 count), -1 none */
	char mechanism[120];               /* kprobes: how the kernel placed it, read while attached */
	int offset;                        /* kprobes off the ftrace site: the offset taken */
};

/* block.c */
void open_hw_insns(struct bb_ctx *c);
void run_once(const struct bb_ctx *c, int fd);
struct block run_block_of(struct bb_ctx *c, int fd, long n);
struct block run_block(struct bb_ctx *c, long n);
struct block hooked_block(struct bb_ctx *c, long n);
long calibrate(struct bb_ctx *c);
void prog_stats(const struct bpf_program *p, unsigned long long *time_ns, unsigned long long *cnt);

void send_marks(const struct bb_ctx *c);

/* kprobes.c */
void kprobe_mechanism(const char *func, char *out, size_t len);
struct bpf_link *attach_off_ftrace(struct bpf_program *prog, const char *func, int *offset, char *mech, size_t len);

/* stats.c */
int foreign_programs(const struct bb_ctx *c);
void stats_phase(struct bb_ctx *c);

#endif /* BATCHBENCH_H */
