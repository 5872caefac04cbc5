/* mapbench, mode info: CPUs, page size, kernel struct sizes from BTF, bpf_loop. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "mb.h"

static int btf_size(const struct btf *btf, const char *name)
{
	int id = btf ? btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT) : -1;

	return id > 0 ? (int)btf__resolve_size(btf, id) : -1;
}

/* the member names of struct NAME in the kernel's BTF, as a JSON list (null without BTF) */
static void print_members(const struct btf *btf, const char *name)
{
	int id = btf ? btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT) : -1;
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	const struct btf_member *m;

	if (!t) {
		printf("null");
		return;
	}
	m = btf_members(t);
	printf("[");
	for (int i = 0; i < btf_vlen(t); i++, m++)
		printf("%s\"%s\"", i ? ", " : "", btf__name_by_offset(btf, m->name_off));
	printf("]");
}

static int info_run(const struct mb_args *a)
{
	static const char *structs[] = {"bpf_htab", "bucket", "htab_elem", "bpf_array", "llist_node", "bpf_map"};
	struct btf *btf = btf__load_vmlinux_btf();
	long pid_max = -1;
	char buf[32];
	int f = open("/proc/sys/kernel/pid_max", O_RDONLY);

	if (f >= 0) {
		ssize_t n = read(f, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = 0;
			pid_max = strtol(buf, NULL, 10);
		}
		close(f);
	}
	if (libbpf_get_error(btf))
		btf = NULL;
	printf("{\"possible_cpus\": %d, \"online_cpus\": %ld, \"page_size\": %ld, \"pid_max\": %ld, "
	       "\"btf\": %s, \"sizes\": {", a->ncpus_possible, sysconf(_SC_NPROCESSORS_ONLN), sysconf(_SC_PAGESIZE),
	       pid_max, btf ? "true" : "false");
	for (size_t i = 0; i < sizeof(structs) / sizeof(structs[0]); i++)
		printf("%s\"%s\": %d", i ? ", " : "", structs[i], btf_size(btf, structs[i]));
	printf("}, \"members\": {\"bpf_htab\": ");
	print_members(btf, "bpf_htab");
	printf("}, \"bpf_loop\": %d}\n", has_bpf_loop());
	btf__free(btf);
	return 0;
}

const struct mb_mode mb_info = { .name = "info", .run = info_run };
