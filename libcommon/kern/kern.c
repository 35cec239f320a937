/*
 * kern.c - run-time selection of the kernel variant (CPU detection,
 * SLM_KERNEL) and the public kern_* entry points, which dispatch through
 * the chosen variant's table.
 */
#include "kern_blocks.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kern_ops avx2_ops, avx512_ops;
static int avx2_ok, avx512_ok;
static const kern_ops *cur = &kern_ref_ops;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const kern_ops *lookup(const char *variant)
{
	if (!strcmp(variant, "ref"))
		return &kern_ref_ops;
	if (!strcmp(variant, "avx2"))
		return avx2_ok ? &avx2_ops : NULL;
	if (!strcmp(variant, "avx512"))
		return avx512_ok ? &avx512_ops : NULL;
	return NULL;
}

static void detect(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	/* clang has no "f16c" here: every AVX2 CPU has F16C anyway */
	if (kern_avx2_built() && __builtin_cpu_supports("avx2") &&
	    __builtin_cpu_supports("fma")
#if !defined(__clang__)
	    && __builtin_cpu_supports("f16c")
#endif
	) {
		avx2_ok = 1;
		avx2_ops = kern_ref_ops;
		kern_avx2_fill(&avx2_ops);
	}
	if (avx2_ok && kern_avx512_built() &&
	    __builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512dq") &&
	    __builtin_cpu_supports("avx512vl") &&
	    __builtin_cpu_supports("avx512vnni")) {
		avx512_ok = 1;
		avx512_ops = avx2_ops; /* what it does not override */
		kern_avx512_fill(&avx512_ops,
				 __builtin_cpu_supports("avx512bf16"));
	}
#endif
	cur = avx512_ok ? &avx512_ops : avx2_ok ? &avx2_ops : &kern_ref_ops;
	const char *want = getenv("SLM_KERNEL");
	if (want && *want) {
		const kern_ops *o = lookup(want);
		if (o)
			cur = o;
		else
			fprintf(stderr,
				"slm: SLM_KERNEL=%s: not available on this "
				"CPU or build, using %s\n",
				want, cur->name);
	}
}

void kern_init(void)
{
	pthread_once(&once, detect);
}

const char *kern_variant_name(void)
{
	kern_init();
	return cur->name;
}

const kern_ops *kern_ops_current(void)
{
	kern_init();
	return cur;
}

const kern_ops *kern_ops_for(const char *variant)
{
	kern_init();
	return lookup(variant);
}

static int type_ok(const slm_dtype *t)
{
	return t && t->ggml_id >= 0 && t->ggml_id < KERN_NTYPES &&
	       kern_ref_ops.matmul[t->ggml_id];
}

int kern_supported(const slm_dtype *t)
{
	return type_ok(t);
}

void kern_dequant(const slm_dtype *t, const void *src, float *dst, int64_t n)
{
	kern_init();
	cur->dequant[t->ggml_id](src, dst, n);
}

size_t kern_act_bytes(const slm_dtype *wt, int64_t n)
{
	switch (wt->ggml_id) {
	case KT_F32:
	case KT_F16:
		return kb_align64((size_t)n * 4);
	case KT_BF16:
		return kb_align64((size_t)n * 2);
	case KT_Q2_K:
	case KT_Q3_K:
	case KT_Q4_K:
	case KT_Q5_K:
	case KT_Q6_K:
		return ak_bytes(n);
	default:
		return a32_bytes(n);
	}
}

void kern_quant_act(const slm_dtype *wt, const float *x, void *act, int64_t n)
{
	kern_init();
	cur->quant_act[wt->ggml_id](x, act, n);
}

static size_t row_bytes(const slm_dtype *wt, int64_t n)
{
	return (size_t)(n / wt->block_elems) * wt->block_bytes;
}

void kern_matvec(const slm_dtype *wt, const void *W, int64_t n,
		 const void *act, float *y, int64_t r0, int64_t r1)
{
	kern_init();
	size_t rb = row_bytes(wt, n);
	cur->matmul[wt->ggml_id](n, (const uint8_t *)W + r0 * rb, rb, r1 - r0,
				 act, 0, 1, y, 0);
}

void kern_matmul(const slm_dtype *wt, const void *W, int64_t n,
		 const void *acts, int B, float *y, int64_t ldy, int64_t r0,
		 int64_t r1)
{
	kern_init();
	size_t rb = row_bytes(wt, n);
	cur->matmul[wt->ggml_id](n, (const uint8_t *)W + r0 * rb, rb, r1 - r0,
				 acts, kern_act_bytes(wt, n), B, y, ldy);
}

void kern_rmsnorm(float *y, const float *x, const float *w, int64_t n,
		  float eps)
{
	kern_init();
	cur->rmsnorm(y, x, w, n, eps);
}

void kern_softmax(float *x, int64_t n)
{
	kern_init();
	cur->softmax(x, n);
}

void kern_swiglu(float *y, const float *g, const float *u, int64_t n)
{
	kern_init();
	cur->swiglu(y, g, u, n);
}

void kern_geglu(float *y, const float *g, const float *u, int64_t n)
{
	kern_init();
	cur->geglu(y, g, u, n);
}

void kern_rope(float *x, int nh, int hd, int nrot, const float *cs, int neox)
{
	kern_init();
	cur->rope(x, nh, hd, nrot, cs, neox);
}

void kern_attn(const uint16_t *K, const uint16_t *V, size_t stride,
	       int64_t hd, float scale, const kern_attn_q *qs, int nq,
	       float *scratch)
{
	kern_init();
	cur->attn(K, V, stride, hd, scale, qs, nq, scratch);
}

size_t kern_attn_scratch(int nq, int64_t span, int64_t hd)
{
	/* for every variant: nq score rows of span rounded up to 16, the
	 * nq queries and 16 K rows as f32, hd rounded up to 16 */
	size_t h = (size_t)((hd + 15) & ~(int64_t)15);
	return (size_t)nq * ((size_t)((span + 15) & ~(int64_t)15) + h) + 16 * h;
}

void kern_f32_to_f16(uint16_t *dst, const float *src, int64_t n)
{
	kern_init();
	cur->f32_to_f16(dst, src, n);
}

void kern_round_f16(float *x, int64_t n)
{
	uint16_t h[256];
	kern_init();
	for (int64_t i = 0; i < n; i += 256) {
		int64_t k = n - i < 256 ? n - i : 256;
		cur->f32_to_f16(h, x + i, k);
		cur->dequant[KT_F16](h, x + i, k);
	}
}
