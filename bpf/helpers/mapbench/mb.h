/* mapbench's interface between its harness (main.c: options and the table of modes) and its parts:
 * one mode per file (info.c, kern.c, user.c, mem.c: a struct mb_mode each, with its own state),
 * maps.c (the map types, keys and user-space map access every mode uses) and report.c (output and
 * the error exit). Dependencies point main -> modes -> maps, report, never back. */
#ifndef MB_H
#define MB_H

#include <stddef.h>
#include <linux/types.h>
#include <linux/bpf.h>

#define VALUE_SIZE 8
#define KEY_SIZE 4
#define MAX_THREADS 256

struct map_type_info {
	const char *name;
	enum bpf_map_type type;
	int percpu;
};

struct mb_args {
	const char *mode;
	const char *obj;
	const struct map_type_info *type;
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
	int copies;          /* -C: mem: identical maps made and read together (the charge divided) */
	int ncpus_possible;
};

struct mb_mode {
	const char *name;
	int (*run)(const struct mb_args *a); /* prints the mode's record; the exit status */
};

extern const struct mb_mode mb_info, mb_kern, mb_user, mb_mem;

/* report.c */
void capture_libbpf(void);
void fail(int code, const char *what, int err) __attribute__((noreturn));
int refused(int err);
void print_list(const char *name, const double *v, int n);

/* maps.c */
const struct map_type_info *map_type_named(const char *name);
const char *op_name(int op);
int has_bpf_loop(void);
__u32 *make_keys(const struct mb_args *a, __u32 n);
size_t value_buf_size(const struct mb_args *a);
int create_map(const struct mb_args *a);
__u32 fill(int fd, const __u32 *keys, __u32 n, void *val);
__u32 present(int fd, __u32 *keys, __u32 n, void *val);
__u64 live_entries(const struct mb_args *a, int fd);
long long fdinfo_field(int fd, const char *field);
long long read_ll(const char *dir, const char *name);

#endif /* MB_H */
