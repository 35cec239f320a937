/*
 * conv_llama2c.c - Karpathy's llama2.c checkpoints (the tiny TinyStories
 * models) into a cv_model of architecture "llama": the float32 .bin
 * (legacy layout, or export version 1 with its 256-byte "ak42" header)
 * and its tokenizer.bin (SentencePiece pieces with scores).
 *
 * Rows need no permutation: llama2.c's RoPE (run.c, model.py) rotates
 * adjacent pairs of each head, the layout of Meta's checkpoints and the
 * one llama.cpp's "llama" graph expects, which its Hugging Face converter
 * restores by permuting q/k.
 */
#include "convert.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define AK42_MAGIC 0x616b3432u
#define AK42_HEADER 256

typedef struct l2c_map {
	const uint8_t *base;
	size_t size;
} l2c_map;

static void l2c_unmap(void *p)
{
	l2c_map *m = p;
	if (m->base)
		munmap((void *)m->base, m->size);
	free(m);
}

/* Map a whole file; the mapping is released with the model. */
static int map_file(cv_model *m, const char *path, l2c_map **out, slm_err *err)
{
	const uint8_t *base;
	size_t size;
	if (slm_map_file(path, &base, &size, err) < 0)
		return -1;
	l2c_map *mp = slm_xcalloc(1, sizeof *mp);
	mp->base = base;
	mp->size = size;
	cv_model_hold(m, mp, l2c_unmap);
	*out = mp;
	return 0;
}

static int32_t rd_i32(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			 (uint32_t)p[3] << 24);
}

typedef struct l2c_cfg {
	int64_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
	int shared;
	int version;        /* 0 legacy, 1 ak42 v1 */
	uint64_t data_off;
} l2c_cfg;

static int read_header(const char *path, const l2c_map *mp, l2c_cfg *c, slm_err *err)
{
	const uint8_t *b = mp->base;
	if (mp->size >= 8 && (uint32_t)rd_i32(b) == AK42_MAGIC) {
		c->version = rd_i32(b + 4);
		if (c->version != 1)
			return slm_seterr(err, EX_DATAERR,
					  "%s: offset 4: llama2.c export version %d is not "
					  "supported (legacy and version 1, float32, are)", path,
					  c->version);
		if (mp->size < AK42_HEADER)
			return slm_seterr(err, EX_DATAERR, "%s: offset %zu: truncated header "
					  "(%d bytes)", path, mp->size, AK42_HEADER);
		b += 8;
		c->data_off = AK42_HEADER;
	} else {
		if (mp->size < 28)
			return slm_seterr(err, EX_DATAERR, "%s: offset %zu: truncated header "
					  "(28 bytes)", path, mp->size);
		c->version = 0;
		c->data_off = 28;
	}
	int64_t v[7];
	static const char *const names[] = { "dim", "hidden_dim", "n_layers", "n_heads",
					     "n_kv_heads", "vocab_size", "seq_len" };
	for (int i = 0; i < 7; i++)
		v[i] = rd_i32(b + 4 * i);
	c->shared = c->version ? mp->base[36] != 0 : v[5] > 0;
	if (!c->version && v[5] < 0)
		v[5] = -v[5]; /* negative: an unshared classifier follows */
	for (int i = 0; i < 7; i++)
		if (v[i] <= 0)
			return slm_seterr(err, EX_DATAERR, "%s: offset %llu: %s is %lld",
					  path, (unsigned long long)(c->data_off == 28 ? 4 * i
								     : 8 + 4 * i),
					  names[i], (long long)v[i]);
	c->dim = v[0];
	c->hidden = v[1];
	c->n_layers = v[2];
	c->n_heads = v[3];
	c->n_kv_heads = v[4];
	c->vocab = v[5];
	c->seq_len = v[6];
	if (c->dim % c->n_heads || (c->dim / c->n_heads) % 2 ||
	    c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
		return slm_seterr(err, EX_DATAERR,
				  "%s: offset 0: dim %lld, n_heads %lld, n_kv_heads %lld do not "
				  "make heads of an even size shared evenly", path,
				  (long long)c->dim, (long long)c->n_heads,
				  (long long)c->n_kv_heads);
	return 0;
}

/* One kind of weight: n_layers (or 1) consecutive matrices of rows x cols. */
typedef struct l2c_kind {
	const char *name;   /* GGUF name; per layer: the part after "blk.N." */
	uint64_t rows, cols;
	int per_layer;
	uint64_t off;       /* filled in: byte offset of the first */
} l2c_kind;

enum { K_EMB, K_ATT_NORM, K_Q, K_K, K_V, K_O, K_FFN_NORM, K_GATE, K_DOWN, K_UP,
       K_OUT_NORM, K_FREQ, K_CLS, NKINDS };

int cv_from_llama2c(cv_model *m, const char *bin, const char *tokbin, slm_err *err)
{
	l2c_map *mp = NULL;
	l2c_cfg c = { 0 };
	if (map_file(m, bin, &mp, err) < 0 || read_header(bin, mp, &c, err) < 0)
		return -1;
	uint64_t dim = (uint64_t)c.dim, hid = (uint64_t)c.hidden;
	uint64_t head = dim / (uint64_t)c.n_heads;
	uint64_t kv = head * (uint64_t)c.n_kv_heads, L = (uint64_t)c.n_layers;
	l2c_kind k[NKINDS] = {
		[K_EMB] = { "token_embd.weight", (uint64_t)c.vocab, dim, 0, 0 },
		[K_ATT_NORM] = { "attn_norm", 1, dim, 1, 0 },
		[K_Q] = { "attn_q", dim, dim, 1, 0 },
		[K_K] = { "attn_k", kv, dim, 1, 0 },
		[K_V] = { "attn_v", kv, dim, 1, 0 },
		[K_O] = { "attn_output", dim, dim, 1, 0 },
		[K_FFN_NORM] = { "ffn_norm", 1, dim, 1, 0 },
		[K_GATE] = { "ffn_gate", hid, dim, 1, 0 },
		[K_DOWN] = { "ffn_down", dim, hid, 1, 0 },
		[K_UP] = { "ffn_up", hid, dim, 1, 0 },
		[K_OUT_NORM] = { "output_norm.weight", 1, dim, 0, 0 },
		/* legacy only: freq_cis real and imaginary parts, skipped */
		[K_FREQ] = { NULL, 2 * (uint64_t)c.seq_len, head / 2, 0, 0 },
		[K_CLS] = { "output.weight", (uint64_t)c.vocab, dim, 0, 0 },
	};
	static const int legacy[] = { K_EMB, K_ATT_NORM, K_Q, K_K, K_V, K_O, K_FFN_NORM,
				      K_GATE, K_DOWN, K_UP, K_OUT_NORM, K_FREQ, K_CLS };
	static const int v1[] = { K_ATT_NORM, K_FFN_NORM, K_OUT_NORM, K_EMB, K_Q, K_K, K_V,
				  K_O, K_GATE, K_DOWN, K_UP, K_CLS };
	const int *order = c.version ? v1 : legacy;
	size_t norder = c.version ? sizeof v1 / sizeof v1[0] : sizeof legacy / sizeof legacy[0];
	uint64_t off = c.data_off;
	int bad = 0;
	for (size_t i = 0; i < norder; i++) {
		l2c_kind *kd = &k[order[i]];
		uint64_t n;
		if (order[i] == K_CLS && c.shared)
			continue;
		kd->off = off;
		bad |= slm_mul_ok(kd->rows, kd->cols, &n) < 0 ||
		       slm_mul_ok(n, kd->per_layer ? L : 1, &n) < 0 ||
		       slm_mul_ok(n, 4, &n) < 0 || slm_add_ok(off, n, &off) < 0;
	}
	if (bad || off != mp->size) {
		if (bad)
			return slm_seterr(err, EX_DATAERR, "%s: offset 0: the header's sizes "
					  "overflow", bin);
		return slm_seterr(err, EX_DATAERR,
				  "%s: offset %llu: the header describes %llu bytes of float32 "
				  "weights, the file holds %llu", bin,
				  (unsigned long long)c.data_off,
				  (unsigned long long)(off - c.data_off),
				  (unsigned long long)(mp->size - c.data_off));
	}

	/* tensors: globals, then block by block */
	const slm_dtype *f32 = dtype_by_name("f32");
	static const int globals[] = { K_EMB, K_OUT_NORM, K_CLS };
	static const int blocks[] = { K_ATT_NORM, K_Q, K_K, K_V, K_O, K_FFN_NORM, K_GATE,
				      K_DOWN, K_UP };
	for (int pass = 0; pass < 2; pass++)
		for (uint64_t l = 0; l < (pass ? L : 1); l++) {
			const int *ks = pass ? blocks : globals;
			size_t nk = pass ? 9 : 3;
			for (size_t i = 0; i < nk; i++) {
				const l2c_kind *kd = &k[ks[i]];
				if (ks[i] == K_CLS && c.shared)
					continue;
				char name[64];
				if (kd->per_layer)
					snprintf(name, sizeof name, "blk.%d.%s.weight", (int)l,
						 kd->name);
				else
					snprintf(name, sizeof name, "%s", kd->name);
				uint64_t ne[2] = { kd->cols, kd->rows };
				cv_tensor *t = cv_add_tensor(m, name, f32, kd->rows == 1 ? 1 : 2, ne,
							     err);
				if (!t)
					return slm_preerr(err, "%s", bin);
				t->src = mp->base + kd->off + l * t->size;
			}
		}

	json_t *man = m->manifest, *hp = json_object();
	json_object_set_new(man, "arch", json_string("llama"));
	json_object_set_new(man, "hparams", hp);
	json_object_set_new(hp, "context_length", json_integer(c.seq_len));
	json_object_set_new(hp, "embedding_length", json_integer(c.dim));
	json_object_set_new(hp, "feed_forward_length", json_integer(c.hidden));
	json_object_set_new(hp, "block_count", json_integer(c.n_layers));
	json_object_set_new(hp, "attention.head_count", json_integer(c.n_heads));
	json_object_set_new(hp, "attention.head_count_kv", json_integer(c.n_kv_heads));
	json_object_set_new(hp, "rope.dimension_count", json_integer((json_int_t)head));
	json_object_set_new(hp, "rope.freq_base", json_real(10000.0));
	json_object_set_new(hp, "attention.layer_norm_rms_epsilon", json_real(1e-5));
	json_object_set_new(hp, "vocab_size", json_integer(c.vocab));
	if (c.shared)
		json_object_set_new(hp, "tied_embeddings", json_true());
	json_t *prov = json_object();
	json_object_set_new(prov, "source", json_string(bin));
	json_object_set_new(prov, "source_format", json_string("llama2.c"));
	json_object_set_new(man, "provenance", prov);
	char *b = slm_xstrdup(bin), *slash = strrchr(b, '/'), *nm = slash ? slash + 1 : b;
	char *dot = strrchr(nm, '.');
	if (dot && dot != nm)
		*dot = 0;
	json_object_set_new(man, "name", json_string(nm));
	free(b);
	if (!tokbin)
		return 0;

	/* tokenizer.bin: max_token_length, then per token: f32 score,
	 * int32 length, bytes (SentencePiece pieces with "▁" written as " ",
	 * BOS and EOS as "\n<s>\n" and "\n</s>\n") */
	l2c_map *tp;
	if (map_file(m, tokbin, &tp, err) < 0)
		return -1;
	if (tp->size < 4)
		return slm_seterr(err, EX_DATAERR, "%s: offset 0: truncated", tokbin);
	cv_vocab *v = &m->vocab;
	size_t n = (size_t)c.vocab;
	v->tok = slm_xcalloc(n, sizeof *v->tok);
	v->tok_len = slm_xcalloc(n, sizeof *v->tok_len);
	v->scores = slm_xcalloc(n, sizeof *v->scores);
	v->types = slm_xcalloc(n, sizeof *v->types);
	v->own_strings = 1;
	uint64_t p = 4;
	for (size_t i = 0; i < n; i++) {
		if (tp->size - p < 8)
			return slm_seterr(err, EX_DATAERR, "%s: offset %llu: truncated at token "
					  "%zu of %zu", tokbin, (unsigned long long)p, i, n);
		float score;
		memcpy(&score, tp->base + p, 4);
		int32_t len = rd_i32(tp->base + p + 4);
		p += 8;
		if (len < 0 || (uint64_t)len > tp->size - p)
			return slm_seterr(err, EX_DATAERR, "%s: offset %llu: token %zu: length "
					  "%d does not fit the file", tokbin,
					  (unsigned long long)(p - 4), i, len);
		const char *s = (const char *)tp->base + p;
		p += (uint64_t)len;
		/* back to SentencePiece pieces: " " -> "▁" (3 bytes) */
		char *out = slm_xmalloc(3 * (size_t)len + 1);
		size_t o = 0;
		int32_t type = 1; /* normal */
		if (len == 5 && !memcmp(s, "\n<s>\n", 5)) {
			o = (size_t)sprintf(out, "<s>");
			type = 3;
		} else if (len == 6 && !memcmp(s, "\n</s>\n", 6)) {
			o = (size_t)sprintf(out, "</s>");
			type = 3;
		} else {
			for (int32_t j = 0; j < len; j++) {
				if (s[j] == ' ') {
					memcpy(out + o, "\xe2\x96\x81", 3);
					o += 3;
				} else {
					out[o++] = s[j];
				}
			}
			out[o] = 0;
			if (!strcmp(out, "<unk>"))
				type = 2;
			else if (o == 6 && !strncmp(out, "<0x", 3) && out[5] == '>')
				type = 6;
		}
		v->tok[i] = (const uint8_t *)out;
		v->tok_len[i] = (uint32_t)o;
		v->scores[i] = score;
		v->types[i] = type;
		v->n = i + 1;
	}
	if (p != tp->size)
		return slm_seterr(err, EX_DATAERR, "%s: offset %llu: %llu bytes after the %zu "
				  "tokens of the model's vocabulary", tokbin,
				  (unsigned long long)p, (unsigned long long)(tp->size - p), n);
	json_t *tok = json_object();
	json_object_set_new(man, "tokenizer", tok);
	json_object_set_new(tok, "model", json_string("llama"));
	json_object_set_new(tok, "pre", json_string("default"));
	static const char *const ids[][2] = { { "<unk>", "unknown_token_id" },
					      { "<s>", "bos_token_id" },
					      { "</s>", "eos_token_id" } };
	for (size_t i = 0; i < 3; i++)
		for (size_t t = 0; t < n && t < 3; t++)
			if (!strcmp((const char *)v->tok[t], ids[i][0]))
				json_object_set_new(tok, ids[i][1], json_integer((json_int_t)t));
	json_object_set_new(tok, "add_bos_token", json_true());
	json_object_set_new(tok, "add_space_prefix", json_true());
	return 0;
}
