/* hookbench's interface: the options, one mode (a struct hb_mode, one per file: open.c, uprobe.c,
 * perf.c, net.c, each with its own static state and skeleton), the run context the harness hands
 * every mode callback, and the harness's functions a mode may call (trial.c: timed runs with and
 * without the program, the bpf_stats phase; prog.c: picking and loading the program). main.c holds
 * the table of modes and the trials of open/uprobe/net; dependencies point main -> modes -> trial,
 * prog, never back. */
#ifndef HOOKBENCH_H
#define HOOKBENCH_H

#include <linux/types.h>
#include <bpf/libbpf.h>

struct hb_args {
	const char *mode, *obj, *prog, *path, *target, *event, *netns_tx, *netns_rx, *ifname, *dst, *xdp_mode;
	int trials, stats_trials, port, freq, ms, samples;
	long ops;
};

struct sample { long long ns, cpu, stime, jiffies; };

struct hb_ctx;

struct hb_mode {
	const char *name;
	void (*validate)(const struct hb_args *a);          /* optional: the mode's own option checks */
	void (*setup)(struct hb_ctx *c);                     /* skeleton opened, program picked and loaded
							      * (exit 2 if refused), trigger prepared */
	int (*attach)(struct hb_ctx *c);                     /* 0, or -1 with the reason on stderr */
	void (*detach)(struct hb_ctx *c);
	void (*trigger)(const struct hb_args *a, long ops);  /* the loop a trial times */
	void (*measure)(struct hb_ctx *c);                   /* optional: the mode's own trials (perf);
							      * else main.c's ABBA trials */
	void (*teardown)(struct hb_ctx *c);
};

/* One run of the helper, handed to every mode callback. */
struct hb_ctx {
	const struct hb_mode *mode;
	struct hb_args *args;            /* perf sizes its loop itself (ops, ms) */
	struct bpf_program *prog;        /* the program attached by a hooked run; NULL: none */
	const volatile __u64 *events;    /* the loaded object's lab_events (skel->bss); NULL: not loaded */
	long long clock_ns;              /* perf: the event's clock count over the last hooked run */
};

extern const struct hb_mode hb_open, hb_uprobe, hb_perf, hb_net, hb_openlat;

/* trial.c */
void trial_init(void);
unsigned long long read_events(const struct hb_ctx *c);
struct sample measure(struct hb_ctx *c, long ops);
struct sample measure_baseline(struct hb_ctx *c, long ops, unsigned long long *events);
int run_hooked(struct hb_ctx *c, long ops, struct sample *s, unsigned long long *events);
void stats_phase(struct hb_ctx *c, long ops);

/* A mode's skeleton NAME (struct NAME, from NAME.skel.h), checked against --obj and opened (exit 2
 * if libbpf cannot); then, once its programs are picked and its .rodata set, loaded with the
 * globals every hook object has (lab.h): lab_target_tgid set to this process, lab_events mapped. */
#define OPEN_SKEL(NAME, c) ({							\
	size_t sz_;								\
	const void *elf_ = NAME##__elf_bytes(&sz_);				\
	struct NAME *s_;							\
										\
	check_obj((c)->args->obj, elf_, sz_);					\
	s_ = NAME##__open();							\
	if (!s_)								\
		die(2, "open %s: %s", (c)->args->obj, strerror(errno));		\
	s_;									\
})
#define LOAD_SKEL(skel, c) do {							\
	(skel)->rodata->lab_target_tgid = getpid();				\
	load_skel((skel)->skeleton, (c)->args);					\
	(c)->events = &(skel)->bss->lab_events;					\
} while (0)

/* prog.c */
int in_list(const char *name, const char *list);
int pick_progs(struct bpf_object *obj, const struct hb_args *a, int many, struct bpf_program **progs, int max);
void load_skel(struct bpf_object_skeleton *s, const struct hb_args *a);
int link_ok(const struct bpf_program *p, const struct bpf_link *link);

#endif /* HOOKBENCH_H */
