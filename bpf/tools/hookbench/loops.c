/* hookbench, the trigger loops a trial times (open, uprobe targets, perf spin, datagrams). */
#include "hb.h"

volatile unsigned long long sink;

__attribute__((noinline)) int lab_uprobe_target(int x)
{
	asm volatile("" ::: "memory");
	return x + 1;
}

/* The same function with a nop first: x86 uprobes emulate nop instead of single-stepping it. */
int lab_uprobe_nop(int x);
asm(".text\n.globl lab_uprobe_nop\n.type lab_uprobe_nop, @function\n.p2align 4\nlab_uprobe_nop:\n"
    "\tnop\n\tlea 1(%rdi), %eax\n\tret\n.size lab_uprobe_nop, .-lab_uprobe_nop\n");


unsigned long long spin(long n)
{
	unsigned long long x = 88172645463325252ULL;

	for (long i = 0; i < n; i++) { /* xorshift: CPU-bound, no memory traffic */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

void loop_once(long ops)
{
	char pkt[64] = "hookbench";
	long i;

	if (!strcmp(opt.mode, "open")) {
		for (i = 0; i < ops; i++) {
			int fd = openat(AT_FDCWD, opt.path, O_RDONLY);

			if (fd < 0)
				die(1, "open %s: %s", opt.path, strerror(errno));
			close(fd);
		}
	} else if (!strcmp(opt.mode, "uprobe")) {
		int acc = 0;

		int (*fn)(int) = strcmp(opt.target, "lab_uprobe_nop") ? lab_uprobe_target : lab_uprobe_nop;

		for (i = 0; i < ops; i++)
			acc = fn(acc);
		sink = acc;
	} else if (!strcmp(opt.mode, "perf")) {
		sink = spin(ops);
	} else { /* net: one datagram out of the tx namespace, received in the rx namespace */
		for (i = 0; i < ops; i++) {
			if (send(tx_fd, pkt, sizeof(pkt), 0) != sizeof(pkt))
				die(1, "send: %s", strerror(errno));
			if (recv(rx_fd, pkt, sizeof(pkt), 0) < 0)
				die(1, "recv (packet %ld of %ld lost?): %s", i, ops, strerror(errno));
		}
	}
}

struct sample measure(long ops)
{
	struct sample s;
	long long j0 = stime_jiffies(), s0 = stime_ns(), c0 = cpu_ns(), t0 = now_ns();

	loop_once(ops);
	s.ns = now_ns() - t0;
	s.cpu = cpu_ns() - c0;
	s.stime = stime_ns() - s0;
	s.jiffies = stime_jiffies() - j0;
	return s;
}
