/* Shared between mapcount.bpf.c and the mapcount helper: the sizes of the counter table and the
 * configuration the helper writes into the object's .rodata before load (skel->rodata->mc_cfg). */
#ifndef MAPCOUNT_H
#define MAPCOUNT_H

#define MC_FUNCS 32
#define MC_MAPS 16
#define MC_TOOLS 8
#define MC_OTHER MC_MAPS        /* a map that is not the tool's, or a function without a map argument */
#define MC_SELF (MC_MAPS + 1)   /* called by the tool's own process */
#define MC_SLOTS (MC_MAPS + 2)

struct mc_config {
	__u32 exclude_tgid[MC_TOOLS];  /* the tools' processes (0: unused) */
	__u32 map_ids[MC_MAPS];
	__u8 map_arg[MC_FUNCS];  /* 1-based argument holding struct bpf_map *, 0 = none */
};

#endif /* MAPCOUNT_H */
