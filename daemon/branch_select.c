/* branch_select.c — the branch named in startup options (-c rift.branch=X) or by the SNI host
 * name's first label, so the database name a client uses stays its real name; no I/O. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "rift/branch_name.h"
#include "rift/branch_select.h"

#define SETTING     "rift.branch"
#define SETTING_LEN (sizeof(SETTING) - 1)

/* One token of options as Postgres's pg_split_opts cuts it: raw bytes [start, end), and the
 * decoded value (backslash escapes the next byte; a trailing backslash stays). */
struct token {
	const char *start, *end;
	char text[256];
	bool cut; /* decoded value longer than text: it cannot be ours, but may mention it */
};

static const char *next_token(const char *p, struct token *t)
{
	size_t n = 0;

	while (*p != '\0' && isspace((unsigned char)*p))
		p++;
	if (*p == '\0')
		return NULL;
	t->start = p;
	t->cut = false;
	while (*p != '\0' && !isspace((unsigned char)*p)) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		if (n + 1 < sizeof(t->text))
			t->text[n++] = *p;
		else
			t->cut = true;
		p++;
	}
	t->text[n] = '\0';
	t->end = p;
	return p;
}

/* "rift.branch=X" (name case-insensitive): X, or NULL when setting is about something else. */
static const char *our_value(const char *setting)
{
	if (strncasecmp(setting, SETTING, SETTING_LEN) != 0 || setting[SETTING_LEN] != '=')
		return NULL;
	return setting + SETTING_LEN + 1;
}

static bool mentions_us(const struct token *t)
{
	size_t n = strlen(t->text), i;

	if (t->cut)
		return true; /* too long to read whole: refuse rather than pass on unread */
	for (i = 0; i + SETTING_LEN <= n; i++)
		if (strncasecmp(t->text + i, SETTING, SETTING_LEN) == 0)
			return true;
	return false;
}

static int append_raw(char *rest, size_t rlen, size_t *at, const struct token *t)
{
	size_t n = (size_t)(t->end - t->start), sep = *at > 0 ? 1 : 0;

	if (*at + sep + n + 1 > rlen)
		return -1;
	if (sep)
		rest[(*at)++] = ' ';
	memcpy(rest + *at, t->start, n);
	*at += n;
	rest[*at] = '\0';
	return 0;
}

enum rift_opt_branch rift_options_take_branch(const char *options, char *branch, size_t blen,
					      char *rest, size_t rlen, const char **why)
{
	struct token t, v;
	const char *p = options, *value;
	size_t at = 0;
	bool found = false;

	*why = NULL;
	if (blen == 0 || rlen == 0)
		return RIFT_OPT_INVALID;
	branch[0] = '\0';
	rest[0] = '\0';
	while ((p = next_token(p, &t)) != NULL) {
		value = NULL;
		if (strcmp(t.text, "-c") == 0) {
			const char *q = next_token(p, &v);
			if (q != NULL && !v.cut && (value = our_value(v.text)) != NULL) {
				p = q;
			} else if (q != NULL && mentions_us(&v)) {
				*why = "rift.branch in options must read -c rift.branch=<branch>";
				return RIFT_OPT_INVALID;
			}
		} else if (!t.cut && strncmp(t.text, "-c", 2) == 0) {
			value = our_value(t.text + 2);
		} else if (!t.cut && strncmp(t.text, "--", 2) == 0) {
			value = our_value(t.text + 2);
		}
		if (value == NULL) {
			/* another option: passed on as it came, unless it tries to name us */
			if (strcmp(t.text, "-c") != 0 && mentions_us(&t)) {
				*why = "rift.branch in options must read -c rift.branch=<branch>";
				return RIFT_OPT_INVALID;
			}
			if (append_raw(rest, rlen, &at, &t) != 0) {
				*why = "the startup options are too long";
				return RIFT_OPT_INVALID;
			}
			continue;
		}
		if (found) {
			*why = "rift.branch is given twice in options";
			return RIFT_OPT_INVALID;
		}
		found = true;
		if (strlen(value) >= blen || rift_branch_name_check(value) != RIFT_NAME_OK) {
			*why = "rift.branch in options is not a valid branch name";
			return RIFT_OPT_INVALID;
		}
		memcpy(branch, value, strlen(value) + 1);
	}
	return found ? RIFT_OPT_BRANCH : RIFT_OPT_NONE;
}

void rift_sni_branch(const char *sni, char *branch, size_t blen)
{
	unsigned char addr[16];
	const char *dot;
	size_t n, i;

	if (blen == 0)
		return;
	branch[0] = '\0';
	if (sni == NULL || inet_pton(AF_INET, sni, addr) == 1 ||
	    inet_pton(AF_INET6, sni, addr) == 1)
		return;
	dot = strchr(sni, '.');
	if (dot == NULL || dot[1] == '\0')
		return; /* one label: a plain host name, not a branch */
	n = (size_t)(dot - sni);
	if (n == 0 || n >= blen || (n == 9 && strncasecmp(sni, "localhost", 9) == 0))
		return;
	for (i = 0; i < n; i++)
		branch[i] = (char)tolower((unsigned char)sni[i]);
	branch[n] = '\0';
	if (rift_branch_name_check(branch) != RIFT_NAME_OK)
		branch[0] = '\0';
}
