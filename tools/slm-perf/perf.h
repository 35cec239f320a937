/*
 * perf.h - what the parts of slm-perf share: the options, loading a bundle
 * with its load time, timing, statistics, progress lines and the SVG
 * chart writer. Each mode lives in its own file (bench.c, score.c).
 */
#ifndef SLM_PERF_H
#define SLM_PERF_H

#include <stdint.h>

#include "bundle.h"
#include "model.h"
#include "tok.h"
#include "util.h"

#define PERF_MAX_LIST 32
#define PERF_MAX_MODELS 16

typedef struct perf_opts {
	const char *mode;
	const char *models[PERF_MAX_MODELS];
	int nmodels;
	int threads[PERF_MAX_LIST], nthreads;
	int json, csv, markdown, quiet, verbose;
	int f32_act;           /* --f32-act: ctx_set_f32_act on every context */
	/* bench, profile */
	int prompt[PERF_MAX_LIST], nprompt;
	int gen[PERF_MAX_LIST], ngen;
	int seqs[PERF_MAX_LIST], nseqs;
	int pg[PERF_MAX_LIST][2], npg;
	int reps, batch;
	uint64_t seed;
	/* ppl, mc */
	int ctx, chunks;
	const char *tokens, *kld, *input;
	const char *svg;
} perf_opts;

extern perf_opts opt;

/* A loaded bundle. */
typedef struct perf_model {
	const char *arg;       /* -m as given */
	char *path;
	slm_bundle *b;
	slm_model m;
	double load_ms;        /* bundle_open + model_load */
} perf_model;

/* Load (dying with the library's message on failure) and unload. Unload
 * models together, never one while another is still in use: model_free
 * releases the small f32 tensor copies of every loaded model (model.c
 * keeps them in one global list). */
void perf_load(perf_model *pm, const char *arg);
void perf_unload(perf_model *pm);
/* The tokenizer of a loaded bundle (dies on failure). */
tok_vocab *perf_vocab(const perf_model *pm);
/* Short label for tables and charts: the file name without ".slm". */
const char *perf_label(const char *arg, char *buf, size_t cap);
/* The weight type holding most bytes ("Q4_1"). */
const char *perf_main_type(const slm_bundle *b, char *buf, size_t cap);

double perf_now_ms(void);
/* Mean and sample standard deviation (n - 1; 0 when n < 2). */
void perf_stats(const double *x, int n, double *mean, double *sd);
/* A progress line on stderr ("\r...") when it is a terminal and -q is off;
 * perf_progress_end() clears it. */
void perf_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void perf_progress_end(void);
/* Seeded random numbers (splitmix64). */
uint64_t perf_rand(uint64_t *state);
/* Peak resident set: reset where the system allows it (Linux
 * /proc/self/clear_refs), then read in MiB. */
void perf_rss_reset(void);
double perf_rss_peak_mb(void);
/* Kernel configuration: slm's kernel variant ("avx512", "avx512+f32-act"
 * with --f32-act); BLIS as blas_setup()
 * describes it ("blis 0.9.0 zen3 (set by slm: ...)") and its
 * sub-configuration alone ("zen3"). */
const char *perf_kernel(void);
const char *perf_blis(void);
const char *perf_blis_arch(void);

/* Modes. */
int bench_main(void);
int profile_main(void);
int ppl_main(void);
int mc_main(void);

/* SVG bar charts (svg.c): panels side by side, each with its own y axis,
 * one bar per series (bundle) with an error bar; written atomically. */
typedef struct svg_bar {
	int series;
	double value, err;     /* err <= 0: no error bar */
} svg_bar;
typedef struct svg_panel {
	char title[96];
	const char *ylabel;
	svg_bar *bars;
	int nbars;
} svg_panel;
void svg_write(const char *path, const char *title, const svg_panel *panels,
	       int npanels, const char *const *series, int nseries);

#endif
