/*
 * bundle.h - model bundles (slm-bundle(5)): a POSIX tar archive whose first
 * member is a msgpack manifest and whose other members are tensors and
 * attachments, each at a 512-byte boundary so an uncompressed bundle can be
 * mapped and its tensors used in place.
 */
#ifndef SLM_BUNDLE_H
#define SLM_BUNDLE_H

#include <jansson.h>
#include <stdint.h>

#include "dtype.h"
#include "util.h"

#define SLM_BUNDLE_VERSION 2
#define SLM_MANIFEST_MEMBER "manifest.msgpack"
#define SLM_MANIFEST_SUM_MEMBER "manifest.sha256"
#define SLM_MAX_DIMS 4

typedef struct slm_member {
	const char *name;
	uint64_t offset;       /* of the data in the (decompressed) archive */
	uint64_t size;
	const uint8_t *data;
	const char *sha256;    /* from the manifest; NULL for the manifest */
} slm_member;

typedef struct slm_tensor {
	const char *name;
	const slm_dtype *dtype;
	int ndim;
	uint64_t ne[SLM_MAX_DIMS]; /* innermost (contiguous) dimension first */
	uint64_t nelems;
	uint64_t size;             /* bytes */
	const void *data;
	const slm_member *member;
	int tiled;                 /* 1: the tile16 layout (dtype.h), manifest
				    * "layout": "tile16"; 0: plain (GGUF) rows */
} slm_tensor;

typedef struct slm_bundle slm_bundle;

/* Open a bundle ("-": standard input). Uncompressed files are mapped;
 * gzip-compressed bundles are decompressed into memory. The manifest and
 * the archive structure are checked; member contents are not hashed (see
 * bundle_verify). */
int bundle_open(slm_bundle **out, const char *path, slm_err *err);
void bundle_close(slm_bundle *b);

const char *bundle_path(const slm_bundle *b);
int bundle_is_compressed(const slm_bundle *b);
uint64_t bundle_file_size(const slm_bundle *b);
/* The manifest (borrowed). */
json_t *bundle_manifest(const slm_bundle *b);
/* Convenience: manifest string at key, or NULL. */
const char *bundle_str(const slm_bundle *b, const char *key);

size_t bundle_n_members(const slm_bundle *b);
const slm_member *bundle_member_at(const slm_bundle *b, size_t i);
const slm_member *bundle_find_member(const slm_bundle *b, const char *name);
size_t bundle_n_tensors(const slm_bundle *b);
const slm_tensor *bundle_tensor_at(const slm_bundle *b, size_t i);
const slm_tensor *bundle_find_tensor(const slm_bundle *b, const char *name);
uint64_t bundle_n_params(const slm_bundle *b);
/* The dtype holding most of the tensor bytes (what people call the
 * bundle's type), or NULL for a bundle without tensors. */
const slm_dtype *bundle_main_dtype(const slm_bundle *b);

/* Recompute every member's sha256; the first mismatch is an error naming
 * the member (EX_DATAERR). */
int bundle_verify(const slm_bundle *b, slm_err *err);

/* Is name a safe relative member path (no "..", not absolute, no empty or
 * "." components, printable)? */
int bundle_safe_name(const char *name);

/*
 * Writing. Declare the manifest and every member, then open the output and
 * write the members' bytes in declaration order; close commits (temporary
 * file + rename), abort leaves nothing behind.
 */
typedef struct slm_bwriter slm_bwriter;

/* manifest: a map with everything but "tensors" and "members", which the
 * writer fills (a new reference is taken). */
slm_bwriter *bwriter_new(json_t *manifest);
/* Declare a tensor stored in member "tensors/NAME". */
int bwriter_add_tensor(slm_bwriter *w, const char *name, const slm_dtype *dt,
		       int ndim, const uint64_t *ne, slm_err *err);
/* The same, in the tile16 layout if tiled (a 2-D tensor of a
 * dtype_tileable type; else an error). */
int bwriter_add_tensor_l(slm_bwriter *w, const char *name, const slm_dtype *dt,
			 int ndim, const uint64_t *ne, int tiled, slm_err *err);
/* 1 if the writers (slm-convert, slm-quant) store a tensor of this type
 * and shape in the tile16 layout: a 2-D matrix of a dtype_tileable type
 * with at least 16 rows. */
int bundle_tile_wanted(const slm_dtype *dt, int ndim, const uint64_t *ne);
/* Rows [r0, r1) of a 2-D tensor (or of a tensor seen as ne[0]-element
 * rows) as plain bytes into dst, whatever its layout. */
void tensor_rows(const slm_tensor *t, int64_t r0, int64_t r1, void *dst);
/* Declare an attachment member of the given size. */
int bwriter_add_member(slm_bwriter *w, const char *name, uint64_t size,
		       slm_err *err);
/* path "-" or NULL: standard output. gzip: compress the result. On
 * failure the writer is freed (as by bwriter_abort). bwriter_write leaves
 * it to the caller to abort; bwriter_close frees it either way. */
int bwriter_open(slm_bwriter *w, const char *path, int gzip, slm_err *err);
/* Append bytes to the current member (moving on to the next one when
 * the current is full). */
int bwriter_write(slm_bwriter *w, const void *data, size_t n, slm_err *err);
int bwriter_close(slm_bwriter *w, slm_err *err);
void bwriter_abort(slm_bwriter *w);

#endif
