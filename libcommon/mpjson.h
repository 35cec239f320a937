/*
 * mpjson.h - msgpack <-> JSON value trees (jansson json_t), with a
 * bounds-checked scanner that finds where one msgpack object ends before
 * anything is allocated for it.
 */
#ifndef SLM_MPJSON_H
#define SLM_MPJSON_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define MPJ_MAX_DEPTH 24

/*
 * Find the end of the msgpack object at buf[0..n). Returns 1 and sets *len
 * when it is complete, 0 when more bytes are needed, -1 when the bytes can
 * never form a valid object (*errpos: offset of the bad byte, *why: the
 * problem). Any length or count that would make the object longer than
 * limit bytes is an error, so hostile length prefixes never cause waits
 * or allocations.
 */
int mpj_scan(const uint8_t *buf, size_t n, size_t limit, size_t *len,
	     size_t *errpos, const char **why);

/* Decode one complete object (as found by mpj_scan) into a new json_t.
 * NULL and *why on values JSON cannot hold (binary, ext, non-string map
 * keys, invalid UTF-8, integers above INT64_MAX). */
json_t *mpj_decode(const uint8_t *buf, size_t len, const char **why);

/* Append v to pk; objects are written with keys in sorted order so equal
 * trees give equal bytes. Reals are written as float64. */
void mpj_pack(msgpack_packer *pk, const json_t *v);

/* Encode v into a new malloc'd buffer. */
void mpj_encode(const json_t *v, char **out, size_t *outlen);

#endif
