/*
 * unit-tok.c - tokenizer exactness. For every vocabulary in
 * $SLM_SHARED/vocab (default $top_srcdir/../shared) that has test vectors
 * (*.gguf.inp / *.gguf.out, ids made by the models' Hugging Face
 * tokenizers): each case must give exactly the expected ids (no BOS,
 * special tokens not parsed), and decoding must give the text back where
 * the tokenizer is lossless. Then the goldens in tests/data/tok/ (JSON,
 * made by scripts/make-tok-golden.py with llama-cpp-python) for the
 * real models cached under ${SLM_CACHE:-$HOME/.cache/slm}/models, and a
 * few API checks. Without the shared vocabularies: skip (exit 77).
 */
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"
#include "tok.h"
#include "unit.h"
#include "vocab.h" /* vocab_from_gguf_pre */

static char *read_all(const char *path, size_t *n)
{
	slm_err err;
	char *d;
	if (slm_read_file(path, &d, n, &err) < 0)
		return NULL;
	return d;
}

/* The shared directory; NULL if absent. */
static const char *shared_dir(char *buf, size_t cap)
{
	const char *s = getenv("SLM_SHARED");
	if (s && *s) {
		snprintf(buf, cap, "%s", s);
	} else {
		const char *top = getenv("top_srcdir");
		snprintf(buf, cap, "%s/../shared", top && *top ? top : ".");
	}
	char vd[4200];
	snprintf(vd, sizeof vd, "%s/vocab", buf);
	DIR *d = opendir(vd);
	if (!d)
		return NULL;
	closedir(d);
	return buf;
}

static void show_ids(const char *what, const int32_t *ids, size_t n)
{
	char line[2048];
	size_t o = 0;
	for (size_t i = 0; i < n && o + 16 < sizeof line; i++)
		o += (size_t)snprintf(line + o, sizeof line - o, "%s%d", i ? " " : "", ids[i]);
	diag("%s: %s", what, line);
}

static int same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
	return na == nb && (na == 0 || !memcmp(a, b, na * sizeof *a));
}

/* A printable label for a case: its first characters. */
static void label(char *out, size_t cap, const char *t, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < cap && i < 24; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c == '\t') {
			out[o++] = '\\';
			out[o++] = 't';
		} else if (c < 32 || c == '#') {
			out[o++] = '?';
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = 0;
}

/* Is decode(encode(text)) == text expected? Byte-level BPE: always.
 * SentencePiece: when no unknown token came out. WordPiece: never. */
static int lossless(const tok_vocab *v, const int32_t *ids, size_t n)
{
	if (tok_kind(v) == TOK_BPE)
		return 1;
	if (tok_kind(v) == TOK_WPM)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (ids[i] == tok_unk(v))
			return 0;
	return 1;
}

static void check_roundtrip(const tok_vocab *v, const char *name, int k,
			    const char *text, size_t len, const int32_t *ids, size_t n)
{
	if (!lossless(v, ids, n))
		return;
	char *out;
	size_t ol;
	slm_err err;
	if (!ok(tok_decode(v, ids, n, 0, &out, &ol, &err) == 0, "%s case %d: decodes", name, k))
		return;
	int same = ol == len && !memcmp(out, text, len);
	if (!ok(same, "%s case %d: decode(encode(text)) == text", name, k))
		diag("got %zu bytes '%.*s'", ol, (int)(ol > 200 ? 200 : ol), out);
	free(out);
}

/* Split an .inp file into its cases. */
static size_t split_cases(char *inp, size_t n, char ***texts, size_t **lens)
{
	static const char sep[] = "\n__ggml_vocab_test__\n";
	size_t cap = 64, nc = 0;
	*texts = malloc(cap * sizeof **texts);
	*lens = malloc(cap * sizeof **lens);
	char *p = inp, *end = inp + n;
	while (p < end) {
		char *q = memmem(p, (size_t)(end - p), sep, sizeof sep - 1);
		if (!q)
			break;
		if (nc == cap) {
			cap *= 2;
			*texts = realloc(*texts, cap * sizeof **texts);
			*lens = realloc(*lens, cap * sizeof **lens);
		}
		(*texts)[nc] = p;
		(*lens)[nc] = (size_t)(q - p);
		nc++;
		p = q + sizeof sep - 1;
	}
	return nc;
}

static void test_vectors(const char *dir, const char *file)
{
	char path[8400], pin[8500], pout[8500];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	snprintf(pin, sizeof pin, "%s.inp", path);
	snprintf(pout, sizeof pout, "%s.out", path);
	size_t nin, nout;
	char *inp = read_all(pin, &nin), *outp = read_all(pout, &nout);
	if (!inp || !outp) {
		free(inp);
		free(outp);
		return; /* no test vectors for this one */
	}
	const char *name = file + (strncmp(file, "ggml-vocab-", 11) ? 0 : 11);
	slm_err err;
	gguf_file *g;
	tok_vocab *v = NULL;
	if (!ok(gguf_open(&g, path, &err) == 0, "%s: opens", name)) {
		diag("%s", err.msg);
		goto done;
	}
	int loaded = tok_vocab_from_gguf(&v, g, &err) == 0;
	gguf_close(g);
	if (!ok(loaded, "%s: vocabulary loads", name)) {
		diag("%s", err.msg);
		goto done;
	}
	char **texts;
	size_t *lens;
	size_t nc = split_cases(inp, nin, &texts, &lens);
	char *line = outp, *oend = outp + nout;
	int pass = 0;
	for (size_t k = 0; k < nc; k++) {
		char *nl = line < oend ? memchr(line, '\n', (size_t)(oend - line)) : NULL;
		if (!nl)
			nl = oend;
		*nl = 0;
		int32_t want[4096];
		size_t nw = 0;
		for (char *s = line, *e; *s && nw < 4096; s = e) {
			long x = strtol(s, &e, 10);
			if (e == s)
				break;
			want[nw++] = (int32_t)x;
		}
		line = nl + 1;
		int32_t *ids;
		size_t n;
		char lab[64];
		label(lab, sizeof lab, texts[k], lens[k]);
		if (tok_encode(v, texts[k], lens[k], 0, &ids, &n, &err) < 0) {
			ok(0, "%s case %zu '%s': %s", name, k, lab, err.msg);
			continue;
		}
		int same = same_ids(ids, n, want, nw);
		pass += same;
		if (!ok(same, "%s case %zu '%s'", name, k, lab)) {
			show_ids("got     ", ids, n);
			show_ids("expected", want, nw);
		}
		check_roundtrip(v, name, (int)k, texts[k], lens[k], ids, n);
		free(ids);
	}
	diag("%s: %d/%zu cases exact", name, pass, nc);
	free(texts);
	free(lens);
done:
	tok_vocab_free(v);
	free(inp);
	free(outp);
}

/* ---------------------------------------------------------------------
 * Goldens from llama-cpp-python
 * ------------------------------------------------------------------- */

static void test_golden(const char *vocab_dir, const char *path)
{
	json_error_t je;
	json_t *root = json_load_file(path, 0, &je);
	if (!ok(root != NULL, "%s: parses", path)) {
		diag("%s", je.text);
		return;
	}
	const char *model = json_string_value(json_object_get(root, "model"));
	const char *gguf = json_string_value(json_object_get(root, "gguf"));
	const char *base = json_string_value(json_object_get(root, "base"));
	const char *pre = json_string_value(json_object_get(root, "pre"));
	json_t *cases = json_object_get(root, "cases");
	if (!model || !(gguf || (base && pre)) || !json_is_array(cases)) {
		ok(0, "%s: has model, gguf (or base and pre) and cases", path);
		json_decref(root);
		return;
	}
	const char *cache = getenv("SLM_CACHE");
	const char *home = getenv("HOME");
	char mpath[8400];
	if (base)
		snprintf(mpath, sizeof mpath, "%s/%s", vocab_dir, base);
	else if (cache && *cache)
		snprintf(mpath, sizeof mpath, "%s/models/%s", cache, gguf);
	else
		snprintf(mpath, sizeof mpath, "%s/.cache/slm/models/%s", home ? home : "", gguf);
	slm_err err;
	gguf_file *g;
	if (gguf_open(&g, mpath, &err) < 0) {
		printf("ok %d # SKIP %s: %s not found%s%s\n", ++unit_run_, model, mpath,
		       base ? "" : "; scripts/fetch-models ", base ? "" : model);
		json_decref(root);
		return;
	}
	tok_vocab *v;
	int loaded = vocab_from_gguf_pre(&v, g, pre, &err) == 0;
	gguf_close(g);
	if (!ok(loaded, "%s: vocabulary loads", model)) {
		diag("%s", err.msg);
		json_decref(root);
		return;
	}
	size_t i, pass = 0;
	json_t *c;
	json_array_foreach(cases, i, c) {
		json_t *tj = json_object_get(c, "text");
		const char *text = json_string_value(tj);
		size_t len = json_string_length(tj);
		json_t *want = json_object_get(c, "ids");
		unsigned flags = (json_is_true(json_object_get(c, "special")) ? TOK_PARSE_SPECIAL : 0) |
				 (json_is_true(json_object_get(c, "add_bos")) ? TOK_ADD_SPECIAL : 0);
		int32_t *ids;
		size_t n;
		char lab[64];
		label(lab, sizeof lab, text ? text : "", text ? len : 0);
		if (!text || !json_is_array(want) ||
		    tok_encode(v, text, len, flags, &ids, &n, &err) < 0) {
			ok(0, "%s golden %zu: well-formed and encodes", model, i);
			continue;
		}
		int same = n == json_array_size(want);
		for (size_t j = 0; same && j < n; j++)
			same = json_integer_value(json_array_get(want, j)) == ids[j];
		pass += same;
		if (!ok(same, "%s golden %zu%s%s '%s'", model, i,
			flags & TOK_PARSE_SPECIAL ? " special" : "",
			flags & TOK_ADD_SPECIAL ? " bos" : "", lab)) {
			show_ids("got     ", ids, n);
			int32_t w[4096];
			size_t nw = 0;
			for (size_t j = 0; j < json_array_size(want) && nw < 4096; j++)
				w[nw++] = (int32_t)json_integer_value(json_array_get(want, j));
			show_ids("expected", w, nw);
		}
		if (!(flags & (TOK_PARSE_SPECIAL | TOK_ADD_SPECIAL)))
			check_roundtrip(v, model, (int)i, text, len, ids, n);
		free(ids);
	}
	diag("%s: %zu/%zu goldens exact", model, pass, json_array_size(cases));
	tok_vocab_free(v);
	json_decref(root);
}

/* ---------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------- */

static tok_vocab *load(const char *dir, const char *file)
{
	char path[8400];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	slm_err err;
	gguf_file *g;
	tok_vocab *v = NULL;
	if (gguf_open(&g, path, &err) < 0)
		return NULL;
	if (tok_vocab_from_gguf(&v, g, &err) < 0)
		diag("%s", err.msg);
	gguf_close(g);
	return v;
}

static void test_api(const char *dir)
{
	slm_err err;
	int32_t *ids;
	size_t n;
	char buf[64];

	is_int(tok_utf8_ready("ab\xe2\x96", 4), 2, "utf8_ready holds back a cut sequence");
	is_int(tok_utf8_ready("ab\xe2\x96\x81", 5), 5, "utf8_ready passes a whole one");
	is_int(tok_utf8_ready("a\x80", 2), 2, "utf8_ready passes a stray continuation byte");

	tok_vocab *v = load(dir, "ggml-vocab-llama-spm.gguf");
	if (ok(v != NULL, "llama-spm loads")) {
		is_int(tok_kind(v), TOK_SPM, "llama-spm is SentencePiece");
		is_int(tok_bos(v), 1, "llama-spm BOS");
		is_int(tok_eos(v), 2, "llama-spm EOS");
		is_int(tok_nl(v), 13, "llama-spm newline is <0x0A>");
		ok(tok_add_bos(v) && tok_add_space_prefix(v), "llama-spm adds BOS and a space prefix");
		tok_encode(v, "Hello", 5, TOK_ADD_SPECIAL, &ids, &n, &err);
		ok(n == 2 && ids[0] == 1, "TOK_ADD_SPECIAL adds BOS");
		size_t k = tok_piece(v, ids[1], 0, buf, sizeof buf);
		ok(k == 6 && !memcmp(buf, " Hello", 6), "piece of ▁Hello is ' Hello'");
		k = tok_piece(v, ids[1], TOK_LSTRIP, buf, sizeof buf);
		ok(k == 5 && !memcmp(buf, "Hello", 5), "TOK_LSTRIP drops the space");
		k = tok_piece(v, ids[1], 0, buf, 3);
		ok(k == 6 && !memcmp(buf, " He", 3), "a short buffer gets a prefix and the full length");
		is_int(tok_piece(v, 1, 0, buf, sizeof buf), 0, "BOS renders as nothing");
		k = tok_piece(v, 1, TOK_SHOW_SPECIAL, buf, sizeof buf);
		ok(k == 3 && !memcmp(buf, "<s>", 3), "TOK_SHOW_SPECIAL shows <s>");
		k = tok_piece(v, tok_find(v, "<0x41>", 6), 0, buf, sizeof buf);
		ok(k == 1 && buf[0] == 'A', "<0x41> decodes to A");
		char *out;
		size_t ol;
		tok_decode(v, ids, n, TOK_SKIP_SPECIAL, &out, &ol, &err);
		is_str(out, "Hello", "decode with TOK_SKIP_SPECIAL");
		free(out);
		free(ids);
		tok_encode(v, "<s>x</s>", 8, 0, &ids, &n, &err);
		ok(n > 3 && ids[0] != 1, "<s> is text without TOK_PARSE_SPECIAL");
		free(ids);
		tok_encode(v, "<s>x</s>", 8, TOK_PARSE_SPECIAL, &ids, &n, &err);
		ok(n == 3 && ids[0] == 1 && ids[2] == 2, "<s>x</s> with TOK_PARSE_SPECIAL");
		if (n == 3)
			is_int(ids[1], tok_find(v, "\xe2\x96\x81x", 4), "text after a special token gets the space prefix");
		free(ids);
		tok_encode(v, "", 0, TOK_ADD_SPECIAL, &ids, &n, &err);
		ok(n == 1 && ids[0] == 1, "empty text with TOK_ADD_SPECIAL is [BOS]");
		free(ids);
		tok_encode(v, "\xff\xfe", 2, 0, &ids, &n, &err);
		tok_decode(v, ids, n, 0, &out, &ol, &err);
		ok(ol == 2 && !memcmp(out, "\xff\xfe", 2), "invalid UTF-8 survives byte fallback");
		free(out);
		free(ids);
		tok_vocab_free(v);
	}

	v = load(dir, "ggml-vocab-starcoder.gguf");
	if (ok(v != NULL, "starcoder loads")) {
		ok(!tok_add_bos(v), "starcoder adds no BOS");
		int32_t eot = tok_find(v, "<|endoftext|>", 13);
		ok(eot == 0 && tok_is_eog(v, eot) && tok_is_control(v, eot), "<|endoftext|> is a control EOG token");
		tok_encode(v, "a<|endoftext|>b", 15, TOK_PARSE_SPECIAL, &ids, &n, &err);
		ok(n == 3 && ids[1] == eot, "TOK_PARSE_SPECIAL finds <|endoftext|>");
		free(ids);
		tok_encode(v, "a<|endoftext|>b", 15, 0, &ids, &n, &err);
		ok(n > 3, "without it <|endoftext|> is text");
		char *out;
		size_t ol;
		tok_decode(v, ids, n, 0, &out, &ol, &err);
		is_str(out, "a<|endoftext|>b", "and decodes back");
		free(out);
		free(ids);
		const char bin[] = "\x00\x01\x80\xc3(\xe2\x82"; /* no 0xF5-0xFF: no tokens */
		tok_encode(v, bin, sizeof bin - 1, 0, &ids, &n, &err);
		tok_decode(v, ids, n, 0, &out, &ol, &err);
		ok(ol == sizeof bin - 1 && !memcmp(out, bin, ol), "byte-level BPE keeps invalid UTF-8");
		free(out);
		free(ids);
		/* a long word without spaces: linear, not quadratic */
		size_t big = 200000;
		char *w = malloc(big);
		for (size_t i = 0; i < big; i++)
			w[i] = "abcdefghij"[(i * 7 + i / 13) % 10];
		ok(tok_encode(v, w, big, 0, &ids, &n, &err) == 0 && n > 0, "a 200 kB word tokenizes");
		tok_decode(v, ids, n, 0, &out, &ol, &err);
		ok(ol == big && !memcmp(out, w, big), "and decodes back");
		free(out);
		free(ids);
		free(w);
		tok_vocab_free(v);
	}

	v = load(dir, "ggml-vocab-bert-bge.gguf");
	if (ok(v != NULL, "bert-bge loads")) {
		tok_encode(v, "Hello", 5, TOK_ADD_SPECIAL, &ids, &n, &err);
		ok(n == 3 && ids[0] == 101 && ids[2] == 102, "WordPiece adds [CLS] ... [SEP]");
		free(ids);
		tok_vocab_free(v);
	}
}

/* Random text built from awkward pieces (special-token texts, white
 * space runs, multi-byte and invalid UTF-8, digits): encoding must not
 * fail, and byte-level BPE must give the bytes back. */
static void test_random(const char *dir, const char *file, int rounds)
{
	static const char *const bits[] = {
		" ", "  ", "\n", "\r\n", "\t", "a", "Z", "'s", "'LL", "9", "12345",
		"\xc3\xa9", "\xe4\xbd\xa0", "\xf0\x9f\x9a\x80", "\xe2\x80\x8d",
		"\xe3\x80\x80", "\xc2\xa0", "\xef\xbc\x81", "!", "<", ">", "|",
		"<|endoftext|>", "<s>", "</s>", "<|im_end|>", "[PAD]", "\xe2\x96\x81",
		"\x80", "\xc3", "\xe4\xbd", "\x00", "\x7f", "\xf5", "\xff",
	};
	tok_vocab *v = load(dir, file);
	if (!v)
		return;
	unsigned seed = 12345;
	int fails = 0, rt_fails = 0;
	char text[512];
	for (int r = 0; r < rounds; r++) {
		size_t n = 0;
		int k = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 40;
		int clean = 1; /* only bytes every vocabulary has tokens for */
		for (int i = 0; i < k; i++) {
			seed = seed * 1103515245u + 12345u;
			size_t b = (seed >> 16) % (sizeof bits / sizeof *bits);
			const char *p = bits[b];
			size_t l = b == 31 ? 1 : strlen(p); /* "\x00" */
			if (n + l >= sizeof text)
				break;
			memcpy(text + n, p, l);
			n += l;
			if (b >= 33)
				clean = 0;
		}
		int32_t *ids;
		size_t ni;
		slm_err err;
		unsigned fl = r & 1 ? TOK_PARSE_SPECIAL : 0;
		if (tok_encode(v, text, n, fl | (r & 2 ? TOK_ADD_SPECIAL : 0), &ids, &ni, &err) < 0) {
			fails++;
			continue;
		}
		if (tok_kind(v) == TOK_BPE && clean && !(r & 3)) {
			char *out;
			size_t ol;
			tok_decode(v, ids, ni, 0, &out, &ol, &err);
			if (ol != n || memcmp(out, text, n))
				rt_fails++;
			free(out);
		}
		free(ids);
	}
	ok(fails == 0, "%s: %d random texts encode", file, rounds);
	if (tok_kind(v) == TOK_BPE)
		ok(rt_fails == 0, "%s: and byte-level BPE gives them back", file);
	tok_vocab_free(v);
}

/* A vocabulary through a bundle (slm-convert's path) tokenizes as the
 * GGUF it came from. */
static void test_bundle(const char *dir, const char *file, const char *text)
{
	char path[8400], tmpl[] = "/tmp/unit-tok.XXXXXX", out[64];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	if (!mkdtemp(tmpl)) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(out, sizeof out, "%s/v.slm", tmpl);
	slm_err err;
	cv_model m;
	cv_model_init(&m);
	int made = cv_from_gguf(&m, path, 1, &err) == 0 &&
		   cv_write_bundle(&m, out, 0, 1, NULL, NULL, &err) == 0;
	cv_model_free(&m);
	if (!ok(made, "%s: converts to a vocabulary bundle", file)) {
		diag("%s", err.msg);
		rmdir(tmpl);
		return;
	}
	slm_bundle *b;
	tok_vocab *vb = NULL, *vg = load(dir, file);
	if (ok(bundle_open(&b, out, &err) == 0, "%s: bundle opens", file)) {
		if (!ok(tok_vocab_from_bundle(&vb, b, &err) == 0, "%s: vocabulary loads from the bundle", file))
			diag("%s", err.msg);
		bundle_close(b);
	}
	if (vb && vg) {
		int32_t *a, *c;
		size_t na, nc;
		tok_encode(vg, text, strlen(text), TOK_ADD_SPECIAL, &a, &na, &err);
		tok_encode(vb, text, strlen(text), TOK_ADD_SPECIAL, &c, &nc, &err);
		ok(same_ids(a, na, c, nc), "%s: bundle and GGUF give the same ids", file);
		ok(tok_n_vocab(vb) == tok_n_vocab(vg) && tok_bos(vb) == tok_bos(vg) &&
		   tok_eos(vb) == tok_eos(vg) && tok_add_bos(vb) == tok_add_bos(vg) &&
		   !strcmp(tok_pre_name(vb), tok_pre_name(vg)),
		   "%s: same size, BOS, EOS and settings", file);
		free(a);
		free(c);
	}
	tok_vocab_free(vb);
	tok_vocab_free(vg);
	unlink(out);
	rmdir(tmpl);
}

int main(void)
{
	char sbuf[4096];
	const char *shared = shared_dir(sbuf, sizeof sbuf);
	if (!shared) {
		printf("1..0 # SKIP no shared vocabularies (set SLM_SHARED)\n");
		return 77;
	}
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/vocab", shared);
	struct dirent **ents;
	int ne = scandir(dir, &ents, NULL, alphasort);
	for (int i = 0; i < ne; i++) {
		size_t l = strlen(ents[i]->d_name);
		if (l > 5 && !strcmp(ents[i]->d_name + l - 5, ".gguf"))
			test_vectors(dir, ents[i]->d_name);
		free(ents[i]);
	}
	if (ne > 0)
		free(ents);

	const char *top = getenv("top_srcdir");
	char gdir[4096];
	snprintf(gdir, sizeof gdir, "%s/tests/data/tok", top && *top ? top : ".");
	ne = scandir(gdir, &ents, NULL, alphasort);
	for (int i = 0; i < ne; i++) {
		size_t l = strlen(ents[i]->d_name);
		if (l > 5 && !strcmp(ents[i]->d_name + l - 5, ".json")) {
			char p[8400];
			snprintf(p, sizeof p, "%s/%s", gdir, ents[i]->d_name);
			test_golden(dir, p);
		}
		free(ents[i]);
	}
	if (ne > 0)
		free(ents);

	test_api(dir);
	ne = scandir(dir, &ents, NULL, alphasort);
	for (int i = 0; i < ne; i++) {
		size_t l = strlen(ents[i]->d_name);
		if (l > 5 && !strcmp(ents[i]->d_name + l - 5, ".gguf"))
			test_random(dir, ents[i]->d_name, 300);
		free(ents[i]);
	}
	if (ne > 0)
		free(ents);
	static const char sample[] = "Hello world! 3.14159 <|endoftext|> \xe4\xbd\xa0\xe5\xa5\xbd\n\tcode()";
	test_bundle(dir, "ggml-vocab-llama-spm.gguf", sample);
	test_bundle(dir, "ggml-vocab-phi-3.gguf", sample);
	test_bundle(dir, "ggml-vocab-starcoder.gguf", sample);
	test_bundle(dir, "ggml-vocab-deepseek-llm.gguf", sample);
	test_bundle(dir, "ggml-vocab-bert-bge.gguf", sample);
	return done_testing();
}
