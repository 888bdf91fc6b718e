/* test_store_model.c — random operations on the store and on an in-memory model, compared. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rift/store.h"

/*
 * The model: per branch, a flat table of paths (at most one directory level) with their type,
 * mode, content or link target. Every operation runs on both; results and contents must agree.
 * RIFT_SEED replays a run, RIFT_MODEL_OPS sets its length (100,000 by default).
 */

#define MAX_BRANCHES 10
#define MAX_NODES    48
#define MAX_FILE     (160u * 1024u)

enum ntype { N_FILE = 1, N_DIR, N_LINK };

struct node {
	char path[24];
	enum ntype type;
	uint32_t mode;
	uint8_t *data;
	size_t size;
	char target[24];
};

struct mbranch {
	char name[16], parent[16];
	bool alive;
	struct node nodes[MAX_NODES];
	int nnodes;
	struct rift_branch *h;
};

static struct {
	char dir[64], state[128];
	struct rift_store *s;
	struct mbranch b[MAX_BRANCHES];
	uint64_t rng, seed, step;
	const char *op;
} M;

static uint64_t next_rand(void)
{
	uint64_t z = (M.rng += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
	return n ? next_rand() % n : 0;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "store_model: step %" PRIu64 " (%s): ", M.step, M.op ? M.op : "?");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr,
		"\nstore_model: replay with RIFT_SEED=%" PRIu64
		" ctest -R store_model --output-on-failure\n",
		M.seed);
	fail();
}

/* ---- model helpers ---- */

static struct node *mfind(struct mbranch *b, const char *path)
{
	int i;

	for (i = 0; i < b->nnodes; i++)
		if (strcmp(b->nodes[i].path, path) == 0)
			return &b->nodes[i];
	return NULL;
}

static void mremove(struct mbranch *b, struct node *n)
{
	free(n->data);
	*n = b->nodes[--b->nnodes];
}

static struct node *madd(struct mbranch *b, const char *path, enum ntype t, uint32_t mode)
{
	struct node *n = &b->nodes[b->nnodes++];

	memset(n, 0, sizeof(*n));
	snprintf(n->path, sizeof(n->path), "%s", path);
	n->type = t;
	n->mode = mode;
	return n;
}

static void mcopy(struct mbranch *dst, const struct mbranch *src)
{
	int i;

	dst->nnodes = src->nnodes;
	for (i = 0; i < src->nnodes; i++) {
		dst->nodes[i] = src->nodes[i];
		dst->nodes[i].data = NULL;
		if (src->nodes[i].size > 0) {
			dst->nodes[i].data = malloc(src->nodes[i].size);
			memcpy(dst->nodes[i].data, src->nodes[i].data, src->nodes[i].size);
		}
	}
}

static void mclear(struct mbranch *b)
{
	while (b->nnodes > 0)
		mremove(b, &b->nodes[0]);
}

static void msetsize(struct node *n, size_t size)
{
	if (size > n->size) {
		n->data = realloc(n->data, size);
		memset(n->data + n->size, 0, size - n->size);
	}
	n->size = size;
}

/* ---- store helpers ---- */

/* Resolves "a" or "d/a" to (dir ino, last name) and the inode; -ENOENT when missing. */
static int resolve(struct mbranch *b, const char *path, uint64_t *dir, const char **leaf,
		   struct rift_attr *attr)
{
	const char *slash = strchr(path, '/');
	struct rift_attr d;
	int rc;

	*dir = RIFT_ROOT_INO;
	*leaf = path;
	if (slash != NULL) {
		char first[24];
		snprintf(first, sizeof(first), "%.*s", (int)(slash - path), path);
		rc = rift_store_lookup(b->h, RIFT_ROOT_INO, first, &d);
		if (rc != 0)
			return rc;
		*dir = d.ino;
		*leaf = slash + 1;
	}
	return rift_store_lookup(b->h, *dir, *leaf, attr);
}

static void check_file(struct mbranch *b, const struct node *n)
{
	struct rift_attr a;
	uint64_t dir;
	const char *leaf;
	uint8_t *buf;
	ssize_t got;

	if (resolve(b, n->path, &dir, &leaf, &a) != 0)
		die("branch %s: %s missing", b->name, n->path);
	if ((a.mode & 07777) != n->mode)
		die("branch %s: %s mode %o, model %o", b->name, n->path, a.mode & 07777, n->mode);
	if (n->type == N_DIR) {
		if (!S_ISDIR(a.mode))
			die("branch %s: %s is not a directory", b->name, n->path);
		return;
	}
	if (n->type == N_LINK) {
		char target[64];
		if (!S_ISLNK(a.mode) ||
		    rift_store_readlink(b->h, a.ino, target, sizeof(target)) != 0 ||
		    strcmp(target, n->target) != 0)
			die("branch %s: link %s wrong", b->name, n->path);
		return;
	}
	if (a.size != n->size)
		die("branch %s: %s size %" PRIu64 ", model %zu", b->name, n->path, a.size, n->size);
	buf = malloc(n->size + 1);
	got = rift_store_read(b->h, a.ino, 0, n->size + 1, buf);
	if (got != (ssize_t)n->size)
		die("branch %s: %s read %zd of %zu", b->name, n->path, got, n->size);
	if (n->size > 0 && memcmp(buf, n->data, n->size) != 0) {
		size_t i;
		for (i = 0; buf[i] == n->data[i]; i++)
			;
		die("branch %s: %s differs at byte %zu: %u, model %u", b->name, n->path, i, buf[i],
		    n->data[i]);
	}
	free(buf);
}

struct listing {
	struct mbranch *b;
	const char *prefix;
	int count;
};

static int count_entry(const struct rift_dirent *e, void *arg)
{
	struct listing *l = arg;
	char path[64];

	snprintf(path, sizeof(path), "%s%s", l->prefix, e->name);
	if (mfind(l->b, path) == NULL)
		die("branch %s: store has %s, model does not", l->b->name, path);
	l->count++;
	return 0;
}

static void check_branch(struct mbranch *b)
{
	struct listing l = { b, "", 0 };
	int i, expected_root = 0;

	for (i = 0; i < b->nnodes; i++) {
		check_file(b, &b->nodes[i]);
		if (strchr(b->nodes[i].path, '/') == NULL)
			expected_root++;
	}
	if (rift_store_readdir(b->h, RIFT_ROOT_INO, count_entry, &l) != 0 ||
	    l.count != expected_root)
		die("branch %s: root lists %d entries, model %d", b->name, l.count, expected_root);
	for (i = 0; i < b->nnodes; i++) {
		struct rift_attr a;
		char prefix[32];
		int j, expected = 0;
		if (b->nodes[i].type != N_DIR)
			continue;
		snprintf(prefix, sizeof(prefix), "%s/", b->nodes[i].path);
		for (j = 0; j < b->nnodes; j++)
			if (strncmp(b->nodes[j].path, prefix, strlen(prefix)) == 0)
				expected++;
		l.prefix = prefix;
		l.count = 0;
		if (rift_store_lookup(b->h, RIFT_ROOT_INO, b->nodes[i].path, &a) != 0 ||
		    rift_store_readdir(b->h, a.ino, count_entry, &l) != 0 || l.count != expected)
			die("branch %s: %s lists %d entries, model %d", b->name, b->nodes[i].path,
			    l.count, expected);
	}
}

/* ---- operations ---- */

static const char *random_path(char *buf, size_t len)
{
	static const char *dirs[] = { "d0", "d1" };

	if (below(3) == 0)
		snprintf(buf, len, "%s/f%d", dirs[below(2)], (int)below(4));
	else
		snprintf(buf, len, "f%d", (int)below(6));
	return buf;
}

static struct node *random_node(struct mbranch *b, enum ntype t)
{
	int i, start = (int)below((uint64_t)(b->nnodes ? b->nnodes : 1));

	for (i = 0; i < b->nnodes; i++) {
		struct node *n = &b->nodes[(start + i) % b->nnodes];
		if (n->type == t)
			return n;
	}
	return NULL;
}

static void expect_rc(int got, int want, const char *what)
{
	if (got != want)
		die("%s returned %d, expected %d", what, got, want);
}

static void op_write(struct mbranch *b)
{
	struct node *n = random_node(b, N_FILE);
	struct rift_attr a;
	uint64_t dir, off;
	const char *leaf;
	size_t len, i;
	uint8_t *buf;

	if (n == NULL)
		return;
	off = below(MAX_FILE - 24 * 1024);
	len = 1 + below(below(4) == 0 ? 24 * 1024 : 3000);
	if (below(8) == 0)
		off = off / RIFT_BLOCK_SIZE * RIFT_BLOCK_SIZE;
	buf = malloc(len);
	if (below(5) == 0)
		memset(buf, 0, len);
	else
		for (i = 0; i < len; i++)
			buf[i] = (uint8_t)next_rand();
	expect_rc(resolve(b, n->path, &dir, &leaf, &a), 0, "lookup before write");
	if (rift_store_write(b->h, a.ino, off, len, buf) != (ssize_t)len)
		die("write of %zu at %" PRIu64 " failed", len, off);
	if (off + len > n->size)
		msetsize(n, off + len);
	memcpy(n->data + off, buf, len);
	free(buf);
	check_file(b, n);
}

static void op_truncate(struct mbranch *b)
{
	struct node *n = random_node(b, N_FILE);
	struct rift_attr a, in = { 0 };
	uint64_t dir;
	const char *leaf;

	if (n == NULL)
		return;
	in.size = below(3) == 0 ? 0 : below(MAX_FILE);
	expect_rc(resolve(b, n->path, &dir, &leaf, &a), 0, "lookup before truncate");
	expect_rc(rift_store_setattr(b->h, a.ino, &in, RIFT_SET_SIZE, NULL), 0, "truncate");
	msetsize(n, in.size);
	check_file(b, n);
}

static void op_create(struct mbranch *b)
{
	char path[24], parent[8];
	struct rift_attr a;
	uint64_t dir;
	const char *leaf;
	int want = 0, rc;
	bool is_link = below(4) == 0;

	random_path(path, sizeof(path));
	if (b->nnodes >= MAX_NODES - 1)
		return;
	rc = resolve(b, path, &dir, &leaf, &a);
	if (strchr(path, '/') != NULL) {
		snprintf(parent, sizeof(parent), "%.*s", (int)(strchr(path, '/') - path), path);
		if (mfind(b, parent) == NULL || mfind(b, parent)->type != N_DIR) {
			expect_rc(rc, -ENOENT, "lookup in a missing directory");
			return;
		}
	}
	if (mfind(b, path) != NULL)
		want = -EEXIST;
	else
		expect_rc(rc, -ENOENT, "lookup of a missing name");
	if (is_link) {
		rc = rift_store_symlink(b->h, dir, leaf, "base/target", 101, 104, &a);
		expect_rc(rc, want, "symlink");
		if (rc == 0)
			snprintf(madd(b, path, N_LINK, 0777)->target, 24, "base/target");
	} else {
		rc = rift_store_create(b->h, dir, leaf, S_IFREG | 0600, 101, 104, &a);
		expect_rc(rc, want, "create");
		if (rc == 0)
			madd(b, path, N_FILE, 0600);
	}
}

static void op_mkdir_rmdir(struct mbranch *b)
{
	const char *name = below(2) ? "d0" : "d1";
	struct node *n = mfind(b, name);
	struct rift_attr a;
	int i, children = 0;

	if (n == NULL) {
		if (b->nnodes >= MAX_NODES - 1)
			return;
		expect_rc(rift_store_mkdir(b->h, RIFT_ROOT_INO, name, 0750, 0, 0, &a), 0, "mkdir");
		madd(b, name, N_DIR, 0750);
		return;
	}
	if (n->type != N_DIR) {
		expect_rc(rift_store_rmdir(b->h, RIFT_ROOT_INO, name), -ENOTDIR, "rmdir of a file");
		return;
	}
	for (i = 0; i < b->nnodes; i++)
		if (strncmp(b->nodes[i].path, name, 2) == 0 && b->nodes[i].path[2] == '/')
			children++;
	expect_rc(rift_store_rmdir(b->h, RIFT_ROOT_INO, name), children ? -ENOTEMPTY : 0, "rmdir");
	if (children == 0)
		mremove(b, n);
}

static void op_unlink(struct mbranch *b)
{
	struct node *n = random_node(b, below(4) ? N_FILE : N_LINK);
	struct rift_attr a;
	uint64_t dir;
	const char *leaf;

	if (n == NULL)
		return;
	expect_rc(resolve(b, n->path, &dir, &leaf, &a), 0, "lookup before unlink");
	if (n->type == N_FILE && below(3) == 0) {
		/* unlink while referenced: the data stays readable and writable until unref */
		uint8_t buf[16], got[16];
		size_t i;
		expect_rc(rift_store_ref(b->h, a.ino), 0, "ref");
		expect_rc(rift_store_unlink(b->h, dir, leaf), 0, "unlink of a referenced file");
		for (i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)next_rand();
		if (rift_store_write(b->h, a.ino, 3, sizeof(buf), buf) != (ssize_t)sizeof(buf) ||
		    rift_store_read(b->h, a.ino, 3, sizeof(got), got) != (ssize_t)sizeof(got) ||
		    memcmp(buf, got, sizeof(buf)) != 0)
			die("unlinked-but-referenced file lost its data");
		expect_rc(rift_store_unref(b->h, a.ino), 0, "unref");
	} else {
		expect_rc(rift_store_unlink(b->h, dir, leaf), 0, "unlink");
	}
	expect_rc(resolve(b, n->path, &dir, &leaf, &a), -ENOENT, "lookup after unlink");
	mremove(b, n);
}

static void op_rename(struct mbranch *b)
{
	struct node *n = random_node(b, N_FILE), *dst;
	char to[24], parent[8];
	struct rift_attr a;
	uint64_t sdir, ddir;
	const char *sleaf, *dleaf;
	int rc, want = 0;

	if (n == NULL)
		return;
	random_path(to, sizeof(to));
	expect_rc(resolve(b, n->path, &sdir, &sleaf, &a), 0, "lookup before rename");
	rc = resolve(b, to, &ddir, &dleaf, &a);
	if (strchr(to, '/') != NULL) {
		snprintf(parent, sizeof(parent), "%.*s", (int)(strchr(to, '/') - to), to);
		if (mfind(b, parent) == NULL || mfind(b, parent)->type != N_DIR)
			return; /* target directory missing: covered by create */
	}
	(void)rc;
	dst = mfind(b, to);
	if (dst == n)
		return;
	if (dst != NULL && dst->type == N_DIR)
		want = -EISDIR;
	expect_rc(rift_store_rename(b->h, sdir, sleaf, ddir, dleaf, 0), want, "rename");
	if (want != 0)
		return;
	if (dst != NULL) {
		int ni = (int)(n - b->nodes);
		mremove(b, dst);
		if (ni == b->nnodes) /* mremove moved n into dst's slot */
			n = dst;
	}
	snprintf(n->path, sizeof(n->path), "%s", to);
	check_file(b, n);
}

static void op_chmod(struct mbranch *b)
{
	struct node *n = random_node(b, N_FILE);
	struct rift_attr a, in = { 0 };
	uint64_t dir;
	const char *leaf;

	if (n == NULL)
		return;
	in.mode = below(2) ? 0640 : 0600;
	expect_rc(resolve(b, n->path, &dir, &leaf, &a), 0, "lookup before chmod");
	expect_rc(rift_store_setattr(b->h, a.ino, &in, RIFT_SET_MODE, NULL), 0, "chmod");
	n->mode = in.mode;
}

static int alive_count(void)
{
	int i, n = 0;

	for (i = 0; i < MAX_BRANCHES; i++)
		n += M.b[i].alive;
	return n;
}

static struct mbranch *random_branch(void)
{
	int i, start = (int)below(MAX_BRANCHES);

	for (i = 0; i < MAX_BRANCHES; i++)
		if (M.b[(start + i) % MAX_BRANCHES].alive)
			return &M.b[(start + i) % MAX_BRANCHES];
	return NULL;
}

static void op_branch(void)
{
	struct mbranch *p = random_branch(), *c = NULL;
	int i;

	for (i = 0; i < MAX_BRANCHES && c == NULL; i++)
		if (!M.b[i].alive)
			c = &M.b[i];
	if (c == NULL || p == NULL)
		return;
	snprintf(c->name, sizeof(c->name), "b%d-%" PRIu64, (int)(c - M.b), M.step % 1000);
	expect_rc(rift_store_branch_create(M.s, c->name, p->name, 0), 0, "branch create");
	expect_rc(rift_store_branch_open(M.s, c->name, &c->h), 0, "branch open");
	snprintf(c->parent, sizeof(c->parent), "%s", p->name);
	c->alive = true;
	mcopy(c, p);
	check_branch(c);
}

static void op_delete_branch(void)
{
	struct mbranch *b = random_branch();
	int i, children = 0;

	if (b == NULL || b == &M.b[0] || alive_count() < 4)
		return;
	for (i = 0; i < MAX_BRANCHES; i++)
		if (M.b[i].alive && strcmp(M.b[i].parent, b->name) == 0)
			children++;
	rift_store_branch_close(b->h);
	b->h = NULL;
	expect_rc(rift_store_branch_delete(M.s, b->name), children ? -ENOTEMPTY : 0, "delete");
	if (children) {
		expect_rc(rift_store_branch_open(M.s, b->name, &b->h), 0, "reopen after refusal");
		return;
	}
	b->alive = false;
	mclear(b);
	for (i = 0; i < MAX_BRANCHES; i++) /* its children (none) and its name are gone */
		if (M.b[i].alive && strcmp(M.b[i].parent, b->name) == 0)
			die("model kept a child of a deleted branch");
}

static void open_all(void)
{
	char err[RIFT_ERRMSG_LEN];
	int i;

	if (rift_store_open(M.state, false, &M.s, err, sizeof(err)) != 0)
		die("reopen: %s", err);
	for (i = 0; i < MAX_BRANCHES; i++)
		if (M.b[i].alive)
			expect_rc(rift_store_branch_open(M.s, M.b[i].name, &M.b[i].h), 0, "open");
}

static void op_reopen(void)
{
	int i;

	for (i = 0; i < MAX_BRANCHES; i++)
		if (M.b[i].alive) {
			rift_store_branch_close(M.b[i].h);
			M.b[i].h = NULL;
		}
	rift_store_close(M.s);
	M.s = NULL;
	open_all();
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void setup_base(void)
{
	char path[256], err[RIFT_ERRMSG_LEN];
	uint8_t data[3 * RIFT_BLOCK_SIZE + 100];
	struct node *n;
	uint32_t gen;
	size_t i;

	snprintf(M.dir, sizeof(M.dir), "/tmp/rift-test-store-model.XXXXXX");
	assert_non_null(mkdtemp(M.dir));
	snprintf(M.state, sizeof(M.state), "%s/state", M.dir);
	snprintf(path, sizeof(path), "%s/src", M.dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/src/d0", M.dir);
	assert_int_equal(mkdir(path, 0750), 0);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)next_rand();
	snprintf(path, sizeof(path), "%s/src/f0", M.dir);
	write_file(path, data, sizeof(data));
	snprintf(path, sizeof(path), "%s/src/d0/f1", M.dir);
	write_file(path, data, 5000);
	snprintf(path, sizeof(path), "%s/src/postmaster.pid", M.dir);
	write_file(path, "1\n", 2);
	assert_int_equal(rift_store_open(M.state, true, &M.s, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/src", M.dir);
	assert_int_equal(rift_store_base_import(M.s, path, &gen, err, sizeof(err)), 0);
	snprintf(M.b[0].name, sizeof(M.b[0].name), "main");
	M.b[0].alive = true;
	assert_int_equal(rift_store_branch_create(M.s, "main", NULL, 0), 0);
	assert_int_equal(rift_store_branch_open(M.s, "main", &M.b[0].h), 0);
	n = madd(&M.b[0], "f0", N_FILE, 0600);
	msetsize(n, sizeof(data));
	memcpy(n->data, data, sizeof(data));
	madd(&M.b[0], "d0", N_DIR, 0750);
	n = madd(&M.b[0], "d0/f1", N_FILE, 0600);
	msetsize(n, 5000);
	memcpy(n->data, data, 5000);
}

static void test_store_matches_model(void **state)
{
	uint64_t ops = 100000, i;
	int k, max_alive = 0;

	(void)state;
	M.seed = getenv("RIFT_SEED") ? strtoull(getenv("RIFT_SEED"), NULL, 10)
				     : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	if (getenv("RIFT_MODEL_OPS"))
		ops = strtoull(getenv("RIFT_MODEL_OPS"), NULL, 10);
	M.rng = M.seed;
	printf("store_model: seed %" PRIu64 ", %" PRIu64 " operations\n", M.seed, ops);
	setup_base();
	for (i = 0; i < ops; i++) {
		struct mbranch *b = random_branch();
		uint64_t r = below(1000);
		M.step = i;
		if (r < 300) {
			M.op = "write";
			op_write(b);
		} else if (r < 380) {
			M.op = "truncate";
			op_truncate(b);
		} else if (r < 520) {
			M.op = "create";
			op_create(b);
		} else if (r < 580) {
			M.op = "mkdir/rmdir";
			op_mkdir_rmdir(b);
		} else if (r < 700) {
			M.op = "unlink";
			op_unlink(b);
		} else if (r < 800) {
			M.op = "rename";
			op_rename(b);
		} else if (r < 840) {
			M.op = "chmod";
			op_chmod(b);
		} else if (r < 900) {
			M.op = "branch";
			op_branch();
		} else if (r < 930) {
			M.op = "delete branch";
			op_delete_branch();
		} else if (r < 990) {
			M.op = "sync";
			expect_rc(rift_store_sync(M.s), 0, "sync");
		} else if (r < 997) {
			M.op = "squash";
			if (rift_store_squash(M.s) < 0)
				die("squash failed");
		} else {
			M.op = "reopen";
			op_reopen();
		}
		if (alive_count() > max_alive)
			max_alive = alive_count();
		if (i % 5000 == 4999) {
			M.op = "full compare";
			for (k = 0; k < MAX_BRANCHES; k++)
				if (M.b[k].alive)
					check_branch(&M.b[k]);
		}
	}
	M.op = "final compare";
	op_reopen();
	for (k = 0; k < MAX_BRANCHES; k++)
		if (M.b[k].alive)
			check_branch(&M.b[k]);
	printf("store_model: %" PRIu64 " operations matched; up to %d branches alive\n", ops,
	       max_alive);
	assert_true(max_alive >= 8 || ops < 20000);
}

/* Runs even when a comparison failed: nothing is left in /tmp. */
static int teardown(void **state)
{
	char cmd[160];
	int k;

	(void)state;
	for (k = 0; k < MAX_BRANCHES; k++) {
		if (M.s != NULL && M.b[k].h != NULL)
			rift_store_branch_close(M.b[k].h);
		M.b[k].h = NULL;
		mclear(&M.b[k]);
	}
	rift_store_close(M.s);
	M.s = NULL;
	if (M.dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", M.dir);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_store_matches_model, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
