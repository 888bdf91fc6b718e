/* router_splice.c — hands a routed session's relaying to the kernel (see splice.h) and closes
 * spliced pairs without losing the last bytes in flight. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "router_internal.h"

/* Moves what already sits in from's receive queue to to, now; false if to could not take it. */
static bool move_queued(int from, int to, uint64_t *count)
{
	uint8_t buf[16384];
	int inq = 0, guard;

	for (guard = 0; guard < 64 && ioctl(from, FIONREAD, &inq) == 0 && inq > 0; guard++) {
		ssize_t n = recv(from, buf, sizeof(buf), MSG_DONTWAIT), off = 0;
		if (n <= 0)
			return n == 0 || errno == EAGAIN;
		while (off < n) {
			ssize_t w =
			    send(to, buf + off, (size_t)(n - off), MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w <= 0)
				return false;
			off += w;
		}
		*count += (uint64_t)n;
	}
	return true;
}

/* Takes the socket out of a bufferevent without closing it. */
static int take_fd(struct bufferevent **bev)
{
	int fd = bufferevent_getfd(*bev);

	bufferevent_setfd(*bev, -1);
	bufferevent_free(*bev);
	*bev = NULL;
	return fd;
}

/* Writes what the client is still owed; true once nothing is left. */
static bool write_spill(struct client *cl)
{
	while (evbuffer_get_length(cl->spill) > 0) {
		int n = evbuffer_write(cl->spill, cl->fd[SIDE_CLIENT]);
		if (n <= 0)
			return false;
		cl->sent0[SIDE_CLIENT] += (uint64_t)n;
	}
	return true;
}

static int watch(struct client *cl, int side, int op)
{
	struct epoll_event ev = { .events = EPOLLRDHUP,
				  .data.u64 = (uintptr_t)cl | (unsigned)side };

	/* hang-ups only: waking for every byte the kernel moves would undo the point */
	if (side == SIDE_CLIENT && evbuffer_get_length(cl->spill) > 0)
		ev.events |= EPOLLOUT;
	return epoll_ctl(cl->r->splice_ep, op, cl->fd[side], &ev);
}

/*
 * Borrows the server process's own end of our loopback connection sfd (pidfd_getfd on the
 * backend named by BackendKeyData), recognised by its ports: it is bound to the server's port
 * and connected to sfd's. -1 when it cannot be had (then the kernel relays through sfd).
 */
static int server_end(struct client *cl, int sfd)
{
	struct sockaddr_in mine, a, b;
	socklen_t len = sizeof(mine);
	char dir[64], path[320], link[64];
	struct dirent *e;
	DIR *d = NULL;
	int pidfd = -1, found = -1;
	pid_t pid;

	if (cl->keymsg_len < 8 || getsockname(sfd, (struct sockaddr *)&mine, &len) != 0 ||
	    mine.sin_family != AF_INET)
		return -1;
	pid = (pid_t)rift_be32(cl->keymsg);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	if (pidfd < 0 || (d = opendir(dir)) == NULL)
		goto out;
	while (found < 0 && (e = readdir(d)) != NULL) {
		ssize_t n;
		int fd;
		socklen_t la = sizeof(a), lb = sizeof(b);
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0 || strncmp(link, "socket:", 7) != 0)
			continue;
		fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(e->d_name), 0);
		if (fd < 0)
			continue;
		if (getsockname(fd, (struct sockaddr *)&a, &la) == 0 &&
		    getpeername(fd, (struct sockaddr *)&b, &lb) == 0 && a.sin_family == AF_INET &&
		    b.sin_family == AF_INET && ntohs(a.sin_port) == cl->port &&
		    b.sin_port == mine.sin_port && b.sin_addr.s_addr == mine.sin_addr.s_addr)
			found = fd;
		else
			close(fd);
	}
out:
	if (d != NULL)
		closedir(d);
	if (pidfd >= 0)
		close(pidfd);
	return found;
}

/*
 * Hands a plaintext session's relaying to the kernel. Called when the server's ReadyForQuery
 * was just queued for the client and nothing follows it: the server now waits for the client,
 * and the client sends nothing before it reads that message, so no byte is in flight while the
 * sockets are joined; what the client is owed is written only after the join (later, if its
 * socket is full: the server says nothing more until the client has read it). When joining is
 * refused the session stays relayed by the loop.
 */
void try_splice(struct client *cl)
{
	struct rift_router *r = cl->r;
	struct evbuffer *owed;
	int cfd = bufferevent_getfd(cl->c), sfd = bufferevent_getfd(cl->s);
	int inq_c = 0, inq_s = 0, rc, i;
	uint64_t queued_c = 0;
	const char *fail = NULL;

	if (r->splice == NULL || cl->tls ||
	    evbuffer_get_length(bufferevent_get_input(cl->c)) != 0 ||
	    evbuffer_get_length(bufferevent_get_output(cl->s)) != 0 ||
	    evbuffer_get_length(bufferevent_get_input(cl->s)) != 0 ||
	    ioctl(cfd, FIONREAD, &inq_c) != 0 || ioctl(sfd, FIONREAD, &inq_s) != 0 || inq_c != 0 ||
	    inq_s != 0)
		return;
	cl->spill = evbuffer_new();
	if (cl->spill == NULL)
		return;
	/* best: straight into the server's own socket; else between our two sockets */
	if (r->splice_direct && rift_splice_direct(r->splice)) {
		int pfd = server_end(cl, sfd);
		if (pfd >= 0) {
			cl->direct = rift_splice_join_direct(r->splice, cfd, pfd) == 0;
			close(pfd); /* the maps hold the socket; the server's close unjoins it */
		}
	}
	rc = cl->direct ? 0 : rift_splice_join(r->splice, cfd, sfd);
	if (rc != 0) {
		LOG("%s not spliced (%s); relaying it here\n", cl->peer, strerror(-rc));
		evbuffer_free(cl->spill);
		cl->spill = NULL;
		return;
	}
	/* copied, not moved: libevent keeps a socket bufferevent's output frozen at its start */
	owed = bufferevent_get_output(cl->c);
	if (evbuffer_get_length(owed) > 0 &&
	    evbuffer_add(cl->spill, evbuffer_pullup(owed, -1), evbuffer_get_length(owed)) != 0) {
		fail = "out of memory";
		goto out;
	}
	cl->fd[SIDE_CLIENT] = take_fd(&cl->c);
	cl->fd[SIDE_SERVER] = take_fd(&cl->s);
	set_phase(cl, P_SPLICED);
	/* a client that sent before it was answered: its bytes stayed queued, pass them on */
	if (!move_queued(cfd, sfd, &cl->in_bytes) || !move_queued(sfd, cfd, &cl->out_bytes) ||
	    rift_splice_counters(cfd, &cl->recv0[SIDE_CLIENT], &queued_c) != 0 ||
	    rift_splice_counters(sfd, &cl->recv0[SIDE_SERVER], &cl->sent0[SIDE_SERVER]) != 0) {
		fail = "could not hand the connection to the kernel";
		goto out;
	}
	cl->sent0[SIDE_CLIENT] = queued_c;
	write_spill(cl);
	for (i = 0; i < 2; i++) {
		if (watch(cl, i, EPOLL_CTL_ADD) != 0) {
			fail = "cannot watch a spliced connection";
			goto out;
		}
	}
out:
	if (fail != NULL)
		close_quietly(cl, fail);
}

/*
 * Whether the client hung up, even if its hang-up is not reported yet: after a Terminate the
 * server's close can be reported first although it answers the client's, which came before.
 */
static bool client_hung_up(const struct client *cl)
{
	struct pollfd p = { .fd = cl->fd[SIDE_CLIENT], .events = POLLRDHUP };

	return cl->eof[SIDE_CLIENT] ||
	       (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0);
}

/*
 * A side of a spliced pair hung up. The kernel may still hold bytes it received before the
 * hang-up and has not sent on yet (a Terminate message, a final error), so the other side is
 * shut down or closed only once its send totals caught up with the hung-up side's receive
 * totals, or after five seconds.
 */
void splice_progress(struct client *cl)
{
	struct timeval tick = { 0, 2000 };
	struct timespec now;
	uint64_t rc, qc, rs, qs;
	bool expired, to_server_done, to_client_done;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!cl->hangup_seen) {
		cl->hangup_seen = true;
		cl->close_by = now;
		cl->close_by.tv_sec += 5;
		snprintf(cl->reason, sizeof(cl->reason), "%s",
			 client_hung_up(cl) ? "client closed" : "server closed");
	}
	expired = now.tv_sec > cl->close_by.tv_sec ||
		  (now.tv_sec == cl->close_by.tv_sec && now.tv_nsec >= cl->close_by.tv_nsec);
	if (rift_splice_counters(cl->fd[SIDE_CLIENT], &rc, &qc) != 0 ||
	    rift_splice_counters(cl->fd[SIDE_SERVER], &rs, &qs) != 0) {
		client_free(cl);
		return;
	}
	to_server_done = qs - cl->sent0[SIDE_SERVER] >= rc - cl->recv0[SIDE_CLIENT];
	to_client_done = qc - cl->sent0[SIDE_CLIENT] >= rs - cl->recv0[SIDE_SERVER];
	if (cl->eof[SIDE_CLIENT] && !cl->server_shut && (to_server_done || expired)) {
		shutdown(cl->fd[SIDE_SERVER], SHUT_WR); /* the server ends the session on EOF */
		cl->server_shut = true;
	}
	/* a client that is gone needs nothing more: the server's last bytes have nowhere to go */
	if ((cl->eof[SIDE_SERVER] && (to_client_done || cl->eof[SIDE_CLIENT] || expired)) ||
	    (cl->eof[SIDE_CLIENT] && expired)) {
		client_free(cl);
		return;
	}
	evtimer_add(cl->timer, &tick);
}

static struct client *event_client(const struct epoll_event *ev)
{
	return (struct client *)(uintptr_t)(ev->data.u64 & ~(uint64_t)1);
}

static void on_splice_event(evutil_socket_t fd, short what, void *arg)
{
	struct rift_router *r = arg;
	struct epoll_event evs[64];
	bool ended[64];
	int n, i, j;

	(void)what;
	n = epoll_wait(fd, evs, 64, 0);
	for (i = 0; i < n; i++) {
		struct client *cl = event_client(&evs[i]);
		int side = (int)(evs[i].data.u64 & 1);
		ended[i] = (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
		if (!ended[i]) { /* writable: the replies owed since the join */
			if (write_spill(cl))
				watch(cl, SIDE_CLIENT, EPOLL_CTL_MOD);
			continue;
		}
		cl->eof[side] = true;
		epoll_ctl(r->splice_ep, EPOLL_CTL_DEL, cl->fd[side], NULL);
	}
	/* once per client: progress may free it, and both its sides may be in this batch */
	for (i = 0; i < n; i++) {
		if (!ended[i])
			continue;
		for (j = 0; j < i && !(ended[j] && event_client(&evs[j]) == event_client(&evs[i]));
		     j++)
			;
		if (j == i)
			splice_progress(event_client(&evs[i]));
	}
}

/* Kernel splicing when the kernel allows it; its absence is not an error, only slower. */
int splice_open(struct rift_router *r, int max_clients)
{
	char why[512];

	r->splice = rift_splice_open((unsigned)max_clients + 16, why, sizeof(why));
	if (r->splice == NULL) {
		LOG("kernel splicing is unavailable (%s); relaying every byte in riftd\n", why);
		return 0;
	}
	r->splice_ep = epoll_create1(EPOLL_CLOEXEC);
	if (r->splice_ep < 0)
		return -1;
	r->splice_ev = event_new(r->base, r->splice_ep, EV_READ | EV_PERSIST, on_splice_event, r);
	if (r->splice_ev == NULL || event_add(r->splice_ev, NULL) != 0)
		return -1;
	LOG("plaintext connections are spliced in the kernel after login\n");
	return 0;
}

void splice_close(struct rift_router *r)
{
	if (r->splice_ev != NULL)
		event_free(r->splice_ev);
	if (r->splice_ep >= 0)
		close(r->splice_ep);
	rift_splice_close(r->splice);
}
