/*
 * blas.c - BLIS set-up (the sub-configuration for this CPU) and sgemm on
 * dequantized weight tiles for the large matrix products.
 *
 * Sub-configuration: BLIS reads BLIS_ARCH_TYPE once, at initialisation, as
 * a numeric arch_t id (ids differ between versions; bli_arch_string names
 * them). Debian's BLIS 0.9.0 detects only the CPUs it knows and falls back
 * to 'generic' (about 4x slower) on newer ones such as Zen 5, so the id is
 * chosen here from what the CPU supports and set before the first BLIS call.
 * Measured single-thread sgemm 512x2048x2048 (CPU time, BLIS 0.9.0):
 *   AMD family 19h model 11h (Zen 4, AVX-512 on 256-bit units):
 *     zen3 99, zen2 99, zen 99, haswell 97, skx 94, generic 32 GFLOP/s
 *   Zen 5 (family 1Ah, full-width AVX-512; NOTES.md): skx about 4x generic
 * hence skx wherever AVX-512 runs at full width, the AMD configurations by
 * family otherwise, haswell for other AVX2+FMA CPUs.
 */
#include "blas.h"

#include <blis.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern/kern.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* Rows of a dequantized tile: BLIS packs the activations again for every
 * call, so a tile must be tall enough to amortise that. TILE_FLOATS of 1M
 * (4 MiB) and at least 256 rows: 1.1B shapes at B=512 ran at 60-87 GFLOP/s
 * with 256K-float tiles, 90-100 with 1M or 4M (tests/unit-blas -b). */
#define TILE_FLOATS (1u << 20)
#define TILE_MIN_ROWS 256

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int setup_rc;
static char setup_desc[160];
static rntm_t rntm1;    /* one BLIS thread per call */
static rntm_t rntm1_exact;  /* the same, never BLIS's small-matrix code */

/* The sub-configuration for this CPU, and why; NULL: leave it to BLIS. */
static const char *want_arch(char *why, size_t whylen)
{
	snprintf(why, whylen, "BLIS's own choice");
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	unsigned a, b, c, d, family = 0, model = 0;
	if (__get_cpuid(1, &a, &b, &c, &d)) {
		family = (a >> 8) & 0xf;
		model = (a >> 4) & 0xf;
		if (family == 0xf)
			family += (a >> 20) & 0xff;
		if (family >= 0x6)
			model |= ((a >> 16) & 0xf) << 4;
	}
	int amd = __builtin_cpu_is("amd");
	int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		     __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
	int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	if (avx512 && !(amd && family <= 0x19)) {
		snprintf(why, whylen, "AVX-512");
		return "skx";
	}
	if (avx2 && amd && family >= 0x17) {
		/* Zen 4 (family 19h) splits 512-bit operations in two: the AVX2
		 * kernels of zen3 are faster there than skx's */
		snprintf(why, whylen, "AMD family %xh model %xh%s", family, model,
			 avx512 ? ", AVX-512 on 256-bit units" : "");
		return family >= 0x19 ? "zen3" : model >= 0x30 ? "zen2" : "zen";
	}
	if (avx2) {
		snprintf(why, whylen, "AVX2 and FMA");
		return "haswell";
	}
#else
	(void)whylen;
#endif
	return NULL;
}

/* Whether this BLIS build has a sub-configuration (asking for a missing
 * one aborts inside BLIS). The header lists those of its library. */
static int arch_built(const char *name)
{
	static const char *const built[] = {
#ifdef BLIS_CONFIG_SKX
		"skx",
#endif
#ifdef BLIS_CONFIG_ZEN3
		"zen3",
#endif
#ifdef BLIS_CONFIG_ZEN2
		"zen2",
#endif
#ifdef BLIS_CONFIG_ZEN
		"zen",
#endif
#ifdef BLIS_CONFIG_HASWELL
		"haswell",
#endif
		NULL
	};
	for (int i = 0; built[i]; i++)
		if (!strcmp(built[i], name))
			return 1;
	return 0;
}

static void setup_once(void)
{
	char why[96];
	const char *want = want_arch(why, sizeof why);
	const char *how;
	if (getenv("BLIS_ARCH_TYPE")) {
		want = NULL;
		how = "BLIS_ARCH_TYPE from the environment";
	} else if (want && !arch_built(want)) {
		snprintf(why + strlen(why), sizeof why - strlen(why),
			 "; %s not in this BLIS build", want);
		want = NULL;
		how = why;
	} else {
		how = why;
	}
	int id = -1;
	if (want) {
		for (int i = 0; i < BLIS_NUM_ARCHS; i++)
			if (!strcmp(bli_arch_string((arch_t)i), want))
				id = i;
		if (id >= 0) {
			char v[16];
			snprintf(v, sizeof v, "%d", id);
			setenv("BLIS_ARCH_TYPE", v, 1);
		}
	}
	bli_init();
	arch_t got = bli_arch_query_id();
	if (id >= 0)   /* read once, at initialisation: keep it from children */
		unsetenv("BLIS_ARCH_TYPE");
	bli_rntm_init(&rntm1);
	bli_rntm_set_num_threads(1, &rntm1);
	bli_rntm_init(&rntm1_exact);
	bli_rntm_set_num_threads(1, &rntm1_exact);
	bli_rntm_disable_l3_sup(&rntm1_exact);
	if (id >= 0 && (int)got != id) {
		setup_rc = -1;
		snprintf(setup_desc, sizeof setup_desc,
			 "blis %s %s (asked for %s: %s)", bli_info_get_version_str(),
			 bli_arch_string(got), want, how);
	} else {
		snprintf(setup_desc, sizeof setup_desc, "blis %s %s (%s%s)",
			 bli_info_get_version_str(), bli_arch_string(got),
			 id >= 0 ? "set by slm: " : "", how);
	}
}

int blas_setup(int verbose, char *desc, size_t desclen)
{
	pthread_once(&once, setup_once);
	if (desc && desclen)
		snprintf(desc, desclen, "%s", setup_desc);
	if (verbose)
		fprintf(stderr, "slm: %s\n", setup_desc);
	return setup_rc;
}

/* Where BLIS beats the kernels: sgemm on dequantized tiles against
 * kern_matmul on row tiles (activation quantization included), GFLOP/s
 * per CPU second of one thread, B x rows x n on the SmolLM2-135M and
 * TinyLlama-1.1B shapes (tests/unit-blas -b -B 64,128,256,512; AMD family
 * 19h, BLIS zen3, kernels avx512; a busy machine: +-10%):
 *   f32   BLIS 95-100 from B=128 vs kernels 65-90 (1.0-1.4x)
 *   f16   BLIS 85-100 vs 75-80 from B=256 (0.9-1.25x at 256, 1.2-1.4x at
 *         512); at B<256 BLIS loses on n=2048 (0.85x)
 *   q4_1  BLIS 91-101 vs 85-93 at B=512 (1.02-1.15x); at 256 it loses on
 *         n=2048 (0.8-1.0x)
 *   q8_0  BLIS 91-101 vs 92-99 at B=512 (0.98-1.07x), loses below: kernels
 *   q4_0  BLIS 94-103 vs 98-110 at B=512 (0.93-1.0x): kernels
 *   q4_k  BLIS 87-95 vs 122-135 (0.7x): kernels
 *   q6_k  BLIS 88-97 vs 114-127 (0.8x): kernels
 * The int8 kernels do as well as fp32 sgemm here: BLIS pays for the
 * dequantization and for packing the activations again for every tile.
 * Other types (bf16, q5_*, q2_k, q3_k, q5_k) were not measured: kernels.
 * q4_1 left BLIS on 2026-11-24 with the 16-row int8 tiles: SmolLM2-135M
 * Q4_1 pp512 (slm-perf bench -t 2 -p 512 -r 3, Zen 4) 872 tokens/s on the
 * kernels against 524 through BLIS. */
static const struct route {
	const char *type;
	int min_batch;
} routes[] = {
	{ "f32", 128 },
	{ "f16", 256 },
};

static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static int env_min_batch = -1;   /* SLM_BLAS_MIN_BATCH; -1: unset */

static void read_env(void)
{
	const char *env = getenv("SLM_BLAS_MIN_BATCH");
	if (env && *env) {
		long v = strtol(env, NULL, 10);
		env_min_batch = v <= 0 || v > INT_MAX ? INT_MAX : (int)v;
	}
}

int blas_min_batch(const slm_dtype *t)
{
	pthread_once(&env_once, read_env);
	if (env_min_batch >= 0)
		return kern_supported(t) ? env_min_batch : INT_MAX;
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
		if (!strcmp(routes[i].type, t->name))
			return routes[i].min_batch;
	return INT_MAX;
}

static int64_t tile_rows(int64_t n)
{
	int64_t rows = (int64_t)TILE_FLOATS / (n > 0 ? n : 1);
	if (rows < TILE_MIN_ROWS)
		rows = TILE_MIN_ROWS;
	return rows / 16 * 16;
}

size_t blas_scratch_floats(const slm_dtype *t, int64_t n)
{
	return t == dtype_by_name("f32") ? 0 : (size_t)(tile_rows(n) * n);
}

/* Y (B x nr, row stride ldy) = X (B x n, row stride ldx) T^T, T nr x n
 * row-major: T^T is column-major n x nr. */
static void sgemm_xt(const float *X, int64_t ldx, int B, const float *T, int64_t n,
		     int64_t nr, float *Y, int64_t ldy, rntm_t *rntm)
{
	float one = 1.0f, zero = 0.0f;
	bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, B, nr, n, &one, (float *)X, ldx,
		     1, (float *)T, 1, n, &zero, Y, ldy, 1, NULL, rntm);
}

static void gemm_rows(const slm_tensor *w, const float *X, int64_t ldx, int B,
		      float *Y, int64_t ldy, int64_t r0, int64_t r1,
		      float *scratch, size_t scratch_floats, rntm_t *rntm)
{
	const slm_dtype *dt = w->dtype;
	int64_t n = (int64_t)w->ne[0];
	size_t rb = (size_t)(n / dt->block_elems) * dt->block_bytes;
	const uint8_t *W = w->data;
	if (r1 <= r0 || B <= 0)
		return;
	pthread_once(&once, setup_once);
	if (dt == dtype_by_name("f32")) {
		sgemm_xt(X, ldx, B, (const float *)(W + (size_t)r0 * rb), n, r1 - r0, Y, ldy, rntm);
		return;
	}
	const kern_mat km = tensor_kmat(w);
	int64_t tr = (int64_t)scratch_floats / n;
	if (tr > 16)
		tr = tr / 16 * 16;
	if (tr < 1) {
		fprintf(stderr, "slm: blas_gemm_rows: scratch of %zu floats < one row of %lld\n",
			scratch_floats, (long long)n);
		abort();
	}
	for (int64_t r = r0; r < r1; r += tr) {
		int64_t nr = r1 - r < tr ? r1 - r : tr;
		kern_mat_dequant(&km, r, r + nr, scratch);
		sgemm_xt(X, ldx, B, scratch, n, nr, Y + (r - r0), ldy, rntm);
	}
}

void blas_gemm_rows(const slm_tensor *w, const float *X, int64_t ldx, int B,
		    float *Y, int64_t ldy, int64_t r0, int64_t r1,
		    float *scratch, size_t scratch_floats)
{
	gemm_rows(w, X, ldx, B, Y, ldy, r0, r1, scratch, scratch_floats, &rntm1);
}

void blas_gemm_rows_exact(const slm_tensor *w, const float *X, int64_t ldx, int B,
			  float *Y, int64_t ldy, int64_t r0, int64_t r1,
			  float *scratch, size_t scratch_floats)
{
	gemm_rows(w, X, ldx, B, Y, ldy, r0, r1, scratch, scratch_floats, &rntm1_exact);
}
