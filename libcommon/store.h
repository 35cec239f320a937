/*
 * store.h - the model store ($XDG_DATA_HOME/slm/models) and how a tool
 * finds its model: -m BUNDLE, else $SLM_MODEL, else the store's default.
 */
#ifndef SLM_STORE_H
#define SLM_STORE_H

#include "util.h"

/* The store directory (malloc'd); not created. */
char *store_dir(void);
/* Create the store directory and its parents. */
int store_mkdir(slm_err *err);
/* Turn a -m argument into a path: an existing file or anything with a '/'
 * or ending in ".slm" is a path, otherwise a name in the store. opt NULL:
 * $SLM_MODEL, then the store's default. malloc'd path, or NULL with err. */
char *store_resolve(const char *opt, slm_err *err);
/* Is name usable as a store name (letters, digits, '.', '_', '-', not
 * starting with '.')? */
int store_valid_name(const char *name);

#endif
