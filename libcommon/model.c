/*
 * model.c - the transformer forward pass for the supported architectures.
 * Control flow only: matrix products go to the kernels (kern/), spread
 * over the pool's threads by rows; attention by shares of (KV head, token,
 * head) of equal cost, a KV head's queries of one sequence per kernel call.
 * Every buffer is allocated once, in ctx_new.
 */
#include "model.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blas.h"
#include "kern/kern.h"

const char *const prof_names[PROF_N] = { "embedding", "norms", "matmul", "attention",
					  "rope+kv", "activation", "logits" };

static inline unsigned long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* ---- hyper-parameters ---- */

static json_t *hp(const slm_bundle *b, const char *key)
{
	return json_object_get(json_object_get(bundle_manifest(b), "hparams"), key);
}

static double hp_num(const slm_bundle *b, const char *key, double def)
{
	json_t *v = hp(b, key);
	if (json_is_array(v) && json_array_size(v) > 0)
		v = json_array_get(v, 0);
	return json_is_number(v) ? json_number_value(v) : def;
}

static const char *hp_str(const slm_bundle *b, const char *key)
{
	return json_string_value(hp(b, key));
}

/* Small vectors (norms, biases, rope factors) as f32, converted once at
 * load; the model owns the conversions. */
static const float *vec_f32(slm_model *m, const slm_tensor *t)
{
	if (!t)
		return NULL;
	if (t->dtype == dtype_by_name("f32"))
		return t->data;
	float *d = slm_xmalloc(t->nelems * sizeof *d);
	const kern_mat km = tensor_kmat(t);
	kern_mat_dequant(&km, 0, km.nrows, d);
	m->copies = slm_xrealloc(m->copies, (m->ncopies + 1) * sizeof *m->copies);
	m->copies[m->ncopies++] = d;
	return d;
}

static const slm_tensor *tensor(const slm_bundle *b, int layer, const char *name)
{
	char full[128];
	if (layer >= 0)
		snprintf(full, sizeof full, "blk.%d.%s", layer, name);
	else
		snprintf(full, sizeof full, "%s", name);
	return bundle_find_tensor(b, full);
}

static int need(const slm_tensor *t, const slm_bundle *b, int layer,
		const char *name, slm_err *err)
{
	if (t)
		return 0;
	if (layer >= 0)
		return slm_seterr(err, EX_DATAERR, "%s: missing tensor blk.%d.%s",
				  bundle_path(b), layer, name);
	return slm_seterr(err, EX_DATAERR, "%s: missing tensor %s", bundle_path(b), name);
}

/* A weight matrix must have ne0 == in and ne1 == out. */
static int check_mat(const slm_tensor *t, int64_t in, int64_t out,
		     const slm_bundle *b, slm_err *err)
{
	if (!t)
		return 0;
	if (t->ndim > 2 || (int64_t)t->ne[0] != in || (int64_t)t->ne[1] != out)
		return slm_seterr(err, EX_DATAERR,
				  "%s: tensor %s has shape %llu x %llu, expected %lld x %lld",
				  bundle_path(b), t->name, (unsigned long long)t->ne[0],
				  (unsigned long long)t->ne[1], (long long)in, (long long)out);
	return 0;
}

static int check_vec(const slm_tensor *t, int64_t n, const slm_bundle *b,
		     slm_err *err)
{
	if (!t)
		return 0;
	if ((int64_t)t->nelems != n)
		return slm_seterr(err, EX_DATAERR,
				  "%s: tensor %s has %llu elements, expected %lld",
				  bundle_path(b), t->name, (unsigned long long)t->nelems,
				  (long long)n);
	return 0;
}

int model_load(slm_model *m, const slm_bundle *b, slm_err *err)
{
	memset(m, 0, sizeof *m);
	m->b = b;
	const char *arch = bundle_str(b, "arch");
	static const struct { const char *name; slm_arch a; } archs[] = {
		{ "llama", ARCH_LLAMA },   { "qwen2", ARCH_QWEN2 },
		{ "qwen3", ARCH_QWEN3 },   { "gemma3", ARCH_GEMMA3 },
		{ "smollm3", ARCH_SMOLLM3 }, { "phi3", ARCH_PHI3 },
	};
	size_t ai;
	for (ai = 0; ai < sizeof archs / sizeof archs[0]; ai++)
		if (arch && !strcmp(arch, archs[ai].name))
			break;
	if (ai == sizeof archs / sizeof archs[0])
		return slm_seterr(err, EX_DATAERR,
				  "%s: unsupported architecture '%s' (supported: %s)",
				  bundle_path(b), arch ? arch : "?", SLM_SUPPORTED_ARCHS);
	m->arch = archs[ai].a;
	m->arch_name = archs[ai].name;

	m->tok_embd = tensor(b, -1, "token_embd.weight");
	if (need(m->tok_embd, b, -1, "token_embd.weight", err) < 0)
		return -1;
	m->n_embd = (int)hp_num(b, "embedding_length", 0);
	m->n_layer = (int)hp_num(b, "block_count", 0);
	m->n_head = (int)hp_num(b, "attention.head_count", 0);
	m->n_head_kv = (int)hp_num(b, "attention.head_count_kv", m->n_head);
	m->n_ff = (int)hp_num(b, "feed_forward_length", 0);
	m->n_ctx_train = (int)hp_num(b, "context_length", 2048);
	m->n_vocab = (int)m->tok_embd->ne[1];
	if (m->n_embd <= 0 || m->n_layer <= 0 || m->n_head <= 0 || m->n_head_kv <= 0 ||
	    m->n_ff <= 0 || m->n_head % m->n_head_kv != 0 || m->n_layer > 1024 ||
	    m->n_embd > (1 << 20) || m->n_ff > (1 << 22) || m->n_head > 4096)
		return slm_seterr(err, EX_DATAERR,
				  "%s: bad hyper-parameters (embedding_length %d, block_count %d, head_count %d/%d, feed_forward_length %d)",
				  bundle_path(b), m->n_embd, m->n_layer, m->n_head,
				  m->n_head_kv, m->n_ff);
	m->head_dim = (int)hp_num(b, "attention.key_length", m->n_embd / m->n_head);
	m->head_dim_v = (int)hp_num(b, "attention.value_length", m->head_dim);
	if (m->head_dim <= 0 || m->head_dim_v != m->head_dim || m->head_dim % 2 ||
	    m->head_dim > 1024)
		return slm_seterr(err, EX_DATAERR, "%s: bad attention head size %d/%d",
				  bundle_path(b), m->head_dim, m->head_dim_v);
	m->n_rot = (int)hp_num(b, "rope.dimension_count", m->head_dim);
	if (m->n_rot <= 0 || m->n_rot > m->head_dim || m->n_rot % 2)
		return slm_seterr(err, EX_DATAERR, "%s: bad rope.dimension_count %d",
				  bundle_path(b), m->n_rot);
	m->norm_eps = (float)hp_num(b, "attention.layer_norm_rms_epsilon", 1e-5);
	m->rope_base = (float)hp_num(b, "rope.freq_base", 10000.0);
	m->rope_base_swa = m->rope_base;
	m->rope_freq_scale = 1.0f;
	m->yarn_attn_factor = 1.0f;
	m->rope_orig_ctx = (int)hp_num(b, "rope.scaling.original_context_length",
				       m->n_ctx_train);
	const char *st = hp_str(b, "rope.scaling.type");
	double factor = hp_num(b, "rope.scaling.factor", 0);
	if (st && !strcmp(st, "linear") && factor > 0) {
		m->rope_scale_type = ROPE_SCALE_LINEAR;
		m->rope_freq_scale = (float)(1.0 / factor);
	} else if (st && !strcmp(st, "yarn") && factor > 0) {
		m->rope_scale_type = ROPE_SCALE_YARN;
		m->rope_freq_scale = (float)(1.0 / factor);
		m->yarn_ext_factor = (float)hp_num(b, "rope.scaling.yarn_ext_factor", 1.0);
		m->yarn_attn_factor = (float)hp_num(b, "rope.scaling.attn_factor", 1.0);
		m->yarn_beta_fast = (float)hp_num(b, "rope.scaling.yarn_beta_fast", 32.0);
		m->yarn_beta_slow = (float)hp_num(b, "rope.scaling.yarn_beta_slow", 1.0);
	} else if (st && strcmp(st, "none") && strcmp(st, "linear") && strcmp(st, "yarn")) {
		return slm_seterr(err, EX_DATAERR, "%s: unsupported rope scaling '%s'",
				  bundle_path(b), st);
	}
	const slm_tensor *rf = tensor(b, -1, "rope_freqs.weight");
	if (check_vec(rf, m->n_rot / 2, b, err) < 0)
		return -1;
	m->rope_freqs = vec_f32(m, rf);
	m->n_swa = (int)hp_num(b, "attention.sliding_window", 0);
	m->attn_scale = 1.0f / sqrtf((float)m->head_dim);
	m->embd_scale = 1.0f;
	m->rope = ROPE_NEOX;
	int swa_pattern = 1;   /* every layer when a window is set */
	int no_rope_step = 0;
	switch (m->arch) {
	case ARCH_LLAMA:
		m->rope = ROPE_NORM;
		break;
	case ARCH_SMOLLM3:
		m->rope = ROPE_NORM;
		no_rope_step = 4;
		break;
	case ARCH_GEMMA3:
		m->embd_scale = sqrtf((float)m->n_embd);
		m->gelu = 1;
		m->q_prescale = 1; /* llama.cpp scales Q, then the softmax by 1 */
		m->rope_base_swa = 10000.0f;
		swa_pattern = (int)hp_num(b, "attention.sliding_window_pattern", 6);
		break;
	default:
		break;
	}
	/* Only gemma3 slides a window, as in llama.cpp: phi3 GGUFs carry
	 * attention.sliding_window (2047 for Phi-3-mini) but llama.cpp
	 * disables it there (its PR 13676), and llama, qwen2, qwen3 and
	 * smollm3 never read the key. */
	if (m->n_swa < 0 || m->arch != ARCH_GEMMA3)
		m->n_swa = 0;

	m->output_norm = tensor(b, -1, "output_norm.weight");
	m->output = tensor(b, -1, "output.weight");
	if (!m->output)
		m->output = m->tok_embd; /* tied embeddings */
	if (need(m->output_norm, b, -1, "output_norm.weight", err) < 0 ||
	    check_vec(m->output_norm, m->n_embd, b, err) < 0 ||
	    check_mat(m->tok_embd, m->n_embd, m->n_vocab, b, err) < 0 ||
	    check_mat(m->output, m->n_embd, m->n_vocab, b, err) < 0)
		return -1;

	int q_dim = m->n_head * m->head_dim, kv_dim = m->n_head_kv * m->head_dim;
	m->layers = slm_xcalloc((size_t)m->n_layer, sizeof *m->layers);
	for (int l = 0; l < m->n_layer; l++) {
		slm_layer *L = &m->layers[l];
		L->attn_norm = tensor(b, l, "attn_norm.weight");
		L->wq = tensor(b, l, "attn_q.weight");
		L->wk = tensor(b, l, "attn_k.weight");
		L->wv = tensor(b, l, "attn_v.weight");
		L->wqkv = tensor(b, l, "attn_qkv.weight");
		L->wo = tensor(b, l, "attn_output.weight");
		L->bq = tensor(b, l, "attn_q.bias");
		L->bk = tensor(b, l, "attn_k.bias");
		L->bv = tensor(b, l, "attn_v.bias");
		L->bqkv = tensor(b, l, "attn_qkv.bias");
		L->q_norm = tensor(b, l, "attn_q_norm.weight");
		L->k_norm = tensor(b, l, "attn_k_norm.weight");
		L->post_attn_norm = tensor(b, l, "post_attention_norm.weight");
		L->ffn_norm = tensor(b, l, "ffn_norm.weight");
		L->w_gate = tensor(b, l, "ffn_gate.weight");
		L->w_up = tensor(b, l, "ffn_up.weight");
		L->w_down = tensor(b, l, "ffn_down.weight");
		L->post_ffn_norm = tensor(b, l, "post_ffw_norm.weight");
		if (need(L->attn_norm, b, l, "attn_norm.weight", err) < 0 ||
		    need(L->wo, b, l, "attn_output.weight", err) < 0 ||
		    need(L->ffn_norm, b, l, "ffn_norm.weight", err) < 0 ||
		    need(L->w_up, b, l, "ffn_up.weight", err) < 0 ||
		    need(L->w_down, b, l, "ffn_down.weight", err) < 0)
			return -1;
		if (!L->wqkv && (need(L->wq, b, l, "attn_q.weight", err) < 0 ||
				 need(L->wk, b, l, "attn_k.weight", err) < 0 ||
				 need(L->wv, b, l, "attn_v.weight", err) < 0))
			return -1;
		if (check_vec(L->attn_norm, m->n_embd, b, err) < 0 ||
		    check_mat(L->wq, m->n_embd, q_dim, b, err) < 0 ||
		    check_mat(L->wk, m->n_embd, kv_dim, b, err) < 0 ||
		    check_mat(L->wv, m->n_embd, kv_dim, b, err) < 0 ||
		    check_mat(L->wqkv, m->n_embd, q_dim + 2 * kv_dim, b, err) < 0 ||
		    check_mat(L->wo, q_dim, m->n_embd, b, err) < 0 ||
		    check_vec(L->bq, q_dim, b, err) < 0 ||
		    check_vec(L->bk, kv_dim, b, err) < 0 ||
		    check_vec(L->bv, kv_dim, b, err) < 0 ||
		    check_vec(L->bqkv, q_dim + 2 * kv_dim, b, err) < 0 ||
		    check_vec(L->q_norm, m->head_dim, b, err) < 0 ||
		    check_vec(L->k_norm, m->head_dim, b, err) < 0 ||
		    check_vec(L->post_attn_norm, m->n_embd, b, err) < 0 ||
		    check_vec(L->ffn_norm, m->n_embd, b, err) < 0 ||
		    check_mat(L->w_gate, m->n_embd, m->n_ff, b, err) < 0 ||
		    check_mat(L->w_up, m->n_embd, L->w_gate ? m->n_ff : 2 * m->n_ff, b, err) < 0 ||
		    check_mat(L->w_down, m->n_ff, m->n_embd, b, err) < 0 ||
		    check_vec(L->post_ffn_norm, m->n_embd, b, err) < 0)
			return -1;
		L->swa = m->n_swa > 0 && (swa_pattern <= 1 || l % swa_pattern < swa_pattern - 1);
		L->use_rope = !(no_rope_step > 0 && (l + 1) % no_rope_step == 0);
		L->rope_base = L->swa ? m->rope_base_swa : m->rope_base;
		/* convert the small vectors now, so the forward pass never does */
		L->attn_norm_w = vec_f32(m, L->attn_norm);
		L->bq_w = vec_f32(m, L->bq);
		L->bk_w = vec_f32(m, L->bk);
		L->bv_w = vec_f32(m, L->bv);
		L->bqkv_w = vec_f32(m, L->bqkv);
		L->q_norm_w = vec_f32(m, L->q_norm);
		L->k_norm_w = vec_f32(m, L->k_norm);
		L->post_attn_norm_w = vec_f32(m, L->post_attn_norm);
		L->ffn_norm_w = vec_f32(m, L->ffn_norm);
		L->post_ffn_norm_w = vec_f32(m, L->post_ffn_norm);
	}
	m->output_norm_w = vec_f32(m, m->output_norm);
	kern_init();
	return 0;
}

void model_free(slm_model *m)
{
	free(m->layers);
	m->layers = NULL;
	for (size_t i = 0; i < m->ncopies; i++)
		free(m->copies[i]);
	free(m->copies);
	m->copies = NULL;
	m->ncopies = 0;
}

uint64_t model_weight_bytes(const slm_model *m)
{
	uint64_t n = 0;
	for (size_t i = 0; i < bundle_n_tensors(m->b); i++)
		n += bundle_tensor_at(m->b, i)->size;
	if (m->output == m->tok_embd)
		n += m->tok_embd->size; /* read twice: embedding rows and logits */
	return n;
}

/* ---- KV cache ---- */

uint64_t kv_bytes(const slm_model *m, int n_slots, int n_ctx)
{
	uint64_t kv_dim = (uint64_t)m->n_head_kv * (uint64_t)m->head_dim;
	return 2ull * (uint64_t)n_slots * (uint64_t)m->n_layer * (uint64_t)n_ctx *
	       kv_dim * sizeof(uint16_t);
}

int kv_init(slm_kv *kv, const slm_model *m, int n_slots, int n_ctx, slm_err *err)
{
	memset(kv, 0, sizeof *kv);
	kv->n_slots = n_slots;
	kv->n_ctx = n_ctx;
	kv->n_layer = m->n_layer;
	kv->kv_dim = m->n_head_kv * m->head_dim;
	kv->kv_dim_v = m->n_head_kv * m->head_dim_v;
	size_t half = (size_t)(kv_bytes(m, n_slots, n_ctx) / 2);
	kv->k = aligned_alloc(64, (half + 63) / 64 * 64);
	kv->v = aligned_alloc(64, (half + 63) / 64 * 64);
	if (!kv->k || !kv->v) {
		kv_free(kv);
		char a[32];
		return slm_seterr(err, EX_TEMPFAIL, "cannot allocate the KV cache (%s)",
				  slm_fmt_size(2 * half, a));
	}
	return 0;
}

void kv_free(slm_kv *kv)
{
	free(kv->k);
	free(kv->v);
	kv->k = kv->v = NULL;
}

static inline uint16_t *kv_row(const slm_kv *kv, uint16_t *base, int slot, int layer,
			       int pos, int dim)
{
	size_t i = (((size_t)slot * (size_t)kv->n_layer + (size_t)layer) * (size_t)kv->n_ctx +
		    (size_t)pos) * (size_t)dim;
	return base + i;
}

/* ---- context ---- */

/* Queries per kern_attn call (its scratch is sized for this many). */
#define ATTN_MAXQ 32
/* The fixed cost of a query, in rows (its softmax, its share of a call). */
#define ATTN_QCOST 16

/* The rows [lo, hi) an entry's queries attend to in the current layer. */
typedef struct attn_span {
	int lo, hi;
} attn_span;

/* From ACT_OWN_MIN to ACT_OWN_MAX activations, every thread quantizes all
 * of them for itself, into its own buffer, as the first part of the
 * product: no pool hand-off between quantizing and multiplying, and no
 * writes to lines the other core has just read (quantizing a share into
 * one shared buffer stalled on them: qa_min 3.4% of 16 sequences
 * decoding; each thread doing all 16 costs less). 16 sequences, pp32 +
 * tg128: SmolLM2 Q4_1 1.044x paired (8 pairs), TinyLlama Q4_0 1.006x.
 * Prompt batches past ACT_OWN_MAX keep the shared buffer (its size is
 * per batch row). */
#define ACT_OWN_MIN 8
#define ACT_OWN_MAX 64

struct slm_ctx {
	const slm_model *m;
	slm_kv *kv;
	slm_pool *pool;
	int max_batch;
	float *x, *xn, *q, *att, *ffa, *tmp;
	int q_dim, kv_dim, qkv_dim, ff_dim;
	uint8_t *act;          /* quantized activations */
	size_t act_cap;
	uint8_t *act_own;      /* [nthreads - 1][act_own_cap]: see ACT_OWN_MAX */
	size_t act_own_cap;
	float **blas_scratch;  /* [nthreads][blas_floats]: dequantized tiles */
	size_t blas_floats;
	int f32_act;           /* ctx_set_f32_act */
	float *scores;         /* [nthreads][scores_per_thread]: kern_attn's scratch */
	size_t scores_per_thread;
	attn_span *spans;      /* [max_batch]: each entry's rows in this layer */
	float *rope_cs;        /* [nthreads][n_rot]: cos/sin table for one position */
	slm_profile *prof;
	unsigned long long t_mark;
	int in_logits;         /* products are charged to PROF_LOGITS */
	slm_act_hook hook;
	void *hook_arg;
	/* job parameters */
	const slm_entry *e;
	int n;
	int layer;
};

/* A weight whose products BLIS takes from some batch size on. */
static int blas_may_take(const slm_tensor *t)
{
	return t->ndim == 2 && kern_supported(t->dtype) && t->ne[0] % t->dtype->block_elems == 0;
}

/* In f32-activation mode, BLIS takes every product of a weight of type
 * t (in its exact arithmetic); f32 weights keep their route, their
 * kernels take f32 activations already. */
static int f32_act_takes(int f32_act, const slm_dtype *t)
{
	return f32_act && t != dtype_by_name("f32");
}

int model_exact_batch(const slm_model *m, int f32_act)
{
	int b = INT_MAX;
	for (size_t i = 0; i < bundle_n_tensors(m->b); i++) {
		const slm_tensor *t = bundle_tensor_at(m->b, i);
		if (blas_may_take(t) && !f32_act_takes(f32_act, t->dtype) &&
		    blas_min_batch(t->dtype) - 1 < b)
			b = blas_min_batch(t->dtype) - 1;
	}
	return b;
}

/* BLIS tiles for the weights whose products may go to BLIS: those of
 * batches of max_batch, all in f32-activation mode. Grows them when the
 * mode comes on; a tile holds rows of every such weight. */
static void blas_tiles(slm_ctx *c)
{
	const slm_model *m = c->m;
	int nth = pool_size(c->pool), any_blas = 0;
	size_t floats = 0;
	for (size_t i = 0; i < bundle_n_tensors(m->b); i++) {
		const slm_tensor *t = bundle_tensor_at(m->b, i);
		if (blas_may_take(t) && (c->max_batch >= blas_min_batch(t->dtype) ||
					 f32_act_takes(c->f32_act, t->dtype))) {
			size_t f = blas_scratch_floats(t->dtype, (int64_t)t->ne[0]);
			if (f > floats)
				floats = f;
			any_blas = 1;
		}
	}
	if (!any_blas || (c->blas_scratch && floats <= c->blas_floats))
		return;
	blas_setup(0, NULL, 0);
	if (!c->blas_scratch)
		c->blas_scratch = slm_xcalloc((size_t)nth, sizeof *c->blas_scratch);
	for (int t = 0; t < nth && floats; t++) {
		free(c->blas_scratch[t]);
		c->blas_scratch[t] = aligned_alloc(64, floats * sizeof(float));
		if (!c->blas_scratch[t])
			slm_die(EX_OSERR, "out of memory for BLIS tiles");
	}
	c->blas_floats = floats;
}

slm_ctx *ctx_new(const slm_model *m, slm_kv *kv, slm_pool *pool, int max_batch)
{
	slm_ctx *c = slm_xcalloc(1, sizeof *c);
	c->m = m;
	c->kv = kv;
	c->pool = pool;
	c->max_batch = max_batch;
	c->q_dim = m->n_head * m->head_dim;
	c->kv_dim = m->n_head_kv * m->head_dim;
	c->qkv_dim = c->q_dim + 2 * c->kv_dim;
	c->ff_dim = 2 * m->n_ff;
	size_t B = (size_t)max_batch;
	c->x = slm_xcalloc(B * (size_t)m->n_embd, sizeof(float));
	c->xn = slm_xcalloc(B * (size_t)m->n_embd, sizeof(float));
	c->q = slm_xcalloc(B * (size_t)c->qkv_dim, sizeof(float));
	c->att = slm_xcalloc(B * (size_t)c->q_dim, sizeof(float));
	c->ffa = slm_xcalloc(B * (size_t)c->ff_dim, sizeof(float));
	c->tmp = slm_xcalloc(B * (size_t)m->n_embd, sizeof(float));
	c->scores_per_thread = (kern_attn_scratch(ATTN_MAXQ, kv->n_ctx, m->head_dim) + 15) & ~(size_t)15;
	c->scores = aligned_alloc(64, (size_t)pool_size(pool) * c->scores_per_thread * sizeof(float));
	if (!c->scores)
		slm_die(EX_OSERR, "out of memory for attention scores");
	c->spans = slm_xcalloc(B, sizeof *c->spans);
	c->rope_cs = slm_xcalloc((size_t)pool_size(pool) * (size_t)m->n_rot, sizeof(float));
	/* activation buffer: the largest input of any product, for B rows */
	size_t need = 0;
	for (size_t i = 0; i < bundle_n_tensors(m->b); i++) {
		const slm_tensor *t = bundle_tensor_at(m->b, i);
		if (t->ndim == 2 && t->ne[0] % t->dtype->block_elems == 0) {
			size_t a = kern_act_bytes(t->dtype, (int64_t)t->ne[0]);
			if (a > need)
				need = a;
		}
	}
	c->act_cap = need * B;
	c->act = aligned_alloc(64, (c->act_cap + 63) / 64 * 64 + 64);
	if (!c->act)
		slm_die(EX_OSERR, "out of memory for activations");
	if (pool_size(pool) > 1 && B >= ACT_OWN_MIN) {
		c->act_own_cap = (need * (B < ACT_OWN_MAX ? B : ACT_OWN_MAX) + 63) / 64 * 64;
		c->act_own = aligned_alloc(64, (size_t)(pool_size(pool) - 1) * c->act_own_cap + 64);
		if (!c->act_own)
			slm_die(EX_OSERR, "out of memory for activations");
	}
	blas_tiles(c);
	return c;
}

void ctx_set_f32_act(slm_ctx *c, int on)
{
	c->f32_act = on != 0;
	blas_tiles(c);
}

void ctx_set_act_hook(slm_ctx *c, slm_act_hook fn, void *arg)
{
	c->hook = fn;
	c->hook_arg = arg;
}

void ctx_set_profile(slm_ctx *c, slm_profile *p)
{
	c->prof = p;
	pool_set_wait_counter(c->pool, p ? &p->sync_ns : NULL);
	if (p)
		c->t_mark = now_ns();
}

/* Charge the time since the last mark to category k. */
static inline void prof(slm_ctx *c, int k)
{
	if (!c->prof)
		return;
	unsigned long long t = now_ns();
	c->prof->ns[k] += t - c->t_mark;
	c->t_mark = t;
}

void ctx_free(slm_ctx *c)
{
	if (!c)
		return;
	free(c->x);
	free(c->xn);
	free(c->q);
	free(c->att);
	free(c->ffa);
	free(c->tmp);
	free(c->scores);
	free(c->spans);
	free(c->rope_cs);
	free(c->act);
	free(c->act_own);
	for (int t = 0; c->blas_scratch && t < pool_size(c->pool); t++)
		free(c->blas_scratch[t]);
	free(c->blas_scratch);
	free(c);
}

/* ---- elementwise steps (main thread) ---- */

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
	kern_rmsnorm(out, x, w, n, eps);
}

static float rope_yarn_ramp(float low, float high, int i0)
{
	float y = ((float)i0 / 2 - low) / fmaxf(0.001f, high - low);
	return 1.0f - fminf(1.0f, fmaxf(0.0f, y));
}

static float corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base)
{
	return (float)n_dims * logf((float)n_ctx_orig / (n_rot * 2 * (float)M_PI)) /
	       (2 * logf(base));
}

/* cos[n_rot/2] then sin[n_rot/2] for position pos, with the model's
 * frequency factors and linear or YaRN scaling (ggml's formulas). */
static void rope_table(const slm_model *m, int pos, float base, float *cs)
{
	int nd = m->n_rot;
	float theta_scale = powf(base, -2.0f / (float)nd);
	float fs = m->rope_freq_scale, ext = m->yarn_ext_factor;
	float mscale = m->yarn_attn_factor;
	float cd0 = 0, cd1 = 0;
	int yarn = m->rope_scale_type == ROPE_SCALE_YARN;
	if (yarn) {
		cd0 = fmaxf(0, floorf(corr_dim(nd, m->rope_orig_ctx, m->yarn_beta_fast, base)));
		cd1 = fminf((float)nd - 1,
			    ceilf(corr_dim(nd, m->rope_orig_ctx, m->yarn_beta_slow, base)));
		if (ext != 0)
			mscale *= 1.0f + 0.1f * logf(1.0f / fs);
	}
	float theta_base = (float)pos;
	for (int i0 = 0; i0 < nd; i0 += 2) {
		float ff = m->rope_freqs ? m->rope_freqs[i0 / 2] : 1.0f;
		float theta_extrap = theta_base / ff;
		float theta = fs * theta_extrap;
		if (yarn && ext != 0) {
			float mix = rope_yarn_ramp(cd0, cd1, i0) * ext;
			theta = theta * (1 - mix) + theta_extrap * mix;
		}
		cs[i0 / 2] = cosf(theta) * mscale;
		cs[nd / 2 + i0 / 2] = sinf(theta) * mscale;
		theta_base *= theta_scale;
	}
}

/* ---- matrix products over the pool ---- */

#define MAX_MM 3
typedef struct mm_job {
	const slm_tensor *w[MAX_MM];
	float *y[MAX_MM];      /* y[b * ldy + r] */
	int64_t ldy[MAX_MM];
	int nw;
	int B;
	int exact;             /* BLIS: blas_gemm_rows_exact (f32-activation mode) */
	uint8_t *act;          /* quantized activations (kernels) */
	uint8_t *act_own;      /* non-NULL: each thread quantizes them itself */
	size_t act_own_cap;
	size_t act_bytes;      /* per activation */
	const float *x;        /* f32 activations, ldx apart (BLIS) */
	int64_t ldx;
	int blas;              /* BLIS sgemm on dequantized tiles */
	float *const *scratch; /* per thread, scratch_floats each */
	size_t scratch_floats;
} mm_job;

/* kern_matmul reads its rows once per 4 activations: rows in tiles of
 * this many weight bytes stay in L2 while all activations pass (2x on
 * matrices larger than the caches at batch 16 and more; tests/unit-blas -b) */
#define MM_TILE_BYTES (256 << 10)

/* activations [b0, b1) of the job's input, quantized into act */
static void quant_rows(const mm_job *j, uint8_t *act, long b0, long b1)
{
	const slm_dtype *dt = j->w[0]->dtype;
	for (long b = b0; b < b1; b++)
		kern_quant_act(dt, j->x + (size_t)b * (size_t)j->ldx,
			       act + (size_t)b * j->act_bytes, (int64_t)j->w[0]->ne[0]);
}

static void mm_worker(void *arg, int ith, int nth)
{
	mm_job *j = arg;
	uint8_t *act = j->act;
	if (j->act_own) {
		/* thread 0 into the shared buffer, the others into their own */
		if (ith > 0)
			act = j->act_own + (size_t)(ith - 1) * j->act_own_cap;
		quant_rows(j, act, 0, j->B);
	}
	for (int i = 0; i < j->nw; i++) {
		const slm_tensor *w = j->w[i];
		int64_t n = (int64_t)w->ne[0];
		const kern_mat km = tensor_kmat(w);
		long r0, r1;
		if (w->tiled) {
			/* whole tiles per thread */
			pool_split((long)(w->ne[1] + DTYPE_TILE - 1) / DTYPE_TILE, ith, nth, &r0, &r1);
			r0 *= DTYPE_TILE;
			r1 = r1 * DTYPE_TILE < (long)w->ne[1] ? r1 * DTYPE_TILE : (long)w->ne[1];
		} else {
			pool_split((long)w->ne[1], ith, nth, &r0, &r1);
		}
		if (r1 <= r0)
			continue;
		if (j->blas) {
			(j->exact ? blas_gemm_rows_exact : blas_gemm_rows)(
				w, j->x, j->ldx, j->B, j->y[i] + r0, j->ldy[i], r0, r1,
				j->scratch[ith], j->scratch_floats);
		} else if (j->B == 1) {
			kern_mat_mul(&km, act, 1, j->y[i] + r0, 0, r0, r1);
		} else {
			size_t rb = (size_t)(n / w->dtype->block_elems) * w->dtype->block_bytes;
			long tr = (long)(MM_TILE_BYTES / rb) & ~(long)(DTYPE_TILE - 1);
			if (tr < DTYPE_TILE)
				tr = DTYPE_TILE;
			for (long r = r0; r < r1; r += tr)
				kern_mat_mul(&km, act, j->B, j->y[i] + r, j->ldy[i], r,
					     r + tr < r1 ? r + tr : r1);
		}
	}
}

/* Quantize the activations, a share of the rows per thread. */
static void quant_worker(void *arg, int ith, int nth)
{
	mm_job *j = arg;
	long b0, b1;
	pool_split(j->B, ith, nth, &b0, &b1);
	quant_rows(j, j->act, b0, b1);
}

/* y_i = W_i x for nw weights of one input (B rows of length n, stride
 * ldx), all of the same dtype. */
static void matmul_multi(slm_ctx *c, const slm_tensor *const *w, float *const *y,
			 const int64_t *ldy, int nw, const float *x, int64_t ldx, int B)
{
	const slm_dtype *dt = w[0]->dtype;
	int64_t n = (int64_t)w[0]->ne[0];
	if (c->hook)
		for (int i = 0; i < nw; i++)
			c->hook(c->hook_arg, w[i], x, ldx, B);
	mm_job j = { .nw = nw, .B = B, .act = c->act, .act_bytes = kern_act_bytes(dt, n),
		     .x = x, .ldx = ldx, .scratch = c->blas_scratch,
		     .scratch_floats = c->blas_floats };
	for (int i = 0; i < nw; i++) {
		j.w[i] = w[i];
		j.y[i] = y[i];
		j.ldy[i] = ldy[i];
	}
	/* BLIS takes the f32 input as it is; the kernels take it quantized */
	j.exact = f32_act_takes(c->f32_act, dt);
	j.blas = c->blas_scratch && (B >= blas_min_batch(dt) || j.exact) &&
		 (c->blas_floats >= (size_t)n || dt == dtype_by_name("f32"));
	if (!j.blas) {
		/* by every thread for itself (ACT_OWN_MIN..ACT_OWN_MAX), else
		 * a share per thread from 8 rows (below 8 the hand-off costs
		 * what it saves) */
		if (c->act_own && B >= ACT_OWN_MIN && B <= ACT_OWN_MAX) {
			j.act_own = c->act_own;
			j.act_own_cap = c->act_own_cap;
		} else if (B >= 8) {
			pool_run(c->pool, quant_worker, &j);
		} else {
			quant_worker(&j, 0, 1);
		}
	}
	pool_run(c->pool, mm_worker, &j);
	if (c->prof) {
		unsigned long long t = now_ns();
		c->prof->ns[c->in_logits ? PROF_LOGITS : PROF_MATMUL] += t - c->t_mark;
		c->prof->mm_ns[dt->ggml_id & 63] += t - c->t_mark;
		c->prof->mm_calls[dt->ggml_id & 63]++;
		c->t_mark = t;
	}
}

static void matmul(slm_ctx *c, const slm_tensor *w, float *y, int64_t ldy,
		   const float *x, int64_t ldx, int B)
{
	matmul_multi(c, &w, &y, &ldy, 1, x, ldx, B);
}

/* Several weights on the same input: grouped when their dtypes agree. */
static void matmul_group(slm_ctx *c, const slm_tensor **w, float **y, int64_t *ldy,
			 int nw, const float *x, int64_t ldx, int B)
{
	int i = 0;
	while (i < nw) {
		int k = i + 1;
		while (k < nw && w[k]->dtype == w[i]->dtype)
			k++;
		matmul_multi(c, w + i, y + i, ldy + i, k - i, x, ldx, B);
		i = k;
	}
}

/* ---- attention over the pool ---- */

/* The rows of entry e in this layer. */
static attn_span attn_rows(const slm_ctx *c, const slm_entry *e)
{
	const slm_model *m = c->m;
	attn_span r = { 0, e->pos + 1 };
	if (m->layers[c->layer].swa && e->pos - m->n_swa + 1 > 0)
		r.lo = e->pos - m->n_swa + 1;
	return r;
}

typedef struct attn_batch {
	kern_attn_q q[ATTN_MAXQ];
	int nq, hk, slot;
} attn_batch;

/* One kern_attn call for the queries gathered (p0, p1 absolute so far). */
static void attn_flush(slm_ctx *c, attn_batch *ab, float *scratch)
{
	if (!ab->nq)
		return;
	const slm_model *m = c->m;
	int hd = m->head_dim;
	int64_t base = ab->q[0].p0;
	for (int j = 1; j < ab->nq; j++)
		base = ab->q[j].p0 < base ? ab->q[j].p0 : base;
	for (int j = 0; j < ab->nq; j++) {
		ab->q[j].p0 -= base;
		ab->q[j].p1 -= base;
	}
	size_t off = (size_t)ab->hk * (size_t)hd;
	kern_attn(kv_row(c->kv, c->kv->k, ab->slot, c->layer, (int)base, c->kv_dim) + off,
		  kv_row(c->kv, c->kv->v, ab->slot, c->layer, (int)base, c->kv_dim) + off,
		  (size_t)c->kv_dim * sizeof(uint16_t), hd, m->q_prescale ? 1.0f : m->attn_scale,
		  ab->q, ab->nq, scratch);
	ab->nq = 0;
}

/* The queries (entry i, head h) in the order (KV head, entry, head of its
 * group), each costing its rows + ATTN_QCOST; thread ith takes those that
 * start in its equal share of the total cost (so a single entry's heads
 * are split too), and gives kern_attn those of one KV head and one
 * sequence together. kern_attn's result for a query does not depend on
 * the others of its call: the split does not change the arithmetic. */
static void attn_worker(void *arg, int ith, int nth)
{
	slm_ctx *c = arg;
	const slm_model *m = c->m;
	int hd = m->head_dim, group = m->n_head / m->n_head_kv;
	const attn_span *span = c->spans;
	long long per_kv = 0;
	for (int i = 0; i < c->n; i++)
		per_kv += (long long)group * (span[i].hi - span[i].lo + ATTN_QCOST);
	long long total = per_kv * m->n_head_kv;
	long long c0 = total * ith / nth, c1 = total * (ith + 1) / nth;
	float *scratch = c->scores + (size_t)ith * c->scores_per_thread;
	attn_batch ab = { .nq = 0 };
	long long pre = 0;
	for (int hk = 0; hk < m->n_head_kv && pre < c1; hk++) {
		for (int i = 0; i < c->n && pre < c1; i++) {
			const slm_entry *e = &c->e[i];
			int lo = span[i].lo, hi = span[i].hi;
			long long w = hi - lo + ATTN_QCOST;
			/* heads g with pre + g w in [c0, c1) */
			long long g0 = c0 > pre ? (c0 - pre + w - 1) / w : 0;
			long long g1 = c1 > pre ? (c1 - pre + w - 1) / w : 0;
			g1 = g1 < group ? g1 : group;
			pre += w * group;
			for (long long g = g0; g < g1; g++) {
				if (ab.nq && (ab.hk != hk || ab.slot != e->slot || ab.nq == ATTN_MAXQ))
					attn_flush(c, &ab, scratch);
				int h = hk * group + (int)g;
				kern_attn_q *q = &ab.q[ab.nq++];
				q->q = c->q + (size_t)i * (size_t)c->qkv_dim + (size_t)h * (size_t)hd;
				q->out = c->att + (size_t)i * (size_t)c->q_dim + (size_t)h * (size_t)hd;
				q->p0 = lo;
				q->p1 = hi;
				ab.hk = hk;
				ab.slot = e->slot;
			}
		}
	}
	attn_flush(c, &ab, scratch);
}

/* ---- per-entry steps, on the pool from PER_ENTRY_POOL entries ---- */

#define PER_ENTRY_POOL 8

typedef void (*entry_fn)(slm_ctx *c, int i, int ith);

typedef struct ent_job {
	slm_ctx *c;
	entry_fn fn;
	int n;
} ent_job;

static void ent_worker(void *arg, int ith, int nth)
{
	ent_job *j = arg;
	long i0, i1;
	pool_split(j->n, ith, nth, &i0, &i1);
	for (long i = i0; i < i1; i++)
		j->fn(j->c, (int)i, ith);
}

/* fn for every entry: each entry's step reads and writes that entry's
 * rows only, so the split does not change the arithmetic */
static void per_entry(slm_ctx *c, int n, entry_fn fn)
{
	if (n >= PER_ENTRY_POOL && pool_size(c->pool) > 1) {
		ent_job j = { c, fn, n };
		pool_run(c->pool, ent_worker, &j);
	} else {
		for (int i = 0; i < n; i++)
			fn(c, i, 0);
	}
}

static void ent_attn_in(slm_ctx *c, int i, int ith)
{
	(void)ith;
	size_t D = (size_t)c->m->n_embd;
	rmsnorm(c->xn + (size_t)i * D, c->x + (size_t)i * D, c->m->layers[c->layer].attn_norm_w,
		(int)D, c->m->norm_eps);
}

/* q, k, v of entry i: biases, norms, RoPE; K and V into the cache */
static void ent_qkv(slm_ctx *c, int i, int ith)
{
	const slm_model *m = c->m;
	const slm_layer *L = &m->layers[c->layer];
	const slm_entry *e = &c->e[i];
	int hd = m->head_dim, l = c->layer;
	float *q = c->q + (size_t)i * (size_t)c->qkv_dim;
	float *k = q + c->q_dim, *v = k + c->kv_dim;
	if (L->bqkv) {
		const float *bb = L->bqkv_w;
		for (int d = 0; d < c->qkv_dim; d++)
			q[d] += bb[d];
	}
	if (L->bq) {
		const float *bq = L->bq_w, *bk = L->bk_w, *bv = L->bv_w;
		for (int d = 0; d < c->q_dim; d++)
			q[d] += bq[d];
		for (int d = 0; bk && d < c->kv_dim; d++)
			k[d] += bk[d];
		for (int d = 0; bv && d < c->kv_dim; d++)
			v[d] += bv[d];
	}
	if (L->q_norm)
		for (int h = 0; h < m->n_head; h++)
			rmsnorm(q + (size_t)h * (size_t)hd, q + (size_t)h * (size_t)hd, L->q_norm_w, hd,
				m->norm_eps);
	if (L->k_norm)
		for (int h = 0; h < m->n_head_kv; h++)
			rmsnorm(k + (size_t)h * (size_t)hd, k + (size_t)h * (size_t)hd, L->k_norm_w, hd,
				m->norm_eps);
	if (L->use_rope) {
		float *cs = c->rope_cs + (size_t)ith * (size_t)m->n_rot;
		rope_table(m, e->pos, L->rope_base, cs);
		kern_rope(q, m->n_head, hd, m->n_rot, cs, m->rope == ROPE_NEOX);
		kern_rope(k, m->n_head_kv, hd, m->n_rot, cs, m->rope == ROPE_NEOX);
	}
	/* Q meets the f16 cache as f16 values (llama.cpp converts it for its
	 * f16 K product), scaled first where the model scales Q rather than
	 * the scores */
	if (m->q_prescale)
		for (int d = 0; d < c->q_dim; d++)
			q[d] *= m->attn_scale;
	kern_round_f16(q, c->q_dim);
	kern_f32_to_f16(kv_row(c->kv, c->kv->k, e->slot, l, e->pos, c->kv_dim), k, c->kv_dim);
	kern_f32_to_f16(kv_row(c->kv, c->kv->v, e->slot, l, e->pos, c->kv_dim), v, c->kv_dim);
}

/* the attention's output into the residual; the FFN norm */
static void ent_ffn_in(slm_ctx *c, int i, int ith)
{
	(void)ith;
	const slm_model *m = c->m;
	const slm_layer *L = &m->layers[c->layer];
	int D = m->n_embd;
	float *t = c->tmp + (size_t)i * (size_t)D, *x = c->x + (size_t)i * (size_t)D;
	if (L->post_attn_norm)
		rmsnorm(t, t, L->post_attn_norm_w, D, m->norm_eps);
	for (int d = 0; d < D; d++)
		x[d] += t[d];
	rmsnorm(c->xn + (size_t)i * (size_t)D, x, L->ffn_norm_w, D, m->norm_eps);
}

/* the activation in place of the gate: FFN down reads rows of ff_dim (no
 * third buffer of B x n_ff floats) */
static void ent_act(slm_ctx *c, int i, int ith)
{
	(void)ith;
	int F = c->m->n_ff;
	float *g = c->ffa + (size_t)i * (size_t)c->ff_dim;
	const float *u = g + F;
	if (c->m->gelu)
		kern_geglu(g, g, u, F);
	else
		kern_swiglu(g, g, u, F);
}

/* the FFN's output into the residual; the next layer's attention norm */
static void ent_out(slm_ctx *c, int i, int ith)
{
	(void)ith;
	const slm_model *m = c->m;
	const slm_layer *L = &m->layers[c->layer];
	int D = m->n_embd;
	float *t = c->tmp + (size_t)i * (size_t)D, *x = c->x + (size_t)i * (size_t)D;
	if (L->post_ffn_norm)
		rmsnorm(t, t, L->post_ffn_norm_w, D, m->norm_eps);
	for (int d = 0; d < D; d++)
		x[d] += t[d];
	if (c->layer + 1 < m->n_layer)
		rmsnorm(c->xn + (size_t)i * (size_t)D, x, m->layers[c->layer + 1].attn_norm_w, D,
			m->norm_eps);
}

void model_forward(slm_ctx *c, const slm_entry *e, int n, float *logits)
{
	const slm_model *m = c->m;
	int D = m->n_embd;
	c->e = e;
	c->n = n;
	if (c->prof)
		c->t_mark = now_ns(); /* the caller's time between passes is not ours */
	for (int i = 0; i < n; i++) {
		const kern_mat te = tensor_kmat(m->tok_embd);
		float *x = c->x + (size_t)i * (size_t)D;
		kern_mat_dequant(&te, e[i].token, e[i].token + 1, x);
		if (m->embd_scale != 1.0f)
			for (int d = 0; d < D; d++)
				x[d] *= m->embd_scale;
	}
	if (c->prof) {
		c->prof->forwards++;
		c->prof->entries += (unsigned long long)n;
	}
	prof(c, PROF_EMBED);
	for (int l = 0; l < m->n_layer; l++) {
		const slm_layer *L = &m->layers[l];
		c->layer = l;
		/* the attention norm (layers past the first: with the last
		 * residual of the one before) */
		if (l == 0)
			per_entry(c, n, ent_attn_in);
		prof(c, PROF_NORM);
		/* q, k, v into c->q rows laid out [q | k | v] */
		if (L->wqkv) {
			matmul(c, L->wqkv, c->q, c->qkv_dim, c->xn, D, n);
		} else {
			const slm_tensor *w[3] = { L->wq, L->wk, L->wv };
			float *y[3] = { c->q, c->q + c->q_dim, c->q + c->q_dim + c->kv_dim };
			int64_t ld[3] = { c->qkv_dim, c->qkv_dim, c->qkv_dim };
			matmul_group(c, w, y, ld, 3, c->xn, D, n);
		}
		per_entry(c, n, ent_qkv);
		prof(c, PROF_ROPE);
		for (int i = 0; i < n; i++)
			c->spans[i] = attn_rows(c, &e[i]);
		pool_run(c->pool, attn_worker, c);
		prof(c, PROF_ATTN);
		matmul(c, L->wo, c->tmp, D, c->att, c->q_dim, n);
		per_entry(c, n, ent_ffn_in);
		prof(c, PROF_NORM);
		int F = m->n_ff;
		if (L->w_gate) {
			const slm_tensor *w[2] = { L->w_gate, L->w_up };
			float *y[2] = { c->ffa, c->ffa + F };
			int64_t ld[2] = { c->ff_dim, c->ff_dim };
			matmul_group(c, w, y, ld, 2, c->xn, D, n);
		} else {
			matmul(c, L->w_up, c->ffa, c->ff_dim, c->xn, D, n);
		}
		per_entry(c, n, ent_act);
		prof(c, PROF_ACT);
		matmul(c, L->w_down, c->tmp, D, c->ffa, c->ff_dim, n);
		per_entry(c, n, ent_out);
		prof(c, PROF_NORM);
	}
	/* logits for the entries that want them, batched */
	int nl = 0;
	for (int i = 0; i < n; i++) {
		if (e[i].logits < 0)
			continue;
		rmsnorm(c->xn + (size_t)nl * (size_t)D, c->x + (size_t)i * (size_t)D,
			m->output_norm_w, D, m->norm_eps);
		nl++;
	}
	prof(c, PROF_NORM);
	if (nl == 0)
		return;
	/* rows come out in entry order; scatter to the requested rows */
	float *out = logits;
	int contiguous = 1, r = 0;
	for (int i = 0; i < n; i++)
		if (e[i].logits >= 0 && e[i].logits != r++)
			contiguous = 0;
	if (!contiguous)
		slm_die(EX_SOFTWARE, "model_forward: logits rows must be 0, 1, 2... in entry order");
	c->in_logits = 1;
	matmul(c, m->output, out, m->n_vocab, c->xn, D, nl);
	c->in_logits = 0;
}
