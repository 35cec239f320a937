/*
 * convert.h - a model on its way into a bundle. Each source format
 * (GGUF, Hugging Face directory, llama2.c checkpoint) fills a cv_model:
 * the manifest without its tensor and member tables, the tokenizer's
 * vocabulary, and tensors that either point at their bytes in a mapped
 * source or produce them on demand, one at a time, so conversion streams
 * with peak memory near the largest tensor.
 *
 * Canonical naming (what every source maps to, see slm-bundle(5)):
 *  - tensors use llama.cpp's GGUF names (token_embd.weight,
 *    blk.N.attn_q.weight, ...), shapes innermost dimension first, and the
 *    same row layouts llama.cpp uses (e.g. Q/K rows permuted for "llama"
 *    from Hugging Face, as llama.cpp's converter does), so a bundle
 *    exports to a GGUF llama.cpp runs;
 *  - "hparams" holds the architecture's GGUF keys without the
 *    "ARCH." prefix ("block_count", "attention.head_count_kv",
 *    "rope.freq_base", ...), values as JSON numbers/bools/strings/arrays;
 *  - "tokenizer" holds tokenizer.ggml.* scalars without the prefix
 *    ("model", "pre", "bos_token_id", "add_bos_token", ...) and
 *    "member": SLM_VOCAB_MEMBER; the arrays (tokens, scores, token_type,
 *    merges) live in that member;
 *  - "chat_template" (tokenizer.chat_template), "generation" (defaults
 *    such as temperature, top_k, top_p, min_p, repeat_penalty),
 *    "provenance" (source, source_format, converter, and GGUF general.*
 *    keys under "general"), and "gguf_extra" for any other GGUF key,
 *    kept so an export can restore it.
 */
#ifndef SLM_CONVERT_H
#define SLM_CONVERT_H

#include <jansson.h>
#include <msgpack.h>
#include <stdint.h>

#include "bundle.h"
#include "dtype.h"
#include "util.h"

/* Member holding the vocabulary: a msgpack map with keys "tokens" (array
 * of str: raw token bytes, not necessarily UTF-8), and when present
 * "scores" (array of float32), "token_type" (array of int, GGUF's
 * values: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
 * 6 byte), "merges" (array of str "left right"). */
#define SLM_VOCAB_MEMBER "tokenizer/vocab.msgpack"

/* The vocabulary member's arrays, in the order of cv_vocab_keys. */
enum { CV_VOCAB_TOKENS, CV_VOCAB_SCORES, CV_VOCAB_TYPES, CV_VOCAB_MERGES, CV_VOCAB_NKEYS };
extern const char *const cv_vocab_keys[CV_VOCAB_NKEYS];

/* Unpack the vocabulary member mem of bundle b into up (initialised
 * here; the caller destroys it, also after a failure) and point arr[k] at
 * the array under cv_vocab_keys[k], NULL where the key is absent. -1 (a
 * data error naming the bundle and member) if the member is not a
 * msgpack map or one of those keys holds something other than an array. */
int cv_vocab_arrays(const slm_bundle *b, const slm_member *mem, msgpack_unpacked *up,
		    const msgpack_object *arr[CV_VOCAB_NKEYS], slm_err *err);

typedef struct cv_tensor cv_tensor;
struct cv_tensor {
	char *name;                /* canonical name (owned) */
	const slm_dtype *dtype;    /* type written to the bundle */
	int ndim;
	uint64_t ne[SLM_MAX_DIMS]; /* innermost first */
	uint64_t size;             /* bytes in the bundle (set by cv_add_tensor) */
	/* Either src (size bytes, already in dtype's layout) ... */
	const uint8_t *src;
	/* ... or produce, which fills out[0..size). */
	int (*produce)(const cv_tensor *t, uint8_t *out, slm_err *err);
	void *ctx;                 /* for produce */
	uint64_t aux[4];           /* for produce */
};

typedef struct cv_vocab {
	size_t n;                  /* 0: no vocabulary */
	const uint8_t **tok;       /* token bytes */
	uint32_t *tok_len;
	float *scores;             /* NULL if absent */
	int32_t *types;            /* NULL if absent */
	size_t nmerges;
	const uint8_t **merge;     /* "left right" bytes */
	uint32_t *merge_len;
	int own_strings;           /* free each tok[i] and merge[i] too */
} cv_vocab;

typedef struct cv_model {
	json_t *manifest;          /* owned */
	cv_vocab vocab;            /* arrays owned; strings point into a held
				    * source, or are owned (own_strings) */
	cv_tensor *t;
	size_t nt, cap;
	/* Resources to release with the model (mappings, parsed files). */
	void *res[16];
	void (*res_free[16])(void *);
	size_t nres;
} cv_model;

void cv_model_init(cv_model *m);
void cv_model_free(cv_model *m);
/* Keep r alive until cv_model_free, then call fn(r). */
void cv_model_hold(cv_model *m, void *r, void (*fn)(void *));
/* Add a tensor (name copied); computes size, fails on a shape that does
 * not fit the dtype's blocks. The caller then sets src or produce. */
cv_tensor *cv_add_tensor(cv_model *m, const char *name, const slm_dtype *dt,
			 int ndim, const uint64_t *ne, slm_err *err);

/* Sources. vocab_only: tokenizer and template only, no tensors (arch
 * becomes "tokenizer"). */
int cv_from_gguf(cv_model *m, const char *path, int vocab_only, slm_err *err);
int cv_from_hf(cv_model *m, const char *dir, int vocab_only, slm_err *err);
int cv_from_llama2c(cv_model *m, const char *bin, const char *tokbin,
		    slm_err *err);

/* Write a bundle: tensors in order, then the vocabulary member; tile:
 * the matrices bundle_tile_wanted names in the tile16 layout. A
 * progress callback (may be NULL) is called after each tensor. */
int cv_write_bundle(cv_model *m, const char *out, int gzip, int tile,
		    void (*progress)(void *arg, uint64_t done, uint64_t total),
		    void *progress_arg, slm_err *err);

/* Export a bundle as GGUF v3 (tensors byte-identical, tile16 ones back in
 * plain rows; metadata typed as llama.cpp expects). */
int cv_bundle_to_gguf(const slm_bundle *b, const char *out, slm_err *err);

#endif
