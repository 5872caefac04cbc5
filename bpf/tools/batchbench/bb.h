/* batchbench's state and functions shared by its parts (main.c: options, blocks, the trial loop;
 * stats.c: other runs on the same hooks, the bpf_stats phase, --stats-probe). */
#ifndef BB_H
#define BB_H

#include <stddef.h>
#include <bpf/libbpf.h>

struct bb_opt {
	const char *obj, *prog, *trigger;
	int trials, stats_trials, block_ms, baseline_only, probe_ms;
	long batch;
};

struct block {
	long long ns, cpu, insns; /* insns: the CPU's retired instructions (PMU), -1 where not offered */
	unsigned long long events, calls;
};

extern struct bb_opt opt;
extern struct bpf_object *obj;
extern struct bpf_program *prog; /* the program under test (stats_probe: driver_helper) */
extern long runs;                /* driver runs per block */
extern unsigned long long stats_runs;

void *global_ptr(const char *sec, const char *var, size_t sz, struct bpf_map **mapp);
void run_once(int fd);
struct block hooked_block(long n);
int foreign_programs(void);
void prog_stats(unsigned long long *time_ns, unsigned long long *cnt);
void stats_phase(void);
int stats_probe(void);

#endif
