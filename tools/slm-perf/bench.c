/*
 * bench.c - slm-perf bench and profile: prompt processing (pp), decoding
 * (tg) and both (pp+tg) timed as llama-bench times them, with load time,
 * time to first token and peak memory; profile splits one prompt and one
 * decode run into its timed parts.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf.h"
#include "sample.h"

/* One test: P prompt tokens then N generated, for each of B sequences. */
typedef struct btest {
	int p, n;
} btest;

/* A run's buffers: cache, context and logits for B sequences. */
typedef struct brun {
	const slm_model *m;
	slm_kv kv;
	slm_ctx *ctx;
	slm_entry *ent;
	float *logits;
	int B, max_batch;
} brun;

static void test_name(btest t, char *buf, size_t cap)
{
	if (t.p && t.n)
		snprintf(buf, cap, "pp%d+tg%d", t.p, t.n);
	else if (t.p)
		snprintf(buf, cap, "pp%d", t.p);
	else
		snprintf(buf, cap, "tg%d", t.n);
}

static void run_open(brun *r, const slm_model *m, slm_pool *pool, btest t, int B)
{
	slm_err err;
	memset(r, 0, sizeof *r);
	r->m = m;
	r->B = B;
	if (kv_init(&r->kv, m, B, t.p + t.n, &err) < 0)
		slm_die_err(&err);
	long pp = (long)B * t.p;
	r->max_batch = pp < opt.batch ? (int)pp : opt.batch;
	if (r->max_batch < B)
		r->max_batch = B;
	r->ctx = ctx_new(m, &r->kv, pool, r->max_batch);
	ctx_set_f32_act(r->ctx, opt.f32_act);
	r->ent = slm_xmalloc((size_t)r->max_batch * sizeof *r->ent);
	r->logits = slm_xmalloc((size_t)B * (size_t)m->n_vocab * sizeof *r->logits);
}

static void run_close(brun *r)
{
	ctx_free(r->ctx);
	kv_free(&r->kv);
	free(r->ent);
	free(r->logits);
}

/* The prompt: B sequences of P random tokens, sequence after sequence, in
 * forward calls of at most max_batch entries; each sequence's last token
 * asks for logits. limit > 0: stop after that many entries (warm-up). */
static void run_prompt(brun *r, int P, uint64_t *rng, long limit)
{
	long total = (long)r->B * P;
	if (limit > 0 && limit < total)
		total = limit;
	for (long i0 = 0; i0 < total; i0 += r->max_batch) {
		int n = (int)(total - i0 < r->max_batch ? total - i0 : r->max_batch);
		int rows = 0;
		for (int k = 0; k < n; k++) {
			long i = i0 + k;
			int pos = (int)(i % P);
			r->ent[k] = (slm_entry){ (int32_t)(perf_rand(rng) % (uint64_t)r->m->n_vocab),
						 pos, (int32_t)(i / P), pos == P - 1 ? rows++ : -1 };
		}
		model_forward(r->ctx, r->ent, n, r->logits);
	}
}

/* One decoding step: one random token per sequence at position pos. */
static void run_step(brun *r, int pos, uint64_t *rng)
{
	for (int s = 0; s < r->B; s++)
		r->ent[s] = (slm_entry){ (int32_t)(perf_rand(rng) % (uint64_t)r->m->n_vocab),
					 pos, s, s };
	model_forward(r->ctx, r->ent, r->B, r->logits);
}

static double run_test(brun *r, btest t, uint64_t *rng)
{
	double t0 = perf_now_ms();
	if (t.p)
		run_prompt(r, t.p, rng, 0);
	for (int i = 0; i < t.n; i++)
		run_step(r, t.p + i, rng);
	return perf_now_ms() - t0;
}

/* ---- results ---- */

typedef struct bres {
	int model;                /* index into opt.models */
	char label[64], type[16];
	uint64_t size, params;
	int threads, B;
	btest t;
	double tps_mean, tps_sd;
	double *tps;              /* [reps] */
	double load_ms;
	double ttft_mean, ttft_sd; /* < 0: not measured (tg tests) */
	double rss_mb;
} bres;

enum { FMT_TABLE, FMT_JSON, FMT_CSV, FMT_MD };

static int out_format(void)
{
	return opt.json ? FMT_JSON : opt.csv ? FMT_CSV : opt.markdown ? FMT_MD : FMT_TABLE;
}

static int label_width = 5;

/* The kernel column: "avx512", or longer with --f32-act. */
static int kernel_width(void)
{
	int w = (int)strlen(perf_kernel());
	return w > 7 ? w : 7;
}

static void fmt_size(uint64_t bytes, char *buf, size_t cap)
{
	snprintf(buf, cap, "%.2f MiB", (double)bytes / (1024.0 * 1024.0));
}

static void fmt_params(uint64_t n, char *buf, size_t cap)
{
	if (n >= 1000000000ull)
		snprintf(buf, cap, "%.2f B", (double)n / 1e9);
	else
		snprintf(buf, cap, "%.2f M", (double)n / 1e6);
}

static void csv_field(const char *s)
{
	if (!strpbrk(s, ",\"\n\r")) {
		fputs(s, stdout);
		return;
	}
	putchar('"');
	for (; *s; s++) {
		if (*s == '"')
			putchar('"');
		putchar(*s);
	}
	putchar('"');
}

static void print_header(void)
{
	switch (out_format()) {
	case FMT_CSV:
		puts("model,type,size,params,kernel,blis,threads,seqs,batch,test,n_prompt,n_gen,"
		     "reps,tps_mean,tps_sd,load_ms,ttft_ms,ttft_sd,peak_rss_mb");
		break;
	case FMT_MD:
		puts("| model | type | size | params | kernel | blis | threads | B | test | t/s "
		     "| load ms | ttft ms | peak RSS MiB |");
		puts("| --- | --- | ---: | ---: | --- | --- | ---: | ---: | --- | ---: | ---: "
		     "| ---: | ---: |");
		break;
	case FMT_TABLE:
		printf("%-*s  %-6s  %12s  %9s  %-*s  %-8s  %7s  %4s  %-13s  %20s  %8s  %16s  %9s\n",
		       label_width, "model", "type", "size", "params", kernel_width(), "kernel",
		       "blis", "threads", "B", "test", "t/s", "load ms", "ttft ms", "RSS MiB");
		break;
	default:
		break;
	}
	fflush(stdout);
}

static void print_row(const bres *r)
{
	char name[32], size[32], params[32], tps[48], ttft[48];
	test_name(r->t, name, sizeof name);
	fmt_size(r->size, size, sizeof size);
	fmt_params(r->params, params, sizeof params);
	snprintf(tps, sizeof tps, "%.2f ± %.2f", r->tps_mean, r->tps_sd);
	if (r->ttft_mean >= 0)
		snprintf(ttft, sizeof ttft, "%.2f ± %.2f", r->ttft_mean, r->ttft_sd);
	else
		snprintf(ttft, sizeof ttft, "-");
	const char *model = opt.models[r->model] ? opt.models[r->model] : "";
	switch (out_format()) {
	case FMT_JSON: {
		json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:i, s:i, s:i,"
				      " s:i, s:i, s:i, s:f, s:f, s:f, s:f}",
				      "model", model, "label", r->label, "type", r->type,
				      "size", (json_int_t)r->size, "params", (json_int_t)r->params,
				      "kernel", perf_kernel(), "blis", perf_blis(),
				      "test", name, "n_prompt", r->t.p, "n_gen", r->t.n,
				      "threads", r->threads, "seqs", r->B, "batch", opt.batch,
				      "reps", opt.reps, "tps_mean", r->tps_mean, "tps_sd", r->tps_sd,
				      "load_ms", r->load_ms, "peak_rss_mb", r->rss_mb);
		json_t *s = json_array();
		for (int i = 0; i < opt.reps; i++)
			json_array_append_new(s, json_real(r->tps[i]));
		json_object_set_new(o, "samples_tps", s);
		json_object_set_new(o, "ttft_ms", r->ttft_mean >= 0 ? json_real(r->ttft_mean) : json_null());
		json_object_set_new(o, "ttft_sd", r->ttft_mean >= 0 ? json_real(r->ttft_sd) : json_null());
		char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(8));
		puts(txt);
		free(txt);
		json_decref(o);
		break;
	}
	case FMT_CSV:
		csv_field(model);
		printf(",%s,%llu,%llu,%s,", r->type, (unsigned long long)r->size,
		       (unsigned long long)r->params, perf_kernel());
		csv_field(perf_blis());
		printf(",%d,%d,%d,%s,%d,%d,%d,%.4f,%.4f,%.3f,", r->threads, r->B, opt.batch, name, r->t.p, r->t.n, opt.reps,
		       r->tps_mean, r->tps_sd, r->load_ms);
		if (r->ttft_mean >= 0)
			printf("%.3f,%.3f", r->ttft_mean, r->ttft_sd);
		else
			putchar(',');
		printf(",%.1f\n", r->rss_mb);
		break;
	case FMT_MD:
		printf("| %s | %s | %s | %s | %s | %s | %d | %d | %s | %s | %.1f | %s | %.1f |\n",
		       r->label, r->type, size, params, perf_kernel(), perf_blis_arch(), r->threads,
		       r->B, name, tps, r->load_ms, ttft, r->rss_mb);
		break;
	default:
		/* "±" is 2 bytes and 1 column: pad by hand */
		printf("%-*s  %-6s  %12s  %9s  %-*s  %-8s  %7d  %4d  %-13s  %21s  %8.1f  %*s  %9.1f\n",
		       label_width, r->label, r->type, size, params, kernel_width(), perf_kernel(),
		       perf_blis_arch(), r->threads, r->B, name, tps, r->load_ms,
		       r->ttft_mean >= 0 ? 17 : 16, ttft, r->rss_mb);
		break;
	}
	fflush(stdout);
}

/* ---- the benchmark ---- */

static int make_tests(btest *t)
{
	int n = 0;
	for (int i = 0; i < opt.nprompt; i++)
		if (opt.prompt[i] > 0)
			t[n++] = (btest){ opt.prompt[i], 0 };
	for (int i = 0; i < opt.ngen; i++)
		if (opt.gen[i] > 0)
			t[n++] = (btest){ 0, opt.gen[i] };
	for (int i = 0; i < opt.npg; i++)
		t[n++] = (btest){ opt.pg[i][0], opt.pg[i][1] };
	return n;
}

/* Time to first token of a prompt test, in a fresh process state: open
 * and load the bundle, make the cache and context, run the prompt. */
static double ttft_once(int mi, slm_pool *pool, btest t, int B, uint64_t *rng,
			double *load_sum, int *nload)
{
	double t0 = perf_now_ms();
	perf_model pm;
	perf_load(&pm, opt.models[mi]);
	brun r;
	run_open(&r, &pm.m, pool, (btest){ t.p, 0 }, B);
	run_prompt(&r, t.p, rng, 0);
	double dt = perf_now_ms() - t0;
	*load_sum += pm.load_ms;
	(*nload)++;
	run_close(&r);
	perf_unload(&pm);
	return dt;
}

int bench_main(void)
{
	if (!opt.nprompt)
		opt.prompt[opt.nprompt++] = 512;
	if (!opt.ngen)
		opt.gen[opt.ngen++] = 128;
	if (!opt.nseqs)
		opt.seqs[opt.nseqs++] = 1;
	if (!opt.reps)
		opt.reps = 5;
	if (!opt.batch)
		opt.batch = 512;
	btest tests[3 * PERF_MAX_LIST];
	int ntests = make_tests(tests);
	if (ntests == 0)
		slm_die(EX_USAGE, "no test: every -p and -n is 0");
	for (int i = 0; i < opt.nmodels; i++) {
		char l[64];
		int w = (int)strlen(perf_label(opt.models[i], l, sizeof l));
		if (w > label_width)
			label_width = w;
	}
	int per_model = ntests * opt.nthreads * opt.nseqs;
	bres *res = slm_xcalloc((size_t)(per_model * opt.nmodels), sizeof *res);
	double *samples = slm_xmalloc((size_t)opt.reps * sizeof *samples);
	print_header();
	for (int mi = 0; mi < opt.nmodels; mi++) {
		bres *mres = res + (size_t)mi * (size_t)per_model;
		double load_sum = 0;
		int nload = 0;
		char label[64];
		perf_label(opt.models[mi], label, sizeof label);
		/* fresh runs first: loading a second model while one is loaded
		 * would share (and free) its small tensor copies */
		for (int ti = 0; ti < opt.nthreads; ti++) {
			slm_pool *pool = NULL;
			for (int bi = 0; bi < opt.nseqs; bi++)
				for (int k = 0; k < ntests; k++) {
					bres *r = &mres[(ti * opt.nseqs + bi) * ntests + k];
					r->ttft_mean = -1;
					if (!tests[k].p)
						continue;
					if (!pool)
						pool = pool_new(opt.threads[ti], 1);
					uint64_t rng = opt.seed;
					char name[32];
					test_name(tests[k], name, sizeof name);
					for (int rep = 0; rep < opt.reps; rep++) {
						perf_progress("bench: %s %s t=%d B=%d: time to first token %d/%d",
							      label, name, opt.threads[ti], opt.seqs[bi],
							      rep + 1, opt.reps);
						samples[rep] = ttft_once(mi, pool, tests[k], opt.seqs[bi],
									 &rng, &load_sum, &nload);
					}
					perf_stats(samples, opt.reps, &r->ttft_mean, &r->ttft_sd);
				}
			pool_free(pool);
		}
		perf_model pm;
		perf_load(&pm, opt.models[mi]);
		load_sum += pm.load_ms;
		nload++;
		char type[16];
		perf_main_type(pm.b, type, sizeof type);
		uint64_t size = 0;
		for (size_t i = 0; i < bundle_n_tensors(pm.b); i++)
			size += bundle_tensor_at(pm.b, i)->size;
		for (int ti = 0; ti < opt.nthreads; ti++) {
			slm_pool *pool = pool_new(opt.threads[ti], 1);
			for (int bi = 0; bi < opt.nseqs; bi++)
				for (int k = 0; k < ntests; k++) {
					bres *r = &mres[(ti * opt.nseqs + bi) * ntests + k];
					btest t = tests[k];
					int B = opt.seqs[bi];
					char name[32];
					test_name(t, name, sizeof name);
					r->model = mi;
					snprintf(r->label, sizeof r->label, "%s", label);
					snprintf(r->type, sizeof r->type, "%s", type);
					r->size = size;
					r->params = bundle_n_params(pm.b);
					r->threads = opt.threads[ti];
					r->B = B;
					r->t = t;
					r->load_ms = load_sum / nload;
					r->tps = slm_xmalloc((size_t)opt.reps * sizeof *r->tps);
					perf_rss_reset();
					brun run;
					run_open(&run, &pm.m, pool, t, B);
					uint64_t rng = opt.seed;
					/* warm-up, as llama-bench: one prompt batch or one step */
					if (t.p)
						run_prompt(&run, t.p, &rng, run.max_batch);
					else
						run_step(&run, 0, &rng);
					for (int rep = 0; rep < opt.reps; rep++) {
						perf_progress("bench: %s %s t=%d B=%d: run %d/%d", label,
							      name, r->threads, B, rep + 1, opt.reps);
						double ms = run_test(&run, t, &rng);
						r->tps[rep] = (double)B * (t.p + t.n) * 1e3 / ms;
					}
					run_close(&run);
					r->rss_mb = perf_rss_peak_mb();
					perf_stats(r->tps, opt.reps, &r->tps_mean, &r->tps_sd);
					perf_progress_end();
					print_row(r);
				}
			pool_free(pool);
		}
		perf_unload(&pm);
	}
	perf_progress_end();
	if (opt.svg) {
		/* one panel per test configuration, one bar per bundle */
		svg_panel *panels = slm_xcalloc((size_t)per_model, sizeof *panels);
		const char **series = slm_xcalloc((size_t)opt.nmodels, sizeof *series);
		for (int mi = 0; mi < opt.nmodels; mi++)
			series[mi] = res[(size_t)mi * (size_t)per_model].label;
		for (int k = 0; k < per_model; k++) {
			svg_panel *p = &panels[k];
			const bres *r0 = &res[k];
			char name[32];
			test_name(r0->t, name, sizeof name);
			if (opt.nseqs > 1)
				snprintf(p->title, sizeof p->title, "%s, %d threads, B=%d", name,
					 r0->threads, r0->B);
			else
				snprintf(p->title, sizeof p->title, "%s, %d thread%s", name,
					 r0->threads, r0->threads == 1 ? "" : "s");
			p->ylabel = "tokens/s";
			p->bars = slm_xcalloc((size_t)opt.nmodels, sizeof *p->bars);
			p->nbars = opt.nmodels;
			for (int mi = 0; mi < opt.nmodels; mi++) {
				const bres *r = &res[(size_t)mi * (size_t)per_model + (size_t)k];
				p->bars[mi] = (svg_bar){ mi, r->tps_mean, r->tps_sd };
			}
		}
		char title[128];
		snprintf(title, sizeof title, "slm-perf bench: tokens/s, mean ± sd of %d runs",
			 opt.reps);
		svg_write(opt.svg, title, panels, per_model, series, opt.nmodels);
		for (int k = 0; k < per_model; k++)
			free(panels[k].bars);
		free(panels);
		free(series);
	}
	for (int i = 0; i < per_model * opt.nmodels; i++)
		free(res[i].tps);
	free(res);
	free(samples);
	return 0;
}

/* ---- profile ---- */

/* A row of the breakdown. detail: a part of other rows (products by
 * weight type, the pool wait), not counted in the phase's total. */
typedef struct pop {
	char op[32];
	long calls;
	double ms;
	int detail;
} pop;

#define MAX_OPS (PROF_N + 64 + 4)

/* The rows of one phase from the model's counters (+ sampling). */
static int profile_rows(const slm_profile *p, double sampling_ms, long samples, pop *ops)
{
	int n = 0;
	for (int k = 0; k < PROF_N; k++) {
		ops[n] = (pop){ "", (long)p->forwards, (double)p->ns[k] / 1e6, 0 };
		snprintf(ops[n++].op, sizeof ops[0].op, "%s", prof_names[k]);
	}
	if (samples) {
		ops[n] = (pop){ "sampling", samples, sampling_ms, 0 };
		n++;
	}
	for (int id = 0; id < 64; id++) {
		const slm_dtype *dt = dtype_by_ggml((uint32_t)id);
		if (!p->mm_calls[id] || !dt)
			continue;
		ops[n] = (pop){ "", (long)p->mm_calls[id], (double)p->mm_ns[id] / 1e6, 1 };
		snprintf(ops[n++].op, sizeof ops[0].op, "matmul %s", dt->name);
	}
	ops[n] = (pop){ "pool wait", (long)p->forwards, (double)p->sync_ns / 1e6, 1 };
	return n + 1;
}

static void profile_print(const char *label, const char *model, const char *phase,
			  const pop *ops, int nops, double tokens, double wbytes)
{
	double total = 0;
	for (int i = 0; i < nops; i++)
		if (!ops[i].detail)
			total += ops[i].ms;
	for (int i = 0; i < nops; i++) {
		double share = total > 0 ? ops[i].ms / total : 0;
		double mean = ops[i].calls ? ops[i].ms / (double)ops[i].calls : 0;
		if (opt.json) {
			json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:f, s:f, s:f, s:b, s:i, s:s}",
					      "model", model, "phase", phase, "op", ops[i].op,
					      "calls", (json_int_t)ops[i].calls, "total_ms", ops[i].ms,
					      "mean_ms", mean, "share", share, "detail", ops[i].detail,
					      "threads", opt.threads[0], "kernel", perf_kernel());
			char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(8));
			puts(txt);
			free(txt);
			json_decref(o);
		} else {
			printf("  %-7s %s%-14s %8ld %12.3f %12.4f %6.1f%%\n", phase,
			       ops[i].detail ? "  " : "", ops[i].op, ops[i].calls, ops[i].ms, mean,
			       100 * share);
		}
	}
	if (opt.json || total <= 0 || tokens <= 0)
		return;
	if (!strcmp(phase, "prompt")) {
		printf("  prompt: %.2f tokens/s\n", tokens * 1e3 / total);
	} else {
		double per_tok = total / tokens;
		printf("  decode: %.2f tokens/s, %.3f ms/token, weights read at %.1f GB/s\n",
		       1e3 / per_tok, per_tok, wbytes / (per_tok * 1e6));
	}
	(void)label;
}

int profile_main(void)
{
	int P = opt.nprompt ? opt.prompt[0] : 512;
	int N = opt.ngen ? opt.gen[0] : 128;
	if (!opt.reps)
		opt.reps = 1;
	if (!opt.batch)
		opt.batch = 512;
	if (P + N == 0)
		slm_die(EX_USAGE, "no test: -p and -n are 0");
	for (int mi = 0; mi < opt.nmodels; mi++) {
		perf_model pm;
		perf_load(&pm, opt.models[mi]);
		char label[64];
		perf_label(opt.models[mi], label, sizeof label);
		slm_pool *pool = pool_new(opt.threads[0], 1);
		slm_sample_params sp = { .temp = 0.8f, .top_k = 40, .top_p = 0.95f,
					 .min_p = 0.05f, .repeat_penalty = 1.0f,
					 .repeat_last_n = 64, .seed = opt.seed };
		slm_profile prof[2];
		memset(prof, 0, sizeof prof);
		double sampling_ms = 0;
		brun r;
		run_open(&r, &pm.m, pool, (btest){ P, N }, 1);
		uint64_t rng = opt.seed;
		if (P)
			run_prompt(&r, P, &rng, r.max_batch); /* warm-up */
		else
			run_step(&r, 0, &rng);
		for (int rep = 0; rep < opt.reps; rep++) {
			slm_sampler *smp = sampler_new(&sp, pm.m.n_vocab, 0);
			for (int i0 = 0; i0 < P; i0 += r.max_batch) {
				perf_progress("profile: %s: prompt %d/%d (run %d/%d)", label, i0, P,
					      rep + 1, opt.reps);
				int n = P - i0 < r.max_batch ? P - i0 : r.max_batch;
				for (int k = 0; k < n; k++)
					r.ent[k] = (slm_entry){
						(int32_t)(perf_rand(&rng) % (uint64_t)pm.m.n_vocab),
						i0 + k, 0, i0 + k == P - 1 ? 0 : -1 };
				/* (re)start the clock: time between calls is not the model's */
				ctx_set_profile(r.ctx, &prof[0]);
				model_forward(r.ctx, r.ent, n, r.logits);
				ctx_set_profile(r.ctx, NULL);
			}
			int32_t tok = P ? sampler_sample(smp, r.logits)
					: (int32_t)(perf_rand(&rng) % (uint64_t)pm.m.n_vocab);
			for (int i = 0; i < N; i++) {
				if (i % 16 == 0)
					perf_progress("profile: %s: decode %d/%d (run %d/%d)", label, i,
						      N, rep + 1, opt.reps);
				r.ent[0] = (slm_entry){ tok, P + i, 0, 0 };
				ctx_set_profile(r.ctx, &prof[1]);
				model_forward(r.ctx, r.ent, 1, r.logits);
				ctx_set_profile(r.ctx, NULL);
				double t0 = perf_now_ms();
				tok = sampler_sample(smp, r.logits);
				sampler_accept(smp, tok);
				sampling_ms += perf_now_ms() - t0;
			}
			sampler_free(smp);
		}
		perf_progress_end();
		run_close(&r);
		const char *model = opt.models[mi] ? opt.models[mi] : "";
		double wbytes = (double)model_weight_bytes(&pm.m);
		if (!opt.json) {
			printf("%s: %s kernels, %d threads, %d run%s\n", label, perf_kernel(),
			       opt.threads[0], opt.reps, opt.reps == 1 ? "" : "s");
			printf("  %-7s %-16s %8s %12s %12s %7s\n", "phase", "op", "calls", "total ms",
			       "ms/call", "share");
		}
		pop ops[MAX_OPS];
		if (P) {
			int n = profile_rows(&prof[0], 0, 0, ops);
			profile_print(label, model, "prompt", ops, n, (double)P * opt.reps, wbytes);
		}
		if (N) {
			int n = profile_rows(&prof[1], sampling_ms, (long)N * opt.reps, ops);
			profile_print(label, model, "decode", ops, n, (double)N * opt.reps, wbytes);
		}
		fflush(stdout);
		pool_free(pool);
		perf_unload(&pm);
	}
	return 0;
}
