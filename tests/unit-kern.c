/*
 * unit-kern.c - tests of libcommon/kern: every available variant (ref,
 * avx2, avx512) against the reference on the same inputs, the reference's
 * dequantization against gguf-py's (golden files in tests/data/kern, made by
 * scripts/make-kern-golden.py), and the products against double-precision
 * dots on unquantized activations.
 *
 *   unit-kern          the tests (TAP); top_srcdir locates tests/data
 *   unit-kern -b [V]   micro-benchmark: matvec GB/s per type for variant V,
 *                      and the rate of a 16-activation matmul
 *                      (default: every available one) on 135M-like shapes
 *   unit-kern -a [V]   micro-benchmark of kern_attn for variant V (default:
 *                      every available one), and its gain over the ref's
 *
 * Batch invariance: in every variant, a matmul of B activations over a
 * range of rows gives bit for bit what a matvec of each activation alone
 * over all the rows gives (memcmp), for B from 1 to 33 and random ranges.
 *
 * Error bounds (u = FLT_EPSILON / 2 = 2^-24):
 *  - dequantization, activation quantization, f32 -> f16: bit-exact.
 *  - products, variant vs reference: both sum the same exact integer block
 *    dots (or the same float products) and differ only in the order and
 *    grouping of float operations. A recursive float sum of k terms with a
 *    few roundings per term errs by at most about (k + c) u sum|term|, so
 *    |y_v - y_ref| <= 2 (k + 16) u S, with k the number of blocks (float
 *    types: n / 8, the reference's chain length) and S = sum over elements
 *    of (|w| + 2 |w_min|) |x_q|, w_min the min/offset part of the weight (a
 *    block's scaled sum and its min term round separately).
 *  - products vs a double dot of dequantized weights and the raw
 *    activations: the activation quantization error, sum |w| |x - x_q| with
 *    |x - x_q| <= amax(group) / 254 (int8) or 2^-9 |x| (bf16), plus the
 *    rounding bound above.
 */
#include "unit.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "kern/kern.h"
#include "kern/kern_blocks.h"

static const char *const TYPES[] = { "f32",  "f16",  "bf16", "q4_0", "q4_1",
				     "q5_0", "q5_1", "q8_0", "q2_k", "q3_k",
				     "q4_k", "q5_k", "q6_k" };
#define NT (int)(sizeof TYPES / sizeof TYPES[0])

static const char *const VARIANTS[] = { "ref", "avx2", "avx512" };
#define NV 3

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* uniform in [lo, hi) */
static float rndf(float lo, float hi)
{
	return lo + (hi - lo) * (float)(rnd() >> 40) * 0x1p-24f;
}

static void *xmalloc(size_t n)
{
	void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
	if (!p) {
		perror("unit-kern");
		exit(1);
	}
	return p;
}

static size_t row_bytes(const slm_dtype *t, int64_t n)
{
	return (size_t)(n / t->block_elems) * t->block_bytes;
}

static void put_h(uint8_t *p, float v)
{
	uint16_t h = kb_f2h(v);
	memcpy(p, &h, 2);
}

/* Random weights: random bytes with the f16 scales set to finite values. */
static void make_weights(const slm_dtype *t, uint8_t *w, int64_t nelems)
{
	int64_t nb = nelems / t->block_elems;
	size_t bb = t->block_bytes;
	for (int64_t i = 0; i < nb * (int64_t)bb; i++)
		w[i] = (uint8_t)rnd();
	for (int64_t i = 0; i < nb; i++) {
		uint8_t *b = w + i * bb;
		switch (t->ggml_id) {
		case KT_F32: {
			float v = rndf(-1, 1);
			memcpy(b, &v, 4);
			break;
		}
		case KT_F16: put_h(b, rndf(-1, 1)); break;
		case KT_BF16: {
			uint16_t h = kb_f2bf(rndf(-1, 1));
			memcpy(b, &h, 2);
			break;
		}
		case KT_Q4_0: case KT_Q5_0: case KT_Q8_0:
			put_h(b, rndf(1e-3f, 2e-2f));
			break;
		case KT_Q4_1: case KT_Q5_1:
			put_h(b, rndf(1e-3f, 2e-2f));
			put_h(b + 2, rndf(-0.1f, 0.1f));
			break;
		case KT_Q2_K:
			put_h(b + 80, rndf(1e-3f, 2e-2f));
			put_h(b + 82, rndf(1e-3f, 2e-2f));
			break;
		case KT_Q3_K: put_h(b + 108, rndf(1e-3f, 2e-2f)); break;
		case KT_Q4_K: case KT_Q5_K:
			put_h(b, rndf(1e-4f, 2e-3f));
			put_h(b + 2, rndf(1e-4f, 2e-3f));
			break;
		case KT_Q6_K: put_h(b + 208, rndf(1e-4f, 2e-3f)); break;
		}
	}
}

/* The same weights with the quants zeroed: what remains is the min/offset
 * part (q4_1, q5_1 m; k-quants -dmin m) or 0. */
static void zero_quants(const slm_dtype *t, uint8_t *w, int64_t nelems)
{
	int64_t nb = nelems / t->block_elems;
	for (int64_t i = 0; i < nb; i++) {
		uint8_t *b = w + i * t->block_bytes;
		switch (t->ggml_id) {
		case KT_Q4_1: memset(b + 4, 0, 16); break;
		case KT_Q5_1: memset(b + 4, 0, 20); break;
		case KT_Q2_K: memset(b + 16, 0, 64); break;
		case KT_Q4_K: memset(b + 16, 0, 128); break;
		case KT_Q5_K: memset(b + 16, 0, 160); break;
		default: memset(b, 0, t->block_bytes); break;
		}
	}
}

/* Dequantized activation (what the kernels multiply with). */
static void act_values(const slm_dtype *t, const void *act, int64_t n, float *xq)
{
	const uint8_t *a = act;
	switch (t->ggml_id) {
	case KT_F32:
	case KT_F16:
		memcpy(xq, act, (size_t)n * 4);
		break;
	case KT_BF16:
		for (int64_t i = 0; i < n; i++)
			xq[i] = kb_bf2f(kb_ld16(a + 2 * i));
		break;
	case KT_Q2_K: case KT_Q3_K: case KT_Q4_K: case KT_Q5_K: case KT_Q6_K: {
		int64_t nb = n / QKK;
		for (int64_t i = 0; i < n; i++)
			xq[i] = kb_bits_f32(kb_ld32(a + 4 * (i / QKK))) *
				(float)(int8_t)a[ak_qs_off(nb) + i];
		break;
	}
	default: {
		int64_t nb = n / QK;
		for (int64_t i = 0; i < n; i++)
			xq[i] = kb_bits_f32(kb_ld32(a + 4 * (i / QK))) *
				(float)(int8_t)a[a32_qs_off(nb) + i];
	}
	}
}

static int is_k(const slm_dtype *t)
{
	return t->block_elems == QKK;
}

static const kern_ops *ops[NV];

/* ---------------------------------------------------------------------
 * Dequantization
 * --------------------------------------------------------------------- */

static char *data_path(const char *name, const char *ext)
{
	const char *top = getenv("top_srcdir");
	static char buf[4096];
	snprintf(buf, sizeof buf, "%s/tests/data/kern/%s%s", top ? top : ".",
		 name, ext);
	return buf;
}

static void *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long l = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *p = xmalloc((size_t)l + 1);
	if (fread(p, 1, (size_t)l, f) != (size_t)l) {
		fclose(f);
		free(p);
		return NULL;
	}
	fclose(f);
	*len = (size_t)l;
	return p;
}

static void test_golden(const slm_dtype *t)
{
	size_t lb, lf;
	uint8_t *b = read_file(data_path(t->name, ".bin"), &lb);
	float *want = read_file(data_path(t->name, ".f32"), &lf);
	if (!ok(b && want && lf % 4 == 0 &&
			lb == row_bytes(t, (int64_t)(lf / 4)),
		"%s: golden files readable", t->name)) {
		free(b);
		free(want);
		return;
	}
	int64_t n = (int64_t)(lf / 4);
	float *got = xmalloc(lf);
	for (int v = 0; v < NV; v++) {
		if (!ops[v])
			continue;
		memset(got, 0xff, lf);
		ops[v]->dequant[t->ggml_id](b, got, n);
		ok(!memcmp(got, want, lf), "%s: %s dequant == gguf-py (%jd values)",
		   t->name, VARIANTS[v], (intmax_t)n);
	}
	free(got);
	free(b);
	free(want);
}

static void test_dequant(const slm_dtype *t)
{
	int64_t n = 4096;
	size_t rb = row_bytes(t, n);
	uint8_t *w = xmalloc(rb + 1);
	make_weights(t, w + 1, n); /* odd address: unaligned loads */
	float *ref = xmalloc((size_t)n * 4), *got = xmalloc((size_t)n * 4);
	ops[0]->dequant[t->ggml_id](w + 1, ref, n);
	for (int v = 1; v < NV; v++) {
		if (!ops[v])
			continue;
		ops[v]->dequant[t->ggml_id](w + 1, got, n);
		ok(!memcmp(got, ref, (size_t)n * 4), "%s: %s dequant == ref",
		   t->name, VARIANTS[v]);
	}
	free(w);
	free(ref);
	free(got);
}

/* every half: f16 dequant of each variant equals the reference */
static void test_f16_all(void)
{
	uint16_t *h = xmalloc(65536 * 2);
	float *ref = xmalloc(65536 * 4), *got = xmalloc(65536 * 4);
	for (int i = 0; i < 65536; i++)
		h[i] = (uint16_t)i;
	ops[0]->dequant[KT_F16](h, ref, 65536);
	for (int v = 1; v < NV; v++) {
		if (!ops[v])
			continue;
		ops[v]->dequant[KT_F16](h, got, 65536);
		int bad = 0;
		for (int i = 0; i < 65536; i++)
			if (isnan(ref[i]) ? !isnan(got[i]) : memcmp(&ref[i], &got[i], 4))
				bad++;
		ok(!bad, "f16: %s converts all 65536 halves as ref (%d differ)",
		   VARIANTS[v], bad);
	}
	/* round trip of every non-NaN half through the reference conversions */
	int bad = 0;
	for (int i = 0; i < 65536; i++)
		if (!isnan(ref[i]) && kb_f2h(ref[i]) != i)
			bad++;
	ok(!bad, "f16: float -> half -> float round trip (%d differ)", bad);
	free(h);
	free(ref);
	free(got);
}

/* bf16 activations: rounding, NaN, subnormals, as the reference */
static void test_bf16_act(void)
{
	enum { N = 64 };
	float x[N];
	uint16_t ref[N], got[N + 32];
	for (int i = 0; i < N; i++)
		x[i] = kb_bits_f32((uint32_t)rnd());
	x[0] = NAN;
	x[1] = -INFINITY;
	x[2] = 0x1p-140f;
	x[3] = kb_bits_f32(0x3f808000); /* a tie, rounds to even */
	x[4] = kb_bits_f32(0x3f818000); /* a tie, rounds up */
	x[5] = kb_bits_f32(0x7f7fffff); /* rounds to infinity */
	const slm_dtype *t = dtype_by_name("bf16");
	uint16_t *r = xmalloc(kern_act_bytes(t, N)), *g = xmalloc(kern_act_bytes(t, N));
	ops[0]->quant_act[KT_BF16](x, r, N);
	memcpy(ref, r, sizeof ref);
	ok(ref[3] == 0x3f80 && ref[4] == 0x3f82 && ref[5] == 0x7f80 &&
		   (ref[0] & 0x7fc0) == 0x7fc0,
	   "bf16 activation: ref rounds to nearest even");
	for (int v = 1; v < NV; v++) {
		if (!ops[v])
			continue;
		ops[v]->quant_act[KT_BF16](x, g, N);
		memcpy(got, g, N * 2);
		ok(!memcmp(got, ref, sizeof ref), "bf16 activation: %s == ref", VARIANTS[v]);
	}
	free(r);
	free(g);
}

static void test_f32_to_f16(void)
{
	enum { N = 4099 };
	float *x = xmalloc(N * 4);
	uint16_t *ref = xmalloc(N * 2), *got = xmalloc(N * 2);
	for (int i = 0; i < N; i++) {
		/* wide exponents: subnormal halves, halfway cases, overflow */
		float m = rndf(-1, 1);
		int e = (int)(rnd() % 50) - 30;
		x[i] = ldexpf(m, e);
		if (i % 7 == 0) /* an exact halfway point between two halves */
			x[i] = kb_h2f((uint16_t)(rnd() & 0x7bfe)) * (1.0f + 0x1p-11f);
	}
	x[0] = INFINITY;
	x[1] = -INFINITY;
	x[2] = 65520.0f;
	x[3] = 65519.99f;
	x[4] = 0x1p-25f;
	x[5] = 0x1.8p-25f;
	x[6] = -0.0f;
	x[7] = NAN;
	ops[0]->f32_to_f16(ref, x, N);
	ok(ref[0] == 0x7c00 && ref[1] == 0xfc00 && ref[2] == 0x7c00 &&
		   ref[3] == 0x7bff && ref[4] == 0 && ref[5] == 1 &&
		   ref[6] == 0x8000 && (ref[7] & 0x7e00) == 0x7e00,
	   "f32_to_f16: ref special cases");
	for (int v = 1; v < NV; v++) {
		if (!ops[v])
			continue;
		ops[v]->f32_to_f16(got, x, N);
		ok(!memcmp(got, ref, N * 2), "f32_to_f16: %s == ref", VARIANTS[v]);
	}
	free(x);
	free(ref);
	free(got);
}

/* ---------------------------------------------------------------------
 * Products
 * --------------------------------------------------------------------- */

static int g_fail_diag;

static void test_products(const slm_dtype *t, int64_t n, int nrows)
{
	int id = t->ggml_id;
	size_t rb = row_bytes(t, n), ab = kern_act_bytes(t, n);
	enum { B = 5 };
	uint8_t *w = xmalloc(rb * nrows), *w0 = xmalloc(rb * nrows);
	float *wd = xmalloc((size_t)n * nrows * 4), *wm = xmalloc((size_t)n * nrows * 4);
	float *x = xmalloc((size_t)n * B * 4), *xq = xmalloc((size_t)n * 4);
	uint8_t *act = xmalloc(ab * B), *act2 = xmalloc(ab * B);
	float *yref = xmalloc((size_t)nrows * B * 4), *y = xmalloc((size_t)nrows * B * 4 + 4);
	double *tol = xmalloc((size_t)nrows * B * 8);

	make_weights(t, w, n * nrows);
	memcpy(w0, w, rb * nrows);
	zero_quants(t, w0, n * nrows);
	ops[0]->dequant[id](w, wd, n * nrows);
	ops[0]->dequant[id](w0, wm, n * nrows);
	for (int64_t i = 0; i < n * B; i++)
		x[i] = rndf(-1, 1) * (i % 97 == 0 ? 8.0f : 1.0f); /* some outliers */
	/* activation 1 starts with a group of zeros (scale 0); activation 2
	 * with exact halves (ties of the rounding) */
	for (int64_t i = 0; i < (is_k(t) ? QKK : QK) && i < n; i++) {
		x[n + i] = 0.0f;
		if (2 * n + i < n * B)
			x[2 * n + i] = i == 0 ? 127.0f : (float)((int)(rnd() % 255) - 127) * 0.5f;
	}

	/* activation quantizers: same bytes in every variant */
	for (int b = 0; b < B; b++)
		ops[0]->quant_act[id](x + b * n, act + b * ab, n);
	for (int v = 1; v < NV; v++) {
		if (!ops[v])
			continue;
		memset(act2, 0x55, ab * B);
		for (int b = 0; b < B; b++)
			ops[v]->quant_act[id](x + b * n, act2 + b * ab, n);
		ok(!memcmp(act, act2, ab * B), "%s n=%jd: %s quant_act == ref",
		   t->name, (intmax_t)n, VARIANTS[v]);
	}

	/* and on hostile values: NaN, infinities, scales that round to f16
	 * subnormals, zero or infinity, one kind per group */
	{
		int64_t g = is_k(t) ? QKK : QK;
		float *xs = xmalloc((size_t)n * 4);
		uint8_t *as = xmalloc(ab), *as2 = xmalloc(ab);
		for (int64_t i = 0; i < n; i++) {
			float r = rndf(-1, 1);
			switch ((i / g) % 6) {
			case 0: xs[i] = i % g == 3 ? NAN : r; break;
			case 1: xs[i] = i % g == 5 ? -INFINITY : r; break;
			case 2: xs[i] = r * 1e-6f; break;
			case 3: xs[i] = r * 1e-9f; break;
			case 4: xs[i] = r * 1e30f; break;
			default: xs[i] = i % g == 19 ? NAN : r * 4e5f; break;
			}
		}
		ops[0]->quant_act[id](xs, as, n);
		for (int v = 1; v < NV; v++) {
			if (!ops[v])
				continue;
			memset(as2, 0x55, ab);
			ops[v]->quant_act[id](xs, as2, n);
			ok(!memcmp(as, as2, ab), "%s n=%jd: %s quant_act == ref on NaN, inf, tiny, huge",
			   t->name, (intmax_t)n, VARIANTS[v]);
		}
		free(xs);
		free(as);
		free(as2);
	}

	/* reference products and their bounds */
	int64_t k = t->block_elems == 1 ? n / 8 : n / t->block_elems;
	int grp = is_k(t) ? QKK : QK;
	int qerr_ok = 1, cols_ok = 1;
	double worst = 0;
	ops[0]->matmul[id](n, w, rb, nrows, act, ab, B, yref, nrows);
	for (int b = 0; b < B; b++) {
		act_values(t, act + b * ab, n, xq);
		const float *xb = x + b * n;
		for (int r = 0; r < nrows; r++) {
			const float *wr = wd + (int64_t)r * n, *mr = wm + (int64_t)r * n;
			double S = 0, exact = 0, qe = 0;
			for (int64_t i = 0; i < n; i++) {
				S += (fabs(wr[i]) + 2 * fabs(mr[i])) * fabs(xq[i]);
				exact += (double)wr[i] * xb[i];
			}
			/* a-priori activation quantization error */
			if (id == KT_F16) { /* activations rounded to f16 */
				for (int64_t i = 0; i < n; i++)
					qe += fabs(wr[i]) * fabs(xb[i]) * 0x1p-11;
			} else if (id == KT_BF16) {
				for (int64_t i = 0; i < n; i++)
					qe += fabs(wr[i]) * fabs(xb[i]) * 0x1p-9;
			} else if (id != KT_F32 && id != KT_F16) {
				for (int64_t g = 0; g < n; g += grp) {
					double amax = 0, sw = 0;
					for (int64_t i = g; i < g + grp; i++) {
						amax = fmax(amax, fabs(xb[i]));
						sw += fabs(wr[i]);
					}
					/* half a step, plus the step rounded to
					 * a half (32-element groups) */
					qe += sw * amax * (1 / 254.0 + (is_k(t) ? 1e-6 : 0x1p-11));
				}
				/* the min term uses half(d * sum(q)) */
				if (id == KT_Q4_1 || id == KT_Q5_1)
					for (int64_t i = 0; i < n; i++)
						qe += fabs(mr[i]) * fabs(xq[i]) * 0x1p-9;
			}
			tol[b * nrows + r] = 2.0 * (double)(k + 16) * 0x1p-24 * S + 1e-30;
			double yr = yref[b * nrows + r];
			double e = fabs(yr - exact), bound = qe + tol[b * nrows + r] +
							     4 * 0x1p-24 * S;
			if (e > bound) {
				if (qerr_ok && g_fail_diag++ < 10)
					diag("%s row %d act %d: |%g - %g| = %g > %g",
					     t->name, r, b, yr, exact, e, bound);
				qerr_ok = 0;
			}
			if (bound > 0)
				worst = fmax(worst, e / bound);
		}
	}
	ok(qerr_ok, "%s n=%jd: ref within the activation quantization bound "
		    "of the exact dot (worst %.2f of the bound)",
	   t->name, (intmax_t)n, worst);
	/* the reference's matmul is its matvec, column by column */
	for (int b = 0; b < B; b++) {
		ops[0]->matmul[id](n, w, rb, nrows, act + b * ab, ab, 1, y, 0);
		if (memcmp(y, yref + b * nrows, (size_t)nrows * 4))
			cols_ok = 0;
	}
	ok(cols_ok, "%s n=%jd: ref matmul == ref matvec per column", t->name,
	   (intmax_t)n);

	for (int v = 1; v < NV; v++) {
		if (!ops[v])
			continue;
		/* matvec over odd row ranges: [3, nrows-2), then [0, nrows) */
		int r0 = 3, r1 = nrows - 2, good = 1;
		double wr = 0;
		for (int pass = 0; pass < 2; pass++) {
			for (int b = 0; b < B; b++) {
				y[r1 - r0] = 12345.0f; /* guard past the range */
				ops[v]->matmul[id](n, w + r0 * rb, rb, r1 - r0, act + b * ab,
						   0, 1, y, 0);
				if (y[r1 - r0] != 12345.0f)
					good = 0;
				for (int r = r0; r < r1; r++) {
					double d = fabs((double)y[r - r0] - yref[b * nrows + r]);
					double tl = tol[b * nrows + r];
					wr = fmax(wr, d / tl);
					if (d > tl) {
						if (good && g_fail_diag++ < 10)
							diag("%s %s row %d act %d: %.9g vs ref %.9g (tol %g)",
							     t->name, VARIANTS[v], r, b, y[r - r0],
							     yref[b * nrows + r], tl);
						good = 0;
					}
				}
			}
			r0 = 0;
			r1 = nrows;
		}
		ok(good, "%s n=%jd: %s matvec == ref within bound (worst %.3f of it)",
		   t->name, (intmax_t)n, VARIANTS[v], wr);

		/* matmul of B activations, rows [1, nrows), ldy > rows */
		int64_t ldy = nrows + 3;
		float *ym = xmalloc((size_t)ldy * B * 4);
		good = 1;
		ops[v]->matmul[id](n, w + rb, rb, nrows - 1, act, ab, B, ym, ldy);
		for (int b = 0; b < B; b++)
			for (int r = 1; r < nrows; r++) {
				double d = fabs((double)ym[b * ldy + r - 1] - yref[b * nrows + r]);
				if (d > tol[b * nrows + r])
					good = 0;
			}
		ok(good, "%s n=%jd: %s matmul (B=%d) == ref within bound", t->name,
		   (intmax_t)n, VARIANTS[v], B);
		free(ym);
	}

	free(w);
	free(w0);
	free(wd);
	free(wm);
	free(x);
	free(xq);
	free(act);
	free(act2);
	free(yref);
	free(y);
	free(tol);
}

/* Batch and row-range invariance: for every variant, a matmul of B
 * activations over rows [r0, r1) gives, bit for bit, what a matvec of each
 * activation alone over all the rows gives (the per-row, per-activation
 * reduction order does not depend on B, on the activation's place in the
 * batch, nor on where the rows are split between threads). Sizes cover
 * block counts of every residue mod 4 (the SIMD kernels handle blocks in
 * pairs and accumulate in alternating chains); rows in tiles of 2 and
 * activations in tiles of 4 meet odd leftovers with the odd B and ranges,
 * and 41 rows give the 16-row tiles of avx512 full tiles, a last one
 * overlapping the one before, and partial ones (ranges under 16 rows). */
static void test_batch_invariance(const slm_dtype *t)
{
	static const int BS[] = { 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33 };
	enum { NB = sizeof BS / sizeof BS[0], BMAX = 33, NROWS = 41, NRANGE = 6 };
	int id = t->ggml_id;
	int64_t be = t->block_elems, ns[8];
	int nn = 0;
	if (be == 1) {
		ns[nn++] = 37;
		ns[nn++] = 64;
		ns[nn++] = 1003;
	} else if (be == QK) {
		/* nb 1, 2, 3, 6, 7, 37; 97 (activations past L1: other tiles) */
		static const int nbs[] = { 1, 2, 3, 6, 7, 37, 97 };
		for (int k = 0; k < 7; k++)
			ns[nn++] = QK * nbs[k];
	} else {
		ns[nn++] = QKK;
		ns[nn++] = 3 * QKK;
	}
	for (int v = 0; v < NV; v++) {
		if (!ops[v])
			continue;
		int good[NB], split_ok = 1, guard_ok = 1;
		for (int k = 0; k < NB; k++)
			good[k] = 1;
		for (int ni = 0; ni < nn; ni++) {
			int64_t n = ns[ni];
			size_t rb = row_bytes(t, n), ab = kern_act_bytes(t, n);
			uint8_t *w = xmalloc(rb * NROWS), *acts = xmalloc(ab * BMAX);
			float *x = xmalloc((size_t)n * 4);
			float *yfull = xmalloc((size_t)NROWS * BMAX * 4);
			float *ym = xmalloc(((size_t)(NROWS + 3) * BMAX + 8) * 4);
			make_weights(t, w, n * NROWS);
			for (int b = 0; b < BMAX; b++) {
				for (int64_t i = 0; i < n; i++)
					x[i] = rndf(-1, 1) * (rnd() % 61 == 0 ? 16.0f : 1.0f);
				ops[0]->quant_act[id](x, acts + b * ab, n);
			}
			/* the reference result: one activation, all rows */
			for (int b = 0; b < BMAX; b++)
				ops[v]->matmul[id](n, w, rb, NROWS, acts + b * ab, 0, 1,
						   yfull + b * NROWS, 0);
			for (int q = 0; q < NRANGE; q++) {
				int r0, r1;
				if (q == 0) {
					r0 = 0;
					r1 = NROWS;
				} else {
					r0 = (int)(rnd() % NROWS);
					r1 = r0 + 1 + (int)(rnd() % (uint64_t)(NROWS - r0));
				}
				int nr = r1 - r0;
				const uint8_t *wr = w + (size_t)r0 * rb;
				/* matvec over a sub-range (a thread's share) */
				for (int b = 0; b < BMAX; b += 4) {
					ops[v]->matmul[id](n, wr, rb, nr, acts + b * ab, 0, 1, ym, 0);
					if (memcmp(ym, yfull + b * NROWS + r0, (size_t)nr * 4))
						split_ok = 0;
				}
				for (int k = 0; k < NB; k++) {
					int B = BS[k];
					int64_t ldy = nr + (int64_t)(rnd() % 4);
					size_t tot = (size_t)ldy * B + 8;
					for (size_t i = 0; i < tot; i++)
						ym[i] = -7.5f;
					ops[v]->matmul[id](n, wr, rb, nr, acts, ab, B, ym, ldy);
					for (int b = 0; b < B; b++) {
						if (memcmp(ym + b * ldy, yfull + b * NROWS + r0,
							   (size_t)nr * 4)) {
							if (good[k] && g_fail_diag++ < 10)
								diag("%s %s n=%jd rows [%d, %d) B=%d act %d: "
								     "matmul != matvec", t->name,
								     VARIANTS[v], (intmax_t)n, r0, r1, B, b);
							good[k] = 0;
						}
						for (int64_t j = nr; j < ldy; j++)
							if (ym[b * ldy + j] != -7.5f)
								guard_ok = 0;
					}
					for (size_t i = (size_t)ldy * B; i < tot; i++)
						if (ym[i] != -7.5f)
							guard_ok = 0;
				}
			}
			free(w);
			free(acts);
			free(x);
			free(yfull);
			free(ym);
		}
		for (int k = 0; k < NB; k++)
			ok(good[k], "%s: %s matmul B=%d == matvec per activation, "
				    "bitwise (random row ranges)", t->name, VARIANTS[v], BS[k]);
		ok(split_ok, "%s: %s matvec over a row range == the same rows of "
			     "the whole, bitwise", t->name, VARIANTS[v]);
		ok(guard_ok, "%s: %s matmul writes only y[b * ldy + r], r < rows",
		   t->name, VARIANTS[v]);
	}
}

/* The tile16 layout (dtype.h): the bytes where its definition puts them,
 * back again by dtype_untile_rows, and every product and dequantization
 * through it bit for bit that of the plain rows: whole tiles in each
 * variant's tile kernels, any row range through kern_mat_mul. */
static void test_tiled(const slm_dtype *t)
{
	static const int NR[] = { 9, 32, 53 };
	static const int BS[] = { 1, 3, 8, 9, 17 };
	const int id = t->ggml_id, bb = (int)t->block_bytes;
	const int64_t n = t->block_elems == QK ? QK * 7 : QKK * 3;
	const int ho = bb % 4 != 2 ? -1 : id == KT_Q6_K ? 208 : 0;
	int lay_ok = 1, back_ok = 1, tk_ok = 1, mat_ok = 1, deq_ok = 1;
	for (int ni = 0; ni < 3; ni++) {
		const int nr = NR[ni], te = nr / 16 * 16;
		const size_t rb = row_bytes(t, n), ab = kern_act_bytes(t, n);
		const int64_t nb = n / t->block_elems;
		uint8_t *w = xmalloc(rb * nr), *wt = xmalloc(rb * nr), *back = xmalloc(rb * nr);
		uint8_t *acts = xmalloc(ab * 17);
		float *x = xmalloc((size_t)n * 4), *y0 = xmalloc((size_t)nr * 17 * 4);
		float *y1 = xmalloc((size_t)nr * 17 * 4 + 64), *d0 = xmalloc((size_t)nr * n * 4);
		float *d1 = xmalloc((size_t)nr * n * 4);
		make_weights(t, w, n * nr);
		dtype_tile(t, n, nr, w, wt);
		/* the definition, byte by byte */
		for (int r = 0; r < nr; r++)
			for (int64_t i = 0; i < nb; i++) {
				const uint8_t *p = w + (size_t)r * rb + (size_t)i * bb;
				if (r >= te) {
					lay_ok &= !memcmp(wt + (size_t)r * rb + (size_t)i * bb, p, (size_t)bb);
					continue;
				}
				const uint8_t *g = wt + (size_t)(r / 16) * 16 * rb + (size_t)i * 16 * bb;
				const uint8_t *pw = p;
				if (ho >= 0) {
					lay_ok &= !memcmp(g + 2 * (r % 16), p + ho, 2);
					g += 32;
					if (ho == 0)
						pw += 2;
				}
				for (int k = 0; k < bb / 4; k++)
					lay_ok &= !memcmp(g + 4 * (16 * k + r % 16), pw + 4 * k, 4);
			}
		dtype_untile_rows(t, n, nr, wt, 0, nr, back);
		back_ok &= !memcmp(back, w, rb * nr);
		for (int b = 0; b < 17; b++) {
			for (int64_t i = 0; i < n; i++)
				x[i] = rndf(-1, 1);
			ops[0]->quant_act[id](x, acts + b * ab, n);
		}
		for (int v = 0; v < NV; v++) {
			if (!ops[v] || !ops[v]->matmul_t[id] || !te)
				continue;
			for (int k = 0; k < 5; k++) {
				int B = BS[k];
				ops[v]->matmul[id](n, w, rb, te, acts, ab, B, y0, te);
				ops[v]->matmul_t[id](n, wt, rb, te, acts, ab, B, y1, te);
				if (memcmp(y0, y1, (size_t)te * B * 4)) {
					if (tk_ok)
						diag("%s %s: tile kernel rows %d B=%d differ", t->name,
						     VARIANTS[v], te, B);
					tk_ok = 0;
				}
			}
		}
		const kern_mat pm = { t, w, n, nr, 0 }, tm = { t, wt, n, nr, 1 };
		for (int q = 0; q < 12; q++) {
			int r0 = q ? (int)(rnd() % nr) : 0;
			int r1 = q ? r0 + 1 + (int)(rnd() % (uint64_t)(nr - r0)) : nr;
			int B = q % 3 ? 1 : 5;
			kern_mat_mul(&pm, acts, B, y0, r1 - r0, r0, r1);
			kern_mat_mul(&tm, acts, B, y1, r1 - r0, r0, r1);
			if (memcmp(y0, y1, (size_t)(r1 - r0) * B * 4)) {
				if (mat_ok)
					diag("%s: kern_mat_mul rows [%d, %d) B=%d: tiled != plain",
					     t->name, r0, r1, B);
				mat_ok = 0;
			}
			kern_mat_dequant(&pm, r0, r1, d0);
			kern_mat_dequant(&tm, r0, r1, d1);
			deq_ok &= !memcmp(d0, d1, (size_t)(r1 - r0) * n * 4);
		}
		free(w);
		free(wt);
		free(back);
		free(acts);
		free(x);
		free(y0);
		free(y1);
		free(d0);
		free(d1);
	}
	ok(lay_ok, "%s: tile16 bytes where dtype.h puts them (rows past the tiles plain)",
	   t->name);
	ok(back_ok, "%s: dtype_untile_rows gives the plain rows back", t->name);
	ok(tk_ok, "%s: tile kernels (every variant that has them) == the plain kernels, bitwise",
	   t->name);
	ok(mat_ok, "%s: kern_mat_mul on tile16 == plain over any row range (%s), bitwise",
	   t->name, kern_variant_name());
	ok(deq_ok, "%s: kern_mat_dequant on tile16 == plain, bitwise", t->name);
}

/* public entry points: dispatch through the current variant */
static void test_api(void)
{
	const char *want = getenv("SLM_KERNEL");
	const char *name = kern_variant_name();
	ok(!strcmp(name, "ref") || !strcmp(name, "avx2") || !strcmp(name, "avx512"),
	   "variant in use: %s", name);
	if (want && kern_ops_for(want))
		is_str(name, want, "SLM_KERNEL chooses the variant");
	ok(kern_ops_for("nonsense") == NULL, "unknown variant: NULL");
	ok(kern_ops_for("ref") == &kern_ref_ops, "ref is always there");

	const slm_dtype *t = dtype_by_name("q4_0");
	int64_t n = 64;
	uint8_t w[3 * 36];
	make_weights(t, w, 3 * n);
	float x[64], y[3], y2[6], yr[3];
	for (int i = 0; i < n; i++)
		x[i] = rndf(-1, 1);
	uint8_t *act = xmalloc(2 * kern_act_bytes(t, n));
	kern_quant_act(t, x, act, n);
	kern_quant_act(t, x, act + kern_act_bytes(t, n), n);
	kern_matvec(t, w, n, act, y, 1, 3);
	kern_matmul(t, w, n, act, 2, y2, 3, 1, 3);
	kern_ref_ops.matmul[KT_Q4_0](n, w, 36, 3, act, 0, 1, yr, 0);
	ok(fabsf(y[0] - yr[1]) < 1e-4f && fabsf(y[1] - yr[2]) < 1e-4f &&
		   y2[0] == y[0] && y2[1] == y[1] && y2[3] == y[0] && y2[4] == y[1],
	   "kern_matvec / kern_matmul: rows [1, 3)");
	ok(kern_supported(t) && !kern_supported(dtype_by_name("iq2_xs")),
	   "kern_supported");
	free(act);
}

/* ---------------------------------------------------------------------
 * Float helpers
 * --------------------------------------------------------------------- */

static int close_rel(const float *a, const float *b, int64_t n, double rel,
		     double abs_)
{
	for (int64_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - b[i]);
		if (!(d <= rel * fabs((double)b[i]) + abs_)) {
			diag("  [%jd] %.9g vs ref %.9g", (intmax_t)i, a[i], b[i]);
			return 0;
		}
	}
	return 1;
}

static void test_helpers(void)
{
	enum { N = 1003 };
	float *x = xmalloc(N * 4), *g = xmalloc(N * 4), *u = xmalloc(N * 4);
	float *wv = xmalloc(N * 4), *r = xmalloc(N * 4), *o = xmalloc(N * 4);
	for (int i = 0; i < N; i++) {
		x[i] = rndf(-3, 3);
		g[i] = rndf(-12, 12);
		u[i] = rndf(-2, 2);
		wv[i] = rndf(0.5f, 1.5f);
	}
	for (int v = 1; v < NV; v++) {
		const kern_ops *p = ops[v];
		if (!p)
			continue;
		const char *vn = VARIANTS[v];

		ops[0]->rmsnorm(r, x, wv, N, 1e-6f);
		p->rmsnorm(o, x, wv, N, 1e-6f);
		ok(close_rel(o, r, N, 1e-5, 0), "rmsnorm: %s == ref (rel 1e-5)", vn);
		ops[0]->rmsnorm(r, x, NULL, 17, 1e-5f);
		p->rmsnorm(o, x, NULL, 17, 1e-5f);
		ok(close_rel(o, r, 17, 1e-5, 0), "rmsnorm n=17 no weight: %s == ref", vn);

		/* softmax with -INFINITY (masked) entries */
		for (int n = 1; n <= N; n += N - 1) {
			memcpy(r, g, n * 4);
			for (int i = 3; i < n; i += 5)
				r[i] = -INFINITY;
			memcpy(o, r, n * 4);
			ops[0]->softmax(r, n);
			p->softmax(o, n);
			int zeros = 1;
			for (int i = 3; i < n; i += 5)
				zeros &= o[i] == 0.0f;
			ok(close_rel(o, r, n, 1e-5, 1e-30) && zeros,
			   "softmax n=%d: %s == ref (rel 1e-5), masked -> 0", n, vn);
		}

		/* gated activations: relative 1e-5, plus the tanh-by-exp
		 * absolute error (1e-7 of tanh, times |g u|) */
		for (int i = 0; i < N; i++)
			wv[i] = 1e-6f * fabsf(g[i] * u[i]);
		ops[0]->swiglu(r, g, u, N);
		p->swiglu(o, g, u, N);
		ok(close_rel(o, r, N, 1e-5, 1e-30), "swiglu: %s == ref", vn);
		ops[0]->geglu(r, g, u, N);
		p->geglu(o, g, u, N);
		int good = 1;
		for (int i = 0; i < N; i++)
			good &= fabs((double)o[i] - r[i]) <= 1e-5 * fabs(r[i]) + wv[i];
		ok(good, "geglu: %s == ref", vn);
		memcpy(o, g, N * 4); /* in place (y == g) */
		p->swiglu(o, o, u, N);
		ops[0]->swiglu(r, g, u, N);
		ok(close_rel(o, r, N, 1e-5, 1e-30), "swiglu in place: %s", vn);

		/* rope: normal and neox, full and partial rotation */
		for (int mode = 0; mode < 4; mode++) {
			int nh = 3, hd = 64, nrot = mode & 2 ? 40 : 64, neox = mode & 1;
			float cs[64];
			for (int i = 0; i < nrot / 2; i++) {
				float th = 7.0f * powf(10000.0f, -2.0f * i / nrot);
				cs[i] = cosf(th);
				cs[nrot / 2 + i] = sinf(th);
			}
			memcpy(r, x, nh * hd * 4);
			memcpy(o, x, nh * hd * 4);
			ops[0]->rope(r, nh, hd, nrot, cs, neox);
			p->rope(o, nh, hd, nrot, cs, neox);
			ok(close_rel(o, r, nh * hd, 0, 3e-6 * 3), "rope %s nrot=%d: %s == ref",
			   neox ? "neox" : "normal", nrot, vn);
		}
	}
	free(x);
	free(g);
	free(u);
	free(wv);
	free(r);
	free(o);
}

/* ---------------------------------------------------------------------
 * kern_attn: several queries of one KV head against the same f16 rows
 *
 * Bound, variant vs reference, output i of a query with rows [p0, p1)
 * (n of them), u = 2^-24: the scores differ by the summation order of the
 * dot products only, |ds_t| <= D_t = 2 (hd/8 + 16) u scale sum|q||K_t|
 * (the float products' bound above, k = hd/8: the reference's 8 lanes
 * chain hd/8 products each, the variants' lane chains and reduction trees
 * are shorter); the softmax then moves each weight by a factor within
 * exp(+-2 max D_t), and by its own exp and sum roundings
 * (float sums over n/8 terms a lane: (n/8 + 16) 2u relative). Rounding to
 * f16 may then go one step apart: 2^-10 relative (a half-ulp each way) or
 * 2^-24 absolute (subnormal halves). The weighted sums of V are the same
 * fma chains in every variant (f16 x f16 products are exact), so given
 * the same weights they agree bit for bit; with weights dw_t apart they
 * differ by sum_t |dw_t| |V_t[i]|, plus both sums' roundings, at most
 * 2 (n + 1) u sum_t w_t |V_t[i]|.
 *
 * Exactly: the reference is kern.h's definition of it, written out
 * independently below (attn_def_*). In every variant: rows outside a
 * query's [p0, p1) do not contribute (NaN there changes nothing), and a
 * query's output is the same bit for bit alone or among others of any
 * number and order. With V_t the unit vector e_t, out[t] is the weight of
 * row t: an f16 value, 0 outside [p0, p1).
 * --------------------------------------------------------------------- */

typedef struct attn_set {
	int hd, nq, nrow;
	size_t stride; /* bytes */
	uint16_t *K, *V;
	float *q, *out, *scratch;
	kern_attn_q *qs;
	float scale;
} attn_set;

/* E entries of G heads at positions P..P+E-1 (causal), rows [0, P + E);
 * win > 0: each sees its last win rows only. qamp: |q| <= qamp. onehot: V_t
 * = e_t (needs hd >= P + E). */
static void attn_make(attn_set *s, int hd, int G, int E, int P, int win,
		      float qamp, int onehot)
{
	s->hd = hd;
	s->nq = G * E;
	s->nrow = P + E;
	s->stride = (size_t)(hd + 24) * 2; /* rows of a cache with other heads */
	s->K = xmalloc(s->stride * (size_t)s->nrow + 64);
	s->V = xmalloc(s->stride * (size_t)s->nrow + 64);
	for (int t = 0; t < s->nrow; t++)
		for (int i = 0; i < hd + 24; i++) {
			uint8_t *k = (uint8_t *)s->K + t * s->stride + 2 * i;
			uint8_t *v = (uint8_t *)s->V + t * s->stride + 2 * i;
			put_h(k, rndf(-1, 1));
			put_h(v, onehot ? (i == t ? 1.0f : 0.0f) : rndf(-1, 1));
		}
	s->q = xmalloc((size_t)s->nq * hd * 4);
	s->out = xmalloc((size_t)s->nq * hd * 4);
	s->qs = xmalloc((size_t)s->nq * sizeof *s->qs);
	for (int i = 0; i < s->nq * hd; i++)
		s->q[i] = kb_h2f(kb_f2h(rndf(-qamp, qamp)));
	for (int e = 0; e < E; e++)
		for (int g = 0; g < G; g++) {
			kern_attn_q *a = &s->qs[e * G + g];
			a->q = s->q + (size_t)(e * G + g) * hd;
			a->out = s->out + (size_t)(e * G + g) * hd;
			a->p1 = P + e + 1;
			a->p0 = win > 0 && a->p1 > win ? a->p1 - win : 0;
		}
	s->scale = 1.0f / sqrtf((float)hd);
	size_t sf = kern_attn_scratch(s->nq, s->nrow, hd);
	s->scratch = xmalloc(sf * 4);
	for (size_t i = 0; i < sf; i++)
		s->scratch[i] = NAN; /* nothing may rely on it */
}

static void attn_free(attn_set *s)
{
	free(s->K);
	free(s->V);
	free(s->q);
	free(s->out);
	free(s->qs);
	free(s->scratch);
}

static void attn_run(const kern_ops *o, attn_set *s)
{
	for (int i = 0; i < s->nq * s->hd; i++)
		s->out[i] = NAN;
	o->attn(s->K, s->V, s->stride, s->hd, s->scale, s->qs, s->nq, s->scratch);
}

/* The float product a * b, rounded on its own: the exact product in double
 * (48 significant bits at most), then to float. Unlike a * b, it cannot be
 * contracted with an addition into a fused multiply-add. */
static float mulf(float a, float b)
{
	return (float)((double)a * b);
}

/* kern.h's definition of the "ref" kern_attn, in plain C: query a's f16
 * weights of its rows p0..p1-1 into w (the dots in 8 lanes, lane i mod 8,
 * added as ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), times scale;
 * the reference's softmax; rounded to f16) */
static void attn_def_weights(const attn_set *s, const kern_attn_q *a, float *w)
{
	int64_t n = a->p1 - a->p0;
	for (int64_t t = 0; t < n; t++) {
		const uint8_t *k = (const uint8_t *)s->K + (a->p0 + t) * s->stride;
		float l[8] = { 0 };
		for (int i = 0; i < s->hd; i++)
			l[i % 8] += mulf(a->q[i], kb_h2f(kb_ld16(k + 2 * i)));
		float d = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
		w[t] = mulf(d, s->scale);
	}
	ops[0]->softmax(w, n);
	for (int64_t t = 0; t < n; t++)
		w[t] = kb_h2f(kb_f2h(w[t]));
}

/* ... and its output from those weights: from 0, out[i] += w_t V_t[i] in
 * order of t */
static void attn_def_out(const attn_set *s, const kern_attn_q *a, const float *w,
			 float *out)
{
	for (int i = 0; i < s->hd; i++)
		out[i] = 0;
	for (int64_t t = a->p0; t < a->p1; t++) {
		const uint8_t *v = (const uint8_t *)s->V + t * s->stride;
		for (int i = 0; i < s->hd; i++)
			out[i] += mulf(w[t - a->p0], kb_h2f(kb_ld16(v + 2 * i)));
	}
}

/* The ref variant's outputs (in s->out) are attn_def_out, bit for bit. */
static int attn_def_exact(const attn_set *s, const char *what)
{
	float *o = xmalloc((size_t)s->hd * 4), *w = xmalloc((size_t)s->nrow * 4);
	int good = 1;
	for (int j = 0; j < s->nq && good; j++) {
		const kern_attn_q *a = &s->qs[j];
		attn_def_weights(s, a, w);
		attn_def_out(s, a, w, o);
		if (memcmp(o, a->out, (size_t)s->hd * 4)) {
			diag("  %s: query %d differs from the definition", what, j);
			good = 0;
		}
	}
	free(o);
	free(w);
	return good;
}

/* got (nq x hd) vs the reference's out (nq x hd) within the bound above */
static int attn_close(const attn_set *s, const float *got, const float *ref,
		      const char *what)
{
	int hd = s->hd;
	float *w = xmalloc((size_t)s->nrow * 4 + 64);
	int good = 1;
	for (int j = 0; j < s->nq && good; j++) {
		const kern_attn_q *a = &s->qs[j];
		int64_t n = a->p1 - a->p0;
		attn_def_weights(s, a, w);
		double D = 0;
		for (int64_t t = a->p0; t < a->p1; t++) {
			const uint8_t *k = (const uint8_t *)s->K + t * s->stride;
			double S = 0;
			for (int i = 0; i < hd; i++)
				S += fabs(a->q[i] * kb_h2f(kb_ld16(k + 2 * i)));
			S *= 2.0 * (hd / 8 + 16) * 0x1p-24 * s->scale;
			D = S > D ? S : D;
		}
		double eps = expm1(2 * D) + 2.0 * ((double)n / 8 + 16) * 0x1p-24;
		double rel = eps + 0x1p-10 * (1 + eps);
		for (int i = 0; i < hd && good; i++) {
			double b = 0, sw = 0;
			for (int64_t t = a->p0; t < a->p1; t++) {
				const uint8_t *v = (const uint8_t *)s->V + t * s->stride;
				double av = fabs(kb_h2f(kb_ld16(v + 2 * i)));
				double wt = w[t - a->p0];
				b += (rel * (wt * (1 + 0x1p-10) + 0x1p-24) + 0x1p-24) * av;
				sw += wt * (1 + rel) * av;
			}
			b += 2.0 * (double)(n + 1) * 0x1p-24 * sw;
			double d = fabs((double)got[j * hd + i] - ref[j * hd + i]);
			if (!(d <= b)) {
				diag("  %s: query %d [%jd, %jd) out[%d] %.9g vs ref %.9g (bound %.3g)",
				     what, j, (intmax_t)a->p0, (intmax_t)a->p1, i, got[j * hd + i],
				     ref[j * hd + i], b);
				good = 0;
			}
		}
	}
	free(w);
	return good;
}

/* Each query alone, its rows outside [p0, p1) NaN, gives what it gave
 * among all (got), bit for bit; so do all in reverse order. */
static int attn_alone(const kern_ops *o, attn_set *s, const float *got,
		      const char *what)
{
	int hd = s->hd, good = 1;
	size_t bytes = s->stride * (size_t)s->nrow;
	uint16_t *K = xmalloc(bytes + 64), *V = xmalloc(bytes + 64);
	float *out = xmalloc((size_t)hd * 4);
	size_t sf = kern_attn_scratch(1, s->nrow, hd);
	float *scr = xmalloc(sf * 4);
	for (int j = 0; j < s->nq && good; j++) {
		kern_attn_q a = s->qs[j];
		memcpy(K, s->K, bytes);
		memcpy(V, s->V, bytes);
		for (int t = 0; t < s->nrow; t++)
			if (t < a.p0 || t >= a.p1)
				for (int i = 0; i < hd; i++) {
					memcpy((uint8_t *)K + t * s->stride + 2 * i, &(uint16_t){ 0x7e00 }, 2);
					memcpy((uint8_t *)V + t * s->stride + 2 * i, &(uint16_t){ 0xfc00 }, 2);
				}
		a.out = out;
		for (size_t i = 0; i < sf; i++)
			scr[i] = NAN;
		o->attn(K, V, s->stride, hd, s->scale, &a, 1, scr);
		if (memcmp(out, got + (size_t)j * hd, (size_t)hd * 4)) {
			diag("  %s: query %d alone differs", what, j);
			good = 0;
		}
	}
	/* reversed order */
	kern_attn_q *rev = xmalloc((size_t)s->nq * sizeof *rev);
	float *rout = xmalloc((size_t)s->nq * hd * 4);
	for (int j = 0; j < s->nq; j++) {
		rev[j] = s->qs[s->nq - 1 - j];
		rev[j].out = rout + (size_t)(s->nq - 1 - j) * hd;
	}
	o->attn(s->K, s->V, s->stride, hd, s->scale, rev, s->nq, s->scratch);
	if (good && memcmp(rout, got, (size_t)s->nq * hd * 4)) {
		diag("  %s: reversed order differs", what);
		good = 0;
	}
	free(rev);
	free(rout);
	free(K);
	free(V);
	free(out);
	free(scr);
	return good;
}

/* One case: vs the reference (bound), and alone / reordered (exact). */
static int attn_case(const kern_ops *o, int hd, int G, int E, int P, int win,
		     float qamp, int alone, char *what, size_t wn)
{
	attn_set s;
	snprintf(what, wn, "hd=%d G=%d E=%d P=%d win=%d |q|<=%g", hd, G, E, P, win,
		 (double)qamp);
	attn_make(&s, hd, G, E, P, win, qamp, 0);
	float *ref = xmalloc((size_t)s.nq * hd * 4);
	attn_run(ops[0], &s);
	memcpy(ref, s.out, (size_t)s.nq * hd * 4);
	attn_run(o, &s);
	int good = attn_close(&s, s.out, ref, what);
	if (good && alone)
		good = attn_alone(o, &s, s.out, what);
	free(ref);
	attn_free(&s);
	return good;
}

static void test_attn(void)
{
	static const int hds[] = { 64, 128, 256, 80, 37, 2 };
	static const int nps[] = { 1, 5, 15, 16, 17, 33, 100, 255, 600 };
	char what[160];

	/* the reference is kern.h's definition, bit for bit. Rounding the
	 * weights to f16 hides most one-ulp differences of a score: a wrong
	 * lane order or a fused product shows in some 10 of the 128 queries
	 * of the first set (many rows, large scores, q of full float
	 * precision: rounded products); the second has an odd hd (partial
	 * lanes) and a window; the third (q rounded to f16, as in the other
	 * cases) serves below too */
	{
		static const struct { int hd, G, E, P, win; } defs[] = {
			{ 64, 8, 16, 500, 0 }, { 37, 4, 16, 300, 150 }, { 64, 3, 4, 40, 0 }
		};
		attn_set s;
		int good = 1;
		for (int d = 0; d < 3; d++) {
			attn_make(&s, defs[d].hd, defs[d].G, defs[d].E, defs[d].P, defs[d].win,
				  2, 0);
			if (d < 2)
				for (int i = 0; i < s.nq * s.hd; i++)
					s.q[i] = rndf(-6, 6);
			attn_run(ops[0], &s);
			snprintf(what, sizeof what, "hd=%d G=%d E=%d P=%d win=%d", defs[d].hd,
				 defs[d].G, defs[d].E, defs[d].P, defs[d].win);
			good &= attn_def_exact(&s, what);
			if (d < 2)
				attn_free(&s);
		}
		ok(good, "attn ref: kern.h's definition (8-lane dots, softmax, f16 weights, "
			 "sum in row order) exactly");
		/* the public entry: the variant in use */
		float *got = xmalloc((size_t)s.nq * s.hd * 4);
		memcpy(got, s.out, (size_t)s.nq * s.hd * 4);
		attn_run(kern_ops_current(), &s);
		memcpy(got, s.out, (size_t)s.nq * s.hd * 4);
		for (int i = 0; i < s.nq * s.hd; i++)
			s.out[i] = NAN;
		kern_attn(s.K, s.V, s.stride, s.hd, s.scale, s.qs, s.nq, s.scratch);
		ok(!memcmp(got, s.out, (size_t)s.nq * s.hd * 4), "kern_attn: the %s table's",
		   kern_variant_name());
		free(got);
		attn_free(&s);
	}

	for (int v = 1; v < NV; v++) {
		const kern_ops *p = ops[v];
		if (!p)
			continue;
		const char *vn = VARIANTS[v];
		/* one entry, a group of G heads: every hd, G, npos */
		for (size_t h = 0; h < sizeof hds / sizeof hds[0]; h++) {
			int good = 1, n = 0;
			for (int G = 1; G <= 8 && good; G++)
				for (size_t k = 0; k < sizeof nps / sizeof nps[0] && good; k++, n++)
					good = attn_case(p, hds[h], G, 1, nps[k] - 1, 0,
							 k & 1 ? 1.0f : 6.0f, (G + (int)k) % 3 == 0,
							 what, sizeof what);
			ok(good, "attn %s hd=%d: G 1..8 x npos 1..600 (%d cases) == ref%s%s", vn,
			   hds[h], n, good ? "" : ": ", good ? "" : what);
		}
		/* several consecutive entries (causal), full and sliding window */
		static const int Es[] = { 2, 3, 7, 16 }, Gs[] = { 1, 3, 4, 8 }, Ps[] = { 0, 13, 500 };
		for (int h = 0; h < 3; h++) {
			int hd = h == 0 ? 64 : h == 1 ? 256 : 37, good = 1, n = 0;
			for (int e = 0; e < 4 && good; e++)
				for (int g = 0; g < 4 && good; g++)
					for (int pi = 0; pi < 3 && good; pi++)
						for (int win = 0; win <= 20 && good; win += 20, n++)
							good = attn_case(p, hd, Gs[g], Es[e], Ps[pi], win,
									 3.0f, (e + g + pi) % 2 == 0,
									 what, sizeof what);
			ok(good, "attn %s hd=%d: causal entries, windows (%d cases) == ref, alone == together%s%s",
			   vn, hd, n, good ? "" : ": ", good ? "" : what);
		}
		/* one-hot V rows: the outputs are the weights */
		int good = 1, n = 0;
		for (int G = 1; G <= 8 && good; G += 3)
			for (int E = 1; E <= 5 && good; E += 4)
				for (int P = 0; P <= 200 && good; P += 100)
					for (int win = 0; win <= 17 && good; win += 17, n++) {
						attn_set s;
						snprintf(what, sizeof what, "G=%d E=%d P=%d win=%d", G, E, P, win);
						attn_make(&s, 256, G, E, P, win, 8.0f, 1);
						float *ref = xmalloc((size_t)s.nq * 256 * 4);
						attn_run(ops[0], &s);
						memcpy(ref, s.out, (size_t)s.nq * 256 * 4);
						attn_run(p, &s);
						good = attn_close(&s, s.out, ref, what);
						for (int j = 0; j < s.nq && good; j++) {
							const kern_attn_q *a = &s.qs[j];
							double sum = 0;
							for (int t = 0; t < 256; t++) {
								float x = a->out[t];
								int in = t >= a->p0 && t < a->p1;
								sum += x;
								if (in ? kb_h2f(kb_f2h(x)) != x || !(x >= 0)
								       : memcmp(&x, &(float){ 0 }, 4)) {
									diag("  %s: query %d weight %d = %.9g", what, j, t, x);
									good = 0;
									break;
								}
							}
							if (good && fabs(sum - 1) > 1e-3 * (a->p1 - a->p0)) {
								diag("  %s: query %d weights sum to %.9g", what, j, sum);
								good = 0;
							}
						}
						free(ref);
						attn_free(&s);
					}
		ok(good, "attn %s one-hot V (%d cases): f16 weights, == ref, 0 outside%s%s", vn, n,
		   good ? "" : ": ", good ? "" : what);
	}
}

/* ---------------------------------------------------------------------
 * Micro-benchmark
 * --------------------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The best time of one matmul of 16 activations. */
static double bench_mm16(const kern_ops *o, const slm_dtype *t, const uint8_t *w,
			 size_t rb, int64_t rows, int64_t n, const float *x)
{
	size_t ab = kern_act_bytes(t, n);
	uint8_t *acts = xmalloc(ab * 16);
	float *y = xmalloc((size_t)rows * 16 * 4);
	for (int b = 0; b < 16; b++)
		o->quant_act[t->ggml_id](x, acts + b * ab, n);
	double best = 1e30, t0 = now();
	for (int reps = 0; reps < 3 || now() - t0 < 0.2; reps++) {
		double a = now();
		o->matmul[t->ggml_id](n, w, rb, rows, acts, ab, 16, y, rows);
		double d = now() - a;
		best = d < best ? d : best;
		if (now() - t0 > 1.0)
			break;
	}
	free(acts);
	free(y);
	return best;
}

static int bench(const char *only)
{
	/* 135M-like: q/k/v/o and ffn up, ffn down, the output layer; then
	 * TinyLlama's ffn down (n a multiple of 256 for the k-quants) */
	static const struct { int rows, n; } shapes[] = {
		{ 1536, 576 }, { 576, 1536 }, { 49152, 576 }, { 2048, 5632 }
	};
	printf("matvec GB/s of weights, 1 thread (rows x n); B=16: one matmul of 16\n"
	       "activations on 576x1536, its rate in 10^6 rows x activations/s and\n"
	       "its gain over 16 matvecs\n%-6s %-7s", "type", "variant");
	for (int s = 0; s < 4; s++)
		printf(" %5dx%-5d", shapes[s].rows, shapes[s].n);
	printf(" %9s %9s\n", "B=16 M/s", "gain");
	for (int ti = 0; ti < NT; ti++) {
		const slm_dtype *t = dtype_by_name(TYPES[ti]);
		for (int v = 0; v < NV; v++) {
			if (!ops[v] || (only && strcmp(only, VARIANTS[v])))
				continue;
			printf("%-6s %-7s", t->name, VARIANTS[v]);
			double mm16 = 0, t16 = 0, rows16 = 0;
			for (int s = 0; s < 4; s++) {
				int64_t rows = shapes[s].rows, n = shapes[s].n;
				if (n % t->block_elems) {
					printf(" %11s", "-");
					continue;
				}
				size_t rb = row_bytes(t, n), bytes = rb * rows;
				uint8_t *w = xmalloc(bytes);
				make_weights(t, w, n * rows);
				float *x = xmalloc((size_t)n * 4), *y = xmalloc((size_t)rows * 4);
				for (int i = 0; i < n; i++)
					x[i] = rndf(-1, 1);
				void *act = xmalloc(kern_act_bytes(t, n));
				ops[v]->quant_act[t->ggml_id](x, act, n);
				double best = 1e30, t0 = now();
				int reps = 0;
				/* at least 0.3 s and 5 runs; the best run counts */
				while (reps < 5 || now() - t0 < 0.3) {
					double a = now();
					ops[v]->matmul[t->ggml_id](n, w, rb, rows, act, 0, 1, y, 0);
					double d = now() - a;
					best = d < best ? d : best;
					reps++;
					if (v == 0 && now() - t0 > 1.0)
						break;
				}
				printf(" %11.1f", bytes / best * 1e-9);
				fflush(stdout);
				if (s == 1) { /* 576x1536: 16 activations at once vs one by one */
					t16 = bench_mm16(ops[v], t, w, rb, rows, n, x);
					mm16 = 16 * best / t16;
					rows16 = (double)rows * 16;
				}
				free(w);
				free(x);
				free(y);
				free(act);
			}
			printf(" %9.0f %8.1fx\n", t16 > 0 ? rows16 / t16 * 1e-6 : 0.0, mm16);
		}
	}
	return 0;
}

/* The best time of kern_attn of variant o on s. */
static double bench_attn1(const kern_ops *o, attn_set *s)
{
	double best = 1e30, t0 = now();
	for (int reps = 0; reps < 5 || now() - t0 < 0.3; reps++) {
		double a = now();
		o->attn(s->K, s->V, s->stride, s->hd, s->scale, s->qs, s->nq, s->scratch);
		double d = now() - a;
		best = d < best ? d : best;
	}
	return best;
}

/* Attention of one KV head: kern_attn, ns per query and position, the best
 * of some runs, and its gain over the ref variant's (the plain per-query
 * composition of kern.h's definition). */
static int bench_attn(const char *only)
{
	static const struct { int hd, G, E, np; } shapes[] = {
		{ 64, 3, 1, 576 }, { 64, 8, 1, 576 }, { 256, 4, 1, 576 },
		{ 64, 3, 8, 512 }, { 64, 8, 4, 512 }, { 256, 4, 8, 512 },
	};
	printf("attention, ns per query x position (hd, G heads, E entries, npos)\n"
	       "%-7s %-22s %9s %7s\n", "variant", "shape", "attn", "vs ref");
	for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
		attn_set s;
		int E = shapes[k].E;
		attn_make(&s, shapes[k].hd, shapes[k].G, E, shapes[k].np - E, 0, 2.0f, 0);
		double work = 0;
		for (int j = 0; j < s.nq; j++)
			work += (double)(s.qs[j].p1 - s.qs[j].p0);
		double tref = bench_attn1(ops[0], &s);
		char sh[40];
		snprintf(sh, sizeof sh, "%d %d %d %d", s.hd, shapes[k].G, E, shapes[k].np);
		for (int v = 0; v < NV; v++) {
			if (!ops[v] || (only && strcmp(only, VARIANTS[v])))
				continue;
			double ta = v ? bench_attn1(ops[v], &s) : tref;
			printf("%-7s %-22s %9.2f %6.2fx\n", VARIANTS[v], sh, ta / work * 1e9,
			       tref / ta);
		}
		attn_free(&s);
	}
	return 0;
}

int main(int argc, char **argv)
{
	for (int v = 0; v < NV; v++)
		ops[v] = kern_ops_for(VARIANTS[v]);
	if (argc > 1 && !strcmp(argv[1], "-b"))
		return bench(argc > 2 ? argv[2] : NULL);
	if (argc > 1 && !strcmp(argv[1], "-a"))
		return bench_attn(argc > 2 ? argv[2] : NULL);

	diag("variants: ref%s%s (in use: %s)", ops[1] ? " avx2" : "",
	     ops[2] ? " avx512" : "", kern_variant_name());
	test_api();
	test_f16_all();
	test_f32_to_f16();
	test_bf16_act();
	for (int ti = 0; ti < NT; ti++) {
		const slm_dtype *t = dtype_by_name(TYPES[ti]);
		if (!ok(t && kern_supported(t), "%s: supported", TYPES[ti]))
			continue;
		test_golden(t);
		test_dequant(t);
		test_batch_invariance(t);
		if (dtype_tileable(t))
			test_tiled(t);
		int64_t be = t->block_elems;
		/* one block; many blocks (odd count); float types: odd n */
		if (be == 1) {
			test_products(t, 37, 13);
			test_products(t, 1003, 13);
			test_products(t, 1536, 13);
		} else {
			test_products(t, be, 13);
			test_products(t, be * (be == QK ? 37 : 5), 37);
		}
	}
	test_helpers();
	test_attn();
	return done_testing();
}
