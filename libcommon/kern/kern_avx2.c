/*
 * kern_avx2.c - AVX2 + FMA + F16C kernels (x86-64 from Haswell/Zen 1 on).
 * Compiled for that instruction set by a target pragma, whatever the
 * build's -m flags; kern.c uses the table only when the CPU has it.
 * Integer dot products: vpmaddubsw (u8 x s8 -> s16 pairs) then vpmaddwd.
 */
#include "kern_blocks.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <math.h>

/* only explicit FMA intrinsics fuse: dequantization stays bit-exact */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#pragma GCC optimize("fp-contract=off")
#endif

#define AI static inline __attribute__((always_inline))

AI float hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

AI float h2f(const uint8_t *p)
{
	return _cvtsh_ss(kb_ld16(p));
}

AI __m256i ld256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
AI __m128i ld128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

/* 32 nibbles of 16 bytes in element order: low nibbles, then high ones */
AI __m256i nibbles32(const uint8_t *q)
{
	__m128i v = ld128(q);
	__m256i t = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
	return _mm256_and_si256(t, _mm256_set1_epi8(0x0f));
}

/* 0x10 in byte j where bit j of qh is set */
AI __m256i hbits32(uint32_t qh)
{
	const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
					       0x0101010101010101, 0x0000000000000000);
	const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
	__m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
	v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
	return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* ---------------------------------------------------------------------
 * Dequantization (same operations as the reference: bit-exact)
 * --------------------------------------------------------------------- */

static void dq_f16(const void *src, float *dst, int64_t n)
{
	const uint8_t *p = src;
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(dst + i, _mm256_cvtph_ps(ld128(p + 2 * i)));
	for (; i < n; i++)
		dst[i] = h2f(p + 2 * i);
}

static void dq_bf16(const void *src, float *dst, int64_t n)
{
	const uint8_t *p = src;
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256i v = _mm256_cvtepu16_epi32(ld128(p + 2 * i));
		_mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
	}
	for (; i < n; i++)
		dst[i] = kb_bf2f(kb_ld16(p + 2 * i));
}

/* store d * (u - off) (+ m) for 32 bytes u */
AI void store32(float *y, __m256i u, int off, float d, int has_m, float m)
{
	__m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
	__m256i o = _mm256_set1_epi32(off);
	for (int k = 0; k < 4; k++) {
		__m128i b8 = k < 2 ? _mm256_castsi256_si128(u) : _mm256_extracti128_si256(u, 1);
		if (k & 1)
			b8 = _mm_srli_si128(b8, 8);
		__m256i v = _mm256_sub_epi32(_mm256_cvtepu8_epi32(b8), o);
		__m256 f = _mm256_mul_ps(vd, _mm256_cvtepi32_ps(v));
		if (has_m)
			f = _mm256_add_ps(f, vm);
		_mm256_storeu_ps(y + 8 * k, f);
	}
}

static void dq_q4_0(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 18, y += QK)
		store32(y, nibbles32(b + 2), 8, h2f(b), 0, 0.0f);
}

static void dq_q4_1(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 20, y += QK)
		store32(y, nibbles32(b + 4), 0, h2f(b), 1, h2f(b + 2));
}

static void dq_q5_0(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 22, y += QK)
		store32(y, _mm256_or_si256(nibbles32(b + 6), hbits32(kb_ld32(b + 2))),
			16, h2f(b), 0, 0.0f);
}

static void dq_q5_1(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 24, y += QK)
		store32(y, _mm256_or_si256(nibbles32(b + 8), hbits32(kb_ld32(b + 4))),
			0, h2f(b), 1, h2f(b + 2));
}

static void dq_q8_0(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 34, y += QK) {
		__m256 vd = _mm256_set1_ps(h2f(b));
		for (int k = 0; k < 4; k++) {
			__m128i v = _mm_loadl_epi64((const __m128i *)(b + 2 + 8 * k));
			_mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(vd,
				_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))));
		}
	}
}

/* ---------------------------------------------------------------------
 * 32-element types: tiles of R rows x C activations
 * --------------------------------------------------------------------- */

AI int bbytes32(int T)
{
	return T == KT_Q4_0 ? 18 : T == KT_Q4_1 ? 20 : T == KT_Q5_0 ? 22 :
	       T == KT_Q5_1 ? 24 : 34;
}

/* weight bytes of a block: unsigned (q - offset applies) except q8_0 */
AI __m256i dec32(int T, const uint8_t *b)
{
	switch (T) {
	case KT_Q4_0: return nibbles32(b + 2);
	case KT_Q4_1: return nibbles32(b + 4);
	case KT_Q5_0: return _mm256_or_si256(nibbles32(b + 6), hbits32(kb_ld32(b + 2)));
	case KT_Q5_1: return _mm256_or_si256(nibbles32(b + 8), hbits32(kb_ld32(b + 4)));
	default: return ld256(b + 2);
	}
}

/* [f16 at p] x 8 as floats */
AI __m256 bcast_f16(const uint8_t *p)
{
	return _mm256_cvtph_ps(_mm_set1_epi16((short)kb_ld16(p)));
}

AI void mm32_step(const int T, const int R, const int C, int64_t nb, int64_t i,
		  const uint8_t *W, size_t rb, const uint8_t *A, size_t as,
		  __m256 acc[4][4], __m256 accm[4][4])
{
	const int bb = bbytes32(T);
	const int off = T == KT_Q4_0 || T == KT_Q5_0;
	const int hasm = T == KT_Q4_1 || T == KT_Q5_1;
	const size_t qo = a32_qs_off(nb), dlo = a32_dl_off(nb), axo = a32_aux_off(nb);
	const __m256i ones = _mm256_set1_epi16(1);
	__m256i a[4];
	const uint8_t *ac[4];
#pragma GCC unroll 4
	for (int c = 0; c < C; c++) {
		ac[c] = A + c * as;
		a[c] = ld256(ac[c] + qo + 32 * i);
	}
#pragma GCC unroll 4
	for (int r = 0; r < R; r++) {
		const uint8_t *b = W + r * rb + i * bb;
		__m256i u = dec32(T, b);
		__m256 dw = bcast_f16(b);
		__m256 m = hasm ? bcast_f16(b + 2) : dw;
		__m256i au = T == KT_Q8_0 ? _mm256_sign_epi8(u, u) : u;
#pragma GCC unroll 4
		for (int c = 0; c < C; c++) {
			__m256i p = _mm256_maddubs_epi16(au, T == KT_Q8_0 ? _mm256_sign_epi8(a[c], u) : a[c]);
			p = _mm256_madd_epi16(p, ones);
			if (off)
				p = _mm256_add_epi32(p, ld256(ac[c] + axo + 32 * i));
			__m256 dl = _mm256_loadu_ps((const float *)(ac[c] + dlo + 32 * i));
			acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw, dl), acc[r][c]);
			if (hasm)
				accm[r][c] = _mm256_fmadd_ps(m, _mm256_loadu_ps((const float *)(ac[c] + axo + 32 * i)),
							     accm[r][c]);
		}
	}
}

/* The order of the float sums is the same for every tile shape, so that a
 * matmul gives each activation bit for bit what its matvec gives, and a row
 * the same bits whatever rows it is computed with (a thread's share): block
 * i goes to chain i % 2 (acc, accm or acc2, accm2: two chains hide the
 * latency of the FMA when one row meets one activation), each chain in
 * increasing i, and the dot is hsum8((acc + accm) + (acc2 + accm2)). */
AI void mm32_tile(const int T, const int R, const int C, int64_t nb,
		  const uint8_t *W, size_t rb, const uint8_t *A, size_t as,
		  float *y, int64_t ldy)
{
	__m256 acc[4][4], accm[4][4], acc2[4][4], accm2[4][4];
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < C; c++)
			acc[r][c] = accm[r][c] = acc2[r][c] = accm2[r][c] = _mm256_setzero_ps();
	int64_t i = 0;
	for (; i + 2 <= nb; i += 2) {
		mm32_step(T, R, C, nb, i, W, rb, A, as, acc, accm);
		mm32_step(T, R, C, nb, i + 1, W, rb, A, as, acc2, accm2);
	}
	if (i < nb)
		mm32_step(T, R, C, nb, i, W, rb, A, as, acc, accm);
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < C; c++) {
			__m256 t = _mm256_add_ps(acc[r][c], accm[r][c]);
			t = _mm256_add_ps(t, _mm256_add_ps(acc2[r][c], accm2[r][c]));
			y[c * ldy + r] = hsum8(t);
		}
}

/* Rows per tile of c activations of ab bytes each: 1 while they stay in
 * L1 (the 2 x 4 chains of 1 row x 4 activations fit in the registers), 2
 * beyond (reading the activations once for 2 rows then saves more than
 * the 2 x 8 chains, some of them in memory, cost). Either is within about
 * 3% of the former single-chain 2 x 4 tiles (Zen 4, n = 576 to 5632). */
#define MM_RT(c, ab) ((c) * (ab) > 28672 ? 2 : 1)

/* One activation: row by row (one sequential stream through the weights,
 * which the hardware prefetchers follow; interleaving rows is slower on
 * matrices larger than the caches). Several: tiles of 1 or 2 rows x 4
 * activations, then x the 2 or 3 activations left. Every tile shape sums
 * in the same order (see mm32_tile): the result of a (row, activation)
 * does not depend on the tile that computes it. Each tile shape is a
 * function of its own (the register allocation of one does not suffer
 * from the others). RT(c): rows per tile of c activations (MM_RT2: 2). */
#define MM_TILE(NAME, TILE, T, R, C) \
	static __attribute__((noinline, unused)) void NAME##_##R##x##C( \
		int64_t n, const uint8_t *w, size_t rb, int64_t nr, \
		const uint8_t *a, size_t as, float *y, int64_t ldy) \
	{ \
		for (int64_t r = 0; r + R <= nr; r += R) \
			TILE(T, R, C, n, w + r * rb, rb, a, as, y + r, ldy); \
	}
/* rows [0, nr) with tiles of RT rows (and 1 for an odd last one) */
#define MM_ROWS(NAME, RT, C, n, w, rb, nr, a, as, y, ldy) \
	do { \
		int64_t r_ = (RT) == 2 ? (nr) & ~(int64_t)1 : 0; \
		if (r_) \
			NAME##_2x##C(n, w, rb, r_, a, as, y, ldy); \
		if (r_ < (nr)) \
			NAME##_1x##C(n, (w) + r_ * (rb), rb, (nr) - r_, a, as, \
				     (y) + r_, ldy); \
	} while (0)
#define MM_DRIVER_R(NAME, TILE, T, RT) \
	MM_TILE(NAME, TILE, T, 1, 1) \
	MM_TILE(NAME, TILE, T, 1, 2) MM_TILE(NAME, TILE, T, 2, 2) \
	MM_TILE(NAME, TILE, T, 1, 3) MM_TILE(NAME, TILE, T, 2, 3) \
	MM_TILE(NAME, TILE, T, 1, 4) MM_TILE(NAME, TILE, T, 2, 4) \
	static void NAME(int64_t n, const void *W, size_t rb, int64_t nr, \
			 const void *acts, size_t as, int B, float *y, \
			 int64_t ldy) \
	{ \
		const uint8_t *w = W, *a = acts; \
		int b = 0; \
		for (; b + 4 <= B; b += 4) \
			MM_ROWS(NAME, RT(4), 4, n, w, rb, nr, a + b * as, as, \
				y + b * ldy, ldy); \
		if (B - b == 3) \
			MM_ROWS(NAME, RT(3), 3, n, w, rb, nr, a + b * as, as, \
				y + b * ldy, ldy); \
		else if (B - b == 2) \
			MM_ROWS(NAME, RT(2), 2, n, w, rb, nr, a + b * as, as, \
				y + b * ldy, ldy); \
		else if (B - b == 1) \
			NAME##_1x1(n, w, rb, nr, a + b * as, as, y + b * ldy, ldy); \
	}
#define MM_RT2(c) 2
#define MM_RT32(c) MM_RT(c, a32_bytes(n))
#define MM_DRIVER(NAME, TILE, T) MM_DRIVER_R(NAME, TILE, T, MM_RT2)

#define TILE32(T, R, C, n, w, rb, a, as, y, ldy) \
	mm32_tile(T, R, C, (n) / QK, w, rb, a, as, y, ldy)
MM_DRIVER_R(mm_q4_0, TILE32, KT_Q4_0, MM_RT32)
MM_DRIVER_R(mm_q4_1, TILE32, KT_Q4_1, MM_RT32)
MM_DRIVER_R(mm_q5_0, TILE32, KT_Q5_0, MM_RT32)
MM_DRIVER_R(mm_q5_1, TILE32, KT_Q5_1, MM_RT32)
MM_DRIVER_R(mm_q8_0, TILE32, KT_Q8_0, MM_RT32)

/* ---------------------------------------------------------------------
 * k-quants (q4_K, q5_K, q6_K) with q8_K activations
 * --------------------------------------------------------------------- */

/* int16 x16: v in the low 8 lanes, w in the high 8 */
AI __m256i sc16x2(int v, int w)
{
	return _mm256_set_m128i(_mm_set1_epi16((short)w), _mm_set1_epi16((short)v));
}

AI void mmk45_tile(const int T, const int R, const int C, int64_t nb,
		   const uint8_t *W, size_t rb, const uint8_t *A, size_t as,
		   float *y, int64_t ldy)
{
	const int hb = T == KT_Q5_K;
	const int bb = hb ? 176 : 144, qo = hb ? 48 : 16;
	const size_t aqo = ak_qs_off(nb), abo = ak_bs_off(nb);
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	__m256 acc[4][4];
	float accm[4][4];
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < C; c++) {
			acc[r][c] = _mm256_setzero_ps();
			accm[r][c] = 0.0f;
		}
	for (int64_t i = 0; i < nb; i++) {
		float da[4];
		int32_t bs32[4][8];
#pragma GCC unroll 4
		for (int c = 0; c < C; c++) {
			const uint8_t *ac = A + c * as;
			da[c] = kb_bits_f32(kb_ld32(ac + 4 * i));
			for (int j = 0; j < 8; j++)
				bs32[c][j] = (int16_t)kb_ld16(ac + abo + 2 * (16 * i + 2 * j)) +
					     (int16_t)kb_ld16(ac + abo + 2 * (16 * i + 2 * j + 1));
		}
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			const uint8_t *b = W + r * rb + i * bb;
			uint8_t sm[16];
			kb_scales_k4(b + 4, sm);
			__m256i hbits = hb ? ld256(b + 16) : _mm256_setzero_si256();
			__m256i isum[4];
#pragma GCC unroll 4
			for (int c = 0; c < C; c++)
				isum[c] = _mm256_setzero_si256();
			for (int j = 0; j < 4; j++) {
				__m256i q = ld256(b + qo + 32 * j);
				__m256i lo = _mm256_and_si256(q, m4);
				__m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
				if (hb) {
					__m256i one = _mm256_set1_epi8(1);
					__m256i h0 = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j), one);
					__m256i h1 = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j + 1), one);
					lo = _mm256_or_si256(lo, _mm256_slli_epi16(h0, 4));
					hi = _mm256_or_si256(hi, _mm256_slli_epi16(h1, 4));
				}
				__m256i s0 = _mm256_set1_epi16(sm[2 * j]);
				__m256i s1 = _mm256_set1_epi16(sm[2 * j + 1]);
#pragma GCC unroll 4
				for (int c = 0; c < C; c++) {
					const uint8_t *aq = A + c * as + aqo + QKK * i + 64 * j;
					__m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, ld256(aq)), s0);
					__m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, ld256(aq + 32)), s1);
					isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(p0, p1));
				}
			}
			float d = h2f(b), dmin = h2f(b + 2);
#pragma GCC unroll 4
			for (int c = 0; c < C; c++) {
				int32_t ms = 0;
				for (int j = 0; j < 8; j++)
					ms += sm[8 + j] * bs32[c][j];
				acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]),
							    _mm256_set1_ps(da[c] * d), acc[r][c]);
				accm[r][c] += da[c] * dmin * (float)ms;
			}
		}
	}
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < C; c++)
			y[c * ldy + r] = hsum8(acc[r][c]) - accm[r][c];
}

AI void mmq6k_tile(const int T, const int R, const int C, int64_t nb,
		   const uint8_t *W, size_t rb, const uint8_t *A, size_t as,
		   float *y, int64_t ldy)
{
	(void)T;
	const size_t aqo = ak_qs_off(nb), abo = ak_bs_off(nb);
	const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
	__m256 acc[4][4];
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < C; c++)
			acc[r][c] = _mm256_setzero_ps();
	for (int64_t i = 0; i < nb; i++) {
		float da[4];
		__m256i bsum[4];
#pragma GCC unroll 4
		for (int c = 0; c < C; c++) {
			const uint8_t *ac = A + c * as;
			da[c] = kb_bits_f32(kb_ld32(ac + 4 * i));
			bsum[c] = ld256(ac + abo + 32 * i);
		}
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			const uint8_t *b = W + r * rb + i * 210;
			__m128i sc8 = ld128(b + 192);
			__m256i sc16 = _mm256_cvtepi8_epi16(sc8);
			__m256i isum[4];
#pragma GCC unroll 4
			for (int c = 0; c < C; c++) /* the -32 offset: -32 sum sc bsum */
				isum[c] = _mm256_slli_epi32(_mm256_madd_epi16(bsum[c], sc16), 5);
			for (int h = 0; h < 2; h++) {
				__m256i ql0 = ld256(b + 64 * h), ql1 = ld256(b + 64 * h + 32);
				__m256i qh = ld256(b + 128 + 32 * h);
				__m256i q[4];
				q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
						       _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
				q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
						       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
				q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
						       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
				q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
						       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
				for (int k = 0; k < 4; k++) {
					int g = 8 * h + 2 * k;
					__m256i s = sc16x2((int8_t)b[192 + g], (int8_t)b[192 + g + 1]);
#pragma GCC unroll 4
					for (int c = 0; c < C; c++) {
						const uint8_t *aq = A + c * as + aqo + QKK * i + 128 * h + 32 * k;
						__m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], ld256(aq)), s);
						isum[c] = _mm256_sub_epi32(isum[c], p);
					}
				}
			}
			float d = h2f(b + 208);
#pragma GCC unroll 4
			for (int c = 0; c < C; c++) /* isum holds -(sum): negate via the scale */
				acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]),
							    _mm256_set1_ps(-da[c] * d), acc[r][c]);
		}
	}
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < C; c++)
			y[c * ldy + r] = hsum8(acc[r][c]);
}

#define TILEK45(T, R, C, n, w, rb, a, as, y, ldy) \
	mmk45_tile(T, R, C, (n) / QKK, w, rb, a, as, y, ldy)
#define TILEQ6K(T, R, C, n, w, rb, a, as, y, ldy) \
	mmq6k_tile(T, R, C, (n) / QKK, w, rb, a, as, y, ldy)
MM_DRIVER(mm_q4_k, TILEK45, KT_Q4_K)
MM_DRIVER(mm_q5_k, TILEK45, KT_Q5_K)
MM_DRIVER(mm_q6_k, TILEQ6K, KT_Q6_K)

/* ---------------------------------------------------------------------
 * Float weights: f32 and f16 with f32 activations, bf16 with bf16
 * --------------------------------------------------------------------- */

AI __m256 ldw8(int T, const uint8_t *p)
{
	if (T == KT_F32)
		return _mm256_loadu_ps((const float *)p);
	if (T == KT_F16)
		return _mm256_cvtph_ps(ld128(p));
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(ld128(p)), 16));
}

AI float ldw1(int T, const uint8_t *p)
{
	if (T == KT_F32)
		return kb_bits_f32(kb_ld32(p));
	if (T == KT_F16)
		return h2f(p);
	return kb_bf2f(kb_ld16(p));
}

AI void mmf_tile(const int T, const int R, const int C, int64_t n,
		 const uint8_t *W, size_t rb, const uint8_t *A, size_t as,
		 float *y, int64_t ldy)
{
	const int es = T == KT_F32 ? 4 : 2;	 /* weight element size */
	const int ae = T == KT_BF16 ? KT_BF16 : KT_F32; /* activation type */
	const int aes = T == KT_BF16 ? 2 : 4;
	__m256 acc[4][4][2];
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < C; c++)
			acc[r][c][0] = acc[r][c][1] = _mm256_setzero_ps();
	int64_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m256 a0[4], a1[4];
#pragma GCC unroll 4
		for (int c = 0; c < C; c++) {
			a0[c] = ldw8(ae, A + c * as + aes * i);
			a1[c] = ldw8(ae, A + c * as + aes * (i + 8));
		}
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			__m256 w0 = ldw8(T, W + r * rb + es * i);
			__m256 w1 = ldw8(T, W + r * rb + es * (i + 8));
#pragma GCC unroll 4
			for (int c = 0; c < C; c++) {
				acc[r][c][0] = _mm256_fmadd_ps(w0, a0[c], acc[r][c][0]);
				acc[r][c][1] = _mm256_fmadd_ps(w1, a1[c], acc[r][c][1]);
			}
		}
	}
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < C; c++) {
			float s = hsum8(_mm256_add_ps(acc[r][c][0], acc[r][c][1]));
			for (int64_t k = i; k < n; k++)
				s += ldw1(T, W + r * rb + es * k) *
				     ldw1(ae, A + c * as + aes * k);
			y[c * ldy + r] = s;
		}
}

MM_DRIVER(mm_f32, mmf_tile, KT_F32)
MM_DRIVER(mm_f16, mmf_tile, KT_F16)
MM_DRIVER(mm_bf16, mmf_tile, KT_BF16)

/* ---------------------------------------------------------------------
 * Float helpers
 * --------------------------------------------------------------------- */

/* exp(x), relative error about 2 ulp; below -87.3 it gives about 1e-38, not
 * 0, except -INFINITY which gives 0. */
AI __m256 exp8(__m256 x)
{
	__m256 ninf = _mm256_cmp_ps(x, _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ);
	x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33f)), _mm256_set1_ps(88.72f));
	__m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
				   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
	r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
	__m256 p = _mm256_set1_ps(1.9875691500e-4f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
	p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
	/* 2^k in two halves so that k = 128 does not overflow the exponent */
	__m256i ki = _mm256_cvtps_epi32(k);
	__m256i k1 = _mm256_srai_epi32(ki, 1), k2 = _mm256_sub_epi32(ki, k1);
	__m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, _mm256_set1_epi32(127)), 23));
	__m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, _mm256_set1_epi32(127)), 23));
	return _mm256_andnot_ps(ninf, _mm256_mul_ps(_mm256_mul_ps(p, s1), s2));
}

AI __m256i tailmask8(int64_t left)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left < 8 ? left : 8)),
				  _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0));
}

static void rmsnorm_avx2(float *y, const float *x, const float *w, int64_t n,
			 float eps)
{
	/* squares in float, summed in double (as the reference) */
	__m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 a = _mm256_loadu_ps(x + i);
		__m256 q = _mm256_mul_ps(a, a);
		s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(q)));
		s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(q, 1)));
	}
	double t[4];
	_mm256_storeu_pd(t, _mm256_add_pd(s0, s1));
	double ss = (t[0] + t[2]) + (t[1] + t[3]);
	for (; i < n; i++)
		ss += (double)(x[i] * x[i]);
	float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
	__m256 vs = _mm256_set1_ps(scale);
	for (i = 0; i + 8 <= n; i += 8) {
		__m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
		if (w)
			v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
		_mm256_storeu_ps(y + i, v);
	}
	for (; i < n; i++)
		y[i] = w ? x[i] * scale * w[i] : x[i] * scale;
}

static void softmax_avx2(float *x, int64_t n)
{
	__m256 vm = _mm256_set1_ps(-INFINITY);
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
	__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
	m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
	m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
	float mx = _mm_cvtss_f32(m4);
	for (; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	__m256 vmx = _mm256_set1_ps(mx), vs = _mm256_setzero_ps();
	for (i = 0; i < n; i += 8) {
		__m256i mk = tailmask8(n - i);
		__m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, mk), vmx));
		e = _mm256_and_ps(e, _mm256_castsi256_ps(mk));
		vs = _mm256_add_ps(vs, e);
		_mm256_maskstore_ps(x + i, mk, e);
	}
	__m256 is = _mm256_set1_ps(1.0f / hsum8(vs));
	for (i = 0; i < n; i += 8) {
		__m256i mk = tailmask8(n - i);
		_mm256_maskstore_ps(x + i, mk, _mm256_mul_ps(_mm256_maskload_ps(x + i, mk), is));
	}
}

static void swiglu_avx2(float *y, const float *g, const float *u, int64_t n)
{
	const __m256 one = _mm256_set1_ps(1.0f);
	for (int64_t i = 0; i < n; i += 8) {
		__m256i mk = tailmask8(n - i);
		__m256 vg = _mm256_maskload_ps(g + i, mk), vu = _mm256_maskload_ps(u + i, mk);
		__m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), vg));
		__m256 v = _mm256_mul_ps(_mm256_div_ps(vg, _mm256_add_ps(one, e)), vu);
		_mm256_maskstore_ps(y + i, mk, v);
	}
}

static void geglu_avx2(float *y, const float *g, const float *u, int64_t n)
{
	const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
	for (int64_t i = 0; i < n; i += 8) {
		__m256i mk = tailmask8(n - i);
		__m256 v = _mm256_maskload_ps(g + i, mk), vu = _mm256_maskload_ps(u + i, mk);
		__m256 t = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), v), v, one);
		t = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f), v), t);
		/* tanh t = 1 - 2 / (exp(2t) + 1) */
		__m256 th = _mm256_sub_ps(one, _mm256_div_ps(two,
			_mm256_add_ps(exp8(_mm256_mul_ps(two, t)), one)));
		__m256 r = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v),
						       _mm256_add_ps(one, th)), vu);
		_mm256_maskstore_ps(y + i, mk, r);
	}
}

static void rope_avx2(float *x, int nh, int hd, int nrot, const float *cs,
		      int neox)
{
	int half = nrot / 2;
	const float *c = cs, *s = cs + half;
	for (int h = 0; h < nh; h++) {
		float *v = x + (int64_t)h * hd;
		int i = 0;
		if (neox) {
			for (; i + 8 <= half; i += 8) {
				__m256 x0 = _mm256_loadu_ps(v + i), x1 = _mm256_loadu_ps(v + i + half);
				__m256 vc = _mm256_loadu_ps(c + i), vs = _mm256_loadu_ps(s + i);
				_mm256_storeu_ps(v + i, _mm256_fmsub_ps(x0, vc, _mm256_mul_ps(x1, vs)));
				_mm256_storeu_ps(v + i + half, _mm256_fmadd_ps(x0, vs, _mm256_mul_ps(x1, vc)));
			}
		} else {
			for (; i + 4 <= half; i += 4) {
				/* pairs (x[2i], x[2i+1]): duplicate cos/sin per pair */
				__m256 xv = _mm256_loadu_ps(v + 2 * i);
				__m128 c4 = _mm_loadu_ps(c + i), s4 = _mm_loadu_ps(s + i);
				__m256 vc = _mm256_set_m128(_mm_unpackhi_ps(c4, c4), _mm_unpacklo_ps(c4, c4));
				__m256 vs = _mm256_set_m128(_mm_unpackhi_ps(s4, s4), _mm_unpacklo_ps(s4, s4));
				__m256 sw = _mm256_permute_ps(xv, 0xb1);
				_mm256_storeu_ps(v + 2 * i, _mm256_fmaddsub_ps(xv, vc, _mm256_mul_ps(sw, vs)));
			}
		}
		for (; i < half; i++) {
			int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
			float x0 = v[i0], x1 = v[i1];
			v[i0] = x0 * c[i] - x1 * s[i];
			v[i1] = x0 * s[i] + x1 * c[i];
		}
	}
}

/* ---------------------------------------------------------------------
 * Activation quantizers: the same bytes as the reference (same float
 * operations; cvtps2dq rounds to nearest even as the reference's rne).
 * --------------------------------------------------------------------- */

/* the largest magnitude of 32 k floats; a NaN never wins, as in the
 * reference (maxps gives its second operand when either is a NaN) */
AI float amax8(const float *x, int k)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 mx = _mm256_setzero_ps();
	for (int j = 0; j < 32 * k; j += 8)
		mx = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), mx);
	__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
	m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
	m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
	return _mm_cvtss_f32(m4);
}

/* qs[0..32k) = rne(x * scale) for one group of 32 k floats; the sum of
 * the quants in *sum. */
AI void quant_group8(const float *x, int8_t *qs, int k, float scale, int32_t *sum)
{
	__m256 id = _mm256_set1_ps(scale);
	const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
	__m256i s = _mm256_setzero_si256();
	for (int j = 0; j < 32 * k; j += 32) {
		__m256i q[4];
		for (int t = 0; t < 4; t++) {
			q[t] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * t), id));
			q[t] = _mm256_min_epi32(_mm256_max_epi32(q[t], lo), hi);
			s = _mm256_add_epi32(s, q[t]);
		}
		/* pack 4 x 8 int32 to 32 int8 in order */
		__m256i p16 = _mm256_packs_epi32(q[0], q[1]); /* 0-3 4-7 | 8-11 12-15 interleaved by lane */
		__m256i p16b = _mm256_packs_epi32(q[2], q[3]);
		__m256i p8 = _mm256_packs_epi16(p16, p16b);
		p8 = _mm256_permutevar8x32_epi32(p8, _mm256_set_epi32(7, 3, 6, 2, 5, 1, 4, 0));
		_mm256_storeu_si256((__m256i *)(qs + j), p8);
	}
	__m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
	s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
	s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
	*sum = _mm_cvtsi128_si32(s4);
}

/* kind as the reference's qa_a32: 8, 16, 128 offsets, -1 with mins */
AI void qa_a32(const float *x, void *act, int64_t n, int kind)
{
	int64_t nb = n / QK;
	uint8_t *a = act;
	int8_t *qs = (int8_t *)(a + a32_qs_off(nb));
	float *dl = (float *)(a + a32_dl_off(nb)), *ax = (float *)(a + a32_aux_off(nb));
	memset(a + 8 * nb, 0, a32_qs_off(nb) - (size_t)(8 * nb));
	memset(qs + n, 0, a32_dl_off(nb) - a32_qs_off(nb) - (size_t)n);
	memset(a + a32_aux_off(nb) + 32 * nb, 0, a32_bytes(n) - a32_aux_off(nb) - (size_t)(32 * nb));
	for (int64_t i = 0; i < nb; i++) {
		int32_t s;
		float amax = amax8(x + QK * i, 1), d = amax / 127.0f;
		quant_group8(x + QK * i, qs + QK * i, 1,
			     amax != 0.0f ? 127.0f / amax : 0.0f, &s);
		float dh = kb_h2f(kb_f2h(d)), sh = kb_h2f(kb_f2h(d * (float)s));
		memcpy(a + 4 * i, &dh, 4);
		if (kind < 0)
			memcpy(a + 4 * nb + 4 * i, &sh, 4);
		else
			memcpy(a + 4 * nb + 4 * i, &s, 4);
		_mm256_storeu_ps(dl + 8 * i, _mm256_set1_ps(dh));
		__m256 aux = kind < 0 ? _mm256_set1_ps(sh * 0.125f) :
					_mm256_castsi256_ps(_mm256_set1_epi32(-s * kind / 8));
		_mm256_storeu_ps(ax + 8 * i, aux);
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
	memset(a + 36 * nb, 0, ak_qs_off(nb) - (size_t)(36 * nb));
	for (int64_t i = 0; i < nb; i++) {
		int32_t s;
		float amax = amax8(x + QKK * i, 8);
		float iscale = amax != 0.0f ? 127.0f / amax : 0.0f;
		quant_group8(x + QKK * i, qs + QKK * i, 8, iscale, &s);
		float d = amax != 0.0f ? 1.0f / iscale : 0.0f;
		memcpy(a + 4 * i, &d, 4);
		for (int g = 0; g < 16; g += 2) { /* sums of 16 bytes, made unsigned */
			__m128i v0 = _mm_xor_si128(ld128(qs + QKK * i + 16 * g), _mm_set1_epi8((char)0x80));
			__m128i v1 = _mm_xor_si128(ld128(qs + QKK * i + 16 * g + 16), _mm_set1_epi8((char)0x80));
			__m128i s0 = _mm_sad_epu8(v0, _mm_setzero_si128());
			__m128i s1 = _mm_sad_epu8(v1, _mm_setzero_si128());
			int16_t b0 = (int16_t)(_mm_cvtsi128_si32(s0) + _mm_extract_epi32(s0, 2) - 16 * 128);
			int16_t b1 = (int16_t)(_mm_cvtsi128_si32(s1) + _mm_extract_epi32(s1, 2) - 16 * 128);
			memcpy(a + ak_bs_off(nb) + 2 * (16 * i + g), &b0, 2);
			memcpy(a + ak_bs_off(nb) + 2 * (16 * i + g + 1), &b1, 2);
		}
	}
}

static void qa_bf16(const float *x, void *act, int64_t n)
{
	uint16_t *a = act;
	int64_t i = 0;
	const __m256i abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
	for (; i + 8 <= n; i += 8) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(x + i));
		__m256i r = _mm256_add_epi32(v, _mm256_add_epi32(_mm256_set1_epi32(0x7fff),
			_mm256_and_si256(_mm256_srli_epi32(v, 16), _mm256_set1_epi32(1))));
		__m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(v, abs), inf);
		r = _mm256_blendv_epi8(r, _mm256_or_si256(v, _mm256_set1_epi32(0x400000)), nan);
		r = _mm256_srli_epi32(r, 16);
		__m128i p = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
		_mm_storeu_si128((__m128i *)(a + i), p);
	}
	for (; i < n; i++)
		a[i] = kb_f2bf(x[i]);
	memset(a + n, 0, kb_align64((size_t)n * 2) - (size_t)n * 2);
}

static void f32_to_f16_avx2(uint16_t *dst, const float *src, int64_t n)
{
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((__m128i *)(dst + i),
				 _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
	for (; i < n; i++)
		dst[i] = kb_f2h(src[i]);
}

/* ---------------------------------------------------------------------
 * kern_attn (see kern_avx512.c): scores 8 positions at a time, the 8 rows'
 * lane vectors reduced by a fixed hadd tree; the block's K rows converted
 * once (to scratch) when several queries share it; the weighted V sums in
 * tiles of up to 6 queries x 16 or 32 dimensions, fma chains over each
 * query's own rows in order (the reference's arithmetic).
 * --------------------------------------------------------------------- */

/* 8 halves of a row from dimension d (hd: the row's length), as f32 */
AI __m256 ldh8(const uint16_t *row, int64_t d, int64_t hd)
{
	if (d + 8 <= hd)
		return _mm256_cvtph_ps(ld128(row + d));
	uint16_t t[8] = { 0 };
	memcpy(t, row + d, (size_t)(hd - d) * 2);
	return _mm256_cvtph_ps(ld128(t));
}

/* lane r = dot(q, row r) for 8 rows: f16 rows kh[r] (KF = 0) or f32
 * chunk-major kf[(8 c + r) * 8] (KF = 1); lane-wise chains in chunk order,
 * then the tree */
AI __m256 score8(const int KF, const uint16_t *const *kh, const float *kf,
		 const float *q, int64_t hd)
{
	__m256 acc[8];
	int64_t C = (hd + 7) / 8;
#pragma GCC unroll 8
	for (int r = 0; r < 8; r++)
		acc[r] = _mm256_setzero_ps();
	for (int64_t c = 0; c < C; c++) {
		__m256 qv = _mm256_loadu_ps(q + 8 * c);
#pragma GCC unroll 8
		for (int r = 0; r < 8; r++) {
			__m256 k = KF ? _mm256_loadu_ps(kf + (8 * c + r) * 8) : ldh8(kh[r], 8 * c, hd);
			acc[r] = _mm256_fmadd_ps(k, qv, acc[r]);
		}
	}
	__m256 s0 = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
	__m256 s1 = _mm256_hadd_ps(_mm256_hadd_ps(acc[4], acc[5]), _mm256_hadd_ps(acc[6], acc[7]));
	return _mm256_add_ps(_mm256_permute2f128_ps(s0, s1, 0x20),
			     _mm256_permute2f128_ps(s0, s1, 0x31));
}

/* out[d0, d0 + 8 DB) of QB queries (8 DB <= hd - d0): as vtile in
 * kern_avx512.c, an inactive query skipped at a row */
AI void vtile8(const int QB, const int DB, const uint16_t *V, int64_t vstr,
	       const float *const *w, int64_t T0, const int64_t *p0,
	       const int64_t *p1, int64_t lo, int64_t a, int64_t b, int64_t hi,
	       int64_t d0, float *const *out)
{
	__m256 o[6][4];
#pragma GCC unroll 6
	for (int j = 0; j < QB; j++)
#pragma GCC unroll 4
		for (int u = 0; u < DB; u++)
			o[j][u] = _mm256_setzero_ps();
	if (a >= b)
		a = b = hi;
	for (int seg = 0; seg < 3; seg++) {
		int64_t s0 = seg == 0 ? lo : seg == 1 ? a : b;
		int64_t s1 = seg == 0 ? a : seg == 1 ? b : hi;
		for (int64_t t = s0; t < s1; t++) {
			const uint16_t *vr = V + t * vstr + d0;
			__m256 v[4];
#pragma GCC unroll 4
			for (int u = 0; u < DB; u++)
				v[u] = _mm256_cvtph_ps(ld128(vr + 8 * u));
#pragma GCC unroll 6
			for (int j = 0; j < QB; j++) {
				if (seg != 1 && !(t >= p0[j] && t < p1[j]))
					continue;
				__m256 p = _mm256_set1_ps(w[j][t - T0]);
#pragma GCC unroll 4
				for (int u = 0; u < DB; u++)
					o[j][u] = _mm256_fmadd_ps(p, v[u], o[j][u]);
			}
		}
	}
#pragma GCC unroll 6
	for (int j = 0; j < QB; j++)
#pragma GCC unroll 4
		for (int u = 0; u < DB; u++)
			_mm256_storeu_ps(out[j] + d0 + 8 * u, o[j][u]);
}

#define VTILE8_CASE(QB, DB)                                                    \
	case QB:                                                               \
		for (; d0 + 8 * DB <= hd8; d0 += 8 * DB)                      \
			vtile8(QB, DB, V, vstr, w, T0, p0, p1, lo, a, b, hi, d0, out); \
		for (; d0 < hd8; d0 += 8)                                     \
			vtile8(QB, 1, V, vstr, w, T0, p0, p1, lo, a, b, hi, d0, out); \
		break;

static void attn_v8(const uint16_t *V, int64_t vstr, int64_t hd, int nt,
		    const float *const *w, int64_t T0, const int64_t *p0,
		    const int64_t *p1, float *const *out)
{
	int64_t lo = p0[0], hi = p1[0], a = p0[0], b = p1[0], hd8 = hd & ~(int64_t)7, d0 = 0;
	for (int j = 1; j < nt; j++) {
		lo = p0[j] < lo ? p0[j] : lo;
		a = p0[j] > a ? p0[j] : a;
		hi = p1[j] > hi ? p1[j] : hi;
		b = p1[j] < b ? p1[j] : b;
	}
	switch (nt) {
		VTILE8_CASE(1, 4)
		VTILE8_CASE(2, 4)
		VTILE8_CASE(3, 2)
		VTILE8_CASE(4, 2)
		VTILE8_CASE(5, 2)
		VTILE8_CASE(6, 2)
	}
	/* the last hd % 8 dimensions: the same chains, one by one */
	for (int j = 0; j < nt; j++)
		for (int64_t d = hd8; d < hd; d++) {
			float s = 0;
			for (int64_t t = p0[j]; t < p1[j]; t++)
				s = fmaf(w[j][t - T0], h2f((const uint8_t *)(V + t * vstr + d)), s);
			out[j][d] = s;
		}
}

static void attn_avx2(const uint16_t *K, const uint16_t *V, size_t stride,
		      int64_t hd, float scale, const kern_attn_q *qs, int nq,
		      float *scratch)
{
	int64_t T0 = INT64_MAX, T1 = 0, str = (int64_t)(stride / 2);
	for (int j = 0; j < nq; j++) {
		if (qs[j].p1 <= qs[j].p0)
			continue;
		T0 = qs[j].p0 < T0 ? qs[j].p0 : T0;
		T1 = qs[j].p1 > T1 ? qs[j].p1 : T1;
	}
	for (int j = 0; j < nq; j++)
		if (qs[j].p1 <= qs[j].p0)
			memset(qs[j].out, 0, (size_t)hd * sizeof(float));
	if (T1 <= T0)
		return;
	/* scratch: scores (nq rows of ld), the queries zero-padded to C
	 * chunks of 8, 8 K rows as f32 (chunk-major) */
	int64_t ld = (T1 - T0 + 15) & ~(int64_t)15, C = (hd + 7) / 8, qst = (hd + 15) & ~(int64_t)15;
	float *qp = scratch + (size_t)nq * (size_t)ld;
	float *kf = qp + (size_t)nq * (size_t)qst;
	for (int j = 0; j < nq; j++) {
		memset(qp + (size_t)j * (size_t)qst, 0, (size_t)qst * 4);
		memcpy(qp + (size_t)j * (size_t)qst, qs[j].q, (size_t)hd * 4);
	}
	const __m256 vscale = _mm256_set1_ps(scale);
	for (int64_t tb = T0; tb < T1; tb += 8) {
		const uint16_t *kh[8];
		for (int r = 0; r < 8; r++)
			kh[r] = K + (tb + r < T1 ? tb + r : T1 - 1) * str;
		for (int r = 0; r < 8; r++) /* V rows, for after the softmax */
			_mm_prefetch((const char *)(V + (tb + r < T1 ? tb + r : T1 - 1) * str),
				     _MM_HINT_T1);
		int users = 0;
		for (int j = 0; j < nq; j++)
			users += qs[j].p0 < tb + 8 && qs[j].p1 > tb;
		if (users > 1)
			for (int64_t c = 0; c < C; c++)
				for (int r = 0; r < 8; r++)
					_mm256_storeu_ps(kf + (8 * c + r) * 8, ldh8(kh[r], 8 * c, hd));
		for (int j = 0; j < nq; j++) {
			if (!(qs[j].p0 < tb + 8 && qs[j].p1 > tb))
				continue;
			const float *q = qp + (size_t)j * (size_t)qst;
			__m256 s = users > 1 ? score8(1, kh, kf, q, hd) : score8(0, kh, kf, q, hd);
			_mm256_storeu_ps(scratch + (size_t)j * (size_t)ld + (tb - T0),
					 _mm256_mul_ps(s, vscale));
		}
	}
	/* weights, query by query: the softmax, rounded to f16 */
	for (int j = 0; j < nq; j++) {
		if (qs[j].p1 <= qs[j].p0)
			continue;
		float *x = scratch + (size_t)j * (size_t)ld + (qs[j].p0 - T0);
		int64_t n = qs[j].p1 - qs[j].p0, i = 0;
		softmax_avx2(x, n);
		for (; i + 8 <= n; i += 8)
			_mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(
				_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
		for (; i < n; i++)
			x[i] = kb_h2f(kb_f2h(x[i]));
	}
	/* outputs, in balanced tiles of up to 6 queries */
	const float *w[6];
	int64_t p0[6], p1[6];
	float *out[6];
	int live[60];
	for (int j0 = 0; j0 < nq;) {
		int nl = 0, j = j0;
		for (; j < nq && nl < 60; j++)
			if (qs[j].p1 > qs[j].p0)
				live[nl++] = j;
		int ntiles = (nl + 5) / 6;
		for (int ti = 0, k = 0; ti < ntiles; ti++) {
			int nt = (nl - k) / (ntiles - ti);
			nt += (nl - k) % (ntiles - ti) != 0;
			for (int i = 0; i < nt; i++, k++) {
				int jj = live[k];
				w[i] = scratch + (size_t)jj * (size_t)ld;
				p0[i] = qs[jj].p0;
				p1[i] = qs[jj].p1;
				out[i] = qs[jj].out;
			}
			attn_v8(V, str, hd, nt, w, T0, p0, p1, out);
		}
		j0 = j;
	}
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

int kern_avx2_built(void)
{
	return 1;
}

void kern_avx2_fill(kern_ops *o)
{
	o->name = "avx2";
	o->dequant[KT_F16] = dq_f16;
	o->dequant[KT_BF16] = dq_bf16;
	o->dequant[KT_Q4_0] = dq_q4_0;
	o->dequant[KT_Q4_1] = dq_q4_1;
	o->dequant[KT_Q5_0] = dq_q5_0;
	o->dequant[KT_Q5_1] = dq_q5_1;
	o->dequant[KT_Q8_0] = dq_q8_0;
	o->quant_act[KT_Q4_0] = qa_q4_0;
	o->quant_act[KT_Q4_1] = qa_min;
	o->quant_act[KT_Q5_0] = qa_q5_0;
	o->quant_act[KT_Q5_1] = qa_min;
	o->quant_act[KT_Q8_0] = qa_q8_0;
	o->quant_act[KT_Q2_K] = qa_ak;
	o->quant_act[KT_Q3_K] = qa_ak;
	o->quant_act[KT_Q4_K] = qa_ak;
	o->quant_act[KT_Q5_K] = qa_ak;
	o->quant_act[KT_Q6_K] = qa_ak;
	o->quant_act[KT_BF16] = qa_bf16;
	o->matmul[KT_F32] = mm_f32;
	o->matmul[KT_F16] = mm_f16;
	o->matmul[KT_BF16] = mm_bf16;
	o->matmul[KT_Q4_0] = mm_q4_0;
	o->matmul[KT_Q4_1] = mm_q4_1;
	o->matmul[KT_Q5_0] = mm_q5_0;
	o->matmul[KT_Q5_1] = mm_q5_1;
	o->matmul[KT_Q8_0] = mm_q8_0;
	o->matmul[KT_Q4_K] = mm_q4_k;
	o->matmul[KT_Q5_K] = mm_q5_k;
	o->matmul[KT_Q6_K] = mm_q6_k;
	o->rmsnorm = rmsnorm_avx2;
	o->softmax = softmax_avx2;
	o->swiglu = swiglu_avx2;
	o->geglu = geglu_avx2;
	o->rope = rope_avx2;
	o->f32_to_f16 = f32_to_f16_avx2;
	o->attn = attn_avx2;
}

#else /* not x86 */

int kern_avx2_built(void)
{
	return 0;
}

void kern_avx2_fill(kern_ops *o)
{
	(void)o;
}

#endif
