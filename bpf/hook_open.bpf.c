/* Hook suite, open() path: the same program on every attach type users pick between.
 *
 * Measures what one event costs on kprobe/kretprobe and fentry/fexit on do_sys_openat2 (the
 * kernel's openat implementation), kprobe.multi on the same function, tracepoint
 * syscalls:sys_enter_openat, raw_tracepoint sys_enter (filtered to openat) and tp_btf sys_enter.
 * Each hook has three programs (see lab.h): HOOK_empty (filter + count), HOOK_body (the talk's
 * PID + comm record, then count) and HOOK_heavy (body plus a bounded loop of map updates).
 * The helper (tools/hookbench/) loads exactly one of them and attaches/detaches it per trial.
 */
#define LAB_HOOK
#include "lab.h"

#define LAB_NR_OPENAT 257 /* x86_64 */

#define VARIANTS(DEF) DEF(empty, EMPTY) DEF(body, BODY) DEF(heavy, HEAVY)

#define KPROBE(v, V) SEC("kprobe/do_sys_openat2") int kprobe_##v(void *ctx) { LAB_FILTER_##V(); return 0; }
#define KRETPROBE(v, V) SEC("kretprobe/do_sys_openat2") int kretprobe_##v(void *ctx) { LAB_FILTER_##V(); return 0; }
#define KMULTI(v, V) SEC("kprobe.multi/do_sys_openat2") int kprobe_multi_##v(void *ctx) { LAB_FILTER_##V(); return 0; }
#define KRMULTI(v, V) SEC("kretprobe.multi/do_sys_openat2") int kretprobe_multi_##v(void *ctx) { LAB_FILTER_##V(); return 0; }
#define TP(v, V) SEC("tracepoint/syscalls/sys_enter_openat") int tracepoint_##v(void *ctx) { LAB_FILTER_##V(); return 0; }
#define RAWTP(v, V) SEC("raw_tracepoint/sys_enter") int raw_tp_##v(struct bpf_raw_tracepoint_args *ctx) \
	{ if (ctx->args[1] != LAB_NR_OPENAT) return 0; LAB_FILTER_##V(); return 0; }
#define TPBTF(v, V) SEC("tp_btf/sys_enter") int BPF_PROG(tp_btf_##v, struct pt_regs *regs, long id) \
	{ if (id != LAB_NR_OPENAT) return 0; LAB_FILTER_##V(); return 0; }
#define FENTRY(v, V) SEC("fentry/do_sys_openat2") int BPF_PROG(fentry_##v) { LAB_FILTER_##V(); return 0; }
#define FEXIT(v, V) SEC("fexit/do_sys_openat2") int BPF_PROG(fexit_##v) { LAB_FILTER_##V(); return 0; }

VARIANTS(KPROBE)
VARIANTS(KRETPROBE)
VARIANTS(KMULTI)
VARIANTS(KRMULTI)
VARIANTS(TP)
VARIANTS(RAWTP)
VARIANTS(TPBTF)
VARIANTS(FENTRY)
VARIANTS(FEXIT)
