/*
 * kern_avx512.c - AVX-512 (F/BW/DQ/VL + VNNI, BF16 where present) kernels:
 * Skylake-X-class and later Intel, Zen 4 and later AMD. Compiled for that
 * instruction set by a target pragma; kern.c uses the table only when the
 * CPU has it, on top of the AVX2 table (dequantization comes from there).
 *
 * The quantized types put 16 rows in a vector (a lane per row) and
 * multiply with activation bytes broadcast from memory (vpdpbusd, u8 x
 * s8). The activation's block sums turn the weights' offsets (8, 16, or
 * 128 for q8_0 made unsigned; 32 for q6_K) into an initial accumulator.
 */
#include "kern_blocks.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"))), apply_to = function)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")
#pragma GCC optimize("fp-contract=off")
#endif

#define AI static inline __attribute__((always_inline))

AI __m512i ld512(const void *p) { return _mm512_loadu_si512(p); }
AI __m256i ld256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
AI __m128i ld128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

AI float h2f(const uint8_t *p)
{
	return _cvtsh_ss(kb_ld16(p));
}

/* bytes of a block of a 32-element type */
AI int bbytes32(int T)
{
	return T == KT_Q4_0 ? 18 : T == KT_Q4_1 ? 20 : T == KT_Q5_0 ? 22 :
	       T == KT_Q5_1 ? 24 : 34;
}

/* Float weights. One activation: row by row (one sequential stream through
 * the weights, which the hardware prefetchers follow: interleaving rows
 * halves the speed of the memory-bound types on matrices larger than the
 * caches). Several activations: tiles of 2 rows x 4 activations, then x
 * the 2 or 3 left. Every tile shape sums in the same order (see mmf_tile:
 * a chain per (row, activation)): the result of a (row, activation)
 * does not depend on the tile that computes it. Each tile shape is a
 * function of its own (the register allocation of one does not suffer
 * from the others). */
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
#define MM_DRIVER(NAME, TILE, T) MM_DRIVER_R(NAME, TILE, T, 1)
#define MM_DRIVER_R(NAME, TILE, T, RV) \
	MM_TILE(NAME, TILE, T, 1, 1) MM_TILE(NAME, TILE, T, 2, 1) \
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
			MM_ROWS(NAME, 2, 4, n, w, rb, nr, a + b * as, as, \
				y + b * ldy, ldy); \
		if (B - b == 3) { \
			MM_ROWS(NAME, 2, 3, n, w, rb, nr, a + b * as, as, \
				y + b * ldy, ldy); \
		} else if (B - b == 2) { \
			MM_ROWS(NAME, 2, 2, n, w, rb, nr, a + b * as, as, \
				y + b * ldy, ldy); \
		} else if (B - b == 1) { \
			MM_ROWS(NAME, RV, 1, n, w, rb, nr, a + b * as, as, \
				y + b * ldy, ldy); \
		} \
	}


/* ---------------------------------------------------------------------
 * q4_0, q4_1, q5_0, q5_1, q8_0: 16 rows per vector. Lane r of every vector belongs to
 * row r of a tile of 16 rows: 16 bytes of quants per row are loaded into
 * the 128-bit lanes of 4 vectors and transposed (4 x 4 dwords per 128-bit
 * lane), so that a vector holds the same 4 quants of 16 rows and vpdpbusd
 * multiplies it with 4 activation bytes broadcast from memory: a block's
 * integer dot comes out whole in each row's lane, no horizontal sums. The
 * block scales go through a small table (scalar loads and stores, off the
 * vector pipes). q5_0 / q5_1's qh words take the same way; the 5th bits
 * go in with vptestmb and masked byte adds. The weights of a tile are
 * decoded once per block for up to 8 activations.
 *
 * Float order, the same for every tile shape (batch and split invariance):
 * for each row and activation, acc = fma(float(dot_i), d_i * d_a,i, acc)
 * over the blocks i in order, and for q4_1, q5_1 a second chain accm = fma(m_i,
 * s_a,i, accm); the result is acc (+ accm).
 * --------------------------------------------------------------------- */

#define MT_ROWS 16
/* A matvec prefetches, into L2, the tile MT_PFD tiles ahead: 16 rows read
 * side by side are 16 streams, which the hardware prefetchers follow badly
 * on matrices larger than the caches (q8_0 on 49152 x 576: 14 GB/s without,
 * 33 with; into L1, or 1 tile ahead, 13-15) */
#define MT_PFD 4
#define MT_PFH _MM_HINT_T1
/* In the tile16 layout, q6_K's tile prefetches the block column MT_TPFD
 * columns ahead: its loads go through a column out of order (scales at
 * its end, then qh, ql, qh, ql, d at its start), which the hardware
 * prefetchers do not follow (2 threads streaming a 64 MB matrix of 1536
 * columns: 8-13 GB/s without, 20-31 with; the in-order types lose with
 * it) */
#define MT_TPF(T) ((T) == KT_Q6_K)
#define MT_TPFD 1
/* With several activations, a tile16 tile prefetches, into L2, the bytes
 * MT_XPFD ahead of the block column it reads (the stream is in order, but
 * the tile's work per byte is too long for the hardware prefetchers to
 * run far enough ahead: decoding 8 sequences of TinyLlama Q4_0 read
 * its weights at 11 GB/s from memory, and at ~20 from L2). Not for one
 * activation (memory bound: the prefetches cost), nor for 2-3 with
 * q8_0, whose bytes per activation keep it near the memory's rate
 * (SmolLM2 Q8_0 at 2-3 sequences: 0.93). tiny-q4_0 decoding 3/4/6/8/16
 * sequences: 1.41/1.60/1.70/1.43/1.25x; tiny-q4_k_m 2/3/4/8: 1.26/1.47/
 * 1.47/1.29x; tiny-q8_0 4/8: 1.21/2.05x; smol-real-q4_1 2/3/4/8/16:
 * 1.16/1.12/1.26/1.15/1.07x (medians of 4-7 alternating runs; 4096 and
 * 32768 bytes ahead did no better) */
#define MT_XPF(T, C) ((C) >= ((T) == KT_Q8_0 ? 4 : 2))
#define MT_XPFD 8192

/* T[k] lane r = dword k of row r's 16 bytes */
AI void mt_tr(const __m512i Z[4], __m512i T[4])
{
	__m512i t0 = _mm512_unpacklo_epi32(Z[0], Z[1]);
	__m512i t1 = _mm512_unpackhi_epi32(Z[0], Z[1]);
	__m512i t2 = _mm512_unpacklo_epi32(Z[2], Z[3]);
	__m512i t3 = _mm512_unpackhi_epi32(Z[2], Z[3]);
	T[0] = _mm512_unpacklo_epi64(t0, t2);
	T[1] = _mm512_unpackhi_epi64(t0, t2);
	T[2] = _mm512_unpacklo_epi64(t1, t3);
	T[3] = _mm512_unpackhi_epi64(t1, t3);
}

AI __m512i bc32(const uint8_t *p)
{
	return _mm512_set1_epi32((int)kb_ld32(p));
}

/* The tile16 layout (dtype.h): the 16 blocks of a column at G; the
 * vector of the 16 rows' word at block byte off (off past the 2-byte scale
 * of q4_0, q5_0, q8_0: skip 2; that of q6_K is at 208: skip 0), and the
 * 64-byte vectors after it. */
AI const uint8_t *tlv(const uint8_t *G, int bb, size_t off)
{
	const size_t skip = bb % 4 == 2 && bb != 210 ? 2 : 0, dwo = bb % 4 == 2 ? 32 : 0;
	return G + dwo + 16 * (off - skip);
}

AI void tl_load(const uint8_t *G, int bb, size_t off, int nv, __m512i *T)
{
#pragma GCC unroll 8
	for (int k = 0; k < nv; k++)
		T[k] = ld512(tlv(G, bb, off) + 64 * k);
}

/* The rows of a tile. A full tile (16 rows of the matrix) addresses row r
 * as a base (rows 0 or 8) plus a multiple of the row stride (rb, 3 rb,
 * 5 rb, 7 rb times 1, 2, 4): 6 registers, where 16 row pointers would not
 * fit in the general registers (a matvec: +2-6% on the k-quants; several
 * activations lose as much: they keep the pointers). A partial tile (a
 * matrix of fewer than 16 rows) has pointers, the rows past the end
 * repeating the last one. */
typedef struct {
	const uint8_t *W;
	size_t rb, rb3, rb5, rb7;
	const uint8_t *rp[MT_ROWS];
} mtrows;

AI void mt_rows_init(mtrows *R, const uint8_t *W, size_t rb, int nr)
{
	R->W = W;
	R->rb = rb;
	R->rb3 = 3 * rb;
	R->rb5 = 5 * rb;
	R->rb7 = 7 * rb;
	for (int r = 0; r < MT_ROWS; r++)
		R->rp[r] = W + (r < nr ? r : nr - 1) * rb;
}

AI const uint8_t *mt_row(const int full, const mtrows *R, int r, size_t off)
{
	if (!full)
		return R->rp[r] + off;
	const uint8_t *b = R->W + off + (r >= 8 ? 8 * R->rb : 0);
	switch (r & 7) {
	case 0: return b;
	case 1: return b + R->rb;
	case 2: return b + 2 * R->rb;
	case 3: return b + R->rb3;
	case 4: return b + 4 * R->rb;
	case 5: return b + R->rb5;
	case 6: return b + 2 * R->rb3;
	default: return b + R->rb7;
	}
}

/* the 4-byte scale words (f16 d, and m above it for q4_1) of block i of
 * 16 rows into a table slot (scalar loads and stores: the vector pipes,
 * the bottleneck, are busy with the shuffles) */
AI void mt_scales(const int full, const mtrows *R, size_t off, uint32_t *slot)
{
#pragma GCC unroll 16
	for (int r = 0; r < MT_ROWS; r++) {
		/* a plain store: not assembled in a vector by vpinsrd */
		uint32_t v = kb_ld32(mt_row(full, R, r, off));
		__asm__("movl %1, %0" : "=m"(slot[r]) : "r"(v));
	}
}

/* lane L of Z[j] = 16 bytes at row 4L + j, + off */
AI void mt_loadp(const int full, const mtrows *R, size_t off, __m512i Z[4])
{
#pragma GCC unroll 4
	for (int j = 0; j < 4; j++) {
		__m512i z = _mm512_castsi128_si512(ld128(mt_row(full, R, j, off)));
		z = _mm512_mask_broadcast_i32x4(z, 0x00f0, ld128(mt_row(full, R, 4 + j, off)));
		z = _mm512_mask_broadcast_i32x4(z, 0x0f00, ld128(mt_row(full, R, 8 + j, off)));
		Z[j] = _mm512_mask_broadcast_i32x4(z, 0xf000, ld128(mt_row(full, R, 12 + j, off)));
	}
}

/* 32 bytes of 16 rows: T[k] lane r = dword k of the 32 bytes of row r at
 * off. Two rows per vector (a 256-bit half each: one plain load and one
 * insert), 4 x 4 dword transposes within the 128-bit lanes, then
 * vshufi32x4 gathers the lanes; vector p holds rows 8h + a and 8h + 4 + a
 * (p = 4h + a) so that the rows come out in order. */
AI void mt_load32(const int full, const mtrows *R, size_t off, __m512i T[8])
{
	__m512i Z[8], U[4], V[4];
#pragma GCC unroll 8
	for (int p = 0; p < 8; p++) {
		int r = 8 * (p >> 2) + (p & 3);
		Z[p] = _mm512_inserti64x4(_mm512_castsi256_si512(ld256(mt_row(full, R, r, off))),
					  ld256(mt_row(full, R, r + 4, off)), 1);
	}
	mt_tr(Z, U);
	mt_tr(Z + 4, V);
#pragma GCC unroll 4
	for (int k = 0; k < 4; k++) {
		T[k] = _mm512_shuffle_i32x4(U[k], V[k], 0x88);	   /* lanes 0 2 | 0 2 */
		T[4 + k] = _mm512_shuffle_i32x4(U[k], V[k], 0xdd); /* lanes 1 3 | 1 3 */
	}
}

/* nv (4 or 8) vectors of 16 rows' words at block byte off of block column
 * bo / bb: loaded from the tile16 layout (tl, column at G), else gathered
 * from the rows and transposed (mt_loadp + mt_tr: 16 bytes, mt_load32: 32) */
AI void mt_words(const int tl, const int full, const mtrows *R, const uint8_t *G, int bb,
		 size_t bo, size_t off, const int nv, __m512i *T)
{
	if (tl) {
		tl_load(G, bb, off, nv, T);
	} else if (nv == 4) {
		__m512i Z[4];
		mt_loadp(full, R, bo + off, Z);
		mt_tr(Z, T);
	} else {
		mt_load32(full, R, bo + off, T);
	}
}

/* rows [0, nr) (nr <= 16) x activations [0, C): a tile; rows past nr
 * repeat the last one (their results are not stored) */
AI void mt_tile(const int T, const int C, const int full, const int tl, int64_t nb, const uint8_t *W,
		size_t rb, int nr, const uint8_t *A, size_t as, float *y,
		int64_t ldy, const uint8_t *pf, size_t pfstep)
{
	const int bb = bbytes32(T), hasm = T == KT_Q4_1 || T == KT_Q5_1;
	const int hb = T == KT_Q5_0 || T == KT_Q5_1, ho = T == KT_Q5_1 ? 4 : 2;
	const int qo = T == KT_Q4_1 ? 4 : T == KT_Q5_0 ? 6 : T == KT_Q5_1 ? 8 : 2;
	const size_t aqo = a32_qs_off(nb), axo = a32_aux_off(nb);
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	/* rows past nr: the last row again (loads stay inside the matrix) */
	/* q4_0 keeps its row pointers (the full-tile addressing: -4%) */
	const int fa = full && T != KT_Q4_0;
	mtrows R;
	mt_rows_init(&R, W, rb, nr);
	uint32_t dt[2][MT_ROWS], ht[2][MT_ROWS];
	__m512 acc[8], accm[8];
#pragma GCC unroll 8
	for (int c = 0; c < C; c++)
		acc[c] = accm[c] = _mm512_setzero_ps();
	if (!tl) {
		mt_scales(fa, &R, 0, dt[0]);
		if (hb)
			mt_scales(fa, &R, ho, ht[0]);
	}
	for (int64_t i = 0; i < nb; i++) {
		const uint8_t *G = W + (size_t)i * MT_ROWS * bb;
		if (!tl && i + 1 < nb) {
			mt_scales(fa, &R, (size_t)(i + 1) * bb, dt[(i + 1) & 1]);
			if (hb)
				mt_scales(fa, &R, (size_t)(i + 1) * bb + ho, ht[(i + 1) & 1]);
		}
		if (pf)
			for (size_t o = 0; o < MT_ROWS * (size_t)bb; o += 64)
				_mm_prefetch((const char *)pf + i * pfstep + o, MT_PFH);
		__m512i Q[8], Tq[4];
		mt_words(tl, fa, &R, G, bb, (size_t)i * bb, (size_t)qo, 4, Tq);
		if (T == KT_Q8_0) {
			const __m512i x80 = _mm512_set1_epi8((char)0x80);
#pragma GCC unroll 4
			for (int k = 0; k < 4; k++)
				Q[k] = _mm512_xor_si512(Tq[k], x80);
			mt_words(tl, fa, &R, G, bb, (size_t)i * bb, (size_t)qo + 16, 4, Tq);
#pragma GCC unroll 4
			for (int k = 0; k < 4; k++)
				Q[4 + k] = _mm512_xor_si512(Tq[k], x80);
		} else {
#pragma GCC unroll 4
			for (int k = 0; k < 4; k++) {
				Q[k] = _mm512_and_si512(Tq[k], m4);
				Q[4 + k] = _mm512_and_si512(_mm512_srli_epi16(Tq[k], 4), m4);
			}
		}
		if (hb) {
			/* the 5th bit of element e is bit e of the row's qh: Q[k]
			 * (elements 4k..4k+3) take bits 4k.. of qh byte k / 2,
			 * Q[4 + k] those of byte 2 + k / 2: the byte repeated over
			 * the dword (vpshufb), vptestmb against the element's bit */
			const __m512i hv = tl ? ld512(tlv(G, bb, ho)) : _mm512_loadu_si512(ht[i & 1]);
			const __m512i x10 = _mm512_set1_epi8(0x10);
			const __m512i dsel = _mm512_set_epi32(
				0x0c0c0c0c, 0x08080808, 0x04040404, 0, 0x0c0c0c0c, 0x08080808, 0x04040404, 0,
				0x0c0c0c0c, 0x08080808, 0x04040404, 0, 0x0c0c0c0c, 0x08080808, 0x04040404, 0);
#pragma GCC unroll 4
			for (int j = 0; j < 4; j++) {
				__m512i rj = _mm512_shuffle_epi8(hv, _mm512_add_epi32(dsel,
					_mm512_set1_epi32(j * 0x01010101)));
#pragma GCC unroll 2
				for (int t = 0; t < 2; t++) {
					__mmask64 k5 = _mm512_test_epi8_mask(rj,
						_mm512_set1_epi32((int)(0x08040201u << (4 * t))));
					Q[2 * j + t] = _mm512_mask_add_epi8(Q[2 * j + t], k5, Q[2 * j + t], x10);
				}
			}
		}
		__m512i sv = tl ? ld512(G) : _mm512_loadu_si512(dt[i & 1]);
		__m512 dw = tl && bb % 4 == 2 ? _mm512_cvtph_ps(ld256(G)) :
			    _mm512_cvtph_ps(_mm512_cvtepi32_epi16(sv)), mw = dw;
		if (hasm)
			mw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(sv, 16)));
#pragma GCC unroll 8
		for (int c = 0; c < C; c++) {
			const uint8_t *ac = A + c * as;
			const uint8_t *aq = ac + aqo + 32 * i;
			__m512i s0 = hasm ? _mm512_setzero_si512() :
					    _mm512_slli_epi32(bc32(ac + axo + 32 * i), 3);
			__m512i s1 = _mm512_setzero_si512();
#pragma GCC unroll 4
			for (int k = 0; k < 4; k++) {
				s0 = _mm512_dpbusd_epi32(s0, Q[k], bc32(aq + 4 * k));
				s1 = _mm512_dpbusd_epi32(s1, Q[4 + k], bc32(aq + 16 + 4 * k));
			}
			__m512i s = _mm512_add_epi32(s0, s1);
			__m512 da = _mm512_set1_ps(kb_bits_f32(kb_ld32(ac + 4 * i)));
			acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, da), acc[c]);
			if (hasm)
				accm[c] = _mm512_fmadd_ps(mw,
					_mm512_set1_ps(kb_bits_f32(kb_ld32(ac + 4 * nb + 4 * i))), accm[c]);
		}
	}
	const __mmask16 km = (__mmask16)((1u << nr) - 1);
#pragma GCC unroll 8
	for (int c = 0; c < C; c++) {
		__m512 v = hasm ? _mm512_add_ps(acc[c], accm[c]) : acc[c];
		_mm512_mask_storeu_ps(y + c * ldy, km, v);
	}
}

/* One function per activation count: rows in tiles of 16 (the last one
 * partial); a matvec prefetches the next tile's rows. TILE is the tile
 * function, QB the elements of a block. */
#define MT_FN(NAME, TILE, QB, T, C) \
	static __attribute__((noinline, aligned(64))) void NAME##_c##C( \
		int64_t nb, const uint8_t *w, size_t rb, int64_t nr, \
		const uint8_t *a, size_t as, float *y, int64_t ldy) \
	{ \
		const size_t pfs = (size_t)MT_ROWS * rb / (size_t)nb; \
		if (nr < MT_ROWS) { \
			TILE(T, C, 0, 0, nb, w, rb, (int)nr, a, as, y, ldy, NULL, pfs); \
			return; \
		} \
		for (int64_t r0 = 0; r0 < nr; r0 += MT_ROWS) { \
			/* the last tile ends at the last row (it may overlap \
			 * the one before: the same rows give the same bits) */ \
			int64_t r = r0 + MT_ROWS <= nr ? r0 : nr - MT_ROWS; \
			const uint8_t *pf = C == 1 && MT_PFD && r + (MT_PFD + 1) * MT_ROWS <= nr ? \
				w + (r + MT_PFD * MT_ROWS) * rb : NULL; \
			TILE(T, C, C == 1, 0, nb, w + r * rb, rb, MT_ROWS, a, as, \
			     y + r, ldy, \
			     pf, pfs); \
		} \
	} \
	/* whole tiles of the tile16 layout: one sequential stream, which \
	 * the hardware prefetchers follow, except q6_K's (see MT_TPF) */ \
	static __attribute__((noinline, aligned(64))) void NAME##_t_c##C( \
		int64_t nb, const uint8_t *w, size_t rb, int64_t nr, \
		const uint8_t *a, size_t as, float *y, int64_t ldy) \
	{ \
		const size_t cs = (size_t)MT_ROWS * (rb / (size_t)nb); \
		for (int64_t r = 0; r < nr; r += MT_ROWS) \
			TILE(T, C, 1, 1, nb, w + r * rb, rb, MT_ROWS, a, as, y + r, ldy, \
			     MT_TPF(T) ? w + r * rb + MT_TPFD * cs : \
			     MT_XPF(T, C) ? w + r * rb + MT_XPFD : NULL, cs); \
	}
#define MT_DRIVER(NAME, T) MT_DRIVER_G(NAME, mt_tile, QK, T)
#define MT_DRIVER_G(NAME, TILE, QB, T) \
	MT_FN(NAME, TILE, QB, T, 1) MT_FN(NAME, TILE, QB, T, 2) \
	MT_FN(NAME, TILE, QB, T, 3) MT_FN(NAME, TILE, QB, T, 4) \
	MT_FN(NAME, TILE, QB, T, 5) MT_FN(NAME, TILE, QB, T, 6) \
	MT_FN(NAME, TILE, QB, T, 7) MT_FN(NAME, TILE, QB, T, 8) \
	MT_DISPATCH(NAME, NAME, QB) MT_DISPATCH(NAME##_t, NAME##_t, QB)
#define MT_DISPATCH(NAME, F, QB) \
	static void NAME(int64_t n, const void *W, size_t rb, int64_t nr, \
			 const void *acts, size_t as, int B, float *y, \
			 int64_t ldy) \
	{ \
		typedef void (*fn)(int64_t, const uint8_t *, size_t, int64_t, \
				   const uint8_t *, size_t, float *, int64_t); \
		static const fn tab[8] = { F##_c1, F##_c2, F##_c3, \
			F##_c4, F##_c5, F##_c6, F##_c7, F##_c8 }; \
		const uint8_t *a = acts; \
		for (int b = 0; b < B; b += 8) { \
			int c = B - b < 8 ? B - b : 8; \
			tab[c - 1](n / (QB), W, rb, nr, a + b * as, as, y + b * ldy, ldy); \
		} \
	}
MT_DRIVER(mt_q4_0, KT_Q4_0)
MT_DRIVER(mt_q4_1, KT_Q4_1)
MT_DRIVER(mt_q5_0, KT_Q5_0)
MT_DRIVER(mt_q5_1, KT_Q5_1)
MT_DRIVER(mt_q8_0, KT_Q8_0)

/* ---------------------------------------------------------------------
 * k-quants, 16 rows per vector (as q4_0 above): a tile's 16 rows are read
 * side by side, 16 bytes at a time, transposed so that a vector holds 4
 * quants of 16 rows, and multiplied by activation bytes broadcast from
 * memory (vpdpbusd). A sub-block's integer dot comes out whole in each
 * row's lane; the sub-block scales (a lane per row, decoded from the
 * transposed scale bytes) multiply it (vpmulld) into the block's integer
 * sum. The min / offset term, sum over sub-blocks of m_g (or -32 sc_g for
 * q6_K) times the activation's bsum_g, is a few vpdpwssd of the rows'
 * int16 pairs with bsum pairs broadcast from memory. The weights of a
 * tile are decoded once per block for up to 8 activations.
 *
 * Float order, the same for every tile shape (batch and split invariance):
 * for each row and activation, over the blocks i in order,
 * acc = fma(float(isum_i), d_i * d_a,i, acc), and for q4_K and q5_K
 * accm = fma(float(msum_i), dmin_i * d_a,i, accm); the result is
 * acc (- accm).
 * --------------------------------------------------------------------- */

/* vpshufb control: in every dword, byte 0 = byte j of the dword (and
 * byte 2 too if pair), the others 0 */
AI __m512i kbsel(int j, int pair)
{
	uint32_t v = pair ? (uint32_t)j * 0x10001u | 0x80008000u : (uint32_t)j | 0x80808000u;
	uint32_t e[16];
	for (int d = 0; d < 16; d++)
		e[d] = v + (pair ? 0x40004u : 4u) * (uint32_t)(d % 4);
	return _mm512_loadu_si512(e);
}

/* rows [0, nr) (nr <= 16) x activations [0, C) of q4_K / q5_K */
AI void mtk45_tile(const int T, const int C, const int full, const int tl, int64_t nb, const uint8_t *W,
		   size_t rb, int nr, const uint8_t *A, size_t as, float *y,
		   int64_t ldy, const uint8_t *pf, size_t pfstep)
{
	const int hb = T == KT_Q5_K;
	const int bb = hb ? 176 : 144, qo = hb ? 48 : 16;
	const size_t aqo = ak_qs_off(nb), abo = ak_bs_off(nb);
	const __m512i m4 = _mm512_set1_epi8(0x0f), m6 = _mm512_set1_epi8(0x3f);
	const __m512i m30 = _mm512_set1_epi8(0x30);
	mtrows R;
	mt_rows_init(&R, W, rb, nr);
	__m512 acc[8], accm[8];
#pragma GCC unroll 8
	for (int c = 0; c < C; c++)
		acc[c] = accm[c] = _mm512_setzero_ps();
	for (int64_t i = 0; i < nb; i++) {
		if (pf)
			for (size_t o = 0; o < MT_ROWS * (size_t)bb; o += 64)
				_mm_prefetch((const char *)pf + i * pfstep + o, MT_PFH);
		const size_t bo = (size_t)i * bb;
		const uint8_t *G = W + bo * MT_ROWS;
		__m512i Hd[4];
		mt_words(tl, full, &R, G, bb, bo, 0, 4, Hd);
		/* Hd[0]: d, dmin; Hd[1..3]: the 12 scale bytes */
		__m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(Hd[0]));
		__m512 mw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(Hd[0], 16)));
		__m512i u[4];
		u[0] = _mm512_and_si512(Hd[1], m6);
		u[1] = _mm512_or_si512(_mm512_and_si512(Hd[3], m4),
				       _mm512_and_si512(_mm512_srli_epi32(Hd[1], 2), m30));
		u[2] = _mm512_and_si512(Hd[2], m6);
		u[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(Hd[3], 4), m4),
				       _mm512_and_si512(_mm512_srli_epi32(Hd[2], 2), m30));
		__m512i H[8];
		if (hb)
			mt_words(tl, full, &R, G, bb, bo, 16, 8, H);
		__m512i isum[8];
#pragma GCC unroll 8
		for (int c = 0; c < C; c++)
			isum[c] = _mm512_setzero_si512();
#pragma GCC unroll 4
		for (int q = 0; q < 4; q++) {
			__m512i Tq[8], Q[16];
			mt_words(tl, full, &R, G, bb, bo, (size_t)(qo + 32 * q), 8, Tq);
#pragma GCC unroll 8
			for (int k = 0; k < 8; k++) {
				Q[k] = _mm512_and_si512(Tq[k], m4);
				Q[8 + k] = _mm512_and_si512(_mm512_srli_epi16(Tq[k], 4), m4);
				if (hb) {
					/* the 5th bits: bit 2q (2q + 1) of qh[l] */
					const __m512i x10 = _mm512_set1_epi8(0x10);
					__mmask64 kl = _mm512_test_epi8_mask(H[k], _mm512_set1_epi8((char)(1 << (2 * q))));
					__mmask64 kh = _mm512_test_epi8_mask(H[k], _mm512_set1_epi8((char)(2 << (2 * q))));
					Q[k] = _mm512_mask_add_epi8(Q[k], kl, Q[k], x10);
					Q[8 + k] = _mm512_mask_add_epi8(Q[8 + k], kh, Q[8 + k], x10);
				}
			}
			/* sub-blocks 2q (low nibbles) and 2q + 1 (high nibbles) */
			const int j0 = 2 * q, j1 = 2 * q + 1;
			__m512i sc0 = _mm512_shuffle_epi8(u[j0 >> 2], kbsel(j0 & 3, 0));
			__m512i sc1 = _mm512_shuffle_epi8(u[j1 >> 2], kbsel(j1 & 3, 0));
#pragma GCC unroll 8
			for (int c = 0; c < C; c++) {
				const uint8_t *aq = A + c * as + aqo + QKK * i + 64 * q;
				__m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
				__m512i s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
#pragma GCC unroll 4
				for (int k = 0; k < 4; k++) {
					s0 = _mm512_dpbusd_epi32(s0, Q[k], bc32(aq + 4 * k));
					s1 = _mm512_dpbusd_epi32(s1, Q[4 + k], bc32(aq + 16 + 4 * k));
					s2 = _mm512_dpbusd_epi32(s2, Q[8 + k], bc32(aq + 32 + 4 * k));
					s3 = _mm512_dpbusd_epi32(s3, Q[12 + k], bc32(aq + 48 + 4 * k));
				}
				isum[c] = _mm512_add_epi32(isum[c], _mm512_add_epi32(
					_mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sc0),
					_mm512_mullo_epi32(_mm512_add_epi32(s2, s3), sc1)));
			}
		}
		/* the mins: m_j (twice, int16) times bsum pair j */
		__m512i M[8];
#pragma GCC unroll 8
		for (int j = 0; j < 8; j++)
			M[j] = _mm512_shuffle_epi8(u[2 + (j >> 2)], kbsel(j & 3, 1));
#pragma GCC unroll 8
		for (int c = 0; c < C; c++) {
			const uint8_t *ac = A + c * as;
			__m512i ms = _mm512_setzero_si512();
#pragma GCC unroll 8
			for (int j = 0; j < 8; j++)
				ms = _mm512_dpwssd_epi32(ms, M[j], bc32(ac + abo + 32 * i + 4 * j));
			__m512 da = _mm512_set1_ps(kb_bits_f32(kb_ld32(ac + 4 * i)));
			acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_mul_ps(dw, da), acc[c]);
			accm[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ms), _mm512_mul_ps(mw, da), accm[c]);
		}
	}
	const __mmask16 km = (__mmask16)((1u << nr) - 1);
#pragma GCC unroll 8
	for (int c = 0; c < C; c++)
		_mm512_mask_storeu_ps(y + c * ldy, km, _mm512_sub_ps(acc[c], accm[c]));
}

/* rows [0, nr) (nr <= 16) x activations [0, C) of q6_K: quants made
 * unsigned (0..63), the -32 offset through the bsums: isum starts from
 * sum_g -32 sc_g bsum_g (int16 pairs of sub-blocks 2p, 2p + 1) */
AI void mtq6k_tile(const int T, const int C, const int full, const int tl, int64_t nb, const uint8_t *W,
		   size_t rb, int nr, const uint8_t *A, size_t as, float *y,
		   int64_t ldy, const uint8_t *pf, size_t pfstep)
{
	(void)T;
	const int bb = 210;
	const size_t aqo = ak_qs_off(nb), abo = ak_bs_off(nb);
	const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
	mtrows R;
	mt_rows_init(&R, W, rb, nr);
	uint32_t dt[2][MT_ROWS];
	_Alignas(64) int32_t scv[16][16];
	_Alignas(32) int32_t bsp[8][8];
	/* bsum words 0 2 1 3, 4 6 5 7 ...: dwords (4k, 4k+2), (4k+1, 4k+3) */
	const __m256i bsx = _mm256_broadcastsi128_si256(_mm_setr_epi8(
		0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15));
	__m512 acc[8];
#pragma GCC unroll 8
	for (int c = 0; c < C; c++)
		acc[c] = _mm512_setzero_ps();
	/* d (f16 @208) in the high half of the word @206 */
	if (!tl)
		mt_scales(full, &R, 206, dt[0]);
	for (int64_t i = 0; i < nb; i++) {
		const size_t bo = (size_t)i * bb;
		const uint8_t *G = W + bo * MT_ROWS;
		if (!tl && i + 1 < nb)
			mt_scales(full, &R, bo + bb + 206, dt[(i + 1) & 1]);
		if (pf)
			for (size_t o = 0; o < MT_ROWS * (size_t)bb; o += 64)
				_mm_prefetch((const char *)pf + i * pfstep + o, MT_PFH);
		__m512i S[4]; /* S[k] lane r: scales 4k..4k+3 of row r */
		mt_words(tl, full, &R, G, bb, bo, 192, 4, S);
		/* sc as int16 pairs: e (sc_4k, sc_4k+2), o (sc_4k+1, sc_4k+3);
		 * the bsums in that order (pairs (4k, 4k+2), (4k+1, 4k+3)) */
		__m512i E[4], O[4];
#pragma GCC unroll 4
		for (int k = 0; k < 4; k++) {
			E[k] = _mm512_srai_epi16(_mm512_slli_epi16(S[k], 8), 8);
			O[k] = _mm512_srai_epi16(S[k], 8);
		}
		/* the 16 sub-block scales, sign-extended, through the stack (the
		 * vpmulld take them from memory) */
#pragma GCC unroll 16
		for (int g = 0; g < 16; g++)
			_mm512_store_si512(scv[g], _mm512_srai_epi32(
				_mm512_slli_epi32(S[g >> 2], 24 - 8 * (g & 3)), 24));
		__m512i isum[8];
#pragma GCC unroll 8
		for (int c = 0; c < C; c++) {
			__m256i bs = ld256(A + c * as + abo + 32 * i);
			_mm256_store_si256((__m256i *)bsp[c], _mm256_shuffle_epi8(bs, bsx));
			__m512i s = _mm512_setzero_si512();
#pragma GCC unroll 4
			for (int k = 0; k < 4; k++) {
				s = _mm512_dpwssd_epi32(s, E[k], _mm512_set1_epi32(bsp[c][2 * k]));
				s = _mm512_dpwssd_epi32(s, O[k], _mm512_set1_epi32(bsp[c][2 * k + 1]));
			}
			isum[c] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s, 5));
		}
#pragma GCC unroll 1
		for (int h = 0; h < 2; h++) {
			__m512i H[8];
			mt_words(tl, full, &R, G, bb, bo, (size_t)(128 + 32 * h), 8, H);
#pragma GCC unroll 2
			for (int g = 0; g < 2; g++) { /* groups g (low nibbles) and g + 2 (high) */
				__m512i L[8];
				mt_words(tl, full, &R, G, bb, bo, (size_t)(64 * h + 32 * g), 8, L);
#pragma GCC unroll 2
				for (int hi = 0; hi < 2; hi++) {
					__m512i Q[8];
#pragma GCC unroll 8
					for (int m = 0; m < 8; m++) {
						/* 2 high bits: bits 2 (g + 2 hi) of qh */
						const int sh = 2 * (g + 2 * hi);
						__m512i hx = sh < 4 ? _mm512_slli_epi16(H[m], 4 - sh) :
							     sh > 4 ? _mm512_srli_epi16(H[m], sh - 4) : H[m];
						__m512i lx = hi ? _mm512_srli_epi16(L[m], 4) : L[m];
						Q[m] = _mm512_ternarylogic_epi32(lx, m4, _mm512_and_si512(hx, m30), 0xea);
					}
					/* sub-blocks of group g + 2 hi of half h */
					const int sb = 8 * h + 2 * (g + 2 * hi);
					const __m512i *sc = (const __m512i *)scv[0] + sb;
#pragma GCC unroll 8
					for (int c = 0; c < C; c++) {
						const uint8_t *aq = A + c * as + aqo + QKK * i + 16 * sb;
						__m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
#pragma GCC unroll 4
						for (int k = 0; k < 4; k++) {
							s0 = _mm512_dpbusd_epi32(s0, Q[k], bc32(aq + 4 * k));
							s1 = _mm512_dpbusd_epi32(s1, Q[4 + k], bc32(aq + 16 + 4 * k));
						}
						isum[c] = _mm512_add_epi32(isum[c], _mm512_add_epi32(
							_mm512_mullo_epi32(s0, sc[0]), _mm512_mullo_epi32(s1, sc[1])));
					}
				}
			}
		}
		__m512 dw = tl ? _mm512_cvtph_ps(ld256(G)) :
			_mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(
				_mm512_loadu_si512(dt[i & 1]), 16)));
#pragma GCC unroll 8
		for (int c = 0; c < C; c++) {
			__m512 da = _mm512_set1_ps(kb_bits_f32(kb_ld32(A + c * as + 4 * i)));
			acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_mul_ps(dw, da), acc[c]);
		}
	}
	const __mmask16 km = (__mmask16)((1u << nr) - 1);
#pragma GCC unroll 8
	for (int c = 0; c < C; c++)
		_mm512_mask_storeu_ps(y + c * ldy, km, acc[c]);
}

MT_DRIVER_G(mt_q4_k, mtk45_tile, QKK, KT_Q4_K)
MT_DRIVER_G(mt_q5_k, mtk45_tile, QKK, KT_Q5_K)
MT_DRIVER_G(mt_q6_k, mtq6k_tile, QKK, KT_Q6_K)

/* ---------------------------------------------------------------------
 * Float weights: f32, f16 (f32 activations), bf16 (bf16 activations)
 * --------------------------------------------------------------------- */

/* 16 weights (or fewer under mask k) as floats */
AI __m512 ldw16(int T, const uint8_t *p, __mmask16 k)
{
	if (T == KT_F32)
		return _mm512_maskz_loadu_ps(k, p);
	__m256i h = _mm256_maskz_loadu_epi16(k, p);
	if (T == KT_F16)
		return _mm512_cvtph_ps(h);
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

AI void mmf_tile(const int T, const int R, const int C, int64_t n,
		 const uint8_t *W, size_t rb, const uint8_t *A, size_t as,
		 float *y, int64_t ldy)
{
	const int es = T == KT_F32 ? 4 : 2;
	const int ae = T == KT_BF16 ? KT_BF16 : KT_F32, aes = T == KT_BF16 ? 2 : 4;
	__m512 acc[4][4][2];
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < C; c++)
			acc[r][c][0] = acc[r][c][1] = _mm512_setzero_ps();
	for (int64_t i = 0; i < n; i += 32) {
		int64_t left = n - i;
		__mmask16 k0 = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
		__mmask16 k1 = left >= 32 ? 0xffff : left <= 16 ? 0 :
			       (__mmask16)((1u << (left - 16)) - 1);
		__m512 a0[4], a1[4];
#pragma GCC unroll 4
		for (int c = 0; c < C; c++) {
			a0[c] = ldw16(ae, A + c * as + aes * i, k0);
			a1[c] = ldw16(ae, A + c * as + aes * (i + 16), k1);
		}
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			__m512 w0 = ldw16(T, W + r * rb + es * i, k0);
			__m512 w1 = ldw16(T, W + r * rb + es * (i + 16), k1);
#pragma GCC unroll 4
			for (int c = 0; c < C; c++) {
				acc[r][c][0] = _mm512_fmadd_ps(w0, a0[c], acc[r][c][0]);
				acc[r][c][1] = _mm512_fmadd_ps(w1, a1[c], acc[r][c][1]);
			}
		}
	}
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < C; c++)
			y[c * ldy + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][c][0], acc[r][c][1]));
}

MM_DRIVER(mm_f32, mmf_tile, KT_F32)
MM_DRIVER(mm_f16, mmf_tile, KT_F16)
MM_DRIVER(mm_bf16, mmf_tile, KT_BF16)

/* ---------------------------------------------------------------------
 * Float helpers
 * --------------------------------------------------------------------- */

AI __mmask16 tail16(int64_t left)
{
	return left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
}

/* exp(x), relative error about 2 ulp, 0 for -INFINITY and far below */
AI __m512 exp16(__m512 x)
{
	x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-110.0f)), _mm512_set1_ps(88.72f));
	__m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
					_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.9875691500e-4f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
	p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	return _mm512_scalef_ps(p, k);
}

/* ---------------------------------------------------------------------
 * Activation quantizers for the 32-element types: the reference's bytes
 * (the same float operations: |x| maxima where a NaN never wins, x * 127 /
 * amax rounded to nearest even by cvtps2dq as the AVX2 variant's, the
 * scales rounded through f16 by F16C, which rounds as kb_f2h), a block
 * per 2 vectors (the AVX2 variant, with its scalar f16 conversions, took
 * 3-8% of 16 sequences decoding).
 * --------------------------------------------------------------------- */

AI float f16_round(float v)
{
	return _cvtsh_ss(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

AI void qa32_512(const float *x, void *act, int64_t n, int kind)
{
	int64_t nb = n / QK;
	uint8_t *a = act;
	int8_t *qs = (int8_t *)(a + a32_qs_off(nb));
	float *dl = (float *)(a + a32_dl_off(nb)), *ax = (float *)(a + a32_aux_off(nb));
	memset(a + 8 * nb, 0, a32_qs_off(nb) - (size_t)(8 * nb));
	memset(qs + n, 0, a32_dl_off(nb) - a32_qs_off(nb) - (size_t)n);
	memset(a + a32_aux_off(nb) + 32 * nb, 0, a32_bytes(n) - a32_aux_off(nb) - (size_t)(32 * nb));
	const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
	for (int64_t i = 0; i < nb; i++) {
		__m512 x0 = _mm512_loadu_ps(x + QK * i), x1 = _mm512_loadu_ps(x + QK * i + 16);
		/* maxps gives its second operand when either is a NaN */
		__m512 mx = _mm512_max_ps(_mm512_abs_ps(x1),
					  _mm512_max_ps(_mm512_abs_ps(x0), _mm512_setzero_ps()));
		float amax = _mm512_reduce_max_ps(mx), d = amax / 127.0f;
		__m512 id = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
		__m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, id));
		__m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, id));
		q0 = _mm512_min_epi32(_mm512_max_epi32(q0, lo), hi);
		q1 = _mm512_min_epi32(_mm512_max_epi32(q1, lo), hi);
		_mm_storeu_si128((__m128i *)(qs + QK * i), _mm512_cvtsepi32_epi8(q0));
		_mm_storeu_si128((__m128i *)(qs + QK * i + 16), _mm512_cvtsepi32_epi8(q1));
		int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
		float dh = f16_round(d), sh = f16_round(d * (float)sum);
		memcpy(a + 4 * i, &dh, 4);
		if (kind < 0)
			memcpy(a + 4 * nb + 4 * i, &sh, 4);
		else
			memcpy(a + 4 * nb + 4 * i, &sum, 4);
		_mm256_storeu_ps(dl + 8 * i, _mm256_set1_ps(dh));
		__m256 aux = kind < 0 ? _mm256_set1_ps(sh * 0.125f) :
					_mm256_castsi256_ps(_mm256_set1_epi32(-sum * kind / 8));
		_mm256_storeu_ps(ax + 8 * i, aux);
	}
}

static void qa512_q4_0(const float *x, void *act, int64_t n) { qa32_512(x, act, n, 8); }
static void qa512_q5_0(const float *x, void *act, int64_t n) { qa32_512(x, act, n, 16); }
static void qa512_q8_0(const float *x, void *act, int64_t n) { qa32_512(x, act, n, 128); }
static void qa512_min(const float *x, void *act, int64_t n) { qa32_512(x, act, n, -1); }

static void rmsnorm_avx512(float *y, const float *x, const float *w, int64_t n,
			   float eps)
{
	/* squares in float, summed in double (as the reference) */
	__m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
	int64_t i = 0;
	for (; i < n; i += 16) {
		__m512 a = _mm512_maskz_loadu_ps(tail16(n - i), x + i);
		__m512 q = _mm512_mul_ps(a, a);
		s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(q)));
		s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(
			_mm512_extractf64x4_pd(_mm512_castps_pd(q), 1))));
	}
	double ss = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
	float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
	__m512 vs = _mm512_set1_ps(scale);
	for (i = 0; i < n; i += 16) {
		__mmask16 k = tail16(n - i);
		__m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vs);
		if (w)
			v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(k, w + i));
		_mm512_mask_storeu_ps(y + i, k, v);
	}
}

/* softmax; round: the weights rounded to f16 (as kern_round_f16) */
AI void softmax16(float *x, int64_t n, const int round)
{
	__m512 vm = _mm512_set1_ps(-INFINITY);
	for (int64_t i = 0; i < n; i += 16)
		vm = _mm512_max_ps(vm, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY),
							    tail16(n - i), x + i));
	__m512 vmx = _mm512_set1_ps(_mm512_reduce_max_ps(vm)), vs = _mm512_setzero_ps();
	for (int64_t i = 0; i < n; i += 16) {
		__mmask16 k = tail16(n - i);
		__m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vmx)));
		vs = _mm512_add_ps(vs, e);
		_mm512_mask_storeu_ps(x + i, k, e);
	}
	__m512 is = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vs));
	for (int64_t i = 0; i < n; i += 16) {
		__mmask16 k = tail16(n - i);
		__m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), is);
		if (round)
			p = _mm512_cvtph_ps(_mm512_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT |
								 _MM_FROUND_NO_EXC));
		_mm512_mask_storeu_ps(x + i, k, p);
	}
}

static void softmax_avx512(float *x, int64_t n)
{
	softmax16(x, n, 0);
}

static void swiglu_avx512(float *y, const float *g, const float *u, int64_t n)
{
	const __m512 one = _mm512_set1_ps(1.0f);
	for (int64_t i = 0; i < n; i += 16) {
		__mmask16 k = tail16(n - i);
		__m512 vg = _mm512_maskz_loadu_ps(k, g + i), vu = _mm512_maskz_loadu_ps(k, u + i);
		__m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), vg));
		_mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_div_ps(vg, _mm512_add_ps(one, e)), vu));
	}
}

static void geglu_avx512(float *y, const float *g, const float *u, int64_t n)
{
	const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f);
	for (int64_t i = 0; i < n; i += 16) {
		__mmask16 k = tail16(n - i);
		__m512 v = _mm512_maskz_loadu_ps(k, g + i), vu = _mm512_maskz_loadu_ps(k, u + i);
		__m512 t = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), v), v, one);
		t = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f), v), t);
		__m512 th = _mm512_sub_ps(one, _mm512_div_ps(two,
			_mm512_add_ps(exp16(_mm512_mul_ps(two, t)), one)));
		__m512 r = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v),
						       _mm512_add_ps(one, th)), vu);
		_mm512_mask_storeu_ps(y + i, k, r);
	}
}

static void rope_avx512(float *x, int nh, int hd, int nrot, const float *cs,
			int neox)
{
	int half = nrot / 2;
	const float *c = cs, *s = cs + half;
	const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
	for (int h = 0; h < nh; h++) {
		float *v = x + (int64_t)h * hd;
		if (neox) {
			for (int i = 0; i < half; i += 16) {
				__mmask16 k = tail16(half - i);
				__m512 x0 = _mm512_maskz_loadu_ps(k, v + i);
				__m512 x1 = _mm512_maskz_loadu_ps(k, v + i + half);
				__m512 vc = _mm512_maskz_loadu_ps(k, c + i), vs = _mm512_maskz_loadu_ps(k, s + i);
				_mm512_mask_storeu_ps(v + i, k, _mm512_fmsub_ps(x0, vc, _mm512_mul_ps(x1, vs)));
				_mm512_mask_storeu_ps(v + i + half, k, _mm512_fmadd_ps(x0, vs, _mm512_mul_ps(x1, vc)));
			}
		} else {
			for (int i = 0; i < half; i += 8) {
				int left = half - i < 8 ? half - i : 8;
				__mmask16 k8 = (__mmask16)((1u << left) - 1);
				__mmask16 k = (__mmask16)((1u << (2 * left)) - 1);
				__m512 xv = _mm512_maskz_loadu_ps(k, v + 2 * i);
				__m512 vc = _mm512_permutexvar_ps(dup, _mm512_maskz_loadu_ps(k8, c + i));
				__m512 vs = _mm512_permutexvar_ps(dup, _mm512_maskz_loadu_ps(k8, s + i));
				__m512 sw = _mm512_permute_ps(xv, 0xb1);
				_mm512_mask_storeu_ps(v + 2 * i, k, _mm512_fmaddsub_ps(xv, vc, _mm512_mul_ps(sw, vs)));
			}
		}
	}
}

/* ---------------------------------------------------------------------
 * kern_attn: the queries of one KV head against the same rows.
 *
 * Scores, 16 positions at a time: each row's products with q are summed
 * lane-wise over the head's 16-float chunks (in chunk order), and the 16
 * lane vectors of the 16 positions reduce to one vector of 16 scores by a
 * fixed transpose-add tree (no horizontal sum per position). The block's
 * K rows are converted from f16 once, into scratch, for all the queries
 * that have positions in it (read directly when only one has). Then the
 * softmax of each query over its own positions, its weights rounded to
 * f16, and the weighted sum of V rows: tiles of up to 8 queries x 32 or
 * 64 dimensions in registers, each V row converted once per tile; a
 * query's outputs are fma chains over its own positions in order (masked
 * fmas where some queries of the tile have no such position), which is
 * the reference's arithmetic exactly (f16 x f16 products are exact).
 * Nothing of a query depends on the others of the call.
 * --------------------------------------------------------------------- */

/* The reduction tree of 16 vectors to one whose lane r is the sum of the
 * 16 lanes of vector r: pairs (tl1), pairs of pairs (tl2), then halves of
 * 128-bit lanes (tl34), twice. */
AI __m512 tl1(__m512 a, __m512 b)
{
	return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
}

AI __m512 tl2(__m512 a, __m512 b)
{
	__m512d x = _mm512_castps_pd(a), y = _mm512_castps_pd(b);
	return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
			     _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
}

AI __m512 tl34(__m512 a, __m512 b)
{
	return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xdd));
}

/* 16 chunk masks of hd */
AI __mmask16 chunk_mask(int64_t hd, int64_t c)
{
	int64_t left = hd - 16 * c;
	return left <= 0 ? 0 : tail16(left);
}

/* The scores of QT queries (q[j]: C chunks, zero-padded) at 16 rows:
 * lane r of res[j] = dot(q[j], row r). Row r's products are summed
 * lane-wise in chunk order (fma chains from 0), the 16 vectors of the rows
 * then by the tree above, built as the rows come. The rows come from f16
 * (kh[r], KF = 0; converted here, once for the QT queries) or from f32
 * chunk-major kf[(16 c + r) * 16] (KF = 1). Either way the same arithmetic. */
AI void score_tile(const int QT, const int KF, const uint16_t *const *kh,
		   const float *kf, const float *const *q, int64_t hd, __m512 *res)
{
	int64_t C = (hd + 15) / 16, C0 = hd / 16;
	__m512 a0[8], l1[8], l2[8], l3[8];
#pragma GCC unroll 16
	for (int r = 0; r < 16; r++) {
		__m512 acc[8];
#pragma GCC unroll 8
		for (int j = 0; j < QT; j++)
			acc[j] = _mm512_setzero_ps();
		for (int64_t c = 0; c < C; c++) {
			__m512 k = KF ? _mm512_loadu_ps(kf + (16 * c + r) * 16)
				: c < C0 ? _mm512_cvtph_ps(ld256(kh[r] + 16 * c))
				: _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail16(hd - 16 * c),
									   kh[r] + 16 * c));
#pragma GCC unroll 8
			for (int j = 0; j < QT; j++)
				acc[j] = _mm512_fmadd_ps(k, _mm512_loadu_ps(q[j] + 16 * c), acc[j]);
		}
#pragma GCC unroll 8
		for (int j = 0; j < QT; j++) {
			if (!(r & 1)) {
				a0[j] = acc[j];
				continue;
			}
			__m512 x = tl1(a0[j], acc[j]);
			if (!(r & 2)) {
				l1[j] = x;
				continue;
			}
			x = tl2(l1[j], x);
			if (!(r & 4)) {
				l2[j] = x;
				continue;
			}
			x = tl34(l2[j], x);
			if (!(r & 8)) {
				l3[j] = x;
				continue;
			}
			res[j] = tl34(l3[j], x);
		}
	}
}

/* out[d0, d0 + 16 DB) of QB queries: fma chains over rows [lo, hi), each
 * query only at its own [p0, p1); all queries have [a, b) (a >= b: none
 * in common). w[j][t - T0]: query j's weights. */
AI void vtile(const int QB, const int DB, const uint16_t *V, int64_t vstr,
	      const float *const *w, int64_t T0, const int64_t *p0,
	      const int64_t *p1, int64_t lo, int64_t a, int64_t b, int64_t hi,
	      int64_t d0, int64_t hd, float *const *out)
{
	__mmask16 dk[4];
	__m512 o[8][4];
#pragma GCC unroll 4
	for (int u = 0; u < DB; u++)
		dk[u] = chunk_mask(hd - d0, u);
#pragma GCC unroll 8
	for (int j = 0; j < QB; j++)
#pragma GCC unroll 4
		for (int u = 0; u < DB; u++)
			o[j][u] = _mm512_setzero_ps();
	if (a >= b)
		a = b = hi;
	for (int seg = 0; seg < 3; seg++) {
		int64_t s0 = seg == 0 ? lo : seg == 1 ? a : b;
		int64_t s1 = seg == 0 ? a : seg == 1 ? b : hi;
		for (int64_t t = s0; t < s1; t++) {
			const uint16_t *vr = V + t * vstr + d0;
			__m512 v[4];
#pragma GCC unroll 4
			for (int u = 0; u < DB; u++)
				v[u] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(dk[u], vr + 16 * u));
#pragma GCC unroll 8
			for (int j = 0; j < QB; j++) {
				__m512 p = _mm512_set1_ps(w[j][t - T0]);
				if (seg == 1) {
#pragma GCC unroll 4
					for (int u = 0; u < DB; u++)
						o[j][u] = _mm512_fmadd_ps(p, v[u], o[j][u]);
				} else {
					__mmask16 k = (__mmask16)(t >= p0[j] && t < p1[j] ? 0xffff : 0);
#pragma GCC unroll 4
					for (int u = 0; u < DB; u++)
						o[j][u] = _mm512_mask3_fmadd_ps(p, v[u], o[j][u], k);
				}
			}
		}
	}
#pragma GCC unroll 8
	for (int j = 0; j < QB; j++)
#pragma GCC unroll 4
		for (int u = 0; u < DB; u++)
			_mm512_mask_storeu_ps(out[j] + d0 + 16 * u, dk[u], o[j][u]);
}

#define VTILE_CASE(QB, DB)                                                       \
	case QB:                                                                 \
		for (int64_t d0 = 0; d0 < hd; d0 += 16 * DB)                    \
			vtile(QB, DB, V, vstr, w, T0, p0, p1, lo, a, b, hi, d0, hd, \
			      out);                                              \
		break;

static void attn_v(const uint16_t *V, int64_t vstr, int64_t hd, int nt,
		   const float *const *w, int64_t T0, const int64_t *p0,
		   const int64_t *p1, float *const *out)
{
	int64_t lo = p0[0], hi = p1[0], a = p0[0], b = p1[0];
	for (int j = 1; j < nt; j++) {
		lo = p0[j] < lo ? p0[j] : lo;
		a = p0[j] > a ? p0[j] : a;
		hi = p1[j] > hi ? p1[j] : hi;
		b = p1[j] < b ? p1[j] : b;
	}
	switch (nt) {
		VTILE_CASE(1, 4)
		VTILE_CASE(2, 4)
		VTILE_CASE(3, 4)
		VTILE_CASE(4, 4)
		VTILE_CASE(5, 4)
		VTILE_CASE(6, 4)
		VTILE_CASE(7, 2)
		VTILE_CASE(8, 2)
	}
}

/* The same for one query, the 16 rows' chains side by side (q in
 * registers, 4 chunks at a time), reduced at the end by the same tree. */
AI __m512 score16(const int KF, const uint16_t *const *kh, const float *kf,
		  const float *q, int64_t hd)
{
	__m512 acc[16];
	int64_t C = (hd + 15) / 16, C0 = hd / 16, c = 0;
#pragma GCC unroll 16
	for (int r = 0; r < 16; r++)
		acc[r] = _mm512_setzero_ps();
	for (; c + 4 <= C; c += 4) {
		__m512 qv[4];
#pragma GCC unroll 4
		for (int u = 0; u < 4; u++)
			qv[u] = _mm512_loadu_ps(q + 16 * (c + u));
#pragma GCC unroll 16
		for (int r = 0; r < 16; r++)
#pragma GCC unroll 4
			for (int u = 0; u < 4; u++) {
				__m512 k = KF ? _mm512_loadu_ps(kf + (16 * (c + u) + r) * 16)
					: c + u < C0 ? _mm512_cvtph_ps(ld256(kh[r] + 16 * (c + u)))
					: _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(
						  tail16(hd - 16 * (c + u)), kh[r] + 16 * (c + u)));
				acc[r] = _mm512_fmadd_ps(k, qv[u], acc[r]);
			}
	}
	for (; c < C; c++) {
		__m512 qv = _mm512_loadu_ps(q + 16 * c);
#pragma GCC unroll 16
		for (int r = 0; r < 16; r++) {
			__m512 k = KF ? _mm512_loadu_ps(kf + (16 * c + r) * 16)
				: c < C0 ? _mm512_cvtph_ps(ld256(kh[r] + 16 * c))
				: _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail16(hd - 16 * c),
									   kh[r] + 16 * c));
			acc[r] = _mm512_fmadd_ps(k, qv, acc[r]);
		}
	}
	__m512 b[8], d[4];
#pragma GCC unroll 8
	for (int r = 0; r < 8; r++)
		b[r] = tl1(acc[2 * r], acc[2 * r + 1]);
#pragma GCC unroll 4
	for (int r = 0; r < 4; r++)
		d[r] = tl2(b[2 * r], b[2 * r + 1]);
	return tl34(tl34(d[0], d[1]), tl34(d[2], d[3]));
}

#define SCORE_CASE(QT)                                                   \
	case QT:                                                         \
		score_tile(QT, 0, kh, NULL, q, hd, res);                 \
		break;

/* a tile of QT queries, the rows from f16 */
static void scores_n(int QT, const uint16_t *const *kh, const float *const *q,
		     int64_t hd, __m512 *res)
{
	switch (QT) {
		SCORE_CASE(2)
		SCORE_CASE(3)
		SCORE_CASE(4)
		SCORE_CASE(5)
	default:
		res[0] = score16(0, kh, NULL, q[0], hd);
	}
}

/* Prefetch the hd halves of rows [t0, t1) (a KV cache row holds other
 * heads too: decoding reads it from memory, in strides) into L1 (l1) or
 * L2. */
static inline void pf_rows(const uint16_t *X, int64_t str, int64_t t0, int64_t t1,
			   int64_t hd, int l1)
{
	for (int64_t t = t0; t < t1; t++) {
		const char *a = (const char *)(X + t * str);
		uintptr_t first = (uintptr_t)a & ~(uintptr_t)63;
		for (uintptr_t p = first; p < (uintptr_t)(a + 2 * hd); p += 64) {
			if (l1)
				_mm_prefetch((const char *)p, _MM_HINT_T0);
			else
				_mm_prefetch((const char *)p, _MM_HINT_T1);
		}
	}
}

/* blocks of 16 K rows prefetched ahead of the scores */
#define ATTN_PF_BLOCKS 4

/* queries that share a block of rows beyond this many take its rows
 * converted to f32 once (stores and loads) rather than once per tile */
#define ATTN_KF_MIN 6

/* query j's scores at scratch[j * ld + (t - T0)], rows [T0, T1); qp: the
 * queries zero-padded to C chunks; kf: 16 C chunks of 16 floats */
static void attn_scores(const uint16_t *K, const uint16_t *V, int64_t kstr, int64_t hd,
			float scale, const kern_attn_q *qs, int nq, const float *qp,
			float *kf, float *scratch, int64_t ld, int64_t T0, int64_t T1)
{
	int64_t C = (hd + 15) / 16, ahead = 16 * ATTN_PF_BLOCKS;
	const __m512 vscale = _mm512_set1_ps(scale);
	pf_rows(K, kstr, T0, T0 + ahead < T1 ? T0 + ahead : T1, hd, 1);
	for (int64_t tb = T0; tb < T1; tb += 16) {
		/* K rows ahead; V rows for after the softmax */
		int64_t pa = tb + ahead, pb = tb + ahead + 16;
		if (pa < T1)
			pf_rows(K, kstr, pa, pb < T1 ? pb : T1, hd, 1);
		pf_rows(V, kstr, tb, tb + 16 < T1 ? tb + 16 : T1, hd, 0);
		const uint16_t *kh[16];
		for (int r = 0; r < 16; r++)
			kh[r] = K + (tb + r < T1 ? tb + r : T1 - 1) * kstr;
		int users[64], nu = 0;
		for (int j0 = 0; j0 < nq;) {
			for (nu = 0; j0 < nq && nu < 64; j0++)
				if (qs[j0].p0 < tb + 16 && qs[j0].p1 > tb)
					users[nu++] = j0;
			if (nu >= ATTN_KF_MIN) {
				for (int64_t c = 0; c < C; c++)
					for (int r = 0; r < 16; r++)
						_mm512_storeu_ps(kf + (16 * c + r) * 16,
								 _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(
									 chunk_mask(hd, c), kh[r] + 16 * c)));
				for (int k = 0; k < nu; k++) {
					const float *q = qp + (size_t)users[k] * (size_t)(16 * C);
					_mm512_storeu_ps(scratch + (size_t)users[k] * (size_t)ld + (tb - T0),
							 _mm512_mul_ps(score16(1, kh, kf, q, hd), vscale));
				}
				continue;
			}
			int ntiles = (nu + 4) / 5;
			for (int ti = 0, k = 0; ti < ntiles; ti++) {
				int nt = (nu - k) / (ntiles - ti);
				nt += (nu - k) % (ntiles - ti) != 0;
				const float *q[5];
				__m512 res[5];
				for (int i = 0; i < nt; i++)
					q[i] = qp + (size_t)users[k + i] * (size_t)(16 * C);
				scores_n(nt, kh, q, hd, res);
				for (int i = 0; i < nt; i++, k++)
					_mm512_storeu_ps(scratch + (size_t)users[k] * (size_t)ld + (tb - T0),
							 _mm512_mul_ps(res[i], vscale));
			}
		}
	}
}

/* outputs from the weights, in tiles of up to 8 queries (balanced) */
static void attn_outputs(const uint16_t *V, int64_t vstr, int64_t hd,
			 const kern_attn_q *qs, int nq, const float *scratch,
			 int64_t ld, int64_t T0)
{
	const float *w[8];
	int64_t p0[8], p1[8];
	float *out[8];
	int live[64];
	for (int j0 = 0; j0 < nq;) {
		int nl = 0, j = j0;
		for (; j < nq && nl < 64; j++) {
			if (qs[j].p1 > qs[j].p0)
				live[nl++] = j;
			else
				memset(qs[j].out, 0, (size_t)hd * sizeof(float));
		}
		int ntiles = (nl + 7) / 8;
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
			attn_v(V, vstr, hd, nt, w, T0, p0, p1, out);
		}
		j0 = j;
	}
}

static void attn_avx512(const uint16_t *K, const uint16_t *V, size_t stride,
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
	if (T1 <= T0) {
		for (int j = 0; j < nq; j++)
			memset(qs[j].out, 0, (size_t)hd * sizeof(float));
		return;
	}
	/* scratch: scores (nq rows of ld), the queries padded (nq x C
	 * chunks), 16 rows of K as f32 (C chunks) */
	int64_t ld = (T1 - T0 + 15) & ~(int64_t)15, C = (hd + 15) / 16;
	float *qp = scratch + (size_t)nq * (size_t)ld;
	float *kf = qp + (size_t)nq * (size_t)(16 * C);
	for (int j = 0; j < nq; j++)
		for (int64_t c = 0; c < C; c++)
			_mm512_storeu_ps(qp + (size_t)j * (size_t)(16 * C) + 16 * c,
					 _mm512_maskz_loadu_ps(chunk_mask(hd, c), qs[j].q + 16 * c));
	attn_scores(K, V, str, hd, scale, qs, nq, qp, kf, scratch, ld, T0, T1);
	for (int j = 0; j < nq; j++) /* weights, query by query */
		if (qs[j].p1 > qs[j].p0)
			softmax16(scratch + (size_t)j * (size_t)ld + (qs[j].p0 - T0),
				  qs[j].p1 - qs[j].p0, 1);
	attn_outputs(V, str, hd, qs, nq, scratch, ld, T0);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

/* bf16 x bf16 dot products (AVX512_BF16: Zen 4+, Cooper Lake, Sapphire
 * Rapids): 32 products per vdpbf16ps. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512bf16"))), apply_to = function)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")
#pragma GCC optimize("fp-contract=off")
#endif

AI void mmbf_tile(const int T, const int R, const int C, int64_t n,
		  const uint8_t *W, size_t rb, const uint8_t *A, size_t as,
		  float *y, int64_t ldy)
{
	(void)T;
	__m512 acc[4][4][2];
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < C; c++)
			acc[r][c][0] = acc[r][c][1] = _mm512_setzero_ps();
	for (int64_t i = 0; i < n; i += 64) {
		int64_t left = n - i;
		__mmask32 k0 = left >= 32 ? 0xffffffffu : (__mmask32)((1ull << left) - 1);
		__mmask32 k1 = left >= 64 ? 0xffffffffu : left <= 32 ? 0 :
			       (__mmask32)((1ull << (left - 32)) - 1);
		__m512bh a0[4], a1[4];
#pragma GCC unroll 4
		for (int c = 0; c < C; c++) {
			a0[c] = (__m512bh)_mm512_maskz_loadu_epi16(k0, A + c * as + 2 * i);
			a1[c] = (__m512bh)_mm512_maskz_loadu_epi16(k1, A + c * as + 2 * (i + 32));
		}
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			__m512bh w0 = (__m512bh)_mm512_maskz_loadu_epi16(k0, W + r * rb + 2 * i);
			__m512bh w1 = (__m512bh)_mm512_maskz_loadu_epi16(k1, W + r * rb + 2 * (i + 32));
#pragma GCC unroll 4
			for (int c = 0; c < C; c++) {
				acc[r][c][0] = _mm512_dpbf16_ps(acc[r][c][0], w0, a0[c]);
				acc[r][c][1] = _mm512_dpbf16_ps(acc[r][c][1], w1, a1[c]);
			}
		}
	}
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < C; c++)
			y[c * ldy + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][c][0], acc[r][c][1]));
}

MM_DRIVER(mm_bf16_dp, mmbf_tile, KT_BF16)

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

int kern_avx512_built(void)
{
	return 1;
}

void kern_avx512_fill(kern_ops *o, int has_bf16)
{
	o->name = "avx512";
	o->matmul[KT_F32] = mm_f32;
	o->matmul[KT_F16] = mm_f16;
	o->matmul[KT_BF16] = has_bf16 ? mm_bf16_dp : mm_bf16;
	o->matmul[KT_Q4_0] = mt_q4_0;
	o->matmul[KT_Q4_1] = mt_q4_1;
	o->matmul[KT_Q5_0] = mt_q5_0;
	o->matmul[KT_Q5_1] = mt_q5_1;
	o->matmul[KT_Q8_0] = mt_q8_0;
	o->matmul[KT_Q4_K] = mt_q4_k;
	o->matmul[KT_Q5_K] = mt_q5_k;
	o->matmul[KT_Q6_K] = mt_q6_k;
	o->matmul_t[KT_Q4_0] = mt_q4_0_t;
	o->matmul_t[KT_Q4_1] = mt_q4_1_t;
	o->matmul_t[KT_Q5_0] = mt_q5_0_t;
	o->matmul_t[KT_Q5_1] = mt_q5_1_t;
	o->matmul_t[KT_Q8_0] = mt_q8_0_t;
	o->matmul_t[KT_Q4_K] = mt_q4_k_t;
	o->matmul_t[KT_Q5_K] = mt_q5_k_t;
	o->matmul_t[KT_Q6_K] = mt_q6_k_t;
	o->quant_act[KT_Q4_0] = qa512_q4_0;
	o->quant_act[KT_Q4_1] = qa512_min;
	o->quant_act[KT_Q5_0] = qa512_q5_0;
	o->quant_act[KT_Q5_1] = qa512_min;
	o->quant_act[KT_Q8_0] = qa512_q8_0;
	o->rmsnorm = rmsnorm_avx512;
	o->softmax = softmax_avx512;
	o->swiglu = swiglu_avx512;
	o->geglu = geglu_avx512;
	o->rope = rope_avx512;
	o->attn = attn_avx512;
}

#else /* not x86 */

int kern_avx512_built(void)
{
	return 0;
}

void kern_avx512_fill(kern_ops *o, int has_bf16)
{
	(void)o;
	(void)has_bf16;
}

#endif
