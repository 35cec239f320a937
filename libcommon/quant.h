/*
 * quant.h - weight quantization: f32 rows into GGUF (ggml) blocks, byte for
 * byte what llama.cpp's reference quantizers (ggml-quants.c) write, with and
 * without an importance matrix; llama.cpp's quantization recipes (Q4_K_M
 * and friends: which tensor gets which type); importance-matrix files.
 *
 * Produced types: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k
 * q6_k. The block layouts are in kern/kern_blocks.h; kern_dequant reads
 * them back.
 */
#ifndef SLM_QUANT_H
#define SLM_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "util.h"

/* 1 if quant_rows can write type t. */
int quant_supported(const slm_dtype *t);
/* 1 if type t has an importance-weighted variant (imatrix is used). */
int quant_uses_imatrix(const slm_dtype *t);

/*
 * Quantize nrows rows of n elements each (n a multiple of t's block size)
 * from x into dst (rows of n / block_elems * block_bytes bytes, packed).
 * imatrix: NULL, or n importances, one per column (llama.cpp's
 * quant_weights: mean squared activation of the column's input channel);
 * types without a weighted variant ignore it. Input must be finite.
 */
void quant_rows(const slm_dtype *t, const float *x, void *dst, int64_t nrows,
		int64_t n, const float *imatrix);

/* Index of the first non-finite element of x[0..n), or -1. */
int64_t quant_find_nonfinite(const float *x, int64_t n);

/* Round-trip error of one quantized row set against its source:
 * sum of squared errors and largest absolute error (adds to *sse, raises
 * *maxerr). tmp: n floats of scratch. */
void quant_error(const slm_dtype *t, const float *x, const void *q, int64_t n,
		 float *tmp, double *sse, double *maxerr);

/*
 * Recipes. A recipe maps every tensor of a model to a type the way
 * llama.cpp's llama_tensor_get_type does for its file types (Q4_K_M,
 * Q4_K_S, Q5_K_M, Q3_K_M, Q6_K, Q8_0, Q4_0, ..., F16, BF16): the sensitive
 * tensors (output and tied token embeddings, attention V, some FFN-down
 * layers) get more bits. A plain type with no llama.cpp file type of its
 * own (q3_k, q4_k, q5_k) is "pure": every quantizable tensor gets it.
 */
typedef struct quant_recipe {
	const char *name;      /* "q4_k_m", "q8_0", "q4_k", ... */
	const char *base;      /* the default block type's name */
	int ftype;             /* llama_ftype for general.file_type; -1 if none */
	int pure;              /* no per-tensor adjustments */
} quant_recipe;

/* By name, case-insensitive; NULL if unknown. */
const quant_recipe *quant_recipe_by_name(const char *name);
/* The known names, space-separated (for messages). */
const char *quant_recipe_names(void);

/* What the recipe needs to know about the model. */
typedef struct quant_model {
	int n_layer;           /* hparams block_count */
	int n_head, n_head_kv; /* for grouped-query rules (0: unknown) */
	int n_expert;          /* 0 or 1: dense */
	const char *arch;
} quant_model;

/* A recipe's plan for a model: the type of every tensor, in the order
 * given. Names, dims and shapes of the model's n tensors; pure overrides
 * the recipe's own pure flag when 1. types[i] = NULL: keep the tensor as it
 * is (not a quantizable weight: norms, biases, 1-D tensors); otherwise the
 * type after llama.cpp's shape fallback (e.g. q4_k -> q5_0 when a row is
 * not a multiple of 256). fallback[i] (may be NULL) is set to 1 where a
 * fallback happened. has_imatrix: llama.cpp's Q4_0/Q5_0 recipes change
 * with one. */
void quant_plan(const quant_recipe *r, const quant_model *m, size_t n,
		const char *const *names, const int *ndim,
		const uint64_t (*ne)[4], int pure, int has_imatrix,
		const slm_dtype **types, int *fallback);

/* llama.cpp's fallback for a row of ne0 elements that does not fit t's
 * blocks (t itself when it fits; f16 when nothing else does). */
const slm_dtype *quant_fallback(const slm_dtype *t, uint64_t ne0);

/*
 * Importance matrices: per tensor, one importance per input column (mean
 * of the squared activations that multiply that column). Reads llama.cpp's
 * imatrix files, both the GGUF form (tensors NAME.in_sum2 and NAME.counts)
 * and the legacy binary form (imatrix.dat).
 */
typedef struct quant_imatrix quant_imatrix;
int quant_imatrix_load(quant_imatrix **out, const char *path, slm_err *err);
void quant_imatrix_free(quant_imatrix *im);
size_t quant_imatrix_count(const quant_imatrix *im);
/* The importances of a tensor and their count; NULL if absent. */
const float *quant_imatrix_find(const quant_imatrix *im, const char *name,
				size_t *n);
/* Building one from calibration: an empty matrix, then each tensor's n
 * importances (copied; a name set twice is replaced). */
quant_imatrix *quant_imatrix_new(void);
void quant_imatrix_set(quant_imatrix *im, const char *name, const float *v,
		       size_t n);
/* Write the legacy binary form (what llama-quantize and quant_imatrix_load
 * read) atomically to path ("-": standard output), the values exactly as
 * set; nchunks, the number of calibration chunks, and dataset, the name of
 * their source, go in its trailer as llama-imatrix writes them. */
int quant_imatrix_save(const quant_imatrix *im, const char *path, int nchunks,
		       const char *dataset, slm_err *err);

#endif
