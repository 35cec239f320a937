/*
 * unit-quant.c - tests of libcommon/quant: the quantizers byte for byte
 * against llama.cpp's (golden blocks in tests/data/quant, made by
 * scripts/make-quant-golden.py with the ggml library of llama-cpp-python),
 * with and without importance weights; round trips within each type's
 * expected error; all-zero and constant blocks; huge outliers; the recipes'
 * choice of types; importance-matrix files.
 */
#include "unit.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "dtype.h"
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

static void test_imatrix(void)
{
	char path[] = "/tmp/unit-quant.XXXXXX";
	int fd = mkstemp(path);
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
	quant_imatrix *im;
	slm_err err;
	if (ok(quant_imatrix_load(&im, path, &err) == 0, "legacy imatrix loads")) {
		size_t n = 0;
		const float *v = quant_imatrix_find(im, n1, &n);
		ok(v && n == 4 && v[0] == 1 && v[3] == 4, "sums divided by the call count");
		v = quant_imatrix_find(im, n2, &n);
		ok(v && n == 2 && v[1] == 3, "zero calls: values as stored");
		ok(quant_imatrix_find(im, "nope", &n) == NULL, "absent tensor");
		is_int((intmax_t)quant_imatrix_count(im), 2, "two entries");
		quant_imatrix_free(im);
	}
	f = fopen(path, "wb");
	put32(f, 3);
	put32(f, 5);
	fwrite("ab", 1, 2, f);
	fclose(f);
	ok(quant_imatrix_load(&im, path, &err) < 0 && err.code == EX_DATAERR,
	   "truncated imatrix: %s", err.msg);

	/* written by quant_imatrix_save, read back exactly */
	quant_imatrix *w = quant_imatrix_new();
	float a[3] = { 0.1f, 3e-7f, 12345.678f }, b[2] = { 1, 2 };
	quant_imatrix_set(w, "x.weight", b, 2);
	quant_imatrix_set(w, "y.weight", b, 2);
	quant_imatrix_set(w, "x.weight", a, 3);
	if (ok(quant_imatrix_save(w, path, 7, "calib.tok", &err) == 0, "imatrix saved") &&
	    ok(quant_imatrix_load(&im, path, &err) == 0, "and loaded back")) {
		size_t n = 0;
		const float *v = quant_imatrix_find(im, "x.weight", &n);
		ok(v && n == 3 && !memcmp(v, a, sizeof a), "values read back exactly (replaced once)");
		is_int((intmax_t)quant_imatrix_count(im), 2, "two entries saved");
		quant_imatrix_free(im);
	}
	quant_imatrix_free(w);
	unlink(path);
}

int main(void)
{
	test_golden();
	test_roundtrip();
	test_edges();
	test_recipes();
	test_imatrix();
	return done_testing();
}
