/* Map suite: the cost of one map update or lookup, driven in the kernel.
 *
 * One program run = bpf_loop(st.loops) map operations on keys st.keys[] (cyclic, from a random
 * index), run by BPF_PROG_TEST_RUN with a repeat count, so the syscall is paid once per `repeat`
 * runs. With st.stride set (disjoint keys), the CPU running the program picks its own key slot:
 * keys[slot[cpu] * stride ..], so pinned threads never share a key. The map type, flags and
 * max_entries of bench_map are set by the helper before load (bpf_map__set_type /
 * set_map_flags / set_max_entries): one object serves every map type.
 * Key 4 B, value 8 B, as in the talk. Successful operations are counted in st.done.
 *
 * Kernels without bpf_loop (before 5.17) get the *_bounded programs instead: the same operations
 * in a plain loop of at most MB_BOUNDED_LOOPS iterations (the helper caps st.loops to it), which
 * the verifier walks iteration by iteration (bounded loops: 5.3+). So that it does not walk every
 * combination of branches too, the loop body has no branch but the loop's exits and the lookup's
 * NULL test: the key index wraps and the update counts its success by arithmetic. The helper picks
 * these programs when libbpf's probe says BPF_FUNC_loop is missing, or with -b; the row says which
 * driver ran ("loop": "bpf_loop" | "bounded").
 */
#include "lab.h"
#include "helpers/mapbench.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH); /* replaced before load */
	__uint(max_entries, 1024);       /* replaced before load */
	__type(key, __u32);
	__type(value, __u64);
} bench_map SEC(".maps");

struct mb_state st;

struct loop_ctx {
	__u32 base;  /* first key of this CPU's slot (0 with shared keys) */
	__u32 pos;   /* next key: keys[base + pos], pos cycling through 0..nkeys-1 */
	__u32 nkeys;
	__u32 pad;
	__u64 ok;
	__u64 sum;
};

/* The next key of this run (keys wrap around the table); -1 stops the loop. */
static __always_inline int key_at(struct loop_ctx *c, __u32 i, __u32 *key)
{
	__u32 idx = c->base + c->pos;

	if (++c->pos >= c->nkeys)
		c->pos = 0;
	if (idx >= MB_MAX_KEYS)
		return -1;
	*key = st.keys[idx];
	return 0;
}

static int update_cb(__u32 i, void *data)
{
	struct loop_ctx *c = data;
	__u64 val = i;
	__u32 key;

	if (key_at(c, i, &key))
		return 1;
	if (bpf_map_update_elem(&bench_map, &key, &val, BPF_ANY) == 0)
		c->ok++;
	return 0;
}

static int lookup_cb(__u32 i, void *data)
{
	struct loop_ctx *c = data;
	__u64 *v;
	__u32 key;

	if (key_at(c, i, &key))
		return 1;
	v = bpf_map_lookup_elem(&bench_map, &key);
	if (v) {
		c->ok++;
		c->sum += *v;
	}
	return 0;
}

/* the loop alone: fetch the key, no map operation (the baseline subtracted by the suite) */
static int empty_cb(__u32 i, void *data)
{
	struct loop_ctx *c = data;
	__u32 key;

	if (key_at(c, i, &key))
		return 1;
	c->sum += key;
	c->ok++;
	return 0;
}

/* this run's loop context: key slot and random start (0), or 1 when the state is unusable */
static __always_inline int prepare(struct loop_ctx *c)
{
	__u32 n = st.nkeys;

	if (n == 0 || n > MB_MAX_KEYS)
		return 1;
	if (st.stride) {
		__u32 cpu = bpf_get_smp_processor_id();

		if (cpu >= MB_MAX_CPUS)
			return 1;
		c->base = st.slot[cpu] * st.stride;
	}
	c->nkeys = n;
	c->pos = bpf_get_prandom_u32() % n;
	return 0;
}

static __always_inline void finish(struct loop_ctx *c)
{
	__u64 ok = c->ok, sum = c->sum;

	/* opaque values: else clang may turn an atomic add into an atomic or (it proved the bits
	 * disjoint), an instruction kernels before 5.12 refuse ("BPF_STX uses reserved fields") */
	asm volatile("" : "+r"(ok), "+r"(sum));
	__sync_fetch_and_add(&st.done, ok);
	__sync_fetch_and_add(&st.sum, sum);
	__sync_fetch_and_add(&st.runs, 1);
}

static __always_inline int drive(int (*cb)(__u32, void *))
{
	struct loop_ctx c = {};

	if (prepare(&c))
		return 1;
	bpf_loop(st.loops, cb, &c, 0);
	finish(&c);
	return 0;
}

/* ---- the bounded-loop driver (no bpf_loop) ---- */

#define MB_UPDATE 0
#define MB_LOOKUP 1
#define MB_EMPTY 2

/* all ones when x < 0, else 0; an instruction clang cannot turn into a branch */
static __always_inline __s64 sign_mask(__s64 x)
{
	asm volatile("%0 s>>= 63" : "+r"(x));
	return x;
}

static __always_inline int drive_bounded(int op)
{
	struct loop_ctx c = {};
	__u32 loops = st.loops;

	if (prepare(&c))
		return 1;
	for (__u32 i = 0; i < MB_BOUNDED_LOOPS && i < loops; i++) {
		__u64 idx = (__u64)c.base + c.pos, next = c.pos + 1;
		__u32 key;

		if (idx >= MB_MAX_KEYS)
			break;
		/* the bound on the register that indexes (clang may test a copy of it) */
		asm volatile("" : "+r"(idx));
		key = st.keys[idx & (MB_MAX_KEYS - 1)];
		/* pos + 1, or 0 past the last key: without a branch */
		c.pos = next & sign_mask((__s64)next - (__s64)c.nkeys);
		if (op == MB_UPDATE) {
			__u64 val = i;

			/* 1 when the update returned 0, 0 when it returned an error */
			c.ok += 1 + sign_mask(bpf_map_update_elem(&bench_map, &key, &val, BPF_ANY));
		} else if (op == MB_LOOKUP) {
			__u64 *v = bpf_map_lookup_elem(&bench_map, &key);

			if (v) {
				c.ok++;
				c.sum += *v;
			}
		} else {
			c.sum += key;
			c.ok++;
		}
	}
	finish(&c);
	return 0;
}

/* each op twice: with bpf_loop (5.17+) and with the bounded loop (older kernels) */
#define MAP_DRIVERS(op, OP)						\
	SEC("tc") int map_##op(struct __sk_buff *skb) { return drive(op##_cb); }	\
	SEC("tc") int map_##op##_bounded(struct __sk_buff *skb) { return drive_bounded(MB_##OP); }

MAP_DRIVERS(update, UPDATE)
MAP_DRIVERS(lookup, LOOKUP)
MAP_DRIVERS(empty, EMPTY)
