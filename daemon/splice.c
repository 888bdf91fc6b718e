/* splice.c — kernel splicing of routed connections through a BPF sockhash and sk_skb verdict. */
#include <errno.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
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

#include "rift/log.h"
#include "rift/splice.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

/* TCP states as tcpi_state reports them (the kernel's include/net/tcp_states.h) */
enum { ST_TIME_WAIT = 6, ST_CLOSE_WAIT = 8, ST_LAST_ACK = 9, ST_CLOSING = 11 };

struct rift_splice {
	int map_fd, prog_fd; /* joined pairs: each side's bytes go out of the other */
	int in_map, out_map, in_prog, out_prog; /* direct mode */
	bool direct;
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

static int load(enum bpf_prog_type type, const struct bpf_insn *prog, size_t n, const char *name,
		char *log, size_t loglen)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_type = type;
	a.insns = (uint64_t)(uintptr_t)prog;
	a.insn_cnt = (uint32_t)n;
	a.license = (uint64_t)(uintptr_t) "Apache-2.0";
	a.log_buf = (uint64_t)(uintptr_t)log;
	a.log_size = (uint32_t)loglen;
	a.log_level = 1;
	snprintf(a.prog_name, sizeof(a.prog_name), "%s", name);
	return (int)sys_bpf(BPF_PROG_LOAD, &a);
}

/*
 * The common end of both programs, with the context in r6 and the 8-byte key at r10-8:
 *   if (redirect(ctx, map, &key, flags) == SK_DROP) return SK_PASS;  -- not joined: the bytes
 *   return SK_PASS;                                                   -- stay where they are
 * Writes REDIRECT_LEN instructions at at.
 */
#define REDIRECT_LEN 10
static void emit_redirect(struct bpf_insn *at, int map_fd, int32_t helper, int32_t flags)
{
	const struct bpf_insn tail[REDIRECT_LEN] = {
		insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_6, 0, 0),
		insn(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0, map_fd),
		insn(0, 0, 0, 0, 0),
		insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_10, 0, 0),
		insn(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_3, 0, 0, -8),
		insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, flags),
		insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper),
		insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 1, SK_DROP),
		insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, SK_PASS),
		insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};

	memcpy(at, tail, sizeof(tail));
}

/*
 * The receive-side program, assembled by hand so the build needs no BPF toolchain: the key is
 * bpf_get_socket_cookie(skb), the socket that received the bytes; then bpf_sk_redirect_hash.
 * flags 0 sends the bytes out of the peer; BPF_F_INGRESS queues them for the peer's reader.
 */
static int load_skb_program(int map_fd, int flags, char *log, size_t loglen)
{
	struct bpf_insn prog[3 + REDIRECT_LEN] = {
		insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0),
		insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_socket_cookie),
		insn(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_0, -8, 0),
	};

	emit_redirect(prog + 3, map_fd, BPF_FUNC_sk_redirect_hash, flags);
	return load(BPF_PROG_TYPE_SK_SKB, prog, sizeof(prog) / sizeof(prog[0]), "rift_splice", log,
		    loglen);
}

/*
 * The send-side program, run in the server's own send call on its socket (sk_msg helpers have
 * no socket cookie, so the key is the socket's ports as sk_msg_md holds them):
 *   key = (u64)md->remote_port << 32 | md->local_port; then bpf_msg_redirect_hash, flags 0.
 */
static int load_msg_program(int map_fd, char *log, size_t loglen)
{
	struct bpf_insn prog[6 + REDIRECT_LEN] = {
		insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0),
		insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_6,
		     offsetof(struct sk_msg_md, remote_port), 0),
		insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_6,
		     offsetof(struct sk_msg_md, local_port), 0),
		insn(BPF_ALU64 | BPF_LSH | BPF_K, BPF_REG_2, 0, 0, 32),
		insn(BPF_ALU64 | BPF_OR | BPF_X, BPF_REG_2, BPF_REG_3, 0, 0),
		insn(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_2, -8, 0),
	};

	emit_redirect(prog + 6, map_fd, BPF_FUNC_msg_redirect_hash, 0);
	return load(BPF_PROG_TYPE_SK_MSG, prog, sizeof(prog) / sizeof(prog[0]), "rift_out", log,
		    loglen);
}

static int make_map(unsigned entries, const char *name)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_SOCKHASH;
	a.key_size = sizeof(uint64_t);
	a.value_size = sizeof(uint64_t);
	a.max_entries = entries;
	snprintf(a.map_name, sizeof(a.map_name), "%s", name);
	return (int)sys_bpf(BPF_MAP_CREATE, &a);
}

static int attach(int map_fd, int prog_fd, enum bpf_attach_type type)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.target_fd = (uint32_t)map_fd;
	a.attach_bpf_fd = (uint32_t)prog_fd;
	a.attach_type = type;
	return sys_bpf(BPF_PROG_ATTACH, &a) == 0 ? 0 : -errno;
}

static void trim_log(char *log)
{
	size_t n = strlen(log);

	while (n > 0 && (log[n - 1] == '\n' || log[n - 1] == ' '))
		log[--n] = '\0';
	if (n > 200)
		memmove(log, log + n - 200, 201);
}

/* The direct mode's maps and programs; on failure only that mode is off. */
static void open_direct(struct rift_splice *sp, unsigned entries)
{
	char log[2048] = "";

	sp->in_map = make_map(entries, "rift_in");
	sp->out_map = make_map(entries, "rift_out");
	if (sp->in_map < 0 || sp->out_map < 0)
		return;
	sp->in_prog = load_skb_program(sp->in_map, BPF_F_INGRESS, log, sizeof(log));
	sp->out_prog = load_msg_program(sp->out_map, log, sizeof(log));
	if (sp->in_prog < 0 || sp->out_prog < 0 ||
	    attach(sp->in_map, sp->in_prog, BPF_SK_SKB_VERDICT) != 0 ||
	    attach(sp->out_map, sp->out_prog, BPF_SK_MSG_VERDICT) != 0) {
		trim_log(log);
		LOG_WARN("router", "direct splicing is off: %s", log);
		return;
	}
	sp->direct = true;
}

struct rift_splice *rift_splice_open(unsigned max_pairs, char *err, size_t errlen)
{
	struct rift_splice *sp = calloc(1, sizeof(*sp));
	char log[2048] = "";
	int rc;

	if (sp == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sp->prog_fd = sp->in_map = sp->out_map = sp->in_prog = sp->out_prog = -1;
	sp->map_fd = make_map(2 * max_pairs, "rift_peers");
	if (sp->map_fd < 0) {
		snprintf(err, errlen, "cannot create a BPF socket map: %s", strerror(errno));
		goto fail;
	}
	sp->prog_fd = load_skb_program(sp->map_fd, 0, log, sizeof(log));
	if (sp->prog_fd < 0) {
		int e = errno;
		trim_log(log);
		snprintf(err, errlen, "the kernel refused the splice program: %s%s%s", strerror(e),
			 log[0] ? ": " : "", log);
		goto fail;
	}
	rc = attach(sp->map_fd, sp->prog_fd, BPF_SK_SKB_VERDICT);
	if (rc != 0) {
		snprintf(err, errlen, "cannot attach the splice program to its map: %s",
			 strerror(-rc));
		goto fail;
	}
	open_direct(sp, 2 * max_pairs);
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
	if (sp->in_prog >= 0)
		close(sp->in_prog);
	if (sp->out_prog >= 0)
		close(sp->out_prog);
	if (sp->in_map >= 0)
		close(sp->in_map);
	if (sp->out_map >= 0)
		close(sp->out_map);
	free(sp);
}

static int map_put(int map, uint64_t key, int fd, uint64_t flags)
{
	uint64_t value = (uint64_t)fd;
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)map;
	a.key = (uint64_t)(uintptr_t)&key;
	a.value = (uint64_t)(uintptr_t)&value;
	a.flags = flags;
	return sys_bpf(BPF_MAP_UPDATE_ELEM, &a) == 0 ? 0 : -errno;
}

static void map_drop(int map, uint64_t key)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)map;
	a.key = (uint64_t)(uintptr_t)&key;
	sys_bpf(BPF_MAP_DELETE_ELEM, &a);
}

static int cookie_of(int fd, uint64_t *out)
{
	socklen_t len = sizeof(*out);

	return getsockopt(fd, SOL_SOCKET, SO_COOKIE, out, &len) == 0 ? 0 : -errno;
}

int rift_splice_join(struct rift_splice *sp, int a, int b)
{
	uint64_t ka, kb;
	int rc;

	if ((rc = cookie_of(a, &ka)) != 0 || (rc = cookie_of(b, &kb)) != 0)
		return rc;
	rc = map_put(sp->map_fd, ka, b, BPF_NOEXIST);
	if (rc != 0)
		return rc;
	rc = map_put(sp->map_fd, kb, a, BPF_NOEXIST);
	if (rc != 0)
		map_drop(sp->map_fd, ka);
	return rc;
}

bool rift_splice_direct(const struct rift_splice *sp)
{
	return sp->direct;
}

int rift_splice_join_direct(struct rift_splice *sp, int client, int server)
{
	struct sockaddr_in local, remote;
	socklen_t len = sizeof(local);
	uint64_t kc, ks, out_key;
	int rc;

	if (!sp->direct)
		return -ENOTSUP;
	if ((rc = cookie_of(client, &kc)) != 0 || (rc = cookie_of(server, &ks)) != 0)
		return rc;
	if (getsockname(server, (struct sockaddr *)&local, &len) != 0)
		return -errno;
	len = sizeof(remote);
	if (getpeername(server, (struct sockaddr *)&remote, &len) != 0)
		return -errno;
	if (local.sin_family != AF_INET || remote.sin_family != AF_INET)
		return -EAFNOSUPPORT;
	/* as sk_msg_md holds them: the remote port in network order in the upper 16 bits */
	out_key = ((uint64_t)((uint32_t)remote.sin_port << 16) << 32) | ntohs(local.sin_port);
	/* Membership keys put each socket in both maps (so both get both programs) under keys no
	 * lookup makes: cookies are far below 2^63, and real out keys have bits 16..31 clear. */
	if ((rc = map_put(sp->in_map, kc, server, BPF_NOEXIST)) != 0)
		return rc;
	if ((rc = map_put(sp->in_map, kc | (1ull << 63), client, BPF_NOEXIST)) != 0)
		goto undo1;
	if ((rc = map_put(sp->out_map, (ks << 32) | 0xffff0000u, server, BPF_NOEXIST)) != 0)
		goto undo2;
	if ((rc = map_put(sp->out_map, out_key, client, BPF_NOEXIST)) != 0)
		goto undo3;
	return 0;
undo3:
	map_drop(sp->out_map, (ks << 32) | 0xffff0000u);
undo2:
	map_drop(sp->in_map, kc | (1ull << 63));
undo1:
	map_drop(sp->in_map, kc);
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
