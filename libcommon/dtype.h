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

#endif
