/*
 * slm-gen - read a token stream, run the bundle's model on every sequence
 * in it, and write the generated tokens as a token stream, each token
 * flushed as soon as it is sampled. Sequences are decoded together in
 * slots (continuous batching): a finished sequence's slot is refilled from
 * the input while the others keep going. With --echo-logits (--score) it
 * generates nothing and writes instead the log-probability the model gives
 * each token of each sequence (teacher forcing).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blas.h"
#include "bundle.h"
#include "cli.h"
#include "kern/kern.h"
#include "model.h"
#include "pool.h"
#include "sample.h"
#include "score.h"
#include "store.h"
#include "stream.h"
#include "tok.h"
#include "util.h"

#define MAX_STOPS 8
#define MAX_LOGPROBS 100

static const char usage_text[] =
	"usage: slm-gen [-m BUNDLE] [-n N] [-c CTX] [-t THREADS] [--parallel N]\n"
	"               [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
	"               [--repeat-penalty R] [--repeat-last-n N]\n"
	"               [--frequency-penalty F] [--presence-penalty P] [--seed N]\n"
	"               [--stop STRING]... [--logprobs N] [--batch N] [--json]\n"
	"               [--echo-logits | --score] [--f32-act] [-f] [-q] [-v] [-o OUT]\n"
	"               [INPUT]\n";

static struct {
	const char *model, *out, *in;
	int n_predict, n_ctx, threads, parallel, logprobs, batch;
	int json, force, quiet, verbose, score, f32_act;
	slm_sample_params sp;
	int have_seed;
	int set_temp, set_topk, set_topp, set_minp, set_rep;
	char *stop[MAX_STOPS];
	int nstop;
} opt = { .n_predict = -1 };

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- input: a reader thread feeding a queue ---- */

typedef struct qitem {
	json_t *rec;
	struct qitem *next;
} qitem;

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	qitem *head, *tail;
	int eof;
	slm_err err;
	int failed;
} q = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, { 0, "" }, 0 };

static void *reader_main(void *arg)
{
	slm_sreader *r = arg;
	for (;;) {
		json_t *rec;
		slm_err err;
		int rc = sreader_next(r, &rec, &err);
		pthread_mutex_lock(&q.mu);
		if (rc <= 0) {
			q.eof = 1;
			if (rc < 0) {
				q.err = err;
				q.failed = 1;
			}
			pthread_cond_signal(&q.cv);
			pthread_mutex_unlock(&q.mu);
			return NULL;
		}
		qitem *it = slm_xcalloc(1, sizeof *it);
		it->rec = rec;
		if (q.tail)
			q.tail->next = it;
		else
			q.head = it;
		q.tail = it;
		pthread_cond_signal(&q.cv);
		pthread_mutex_unlock(&q.mu);
	}
}

/* Next record: blocking or not. NULL at end of input or when none is
 * ready (non-blocking). */
static json_t *q_pop(int block, int *eof)
{
	pthread_mutex_lock(&q.mu);
	while (block && !q.head && !q.eof)
		pthread_cond_wait(&q.cv, &q.mu);
	json_t *rec = NULL;
	if (q.head) {
		qitem *it = q.head;
		q.head = it->next;
		if (!q.head)
			q.tail = NULL;
		rec = it->rec;
		free(it);
	}
	*eof = q.eof && !q.head && !rec;
	pthread_mutex_unlock(&q.mu);
	return rec;
}

/* ---- output ---- */

static slm_swriter *out;

static void put(json_t *rec)
{
	slm_err err;
	if (swriter_put(out, rec, &err) < 0)
		slm_die_err(&err);
	json_decref(rec);
}

/* ---- the vocabulary: end-of-generation tokens, stop strings, thinking ---- */

static tok_vocab *vocab;
static int32_t think_open = TOK_NULL, think_close = TOK_NULL;

/* ---- jobs ---- */

typedef struct job {
	json_t *id;
	int32_t *prompt;
	int np;
	int pos;          /* tokens in the cache */
	int n_gen;
	int n_predict;    /* -1: until the end of the context */
	int32_t last;     /* token to feed next (generation phase) */
	int slot;
	int active;
	int thinking;
	uint64_t ordinal;
	slm_sampler *smp;
	double t0, t_prompt;
	/* stop strings: generated text is kept while a stop string may
	 * still be completing; held-back tok records wait in held */
	char *stop[MAX_STOPS];
	size_t nstop;
	char *text;
	size_t ntext, captext;
	json_t *held;     /* array of tok records not yet written */
} job;

static void finish(job *j, const char *reason)
{
	double t = now_ms();
	json_t *e = stream_end(j->id, reason);
	json_object_set_new(e, "n_prompt", json_integer(j->np));
	json_object_set_new(e, "n_gen", json_integer(j->n_gen));
	json_object_set_new(e, "t_prompt_ms", json_real(round((j->t_prompt - j->t0) * 1000) / 1000));
	json_object_set_new(e, "t_gen_ms", json_real(round((t - j->t_prompt) * 1000) / 1000));
	put(e);
	json_decref(j->id);
	free(j->prompt);
	sampler_free(j->smp);
	for (size_t i = 0; i < j->nstop; i++)
		free(j->stop[i]);
	free(j->text);
	json_decref(j->held);
	memset(j, 0, sizeof *j);
}

/* Append a token's text; returns 1 when a stop string has appeared (the
 * held-back records are then dropped), else writes whatever can no longer
 * be part of a stop string. */
static int stop_check(job *j, int32_t tok, json_t *rec)
{
	if (j->nstop == 0) {
		put(rec);
		return 0;
	}
	char buf[512];
	size_t n = tok_piece(vocab, tok, 0, buf, sizeof buf);
	if (n > sizeof buf)
		n = sizeof buf;
	if (j->ntext + n + 1 > j->captext) {
		j->captext = (j->ntext + n + 1) * 2;
		j->text = slm_xrealloc(j->text, j->captext);
	}
	memcpy(j->text + j->ntext, buf, n);
	j->ntext += n;
	j->text[j->ntext] = 0;
	json_array_append_new(j->held, rec);
	for (size_t i = 0; i < j->nstop; i++)
		if (memmem(j->text, j->ntext, j->stop[i], strlen(j->stop[i])))
			return 1;
	/* longest tail of the text that begins some stop string */
	size_t keep = 0;
	for (size_t i = 0; i < j->nstop; i++) {
		size_t sl = strlen(j->stop[i]);
		for (size_t k = sl - 1; k > keep; k--)
			if (k <= j->ntext && !memcmp(j->text + j->ntext - k, j->stop[i], k)) {
				keep = k;
				break;
			}
	}
	if (keep == 0) {
		size_t nh = json_array_size(j->held);
		for (size_t i = 0; i < nh; i++)
			put(json_incref(json_array_get(j->held, i)));
		json_array_clear(j->held);
		j->ntext = 0;
	} else if (keep < j->ntext) {
		memmove(j->text, j->text + j->ntext - keep, keep);
		j->ntext = keep;
	}
	return 0;
}

/* Write the records a stop string did not claim (end of sequence). */
static void flush_held(job *j)
{
	size_t nh = json_array_size(j->held);
	for (size_t i = 0; i < nh; i++)
		put(json_incref(json_array_get(j->held, i)));
	json_array_clear(j->held);
}

static void job_error(json_t *id, const char *msg)
{
	put(stream_error(id, msg));
}

/* ---- what both modes run with ---- */

typedef struct gen_run {
	slm_ctx *ctx;
	float *logits;          /* max_rows rows of n_vocab */
	int n_vocab, n_ctx, slots, max_batch, max_rows;
	const char *digest;     /* the bundle's vocabulary digest, or NULL */
	const char *bundle;     /* its path, for messages */
} gen_run;

static gen_run run;

/* The next seq record to run (a new reference), or NULL when none is
 * ready; block: wait for one, NULL then meaning the end of the input (and
 * *done set). On the way, a header naming another vocabulary is fatal,
 * upstream errors are passed on, other records skipped, and a sequence
 * that cannot run is answered with an error record: an empty one, one
 * whose tokens and room more tokens do not fit the context, one holding a
 * token outside the vocabulary. */
static json_t *next_seq(int block, int room, int *done)
{
	for (;;) {
		int eof = 0;
		json_t *rec = q_pop(block, &eof);
		if (!rec) {
			if (eof)
				*done = 1;
			return NULL;
		}
		int type = stream_rec_type(rec);
		if (type == SLM_REC_HEADER) {
			const char *vd = json_string_value(json_object_get(rec, "vocab"));
			if (vd && run.digest && strcmp(vd, run.digest))
				slm_die(EX_DATAERR,
					"%s: the token stream was made with a different vocabulary than %s's",
					opt.in ? opt.in : "standard input", run.bundle);
			json_decref(rec);
			continue;
		}
		if (type == SLM_REC_ERROR) { /* pass upstream errors on */
			put(rec);
			continue;
		}
		if (type != SLM_REC_SEQ) {
			json_decref(rec);
			continue;
		}
		json_t *id = json_object_get(rec, "id");
		json_t *toks = json_object_get(rec, "tokens");
		size_t np = json_array_size(toks);
		const char *bad = NULL;
		char msg[160];
		if (np == 0)
			bad = "empty prompt";
		else if (np + (size_t)room > (size_t)run.n_ctx) {
			snprintf(msg, sizeof msg,
				 "prompt of %zu tokens does not fit the context of %d (-c)", np, run.n_ctx);
			bad = msg;
		}
		for (size_t i = 0; !bad && i < np; i++) {
			json_int_t t = json_integer_value(json_array_get(toks, i));
			if (t >= run.n_vocab) {
				snprintf(msg, sizeof msg,
					 "token %lld at position %zu is outside the vocabulary of %d",
					 (long long)t, i, run.n_vocab);
				bad = msg;
			}
		}
		if (!bad)
			return rec;
		job_error(id, bad);
		json_decref(rec);
	}
}

/* The tokens of a seq record (checked by next_seq). */
static int32_t *seq_tokens(const json_t *rec, int *n)
{
	json_t *toks = json_object_get(rec, "tokens");
	*n = (int)json_array_size(toks);
	int32_t *t = slm_xmalloc((size_t)*n * sizeof *t);
	for (int i = 0; i < *n; i++)
		t[i] = (int32_t)json_integer_value(json_array_get(toks, i));
	return t;
}

/* The --logprobs most likely tokens of a row of logits, most likely first,
 * as an array of [token, logprob] pairs. */
static json_t *top_pairs(const float *row)
{
	int32_t ids[MAX_LOGPROBS];
	float lp[MAX_LOGPROBS];
	top_logprobs(row, run.n_vocab, opt.logprobs, ids, lp);
	json_t *top = json_array();
	for (int k = 0; k < opt.logprobs && ids[k] >= 0; k++)
		json_array_append_new(top, json_pack("[i, f]", ids[k], (double)lp[k]));
	return top;
}

/* ---- --echo-logits: the log-probability of every token of a sequence ---- */

/* A sequence being scored; its index is its KV slot. */
typedef struct sjob {
	json_t *id;
	int32_t *tok;
	int n;
	double logprob;   /* sum over positions 1..n-1, in position order */
	double t0;
} sjob;

/* After a forward call: a score record for each entry with logits (the
 * log-probability of the token at the next position), and a sequence's
 * end record after its last entry. */
static void score_rows(void *arg, const slm_entry *e, int n, float *const *logits)
{
	sjob *jobs = arg;
	for (int i = 0; i < n; i++) {
		sjob *j = &jobs[e[i].slot];
		if (e[i].logits >= 0) {
			const float *row = logits[0] + (size_t)e[i].logits * (size_t)run.n_vocab;
			int p = e[i].pos + 1;
			double lp = score_logprob(row, run.n_vocab, j->tok[p]);
			j->logprob += lp;
			json_t *rec = stream_score(j->id, p, j->tok[p], lp);
			if (opt.logprobs)
				json_object_set_new(rec, "top", top_pairs(row));
			put(rec);
		}
		if (e[i].pos < j->n - 1)
			continue;
		json_t *end = stream_end(j->id, "scored");
		json_object_set_new(end, "n_prompt", json_integer(j->n));
		json_object_set_new(end, "n_scored", json_integer(j->n - 1));
		json_object_set_new(end, "logprob", json_real(j->logprob));
		if (j->n > 1)
			json_object_set_new(end, "ppl", json_real(exp(-j->logprob / (j->n - 1))));
		json_object_set_new(end, "t_prompt_ms",
				    json_real(round((now_ms() - j->t0) * 1000) / 1000));
		put(end);
		json_decref(j->id);
		free(j->tok);
		memset(j, 0, sizeof *j);
	}
}

/* Score the input: up to one sequence per slot at a time (those already
 * read), each in its own slot, all in forward calls of --batch entries. */
static void score_all(void)
{
	sjob *jobs = slm_xcalloc((size_t)run.slots, sizeof *jobs);
	slm_entry *ent = NULL;
	size_t cap = 0;
	int done = 0;
	while (!done) {
		int ns = 0;
		long n = 0;
		json_t *rec;
		while (ns < run.slots && (rec = next_seq(ns == 0, 0, &done))) {
			sjob *j = &jobs[ns];
			j->id = json_incref(json_object_get(rec, "id"));
			j->tok = seq_tokens(rec, &j->n);
			j->t0 = now_ms();
			json_decref(rec);
			if ((size_t)(n + j->n) > cap) {
				cap = (size_t)(n + j->n) * 2;
				ent = slm_xrealloc(ent, cap * sizeof *ent);
			}
			n += score_seq_entries(ent + n, j->tok, j->n, ns, 0, j->n - 1);
			ns++;
		}
		if (ns)
			score_run(&run.ctx, &run.logits, 1, ent, n, run.max_batch, run.max_rows,
				  score_rows, jobs);
	}
	free(ent);
	free(jobs);
}

/* ---- generation ---- */

/* Run the input's jobs in slots until the input ends and every job has. */
static void generate(void)
{
	job *jobs = slm_xcalloc((size_t)run.slots, sizeof *jobs);
	slm_entry *ent = slm_xmalloc((size_t)run.max_batch * sizeof *ent);
	int *ent_job = slm_xmalloc((size_t)run.max_batch * sizeof *ent_job);
	float *raw = opt.logprobs ? slm_xmalloc((size_t)run.n_vocab * sizeof *raw) : NULL;
	uint64_t ordinal = 0;
	int input_done = 0;
	int slots = run.slots, max_batch = run.max_batch;

	for (;;) {
		/* fill free slots */
		int nactive = 0;
		for (int s = 0; s < slots; s++)
			nactive += jobs[s].active;
		json_t *rec;
		while (!input_done && nactive < slots &&
		       (rec = next_seq(nactive == 0, 1, &input_done))) {
			int s = 0;
			while (jobs[s].active)
				s++;
			job *j = &jobs[s];
			memset(j, 0, sizeof *j);
			j->active = 1;
			j->slot = s;
			j->id = json_incref(json_object_get(rec, "id"));
			j->prompt = seq_tokens(rec, &j->np);
			j->ordinal = ordinal++;
			/* per-request options (slm-tok passes them in meta) */
			json_t *meta = json_object_get(rec, "meta");
			slm_sample_params sp = opt.sp;
			j->n_predict = opt.n_predict;
			json_t *v;
			if (json_is_integer(v = json_object_get(meta, "max_tokens")) &&
			    json_integer_value(v) >= 0)
				j->n_predict = (int)(json_integer_value(v) > INT32_MAX ? INT32_MAX : json_integer_value(v));
			if (json_is_number(v = json_object_get(meta, "temperature")))
				sp.temp = (float)json_number_value(v);
			if (json_is_number(v = json_object_get(meta, "top_p")))
				sp.top_p = (float)json_number_value(v);
			if (json_is_integer(v = json_object_get(meta, "top_k")))
				sp.top_k = (int)json_integer_value(v);
			if (json_is_number(v = json_object_get(meta, "min_p")))
				sp.min_p = (float)json_number_value(v);
			if (json_is_integer(v = json_object_get(meta, "seed")))
				sp.seed = (uint64_t)json_integer_value(v);
			j->smp = sampler_new(&sp, run.n_vocab, json_is_integer(json_object_get(meta, "seed")) ? 0 : j->ordinal);
			for (int i = 0; i < opt.nstop; i++)
				j->stop[j->nstop++] = slm_xstrdup(opt.stop[i]);
			v = json_object_get(meta, "stop");
			if (json_is_string(v) && j->nstop < MAX_STOPS && json_string_length(v))
				j->stop[j->nstop++] = slm_xstrdup(json_string_value(v));
			for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++) {
				const char *st = json_string_value(json_array_get(v, i));
				if (st && *st && j->nstop < MAX_STOPS)
					j->stop[j->nstop++] = slm_xstrdup(st);
			}
			j->held = json_array();
			for (int i = 0; i < j->np; i++)
				sampler_accept(j->smp, j->prompt[i]);
			j->t0 = now_ms();
			json_decref(rec);
			nactive++;
		}
		if (nactive == 0) {
			if (input_done)
				break;
			continue;
		}
		/* one batch: each decoding job one token, prompts in chunks */
		int n = 0, rows = 0;
		for (int s = 0; s < slots && n < max_batch; s++) {
			job *j = &jobs[s];
			if (!j->active || j->pos < j->np)
				continue;
			ent[n] = (slm_entry){ j->last, j->pos, s, rows++ };
			ent_job[n++] = s;
		}
		for (int s = 0; s < slots && n < max_batch; s++) {
			job *j = &jobs[s];
			if (!j->active || j->pos >= j->np)
				continue;
			int take = j->np - j->pos;
			if (take > max_batch - n)
				take = max_batch - n;
			for (int i = 0; i < take; i++) {
				int p = j->pos + i;
				int last = p == j->np - 1;
				ent[n] = (slm_entry){ j->prompt[p], p, s, last ? rows++ : -1 };
				ent_job[n++] = s;
			}
		}
		/* logits rows must follow entry order: renumber */
		rows = 0;
		for (int i = 0; i < n; i++)
			if (ent[i].logits >= 0)
				ent[i].logits = rows++;
		model_forward(run.ctx, ent, n, run.logits);
		double t = now_ms();
		for (int i = 0; i < n; i++) {
			job *j = &jobs[ent_job[i]];
			j->pos = ent[i].pos + 1;
			if (ent[i].logits < 0)
				continue;
			if (j->n_gen == 0 && ent[i].pos == j->np - 1)
				j->t_prompt = t;
			float *lg = run.logits + (size_t)ent[i].logits * (size_t)run.n_vocab;
			if (j->n_predict == 0) {
				finish(j, "length");
				continue;
			}
			/* the model's log-probabilities, taken before the sampler's
			 * penalties change the logits */
			json_t *top = opt.logprobs ? top_pairs(lg) : NULL;
			if (opt.logprobs)
				memcpy(raw, lg, (size_t)run.n_vocab * sizeof *raw);
			int32_t tok = sampler_sample(j->smp, lg);
			sampler_accept(j->smp, tok);
			j->n_gen++;
			j->last = tok;
			json_t *rec = stream_tok(j->id, tok);
			if (opt.logprobs) {
				json_object_set_new(rec, "logprob",
						    json_real(score_logprob(raw, run.n_vocab, tok)));
				json_object_set_new(rec, "top", top);
			}
			if (tok == think_open)
				j->thinking = 1;
			if (j->thinking)
				json_object_set_new(rec, "think", json_true());
			if (tok == think_close)
				j->thinking = 0;
			if (stop_check(j, tok, rec)) {
				finish(j, "stop");
				continue;
			}
			if (tok_is_eog(vocab, tok)) {
				flush_held(j);
				finish(j, "eos");
			} else if (j->n_predict >= 0 && j->n_gen >= j->n_predict) {
				flush_held(j);
				finish(j, "length");
			} else if (j->pos >= run.n_ctx) {
				flush_held(j);
				finish(j, "context");
			}
		}
	}
	free(raw);
	free(ent);
	free(ent_job);
	free(jobs);
}

static uint64_t mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return 0;
	char line[256];
	unsigned long long kb = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

static float gen_default(const slm_bundle *b, const char *key, float def)
{
	json_t *v = json_object_get(json_object_get(bundle_manifest(b), "generation"), key);
	return json_is_number(v) ? (float)json_number_value(v) : def;
}

enum {
	OPT_VERSION = 256, OPT_JSON, OPT_TEMP, OPT_TOPK, OPT_TOPP, OPT_MINP, OPT_REP,
	OPT_REPN, OPT_FREQ, OPT_PRES, OPT_SEED, OPT_LOGPROBS, OPT_PARALLEL, OPT_BATCH,
	OPT_STOP, OPT_SCORE, OPT_F32_ACT,
};

static double parse_float(const char *optname, const char *arg, double lo, double hi)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v >= lo && v <= hi))
		slm_die(EX_USAGE, "%s: '%s' is not a number from %g to %g", optname, arg, lo, hi);
	return v;
}

int main(int argc, char **argv)
{
	slm_cli_init(argc, argv);
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "model", required_argument, NULL, 'm' },
		{ "output", required_argument, NULL, 'o' },
		{ "n-predict", required_argument, NULL, 'n' },
		{ "ctx-size", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "parallel", required_argument, NULL, OPT_PARALLEL },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "temp", required_argument, NULL, OPT_TEMP },
		{ "top-k", required_argument, NULL, OPT_TOPK },
		{ "top-p", required_argument, NULL, OPT_TOPP },
		{ "min-p", required_argument, NULL, OPT_MINP },
		{ "repeat-penalty", required_argument, NULL, OPT_REP },
		{ "repeat-last-n", required_argument, NULL, OPT_REPN },
		{ "frequency-penalty", required_argument, NULL, OPT_FREQ },
		{ "presence-penalty", required_argument, NULL, OPT_PRES },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "logprobs", required_argument, NULL, OPT_LOGPROBS },
		{ "stop", required_argument, NULL, OPT_STOP },
		{ "echo-logits", no_argument, NULL, OPT_SCORE },
		{ "score", no_argument, NULL, OPT_SCORE },
		{ "f32-act", no_argument, NULL, OPT_F32_ACT },
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	opt.sp.repeat_penalty = 1.0f;
	opt.sp.repeat_last_n = 64;
	int c;
	while ((c = getopt_long(argc, argv, "hm:o:n:c:t:fqv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(usage_text, stdout); return 0;
		case OPT_VERSION: slm_cli_version();
		case OPT_JSON: opt.json = 1; break;
		case 'm': opt.model = optarg; break;
		case 'o': opt.out = optarg; break;
		case 'n': opt.n_predict = (int)slm_cli_long("-n", optarg, -1, 1 << 30); break;
		case 'c': opt.n_ctx = (int)slm_cli_long("-c", optarg, 1, 1 << 24); break;
		case 't': opt.threads = (int)slm_cli_long("-t", optarg, 1, 1024); break;
		case OPT_PARALLEL: opt.parallel = (int)slm_cli_long("--parallel", optarg, 1, 1024); break;
		case OPT_BATCH: opt.batch = (int)slm_cli_long("--batch", optarg, 1, 1 << 16); break;
		case OPT_TEMP: opt.sp.temp = (float)parse_float("--temp", optarg, 0, 100); opt.set_temp = 1; break;
		case OPT_TOPK: opt.sp.top_k = (int)slm_cli_long("--top-k", optarg, 0, 1 << 30); opt.set_topk = 1; break;
		case OPT_TOPP: opt.sp.top_p = (float)parse_float("--top-p", optarg, 0, 1); opt.set_topp = 1; break;
		case OPT_MINP: opt.sp.min_p = (float)parse_float("--min-p", optarg, 0, 1); opt.set_minp = 1; break;
		case OPT_REP: opt.sp.repeat_penalty = (float)parse_float("--repeat-penalty", optarg, 0, 100); opt.set_rep = 1; break;
		case OPT_REPN: opt.sp.repeat_last_n = (int)slm_cli_long("--repeat-last-n", optarg, 0, 1 << 20); break;
		case OPT_FREQ: opt.sp.freq_penalty = (float)parse_float("--frequency-penalty", optarg, -100, 100); break;
		case OPT_PRES: opt.sp.presence_penalty = (float)parse_float("--presence-penalty", optarg, -100, 100); break;
		case OPT_SEED: {
			/* -1 means a random seed, as in llama.cpp */
			if (!strcmp(optarg, "-1"))
				break;
			char *end;
			errno = 0;
			unsigned long long s = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end || optarg[0] == '-')
				slm_die(EX_USAGE, "--seed: '%s' is not an unsigned integer (or -1)", optarg);
			opt.sp.seed = s;
			opt.have_seed = 1;
			break;
		}
		case OPT_STOP:
			if (opt.nstop == MAX_STOPS)
				slm_die(EX_USAGE, "--stop: at most %d stop strings", MAX_STOPS);
			if (!*optarg)
				slm_die(EX_USAGE, "--stop: empty string");
			opt.stop[opt.nstop++] = slm_xstrdup(optarg);
			break;
		case OPT_LOGPROBS: opt.logprobs = (int)slm_cli_long("--logprobs", optarg, 0, MAX_LOGPROBS); break;
		case OPT_SCORE: opt.score = 1; break;
		case OPT_F32_ACT: opt.f32_act = 1; break;
		case 'f': opt.force = 1; break;
		case 'q': opt.quiet = 1; break;
		case 'v': opt.verbose = 1; break;
		default: slm_cli_usage_error(usage_text);
		}
	}
	if (optind < argc)
		opt.in = argv[optind++];
	if (optind < argc)
		slm_cli_usage_error(usage_text);

	slm_err err;
	char *path = store_resolve(opt.model, &err);
	if (!path)
		slm_die_err(&err);
	slm_bundle *b;
	double t_load0 = now_ms();
	if (bundle_open(&b, path, &err) < 0)
		slm_die_err(&err);
	slm_model m;
	if (model_load(&m, b, &err) < 0)
		slm_die_err(&err);

	/* sampling defaults: the bundle's presets, then llama.cpp's */
	if (!opt.set_temp) opt.sp.temp = gen_default(b, "temperature", 0.8f);
	if (!opt.set_topk) opt.sp.top_k = (int)gen_default(b, "top_k", 40);
	if (!opt.set_topp) opt.sp.top_p = gen_default(b, "top_p", 0.95f);
	if (!opt.set_minp) opt.sp.min_p = gen_default(b, "min_p", 0.05f);
	if (!opt.set_rep) opt.sp.repeat_penalty = gen_default(b, "repeat_penalty", 1.0f);
	if (!opt.have_seed) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		opt.sp.seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
	}

	int threads = opt.threads ? opt.threads : pool_default_threads();
	int slots = opt.parallel ? opt.parallel : 4;
	/* memory: weights + KV cache must fit; -c defaults to the model's
	 * context, reduced to what fits */
	uint64_t avail = mem_available();
	uint64_t weights = 0;
	for (size_t i = 0; i < bundle_n_tensors(b); i++)
		weights += bundle_tensor_at(b, i)->size;
	uint64_t scratch = 64ull << 20;
	int n_ctx = opt.n_ctx ? opt.n_ctx : m.n_ctx_train;
	if (!opt.n_ctx && avail) {
		while (n_ctx > 256 && weights + kv_bytes(&m, slots, n_ctx) + scratch > avail * 9 / 10)
			n_ctx /= 2;
	}
	uint64_t needb = weights + kv_bytes(&m, slots, n_ctx) + scratch;
	if (avail && needb > avail) {
		char a[32], w[32], k[32], v[32];
		slm_die(EX_TEMPFAIL,
			"%s: needs %s (weights %s + KV cache %s for %d slots x %d tokens), %s available; try a smaller -c or --parallel",
			bundle_path(b), slm_fmt_size(needb, a), slm_fmt_size(weights, w),
			slm_fmt_size(kv_bytes(&m, slots, n_ctx), k), slots, n_ctx,
			slm_fmt_size(avail, v));
	}
	slm_kv kv;
	if (kv_init(&kv, &m, slots, n_ctx, &err) < 0)
		slm_die_err(&err);
	slm_pool *pool = pool_new(threads, 1);
	/* scoring: by default no batch large enough for BLIS (but for its
	 * exact route, in f32-activation mode), so that a sequence's figures
	 * do not depend on what shares its passes */
	int batch = opt.batch ? opt.batch : 256;
	int exact = model_exact_batch(&m, opt.f32_act);
	if (!opt.batch && opt.score && exact < batch)
		batch = exact > 1 ? exact : 1;
	int max_batch = batch < slots ? slots : batch;
	/* generation: a logits row per entry at most; scoring: nearly every
	 * entry has one, so their memory is capped */
	int max_rows = opt.score ? score_rows_cap(m.n_vocab, max_batch) : max_batch;
	run = (gen_run){
		.ctx = ctx_new(&m, &kv, pool, max_batch),
		.logits = slm_xmalloc((size_t)max_rows * (size_t)m.n_vocab * sizeof(float)),
		.n_vocab = m.n_vocab, .n_ctx = n_ctx, .slots = slots,
		.max_batch = max_batch, .max_rows = max_rows, .bundle = bundle_path(b),
	};
	ctx_set_f32_act(run.ctx, opt.f32_act);
	if (tok_vocab_from_bundle(&vocab, b, &err) < 0)
		slm_die_err(&err);
	if (tok_n_vocab(vocab) > m.n_vocab)
		slm_die(EX_DATAERR, "%s: the vocabulary has %d tokens, the model only %d",
			bundle_path(b), tok_n_vocab(vocab), m.n_vocab);
	think_open = tok_find(vocab, "<think>", 7);
	think_close = tok_find(vocab, "</think>", 8);
	if (opt.verbose) {
		char blas[160];
		blas_setup(0, blas, sizeof blas);
		fprintf(stderr,
			"%s: %s: %s, %d layers, %d threads, kernels %s%s, %s, context %d x %d slots, batch %d, loaded in %.0f ms\n",
			slm_progname, bundle_path(b), m.arch_name, m.n_layer, threads,
			kern_variant_name(), opt.f32_act ? " (f32 activations)" : "", blas, n_ctx,
			slots, max_batch, now_ms() - t_load0);
	}

	FILE *fo = stdout;
	if (opt.out && strcmp(opt.out, "-")) {
		fo = fopen(opt.out, "w");
		if (!fo)
			slm_die(EX_CANTCREAT, "%s: %s", opt.out, strerror(errno));
	} else if (!opt.json) {
		slm_cli_refuse_tty(stdout, opt.force, "a token stream (use --json for text)");
	}
	out = swriter_new(fo, opt.json);
	const slm_member *vm = bundle_find_member(b, "tokenizer/vocab.msgpack");
	run.digest = vm ? vm->sha256 : NULL;
	put(stream_header(run.digest, bundle_str(b, "name")));

	slm_sreader *rd = sreader_open(opt.in, &err);
	if (!rd)
		slm_die_err(&err);
	pthread_t rt;
	pthread_create(&rt, NULL, reader_main, rd);
	if (opt.score)
		score_all();
	else
		generate();
	pthread_join(rt, NULL);
	if (q.failed)
		slm_die_err(&q.err);
	sreader_free(rd);
	swriter_free(out);
	if (fo != stdout && fclose(fo) != 0)
		slm_die(EX_IOERR, "%s: %s", opt.out, strerror(errno));
	free(run.logits);
	tok_vocab_free(vocab);
	for (int i = 0; i < opt.nstop; i++)
		free(opt.stop[i]);
	ctx_free(run.ctx);
	pool_free(pool);
	kv_free(&kv);
	model_free(&m);
	bundle_close(b);
	free(path);
	return 0;
}
