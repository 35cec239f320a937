/*
 * kern_ref.c - the reference kernels: plain C, every weight type and float
 * helper, the specification the SIMD variants are tested against. Also the
 * activation quantizers, which every variant shares (same bytes everywhere).
 *
 * Dequantization follows ggml's formulas operation by operation (so the
 * results equal gguf-py's numpy dequantization bit for bit); products are
 * integer within a block, then scaled and summed in float.
 */
#include "kern_blocks.h"

#include <math.h>
#include <stdlib.h>

/* a*b+c must stay two roundings (bit-exact dequantization everywhere) */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* ---------------------------------------------------------------------
 * Dequantization
 * --------------------------------------------------------------------- */

static void dq_f32(const void *src, float *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * 4);
}

static void dq_f16(const void *src, float *dst, int64_t n)
{
	const uint8_t *p = src;
	for (int64_t i = 0; i < n; i++)
		dst[i] = kb_h2f(kb_ld16(p + 2 * i));
}

static void dq_bf16(const void *src, float *dst, int64_t n)
{
	const uint8_t *p = src;
	for (int64_t i = 0; i < n; i++)
		dst[i] = kb_bf2f(kb_ld16(p + 2 * i));
}

static void dq_q4_0(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 18, y += QK) {
		float d = kb_h2f(kb_ld16(b));
		for (int j = 0; j < 16; j++) {
			y[j] = d * (float)((b[2 + j] & 0xf) - 8);
			y[j + 16] = d * (float)((b[2 + j] >> 4) - 8);
		}
	}
}

static void dq_q4_1(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 20, y += QK) {
		float d = kb_h2f(kb_ld16(b)), m = kb_h2f(kb_ld16(b + 2));
		for (int j = 0; j < 16; j++) {
			y[j] = d * (float)(b[4 + j] & 0xf) + m;
			y[j + 16] = d * (float)(b[4 + j] >> 4) + m;
		}
	}
}

static void dq_q5_0(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 22, y += QK) {
		float d = kb_h2f(kb_ld16(b));
		uint32_t qh = kb_ld32(b + 2);
		for (int j = 0; j < 16; j++) {
			int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
			y[j] = d * (float)(((b[6 + j] & 0xf) | h0 << 4) - 16);
			y[j + 16] = d * (float)(((b[6 + j] >> 4) | h1 << 4) - 16);
		}
	}
}

static void dq_q5_1(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 24, y += QK) {
		float d = kb_h2f(kb_ld16(b)), m = kb_h2f(kb_ld16(b + 2));
		uint32_t qh = kb_ld32(b + 4);
		for (int j = 0; j < 16; j++) {
			int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
			y[j] = d * (float)((b[8 + j] & 0xf) | h0 << 4) + m;
			y[j + 16] = d * (float)((b[8 + j] >> 4) | h1 << 4) + m;
		}
	}
}

static void dq_q8_0(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 34, y += QK) {
		float d = kb_h2f(kb_ld16(b));
		for (int j = 0; j < QK; j++)
			y[j] = d * (float)(int8_t)b[2 + j];
	}
}

/* element e = 128h + 32k + l of a q2_K/q3_K block: bits 2k.. of qs[32h+l] */
static void dq_q2_k(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QKK; i++, b += 84, y += QKK) {
		float d = kb_h2f(kb_ld16(b + 80)), dmin = kb_h2f(kb_ld16(b + 82));
		for (int e = 0; e < QKK; e++) {
			int h = e >> 7, k = (e >> 5) & 3, l = e & 31;
			uint8_t sc = b[e >> 4];
			float dl = d * (float)(sc & 0xf), ml = dmin * (float)(sc >> 4);
			int q = (b[16 + 32 * h + l] >> (2 * k)) & 3;
			y[e] = dl * (float)q - ml;
		}
	}
}

static void dq_q3_k(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	int8_t sc[16];
	for (int64_t i = 0; i < n / QKK; i++, b += 110, y += QKK) {
		float d = kb_h2f(kb_ld16(b + 108));
		kb_scales_q3k(b + 96, sc);
		for (int e = 0; e < QKK; e++) {
			int h = e >> 7, k = (e >> 5) & 3, l = e & 31;
			float dl = d * (float)sc[e >> 4];
			int q = (b[32 + 32 * h + l] >> (2 * k)) & 3;
			if (!((b[l] >> (4 * h + k)) & 1))
				q -= 4;
			y[e] = dl * (float)q;
		}
	}
}

static void dq_q4_k(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QKK; i++, b += 144, y += QKK) {
		float d = kb_h2f(kb_ld16(b)), dmin = kb_h2f(kb_ld16(b + 2));
		for (int j = 0; j < 8; j++) {
			uint8_t sc, m;
			kb_scale_min_k4(j, b + 4, &sc, &m);
			float dl = d * (float)sc, ml = dmin * (float)m;
			const uint8_t *q = b + 16 + 32 * (j >> 1);
			int sh = 4 * (j & 1);
			for (int l = 0; l < 32; l++)
				y[32 * j + l] = dl * (float)((q[l] >> sh) & 0xf) - ml;
		}
	}
}

static void dq_q5_k(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QKK; i++, b += 176, y += QKK) {
		float d = kb_h2f(kb_ld16(b)), dmin = kb_h2f(kb_ld16(b + 2));
		for (int j = 0; j < 8; j++) {
			uint8_t sc, m;
			kb_scale_min_k4(j, b + 4, &sc, &m);
			float dl = d * (float)sc, ml = dmin * (float)m;
			const uint8_t *q = b + 48 + 32 * (j >> 1);
			int sh = 4 * (j & 1);
			for (int l = 0; l < 32; l++) {
				int v = ((q[l] >> sh) & 0xf) |
					((b[16 + l] >> j) & 1) << 4;
				y[32 * j + l] = dl * (float)v - ml;
			}
		}
	}
}

/* element e = 128h + 32k + l: low 4 bits from ql[64h + 32(k&1) + l] (nibble
 * k>>1), high 2 bits from qh[32h + l] (bits 2k) */
static void dq_q6_k(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QKK; i++, b += 210, y += QKK) {
		float d = kb_h2f(kb_ld16(b + 208));
		for (int e = 0; e < QKK; e++) {
			int h = e >> 7, k = (e >> 5) & 3, l = e & 31;
			int lo = (b[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0xf;
			int hi = (b[128 + 32 * h + l] >> (2 * k)) & 3;
			float dl = d * (float)(int8_t)b[192 + (e >> 4)];
			y[e] = dl * (float)((lo | hi << 4) - 32);
		}
	}
}

/* ---------------------------------------------------------------------
 * Activation quantizers (shared by every variant)
 * --------------------------------------------------------------------- */

/* round to nearest even for |v| < 2^22, as cvtps2dq in the default mode */
static inline int kb_rne(float v)
{
	return (int)((v + 12582912.0f) - 12582912.0f);
}

/* Quantize 32*k floats with one scale: qs = rne(x / d), d = amax / 127.
 * Returns d. */
static float quant_group(const float *x, int8_t *qs, int len)
{
	float amax = 0.0f;
	for (int j = 0; j < len; j++) {
		float a = fabsf(x[j]);
		amax = a > amax ? a : amax;
	}
	float d = amax / 127.0f;
	float id = d > 0.0f ? 1.0f / d : 0.0f;
	for (int j = 0; j < len; j++) {
		int q = kb_rne(x[j] * id);
		qs[j] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
	}
	return d;
}

/* kind: 0, 8, 16 or 128: the weights' offset (aux = -s*kind/8, int);
 * -1: weights with a min (aux = d*s/8, float) */
static void qa_a32(const float *x, void *act, int64_t n, int kind)
{
	int64_t nb = n / QK;
	uint8_t *a = act;
	int8_t *qs = (int8_t *)(a + a32_qs_off(nb));
	memset(a, 0, a32_bytes(n));
	for (int64_t i = 0; i < nb; i++) {
		float d = quant_group(x + QK * i, qs + QK * i, QK);
		int32_t s = 0;
		for (int j = 0; j < QK; j++)
			s += qs[QK * i + j];
		memcpy(a + 4 * i, &d, 4);
		memcpy(a + 4 * nb + 4 * i, &s, 4);
		int32_t ai = -s * kind / 8;
		float af = d * (float)s * 0.125f;
		for (int l = 0; l < 8; l++) {
			memcpy(a + a32_dl_off(nb) + 32 * i + 4 * l, &d, 4);
			memcpy(a + a32_aux_off(nb) + 32 * i + 4 * l,
			       kind < 0 ? (const void *)&af : (const void *)&ai, 4);
		}
	}
}

static void qa_q4_0(const float *x, void *act, int64_t n) { qa_a32(x, act, n, 8); }
static void qa_q5_0(const float *x, void *act, int64_t n) { qa_a32(x, act, n, 16); }
static void qa_q8_0(const float *x, void *act, int64_t n) { qa_a32(x, act, n, 128); }
static void qa_min(const float *x, void *act, int64_t n) { qa_a32(x, act, n, -1); }

static void qa_ak(const float *x, void *act, int64_t n)
{
	int64_t nb = n / QKK;
	uint8_t *a = act;
	int8_t *qs = (int8_t *)(a + ak_qs_off(nb));
	for (int64_t i = 0; i < nb; i++) {
		float d = quant_group(x + QKK * i, qs + QKK * i, QKK);
		memcpy(a + 4 * i, &d, 4);
		for (int g = 0; g < 16; g++) {
			int16_t s = 0;
			for (int j = 0; j < 16; j++)
				s = (int16_t)(s + qs[QKK * i + 16 * g + j]);
			memcpy(a + ak_bs_off(nb) + 2 * (16 * i + g), &s, 2);
		}
	}
	memset(a + 36 * nb, 0, ak_qs_off(nb) - (size_t)(36 * nb));
}

static void qa_f32(const float *x, void *act, int64_t n)
{
	memcpy(act, x, (size_t)n * 4);
	memset((char *)act + 4 * n, 0, kb_align64((size_t)n * 4) - (size_t)n * 4);
}

static void qa_bf16(const float *x, void *act, int64_t n)
{
	uint16_t *a = act;
	for (int64_t i = 0; i < n; i++)
		a[i] = kb_f2bf(x[i]);
	memset(a + n, 0, kb_align64((size_t)n * 2) - (size_t)n * 2);
}

/* ---------------------------------------------------------------------
 * Dot products of one weight row with one activation
 * --------------------------------------------------------------------- */

/* Float dots sum in 8 lanes, then pairwise: vectorizable, deterministic. */
#define LANES8_SUM(acc) \
	(((acc[0] + acc[4]) + (acc[2] + acc[6])) + \
	 ((acc[1] + acc[5]) + (acc[3] + acc[7])))

static float dot_f32(int64_t n, const uint8_t *w, const void *act)
{
	const float *x = act;
	float acc[8] = { 0 };
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++) {
			float v;
			memcpy(&v, w + 4 * (i + k), 4);
			acc[k] += v * x[i + k];
		}
	for (; i < n; i++) {
		float v;
		memcpy(&v, w + 4 * i, 4);
		acc[i & 7] += v * x[i];
	}
	return LANES8_SUM(acc);
}

static float dot_f16(int64_t n, const uint8_t *w, const void *act)
{
	const float *x = act;
	float acc[8] = { 0 };
	for (int64_t i = 0; i < n; i++)
		acc[i & 7] += kb_h2f(kb_ld16(w + 2 * i)) * x[i];
	return LANES8_SUM(acc);
}

static float dot_bf16(int64_t n, const uint8_t *w, const void *act)
{
	const uint16_t *x = act;
	float acc[8] = { 0 };
	for (int64_t i = 0; i < n; i++)
		acc[i & 7] += kb_bf2f(kb_ld16(w + 2 * i)) * kb_bf2f(x[i]);
	return LANES8_SUM(acc);
}

/* A32 activation accessors */
#define A32_DECL(act, n) \
	int64_t nb = (n) / QK; \
	const uint8_t *a8_ = (act); \
	const int8_t *aq = (const int8_t *)(a8_ + a32_qs_off(nb))
#define A32_D(i) kb_bits_f32(kb_ld32(a8_ + 4 * (i)))
#define A32_S(i) ((int32_t)kb_ld32(a8_ + 4 * nb + 4 * (i)))

static float dot_q4_0(int64_t n, const uint8_t *w, const void *act)
{
	A32_DECL(act, n);
	float sum = 0.0f;
	for (int64_t i = 0; i < nb; i++, w += 18, aq += QK) {
		int32_t s = 0;
		for (int j = 0; j < 16; j++)
			s += ((w[2 + j] & 0xf) - 8) * aq[j] +
			     ((w[2 + j] >> 4) - 8) * aq[j + 16];
		sum += kb_h2f(kb_ld16(w)) * A32_D(i) * (float)s;
	}
	return sum;
}

static float dot_q4_1(int64_t n, const uint8_t *w, const void *act)
{
	A32_DECL(act, n);
	float sum = 0.0f;
	for (int64_t i = 0; i < nb; i++, w += 20, aq += QK) {
		int32_t s = 0;
		for (int j = 0; j < 16; j++)
			s += (w[4 + j] & 0xf) * aq[j] + (w[4 + j] >> 4) * aq[j + 16];
		float da = A32_D(i);
		sum += kb_h2f(kb_ld16(w)) * da * (float)s +
		       kb_h2f(kb_ld16(w + 2)) * da * (float)A32_S(i);
	}
	return sum;
}

static float dot_q5_0(int64_t n, const uint8_t *w, const void *act)
{
	A32_DECL(act, n);
	float sum = 0.0f;
	for (int64_t i = 0; i < nb; i++, w += 22, aq += QK) {
		uint32_t qh = kb_ld32(w + 2);
		int32_t s = 0;
		for (int j = 0; j < 16; j++) {
			int v0 = (w[6 + j] & 0xf) | ((qh >> j) & 1) << 4;
			int v1 = (w[6 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
			s += (v0 - 16) * aq[j] + (v1 - 16) * aq[j + 16];
		}
		sum += kb_h2f(kb_ld16(w)) * A32_D(i) * (float)s;
	}
	return sum;
}

static float dot_q5_1(int64_t n, const uint8_t *w, const void *act)
{
	A32_DECL(act, n);
	float sum = 0.0f;
	for (int64_t i = 0; i < nb; i++, w += 24, aq += QK) {
		uint32_t qh = kb_ld32(w + 4);
		int32_t s = 0;
		for (int j = 0; j < 16; j++) {
			int v0 = (w[8 + j] & 0xf) | ((qh >> j) & 1) << 4;
			int v1 = (w[8 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
			s += v0 * aq[j] + v1 * aq[j + 16];
		}
		float da = A32_D(i);
		sum += kb_h2f(kb_ld16(w)) * da * (float)s +
		       kb_h2f(kb_ld16(w + 2)) * da * (float)A32_S(i);
	}
	return sum;
}

static float dot_q8_0(int64_t n, const uint8_t *w, const void *act)
{
	A32_DECL(act, n);
	float sum = 0.0f;
	for (int64_t i = 0; i < nb; i++, w += 34, aq += QK) {
		int32_t s = 0;
		for (int j = 0; j < QK; j++)
			s += (int8_t)w[2 + j] * aq[j];
		sum += kb_h2f(kb_ld16(w)) * A32_D(i) * (float)s;
	}
	return sum;
}

/* AK activation accessors */
#define AK_DECL(act, n) \
	int64_t nb = (n) / QKK; \
	const uint8_t *a8_ = (act); \
	const int8_t *aq = (const int8_t *)(a8_ + ak_qs_off(nb))
#define AK_D(i) kb_bits_f32(kb_ld32(a8_ + 4 * (i)))
#define AK_BSUM(i, g) ((int16_t)kb_ld16(a8_ + ak_bs_off(nb) + 2 * (16 * (i) + (g))))

static float dot_q2_k(int64_t n, const uint8_t *w, const void *act)
{
	AK_DECL(act, n);
	float sum = 0.0f;
	for (int64_t i = 0; i < nb; i++, w += 84, aq += QKK) {
		int32_t isum = 0, msum = 0;
		for (int g = 0; g < 16; g++) {
			int32_t s = 0;
			for (int t = 0; t < 16; t++) {
				int e = 16 * g + t;
				int h = e >> 7, k = (e >> 5) & 3, l = e & 31;
				s += ((w[16 + 32 * h + l] >> (2 * k)) & 3) * aq[e];
			}
			isum += (w[g] & 0xf) * s;
			msum += (w[g] >> 4) * AK_BSUM(i, g);
		}
		float da = AK_D(i);
		sum += da * kb_h2f(kb_ld16(w + 80)) * (float)isum -
		       da * kb_h2f(kb_ld16(w + 82)) * (float)msum;
	}
	return sum;
}

static float dot_q3_k(int64_t n, const uint8_t *w, const void *act)
{
	AK_DECL(act, n);
	float sum = 0.0f;
	int8_t sc[16];
	for (int64_t i = 0; i < nb; i++, w += 110, aq += QKK) {
		kb_scales_q3k(w + 96, sc);
		int32_t isum = 0;
		for (int g = 0; g < 16; g++) {
			int32_t s = 0;
			for (int t = 0; t < 16; t++) {
				int e = 16 * g + t;
				int h = e >> 7, k = (e >> 5) & 3, l = e & 31;
				int q = (w[32 + 32 * h + l] >> (2 * k)) & 3;
				if (!((w[l] >> (4 * h + k)) & 1))
					q -= 4;
				s += q * aq[e];
			}
			isum += sc[g] * s;
		}
		sum += AK_D(i) * kb_h2f(kb_ld16(w + 108)) * (float)isum;
	}
	return sum;
}

/* q4_K and q5_K (hb = 1: 5th bits from qh) */
static float dot_q45_k(int64_t n, const uint8_t *w, const void *act, int hb)
{
	AK_DECL(act, n);
	float sum = 0.0f;
	int bb = hb ? 176 : 144, qo = hb ? 48 : 16;
	for (int64_t i = 0; i < nb; i++, w += bb, aq += QKK) {
		int32_t isum = 0, msum = 0;
		for (int j = 0; j < 8; j++) {
			uint8_t sc, m;
			kb_scale_min_k4(j, w + 4, &sc, &m);
			const uint8_t *q = w + qo + 32 * (j >> 1);
			int sh = 4 * (j & 1);
			int32_t s = 0;
			for (int l = 0; l < 32; l++) {
				int v = (q[l] >> sh) & 0xf;
				if (hb)
					v |= ((w[16 + l] >> j) & 1) << 4;
				s += v * aq[32 * j + l];
			}
			isum += sc * s;
			msum += m * (AK_BSUM(i, 2 * j) + AK_BSUM(i, 2 * j + 1));
		}
		float da = AK_D(i);
		sum += da * kb_h2f(kb_ld16(w)) * (float)isum -
		       da * kb_h2f(kb_ld16(w + 2)) * (float)msum;
	}
	return sum;
}

static float dot_q4_k(int64_t n, const uint8_t *w, const void *act)
{
	return dot_q45_k(n, w, act, 0);
}

static float dot_q5_k(int64_t n, const uint8_t *w, const void *act)
{
	return dot_q45_k(n, w, act, 1);
}

static float dot_q6_k(int64_t n, const uint8_t *w, const void *act)
{
	AK_DECL(act, n);
	float sum = 0.0f;
	for (int64_t i = 0; i < nb; i++, w += 210, aq += QKK) {
		int32_t isum = 0;
		for (int g = 0; g < 16; g++) {
			int32_t s = 0;
			for (int t = 0; t < 16; t++) {
				int e = 16 * g + t;
				int h = e >> 7, k = (e >> 5) & 3, l = e & 31;
				int lo = (w[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0xf;
				int hi = (w[128 + 32 * h + l] >> (2 * k)) & 3;
				s += ((lo | hi << 4) - 32) * aq[e];
			}
			isum += (int8_t)w[192 + g] * s;
		}
		sum += AK_D(i) * kb_h2f(kb_ld16(w + 208)) * (float)isum;
	}
	return sum;
}

typedef float (*dot_fn)(int64_t n, const uint8_t *w, const void *act);

static void mm_generic(dot_fn dot, int64_t n, const void *W, size_t row_bytes,
		       int64_t nrows, const void *acts, size_t act_stride,
		       int B, float *y, int64_t ldy)
{
	for (int b = 0; b < B; b++)
		for (int64_t r = 0; r < nrows; r++)
			y[b * ldy + r] = dot(n, (const uint8_t *)W + r * row_bytes,
					     (const uint8_t *)acts + b * act_stride);
}

#define MM_REF(T) \
	static void mm_##T(int64_t n, const void *W, size_t rb, int64_t nr, \
			   const void *acts, size_t as, int B, float *y, \
			   int64_t ldy) \
	{ \
		mm_generic(dot_##T, n, W, rb, nr, acts, as, B, y, ldy); \
	}
MM_REF(f32)
MM_REF(f16)
MM_REF(bf16)
MM_REF(q4_0)
MM_REF(q4_1)
MM_REF(q5_0)
MM_REF(q5_1)
MM_REF(q8_0)
MM_REF(q2_k)
MM_REF(q3_k)
MM_REF(q4_k)
MM_REF(q5_k)
MM_REF(q6_k)

/* ---------------------------------------------------------------------
 * Float helpers
 * --------------------------------------------------------------------- */

static void rmsnorm_ref(float *y, const float *x, const float *w, int64_t n,
			float eps)
{
	double ss = 0.0;
	for (int64_t i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
	for (int64_t i = 0; i < n; i++)
		y[i] = w ? x[i] * scale * w[i] : x[i] * scale;
}

static void softmax_ref(float *x, int64_t n)
{
	float mx = -INFINITY;
	for (int64_t i = 0; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	double sum = 0.0;
	for (int64_t i = 0; i < n; i++) {
		x[i] = expf(x[i] - mx);
		sum += x[i];
	}
	float is = (float)(1.0 / sum);
	for (int64_t i = 0; i < n; i++)
		x[i] *= is;
}

static void swiglu_ref(float *y, const float *g, const float *u, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

#define GELU_C 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

static void geglu_ref(float *y, const float *g, const float *u, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		float v = g[i];
		float t = tanhf(GELU_C * v * (1.0f + GELU_A * v * v));
		y[i] = 0.5f * v * (1.0f + t) * u[i];
	}
}

static void rope_ref(float *x, int nh, int hd, int nrot, const float *cs,
		     int neox)
{
	int half = nrot / 2;
	const float *c = cs, *s = cs + half;
	for (int h = 0; h < nh; h++) {
		float *v = x + (int64_t)h * hd;
		for (int i = 0; i < half; i++) {
			int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
			float x0 = v[i0], x1 = v[i1];
			v[i0] = x0 * c[i] - x1 * s[i];
			v[i1] = x0 * s[i] + x1 * c[i];
		}
	}
}

static void attn_dot_ref(int kv_f16, const void *K, size_t stride,
			 const float *q, int64_t hd, int64_t npos, float scale,
			 float *scores)
{
	for (int64_t t = 0; t < npos; t++) {
		const uint8_t *k = (const uint8_t *)K + t * stride;
		float d = kv_f16 ? dot_f16(hd, k, q) : dot_f32(hd, k, q);
		scores[t] = d * scale;
	}
}

static void attn_axpy_ref(int kv_f16, const void *V, size_t stride,
			  const float *p, int64_t hd, int64_t npos, float *out)
{
	for (int64_t t = 0; t < npos; t++) {
		const uint8_t *v = (const uint8_t *)V + t * stride;
		float a = p[t];
		for (int64_t i = 0; i < hd; i++) {
			float e;
			if (kv_f16)
				e = kb_h2f(kb_ld16(v + 2 * i));
			else
				memcpy(&e, v + 4 * i, 4);
			out[i] += a * e;
		}
	}
}

static void f32_to_f16_ref(uint16_t *dst, const float *src, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		dst[i] = kb_f2h(src[i]);
}

/* ---------------------------------------------------------------------
 * The table
 * --------------------------------------------------------------------- */

#define ENTRY(ID, T, QA) \
	.dequant[ID] = dq_##T, .quant_act[ID] = qa_##QA, .matmul[ID] = mm_##T

const kern_ops kern_ref_ops = {
	.name = "ref",
	ENTRY(KT_F32, f32, f32),
	ENTRY(KT_F16, f16, f32),
	ENTRY(KT_BF16, bf16, bf16),
	ENTRY(KT_Q4_0, q4_0, q4_0),
	ENTRY(KT_Q4_1, q4_1, min),
	ENTRY(KT_Q5_0, q5_0, q5_0),
	ENTRY(KT_Q5_1, q5_1, min),
	ENTRY(KT_Q8_0, q8_0, q8_0),
	ENTRY(KT_Q2_K, q2_k, ak),
	ENTRY(KT_Q3_K, q3_k, ak),
	ENTRY(KT_Q4_K, q4_k, ak),
	ENTRY(KT_Q5_K, q5_k, ak),
	ENTRY(KT_Q6_K, q6_k, ak),
	.rmsnorm = rmsnorm_ref,
	.softmax = softmax_ref,
	.swiglu = swiglu_ref,
	.geglu = geglu_ref,
	.rope = rope_ref,
	.attn_dot = attn_dot_ref,
	.attn_axpy = attn_axpy_ref,
	.f32_to_f16 = f32_to_f16_ref,
};
