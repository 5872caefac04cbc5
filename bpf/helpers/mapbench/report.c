/* mapbench, output and the error exit: libbpf's log kept for the reason of a refusal, fail(). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "bench.h"
#include "mb.h"

static char libbpf_err[16384];

/* keep the tail of libbpf's messages: the verifier's/kernel's reason comes last */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[4096];
	size_t len = strlen(libbpf_err), n;

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	if (len + n >= sizeof(libbpf_err)) {
		size_t drop = len + n - sizeof(libbpf_err) + 1;

		if (drop > len)
			drop = len;
		memmove(libbpf_err, libbpf_err + drop, len - drop + 1);
		len -= drop;
	}
	memcpy(libbpf_err + len, line, n + 1 <= sizeof(libbpf_err) - len ? n + 1 : sizeof(libbpf_err) - len);
	libbpf_err[sizeof(libbpf_err) - 1] = 0;
	return 0;
}

void capture_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}

/* Exit with `code` (2: "unsupported: ", a refusal by the kernel), what failed, the error and the
 * tail of libbpf's log (the verifier's/kernel's reason is at its end). */
void fail(int code, const char *what, int err)
{
	char *last = libbpf_err;
	size_t n = strlen(libbpf_err);

	if (n > 1500)
		last = libbpf_err + n - 1500;
	err = err > 0 ? err : -err;
	die(code, "%s%s: %s%s%s", code == 2 ? "unsupported: " : "", what,
	    err == 524 ? "ENOTSUPP (524: not supported for this map type/flags)" : strerror(err),
	    *last ? "\n" : "", last);
}

/* a refusal by the kernel of a feature (not a bug of ours) */
int refused(int err)
{
	err = err < 0 ? -err : err;
	return err == EINVAL || err == ENOTSUP || err == EOPNOTSUPP || err == E2BIG || err == EPERM ||
	       err == 524 /* ENOTSUPP, kernel-internal */;
}

void print_list(const char *name, const double *v, int n)
{
	printf("\"%s\": [", name);
	for (int i = 0; i < n; i++)
		printf("%s%.4f", i ? ", " : "", v[i]);
	printf("]");
}
