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

/* A per-thread buffer for the plain rows of a tile (grown, never shrunk:
 * the token path allocates only on a thread's first use of a width;
 * freed when the thread ends). */
typedef struct tile_buf_s {
	uint8_t *p;
	size_t cap;
} tile_buf_s;
static pthread_key_t tkey;
static pthread_once_t tonce = PTHREAD_ONCE_INIT;

static void tbuf_free(void *v)
{
	tile_buf_s *b = v;
	free(b->p);
	free(b);
}

static void tkey_make(void)
{
	if (pthread_key_create(&tkey, tbuf_free) != 0)
		abort();
}

static uint8_t *tile_buf(size_t bytes)
{
	pthread_once(&tonce, tkey_make);
	tile_buf_s *b = pthread_getspecific(tkey);
	if (!b) {
		b = calloc(1, sizeof *b);
		if (!b || pthread_setspecific(tkey, b) != 0)
			goto oom;
	}
	if (bytes > b->cap) {
		uint8_t *p = realloc(b->p, bytes);
		if (!p)
			goto oom;
		b->p = p;
		b->cap = bytes;
	}
	return b->p;
oom:
	fprintf(stderr, "slm: out of memory (%zu bytes for a weight tile)\n", bytes);
	abort();
}

/* rows [r0, r1) of the same tile (or of the plain rows after the last)
 * through the plain kernel */
static void mm_part(const kern_mat *m, size_t rb, int64_t r0, int64_t r1, const void *acts,
		    size_t as, int B, float *y, int64_t ldy)
{
	const int id = m->t->ggml_id;
	const int64_t te = m->nrows / DTYPE_TILE * DTYPE_TILE;
	if (r0 >= te) {
		cur->matmul[id](m->n, (const uint8_t *)m->w + r0 * rb, rb, r1 - r0, acts, as, B, y,
				ldy);
		return;
	}
	uint8_t *p = tile_buf((size_t)(r1 - r0) * rb);
	dtype_untile_rows(m->t, m->n, m->nrows, m->w, r0, r1, p);
	cur->matmul[id](m->n, p, rb, r1 - r0, acts, as, B, y, ldy);
}

void kern_mat_mul(const kern_mat *m, const void *acts, int B, float *y, int64_t ldy,
		  int64_t r0, int64_t r1)
{
	kern_init();
	const int id = m->t->ggml_id;
	const size_t rb = row_bytes(m->t, m->n), as = B > 1 ? kern_act_bytes(m->t, m->n) : 0;
	if (!m->tiled) {
		cur->matmul[id](m->n, (const uint8_t *)m->w + r0 * rb, rb, r1 - r0, acts, as, B,
				y, ldy);
		return;
	}
	/* te: the end of the last whole tile of the matrix, we: of the range */
	const int64_t te = m->nrows / DTYPE_TILE * DTYPE_TILE;
	const int64_t we = (r1 < te ? r1 : te) / DTYPE_TILE * DTYPE_TILE;
	for (int64_t r = r0; r < r1;) {
		/* a run of whole tiles through the tile kernel, if there is one */
		if (cur->matmul_t[id] && r % DTYPE_TILE == 0 && we > r) {
			cur->matmul_t[id](m->n, (const uint8_t *)m->w + r * rb, rb, we - r, acts, as,
					  B, y + (r - r0), ldy);
			r = we;
			continue;
		}
		/* else the rest of r's tile (or the plain rows after the last) */
		int64_t e = r < te ? (r / DTYPE_TILE + 1) * DTYPE_TILE : r1;
		if (e > r1)
			e = r1;
		mm_part(m, rb, r, e, acts, as, B, y + (r - r0), ldy);
		r = e;
	}
}

void kern_mat_dequant(const kern_mat *m, int64_t r0, int64_t r1, float *dst)
{
	kern_init();
	const size_t rb = row_bytes(m->t, m->n);
	const int id = m->t->ggml_id;
	if (!m->tiled) {
		cur->dequant[id]((const uint8_t *)m->w + r0 * rb, dst, (r1 - r0) * m->n);
		return;
	}
	uint8_t *p = tile_buf(DTYPE_TILE * rb);
	for (int64_t r = r0; r < r1;) {
		int64_t e = (r / DTYPE_TILE + 1) * DTYPE_TILE;
		if (e > r1)
			e = r1;
		dtype_untile_rows(m->t, m->n, m->nrows, m->w, r, e, p);
		cur->dequant[id](p, dst + (r - r0) * m->n, (e - r) * m->n);
		r = e;
	}
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
