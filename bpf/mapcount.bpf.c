// SPDX-License-Identifier: GPL-2.0
/* Map access of a tool's programs, counted: one kprobe.multi (or one kprobe per function, where
 * kprobe.multi is refused) on the kernel functions that carry out map operations for BPF programs
 * (__htab_map_lookup_elem, htab_map_update_elem, bpf_perf_event_output, ...; the list and what each
 * means live in lab/agent/tools/mapaccess.py). The attach cookie is the function's index. Per call, the
 * map it operates on (the function's map argument, struct bpf_map's id read with CO-RE) picks a
 * slot: one of the tool's maps (mc_cfg.map_ids), any other map, or "the tool's own process" when
 * the current tgid is one of mc_cfg.exclude_tgid (its bpf() syscalls reading maps: already in its
 * utime+stime). Counts live in .bss (a plain array: no map helper of our own, so nothing here
 * calls a traced function); the helper bpf/helpers/mapcount/ reads them through its skeleton.
 */
#include "lab.h"
#include "helpers/mapcount.h"

const volatile struct mc_config mc_cfg = {};
__u64 mc_counts[MC_FUNCS * MC_SLOTS] = {};

static __always_inline int mc_count(struct pt_regs *ctx)
{
	__u64 f = bpf_get_attach_cookie(ctx);
	/* both candidate arguments read first: the verifier refuses a context read at a variable offset */
	unsigned long a1 = PT_REGS_PARM1(ctx), a2 = PT_REGS_PARM2(ctx);
	__u32 slot = MC_OTHER, id = 0;
	struct bpf_map *map = NULL;

	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (f >= MC_FUNCS)
		return 0;
	for (int i = 0; i < MC_TOOLS; i++)
		if (mc_cfg.exclude_tgid[i] && mc_cfg.exclude_tgid[i] == tgid)
			slot = MC_SELF;
	if (slot == MC_OTHER) {
		asm volatile("" : "+r"(a1), "+r"(a2));
		if (mc_cfg.map_arg[f] == 1)
			map = (struct bpf_map *)a1;
		else if (mc_cfg.map_arg[f] == 2)
			map = (struct bpf_map *)a2;
		if (map)
			id = BPF_CORE_READ(map, id);
		for (int i = 0; i < MC_MAPS; i++) {
			if (id && mc_cfg.map_ids[i] == id) {
				slot = i;
				break;
			}
		}
	}
	if (slot >= MC_SLOTS)
		return 0;
	__sync_fetch_and_add(&mc_counts[f * MC_SLOTS + slot], 1);
	return 0;
}

SEC("kprobe.multi")
int mapcount_multi(struct pt_regs *ctx)
{
	return mc_count(ctx);
}

SEC("kprobe")
int mapcount_kprobe(struct pt_regs *ctx)
{
	return mc_count(ctx);
}
