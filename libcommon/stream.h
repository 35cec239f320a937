/*
 * stream.h - the token stream (slm-stream(5)): msgpack maps or JSON lines,
 * one record each, read as soon as each record is complete.
 */
#ifndef SLM_STREAM_H
#define SLM_STREAM_H

#include <jansson.h>
#include <stdio.h>

#include "util.h"

#define SLM_STREAM_VERSION 1
/* Largest record a reader accepts (a length prefix beyond it is an error). */
#define SLM_STREAM_MAX_RECORD (64u << 20)

typedef enum {
	SLM_REC_HEADER,
	SLM_REC_SEQ,
	SLM_REC_TOK,
	SLM_REC_END,
	SLM_REC_ERROR,
	SLM_REC_SCORE,
} slm_rec_type;

typedef struct slm_sreader slm_sreader;

/* Read records from fd; name is used in messages ("standard input"). */
slm_sreader *sreader_new(int fd, const char *name);
/* Open path ("-" or NULL: standard input). NULL and err on failure. */
slm_sreader *sreader_open(const char *path, slm_err *err);
/* Next record: 1 with *rec (a new reference, shape checked), 0 at end of
 * input, -1 with err (EX_DATAERR for bad data, EX_IOERR for read errors). */
int sreader_next(slm_sreader *r, json_t **rec, slm_err *err);
/* 1 if the input turned out to be JSON lines (valid after the first record). */
int sreader_is_json(const slm_sreader *r);
void sreader_free(slm_sreader *r);

/* The record's type; -1 if rec is not a known record. */
int stream_rec_type(const json_t *rec);
/* Check a record's shape; 0 if valid, else -1 with *why set. */
int stream_check(const json_t *rec, const char **why);

typedef struct slm_swriter slm_swriter;
/* Writes msgpack, or JSON lines if json; every record is flushed. */
slm_swriter *swriter_new(FILE *fp, int json);
/* -1 with err on write errors. */
int swriter_put(slm_swriter *w, const json_t *rec, slm_err *err);
void swriter_free(slm_swriter *w);

/* Record builders (new references). id is borrowed. */
json_t *stream_header(const char *vocab_digest, const char *bundle);
json_t *stream_seq(const json_t *id, const int32_t *tokens, size_t n);
json_t *stream_tok(const json_t *id, int32_t token);
json_t *stream_end(const json_t *id, const char *reason);
json_t *stream_error(const json_t *id, const char *message);
/* The log-probability of token, the sequence's token at pos. */
json_t *stream_score(const json_t *id, int pos, int32_t token, double logprob);

#endif
