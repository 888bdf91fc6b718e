/* store_crash.c — kills a writer with SIGKILL at random moments; the store must hold a prefix. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rift/store.h"

/*
 * Each round forks a child that opens the store and applies a deterministic stream of
 * operations (writes, truncates, syncs, branch creations) to one file of branch "main",
 * reporting on a pipe when each begins, is acknowledged, and when a sync completed. The
 * parent kills it with SIGKILL after a random delay, reopens the store and checks that it
 * equals the model after k operations for some k between the last synced operation and the
 * last begun one. RIFT_SEED replays, RIFT_CRASH_ROUNDS sets the rounds (default 30).
 */

#define OPS      3000
#define MAX_SIZE (256u * 1024u)
#define MAX_IO   (20u * 1024u)

enum op_kind { OP_WRITE, OP_TRUNCATE, OP_SYNC, OP_BRANCH };

struct op {
	enum op_kind kind;
	uint32_t off, len;
	uint64_t seed;
};

struct event {
	char kind; /* 'B' begun, 'A' acknowledged, 'S' durable through this op */
	uint32_t index;
};

static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void gen_ops(uint64_t seed, struct op *ops)
{
	int i;

	for (i = 0; i < OPS; i++) {
		uint64_t r = mix(&seed) % 100;
		ops[i].kind = r < 70   ? OP_WRITE
			      : r < 82 ? OP_TRUNCATE
			      : r < 97 ? OP_SYNC
				       : OP_BRANCH;
		ops[i].off = (uint32_t)(mix(&seed) % (MAX_SIZE - MAX_IO));
		ops[i].len = 1 + (uint32_t)(mix(&seed) % MAX_IO);
		ops[i].seed = mix(&seed);
	}
}

static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (i % 7 == 0) ? 0 : (uint8_t)mix(&seed);
	if (seed % 4 == 0)
		memset(buf, 0, len); /* zero blocks take the elision path */
}

/* The model: file content and how many branches this round created. */
struct model {
	uint8_t *data;
	size_t size;
	int branches;
};

static void model_apply(struct model *m, const struct op *op)
{
	if (op->kind == OP_WRITE) {
		if (op->off + op->len > m->size) {
			memset(m->data + m->size, 0, op->off + op->len - m->size);
			if (op->off > m->size)
				memset(m->data + m->size, 0, op->off - m->size);
			m->size = op->off + op->len;
		}
		fill(m->data + op->off, op->len, op->seed);
	} else if (op->kind == OP_TRUNCATE) {
		size_t n = op->off;
		if (n > m->size)
			memset(m->data + m->size, 0, n - m->size);
		m->size = n;
	} else if (op->kind == OP_BRANCH) {
		m->branches++;
	}
}

/*
 * Whether got (size bytes) is the operation in flight partly applied: the size as before it
 * (its records were not written), each 4 KiB page as before it or as after it. Block contents
 * are written into overlay files in place before the batch that records the call, and SIGKILL
 * can stop a write between pages; Postgres, which replays full-page images after a crash, needs
 * no more.
 */
static bool torn_between(const struct model *before, const struct model *after, const uint8_t *got,
			 uint64_t size)
{
	static uint8_t page[4096];
	uint64_t off;

	for (off = 0; off < size; off += sizeof(page)) {
		size_t n = size - off < sizeof(page) ? (size_t)(size - off) : sizeof(page), i;
		for (i = 0; i < n; i++)
			page[i] = off + i < after->size ? after->data[off + i] : 0;
		if (memcmp(got + off, before->data + off, n) != 0 &&
		    memcmp(got + off, page, n) != 0)
			return false;
	}
	return true;
}

static void report(int fd, char kind, uint32_t i)
{
	struct event e = { kind, i };

	if (write(fd, &e, sizeof(e)) != (ssize_t)sizeof(e))
		_exit(3);
}

static void child(const char *state, int round, const struct op *ops, int fd)
{
	char err[RIFT_ERRMSG_LEN], name[32];
	struct rift_store *s;
	struct rift_branch *b;
	struct rift_attr a;
	uint8_t *buf = malloc(MAX_IO);
	uint32_t i;

	if (buf == NULL || rift_store_open(state, false, &s, err, sizeof(err)) != 0 ||
	    rift_store_branch_open(s, "main", &b) != 0 ||
	    rift_store_lookup(b, RIFT_ROOT_INO, "crash", &a) != 0)
		_exit(2);
	for (i = 0; i < OPS; i++) {
		const struct op *op = &ops[i];
		struct rift_attr in = { 0 };
		int rc = 0;
		report(fd, 'B', i);
		switch (op->kind) {
		case OP_WRITE:
			fill(buf, op->len, op->seed);
			rc = rift_store_write(b, a.ino, op->off, op->len, buf) == (ssize_t)op->len
				 ? 0
				 : -1;
			break;
		case OP_TRUNCATE:
			in.size = op->off;
			rc = rift_store_setattr(b, a.ino, &in, RIFT_SET_SIZE, NULL);
			break;
		case OP_SYNC:
			rc = rift_store_sync(s);
			break;
		case OP_BRANCH:
			snprintf(name, sizeof(name), "r%d-%u", round, i);
			rc = rift_store_branch_create(s, name, "main", 0);
			break;
		}
		if (rc != 0)
			_exit(4);
		report(fd, 'A', i);
		if (op->kind == OP_SYNC || op->kind == OP_BRANCH) /* both are durable on return */
			report(fd, 'S', i);
	}
	_exit(0);
}

static int branches_of_round(struct rift_store *s, int round)
{
	struct rift_branch_info *v;
	char prefix[16];
	size_t n, i;
	int count = 0;

	if (rift_store_branch_list(s, &v, &n) != 0)
		return -1;
	snprintf(prefix, sizeof(prefix), "r%d-", round);
	for (i = 0; i < n; i++)
		count += strncmp(v[i].name, prefix, strlen(prefix)) == 0;
	free(v);
	return count;
}

int main(void)
{
	char dir[] = "/tmp/rift-test-store-crash.XXXXXX", state[128], src[128], cmd[256];
	char err[RIFT_ERRMSG_LEN];
	uint64_t seed = getenv("RIFT_SEED") ? strtoull(getenv("RIFT_SEED"), NULL, 10)
					    : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
	int rounds =
	    getenv("RIFT_CRASH_ROUNDS") ? (int)strtol(getenv("RIFT_CRASH_ROUNDS"), NULL, 10) : 30;
	struct op *ops = calloc(OPS, sizeof(*ops));
	struct model m = { malloc(MAX_SIZE + MAX_IO), 0, 0 };
	struct model prev = { malloc(MAX_SIZE + MAX_IO), 0, 0 };
	uint8_t *got = malloc(MAX_SIZE + MAX_IO);
	struct rift_store *s = NULL;
	struct rift_branch *b;
	struct rift_attr a;
	uint32_t gen;
	int round, rc = 1, total_acked = 0, torn_rounds = 0;
	bool torn;

	printf("store_crash: seed %" PRIu64 ", %d rounds\n", seed, rounds);
	if (ops == NULL || m.data == NULL || prev.data == NULL || got == NULL ||
	    mkdtemp(dir) == NULL)
		return 1;
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(src, sizeof(src), "%s/src", dir);
	if (mkdir(src, 0700) != 0 || rift_store_open(state, true, &s, err, sizeof(err)) != 0 ||
	    rift_store_base_import(s, src, &gen, err, sizeof(err)) != 0 ||
	    rift_store_branch_create(s, "main", NULL, 0) != 0 ||
	    rift_store_branch_open(s, "main", &b) != 0 ||
	    rift_store_create(b, RIFT_ROOT_INO, "crash", 0600, 0, 0, &a) != 0) {
		fprintf(stderr, "store_crash: setup failed: %s\n", err);
		goto out;
	}
	rift_store_close(s);
	s = NULL;
	for (round = 0; round < rounds; round++) {
		uint64_t rseed = seed + (uint64_t)round * 7919;
		struct event e;
		int pipefd[2], status, begun = 0, acked = 0, synced = 0, k, matched = -1;
		struct timespec delay = { 0, (long)(5 + mix(&rseed) % 250) * 1000000L };
		struct model start;
		pid_t pid;

		gen_ops(rseed, ops);
		if (pipe(pipefd) != 0)
			goto out;
		pid = fork();
		if (pid == 0) {
			close(pipefd[0]);
			child(state, round, ops, pipefd[1]);
		}
		close(pipefd[1]);
		/* the delay counts from the first operation, not from the fork: on a loaded machine
		 * (sanitizers, tests in parallel) opening the store alone can outlast it */
		if (read(pipefd[0], &e, sizeof(e)) == (ssize_t)sizeof(e)) {
			assert(e.kind == 'B' && e.index == 0);
			begun = 1;
		}
		nanosleep(&delay, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) > 1) {
			fprintf(stderr, "store_crash: round %d: the child failed (%d)\n", round,
				WEXITSTATUS(status));
			goto out;
		}
		while (read(pipefd[0], &e, sizeof(e)) == (ssize_t)sizeof(e)) {
			if (e.kind == 'B')
				begun = (int)e.index + 1;
			else if (e.kind == 'A')
				acked = (int)e.index + 1;
			else
				synced = (int)e.index + 1;
		}
		close(pipefd[0]);
		total_acked += acked;
		/* reopen: recovery must give exactly the state after k operations */
		if (rift_store_open(state, false, &s, err, sizeof(err)) != 0 ||
		    rift_store_branch_open(s, "main", &b) != 0 ||
		    rift_store_lookup(b, RIFT_ROOT_INO, "crash", &a) != 0) {
			fprintf(stderr, "store_crash: round %d: reopen failed: %s\n", round, err);
			goto out;
		}
		start = m;
		start.data = malloc(MAX_SIZE + MAX_IO);
		memcpy(start.data, m.data, m.size);
		start.branches = 0;
		m.branches = 0;
		if (rift_store_read(b, a.ino, 0, MAX_SIZE + MAX_IO, got) != (ssize_t)a.size) {
			fprintf(stderr, "store_crash: round %d: read failed\n", round);
			goto out;
		}
		torn = false;
		for (k = 0; k <= begun; k++) {
			if (k > 0 && k == begun) {
				memcpy(prev.data, m.data, m.size);
				prev.size = m.size;
				prev.branches = m.branches;
			}
			if (k > 0)
				model_apply(&m, &ops[k - 1]);
			if (k >= synced && m.size == a.size && memcmp(m.data, got, m.size) == 0 &&
			    branches_of_round(s, round) == m.branches) {
				matched = k;
				if (k >= acked)
					break;
			}
		}
		if (matched < 0 && begun > 0 && begun - 1 >= synced && prev.size == a.size &&
		    branches_of_round(s, round) == prev.branches &&
		    torn_between(&prev, &m, got, a.size)) {
			matched = begun - 1;
			torn = true;
		}
		if (matched < 0) {
			fprintf(stderr,
				"store_crash: round %d: the store (size %" PRIu64
				") matches no state "
				"between op %d (synced) and op %d (begun); acked %d\n"
				"store_crash: replay with RIFT_SEED=%" PRIu64 "\n",
				round, a.size, synced, begun, acked, seed);
			free(start.data);
			goto out;
		}
		/* the model continues from what the store holds (k ops of this round) */
		memcpy(m.data, start.data, start.size);
		m.size = start.size;
		m.branches = 0;
		for (k = 0; k < matched; k++)
			model_apply(&m, &ops[k]);
		if (torn) {
			memcpy(m.data, got, a.size);
			torn_rounds++;
		}
		free(start.data);
		rift_store_close(s);
		s = NULL;
	}
	printf("store_crash: %d rounds recovered to a prefix (%d of them with the call in flight "
	       "partly applied; %d operations acknowledged in all)\n",
	       rounds, torn_rounds, total_acked);
	rc = total_acked > 0 ? 0 : 1;
out:
	rift_store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = 1;
	free(ops);
	free(m.data);
	free(prev.data);
	free(got);
	return rc;
}
