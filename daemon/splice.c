/* splice.c — kernel splicing of routed connections through a BPF sockhash and sk_skb verdict. */
#include <errno.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rift/splice.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

/* TCP states as tcpi_state reports them (the kernel's include/net/tcp_states.h) */
enum { ST_TIME_WAIT = 6, ST_CLOSE_WAIT = 8, ST_LAST_ACK = 9, ST_CLOSING = 11 };

struct rift_splice {
	int map_fd, prog_fd;
};

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	struct bpf_insn i = {
		.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm
	};
	return i;
}

/*
 * The verdict program, assembled by hand so the build needs no BPF toolchain:
 *   key = bpf_get_socket_cookie(skb);   -- the socket that received the bytes
 *   return bpf_sk_redirect_hash(skb, map, &key, 0);   -- send them out of its peer
 * The map holds, under each socket's cookie, the socket it is joined to.
 */
static int load_program(int map_fd, char *log, size_t loglen)
{
	struct bpf_insn prog[] = {
		insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0),
		insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_socket_cookie),
		insn(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_0, -8, 0),
		insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_6, 0, 0),
		insn(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0, map_fd),
		insn(0, 0, 0, 0, 0),
		insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_10, 0, 0),
		insn(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_3, 0, 0, -8),
		insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, 0),
		insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_redirect_hash),
		insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SK_SKB;
	a.insns = (uint64_t)(uintptr_t)prog;
	a.insn_cnt = sizeof(prog) / sizeof(prog[0]);
	a.license = (uint64_t)(uintptr_t) "Apache-2.0";
	a.log_buf = (uint64_t)(uintptr_t)log;
	a.log_size = (uint32_t)loglen;
	a.log_level = 1;
	strncpy(a.prog_name, "rift_splice", sizeof(a.prog_name) - 1);
	return (int)sys_bpf(BPF_PROG_LOAD, &a);
}

struct rift_splice *rift_splice_open(unsigned max_pairs, char *err, size_t errlen)
{
	struct rift_splice *sp = calloc(1, sizeof(*sp));
	char log[2048] = "";
	union bpf_attr a;

	if (sp == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sp->prog_fd = -1;
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_SOCKHASH;
	a.key_size = sizeof(uint64_t);
	a.value_size = sizeof(uint64_t);
	a.max_entries = 2 * max_pairs;
	strncpy(a.map_name, "rift_peers", sizeof(a.map_name) - 1);
	sp->map_fd = (int)sys_bpf(BPF_MAP_CREATE, &a);
	if (sp->map_fd < 0) {
		snprintf(err, errlen, "cannot create a BPF socket map: %s", strerror(errno));
		goto fail;
	}
	sp->prog_fd = load_program(sp->map_fd, log, sizeof(log));
	if (sp->prog_fd < 0) {
		size_t n = strlen(log);
		while (n > 0 && (log[n - 1] == '\n' || log[n - 1] == ' '))
			log[--n] = '\0';
		snprintf(err, errlen, "the kernel refused the splice program: %s%s%.200s",
			 strerror(errno), n ? ": " : "", n > 200 ? log + n - 200 : log);
		goto fail;
	}
	memset(&a, 0, sizeof(a));
	a.target_fd = (uint32_t)sp->map_fd;
	a.attach_bpf_fd = (uint32_t)sp->prog_fd;
	a.attach_type = BPF_SK_SKB_VERDICT;
	if (sys_bpf(BPF_PROG_ATTACH, &a) != 0) {
		snprintf(err, errlen, "cannot attach the splice program to its map: %s",
			 strerror(errno));
		goto fail;
	}
	return sp;
fail:
	rift_splice_close(sp);
	return NULL;
}

void rift_splice_close(struct rift_splice *sp)
{
	if (sp == NULL)
		return;
	if (sp->prog_fd >= 0)
		close(sp->prog_fd);
	if (sp->map_fd >= 0)
		close(sp->map_fd);
	free(sp);
}

static int map_put(struct rift_splice *sp, uint64_t key, int fd, uint64_t flags)
{
	uint64_t value = (uint64_t)fd;
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)sp->map_fd;
	a.key = (uint64_t)(uintptr_t)&key;
	a.value = (uint64_t)(uintptr_t)&value;
	a.flags = flags;
	return sys_bpf(BPF_MAP_UPDATE_ELEM, &a) == 0 ? 0 : -errno;
}

static void map_drop(struct rift_splice *sp, uint64_t key)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)sp->map_fd;
	a.key = (uint64_t)(uintptr_t)&key;
	sys_bpf(BPF_MAP_DELETE_ELEM, &a);
}

int rift_splice_join(struct rift_splice *sp, int a, int b)
{
	uint64_t ka, kb;
	socklen_t len = sizeof(ka);
	int rc;

	if (getsockopt(a, SOL_SOCKET, SO_COOKIE, &ka, &len) != 0)
		return -errno;
	len = sizeof(kb);
	if (getsockopt(b, SOL_SOCKET, SO_COOKIE, &kb, &len) != 0)
		return -errno;
	rc = map_put(sp, ka, b, BPF_NOEXIST);
	if (rc != 0)
		return rc;
	rc = map_put(sp, kb, a, BPF_NOEXIST);
	if (rc != 0)
		map_drop(sp, ka);
	return rc;
}

int rift_splice_counters(int fd, uint64_t *received, uint64_t *queued)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int outq = 0;

	memset(&ti, 0, sizeof(ti));
	/* acked first, then the unacked rest: an ack in between can only make the sum smaller */
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    ioctl(fd, TIOCOUTQ, &outq) != 0)
		return -errno;
	*received = ti.tcpi_bytes_received;
	/* a received FIN takes a sequence number, and the kernel counts it as a byte */
	if (*received > 0 && (ti.tcpi_state == ST_CLOSE_WAIT || ti.tcpi_state == ST_LAST_ACK ||
			      ti.tcpi_state == ST_CLOSING || ti.tcpi_state == ST_TIME_WAIT))
		*received -= 1;
	*queued = ti.tcpi_bytes_acked + (uint64_t)outq;
	return 0;
}
