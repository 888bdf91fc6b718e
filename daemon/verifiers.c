/* verifiers.c — riftd's copy of branches' SCRAM verifiers, one small file per branch. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rift/private_file.h"
#include "rift/verifiers.h"

#define LINE_MAX_LEN 1024 /* hex role (<= 126) + a verifier (< 200) with room to spare */
#define FILE_MAX     (1 << 20)

/* Puts read, change and rewrite a file; the router's fetch threads and the manager's create
 * and reset may do so at once. Readers need no lock: files are replaced by rename. */
static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;

static int dir_path(const char *state, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/run/verifiers", state);

	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static int file_path(const char *state, const char *branch, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/run/verifiers/%s", state, branch);

	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static void hex(const char *s, char *out) /* out: 2 * strlen(s) + 1 */
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		out[2 * i] = digits[(unsigned char)s[i] >> 4];
		out[2 * i + 1] = digits[(unsigned char)s[i] & 15];
	}
	out[2 * i] = '\0';
}

/* Reads the whole file (at most FILE_MAX) into a NUL-terminated buffer the caller frees. */
static int slurp(const char *path, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc = 0;
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	size_t got = 0;

	*out = NULL;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
		rc = -EINVAL;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size && (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	*out = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

/* Writes text as the branch's file: a temporary file, fsync, rename. */
static int write_file(const char *state, const char *branch, const char *text, size_t len)
{
	char dir[4200], path[4400];

	if (dir_path(state, dir, sizeof(dir)) != 0 ||
	    file_path(state, branch, path, sizeof(path)) != 0)
		return -ENAMETOOLONG;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	return rift_private_file_write(path, text, len);
}

int rift_verifiers_get(const char *state, const char *branch, const char *role, char *out,
		       size_t outlen)
{
	char path[4400], key[2 * 64 + 2], *text = NULL, *line, *next;
	int rc;

	if (strlen(role) >= 64 || file_path(state, branch, path, sizeof(path)) != 0)
		return -ENOENT;
	rc = slurp(path, &text);
	if (rc != 0)
		return -ENOENT;
	hex(role, key);
	memcpy(key + strlen(key), " ", 2); /* key has room: 2 * 63 + 1 + 1 */
	rc = -ENOENT;
	for (line = text; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (strncmp(line, key, strlen(key)) == 0 && strlen(line + strlen(key)) < outlen) {
			memcpy(out, line + strlen(key), strlen(line + strlen(key)) + 1);
			rc = 0;
		}
	}
	free(text);
	return rc;
}

static int put_locked(const char *state, const char *branch, const char *role, const char *secret)
{
	char path[4400], key[2 * 64 + 2], *text = NULL, *out = NULL, *line, *next;
	size_t at = 0, cap;
	int rc;

	if (strlen(role) >= 64 ||
	    (secret != NULL && (strlen(secret) >= LINE_MAX_LEN || strpbrk(secret, " \n") != NULL)))
		return -EINVAL;
	rc = file_path(state, branch, path, sizeof(path));
	if (rc != 0)
		return rc;
	rc = slurp(path, &text);
	if (rc == -ENOENT)
		rc = 0;
	if (rc != 0)
		return rc;
	hex(role, key);
	memcpy(key + strlen(key), " ", 2);
	cap = (text ? strlen(text) : 0) + LINE_MAX_LEN + 256; /* + one line of key and secret */
	out = malloc(cap);
	if (out == NULL) {
		free(text);
		return -ENOMEM;
	}
	for (line = text; line != NULL && *line != '\0'; line = next) {
		size_t n;
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (strncmp(line, key, strlen(key)) == 0) /* the role's old line goes */
			continue;
		n = strlen(line);
		memcpy(out + at, line, n);
		out[at + n] = '\n';
		at += n + 1;
	}
	if (secret != NULL)
		at += (size_t)snprintf(out + at, cap - at, "%s%s\n", key, secret);
	rc = write_file(state, branch, out, at);
	free(text);
	free(out);
	return rc;
}

int rift_verifiers_put(const char *state, const char *branch, const char *role, const char *secret)
{
	int rc;

	pthread_mutex_lock(&write_mu);
	rc = put_locked(state, branch, role, secret);
	pthread_mutex_unlock(&write_mu);
	return rc;
}

static void forget_locked(const char *state, const char *branch)
{
	char path[4400];

	if (file_path(state, branch, path, sizeof(path)) == 0)
		unlink(path);
}

int rift_verifiers_inherit(const char *state, const char *from, const char *to)
{
	char path[4400], *text = NULL;
	int rc = file_path(state, from, path, sizeof(path));

	if (rc != 0)
		return rc;
	pthread_mutex_lock(&write_mu);
	rc = slurp(path, &text);
	if (rc == -ENOENT) { /* no verifier was ever seen on the parent: none on the child */
		forget_locked(state, to);
		rc = 0;
	} else if (rc == 0) {
		rc = write_file(state, to, text, strlen(text));
	}
	pthread_mutex_unlock(&write_mu);
	free(text);
	return rc;
}

void rift_verifiers_forget(const char *state, const char *branch)
{
	pthread_mutex_lock(&write_mu);
	forget_locked(state, branch);
	pthread_mutex_unlock(&write_mu);
}
