/* Unit tests for the etcd client's pure parts (src/ring/etcd_json.c,
 * etcd_stream.c): every request body it sends, every reply shape of
 * reference/etcd-gateway.md with the fields etcd leaves out, and the
 * stream framing fed whole, byte by byte and split at every position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "common/base64.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"
#include "ring/etcd_json.h"
#include "ring/etcd_stream.h"

#define HDR "\"header\":{\"cluster_id\":\"17897108213992244148\"," \
	"\"member_id\":\"1051911310754735059\",\"revision\":\"26\",\"raft_term\":\"2\"}"
#define BIG_LEASE "8705073518577857839"

static void expect_json(char *got, const char *want)
{
	if (strcmp(got, want) != 0)
		fail_msg("got:  %s\nwant: %s", got, want);
	free(got);
}

/* ---- encoding ---- */

static void test_encode_range(void **state)
{
	(void)state;
	struct etcd_range_params p = { .key = "a", .key_len = 1 };
	expect_json(etcd_json_encode_range(&p), "{\"key\":\"YQ==\"}");

	struct etcd_range_params all = {
		.key = "/loft/", .key_len = 6, .prefix = true, .revision = 5,
		.limit = 10, .keys_only = true, .count_only = true,
		.serializable = true,
	};
	expect_json(etcd_json_encode_range(&all),
		    "{\"key\":\"L2xvZnQv\",\"range_end\":\"L2xvZnQw\",\"limit\":\"10\","
		    "\"revision\":\"5\",\"keys_only\":true,\"count_only\":true,"
		    "\"serializable\":true}");

	/* an explicit range end; an empty one means the key alone */
	struct etcd_range_params span = { .key = "a", .key_len = 1,
					  .range_end = "c", .range_end_len = 1 };
	expect_json(etcd_json_encode_range(&span),
		    "{\"key\":\"YQ==\",\"range_end\":\"Yw==\"}");
	span.range_end_len = 0;
	expect_json(etcd_json_encode_range(&span), "{\"key\":\"YQ==\"}");

	/* the whole keyspace: key = range_end = "\0" */
	struct etcd_range_params every = { .key = "", .key_len = 0, .prefix = true };
	expect_json(etcd_json_encode_range(&every),
		    "{\"key\":\"AA==\",\"range_end\":\"AA==\"}");
}

static void test_encode_put_delete(void **state)
{
	(void)state;
	struct etcd_put_params p = { .key = "k", .key_len = 1, .value = "v",
				     .value_len = 1 };
	expect_json(etcd_json_encode_put(&p), "{\"key\":\"aw==\",\"value\":\"dg==\"}");
	p.lease = INT64_C(8705073518577857839);
	p.prev_kv = true;
	expect_json(etcd_json_encode_put(&p),
		    "{\"key\":\"aw==\",\"value\":\"dg==\",\"lease\":\"" BIG_LEASE "\","
		    "\"prev_kv\":true}");
	/* an empty value is sent, not left out */
	struct etcd_put_params empty = { .key = "k", .key_len = 1, .value = "",
					 .value_len = 0 };
	expect_json(etcd_json_encode_put(&empty), "{\"key\":\"aw==\",\"value\":\"\"}");

	struct etcd_delete_params d = { .key = "/loft/", .key_len = 6,
					.prefix = true, .prev_kv = true };
	expect_json(etcd_json_encode_delete(&d),
		    "{\"key\":\"L2xvZnQv\",\"range_end\":\"L2xvZnQw\",\"prev_kv\":true}");
	struct etcd_delete_params one = { .key = "k", .key_len = 1 };
	expect_json(etcd_json_encode_delete(&one), "{\"key\":\"aw==\"}");
}

static void test_encode_txn(void **state)
{
	(void)state;
	/* the reference's create-if-absent */
	struct etcd_compare absent = { .key = "K", .key_len = 1,
				       .target = ETCD_TARGET_CREATE,
				       .result = ETCD_CMP_EQUAL, .number = 0 };
	struct etcd_op put = { .type = ETCD_OP_PUT, .u.put = {
		.key = "K", .key_len = 1, .value = "V", .value_len = 1, .lease = 7 } };
	struct etcd_op get = { .type = ETCD_OP_RANGE, .u.range = {
		.key = "K", .key_len = 1 } };
	struct etcd_txn_params t = { &absent, 1, &put, 1, &get, 1 };
	expect_json(etcd_json_encode_txn(&t),
		    "{\"compare\":[{\"key\":\"Sw==\",\"target\":\"CREATE\",\"result\":\"EQUAL\","
		    "\"create_revision\":\"0\"}],"
		    "\"success\":[{\"request_put\":{\"key\":\"Sw==\",\"value\":\"Vg==\",\"lease\":\"7\"}}],"
		    "\"failure\":[{\"request_range\":{\"key\":\"Sw==\"}}]}");

	/* every target with its field, every result, every op */
	struct etcd_compare cmps[] = {
		{ "K", 1, ETCD_TARGET_MOD, ETCD_CMP_EQUAL, 12, NULL, 0, false },
		{ "K", 1, ETCD_TARGET_VERSION, ETCD_CMP_GREATER, 3, NULL, 0, false },
		{ "K", 1, ETCD_TARGET_VALUE, ETCD_CMP_NOT_EQUAL, 0, "x", 1, false },
		{ "K", 1, ETCD_TARGET_LEASE, ETCD_CMP_LESS, 9, NULL, 0, false },
	};
	struct etcd_op ops[] = {
		{ .type = ETCD_OP_DELETE, .u.del = { .key = "K", .key_len = 1,
						     .prev_kv = true } },
		{ .type = ETCD_OP_RANGE, .u.range = { .key = "/p/", .key_len = 3,
						      .prefix = true } },
	};
	struct etcd_txn_params t2 = { cmps, 4, ops, 2, NULL, 0 };
	expect_json(etcd_json_encode_txn(&t2),
		    "{\"compare\":["
		    "{\"key\":\"Sw==\",\"target\":\"MOD\",\"result\":\"EQUAL\",\"mod_revision\":\"12\"},"
		    "{\"key\":\"Sw==\",\"target\":\"VERSION\",\"result\":\"GREATER\",\"version\":\"3\"},"
		    "{\"key\":\"Sw==\",\"target\":\"VALUE\",\"result\":\"NOT_EQUAL\",\"value\":\"eA==\"},"
		    "{\"key\":\"Sw==\",\"target\":\"LEASE\",\"result\":\"LESS\",\"lease\":\"9\"}],"
		    "\"success\":[{\"request_delete_range\":{\"key\":\"Sw==\",\"prev_kv\":true}},"
		    "{\"request_range\":{\"key\":\"L3Av\",\"range_end\":\"L3Aw\"}}],"
		    "\"failure\":[]}");

	/* a compare over every key under a prefix */
	struct etcd_compare over = { .key = "/p/", .key_len = 3, .target = ETCD_TARGET_VALUE,
				     .result = ETCD_CMP_EQUAL, .value = "v", .value_len = 1,
				     .prefix = true };
	struct etcd_txn_params t3 = { &over, 1, NULL, 0, NULL, 0 };
	expect_json(etcd_json_encode_txn(&t3),
		    "{\"compare\":[{\"key\":\"L3Av\",\"range_end\":\"L3Aw\",\"target\":\"VALUE\","
		    "\"result\":\"EQUAL\",\"value\":\"dg==\"}],\"success\":[],\"failure\":[]}");
}

static void test_encode_lease_misc(void **state)
{
	(void)state;
	expect_json(etcd_json_encode_lease_grant(10, 0), "{\"TTL\":\"10\"}");
	expect_json(etcd_json_encode_lease_grant(6, INT64_C(8705073518577857839)),
		    "{\"TTL\":\"6\",\"ID\":\"" BIG_LEASE "\"}");
	expect_json(etcd_json_encode_lease_id(INT64_C(8705073518577857839)),
		    "{\"ID\":\"" BIG_LEASE "\"}");
	expect_json(etcd_json_encode_lease_timetolive(5, true),
		    "{\"ID\":\"5\",\"keys\":true}");
	expect_json(etcd_json_encode_lease_timetolive(5, false), "{\"ID\":\"5\"}");
	expect_json(etcd_json_encode_compact(26), "{\"revision\":\"26\"}");
	expect_json(etcd_json_encode_status(), "{}");
	char *auth = etcd_json_encode_authenticate("loft", "p\"w\\d");
	assert_string_equal(auth, "{\"name\":\"loft\",\"password\":\"p\\\"w\\\\d\"}");
	xfree_secret(&auth);
}

static void test_encode_watch(void **state)
{
	(void)state;
	struct etcd_watch_params p = { .key = "/loft/", .key_len = 6, .prefix = true };
	expect_json(etcd_json_encode_watch(&p, 0),
		    "{\"create_request\":{\"key\":\"L2xvZnQv\",\"range_end\":\"L2xvZnQw\","
		    "\"prev_kv\":true,\"progress_notify\":true}}");
	expect_json(etcd_json_encode_watch(&p, 3191),
		    "{\"create_request\":{\"key\":\"L2xvZnQv\",\"range_end\":\"L2xvZnQw\","
		    "\"start_revision\":\"3191\",\"prev_kv\":true,\"progress_notify\":true}}");
}

static void test_prefix_end(void **state)
{
	(void)state;
	unsigned char out[8];
	assert_int_equal(etcd_prefix_end("/loft/", 6, out), 6);
	assert_memory_equal(out, "/loft0", 6);
	assert_int_equal(etcd_prefix_end("a\xff", 2, out), 1);
	assert_memory_equal(out, "b", 1);
	assert_int_equal(etcd_prefix_end("a\xfe\xff\xff", 4, out), 2);
	assert_memory_equal(out, "a\xff", 2);
	/* no next prefix: to the end of the keyspace */
	assert_int_equal(etcd_prefix_end("\xff\xff", 2, out), 1);
	assert_int_equal(out[0], 0);
}

/* ---- base64 of every byte value ---- */

static unsigned char *json_field_bytes(const char *text, const char *name, size_t *len_r)
{
	json_t *o = json_loads(text, 0, NULL);
	assert_non_null(o);
	json_t *v = json_object_get(o, name);
	assert_true(json_is_string(v));
	size_t len = json_string_length(v);
	unsigned char *out = xmalloc(BASE64_DECODED_MAX(len));
	long n = base64_decode(json_string_value(v), len, out);
	assert_true(n >= 0);
	*len_r = (size_t)n;
	json_decref(o);
	return out;
}

static void test_base64_every_byte(void **state)
{
	(void)state;
	/* keys of every length 0..256 ending at every byte value, so each
	 * byte lands in each of base64's three positions */
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	for (size_t off = 0; off < 3; off++) {
		size_t len = sizeof(all) - off;
		struct etcd_put_params p = { .key = all + off, .key_len = len,
					     .value = all, .value_len = off + 1 };
		char *body = etcd_json_encode_put(&p);
		size_t got_len;
		unsigned char *got = json_field_bytes(body, "key", &got_len);
		assert_int_equal(got_len, len);
		assert_memory_equal(got, all + off, len);
		free(got);

		/* and back through a range reply */
		struct sbuf reply = SBUF_INIT;
		sbuf_appends(&reply, "{" HDR ",\"kvs\":[{\"key\":\"");
		base64_encode(&reply, all + off, len);
		sbuf_appends(&reply, "\",\"value\":\"");
		base64_encode(&reply, all, off + 1);
		sbuf_appends(&reply, "\",\"mod_revision\":\"4\"}],\"count\":\"1\"}");
		struct etcd_reply r;
		char *error = NULL;
		assert_int_equal(etcd_json_decode_reply(ETCD_CALL_RANGE, sbuf_data(&reply),
							sbuf_len(&reply), &r, &error),
				 ETCD_DECODE_OK);
		assert_int_equal(r.result.op.kv_count, 1);
		assert_int_equal(r.result.op.kvs[0].key_len, len);
		assert_memory_equal(r.result.op.kvs[0].key, all + off, len);
		assert_int_equal(r.result.op.kvs[0].key[len], 0);
		assert_int_equal(r.result.op.kvs[0].value_len, off + 1);
		assert_memory_equal(r.result.op.kvs[0].value, all, off + 1);
		etcd_reply_clear(&r);
		sbuf_free(&reply);
		free(body);
	}
	/* the prefix range of a key holding every byte */
	unsigned char end[256];
	assert_int_equal(etcd_prefix_end(all, 256, end), 255);
	assert_memory_equal(end, all, 254);
	assert_int_equal(end[254], 0xff);
}

/* ---- decoding unary replies ---- */

static void decode_ok(enum etcd_call call, const char *body, struct etcd_reply *r)
{
	char *error = NULL;
	enum etcd_decode d = etcd_json_decode_reply(call, body, strlen(body), r, &error);
	if (d != ETCD_DECODE_OK)
		fail_msg("decode %s: %d %s", body, d, error != NULL ? error : "");
}

static void decode_bad(enum etcd_call call, const char *body, const char *error_part)
{
	struct etcd_reply r;
	char *error = NULL;
	assert_int_equal(etcd_json_decode_reply(call, body, strlen(body), &r, &error),
			 ETCD_DECODE_ERROR);
	assert_non_null(error);
	if (strstr(error, error_part) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", error, error_part);
	free(error);
	/* nothing is left allocated or set */
	assert_null(r.result.op.kvs);
	assert_null(r.token);
}

static void test_decode_range(void **state)
{
	(void)state;
	struct etcd_reply r;
	decode_ok(ETCD_CALL_RANGE,
		  "{" HDR ",\"kvs\":[{\"key\":\"L2xvZnQvYQ==\",\"create_revision\":\"4\","
		  "\"mod_revision\":\"5\",\"version\":\"2\",\"value\":\"dg==\",\"lease\":\""
		  BIG_LEASE "\"},{\"key\":\"L2xvZnQvYg==\",\"create_revision\":\"6\","
		  "\"mod_revision\":\"6\",\"version\":\"1\"}],\"more\":true,\"count\":\"3\"}", &r);
	assert_true(r.result.header.cluster_id == UINT64_C(17897108213992244148));
	assert_true(r.result.header.member_id == UINT64_C(1051911310754735059));
	assert_int_equal(r.result.header.revision, 26);
	assert_int_equal(r.result.header.raft_term, 2);
	assert_int_equal(r.result.op.type, ETCD_OP_RANGE);
	assert_int_equal(r.result.op.revision, 26);
	assert_int_equal(r.result.op.kv_count, 2);
	assert_true(r.result.op.more);
	assert_int_equal(r.result.op.count, 3);
	struct etcd_kv *kv = &r.result.op.kvs[0];
	assert_string_equal((char *)kv->key, "/loft/a");
	assert_string_equal((char *)kv->value, "v");
	assert_int_equal(kv->create_revision, 4);
	assert_int_equal(kv->mod_revision, 5);
	assert_int_equal(kv->version, 2);
	assert_true(kv->lease == INT64_C(8705073518577857839));
	/* an empty value is omitted: "" */
	kv = &r.result.op.kvs[1];
	assert_string_equal((char *)kv->value, "");
	assert_int_equal(kv->value_len, 0);
	assert_int_equal(kv->lease, 0);
	etcd_reply_clear(&r);

	/* nothing found: no kvs, no count */
	decode_ok(ETCD_CALL_RANGE, "{" HDR "}", &r);
	assert_int_equal(r.result.op.kv_count, 0);
	assert_null(r.result.op.kvs);
	assert_int_equal(r.result.op.count, 0);
	assert_false(r.result.op.more);
	etcd_reply_clear(&r);

	/* count_only: a count and no kvs */
	decode_ok(ETCD_CALL_RANGE, "{" HDR ",\"count\":\"3\"}", &r);
	assert_int_equal(r.result.op.count, 3);
	etcd_reply_clear(&r);
}

static void test_decode_put_delete(void **state)
{
	(void)state;
	struct etcd_reply r;
	decode_ok(ETCD_CALL_PUT, "{" HDR "}", &r);
	assert_int_equal(r.result.op.type, ETCD_OP_PUT);
	assert_int_equal(r.result.op.kv_count, 0);
	assert_int_equal(r.result.header.revision, 26);
	etcd_reply_clear(&r);

	decode_ok(ETCD_CALL_PUT, "{" HDR ",\"prev_kv\":{\"key\":\"YQ==\",\"create_revision\":\"2\","
		  "\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"Yg==\"}}", &r);
	assert_int_equal(r.result.op.kv_count, 1);
	assert_string_equal((char *)r.result.op.kvs[0].value, "b");
	etcd_reply_clear(&r);

	decode_ok(ETCD_CALL_DELETE, "{" HDR ",\"deleted\":\"1\",\"prev_kvs\":[{\"key\":\"YQ==\","
		  "\"create_revision\":\"2\",\"mod_revision\":\"3\",\"version\":\"2\","
		  "\"value\":\"Yw==\"}]}", &r);
	assert_int_equal(r.result.op.type, ETCD_OP_DELETE);
	assert_int_equal(r.result.op.deleted, 1);
	assert_int_equal(r.result.op.kv_count, 1);
	assert_int_equal(r.result.op.kvs[0].mod_revision, 3);
	etcd_reply_clear(&r);

	/* a delete that matched nothing has no "deleted" */
	decode_ok(ETCD_CALL_DELETE, "{" HDR "}", &r);
	assert_int_equal(r.result.op.deleted, 0);
	etcd_reply_clear(&r);

	decode_ok(ETCD_CALL_COMPACT, "{" HDR "}", &r);
	assert_int_equal(r.result.header.revision, 26);
	etcd_reply_clear(&r);
}

static void test_decode_txn(void **state)
{
	(void)state;
	struct etcd_reply r;
	decode_ok(ETCD_CALL_TXN, "{" HDR ",\"succeeded\":true,\"responses\":[{\"response_put\":"
		  "{\"header\":{\"revision\":\"13\"}}}]}", &r);
	assert_true(r.result.succeeded);
	assert_int_equal(r.result.response_count, 1);
	assert_int_equal(r.result.responses[0].type, ETCD_OP_PUT);
	assert_int_equal(r.result.responses[0].revision, 13);
	etcd_reply_clear(&r);

	/* failed: no "succeeded" at all */
	decode_ok(ETCD_CALL_TXN, "{" HDR ",\"responses\":[{\"response_range\":{\"header\":"
		  "{\"revision\":\"13\"},\"kvs\":[{\"key\":\"Sw==\",\"create_revision\":\"12\","
		  "\"mod_revision\":\"12\",\"version\":\"1\",\"value\":\"Vg==\"}],\"count\":\"1\"}}]}",
		  &r);
	assert_false(r.result.succeeded);
	assert_int_equal(r.result.response_count, 1);
	struct etcd_op_result *op = &r.result.responses[0];
	assert_int_equal(op->type, ETCD_OP_RANGE);
	assert_int_equal(op->count, 1);
	assert_int_equal(op->kvs[0].create_revision, 12);
	assert_string_equal((char *)op->kvs[0].key, "K");
	etcd_reply_clear(&r);

	/* a failed txn without failure ops has neither field */
	decode_ok(ETCD_CALL_TXN, "{" HDR "}", &r);
	assert_false(r.result.succeeded);
	assert_int_equal(r.result.response_count, 0);
	etcd_reply_clear(&r);

	/* delete and put answers, in order */
	decode_ok(ETCD_CALL_TXN, "{" HDR ",\"succeeded\":true,\"responses\":["
		  "{\"response_delete_range\":{\"header\":{\"revision\":\"4\"},\"deleted\":\"1\","
		  "\"prev_kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"3\"}]}},"
		  "{\"response_put\":{\"header\":{\"revision\":\"4\"}}}]}", &r);
	assert_int_equal(r.result.response_count, 2);
	assert_int_equal(r.result.responses[0].type, ETCD_OP_DELETE);
	assert_int_equal(r.result.responses[0].deleted, 1);
	assert_int_equal(r.result.responses[1].type, ETCD_OP_PUT);
	etcd_reply_clear(&r);

	decode_bad(ETCD_CALL_TXN, "{" HDR ",\"responses\":[{\"response_txn\":{}}]}",
		   "unknown kind");
}

static void test_decode_lease(void **state)
{
	(void)state;
	struct etcd_reply r;
	decode_ok(ETCD_CALL_LEASE_GRANT, "{" HDR ",\"ID\":\"" BIG_LEASE "\",\"TTL\":\"10\"}", &r);
	/* above 2^53: a double would have rounded it */
	assert_true(r.result.lease.id == INT64_C(8705073518577857839));
	assert_int_equal(r.result.lease.ttl, 10);
	etcd_reply_clear(&r);

	/* keepalive answers as a stream */
	decode_ok(ETCD_CALL_LEASE_KEEPALIVE,
		  "{\"result\":{" HDR ",\"ID\":\"" BIG_LEASE "\",\"TTL\":\"5\"}}\n", &r);
	assert_true(r.result.lease.id == INT64_C(8705073518577857839));
	assert_int_equal(r.result.lease.ttl, 5);
	assert_int_equal(r.result.header.revision, 26);
	etcd_reply_clear(&r);
	/* a lease that is gone: no TTL */
	decode_ok(ETCD_CALL_LEASE_KEEPALIVE, "{\"result\":{" HDR ",\"ID\":\"12345\"}}\n", &r);
	assert_int_equal(r.result.lease.id, 12345);
	assert_int_equal(r.result.lease.ttl, 0);
	etcd_reply_clear(&r);
	/* two lines: the first answers */
	decode_ok(ETCD_CALL_LEASE_KEEPALIVE, "{\"result\":{" HDR ",\"ID\":\"1\",\"TTL\":\"5\"}}\n"
		  "{\"result\":{" HDR ",\"ID\":\"2\",\"TTL\":\"6\"}}\n", &r);
	assert_int_equal(r.result.lease.id, 1);
	etcd_reply_clear(&r);
	/* the stream's error object, without a newline */
	char *error = NULL;
	const char *err = "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":"
		"\"etcdserver: no leader\",\"http_status\":\"Service Unavailable\"}}";
	assert_int_equal(etcd_json_decode_reply(ETCD_CALL_LEASE_KEEPALIVE, err, strlen(err),
						&r, &error), ETCD_DECODE_STREAM_ERROR);
	assert_int_equal(r.result.grpc_code, 14);
	assert_int_equal(r.result.http_status, 503);
	assert_string_equal(r.result.error, "etcdserver: no leader");
	etcd_reply_clear(&r);
	decode_bad(ETCD_CALL_LEASE_KEEPALIVE, "{" HDR ",\"ID\":\"1\"}", "no \"result\"");

	decode_ok(ETCD_CALL_LEASE_TIMETOLIVE, "{" HDR ",\"ID\":\"7\",\"TTL\":\"4\","
		  "\"grantedTTL\":\"5\",\"keys\":[\"YQ==\",\"Yg==\"]}", &r);
	assert_int_equal(r.result.lease.ttl, 4);
	assert_int_equal(r.result.lease.granted_ttl, 5);
	assert_int_equal(r.result.lease.key_count, 2);
	assert_string_equal((char *)r.result.lease.keys[1].key, "b");
	etcd_reply_clear(&r);
	decode_ok(ETCD_CALL_LEASE_TIMETOLIVE, "{" HDR ",\"ID\":\"7\",\"TTL\":\"-1\"}", &r);
	assert_int_equal(r.result.lease.ttl, -1);
	assert_int_equal(r.result.lease.key_count, 0);
	etcd_reply_clear(&r);

	decode_ok(ETCD_CALL_LEASE_REVOKE, "{" HDR "}", &r);
	assert_int_equal(r.result.header.revision, 26);
	etcd_reply_clear(&r);
}

static void test_decode_status_auth(void **state)
{
	(void)state;
	struct etcd_reply r;
	decode_ok(ETCD_CALL_STATUS, "{" HDR ",\"version\":\"3.4.23\",\"dbSize\":\"20480\","
		  "\"leader\":\"1051911310754735059\",\"raftIndex\":\"5\",\"raftTerm\":\"2\","
		  "\"raftAppliedIndex\":\"5\",\"dbSizeInUse\":\"16384\"}", &r);
	assert_string_equal(r.result.status.version, "3.4.23");
	assert_int_equal(r.result.status.db_size, 20480);
	assert_int_equal(r.result.status.db_size_in_use, 16384);
	assert_true(r.result.status.leader == UINT64_C(1051911310754735059));
	assert_int_equal(r.result.status.raft_index, 5);
	assert_int_equal(r.result.status.raft_term, 2);
	assert_int_equal(r.result.status.raft_applied_index, 5);
	etcd_reply_clear(&r);

	decode_ok(ETCD_CALL_AUTHENTICATE, "{" HDR ",\"token\":\"pZeLCMtQQdKKKyHz.68\"}", &r);
	assert_string_equal(r.token, "pZeLCMtQQdKKKyHz.68");
	etcd_reply_clear(&r);
	decode_bad(ETCD_CALL_AUTHENTICATE, "{" HDR "}", "no token");
}

static void test_decode_invalid(void **state)
{
	(void)state;
	decode_bad(ETCD_CALL_RANGE, "{" HDR ",\"kvs\":[{\"key\":\"YQ=\"}]}", "not base64");
	decode_bad(ETCD_CALL_RANGE, "{" HDR ",\"kvs\":[{\"key\":\"YQ==\"}],\"count\":\"3x\"}",
		   "\"count\" is not an int64");
	decode_bad(ETCD_CALL_RANGE, "{\"header\":{\"member_id\":\"-1\"}}",
		   "\"member_id\" is not a uint64");
	decode_bad(ETCD_CALL_RANGE, "{" HDR ",\"kvs\":{}}", "wrong type");
	decode_bad(ETCD_CALL_RANGE, "{" HDR ",\"more\":\"yes\"}", "not a boolean");
	decode_bad(ETCD_CALL_RANGE, "{" HDR ",\"kvs\":[1]}", "non-object");
	decode_bad(ETCD_CALL_RANGE, "{" HDR, "invalid JSON");
	decode_bad(ETCD_CALL_RANGE, "[]", "not an object");
	/* a unary reply must be one object */
	decode_bad(ETCD_CALL_RANGE, "{" HDR "}{}", "invalid JSON");
	/* numbers are accepted where etcd writes strings */
	struct etcd_reply r;
	decode_ok(ETCD_CALL_RANGE, "{\"header\":{\"revision\":7},\"count\":2}", &r);
	assert_int_equal(r.result.header.revision, 7);
	assert_int_equal(r.result.op.count, 2);
	etcd_reply_clear(&r);
}

static void test_decode_error(void **state)
{
	(void)state;
	int grpc, http;
	char *msg;
	const char *unary = "{\"error\":\"etcdserver: requested lease not found\","
		"\"message\":\"etcdserver: requested lease not found\",\"code\":5}";
	assert_true(etcd_json_decode_error(unary, strlen(unary), &grpc, &http, &msg));
	assert_int_equal(grpc, 5);
	assert_int_equal(http, 0);
	assert_string_equal(msg, "etcdserver: requested lease not found");
	free(msg);

	const char *stream = "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":"
		"\"etcdserver: no leader\",\"http_status\":\"Service Unavailable\"}}";
	assert_true(etcd_json_decode_error(stream, strlen(stream), &grpc, &http, &msg));
	assert_int_equal(grpc, 14);
	assert_int_equal(http, 503);
	assert_string_equal(msg, "etcdserver: no leader");
	free(msg);

	/* only "error" (no message) still says why */
	const char *bare = "{\"error\":\"grpc: received message larger than max\",\"code\":8}";
	assert_true(etcd_json_decode_error(bare, strlen(bare), &grpc, &http, &msg));
	assert_string_equal(msg, "grpc: received message larger than max");
	free(msg);

	const char *nonsense[] = { "404 page not found\n", "{}", "{\"code\":\"x\"}", "" };
	for (size_t i = 0; i < sizeof(nonsense) / sizeof(nonsense[0]); i++) {
		assert_false(etcd_json_decode_error(nonsense[i], strlen(nonsense[i]),
						    &grpc, &http, &msg));
		assert_null(msg);
	}
}

/* ---- watch messages and the stream ---- */

static const char *const watch_lines[] = {
	/* created, for watch ID 0 (no watch_id) */
	"{\"result\":{" HDR ",\"created\":true}}",
	/* a put (no "type") and a delete, with prev_kv */
	"{\"result\":{\"header\":{\"revision\":\"24\"},\"events\":["
	"{\"kv\":{\"key\":\"L2xvZnQvYQ==\",\"create_revision\":\"23\",\"mod_revision\":\"24\","
	"\"version\":\"2\",\"value\":\"Mg==\"},\"prev_kv\":{\"key\":\"L2xvZnQvYQ==\","
	"\"create_revision\":\"23\",\"mod_revision\":\"23\",\"version\":\"1\",\"value\":\"MQ==\"}},"
	"{\"kv\":{\"key\":\"L2xvZnQvYg==\",\"create_revision\":\"24\",\"mod_revision\":\"24\","
	"\"version\":\"1\"}}]}}",
	"{\"result\":{\"header\":{\"revision\":\"25\"},\"events\":[{\"type\":\"DELETE\","
	"\"kv\":{\"key\":\"L2xvZnQvYQ==\",\"mod_revision\":\"25\"},\"prev_kv\":{\"key\":"
	"\"L2xvZnQvYQ==\",\"create_revision\":\"23\",\"mod_revision\":\"24\",\"version\":\"2\","
	"\"value\":\"Mg==\"}}]}}",
	/* a progress notification */
	"{\"result\":{\"header\":{\"cluster_id\":\"1\",\"revision\":\"3191\",\"raft_term\":\"2\"}}}",
	/* compacted: no revision in the header */
	"{\"result\":{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"raft_term\":\"2\"},"
	"\"canceled\":true,\"compact_revision\":\"26\"}}",
	/* auth on, no token */
	"{\"result\":{" HDR ",\"watch_id\":\"-1\",\"created\":true,\"canceled\":true,"
	"\"cancel_reason\":\"rpc error: code = InvalidArgument desc = etcdserver: user name is empty\"}}",
	/* the final error object */
	"{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\","
	"\"http_status\":\"Service Unavailable\"}}",
};

/* Checks message i of watch_lines. */
static void check_watch_message(size_t i, const struct etcd_watch_message *m)
{
	switch (i) {
	case 0:
		assert_true(m->created);
		assert_false(m->canceled);
		assert_int_equal(m->watch_id, 0);
		assert_int_equal(m->header.revision, 26);
		assert_int_equal(m->event_count, 0);
		break;
	case 1:
		assert_int_equal(m->header.revision, 24);
		assert_int_equal(m->event_count, 2);
		assert_int_equal(m->events[0].type, ETCD_EVENT_PUT);
		assert_string_equal((char *)m->events[0].kv.key, "/loft/a");
		assert_string_equal((char *)m->events[0].kv.value, "2");
		assert_true(m->events[0].has_prev_kv);
		assert_string_equal((char *)m->events[0].prev_kv.value, "1");
		assert_int_equal(m->events[1].type, ETCD_EVENT_PUT);
		assert_false(m->events[1].has_prev_kv);
		assert_int_equal(m->events[1].kv.mod_revision, 24);
		break;
	case 2:
		assert_int_equal(m->event_count, 1);
		assert_int_equal(m->events[0].type, ETCD_EVENT_DELETE);
		assert_int_equal(m->events[0].kv.mod_revision, 25);
		assert_string_equal((char *)m->events[0].kv.value, "");
		assert_true(m->events[0].has_prev_kv);
		assert_int_equal(m->events[0].prev_kv.version, 2);
		break;
	case 3:
		assert_false(m->created || m->canceled || m->is_error);
		assert_int_equal(m->event_count, 0);
		assert_int_equal(m->header.revision, 3191);
		break;
	case 4:
		assert_true(m->canceled);
		assert_int_equal(m->compact_revision, 26);
		assert_int_equal(m->header.revision, 0);
		break;
	case 5:
		assert_true(m->created && m->canceled);
		assert_int_equal(m->watch_id, -1);
		assert_non_null(strstr(m->cancel_reason, "user name is empty"));
		break;
	case 6:
		assert_true(m->is_error);
		assert_int_equal(m->grpc_code, 14);
		assert_int_equal(m->http_code, 503);
		assert_string_equal(m->message, "etcdserver: no leader");
		break;
	default:
		fail();
	}
}

static void test_decode_watch(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(watch_lines) / sizeof(watch_lines[0]); i++) {
		struct etcd_watch_message m;
		char *error = NULL;
		enum etcd_decode d = etcd_json_decode_watch(watch_lines[i],
			strlen(watch_lines[i]), &m, &error);
		if (d == ETCD_DECODE_ERROR)
			fail_msg("line %zu: %s", i, error);
		assert_int_equal(d, i == 6 ? ETCD_DECODE_STREAM_ERROR : ETCD_DECODE_OK);
		check_watch_message(i, &m);
		etcd_watch_message_clear(&m);
	}
	const char *bad[] = {
		"{\"result\":{\"events\":[{\"type\":\"CREATED\",\"kv\":{}}]}}",
		"{\"result\":{\"events\":[{}]}}",
		"{\"answer\":{}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"!!!!\"}}]}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct etcd_watch_message m;
		char *error = NULL;
		assert_int_equal(etcd_json_decode_watch(bad[i], strlen(bad[i]), &m, &error),
				 ETCD_DECODE_ERROR);
		assert_null(m.events);
		free(error);
	}
}

/* The whole watch body: every line but the last ends in "\n". */
static void watch_body(struct sbuf *body)
{
	size_t n = sizeof(watch_lines) / sizeof(watch_lines[0]);
	for (size_t i = 0; i < n; i++) {
		sbuf_appends(body, watch_lines[i]);
		if (i + 1 < n)
			sbuf_appendc(body, '\n');
	}
}

/* Takes every whole line out; at_end also the rest. Returns how many
 * messages were decoded and checked so far. */
static size_t drain_stream(struct etcd_stream *s, bool at_end, size_t seen)
{
	const char *line;
	size_t len;
	while (etcd_stream_next(s, at_end, &line, &len) == PARSE_OK) {
		struct etcd_watch_message m;
		char *error = NULL;
		if (etcd_json_decode_watch(line, len, &m, &error) == ETCD_DECODE_ERROR)
			fail_msg("message %zu: %s", seen, error);
		check_watch_message(seen, &m);
		etcd_watch_message_clear(&m);
		seen++;
	}
	return seen;
}

/* Feeds body in the pieces that end at cuts[], then ends the stream. */
static void feed_split(const struct sbuf *body, const size_t *cuts, size_t ncuts)
{
	size_t n = sizeof(watch_lines) / sizeof(watch_lines[0]);
	struct etcd_stream s;
	etcd_stream_init(&s, 1 << 20);
	size_t pos = 0, seen = 0;
	for (size_t c = 0; c <= ncuts; c++) {
		size_t end = c < ncuts ? cuts[c] : sbuf_len(body);
		assert_int_equal(etcd_stream_feed(&s, sbuf_data(body) + pos, end - pos), 0);
		pos = end;
		seen = drain_stream(&s, false, seen);
	}
	/* the error object has no newline: only the end of the body
	 * releases it */
	assert_int_equal(seen, n - 1);
	seen = drain_stream(&s, true, seen);
	assert_int_equal(seen, n);
	const char *line;
	size_t len;
	assert_int_equal(etcd_stream_next(&s, true, &line, &len), PARSE_MORE);
	etcd_stream_free(&s);
}

static void test_stream_whole_bytewise_split(void **state)
{
	(void)state;
	struct sbuf body = SBUF_INIT;
	watch_body(&body);
	size_t len = sbuf_len(&body);

	feed_split(&body, NULL, 0);

	size_t *cuts = xcalloc(len, sizeof(*cuts));
	for (size_t i = 0; i + 1 < len; i++)
		cuts[i] = i + 1;
	feed_split(&body, cuts, len - 1);

	for (size_t i = 0; i <= len; i++) {
		size_t cut = i;
		feed_split(&body, &cut, 1);
	}
	free(cuts);
	sbuf_free(&body);
}

static void test_stream_keepalive(void **state)
{
	(void)state;
	/* the reference's keepalive bodies, decoded from the stream's lines */
	const char *bodies[] = {
		"{\"result\":{" HDR ",\"ID\":\"" BIG_LEASE "\",\"TTL\":\"5\"}}\n",
		"{\"result\":{" HDR ",\"ID\":\"12345\"}}\n",
		"{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\","
		"\"http_status\":\"Service Unavailable\"}}",
	};
	const int64_t ttls[] = { 5, 0, -1 };
	for (size_t b = 0; b < 3; b++) {
		size_t len = strlen(bodies[b]);
		for (size_t cut = 0; cut <= len; cut++) {
			struct etcd_stream s;
			etcd_stream_init(&s, 1 << 20);
			assert_int_equal(etcd_stream_feed(&s, bodies[b], cut), 0);
			assert_int_equal(etcd_stream_feed(&s, bodies[b] + cut, len - cut), 0);
			const char *line;
			size_t n;
			assert_int_equal(etcd_stream_next(&s, true, &line, &n), PARSE_OK);
			struct etcd_reply r;
			char *error = NULL;
			enum etcd_decode d = etcd_json_decode_reply(ETCD_CALL_LEASE_KEEPALIVE,
				line, n, &r, &error);
			if (ttls[b] < 0) {
				assert_int_equal(d, ETCD_DECODE_STREAM_ERROR);
				assert_int_equal(r.result.grpc_code, 14);
			} else {
				assert_int_equal(d, ETCD_DECODE_OK);
				assert_int_equal(r.result.lease.ttl, ttls[b]);
			}
			etcd_reply_clear(&r);
			assert_int_equal(etcd_stream_next(&s, true, &line, &n), PARSE_MORE);
			etcd_stream_free(&s);
		}
	}
}

static void test_stream_long_lines(void **state)
{
	(void)state;
	/* a history replay's 110 KB line, in 1000-byte chunks */
	struct sbuf line = SBUF_INIT;
	sbuf_appends(&line, "{\"result\":{\"header\":{\"revision\":\"2000\"},\"events\":[");
	for (int i = 0; i < 1000; i++)
		sbuf_appendf(&line, "%s{\"kv\":{\"key\":\"L2xvZnQvYQ==\",\"mod_revision\":\"%d\","
			     "\"value\":\"%s\"}}", i ? "," : "", 1000 + i,
			     "dmFsdWV2YWx1ZXZhbHVldmFsdWV2YWx1ZXZhbHVldmFsdWV2YWx1ZXZhbHVl");
	sbuf_appends(&line, "]}}\n{\"result\":{\"header\":{\"revision\":\"2001\"}}}\n");
	assert_true(sbuf_len(&line) > 100000);

	struct etcd_stream s;
	etcd_stream_init(&s, 1 << 20);
	size_t messages = 0;
	for (size_t pos = 0; pos < sbuf_len(&line); pos += 1000) {
		size_t n = MIN(1000, sbuf_len(&line) - pos);
		assert_int_equal(etcd_stream_feed(&s, sbuf_data(&line) + pos, n), 0);
		const char *l;
		size_t len;
		while (etcd_stream_next(&s, false, &l, &len) == PARSE_OK) {
			struct etcd_watch_message m;
			char *error = NULL;
			assert_int_equal(etcd_json_decode_watch(l, len, &m, &error),
					 ETCD_DECODE_OK);
			assert_int_equal(m.event_count, messages == 0 ? 1000 : 0);
			if (messages == 0)
				assert_int_equal(m.events[999].kv.mod_revision, 1999);
			etcd_watch_message_clear(&m);
			messages++;
		}
	}
	assert_int_equal(messages, 2);
	etcd_stream_free(&s);

	/* a line beyond the limit is refused; blank lines are skipped */
	etcd_stream_init(&s, 64);
	assert_int_equal(etcd_stream_feed(&s, "\n\r\n{}\n", 6), 0);
	const char *l;
	size_t len;
	assert_int_equal(etcd_stream_next(&s, false, &l, &len), PARSE_OK);
	assert_int_equal(len, 2);
	assert_int_equal(etcd_stream_feed(&s, sbuf_data(&line), 64), 0);
	assert_int_equal(etcd_stream_feed(&s, sbuf_data(&line), 1), -1);
	etcd_stream_free(&s);
	sbuf_free(&line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_range),
		cmocka_unit_test(test_encode_put_delete),
		cmocka_unit_test(test_encode_txn),
		cmocka_unit_test(test_encode_lease_misc),
		cmocka_unit_test(test_encode_watch),
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_base64_every_byte),
		cmocka_unit_test(test_decode_range),
		cmocka_unit_test(test_decode_put_delete),
		cmocka_unit_test(test_decode_txn),
		cmocka_unit_test(test_decode_lease),
		cmocka_unit_test(test_decode_status_auth),
		cmocka_unit_test(test_decode_invalid),
		cmocka_unit_test(test_decode_error),
		cmocka_unit_test(test_decode_watch),
		cmocka_unit_test(test_stream_whole_bytewise_split),
		cmocka_unit_test(test_stream_keepalive),
		cmocka_unit_test(test_stream_long_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
