/*
 * slm-quant - quantize a bundle's weights into GGUF block types (Q8_0 ...
 * Q2_K, F16, BF16) with llama.cpp's recipes (Q4_K_M, ...), optionally
 * weighted by an importance matrix. Byte-identical to llama.cpp's
 * quantizer on the same f32 weights.
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
#include "config.h"
#include "kern/kern.h"
#include "model.h"
#include "pool.h"
#include "quant.h"
#include "stream.h"
#include "util.h"

static const char usage_text[] =
	"usage: slm-quant TYPE [IN.slm] [-o OUT.slm] [-t N] [--keep GLOB=TYPE]...\n"
	"                 [--pure] [--imatrix FILE | --calib STREAM [-c N] [--chunks N]]\n"
	"                 [--gzip] [-f] [-q] [-v] [--json]\n"
	"       slm-quant --calib STREAM [-c N] [--chunks N] [-t N] [IN.slm] [-o IMATRIX]\n"
	"       slm-quant -h | --help | --version\n";

typedef struct keep_rule {
	const char *glob;
	const slm_dtype *type; /* NULL: leave the tensor as it is */
} keep_rule;

static struct {
	const char *out, *imatrix, *calib;
	keep_rule *keep;
	int nkeep, threads, pure, gzip, force, quiet, verbose, json, ctx, chunks;
} opt;

/* ---- the plan ---- */

typedef struct job {
	const slm_tensor *src;
	const slm_dtype *type;   /* written type */
	const float *imat;       /* NULL or importances */
	size_t imat_n;
	int fallback, requant;
	int copy;                /* already in its type: bytes copied */
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
		      const quant_imatrix *im, const char *shown)
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
			j->imat = quant_imatrix_find(im, t->name, &j->imat_n);
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

/* ---- quantizing one tensor on the pool ---- */

#define MAX_THREADS 64

typedef struct work {
	const job *j;
	uint8_t *out;
	int64_t n, rows;
	int stats;
	/* per thread */
	float *buf[MAX_THREADS], *tmp[MAX_THREADS];
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
	for (long r = r0; r < r1; r++) {
		const uint8_t *src = (const uint8_t *)t->data + (size_t)r * in_rb;
		uint8_t *dst = w->out + (size_t)r * out_rb;
		const float *qw = j->imat;
		if (qw && j->imat_n != (size_t)w->n)
			qw += (size_t)((uint64_t)r / rows_per_mat) * (size_t)w->n;
		if (t->dtype->ggml_id == 0)
			x = (float *)src; /* f32 in place (rows are 4-byte aligned) */
		else
			kern_dequant(t->dtype, src, x = w->buf[ith], w->n);
		int64_t c = quant_find_nonfinite(x, w->n);
		if (c >= 0) {
			w->bad_row[ith] = r;
			w->bad_col[ith] = c;
			return;
		}
		quant_rows(j->type, x, dst, 1, w->n, qw);
		if (w->stats)
			quant_error(j->type, x, dst, w->n, w->tmp[ith], &w->sse[ith],
				    &w->maxerr[ith]);
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
	}
	pool_run(pool, quant_part, w);
	int rc = 0;
	memset(st, 0, sizeof *st);
	for (int i = 0; i < nth; i++) {
		if (w->bad_row[i] >= 0 && rc == 0) {
			const float *row = NULL;
			if (t->dtype->ggml_id == 0)
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
	}
	free(w);
	return rc;
}

/* ---- output ---- */

static json_t *output_manifest(const slm_bundle *b, const quant_recipe *r)
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

static void report(const job *j, uint64_t bytes, const stats *st, double secs)
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
		char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
		fprintf(stderr, "%s\n", s);
		free(s);
		json_decref(o);
	} else {
		fprintf(stderr, "%s: %-32s %-5s -> %-5s %6.3f bpw  rmse %.3e  max %.3e%s%s\n",
			slm_progname, t->name, t->dtype->name, j->type->name, bpw, rmse,
			st->maxerr, j->fallback ? "  (fallback)" : "",
			j->imat ? "  (imatrix)" : "");
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_output(const slm_bundle *b, const job *jobs, const quant_recipe *r,
			slm_pool *pool, const char *shown, slm_err *err)
{
	size_t n = bundle_n_tensors(b);
	json_t *man = output_manifest(b, r);
	slm_bwriter *w = bwriter_new(man);
	json_decref(man);
	uint64_t biggest = 0, in_total = 0, out_total = 0;
	for (size_t i = 0; i < n; i++) {
		const slm_tensor *t = jobs[i].src;
		if (bwriter_add_tensor(w, t->name, jobs[i].type, t->ndim, t->ne, err) < 0) {
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
	uint8_t *buf = slm_xmalloc(biggest ? (size_t)biggest : 1);
	int stats_on = opt.verbose || opt.json, rc = 0;
	double t0 = now();
	for (size_t i = 0; i < n && rc == 0; i++) {
		const job *j = &jobs[i];
		const slm_tensor *t = j->src;
		uint64_t sz;
		dtype_nbytes(j->type, t->ne[0], t->nelems, &sz);
		stats st = { 0 };
		double ts = now();
		if (j->copy) {
			rc = bwriter_write(w, t->data, (size_t)t->size, err);
		} else {
			rc = quantize_tensor(pool, j, buf, stats_on, &st, shown, err);
			if (rc == 0)
				rc = bwriter_write(w, buf, (size_t)sz, err);
		}
		if (rc == 0 && stats_on)
			report(j, sz, &st, now() - ts);
		in_total += t->size;
		out_total += sz;
	}
	free(buf);
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
 * from position 0, as llama-imatrix does) and return the mean squared
 * input of every column of every weight matrix; *nchunks: chunks run. */
static quant_imatrix *calibrate(const slm_bundle *b, slm_pool *pool, const char *shown,
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
	quant_imatrix *im = quant_imatrix_new();
	float *v = NULL;
	for (size_t i = 0; i < acc.n; i++) {
		size_t n = (size_t)acc.w[i]->ne[0];
		v = slm_xrealloc(v, n * sizeof *v);
		for (size_t j = 0; j < n; j++)
			v[j] = (float)(acc.sum[i][j] / (double)acc.count[i]);
		quant_imatrix_set(im, acc.w[i]->name, v, n);
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
	OPT_CHUNKS
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
		{ "gzip", no_argument, NULL, OPT_GZIP },
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
		case OPT_GZIP: opt.gzip = 1; break;
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
	quant_imatrix *im = NULL;
	if (opt.imatrix && quant_imatrix_load(&im, opt.imatrix, &err) < 0)
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
			if (quant_imatrix_save(im, opt.out, chunks, base ? base + 1 : opt.calib,
					       &err) < 0)
				slm_die_err(&err);
		}
	}
	if (!calib_only) {
		job *jobs = make_plan(b, r, im, shown);
		if (write_output(b, jobs, r, pool, shown, &err) < 0)
			slm_die_err(&err);
		free(jobs);
	}
	pool_free(pool);
	bundle_close(b);
	quant_imatrix_free(im);
	for (int i = 0; i < opt.nkeep; i++)
		free((char *)opt.keep[i].glob);
	free(opt.keep);
	if (fflush(stdout) != 0)
		slm_die(EX_IOERR, "standard output: %s", strerror(errno));
	return 0;
}
