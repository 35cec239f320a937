/*
 * kern_blocks.h - internal to the kernels: GGUF (ggml) weight block layouts,
 * the activation buffer layouts, half/bfloat16 conversions in plain C, and
 * the reference functions the SIMD variants fall back to.
 *
 * Weight blocks (little-endian, byte offsets; "f16" is an IEEE half):
 *   q4_0  18 B / 32: f16 d @0, qs[16] @2    x[j] = d (lo(qs[j]) - 8),
 *                                            x[j+16] = d (hi(qs[j]) - 8)
 *   q4_1  20 B / 32: f16 d @0, f16 m @2, qs[16] @4      x = d q + m
 *   q5_0  22 B / 32: f16 d @0, u32 qh @2, qs[16] @6     5th bit of x[j] is
 *                    bit j of qh                          x = d (q - 16)
 *   q5_1  24 B / 32: f16 d @0, f16 m @2, u32 qh @4, qs[16] @8   x = d q + m
 *   q8_0  34 B / 32: f16 d @0, i8 qs[32] @2             x = d q
 *   q2_K  84 B / 256: scales[16] @0 (lo 4 bits scale, hi 4 bits min),
 *                     qs[64] @16, f16 d @80, f16 dmin @82
 *   q3_K 110 B / 256: hmask[32] @0, qs[64] @32, scales[12] @96 (16 6-bit),
 *                     f16 d @108
 *   q4_K 144 B / 256: f16 d @0, f16 dmin @2, scales[12] @4 (8 6-bit scales,
 *                     8 6-bit mins), qs[128] @16
 *   q5_K 176 B / 256: as q4_K, then qh[32] @16, qs[128] @48
 *   q6_K 210 B / 256: ql[128] @0, qh[64] @128, i8 scales[16] @192, f16 d @208
 *
 * Activation buffers (n elements; every array starts where stated):
 *   A32 (32-element types, nb = n/32): f32 d[nb] @0, i32 s[nb] @4nb
 *       (s = sum of the block's qs), i8 qs[n] @align64(8nb), then for the
 *       SIMD kernels, 8 lanes per block (a 256-bit vector per block, a
 *       512-bit one per pair): f32 dl[8nb] (d repeated), and aux[8nb]: for
 *       q4_0, q5_0, q8_0 the i32 -s*off/8 (off = 8, 16, 128: the weights'
 *       offset, 128 for q8_0 made unsigned) so that lanes started from it
 *       sum to the block's dot; for q4_1, q5_1 the f32 d*s/8 (the min term)
 *   AK  (k-quants, nb = n/256): f32 d[nb] @0, i16 bsums[16 nb] @4nb
 *       (sums of each 16 qs), i8 qs[n] @align64(36nb)
 *   F32 f32[n]; BF16 u16[n]
 * Every buffer is rounded up to a multiple of 64 bytes.
 */
#ifndef SLM_KERN_BLOCKS_H
#define SLM_KERN_BLOCKS_H

#include <stdint.h>
#include <string.h>

#include "kern.h"

/* GGUF type ids used by the kernels */
enum {
	KT_F32 = 0, KT_F16 = 1, KT_Q4_0 = 2, KT_Q4_1 = 3, KT_Q5_0 = 6,
	KT_Q5_1 = 7, KT_Q8_0 = 8, KT_Q2_K = 10, KT_Q3_K = 11, KT_Q4_K = 12,
	KT_Q5_K = 13, KT_Q6_K = 14, KT_BF16 = 30
};

#define QK 32	/* elements of a 32-element block */
#define QKK 256 /* elements of a k-quant super-block */

static inline size_t kb_align64(size_t x) { return (x + 63) & ~(size_t)63; }

/* A32 layout */
static inline size_t a32_qs_off(int64_t nb) { return kb_align64((size_t)nb * 8); }
static inline size_t a32_dl_off(int64_t nb)
{
	return a32_qs_off(nb) + kb_align64((size_t)nb * QK);
}
static inline size_t a32_aux_off(int64_t nb)
{
	return a32_dl_off(nb) + (size_t)nb * 32;
}
static inline size_t a32_bytes(int64_t n)
{
	return kb_align64(a32_aux_off(n / QK) + (size_t)(n / QK) * 32);
}
/* AK layout */
static inline size_t ak_bs_off(int64_t nb) { return (size_t)nb * 4; }
static inline size_t ak_qs_off(int64_t nb) { return kb_align64((size_t)nb * 36); }
static inline size_t ak_bytes(int64_t n) { return ak_qs_off(n / QKK) + (size_t)n; }

static inline uint16_t kb_ld16(const void *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

static inline uint32_t kb_ld32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static inline float kb_bits_f32(uint32_t b)
{
	float f;
	memcpy(&f, &b, 4);
	return f;
}

static inline uint32_t kb_f32_bits(float f)
{
	uint32_t b;
	memcpy(&b, &f, 4);
	return b;
}

/* IEEE half -> float, exact (subnormals, infinities, NaN included). */
static inline float kb_h2f(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
	if (e == 0)
		return kb_bits_f32(kb_f32_bits((float)m * 0x1p-24f) | sign);
	if (e == 31)
		return kb_bits_f32(sign | 0x7f800000 | (m << 13));
	return kb_bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

/* float -> IEEE half, round to nearest even (as F16C's vcvtps2ph). */
static inline uint16_t kb_f2h(float f)
{
	uint32_t x = kb_f32_bits(f);
	uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
	uint32_t ax = x & 0x7fffffff;
	if (ax > 0x7f800000) /* NaN: keep it quiet */
		return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x3ff);
	if (ax >= 0x477ff000) /* >= 65520 rounds to infinity */
		return sign | 0x7c00;
	if (ax < 0x38800000) { /* below 2^-14: a subnormal half (or zero) */
		float a = kb_bits_f32(ax) * 0x1p24f; /* exact */
		float r = (a + 0x1p23f) - 0x1p23f;   /* round to even */
		return sign | (uint16_t)r;
	}
	ax += 0xfff + ((ax >> 13) & 1);
	return sign | (uint16_t)((ax >> 13) - (112 << 10));
}

static inline float kb_bf2f(uint16_t h) { return kb_bits_f32((uint32_t)h << 16); }

/* float -> bfloat16, round to nearest even (NaN stays NaN). */
static inline uint16_t kb_f2bf(float f)
{
	uint32_t x = kb_f32_bits(f);
	if ((x & 0x7fffffff) > 0x7f800000)
		return (uint16_t)((x >> 16) | 0x40);
	return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* The 8 6-bit scales (out[0..7]) and 8 6-bit mins (out[8..15]) of a
 * q4_K/q5_K block, from its 12 scale bytes: scale j < 4 is the low 6 bits
 * of byte j, min j < 4 of byte j+4; for j >= 4 the low (scale) or high
 * (min) nibble of byte j+4 with the top 2 bits of byte j-4 (scale) or j
 * (min) above it. Four at a time in 32-bit words. */
static inline void kb_scales_k4(const uint8_t *s12, uint8_t out[16])
{
	uint32_t a = kb_ld32(s12), b = kb_ld32(s12 + 4), c = kb_ld32(s12 + 8);
	uint32_t u[4];
	u[0] = a & 0x3f3f3f3f;
	u[1] = (c & 0x0f0f0f0f) | (((a >> 6) & 0x03030303) << 4);
	u[2] = b & 0x3f3f3f3f;
	u[3] = ((c >> 4) & 0x0f0f0f0f) | (((b >> 6) & 0x03030303) << 4);
	memcpy(out, u, 16);
}

/* The 16 signed 6-bit scales of a q3_K block (already minus 32). */
static inline void kb_scales_q3k(const uint8_t *s12, int8_t *sc)
{
	for (int j = 0; j < 16; j++) {
		int lo = (j < 8 ? s12[j] : s12[j - 8] >> 4) & 0xf;
		int hi = (s12[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
		sc[j] = (int8_t)((lo | hi << 4) - 32);
	}
}

/* The reference table and the reference functions a SIMD table reuses. */
extern const kern_ops kern_ref_ops;

/* SIMD tables: filled from the reference, then overridden (kern.c calls
 * these only when the CPU supports the instruction set). */
void kern_avx2_fill(kern_ops *ops);
void kern_avx512_fill(kern_ops *ops, int has_bf16);
int kern_avx2_built(void);
int kern_avx512_built(void);

#endif
