/*
 * mkbundle.c - test helper: writes a small but complete bundle (tiny llama
 * hyper-parameters, a toy tokenizer, a chat template and tensors of several
 * dtypes filled with seeded pseudo-random bytes) through libcommon's
 * writer. usage: mkbundle [--gzip] [--seed N] [--name NAME] OUT
 */
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "cli.h"

static uint64_t rng;
static uint8_t next_byte(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint8_t)(rng >> 24);
}

int main(int argc, char **argv)
{
	slm_cli_init(argc, argv);
	int gzip = 0;
	unsigned long seed = 1;
	const char *name = "tiny-test", *out = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--gzip"))
			gzip = 1;
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--name") && i + 1 < argc)
			name = argv[++i];
		else
			out = argv[i];
	}
	if (!out)
		slm_die(EX_USAGE, "usage: mkbundle [--gzip] [--seed N] [--name NAME] OUT");
	rng = 0x9e3779b97f4a7c15ull ^ seed;
	json_t *man = json_pack(
		"{s:s, s:s, s:{s:i, s:i, s:i, s:i, s:i, s:f, s:f},"
		" s:{s:s, s:s, s:[s,s,s,s,s,s], s:[s], s:i, s:i},"
		" s:s, s:{s:f, s:i}, s:{s:s, s:s}}",
		"name", name, "arch", "llama",
		"hparams", "n_layer", 1, "n_embd", 64, "n_head", 4, "n_head_kv", 2,
		"n_ff", 128, "rope_base", 10000.0, "norm_eps", 1e-5,
		"tokenizer", "model", "gpt2", "pre", "smollm",
		"tokens", "<s>", "</s>", "a", "b", "ab", "\xc4\xa0",
		"merges", "a b", "bos", 0, "eos", 1,
		"chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}",
		"generation", "temperature", 0.7, "top_k", 40,
		"provenance", "source", "tests/mkbundle", "tool", "mkbundle");
	struct { const char *name, *dtype; int nd; uint64_t ne[4]; } ts[] = {
		{ "token_embd.weight", "f16", 2, { 64, 6 } },
		{ "blk.0.attn_q.weight", "q8_0", 2, { 64, 64 } },
		{ "blk.0.attn_k.weight", "q4_0", 2, { 64, 32 } },
		{ "blk.0.ffn_up.weight", "q4_k", 2, { 256, 2 } },
		{ "blk.0.attn_norm.weight", "f32", 1, { 64 } },
		{ "output_norm.weight", "bf16", 1, { 64 } },
	};
	slm_err err;
	slm_bwriter *w = bwriter_new(man);
	json_decref(man);
	size_t n = sizeof ts / sizeof ts[0];
	for (size_t i = 0; i < n; i++)
		if (bwriter_add_tensor(w, ts[i].name, dtype_by_name(ts[i].dtype), ts[i].nd,
				       ts[i].ne, &err) < 0)
			slm_die_err(&err);
	if (bwriter_add_member(w, "notes/README", 13, &err) < 0 ||
	    bwriter_open(w, out, gzip, &err) < 0)
		slm_die_err(&err);
	for (size_t i = 0; i < n; i++) {
		uint64_t ne = 1, bytes;
		for (int j = 0; j < ts[i].nd; j++)
			ne *= ts[i].ne[j];
		dtype_nbytes(dtype_by_name(ts[i].dtype), ts[i].ne[0], ne, &bytes);
		uint8_t *buf = slm_xmalloc(bytes);
		for (uint64_t k = 0; k < bytes; k++)
			buf[k] = next_byte();
		/* write in two pieces to exercise the streaming path */
		if (bwriter_write(w, buf, bytes / 3, &err) < 0 ||
		    bwriter_write(w, buf + bytes / 3, bytes - bytes / 3, &err) < 0)
			slm_die_err(&err);
		free(buf);
	}
	if (bwriter_write(w, "hello bundle\n", 13, &err) < 0 ||
	    bwriter_close(w, &err) < 0)
		slm_die_err(&err);
	return 0;
}
