/* base_meta.c — reads `<state>/base.conf`, what `rift init` recorded about the base. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rift/base_meta.h"

int rift_base_meta_load(const char *state, struct rift_base_meta *meta, char *err, size_t errlen)
{
	char path[4200], line[1024];
	FILE *f;

	memset(meta, 0, sizeof(*meta));
	snprintf(path, sizeof(path), "%s/base.conf", state);
	f = fopen(path, "re");
	if (f == NULL) {
		int e = errno; /* snprintf may change errno */
		snprintf(err, errlen, "cannot read %s: %s (was the store made by `rift init`?)",
			 path, strerror(e));
		return -e;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *eq = strchr(line, '=');
		if (eq == NULL)
			continue;
		*eq++ = '\0';
		eq[strcspn(eq, "\n")] = '\0';
		if (strcmp(line, "mode") == 0)
			snprintf(meta->mode, sizeof(meta->mode), "%s", eq);
		else if (strcmp(line, "default_db") == 0)
			snprintf(meta->default_db, sizeof(meta->default_db), "%s", eq);
		else if (strcmp(line, "upstream") == 0)
			snprintf(meta->upstream, sizeof(meta->upstream), "%s", eq);
		else if (strcmp(line, "demo_password") == 0)
			snprintf(meta->demo_password, sizeof(meta->demo_password), "%s", eq);
		else if (strcmp(line, "login_role") == 0)
			snprintf(meta->login_role, sizeof(meta->login_role), "%s", eq);
	}
	fclose(f);
	return 0;
}
