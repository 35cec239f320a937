/*
 * streamcat.c - test helper: read a token stream (slm-stream(5)) with the
 * library's reader and write it again with its writer, msgpack by default
 * or JSON lines with --json. Each record is written as soon as it is read.
 * On bad input it prints the one-line error "streamcat: MESSAGE" and exits
 * with the error's code (EX_DATAERR for bad data).
 *
 * usage: streamcat [--json] [FILE]     (no FILE or "-": standard input)
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stream.h"
#include "util.h"

int main(int argc, char **argv)
{
	slm_cli_init(argc, argv);
	int json = 0;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "-") || argv[i][0] != '-') {
			if (path)
				slm_die(EX_USAGE, "usage: streamcat [--json] [FILE]");
			path = argv[i];
		} else
			slm_die(EX_USAGE, "usage: streamcat [--json] [FILE]");
	}
	slm_err err;
	slm_sreader *r = sreader_open(path, &err);
	if (!r)
		slm_die_err(&err);
	slm_swriter *w = swriter_new(stdout, json);
	json_t *rec;
	int rc;
	while ((rc = sreader_next(r, &rec, &err)) == 1) {
		int wr = swriter_put(w, rec, &err);
		json_decref(rec);
		if (wr < 0)
			break;
	}
	swriter_free(w);
	sreader_free(r);
	if (rc != 0)
		slm_die_err(&err);
	if (fflush(stdout) != 0)
		slm_die(EX_IOERR, "standard output: write error");
	return 0;
}
