/*
 * tok.h - tokenizers: text -> token ids -> text, exactly as the models
 * were trained (llama.cpp's llama-vocab.cpp and Hugging Face tokenizers
 * are the references). Three model families, named as in GGUF's
 * tokenizer.ggml.model:
 *
 *   "llama"  SentencePiece BPE with byte fallback (<0xXX> tokens) and the
 *            dummy-prefix rule (Llama 2, Mistral, Phi-3, Gemma)
 *   "gpt2"   byte-level BPE behind a pre-tokenizer named by
 *            tokenizer.ggml.pre (gpt-2, llama3, qwen2, smollm, starcoder,
 *            deepseek-coder, deepseek-llm, falcon, mpt, refact, ...)
 *   "bert"   WordPiece (BERT, BGE)
 *
 * Pre-tokenizers: default (no tokenizer.ggml.pre), gpt-2 and its aliases
 * (mpt, olmo, phi-2, ...), starcoder / smollm / refact / command-r,
 * llama3 (llama-bpe, dbrx, smaug-bpe, glm4, ...), qwen2 (stablelm2, ...),
 * falcon, deepseek-llm, deepseek-coder, bloom / poro-chat / viking. Other
 * names (tekken, gpt-4o, kimi-k2, ...) and models (t5, rwkv) are refused
 * with an error naming them. Unicode categories come from utf8proc.
 *
 * A tok_vocab is immutable once loaded: any number of threads may encode
 * and decode with one vocabulary at the same time.
 *
 * Input text may hold any bytes. Byte-level BPE keeps every byte (invalid
 * UTF-8 is classified like U+FFFD by the pre-tokenizer but its bytes are
 * encoded as they are; llama.cpp would turn them into U+FFFD), so for
 * "gpt2" vocabularies decode(encode(x)) == x, except for bytes the
 * vocabulary has no token for: some vocabularies trained on UTF-8 text
 * lack the bytes that never occur in it (0xC0, 0xC1, 0xF5-0xFF), and
 * those are dropped, as llama.cpp drops them. SentencePiece falls back to
 * <0xXX> byte tokens, so it is lossless except for the dummy-prefix space
 * (see TOK_LSTRIP) and for vocabularies without byte tokens.
 */
#ifndef SLM_TOK_H
#define SLM_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "bundle.h"
#include "gguf.h"
#include "util.h"

typedef struct tok_vocab tok_vocab;

/* Tokenizer families. */
enum tok_kind { TOK_SPM = 1, TOK_BPE = 2, TOK_WPM = 3 };

/* GGUF token types (tokenizer.ggml.token_type). */
enum tok_type {
	TOK_T_NORMAL = 1,
	TOK_T_UNKNOWN = 2,
	TOK_T_CONTROL = 3,
	TOK_T_USER_DEFINED = 4,
	TOK_T_UNUSED = 5,
	TOK_T_BYTE = 6
};

#define TOK_NULL ((int32_t)-1)

/*
 * Loading. Both read the same fields: tokenizer.ggml.{model, pre, tokens,
 * scores, token_type, merges, bos_token_id, eos_token_id, eot_token_id,
 * eom_token_id, unknown_token_id, seperator_token_id, padding_token_id,
 * mask_token_id, add_bos_token, add_eos_token, add_sep_token,
 * add_space_prefix, ...} and general.name (llama.cpp keys a few
 * per-model token attributes on it). Errors: EX_DATAERR for a missing or
 * malformed field and for a model or pre-tokenizer this code does not
 * know (the message names it).
 */
/* From a bundle: the manifest's "tokenizer" map and the member
 * SLM_VOCAB_MEMBER (see convert.h). */
int tok_vocab_from_bundle(tok_vocab **v, const slm_bundle *b, slm_err *err);
/* From a GGUF file's metadata (tensors are not touched). The vocabulary
 * copies what it needs: g may be closed afterwards. */
int tok_vocab_from_gguf(tok_vocab **v, const gguf_file *g, slm_err *err);
void tok_vocab_free(tok_vocab *v);

/*
 * Encoding. flags:
 *   TOK_ADD_SPECIAL    add BOS / EOS / SEP as the vocabulary says
 *                      (tok_add_bos etc. tell what that will be)
 *   TOK_PARSE_SPECIAL  control tokens written in the text ("<|im_end|>",
 *                      "<s>") become those tokens; without it they are
 *                      tokenized as plain text. User-defined tokens are
 *                      always matched in the text, as in llama.cpp and
 *                      Hugging Face.
 * *ids is malloc'd (free it), *n its length; on error *ids is NULL.
 */
#define TOK_ADD_SPECIAL 0x1u
#define TOK_PARSE_SPECIAL 0x2u
int tok_encode(const tok_vocab *v, const char *text, size_t len, unsigned flags,
	       int32_t **ids, size_t *n, slm_err *err);

/*
 * Decoding one token: its bytes, which may be a partial UTF-8 sequence
 * (byte tokens, byte-level BPE pieces): a streaming caller buffers them,
 * see tok_utf8_ready. Writes at most cap bytes to buf and returns the
 * piece's full length (call again with a bigger buffer when it is larger
 * than cap). Unknown ids give 0. flags:
 *   TOK_SHOW_SPECIAL  control and unknown tokens render as their text
 *                     (otherwise as nothing)
 *   TOK_LSTRIP        drop one leading space: pass it for the first token
 *                     of a sequence (after BOS, if it starts with one) when
 *                     tok_add_space_prefix(v) says the encoder added a
 *                     dummy-prefix space (SentencePiece)
 */
#define TOK_SHOW_SPECIAL 0x100u
#define TOK_LSTRIP 0x200u
size_t tok_piece(const tok_vocab *v, int32_t id, unsigned flags, char *buf,
		 size_t cap);

/*
 * Decoding a whole sequence, as llama.cpp's llama_detokenize: the pieces
 * concatenated; when the vocabulary adds a space prefix, TOK_LSTRIP is
 * applied by itself to the first token after an optional leading BOS
 * (llama.cpp keeps that space when it drops the BOS; Hugging Face and
 * this function do not). Extra flags:
 *   TOK_SKIP_SPECIAL   drop a leading BOS / trailing EOS that the
 *                      vocabulary adds by itself
 *   TOK_CLEAN_SPACES   Hugging Face's clean_up_tokenization_spaces
 *                      (" ." -> ".", " 's" -> "'s", ...) when the
 *                      vocabulary asks for it (tok_clean_spaces); lossy
 * *out is malloc'd and NUL-terminated (the text may hold NULs: use *len).
 */
#define TOK_SKIP_SPECIAL 0x400u
#define TOK_CLEAN_SPACES 0x800u
int tok_decode(const tok_vocab *v, const int32_t *ids, size_t n, unsigned flags,
	       char **out, size_t *len, slm_err *err);

/* Length of the longest prefix of buf[0..len) that does not end inside a
 * UTF-8 sequence that more bytes could still complete: print that much,
 * keep the rest for the next piece. Invalid bytes count as complete. */
size_t tok_utf8_ready(const char *buf, size_t len);

/* Facts about the vocabulary. */
int32_t tok_n_vocab(const tok_vocab *v);
enum tok_kind tok_kind(const tok_vocab *v);
const char *tok_model_name(const tok_vocab *v); /* "llama", "gpt2", "bert" */
const char *tok_pre_name(const tok_vocab *v);   /* as given; "default" if none */
int32_t tok_bos(const tok_vocab *v);            /* TOK_NULL if none */
int32_t tok_eos(const tok_vocab *v);
int32_t tok_eot(const tok_vocab *v);            /* given or found by text */
int32_t tok_unk(const tok_vocab *v);
int32_t tok_sep(const tok_vocab *v);
int32_t tok_pad(const tok_vocab *v);
int32_t tok_nl(const tok_vocab *v);             /* the token of "\n" */
int tok_add_bos(const tok_vocab *v);            /* what TOK_ADD_SPECIAL adds */
int tok_add_eos(const tok_vocab *v);
int tok_add_sep(const tok_vocab *v);
int tok_add_space_prefix(const tok_vocab *v);
int tok_clean_spaces(const tok_vocab *v);
/* End of generation: EOS, EOT, EOM and the end tokens llama.cpp
 * recognises by text ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", ...). */
int tok_is_eog(const tok_vocab *v, int32_t id);
/* Control (or unknown) tokens: rendered only with TOK_SHOW_SPECIAL. */
int tok_is_control(const tok_vocab *v, int32_t id);
enum tok_type tok_type_of(const tok_vocab *v, int32_t id); /* 0 if out of range */
float tok_score(const tok_vocab *v, int32_t id);
/* The token's stored text (not decoded: SentencePiece's "▁", byte-level
 * BPE's "Ġ"...); NULL if out of range. Not NUL-terminated. */
const char *tok_text(const tok_vocab *v, int32_t id, size_t *len);
/* The id of the token whose stored text is exactly s; TOK_NULL if none. */
int32_t tok_find(const tok_vocab *v, const char *s, size_t len);

#endif
