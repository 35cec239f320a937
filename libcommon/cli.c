/*
 * cli.c - common command-line behaviour shared by the slm tools.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

void slm_cli_init(int argc, char **argv)
{
	(void)argc;
	if (argv && argv[0]) {
		const char *s = strrchr(argv[0], '/');
		slm_progname = s ? s + 1 : argv[0];
		/* libtool-style wrappers are not used; strip nothing else */
	}
	signal(SIGPIPE, SIG_DFL);
}

void slm_cli_version(void)
{
	printf("%s (%s) %s\n", slm_progname, PACKAGE_NAME, PACKAGE_VERSION);
	exit(0);
}

void slm_cli_refuse_tty(FILE *fp, int force, const char *what)
{
	if (!force && isatty(fileno(fp)))
		slm_die(EX_USAGE, "refusing to write %s to a terminal; "
			"redirect it or use -f to force", what);
}

void slm_cli_usage_error(const char *usage)
{
	fprintf(stderr, "%s", usage);
	exit(EX_USAGE);
}

long slm_cli_long(const char *opt, const char *arg, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max)
		slm_die(EX_USAGE, "%s: '%s' is not an integer from %ld to %ld", opt,
			arg, min, max);
	return v;
}
