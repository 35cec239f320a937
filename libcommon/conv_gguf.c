/*
 * conv_gguf.c - GGUF in and out of bundles: cv_from_gguf fills a cv_model
 * from a GGUF file (metadata sorted into the manifest, vocabulary arrays
 * pointing into the mapped file, tensors read with pread one at a time),
 * and cv_bundle_to_gguf writes a bundle back out as GGUF v3, restoring
 * every key's value type from the manifest's "gguf_types" when it has one.
 */
#include "convert.h"

#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"

/* Architectures a bundle may have (their GGUF names are the canonical
 * ones). */
static const char *const supported_archs[] = {
	"llama", "qwen2", "qwen3", "gemma3", "smollm3", "phi3",
};
#define SUPPORTED_ARCHS "llama, qwen2, qwen3, gemma3, smollm3, phi3"

/* Tensor types kept as stored (GGUF ids). */
static const uint32_t supported_types[] = { 0, 1, 30, 8, 2, 3, 6, 7, 10, 11, 12, 13, 14 };
#define SUPPORTED_TYPES "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k"

/* Vocabulary arrays that go to the vocabulary member. */
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_MERGES "tokenizer.ggml.merges"

/* general.sampling.* <-> manifest "generation". */
static const char *const sampling_map[][2] = {
	{ "temp", "temperature" }, { "top_k", "top_k" },   { "top_p", "top_p" },
	{ "min_p", "min_p" },      { "penalty_repeat", "repeat_penalty" },
};
#define N_SAMPLING (sizeof sampling_map / sizeof sampling_map[0])

/* A key or name from the file, printable in a one-line message. */
static const char *printable(const char *p, size_t n, char *buf, size_t bufsz)
{
	size_t o = 0, i;
	for (i = 0; i < n && o + 4 < bufsz; i++) {
		unsigned char c = (unsigned char)p[i];
		buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (i < n) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = 0;
	return buf;
}

static int is_supported_arch(const char *a)
{
	for (size_t i = 0; i < sizeof supported_archs / sizeof supported_archs[0]; i++)
		if (!strcmp(a, supported_archs[i]))
			return 1;
	return 0;
}

/* ---------------------------------------------------------------------
 * Import
 */

typedef struct gguf_src {
	int fd;
	char *path;
} gguf_src;

static void src_free(void *p)
{
	gguf_src *s = p;
	close(s->fd);
	free(s->path);
	free(s);
}

static void gguf_free(void *p)
{
	gguf_close(p);
}

/* produce: the tensor's bytes, read from the file (not through the
 * mapping, so the input's pages do not pile up in memory). */
static int read_tensor(const cv_tensor *t, uint8_t *out, slm_err *err)
{
	const gguf_src *s = t->ctx;
	uint64_t off = t->aux[0], left = t->size;
	while (left > 0) {
		size_t want = left > (1u << 30) ? (1u << 30) : (size_t)left;
		ssize_t r = pread(s->fd, out, want, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return slm_seterr(err, EX_IOERR, "%s: tensor '%s': read: %s", s->path,
					  t->name, strerror(errno));
		if (r == 0)
			return slm_seterr(err, EX_DATAERR,
					  "%s: tensor '%s': file shrank while converting", s->path,
					  t->name);
		out += r;
		off += (uint64_t)r;
		left -= (uint64_t)r;
	}
	return 0;
}

static int file_sha256(int fd, const char *path, char hex[65], slm_err *err)
{
	enum { CHUNK = 1 << 20 };
	uint8_t *buf = slm_xmalloc(CHUNK);
	slm_sha256 *h = slm_sha256_new();
	off_t off = 0;
	for (;;) {
		ssize_t r = pread(fd, buf, CHUNK, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			slm_sha256_final(h, hex);
			free(buf);
			return slm_seterr(err, EX_IOERR, "%s: read: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		slm_sha256_update(h, buf, (size_t)r);
		off += r;
	}
	slm_sha256_final(h, hex);
	free(buf);
	return 0;
}

/* "uint32", "array[string]", "array[array[int32]]" (a nested array is
 * described by its first element). */
static void type_desc(const gguf_kv *kv, char *buf, size_t n)
{
	if (kv->type != GGUF_T_ARRAY) {
		snprintf(buf, n, "%s", gguf_value_type_name(kv->type));
		return;
	}
	if (kv->arr_type != GGUF_T_ARRAY) {
		snprintf(buf, n, "array[%s]", gguf_value_type_name(kv->arr_type));
		return;
	}
	gguf_kv sub;
	char inner[256] = "array";
	if (kv->arr_n > 0 && gguf_arr_sub(kv, 0, &sub) == 0)
		type_desc(&sub, inner, sizeof inner);
	if (snprintf(buf, n, "array[%s]", inner) >= (int)n)
		snprintf(buf, n, "array"); /* too deep to describe: inferred */
}

/* A metadata value as JSON; NULL with *why when JSON cannot hold it. */
static json_t *value_json(const gguf_kv *kv, const char **why)
{
	if (kv->type != GGUF_T_ARRAY) {
		switch (kv->type) {
		case GGUF_T_STRING: {
			json_t *s = json_stringn(kv->v.s.ptr, kv->v.s.len);
			if (!s)
				*why = "string is not valid UTF-8";
			return s;
		}
		case GGUF_T_BOOL:
			return json_boolean(kv->v.b);
		case GGUF_T_FLOAT32:
		case GGUF_T_FLOAT64: {
			json_t *r = json_real(kv->v.f);
			if (!r)
				*why = "value is not a finite number";
			return r;
		}
		case GGUF_T_INT8: case GGUF_T_INT16: case GGUF_T_INT32: case GGUF_T_INT64:
			return json_integer(kv->v.i);
		default:
			if (kv->v.u > (uint64_t)INT64_MAX) {
				*why = "integer above 2^63 - 1";
				return NULL;
			}
			return json_integer((json_int_t)kv->v.u);
		}
	}
	json_t *a = json_array();
	for (uint64_t i = 0; i < kv->arr_n; i++) {
		json_t *e = NULL;
		switch (kv->arr_type) {
		case GGUF_T_STRING: {
			gguf_str s;
			if (gguf_arr_str(kv, i, &s) == 0 && !(e = json_stringn(s.ptr, s.len)))
				*why = "string is not valid UTF-8";
			break;
		}
		case GGUF_T_BOOL: {
			int64_t v;
			if (gguf_arr_i64(kv, i, &v) == 0)
				e = json_boolean(v);
			break;
		}
		case GGUF_T_FLOAT32:
		case GGUF_T_FLOAT64: {
			double d;
			if (gguf_arr_f64(kv, i, &d) == 0 && !(e = json_real(d)))
				*why = "value is not a finite number";
			break;
		}
		case GGUF_T_ARRAY: {
			gguf_kv sub;
			if (gguf_arr_sub(kv, i, &sub) == 0)
				e = value_json(&sub, why);
			break;
		}
		default: {
			int64_t v;
			if (gguf_arr_i64(kv, i, &v) == 0)
				e = json_integer(v);
			else
				*why = "integer above 2^63 - 1";
			break;
		}
		}
		if (!e) {
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, e);
	}
	return a;
}

static json_t *child(json_t *o, const char *key)
{
	json_t *c = json_object_get(o, key);
	if (!c) {
		c = json_object();
		json_object_set_new(o, key, c);
	}
	return c;
}

/* The vocabulary arrays, pointing into the mapping. */
static int load_vocab(cv_model *m, const gguf_file *g, slm_err *err)
{
	const char *path = gguf_name(g);
	const gguf_kv *tk = gguf_find(g, KEY_TOKENS), *sc = gguf_find(g, KEY_SCORES),
		      *ty = gguf_find(g, KEY_TYPES), *me = gguf_find(g, KEY_MERGES);
	cv_vocab *v = &m->vocab;
	if (!tk) {
		if (sc || ty || me)
			return slm_seterr(err, EX_DATAERR, "%s: %s without %s", path,
					  sc ? KEY_SCORES : ty ? KEY_TYPES : KEY_MERGES,
					  KEY_TOKENS);
		return 0;
	}
	if (tk->type != GGUF_T_ARRAY || tk->arr_type != GGUF_T_STRING)
		return slm_seterr(err, EX_DATAERR, "%s: key '%s' is not an array of strings",
				  path, KEY_TOKENS);
	if (me && (me->type != GGUF_T_ARRAY || me->arr_type != GGUF_T_STRING))
		return slm_seterr(err, EX_DATAERR, "%s: key '%s' is not an array of strings",
				  path, KEY_MERGES);
	const gguf_kv *per_token[2] = { sc, ty };
	for (int k = 0; k < 2; k++) {
		const gguf_kv *a = per_token[k];
		if (!a)
			continue;
		const char *key = k ? KEY_TYPES : KEY_SCORES;
		int numeric = a->type == GGUF_T_ARRAY && a->arr_type != GGUF_T_STRING &&
			      a->arr_type != GGUF_T_ARRAY && a->arr_type != GGUF_T_BOOL;
		if (!numeric || (k == 1 && (a->arr_type == GGUF_T_FLOAT32 ||
					    a->arr_type == GGUF_T_FLOAT64)))
			return slm_seterr(err, EX_DATAERR, "%s: key '%s' is not an array of %s",
					  path, key, k ? "integers" : "numbers");
		if (a->arr_n != tk->arr_n)
			return slm_seterr(err, EX_DATAERR,
					  "%s: key '%s' has %llu entries for %llu tokens", path, key,
					  (unsigned long long)a->arr_n,
					  (unsigned long long)tk->arr_n);
	}
	size_t n = (size_t)tk->arr_n;
	v->n = n;
	v->tok = slm_xcalloc(n, sizeof *v->tok);
	v->tok_len = slm_xcalloc(n, sizeof *v->tok_len);
	for (size_t i = 0; i < n; i++) {
		gguf_str s;
		if (gguf_arr_str(tk, i, &s) < 0 || s.len > UINT32_MAX)
			return slm_seterr(err, EX_DATAERR, "%s: key '%s': token %zu is unreadable",
					  path, KEY_TOKENS, i);
		v->tok[i] = (const uint8_t *)s.ptr;
		v->tok_len[i] = (uint32_t)s.len;
	}
	if (sc) {
		v->scores = slm_xcalloc(n, sizeof *v->scores);
		for (size_t i = 0; i < n; i++) {
			double d = 0;
			gguf_arr_f64(sc, i, &d);
			v->scores[i] = (float)d;
		}
	}
	if (ty) {
		v->types = slm_xcalloc(n, sizeof *v->types);
		for (size_t i = 0; i < n; i++) {
			int64_t x = 0;
			if (gguf_arr_i64(ty, i, &x) < 0 || x < INT32_MIN || x > INT32_MAX)
				return slm_seterr(err, EX_DATAERR,
						  "%s: key '%s': entry %zu is out of range", path,
						  KEY_TYPES, i);
			v->types[i] = (int32_t)x;
		}
	}
	if (me) {
		v->nmerges = (size_t)me->arr_n;
		v->merge = slm_xcalloc(v->nmerges, sizeof *v->merge);
		v->merge_len = slm_xcalloc(v->nmerges, sizeof *v->merge_len);
		for (size_t i = 0; i < v->nmerges; i++) {
			gguf_str s;
			if (gguf_arr_str(me, i, &s) < 0 || s.len > UINT32_MAX)
				return slm_seterr(err, EX_DATAERR,
						  "%s: key '%s': merge %zu is unreadable", path,
						  KEY_MERGES, i);
			v->merge[i] = (const uint8_t *)s.ptr;
			v->merge_len[i] = (uint32_t)s.len;
		}
	}
	return 0;
}

/* Sort every metadata key into the manifest; srcarch: the file's
 * general.architecture (may be NULL). */
static int load_metadata(cv_model *m, const gguf_file *g, const char *srcarch,
			 slm_err *err)
{
	const char *path = gguf_name(g);
	json_t *man = m->manifest;
	json_t *hp = child(man, "hparams"), *tok = child(man, "tokenizer"),
	       *types = child(man, "gguf_types"), *prov = child(man, "provenance");
	json_t *gen = child(prov, "general"), *extra = json_object();
	size_t alen = srcarch ? strlen(srcarch) : 0;
	for (size_t i = 0; i < gguf_n_kv(g); i++) {
		const gguf_kv *kv = gguf_kv_at(g, i);
		char q[96], key[4096];
		if (kv->key.len >= sizeof key || memchr(kv->key.ptr, 0, kv->key.len)) {
			json_decref(extra);
			return slm_seterr(err, EX_DATAERR, "%s: key '%s': too long or holds a NUL",
					  path, printable(kv->key.ptr, kv->key.len, q, sizeof q));
		}
		memcpy(key, kv->key.ptr, kv->key.len);
		key[kv->key.len] = 0;
		const char *why = "not valid UTF-8";
		json_t *ks = json_string(key);
		if (!ks) {
			json_decref(extra);
			return slm_seterr(err, EX_DATAERR, "%s: key '%s': %s", path,
					  printable(key, strlen(key), q, sizeof q), why);
		}
		json_decref(ks);
		char td[300];
		type_desc(kv, td, sizeof td);
		json_object_set_new(types, key, json_string(td));
		if (!strcmp(key, KEY_TOKENS) || !strcmp(key, KEY_SCORES) ||
		    !strcmp(key, KEY_TYPES) || !strcmp(key, KEY_MERGES))
			continue; /* the vocabulary member: load_vocab */
		json_t *val = value_json(kv, &why);
		if (!val) {
			json_decref(extra);
			return slm_seterr(err, EX_DATAERR, "%s: key '%s': %s", path,
					  printable(key, strlen(key), q, sizeof q), why);
		}
		if (!strncmp(key, "general.", 8)) {
			json_object_set_new(gen, key + 8, val);
		} else if (srcarch && !strncmp(key, srcarch, alen) && key[alen] == '.' &&
			   key[alen + 1]) {
			json_object_set_new(hp, key + alen + 1, val);
		} else if (!strncmp(key, "tokenizer.ggml.", 15) && key[15] &&
			   kv->type != GGUF_T_ARRAY) {
			json_object_set_new(tok, key + 15, val);
		} else if (!strcmp(key, "tokenizer.chat_template") && json_is_string(val)) {
			json_object_set_new(man, "chat_template", val);
		} else {
			json_object_set_new(extra, key, val);
		}
	}
	if (json_object_size(extra))
		json_object_set_new(man, "gguf_extra", extra);
	else
		json_decref(extra);
	/* general.sampling.* are the file's generation defaults */
	json_t *generation = json_object();
	for (size_t i = 0; i < N_SAMPLING; i++) {
		char k[64];
		snprintf(k, sizeof k, "sampling.%s", sampling_map[i][0]);
		json_t *v = json_object_get(gen, k);
		if (json_is_number(v))
			json_object_set(generation, sampling_map[i][1], v);
	}
	if (json_object_size(generation))
		json_object_set_new(man, "generation", generation);
	else
		json_decref(generation);
	if (!json_object_size(tok))
		json_object_del(man, "tokenizer");
	return 0;
}

static int load_tensors(cv_model *m, const gguf_file *g, gguf_src *src, slm_err *err)
{
	const char *path = gguf_name(g);
	for (size_t i = 0; i < gguf_n_tensors(g); i++) {
		const gguf_tensor *gt = gguf_tensor_at(g, i);
		char name[512], q[96];
		if (gt->name.len >= sizeof name || memchr(gt->name.ptr, 0, gt->name.len))
			return slm_seterr(err, EX_DATAERR, "%s: tensor '%s': name too long",
					  path, printable(gt->name.ptr, gt->name.len, q, sizeof q));
		memcpy(name, gt->name.ptr, gt->name.len);
		name[gt->name.len] = 0;
		char member[sizeof name + 8];
		snprintf(member, sizeof member, "tensors/%s", name);
		if (!bundle_safe_name(member))
			return slm_seterr(err, EX_DATAERR,
					  "%s: tensor '%s': name cannot be a bundle member", path,
					  printable(name, strlen(name), q, sizeof q));
		int ok = 0;
		for (size_t k = 0; k < sizeof supported_types / sizeof supported_types[0]; k++)
			ok |= supported_types[k] == gt->ggml_type;
		const slm_dtype *dt = dtype_by_ggml(gt->ggml_type);
		if (!ok || !dt) {
			const char *tn = gguf_type_name(gt->ggml_type);
			return slm_seterr(err, EX_DATAERR,
					  "%s: tensor '%s': unsupported type %s (supported: %s)",
					  path, name, tn ? tn : "unknown", SUPPORTED_TYPES);
		}
		cv_tensor *t = cv_add_tensor(m, name, dt, (int)gt->n_dims, gt->ne, err);
		if (!t)
			return slm_preerr(err, "%s", path);
		if (t->size != gt->size)
			return slm_seterr(err, EX_DATAERR,
					  "%s: tensor '%s': %llu bytes in the file, %llu expected",
					  path, name, (unsigned long long)gt->size,
					  (unsigned long long)t->size);
		t->produce = read_tensor;
		t->ctx = src;
		t->aux[0] = gguf_data_offset(g) + gt->offset;
	}
	return 0;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

int cv_from_gguf(cv_model *m, const char *path, int vocab_only, slm_err *err)
{
	gguf_file *g;
	if (gguf_open(&g, path, err) < 0)
		return -1;
	cv_model_hold(m, g, gguf_free);
	gguf_src *src = slm_xcalloc(1, sizeof *src);
	src->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (src->fd < 0) {
		free(src);
		return slm_seterr(err, EX_NOINPUT, "%s: %s", path, strerror(errno));
	}
	src->path = slm_xstrdup(path);
	cv_model_hold(m, src, src_free);
#ifdef POSIX_FADV_SEQUENTIAL
	posix_fadvise(src->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif

	gguf_str as;
	char arch[128] = "", q[96];
	if (gguf_get_str(g, "general.architecture", &as) == 0) {
		if (as.len >= sizeof arch || memchr(as.ptr, 0, as.len))
			return slm_seterr(err, EX_DATAERR, "%s: unsupported architecture '%s' "
					  "(supported: %s)", path,
					  printable(as.ptr, as.len, q, sizeof q), SUPPORTED_ARCHS);
		memcpy(arch, as.ptr, as.len);
		arch[as.len] = 0;
	}
	if (!vocab_only && !*arch)
		return slm_seterr(err, EX_DATAERR,
				  "%s: no general.architecture key (supported: %s)", path,
				  SUPPORTED_ARCHS);
	if (!vocab_only && !is_supported_arch(arch))
		return slm_seterr(err, EX_DATAERR,
				  "%s: unsupported architecture '%s' (supported: %s)", path,
				  printable(arch, strlen(arch), q, sizeof q), SUPPORTED_ARCHS);

	json_object_set_new(m->manifest, "arch", json_string(vocab_only ? "tokenizer" : arch));
	if (load_metadata(m, g, *arch ? arch : NULL, err) < 0 || load_vocab(m, g, err) < 0)
		return -1;
	if (vocab_only && m->vocab.n == 0)
		return slm_seterr(err, EX_DATAERR, "%s: no %s array: no vocabulary to convert",
				  path, KEY_TOKENS);
	if (!vocab_only) {
		if (load_tensors(m, g, src, err) < 0)
			return -1;
		if (!gguf_find_tensor(g, "output.weight"))
			json_object_set_new(json_object_get(m->manifest, "hparams"),
					    "tied_embeddings", json_true());
	}

	char hex[65];
	if (file_sha256(src->fd, path, hex, err) < 0)
		return -1;
	json_t *prov = json_object_get(m->manifest, "provenance");
	json_object_set_new(prov, "source", json_string(base_name(path)));
	json_object_set_new(prov, "source_format", json_string("gguf"));
	json_object_set_new(prov, "source_sha256", json_string(hex));
	json_object_set_new(prov, "converter", json_string("slm-convert " PACKAGE_VERSION));
	if (!json_object_size(json_object_get(m->manifest, "hparams")))
		json_object_del(m->manifest, "hparams");
	return 0;
}

/* ---------------------------------------------------------------------
 * Export
 */

typedef struct dbuf {
	uint8_t *p;
	size_t n, cap;
} dbuf;

static void db_put(dbuf *d, const void *p, size_t n)
{
	if (d->n + n > d->cap) {
		while (d->n + n > d->cap)
			d->cap = d->cap ? 2 * d->cap : 1 << 16;
		d->p = slm_xrealloc(d->p, d->cap);
	}
	memcpy(d->p + d->n, p, n);
	d->n += n;
}

static void db_le(dbuf *d, uint64_t v, int bytes)
{
	uint8_t b[8];
	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	db_put(d, b, (size_t)bytes);
}

static void db_str(dbuf *d, const void *p, size_t n)
{
	db_le(d, n, 8);
	db_put(d, p, n);
}

static int parse_vtype(const char *s, size_t n)
{
	for (int t = 0; t < GGUF_T_COUNT; t++) {
		const char *nm = gguf_value_type_name((uint32_t)t);
		if (t != GGUF_T_ARRAY && strlen(nm) == n && !strncmp(nm, s, n))
			return t;
	}
	return -1;
}

/* Names whose integer values are floats in llama.cpp's GGUF keys. */
static int floatish_key(const char *key)
{
	static const char *const pats[] = {
		"epsilon", "freq_base", "freq_scale", "scale", "factor", "softcap",
		"multiplier", "sampling.temp", "sampling.top_p", "sampling.min_p",
		"sampling.penalty_repeat", "sampling.mirostat_tau",
		"sampling.mirostat_eta", "sampling.xtc_",
	};
	for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++)
		if (strstr(key, pats[i]))
			return 1;
	return 0;
}

static int int32_key(const char *key)
{
	return !strcmp(key, "general.sampling.top_k") ||
	       !strcmp(key, "general.sampling.penalty_last_n") ||
	       !strcmp(key, "general.sampling.mirostat");
}

/* The type gguf-py's writer would give v under key, as a type
 * description; 0, or -1 when GGUF cannot hold v. */
static int infer_type(const char *key, const json_t *v, char *buf, size_t n)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		snprintf(buf, n, "string");
		return 0;
	case JSON_TRUE:
	case JSON_FALSE:
		snprintf(buf, n, "bool");
		return 0;
	case JSON_REAL:
		snprintf(buf, n, "float32");
		return 0;
	case JSON_INTEGER: {
		json_int_t x = json_integer_value(v);
		const char *t = floatish_key(key) ? "float32"
				: int32_key(key) && x >= INT32_MIN && x <= INT32_MAX ? "int32"
				: x >= 0 && x <= (json_int_t)UINT32_MAX		    ? "uint32"
				: x >= INT32_MIN && x < 0			    ? "int32"
				: x > 0						    ? "uint64"
										    : "int64";
		snprintf(buf, n, "%s", t);
		return 0;
	}
	case JSON_ARRAY: {
		size_t len = json_array_size(v);
		int strs = 0, bools = 0, reals = 0, ints = 0, arrs = 0, wide = 0;
		for (size_t i = 0; i < len; i++) {
			const json_t *e = json_array_get(v, i);
			strs += json_is_string(e);
			bools += json_is_boolean(e);
			reals += json_is_real(e);
			arrs += json_is_array(e);
			if (json_is_integer(e)) {
				ints++;
				wide |= json_integer_value(e) < INT32_MIN ||
					json_integer_value(e) > INT32_MAX;
			}
		}
		size_t sz = (size_t)len;
		if (sz == 0 || (size_t)ints == sz)
			snprintf(buf, n, "array[%s]", wide ? "int64" : "int32");
		else if ((size_t)strs == sz)
			snprintf(buf, n, "array[string]");
		else if ((size_t)bools == sz)
			snprintf(buf, n, "array[bool]");
		else if ((size_t)(reals + ints) == sz)
			snprintf(buf, n, "array[float32]");
		else if ((size_t)arrs == sz) {
			char inner[256];
			if (infer_type(key, json_array_get(v, 0), inner, sizeof inner) < 0)
				return -1;
			int k = snprintf(buf, n, "array[%s]", inner);
			if (k < 0 || (size_t)k >= n)
				return -1;
		} else
			return -1;
		return 0;
	}
	default:
		return -1;
	}
}

/* A number as GGUF type t: floats from f (is_float) or i; integer types
 * from i only. */
static void put_number(dbuf *d, int t, double f, int64_t i, int is_float)
{
	static const int bytes[GGUF_T_COUNT] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };
	if (t == GGUF_T_FLOAT32) {
		float x = is_float ? (float)f : (float)i;
		uint32_t b;
		memcpy(&b, &x, 4);
		db_le(d, b, 4);
	} else if (t == GGUF_T_FLOAT64) {
		double x = is_float ? f : (double)i;
		uint64_t b;
		memcpy(&b, &x, 8);
		db_le(d, b, 8);
	} else {
		db_le(d, (uint64_t)i, bytes[t]); /* integers only: callers check */
	}
}

static int desc_is_array(const char *desc)
{
	return !strncmp(desc, "array", 5) && (desc[5] == 0 || desc[5] == '[');
}

/* Type id of a description ("uint32", "array[...]"); -1 if unknown. */
static int desc_type(const char *desc)
{
	return desc_is_array(desc) ? GGUF_T_ARRAY : parse_vtype(desc, strlen(desc));
}

static int put_scalar(dbuf *d, int t, const json_t *v)
{
	static const struct {
		int t, bytes;
		long long lo;
		unsigned long long hi;
	} r[] = {
		{ GGUF_T_UINT8, 1, 0, 0xff },
		{ GGUF_T_INT8, 1, -128, 127 },
		{ GGUF_T_UINT16, 2, 0, 0xffff },
		{ GGUF_T_INT16, 2, -32768, 32767 },
		{ GGUF_T_UINT32, 4, 0, 0xffffffffull },
		{ GGUF_T_INT32, 4, INT32_MIN, INT32_MAX },
		{ GGUF_T_UINT64, 8, 0, INT64_MAX },
		{ GGUF_T_INT64, 8, INT64_MIN, INT64_MAX },
	};
	switch (t) {
	case GGUF_T_STRING:
		if (!json_is_string(v))
			return -1;
		db_str(d, json_string_value(v), json_string_length(v));
		return 0;
	case GGUF_T_BOOL:
		if (!json_is_boolean(v))
			return -1;
		db_le(d, json_is_true(v), 1);
		return 0;
	case GGUF_T_FLOAT32:
	case GGUF_T_FLOAT64:
		if (!json_is_number(v))
			return -1;
		put_number(d, t, json_number_value(v), 0, 1);
		return 0;
	}
	if (!json_is_integer(v))
		return -1;
	json_int_t x = json_integer_value(v);
	for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
		if (r[i].t == t) {
			if (x < r[i].lo || (x > 0 && (unsigned long long)x > r[i].hi))
				return -1;
			db_le(d, (uint64_t)x, r[i].bytes);
			return 0;
		}
	return -1;
}

/* Append the body of v as a value of type desc ("uint32", "array[int32]",
 * "array[array[string]]", or "array" with element types inferred). -1,
 * d unchanged, if v does not fit desc. */
static int put_value(dbuf *d, const char *desc, const json_t *v, const char *key)
{
	if (!desc_is_array(desc)) {
		int t = parse_vtype(desc, strlen(desc));
		return t < 0 ? -1 : put_scalar(d, t, v);
	}
	if (!json_is_array(v))
		return -1;
	char inf[256];
	if (desc[5] == 0) {
		if (infer_type(key, v, inf, sizeof inf) < 0 || !desc_is_array(inf) || !inf[5])
			return -1;
		return put_value(d, inf, v, key);
	}
	size_t dl = strlen(desc);
	if (desc[dl - 1] != ']' || dl - 7 >= sizeof inf)
		return -1;
	memcpy(inf, desc + 6, dl - 7); /* the element type */
	inf[dl - 7] = 0;
	int et = desc_type(inf);
	if (et < 0)
		return -1;
	size_t mark = d->n;
	db_le(d, (uint64_t)et, 4);
	db_le(d, json_array_size(v), 8);
	for (size_t i = 0; i < json_array_size(v); i++)
		if (put_value(d, inf, json_array_get(v, i), key) < 0) {
			d->n = mark;
			return -1;
		}
	return 0;
}

/* Writing state: the metadata buffer, the key count and the keys written. */
typedef struct gw {
	dbuf kv;
	uint64_t nkv;
	json_t *seen;
	json_t *types; /* manifest "gguf_types", may be NULL */
} gw;

/* One key: the recorded type if v fits it, else the inferred one. Keys
 * whose values GGUF cannot hold (maps, nulls, mixed arrays) are left out. */
static void put_kv(gw *w, const char *key, const json_t *v)
{
	if (json_object_get(w->seen, key))
		return;
	const char *rec = json_string_value(json_object_get(w->types, key));
	char inf[256];
	const char *cand[2] = { rec, infer_type(key, v, inf, sizeof inf) == 0 ? inf : NULL };
	for (int i = 0; i < 2; i++) {
		int t = cand[i] ? desc_type(cand[i]) : -1;
		if (t < 0)
			continue;
		size_t mark = w->kv.n;
		db_str(&w->kv, key, strlen(key));
		db_le(&w->kv, (uint64_t)t, 4);
		if (put_value(&w->kv, cand[i], v, key) == 0) {
			w->nkv++;
			json_object_set_new(w->seen, key, json_true());
			return;
		}
		w->kv.n = mark;
	}
}

static void put_map(gw *w, const char *prefix, const json_t *map, const char *skip)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)map, k, v) {
		if (skip && !strcmp(k, skip))
			continue;
		size_t l = strlen(prefix) + strlen(k) + 1;
		char *key = slm_xmalloc(l);
		snprintf(key, l, "%s%s", prefix, k);
		put_kv(w, key, v);
		free(key);
	}
}

/* Element type of a vocabulary array: recorded, else the default. */
static int vocab_elem_type(gw *w, const char *key, int dflt)
{
	const char *rec = json_string_value(json_object_get(w->types, key));
	if (rec && strlen(rec) > 7 && !strncmp(rec, "array[", 6)) {
		int t = parse_vtype(rec + 6, strlen(rec) - 7);
		if (t >= 0 && t != GGUF_T_STRING && t != GGUF_T_BOOL)
			return t;
	}
	return dflt;
}

/* The vocabulary member's arrays as tokenizer.ggml.* keys. */
static int put_vocab(gw *w, const slm_bundle *b, const slm_member *mem, slm_err *err)
{
	static const char *const keys[] = { KEY_TOKENS, KEY_SCORES, KEY_TYPES, KEY_MERGES };
	msgpack_unpacked up;
	const msgpack_object *arr[CV_VOCAB_NKEYS];
	if (cv_vocab_arrays(b, mem, &up, arr, err) < 0) {
		msgpack_unpacked_destroy(&up);
		return -1;
	}
	int rc = 0;
	for (int j = 0; j < CV_VOCAB_NKEYS && rc == 0; j++) {
		const msgpack_object *a = arr[j];
		if (!a)
			continue;
		if ((j == CV_VOCAB_SCORES || j == CV_VOCAB_TYPES) && arr[CV_VOCAB_TOKENS] &&
		    a->via.array.size != arr[CV_VOCAB_TOKENS]->via.array.size) {
			rc = slm_seterr(err, EX_DATAERR,
					"%s: member '%s': '%s' is not an array with one entry per token",
					bundle_path(b), mem->name, cv_vocab_keys[j]);
			break;
		}
		int et = j == CV_VOCAB_TOKENS || j == CV_VOCAB_MERGES ? GGUF_T_STRING
			 : j == CV_VOCAB_SCORES ? vocab_elem_type(w, keys[j], GGUF_T_FLOAT32)
						: vocab_elem_type(w, keys[j], GGUF_T_INT32);
		size_t mark = w->kv.n;
		db_str(&w->kv, keys[j], strlen(keys[j]));
		db_le(&w->kv, GGUF_T_ARRAY, 4);
		db_le(&w->kv, (uint64_t)et, 4);
		db_le(&w->kv, a->via.array.size, 8);
		for (uint32_t i = 0; i < a->via.array.size && rc == 0; i++) {
			const msgpack_object *e = &a->via.array.ptr[i];
			if (et == GGUF_T_STRING && e->type == MSGPACK_OBJECT_STR)
				db_str(&w->kv, e->via.str.ptr, e->via.str.size);
			else if ((et == GGUF_T_FLOAT32 || et == GGUF_T_FLOAT64) &&
				 (e->type == MSGPACK_OBJECT_FLOAT32 ||
				  e->type == MSGPACK_OBJECT_FLOAT64))
				put_number(&w->kv, et, e->via.f64, 0, 1);
			else if (et != GGUF_T_STRING &&
				 e->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
				put_number(&w->kv, et, 0, (int64_t)e->via.u64, 0);
			else if (et != GGUF_T_STRING &&
				 e->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
				put_number(&w->kv, et, 0, e->via.i64, 0);
			else
				rc = slm_seterr(err, EX_DATAERR,
						"%s: member '%s': '%s' entry %u has the wrong type",
						bundle_path(b), mem->name, cv_vocab_keys[j], i);
		}
		if (rc < 0) {
			w->kv.n = mark;
			break;
		}
		w->nkv++;
		json_object_set_new(w->seen, keys[j], json_true());
	}
	msgpack_unpacked_destroy(&up);
	return rc;
}

static int fput(FILE *fp, const void *p, size_t n, const char *out, slm_err *err)
{
	if (n && fwrite(p, 1, n, fp) != n)
		return slm_seterr(err, EX_IOERR, "%s: write error: %s", out, strerror(errno));
	return 0;
}

static int fpad(FILE *fp, uint64_t pos, uint64_t align, const char *out, slm_err *err)
{
	static const uint8_t zero[256];
	uint64_t r = (align - pos % align) % align;
	while (r > 0) {
		size_t k = r > sizeof zero ? sizeof zero : (size_t)r;
		if (fput(fp, zero, k, out, err) < 0)
			return -1;
		r -= k;
	}
	return 0;
}

/* n bytes of the bundle file at off (a tensor's) into buf, whole */
static int read_at(int fd, uint8_t *buf, size_t n, uint64_t off, const slm_bundle *b,
		   const slm_tensor *t, slm_err *err)
{
	for (size_t got = 0; got < n;) {
		ssize_t x = pread(fd, buf + got, n - got, (off_t)(off + got));
		if (x < 0 && errno == EINTR)
			continue;
		if (x <= 0)
			return slm_seterr(err, EX_IOERR, "%s: tensor '%s': %s", bundle_path(b),
					  t->name, x < 0 ? strerror(errno) : "file shrank");
		got += (size_t)x;
	}
	return 0;
}

/* A tile16 tensor as GGUF's plain rows: whole tiles at a time, read with
 * pread (fd >= 0) or from the mapping, and turned back into rows. */
static int put_untiled(FILE *fp, int fd, const slm_bundle *b, const slm_tensor *t,
		       const char *name, slm_err *err)
{
	const int64_t n = (int64_t)t->ne[0], nrows = (int64_t)t->ne[1];
	const size_t rb = (size_t)(n / t->dtype->block_elems) * t->dtype->block_bytes;
	const size_t tb = DTYPE_TILE * rb;
	const int64_t per = (1 << 20) / tb ? (int64_t)((1 << 20) / tb) * DTYPE_TILE : DTYPE_TILE;
	uint8_t *in = slm_xmalloc((size_t)per * rb), *out = slm_xmalloc((size_t)per * rb);
	int rc = 0;
	for (int64_t r = 0; r < nrows && rc == 0;) {
		int64_t k = nrows - r < per ? nrows - r : per;
		/* whole tiles, or the plain rows after them */
		if (r < nrows / DTYPE_TILE * DTYPE_TILE)
			k = k / DTYPE_TILE * DTYPE_TILE;
		size_t want = (size_t)k * rb;
		const uint8_t *src = (const uint8_t *)t->data + (size_t)r * rb;
		if (fd >= 0) {
			rc = read_at(fd, in, want, t->member->offset + (size_t)r * rb, b, t, err);
			src = in;
		}
		/* k rows starting at a tile (or all plain): a matrix of its own */
		if (rc == 0) {
			dtype_untile_rows(t->dtype, n, r + k <= nrows / DTYPE_TILE * DTYPE_TILE ? k : 0,
					  src, 0, k, out);
			rc = fput(fp, out, want, name, err);
		}
		r += k;
	}
	free(in);
	free(out);
	return rc;
}

int cv_bundle_to_gguf(const slm_bundle *b, const char *out, slm_err *err)
{
	json_t *man = bundle_manifest(b);
	const char *name = out && strcmp(out, "-") ? out : "standard output";
	json_t *prov = json_object_get(man, "provenance");
	json_t *general = json_object_get(prov, "general");
	const char *arch = bundle_str(b, "arch");
	if (!strcmp(arch, "tokenizer"))
		arch = json_string_value(json_object_get(general, "architecture"));
	if (!arch)
		return slm_seterr(err, EX_DATAERR,
				  "%s: a tokenizer bundle without provenance.general.architecture "
				  "has no GGUF architecture", bundle_path(b));

	uint64_t align = GGUF_DEFAULT_ALIGNMENT;
	json_t *ja = json_object_get(general, "alignment");
	if (json_is_integer(ja)) {
		json_int_t a = json_integer_value(ja);
		if (a < 1 || a > (1 << 30) || (a & (a - 1)))
			return slm_seterr(err, EX_DATAERR,
					  "%s: provenance.general.alignment %lld is not a power of two",
					  bundle_path(b), (long long)a);
		align = (uint64_t)a;
	}

	gw w = { .seen = json_object(), .types = json_object_get(man, "gguf_types") };
	json_t *archv = json_string(arch);
	put_kv(&w, "general.architecture", archv);
	json_decref(archv);
	/* generation first: it wins over provenance.general.sampling.* */
	json_t *generation = json_object_get(man, "generation");
	for (size_t i = 0; i < N_SAMPLING; i++) {
		json_t *v = json_object_get(generation, sampling_map[i][1]);
		char key[64];
		snprintf(key, sizeof key, "general.sampling.%s", sampling_map[i][0]);
		if (json_is_number(v))
			put_kv(&w, key, v);
	}
	if (json_is_object(general))
		put_map(&w, "general.", general, NULL);
	json_t *hp = json_object_get(man, "hparams");
	if (json_is_object(hp)) {
		size_t l = strlen(arch) + 2;
		char *prefix = slm_xmalloc(l);
		snprintf(prefix, l, "%s.", arch);
		put_map(&w, prefix, hp, "tied_embeddings");
		free(prefix);
	}
	json_t *tok = json_object_get(man, "tokenizer");
	if (json_is_object(tok))
		put_map(&w, "tokenizer.ggml.", tok, "member");
	const char *vm = json_string_value(json_object_get(tok, "member"));
	if (vm) {
		const slm_member *mem = bundle_find_member(b, vm);
		if (!mem) {
			json_decref(w.seen);
			free(w.kv.p);
			return slm_seterr(err, EX_DATAERR, "%s: no vocabulary member '%s'",
					  bundle_path(b), vm);
		}
		if (put_vocab(&w, b, mem, err) < 0) {
			json_decref(w.seen);
			free(w.kv.p);
			return -1;
		}
	}
	json_t *tmpl = json_object_get(man, "chat_template");
	if (json_is_string(tmpl))
		put_kv(&w, "tokenizer.chat_template", tmpl);
	json_t *extra = json_object_get(man, "gguf_extra");
	if (json_is_object(extra))
		put_map(&w, "", extra, NULL);
	json_decref(w.seen);

	/* header, key/values, tensor infos, padding, data */
	dbuf h = { 0 };
	db_put(&h, "GGUF", 4);
	db_le(&h, 3, 4);
	db_le(&h, bundle_n_tensors(b), 8);
	db_le(&h, w.nkv, 8);
	db_put(&h, w.kv.p, w.kv.n);
	free(w.kv.p);
	uint64_t off = 0;
	for (size_t i = 0; i < bundle_n_tensors(b); i++) {
		const slm_tensor *t = bundle_tensor_at(b, i);
		db_str(&h, t->name, strlen(t->name));
		db_le(&h, (uint64_t)t->ndim, 4);
		for (int j = 0; j < t->ndim; j++)
			db_le(&h, t->ne[j], 8);
		db_le(&h, (uint64_t)t->dtype->ggml_id, 4);
		db_le(&h, off, 8);
		off += t->size;
		off += (align - off % align) % align;
	}

	slm_afile af;
	if (slm_afile_open(&af, out, err) < 0) {
		free(h.p);
		return -1;
	}
	int rc = fput(af.fp, h.p, h.n, name, err);
	if (rc == 0)
		rc = fpad(af.fp, h.n, align, name, err);
	free(h.p);
	/* An uncompressed bundle file is read with pread in chunks rather
	 * than through its mapping, so its pages do not pile up in memory. */
	int fd = -1;
	struct stat st;
	if (!bundle_is_compressed(b) && strcmp(bundle_path(b), "-") &&
	    (fd = open(bundle_path(b), O_RDONLY | O_CLOEXEC)) >= 0 &&
	    (fstat(fd, &st) != 0 || (uint64_t)st.st_size != bundle_file_size(b))) {
		close(fd);
		fd = -1;
	}
	uint8_t *chunk = fd >= 0 ? slm_xmalloc(1 << 20) : NULL;
	for (size_t i = 0; i < bundle_n_tensors(b) && rc == 0; i++) {
		const slm_tensor *t = bundle_tensor_at(b, i);
		if (t->tiled) {
			rc = put_untiled(af.fp, fd, b, t, name, err);
		} else if (fd < 0) {
			rc = fput(af.fp, t->data, (size_t)t->size, name, err);
		}
		for (uint64_t done = 0; fd >= 0 && !t->tiled && done < t->size && rc == 0;) {
			size_t want = t->size - done < (1 << 20) ? (size_t)(t->size - done) : (1 << 20);
			rc = read_at(fd, chunk, want, t->member->offset + done, b, t, err);
			if (rc == 0)
				rc = fput(af.fp, chunk, want, name, err);
			done += want;
		}
		if (rc == 0)
			rc = fpad(af.fp, t->size, align, name, err);
	}
	free(chunk);
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		slm_afile_abort(&af);
		return -1;
	}
	return slm_afile_commit(&af, err);
}
