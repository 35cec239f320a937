/*
 * safetensors.c - a hostile-input-safe reader of safetensors files: the
 * whole structure is checked at open (see safetensors.h), then tensors
 * are handed out as pointers into the mapping.
 */
#include "safetensors.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct st_file {
	char *name;
	const uint8_t *base;
	size_t size;
	int mapped;
	uint64_t data_off;      /* 8 + header length */
	st_tensor *t;
	size_t nt;
	size_t *sorted;         /* tensor indices by name, for st_find */
	char **mkey, **mval;
	size_t nmeta;
};

static const struct {
	const char *name;
	unsigned bits;
} st_dtypes[] = {
	{ "BOOL", 8 },    { "U8", 8 },       { "I8", 8 },       { "F8_E5M2", 8 },
	{ "F8_E4M3", 8 }, { "F8_E8M0", 8 },  { "I16", 16 },     { "U16", 16 },
	{ "F16", 16 },    { "BF16", 16 },    { "I32", 32 },     { "U32", 32 },
	{ "F32", 32 },    { "F64", 64 },     { "I64", 64 },     { "U64", 64 },
	{ "C64", 64 },    { "F4", 4 },       { "F6_E2M3", 6 },  { "F6_E3M2", 6 },
};

__attribute__((format(printf, 4, 5)))
static int bad(const st_file *f, slm_err *err, uint64_t off, const char *fmt, ...)
{
	char what[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	slm_one_line(what); /* names from the file */
	return slm_seterr(err, EX_DATAERR, "%s: offset %llu: %s", f->name,
			  (unsigned long long)off, what);
}

/* Offset of a tensor's key in the header, for messages: where "name"
 * first appears quoted, or the header's start when it cannot be found
 * verbatim (escaped characters). */
static uint64_t key_offset(const st_file *f, const char *name)
{
	size_t n = strlen(name), hlen = (size_t)(f->data_off - 8);
	const uint8_t *h = f->base + 8;
	for (size_t i = 0; i + n + 2 <= hlen; i++)
		if (h[i] == '"' && h[i + n + 1] == '"' && !memcmp(h + i + 1, name, n))
			return 8 + i;
	return 8;
}

static int get_u64(json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int parse_tensor(st_file *f, st_tensor *t, const char *name, json_t *v,
			slm_err *err)
{
	uint64_t koff = key_offset(f, name);
	uint64_t dsize = f->size - f->data_off;
	if (!json_is_object(v))
		return bad(f, err, koff, "tensor '%s': not a JSON object", name);

	json_t *dt = json_object_get(v, "dtype");
	if (!json_is_string(dt))
		return bad(f, err, koff, "tensor '%s': 'dtype' missing or not a string", name);
	const char *dname = json_string_value(dt);
	t->dtype = NULL;
	for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
		if (!strcmp(st_dtypes[i].name, dname)) {
			t->dtype = st_dtypes[i].name;
			t->elem_bits = st_dtypes[i].bits;
		}
	if (!t->dtype)
		return bad(f, err, koff, "tensor '%s': unknown dtype '%.64s'", name, dname);

	json_t *sh = json_object_get(v, "shape");
	if (!json_is_array(sh))
		return bad(f, err, koff, "tensor '%s': 'shape' missing or not an array", name);
	if (json_array_size(sh) > ST_MAX_DIMS)
		return bad(f, err, koff, "tensor '%s': more than 8 dimensions", name);
	t->ndim = (int)json_array_size(sh);
	t->nelems = 1;
	int zero = 0, overflow = 0;
	for (int i = 0; i < t->ndim; i++) {
		if (get_u64(json_array_get(sh, (size_t)i), &t->shape[i]) < 0)
			return bad(f, err, koff,
				   "tensor '%s': shape holds something other than a "
				   "non-negative integer", name);
		zero |= t->shape[i] == 0;
		overflow |= slm_mul_ok(t->nelems, t->shape[i], &t->nelems) < 0;
	}
	if (zero)
		t->nelems = 0; /* a product that overflowed on the way is still 0 */
	uint64_t bits;
	if ((overflow && !zero) || slm_mul_ok(t->nelems, t->elem_bits, &bits) < 0)
		return bad(f, err, koff,
			   "tensor '%s': the element count of its shape overflows", name);
	if (bits % 8)
		return bad(f, err, koff,
			   "tensor '%s': its %s elements do not fill whole bytes", name,
			   t->dtype);

	json_t *off = json_object_get(v, "data_offsets");
	if (!json_is_array(off) || json_array_size(off) != 2 ||
	    get_u64(json_array_get(off, 0), &t->begin) < 0 ||
	    get_u64(json_array_get(off, 1), &t->end) < 0)
		return bad(f, err, koff,
			   "tensor '%s': 'data_offsets' is not two non-negative integers", name);
	if (t->begin > t->end)
		return bad(f, err, koff, "tensor '%s': data_offsets begin after they end", name);
	if (t->end > dsize)
		return bad(f, err, t->begin <= dsize ? f->data_off + t->begin : f->size,
			   "tensor '%s': data [%llu, %llu) runs past the end of the "
			   "data area (%llu bytes)", name, (unsigned long long)t->begin,
			   (unsigned long long)t->end, (unsigned long long)dsize);
	if (t->end - t->begin != bits / 8)
		return bad(f, err, f->data_off + t->begin,
			   "tensor '%s': holds %llu bytes but its %s shape needs %llu",
			   name, (unsigned long long)(t->end - t->begin), t->dtype,
			   (unsigned long long)(bits / 8));
	t->data = f->base + f->data_off + t->begin;
	return 0;
}

static int by_begin(const void *a, const void *b, void *arg)
{
	const st_tensor *x = &((const st_file *)arg)->t[*(const size_t *)a];
	const st_tensor *y = &((const st_file *)arg)->t[*(const size_t *)b];
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

static int by_name(const void *a, const void *b, void *arg)
{
	const st_file *f = arg;
	return strcmp(f->t[*(const size_t *)a].name, f->t[*(const size_t *)b].name);
}

static int check_overlaps(st_file *f, slm_err *err)
{
	size_t *ix = slm_xmalloc((f->nt ? f->nt : 1) * sizeof *ix);
	for (size_t i = 0; i < f->nt; i++)
		ix[i] = i;
	qsort_r(ix, f->nt, sizeof *ix, by_begin, f);
	const st_tensor *last = NULL; /* the non-empty range reaching furthest */
	for (size_t i = 0; i < f->nt; i++) {
		const st_tensor *t = &f->t[ix[i]];
		if (t->begin == t->end)
			continue;
		if (last && t->begin < last->end) {
			free(ix);
			return bad(f, err, f->data_off + t->begin,
				   "tensor '%s' overlaps tensor '%s'", t->name, last->name);
		}
		if (!last || t->end > last->end)
			last = t;
	}
	/* the name index, for st_find */
	qsort_r(ix, f->nt, sizeof *ix, by_name, f);
	f->sorted = ix;
	return 0;
}

static int parse_meta(st_file *f, json_t *v, slm_err *err)
{
	uint64_t koff = key_offset(f, "__metadata__");
	if (!json_is_object(v))
		return bad(f, err, koff, "'__metadata__' is not a JSON object");
	size_t n = json_object_size(v);
	f->mkey = slm_xcalloc(n ? n : 1, sizeof *f->mkey);
	f->mval = slm_xcalloc(n ? n : 1, sizeof *f->mval);
	const char *k;
	json_t *s;
	json_object_foreach(v, k, s) {
		if (!json_is_string(s))
			return bad(f, err, koff, "'__metadata__' entry '%s' is not a string", k);
		f->mkey[f->nmeta] = slm_xstrdup(k);
		f->mval[f->nmeta++] = slm_xstrdup(json_string_value(s));
	}
	return 0;
}

static int parse(st_file *f, slm_err *err)
{
	if (f->size < 8)
		return bad(f, err, 0, "truncated: the 8-byte header length is missing");
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | f->base[i];
	if (hlen > f->size - 8)
		return bad(f, err, 0,
			   "header length %llu is longer than the %llu bytes after it",
			   (unsigned long long)hlen, (unsigned long long)(f->size - 8));
	if (hlen > ST_MAX_HEADER)
		return bad(f, err, 0, "header length %llu exceeds the limit of %u bytes",
			   (unsigned long long)hlen, ST_MAX_HEADER);
	f->data_off = 8 + hlen;
	if (hlen < 2 || f->base[8] != '{')
		return bad(f, err, 8, "header is not a JSON object");

	json_error_t je;
	json_t *root = json_loadb((const char *)f->base + 8, (size_t)hlen,
				  JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return bad(f, err, 8 + (uint64_t)(je.position > 0 ? je.position : 0),
			   "header is not valid JSON: %s", je.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return bad(f, err, 8, "header is not a JSON object");
	}
	size_t n = json_object_size(root);
	f->t = slm_xcalloc(n ? n : 1, sizeof *f->t);
	const char *k;
	json_t *v;
	int rc = 0;
	json_object_foreach(root, k, v) {
		if (!strcmp(k, "__metadata__")) {
			if ((rc = parse_meta(f, v, err)) < 0)
				break;
			continue;
		}
		st_tensor *t = &f->t[f->nt];
		if ((rc = parse_tensor(f, t, k, v, err)) < 0)
			break;
		t->name = slm_xstrdup(k);
		f->nt++;
	}
	json_decref(root);
	if (rc < 0)
		return -1;
	return check_overlaps(f, err);
}

int st_open_mem(st_file **out, const void *data, size_t n, const char *name,
		slm_err *err)
{
	st_file *f = slm_xcalloc(1, sizeof *f);
	f->name = slm_xstrdup(name ? name : "safetensors");
	f->base = data;
	f->size = n;
	if (parse(f, err) < 0) {
		st_close(f);
		*out = NULL;
		return -1;
	}
	*out = f;
	return 0;
}

int st_open(st_file **out, const char *path, slm_err *err)
{
	const uint8_t *m;
	size_t size;
	*out = NULL;
	if (slm_map_file(path, &m, &size, err) < 0)
		return -1;
	st_file *f = slm_xcalloc(1, sizeof *f);
	f->name = slm_xstrdup(path);
	f->base = m;
	f->size = size;
	f->mapped = m != NULL;
	if (parse(f, err) < 0) {
		st_close(f);
		return -1;
	}
	*out = f;
	return 0;
}

void st_close(st_file *f)
{
	if (!f)
		return;
	if (f->mapped)
		munmap((void *)f->base, f->size);
	for (size_t i = 0; i < f->nt; i++)
		free((char *)f->t[i].name);
	free(f->t);
	free(f->sorted);
	for (size_t i = 0; i < f->nmeta; i++) {
		free(f->mkey[i]);
		free(f->mval[i]);
	}
	free(f->mkey);
	free(f->mval);
	free(f->name);
	free(f);
}

const char *st_name(const st_file *f)
{
	return f->name;
}

uint64_t st_data_offset(const st_file *f)
{
	return f->data_off;
}

size_t st_n_tensors(const st_file *f)
{
	return f->nt;
}

const st_tensor *st_tensor_at(const st_file *f, size_t i)
{
	return i < f->nt ? &f->t[i] : NULL;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
	size_t lo = 0, hi = f->nt;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const st_tensor *t = &f->t[f->sorted[mid]];
		int c = strcmp(name, t->name);
		if (!c)
			return t;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

size_t st_n_meta(const st_file *f)
{
	return f->nmeta;
}

int st_meta_at(const st_file *f, size_t i, const char **key, const char **value)
{
	if (i >= f->nmeta)
		return -1;
	*key = f->mkey[i];
	*value = f->mval[i];
	return 0;
}

const char *st_meta(const st_file *f, const char *key)
{
	for (size_t i = 0; i < f->nmeta; i++)
		if (!strcmp(f->mkey[i], key))
			return f->mval[i];
	return NULL;
}
