/* bootstrap_role.c — finds a stopped cluster's bootstrap superuser by reading pg_authid's heap
 * pages, so `rift url` on a --pgdata base names a role that exists without starting a server. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rift/bootstrap_role.h"

#define PG_PAGE        8192
#define AUTHID_OID     1260u /* pg_authid: a mapped, shared catalog */
#define BOOTSTRAP_OID  10u
#define FILENODE_MAGIC 0x592717
#define NAMEDATALEN    64
#define MAX_PAGES      4096 /* 32 MiB of roles is far more than any cluster has */

/* infomask bits (htup_details.h) */
#define XMIN_COMMITTED 0x0100
#define XMIN_INVALID   0x0200
#define XMAX_INVALID   0x0800
#define XMAX_LOCK_ONLY 0x0080

static uint32_t u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint16_t u16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

/* pg_authid's file number from global/pg_filenode.map (512 bytes: magic, count, 62 pairs). */
static int authid_filenode(const char *datadir, uint32_t *node)
{
	char path[4200];
	uint8_t map[512];
	uint32_t i, n;
	ssize_t got;
	int fd, rc = -ENOENT;

	snprintf(path, sizeof(path), "%s/global/pg_filenode.map", datadir);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	got = read(fd, map, sizeof(map));
	close(fd);
	if (got != (ssize_t)sizeof(map) || u32(map) != FILENODE_MAGIC)
		return -EINVAL;
	n = u32(map + 4);
	for (i = 0; i < n && i < 62; i++)
		if (u32(map + 8 + 8 * i) == AUTHID_OID) {
			*node = u32(map + 12 + 8 * i);
			rc = 0;
			break;
		}
	return rc;
}

int rift_bootstrap_role(const char *datadir, char *out, size_t outlen)
{
	uint8_t page[PG_PAGE];
	/* live rows of oid 10 whose inserter is hinted committed, and the unhinted ones */
	char path[4200], hinted[NAMEDATALEN + 1] = "", unhinted[NAMEDATALEN + 1] = "";
	int fd, rc, nhinted = 0, nunhinted = 0;
	uint32_t node = 0, pno;
	const char *name = NULL;

	rc = authid_filenode(datadir, &node);
	if (rc != 0)
		return rc;
	snprintf(path, sizeof(path), "%s/global/%u", datadir, node);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (pno = 0; pno < MAX_PAGES; pno++) {
		ssize_t got = pread(fd, page, sizeof(page), (off_t)pno * PG_PAGE);
		uint16_t lower, i, nitems;
		if (got != PG_PAGE)
			break;
		lower = u16(page + 12);
		if (lower < 24 || lower > PG_PAGE)
			continue; /* a new, all-zero page */
		nitems = (uint16_t)((lower - 24) / 4);
		for (i = 0; i < nitems; i++) {
			uint32_t lp = u32(page + 24 + 4 * i);
			uint32_t off = lp & 0x7fff, flags = (lp >> 15) & 3, len = lp >> 17;
			const uint8_t *t = page + off;
			uint16_t mask;
			uint8_t hoff;
			bool live;

			if (flags != 1 /* LP_NORMAL */ || off < 24 || off + len > PG_PAGE ||
			    len < 23)
				continue;
			mask = u16(t + 20);
			hoff = t[22];
			if (hoff < 23 || (uint32_t)hoff + 4 + NAMEDATALEN > len)
				continue;
			/* frozen rows carry both xmin bits; invalid alone means aborted */
			if ((mask & (XMIN_COMMITTED | XMIN_INVALID)) == XMIN_INVALID)
				continue;
			live = u32(t + 4) == 0 || (mask & (XMAX_INVALID | XMAX_LOCK_ONLY)) != 0;
			if (!live || u32(t + hoff) != BOOTSTRAP_OID)
				continue;
			if (mask & XMIN_COMMITTED) {
				if (nhinted == 0 ||
				    strncmp(hinted, (const char *)t + hoff + 4, NAMEDATALEN) != 0)
					nhinted++;
				memcpy(hinted, t + hoff + 4, NAMEDATALEN);
			} else {
				if (nunhinted == 0 ||
				    strncmp(unhinted, (const char *)t + hoff + 4, NAMEDATALEN) != 0)
					nunhinted++;
				memcpy(unhinted, t + hoff + 4, NAMEDATALEN);
			}
		}
	}
	close(fd);
	/* a renamed role whose new row is not hinted yet: the old row is dead (its xmax set),
	 * so one name remains either way; two distinct names is a case not to guess at */
	if (nhinted == 1 && nunhinted == 0)
		name = hinted;
	else if (nhinted == 0 && nunhinted == 1)
		name = unhinted;
	else if (nhinted == 1 && nunhinted == 1 && strcmp(hinted, unhinted) == 0)
		name = hinted;
	if (name == NULL || name[0] == '\0' || strlen(name) >= outlen)
		return -ENOENT;
	snprintf(out, outlen, "%s", name);
	return 0;
}
