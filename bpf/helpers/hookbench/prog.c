/* hookbench: picking the programs of --prog in a mode's object, loading it, a refused attach. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "hookbench.h"

/* Is `name` one of the comma-separated names in `list`? */
int in_list(const char *name, const char *list)
{
	size_t n = strlen(name);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && !strncmp(p, name, n))
			return 1;
		p = end ? end + 1 : NULL;
	}
	return 0;
}

/* Autoload exactly the programs of --prog (one name, or with `many` a comma-separated list, every
 * one of which must exist) and return them in progs[] (at most max), how many as the value. None
 * for --prog none: trials without a program (nothing is loaded). Exit 2 for a missing program. */
int pick_progs(struct bpf_object *obj, const struct hb_args *a, int many, struct bpf_program **progs, int max)
{
	struct bpf_program *p;
	int n = 0, listed = 1;

	bpf_object__for_each_program(p, obj) {
		int mine = many ? in_list(bpf_program__name(p), a->prog) : !strcmp(bpf_program__name(p), a->prog);

		bpf_program__set_autoload(p, mine);
		if (mine && n < max)
			progs[n++] = p;
	}
	if (!n && strcmp(a->prog, "none"))
		die(2, "no program %s in %s", a->prog, a->obj);
	if (many && n) {
		for (const char *c = a->prog; *c; c++)
			listed += *c == ',';
		if (listed != n)
			die(2, "not every program of %s is in %s (found %d of %d)", a->prog, a->obj, n, listed);
	}
	return n;
}

/* Load a mode's skeleton (its programs, and .bss/.rodata mapped into skel->bss / skel->rodata). */
void load_skel(struct bpf_object_skeleton *s, const struct hb_args *a)
{
	if (bpf_object__load_skeleton(s))
		die(2, "loading %s from %s refused: %s", a->prog, a->obj, strerror(errno));
}

/* 0 for an attached link, else -1 with the reason on stderr */
int link_ok(const struct bpf_program *p, const struct bpf_link *link)
{
	if (link)
		return 0;
	fprintf(stderr, "attach %s: %s\n", bpf_program__name(p), strerror(errno));
	return -1;
}
