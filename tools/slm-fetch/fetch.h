/*
 * fetch.h - the parts of slm-fetch: HTTP transfers with redirects, retries
 * and resume (fetch_http.c), the Hugging Face Hub's API and cache layout
 * (fetch_hub.c), file lists and the choice of files to fetch (fetch_files.c).
 */
#ifndef SLM_FETCH_H
#define SLM_FETCH_H

#include <stdint.h>

#include "util.h"

/* ---- files (fetch_files.c) ---- */

/* One file of a repository or directory. */
typedef struct fetch_file {
	char *name;   /* relative path, '/'-separated */
	int64_t size; /* bytes, -1 if unknown */
	char *blob;   /* Hub: blob id (sha256 if lfs, else git sha1), or NULL */
	int lfs;      /* the blob id is the sha256 of the content */
	char *path;   /* local file once fetched (cache, directory or temporary) */
	int want;     /* selected */
} fetch_file;

typedef struct fetch_list {
	fetch_file *v;
	size_t n, cap;
} fetch_list;

fetch_file *fetch_list_add(fetch_list *l, const char *name, int64_t size);
void fetch_list_free(fetch_list *l);
/* Sort by name (the order of the output). */
void fetch_list_sort(fetch_list *l);
/* A relative path that is safe to create under a directory: no empty, "."
 * or ".." component, not absolute, no control characters. */
int fetch_safe_name(const char *name);
/* Create the directories leading to path. */
int fetch_mkparents(const char *path, slm_err *err);

/* List the regular files under root (following symbolic links), with
 * their sizes and paths; skip_dot: leave out names starting with '.'. */
int fetch_walk(const char *root, fetch_list *l, int skip_dot, slm_err *err);

/* ---- choosing files ---- */

typedef struct fetch_sel {
	const char **include, **exclude; /* fnmatch globs */
	int ninclude, nexclude;
	const char **exact; /* names chosen literally (a URL naming one file) */
	int nexact;
} fetch_sel;

/* Returns the local path of the file (fetching it if needed), for reading
 * model.safetensors.index.json; NULL with err set on failure. */
typedef char *(*fetch_get_fn)(void *arg, fetch_file *f, slm_err *err);

/* Set want on the files to fetch: the exact names and the files matching an
 * include glob, or else what slm-convert needs; never those matching an
 * exclude glob. what names the source in messages. */
int fetch_select(fetch_list *l, const fetch_sel *sel, fetch_get_fn get, void *arg,
		 const char *what, slm_err *err);

/* ---- HTTP (fetch_http.c) ---- */

typedef struct http http;

typedef struct http_opts {
	const char *token;        /* bearer token, or NULL */
	const char *token_origin; /* URL whose scheme, host and port may see it */
	long retry_base_ms;       /* first back-off delay */
	int attempts;             /* tries per request */
	long timeout;             /* seconds: connecting, or a stalled transfer */
	int verbose;              /* log requests (never headers) on stderr */
	int progress;             /* draw progress bars on stderr */
} http_opts;

/* What a response said. Strings are NULL when the header was absent. */
typedef struct http_resp {
	long status;
	char *body; /* up to 64 KiB of a non-download body, NUL-terminated */
	size_t len;
	char *etag, *linked_etag; /* ETag and X-Linked-Etag, quotes and W/ removed */
	char *error_code, *error_message; /* X-Error-Code, X-Error-Message */
	char *location;                   /* absolute, for a redirect not followed */
	int64_t size;                     /* X-Linked-Size, else Content-Length, else -1 */
} http_resp;

/* Percent-encode s for a URL's path (keeping '/' if keep_slash), and
 * decode n bytes of one; both malloc'd. */
char *http_quote(const char *s, int keep_slash);
char *http_unquote(const char *s, size_t n);

http *http_new(const http_opts *o);
void http_free(http *h);
void http_resp_free(http_resp *r);

/* GET url into memory, following redirects. A transport failure or an
 * error status that survives the retries is an error; any other status
 * is returned in r for the caller to judge. */
int http_get(http *h, const char *url, http_resp *r, slm_err *err);

/* HEAD url, following only relative redirects (as huggingface_hub does, to
 * read the Hub's headers rather than a CDN's); r->location is set for a
 * redirect not followed. */
int http_head(http *h, const char *url, http_resp *r, slm_err *err);

/* GET url into path, resuming from what path already holds with a Range
 * request, retrying transient failures from where they stopped. Shows a
 * progress bar labelled label. A status other than 200/206 leaves path as
 * it was and is returned in r (status) with 0: the caller judges it. */
int http_download(http *h, const char *url, const char *path, const char *label,
		  int64_t size, http_resp *r, slm_err *err);

/* err for a response status the caller does not expect: 401/403 need a
 * token, 404 names what, 5xx are temporary. */
int http_status_err(const http_resp *r, const char *what, int have_token, slm_err *err);

/* ---- the Hub (fetch_hub.c) ---- */

typedef struct hub {
	http *h;
	const char *endpoint; /* no trailing slash */
	const char *cache;    /* the hub cache directory */
	int have_token, offline, quiet, verbose;
	char *repo;   /* ORG/NAME */
	char *rev;    /* revision asked for */
	char *dir;    /* cache/models--ORG--NAME */
	char *commit; /* resolved */
} hub;

/* Is arg a repository id, ORG/NAME[@REV] (or NAME[@REV])? */
int hub_is_repo_id(const char *arg);
/* Set repo and rev from ORG/NAME[@REV]; dir from the cache. */
int hub_open(hub *hb, const char *spec, slm_err *err);
/* Set repo, rev and the file from a $HF_ENDPOINT/ORG/NAME/resolve/REV/FILE
 * URL; 0 if url is not one, 1 if it is (*file is malloc'd), -1 on error. */
int hub_open_url(hub *hb, const char *url, char **file, slm_err *err);
void hub_close(hub *hb);

/* List the files at the revision: from the API, or from the cache when
 * offline. Sets commit. */
int hub_list(hub *hb, fetch_list *l, slm_err *err);
/* Make sure f is in the cache (downloading and verifying it if not) and
 * linked into the snapshot; sets f->path. */
int hub_get(hub *hb, fetch_file *f, slm_err *err);
/* Record rev -> commit in refs/ (nothing if rev is the commit). */
int hub_write_ref(hub *hb, slm_err *err);

/* Digests for verification, as lowercase hex. */
int fetch_sha256_file(const char *path, char out[65], slm_err *err);
int fetch_gitsha1_file(const char *path, char out[41], slm_err *err);

#endif
