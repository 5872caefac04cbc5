/* Shared between maps.bpf.c and the mapbench helper: the layout of the program's .bss state.
 * After load, the helper writes the keys and settings into it through its skeleton (skel->bss->st,
 * the kernel's own memory mapped), and after the runs reads the counters there to check that every
 * map operation happened (the proof the program ran). */
#ifndef MAPBENCH_H
#define MAPBENCH_H

#define MB_MAX_KEYS (1 << 17) /* 131072 keys: enough for a 100% fill of a 102400-entry map */
#define MB_MAX_CPUS 1024      /* CPU ids the disjoint-key mode can map to a key slot */
#ifndef MB_BOUNDED_LOOPS
#define MB_BOUNDED_LOOPS 256 /* iterations per run of the bounded-loop driver (no bpf_loop): the 5.10
			     * verifier walks every iteration; a lookup loop of 512 took it minutes (TCG) */
#endif

struct mb_state {
	__u64 done;  /* map operations that succeeded (update returned 0 / lookup found the key) */
	__u64 runs;  /* program runs */
	__u64 sum;   /* sum of the values looked up (keeps the lookups observable) */
	__u32 nkeys; /* keys per CPU: keys[base..base+nkeys) are used, cyclically */
	__u32 loops; /* loop iterations (map operations) per program run */
	__u32 stride; /* 0: every CPU uses keys[0..nkeys) (shared keys); else the CPU whose slot is s
		       * uses keys[s * stride ..] (disjoint keys, one slot per pinned thread) */
	__u32 pad;
	__u32 slot[MB_MAX_CPUS]; /* CPU id -> key slot (disjoint mode) */
	__u32 keys[MB_MAX_KEYS];
};

#endif /* MAPBENCH_H */
