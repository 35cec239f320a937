/*
 * unit-bundle.c - unit tests of libcommon's bundle writer and reader.
 *
 * A bundle with tensors of every dtype (several shapes each), attachments,
 * a zero-size member and names long enough to need the ustar prefix field
 * is written and read back in-process, plain and gzip'd; writes are
 * deterministic; a failing or aborted writer leaves nothing behind; and
 * every kind of damage (truncation, flipped bytes, a lying manifest whose
 * checksums were fixed up, unsafe or unsupported tar entries, hostile size
 * fields, gzip garbage) is rejected with EX_DATAERR naming the file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "bundle.h"
#include "mpjson.h"
#include "unit.h"

#define BLK 512

static char *tmpdir;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void cleanup(void)
{
	if (tmpdir)
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = slm_xmalloc(n);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static char *mkdir_in(const char *name)
{
	char *p = path_in(tmpdir, name);
	if (mkdir(p, 0755) != 0) {
		perror(p);
		exit(99);
	}
	return p;
}

/* Entries of a directory (excluding . and ..), as one sorted-ish string. */
static int dir_entries(const char *dir, char *out, size_t outn)
{
	DIR *d = opendir(dir);
	int n = 0;
	out[0] = 0;
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n++;
		size_t l = strlen(out);
		snprintf(out + l, outn - l, "%s%s", l ? " " : "", de->d_name);
	}
	closedir(d);
	return n;
}

static int read_whole(const char *path, uint8_t **d, size_t *n)
{
	slm_err err;
	char *c;
	if (slm_read_file(path, &c, n, &err) < 0) {
		diag("%s", err.msg);
		return -1;
	}
	*d = (uint8_t *)c;
	return 0;
}

static void write_whole(const char *path, const void *d, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f) != 0) {
		perror(path);
		exit(99);
	}
}

/* =====================================================================
 * The test bundle
 * ===================================================================== */

typedef struct {
	char *name;
	const slm_dtype *dt;
	int nd;
	uint64_t ne[SLM_MAX_DIMS];
	uint64_t nelems, size;
	uint8_t *data;
} tspec;

typedef struct {
	const char *name;
	uint64_t size;
	uint8_t *data;
} aspec;

static tspec ts[256];
static size_t nts;
static aspec as[16];
static size_t nas;
static char long_tensor[200], long_member100[128];

static uint64_t rng = 88172645463325252ull;
static uint8_t rbyte(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint8_t)(rng >> 32);
}

static uint8_t *rbytes(uint64_t n)
{
	uint8_t *p = slm_xmalloc(n);
	for (uint64_t i = 0; i < n; i++)
		p[i] = rbyte();
	return p;
}

static void add_ts(const char *name, const slm_dtype *dt, int nd, uint64_t a,
		   uint64_t b, uint64_t c, uint64_t d)
{
	tspec *t = &ts[nts++];
	t->name = slm_xstrdup(name);
	t->dt = dt;
	t->nd = nd;
	uint64_t ne[4] = { a, b, c, d };
	t->nelems = 1;
	for (int i = 0; i < 4; i++) {
		t->ne[i] = i < nd ? ne[i] : 1;
		t->nelems *= t->ne[i];
	}
	t->size = t->nelems / dt->block_elems * dt->block_bytes;
	t->data = rbytes(t->size);
}

static int ndtypes;

static void make_spec(void)
{
	for (uint32_t id = 0; id < 64; id++) {
		const slm_dtype *dt = dtype_by_ggml(id);
		if (!dt)
			continue;
		ndtypes++;
		char name[64];
		uint64_t be = dt->block_elems;
		snprintf(name, sizeof name, "%s.vec", dt->name);
		add_ts(name, dt, 1, 2 * be, 0, 0, 0);
		snprintf(name, sizeof name, "blk.0.%s.weight", dt->name);
		add_ts(name, dt, 2, be, 3, 0, 0);
		if (id == 0) { /* f32: 3 and 4 dimensions, odd sizes */
			add_ts("f32.cube", dt, 3, 5, 3, 7, 0);
			add_ts("f32.4d", dt, 4, 2, 3, 1, 5);
			add_ts("f32.scalar", dt, 1, 1, 0, 0, 0);
		}
		if (id == 12) /* q4_k */
			add_ts("q4_k.3d", dt, 3, 512, 1, 2, 0);
	}
	/* a tensor whose member name needs the ustar prefix field */
	memset(long_tensor, 0, sizeof long_tensor);
	strcpy(long_tensor, "very.long/");
	for (int i = 0; i < 60; i++)
		strcat(long_tensor, "p");
	strcat(long_tensor, "/");
	for (int i = 0; i < 70; i++)
		strcat(long_tensor, "n");
	add_ts(long_tensor, dtype_by_name("f16"), 2, 8, 2, 0, 0);
	/* a member name of exactly 100 bytes: fills the name field, no NUL */
	strcpy(long_member100, "tensors/");
	while (strlen(long_member100) < 100)
		strcat(long_member100, "x");
	add_ts(long_member100 + 8, dtype_by_name("i8"), 1, 33, 0, 0, 0);

	static const struct {
		const char *name;
		uint64_t size;
	} att[] = {
		{ "notes/README", 13 },  { "empty", 0 },        { "block.bin", 512 },
		{ "odd.bin", 513 },     { "tok/vocab.bin", 3000 },
	};
	for (size_t i = 0; i < sizeof att / sizeof att[0]; i++) {
		as[nas].name = att[i].name;
		as[nas].size = att[i].size;
		as[nas].data = rbytes(att[i].size);
		nas++;
	}
}

static json_t *spec_manifest(void)
{
	json_error_t je;
	json_t *m = json_loads(
		"{\"name\":\"unit\",\"arch\":\"testarch\","
		"\"hparams\":{\"n_layer\":2,\"eps\":1e-6,\"rope\":{\"type\":\"yarn\"}},"
		"\"tokenizer\":{\"model\":\"gpt2\",\"tokens\":[\"a\",\"b\"]},"
		"\"chat_template\":\"{{ x }}\\n\","
		"\"generation\":{\"temperature\":0.25},"
		"\"provenance\":{\"tool\":\"unit-bundle\"}}",
		0, &je);
	if (!m) {
		diag("manifest: %s", je.text);
		exit(99);
	}
	return m;
}

/* Mode: how the data is handed to the writer. */
enum { FEED_PIECES, FEED_SHORT, FEED_LONG, FEED_ABORT };

/* Write the spec bundle; returns 0, or -1 with err. mode FEED_SHORT leaves
 * the last member 1 byte short and closes; FEED_LONG writes one byte too
 * many; FEED_ABORT aborts half way. */
static int write_bundle(const char *path, int gzip, int mode, slm_err *err)
{
	json_t *man = spec_manifest();
	slm_bwriter *w = bwriter_new(man);
	json_decref(man);
	for (size_t i = 0; i < nts; i++)
		if (bwriter_add_tensor(w, ts[i].name, ts[i].dt, ts[i].nd, ts[i].ne, err) < 0) {
			bwriter_abort(w);
			return -1;
		}
	for (size_t i = 0; i < nas; i++)
		if (bwriter_add_member(w, as[i].name, as[i].size, err) < 0) {
			bwriter_abort(w);
			return -1;
		}
	if (bwriter_open(w, path, gzip, err) < 0)
		return -1; /* bwriter_open cleans up after itself */
	/* the whole payload as one stream, fed in pieces of varying size that
	 * cross member boundaries */
	size_t total = 0;
	for (size_t i = 0; i < nts; i++)
		total += ts[i].size;
	for (size_t i = 0; i < nas; i++)
		total += as[i].size;
	uint8_t *all = slm_xmalloc(total + 1);
	size_t k = 0;
	for (size_t i = 0; i < nts; i++, k += ts[i - 1].size)
		memcpy(all + k, ts[i].data, ts[i].size);
	for (size_t i = 0; i < nas; i++, k += as[i - 1].size)
		memcpy(all + k, as[i].data, as[i].size);
	all[total] = 0xaa;
	size_t end = mode == FEED_SHORT ? total - 1 : mode == FEED_ABORT ? total / 2
			: mode == FEED_LONG ? total + 1 : total;
	static const size_t pieces[] = { 1, 7, 511, 512, 513, 4096, 3, 1000 };
	size_t pos = 0, p = 0;
	int rc = 0;
	while (pos < end && rc == 0) {
		size_t n = pieces[p++ % 8];
		if (n > end - pos)
			n = end - pos;
		rc = bwriter_write(w, all + pos, n, err);
		pos += n;
	}
	free(all);
	if (rc < 0 || mode == FEED_ABORT) {
		bwriter_abort(w);
		return -1;
	}
	return bwriter_close(w, err);
}

/* =====================================================================
 * Reading back
 * ===================================================================== */

static int is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void check_bundle(const char *path, int gzip)
{
	const char *kind = gzip ? "gzip bundle" : "bundle";
	slm_bundle *b = NULL;
	slm_err err = { 0, "" };
	int rc = bundle_open(&b, path, &err);
	if (!ok(rc == 0 && b, "%s: opens (%s)", kind, rc ? err.msg : "ok"))
		return;
	is_int(bundle_is_compressed(b), gzip, "bundle_is_compressed");
	struct stat st;
	stat(path, &st);
	is_int(bundle_file_size(b), st.st_size, "bundle_file_size is the file's size");
	is_str(bundle_path(b), path, "bundle_path");
	is_str(bundle_str(b, "name"), "unit", "manifest name");
	is_str(bundle_str(b, "arch"), "testarch", "manifest arch");
	is_str(bundle_str(b, "format"), "slm-bundle", "manifest format");
	json_t *man = bundle_manifest(b);
	is_int(json_integer_value(json_object_get(man, "version")), SLM_BUNDLE_VERSION,
	       "manifest version");
	json_t *want = spec_manifest();
	const char *k;
	json_t *v;
	int same = 1;
	json_object_foreach(want, k, v) same &= json_equal(v, json_object_get(man, k));
	ok(same, "%s: the caller's manifest fields are kept", kind);
	json_decref(want);
	ok(json_array_size(json_object_get(man, "tensors")) == nts &&
		   json_array_size(json_object_get(man, "members")) == nts + nas,
	   "%s: manifest lists %zu tensors and %zu members", kind, nts, nts + nas);

	/* members: manifest, tensors in order, attachments, checksum */
	is_int(bundle_n_members(b), nts + nas + 2, "member count");
	const slm_member *m0 = bundle_member_at(b, 0);
	const slm_member *ml = bundle_member_at(b, nts + nas + 1);
	is_str(m0 ? m0->name : NULL, SLM_MANIFEST_MEMBER, "first member is the manifest");
	is_str(ml ? ml->name : NULL, SLM_MANIFEST_SUM_MEMBER, "last member is its checksum");
	ok(bundle_member_at(b, nts + nas + 2) == NULL, "bundle_member_at past the end: NULL");
	if (m0 && ml) {
		char hex[65], line[128];
		slm_sha256_hex(m0->data, m0->size, hex);
		snprintf(line, sizeof line, "%s  %s\n", hex, SLM_MANIFEST_MEMBER);
		ok(ml->size == strlen(line) && !memcmp(ml->data, line, ml->size),
		   "%s: manifest.sha256 is a sha256sum line for the manifest", kind);
	}

	/* the decompressed archive, to check offsets independently */
	uint8_t *file;
	size_t fn;
	if (read_whole(path, &file, &fn) < 0)
		return;
	uint8_t *ar = file;
	size_t an = fn;
	if (gzip) {
		ok(fn > 10 && file[0] == 0x1f && file[1] == 0x8b && is_zero(file + 4, 4),
		   "gzip header without a timestamp");
		z_stream zs;
		memset(&zs, 0, sizeof zs);
		inflateInit2(&zs, 31);
		an = 4 * fn + (1 << 20);
		ar = slm_xmalloc(an);
		zs.next_in = file;
		zs.avail_in = (uInt)fn;
		zs.next_out = ar;
		zs.avail_out = (uInt)an;
		int zr = inflate(&zs, Z_FINISH);
		an = zs.total_out;
		inflateEnd(&zs);
		ok(zr == Z_STREAM_END, "gzip bundle inflates with zlib");
	}
	ok(an % BLK == 0 && an >= 3 * BLK && is_zero(ar + an - 2 * BLK, 2 * BLK),
	   "%s: archive is whole blocks ending in two zero blocks", kind);

	int aligned = 1, equal = 1, headers = 1;
	for (size_t i = 0; i < bundle_n_members(b); i++) {
		const slm_member *m = bundle_member_at(b, i);
		if (m->offset % BLK != 0 || m->offset < BLK)
			aligned = 0;
		if (m->offset + m->size > an || memcmp(ar + m->offset, m->data, m->size))
			equal = 0;
		/* the padding after the data is zero */
		uint64_t padn = (BLK - m->size % BLK) % BLK;
		if (m->offset + m->size + padn > an ||
		    !is_zero(ar + m->offset + m->size, padn))
			equal = 0;
		const uint8_t *h = ar + m->offset - BLK;
		char nm[260];
		size_t pl = strnlen((const char *)h + 345, 155);
		snprintf(nm, sizeof nm, "%.*s%s%.*s", (int)pl, h + 345, pl ? "/" : "",
			 (int)strnlen((const char *)h, 100), h);
		if (strcmp(nm, m->name) || memcmp(h + 257, "ustar", 6) || h[156] != '0')
			headers = 0;
	}
	ok(aligned, "%s: every member's data starts at a 512-byte boundary", kind);
	ok(equal, "%s: member data is the archive's bytes at its offset, zero padded", kind);
	ok(headers, "%s: every member has a ustar header with its name", kind);

	/* tensors */
	is_int(bundle_n_tensors(b), nts, "tensor count");
	int tgood = 1;
	uint64_t params = 0;
	for (size_t i = 0; i < nts; i++) {
		const slm_tensor *t = bundle_tensor_at(b, i);
		params += ts[i].nelems;
		char mname[300];
		snprintf(mname, sizeof mname, "tensors/%s", ts[i].name);
		if (!t || strcmp(t->name, ts[i].name) || t->dtype != ts[i].dt ||
		    t->ndim != ts[i].nd || memcmp(t->ne, ts[i].ne, sizeof t->ne) ||
		    t->nelems != ts[i].nelems || t->size != ts[i].size ||
		    memcmp(t->data, ts[i].data, t->size) || !t->member ||
		    strcmp(t->member->name, mname) || t->data != (const void *)t->member->data ||
		    bundle_find_tensor(b, ts[i].name) != t) {
			diag("tensor %zu (%s) differs", i, ts[i].name);
			tgood = 0;
		}
	}
	ok(tgood, "%s: %zu tensors of %d dtypes: name, dtype, shape, size and bytes", kind,
	   nts, ndtypes);
	is_int(bundle_n_params(b), params, "bundle_n_params is the sum of elements");
	ok(bundle_tensor_at(b, nts) == NULL && bundle_find_tensor(b, "nope") == NULL,
	   "no tensor past the end or by a wrong name");
	const slm_tensor *lt = bundle_find_tensor(b, long_tensor);
	ok(lt && strlen(lt->member->name) > 100 && lt->member->size == 32,
	   "%s: tensor with a %zu-byte member name (ustar prefix)", kind,
	   strlen(long_tensor) + 8);
	ok(bundle_find_member(b, long_member100) != NULL,
	   "%s: member name of exactly 100 bytes", kind);

	int agood = 1;
	for (size_t i = 0; i < nas; i++) {
		const slm_member *m = bundle_find_member(b, as[i].name);
		if (!m || m->size != as[i].size || memcmp(m->data, as[i].data, m->size) ||
		    m != bundle_member_at(b, nts + 1 + i) || !m->sha256) {
			diag("attachment %s differs", as[i].name);
			agood = 0;
		}
	}
	ok(agood, "%s: attachments (including a zero-size one) in order and intact", kind);
	const slm_member *em = bundle_find_member(b, "empty");
	if (em) {
		char hex[65];
		slm_sha256_hex("", 0, hex);
		is_str(em->sha256, hex, "zero-size member: sha256 of nothing");
	}
	ok(bundle_find_member(b, "nope") == NULL, "bundle_find_member of a wrong name: NULL");
	rc = bundle_verify(b, &err);
	ok(rc == 0, "%s: bundle_verify passes (%s)", kind, rc ? err.msg : "ok");
	if (gzip)
		free(ar);
	free(file);
	bundle_close(b);
}

/* =====================================================================
 * Writing: round trip, determinism, failures
 * ===================================================================== */

static char *good_path, *good_gz_path;

static void test_write(void)
{
	char *dir = mkdir_in("w");
	good_path = path_in(dir, "a.slm");
	good_gz_path = path_in(dir, "a.slm.gz");
	char *again = path_in(dir, "b.slm"), *again_gz = path_in(dir, "b.slm.gz");
	slm_err err = { 0, "" };
	int rc = write_bundle(good_path, 0, FEED_PIECES, &err);
	ok(rc == 0, "write a bundle (%s)", rc ? err.msg : "ok");
	rc = write_bundle(good_gz_path, 1, FEED_PIECES, &err);
	ok(rc == 0, "write a gzip bundle (%s)", rc ? err.msg : "ok");
	ok(write_bundle(again, 0, FEED_PIECES, &err) == 0 &&
		   write_bundle(again_gz, 1, FEED_PIECES, &err) == 0,
	   "write both again");
	char ents[4096];
	int n = dir_entries(dir, ents, sizeof ents);
	ok(n == 4, "no temporary files left beside the bundles (%s)", ents);
	struct stat st;
	ok(stat(good_path, &st) == 0 && (st.st_mode & 0777) == (0666 & ~umask(022)),
	   "bundle has the usual permissions (%o)", st.st_mode & 0777);

	uint8_t *a, *b2;
	size_t an, bn;
	if (read_whole(good_path, &a, &an) == 0 && read_whole(again, &b2, &bn) == 0) {
		ok(an == bn && !memcmp(a, b2, an), "writing twice gives identical files (%zu bytes)",
		   an);
		free(a);
		free(b2);
	}
	if (read_whole(good_gz_path, &a, &an) == 0 && read_whole(again_gz, &b2, &bn) == 0) {
		ok(an == bn && !memcmp(a, b2, an),
		   "writing twice with gzip gives identical files (%zu bytes)", an);
		free(a);
		free(b2);
	}

	/* standard output: the same bytes */
	char *out = path_in(dir, "stdout.slm");
	fflush(stdout);
	int saved = dup(1);
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	dup2(fd, 1);
	close(fd);
	rc = write_bundle("-", 0, FEED_PIECES, &err);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	ok(rc == 0, "write a bundle to standard output (%s)", rc ? err.msg : "ok");
	if (read_whole(out, &a, &an) == 0 && read_whole(good_path, &b2, &bn) == 0) {
		ok(an == bn && !memcmp(a, b2, an), "standard output gets the same bytes");
		free(a);
		free(b2);
	}
	unlink(out);
	free(out);

	check_bundle(good_path, 0);
	check_bundle(good_gz_path, 1);

	/* opening standard input and a pipe (not mapped) */
	int saved0 = dup(0);
	fd = open(good_path, O_RDONLY);
	dup2(fd, 0);
	close(fd);
	slm_bundle *bb = NULL;
	rc = bundle_open(&bb, "-", &err);
	dup2(saved0, 0);
	close(saved0);
	ok(rc == 0 && bb && !strcmp(bundle_path(bb), "standard input") &&
		   bundle_n_tensors(bb) == nts && bundle_verify(bb, &err) == 0,
	   "bundle_open(\"-\") reads standard input");
	bundle_close(bb);
	int p[2];
	if (pipe(p) == 0) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			close(p[0]);
			uint8_t *d;
			size_t dn;
			if (read_whole(good_gz_path, &d, &dn) < 0 ||
			    write(p[1], d, dn) != (ssize_t)dn)
				_exit(1);
			_exit(0);
		}
		close(p[1]);
		char fdpath[64];
		snprintf(fdpath, sizeof fdpath, "/dev/fd/%d", p[0]);
		bb = NULL;
		rc = bundle_open(&bb, fdpath, &err);
		ok(rc == 0 && bb && bundle_is_compressed(bb) && bundle_verify(bb, &err) == 0 &&
			   !memcmp(bundle_tensor_at(bb, 0)->data, ts[0].data, ts[0].size),
		   "bundle_open of a pipe carrying a gzip bundle (%s)", rc ? err.msg : "ok");
		bundle_close(bb);
		close(p[0]);
		waitpid(pid, NULL, 0);
	}
	unlink(again);
	unlink(again_gz);
	free(again);
	free(again_gz);
	free(dir);
}

static void test_write_failures(void)
{
	char *dir = mkdir_in("fail");
	char *target = path_in(dir, "out.slm");
	char ents[4096];
	slm_err err;
	static const struct {
		const char *what;
		int mode, gzip;
	} cases[] = {
		{ "fewer bytes than declared, then close", FEED_SHORT, 0 },
		{ "fewer bytes than declared, then close (gzip)", FEED_SHORT, 1 },
		{ "more bytes than declared", FEED_LONG, 0 },
		{ "abort half way", FEED_ABORT, 0 },
		{ "abort half way (gzip)", FEED_ABORT, 1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		err.code = 0;
		err.msg[0] = 0;
		int rc = write_bundle(target, cases[i].gzip, cases[i].mode, &err);
		int n = dir_entries(dir, ents, sizeof ents);
		ok(rc == -1 && n == 0, "writer: %s: fails and leaves the directory empty (%s)",
		   cases[i].what, ents);
		if (cases[i].mode != FEED_ABORT)
			ok(err.code == EX_SOFTWARE && err.msg[0] && !strchr(err.msg, '\n'),
			   "writer: %s: error message: %s", cases[i].what, err.msg);
	}
	/* an existing file at the target survives a failed write */
	write_whole(target, "old\n", 4);
	int rc = write_bundle(target, 0, FEED_SHORT, &err);
	uint8_t *d;
	size_t dn;
	ok(rc == -1 && read_whole(target, &d, &dn) == 0 && dn == 4 && !memcmp(d, "old\n", 4) &&
		   dir_entries(dir, ents, sizeof ents) == 1,
	   "writer: failed write leaves the old file untouched and nothing else");
	free(d);
	/* and is replaced whole by a good one */
	rc = write_bundle(target, 0, FEED_PIECES, &err);
	ok(rc == 0 && read_whole(target, &d, &dn) == 0 && dn > 4 &&
		   dir_entries(dir, ents, sizeof ents) == 1,
	   "writer: a good write replaces it");
	free(d);
	unlink(target);
	/* a directory that does not exist */
	char *nodir = path_in(dir, "missing/out.slm");
	json_t *man = spec_manifest();
	slm_bwriter *w = bwriter_new(man);
	json_decref(man);
	rc = bwriter_add_member(w, "x", 1, &err);
	rc = rc == 0 ? bwriter_open(w, nodir, 0, &err) : rc;
	ok(rc == -1 && err.code == EX_CANTCREAT && strstr(err.msg, nodir) &&
		   dir_entries(dir, ents, sizeof ents) == 0,
	   "writer: missing directory: EX_CANTCREAT naming the path (%s)", err.msg);
	/* a failed bwriter_open has freed the writer */
	if (rc == 0)
		bwriter_abort(w);
	free(nodir);

	/* declarations the writer refuses */
	man = spec_manifest();
	w = bwriter_new(man);
	json_decref(man);
	const slm_dtype *f32 = dtype_by_name("f32"), *q40 = dtype_by_name("q4_0");
	uint64_t ne[5] = { 64, 2, 1, 1, 1 }, bad0[2] = { 0, 2 }, odd[2] = { 33, 2 };
	uint64_t huge[4] = { UINT64_MAX / 2, 4, 1, 1 };
	ok(bwriter_add_tensor(w, "t", f32, 2, ne, &err) == 0, "writer: declare tensor t");
	ok(bwriter_add_tensor(w, "t", f32, 2, ne, &err) == -1 && strstr(err.msg, "t"),
	   "writer: duplicate tensor refused (%s)", err.msg);
	ok(bwriter_add_tensor(w, "z", f32, 0, ne, &err) == -1 &&
		   bwriter_add_tensor(w, "z", f32, 5, ne, &err) == -1,
	   "writer: 0 or 5 dimensions refused");
	ok(bwriter_add_tensor(w, "z", f32, 2, bad0, &err) == -1,
	   "writer: zero dimension refused (%s)", err.msg);
	ok(bwriter_add_tensor_l(w, "z", f32, 2, ne, 1, &err) == -1 && strstr(err.msg, "tile16"),
	   "writer: tile16 layout refused for f32");
	ok(bwriter_add_tensor_l(w, "z", q40, 1, ne, 1, &err) == -1 && strstr(err.msg, "tile16"),
	   "writer: tile16 layout refused for a 1-D tensor");
	ok(bwriter_add_tensor(w, "z", q40, 2, odd, &err) == -1 && strstr(err.msg, "q4_0"),
	   "writer: row not a multiple of the block refused (%s)", err.msg);
	ok(bwriter_add_tensor(w, "z", f32, 2, huge, &err) == -1,
	   "writer: element count overflow refused (%s)", err.msg);
	ok(bwriter_add_tensor(w, "../z", f32, 1, ne, &err) == -1 &&
		   bwriter_add_member(w, "../x", 1, &err) == -1 &&
		   bwriter_add_member(w, "/etc/x", 1, &err) == -1 &&
		   bwriter_add_member(w, "a//b", 1, &err) == -1 &&
		   bwriter_add_member(w, "a/./b", 1, &err) == -1 &&
		   bwriter_add_member(w, "", 1, &err) == -1 &&
		   bwriter_add_member(w, "dir/", 1, &err) == -1 &&
		   bwriter_add_member(w, "tab\there", 1, &err) == -1,
	   "writer: unsafe member names refused (%s)", err.msg);
	ok(bwriter_add_member(w, SLM_MANIFEST_MEMBER, 1, &err) == -1 &&
		   bwriter_add_member(w, SLM_MANIFEST_SUM_MEMBER, 1, &err) == -1 &&
		   bwriter_add_member(w, "tensors/t", 1, &err) == -1,
	   "writer: reserved and duplicate member names refused");
	char longname[300] = "";
	for (int i = 0; i < 120; i++)
		strcat(longname, "y");
	ok(bwriter_add_member(w, longname, 1, &err) == -1 && err.msg[0],
	   "writer: a 120-byte name without a slash to split at is refused (%.40s...)",
	   err.msg);
	bwriter_abort(w);
	ok(dir_entries(dir, ents, sizeof ents) == 0, "writer: nothing written by refusals");
	free(target);
	free(dir);
}

/* =====================================================================
 * A small tar model to damage bundles precisely
 * ===================================================================== */

typedef struct {
	uint8_t hdr[BLK];
	char name[260];
	uint8_t *data;
	size_t size;
} tmem;

typedef struct {
	tmem m[512];
	size_t n;
} tarf;

static void tar_fix_sum(uint8_t *h)
{
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < BLK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

static void tar_set_size(uint8_t *h, size_t size)
{
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	tar_fix_sum(h);
}

static void tar_set_name(uint8_t *h, const char *name)
{
	memset(h, 0, 100);
	memset(h + 345, 0, 155);
	memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
	tar_fix_sum(h);
}

static int tar_parse(const uint8_t *d, size_t n, tarf *t)
{
	size_t pos = 0;
	t->n = 0;
	while (pos + BLK <= n && !is_zero(d + pos, BLK)) {
		tmem *m = &t->m[t->n++];
		memcpy(m->hdr, d + pos, BLK);
		const uint8_t *h = d + pos;
		size_t pl = strnlen((const char *)h + 345, 155);
		snprintf(m->name, sizeof m->name, "%.*s%s%.*s", (int)pl, h + 345,
			 pl ? "/" : "", (int)strnlen((const char *)h, 100), h);
		m->size = (size_t)strtoull((const char *)m->hdr + 124, NULL, 8);
		m->data = slm_xmalloc(m->size + 1);
		memcpy(m->data, d + pos + BLK, m->size);
		pos += BLK + (m->size + BLK - 1) / BLK * BLK;
	}
	return pos + 2 * BLK == n ? 0 : -1;
}

static void tar_free(tarf *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->m[i].data);
	t->n = 0;
}

static uint8_t *tar_build(const tarf *t, size_t *n)
{
	size_t total = 2 * BLK;
	for (size_t i = 0; i < t->n; i++)
		total += BLK + (t->m[i].size + BLK - 1) / BLK * BLK;
	uint8_t *d = slm_xcalloc(total, 1);
	size_t pos = 0;
	for (size_t i = 0; i < t->n; i++) {
		memcpy(d + pos, t->m[i].hdr, BLK);
		memcpy(d + pos + BLK, t->m[i].data, t->m[i].size);
		pos += BLK + (t->m[i].size + BLK - 1) / BLK * BLK;
	}
	*n = total;
	return d;
}

static tmem *tar_find(tarf *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->m[i].name, name))
			return &t->m[i];
	return NULL;
}

/* Replace a member's data, fixing its size field and header checksum. */
static void tar_replace(tarf *t, const char *name, const void *d, size_t n)
{
	tmem *m = tar_find(t, name);
	if (!m) {
		diag("no member %s", name);
		exit(99);
	}
	free(m->data);
	m->data = slm_xmalloc(n + 1);
	memcpy(m->data, d, n);
	m->size = n;
	tar_set_size(m->hdr, n);
}

static json_t *tar_manifest(tarf *t)
{
	tmem *m = tar_find(t, SLM_MANIFEST_MEMBER);
	const char *why;
	json_t *v = mpj_decode(m->data, m->size, &why);
	if (!v) {
		diag("manifest: %s", why);
		exit(99);
	}
	return v;
}

/* Store a new manifest and make manifest.sha256 agree with it, so that
 * only the lie it tells remains. */
static void tar_put_manifest(tarf *t, const json_t *man, const char *extra, size_t extran)
{
	char *d;
	size_t n;
	mpj_encode(man, &d, &n);
	if (extra) {
		d = slm_xrealloc(d, n + extran);
		memcpy(d + n, extra, extran);
		n += extran;
	}
	tar_replace(t, SLM_MANIFEST_MEMBER, d, n);
	char hex[65], line[128];
	slm_sha256_hex(d, n, hex);
	snprintf(line, sizeof line, "%s  %s\n", hex, SLM_MANIFEST_MEMBER);
	tar_replace(t, SLM_MANIFEST_SUM_MEMBER, line, strlen(line));
	free(d);
}

/* =====================================================================
 * Damaged bundles
 * ===================================================================== */

static char *bad_path;

/* Write d to bad_path and open it: expect failure with EX_DATAERR, the
 * file name and want (a substring) in a one-line message. */
static int expect_open_fails(const char *what, const void *d, size_t n,
			     const char *want)
{
	write_whole(bad_path, d, n);
	slm_bundle *b = NULL;
	slm_err err = { 0, "" };
	int rc = bundle_open(&b, bad_path, &err);
	int good = rc == -1 && !b && err.code == EX_DATAERR && strstr(err.msg, bad_path) &&
		   (!want || strstr(err.msg, want)) && !strchr(err.msg, '\n');
	ok(good, "%s: refused with EX_DATAERR naming the file%s%s%s", what,
	   want ? " ('" : "", want ? want : "", want ? "')" : "");
	if (!good)
		diag("rc %d, code %d: %s", rc, err.code, err.msg);
	bundle_close(b);
	return good;
}

static void expect_open_ok(const char *what, const void *d, size_t n)
{
	write_whole(bad_path, d, n);
	slm_bundle *b = NULL;
	slm_err err = { 0, "" };
	int rc = bundle_open(&b, bad_path, &err);
	ok(rc == 0 && bundle_verify(b, &err) == 0, "%s: opens and verifies (%s)", what,
	   rc ? err.msg : "ok");
	bundle_close(b);
}

static uint8_t *gz(const uint8_t *d, size_t n, size_t *outn)
{
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
	size_t cap = deflateBound(&zs, n) + 64;
	uint8_t *o = slm_xmalloc(cap);
	zs.next_in = (Bytef *)d;
	zs.avail_in = (uInt)n;
	zs.next_out = o;
	zs.avail_out = (uInt)cap;
	deflate(&zs, Z_FINISH);
	*outn = zs.total_out;
	deflateEnd(&zs);
	return o;
}

static void test_damage(void)
{
	char *dir = mkdir_in("bad");
	bad_path = path_in(dir, "bad.slm");
	uint8_t *good;
	size_t gn;
	if (read_whole(good_path, &good, &gn) < 0)
		return;
	uint8_t *d = slm_xmalloc(gn + 4 * BLK);
	slm_err err;

	/* the tar model reproduces the file exactly */
	static tarf t;
	ok(tar_parse(good, gn, &t) == 0 && t.n == nts + nas + 2,
	   "test tar model parses the bundle (%zu members)", t.n);
	size_t n;
	uint8_t *re = tar_build(&t, &n);
	ok(n == gn && !memcmp(re, good, gn), "test tar model rebuilds identical bytes");
	free(re);
	/* and re-encoding the same manifest through the helper changes nothing */
	json_t *man = tar_manifest(&t);
	tar_put_manifest(&t, man, NULL, 0);
	re = tar_build(&t, &n);
	ok(n == gn && !memcmp(re, good, gn),
	   "re-encoding the unchanged manifest gives identical bytes");
	free(re);
	json_decref(man);
	tar_free(&t);

	/* ---- truncation ---- */
	int all = 1, cnt = 0;
	for (size_t cut = 0; cut + BLK < gn; cut += BLK) {
		write_whole(bad_path, good, cut);
		slm_bundle *b = NULL;
		err.code = 0;
		int rc = bundle_open(&b, bad_path, &err);
		cnt++;
		if (rc != -1 || err.code != EX_DATAERR || !strstr(err.msg, bad_path)) {
			diag("truncated to %zu bytes: rc %d code %d %s", cut, rc, err.code, err.msg);
			all = 0;
		}
		bundle_close(b);
	}
	ok(all, "truncated at each of %d block boundaries: EX_DATAERR naming the file", cnt);
	size_t odd[] = { 1, 2, 100, 257, 511, 513, 700, 1023, 1025, 4000, gn / 2 + 1,
			 gn / 3 + 7, gn - 2 * BLK - 1, gn - 2 * BLK + 1, gn - BLK - 1 };
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "truncated to %zu of %zu bytes", odd[i], gn);
		expect_open_fails(what, good, odd[i], NULL);
	}
	/* somewhere inside a member: the message says truncated */
	const slm_member *mid;
	slm_bundle *gb;
	bundle_open(&gb, good_path, &err);
	mid = bundle_find_member(gb, "tok/vocab.bin");
	expect_open_fails("truncated inside a member", good, (size_t)mid->offset + 100,
			  "truncated");
	expect_open_fails("truncated before the end marker", good,
			  (size_t)(bundle_member_at(gb, bundle_n_members(gb) - 1)->offset + BLK),
			  "end-of-archive");
	size_t gzn;
	uint8_t *gzt = gz(good, (size_t)mid->offset + 100, &gzn);
	expect_open_fails("gzip of a truncated bundle", gzt, gzn, "truncated");
	free(gzt);

	/* ---- flipped bytes ---- */
	const slm_tensor *t5 = bundle_tensor_at(gb, 5);
	memcpy(d, good, gn);
	d[t5->member->offset + t5->size / 2] ^= 0x01;
	write_whole(bad_path, d, gn);
	slm_bundle *b = NULL;
	int rc = bundle_open(&b, bad_path, &err);
	ok(rc == 0, "flipped byte in a tensor: still opens (contents are not hashed)");
	if (rc == 0) {
		err.code = 0;
		rc = bundle_verify(b, &err);
		ok(rc == -1 && err.code == EX_DATAERR && strstr(err.msg, t5->member->name) &&
			   strstr(err.msg, bad_path) && strstr(err.msg, "damaged"),
		   "flipped byte in a tensor: verify fails naming %s (%s)", t5->member->name,
		   err.msg);
		bundle_close(b);
	}
	/* in an attachment (the last one verified) and in the zero-padding */
	memcpy(d, good, gn);
	d[mid->offset + mid->size - 1] ^= 0x80;
	write_whole(bad_path, d, gn);
	rc = bundle_open(&b, bad_path, &err);
	ok(rc == 0 && bundle_verify(b, &err) == -1 && strstr(err.msg, "tok/vocab.bin"),
	   "flipped last byte of an attachment: verify names it (%s)", err.msg);
	if (rc == 0)
		bundle_close(b);

	const slm_member *mm = bundle_member_at(gb, 0);
	/* a byte inside the manifest's "testarch" string keeps it valid msgpack */
	uint8_t *at = memmem(good + mm->offset, mm->size, "testarch", 8);
	memcpy(d, good, gn);
	d[at - good + 4] ^= 0x02;
	expect_open_fails("flipped byte in the manifest", d, gn, "checksum");
	memcpy(d, good, gn);
	const slm_member *ms = bundle_member_at(gb, bundle_n_members(gb) - 1);
	d[ms->offset + 10] = d[ms->offset + 10] == 'a' ? 'b' : 'a';
	expect_open_fails("flipped byte in manifest.sha256", d, gn, "checksum");
	memcpy(d, good, gn);
	d[mm->offset] = 0xc1;
	expect_open_fails("garbage at the start of the manifest", d, gn, "manifest");
	memcpy(d, good, gn);
	d[t5->member->offset - BLK + 3] ^= 0x01; /* a name byte, checksum not fixed */
	expect_open_fails("flipped byte in a tar header", d, gn, "checksum");
	memcpy(d, good, gn);
	memcpy(d + t5->member->offset - BLK + 148, "zzzzzz", 6);
	expect_open_fails("tar header checksum field not octal", d, gn, "checksum");
	memcpy(d, good, gn);
	memcpy(d + t5->member->offset - BLK + 257, "gnutar", 6);
	tar_fix_sum(d + t5->member->offset - BLK);
	expect_open_fails("tar header without ustar magic", d, gn, "ustar");

	/* ---- a manifest that lies (checksums fixed up) ---- */
	struct {
		const char *what, *want;
		const char *path; /* which field: tensors[5].X, members[i].X, or top */
		const char *json;
	} lies[] = {
		{ "tensor shape larger than its member", "needs", "t5.shape", "[4096, 4]" },
		{ "tensor shape smaller than its member", "needs", "t5.shape", "[1]" },
		{ "tensor with 5 dimensions", "dimensions", "t5.shape", "[1,1,1,1,1]" },
		{ "tensor with no dimensions", "dimensions", "t5.shape", "[]" },
		{ "tensor with a zero dimension", "dimension", "t5.shape", "[0, 4]" },
		{ "tensor with a negative dimension", "dimension", "t5.shape", "[-32, 4]" },
		{ "tensor with a string dimension", "dimension", "t5.shape", "[\"32\", 4]" },
		{ "tensor whose element count overflows", "overflow", "t5.shape",
		  "[4294967296, 4294967296, 4294967296]" },
		{ "tensor dtype with another size", "needs", "t0.dtype", "\"f64\"" },
		{ "tensor dtype unknown", "dtype", "t0.dtype", "\"f12\"" },
		{ "tensor in a member that does not exist", "not in the archive", "t5.member",
		  "\"tensors/nope\"" },
		{ "tensor in the manifest checksum member", "not in the archive", "t5.member",
		  "\"manifest.sha256\"" },
		{ "tensor in the manifest member", "not in the archive", "t5.member",
		  "\"manifest.msgpack\"" },
		{ "tensor named twice", "duplicate", "t1.name", "\"f32.vec\"" },
		{ "tensor without a shape", "needs", "t5.shape", NULL },
		{ "member size wrong", "manifest says", "m3.size", "12345" },
		{ "member size negative", "manifest says", "m3.size", "-512" },
		{ "member name wrong", "not the", "m3.name", "\"tensors/other\"" },
		{ "member sha256 not hex", "sha256", "m3.sha256", "\"xyz\"" },
		{ "member list one short", "members", "m.pop", NULL },
		{ "format not slm-bundle", "format", "format", "\"tar\"" },
		{ "tensor layout unknown", "unknown layout tile8", "t1.layout", "\"tile8\"" },
		{ "tensor layout not a string", "unknown layout", "t1.layout", "16" },
		{ "tile16 layout on an f32 matrix", "tile16 needs", "t1.layout", "\"tile16\"" },
		{ "tile16 layout on a 1-D tensor", "tile16 needs", "t0.layout", "\"tile16\"" },
		{ "version from the future", "version", "version", "99" },
		{ "version zero", "version", "version", "0" },
		{ "arch missing", "arch", "arch", NULL },
		{ "tensors not an array", "tensors", "tensors", "{}" },
		{ "members missing", "members", "members", NULL },
		{ "manifest not a map", "not a map", "", "[1,2,3]" },
	};
	for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
		tar_parse(good, gn, &t);
		man = tar_manifest(&t);
		json_t *val = NULL;
		if (lies[i].json) {
			json_error_t je;
			val = json_loads(lies[i].json, JSON_DECODE_ANY, &je);
		}
		const char *p = lies[i].path;
		if (!*p) {
			json_decref(man);
			man = json_incref(val);
		} else if (p[0] == 't' && p[1] >= '0' && p[1] <= '9') {
			json_t *e = json_array_get(json_object_get(man, "tensors"), (size_t)(p[1] - '0'));
			if (val)
				json_object_set(e, p + 3, val);
			else
				json_object_del(e, p + 3);
		} else if (p[0] == 'm' && p[1] >= '0' && p[1] <= '9') {
			json_t *e = json_array_get(json_object_get(man, "members"), (size_t)(p[1] - '0'));
			json_object_set(e, p + 3, val);
		} else if (!strcmp(p, "m.pop")) {
			json_t *a = json_object_get(man, "members");
			json_array_remove(a, json_array_size(a) - 1);
		} else if (val) {
			json_object_set(man, p, val);
		} else {
			json_object_del(man, p);
		}
		tar_put_manifest(&t, man, NULL, 0);
		re = tar_build(&t, &n);
		char what[128];
		snprintf(what, sizeof what, "manifest lie: %s", lies[i].what);
		expect_open_fails(what, re, n, lies[i].want);
		free(re);
		json_decref(val);
		json_decref(man);
		tar_free(&t);
	}
	/* the tile16 layout on a q4_0 matrix (tensor 8): accepted, and marked */
	{
		tar_parse(good, gn, &t);
		man = tar_manifest(&t);
		json_t *e = json_array_get(json_object_get(man, "tensors"), 8);
		int isq = !strcmp(json_string_value(json_object_get(e, "dtype")), "q4_0");
		json_object_set_new(e, "layout", json_string("tile16"));
		tar_put_manifest(&t, man, NULL, 0);
		re = tar_build(&t, &n);
		write_whole(bad_path, re, n);
		slm_bundle *tb = NULL;
		slm_err terr = { 0, "" };
		int trc = bundle_open(&tb, bad_path, &terr);
		const slm_tensor *tt = trc == 0 ? bundle_tensor_at(tb, 8) : NULL;
		ok(isq && tt && tt->tiled == 1 && bundle_tensor_at(tb, 7)->tiled == 0,
		   "layout tile16 on a q4_0 matrix: opens, the tensor marked tiled (%s)",
		   trc ? terr.msg : "ok");
		bundle_close(tb);
		free(re);
		json_decref(man);
		tar_free(&t);
	}
	/* stray bytes after the manifest inside its member */
	tar_parse(good, gn, &t);
	man = tar_manifest(&t);
	tar_put_manifest(&t, man, "\xc0", 1);
	re = tar_build(&t, &n);
	expect_open_fails("manifest member with a stray byte after the map", re, n, "stray");
	free(re);
	json_decref(man);
	tar_free(&t);
	/* manifest swapped for one of a larger shape, with the tensor's member
	 * grown to match: consistent, so it must open */
	tar_parse(good, gn, &t);
	man = tar_manifest(&t);
	json_t *te = json_array_get(json_object_get(man, "tensors"), 0);
	const char *tm = json_string_value(json_object_get(te, "member"));
	size_t newsz = (size_t)ts[0].size * 3;
	uint8_t *grown = slm_xcalloc(newsz, 1);
	tar_replace(&t, tm, grown, newsz);
	char hex[65];
	slm_sha256_hex(grown, newsz, hex);
	json_t *sh = json_array_get(te, 0);
	(void)sh;
	json_object_set_new(te, "shape", json_pack("[I,i]", (json_int_t)ts[0].ne[0], 3));
	json_t *me = json_array_get(json_object_get(man, "members"), 0);
	json_object_set_new(me, "size", json_integer((json_int_t)newsz));
	json_object_set_new(me, "sha256", json_string(hex));
	tar_put_manifest(&t, man, NULL, 0);
	re = tar_build(&t, &n);
	expect_open_ok("consistently edited manifest and member (control)", re, n);
	free(re);
	free(grown);
	json_decref(man);
	tar_free(&t);

	/* ---- hostile tar entries ---- */
	struct {
		const char *what, *want;
		int member; /* index of the member whose header changes */
		const char *name;
		char type;
		const char *size; /* 11 octal digits or NULL */
	} hostile[] = {
		{ "absolute member path /etc/x", "unsafe", 3, "/etc/x", 0, NULL },
		{ "member path ../x", "unsafe", 3, "../x", 0, NULL },
		{ "member path a/../../x", "unsafe", 3, "a/../../x", 0, NULL },
		{ "member path ./x", "unsafe", 3, "./x", 0, NULL },
		{ "member path with an empty component", "unsafe", 3, "a//x", 0, NULL },
		{ "member path ending in a slash", "unsafe", 3, "dir/", 0, NULL },
		{ "member path with a control character", "unsafe", 3, "a\x1b[2Jb", 0, NULL },
		{ "empty member name", "unsafe", 3, "", 0, NULL },
		{ "symlink entry", "entry type", 3, NULL, '2', NULL },
		{ "hard link entry", "entry type", 3, NULL, '1', NULL },
		{ "directory entry", "entry type", 3, NULL, '5', NULL },
		{ "pax extended header entry", "entry type", 3, NULL, 'x', NULL },
		{ "GNU long name entry", "entry type", 3, NULL, 'L', NULL },
		{ "size field of 4 GiB", "4294967296", 3, NULL, 0, "40000000000" },
		{ "size field of 64 GiB - 1", "truncated", 3, NULL, 0, "77777777777" },
		{ "size field 4 GiB on the last member", "4294967296",
		  (int)(nts + nas + 1), NULL, 0, "40000000000" },
		{ "size field not octal", "size", 3, NULL, 0, "0000000009x" },
		{ "size field in base-256", "size", 3, NULL, 0, "\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" },
		{ "duplicate member", "duplicate", 4, "tensors/f32.vec", 0, NULL },
		{ "manifest not the first member", "first member", 0, "manifest.json", 0, NULL },
		{ "manifest checksum not the last member", "last member", (int)(nts + nas + 1),
		  "manifest.sha", 0, NULL },
	};
	for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
		memcpy(d, good, gn);
		const slm_member *m = bundle_member_at(gb, (size_t)hostile[i].member);
		uint8_t *h = d + m->offset - BLK;
		if (hostile[i].name)
			tar_set_name(h, hostile[i].name);
		if (hostile[i].type) {
			h[156] = (uint8_t)hostile[i].type;
			if (hostile[i].type == '2' || hostile[i].type == '1')
				memcpy(h + 157, "/etc/passwd", 11);
		}
		if (hostile[i].size)
			memcpy(h + 124, hostile[i].size, 11);
		tar_fix_sum(h);
		char what[128];
		snprintf(what, sizeof what, "tar: %s", hostile[i].what);
		expect_open_fails(what, d, gn, hostile[i].want);
	}
	/* a duplicate appended as an extra member (same name twice in a row) */
	tar_parse(good, gn, &t);
	t.m[t.n] = t.m[t.n - 1];
	t.m[t.n].data = slm_xmalloc(t.m[t.n - 1].size + 1);
	memcpy(t.m[t.n].data, t.m[t.n - 1].data, t.m[t.n - 1].size);
	t.n++;
	re = tar_build(&t, &n);
	expect_open_fails("tar: manifest.sha256 twice", re, n, "duplicate");
	free(re);
	tar_free(&t);

	/* ---- not bundles at all ---- */
	expect_open_fails("empty file", "", 0, "empty");
	memset(d, 0, 4 * BLK);
	expect_open_fails("only zero blocks", d, 4 * BLK, SLM_MANIFEST_MEMBER);
	for (size_t i = 0; i < 3 * BLK; i++)
		d[i] = (uint8_t)(i * 131 + 7);
	expect_open_fails("random bytes", d, 3 * BLK, NULL);
	expect_open_fails("a short text file", "hello\n", 6, NULL);
	/* gzip */
	static const uint8_t gzjunk[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3,
					  'g', 'a', 'r', 'b', 'a', 'g', 'e', 0xff, 0xff, 0xff };
	expect_open_fails("gzip header followed by garbage", gzjunk, sizeof gzjunk, "gzip");
	expect_open_fails("gzip magic only", gzjunk, 2, "gzip");
	uint8_t *gzd;
	if (read_whole(good_gz_path, &gzd, &n) == 0) {
		expect_open_fails("gzip bundle cut in half", gzd, n / 2, "gzip");
		gzd[n - 6] ^= 0x40; /* the CRC-32 in the trailer */
		expect_open_fails("gzip bundle with a bad CRC", gzd, n, "gzip");
		gzd[n - 6] ^= 0x40;
		gzd[n / 2] ^= 0x55;
		expect_open_fails("gzip bundle with a flipped byte", gzd, n, NULL);
		free(gzd);
	}
	bundle_close(gb);
	unlink(bad_path);
	free(d);
	free(good);
	free(dir);
}

static void test_safe_name(void)
{
	static const char *const good[] = { "a", "tensors/x.weight", "a/b/c", "a..b", ".a",
					    "x.", "\xc3\xa9" };
	static const char *const bad[] = { "", "/a", "a/", "..", "../a", "a/..", "a/../b", ".",
					   "./a", "a/./b", "a//b", "a\\b", "a\nb", "a\x7f" };
	int g = 1;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (!bundle_safe_name(good[i])) {
			diag("refused: %s", good[i]);
			g = 0;
		}
	ok(g, "bundle_safe_name accepts ordinary relative paths");
	g = 1;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (bundle_safe_name(bad[i])) {
			diag("accepted: %s", bad[i]);
			g = 0;
		}
	ok(g, "bundle_safe_name refuses absolute, '..', '.', empty components, controls");
	ok(!bundle_safe_name(NULL), "bundle_safe_name(NULL) is 0");
}

int main(void)
{
	const char *td = getenv("TMPDIR");
	char tmpl[4096];
	snprintf(tmpl, sizeof tmpl, "%s/unit-bundle.XXXXXX", td && *td ? td : "/tmp");
	tmpdir = mkdtemp(tmpl);
	if (!tmpdir) {
		perror("mkdtemp");
		return 99;
	}
	atexit(cleanup);
	umask(022);
	make_spec();
	test_safe_name();
	test_write();
	test_write_failures();
	test_damage();
	for (size_t i = 0; i < nts; i++) {
		free(ts[i].name);
		free(ts[i].data);
	}
	for (size_t i = 0; i < nas; i++)
		free(as[i].data);
	free(good_path);
	free(good_gz_path);
	free(bad_path);
	return done_testing();
}
