/* dash_session.h — the dashboard's login sessions, CSRF tokens and one-time login tickets. */
#ifndef RIFT_DASH_SESSION_H
#define RIFT_DASH_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define DASH_ID_BYTES     32                      /* random bytes of an id, ticket or token */
#define DASH_HEX          (2 * DASH_ID_BYTES + 1) /* its hex form with the NUL */
#define DASH_MAX_SESSIONS 128
#define DASH_MAX_TICKETS  16
#define DASH_IDLE_S       (15 * 60)   /* a session unused this long ends */
#define DASH_LIFETIME_S   (12 * 3600) /* and every session ends this long after login */
#define DASH_TICKET_S     120         /* a ticket from `rift dashboard` is good this long, once */

/*
 * Which process a session belongs to: the `rift dashboard` forwarder (the peer of riftd's
 * dashboard socket) that logged it in, by pid and start time (a pid alone is reused). A session
 * works only through that process, so its cookie is worthless once the forwarder exits, and
 * through any other process (another forwarder, another user's client) before. {0, 0}: a
 * session of the TCP listener, bound to no process.
 */
struct dash_owner {
	long pid;
	unsigned long long start; /* /proc/PID/stat starttime */
};

struct dash_slot {
	unsigned char id[DASH_ID_BYTES];
	struct dash_owner owner;
	char csrf[DASH_HEX];
	time_t created, used; /* CLOCK_MONOTONIC seconds; created == 0: free */
};

struct dash_sessions {
	pthread_mutex_t mu;
	struct dash_slot s[DASH_MAX_SESSIONS];
	struct dash_slot t[DASH_MAX_TICKETS]; /* tickets: only id and created are used */
};

void dash_sessions_init(struct dash_sessions *ds);
void dash_sessions_destroy(struct dash_sessions *ds);

/* A new session: its id (the cookie) and CSRF token in hex. The oldest session makes room when
 * the table is full. 0 or -errno (no randomness). */
int dash_session_new(struct dash_sessions *ds, char sid[DASH_HEX], char csrf[DASH_HEX])
    __attribute__((warn_unused_result));

/* Whether sid (hex, from the cookie) is a live session; if so its CSRF token goes to csrf. Every
 * slot is compared in constant time, so timing tells nothing about how close a guess was. */
bool dash_session_check(struct dash_sessions *ds, const char *sid, char csrf[DASH_HEX]);

/* As dash_session_new and dash_session_check, for a session owned by o (see dash_owner): a
 * session is live only for requests of the same owner. */
int dash_session_new_for(struct dash_sessions *ds, const struct dash_owner *o, char sid[DASH_HEX],
			 char csrf[DASH_HEX]) __attribute__((warn_unused_result));
bool dash_session_check_for(struct dash_sessions *ds, const struct dash_owner *o, const char *sid,
			    char csrf[DASH_HEX]);

/* Ends the session sid, if it is one. */
void dash_session_end(struct dash_sessions *ds, const char *sid);

/* A one-time login ticket (hex) good for DASH_TICKET_S. 0 or -errno. */
int dash_ticket_new(struct dash_sessions *ds, char ticket[DASH_HEX])
    __attribute__((warn_unused_result));

/* Whether ticket is live; a ticket is used up by the first call that sees it. */
bool dash_ticket_take(struct dash_sessions *ds, const char *ticket);

/* Compares two strings in time that depends only on their lengths. */
bool dash_equal_ct(const char *a, const char *b);

#endif
