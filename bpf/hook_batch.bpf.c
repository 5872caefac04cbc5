/* Hook suite, kernel_batch method: triggers fired inside the kernel, in batches, no syscall per event.
 *
 * A driver program (raw_tp, run with BPF_PROG_TEST_RUN by the helper tools/batchbench/ on the measuring
 * thread's CPU) calls a cheap trigger lab_batch times per run, as the kernel's own trigger
 * benchmarks do:
 *   driver_helper  calls the helper bpf_get_numa_node_id(): kprobe, kretprobe, kprobe.multi,
 *                  fentry and fexit attach to that kernel function;
 *   driver_kfunc   calls the kfunc bpf_modify_return_test_tp(), which fires the tracepoint
 *                  bpf_test_run:bpf_trigger_tp (Linux 6.10+): tracepoint, raw_tp and tp_btf attach there;
 *                  fmod_ret attaches to the kfunc itself (it is on the kernel's fmod_ret list) and
 *                  returns 0, so the kfunc still runs (the kernel bench's returns -22 and skips it).
 *   driver_count   the kernel bench's `trig-kernel-count` (its trigger_count): an atomic add to
 *                  this CPU's counter (lab_cpu_counts) per iteration, nothing else (no helper call).
 * Two baselines: the same driver with nothing attached ("bare"), and driver_count ("kernel-count",
 * what the kernel bench subtracts). Kernels without the kfunc fall back to a
 * getpgid() loop in user space, the hooks on sys_enter filtered to getpgid (the *_pgid programs).
 * Each hook has an empty (filter + count) and a body (the talk's PID + comm record, then count)
 * variant, like the open path, and a count variant: the kernel bench's program exactly (no tgid
 * filter, an atomic add to this CPU's counter), which counts every CPU's events on its hook.
 * Events are counted per CPU (no atomic, but for count), summed by the helper.
 */
#define LAB_HOOK
#include "lab.h"

#define LAB_NR_GETPGID 121 /* x86_64 */
#define LAB_CPUS 256

const volatile __u32 lab_batch = 100;
__u64 lab_cpu_events[LAB_CPUS] = {};
__u64 lab_cpu_counts[LAB_CPUS] = {}; /* driver_count's own count (not an event) */

extern int bpf_modify_return_test_tp(int nonce) __ksym __weak;

static __always_inline void lab_count_cpu(void)
{
	lab_cpu_events[bpf_get_smp_processor_id() & (LAB_CPUS - 1)] += 1;
}

SEC("?raw_tp") int driver_helper(void *ctx)
{
	for (__u32 i = 0; i < lab_batch && i < 100000; i++)
		(void)bpf_get_numa_node_id();
	return 0;
}

/* the kernel bench's trigger_count (trig-kernel-count) exactly: an atomic add to this CPU's counter
 * per iteration, no helper or kfunc call */
SEC("?raw_tp") int driver_count(void *ctx)
{
	for (__u32 i = 0; i < lab_batch && i < 100000; i++)
		__sync_fetch_and_add(&lab_cpu_counts[bpf_get_smp_processor_id() & (LAB_CPUS - 1)], 1);
	return 0;
}

SEC("?raw_tp") int driver_kfunc(void *ctx)
{
	for (__u32 i = 0; i < lab_batch && i < 100000; i++)
		(void)bpf_modify_return_test_tp(i);
	return 0;
}

/* the kernel bench's inc_counter(): an atomic add to this CPU's slot, no filter */
static __always_inline void lab_count_cpu_atomic(void)
{
	__sync_fetch_and_add(&lab_cpu_events[bpf_get_smp_processor_id() & (LAB_CPUS - 1)], 1);
}

#define B_EMPTY() do { if (!lab_mine()) return 0; lab_count_cpu(); } while (0)
#define B_BODY()  do { if (!lab_mine()) return 0; lab_record(); lab_count_cpu(); } while (0)
#define B_COUNT() do { lab_count_cpu_atomic(); } while (0)
#define VARIANTS(DEF) DEF(empty, EMPTY) DEF(body, BODY) DEF(count, COUNT)

#define KPROBE(v, V) SEC("?kprobe/bpf_get_numa_node_id") int kprobe_##v(void *ctx) { B_##V(); return 0; }
#define KRETPROBE(v, V) SEC("?kretprobe/bpf_get_numa_node_id") int kretprobe_##v(void *ctx) { B_##V(); return 0; }
#define KMULTI(v, V) SEC("?kprobe.multi/bpf_get_numa_node_id") int kprobe_multi_##v(void *ctx) { B_##V(); return 0; }
#define KRMULTI(v, V) SEC("?kretprobe.multi/bpf_get_numa_node_id") int kretprobe_multi_##v(void *ctx) { B_##V(); return 0; }
#define FENTRY(v, V) SEC("?fentry/bpf_get_numa_node_id") int BPF_PROG(fentry_##v) { B_##V(); return 0; }
#define FEXIT(v, V) SEC("?fexit/bpf_get_numa_node_id") int BPF_PROG(fexit_##v) { B_##V(); return 0; }
#define TP(v, V) SEC("?tracepoint/bpf_test_run/bpf_trigger_tp") int tracepoint_##v(void *ctx) { B_##V(); return 0; }
#define RAWTP(v, V) SEC("?raw_tp/bpf_trigger_tp") int raw_tp_##v(void *ctx) { B_##V(); return 0; }
#define TPBTF(v, V) SEC("?tp_btf/bpf_trigger_tp") int BPF_PROG(tp_btf_##v, int nonce) { B_##V(); return 0; }
#define FMODRET(v, V) SEC("?fmod_ret/bpf_modify_return_test_tp") \
	int BPF_PROG(fmod_ret_##v, int nonce, int ret) { B_##V(); return 0; }
/* getpgid fallback (no bpf_trigger_tp): the syscall's own tracepoints */
#define TPP(v, V) SEC("?tracepoint/syscalls/sys_enter_getpgid") int tracepoint_pgid_##v(void *ctx) { B_##V(); return 0; }
#define RAWTPP(v, V) SEC("?raw_tp/sys_enter") int raw_tp_pgid_##v(struct bpf_raw_tracepoint_args *ctx) \
	{ if (ctx->args[1] != LAB_NR_GETPGID) return 0; B_##V(); return 0; }
#define TPBTFP(v, V) SEC("?tp_btf/sys_enter") int BPF_PROG(tp_btf_pgid_##v, struct pt_regs *regs, long id) \
	{ if (id != LAB_NR_GETPGID) return 0; B_##V(); return 0; }

VARIANTS(KPROBE)
VARIANTS(KRETPROBE)
VARIANTS(KMULTI)
VARIANTS(KRMULTI)
VARIANTS(FENTRY)
VARIANTS(FEXIT)
VARIANTS(TP)
VARIANTS(RAWTP)
VARIANTS(TPBTF)
VARIANTS(FMODRET)
VARIANTS(TPP)
VARIANTS(RAWTPP)
VARIANTS(TPBTFP)
