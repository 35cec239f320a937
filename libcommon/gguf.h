/*
 * gguf.h - read-only GGUF (versions 2 and 3, little-endian) reader.
 *
 * The whole file is mapped read-only; every string, array and tensor
 * returned points into that mapping (or into the caller's buffer for
 * gguf_open_mem) and stays valid until gguf_close(). gguf_open() checks
 * the whole structure up front against hostile input: every count and
 * length is checked against the bytes left before anything is allocated,
 * every tensor's shape, type, alignment and extent is checked, and
 * duplicate keys or tensor names are rejected. After a successful open no
 * accessor can read outside the file.
 *
 * Errors follow util.h: -1 and an slm_err with EX_DATAERR and one line
 * "FILE: offset N: problem" for bad data, EX_NOINPUT when the file cannot
 * be opened, EX_OSERR when mapping or allocation fails.
 */
#ifndef SLM_GGUF_H
#define SLM_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Metadata value types, as numbered in the file. */
typedef enum {
	GGUF_T_UINT8 = 0,
	GGUF_T_INT8,
	GGUF_T_UINT16,
	GGUF_T_INT16,
	GGUF_T_UINT32,
	GGUF_T_INT32,
	GGUF_T_FLOAT32,
	GGUF_T_BOOL,
	GGUF_T_STRING,
	GGUF_T_ARRAY,
	GGUF_T_UINT64,
	GGUF_T_INT64,
	GGUF_T_FLOAT64,
	GGUF_T_COUNT /* not a type: number of types */
} gguf_type;

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
/* Arrays of arrays may nest this deep (an array of scalars is depth 1). */
#define GGUF_MAX_ARRAY_DEPTH 8

/* A string in the mapping: NOT NUL-terminated, may contain any bytes. */
typedef struct {
	const char *ptr;
	uint64_t len;
} gguf_str;

typedef struct gguf_kv {
	gguf_str key;
	gguf_type type;
	gguf_type arr_type;   /* arrays: element type */
	uint64_t arr_n;       /* arrays: element count */
	const uint8_t *raw;   /* value bytes in the mapping; for arrays, the
	                         first element (after element type and count) */
	uint64_t raw_size;    /* number of bytes at raw */
	union {
		uint64_t u;   /* GGUF_T_UINT8/16/32/64 */
		int64_t i;    /* GGUF_T_INT8/16/32/64 */
		double f;     /* GGUF_T_FLOAT32/64 */
		int b;        /* GGUF_T_BOOL (0 or 1) */
		gguf_str s;   /* GGUF_T_STRING */
	} v;
	/* Internal: for arrays of strings or arrays opened by gguf_open, the
	 * offset of each element from raw (makes element access O(1)); NULL
	 * otherwise. */
	const uint64_t *elem_off;
} gguf_kv;

typedef struct gguf_tensor {
	gguf_str name;
	uint32_t n_dims;          /* 1..4 */
	uint64_t ne[GGUF_MAX_DIMS]; /* elements per dimension, ne[0] fastest;
	                             unused dimensions are 1 */
	uint32_t ggml_type;
	uint64_t offset;          /* relative to the data section */
	uint64_t size;            /* bytes */
	const uint8_t *data;      /* size bytes in the mapping */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Map and check path. "-" is not supported (spool stdin to a file or use
 * gguf_open_mem). */
int gguf_open(gguf_file **out, const char *path, slm_err *err);
/* Check and index a buffer the caller keeps alive until gguf_close();
 * name (may be NULL) is used in error messages. */
int gguf_open_mem(gguf_file **out, const void *data, size_t n,
		  const char *name, slm_err *err);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint64_t gguf_alignment(const gguf_file *f);
const char *gguf_name(const gguf_file *f);
/* The whole file, and where the aligned tensor data section starts. */
const uint8_t *gguf_bytes(const gguf_file *f, size_t *size);
uint64_t gguf_data_offset(const gguf_file *f);

size_t gguf_n_kv(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, size_t i); /* NULL if out of range */
const gguf_kv *gguf_find(const gguf_file *f, const char *key); /* NULL if absent */

/* Typed getters: 0 if the key exists and its value converts exactly,
 * -1 otherwise (out untouched). */
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out); /* unsigned, or signed >= 0 */
int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);  /* signed, or unsigned <= INT64_MAX */
int gguf_get_f64(const gguf_file *f, const char *key, double *out);   /* float32/64 or any integer */
int gguf_get_bool(const gguf_file *f, const char *key, int *out);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);

/* Element i of an array value: 0 on success, -1 if kv is not an array of
 * a convertible type or i >= arr_n. O(1) for kvs from gguf_open; O(i) for
 * the string elements of a sub-array from gguf_arr_sub. */
int gguf_arr_str(const gguf_kv *kv, uint64_t i, gguf_str *out);
int gguf_arr_f64(const gguf_kv *kv, uint64_t i, double *out);  /* float or integer elements */
int gguf_arr_i64(const gguf_kv *kv, uint64_t i, int64_t *out); /* integer or bool elements */
int gguf_arr_u64(const gguf_kv *kv, uint64_t i, uint64_t *out); /* integer (>= 0) or bool elements */
/* Element i of an array of arrays, as a kv (same key, type GGUF_T_ARRAY)
 * that the gguf_arr_* functions accept. */
int gguf_arr_sub(const gguf_kv *kv, uint64_t i, gguf_kv *out);

size_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* 1 if s equals the NUL-terminated c, else 0. */
int gguf_str_eq(gguf_str s, const char *c);
/* "uint8", ..., "float64"; NULL if unknown. */
const char *gguf_value_type_name(uint32_t type);

/* ggml tensor types, from dtype.h's table: "f32", "f16", "q4_0", ...,
 * "q2_k".."q8_k", "iq2_xxs", ..., "bf16", "tq1_0", "tq2_0", "mxfp4",
 * "nvfp4", "q1_0"; NULL if unknown. */
const char *gguf_type_name(uint32_t ggml_type);
/* Elements per block and bytes per block; -1 if the type is unknown. */
int gguf_type_block(uint32_t ggml_type, uint32_t *block_elems, uint32_t *block_bytes);

#endif
