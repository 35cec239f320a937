/*
 * quant.c - reference quantizers from f32 into the GGUF block types, their
 * importance-weighted variants, llama.cpp's recipes, and the activation-aware
 * (AWQ) scale search.
 *
 * The output must be byte-identical to llama.cpp's (ggml-quants.c), so the
 * arithmetic follows its order of operations exactly: every float
 * expression below is evaluated left to right as written, with no fused
 * multiply-add (contraction is switched off for this file) and no
 * reassociation. Changing "a*b*c" into "a*(b*c)" changes the output. The
 * costly searches of the unweighted K-quants run on several sub-blocks at
 * once, one per vector lane, each lane doing the scalar sequence exactly.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

#include "quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kern/kern.h"
#include "kern/kern_blocks.h"

#define QK_SUB 16        /* q2_K, q3_K, q6_K sub-block */
#define QK_SUB4 32       /* q4_K, q5_K sub-block */
#define EPS_ZERO 1e-15f  /* a group this small is all zero */


/* Round to nearest, ties to even, by the 1.5 * 2^23 trick (the same bits
 * as llama.cpp's nearest_int for every input, out of range included). */
static inline int round_int(float v)
{
	float t = v + 12582912.f;
	int32_t i;
	memcpy(&i, &t, 4);
	return (i & 0x007fffff) - 0x00400000;
}

/* A float converted to a small integer type the way x86's truncating
 * conversion does (what the reference's (int8_t)/(uint8_t) casts compile
 * to), without undefined behaviour for out-of-range values. */
static inline int trunc_byte(float v)
{
	if (!(v > -2147483648.0f && v < 2147483648.0f))
		return 0;
	return (int)(uint8_t)(int32_t)v;
}

static inline int trunc_i8(float v) { return (int8_t)trunc_byte(v); }

static inline void put_f16(uint8_t *p, float f)
{
	uint16_t h = kb_f2h(f);
	memcpy(p, &h, 2);
}

static inline float f16_round(float f) { return kb_h2f(kb_f2h(f)); }

/* ------------------------------------------------------------------------
 * Scale searches (the reference's make_*_quants)
 * ------------------------------------------------------------------------ */

/* q3_K's search: symmetric levels, then up to five passes that move single
 * elements to the level that most improves the x^2-weighted fit. */
static float sym_refine(int n, int nmax, const float *x, int8_t *L)
{
	float max = 0, amax = 0;
	for (int i = 0; i < n; i++) {
		float ax = fabsf(x[i]);
		if (ax > amax) {
			amax = ax;
			max = x[i];
		}
	}
	if (amax < EPS_ZERO) {
		memset(L, 0, (size_t)n);
		return 0.f;
	}
	float iscale = -nmax / max;
	float sumlx = 0, suml2 = 0;
	for (int i = 0; i < n; i++) {
		int l = round_int(iscale * x[i]);
		l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
		L[i] = (int8_t)l;
		float w = x[i] * x[i];
		sumlx += w * x[i] * l;
		suml2 += w * l * l;
	}
	for (int pass = 0; pass < 5; pass++) {
		int changed = 0;
		for (int i = 0; i < n; i++) {
			float w = x[i] * x[i];
			float slx = sumlx - w * x[i] * L[i];
			if (slx > 0) {
				float sl2 = suml2 - w * L[i] * L[i];
				int nl = round_int(x[i] * sl2 / slx);
				nl = nl < -nmax ? -nmax : nl > nmax - 1 ? nmax - 1 : nl;
				if (nl != L[i]) {
					slx += w * x[i] * nl;
					sl2 += w * nl * nl;
					if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
						L[i] = (int8_t)nl;
						sumlx = slx;
						suml2 = sl2;
						changed++;
					}
				}
			}
		}
		if (!changed)
			break;
	}
	for (int i = 0; i < n; i++)
		L[i] = (int8_t)(L[i] + nmax);
	return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* ------------------------------------------------------------------------
 * The searches that cost: several groups at once, one per vector lane.
 * Every lane performs exactly the reference's scalar sequence of operations
 * (IEEE lane-wise arithmetic, no reassociation, per-lane selects where the
 * scalar code branches), so the results are bit-identical; the vectors only
 * run NL independent searches side by side. GCC's vector extensions: SSE
 * registers on plain x86-64, whatever the target offers elsewhere.
 * ------------------------------------------------------------------------ */

#define NL 4
typedef float vf __attribute__((vector_size(4 * NL)));
typedef int32_t vi __attribute__((vector_size(4 * NL)));

static inline vf vsplat(float a) { return (vf){ 0 } + a; }
static inline vi visplat(int a) { return (vi){ 0 } + a; }
static inline vi vbits(vf a) { vi r; memcpy(&r, &a, sizeof r); return r; }
static inline vf vfloat(vi a) { vf r; memcpy(&r, &a, sizeof r); return r; }
/* m ? a : b, m a comparison result (all ones or zero per lane) */
static inline vf vsel(vi m, vf a, vf b) { return vfloat((m & vbits(a)) | (~m & vbits(b))); }
static inline vi viself(vi m, vi a, vi b) { return (m & a) | (~m & b); }
static inline vf vabs(vf a) { return vfloat(vbits(a) & visplat(0x7fffffff)); }
/* round_int on each lane */
static inline vi vround(vf v)
{
	return (vbits(v + vsplat(12582912.f)) & visplat(0x007fffff)) - visplat(0x00400000);
}
static inline vi vclamp(vi l, int lo, int hi)
{
	vi a = visplat(lo), b = visplat(hi);
	l = viself(l < a, a, l);
	return viself(l > b, b, l);
}
static inline vf vcvt(vi a) { return __builtin_convertvector(a, vf); }

/* Symmetric levels [-nmax, nmax) with a w-weighted least-squares scale
 * (w NULL: x^2) and a sweep of 18 nearby inverse scales (the reference's
 * make_qx_quants with rmse_type 1). x[i] holds element i of each lane's
 * group; L[i] gets level + nmax. */
static void sym_search_lanes(int n, int nmax, const vf *x, const vf *w, vi *L,
			     float *scale_out)
{
	vi Laux[32];
	vf max = vsplat(0), amax = vsplat(0);
	for (int i = 0; i < n; i++) {
		vf ax = vabs(x[i]);
		vi gt = ax > amax;
		amax = vsel(gt, ax, amax);
		max = vsel(gt, x[i], max);
	}
	vi zero = amax < vsplat(EPS_ZERO);
	vf iscale = vsplat((float)-nmax) / max;
	vf sumlx = vsplat(0), suml2 = vsplat(0);
	for (int i = 0; i < n; i++) {
		vi l = vclamp(vround(iscale * x[i]), -nmax, nmax - 1);
		L[i] = l + visplat(nmax);
		vf wi = w ? w[i] : x[i] * x[i], lf = vcvt(l);
		sumlx += wi * x[i] * lf;
		suml2 += wi * lf * lf;
	}
	vf scale = vsel(suml2 != vsplat(0), sumlx / suml2, vsplat(0));
	vf best = scale * sumlx;
	for (int is = -9; is <= 9; is++) {
		if (is == 0)
			continue;
		float t = -(nmax + 0.1f * is);
		iscale = vsplat(t) / max;
		sumlx = suml2 = vsplat(0);
		for (int i = 0; i < n; i++) {
			vi l = vclamp(vround(iscale * x[i]), -nmax, nmax - 1);
			Laux[i] = l + visplat(nmax);
			vf wi = w ? w[i] : x[i] * x[i], lf = vcvt(l);
			sumlx += wi * x[i] * lf;
			suml2 += wi * lf * lf;
		}
		vi upd = (suml2 > vsplat(0)) & (sumlx * sumlx > best * suml2);
		for (int i = 0; i < n; i++)
			L[i] = viself(upd, Laux[i], L[i]);
		vf sc = sumlx / suml2;
		scale = vsel(upd, sc, scale);
		best = vsel(upd, sc * sumlx, best);
	}
	for (int i = 0; i < n; i++)
		L[i] = viself(zero, visplat(0), L[i]);
	scale = vsel(zero, vsplat(0), scale);
	for (int k = 0; k < NL; k++)
		scale_out[k] = scale[k];
}

/* Affine levels [0, nmax] with a min <= 0, w-weighted: start from the
 * range, then try nstep + 1 inverse scales (rmin + rdelta k + nmax) / range,
 * each with the weighted least-squares scale and min, keeping the best by
 * weighted squared (or absolute: mad) error. v3 selects the reference's
 * make_qkx3_quants (levels guarded against a min that has moved near max)
 * over make_qkx2_quants. Scales to scale_out, -min to neg_min_out. */
static void affine_search_lanes(int v3, int n, int nmax, const vf *x, const vf *w,
				vi *L, float *scale_out, float *neg_min_out, float rmin,
				float rdelta, int nstep, int mad)
{
	vi Laux[32];
	vf min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
	for (int i = 1; i < n; i++) {
		min = vsel(x[i] < min, x[i], min);
		max = vsel(x[i] > max, x[i], max);
		sum_w += w[i];
		sum_x += w[i] * x[i];
	}
	min = vsel(min > vsplat(0), vsplat(0), min);
	vi flat = v3 ? max <= min : max == min;
	vf min0 = min, top = vsplat((float)nmax);
	vf iscale = top / (max - min);
	vf scale = vsplat(1) / iscale;
	vf best = vsplat(0);
	for (int i = 0; i < n; i++) {
		L[i] = vclamp(vround(iscale * (x[i] - min)), 0, nmax);
		vf d = scale * vcvt(L[i]) + min - x[i];
		d = mad ? vabs(d) : d * d;
		best += w[i] * d;
	}
	for (int is = 0; is <= nstep; is++) {
		float t = rmin + rdelta * is + nmax;
		iscale = vsplat(t) / (max - min);
		vf sum_l = vsplat(0), sum_l2 = vsplat(0), sum_xl = vsplat(0);
		for (int i = 0; i < n; i++) {
			vf v = iscale * (x[i] - min);
			if (v3)
				Laux[i] = viself(v > vsplat(0), vround(vsel(v < top, v, top)),
						 visplat(0));
			else
				Laux[i] = vclamp(vround(v), 0, nmax);
			vf l = vcvt(Laux[i]);
			sum_l += w[i] * l;
			sum_l2 += w[i] * l * l;
			sum_xl += w[i] * l * x[i];
		}
		vf D = sum_w * sum_l2 - sum_l * sum_l;
		vi ok = D > vsplat(0);
		vf sc = (sum_w * sum_xl - sum_x * sum_l) / D;
		vf m = (sum_l2 * sum_x - sum_l * sum_xl) / D;
		vi mpos = m > vsplat(0);
		m = vsel(mpos, vsplat(0), m);
		sc = vsel(mpos, sum_xl / sum_l2, sc);
		vf err = vsplat(0);
		for (int i = 0; i < n; i++) {
			vf d = sc * vcvt(Laux[i]) + m - x[i];
			d = mad ? vabs(d) : d * d;
			err += w[i] * d;
		}
		vi upd = ok & (err < best);
		for (int i = 0; i < n; i++)
			L[i] = viself(upd, Laux[i], L[i]);
		best = vsel(upd, err, best);
		scale = vsel(upd, sc, scale);
		min = vsel(upd, m, min);
	}
	for (int i = 0; i < n; i++)
		L[i] = viself(flat, visplat(0), L[i]);
	scale = vsel(flat, vsplat(0), scale);
	min = vsel(flat, min0, min);
	for (int k = 0; k < NL; k++) {
		scale_out[k] = scale[k];
		neg_min_out[k] = -min[k];
	}
}

/* Lanes k = 0..NL-1 from groups g + k of n consecutive elements (the last
 * group repeated past ng: padding whose results are dropped). */
static void load_lanes(int ng, int g, int n, const float *src, vf *v)
{
	for (int k = 0; k < NL; k++) {
		const float *p = src + (size_t)(g + k < ng ? g + k : ng - 1) * (size_t)n;
		for (int i = 0; i < n; i++)
			v[i][k] = p[i];
	}
}

/* sym_search_lanes over ng groups of n (<= 32) elements: group j is
 * x[j n .. j n + n), its weights the same slice of w (NULL: x^2), its
 * levels the same slice of L, its scale scale[j]. */
static void sym_groups(int ng, int n, int nmax, const float *x, const float *w,
		       int8_t *L, float *scale)
{
	vf xv[32], wv[32];
	vi Lv[32];
	float sc[NL];
	for (int g = 0; g < ng; g += NL) {
		load_lanes(ng, g, n, x, xv);
		if (w)
			load_lanes(ng, g, n, w, wv);
		sym_search_lanes(n, nmax, xv, w ? wv : NULL, Lv, sc);
		for (int k = 0; k < NL && g + k < ng; k++) {
			scale[g + k] = sc[k];
			for (int i = 0; i < n; i++)
				L[(g + k) * n + i] = (int8_t)Lv[i][k];
		}
	}
}

/* affine_search_lanes over ng groups, laid out as for sym_groups. */
static void affine_groups(int v3, int ng, int n, int nmax, const float *x,
			  const float *w, uint8_t *L, float *scale, float *neg_min,
			  float rmin, float rdelta, int nstep, int mad)
{
	vf xv[32], wv[32];
	vi Lv[32];
	float sc[NL], nm[NL];
	for (int g = 0; g < ng; g += NL) {
		load_lanes(ng, g, n, x, xv);
		load_lanes(ng, g, n, w, wv);
		affine_search_lanes(v3, n, nmax, xv, wv, Lv, sc, nm, rmin, rdelta, nstep, mad);
		for (int k = 0; k < NL && g + k < ng; k++) {
			scale[g + k] = sc[k];
			neg_min[g + k] = nm[k];
			for (int i = 0; i < n; i++)
				L[(g + k) * n + i] = (uint8_t)Lv[i][k];
		}
	}
}

/* Non-negative levels [0, nmax] for a set of sub-block scales (or mins),
 * weighted by qw: 8 trial scales, then single-element refinement. */
static float pos_search(int n, int nmax, const float *x, uint8_t *L,
			const float *qw)
{
	float max = 0;
	for (int i = 0; i < n; i++)
		max = max > x[i] ? max : x[i];
	if (max < EPS_ZERO) {
		memset(L, 0, (size_t)n);
		return 0.f;
	}
	float iscale = nmax / max;
	for (int i = 0; i < n; i++)
		L[i] = (uint8_t)round_int(iscale * x[i]);
	float scale = 1 / iscale;
	float best = 0;
	for (int i = 0; i < n; i++) {
		float d = x[i] - scale * L[i];
		best += qw[i] * d * d;
	}
	for (int is = -4; is <= 4; is++) {
		if (is == 0)
			continue;
		float isc = (0.1f * is + nmax) / max;
		float sc = 1 / isc;
		float mse = 0;
		for (int i = 0; i < n; i++) {
			int l = round_int(isc * x[i]);
			l = l < nmax ? l : nmax;
			float d = x[i] - sc * l;
			mse += qw[i] * d * d;
		}
		if (mse < best) {
			best = mse;
			iscale = isc;
		}
	}
	float sumlx = 0, suml2 = 0;
	for (int i = 0; i < n; i++) {
		int l = round_int(iscale * x[i]);
		l = l < nmax ? l : nmax;
		L[i] = (uint8_t)l;
		sumlx += qw[i] * x[i] * l;
		suml2 += qw[i] * l * l;
	}
	for (int pass = 0; pass < 5; pass++) {
		int changed = 0;
		for (int i = 0; i < n; i++) {
			float w = qw[i];
			float slx = sumlx - w * x[i] * L[i];
			float sl2 = suml2 - w * L[i] * L[i];
			if (slx > 0 && sl2 > 0) {
				int nl = round_int(x[i] * sl2 / slx);
				nl = nl < nmax ? nl : nmax;
				if (nl != L[i]) {
					slx += w * x[i] * nl;
					sl2 += w * nl * nl;
					if (slx * slx * suml2 > sumlx * sumlx * sl2) {
						L[i] = (uint8_t)nl;
						sumlx = slx;
						suml2 = sl2;
						changed++;
					}
				}
			}
		}
		if (!changed)
			break;
	}
	return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Importance weights of a group: qw[j] * sqrt(sigma2 + x[j]^2). */
static void imp_weights(int n, const float *x, const float *qw, float sigma2,
			float *w)
{
	for (int j = 0; j < n; j++)
		w[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
}

static float sum_sq(int64_t n, const float *x)
{
	float s = 0;
	for (int64_t j = 0; j < n; j++)
		s += x[j] * x[j];
	return s;
}

static float sum_of(int n, const float *w)
{
	float s = 0;
	for (int j = 0; j < n; j++)
		s += w[j];
	return s;
}

/* ------------------------------------------------------------------------
 * Packing helpers
 * ------------------------------------------------------------------------ */

/* 32 4-bit levels: element j in the low nibble of byte j, j + 16 high. */
static void pack_nibbles32(uint8_t *qs, const uint8_t *L)
{
	for (int j = 0; j < 16; j++)
		qs[j] = (uint8_t)((L[j] & 0xf) | (L[j + 16] & 0xf) << 4);
}

/* The 5th bits of 32 levels as q5_0/q5_1's little-endian u32. */
static void pack_high32(uint8_t *qh4, const uint8_t *L)
{
	uint32_t qh = 0;
	for (int j = 0; j < 32; j++)
		qh |= (uint32_t)((L[j] >> 4) & 1) << j;
	qh4[0] = (uint8_t)qh;
	qh4[1] = (uint8_t)(qh >> 8);
	qh4[2] = (uint8_t)(qh >> 16);
	qh4[3] = (uint8_t)(qh >> 24);
}

/* 256 2-bit levels as q2_K/q3_K's qs: byte l of each 32-byte half holds
 * elements l, l + 32, l + 64, l + 96 of its 128. */
static void pack_2bit(uint8_t *qs, const uint8_t *L)
{
	for (int h = 0; h < QKK; h += 128)
		for (int l = 0; l < 32; l++)
			qs[h / 4 + l] = (uint8_t)(L[h + l] | L[h + l + 32] << 2 |
						  L[h + l + 64] << 4 | L[h + l + 96] << 6);
}

/* The 8 6-bit scales and mins of a q4_K/q5_K block into its 12 bytes. */
static void pack_scales_k4(uint8_t *s, const uint8_t *ls, const uint8_t *lm)
{
	for (int j = 0; j < 8; j++) {
		if (j < 4) {
			s[j] = ls[j];
			s[j + 4] = lm[j];
		} else {
			s[j + 4] = (uint8_t)((ls[j] & 0xf) | (lm[j] & 0xf) << 4);
			s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
			s[j] |= (uint8_t)((lm[j] >> 4) << 6);
		}
	}
}

/* Scale and min of sub-block j of a q4_K/q5_K block from its 12 bytes. */
static void unpack_scale_min_k4(int j, const uint8_t *s, uint8_t *sc, uint8_t *m)
{
	if (j < 4) {
		*sc = s[j] & 63;
		*m = s[j + 4] & 63;
	} else {
		*sc = (uint8_t)((s[j + 4] & 0xf) | (s[j - 4] >> 6) << 4);
		*m = (uint8_t)((s[j + 4] >> 4) | (s[j] >> 6) << 4);
	}
}

/* The 16 6-bit q3_K scales (already offset by 32) into 12 bytes. */
static void pack_scales_q3k(uint8_t *s, const int *l6)
{
	memset(s, 0, 12);
	for (int j = 0; j < 16; j++) {
		int l = l6[j];
		if (j < 8)
			s[j] = (uint8_t)(l & 0xf);
		else
			s[j - 8] |= (uint8_t)((l & 0xf) << 4);
		s[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
	}
}

/* ------------------------------------------------------------------------
 * 32-element types
 * ------------------------------------------------------------------------ */

static void q8_0_row(const float *x, uint8_t *y, int64_t n)
{
	for (int64_t b = 0; b < n / QK; b++, x += QK, y += 34) {
		float amax = 0;
		for (int j = 0; j < QK; j++)
			amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
		float d = amax / 127;
		float id = d ? 1.0f / d : 0.0f;
		put_f16(y, d);
		for (int j = 0; j < QK; j++)
			y[2 + j] = (uint8_t)trunc_i8(roundf(x[j] * id));
	}
}

/* q4_0 / q5_0 without weights: scale from the signed extreme. */
static void sym_plain_block(const float *x, int nmax, uint8_t *L, float *dout)
{
	float amax = 0, max = 0;
	for (int j = 0; j < QK; j++)
		if (amax < fabsf(x[j])) {
			amax = fabsf(x[j]);
			max = x[j];
		}
	float d = max / -nmax;
	float id = d ? 1.0f / d : 0.0f;
	int top = 2 * nmax - 1;
	for (int j = 0; j < QK; j++) {
		int l = trunc_i8(x[j] * id + (nmax + 0.5f));
		L[j] = (uint8_t)(l < top ? l : top);
	}
	*dout = d;
}

/* q4_1 / q5_1 without weights: range split evenly. */
static void affine_plain_block(const float *x, int nmax, uint8_t *L,
			       float *dout, float *mout)
{
	float min = 3.402823466e+38f, max = -3.402823466e+38f;
	for (int j = 0; j < QK; j++) {
		if (x[j] < min)
			min = x[j];
		if (x[j] > max)
			max = x[j];
	}
	float d = (max - min) / nmax;
	float id = d ? 1.0f / d : 0.0f;
	for (int j = 0; j < QK; j++) {
		int l = trunc_byte((x[j] - min) * id + 0.5f);
		/* q4_1 clamps the level; q5_1 keeps the byte's low 5 bits */
		L[j] = (uint8_t)(nmax == 15 ? (l < 15 ? l : 15) : l);
	}
	*dout = d;
	*mout = min;
}

/* The whole row's mean square, for the weighted 32-element variants. */
static float row_sigma2(const float *x, int64_t n)
{
	return sum_sq(n, x) / n;
}

/* Importance weights of NL (or, at the row's end, fewer: *ng) consecutive
 * 32-element blocks from block b on. */
static void block_weights(const float *x, const float *qw, int64_t nb, int64_t b,
			  float sigma2, float *w, int *ng)
{
	*ng = nb - b < NL ? (int)(nb - b) : NL;
	for (int g = 0; g < *ng; g++)
		imp_weights(QK, x + (b + g) * QK, qw + (b + g) * QK, sigma2, w + g * QK);
}

/* q4_0 (nmax 8, 18-byte blocks) and q5_0 (nmax 16, 22-byte blocks). */
static void qx_0_row(int nmax, const float *x, uint8_t *y, int64_t n, const float *qw)
{
	float sigma2 = qw ? row_sigma2(x, n) : 0, w[NL * QK], d[NL];
	int8_t L[NL * QK];
	int64_t nb = n / QK;
	size_t bb = nmax == 8 ? 18 : 22;
	int ng = 1;
	for (int64_t b = 0; b < nb; b += ng) {
		if (qw) {
			block_weights(x, qw, nb, b, sigma2, w, &ng);
			sym_groups(ng, QK, nmax, x + b * QK, w, L, d);
		} else {
			sym_plain_block(x + b * QK, nmax, (uint8_t *)L, d);
		}
		for (int g = 0; g < ng; g++) {
			uint8_t *yb = y + (size_t)(b + g) * bb;
			const uint8_t *Lb = (const uint8_t *)L + g * QK;
			put_f16(yb, d[g]);
			if (nmax == 8) {
				pack_nibbles32(yb + 2, Lb);
			} else {
				pack_high32(yb + 2, Lb);
				pack_nibbles32(yb + 6, Lb);
			}
		}
	}
}

/* q4_1 (nmax 15, 20-byte blocks) and q5_1 (nmax 31, 24-byte blocks). */
static void qx_1_row(int nmax, const float *x, uint8_t *y, int64_t n,
		     const float *qw)
{
	float sigma2 = qw ? row_sigma2(x, n) : 0, w[NL * QK], d[NL], m[NL];
	uint8_t L[NL * QK];
	int64_t nb = n / QK;
	size_t bb = nmax == 15 ? 20 : 24;
	int ng = 1;
	for (int64_t b = 0; b < nb; b += ng) {
		if (qw) {
			block_weights(x, qw, nb, b, sigma2, w, &ng);
			affine_groups(1, ng, QK, nmax, x + b * QK, w, L, d, m, -0.9f, 0.05f, 36, 0);
			for (int g = 0; g < ng; g++)
				m[g] = -m[g];
		} else {
			affine_plain_block(x + b * QK, nmax, L, d, m);
		}
		for (int g = 0; g < ng; g++) {
			uint8_t *yb = y + (size_t)(b + g) * bb;
			put_f16(yb, d[g]);
			put_f16(yb + 2, m[g]);
			if (nmax == 15) {
				pack_nibbles32(yb + 4, L + g * QK);
			} else {
				pack_high32(yb + 4, L + g * QK);
				pack_nibbles32(yb + 8, L + g * QK);
			}
		}
	}
}

/* ------------------------------------------------------------------------
 * K-quants: 256-element super-blocks
 * ------------------------------------------------------------------------ */

static void q2_k_block(const float *x, uint8_t *y, const float *qw)
{
	uint8_t L[QKK], Ls[16], Lm[16];
	float mins[16], scales[16], sw[16], w[QKK];
	uint8_t *sc = y, *qs = y + 16;
	float d, dmin;
	if (qw) {
		float sigma2 = sum_sq(QKK, x) / QKK;
		for (int j = 0; j < 16; j++) {
			imp_weights(QK_SUB, x + 16 * j, qw + 16 * j, sigma2, w + 16 * j);
			sw[j] = sum_of(QK_SUB, w + 16 * j);
		}
		affine_groups(1, 16, QK_SUB, 3, x, w, L, scales, mins, -0.9f, 0.05f, 36, 0);
		float dm = pos_search(16, 15, scales, Ls, sw);
		float mm = pos_search(16, 15, mins, Lm, sw);
		for (int j = 0; j < 16; j++)
			sc[j] = (uint8_t)(Ls[j] | Lm[j] << 4);
		d = f16_round(dm);
		dmin = f16_round(mm);
		put_f16(y + 80, dm);
		put_f16(y + 82, mm);
	} else {
		float max_scale = 0, max_min = 0;
		for (int i = 0; i < QKK; i++)
			w[i] = fabsf(x[i]);
		affine_groups(0, 16, QK_SUB, 3, x, w, L, scales, mins, -0.5f, 0.1f, 15, 1);
		for (int j = 0; j < 16; j++) {
			if (scales[j] > max_scale)
				max_scale = scales[j];
			if (mins[j] > max_min)
				max_min = mins[j];
		}
		if (max_scale > 0) {
			float iscale = 15.f / max_scale;
			for (int j = 0; j < 16; j++)
				sc[j] = (uint8_t)round_int(iscale * scales[j]);
			put_f16(y + 80, max_scale / 15.f);
		} else {
			memset(sc, 0, 16);
			put_f16(y + 80, 0.f);
		}
		if (max_min > 0) {
			float iscale = 15.f / max_min;
			for (int j = 0; j < 16; j++)
				sc[j] |= (uint8_t)(round_int(iscale * mins[j]) << 4);
			put_f16(y + 82, max_min / 15.f);
		} else {
			put_f16(y + 82, 0.f);
		}
		d = kb_h2f(kb_ld16(y + 80));
		dmin = kb_h2f(kb_ld16(y + 82));
	}
	for (int j = 0; j < 16; j++) {
		float dl = d * (sc[j] & 0xf);
		if (!dl)
			continue;
		float ml = dmin * (sc[j] >> 4);
		for (int i = 0; i < QK_SUB; i++) {
			int l = round_int((x[16 * j + i] + ml) / dl);
			L[16 * j + i] = (uint8_t)(l < 0 ? 0 : l > 3 ? 3 : l);
		}
	}
	pack_2bit(qs, L);
}

static void q3_k_block(const float *x, uint8_t *y, const float *qw)
{
	int8_t L[QKK], Ls[16];
	float scales[16];
	int l6[16];
	uint8_t *hmask = y, *qs = y + 32, *s12 = y + 96;
	if (qw) {
		float sigma2 = 2 * sum_sq(QKK, x) / QKK, w[QKK], sw[16], d;
		for (int j = 0; j < 16; j++) {
			imp_weights(QK_SUB, x + 16 * j, qw + 16 * j, sigma2, w + 16 * j);
			sw[j] = sum_of(QK_SUB, w + 16 * j);
		}
		sym_groups(16, QK_SUB, 4, x, w, L, scales);
		sym_groups(1, 16, 32, scales, sw, Ls, &d);
		for (int j = 0; j < 16; j++)
			l6[j] = Ls[j];
		pack_scales_q3k(s12, l6);
		put_f16(y + 108, d);
	} else {
		float max_scale = 0, amax = 0;
		for (int j = 0; j < 16; j++) {
			scales[j] = sym_refine(QK_SUB, 4, x + 16 * j, L + 16 * j);
			if (fabsf(scales[j]) > amax) {
				amax = fabsf(scales[j]);
				max_scale = scales[j];
			}
		}
		if (max_scale) {
			float iscale = -32.f / max_scale;
			for (int j = 0; j < 16; j++) {
				int l = (int8_t)round_int(iscale * scales[j]);
				l = l < -32 ? -32 : l > 31 ? 31 : l;
				l6[j] = l + 32;
			}
			pack_scales_q3k(s12, l6);
			put_f16(y + 108, 1 / iscale);
		} else {
			memset(l6, 0, sizeof l6);
			memset(s12, 0, 12);
			put_f16(y + 108, 0.f);
		}
	}
	float d = kb_h2f(kb_ld16(y + 108));
	for (int j = 0; j < 16; j++) {
		float dl = d * (int8_t)(l6[j] - 32);
		if (!dl)
			continue;
		for (int i = 0; i < QK_SUB; i++) {
			int l = round_int(x[16 * j + i] / dl);
			L[16 * j + i] = (int8_t)((l < -4 ? -4 : l > 3 ? 3 : l) + 4);
		}
	}
	/* the high bit of element j goes to bit j / 32 of hmask[j % 32] */
	memset(hmask, 0, 32);
	uint8_t low[QKK];
	for (int j = 0; j < QKK; j++) {
		int l = L[j];
		if (l > 3) {
			hmask[j % 32] |= (uint8_t)(1u << (j / 32));
			l -= 4;
		}
		low[j] = (uint8_t)l;
	}
	pack_2bit(qs, low);
}

/* q4_K (nmax 15) and q5_K (nmax 31): 8 sub-blocks of 32, each with a
 * 6-bit scale and min under the block's f16 d and dmin. */
static void qk4_block(int nmax, const float *x, uint8_t *y, const float *qw)
{
	uint8_t L[QKK], ls[8], lm[8];
	float mins[8], scales[8], w[QKK];
	if (qw) {
		float sigma2 = 2 * sum_sq(QKK, x) / QKK, sw[8];
		for (int j = 0; j < 8; j++) {
			imp_weights(QK_SUB4, x + 32 * j, qw + 32 * j, sigma2, w + 32 * j);
			sw[j] = sum_of(QK_SUB4, w + 32 * j);
		}
		affine_groups(1, 8, QK_SUB4, nmax, x, w, L, scales, mins, -0.9f, 0.05f, 36, 0);
		float d = pos_search(8, 63, scales, ls, sw);
		float m = pos_search(8, 63, mins, lm, sw);
		if (nmax == 31)
			for (int j = 0; j < 8; j++) {
				ls[j] = ls[j] < 63 ? ls[j] : 63;
				lm[j] = lm[j] < 63 ? lm[j] : 63;
			}
		put_f16(y, d);
		put_f16(y + 2, m);
	} else {
		float max_scale = 0, max_min = 0;
		for (int j = 0; j < 8; j++) {
			float av_x = sqrtf(sum_sq(QK_SUB4, x + 32 * j) / 32);
			for (int l = 0; l < QK_SUB4; l++)
				w[32 * j + l] = av_x + fabsf(x[32 * j + l]);
		}
		if (nmax == 15)
			affine_groups(0, 8, QK_SUB4, 15, x, w, L, scales, mins, -1.f, 0.1f, 20, 0);
		else
			affine_groups(0, 8, QK_SUB4, 31, x, w, L, scales, mins, -0.5f, 0.1f, 15, 0);
		for (int j = 0; j < 8; j++) {
			if (scales[j] > max_scale)
				max_scale = scales[j];
			if (mins[j] > max_min)
				max_min = mins[j];
		}
		float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
		float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
		for (int j = 0; j < 8; j++) {
			uint8_t a = (uint8_t)round_int(inv_scale * scales[j]);
			uint8_t b = (uint8_t)round_int(inv_min * mins[j]);
			ls[j] = a < 63 ? a : 63;
			lm[j] = b < 63 ? b : 63;
		}
		put_f16(y, max_scale / 63.f);
		put_f16(y + 2, max_min / 63.f);
	}
	pack_scales_k4(y + 4, ls, lm);

	float d = kb_h2f(kb_ld16(y)), dmin = kb_h2f(kb_ld16(y + 2));
	for (int j = 0; j < 8; j++) {
		uint8_t sc, m;
		unpack_scale_min_k4(j, y + 4, &sc, &m);
		float dl = d * sc;
		if (!dl)
			continue;
		float ml = dmin * m;
		for (int i = 0; i < QK_SUB4; i++) {
			int l = round_int((x[32 * j + i] + ml) / dl);
			L[32 * j + i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
		}
	}
	if (nmax == 15) {
		uint8_t *q = y + 16;
		for (int h = 0; h < QKK; h += 64, q += 32)
			for (int l = 0; l < 32; l++)
				q[l] = (uint8_t)(L[h + l] | L[h + l + 32] << 4);
	} else {
		/* 5th bits: element h + l (h = 64 k) is bit 2k of qh[l],
		 * element h + l + 32 bit 2k + 1 */
		uint8_t *qh = y + 16, *ql = y + 48;
		memset(qh, 0, 32);
		for (int h = 0, k = 0; h < QKK; h += 64, k++, ql += 32)
			for (int l = 0; l < 32; l++) {
				int a = L[h + l], b = L[h + l + 32];
				if (a > 15) {
					a -= 16;
					qh[l] |= (uint8_t)(1u << (2 * k));
				}
				if (b > 15) {
					b -= 16;
					qh[l] |= (uint8_t)(2u << (2 * k));
				}
				ql[l] = (uint8_t)(a | b << 4);
			}
	}
}

static void q6_k_block(const float *x, uint8_t *y, const float *qw)
{
	int8_t L[QKK];
	float scales[16], max_scale = 0, max_abs = 0;
	uint8_t *ql = y, *qh = y + 128;
	int8_t *sc = (int8_t *)(y + 192);
	sym_groups(16, QK_SUB, 32, x, qw, L, scales);
	for (int j = 0; j < 16; j++) {
		if (fabsf(scales[j]) > max_abs) {
			max_abs = fabsf(scales[j]);
			max_scale = scales[j];
		}
	}
	if (max_abs < EPS_ZERO) {
		memset(y, 0, 210);
		return;
	}
	float iscale = -128.f / max_scale;
	put_f16(y + 208, 1 / iscale);
	for (int j = 0; j < 16; j++) {
		int l = round_int(iscale * scales[j]);
		sc[j] = (int8_t)(l < 127 ? l : 127);
	}
	float d = kb_h2f(kb_ld16(y + 208));
	for (int j = 0; j < 16; j++) {
		float dl = d * sc[j];
		if (!dl)
			continue;
		for (int i = 0; i < QK_SUB; i++) {
			int l = round_int(x[16 * j + i] / dl);
			L[16 * j + i] = (int8_t)((l < -32 ? -32 : l > 31 ? 31 : l) + 32);
		}
	}
	for (int h = 0; h < QKK; h += 128, ql += 64, qh += 32)
		for (int l = 0; l < 32; l++) {
			const int8_t *g = L + h + l;
			ql[l] = (uint8_t)((g[0] & 0xf) | (g[64] & 0xf) << 4);
			ql[l + 32] = (uint8_t)((g[32] & 0xf) | (g[96] & 0xf) << 4);
			qh[l] = (uint8_t)((g[0] >> 4) | (g[32] >> 4) << 2 |
					  (g[64] >> 4) << 4 | (g[96] >> 4) << 6);
		}
}

/* ------------------------------------------------------------------------
 * Dispatch
 * ------------------------------------------------------------------------ */

int quant_supported(const slm_dtype *t)
{
	switch (t ? t->ggml_id : -1) {
	case KT_F32: case KT_F16: case KT_BF16: case KT_Q8_0: case KT_Q4_0:
	case KT_Q4_1: case KT_Q5_0: case KT_Q5_1: case KT_Q2_K: case KT_Q3_K:
	case KT_Q4_K: case KT_Q5_K: case KT_Q6_K:
		return 1;
	default:
		return 0;
	}
}

int quant_uses_imatrix(const slm_dtype *t)
{
	return quant_supported(t) && t->ggml_id != KT_F32 && t->ggml_id != KT_F16 &&
	       t->ggml_id != KT_BF16 && t->ggml_id != KT_Q8_0;
}

static void quant_row(const slm_dtype *t, const float *x, uint8_t *y, int64_t n,
		      const float *qw)
{
	switch (t->ggml_id) {
	case KT_F32:
		memcpy(y, x, (size_t)n * 4);
		break;
	case KT_F16:
		for (int64_t i = 0; i < n; i++) {
			uint16_t h = kb_f2h(x[i]);
			memcpy(y + 2 * i, &h, 2);
		}
		break;
	case KT_BF16:
		for (int64_t i = 0; i < n; i++) {
			uint16_t h = kb_f2bf(x[i]);
			memcpy(y + 2 * i, &h, 2);
		}
		break;
	case KT_Q8_0: q8_0_row(x, y, n); break;
	case KT_Q4_0: qx_0_row(8, x, y, n, qw); break;
	case KT_Q5_0: qx_0_row(16, x, y, n, qw); break;
	case KT_Q4_1: qx_1_row(15, x, y, n, qw); break;
	case KT_Q5_1: qx_1_row(31, x, y, n, qw); break;
	case KT_Q2_K:
		for (int64_t b = 0; b < n / QKK; b++)
			q2_k_block(x + b * QKK, y + b * 84, qw ? qw + b * QKK : NULL);
		break;
	case KT_Q3_K:
		for (int64_t b = 0; b < n / QKK; b++)
			q3_k_block(x + b * QKK, y + b * 110, qw ? qw + b * QKK : NULL);
		break;
	case KT_Q4_K:
		for (int64_t b = 0; b < n / QKK; b++)
			qk4_block(15, x + b * QKK, y + b * 144, qw ? qw + b * QKK : NULL);
		break;
	case KT_Q5_K:
		for (int64_t b = 0; b < n / QKK; b++)
			qk4_block(31, x + b * QKK, y + b * 176, qw ? qw + b * QKK : NULL);
		break;
	case KT_Q6_K:
		for (int64_t b = 0; b < n / QKK; b++)
			q6_k_block(x + b * QKK, y + b * 210, qw ? qw + b * QKK : NULL);
		break;
	default:
		slm_die(EX_SOFTWARE, "quant_rows: no quantizer for %s", t->name);
	}
}

void quant_rows(const slm_dtype *t, const float *x, void *dst, int64_t nrows,
		int64_t n, const float *imatrix)
{
	size_t rb = (size_t)(n / t->block_elems) * t->block_bytes;
	const float *qw = quant_uses_imatrix(t) ? imatrix : NULL;
	for (int64_t r = 0; r < nrows; r++)
		quant_row(t, x + r * n, (uint8_t *)dst + (size_t)r * rb, n, qw);
}

int64_t quant_find_nonfinite(const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		uint32_t b = kb_f32_bits(x[i]);
		if ((b & 0x7f800000) == 0x7f800000)
			return i;
	}
	return -1;
}

void quant_error(const slm_dtype *t, const float *x, const void *q, int64_t n,
		 float *tmp, double *sse, double *maxerr)
{
	kern_dequant(t, q, tmp, n);
	double s = 0, m = *maxerr;
	for (int64_t i = 0; i < n; i++) {
		double e = fabs((double)tmp[i] - (double)x[i]);
		s += e * e;
		if (e > m)
			m = e;
	}
	*sse += s;
	*maxerr = m;
}

/* ------------------------------------------------------------------------
 * Activation-aware scales (AWQ)
 * ------------------------------------------------------------------------ */

void quant_awq_scales(int64_t n, const float *imp, float alpha, float *s)
{
	/* magnitudes: root mean squares, floored at 1e-5 of the largest so that
	 * a dead channel does not get an infinite inverse scale */
	double top = 0, mean_log = 0;
	for (int64_t j = 0; j < n; j++)
		if (sqrt((double)imp[j]) > top)
			top = sqrt((double)imp[j]);
	for (int64_t j = 0; j < n && top > 0; j++)
		mean_log += log(fmax(sqrt((double)imp[j]), 1e-5 * top));
	mean_log /= (double)(n ? n : 1);
	for (int64_t j = 0; j < n; j++)
		s[j] = top > 0 && alpha != 0.0f
			? (float)exp((double)alpha *
				     (log(fmax(sqrt((double)imp[j]), 1e-5 * top)) - mean_log))
			: 1.0f;
}

void quant_awq_apply(int64_t n, const float *w, const float *s, float d, float *out)
{
	for (int64_t j = 0; j < n; j++)
		out[j] = s ? w[j] * s[j] / d : w[j] / d;
}

void quant_awq_fold(int64_t n, const float *s, float *v)
{
	for (int64_t j = 0; j < n; j++)
		v[j] /= s[j];
}

double quant_awq_error(const quant_awq_mat *m, int64_t n, const float *s)
{
	size_t rb = (size_t)(n / m->type->block_elems) * m->type->block_bytes;
	float *x = slm_xmalloc((size_t)n * sizeof *x), *y = slm_xmalloc((size_t)n * sizeof *y);
	float *qw = slm_xmalloc((size_t)n * sizeof *qw);
	uint8_t *q = slm_xmalloc(rb ? rb : 1);
	for (int64_t j = 0; j < n; j++)
		qw[j] = s ? m->imp[j] / (s[j] * s[j]) : m->imp[j];
	double err = 0;
	for (int64_t r = 0; r < m->rows; r++) {
		const float *w = m->w + r * n;
		float d = m->row_div ? m->row_div[r] : 1.0f;
		quant_awq_apply(n, w, s, d, x);
		quant_rows(m->type, x, q, 1, n, qw);
		kern_dequant(m->type, q, y, n);
		for (int64_t j = 0; j < n; j++) {
			double e = (double)w[j] - (double)y[j] * d / (s ? s[j] : 1.0f);
			err += (double)m->imp[j] * e * e;
		}
	}
	free(x);
	free(y);
	free(qw);
	free(q);
	return err;
}

float quant_awq_search(const quant_awq_mat *m, int nm, int64_t n, const float *imp,
		       float *s, double *err_best, double *err_none)
{
	float *t = slm_xmalloc((size_t)n * sizeof *t);
	float best_alpha = 0;
	double best = INFINITY;
	for (int g = 0; g < QUANT_AWQ_GRID; g++) {
		float alpha = (float)g / (float)(QUANT_AWQ_GRID - 1);
		quant_awq_scales(n, imp, alpha, t);
		double e = 0;
		for (int k = 0; k < nm; k++)
			e += quant_awq_error(&m[k], n, t);
		if (g == 0 && err_none)
			*err_none = e;
		if (e < best) { /* ties keep the smaller alpha */
			best = e;
			best_alpha = alpha;
			memcpy(s, t, (size_t)n * sizeof *s);
		}
	}
	free(t);
	if (err_best)
		*err_best = best;
	return best_alpha;
}

/* ------------------------------------------------------------------------
 * Recipes (llama.cpp's llama_tensor_get_type for the non-IQ file types)
 * ------------------------------------------------------------------------ */

/* llama_ftype values */
enum {
	FT_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7,
	FT_Q5_0 = 8, FT_Q5_1 = 9, FT_Q2_K = 10, FT_Q3_K_S = 11, FT_Q3_K_M = 12,
	FT_Q3_K_L = 13, FT_Q4_K_S = 14, FT_Q4_K_M = 15, FT_Q5_K_S = 16,
	FT_Q5_K_M = 17, FT_Q6_K = 18, FT_BF16 = 32
};

static const quant_recipe recipes[] = {
	{ "q4_k_m", "q4_k", FT_Q4_K_M, 0 }, { "q4_k_s", "q4_k", FT_Q4_K_S, 0 },
	{ "q5_k_m", "q5_k", FT_Q5_K_M, 0 }, { "q5_k_s", "q5_k", FT_Q5_K_S, 0 },
	{ "q3_k_m", "q3_k", FT_Q3_K_M, 0 }, { "q3_k_s", "q3_k", FT_Q3_K_S, 0 },
	{ "q3_k_l", "q3_k", FT_Q3_K_L, 0 }, { "q2_k", "q2_k", FT_Q2_K, 0 },
	{ "q6_k", "q6_k", FT_Q6_K, 0 },     { "q8_0", "q8_0", FT_Q8_0, 0 },
	{ "q4_0", "q4_0", FT_Q4_0, 0 },     { "q4_1", "q4_1", FT_Q4_1, 0 },
	{ "q5_0", "q5_0", FT_Q5_0, 0 },     { "q5_1", "q5_1", FT_Q5_1, 0 },
	{ "f16", "f16", FT_F16, 0 },        { "bf16", "bf16", FT_BF16, 0 },
	{ "f32", "f32", FT_F32, 0 },
	/* plain block types without a llama.cpp file type of their own */
	{ "q3_k", "q3_k", FT_Q3_K_M, 1 },   { "q4_k", "q4_k", FT_Q4_K_M, 1 },
	{ "q5_k", "q5_k", FT_Q5_K_M, 1 },
};
#define NRECIPES (sizeof recipes / sizeof recipes[0])

const quant_recipe *quant_recipe_by_name(const char *name)
{
	for (size_t i = 0; i < NRECIPES; i++)
		if (!strcasecmp(recipes[i].name, name))
			return &recipes[i];
	return NULL;
}

const char *quant_recipe_names(void)
{
	return "q4_k_m q4_k_s q5_k_m q5_k_s q3_k_m q3_k_s q3_k_l q2_k q6_k q8_0 "
	       "q4_0 q4_1 q5_0 q5_1 q3_k q4_k q5_k f16 bf16 f32";
}

const slm_dtype *quant_fallback(const slm_dtype *t, uint64_t ne0)
{
	if (ne0 % t->block_elems == 0)
		return t;
	const char *to = "f16";
	switch (t->ggml_id) {
	case KT_Q2_K: case KT_Q3_K: to = "q4_0"; break;
	case KT_Q4_K: to = "q5_0"; break;
	case KT_Q5_K: to = "q5_1"; break;
	case KT_Q6_K: to = "q8_0"; break;
	}
	const slm_dtype *f = dtype_by_name(to);
	return ne0 % f->block_elems == 0 ? f : dtype_by_name("f16");
}

typedef enum {
	C_TOKEN_EMBD, C_ATTN_Q, C_ATTN_V, C_ATTN_K, C_ATTN_QKV, C_ATTN_KV_B,
	C_ATTN_OUT, C_FFN_UP, C_FFN_GATE, C_FFN_DOWN, C_OUTPUT, C_OTHER
} category;

static category categorize(const char *name)
{
	if (!strcmp(name, "output.weight"))
		return C_OUTPUT;
	if (!strcmp(name, "token_embd.weight") || !strcmp(name, "per_layer_token_embd.weight"))
		return C_TOKEN_EMBD;
	static const struct { const char *s; category c; } by_part[] = {
		{ "attn_qkv.weight", C_ATTN_QKV }, { "attn_kv_b.weight", C_ATTN_KV_B },
		{ "attn_v.weight", C_ATTN_V },     { "attn_k.weight", C_ATTN_K },
		{ "attn_q.weight", C_ATTN_Q },     { "attn_output.weight", C_ATTN_OUT },
		{ "ffn_up", C_FFN_UP },            { "ffn_gate", C_FFN_GATE },
		{ "ffn_down", C_FFN_DOWN },
	};
	for (size_t i = 0; i < sizeof by_part / sizeof by_part[0]; i++)
		if (strstr(name, by_part[i].s))
			return by_part[i].c;
	return C_OTHER;
}

static int is_attn_v(category c)
{
	return c == C_ATTN_V || c == C_ATTN_QKV || c == C_ATTN_KV_B;
}

/* Dimensions as ggml counts them: trailing 1s do not count. */
static int real_dims(int ndim, const uint64_t *ne)
{
	while (ndim > 1 && ne[ndim - 1] == 1)
		ndim--;
	return ndim;
}

/* llama.cpp's tensor_allows_quantization: 2-D and larger weights, except
 * norms, routers, position/type embeddings and a few small tensors. */
static int quantizable(const char *name, int ndim, const uint64_t *ne)
{
	if (real_dims(ndim, ne) < 2)
		return 0;
	size_t n = strlen(name);
	if (n < 6 || strcmp(name + n - 6, "weight"))
		return 0;
	static const char *const never[] = {
		"_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight",
		"altup", "laurel", "per_layer_model_proj", "ssm_conv1d",
		"shortconv.conv.weight", "indexer.k_proj.weight",
		"indexer.q_proj.weight", "time_mix_", "attn_rel_b.weight",
		".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_",
		".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook",
		"mm.a.code_embd",
	};
	for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
		if (strstr(name, never[i]))
			return 0;
	return strcmp(name, "position_embd.weight") && strcmp(name, "token_types.weight");
}

static int layer_of(const char *name)
{
	int l = -1;
	if (sscanf(name, "blk.%d.", &l) != 1)
		l = -1;
	return l;
}

/* llama.cpp visits tensors by layer (non-layer tensors first), then by name. */
static const char *const *sort_names;
static int by_layer_then_name(const void *a, const void *b)
{
	const char *x = sort_names[*(const size_t *)a], *y = sort_names[*(const size_t *)b];
	int lx = layer_of(x), ly = layer_of(y);
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return strcmp(x, y);
}

static int more_bits(int i, int n)
{
	return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

typedef struct plan_state {
	const quant_recipe *r;
	const quant_model *m;
	int n_attn_v, i_attn_v, i_ffn_down, tied, has_imatrix;
} plan_state;

#define T(name) dtype_by_name(name)

static const slm_dtype *recipe_type(plan_state *s, const slm_dtype *t,
				    const char *name, uint64_t ne0, category c)
{
	int ft = s->r->ftype;
	const quant_model *m = s->m;
	int n_expert = m->n_expert > 1 ? m->n_expert : 1;
	int gqa = m->n_head_kv > 0 ? m->n_head / m->n_head_kv : 1;
	int is70b = m->arch && !strcmp(m->arch, "llama") && m->n_layer == 80 &&
		    m->n_head != m->n_head_kv;
	if (c == C_OUTPUT || (s->tied && c == C_TOKEN_EMBD)) {
		if (ne0 % t->block_elems != 0)
			return T("q8_0");
		return t->ggml_id == KT_Q8_0 ? t : T("q6_k");
	}
	if (c == C_TOKEN_EMBD)
		return t;
	if (is_attn_v(c)) {
		int i = s->i_attn_v++;
		if (ft == FT_Q2_K)
			t = gqa >= 4 ? T("q4_k") : T("q3_k");
		else if (ft == FT_Q3_K_M)
			t = i < 2 ? T("q5_k") : T("q4_k");
		else if (ft == FT_Q3_K_L)
			t = T("q5_k");
		else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && more_bits(i, s->n_attn_v))
			t = T("q6_k");
		else if (ft == FT_Q4_K_S && i < 4)
			t = T("q5_k");
		if (is70b && (t->ggml_id == KT_Q3_K || t->ggml_id == KT_Q4_K))
			t = T("q5_k");
		if (n_expert == 8)
			t = T("q8_0");
		return t;
	}
	if (c == C_ATTN_K)
		return n_expert == 8 ? T("q8_0") : t;
	if (c == C_FFN_DOWN) {
		int i = s->i_ffn_down++, n = m->n_layer;
		if (n_expert > 1) {
			i = layer_of(name);
			if (i < 0)
				i = 0;
		}
		if (ft == FT_Q2_K)
			t = T("q3_k");
		else if (ft == FT_Q3_K_M)
			t = i < n / 16 ? T("q5_k") : T("q4_k");
		else if (ft == FT_Q3_K_L)
			t = T("q5_k");
		else if (ft == FT_Q4_K_M)
			t = more_bits(i, n) ? T("q6_k") : t;
		else if (ft == FT_Q5_K_M && more_bits(i, n))
			t = T("q6_k");
		else if (ft == FT_Q4_K_S && i < n / 8)
			t = T("q5_k");
		else if ((ft == FT_Q4_0 || ft == FT_Q5_0) && s->has_imatrix && i < n / 8)
			t = ft == FT_Q4_0 ? T("q4_1") : T("q5_1");
		return t;
	}
	if (c == C_ATTN_OUT) {
		if (n_expert == 8) {
			if (ft == FT_Q2_K || ft == FT_Q3_K_S || ft == FT_Q3_K_M ||
			    ft == FT_Q4_K_S || ft == FT_Q4_K_M)
				t = T("q5_k");
		} else if (ft == FT_Q2_K) {
			t = T("q3_k");
		} else if (ft == FT_Q3_K_M) {
			t = T("q4_k");
		} else if (ft == FT_Q3_K_L) {
			t = T("q5_k");
		}
		return t;
	}
	return t;
}

void quant_plan(const quant_recipe *r, const quant_model *m, size_t n,
		const char *const *names, const int *ndim,
		const uint64_t (*ne)[4], int pure, int has_imatrix,
		const slm_dtype **types, int *fallback)
{
	plan_state s = { .r = r, .m = m, .tied = 1, .has_imatrix = has_imatrix };
	for (size_t i = 0; i < n; i++) {
		category c = categorize(names[i]);
		s.n_attn_v += is_attn_v(c);
		if (c == C_OUTPUT)
			s.tied = 0;
	}
	size_t *order = slm_xmalloc((n ? n : 1) * sizeof *order);
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	sort_names = names;
	qsort(order, n, sizeof *order, by_layer_then_name);
	sort_names = NULL;
	const slm_dtype *base = dtype_by_name(r->base);
	int quantized = base->block_elems > 1;
	for (size_t k = 0; k < n; k++) {
		size_t i = order[k];
		if (fallback)
			fallback[i] = 0;
		if (!quantizable(names[i], ndim[i], ne[i])) {
			types[i] = NULL;
			continue;
		}
		const slm_dtype *t = base;
		if (quantized) {
			if (!pure && !r->pure)
				t = recipe_type(&s, t, names[i], ne[i][0], categorize(names[i]));
			const slm_dtype *f = quant_fallback(t, ne[i][0]);
			if (f != t && fallback)
				fallback[i] = 1;
			t = f;
		}
		types[i] = t;
	}
	free(order);
}

#undef T
