/* hookbench net: hook_net.bpf.o's XDP program (on the receiving veth, --xdp-mode skb|drv) or socket
 * filter (on the receiving UDP socket), triggered by one datagram out of the tx network namespace,
 * received in the rx one. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "bench.h"
#include "hookbench.h"
#include "hook_net.skel.h"

#ifndef SO_ATTACH_BPF
#define SO_ATTACH_BPF 50
#endif
#ifndef SO_DETACH_BPF
#define SO_DETACH_BPF 27
#endif

static struct hook_net *skel;
static int tx_fd = -1, rx_fd = -1, ifindex;

static void net_validate(const struct hb_args *a)
{
	if (!a->netns_tx || !a->netns_rx)
		die(1, "net mode needs --netns-tx and --netns-rx");
}

static void enter_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || setns(fd, CLONE_NEWNET))
		die(1, "setns %s: %s", path, strerror(errno));
	close(fd);
}

static void setup_net(const struct hb_args *a)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(a->port) };
	struct timeval tv = { .tv_sec = 2 };
	char pkt[64] = "warmup";

	if (inet_pton(AF_INET, a->dst, &sa.sin_addr) != 1)
		die(1, "bad --dst %s", a->dst);
	enter_netns(a->netns_tx);
	tx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (tx_fd < 0 || connect(tx_fd, (struct sockaddr *)&sa, sizeof(sa)))
		die(1, "tx socket: %s", strerror(errno));
	enter_netns(a->netns_rx); /* stay here: XDP attaches over netlink in this namespace */
	rx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (rx_fd < 0 || bind(rx_fd, (struct sockaddr *)&sa, sizeof(sa)))
		die(1, "rx socket bound to %s:%d: %s", a->dst, a->port, strerror(errno));
	setsockopt(rx_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ifindex = if_nametoindex(a->ifname);
	if (!ifindex)
		die(1, "no interface %s in %s", a->ifname, a->netns_rx);
	for (int i = 0; i < 5; i++) { /* resolves ARP; the first datagram may be dropped meanwhile */
		send(tx_fd, pkt, sizeof(pkt), 0);
		if (recv(rx_fd, pkt, sizeof(pkt), 0) > 0)
			return;
	}
	die(1, "no datagram arrives from %s to %s:%d", a->netns_tx, a->dst, a->port);
}

static void net_setup(struct hb_ctx *c)
{
	skel = OPEN_SKEL(hook_net, c);
	if (pick_progs(skel->obj, c->args, 0, &c->prog, 1)) { /* else --prog none: baseline trials only */
		skel->rodata->lab_target_port = htons(c->args->port);
		LOAD_SKEL(skel, c);
	}
	setup_net(c->args);
}

static int is_xdp(const struct bpf_program *p)
{
	return !strncmp(bpf_program__name(p), "xdp", 3);
}

/* XDP attach mode: "skb" (generic, in the stack after the skb is built) or "drv" (native, in
 * the driver: veth runs it from its NAPI poll before the packet enters the stack). */
static __u32 xdp_flags(const struct hb_args *a)
{
	return strcmp(a->xdp_mode, "drv") ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
}

static int net_attach(struct hb_ctx *c)
{
	int fd = bpf_program__fd(c->prog), err;

	if (is_xdp(c->prog)) {
		err = bpf_xdp_attach(ifindex, fd, xdp_flags(c->args), NULL);
		if (err)
			fprintf(stderr, "XDP attach (%s mode) to %s: %s\n", c->args->xdp_mode, c->args->ifname,
				strerror(-err));
	} else {
		err = setsockopt(rx_fd, SOL_SOCKET, SO_ATTACH_BPF, &fd, sizeof(fd));
		if (err)
			fprintf(stderr, "SO_ATTACH_BPF: %s\n", strerror(errno));
	}
	return err ? -1 : 0;
}

static void net_detach(struct hb_ctx *c)
{
	int err, zero = 0;

	if (is_xdp(c->prog))
		err = bpf_xdp_detach(ifindex, xdp_flags(c->args), NULL);
	else /* the kernel wants an int-sized optval even here (optlen 0 is EINVAL: still attached) */
		err = setsockopt(rx_fd, SOL_SOCKET, SO_DETACH_BPF, &zero, sizeof(zero)) ? -errno : 0;
	if (err)
		die(1, "detaching %s: %s", bpf_program__name(c->prog), strerror(-err));
}

static void net_trigger(const struct hb_args *a, long ops)
{
	char pkt[64] = "hookbench";

	for (long i = 0; i < ops; i++) {
		if (send(tx_fd, pkt, sizeof(pkt), 0) != sizeof(pkt))
			die(1, "send: %s", strerror(errno));
		if (recv(rx_fd, pkt, sizeof(pkt), 0) < 0)
			die(1, "recv (packet %ld of %ld lost?): %s", i, ops, strerror(errno));
	}
}

static void net_teardown(struct hb_ctx *c)
{
	hook_net__destroy(skel);
}

const struct hb_mode hb_net = {
	.name = "net",
	.validate = net_validate,
	.setup = net_setup,
	.attach = net_attach,
	.detach = net_detach,
	.trigger = net_trigger,
	.teardown = net_teardown,
};
