/*
 * dtype.h - tensor element types: names, GGUF (ggml) type ids and block
 * layouts. One table serves the bundle, GGUF and the kernels.
 */
#ifndef SLM_DTYPE_H
#define SLM_DTYPE_H

#include <stdint.h>

typedef struct slm_dtype {
	const char *name;      /* bundle name: "f32", "q4_k", ... */
	int ggml_id;           /* GGUF tensor type id */
	uint32_t block_elems;  /* elements per block */
	uint32_t block_bytes;  /* bytes per block */
} slm_dtype;

/* By name (case-insensitive) or GGUF id; NULL if unknown. */
const slm_dtype *dtype_by_name(const char *name);
const slm_dtype *dtype_by_ggml(uint32_t id);

/* Bytes of a tensor whose innermost dimension is ne0 and element count is
 * nelems: -1 if ne0 is not a multiple of the block size or on overflow. */
int dtype_nbytes(const slm_dtype *t, uint64_t ne0, uint64_t nelems,
		 uint64_t *nbytes);

/* The "tile16" layout of a 2-D matrix of a block type (q4_0, q4_1, q5_0,
 * q5_1, q8_0, q4_k, q5_k, q6_k): rows in tiles of 16, each tile in the
 * bytes its 16 rows take in the plain (GGUF) layout, block column by
 * block column. The 16 blocks of a column, bb bytes each, are stored as:
 * the 16 rows' 2-byte scale d when bb is 2 mod 4 (at block offset 0 for
 * q4_0, q5_0 and q8_0, at 208 for q6_k), then for each 4-byte word k of
 * the block's remaining bytes in order, word k of rows 0..15 (a 16 x
 * bb/4 transpose of words): a 64-byte load gives one word of 16 rows, as
 * the AVX-512 kernels consume them. Rows past the last whole tile (nrows
 * mod 16) stay plain. */
#define DTYPE_TILE 16
/* 1 if the type has the tile16 layout. */
int dtype_tileable(const slm_dtype *t);
/* Plain rows [0, nrows) of n elements (src) into the tile16 layout (dst,
 * the same size; no overlap). */
void dtype_tile(const slm_dtype *t, int64_t n, int64_t nrows, const void *src,
		void *dst);
/* Rows [r0, r1) of a tile16 matrix of nrows rows (W) into plain rows
 * (dst, (r1 - r0) rows). */
void dtype_untile_rows(const slm_dtype *t, int64_t n, int64_t nrows, const void *W,
		       int64_t r0, int64_t r1, void *dst);

#endif
