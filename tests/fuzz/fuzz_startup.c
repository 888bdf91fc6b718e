/* fuzz_startup.c — libFuzzer target: the startup parser, the rebuild, the route split and the
 * branch chosen by options or by an SNI name. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rift/branch_name.h"
#include "rift/branch_select.h"
#include "rift/startup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rift_startup s;
	uint8_t out[RIFT_STARTUP_MAX + 64];
	char branch[64], db[64];
	size_t i;

	rift_startup_parse(data, size, &s);
	if (s.kind == RIFT_STARTUP_MESSAGE) {
		const char *dbname = rift_startup_get(&s, "database");
		const char *options = rift_startup_get(&s, "options"), *why;
		char rest[RIFT_STARTUP_MAX];
		size_t n;
		if (options != NULL) {
			enum rift_opt_branch o = rift_options_take_branch(
			    options, branch, sizeof(branch), rest, sizeof(rest), &why);
			if (o == RIFT_OPT_BRANCH &&
			    (rift_branch_name_check(branch) != RIFT_NAME_OK ||
			     strlen(rest) > strlen(options)))
				__builtin_trap(); /* an invalid branch, or options that grew */
			if (o == RIFT_OPT_BRANCH) {
				n = rift_startup_build_with(&s, "d", rest, out, sizeof(out));
				struct rift_startup t;
				if (n > 0 && (rift_startup_parse(out, n, &t),
					      t.kind != RIFT_STARTUP_MESSAGE))
					__builtin_trap(); /* what we build must parse back */
			}
		}
		if (dbname != NULL) {
			rift_sni_branch(dbname, branch, sizeof(branch));
			if (branch[0] != '\0' && rift_branch_name_check(branch) != RIFT_NAME_OK)
				__builtin_trap();
		}
		for (i = 0; i < s.nparams; i++) {
			size_t j;
			if (strlen(s.params[i].name) + strlen(s.params[i].value) > s.length)
				__builtin_trap(); /* a view ran past the packet */
			for (j = 0; j < i; j++)
				if (strcmp(s.params[i].name, s.params[j].name) == 0)
					__builtin_trap(); /* a repeated name got through */
		}
		if (dbname != NULL &&
		    rift_route_split(dbname, branch, sizeof(branch), db, sizeof(db)) == 0)
			n = rift_startup_build(&s, db[0] ? db : branch, out, sizeof(out));
		else
			n = rift_startup_build(&s, "postgres", out, sizeof(out));
		if (n > 0) {
			struct rift_startup t;
			rift_startup_parse(out, n, &t);
			const char *u = rift_startup_get(&s, "user"),
				   *tu = rift_startup_get(&t, "user");
			if (t.kind != RIFT_STARTUP_MESSAGE || t.nparams < s.nparams)
				__builtin_trap(); /* what we build must parse back */
			if ((u == NULL) != (tu == NULL) || (u != NULL && strcmp(u, tu) != 0))
				__builtin_trap(); /* the server must see the user the router read */
		}
	}
	if (s.kind == RIFT_STARTUP_CANCEL && s.cancel_key + s.cancel_key_len > data + size)
		__builtin_trap();
	return 0;
}
