/* The etcd gateway's JSON, both ways, with no I/O: request bodies, unary
 * replies, streamed messages (watch, keepalive) and error objects
 * (reference/etcd-gateway.md §2). Keys and values travel as padded
 * base64; int64 fields arrive as strings and are never read through a
 * double (lease IDs exceed 2^53); a field whose value is zero, false or
 * empty is absent and reads as 0, false, empty. Private to src/ring. */
#ifndef LOFT_RING_ETCD_JSON_H
#define LOFT_RING_ETCD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring/etcd.h"

/* Every unary call the client makes. */
enum etcd_call {
	ETCD_CALL_RANGE,
	ETCD_CALL_PUT,
	ETCD_CALL_DELETE,
	ETCD_CALL_TXN,
	ETCD_CALL_COMPACT,
	ETCD_CALL_LEASE_GRANT,
	ETCD_CALL_LEASE_KEEPALIVE,
	ETCD_CALL_LEASE_REVOKE,
	ETCD_CALL_LEASE_TIMETOLIVE,
	ETCD_CALL_STATUS,
	ETCD_CALL_AUTHENTICATE,
	ETCD_CALL_COUNT
};

/* A decoded unary reply: the caller's result and what only the client
 * needs. */
struct etcd_reply {
	struct etcd_result result;
	char *token;		/* authenticate */
	char *error;		/* what result.error points to */
};

struct etcd_call_info {
	const char *name;	/* for error texts: "put", "lease keepalive" */
	const char *path;
	/* a read (or a renewal): retried on the next endpoint after any
	 * failure, since doing it twice changes nothing */
	bool idempotent;
	/* sent without waiting for a token (etcd renews leases without
	 * one, and a keepalive must not wait behind authentication) */
	bool no_auth;
	/* the reply is a stream ({"result":...} lines, or an error object) */
	bool stream;
};
extern const struct etcd_call_info etcd_calls[ETCD_CALL_COUNT];

/* Request bodies: NUL-terminated JSON, freed with free(). */
char *etcd_json_encode_range(const struct etcd_range_params *p);
char *etcd_json_encode_put(const struct etcd_put_params *p);
char *etcd_json_encode_delete(const struct etcd_delete_params *p);
char *etcd_json_encode_txn(const struct etcd_txn_params *p);
char *etcd_json_encode_compact(int64_t revision);
char *etcd_json_encode_lease_grant(int64_t ttl, int64_t id);
/* keepalive and revoke: {"ID":"id"} */
char *etcd_json_encode_lease_id(int64_t id);
char *etcd_json_encode_lease_timetolive(int64_t id, bool keys);
char *etcd_json_encode_status(void);
/* holds the password: free it with xfree_secret() */
char *etcd_json_encode_authenticate(const char *user, const char *password);
/* the watch's create_request, with prev_kv and progress_notify */
char *etcd_json_encode_watch(const struct etcd_watch_params *p,
			     int64_t start_revision);


enum etcd_decode {
	ETCD_DECODE_OK,
	ETCD_DECODE_ERROR,	/* not the JSON expected; *error_r says why */
	/* a stream's final error object; grpc_code, http_status and error
	 * are set in the result */
	ETCD_DECODE_STREAM_ERROR,
};

/* Decodes a 200 reply to call into reply (cleared first). */
enum etcd_decode etcd_json_decode_reply(enum etcd_call call, const char *body,
					size_t len, struct etcd_reply *reply,
					char **error_r);
void etcd_reply_clear(struct etcd_reply *reply);

/* An error body: a unary one ({"error","message","code"}) or a stream's
 * ({"error":{"grpc_code","http_code","message",...}}). false when body is
 * neither; *message_r is then NULL. http_code_r is 0 for unary ones. */
bool etcd_json_decode_error(const char *body, size_t len, int *grpc_code_r,
			    int *http_code_r, char **message_r);

/* One message of a watch stream. */
struct etcd_watch_message {
	bool is_error;		/* the final error object */
	int grpc_code;		/* is_error */
	int http_code;
	char *message;		/* is_error */
	struct etcd_header header;
	int64_t watch_id;
	bool created;
	bool canceled;
	int64_t compact_revision;
	char *cancel_reason;
	struct etcd_event *events;
	size_t event_count;
};

enum etcd_decode etcd_json_decode_watch(const char *line, size_t len,
					struct etcd_watch_message *msg,
					char **error_r);
void etcd_watch_message_clear(struct etcd_watch_message *msg);

void etcd_kvs_free(struct etcd_kv **kvs, size_t count);

#endif
