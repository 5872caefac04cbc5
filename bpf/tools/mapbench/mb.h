/* mapbench's parts share this: the options, the map types and the helpers every mode uses.
 * main.c: options, output and error helpers; maps.c: keys and user-space map access;
 * info.c, kern.c, user.c, mem.c: one mode each (see main.c's header for what each measures). */
#ifndef MB_H
#define MB_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "mapbench.h"

#include "mapbench.h"

#define VALUE_SIZE 8
#define KEY_SIZE 4
#define MAX_THREADS 256

struct map_type_info {
	const char *name;
	enum bpf_map_type type;
	int percpu;
};

struct opts {
	const char *mode;
	const char *obj;
	int type_idx;
	__u32 flags;
	__u32 max_entries;
	const char *keyspace;
	__u32 nkeys;
	__u64 key_space; /* keys are drawn from [0, key_space) for "sparse" */
	int lookup;      /* op: 0 update, 1 lookup, 2 empty (kern only: the loop without the map call) */
	__u32 loops;
	__u32 repeat;
	int trials;
	int threads;
	__u64 ops;
	int batch;
	const char *fills;
	const char *cgroup;
	const char *cgkind;
	const char *keylist; /* -L: explicit keys for -k list */
	int disjoint;        /* -D: each thread its own keys */
	__u32 prefill;       /* -P: fill the map to this many entries with other keys */
	int bounded;         /* -b: the bounded-loop programs even where bpf_loop exists */
};

extern struct opts o;
extern const struct map_type_info map_types[];
extern const char *prog_names[], *bounded_names[], *op_names[];
extern int ncpus_possible;

/* main.c */
void die(int code, const char *what, int err);
int refused(int err);
__u64 now_ns(void);
void print_list(const char *name, const double *v, int n);
/* maps.c */
__u32 *make_keys(__u32 n);
size_t value_buf_size(void);
int create_map(void);
__u32 fill(int fd, const __u32 *keys, __u32 n, void *val);
__u32 present(int fd, __u32 *keys, __u32 n, void *val);
__u64 live_entries(int fd);
long long fdinfo_field(int fd, const char *field);
long long read_ll(const char *dir, const char *name);
/* info.c */
int has_bpf_loop(void);
int cmd_info(void);
/* kern.c, user.c, mem.c */
int cmd_kern(void);
int cmd_user(void);
int cmd_mem(void);

#endif /* MB_H */
