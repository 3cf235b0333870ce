// SPDX-License-Identifier: GPL-2.0
/*
 * ptyrun PROGRAM [ARGS...]: run PROGRAM with its stdout and stderr on a pseudo-terminal
 * and copy what it prints to our stdout as it comes.
 *
 * Why: C stdio fully buffers stdout when it is a file or a pipe, so a samples/bpf program
 * that prints a report each second (xdp1, tracex2) shows nothing until it exits. On a
 * terminal stdio flushes every line, and the suite can stop the program with SIGINT as
 * soon as its report shows what the test judges (the runner's `run_until`).
 *
 * The terminal is raw (no "\n" -> "\r\n", no echo), so the bytes arrive as printed.
 * SIGINT, SIGTERM and SIGHUP are passed on to the program. The program stays in our
 * process group, so a signal to the group reaches it. Once it has exited, whatever it
 * printed is copied and ptyrun exits with its status (128+N if signal N killed it),
 * without waiting for children that inherited the terminal (tracex2's dd).
 */
#define _XOPEN_SOURCE 600
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static volatile pid_t child = -1;

static void pass_on(int sig)
{
	if (child > 0)
		kill(child, sig);
}

/* Copy what is readable on the master now; 0 once the terminal has no writer left. */
static int copy(int m)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(m, buf, sizeof(buf));

		if (n > 0) {
			ssize_t off = 0;

			while (off < n) {
				ssize_t w = write(STDOUT_FILENO, buf + off, n - off);

				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					return 0;
				off += w;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		return 0; /* EIO: every slave descriptor is closed */
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct termios t;
	struct pollfd p;
	int m, s, status;
	char *name;

	if (argc < 2) {
		fprintf(stderr, "usage: ptyrun PROGRAM [ARGS...]\n");
		return 2;
	}
	m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m) || !(name = ptsname(m))) {
		perror("ptyrun: no pseudo-terminal (devpts on /dev/pts, /dev/ptmx)");
		return 2;
	}
	s = open(name, O_RDWR | O_NOCTTY);
	if (s < 0) {
		perror("ptyrun: open the terminal");
		return 2;
	}
	if (tcgetattr(s, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(s, TCSANOW, &t);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = pass_on;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	child = fork();
	if (child < 0) {
		perror("ptyrun: fork");
		return 2;
	}
	if (child == 0) {
		/* exec resets the handlers above to the default actions */
		dup2(s, STDOUT_FILENO);
		dup2(s, STDERR_FILENO);
		if (s > STDERR_FILENO)
			close(s);
		close(m);
		execvp(argv[1], argv + 1);
		fprintf(stderr, "ptyrun: %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	close(s);
	fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
	p.fd = m;
	p.events = POLLIN;
	for (;;) {
		pid_t r = waitpid(child, &status, WNOHANG);

		if (r == child)
			break;
		if (r < 0 && errno != EINTR) {
			perror("ptyrun: waitpid");
			return 2;
		}
		/* At most 50 ms between checks that the program is still running. */
		if (poll(&p, 1, 50) > 0 && !copy(m)) {
			/* No writer left: the program closed its output; wait for its exit. */
			while (waitpid(child, &status, 0) < 0) {
				if (errno != EINTR) {
					perror("ptyrun: waitpid");
					return 2;
				}
			}
			break;
		}
	}
	copy(m);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
