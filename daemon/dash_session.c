/* dash_session.c — dashboard login sessions: random ids, constant-time checks, expiry. */
#include <errno.h>
#include <openssl/crypto.h>
#include <string.h>
#include <sys/random.h>

#include "dash_session.h"

static time_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + 1; /* never 0: 0 marks a free slot */
}

static int random_bytes(unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = getrandom(p, n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -EIO;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void to_hex(const unsigned char *p, char out[DASH_HEX])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < DASH_ID_BYTES; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * DASH_ID_BYTES] = '\0';
}

/* Exactly 2*DASH_ID_BYTES lowercase hex digits, or -1. */
static int from_hex(const char *s, unsigned char out[DASH_ID_BYTES])
{
	size_t i;

	if (s == NULL || strlen(s) != 2 * DASH_ID_BYTES)
		return -1;
	for (i = 0; i < 2 * DASH_ID_BYTES; i++) {
		char ch = s[i];
		int v = ch >= '0' && ch <= '9'   ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
						 : -1;
		if (v < 0)
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (unsigned char)(v << 4);
		else
			out[i / 2] |= (unsigned char)v;
	}
	return 0;
}

static bool expired(const struct dash_slot *sl, time_t now)
{
	return now - sl->created > DASH_LIFETIME_S || now - sl->used > DASH_IDLE_S;
}

void dash_sessions_init(struct dash_sessions *ds)
{
	memset(ds, 0, sizeof(*ds));
	pthread_mutex_init(&ds->mu, NULL);
}

void dash_sessions_destroy(struct dash_sessions *ds)
{
	OPENSSL_cleanse(ds->s, sizeof(ds->s));
	OPENSSL_cleanse(ds->t, sizeof(ds->t));
	pthread_mutex_destroy(&ds->mu);
}

int dash_session_new(struct dash_sessions *ds, char sid[DASH_HEX], char csrf[DASH_HEX])
{
	const struct dash_owner none = { 0, 0 };

	return dash_session_new_for(ds, &none, sid, csrf);
}

int dash_session_new_for(struct dash_sessions *ds, const struct dash_owner *o, char sid[DASH_HEX],
			 char csrf[DASH_HEX])
{
	unsigned char id[DASH_ID_BYTES], tok[DASH_ID_BYTES];
	struct dash_slot *victim = NULL;
	time_t now = now_s();
	size_t i;

	if (random_bytes(id, sizeof(id)) != 0 || random_bytes(tok, sizeof(tok)) != 0)
		return -EIO;
	pthread_mutex_lock(&ds->mu);
	for (i = 0; i < DASH_MAX_SESSIONS; i++) {
		struct dash_slot *sl = &ds->s[i];
		if (sl->created == 0 || expired(sl, now)) {
			victim = sl;
			break;
		}
		if (victim == NULL || sl->used < victim->used)
			victim = sl; /* least recently used */
	}
	memcpy(victim->id, id, sizeof(id));
	to_hex(tok, victim->csrf);
	victim->created = victim->used = now;
	victim->owner = *o;
	snprintf(csrf, DASH_HEX, "%s", victim->csrf);
	pthread_mutex_unlock(&ds->mu);
	to_hex(id, sid);
	OPENSSL_cleanse(id, sizeof(id));
	OPENSSL_cleanse(tok, sizeof(tok));
	return 0;
}

/* The live slot of table whose id is sid, or NULL; looks at every slot whatever it finds. */
static struct dash_slot *find(struct dash_slot *table, size_t n, const char *sid, time_t now)
{
	unsigned char id[DASH_ID_BYTES];
	struct dash_slot *hit = NULL;
	size_t i;

	if (from_hex(sid, id) != 0)
		return NULL;
	for (i = 0; i < n; i++) {
		bool same = CRYPTO_memcmp(table[i].id, id, sizeof(id)) == 0;
		if (same && table[i].created != 0 && !expired(&table[i], now))
			hit = &table[i];
	}
	OPENSSL_cleanse(id, sizeof(id));
	return hit;
}

bool dash_session_check(struct dash_sessions *ds, const char *sid, char csrf[DASH_HEX])
{
	const struct dash_owner none = { 0, 0 };

	return dash_session_check_for(ds, &none, sid, csrf);
}

bool dash_session_check_for(struct dash_sessions *ds, const struct dash_owner *o, const char *sid,
			    char csrf[DASH_HEX])
{
	struct dash_slot *sl;
	time_t now = now_s();

	pthread_mutex_lock(&ds->mu);
	sl = find(ds->s, DASH_MAX_SESSIONS, sid, now);
	/* another process presenting the cookie is refused, but does not end the session: that
	 * would let anyone who saw a cookie log its owner out */
	if (sl != NULL && (sl->owner.pid != o->pid || sl->owner.start != o->start))
		sl = NULL;
	if (sl != NULL) {
		sl->used = now;
		snprintf(csrf, DASH_HEX, "%s", sl->csrf);
	}
	pthread_mutex_unlock(&ds->mu);
	return sl != NULL;
}

void dash_session_end(struct dash_sessions *ds, const char *sid)
{
	struct dash_slot *sl;

	pthread_mutex_lock(&ds->mu);
	sl = find(ds->s, DASH_MAX_SESSIONS, sid, now_s());
	if (sl != NULL)
		OPENSSL_cleanse(sl, sizeof(*sl));
	pthread_mutex_unlock(&ds->mu);
}

int dash_ticket_new(struct dash_sessions *ds, char ticket[DASH_HEX])
{
	unsigned char id[DASH_ID_BYTES];
	struct dash_slot *victim = NULL;
	time_t now = now_s();
	size_t i;

	if (random_bytes(id, sizeof(id)) != 0)
		return -EIO;
	pthread_mutex_lock(&ds->mu);
	for (i = 0; i < DASH_MAX_TICKETS; i++) {
		struct dash_slot *sl = &ds->t[i];
		if (sl->created == 0 || now - sl->created > DASH_TICKET_S) {
			victim = sl;
			break;
		}
		if (victim == NULL || sl->created < victim->created)
			victim = sl;
	}
	memcpy(victim->id, id, sizeof(id));
	victim->created = victim->used = now;
	pthread_mutex_unlock(&ds->mu);
	to_hex(id, ticket);
	OPENSSL_cleanse(id, sizeof(id));
	return 0;
}

bool dash_ticket_take(struct dash_sessions *ds, const char *ticket)
{
	struct dash_slot *sl;
	time_t now = now_s();
	bool ok = false;

	pthread_mutex_lock(&ds->mu);
	sl = find(ds->t, DASH_MAX_TICKETS, ticket, now);
	if (sl != NULL && now - sl->created <= DASH_TICKET_S)
		ok = true;
	if (sl != NULL)
		OPENSSL_cleanse(sl, sizeof(*sl)); /* once only */
	pthread_mutex_unlock(&ds->mu);
	return ok;
}

bool dash_equal_ct(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char diff = (unsigned char)(la != lb);

	for (i = 0; i < la; i++)
		diff |= (unsigned char)(a[i] ^ b[lb ? i % lb : 0]);
	return diff == 0 && lb > 0;
}
