/* splice.h — kernel splicing of routed connections: a BPF sockhash whose verdict program
 * forwards each socket's incoming bytes straight to its peer socket, without waking riftd. */
#ifndef RIFT_SPLICE_H
#define RIFT_SPLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rift_splice;

/*
 * Creates the socket map (room for max_pairs joined pairs) and loads its verdict program.
 * NULL with *err when the kernel or the process's privileges do not allow it (CAP_BPF and
 * CAP_NET_ADMIN, Linux 5.13+); callers then relay in user space.
 */
struct rift_splice *rift_splice_open(unsigned max_pairs, char *err, size_t errlen);

void rift_splice_close(struct rift_splice *sp);

/*
 * Joins two established TCP sockets: from now on what either receives is sent on the other by
 * the kernel. Bytes already queued before the join stay readable with recv(). Closing either
 * socket unjoins both. 0, or -errno (the sockets are then unjoined).
 */
int rift_splice_join(struct rift_splice *sp, int a, int b);

/* Whether direct joins are possible (they need sk_msg programs too). */
bool rift_splice_direct(const struct rift_splice *sp);

/*
 * Joins a client's socket directly with the server process's own socket of a loopback
 * connection (obtained with pidfd_getfd): what the client sends is queued for the server's
 * reader, and what the server sends goes out of the client's socket from within the server's
 * send call. No loopback hop and no kernel worker for replies. The caller may close its copy of
 * server at once; either socket's close unjoins both. 0 or -errno.
 */
int rift_splice_join_direct(struct rift_splice *sp, int client, int server);

/* Totals of a TCP socket: data bytes received (a FIN not counted), and bytes handed to its send
 * queue, sent or not (a FIN we sent may count as one). */
int rift_splice_counters(int fd, uint64_t *received, uint64_t *queued);

#endif
