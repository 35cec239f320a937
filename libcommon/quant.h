/*
 * quant.h - weight quantization: f32 rows into GGUF (ggml) blocks, byte for
 * byte what llama.cpp's reference quantizers (ggml-quants.c) write, with and
 * without an importance matrix; llama.cpp's quantization recipes (Q4_K_M
 * and friends: which tensor gets which type); the activation-aware (AWQ)
 * scale search.
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
 * Activation-aware scales (AWQ). Matrices that read the same input (q, k
 * and v after attn_norm; gate and up after ffn_norm) can be quantized as
 * W diag(s) if whatever makes their input divides it by s (the norm's
 * weight): the model computes the same function, and the channels whose
 * activations are large get a finer grid. s_j = a_j^alpha, a_j the root
 * mean square activation of column j (sqrt of its importance), normalised
 * to a geometric mean of 1; alpha is searched on a grid of QUANT_AWQ_GRID
 * points 0, 0.1, ..., 1 for the smallest weighted output error
 *   sum_rows sum_j imp_j (w_j - deq(quant(w_j s_j)) / s_j)^2,
 * each candidate quantized with importances imp_j / s_j^2 (those of the
 * scaled problem). alpha = 0 (s = 1) is plain quantization, so the result
 * is never worse than that by this measure.
 */
#define QUANT_AWQ_GRID 11

typedef struct quant_awq_mat {
	const slm_dtype *type;  /* the block type it is quantized to */
	const float *w;         /* rows x n weights (all rows, or a sample) */
	int64_t rows;
	const float *imp;       /* n importances of its columns */
	const float *row_div;   /* NULL, or rows divisors: row r is quantized
	                           as w[r] / row_div[r] (a scale folded into
	                           its output, e.g. ffn_up's for ffn_down) */
} quant_awq_mat;

/* The scales for alpha from the group's input importances (n of them);
 * alpha = 0 gives exactly 1. */
void quant_awq_scales(int64_t n, const float *imp, float alpha, float *s);
/* A row as quantized: out[j] = w[j] * s[j] / d (s NULL: 1). */
void quant_awq_apply(int64_t n, const float *w, const float *s, float d, float *out);
/* The fold into what makes the input (a norm's weight, or ffn_up's rows
 * for ffn_down): v[j] /= s[j]. */
void quant_awq_fold(int64_t n, const float *s, float *v);
/* The weighted error above of one matrix with column scales s (NULL: 1). */
double quant_awq_error(const quant_awq_mat *m, int64_t n, const float *s);
/* Search alpha for nm matrices of n columns sharing the input whose
 * importances are imp; the best scales go to s (n floats). *err_best: the
 * error at that alpha; *err_none: at alpha = 0 (either may be NULL). */
float quant_awq_search(const quant_awq_mat *m, int nm, int64_t n, const float *imp,
		       float *s, double *err_best, double *err_none);

#endif
