/* test_identity.c — per-branch uids: a range holding a real user is refused, and a sweep leaves
 * nothing of a uid behind (processes, System V IPC, /dev/shm), and nothing of any other uid
 * goes. Needs root, as riftd does. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rift/identity.h"

/* far from the default range, so a riftd of a test running meanwhile is not touched */
#define TEST_UID 2140000000u

static char shm_mine[64], shm_other[64];
static int id_mine = -1, id_other = -1;

static void range_with_a_user_is_refused(void **state)
{
	char err[512] = "";

	(void)state;
	assert_int_equal(rift_identity_check_range(0, 1, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "\"root\""));
	assert_non_null(strstr(err, "uid_base"));
	assert_int_equal(rift_identity_check_range(TEST_UID, 256, err, sizeof(err)), 0);
}

static pid_t spawn_as(uid_t uid, bool setsid_daemon)
{
	pid_t p = fork();

	if (p == 0) {
		if (setgid(uid) != 0 || setuid(uid) != 0)
			_exit(1);
		if (setsid_daemon && fork() != 0) /* the grandchild lives on, reparented */
			_exit(0);
		pause();
		_exit(0);
	}
	return p;
}

static bool alive_of(uid_t uid)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "ps -o stat= -u %u | grep -qv '^Z'", (unsigned)uid);
	return system(cmd) == 0;
}

static void sweep_takes_everything_of_the_uid_only(void **state)
{
	struct shmid_ds ds;
	pid_t a, b, other;
	uid_t stuck[4];
	size_t nstuck = 9;
	int fd;

	(void)state;
	if (geteuid() != 0)
		skip();
	a = spawn_as(TEST_UID, false);
	b = spawn_as(TEST_UID, true);
	other = spawn_as(TEST_UID + 1, false);
	assert_true(a > 0 && b > 0 && other > 0);
	waitpid(b, NULL, 0); /* its child is the daemon */
	usleep(100 * 1000);
	assert_true(alive_of(TEST_UID));

	id_mine = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	id_other = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	assert_true(id_mine >= 0 && id_other >= 0);
	assert_int_equal(shmctl(id_mine, IPC_STAT, &ds), 0);
	ds.shm_perm.uid = TEST_UID;
	assert_int_equal(shmctl(id_mine, IPC_SET, &ds), 0);
	ds.shm_perm.uid = TEST_UID + 1;
	assert_int_equal(shmctl(id_other, IPC_SET, &ds), 0);

	snprintf(shm_mine, sizeof(shm_mine), "/dev/shm/rift-test-%d-mine", (int)getpid());
	snprintf(shm_other, sizeof(shm_other), "/dev/shm/rift-test-%d-other", (int)getpid());
	fd = open(shm_mine, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0 && fchown(fd, TEST_UID, TEST_UID) == 0);
	close(fd);
	fd = open(shm_other, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0 && fchown(fd, TEST_UID + 1, TEST_UID + 1) == 0);
	close(fd);

	assert_int_equal(rift_identity_sweep(TEST_UID, 1, stuck, 4, &nstuck), 0);
	assert_int_equal(nstuck, 0);
	assert_false(alive_of(TEST_UID));
	assert_int_equal(waitpid(a, NULL, WNOHANG), a);
	assert_int_equal(shmctl(id_mine, IPC_STAT, &ds), -1);
	assert_int_equal(access(shm_mine, F_OK), -1);
	/* another uid's process, segment and file are not touched */
	assert_int_equal(kill(other, 0), 0);
	assert_int_equal(shmctl(id_other, IPC_STAT, &ds), 0);
	assert_int_equal(access(shm_other, F_OK), 0);
}

/* Whatever the test (or a failed assertion) left: processes of both uids, reaped; segments;
 * files. */
static int teardown(void **state)
{
	(void)state;
	if (system("pkill -KILL -U 2140000000,2140000001") < 0)
		return -1;
	if (id_mine >= 0)
		shmctl(id_mine, IPC_RMID, NULL);
	if (id_other >= 0)
		shmctl(id_other, IPC_RMID, NULL);
	unlink(shm_mine);
	unlink(shm_other);
	usleep(100 * 1000);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(range_with_a_user_is_refused),
		cmocka_unit_test_teardown(sweep_takes_everything_of_the_uid_only, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
