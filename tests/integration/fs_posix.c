/* fs_posix.c — POSIX behaviour of a mounted branch, checked with real system calls. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

/* Usage: fs_posix MOUNTPOINT. Exits 0 when every check passes, else prints the first failure. */

static const char *mnt;
static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, " (errno %d: %s)\n", errno, strerror(errno));              \
			failures++;                                                                \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static char *path(const char *fmt, ...)
{
	static char bufs[4][4096];
	static int next;
	char *buf = bufs[next++ % 4];
	char rel[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(buf, sizeof(bufs[0]), "%.2000s/%s", mnt, rel);
	return buf;
}

static void test_create_excl_and_trunc(void)
{
	int fd = open(path("excl"), O_CREAT | O_EXCL | O_RDWR, 0600);

	CHECK(fd >= 0, "O_CREAT|O_EXCL on a new name");
	CHECK(write(fd, "hello world", 11) == 11, "write");
	close(fd);
	CHECK(open(path("excl"), O_CREAT | O_EXCL | O_RDWR, 0600) < 0 && errno == EEXIST,
	      "second O_EXCL must fail with EEXIST");
	fd = open(path("excl"), O_RDWR | O_TRUNC);
	CHECK(fd >= 0, "open O_TRUNC");
	close(fd);
	{
		struct stat st;
		CHECK(stat(path("excl"), &st) == 0 && st.st_size == 0, "O_TRUNC empties the file");
	}
}

static void test_unaligned_io(void)
{
	char buf[20000], got[20000];
	int fd = open(path("io"), O_CREAT | O_RDWR, 0600);
	size_t i;

	CHECK(fd >= 0, "create io");
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 31 + 7);
	CHECK(pwrite(fd, buf, sizeof(buf), 8190) == (ssize_t)sizeof(buf), "unaligned pwrite");
	CHECK(pwrite(fd, "XY", 2, 3) == 2, "tiny pwrite");
	CHECK(fsync(fd) == 0, "fsync");
	CHECK(fdatasync(fd) == 0, "fdatasync");
	CHECK(pread(fd, got, sizeof(got), 8190) == (ssize_t)sizeof(got), "pread");
	CHECK(memcmp(got, buf, sizeof(buf)) == 0, "read back what was written");
	CHECK(pread(fd, got, 10, 0) == 10 && got[0] == 0 && got[3] == 'X' && got[4] == 'Y',
	      "hole before data reads as zeros");
	close(fd);
}

static void test_unlinked_open_file(void)
{
	char got[8];
	int fd = open(path("ghost"), O_CREAT | O_RDWR, 0600);

	CHECK(fd >= 0, "create ghost");
	CHECK(write(fd, "before", 6) == 6, "write");
	CHECK(unlink(path("ghost")) == 0, "unlink while open");
	CHECK(access(path("ghost"), F_OK) != 0 && errno == ENOENT, "name is gone");
	CHECK(pwrite(fd, "after!", 6, 6) == 6, "write through the handle after unlink");
	CHECK(fsync(fd) == 0, "fsync after unlink must succeed (Postgres PANICs otherwise)");
	CHECK(pread(fd, got, 6, 6) == 6 && memcmp(got, "after!", 6) == 0, "read after unlink");
	CHECK(pread(fd, got, 6, 0) == 6 && memcmp(got, "before", 6) == 0, "old data still there");
	close(fd);
}

static void test_rename_over_open_file(void)
{
	int old = open(path("target"), O_CREAT | O_RDWR, 0600), fd;
	char got[8];

	CHECK(old >= 0, "create target");
	CHECK(write(old, "old", 3) == 3, "write old");
	fd = open(path("target.tmp"), O_CREAT | O_RDWR, 0600);
	CHECK(fd >= 0 && write(fd, "new", 3) == 3 && fsync(fd) == 0, "write new");
	close(fd);
	CHECK(rename(path("target.tmp"), path("target")) == 0, "rename over an existing file");
	CHECK(pread(old, got, 3, 0) == 3 && memcmp(got, "old", 3) == 0,
	      "the replaced file stays readable through its handle");
	close(old);
	fd = open(path("target"), O_RDONLY);
	CHECK(fd >= 0 && read(fd, got, 3) == 3 && memcmp(got, "new", 3) == 0,
	      "the name shows the new file");
	close(fd);
	CHECK(access(path("target.tmp"), F_OK) != 0, "old name gone");
}

static void test_truncate_then_extend(void)
{
	char buf[3 * 8192], got[3 * 8192];
	int fd = open(path("trunc"), O_CREAT | O_RDWR, 0600);
	size_t i;

	CHECK(fd >= 0, "create trunc");
	memset(buf, 'z', sizeof(buf));
	CHECK(write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf) && fsync(fd) == 0, "fill");
	CHECK(ftruncate(fd, 100) == 0, "ftruncate shrink");
	CHECK(ftruncate(fd, sizeof(buf)) == 0, "ftruncate extend");
	CHECK(pread(fd, got, sizeof(got), 0) == (ssize_t)sizeof(got), "read");
	for (i = 100; i < sizeof(got); i++)
		CHECK(got[i] == 0, "stale byte %zu after truncate+extend", i);
	CHECK(truncate(path("trunc"), 0) == 0, "truncate(path, 0)");
	{
		struct stat st;
		CHECK(fstat(fd, &st) == 0 && st.st_size == 0, "size 0");
	}
	close(fd);
}

static void test_excl_race(void)
{
	enum { RACERS = 8 };
	int winners = 0, i, status;

	for (i = 0; i < RACERS; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			int fd = open(path("race"), O_CREAT | O_EXCL | O_WRONLY, 0600);
			_exit(fd >= 0 ? 0 : (errno == EEXIST ? 1 : 2));
		}
	}
	for (i = 0; i < RACERS; i++) {
		CHECK(wait(&status) > 0, "wait");
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 2,
		      "racer saw an error other than "
		      "EEXIST");
		if (WEXITSTATUS(status) == 0)
			winners++;
	}
	CHECK(winners == 1, "exactly one O_EXCL racer wins, got %d", winners);
}

static void test_readdir_during_unlink(void)
{
	enum { N = 300 };
	char seen[N] = { 0 };
	struct dirent *de;
	pid_t pid;
	DIR *d;
	int i, status;

	CHECK(mkdir(path("many"), 0700) == 0, "mkdir many");
	for (i = 0; i < N; i++) {
		int fd = open(path("many/f%03d", i), O_CREAT | O_WRONLY, 0600);
		CHECK(fd >= 0, "create many/f%03d", i);
		close(fd);
	}
	d = opendir(path("many"));
	CHECK(d != NULL, "opendir");
	pid = fork();
	if (pid == 0) {
		for (i = 0; i < N; i += 2)
			unlink(path("many/f%03d", i));
		_exit(0);
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		int n;
		if (de->d_name[0] == '.')
			continue;
		CHECK(sscanf(de->d_name, "f%03d", &n) == 1 && n >= 0 && n < N, "bad name %s",
		      de->d_name);
		CHECK(seen[n] == 0, "entry %s returned twice", de->d_name);
		seen[n] = 1;
	}
	CHECK(errno == 0, "readdir error");
	closedir(d);
	waitpid(pid, &status, 0);
	for (i = 1; i < N; i += 2)
		CHECK(seen[i], "entry f%03d (never unlinked) was skipped", i);
	for (i = 0; i < N; i++)
		unlink(path("many/f%03d", i));
	CHECK(rmdir(path("many")) == 0, "rmdir after emptying");
}

static void test_dirs_links_attrs(void)
{
	char buf[64];
	struct stat st;
	struct statvfs sv;
	struct timespec times[2] = { { 1000000000, 123456789 }, { 1100000000, 987654321 } };
	int fd, dfd;

	CHECK(mkdir(path("d"), 0750) == 0, "mkdir");
	CHECK(mkdir(path("d"), 0750) != 0 && errno == EEXIST, "mkdir twice");
	CHECK(mkdir(path("d/sub"), 0700) == 0, "mkdir nested");
	CHECK(rmdir(path("d")) != 0 && errno == ENOTEMPTY, "rmdir of a non-empty dir");
	CHECK(rename(path("d/sub"), path("sub2")) == 0, "rename a directory");
	CHECK(rmdir(path("sub2")) == 0 && rmdir(path("d")) == 0, "rmdir");
	CHECK(symlink("pg_tblspc/16384", path("ln")) == 0, "symlink");
	CHECK(readlink(path("ln"), buf, sizeof(buf)) == 15 &&
		  memcmp(buf, "pg_tblspc/16384", 15) == 0,
	      "readlink");
	fd = open(path("attrs"), O_CREAT | O_RDWR, 0600);
	CHECK(fd >= 0, "create attrs");
	CHECK(fchmod(fd, 0640) == 0 && fstat(fd, &st) == 0 && (st.st_mode & 07777) == 0640,
	      "chmod");
	CHECK(fchown(fd, 101, 104) == 0 && fstat(fd, &st) == 0 && st.st_uid == 101 &&
		  st.st_gid == 104,
	      "chown");
	CHECK(futimens(fd, times) == 0 && fstat(fd, &st) == 0 && st.st_mtim.tv_sec == 1100000000 &&
		  st.st_mtim.tv_nsec == 987654321,
	      "utimens with nanoseconds");
	CHECK(posix_fallocate(fd, 0, 1 << 20) == 0 && fstat(fd, &st) == 0 && st.st_size == 1 << 20,
	      "fallocate mode 0 extends");
	close(fd);
	CHECK(link(path("attrs"), path("hard")) != 0 && errno == EPERM,
	      "hard links fail with EPERM");
	CHECK(statvfs(mnt, &sv) == 0 && sv.f_bsize > 0 && sv.f_blocks > 0, "statfs");
	dfd = open(mnt, O_RDONLY | O_DIRECTORY);
	CHECK(dfd >= 0 && fsync(dfd) == 0, "fsync of a directory");
	close(dfd);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fs_posix MOUNTPOINT\n");
		return 2;
	}
	mnt = argv[1];
	test_create_excl_and_trunc();
	test_unaligned_io();
	test_unlinked_open_file();
	test_rename_over_open_file();
	test_truncate_then_extend();
	test_excl_race();
	test_readdir_during_unlink();
	test_dirs_links_attrs();
	if (failures == 0)
		printf("fs_posix: all checks passed on %s\n", mnt);
	return failures == 0 ? 0 : 1;
}
