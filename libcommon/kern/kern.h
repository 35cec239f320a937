/*
 * kern.h - numeric kernels of the model: dequantization, matrix-vector and
 * matrix-matrix products directly on GGUF weight blocks, and the float
 * helpers of a transformer step (norm, softmax, gated activations, RoPE,
 * attention over an f16 KV cache).
 *
 * Every operation has a plain C reference ("ref", builds everywhere) and
 * SIMD variants chosen once at run time from what the CPU supports:
 * "avx2" (AVX2, FMA, F16C) and "avx512" (AVX-512 F/BW/DQ/VL/VNNI, and BF16
 * where present). SLM_KERNEL=ref|avx2|avx512 forces one (an unavailable
 * choice falls back to the best available one, with a warning on stderr).
 * The SIMD files are compiled with target pragmas: the build needs no -m
 * flags, and on other architectures they compile to nothing.
 *
 * Matrix products: activations are quantized once per matmul into the
 * format paired with the weight type (kern_act_bytes / kern_quant_act) and
 * reused for every row:
 *   q4_0 q4_1 q5_0 q5_1 q8_0   32-element int8 blocks, scale half(amax/127)
 *                              kept as f32, and the block's integer sum
 *                              (q4_1/q5_1: half(amax/127 * sum) as f32),
 *                              both also spread over 8 lanes for the SIMD
 *                              kernels: llama.cpp's q8_0/q8_1
 *   q2_k ... q6_k              256-element int8 blocks with the f32 scale
 *                              1/(127/amax) and int16 sums of each 16
 *                              elements: llama.cpp's q8_K
 *   f32                        f32 (a copy)
 *   f16                        f32 values rounded to f16 (as llama.cpp)
 *   bf16                       bf16 (round to nearest even)
 * The layout of an activation buffer is internal (see kern_blocks.h); a
 * buffer is kern_act_bytes() long, a multiple of 64 bytes. Kernels never
 * allocate; buffers need no particular alignment (64 bytes is faster).
 *
 * Weight matrices: rows of n elements, contiguous, each
 * n / block_elems * block_bytes bytes (the GGUF layout of a 2-D tensor),
 * or in the tile16 layout (dtype.h), read through kern_mat: the AVX-512
 * variant has kernels for it (one sequential stream of weights, no
 * transposes); the others, and rows of a tile a call covers only in part,
 * take each tile's rows back to the plain layout in a per-thread buffer.
 * Results are bit for bit those of the plain layout in every variant.
 */
#ifndef SLM_KERN_H
#define SLM_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

/* Largest GGUF type id + 1: kern_ops tables are indexed by slm_dtype.ggml_id. */
#define KERN_NTYPES 40

/* One query of kern_attn: its vector (hd floats), its output (hd floats,
 * overwritten) and its positions [p0, p1) among the call's K/V rows. */
typedef struct kern_attn_q {
	const float *q;
	float *out;
	int64_t p0, p1;
} kern_attn_q;

typedef struct kern_ops {
	const char *name; /* "ref", "avx2", "avx512" */

	/* dst[0..n) = weights src (n a multiple of the block size) */
	void (*dequant[KERN_NTYPES])(const void *src, float *dst, int64_t n);
	/* activation quantizer of a weight type (same bytes in every variant) */
	void (*quant_act[KERN_NTYPES])(const float *x, void *act, int64_t n);
	/* y[b * ldy + r] = dot(row r of W, activation b) for r < nrows, b < B;
	 * row r at W + r * row_bytes, activation b at acts + b * act_stride */
	void (*matmul[KERN_NTYPES])(int64_t n, const void *W, size_t row_bytes,
				    int64_t nrows, const void *acts,
				    size_t act_stride, int B, float *y,
				    int64_t ldy);
	/* the same on whole tiles of the tile16 layout (nrows a multiple of
	 * 16, W at a tile); NULL where the variant has none */
	void (*matmul_t[KERN_NTYPES])(int64_t n, const void *W, size_t row_bytes,
				      int64_t nrows, const void *acts,
				      size_t act_stride, int B, float *y,
				      int64_t ldy);

	void (*rmsnorm)(float *y, const float *x, const float *w, int64_t n,
			float eps);
	void (*softmax)(float *x, int64_t n);
	void (*swiglu)(float *y, const float *g, const float *u, int64_t n);
	void (*geglu)(float *y, const float *g, const float *u, int64_t n);
	void (*rope)(float *x, int nh, int hd, int nrot, const float *cs,
		     int neox);
	void (*f32_to_f16)(uint16_t *dst, const float *src, int64_t n);
	void (*attn)(const uint16_t *K, const uint16_t *V, size_t stride,
		     int64_t hd, float scale, const kern_attn_q *qs,
		     int nq, float *scratch);
} kern_ops;

/* Detect the CPU and pick the variant (honours SLM_KERNEL). Idempotent;
 * thread-safe; every function below calls it if needed. */
void kern_init(void);
const char *kern_variant_name(void);
/* The table of a variant ("ref", "avx2", "avx512"), or NULL if unknown or
 * this CPU (or this build) cannot run it. */
const kern_ops *kern_ops_for(const char *variant);
/* The table in use. */
const kern_ops *kern_ops_current(void);

/* 1 if the weight type has kernels (dequant, matvec); 0 otherwise. */
int kern_supported(const slm_dtype *t);

/* Dequantize n elements (a multiple of the type's block size). */
void kern_dequant(const slm_dtype *t, const void *src, float *dst, int64_t n);

/* Bytes of the activation buffer for weight type wt and n elements
 * (n a multiple of wt's block size); a multiple of 64. */
size_t kern_act_bytes(const slm_dtype *wt, int64_t n);
void kern_quant_act(const slm_dtype *wt, const float *x, void *act, int64_t n);

/* y[r - r0] = dot(row r of W, act) for r in [r0, r1). */
void kern_matvec(const slm_dtype *wt, const void *W, int64_t n,
		 const void *act, float *y, int64_t r0, int64_t r1);
/* B activations at once (acts[b] kern_act_bytes(wt, n) apart):
 * y[b * ldy + (r - r0)] = dot(row r of W, act b) for r in [r0, r1).
 * Each weight block is read once per tile of up to 4 activations.
 * Batch and split invariant, in every variant: y of (row r, activation b)
 * is bit for bit what kern_matvec of activation b alone gives for row r,
 * whatever B, b's place among them, and the range [r0, r1) around r
 * (kern_matvec likewise over any range). */
void kern_matmul(const slm_dtype *wt, const void *W, int64_t n,
		 const void *acts, int B, float *y, int64_t ldy, int64_t r0,
		 int64_t r1);

/* A weight matrix: nrows rows of n elements of type t at w, plain or
 * (tiled, for dtype_tileable types) in the tile16 layout. */
typedef struct kern_mat {
	const slm_dtype *t;
	const void *w;
	int64_t n, nrows;
	int tiled;
} kern_mat;
/* kern_matmul (B >= 1) of a kern_mat: y[b * ldy + (r - r0)] for r in
 * [r0, r1), the same bits as the plain layout gives. Ranges starting at a
 * multiple of 16 (or the matrix's end) take the tiled kernels whole. */
void kern_mat_mul(const kern_mat *m, const void *acts, int B, float *y, int64_t ldy,
		  int64_t r0, int64_t r1);
/* Rows [r0, r1) dequantized to f32 (dst: (r1 - r0) * n floats). */
void kern_mat_dequant(const kern_mat *m, int64_t r0, int64_t r1, float *dst);

/* y = x / sqrt(mean(x^2) + eps) * w (w may be NULL; y may be x). */
void kern_rmsnorm(float *y, const float *x, const float *w, int64_t n,
		  float eps);
/* In place: x = exp(x - max) / sum (-INFINITY entries give 0). */
void kern_softmax(float *x, int64_t n);
/* y = silu(g) * u and y = gelu(g) * u, gelu with the tanh approximation
 * 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))). y may be g or u. */
void kern_swiglu(float *y, const float *g, const float *u, int64_t n);
void kern_geglu(float *y, const float *g, const float *u, int64_t n);
/* Rotate the first nrot dimensions of each of nh heads of hd floats in x.
 * cs: cos[nrot/2] then sin[nrot/2] for this position (frequency i pairs
 * x[2i], x[2i+1] in normal order, x[i], x[i + nrot/2] in NeoX order). */
void kern_rope(float *x, int nh, int hd, int nrot, const float *cs,
	       int neox);
/* The whole attention of nq queries that share one KV head of an f16 cache
 * (a GQA group of heads, and/or consecutive entries of one sequence): for
 * each query j, over the rows t in [p0, p1) of that query (K_t = (char *)K
 * + t * stride, V_t likewise, hd halves each):
 *   s[t] = scale * dot(q, K_t); softmax over those s; each weight rounded
 *   to f16 (kern_round_f16); out[0..hd) = sum over t of s[t] * V_t.
 * Rows outside a query's [p0, p1) do not contribute (they may hold
 * anything, NaN included, if no query of the call has them); p1 > p0 >= 0.
 * The "ref" variant is exactly this, in float, each product and sum
 * rounded on its own (no fused multiply-add): the dot of row t sums the
 * products q[i] * K_t[i] into 8 lanes, lane i mod 8, in order of i, and
 * adds the lanes as ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)),
 * then times scale; the softmax is kern_softmax of the reference set; and
 * out[i], from 0, adds s[t] * V_t[i] in order of t. In every variant the
 * result of a query depends only on its own q, rows, p0 and p1: not on
 * the other queries of the call nor on their number.
 * scratch: kern_attn_scratch(nq, span, hd) floats, span >= max p1 - min
 * p0 over the queries. */
void kern_attn(const uint16_t *K, const uint16_t *V, size_t stride,
	       int64_t hd, float scale, const kern_attn_q *qs, int nq,
	       float *scratch);
size_t kern_attn_scratch(int nq, int64_t span, int64_t hd);
/* IEEE half, round to nearest even (for writing an f16 KV cache). */
void kern_f32_to_f16(uint16_t *dst, const float *src, int64_t n);
/* x[i] = the f32 value of x[i] rounded to an IEEE half (nearest even):
 * what a float meets an f16 operand as in llama.cpp's f16 products. */
void kern_round_f16(float *x, int64_t n);

#endif
