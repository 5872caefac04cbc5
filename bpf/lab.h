/* Shared definitions for the lab's BPF programs (one experiment per *.bpf.c). */
#ifndef LAB_H
#define LAB_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

/* ---- Hook suite (bpf/hook*.bpf.c define LAB_HOOK before including this header) ----------------
 * Every hook program runs the same code: a filter to the benchmark process (its tgid is written
 * into .rodata by the helper before load), then either only the event count ("empty" variant),
 * the talk's body (record PID and process name in a hash map keyed by PID, then count: "body"),
 * or a deliberately expensive body (a bounded loop of map updates: "heavy", the sanity check).
 * The count lives in .bss; the helper reads it through the mmap'ed map after each trial.
 */
#ifdef LAB_HOOK
#define LAB_HEAVY_UPDATES 64

struct lab_task_rec {
	__u32 pid;
	__u32 tgid;
	char comm[16];
};

const volatile __u32 lab_target_tgid = 0;
__u64 lab_events = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct lab_task_rec);
} lab_tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LAB_HEAVY_UPDATES);
	__type(key, __u32);
	__type(value, __u64);
} lab_heavy SEC(".maps");

static __always_inline int lab_mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == lab_target_tgid;
}

static __always_inline void lab_count(void)
{
	__sync_fetch_and_add(&lab_events, 1);
}

/* The talk's body: PID and process name into a map keyed by PID. */
static __always_inline void lab_record(void)
{
	struct lab_task_rec rec = {};
	__u64 id = bpf_get_current_pid_tgid();

	rec.pid = (__u32)id;
	rec.tgid = id >> 32;
	bpf_get_current_comm(&rec.comm, sizeof(rec.comm));
	bpf_map_update_elem(&lab_tasks, &rec.pid, &rec, BPF_ANY);
}

/* The expensive body: LAB_HEAVY_UPDATES hash-map updates in a bounded loop. */
static __always_inline void lab_heavy_body(void)
{
	for (__u32 i = 0; i < LAB_HEAVY_UPDATES; i++) {
		__u32 k = i;
		__u64 v = i;

		bpf_map_update_elem(&lab_heavy, &k, &v, BPF_ANY);
	}
}

/* One program per (hook, variant): NAME_empty, NAME_body, NAME_heavy share the filter. */
#define LAB_FILTER_EMPTY()  do { if (!lab_mine()) return 0; lab_count(); } while (0)
#define LAB_FILTER_BODY()   do { if (!lab_mine()) return 0; lab_record(); lab_count(); } while (0)
#define LAB_FILTER_HEAVY()  do { if (!lab_mine()) return 0; lab_record(); lab_heavy_body(); lab_count(); } while (0)
#endif /* LAB_HOOK */

#endif /* LAB_H */
