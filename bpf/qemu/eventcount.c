/* eventcount: a QEMU TCG plugin (system emulation, x86-64 guest) counting what an instruction count
 * prices at one but hardware does not, in the windows the guest marks (bpf/helpers/evmark.h).
 *
 * Built by the lab on the host (lab/guest/tcgplugin.py) against the QEMU it runs. Debian 12's QEMU 7.2
 * ships no qemu-plugin.h, so the few parts of the plugin API (version 1) used here are declared below
 * by hand; the lab checks that the QEMU binary exports every function this file calls (nm -D), and the
 * plugin checks the API version QEMU offers at load.
 *
 * Classes are found by decoding each instruction's bytes at translation time (classify()); their
 * counts are added inline per translated block, split at markers so a window holds exactly the
 * instructions executed between its two markers. Calls and returns feed a return-stack model
 * (RSB_DEPTH entries: a return whose target is not the top of the stack is a mispredict); indirect
 * branches feed a last-target model per site (a target change is counted). Both are resolved by the
 * next block executed. Exception and interrupt entries are counted by entry-point address, which the
 * guest sends (from /proc/kallsyms; nokaslr) before it measures.
 *
 * Arguments: out=PATH, the file the windows are written to: one line "W id block c0 c1 ..." per
 * window, after a header "# eventcount 1 counters name0 name1 ...".
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- the plugin API, version 1 (QEMU 7.2's include/qemu/qemu-plugin.h), declared by hand ---- */
typedef uint64_t qemu_plugin_id_t;
typedef struct {
	const char *target_name;
	struct { int min; int cur; } version;
	bool system_emulation;
	union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_simple_cb_t)(qemu_plugin_id_t id);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
					  enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
					      uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
					    enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
						void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_reset(qemu_plugin_id_t id, qemu_plugin_simple_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_outs(const char *string);
#define EXPORT __attribute__((visibility("default")))
#define API_VERSION 1
/* ---- end of the declarations ---- */

#include "../helpers/evmark.h"

enum { C_INSN, C_PUSHF, C_POPF, C_LOCK, C_CPUID, C_WRMSR, C_IRET, C_SWAPGS, C_FENCE, C_SYSCALL, C_SYSRET,
       C_INT3, C_CALL, C_RET, C_IND, /* counted by class at translation; below: by the models */
       C_RET_MISS, C_IND_CHANGE, C_EXC_INT3, C_EXC_OTHER, C_IRQ, NCTR };
static const char *NAMES[NCTR] = {"insn", "pushf", "popf", "lock", "cpuid", "wrmsr", "iret", "swapgs", "fence",
	"syscall", "sysret", "int3", "call", "ret", "indirect", "ret_miss", "ind_change", "exc_int3", "exc_other",
	"irq"};
#define NCLASS (C_IND + 1)
#define MARKER 0x80000000u /* classify(): a marker (above every class bit); its kind in the low byte */

/* The classes of one instruction (bit i = class i) or MARKER|kind. Legacy prefixes and REX are
 * skipped; VEX/EVEX and 3-byte opcodes are nothing here. Exposed for the host test (EVC_TEST). */
EXPORT unsigned classify(const uint8_t *b, size_t n)
{
	size_t i = 0;
	bool lock = false;
	if (n == 7 && b[0] == 0x0f && b[1] == 0x1f && b[2] == 0x80 && b[4] == 0x7a && b[5] == 0x42 && b[6] == 0x4c)
		return MARKER | b[3];
	for (; i < n; i++) {
		uint8_t p = b[i];
		if (p == 0xf0)
			lock = true;
		else if (!(p == 0x66 || p == 0x67 || p == 0xf2 || p == 0xf3 || p == 0x2e || p == 0x36 || p == 0x3e ||
			   p == 0x26 || p == 0x64 || p == 0x65))
			break;
	}
	if (i < n && (b[i] & 0xf0) == 0x40) /* REX */
		i++;
	if (i >= n)
		return 0;
	unsigned c = 1u << C_INSN | (lock ? 1u << C_LOCK : 0);
	uint8_t op = b[i], m = i + 1 < n ? b[i + 1] : 0, reg = (m >> 3) & 7;
	switch (op) {
	case 0x9c: return c | 1u << C_PUSHF;
	case 0x9d: return c | 1u << C_POPF;
	case 0xcf: return c | 1u << C_IRET;
	case 0xcc: return c | 1u << C_INT3;
	case 0xe8: return c | 1u << C_CALL;
	case 0xc3: case 0xc2: return c | 1u << C_RET;
	case 0x86: case 0x87: /* xchg with memory is locked without the prefix */
		return (m >> 6) != 3 ? c | 1u << C_LOCK : c;
	case 0xff:
		if (reg == 2 || reg == 3)
			return c | 1u << C_CALL | 1u << C_IND;
		if (reg == 4 || reg == 5)
			return c | 1u << C_IND;
		return c;
	case 0x0f:
		switch (m) {
		case 0xa2: return c | 1u << C_CPUID;
		case 0x30: return c | 1u << C_WRMSR;
		case 0x05: return c | 1u << C_SYSCALL;
		case 0x07: return c | 1u << C_SYSRET;
		case 0x01: return i + 2 < n && b[i + 2] == 0xf8 ? c | 1u << C_SWAPGS : c;
		case 0xae: /* lfence e8, mfence f0, sfence f8 */
			return i + 2 < n && (b[i + 2] == 0xe8 || b[i + 2] == 0xf0 || b[i + 2] == 0xf8) ? c | 1u << C_FENCE : c;
		}
	}
	return c;
}

#ifndef EVC_TEST
EXPORT int qemu_plugin_version = API_VERSION;
static qemu_plugin_id_t me;
static FILE *out;
static uint64_t ctr[NCTR], start[NCTR];
static uint64_t value, window_id;
#define RSB_DEPTH 16
static uint64_t rsb[RSB_DEPTH];
static unsigned rsb_top, rsb_n;
static int pending;           /* 0 none, 1 a return to check, 2 an indirect branch */
static uint64_t predicted, *site_last;
#define NSITES 4096
static uint64_t sites[NSITES][2]; /* indirect site -> last target (a direct-mapped table) */
#define NEXC 64
static uint64_t exc_addr[NEXC];
static int exc_cls[NEXC], n_exc;
static bool exc_changed;

static void on_tb(unsigned vcpu, void *pc)
{
	uint64_t at = (uint64_t)(uintptr_t)pc;
	if (pending == 1 && at != predicted)
		ctr[C_RET_MISS]++;
	else if (pending == 2 && *site_last != at) {
		if (*site_last)
			ctr[C_IND_CHANGE]++;
		*site_last = at;
	}
	pending = 0;
}

static void on_call(unsigned vcpu, void *ret_addr)
{
	rsb_top = (rsb_top + 1) % RSB_DEPTH;
	rsb[rsb_top] = (uint64_t)(uintptr_t)ret_addr;
	if (rsb_n < RSB_DEPTH)
		rsb_n++;
}

static void on_ret(unsigned vcpu, void *unused)
{
	predicted = rsb_n ? rsb[rsb_top] : 0; /* an empty stack predicts nothing: a miss */
	if (rsb_n) {
		rsb_top = (rsb_top + RSB_DEPTH - 1) % RSB_DEPTH;
		rsb_n--;
	}
	pending = 1;
}

static void on_indirect(unsigned vcpu, void *site)
{
	uint64_t pc = (uint64_t)(uintptr_t)site, *slot = sites[(pc >> 1) % NSITES];
	if (slot[0] != pc)
		slot[0] = pc, slot[1] = 0;
	site_last = &slot[1];
	if (pending != 1) /* an indirect call is also a call: the return check, if any, came first */
		pending = 2;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
static void at_exit(qemu_plugin_id_t id, void *p);
static void after_reset(qemu_plugin_id_t id) /* a reset drops every callback: register them again */
{
	qemu_plugin_register_vcpu_tb_trans_cb(me, tb_trans);
	qemu_plugin_register_atexit_cb(me, at_exit, NULL);
}

static void on_marker(unsigned vcpu, void *kindp)
{
	unsigned k = (unsigned)(uintptr_t)kindp;
	if (k == EVM_BIT0 || k == EVM_BIT1)
		value = value << 1 | (k == EVM_BIT1);
	else if (k == EVM_ID)
		window_id = value;
	else if (k >= EVM_EXC_ADD && k < EVM_EXC_ADD + 3) {
		int i;
		for (i = 0; i < n_exc && exc_addr[i] != value; i++)
			;
		if (i == n_exc && n_exc < NEXC)
			exc_addr[n_exc] = value, exc_cls[n_exc++] = k - EVM_EXC_ADD, exc_changed = true;
	} else if (k == EVM_EXC_COMMIT && exc_changed) {
		exc_changed = false;
		qemu_plugin_reset(me, after_reset); /* every block is translated again, entry points counted */
	} else if (k >= EVM_BEGIN && k < EVM_BEGIN + 8)
		memcpy(start, ctr, sizeof(ctr));
	else if (k >= EVM_END && k < EVM_END + 8 && out) {
		fprintf(out, "W %" PRIx64 " %u", window_id, k - EVM_END);
		for (int i = 0; i < NCTR; i++)
			fprintf(out, " %" PRIu64, ctr[i] - start[i]);
		fputc('\n', out);
		fflush(out);
	}
	if (k != EVM_BIT0 && k != EVM_BIT1)
		value = 0;
}

static void add_counts(const unsigned *n, struct qemu_plugin_tb *tb, struct qemu_plugin_insn *insn)
{
	for (int c = 0; c < NCLASS; c++) {
		if (!n[c])
			continue;
		if (insn)
			qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &ctr[c], n[c]);
		else
			qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &ctr[c], n[c]);
	}
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb);
	unsigned seg[NCLASS] = {0};
	struct qemu_plugin_insn *seg_at = NULL; /* NULL: the segment is counted at the block's start */
	if (n)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb, QEMU_PLUGIN_CB_NO_REGS,
						     (void *)(uintptr_t)qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, 0)));
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		uint64_t pc = qemu_plugin_insn_vaddr(insn);
		size_t len = qemu_plugin_insn_size(insn);
		unsigned c = classify(qemu_plugin_insn_data(insn), len);
		for (int e = 0; e < n_exc; e++)
			if (exc_addr[e] == pc)
				qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
									   &ctr[exc_cls[e] == 0 ? C_EXC_INT3 : exc_cls[e] == 1 ? C_EXC_OTHER : C_IRQ], 1);
		if (c & MARKER) {
			seg[C_INSN]++; /* the marker itself counts before its window opens or after it closes */
			add_counts(seg, tb, seg_at);
			memset(seg, 0, sizeof(seg));
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS,
							       (void *)(uintptr_t)(c & 0xff));
			seg_at = i + 1 < n ? qemu_plugin_tb_get_insn(tb, i + 1) : NULL;
			if (!seg_at)
				return;
			continue;
		}
		for (int k = 0; k < NCLASS; k++)
			seg[k] += (c >> k) & 1;
		if (c & 1u << C_CALL)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_call, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)(pc + len));
		if (c & 1u << C_RET)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_ret, QEMU_PLUGIN_CB_NO_REGS, NULL);
		if (c & 1u << C_IND)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_indirect, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)pc);
	}
	add_counts(seg, tb, seg_at);
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
	if (out)
		fclose(out);
	out = NULL;
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	char msg[200];
	if (info->version.cur < API_VERSION || info->version.min > API_VERSION) {
		snprintf(msg, sizeof(msg), "eventcount: built for plugin API %d, QEMU offers %d..%d\n", API_VERSION,
			 info->version.min, info->version.cur);
		qemu_plugin_outs(msg);
		return -1;
	}
	if (!info->system_emulation || strcmp(info->target_name, "x86_64")) {
		qemu_plugin_outs("eventcount: needs qemu-system-x86_64\n");
		return -1;
	}
	for (int i = 0; i < argc; i++)
		if (!strncmp(argv[i], "out=", 4))
			out = fopen(argv[i] + 4, "a");
	if (!out) {
		qemu_plugin_outs("eventcount: needs out=PATH (a file it can append to)\n");
		return -1;
	}
	fprintf(out, "# eventcount %d counters", API_VERSION);
	for (int i = 0; i < NCTR; i++)
		fprintf(out, " %s", NAMES[i]);
	fprintf(out, "\n");
	fflush(out);
	me = id;
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
#else
/* host test: classify the instruction given as hex bytes, print its classes */
#include <stdlib.h>
int main(int argc, char **argv)
{
	for (int a = 1; a < argc; a++) {
		uint8_t b[16];
		size_t n = 0;
		for (const char *s = argv[a]; s[0] && s[1] && n < sizeof(b); s += 2) {
			char h[3] = {s[0], s[1], 0};
			b[n++] = (uint8_t)strtoul(h, NULL, 16);
		}
		unsigned c = classify(b, n);
		printf("%s", argv[a]);
		if (c & MARKER)
			printf(" marker:%02x", c & 0xff);
		else
			for (int k = 0; k < NCLASS; k++)
				if (c >> k & 1)
					printf(" %s", NAMES[k]);
		printf("\n");
	}
	return 0;
}
#endif
