// SPDX-License-Identifier: GPL-2.0
// kernel/btf: is /sys/kernel/btf/vmlinux present and parseable? Parses it with
// libbpf's BTF reader (the same code CO-RE loaders use) and looks up a few types
// every BPF lab needs. Prints `key: value` lines; exits 0 only when all held.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <bpf/btf.h>

/* btf__type_cnt() (libbpf 0.7+) counts type id 0 (void) too; libbpf 1.0 removed the
 * older btf__get_nr_types(), which Debian 11's libbpf 0.3 has instead. */
#if defined(LIBBPF_MAJOR_VERSION) && (LIBBPF_MAJOR_VERSION > 0 || LIBBPF_MINOR_VERSION >= 7)
#define type_count(btf) (btf__type_cnt(btf) - 1)
#else
#define type_count(btf) btf__get_nr_types(btf)
#endif

/* A failed libbpf call: NULL with errno set (libbpf 1.x), or an error pointer holding
 * -errno (libbpf 0.x, e.g. Debian 11's 0.3). Sets errno in both cases. */
static int failed(const void *p)
{
	if (!p)
		return 1;
	if ((unsigned long)p >= (unsigned long)-4095) {
		errno = -(long)p;
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/sys/kernel/btf/vmlinux";
	static const char *want[] = { "task_struct", "sk_buff", "pt_regs" };
	struct btf *btf;
	int missing = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	btf = btf__parse_raw(path);
	if (failed(btf)) {
		printf("error: cannot parse %s: %s%s\n", path, strerror(errno),
		       errno == ENOENT ? " (kernel built without CONFIG_DEBUG_INFO_BTF)" : "");
		return 1;
	}
	printf("types: %u\n", type_count(btf));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int id = btf__find_by_name_kind(btf, want[i], BTF_KIND_STRUCT);
		if (id < 0) {
			printf("missing: struct %s\n", want[i]);
			missing++;
		} else {
			const struct btf_type *t = btf__type_by_id(btf, id);
			printf("struct %s: id %d, %u bytes, %u members\n", want[i], id, t->size, btf_vlen(t));
		}
	}
	btf__free(btf);
	if (missing) {
		printf("error: %d expected struct(s) missing from %s\n", missing, path);
		return 1;
	}
	printf("result: ok\n");
	return 0;
}
