/*
 * unit-jinja.c - the Jinja interpreter against Python's jinja2: every
 * case of tests/data/jinja/cases.json (chat templates over conversations,
 * and snippets of single constructs; made by scripts/make-jinja-golden.py)
 * must render byte for byte the same, or fail where jinja2 fails; then
 * errors for constructs outside the subset, limits, and hostile input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja.h"
#include "unit.h"

static char *data_path(const char *file)
{
	const char *top = getenv("top_srcdir");
	if (!top || !*top)
		top = getenv("srcdir");
	if (!top || !*top)
		top = ".";
	size_t n = strlen(top) + strlen(file) + 32;
	char *p = slm_xmalloc(n);
	snprintf(p, n, "%s/tests/data/jinja/%s", top, file);
	return p;
}

static char *read_text(const char *path, size_t *n)
{
	slm_err err;
	char *s;
	if (slm_read_file(path, &s, n, &err))
		return NULL;
	return s;
}

/* The fixed time strftime_now() formats: cases.json's "now". */
static struct tm fixed_now(const char *iso)
{
	struct tm tm = { 0 };
	sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	       &tm.tm_hour, &tm.tm_min, &tm.tm_sec);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	gmtime_r(&t, &tm);
	return tm;
}

typedef struct tstat {
	char name[128];
	int pass, total;
} tstat;

static tstat *stat_for(tstat *st, int *nst, const char *name)
{
	for (int i = 0; i < *nst; i++)
		if (!strcmp(st[i].name, name))
			return &st[i];
	snprintf(st[*nst].name, sizeof st[*nst].name, "%s", name);
	return &st[(*nst)++];
}

static void run_golden(void)
{
	char *path = data_path("cases.json");
	json_error_t je;
	json_t *doc = json_load_file(path, JSON_ALLOW_NUL, &je);
	if (!ok(doc != NULL, "load %s", path)) {
		diag("%s: line %d: %s", path, je.line, je.text);
		free(path);
		return;
	}
	free(path);
	struct tm now = fixed_now(json_string_value(json_object_get(doc, "now")));
	jinja_opts opts = { .now = &now };
	json_t *contexts = json_object_get(doc, "contexts");
	json_t *outputs = json_object_get(doc, "outputs");
	json_t *cases = json_object_get(doc, "cases");
	static tstat st[64];
	int nst = 0;
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		const char *name = json_string_value(json_object_get(c, "name"));
		const char *tfile = json_string_value(json_object_get(c, "template"));
		const char *inline_src = json_string_value(json_object_get(c, "source"));
		json_t *ctx = json_deep_copy(json_object_get(contexts,
			json_string_value(json_object_get(c, "ctx"))));
		json_t *agp = json_object_get(c, "agp");
		if (agp)
			json_object_set(ctx, "add_generation_prompt", agp);
		char *src;
		size_t srcn;
		if (tfile) {
			char *p = data_path(tfile);
			src = read_text(p, &srcn);
			free(p);
		} else {
			src = slm_xstrdup(inline_src);
			srcn = strlen(src);
		}
		char tname[128];
		snprintf(tname, sizeof tname, "%s", tfile ? tfile : "snippets");
		tstat *ts = stat_for(st, &nst, tname);
		ts->total++;

		slm_err err = { 0 };
		jinja_tmpl *t = NULL;
		char *out = NULL;
		size_t outn = 0;
		int rc = !src ? -1 : jinja_parse(&t, src, srcn, &err);
		if (!rc)
			rc = jinja_render_opts(t, ctx, &opts, &out, &outn, &err);
		json_t *want = json_object_get(c, "output");
		const char *want_err = json_string_value(json_object_get(c, "error"));
		int pass;
		if (want) {
			json_t *w = json_array_get(outputs, (size_t)json_integer_value(want));
			size_t wn = json_string_length(w);
			pass = !rc && outn == wn && !memcmp(out, json_string_value(w), wn);
			ok(pass, "%s", name);
			if (!pass) {
				if (rc)
					diag("error: %s", err.msg);
				else
					diag("got:      %s\n# expected: %s", out, json_string_value(w));
			}
		} else {
			pass = rc != 0;
			if (pass && json_is_true(json_object_get(c, "raised"))) {
				char need[SLM_ERR_MAX];
				snprintf(need, sizeof need, "raise_exception: %s", want_err);
				pass = strstr(err.msg, need) != NULL;
			}
			ok(pass, "%s fails", name);
			if (!pass)
				diag("expected error: %s\n# got: %s", want_err,
				     rc ? err.msg : out);
		}
		ts->pass += pass;
		free(out);
		jinja_free(t);
		free(src);
		json_decref(ctx);
	}
	for (int k = 0; k < nst; k++)
		diag("%-55s %d/%d", st[k].name, st[k].pass, st[k].total);
	json_decref(doc);
}

/* Render src over ctx_json; returns 0 and the output, or -1 and err. */
static int render(const char *src, const char *ctx_json, const jinja_opts *o,
		  char **out, slm_err *err)
{
	jinja_tmpl *t;
	*out = NULL;
	if (jinja_parse(&t, src, strlen(src), err))
		return -1;
	json_t *ctx = json_loads(ctx_json ? ctx_json : "{}", 0, NULL);
	size_t n;
	int rc = jinja_render_opts(t, ctx, o, out, &n, err);
	json_decref(ctx);
	jinja_free(t);
	return rc;
}

static void expect_error(const char *src, const jinja_opts *o, const char *want,
			 const char *desc)
{
	slm_err err = { 0 };
	char *out;
	int rc = render(src, NULL, o, &out, &err);
	if (!ok(rc != 0 && strstr(err.msg, want), "%s", desc))
		diag("wanted an error with '%s', got: %s", want, rc ? err.msg : out);
	free(out);
}

static void run_errors(void)
{
	expect_error("{{ x|wordwrap }}", NULL,
		     "template line 1: unsupported filter 'wordwrap'", "unsupported filter");
	expect_error("a\n\n{{ x is divisible }}", NULL,
		     "template line 3: unsupported test 'divisible'", "unsupported test, line 3");
	expect_error("\n{% include 'x.j2' %}", NULL,
		     "template line 2: unsupported tag 'include'", "unsupported tag");
	expect_error("{% call m() %}{% endcall %}", NULL, "unsupported tag 'call'",
		     "unsupported call block");
	expect_error("{% frobnicate %}", NULL, "unknown tag 'frobnicate'", "unknown tag");
	expect_error("{% for x in y recursive %}{% endfor %}", NULL,
		     "unsupported: recursive for loops", "recursive loop");
	expect_error("{{ 'a'.center(5) }}", NULL, "unsupported method 'center'",
		     "unsupported str method");
	expect_error("{{ cycler(1, 2) }}", NULL, "unsupported function 'cycler'",
		     "unsupported global");
	expect_error("x\n{% if a %}abc", NULL,
		     "template line 2: unexpected end of template: 'if' is never closed",
		     "unterminated if");
	expect_error("{% for a in b %}{% endif %}", NULL, "unexpected tag 'endif'",
		     "mismatched end tag");
	expect_error("{{ a ", NULL, "'{{' is never closed", "unterminated {{");
	expect_error("{% if a", NULL, "'{%' is never closed", "unterminated {%");
	expect_error("{# abc", NULL, "missing end of comment tag", "unterminated comment");
	expect_error("{{ 'abc }}", NULL, "unterminated string literal", "unterminated string");
	expect_error("{{ (1 + 2 }}", NULL, "unexpected '}'", "unbalanced brackets");
	expect_error("{{ 1 + }}", NULL, "unexpected end of print statement", "missing operand");
	expect_error("{% break %}", NULL, "'break' outside of a for loop", "break outside loop");
	expect_error("{{ x }\xff}", NULL, "invalid UTF-8", "invalid UTF-8 template");
	expect_error("{{ raise_exception('No system role') }}", NULL,
		     "template line 1: raise_exception: No system role", "raise_exception");
}

static void run_limits(void)
{
	expect_error("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", NULL,
		     "macro calls nested more than 100 deep", "deep recursion stops");
	jinja_opts small = { .max_output = 1000 };
	expect_error("{% for i in range(100000) %}xxxxxxxxxx{% endfor %}", &small,
		     "output exceeds 1000 bytes", "output limit");
	expect_error("{% set ns = namespace(s='x') %}{% for i in range(40) %}"
		     "{% set ns.s = ns.s ~ ns.s %}{% endfor %}", &small,
		     "more than 1000 bytes", "string growth limit");
	jinja_opts steps = { .max_steps = 1000000 };
	expect_error("{% for i in range(100000) %}{% for j in range(100000) %}"
		     "{% endfor %}{% endfor %}", &steps, "more than 1000000 steps", "step limit");
	jinja_opts mem = { .max_memory = 4 << 20 };
	expect_error("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}"
		     "{% set ns.l = ns.l + [i] %}{% endfor %}", &mem, "bytes of memory",
		     "memory limit");
	expect_error("{{ range(1000000)|list }}", NULL, "range too big", "sandbox range limit");

	/* nesting: expression depth, brackets, blocks, values */
	char *deep = slm_xmalloc(40000);
	strcpy(deep, "{{ ");
	for (int i = 0; i < 3000; i++)
		strcat(deep, "-");
	strcat(deep, "1 }}");
	expect_error(deep, NULL, "nested too deeply", "deep unary nesting");
	strcpy(deep, "{{ ");
	for (int i = 0; i < 1000; i++)
		strcat(deep, "[");
	strcat(deep, " }}");
	expect_error(deep, NULL, "brackets nested too deeply", "deep brackets");
	deep[0] = 0;
	for (int i = 0; i < 1000; i++)
		strcat(deep, "{% if 1 %}");
	expect_error(deep, NULL, "nested too deeply", "deep blocks");
	free(deep);
	expect_error("{% set ns = namespace(l=[]) %}{% for i in range(3000) %}"
		     "{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l }}", NULL,
		     "value nested too deeply", "deep value printing");
	expect_error("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", NULL,
		     "value nested too deeply", "self-containing namespace");
	slm_err err;
	char *out;
	int rc = render("{% set ns = namespace(l=[]) %}{% for i in range(3000) %}"
			"{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l|length }}", NULL, NULL,
			&out, &err);
	ok(rc == 0 && !strcmp(out, "1"), "deep value stays usable");
	free(out);

	/* the API itself */
	jinja_tmpl *t;
	ok(jinja_parse(&t, "[{{ x }}]", 9, &err) == 0, "parse");
	json_t *arr = json_array();
	ok(jinja_render(t, arr, &out, NULL, &err) != 0 &&
	   strstr(err.msg, "not a JSON object"), "context must be an object");
	json_decref(arr);
	size_t n;
	ok(jinja_render(t, NULL, &out, &n, &err) == 0 && n == 2 && !strcmp(out, "[]"),
	   "NULL context: everything undefined");
	free(out);
	jinja_free(t);
	json_t *ctx = json_pack("{s:s%}", "x", "a\0b", (size_t)3);
	ok(jinja_parse(&t, "{{ x }}|{{ x|length }}", 22, &err) == 0 &&
	   jinja_render(t, ctx, &out, &n, &err) == 0 && n == 5 && !memcmp(out, "a\0b|3", 5),
	   "strings with NUL bytes");
	free(out);
	jinja_free(t);
	json_decref(ctx);
}

/* Mangled templates must fail or render, never crash (run under ASan). */
static void run_hostile(void)
{
	static const char *const files[] = {
		"meetkai-functionary-medium-v3.2.jinja",
		"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja",
		"mistralai-Mistral-Nemo-Instruct-2407.jinja",
		"gemma3-it.jinja",
	};
	json_t *ctx = json_loads(
		"{\"messages\": [{\"role\": \"system\", \"content\": \"s\"},"
		"{\"role\": \"user\", \"content\": \"u\"},"
		"{\"role\": \"assistant\", \"content\": \"a\", \"tool_calls\": "
		"[{\"id\": \"123456789\", \"function\": {\"name\": \"f\", \"arguments\": \"{}\"}}]}],"
		"\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\","
		"\"description\": \"d\", \"parameters\": {\"type\": \"object\","
		"\"properties\": {\"a\": {\"type\": \"string\"}}}}}],"
		"\"add_generation_prompt\": true, \"bos_token\": \"<s>\"}", 0, NULL);
	jinja_opts o = { .max_output = 1 << 20, .max_steps = 200000, .max_memory = 64 << 20 };
	uint32_t seed = 12345;
	for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
		char *p = data_path(files[f]);
		size_t n;
		char *src = read_text(p, &n);
		free(p);
		if (!src) {
			ok(0, "read %s", files[f]);
			continue;
		}
		int rendered = 0, tries = 0;
		char *buf = slm_xmalloc(n + 1);
		for (int k = 0; k < 300; k++) {
			memcpy(buf, src, n);
			size_t len = n;
			if (k % 3 == 0) {
				seed = seed * 1103515245 + 12345;
				len = (seed >> 8) % (n + 1);
			} else {
				for (int m = 0; m < 1 + k % 4; m++) {
					seed = seed * 1103515245 + 12345;
					size_t at = (seed >> 8) % n;
					seed = seed * 1103515245 + 12345;
					buf[at] = "{}%#-+()[]|.,'\"xa \n0~*"[(seed >> 8) % 22];
				}
			}
			jinja_tmpl *t;
			slm_err err;
			tries++;
			if (jinja_parse(&t, buf, len, &err))
				continue;
			char *out;
			if (!jinja_render_opts(t, ctx, &o, &out, NULL, &err)) {
				rendered++;
				free(out);
			}
			jinja_free(t);
		}
		ok(1, "%s: %d mangled copies, %d rendered, no crash", files[f], tries, rendered);
		free(buf);
		free(src);
	}
	json_decref(ctx);
}

int main(void)
{
	run_golden();
	run_errors();
	run_limits();
	run_hostile();
	return done_testing();
}
