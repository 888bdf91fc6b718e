/* store_enospc.c — a full disk fails only the writes it must, and the store recovers without a
 * restart: reserve policy, RocksDB's own ENOSPC, delete on a full disk, per-branch size limit. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rift/store.h"

/*
 * Runs on a 256 MiB tmpfs the test mounts (root only; exit 77 = skipped otherwise).
 * 1. reserve 64 MiB: branch "a" writes incompressible data until ENOSPC; "a" is refused while
 *    free space is still above half the reserve, and the small branch "b" keeps writing and
 *    syncing from the reserve. No sticky error.
 * 2. a file outside the store fills the disk: writes fail, fsyncs fail only with ENOSPC (a write
 *    that failed in its overlay file left nothing acknowledged unsynced), reads work, and the
 *    process survives (Debian's RocksDB aborts if the WAL is synced after a failed append);
 *    once the file is gone writes and syncs succeed again within seconds.
 * 3. with the disk full again, `delete a` succeeds and b writes again.
 * 4. max size: "c" limited to 4 MiB fails at the limit with ENOSPC, rewrites in place still
 *    work, "b" is unaffected, the limit survives a reopen.
 * 5. after a reopen every write b had synced is there.
 */
#define MiB (1u << 20)

static char mnt[256], state[300], filler[300];
static uint64_t seed = 88172645463325252ull;

static void fill_random(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i += 8) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		memcpy(p + i, &seed, n - i < 8 ? n - i : 8);
	}
}

static int fail(const char *what, long v)
{
	fprintf(stderr, "store_enospc: FAIL: %s (%ld)\n", what, v);
	return 1;
}

static int new_file(struct rift_branch *b, const char *name, uint64_t *ino)
{
	struct rift_attr a;
	int rc = rift_store_create(b, RIFT_ROOT_INO, name, S_IFREG | 0600, 0, 0, &a);

	*ino = a.ino;
	return rc;
}

/* Fills the filesystem with an outside file until write() fails. */
static void fill_disk(void)
{
	static uint8_t buf[MiB];
	int fd = open(filler, O_WRONLY | O_CREAT | O_APPEND, 0600);

	fill_random(buf, sizeof(buf));
	while (fd >= 0 && write(fd, buf, sizeof(buf)) > 0)
		;
	while (fd >= 0 && write(fd, buf, 4096) > 0)
		;
	if (fd >= 0)
		close(fd);
}

static int run(void)
{
	static uint8_t buf[MiB], check[8192];
	char err[RIFT_ERRMSG_LEN], src[320];
	struct rift_store *s = NULL;
	struct rift_branch *a = NULL, *b = NULL, *c = NULL;
	struct rift_branch_info info;
	uint64_t ia, ib, ic, off_a = 0, b_synced = 0, off_b = 0;
	uint32_t gen;
	ssize_t n;
	int rc = 1, i, r;

	snprintf(src, sizeof(src), "%s/src", mnt);
	if (mkdir(src, 0700) != 0 || rift_store_open(state, true, &s, err, sizeof(err)) != 0 ||
	    rift_store_base_import(s, src, &gen, err, sizeof(err)) != 0 ||
	    rift_store_branch_create(s, "a", NULL, gen) != 0 ||
	    rift_store_branch_create(s, "b", NULL, gen) != 0 ||
	    rift_store_branch_create(s, "c", NULL, gen) != 0 ||
	    rift_store_set_reserve(s, 64ull * MiB) != 0 ||
	    rift_store_branch_open(s, "a", &a) != 0 || rift_store_branch_open(s, "b", &b) != 0 ||
	    rift_store_branch_open(s, "c", &c) != 0 || new_file(a, "big", &ia) != 0 ||
	    new_file(b, "small", &ib) != 0 || new_file(c, "limited", &ic) != 0) {
		fprintf(stderr, "store_enospc: setup failed: %s\n", err);
		goto out;
	}

	/* 1. the reserve */
	for (;;) {
		fill_random(buf, MiB);
		n = rift_store_write(a, ia, off_a, MiB, buf);
		if (n != (ssize_t)MiB)
			break;
		off_a += MiB;
	}
	printf("store_enospc: a wrote %" PRIu64 " MiB, then %zd\n", off_a / MiB, n);
	if (n != -ENOSPC)
		return fail("a's write past the reserve did not fail with ENOSPC", (long)n);
	if (rift_store_error(s) != 0)
		return fail("a full branch made the store's error sticky", rift_store_error(s));
	for (i = 0; i < 8; i++) {
		fill_random(buf, 64 * 1024);
		n = rift_store_write(b, ib, off_b, 64 * 1024, buf);
		if (n != 64 * 1024)
			return fail("b's small write failed beside the full branch", (long)n);
		off_b += (uint64_t)n;
		if ((r = rift_store_sync(s)) != 0)
			return fail("b's sync failed beside the full branch", r);
		b_synced = off_b;
	}
	if (rift_store_read(b, ib, 0, sizeof(check), check) != (ssize_t)sizeof(check) ||
	    rift_store_read(a, ia, 0, sizeof(check), check) != (ssize_t)sizeof(check))
		return fail("reads failed under the reserve", 0);

	/* 2. RocksDB's own ENOSPC: something else fills the disk */
	if (rift_store_set_reserve(s, 0) != 0)
		return fail("reserve off", 0);
	fill_disk();
	for (i = 0; i < 200; i++) {
		fill_random(buf, 256 * 1024);
		n = rift_store_write(b, ib, off_b, 256 * 1024, buf);
		if (n < 0)
			break;
		off_b += (uint64_t)n;
	}
	if (n != -ENOSPC)
		return fail("b's write on a full disk did not fail with ENOSPC", (long)n);
	/* The write failed in its overlay file, before its records: nothing acknowledged is lost,
	 * so a sync may succeed (step 5 checks every synced byte). If RocksDB failed instead, the
	 * sync must fail: its memtable holds acknowledged records its log may lack. */
	r = rift_store_sync(s);
	printf("store_enospc: a sync on the full disk returned %d\n", r);
	if (r != 0 && r != -ENOSPC)
		return fail("a sync on a full disk failed with something else than ENOSPC", r);
	if (rift_store_read(b, ib, 0, sizeof(check), check) != (ssize_t)sizeof(check))
		return fail("reads failed on a full disk", 0);
	unlink(filler);
	for (i = 0; i < 30; i++) {
		n = rift_store_write(b, ib, off_b, 4096, buf);
		if (n == 4096)
			break;
		sleep(1);
	}
	printf("store_enospc: writes resumed %d s after the disk had space again\n", i);
	if (n != 4096)
		return fail("writes did not resume after space came back", (long)n);
	off_b += 4096;
	if ((r = rift_store_sync(s)) != 0)
		return fail("sync after recovery", r);
	b_synced = off_b;
	if (rift_store_error(s) != 0)
		return fail("sticky error after recovery", rift_store_error(s));

	/* 3. delete on a full disk */
	if (rift_store_set_reserve(s, 64ull * MiB) != 0)
		return fail("reserve on", 0);
	fill_disk();
	rift_store_branch_close(a);
	a = NULL;
	if ((r = rift_store_branch_delete(s, "a")) != 0)
		return fail("delete on a full disk", r);
	unlink(filler);
	if ((r = rift_store_branch_info(s, "a", &info)) != -ENOENT)
		return fail("a still listed after delete", r);
	for (i = 0; i < 30; i++) {
		n = rift_store_write(b, ib, off_b, 4096, buf);
		if (n == 4096)
			break;
		sleep(1);
	}
	if (n != 4096)
		return fail("b cannot write after a was deleted", (long)n);
	off_b += 4096;
	if ((r = rift_store_sync(s)) != 0)
		return fail("sync after delete", r);
	b_synced = off_b;

	/* 4. per-branch size limit */
	if ((r = rift_store_branch_set_max_size(s, "c", 4ull * MiB)) != 0)
		return fail("set max size", r);
	{
		uint64_t off = 0;
		for (;;) {
			fill_random(buf, 256 * 1024);
			n = rift_store_write(c, ic, off, 256 * 1024, buf);
			if (n < 0)
				break;
			off += (uint64_t)n;
		}
		if (n != -ENOSPC || off > 4ull * MiB || off < 3ull * MiB)
			return fail("c did not stop at its 4 MiB limit with ENOSPC", (long)off);
		if (rift_store_write(c, ic, 0, 8192, buf) != 8192)
			return fail("c cannot rewrite a page in place at its limit", 0);
		if (rift_store_write(b, ib, off_b, 256 * 1024, buf) != 256 * 1024)
			return fail("b failed because of c's limit", 0);
		off_b += 256 * 1024;
		if (rift_store_sync(s) != 0)
			return fail("sync", 0);
		b_synced = off_b;
		if (rift_store_unlink(c, RIFT_ROOT_INO, "limited") != 0 ||
		    new_file(c, "again", &ic) != 0 ||
		    rift_store_write(c, ic, 0, 256 * 1024, buf) != 256 * 1024)
			return fail("c cannot write after freeing its space", 0);
	}

	/* 5. reopen: b's synced bytes, the limit */
	rift_store_branch_close(b);
	rift_store_branch_close(c);
	b = c = NULL;
	rift_store_close(s);
	s = NULL;
	if (rift_store_open(state, false, &s, err, sizeof(err)) != 0)
		return fail("reopen", 0);
	if (rift_store_branch_info(s, "c", &info) != 0 || info.max_size != 4ull * MiB)
		return fail("the size limit did not survive a reopen", (long)info.max_size);
	{
		struct rift_attr at;
		if (rift_store_branch_open(s, "b", &b) != 0 ||
		    rift_store_lookup(b, RIFT_ROOT_INO, "small", &at) != 0)
			return fail("b's file missing after reopen", 0);
		if (at.size < b_synced)
			return fail("b lost synced bytes", (long)(b_synced - at.size));
		printf("store_enospc: b has %" PRIu64 " bytes, %" PRIu64 " were synced\n", at.size,
		       b_synced);
	}
	rc = 0;
out:
	rift_store_branch_close(a);
	rift_store_branch_close(b);
	rift_store_branch_close(c);
	rift_store_close(s);
	return rc;
}

int main(void)
{
	char dir[] = "/tmp/rift-test-enospc.XXXXXX", cmd[300];
	int rc, status;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0); /* the child _exits: nothing may wait in a buffer */
	if (geteuid() != 0) {
		printf("store_enospc: skipped (needs root to mount a small tmpfs)\n");
		return 77;
	}
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	snprintf(state, sizeof(state), "%s/state", mnt);
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	if (mkdir(mnt, 0700) != 0 || mount("tmpfs", mnt, "tmpfs", 0, "size=256m,mode=0700") != 0) {
		fprintf(stderr, "store_enospc: cannot mount a tmpfs on %s: %s\n", mnt,
			strerror(errno));
		rmdir(mnt);
		rmdir(dir);
		return 1;
	}
	/* The checks run in a child so that the mount goes even if the store aborts the process
	 * (that is one of the failures this test looks for). */
	pid = fork();
	if (pid == 0)
		_exit(run());
	rc = 1;
	if (pid > 0 && waitpid(pid, &status, 0) == pid) {
		if (WIFEXITED(status))
			rc = WEXITSTATUS(status);
		else
			fprintf(stderr, "store_enospc: FAIL: the store process died of signal %d\n",
				WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	}
	if (umount2(mnt, MNT_DETACH) != 0)
		rc = 1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = 1;
	if (rc == 0)
		printf("store_enospc: PASS\n");
	return rc;
}
