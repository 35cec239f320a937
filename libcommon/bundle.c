/*
 * bundle.c - reading and writing slm bundles: a strict ustar parser over a
 * mapped (or decompressed) archive, manifest validation, checksums, and a
 * streaming writer that reserves the manifest's place up front and fills
 * in the checksums when the members are done.
 */
#include "bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "mpjson.h"

#define BLK 512

struct slm_bundle {
	char *path;
	uint8_t *data;
	size_t size;
	int mapped;
	int compressed;
	uint64_t file_size;
	json_t *manifest;
	slm_member *members;
	size_t nmembers;
	char **names; /* owned member names */
	slm_tensor *tensors;
	size_t ntensors;
};

static uint64_t round_blk(uint64_t n)
{
	return (n + BLK - 1) / BLK * BLK;
}

int bundle_safe_name(const char *name)
{
	if (!name || !*name || name[0] == '/')
		return 0;
	const char *p = name;
	for (const char *c = name; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\')
			return 0;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == 0 || (l == 1 && p[0] == '.') ||
		    (l == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!e)
			break;
		p = e + 1;
		if (!*p)
			return 0; /* trailing slash */
	}
	return 1;
}

/* ---- loading ---- */

static int gunzip(const uint8_t *in, size_t n, uint8_t **out, size_t *outn,
		  const char *path, slm_err *err)
{
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return slm_seterr(err, EX_SOFTWARE, "%s: zlib init failed", path);
	size_t cap = n * 4 + (1 << 20), len = 0;
	uint8_t *buf = slm_xmalloc(cap);
	zs.next_in = (Bytef *)in;
	int rc;
	do {
		if (len == cap) {
			cap *= 2;
			buf = slm_xrealloc(buf, cap);
		}
		uInt avail_in = n - (size_t)(zs.next_in - in) > UINT32_MAX
					? UINT32_MAX
					: (uInt)(n - (size_t)(zs.next_in - in));
		zs.avail_in = avail_in;
		size_t room = cap - len > UINT32_MAX ? UINT32_MAX : cap - len;
		zs.next_out = buf + len;
		zs.avail_out = (uInt)room;
		rc = inflate(&zs, Z_NO_FLUSH);
		len = (size_t)(zs.next_out - buf);
		if (rc == Z_BUF_ERROR && zs.avail_in == 0 &&
		    (size_t)(zs.next_in - in) == n)
			break;
	} while (rc == Z_OK || (rc == Z_BUF_ERROR && zs.avail_out == 0));
	uint64_t at = (uint64_t)(zs.next_in - in);
	inflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		free(buf);
		return slm_seterr(err, EX_DATAERR,
				  "%s: offset %llu: %s gzip data", path,
				  (unsigned long long)at,
				  rc == Z_DATA_ERROR ? "corrupt" : "truncated");
	}
	*out = buf;
	*outn = len;
	return 0;
}

static int load(slm_bundle *b, const char *path, slm_err *err)
{
	if (!strcmp(path, "-")) {
		char *d;
		size_t n;
		if (slm_read_file("-", &d, &n, err) < 0)
			return -1;
		b->data = (uint8_t *)d;
		b->size = n;
	} else {
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			return slm_seterr(err, errno == ENOENT ? EX_NOINPUT : EX_IOERR,
					  "%s: %s", path, strerror(errno));
		struct stat st;
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			/* not a regular file (a pipe?): read it whole */
			char *d;
			size_t n;
			if (slm_read_file(path, &d, &n, err) < 0)
				return -1;
			b->data = (uint8_t *)d;
			b->size = n;
		} else {
			if (st.st_size == 0) {
				close(fd);
				return slm_seterr(err, EX_DATAERR, "%s: empty file", path);
			}
			void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE,
				       fd, 0);
			close(fd);
			if (m == MAP_FAILED)
				return slm_seterr(err, EX_IOERR, "%s: mmap: %s", path,
						  strerror(errno));
			b->data = m;
			b->size = (size_t)st.st_size;
			b->mapped = 1;
		}
	}
	b->file_size = b->size;
	if (b->size == 0)
		return slm_seterr(err, EX_DATAERR, "%s: empty file", path);
	if (b->size >= 2 && b->data[0] == 0x1f && b->data[1] == 0x8b) {
		uint8_t *out = NULL;
		size_t outn = 0;
		if (gunzip(b->data, b->size, &out, &outn, path, err) < 0)
			return -1;
		if (b->mapped)
			munmap(b->data, b->size);
		else
			free(b->data);
		b->data = out;
		b->size = outn;
		b->mapped = 0;
		b->compressed = 1;
	}
	return 0;
}

/* ---- tar parsing ---- */

static int parse_octal(const uint8_t *f, size_t len, uint64_t *out)
{
	size_t i = 0;
	while (i < len && f[i] == ' ')
		i++;
	if (i == len || f[i] < '0' || f[i] > '7')
		return -1;
	uint64_t v = 0;
	for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v > (UINT64_MAX >> 3))
			return -1;
		v = (v << 3) | (uint64_t)(f[i] - '0');
	}
	for (; i < len; i++)
		if (f[i] != ' ' && f[i] != 0)
			return -1;
	*out = v;
	return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static int parse_tar(slm_bundle *b, slm_err *err)
{
	const char *path = b->path;
	uint64_t pos = 0;
	size_t cap = 16;
	b->members = slm_xcalloc(cap, sizeof *b->members);
	b->names = slm_xcalloc(cap, sizeof *b->names);
	for (;;) {
		if (pos == b->size)
			return slm_seterr(err, EX_DATAERR,
					  "%s: offset %llu: truncated archive: no end-of-archive marker",
					  path, (unsigned long long)pos);
		if (b->size - pos < BLK)
			return slm_seterr(err, EX_DATAERR,
					  "%s: offset %llu: truncated archive: tar header needs %d bytes, %llu remain",
					  path, (unsigned long long)pos, BLK,
					  (unsigned long long)(b->size - pos));
		const uint8_t *h = b->data + pos;
		if (all_zero(h, BLK))
			break;
		uint64_t sum_stored;
		if (parse_octal(h + 148, 8, &sum_stored) < 0)
			return slm_seterr(err, EX_DATAERR,
					  "%s: offset %llu: not a tar header (bad checksum field)",
					  path, (unsigned long long)pos);
		uint64_t sum = 0;
		for (int i = 0; i < BLK; i++)
			sum += (i >= 148 && i < 156) ? ' ' : h[i];
		if (sum != sum_stored)
			return slm_seterr(err, EX_DATAERR,
					  "%s: offset %llu: tar header checksum mismatch",
					  path, (unsigned long long)pos);
		if (memcmp(h + 257, "ustar", 5) != 0)
			return slm_seterr(err, EX_DATAERR,
					  "%s: offset %llu: not a POSIX (ustar) tar header",
					  path, (unsigned long long)pos);
		char name[256 + 2];
		size_t plen = strnlen((const char *)h + 345, 155);
		size_t nlen = strnlen((const char *)h, 100);
		if (plen) {
			memcpy(name, h + 345, plen);
			name[plen] = '/';
			memcpy(name + plen + 1, h, nlen);
			name[plen + 1 + nlen] = 0;
		} else {
			memcpy(name, h, nlen);
			name[nlen] = 0;
		}
		uint8_t tf = h[156];
		if (tf != '0' && tf != 0)
			return slm_seterr(err, EX_DATAERR,
					  "%s: offset %llu: member '%s': unsupported tar entry type '%c' (only regular files)",
					  path, (unsigned long long)pos, name,
					  tf >= 0x20 && tf < 0x7f ? tf : '?');
		if (!bundle_safe_name(name))
			return slm_seterr(err, EX_DATAERR,
					  "%s: offset %llu: member '%s': unsafe path (absolute, '..' or empty component)",
					  path, (unsigned long long)pos, name);
		uint64_t size;
		if (parse_octal(h + 124, 12, &size) < 0)
			return slm_seterr(err, EX_DATAERR,
					  "%s: offset %llu: member '%s': bad size field",
					  path, (unsigned long long)pos, name);
		uint64_t data_at = pos + BLK;
		if (size > b->size - data_at)
			return slm_seterr(err, EX_DATAERR,
					  "%s: offset %llu: truncated archive: member '%s' needs %llu bytes, %llu remain",
					  path, (unsigned long long)data_at, name,
					  (unsigned long long)size,
					  (unsigned long long)(b->size - data_at));
		for (size_t i = 0; i < b->nmembers; i++)
			if (!strcmp(b->members[i].name, name))
				return slm_seterr(err, EX_DATAERR,
						  "%s: offset %llu: duplicate member '%s'",
						  path, (unsigned long long)pos, name);
		if (b->nmembers == cap) {
			cap *= 2;
			b->members = slm_xrealloc(b->members, cap * sizeof *b->members);
			b->names = slm_xrealloc(b->names, cap * sizeof *b->names);
		}
		b->names[b->nmembers] = slm_xstrdup(name);
		slm_member *m = &b->members[b->nmembers++];
		memset(m, 0, sizeof *m);
		m->name = b->names[b->nmembers - 1];
		m->offset = data_at;
		m->size = size;
		m->data = b->data + data_at;
		uint64_t next = data_at + round_blk(size);
		if (next > b->size)
			next = b->size; /* last member's padding missing: caught above */
		pos = next;
	}
	return 0;
}

/* ---- manifest ---- */

static int merr(slm_bundle *b, slm_err *err, const char *fmt, const char *a)
{
	char msg[512];
	snprintf(msg, sizeof msg, fmt, a);
	return slm_seterr(err, EX_DATAERR, "%s: offset %d: manifest: %s", b->path,
			  BLK, msg);
}

static int is_hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return 0;
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int check_manifest(slm_bundle *b, slm_err *err)
{
	if (b->nmembers == 0 || strcmp(b->members[0].name, SLM_MANIFEST_MEMBER))
		return slm_seterr(err, EX_DATAERR,
				  "%s: offset 0: not an slm bundle: first member is not %s",
				  b->path, SLM_MANIFEST_MEMBER);
	const slm_member *mm = &b->members[0];
	size_t len = 0, errpos = 0;
	const char *why = "truncated";
	int s = mpj_scan(mm->data, mm->size, mm->size + 1, &len, &errpos, &why);
	if (s != 1)
		return slm_seterr(err, EX_DATAERR, "%s: offset %llu: manifest: %s",
				  b->path, (unsigned long long)(mm->offset + (s < 0 ? errpos : mm->size)),
				  s < 0 ? why : "truncated msgpack");
	if (len != mm->size)
		return slm_seterr(err, EX_DATAERR,
				  "%s: offset %llu: manifest: %llu stray bytes after the manifest",
				  b->path, (unsigned long long)(mm->offset + len),
				  (unsigned long long)(mm->size - len));
	json_t *man = mpj_decode(mm->data, len, &why);
	if (!man)
		return merr(b, err, "%s", why);
	b->manifest = man;
	if (!json_is_object(man))
		return merr(b, err, "%s", "not a map");
	const char *fmt = json_string_value(json_object_get(man, "format"));
	if (!fmt || strcmp(fmt, "slm-bundle"))
		return merr(b, err, "%s", "'format' is not \"slm-bundle\"");
	json_t *ver = json_object_get(man, "version");
	if (!json_is_integer(ver) || json_integer_value(ver) < 1)
		return merr(b, err, "%s", "'version' missing or not a positive integer");
	if (json_integer_value(ver) > SLM_BUNDLE_VERSION)
		return merr(b, err, "%s",
			    "bundle format version is newer than this slm supports");
	if (!json_is_string(json_object_get(man, "arch")))
		return merr(b, err, "%s", "'arch' missing or not a string");

	/* manifest checksum: the last member */
	const slm_member *last = &b->members[b->nmembers - 1];
	if (b->nmembers < 2 || strcmp(last->name, SLM_MANIFEST_SUM_MEMBER))
		return slm_seterr(err, EX_DATAERR, "%s: last member is not %s",
				  b->path, SLM_MANIFEST_SUM_MEMBER);
	char hex[65];
	slm_sha256_hex(mm->data, mm->size, hex);
	if (last->size < 64 || memcmp(last->data, hex, 64) != 0)
		return slm_seterr(err, EX_DATAERR,
				  "%s: offset %llu: manifest checksum mismatch (damaged manifest or %s)",
				  b->path, (unsigned long long)mm->offset,
				  SLM_MANIFEST_SUM_MEMBER);

	/* member table: exactly the archive's members between the two */
	json_t *mem = json_object_get(man, "members");
	if (!json_is_array(mem))
		return merr(b, err, "%s", "'members' missing or not an array");
	if (json_array_size(mem) != b->nmembers - 2)
		return slm_seterr(err, EX_DATAERR,
				  "%s: manifest lists %zu members, the archive has %zu",
				  b->path, json_array_size(mem), b->nmembers - 2);
	for (size_t i = 0; i < json_array_size(mem); i++) {
		json_t *e = json_array_get(mem, i);
		slm_member *m = &b->members[i + 1];
		const char *nm = json_string_value(json_object_get(e, "name"));
		json_t *sz = json_object_get(e, "size");
		const char *sha = json_string_value(json_object_get(e, "sha256"));
		if (!nm || !json_is_integer(sz) || !is_hex64(sha))
			return slm_seterr(err, EX_DATAERR,
					  "%s: manifest: members[%zu]: needs name, size and sha256",
					  b->path, i);
		if (strcmp(nm, m->name))
			return slm_seterr(err, EX_DATAERR,
					  "%s: offset %llu: member '%s' is not the '%s' the manifest lists",
					  b->path, (unsigned long long)(m->offset - BLK),
					  m->name, nm);
		if ((uint64_t)json_integer_value(sz) != m->size ||
		    json_integer_value(sz) < 0)
			return slm_seterr(err, EX_DATAERR,
					  "%s: offset %llu: member '%s': manifest says %lld bytes, archive has %llu",
					  b->path, (unsigned long long)m->offset, m->name,
					  (long long)json_integer_value(sz),
					  (unsigned long long)m->size);
		m->sha256 = sha;
	}

	/* tensors */
	json_t *ts = json_object_get(man, "tensors");
	if (!json_is_array(ts))
		return merr(b, err, "%s", "'tensors' missing or not an array");
	b->ntensors = json_array_size(ts);
	b->tensors = slm_xcalloc(b->ntensors ? b->ntensors : 1, sizeof *b->tensors);
	for (size_t i = 0; i < b->ntensors; i++) {
		json_t *e = json_array_get(ts, i);
		slm_tensor *t = &b->tensors[i];
		t->name = json_string_value(json_object_get(e, "name"));
		const char *dt = json_string_value(json_object_get(e, "dtype"));
		const char *mn = json_string_value(json_object_get(e, "member"));
		json_t *shape = json_object_get(e, "shape");
		if (!t->name || !dt || !mn || !json_is_array(shape))
			return slm_seterr(err, EX_DATAERR,
					  "%s: manifest: tensors[%zu]: needs name, dtype, shape and member",
					  b->path, i);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(b->tensors[j].name, t->name))
				return slm_seterr(err, EX_DATAERR,
						  "%s: manifest: duplicate tensor '%s'",
						  b->path, t->name);
		t->dtype = dtype_by_name(dt);
		if (!t->dtype)
			return slm_seterr(err, EX_DATAERR,
					  "%s: manifest: tensor '%s': unknown dtype '%s'",
					  b->path, t->name, dt);
		size_t nd = json_array_size(shape);
		if (nd < 1 || nd > SLM_MAX_DIMS)
			return slm_seterr(err, EX_DATAERR,
					  "%s: manifest: tensor '%s': %zu dimensions (1 to %d allowed)",
					  b->path, t->name, nd, SLM_MAX_DIMS);
		t->ndim = (int)nd;
		uint64_t ne = 1;
		for (size_t j = 0; j < SLM_MAX_DIMS; j++) {
			json_int_t d = j < nd ? json_integer_value(json_array_get(shape, j)) : 1;
			if (j < nd && (!json_is_integer(json_array_get(shape, j)) || d < 1))
				return slm_seterr(err, EX_DATAERR,
						  "%s: manifest: tensor '%s': dimension %zu is not a positive integer",
						  b->path, t->name, j);
			t->ne[j] = (uint64_t)d;
			if (slm_mul_ok(ne, (uint64_t)d, &ne) < 0)
				return slm_seterr(err, EX_DATAERR,
						  "%s: manifest: tensor '%s': element count overflows",
						  b->path, t->name);
		}
		t->nelems = ne;
		if (dtype_nbytes(t->dtype, t->ne[0], ne, &t->size) < 0)
			return slm_seterr(err, EX_DATAERR,
					  "%s: manifest: tensor '%s': shape does not fit %s blocks of %u",
					  b->path, t->name, t->dtype->name,
					  t->dtype->block_elems);
		t->member = bundle_find_member(b, mn);
		if (!t->member || t->member == &b->members[0] ||
		    t->member == last)
			return slm_seterr(err, EX_DATAERR,
					  "%s: manifest: tensor '%s': member '%s' not in the archive",
					  b->path, t->name, mn);
		if (t->member->size != t->size)
			return slm_seterr(err, EX_DATAERR,
					  "%s: offset %llu: tensor '%s' needs %llu bytes (%s, %llu elements), member '%s' has %llu",
					  b->path, (unsigned long long)t->member->offset,
					  t->name, (unsigned long long)t->size,
					  t->dtype->name, (unsigned long long)ne, mn,
					  (unsigned long long)t->member->size);
		t->data = t->member->data;
		json_t *lay = json_object_get(e, "layout");
		if (lay) {
			const char *ls = json_string_value(lay);
			if (!ls || strcmp(ls, "tile16") != 0)
				return slm_seterr(err, EX_DATAERR,
						  "%s: manifest: tensor '%s': unknown layout%s%s",
						  b->path, t->name, ls ? " " : "", ls ? ls : "");
			if (!dtype_tileable(t->dtype) || t->ndim != 2)
				return slm_seterr(err, EX_DATAERR,
						  "%s: manifest: tensor '%s': layout tile16 needs a 2-D "
						  "q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k or q6_k tensor, not %d-D %s",
						  b->path, t->name, t->ndim, t->dtype->name);
			t->tiled = 1;
		}
	}
	return 0;
}

int bundle_open(slm_bundle **out, const char *path, slm_err *err)
{
	*out = NULL;
	slm_bundle *b = slm_xcalloc(1, sizeof *b);
	b->path = slm_xstrdup(!strcmp(path, "-") ? "standard input" : path);
	if (load(b, path, err) < 0 || parse_tar(b, err) < 0 ||
	    check_manifest(b, err) < 0) {
		bundle_close(b);
		return -1;
	}
	*out = b;
	return 0;
}

void bundle_close(slm_bundle *b)
{
	if (!b)
		return;
	if (b->mapped)
		munmap(b->data, b->size);
	else
		free(b->data);
	for (size_t i = 0; i < b->nmembers; i++)
		free(b->names[i]);
	free(b->names);
	free(b->members);
	free(b->tensors);
	json_decref(b->manifest);
	free(b->path);
	free(b);
}

const char *bundle_path(const slm_bundle *b) { return b->path; }
int bundle_is_compressed(const slm_bundle *b) { return b->compressed; }
uint64_t bundle_file_size(const slm_bundle *b) { return b->file_size; }
json_t *bundle_manifest(const slm_bundle *b) { return b->manifest; }
size_t bundle_n_members(const slm_bundle *b) { return b->nmembers; }
size_t bundle_n_tensors(const slm_bundle *b) { return b->ntensors; }

const char *bundle_str(const slm_bundle *b, const char *key)
{
	return json_string_value(json_object_get(b->manifest, key));
}

const slm_member *bundle_member_at(const slm_bundle *b, size_t i)
{
	return i < b->nmembers ? &b->members[i] : NULL;
}

const slm_member *bundle_find_member(const slm_bundle *b, const char *name)
{
	for (size_t i = 0; i < b->nmembers; i++)
		if (!strcmp(b->members[i].name, name))
			return &b->members[i];
	return NULL;
}

const slm_tensor *bundle_tensor_at(const slm_bundle *b, size_t i)
{
	return i < b->ntensors ? &b->tensors[i] : NULL;
}

const slm_tensor *bundle_find_tensor(const slm_bundle *b, const char *name)
{
	for (size_t i = 0; i < b->ntensors; i++)
		if (!strcmp(b->tensors[i].name, name))
			return &b->tensors[i];
	return NULL;
}

uint64_t bundle_n_params(const slm_bundle *b)
{
	uint64_t n = 0;
	for (size_t i = 0; i < b->ntensors; i++)
		n += b->tensors[i].nelems;
	return n;
}

const slm_dtype *bundle_main_dtype(const slm_bundle *b)
{
	const slm_dtype *best = NULL;
	uint64_t most = 0;
	for (size_t i = 0; i < b->ntensors; i++) {
		const slm_dtype *d = b->tensors[i].dtype;
		uint64_t sum = 0;
		for (size_t k = 0; k < b->ntensors; k++)
			if (b->tensors[k].dtype == d)
				sum += b->tensors[k].size;
		if (sum > most) {
			most = sum;
			best = d;
		}
	}
	return best;
}

int bundle_verify(const slm_bundle *b, slm_err *err)
{
	for (size_t i = 1; i + 1 < b->nmembers; i++) {
		const slm_member *m = &b->members[i];
		char hex[65];
		slm_sha256_hex(m->data, m->size, hex);
		if (strcmp(hex, m->sha256))
			return slm_seterr(err, EX_DATAERR,
					  "%s: offset %llu: member '%s' is damaged: sha256 %s, manifest says %s",
					  b->path, (unsigned long long)m->offset, m->name,
					  hex, m->sha256);
	}
	return 0;
}

/* ---- writing ---- */

typedef struct wmember {
	char *name;
	uint64_t size;
	char sha[65];
} wmember;

struct slm_bwriter {
	json_t *manifest; /* with "tensors"; "members" added at write time */
	json_t *tensors;
	wmember *m;
	size_t nm, cap;
	slm_afile af;
	int opened, gzip;
	FILE *tar;        /* where the archive goes (af.fp or a temporary) */
	size_t cur;       /* member being written */
	uint64_t left;    /* bytes left in it */
	slm_sha256 *h;
	uint64_t manifest_len;
};

slm_bwriter *bwriter_new(json_t *manifest)
{
	slm_bwriter *w = slm_xcalloc(1, sizeof *w);
	w->manifest = json_deep_copy(manifest);
	json_object_del(w->manifest, "members");
	json_object_set_new(w->manifest, "tensors", json_array());
	w->tensors = json_object_get(w->manifest, "tensors");
	json_object_set_new(w->manifest, "format", json_string("slm-bundle"));
	json_object_set_new(w->manifest, "version", json_integer(SLM_BUNDLE_VERSION));
	return w;
}

static int tar_header(uint8_t h[BLK], const char *name, uint64_t size,
		      slm_err *err)
{
	memset(h, 0, BLK);
	size_t n = strlen(name);
	if (n <= 100) {
		memcpy(h, name, n);
	} else {
		/* split into prefix (<=155) and name (<=100) at a slash */
		const char *cut = NULL;
		for (const char *s = name; *s; s++)
			if (*s == '/' && (size_t)(s - name) <= 155 &&
			    n - (size_t)(s - name) - 1 <= 100 && s != name)
				cut = s;
		if (!cut)
			return slm_seterr(err, EX_USAGE,
					  "member name too long for a ustar header: %s",
					  name);
		memcpy(h + 345, name, (size_t)(cut - name));
		memcpy(h, cut + 1, n - (size_t)(cut - name) - 1);
	}
	if (size > 077777777777ull)
		return slm_seterr(err, EX_USAGE, "member %s: %llu bytes is too large",
				  name, (unsigned long long)size);
	memcpy(h + 100, "0000644", 8);
	memcpy(h + 108, "0000000", 8);
	memcpy(h + 116, "0000000", 8);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	memcpy(h + 136, "00000000000", 12);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < BLK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	return 0;
}

static int push_member(slm_bwriter *w, const char *name, uint64_t size,
		       slm_err *err)
{
	if (w->opened)
		return slm_seterr(err, EX_SOFTWARE, "bundle writer already open");
	if (!bundle_safe_name(name) || !strcmp(name, SLM_MANIFEST_MEMBER) ||
	    !strcmp(name, SLM_MANIFEST_SUM_MEMBER))
		return slm_seterr(err, EX_DATAERR, "bad member name '%s'", name);
	for (size_t i = 0; i < w->nm; i++)
		if (!strcmp(w->m[i].name, name))
			return slm_seterr(err, EX_DATAERR, "duplicate member '%s'", name);
	uint8_t h[BLK];
	if (tar_header(h, name, size, err) < 0)
		return -1;
	if (w->nm == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 64;
		w->m = slm_xrealloc(w->m, w->cap * sizeof *w->m);
	}
	w->m[w->nm].name = slm_xstrdup(name);
	w->m[w->nm].size = size;
	memset(w->m[w->nm].sha, '0', 64);
	w->m[w->nm].sha[64] = 0;
	w->nm++;
	return 0;
}

int bundle_tile_wanted(const slm_dtype *dt, int ndim, const uint64_t *ne)
{
	return dtype_tileable(dt) && ndim == 2 && ne[1] >= DTYPE_TILE;
}

void tensor_rows(const slm_tensor *t, int64_t r0, int64_t r1, void *dst)
{
	int64_t n = (int64_t)t->ne[0];
	size_t rb = (size_t)(n / t->dtype->block_elems) * t->dtype->block_bytes;
	if (t->tiled)
		dtype_untile_rows(t->dtype, n, (int64_t)t->ne[1], t->data, r0, r1, dst);
	else
		memcpy(dst, (const uint8_t *)t->data + (size_t)r0 * rb, (size_t)(r1 - r0) * rb);
}

int bwriter_add_tensor(slm_bwriter *w, const char *name, const slm_dtype *dt,
		       int ndim, const uint64_t *ne, slm_err *err)
{
	return bwriter_add_tensor_l(w, name, dt, ndim, ne, 0, err);
}

int bwriter_add_tensor_l(slm_bwriter *w, const char *name, const slm_dtype *dt,
			 int ndim, const uint64_t *ne, int tiled, slm_err *err)
{
	if (tiled && (!dtype_tileable(dt) || ndim != 2))
		return slm_seterr(err, EX_DATAERR, "tensor '%s': layout tile16 needs a 2-D "
				  "q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k or q6_k tensor", name);
	if (ndim < 1 || ndim > SLM_MAX_DIMS)
		return slm_seterr(err, EX_DATAERR, "tensor '%s': %d dimensions", name,
				  ndim);
	uint64_t n = 1, bytes;
	json_t *shape = json_array();
	for (int i = 0; i < ndim; i++) {
		if (ne[i] < 1 || ne[i] > (uint64_t)INT64_MAX || slm_mul_ok(n, ne[i], &n) < 0) {
			json_decref(shape);
			return slm_seterr(err, EX_DATAERR, "tensor '%s': bad shape", name);
		}
		json_array_append_new(shape, json_integer((json_int_t)ne[i]));
	}
	if (dtype_nbytes(dt, ne[0], n, &bytes) < 0) {
		json_decref(shape);
		return slm_seterr(err, EX_DATAERR,
				  "tensor '%s': row of %llu does not fit %s blocks of %u",
				  name, (unsigned long long)ne[0], dt->name,
				  dt->block_elems);
	}
	size_t ml = strlen(name) + 9;
	char *member = slm_xmalloc(ml);
	snprintf(member, ml, "tensors/%s", name);
	if (push_member(w, member, bytes, err) < 0) {
		free(member);
		json_decref(shape);
		return -1;
	}
	json_t *e = json_pack("{s:s, s:s, s:o, s:s}", "name", name, "dtype", dt->name,
			      "shape", shape, "member", member);
	if (tiled)
		json_object_set_new(e, "layout", json_string("tile16"));
	json_array_append_new(w->tensors, e);
	free(member);
	return 0;
}

int bwriter_add_member(slm_bwriter *w, const char *name, uint64_t size,
		       slm_err *err)
{
	return push_member(w, name, size, err);
}

static void encode_manifest(slm_bwriter *w, char **buf, size_t *len)
{
	json_t *mem = json_array();
	for (size_t i = 0; i < w->nm; i++)
		json_array_append_new(mem, json_pack("{s:s, s:I, s:s}", "name",
						     w->m[i].name, "size",
						     (json_int_t)w->m[i].size,
						     "sha256", w->m[i].sha));
	json_object_set_new(w->manifest, "members", mem);
	mpj_encode(w->manifest, buf, len);
}

static int put(slm_bwriter *w, const void *p, size_t n, slm_err *err)
{
	if (n && fwrite(p, 1, n, w->tar) != n)
		return slm_seterr(err, EX_IOERR, "%s: write error: %s",
				  w->af.path ? w->af.path : "standard output",
				  strerror(errno));
	return 0;
}

static int pad(slm_bwriter *w, uint64_t size, slm_err *err)
{
	static const uint8_t zero[BLK];
	uint64_t r = round_blk(size) - size;
	return put(w, zero, (size_t)r, err);
}

/* Start members from w->cur on, finishing empty ones at once. */
static int start_member(slm_bwriter *w, slm_err *err)
{
	while (w->cur < w->nm) {
		uint8_t h[BLK];
		if (tar_header(h, w->m[w->cur].name, w->m[w->cur].size, err) < 0 ||
		    put(w, h, BLK, err) < 0)
			return -1;
		w->left = w->m[w->cur].size;
		w->h = slm_sha256_new();
		if (w->left > 0)
			return 0;
		slm_sha256_final(w->h, w->m[w->cur].sha);
		w->h = NULL;
		w->cur++;
	}
	return 0;
}

int bwriter_open(slm_bwriter *w, const char *path, int gzip, slm_err *err)
{
	if (slm_afile_open(&w->af, path, err) < 0) {
		bwriter_abort(w);
		return -1;
	}
	w->opened = 1;
	w->gzip = gzip;
	w->tar = w->af.fp;
	if (gzip) {
		w->tar = tmpfile();
		if (!w->tar) {
			slm_seterr(err, EX_CANTCREAT, "temporary file: %s", strerror(errno));
			slm_afile_abort(&w->af);
			return -1;
		}
	}
	char *buf;
	size_t len;
	encode_manifest(w, &buf, &len); /* placeholder checksums, same length */
	w->manifest_len = len;
	uint8_t h[BLK];
	int rc = tar_header(h, SLM_MANIFEST_MEMBER, len, err);
	if (rc == 0)
		rc = put(w, h, BLK, err);
	if (rc == 0)
		rc = put(w, buf, len, err);
	if (rc == 0)
		rc = pad(w, len, err);
	free(buf);
	if (rc == 0)
		rc = start_member(w, err);
	if (rc < 0)
		bwriter_abort(w);
	return rc;
}

int bwriter_write(slm_bwriter *w, const void *data, size_t n, slm_err *err)
{
	const uint8_t *p = data;
	while (n > 0) {
		if (w->cur >= w->nm)
			return slm_seterr(err, EX_SOFTWARE,
					  "bundle writer: more data than declared");
		size_t k = n < w->left ? n : (size_t)w->left;
		if (put(w, p, k, err) < 0)
			return -1;
		slm_sha256_update(w->h, p, k);
		p += k;
		n -= k;
		w->left -= k;
		if (w->left == 0) {
			slm_sha256_final(w->h, w->m[w->cur].sha);
			w->h = NULL;
			if (pad(w, w->m[w->cur].size, err) < 0)
				return -1;
			w->cur++;
			if (start_member(w, err) < 0)
				return -1;
		}
	}
	return 0;
}

static int gzip_into(FILE *in, FILE *out, slm_err *err)
{
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	/* windowBits 31: gzip wrapper with mtime 0 and no name: reproducible */
	if (deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return slm_seterr(err, EX_SOFTWARE, "zlib init failed");
	static uint8_t ibuf[1 << 16], obuf[1 << 16];
	rewind(in);
	int flush, rc = 0;
	do {
		size_t n = fread(ibuf, 1, sizeof ibuf, in);
		if (ferror(in)) {
			rc = slm_seterr(err, EX_IOERR, "temporary file: read error");
			break;
		}
		flush = feof(in) ? Z_FINISH : Z_NO_FLUSH;
		zs.next_in = ibuf;
		zs.avail_in = (uInt)n;
		do {
			zs.next_out = obuf;
			zs.avail_out = sizeof obuf;
			deflate(&zs, flush);
			size_t have = sizeof obuf - zs.avail_out;
			if (have && fwrite(obuf, 1, have, out) != have) {
				rc = slm_seterr(err, EX_IOERR, "write error: %s",
						strerror(errno));
				break;
			}
		} while (zs.avail_out == 0);
	} while (rc == 0 && flush != Z_FINISH);
	deflateEnd(&zs);
	return rc;
}

int bwriter_close(slm_bwriter *w, slm_err *err)
{
	if (w->cur < w->nm) {
		slm_seterr(err, EX_SOFTWARE,
			   "bundle writer: member '%s' is missing %llu bytes",
			   w->m[w->cur].name, (unsigned long long)w->left);
		bwriter_abort(w);
		return -1;
	}
	char *buf;
	size_t len;
	encode_manifest(w, &buf, &len);
	int rc = 0;
	if (len != w->manifest_len)
		rc = slm_seterr(err, EX_SOFTWARE, "bundle writer: manifest size changed");
	char hex[65], line[128];
	if (rc == 0) {
		slm_sha256_hex(buf, len, hex);
		int ll = snprintf(line, sizeof line, "%s  %s\n", hex, SLM_MANIFEST_MEMBER);
		uint8_t h[BLK];
		static const uint8_t zero[2 * BLK];
		rc = tar_header(h, SLM_MANIFEST_SUM_MEMBER, (uint64_t)ll, err);
		if (rc == 0)
			rc = put(w, h, BLK, err);
		if (rc == 0)
			rc = put(w, line, (size_t)ll, err);
		if (rc == 0)
			rc = pad(w, (uint64_t)ll, err);
		if (rc == 0)
			rc = put(w, zero, sizeof zero, err);
	}
	if (rc == 0 && fseek(w->tar, BLK, SEEK_SET) != 0)
		rc = slm_seterr(err, EX_IOERR, "seek: %s", strerror(errno));
	if (rc == 0)
		rc = put(w, buf, len, err);
	free(buf);
	if (rc == 0 && fflush(w->tar) != 0)
		rc = slm_seterr(err, EX_IOERR, "write error: %s", strerror(errno));
	if (rc == 0 && w->gzip)
		rc = gzip_into(w->tar, w->af.fp, err);
	if (rc == 0)
		rc = slm_afile_commit(&w->af, err);
	if (rc < 0) {
		bwriter_abort(w);
		return -1;
	}
	if (w->gzip)
		fclose(w->tar);
	w->tar = NULL;
	w->opened = 0;
	bwriter_abort(w); /* frees the rest */
	return 0;
}

void bwriter_abort(slm_bwriter *w)
{
	if (!w)
		return;
	if (w->h)
		slm_sha256_final(w->h, (char[65]){ 0 });
	if (w->opened) {
		if (w->gzip && w->tar)
			fclose(w->tar);
		slm_afile_abort(&w->af);
	}
	for (size_t i = 0; i < w->nm; i++)
		free(w->m[i].name);
	free(w->m);
	json_decref(w->manifest);
	free(w);
}
