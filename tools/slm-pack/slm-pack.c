/*
 * slm-pack - inspect, verify, list, extract, rebuild and install model
 * bundles (slm-bundle(5)).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "bundle.h"
#include "cli.h"
#include "store.h"
#include "util.h"

static const char usage_text[] =
	"usage: slm-pack info [-v] [--json] [-m] BUNDLE\n"
	"       slm-pack verify [-v] [-m] BUNDLE\n"
	"       slm-pack list [--json]\n"
	"       slm-pack extract [-v] [-m] BUNDLE [MEMBER ...] [-C DIR]\n"
	"       slm-pack build [-m] BUNDLE [-o OUT] [--name NAME] [--set KEY=VALUE]...\n"
	"                      [--template FILE] [--draft DRAFT.slm] [--gzip] [-f]\n"
	"       slm-pack install [-v] [--name NAME] [--default] BUNDLE\n"
	"       slm-pack -h | --help | --version\n"
	"options: -m/--model BUNDLE, -o/--output OUT, -C/--directory DIR,\n"
	"         -f/--force, -q/--quiet, -v/--verbose, --json, --name NAME,\n"
	"         --set KEY=VALUE, --template FILE, --draft DRAFT.slm, --gzip,\n"
	"         --default\n";

static struct {
	const char *model, *out, *dir, *name, *template_file, *draft;
	const char **sets;
	int nsets;
	int json, gzip, force, quiet, verbose, make_default;
} opt;

static void usage(void)
{
	slm_cli_usage_error(usage_text);
}

static slm_bundle *open_bundle(const char *arg)
{
	slm_err err;
	char *path = store_resolve(arg, &err);
	if (!path)
		slm_die_err(&err);
	slm_bundle *b;
	if (bundle_open(&b, path, &err) < 0)
		slm_die_err(&err);
	free(path);
	return b;
}

/* ---- info ---- */

static json_t *dtype_summary(const slm_bundle *b)
{
	json_t *d = json_object();
	for (size_t i = 0; i < bundle_n_tensors(b); i++) {
		const slm_tensor *t = bundle_tensor_at(b, i);
		json_t *e = json_object_get(d, t->dtype->name);
		if (!e) {
			e = json_pack("{s:i, s:I, s:I}", "count", 0, "bytes",
				      (json_int_t)0, "params", (json_int_t)0);
			json_object_set_new(d, t->dtype->name, e);
		}
		json_object_set_new(e, "count",
				    json_integer(json_integer_value(json_object_get(e, "count")) + 1));
		json_object_set_new(e, "bytes",
				    json_integer(json_integer_value(json_object_get(e, "bytes")) +
						 (json_int_t)t->size));
		json_object_set_new(e, "params",
				    json_integer(json_integer_value(json_object_get(e, "params")) +
						 (json_int_t)t->nelems));
	}
	return d;
}

/* The bundle's "type" for people. */
static const char *main_dtype(const slm_bundle *b)
{
	const slm_dtype *d = bundle_main_dtype(b);
	return d ? d->name : "-";
}

static json_t *tokenizer_summary(json_t *tok)
{
	json_t *s = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(tok, k, v) {
		if (json_is_array(v))
			json_object_set_new(s, k, json_integer((json_int_t)json_array_size(v)));
		else
			json_object_set(s, k, v);
	}
	return s;
}

static json_t *info_json(const slm_bundle *b)
{
	json_t *man = bundle_manifest(b);
	json_t *o = json_object();
	const char *keys[] = { "name", "arch", "hparams", "generation", "provenance" };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		json_t *v = json_object_get(man, keys[i]);
		if (v)
			json_object_set(o, keys[i], v);
	}
	json_object_set_new(o, "file", json_string(bundle_path(b)));
	json_object_set_new(o, "file_size", json_integer((json_int_t)bundle_file_size(b)));
	json_object_set_new(o, "compressed", json_boolean(bundle_is_compressed(b)));
	json_object_set_new(o, "params", json_integer((json_int_t)bundle_n_params(b)));
	json_object_set_new(o, "type", json_string(main_dtype(b)));
	json_object_set_new(o, "dtypes", dtype_summary(b));
	json_t *ts = json_array();
	for (size_t i = 0; i < bundle_n_tensors(b); i++) {
		const slm_tensor *t = bundle_tensor_at(b, i);
		json_t *sh = json_array();
		for (int j = 0; j < t->ndim; j++)
			json_array_append_new(sh, json_integer((json_int_t)t->ne[j]));
		json_array_append_new(ts, json_pack("{s:s, s:s, s:o, s:I, s:s}", "name", t->name,
						    "dtype", t->dtype->name, "shape", sh,
						    "bytes", (json_int_t)t->size, "layout",
						    t->tiled ? "tile16" : "plain"));
	}
	json_object_set_new(o, "tensors", ts);
	json_t *tok = json_object_get(man, "tokenizer");
	if (json_is_object(tok))
		json_object_set_new(o, "tokenizer", tokenizer_summary(tok));
	const char *tmpl = json_string_value(json_object_get(man, "chat_template"));
	json_object_set_new(o, "chat_template", tmpl ? json_string(tmpl) : json_null());
	json_t *draft = json_object_get(man, "draft");
	if (draft)
		json_object_set(o, "draft", draft);
	return o;
}

static void print_kv_map(const char *title, json_t *m)
{
	if (!json_is_object(m) || json_object_size(m) == 0)
		return;
	printf("%s:\n", title);
	const char *k;
	json_t *v;
	json_object_foreach(m, k, v) {
		char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		printf("  %-28s %s\n", k, s);
		free(s);
	}
}

static int cmd_info(const char *arg)
{
	slm_bundle *b = open_bundle(arg);
	json_t *o = info_json(b);
	if (opt.json) {
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
	} else {
		char sz[32];
		const char *name = json_string_value(json_object_get(o, "name"));
		printf("%-14s %s\n", "file:", bundle_path(b));
		printf("%-14s %s%s\n", "size:", slm_fmt_size(bundle_file_size(b), sz),
		       bundle_is_compressed(b) ? " (gzip)" : "");
		printf("%-14s %s\n", "name:", name ? name : "-");
		printf("%-14s %s\n", "architecture:", bundle_str(b, "arch"));
		printf("%-14s %llu\n", "parameters:", (unsigned long long)bundle_n_params(b));
		printf("%-14s %s\n", "type:", main_dtype(b));
		json_t *d = json_object_get(o, "dtypes");
		const char *k;
		json_t *v;
		printf("tensor types:\n");
		json_object_foreach(d, k, v) printf(
			"  %-8s %5lld tensors %12lld params %12s\n", k,
			(long long)json_integer_value(json_object_get(v, "count")),
			(long long)json_integer_value(json_object_get(v, "params")),
			slm_fmt_size((uint64_t)json_integer_value(json_object_get(v, "bytes")), sz));
		print_kv_map("hyper-parameters", json_object_get(o, "hparams"));
		print_kv_map("tokenizer", json_object_get(o, "tokenizer"));
		const char *t = json_string_value(json_object_get(o, "chat_template"));
		if (t) {
			const char *nl = strchr(t, '\n');
			printf("chat template:\n  %zu bytes: %.*s%s\n", strlen(t),
			       (int)(nl && nl - t < 60 ? nl - t : (strlen(t) < 60 ? (int)strlen(t) : 60)),
			       t, strlen(t) > 60 || nl ? " ..." : "");
		} else
			printf("chat template: none\n");
		print_kv_map("generation", json_object_get(o, "generation"));
		print_kv_map("provenance", json_object_get(o, "provenance"));
		print_kv_map("draft", json_object_get(o, "draft"));
		if (opt.verbose) {
			printf("tensors:\n");
			for (size_t i = 0; i < bundle_n_tensors(b); i++) {
				const slm_tensor *ts = bundle_tensor_at(b, i);
				char shape[96] = "";
				size_t off = 0;
				for (int j = 0; j < ts->ndim; j++)
					off += (size_t)snprintf(shape + off, sizeof shape - off,
								j ? " x %llu" : "%llu",
								(unsigned long long)ts->ne[j]);
				printf("  %-32s %-6s %-24s %s%s\n", ts->name, ts->dtype->name,
				       shape, slm_fmt_size(ts->size, sz), ts->tiled ? "  tile16" : "");
			}
		}
	}
	json_decref(o);
	bundle_close(b);
	return 0;
}

/* ---- verify ---- */

static int cmd_verify(const char *arg)
{
	slm_bundle *b = open_bundle(arg);
	slm_err err;
	if (bundle_verify(b, &err) < 0)
		slm_die_err(&err);
	if (opt.verbose)
		fprintf(stderr, "%s: %s: %zu members verified\n", slm_progname,
			bundle_path(b), bundle_n_members(b) - 2);
	bundle_close(b);
	return 0;
}

/* ---- list ---- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_list(void)
{
	char *dir = store_dir();
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT) {
			free(dir);
			return 0;
		}
		slm_die(EX_IOERR, "%s: %s", dir, strerror(errno));
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > 4 && !strcmp(de->d_name + l - 4, ".slm") && de->d_name[0] != '.' &&
		    strcmp(de->d_name, "default.slm")) {
			names = slm_xrealloc(names, (n + 1) * sizeof *names);
			names[n++] = slm_xstrdup(de->d_name);
		}
	}
	closedir(d);
	qsort(names, n, sizeof *names, name_cmp);
	char deflink[4096 + 16] = "", target[4096] = "";
	snprintf(deflink, sizeof deflink, "%s/default.slm", dir);
	ssize_t tl = readlink(deflink, target, sizeof target - 1);
	if (tl > 0)
		target[tl] = 0;
	if (!opt.json && n)
		printf("%-1s %-32s %-10s %12s %-7s %10s\n", "", "NAME", "ARCH", "PARAMS",
		       "TYPE", "SIZE");
	for (size_t i = 0; i < n; i++) {
		char path[8192];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		names[i][strlen(names[i]) - 4] = 0;
		slm_bundle *b;
		slm_err err;
		int isdef = tl > 0 && !strncmp(target, names[i], strlen(names[i])) &&
			    !strcmp(target + strlen(names[i]), ".slm");
		if (bundle_open(&b, path, &err) < 0) {
			slm_warn("%s", err.msg);
			free(names[i]);
			continue;
		}
		char sz[32];
		if (opt.json) {
			json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:I, s:b, s:s}", "name",
					      names[i], "arch", bundle_str(b, "arch"), "params",
					      (json_int_t)bundle_n_params(b), "type", main_dtype(b),
					      "size", (json_int_t)bundle_file_size(b),
					      "default", isdef, "path", path);
			json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			putchar('\n');
			json_decref(o);
		} else {
			printf("%-1s %-32s %-10s %12llu %-7s %10s\n", isdef ? "*" : "",
			       names[i], bundle_str(b, "arch"),
			       (unsigned long long)bundle_n_params(b), main_dtype(b),
			       slm_fmt_size(bundle_file_size(b), sz));
		}
		bundle_close(b);
		free(names[i]);
	}
	free(names);
	free(dir);
	return 0;
}

/* ---- extract ---- */

static int mkparents(const char *path)
{
	char *p = slm_xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = '/';
	}
	free(p);
	return 0;
}

static void extract_member(const slm_member *m, const char *dir)
{
	slm_err err;
	size_t l = strlen(dir) + strlen(m->name) + 2;
	char *path = slm_xmalloc(l);
	snprintf(path, l, "%s/%s", dir, m->name);
	if (mkparents(path) < 0)
		slm_die(EX_CANTCREAT, "%s: %s", path, strerror(errno));
	slm_afile af;
	if (slm_afile_open(&af, path, &err) < 0)
		slm_die_err(&err);
	if (m->size && fwrite(m->data, 1, m->size, af.fp) != m->size) {
		slm_afile_abort(&af);
		slm_die(EX_IOERR, "%s: write error: %s", path, strerror(errno));
	}
	if (slm_afile_commit(&af, &err) < 0)
		slm_die_err(&err);
	if (opt.verbose)
		fprintf(stderr, "%s\n", path);
	free(path);
}

static int cmd_extract(const char *arg, char **members, int nmembers)
{
	slm_bundle *b = open_bundle(arg);
	const char *dir = opt.dir ? opt.dir : ".";
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		slm_die(EX_CANTCREAT, "%s: not a directory", dir);
	for (int i = 0; i < nmembers; i++)
		if (!bundle_find_member(b, members[i]))
			slm_die(EX_USAGE, "%s: no member '%s'", bundle_path(b), members[i]);
	if (nmembers) {
		for (int i = 0; i < nmembers; i++)
			extract_member(bundle_find_member(b, members[i]), dir);
	} else {
		for (size_t i = 0; i < bundle_n_members(b); i++)
			extract_member(bundle_member_at(b, i), dir);
	}
	bundle_close(b);
	return 0;
}

/* ---- build ---- */

/* Set a dotted key path to a value parsed as JSON if possible, else as a
 * string. */
static void apply_set(json_t *man, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv)
		slm_die(EX_USAGE, "--set: expected KEY=VALUE, got '%s'", kv);
	char *key = slm_xstrdup(kv);
	key[eq - kv] = 0;
	const char *val = eq + 1;
	static const char *const reserved[] = { "format", "version", "tensors",
						"members", "arch" };
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
		if (!strcmp(key, reserved[i]) ||
		    (!strncmp(key, reserved[i], strlen(reserved[i])) &&
		     key[strlen(reserved[i])] == '.'))
			slm_die(EX_USAGE, "--set: '%s' is written by slm and cannot be set", key);
	json_error_t je;
	json_t *v = json_loads(val, JSON_DECODE_ANY, &je);
	if (!v || json_is_object(v) || json_is_array(v)) {
		json_decref(v);
		v = json_string(val);
		if (!v)
			slm_die(EX_USAGE, "--set: value for '%s' is not valid UTF-8", key);
	}
	json_t *node = man;
	char *save = NULL, *part = strtok_r(key, ".", &save);
	while (part) {
		char *next = strtok_r(NULL, ".", &save);
		if (!next) {
			if (json_is_null(v))
				json_object_del(node, part);
			else
				json_object_set(node, part, v);
			break;
		}
		json_t *child = json_object_get(node, part);
		if (!json_is_object(child)) {
			if (child)
				slm_die(EX_USAGE, "--set: '%s' is not a map", part);
			child = json_object();
			json_object_set_new(node, part, child);
		}
		node = child;
		part = next;
	}
	json_decref(v);
	free(key);
}

static int cmd_build(const char *arg)
{
	slm_bundle *b = open_bundle(arg);
	slm_err err;
	/* never launder damage into fresh checksums */
	if (bundle_verify(b, &err) < 0)
		slm_die_err(&err);
	json_t *man = json_deep_copy(bundle_manifest(b));
	json_object_del(man, "tensors");
	json_object_del(man, "members");
	if (opt.name) {
		if (!store_valid_name(opt.name))
			slm_die(EX_USAGE, "--name: '%s' is not a valid name (letters, digits, . _ -)",
				opt.name);
		json_object_set_new(man, "name", json_string(opt.name));
	}
	for (int i = 0; i < opt.nsets; i++)
		apply_set(man, opt.sets[i]);
	const char *nm = json_string_value(json_object_get(man, "name"));
	if (json_object_get(man, "name") && (!nm || !store_valid_name(nm)))
		slm_die(EX_USAGE, "--set name: not a valid name (letters, digits, . _ -)");
	if (opt.template_file) {
		char *t;
		size_t n;
		if (slm_read_file(opt.template_file, &t, &n, &err) < 0)
			slm_die_err(&err);
		json_t *s = json_stringn(t, n);
		if (!s)
			slm_die(EX_DATAERR, "%s: template is not valid UTF-8", opt.template_file);
		json_object_set_new(man, "chat_template", s);
		free(t);
	}
	slm_bundle *draft = NULL;
	if (opt.draft && !strcmp(opt.draft, "-"))
		slm_die(EX_USAGE, "--draft: give the draft bundle as a file, not standard input");
	if (opt.draft) {
		if (bundle_open(&draft, opt.draft, &err) < 0 || bundle_verify(draft, &err) < 0)
			slm_die_err(&err);
		if (bundle_find_member(draft, "draft.slm"))
			slm_die(EX_DATAERR, "%s: a draft model cannot carry a draft itself",
				opt.draft);
		const char *dn = bundle_str(draft, "name");
		json_object_set_new(man, "draft",
				    json_pack("{s:s, s:s, s:s}", "member", "draft.slm", "name",
					      dn ? dn : "", "arch", bundle_str(draft, "arch")));
	}
	slm_bwriter *w = bwriter_new(man);
	json_decref(man);
	/* tensors first, in their order; then other members, keeping their order */
	for (size_t i = 0; i < bundle_n_tensors(b); i++) {
		const slm_tensor *t = bundle_tensor_at(b, i);
		if (bwriter_add_tensor_l(w, t->name, t->dtype, t->ndim, t->ne, t->tiled, &err) < 0)
			slm_die_err(&err);
	}
	const slm_member **extra = slm_xcalloc(bundle_n_members(b), sizeof *extra);
	size_t nextra = 0;
	for (size_t i = 1; i + 1 < bundle_n_members(b); i++) {
		const slm_member *m = bundle_member_at(b, i);
		int is_tensor = 0;
		for (size_t j = 0; j < bundle_n_tensors(b) && !is_tensor; j++)
			is_tensor = bundle_tensor_at(b, j)->member == m;
		if (is_tensor || (draft && !strcmp(m->name, "draft.slm")))
			continue;
		extra[nextra++] = m;
		if (bwriter_add_member(w, m->name, m->size, &err) < 0)
			slm_die_err(&err);
	}
	if (draft && bwriter_add_member(w, "draft.slm", bundle_file_size(draft), &err) < 0)
		slm_die_err(&err);
	const char *out = opt.out ? opt.out : "-";
	if (!strcmp(out, "-"))
		slm_cli_refuse_tty(stdout, opt.force, "a bundle");
	if (bwriter_open(w, out, opt.gzip, &err) < 0)
		slm_die_err(&err);
	int rc = 0;
	for (size_t i = 0; i < bundle_n_tensors(b) && rc == 0; i++) {
		const slm_tensor *t = bundle_tensor_at(b, i);
		rc = bwriter_write(w, t->data, t->size, &err);
	}
	for (size_t i = 0; i < nextra && rc == 0; i++)
		rc = bwriter_write(w, extra[i]->data, extra[i]->size, &err);
	if (rc == 0 && draft) {
		/* the draft goes in as its file's bytes (compressed or not) */
		char *data;
		size_t n;
		rc = slm_read_file(opt.draft, &data, &n, &err);
		if (rc == 0) {
			rc = n == bundle_file_size(draft)
				     ? bwriter_write(w, data, n, &err)
				     : slm_seterr(&err, EX_IOERR, "%s: changed while reading",
						  opt.draft);
			free(data);
		}
	}
	if (rc < 0) {
		bwriter_abort(w);
		slm_die_err(&err);
	}
	if (bwriter_close(w, &err) < 0)
		slm_die_err(&err);
	free(extra);
	bundle_close(draft);
	bundle_close(b);
	return 0;
}

/* ---- install ---- */

static int cmd_install(const char *arg)
{
	slm_err err;
	if (!arg)
		slm_die(EX_USAGE, "install: which bundle? (slm-pack install BUNDLE)");
	/* Read the source once (it may be a pipe), into a temporary file in
	 * the store, check that copy, and only then give it its name. */
	char *data;
	size_t n;
	if (slm_read_file(arg, &data, &n, &err) < 0)
		slm_die_err(&err);
	if (store_mkdir(&err) < 0)
		slm_die_err(&err);
	char *dir = store_dir();
	size_t l = strlen(dir) + 32;
	char *staging = slm_xmalloc(l);
	snprintf(staging, l, "%s/.incoming.slm", dir);
	slm_afile af;
	if (slm_afile_open(&af, staging, &err) < 0)
		slm_die_err(&err);
	if (fwrite(data, 1, n, af.fp) != n || fflush(af.fp) != 0) {
		slm_afile_abort(&af);
		slm_die(EX_IOERR, "%s: write error: %s", dir, strerror(errno));
	}
	free(data);
	slm_bundle *b;
	if (bundle_open(&b, af.tmp, &err) < 0 || bundle_verify(b, &err) < 0) {
		slm_afile_abort(&af);
		/* name the source, not the temporary copy */
		const char *msg = strstr(err.msg, ": ");
		slm_die(err.code, "%s%s", !strcmp(arg, "-") ? "standard input" : arg,
			msg ? msg : "");
	}
	const char *name = opt.name;
	char *fallback = NULL;
	if (!name)
		name = bundle_str(b, "name");
	if ((!name || !*name) && strcmp(arg, "-")) {
		const char *base = strrchr(arg, '/');
		fallback = slm_xstrdup(base ? base + 1 : arg);
		size_t fl = strlen(fallback);
		if (fl > 4 && !strcmp(fallback + fl - 4, ".slm"))
			fallback[fl - 4] = 0;
		name = fallback;
	}
	if (!name || !store_valid_name(name) || !strcmp(name, "default")) {
		slm_afile_abort(&af);
		slm_die(EX_USAGE, "install: '%s' is not a valid model name; use --name",
			name ? name : "");
	}
	char *dest = slm_xmalloc(strlen(dir) + strlen(name) + 16);
	sprintf(dest, "%s/%s.slm", dir, name);
	free(af.path);
	af.path = slm_xstrdup(dest);
	if (slm_afile_commit(&af, &err) < 0)
		slm_die_err(&err);
	/* default.slm: a symlink, replaced atomically */
	char *link = slm_xmalloc(strlen(dir) + 32);
	sprintf(link, "%s/default.slm", dir);
	struct stat st;
	if (opt.make_default || lstat(link, &st) != 0) {
		char *tmp = slm_xmalloc(strlen(dir) + 40);
		sprintf(tmp, "%s/.default.slm.%ld", dir, (long)getpid());
		char *target = slm_xmalloc(strlen(name) + 8);
		sprintf(target, "%s.slm", name);
		unlink(tmp);
		if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
			unlink(tmp);
			slm_die(EX_CANTCREAT, "%s: %s", link, strerror(errno));
		}
		free(tmp);
		free(target);
	}
	if (opt.verbose)
		fprintf(stderr, "%s: installed %s\n", slm_progname, dest);
	free(link);
	free(dest);
	free(dir);
	free(staging);
	free(fallback);
	bundle_close(b);
	return 0;
}

enum { OPT_JSON = 256, OPT_NAME, OPT_SET, OPT_TEMPLATE, OPT_DRAFT, OPT_GZIP,
       OPT_DEFAULT, OPT_VERSION };

int main(int argc, char **argv)
{
	slm_cli_init(argc, argv);
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "model", required_argument, NULL, 'm' },
		{ "output", required_argument, NULL, 'o' },
		{ "directory", required_argument, NULL, 'C' },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "set", required_argument, NULL, OPT_SET },
		{ "template", required_argument, NULL, OPT_TEMPLATE },
		{ "draft", required_argument, NULL, OPT_DRAFT },
		{ "gzip", no_argument, NULL, OPT_GZIP },
		{ "default", no_argument, NULL, OPT_DEFAULT },
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version"))
		slm_cli_version();
	const char *cmd = argv[1];
	argv++;
	argc--;
	argv[0] = (char *)slm_progname; /* getopt's messages name the program */
	opt.sets = slm_xcalloc((size_t)argc + 1, sizeof *opt.sets);
	int c;
	while ((c = getopt_long(argc, argv, "hm:o:C:fqvt:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case OPT_VERSION:
			slm_cli_version();
		case OPT_JSON: opt.json = 1; break;
		case 'm': opt.model = optarg; break;
		case 'o': opt.out = optarg; break;
		case 'C': opt.dir = optarg; break;
		case OPT_NAME: opt.name = optarg; break;
		case OPT_SET: opt.sets[opt.nsets++] = optarg; break;
		case OPT_TEMPLATE: opt.template_file = optarg; break;
		case OPT_DRAFT: opt.draft = optarg; break;
		case OPT_GZIP: opt.gzip = 1; break;
		case OPT_DEFAULT: opt.make_default = 1; break;
		case 'f': opt.force = 1; break;
		case 'q': opt.quiet = 1; break;
		case 'v': opt.verbose = 1; break;
		case 't': slm_cli_long("-t", optarg, 1, 4096); break; /* no threads used */
		default: usage();
		}
	}
	char **rest = argv + optind;
	int nrest = argc - optind;
	const char *bundle = opt.model;
	if (!bundle && nrest > 0 && strcmp(cmd, "list")) {
		bundle = rest[0];
		rest++;
		nrest--;
	}
	int rc;
	if (!strcmp(cmd, "info") && nrest == 0)
		rc = cmd_info(bundle);
	else if (!strcmp(cmd, "verify") && nrest == 0)
		rc = cmd_verify(bundle);
	else if (!strcmp(cmd, "list") && nrest == 0)
		rc = cmd_list();
	else if (!strcmp(cmd, "extract"))
		rc = cmd_extract(bundle, rest, nrest);
	else if (!strcmp(cmd, "build") && nrest == 0)
		rc = cmd_build(bundle);
	else if (!strcmp(cmd, "install") && nrest == 0)
		rc = cmd_install(bundle);
	else if (strcmp(cmd, "info") && strcmp(cmd, "verify") && strcmp(cmd, "list") &&
		 strcmp(cmd, "extract") && strcmp(cmd, "build") && strcmp(cmd, "install"))
		slm_die(EX_USAGE, "unknown command '%s' (try slm-pack --help)", cmd);
	else
		usage();
	free(opt.sets);
	if (fflush(stdout) != 0)
		slm_die(EX_IOERR, "standard output: %s", strerror(errno));
	return rc;
}
