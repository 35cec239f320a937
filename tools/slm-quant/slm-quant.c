/*
 * slm-quant - quantize a bundle's weights into GGUF block types (Q8_0 ...
 * Q2_K, F16, BF16) with llama.cpp's recipes (Q4_K_M, ...), optionally
 * weighted by an importance matrix and with activation-aware scales folded
 * into the norms. Without the scales, byte-identical to llama.cpp's
 * quantizer on the same f32 weights. Also measures importance matrices.
 */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "cli.h"
#include "imatrix.h"
#include "config.h"
#include "kern/kern.h"
#include "blas.h"
#include "model.h"
#include "pool.h"
#include "quant.h"
#include "stream.h"
#include "util.h"

static const char usage_text[] =
	"usage: slm-quant TYPE [IN.slm] [-o OUT.slm] [-t N] [--keep GLOB=TYPE]...\n"
	"                 [--pure] [--imatrix FILE | --calib STREAM [-c N] [--chunks N]]\n"
	"                 [--awq | --no-awq | --awq-alpha A] [--layout tile16|plain] [--gzip]\n"
	"                 [-f] [-q] [-v] [--json]\n"
	"       slm-quant --calib STREAM [-c N] [--chunks N] [--format dat|gguf] [-t N]\n"
	"                 [IN.slm] [-o IMATRIX]\n"
	"       slm-quant -h | --help | --version\n";

typedef struct keep_rule {
	const char *glob;
	const slm_dtype *type; /* NULL: leave the tensor as it is */
} keep_rule;

static struct {
	const char *out, *imatrix, *calib;
	keep_rule *keep;
	int nkeep, threads, pure, gzip, force, quiet, verbose, json, ctx, chunks;
	int awq;                 /* -1: for 4-bit types when there are importances */
	float awq_alpha;         /* >= 0: this alpha instead of the search */
	int format;              /* -1: from the output's name */
	int plain;               /* --layout plain: no tile16 matrices */
} opt = { .awq = -1, .format = -1, .awq_alpha = -1 };

/* ---- the plan ---- */

typedef struct job {
	const slm_tensor *src;
	const slm_dtype *type;   /* written type */
	const float *imat;       /* NULL or importances */
	size_t imat_n;
	int fallback, requant;
	int copy;                /* already in its type: bytes copied */
	/* activation-aware scales: the row is quantized as
	 * w[j] * col_scale[j] / row_div[r], with importances imat_scaled */
	const float *col_scale;  /* NULL or ne[0] (its group's) */
	const float *row_div;    /* NULL or one per row */
	float *imat_scaled;
	float *f32;              /* NULL, or the tensor's new f32 data (a
	                            norm with the inverse scales folded in) */
	int awq_group;           /* -1, or the group that scaled it */
} job;

static const char *shown_path(const char *in)
{
	return strcmp(in, "-") ? in : "standard input";
}

static int hparam_int(json_t *man, const char *key)
{
	json_t *v = json_object_get(json_object_get(man, "hparams"), key);
	return json_is_integer(v) ? (int)json_integer_value(v) : 0;
}

/* The model facts the recipes use, from the manifest. */
static quant_model model_facts(json_t *man)
{
	quant_model m = {
		.n_layer = hparam_int(man, "block_count"),
		.n_head = hparam_int(man, "attention.head_count"),
		.n_head_kv = hparam_int(man, "attention.head_count_kv"),
		.n_expert = hparam_int(man, "expert_count"),
		.arch = json_string_value(json_object_get(man, "arch")),
	};
	if (m.n_head_kv == 0)
		m.n_head_kv = m.n_head;
	return m;
}

static job *make_plan(const slm_bundle *b, const quant_recipe *r,
		      const slm_imatrix *im, const char *shown)
{
	size_t n = bundle_n_tensors(b);
	job *jobs = slm_xcalloc(n ? n : 1, sizeof *jobs);
	const char **names = slm_xcalloc(n ? n : 1, sizeof *names);
	int *nd = slm_xcalloc(n ? n : 1, sizeof *nd);
	uint64_t(*ne)[4] = slm_xcalloc(n ? n : 1, sizeof *ne);
	const slm_dtype **types = slm_xcalloc(n ? n : 1, sizeof *types);
	int *fb = slm_xcalloc(n ? n : 1, sizeof *fb);
	for (size_t i = 0; i < n; i++) {
		const slm_tensor *t = bundle_tensor_at(b, i);
		names[i] = t->name;
		nd[i] = t->ndim;
		for (int d = 0; d < 4; d++)
			ne[i][d] = d < t->ndim ? t->ne[d] : 1;
	}
	quant_model m = model_facts(bundle_manifest(b));
	quant_plan(r, &m, n, names, nd, (const uint64_t(*)[4])ne, opt.pure, im != NULL,
		   types, fb);
	const char *requant = NULL;
	for (size_t i = 0; i < n; i++) {
		job *j = &jobs[i];
		const slm_tensor *t = bundle_tensor_at(b, i);
		j->src = t;
		j->awq_group = -1;
		j->type = types[i];
		j->fallback = fb[i];
		/* a block type is for the matrices the recipe quantizes; keep,
		 * f32, f16 and bf16 apply to any tensor */
		for (int k = 0; k < opt.nkeep; k++)
			if (fnmatch(opt.keep[k].glob, t->name, 0) == 0 &&
			    (types[i] || !opt.keep[k].type || opt.keep[k].type->block_elems == 1)) {
				j->type = opt.keep[k].type;
				j->fallback = 0;
				if (j->type) {
					const slm_dtype *f = quant_fallback(j->type, t->ne[0]);
					j->fallback = f != j->type;
					j->type = f;
				}
				break;
			}
		if (!kern_supported(t->dtype))
			slm_die(EX_DATAERR, "%s: tensor '%s': type %s cannot be read", shown,
				t->name, t->dtype->name);
		if (!j->type) /* kept as it is, or as f32 when it is quantized */
			j->type = t->dtype->block_elems == 1 ? t->dtype : dtype_by_name("f32");
		/* as llama.cpp: a quantized tensor already in its type is copied */
		j->copy = j->type == t->dtype && t->dtype->block_elems > 1;
		if (!j->copy && t->dtype->block_elems > 1) {
			j->requant = 1;
			requant = t->dtype->name;
		}
		if (im && !j->copy && quant_uses_imatrix(j->type)) {
			const char *src = opt.imatrix ? opt.imatrix : opt.calib;
			j->imat = imatrix_find(im, t->name, &j->imat_n);
			uint64_t e2 = t->ndim > 2 ? t->ne[2] : 1;
			if (j->imat && j->imat_n != t->ne[0] && j->imat_n != t->ne[0] * e2) {
				if (strcmp(t->name, "token_embd.weight"))
					slm_die(EX_DATAERR,
						"%s: tensor '%s': %zu importances for %llu columns",
						src, t->name, j->imat_n,
						(unsigned long long)t->ne[0]);
				j->imat = NULL;
			}
			if (!j->imat && opt.verbose)
				slm_warn("%s: no importances for %s", src, t->name);
		}
	}
	if (requant && !opt.quiet)
		slm_warn("%s: already quantized (%s): dequantizing first; "
			 "requantizing loses quality", shown, requant);
	free(names);
	free(nd);
	free(ne);
	free(types);
	free(fb);
	return jobs;
}

/* ---- activation-aware scales (AWQ) ---- */

/* The architectures whose blocks are sequential pre-norm ones, as slm runs
 * them: attn_norm's output feeds only q, k and v (or the fused qkv),
 * ffn_norm's only gate and up, and ffn_down reads act(gate) * up; there
 * dividing the norm weight (or ffn_up's rows) by s undoes W diag(s). */
static const char *const awq_archs[] = { "llama", "qwen2", "qwen3", "gemma3", "smollm3",
					 "phi3" };

#define AWQ_MAX_MATS 4
#define AWQ_SAMPLE_ROWS 512 /* rows of each matrix the search quantizes */

typedef struct awq_group {
	char input[96];          /* what is divided by s: a norm or ffn_up */
	int mat[AWQ_MAX_MATS], nm;
	const float *imp[AWQ_MAX_MATS]; /* their importances */
	int norm;                /* job of the norm divided by s, or -1 */
	int up;                  /* job whose rows are divided by s, or -1 */
	int64_t n;               /* columns */
	float *s;
	float alpha;
	double err, err0;
} awq_group;

typedef struct awq_ctx {
	job *jobs;
	awq_group *g;
	int ng, phase;           /* phase 0: the ffn_down groups, 1: the others */
} awq_ctx;

static int find_job(const job *jobs, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(jobs[i].src->name, name))
			return (int)i;
	return -1;
}

static int is_4bit(const slm_dtype *t)
{
	return !strcmp(t->name, "q4_0") || !strcmp(t->name, "q4_1") || !strcmp(t->name, "q4_k");
}

/* Can matrix job j be scaled: a 2-D matrix of n columns
 * with importances for them (*imp). */
static int awq_mat_ok(const job *j, int64_t n, const slm_imatrix *im, const float **imp)
{
	const slm_tensor *t = j->src;
	size_t ni = 0;
	*imp = imatrix_find(im, t->name, &ni);
	return !j->copy && t->ndim == 2 && (int64_t)t->ne[0] == n && *imp && ni == (size_t)n;
}

/* Add a group of the matrices named blk.L.<mats> reading the output of
 * input (a norm, or ffn_up for ffn_down) if all can be scaled. */
static void awq_add(awq_group **g, int *ng, job *jobs, size_t n, const slm_imatrix *im,
		    int layer, const char *input, int input_is_norm, const char *const *mats)
{
	char name[128];
	awq_group a = { .norm = -1, .up = -1 };
	snprintf(a.input, sizeof a.input, "blk.%d.%s.weight", layer, input);
	int in = find_job(jobs, n, a.input), want = opt.awq == 1;
	if (in < 0)
		return;
	for (int k = 0; mats[k]; k++) {
		snprintf(name, sizeof name, "blk.%d.%s.weight", layer, mats[k]);
		int m = find_job(jobs, n, name);
		if (m < 0)
			continue;
		if (a.nm == 0)
			a.n = (int64_t)jobs[m].src->ne[0];
		if (!awq_mat_ok(&jobs[m], a.n, im, &a.imp[a.nm]) || jobs[m].awq_group >= 0)
			return;
		a.mat[a.nm++] = m;
		want |= is_4bit(jobs[m].type);
	}
	if (a.nm == 0 || !want)
		return;
	const job *ij = &jobs[in];
	const slm_tensor *it = ij->src;
	if (input_is_norm) {
		/* a float vector of n, written as f32 */
		if (it->ndim != 1 || (int64_t)it->ne[0] != a.n || it->dtype->block_elems != 1 ||
		    ij->type->block_elems != 1)
			return;
		a.norm = in;
	} else {
		/* ffn_up: its rows are ffn_down's columns; gate and up apart */
		snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", layer);
		if (find_job(jobs, n, name) < 0 || it->ndim != 2 || (int64_t)it->ne[1] != a.n ||
		    ij->copy)
			return;
		a.up = in;
	}
	for (int k = 0; k < a.nm; k++)
		jobs[a.mat[k]].awq_group = *ng;
	*g = slm_xrealloc(*g, (size_t)(*ng + 1) * sizeof **g);
	(*g)[(*ng)++] = a;
}

/* Up to AWQ_SAMPLE_ROWS evenly spaced rows of job j as f32 (*rows of
 * them) and, when div is given, their entries of div. */
static float *sample_rows(const job *j, const float *div, int64_t *rows, float **div_out)
{
	const slm_tensor *t = j->src;
	int64_t n = (int64_t)t->ne[0], all = (int64_t)t->ne[1];
	int64_t k = all < AWQ_SAMPLE_ROWS ? all : AWQ_SAMPLE_ROWS;
	const kern_mat km = tensor_kmat(t);
	float *w = slm_xmalloc((size_t)(k * n) * sizeof *w);
	*div_out = div ? slm_xmalloc((size_t)k * sizeof **div_out) : NULL;
	for (int64_t i = 0; i < k; i++) {
		int64_t r = i * all / k;
		kern_mat_dequant(&km, r, r + 1, w + i * n);
		if (div)
			(*div_out)[i] = div[r];
	}
	*rows = k;
	return w;
}

static void awq_part(void *arg, int ith, int nth)
{
	awq_ctx *c = arg;
	for (int gi = ith; gi < c->ng; gi += nth) {
		awq_group *g = &c->g[gi];
		if ((g->up >= 0) != (c->phase == 0))
			continue;
		quant_awq_mat m[AWQ_MAX_MATS];
		float *w[AWQ_MAX_MATS], *div[AWQ_MAX_MATS];
		for (int k = 0; k < g->nm; k++) {
			const job *j = &c->jobs[g->mat[k]];
			m[k] = (quant_awq_mat){ .type = j->type, .imp = g->imp[k] };
			w[k] = sample_rows(j, j->row_div, &m[k].rows, &div[k]);
			m[k].w = w[k];
			m[k].row_div = div[k];
		}
		g->s = slm_xmalloc((size_t)g->n * sizeof *g->s);
		if (opt.awq_alpha >= 0) {
			g->alpha = opt.awq_alpha;
			quant_awq_scales(g->n, m[0].imp, g->alpha, g->s);
			g->err = g->err0 = 0;
			for (int k = 0; k < g->nm; k++) {
				g->err += quant_awq_error(&m[k], g->n, g->s);
				g->err0 += quant_awq_error(&m[k], g->n, NULL);
			}
		} else {
			g->alpha = quant_awq_search(m, g->nm, g->n, m[0].imp, g->s, &g->err,
						    &g->err0);
		}
		for (int k = 0; k < g->nm; k++) {
			free(w[k]);
			free(div[k]);
		}
	}
}

/* Find the groups, search their scales (ffn_down's first: they divide
 * ffn_up's rows, which gate/up's search must see) and fold them: the
 * matrices' columns times s, the norm (or ffn_up's rows) divided by s. */
static awq_group *awq_plan(const slm_bundle *b, job *jobs, const slm_imatrix *im,
			   slm_pool *pool, int *ngroups)
{
	static const char *const attn[] = { "attn_q", "attn_k", "attn_v", "attn_qkv", NULL };
	static const char *const ffn[] = { "ffn_gate", "ffn_up", NULL };
	static const char *const down[] = { "ffn_down", NULL };
	size_t n = bundle_n_tensors(b);
	awq_group *g = NULL;
	int ng = 0;
	*ngroups = 0;
	quant_model m = model_facts(bundle_manifest(b));
	int known = 0;
	for (size_t i = 0; m.arch && i < sizeof awq_archs / sizeof awq_archs[0]; i++)
		known |= !strcmp(m.arch, awq_archs[i]);
	if (!known) {
		if (opt.awq == 1 && !opt.quiet)
			slm_warn("--awq: architecture %s: no scales (not known to allow folding "
				 "them into its norms)", m.arch ? m.arch : "unknown");
		return NULL;
	}
	for (int l = 0; l < m.n_layer; l++) {
		awq_add(&g, &ng, jobs, n, im, l, "ffn_up", 0, down);
		awq_add(&g, &ng, jobs, n, im, l, "attn_norm", 1, attn);
		awq_add(&g, &ng, jobs, n, im, l, "ffn_norm", 1, ffn);
	}
	awq_ctx c = { .jobs = jobs, .g = g, .ng = ng };
	for (c.phase = 0; c.phase < 2; c.phase++) {
		pool_run(pool, awq_part, &c);
		for (int i = 0; i < ng; i++) {
			if ((g[i].up >= 0) != (c.phase == 0))
				continue;
			if (g[i].up >= 0)
				jobs[g[i].up].row_div = g[i].s;
			if (g[i].alpha == 0.0f)
				continue; /* s = 1: nothing to fold */
			for (int k = 0; k < g[i].nm; k++) {
				job *j = &jobs[g[i].mat[k]];
				j->col_scale = g[i].s;
				if (!j->imat)
					continue; /* a type that does not use them */
				j->imat_scaled = slm_xmalloc((size_t)g[i].n * sizeof(float));
				for (int64_t x = 0; x < g[i].n; x++)
					j->imat_scaled[x] = j->imat[x] / (g[i].s[x] * g[i].s[x]);
			}
			if (g[i].norm >= 0) {
				job *nj = &jobs[g[i].norm];
				nj->f32 = slm_xmalloc((size_t)g[i].n * sizeof(float));
				const kern_mat nk = tensor_kmat(nj->src);
				kern_mat_dequant(&nk, 0, nk.nrows, nj->f32);
				quant_awq_fold(g[i].n, g[i].s, nj->f32);
				nj->type = dtype_by_name("f32");
			}
		}
		/* a row divisor of 1 everywhere changes nothing */
		for (int i = 0; i < ng; i++)
			if (g[i].up >= 0 && g[i].alpha == 0.0f)
				jobs[g[i].up].row_div = NULL;
	}
	*ngroups = ng;
	return g;
}

static void awq_report(const awq_group *g, const job *jobs)
{
	const char *names[AWQ_MAX_MATS];
	for (int k = 0; k < g->nm; k++)
		names[k] = jobs[g->mat[k]].src->name;
	if (opt.json) {
		json_t *t = json_array();
		for (int k = 0; k < g->nm; k++)
			json_array_append_new(t, json_string(names[k]));
		json_t *o = json_pack("{s:s, s:o, s:f, s:f, s:f}", "awq", g->input, "tensors", t,
				      "alpha", (double)g->alpha, "error", g->err, "error_alpha0",
				      g->err0);
		char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
		fprintf(stderr, "%s\n", s);
		free(s);
		json_decref(o);
	} else {
		fprintf(stderr, "%s: awq %-26s alpha %.1f  weighted error %.4e (alpha 0: %.4e):",
			slm_progname, g->input, (double)g->alpha, g->err, g->err0);
		for (int k = 0; k < g->nm; k++)
			fprintf(stderr, " %s", names[k]);
		fputc('\n', stderr);
	}
}

/* ---- quantizing one tensor on the pool ---- */

#define MAX_THREADS 64

typedef struct work {
	const job *j;
	uint8_t *out;
	int64_t n, rows;
	int stats;
	/* per thread */
	float *buf[MAX_THREADS], *tmp[MAX_THREADS], *scaled[MAX_THREADS];
	double sse[MAX_THREADS], maxerr[MAX_THREADS];
	int64_t bad_row[MAX_THREADS], bad_col[MAX_THREADS];
} work;

static void quant_part(void *arg, int ith, int nth)
{
	work *w = arg;
	const job *j = w->j;
	const slm_tensor *t = j->src;
	long r0, r1;
	pool_split(w->rows, ith, nth, &r0, &r1);
	size_t in_rb = (size_t)(w->n / t->dtype->block_elems) * t->dtype->block_bytes;
	size_t out_rb = (size_t)(w->n / j->type->block_elems) * j->type->block_bytes;
	float *x = w->buf[ith];
	w->sse[ith] = 0;
	w->maxerr[ith] = 0;
	w->bad_row[ith] = -1;
	uint64_t rows_per_mat = t->ndim > 1 ? t->ne[1] : 1;
	const kern_mat km = tensor_kmat(t);
	for (long r = r0; r < r1; r++) {
		const uint8_t *src = (const uint8_t *)t->data + (size_t)r * in_rb;
		uint8_t *dst = w->out + (size_t)r * out_rb;
		const float *qw = j->imat_scaled ? j->imat_scaled : j->imat;
		if (qw && j->imat_n != (size_t)w->n)
			qw += (size_t)((uint64_t)r / rows_per_mat) * (size_t)w->n;
		if (j->f32)
			x = j->f32 + r * w->n;
		else if (t->dtype->ggml_id == 0)
			x = (float *)src; /* f32 in place (rows are 4-byte aligned) */
		else
			kern_mat_dequant(&km, r, r + 1, x = w->buf[ith]);
		int64_t c = quant_find_nonfinite(x, w->n);
		if (c >= 0) {
			w->bad_row[ith] = r;
			w->bad_col[ith] = c;
			return;
		}
		if (!j->col_scale && !j->row_div) {
			quant_rows(j->type, x, dst, 1, w->n, qw);
			if (w->stats)
				quant_error(j->type, x, dst, w->n, w->tmp[ith], &w->sse[ith],
					    &w->maxerr[ith]);
			continue;
		}
		/* scaled: quantize w * s / d, measure the error in w's units */
		float d = j->row_div ? j->row_div[r] : 1.0f, *xs = w->scaled[ith];
		quant_awq_apply(w->n, x, j->col_scale, d, xs);
		quant_rows(j->type, xs, dst, 1, w->n, qw);
		if (w->stats) {
			float *y = w->tmp[ith];
			kern_dequant(j->type, dst, y, w->n);
			for (int64_t k = 0; k < w->n; k++) {
				double e = fabs((double)y[k] * d / (j->col_scale ? j->col_scale[k] : 1.0f) -
						(double)x[k]);
				w->sse[ith] += e * e;
				if (e > w->maxerr[ith])
					w->maxerr[ith] = e;
			}
		}
	}
}

typedef struct stats {
	double sse, maxerr, sumsq;
} stats;

/* Fill out (j->type bytes) from the source tensor; NaN/Inf is an error. */
static int quantize_tensor(slm_pool *pool, const job *j, uint8_t *out, int want_stats,
			   stats *st, const char *shown, slm_err *err)
{
	const slm_tensor *t = j->src;
	work *w = slm_xcalloc(1, sizeof *w);
	w->j = j;
	w->out = out;
	w->n = (int64_t)t->ne[0];
	w->rows = (int64_t)(t->nelems / t->ne[0]);
	w->stats = want_stats;
	int nth = pool_size(pool);
	for (int i = 0; i < nth; i++) {
		w->buf[i] = slm_xmalloc((size_t)w->n * sizeof(float));
		w->tmp[i] = want_stats ? slm_xmalloc((size_t)w->n * sizeof(float)) : NULL;
		w->scaled[i] = j->col_scale || j->row_div
			? slm_xmalloc((size_t)w->n * sizeof(float)) : NULL;
	}
	pool_run(pool, quant_part, w);
	int rc = 0;
	memset(st, 0, sizeof *st);
	for (int i = 0; i < nth; i++) {
		if (w->bad_row[i] >= 0 && rc == 0) {
			const float *row = NULL;
			if (j->f32)
				row = j->f32 + w->bad_row[i] * w->n;
			else if (t->dtype->ggml_id == 0)
				row = (const float *)t->data + w->bad_row[i] * w->n;
			else
				row = w->buf[i];
			float v = row[w->bad_col[i]];
			rc = slm_seterr(err, EX_DATAERR,
					"%s: tensor '%s': %s at row %lld, column %lld", shown,
					t->name, isnan(v) ? "NaN" : "infinity",
					(long long)w->bad_row[i], (long long)w->bad_col[i]);
		}
		st->sse += w->sse[i];
		if (w->maxerr[i] > st->maxerr)
			st->maxerr = w->maxerr[i];
		free(w->buf[i]);
		free(w->tmp[i]);
		free(w->scaled[i]);
	}
	free(w);
	return rc;
}

/* ---- output ---- */

static json_t *output_manifest(const slm_bundle *b, const quant_recipe *r,
				const awq_group *g, int ng)
{
	json_t *man = json_deep_copy(bundle_manifest(b));
	json_object_del(man, "tensors");
	json_object_del(man, "members");
	json_t *prov = json_object_get(man, "provenance");
	if (!json_is_object(prov)) {
		prov = json_object();
		json_object_set_new(man, "provenance", prov);
	}
	json_t *q = json_object();
	json_object_set_new(q, "recipe", json_string(r->name));
	json_object_set_new(q, "type", json_string(r->base));
	json_object_set_new(q, "pure", json_boolean(opt.pure || r->pure));
	json_object_set_new(q, "tool", json_string("slm-quant " PACKAGE_VERSION));
	const char *imf = opt.imatrix ? opt.imatrix : opt.calib;
	if (imf) {
		const char *base = strrchr(imf, '/');
		json_object_set_new(q, opt.imatrix ? "imatrix" : "calibration",
				    json_string(base ? base + 1 : imf));
	}
	if (ng) {
		/* the scales folded into norms (or ffn_up), by what was divided */
		json_t *a = json_object();
		for (int i = 0; i < ng; i++)
			json_object_set_new(a, g[i].input, json_real((double)g[i].alpha));
		json_object_set_new(q, "awq_alpha", a);
	}
	if (opt.nkeep) {
		json_t *k = json_array();
		for (int i = 0; i < opt.nkeep; i++) {
			char s[512];
			snprintf(s, sizeof s, "%s=%s", opt.keep[i].glob,
				 opt.keep[i].type ? opt.keep[i].type->name : "keep");
			json_array_append_new(k, json_string(s));
		}
		json_object_set_new(q, "keep", k);
	}
	json_object_set_new(prov, "quantization", q);
	/* what GGUF readers look for: general.file_type (a llama_ftype) */
	json_t *gen = json_object_get(prov, "general");
	if (!json_is_object(gen)) {
		gen = json_object();
		json_object_set_new(prov, "general", gen);
	}
	if (r->ftype >= 0)
		json_object_set_new(gen, "file_type", json_integer(r->ftype));
	json_object_set_new(gen, "quantization_version", json_integer(2));
	json_t *types = json_object_get(man, "gguf_types");
	if (json_is_object(types)) {
		json_object_set_new(types, "general.file_type", json_string("uint32"));
		json_object_set_new(types, "general.quantization_version", json_string("uint32"));
	}
	return man;
}

static int is_tensor_member(const slm_bundle *b, const char *name)
{
	for (size_t i = 0; i < bundle_n_tensors(b); i++)
		if (!strcmp(bundle_tensor_at(b, i)->member->name, name))
			return 1;
	return !strcmp(name, SLM_MANIFEST_MEMBER) || !strcmp(name, SLM_MANIFEST_SUM_MEMBER);
}

static void report(const job *j, const awq_group *g, uint64_t bytes, const stats *st,
		   double secs)
{
	const slm_tensor *t = j->src;
	double bpw = 8.0 * (double)bytes / (double)t->nelems;
	double rmse = sqrt(st->sse / (double)t->nelems);
	if (opt.json) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:I, s:I, s:f, s:f, s:b, s:b, s:f}",
				      "tensor", t->name, "from", t->dtype->name, "type",
				      j->type->name, "bpw", bpw, "bytes_in", (json_int_t)t->size,
				      "bytes_out", (json_int_t)bytes, "rmse", rmse, "max_error",
				      st->maxerr, "fallback", j->fallback, "imatrix",
				      j->imat != NULL, "seconds", secs);
		if (j->awq_group >= 0)
			json_object_set_new(o, "awq_alpha",
					    json_real((double)g[j->awq_group].alpha));
		char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
		fprintf(stderr, "%s\n", s);
		free(s);
		json_decref(o);
	} else {
		char a[32] = "";
		if (j->awq_group >= 0)
			snprintf(a, sizeof a, "  (awq %.1f)", (double)g[j->awq_group].alpha);
		fprintf(stderr, "%s: %-32s %-5s -> %-5s %6.3f bpw  rmse %.3e  max %.3e%s%s%s\n",
			slm_progname, t->name, t->dtype->name, j->type->name, bpw, rmse,
			st->maxerr, j->fallback ? "  (fallback)" : "",
			j->imat ? "  (imatrix)" : "", a);
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* written in the tile16 layout (unless --layout plain) */
static int out_tiled(const job *j)
{
	return !opt.plain && bundle_tile_wanted(j->type, j->src->ndim, j->src->ne);
}

static int write_output(const slm_bundle *b, const job *jobs, const awq_group *g, int ng,
			const quant_recipe *r, slm_pool *pool, const char *shown, slm_err *err)
{
	size_t n = bundle_n_tensors(b);
	json_t *man = output_manifest(b, r, g, ng);
	slm_bwriter *w = bwriter_new(man);
	json_decref(man);
	uint64_t biggest = 0, in_total = 0, out_total = 0;
	for (size_t i = 0; i < n; i++) {
		const slm_tensor *t = jobs[i].src;
		if (bwriter_add_tensor_l(w, t->name, jobs[i].type, t->ndim, t->ne,
					 out_tiled(&jobs[i]), err) < 0) {
			bwriter_abort(w);
			return -1;
		}
		uint64_t sz;
		dtype_nbytes(jobs[i].type, t->ne[0], t->nelems, &sz);
		if (sz > biggest)
			biggest = sz;
	}
	for (size_t i = 0; i < bundle_n_members(b); i++) {
		const slm_member *mb = bundle_member_at(b, i);
		if (!is_tensor_member(b, mb->name) &&
		    bwriter_add_member(w, mb->name, mb->size, err) < 0) {
			bwriter_abort(w);
			return -1;
		}
	}
	if (biggest > SIZE_MAX / 2) {
		bwriter_abort(w);
		return slm_seterr(err, EX_OSERR, "a tensor of %llu bytes does not fit in memory",
				  (unsigned long long)biggest);
	}
	if (bwriter_open(w, opt.out, opt.gzip, err) < 0)
		return -1;
	/* the plain rows, and the same in the tile16 layout */
	uint8_t *buf = slm_xmalloc(biggest ? (size_t)biggest : 1);
	uint8_t *tbuf = slm_xmalloc(biggest ? (size_t)biggest : 1);
	int stats_on = opt.verbose || opt.json, rc = 0;
	double t0 = now();
	for (int i = 0; i < ng && stats_on; i++)
		awq_report(&g[i], jobs);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const job *j = &jobs[i];
		const slm_tensor *t = j->src;
		uint64_t sz;
		dtype_nbytes(j->type, t->ne[0], t->nelems, &sz);
		stats st = { 0 };
		double ts = now();
		const int tl = out_tiled(j);
		const int64_t rows = (int64_t)(t->nelems / t->ne[0]);
		if (j->copy && t->tiled == tl) {
			rc = bwriter_write(w, t->data, (size_t)t->size, err);
		} else {
			if (j->copy)
				tensor_rows(t, 0, rows, buf);
			else
				rc = quantize_tensor(pool, j, buf, stats_on, &st, shown, err);
			if (rc == 0 && tl)
				dtype_tile(j->type, (int64_t)t->ne[0], rows, buf, tbuf);
			if (rc == 0)
				rc = bwriter_write(w, tl ? tbuf : buf, (size_t)sz, err);
		}
		if (rc == 0 && stats_on)
			report(j, g, sz, &st, now() - ts);
		in_total += t->size;
		out_total += sz;
	}
	free(buf);
	free(tbuf);
	for (size_t i = 0; i < bundle_n_members(b) && rc == 0; i++) {
		const slm_member *mb = bundle_member_at(b, i);
		if (!is_tensor_member(b, mb->name))
			rc = bwriter_write(w, mb->data, (size_t)mb->size, err);
	}
	if (rc < 0) {
		bwriter_abort(w);
		return -1;
	}
	if (bwriter_close(w, err) < 0)
		return -1;
	if (stats_on) {
		char a[32], c[32];
		uint64_t params = bundle_n_params(b);
		if (opt.json) {
			json_t *o = json_pack("{s:s, s:I, s:I, s:f, s:f}", "recipe", r->name,
					      "bytes_in", (json_int_t)in_total, "bytes_out",
					      (json_int_t)out_total, "bpw",
					      params ? 8.0 * (double)out_total / (double)params : 0.0,
					      "seconds", now() - t0);
			char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
			fprintf(stderr, "%s\n", s);
			free(s);
			json_decref(o);
		} else {
			fprintf(stderr, "%s: %s: %s -> %s (%.2f bpw), %zu tensors, %.1f s\n",
				slm_progname, r->name, slm_fmt_size(in_total, a),
				slm_fmt_size(out_total, c),
				params ? 8.0 * (double)out_total / (double)params : 0.0, n,
				now() - t0);
		}
	}
	return 0;
}

/* ---- calibration: importances from the model's own activations ---- */

typedef struct calib_acc {
	const slm_tensor **w;    /* weights seen, in first-seen order */
	double **sum;            /* per weight: sum of squared inputs per column */
	uint64_t *count;         /* rows summed */
	size_t n, cap;
} calib_acc;

/* The forward pass's hook: before each matrix product, its f32 input. */
static void calib_hook(void *arg, const slm_tensor *w, const float *x, int64_t ldx, int B)
{
	calib_acc *a = arg;
	size_t i = 0;
	while (i < a->n && a->w[i] != w)
		i++;
	if (i == a->n) {
		if (a->n == a->cap) {
			a->cap = a->cap ? 2 * a->cap : 256;
			a->w = slm_xrealloc(a->w, a->cap * sizeof *a->w);
			a->sum = slm_xrealloc(a->sum, a->cap * sizeof *a->sum);
			a->count = slm_xrealloc(a->count, a->cap * sizeof *a->count);
		}
		a->w[i] = w;
		a->sum[i] = slm_xcalloc(w->ne[0], sizeof(double));
		a->count[i] = 0;
		a->n++;
	}
	double *s = a->sum[i];
	int64_t n = (int64_t)w->ne[0];
	for (int b = 0; b < B; b++) {
		const float *r = x + (int64_t)b * ldx;
		for (int64_t j = 0; j < n; j++)
			s[j] += (double)r[j] * r[j];
	}
	a->count[i] += (uint64_t)B;
}

/* The tokens of every sequence record of a token stream, concatenated. */
static int32_t *read_tokens(const char *path, size_t *n)
{
	slm_err err;
	slm_sreader *r = sreader_open(path, &err);
	if (!r)
		slm_die_err(&err);
	int32_t *tok = NULL;
	size_t cap = 0;
	*n = 0;
	json_t *rec;
	int rc;
	while ((rc = sreader_next(r, &rec, &err)) == 1) {
		if (stream_rec_type(rec) == SLM_REC_SEQ) {
			json_t *a = json_object_get(rec, "tokens");
			for (size_t i = 0; i < json_array_size(a); i++) {
				if (*n == cap) {
					cap = cap ? 2 * cap : 4096;
					tok = slm_xrealloc(tok, cap * sizeof *tok);
				}
				tok[(*n)++] = (int32_t)json_integer_value(json_array_get(a, i));
			}
		}
		json_decref(rec);
	}
	if (rc < 0)
		slm_die_err(&err);
	sreader_free(r);
	return tok;
}

/* Run the model over chunks of opt.ctx tokens of the stream (each chunk
 * from position 0, as llama-imatrix does) and return the sums of squared
 * inputs of every column of every weight matrix and the number of inputs;
 * *nchunks: chunks run. */
static slm_imatrix *calibrate(const slm_bundle *b, slm_pool *pool, const char *shown,
				int *nchunks)
{
	size_t ntok;
	int32_t *tok = read_tokens(opt.calib, &ntok);
	int ctx = opt.ctx ? opt.ctx : 512;
	long chunks = (long)(ntok / (size_t)ctx);
	if (opt.chunks && chunks > opt.chunks)
		chunks = opt.chunks;
	if (chunks < 1)
		slm_die(EX_DATAERR, "%s: %zu tokens: calibration needs at least %d (-c)",
			opt.calib, ntok, ctx);
	slm_err err;
	slm_model m;
	if (model_load(&m, b, &err) < 0) {
		slm_preerr(&err, "%s", shown);
		slm_die_err(&err);
	}
	for (size_t i = 0; i < ntok; i++)
		if (tok[i] < 0 || tok[i] >= m.n_vocab)
			slm_die(EX_DATAERR, "%s: token %d is not in the model's vocabulary of %d",
				opt.calib, (int)tok[i], m.n_vocab);
	slm_kv kv;
	if (kv_init(&kv, &m, 1, ctx, &err) < 0)
		slm_die_err(&err);
	slm_ctx *c = ctx_new(&m, &kv, pool, ctx);
	calib_acc acc = { 0 };
	ctx_set_act_hook(c, calib_hook, &acc);
	slm_entry *e = slm_xmalloc((size_t)ctx * sizeof *e);
	for (long k = 0; k < chunks; k++) {
		for (int i = 0; i < ctx; i++)
			e[i] = (slm_entry){ .token = tok[(size_t)k * (size_t)ctx + (size_t)i],
					    .pos = i, .slot = 0, .logits = -1 };
		model_forward(c, e, ctx, NULL);
		if (opt.verbose)
			fprintf(stderr, "%s: calibration chunk %ld/%ld\n", slm_progname, k + 1,
				chunks);
	}
	slm_imatrix *im = imatrix_new();
	float *v = NULL;
	for (size_t i = 0; i < acc.n; i++) {
		size_t n = (size_t)acc.w[i]->ne[0];
		v = slm_xrealloc(v, n * sizeof *v);
		for (size_t j = 0; j < n; j++)
			v[j] = (float)acc.sum[i][j];
		float count = (float)acc.count[i];
		imatrix_set(im, acc.w[i]->name, v, n, &count, 1);
		free(acc.sum[i]);
	}
	free(v);
	free(acc.w);
	free(acc.sum);
	free(acc.count);
	free(e);
	ctx_free(c);
	kv_free(&kv);
	model_free(&m);
	free(tok);
	*nchunks = (int)chunks;
	return im;
}

/* ---- options ---- */

static void add_keep(const char *arg)
{
	const char *eq = strrchr(arg, '=');
	if (!eq || eq == arg || !eq[1])
		slm_die(EX_USAGE, "--keep: '%s' is not GLOB=TYPE", arg);
	const slm_dtype *t = NULL;
	if (strcmp(eq + 1, "keep")) {
		t = dtype_by_name(eq + 1);
		if (!t || !quant_supported(t))
			slm_die(EX_USAGE, "--keep: '%s' is not a type (f32 f16 bf16 q8_0 q4_0 "
				"q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k, or keep)", eq + 1);
	}
	opt.keep = slm_xrealloc(opt.keep, (size_t)(opt.nkeep + 1) * sizeof *opt.keep);
	char *g = slm_xstrdup(arg);
	g[eq - arg] = 0;
	opt.keep[opt.nkeep].glob = g;
	opt.keep[opt.nkeep].type = t;
	opt.nkeep++;
}

enum {
	OPT_VERSION = 256, OPT_KEEP, OPT_PURE, OPT_IMATRIX, OPT_GZIP, OPT_JSON, OPT_CALIB,
	OPT_CHUNKS, OPT_AWQ, OPT_NO_AWQ, OPT_AWQ_ALPHA, OPT_FORMAT, OPT_LAYOUT
};

int main(int argc, char **argv)
{
	slm_cli_init(argc, argv);
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "output", required_argument, NULL, 'o' },
		{ "threads", required_argument, NULL, 't' },
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "pure", no_argument, NULL, OPT_PURE },
		{ "imatrix", required_argument, NULL, OPT_IMATRIX },
		{ "calib", required_argument, NULL, OPT_CALIB },
		{ "ctx", required_argument, NULL, 'c' },
		{ "chunks", required_argument, NULL, OPT_CHUNKS },
		{ "awq", no_argument, NULL, OPT_AWQ },
		{ "no-awq", no_argument, NULL, OPT_NO_AWQ },
		{ "awq-alpha", required_argument, NULL, OPT_AWQ_ALPHA },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "gzip", no_argument, NULL, OPT_GZIP },
		{ "layout", required_argument, NULL, OPT_LAYOUT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "hc:o:t:fqv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case OPT_VERSION:
			slm_cli_version();
		case 'o': opt.out = optarg; break;
		case 't': opt.threads = (int)slm_cli_long("-t", optarg, 1, MAX_THREADS); break;
		case OPT_KEEP: add_keep(optarg); break;
		case OPT_PURE: opt.pure = 1; break;
		case OPT_IMATRIX: opt.imatrix = optarg; break;
		case OPT_CALIB: opt.calib = optarg; break;
		case 'c': opt.ctx = (int)slm_cli_long("-c", optarg, 8, 1 << 20); break;
		case OPT_CHUNKS: opt.chunks = (int)slm_cli_long("--chunks", optarg, 1, 1 << 30); break;
		case OPT_AWQ: opt.awq = 1; break;
		case OPT_NO_AWQ: opt.awq = 0; break;
		case OPT_AWQ_ALPHA: {
			char *end;
			errno = 0;
			double a = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(a >= 0 && a <= 1))
				slm_die(EX_USAGE, "--awq-alpha: '%s' is not a number in [0, 1]",
					optarg);
			opt.awq_alpha = (float)a;
			opt.awq = 1;
			break;
		}
		case OPT_FORMAT:
			if (!strcmp(optarg, "dat"))
				opt.format = IMATRIX_DAT;
			else if (!strcmp(optarg, "gguf"))
				opt.format = IMATRIX_GGUF;
			else
				slm_die(EX_USAGE, "--format: '%s' is not dat or gguf", optarg);
			break;
		case OPT_GZIP: opt.gzip = 1; break;
		case OPT_LAYOUT:
			if (!strcmp(optarg, "plain"))
				opt.plain = 1;
			else if (!strcmp(optarg, "tile16"))
				opt.plain = 0;
			else
				slm_die(EX_USAGE, "--layout: '%s' is not tile16 or plain", optarg);
			break;
		case OPT_JSON: opt.json = 1; break;
		case 'f': opt.force = 1; break;
		case 'q': opt.quiet = 1; break;
		case 'v': opt.verbose = 1; break;
		default: slm_cli_usage_error(usage_text);
		}
	}
	/* TYPE may be left out with --calib: then the importances are the output */
	int npos = argc - optind;
	const quant_recipe *r = npos >= 1 ? quant_recipe_by_name(argv[optind]) : NULL;
	int calib_only = opt.calib && !r;
	if (npos > 2 || (!calib_only && npos < 1) || (calib_only && npos > 1))
		slm_cli_usage_error(usage_text);
	if (!r && !calib_only)
		slm_die(EX_USAGE, "'%s' is not a type or recipe (%s)", argv[optind],
			quant_recipe_names());
	if (opt.calib && opt.imatrix)
		slm_die(EX_USAGE, "--calib and --imatrix: give one");
	if (opt.awq == 1 && !opt.calib && !opt.imatrix)
		slm_die(EX_USAGE, "--awq needs importances: give --imatrix or --calib");
	if (opt.awq == 0 && opt.awq_alpha >= 0)
		slm_die(EX_USAGE, "--awq-alpha and --no-awq: give one");
	if (opt.format >= 0 && !calib_only)
		slm_die(EX_USAGE, "--format is for the importance matrix --calib writes "
			"without a type");
	const char *in = npos == (calib_only ? 1 : 2) ? argv[argc - 1] : "-";
	if (!opt.out)
		opt.out = "-";
	if (!strcmp(opt.out, "-"))
		slm_cli_refuse_tty(stdout, opt.force,
				   calib_only ? "an importance matrix" : "a bundle");
	if (!strcmp(in, "-") && isatty(STDIN_FILENO))
		slm_die(EX_USAGE, "no input: give a bundle, or pipe one in");
	if (opt.calib && !strcmp(in, "-") && !strcmp(opt.calib, "-"))
		slm_die(EX_USAGE, "--calib -: the bundle cannot come from standard input too");

	slm_err err;
	slm_imatrix *im = NULL;
	if (opt.imatrix && imatrix_load(&im, opt.imatrix, &err) < 0)
		slm_die_err(&err);
	slm_bundle *b;
	if (bundle_open(&b, in, &err) < 0)
		slm_die_err(&err);
	const char *shown = shown_path(in);
	int nth = opt.threads ? opt.threads : pool_default_threads();
	slm_pool *pool = pool_new(nth < MAX_THREADS ? nth : MAX_THREADS, 0);
	if (opt.calib) {
		int chunks;
		im = calibrate(b, pool, shown, &chunks);
		if (calib_only) {
			const char *base = strrchr(opt.calib, '/');
			size_t ol = strlen(opt.out);
			imatrix_format f = opt.format >= 0 ? (imatrix_format)opt.format
				: ol > 5 && !strcmp(opt.out + ol - 5, ".gguf") ? IMATRIX_GGUF
				: IMATRIX_DAT;
			if (imatrix_save(im, opt.out, f, chunks, opt.ctx ? opt.ctx : 512,
					 base ? base + 1 : opt.calib, &err) < 0)
				slm_die_err(&err);
		}
	}
	if (!calib_only) {
		job *jobs = make_plan(b, r, im, shown);
		int ng = 0;
		awq_group *g = im && opt.awq != 0 ? awq_plan(b, jobs, im, pool, &ng) : NULL;
		if (write_output(b, jobs, g, ng, r, pool, shown, &err) < 0)
			slm_die_err(&err);
		for (size_t i = 0; i < bundle_n_tensors(b); i++) {
			free(jobs[i].imat_scaled);
			free(jobs[i].f32);
		}
		for (int i = 0; i < ng; i++)
			free(g[i].s);
		free(g);
		free(jobs);
	}
	pool_free(pool);
	bundle_close(b);
	imatrix_free(im);
	for (int i = 0; i < opt.nkeep; i++)
		free((char *)opt.keep[i].glob);
	free(opt.keep);
	if (fflush(stdout) != 0)
		slm_die(EX_IOERR, "standard output: %s", strerror(errno));
	return 0;
}
