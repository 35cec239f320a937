/*
 * vocab.h - the in-memory vocabulary shared by the tokenizer sources
 * (tok.c, tok_bpe.c, tok_spm.c, tok_wpm.c, tok_pre.c, vocab.c). Internal
 * to libcommon: tools use tok.h.
 */
#ifndef SLM_VOCAB_H
#define SLM_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "tok.h"

/* Token attributes (llama.cpp's llama_token_attr, the bits used here).
 * VIRTUAL marks strings interned for the BPE merge table that are not
 * tokens (a malformed vocabulary's merge results). */
enum {
	TA_NORMAL = 1 << 0,
	TA_UNKNOWN = 1 << 1,
	TA_CONTROL = 1 << 2,
	TA_USER = 1 << 3,
	TA_UNUSED = 1 << 4,
	TA_BYTE = 1 << 5,
	TA_LSTRIP = 1 << 6,
	TA_RSTRIP = 1 << 7,
	TA_VIRTUAL = 1 << 8
};

typedef struct tok_entry {
	uint32_t off, len;   /* text in blob */
	float score;
	uint16_t attr;       /* TA_* */
	uint8_t type;        /* enum tok_type as stored (0: virtual) */
} tok_entry;

/* Pre-tokenizer stages: each splits every piece of the previous stage
 * into the matches of one regex and the gaps between them (llama.cpp's
 * unicode_regex_split). */
enum tok_stage {
	PS_GPT2,         /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
	PS_LLAMA3,       /* (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
	PS_QWEN2,        /* the same with \p{N} instead of \p{N}{1,3} */
	PS_DIGIT,        /* \p{N} */
	PS_DIGITS,       /* \p{N}+ */
	PS_ASCII3,       /* [0-9][0-9][0-9] */
	PS_PUNCT,        /* [\p{P}\$\+<=>\^~\|]+ */
	PS_PUNCT_FALCON, /* [\p{P}\$\+<=>\^~\|`]+ */
	PS_NEWLINE,      /* [\r\n] */
	PS_WS_LETTERS,   /* \s?\p{L}+ */
	PS_WS_PUNCT,     /* \s?\p{P}+ */
	PS_CJK,          /* [一-龥ࠀ-一가-퟿]+ */
	PS_DS_LETTERS,   /* \s?[A-Za-zµÀ-ÖØ-öø-ƺ...]+ (DeepSeek LLM) */
	PS_DS_PUNCT,     /* \s?[!-/:-~！-／：-～‘-‟　-。]+ */
	PS_WS_END,       /* \s+$ */
	PS_BLOOM         /*  ?[^(\s|.,!?…。，、।۔،)]+ */
};

#define TOK_MAX_STAGES 8

struct tok_vocab {
	enum tok_kind kind;
	char *model, *pre;
	int32_t n;              /* tokens */
	int32_t n_all;          /* tokens and virtual strings */
	tok_entry *tok;
	char *blob;
	size_t blob_len;
	uint64_t *ht;           /* text -> (hash >> 32) << 32 | (id + 1),
				   open addressing; 0: empty */
	size_t ht_mask;
	/* BPE merges: (left id, right id) -> rank, result id */
	uint64_t *mg_key;       /* UINT64_MAX: empty */
	int32_t *mg_rank, *mg_res;
	size_t mg_mask, n_merges;
	/* Byte-level BPE: the character standing for byte b (UTF-8, 1 or 2
	 * bytes) and, for SPM/BPE, the token of byte b (TOK_NULL if none). */
	char byte_chr[256][2];
	uint8_t byte_chr_len[256];
	int16_t chr_byte[324];  /* code point -> byte, -1: none */
	int32_t byte_tok[256];
	uint8_t stage[TOK_MAX_STAGES];
	int n_stages;
	int ignore_merges, add_bos, add_eos, add_sep, add_space_prefix;
	int clean_spaces, lowercase, strip_accents;
	int32_t bos, eos, eot, eom, unk, sep, pad, mask, nl;
	int32_t *special;       /* control, user-defined and unknown tokens,
				   longest first (ties: lower id first) */
	size_t n_special;
	/* trie of the special tokens' texts; node 0 is the root */
	int32_t *tr_rank;       /* node -> index in special of the token
				   ending there, or -1 */
	size_t tr_n;
	uint64_t *tr_key;       /* (node << 8 | byte) + 1 -> tr_child; 0: empty */
	int32_t *tr_child;
	size_t tr_mask;
	uint8_t tr_first[32];   /* bitmap of the first bytes */
	int has_strip;          /* some special token has LSTRIP or RSTRIP */
	int32_t *eog;           /* sorted */
	size_t n_eog;
	uint32_t max_token_len;
};

/* vocab.c */
/* tok_vocab_from_gguf with tokenizer.ggml.pre replaced by pre (tests). */
int vocab_from_gguf_pre(tok_vocab **v, const gguf_file *g, const char *pre,
			slm_err *err);
int32_t vocab_lookup(const tok_vocab *v, const char *s, size_t len); /* any interned string */
/* Rank of merging (l, r) and the result's id in *res; -1 if no merge. */
int32_t vocab_merge(const tok_vocab *v, int32_t l, int32_t r, int32_t *res);
/* Child of a trie node on byte c; -1 if none. */
int32_t vocab_trie_child(const tok_vocab *v, int32_t node, uint8_t c);
static inline const char *vocab_text(const tok_vocab *v, int32_t id)
{
	return v->blob + v->tok[id].off;
}

/* tok_pre.c: Unicode. Flags of a code point, llama.cpp's categories: */
enum {
	CF_L = 1 << 0,     /* letter */
	CF_N = 1 << 1,     /* number */
	CF_P = 1 << 2,     /* punctuation */
	CF_S = 1 << 3,     /* symbol */
	CF_M = 1 << 4,     /* mark */
	CF_Z = 1 << 5,     /* separator */
	CF_C = 1 << 6,     /* control, format, surrogate, private use */
	CF_UNDEF = 1 << 7, /* unassigned */
	CF_WS = 1 << 8     /* White_Space */
};
unsigned tok_cp_flags(uint32_t cp);
/* Decode the code point at s[0..n), n > 0: *len bytes (1..4). Invalid or
 * truncated sequences give U+FFFD and *len = 1. */
uint32_t tok_utf8_next(const uint8_t *s, size_t n, size_t *len);
/* Length of the UTF-8 sequence a lead byte announces (llama.cpp's
 * unicode_len_utf8: 1 for continuation and invalid bytes). */
static inline size_t tok_utf8_len(uint8_t c)
{
	static const uint8_t lk[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
	return lk[c >> 4];
}
size_t tok_utf8_put(uint32_t cp, char out[4]);

/* Growable arrays used while encoding. */
typedef struct tok_ids {
	int32_t *p;
	size_t n, cap;
} tok_ids;
void tok_ids_push(tok_ids *a, int32_t id);

typedef struct tok_pieces {
	uint32_t *end;          /* end offsets (bytes) of the pieces */
	size_t n, cap;
	/* scratch */
	uint32_t *cp, *off, *b1, *b2;
	uint16_t *fl;
	size_t scap;
	/* BPE scratch (tok_bpe.c) */
	void *sym, *heap;
	size_t sym_cap, heap_cap;
	char *enc;
	size_t enc_cap;
} tok_pieces;
void tok_pieces_free(tok_pieces *p);
/* Split text[0..len) with the vocabulary's stages; p->end receives the
 * byte offset where each piece ends. */
void tok_pretokenize(const tok_vocab *v, const char *text, size_t len,
		     tok_pieces *p);

/* The tokenizers proper: append the ids of one fragment of raw text (no
 * special tokens inside) to out. */
void tok_bpe_encode(const tok_vocab *v, const char *text, size_t len,
		    tok_pieces *pcs, tok_ids *out);
void tok_spm_encode(const tok_vocab *v, const char *text, size_t len,
		    tok_ids *out);
void tok_wpm_encode(const tok_vocab *v, const char *text, size_t len,
		    tok_ids *out);

#endif
