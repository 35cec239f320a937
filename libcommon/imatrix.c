/*
 * imatrix.c - importance matrices in llama.cpp's file forms: the GGUF form
 * (NAME.in_sum2 and NAME.counts tensors, imatrix.* keys) read with the
 * GGUF reader and written here, and the legacy imatrix.dat form.
 */
#include "imatrix.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "kern/kern_blocks.h"

typedef struct im_entry {
	char *name;
	float *v;     /* n importances */
	float *sum2;  /* n sums of squares */
	float *cnt;   /* nmat input-row counts */
	size_t n, nmat;
} im_entry;

struct slm_imatrix {
	im_entry *e;
	size_t n, cap;
};

static void entry_clear(im_entry *e)
{
	free(e->name);
	free(e->v);
	free(e->sum2);
	free(e->cnt);
}

void imatrix_free(slm_imatrix *im)
{
	if (!im)
		return;
	for (size_t i = 0; i < im->n; i++)
		entry_clear(&im->e[i]);
	free(im->e);
	free(im);
}

size_t imatrix_count(const slm_imatrix *im)
{
	return im ? im->n : 0;
}

static im_entry *lookup(const slm_imatrix *im, const char *name, size_t len)
{
	for (size_t i = 0; im && i < im->n; i++)
		if (strlen(im->e[i].name) == len && !memcmp(im->e[i].name, name, len))
			return &im->e[i];
	return NULL;
}

const float *imatrix_find(const slm_imatrix *im, const char *name, size_t *n)
{
	const im_entry *e = lookup(im, name, strlen(name));
	if (!e)
		return NULL;
	*n = e->n;
	return e->v;
}

slm_imatrix *imatrix_new(void)
{
	return slm_xcalloc(1, sizeof(slm_imatrix));
}

/* A new or emptied entry of n values and nmat counts (n a multiple of
 * nmat), sums and counts left for the caller to fill. */
static im_entry *entry_for(slm_imatrix *im, const char *name, size_t len, size_t n,
			   size_t nmat)
{
	im_entry *e = lookup(im, name, len);
	if (e) {
		entry_clear(e);
	} else {
		if (im->n == im->cap) {
			im->cap = im->cap ? 2 * im->cap : 64;
			im->e = slm_xrealloc(im->e, im->cap * sizeof *im->e);
		}
		e = &im->e[im->n++];
	}
	e->name = slm_xmalloc(len + 1);
	memcpy(e->name, name, len);
	e->name[len] = 0;
	e->n = n;
	e->nmat = nmat;
	e->v = slm_xmalloc((n ? n : 1) * sizeof *e->v);
	e->sum2 = slm_xmalloc((n ? n : 1) * sizeof *e->sum2);
	e->cnt = slm_xmalloc((nmat ? nmat : 1) * sizeof *e->cnt);
	return e;
}

/* Importances from the sums and counts, as llama-quantize divides them. */
static void entry_means(im_entry *e)
{
	size_t per = e->n / e->nmat;
	for (size_t m = 0; m < e->nmat; m++)
		for (size_t k = 0; k < per; k++)
			e->v[m * per + k] = e->cnt[m] > 0.0f ? e->sum2[m * per + k] / e->cnt[m] : 1.0f;
}

void imatrix_set(slm_imatrix *im, const char *name, const float *sum2, size_t n,
		 const float *count, size_t nmat)
{
	im_entry *e = entry_for(im, name, strlen(name), n, nmat);
	memcpy(e->sum2, sum2, n * sizeof *sum2);
	memcpy(e->cnt, count, nmat * sizeof *count);
	entry_means(e);
}

/* ---- writing ---- */

static void put_bytes(FILE *f, const void *p, size_t n, uint64_t *off)
{
	fwrite(p, 1, n, f);
	*off += n;
}

static void put_u32(FILE *f, uint32_t v, uint64_t *off)
{
	uint8_t b[4];
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put_bytes(f, b, 4, off);
}

static void put_u64(FILE *f, uint64_t v, uint64_t *off)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put_bytes(f, b, 8, off);
}

static void put_f32s(FILE *f, const float *v, size_t n, uint64_t *off)
{
	for (size_t i = 0; i < n; i++)
		put_u32(f, kb_f32_bits(v[i]), off);
}

static void put_str(FILE *f, const char *s, uint64_t *off)
{
	put_u64(f, strlen(s), off);
	put_bytes(f, s, strlen(s), off);
}

static void put_pad(FILE *f, uint64_t *off)
{
	static const uint8_t zero[GGUF_DEFAULT_ALIGNMENT];
	size_t pad = (size_t)((GGUF_DEFAULT_ALIGNMENT - *off % GGUF_DEFAULT_ALIGNMENT) %
			      GGUF_DEFAULT_ALIGNMENT);
	put_bytes(f, zero, pad, off);
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(const im_entry *const *)a)->name, (*(const im_entry *const *)b)->name);
}

static uint64_t padded(uint64_t x)
{
	return (x + GGUF_DEFAULT_ALIGNMENT - 1) / GGUF_DEFAULT_ALIGNMENT * GGUF_DEFAULT_ALIGNMENT;
}

/* GGUF v3: general.type, imatrix.datasets, imatrix.chunk_count and
 * imatrix.chunk_size; per entry (by name) NAME.in_sum2, f32 [columns,
 * nmat], and NAME.counts, f32 [1, nmat]. */
static void write_gguf(const slm_imatrix *im, FILE *f, int chunks, int chunk_size,
		       const char *dataset)
{
	const im_entry **ord = slm_xcalloc(im->n ? im->n : 1, sizeof *ord);
	for (size_t i = 0; i < im->n; i++)
		ord[i] = &im->e[i];
	qsort(ord, im->n, sizeof *ord, by_name);
	uint64_t off = 0;
	put_bytes(f, "GGUF", 4, &off);
	put_u32(f, 3, &off);
	put_u64(f, 2 * (uint64_t)im->n, &off);
	put_u64(f, 4, &off);
	put_str(f, "general.type", &off);
	put_u32(f, GGUF_T_STRING, &off);
	put_str(f, "imatrix", &off);
	put_str(f, "imatrix.datasets", &off);
	put_u32(f, GGUF_T_ARRAY, &off);
	put_u32(f, GGUF_T_STRING, &off);
	put_u64(f, 1, &off);
	put_str(f, dataset, &off);
	put_str(f, "imatrix.chunk_count", &off);
	put_u32(f, GGUF_T_UINT32, &off);
	put_u32(f, (uint32_t)chunks, &off);
	put_str(f, "imatrix.chunk_size", &off);
	put_u32(f, GGUF_T_UINT32, &off);
	put_u32(f, (uint32_t)chunk_size, &off);
	uint64_t data = 0;
	char name[4200];
	for (size_t i = 0; i < im->n; i++) {
		const im_entry *e = ord[i];
		for (int k = 0; k < 2; k++) {
			snprintf(name, sizeof name, "%s%s", e->name, k ? ".counts" : ".in_sum2");
			put_str(f, name, &off);
			put_u32(f, 2, &off);
			put_u64(f, k ? 1 : e->n / e->nmat, &off);
			put_u64(f, e->nmat, &off);
			put_u32(f, KT_F32, &off);
			put_u64(f, data, &off);
			data += padded(4 * (uint64_t)(k ? e->nmat : e->n));
		}
	}
	put_pad(f, &off);
	for (size_t i = 0; i < im->n; i++) {
		put_f32s(f, ord[i]->sum2, ord[i]->n, &off);
		put_pad(f, &off);
		put_f32s(f, ord[i]->cnt, ord[i]->nmat, &off);
		put_pad(f, &off);
	}
	free(ord);
}

/* Legacy: i32 entries; per entry i32 name length, name, i32 calls, i32
 * values, f32 values; then i32 chunks, i32 length and the dataset name. */
static void write_dat(const slm_imatrix *im, FILE *f, int chunks, const char *dataset)
{
	uint64_t off = 0;
	put_u32(f, (uint32_t)im->n, &off);
	for (size_t i = 0; i < im->n; i++) {
		const im_entry *e = &im->e[i];
		put_u32(f, (uint32_t)strlen(e->name), &off);
		put_bytes(f, e->name, strlen(e->name), &off);
		put_u32(f, 1, &off);
		put_u32(f, (uint32_t)e->n, &off);
		put_f32s(f, e->v, e->n, &off);
	}
	put_u32(f, (uint32_t)chunks, &off);
	put_u32(f, (uint32_t)strlen(dataset), &off);
	put_bytes(f, dataset, strlen(dataset), &off);
}

int imatrix_save(const slm_imatrix *im, const char *path, imatrix_format fmt,
		 int chunks, int chunk_size, const char *dataset, slm_err *err)
{
	slm_afile af;
	if (slm_afile_open(&af, path, err) < 0)
		return -1;
	if (fmt == IMATRIX_GGUF)
		write_gguf(im, af.fp, chunks, chunk_size, dataset);
	else
		write_dat(im, af.fp, chunks, dataset);
	if (ferror(af.fp)) {
		slm_afile_abort(&af);
		return slm_seterr(err, EX_IOERR, "%s: write error", path);
	}
	return slm_afile_commit(&af, err);
}

/* ---- reading ---- */

static float ld_f32(const uint8_t *p)
{
	return kb_bits_f32(kb_ld32(p));
}

/* 1 if the name is printable (it goes into messages). */
static int printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return n > 0;
}

static int ends_with(gguf_str s, const char *suf, size_t *base)
{
	size_t sl = strlen(suf);
	if (s.len <= sl || memcmp(s.ptr + s.len - sl, suf, sl))
		return 0;
	*base = (size_t)s.len - sl;
	return 1;
}

static uint64_t nelems(const gguf_tensor *t)
{
	return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

/* GGUF form: every NAME.in_sum2 (f32, columns x nmat) needs its
 * NAME.counts (f32, nmat elements) and the other way round; other tensors
 * (llama-imatrix's NAME.in_sum) are ignored. */
static int load_gguf(slm_imatrix *im, gguf_file *g, const char *path, slm_err *err)
{
	for (size_t i = 0; i < gguf_n_tensors(g); i++) {
		const gguf_tensor *s = gguf_tensor_at(g, i);
		size_t bl;
		int is_sums = ends_with(s->name, ".in_sum2", &bl);
		if (!is_sums && !ends_with(s->name, ".counts", &bl))
			continue;
		if (!printable(s->name.ptr, bl) || bl > 4096)
			return slm_seterr(err, EX_DATAERR, "%s: tensor %zu: bad name", path, i);
		char cname[4200];
		memcpy(cname, s->name.ptr, bl);
		memcpy(cname + bl, is_sums ? ".counts" : ".in_sum2", is_sums ? 8 : 9);
		const gguf_tensor *o = gguf_find_tensor(g, cname);
		cname[bl] = 0;
		if (!o)
			return slm_seterr(err, EX_DATAERR, "%s: '%s' has %s but no %s", path, cname,
					  is_sums ? "sums" : "counts", is_sums ? "counts" : "sums");
		if (!is_sums)
			continue; /* checked from its in_sum2 */
		const gguf_tensor *c = o;
		uint64_t ne0 = s->ne[0], nmat = s->ne[1] * s->ne[2] * s->ne[3];
		if (s->ggml_type != KT_F32 || c->ggml_type != KT_F32)
			return slm_seterr(err, EX_DATAERR, "%s: '%s': sums and counts must be f32, "
					  "not %s and %s", path, cname, gguf_type_name(s->ggml_type),
					  gguf_type_name(c->ggml_type));
		if (nelems(c) != nmat)
			return slm_seterr(err, EX_DATAERR, "%s: '%s': %llu counts for %llu matrices",
					  path, cname, (unsigned long long)nelems(c),
					  (unsigned long long)nmat);
		if (ne0 == 0 || nmat == 0 || ne0 * nmat > ((uint64_t)1 << 40))
			return slm_seterr(err, EX_DATAERR, "%s: '%s': empty or huge sums", path,
					  cname);
		if (lookup(im, cname, bl))
			return slm_seterr(err, EX_DATAERR, "%s: '%s' twice", path, cname);
		im_entry *e = entry_for(im, cname, bl, (size_t)(ne0 * nmat), (size_t)nmat);
		for (uint64_t k = 0; k < ne0 * nmat; k++)
			e->sum2[k] = ld_f32(s->data + 4 * k);
		for (uint64_t k = 0; k < nmat; k++) {
			e->cnt[k] = ld_f32(c->data + 4 * k);
			if (!(e->cnt[k] >= 0.0f) || isinf(e->cnt[k]))
				return slm_seterr(err, EX_DATAERR, "%s: '%s': count %g", path, cname,
						  (double)e->cnt[k]);
		}
		entry_means(e);
	}
	if (im->n == 0)
		return slm_seterr(err, EX_DATAERR, "%s: no importance data (no *.in_sum2 tensors)",
				  path);
	return 0;
}

/* Legacy form: i32 count, then per entry i32 name length, name, i32 ncall,
 * i32 nval, f32 values[nval] (sums over ncall calls); the trailing dataset
 * information is ignored. */
static int load_dat(slm_imatrix *im, const uint8_t *p, size_t size, const char *path,
		    slm_err *err)
{
	size_t o = 0;
#define NEED(k) do { if (size - o < (size_t)(k)) \
	return slm_seterr(err, EX_DATAERR, "%s: truncated imatrix file at byte %zu", path, o); } while (0)
	NEED(4);
	int32_t n = (int32_t)kb_ld32(p);
	o = 4;
	if (n < 1)
		return slm_seterr(err, EX_DATAERR, "%s: not an imatrix file (no entries)", path);
	for (int32_t i = 0; i < n; i++) {
		NEED(4);
		int32_t len = (int32_t)kb_ld32(p + o);
		o += 4;
		if (len < 1 || len > 4096)
			return slm_seterr(err, EX_DATAERR, "%s: entry %d: bad name length %d",
					  path, (int)i + 1, (int)len);
		NEED(len + 8);
		const char *name = (const char *)p + o;
		if (!printable(name, (size_t)len))
			return slm_seterr(err, EX_DATAERR, "%s: entry %d: bad name", path,
					  (int)i + 1);
		if (lookup(im, name, (size_t)len))
			return slm_seterr(err, EX_DATAERR, "%s: entry %d: '%.*s' twice", path,
					  (int)i + 1, (int)len, name);
		o += (size_t)len;
		int32_t ncall = (int32_t)kb_ld32(p + o), nval = (int32_t)kb_ld32(p + o + 4);
		o += 8;
		if (nval < 1)
			return slm_seterr(err, EX_DATAERR, "%s: entry %d: %d values", path,
					  (int)i + 1, (int)nval);
		NEED((size_t)nval * 4);
		im_entry *e = entry_for(im, name, (size_t)len, (size_t)nval, 1);
		for (int32_t k = 0; k < nval; k++)
			e->sum2[k] = ld_f32(p + o + 4 * (size_t)k);
		/* values are sums over ncall calls; none: as they are */
		e->cnt[0] = ncall > 0 ? (float)ncall : 1.0f;
		entry_means(e);
		o += (size_t)nval * 4;
	}
#undef NEED
	return 0;
}

int imatrix_load(slm_imatrix **out, const char *path, slm_err *err)
{
	char *data;
	size_t size;
	if (slm_read_file(path, &data, &size, err) < 0)
		return -1;
	slm_imatrix *im = imatrix_new();
	int rc;
	if (size >= 4 && !memcmp(data, "GGUF", 4)) {
		gguf_file *g;
		rc = gguf_open_mem(&g, data, size, path, err);
		if (rc == 0) {
			rc = load_gguf(im, g, path, err);
			gguf_close(g);
		}
	} else {
		rc = load_dat(im, (const uint8_t *)data, size, path, err);
	}
	free(data);
	for (size_t i = 0; rc == 0 && i < im->n; i++)
		for (size_t k = 0; k < im->e[i].n; k++)
			if (!isfinite(im->e[i].v[k]) || im->e[i].v[k] < 0.0f) {
				rc = slm_seterr(err, EX_DATAERR,
						"%s: '%s': importance %g (must be finite, >= 0)",
						path, im->e[i].name, (double)im->e[i].v[k]);
				break;
			}
	if (rc < 0) {
		imatrix_free(im);
		return -1;
	}
	*out = im;
	return 0;
}
