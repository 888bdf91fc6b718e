/* secret_read.c — the login role of a base and a branch's own password, for building its URL. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rift/secret_read.h"

int rift_secret_path(const char *state, const char *branch, char *out, size_t len)
{
	if ((size_t)snprintf(out, len, "%s/secrets/%s", state, branch) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int rift_secret_login_role(const struct rift_base_meta *meta, char *out, size_t outlen)
{
	const char *u, *end;

	if (meta->demo_password[0] != '\0') {
		snprintf(out, outlen, "rift");
		return 0;
	}
	if (meta->login_role[0] != '\0') {
		snprintf(out, outlen, "%s", meta->login_role);
		return 0;
	}
	if (strncmp(meta->upstream, "postgres://", 11) != 0)
		return -ENOENT;
	u = meta->upstream + 11;
	end = strchr(u, '@');
	if (end == NULL || end == u || (size_t)(end - u) >= outlen)
		return -ENOENT;
	snprintf(out, outlen, "%.*s", (int)(end - u), u);
	return 0;
}

int rift_secret_load(const char *state, const char *branch, char *out, size_t outlen)
{
	char path[4300];
	ssize_t n;
	int fd, rc = rift_secret_path(state, branch, path, sizeof(path));

	if (rc != 0)
		return rc;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, out, outlen - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	return out[0] != '\0' ? 0 : -EIO;
}
