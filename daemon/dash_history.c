/* dash_history.c — samples branch sizes, connections and disk use every DASH_SAMPLE_S seconds. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "dash_history.h"
#include "rift/log.h"

#define MISSING  UINT64_MAX
#define TOP_N    8
#define MAX_BASE 32

struct tracked {
	char name[64];
	uint64_t own[DASH_SAMPLES];
	uint32_t conns[DASH_SAMPLES];
	unsigned seen; /* the sample number that last saw it */
};

struct dash_history {
	struct rift_manager *m;
	pthread_t thread;
	pthread_mutex_t mu; /* everything below */
	pthread_cond_t cv;
	bool stop;
	unsigned samples; /* taken so far; the newest is at (samples - 1) % DASH_SAMPLES */
	time_t t[DASH_SAMPLES];
	uint64_t fs_used[DASH_SAMPLES], db_bytes[DASH_SAMPLES], own_total[DASH_SAMPLES];
	uint32_t conns_total[DASH_SAMPLES];
	uint64_t fs_size, fs_free;
	struct tracked **b; /* sorted by name */
	size_t nb;
	struct {
		char name[32];
		uint64_t bytes;
		unsigned branches;
	} bases[MAX_BASE];
	size_t nbases;
};

static _Thread_local uint64_t du_total;

static int du_add(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F)
		du_total += (uint64_t)st->st_blocks * 512u;
	return 0;
}

/* Bytes a directory tree takes on disk; riftd's own directories, so no link is followed. */
static uint64_t du(const char *dir)
{
	du_total = 0;
	nftw(dir, du_add, 16, FTW_PHYS | FTW_MOUNT);
	return du_total;
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(struct tracked *const *)a)->name, (*(struct tracked *const *)b)->name);
}

static struct tracked *lookup(struct dash_history *h, const char *name)
{
	struct tracked key, *kp = &key, **hit;

	if (h->nb == 0)
		return NULL; /* h->b may be NULL, which bsearch must not get */
	snprintf(key.name, sizeof(key.name), "%s", name);
	hit = bsearch(&kp, h->b, h->nb, sizeof(*h->b), by_name);
	return hit ? *hit : NULL;
}

/*
 * The history of name, made when new. New ones go at the end, past the sorted part that lookups
 * search (each name comes once per sample); sample() sorts once when it is done.
 */
static struct tracked *track(struct dash_history *h, size_t nsorted, const char *name)
{
	struct tracked key, *kp = &key, *t, **nb, **hit;
	size_t i;

	snprintf(key.name, sizeof(key.name), "%s", name);
	hit = nsorted > 0 ? bsearch(&kp, h->b, nsorted, sizeof(*h->b), by_name) : NULL;
	if (hit != NULL || h->nb >= DASH_MAX_TRACKED)
		return hit ? *hit : NULL;
	t = malloc(sizeof(*t));
	nb = realloc(h->b, (h->nb + 1) * sizeof(*h->b));
	if (t == NULL || nb == NULL) {
		free(t);
		if (nb != NULL)
			h->b = nb;
		return NULL;
	}
	h->b = nb;
	snprintf(t->name, sizeof(t->name), "%s", name);
	for (i = 0; i < DASH_SAMPLES; i++) {
		t->own[i] = MISSING;
		t->conns[i] = 0;
	}
	h->b[h->nb++] = t;
	return t;
}

/*
 * Bases are immutable: each is measured once, when first seen. Only the sampling thread changes
 * the table, so it reads it unlocked and takes the lock only to add: walking a big base must
 * not hold up the dashboard.
 */
static void measure_bases(struct dash_history *h, const char *state)
{
	char dir[4200], path[4400];
	struct dirent *e;
	uint64_t bytes;
	DIR *d;

	snprintf(dir, sizeof(dir), "%.4000s/base", state);
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t i;
		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(h->bases[0].name))
			continue;
		for (i = 0; i < h->nbases && strcmp(h->bases[i].name, e->d_name) != 0; i++)
			;
		if (i < h->nbases || h->nbases == MAX_BASE)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		bytes = du(path);
		pthread_mutex_lock(&h->mu);
		snprintf(h->bases[h->nbases].name, sizeof(h->bases[0].name), "%s", e->d_name);
		h->bases[h->nbases].bytes = bytes;
		h->bases[h->nbases].branches = 0;
		h->nbases++;
		pthread_mutex_unlock(&h->mu);
	}
	closedir(d);
}

static void sample(struct dash_history *h)
{
	const char *state = rift_manager_state_dir(h->m);
	struct rift_branch_view *v = NULL;
	char err[512], db[4200];
	struct statvfs sv;
	size_t n = 0, i, k, nsorted;
	uint64_t own = 0, dbb, fs_used = 0, fs_size = 0, fs_free = 0;
	uint32_t conns = 0;
	unsigned at;

	if (rift_manager_list(h->m, &v, &n, err, sizeof(err)) != RIFT_OK) {
		LOG_WARN("dashboard", "history sample skipped: %s", err);
		return;
	}
	snprintf(db, sizeof(db), "%.4000s/db", state);
	dbb = du(db);
	if (statvfs(db, &sv) == 0) {
		fs_size = (uint64_t)sv.f_blocks * sv.f_frsize;
		fs_free = (uint64_t)sv.f_bavail * sv.f_frsize;
		fs_used = (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
	}
	measure_bases(h, state);
	pthread_mutex_lock(&h->mu);
	at = h->samples % DASH_SAMPLES;
	nsorted = h->nb;
	for (i = 0; i < n; i++) {
		struct tracked *t = track(h, nsorted, v[i].info.name);
		own += v[i].info.bytes_own;
		conns += v[i].connections > 0 ? (uint32_t)v[i].connections : 0;
		if (t == NULL)
			continue;
		t->own[at] = v[i].info.bytes_own;
		t->conns[at] = v[i].connections > 0 ? (uint32_t)v[i].connections : 0;
		t->seen = h->samples;
	}
	for (i = 0; i < h->nbases; i++)
		h->bases[i].branches = 0;
	for (i = 0; i < n; i++) {
		char gen[32];
		snprintf(gen, sizeof(gen), "%u", v[i].info.base_gen);
		for (k = 0; k < h->nbases; k++)
			if (strcmp(h->bases[k].name, gen) == 0)
				h->bases[k].branches++;
	}
	/* branches gone since: their history goes too */
	for (i = 0, k = 0; i < h->nb; i++) {
		if (h->b[i]->seen == h->samples)
			h->b[k++] = h->b[i];
		else
			free(h->b[i]);
	}
	h->nb = k;
	if (h->nb > 1)
		qsort(h->b, h->nb, sizeof(*h->b), by_name);
	h->t[at] = time(NULL);
	h->fs_used[at] = fs_used;
	h->db_bytes[at] = dbb;
	h->own_total[at] = own;
	h->conns_total[at] = conns;
	h->fs_size = fs_size;
	h->fs_free = fs_free;
	h->samples++;
	pthread_mutex_unlock(&h->mu);
	free(v);
}

static void *history_main(void *arg)
{
	struct dash_history *h = arg;
	struct timespec until;

	pthread_setname_np(pthread_self(), "dash-history");
	for (;;) {
		sample(h);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += DASH_SAMPLE_S;
		pthread_mutex_lock(&h->mu);
		while (!h->stop && pthread_cond_timedwait(&h->cv, &h->mu, &until) == 0)
			;
		if (h->stop) {
			pthread_mutex_unlock(&h->mu);
			break;
		}
		pthread_mutex_unlock(&h->mu);
	}
	return NULL;
}

int dash_history_start(struct rift_manager *m, struct dash_history **out)
{
	struct dash_history *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (h == NULL)
		return -ENOMEM;
	h->m = m;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	if (pthread_create(&h->thread, NULL, history_main, h) != 0) {
		pthread_mutex_destroy(&h->mu);
		pthread_cond_destroy(&h->cv);
		free(h);
		return -EAGAIN;
	}
	*out = h;
	return 0;
}

void dash_history_stop(struct dash_history *h)
{
	size_t i;

	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thread, NULL);
	for (i = 0; i < h->nb; i++)
		free(h->b[i]);
	free(h->b);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
}

/* Oldest first: the i-th kept sample's slot. */
static unsigned slot(const struct dash_history *h, unsigned i)
{
	unsigned kept = h->samples < DASH_SAMPLES ? h->samples : DASH_SAMPLES;
	return (h->samples - kept + i) % DASH_SAMPLES;
}

static unsigned kept(const struct dash_history *h)
{
	return h->samples < DASH_SAMPLES ? h->samples : DASH_SAMPLES;
}

static json_t *times(const struct dash_history *h)
{
	json_t *a = json_array();
	unsigned i;

	for (i = 0; i < kept(h); i++)
		json_array_append_new(a, json_integer((json_int_t)h->t[slot(h, i)]));
	return a;
}

static json_t *series64(const struct dash_history *h, const uint64_t *v)
{
	json_t *a = json_array();
	unsigned i;

	for (i = 0; i < kept(h); i++) {
		uint64_t x = v[slot(h, i)];
		json_array_append_new(a, x == MISSING ? json_null() : json_integer((json_int_t)x));
	}
	return a;
}

static json_t *series32(const struct dash_history *h, const uint32_t *v, const uint64_t *valid)
{
	json_t *a = json_array();
	unsigned i;

	for (i = 0; i < kept(h); i++) {
		unsigned s = slot(h, i);
		json_array_append_new(a, valid != NULL && valid[s] == MISSING
					     ? json_null()
					     : json_integer((json_int_t)v[s]));
	}
	return a;
}

json_t *dash_history_branch(struct dash_history *h, const char *name)
{
	struct tracked *t;
	json_t *o = NULL;

	pthread_mutex_lock(&h->mu);
	t = lookup(h, name);
	if (t != NULL)
		o = json_pack("{s:o,s:o,s:o,s:i}", "t", times(h), "own", series64(h, t->own),
			      "conns", series32(h, t->conns, t->own), "interval_s", DASH_SAMPLE_S);
	pthread_mutex_unlock(&h->mu);
	return o;
}

/* The indexes of the TOP_N tracked branches with the most of key(t) at the newest sample. */
static size_t top(struct dash_history *h, uint64_t (*key)(const struct tracked *, unsigned),
		  size_t out[TOP_N])
{
	unsigned last = (h->samples - 1) % DASH_SAMPLES;
	size_t n = 0, i, j;

	for (i = 0; i < h->nb; i++) {
		uint64_t k = key(h->b[i], last);
		if (k == 0 || k == MISSING)
			continue;
		if (n == TOP_N && key(h->b[out[n - 1]], last) >= k)
			continue;
		j = n < TOP_N ? n++ : TOP_N - 1;
		for (; j > 0 && key(h->b[out[j - 1]], last) < k; j--)
			out[j] = out[j - 1];
		out[j] = i;
	}
	return n;
}

static uint64_t own_key(const struct tracked *t, unsigned at)
{
	return t->own[at];
}

static uint64_t conns_key(const struct tracked *t, unsigned at)
{
	return t->own[at] == MISSING ? 0 : t->conns[at];
}

json_t *dash_history_storage(struct dash_history *h)
{
	json_t *o, *bases = json_array(), *tops = json_array();
	size_t idx[TOP_N], n, i;

	pthread_mutex_lock(&h->mu);
	for (i = 0; i < h->nbases; i++)
		json_array_append_new(bases,
				      json_pack("{s:s,s:I,s:i}", "generation", h->bases[i].name,
						"bytes", (json_int_t)h->bases[i].bytes, "branches",
						(int)h->bases[i].branches));
	n = h->samples > 0 ? top(h, own_key, idx) : 0;
	for (i = 0; i < n; i++)
		json_array_append_new(tops, json_pack("{s:s,s:o}", "name", h->b[idx[i]]->name,
						      "own", series64(h, h->b[idx[i]]->own)));
	o = json_pack("{s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:i}", "fs_size", (json_int_t)h->fs_size,
		      "fs_free", (json_int_t)h->fs_free, "bases", bases, "t", times(h), "fs_used",
		      series64(h, h->fs_used), "db_bytes", series64(h, h->db_bytes), "own_total",
		      series64(h, h->own_total), "top", tops, "interval_s", DASH_SAMPLE_S);
	pthread_mutex_unlock(&h->mu);
	return o;
}

json_t *dash_history_connections(struct dash_history *h)
{
	json_t *o, *tops = json_array();
	size_t idx[TOP_N], n, i;

	pthread_mutex_lock(&h->mu);
	n = h->samples > 0 ? top(h, conns_key, idx) : 0;
	for (i = 0; i < n; i++)
		json_array_append_new(
		    tops, json_pack("{s:s,s:o}", "name", h->b[idx[i]]->name, "conns",
				    series32(h, h->b[idx[i]]->conns, h->b[idx[i]]->own)));
	o = json_pack("{s:o,s:o,s:o,s:i}", "t", times(h), "total",
		      series32(h, h->conns_total, NULL), "top", tops, "interval_s", DASH_SAMPLE_S);
	pthread_mutex_unlock(&h->mu);
	return o;
}
