// SPDX-License-Identifier: GPL-2.0
// The loader of hello.bpf.o, against the host's libbpf: open the object, load it
// (libbpf applies its CO-RE relocations against the running kernel's BTF here), attach
// the tracepoint program, start one child process (this program again, which exits at
// once), and print every exec the program reports through the ring buffer for up to two
// seconds. The child's report must name this process as its parent: that is the value
// the BPF program read from task->real_parent->tgid.
//
// Usage: ./hello [OBJECT]   (default hello.bpf.o; as root, on a kernel with BTF)
// Exits 0 when the child's exec was reported with the right parent, 1 otherwise.
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "hello.h"

static pid_t child;
static int child_seen;

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

/* Called by ring_buffer__poll for each event the BPF program submitted. */
static int on_event(void *ctx, void *data, size_t size)
{
	const struct event *e = data;

	if (size < sizeof(*e))
		return 0;
	if (e->pid == child && e->ppid == getpid()) {
		printf("Hello, CO-RE! %s (pid %d) was started by pid %d: that is me\n", e->comm, e->pid, e->ppid);
		child_seen = 1;
	} else {
		printf("exec: %s (pid %d), parent pid %d\n", e->comm, e->pid, e->ppid);
	}
	return 0;
}

static double seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "hello.bpf.o";
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_link *link;
	struct bpf_map *map;
	struct ring_buffer *rb;
	char self[PATH_MAX];
	ssize_t n;
	double end;
	int err;

	if (argc > 1 && strcmp(argv[1], "--child") == 0)
		return 0; /* the child: its exec was the point */
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(print_libbpf);
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
		fprintf(stderr, "note: no /sys/kernel/btf/vmlinux: CO-RE needs a kernel with CONFIG_DEBUG_INFO_BTF\n");

	obj = bpf_object__open_file(path, NULL);
	err = libbpf_get_error(obj);
	if (err) {
		fprintf(stderr, "open %s: %s\n", path, strerror(-err));
		return 1;
	}
	err = bpf_object__load(obj); /* CO-RE relocations happen here */
	if (err) {
		fprintf(stderr, "load %s: %s (libbpf's and the verifier's messages are above)\n", path, strerror(-err));
		return 1;
	}
	prog = bpf_object__find_program_by_name(obj, "hello");
	map = bpf_object__find_map_by_name(obj, "events");
	if (!prog || !map) {
		fprintf(stderr, "%s has no program `hello` or no map `events`\n", path);
		return 1;
	}
	rb = ring_buffer__new(bpf_map__fd(map), on_event, NULL, NULL);
	err = libbpf_get_error(rb);
	if (err) {
		fprintf(stderr, "ring buffer: %s (BPF_MAP_TYPE_RINGBUF needs Linux 5.8 or newer)\n", strerror(-err));
		return 1;
	}
	link = bpf_program__attach(prog);
	err = libbpf_get_error(link);
	if (err) {
		fprintf(stderr, "attach %s: %s\n", bpf_program__section_name(prog), strerror(-err));
		return 1;
	}
	printf("attached hello at %s\n", bpf_program__section_name(prog));

	/* One exec to report: this program again, by its real path (so its name stays "hello"). */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		perror("readlink /proc/self/exe");
		return 1;
	}
	self[n] = 0;
	child = fork();
	if (child == 0) {
		execl(self, self, "--child", (char *)NULL);
		_exit(127);
	}
	if (child < 0) {
		perror("fork");
		return 1;
	}
	waitpid(child, NULL, 0);

	end = seconds() + 2.0;
	while (!child_seen && seconds() < end)
		ring_buffer__poll(rb, 100 /* ms */);
	ring_buffer__consume(rb);

	bpf_link__destroy(link);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	if (!child_seen) {
		fprintf(stderr, "the child's exec (pid %d) was not reported within 2 s\n", child);
		return 1;
	}
	return 0;
}
