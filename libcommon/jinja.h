/*
 * jinja.h - a Jinja2 subset interpreter for chat templates, rendering
 * byte for byte what Python's jinja2 renders the way Hugging Face
 * transformers' apply_chat_template() sets it up: a sandboxed environment
 * with trim_blocks, lstrip_blocks and the loopcontrols extension, the
 * globals raise_exception() and strftime_now(), and transformers' tojson.
 *
 * A construct outside the subset fails with an error naming it and its
 * template line ("template line 12: unsupported filter 'wordwrap'").
 * Rendering is bounded: macro recursion depth, evaluation steps, memory
 * and output size all have limits, so hostile templates fail cleanly.
 */
#ifndef SLM_JINJA_H
#define SLM_JINJA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>

#include "util.h"

typedef struct jinja_tmpl jinja_tmpl;

/* Parse (compile) a template. The source must be UTF-8; it is copied, so
 * src may be freed afterwards. Returns 0, or -1 with err filled
 * (EX_DATAERR: "template line N: ..."). */
int jinja_parse(jinja_tmpl **t, const char *src, size_t len, slm_err *err);

/* Render options; a zeroed struct (or NULL) means the defaults. */
typedef struct jinja_opts {
	/* The time strftime_now() formats; NULL: the current local time. */
	const struct tm *now;
	size_t max_output;   /* bytes of output; 0: 256 MiB */
	size_t max_memory;   /* bytes of working memory; 0: 1 GiB */
	int max_depth;       /* nested macro calls; 0: 100 */
	uint64_t max_steps;  /* evaluation steps; 0: 100 million */
} jinja_opts;

/*
 * Render with ctx, a JSON object whose members are the template's
 * variables (messages, add_generation_prompt, bos_token, eos_token,
 * tools, ... and any extra ones). A member that is absent is undefined in
 * the template; a null member is None. Objects keep their key order.
 * *out is malloc'd and NUL-terminated (the text may hold NULs of its own:
 * use *outlen). Returns 0, or -1 with err filled; an error the template
 * raises with raise_exception(msg) reads "template line N:
 * raise_exception: msg".
 */
int jinja_render_opts(const jinja_tmpl *t, const json_t *ctx,
		      const jinja_opts *opts, char **out, size_t *outlen,
		      slm_err *err);
int jinja_render(const jinja_tmpl *t, const json_t *ctx, char **out,
		 size_t *outlen, slm_err *err);

void jinja_free(jinja_tmpl *t);

#endif
