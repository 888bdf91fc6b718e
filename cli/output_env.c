/* output_env.c — `--output env`: KEY=value lines a POSIX shell can eval (and `export $(...)`,
 * docker --env-file and $GITHUB_ENV read as they are when no quoting is needed). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Characters that mean nothing to a shell: such a value goes out bare. */
static int plain(const char *v)
{
	return v[0] != '\0' &&
	       strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
			 "@%+,-./:=_") == strlen(v);
}

void cli_print_env(FILE *out, const char *key, const char *value)
{
	const char *p;

	if (plain(value)) {
		fprintf(out, "%s=%s\n", key, value);
		return;
	}
	/* single quotes keep everything literal; a quote itself is closed, escaped, reopened */
	fprintf(out, "%s='", key);
	for (p = value; *p != '\0'; p++) {
		if (*p == '\'')
			fputs("'\\''", out);
		else
			fputc(*p, out);
	}
	fputs("'\n", out);
}
