/* branch_secret.c — per-branch login passwords: generation, SCRAM verifiers, the secrets dir. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rift/branch_secret.h"
#include "rift/private_file.h"
#include "rift/scram.h"

#define SCRAM_ITERATIONS 4096 /* Postgres's scram_iterations default */
#define SALT_LEN         16

static int random_bytes(unsigned char *buf, size_t len)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

int rift_secret_new_password(char *out, size_t outlen)
{
	/* no look-alikes (l, 1, O, 0): people copy these from logs of CI jobs */
	static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	unsigned char raw[RIFT_SECRET_PASSWORD_LEN];
	size_t i;
	int rc;

	if (outlen <= RIFT_SECRET_PASSWORD_LEN)
		return -ENOSPC;
	rc = random_bytes(raw, sizeof(raw));
	if (rc != 0)
		return rc;
	for (i = 0; i < sizeof(raw); i++)
		out[i] = alphabet[raw[i] % (sizeof(alphabet) - 1)];
	out[sizeof(raw)] = '\0';
	return 0;
}

int rift_secret_verifier(const char *password, char *out, size_t outlen)
{
	struct rift_scram_secret s;
	unsigned char salt[SALT_LEN];
	char salt64[32], stored64[48], server64[48];
	int rc = random_bytes(salt, sizeof(salt));

	if (rc == 0)
		rc = rift_scram_make_secret(password, salt, sizeof(salt), SCRAM_ITERATIONS, &s);
	if (rc != 0)
		return rc;
	EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof(salt));
	EVP_EncodeBlock((unsigned char *)stored64, s.stored_key, sizeof(s.stored_key));
	EVP_EncodeBlock((unsigned char *)server64, s.server_key, sizeof(s.server_key));
	if ((size_t)snprintf(out, outlen, "SCRAM-SHA-256$%d:%s$%s:%s", SCRAM_ITERATIONS, salt64,
			     stored64, server64) >= outlen)
		return -ENOSPC;
	return 0;
}

#define RIFT_SECRET_PASSWORD_LINE 256 /* a generated password and its newline */

int rift_secret_save(const char *state, const char *branch, const char *password)
{
	char dir[4200], path[4300], line[RIFT_SECRET_PASSWORD_LINE];
	size_t n = strlen(password);
	int rc;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/secrets", state) >= sizeof(dir))
		return -ENAMETOOLONG;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	if (chmod(dir, 0700) != 0)
		return -errno;
	rc = rift_secret_path(state, branch, path, sizeof(path));
	if (rc != 0)
		return rc;
	if (n + 2 > sizeof(line))
		return -ENAMETOOLONG;
	snprintf(line, sizeof(line), "%s\n", password);
	rc = rift_private_file_write(path, line, n + 1);
	explicit_bzero(line, sizeof(line));
	return rc;
}

int rift_secret_remove(const char *state, const char *branch)
{
	char path[4300];
	int rc = rift_secret_path(state, branch, path, sizeof(path));

	if (rc != 0)
		return rc;
	if (unlink(path) != 0 && errno != ENOENT)
		return -errno;
	return 0;
}
