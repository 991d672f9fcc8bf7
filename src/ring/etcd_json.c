/* The etcd gateway's JSON: request bodies built with jansson, replies and
 * stream messages decoded into the structs of etcd.h. Decoding is
 * lenient about absence (etcd omits every zero value) and strict about
 * types: a field of the wrong type or bad base64 makes the whole reply
 * invalid rather than silently zero. */
#include "ring/etcd_json.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/macros.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"

const char *const etcd_outcome_names[] = {
	[ETCD_OK] = "OK",
	[ETCD_FAILED] = "FAILED",
	[ETCD_UNKNOWN] = "UNKNOWN",
};

const struct etcd_call_info etcd_calls[ETCD_CALL_COUNT] = {
	[ETCD_CALL_RANGE] = { "range", "/v3/kv/range", true, false, false },
	[ETCD_CALL_PUT] = { "put", "/v3/kv/put", false, false, false },
	[ETCD_CALL_DELETE] = { "delete", "/v3/kv/deleterange", false, false, false },
	[ETCD_CALL_TXN] = { "txn", "/v3/kv/txn", false, false, false },
	[ETCD_CALL_COMPACT] = { "compact", "/v3/kv/compaction", false, false, false },
	[ETCD_CALL_LEASE_GRANT] = { "lease grant", "/v3/lease/grant", false, false, false },
	[ETCD_CALL_LEASE_KEEPALIVE] = { "lease keepalive", "/v3/lease/keepalive",
		true, true, true },
	[ETCD_CALL_LEASE_REVOKE] = { "lease revoke", "/v3/lease/revoke", false, false, false },
	[ETCD_CALL_LEASE_TIMETOLIVE] = { "lease timetolive", "/v3/lease/timetolive",
		true, false, false },
	[ETCD_CALL_STATUS] = { "status", "/v3/maintenance/status", true, false, false },
	[ETCD_CALL_AUTHENTICATE] = { "authenticate", "/v3/auth/authenticate",
		true, true, false },
};

/* ---- encoding ---- */

static void ATTR_NORETURN etcd_json_oom(void)
{
	/* the xmalloc policy: a half-built request is worse than an abort */
	abort();
}

static json_t *enc_object(void)
{
	json_t *o = json_object();
	if (o == NULL)
		etcd_json_oom();
	return o;
}

static void enc_set(json_t *o, const char *name, json_t *value)
{
	if (value == NULL || json_object_set_new(o, name, value) != 0)
		etcd_json_oom();
}

static void enc_bytes(json_t *o, const char *name, const void *data, size_t len)
{
	struct sbuf sb = SBUF_INIT;
	base64_encode(&sb, data, len);
	enc_set(o, name, json_stringn(sbuf_data(&sb), sbuf_len(&sb)));
	sbuf_free(&sb);
}

/* int64 as a decimal string, as etcd writes them */
static void enc_int64(json_t *o, const char *name, int64_t v)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	enc_set(o, name, json_string(buf));
}

static void enc_flag(json_t *o, const char *name, bool v)
{
	if (v)
		enc_set(o, name, json_true());
}

static char *enc_dump(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		etcd_json_oom();
	return s;
}

size_t etcd_prefix_end(const void *prefix, size_t len, unsigned char *out)
{
	const unsigned char *p = prefix;
	for (size_t i = len; i > 0; i--) {
		if (p[i - 1] < 0xff) {
			memcpy(out, p, i - 1);
			out[i - 1] = (unsigned char)(p[i - 1] + 1);
			return i;
		}
	}
	out[0] = '\0';
	return 1;
}

/* key and range_end; with prefix, range_end covers every key that
 * starts with key (an empty prefix: the whole keyspace, "\0".."\0") */
static void enc_key_range(json_t *o, const void *key, size_t key_len,
			  const void *range_end, size_t range_end_len, bool prefix)
{
	if (prefix) {
		if (key_len == 0) {
			enc_bytes(o, "key", "", 1);
			enc_bytes(o, "range_end", "", 1);
			return;
		}
		unsigned char *end = xmalloc(key_len);
		size_t end_len = etcd_prefix_end(key, key_len, end);
		enc_bytes(o, "key", key, key_len);
		enc_bytes(o, "range_end", end, end_len);
		free(end);
		return;
	}
	enc_bytes(o, "key", key, key_len);
	if (range_end != NULL && range_end_len > 0)
		enc_bytes(o, "range_end", range_end, range_end_len);
}

static json_t *enc_range(const struct etcd_range_params *p)
{
	json_t *o = enc_object();
	enc_key_range(o, p->key, p->key_len, p->range_end, p->range_end_len,
		      p->prefix);
	if (p->limit != 0)
		enc_int64(o, "limit", p->limit);
	if (p->revision != 0)
		enc_int64(o, "revision", p->revision);
	enc_flag(o, "keys_only", p->keys_only);
	enc_flag(o, "count_only", p->count_only);
	enc_flag(o, "serializable", p->serializable);
	return o;
}

static json_t *enc_put(const struct etcd_put_params *p)
{
	json_t *o = enc_object();
	enc_bytes(o, "key", p->key, p->key_len);
	enc_bytes(o, "value", p->value, p->value_len);
	if (p->lease != 0)
		enc_int64(o, "lease", p->lease);
	enc_flag(o, "prev_kv", p->prev_kv);
	return o;
}

static json_t *enc_delete(const struct etcd_delete_params *p)
{
	json_t *o = enc_object();
	enc_key_range(o, p->key, p->key_len, p->range_end, p->range_end_len,
		      p->prefix);
	enc_flag(o, "prev_kv", p->prev_kv);
	return o;
}

char *etcd_json_encode_range(const struct etcd_range_params *p)
{
	return enc_dump(enc_range(p));
}

char *etcd_json_encode_put(const struct etcd_put_params *p)
{
	return enc_dump(enc_put(p));
}

char *etcd_json_encode_delete(const struct etcd_delete_params *p)
{
	return enc_dump(enc_delete(p));
}

/* the field a compare's number or value goes in, per target */
static const struct {
	const char *name;
	const char *field;
} etcd_targets[] = {
	[ETCD_TARGET_VERSION] = { "VERSION", "version" },
	[ETCD_TARGET_CREATE] = { "CREATE", "create_revision" },
	[ETCD_TARGET_MOD] = { "MOD", "mod_revision" },
	[ETCD_TARGET_VALUE] = { "VALUE", "value" },
	[ETCD_TARGET_LEASE] = { "LEASE", "lease" },
};

static const char *const etcd_compare_results[] = {
	[ETCD_CMP_EQUAL] = "EQUAL",
	[ETCD_CMP_GREATER] = "GREATER",
	[ETCD_CMP_LESS] = "LESS",
	[ETCD_CMP_NOT_EQUAL] = "NOT_EQUAL",
};

static json_t *enc_compare(const struct etcd_compare *c)
{
	json_t *o = enc_object();
	enc_key_range(o, c->key, c->key_len, NULL, 0, c->prefix);
	enc_set(o, "target", json_string(etcd_targets[c->target].name));
	enc_set(o, "result", json_string(etcd_compare_results[c->result]));
	/* always sent, zero included: without it the compare's target
	 * would be unset rather than 0 */
	if (c->target == ETCD_TARGET_VALUE)
		enc_bytes(o, "value", c->value, c->value_len);
	else
		enc_int64(o, etcd_targets[c->target].field, c->number);
	return o;
}

/* one row per op type: its name in a txn request and reply */
static const struct {
	const char *request;
	const char *response;
} etcd_op_names[] = {
	[ETCD_OP_RANGE] = { "request_range", "response_range" },
	[ETCD_OP_PUT] = { "request_put", "response_put" },
	[ETCD_OP_DELETE] = { "request_delete_range", "response_delete_range" },
};

static json_t *enc_ops(const struct etcd_op *ops, size_t count)
{
	json_t *a = json_array();
	if (a == NULL)
		etcd_json_oom();
	for (size_t i = 0; i < count; i++) {
		const struct etcd_op *op = &ops[i];
		json_t *body = op->type == ETCD_OP_RANGE ? enc_range(&op->u.range) :
			op->type == ETCD_OP_PUT ? enc_put(&op->u.put) :
			enc_delete(&op->u.del);
		json_t *o = enc_object();
		enc_set(o, etcd_op_names[op->type].request, body);
		if (json_array_append_new(a, o) != 0)
			etcd_json_oom();
	}
	return a;
}

char *etcd_json_encode_txn(const struct etcd_txn_params *p)
{
	json_t *o = enc_object();
	json_t *cmp = json_array();
	if (cmp == NULL)
		etcd_json_oom();
	for (size_t i = 0; i < p->compare_count; i++) {
		if (json_array_append_new(cmp, enc_compare(&p->compares[i])) != 0)
			etcd_json_oom();
	}
	enc_set(o, "compare", cmp);
	enc_set(o, "success", enc_ops(p->success, p->success_count));
	enc_set(o, "failure", enc_ops(p->failure, p->failure_count));
	return enc_dump(o);
}

char *etcd_json_encode_compact(int64_t revision)
{
	json_t *o = enc_object();
	enc_int64(o, "revision", revision);
	return enc_dump(o);
}

char *etcd_json_encode_lease_grant(int64_t ttl, int64_t id)
{
	/* upper case: "ttl" would be ignored and grant the 2 s minimum */
	json_t *o = enc_object();
	enc_int64(o, "TTL", ttl);
	if (id != 0)
		enc_int64(o, "ID", id);
	return enc_dump(o);
}

char *etcd_json_encode_lease_id(int64_t id)
{
	json_t *o = enc_object();
	enc_int64(o, "ID", id);
	return enc_dump(o);
}

char *etcd_json_encode_lease_timetolive(int64_t id, bool keys)
{
	json_t *o = enc_object();
	enc_int64(o, "ID", id);
	enc_flag(o, "keys", keys);
	return enc_dump(o);
}

char *etcd_json_encode_status(void)
{
	return enc_dump(enc_object());
}

char *etcd_json_encode_authenticate(const char *user, const char *password)
{
	json_t *o = enc_object();
	enc_set(o, "name", json_string(user));
	enc_set(o, "password", json_string(password));
	/* jansson's copy of the password is freed unwiped; it lived only
	 * as long as this call */
	return enc_dump(o);
}

char *etcd_json_encode_watch(const struct etcd_watch_params *p,
			     int64_t start_revision)
{
	json_t *o = enc_object();
	enc_key_range(o, p->key, p->key_len, p->range_end, p->range_end_len,
		      p->prefix);
	if (start_revision != 0)
		enc_int64(o, "start_revision", start_revision);
	enc_flag(o, "prev_kv", true);
	enc_flag(o, "progress_notify", true);
	json_t *root = enc_object();
	enc_set(root, "create_request", o);
	return enc_dump(root);
}

/* ---- decoding ---- */

/* Remembers the first thing that was wrong; the getters return zero
 * values after it, and the caller checks once at the end. */
struct etcd_dec {
	char *error;
};

static void ATTR_FORMAT(2, 3) dec_fail(struct etcd_dec *d, const char *fmt, ...)
{
	if (d->error != NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	d->error = xvasprintf(fmt, ap);
	va_end(ap);
}

/* the member name, or NULL when absent; a member of another type is an
 * error */
static json_t *dec_get(struct etcd_dec *d, json_t *o, const char *name,
		       json_type type)
{
	json_t *v = json_object_get(o, name);
	if (v == NULL || json_is_null(v))
		return NULL;
	if (json_typeof(v) != type) {
		dec_fail(d, "\"%s\" has the wrong type", name);
		return NULL;
	}
	return v;
}

/* An int64 given as a string (how etcd writes them) or a number. */
static int64_t dec_int64(struct etcd_dec *d, json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		errno = 0;
		long long n = strtoll(s, &end, 10);
		if (errno == 0 && end != s && *end == '\0')
			return n;
	}
	dec_fail(d, "\"%s\" is not an int64", name);
	return 0;
}

/* The same for uint64 fields (cluster and member IDs use all 64 bits). */
static uint64_t dec_uint64(struct etcd_dec *d, json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		return (uint64_t)json_integer_value(v);
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		errno = 0;
		unsigned long long n = strtoull(s, &end, 10);
		if (errno == 0 && end != s && *end == '\0' && s[0] != '-')
			return n;
	}
	dec_fail(d, "\"%s\" is not a uint64", name);
	return 0;
}

static bool dec_bool(struct etcd_dec *d, json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	if (v == NULL || json_is_null(v))
		return false;
	if (!json_is_boolean(v)) {
		dec_fail(d, "\"%s\" is not a boolean", name);
		return false;
	}
	return json_is_true(v);
}

static char *dec_string(struct etcd_dec *d, json_t *o, const char *name)
{
	json_t *v = dec_get(d, o, name, JSON_STRING);
	return v == NULL ? NULL : xstrndup(json_string_value(v), json_string_length(v));
}

/* base64 text to NUL-terminated bytes */
static unsigned char *dec_base64(struct etcd_dec *d, json_t *v, const char *name,
				 size_t *len_r)
{
	size_t len = json_string_length(v);
	unsigned char *out = xmalloc(BASE64_DECODED_MAX(len) + 1);
	long n = base64_decode(json_string_value(v), len, out);
	if (n < 0) {
		dec_fail(d, "\"%s\" is not base64", name);
		n = 0;
	}
	out[n] = '\0';
	*len_r = (size_t)n;
	return out;
}

/* An absent field is the empty string, never NULL. */
static unsigned char *dec_bytes(struct etcd_dec *d, json_t *o, const char *name,
				size_t *len_r)
{
	json_t *v = dec_get(d, o, name, JSON_STRING);
	if (v == NULL) {
		*len_r = 0;
		return (unsigned char *)xstrdup("");
	}
	return dec_base64(d, v, name, len_r);
}

static void dec_header(struct etcd_dec *d, json_t *o, struct etcd_header *h)
{
	json_t *hdr = dec_get(d, o, "header", JSON_OBJECT);
	if (hdr == NULL)
		return;
	h->cluster_id = dec_uint64(d, hdr, "cluster_id");
	h->member_id = dec_uint64(d, hdr, "member_id");
	h->revision = dec_int64(d, hdr, "revision");
	h->raft_term = dec_uint64(d, hdr, "raft_term");
}

static void dec_kv(struct etcd_dec *d, json_t *o, struct etcd_kv *kv)
{
	kv->key = dec_bytes(d, o, "key", &kv->key_len);
	kv->value = dec_bytes(d, o, "value", &kv->value_len);
	kv->create_revision = dec_int64(d, o, "create_revision");
	kv->mod_revision = dec_int64(d, o, "mod_revision");
	kv->version = dec_int64(d, o, "version");
	kv->lease = dec_int64(d, o, "lease");
}

static void etcd_kv_clear(struct etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

void etcd_kvs_free(struct etcd_kv **kvs, size_t count)
{
	if (*kvs == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		etcd_kv_clear(&(*kvs)[i]);
	free(*kvs);
	*kvs = NULL;
}

static void dec_kvs(struct etcd_dec *d, json_t *o, const char *name,
		    struct etcd_kv **kvs_r, size_t *count_r)
{
	json_t *a = dec_get(d, o, name, JSON_ARRAY);
	if (a == NULL || json_array_size(a) == 0)
		return;
	*count_r = json_array_size(a);
	*kvs_r = xcalloc(*count_r, sizeof(**kvs_r));
	for (size_t i = 0; i < *count_r; i++) {
		json_t *kv = json_array_get(a, i);
		if (!json_is_object(kv)) {
			dec_fail(d, "\"%s\" holds a non-object", name);
			continue;
		}
		dec_kv(d, kv, &(*kvs_r)[i]);
	}
}

static void dec_op_revision(struct etcd_dec *d, json_t *o, struct etcd_op_result *op)
{
	struct etcd_header h = { 0, 0, 0, 0 };
	dec_header(d, o, &h);
	op->revision = h.revision;
}

static void dec_range_op(struct etcd_dec *d, json_t *o, struct etcd_op_result *op)
{
	op->type = ETCD_OP_RANGE;
	dec_op_revision(d, o, op);
	dec_kvs(d, o, "kvs", &op->kvs, &op->kv_count);
	op->more = dec_bool(d, o, "more");
	op->count = dec_int64(d, o, "count");
}

static void dec_put_op(struct etcd_dec *d, json_t *o, struct etcd_op_result *op)
{
	op->type = ETCD_OP_PUT;
	dec_op_revision(d, o, op);
	json_t *prev = dec_get(d, o, "prev_kv", JSON_OBJECT);
	if (prev != NULL) {
		op->kvs = xcalloc(1, sizeof(*op->kvs));
		op->kv_count = 1;
		dec_kv(d, prev, op->kvs);
	}
}

static void dec_delete_op(struct etcd_dec *d, json_t *o, struct etcd_op_result *op)
{
	op->type = ETCD_OP_DELETE;
	dec_op_revision(d, o, op);
	op->deleted = dec_int64(d, o, "deleted");
	dec_kvs(d, o, "prev_kvs", &op->kvs, &op->kv_count);
}

static void (*const etcd_op_decoders[])(struct etcd_dec *, json_t *,
					struct etcd_op_result *) = {
	[ETCD_OP_RANGE] = dec_range_op,
	[ETCD_OP_PUT] = dec_put_op,
	[ETCD_OP_DELETE] = dec_delete_op,
};

static void dec_reply_range(struct etcd_dec *d, json_t *o, struct etcd_reply *r)
{
	dec_range_op(d, o, &r->result.op);
}

static void dec_reply_put(struct etcd_dec *d, json_t *o, struct etcd_reply *r)
{
	dec_put_op(d, o, &r->result.op);
}

static void dec_reply_delete(struct etcd_dec *d, json_t *o, struct etcd_reply *r)
{
	dec_delete_op(d, o, &r->result.op);
}

static void dec_txn_response(struct etcd_dec *d, json_t *o, struct etcd_op_result *op)
{
	for (size_t t = 0; t < ARRAY_SIZE(etcd_op_names); t++) {
		json_t *body = dec_get(d, o, etcd_op_names[t].response, JSON_OBJECT);
		if (body != NULL) {
			etcd_op_decoders[t](d, body, op);
			return;
		}
	}
	dec_fail(d, "a txn response of an unknown kind");
}

static void dec_reply_txn(struct etcd_dec *d, json_t *o, struct etcd_reply *r)
{
	/* a failed txn has no "succeeded" at all */
	r->result.succeeded = dec_bool(d, o, "succeeded");
	json_t *a = dec_get(d, o, "responses", JSON_ARRAY);
	if (a == NULL || json_array_size(a) == 0)
		return;
	r->result.response_count = json_array_size(a);
	r->result.responses = xcalloc(r->result.response_count,
				      sizeof(*r->result.responses));
	for (size_t i = 0; i < r->result.response_count; i++) {
		json_t *resp = json_array_get(a, i);
		if (!json_is_object(resp)) {
			dec_fail(d, "\"responses\" holds a non-object");
			continue;
		}
		dec_txn_response(d, resp, &r->result.responses[i]);
	}
}

static void dec_reply_header_only(struct etcd_dec *d, json_t *o, struct etcd_reply *r)
{
	(void)d;
	(void)o;
	(void)r;
}

static void dec_reply_lease(struct etcd_dec *d, json_t *o, struct etcd_reply *r)
{
	struct etcd_lease_result *l = &r->result.lease;
	l->id = dec_int64(d, o, "ID");
	l->ttl = dec_int64(d, o, "TTL");
	l->granted_ttl = dec_int64(d, o, "grantedTTL");
	json_t *a = dec_get(d, o, "keys", JSON_ARRAY);
	if (a == NULL || json_array_size(a) == 0)
		return;
	l->key_count = json_array_size(a);
	l->keys = xcalloc(l->key_count, sizeof(*l->keys));
	for (size_t i = 0; i < l->key_count; i++) {
		json_t *k = json_array_get(a, i);
		if (!json_is_string(k)) {
			dec_fail(d, "\"keys\" holds a non-string");
			continue;
		}
		l->keys[i].key = dec_base64(d, k, "keys", &l->keys[i].key_len);
		l->keys[i].value = (unsigned char *)xstrdup("");
	}
}

static void dec_reply_status(struct etcd_dec *d, json_t *o, struct etcd_reply *r)
{
	struct etcd_status_result *s = &r->result.status;
	s->version = dec_string(d, o, "version");
	s->db_size = dec_int64(d, o, "dbSize");
	s->db_size_in_use = dec_int64(d, o, "dbSizeInUse");
	s->leader = dec_uint64(d, o, "leader");
	s->raft_index = dec_uint64(d, o, "raftIndex");
	s->raft_term = dec_uint64(d, o, "raftTerm");
	s->raft_applied_index = dec_uint64(d, o, "raftAppliedIndex");
}

static void dec_reply_authenticate(struct etcd_dec *d, json_t *o, struct etcd_reply *r)
{
	r->token = dec_string(d, o, "token");
	if (d->error == NULL && (r->token == NULL || r->token[0] == '\0'))
		dec_fail(d, "no token");
}

/* what follows the header, per call */
static void (*const etcd_reply_decoders[ETCD_CALL_COUNT])(struct etcd_dec *,
							   json_t *,
							   struct etcd_reply *) = {
	[ETCD_CALL_RANGE] = dec_reply_range,
	[ETCD_CALL_PUT] = dec_reply_put,
	[ETCD_CALL_DELETE] = dec_reply_delete,
	[ETCD_CALL_TXN] = dec_reply_txn,
	[ETCD_CALL_COMPACT] = dec_reply_header_only,
	[ETCD_CALL_LEASE_GRANT] = dec_reply_lease,
	[ETCD_CALL_LEASE_KEEPALIVE] = dec_reply_lease,
	[ETCD_CALL_LEASE_REVOKE] = dec_reply_header_only,
	[ETCD_CALL_LEASE_TIMETOLIVE] = dec_reply_lease,
	[ETCD_CALL_STATUS] = dec_reply_status,
	[ETCD_CALL_AUTHENTICATE] = dec_reply_authenticate,
};

/* A stream's final error object's contents. */
static void dec_stream_error(struct etcd_dec *d, json_t *e, int *grpc_code_r,
			     int *http_code_r, char **message_r)
{
	*grpc_code_r = (int)dec_int64(d, e, "grpc_code");
	*http_code_r = (int)dec_int64(d, e, "http_code");
	*message_r = dec_string(d, e, "message");
	if (*message_r == NULL)
		*message_r = xstrdup("stream error");
}

static json_t *dec_load(const char *body, size_t len, size_t flags, char **error_r)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, flags, &jerr);
	if (root == NULL) {
		*error_r = xasprintf("invalid JSON: %s", jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		*error_r = xstrdup("invalid JSON: not an object");
		return NULL;
	}
	return root;
}

static void op_result_clear(struct etcd_op_result *op)
{
	etcd_kvs_free(&op->kvs, op->kv_count);
	memset(op, 0, sizeof(*op));
}

void etcd_reply_clear(struct etcd_reply *reply)
{
	struct etcd_result *r = &reply->result;
	op_result_clear(&r->op);
	for (size_t i = 0; i < r->response_count; i++)
		op_result_clear(&r->responses[i]);
	free(r->responses);
	etcd_kvs_free(&r->lease.keys, r->lease.key_count);
	free(r->status.version);
	free(reply->error);
	xfree_secret(&reply->token);
	memset(reply, 0, sizeof(*reply));
}

enum etcd_decode etcd_json_decode_reply(enum etcd_call call, const char *body,
					size_t len, struct etcd_reply *reply,
					char **error_r)
{
	memset(reply, 0, sizeof(*reply));
	/* a stream's body may hold more lines: the first one answers */
	json_t *root = dec_load(body, len,
				etcd_calls[call].stream ? JSON_DISABLE_EOF_CHECK : 0,
				error_r);
	if (root == NULL)
		return ETCD_DECODE_ERROR;

	struct etcd_dec d = { NULL };
	json_t *o = root;
	if (etcd_calls[call].stream) {
		json_t *e = dec_get(&d, root, "error", JSON_OBJECT);
		if (e != NULL) {
			char *message;
			dec_stream_error(&d, e, &reply->result.grpc_code,
					 &reply->result.http_status, &message);
			reply->error = message;
			reply->result.error = message;
			json_decref(root);
			if (d.error != NULL) {
				etcd_reply_clear(reply);
				*error_r = d.error;
				return ETCD_DECODE_ERROR;
			}
			return ETCD_DECODE_STREAM_ERROR;
		}
		o = dec_get(&d, root, "result", JSON_OBJECT);
		if (o == NULL)
			dec_fail(&d, "no \"result\"");
	}
	if (d.error == NULL) {
		dec_header(&d, o, &reply->result.header);
		etcd_reply_decoders[call](&d, o, reply);
	}
	json_decref(root);
	if (d.error != NULL) {
		etcd_reply_clear(reply);
		*error_r = d.error;
		return ETCD_DECODE_ERROR;
	}
	return ETCD_DECODE_OK;
}

bool etcd_json_decode_error(const char *body, size_t len, int *grpc_code_r,
			    int *http_code_r, char **message_r)
{
	char *error = NULL;
	*grpc_code_r = 0;
	*http_code_r = 0;
	*message_r = NULL;
	json_t *root = dec_load(body, len, JSON_DISABLE_EOF_CHECK, &error);
	if (root == NULL) {
		free(error);
		return false;
	}
	struct etcd_dec d = { NULL };
	json_t *e = json_object_get(root, "error");
	if (json_is_object(e)) {
		dec_stream_error(&d, e, grpc_code_r, http_code_r, message_r);
	} else if (json_is_string(e) || json_object_get(root, "code") != NULL) {
		*grpc_code_r = (int)dec_int64(&d, root, "code");
		*message_r = dec_string(&d, root, "message");
		if (*message_r == NULL)
			*message_r = dec_string(&d, root, "error");
	}
	json_decref(root);
	if (d.error != NULL || *message_r == NULL) {
		free(d.error);
		free(*message_r);
		*message_r = NULL;
		return false;
	}
	return true;
}

static void dec_event(struct etcd_dec *d, json_t *o, struct etcd_event *ev)
{
	/* a PUT has no "type": it is enum value 0 */
	json_t *type = dec_get(d, o, "type", JSON_STRING);
	if (type == NULL || strcmp(json_string_value(type), "PUT") == 0)
		ev->type = ETCD_EVENT_PUT;
	else if (strcmp(json_string_value(type), "DELETE") == 0)
		ev->type = ETCD_EVENT_DELETE;
	else
		dec_fail(d, "unknown event type \"%s\"", json_string_value(type));
	json_t *kv = dec_get(d, o, "kv", JSON_OBJECT);
	if (kv == NULL)
		dec_fail(d, "an event without kv");
	else
		dec_kv(d, kv, &ev->kv);
	json_t *prev = dec_get(d, o, "prev_kv", JSON_OBJECT);
	if (prev != NULL) {
		ev->has_prev_kv = true;
		dec_kv(d, prev, &ev->prev_kv);
	}
}

void etcd_watch_message_clear(struct etcd_watch_message *msg)
{
	for (size_t i = 0; i < msg->event_count; i++) {
		etcd_kv_clear(&msg->events[i].kv);
		etcd_kv_clear(&msg->events[i].prev_kv);
	}
	free(msg->events);
	free(msg->message);
	free(msg->cancel_reason);
	memset(msg, 0, sizeof(*msg));
}

enum etcd_decode etcd_json_decode_watch(const char *line, size_t len,
					struct etcd_watch_message *msg,
					char **error_r)
{
	memset(msg, 0, sizeof(*msg));
	json_t *root = dec_load(line, len, 0, error_r);
	if (root == NULL)
		return ETCD_DECODE_ERROR;
	struct etcd_dec d = { NULL };
	enum etcd_decode ret = ETCD_DECODE_OK;
	json_t *e = dec_get(&d, root, "error", JSON_OBJECT);
	json_t *o = e != NULL ? NULL : dec_get(&d, root, "result", JSON_OBJECT);
	if (e != NULL) {
		msg->is_error = true;
		dec_stream_error(&d, e, &msg->grpc_code, &msg->http_code,
				 &msg->message);
		ret = ETCD_DECODE_STREAM_ERROR;
	} else if (o == NULL) {
		dec_fail(&d, "neither \"result\" nor \"error\"");
	} else {
		dec_header(&d, o, &msg->header);
		msg->watch_id = dec_int64(&d, o, "watch_id");
		msg->created = dec_bool(&d, o, "created");
		msg->canceled = dec_bool(&d, o, "canceled");
		msg->compact_revision = dec_int64(&d, o, "compact_revision");
		msg->cancel_reason = dec_string(&d, o, "cancel_reason");
		json_t *a = dec_get(&d, o, "events", JSON_ARRAY);
		if (a != NULL && json_array_size(a) > 0) {
			msg->event_count = json_array_size(a);
			msg->events = xcalloc(msg->event_count, sizeof(*msg->events));
			for (size_t i = 0; i < msg->event_count; i++) {
				json_t *ev = json_array_get(a, i);
				if (!json_is_object(ev))
					dec_fail(&d, "\"events\" holds a non-object");
				else
					dec_event(&d, ev, &msg->events[i]);
			}
		}
	}
	json_decref(root);
	if (d.error != NULL) {
		etcd_watch_message_clear(msg);
		*error_r = d.error;
		return ETCD_DECODE_ERROR;
	}
	return ret;
}
