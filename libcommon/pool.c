/*
 * pool.c - a small fork-join thread pool with hwloc pinning. Jobs are
 * published through a generation counter; workers spin on it for a while
 * before falling back to a condition variable, so back-to-back jobs cost
 * a cache-line handoff rather than a futex round trip.
 */
#include "pool.h"

#include <hwloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "util.h"

#define SPIN_ITERS 200000

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

typedef struct worker {
	struct slm_pool *p;
	int ith;
	pthread_t tid;
} worker;

struct slm_pool {
	int n;
	worker *w;
	pool_fn fn;
	void *arg;
	_Atomic unsigned gen;      /* bumped for each job */
	_Atomic int pending;       /* workers still running the job */
	_Atomic int quit;
	_Atomic int sleepers;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	hwloc_topology_t topo;
	int have_topo;
	unsigned long long *wait_ns;
};

static void pin_self(slm_pool *p, int ith)
{
	if (!p->have_topo)
		return;
	int ncores = hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_CORE);
	if (ncores <= 0)
		return;
	hwloc_obj_t core = hwloc_get_obj_by_type(p->topo, HWLOC_OBJ_CORE, ith % ncores);
	if (!core || !core->cpuset)
		return;
	hwloc_bitmap_t set = hwloc_bitmap_dup(core->cpuset);
	hwloc_bitmap_singlify(set);
	hwloc_set_cpubind(p->topo, set, HWLOC_CPUBIND_THREAD);
	hwloc_bitmap_free(set);
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	slm_pool *p = w->p;
	pin_self(p, w->ith);
	unsigned seen = 0;
	for (;;) {
		unsigned g;
		int spins = 0;
		while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
		       !atomic_load(&p->quit)) {
			if (++spins < SPIN_ITERS) {
				/* give the core away now and then: on a busy machine
				 * the thread we wait for may need it */
				if ((spins & 1023) == 0)
					sched_yield();
				else
					cpu_relax();
				continue;
			}
			pthread_mutex_lock(&p->mu);
			atomic_fetch_add(&p->sleepers, 1);
			while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit))
				pthread_cond_wait(&p->cv, &p->mu);
			atomic_fetch_sub(&p->sleepers, 1);
			pthread_mutex_unlock(&p->mu);
			spins = 0;
		}
		if (atomic_load(&p->quit))
			return NULL;
		seen = g;
		p->fn(p->arg, w->ith, p->n);
		atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel);
	}
}

int pool_default_threads(void)
{
	hwloc_topology_t t;
	int n = 1;
	if (hwloc_topology_init(&t) == 0) {
		if (hwloc_topology_load(t) == 0) {
			int c = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
			if (c > 0)
				n = c;
		}
		hwloc_topology_destroy(t);
	}
	return n;
}

slm_pool *pool_new(int nthreads, int pin)
{
	slm_pool *p = slm_xcalloc(1, sizeof *p);
	p->n = nthreads < 1 ? 1 : nthreads;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (pin && hwloc_topology_init(&p->topo) == 0) {
		if (hwloc_topology_load(p->topo) == 0)
			p->have_topo = 1;
		else
			hwloc_topology_destroy(p->topo);
	}
	p->w = slm_xcalloc((size_t)p->n, sizeof *p->w);
	pin_self(p, 0);
	for (int i = 1; i < p->n; i++) {
		p->w[i].p = p;
		p->w[i].ith = i;
		if (pthread_create(&p->w[i].tid, NULL, worker_main, &p->w[i]) != 0)
			slm_die(EX_OSERR, "cannot create thread %d of %d", i, p->n);
	}
	return p;
}

void pool_free(slm_pool *p)
{
	if (!p)
		return;
	atomic_store(&p->quit, 1);
	pthread_mutex_lock(&p->mu);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->n; i++)
		pthread_join(p->w[i].tid, NULL);
	if (p->have_topo)
		hwloc_topology_destroy(p->topo);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->w);
	free(p);
}

int pool_size(const slm_pool *p)
{
	return p->n;
}

void pool_run(slm_pool *p, pool_fn fn, void *arg)
{
	if (p->n == 1) {
		fn(arg, 0, 1);
		return;
	}
	p->fn = fn;
	p->arg = arg;
	atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
	atomic_fetch_add(&p->gen, 1); /* seq_cst: pairs with the sleepers check */
	if (atomic_load(&p->sleepers) > 0) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	fn(arg, 0, p->n);
	struct timespec t0, t1;
	if (p->wait_ns)
		clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned spins = 1; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
		if ((spins & 255) == 0)
			sched_yield();
		else
			cpu_relax();
	}
	if (p->wait_ns) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		*p->wait_ns += (unsigned long long)((t1.tv_sec - t0.tv_sec) * 1000000000LL +
						    (t1.tv_nsec - t0.tv_nsec));
	}
}

void pool_set_wait_counter(slm_pool *p, unsigned long long *wait_ns)
{
	p->wait_ns = wait_ns;
}
