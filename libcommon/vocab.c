/*
 * vocab.c - loading a tokenizer vocabulary from a GGUF file or a bundle
 * into a tok_vocab: the token table with its hash index, the BPE merge
 * table, byte tokens, special-token ids and the per-model settings that
 * llama.cpp derives from tokenizer.ggml.model / .pre and general.name.
 */
#include <ctype.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "vocab.h"

/* ---------------------------------------------------------------------
 * What a source provides
 * ------------------------------------------------------------------- */

enum {
	ID_BOS, ID_EOS, ID_EOT, ID_EOM, ID_UNK, ID_SEP, ID_PAD, ID_MASK, ID_CLS,
	N_IDS
};
static const char *const id_keys[N_IDS] = {
	"bos_token_id", "eos_token_id", "eot_token_id", "eom_token_id",
	"unknown_token_id", "seperator_token_id", "padding_token_id",
	"mask_token_id", "cls_token_id",
};
enum { B_ADD_BOS, B_ADD_EOS, B_ADD_SEP, B_SPACE_PREFIX, B_LOWERCASE, N_BOOLS };
static const char *const bool_keys[N_BOOLS] = {
	"add_bos_token", "add_eos_token", "add_sep_token", "add_space_prefix",
	"normalizer.lowercase",
};

typedef struct vsrc {
	const char *where;          /* for messages */
	char model[64], pre[64], name[256];
	int64_t ids[N_IDS];         /* -2: absent */
	int bools[N_BOOLS];         /* -1: absent */
	size_t n;
	const uint8_t **tok;
	uint32_t *tok_len;
	float *scores;              /* NULL if absent */
	int32_t *types;             /* NULL if absent */
	size_t nmerges;
	const uint8_t **merge;
	uint32_t *merge_len;
} vsrc;

static void vsrc_init(vsrc *s, const char *where)
{
	memset(s, 0, sizeof *s);
	s->where = where ? where : "vocabulary";
	for (int i = 0; i < N_IDS; i++)
		s->ids[i] = -2;
	for (int i = 0; i < N_BOOLS; i++)
		s->bools[i] = -1;
}

static void vsrc_free(vsrc *s)
{
	free(s->tok);
	free(s->tok_len);
	free(s->scores);
	free(s->types);
	free(s->merge);
	free(s->merge_len);
}

static void copy_str(char *dst, size_t cap, const char *p, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, p, n);
	dst[n] = 0;
}

/* ---------------------------------------------------------------------
 * Hashing
 * ------------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xA24BAED4963EE407ull);
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xFF51AFD7ED558CCDull;
		h ^= h >> 32;
		s += 8;
		n -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, s, n);
	h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
	h ^= h >> 29;
	return h;
}

static uint64_t hash_pair(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xFF51AFD7ED558CCDull;
	k ^= k >> 33;
	return k;
}

int32_t vocab_lookup(const tok_vocab *v, const char *s, size_t len)
{
	uint64_t h = hash_bytes(s, len);
	size_t i = h & v->ht_mask;
	for (;;) {
		uint64_t e = v->ht[i];
		if (!e)
			return TOK_NULL;
		if ((e >> 32) == (h >> 32)) {
			uint32_t id = (uint32_t)e - 1;
			const tok_entry *t = &v->tok[id];
			if (t->len == len && !memcmp(v->blob + t->off, s, len))
				return (int32_t)id;
		}
		i = (i + 1) & v->ht_mask;
	}
}

int32_t vocab_merge(const tok_vocab *v, int32_t l, int32_t r, int32_t *res)
{
	if (!v->mg_key)
		return -1;
	uint64_t k = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
	size_t i = hash_pair(k) & v->mg_mask;
	for (;;) {
		uint64_t e = v->mg_key[i];
		if (e == UINT64_MAX)
			return -1;
		if (e == k) {
			*res = v->mg_res[i];
			return v->mg_rank[i];
		}
		i = (i + 1) & v->mg_mask;
	}
}

static void ht_insert(tok_vocab *v, int32_t id)
{
	const tok_entry *t = &v->tok[id];
	uint64_t h = hash_bytes(v->blob + t->off, t->len);
	size_t i = h & v->ht_mask;
	while (v->ht[i])
		i = (i + 1) & v->ht_mask;
	v->ht[i] = (h >> 32) << 32 | ((uint64_t)id + 1);
}

static void ht_rebuild(tok_vocab *v, size_t want)
{
	size_t cap = 1024;
	while (cap < want * 2)
		cap *= 2;
	free(v->ht);
	v->ht = slm_xcalloc(cap, sizeof *v->ht);
	v->ht_mask = cap - 1;
	for (int32_t i = 0; i < v->n_all; i++)
		ht_insert(v, i);
}

/* Append a string to the blob and the entry table (no hashing). */
static int32_t add_entry(tok_vocab *v, size_t *cap, size_t *blob_cap,
			 const char *s, size_t len)
{
	if ((size_t)v->n_all == *cap) {
		*cap = *cap ? *cap * 2 : 1024;
		v->tok = slm_xrealloc(v->tok, *cap * sizeof *v->tok);
	}
	if (v->blob_len + len + 1 > *blob_cap) {
		while (v->blob_len + len + 1 > *blob_cap)
			*blob_cap = *blob_cap ? *blob_cap * 2 : 65536;
		v->blob = slm_xrealloc(v->blob, *blob_cap);
	}
	tok_entry *t = &v->tok[v->n_all];
	memset(t, 0, sizeof *t);
	t->off = (uint32_t)v->blob_len;
	t->len = (uint32_t)len;
	memcpy(v->blob + v->blob_len, s, len);
	v->blob_len += len;
	v->blob[v->blob_len++] = 0;
	return v->n_all++;
}

/* The id of s, interning it as a virtual (non-token) string if needed. */
static int32_t intern(tok_vocab *v, size_t *cap, size_t *blob_cap,
		      const char *s, size_t len)
{
	int32_t id = vocab_lookup(v, s, len);
	if (id != TOK_NULL)
		return id;
	id = add_entry(v, cap, blob_cap, s, len);
	v->tok[id].attr = TA_VIRTUAL;
	if ((size_t)v->n_all * 2 > v->ht_mask + 1)
		ht_rebuild(v, (size_t)v->n_all * 2);
	else
		ht_insert(v, id);
	return id;
}

/* ---------------------------------------------------------------------
 * Pre-tokenizers by name (llama.cpp's llama_vocab::impl::load)
 * ------------------------------------------------------------------- */

static int in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return 1;
	return 0;
}

static int set_pre(tok_vocab *v, const char *pre)
{
	static const char *const gpt2[] = {
		"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es",
		"jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "mpt", "olmo",
		"jais", "trillion", "granite-docling", "exaone4", "jina-v1-en",
		"jina-v2-code", "roberta-bpe", NULL
	};
	static const char *const starcoder[] = {
		"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
		"minerva-7b", "mellum2", NULL
	};
	static const char *const llama3[] = {
		"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
		"midm-2.0", "lfm2", "jina-v5-nano", "dbrx", "smaug-bpe", "glm4",
		"chatglm-bpe", NULL
	};
	static const char *const qwen2[] = {
		"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2",
		"hunyuan", "solar-open", NULL
	};
	static const char *const no_clean[] = {
		"deepseek-llm", "deepseek-coder", "command-r", "qwen2",
		"deepseek-r1-qwen", "kormo", "f2llmv2", "smollm", "poro-chat",
		"viking", "hunyuan", "solar-open", "trillion", "granite-docling", NULL
	};
#define IN(list) in_list(list, pre)
	uint8_t *st = v->stage;
	int n = 0;
	if (!*pre || !strcmp(pre, "default")) {
		st[n++] = PS_PUNCT;
		st[n++] = PS_GPT2;
		st[n++] = PS_DIGITS;
		st[n++] = PS_ASCII3;
	} else if (IN(gpt2)) {
		st[n++] = PS_GPT2;
	} else if (IN(starcoder)) {
		st[n++] = PS_DIGIT;
		st[n++] = PS_GPT2;
	} else if (IN(llama3)) {
		st[n++] = PS_LLAMA3;
	} else if (IN(qwen2)) {
		st[n++] = PS_QWEN2;
	} else if (!strcmp(pre, "falcon")) {
		st[n++] = PS_PUNCT_FALCON;
		st[n++] = PS_GPT2;
		st[n++] = PS_ASCII3;
	} else if (!strcmp(pre, "deepseek-llm")) {
		st[n++] = PS_NEWLINE;
		st[n++] = PS_DS_LETTERS;
		st[n++] = PS_DS_PUNCT;
		st[n++] = PS_WS_END;
		st[n++] = PS_CJK;
		st[n++] = PS_DIGITS;
	} else if (!strcmp(pre, "deepseek-coder")) {
		st[n++] = PS_NEWLINE;
		st[n++] = PS_WS_LETTERS;
		st[n++] = PS_WS_PUNCT;
		st[n++] = PS_CJK;
		st[n++] = PS_DIGIT;
	} else if (!strcmp(pre, "poro-chat") || !strcmp(pre, "bloom") ||
		   !strcmp(pre, "gpt3-finnish")) {
		st[n++] = PS_BLOOM;
	} else if (!strcmp(pre, "viking")) {
		st[n++] = PS_BLOOM;
		st[n++] = PS_DIGIT;
	} else {
		return -1;
	}
	v->n_stages = n;
	v->clean_spaces = !IN(no_clean);
	if (IN(llama3) && strcmp(pre, "dbrx") && strcmp(pre, "smaug-bpe") &&
	    strcmp(pre, "glm4") && strcmp(pre, "chatglm-bpe")) {
		v->ignore_merges = 1;
		v->add_bos = 1;
	}
	if (!strcmp(pre, "glm4") || !strcmp(pre, "chatglm-bpe"))
		v->bos = TOK_NULL;
	if (!strcmp(pre, "jina-v1-en") || !strcmp(pre, "jina-v2-code") ||
	    !strcmp(pre, "roberta-bpe"))
		v->add_sep = 1;
#undef IN
	return 0;
}

/* ---------------------------------------------------------------------
 * Building
 * ------------------------------------------------------------------- */

/* End-of-generation tokens llama.cpp recognises by their text. */
static const char *const eog_texts[] = {
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>",
	"<|flush|>", "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>",
	"<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
	"<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
	"<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
	"[e~[", NULL
};
/* The EOT token, when the file names none: the first of these found. */
static const char *const eot_texts[] = {
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
	"<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
	"<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
	"<end_of_utterance>", NULL
};

static int32_t find_c(const tok_vocab *v, const char *s)
{
	int32_t id = vocab_lookup(v, s, strlen(s));
	return id >= 0 && id < v->n ? id : TOK_NULL;
}

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

int32_t vocab_trie_child(const tok_vocab *v, int32_t node, uint8_t c)
{
	uint64_t k = ((uint64_t)node << 8 | c) + 1;
	size_t i = hash_pair(k) & v->tr_mask;
	for (;;) {
		uint64_t e = v->tr_key[i];
		if (e == 0)
			return -1;
		if (e == k)
			return v->tr_child[i];
		i = (i + 1) & v->tr_mask;
	}
}

static void build_trie(tok_vocab *v)
{
	size_t bytes = 0;
	for (size_t i = 0; i < v->n_special; i++)
		bytes += v->tok[v->special[i]].len;
	size_t cap = 64;
	while (cap < (bytes + 1) * 2)
		cap *= 2;
	v->tr_key = slm_xcalloc(cap, sizeof *v->tr_key);
	v->tr_child = slm_xmalloc(cap * sizeof *v->tr_child);
	v->tr_mask = cap - 1;
	v->tr_rank = slm_xmalloc((bytes + 1) * sizeof *v->tr_rank);
	v->tr_rank[0] = -1;
	v->tr_n = 1;
	for (size_t i = 0; i < v->n_special; i++) {
		int32_t id = v->special[i];
		const uint8_t *p = (const uint8_t *)vocab_text(v, id);
		uint32_t len = v->tok[id].len;
		int32_t node = 0;
		v->tr_first[p[0] >> 3] |= (uint8_t)(1u << (p[0] & 7));
		for (uint32_t j = 0; j < len; j++) {
			int32_t ch = vocab_trie_child(v, node, p[j]);
			if (ch < 0) {
				uint64_t k = ((uint64_t)node << 8 | p[j]) + 1;
				size_t h = hash_pair(k) & v->tr_mask;
				while (v->tr_key[h])
					h = (h + 1) & v->tr_mask;
				ch = (int32_t)v->tr_n++;
				v->tr_rank[ch] = -1;
				v->tr_key[h] = k;
				v->tr_child[h] = ch;
			}
			node = ch;
		}
		v->tr_rank[node] = (int32_t)i;
	}
}

static void add_eog(tok_vocab *v, int32_t id)
{
	if (id < 0 || id >= v->n)
		return;
	for (size_t i = 0; i < v->n_eog; i++)
		if (v->eog[i] == id)
			return;
	v->eog = slm_xrealloc(v->eog, (v->n_eog + 1) * sizeof *v->eog);
	v->eog[v->n_eog++] = id;
	v->tok[id].attr |= TA_CONTROL;
}

static int build(tok_vocab **out, vsrc *s, slm_err *err)
{
	*out = NULL;
	tok_vocab *v = slm_xcalloc(1, sizeof *v);
	size_t cap = 0, blob_cap = 0;
	int rc = -1;

	v->model = slm_xstrdup(s->model);
	v->pre = slm_xstrdup(*s->pre ? s->pre : "default");
	v->bos = v->eos = v->eot = v->eom = v->unk = v->sep = v->pad = v->mask = TOK_NULL;
	if (!strcmp(s->model, "llama")) {
		v->kind = TOK_SPM;
		v->bos = 1;
		v->eos = 2;
		v->unk = 0;
		v->add_space_prefix = 1;
		v->add_bos = 1;
	} else if (!strcmp(s->model, "gpt2")) {
		v->kind = TOK_BPE;
		v->bos = 11;
		v->eos = 11;
		if (set_pre(v, s->pre) < 0) {
			slm_seterr(err, EX_DATAERR, "%s: unsupported pre-tokenizer '%s'",
				   s->where, s->pre);
			goto out;
		}
	} else if (!strcmp(s->model, "bert")) {
		v->kind = TOK_WPM;
		v->bos = 101;
		v->unk = 100;
		v->sep = 102;
		v->pad = 0;
		v->mask = 103;
		v->add_bos = 1;
		v->add_sep = 1;
		v->clean_spaces = 1;
		v->lowercase = 1;
	} else {
		slm_seterr(err, EX_DATAERR, "%s: unsupported tokenizer model '%s'",
			   s->where, *s->model ? s->model : "(none)");
		goto out;
	}
	if (s->n == 0) {
		slm_seterr(err, EX_DATAERR, "%s: no tokens", s->where);
		goto out;
	}
	if (s->n > INT32_MAX / 4) {
		slm_seterr(err, EX_DATAERR, "%s: %zu tokens is too many", s->where, s->n);
		goto out;
	}

	/* tokens */
	ht_rebuild(v, s->n + s->nmerges / 8 + 16);
	for (size_t i = 0; i < s->n; i++) {
		char tmp[32];
		const char *p = (const char *)s->tok[i];
		size_t len = s->tok_len[i];
		if (len == 0) {
			len = (size_t)snprintf(tmp, sizeof tmp, "[EMPTY_%zu]", i);
			p = tmp;
		}
		if (vocab_lookup(v, p, len) != TOK_NULL) {
			slm_seterr(err, EX_DATAERR, "%s: duplicate token %zu ('%.*s')",
				   s->where, i, (int)(len > 40 ? 40 : len), p);
			goto out;
		}
		int32_t id = add_entry(v, &cap, &blob_cap, p, len);
		tok_entry *t = &v->tok[id];
		t->score = s->scores ? s->scores[i] : 0.0f;
		int ty = s->types ? s->types[i] : TOK_T_NORMAL;
		t->type = (uint8_t)(ty >= 0 && ty <= 6 ? ty : 0);
		switch (ty) {
		case TOK_T_NORMAL: t->attr = TA_NORMAL; break;
		case TOK_T_UNKNOWN: t->attr = TA_UNKNOWN; break;
		case TOK_T_CONTROL: t->attr = TA_CONTROL; break;
		case TOK_T_USER_DEFINED: t->attr = TA_USER; break;
		case TOK_T_UNUSED: t->attr = TA_UNUSED; break;
		case TOK_T_BYTE: t->attr = TA_BYTE; break;
		default: t->attr = 0; break;
		}
		if (len > v->max_token_len)
			v->max_token_len = (uint32_t)len;
		if ((size_t)v->n_all * 2 > v->ht_mask + 1)
			ht_rebuild(v, (size_t)v->n_all * 2);
		else
			ht_insert(v, id);
	}
	v->n = v->n_all;

	/* settings from the file */
	if (s->bools[B_SPACE_PREFIX] >= 0)
		v->add_space_prefix = s->bools[B_SPACE_PREFIX];
	if (s->bools[B_LOWERCASE] >= 0)
		v->lowercase = s->bools[B_LOWERCASE];
	v->strip_accents = v->lowercase;
	int32_t *idp[ID_CLS] = { &v->bos, &v->eos, &v->eot, &v->eom, &v->unk,
				 &v->sep, &v->pad, &v->mask };
	if (s->ids[ID_BOS] < 0)
		s->ids[ID_BOS] = s->ids[ID_CLS]; /* older BERT conversions */
	for (int i = 0; i < ID_CLS; i++) {
		if (*idp[i] >= v->n)
			*idp[i] = TOK_NULL;
		if (s->ids[i] >= 0 && s->ids[i] < v->n)
			*idp[i] = (int32_t)s->ids[i];
	}
	if (s->bools[B_ADD_BOS] >= 0)
		v->add_bos = s->bools[B_ADD_BOS];
	if (s->bools[B_ADD_EOS] >= 0)
		v->add_eos = s->bools[B_ADD_EOS];
	if (s->bools[B_ADD_SEP] >= 0)
		v->add_sep = s->bools[B_ADD_SEP];
	if ((v->add_bos && v->bos == TOK_NULL) || (v->add_eos && v->eos == TOK_NULL) ||
	    (v->add_sep && v->sep == TOK_NULL)) {
		slm_seterr(err, EX_DATAERR, "%s: add_%s_token is set but the vocabulary has no %s token",
			   s->where, v->add_bos && v->bos == TOK_NULL ? "bos"
				     : v->add_eos && v->eos == TOK_NULL ? "eos" : "sep",
			   v->add_bos && v->bos == TOK_NULL ? "BOS"
			   : v->add_eos && v->eos == TOK_NULL ? "EOS" : "SEP");
		goto out;
	}

	/* bytes */
	{
		int nxt = 0;
		for (int b = 0; b < 256; b++) {
			int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) ||
				   (b >= 0xAE && b <= 0xFF);
			uint32_t cp = keep ? (uint32_t)b : (uint32_t)(256 + nxt++);
			char u[4];
			size_t k = tok_utf8_put(cp, u);
			memcpy(v->byte_chr[b], u, k);
			v->byte_chr_len[b] = (uint8_t)k;
		}
		for (size_t c = 0; c < sizeof v->chr_byte / sizeof *v->chr_byte; c++)
			v->chr_byte[c] = -1;
		for (int b = 0; b < 256; b++) {
			size_t k;
			uint32_t cp = tok_utf8_next((const uint8_t *)v->byte_chr[b],
						    v->byte_chr_len[b], &k);
			v->chr_byte[cp] = (int16_t)b;
		}
	}
	for (int b = 0; b < 256; b++) {
		int32_t id = TOK_NULL;
		if (v->kind == TOK_BPE) {
			id = vocab_lookup(v, v->byte_chr[b], v->byte_chr_len[b]);
		} else {
			char hx[8];
			snprintf(hx, sizeof hx, "<0x%02X>", b);
			id = find_c(v, hx);
			if (id == TOK_NULL) {
				char c = (char)b;
				id = vocab_lookup(v, &c, 1);
			}
		}
		v->byte_tok[b] = id;
	}

	/* merges */
	if (v->kind == TOK_BPE && s->nmerges) {
		size_t mcap = 1024;
		while (mcap < s->nmerges * 2)
			mcap *= 2;
		v->mg_key = slm_xmalloc(mcap * sizeof *v->mg_key);
		v->mg_rank = slm_xmalloc(mcap * sizeof *v->mg_rank);
		v->mg_res = slm_xmalloc(mcap * sizeof *v->mg_res);
		memset(v->mg_key, 0xFF, mcap * sizeof *v->mg_key);
		v->mg_mask = mcap - 1;
		char *buf = NULL;
		size_t bcap = 0;
		for (size_t i = 0; i < s->nmerges; i++) {
			const char *m = (const char *)s->merge[i];
			size_t len = s->merge_len[i];
			const char *sp = len > 1 ? memchr(m + 1, ' ', len - 1) : NULL;
			if (!sp)
				continue;
			size_t ll = (size_t)(sp - m), rl = len - ll - 1;
			int32_t l = intern(v, &cap, &blob_cap, m, ll);
			int32_t r = intern(v, &cap, &blob_cap, sp + 1, rl);
			if (bcap < ll + rl) {
				bcap = ll + rl;
				buf = slm_xrealloc(buf, bcap);
			}
			memcpy(buf, m, ll);
			memcpy(buf + ll, sp + 1, rl);
			int32_t res = intern(v, &cap, &blob_cap, buf, ll + rl);
			uint64_t k = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
			size_t j = hash_pair(k) & v->mg_mask;
			while (v->mg_key[j] != UINT64_MAX && v->mg_key[j] != k)
				j = (j + 1) & v->mg_mask;
			if (v->mg_key[j] == k)
				continue; /* the first rank wins */
			v->mg_key[j] = k;
			v->mg_rank[j] = (int32_t)i;
			v->mg_res[j] = res;
			v->n_merges++;
		}
		free(buf);
	}

	/* end-of-generation and other tokens found by their text */
	if (v->eot == TOK_NULL)
		for (int i = 0; eot_texts[i] && v->eot == TOK_NULL; i++)
			v->eot = find_c(v, eot_texts[i]);
	if (v->eot != TOK_NULL)
		v->tok[v->eot].attr |= TA_CONTROL;
	if (v->eom == TOK_NULL)
		v->eom = find_c(v, "<|eom_id|>");
	for (int i = 0; eog_texts[i]; i++)
		add_eog(v, find_c(v, eog_texts[i]));
	add_eog(v, v->eos);
	add_eog(v, v->eot);
	add_eog(v, v->eom);
	if (v->n_eog)
		qsort(v->eog, v->n_eog, sizeof *v->eog, cmp_i32);
	/* control tokens named "unused" are unused */
	for (int32_t i = 0; i < v->n; i++)
		if ((v->tok[i].attr & TA_CONTROL) && strstr(vocab_text(v, i), "unused"))
			v->tok[i].attr |= TA_UNUSED;

	/* special tokens, longest first */
	for (int32_t i = 0; i < v->n; i++)
		if (v->tok[i].attr & (TA_CONTROL | TA_USER | TA_UNKNOWN))
			v->n_special++;
	{
		/* key: (UINT32_MAX - length, id) sorts longest first, then by id */
		uint64_t *key = slm_xmalloc((v->n_special + 1) * sizeof *key);
		size_t k = 0;
		for (int32_t i = 0; i < v->n; i++)
			if (v->tok[i].attr & (TA_CONTROL | TA_USER | TA_UNKNOWN))
				key[k++] = (uint64_t)(UINT32_MAX - v->tok[i].len) << 32 | (uint32_t)i;
		qsort(key, k, sizeof *key, cmp_u64);
		v->special = slm_xmalloc((k + 1) * sizeof *v->special);
		for (size_t i = 0; i < k; i++)
			v->special[i] = (int32_t)(key[i] & 0xFFFFFFFFu);
		free(key);
	}
	build_trie(v);

	/* per-model attributes llama.cpp keys on general.name */
	{
		char lname[sizeof s->name];
		for (size_t i = 0; i < sizeof lname; i++)
			lname[i] = (char)tolower((unsigned char)s->name[i]);
		if (strstr(lname, "phi-3") || strstr(lname, "phi3")) {
			for (size_t i = 0; i < v->n_special; i++)
				v->tok[v->special[i]].attr |= TA_RSTRIP;
			int32_t id = find_c(v, "</s>");
			if (id != TOK_NULL)
				v->tok[id].attr |= TA_RSTRIP;
			static const char *const keep[] = { "<unk>", "<s>", "<|endoftext|>" };
			for (int i = 0; i < 3; i++)
				if ((id = find_c(v, keep[i])) != TOK_NULL)
					v->tok[id].attr &= (uint16_t)~TA_RSTRIP;
		}
	}

	for (size_t i = 0; i < v->n_special; i++)
		if (v->tok[v->special[i]].attr & (TA_LSTRIP | TA_RSTRIP))
			v->has_strip = 1;

	/* the newline token */
	v->nl = TOK_NULL;
	if (v->kind == TOK_SPM) {
		v->nl = v->byte_tok['\n'] != TOK_NULL ? v->byte_tok['\n'] : v->pad;
	} else if (v->kind == TOK_WPM) {
		v->nl = v->pad;
	} else {
		int32_t *ids;
		size_t n;
		if (tok_encode(v, "\n", 1, 0, &ids, &n, err) < 0)
			goto out;
		v->nl = n ? ids[0] : v->pad;
		free(ids);
	}
	rc = 0;
out:
	if (rc < 0)
		tok_vocab_free(v);
	else
		*out = v;
	return rc;
}

void tok_vocab_free(tok_vocab *v)
{
	if (!v)
		return;
	free(v->model);
	free(v->pre);
	free(v->tok);
	free(v->blob);
	free(v->ht);
	free(v->mg_key);
	free(v->mg_rank);
	free(v->mg_res);
	free(v->special);
	free(v->tr_rank);
	free(v->tr_key);
	free(v->tr_child);
	free(v->eog);
	free(v);
}

/* ---------------------------------------------------------------------
 * GGUF
 * ------------------------------------------------------------------- */

#define GK "tokenizer.ggml."

static void gguf_scalar_str(const gguf_file *g, const char *key, char *dst, size_t cap)
{
	gguf_str s;
	if (gguf_get_str(g, key, &s) == 0)
		copy_str(dst, cap, s.ptr, s.len);
}

static int gguf_strings(const gguf_file *g, const char *key, vsrc *s,
			const uint8_t ***ptr, uint32_t **len, size_t *n,
			slm_err *err)
{
	const gguf_kv *kv = gguf_find(g, key);
	*n = 0;
	if (!kv)
		return 0;
	if (kv->type != GGUF_T_ARRAY || kv->arr_type != GGUF_T_STRING)
		return slm_seterr(err, EX_DATAERR, "%s: %s is not an array of strings",
				  s->where, key);
	*ptr = slm_xmalloc((kv->arr_n + 1) * sizeof **ptr);
	*len = slm_xmalloc((kv->arr_n + 1) * sizeof **len);
	for (uint64_t i = 0; i < kv->arr_n; i++) {
		gguf_str e;
		if (gguf_arr_str(kv, i, &e) < 0 || e.len > UINT32_MAX)
			return slm_seterr(err, EX_DATAERR, "%s: %s[%llu] is unreadable",
					  s->where, key, (unsigned long long)i);
		(*ptr)[i] = (const uint8_t *)e.ptr;
		(*len)[i] = (uint32_t)e.len;
	}
	*n = kv->arr_n;
	return 0;
}

int tok_vocab_from_gguf(tok_vocab **v, const gguf_file *g, slm_err *err)
{
	return vocab_from_gguf_pre(v, g, NULL, err);
}

int vocab_from_gguf_pre(tok_vocab **v, const gguf_file *g, const char *pre,
			slm_err *err)
{
	vsrc s;
	*v = NULL;
	vsrc_init(&s, gguf_name(g));
	gguf_scalar_str(g, GK "model", s.model, sizeof s.model);
	gguf_scalar_str(g, GK "pre", s.pre, sizeof s.pre);
	if (pre)
		copy_str(s.pre, sizeof s.pre, pre, strlen(pre));
	gguf_scalar_str(g, "general.name", s.name, sizeof s.name);
	for (int i = 0; i < N_IDS; i++) {
		char key[64];
		int64_t x;
		snprintf(key, sizeof key, GK "%s", id_keys[i]);
		if (gguf_get_i64(g, key, &x) == 0)
			s.ids[i] = x;
	}
	for (int i = 0; i < N_BOOLS; i++) {
		char key[64];
		int b;
		snprintf(key, sizeof key, GK "%s", bool_keys[i]);
		if (gguf_get_bool(g, key, &b) == 0)
			s.bools[i] = b;
	}
	int rc = -1;
	if (gguf_strings(g, GK "tokens", &s, &s.tok, &s.tok_len, &s.n, err) < 0 ||
	    gguf_strings(g, GK "merges", &s, &s.merge, &s.merge_len, &s.nmerges, err) < 0)
		goto out;
	if (s.n == 0) {
		slm_seterr(err, EX_DATAERR, "%s: no " GK "tokens", s.where);
		goto out;
	}
	const gguf_kv *kv = gguf_find(g, GK "scores");
	if (kv) {
		if (kv->type != GGUF_T_ARRAY || kv->arr_n < s.n) {
			slm_seterr(err, EX_DATAERR, "%s: " GK "scores has fewer entries than tokens", s.where);
			goto out;
		}
		s.scores = slm_xmalloc(s.n * sizeof *s.scores);
		for (size_t i = 0; i < s.n; i++) {
			double d;
			if (gguf_arr_f64(kv, i, &d) < 0) {
				slm_seterr(err, EX_DATAERR, "%s: " GK "scores is not numeric", s.where);
				goto out;
			}
			s.scores[i] = (float)d;
		}
	}
	kv = gguf_find(g, GK "token_type");
	if (kv) {
		if (kv->type != GGUF_T_ARRAY || kv->arr_n < s.n) {
			slm_seterr(err, EX_DATAERR, "%s: " GK "token_type has fewer entries than tokens", s.where);
			goto out;
		}
		s.types = slm_xmalloc(s.n * sizeof *s.types);
		for (size_t i = 0; i < s.n; i++) {
			int64_t t;
			if (gguf_arr_i64(kv, i, &t) < 0) {
				slm_seterr(err, EX_DATAERR, "%s: " GK "token_type is not integer", s.where);
				goto out;
			}
			s.types[i] = (int32_t)t;
		}
	}
	rc = build(v, &s, err);
out:
	vsrc_free(&s);
	return rc;
}

/* ---------------------------------------------------------------------
 * Bundles
 * ------------------------------------------------------------------- */

static int mp_strings(const msgpack_object *a, vsrc *s, const char *name,
		      const uint8_t ***ptr, uint32_t **len, size_t *n, slm_err *err)
{
	*ptr = slm_xmalloc((a->via.array.size + 1) * sizeof **ptr);
	*len = slm_xmalloc((a->via.array.size + 1) * sizeof **len);
	for (uint32_t i = 0; i < a->via.array.size; i++) {
		const msgpack_object *e = &a->via.array.ptr[i];
		if (e->type == MSGPACK_OBJECT_STR) {
			(*ptr)[i] = (const uint8_t *)e->via.str.ptr;
			(*len)[i] = e->via.str.size;
		} else if (e->type == MSGPACK_OBJECT_BIN) {
			(*ptr)[i] = (const uint8_t *)e->via.bin.ptr;
			(*len)[i] = e->via.bin.size;
		} else {
			return slm_seterr(err, EX_DATAERR, "%s: %s[%u] is not a string",
					  s->where, name, i);
		}
	}
	*n = a->via.array.size;
	return 0;
}

static int mp_number(const msgpack_object *e, double *d)
{
	switch (e->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		*d = e->via.f64;
		return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		*d = (double)e->via.u64;
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*d = (double)e->via.i64;
		return 0;
	default:
		return -1;
	}
}

int tok_vocab_from_bundle(tok_vocab **v, const slm_bundle *b, slm_err *err)
{
	*v = NULL;
	char where[512];
	snprintf(where, sizeof where, "%s", bundle_path(b));
	json_t *man = bundle_manifest(b);
	json_t *tj = json_object_get(man, "tokenizer");
	if (!json_is_object(tj))
		return slm_seterr(err, EX_DATAERR, "%s: the bundle has no tokenizer", where);
	const char *mname = json_string_value(json_object_get(tj, "member"));
	if (!mname)
		mname = SLM_VOCAB_MEMBER;
	const slm_member *mem = bundle_find_member(b, mname);
	if (!mem)
		return slm_seterr(err, EX_DATAERR, "%s: no member '%s' (the vocabulary)",
				  where, mname);

	vsrc s;
	vsrc_init(&s, where);
	const char *str;
	if ((str = json_string_value(json_object_get(tj, "model"))))
		copy_str(s.model, sizeof s.model, str, strlen(str));
	if ((str = json_string_value(json_object_get(tj, "pre"))))
		copy_str(s.pre, sizeof s.pre, str, strlen(str));
	json_t *gen = json_object_get(json_object_get(man, "provenance"), "general");
	if ((str = json_string_value(json_object_get(gen, "name"))))
		copy_str(s.name, sizeof s.name, str, strlen(str));
	for (int i = 0; i < N_IDS; i++) {
		json_t *x = json_object_get(tj, id_keys[i]);
		if (json_is_integer(x))
			s.ids[i] = json_integer_value(x);
	}
	for (int i = 0; i < N_BOOLS; i++) {
		json_t *x = json_object_get(tj, bool_keys[i]);
		if (json_is_boolean(x))
			s.bools[i] = json_is_true(x);
	}

	int rc = -1;
	msgpack_unpacked up;
	const msgpack_object *arr[CV_VOCAB_NKEYS];
	if (cv_vocab_arrays(b, mem, &up, arr, err) < 0)
		goto out;
	if (!arr[CV_VOCAB_TOKENS]) {
		slm_seterr(err, EX_DATAERR, "%s: member '%s': no tokens", where, mname);
		goto out;
	}
	if (mp_strings(arr[CV_VOCAB_TOKENS], &s, "tokens", &s.tok, &s.tok_len, &s.n, err) < 0 ||
	    (arr[CV_VOCAB_MERGES] && mp_strings(arr[CV_VOCAB_MERGES], &s, "merges", &s.merge,
						&s.merge_len, &s.nmerges, err) < 0))
		goto out;
	for (int j = CV_VOCAB_SCORES; j <= CV_VOCAB_TYPES; j++) {
		if (!arr[j])
			continue;
		if (arr[j]->via.array.size < s.n) {
			slm_seterr(err, EX_DATAERR, "%s: member '%s': '%s' has fewer entries than tokens",
				   where, mname, cv_vocab_keys[j]);
			goto out;
		}
		if (j == CV_VOCAB_SCORES)
			s.scores = slm_xmalloc(s.n * sizeof *s.scores);
		else
			s.types = slm_xmalloc(s.n * sizeof *s.types);
		for (size_t i = 0; i < s.n; i++) {
			double d;
			if (mp_number(&arr[j]->via.array.ptr[i], &d) < 0) {
				slm_seterr(err, EX_DATAERR, "%s: member '%s': %s[%zu] is not a number",
					   where, mname, cv_vocab_keys[j], i);
				goto out;
			}
			if (j == CV_VOCAB_SCORES)
				s.scores[i] = (float)d;
			else
				s.types[i] = (int32_t)d;
		}
	}
	rc = build(v, &s, err);
out:
	msgpack_unpacked_destroy(&up);
	vsrc_free(&s);
	return rc;
}
