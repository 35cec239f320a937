/*
 * conv_hf.h - Hugging Face model sources beyond cv_from_hf() (declared in
 * convert.h): the same directory arriving as a tar stream.
 */
#ifndef SLM_CONV_HF_H
#define SLM_CONV_HF_H

#include "convert.h"

/* Read a tar stream (plain or compressed, as slm-fetch writes it: the
 * files of a Hugging Face model directory, possibly under one top
 * directory) from fd, extract it into a private temporary directory and
 * convert it with cv_from_hf(). Members with absolute or ".." paths,
 * links and special files are refused. name (the archive's file name,
 * or "-" for "standard input") replaces the temporary directory in
 * messages ("NAME: config.json: ...") and in the provenance. The directory is gone when this returns: tensors stay
 * mapped from the unlinked files until cv_model_free(). */
int cv_from_hf_tar(cv_model *m, int fd, const char *name, int vocab_only,
		   slm_err *err);

#endif
