/* log.c — riftd's one logger: a level check, a UTC timestamp and one write(2) per line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rift/log.h"

enum rift_log_level rift_log_threshold = RIFT_LOG_INFO;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void rift_log_init(void)
{
	const char *v = getenv("RIFT_LOG_LEVEL");
	size_t i;

	for (i = 0; v != NULL && i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(v, level_names[i]) == 0 ||
		    (i == RIFT_LOG_WARN && strcasecmp(v, "warning") == 0))
			rift_log_threshold = (enum rift_log_level)i;
}

void rift_log_write(enum rift_log_level level, const char *component, const char *fmt, ...)
{
	char line[2048];
	struct timespec now;
	struct tm tm;
	va_list ap;
	size_t used, i;
	int k, k0;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	k = snprintf(line, sizeof(line),
		     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ riftd %s %s: ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     now.tv_nsec / 1000000L, level_names[level], component);
	used = k > 0 && (size_t)k < sizeof(line) ? (size_t)k : 0;
	k0 = (int)used;
	va_start(ap, fmt);
	k = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
	va_end(ap);
	if (k < 0)
		k = 0;
	used += (size_t)k < sizeof(line) - used ? (size_t)k : sizeof(line) - used - 1;
	/* a message ending in '\n' (as the old fprintf calls did) keeps just one */
	while (used > 0 && line[used - 1] == '\n')
		used--;
	/* one line per message: names and parameters from clients (a startup packet's user, say)
	 * must not forge lines of their own or move the terminal's cursor */
	for (i = (size_t)(k0 > 0 ? k0 : 0); i < used; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[used++] = '\n';
	(void)!write(STDERR_FILENO, line, used);
}
