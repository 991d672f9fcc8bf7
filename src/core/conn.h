/* One end of a proxied session: a non-blocking socket, optionally TLS, and
 * one libevent event whose interest follows what the owner wants to do
 * (read, write) and what OpenSSL needs for it (a TLS read may need the
 * socket writable). The owner gets one callback for any readiness and
 * simply retries what it is waiting for. Embedded in its owner. */
#ifndef LOFT_CORE_CONN_H
#define LOFT_CORE_CONN_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CONN_AGAIN (-2)
#define CONN_ERROR (-1)

struct conn;
typedef void conn_event_cb(struct conn *conn, void *ctx);

struct conn {
	int fd;			/* -1 when closed */
	SSL *ssl;
	struct event ev;
	short registered;	/* flags the event is added with */
	short read_needs;	/* EV_READ, or EV_WRITE during a TLS exchange */
	short write_needs;
	short fired;		/* what the last wakeup reported (EV_READ...);
				 * a consumer may clear what it used */
	bool want_read;
	bool want_write;
	const char *error;	/* why the last operation failed */
	uint64_t bytes_in;	/* application bytes */
	uint64_t bytes_out;
	conn_event_cb *cb;
	void *ctx;
};

void conn_init(struct conn *c);
/* Takes ownership of fd. */
void conn_attach(struct conn *c, struct event_base *base, int fd,
		 conn_event_cb *cb, void *ctx);
/* Closes the socket and frees the TLS state; safe on a closed conn. */
void conn_close(struct conn *c);
static inline bool conn_is_open(const struct conn *c)
{
	return c->fd >= 0;
}

/* Declares what the owner is waiting for; updates the event. */
void conn_set_interest(struct conn *c, bool want_read, bool want_write);

/* >0 bytes, 0 at EOF, CONN_AGAIN or CONN_ERROR (c->error says why). */
ssize_t conn_read(struct conn *c, void *buf, size_t len);
/* >0 bytes written, CONN_AGAIN or CONN_ERROR. */
ssize_t conn_write(struct conn *c, const void *buf, size_t len);

/* This end will send nothing more (the other side of the relay ended its
 * input): TLS sends its close_notify once, plain TCP shuts down its write
 * side. Reading goes on. Best effort: a failure shows at the next read. */
void conn_shutdown_write(struct conn *c);

/* Reads at most `chunk` bytes onto the end of buf: what conn_read()
 * returns (>0, 0 at EOF, CONN_AGAIN or CONN_ERROR). */
struct sbuf;
ssize_t conn_read_sbuf(struct conn *c, struct sbuf *buf, size_t chunk);

/* Writes what buf holds until the socket would block; what was written
 * leaves buf. 0, or -1 on a write error (c->error says why). */
int conn_write_sbuf(struct conn *c, struct sbuf *buf);

/* Starts TLS as server or client; then drive conn_handshake(). host is
 * the name or address to verify (client only, may be NULL). */
int conn_tls_start(struct conn *c, SSL_CTX *ctx, bool server, const char *host);
/* 1 when done, CONN_AGAIN, or CONN_ERROR. */
int conn_handshake(struct conn *c);
static inline bool conn_is_tls(const struct conn *c)
{
	return c->ssl != NULL;
}

#endif
