/* test_datadir.c — riftd's touches of a branch's data directory follow no planted link. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rift/datadir.h"

#define RIFT_LINES                                                                                 \
	"# rift: local trust for riftd's own 0700 socket directory\nlocal all all trust\n"

static char top[64], data[128], hbadir[128], hbafile[192], victim[128], vdir[128];

static void put(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static char *slurp(const char *path)
{
	static char buf[1 << 16];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void at(char *out, size_t len, const char *dir, const char *name)
{
	assert_true((size_t)snprintf(out, len, "%s/%s", dir, name) < len);
}

static int setup(void **state)
{
	char p[256];

	(void)state;
	snprintf(top, sizeof(top), "/tmp/rift-test-datadir.XXXXXX");
	if (mkdtemp(top) == NULL)
		return -1;
	at(data, sizeof(data), top, "data");
	at(hbadir, sizeof(hbadir), top, "hba");
	at(victim, sizeof(victim), top, "victim");
	at(vdir, sizeof(vdir), top, "vdir");
	snprintf(hbafile, sizeof(hbafile), "%s/b.conf", hbadir);
	if (mkdir(data, 0700) != 0 || mkdir(vdir, 0755) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/sub", vdir);
	if (mkdir(p, 0755) != 0)
		return -1;
	put(victim, "victim-secret\n", 0600);
	snprintf(p, sizeof(p), "%s/sub/state", vdir);
	put(p, "victim-state\n", 0644);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	return system(cmd) == 0 ? 0 : -1;
}

static void victims_intact(void)
{
	char p[256];

	assert_string_equal(slurp(victim), "victim-secret\n");
	snprintf(p, sizeof(p), "%s/sub/state", vdir);
	assert_string_equal(slurp(p), "victim-state\n");
}

static void test_compose(void **state)
{
	static const char own[] = "host all all 127.0.0.1/32 trust";
	char *t;

	(void)state;
	t = rift_datadir_compose_hba(NULL, 0);
	assert_non_null(t);
	assert_true(strncmp(t, RIFT_LINES, strlen(RIFT_LINES)) == 0);
	assert_non_null(strstr(t, "host all all 127.0.0.1/32 scram-sha-256\n"));
	assert_non_null(strstr(t, "host all all ::1/128 scram-sha-256\n"));
	free(t);
	/* the branch's own lines follow rift's, ending in a newline */
	t = rift_datadir_compose_hba(own, strlen(own));
	assert_non_null(t);
	assert_true(strncmp(t, RIFT_LINES, strlen(RIFT_LINES)) == 0);
	assert_non_null(strstr(t, "host all all 127.0.0.1/32 trust\n"));
	assert_null(strstr(t, "scram"));
	free(t);
	/* an older riftd's two lines at the top are not repeated */
	t = rift_datadir_compose_hba(RIFT_LINES "local all all peer\n",
				     strlen(RIFT_LINES "local all all peer\n"));
	assert_non_null(t);
	assert_null(strstr(t + 1, "# rift: local trust"));
	assert_non_null(strstr(t, "local all all peer\n"));
	free(t);
}

/* Writes the hba file with pg_hba.conf as the caller left it; returns the file's text. */
static const char *write_hba(int want_rc)
{
	char err[512] = "";
	int rootfd = rift_datadir_open(data), rc;

	assert_true(rootfd >= 0);
	rc = rift_datadir_write_hba(rootfd, "b", hbafile, getegid(), false, err, sizeof(err));
	close(rootfd);
	assert_int_equal(rc, want_rc);
	return rc == 0 ? slurp(hbafile) : NULL;
}

static void test_hba_regular(void **state)
{
	char p[256], tmp[256];
	struct stat st;

	(void)state;
	at(p, sizeof(p), data, "pg_hba.conf");
	put(p, "host all all 127.0.0.1/32 md5\n", 0600);
	/* a temporary file left by a crash does not stop the next write */
	assert_int_equal(mkdir(hbadir, 0711), 0);
	at(tmp, sizeof(tmp), hbadir, ".b.conf.tmp");
	put(tmp, "left over", 0600);
	assert_non_null(strstr(write_hba(0), "host all all 127.0.0.1/32 md5\n"));
	assert_int_equal(stat(hbafile, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_gid, getegid());
	assert_int_equal(access(tmp, F_OK), -1);
}

static void test_hba_unusable(void **state)
{
	char p[256], big_path[256];
	char *big;
	int fd;

	(void)state;
	at(p, sizeof(p), data, "pg_hba.conf");
	/* missing, a link to a root file, a FIFO, a directory, too big, a NUL byte: the default */
	assert_non_null(strstr(write_hba(0), "scram-sha-256"));
	assert_int_equal(symlink(victim, p), 0);
	assert_null(strstr(write_hba(0), "victim"));
	assert_non_null(strstr(slurp(hbafile), "scram-sha-256"));
	victims_intact();
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_non_null(strstr(write_hba(0), "scram-sha-256")); /* and did not block */
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_non_null(strstr(write_hba(0), "scram-sha-256"));
	assert_int_equal(rmdir(p), 0);
	big = calloc(1, RIFT_HBA_MAX_BYTES + 2);
	assert_non_null(big);
	memset(big, '#', RIFT_HBA_MAX_BYTES + 1);
	put(p, big, 0600);
	free(big);
	assert_non_null(strstr(write_hba(0), "scram-sha-256"));
	at(big_path, sizeof(big_path), data, "pg_hba.conf");
	fd = open(big_path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "local all all trust\n\0x\n", 23), 23);
	close(fd);
	assert_non_null(strstr(write_hba(0), "scram-sha-256"));
	/* an hba directory others could write to is refused */
	assert_int_equal(chmod(hbadir, 0777), 0);
	assert_null(write_hba(-EPERM));
}

static void test_prepare(void **state)
{
	char p[256], q[256], err[512] = "";
	struct stat st;
	int rootfd;

	(void)state;
	/* postmaster.pid a link to a root file; standby.signal a directory with a link in it */
	at(p, sizeof(p), data, "postmaster.pid");
	assert_int_equal(symlink(victim, p), 0);
	at(p, sizeof(p), data, "standby.signal");
	assert_int_equal(mkdir(p, 0700), 0);
	at(q, sizeof(q), p, "x");
	assert_int_equal(symlink(victim, q), 0);
	at(p, sizeof(p), data, "recovery.signal");
	put(p, "", 0600);
	/* pg_replslot a link to a root directory */
	at(p, sizeof(p), data, "pg_replslot");
	assert_int_equal(symlink(vdir, p), 0);
	rootfd = rift_datadir_open(data);
	assert_true(rootfd >= 0);
	assert_int_equal(rift_datadir_prepare(rootfd, "b", geteuid(), getegid(), err, sizeof(err)),
			 0);
	victims_intact();
	at(p, sizeof(p), data, "postmaster.pid");
	assert_int_equal(lstat(p, &st), -1);
	at(p, sizeof(p), data, "standby.signal");
	assert_int_equal(lstat(p, &st), -1);
	at(p, sizeof(p), data, "recovery.signal");
	assert_int_equal(lstat(p, &st), -1);
	at(p, sizeof(p), data, "pg_replslot");
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	/* a slot directory that is a link, and a real slot with its files */
	at(q, sizeof(q), p, "evil");
	assert_int_equal(symlink(vdir, q), 0);
	at(q, sizeof(q), p, "real");
	assert_int_equal(mkdir(q, 0700), 0);
	at(p, sizeof(p), q, "state");
	put(p, "slot", 0600);
	at(p, sizeof(p), q, "xid-1.spill");
	put(p, "spill", 0600);
	assert_int_equal(rift_datadir_prepare(rootfd, "b", geteuid(), getegid(), err, sizeof(err)),
			 0);
	close(rootfd);
	victims_intact();
	at(p, sizeof(p), data, "pg_replslot");
	at(q, sizeof(q), p, "evil");
	assert_int_equal(lstat(q, &st), -1);
	at(q, sizeof(q), p, "real");
	assert_int_equal(lstat(q, &st), -1);
	assert_int_equal(lstat(p, &st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compose),
		cmocka_unit_test_setup_teardown(test_hba_regular, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hba_unusable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepare, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
