/*
 * unit-quant.c - tests of libcommon/quant: the quantizers byte for byte
 * against llama.cpp's (golden blocks in tests/data/quant, made by
 * scripts/make-quant-golden.py with the ggml library of llama-cpp-python),
 * with and without importance weights; round trips within each type's
 * expected error; all-zero and constant blocks; huge outliers; the recipes'
 * choice of types; importance-matrix files in both forms, and hostile ones;
 * the activation-aware scale search and its fold.
 */
#include "unit.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "dtype.h"
#include "gguf.h"
#include "imatrix.h"
#include "kern/kern.h"
#include "quant.h"
#include "util.h"

static const char *const TYPES[] = { "f16",  "bf16", "q8_0", "q4_0",
				     "q4_1", "q5_0", "q5_1", "q2_k",
				     "q3_k", "q4_k", "q5_k", "q6_k" };
#define NT (int)(sizeof TYPES / sizeof TYPES[0])

static size_t row_bytes(const slm_dtype *t, int64_t n)
{
	return (size_t)(n / t->block_elems) * t->block_bytes;
}

/* ---- golden file ---- */

typedef struct rec {
	char name[64];
	const uint8_t *p;
	uint32_t n;
} rec;

static rec recs[512];
static int nrecs;

static const rec *find(const char *name)
{
	for (int i = 0; i < nrecs; i++)
		if (!strcmp(recs[i].name, name))
			return &recs[i];
	return NULL;
}

static int load_golden(char **buf)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	snprintf(path, sizeof path, "%s/tests/data/quant/golden.bin", top ? top : ".");
	size_t size;
	slm_err err;
	if (slm_read_file(path, buf, &size, &err) < 0) {
		diag("%s", err.msg);
		return -1;
	}
	const uint8_t *p = (const uint8_t *)*buf, *end = p + size;
	if (size < 12 || memcmp(p, "SLMQGLD1", 8))
		return -1;
	uint32_t n;
	memcpy(&n, p + 8, 4);
	p += 12;
	for (uint32_t i = 0; i < n && nrecs < 512; i++) {
		uint16_t nl;
		uint32_t dl;
		if (end - p < 2)
			return -1;
		memcpy(&nl, p, 2);
		if (end - p < 2 + nl + 4 || nl >= sizeof recs[0].name)
			return -1;
		memcpy(recs[nrecs].name, p + 2, nl);
		recs[nrecs].name[nl] = 0;
		memcpy(&dl, p + 2 + nl, 4);
		p += 2 + nl + 4;
		if ((uint32_t)(end - p) < dl)
			return -1;
		recs[nrecs].p = p;
		recs[nrecs].n = dl;
		nrecs++;
		p += dl;
	}
	return 0;
}

static void test_golden(void)
{
	char *buf = NULL;
	if (!ok(load_golden(&buf) == 0, "golden file loads")) {
		free(buf);
		return;
	}
	uint32_t n;
	memcpy(&n, find("n")->p, 4);
	const rec *wr = find("w");
	float *w = malloc(n * sizeof *w);
	memcpy(w, wr->p, n * sizeof *w);
	static const char *const SETS[] = { "gauss", "outlier", "offset", "edge", "laplace" };
	for (size_t s = 0; s < sizeof SETS / sizeof SETS[0]; s++) {
		char name[64];
		snprintf(name, sizeof name, "x/%s", SETS[s]);
		const rec *xr = find(name);
		if (!ok(xr != NULL, "golden input %s", name))
			continue;
		int64_t rows = xr->n / 4 / n;
		float *x = malloc(xr->n);
		memcpy(x, xr->p, xr->n);
		for (int t = 0; t < NT; t++) {
			const slm_dtype *dt = dtype_by_name(TYPES[t]);
			for (int weighted = 0; weighted < 2; weighted++) {
				if (weighted && !quant_uses_imatrix(dt))
					continue;
				snprintf(name, sizeof name, "%s/%s/%s", weighted ? "qi" : "q",
					 SETS[s], TYPES[t]);
				const rec *g = find(name);
				if (!ok(g != NULL, "golden %s present", name))
					continue;
				size_t nb = row_bytes(dt, n) * (size_t)rows;
				uint8_t *q = calloc(1, nb);
				quant_rows(dt, x, q, rows, n, weighted ? w : NULL);
				size_t first = nb;
				for (size_t i = 0; i < nb && i < g->n; i++)
					if (q[i] != g->p[i]) {
						first = i;
						break;
					}
				if (!ok(g->n == nb && first == nb,
					"%s: bit-identical to llama.cpp", name))
					diag("first difference at byte %zu of %zu (block %zu)", first,
					     nb, first / dt->block_bytes);
				free(q);
			}
		}
		free(x);
	}
	free(w);
	free(buf);
}

/* ---- round trips ---- */

static uint64_t rng_state = 88172645463325252ull;
static double urand(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) / 9007199254740992.0;
}
static float grand(void)
{
	double u = urand(), v = urand();
	return (float)(sqrt(-2 * log(u + 1e-300)) * cos(6.283185307179586 * v));
}

/* Relative RMSE (RMSE / RMS of the input) of a round trip on Gaussian
 * rows, optionally importance-weighted (w: per-column weights). */
static double roundtrip(const slm_dtype *t, const float *x, int64_t rows, int64_t n,
			const float *imat, const float *w, double *maxerr)
{
	uint8_t *q = malloc(row_bytes(t, n) * (size_t)rows);
	float *y = malloc((size_t)(rows * n) * sizeof *y);
	quant_rows(t, x, q, rows, n, imat);
	kern_dequant(t, q, y, rows * n);
	double se = 0, ss = 0, m = 0;
	for (int64_t i = 0; i < rows * n; i++) {
		double e = (double)y[i] - x[i], wi = w ? w[i % n] : 1;
		se += wi * e * e;
		ss += wi * (double)x[i] * x[i];
		if (fabs(e) > m)
			m = fabs(e);
	}
	free(q);
	free(y);
	if (maxerr)
		*maxerr = m;
	return sqrt(se / ss);
}

static void test_roundtrip(void)
{
	/* bounds on RMSE / RMS for Gaussian data, about twice the measured
	 * error: f16 2^-12, bf16 2^-9 relative rounding; b-bit block types
	 * roughly 2^-b times a small constant */
	static const struct { const char *t; double bound; } B[] = {
		{ "f16", 4e-4 },  { "bf16", 3e-3 }, { "q8_0", 0.009 },
		{ "q6_k", 0.025 }, { "q5_k", 0.045 }, { "q5_0", 0.06 },
		{ "q5_1", 0.06 },  { "q4_k", 0.09 }, { "q4_0", 0.12 },
		{ "q4_1", 0.12 },  { "q3_k", 0.20 }, { "q2_k", 0.42 },
	};
	const int64_t rows = 16, n = 1024;
	float *x = malloc(rows * n * sizeof *x);
	float *w = malloc(n * sizeof *w);
	for (int64_t i = 0; i < rows * n; i++)
		x[i] = grand() * 0.02f;
	for (int64_t i = 0; i < n; i++)
		w[i] = (float)(urand() < 0.1 ? 20 + 80 * urand() : 0.1 + urand());
	for (size_t k = 0; k < sizeof B / sizeof B[0]; k++) {
		const slm_dtype *t = dtype_by_name(B[k].t);
		double mx, e = roundtrip(t, x, rows, n, NULL, NULL, &mx);
		ok(e < B[k].bound, "%s: round trip relative RMSE %.4g < %.3g", B[k].t, e,
		   B[k].bound);
		if (quant_uses_imatrix(t)) {
			/* importance weights must lower the weighted error */
			double plain = roundtrip(t, x, rows, n, NULL, w, NULL);
			double weighted = roundtrip(t, x, rows, n, w, w, NULL);
			ok(weighted < plain, "%s: imatrix lowers the weighted error (%.4g < %.4g)",
			   B[k].t, weighted, plain);
		}
	}
	free(x);
	free(w);
}

/* All-zero and constant blocks come back exactly; huge outliers stay
 * finite and are reproduced to their block's precision. */
static void test_edges(void)
{
	const int64_t n = 512;
	float x[512], y[512];
	uint8_t q[2048];
	for (int t = 0; t < NT; t++) {
		const slm_dtype *dt = dtype_by_name(TYPES[t]);
		memset(x, 0, sizeof x);
		int all = 1;
		for (int weighted = 0; weighted < 2; weighted++) {
			float w[512];
			for (int i = 0; i < n; i++)
				w[i] = 1.0f + (float)(i % 7);
			quant_rows(dt, x, q, 1, n, weighted ? w : NULL);
			kern_dequant(dt, q, y, n);
			for (int i = 0; i < n; i++)
				all &= y[i] == 0.0f;
		}
		ok(all, "%s: all-zero row comes back as zeros", TYPES[t]);

		for (int i = 0; i < n; i++)
			x[i] = 0.5f;
		quant_rows(dt, x, q, 1, n, NULL);
		kern_dequant(dt, q, y, n);
		double m = 0;
		for (int i = 0; i < n; i++)
			m = fmax(m, fabs(y[i] - x[i]));
		ok(m <= 0.5 * 0.01, "%s: constant row within 1%% (max error %.3g)", TYPES[t], m);

		for (int i = 0; i < n; i++)
			x[i] = grand() * 0.01f;
		x[5] = 3e4f;
		x[300] = -6e4f;
		quant_rows(dt, x, q, 1, n, NULL);
		kern_dequant(dt, q, y, n);
		int finite = 1;
		for (int i = 0; i < n; i++)
			finite &= isfinite(y[i]);
		ok(finite && fabs(y[5] - x[5]) < 3e4 * 0.13 && fabs(y[300] - x[300]) < 6e4 * 0.13,
		   "%s: huge outliers finite and kept (%g -> %g, %g -> %g)", TYPES[t], x[5],
		   y[5], x[300], y[300]);
	}
	float bad[64] = { 0 };
	ok(quant_find_nonfinite(bad, 64) == -1, "finite row: no non-finite element");
	bad[40] = NAN;
	bad[50] = INFINITY;
	ok(quant_find_nonfinite(bad, 64) == 40, "NaN found at its index");
	bad[40] = 0;
	ok(quant_find_nonfinite(bad, 64) == 50, "Inf found at its index");
}

/* ---- recipes ---- */

static const char *plan_of(const char *recipe, const char *name, uint64_t ne0)
{
	/* 30 layers, tied embeddings, 9 heads / 3 kv, rows of 768 (2048 for
	 * ffn_down); ne0, when not 0, replaces token_embd's row length */
	static char names[30 * 9 + 3][48];
	static const char *np[30 * 9 + 3];
	static int nd[30 * 9 + 3];
	static uint64_t ne[30 * 9 + 3][4];
	static const char *const per[] = { "attn_q", "attn_k", "attn_v", "attn_output",
					   "ffn_gate", "ffn_up", "ffn_down", "attn_norm",
					   "ffn_norm" };
	size_t k = 0;
	snprintf(names[k], 48, "token_embd.weight");
	ne[k][0] = 768, ne[k][1] = 49152, nd[k++] = 2;
	snprintf(names[k], 48, "output_norm.weight");
	ne[k][0] = 768, ne[k][1] = 1, nd[k++] = 1;
	for (int l = 29; l >= 0; l--)
		for (int j = 0; j < 9; j++) {
			snprintf(names[k], 48, "blk.%d.%s.weight", l, per[j]);
			ne[k][0] = !strcmp(per[j], "ffn_down") ? 2048 : 768;
			ne[k][1] = j >= 7 ? 1 : 576;
			nd[k++] = j >= 7 ? 1 : 2;
		}
	snprintf(names[k], 48, "rope_freqs.weight");
	ne[k][0] = 32, ne[k][1] = 1, nd[k++] = 1;
	for (size_t i = 0; i < k; i++) {
		np[i] = names[i];
		ne[i][2] = ne[i][3] = 1;
	}
	if (ne0)
		ne[0][0] = ne0;
	const slm_dtype *types[30 * 9 + 3];
	quant_model m = { .n_layer = 30, .n_head = 9, .n_head_kv = 3, .arch = "llama" };
	quant_plan(quant_recipe_by_name(recipe), &m, k, np, nd, (const uint64_t (*)[4])ne, 0,
		   0, types, NULL);
	for (size_t i = 0; i < k; i++)
		if (!strcmp(np[i], name))
			return types[i] ? types[i]->name : "keep";
	return "absent";
}

static void test_recipes(void)
{
	ok(quant_recipe_by_name("Q4_K_M") != NULL, "recipe names are case-insensitive");
	ok(quant_recipe_by_name("q7_k") == NULL, "unknown recipe");
	is_str(plan_of("q4_k_m", "token_embd.weight", 0), "q6_k",
	       "q4_k_m: tied token embeddings get q6_k");
	is_str(plan_of("q4_k_m", "token_embd.weight", 576), "q8_0",
	       "q4_k_m: output rows not a multiple of 256 get q8_0");
	is_str(plan_of("q4_k_m", "output_norm.weight", 0), "keep", "norms are kept");
	is_str(plan_of("q4_k_m", "rope_freqs.weight", 0), "keep", "1-D tensors are kept");
	/* use_more_bits(i, 30): i < 3, i >= 26, (i - 3) % 3 == 2 */
	is_str(plan_of("q4_k_m", "blk.0.attn_v.weight", 0), "q6_k", "q4_k_m: attn_v layer 0");
	is_str(plan_of("q4_k_m", "blk.5.attn_v.weight", 0), "q6_k", "q4_k_m: attn_v layer 5");
	is_str(plan_of("q4_k_m", "blk.6.attn_v.weight", 0), "q4_k", "q4_k_m: attn_v layer 6");
	is_str(plan_of("q4_k_m", "blk.29.attn_v.weight", 0), "q6_k", "q4_k_m: attn_v last layer");
	is_str(plan_of("q4_k_m", "blk.8.ffn_down.weight", 0), "q6_k", "q4_k_m: ffn_down layer 8");
	is_str(plan_of("q4_k_m", "blk.9.ffn_down.weight", 0), "q4_k", "q4_k_m: ffn_down layer 9");
	is_str(plan_of("q4_k_m", "blk.9.attn_q.weight", 0), "q4_k", "q4_k_m: attn_q");
	is_str(plan_of("q4_k_s", "blk.3.attn_v.weight", 0), "q5_k", "q4_k_s: first 4 attn_v q5_k");
	is_str(plan_of("q4_k_s", "blk.4.attn_v.weight", 0), "q4_k", "q4_k_s: then q4_k");
	is_str(plan_of("q4_k_s", "blk.2.ffn_down.weight", 0), "q5_k", "q4_k_s: early ffn_down");
	is_str(plan_of("q3_k_m", "blk.0.ffn_down.weight", 0), "q5_k", "q3_k_m: ffn_down < n/16");
	is_str(plan_of("q3_k_m", "blk.1.ffn_down.weight", 0), "q4_k", "q3_k_m: ffn_down after");
	is_str(plan_of("q3_k_m", "blk.1.attn_v.weight", 0), "q5_k", "q3_k_m: first 2 attn_v");
	is_str(plan_of("q3_k_m", "blk.2.attn_v.weight", 0), "q4_k", "q3_k_m: later attn_v");
	is_str(plan_of("q3_k_m", "blk.2.attn_output.weight", 0), "q4_k", "q3_k_m: attn_output");
	is_str(plan_of("q3_k_m", "blk.2.ffn_up.weight", 0), "q3_k", "q3_k_m: ffn_up");
	is_str(plan_of("q2_k", "blk.2.attn_v.weight", 0), "q3_k", "q2_k: attn_v with gqa 3");
	is_str(plan_of("q8_0", "token_embd.weight", 0), "q8_0", "q8_0: embeddings stay q8_0");
	is_str(plan_of("q4_0", "token_embd.weight", 0), "q6_k", "q4_0: embeddings q6_k");
	is_str(plan_of("q6_k", "blk.3.ffn_up.weight", 576), "q6_k", "q6_k: matrices");
	is_str(plan_of("q4_k", "token_embd.weight", 0), "q4_k", "pure q4_k: no recipe bump");
	is_str(plan_of("q4_k", "token_embd.weight", 576), "q5_0", "pure q4_k: 576 columns fall back");
	is_str(plan_of("f16", "blk.3.ffn_up.weight", 0), "f16", "f16: matrices");
	is_str(plan_of("f16", "blk.3.ffn_norm.weight", 0), "keep", "f16: norms kept");
	is_str(quant_fallback(dtype_by_name("q5_k"), 576)->name, "q5_1", "q5_k falls back to q5_1");
	is_str(quant_fallback(dtype_by_name("q2_k"), 96)->name, "q4_0", "q2_k falls back to q4_0");
	is_str(quant_fallback(dtype_by_name("q4_k"), 100)->name, "f16", "then to f16");
}

/* ---- importance matrices ---- */

static void put32(FILE *f, int32_t v) { fwrite(&v, 4, 1, f); }

static char tmp_path[] = "/tmp/unit-quant.XXXXXX";

static void write_bytes(const void *p, size_t n)
{
	FILE *f = fopen(tmp_path, "wb");
	fwrite(p, 1, n, f);
	fclose(f);
}

/* Loading tmp_path fails with EX_DATAERR and one line of text. */
static int load_fails(const char *what)
{
	slm_imatrix *im = NULL;
	slm_err err = { 0 };
	int rc = imatrix_load(&im, tmp_path, &err);
	imatrix_free(rc == 0 ? im : NULL);
	return ok(rc < 0 && err.code == EX_DATAERR && err.msg[0] && !strchr(err.msg, '\n'),
		  "%s: %s", what, err.msg);
}

/* A minimal GGUF v3 writer for hostile files: tensors of 2 dims. */
typedef struct gt {
	const char *name;
	uint32_t type;
	uint64_t ne0, ne1;
	const void *data;
	size_t size;
} gt;

static size_t gguf_build(uint8_t *buf, const gt *t, int nt)
{
	size_t o = 0, data = 0;
#define PUT(p, n) (memcpy(buf + o, (p), (n)), o += (n))
	uint32_t v3 = 3, two = 2;
	uint64_t n = (uint64_t)nt, zero = 0;
	PUT("GGUF", 4);
	PUT(&v3, 4);
	PUT(&n, 8);
	PUT(&zero, 8);
	for (int i = 0; i < nt; i++) {
		uint64_t l = strlen(t[i].name), off = data;
		PUT(&l, 8);
		PUT(t[i].name, l);
		PUT(&two, 4);
		PUT(&t[i].ne0, 8);
		PUT(&t[i].ne1, 8);
		PUT(&t[i].type, 4);
		PUT(&off, 8);
		data += (t[i].size + 31) / 32 * 32;
	}
	while (o % 32)
		buf[o++] = 0;
	for (int i = 0; i < nt; i++) {
		memset(buf + o, 0, (t[i].size + 31) / 32 * 32);
		memcpy(buf + o, t[i].data, t[i].size);
		o += (t[i].size + 31) / 32 * 32;
	}
#undef PUT
	return o;
}

static void test_imatrix(void)
{
	int fd = mkstemp(tmp_path);
	FILE *f = fdopen(fd, "wb");
	put32(f, 2);
	const char *n1 = "blk.0.attn_q.weight", *n2 = "blk.0.ffn_down.weight";
	float v1[4] = { 2, 4, 6, 8 }, v2[2] = { 1, 3 };
	put32(f, (int32_t)strlen(n1));
	fwrite(n1, 1, strlen(n1), f);
	put32(f, 2);
	put32(f, 4);
	fwrite(v1, 4, 4, f);
	put32(f, (int32_t)strlen(n2));
	fwrite(n2, 1, strlen(n2), f);
	put32(f, 0);
	put32(f, 2);
	fwrite(v2, 4, 2, f);
	put32(f, 10); /* last call, then the dataset name */
	put32(f, 4);
	fwrite("wiki", 1, 4, f);
	fclose(f);
	slm_imatrix *im;
	slm_err err;
	if (ok(imatrix_load(&im, tmp_path, &err) == 0, "legacy imatrix loads")) {
		size_t n = 0;
		const float *v = imatrix_find(im, n1, &n);
		ok(v && n == 4 && v[0] == 1 && v[3] == 4, "sums divided by the call count");
		v = imatrix_find(im, n2, &n);
		ok(v && n == 2 && v[1] == 3, "zero calls: values as stored");
		ok(imatrix_find(im, "nope", &n) == NULL, "absent tensor");
		is_int((intmax_t)imatrix_count(im), 2, "two entries");
		imatrix_free(im);
	}
	f = fopen(tmp_path, "wb");
	put32(f, 3);
	put32(f, 5);
	fwrite("ab", 1, 2, f);
	fclose(f);
	load_fails("truncated legacy imatrix");
	f = fopen(tmp_path, "wb");
	put32(f, 1);
	put32(f, 3);
	fwrite("a\nb", 1, 3, f);
	put32(f, 1);
	put32(f, 1);
	fwrite(v1, 4, 1, f);
	fclose(f);
	load_fails("legacy name with a newline");

	/* written in both forms, read back to the same bits */
	slm_imatrix *w = imatrix_new();
	float a[6] = { 0.1f, 3e-7f, 12345.678f, 7, 0, 1e-3f }, b[2] = { 1, 2 };
	float c1 = 7, c2[2] = { 3, 0 }, c3 = 1;
	imatrix_set(w, "y.weight", b, 2, &c3, 1);
	imatrix_set(w, "x.weight", b, 2, &c3, 1);
	imatrix_set(w, "x.weight", a, 3, &c1, 1);
	imatrix_set(w, "e.weight", a, 6, c2, 2);
	slm_imatrix *g = NULL;
	if (ok(imatrix_save(w, tmp_path, IMATRIX_DAT, 7, 512, "calib.tok", &err) == 0,
	       "imatrix saved (dat)") &&
	    ok(imatrix_load(&im, tmp_path, &err) == 0, "and loaded back") &&
	    ok(imatrix_save(w, tmp_path, IMATRIX_GGUF, 7, 512, "calib.tok", &err) == 0,
	       "imatrix saved (gguf)") &&
	    ok(imatrix_load(&g, tmp_path, &err) == 0, "and loaded back")) {
		size_t n = 0, m = 0;
		const float *v = imatrix_find(im, "x.weight", &n);
		float want[3] = { a[0] / 7, a[1] / 7, a[2] / 7 };
		ok(v && n == 3 && !memcmp(v, want, sizeof want), "sums / count (replaced once)");
		is_int((intmax_t)imatrix_count(im), 3, "three entries saved");
		is_int((intmax_t)imatrix_count(g), 3, "three entries in the GGUF form");
		int same = 1;
		static const char *const names[] = { "x.weight", "y.weight", "e.weight" };
		for (int k = 0; k < 3; k++) {
			const float *p = imatrix_find(im, names[k], &n), *q = imatrix_find(g, names[k], &m);
			same &= p && q && n == m && !memcmp(p, q, n * sizeof *p);
		}
		ok(same, "both forms read back to the same importances, bit for bit");
		v = imatrix_find(g, "e.weight", &n);
		ok(v && n == 6 && v[0] == a[0] / 3 && v[3] == 1 && v[5] == 1,
		   "two matrices: each its own count, 1 where the count is 0");
		/* the GGUF form's layout */
		char *data;
		size_t size;
		gguf_file *gf;
		if (slm_read_file(tmp_path, &data, &size, &err) == 0 &&
		    ok(gguf_open_mem(&gf, data, size, tmp_path, &err) == 0, "GGUF imatrix parses")) {
			gguf_str ty;
			uint64_t cc = 0, cs = 0;
			ok(gguf_get_str(gf, "general.type", &ty) == 0 && gguf_str_eq(ty, "imatrix") &&
			   gguf_get_u64(gf, "imatrix.chunk_count", &cc) == 0 && cc == 7 &&
			   gguf_get_u64(gf, "imatrix.chunk_size", &cs) == 0 && cs == 512,
			   "general.type, imatrix.chunk_count and chunk_size");
			const gguf_kv *ds = gguf_find(gf, "imatrix.datasets");
			gguf_str d0 = { 0 };
			ok(ds && ds->type == GGUF_T_ARRAY && ds->arr_n == 1 &&
			   gguf_arr_str(ds, 0, &d0) == 0 && gguf_str_eq(d0, "calib.tok"),
			   "imatrix.datasets");
			const gguf_tensor *t0 = gguf_tensor_at(gf, 0), *t1 = gguf_tensor_at(gf, 1),
					  *te = gguf_find_tensor(gf, "e.weight.in_sum2"),
					  *tc = gguf_find_tensor(gf, "e.weight.counts");
			ok(gguf_n_tensors(gf) == 6 && gguf_str_eq(t0->name, "e.weight.in_sum2") &&
			   gguf_str_eq(t1->name, "e.weight.counts"),
			   "entries by name, sums then counts");
			ok(te && tc && te->ne[0] == 3 && te->ne[1] == 2 && tc->ne[0] == 1 &&
			   tc->ne[1] == 2 && te->ggml_type == 0 && tc->ggml_type == 0,
			   "in_sum2 f32 [3, 2], counts f32 [1, 2]");
			/* every truncation fails cleanly */
			int all = 1;
			for (size_t cut = 0; cut < size; cut += 1 + cut / 16) {
				write_bytes(data, cut);
				slm_imatrix *x = NULL;
				slm_err e2 = { 0 };
				int rc = imatrix_load(&x, tmp_path, &e2);
				if (rc == 0 || e2.code != EX_DATAERR || strchr(e2.msg, '\n')) {
					diag("cut at %zu: rc %d, %s", cut, rc, e2.msg);
					all = 0;
				}
				imatrix_free(rc == 0 ? x : NULL);
			}
			ok(all, "every truncation of the GGUF form: one line, EX_DATAERR");
			gguf_close(gf);
		}
		free(data);
		imatrix_free(im);
		imatrix_free(g);
	}
	imatrix_free(w);

	/* hostile GGUF imatrices */
	static uint8_t buf[4096];
	float s4[4] = { 1, 2, 3, 4 }, cnt1[1] = { 2 }, cnt2[2] = { 2, 2 }, neg[1] = { -1 };
	uint16_t h4[4] = { 0x3c00, 0x3c00, 0x3c00, 0x3c00 };
	float nan4[4] = { 1, NAN, 3, 4 };
	gt good[2] = { { "w.in_sum2", 0, 4, 1, s4, 16 }, { "w.counts", 0, 1, 1, cnt1, 4 } };
	write_bytes(buf, gguf_build(buf, good, 2));
	if (ok(imatrix_load(&im, tmp_path, &err) == 0, "hand-made GGUF imatrix loads")) {
		size_t n = 0;
		const float *v = imatrix_find(im, "w", &n);
		ok(v && n == 4 && v[3] == 2, "in_sum2 / counts");
		imatrix_free(im);
	}
	gt f16s[2] = { { "w.in_sum2", 1, 4, 1, h4, 8 }, { "w.counts", 0, 1, 1, cnt1, 4 } };
	write_bytes(buf, gguf_build(buf, f16s, 2));
	load_fails("f16 sums");
	gt mism[2] = { { "w.in_sum2", 0, 4, 1, s4, 16 }, { "w.counts", 0, 2, 1, cnt2, 8 } };
	write_bytes(buf, gguf_build(buf, mism, 2));
	load_fails("two counts for one matrix");
	gt mism2[2] = { { "w.in_sum2", 0, 2, 2, s4, 16 }, { "w.counts", 0, 1, 1, cnt1, 4 } };
	write_bytes(buf, gguf_build(buf, mism2, 2));
	load_fails("one count for two matrices");
	write_bytes(buf, gguf_build(buf, good, 1));
	load_fails("sums without counts");
	write_bytes(buf, gguf_build(buf, good + 1, 1));
	load_fails("counts without sums");
	gt negc[2] = { { "w.in_sum2", 0, 4, 1, s4, 16 }, { "w.counts", 0, 1, 1, neg, 4 } };
	write_bytes(buf, gguf_build(buf, negc, 2));
	load_fails("negative count");
	gt nans[2] = { { "w.in_sum2", 0, 4, 1, nan4, 16 }, { "w.counts", 0, 1, 1, cnt1, 4 } };
	write_bytes(buf, gguf_build(buf, nans, 2));
	load_fails("NaN in the sums");
	gt none[1] = { { "w.weight", 0, 4, 1, s4, 16 } };
	write_bytes(buf, gguf_build(buf, none, 1));
	load_fails("a GGUF file with no importances");
	unlink(tmp_path);
}

/* ---- activation-aware scales ---- */

/* y[m] = sum_j W[m][j] * g[j] * x[j], in double */
static void matvec_norm(int M, int n, const float *W, const float *g, const float *x, double *y)
{
	for (int m = 0; m < M; m++) {
		double a = 0;
		for (int j = 0; j < n; j++)
			a += (double)W[m * n + j] * ((double)g[j] * (double)x[j]);
		y[m] = a;
	}
}

static void test_awq(void)
{
	enum { N = 256, M = 64, B = 32 };
	float *x = malloc(sizeof(float) * B * N), *W = malloc(sizeof(float) * M * N);
	float *Ws = malloc(sizeof(float) * M * N), g[N], gs[N], imp[N], s[N];
	/* activations with a few large channels, as real models have */
	for (int j = 0; j < N; j++) {
		float mag = j % 37 == 5 ? 30.0f : 0.2f + (float)urand();
		double sq = 0;
		for (int b = 0; b < B; b++) {
			x[b * N + j] = mag * grand();
			sq += (double)x[b * N + j] * x[b * N + j];
		}
		imp[j] = (float)(sq / B);
		g[j] = 0.5f + (float)urand();
	}
	for (int i = 0; i < M * N; i++)
		W[i] = 0.05f * grand();

	float s0[N];
	quant_awq_scales(N, imp, 0.0f, s0);
	int ones = 1;
	for (int j = 0; j < N; j++)
		ones &= s0[j] == 1.0f;
	ok(ones, "alpha 0: every scale exactly 1");

	/* the fold: W diag(s) after a norm divided by s computes the same */
	quant_awq_scales(N, imp, 0.5f, s);
	double lo = 1e30, hi = 0, lg = 0;
	for (int j = 0; j < N; j++) {
		lo = fmin(lo, s[j]);
		hi = fmax(hi, s[j]);
		lg += log(s[j]);
	}
	ok(hi / lo > 3 && fabs(lg / N) < 1e-4, "alpha 0.5: scales spread (%.2f..%.2f), "
	   "geometric mean 1", lo, hi);
	memcpy(gs, g, sizeof g);
	quant_awq_fold(N, s, gs);
	for (int m = 0; m < M; m++)
		quant_awq_apply(N, W + m * N, s, 1.0f, Ws + m * N);
	double worst = 0;
	for (int b = 0; b < B; b++) {
		double y0[M], y1[M], scale = 0;
		matvec_norm(M, N, W, g, x + b * N, y0);
		matvec_norm(M, N, Ws, gs, x + b * N, y1);
		for (int m = 0; m < M; m++)
			scale = fmax(scale, fabs(y0[m]));
		for (int m = 0; m < M; m++)
			worst = fmax(worst, fabs(y1[m] - y0[m]) / scale);
	}
	ok(worst < 1e-6, "folded into the norm: same outputs up to rounding (%.2g)", worst);
	/* into a previous matrix's rows (ffn_up for ffn_down): rows divided */
	float up[N], upd[N];
	for (int j = 0; j < N; j++)
		up[j] = grand();
	memcpy(upd, up, sizeof up);
	quant_awq_fold(N, s, upd);
	double w2 = 0, sc2 = 0;
	for (int m = 0; m < M; m++) {
		double a = 0, c = 0;
		for (int j = 0; j < N; j++) {
			a += (double)W[m * N + j] * up[j];
			c += (double)Ws[m * N + j] * upd[j];
		}
		w2 = fmax(w2, fabs(a - c));
		sc2 = fmax(sc2, fabs(a));
	}
	ok(w2 / sc2 < 1e-6, "folded into the rows before: same outputs (%.2g)", w2 / sc2);

	/* the search, for each 4-bit type (and one more) */
	static const char *const types[] = { "q4_0", "q4_1", "q4_k", "q3_k" };
	for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
		const slm_dtype *dt = dtype_by_name(types[t]);
		quant_awq_mat m = { .type = dt, .w = W, .rows = M, .imp = imp };
		double eb, e0;
		float best[N];
		float alpha = quant_awq_search(&m, 1, N, imp, best, &eb, &e0);
		double plain = quant_awq_error(&m, N, NULL), lowest = INFINITY;
		for (int k = 0; k < QUANT_AWQ_GRID; k++) {
			float sk[N];
			quant_awq_scales(N, imp, (float)k / (QUANT_AWQ_GRID - 1), sk);
			lowest = fmin(lowest, quant_awq_error(&m, N, sk));
		}
		ok(e0 == plain && eb <= plain, "%s: weighted error %.4g at alpha %.1f, "
		   "never above plain quantization's %.4g", types[t], eb, (double)alpha, plain);
		ok(eb == lowest, "%s: the grid's lowest error", types[t]);
		/* alpha 0 quantizes exactly as without scales */
		size_t rb = row_bytes(dt, N);
		uint8_t *q0 = malloc(rb * M), *q1 = malloc(rb * M);
		float xs[N];
		quant_rows(dt, W, q0, M, N, imp);
		for (int r = 0; r < M; r++) {
			quant_awq_apply(N, W + r * N, s0, 1.0f, xs);
			quant_rows(dt, xs, q1 + r * rb, 1, N, imp);
		}
		ok(!memcmp(q0, q1, rb * M), "%s: scales of 1 give the same bytes", types[t]);
		free(q0);
		free(q1);
		if (t == 0)
			ok(alpha > 0 && eb < 0.9 * plain,
			   "q4_0 with outlier channels: scaling helps (alpha %.1f, %.3g < %.3g)",
			   (double)alpha, eb, plain);
	}
	/* row divisors: the error is measured in the original units */
	float div[M];
	for (int r = 0; r < M; r++)
		div[r] = 0.25f + 2 * (float)urand();
	quant_awq_mat a = { .type = dtype_by_name("q8_0"), .w = W, .rows = M, .imp = imp };
	quant_awq_mat d = a;
	d.row_div = div;
	double ea = quant_awq_error(&a, N, NULL), ed = quant_awq_error(&d, N, NULL);
	ok(ed > 0.5 * ea && ed < 2 * ea, "q8_0 with row divisors: error %.3g near %.3g", ed, ea);
	free(x);
	free(W);
	free(Ws);
}

int main(void)
{
	test_golden();
	test_roundtrip();
	test_edges();
	test_recipes();
	test_imatrix();
	test_awq();
	return done_testing();
}
