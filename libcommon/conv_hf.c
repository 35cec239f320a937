/*
 * conv_hf.c - Hugging Face model directories into a cv_model, following
 * llama.cpp's convert_hf_to_gguf.py: config.json to the canonical
 * architecture and GGUF hyper-parameter keys; safetensors (one file or
 * shards listed by model.safetensors.index.json) to tensors with GGUF
 * names, shapes and row layouts; tokenizer.json, tokenizer_config.json
 * and generation_config.json to the vocabulary, special tokens, chat
 * template and sampling defaults. Also the same directory as a tar stream.
 */
#include "conv_hf.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

/* ------------------------------------------------------------------ */
/* Resources kept alive with the model                                 */
/* ------------------------------------------------------------------ */

enum { HF_F32, HF_F16, HF_BF16 };

/* How to produce one tensor that cannot point into the mapping. */
typedef struct hf_job {
	const uint8_t *src; /* first source row */
	int in;             /* source element type, HF_* */
	uint64_t rows;      /* outermost dimension */
	uint64_t rowlen;    /* elements per row */
	uint64_t heads;     /* != 0: undo HF's rotary row order (see produce) */
	int add_one;        /* gemma3 norms: stored weight + 1 */
	float *values;      /* generated tensors: the f32 values */
} hf_job;

typedef struct hf_res {
	st_file **st;
	size_t nst;
	hf_job **job;
	size_t njob, capjob;
} hf_res;

static void hf_res_free(void *p)
{
	hf_res *r = p;
	for (size_t i = 0; i < r->nst; i++)
		st_close(r->st[i]);
	free(r->st);
	for (size_t i = 0; i < r->njob; i++) {
		free(r->job[i]->values);
		free(r->job[i]);
	}
	free(r->job);
	free(r);
}

static hf_job *new_job(hf_res *r)
{
	if (r->njob == r->capjob) {
		r->capjob = r->capjob ? 2 * r->capjob : 64;
		r->job = slm_xrealloc(r->job, r->capjob * sizeof *r->job);
	}
	return r->job[r->njob++] = slm_xcalloc(1, sizeof(hf_job));
}

/* ------------------------------------------------------------------ */
/* Element conversions                                                 */
/* ------------------------------------------------------------------ */

static float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static float f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
	if (exp == 0x1f)
		return bits_f32(sign | 0x7f800000 | man << 13);
	if (exp)
		return bits_f32(sign | (exp + 112) << 23 | man << 13);
	if (!man)
		return bits_f32(sign);
	uint32_t e = 113; /* subnormal: normalise the mantissa */
	while (!(man & 0x400)) {
		man <<= 1;
		e--;
	}
	return bits_f32(sign | e << 23 | (man & 0x3ff) << 13);
}

/* Round to nearest even, as numpy and ggml do: let the FPU round by
 * adding a power of two that leaves exactly the f16 mantissa bits. */
static uint16_t f32_to_f16(float f)
{
	uint32_t w = f32_bits(f), w2 = w + w, sign = w & 0x80000000u;
	float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
	uint32_t bias = w2 & 0xff000000u;
	if (bias < 0x71000000u)
		bias = 0x71000000u;
	base = bits_f32((bias >> 1) + 0x07800000u) + base;
	uint32_t bits = f32_bits(base);
	uint32_t nonsign = ((bits >> 13) & 0x7c00u) + (bits & 0x0fffu);
	return (uint16_t)((sign >> 16) | (w2 > 0xff000000u ? 0x7e00u : nonsign));
}

static float load_elem(const uint8_t *p, int in)
{
	uint16_t h;
	switch (in) {
	case HF_F16:
		memcpy(&h, p, 2);
		return f16_to_f32(h);
	case HF_BF16:
		memcpy(&h, p, 2);
		return bits_f32((uint32_t)h << 16);
	default: {
		float f;
		memcpy(&f, p, 4);
		return f;
	}
	}
}

static unsigned elem_size(int t)
{
	return t == HF_F32 ? 4 : 2;
}

/* Fill a tensor from its job: rows in llama.cpp's order, elements kept
 * or widened to f32, +1 for gemma3 norms (computed as llama.cpp does: in
 * f16 for f16 sources, else in f32). Only f32 outputs are converted or
 * shifted: llama.cpp stores every 1-D tensor and norm in f32. */
static int hf_produce(const cv_tensor *t, uint8_t *out, slm_err *err)
{
	(void)err;
	const hf_job *j = t->ctx;
	if (j->values) {
		memcpy(out, j->values, (size_t)t->size);
		return 0;
	}
	int to_f32 = !strcmp(t->dtype->name, "f32");
	size_t ies = elem_size(j->in), oes = to_f32 ? 4 : ies;
	uint64_t hd = j->heads ? j->rows / j->heads : 0;
	for (uint64_t r = 0; r < j->rows; r++) {
		uint64_t sr = r;
		if (j->heads) {
			/* LlamaModel.permute: within each head, output row
			 * 2k+i comes from source row i*hd/2+k */
			uint64_t h = r / hd, w = r % hd;
			sr = h * hd + (w & 1) * (hd / 2) + (w >> 1);
		}
		const uint8_t *s = j->src + sr * j->rowlen * ies;
		uint8_t *d = out + r * j->rowlen * oes;
		if (!to_f32 || (j->in == HF_F32 && !j->add_one)) {
			memcpy(d, s, (size_t)(j->rowlen * ies));
			continue;
		}
		for (uint64_t k = 0; k < j->rowlen; k++) {
			float x = load_elem(s + k * ies, j->in);
			if (j->add_one) {
				x += 1.0f;
				if (j->in == HF_F16)
					x = f16_to_f32(f32_to_f16(x));
			}
			memcpy(d + 4 * k, &x, 4);
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* JSON files and values                                               */
/* ------------------------------------------------------------------ */

static char *path_join(const char *dir, const char *file)
{
	char *p;
	if (asprintf(&p, "%s/%s", dir, file) < 0)
		slm_die(EX_OSERR, "out of memory");
	return p;
}

/* Load dir/file as a JSON object: 1 loaded, 0 absent (optional only),
 * -1 error. */
static int load_json(const char *dir, const char *file, int required,
		     json_t **out, slm_err *err)
{
	char *path = path_join(dir, file);
	struct stat sb;
	*out = NULL;
	if (stat(path, &sb) < 0) {
		int e = errno;
		if (e == ENOENT && !required) {
			free(path);
			return 0;
		}
		slm_seterr(err, EX_NOINPUT, "%s: %s", path, strerror(e));
		free(path);
		return -1;
	}
	json_error_t je;
	json_t *j = json_load_file(path, JSON_ALLOW_NUL, &je);
	if (!j) {
		if (je.line < 0)
			slm_seterr(err, EX_NOINPUT, "%s: %s", path, je.text);
		else
			slm_seterr(err, EX_DATAERR, "%s: line %d, column %d: %s", path,
				   je.line, je.column, je.text);
		free(path);
		return -1;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		slm_seterr(err, EX_DATAERR, "%s: not a JSON object", path);
		free(path);
		return -1;
	}
	free(path);
	*out = j;
	return 1;
}

#define KEYS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* The value of the first of keys present in o (possibly JSON null, as
 * llama.cpp's find_hparam), NULL when none is; *which names the key. */
static json_t *find_key(json_t *o, const char *const *keys, const char **which)
{
	for (; *keys; keys++) {
		json_t *v = json_object_get(o, *keys);
		if (v) {
			if (which)
				*which = *keys;
			return v;
		}
	}
	return NULL;
}

static int str_eq(json_t *v, const char *s)
{
	return json_is_string(v) && !strcmp(json_string_value(v), s);
}

static int ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);
	return n >= k && !strcmp(s + n - k, suf);
}

/* ------------------------------------------------------------------ */
/* The conversion state                                                */
/* ------------------------------------------------------------------ */

typedef struct hf {
	cv_model *m;
	hf_res *res;
	const char *dir;
	char *cfg_path;
	json_t *cfg;    /* config.json, text_config merged into the top */
	const char *arch;
	json_t *hp;     /* manifest "hparams" (borrowed) */
	json_t *rope;   /* rope parameters as llama.cpp mirrors them (owned) */
	int64_t n_layer, n_head, n_head_kv;
} hf;

static int cfg_err(const hf *h, slm_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int cfg_err(const hf *h, slm_err *err, const char *fmt, ...)
{
	char what[SLM_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return slm_seterr(err, EX_DATAERR, "%s: %s", h->cfg_path, what);
}

/* Integer hyper-parameter: absent or null is skipped (0 returned in
 * *out), anything but an integer >= min is an error. */
static int hp_int(hf *h, const char *gkey, json_t *v, const char *ckey,
		  int64_t min, int64_t *out, slm_err *err)
{
	if (out)
		*out = 0;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
	    fabs(json_real_value(v)) < 9e15)
		v = json_integer((json_int_t)json_real_value(v));
	else
		json_incref(v);
	if (!json_is_integer(v) || json_integer_value(v) < min) {
		json_decref(v);
		return cfg_err(h, err, "'%s' is not an integer of at least %lld", ckey,
			       (long long)min);
	}
	if (out)
		*out = json_integer_value(v);
	json_object_set_new(h->hp, gkey, v);
	return 0;
}

static int hp_real(hf *h, const char *gkey, json_t *v, const char *ckey,
		   slm_err *err)
{
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v))
		return cfg_err(h, err, "'%s' is not a number", ckey);
	json_object_set_new(h->hp, gkey, json_real(json_number_value(v)));
	return 0;
}

/* ------------------------------------------------------------------ */
/* Architectures and hyper-parameters                                  */
/* ------------------------------------------------------------------ */

static const struct {
	const char *hf_arch, *model_type, *arch;
} archs[] = {
	{ "LlamaForCausalLM", "llama", "llama" },
	{ "MistralForCausalLM", "mistral", "llama" },
	{ "Qwen2ForCausalLM", "qwen2", "qwen2" },
	{ "Qwen3ForCausalLM", "qwen3", "qwen3" },
	{ "Gemma3ForCausalLM", "gemma3_text", "gemma3" },
	{ "Gemma3ForConditionalGeneration", "gemma3", "gemma3" },
	{ "SmolLM3ForCausalLM", "smollm3", "smollm3" },
	{ "Phi3ForCausalLM", "phi3", "phi3" },
};
#define NARCHS (sizeof archs / sizeof archs[0])

static int is_llama_like(const hf *h) /* llama.cpp's LlamaModel and its subclasses */
{
	return !strcmp(h->arch, "llama") || !strcmp(h->arch, "smollm3");
}

static int pick_arch(hf *h, const char **hf_arch, slm_err *err)
{
	json_t *a = json_object_get(h->cfg, "architectures");
	const char *name = NULL;
	if (json_is_array(a) && json_array_size(a) > 0)
		name = json_string_value(json_array_get(a, 0));
	const char *mt = json_string_value(json_object_get(h->cfg, "model_type"));
	for (size_t i = 0; i < NARCHS; i++)
		if ((name && !strcmp(name, archs[i].hf_arch)) ||
		    (!name && mt && !strcmp(mt, archs[i].model_type))) {
			h->arch = archs[i].arch;
			*hf_arch = name ? name : mt;
			return 0;
		}
	char list[512] = "";
	for (size_t i = 0; i < NARCHS; i++) {
		strcat(list, i ? ", " : "");
		strcat(list, archs[i].hf_arch);
	}
	if (!name && !mt)
		return cfg_err(h, err, "no 'architectures' or 'model_type' (supported: %s)",
			       list);
	return cfg_err(h, err, "architecture '%.100s' is not supported (supported: %s)",
		       name ? name : mt, list);
}

/* Mirror the global RoPE settings into rope_parameters, as llama.cpp's
 * TextModel does. */
static void rope_params(hf *h)
{
	json_t *c = h->cfg;
	json_t *rp = json_object_get(c, "rope_parameters");
	if (!rp || json_is_null(rp))
		rp = json_object_get(c, "rope_scaling");
	h->rope = json_is_object(rp) ? json_deep_copy(rp) : json_object();
	rp = h->rope;
	if (json_object_get(rp, "full_attention") || json_object_get(rp, "sliding_attention"))
		return;
	json_t *theta = find_key(c, KEYS("global_rope_theta", "rope_global_theta",
					 "rope_theta_global", "rope_theta",
					 "rotary_emb_base"), NULL);
	json_t *local = find_key(c, KEYS("local_rope_theta", "rope_local_theta",
					 "rope_theta_local", "swa_rope_theta",
					 "rope_local_base_freq"), NULL);
	json_t *prf = find_key(c, KEYS("partial_rotary_factor", "rope_pct", "rope_percent"),
			       NULL);
	json_t *omp = json_object_get(c, "original_max_position_embeddings");
	if (local && !json_is_null(local)) {
		json_t *s = json_object();
		json_object_set(s, "rope_theta", local);
		json_object_set_new(rp, "sliding_attention", s);
	}
	if (!json_object_get(rp, "rope_theta") && theta && !json_is_null(theta))
		json_object_set(rp, "rope_theta", theta);
	if (!json_object_get(rp, "rope_type") && json_object_get(rp, "type"))
		json_object_set(rp, "rope_type", json_object_get(rp, "type"));
	if (!json_object_get(rp, "partial_rotary_factor") && prf && !json_is_null(prf))
		json_object_set(rp, "partial_rotary_factor", prf);
	if (!json_object_get(rp, "original_max_position_embeddings") && omp &&
	    !json_is_null(omp))
		json_object_set(rp, "original_max_position_embeddings", omp);
}

static json_t *rope_full(const hf *h)
{
	json_t *f = json_object_get(h->rope, "full_attention");
	return json_is_object(f) ? f : h->rope;
}

/* TextModel.set_gguf_parameters */
static int hp_common(hf *h, slm_err *err)
{
	json_t *c = h->cfg, *v;
	const char *k = NULL;
	v = find_key(c, KEYS("n_layers", "num_hidden_layers", "n_layer", "num_layers"), &k);
	if (!v || json_is_null(v))
		return cfg_err(h, err, "no 'num_hidden_layers'");
	if (hp_int(h, "block_count", v, k, 1, &h->n_layer, err) < 0)
		return -1;
	v = find_key(c, KEYS("max_position_embeddings", "n_ctx", "n_positions", "max_length",
			     "max_sequence_length", "model_max_length"), &k);
	if (hp_int(h, "context_length", v, k, 1, NULL, err) < 0)
		return -1;
	v = find_key(c, KEYS("hidden_size", "n_embd", "dim"), &k);
	if (hp_int(h, "embedding_length", v, k, 1, NULL, err) < 0)
		return -1;
	v = find_key(c, KEYS("prefix_dense_intermediate_size", "dense_intermediate_size",
			     "intermediate_size", "n_inner", "hidden_dim"), &k);
	if (hp_int(h, "feed_forward_length", v, k, 1, NULL, err) < 0)
		return -1;
	v = find_key(c, KEYS("num_attention_heads", "n_head", "n_heads"), &k);
	if (hp_int(h, "attention.head_count", v, k, 1, &h->n_head, err) < 0)
		return -1;
	v = find_key(c, KEYS("num_key_value_heads", "n_kv_heads"), &k);
	if (hp_int(h, "attention.head_count_kv", v, k, 1, &h->n_head_kv, err) < 0)
		return -1;
	if (json_is_false(json_object_get(c, "is_causal")))
		json_object_set_new(h->hp, "attention.causal", json_false());

	json_t *rp = rope_full(h);
	json_t *type = json_object_get(rp, "rope_type");
	json_t *factor = json_object_get(rp, "factor");
	if (json_is_string(type) && factor && !json_is_null(factor)) {
		const char *t = json_string_value(type);
		if (!strcmp(t, "linear") || !strcmp(t, "yarn")) {
			json_object_set_new(h->hp, "rope.scaling.type", json_string(t));
			if (hp_real(h, "rope.scaling.factor", factor, "rope_scaling.factor",
				    err) < 0)
				return -1;
		}
		if (!strcmp(t, "yarn")) {
			v = json_object_get(rp, "original_max_position_embeddings");
			if (!v)
				return cfg_err(h, err, "yarn RoPE scaling without "
					       "'original_max_position_embeddings'");
			if (hp_int(h, "rope.scaling.original_context_length", v,
				   "original_max_position_embeddings", 1, NULL, err) < 0 ||
			    hp_real(h, "rope.scaling.yarn_ext_factor",
				    json_object_get(rp, "extrapolation_factor"),
				    "extrapolation_factor", err) < 0 ||
			    hp_real(h, "rope.scaling.yarn_attn_factor",
				    find_key(rp, KEYS("attention_factor", "attn_factor"), &k), k,
				    err) < 0 ||
			    hp_real(h, "rope.scaling.yarn_beta_fast",
				    json_object_get(rp, "beta_fast"), "beta_fast", err) < 0 ||
			    hp_real(h, "rope.scaling.yarn_beta_slow",
				    json_object_get(rp, "beta_slow"), "beta_slow", err) < 0)
				return -1;
		}
	}
	if (json_is_string(type) && (str_eq(type, "su") || str_eq(type, "longrope")))
		json_object_set_new(h->hp, "rope.scaling.type", json_string("longrope"));
	if (hp_real(h, "rope.freq_base", json_object_get(rp, "rope_theta"), "rope_theta",
		    err) < 0 ||
	    hp_real(h, "rope.freq_base_swa",
		    json_object_get(json_object_get(h->rope, "sliding_attention"), "rope_theta"),
		    "rope_local_base_freq", err) < 0)
		return -1;
	v = find_key(c, KEYS("rms_norm_eps", "norm_eps"), &k);
	if (hp_real(h, "attention.layer_norm_rms_epsilon", v, k, err) < 0)
		return -1;
	v = find_key(c, KEYS("layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"), &k);
	if (hp_real(h, "attention.layer_norm_epsilon", v, k, err) < 0)
		return -1;
	v = json_object_get(c, "head_dim");
	if (hp_int(h, "attention.key_length", v, "head_dim", 1, NULL, err) < 0 ||
	    hp_int(h, "attention.value_length", v, "head_dim", 1, NULL, err) < 0)
		return -1;
	return 0;
}

/* LlamaModel.set_gguf_parameters: vocab_size and rope.dimension_count. */
static int hp_llama(hf *h, slm_err *err)
{
	json_t *v = json_object_get(h->cfg, "vocab_size");
	if (!v)
		return cfg_err(h, err, "no 'vocab_size'");
	if (hp_int(h, "vocab_size", v, "vocab_size", 1, NULL, err) < 0)
		return -1;
	v = json_object_get(h->cfg, "head_dim");
	if (v && !json_is_null(v))
		return hp_int(h, "rope.dimension_count", v, "head_dim", 1, NULL, err);
	int64_t n_embd = json_integer_value(json_object_get(h->hp, "embedding_length"));
	if (!n_embd || !h->n_head)
		return cfg_err(h, err, "no 'hidden_size' or 'num_attention_heads'");
	json_object_set_new(h->hp, "rope.dimension_count", json_integer(n_embd / h->n_head));
	return 0;
}

/* Gemma3Model.set_gguf_parameters: defaults for keys its configs omit,
 * and the sliding-window layout. */
static int hp_gemma3(hf *h, slm_err *err)
{
	json_t *c = h->cfg, *v;
	struct {
		const char *gkey, *ckey;
		json_int_t def;
	} ints[] = {
		{ "context_length", "max_position_embeddings", 131072 },
		{ "attention.head_count", "num_attention_heads", 8 },
		{ "attention.key_length", "head_dim", 256 },
		{ "attention.value_length", "head_dim", 256 },
		{ "attention.head_count_kv", "num_key_value_heads", 4 },
	};
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		v = json_object_get(c, ints[i].ckey);
		json_t *d = json_integer(ints[i].def);
		int64_t got;
		int rc = hp_int(h, ints[i].gkey, v ? v : d, ints[i].ckey, 1, &got, err);
		json_decref(d);
		if (rc < 0)
			return -1;
		if (!strcmp(ints[i].gkey, "attention.head_count"))
			h->n_head = got;
		if (!strcmp(ints[i].gkey, "attention.head_count_kv"))
			h->n_head_kv = got;
	}
	v = json_object_get(c, "rms_norm_eps");
	json_object_set_new(h->hp, "attention.layer_norm_rms_epsilon",
			    json_real(json_is_number(v) ? json_number_value(v) : 1e-6));
	v = json_object_get(rope_full(h), "rope_theta");
	json_object_set_new(h->hp, "rope.freq_base",
			    json_real(json_is_number(v) ? json_number_value(v) : 1e6));
	v = json_object_get(c, "final_logit_softcapping");
	if (json_is_number(v) && json_number_value(v) != 0)
		json_object_set_new(h->hp, "final_logit_softcapping",
				    json_real(json_number_value(v)));
	/* sliding-window layers: window and RoPE base, with the defaults of
	 * transformers' Gemma3TextConfig (which llama.cpp's converter sees) */
	json_t *pat = find_key(c, KEYS("sliding_window_pattern", "_sliding_window_pattern"),
			       NULL);
	if (!(json_is_integer(pat) && json_integer_value(pat) == 1)) {
		v = json_object_get(c, "sliding_window");
		json_t *d = json_integer(4096);
		int rc = hp_int(h, "attention.sliding_window", v && !json_is_null(v) ? v : d,
				"sliding_window", 0, NULL, err);
		json_decref(d);
		if (rc < 0)
			return -1;
	}
	if (!json_object_get(h->hp, "rope.freq_base_swa"))
		json_object_set_new(h->hp, "rope.freq_base_swa", json_real(10000.0));
	/* The layout, which llama.cpp otherwise assumes (every 6th layer
	 * global): a period, or one flag per layer from layer_types. */
	json_t *lt = json_object_get(c, "layer_types");
	if (json_is_integer(pat) && json_integer_value(pat) > 0) {
		json_object_set_new(h->hp, "attention.sliding_window_pattern",
				    json_integer(json_integer_value(pat)));
	} else if (json_is_array(lt) && (int64_t)json_array_size(lt) == h->n_layer) {
		json_t *a = json_array();
		size_t i;
		json_t *e;
		json_array_foreach(lt, i, e)
			json_array_append_new(a, json_boolean(str_eq(e, "sliding_attention")));
		json_object_set_new(h->hp, "attention.sliding_window_pattern", a);
	}
	return 0;
}

/* Phi3MiniModel.set_gguf_parameters (it does not use the common keys). */
static int hp_phi3(hf *h, slm_err *err)
{
	json_t *c = h->cfg, *v;
	const char *k = NULL;
	int64_t n_embd, max_pos, orig;
	struct {
		const char *gkey;
		const char *const *ckeys;
		int64_t *out;
	} req[] = {
		{ "block_count", KEYS("n_layers", "num_hidden_layers", "n_layer", "num_layers"),
		  &h->n_layer },
		{ "embedding_length", KEYS("hidden_size", "n_embd"), &n_embd },
		{ "attention.head_count", KEYS("num_attention_heads", "n_head"), &h->n_head },
		{ "attention.head_count_kv", KEYS("num_key_value_heads", "n_head_kv"),
		  &h->n_head_kv },
		{ "context_length", KEYS("n_positions", "max_position_embeddings"), &max_pos },
		{ "feed_forward_length", KEYS("intermediate_size"), NULL },
	};
	for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
		v = find_key(c, req[i].ckeys, &k);
		if (!v || json_is_null(v))
			return cfg_err(h, err, "no '%s'", req[i].ckeys[0]);
		if (hp_int(h, req[i].gkey, v, k, 1, req[i].out, err) < 0)
			return -1;
	}
	v = json_object_get(c, "rms_norm_eps");
	if (!v || json_is_null(v))
		return cfg_err(h, err, "no 'rms_norm_eps'");
	if (hp_real(h, "attention.layer_norm_rms_epsilon", v, "rms_norm_eps", err) < 0)
		return -1;
	v = json_object_get(h->rope, "original_max_position_embeddings");
	if (!v || json_is_null(v))
		return cfg_err(h, err, "no 'original_max_position_embeddings'");
	if (hp_int(h, "rope.scaling.original_context_length", v,
		   "original_max_position_embeddings", 1, &orig, err) < 0)
		return -1;
	v = json_object_get(h->rope, "partial_rotary_factor");
	double pct = json_is_number(v) ? json_number_value(v) : 1.0;
	int64_t rope_dims = (int64_t)(pct * (double)n_embd) / h->n_head;
	json_object_set_new(h->hp, "rope.dimension_count", json_integer(rope_dims));
	v = json_object_get(rope_full(h), "rope_theta");
	if (!v || json_is_null(v))
		return cfg_err(h, err, "no 'rope_theta'");
	if (hp_real(h, "rope.freq_base", v, "rope_theta", err) < 0)
		return -1;
	v = json_object_get(c, "sliding_window");
	json_object_set_new(h->hp, "attention.sliding_window",
			    json_integer(json_is_integer(v) ? json_integer_value(v) : 0));

	/* long-context models: rope factors as tensors, and attn_factor */
	json_t *lf = json_object_get(h->rope, "long_factor");
	json_t *sf = json_object_get(h->rope, "short_factor");
	if (!json_is_array(lf) || json_array_size(lf) == 0)
		return 0;
	const char *type = json_string_value(json_object_get(h->rope, "rope_type"));
	double scale = (double)max_pos / (double)orig, attn;
	if (!type)
		return cfg_err(h, err, "rope_scaling has long factors but no type");
	if (!strcasecmp(type, "su") || !strcasecmp(type, "longrope"))
		attn = scale > 1.0 ? sqrt(1 + log(scale) / log((double)orig)) : 1.0;
	else if (!strcasecmp(type, "yarn"))
		attn = scale > 1.0 ? 0.1 * log(scale) + 1.0 : 1.0;
	else
		return cfg_err(h, err, "rope scaling type '%.40s' is not supported", type);
	json_object_set_new(h->hp, "rope.scaling.attn_factor", json_real(attn));
	if (!json_is_array(sf) || json_array_size(lf) != json_array_size(sf) ||
	    (int64_t)json_array_size(lf) * 2 != rope_dims)
		return cfg_err(h, err, "rope long and short factors must both have %lld "
			       "entries", (long long)(rope_dims / 2));
	json_t *fs[2] = { lf, sf };
	const char *names[2] = { "rope_factors_long.weight", "rope_factors_short.weight" };
	for (int i = 0; i < 2; i++) {
		uint64_t ne = json_array_size(fs[i]);
		cv_tensor *t = cv_add_tensor(h->m, names[i], dtype_by_name("f32"), 1, &ne, err);
		if (!t)
			return -1;
		hf_job *j = new_job(h->res);
		j->values = slm_xcalloc(ne, sizeof(float));
		for (uint64_t e = 0; e < ne; e++) {
			json_t *x = json_array_get(fs[i], e);
			if (!json_is_number(x))
				return cfg_err(h, err, "rope factor %llu is not a number",
					       (unsigned long long)e);
			j->values[e] = (float)json_number_value(x);
		}
		t->produce = hf_produce;
		t->ctx = j;
	}
	return 0;
}

/* LlamaModel.generate_extra_tensors: llama3 RoPE scaling becomes
 * per-frequency factors in rope_freqs.weight. */
static int llama3_rope_freqs(hf *h, slm_err *err)
{
	json_t *rp = rope_full(h);
	const char *type = json_string_value(json_object_get(rp, "rope_type"));
	if (!type || strcasecmp(type, "llama3"))
		return 0;
	json_t *v;
#define NUM(o, key, def) \
	(json_is_number(v = json_object_get((o), (key))) ? json_number_value(v) : (def))
	double base = NUM(rp, "rope_theta", 10000.0);
	double factor = NUM(rp, "factor", 8.0);
	double low = NUM(rp, "low_freq_factor", 1.0);
	double high = NUM(rp, "high_freq_factor", 4.0);
	double old_ctx = NUM(rp, "original_max_position_embeddings",
			     NUM(h->cfg, "original_max_position_embeddings", 8192.0));
#undef NUM
	int64_t dim = json_integer_value(json_object_get(h->hp, "rope.dimension_count"));
	if (dim < 2 || dim > 65536)
		return cfg_err(h, err, "llama3 RoPE scaling with a head size of %lld",
			       (long long)dim);
	uint64_t n = (uint64_t)(dim + 1) / 2;
	cv_tensor *t = cv_add_tensor(h->m, "rope_freqs.weight", dtype_by_name("f32"), 1, &n, err);
	if (!t)
		return -1;
	hf_job *j = new_job(h->res);
	j->values = slm_xcalloc(n, sizeof(float));
	double low_wl = old_ctx / low, high_wl = old_ctx / high;
	for (uint64_t i = 0; i < n; i++) {
		/* as torch computes it: exponent and frequency in float32 */
		float ex = (float)(2.0 * (double)i / (double)dim);
		float freq = (float)(1.0 / pow(base, (double)ex));
		double wl = 2 * M_PI / freq;
		if (wl < high_wl)
			j->values[i] = 1.0f;
		else if (wl > low_wl)
			j->values[i] = (float)factor;
		else {
			double smooth = (old_ctx / wl - low) / (high - low);
			j->values[i] = (float)(1.0 / ((1 - smooth) / factor + smooth));
		}
	}
	t->produce = hf_produce;
	t->ctx = j;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Tensor names                                                        */
/* ------------------------------------------------------------------ */

/* Per-block names, first match wins (arch-specific entries first). */
static const struct {
	const char *hf, *gguf, *arch; /* arch NULL: every architecture */
} blk_names[] = {
	{ "post_attention_layernorm", "post_attention_norm", "gemma3" },
	{ "pre_feedforward_layernorm", "ffn_norm", "gemma3" },
	{ "post_feedforward_layernorm", "post_ffw_norm", "gemma3" },
	{ "self_attn.q_norm", "attn_q_norm", "gemma3" },
	{ "self_attn.k_norm", "attn_k_norm", "gemma3" },
	{ "self_attn.q_norm", "attn_q_norm", "qwen3" },
	{ "self_attn.k_norm", "attn_k_norm", "qwen3" },
	{ "self_attn.qkv_proj", "attn_qkv", "phi3" },
	{ "mlp.gate_up_proj", "ffn_up", "phi3" },
	{ "input_layernorm", "attn_norm", NULL },
	{ "post_attention_layernorm", "ffn_norm", NULL },
	{ "self_attn.q_proj", "attn_q", NULL },
	{ "self_attn.k_proj", "attn_k", NULL },
	{ "self_attn.v_proj", "attn_v", NULL },
	{ "self_attn.o_proj", "attn_output", NULL },
	{ "mlp.gate_proj", "ffn_gate", NULL },
	{ "mlp.up_proj", "ffn_up", NULL },
	{ "mlp.down_proj", "ffn_down", NULL },
};

/* Tensors of other modalities and buffers llama.cpp drops. */
static int skipped(const char *name)
{
	static const char *const skip[] = {
		"vision_tower", "vision_model", "multi_modal_projector", "audio_tower",
		"embed_vision", "embed_audio", "rotary_emb.inv_freq",
	};
	for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
		if (strstr(name, skip[i]))
			return 1;
	return 0;
}

/* HF name to GGUF name: 1 mapped, 0 skipped, -1 unknown. norm_w: the HF
 * name ends in "norm.weight" (gemma3 adds 1 to those). */
static int map_name(const char *arch, const char *hfname, char *out, size_t outsz,
		    int64_t *bid)
{
	char buf[512];
	*bid = -1;
	if (skipped(hfname))
		return 0;
	if (strlen(hfname) >= sizeof buf)
		return -1;
	/* drop every "language_model." (multimodal wrappers) */
	size_t n = 0;
	for (const char *s = hfname; *s;) {
		if (!strncmp(s, "language_model.", 15)) {
			s += 15;
			continue;
		}
		buf[n++] = *s++;
	}
	buf[n] = 0;
	static const char *const top[][2] = {
		{ "model.embed_tokens.weight", "token_embd.weight" },
		{ "model.norm.weight", "output_norm.weight" },
		{ "lm_head.weight", "output.weight" },
	};
	for (size_t i = 0; i < 3; i++)
		if (!strcmp(buf, top[i][0]))
			return snprintf(out, outsz, "%s", top[i][1]) < (int)outsz ? 1 : -1;
	if (strncmp(buf, "model.layers.", 13) || !(buf[13] >= '0' && buf[13] <= '9'))
		return -1;
	char *end;
	errno = 0;
	unsigned long long b = strtoull(buf + 13, &end, 10);
	if (errno || *end != '.' || b > INT32_MAX)
		return -1;
	char *rest = end + 1, *suffix;
	if (ends_with(rest, ".weight"))
		suffix = rest + strlen(rest) - 7;
	else if (ends_with(rest, ".bias"))
		suffix = rest + strlen(rest) - 5;
	else
		return -1;
	for (size_t i = 0; i < sizeof blk_names / sizeof blk_names[0]; i++) {
		size_t k = strlen(blk_names[i].hf);
		if ((size_t)(suffix - rest) == k && !strncmp(rest, blk_names[i].hf, k) &&
		    (!blk_names[i].arch || !strcmp(blk_names[i].arch, arch))) {
			*bid = (int64_t)b;
			return snprintf(out, outsz, "blk.%llu.%s%s", b, blk_names[i].gguf,
					suffix) < (int)outsz ? 1 : -1;
		}
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* Safetensors files and tensors                                       */
/* ------------------------------------------------------------------ */

static void hold_st(hf *h, st_file *f)
{
	h->res->st = slm_xrealloc(h->res->st, (h->res->nst + 1) * sizeof *h->res->st);
	h->res->st[h->res->nst++] = f;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int safe_file_name(const char *s)
{
	return *s && *s != '.' && !strchr(s, '/');
}

/* Open the shards: those model.safetensors.index.json lists, or every
 * model*.safetensors in the directory. */
static int open_shards(hf *h, slm_err *err)
{
	json_t *idx;
	int rc = load_json(h->dir, "model.safetensors.index.json", 0, &idx, err);
	if (rc < 0)
		return -1;
	char **files = NULL;
	size_t nf = 0;
	if (rc == 1) {
		char *ipath = path_join(h->dir, "model.safetensors.index.json");
		json_t *wm = json_object_get(idx, "weight_map");
		const char *k;
		json_t *v;
		if (!json_is_object(wm)) {
			slm_seterr(err, EX_DATAERR, "%s: no 'weight_map' object", ipath);
			goto fail_index;
		}
		files = slm_xcalloc(json_object_size(wm) + 1, sizeof *files);
		json_object_foreach(wm, k, v) {
			if (!json_is_string(v) || !safe_file_name(json_string_value(v))) {
				slm_seterr(err, EX_DATAERR,
					   "%s: tensor '%.200s': not a file name in this directory",
					   ipath, k);
				goto fail_index;
			}
			files[nf++] = (char *)json_string_value(v);
		}
		qsort(files, nf, sizeof *files, cmp_str);
		size_t u = 0;
		for (size_t i = 0; i < nf; i++)
			if (!u || strcmp(files[u - 1], files[i]))
				files[u++] = files[i];
		nf = u;
		for (size_t i = 0; i < nf; i++) {
			char *p = path_join(h->dir, files[i]);
			st_file *f;
			int r = st_open(&f, p, err);
			free(p);
			if (r < 0)
				goto fail_index;
			hold_st(h, f);
		}
		/* the map and the shards must agree */
		json_object_foreach(wm, k, v) {
			size_t s = 0;
			while (strcmp(st_name(h->res->st[s]) + strlen(h->dir) + 1,
				      json_string_value(v)))
				s++;
			if (!st_find(h->res->st[s], k)) {
				slm_seterr(err, EX_DATAERR, "%s: tensor '%.200s' is not in %s",
					   ipath, k, json_string_value(v));
				goto fail_index;
			}
		}
		for (size_t s = 0; s < h->res->nst; s++)
			for (size_t i = 0; i < st_n_tensors(h->res->st[s]); i++) {
				const char *tn = st_tensor_at(h->res->st[s], i)->name;
				const char *fn = st_name(h->res->st[s]) + strlen(h->dir) + 1;
				if (!str_eq(json_object_get(wm, tn), fn)) {
					slm_seterr(err, EX_DATAERR,
						   "%s: tensor '%.200s' is not listed for it in %s",
						   st_name(h->res->st[s]), tn, ipath);
					goto fail_index;
				}
			}
		free(files);
		free(ipath);
		json_decref(idx);
		return 0;
fail_index:
		free(files);
		free(ipath);
		json_decref(idx);
		return -1;
	}

	DIR *d = opendir(h->dir);
	if (!d)
		return slm_seterr(err, EX_NOINPUT, "%s: %s", h->dir, strerror(errno));
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "model", 5) || !ends_with(de->d_name, ".safetensors"))
			continue;
		files = slm_xrealloc(files, (nf + 1) * sizeof *files);
		files[nf++] = slm_xstrdup(de->d_name);
	}
	closedir(d);
	if (!nf)
		return slm_seterr(err, EX_NOINPUT,
				  "%s: no model.safetensors or model.safetensors.index.json",
				  h->dir);
	qsort(files, nf, sizeof *files, cmp_str);
	rc = 0;
	for (size_t i = 0; i < nf; i++) {
		char *p = path_join(h->dir, files[i]);
		st_file *f;
		if (rc == 0 && (rc = st_open(&f, p, err)) == 0)
			hold_st(h, f);
		free(p);
		free(files[i]);
	}
	free(files);
	return rc;
}

static int hf_dtype(const char *st)
{
	return !strcmp(st, "F32") ? HF_F32 : !strcmp(st, "F16") ? HF_F16
	       : !strcmp(st, "BF16") ? HF_BF16 : -1;
}

static int add_tensor(hf *h, const st_file *sf, const st_tensor *st, slm_err *err)
{
	char gname[256];
	int64_t bid;
	int r = map_name(h->arch, st->name, gname, sizeof gname, &bid);
	if (r == 0)
		return 0;
	if (r < 0)
		return slm_seterr(err, EX_DATAERR,
				  "%s: tensor '%.200s' has no %s equivalent in llama.cpp's naming",
				  st_name(sf), st->name, h->arch);
	if (bid >= h->n_layer)
		return slm_seterr(err, EX_DATAERR,
				  "%s: tensor '%.200s': block %lld but config.json has %lld",
				  st_name(sf), st->name, (long long)bid, (long long)h->n_layer);
	int in = hf_dtype(st->dtype);
	if (in < 0)
		return slm_seterr(err, EX_DATAERR,
				  "%s: tensor '%.200s': dtype %s is not supported "
				  "(F32, F16 and BF16 are)", st_name(sf), st->name, st->dtype);
	if (st->ndim < 1 || st->ndim > SLM_MAX_DIMS || st->nelems == 0)
		return slm_seterr(err, EX_DATAERR,
				  "%s: tensor '%.200s': %d dimensions, %llu elements "
				  "(1 to %d dimensions, not empty, are supported)", st_name(sf),
				  st->name, st->ndim, (unsigned long long)st->nelems, SLM_MAX_DIMS);
	uint64_t ne[SLM_MAX_DIMS];
	for (int i = 0; i < st->ndim; i++)
		ne[i] = st->shape[st->ndim - 1 - i];
	uint64_t rows = st->shape[0], rowlen = st->nelems / rows;

	/* llama.cpp keeps 1-D tensors and norms in f32 */
	int out = st->ndim == 1 || ends_with(gname, "_norm.weight") ? HF_F32 : in;
	uint64_t heads = 0;
	if (is_llama_like(h) && bid >= 0) {
		const char *dot = strchr(gname + 4, '.') + 1;
		if (!strncmp(dot, "attn_q.", 7))
			heads = (uint64_t)h->n_head;
		else if (!strncmp(dot, "attn_k.", 7))
			heads = (uint64_t)(h->n_head_kv ? h->n_head_kv : h->n_head);
		if (heads && (rows % (2 * heads)))
			return slm_seterr(err, EX_DATAERR,
					  "%s: tensor '%.200s': %llu rows do not split into "
					  "%llu heads of an even size", st_name(sf), st->name,
					  (unsigned long long)rows, (unsigned long long)heads);
	}
	int add_one = !strcmp(h->arch, "gemma3") && ends_with(st->name, "norm.weight");
	/* gemma3: drop embedding rows past the vocabulary */
	if (!strcmp(h->arch, "gemma3") && !strcmp(gname, "token_embd.weight") &&
	    h->m->vocab.n > 0 && rows > h->m->vocab.n && st->ndim == 2) {
		rows = h->m->vocab.n;
		ne[1] = rows;
	}
	static const char *const dn[] = { "f32", "f16", "bf16" };
	cv_tensor *t = cv_add_tensor(h->m, gname, dtype_by_name(dn[out]), st->ndim, ne, err);
	if (!t)
		return slm_preerr(err, "%s: tensor '%.200s'", st_name(sf), st->name);
	if (out == in && !heads && !add_one) {
		t->src = st->data;
		return 0;
	}
	hf_job *j = new_job(h->res);
	j->src = st->data;
	j->in = in;
	j->rows = rows;
	j->rowlen = rowlen;
	j->heads = heads;
	j->add_one = add_one;
	t->produce = hf_produce;
	t->ctx = j;
	return 0;
}

/* Order: global tensors before the blocks, blocks by number, output last. */
static int tensor_rank(const char *name, long *bid)
{
	*bid = -1;
	if (!strncmp(name, "blk.", 4)) {
		*bid = strtol(name + 4, NULL, 10);
		return 1;
	}
	return !strncmp(name, "output", 6) ? 2 : 0;
}

static int cmp_tensor(const void *a, const void *b)
{
	const cv_tensor *x = a, *y = b;
	long bx, by;
	int rx = tensor_rank(x->name, &bx), ry = tensor_rank(y->name, &by);
	if (rx != ry)
		return rx - ry;
	if (bx != by)
		return bx < by ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int hf_tensors(hf *h, slm_err *err)
{
	size_t first = h->m->nt;
	if (open_shards(h, err) < 0)
		return -1;
	for (size_t s = 0; s < h->res->nst; s++) {
		const st_file *f = h->res->st[s];
		for (size_t i = 0; i < st_n_tensors(f); i++)
			if (add_tensor(h, f, st_tensor_at(f, i), err) < 0)
				return -1;
	}
	if (is_llama_like(h) && llama3_rope_freqs(h, err) < 0)
		return -1;
	qsort(h->m->t + first, h->m->nt - first, sizeof *h->m->t, cmp_tensor);
	int has_embd = 0, has_out = 0;
	for (size_t i = first; i < h->m->nt; i++) {
		has_embd |= !strcmp(h->m->t[i].name, "token_embd.weight");
		has_out |= !strcmp(h->m->t[i].name, "output.weight");
	}
	if (!has_embd)
		return slm_seterr(err, EX_DATAERR, "%s: no model.embed_tokens.weight tensor",
				  h->dir);
	if (!has_out)
		json_object_set_new(h->hp, "tied_embeddings", json_true());
	return 0;
}

/* ------------------------------------------------------------------ */
/* Tokenizer                                                           */
/* ------------------------------------------------------------------ */

enum { TK_GPT2, TK_SPM_BPE, TK_SPM_UNIGRAM, TK_BERT };
/* Vocabularies are below 300k tokens; ids far beyond are a broken file. */
#define TK_MAX_VOCAB (1 << 24)
enum { TT_NORMAL = 1, TT_UNKNOWN, TT_CONTROL, TT_USER, TT_UNUSED, TT_BYTE };

typedef struct tk {
	hf *h;
	const char *path;   /* tokenizer.json, for messages */
	json_t *tj, *tc;    /* tokenizer.json, tokenizer_config.json (or NULL) */
	int kind;
	size_t n;
	char **tok;
	uint32_t *len;
	int32_t *type;
	float *score;
} tk;

static int tk_err(const tk *t, slm_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int tk_err(const tk *t, slm_err *err, const char *fmt, ...)
{
	char what[SLM_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return slm_seterr(err, EX_DATAERR, "%s: %s", t->path, what);
}

static char *dup_bytes(const char *s, size_t n)
{
	char *p = slm_xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

static int set_token(tk *t, json_int_t id, json_t *s, int type, slm_err *err)
{
	if (id < 0 || (size_t)id >= t->n)
		return tk_err(t, err, "token id %lld is outside the vocabulary of %zu",
			      (long long)id, t->n);
	if (!json_is_string(s))
		return tk_err(t, err, "token %lld is not a string", (long long)id);
	free(t->tok[id]);
	t->tok[id] = dup_bytes(json_string_value(s), json_string_length(s));
	t->len[id] = (uint32_t)json_string_length(s);
	t->type[id] = type;
	return 0;
}

/* TextModel.does_token_look_special */
static int looks_special(const char *s)
{
	size_t n = strlen(s);
	if (!strcmp(s, "<pad>") || !strcmp(s, "<mask>") || !strcmp(s, "<2mass>") ||
	    !strcmp(s, "[@BOS@]"))
		return 1;
	if (n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>"))
		return 1;
	if (!strncmp(s, "<\xef\xbd\x9c", 4) && ends_with(s, "\xef\xbd\x9c>"))
		return 1;
	return !strncmp(s, "<unused", 7) && s[n - 1] == '>';
}

static int is_byte_token(const char *s, size_t n)
{
	return n == 6 && !strncmp(s, "<0x", 3) && s[5] == '>' && isxdigit((unsigned char)s[3]) &&
	       isxdigit((unsigned char)s[4]);
}

/* "▁" (U+2581) to " ", for user-defined tokens as llama.cpp stores them. */
static void unescape_spaces(char *s, uint32_t *len)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (!strncmp(r, "\xe2\x96\x81", 3)) {
			*w++ = ' ';
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = 0;
	*len = (uint32_t)(w - s);
}

/* llama.cpp's WordPiece vocabularies mark word starts instead of
 * continuations: "##ing" becomes "ing", "play" becomes "▁play" (control
 * tokens stay as they are). */
static void wordpiece_phantom(tk *t, const char *cont)
{
	size_t cl;
	if (!cont)
		cont = "##";
	cl = strlen(cont);
	for (size_t i = 0; i < t->n; i++) {
		if (!t->tok[i] || t->type[i] == TT_CONTROL)
			continue;
		if (cl && !strncmp(t->tok[i], cont, cl)) {
			memmove(t->tok[i], t->tok[i] + cl, t->len[i] - cl + 1);
			t->len[i] -= (uint32_t)cl;
			continue;
		}
		char *s = slm_xmalloc(t->len[i] + 4);
		memcpy(s, "\xe2\x96\x81", 3);
		memcpy(s + 3, t->tok[i], t->len[i] + 1);
		free(t->tok[i]);
		t->tok[i] = s;
		t->len[i] += 3;
	}
}

/* gguf-py's SpecialVocab._parse_normalizer: lowercase / strip_accents. */
static void normalizer_flags(json_t *norm, json_t *man_tok)
{
	json_t *ty = json_object_get(norm, "type"), *v;
	size_t i;
	if (str_eq(ty, "Lowercase"))
		json_object_set_new(man_tok, "normalizer.lowercase", json_true());
	else if (str_eq(ty, "StripAccents"))
		json_object_set_new(man_tok, "normalizer.strip_accents", json_true());
	else if (str_eq(ty, "BertNormalizer")) {
		if (json_is_boolean(v = json_object_get(norm, "lowercase")))
			json_object_set(man_tok, "normalizer.lowercase", v);
		if (json_is_boolean(v = json_object_get(norm, "strip_accents")))
			json_object_set(man_tok, "normalizer.strip_accents", v);
	} else if (str_eq(ty, "Sequence")) {
		json_array_foreach(json_object_get(norm, "normalizers"), i, v)
			normalizer_flags(v, man_tok);
	}
}

/* Pre-tokenizer name, as llama.cpp's tokenizer.ggml.pre names the few
 * byte-level BPE pre-tokenizers it recognises by structure. */
static const char *pre_name(json_t *pt)
{
	static const char llama3_re[] =
		"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
		"?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
	static const char qwen2_re[] =
		"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
		"?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
	json_t *list[4];
	size_t n = 0;
	if (str_eq(json_object_get(pt, "type"), "Sequence")) {
		json_t *a = json_object_get(pt, "pretokenizers");
		if (!json_is_array(a) || json_array_size(a) > 4)
			return "default";
		for (n = 0; n < json_array_size(a); n++)
			list[n] = json_array_get(a, n);
	} else if (json_is_object(pt)) {
		list[n++] = pt;
	}
#define TYPE(i, s) str_eq(json_object_get(list[i], "type"), (s))
#define REGEX_ON(i) (!json_is_false(json_object_get(list[i], "use_regex")))
	if (n == 1 && TYPE(0, "ByteLevel") && REGEX_ON(0))
		return "gpt-2";
	if (n == 2 && TYPE(0, "Digits") &&
	    json_is_true(json_object_get(list[0], "individual_digits")) &&
	    TYPE(1, "ByteLevel") && REGEX_ON(1))
		return "smollm";
	if (n == 2 && TYPE(0, "Split") && TYPE(1, "ByteLevel") && !REGEX_ON(1)) {
		json_t *re = json_object_get(json_object_get(list[0], "pattern"), "Regex");
		if (str_eq(re, llama3_re))
			return "llama-bpe";
		if (str_eq(re, qwen2_re))
			return "qwen2";
	}
#undef TYPE
#undef REGEX_ON
	return "default";
}

/* Does a SentencePiece-style tokenizer.json put "▁" before the text? */
static int spm_prefix_space(json_t *tj)
{
	json_t *norm = json_object_get(tj, "normalizer");
	json_t *list = str_eq(json_object_get(norm, "type"), "Sequence")
			       ? json_object_get(norm, "normalizers") : NULL;
	size_t i;
	json_t *e;
	if (str_eq(json_object_get(norm, "type"), "Prepend"))
		return str_eq(json_object_get(norm, "prepend"), "\xe2\x96\x81");
	json_array_foreach(list, i, e)
		if (str_eq(json_object_get(e, "type"), "Prepend") &&
		    str_eq(json_object_get(e, "prepend"), "\xe2\x96\x81"))
			return 1;
	json_t *pt = json_object_get(tj, "pre_tokenizer");
	if (str_eq(json_object_get(pt, "type"), "Metaspace")) {
		json_t *ps = json_object_get(pt, "prepend_scheme");
		if (ps)
			return str_eq(ps, "always") || str_eq(ps, "first");
		return json_is_true(json_object_get(pt, "add_prefix_space"));
	}
	return 0;
}

/* Merges as "left right", spaces inside a pair's parts written as U+0120
 * as llama.cpp's SpecialVocab does. */
static int tk_merges(tk *t, cv_vocab *v, slm_err *err)
{
	json_t *mg = json_object_get(json_object_get(t->tj, "model"), "merges");
	if (!mg)
		return 0;
	if (!json_is_array(mg))
		return tk_err(t, err, "model.merges is not an array");
	size_t n = json_array_size(mg);
	v->merge = slm_xcalloc(n ? n : 1, sizeof *v->merge);
	v->merge_len = slm_xcalloc(n ? n : 1, sizeof *v->merge_len);
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(mg, i);
		char *s;
		size_t len;
		if (json_is_string(e)) {
			s = dup_bytes(json_string_value(e), json_string_length(e));
			len = json_string_length(e);
		} else if (json_is_array(e) && json_array_size(e) == 2 &&
			   json_is_string(json_array_get(e, 0)) &&
			   json_is_string(json_array_get(e, 1))) {
			json_t *a = json_array_get(e, 0), *b = json_array_get(e, 1);
			size_t la = json_string_length(a), lb = json_string_length(b);
			s = slm_xmalloc(2 * (la + lb) + 2);
			len = 0;
			for (int part = 0; part < 2; part++) {
				const char *p = json_string_value(part ? b : a);
				size_t pl = part ? lb : la;
				if (part)
					s[len++] = ' ';
				for (size_t k = 0; k < pl; k++) {
					if (p[k] == ' ') {
						s[len++] = (char)0xc4;
						s[len++] = (char)0xa0;
					} else {
						s[len++] = p[k];
					}
				}
			}
			s[len] = 0;
		} else {
			v->nmerges = i;
			return tk_err(t, err, "merge %zu is neither \"a b\" nor [\"a\", \"b\"]", i);
		}
		v->merge[i] = (const uint8_t *)s;
		v->merge_len[i] = (uint32_t)len;
		v->nmerges = i + 1;
	}
	return 0;
}

/* SentencePiece scores for a BPE tokenizer.json: minus the rank of the
 * merge that makes a token, so llama.cpp's SentencePiece tokenizer
 * (highest score first) merges in the BPE's order. */
static void spm_bpe_scores(tk *t, json_t *vocab)
{
	json_t *mg = json_object_get(json_object_get(t->tj, "model"), "merges");
	size_t nm = json_is_array(mg) ? json_array_size(mg) : 0;
	for (size_t i = 0; i < t->n; i++)
		t->score[i] = t->type[i] == TT_NORMAL ? -(float)(nm + i) : 0.0f;
	for (size_t r = nm; r-- > 0;) {
		json_t *e = json_array_get(mg, r);
		char buf[1024];
		if (json_is_string(e)) {
			const char *s = json_string_value(e), *sp = strchr(s, ' ');
			if (!sp || strlen(s) >= sizeof buf)
				continue;
			size_t a = (size_t)(sp - s);
			memcpy(buf, s, a);
			strcpy(buf + a, sp + 1);
		} else if (json_is_array(e) && json_array_size(e) == 2) {
			const char *a = json_string_value(json_array_get(e, 0));
			const char *b = json_string_value(json_array_get(e, 1));
			if (!a || !b || strlen(a) + strlen(b) >= sizeof buf)
				continue;
			strcpy(buf, a);
			strcat(buf, b);
		} else {
			continue;
		}
		json_t *id = json_object_get(vocab, buf);
		if (json_is_integer(id) && json_integer_value(id) >= 0 &&
		    (size_t)json_integer_value(id) < t->n &&
		    t->type[json_integer_value(id)] == TT_NORMAL)
			t->score[json_integer_value(id)] = -(float)r;
	}
}

static const char *special_str(json_t *tc, const char *key)
{
	json_t *v = json_object_get(tc, key);
	if (json_is_object(v))
		v = json_object_get(v, "content");
	return json_string_value(v);
}

/* gguf-py's SpecialVocab: special token ids, add_*_token flags. */
static void tk_specials(tk *t, json_t *man_tok)
{
	static const char *const types[] = { "bos", "eos", "unk", "sep", "pad", "cls", "mask" };
	static const char *const gkeys[] = { "bos_token_id", "eos_token_id",
					     "unknown_token_id", "seperator_token_id",
					     "padding_token_id", NULL, "mask_token_id" };
	enum { BOS, EOS, UNK, SEP, PAD, CLS, MASK, NT };
	const char *str[NT + 1] = { 0 }; /* + eot */
	json_int_t id[NT + 1];
	int add[3] = { -1, -1, -1 }; /* bos, eos, sep */
	json_t *tc = t->tc;
	for (int i = 0; i <= NT; i++)
		id[i] = -1;
	for (int i = 0; i < NT; i++) {
		char key[32];
		snprintf(key, sizeof key, "%s_token", types[i]);
		str[i] = special_str(tc, key);
	}
	if (tc && !str[BOS] && str[CLS])
		str[BOS] = str[CLS];
	if (tc && !str[EOS] && str[SEP])
		str[EOS] = str[SEP];

	json_t *pp = json_object_get(t->tj, "post_processor");
	json_t *procs = json_object_get(pp, "processors");
	size_t np = json_is_array(procs) ? json_array_size(procs) : (pp && !json_is_null(pp));
	for (size_t i = 0; i < np; i++) {
		json_t *p = json_is_array(procs) ? json_array_get(procs, i) : pp;
		json_t *ty = json_object_get(p, "type");
		if (str_eq(ty, "ByteLevel")) {
			if (add[0] < 0)
				add[0] = 0;
			if (add[1] < 0)
				add[1] = 0;
		} else if (str_eq(ty, "RobertaProcessing")) {
			add[0] = add[1] = add[2] = 1;
			if (tc && !str[CLS])
				str[CLS] = json_string_value(
					json_array_get(json_object_get(p, "cls"), 0));
			if (tc && !str[SEP])
				str[SEP] = json_string_value(
					json_array_get(json_object_get(p, "sep"), 0));
		} else if (str_eq(ty, "TemplateProcessing")) {
			json_t *single = json_object_get(p, "single");
			size_t ns = json_is_array(single) ? json_array_size(single) : 0;
			if (ns <= 1)
				continue;
			const char *first = json_string_value(json_object_get(
				json_object_get(json_array_get(single, 0), "SpecialToken"), "id"));
			json_t *l = json_array_get(single, ns - 1);
			const char *last = json_string_value(
				json_object_get(json_object_get(l, "SpecialToken"), "id"));
			if (first && *first) {
				int known = (str[BOS] && !strcmp(first, str[BOS])) ||
					    (str[CLS] && !strcmp(first, str[CLS]));
				if (!tc) {
					str[BOS] = first;
					known = 1;
				} else if (!known) {
					if (!str[BOS])
						str[BOS] = first, known = 1;
					if (!str[CLS])
						str[CLS] = first;
				}
				add[0] = known;
			}
			if (last && *last) {
				if (tc && str[EOS] && strcmp(last, str[EOS]))
					str[NT] = str[EOS]; /* the old eos becomes eot */
				str[EOS] = last;
				add[1] = 1;
			}
		}
	}

	/* tokenizer_config's add_*_token where the post-processor is silent */
	static const char *const addk[] = { "add_bos_token", "add_eos_token", "add_sep_token" };
	for (int i = 0; i < 3; i++) {
		json_t *a = json_object_get(tc, addk[i]);
		if (add[i] < 0 && json_is_boolean(a))
			add[i] = json_is_true(a);
	}
	/* ids: tokenizer_config strings looked up among the added tokens */
	json_t *added = json_object_get(t->tj, "added_tokens");
	for (int i = 0; i <= NT && tc; i++) {
		if (!str[i])
			continue;
		size_t k;
		json_t *a;
		json_array_foreach(added, k, a) {
			json_t *idv = json_object_get(a, "id");
			if (str_eq(json_object_get(a, "content"), str[i]) && json_is_integer(idv)) {
				if (json_integer_value(idv) >= 0 &&
				    (size_t)json_integer_value(idv) < t->n)
					id[i] = json_integer_value(idv);
				break;
			}
		}
	}
	/* then config.json's *_token_id (integers only) */
	for (int i = 0; i < NT; i++) {
		char key[32];
		snprintf(key, sizeof key, "%s_token_id", types[i]);
		json_t *v = json_object_get(t->h->cfg, key);
		if (!v)
			v = json_object_get(json_object_get(t->h->cfg, "text_config"), key);
		if (id[i] < 0 && json_is_integer(v) && json_integer_value(v) >= 0 &&
		    (size_t)json_integer_value(v) < t->n)
			id[i] = json_integer_value(v);
	}
	for (int i = 0; i < NT; i++)
		if (id[i] >= 0 && gkeys[i])
			json_object_set_new(man_tok, gkeys[i], json_integer(id[i]));
	if (id[NT] >= 0)
		json_object_set_new(man_tok, "eot_token_id", json_integer(id[NT]));
	for (int i = 0; i < 3; i++)
		if (add[i] >= 0)
			json_object_set_new(man_tok, addk[i], json_boolean(add[i]));
}

/* An end-of-turn id from generation_config.json's eos_token_id list: the
 * first that is not the eos and whose text llama.cpp treats as EOT. */
static void tk_eot_from_generation(const cv_vocab *voc, json_t *gc, json_t *man_tok)
{
	static const char *const eot[] = {
		"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
		"<|end_of_text|>", "<EOT>", "<end_of_utterance>",
	};
	json_t *e = json_object_get(gc, "eos_token_id");
	if (json_object_get(man_tok, "eot_token_id") || !e)
		return;
	json_int_t eos = json_integer_value(json_object_get(man_tok, "eos_token_id"));
	size_t n = json_is_array(e) ? json_array_size(e) : 1;
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_is_array(e) ? json_array_get(e, i) : e;
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    (size_t)json_integer_value(v) >= voc->n || json_integer_value(v) == eos)
			continue;
		const char *s = (const char *)voc->tok[json_integer_value(v)];
		for (size_t k = 0; k < sizeof eot / sizeof eot[0]; k++)
			if (!strcmp(s, eot[k])) {
				json_object_set_new(man_tok, "eot_token_id", json_copy(v));
				return;
			}
	}
}

static int chat_template(const char *dir, json_t *tc, json_t *man, slm_err *err)
{
	json_t *ct = json_object_get(tc, "chat_template"), *alt = NULL;
	char *p = path_join(dir, "chat_template.jinja");
	if (!ct || json_is_null(ct)) {
		char *data;
		size_t n;
		if (access(p, F_OK) == 0) {
			if (slm_read_file(p, &data, &n, err) < 0) {
				free(p);
				return -1;
			}
			ct = alt = json_stringn(data, n);
			free(data);
			if (!ct) {
				slm_seterr(err, EX_DATAERR, "%s: not UTF-8 text", p);
				free(p);
				return -1;
			}
		} else {
			json_t *cj;
			if (load_json(dir, "chat_template.json", 0, &cj, err) < 0) {
				free(p);
				return -1;
			}
			if (cj) {
				ct = alt = json_incref(json_object_get(cj, "chat_template"));
				json_decref(cj);
			}
		}
	}
	free(p);
	if (json_is_array(ct)) {
		size_t i;
		json_t *e;
		json_array_foreach(ct, i, e)
			if (str_eq(json_object_get(e, "name"), "default") &&
			    json_is_string(json_object_get(e, "template")))
				json_object_set(man, "chat_template",
						json_object_get(e, "template"));
	} else if (json_is_string(ct)) {
		json_object_set(man, "chat_template", ct);
	}
	json_decref(alt);
	return 0;
}

static int hf_tokenizer(hf *h, const char *dir, const char *tokfile, json_t *man,
			slm_err *err)
{
	tk t = { .h = h };
	char *path = path_join(dir, tokfile);
	t.path = path;
	int rc = -1;
	json_t *gc = NULL;
	if (load_json(dir, tokfile, 1, &t.tj, err) < 0 ||
	    load_json(dir, "tokenizer_config.json", 0, &t.tc, err) < 0 ||
	    load_json(dir, "generation_config.json", 0, &gc, err) < 0)
		goto out;

	json_t *model = json_object_get(t.tj, "model");
	json_t *vocab = json_object_get(model, "vocab");
	const char *mtype = json_string_value(json_object_get(model, "type"));
	if (!json_is_object(model) || !vocab) {
		tk_err(&t, err, "no model.vocab");
		goto out;
	}
	if (!mtype && json_object_get(model, "merges"))
		mtype = "BPE";
	if (mtype && !strcmp(mtype, "BPE"))
		t.kind = json_is_true(json_object_get(model, "byte_fallback")) ? TK_SPM_BPE
									       : TK_GPT2;
	else if (mtype && !strcmp(mtype, "Unigram"))
		t.kind = TK_SPM_UNIGRAM;
	else if (mtype && !strcmp(mtype, "WordPiece"))
		t.kind = TK_BERT;
	else {
		tk_err(&t, err, "tokenizer model type '%.40s' is not supported "
		       "(BPE, Unigram, WordPiece are)", mtype ? mtype : "?");
		goto out;
	}
	if ((t.kind == TK_SPM_UNIGRAM) != json_is_array(vocab) ||
	    (t.kind != TK_SPM_UNIGRAM && !json_is_object(vocab))) {
		tk_err(&t, err, "model.vocab has the wrong JSON type for a %s model", mtype);
		goto out;
	}

	/* the size: config.json's vocab_size, or the largest id + 1 */
	json_t *added = json_object_get(t.tj, "added_tokens");
	if (added && !json_is_array(added)) {
		tk_err(&t, err, "added_tokens is not an array");
		goto out;
	}
	json_int_t max_id = json_is_array(vocab) ? (json_int_t)json_array_size(vocab) - 1 : -1;
	const char *k;
	json_t *v;
	size_t i;
	if (json_is_object(vocab))
		json_object_foreach(vocab, k, v) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > INT32_MAX) {
				tk_err(&t, err, "token '%.100s' has no valid id", k);
				goto out;
			}
			if (json_integer_value(v) > max_id)
				max_id = json_integer_value(v);
		}
	json_array_foreach(added, i, v) {
		json_t *idv = json_object_get(v, "id");
		if (!json_is_integer(idv) || json_integer_value(idv) < 0 ||
		    json_integer_value(idv) > INT32_MAX) {
			tk_err(&t, err, "added token %zu has no valid id", i);
			goto out;
		}
		if (json_integer_value(idv) > max_id)
			max_id = json_integer_value(idv);
	}
	t.n = (size_t)(max_id + 1);
	json_t *vs = h->cfg ? json_object_get(h->cfg, "vocab_size") : NULL;
	if (json_is_integer(vs)) {
		if (json_integer_value(vs) <= max_id) {
			tk_err(&t, err, "token id %lld is beyond config.json's vocab_size %lld",
			       (long long)max_id, (long long)json_integer_value(vs));
			goto out;
		}
		t.n = (size_t)json_integer_value(vs);
	}
	if (t.n > TK_MAX_VOCAB) {
		tk_err(&t, err, "a vocabulary of %zu tokens is more than %d", t.n, TK_MAX_VOCAB);
		goto out;
	}
	if (t.n == 0) {
		tk_err(&t, err, "empty vocabulary");
		goto out;
	}
	t.tok = slm_xcalloc(t.n, sizeof *t.tok);
	t.len = slm_xcalloc(t.n, sizeof *t.len);
	t.type = slm_xcalloc(t.n, sizeof *t.type);
	if (t.kind == TK_SPM_BPE || t.kind == TK_SPM_UNIGRAM)
		t.score = slm_xcalloc(t.n, sizeof *t.score);

	const char *unk = json_string_value(json_object_get(model, "unk_token"));
	if (t.kind == TK_SPM_UNIGRAM) {
		json_t *u = json_object_get(model, "unk_id");
		json_int_t unk_id = json_is_integer(u) ? json_integer_value(u) : -1;
		json_array_foreach(vocab, i, v) {
			json_t *piece = json_array_get(v, 0), *sc = json_array_get(v, 1);
			if (!json_is_array(v) || !json_is_number(sc)) {
				tk_err(&t, err, "model.vocab entry %zu is not [piece, score]", i);
				goto out;
			}
			if (set_token(&t, (json_int_t)i, piece, TT_NORMAL, err) < 0)
				goto out;
			if ((json_int_t)i == unk_id)
				t.type[i] = TT_UNKNOWN;
			else if (is_byte_token(t.tok[i], t.len[i]))
				t.type[i] = TT_BYTE;
			t.score[i] = (float)json_number_value(sc);
		}
	} else {
		json_object_foreach(vocab, k, v) {
			int ty = TT_NORMAL;
			if (t.kind == TK_SPM_BPE) {
				if (unk && !strcmp(k, unk))
					ty = TT_UNKNOWN;
				else if (is_byte_token(k, strlen(k)))
					ty = TT_BYTE;
			}
			json_t *s = json_string(k);
			int r = s ? set_token(&t, json_integer_value(v), s, ty, err)
				  : tk_err(&t, err, "token %lld is not UTF-8",
					   (long long)json_integer_value(v));
			json_decref(s);
			if (r < 0)
				goto out;
		}
		if (t.kind == TK_SPM_BPE)
			spm_bpe_scores(&t, vocab);
	}
	json_array_foreach(added, i, v) {
		json_int_t id = json_integer_value(json_object_get(v, "id"));
		json_t *c = json_object_get(v, "content");
		if (!json_is_string(c)) {
			tk_err(&t, err, "added token %zu has no content", i);
			goto out;
		}
		int ty = json_is_true(json_object_get(v, "special")) ||
				 looks_special(json_string_value(c)) ? TT_CONTROL : TT_USER;
		/* a SentencePiece model's unknown token stays "unknown" */
		if (ty == TT_CONTROL && id >= 0 && (size_t)id < t.n && t.type[id] == TT_UNKNOWN)
			ty = TT_UNKNOWN;
		if (set_token(&t, id, c, ty, err) < 0)
			goto out;
		if (ty == TT_USER)
			unescape_spaces(t.tok[id], &t.len[id]);
		if (t.score)
			t.score[id] = -1000.0f;
	}
	if (t.kind == TK_BERT)
		wordpiece_phantom(&t, json_string_value(json_object_get(model,
						"continuing_subword_prefix")));
	for (size_t id = 0; id < t.n; id++)
		if (!t.tok[id]) {
			char pad[32];
			snprintf(pad, sizeof pad, "[PAD%zu]", id);
			t.tok[id] = slm_xstrdup(pad);
			t.len[id] = (uint32_t)strlen(pad);
			t.type[id] = TT_UNUSED;
			if (t.score)
				t.score[id] = -1000.0f;
		}

	/* into the model */
	cv_vocab *cv = &h->m->vocab;
	cv->n = t.n;
	cv->tok = (const uint8_t **)t.tok;
	cv->tok_len = t.len;
	cv->types = t.type;
	cv->scores = t.score;
	cv->own_strings = 1;
	t.tok = NULL;
	t.len = NULL;
	t.type = NULL;
	t.score = NULL;
	if (t.kind == TK_GPT2 && tk_merges(&t, cv, err) < 0)
		goto out;

	json_t *mt = json_object();
	json_object_set_new(man, "tokenizer", mt);
	static const char *const models[] = { "gpt2", "llama", "llama", "bert" };
	json_object_set_new(mt, "model", json_string(models[t.kind]));
	json_object_set_new(mt, "pre", json_string(t.kind == TK_GPT2
				? pre_name(json_object_get(t.tj, "pre_tokenizer")) : "default"));
	tk_specials(&t, mt);
	tk_eot_from_generation(cv, gc, mt);
	normalizer_flags(json_object_get(t.tj, "normalizer"), mt);
	if (t.kind == TK_SPM_BPE || t.kind == TK_SPM_UNIGRAM)
		json_object_set_new(mt, "add_space_prefix", json_boolean(spm_prefix_space(t.tj)));
	if (h->arch && is_llama_like(h)) {
		json_t *aps = json_object_get(t.tc, "add_prefix_space");
		if (json_is_boolean(aps))
			json_object_set(mt, "add_space_prefix", aps);
		/* llama.cpp: granite's small models (and SmolLM) add no BOS */
		if (json_integer_value(json_object_get(h->cfg, "vocab_size")) == 49152)
			json_object_set_new(mt, "add_bos_token", json_false());
	}
	if (chat_template(dir, t.tc, man, err) < 0)
		goto out;

	/* generation defaults */
	static const char *const gen[][2] = {
		{ "temperature", "temperature" }, { "top_k", "top_k" }, { "top_p", "top_p" },
		{ "min_p", "min_p" }, { "repetition_penalty", "repeat_penalty" },
	};
	json_t *g = json_object();
	for (size_t j = 0; j < sizeof gen / sizeof gen[0]; j++) {
		json_t *x = json_object_get(gc, gen[j][0]);
		if (json_is_number(x))
			json_object_set(g, gen[j][1], x);
	}
	if (json_object_size(g))
		json_object_set(man, "generation", g);
	json_decref(g);
	rc = 0;
out:
	if (t.tok)
		for (size_t j = 0; j < t.n; j++)
			free(t.tok[j]);
	free(t.tok);
	free(t.len);
	free(t.type);
	free(t.score);
	json_decref(t.tj);
	json_decref(t.tc);
	json_decref(gc);
	free(path);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The directory                                                       */
/* ------------------------------------------------------------------ */

/* Messages quote names from the files (tensors, tokens, members): keep
 * them on one line. */
static int one_line(slm_err *err)
{
	slm_one_line(err->msg);
	return -1;
}

static char *base_name(const char *path)
{
	char *real = realpath(path, NULL);
	char *copy = slm_xstrdup(real ? real : path);
	char *b = slm_xstrdup(basename(copy));
	free(real);
	free(copy);
	return b;
}

int cv_from_hf(cv_model *m, const char *path, int vocab_only, slm_err *err)
{
	struct stat sb;
	if (stat(path, &sb) < 0)
		return slm_seterr(err, EX_NOINPUT, "%s: %s", path, strerror(errno));
	char *dir, *tokfile;
	if (S_ISDIR(sb.st_mode)) {
		dir = slm_xstrdup(path);
		tokfile = slm_xstrdup("tokenizer.json");
	} else if (S_ISREG(sb.st_mode) && vocab_only) {
		char *a = slm_xstrdup(path), *b = slm_xstrdup(path);
		dir = slm_xstrdup(dirname(a));
		tokfile = slm_xstrdup(basename(b));
		free(a);
		free(b);
	} else {
		return slm_seterr(err, EX_NOINPUT, "%s: not a directory", path);
	}
	hf h = { .m = m, .dir = dir };
	h.res = slm_xcalloc(1, sizeof *h.res);
	cv_model_hold(m, h.res, hf_res_free);
	h.cfg_path = path_join(dir, "config.json");
	int rc = -1;
	const char *hf_arch = NULL;
	json_t *man = m->manifest;

	if (load_json(dir, "config.json", !vocab_only, &h.cfg, err) < 0)
		goto out;
	if (json_is_object(json_object_get(h.cfg, "text_config")))
		json_object_update(h.cfg, json_object_get(h.cfg, "text_config"));
	if (!vocab_only && pick_arch(&h, &hf_arch, err) < 0)
		goto out;
	json_object_set_new(man, "arch", json_string(vocab_only ? "tokenizer" : h.arch));
	char *name = base_name(dir);
	json_object_set_new(man, "name", json_string(name));
	free(name);
	json_t *prov = json_object();
	json_object_set_new(prov, "source", json_string(path));
	json_object_set_new(prov, "source_format", json_string("huggingface"));
	if (hf_arch)
		json_object_set_new(prov, "hf_architecture", json_string(hf_arch));
	json_object_set_new(man, "provenance", prov);

	if (!vocab_only) {
		h.hp = json_object();
		json_object_set_new(man, "hparams", h.hp);
		rope_params(&h);
		int r;
		if (!strcmp(h.arch, "phi3"))
			r = hp_phi3(&h, err);
		else if ((r = hp_common(&h, err)) == 0) {
			if (is_llama_like(&h))
				r = hp_llama(&h, err);
			else if (!strcmp(h.arch, "gemma3"))
				r = hp_gemma3(&h, err);
		}
		if (r < 0)
			goto out;
	}
	if (hf_tokenizer(&h, dir, tokfile, man, err) < 0)
		goto out;
	if (!vocab_only && hf_tensors(&h, err) < 0)
		goto out;
	rc = 0;
out:
	json_decref(h.cfg);
	json_decref(h.rope);
	free(h.cfg_path);
	free(dir);
	free(tokfile);
	return rc < 0 ? one_line(err) : 0;
}

/* ------------------------------------------------------------------ */
/* The directory as a tar stream                                       */
/* ------------------------------------------------------------------ */

static int rm_rf(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? 0 : -1;
	if (S_ISDIR(sb.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;
		if (!d)
			return -1;
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
				char *p = path_join(path, de->d_name);
				rm_rf(p);
				free(p);
			}
		closedir(d);
		return rmdir(path);
	}
	return unlink(path);
}

/* Create the directories of rel (a checked relative path) under root;
 * with leaf, rel itself too. */
static int make_dirs(const char *root, const char *rel, int leaf)
{
	char *p = path_join(root, rel), *s = p + strlen(root) + 1;
	for (;; s++) {
		if (*s == '/' || (!*s && leaf)) {
			char c = *s;
			*s = 0;
			if (mkdir(p, 0700) < 0 && errno != EEXIST) {
				free(p);
				return -1;
			}
			*s = c;
		}
		if (!*s)
			break;
	}
	free(p);
	return 0;
}

/* A member path made relative and checked: leading "./" dropped; NULL
 * for "." itself; "" when unsafe. */
static const char *member_path(const char *p, char *buf, size_t n)
{
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (!*p || !strcmp(p, "."))
		return NULL;
	if (*p == '/' || strlen(p) >= n)
		return "";
	snprintf(buf, n, "%s", p);
	size_t len = strlen(buf);
	while (len > 0 && buf[len - 1] == '/')
		buf[--len] = 0;
	for (char *c = buf; *c;) {
		char *e = strchr(c, '/');
		size_t cl = e ? (size_t)(e - c) : strlen(c);
		if (cl == 0 || (cl == 1 && c[0] == '.') || (cl == 2 && !strncmp(c, "..", 2)))
			return "";
		c += cl + (e != NULL);
	}
	return buf;
}

static int extract(struct archive *a, const char *root, const char *name, slm_err *err)
{
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		char buf[PATH_MAX];
		const char *raw = archive_entry_pathname(e);
		const char *rel = member_path(raw ? raw : "", buf, sizeof buf - strlen(root) - 2);
		mode_t type = archive_entry_filetype(e);
		if (rel && !*rel)
			return slm_seterr(err, EX_DATAERR, "%s: member '%.200s': absolute or "
					  "'..' path refused", name, raw ? raw : "");
		if (archive_entry_hardlink(e) || type == AE_IFLNK)
			return slm_seterr(err, EX_DATAERR, "%s: member '%.200s': links are "
					  "refused", name, raw);
		if (type == AE_IFDIR) {
			if (rel && make_dirs(root, rel, 1) < 0)
				return slm_seterr(err, EX_IOERR, "%s: member '%.200s': %s", name,
						  raw, strerror(errno));
			continue;
		}
		if (type != AE_IFREG)
			return slm_seterr(err, EX_DATAERR, "%s: member '%.200s': not a regular "
					  "file or directory", name, raw);
		if (!rel)
			return slm_seterr(err, EX_DATAERR, "%s: member '%.200s': bad name",
					  name, raw);
		if (make_dirs(root, rel, 0) < 0)
			return slm_seterr(err, EX_IOERR, "%s: member '%.200s': %s", name, raw,
					  strerror(errno));
		char *p = path_join(root, rel);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		free(p);
		if (fd < 0)
			return slm_seterr(err, errno == EEXIST ? EX_DATAERR : EX_IOERR,
					  "%s: member '%.200s': %s", name, raw,
					  errno == EEXIST ? "appears twice" : strerror(errno));
		r = archive_read_data_into_fd(a, fd);
		if (close(fd) < 0 && r == ARCHIVE_OK)
			return slm_seterr(err, EX_IOERR, "%s: member '%.200s': %s", name, raw,
					  strerror(errno));
		if (r != ARCHIVE_OK)
			return slm_seterr(err, EX_DATAERR, "%s: member '%.200s': %s", name, raw,
					  archive_error_string(a) ? archive_error_string(a)
								  : "read error");
	}
	if (r != ARCHIVE_EOF)
		return slm_seterr(err, EX_DATAERR, "%s: %s", name,
				  archive_error_string(a) ? archive_error_string(a)
							  : "not a tar archive");
	return 0;
}

/* The model directory in the extracted tree: the root, or its single
 * top directory. */
static char *find_model_dir(const char *root, const char *want)
{
	char *p = path_join(root, want);
	int here = access(p, F_OK) == 0;
	free(p);
	if (here)
		return slm_xstrdup(root);
	DIR *d = opendir(root);
	struct dirent *de;
	char *only = NULL;
	int n = 0;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			n++;
			free(only);
			only = path_join(root, de->d_name);
		}
	if (d)
		closedir(d);
	struct stat sb;
	if (n == 1 && stat(only, &sb) == 0 && S_ISDIR(sb.st_mode))
		return only;
	free(only);
	return NULL;
}

/* Replace every "old" in s by "new" (messages naming temporary paths). */
static void replace_all(char *s, size_t cap, const char *old, const char *new)
{
	char out[SLM_ERR_MAX];
	size_t o = 0, lo = strlen(old), ln = strlen(new);
	for (const char *p = s; *p && o + 1 < sizeof out;) {
		if (!strncmp(p, old, lo)) {
			size_t k = ln < sizeof out - 1 - o ? ln : sizeof out - 1 - o;
			memcpy(out + o, new, k);
			o += k;
			p += lo;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = 0;
	snprintf(s, cap, "%s", out);
}

int cv_from_hf_tar(cv_model *m, int fd, const char *name, int vocab_only, slm_err *err)
{
	const char *shown = !name || !strcmp(name, "-") ? "standard input" : name;
	const char *tmp = getenv("TMPDIR");
	char *root;
	if (asprintf(&root, "%s/slm-hf.XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0)
		slm_die(EX_OSERR, "out of memory");
	if (!mkdtemp(root)) {
		int e = errno;
		free(root);
		return slm_seterr(err, EX_CANTCREAT, "temporary directory: %s", strerror(e));
	}
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	int rc;
	if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK)
		rc = slm_seterr(err, EX_DATAERR, "%s: %s", shown, archive_error_string(a));
	else
		rc = extract(a, root, shown, err);
	archive_read_free(a);
	if (rc == 0) {
		char *dir = find_model_dir(root, vocab_only ? "tokenizer.json" : "config.json");
		if (!dir) {
			rc = slm_seterr(err, EX_DATAERR, "%s: no %s at the top of the archive or "
					"in its single top directory", shown,
					vocab_only ? "tokenizer.json" : "config.json");
		} else {
			rc = cv_from_hf(m, dir, vocab_only, err);
			/* name the archive, not the temporary directory */
			char *pre;
			if (asprintf(&pre, "%s/", root) < 0)
				slm_die(EX_OSERR, "out of memory");
			char *sh;
			if (asprintf(&sh, "%s: ", shown) < 0)
				slm_die(EX_OSERR, "out of memory");
			if (rc < 0)
				replace_all(err->msg, sizeof err->msg, pre, sh);
			json_t *prov = json_object_get(m->manifest, "provenance");
			if (prov)
				json_object_set_new(prov, "source", json_string(shown));
			if (rc == 0 && !strcmp(dir, root)) { /* no top directory */
				char *b = base_name(shown);
				char *dot = strstr(b, ".tar");
				if (dot && dot != b)
					*dot = 0;
				if (!name || !strcmp(name, "-"))
					json_object_del(m->manifest, "name");
				else
					json_object_set_new(m->manifest, "name", json_string(b));
				free(b);
			}
			free(pre);
			free(sh);
			free(dir);
		}
	}
	/* everything needed is mapped or copied: the files can go now */
	rm_rf(root);
	free(root);
	return rc < 0 ? one_line(err) : 0;
}
