/*
 * unit-blas.c - tests of libcommon/blas: the BLIS sub-configuration is one
 * the CPU can run and BLIS reports it; blas_gemm_rows matches a double-
 * precision product of the dequantized weights (f32, f16, q8_0, q4_k) on
 * odd sizes, row subranges, strides and scratch smaller than the rows;
 * blas_gemm_rows_exact does too, and gives an activation row the same
 * bits whatever the batch, the row range and the tiling.
 *
 *   unit-blas                 the tests (TAP)
 *   unit-blas -b [-t N] [-B B[,B...]] [TYPE...]
 *                             micro-benchmark: GFLOP/s of B x rows x n
 *                             products on SmolLM2-135M and TinyLlama-1.1B
 *                             shapes, kern_matmul (int8/bf16 dots on
 *                             quantized activations, activation quantization
 *                             included) against BLIS sgemm on dequantized
 *                             tiles; N threads (default 1), each on its own
 *                             rows as in the model. "cpu": flops per CPU
 *                             second of the threads (robust on a busy
 *                             machine), "wall": flops per second.
 *
 * Error bound of the tests (u = 2^-24): sgemm sums n products in float in
 * some order, so |y - y_ref| <= (n + 2) u sum |w| |x|, doubled for margin.
 */
#include "unit.h"

#include <blis.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "blas.h"
#include "kern/kern.h"
#include "kern/kern_blocks.h"
#include "pool.h"

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static float rndf(float lo, float hi)
{
	return lo + (hi - lo) * (float)(rnd() >> 40) * 0x1p-24f;
}

static void *xmalloc(size_t n)
{
	void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
	if (!p) {
		perror("unit-blas");
		exit(1);
	}
	return p;
}

static void put_h(uint8_t *p, float v)
{
	uint16_t h = kb_f2h(v);
	memcpy(p, &h, 2);
}

/* A rows x n weight tensor of type t: random quants, finite scales (the
 * f16 offsets of each type's scale fields). */
static slm_tensor make_tensor(const char *type, int64_t rows, int64_t n)
{
	const slm_dtype *t = dtype_by_name(type);
	int64_t nb = rows * n / t->block_elems;
	size_t bb = t->block_bytes;
	uint8_t *w = xmalloc((size_t)nb * bb);
	for (size_t i = 0; i < (size_t)nb * bb; i++)
		w[i] = (uint8_t)rnd();
	for (int64_t i = 0; i < nb; i++) {
		uint8_t *b = w + i * bb;
		switch (t->ggml_id) {
		case KT_F32: {
			float v = rndf(-1, 1);
			memcpy(b, &v, 4);
			break;
		}
		case KT_F16: put_h(b, rndf(-1, 1)); break;
		case KT_Q4_0: case KT_Q8_0: put_h(b, rndf(1e-3f, 2e-2f)); break;
		case KT_Q4_1:
			put_h(b, rndf(1e-3f, 2e-2f));
			put_h(b + 2, rndf(-0.1f, 0.1f));
			break;
		case KT_Q4_K:
			put_h(b, rndf(1e-4f, 2e-3f));
			put_h(b + 2, rndf(1e-4f, 2e-3f));
			break;
		case KT_Q6_K: put_h(b + 208, rndf(1e-4f, 2e-3f)); break;
		default:
			fprintf(stderr, "unit-blas: no weight maker for %s\n", type);
			exit(1);
		}
	}
	slm_tensor s = { .name = type, .dtype = t, .ndim = 2, .ne = { (uint64_t)n, (uint64_t)rows },
			 .nelems = (uint64_t)(rows * n), .size = (uint64_t)nb * bb, .data = w };
	return s;
}

/* ---------------------------------------------------------------------
 * Tests
 * --------------------------------------------------------------------- */

static void test_setup(void)
{
	char desc[200];
	int rc = blas_setup(0, desc, sizeof desc);
	is_int(rc, 0, "blas_setup: BLIS runs the sub-configuration asked for");
	diag("%s", desc);
	const char *arch = bli_arch_string(bli_arch_query_id());
	ok(strstr(desc, arch) != NULL, "description names BLIS's choice '%s'", arch);
	int can = 1;
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	if (!strcmp(arch, "skx"))
		can = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
		      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
	else if (!strcmp(arch, "zen3") || !strcmp(arch, "zen2") || !strcmp(arch, "zen") ||
		 !strcmp(arch, "haswell"))
		can = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	if (!getenv("BLIS_ARCH_TYPE") || strstr(desc, "set by slm"))
		ok(strcmp(arch, "generic") != 0 || !__builtin_cpu_supports("avx2"),
		   "not 'generic' on an AVX2 CPU");
#endif
	ok(can, "the CPU supports the instructions of '%s'", arch);
	char again[200];
	blas_setup(0, again, sizeof again);
	is_str(again, desc, "a second blas_setup returns the same description");
}

typedef void gemm_fn(const slm_tensor *w, const float *X, int64_t ldx, int B, float *Y,
		     int64_t ldy, int64_t r0, int64_t r1, float *scratch, size_t scratch_floats);

/* gemm (blas_gemm_rows or blas_gemm_rows_exact) on [r0, r1) of a rows x n
 * tensor, B activations with row strides ldx >= n, output stride ldy,
 * scratch of sf floats */
static void check_gemm_fn(gemm_fn *gemm, const char *type, int64_t rows, int64_t n, int B,
			  int64_t r0, int64_t r1, size_t sf)
{
	slm_tensor w = make_tensor(type, rows, n);
	int64_t ldx = n + 3, nr = r1 - r0, ldy = nr + 5;
	float *x = xmalloc((size_t)(B * ldx) * 4);
	for (int64_t i = 0; i < B * ldx; i++)
		x[i] = rndf(-1, 1);
	float *wd = xmalloc((size_t)(rows * n) * 4);
	kern_dequant(w.dtype, w.data, wd, rows * n);
	size_t ny = (size_t)(B * ldy);
	float *y = xmalloc(ny * 4);
	for (size_t i = 0; i < ny; i++)
		y[i] = 12345.0f;
	float *scratch = xmalloc(sf * 4 + 4);
	gemm(&w, x, ldx, B, y, ldy, r0, r1, scratch, sf);
	double worst = 0;
	int bad = 0, guard = 1;
	for (int b = 0; b < B; b++) {
		for (int64_t j = 0; j < ldy; j++) {
			float got = y[b * ldy + j];
			if (j >= nr) {
				guard &= got == 12345.0f;
				continue;
			}
			const float *wr = wd + (r0 + j) * n, *xb = x + b * ldx;
			double ref = 0, mag = 0;
			for (int64_t k = 0; k < n; k++) {
				ref += (double)wr[k] * xb[k];
				mag += fabs((double)wr[k] * xb[k]);
			}
			double bound = 2 * (double)(n + 2) * 0x1p-24 * mag + 1e-30;
			double e = fabs(got - ref) / bound;
			if (!(e <= 1))
				bad++;
			if (e > worst)
				worst = e;
		}
	}
	ok(!bad && guard,
	   "%s%s %lldx%lld rows [%lld,%lld) B=%d scratch %zu: within the bound (worst %.3f of it)%s",
	   gemm == blas_gemm_rows_exact ? "exact " : "", type, (long long)rows, (long long)n, (long long)r0, (long long)r1, B, sf, worst,
	   guard ? "" : ", wrote past the rows");
	free((void *)w.data);
	free(x);
	free(wd);
	free(y);
	free(scratch);
}

static void check_gemm(const char *type, int64_t rows, int64_t n, int B, int64_t r0,
		       int64_t r1, size_t sf)
{
	check_gemm_fn(blas_gemm_rows, type, rows, n, B, r0, r1, sf);
}

static void test_gemm(void)
{
	static const struct { const char *type; int64_t n; } t[] = {
		{ "f32", 37 }, { "f16", 100 }, { "q8_0", 96 }, { "q4_k", 512 },
	};
	for (int i = 0; i < 4; i++) {
		int64_t n = t[i].n;
		size_t big = blas_scratch_floats(dtype_by_name(t[i].type), n);
		if (!big)
			big = 1;
		ok(big >= (size_t)n || !strcmp(t[i].type, "f32"), "%s: scratch for n=%lld holds a row (none for f32)", t[i].type, (long long)n);
		check_gemm(t[i].type, 53, n, 1, 0, 53, big);
		check_gemm(t[i].type, 53, n, 7, 0, 53, big);
		check_gemm(t[i].type, 53, n, 33, 5, 50, big);
		check_gemm(t[i].type, 53, n, 64, 17, 18, big);
		/* tiles of 3 rows, and of 16 */
		check_gemm(t[i].type, 71, n, 19, 2, 69, (size_t)(3 * n + n / 2));
		check_gemm(t[i].type, 71, n, 19, 1, 70, (size_t)(40 * n));
	}
	/* the default tile on a TinyLlama-sized row */
	check_gemm("q4_k", 300, 2048, 40, 3, 297, blas_scratch_floats(dtype_by_name("q4_k"), 2048));
}

/* blas_gemm_rows_exact: within the bound, and the bits of a batch of 300
 * rows of X for every row of X when it comes in batches of 1, 7 or 33,
 * on row ranges, with scratch for 3 rows or 40 (n = 768: several of BLIS's
 * k blocks) */
static void test_exact(void)
{
	static const char *const types[] = { "f32", "f16", "q8_0", "q4_k" };
	for (int i = 0; i < 4; i++) {
		const char *type = types[i];
		int64_t rows = 97, n = 768, ldx = n + 3;
		check_gemm_fn(blas_gemm_rows_exact, type, 53, 256, 7, 2, 51,
			      (size_t)(5 * 256 + 7));
		slm_tensor w = make_tensor(type, rows, n);
		int BF = 300;
		float *x = xmalloc((size_t)(BF * ldx) * 4);
		for (int64_t k = 0; k < BF * ldx; k++)
			x[k] = rndf(-1, 1);
		size_t big = (size_t)(rows * n);
		float *scratch = xmalloc(big * 4);
		float *full = xmalloc((size_t)(BF * rows) * 4);
		blas_gemm_rows_exact(&w, x, ldx, BF, full, rows, 0, rows, scratch, big);
		static const struct { int B; int64_t r0, r1, tile; } c[] = {
			{ 1, 0, 97, 97 }, { 7, 5, 90, 3 }, { 33, 40, 41, 1 }, { 300, 1, 96, 40 },
		};
		for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
			int B = c[k].B;
			int64_t r0 = c[k].r0, r1 = c[k].r1, nr = r1 - r0;
			float *y = xmalloc((size_t)(BF * nr) * 4);
			long diff = 0;
			/* every row of X, in batches of B */
			for (int b0 = 0; b0 < BF; b0 += B) {
				int nb = BF - b0 < B ? BF - b0 : B;
				blas_gemm_rows_exact(&w, x + (size_t)b0 * (size_t)ldx, ldx, nb,
						     y + (size_t)b0 * (size_t)nr, nr, r0, r1, scratch,
						     (size_t)(c[k].tile * n));
			}
			for (int b = 0; b < BF; b++)
				for (int64_t r = r0; r < r1; r++)
					diff += memcmp(&y[b * nr + (r - r0)], &full[b * rows + r], 4) != 0;
			ok(diff == 0, "exact %s: batches of %d, rows [%lld,%lld), scratch of %lld rows: "
			   "the bits of one batch of %d (%ld differ)", type, B, (long long)r0,
			   (long long)r1, (long long)c[k].tile, BF, diff);
			free(y);
		}
		free((void *)w.data);
		free(x);
		free(scratch);
		free(full);
	}
}

/* ---------------------------------------------------------------------
 * Micro-benchmark
 * --------------------------------------------------------------------- */

static double now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

enum { M_KERN, M_KTILE, M_BLAS, M_N };

/* kern_matmul on row tiles of about 256 KiB of weights (L2-resident while
 * every activation passes) */
static void kern_tiled(const slm_tensor *w, const uint8_t *act, int B, float *y,
		       int64_t ldy, int64_t r0, int64_t r1)
{
	int64_t n = (int64_t)w->ne[0];
	size_t rb = (size_t)(n / w->dtype->block_elems) * w->dtype->block_bytes;
	int64_t tr = (int64_t)((256u << 10) / rb) & ~(int64_t)1;
	if (tr < 2)
		tr = 2;
	for (int64_t r = r0; r < r1; r += tr)
		kern_matmul(w->dtype, w->data, n, act, B, y + (r - r0), ldy, r,
			    r + tr < r1 ? r + tr : r1);
}

typedef struct bjob {
	int method;
	const slm_tensor *w;
	const float *x;
	int B;
	float *y;
	uint8_t *act;
	float **scratch;
	size_t sf;
	double cpu[64];
} bjob;

static void bench_worker(void *arg, int ith, int nth)
{
	bjob *j = arg;
	double c0 = now(CLOCK_THREAD_CPUTIME_ID);
	long r0, r1;
	const slm_tensor *w = j->w;
	int64_t n = (int64_t)w->ne[0], rows = (int64_t)w->ne[1];
	pool_split((long)rows, ith, nth, &r0, &r1);
	if (j->method == M_BLAS)
		blas_gemm_rows(w, j->x, n, j->B, j->y + r0, rows, r0, r1, j->scratch[ith], j->sf);
	else if (j->method == M_KTILE)
		kern_tiled(w, j->act, j->B, j->y + r0, rows, r0, r1);
	else
		kern_matmul(w->dtype, w->data, n, j->act, j->B, j->y + r0, rows, r0, r1);
	j->cpu[ith] += now(CLOCK_THREAD_CPUTIME_ID) - c0;
}

/* One product as the model runs it; returns CPU seconds (all threads) and
 * sets *wall. */
static double bench_once(slm_pool *pool, bjob *j, double *wall)
{
	int nth = pool_size(pool);
	memset(j->cpu, 0, sizeof j->cpu);
	double t0 = now(CLOCK_MONOTONIC);
	double c0 = now(CLOCK_THREAD_CPUTIME_ID);
	if (j->method != M_BLAS) {
		const slm_dtype *dt = j->w->dtype;
		int64_t n = (int64_t)j->w->ne[0];
		size_t ab = kern_act_bytes(dt, n);
		for (int b = 0; b < j->B; b++)
			kern_quant_act(dt, j->x + b * n, j->act + b * ab, n);
	}
	double cq = now(CLOCK_THREAD_CPUTIME_ID) - c0;
	pool_run(pool, bench_worker, j);
	*wall = now(CLOCK_MONOTONIC) - t0;
	double cpu = cq;
	for (int i = 0; i < nth; i++)
		cpu += j->cpu[i];
	return cpu;
}

static int bench(int argc, char **argv)
{
	static const struct { const char *model; int64_t n, rows; } shapes[] = {
		{ "135M", 576, 576 },    { "135M", 576, 192 },   { "135M", 576, 1536 },
		{ "135M", 1536, 576 },   { "135M", 576, 49152 }, { "1.1B", 2048, 2048 },
		{ "1.1B", 2048, 256 },   { "1.1B", 2048, 5632 }, { "1.1B", 5632, 2048 },
		{ "1.1B", 2048, 32000 },
	};
	const int ns = (int)(sizeof shapes / sizeof shapes[0]);
	const char *deftypes[] = { "f16", "q8_0", "q4_0", "q4_1", "q4_k", "q6_k" };
	const char **types = deftypes;
	int ntypes = 6, nth = 1, Bs[16] = { 512 }, nB = 1;
	int i = 2;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "-t") && i + 1 < argc) {
			nth = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "-B") && i + 1 < argc) {
			nB = 0;
			for (char *s = argv[++i]; *s && nB < 16; s++) {
				Bs[nB++] = (int)strtol(s, &s, 10);
				if (!*s)
					break;
			}
		} else {
			break;
		}
	}
	if (i < argc) {
		types = (const char **)argv + i;
		ntypes = argc - i;
	}
	char desc[200];
	blas_setup(0, desc, sizeof desc);
	slm_pool *pool = pool_new(nth < 1 ? 1 : nth, 1);
	nth = pool_size(pool);
	printf("# %s; kernels %s; %d thread%s; GFLOP/s per CPU second (cpu) and per second (wall)\n",
	       desc, kern_variant_name(), nth, nth > 1 ? "s" : "");
	printf("%-5s %-5s %-11s %4s %9s %9s %9s %9s %9s %7s\n", "type", "model", "rows x n",
	       "B", "kern cpu", "ktile cpu", "blis cpu", "ktile wall", "blis wall", "blis/ktile");
	size_t sf = 0;
	int64_t maxn = 0;
	for (int s = 0; s < ns; s++)
		if (shapes[s].n > maxn)
			maxn = shapes[s].n;
	sf = blas_scratch_floats(dtype_by_name("q8_0"), maxn);
	float **scratch = xmalloc((size_t)nth * sizeof *scratch);
	for (int t = 0; t < nth; t++)
		scratch[t] = xmalloc(sf * 4);
	for (int ti = 0; ti < ntypes; ti++) {
		const slm_dtype *dt = dtype_by_name(types[ti]);
		if (!dt || !kern_supported(dt)) {
			fprintf(stderr, "unit-blas: unknown type %s\n", types[ti]);
			return 64;
		}
		for (int s = 0; s < ns; s++) {
			int64_t n = shapes[s].n, rows = shapes[s].rows;
			if (n % dt->block_elems)
				continue;
			slm_tensor w = make_tensor(types[ti], rows, n);
			for (int bi = 0; bi < nB; bi++) {
				int B = Bs[bi];
				float *x = xmalloc((size_t)(B * n) * 4);
				for (int64_t k = 0; k < B * n; k++)
					x[k] = rndf(-1, 1);
				float *y = xmalloc((size_t)(B * rows) * 4);
				uint8_t *act = xmalloc(kern_act_bytes(dt, n) * (size_t)B);
				double flops = 2.0 * (double)B * (double)n * (double)rows;
				double cpu[M_N], wall[M_N];
				for (int m = 0; m < M_N; m++)
					cpu[m] = wall[m] = 1e30;
				/* alternate the methods; best of at least 3 runs and 0.5 s */
				double t0 = now(CLOCK_MONOTONIC);
				for (int rep = 0; rep < 3 || (rep < 50 && now(CLOCK_MONOTONIC) - t0 < 0.5);
				     rep++)
					for (int m = 0; m < M_N; m++) {
						bjob j = { .method = m, .w = &w, .x = x, .B = B, .y = y,
							   .act = act, .scratch = scratch, .sf = sf };
						double wl, c = bench_once(pool, &j, &wl);
						cpu[m] = c < cpu[m] ? c : cpu[m];
						wall[m] = wl < wall[m] ? wl : wall[m];
					}
				char shape[32];
				snprintf(shape, sizeof shape, "%lldx%lld", (long long)rows, (long long)n);
				printf("%-5s %-5s %-11s %4d %9.1f %9.1f %9.1f %9.1f %9.1f %7.2f\n",
				       dt->name, shapes[s].model, shape, B, flops / cpu[M_KERN] * 1e-9,
				       flops / cpu[M_KTILE] * 1e-9, flops / cpu[M_BLAS] * 1e-9,
				       flops / wall[M_KTILE] * 1e-9, flops / wall[M_BLAS] * 1e-9,
				       cpu[M_KTILE] / cpu[M_BLAS]);
				fflush(stdout);
				free(x);
				free(y);
				free(act);
			}
			free((void *)w.data);
		}
	}
	for (int t = 0; t < nth; t++)
		free(scratch[t]);
	free(scratch);
	pool_free(pool);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "-b"))
		return bench(argc, argv);
	test_setup();
	test_gemm();
	test_exact();
	return done_testing();
}
