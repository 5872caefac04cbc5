/* hookbench open: hook_open.bpf.o's program on the open() path (kprobe, fentry, tracepoint, ...),
 * triggered by openat() of --path in a loop. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "hookbench.h"
#include "hook_open.skel.h"

static struct hook_open *skel;
static struct bpf_link *cur_link;

static void open_setup(struct hb_ctx *c)
{
	ensure_tracefs();
	skel = OPEN_SKEL(hook_open, c);
	if (pick_progs(skel->obj, c->args, 0, &c->prog, 1)) /* else --prog none: baseline trials only */
		LOAD_SKEL(skel, c);
}

static int open_attach(struct hb_ctx *c)
{
	cur_link = bpf_program__attach(c->prog);
	return link_ok(c->prog, cur_link);
}

static void open_detach(struct hb_ctx *c)
{
	bpf_link__destroy(cur_link);
	cur_link = NULL;
}

static void open_trigger(const struct hb_args *a, long ops)
{
	for (long i = 0; i < ops; i++) {
		int fd = openat(AT_FDCWD, a->path, O_RDONLY);

		if (fd < 0)
			die(1, "open %s: %s", a->path, strerror(errno));
		close(fd);
	}
}

static void open_teardown(struct hb_ctx *c)
{
	hook_open__destroy(skel);
}

const struct hb_mode hb_open = {
	.name = "open",
	.setup = open_setup,
	.attach = open_attach,
	.detach = open_detach,
	.trigger = open_trigger,
	.teardown = open_teardown,
};
