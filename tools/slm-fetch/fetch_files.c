/*
 * fetch_files.c - slm-fetch's file lists: safe names, and the choice of
 * files to fetch (--include/--exclude, or what slm-convert needs).
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "fetch.h"

fetch_file *fetch_list_add(fetch_list *l, const char *name, int64_t size)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = slm_xrealloc(l->v, l->cap * sizeof *l->v);
	}
	fetch_file *f = &l->v[l->n++];
	memset(f, 0, sizeof *f);
	f->name = slm_xstrdup(name);
	f->size = size;
	return f;
}

void fetch_list_free(fetch_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].blob);
		free(l->v[i].path);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const fetch_file *)a)->name, ((const fetch_file *)b)->name);
}

void fetch_list_sort(fetch_list *l)
{
	if (l->n)
		qsort(l->v, l->n, sizeof *l->v, by_name);
}

int fetch_safe_name(const char *name)
{
	if (!*name || *name == '/')
		return 0;
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f || *p == '\\')
			return 0;
	for (const char *c = name; c;) {
		const char *slash = strchr(c, '/');
		size_t n = slash ? (size_t)(slash - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c = slash ? slash + 1 : NULL;
	}
	return 1;
}

int fetch_mkparents(const char *path, slm_err *err)
{
	char *p = slm_xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0777) != 0 && errno != EEXIST) {
			slm_seterr(err, EX_CANTCREAT, "%s: %s", p, strerror(errno));
			free(p);
			return -1;
		}
		*s = '/';
	}
	free(p);
	return 0;
}

/* ---- choosing ---- */

/* The files slm-convert reads besides the weights. */
static const char *const config_files[] = {
	"config.json",          "generation_config.json", "tokenizer.json",
	"tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
	"chat_template.json",
};

#define INDEX_FILE "model.safetensors.index.json"

/* huggingface_hub's pattern rule: fnmatch without FNM_PATHNAME ('*' crosses
 * '/'), and "dir/" means "dir/ and everything under it". */
static int glob_match(const char *pat, const char *name)
{
	size_t n = strlen(pat);
	if (n && pat[n - 1] == '/') {
		char *p = slm_xmalloc(n + 2);
		memcpy(p, pat, n);
		memcpy(p + n, "*", 2);
		int m = fnmatch(p, name, 0) == 0;
		free(p);
		return m;
	}
	return fnmatch(pat, name, 0) == 0;
}

static int any_match(const char **pats, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (glob_match(pats[i], name))
			return 1;
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcasecmp(s + a - b, suffix);
}

static fetch_file *find(fetch_list *l, const char *name, const char *skip)
{
	for (size_t i = 0; i < l->n; i++)
		if (!skip[i] && !strcmp(l->v[i].name, name))
			return &l->v[i];
	return NULL;
}

/* The shards model.safetensors.index.json names in its weight_map. */
static int want_shards(fetch_list *l, fetch_file *index, const char *skip, fetch_get_fn get,
		       void *arg, const char *what, slm_err *err)
{
	char *path = get(arg, index, err);
	if (!path)
		return -1;
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	free(path);
	json_t *map = json_object_get(j, "weight_map");
	if (!json_is_object(map)) {
		json_decref(j);
		return slm_seterr(err, EX_DATAERR, "%s: %s: %s", what, INDEX_FILE,
				  j ? "no weight_map object" : je.text);
	}
	const char *k;
	json_t *v;
	int rc = 0;
	json_object_foreach(map, k, v) {
		const char *shard = json_string_value(v);
		fetch_file *f = shard ? find(l, shard, skip) : NULL;
		if (!f) {
			rc = slm_seterr(err, EX_DATAERR, "%s: %s: tensor %s is in '%s', which %s",
					what, INDEX_FILE, k, shard ? shard : "?",
					shard ? "is not there" : "is not a string");
			break;
		}
		f->want = 1;
	}
	json_decref(j);
	return rc;
}

/* One GGUF: a Q4_K_M, else a Q8_0, else the smallest; never a vision
 * projector (mmproj) when there is a model. */
static fetch_file *pick_gguf(fetch_list *l, const char *skip)
{
	static const char *const prefer[] = { "q4_k_m", "q8_0", "" };
	for (size_t p = 0; p < sizeof prefer / sizeof prefer[0]; p++) {
		fetch_file *best = NULL;
		for (size_t i = 0; i < l->n; i++) {
			fetch_file *f = &l->v[i];
			if (skip[i] || !ends_with(f->name, ".gguf") || strcasestr(f->name, "mmproj") ||
			    !strcasestr(f->name, prefer[p]))
				continue;
			uint64_t fs = (uint64_t)f->size, bs = best ? (uint64_t)best->size : 0;
			if (!best || fs < bs || (fs == bs && strcmp(f->name, best->name) < 0))
				best = f;
		}
		if (best)
			return best;
	}
	return NULL;
}

int fetch_select(fetch_list *l, const fetch_sel *sel, fetch_get_fn get, void *arg,
		 const char *what, slm_err *err)
{
	char *skip = slm_xcalloc(l->n ? l->n : 1, 1);
	for (size_t i = 0; i < l->n; i++) {
		l->v[i].want = 0;
		skip[i] = (char)any_match(sel->exclude, sel->nexclude, l->v[i].name);
	}
	int rc = 0;
	if (sel->nexact || sel->ninclude) {
		size_t n = 0;
		for (size_t i = 0; i < l->n; i++) {
			fetch_file *f = &l->v[i];
			int exact = 0;
			for (int e = 0; e < sel->nexact && !exact; e++)
				exact = !strcmp(sel->exact[e], f->name);
			if (!skip[i] && (exact || any_match(sel->include, sel->ninclude, f->name))) {
				f->want = 1;
				n++;
			}
		}
		for (int e = 0; e < sel->nexact && rc == 0; e++)
			if (!find(l, sel->exact[e], skip))
				rc = slm_seterr(err, EX_NOINPUT, "%s: no file '%s'", what,
						sel->exact[e]);
		if (rc == 0 && n == 0)
			rc = slm_seterr(err, EX_NOINPUT, "%s: no file matches --include", what);
		free(skip);
		return rc;
	}
	for (size_t c = 0; c < sizeof config_files / sizeof config_files[0]; c++) {
		fetch_file *f = find(l, config_files[c], skip);
		if (f)
			f->want = 1;
	}
	int weights = 0;
	fetch_file *index = find(l, INDEX_FILE, skip), *single = find(l, "model.safetensors", skip);
	if (index) {
		index->want = 1;
		rc = want_shards(l, index, skip, get, arg, what, err);
		weights = 1;
	} else if (single) {
		single->want = weights = 1;
	} else {
		for (size_t i = 0; i < l->n; i++)
			if (!skip[i] && !strchr(l->v[i].name, '/') &&
			    ends_with(l->v[i].name, ".safetensors"))
				l->v[i].want = weights = 1;
	}
	if (!weights) {
		/* a GGUF file carries its tokenizer and hyper-parameters: alone */
		fetch_file *g = pick_gguf(l, skip);
		if (g) {
			for (size_t i = 0; i < l->n; i++)
				l->v[i].want = 0;
			g->want = weights = 1;
		}
	}
	if (rc == 0 && !weights)
		rc = slm_seterr(err, EX_NOINPUT, "%s: no safetensors or GGUF files; choose "
				"files with --include", what);
	free(skip);
	return rc;
}

static int walk(const char *root, const char *rel, fetch_list *l, int skip_dot, int depth,
		slm_err *err)
{
	char *dir;
	if (asprintf(&dir, "%s%s%s", root, *rel ? "/" : "", rel) < 0)
		slm_die(EX_OSERR, "out of memory");
	DIR *d = opendir(dir);
	if (!d) {
		int e = errno;
		slm_seterr(err, e == ENOENT ? EX_NOINPUT : EX_IOERR, "%s: %s", dir, strerror(e));
		free(dir);
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (skip_dot && de->d_name[0] == '.'))
			continue;
		char *name, *path;
		if (asprintf(&name, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0 ||
		    asprintf(&path, "%s/%s", dir, de->d_name) < 0)
			slm_die(EX_OSERR, "out of memory");
		struct stat st;
		if (stat(path, &st) != 0) {
			/* a dangling link: a file not (or no longer) there */
		} else if (S_ISDIR(st.st_mode)) {
			if (depth >= 32)
				rc = slm_seterr(err, EX_DATAERR, "%s: directories nested too deep",
						path);
			else
				rc = walk(root, name, l, skip_dot, depth + 1, err);
		} else if (S_ISREG(st.st_mode)) {
			fetch_file *f = fetch_list_add(l, name, (int64_t)st.st_size);
			f->path = path;
			path = NULL;
		}
		free(name);
		free(path);
	}
	closedir(d);
	free(dir);
	return rc;
}

int fetch_walk(const char *root, fetch_list *l, int skip_dot, slm_err *err)
{
	return walk(root, "", l, skip_dot, 0, err);
}
