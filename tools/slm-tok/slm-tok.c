/*
 * slm-tok - text to token stream: one prompt from standard input, one per
 * line, or JSONL batches (plain text, chat messages, or OpenAI batch-file
 * requests), optionally through the bundle's chat template.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "cli.h"
#include "jinja.h"
#include "store.h"
#include "stream.h"
#include "tok.h"
#include "util.h"

static const char usage_text[] =
	"usage: slm-tok [-m BUNDLE] [--chat] [--system TEXT] [--template FILE]\n"
	"               [--lines | --jsonl] [--no-special] [--no-bos] [--ids]\n"
	"               [--json] [-f] [-q] [-v] [-o OUT] [FILE]\n";

static struct {
	const char *model, *out, *system, *template_file;
	int chat, lines, jsonl, no_special, no_bos, ids, json, force, quiet, verbose;
} opt;

static tok_vocab *vocab;
static jinja_tmpl *tmpl;
static slm_swriter *w;
static FILE *fo;
static char *bos_text, *eos_text;
static const char *input_name = "standard input";

static char *piece_text(int32_t id)
{
	if (id == TOK_NULL)
		return slm_xstrdup("");
	char buf[256];
	size_t n = tok_piece(vocab, id, TOK_SHOW_SPECIAL, buf, sizeof buf - 1);
	if (n >= sizeof buf)
		n = sizeof buf - 1;
	buf[n] = 0;
	return slm_xstrdup(buf);
}

/* Render messages (a JSON array) with the chat template. */
static int render_chat(json_t *messages, char **text, size_t *len, slm_err *err)
{
	if (!tmpl)
		return slm_seterr(err, EX_DATAERR,
				  "the bundle has no chat template (use --template FILE)");
	/* what transformers' apply_chat_template passes */
	json_t *ctx = json_pack("{s:O, s:b, s:s, s:s, s:n, s:n}", "messages", messages,
				"add_generation_prompt", 1, "bos_token", bos_text,
				"eos_token", eos_text, "tools", "documents");
	int rc = jinja_render(tmpl, ctx, text, len, err);
	json_decref(ctx);
	return rc;
}

static void emit(json_t *id, const int32_t *ids, size_t n, json_t *meta)
{
	if (opt.ids) {
		for (size_t i = 0; i < n; i++)
			fprintf(fo, i ? " %d" : "%d", ids[i]);
		fputc('\n', fo);
		if (fflush(fo) != 0)
			slm_die(EX_IOERR, "write error: %s", strerror(errno));
		return;
	}
	json_t *rec = stream_seq(id, ids, n);
	if (meta)
		json_object_set(rec, "meta", meta);
	slm_err err;
	if (swriter_put(w, rec, &err) < 0)
		slm_die_err(&err);
	json_decref(rec);
}

/* A prompt that cannot be tokenized: a warning, and an error record in its
 * place (an empty line with --ids), so the other prompts go on and the
 * output still lines up with the input. */
static void report_error(json_t *id, const char *where, slm_err *err)
{
	if (!opt.quiet)
		slm_warn("%s: %s", where, err->msg);
	if (opt.ids) {
		fputc('\n', fo);
		fflush(fo);
		return;
	}
	json_t *rec = stream_error(id, err->msg);
	slm_err werr;
	if (swriter_put(w, rec, &werr) < 0)
		slm_die_err(&werr);
	json_decref(rec);
}

/* Tokenize one prompt; on error write an error record (batch modes) or
 * die (whole input). */
static void one(json_t *id, const char *text, size_t len, int chat, json_t *messages,
		json_t *meta, int fatal, const char *where)
{
	slm_err err;
	char *rendered = NULL;
	size_t rlen = 0;
	unsigned flags = 0;
	if (chat) {
		json_t *msgs = messages;
		json_t *own = NULL;
		if (!msgs) {
			own = json_array();
			if (opt.system)
				json_array_append_new(own, json_pack("{s:s, s:s}", "role", "system",
								     "content", opt.system));
			json_array_append_new(own, json_pack("{s:s, s:s%}", "role", "user",
							     "content", text, len));
			msgs = own;
		}
		int rc = render_chat(msgs, &rendered, &rlen, &err);
		json_decref(own);
		if (rc < 0)
			goto fail;
		text = rendered;
		len = rlen;
		/* the template places BOS itself, as transformers' apply_chat_template */
		flags = TOK_PARSE_SPECIAL;
	} else {
		flags = (opt.no_bos ? 0 : TOK_ADD_SPECIAL) | (opt.no_special ? 0 : TOK_PARSE_SPECIAL);
	}
	int32_t *ids = NULL;
	size_t n = 0;
	if (tok_encode(vocab, text, len, flags, &ids, &n, &err) < 0)
		goto fail;
	emit(id, ids, n, meta);
	free(ids);
	free(rendered);
	return;
fail:
	free(rendered);
	if (fatal)
		slm_die(err.code, "%s: %s", where, err.msg);
	report_error(id, where, &err);
}

/* One JSONL line: {"id","text"} | {"id","messages"} |
 * {"custom_id","body":{"messages"}}. */
static void jsonl_line(const char *line, size_t len, long lineno)
{
	char where[600];
	snprintf(where, sizeof where, "%s: line %ld", input_name, lineno);
	json_error_t je;
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	json_t *id = NULL, *meta = NULL;
	json_t *own_id = NULL;
	if (!json_is_object(o)) {
		slm_err err;
		slm_seterr(&err, EX_DATAERR, "%s", o ? "not a JSON object" : je.text);
		own_id = json_integer(lineno - 1);
		report_error(own_id, where, &err);
		json_decref(own_id);
		json_decref(o);
		return;
	}
	json_t *body = json_object_get(o, "body");
	id = json_object_get(o, "id");
	if (!(json_is_string(id) || json_is_integer(id)))
		id = json_object_get(o, "custom_id");
	if (!(json_is_string(id) || json_is_integer(id)))
		id = own_id = json_integer(lineno - 1);
	json_t *messages = json_object_get(json_is_object(body) ? body : o, "messages");
	json_t *text = json_object_get(o, "text");
	if (!text && json_is_object(body))
		text = json_object_get(body, "prompt");
	/* request options that slm-gen understands travel as metadata */
	static const char *const pass[] = { "max_tokens", "temperature", "top_p",
					    "top_k", "min_p", "seed", "stop" };
	json_t *src = json_is_object(body) ? body : o;
	for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) {
		json_t *v = json_object_get(src, pass[i]);
		if (v) {
			if (!meta)
				meta = json_object();
			json_object_set(meta, pass[i], v);
		}
	}
	if (json_is_array(messages))
		one(id, NULL, 0, 1, messages, meta, 0, where);
	else if (json_is_string(text))
		one(id, json_string_value(text), json_string_length(text), opt.chat, NULL,
		    meta, 0, where);
	else {
		slm_err err;
		slm_seterr(&err, EX_DATAERR, "needs \"text\" (a string) or \"messages\" (an array)");
		report_error(id, where, &err);
	}
	json_decref(meta);
	json_decref(own_id);
	json_decref(o);
}

enum { OPT_VERSION = 256, OPT_JSON, OPT_CHAT, OPT_SYSTEM, OPT_TEMPLATE, OPT_LINES,
       OPT_JSONL, OPT_NOSPECIAL, OPT_NOBOS, OPT_IDS };

int main(int argc, char **argv)
{
	slm_cli_init(argc, argv);
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "model", required_argument, NULL, 'm' },
		{ "output", required_argument, NULL, 'o' },
		{ "chat", no_argument, NULL, OPT_CHAT },
		{ "system", required_argument, NULL, OPT_SYSTEM },
		{ "template", required_argument, NULL, OPT_TEMPLATE },
		{ "lines", no_argument, NULL, OPT_LINES },
		{ "jsonl", no_argument, NULL, OPT_JSONL },
		{ "no-special", no_argument, NULL, OPT_NOSPECIAL },
		{ "no-bos", no_argument, NULL, OPT_NOBOS },
		{ "ids", no_argument, NULL, OPT_IDS },
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "hm:o:t:fqv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(usage_text, stdout); return 0;
		case OPT_VERSION: slm_cli_version();
		case OPT_JSON: opt.json = 1; break;
		case 'm': opt.model = optarg; break;
		case 'o': opt.out = optarg; break;
		case 't': slm_cli_long("-t", optarg, 1, 1024); break; /* single-threaded */
		case OPT_CHAT: opt.chat = 1; break;
		case OPT_SYSTEM: opt.system = optarg; opt.chat = 1; break;
		case OPT_TEMPLATE: opt.template_file = optarg; break;
		case OPT_LINES: opt.lines = 1; break;
		case OPT_JSONL: opt.jsonl = 1; break;
		case OPT_NOSPECIAL: opt.no_special = 1; break;
		case OPT_NOBOS: opt.no_bos = 1; break;
		case OPT_IDS: opt.ids = 1; break;
		case 'f': opt.force = 1; break;
		case 'q': opt.quiet = 1; break;
		case 'v': opt.verbose = 1; break;
		default: slm_cli_usage_error(usage_text);
		}
	}
	if (opt.lines && opt.jsonl)
		slm_die(EX_USAGE, "--lines and --jsonl: choose one");
	const char *in = optind < argc ? argv[optind++] : "-";
	if (optind < argc)
		slm_cli_usage_error(usage_text);
	if (strcmp(in, "-"))
		input_name = in;

	slm_err err;
	char *path = store_resolve(opt.model, &err);
	if (!path)
		slm_die_err(&err);
	slm_bundle *b;
	if (bundle_open(&b, path, &err) < 0 || tok_vocab_from_bundle(&vocab, b, &err) < 0)
		slm_die_err(&err);
	bos_text = piece_text(tok_bos(vocab));
	eos_text = piece_text(tok_eos(vocab));
	if (opt.chat || opt.jsonl || opt.template_file) {
		char *src = NULL;
		size_t slen = 0;
		const char *what = "chat template";
		if (opt.template_file) {
			if (slm_read_file(opt.template_file, &src, &slen, &err) < 0)
				slm_die_err(&err);
			what = opt.template_file;
		} else {
			const char *t = bundle_str(b, "chat_template");
			if (t) {
				src = slm_xstrdup(t);
				slen = strlen(t);
			}
		}
		if (src && jinja_parse(&tmpl, src, slen, &err) < 0)
			slm_die(err.code, "%s: %s", what, err.msg);
		free(src);
		if (opt.chat && !tmpl)
			slm_die(EX_DATAERR, "%s: the bundle has no chat template (use --template FILE)",
				bundle_path(b));
	}

	fo = stdout;
	if (opt.out && strcmp(opt.out, "-")) {
		fo = fopen(opt.out, "w");
		if (!fo)
			slm_die(EX_CANTCREAT, "%s: %s", opt.out, strerror(errno));
	} else if (!opt.json && !opt.ids) {
		slm_cli_refuse_tty(stdout, opt.force, "a token stream (use --json for text)");
	}
	w = swriter_new(fo, opt.json);
	if (!opt.ids) {
		const slm_member *vm = bundle_find_member(b, "tokenizer/vocab.msgpack");
		json_t *h = stream_header(vm ? vm->sha256 : NULL, bundle_str(b, "name"));
		if (swriter_put(w, h, &err) < 0)
			slm_die_err(&err);
		json_decref(h);
	}

	if (opt.lines || opt.jsonl) {
		FILE *fi = stdin;
		if (strcmp(in, "-") && !(fi = fopen(in, "r")))
			slm_die(errno == ENOENT ? EX_NOINPUT : EX_IOERR, "%s: %s", in,
				strerror(errno));
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;
		long lineno = 0, seq = 0;
		while ((n = getline(&line, &cap, fi)) >= 0) {
			lineno++;
			size_t len = (size_t)n;
			if (len && line[len - 1] == '\n')
				len--;
			if (len && line[len - 1] == '\r')
				len--;
			if (opt.jsonl) {
				size_t k = 0;
				while (k < len && (line[k] == ' ' || line[k] == '\t'))
					k++;
				if (k == len)
					continue;
				jsonl_line(line, len, lineno);
			} else {
				char where[600];
				snprintf(where, sizeof where, "%s: line %ld", input_name, lineno);
				json_t *id = json_integer(seq++);
				one(id, line, len, opt.chat, NULL, NULL, 0, where);
				json_decref(id);
			}
		}
		free(line);
		if (ferror(fi))
			slm_die(EX_IOERR, "%s: read error", input_name);
		if (fi != stdin)
			fclose(fi);
	} else {
		char *text;
		size_t len;
		if (slm_read_file(in, &text, &len, &err) < 0)
			slm_die_err(&err);
		if (opt.chat && len && text[len - 1] == '\n')
			len--; /* echo "question" | slm-tok --chat: the newline is not the question */
		json_t *id = json_integer(0);
		one(id, text, len, opt.chat, NULL, NULL, 1, input_name);
		json_decref(id);
		free(text);
	}
	swriter_free(w);
	if (fflush(fo) != 0 || (fo != stdout && fclose(fo) != 0))
		slm_die(EX_IOERR, "write error: %s", strerror(errno));
	jinja_free(tmpl);
	tok_vocab_free(vocab);
	bundle_close(b);
	free(bos_text);
	free(eos_text);
	free(path);
	return 0;
}
