/*
 * slm-convert - turn GGUF files, Hugging Face model directories (or tar
 * streams of one) and llama2.c checkpoints into bundles, and bundles back
 * into GGUF.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "cli.h"
#include "conv_hf.h"
#include "convert.h"
#include "store.h"
#include "util.h"

static const char usage_text[] =
	"usage: slm-convert [INPUT] [-o OUT] [--to bundle|gguf] [--vocab-only] [--gzip]\n"
	"                   [--layout tile16|plain] [--name NAME] [--tokenizer FILE]\n"
	"                   [-q] [-v] [-f]\n"
	"       slm-convert -h | --version\n";

static struct {
	const char *out, *name, *tokenizer;
	int to_gguf, vocab_only, gzip, force, quiet, verbose;
	int plain; /* --layout plain */
	int layout_set;
} opt;

enum kind { K_GGUF, K_BUNDLE, K_HF_DIR, K_HF_TAR, K_LLAMA2C };

/* Standard input, spooled to a temporary file (its name stays known for
 * messages after the file is removed). */
static char *spool_path;
static int spool_exists;

/* Remove the spooled copy: at exit, or as soon as the input is open. */
static void cleanup(void)
{
	if (spool_exists)
		unlink(spool_path);
	spool_exists = 0;
}

/* Standard input into a temporary file: its kind is told from its first
 * bytes, and a GGUF file or bundle is mapped. */
static const char *spool_stdin(void)
{
	if (isatty(STDIN_FILENO))
		slm_die(EX_USAGE, "no input: give a file or directory, or pipe one in");
	const char *td = getenv("TMPDIR");
	if (!td || !*td)
		td = "/tmp";
	spool_path = slm_xmalloc(strlen(td) + 32);
	sprintf(spool_path, "%s/slm-convert.XXXXXX", td);
	int fd = mkstemp(spool_path);
	if (fd < 0)
		slm_die(EX_CANTCREAT, "%s: %s", spool_path, strerror(errno));
	spool_exists = 1;
	static char buf[1 << 16];
	for (;;) {
		ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			slm_die(EX_IOERR, "standard input: %s", strerror(errno));
		if (r == 0)
			break;
		for (ssize_t o = 0; o < r;) {
			ssize_t w = write(fd, buf + o, (size_t)(r - o));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				slm_die(EX_IOERR, "%s: %s", spool_path, strerror(errno));
			o += w;
		}
	}
	close(fd);
	return spool_path;
}

/* Error messages name the file the user gave, not our temporary copy. */
static void die_err(slm_err *err, const char *tmp, const char *shown)
{
	size_t n = tmp ? strlen(tmp) : 0;
	if (n && !strncmp(err->msg, tmp, n)) {
		char msg[SLM_ERR_MAX];
		snprintf(msg, sizeof msg, "%s%s", shown, err->msg + n);
		memcpy(err->msg, msg, sizeof msg);
	}
	slm_die_err(err);
}

/* The first member of a tar (or gzip'd tar), or NULL if path is not one. */
static char *first_tar_member(const char *path)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	struct archive_entry *e;
	char *name = NULL;
	if (archive_read_open_filename(a, path, 1 << 16) == ARCHIVE_OK &&
	    archive_read_next_header(a, &e) == ARCHIVE_OK)
		name = slm_xstrdup(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
	archive_read_free(a);
	return name;
}

static enum kind classify(const char *path, const char *shown)
{
	struct stat st;
	if (stat(path, &st) != 0)
		slm_die(errno == ENOENT ? EX_NOINPUT : EX_IOERR, "%s: %s", shown,
			strerror(errno));
	if (S_ISDIR(st.st_mode))
		return K_HF_DIR;
	if (opt.tokenizer)
		return K_LLAMA2C;
	uint8_t head[512] = { 0 };
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		slm_die(EX_NOINPUT, "%s: %s", shown, strerror(errno));
	ssize_t n = read(fd, head, sizeof head);
	close(fd);
	if (n >= 4 && !memcmp(head, "GGUF", 4))
		return K_GGUF;
	int tar = n == 512 && !memcmp(head + 257, "ustar", 5);
	int gz = n >= 2 && head[0] == 0x1f && head[1] == 0x8b;
	char *first = tar || gz ? first_tar_member(path) : NULL;
	if (first) {
		enum kind k = strcmp(first, SLM_MANIFEST_MEMBER) ? K_HF_TAR : K_BUNDLE;
		free(first);
		return k;
	}
	size_t l = strlen(shown);
	if (l > 4 && !strcmp(shown + l - 4, ".bin"))
		slm_die(EX_USAGE, "%s: a llama2.c checkpoint needs --tokenizer tokenizer.bin",
			shown);
	slm_die(EX_DATAERR, "%s: not a GGUF file, bundle, model directory or tar "
		"stream of one", shown);
}

/* ---- progress on stderr ---- */

typedef struct progress {
	const cv_model *m;
	struct timespec t0, last;
	uint64_t bytes, total;
	int shown;
} progress;

static double since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	progress *p = arg;
	struct timespec now;
	p->bytes += p->m->t[done - 1].size;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double el = since(&p->t0, &now);
	if (el < 1.0 || (done < total && p->shown && since(&p->last, &now) < 0.1))
		return;
	p->last = now;
	p->shown = 1;
	fprintf(stderr, "\r%s: %llu/%llu tensors, %.1f/%.1f MiB, %.1f MiB/s ", slm_progname,
		(unsigned long long)done, (unsigned long long)total, p->bytes / 1048576.0,
		p->total / 1048576.0, p->bytes / 1048576.0 / el);
}

/* ---- the two directions ---- */

static int to_gguf(const char *path, const char *shown, const char *out)
{
	slm_bundle *b;
	slm_err err;
	if (bundle_open(&b, path, &err) < 0)
		die_err(&err, spool_path, shown);
	cleanup();
	if (cv_bundle_to_gguf(b, out, &err) < 0)
		die_err(&err, spool_path, shown);
	if (opt.verbose)
		fprintf(stderr, "%s: %s: %zu tensors written as GGUF\n", slm_progname,
			strcmp(out, "-") ? out : "standard output", bundle_n_tensors(b));
	bundle_close(b);
	return 0;
}

static int to_bundle(enum kind k, const char *path, const char *shown, const char *out,
		     const struct timespec *t0)
{
	cv_model m;
	slm_err err;
	int rc = 0;
	cv_model_init(&m);
	switch (k) {
	case K_GGUF:
		rc = cv_from_gguf(&m, path, opt.vocab_only, &err);
		break;
	case K_HF_TAR: {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			slm_die(EX_NOINPUT, "%s: %s", shown, strerror(errno));
		const char *base = strrchr(shown, '/');
		rc = cv_from_hf_tar(&m, fd, spool_path ? "-" : base ? base + 1 : shown,
				    opt.vocab_only, &err);
		close(fd);
		break;
	}
	case K_HF_DIR:
		rc = cv_from_hf(&m, path, opt.vocab_only, &err);
		break;
	case K_LLAMA2C:
		if (opt.vocab_only)
			slm_die(EX_USAGE, "--vocab-only: not for llama2.c checkpoints");
		rc = cv_from_llama2c(&m, path, opt.tokenizer, &err);
		break;
	case K_BUNDLE:
		slm_die(EX_USAGE, "%s: already a bundle (slm-pack build rewrites one; "
			"--to gguf exports it)", shown);
	}
	if (rc < 0)
		die_err(&err, spool_path, shown);
	cleanup();
	/* The source's name, not the spooled copy's: the output must not
	 * depend on where the input was spooled. */
	json_t *prov = json_object_get(m.manifest, "provenance");
	if (json_is_object(prov) && spool_path)
		json_object_set_new(prov, "source", json_string("-"));
	/* a name taken from the spooled copy's file name means nothing */
	const char *nm = json_string_value(json_object_get(m.manifest, "name"));
	if (spool_path && nm && !strncmp(nm, "slm-convert", 11))
		json_object_del(m.manifest, "name");
	if (opt.name)
		json_object_set_new(m.manifest, "name", json_string(opt.name));
	progress p = { .m = &m, .t0 = *t0 };
	for (size_t i = 0; i < m.nt; i++)
		p.total += m.t[i].size;
	int show = !opt.quiet && isatty(STDERR_FILENO);
	if (cv_write_bundle(&m, out, opt.gzip, !opt.plain, show ? on_progress : NULL, &p, &err) < 0) {
		if (p.shown)
			fputc('\n', stderr);
		die_err(&err, spool_path, shown);
	}
	if (p.shown)
		fputc('\n', stderr);
	if (opt.verbose) {
		char sz[32];
		fprintf(stderr, "%s: %s: %s bundle, %zu tensors (%s), vocabulary of %zu\n",
			slm_progname, strcmp(out, "-") ? out : "standard output",
			json_string_value(json_object_get(m.manifest, "arch")), m.nt,
			slm_fmt_size(p.total, sz), m.vocab.n);
	}
	cv_model_free(&m);
	return 0;
}

enum { OPT_VERSION = 256, OPT_TO, OPT_VOCAB_ONLY, OPT_GZIP, OPT_NAME, OPT_TOKENIZER, OPT_LAYOUT };

int main(int argc, char **argv)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	slm_cli_init(argc, argv);
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "output", required_argument, NULL, 'o' },
		{ "to", required_argument, NULL, OPT_TO },
		{ "vocab-only", no_argument, NULL, OPT_VOCAB_ONLY },
		{ "gzip", no_argument, NULL, OPT_GZIP },
		{ "layout", required_argument, NULL, OPT_LAYOUT },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "tokenizer", required_argument, NULL, OPT_TOKENIZER },
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "ho:fqv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case OPT_VERSION:
			slm_cli_version();
		case 'o': opt.out = optarg; break;
		case OPT_TO:
			if (!strcmp(optarg, "gguf"))
				opt.to_gguf = 1;
			else if (strcmp(optarg, "bundle"))
				slm_die(EX_USAGE, "--to: '%s' is not 'bundle' or 'gguf'", optarg);
			break;
		case OPT_VOCAB_ONLY: opt.vocab_only = 1; break;
		case OPT_GZIP: opt.gzip = 1; break;
		case OPT_LAYOUT:
			if (!strcmp(optarg, "plain"))
				opt.plain = 1;
			else if (strcmp(optarg, "tile16"))
				slm_die(EX_USAGE, "--layout: '%s' is not tile16 or plain", optarg);
			opt.layout_set = 1;
			break;
		case OPT_NAME: opt.name = optarg; break;
		case OPT_TOKENIZER: opt.tokenizer = optarg; break;
		case 'f': opt.force = 1; break;
		case 'q': opt.quiet = 1; break;
		case 'v': opt.verbose = 1; break;
		default: slm_cli_usage_error(usage_text);
		}
	}
	if (argc - optind > 1)
		slm_cli_usage_error(usage_text);
	if (opt.to_gguf && (opt.gzip || opt.vocab_only || opt.name || opt.tokenizer ||
			    opt.layout_set))
		slm_die(EX_USAGE, "--to gguf takes none of --gzip, --vocab-only, --name, "
			"--tokenizer, --layout");
	if (opt.name && !store_valid_name(opt.name))
		slm_die(EX_USAGE, "--name: '%s' is not a valid name (letters, digits, . _ -)",
			opt.name);
	const char *in = optind < argc ? argv[optind] : "-";
	const char *out = opt.out ? opt.out : "-";
	if (!strcmp(out, "-"))
		slm_cli_refuse_tty(stdout, opt.force, opt.to_gguf ? "a GGUF file" : "a bundle");
	atexit(cleanup);

	const char *shown = in, *path = in;
	if (!strcmp(in, "-")) {
		shown = "standard input";
		path = spool_stdin();
	}
	enum kind k = classify(path, shown);
	int rc;
	if (opt.to_gguf) {
		if (k != K_BUNDLE)
			slm_die(EX_USAGE, "%s: --to gguf takes a bundle", shown);
		rc = to_gguf(path, shown, out);
	} else {
		rc = to_bundle(k, path, shown, out, &t0);
	}
	if (fflush(stdout) != 0)
		slm_die(EX_IOERR, "standard output: %s", strerror(errno));
	return rc;
}
