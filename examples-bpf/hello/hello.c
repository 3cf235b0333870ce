// SPDX-License-Identifier: GPL-2.0
// Loader for hello.bpf.o: load, attach a kprobe to the kernel's openat entry,
// trigger an openat, find "Hello, World!" in trace_pipe, detach, and prove that no
// program is left loaded. Prints one `key: value` line per step for labctl to judge;
// exits 0 only when every step held (`hello OBJ --hold` stays attached until stdin ends).
// Linked static where the host's libraries allow it,
// else dynamic (labctl then copies its shared libraries into the guest).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

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
	fflush(stdout);
	return 1;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* True when /proc/kallsyms lists `name` as a function symbol. */
static int kernel_has_symbol(const char *name)
{
	char line[512], sym[256];
	unsigned long addr;
	char type;
	FILE *f = fopen("/proc/kallsyms", "r");
	int found = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx %c %255s", &addr, &type, sym) == 3 && strcmp(sym, name) == 0) {
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

static const char *trace_pipe_path(void)
{
	static const char *paths[] = { "/sys/kernel/tracing/trace_pipe",
				       "/sys/kernel/debug/tracing/trace_pipe" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], R_OK) == 0)
			return paths[i];
	return NULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *obj_path = argc > 1 ? argv[1] : "hello.bpf.o";
	/* --hold: stay attached after the trace line until standard input ends (the suite's
	 * bpftool test lists the program meanwhile). */
	int hold = argc > 2 && strcmp(argv[2], "--hold") == 0;
	const char *target = kernel_has_symbol("do_sys_openat2") ? "do_sys_openat2" : "do_sys_open";
	struct bpf_prog_info info;
	__u32 info_len = sizeof(info);
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_link *link;
	const char *tp;
	char buf[4096];
	size_t have = 0;
	int tfd, found = 0, err;
	__u32 id;

	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(libbpf_print);

	tp = trace_pipe_path();
	if (!tp)
		return fail("no trace_pipe: tracefs is not mounted or the kernel lacks CONFIG_FTRACE");
	/* Drain old lines so only our own output is judged. */
	tfd = open(tp, O_RDONLY | O_NONBLOCK);
	if (tfd < 0)
		return fail("open %s: %s", tp, strerror(errno));
	while (read(tfd, buf, sizeof(buf)) > 0)
		;

	obj = bpf_object__open_file(obj_path, NULL);
	if (failed(obj))
		return fail("open %s: %s", obj_path, strerror(errno));
	err = bpf_object__load(obj);
	if (err)
		return fail("load %s: %s (the kernel needs BPF_SYSCALL and BPF_EVENTS)", obj_path, strerror(-err));
	prog = bpf_object__find_program_by_name(obj, "hello");
	if (!prog)
		return fail("program `hello` not found in %s", obj_path);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &info_len))
		return fail("bpf_obj_get_info_by_fd: %s", strerror(errno));
	id = info.id;
	printf("loaded: prog id %u, jited %u bytes\n", id, info.jited_prog_len);

	link = bpf_program__attach_kprobe(prog, false, target);
	if (failed(link)) {
		err = errno;
		return fail("attach kprobe %s: %s (the kernel needs KPROBES and KPROBE_EVENTS)", target, strerror(err));
	}
	printf("attached: kprobe %s\n", target);

	/* The trigger: one openat in the guest. */
	int fd = open("/proc/self/status", O_RDONLY);
	if (fd >= 0)
		close(fd);

	double deadline = now() + 5.0;
	while (!found && now() < deadline) {
		struct pollfd p = { .fd = tfd, .events = POLLIN };
		poll(&p, 1, 100);
		ssize_t n = read(tfd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			continue;
		have += n;
		buf[have] = 0;
		char *line, *nl;
		while ((nl = strchr(buf, '\n'))) {
			*nl = 0;
			line = buf;
			if (strstr(line, "Hello, World!")) {
				printf("trace: %s\n", line);
				found = 1;
			}
			memmove(buf, nl + 1, have - (nl + 1 - buf) + 1);
			have -= nl + 1 - buf;
		}
		if (have == sizeof(buf) - 1)
			have = 0;
	}
	close(tfd);
	if (!found)
		return fail("no \"Hello, World!\" in %s within 5 s after an openat", tp);

	if (hold) {
		printf("holding: prog id %u attached until standard input ends\n", id);
		while (read(0, buf, sizeof(buf)) > 0)
			;
	}
	bpf_link__destroy(link);
	bpf_object__close(obj);
	/* The program's id must disappear once the link and object are gone. */
	deadline = now() + 3.0;
	int still = 1;
	while (now() < deadline) {
		int pfd = bpf_prog_get_fd_by_id(id);
		if (pfd < 0 && errno == ENOENT) {
			still = 0;
			break;
		}
		if (pfd >= 0)
			close(pfd);
		usleep(50000);
	}
	if (still)
		return fail("prog id %u is still loaded after detach", id);
	printf("detached: prog id %u is gone\n", id);
	printf("result: ok\n");
	return 0;
}
