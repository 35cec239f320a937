/*
 * store.c - locating the model store and resolving model names.
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *store_dir(void)
{
	const char *x = getenv("XDG_DATA_HOME");
	char buf[4096];
	if (x && *x == '/')
		snprintf(buf, sizeof buf, "%s/slm/models", x);
	else {
		const char *home = getenv("HOME");
		snprintf(buf, sizeof buf, "%s/.local/share/slm/models",
			 home && *home ? home : ".");
	}
	return slm_xstrdup(buf);
}

int store_mkdir(slm_err *err)
{
	char *d = store_dir();
	for (char *p = d + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(d, 0755) != 0 && errno != EEXIST) {
			int e = errno;
			slm_seterr(err, EX_CANTCREAT, "%s: %s", d, strerror(e));
			free(d);
			return -1;
		}
		*p = '/';
	}
	int rc = 0;
	if (mkdir(d, 0755) != 0 && errno != EEXIST)
		rc = slm_seterr(err, EX_CANTCREAT, "%s: %s", d, strerror(errno));
	free(d);
	return rc;
}

int store_valid_name(const char *name)
{
	if (!name || !*name || name[0] == '.' || strlen(name) > 200)
		return 0;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-'))
			return 0;
	return 1;
}

static char *resolve_one(const char *arg, const char *from, slm_err *err)
{
	size_t n = strlen(arg);
	if (strchr(arg, '/') || !strcmp(arg, "-") ||
	    (n > 4 && !strcmp(arg + n - 4, ".slm")) || access(arg, F_OK) == 0)
		return slm_xstrdup(arg);
	if (!store_valid_name(arg)) {
		slm_seterr(err, EX_USAGE, "%s'%s' is neither a file nor a model name",
			   from, arg);
		return NULL;
	}
	char *d = store_dir();
	size_t l = strlen(d) + n + 8;
	char *p = slm_xmalloc(l);
	snprintf(p, l, "%s/%s.slm", d, arg);
	free(d);
	if (access(p, F_OK) != 0) {
		slm_seterr(err, EX_NOINPUT,
			   "%sno file '%s' and no model '%s' in the store (slm-pack list)",
			   from, arg, arg);
		free(p);
		return NULL;
	}
	return p;
}

char *store_resolve(const char *opt, slm_err *err)
{
	if (opt)
		return resolve_one(opt, "", err);
	const char *env = getenv("SLM_MODEL");
	if (env && *env)
		return resolve_one(env, "SLM_MODEL: ", err);
	char *d = store_dir();
	size_t l = strlen(d) + 16;
	char *p = slm_xmalloc(l);
	snprintf(p, l, "%s/default.slm", d);
	free(d);
	if (access(p, F_OK) != 0) {
		slm_seterr(err, EX_USAGE,
			   "no model: use -m BUNDLE, set SLM_MODEL, or install a default with 'slm-pack install --default'");
		free(p);
		return NULL;
	}
	return p;
}
