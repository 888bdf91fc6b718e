/* riftd_init.h — `riftd init`, the side of `rift init` that owns the store. */
#ifndef RIFTD_INIT_H
#define RIFTD_INIT_H

/*
 * Runs `riftd init` (argv[0] is "init"): the options of `rift init` plus --state, --json, -q and
 * --args-fd FD (more arguments, NUL-terminated, read from FD: how `rift init` hands over a URL
 * that may hold a password without putting it in any argv). Makes the store, prints progress and
 * errors for a person on stderr; returns the exit status (0, 1 failure, 2 usage).
 */
int rift_init_main(int argc, char **argv);

#endif
