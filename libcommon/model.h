/*
 * model.h - a transformer held in a bundle: hyper-parameters, per-layer
 * weights used in place, a KV cache with slots for several sequences,
 * and a batched forward pass in which every entry is one token of some
 * sequence at some position (prompt chunks and many decoding sequences
 * share each weight read).
 */
#ifndef SLM_MODEL_H
#define SLM_MODEL_H

#include <stdint.h>

#include "bundle.h"
#include "pool.h"
#include "util.h"

typedef enum {
	ARCH_LLAMA,
	ARCH_QWEN2,
	ARCH_QWEN3,
	ARCH_GEMMA3,
	ARCH_SMOLLM3,
	ARCH_PHI3,
} slm_arch;

#define SLM_SUPPORTED_ARCHS "llama, qwen2, qwen3, gemma3, smollm3, phi3"

typedef enum { ROPE_NORM, ROPE_NEOX } rope_mode;
typedef enum { ROPE_SCALE_NONE, ROPE_SCALE_LINEAR, ROPE_SCALE_YARN } rope_scaling;

typedef struct slm_layer {
	const slm_tensor *attn_norm, *wq, *wk, *wv, *wqkv, *wo;
	const slm_tensor *bq, *bk, *bv, *bqkv, *q_norm, *k_norm, *post_attn_norm;
	const slm_tensor *ffn_norm, *w_gate, *w_up, *w_down, *post_ffn_norm;
	/* the small vectors as f32 (pointing into the bundle when stored as
	 * f32, else into copies the model owns); NULL when absent */
	const float *attn_norm_w, *bq_w, *bk_w, *bv_w, *bqkv_w, *q_norm_w, *k_norm_w;
	const float *post_attn_norm_w, *ffn_norm_w, *post_ffn_norm_w;
	int swa;        /* sliding-window attention layer */
	int use_rope;
	float rope_base;
} slm_layer;

typedef struct slm_model {
	const slm_bundle *b;
	slm_arch arch;
	const char *arch_name;
	int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, head_dim_v;
	int n_ff, n_ctx_train, n_rot;
	float norm_eps;
	rope_mode rope;
	float rope_base, rope_base_swa, rope_freq_scale;
	rope_scaling rope_scale_type;
	float yarn_ext_factor, yarn_attn_factor, yarn_beta_fast, yarn_beta_slow;
	int rope_orig_ctx;
	const float *rope_freqs;   /* per-dimension frequency factors or NULL */
	int n_swa;                 /* window; 0 = none */
	float attn_scale;
	int q_prescale;            /* scale q before the f16 rounding (gemma) */
	float embd_scale;          /* gemma: sqrt(n_embd) */
	int gelu;                  /* gated GELU (gemma) instead of SiLU */
	const slm_tensor *tok_embd, *output_norm, *output;
	const float *output_norm_w;
	slm_layer *layers;
	float **copies;            /* f32 conversions owned by the model */
	size_t ncopies;
} slm_model;

/* Load hyper-parameters and weights (in place) from a bundle. */
int model_load(slm_model *m, const slm_bundle *b, slm_err *err);
void model_free(slm_model *m);
/* Bytes of weights the forward pass reads. */
uint64_t model_weight_bytes(const slm_model *m);

/* KV cache: n_slots sequences of up to n_ctx positions, f16. */
typedef struct slm_kv {
	int n_slots, n_ctx, n_layer, kv_dim, kv_dim_v;
	uint16_t *k, *v;        /* [slot][layer][pos][kv_dim] */
} slm_kv;
uint64_t kv_bytes(const slm_model *m, int n_slots, int n_ctx);
int kv_init(slm_kv *kv, const slm_model *m, int n_slots, int n_ctx, slm_err *err);
void kv_free(slm_kv *kv);

/* One token of a batch. */
typedef struct slm_entry {
	int32_t token;
	int32_t pos;      /* position in its sequence */
	int32_t slot;     /* KV slot of its sequence */
	int32_t logits;   /* row in the logits output, or -1 for none */
} slm_entry;

/* Where a forward pass spends its time (ctx_set_profile). */
enum {
	PROF_EMBED, PROF_NORM, PROF_MATMUL, PROF_ATTN, PROF_ROPE, PROF_ACT,
	PROF_LOGITS, PROF_N
};
extern const char *const prof_names[PROF_N];
typedef struct slm_profile {
	unsigned long long ns[PROF_N];
	unsigned long long mm_ns[64];    /* matrix products by GGUF type id */
	unsigned long long mm_calls[64];
	unsigned long long sync_ns;      /* calling thread waiting for the pool */
	unsigned long long forwards, entries;
} slm_profile;

typedef struct slm_ctx slm_ctx;
/* The largest batch whose results for an entry do not depend on the other
 * entries of the batch: whose matrix products all take slm's kernels, or
 * in f32-activation mode (f32_act, ctx_set_f32_act) BLIS's exact route;
 * larger batches may send some products to BLIS's other route, which
 * rounds otherwise. INT_MAX when no weight ever goes to that route. */
int model_exact_batch(const slm_model *m, int f32_act);

/* max_batch: most entries per forward call. */
slm_ctx *ctx_new(const slm_model *m, slm_kv *kv, slm_pool *pool, int max_batch);
void ctx_free(slm_ctx *c);
/* f32-activation mode (on: 1; off, the default: 0): every matrix product
 * of a quantized, f16 or bf16 weight takes its f32 input as it is, against
 * the weight dequantized to f32 a tile of rows at a time (BLIS sgemm,
 * blas_gemm_rows_exact), at every batch size, instead of the kernels'
 * int8 (f16, bf16) rounding of the input that llama.cpp also does; f32
 * weights keep their route. More accurate (a Q8_0 model then computes
 * what its weights dequantized to f32 do, up to the order of summation),
 * slower. An entry's results stay independent of the batch up to
 * model_exact_batch(m, 1). Call between forward passes. */
void ctx_set_f32_act(slm_ctx *c, int on);
/* Accumulate timings into p (NULL: stop). Costs two clock reads per step. */
void ctx_set_profile(slm_ctx *c, slm_profile *p);
/* Calibration: before every matrix product, fn sees the weight and its
 * f32 input, B rows of w->ne[0] values, ldx apart (NULL: off). Runs on the
 * calling thread. */
typedef void (*slm_act_hook)(void *arg, const slm_tensor *w, const float *x,
			     int64_t ldx, int B);
void ctx_set_act_hook(slm_ctx *c, slm_act_hook fn, void *arg);
/* Run entries (all earlier positions of each slot must be cached, and a
 * slot's entries must be in position order). logits: [rows][n_vocab]. */
void model_forward(slm_ctx *c, const slm_entry *e, int n, float *logits);

#endif
