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

/* specialized per type where called with a constant type */
#if defined(__GNUC__)
#define SPECIALIZE static inline __attribute__((always_inline))
#else
#define SPECIALIZE static inline
#endif

/* ---------------------------------------------------------------------
 * Block unpacking: a block's integer quants in element order, with the
 * type's fixed offset applied (what the block scale multiplies)
 * --------------------------------------------------------------------- */

/* 16 bytes of nibbles (low ones first), plus 5th bits from qh, minus off */
SPECIALIZE void up_nib32(const uint8_t *qs, uint32_t qh, int off, int8_t *q)
{
	for (int j = 0; j < 16; j++) {
		q[j] = (int8_t)(((qs[j] & 0xf) | ((qh >> j) & 1) << 4) - off);
		q[j + 16] = (int8_t)(((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - off);
	}
}

/* q2_K (0..3) and q3_K (-4..3): element 128h + 32k + l is bits 2k of
 * qs[32h + l]; q3_K subtracts 4 where bit 4h + k of hmask[l] is clear */
SPECIALIZE void up_q23k(const uint8_t *qs, const uint8_t *hmask, int8_t *q)
{
	for (int h = 0; h < 2; h++)
		for (int k = 0; k < 4; k++)
			for (int l = 0; l < 32; l++) {
				int v = (qs[32 * h + l] >> (2 * k)) & 3;
				if (hmask && !((hmask[l] >> (4 * h + k)) & 1))
					v -= 4;
				q[128 * h + 32 * k + l] = (int8_t)v;
			}
}

/* q4_K (0..15) and q5_K (0..31, 5th bits in qh): 64 elements per 32 bytes */
SPECIALIZE void up_q45k(const uint8_t *qs, const uint8_t *qh, int8_t *q)
{
	for (int j = 0; j < 4; j++)
		for (int l = 0; l < 32; l++) {
			int h0 = qh ? ((qh[l] >> (2 * j)) & 1) << 4 : 0;
			int h1 = qh ? ((qh[l] >> (2 * j + 1)) & 1) << 4 : 0;
			q[64 * j + l] = (int8_t)((qs[32 * j + l] & 0xf) | h0);
			q[64 * j + 32 + l] = (int8_t)((qs[32 * j + l] >> 4) | h1);
		}
}

/* q6_K (-32..31): 4 low bits from ql, 2 high bits from qh */
SPECIALIZE void up_q6k(const uint8_t *b, int8_t *q)
{
	for (int h = 0; h < 2; h++) {
		const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
		for (int l = 0; l < 32; l++) {
			int8_t *o = q + 128 * h + l;
			o[0] = (int8_t)(((ql[l] & 0xf) | (qh[l] & 3) << 4) - 32);
			o[32] = (int8_t)(((ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4) - 32);
			o[64] = (int8_t)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
			o[96] = (int8_t)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
		}
	}
}

/* the integer quants of block b of a weight type */
SPECIALIZE void unpack(int type, const uint8_t *b, int8_t *q)
{
	switch (type) {
	case KT_Q4_0: up_nib32(b + 2, 0, 8, q); break;
	case KT_Q4_1: up_nib32(b + 4, 0, 0, q); break;
	case KT_Q5_0: up_nib32(b + 6, kb_ld32(b + 2), 16, q); break;
	case KT_Q5_1: up_nib32(b + 8, kb_ld32(b + 4), 0, q); break;
	case KT_Q8_0: memcpy(q, b + 2, QK); break;
	case KT_Q2_K: up_q23k(b + 16, NULL, q); break;
	case KT_Q3_K: up_q23k(b + 32, b, q); break;
	case KT_Q4_K: up_q45k(b + 16, NULL, q); break;
	case KT_Q5_K: up_q45k(b + 48, b + 16, q); break;
	case KT_Q6_K: up_q6k(b, q); break;
	}
}

/* 32-element types: x = d q (+ m) */
SPECIALIZE void dq_a32(int type, int bb, const uint8_t *b, float *y, int64_t n)
{
	int8_t q[QK];
	int hasm = type == KT_Q4_1 || type == KT_Q5_1;
	for (int64_t i = 0; i < n / QK; i++, b += bb, y += QK) {
		unpack(type, b, q);
		float d = kb_h2f(kb_ld16(b)), m = hasm ? kb_h2f(kb_ld16(b + 2)) : 0.0f;
		for (int j = 0; j < QK; j++)
			y[j] = hasm ? d * (float)q[j] + m : d * (float)q[j];
	}
}

static void dq_q4_0(const void *s, float *y, int64_t n) { dq_a32(KT_Q4_0, 18, s, y, n); }
static void dq_q4_1(const void *s, float *y, int64_t n) { dq_a32(KT_Q4_1, 20, s, y, n); }
static void dq_q5_0(const void *s, float *y, int64_t n) { dq_a32(KT_Q5_0, 22, s, y, n); }
static void dq_q5_1(const void *s, float *y, int64_t n) { dq_a32(KT_Q5_1, 24, s, y, n); }
static void dq_q8_0(const void *s, float *y, int64_t n) { dq_a32(KT_Q8_0, 34, s, y, n); }

/* The scale of each 16 elements (dl) and the min subtracted (ml) of a
 * k-quant block, as ggml computes them. */
SPECIALIZE void kq_scales(int type, const uint8_t *b, float dl[16], float ml[16])
{
	switch (type) {
	case KT_Q2_K: {
		float d = kb_h2f(kb_ld16(b + 80)), dmin = kb_h2f(kb_ld16(b + 82));
		for (int g = 0; g < 16; g++) {
			dl[g] = d * (float)(b[g] & 0xf);
			ml[g] = dmin * (float)(b[g] >> 4);
		}
		break;
	}
	case KT_Q3_K: {
		int8_t sc[16];
		float d = kb_h2f(kb_ld16(b + 108));
		kb_scales_q3k(b + 96, sc);
		for (int g = 0; g < 16; g++) {
			dl[g] = d * (float)sc[g];
			ml[g] = 0.0f;
		}
		break;
	}
	case KT_Q4_K:
	case KT_Q5_K: {
		float d = kb_h2f(kb_ld16(b)), dmin = kb_h2f(kb_ld16(b + 2));
		uint8_t sm[16];
		kb_scales_k4(b + 4, sm);
		for (int j = 0; j < 8; j++) {
			dl[2 * j] = dl[2 * j + 1] = d * (float)sm[j];
			ml[2 * j] = ml[2 * j + 1] = dmin * (float)sm[8 + j];
		}
		break;
	}
	case KT_Q6_K: {
		float d = kb_h2f(kb_ld16(b + 208));
		for (int g = 0; g < 16; g++) {
			dl[g] = d * (float)(int8_t)b[192 + g];
			ml[g] = 0.0f;
		}
		break;
	}
	}
}

/* k-quants: x = dl q - ml */
SPECIALIZE void dq_k(int type, int bb, const uint8_t *b, float *y, int64_t n)
{
	int8_t q[QKK];
	float dl[16], ml[16];
	int hasm = type == KT_Q2_K || type == KT_Q4_K || type == KT_Q5_K;
	for (int64_t i = 0; i < n / QKK; i++, b += bb, y += QKK) {
		unpack(type, b, q);
		kq_scales(type, b, dl, ml);
		for (int e = 0; e < QKK; e++)
			y[e] = hasm ? dl[e >> 4] * (float)q[e] - ml[e >> 4] :
				      dl[e >> 4] * (float)q[e];
	}
}

static void dq_q2_k(const void *s, float *y, int64_t n) { dq_k(KT_Q2_K, 84, s, y, n); }
static void dq_q3_k(const void *s, float *y, int64_t n) { dq_k(KT_Q3_K, 110, s, y, n); }
static void dq_q4_k(const void *s, float *y, int64_t n) { dq_k(KT_Q4_K, 144, s, y, n); }
static void dq_q5_k(const void *s, float *y, int64_t n) { dq_k(KT_Q5_K, 176, s, y, n); }
static void dq_q6_k(const void *s, float *y, int64_t n) { dq_k(KT_Q6_K, 210, s, y, n); }

/* ---------------------------------------------------------------------
 * Activation quantizers (shared by every variant)
 * --------------------------------------------------------------------- */

/* round to nearest even for |v| < 2^22, as cvtps2dq in the default mode */
static inline int kb_rne(float v)
{
	return (int)((v + 12582912.0f) - 12582912.0f);
}

/* The activation quantizers mirror llama.cpp's x86 CPU backend operation
 * by operation, so that the integer products are the ones llama.cpp forms
 * and only the order of float sums differs:
 *   32-element groups (its q8_0 / q8_1): id = 127 / amax,
 *     qs = rne(x * id), the scale stored as a half (d = half(amax / 127));
 *     for weights with a min (q8_1) also s = half(amax / 127 * sum(qs))
 *   256-element groups (its q8_K): iscale = 127 / amax,
 *     qs = rne(x * iscale), d = 1 / iscale in f32 (llama.cpp negates both
 *     iscale and d when the largest magnitude is positive: same products)
 * An all-zero group has d = 0 and zero quants. */
static float amax_of(const float *x, int len)
{
	float amax = 0.0f;
	for (int j = 0; j < len; j++) {
		float a = fabsf(x[j]);
		amax = a > amax ? a : amax;
	}
	return amax;
}

static void quant_scaled(const float *x, int8_t *qs, int len, float id)
{
	for (int j = 0; j < len; j++) {
		int q = kb_rne(x[j] * id);
		qs[j] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
	}
}

/* kind: 0, 8, 16 or 128: the weights' offset (aux = -s*kind/8, int);
 * -1: weights with a min (the s slot holds the f32 half(d*sum), aux its
 * eighth) */
static void qa_a32(const float *x, void *act, int64_t n, int kind)
{
	int64_t nb = n / QK;
	uint8_t *a = act;
	int8_t *qs = (int8_t *)(a + a32_qs_off(nb));
	memset(a, 0, a32_bytes(n));
	for (int64_t i = 0; i < nb; i++) {
		float amax = amax_of(x + QK * i, QK);
		float d = amax / 127.0f;
		quant_scaled(x + QK * i, qs + QK * i, QK,
			     amax != 0.0f ? 127.0f / amax : 0.0f);
		int32_t s = 0;
		for (int j = 0; j < QK; j++)
			s += qs[QK * i + j];
		float dh = kb_h2f(kb_f2h(d));
		float sh = kb_h2f(kb_f2h(d * (float)s));
		memcpy(a + 4 * i, &dh, 4);
		if (kind < 0)
			memcpy(a + 4 * nb + 4 * i, &sh, 4);
		else
			memcpy(a + 4 * nb + 4 * i, &s, 4);
		int32_t ai = -s * kind / 8;
		float af = sh * 0.125f;
		for (int l = 0; l < 8; l++) {
			memcpy(a + a32_dl_off(nb) + 32 * i + 4 * l, &dh, 4);
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
		float amax = amax_of(x + QKK * i, QKK), d = 0.0f;
		if (amax != 0.0f) {
			float iscale = 127.0f / amax;
			quant_scaled(x + QKK * i, qs + QKK * i, QKK, iscale);
			d = 1.0f / iscale;
		} else {
			memset(qs + QKK * i, 0, QKK);
		}
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

/* f16 weights meet their activations as f16 values (llama.cpp's f16
 * products convert the f32 operand to f16); kept in f32 */
static void qa_f16(const float *x, void *act, int64_t n)
{
	float *a = act;
	for (int64_t i = 0; i < n; i++)
		a[i] = kb_h2f(kb_f2h(x[i]));
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

SPECIALIZE int32_t idot(const int8_t *q, const int8_t *a, int len)
{
	int32_t s = 0;
	for (int i = 0; i < len; i++)
		s += q[i] * a[i];
	return s;
}

/* 32-element types: per block d_w d_a sum(q a) (+ m d_a sum(a)) */
SPECIALIZE float dot_a32(int type, int bb, int64_t n, const uint8_t *w,
		     const uint8_t *act)
{
	int64_t nb = n / QK;
	const int8_t *aq = (const int8_t *)(act + a32_qs_off(nb));
	int hasm = type == KT_Q4_1 || type == KT_Q5_1;
	int8_t q[QK];
	float sum = 0.0f;
	for (int64_t i = 0; i < nb; i++, w += bb, aq += QK) {
		unpack(type, w, q);
		float da = kb_bits_f32(kb_ld32(act + 4 * i));
		sum += kb_h2f(kb_ld16(w)) * da * (float)idot(q, aq, QK);
		if (hasm) /* the min times half(d_a * sum of the quants) */
			sum += kb_h2f(kb_ld16(w + 2)) *
			       kb_bits_f32(kb_ld32(act + 4 * nb + 4 * i));
	}
	return sum;
}

static float dot_q4_0(int64_t n, const uint8_t *w, const void *a) { return dot_a32(KT_Q4_0, 18, n, w, a); }
static float dot_q4_1(int64_t n, const uint8_t *w, const void *a) { return dot_a32(KT_Q4_1, 20, n, w, a); }
static float dot_q5_0(int64_t n, const uint8_t *w, const void *a) { return dot_a32(KT_Q5_0, 22, n, w, a); }
static float dot_q5_1(int64_t n, const uint8_t *w, const void *a) { return dot_a32(KT_Q5_1, 24, n, w, a); }
static float dot_q8_0(int64_t n, const uint8_t *w, const void *a) { return dot_a32(KT_Q8_0, 34, n, w, a); }

/* k-quants: per block d_a (d sum_g sc_g sum(q a) - dmin sum_g m_g bsum_g),
 * scales and mins as integers (sub-blocks of 16; q4_K/q5_K's of 32 are
 * two equal halves) */
SPECIALIZE float dot_k(int type, int bb, int64_t n, const uint8_t *w,
		   const uint8_t *act)
{
	int64_t nb = n / QKK;
	const int8_t *aq = (const int8_t *)(act + ak_qs_off(nb));
	int8_t q[QKK], sc8[16];
	float sum = 0.0f;
	for (int64_t i = 0; i < nb; i++, w += bb, aq += QKK) {
		int sc[16], mn[16];
		float d, dmin = 0.0f;
		unpack(type, w, q);
		switch (type) {
		case KT_Q2_K:
			d = kb_h2f(kb_ld16(w + 80));
			dmin = kb_h2f(kb_ld16(w + 82));
			for (int g = 0; g < 16; g++) {
				sc[g] = w[g] & 0xf;
				mn[g] = w[g] >> 4;
			}
			break;
		case KT_Q3_K:
			d = kb_h2f(kb_ld16(w + 108));
			kb_scales_q3k(w + 96, sc8);
			for (int g = 0; g < 16; g++) {
				sc[g] = sc8[g];
				mn[g] = 0;
			}
			break;
		case KT_Q6_K:
			d = kb_h2f(kb_ld16(w + 208));
			for (int g = 0; g < 16; g++) {
				sc[g] = (int8_t)w[192 + g];
				mn[g] = 0;
			}
			break;
		default: /* q4_K, q5_K */
			d = kb_h2f(kb_ld16(w));
			dmin = kb_h2f(kb_ld16(w + 2));
			uint8_t sm[16];
			kb_scales_k4(w + 4, sm);
			for (int j = 0; j < 8; j++) {
				sc[2 * j] = sc[2 * j + 1] = sm[j];
				mn[2 * j] = mn[2 * j + 1] = sm[8 + j];
			}
		}
		int32_t isum = 0, msum = 0;
		for (int g = 0; g < 16; g++) {
			isum += sc[g] * idot(q + 16 * g, aq + 16 * g, 16);
			msum += mn[g] * (int16_t)kb_ld16(act + ak_bs_off(nb) + 2 * (16 * i + g));
		}
		float da = kb_bits_f32(kb_ld32(act + 4 * i));
		sum += da * d * (float)isum - da * dmin * (float)msum;
	}
	return sum;
}

static float dot_q2_k(int64_t n, const uint8_t *w, const void *a) { return dot_k(KT_Q2_K, 84, n, w, a); }
static float dot_q3_k(int64_t n, const uint8_t *w, const void *a) { return dot_k(KT_Q3_K, 110, n, w, a); }
static float dot_q4_k(int64_t n, const uint8_t *w, const void *a) { return dot_k(KT_Q4_K, 144, n, w, a); }
static float dot_q5_k(int64_t n, const uint8_t *w, const void *a) { return dot_k(KT_Q5_K, 176, n, w, a); }
static float dot_q6_k(int64_t n, const uint8_t *w, const void *a) { return dot_k(KT_Q6_K, 210, n, w, a); }

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
	/* squares in float, summed in double, as llama.cpp: any order of the
	 * double sum gives the same float mean but in rare ties */
	double ss = 0.0;
	for (int64_t i = 0; i < n; i++)
		ss += (double)(x[i] * x[i]);
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

/* The two halves of kern_attn's reference (f16 rows): scores[t] = scale *
 * dot(q, K_t), and out[0..hd) += sum over t of p[t] * V_t, t < npos. */
static void attn_dot_ref(const void *K, size_t stride, const float *q,
			 int64_t hd, int64_t npos, float scale, float *scores)
{
	for (int64_t t = 0; t < npos; t++) {
		const uint8_t *k = (const uint8_t *)K + t * stride;
		scores[t] = dot_f16(hd, k, q) * scale;
	}
}

static void attn_axpy_ref(const void *V, size_t stride, const float *p,
			  int64_t hd, int64_t npos, float *out)
{
	for (int64_t t = 0; t < npos; t++) {
		const uint8_t *v = (const uint8_t *)V + t * stride;
		float a = p[t];
		for (int64_t i = 0; i < hd; i++)
			out[i] += a * kb_h2f(kb_ld16(v + 2 * i));
	}
}

static void f32_to_f16_ref(uint16_t *dst, const float *src, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		dst[i] = kb_f2h(src[i]);
}

/* The composition of the ops above, query by query: what model.c did
 * before kern_attn (kern_round_f16 of the reference set is f32_to_f16_ref
 * then dq_f16). */
static void attn_ref(const uint16_t *K, const uint16_t *V, size_t stride,
		     int64_t hd, float scale, const kern_attn_q *qs, int nq,
		     float *scratch)
{
	for (int j = 0; j < nq; j++) {
		const kern_attn_q *a = &qs[j];
		int64_t n = a->p1 - a->p0;
		memset(a->out, 0, (size_t)hd * sizeof *a->out);
		if (n <= 0)
			continue;
		attn_dot_ref((const uint8_t *)K + a->p0 * stride, stride, a->q, hd, n,
			     scale, scratch);
		softmax_ref(scratch, n);
		for (int64_t t = 0; t < n; t++)
			scratch[t] = kb_h2f(kb_f2h(scratch[t]));
		attn_axpy_ref((const uint8_t *)V + a->p0 * stride, stride, scratch, hd, n,
			      a->out);
	}
}

/* ---------------------------------------------------------------------
 * The table
 * --------------------------------------------------------------------- */

#define ENTRY(ID, T, QA) \
	.dequant[ID] = dq_##T, .quant_act[ID] = qa_##QA, .matmul[ID] = mm_##T

const kern_ops kern_ref_ops = {
	.name = "ref",
	ENTRY(KT_F32, f32, f32),
	ENTRY(KT_F16, f16, f16),
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
	.f32_to_f16 = f32_to_f16_ref,
	.attn = attn_ref,
};
