/*
 * fetch_http.c - HTTP for slm-fetch over libcurl: redirects followed by
 * hand so that the bearer token goes only to its own origin, retries with
 * exponential back-off, downloads that resume with Range, progress bars.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"

#define BODY_MAX (64 * 1024)
#define MAX_REDIRECTS 10
#define MAX_DELAY_MS 60000L

struct http {
	CURL *c;
	http_opts o;
	char *token_origin; /* "scheme://host:port", or NULL: the token goes nowhere */
	char errbuf[CURL_ERROR_SIZE];
	/* the progress bar of the download under way */
	const char *label;
	int64_t total;       /* expected size, -1 if unknown */
	int64_t start_bytes; /* bytes in the file when the download began */
	struct timespec t0, last;
	int bar_shown;
};

/* One request's body destination and what it learned. */
typedef struct xfer {
	http *h;
	int fd;         /* download target, -1: body to memory */
	int64_t offset; /* bytes in the file when the request was sent */
	int decided;    /* the first body byte has been seen */
	int to_file;
	int bad_range;  /* a 206 not starting at offset */
	int io_errno;
	char *mem;
	size_t len;
} xfer;

static double since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* "scheme://host:port" of url, lower case, with the default port filled
 * in; NULL if url does not parse. */
static char *origin_of(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *o = NULL;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
		for (char *p = host; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		if (asprintf(&o, "%s://%s:%s", scheme, host, port) < 0)
			o = NULL;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return o;
}

static int same_origin(const char *a_url, const char *origin)
{
	if (!origin)
		return 0;
	char *o = origin_of(a_url);
	int same = o && !strcmp(o, origin);
	free(o);
	return same;
}

/* For logs and messages: the URL without its query (CDN URLs carry long
 * signatures there). */
static void log_request(http *h, const char *method, const char *url, long status)
{
	if (!h->o.verbose)
		return;
	size_t n = strcspn(url, "?#");
	if (status)
		fprintf(stderr, "%s: %s %.*s: %ld\n", slm_progname, method, (int)n, url, status);
	else
		fprintf(stderr, "%s: %s %.*s: %s\n", slm_progname, method, (int)n, url,
			h->errbuf[0] ? h->errbuf : "failed");
}

/* ---- URLs ---- */

/* Percent-encode s for a URL path; keep '/' if keep_slash. */
char *http_quote(const char *s, int keep_slash)
{
	static const char hx[] = "0123456789ABCDEF";
	char *o = slm_xmalloc(3 * strlen(s) + 1), *p = o;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		    *c == '-' || *c == '.' || *c == '_' || *c == '~' || (keep_slash && *c == '/')) {
			*p++ = (char)*c;
		} else {
			*p++ = '%';
			*p++ = hx[*c >> 4];
			*p++ = hx[*c & 15];
		}
	}
	*p = 0;
	return o;
}

char *http_unquote(const char *s, size_t n)
{
	char *o = slm_xmalloc(n + 1), *p = o;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n && (hi = slm_hexval(s[i + 1])) >= 0 &&
		    (lo = slm_hexval(s[i + 2])) >= 0) {
			*p++ = (char)(hi * 16 + lo);
			i += 2;
		} else {
			*p++ = s[i];
		}
	}
	*p = 0;
	return o;
}

/* ---- progress bar ---- */

static int term_columns(void)
{
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

static void fmt_eta(double s, char buf[16])
{
	if (s < 0 || s > 99 * 3600.0) {
		snprintf(buf, 16, "--:--");
		return;
	}
	unsigned t = (unsigned)s;
	if (t >= 3600)
		snprintf(buf, 16, "%u:%02u:%02u", t / 3600 % 100, t / 60 % 60, t % 60);
	else
		snprintf(buf, 16, "%u:%02u", t / 60 % 60, t % 60);
}

static void draw_bar(http *h, int64_t done, int final)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!final && h->bar_shown && since(&h->last, &now) < 0.1)
		return;
	h->last = now;
	h->bar_shown = 1;
	double el = since(&h->t0, &now);
	/* the first half second says little about the rate */
	double rate = el > 0 && (el >= 0.5 || final) ? (double)(done - h->start_bytes) / el : 0;
	char sdone[32], stotal[32], srate[32], eta[16];
	slm_fmt_size((uint64_t)done, sdone);
	if (rate > 0)
		slm_fmt_size((uint64_t)rate, srate);
	else
		snprintf(srate, sizeof srate, "-");
	int cols = term_columns();
	int lw = cols >= 100 ? 32 : 20;
	char label[40];
	size_t ll = strlen(h->label);
	if ((int)ll > lw)
		snprintf(label, sizeof label, "...%s", h->label + ll - (size_t)(lw - 3));
	else
		snprintf(label, sizeof label, "%s", h->label);
	if (final) {
		fprintf(stderr, "\r%-*s %10s %10s/s  done\033[K\n", lw, label, sdone, srate);
		return;
	}
	if (h->total <= 0) {
		fprintf(stderr, "\r%-*s %10s %10s/s\033[K", lw, label, sdone, srate);
		return;
	}
	slm_fmt_size((uint64_t)h->total, stotal);
	fmt_eta(rate > 0 ? (double)(h->total - done) / rate : -1, eta);
	char left[96], right[64], bar[128];
	int ln = snprintf(left, sizeof left, "%-*s %10s / %-10s", lw, label, sdone, stotal);
	int rn = snprintf(right, sizeof right, "%10s/s ETA %s", srate, eta);
	/* the bar takes what the terminal has left, less a column for the cursor */
	int bw = cols - 1 - ln - rn - 4;
	if (bw > (int)sizeof bar - 1)
		bw = (int)sizeof bar - 1;
	if (bw < 5) {
		fprintf(stderr, "\r%s %s\033[K", left, right);
		return;
	}
	int fill = (int)((double)done / (double)h->total * bw);
	if (fill > bw)
		fill = bw;
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '.', (size_t)(bw - fill));
	bar[bw] = 0;
	fprintf(stderr, "\r%s [%s] %s\033[K", left, bar, right);
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)ultotal;
	(void)ulnow;
	xfer *x = arg;
	if (!x->to_file)
		return 0;
	if (x->h->total <= 0 && dltotal > 0) /* a URL: the size comes with the answer */
		x->h->total = x->offset + (int64_t)dltotal;
	draw_bar(x->h, x->offset + (int64_t)dlnow, 0);
	return 0;
}

/* ---- one request ---- */

/* Content-Range: "bytes START-END/TOTAL" or "bytes * /TOTAL" (no space). */
static int content_range(CURL *c, int64_t *start, int64_t *total)
{
	struct curl_header *hd;
	*start = *total = -1;
	if (curl_easy_header(c, "Content-Range", 0, CURLH_HEADER, -1, &hd) != CURLHE_OK)
		return -1;
	const char *v = hd->value;
	if (strncasecmp(v, "bytes ", 6))
		return -1;
	v += 6;
	char *end;
	if (*v == '*') {
		end = (char *)v + 1;
	} else {
		*start = strtoll(v, &end, 10);
		if (*end != '-')
			return -1;
		strtoll(end + 1, &end, 10);
	}
	if (*end == '/' && end[1] != '*')
		*total = strtoll(end + 1, NULL, 10);
	return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	xfer *x = arg;
	size_t n = size * nmemb;
	if (!x->decided) {
		long status = 0;
		curl_easy_getinfo(x->h->c, CURLINFO_RESPONSE_CODE, &status);
		x->decided = 1;
		if (x->fd >= 0 && status == 200) {
			if (x->offset > 0 &&
			    (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0)) {
				x->io_errno = errno;
				return 0;
			}
			x->offset = 0;
			x->to_file = 1;
		} else if (x->fd >= 0 && status == 206) {
			int64_t start, total;
			if (content_range(x->h->c, &start, &total) < 0 || start != x->offset) {
				x->bad_range = 1;
				return 0;
			}
			x->to_file = 1;
		}
	}
	if (x->to_file) {
		for (size_t off = 0; off < n;) {
			ssize_t w = write(x->fd, ptr + off, n - off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				x->io_errno = errno;
				return 0;
			}
			off += (size_t)w;
		}
		return n;
	}
	size_t keep = x->len < BODY_MAX ? BODY_MAX - x->len : 0;
	if (keep > n)
		keep = n;
	if (keep) {
		x->mem = slm_xrealloc(x->mem, x->len + keep + 1);
		memcpy(x->mem + x->len, ptr, keep);
		x->len += keep;
		x->mem[x->len] = 0;
	}
	return n;
}

static char *header_value(CURL *c, const char *name)
{
	struct curl_header *hd;
	if (curl_easy_header(c, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK)
		return NULL;
	return slm_xstrdup(hd->value);
}

/* An entity tag without W/ and quotes. */
static char *etag_value(CURL *c, const char *name)
{
	char *v = header_value(c, name);
	if (!v)
		return NULL;
	char *s = v;
	if (!strncmp(s, "W/", 2))
		s += 2;
	size_t n = strlen(s);
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s++;
		n -= 2;
	}
	memmove(v, s, n);
	v[n] = 0;
	return v;
}

/* A Location header without scheme and host: a move within the site (a
 * renamed repository), not a hand-over to a CDN. */
static int relative_location(CURL *c)
{
	struct curl_header *hd;
	if (curl_easy_header(c, "Location", 0, CURLH_HEADER, -1, &hd) != CURLHE_OK)
		return 0;
	return !strstr(hd->value, "://") && strncmp(hd->value, "//", 2);
}

static CURLcode perform(http *h, int head, const char *url, xfer *x)
{
	CURL *c = h->c;
	struct curl_slist *hdrs = NULL;
	char line[64];
	if (h->o.token && same_origin(url, h->token_origin)) {
		char *auth;
		if (asprintf(&auth, "Authorization: Bearer %s", h->o.token) < 0)
			slm_die(EX_OSERR, "out of memory");
		hdrs = curl_slist_append(hdrs, auth);
		memset(auth, 0, strlen(auth));
		free(auth);
	}
	if (x->fd >= 0 && x->offset > 0) {
		snprintf(line, sizeof line, "Range: bytes=%" PRId64 "-", x->offset);
		hdrs = curl_slist_append(hdrs, line);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_NOBODY, head ? 1L : 0L);
	if (!head)
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	/* compression would break byte offsets: only for bodies in memory */
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, x->fd < 0 ? "" : NULL);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, x->fd >= 0 && h->o.progress ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	h->errbuf[0] = 0;
	CURLcode rc = curl_easy_perform(c);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	for (struct curl_slist *s = hdrs; s; s = s->next)
		memset(s->data, 0, strlen(s->data));
	curl_slist_free_all(hdrs);
	return rc;
}

static int transient_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

static int transient_status(long status)
{
	return status == 408 || status == 429 || status == 500 || status == 502 ||
	       status == 503 || status == 504;
}

static int is_redirect(long status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 ||
	       status == 308;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static const char *curl_msg(http *h, CURLcode rc)
{
	return h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
}

enum { M_GET, M_HEAD, M_DOWNLOAD };

/*
 * One attempt: the request and its redirects. Returns 0 with r filled, or
 * -1 with err set and *retry telling whether trying again may help.
 */
static int attempt(http *h, int mode, const char *url0, int fd, http_resp *r, int *retry,
		   slm_err *err)
{
	char *url = slm_xstrdup(url0);
	const char *method = mode == M_HEAD ? "HEAD" : "GET";
	*retry = 0;
	for (int hop = 0;; hop++) {
		xfer x = { .h = h, .fd = fd };
		if (fd >= 0) {
			struct stat st;
			if (fstat(fd, &st) != 0) {
				free(url);
				return slm_seterr(err, EX_IOERR, "%s", strerror(errno));
			}
			x.offset = st.st_size;
		}
		CURLcode rc = perform(h, mode == M_HEAD, url, &x);
		long status = 0;
		curl_easy_getinfo(h->c, CURLINFO_RESPONSE_CODE, &status);
		log_request(h, method, url, rc == CURLE_OK || x.bad_range ? status : 0);
		if (x.io_errno) {
			free(x.mem);
			free(url);
			return slm_seterr(err, EX_IOERR, "write error: %s", strerror(x.io_errno));
		}
		if (x.bad_range) {
			/* the server ignored or misread the range: start over */
			free(x.mem);
			free(url);
			if (ftruncate(fd, 0) != 0)
				return slm_seterr(err, EX_IOERR, "%s", strerror(errno));
			*retry = 1;
			return slm_seterr(err, EX_PROTOCOL, "the server answered a range request "
					  "with the wrong range");
		}
		if (rc != CURLE_OK) {
			free(x.mem);
			free(url);
			*retry = transient_curl(rc);
			int code = *retry ? EX_TEMPFAIL : EX_UNAVAILABLE;
			return slm_seterr(err, code, "%s", curl_msg(h, rc));
		}
		char *next = NULL;
		if (is_redirect(status)) {
			char *loc = NULL;
			curl_easy_getinfo(h->c, CURLINFO_REDIRECT_URL, &loc);
			if (loc && (!strncasecmp(loc, "http://", 7) || !strncasecmp(loc, "https://", 8)))
				next = slm_xstrdup(loc);
		}
		if (next && hop < MAX_REDIRECTS && (mode != M_HEAD || relative_location(h->c))) {
			free(x.mem);
			free(url);
			url = next;
			continue;
		}
		if (next && hop >= MAX_REDIRECTS) {
			free(next);
			free(x.mem);
			free(url);
			return slm_seterr(err, EX_PROTOCOL, "more than %d redirects",
					  MAX_REDIRECTS);
		}
		memset(r, 0, sizeof *r);
		r->status = status;
		r->body = x.mem ? x.mem : slm_xstrdup("");
		r->len = x.len;
		r->location = next;
		r->etag = etag_value(h->c, "ETag");
		r->linked_etag = etag_value(h->c, "X-Linked-Etag");
		r->error_code = header_value(h->c, "X-Error-Code");
		r->error_message = header_value(h->c, "X-Error-Message");
		r->size = -1;
		char *sz = header_value(h->c, "X-Linked-Size");
		if (sz)
			r->size = strtoll(sz, NULL, 10);
		free(sz);
		curl_off_t cl = -1;
		if (r->size < 0 && status == 200 &&
		    curl_easy_getinfo(h->c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
		    cl >= 0)
			r->size = (int64_t)cl;
		if (mode == M_DOWNLOAD && status == 206) {
			int64_t start, total;
			content_range(h->c, &start, &total);
			r->size = total;
		}
		if (mode == M_DOWNLOAD && status == 416) {
			/* nothing after offset: complete if that is the whole file */
			int64_t start, total;
			content_range(h->c, &start, &total);
			if (total >= 0 && total == x.offset) {
				r->status = 206;
				r->size = total;
			} else if (ftruncate(fd, 0) != 0) {
				free(url);
				return slm_seterr(err, EX_IOERR, "%s", strerror(errno));
			} else {
				*retry = 1;
				free(url);
				http_resp_free(r);
				return slm_seterr(err, EX_PROTOCOL, "the server refused the "
						  "range of a partial download");
			}
		}
		free(url);
		if (transient_status(r->status)) {
			*retry = 1;
			slm_seterr(err, EX_TEMPFAIL, "HTTP %ld", r->status);
			http_resp_free(r);
			return -1;
		}
		return 0;
	}
}

static void append_attempts(slm_err *err, int n)
{
	size_t l = strlen(err->msg);
	if (l < sizeof err->msg)
		snprintf(err->msg + l, sizeof err->msg - l, " (after %d attempts)", n);
}

/* attempt() until it succeeds, fails for good, or the attempts run out,
 * waiting base, 2 base, 4 base... in between. */
static int request(http *h, int mode, const char *url, int fd, http_resp *r, slm_err *err)
{
	for (int n = 1;; n++) {
		int retry;
		if (attempt(h, mode, url, fd, r, &retry, err) == 0)
			return 0;
		if (!retry || n >= h->o.attempts) {
			if (retry && n > 1)
				append_attempts(err, n);
			return -1;
		}
		long delay = h->o.retry_base_ms;
		for (int i = 1; i < n && delay < MAX_DELAY_MS; i++)
			delay *= 2;
		if (delay > MAX_DELAY_MS)
			delay = MAX_DELAY_MS;
		if (h->o.verbose)
			fprintf(stderr, "%s%s: %s; retrying in %ld ms\n", h->bar_shown ? "\n" : "",
				slm_progname, err->msg, delay);
		sleep_ms(delay);
	}
}

http *http_new(const http_opts *o)
{
	static int inited;
	if (!inited) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			slm_die(EX_SOFTWARE, "cannot initialise libcurl");
		inited = 1;
	}
	http *h = slm_xcalloc(1, sizeof *h);
	h->o = *o;
	if (h->o.attempts < 1)
		h->o.attempts = 1;
	if (o->token && o->token_origin)
		h->token_origin = origin_of(o->token_origin);
	h->c = curl_easy_init();
	if (!h->c)
		slm_die(EX_SOFTWARE, "cannot initialise libcurl");
	CURL *c = h->c;
	curl_easy_setopt(c, CURLOPT_USERAGENT, "slm-fetch/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->timeout);
	/* a transfer that moves nothing for timeout seconds has stalled */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o->timeout);
	return h;
}

void http_free(http *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->c);
	free(h->token_origin);
	free(h);
}

void http_resp_free(http_resp *r)
{
	free(r->body);
	free(r->etag);
	free(r->linked_etag);
	free(r->error_code);
	free(r->error_message);
	free(r->location);
	memset(r, 0, sizeof *r);
}

int http_get(http *h, const char *url, http_resp *r, slm_err *err)
{
	return request(h, M_GET, url, -1, r, err);
}

int http_head(http *h, const char *url, http_resp *r, slm_err *err)
{
	return request(h, M_HEAD, url, -1, r, err);
}

int http_download(http *h, const char *url, const char *path, const char *label,
		  int64_t size, http_resp *r, slm_err *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		return slm_seterr(err, EX_CANTCREAT, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return slm_seterr(err, EX_IOERR, "%s: %s", path, strerror(errno));
	}
	if (lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		return slm_seterr(err, EX_IOERR, "%s: %s", path, strerror(errno));
	}
	if (h->o.verbose && st.st_size > 0)
		fprintf(stderr, "%s: %s: resuming after %" PRId64 " bytes\n", slm_progname,
			label, (int64_t)st.st_size);
	h->label = label;
	h->total = size;
	h->start_bytes = st.st_size;
	h->bar_shown = 0;
	clock_gettime(CLOCK_MONOTONIC, &h->t0);
	int rc = request(h, M_DOWNLOAD, url, fd, r, err);
	if (rc == 0 && (r->status == 200 || r->status == 206)) {
		if (fstat(fd, &st) != 0 || fsync(fd) != 0)
			rc = slm_seterr(err, EX_IOERR, "%s: %s", path, strerror(errno));
		else if (h->o.progress)
			draw_bar(h, st.st_size, 1);
	} else if (h->bar_shown) {
		fputc('\n', stderr);
	}
	h->bar_shown = 0;
	if (close(fd) != 0 && rc == 0)
		rc = slm_seterr(err, EX_IOERR, "%s: %s", path, strerror(errno));
	return rc;
}

/* The X-Error-Message of a response, made one short line. */
static const char *server_says(const http_resp *r, char buf[160])
{
	if (!r->error_message || !*r->error_message)
		return "";
	snprintf(buf, 160, " (%s)", r->error_message);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < ' ')
			*p = ' ';
	return buf;
}

int http_status_err(const http_resp *r, const char *what, int have_token, slm_err *err)
{
	char said[160];
	switch (r->status) {
	case 401:
		if (have_token)
			return slm_seterr(err, EX_NOPERM, "%s: HF_TOKEN was refused (HTTP 401)",
					  what);
		return slm_seterr(err, EX_NOPERM, "%s: authentication required: set HF_TOKEN",
				  what);
	case 403:
		if (r->error_code && !strcmp(r->error_code, "GatedRepo"))
			return slm_seterr(err, EX_NOPERM, "%s: gated repository: accept its "
					  "conditions on the Hub and set HF_TOKEN", what);
		return slm_seterr(err, EX_NOPERM, "%s: access denied (HTTP 403)%s", what,
				  server_says(r, said));
	case 404:
		return slm_seterr(err, EX_NOINPUT, "%s: not found (HTTP 404)", what);
	default:
		if (r->status >= 500)
			return slm_seterr(err, EX_TEMPFAIL, "%s: server error (HTTP %ld)%s",
					  what, r->status, server_says(r, said));
		return slm_seterr(err, EX_PROTOCOL, "%s: unexpected HTTP status %ld%s", what,
				  r->status, server_says(r, said));
	}
}
