// SPDX-License-Identifier: GPL-2.0
// Loader for core_hello.bpf.o: libbpf applies the object's CO-RE relocations against
// the running kernel's BTF, attaches the raw tracepoint sys_enter, makes a syscall,
// and compares what the program read from task_struct (pid, tgid, comm) with the
// helper's answer and with getpid(). Prints `key: value` lines for labctl to judge.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

struct state {
	int target_tgid;
	int hits;
	int core_pid;
	int core_tgid;
	int helper_pid;
	int helper_tgid;
	char core_comm[16];
};

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

static int fail(const char *fmt, ...)
{
	va_list ap;

	printf("error: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	return 1;
}

/* Keep libbpf's CO-RE relocation lines (evidence of what was patched) and warnings. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (level != LIBBPF_DEBUG || strstr(line, "CO-RE relocating") || strstr(line, "patched insn"))
		fputs(line, stderr);
	return 0;
}

static struct bpf_map *bss_map(struct bpf_object *obj)
{
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj) {
		const char *n = bpf_map__name(m);
		size_t l = strlen(n);
		if (l >= 4 && strcmp(n + l - 4, ".bss") == 0)
			return m;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *obj_path = argc > 1 ? argv[1] : "core_hello.bpf.o";
	struct state st;
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_link *link;
	struct bpf_map *bss;
	int key = 0, err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(libbpf_print);
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
		printf("note: /sys/kernel/btf/vmlinux missing (kernel without DEBUG_INFO_BTF): CO-RE cannot relocate\n");
	obj = bpf_object__open_file(obj_path, NULL);
	if (failed(obj))
		return fail("open %s: %s", obj_path, strerror(errno));
	err = bpf_object__load(obj);
	if (err)
		return fail("load %s: %s (CO-RE needs the kernel's BTF at /sys/kernel/btf/vmlinux)", obj_path, strerror(-err));
	printf("loaded: CO-RE relocations applied against the running kernel's BTF\n");
	bss = bss_map(obj);
	prog = bpf_object__find_program_by_name(obj, "core_hello");
	if (!bss || !prog)
		return fail("%s lacks the .bss map or the core_hello program", obj_path);
	memset(&st, 0, sizeof(st));
	st.target_tgid = getpid();
	if (bpf_map_update_elem(bpf_map__fd(bss), &key, &st, BPF_ANY))
		return fail("update .bss: %s", strerror(errno));
	link = bpf_program__attach(prog);
	if (failed(link)) {
		err = errno;
		return fail("attach raw_tracepoint sys_enter: %s", strerror(err));
	}
	printf("attached: raw_tracepoint sys_enter\n");
	for (int i = 0; i < 3; i++)
		getppid();
	bpf_link__destroy(link);
	if (bpf_map_lookup_elem(bpf_map__fd(bss), &key, &st))
		return fail("read .bss: %s", strerror(errno));
	st.core_comm[15] = 0;
	printf("getpid: %d\n", getpid());
	printf("core: pid=%d tgid=%d comm=%s\n", st.core_pid, st.core_tgid, st.core_comm);
	printf("helper: pid=%d tgid=%d hits=%d\n", st.helper_pid, st.helper_tgid, st.hits);
	bpf_object__close(obj);
	if (st.hits == 0)
		return fail("the program never ran for this process");
	if (st.core_pid != st.helper_pid || st.core_tgid != st.helper_tgid || st.core_tgid != getpid())
		return fail("CO-RE reads disagree with the helper: relocation produced wrong offsets");
	if (strncmp(st.core_comm, "core-hello", 10) != 0)
		return fail("CO-RE read comm \"%s\", expected \"core-hello\"", st.core_comm);
	printf("result: ok\n");
	return 0;
}
