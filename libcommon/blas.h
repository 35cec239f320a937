/*
 * blas.h - BLIS for the matrix-matrix products of the forward pass (prompt
 * processing, large batches): the BLIS sub-configuration chosen for the
 * CPU at start-up, and products of weight row ranges with f32 activations
 * computed by sgemm on dequantized row tiles.
 *
 * BLIS never starts threads of its own here: each pool thread calls it on
 * its own rows with one BLIS thread, so BLIS runs inside the pool's budget.
 */
#ifndef SLM_BLAS_H
#define SLM_BLAS_H

#include <stddef.h>
#include <stdint.h>

#include "bundle.h"
#include "dtype.h"
#include "kern/kern.h"

/* A 2-D tensor (rows of ne[0]) as the kernels take it, in its layout. */
static inline kern_mat tensor_kmat(const slm_tensor *t)
{
	kern_mat m = { t->dtype, t->data, (int64_t)t->ne[0],
		       (int64_t)(t->nelems / t->ne[0]), t->tiled };
	return m;
}

/* Choose BLIS's sub-configuration from the CPU (unless BLIS_ARCH_TYPE is
 * set), initialise BLIS and check its choice. Call before any other BLIS
 * call; later calls only return the result of the first. desc (may be
 * NULL) receives a description for --verbose, e.g. "blis 0.9.0 zen3
 * (set by slm: AMD family 19h)". verbose: also print it on stderr.
 * Returns 0, or -1 if BLIS runs a sub-configuration other than the one
 * asked for (it still works, possibly slower). Thread-safe. */
int blas_setup(int verbose, char *desc, size_t desclen);

/* Smallest batch (activation rows) from which products with weights of
 * type t are faster through blas_gemm_rows than through the kernels'
 * kern_matmul; INT_MAX: never (see the table in blas.c).
 * SLM_BLAS_MIN_BATCH=N in the environment sets N for every type with
 * kernels (0: never), for experiments and tests. */
int blas_min_batch(const slm_dtype *t);

/* Floats of scratch blas_gemm_rows needs (per thread) for rows of n
 * elements of type t: a tile of dequantized rows (0 for f32). */
size_t blas_scratch_floats(const slm_dtype *t, int64_t n);

/* Y[b * ldy + (r - r0)] = dot(row r of w, X + b * ldx) for r in [r0, r1),
 * b < B: single-threaded sgemm (call from several threads on disjoint row
 * ranges). X holds B rows of w->ne[0] floats. Weights other than f32 are
 * dequantized into scratch (at least one row; blas_scratch_floats() is
 * the size that keeps BLIS efficient; 64-byte aligned is best) a tile of
 * rows at a time. */
void blas_gemm_rows(const slm_tensor *w, const float *X, int64_t ldx, int B,
		    float *Y, int64_t ldy, int64_t r0, int64_t r1,
		    float *scratch, size_t scratch_floats);

/* The same, in arithmetic that does not depend on B, on r0 and r1 or on
 * the tiling: BLIS picks for each call, by its sizes, either its packed
 * code or its small-matrix code, which sum in another order (on the
 * haswell sub-configuration a row of X gets other bits at B = 300 than
 * at B <= 7); this always takes the packed code, where every element is
 * the same sum in the same order. Slower than blas_gemm_rows on small
 * products. */
void blas_gemm_rows_exact(const slm_tensor *w, const float *X, int64_t ldx, int B,
			  float *Y, int64_t ldy, int64_t r0, int64_t r1,
			  float *scratch, size_t scratch_floats);

#endif
