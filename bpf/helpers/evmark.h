/* Markers a guest program executes so that the lab's QEMU TCG plugin (bpf/qemu/eventcount.c) knows
 * where a measured block begins and ends. A marker is a 7-byte NOP, `nopl disp32(%rax)`, whose
 * displacement holds a magic and a kind: 0f 1f 80 KIND 7a 42 4c. It does nothing on any CPU, under
 * KVM or on bare metal; under the plugin it is seen at translation time (the plugin decodes every
 * instruction's bytes) and acted on when executed. A value (a window id, an entry point address) is
 * sent as 64 bit markers, most significant first, then the marker that says what it was. */
#ifndef EVMARK_H
#define EVMARK_H

#include <stdint.h>

#define EVM_BIT0 0x01
#define EVM_BIT1 0x02
#define EVM_ID 0x03          /* the value is the id of the windows that follow */
#define EVM_EXC_ADD 0x10     /* + class (0 int3, 1 other exception, 2 interrupt): value is an entry point */
#define EVM_EXC_COMMIT 0x20  /* entry points sent: re-translate so they are counted */
#define EVM_BEGIN 0x30       /* + block (0..7): a window opens */
#define EVM_END 0x40         /* + block: it closes; the plugin writes its counts */

#define EVM_STR(x) #x
#define EVM_X(k) __asm__ volatile(".byte 0x0f, 0x1f, 0x80, " EVM_STR(k) ", 0x7a, 0x42, 0x4c" ::: "memory")

static inline void evm_value(uint64_t v)
{
	for (int i = 63; i >= 0; i--) {
		if ((v >> i) & 1)
			EVM_X(0x02);
		else
			EVM_X(0x01);
	}
}

/* the kinds with an argument need a constant: one function per block (0 bare, 1 hooked, 2 count) */
static inline void evm_begin(int block)
{
	switch (block) {
	case 0: EVM_X(0x30); break;
	case 1: EVM_X(0x31); break;
	default: EVM_X(0x32); break;
	}
}

static inline void evm_end(int block)
{
	switch (block) {
	case 0: EVM_X(0x40); break;
	case 1: EVM_X(0x41); break;
	default: EVM_X(0x42); break;
	}
}

static inline void evm_exc_add(uint64_t addr, int cls)
{
	evm_value(addr);
	switch (cls) {
	case 0: EVM_X(0x10); break;
	case 1: EVM_X(0x11); break;
	default: EVM_X(0x12); break;
	}
}

#endif
