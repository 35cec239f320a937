/*
 * safetensors.h - read-only reader of Hugging Face's safetensors files:
 * an 8-byte little-endian header length, a JSON header mapping tensor
 * names to dtype, shape and [begin, end) byte offsets in the data area
 * that follows, and an optional "__metadata__" map of strings.
 *
 * The file is mapped read-only and checked whole by st_open() against
 * hostile input: the header length against the file, the JSON (no
 * duplicate keys), every dtype, shape (element count overflow-checked)
 * and byte range (inside the data area, sized exactly for the shape, no
 * two ranges overlapping). After a successful open no accessor reads
 * outside the file.
 *
 * Errors follow util.h: -1 and an slm_err with EX_DATAERR and one line
 * "FILE: offset N: problem" (N a byte offset in the file) for bad data,
 * EX_NOINPUT when the file cannot be opened, EX_OSERR when mapping fails.
 */
#ifndef SLM_SAFETENSORS_H
#define SLM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Largest header accepted (the reference implementation's limit). */
#define ST_MAX_HEADER (100u << 20)
/* Most dimensions a tensor may have. */
#define ST_MAX_DIMS 8

typedef struct st_tensor {
	const char *name;
	const char *dtype;      /* as in the file: "F32", "BF16", "I64", ... */
	unsigned elem_bits;     /* bits per element (4 for "F4") */
	int ndim;               /* 0 for a scalar */
	uint64_t shape[ST_MAX_DIMS]; /* outermost first, as in the file */
	uint64_t nelems;
	uint64_t begin, end;    /* data_offsets: relative to the data area */
	const uint8_t *data;    /* end - begin bytes in the mapping */
} st_tensor;

typedef struct st_file st_file;

/* Map and check path. */
int st_open(st_file **out, const char *path, slm_err *err);
/* Check and index a buffer the caller keeps alive until st_close();
 * name (may be NULL) is used in error messages. */
int st_open_mem(st_file **out, const void *data, size_t n, const char *name,
		slm_err *err);
void st_close(st_file *f);

const char *st_name(const st_file *f);
/* Offset of the data area in the file (8 + header length). */
uint64_t st_data_offset(const st_file *f);

/* Tensors in header order. */
size_t st_n_tensors(const st_file *f);
const st_tensor *st_tensor_at(const st_file *f, size_t i); /* NULL if out of range */
const st_tensor *st_find(const st_file *f, const char *name); /* NULL if absent */

/* "__metadata__" entries, in header order. */
size_t st_n_meta(const st_file *f);
int st_meta_at(const st_file *f, size_t i, const char **key, const char **value);
const char *st_meta(const st_file *f, const char *key); /* NULL if absent */

#endif
