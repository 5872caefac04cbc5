/* hookbench, network namespaces and sockets, calibration, the bpf_stats phase. */
#include "hb.h"

void enter_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || setns(fd, CLONE_NEWNET))
		die(1, "setns %s: %s", path, strerror(errno));
	close(fd);
}

void setup_net(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(opt.port) };
	struct timeval tv = { .tv_sec = 2 };
	char pkt[64] = "warmup";

	if (!opt.netns_tx || !opt.netns_rx)
		die(1, "net mode needs --netns-tx and --netns-rx");
	if (inet_pton(AF_INET, opt.dst, &a.sin_addr) != 1)
		die(1, "bad --dst %s", opt.dst);
	enter_netns(opt.netns_tx);
	tx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (tx_fd < 0 || connect(tx_fd, (struct sockaddr *)&a, sizeof(a)))
		die(1, "tx socket: %s", strerror(errno));
	enter_netns(opt.netns_rx); /* stay here: XDP attaches over netlink in this namespace */
	rx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (rx_fd < 0 || bind(rx_fd, (struct sockaddr *)&a, sizeof(a)))
		die(1, "rx socket bound to %s:%d: %s", opt.dst, opt.port, strerror(errno));
	setsockopt(rx_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ifindex = if_nametoindex(opt.ifname);
	if (!ifindex)
		die(1, "no interface %s in %s", opt.ifname, opt.netns_rx);
	for (int i = 0; i < 5; i++) { /* resolves ARP; the first datagram may be dropped meanwhile */
		send(tx_fd, pkt, sizeof(pkt), 0);
		if (recv(rx_fd, pkt, sizeof(pkt), 0) > 0)
			return;
	}
	die(1, "no datagram arrives from %s to %s:%d", opt.netns_tx, opt.dst, opt.port);
}

/* perf mode: pick the loop length so one run takes about --ms milliseconds of this thread's CPU
 * time (what a per-task cpu-clock event samples; wall time would count other tasks running). */
long calibrate(void)
{
	long n = 1000000;
	long long t;

	for (;;) {
		t = cpu_ns();
		sink = spin(n);
		t = cpu_ns() - t;
		if (t > 20000000LL)
			break;
		n *= 4;
	}
	return (long)((double)n * opt.ms * 1e6 / t);
}

void stats_phase(long ops)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int sfd, pfd = bpf_program__fd(prog);

	sfd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (sfd < 0) {
		printf("{\"kind\":\"stats_error\",\"reason\":\"BPF_ENABLE_STATS: %s\"}\n", strerror(errno));
		return;
	}
	for (int i = 0; i < opt.stats_trials; i++) {
		unsigned long long t0, c0, ev;
		struct sample s;

		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		bpf_obj_get_info_by_fd(pfd, &info, &len);
		t0 = info.run_time_ns;
		c0 = info.run_cnt;
		if (run_hooked(ops, &s, &ev))
			die(3, "attach failed during the stats phase");
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		bpf_obj_get_info_by_fd(pfd, &info, &len);
		printf("{\"kind\":\"stats\",\"prog\":\"%s\",\"trial\":%d,\"run_time_ns\":%llu,\"run_cnt\":%llu,"
		       "\"events\":%llu,\"triggers\":%ld,\"hook_ns\":%lld,\"clock_ns\":%lld}\n",
		       bpf_program__name(prog), i, (unsigned long long)info.run_time_ns - t0,
		       (unsigned long long)info.run_cnt - c0, ev, ops, s.ns, last_clock_ns);
		fflush(stdout);
	}
	close(sfd); /* the kernel turns the stats off again when the last such fd closes */
}

/* Is `name` one of the comma-separated names in `list`? */
