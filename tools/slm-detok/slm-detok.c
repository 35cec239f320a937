/*
 * slm-detok - token stream to text. Generated tokens are printed as soon
 * as they form whole UTF-8 characters; with --jsonl every finished
 * sequence becomes one JSON object, for batch jobs.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "cli.h"
#include "store.h"
#include "stream.h"
#include "tok.h"
#include "util.h"

static const char usage_text[] =
	"usage: slm-detok [-m BUNDLE] [--jsonl] [--special] [--think show|hide|stderr]\n"
	"                 [-q] [-v] [-o OUT] [INPUT]\n";

enum { THINK_SHOW, THINK_HIDE, THINK_STDERR };

static struct {
	const char *model, *out;
	int jsonl, special, think, quiet, verbose;
} opt = { .think = THINK_SHOW };

static tok_vocab *vocab;
static FILE *fo;
static int32_t think_open = TOK_NULL, think_close = TOK_NULL;
static const char *vocab_digest;
static const char *input_name = "standard input";

/* One sequence being printed or collected. */
typedef struct seqstate {
	json_t *id;
	char *pend;          /* bytes waiting for the rest of a character */
	size_t npend, cappend;
	char *text;          /* --jsonl, or a sequence waiting for its turn */
	size_t ntext, captext;
	int ntok;
	int thinking;
	int live;            /* printing straight to the output */
	int done, had_end;   /* finished, waiting for its turn to print */
	size_t printed;      /* bytes written live */
	struct seqstate *next;
} seqstate;

static seqstate *seqs;
static int any_live;
static int errors;

static void out_write(FILE *f, const char *p, size_t n)
{
	if (n && fwrite(p, 1, n, f) != n)
		slm_die(EX_IOERR, "write error: %s", strerror(errno));
}

static void append(char **buf, size_t *n, size_t *cap, const char *p, size_t k)
{
	if (*n + k + 1 > *cap) {
		*cap = (*n + k + 1) * 2;
		*buf = slm_xrealloc(*buf, *cap);
	}
	memcpy(*buf + *n, p, k);
	*n += k;
	(*buf)[*n] = 0;
}

static int same_id(const json_t *a, const json_t *b)
{
	return json_equal((json_t *)a, (json_t *)b);
}

static seqstate *find(const json_t *id, int create)
{
	for (seqstate *s = seqs; s; s = s->next)
		if (same_id(s->id, id))
			return s;
	if (!create)
		return NULL;
	seqstate *s = slm_xcalloc(1, sizeof *s);
	s->id = json_incref((json_t *)id);
	/* print live when nothing else is printing (text mode) */
	if (!opt.jsonl && !any_live) {
		s->live = 1;
		any_live = 1;
	}
	seqstate **tail = &seqs;
	while (*tail)
		tail = &(*tail)->next;
	*tail = s;
	return s;
}

static void drop(seqstate *s)
{
	seqstate **pp = &seqs;
	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp)
		*pp = s->next;
	if (s->live)
		any_live = 0;
	json_decref(s->id);
	free(s->pend);
	free(s->text);
	free(s);
}

/* Send ready bytes of s where they belong. */
static void emit(seqstate *s, const char *p, size_t n, int to_stderr)
{
	if (to_stderr) {
		out_write(stderr, p, n);
		fflush(stderr);
	} else if (s->live) {
		out_write(fo, p, n);
		s->printed += n;
	} else {
		append(&s->text, &s->ntext, &s->captext, p, n);
	}
}

static void flush_pending(seqstate *s, int final)
{
	size_t ready = final ? s->npend : tok_utf8_ready(s->pend, s->npend);
	if (ready == 0)
		return;
	int hidden = s->thinking && opt.think == THINK_HIDE;
	if (!hidden)
		emit(s, s->pend, ready, s->thinking && opt.think == THINK_STDERR);
	memmove(s->pend, s->pend + ready, s->npend - ready);
	s->npend -= ready;
}

static void add_token(seqstate *s, int32_t id)
{
	int tag = id != TOK_NULL && (id == think_open || id == think_close);
	if (tag) {
		flush_pending(s, 1);
		s->thinking = id == think_open;
		if (opt.think != THINK_SHOW) {
			s->ntok++;
			return;
		}
	}
	char buf[512];
	/* --think show prints the tags even when they are control tokens */
	unsigned flags = opt.special || tag ? TOK_SHOW_SPECIAL : 0;
	size_t n = tok_piece(vocab, id, flags, buf, sizeof buf);
	if (n > sizeof buf) {
		char *big = slm_xmalloc(n);
		tok_piece(vocab, id, flags, big, n);
		append(&s->pend, &s->npend, &s->cappend, big, n);
		free(big);
	} else {
		append(&s->pend, &s->npend, &s->cappend, buf, n);
	}
	s->ntok++;
	flush_pending(s, 0);
}

/* Text as a JSON string; bytes that are not UTF-8 become U+FFFD. */
static json_t *json_text(const char *p, size_t n)
{
	json_t *j = json_stringn(p, n);
	if (j)
		return j;
	char *o = slm_xmalloc(3 * n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)p[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		if (len && i + len <= n) {
			json_t *t = json_stringn(p + i, len);
			if (t) {
				json_decref(t);
				memcpy(o + k, p + i, len);
				k += len;
				i += len;
				continue;
			}
		}
		memcpy(o + k, "\xef\xbf\xbd", 3);
		k += 3;
		i++;
	}
	j = json_stringn(o, k);
	free(o);
	return j;
}

/* When nothing is printing, the oldest waiting sequence takes over:
 * finished ones are printed whole, the first unfinished one goes live. */
static void promote(void)
{
	while (!opt.jsonl && !any_live && seqs) {
		seqstate *s = seqs;
		out_write(fo, s->text, s->ntext);
		s->printed += s->ntext;
		if (s->done) {
			if (s->had_end || s->ntext || s->printed)
				out_write(fo, "\n", 1);
			drop(s);
			continue;
		}
		s->ntext = 0;
		s->live = 1;
		any_live = 1;
	}
}

static void finish(seqstate *s, json_t *end)
{
	flush_pending(s, 1);
	if (opt.jsonl) {
		json_t *o = json_object();
		json_object_set(o, "id", s->id);
		json_object_set_new(o, "text", json_text(s->text ? s->text : "", s->ntext));
		const char *k;
		json_t *v;
		json_object_foreach(end, k, v) {
			if (strcmp(k, "type") && strcmp(k, "id"))
				json_object_set(o, k, v);
		}
		if (!end)
			json_object_set_new(o, "reason", json_string("truncated"));
		json_object_set_new(o, "tokens", json_integer(s->ntok));
		if (json_dumpf(o, fo, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 ||
		    fputc('\n', fo) == EOF)
			slm_die(EX_IOERR, "write error: %s", strerror(errno));
		json_decref(o);
		drop(s);
		return;
	}
	s->done = 1;
	s->had_end = end != NULL;
	if (s->live) {
		if (s->had_end)
			out_write(fo, "\n", 1);
		drop(s);
		promote();
	}
}

static void handle(json_t *rec)
{
	json_t *id = json_object_get(rec, "id");
	switch (stream_rec_type(rec)) {
	case SLM_REC_HEADER: {
		const char *vd = json_string_value(json_object_get(rec, "vocab"));
		if (vd && vocab_digest && strcmp(vd, vocab_digest))
			slm_die(EX_DATAERR, "%s: the token stream was made with a different vocabulary than the model's",
				input_name);
		break;
	}
	case SLM_REC_SEQ: {
		/* a whole sequence (e.g. straight from slm-tok): decode it exactly */
		json_t *toks = json_object_get(rec, "tokens");
		size_t n = json_array_size(toks);
		int32_t *ids = slm_xmalloc((n ? n : 1) * sizeof *ids);
		for (size_t i = 0; i < n; i++)
			ids[i] = (int32_t)json_integer_value(json_array_get(toks, i));
		char *text;
		size_t len;
		slm_err err;
		unsigned flags = opt.special ? TOK_SHOW_SPECIAL : 0;
		if (tok_decode(vocab, ids, n, flags, &text, &len, &err) < 0)
			slm_die_err(&err);
		if (opt.jsonl) {
			json_t *o = json_pack("{s:O, s:o, s:I}", "id", id, "text",
					      json_text(text, len), "tokens", (json_int_t)n);
			json_dumpf(o, fo, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fputc('\n', fo);
			json_decref(o);
		} else if (!any_live && !seqs) {
			out_write(fo, text, len);
		} else {
			/* another sequence is printing: this one waits its turn */
			seqstate *q = slm_xcalloc(1, sizeof *q);
			q->id = json_incref(id);
			append(&q->text, &q->ntext, &q->captext, text, len);
			q->done = 1;
			seqstate **tail = &seqs;
			while (*tail)
				tail = &(*tail)->next;
			*tail = q;
		}
		free(text);
		free(ids);
		break;
	}
	case SLM_REC_TOK:
		add_token(find(id, 1), (int32_t)json_integer_value(json_object_get(rec, "token")));
		break;
	case SLM_REC_END: {
		seqstate *s = find(id, 1);
		finish(s, rec);
		break;
	}
	case SLM_REC_ERROR: {
		errors++;
		const char *msg = json_string_value(json_object_get(rec, "message"));
		char *ids = id ? json_dumps(id, JSON_ENCODE_ANY) : NULL;
		if (opt.jsonl) {
			json_t *o = json_pack("{s:O?, s:s}", "id", id, "error", msg);
			json_dumpf(o, fo, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fputc('\n', fo);
			json_decref(o);
		}
		if (!opt.quiet)
			slm_warn("%s%s%s%s", ids ? "id " : "", ids ? ids : "", ids ? ": " : "", msg);
		free(ids);
		seqstate *s = id ? find(id, 0) : NULL;
		if (s) {
			flush_pending(s, 1);
			if (s->live && s->printed)
				out_write(fo, "\n", 1);
			drop(s);
			promote();
		}
		break;
	}
	default:
		break;
	}
	if (fflush(fo) != 0)
		slm_die(EX_IOERR, "write error: %s", strerror(errno));
}

enum { OPT_VERSION = 256, OPT_JSONL, OPT_SPECIAL, OPT_THINK };

int main(int argc, char **argv)
{
	slm_cli_init(argc, argv);
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "model", required_argument, NULL, 'm' },
		{ "output", required_argument, NULL, 'o' },
		{ "jsonl", no_argument, NULL, OPT_JSONL },
		{ "json", no_argument, NULL, OPT_JSONL },
		{ "special", no_argument, NULL, OPT_SPECIAL },
		{ "think", required_argument, NULL, OPT_THINK },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "hm:o:t:qv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(usage_text, stdout); return 0;
		case OPT_VERSION: slm_cli_version();
		case 'm': opt.model = optarg; break;
		case 'o': opt.out = optarg; break;
		case 't': slm_cli_long("-t", optarg, 1, 1024); break;
		case OPT_JSONL: opt.jsonl = 1; break;
		case OPT_SPECIAL: opt.special = 1; break;
		case OPT_THINK:
			if (!strcmp(optarg, "show")) opt.think = THINK_SHOW;
			else if (!strcmp(optarg, "hide")) opt.think = THINK_HIDE;
			else if (!strcmp(optarg, "stderr")) opt.think = THINK_STDERR;
			else slm_die(EX_USAGE, "--think: expected show, hide or stderr, got '%s'", optarg);
			break;
		case 'q': opt.quiet = 1; break;
		case 'v': opt.verbose = 1; break;
		default: slm_cli_usage_error(usage_text);
		}
	}
	const char *in = optind < argc ? argv[optind++] : "-";
	if (optind < argc)
		slm_cli_usage_error(usage_text);
	slm_err err;
	char *path = store_resolve(opt.model, &err);
	if (!path)
		slm_die_err(&err);
	slm_bundle *b;
	if (bundle_open(&b, path, &err) < 0 || tok_vocab_from_bundle(&vocab, b, &err) < 0)
		slm_die_err(&err);
	const slm_member *vm = bundle_find_member(b, "tokenizer/vocab.msgpack");
	vocab_digest = vm ? vm->sha256 : NULL;
	if (strcmp(in, "-"))
		input_name = in;
	think_open = tok_find(vocab, "<think>", 7);
	think_close = tok_find(vocab, "</think>", 8);
	fo = stdout;
	if (opt.out && strcmp(opt.out, "-") && !(fo = fopen(opt.out, "w")))
		slm_die(EX_CANTCREAT, "%s: %s", opt.out, strerror(errno));
	slm_sreader *r = sreader_open(in, &err);
	if (!r)
		slm_die_err(&err);
	json_t *rec;
	int rc;
	while ((rc = sreader_next(r, &rec, &err)) > 0) {
		handle(rec);
		json_decref(rec);
	}
	if (rc < 0)
		slm_die_err(&err);
	/* sequences the stream cut short: print what arrived */
	if (opt.jsonl) {
		while (seqs)
			finish(seqs, NULL);
	} else {
		for (seqstate *s = seqs; s; s = s->next) {
			flush_pending(s, 1);
			s->done = 1;
		}
		if (any_live) {
			any_live = 0;
			seqs->live = 0; /* the live one is first: its text is already out */
		}
		promote();
	}
	sreader_free(r);
	if (fflush(fo) != 0 || (fo != stdout && fclose(fo) != 0))
		slm_die(EX_IOERR, "write error: %s", strerror(errno));
	tok_vocab_free(vocab);
	bundle_close(b);
	free(path);
	return errors ? EX_DATAERR : 0;
}
