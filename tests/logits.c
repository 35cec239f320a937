/*
 * logits.c - test helper: run a bundle's model over token ids (from the
 * command line) and print, for every position, the argmax and the logits
 * as JSON: {"argmax":[...], "logits":[[...],...]} (logits only for the
 * positions listed with -p, all with -p all). Teacher-forced, one batch.
 * With -d FILE, the input of every matrix product is also written to FILE
 * (records: u32 name length, name, i32 rows, i32 columns, f32 values), for
 * scripts/compare-acts. With --f32-act, the model runs in f32-activation
 * mode (ctx_set_f32_act).
 * usage: logits BUNDLE [-t THREADS] [-b BATCH] [-p all|i,j,...] [-d FILE]
 *        [--f32-act] ID...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "cli.h"
#include "model.h"

static void dump_hook(void *arg, const slm_tensor *w, const float *x,
		      int64_t ldx, int B)
{
	FILE *f = arg;
	uint32_t len = (uint32_t)strlen(w->name);
	int32_t rows = B, cols = (int32_t)w->ne[0];
	fwrite(&len, 4, 1, f);
	fwrite(w->name, 1, len, f);
	fwrite(&rows, 4, 1, f);
	fwrite(&cols, 4, 1, f);
	for (int b = 0; b < B; b++)
		fwrite(x + (size_t)b * (size_t)ldx, 4, (size_t)cols, f);
}

int main(int argc, char **argv)
{
	slm_cli_init(argc, argv);
	if (argc < 3)
		slm_die(EX_USAGE, "usage: logits BUNDLE [-t N] [-b BATCH] [-p all|i,j] "
			"[-d FILE] [--f32-act] ID...");
	int threads = 1, batch = 0, f32_act = 0;
	const char *pos = "", *dump = NULL;
	int i = 2;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--f32-act")) {
			f32_act = 1;
			continue;
		}
		if (i + 1 >= argc)
			slm_die(EX_USAGE, "%s needs a value", argv[i]);
		if (!strcmp(argv[i], "-t"))
			threads = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "-b"))
			batch = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "-p"))
			pos = argv[i + 1];
		else if (!strcmp(argv[i], "-d"))
			dump = argv[i + 1];
		else
			slm_die(EX_USAGE, "unknown option %s", argv[i]);
		i++;
	}
	int n = argc - i;
	if (n <= 0)
		slm_die(EX_USAGE, "no token ids");
	slm_err err;
	slm_bundle *b;
	slm_model m;
	if (bundle_open(&b, argv[1], &err) < 0 || model_load(&m, b, &err) < 0)
		slm_die_err(&err);
	if (batch <= 0 || batch > n)
		batch = n;
	slm_kv kv;
	if (kv_init(&kv, &m, 1, n + 1, &err) < 0)
		slm_die_err(&err);
	slm_pool *pool = pool_new(threads, 0);
	slm_ctx *ctx = ctx_new(&m, &kv, pool, batch);
	ctx_set_f32_act(ctx, f32_act);
	FILE *df = NULL;
	if (dump) {
		if (!(df = fopen(dump, "wb")))
			slm_die(EX_CANTCREAT, "%s: cannot create", dump);
		ctx_set_act_hook(ctx, dump_hook, df);
	}
	float *lg = slm_xmalloc((size_t)n * (size_t)m.n_vocab * sizeof *lg);
	slm_entry *e = slm_xmalloc((size_t)n * sizeof *e);
	for (int k = 0; k < n; k++)
		e[k] = (slm_entry){ (int32_t)atoi(argv[i + k]), k, 0, 0 };
	for (int k0 = 0; k0 < n; k0 += batch) {
		int nb = n - k0 < batch ? n - k0 : batch;
		for (int k = 0; k < nb; k++)
			e[k0 + k].logits = k;
		model_forward(ctx, e + k0, nb, lg + (size_t)k0 * (size_t)m.n_vocab);
	}
	printf("{\"argmax\":[");
	for (int k = 0; k < n; k++) {
		const float *r = lg + (size_t)k * (size_t)m.n_vocab;
		int best = 0;
		for (int v = 1; v < m.n_vocab; v++)
			if (r[v] > r[best])
				best = v;
		printf(k ? ",%d" : "%d", best);
	}
	printf("],\"logits\":{");
	int first = 1;
	for (int k = 0; k < n; k++) {
		char key[16];
		snprintf(key, sizeof key, "%d", k);
		int want = !strcmp(pos, "all");
		for (const char *p = pos; !want && *p;) {
			if (atoi(p) == k && (*p >= '0' && *p <= '9'))
				want = 1;
			p = strchr(p, ',');
			if (!p)
				break;
			p++;
		}
		if (!want)
			continue;
		printf(first ? "\"%d\":[" : ",\"%d\":[", k);
		first = 0;
		const float *r = lg + (size_t)k * (size_t)m.n_vocab;
		for (int v = 0; v < m.n_vocab; v++)
			printf(v ? ",%.6g" : "%.6g", r[v]);
		printf("]");
	}
	printf("}}\n");
	if (df && fclose(df))
		slm_die(EX_IOERR, "%s: write error", dump);
	free(e);
	free(lg);
	ctx_free(ctx);
	pool_free(pool);
	kv_free(&kv);
	model_free(&m);
	bundle_close(b);
	return 0;
}
