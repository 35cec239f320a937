/*
 * dtype.c - the table of tensor element types and their block layouts,
 * with the ids GGUF uses for them.
 */
#include "dtype.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

static const slm_dtype dtypes[] = {
	{ "f32", 0, 1, 4 },        { "f16", 1, 1, 2 },
	{ "q4_0", 2, 32, 18 },     { "q4_1", 3, 32, 20 },
	{ "q5_0", 6, 32, 22 },     { "q5_1", 7, 32, 24 },
	{ "q8_0", 8, 32, 34 },     { "q8_1", 9, 32, 36 },
	{ "q2_k", 10, 256, 84 },   { "q3_k", 11, 256, 110 },
	{ "q4_k", 12, 256, 144 },  { "q5_k", 13, 256, 176 },
	{ "q6_k", 14, 256, 210 },  { "q8_k", 15, 256, 292 },
	{ "iq2_xxs", 16, 256, 66 }, { "iq2_xs", 17, 256, 74 },
	{ "iq3_xxs", 18, 256, 98 }, { "iq1_s", 19, 256, 50 },
	{ "iq4_nl", 20, 32, 18 },  { "iq3_s", 21, 256, 110 },
	{ "iq2_s", 22, 256, 82 },  { "iq4_xs", 23, 256, 136 },
	{ "i8", 24, 1, 1 },        { "i16", 25, 1, 2 },
	{ "i32", 26, 1, 4 },       { "i64", 27, 1, 8 },
	{ "f64", 28, 1, 8 },       { "iq1_m", 29, 256, 56 },
	{ "bf16", 30, 1, 2 },      { "tq1_0", 34, 256, 54 },
	{ "tq2_0", 35, 256, 66 },  { "mxfp4", 39, 32, 17 },
	{ "nvfp4", 40, 64, 36 },   { "q1_0", 41, 128, 18 },
};

#define NDTYPES (sizeof dtypes / sizeof dtypes[0])

const slm_dtype *dtype_by_name(const char *name)
{
	for (size_t i = 0; i < NDTYPES; i++)
		if (!strcasecmp(dtypes[i].name, name))
			return &dtypes[i];
	return NULL;
}

const slm_dtype *dtype_by_ggml(uint32_t id)
{
	for (size_t i = 0; i < NDTYPES; i++)
		if ((uint32_t)dtypes[i].ggml_id == id)
			return &dtypes[i];
	return NULL;
}

int dtype_nbytes(const slm_dtype *t, uint64_t ne0, uint64_t nelems,
		 uint64_t *nbytes)
{
	if (ne0 % t->block_elems != 0 || nelems % t->block_elems != 0)
		return -1;
	return __builtin_mul_overflow(nelems / t->block_elems,
				      (uint64_t)t->block_bytes, nbytes)
		       ? -1
		       : 0;
}

int dtype_tileable(const slm_dtype *t)
{
	switch (t ? t->ggml_id : -1) {
	case 2: case 3: case 6: case 7: case 8: case 12: case 13: case 14:
		return 1;
	default:
		return 0;
	}
}

/* offset in a block of the 2-byte scale stored apart, or -1 */
static int half_off(const slm_dtype *t)
{
	if (t->block_bytes % 4 != 2)
		return -1;
	return t->ggml_id == 14 ? 208 : 0;
}

/* Row lane's block of a column group (16 bb bytes) from or to its plain
 * block: to_plain 0: plain p into group g; 1: group g into plain p. */
static void move_block(const slm_dtype *t, const uint8_t *src, uint8_t *dst, int lane,
		       int to_plain)
{
	const int bb = (int)t->block_bytes, ho = half_off(t);
	size_t go = 0, po = 0; /* word area offsets in the group and the block */
	if (ho >= 0) {
		if (to_plain)
			memcpy(dst + ho, src + 2 * lane, 2);
		else
			memcpy(dst + 2 * lane, src + ho, 2);
		go = 2 * DTYPE_TILE;
		po = ho == 0 ? 2 : 0;
	}
	for (int k = 0; k < bb / 4; k++) {
		size_t gw = go + 4 * ((size_t)k * DTYPE_TILE + (size_t)lane), pw = po + 4 * (size_t)k;
		if (to_plain)
			memcpy(dst + pw, src + gw, 4);
		else
			memcpy(dst + gw, src + pw, 4);
	}
}

void dtype_tile(const slm_dtype *t, int64_t n, int64_t nrows, const void *src,
		void *dst)
{
	const size_t bb = t->block_bytes, nb = (size_t)(n / t->block_elems), rb = nb * bb;
	const int64_t te = nrows / DTYPE_TILE * DTYPE_TILE;
	const uint8_t *s = src;
	uint8_t *d = dst;
	for (int64_t r = 0; r < te; r++) {
		uint8_t *tile = d + (size_t)(r / DTYPE_TILE) * DTYPE_TILE * rb;
		for (size_t i = 0; i < nb; i++)
			move_block(t, s + (size_t)r * rb + i * bb, tile + i * DTYPE_TILE * bb,
				   (int)(r % DTYPE_TILE), 0);
	}
	memcpy(d + (size_t)te * rb, s + (size_t)te * rb, (size_t)(nrows - te) * rb);
}

void dtype_untile_rows(const slm_dtype *t, int64_t n, int64_t nrows, const void *W,
		       int64_t r0, int64_t r1, void *dst)
{
	const size_t bb = t->block_bytes, nb = (size_t)(n / t->block_elems), rb = nb * bb;
	const int64_t te = nrows / DTYPE_TILE * DTYPE_TILE;
	const uint8_t *w = W;
	uint8_t *d = dst;
	for (int64_t r = r0; r < r1; r++, d += rb) {
		if (r >= te) {
			memcpy(d, w + (size_t)r * rb, rb);
			continue;
		}
		const uint8_t *tile = w + (size_t)(r / DTYPE_TILE) * DTYPE_TILE * rb;
		for (size_t i = 0; i < nb; i++)
			move_block(t, tile + i * DTYPE_TILE * bb, d + i * bb, (int)(r % DTYPE_TILE), 1);
	}
}
