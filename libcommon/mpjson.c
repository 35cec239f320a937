/*
 * mpjson.c - msgpack scanning, decoding to jansson trees and encoding from
 * them. The scanner is the only code that trusts no byte: decoding happens
 * only after it has proved the object complete and well formed.
 */
#include "mpjson.h"

#include <stdlib.h>
#include <string.h>

static uint64_t be(const uint8_t *p, int nbytes)
{
	uint64_t v = 0;
	for (int i = 0; i < nbytes; i++)
		v = (v << 8) | p[i];
	return v;
}

int mpj_scan(const uint8_t *buf, size_t n, size_t limit, size_t *len,
	     size_t *errpos, const char **why)
{
	uint64_t stack[MPJ_MAX_DEPTH + 1];
	int depth = 0;
	stack[0] = 1; /* one object to read at the top level */
	size_t pos = 0;

	while (depth >= 0) {
		if (stack[depth] == 0) {
			depth--;
			continue;
		}
		if (pos >= limit) {
			*errpos = pos;
			*why = "record exceeds the size limit";
			return -1;
		}
		if (pos >= n)
			return 0;
		uint8_t b = buf[pos];
		uint64_t head = 1, body = 0, items = 0;
		int lenbytes = 0;
		int container = 0;

		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
			head = 1;
		} else if (b >= 0x80 && b <= 0x8f) {
			items = 2ull * (b & 15);
			container = 1;
		} else if (b >= 0x90 && b <= 0x9f) {
			items = b & 15;
			container = 1;
		} else if (b >= 0xa0 && b <= 0xbf) {
			body = b & 31;
		} else {
			switch (b) {
			case 0xc4: case 0xd9: lenbytes = 1; break;
			case 0xc5: case 0xda: lenbytes = 2; break;
			case 0xc6: case 0xdb: lenbytes = 4; break;
			case 0xc7: lenbytes = 1; body = 1; break;
			case 0xc8: lenbytes = 2; body = 1; break;
			case 0xc9: lenbytes = 4; body = 1; break;
			case 0xca: head = 5; break;
			case 0xcb: head = 9; break;
			case 0xcc: case 0xd0: head = 2; break;
			case 0xcd: case 0xd1: head = 3; break;
			case 0xce: case 0xd2: head = 5; break;
			case 0xcf: case 0xd3: head = 9; break;
			case 0xd4: head = 3; break;
			case 0xd5: head = 4; break;
			case 0xd6: head = 6; break;
			case 0xd7: head = 10; break;
			case 0xd8: head = 18; break;
			case 0xdc: lenbytes = 2; container = 1; break;
			case 0xdd: lenbytes = 4; container = 1; break;
			case 0xde: lenbytes = 2; container = 2; break;
			case 0xdf: lenbytes = 4; container = 2; break;
			default:
				*errpos = pos;
				*why = "invalid msgpack type byte 0xc1";
				return -1;
			}
		}
		if (lenbytes) {
			head = 1 + (uint64_t)lenbytes;
			if (pos + head > n) {
				if (pos + head > limit) {
					*errpos = pos;
					*why = "record exceeds the size limit";
					return -1;
				}
				return 0;
			}
			uint64_t l = be(buf + pos + 1, lenbytes);
			if (container == 1)
				items = l;
			else if (container == 2)
				items = 2 * l;
			else
				body += l;
			if (l > limit) {
				*errpos = pos;
				*why = container ? "length prefix exceeds the record size limit"
						 : "length prefix exceeds the record size limit";
				return -1;
			}
		}
		uint64_t need = head + body;
		if (need > limit || pos + need > limit) {
			*errpos = pos;
			*why = "length prefix exceeds the record size limit";
			return -1;
		}
		/* every contained item takes at least one byte */
		if (container && items > limit - (pos + need)) {
			*errpos = pos;
			*why = "element count exceeds the record size limit";
			return -1;
		}
		if (pos + need > n)
			return 0;
		pos += need;
		stack[depth]--;
		if (container && items) {
			if (depth == MPJ_MAX_DEPTH) {
				*errpos = pos - need;
				*why = "nesting too deep";
				return -1;
			}
			stack[++depth] = items;
		}
	}
	*len = pos;
	return 1;
}

static json_t *from_obj(const msgpack_object *o, const char **why)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > (uint64_t)INT64_MAX) {
			*why = "integer too large";
			return NULL;
		}
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR: {
		json_t *s = json_stringn(o->via.str.ptr, o->via.str.size);
		if (!s)
			*why = "string is not valid UTF-8";
		return s;
	}
	case MSGPACK_OBJECT_ARRAY: {
		json_t *a = json_array();
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			json_t *e = from_obj(&o->via.array.ptr[i], why);
			if (!e) {
				json_decref(a);
				return NULL;
			}
			json_array_append_new(a, e);
		}
		return a;
	}
	case MSGPACK_OBJECT_MAP: {
		json_t *m = json_object();
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			if (kv->key.type != MSGPACK_OBJECT_STR ||
			    memchr(kv->key.via.str.ptr, 0, kv->key.via.str.size)) {
				*why = "map key is not a string without NUL bytes";
				json_decref(m);
				return NULL;
			}
			json_t *v = from_obj(&kv->val, why);
			if (!v) {
				json_decref(m);
				return NULL;
			}
			if (json_object_setn_new(m, kv->key.via.str.ptr,
						 kv->key.via.str.size, v) != 0) {
				*why = "map key is not valid UTF-8";
				json_decref(m);
				return NULL;
			}
		}
		return m;
	}
	case MSGPACK_OBJECT_BIN:
		*why = "binary values are not allowed";
		return NULL;
	default:
		*why = "extension values are not allowed";
		return NULL;
	}
}

json_t *mpj_decode(const uint8_t *buf, size_t len, const char **why)
{
	msgpack_zone zone;
	msgpack_object obj;
	size_t off = 0;
	msgpack_zone_init(&zone, 4096);
	msgpack_unpack_return r =
		msgpack_unpack((const char *)buf, len, &off, &zone, &obj);
	json_t *v = NULL;
	if (r == MSGPACK_UNPACK_SUCCESS || r == MSGPACK_UNPACK_EXTRA_BYTES)
		v = from_obj(&obj, why);
	else
		*why = "malformed msgpack";
	msgpack_zone_destroy(&zone);
	return v;
}

static int keycmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void mpj_pack(msgpack_packer *pk, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_NULL:
		msgpack_pack_nil(pk);
		break;
	case JSON_TRUE:
		msgpack_pack_true(pk);
		break;
	case JSON_FALSE:
		msgpack_pack_false(pk);
		break;
	case JSON_INTEGER:
		msgpack_pack_int64(pk, json_integer_value(v));
		break;
	case JSON_REAL:
		msgpack_pack_double(pk, json_real_value(v));
		break;
	case JSON_STRING: {
		size_t n = json_string_length(v);
		msgpack_pack_str(pk, n);
		msgpack_pack_str_body(pk, json_string_value(v), n);
		break;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(v);
		msgpack_pack_array(pk, n);
		for (size_t i = 0; i < n; i++)
			mpj_pack(pk, json_array_get(v, i));
		break;
	}
	case JSON_OBJECT: {
		size_t n = json_object_size(v);
		const char **keys = malloc((n ? n : 1) * sizeof *keys);
		const char *k;
		json_t *val;
		size_t i = 0;
		json_object_foreach((json_t *)v, k, val) keys[i++] = k;
		qsort(keys, n, sizeof *keys, keycmp);
		msgpack_pack_map(pk, n);
		for (i = 0; i < n; i++) {
			size_t kl = strlen(keys[i]);
			msgpack_pack_str(pk, kl);
			msgpack_pack_str_body(pk, keys[i], kl);
			mpj_pack(pk, json_object_get(v, keys[i]));
		}
		free(keys);
		break;
	}
	}
}

void mpj_encode(const json_t *v, char **out, size_t *outlen)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mpj_pack(&pk, v);
	*out = sb.data;
	*outlen = sb.size;
}
