/* Connection endpoints with optional TLS. */
#include "core/conn.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/net.h"
#include "common/sbuf.h"
#include "core/tls.h"

static void conn_event(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	c->fired = what;
	c->cb(c, c->ctx);
}

void conn_init(struct conn *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->read_needs = EV_READ;
	c->write_needs = EV_WRITE;
}

void conn_attach(struct conn *c, struct event_base *base, int fd,
		 conn_event_cb *cb, void *ctx)
{
	conn_init(c);
	c->fd = fd;
	c->cb = cb;
	c->ctx = ctx;
	event_assign(&c->ev, base, fd, EV_PERSIST, conn_event, c);
}

void conn_close(struct conn *c)
{
	if (c->fd < 0)
		return;
	if (c->registered != 0)
		event_del(&c->ev);
	c->registered = 0;
	if (c->ssl != NULL) {
		/* OpenSSL drops from its cache the session of a connection
		 * freed without a close_notify sent, so TLS 1.2 session ids
		 * would never resume; a session that ended in a fatal error
		 * was dropped when the alert went */
		if (SSL_is_init_finished(c->ssl))
			SSL_set_shutdown(c->ssl, SSL_get_shutdown(c->ssl) | SSL_SENT_SHUTDOWN);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd);
	c->fd = -1;
}

void conn_set_interest(struct conn *c, bool want_read, bool want_write)
{
	c->want_read = want_read;
	c->want_write = want_write;
	if (c->fd < 0)
		return;
	short flags = (short)((want_read ? c->read_needs : 0) |
			      (want_write ? c->write_needs : 0));
	if (flags == c->registered)
		return;
	struct event_base *base = event_get_base(&c->ev);
	if (c->registered != 0)
		event_del(&c->ev);
	event_assign(&c->ev, base, c->fd, (short)(flags | EV_PERSIST), conn_event, c);
	if (flags != 0)
		event_add(&c->ev, NULL);
	c->registered = flags;
}

/* Maps an SSL_get_error() result; records which readiness the operation
 * waits for in *needs. */
static ssize_t conn_ssl_result(struct conn *c, int ret, short *needs)
{
	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		*needs = EV_READ;
		return CONN_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		*needs = EV_WRITE;
		return CONN_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			/* an EOF without close_notify is an EOF, as every mail
			 * client and server treats it (errno was cleared
			 * before the call, so a set one is this call's) */
			if (errno == 0)
				return 0;
			c->error = strerror(errno);
			return CONN_ERROR;
		}
		/* fall through */
	default:
		c->error = tls_last_error();
		if (c->error[0] == '\0')
			c->error = "TLS error";
		return CONN_ERROR;
	}
}

ssize_t conn_read(struct conn *c, void *buf, size_t len)
{
	if (c->ssl != NULL) {
		size_t n;
		ERR_clear_error();
		errno = 0;
		int ret = SSL_read_ex(c->ssl, buf, len, &n);
		if (ret == 1) {
			c->read_needs = EV_READ;
			c->bytes_in += n;
			return (ssize_t)n;
		}
		return conn_ssl_result(c, 0, &c->read_needs);
	}
	ssize_t n = read(c->fd, buf, len);
	if (n > 0) {
		c->bytes_in += (uint64_t)n;
		return n;
	}
	if (n == 0)
		return 0;
	if (errno == EAGAIN || errno == EINTR)
		return CONN_AGAIN;
	c->error = strerror(errno);
	return CONN_ERROR;
}

ssize_t conn_write(struct conn *c, const void *buf, size_t len)
{
	if (c->ssl != NULL) {
		size_t n;
		ERR_clear_error();
		errno = 0;
		int ret = SSL_write_ex(c->ssl, buf, len, &n);
		if (ret == 1) {
			c->write_needs = EV_WRITE;
			c->bytes_out += n;
			return (ssize_t)n;
		}
		ssize_t r = conn_ssl_result(c, 0, &c->write_needs);
		if (r == 0) {
			c->error = "TLS connection closed";
			return CONN_ERROR;
		}
		return r;
	}
	ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
	if (n >= 0) {
		c->bytes_out += (uint64_t)n;
		return n;
	}
	if (errno == EAGAIN || errno == EINTR)
		return CONN_AGAIN;
	c->error = strerror(errno);
	return CONN_ERROR;
}

void conn_shutdown_write(struct conn *c)
{
	if (c->fd < 0)
		return;
	if (c->ssl != NULL) {
		/* the TCP write side stays open: OpenSSL may still need to
		 * answer the peer (a key update) while we read */
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl);
		return;
	}
	(void)shutdown(c->fd, SHUT_WR);
}

int conn_tls_start(struct conn *c, SSL_CTX *ctx, bool server, const char *host)
{
	ERR_clear_error();
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		c->error = tls_last_error();
		return CONN_ERROR;
	}
	if (server) {
		SSL_set_accept_state(c->ssl);
		return 0;
	}
	SSL_set_connect_state(c->ssl);
	if (host != NULL && host[0] != '\0') {
		struct ipaddr ip;
		if (ipaddr_parse(host, &ip) == 0) {
			X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
			X509_VERIFY_PARAM_set1_ip_asc(param, host);
		} else {
			/* a copy: the macro casts const away, which clang's
			 * -Wcast-qual refuses */
			char name[256];
			snprintf(name, sizeof(name), "%s", host);
			SSL_set_tlsext_host_name(c->ssl, name);
			SSL_set1_host(c->ssl, host);
		}
	}
	return 0;
}

int conn_handshake(struct conn *c)
{
	ERR_clear_error();
	errno = 0;
	int ret = SSL_do_handshake(c->ssl);
	if (ret == 1) {
		c->read_needs = EV_READ;
		c->write_needs = EV_WRITE;
		return 1;
	}
	/* the handshake uses the read side's needs for its interest */
	ssize_t r = conn_ssl_result(c, ret, &c->read_needs);
	if (r == CONN_AGAIN)
		return CONN_AGAIN;
	if (r == 0) {
		c->error = "connection closed during TLS handshake";
	} else if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
		static __thread char buf[160];
		snprintf(buf, sizeof(buf), "certificate verify failed: %s",
			 X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
		c->error = buf;
	}
	return CONN_ERROR;
}

ssize_t conn_read_sbuf(struct conn *c, struct sbuf *buf, size_t chunk)
{
	char *p = sbuf_reserve(buf, chunk);
	ssize_t n = conn_read(c, p, chunk);
	if (n > 0)
		sbuf_commit(buf, (size_t)n);
	return n;
}

int conn_write_sbuf(struct conn *c, struct sbuf *buf)
{
	while (sbuf_len(buf) > 0) {
		ssize_t n = conn_write(c, sbuf_data(buf), sbuf_len(buf));
		if (n == CONN_AGAIN)
			return 0;
		if (n < 0)
			return -1;
		sbuf_consume(buf, (size_t)n);
	}
	sbuf_release_if_empty(buf);
	return 0;
}
