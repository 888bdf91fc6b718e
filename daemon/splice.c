/* splice.c — kernel splicing of routed connections through a BPF sockhash and sk_skb verdict. */
#include <assert.h>
#include <errno.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "rift/log.h"
#include "rift/splice.h"
#include "splice.skel.h" /* generated from bpf/splice.bpf.c */

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

/* TCP states as tcpi_state reports them (the kernel's include/net/tcp_states.h) */
enum { ST_TIME_WAIT = 6, ST_CLOSE_WAIT = 8, ST_LAST_ACK = 9, ST_CLOSING = 11 };

struct rift_splice {
	struct rift_splice_bpf *bpf;
	int map_fd;          /* joined pairs: each side's bytes go out of the other */
	int in_map, out_map; /* direct mode */
	bool direct;
};

/* While rift_splice_open runs: the tail of libbpf's warnings, for the message that says why */
static _Thread_local char *bpf_warnings;
static _Thread_local size_t bpf_warnings_len;

/* Appends warning w to bpf_warnings, keeping the tail: a verifier log ends with its reason. */
static void keep_warning(const char *w)
{
	size_t have = strlen(bpf_warnings), add = strlen(w) + (have ? 2 : 0),
	       cap = bpf_warnings_len;

	assert(cap > 1);
	if (add >= cap) { /* w alone fills the buffer: its tail */
		snprintf(bpf_warnings, cap, "%s", w + (add - cap + 1));
		return;
	}
	if (have + add >= cap) { /* drop the oldest bytes */
		memmove(bpf_warnings, bpf_warnings + (have + add - cap + 1), cap - add);
		have = strlen(bpf_warnings);
	}
	snprintf(bpf_warnings + have, cap - have, "%s%s", have ? "; " : "", w);
}

/*
 * libbpf's messages go to riftd's log at debug level, its warnings (a verifier log among them)
 * too, since the caller reports a failure with their tail. Left out of that tail: libbpf's
 * closing "failed to load" lines, which name no cause, and the notes on optional features.
 */
__attribute__((format(printf, 2, 0))) static int libbpf_to_log(enum libbpf_print_level level,
							       const char *fmt, va_list ap)
{
	char *line = NULL, *p;
	const char *w;
	va_list copy;
	int len;
	size_t n;

	if (level == LIBBPF_DEBUG && rift_log_threshold < RIFT_LOG_DEBUG)
		return 0;
	va_copy(copy, ap);
	len = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (len <= 0 || (line = malloc((size_t)len + 1)) == NULL)
		return 0;
	vsnprintf(line, (size_t)len + 1, fmt, ap);
	for (p = line; *p; p++) /* a verifier log is one message of many lines */
		if (*p == '\n')
			*p = ' ';
	n = strlen(line);
	while (n > 0 && line[n - 1] == ' ')
		line[--n] = '\0';
	if ((p = strstr(line, " -- END PROG LOAD LOG --")) != NULL)
		*p = '\0';
	LOG_DEBUG("router", "%s", line);
	w = strncmp(line, "libbpf: ", 8) == 0 ? line + 8 : line;
	if (level == LIBBPF_WARN && bpf_warnings != NULL && w[0] != '\0' &&
	    strncmp(w, "failed to load ", 15) != 0 && strstr(w, "optional") == NULL)
		keep_warning(w);
	free(line);
	return 0;
}

/*
 * Opens and loads the programs with their maps sized for max_pairs; with direct false the
 * direct mode's programs are left out (older kernels have no sk_msg redirect). NULL or the
 * loaded skeleton; errno is set on failure.
 */
static struct rift_splice_bpf *load_programs(unsigned max_pairs, bool direct)
{
	struct rift_splice_bpf *bpf = rift_splice_bpf__open();
	int rc;

	if (bpf == NULL)
		return NULL;
	if ((rc = bpf_map__set_max_entries(bpf->maps.rift_peers, 2 * max_pairs)) != 0 ||
	    (rc = bpf_map__set_max_entries(bpf->maps.rift_in, 2 * max_pairs)) != 0 ||
	    (rc = bpf_map__set_max_entries(bpf->maps.rift_out, 2 * max_pairs)) != 0)
		goto fail;
	/* without direct mode, its maps are not made either: their creation may be what failed */
	if (!direct && ((rc = bpf_program__set_autoload(bpf->progs.rift_in_skb, false)) != 0 ||
			(rc = bpf_program__set_autoload(bpf->progs.rift_out_msg, false)) != 0 ||
			(rc = bpf_map__set_autocreate(bpf->maps.rift_in, false)) != 0 ||
			(rc = bpf_map__set_autocreate(bpf->maps.rift_out, false)) != 0))
		goto fail;
	if ((rc = rift_splice_bpf__load(bpf)) != 0)
		goto fail;
	return bpf;
fail:
	rift_splice_bpf__destroy(bpf);
	errno = rc < 0 ? -rc : EINVAL;
	return NULL;
}

/* Attaches prog as map's verdict program: every socket put in map gets it. 0 or -errno. */
static int attach(struct bpf_map *map, struct bpf_program *prog, enum bpf_attach_type type)
{
	return bpf_prog_attach(bpf_program__fd(prog), bpf_map__fd(map), type, 0) == 0 ? 0 : -errno;
}

struct rift_splice *rift_splice_open(unsigned max_pairs, char *err, size_t errlen)
{
	struct rift_splice *sp = calloc(1, sizeof(*sp));
	char warning[512] = "", direct_off[512] = "";
	struct rlimit memlock;
	bool saved;
	int rc;

	if (sp == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	assert(max_pairs > 0);
	libbpf_set_print(libbpf_to_log);
	/* On kernels without memcg accounting of BPF memory (before 5.11) libbpf lifts the
	 * process's RLIMIT_MEMLOCK to unlimited before loading, and every server riftd starts, with
	 * any shell a branch superuser runs, would inherit that. Put back once loaded (Debian's
	 * libbpf 1.1 does not export libbpf_set_memlock_rlim, which would prevent it). */
	saved = getrlimit(RLIMIT_MEMLOCK, &memlock) == 0;
	bpf_warnings = warning;
	bpf_warnings_len = sizeof(warning);
	sp->bpf = load_programs(max_pairs, true);
	if (sp->bpf != NULL) {
		sp->direct = true;
	} else {
		snprintf(direct_off, sizeof(direct_off), "%s",
			 warning[0] ? warning : strerror(errno));
		warning[0] = '\0';
		sp->bpf = load_programs(max_pairs, false);
	}
	if (saved && setrlimit(RLIMIT_MEMLOCK, &memlock) != 0)
		LOG_WARN("router",
			 "cannot restore RLIMIT_MEMLOCK after loading the splice programs: %s",
			 strerror(errno));
	if (sp->bpf == NULL) {
		int e = errno;
		snprintf(err, errlen, "the kernel refused the splice program: %s%s%s", strerror(e),
			 warning[0] ? ": " : "", warning);
		goto fail;
	}
	sp->map_fd = bpf_map__fd(sp->bpf->maps.rift_peers);
	sp->in_map = sp->direct ? bpf_map__fd(sp->bpf->maps.rift_in) : -1;
	sp->out_map = sp->direct ? bpf_map__fd(sp->bpf->maps.rift_out) : -1;
	rc = attach(sp->bpf->maps.rift_peers, sp->bpf->progs.rift_splice, BPF_SK_SKB_VERDICT);
	if (rc != 0) {
		snprintf(err, errlen, "cannot attach the splice program to its map: %s",
			 strerror(-rc));
		goto fail;
	}
	if (sp->direct && ((rc = attach(sp->bpf->maps.rift_in, sp->bpf->progs.rift_in_skb,
					BPF_SK_SKB_VERDICT)) != 0 ||
			   (rc = attach(sp->bpf->maps.rift_out, sp->bpf->progs.rift_out_msg,
					BPF_SK_MSG_VERDICT)) != 0)) {
		snprintf(direct_off, sizeof(direct_off), "cannot attach its programs: %s",
			 strerror(-rc));
		sp->direct = false;
	}
	if (!sp->direct)
		LOG_WARN("router", "direct splicing is off: %s", direct_off);
	bpf_warnings = NULL;
	return sp;
fail:
	bpf_warnings = NULL;
	rift_splice_close(sp);
	return NULL;
}

void rift_splice_close(struct rift_splice *sp)
{
	if (sp == NULL)
		return;
	/* closing the maps and programs detaches them; joined sockets fall back to plain TCP */
	rift_splice_bpf__destroy(sp->bpf);
	free(sp);
}

static int map_put(int map, uint64_t key, int fd, uint64_t flags)
{
	uint64_t value = (uint64_t)fd;

	return bpf_map_update_elem(map, &key, &value, flags) == 0 ? 0 : -errno;
}

static void map_drop(int map, uint64_t key)
{
	bpf_map_delete_elem(map, &key);
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
