/*
 * imatrix.h - importance matrices: per weight matrix, one importance per
 * input column, the mean of the squared activations that multiply it
 * (llama.cpp's "imatrix"). Read and written in llama.cpp's two file forms:
 * GGUF (general.type "imatrix", tensors NAME.in_sum2 and NAME.counts, as
 * llama-imatrix writes by default) and the legacy binary imatrix.dat.
 */
#ifndef SLM_IMATRIX_H
#define SLM_IMATRIX_H

#include <stddef.h>

#include "util.h"

typedef struct slm_imatrix slm_imatrix;

/* The file forms imatrix_save writes. */
typedef enum { IMATRIX_DAT, IMATRIX_GGUF } imatrix_format;

/* Read either form (told apart by the GGUF magic). Hostile input gives -1
 * and one line in err (EX_DATAERR): truncation, wrong tensor types, sums
 * without counts or counts that do not match them, non-finite values. */
int imatrix_load(slm_imatrix **out, const char *path, slm_err *err);
void imatrix_free(slm_imatrix *im);
size_t imatrix_count(const slm_imatrix *im);
/* The importances of a weight matrix and their number (columns times
 * matrices, for stacked experts); NULL if absent. */
const float *imatrix_find(const slm_imatrix *im, const char *name, size_t *n);

/* Building one: an empty matrix, then per weight its n sums of squared
 * inputs (columns times nmat matrices) and the number of input rows each
 * matrix saw (copied; a name set twice is replaced). The importance is
 * sum2[j] / count in single precision, 1 where count is 0: what
 * llama-quantize computes from a GGUF imatrix, so that both forms read
 * back to the same bits. */
slm_imatrix *imatrix_new(void);
void imatrix_set(slm_imatrix *im, const char *name, const float *sum2, size_t n,
		 const float *count, size_t nmat);

/* Write im atomically to path ("-": standard output). chunks and
 * chunk_size: the calibration run (chunks of chunk_size tokens); dataset:
 * the name of its source. IMATRIX_DAT writes each entry's importances with
 * a call count of 1, so they read back exactly; IMATRIX_GGUF writes the
 * sums and counts, entries sorted by name, as llama-imatrix does. */
int imatrix_save(const slm_imatrix *im, const char *path, imatrix_format fmt,
		 int chunks, int chunk_size, const char *dataset, slm_err *err);

#endif
