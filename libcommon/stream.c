/*
 * stream.c - token stream reader and writer. The reader pulls bytes with
 * read(2) and hands out each record as soon as it is complete, so tools
 * in a pipeline act on a prompt while the next is still being written.
 */
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpjson.h"

struct slm_sreader {
	int fd;
	int own_fd;
	char *name;
	uint8_t *buf;
	size_t cap, start, end; /* unread bytes are buf[start..end) */
	uint64_t consumed;      /* stream offset of buf[start] */
	uint64_t nrec;          /* records returned so far */
	uint64_t line;          /* JSON: current line number */
	int mode;               /* 0 unknown, 1 msgpack, 2 JSON lines */
	int eof;
};

slm_sreader *sreader_new(int fd, const char *name)
{
	slm_sreader *r = slm_xcalloc(1, sizeof *r);
	r->fd = fd;
	r->name = slm_xstrdup(name);
	r->cap = 1 << 16;
	r->buf = slm_xmalloc(r->cap);
	return r;
}

slm_sreader *sreader_open(const char *path, slm_err *err)
{
	if (!path || !strcmp(path, "-"))
		return sreader_new(0, "standard input");
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		slm_seterr(err, errno == ENOENT ? EX_NOINPUT : EX_IOERR, "%s: %s",
			   path, strerror(errno));
		return NULL;
	}
	slm_sreader *r = sreader_new(fd, path);
	r->own_fd = 1;
	return r;
}

void sreader_free(slm_sreader *r)
{
	if (!r)
		return;
	if (r->own_fd)
		close(r->fd);
	free(r->name);
	free(r->buf);
	free(r);
}

int sreader_is_json(const slm_sreader *r)
{
	return r->mode == 2;
}

/* Read more bytes; 1 if some arrived, 0 at EOF, -1 on error. */
static int fill(slm_sreader *r, slm_err *err)
{
	if (r->eof)
		return 0;
	if (r->start > 0 && r->start == r->end) {
		r->start = r->end = 0;
	} else if (r->start > r->cap / 2) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->end == r->cap) {
		if (r->start > 0) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		} else {
			r->cap *= 2;
			r->buf = slm_xrealloc(r->buf, r->cap);
		}
	}
	for (;;) {
		ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return slm_seterr(err, EX_IOERR, "%s: read: %s", r->name,
					  strerror(errno));
		if (n == 0) {
			r->eof = 1;
			return 0;
		}
		r->end += (size_t)n;
		return 1;
	}
}

static int bad(slm_sreader *r, slm_err *err, uint64_t pos, const char *why)
{
	if (r->mode == 2)
		return slm_seterr(err, EX_DATAERR, "%s: line %llu: %s", r->name,
				  (unsigned long long)r->line, why);
	return slm_seterr(err, EX_DATAERR, "%s: byte %llu (record %llu): %s",
			  r->name, (unsigned long long)pos,
			  (unsigned long long)r->nrec + 1, why);
}

/* by slm_rec_type */
static const char *const type_names[] = { "header", "seq", "tok", "end", "error", "score" };

int stream_rec_type(const json_t *rec)
{
	const char *t = json_string_value(json_object_get(rec, "type"));
	if (!t)
		return -1;
	for (int i = 0; i < (int)(sizeof type_names / sizeof type_names[0]); i++)
		if (!strcmp(t, type_names[i]))
			return i;
	return -1;
}

static int valid_id(const json_t *id)
{
	return id && (json_is_string(id) || json_is_integer(id));
}

/* A token id or a position: an integer from 0 to 2147483647. */
static int valid_index(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0 &&
	       json_integer_value(v) <= INT32_MAX;
}

int stream_check(const json_t *rec, const char **why)
{
	if (!json_is_object(rec)) {
		*why = "record is not a map";
		return -1;
	}
	const json_t *t = json_object_get(rec, "type");
	if (!json_is_string(t)) {
		*why = "record has no 'type' string";
		return -1;
	}
	const json_t *id = json_object_get(rec, "id");
	switch (stream_rec_type(rec)) {
	case SLM_REC_HEADER: {
		const json_t *v = json_object_get(rec, "version");
		if (!json_is_integer(v)) {
			*why = "header record: 'version' must be an integer";
			return -1;
		}
		if (json_integer_value(v) < 1 ||
		    json_integer_value(v) > SLM_STREAM_VERSION) {
			*why = "header record: unsupported stream version";
			return -1;
		}
		return 0;
	}
	case SLM_REC_SEQ: {
		if (!valid_id(id)) {
			*why = "seq record: 'id' must be a string or an integer";
			return -1;
		}
		const json_t *toks = json_object_get(rec, "tokens");
		if (!json_is_array(toks)) {
			*why = "seq record: 'tokens' must be an array";
			return -1;
		}
		size_t i;
		const json_t *v;
		json_array_foreach(toks, i, v) {
			if (!valid_index(v)) {
				*why = "seq record: 'tokens' must hold token ids (integers 0..2147483647)";
				return -1;
			}
		}
		const json_t *meta = json_object_get(rec, "meta");
		if (meta && !json_is_object(meta)) {
			*why = "seq record: 'meta' must be a map";
			return -1;
		}
		return 0;
	}
	case SLM_REC_TOK: {
		if (!valid_id(id)) {
			*why = "tok record: 'id' must be a string or an integer";
			return -1;
		}
		if (!valid_index(json_object_get(rec, "token"))) {
			*why = "tok record: 'token' must be a token id";
			return -1;
		}
		const json_t *lp = json_object_get(rec, "logprob");
		if (lp && !json_is_number(lp)) {
			*why = "tok record: 'logprob' must be a number";
			return -1;
		}
		return 0;
	}
	case SLM_REC_END:
		if (!valid_id(id)) {
			*why = "end record: 'id' must be a string or an integer";
			return -1;
		}
		if (!json_is_string(json_object_get(rec, "reason"))) {
			*why = "end record: 'reason' must be a string";
			return -1;
		}
		return 0;
	case SLM_REC_SCORE: {
		if (!valid_id(id)) {
			*why = "score record: 'id' must be a string or an integer";
			return -1;
		}
		if (!valid_index(json_object_get(rec, "pos"))) {
			*why = "score record: 'pos' must be a position (integer 0..2147483647)";
			return -1;
		}
		if (!valid_index(json_object_get(rec, "token"))) {
			*why = "score record: 'token' must be a token id";
			return -1;
		}
		if (!json_is_number(json_object_get(rec, "logprob"))) {
			*why = "score record: 'logprob' must be a number";
			return -1;
		}
		return 0;
	}
	case SLM_REC_ERROR:
		if (id && !valid_id(id)) {
			*why = "error record: 'id' must be a string or an integer";
			return -1;
		}
		if (!json_is_string(json_object_get(rec, "message"))) {
			*why = "error record: 'message' must be a string";
			return -1;
		}
		return 0;
	default:
		*why = "unknown record type";
		return -1;
	}
}

static int next_msgpack(slm_sreader *r, json_t **rec, slm_err *err)
{
	for (;;) {
		size_t len = 0, errpos = 0;
		const char *why = NULL;
		int s = mpj_scan(r->buf + r->start, r->end - r->start,
				 SLM_STREAM_MAX_RECORD, &len, &errpos, &why);
		if (s < 0)
			return bad(r, err, r->consumed + errpos, why);
		if (s == 1) {
			json_t *v = mpj_decode(r->buf + r->start, len, &why);
			uint64_t pos = r->consumed;
			r->start += len;
			r->consumed += len;
			if (!v)
				return bad(r, err, pos, why);
			if (stream_check(v, &why) != 0) {
				json_decref(v);
				return bad(r, err, pos, why);
			}
			r->nrec++;
			*rec = v;
			return 1;
		}
		int f = fill(r, err);
		if (f < 0)
			return -1;
		if (f == 0) {
			if (r->end == r->start)
				return 0;
			return bad(r, err, r->consumed, "truncated record at end of input");
		}
	}
}

static int next_json(slm_sreader *r, json_t **rec, slm_err *err)
{
	size_t scanned = 0;
	for (;;) {
		uint8_t *s = r->buf + r->start;
		size_t avail = r->end - r->start;
		uint8_t *nl = memchr(s + scanned, '\n', avail - scanned);
		if (!nl && avail > SLM_STREAM_MAX_RECORD) {
			r->line++;
			return bad(r, err, r->consumed, "line exceeds the record size limit");
		}
		if (!nl) {
			scanned = avail;
			int f = fill(r, err);
			if (f < 0)
				return -1;
			if (f > 0)
				continue;
			if (avail == 0)
				return 0;
			nl = s + avail; /* last line without newline */
		}
		size_t linelen = (size_t)(nl - s);
		size_t adv = linelen + (nl < s + avail ? 1 : 0);
		r->line++;
		/* skip blank lines */
		size_t k = 0;
		while (k < linelen && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
			k++;
		if (k == linelen) {
			r->start += adv;
			r->consumed += adv;
			scanned = 0;
			if (r->start == r->end && r->eof)
				return 0;
			continue;
		}
		json_error_t je;
		json_t *v = json_loadb((const char *)s, linelen,
				       JSON_REJECT_DUPLICATES,
				       &je);
		r->start += adv;
		r->consumed += adv;
		if (!v) {
			char why[300];
			snprintf(why, sizeof why, "column %d: %s", je.column, je.text);
			return bad(r, err, 0, why);
		}
		const char *why = NULL;
		if (stream_check(v, &why) != 0) {
			json_decref(v);
			return bad(r, err, 0, why);
		}
		r->nrec++;
		*rec = v;
		return 1;
	}
}

int sreader_next(slm_sreader *r, json_t **rec, slm_err *err)
{
	*rec = NULL;
	if (r->mode == 0) {
		/* Decide the encoding from the first byte that is not blank. */
		for (;;) {
			while (r->start < r->end &&
			       (r->buf[r->start] == '\n' || r->buf[r->start] == ' ' ||
				r->buf[r->start] == '\t' || r->buf[r->start] == '\r')) {
				if (r->buf[r->start] == '\n')
					r->line++;
				r->start++;
				r->consumed++;
			}
			if (r->start < r->end)
				break;
			int f = fill(r, err);
			if (f < 0)
				return -1;
			if (f == 0)
				return 0;
		}
		r->mode = r->buf[r->start] == '{' ? 2 : 1;
	}
	return r->mode == 2 ? next_json(r, rec, err) : next_msgpack(r, rec, err);
}

struct slm_swriter {
	FILE *fp;
	int json;
};

slm_swriter *swriter_new(FILE *fp, int json)
{
	slm_swriter *w = slm_xcalloc(1, sizeof *w);
	w->fp = fp;
	w->json = json;
	return w;
}

void swriter_free(slm_swriter *w)
{
	free(w);
}

int swriter_put(slm_swriter *w, const json_t *rec, slm_err *err)
{
	int ok;
	if (w->json) {
		ok = json_dumpf(rec, w->fp, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0 &&
		     fputc('\n', w->fp) != EOF;
	} else {
		char *buf;
		size_t n;
		mpj_encode(rec, &buf, &n);
		ok = fwrite(buf, 1, n, w->fp) == n;
		free(buf);
	}
	if (!ok || fflush(w->fp) != 0)
		return slm_seterr(err, EX_IOERR, "write error: %s", strerror(errno));
	return 0;
}

json_t *stream_header(const char *vocab_digest, const char *bundle)
{
	json_t *r = json_pack("{s:s, s:i}", "type", "header", "version",
			      SLM_STREAM_VERSION);
	if (vocab_digest)
		json_object_set_new(r, "vocab", json_string(vocab_digest));
	if (bundle)
		json_object_set_new(r, "bundle", json_string(bundle));
	return r;
}

json_t *stream_seq(const json_t *id, const int32_t *tokens, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer(tokens[i]));
	return json_pack("{s:s, s:O, s:o}", "type", "seq", "id", id, "tokens", a);
}

json_t *stream_tok(const json_t *id, int32_t token)
{
	return json_pack("{s:s, s:O, s:i}", "type", "tok", "id", id, "token",
			 (int)token);
}

json_t *stream_end(const json_t *id, const char *reason)
{
	return json_pack("{s:s, s:O, s:s}", "type", "end", "id", id, "reason",
			 reason);
}

json_t *stream_score(const json_t *id, int pos, int32_t token, double logprob)
{
	return json_pack("{s:s, s:O, s:i, s:i, s:f}", "type", "score", "id", id, "pos", pos,
			 "token", (int)token, "logprob", logprob);
}

json_t *stream_error(const json_t *id, const char *message)
{
	json_t *r = json_pack("{s:s, s:s}", "type", "error", "message", message);
	if (id)
		json_object_set(r, "id", (json_t *)id);
	return r;
}
