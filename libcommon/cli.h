/*
 * cli.h - what every slm tool does the same way: program name, --version,
 * SIGPIPE, refusing binary output on a terminal, and finding the model.
 */
#ifndef SLM_CLI_H
#define SLM_CLI_H

#include <stdio.h>

#include "util.h"

/* Set the program name from argv[0] and restore default SIGPIPE handling,
 * so a closed pipe ends the tool quietly. */
void slm_cli_init(int argc, char **argv);

/* Print "NAME (slm) VERSION" to stdout and exit 0. */
void slm_cli_version(void) __attribute__((noreturn));

/* Die with EX_USAGE if fp is a terminal and force is 0: binary data would
 * garble it. what: e.g. "a token stream (use --json for text)". */
void slm_cli_refuse_tty(FILE *fp, int force, const char *what);

/* Print "usage: ..." style message for a bad option and exit EX_USAGE. */
void slm_cli_usage_error(const char *usage) __attribute__((noreturn));

/* Parse a thread count / positive integer option, dying with a clear
 * message (naming the option) when it is not one. */
long slm_cli_long(const char *opt, const char *arg, long min, long max);

#endif
