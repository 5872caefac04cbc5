/* hookbench uprobe: hook_uprobe.bpf.o's program on a function of this helper (--target), called in
 * a C loop. lab_uprobe_target starts with lea, which x86 single-steps out of line; lab_uprobe_nop
 * starts with nop, which the kernel emulates. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "hookbench.h"
#include "hook_uprobe.skel.h"

static struct hook_uprobe *skel;
static struct bpf_link *cur_link;
static volatile unsigned long long sink;

/* global symbols: the uprobe finds them by name in /proc/self/exe */
int lab_uprobe_target(int x);
int lab_uprobe_nop(int x);

__attribute__((noinline)) int lab_uprobe_target(int x)
{
	asm volatile("" ::: "memory");
	return x + 1;
}

/* The same function with a nop first: x86 uprobes emulate nop instead of single-stepping it. */
asm(".text\n.globl lab_uprobe_nop\n.type lab_uprobe_nop, @function\n.p2align 4\nlab_uprobe_nop:\n"
    "\tnop\n\tlea 1(%rdi), %eax\n\tret\n.size lab_uprobe_nop, .-lab_uprobe_nop\n");

static void uprobe_setup(struct hb_ctx *c)
{
	skel = OPEN_SKEL(hook_uprobe, c);
	if (pick_progs(skel->obj, c->args, 0, &c->prog, 1)) /* else --prog none: baseline trials only */
		LOAD_SKEL(skel, c);
}

static int uprobe_attach(struct hb_ctx *c)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = c->args->target,
		    .retprobe = strncmp(bpf_program__name(c->prog), "uretprobe", 9) == 0);

	/* /proc/self/exe, not its target: still valid if the file was rebuilt meanwhile */
	cur_link = bpf_program__attach_uprobe_opts(c->prog, getpid(), "/proc/self/exe", 0, &uo);
	return link_ok(c->prog, cur_link);
}

static void uprobe_detach(struct hb_ctx *c)
{
	bpf_link__destroy(cur_link);
	cur_link = NULL;
}

static void uprobe_trigger(const struct hb_args *a, long ops)
{
	int acc = 0;
	int (*fn)(int) = strcmp(a->target, "lab_uprobe_nop") ? lab_uprobe_target : lab_uprobe_nop;

	for (long i = 0; i < ops; i++)
		acc = fn(acc);
	sink = acc;
}

static void uprobe_teardown(struct hb_ctx *c)
{
	hook_uprobe__destroy(skel);
}

const struct hb_mode hb_uprobe = {
	.name = "uprobe",
	.setup = uprobe_setup,
	.attach = uprobe_attach,
	.detach = uprobe_detach,
	.trigger = uprobe_trigger,
	.teardown = uprobe_teardown,
};
