/* cli.h — what the rift command's files share: exit codes and the command entry points. */
#ifndef RIFT_CLI_H
#define RIFT_CLI_H

#define EXIT_USAGE 2

/* Each command gets argv starting at its own name; returns the process exit status. */
int cmd_init(const char *state, int argc, char **argv);

#endif
