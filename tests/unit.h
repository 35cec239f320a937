/*
 * unit.h - a tiny TAP-style assertion kit for the C unit tests.
 *
 *   ok(cond, "fmt", ...)     one test: "ok N - desc" or "not ok N - desc"
 *                            followed by "#   at FILE:LINE" on failure
 *   is_int(got, want, desc)  integers equal (both shown on failure)
 *   is_str(got, want, desc)  strings equal (NULL allowed; shown on failure)
 *   diag("fmt", ...)         a "# ..." comment line (stdout)
 *   return done_testing();   prints the plan "1..N"; 1 if any test failed
 *
 * Each macro evaluates to the test's result (1 passed, 0 failed), so
 * "if (!ok(...)) ..." can skip dependent checks. Output goes to stdout
 * (flushed after every line) so the automake log shows it in order.
 * Header only: every function is static.
 */
#ifndef SLM_TESTS_UNIT_H
#define SLM_TESTS_UNIT_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int unit_run_, unit_failed_;

static void unit_vreport_(int pass, const char *file, int line,
			  const char *fmt, va_list ap)
{
	unit_run_++;
	if (!pass)
		unit_failed_++;
	printf("%s %d - ", pass ? "ok" : "not ok", unit_run_);
	vprintf(fmt, ap);
	putchar('\n');
	if (!pass)
		printf("#   Failed test %d at %s:%d\n", unit_run_, file, line);
	fflush(stdout);
}

__attribute__((format(printf, 4, 5), unused))
static int unit_ok_(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	unit_vreport_(pass, file, line, fmt, ap);
	va_end(ap);
	return pass;
}

__attribute__((unused))
static int unit_is_int_(intmax_t got, intmax_t want, const char *file,
			int line, const char *desc)
{
	int pass = got == want;
	unit_ok_(pass, file, line, "%s", desc);
	if (!pass) {
		printf("#          got: %jd\n#     expected: %jd\n", got, want);
		fflush(stdout);
	}
	return pass;
}

__attribute__((unused))
static int unit_is_str_(const char *got, const char *want, const char *file,
			int line, const char *desc)
{
	int pass = (got == NULL && want == NULL) ||
		   (got && want && strcmp(got, want) == 0);
	unit_ok_(pass, file, line, "%s", desc);
	if (!pass) {
		printf("#          got: %s%s%s\n#     expected: %s%s%s\n",
		       got ? "'" : "", got ? got : "NULL", got ? "'" : "",
		       want ? "'" : "", want ? want : "NULL", want ? "'" : "");
		fflush(stdout);
	}
	return pass;
}

__attribute__((format(printf, 1, 2), unused))
static void diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("# ", stdout);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	fflush(stdout);
}

/* Print the plan; the exit status for main: 0 if all passed (and at least
 * one test ran), else 1. */
__attribute__((unused))
static int done_testing(void)
{
	printf("1..%d\n", unit_run_);
	if (unit_failed_)
		printf("# Looks like you failed %d test%s of %d.\n", unit_failed_,
		       unit_failed_ == 1 ? "" : "s", unit_run_);
	fflush(stdout);
	return unit_failed_ || unit_run_ == 0 ? 1 : 0;
}

#define ok(cond, ...) unit_ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, desc) \
	unit_is_int_((intmax_t)(got), (intmax_t)(want), __FILE__, __LINE__, (desc))
#define is_str(got, want, desc) \
	unit_is_str_((got), (want), __FILE__, __LINE__, (desc))

#endif
