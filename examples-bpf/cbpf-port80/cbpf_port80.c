// SPDX-License-Identifier: GPL-2.0
// The seed notes' `tcpdump -d port 80` program (section 4) as a classic BPF socket
// filter: attached with SO_ATTACH_FILTER to a raw AF_PACKET socket on lo. Sends TCP
// and UDP to ports 80 and 81 over loopback (IPv4, and IPv6 when lo has ::1), then
// counts what the filtered socket received next to an unfiltered control socket.
// Also reports whether the kernel JIT-compiled the filter (see README.md: with
// net.core.bpf_jit_enable=2 the x86 JIT logs "... from=<comm> pid=<pid>" for every
// image it emits, so our own pid in that line is direct evidence).
// Prints `key: value` lines for labctl; exits 0 only when only port-80 packets arrived.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* tcpdump -d port 80, instruction for instruction. */
static struct sock_filter port80[] = {
	{ 0x28, 0, 0, 0x0000000c },  /* (000) ldh [12]              */
	{ 0x15, 0, 8, 0x000086dd },  /* (001) jeq #0x86dd jt 2 jf 10 */
	{ 0x30, 0, 0, 0x00000014 },  /* (002) ldb [20]              */
	{ 0x15, 2, 0, 0x00000084 },  /* (003) jeq #0x84 jt 6 jf 4   */
	{ 0x15, 1, 0, 0x00000006 },  /* (004) jeq #0x6 jt 6 jf 5    */
	{ 0x15, 0, 17, 0x00000011 }, /* (005) jeq #0x11 jt 6 jf 23  */
	{ 0x28, 0, 0, 0x00000036 },  /* (006) ldh [54]              */
	{ 0x15, 14, 0, 0x00000050 }, /* (007) jeq #0x50 jt 22 jf 8  */
	{ 0x28, 0, 0, 0x00000038 },  /* (008) ldh [56]              */
	{ 0x15, 12, 13, 0x00000050 },/* (009) jeq #0x50 jt 22 jf 23 */
	{ 0x15, 0, 12, 0x00000800 }, /* (010) jeq #0x800 jt 11 jf 23 */
	{ 0x30, 0, 0, 0x00000017 },  /* (011) ldb [23]              */
	{ 0x15, 2, 0, 0x00000084 },  /* (012) jeq #0x84 jt 15 jf 13 */
	{ 0x15, 1, 0, 0x00000006 },  /* (013) jeq #0x6 jt 15 jf 14  */
	{ 0x15, 0, 8, 0x00000011 },  /* (014) jeq #0x11 jt 15 jf 23 */
	{ 0x28, 0, 0, 0x00000014 },  /* (015) ldh [20]              */
	{ 0x45, 6, 0, 0x00001fff },  /* (016) jset #0x1fff jt 23 jf 17 */
	{ 0xb1, 0, 0, 0x0000000e },  /* (017) ldxb 4*([14]&0xf)     */
	{ 0x48, 0, 0, 0x0000000e },  /* (018) ldh [x + 14]          */
	{ 0x15, 2, 0, 0x00000050 },  /* (019) jeq #0x50 jt 22 jf 20 */
	{ 0x48, 0, 0, 0x00000010 },  /* (020) ldh [x + 16]          */
	{ 0x15, 0, 1, 0x00000050 },  /* (021) jeq #0x50 jt 22 jf 23 */
	{ 0x06, 0, 0, 0x00040000 },  /* (022) ret #262144           */
	{ 0x06, 0, 0, 0x00000000 },  /* (023) ret #0                */
};

struct counts {
	int total, port80, other, tcp80, udp80, tcp81, udp81, v6;
};

/* Classify one Ethernet frame seen on lo: protocol and ports. */
static void classify(const unsigned char *p, ssize_t n, struct counts *c)
{
	int proto = -1, off = -1;
	unsigned short ethertype;

	if (n < 14)
		return;
	c->total++;
	ethertype = p[12] << 8 | p[13];
	if (ethertype == ETH_P_IP && n >= 34) {
		proto = p[23];
		off = 14 + (p[14] & 0xf) * 4;
	} else if (ethertype == ETH_P_IPV6 && n >= 54) {
		proto = p[20];
		off = 54;
		c->v6++;
	}
	if ((proto == 6 || proto == 17) && off > 0 && n >= off + 4) {
		int sport = p[off] << 8 | p[off + 1], dport = p[off + 2] << 8 | p[off + 3];
		int is80 = sport == 80 || dport == 80, is81 = sport == 81 || dport == 81;
		if (is80) {
			c->port80++;
			if (proto == 6) c->tcp80++; else c->udp80++;
		} else {
			c->other++;
			if (is81 && proto == 6) c->tcp81++;
			if (is81 && proto == 17) c->udp81++;
		}
	} else {
		c->other++;
	}
}

static void drain(int fd, struct counts *c)
{
	unsigned char buf[65536];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		classify(buf, n, c);
}

static int packet_socket(int ifindex)
{
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = ifindex };
	int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&ll, sizeof(ll)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One UDP datagram and one TCP connect (SYN, answered by RST without a listener). */
static int send_to(int family, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	}
	fd = socket(family, SOCK_DGRAM, 0);
	if (fd < 0)
		return -1;
	if (sendto(fd, "labctl", 6, 0, (struct sockaddr *)&ss, len) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	connect(fd, (struct sockaddr *)&ss, len); /* ECONNREFUSED is expected */
	close(fd);
	return 0;
}

static int read_int(const char *path, int *v)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%d", v) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

static int write_int(const char *path, int v)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fprintf(f, "%d\n", v);
	return fclose(f);
}

/* Non-blocking read of the kernel log: is there a JIT dump line with our pid? */
static int kmsg_has_jit_dump(int kfd, int pid)
{
	char rec[8192], want[64];
	ssize_t n;
	int found = 0;

	snprintf(want, sizeof(want), " pid=%d", pid);
	while ((n = read(kfd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue;
		rec[n] = 0;
		if (strstr(rec, "flen=") && strstr(rec, "from=") && strstr(rec, want))
			found = 1;
	}
	return found;
}

int main(void)
{
	const char *jit_path = "/proc/sys/net/core/bpf_jit_enable";
	struct sock_fprog fprog = { .len = sizeof(port80) / sizeof(port80[0]), .filter = port80 };
	struct counts f = { 0 }, ctl = { 0 };
	int ifindex = if_nametoindex("lo");
	int fd, cfd, kfd, jit_before = -1, jited = 0, have_v6, dump_on = 0;
	int pid = getpid();

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!ifindex) {
		printf("error: no lo interface\n");
		return 1;
	}
	/* Ask the JIT to log what it emits (restored below). */
	kfd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (kfd >= 0)
		lseek(kfd, 0, SEEK_END);
	if (read_int(jit_path, &jit_before) == 0) {
		printf("bpf_jit_enable: %d\n", jit_before);
		if (jit_before == 1 && write_int(jit_path, 2) != 0)
			printf("note: cannot set bpf_jit_enable=2 (%s); JIT evidence unavailable\n", strerror(errno));
		else if (jit_before == 1)
			dump_on = 1;
	} else {
		printf("bpf_jit_enable: absent (kernel built without CONFIG_BPF_JIT)\n");
	}

	fd = packet_socket(ifindex);
	cfd = packet_socket(ifindex);
	if (fd < 0 || cfd < 0) {
		printf("error: AF_PACKET socket on lo: %s (the kernel needs CONFIG_PACKET)\n", strerror(errno));
		return 1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) < 0) {
		printf("error: SO_ATTACH_FILTER: %s\n", strerror(errno));
		return 1;
	}
	if (dump_on) {
		write_int(jit_path, jit_before);
		jited = kfd >= 0 && kmsg_has_jit_dump(kfd, pid);
	}
	/* Packets queued before the filter was attached do not count. */
	drain(fd, &(struct counts){ 0 });
	drain(cfd, &(struct counts){ 0 });

	send_to(AF_INET, 80);
	send_to(AF_INET, 81);
	have_v6 = send_to(AF_INET6, 80) == 0;
	if (have_v6)
		send_to(AF_INET6, 81);
	usleep(200000);
	drain(fd, &f);
	drain(cfd, &ctl);

	printf("ipv6: %s\n", have_v6 ? "yes" : "no (no ::1 on lo)");
	printf("control: total=%d port80=%d tcp81=%d udp81=%d ipv6=%d\n", ctl.total, ctl.port80, ctl.tcp81, ctl.udp81, ctl.v6);
	printf("filtered: total=%d port80=%d other=%d tcp80=%d udp80=%d ipv6=%d\n", f.total, f.port80, f.other, f.tcp80, f.udp80, f.v6);
	printf("jit: %s\n", jit_before < 0 ? "no (no BPF JIT in this kernel)" :
	       jit_before == 0 ? "no (net.core.bpf_jit_enable=0: interpreted)" :
	       !dump_on ? "unknown (bpf_jit_enable=1, but the JIT dump could not be switched on)" :
	       jited ? "yes (JIT image logged for this pid)" : "no (no JIT image logged for this pid)");
	if (ctl.tcp81 == 0 || ctl.udp81 == 0 || ctl.port80 == 0) {
		printf("error: the control socket did not see the test traffic\n");
		return 1;
	}
	if (f.other != 0 || f.tcp80 == 0 || f.udp80 == 0 || (have_v6 && f.v6 == 0)) {
		printf("error: the filter let through %d non-port-80 packets (tcp80=%d udp80=%d ipv6=%d)\n", f.other, f.tcp80, f.udp80, f.v6);
		return 1;
	}
	printf("result: ok\n");
	return 0;
}
