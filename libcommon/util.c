/*
 * util.c - errors, checked allocation, sha256, atomic output files and
 * small helpers shared by every slm tool.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

const char *slm_progname = "slm";

int slm_seterr(slm_err *err, int code, const char *fmt, ...)
{
	if (!err)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	err->code = code;
	return -1;
}

int slm_preerr(slm_err *err, const char *fmt, ...)
{
	if (!err)
		return -1;
	char pre[SLM_ERR_MAX], old[SLM_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	if (snprintf(err->msg, sizeof err->msg, "%s: %s", pre, old) >=
	    (int)sizeof err->msg)
		err->msg[sizeof err->msg - 1] = 0; /* truncated: still one line */
	return -1;
}

void slm_warn(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", slm_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void slm_die(int code, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", slm_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

void slm_die_err(const slm_err *err)
{
	fprintf(stderr, "%s: %s\n", slm_progname, err->msg);
	exit(err->code ? err->code : EX_SOFTWARE);
}

static void oom(size_t n)
{
	slm_die(EX_OSERR, "out of memory allocating %zu bytes", n);
}

void *slm_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *slm_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom(n * size);
	return p;
}

void *slm_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *slm_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = slm_xmalloc(n);
	memcpy(p, s, n);
	return p;
}

/* ---- sha256 ---- */

struct slm_sha256 {
	EVP_MD_CTX *ctx;
};

static void hexify(const unsigned char *d, unsigned n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[2 * n] = 0;
}

slm_sha256 *slm_sha256_new(void)
{
	slm_sha256 *h = slm_xmalloc(sizeof *h);
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
		slm_die(EX_SOFTWARE, "sha256: cannot initialise libcrypto digest");
	return h;
}

void slm_sha256_update(slm_sha256 *h, const void *data, size_t n)
{
	EVP_DigestUpdate(h->ctx, data, n);
}

void slm_sha256_final(slm_sha256 *h, char out[65])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_DigestFinal_ex(h->ctx, d, &n);
	hexify(d, n, out);
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void slm_sha256_hex(const void *data, size_t n, char out[65])
{
	slm_sha256 *h = slm_sha256_new();
	slm_sha256_update(h, data, n);
	slm_sha256_final(h, out);
}

/* ---- atomic output files ---- */

/* Temporary files to remove if a fatal signal arrives. */
#define MAX_TMPS 16
static char *volatile tmp_paths[MAX_TMPS];
static int handlers_installed;

static void on_fatal_signal(int sig)
{
	for (int i = 0; i < MAX_TMPS; i++)
		if (tmp_paths[i])
			unlink(tmp_paths[i]);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void track_tmp(char *path)
{
	if (!handlers_installed) {
		static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
		for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
			struct sigaction sa;
			memset(&sa, 0, sizeof sa);
			sa.sa_handler = on_fatal_signal;
			sigemptyset(&sa.sa_mask);
			struct sigaction old;
			sigaction(sigs[i], NULL, &old);
			if (old.sa_handler != SIG_IGN)
				sigaction(sigs[i], &sa, NULL);
		}
		handlers_installed = 1;
	}
	for (int i = 0; i < MAX_TMPS; i++)
		if (!tmp_paths[i]) {
			tmp_paths[i] = path;
			return;
		}
}

static void untrack_tmp(const char *path)
{
	for (int i = 0; i < MAX_TMPS; i++)
		if (tmp_paths[i] == path)
			tmp_paths[i] = NULL;
}

int slm_afile_open(slm_afile *af, const char *path, slm_err *err)
{
	memset(af, 0, sizeof *af);
	char *tmpl;
	if (!path || !strcmp(path, "-")) {
		const char *td = getenv("TMPDIR");
		if (!td || !*td)
			td = "/tmp";
		size_t n = strlen(td) + 32;
		tmpl = slm_xmalloc(n);
		snprintf(tmpl, n, "%s/slm-out.XXXXXX", td);
		af->to_stdout = 1;
	} else {
		size_t n = strlen(path) + 16;
		tmpl = slm_xmalloc(n);
		const char *slash = strrchr(path, '/');
		if (slash)
			snprintf(tmpl, n, "%.*s.%s.XXXXXX", (int)(slash - path + 1),
				 path, slash + 1);
		else
			snprintf(tmpl, n, ".%s.XXXXXX", path);
		af->path = slm_xstrdup(path);
	}
	int fd = mkstemp(tmpl);
	if (fd < 0) {
		slm_seterr(err, EX_CANTCREAT, "%s: cannot create temporary file: %s",
			   af->path ? af->path : tmpl, strerror(errno));
		free(tmpl);
		free(af->path);
		af->path = NULL;
		return -1;
	}
	af->tmp = tmpl;
	track_tmp(af->tmp);
	if (af->to_stdout) {
		/* Nobody else needs the name: unlink now, copy from the fd. */
		unlink(af->tmp);
	} else {
		/* mkstemp makes 0600; give the file the usual permissions. */
		mode_t um = umask(0);
		umask(um);
		fchmod(fd, 0666 & ~um);
	}
	af->fp = fdopen(fd, "w+");
	if (!af->fp) {
		close(fd);
		slm_afile_abort(af);
		return slm_seterr(err, EX_OSERR, "fdopen: %s", strerror(errno));
	}
	return 0;
}

static int copy_to_stdout(FILE *fp, slm_err *err)
{
	char buf[1 << 16];
	if (fseek(fp, 0, SEEK_SET) != 0)
		return slm_seterr(err, EX_IOERR, "temporary file: %s", strerror(errno));
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, fp)) > 0) {
		if (fwrite(buf, 1, n, stdout) != n)
			return slm_seterr(err, EX_IOERR, "standard output: %s",
					  strerror(errno));
	}
	if (ferror(fp))
		return slm_seterr(err, EX_IOERR, "temporary file: %s", strerror(errno));
	if (fflush(stdout) != 0)
		return slm_seterr(err, EX_IOERR, "standard output: %s", strerror(errno));
	return 0;
}

int slm_afile_commit(slm_afile *af, slm_err *err)
{
	int rc = 0;
	if (fflush(af->fp) != 0 || ferror(af->fp)) {
		slm_seterr(err, EX_IOERR, "%s: write error: %s",
			   af->path ? af->path : "standard output", strerror(errno));
		slm_afile_abort(af);
		return -1;
	}
	if (af->to_stdout) {
		rc = copy_to_stdout(af->fp, err);
		fclose(af->fp);
		af->fp = NULL;
		untrack_tmp(af->tmp);
		free(af->tmp);
		af->tmp = NULL;
		return rc;
	}
	if (fsync(fileno(af->fp)) != 0 && errno != EINVAL) {
		slm_seterr(err, EX_IOERR, "%s: fsync: %s", af->path, strerror(errno));
		slm_afile_abort(af);
		return -1;
	}
	if (fclose(af->fp) != 0) {
		af->fp = NULL;
		slm_seterr(err, EX_IOERR, "%s: close: %s", af->path, strerror(errno));
		slm_afile_abort(af);
		return -1;
	}
	af->fp = NULL;
	if (rename(af->tmp, af->path) != 0) {
		slm_seterr(err, EX_CANTCREAT, "%s: rename: %s", af->path, strerror(errno));
		slm_afile_abort(af);
		return -1;
	}
	untrack_tmp(af->tmp);
	free(af->tmp);
	free(af->path);
	af->tmp = af->path = NULL;
	return 0;
}

void slm_afile_abort(slm_afile *af)
{
	if (af->fp)
		fclose(af->fp);
	af->fp = NULL;
	if (af->tmp) {
		if (!af->to_stdout)
			unlink(af->tmp);
		untrack_tmp(af->tmp);
		free(af->tmp);
	}
	free(af->path);
	af->tmp = af->path = NULL;
}

int slm_read_file(const char *path, char **data, size_t *size, slm_err *err)
{
	int fd = 0;
	const char *name = path;
	if (!path || !strcmp(path, "-"))
		name = "standard input";
	else if ((fd = open(path, O_RDONLY)) < 0)
		return slm_seterr(err, errno == ENOENT ? EX_NOINPUT : EX_IOERR,
				  "%s: %s", path, strerror(errno));
	size_t cap = 1 << 16, n = 0;
	char *buf = slm_xmalloc(cap + 1);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = slm_xrealloc(buf, cap + 1);
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			if (fd)
				close(fd);
			return slm_seterr(err, EX_IOERR, "%s: read: %s", name, strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (fd)
		close(fd);
	buf[n] = 0;
	*data = buf;
	*size = n;
	return 0;
}

int slm_map_file(const char *path, const uint8_t **data, size_t *size, slm_err *err)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return slm_seterr(err, EX_NOINPUT, "%s: %s", path, strerror(errno));
	if (fstat(fd, &sb) < 0) {
		int e = errno;
		close(fd);
		return slm_seterr(err, EX_IOERR, "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return slm_seterr(err, EX_NOINPUT, "%s: not a regular file", path);
	}
	if ((uint64_t)sb.st_size > SIZE_MAX) {
		close(fd);
		return slm_seterr(err, EX_DATAERR, "%s: file too large to map", path);
	}
	void *m = NULL;
	if (sb.st_size > 0) {
		m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			int e = errno;
			close(fd);
			return slm_seterr(err, EX_OSERR, "%s: mmap: %s", path, strerror(e));
		}
	}
	close(fd);
	*data = m;
	*size = (size_t)sb.st_size;
	return 0;
}

int slm_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void slm_one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

const char *slm_fmt_size(uint64_t bytes, char buf[32])
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, 32, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, 32, "%.1f %s", v, units[u]);
	return buf;
}
