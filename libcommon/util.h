/*
 * util.h - shared plumbing for every slm tool: error values, program name,
 * checked allocation, sysexits codes, atomic output files, sha256.
 */
#ifndef SLM_UTIL_H
#define SLM_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sysexits.h>

#define SLM_ERR_MAX 1024

/* An error: a sysexits code and one line of text (no program name, no
 * newline). Library calls return -1 and fill one; tools print it. */
typedef struct slm_err {
	int code;
	char msg[SLM_ERR_MAX];
} slm_err;

/* Fill err with a sysexits code and a printf-style message; returns -1. */
int slm_seterr(slm_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefix an existing message ("what: " + old message); returns -1. */
int slm_preerr(slm_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Program name used in diagnostics, set once by slm_cli_init(). */
extern const char *slm_progname;
/* Prints "prog: message" to stderr. */
void slm_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "prog: message" and exits with code. */
void slm_die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/* Prints "prog: err->msg" and exits with err->code. */
void slm_die_err(const slm_err *err) __attribute__((noreturn));

void *slm_xmalloc(size_t n);
void *slm_xcalloc(size_t n, size_t size);
void *slm_xrealloc(void *p, size_t n);
char *slm_xstrdup(const char *s);

/* Overflow-checked arithmetic: 0 on success, -1 on overflow. */
static inline int slm_mul_ok(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_mul_overflow(a, b, r) ? -1 : 0;
}
static inline int slm_add_ok(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_add_overflow(a, b, r) ? -1 : 0;
}

/* sha256 of a buffer, as 64 lowercase hex characters plus NUL. */
void slm_sha256_hex(const void *data, size_t n, char out[65]);
typedef struct slm_sha256 slm_sha256;
slm_sha256 *slm_sha256_new(void);
void slm_sha256_update(slm_sha256 *h, const void *data, size_t n);
void slm_sha256_final(slm_sha256 *h, char out[65]); /* frees h */

/*
 * Atomic output: slm_afile_open() creates a temporary file beside path
 * (or, for "-" / NULL, a temporary file under $TMPDIR that is copied to
 * stdout on commit). Nothing appears at path until slm_afile_commit().
 * slm_afile_abort() removes the temporary file. Temporary files are also
 * removed if the process dies of SIGINT/SIGTERM/SIGHUP.
 */
typedef struct slm_afile {
	FILE *fp;        /* write here (seekable) */
	char *path;      /* final path, NULL for stdout */
	char *tmp;       /* temporary path */
	int to_stdout;
} slm_afile;
int slm_afile_open(slm_afile *af, const char *path, slm_err *err);
int slm_afile_commit(slm_afile *af, slm_err *err);
void slm_afile_abort(slm_afile *af);

/* Read a whole file ("-" for stdin) into memory. */
int slm_read_file(const char *path, char **data, size_t *size, slm_err *err);

/* Map a regular file read-only (munmap(data, size) releases it); an empty
 * file gives data NULL and size 0. -1 with EX_NOINPUT if it cannot be
 * opened or is not a regular file, EX_IOERR if fstat fails, EX_DATAERR if
 * it is too large to map, EX_OSERR if mmap fails. */
int slm_map_file(const char *path, const uint8_t **data, size_t *size, slm_err *err);

/* The value of the hexadecimal digit c, -1 if c is not one. */
int slm_hexval(int c);

/* Keep a message that quotes names from a file on one line: control
 * characters (below 0x20, and DEL) in s become '?'. */
void slm_one_line(char *s);

/* Human-readable sizes: "82.3 MiB". */
const char *slm_fmt_size(uint64_t bytes, char buf[32]);

#endif
