/*
 * score.c - slm-perf ppl (perplexity with llama.cpp's method, and KL
 * divergence against a reference bundle) and slm-perf mc (multiple-choice
 * accuracy as lm-evaluation-harness scores loglikelihood tasks).
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf.h"
#include "sample.h"
#include "score.h"
#include "stream.h"

/* A model ready to run: cache, context and a logits buffer. */
typedef struct scorer {
	perf_model pm;
	slm_kv kv;
	slm_ctx *ctx;
	float *logits;
	int n_vocab, max_rows;
} scorer;

/* Make the cache (slots x n_ctx), the context and the logits buffer of a
 * loaded model. */
static void scorer_alloc(scorer *s, slm_pool *pool, int slots, int n_ctx, int max_batch)
{
	slm_err err;
	if (kv_init(&s->kv, &s->pm.m, slots, n_ctx, &err) < 0)
		slm_die_err(&err);
	s->ctx = ctx_new(&s->pm.m, &s->kv, pool, max_batch);
	ctx_set_f32_act(s->ctx, opt.f32_act);
	s->n_vocab = s->pm.m.n_vocab;
	s->max_rows = score_rows_cap(s->n_vocab, max_batch);
	s->logits = slm_xmalloc((size_t)s->max_rows * (size_t)s->n_vocab * sizeof *s->logits);
}

/* Both scorers are closed together: model_free frees every model's copies. */
static void scorer_close(scorer *s)
{
	ctx_free(s->ctx);
	kv_free(&s->kv);
	free(s->logits);
	perf_unload(&s->pm);
}

/* The vocabulary digest (sha256 of the vocabulary member), or "". */
static const char *vocab_digest(const slm_bundle *b)
{
	const slm_member *vm = bundle_find_member(b, "tokenizer/vocab.msgpack");
	return vm && vm->sha256 ? vm->sha256 : "";
}

/* Run entries through the forward calls of ns scorers (score_run). */
static void run_entries(scorer *s, int ns, slm_entry *e, long n, int max_batch,
			score_rows_fn fn, void *arg)
{
	slm_ctx *ctx[2];
	float *lg[2];
	for (int j = 0; j < ns; j++) {
		ctx[j] = s[j].ctx;
		lg[j] = s[j].logits;
	}
	score_run(ctx, lg, ns, e, n, max_batch, s[0].max_rows, fn, arg);
}

static int argmax_f(const float *x, int n)
{
	int b = 0;
	for (int i = 1; i < n; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

/* ---- perplexity ---- */

typedef struct ppl_acc {
	const int32_t *tokens;     /* the whole text */
	const long *win_start;     /* start of each window of the current group */
	int n_vocab, kld;
	double nll, nll2, ref_nll, ref_nll2;
	double kl, kl2;
	float *kl_each;
	long count, same_top;
} ppl_acc;

static void ppl_rows(void *arg, const slm_entry *e, int n, float *const *lg)
{
	ppl_acc *a = arg;
	for (int i = 0; i < n; i++) {
		if (e[i].logits < 0)
			continue;
		int32_t target = a->tokens[a->win_start[e[i].slot] + e[i].pos + 1];
		const float *row = lg[0] + (size_t)e[i].logits * (size_t)a->n_vocab;
		double v = -score_logprob(row, a->n_vocab, target);
		a->nll += v;
		a->nll2 += v * v;
		if (a->kld) {
			const float *ref = lg[1] + (size_t)e[i].logits * (size_t)a->n_vocab;
			double lse_r = logsumexp(ref, a->n_vocab);
			double vr = lse_r - ref[target];
			a->ref_nll += vr;
			a->ref_nll2 += vr * vr;
			double lse = logsumexp(row, a->n_vocab), kl = 0;
			for (int t = 0; t < a->n_vocab; t++) {
				double lp_r = ref[t] - lse_r;
				kl += exp(lp_r) * (lp_r - (row[t] - lse));
			}
			a->kl += kl;
			a->kl2 += kl * kl;
			a->kl_each[a->count] = (float)kl;
			a->same_top += argmax_f(row, a->n_vocab) == argmax_f(ref, a->n_vocab);
		}
		a->count++;
	}
}

/* The tokens of every seq record, in order; a header naming another
 * vocabulary than digest is an error. */
static int32_t *read_token_stream(const char *path, const char *digest, size_t *n)
{
	slm_err err;
	slm_sreader *r = sreader_open(path, &err);
	if (!r)
		slm_die_err(&err);
	int32_t *t = NULL;
	size_t cap = 0;
	*n = 0;
	json_t *rec;
	int rc;
	while ((rc = sreader_next(r, &rec, &err)) > 0) {
		const char *vd = json_string_value(json_object_get(rec, "vocab"));
		if (stream_rec_type(rec) == SLM_REC_HEADER && vd && *digest && strcmp(vd, digest))
			slm_die(EX_DATAERR, "%s: the token stream was made with another vocabulary",
				path);
		if (stream_rec_type(rec) == SLM_REC_SEQ) {
			json_t *toks = json_object_get(rec, "tokens");
			size_t k = json_array_size(toks);
			if (*n + k > cap) {
				cap = (*n + k) * 2;
				t = slm_xrealloc(t, cap * sizeof *t);
			}
			for (size_t i = 0; i < k; i++)
				t[(*n)++] = (int32_t)json_integer_value(json_array_get(toks, i));
		}
		json_decref(rec);
	}
	if (rc < 0)
		slm_die_err(&err);
	sreader_free(r);
	return t;
}

static int32_t *read_text_tokens(const tok_vocab *v, const char *path, size_t *n)
{
	slm_err err;
	char *text;
	size_t len;
	if (slm_read_file(path, &text, &len, &err) < 0)
		slm_die_err(&err);
	int32_t *t;
	if (tok_encode(v, text, len, TOK_ADD_SPECIAL, &t, n, &err) < 0)
		slm_die(err.code, "%s: %s", path, err.msg);
	free(text);
	return t;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

typedef struct ppl_res {
	char label[64];
	double ppl, ppl_err, ref_ppl, ref_ppl_err;
	double kld, kld_err, top1;
} ppl_res;

/* exp(mean) and llama.cpp's uncertainty of it. */
static void ppl_of(double nll, double nll2, long count, double *ppl, double *err)
{
	double mean = nll / (double)count, var = nll2 / (double)count - mean * mean;
	*ppl = exp(mean);
	*err = var > 0 && count > 1 ? *ppl * sqrt(var / (double)(count - 1)) : 0;
}

int ppl_main(void)
{
	if (!opt.input == !opt.tokens)
		slm_die(EX_USAGE, "ppl: give a text FILE or --tokens FILE (one of them)");
	if (!opt.ctx)
		opt.ctx = 512;
	if (!opt.batch)
		opt.batch = 512;
	int n_ctx = opt.ctx, first = n_ctx / 2;
	const char *src = opt.tokens ? opt.tokens : opt.input;
	ppl_res *res = slm_xcalloc((size_t)opt.nmodels, sizeof *res);
	slm_pool *pool = pool_new(opt.threads[0], 1);
	for (int mi = 0; mi < opt.nmodels; mi++) {
		ppl_res *R = &res[mi];
		perf_label(opt.models[mi], R->label, sizeof R->label);
		/* windows: n_seq at once when the batch holds several */
		int n_seq = opt.batch / n_ctx > 1 ? opt.batch / n_ctx : 1;
		int max_batch = opt.batch < n_seq * n_ctx ? opt.batch : n_seq * n_ctx;
		scorer s[2];
		memset(s, 0, sizeof s);
		int ns = opt.kld ? 2 : 1;
		perf_load(&s[0].pm, opt.models[mi]);
		scorer_alloc(&s[0], pool, n_seq, n_ctx, max_batch);
		if (opt.kld) {
			perf_load(&s[1].pm, opt.kld);
			if (s[1].pm.m.n_vocab != s[0].n_vocab ||
			    strcmp(vocab_digest(s[0].pm.b), vocab_digest(s[1].pm.b)))
				slm_die(EX_DATAERR, "%s and %s have different vocabularies",
					s[0].pm.path, s[1].pm.path);
			scorer_alloc(&s[1], pool, n_seq, n_ctx, max_batch);
		}
		tok_vocab *v = perf_vocab(&s[0].pm);
		size_t n_tok;
		int32_t *tokens = opt.tokens ? read_token_stream(opt.tokens, vocab_digest(s[0].pm.b), &n_tok)
					     : read_text_tokens(v, opt.input, &n_tok);
		for (size_t i = 0; i < n_tok; i++)
			if (tokens[i] < 0 || tokens[i] >= s[0].n_vocab)
				slm_die(EX_DATAERR, "%s: token %d at %zu is outside the vocabulary of %d",
					src, tokens[i], i, s[0].n_vocab);
		if (n_tok < 2 * (size_t)n_ctx)
			slm_die(EX_DATAERR,
				"%s: %zu tokens; perplexity with a context of %d (-c) needs at least %d",
				src, n_tok, n_ctx, 2 * n_ctx);
		long n_chunk = (long)(n_tok / (size_t)n_ctx);
		if (opt.chunks && opt.chunks < n_chunk)
			n_chunk = opt.chunks;
		int add_bos = tok_add_bos(v) && tok_bos(v) != TOK_NULL;
		int32_t bos = tok_bos(v);
		ppl_acc a = { .tokens = tokens, .n_vocab = s[0].n_vocab, .kld = opt.kld != NULL };
		if (opt.kld)
			a.kl_each = slm_xmalloc((size_t)n_chunk * (size_t)(n_ctx - 1 - first) *
						sizeof *a.kl_each);
		slm_entry *ent = slm_xmalloc((size_t)n_seq * (size_t)n_ctx * sizeof *ent);
		long *win_start = slm_xmalloc((size_t)n_seq * sizeof *win_start);
		a.win_start = win_start;
		double t0 = perf_now_ms();
		for (long c0 = 0; c0 < n_chunk; c0 += n_seq) {
			int nw = (int)(n_chunk - c0 < n_seq ? n_chunk - c0 : n_seq);
			perf_progress("ppl: %s: chunk %ld/%ld", R->label, c0 + nw, n_chunk);
			long n = 0;
			for (int w = 0; w < nw; w++) {
				win_start[w] = (c0 + w) * n_ctx;
				slm_entry *we = ent + n;
				n += score_seq_entries(we, tokens + win_start[w], n_ctx, w, first,
						       n_ctx - 1);
				if (add_bos)
					we[0].token = bos;
			}
			run_entries(s, ns, ent, n, max_batch, ppl_rows, &a);
		}
		perf_progress_end();
		double secs = (perf_now_ms() - t0) / 1e3;
		ppl_of(a.nll, a.nll2, a.count, &R->ppl, &R->ppl_err);
		if (opt.verbose)
			fprintf(stderr, "%s: %s: %zu tokens, %ld chunks of %d, %ld scored, bos %s, %.2f s\n",
				slm_progname, R->label, n_tok, n_chunk, n_ctx, a.count,
				add_bos ? "yes" : "no", secs);
		json_t *o = json_pack("{s:s, s:f, s:f, s:I, s:i, s:I, s:I}", "model",
				      opt.models[mi] ? opt.models[mi] : "", "ppl", R->ppl,
				      "ppl_err", R->ppl_err, "tokens", (json_int_t)n_tok,
				      "ctx", n_ctx, "chunks", (json_int_t)n_chunk,
				      "scored", (json_int_t)a.count);
		if (opt.f32_act)
			json_object_set_new(o, "f32_act", json_true());
		const char *pre = opt.nmodels > 1 ? R->label : NULL;
		if (!opt.json)
			printf("%s%sppl = %.4f ± %.4f\n", pre ? pre : "", pre ? ": " : "", R->ppl,
			       R->ppl_err);
		if (opt.kld) {
			ppl_of(a.ref_nll, a.ref_nll2, a.count, &R->ref_ppl, &R->ref_ppl_err);
			double mean = a.kl / (double)a.count;
			double var = a.kl2 / (double)a.count - mean * mean;
			R->kld = mean;
			R->kld_err = var > 0 && a.count > 1 ? sqrt(var / (double)(a.count - 1)) : 0;
			R->top1 = 100.0 * (double)a.same_top / (double)a.count;
			qsort(a.kl_each, (size_t)a.count, sizeof *a.kl_each, cmp_float);
			double med = a.kl_each[a.count / 2], p99 = a.kl_each[(a.count - 1) * 99 / 100],
			       mx = a.kl_each[a.count - 1];
			json_object_set_new(o, "ref", json_string(opt.kld));
			json_object_set_new(o, "ref_ppl", json_real(R->ref_ppl));
			json_object_set_new(o, "ref_ppl_err", json_real(R->ref_ppl_err));
			json_object_set_new(o, "dppl", json_real(R->ppl - R->ref_ppl));
			json_object_set_new(o, "kld", json_real(R->kld));
			json_object_set_new(o, "kld_err", json_real(R->kld_err));
			json_object_set_new(o, "kld_median", json_real(med));
			json_object_set_new(o, "kld_p99", json_real(p99));
			json_object_set_new(o, "kld_max", json_real(mx));
			json_object_set_new(o, "top1_pct", json_real(R->top1));
			if (!opt.json) {
				const char *p = pre ? pre : "", *sep = pre ? ": " : "";
				printf("%s%sref ppl = %.4f ± %.4f\n", p, sep, R->ref_ppl, R->ref_ppl_err);
				printf("%s%sΔppl = %+.4f\n", p, sep, R->ppl - R->ref_ppl);
				printf("%s%skld = %.6f ± %.6f (median %.6f, 99%% %.6f, max %.6f)\n", p,
				       sep, R->kld, R->kld_err, med, p99, mx);
				printf("%s%stop-1 = %.2f%%\n", p, sep, R->top1);
			}
		}
		if (opt.json) {
			char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
			puts(txt);
			free(txt);
		}
		fflush(stdout);
		json_decref(o);
		free(a.kl_each);
		free(ent);
		free(win_start);
		free(tokens);
		tok_vocab_free(v);
		for (int j = ns - 1; j >= 0; j--)
			scorer_close(&s[j]);
	}
	pool_free(pool);
	if (opt.svg) {
		int np = opt.kld ? 3 : 1;
		svg_panel panels[3];
		memset(panels, 0, sizeof panels);
		const char **series = slm_xcalloc((size_t)opt.nmodels, sizeof *series);
		for (int p = 0; p < np; p++) {
			panels[p].bars = slm_xcalloc((size_t)opt.nmodels, sizeof *panels[p].bars);
			panels[p].nbars = opt.nmodels;
		}
		snprintf(panels[0].title, sizeof panels[0].title, "perplexity, context %d", n_ctx);
		panels[0].ylabel = "perplexity (lower is better)";
		if (opt.kld) {
			char ref[64];
			perf_label(opt.kld, ref, sizeof ref);
			snprintf(panels[1].title, sizeof panels[1].title, "KL divergence from %s", ref);
			panels[1].ylabel = "mean KLD (lower is better)";
			snprintf(panels[2].title, sizeof panels[2].title, "top-1 agreement with %s", ref);
			panels[2].ylabel = "% of tokens";
		}
		for (int mi = 0; mi < opt.nmodels; mi++) {
			series[mi] = res[mi].label;
			panels[0].bars[mi] = (svg_bar){ mi, res[mi].ppl, res[mi].ppl_err };
			if (opt.kld) {
				panels[1].bars[mi] = (svg_bar){ mi, res[mi].kld, res[mi].kld_err };
				panels[2].bars[mi] = (svg_bar){ mi, res[mi].top1, 0 };
			}
		}
		char title[128];
		char in[64];
		snprintf(title, sizeof title, "slm-perf ppl: %s", perf_label(src, in, sizeof in));
		svg_write(opt.svg, title, panels, np, series, opt.nmodels);
		for (int p = 0; p < np; p++)
			free(panels[p].bars);
		free(series);
	}
	free(res);
	return 0;
}

/* ---- multiple choice ---- */

typedef struct mc_item {
	char *ctx;
	char **choices;
	int nchoices, answer;
} mc_item;

static mc_item *mc_read(const char *path, int *n)
{
	slm_err err;
	char *data;
	size_t len;
	if (slm_read_file(path, &data, &len, &err) < 0)
		slm_die_err(&err);
	mc_item *items = NULL;
	*n = 0;
	int line = 0;
	for (char *p = data, *end; p < data + len; p = end + 1) {
		end = memchr(p, '\n', (size_t)(data + len - p));
		if (!end)
			end = data + len;
		line++;
		size_t l = (size_t)(end - p);
		size_t sp = strspn(p, " \t\r");
		if (sp >= l)
			continue;
		json_error_t je;
		json_t *o = json_loadb(p, l, 0, &je);
		if (!o)
			slm_die(EX_DATAERR, "%s:%d: %s", path, line, je.text);
		json_t *c = json_object_get(o, "question");
		if (!c)
			c = json_object_get(o, "ctx");
		json_t *ch = json_object_get(o, "choices"), *ans = json_object_get(o, "answer");
		if (!json_is_string(c))
			slm_die(EX_DATAERR, "%s:%d: no \"question\" or \"ctx\" string", path, line);
		if (!json_is_array(ch) || json_array_size(ch) < 1)
			slm_die(EX_DATAERR, "%s:%d: no \"choices\" array", path, line);
		if (!json_is_integer(ans) || json_integer_value(ans) < 0 ||
		    (size_t)json_integer_value(ans) >= json_array_size(ch))
			slm_die(EX_DATAERR, "%s:%d: \"answer\" is not an index into \"choices\"",
				path, line);
		items = slm_xrealloc(items, (size_t)(*n + 1) * sizeof *items);
		mc_item *it = &items[(*n)++];
		it->ctx = slm_xstrdup(json_string_value(c));
		it->nchoices = (int)json_array_size(ch);
		it->answer = (int)json_integer_value(ans);
		it->choices = slm_xcalloc((size_t)it->nchoices, sizeof *it->choices);
		for (int k = 0; k < it->nchoices; k++) {
			const char *s = json_string_value(json_array_get(ch, k));
			if (!s)
				slm_die(EX_DATAERR, "%s:%d: choice %d is not a string", path, line, k);
			it->choices[k] = slm_xstrdup(s);
		}
		json_decref(o);
	}
	free(data);
	if (*n == 0)
		slm_die(EX_DATAERR, "%s: no questions", path);
	return items;
}

/* A choice's tokens: the context's, then the continuation's. */
typedef struct mc_seq {
	int32_t *tok;
	int n, nctx;
} mc_seq;

/* lm-evaluation-harness's _encode_pair: trailing white space of the
 * context moves to the continuation (" " + choice); the continuation's
 * tokens are those of context + continuation after the context's. */
static mc_seq mc_encode(const tok_vocab *v, const mc_item *it, int k, const char *path, int qi)
{
	slm_err err;
	size_t cl = strlen(it->ctx);
	while (cl > 0 && strchr(" \t\n\r\f\v", it->ctx[cl - 1]))
		cl--;
	size_t wl = strlen(it->ctx) + 1 + strlen(it->choices[k]);
	char *whole = slm_xmalloc(wl + 1);
	snprintf(whole, wl + 1, "%s %s", it->ctx, it->choices[k]);
	int32_t *ct, *wt;
	size_t nc, nw;
	if (tok_encode(v, it->ctx, cl, TOK_ADD_SPECIAL, &ct, &nc, &err) < 0 ||
	    tok_encode(v, whole, wl, TOK_ADD_SPECIAL, &wt, &nw, &err) < 0)
		slm_die(err.code, "%s: question %d: %s", path, qi + 1, err.msg);
	if (nc == 0)
		slm_die(EX_DATAERR, "%s: question %d: empty context (and no BOS to start from)",
			path, qi + 1);
	if (nw <= nc)
		slm_die(EX_DATAERR, "%s: question %d: choice %d adds no token", path, qi + 1, k);
	mc_seq s = { slm_xmalloc(nw * sizeof(int32_t)), (int)nw, (int)nc };
	memcpy(s.tok, ct, nc * sizeof *ct);
	memcpy(s.tok + nc, wt + nc, (nw - nc) * sizeof *wt);
	free(ct);
	free(wt);
	free(whole);
	return s;
}

typedef struct mc_acc {
	const mc_seq *seq;
	double *score;
	int n_vocab;
} mc_acc;

static void mc_rows(void *arg, const slm_entry *e, int n, float *const *lg)
{
	mc_acc *a = arg;
	for (int i = 0; i < n; i++) {
		if (e[i].logits < 0)
			continue;
		const float *row = lg[0] + (size_t)e[i].logits * (size_t)a->n_vocab;
		int32_t target = a->seq[e[i].slot].tok[e[i].pos + 1];
		a->score[e[i].slot] += score_logprob(row, a->n_vocab, target);
	}
}

static int best_of(const double *x, int n)
{
	int b = 0;
	for (int i = 1; i < n; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

int mc_main(void)
{
	if (!opt.input)
		slm_die(EX_USAGE, "mc: no question FILE");
	if (!opt.batch)
		opt.batch = 512;
	int nq;
	mc_item *items = mc_read(opt.input, &nq);
	int max_choices = 0;
	for (int q = 0; q < nq; q++)
		if (items[q].nchoices > max_choices)
			max_choices = items[q].nchoices;
	slm_pool *pool = pool_new(opt.threads[0], 1);
	for (int mi = 0; mi < opt.nmodels; mi++) {
		char label[64];
		perf_label(opt.models[mi], label, sizeof label);
		scorer s;
		memset(&s, 0, sizeof s);
		perf_load(&s.pm, opt.models[mi]);
		tok_vocab *v = perf_vocab(&s.pm);
		/* tokenize everything first: the longest sequence sizes the cache */
		mc_seq **seqs = slm_xcalloc((size_t)nq, sizeof *seqs);
		int max_len = 1;
		for (int q = 0; q < nq; q++) {
			seqs[q] = slm_xcalloc((size_t)items[q].nchoices, sizeof **seqs);
			for (int k = 0; k < items[q].nchoices; k++) {
				seqs[q][k] = mc_encode(v, &items[q], k, opt.input, q);
				if (seqs[q][k].n > max_len)
					max_len = seqs[q][k].n;
			}
		}
		tok_vocab_free(v);
		int max_batch = opt.batch;
		scorer_alloc(&s, pool, max_choices, max_len, max_batch);
		int n_vocab = s.n_vocab;
		slm_entry *ent = slm_xmalloc((size_t)max_choices * (size_t)max_len * sizeof *ent);
		double *score = slm_xmalloc((size_t)max_choices * sizeof *score);
		double *norm = slm_xmalloc((size_t)max_choices * sizeof *norm);
		int correct = 0, correct_norm = 0;
		json_t *loglik = json_array();
		for (int q = 0; q < nq; q++) {
			perf_progress("mc: %s: question %d/%d", label, q + 1, nq);
			const mc_item *it = &items[q];
			long n = 0;
			for (int k = 0; k < it->nchoices; k++) {
				const mc_seq *sq = &seqs[q][k];
				n += score_seq_entries(ent + n, sq->tok, sq->n, k, sq->nctx - 1, sq->n - 1);
				score[k] = 0;
			}
			mc_acc a = { seqs[q], score, n_vocab };
			run_entries(&s, 1, ent, n, max_batch, mc_rows, &a);
			json_t *row = json_array();
			for (int k = 0; k < it->nchoices; k++) {
				norm[k] = score[k] / (double)(strlen(it->choices[k]) ? strlen(it->choices[k]) : 1);
				json_array_append_new(row, json_real(score[k]));
			}
			json_array_append_new(loglik, row);
			int pick = best_of(score, it->nchoices), pick_norm = best_of(norm, it->nchoices);
			correct += pick == it->answer;
			correct_norm += pick_norm == it->answer;
			if (opt.verbose && !opt.json)
				fprintf(stderr, "%s: %s: question %d: answer %d, acc pick %d, acc_norm pick %d\n",
					slm_progname, label, q + 1, it->answer, pick, pick_norm);
		}
		perf_progress_end();
		double acc = (double)correct / nq, accn = (double)correct_norm / nq;
		double acc_err = nq > 1 ? sqrt(acc * (1 - acc) / (nq - 1)) : 0;
		double accn_err = nq > 1 ? sqrt(accn * (1 - accn) / (nq - 1)) : 0;
		if (opt.json) {
			json_t *o = json_pack("{s:s, s:i, s:f, s:f, s:f, s:f}", "model",
					      opt.models[mi] ? opt.models[mi] : "", "questions", nq,
					      "acc", acc, "acc_err", acc_err, "acc_norm", accn,
					      "acc_norm_err", accn_err);
			if (opt.f32_act)
				json_object_set_new(o, "f32_act", json_true());
			if (opt.verbose)
				json_object_set(o, "loglik", loglik);
			char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
			puts(txt);
			free(txt);
			json_decref(o);
		} else {
			const char *pre = opt.nmodels > 1 ? label : "", *sep = opt.nmodels > 1 ? ": " : "";
			printf("%s%sacc = %.4f ± %.4f (%d/%d)\n", pre, sep, acc, acc_err, correct, nq);
			printf("%s%sacc_norm = %.4f ± %.4f (%d/%d)\n", pre, sep, accn, accn_err,
			       correct_norm, nq);
		}
		fflush(stdout);
		json_decref(loglik);
		free(ent);
		free(score);
		free(norm);
		for (int q = 0; q < nq; q++) {
			for (int k = 0; k < items[q].nchoices; k++)
				free(seqs[q][k].tok);
			free(seqs[q]);
		}
		free(seqs);
		scorer_close(&s);
	}
	pool_free(pool);
	for (int q = 0; q < nq; q++) {
		for (int k = 0; k < items[q].nchoices; k++)
			free(items[q].choices[k]);
		free(items[q].choices);
		free(items[q].ctx);
	}
	free(items);
	return 0;
}
