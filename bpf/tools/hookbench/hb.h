/* hookbench's parts share this: the options, the loaded object and attachment state, and the
 * functions one part calls in another. main.c: options, BPF globals by name, main; loops.c: the
 * trigger loops a trial times; attach.c: attach/detach per mode and the hooked/baseline runs;
 * setup.c: network namespaces, calibration, the bpf_stats phase; perf.c: perf mode. */
#ifndef HB_H
#define HB_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "benchutil.h"

#ifndef SO_ATTACH_BPF
#define SO_ATTACH_BPF 50
#endif
#ifndef SO_DETACH_BPF
#define SO_DETACH_BPF 27
#endif

#define MAX_PROGS 4
#define RING_PAGES 256           /* data pages; 8-byte sample records: 262144 samples per run */

struct hb_opts {
	const char *mode, *obj, *prog, *path, *target, *event, *netns_tx, *netns_rx, *ifname, *dst, *xdp_mode;
	int trials, stats_trials, port, freq, ms, samples;
	long ops;
};

struct sample { long long ns, cpu, stime, jiffies; };

extern struct hb_opts opt;
extern struct bpf_program *perf_progs[MAX_PROGS];
extern int nperf_progs;
extern struct bpf_object *obj;
extern struct bpf_program *prog;
extern struct bpf_link *cur_link;
extern int perf_fd, tx_fd, rx_fd, ifindex;
extern long long last_clock_ns;
extern void *perf_ring;
extern char bss_buf[4096];
extern struct bpf_map *bss_map;
extern volatile unsigned long long sink;
extern int want_ring;
extern unsigned long long ring_samples, ring_lost;

int lab_uprobe_target(int x);
int lab_uprobe_nop(int x);
long long stime_ns(void);
long long stime_jiffies(void);
int global_off(const char *sec_suffix, const char *var, struct bpf_map **mapp);
void set_rodata(const char *var, const void *val, size_t sz);
int bss_read(const char *var);
unsigned long long read_events(void);
unsigned long long spin(long n);
void loop_once(long ops);
struct sample measure(long ops);
__u32 xdp_flags(void);
int attach(void);
void count_ring(void);
void set_pass(__u32 v);
void count_phase(long ops);
void detach(void);
struct sample measure_baseline(long ops, unsigned long long *events);
int run_hooked(long ops, struct sample *s, unsigned long long *events);
void enter_netns(const char *path);
void setup_net(void);
long calibrate(void);
void stats_phase(long ops);
int in_list(const char *name, const char *list);
void perf_arm(const char *name, struct bpf_program *p, int with_event, int first);
void perf_main(void);

#endif /* HB_H */
