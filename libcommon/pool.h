/*
 * pool.h - the process's one thread pool. pool_run() runs a function on
 * every thread (the caller is thread 0) and returns when all are done; the
 * workers spin briefly between jobs (a decode step issues hundreds of
 * small jobs) and sleep when idle.
 */
#ifndef SLM_POOL_H
#define SLM_POOL_H

typedef struct slm_pool slm_pool;
typedef void (*pool_fn)(void *arg, int ith, int nth);

/* nthreads >= 1. pin: bind thread i to core i (hwloc) when possible. */
slm_pool *pool_new(int nthreads, int pin);
void pool_free(slm_pool *p);
int pool_size(const slm_pool *p);
void pool_run(slm_pool *p, pool_fn fn, void *arg);

/* Profiling: when on, pool_run adds the time the calling thread spends
 * waiting for the others to *wait_ns. */
void pool_set_wait_counter(slm_pool *p, unsigned long long *wait_ns);

/* Split [0, n) into nth nearly equal parts: part ith is [*b, *e). */
static inline void pool_split(long n, int ith, int nth, long *b, long *e)
{
	long q = n / nth, r = n % nth;
	*b = ith * q + (ith < r ? ith : r);
	*e = *b + q + (ith < r ? 1 : 0);
}

/* Number of physical cores (hwloc), at least 1. */
int pool_default_threads(void);

#endif
