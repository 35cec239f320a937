/*
 * convert.c - the source-independent half of slm-convert: the cv_model
 * that every importer fills, and cv_write_bundle, which streams its
 * tensors into a bundle one at a time (peak memory: the largest produced
 * tensor plus the packed vocabulary).
 */
#include "convert.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

void cv_model_init(cv_model *m)
{
	memset(m, 0, sizeof *m);
	m->manifest = json_object();
}

void cv_model_free(cv_model *m)
{
	cv_vocab *v = &m->vocab;
	if (v->own_strings) {
		for (size_t i = 0; i < v->n; i++)
			free((void *)v->tok[i]);
		for (size_t i = 0; i < v->nmerges; i++)
			free((void *)v->merge[i]);
	}
	free(v->tok);
	free(v->tok_len);
	free(v->scores);
	free(v->types);
	free(v->merge);
	free(v->merge_len);
	for (size_t i = 0; i < m->nt; i++)
		free(m->t[i].name);
	free(m->t);
	json_decref(m->manifest);
	while (m->nres > 0) {
		m->nres--;
		m->res_free[m->nres](m->res[m->nres]);
	}
	memset(m, 0, sizeof *m);
}

void cv_model_hold(cv_model *m, void *r, void (*fn)(void *))
{
	if (m->nres == sizeof m->res / sizeof m->res[0])
		slm_die(EX_SOFTWARE, "cv_model_hold: more than %zu resources",
			sizeof m->res / sizeof m->res[0]);
	m->res[m->nres] = r;
	m->res_free[m->nres] = fn;
	m->nres++;
}

cv_tensor *cv_add_tensor(cv_model *m, const char *name, const slm_dtype *dt,
			 int ndim, const uint64_t *ne, slm_err *err)
{
	if (ndim < 1 || ndim > SLM_MAX_DIMS) {
		slm_seterr(err, EX_DATAERR, "tensor '%s': %d dimensions (1 to %d allowed)",
			   name, ndim, SLM_MAX_DIMS);
		return NULL;
	}
	uint64_t n = 1, size;
	for (int i = 0; i < ndim; i++) {
		if (ne[i] < 1 || ne[i] > (uint64_t)INT64_MAX || slm_mul_ok(n, ne[i], &n) < 0 ||
		    n > (uint64_t)INT64_MAX) {
			slm_seterr(err, EX_DATAERR,
				   "tensor '%s': dimension %d is zero or the element count overflows",
				   name, i);
			return NULL;
		}
	}
	if (dtype_nbytes(dt, ne[0], n, &size) < 0 || size > (uint64_t)INT64_MAX) {
		slm_seterr(err, EX_DATAERR,
			   "tensor '%s': a row of %llu elements does not fit %s blocks of %u",
			   name, (unsigned long long)ne[0], dt->name, dt->block_elems);
		return NULL;
	}
	for (size_t i = 0; i < m->nt; i++)
		if (!strcmp(m->t[i].name, name)) {
			slm_seterr(err, EX_DATAERR, "duplicate tensor '%s'", name);
			return NULL;
		}
	if (m->nt == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->t = slm_xrealloc(m->t, m->cap * sizeof *m->t);
	}
	cv_tensor *t = &m->t[m->nt++];
	memset(t, 0, sizeof *t);
	t->name = slm_xstrdup(name);
	t->dtype = dt;
	t->ndim = ndim;
	for (int i = 0; i < SLM_MAX_DIMS; i++)
		t->ne[i] = i < ndim ? ne[i] : 1;
	t->size = size;
	return t;
}

const char *const cv_vocab_keys[CV_VOCAB_NKEYS] = { "tokens", "scores", "token_type",
						      "merges" };

static void pack_bytes(msgpack_packer *pk, const uint8_t *p, uint32_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, p, n);
}

static void pack_key(msgpack_packer *pk, const char *k)
{
	pack_bytes(pk, (const uint8_t *)k, (uint32_t)strlen(k));
}

/* The vocabulary member (see SLM_VOCAB_MEMBER): keys in sorted order. */
static void pack_vocab(const cv_vocab *v, msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1 + (v->nmerges > 0) + (v->scores != NULL) +
				      (v->types != NULL));
	if (v->nmerges > 0) {
		pack_key(&pk, cv_vocab_keys[CV_VOCAB_MERGES]);
		msgpack_pack_array(&pk, v->nmerges);
		for (size_t i = 0; i < v->nmerges; i++)
			pack_bytes(&pk, v->merge[i], v->merge_len[i]);
	}
	if (v->scores) {
		pack_key(&pk, cv_vocab_keys[CV_VOCAB_SCORES]);
		msgpack_pack_array(&pk, v->n);
		for (size_t i = 0; i < v->n; i++)
			msgpack_pack_float(&pk, v->scores[i]);
	}
	if (v->types) {
		pack_key(&pk, cv_vocab_keys[CV_VOCAB_TYPES]);
		msgpack_pack_array(&pk, v->n);
		for (size_t i = 0; i < v->n; i++)
			msgpack_pack_int32(&pk, v->types[i]);
	}
	pack_key(&pk, cv_vocab_keys[CV_VOCAB_TOKENS]);
	msgpack_pack_array(&pk, v->n);
	for (size_t i = 0; i < v->n; i++)
		pack_bytes(&pk, v->tok[i], v->tok_len[i]);
}

int cv_vocab_arrays(const slm_bundle *b, const slm_member *mem, msgpack_unpacked *up,
		    const msgpack_object *arr[CV_VOCAB_NKEYS], slm_err *err)
{
	size_t off = 0;
	msgpack_unpacked_init(up);
	if (msgpack_unpack_next(up, (const char *)mem->data, mem->size, &off) !=
		    MSGPACK_UNPACK_SUCCESS ||
	    up->data.type != MSGPACK_OBJECT_MAP)
		return slm_seterr(err, EX_DATAERR, "%s: member '%s': not a msgpack map",
				  bundle_path(b), mem->name);
	const msgpack_object_map *mp = &up->data.via.map;
	for (int j = 0; j < CV_VOCAB_NKEYS; j++)
		arr[j] = NULL;
	for (uint32_t i = 0; i < mp->size; i++) {
		const msgpack_object *k = &mp->ptr[i].key;
		for (int j = 0; j < CV_VOCAB_NKEYS; j++)
			if (k->type == MSGPACK_OBJECT_STR &&
			    k->via.str.size == strlen(cv_vocab_keys[j]) &&
			    !memcmp(k->via.str.ptr, cv_vocab_keys[j], k->via.str.size))
				arr[j] = &mp->ptr[i].val;
	}
	for (int j = 0; j < CV_VOCAB_NKEYS; j++)
		if (arr[j] && arr[j]->type != MSGPACK_OBJECT_ARRAY)
			return slm_seterr(err, EX_DATAERR, "%s: member '%s': '%s' is not an array",
					  bundle_path(b), mem->name, cv_vocab_keys[j]);
	return 0;
}

int cv_write_bundle(cv_model *m, const char *out, int gzip, int tile,
		    void (*progress)(void *arg, uint64_t done, uint64_t total),
		    void *progress_arg, slm_err *err)
{
	json_t *man = json_deep_copy(m->manifest);
	if (m->vocab.n > 0) {
		json_t *tok = json_object_get(man, "tokenizer");
		if (!json_is_object(tok)) {
			tok = json_object();
			json_object_set_new(man, "tokenizer", tok);
		}
		json_object_set_new(tok, "member", json_string(SLM_VOCAB_MEMBER));
	}
	slm_bwriter *w = bwriter_new(man);
	json_decref(man);

	uint64_t biggest = 0, biggest_tiled = 0;
	for (size_t i = 0; i < m->nt; i++) {
		const cv_tensor *t = &m->t[i];
		int tl = tile && bundle_tile_wanted(t->dtype, t->ndim, t->ne);
		if (bwriter_add_tensor_l(w, t->name, t->dtype, t->ndim, t->ne, tl, err) < 0) {
			bwriter_abort(w);
			return -1;
		}
		if (!t->src && t->produce && t->size > biggest)
			biggest = t->size;
		if (tl && t->size > biggest_tiled)
			biggest_tiled = t->size;
		if (!t->src && !t->produce) {
			bwriter_abort(w);
			return slm_seterr(err, EX_SOFTWARE, "tensor '%s' has no data", t->name);
		}
	}
	msgpack_sbuffer vocab;
	msgpack_sbuffer_init(&vocab);
	if (m->vocab.n > 0) {
		pack_vocab(&m->vocab, &vocab);
		if (bwriter_add_member(w, SLM_VOCAB_MEMBER, vocab.size, err) < 0) {
			msgpack_sbuffer_destroy(&vocab);
			bwriter_abort(w);
			return -1;
		}
	}
	if (biggest > SIZE_MAX || biggest_tiled > SIZE_MAX) {
		msgpack_sbuffer_destroy(&vocab);
		bwriter_abort(w);
		return slm_seterr(err, EX_OSERR, "a tensor of %llu bytes does not fit in memory",
				  (unsigned long long)biggest);
	}
	if (bwriter_open(w, out, gzip, err) < 0) { /* aborts w itself */
		msgpack_sbuffer_destroy(&vocab);
		return -1;
	}
	uint8_t *buf = biggest ? slm_xmalloc((size_t)biggest) : NULL;
	uint8_t *tbuf = biggest_tiled ? slm_xmalloc((size_t)biggest_tiled) : NULL;
	int rc = 0;
	for (size_t i = 0; i < m->nt && rc == 0; i++) {
		const cv_tensor *t = &m->t[i];
		const uint8_t *p = t->src;
		if (!p) {
			rc = t->produce(t, buf, err);
			p = buf;
		}
		if (rc == 0 && tile && bundle_tile_wanted(t->dtype, t->ndim, t->ne)) {
			dtype_tile(t->dtype, (int64_t)t->ne[0], (int64_t)t->ne[1], p, tbuf);
			p = tbuf;
		}
		if (rc == 0)
			rc = bwriter_write(w, p, (size_t)t->size, err);
		if (rc == 0 && progress)
			progress(progress_arg, i + 1, m->nt);
	}
	free(buf);
	free(tbuf);
	if (rc == 0 && vocab.size > 0)
		rc = bwriter_write(w, vocab.data, vocab.size, err);
	msgpack_sbuffer_destroy(&vocab);
	if (rc < 0) {
		bwriter_abort(w);
		return -1;
	}
	return bwriter_close(w, err); /* aborts w on failure */
}
