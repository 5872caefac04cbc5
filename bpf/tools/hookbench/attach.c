/* hookbench, attach and detach per mode, the perf ring buffer count, hooked and baseline runs. */
#include "hb.h"

int want_ring; /* perf count phase: map a ring buffer so the kernel records each sample */
unsigned long long ring_samples, ring_lost;

/* XDP attach mode: "skb" (generic, in the stack after the skb is built) or "drv" (native, in
 * the driver: veth runs it from its NAPI poll before the packet enters the stack). */
__u32 xdp_flags(void)
{
	return strcmp(opt.xdp_mode, "drv") ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
}


int attach(void)
{
	int fd = prog ? bpf_program__fd(prog) : -1, err;

	if (!strcmp(opt.mode, "perf")) {
		struct perf_event_attr a = { .size = sizeof(a), .disabled = 1 }; /* on once attached */

		if (!strcmp(opt.event, "hw")) {
			a.type = PERF_TYPE_HARDWARE;
			a.config = PERF_COUNT_HW_CPU_CYCLES;
			a.freq = 1;
			a.sample_freq = opt.freq;
		} else { /* cpu-clock counts ns: a fixed period gives exactly freq samples per second */
			a.type = PERF_TYPE_SOFTWARE;
			a.config = PERF_COUNT_SW_CPU_CLOCK;
			a.sample_period = 1000000000ULL / opt.freq;
		}
		perf_fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
		if (perf_fd < 0) {
			fprintf(stderr, "perf_event_open(%s, %d Hz): %s\n",
				strcmp(opt.event, "hw") ? "software cpu-clock" : "hardware cycles", opt.freq,
				strerror(errno));
			return -1;
		}
		if (want_ring) {
			perf_ring = mmap(NULL, (RING_PAGES + 1) * sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
					 MAP_SHARED, perf_fd, 0);
			if (perf_ring == MAP_FAILED) {
				perf_ring = NULL;
				fprintf(stderr, "mmap of the perf ring buffer: %s\n", strerror(errno));
				return -1;
			}
		}
		if (!prog) /* the baseline event of --prog none: sampling without a program */
			return ioctl(perf_fd, PERF_EVENT_IOC_ENABLE, 0);
		cur_link = bpf_program__attach_perf_event(prog, perf_fd); /* libbpf enables it after attaching */
	} else if (!strcmp(opt.mode, "uprobe")) {
		LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = opt.target,
			    .retprobe = strncmp(bpf_program__name(prog), "uretprobe", 9) == 0);
		/* /proc/self/exe, not its target: still valid if the file was rebuilt meanwhile */
		cur_link = bpf_program__attach_uprobe_opts(prog, getpid(), "/proc/self/exe", 0, &uo);
	} else if (!strcmp(opt.mode, "net")) {
		if (!strncmp(bpf_program__name(prog), "xdp", 3)) {
			err = bpf_xdp_attach(ifindex, fd, xdp_flags(), NULL);
			if (err)
				fprintf(stderr, "XDP attach (%s mode) to %s: %s\n", opt.xdp_mode, opt.ifname, strerror(-err));
		} else {
			err = setsockopt(rx_fd, SOL_SOCKET, SO_ATTACH_BPF, &fd, sizeof(fd));
			if (err)
				fprintf(stderr, "SO_ATTACH_BPF: %s\n", strerror(errno));
		}
		return err ? -1 : 0;
	} else {
		cur_link = bpf_program__attach(prog);
	}
	if (!cur_link) {
		fprintf(stderr, "attach %s: %s\n", bpf_program__name(prog), strerror(errno));
		return -1;
	}
	return 0;
}


/* Walk the records the kernel wrote into the ring buffer: samples, and samples it reports lost. */
void count_ring(void)
{
	struct perf_event_mmap_page *meta = perf_ring;
	size_t page = sysconf(_SC_PAGESIZE), size = RING_PAGES * page;
	char *data = (char *)perf_ring + page;
	__u64 head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE), pos = meta->data_tail;

	ring_samples = ring_lost = 0;
	while (pos < head) {
		struct perf_event_header h;
		size_t off = pos % size;

		for (size_t i = 0; i < sizeof(h); i++) /* a header may wrap around the buffer's end */
			((char *)&h)[i] = data[(off + i) % size];
		if (!h.size)
			break;
		if (h.type == PERF_RECORD_SAMPLE) {
			ring_samples++;
		} else if (h.type == PERF_RECORD_LOST) { /* u64 id, u64 lost */
			__u64 lost = 0;

			for (size_t i = 0; i < sizeof(lost); i++)
				((char *)&lost)[i] = data[(off + sizeof(h) + 8 + i) % size];
			ring_lost += lost;
		}
		pos += h.size;
	}
}

void set_pass(__u32 v)
{
	int zero = 0, off = bss_read("lab_pass");

	memcpy(bss_buf + off, &v, sizeof(v));
	if (bpf_map_update_elem(bpf_map__fd(bss_map), &zero, bss_buf, BPF_ANY))
		die(1, "writing lab_pass: %s", strerror(errno));
}

/* perf mode: events counted by the program vs samples the kernel generated (its ring buffer). */
void count_phase(long ops)
{
	for (int i = 0; i < opt.stats_trials; i++) {
		unsigned long long ev;
		struct sample s;

		set_pass(1);
		want_ring = 1;
		if (run_hooked(ops, &s, &ev))
			die(3, "attach failed during the count phase");
		want_ring = 0;
		set_pass(0);
		printf("{\"kind\":\"count\",\"prog\":\"%s\",\"trial\":%d,\"events\":%llu,\"samples\":%llu,"
		       "\"lost\":%llu,\"clock_ns\":%lld}\n", bpf_program__name(prog), i, ev, ring_samples, ring_lost,
		       last_clock_ns);
		fflush(stdout);
	}
}

void detach(void)
{
	if (!strcmp(opt.mode, "net")) {
		int err, zero = 0;

		if (!strncmp(bpf_program__name(prog), "xdp", 3))
			err = bpf_xdp_detach(ifindex, xdp_flags(), NULL);
		else /* the kernel wants an int-sized optval even here (optlen 0 is EINVAL: still attached) */
			err = setsockopt(rx_fd, SOL_SOCKET, SO_DETACH_BPF, &zero, sizeof(zero)) ? -errno : 0;
		if (err)
			die(1, "detaching %s: %s", bpf_program__name(prog), strerror(-err));
		return;
	}
	if (perf_fd >= 0) { /* the clock this run consumed: expected samples = clock / period */
		long long v = 0;

		ioctl(perf_fd, PERF_EVENT_IOC_DISABLE, 0); /* no sample after this: counts stay consistent */
		if (read(perf_fd, &v, sizeof(v)) == sizeof(v))
			last_clock_ns = v;
		if (perf_ring) {
			count_ring();
			munmap(perf_ring, (RING_PAGES + 1) * sysconf(_SC_PAGESIZE));
			perf_ring = NULL;
		}
	}
	if (cur_link)
		bpf_link__destroy(cur_link); /* a perf link closes its perf fd too */
	else if (perf_fd >= 0)
		close(perf_fd);
	cur_link = NULL;
	perf_fd = -1;
}

/* A baseline trial, and the events the program counted meanwhile: 0, or it was not detached. */
struct sample measure_baseline(long ops, unsigned long long *events)
{
	unsigned long long e0 = prog ? read_events() : 0;
	struct sample s = measure(ops);

	*events = prog ? read_events() - e0 : 0;
	return s;
}

int run_hooked(long ops, struct sample *s, unsigned long long *events)
{
	unsigned long long e0 = prog ? read_events() : 0;

	if (attach())
		return -1;
	*s = measure(ops);
	detach();
	*events = prog ? read_events() - e0 : 0;
	return 0;
}
