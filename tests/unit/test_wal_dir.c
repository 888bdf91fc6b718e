/* test_wal_dir.c — WAL copies take only WAL files, follow nothing, refuse a gap, stay sparse;
 * temporary directories are made fresh, counted and removed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "rift/pg_control.h"
#include "rift/wal_dir.h"

#define SEG       (1 << 20) /* a small wal_segment_size: 4096 segments per log id */
#define SERVER    54321     /* the uid the parent's server ran as */
#define PARENT_ID 0x11
#define LAYER_ID  0x22
#define CHILD_ID  0x33

static char top[64], root[128], parent[192], victim[128];

static void path_of(char *out, size_t len, const char *dir, const char *name)
{
	assert_true((size_t)snprintf(out, len, "%s/%s", dir, name) < len);
}

/* A segment of SEG bytes, the server's: a marker at offset 0 and at off, a hole between. */
static void put_segment(const char *dir, const char *name, off_t off)
{
	char p[256], mark[64];
	int fd;

	path_of(p, sizeof(p), dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	snprintf(mark, sizeof(mark), "seg %s", name);
	assert_int_equal(pwrite(fd, mark, strlen(mark), 0), (ssize_t)strlen(mark));
	assert_int_equal(pwrite(fd, mark, strlen(mark), off), (ssize_t)strlen(mark));
	assert_int_equal(ftruncate(fd, SEG), 0);
	assert_int_equal(fchown(fd, SERVER, SERVER), 0);
	close(fd);
}

static int setup(void **state)
{
	char p[256];
	FILE *f;

	(void)state;
	snprintf(top, sizeof(top), "/tmp/rift-test-waldir.XXXXXX");
	if (mkdtemp(top) == NULL)
		return -1;
	path_of(root, sizeof(root), top, "wal");
	path_of(victim, sizeof(victim), top, "victim");
	snprintf(parent, sizeof(parent), "%s/b-%016x", root, PARENT_ID);
	if (mkdir(root, 0711) != 0 || mkdir(parent, 0700) != 0)
		return -1;
	path_of(p, sizeof(p), parent, "archive_status");
	if (mkdir(p, 0700) != 0)
		return -1;
	{ /* as riftd leaves a running branch's directory: its server's, and marked so */
		uint32_t uid = SERVER;
		if (chown(parent, SERVER, SERVER) != 0 ||
		    setxattr(parent, "trusted.rift.uid", &uid, sizeof(uid), 0) != 0)
			return -1;
	}
	f = fopen(victim, "w");
	if (f == NULL)
		return -1;
	fputs("root's secret\n", f);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_copies_wal_files_only(void **state)
{
	char p[256], q[256], child[256], err[512], buf[64];
	struct stat st;
	int fd;

	(void)state;
	put_segment(parent, "000000010000000000000003", 700000);
	put_segment(parent, "000000010000000000000004", 4096);
	path_of(p, sizeof(p), parent, "00000002.history");
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, "1\t0/3000000\tno reason\n", 22), 22);
	assert_int_equal(fchown(fd, SERVER, SERVER), 0);
	close(fd);
	/* root's file whose other name went (a hard link left behind by a rename of the
	 * original): one name, but neither riftd's copy nor the server's */
	path_of(p, sizeof(p), parent, "000000010000000000000002");
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, "root's", 6), 6);
	close(fd);
	/* planted: links with WAL names (to root's file and to a FIFO), a FIFO, junk */
	path_of(p, sizeof(p), parent, "000000010000000000000005");
	assert_int_equal(symlink(victim, p), 0);
	path_of(p, sizeof(p), top, "fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	path_of(q, sizeof(q), parent, "000000010000000000000006");
	assert_int_equal(symlink(p, q), 0);
	path_of(p, sizeof(p), parent, "000000010000000000000007");
	assert_int_equal(mkfifo(p, 0600), 0);
	path_of(p, sizeof(p), parent, "junk");
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	close(fd);
	path_of(p, sizeof(p), parent,
		"000000010000000000000008"); /* a second name of root's file */
	assert_int_equal(link(victim, p), 0);
	assert_int_equal(
	    rift_wal_branched(root, PARENT_ID, LAYER_ID, CHILD_ID, NULL, 1, 0, err, sizeof(err)),
	    0);
	snprintf(child, sizeof(child), "%s/b-%016x", root, CHILD_ID);
	path_of(p, sizeof(p), child, "000000010000000000000003");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, SEG);
	assert_true(st.st_blocks * 512 < SEG / 4); /* the hole stayed a hole */
	fd = open(p, O_RDONLY);
	assert_int_equal(pread(fd, buf, 28, 700000), 28);
	close(fd);
	assert_memory_equal(buf, "seg 000000010000000000000003", 28);
	path_of(p, sizeof(p), child, "00000002.history");
	assert_int_equal(stat(p, &st), 0);
	path_of(p, sizeof(p), child, "archive_status");
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* nothing planted came along */
	path_of(p, sizeof(p), child, "000000010000000000000005");
	assert_int_equal(lstat(p, &st), -1);
	path_of(p, sizeof(p), child, "000000010000000000000006");
	assert_int_equal(lstat(p, &st), -1);
	path_of(p, sizeof(p), child, "000000010000000000000007");
	assert_int_equal(lstat(p, &st), -1);
	path_of(p, sizeof(p), child, "junk");
	assert_int_equal(lstat(p, &st), -1);
	path_of(p, sizeof(p), child, "000000010000000000000008");
	assert_int_equal(lstat(p, &st), -1);
	path_of(p, sizeof(p), child, "000000010000000000000002");
	assert_int_equal(lstat(p, &st), -1);
	/* the layer's copy is root's and closed to others */
	snprintf(p, sizeof(p), "%s/l-%016x", root, LAYER_ID);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	rift_wal_remove(root, CHILD_ID);
	assert_int_equal(stat(child, &st), -1);
}

static void test_gap_is_refused(void **state)
{
	char p[256], err[512];
	struct stat st;

	(void)state;
	/* at 1 MiB segments, segment 0xFFF of log 0 and segment 0 of log 1 are neighbours;
	 * segment 2 of log 1 after them leaves a gap */
	put_segment(parent, "000000010000000000000FFF", 10);
	put_segment(parent, "000000010000000100000000", 10);
	put_segment(parent, "000000010000000100000002", 10);
	assert_int_equal(rift_wal_branched(root, PARENT_ID, LAYER_ID + 1, CHILD_ID + 1, NULL, 1, 0,
					   err, sizeof(err)),
			 -EAGAIN);
	assert_non_null(strstr(err, "retry"));
	snprintf(p, sizeof(p), "%s/l-%016x", root, LAYER_ID + 1);
	assert_int_equal(stat(p, &st), -1); /* no half copy left */
	snprintf(p, sizeof(p), "%s/l-%016x.tmp", root, LAYER_ID + 1);
	assert_int_equal(stat(p, &st), -1);
	/* closing the gap makes it whole; an older timeline's segments do not count */
	put_segment(parent, "000000010000000100000001", 10);
	put_segment(parent, "000000000000000000000001", 10);
	assert_int_equal(rift_wal_branched(root, PARENT_ID, LAYER_ID + 1, CHILD_ID + 1, NULL, 1, 0,
					   err, sizeof(err)),
			 0);
}

/* A copy must hold every segment from the child's redo point to its checkpoint record: a
 * checkpoint ending after the branch point removes the oldest whole, leaving no gap. */
static void test_redo_point_must_be_there(void **state)
{
	/* positions in segments 0xF to 0x14 of log 0, at 1 MiB each */
	struct rift_pg_checkpoint gone = { .redo = 0x0F00010, .checkpoint = 0x1000200 };
	struct rift_pg_checkpoint held = { .redo = 0x1000010, .checkpoint = 0x1180000 };
	struct rift_pg_checkpoint ahead = { .redo = 0x1000010, .checkpoint = 0x1480000 };
	struct rift_pg_checkpoint crossing = { .redo = 0x1100010, .checkpoint = 0x1200000 };
	char p[256], err[512];
	struct stat st;

	(void)state;
	put_segment(parent, "000000010000000000000010", 10);
	put_segment(parent, "000000010000000000000011", 10);
	put_segment(parent, "000000020000000000000012", 10); /* a new timeline from here */
	put_segment(parent, "000000020000000000000013", 10);
	assert_int_equal(rift_wal_branched(root, PARENT_ID, LAYER_ID + 2, CHILD_ID + 2, &gone, 1, 0,
					   err, sizeof(err)),
			 -EAGAIN);
	assert_non_null(strstr(err, "redo point"));
	snprintf(p, sizeof(p), "%s/l-%016x", root, LAYER_ID + 2);
	assert_int_equal(stat(p, &st), -1); /* no copy left to be taken for whole later */
	/* a record past the newest segment is not there either */
	assert_int_equal(rift_wal_branched(root, PARENT_ID, LAYER_ID + 2, CHILD_ID + 2, &ahead, 1,
					   0, err, sizeof(err)),
			 -EAGAIN);
	/* across the timeline switch, each segment on whichever timeline holds it */
	assert_int_equal(rift_wal_branched(root, PARENT_ID, LAYER_ID + 2, CHILD_ID + 2, &crossing,
					   1, 0, err, sizeof(err)),
			 0);
	assert_int_equal(rift_wal_branched(root, PARENT_ID, LAYER_ID + 3, CHILD_ID + 3, &held, 1, 0,
					   err, sizeof(err)),
			 0);
	snprintf(p, sizeof(p), "%s/b-%016x/000000010000000000000010", root, CHILD_ID + 3);
	assert_int_equal(stat(p, &st), 0);
}

static void test_parent_without_wal_dir(void **state)
{
	char p[256], err[512];
	struct stat st;

	(void)state;
	/* a parent that never ran keeps its WAL in the store: nothing to copy, no directory */
	assert_int_equal(rift_wal_branched(root, 0x99, 0x98, 0x97, NULL, 1, 0, err, sizeof(err)),
			 0);
	snprintf(p, sizeof(p), "%s/b-%016x", root, 0x97);
	assert_int_equal(stat(p, &st), -1);
}

/* A view (a plain directory here) whose pg_wal is moved out, then handed to one uid and another:
 * a hard link or symbolic link planted in the WAL directory never changes a root file's owner. */
static void test_prepare_moves_out_and_hands_over(void **state)
{
	struct rift_wal_owner a = { 54321, 54321, 54321, 54330 },
			      b = { 54322, 54322, 54321, 54330 };
	char view[192], pg_wal[256], p[256], q[256], target[4200], err[512], bdir[256];
	struct stat st;
	ssize_t n;
	int rootfd;

	(void)state;
	path_of(view, sizeof(view), top, "view");
	assert_int_equal(mkdir(view, 0700), 0);
	path_of(pg_wal, sizeof(pg_wal), view, "pg_wal");
	assert_int_equal(mkdir(pg_wal, 0700), 0);
	put_segment(pg_wal, "000000010000000000000001", 4096);
	rootfd = open(view, O_RDONLY | O_DIRECTORY);
	assert_true(rootfd >= 0);

	assert_int_equal(rift_wal_prepare(root, rootfd, "v", 0x44, 0, &a, false, err, sizeof(err)),
			 0);
	snprintf(bdir, sizeof(bdir), "%s/b-%016x", root, 0x44);
	n = readlink(pg_wal, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = 0;
	assert_string_equal(target, bdir);
	assert_int_equal(stat(bdir, &st), 0);
	assert_int_equal(st.st_uid, 54321);
	assert_int_equal(st.st_mode & 07777, 0700);
	path_of(p, sizeof(p), bdir, "000000010000000000000001");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_uid, 54321);

	/* the branch's user plants a hard link to root's file and a link to it */
	path_of(p, sizeof(p), bdir, "000000010000000000000002");
	assert_int_equal(link(victim, p), 0);
	path_of(q, sizeof(q), bdir, "000000010000000000000003");
	assert_int_equal(symlink(victim, q), 0);
	{ /* and a root file with one name riftd did not write */
		char r[256];
		int fd;
		path_of(r, sizeof(r), bdir, "000000010000000000000004");
		fd = open(r, O_WRONLY | O_CREAT, 0600);
		assert_true(fd >= 0);
		close(fd);
	}
	rift_wal_close(root, 0x44);
	assert_int_equal(stat(bdir, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(rift_wal_prepare(root, rootfd, "v", 0x44, 0, &b, false, err, sizeof(err)),
			 0);
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_uid, 0); /* not handed to 54322 */
	path_of(q, sizeof(q), bdir, "000000010000000000000004");
	assert_int_equal(stat(q, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(unlink(q), 0);
	path_of(q, sizeof(q), bdir, "000000010000000000000003");
	path_of(p, sizeof(p), bdir, "000000010000000000000001");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_uid, 54322);

	/* a size limit brings the WAL back into the view, without what was planted */
	assert_int_equal(unlink(q), 0);
	path_of(p, sizeof(p), bdir, "000000010000000000000002");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(rift_wal_prepare(root, rootfd, "v", 0x44, 0, &b, true, err, sizeof(err)),
			 0);
	assert_int_equal(lstat(pg_wal, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	path_of(p, sizeof(p), pg_wal, "000000010000000000000001");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(stat(bdir, &st), -1);
	close(rootfd);
}

/* A view's base/pgsql_tmp points at a fresh t- directory of the server's; the guard's size
 * counts what is spilled there; a stop removes it, links planted in it followed by nobody. */
static size_t count_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

static void test_temp_dir(void **state)
{
	char view[128], p[512], tdir[192], link[256], err[256];
	struct stat st;
	uint64_t before;
	int rootfd, fd, i;

	(void)state;
	path_of(view, sizeof(view), top, "view");
	assert_int_equal(mkdir(view, 0700), 0);
	path_of(p, sizeof(p), view, "base");
	assert_int_equal(mkdir(p, 0700), 0);
	path_of(p, sizeof(p), view, "base/pgsql_tmp"); /* an older rift's, with a leftover */
	assert_int_equal(mkdir(p, 0700), 0);
	path_of(p, sizeof(p), view, "base/pgsql_tmp/pgsql_tmp1.0");
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(tdir, sizeof(tdir), "%s/t-%016x", root, CHILD_ID);
	rootfd = open(view, O_RDONLY | O_DIRECTORY);
	assert_true(rootfd >= 0);
	before = rift_wal_size(root, CHILD_ID);
	assert_int_equal(rift_wal_temp_prepare(root, rootfd, "child", CHILD_ID, SERVER, SERVER,
					       false, err, sizeof(err)),
			 0);
	path_of(p, sizeof(p), view, "base/pgsql_tmp");
	assert_int_equal(readlink(p, link, sizeof(link) - 1), (ssize_t)strlen(tdir));
	assert_int_equal(lstat(tdir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_uid, SERVER);
	assert_int_equal(st.st_mode & 07777, 0700);

	/* a spill of 1 MiB and a planted link to root's file */
	path_of(p, sizeof(p), tdir, "pgsql_tmp2.0");
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(posix_fallocate(fd, 0, 1 << 20), 0);
	close(fd);
	assert_true(rift_wal_size(root, CHILD_ID) >= before + (1 << 20));
	path_of(p, sizeof(p), tdir, "v");
	assert_int_equal(symlink(victim, p), 0);

	/* and a chain of directories deeper than one removal pass descends */
	path_of(p, sizeof(p), tdir, "d");
	for (i = 0; i < 150; i++) {
		assert_int_equal(mkdirat(AT_FDCWD, p, 0700), 0);
		assert_true(strlen(p) + 3 < sizeof(p));
		strcat(p, "/d");
	}
	rift_wal_close(root, CHILD_ID); /* at once: made root's and moved aside */
	assert_int_equal(lstat(tdir, &st), -1);
	rift_wal_temp_reap(root, CHILD_ID);
	assert_int_equal(count_prefix(root, "t-"), 0);
	assert_int_equal(stat(victim, &st), 0);

	/* a size-limited branch: the view keeps its own directory, no t- is made */
	assert_int_equal(rift_wal_temp_prepare(root, rootfd, "child", CHILD_ID, SERVER, SERVER,
					       true, err, sizeof(err)),
			 0);
	path_of(p, sizeof(p), view, "base/pgsql_tmp");
	assert_int_equal(lstat(p, &st), -1);
	assert_int_equal(lstat(tdir, &st), -1);
	close(rootfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_copies_wal_files_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gap_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redo_point_must_be_there, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parent_without_wal_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepare_moves_out_and_hands_over, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_temp_dir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
