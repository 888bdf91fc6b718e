/* branch_name.c — checks branch names against [a-z0-9][a-z0-9_-]{0,62}; no allocation, no I/O. */
#include "rift/branch_name.h"

static int is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

enum rift_name_verdict rift_branch_name_check(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0')
		return RIFT_NAME_EMPTY;
	if (!is_lower_alnum(name[0]))
		return RIFT_NAME_BAD_FIRST_CHAR;
	for (i = 1; name[i] != '\0'; i++) {
		if (i >= RIFT_BRANCH_NAME_MAX)
			return RIFT_NAME_TOO_LONG;
		if (!is_lower_alnum(name[i]) && name[i] != '-' && name[i] != '_')
			return RIFT_NAME_BAD_CHAR;
	}
	return RIFT_NAME_OK;
}

const char *rift_branch_name_explain(enum rift_name_verdict verdict)
{
	switch (verdict) {
	case RIFT_NAME_OK:
		return "the name is valid";
	case RIFT_NAME_EMPTY:
		return "a branch name must not be empty";
	case RIFT_NAME_TOO_LONG:
		return "a branch name may have at most 63 characters";
	case RIFT_NAME_BAD_FIRST_CHAR:
		return "a branch name must start with a lowercase letter or a digit";
	case RIFT_NAME_BAD_CHAR:
		return "a branch name may contain only lowercase letters, digits, '-' and '_'";
	}
	return "the name is invalid";
}
