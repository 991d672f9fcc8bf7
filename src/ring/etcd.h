/* An etcd v3 client for loftd's event loop: unary requests and watches
 * over etcd's HTTP/JSON gateway (/v3/...), with libevent's evhttp client
 * and jansson, never blocking the loop (reference/etcd-gateway.md).
 *
 * Function names follow the gateway's paths (/v3/kv/range is
 * etcd_kv_range(), /v3/lease/grant etcd_lease_grant()), so the reference
 * and etcd's documentation map onto this API one to one.
 *
 * Outcomes. Every request ends in exactly one callback, on a later loop
 * turn, with one of:
 * - ETCD_OK: etcd answered and did it;
 * - ETCD_FAILED: a definite no, nothing was done: etcd refused (lease not
 *   found, permission denied, compacted revision, a bad request), or the
 *   request never reached a member (every endpoint refused the connection
 *   or had no leader);
 * - ETCD_UNKNOWN: it may or may not have been done (a timeout, a lost
 *   connection, a 5xx "request timed out" / "leader changed"). A write that
 *   timed out can still commit seconds later, after newer writes: the
 *   caller re-reads and retries its compare-and-swap, never a blind write.
 *
 * Endpoints. All requests go to the current endpoint; a refused or failed
 * connection, a timeout or a "no leader" answer moves it to the next one.
 * A request that was certainly not executed (refused connection, "no
 * leader") is retried at once on the next endpoint within its deadline,
 * and so is a read that failed in any way; a write that may have reached
 * etcd is not retried. The result names the endpoint that answered.
 *
 * Every request carries "Grpc-Metadata-hasleader: true", so an isolated
 * member answers "no leader" instead of stale data, and its watches end.
 *
 * Connections. evhttp runs one request at a time per connection, so every
 * request in flight has a connection of its own (idle ones are kept for
 * reuse), and every watch has its own long-lived connection: a slow write
 * never delays a keepalive.
 *
 * Ownership. The client belongs to its creator; requests and watches to
 * the client (the caller holds handles). Results and watch updates, and
 * everything they point to, live only during the callback: copy what is
 * kept. Callbacks run from the client's own events, never inside a call
 * into this API; a callback may cancel requests, free watches and free
 * the client. This code never logs: everything is in the results. */
#ifndef LOFT_RING_ETCD_H
#define LOFT_RING_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define ETCD_DEFAULT_REQUEST_TIMEOUT_MSECS 2000
#define ETCD_DEFAULT_WATCH_IDLE_MSECS 3500
#define ETCD_DEFAULT_MAX_MESSAGE_SIZE (64u * 1024 * 1024)
#define ETCD_MAX_ENDPOINTS 32

struct etcd_settings {
	/* "http://ip:port" or "https://host:port"; at least one */
	const char *const *endpoints;
	unsigned int endpoint_count;
	/* token authentication when user is set */
	const char *user;
	const char *password;
	/* https endpoints: the CA to verify etcd with (NULL: the system's),
	 * and an optional client certificate and key (--client-cert-auth) */
	const char *tls_ca_file;
	const char *tls_cert_file;
	const char *tls_key_file;
	/* connect from this local address (NULL: the kernel chooses) */
	const char *source_address;
	/* a request's deadline, failover included; 0: the default */
	unsigned int request_timeout_msecs;
	/* a watch that received nothing, not even a progress notification,
	 * for this long is dead and resumes elsewhere; 0: the default. etcd
	 * sends progress notifications only with
	 * --experimental-watch-progress-notify-interval (1 s recommended). */
	unsigned int watch_idle_timeout_msecs;
	/* the largest reply or watch message accepted; 0: the default */
	size_t max_message_size;
};

struct etcd_client *etcd_client_new(struct event_base *base,
				    const struct etcd_settings *settings,
				    char **error_r);
/* Cancels every request (no callbacks) and frees every watch. */
void etcd_client_free(struct etcd_client **client);
/* The endpoint the next request goes to. */
const char *etcd_client_get_endpoint(const struct etcd_client *client);
/* Frozen (reason set): every request but a lease renewal fails at once
 * with the reason, on a later turn, nothing sent (a failsafe binding,
 * doc/ring.md §13); NULL: thawed. Watches are the caller's to stop. */
void etcd_client_set_frozen(struct etcd_client *client, const char *reason);

/* ---- results ---- */

enum etcd_outcome {
	ETCD_OK,
	ETCD_FAILED,
	ETCD_UNKNOWN,
};
extern const char *const etcd_outcome_names[];	/* "OK", "FAILED", "UNKNOWN" */

/* etcd leaves out every field whose value is zero, false or empty; here
 * they are 0, false, NULL. */
struct etcd_header {
	uint64_t cluster_id;
	uint64_t member_id;
	int64_t revision;
	uint64_t raft_term;
};

struct etcd_kv {
	unsigned char *key;	/* NUL-terminated (keys may hold NULs too) */
	size_t key_len;
	unsigned char *value;	/* NUL-terminated; "" when empty */
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease;
};

enum etcd_op_type {
	ETCD_OP_RANGE,
	ETCD_OP_PUT,
	ETCD_OP_DELETE,
};

/* The answer to a range, put or delete, alone or inside a txn. */
struct etcd_op_result {
	enum etcd_op_type type;
	int64_t revision;	/* its header's revision */
	/* RANGE: the kvs; PUT: the previous kv (with prev_kv, if any);
	 * DELETE: the deleted kvs (with prev_kv) */
	struct etcd_kv *kvs;
	size_t kv_count;
	int64_t count;		/* RANGE: how many keys are in the range */
	bool more;		/* RANGE: the limit cut the answer short */
	int64_t deleted;	/* DELETE */
};

struct etcd_lease_result {
	int64_t id;
	/* seconds left; keepalive: the renewed TTL; timetolive: -1 when the
	 * lease is gone */
	int64_t ttl;
	int64_t granted_ttl;	/* timetolive */
	struct etcd_kv *keys;	/* timetolive with keys: only key is set */
	size_t key_count;
};

struct etcd_status_result {
	char *version;
	int64_t db_size;
	int64_t db_size_in_use;
	uint64_t leader;
	uint64_t raft_index;
	uint64_t raft_term;
	uint64_t raft_applied_index;
};

struct etcd_result {
	enum etcd_outcome outcome;
	/* the endpoint that answered, or the last one tried */
	const char *endpoint;
	int http_status;	/* 0 when no HTTP answer came */
	int grpc_code;		/* FAILED/UNKNOWN: etcd's code (14 unavailable...) */
	const char *error;	/* FAILED/UNKNOWN: why; NULL when OK */
	struct etcd_header header;
	struct etcd_op_result op;	/* range, put, delete */
	bool succeeded;			/* txn: the compares held */
	struct etcd_op_result *responses;	/* txn: one per op run */
	size_t response_count;
	struct etcd_lease_result lease;	/* lease requests */
	struct etcd_status_result status;	/* maintenance status */
};

typedef void etcd_result_cb(const struct etcd_result *result, void *ctx);

/* A request in flight. The handle is valid until its callback returns. */
struct etcd_request;
/* The callback will not be called. What was sent may still be done. */
void etcd_request_cancel(struct etcd_request **request);

/* ---- requests ---- */

struct etcd_range_params {
	const void *key;
	size_t key_len;
	/* NULL: the key alone (unless prefix) */
	const void *range_end;
	size_t range_end_len;
	bool prefix;		/* every key that starts with key */
	int64_t revision;	/* 0: the newest */
	int64_t limit;		/* 0: no limit */
	bool keys_only;
	bool count_only;
	bool serializable;	/* the member's own, possibly stale, view */
};

struct etcd_put_params {
	const void *key;
	size_t key_len;
	const void *value;
	size_t value_len;
	int64_t lease;		/* 0: none */
	bool prev_kv;
};

struct etcd_delete_params {
	const void *key;
	size_t key_len;
	const void *range_end;
	size_t range_end_len;
	bool prefix;
	bool prev_kv;
};

enum etcd_compare_target {
	ETCD_TARGET_VERSION,
	ETCD_TARGET_CREATE,	/* create_revision; 0: the key is absent */
	ETCD_TARGET_MOD,	/* mod_revision */
	ETCD_TARGET_VALUE,
	ETCD_TARGET_LEASE,
};

enum etcd_compare_result {
	ETCD_CMP_EQUAL,
	ETCD_CMP_GREATER,
	ETCD_CMP_LESS,
	ETCD_CMP_NOT_EQUAL,
};

struct etcd_compare {
	const void *key;
	size_t key_len;
	enum etcd_compare_target target;
	enum etcd_compare_result result;
	int64_t number;		/* VERSION, CREATE, MOD, LEASE */
	const void *value;	/* VALUE */
	size_t value_len;
	/* every key that starts with key must pass (etcd 3.3+'s range_end);
	 * none there: CREATE, MOD, VERSION, LEASE compare as 0, and VALUE
	 * fails */
	bool prefix;
};

struct etcd_op {
	enum etcd_op_type type;
	union {
		struct etcd_range_params range;
		struct etcd_put_params put;
		struct etcd_delete_params del;
	} u;
};

/* If every compare holds, the success ops run, else the failure ops; all
 * at one revision. etcd takes at most 128 ops. */
struct etcd_txn_params {
	const struct etcd_compare *compares;
	size_t compare_count;
	const struct etcd_op *success;
	size_t success_count;
	const struct etcd_op *failure;
	size_t failure_count;
};

/* The end of the range of every key that starts with prefix (etcd's
 * GetPrefixRangeEnd): the prefix with its last byte below 0xff incremented
 * and what follows cut; "\0" (to the end of the keyspace) when there is
 * none. out holds at least max(len, 1) bytes. Returns the length. */
size_t etcd_prefix_end(const void *prefix, size_t len, unsigned char *out);

struct etcd_request *etcd_kv_range(struct etcd_client *client,
				   const struct etcd_range_params *params,
				   etcd_result_cb *cb, void *ctx);
struct etcd_request *etcd_kv_put(struct etcd_client *client,
				 const struct etcd_put_params *params,
				 etcd_result_cb *cb, void *ctx);
struct etcd_request *etcd_kv_delete(struct etcd_client *client,
				    const struct etcd_delete_params *params,
				    etcd_result_cb *cb, void *ctx);
struct etcd_request *etcd_kv_txn(struct etcd_client *client,
				 const struct etcd_txn_params *params,
				 etcd_result_cb *cb, void *ctx);
/* Forgets the history before revision (tests, maintenance). */
struct etcd_request *etcd_kv_compact(struct etcd_client *client,
				     int64_t revision, etcd_result_cb *cb,
				     void *ctx);

/* ttl in seconds (etcd raises it to at least 2); id 0: etcd chooses. */
struct etcd_request *etcd_lease_grant(struct etcd_client *client, int64_t ttl,
				      int64_t id, etcd_result_cb *cb, void *ctx);
/* One renewal on a connection of its own. A lease that is gone (expired,
 * revoked, unknown) is FAILED with grpc_code 5, like revoke's answer. */
struct etcd_request *etcd_lease_keepalive(struct etcd_client *client,
					  int64_t id, etcd_result_cb *cb,
					  void *ctx);
/* The lease's keys are deleted at once. */
struct etcd_request *etcd_lease_revoke(struct etcd_client *client, int64_t id,
				       etcd_result_cb *cb, void *ctx);
struct etcd_request *etcd_lease_timetolive(struct etcd_client *client,
					   int64_t id, bool keys,
					   etcd_result_cb *cb, void *ctx);
/* The status of the member that answers (version, leader, raft term). */
struct etcd_request *etcd_maintenance_status(struct etcd_client *client,
					     etcd_result_cb *cb, void *ctx);

/* ---- watches ---- */

enum etcd_event_type {
	ETCD_EVENT_PUT,
	ETCD_EVENT_DELETE,
};

struct etcd_event {
	enum etcd_event_type type;
	struct etcd_kv kv;	/* DELETE: key and mod_revision only */
	struct etcd_kv prev_kv;
	bool has_prev_kv;
};

enum etcd_watch_kind {
	/* the stream is (re)established; revision: etcd's at that moment */
	ETCD_WATCH_CREATED,
	/* events, in revision order, each delivered once */
	ETCD_WATCH_EVENTS,
	/* nothing changed up to revision (a progress notification) */
	ETCD_WATCH_PROGRESS,
	/* the stream broke (reason); the watch resumes on the next endpoint
	 * from the revision after the last one delivered */
	ETCD_WATCH_LOST,
	/* final: the revision to start from was compacted away
	 * (compact_revision). Re-read with a range and watch again from its
	 * header.revision + 1. */
	ETCD_WATCH_COMPACTED,
	/* final: etcd canceled the watch (reason), e.g. permission denied */
	ETCD_WATCH_CANCELED,
};
extern const char *const etcd_watch_kind_names[];

struct etcd_watch_update {
	enum etcd_watch_kind kind;
	const char *endpoint;
	/* the message's header revision. For EVENTS it can run ahead of the
	 * events while etcd replays history: the point up to which
	 * everything was delivered is etcd_watch_get_revision(). */
	int64_t revision;
	const struct etcd_event *events;
	size_t event_count;
	int64_t compact_revision;	/* COMPACTED */
	const char *reason;		/* LOST, CANCELED */
};

typedef void etcd_watch_cb(const struct etcd_watch_update *update, void *ctx);

struct etcd_watch_params {
	const void *key;
	size_t key_len;
	const void *range_end;
	size_t range_end_len;
	bool prefix;
	/* the first revision to deliver; 0: from now on */
	int64_t start_revision;
};

/* Starts watching with prev_kv and progress notifications. After
 * COMPACTED or CANCELED the watch does nothing more; free it. */
struct etcd_watch *etcd_watch_start(struct etcd_client *client,
				    const struct etcd_watch_params *params,
				    etcd_watch_cb *cb, void *ctx);
/* Every event up to this revision has been delivered (0: none known
 * yet). */
int64_t etcd_watch_get_revision(const struct etcd_watch *watch);
void etcd_watch_free(struct etcd_watch **watch);

#endif
