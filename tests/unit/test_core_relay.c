/* Unit tests for src/core/relay and conn: bytes through the relay between
 * socket pairs, both with splice() (plain) and with buffers, larger than
 * many pipe loads so the yield path runs; head bytes first; a watched
 * direction; the backend's EOF ends it, the client's is passed on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <event2/event.h>

#include "common/xmalloc.h"
#include "core/conn.h"
#include "core/relay.h"

struct relay_test {
	struct event_base *base;
	struct conn client, backend;	/* loft's ends */
	int client_peer, backend_peer;	/* the test's ends */
	struct relay relay;
	struct relay_pools *pools;
	int result;
	enum relay_end end;
	const char *reason;
	size_t watched;		/* bytes the watch saw */
	char last[64];		/* the end of what it saw last */
	struct event *again;
};

static void relay_test_pump(struct relay_test *t)
{
	if (t->result < 0)
		return;
	t->result = relay_pump(&t->relay, &t->end, &t->reason);
	if (t->result > 0)
		event_active(t->again, EV_TIMEOUT, 1);
	if (t->result < 0) {
		/* as the session does when it closes */
		conn_set_interest(&t->client, false, false);
		conn_set_interest(&t->backend, false, false);
	}
}

/* One pass over ready events (EVLOOP_NONBLOCK alone keeps looping while
 * callbacks stay active). */
static void relay_test_turn(struct relay_test *t)
{
	event_base_loop(t->base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
}

static void relay_test_event(struct conn *c, void *ctx)
{
	(void)c;
	relay_test_pump(ctx);
}

static void relay_test_again(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	relay_test_pump(arg);
}

static void relay_test_init(struct relay_test *t, struct sbuf *to_client,
			    struct sbuf *to_backend)
{
	int a[2], b[2];
	memset(t, 0, sizeof(*t));
	t->base = event_base_new();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
	conn_attach(&t->client, t->base, a[0], relay_test_event, t);
	conn_attach(&t->backend, t->base, b[0], relay_test_event, t);
	t->client_peer = a[1];
	t->backend_peer = b[1];
	t->again = event_new(t->base, -1, 0, relay_test_again, t);
	t->pools = relay_pools_new();
	relay_start(&t->relay, t->pools, &t->client, &t->backend, to_client, to_backend);
	relay_test_pump(t);
}

static void relay_test_deinit(struct relay_test *t)
{
	relay_stop(&t->relay);
	relay_pools_free(&t->pools);
	conn_close(&t->client);
	conn_close(&t->backend);
	close(t->client_peer);
	close(t->backend_peer);
	event_free(t->again);
	event_base_free(t->base);
}

/* Writes `len` bytes into `in_fd` and reads them back from `out_fd`,
 * running the loop meanwhile; returns what arrived. */
static unsigned char *relay_test_transfer(struct relay_test *t, int in_fd, int out_fd,
					  const unsigned char *data, size_t len,
					  size_t *got_r)
{
	unsigned char *got = xmalloc(len + 1);
	size_t sent = 0, recvd = 0;
	for (int spins = 0; recvd < len && spins < 200000; spins++) {
		if (sent < len) {
			ssize_t n = write(in_fd, data + sent, len - sent);
			if (n > 0)
				sent += (size_t)n;
		}
		relay_test_turn(t);
		ssize_t n = read(out_fd, got + recvd, len - recvd);
		if (n > 0)
			recvd += (size_t)n;
	}
	*got_r = recvd;
	return got;
}

static void relay_test_watch(void *ctx, const char *data, size_t len)
{
	struct relay_test *t = ctx;
	t->watched += len;
	size_t n = MIN(len, sizeof(t->last) - 1);
	memcpy(t->last, data + len - n, n);
	t->last[n] = '\0';
}

static void run_relay(bool tls_like_copy, bool watched)
{
	struct sbuf to_client = SBUF_INIT, to_backend = SBUF_INIT;
	sbuf_appends(&to_client, "a OK logged in\r\n");
	sbuf_appends(&to_backend, "b SELECT INBOX\r\n");
	struct relay_test t;
	relay_test_init(&t, &to_client, &to_backend);
	if (watched)
		relay_watch(&t.relay, relay_test_watch, &t);
	if (tls_like_copy) {
		t.relay.up.splice = false;
		t.relay.down.splice = false;
	}
	assert_true(sbuf_is_empty(&to_client));

	/* the login phase's leftovers arrive first */
	size_t got_len;
	unsigned char *got = relay_test_transfer(&t, t.client_peer, t.backend_peer,
						 (const unsigned char *)"", 0, &got_len);
	free(got);
	char head[64] = { 0 };
	for (int i = 0; i < 1000 && strlen(head) < 16; i++) {
		relay_test_turn(&t);
		ssize_t n = read(t.backend_peer, head + strlen(head), 16 - strlen(head));
		(void)n;
	}
	assert_string_equal(head, "b SELECT INBOX\r\n");

	/* 3 MB each way: many pipe loads and yields */
	size_t len = 3 * 1024 * 1024;
	unsigned char *data = xmalloc(len);
	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 7 + i / 4096);
	got = relay_test_transfer(&t, t.client_peer, t.backend_peer, data, len, &got_len);
	assert_int_equal(got_len, len);
	assert_memory_equal(got, data, len);
	free(got);
	char greeting[17] = { 0 };
	for (int i = 0; i < 1000 && strlen(greeting) < 16; i++) {
		relay_test_turn(&t);
		ssize_t n = read(t.client_peer, greeting + strlen(greeting),
				 16 - strlen(greeting));
		(void)n;
	}
	assert_string_equal(greeting, "a OK logged in\r\n");
	got = relay_test_transfer(&t, t.backend_peer, t.client_peer, data, len, &got_len);
	assert_int_equal(got_len, len);
	assert_memory_equal(got, data, len);
	free(got);
	free(data);
	assert_int_equal(t.client.bytes_in, len);
	assert_int_equal(t.backend.bytes_out, len + 16);
	/* the pools count what was delivered each way, leftovers included */
	uint64_t delivered_up, delivered_down;
	relay_pools_bytes(t.pools, &delivered_up, &delivered_down);
	assert_int_equal(delivered_up, len + 16);
	assert_int_equal(delivered_down, len + 16);
	/* a watched direction copies while the client is not streaming:
	 * the watch saw the reads that came up short, never more than all */
	if (watched)
		assert_true(t.watched > 0 && t.watched <= len);
	else
		assert_int_equal(t.watched, 0);

	/* an idle relay holds no pipe and no buffer */
	assert_int_equal(t.relay.up.pipe_r, -1);
	assert_null(t.relay.up.buf);
	assert_int_equal(t.relay.down.pipe_r, -1);
	assert_null(t.relay.down.buf);

	/* the backend closing ends the session after its last bytes */
	assert_int_equal(write(t.backend_peer, "* BYE\r\n", 7), 7);
	shutdown(t.backend_peer, SHUT_WR);
	for (int i = 0; i < 1000 && t.result >= 0; i++)
		relay_test_turn(&t);
	assert_int_equal(t.result, -1);
	assert_int_equal(t.end, RELAY_END_BACKEND);
	assert_string_equal(t.reason, "disconnected by backend");
	char bye[8] = { 0 };
	assert_int_equal(read(t.client_peer, bye, 7), 7);
	assert_string_equal(bye, "* BYE\r\n");
	relay_test_deinit(&t);
}

static void test_relay_splice(void **state)
{
	(void)state;
	run_relay(false, false);
}

static void test_relay_copy(void **state)
{
	(void)state;
	run_relay(true, false);
}

static void test_relay_watched(void **state)
{
	(void)state;
	run_relay(false, true);
}

/* Reads what the peer got until EOF (or nothing more comes). */
static size_t relay_test_read_all(struct relay_test *t, int fd, char *buf, size_t size,
				  bool *eof_r)
{
	size_t got = 0;
	*eof_r = false;
	for (int i = 0; i < 2000 && !*eof_r && got < size - 1; i++) {
		relay_test_turn(t);
		ssize_t n = read(fd, buf + got, size - 1 - got);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0)
			*eof_r = true;
	}
	buf[got] = '\0';
	return got;
}

/* B9: a client that sends its last command and half-closes still gets
 * the backend's answer; the backend hears the end of the client's input,
 * and the relay ends when the backend closes. The watch saw the command. */
static void run_half_close(bool tls_like_copy)
{
	struct sbuf a = SBUF_INIT, b = SBUF_INIT;
	struct relay_test t;
	relay_test_init(&t, &a, &b);
	relay_watch(&t.relay, relay_test_watch, &t);
	if (tls_like_copy)
		t.relay.up.splice = t.relay.down.splice = false;
	assert_int_equal(write(t.client_peer, "a LOGOUT\r\n", 10), 10);
	assert_int_equal(shutdown(t.client_peer, SHUT_WR), 0);
	char buf[128];
	bool eof;
	relay_test_read_all(&t, t.backend_peer, buf, sizeof(buf), &eof);
	assert_string_equal(buf, "a LOGOUT\r\n");
	assert_true(eof);		/* the end of input was passed on */
	assert_int_equal(t.result, 0);	/* ... and the session goes on */
	assert_true(relay_client_done(&t.relay));
	assert_string_equal(t.last, "a LOGOUT\r\n");
	const char *reply = "* BYE Logging out\r\na OK Logout completed.\r\n";
	assert_int_equal(write(t.backend_peer, reply, strlen(reply)), (ssize_t)strlen(reply));
	close(t.backend_peer);
	t.backend_peer = dup(0);
	relay_test_read_all(&t, t.client_peer, buf, sizeof(buf), &eof);
	assert_string_equal(buf, reply);
	assert_int_equal(t.result, -1);
	assert_int_equal(t.end, RELAY_END_CLIENT);
	relay_test_deinit(&t);
}

static void test_relay_half_close(void **state)
{
	(void)state;
	run_half_close(false);
}

static void test_relay_half_close_copy(void **state)
{
	(void)state;
	run_half_close(true);
}

/* A client that streams fills the pipe; the pipe grows to a megabyte,
 * and every byte still arrives in order. */
static void test_relay_bulk_pipe_grows(void **state)
{
	(void)state;
	struct sbuf a = SBUF_INIT, b = SBUF_INIT;
	struct relay_test t;
	relay_test_init(&t, &a, &b);
	size_t len = 4 * 1024 * 1024, sent = 0, recvd = 0;
	unsigned char *data = xmalloc(len), *got = xmalloc(len);
	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 13 + i / 65536);
	bool grew = false;
	/* fill the client socket before the relay runs, then drain slowly
	 * so the pipe is still held when it is looked at */
	for (int spins = 0; recvd < len && spins < 200000; spins++) {
		ssize_t n = write(t.client_peer, data + sent, len - sent);
		if (n > 0)
			sent += (size_t)n;
		relay_test_turn(&t);
		grew = grew || t.relay.up.pipe_size == RELAY_PIPE_BULK_SIZE;
		n = read(t.backend_peer, got + recvd, MIN(len - recvd, 4096));
		if (n > 0)
			recvd += (size_t)n;
	}
	assert_true(grew);
	assert_int_equal(recvd, len);
	assert_memory_equal(got, data, len);
	assert_int_equal(t.result, 0);
	free(data);
	free(got);
	relay_test_deinit(&t);
}

static void test_relay_client_reset(void **state)
{
	(void)state;
	struct sbuf a = SBUF_INIT, b = SBUF_INIT;
	struct relay_test t;
	relay_test_init(&t, &a, &b);
	close(t.client_peer);
	t.client_peer = -1;
	/* the backend hears the end; the session ends when it closes too */
	char buf[8];
	bool eof;
	relay_test_read_all(&t, t.backend_peer, buf, sizeof(buf), &eof);
	assert_true(eof);
	close(t.backend_peer);
	t.backend_peer = dup(0);
	for (int i = 0; i < 1000 && t.result >= 0; i++)
		relay_test_turn(&t);
	assert_int_equal(t.result, -1);
	assert_int_equal(t.end, RELAY_END_CLIENT);
	assert_string_equal(t.reason, "disconnected by client");
	t.client_peer = dup(0);
	relay_test_deinit(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relay_splice),
		cmocka_unit_test(test_relay_copy),
		cmocka_unit_test(test_relay_watched),
		cmocka_unit_test(test_relay_half_close),
		cmocka_unit_test(test_relay_half_close_copy),
		cmocka_unit_test(test_relay_bulk_pipe_grows),
		cmocka_unit_test(test_relay_client_reset),
	};
	return cmocka_run_group_tests_name("core_relay", tests, NULL, NULL);
}
