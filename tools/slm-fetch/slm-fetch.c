/*
 * slm-fetch - get a model's files from the Hugging Face Hub (through
 * huggingface_hub's cache), a URL or a directory, and write them to a
 * directory or as a tar stream for slm-convert.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fetch.h"
#include "util.h"

static const char usage_text[] =
	"usage: slm-fetch [-fqv] [-o DIR | -o -] [--include GLOB]... [--exclude GLOB]...\n"
	"                 ORG/NAME[@REVISION] | URL | DIR\n"
	"       slm-fetch -h | --help | --version\n"
	"options: -o/--output DIR|-, --include GLOB, --exclude GLOB, -f/--force,\n"
	"         -q/--quiet, -v/--verbose\n";

static struct {
	const char *out;
	int force, quiet, verbose;
	fetch_sel sel;
} opt;

/* ---- environment, as huggingface_hub reads it ---- */

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static int env_true(const char *name)
{
	const char *v = env(name);
	return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
		     !strcasecmp(v, "on"));
}

static char *hf_home(void)
{
	const char *h = env("HF_HOME");
	char *s;
	if (h)
		return slm_xstrdup(h);
	const char *xdg = env("XDG_CACHE_HOME"), *home = env("HOME");
	if (xdg && asprintf(&s, "%s/huggingface", xdg) >= 0)
		return s;
	if (!home)
		slm_die(EX_CONFIG, "HOME is not set: set HF_HOME or HF_HUB_CACHE");
	if (asprintf(&s, "%s/.cache/huggingface", home) < 0)
		slm_die(EX_OSERR, "out of memory");
	return s;
}

static char *hub_cache_dir(void)
{
	const char *c = env("HF_HUB_CACHE");
	if (!c)
		c = env("HUGGINGFACE_HUB_CACHE");
	if (c)
		return slm_xstrdup(c);
	char *home = hf_home(), *s;
	if (asprintf(&s, "%s/hub", home) < 0)
		slm_die(EX_OSERR, "out of memory");
	free(home);
	return s;
}

/* HF_TOKEN, else the file huggingface-cli login writes. */
static char *hf_token(void)
{
	const char *t = env("HF_TOKEN");
	if (!t)
		t = env("HUGGING_FACE_HUB_TOKEN");
	char *tok = NULL;
	if (t) {
		tok = slm_xstrdup(t);
	} else {
		char *path = NULL;
		if (env("HF_TOKEN_PATH")) {
			path = slm_xstrdup(env("HF_TOKEN_PATH"));
		} else {
			char *home = hf_home();
			if (asprintf(&path, "%s/token", home) < 0)
				slm_die(EX_OSERR, "out of memory");
			free(home);
		}
		size_t n;
		slm_err e;
		if (slm_read_file(path, &tok, &n, &e) < 0)
			tok = NULL;
		free(path);
	}
	if (tok) {
		size_t n = strlen(tok);
		while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
			tok[--n] = 0;
		/* a token is one header value: nothing that could break the line */
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)tok[i] < ' ')
				slm_die(EX_CONFIG, "HF_TOKEN holds a control character");
		if (!n) {
			free(tok);
			tok = NULL;
		}
	}
	return tok;
}

/* SLM_FETCH_RETRY_BASE_MS and friends: integers from the environment. */
static long env_long(const char *name, long def, long min, long max)
{
	const char *v = env(name);
	if (!v)
		return def;
	char *end;
	errno = 0;
	double d = strtod(v, &end); /* HF_HUB_DOWNLOAD_TIMEOUT may be "10.0" */
	if (errno || end == v || *end || d < (double)min || d > (double)max)
		slm_die(EX_CONFIG, "%s: '%s' is not a number from %ld to %ld", name, v, min, max);
	return (long)d;
}

/* ---- a temporary directory for a URL written to standard output ---- */

static char *tmp_dir, *tmp_file;

static void tmp_cleanup(void)
{
	if (tmp_file)
		unlink(tmp_file);
	if (tmp_dir)
		rmdir(tmp_dir);
}

static void on_signal(int sig)
{
	tmp_cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static char *tmp_path(const char *name)
{
	const char *td = env("TMPDIR");
	if (asprintf(&tmp_dir, "%s/slm-fetch.XXXXXX", td ? td : "/tmp") < 0)
		slm_die(EX_OSERR, "out of memory");
	if (!mkdtemp(tmp_dir))
		slm_die(EX_CANTCREAT, "%s: %s", tmp_dir, strerror(errno));
	if (asprintf(&tmp_file, "%s/%s", tmp_dir, name) < 0)
		slm_die(EX_OSERR, "out of memory");
	atexit(tmp_cleanup);
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], on_signal);
	return tmp_file;
}

/* ---- output ---- */

static int is_gguf(const char *name)
{
	size_t n = strlen(name);
	return n > 5 && !strcasecmp(name + n - 5, ".gguf");
}

static void copy_fd(int in, int out, const char *from, const char *to)
{
	static char buf[1 << 20];
	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			return;
		if (n > 0)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EBADF &&
		    errno != EOPNOTSUPP)
			slm_die(EX_IOERR, "%s: %s", to, strerror(errno));
		break; /* not between these files: copy by hand */
	}
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			slm_die(EX_IOERR, "%s: read: %s", from, strerror(errno));
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno != EINTR)
				slm_die(EX_IOERR, "%s: write: %s", to, strerror(errno));
			if (w > 0)
				off += w;
		}
	}
}

static int open_input(const fetch_file *f)
{
	int fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		slm_die(EX_IOERR, "%s: %s", f->path, strerror(errno));
	return fd;
}

/* Copy the chosen files into dir, each replaced atomically. */
static void write_dir(const fetch_list *l, const char *dir)
{
	slm_err err;
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		slm_die(EX_CANTCREAT, "%s: %s", dir, strerror(errno));
	for (size_t i = 0; i < l->n; i++) {
		const fetch_file *f = &l->v[i];
		if (!f->want)
			continue;
		char *dest;
		if (asprintf(&dest, "%s/%s", dir, f->name) < 0)
			slm_die(EX_OSERR, "out of memory");
		if (strcmp(dest, f->path)) {
			slm_afile af;
			if (fetch_mkparents(dest, &err) < 0 || slm_afile_open(&af, dest, &err) < 0)
				slm_die_err(&err);
			int in = open_input(f);
			fflush(af.fp);
			copy_fd(in, fileno(af.fp), f->path, dest);
			close(in);
			if (slm_afile_commit(&af, &err) < 0)
				slm_die_err(&err);
		}
		if (opt.verbose)
			slm_warn("%s", dest);
		free(dest);
	}
}

/* The chosen files as a tar stream on standard output. */
static void write_tar(const fetch_list *l)
{
	struct archive *a = archive_write_new();
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open_fd(a, STDOUT_FILENO) != ARCHIVE_OK)
		slm_die(EX_IOERR, "standard output: %s", archive_error_string(a));
	static char buf[1 << 20];
	for (size_t i = 0; i < l->n; i++) {
		const fetch_file *f = &l->v[i];
		if (!f->want)
			continue;
		int in = open_input(f);
		struct stat st;
		if (fstat(in, &st) != 0)
			slm_die(EX_IOERR, "%s: %s", f->path, strerror(errno));
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, f->name);
		archive_entry_set_size(e, st.st_size);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_mtime(e, st.st_mtime, 0);
		if (archive_write_header(a, e) != ARCHIVE_OK)
			slm_die(EX_IOERR, "standard output: %s: %s", f->name,
				archive_error_string(a));
		archive_entry_free(e);
		ssize_t n;
		off_t left = st.st_size;
		while (left > 0 && (n = read(in, buf, sizeof buf)) != 0) {
			if (n < 0) {
				if (errno == EINTR)
					continue;
				slm_die(EX_IOERR, "%s: read: %s", f->path, strerror(errno));
			}
			if (n > left)
				n = (ssize_t)left; /* the file grew: the header has its size */
			if (archive_write_data(a, buf, (size_t)n) != n)
				slm_die(EX_IOERR, "standard output: %s", archive_error_string(a));
			left -= n;
		}
		close(in);
		if (left > 0)
			slm_die(EX_IOERR, "%s: shrank while being read", f->path);
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		slm_die(EX_IOERR, "standard output: %s", archive_error_string(a));
	archive_write_free(a);
}

static void write_output(fetch_list *l)
{
	fetch_list_sort(l);
	const fetch_file *only = NULL;
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].want) {
			only = &l->v[i];
			n++;
		}
	if (strcmp(opt.out, "-")) {
		write_dir(l, opt.out);
	} else if (n == 1 && is_gguf(only->name)) {
		/* slm-convert reads a GGUF file as it is, not in a tar */
		int in = open_input(only);
		copy_fd(in, STDOUT_FILENO, only->path, "standard output");
		close(in);
	} else {
		write_tar(l);
	}
}

/* ---- sources ---- */

static char *get_local(void *arg, fetch_file *f, slm_err *err)
{
	(void)arg;
	(void)err;
	return slm_xstrdup(f->path);
}

static char *get_hub(void *arg, fetch_file *f, slm_err *err)
{
	return hub_get(arg, f, err) < 0 ? NULL : slm_xstrdup(f->path);
}

static void from_hub(hub *hb)
{
	slm_err err;
	fetch_list l = { 0 };
	char what[512];
	if (hub_list(hb, &l, &err) < 0)
		slm_die_err(&err);
	snprintf(what, sizeof what, "%s@%s", hb->repo, hb->rev);
	if (hub_write_ref(hb, &err) < 0)
		slm_die_err(&err);
	if (fetch_select(&l, &opt.sel, get_hub, hb, what, &err) < 0)
		slm_die_err(&err);
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].want && hub_get(hb, &l.v[i], &err) < 0)
			slm_die_err(&err);
	if (opt.verbose)
		slm_warn("%s: snapshot %s/snapshots/%s", what, hb->dir, hb->commit);
	write_output(&l);
	fetch_list_free(&l);
}

static void from_local(const char *path, const char *shown)
{
	slm_err err;
	struct stat st;
	if (stat(path, &st) != 0)
		slm_die(errno == ENOENT ? EX_NOINPUT : EX_IOERR, "%s: %s", shown, strerror(errno));
	fetch_list l = { 0 };
	if (S_ISDIR(st.st_mode)) {
		if (fetch_walk(path, &l, 1, &err) < 0)
			slm_die_err(&err);
		if (fetch_select(&l, &opt.sel, get_local, NULL, shown, &err) < 0)
			slm_die_err(&err);
	} else {
		const char *base = strrchr(path, '/');
		fetch_file *f = fetch_list_add(&l, base ? base + 1 : path, (int64_t)st.st_size);
		f->path = slm_xstrdup(path);
		f->want = 1;
	}
	write_output(&l);
	fetch_list_free(&l);
}

/* The last component of a URL's path, decoded: the file's name. */
static char *url_file_name(const char *url)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	size_t n = strcspn(p, "?#");
	const char *end = p + n, *slash = NULL;
	for (const char *c = p; c < end; c++)
		if (*c == '/')
			slash = c;
	const char *base = slash ? slash + 1 : end;
	char *name = http_unquote(base, (size_t)(end - base));
	if (!fetch_safe_name(name) || strchr(name, '/')) {
		free(name);
		name = slm_xstrdup("download");
	}
	return name;
}

static void from_url(http *h, const char *url)
{
	slm_err err;
	fetch_list l = { 0 };
	char *name = url_file_name(url);
	fetch_file *f = fetch_list_add(&l, name, -1);
	f->want = 1;
	char *dest, *part;
	if (strcmp(opt.out, "-")) {
		if (mkdir(opt.out, 0777) != 0 && errno != EEXIST)
			slm_die(EX_CANTCREAT, "%s: %s", opt.out, strerror(errno));
		if (asprintf(&dest, "%s/%s", opt.out, name) < 0 ||
		    asprintf(&part, "%s.incomplete", dest) < 0)
			slm_die(EX_OSERR, "out of memory");
	} else {
		dest = slm_xstrdup(tmp_path(name));
		part = slm_xstrdup(dest);
	}
	http_resp r = { 0 };
	if (http_download(h, url, part, name, -1, &r, &err) < 0)
		slm_die(err.code, "%s: %s", name, err.msg);
	if (r.status != 200 && r.status != 206) {
		struct stat st;
		if (stat(part, &st) == 0 && st.st_size == 0)
			unlink(part);
		http_status_err(&r, name, 0, &err);
		slm_die_err(&err);
	}
	if (strcmp(part, dest) && rename(part, dest) != 0)
		slm_die(EX_CANTCREAT, "%s: %s", dest, strerror(errno));
	http_resp_free(&r);
	f->path = dest;
	write_output(&l);
	fetch_list_free(&l);
	free(part);
	free(name);
}

/* file://[localhost]/path, decoded. */
static char *file_url_path(const char *url)
{
	const char *p = url + 7;
	if (!strncasecmp(p, "localhost/", 10))
		p += 9;
	if (*p != '/')
		slm_die(EX_USAGE, "%s: a file URL needs an absolute path (file:///...)", url);
	return http_unquote(p, strlen(p));
}

enum { OPT_VERSION = 256, OPT_INCLUDE, OPT_EXCLUDE };

int main(int argc, char **argv)
{
	slm_cli_init(argc, argv);
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "output", required_argument, NULL, 'o' },
		{ "include", required_argument, NULL, OPT_INCLUDE },
		{ "exclude", required_argument, NULL, OPT_EXCLUDE },
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	opt.sel.include = slm_xcalloc((size_t)argc + 1, sizeof *opt.sel.include);
	opt.sel.exclude = slm_xcalloc((size_t)argc + 1, sizeof *opt.sel.exclude);
	opt.sel.exact = slm_xcalloc(1, sizeof *opt.sel.exact);
	int c;
	while ((c = getopt_long(argc, argv, "ho:fqv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case OPT_VERSION:
			slm_cli_version();
		case 'o': opt.out = optarg; break;
		case OPT_INCLUDE: opt.sel.include[opt.sel.ninclude++] = optarg; break;
		case OPT_EXCLUDE: opt.sel.exclude[opt.sel.nexclude++] = optarg; break;
		case 'f': opt.force = 1; break;
		case 'q': opt.quiet = 1; break;
		case 'v': opt.verbose = 1; break;
		default: slm_cli_usage_error(usage_text);
		}
	}
	if (argc - optind != 1)
		slm_cli_usage_error(usage_text);
	const char *src = argv[optind];
	if (!opt.out) {
		if (isatty(STDOUT_FILENO) && !opt.force)
			slm_die(EX_USAGE, "standard output is a terminal: give -o DIR to write the "
				"files to a directory, or redirect the tar stream");
		opt.out = "-";
	} else if (!strcmp(opt.out, "-")) {
		slm_cli_refuse_tty(stdout, opt.force, "a tar stream");
	}

	char *endpoint = slm_xstrdup(env("HF_ENDPOINT") ? env("HF_ENDPOINT")
							: "https://huggingface.co");
	for (size_t n = strlen(endpoint); n > 0 && endpoint[n - 1] == '/';)
		endpoint[--n] = 0;
	char *cache = hub_cache_dir(), *token = hf_token();
	http_opts ho = {
		.token = token,
		.token_origin = endpoint,
		.retry_base_ms = env_long("SLM_FETCH_RETRY_BASE_MS", 1000, 0, 600000),
		.attempts = 5,
		.timeout = env_long("HF_HUB_DOWNLOAD_TIMEOUT", 10, 1, 86400),
		.verbose = opt.verbose,
		.progress = !opt.quiet && isatty(STDERR_FILENO),
	};
	hub hb = {
		.endpoint = endpoint,
		.cache = cache,
		.have_token = token != NULL,
		.offline = env_true("HF_HUB_OFFLINE"),
		.quiet = opt.quiet,
		.verbose = opt.verbose,
	};
	slm_err err;
	struct stat st;
	if (!strncasecmp(src, "file://", 7)) {
		char *path = file_url_path(src);
		from_local(path, src);
		free(path);
	} else if (!strncasecmp(src, "http://", 7) || !strncasecmp(src, "https://", 8)) {
		char *file = NULL;
		hb.h = http_new(&ho);
		int r = hub_open_url(&hb, src, &file, &err);
		if (r < 0)
			slm_die_err(&err);
		if (r > 0) {
			opt.sel.exact[opt.sel.nexact++] = file;
			from_hub(&hb);
			free(file);
		} else if (hb.offline) {
			slm_die(EX_UNAVAILABLE, "%s: HF_HUB_OFFLINE is set", src);
		} else {
			from_url(hb.h, src);
		}
	} else if (stat(src, &st) == 0) {
		from_local(src, src);
	} else if (hub_is_repo_id(src)) {
		if (hub_open(&hb, src, &err) < 0)
			slm_die_err(&err);
		hb.h = http_new(&ho);
		from_hub(&hb);
	} else {
		slm_die(EX_NOINPUT, "%s: no such file or directory, and not a repository id "
			"(ORG/NAME[@REVISION])", src);
	}
	hub_close(&hb);
	http_free(hb.h);
	if (token) {
		memset(token, 0, strlen(token));
		free(token);
	}
	free(cache);
	free(endpoint);
	free(opt.sel.include);
	free(opt.sel.exclude);
	free(opt.sel.exact);
	return 0;
}
