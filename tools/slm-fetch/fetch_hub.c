/*
 * fetch_hub.c - the Hugging Face Hub for slm-fetch: the model API, resolve
 * URLs, and huggingface_hub's cache layout (blobs/ named by sha256 or git
 * sha1, snapshots/COMMIT/ of relative symbolic links, refs/REVISION, and
 * .locks/), so that Python tools and slm-fetch share downloads.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"

/* ---- names ---- */

static int is_hex(const char *s, size_t n)
{
	size_t i = 0;
	for (; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == n;
}

/* A part of a repository id, by the Hub's rules: letters, digits, '-',
 * '_', '.'; no "--" or ".."; not starting or ending with '-' or '.'. */
static int valid_repo_part(const char *s, size_t n)
{
	if (n == 0 || n > 96 || s[0] == '-' || s[0] == '.' || s[n - 1] == '-' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
		if (i && (c == '-' || c == '.') && s[i - 1] == c)
			return 0;
	}
	return 1;
}

static int valid_repo(const char *id, size_t n)
{
	const char *slash = memchr(id, '/', n);
	if (!slash)
		return valid_repo_part(id, n);
	size_t a = (size_t)(slash - id);
	return valid_repo_part(id, a) && valid_repo_part(slash + 1, n - a - 1);
}

/* A revision: a branch, tag or commit; it names a file under refs/. */
static int valid_rev(const char *rev)
{
	return fetch_safe_name(rev) && !strpbrk(rev, " ~^:?*[") && strlen(rev) <= 255;
}

int hub_is_repo_id(const char *arg)
{
	const char *at = strchr(arg, '@');
	size_t n = at ? (size_t)(at - arg) : strlen(arg);
	return valid_repo(arg, n) && (!at || valid_rev(at + 1));
}

/* Blob names in the cache are entity tags: keep them to safe characters. */
static int valid_blob(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 128 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		slm_die(EX_OSERR, "out of memory");
	return s;
}

/* ---- opening ---- */

static void set_repo(hub *hb, const char *id, size_t n, const char *rev)
{
	hb->repo = slm_xmalloc(n + 1);
	memcpy(hb->repo, id, n);
	hb->repo[n] = 0;
	hb->rev = slm_xstrdup(rev);
	const char *slash = strchr(hb->repo, '/');
	if (slash)
		hb->dir = xasprintf("%s/models--%.*s--%s", hb->cache, (int)(slash - hb->repo),
				    hb->repo, slash + 1);
	else
		hb->dir = xasprintf("%s/models--%s", hb->cache, hb->repo);
}

int hub_open(hub *hb, const char *spec, slm_err *err)
{
	if (!hub_is_repo_id(spec))
		return slm_seterr(err, EX_USAGE, "%s: not a repository id (ORG/NAME[@REVISION])",
				  spec);
	const char *at = strchr(spec, '@');
	set_repo(hb, spec, at ? (size_t)(at - spec) : strlen(spec), at ? at + 1 : "main");
	return 0;
}

int hub_open_url(hub *hb, const char *url, char **file, slm_err *err)
{
	size_t el = strlen(hb->endpoint);
	if (strncmp(url, hb->endpoint, el) || url[el] != '/')
		return 0;
	const char *p = url + el + 1;
	size_t plen = strcspn(p, "?#");
	/* ORG/NAME/resolve/REV/FILE, NAME/resolve/REV/FILE, or blob for resolve */
	const char *part[5];
	size_t len[5];
	int np = 0;
	const char *c = p, *end = p + plen;
	while (np < 5 && c < end) {
		const char *slash = memchr(c, '/', (size_t)(end - c));
		part[np] = c;
		len[np] = slash && np < 4 ? (size_t)(slash - c) : (size_t)(end - c);
		c += len[np] + 1;
		np++;
	}
	int k; /* index of "resolve" */
	for (k = 1; k <= 2 && k < np; k++)
		if ((len[k] == 7 && !memcmp(part[k], "resolve", 7)) ||
		    (len[k] == 4 && !memcmp(part[k], "blob", 4)))
			break;
	if (k > 2 || k + 2 >= np)
		return 0;
	/* the file is everything after the revision */
	const char *fstart = part[k + 2];
	size_t repo_len = (size_t)(part[k] - p) - 1;
	if (!valid_repo(p, repo_len))
		return 0;
	char *rev = http_unquote(part[k + 1], len[k + 1]);
	*file = http_unquote(fstart, (size_t)(end - fstart));
	if (!valid_rev(rev) || !fetch_safe_name(*file)) {
		slm_seterr(err, EX_USAGE, "%s: bad revision or file name in the URL", url);
		free(rev);
		free(*file);
		*file = NULL;
		return -1;
	}
	set_repo(hb, p, repo_len, rev);
	free(rev);
	return 1;
}

void hub_close(hub *hb)
{
	free(hb->repo);
	free(hb->rev);
	free(hb->dir);
	free(hb->commit);
	hb->repo = hb->rev = hb->dir = hb->commit = NULL;
}

/* ---- listing ---- */

/* Read a small text file, whitespace trimmed; NULL if unreadable. */
static char *read_small(const char *path)
{
	char *data;
	size_t n;
	slm_err e;
	if (slm_read_file(path, &data, &n, &e) < 0)
		return NULL;
	while (n && (data[n - 1] == '\n' || data[n - 1] == '\r' || data[n - 1] == ' '))
		data[--n] = 0;
	return data;
}

/* The snapshot of rev in the cache: its files, with paths. */
static int list_cache(hub *hb, fetch_list *l, slm_err *err)
{
	char *commit = NULL;
	char *snap = xasprintf("%s/snapshots/%s", hb->dir, hb->rev);
	struct stat st;
	if (is_hex(hb->rev, 40) && stat(snap, &st) == 0 && S_ISDIR(st.st_mode)) {
		commit = slm_xstrdup(hb->rev);
	} else {
		char *ref = xasprintf("%s/refs/%s", hb->dir, hb->rev);
		commit = read_small(ref);
		free(ref);
	}
	free(snap);
	if (!commit || !is_hex(commit, 40)) {
		free(commit);
		return slm_seterr(err, EX_UNAVAILABLE, "%s@%s: not in the cache (%s)", hb->repo,
				  hb->rev, hb->cache);
	}
	snap = xasprintf("%s/snapshots/%s", hb->dir, commit);
	hb->commit = commit;
	int rc = fetch_walk(snap, l, 0, err);
	if (rc == 0 && l->n == 0)
		rc = slm_seterr(err, EX_UNAVAILABLE, "%s@%s: not in the cache (%s)", hb->repo,
				hb->rev, hb->cache);
	else if (rc < 0)
		rc = slm_seterr(err, EX_UNAVAILABLE, "%s@%s: snapshot %s is not in the cache",
				hb->repo, hb->rev, commit);
	free(snap);
	return rc;
}

/* Why the model API refused: repository or revision not found, a token
 * needed. */
static int api_error(hub *hb, const http_resp *r, slm_err *err)
{
	const char *code = r->error_code ? r->error_code : "";
	int repo_missing = !strcmp(code, "RepoNotFound");
	int rev_missing = !strcmp(code, "RevisionNotFound");
	if (r->status == 404 && !repo_missing && !rev_missing) {
		/* no X-Error-Code: ask about the repository itself */
		char *url = xasprintf("%s/api/models/%s", hb->endpoint, hb->repo);
		http_resp r2;
		slm_err e2;
		if (http_get(hb->h, url, &r2, &e2) == 0) {
			rev_missing = r2.status == 200;
			repo_missing = r2.status == 404;
			http_resp_free(&r2);
		}
		free(url);
	}
	if (rev_missing)
		return slm_seterr(err, EX_NOINPUT, "%s: revision '%s' not found", hb->repo,
				  hb->rev);
	if (repo_missing)
		return slm_seterr(err, EX_NOINPUT, "%s: repository not found%s", hb->repo,
				  hb->have_token ? "" : " (if it is private or gated, set HF_TOKEN)");
	return http_status_err(r, hb->repo, hb->have_token, err);
}

/* The API's answer: the commit and, with blobs=true, every file's size,
 * git blob id and LFS sha256. */
static int parse_info(hub *hb, const http_resp *r, fetch_list *l, slm_err *err)
{
	json_error_t je;
	json_t *j = json_loadb(r->body, r->len, 0, &je);
	const char *sha = json_string_value(json_object_get(j, "sha"));
	json_t *sib = json_object_get(j, "siblings");
	if (!sha || !is_hex(sha, 40) || !json_is_array(sib)) {
		json_decref(j);
		return slm_seterr(err, EX_PROTOCOL, "%s: the model API's answer %s", hb->repo,
				  !j ? "is not JSON" : "has no commit sha and siblings");
	}
	hb->commit = slm_xstrdup(sha);
	size_t i;
	json_t *s;
	json_array_foreach(sib, i, s) {
		const char *name = json_string_value(json_object_get(s, "rfilename"));
		if (!name || !fetch_safe_name(name)) {
			json_decref(j);
			return slm_seterr(err, EX_PROTOCOL, "%s: the model API lists a file with "
					  "an unsafe name", hb->repo);
		}
		json_t *lfs = json_object_get(s, "lfs");
		json_t *size = json_object_get(lfs, "size");
		if (!json_is_integer(size))
			size = json_object_get(s, "size");
		fetch_file *f = fetch_list_add(l, name, json_is_integer(size) ?
						   (int64_t)json_integer_value(size) : -1);
		const char *sha256 = json_string_value(json_object_get(lfs, "sha256"));
		const char *oid = json_string_value(json_object_get(s, "blobId"));
		if (sha256 && is_hex(sha256, 64)) {
			f->blob = slm_xstrdup(sha256);
			f->lfs = 1;
		} else if (!lfs && oid && is_hex(oid, 40)) {
			f->blob = slm_xstrdup(oid);
		}
	}
	json_decref(j);
	return 0;
}

int hub_list(hub *hb, fetch_list *l, slm_err *err)
{
	if (hb->offline)
		return list_cache(hb, l, err);
	char *rev = http_quote(hb->rev, 0);
	char *url = xasprintf("%s/api/models/%s/revision/%s?blobs=true", hb->endpoint,
			      hb->repo, rev);
	free(rev);
	http_resp r;
	int rc = http_get(hb->h, url, &r, err);
	free(url);
	if (rc < 0) {
		/* the Hub out of reach: a cached snapshot will do */
		slm_err e2;
		if ((err->code == EX_UNAVAILABLE || err->code == EX_TEMPFAIL) &&
		    list_cache(hb, l, &e2) == 0) {
			slm_warn("%s: %s; using the cached snapshot %s", hb->repo, err->msg,
				 hb->commit);
			hb->offline = 1;
			return 0;
		}
		return slm_preerr(err, "%s", hb->repo);
	}
	if (r.status == 200)
		rc = parse_info(hb, &r, l, err);
	else
		rc = api_error(hb, &r, err);
	http_resp_free(&r);
	return rc;
}

/* ---- digests ---- */

static int digest_file(const char *path, const EVP_MD *md, const char *prefix, char *out,
		       slm_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return slm_seterr(err, EX_IOERR, "%s: %s", path, strerror(errno));
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, md, NULL) != 1)
		slm_die(EX_SOFTWARE, "cannot initialise libcrypto digest");
	if (prefix)
		EVP_DigestUpdate(ctx, prefix, strlen(prefix) + 1); /* with its NUL */
	static char buf[1 << 20];
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			EVP_MD_CTX_free(ctx);
			return slm_seterr(err, EX_IOERR, "%s: read: %s", path, strerror(e));
		}
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	}
	close(fd);
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dn = 0;
	EVP_DigestFinal_ex(ctx, d, &dn);
	EVP_MD_CTX_free(ctx);
	for (unsigned i = 0; i < dn; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	return 0;
}

int fetch_sha256_file(const char *path, char out[65], slm_err *err)
{
	return digest_file(path, EVP_sha256(), NULL, out, err);
}

/* git's blob id: sha1 of "blob SIZE\0" and the content. */
int fetch_gitsha1_file(const char *path, char out[41], slm_err *err)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return slm_seterr(err, EX_IOERR, "%s: %s", path, strerror(errno));
	char prefix[32];
	snprintf(prefix, sizeof prefix, "blob %lld", (long long)st.st_size);
	return digest_file(path, EVP_sha1(), prefix, out, err);
}

/* ---- fetching one file ---- */

/* What the resolve URL says about a file the API did not describe: the
 * Hub's X-Linked-Etag (sha256 of an LFS file) or ETag, its size, and where
 * the content is. */
static int probe(hub *hb, fetch_file *f, const char *url, char **where, slm_err *err)
{
	http_resp r;
	if (http_head(hb->h, url, &r, err) < 0)
		return slm_preerr(err, "%s: %s", hb->repo, f->name);
	int rc = 0;
	const char *tag = r.linked_etag ? r.linked_etag : r.etag;
	if (r.status != 200 && !r.location) {
		rc = http_status_err(&r, f->name, hb->have_token, err);
		slm_preerr(err, "%s", hb->repo);
	} else if (!tag || !valid_blob(tag)) {
		rc = slm_seterr(err, EX_PROTOCOL, "%s: %s: the server sent %s ETag", hb->repo,
				f->name, tag ? "an unusable" : "no");
	} else {
		f->blob = slm_xstrdup(tag);
		f->lfs = r.linked_etag && is_hex(r.linked_etag, 64);
		if (f->size < 0)
			f->size = r.size;
		*where = r.location ? slm_xstrdup(r.location) : NULL;
	}
	http_resp_free(&r);
	return rc;
}

/* The checks a download must pass before it becomes a blob. */
static int verify(hub *hb, const fetch_file *f, const char *path, slm_err *err)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return slm_seterr(err, EX_IOERR, "%s: %s", path, strerror(errno));
	if (f->size >= 0 && st.st_size != f->size)
		return slm_seterr(err, EX_DATAERR, "%s: %s: received %lld bytes, expected %lld; "
				  "the download was discarded", hb->repo, f->name,
				  (long long)st.st_size, (long long)f->size);
	char got[65];
	const char *kind = NULL;
	if (f->lfs) {
		kind = "sha256";
		if (fetch_sha256_file(path, got, err) < 0)
			return -1;
	} else if (is_hex(f->blob, 40)) {
		kind = "git sha1";
		if (fetch_gitsha1_file(path, got, err) < 0)
			return -1;
	}
	if (kind && strcmp(got, f->blob))
		return slm_seterr(err, EX_DATAERR, "%s: %s: checksum mismatch: %s %s expected, "
				  "%s received; the download was discarded", hb->repo, f->name,
				  kind, f->blob, got);
	return 0;
}

/* Download f into blob, holding huggingface_hub's lock for it. */
static int download_blob(hub *hb, fetch_file *f, const char *url, const char *blob,
			 slm_err *err)
{
	const char *slash = strrchr(hb->dir, '/');
	char *lock = xasprintf("%s/.locks/%s/%s.lock", hb->cache, slash + 1, f->blob);
	if (fetch_mkparents(lock, err) < 0) {
		free(lock);
		return -1;
	}
	int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (lfd < 0) {
		slm_seterr(err, EX_CANTCREAT, "%s: %s", lock, strerror(errno));
		free(lock);
		return -1;
	}
	free(lock);
	if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
		if (!hb->quiet)
			slm_warn("%s: waiting for another download of it to finish", f->name);
		while (flock(lfd, LOCK_EX) != 0 && errno == EINTR)
			;
	}
	int rc = 0;
	struct stat st;
	if (stat(blob, &st) != 0) { /* not done meanwhile by the lock's holder */
		char *part = xasprintf("%s.incomplete", blob);
		http_resp r = { 0 };
		rc = http_download(hb->h, url, part, f->name, f->size, &r, err);
		if (rc < 0) {
			slm_preerr(err, "%s: %s", hb->repo, f->name);
		} else if (r.status != 200 && r.status != 206) {
			rc = http_status_err(&r, f->name, hb->have_token, err);
			slm_preerr(err, "%s", hb->repo);
			if (stat(part, &st) == 0 && st.st_size == 0)
				unlink(part);
		} else if ((rc = verify(hb, f, part, err)) < 0) {
			if (err->code == EX_DATAERR)
				unlink(part);
		} else if (rename(part, blob) != 0) {
			rc = slm_seterr(err, EX_CANTCREAT, "%s: %s", blob, strerror(errno));
		} else if (hb->verbose) {
			char sz[32];
			slm_warn("%s: %s downloaded and verified", f->name,
				 slm_fmt_size((uint64_t)f->size, sz));
		}
		http_resp_free(&r);
		free(part);
	} else if (hb->verbose) {
		slm_warn("%s: downloaded by another process", f->name);
	}
	close(lfd);
	return rc;
}

/* snapshots/COMMIT/NAME -> ../../blobs/BLOB (one more ../ per directory in
 * NAME), replaced atomically if it points elsewhere. */
static int link_snapshot(const fetch_file *f, const char *pointer, slm_err *err)
{
	size_t depth = 0;
	for (const char *p = f->name; *p; p++)
		depth += *p == '/';
	char *target = slm_xmalloc(3 * depth + strlen(f->blob) + 16);
	char *t = target;
	for (size_t i = 0; i < depth + 2; i++)
		t = stpcpy(t, "../");
	stpcpy(stpcpy(t, "blobs/"), f->blob);
	char cur[4096];
	ssize_t n = readlink(pointer, cur, sizeof cur - 1);
	int rc = 0;
	if (n < 0 || (size_t)n != strlen(target) || memcmp(cur, target, (size_t)n)) {
		char *tmp = xasprintf("%s.%ld.tmp", pointer, (long)getpid());
		unlink(tmp);
		if (fetch_mkparents(pointer, err) < 0)
			rc = -1;
		else if (symlink(target, tmp) != 0 || rename(tmp, pointer) != 0) {
			rc = slm_seterr(err, EX_CANTCREAT, "%s: %s", pointer, strerror(errno));
			unlink(tmp);
		}
		free(tmp);
	}
	free(target);
	return rc;
}

int hub_get(hub *hb, fetch_file *f, slm_err *err)
{
	if (f->path)
		return 0; /* offline: the snapshot's file; or fetched already */
	char *name = http_quote(f->name, 1);
	char *url = xasprintf("%s/%s/resolve/%s/%s", hb->endpoint, hb->repo, hb->commit, name);
	free(name);
	char *where = NULL;
	int rc = 0;
	if (!f->blob)
		rc = probe(hb, f, url, &where, err);
	char *blob = NULL;
	if (rc == 0) {
		blob = xasprintf("%s/blobs/%s", hb->dir, f->blob);
		struct stat st;
		if (stat(blob, &st) == 0 && S_ISREG(st.st_mode) &&
		    (f->size < 0 || st.st_size == f->size)) {
			if (hb->verbose)
				slm_warn("%s: in the cache", f->name);
		} else if (fetch_mkparents(blob, err) < 0) {
			rc = -1;
		} else {
			rc = download_blob(hb, f, where ? where : url, blob, err);
		}
	}
	if (rc == 0) {
		char *pointer = xasprintf("%s/snapshots/%s/%s", hb->dir, hb->commit, f->name);
		if (link_snapshot(f, pointer, err) < 0) {
			rc = -1;
			free(pointer);
		} else {
			f->path = pointer;
		}
	}
	free(blob);
	free(where);
	free(url);
	return rc;
}

int hub_write_ref(hub *hb, slm_err *err)
{
	if (hb->offline || !strcmp(hb->rev, hb->commit))
		return 0;
	char *ref = xasprintf("%s/refs/%s", hb->dir, hb->rev);
	char *cur = read_small(ref);
	int rc = 0;
	if (!cur || strcmp(cur, hb->commit)) {
		slm_afile af;
		if (fetch_mkparents(ref, err) < 0 || slm_afile_open(&af, ref, err) < 0)
			rc = -1;
		else if (fputs(hb->commit, af.fp) == EOF) {
			slm_afile_abort(&af);
			rc = slm_seterr(err, EX_IOERR, "%s: %s", ref, strerror(errno));
		} else {
			rc = slm_afile_commit(&af, err);
		}
	}
	free(cur);
	free(ref);
	return rc;
}
