// SPDX-License-Identifier: GPL-2.0
// The loader of hello.bpf.o, against the host's libbpf (1.x, and 0.x's error
// pointers too): load the object into the kernel, attach every program in it (a
// kprobe attaches to the function its SEC("kprobe/<function>") names), make the kernel
// run the usual file paths once (open, write, remove a file under /tmp), then print the
// bpf_printk lines that arrive in trace_pipe within two seconds.
//
// Usage: ./hello [OBJECT]   (default hello.bpf.o; as root, on a kernel with BPF and kprobes)
// Exits 0 when at least one line arrived, 1 otherwise.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#define WAIT_SECONDS 2.0
#define MAX_LINES 20

/* libbpf's warnings and errors on stderr; its debug chatter is dropped. */
static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

static double seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Where tracefs shows the trace buffer: its own mount, or inside debugfs. */
static const char *find_trace_pipe(void)
{
	if (access("/sys/kernel/tracing/trace_pipe", R_OK) == 0)
		return "/sys/kernel/tracing/trace_pipe";
	if (access("/sys/kernel/debug/tracing/trace_pipe", R_OK) == 0)
		return "/sys/kernel/debug/tracing/trace_pipe";
	return NULL;
}

/* Make the kernel take the common file paths once: open (create), write, unlink. */
static void trigger(void)
{
	const char *path = "/tmp/labctl-hello-trigger";
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);

	if (fd >= 0) {
		if (write(fd, "hi\n", 3) < 0)
			perror("write");
		close(fd);
	}
	unlink(path);
}

/* Print the message part of each complete trace_pipe line in buf; returns how many. */
static int print_lines(char *buf, size_t *len, int shown)
{
	int printed = 0;
	char *nl;

	buf[*len] = 0;
	while ((nl = strchr(buf, '\n'))) {
		const char *msg;

		*nl = 0;
		/* "  hello-57  [001] d..31  3.1: bpf_trace_printk: Hello, BPF! ..." */
		msg = strstr(buf, "bpf_trace_printk: ");
		msg = msg ? msg + strlen("bpf_trace_printk: ") : buf;
		if (shown + printed < MAX_LINES)
			printf("%s\n", msg);
		printed++;
		*len -= nl + 1 - buf;
		memmove(buf, nl + 1, *len + 1);
	}
	return printed;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "hello.bpf.o";
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_link *links[16];
	int nlinks = 0, lines = 0, fd, err;
	const char *pipe_path;
	char buf[8192];
	size_t len = 0;
	double end;

	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(print_libbpf);

	pipe_path = find_trace_pipe();
	if (!pipe_path) {
		fprintf(stderr, "no trace_pipe: mount tracefs on /sys/kernel/tracing (the lab guest does)\n");
		return 1;
	}
	fd = open(pipe_path, O_RDONLY | O_NONBLOCK);
	if (fd < 0) {
		fprintf(stderr, "open %s: %s (run as root)\n", pipe_path, strerror(errno));
		return 1;
	}
	while (read(fd, buf, sizeof(buf)) > 0) /* drop older lines */
		;

	obj = bpf_object__open_file(path, NULL);
	err = libbpf_get_error(obj);
	if (err) {
		fprintf(stderr, "open %s: %s\n", path, strerror(-err));
		return 1;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "load %s: %s (the verifier's log is above)\n", path, strerror(-err));
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		struct bpf_link *link = bpf_program__attach(prog);

		err = libbpf_get_error(link);
		if (err) {
			fprintf(stderr, "attach %s (section %s): %s: is the function in /proc/kallsyms?\n",
				bpf_program__name(prog), bpf_program__section_name(prog), strerror(-err));
			return 1;
		}
		if (nlinks < 16)
			links[nlinks++] = link;
		printf("attached %s at %s\n", bpf_program__name(prog), bpf_program__section_name(prog));
	}

	trigger();

	end = seconds() + WAIT_SECONDS;
	while (seconds() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		poll(&p, 1, 100);
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n > 0) {
			len += n;
			lines += print_lines(buf, &len, lines);
			if (len == sizeof(buf) - 1) /* one enormous line: drop it */
				len = 0;
		}
	}
	if (lines > MAX_LINES)
		printf("(%d more lines not shown)\n", lines - MAX_LINES);

	while (nlinks > 0)
		bpf_link__destroy(links[--nlinks]);
	bpf_object__close(obj);
	close(fd);
	if (lines == 0) {
		fprintf(stderr, "no line from the program within %.0f s: does opening, writing or removing a file call the function it probes?\n",
			WAIT_SECONDS);
		return 1;
	}
	return 0;
}
