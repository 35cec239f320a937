/*
 * slm-perf - how fast and how good a model is on this machine: speed like
 * llama-bench (bench), a time breakdown (profile), perplexity and KL
 * divergence with llama.cpp's method (ppl), and multiple-choice accuracy
 * as lm-evaluation-harness scores it (mc). This file: options, loading,
 * timing and the helpers the modes share.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "blas.h"
#include "cli.h"
#include "kern/kern.h"
#include "perf.h"
#include "store.h"

static const char usage_text[] =
	"usage: slm-perf bench [-qv] [-m BUNDLE]... [-p N,...] [-n N,...] [-b N,...]\n"
	"                [-t N,...] [-r N] [--pg P,N]... [--batch N] [--seed N]\n"
	"                [--f32-act] [--json | --csv | --markdown] [--svg FILE]\n"
	"       slm-perf ppl [-qv] [-m BUNDLE]... [-c CTX] [-t N] [--batch N]\n"
	"                [--chunks N] [--f32-act] [--kld REF] [--json] [--svg FILE]\n"
	"                FILE | --tokens FILE\n"
	"       slm-perf mc [-qv] [-m BUNDLE]... [-t N] [--batch N] [--f32-act] [--json]\n"
	"                FILE\n"
	"       slm-perf profile [-qv] [-m BUNDLE]... [-p N] [-n N] [-t N] [-r N]\n"
	"                [--batch N] [--seed N] [--f32-act] [--json]\n"
	"       slm-perf -h | --help | --version\n";

perf_opts opt;

/* ---- loading ---- */

void perf_load(perf_model *pm, const char *arg)
{
	slm_err err;
	memset(pm, 0, sizeof *pm);
	pm->arg = arg;
	pm->path = store_resolve(arg, &err);
	if (!pm->path)
		slm_die_err(&err);
	double t0 = perf_now_ms();
	if (bundle_open(&pm->b, pm->path, &err) < 0 || model_load(&pm->m, pm->b, &err) < 0)
		slm_die_err(&err);
	pm->load_ms = perf_now_ms() - t0;
}

void perf_unload(perf_model *pm)
{
	model_free(&pm->m);
	bundle_close(pm->b);
	free(pm->path);
	memset(pm, 0, sizeof *pm);
}

tok_vocab *perf_vocab(const perf_model *pm)
{
	tok_vocab *v;
	slm_err err;
	if (tok_vocab_from_bundle(&v, pm->b, &err) < 0)
		slm_die_err(&err);
	if (tok_n_vocab(v) > pm->m.n_vocab)
		slm_die(EX_DATAERR, "%s: the vocabulary has %d tokens, the model only %d",
			pm->path, tok_n_vocab(v), pm->m.n_vocab);
	return v;
}

const char *perf_label(const char *arg, char *buf, size_t cap)
{
	const char *s = arg ? strrchr(arg, '/') : NULL;
	s = s ? s + 1 : arg ? arg : "default";
	size_t n = strlen(s);
	if (n > 4 && !strcmp(s + n - 4, ".slm"))
		n -= 4;
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, s, n);
	buf[n] = 0;
	return buf;
}

const char *perf_main_type(const slm_bundle *b, char *buf, size_t cap)
{
	const slm_dtype *best = bundle_main_dtype(b);
	snprintf(buf, cap, "%s", best ? best->name : "-");
	for (char *p = buf; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	return buf;
}

/* ---- timing, statistics, progress ---- */

double perf_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void perf_stats(const double *x, int n, double *mean, double *sd)
{
	double s = 0, ss = 0;
	for (int i = 0; i < n; i++)
		s += x[i];
	*mean = n ? s / n : 0;
	for (int i = 0; i < n; i++)
		ss += (x[i] - *mean) * (x[i] - *mean);
	*sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

static int progress_on = -1;

void perf_progress(const char *fmt, ...)
{
	if (progress_on < 0)
		progress_on = !opt.quiet && isatty(STDERR_FILENO);
	if (!progress_on)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "\r\033[K%s: ", slm_progname);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
}

void perf_progress_end(void)
{
	if (progress_on > 0) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
}

uint64_t perf_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void perf_rss_reset(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	if (f) {
		fputs("5", f); /* reset the peak resident set size */
		fclose(f);
	}
}

double perf_rss_peak_mb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (f) {
		char line[256];
		unsigned long long kb;
		while (fgets(line, sizeof line, f))
			if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) {
				fclose(f);
				return (double)kb / 1024;
			}
		fclose(f);
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024;
}

const char *perf_kernel(void)
{
	static char name[48];
	kern_init();
	snprintf(name, sizeof name, "%s%s", kern_variant_name(), opt.f32_act ? "+f32-act" : "");
	return name;
}

const char *perf_blis(void)
{
	static char desc[160];
	if (!desc[0])
		blas_setup(0, desc, sizeof desc);
	return desc;
}

const char *perf_blis_arch(void)
{
	static char arch[32];
	/* "blis VERSION ARCH (...)" */
	if (!arch[0] && sscanf(perf_blis(), "blis %*s %31s", arch) != 1)
		snprintf(arch, sizeof arch, "-");
	return arch;
}

/* ---- options ---- */

enum {
	OPT_VERSION = 256, OPT_JSON, OPT_CSV, OPT_MARKDOWN, OPT_BATCH, OPT_SEED,
	OPT_PG, OPT_SVG, OPT_CHUNKS, OPT_KLD, OPT_TOKENS, OPT_F32_ACT,
};

/* "1,2,4" into list; each in [lo, hi]. */
static int parse_list(const char *name, const char *arg, int *list, int lo, int hi)
{
	int n = 0;
	char *dup = slm_xstrdup(arg), *save = NULL;
	for (char *s = strtok_r(dup, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		if (n == PERF_MAX_LIST)
			slm_die(EX_USAGE, "%s: at most %d values", name, PERF_MAX_LIST);
		list[n++] = (int)slm_cli_long(name, s, lo, hi);
	}
	free(dup);
	if (n == 0)
		slm_die(EX_USAGE, "%s: empty list", name);
	return n;
}

/* Options that only some modes take: the option and the modes. */
static void only_for(int set, const char *option, const char *modes)
{
	if (!set)
		return;
	char m[32];
	snprintf(m, sizeof m, " %s ", opt.mode);
	char all[64];
	snprintf(all, sizeof all, " %s ", modes);
	if (!strstr(all, m))
		slm_die(EX_USAGE, "%s: not an option of %s (only of: %s)", option, opt.mode,
			modes);
}

int main(int argc, char **argv)
{
	slm_cli_init(argc, argv);
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "model", required_argument, NULL, 'm' },
		{ "threads", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "csv", no_argument, NULL, OPT_CSV },
		{ "markdown", no_argument, NULL, OPT_MARKDOWN },
		{ "n-prompt", required_argument, NULL, 'p' },
		{ "n-gen", required_argument, NULL, 'n' },
		{ "parallel", required_argument, NULL, 'b' },
		{ "repetitions", required_argument, NULL, 'r' },
		{ "pg", required_argument, NULL, OPT_PG },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "svg", required_argument, NULL, OPT_SVG },
		{ "ctx-size", required_argument, NULL, 'c' },
		{ "chunks", required_argument, NULL, OPT_CHUNKS },
		{ "kld", required_argument, NULL, OPT_KLD },
		{ "tokens", required_argument, NULL, OPT_TOKENS },
		{ "f32-act", no_argument, NULL, OPT_F32_ACT },
		{ NULL, 0, NULL, 0 },
	};
	if (argc < 2)
		slm_cli_usage_error(usage_text);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version"))
		slm_cli_version();
	opt.mode = argv[1];
	if (strcmp(opt.mode, "bench") && strcmp(opt.mode, "ppl") && strcmp(opt.mode, "mc") &&
	    strcmp(opt.mode, "profile")) {
		slm_warn("unknown mode '%s' (bench, ppl, mc or profile)", opt.mode);
		slm_cli_usage_error(usage_text);
	}
	opt.seed = 42;
	int set_p = 0, set_n = 0, set_b = 0, set_r = 0, set_c = 0, set_seed = 0;
	int c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "hm:t:qvp:n:b:r:c:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(usage_text, stdout); return 0;
		case OPT_VERSION: slm_cli_version();
		case 'm':
			if (opt.nmodels == PERF_MAX_MODELS)
				slm_die(EX_USAGE, "-m: at most %d bundles", PERF_MAX_MODELS);
			opt.models[opt.nmodels++] = optarg;
			break;
		case 't': opt.nthreads = parse_list("-t", optarg, opt.threads, 1, 1024); break;
		case 'q': opt.quiet = 1; break;
		case 'v': opt.verbose = 1; break;
		case OPT_JSON: opt.json = 1; break;
		case OPT_CSV: opt.csv = 1; break;
		case OPT_MARKDOWN: opt.markdown = 1; break;
		case 'p': opt.nprompt = parse_list("-p", optarg, opt.prompt, 0, 1 << 20); set_p = 1; break;
		case 'n': opt.ngen = parse_list("-n", optarg, opt.gen, 0, 1 << 20); set_n = 1; break;
		case 'b': opt.nseqs = parse_list("-b", optarg, opt.seqs, 1, 4096); set_b = 1; break;
		case 'r': opt.reps = (int)slm_cli_long("-r", optarg, 1, 100000); set_r = 1; break;
		case OPT_PG: {
			int pair[PERF_MAX_LIST];
			if (parse_list("--pg", optarg, pair, 1, 1 << 20) != 2)
				slm_die(EX_USAGE, "--pg: '%s' is not PROMPT,GEN", optarg);
			if (opt.npg == PERF_MAX_LIST)
				slm_die(EX_USAGE, "--pg: at most %d tests", PERF_MAX_LIST);
			opt.pg[opt.npg][0] = pair[0];
			opt.pg[opt.npg++][1] = pair[1];
			break;
		}
		case OPT_BATCH: opt.batch = (int)slm_cli_long("--batch", optarg, 1, 1 << 16); break;
		case OPT_SEED: {
			char *end;
			errno = 0;
			unsigned long long s = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end || optarg[0] == '-')
				slm_die(EX_USAGE, "--seed: '%s' is not an unsigned integer", optarg);
			opt.seed = s;
			set_seed = 1;
			break;
		}
		case OPT_SVG: opt.svg = optarg; break;
		case 'c': opt.ctx = (int)slm_cli_long("-c", optarg, 4, 1 << 20); set_c = 1; break;
		case OPT_CHUNKS: opt.chunks = (int)slm_cli_long("--chunks", optarg, 1, 1 << 30); break;
		case OPT_KLD: opt.kld = optarg; break;
		case OPT_TOKENS: opt.tokens = optarg; break;
		case OPT_F32_ACT: opt.f32_act = 1; break;
		default: slm_cli_usage_error(usage_text);
		}
	}
	if (optind < argc)
		opt.input = argv[optind++];
	if (optind < argc)
		slm_cli_usage_error(usage_text);

	only_for(set_p, "-p", "bench profile");
	only_for(set_n, "-n", "bench profile");
	only_for(set_r, "-r", "bench profile");
	only_for(set_seed, "--seed", "bench profile");
	only_for(set_b, "-b", "bench");
	only_for(opt.npg, "--pg", "bench");
	only_for(opt.csv, "--csv", "bench");
	only_for(opt.markdown, "--markdown", "bench");
	only_for(opt.svg != NULL, "--svg", "bench ppl");
	only_for(set_c, "-c", "ppl");
	only_for(opt.chunks, "--chunks", "ppl");
	only_for(opt.kld != NULL, "--kld", "ppl");
	only_for(opt.tokens != NULL, "--tokens", "ppl");
	only_for(opt.input != NULL, "FILE", "ppl mc");
	if (opt.json + opt.csv + opt.markdown > 1)
		slm_die(EX_USAGE, "--json, --csv and --markdown exclude each other");
	if (strcmp(opt.mode, "bench") && strcmp(opt.mode, "profile") && opt.nthreads > 1)
		slm_die(EX_USAGE, "-t: %s takes one thread count", opt.mode);
	if (!strcmp(opt.mode, "profile") && (opt.nprompt > 1 || opt.ngen > 1))
		slm_die(EX_USAGE, "profile takes one -p and one -n");
	if (opt.nmodels == 0)
		opt.models[opt.nmodels++] = NULL; /* $SLM_MODEL or the store's default */
	if (opt.nthreads == 0)
		opt.threads[opt.nthreads++] = pool_default_threads();

	if (!strcmp(opt.mode, "bench"))
		return bench_main();
	if (!strcmp(opt.mode, "profile"))
		return profile_main();
	if (!strcmp(opt.mode, "ppl"))
		return ppl_main();
	return mc_main();
}
