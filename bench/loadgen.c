/* The benchmark's IMAP and LMTP load generator: event-driven, one
 * thread, so that two cores can load a C proxy (Python clients could not).
 *
 *   loadgen cycle|idle|bulk|lmtp -t ip:port[,ip:port...] [options]
 *
 *   cycle  -c clients each loop: connect, greeting, LOGIN, LOGOUT, close,
 *          for -d seconds; cycles/s and latency p50/p95/p99/p99.9.
 *          -A rate: an open loop instead: new cycles start at rate per
 *          second (Poisson arrivals, or evenly spaced with -E) whatever
 *          the earlier ones do, at most -c in flight: an arrival that
 *          finds -c open is dropped, one started more than 1 ms after its
 *          time is late (the generator fell behind). Latency counts from
 *          the arrival's scheduled time, so a slow proxy cannot hide its
 *          wait by holding the clients back (coordinated omission).
 *   idle   -c sessions logged in and held (user<i> for the i-th, from the
 *          -S source addresses so ports never run out); prints
 *          "READY <sessions> <errors>" when all are in, holds them until
 *          stdin closes, SIGTERM or -d seconds, then logs them out (a
 *          stdin that cannot be waited for, such as /dev/null or a file,
 *          is not: -d seconds, or none without -d)
 *   bulk   -c connections log in, SELECT INBOX and FETCH 1 BODY.PEEK[]
 *          in a loop for -d seconds; MB/s of message bytes
 *   lmtp   -c connections each: greeting, LHLO, then -x transactions and
 *          QUIT, over again for -d seconds. A transaction pipelines MAIL,
 *          -r RCPTs (distinct random user1..userN@bench.test, -u N) and
 *          DATA as an MTA does, then sends a -m byte message (dot-stuffed:
 *          some lines start with a dot) and reads one reply per recipient.
 *          Deliveries (recipients delivered) per second and the latency
 *          p50/p99 of a transaction, from MAIL to the last reply.
 *          -H lhlo|data: hold instead, like idle: each connection stops
 *          after LHLO, or in its first transaction with all of the message
 *          sent but the final dot; "READY <held> <errors>" once all are
 *          there, until stdin closes; then the messages end and QUIT.
 *
 * Options: -S first-last source addresses (IPv4, e.g. 127.0.1.1-127.0.1.40),
 * -u users (cycle: random user1..userN, default 1000), -p password,
 * -P logins in progress at most (idle, default 200), -d seconds.
 *
 * TLS: -T implicit TLS, -s STARTTLS after the greeting; -V 1.2 or 1.3 the
 * only TLS version offered (default: both); -R resume sessions: a
 * connection that ended well leaves its session (the last ticket the
 * server sent, or its session id) in a pool, and the next connection
 * offers one from it, each once, as a mail client reconnecting would;
 * -N no session tickets (TLS 1.2 then resumes by session id). The result
 * counts the handshakes and those that resumed (SSL_session_reused).
 *
 * The result is one JSON line on stdout. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>

#include "bench_net.h"
#include "common/list.h"
#include "common/macros.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"

#define LOADGEN_READ 262144
#define LOADGEN_MAX_LINE 65536

enum lg_mode { LG_CYCLE, LG_IDLE, LG_BULK, LG_LMTP };

enum lg_state {
	LG_CONNECTING,
	LG_HANDSHAKE,		/* TLS */
	LG_GREETING,
	LG_STARTTLS,		/* "s STARTTLS" sent */
	LG_LOGIN,		/* "a LOGIN" sent */
	LG_SELECT,		/* "s SELECT" sent (bulk) */
	LG_FETCH,		/* "f FETCH" sent (bulk) */
	LG_HOLD,		/* logged in, held (idle; lmtp -H) */
	LG_LOGOUT,		/* "b LOGOUT" sent (lmtp: QUIT) */
	LG_LHLO,		/* lmtp: LHLO sent */
	LG_TXN,			/* lmtp: MAIL, RCPTs, DATA sent */
	LG_DOT,			/* lmtp: the message sent, its verdicts due */
	LG_HOLD_SENDING,	/* lmtp -H data: the message (no dot) going out */
};

struct lg_conn {
	int fd;
	enum lg_state state;
	SSL *ssl;
	bool want_write;	/* TLS needs the socket writable */
	size_t index;		/* idle: the session's number */
	double started;
	size_t lit_left;	/* literal bytes still to come */
	bool pending;		/* idle, lmtp -H: not held yet */
	size_t replies;		/* lmtp: final replies still due */
	size_t txns;		/* lmtp: transactions done on it */
	double txn_started;
	struct sbuf in, out;
	struct list_node held;	/* in lg.held_list while LG_HOLD */
};

static struct {
	enum lg_mode mode;
	struct bench_addr targets[64];
	size_t ntargets, next_target;
	struct ipaddr src_first;
	size_t nsources, next_source;
	size_t concurrency, users, max_pending;
	/* lmtp */
	size_t rcpts, per_conn;
	enum { LG_HOLD_NONE, LG_HOLD_LHLO, LG_HOLD_DATA } hold;
	char *body;		/* the message, dot-stuffed, with its final dot */
	size_t body_len;
	const char *password;
	double duration;
	SSL_CTX *tls;
	bool starttls, resume;
	int epfd;
	/* -R: sessions to offer, a ring of at most 2 * concurrency */
	SSL_SESSION **sessions;
	size_t sessions_cap, sessions_head, sessions_count;
	/* -A: open loop, arrivals per second, evenly spaced with -E */
	double rate;
	bool even;
	/* running */
	double start, end;
	bool stopping;		/* no new cycles / release the held sessions */
	size_t open, pending, failed_idle;
	struct list held_list;
	/* results */
	size_t cycles, errors, fetches, deliveries;
	size_t handshakes, resumed;
	size_t offered, dropped, late, unfinished;	/* -A */
	unsigned long long bytes;
	double *lat;
	size_t nlat, lat_cap;
} lg = {
	.users = 1000, .max_pending = 200, .password = "pass",
	.rcpts = 1, .per_conn = 10, .body_len = 4096,
};

static volatile sig_atomic_t lg_signalled;

static void lg_on_signal(int sig)
{
	(void)sig;
	lg_signalled = 1;
}

/* ---- connections ------------------------------------------------------- */

static void lg_interest(struct lg_conn *c)
{
	uint32_t ev = EPOLLIN;
	if (c->state == LG_CONNECTING || c->want_write || !sbuf_is_empty(&c->out))
		ev |= EPOLLOUT;
	struct epoll_event e = { .events = ev, .data.ptr = c };
	(void)epoll_ctl(lg.epfd, EPOLL_CTL_MOD, c->fd, &e);
}

static struct lg_conn *lg_start(size_t index);

/* idle and lmtp -H hold their connections; the others loop */
static bool lg_holding(void)
{
	return lg.mode == LG_IDLE || lg.hold != LG_HOLD_NONE;
}

/* ---- sessions to resume (-R) ------------------------------------------- */

/* Keeps the session c ended with, if the server let it be resumed: the
 * oldest kept one goes when the ring is full. */
static void lg_session_keep(struct lg_conn *c)
{
	SSL_SESSION *sess = SSL_get1_session(c->ssl);
	if (sess == NULL)
		return;
	if (!SSL_SESSION_is_resumable(sess)) {
		SSL_SESSION_free(sess);
		return;
	}
	if (lg.sessions_count == lg.sessions_cap) {
		SSL_SESSION_free(lg.sessions[lg.sessions_head]);
		lg.sessions_head = (lg.sessions_head + 1) % lg.sessions_cap;
		lg.sessions_count--;
	}
	lg.sessions[(lg.sessions_head + lg.sessions_count++) % lg.sessions_cap] = sess;
	/* the server closed after LOGOUT: mark the end as clean, or SSL_free
	 * would make the session unresumable */
	SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
}

/* The newest kept session, offered once; NULL: a full handshake. */
static SSL_SESSION *lg_session_take(void)
{
	if (lg.sessions_count == 0)
		return NULL;
	lg.sessions_count--;
	return lg.sessions[(lg.sessions_head + lg.sessions_count) % lg.sessions_cap];
}

static void lg_free(struct lg_conn *c)
{
	if (c->state == LG_HOLD)
		list_unlink(&lg.held_list, &c->held);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	close(c->fd);
	sbuf_free(&c->in);
	sbuf_free(&c->out);
	free(c);
	lg.open--;
}

/* Closes c; ok says whether its work ended as it should. A cycle client
 * starts over while time remains. */
static void lg_close(struct lg_conn *c, bool ok)
{
	if (!ok) {
		lg.errors++;
		if (c->pending)
			lg.failed_idle++;
	}
	if (c->pending)
		lg.pending--;	/* it never got to be held */
	if (ok && lg.resume && c->ssl != NULL)
		lg_session_keep(c);
	bool again = !lg_holding() && !lg.stopping && lg.rate == 0;
	lg_free(c);
	if (again)
		lg_start(0);
}

static void lg_send(struct lg_conn *c, const char *fmt, ...) ATTR_FORMAT(2, 3);

static void lg_send(struct lg_conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sbuf_vappendf(&c->out, fmt, ap);
	va_end(ap);
}

/* A new connection; NULL if it failed at once (counted). */
static struct lg_conn *lg_start(size_t index)
{
	const struct bench_addr *dest = &lg.targets[lg.next_target++ % lg.ntargets];
	struct ipaddr src, *srcp = NULL;
	if (lg.nsources > 0) {
		src = lg.src_first;
		src.u.v4.s_addr = htonl(ntohl(src.u.v4.s_addr) +
					(uint32_t)(lg.next_source++ % lg.nsources));
		srcp = &src;
	}
	int fd = bench_connect(dest, srcp);
	if (fd < 0) {
		lg.errors++;
		if (lg_holding())
			lg.failed_idle++;
		return NULL;
	}
	struct lg_conn *c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->index = index;
	c->started = bench_now();
	c->state = LG_CONNECTING;
	lg.open++;
	if (lg_holding()) {
		c->pending = true;
		lg.pending++;
	}
	struct epoll_event e = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(lg.epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		lg_close(c, false);
		return NULL;
	}
	return c;
}

/* ---- reading and writing, with or without TLS -------------------------- */

/* >0 bytes, 0 EOF, -1 error, -2 try later */
static ssize_t lg_read(struct lg_conn *c, char *buf, size_t len)
{
	if (c->ssl == NULL) {
		ssize_t n = read(c->fd, buf, len);
		return n < 0 ? (errno == EAGAIN ? -2 : -1) : n;
	}
	c->want_write = false;
	int n = SSL_read(c->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
	if (n > 0)
		return n;
	int err = SSL_get_error(c->ssl, n);
	if (err == SSL_ERROR_WANT_READ)
		return -2;
	if (err == SSL_ERROR_WANT_WRITE) {
		c->want_write = true;
		return -2;
	}
	return err == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

/* 0 all sent or try later, -1 error */
static int lg_flush(struct lg_conn *c)
{
	while (!sbuf_is_empty(&c->out)) {
		ssize_t n;
		if (c->ssl == NULL) {
			n = write(c->fd, sbuf_data(&c->out), sbuf_len(&c->out));
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
		} else {
			int r = SSL_write(c->ssl, sbuf_data(&c->out), (int)sbuf_len(&c->out));
			if (r <= 0) {
				int err = SSL_get_error(c->ssl, r);
				c->want_write = err == SSL_ERROR_WANT_WRITE;
				return err == SSL_ERROR_WANT_READ || c->want_write ? 0 : -1;
			}
			n = r;
		}
		sbuf_consume(&c->out, (size_t)n);
	}
	sbuf_release_if_empty(&c->out);
	return 0;
}

/* ---- the protocol -------------------------------------------------------- */

static void lg_login(struct lg_conn *c)
{
	size_t user = lg.mode == LG_IDLE ? c->index + 1 :
		lg.mode == LG_BULK ? 1 : (size_t)(random() % (long)lg.users) + 1;
	lg_send(c, "a LOGIN user%zu %s\r\n", user, lg.password);
	c->state = LG_LOGIN;
}

static void lg_fetch(struct lg_conn *c)
{
	lg_send(c, "f FETCH 1 BODY.PEEK[]\r\n");
	c->state = LG_FETCH;
}

static void lg_logout(struct lg_conn *c);

/* Held: in lg.held_list, no longer pending; released at once if the
 * holding is already over. */
static void lg_hold(struct lg_conn *c)
{
	c->pending = false;
	lg.pending--;
	c->state = LG_HOLD;
	list_append(&lg.held_list, &c->held);
	if (lg.stopping)
		lg_logout(c);
}

static void lg_logout(struct lg_conn *c)
{
	bool mid_data = c->state == LG_HOLD && lg.hold == LG_HOLD_DATA;
	if (c->state == LG_HOLD)
		list_unlink(&lg.held_list, &c->held);
	if (lg.mode != LG_LMTP) {
		lg_send(c, "b LOGOUT\r\n");
	} else if (mid_data) {
		lg_send(c, ".\r\n");	/* the held message ends */
		c->state = LG_DOT;
		return;
	} else {
		lg_send(c, "QUIT\r\n");
	}
	c->state = LG_LOGOUT;
}

static void lg_record_latency(double seconds)
{
	lg.lat = xgrow(lg.lat, &lg.lat_cap, lg.nlat + 1, sizeof(*lg.lat));
	lg.lat[lg.nlat++] = seconds * 1000.0;
}

/* ---- LMTP ---------------------------------------------------------------- */

/* The message: a header, then lines of 76 letters, every 16th starting
 * with a dot (sent doubled), CRLF-terminated, then the final dot. */
static void lg_lmtp_make_body(void)
{
	size_t size = lg.body_len;
	struct sbuf b = SBUF_INIT;
	sbuf_appends(&b, "From: <bench@loft.test>\r\nSubject: bench\r\n\r\n");
	size_t plain = sbuf_len(&b);	/* bytes of the message, unstuffed */
	for (unsigned int line = 0; plain < size; line++) {
		size_t n = size - plain < 78 ? size - plain : 78;
		if (n < 3)
			n = 3;	/* a line is at least a letter and CRLF */
		if (line % 16 == 0)
			sbuf_appends(&b, "..");
		else
			sbuf_appends(&b, "a");
		for (size_t i = 1; i + 2 < n; i++)
			sbuf_append(&b, &"abcdefghijklmnopqrstuvwxyz"[i % 26], 1);
		sbuf_appends(&b, "\r\n");
		plain += n;
	}
	sbuf_appends(&b, ".\r\n");
	lg.body_len = sbuf_len(&b);
	lg.body = xmalloc(lg.body_len);
	memcpy(lg.body, sbuf_data(&b), lg.body_len);
	sbuf_free(&b);
}

/* MAIL, the RCPTs and DATA in one write, as a pipelining MTA sends them;
 * the recipients are distinct users. */
static void lg_lmtp_transaction(struct lg_conn *c)
{
	size_t users[64];
	lg_send(c, "MAIL FROM:<bench@loft.test>\r\n");
	for (size_t i = 0; i < lg.rcpts; i++) {
		size_t u, j;
		do {
			u = (size_t)(random() % (long)lg.users) + 1;
			for (j = 0; j < i && users[j] != u; j++)
				;
		} while (j < i);
		users[i] = u;
		lg_send(c, "RCPT TO:<user%zu@bench.test>\r\n", u);
	}
	lg_send(c, "DATA\r\n");
	c->replies = lg.rcpts + 2;
	c->txn_started = bench_now();
	c->state = LG_TXN;
}

/* The message after 354: whole, or without its final dot to be held. */
static void lg_lmtp_body(struct lg_conn *c)
{
	bool hold = lg.hold == LG_HOLD_DATA && c->txns == 0;
	sbuf_append(&c->out, lg.body, lg.body_len - (hold ? 3 : 0));
	c->replies = lg.rcpts;
	c->state = hold ? LG_HOLD_SENDING : LG_DOT;
}

/* A transaction's verdicts are in: the next one, or QUIT. */
static void lg_lmtp_done(struct lg_conn *c)
{
	double now = bench_now();
	c->txns++;
	if (lg.hold == LG_HOLD_NONE && now < lg.end) {
		lg.cycles++;
		lg.deliveries += lg.rcpts;
		lg_record_latency(now - c->txn_started);
	}
	if (lg.stopping || lg_holding() || c->txns >= lg.per_conn) {
		lg_send(c, "QUIT\r\n");
		c->state = LG_LOGOUT;
	} else {
		lg_lmtp_transaction(c);
	}
}

/* One reply line; false: close the connection (ok in *ok_r). */
static bool lg_lmtp_line(struct lg_conn *c, const char *line, size_t len, bool *ok_r)
{
	*ok_r = false;
	if (len < 3 || (len > 3 && line[3] == '-'))
		return len >= 3;	/* a continued reply: its last line counts */
	char cls = line[0];
	switch (c->state) {
	case LG_GREETING:
		if (cls != '2')
			return false;
		lg_send(c, "LHLO loadgen\r\n");
		c->state = LG_LHLO;
		return true;
	case LG_LHLO:
		if (cls != '2')
			return false;
		if (lg.hold == LG_HOLD_LHLO)
			lg_hold(c);
		else
			lg_lmtp_transaction(c);
		return true;
	case LG_TXN:
		/* MAIL and RCPTs 2xx, DATA 354 */
		if (cls != (c->replies == 1 ? '3' : '2'))
			return false;
		if (--c->replies == 0)
			lg_lmtp_body(c);
		return true;
	case LG_DOT:
		if (cls != '2')
			return false;
		if (--c->replies == 0)
			lg_lmtp_done(c);
		return true;
	case LG_LOGOUT:
		*ok_r = cls == '2';
		return false;
	default:
		return false;	/* nothing is due while held */
	}
}

/* lmtp -H data: held once the message but its dot is out. */
static void lg_lmtp_check_held(struct lg_conn *c)
{
	if (c->state == LG_HOLD_SENDING && sbuf_is_empty(&c->out))
		lg_hold(c);
}

/* The TLS handshake comes next, offering a kept session with -R. */
static void lg_tls_start(struct lg_conn *c)
{
	c->ssl = SSL_new(lg.tls);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_connect_state(c->ssl);
	SSL_SESSION *sess = lg.resume ? lg_session_take() : NULL;
	if (sess != NULL) {
		SSL_set_session(c->ssl, sess);
		SSL_SESSION_free(sess);
	}
	c->state = LG_HANDSHAKE;
}

/* One response line; false: close the connection (ok in *ok_r). */
static bool lg_line(struct lg_conn *c, const char *line, size_t len, bool *ok_r)
{
	*ok_r = false;
	if (lg.mode == LG_LMTP)
		return lg_lmtp_line(c, line, len, ok_r);
	bool tagged_ok = len >= 5 && line[1] == ' ' && memcmp(line + 2, "OK", 2) == 0;
	switch (c->state) {
	case LG_GREETING:
		if (len < 4 || memcmp(line, "* OK", 4) != 0)
			return false;
		if (lg.starttls && c->ssl == NULL) {
			lg_send(c, "s STARTTLS\r\n");
			c->state = LG_STARTTLS;
		} else {
			lg_login(c);
		}
		return true;
	case LG_STARTTLS:
		if (line[0] != 's')
			return true;
		if (!tagged_ok)
			return false;
		lg_tls_start(c);
		return true;
	case LG_LOGIN:
		if (line[0] != 'a')
			return true;
		if (!tagged_ok)
			return false;
		if (lg.mode == LG_CYCLE) {
			lg_logout(c);
		} else if (lg.mode == LG_BULK) {
			lg_send(c, "s SELECT INBOX\r\n");
			c->state = LG_SELECT;
		} else {
			lg_hold(c);
		}
		return true;
	case LG_SELECT:
	case LG_FETCH:
		if (line[0] != (c->state == LG_SELECT ? 's' : 'f'))
			return true;	/* untagged data, the literal's ")" */
		if (!tagged_ok)
			return false;
		if (c->state == LG_FETCH)
			lg.fetches++;
		if (lg.stopping)
			lg_logout(c);
		else
			lg_fetch(c);
		return true;
	case LG_LOGOUT:
		if (line[0] != 'b')
			return true;
		if (!tagged_ok)
			return false;
		if (lg.mode == LG_CYCLE) {
			lg.cycles++;
			lg_record_latency(bench_now() - c->started);
		}
		*ok_r = true;
		return false;
	default:
		return true;	/* untagged data while held */
	}
}

/* "{123}" closing a line: the literal that follows, else 0. */
static size_t lg_literal(const char *line, size_t len)
{
	if (len < 3 || line[len - 1] != '}')
		return 0;
	const char *open = memrchr(line, '{', len);
	return open != NULL ? strtoul(open + 1, NULL, 10) : 0;
}

/* Handles whole lines and literals in buf; returns bytes used, or -1 to
 * close (ok in *ok_r). */
static ssize_t lg_input(struct lg_conn *c, const char *buf, size_t len, bool *ok_r)
{
	size_t off = 0;
	while (off < len) {
		if (c->lit_left > 0) {
			size_t n = len - off < c->lit_left ? len - off : c->lit_left;
			c->lit_left -= n;
			lg.bytes += n;
			off += n;
			continue;
		}
		const char *lf = memchr(buf + off, '\n', len - off);
		if (lf == NULL)
			break;
		size_t n = (size_t)(lf - (buf + off));
		if (n > 0 && buf[off + n - 1] == '\r')
			n--;
		c->lit_left = lg.mode == LG_LMTP ? 0 : lg_literal(buf + off, n);
		if (!lg_line(c, buf + off, n, ok_r))
			return -1;
		off = (size_t)(lf - buf) + 1;
	}
	return (ssize_t)off;
}

/* The connection is up (and TLS done): the greeting comes next. */
static bool lg_connected(struct lg_conn *c)
{
	int err = 0;
	socklen_t elen = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err != 0)
		return false;
	if (lg.tls == NULL || lg.starttls)
		c->state = LG_GREETING;
	else
		lg_tls_start(c);
	return true;
}

static bool lg_handshake(struct lg_conn *c)
{
	int r = SSL_do_handshake(c->ssl);
	c->want_write = false;
	if (r == 1) {
		lg.handshakes++;
		if (SSL_session_reused(c->ssl))
			lg.resumed++;
		/* after STARTTLS the client goes on without a new greeting */
		if (lg.starttls)
			lg_login(c);
		else
			c->state = LG_GREETING;
		return true;
	}
	int err = SSL_get_error(c->ssl, r);
	c->want_write = err == SSL_ERROR_WANT_WRITE;
	return err == SSL_ERROR_WANT_READ || c->want_write;
}

static void lg_event(struct lg_conn *c)
{
	static char buf[LOADGEN_READ];
	bool ok = false;
	if (c->state == LG_CONNECTING && !lg_connected(c))
		goto close;
	for (;;) {
		/* first, or once the STARTTLS answer came */
		if (c->state == LG_HANDSHAKE) {
			if (!lg_handshake(c))
				goto close;
			if (c->state == LG_HANDSHAKE) {
				lg_interest(c);
				return;
			}
		}
		size_t have = sbuf_len(&c->in);
		memcpy(buf, sbuf_data(&c->in), have);
		ssize_t n = lg_read(c, buf + have, sizeof(buf) - have);
		if (n == -2)
			break;
		if (n <= 0)
			goto close;	/* ok only if LOGOUT was answered */
		ssize_t used = lg_input(c, buf, have + (size_t)n, &ok);
		if (used < 0)
			goto close;
		sbuf_reset(&c->in);
		if (have + (size_t)n - (size_t)used >= LOADGEN_MAX_LINE)
			goto close;
		sbuf_append(&c->in, buf + used, have + (size_t)n - (size_t)used);
		if (lg_flush(c) < 0)
			goto close;
	}
	sbuf_release_if_empty(&c->in);
	if (lg_flush(c) < 0)
		goto close;
	lg_lmtp_check_held(c);
	lg_interest(c);
	return;
close:
	lg_close(c, ok);
}

/* ---- running ------------------------------------------------------------- */

static int lg_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double lg_percentile(double p)
{
	if (lg.nlat == 0)
		return 0;
	size_t i = (size_t)ceil(p / 100.0 * (double)lg.nlat);
	return lg.lat[i == 0 ? 0 : i - 1];
}

/* One epoll wait of at most timeout seconds (to the nanosecond: the
 * open loop's arrivals come closer than a millisecond apart). */
static void lg_loop_once(double timeout)
{
	struct epoll_event evs[512];
	if (timeout < 0)
		timeout = 0;
	struct timespec ts = { .tv_sec = (time_t)timeout,
			       .tv_nsec = (long)((timeout - floor(timeout)) * 1e9) };
	int n = epoll_pwait2(lg.epfd, evs, (int)ARRAY_SIZE(evs), &ts, NULL);
	for (int i = 0; i < n; i++) {
		if (evs[i].data.ptr != NULL) {
			lg_event(evs[i].data.ptr);
			continue;
		}
		/* stdin: its end releases the held sessions */
		char tmp[64];
		if (read(0, tmp, sizeof(tmp)) <= 0) {
			(void)epoll_ctl(lg.epfd, EPOLL_CTL_DEL, 0, NULL);
			lg_signalled = 1;
		}
	}
}

/* The connections in flight finish, within a bound. */
static void lg_drain(double seconds)
{
	double deadline = bench_now() + seconds;
	while (lg.open > 0 && bench_now() < deadline)
		lg_loop_once(0.05);
}

static void lg_run_idle(void)
{
	size_t next = 0;
	double t0 = bench_now(), ready_at = 0;
	bool ready = false;
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };
	/* /dev/null or a file cannot be polled (EPERM): it has no end to
	 * wait for, -d alone bounds the holding (without -d: none) */
	bool watch_stdin = epoll_ctl(lg.epfd, EPOLL_CTL_ADD, 0, &e) == 0;
	while (!lg_signalled) {
		/* logins go in waves of at most max_pending */
		while (next < lg.concurrency && lg.pending < lg.max_pending)
			lg_start(next++);
		if (!ready && next == lg.concurrency && lg.pending == 0) {
			ready = true;
			ready_at = bench_now();
			printf("READY %zu %zu\n", lg.held_list.count, lg.failed_idle);
			fflush(stdout);
		}
		if (ready && (lg.duration > 0 ? bench_now() - ready_at >= lg.duration :
			      !watch_stdin))
			break;
		lg_loop_once(0.1);
	}
	lg.stopping = true;
	size_t held = lg.held_list.count;
	double login_s = (ready ? ready_at : bench_now()) - t0;
	while (!list_is_empty(&lg.held_list)) {
		struct lg_conn *c = CONTAINER_OF(lg.held_list.head, struct lg_conn, held);
		lg_logout(c);
		if (lg_flush(c) < 0)
			lg_close(c, false);
		else
			lg_interest(c);
	}
	lg_drain(60);
	printf("{\"mode\":\"idle\",\"sessions\":%zu,\"errors\":%zu,\"login_seconds\":%.3f,"
	       "\"handshakes\":%zu,\"resumed\":%zu}\n", held, lg.errors, login_s,
	       lg.handshakes, lg.resumed);
}

/* The result line of a timed run. */
static void lg_report(double seconds)
{
	if (lg.mode == LG_LMTP) {
		qsort(lg.lat, lg.nlat, sizeof(*lg.lat), lg_cmp_double);
		printf("{\"mode\":\"lmtp\",\"connections\":%zu,\"rcpts\":%zu,"
		       "\"wire_bytes\":%zu,\"transactions\":%zu,\"deliveries\":%zu,"
		       "\"errors\":%zu,\"seconds\":%.3f,\"deliveries_per_s\":%.1f,"
		       "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f}\n", lg.concurrency,
		       lg.rcpts, lg.body_len, lg.cycles, lg.deliveries, lg.errors, seconds,
		       (double)lg.deliveries / seconds, lg_percentile(50), lg_percentile(99),
		       lg_percentile(99.9));
	} else if (lg.mode == LG_CYCLE) {
		qsort(lg.lat, lg.nlat, sizeof(*lg.lat), lg_cmp_double);
		printf("{\"mode\":\"cycle\",\"clients\":%zu,\"cycles\":%zu,\"errors\":%zu,"
		       "\"seconds\":%.3f,\"cycles_per_s\":%.1f,\"p50_ms\":%.3f,"
		       "\"p95_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
		       "\"handshakes\":%zu,\"resumed\":%zu", lg.concurrency, lg.cycles,
		       lg.errors, seconds, (double)lg.cycles / seconds, lg_percentile(50),
		       lg_percentile(95), lg_percentile(99), lg_percentile(99.9),
		       lg.handshakes, lg.resumed);
		if (lg.rate > 0)
			printf(",\"rate\":%.1f,\"arrivals\":\"%s\",\"offered\":%zu,"
			       "\"dropped\":%zu,\"late\":%zu,\"unfinished\":%zu", lg.rate,
			       lg.even ? "even" : "poisson", lg.offered, lg.dropped, lg.late,
			       lg.unfinished);
		printf("}\n");
	} else {
		printf("{\"mode\":\"bulk\",\"connections\":%zu,\"fetches\":%zu,\"bytes\":%llu,"
		       "\"errors\":%zu,\"seconds\":%.3f,\"mb_per_s\":%.1f}\n", lg.concurrency,
		       lg.fetches, lg.bytes, lg.errors, seconds, (double)lg.bytes / 1e6 / seconds);
	}
}

static void lg_run_timed(void)
{
	lg.start = bench_now();
	lg.end = lg.start + lg.duration;
	for (size_t i = 0; i < lg.concurrency; i++)
		lg_start(0);
	while (!lg_signalled && bench_now() < lg.end)
		lg_loop_once(0.05);
	double seconds = bench_now() - lg.start;
	lg.stopping = true;
	lg_drain(10);
	lg_report(seconds);
}

/* The gap to the next arrival: exponential (Poisson arrivals) or even. */
static double lg_interarrival(void)
{
	if (lg.even)
		return 1.0 / lg.rate;
	double u = ((double)random() + 1.0) / ((double)RAND_MAX + 2.0);
	return -log(u) / lg.rate;
}

/* -A: cycles start at their scheduled times for -d seconds, whatever
 * the earlier ones do; those in flight at the end get 10 s to finish
 * (the rest are counted unfinished). */
static void lg_run_open(void)
{
	lg.start = bench_now();
	lg.end = lg.start + lg.duration;
	double next = lg.start;
	while (!lg_signalled) {
		double now = bench_now();
		for (; next <= now && next < lg.end; next += lg_interarrival()) {
			lg.offered++;
			if (lg.open >= lg.concurrency) {
				lg.dropped++;
				continue;
			}
			if (now - next > 0.001)
				lg.late++;
			struct lg_conn *c = lg_start(0);
			if (c != NULL)
				c->started = next;	/* latency from the arrival */
		}
		if (next >= lg.end)
			break;
		lg_loop_once(next - bench_now());
	}
	double seconds = lg.duration;
	lg.stopping = true;
	lg_drain(10);
	lg.unfinished = lg.open;
	lg_report(seconds);
}

/* ---- options ------------------------------------------------------------- */

static void lg_usage(void)
{
	fprintf(stderr, "usage: loadgen cycle|idle|bulk|lmtp -t ip:port[,ip:port...] [-c n] "
		"[-d seconds] [-S first-last] [-u users] [-p password] [-P pending]\n"
		"       [-T | -s] [-V 1.2|1.3] [-R] [-N]\n"
		"       cycle: [-A arrivals_per_second [-E]]\n"
		"       lmtp: [-r recipients] [-m message_bytes] [-x per_connection] "
		"[-H lhlo|data]\n");
	exit(2);
}

static void lg_parse_targets(char *arg)
{
	for (char *t = strtok(arg, ","); t != NULL; t = strtok(NULL, ",")) {
		if (lg.ntargets == ARRAY_SIZE(lg.targets) ||
		    bench_addr_parse(t, &lg.targets[lg.ntargets++]) < 0) {
			fprintf(stderr, "loadgen: bad target %s\n", t);
			exit(2);
		}
	}
}

/* "a.b.c.d-e.f.g.h" (or one address): consecutive IPv4 sources */
static void lg_parse_sources(char *arg)
{
	char *dash = strchr(arg, '-');
	struct ipaddr last;
	if (dash != NULL)
		*dash = '\0';
	if (ipaddr_parse(arg, &lg.src_first) < 0 || lg.src_first.family != AF_INET ||
	    ipaddr_parse(dash != NULL ? dash + 1 : arg, &last) < 0 ||
	    last.family != AF_INET ||
	    ntohl(last.u.v4.s_addr) < ntohl(lg.src_first.u.v4.s_addr)) {
		fprintf(stderr, "loadgen: bad source range\n");
		exit(2);
	}
	lg.nsources = ntohl(last.u.v4.s_addr) - ntohl(lg.src_first.u.v4.s_addr) + 1;
}

static void lg_options(int argc, char **argv)
{
	static const char *const modes[] = { "cycle", "idle", "bulk", "lmtp" };
	size_t m = 0;
	if (argc < 2)
		lg_usage();
	while (m < ARRAY_SIZE(modes) && strcmp(argv[1], modes[m]) != 0)
		m++;
	if (m == ARRAY_SIZE(modes))
		lg_usage();
	lg.mode = (enum lg_mode)m;
	lg.concurrency = lg.mode == LG_BULK ? 1 : 10;
	lg.duration = -1;	/* unset: below */
	int opt, version = 0;
	bool implicit = false, no_tickets = false;
	optind = 2;
	while ((opt = getopt(argc, argv, "t:c:d:S:u:p:P:TsV:RNr:m:x:H:A:E")) != -1) {
		switch (opt) {
		case 't': lg_parse_targets(optarg); break;
		case 'c': lg.concurrency = strtoul(optarg, NULL, 10); break;
		case 'd': lg.duration = strtod(optarg, NULL); break;
		case 'S': lg_parse_sources(optarg); break;
		case 'u': lg.users = strtoul(optarg, NULL, 10); break;
		case 'p': lg.password = optarg; break;
		case 'P': lg.max_pending = strtoul(optarg, NULL, 10); break;
		case 'T': implicit = true; break;
		case 's': lg.starttls = true; break;
		case 'V':
			version = strcmp(optarg, "1.2") == 0 ? TLS1_2_VERSION :
				strcmp(optarg, "1.3") == 0 ? TLS1_3_VERSION : -1;
			break;
		case 'R': lg.resume = true; break;
		case 'N': no_tickets = true; break;
		case 'A': lg.rate = strtod(optarg, NULL); break;
		case 'E': lg.even = true; break;
		case 'r': lg.rcpts = strtoul(optarg, NULL, 10); break;
		case 'm': lg.body_len = strtoul(optarg, NULL, 10); break;
		case 'x': lg.per_conn = strtoul(optarg, NULL, 10); break;
		case 'H':
			lg.hold = strcmp(optarg, "lhlo") == 0 ? LG_HOLD_LHLO :
				strcmp(optarg, "data") == 0 ? LG_HOLD_DATA : -1;
			break;
		default: lg_usage();
		}
	}
	if (lg.duration < 0)	/* held until stdin closes, or 5 s of load */
		lg.duration = lg_holding() ? 0 : 5;
	if (lg.ntargets == 0 || lg.concurrency == 0 || lg.users == 0 || lg.max_pending == 0 ||
	    (!lg_holding() && lg.duration <= 0) || (implicit && lg.starttls) ||
	    (int)lg.hold < 0 || (lg.hold != LG_HOLD_NONE && lg.mode != LG_LMTP) ||
	    lg.rcpts == 0 || lg.rcpts > 64 || lg.rcpts > lg.users || lg.per_conn == 0 ||
	    lg.body_len == 0 || (lg.mode == LG_LMTP && (implicit || lg.starttls)) ||
	    version < 0 || !(lg.rate >= 0) || (lg.rate > 0 && lg.mode != LG_CYCLE) ||
	    (lg.even && lg.rate == 0) || ((version != 0 || lg.resume || no_tickets) &&
			    !implicit && !lg.starttls))
		lg_usage();
	if (!implicit && !lg.starttls)
		return;
	lg.tls = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(lg.tls, version != 0 ? version : TLS1_2_VERSION);
	if (version != 0)
		SSL_CTX_set_max_proto_version(lg.tls, version);
	SSL_CTX_set_verify(lg.tls, SSL_VERIFY_NONE, NULL);
	if (no_tickets)
		SSL_CTX_set_options(lg.tls, SSL_OP_NO_TICKET);
	if (lg.resume) {
		lg.sessions_cap = 2 * lg.concurrency;
		lg.sessions = xcalloc(lg.sessions_cap, sizeof(*lg.sessions));
	}
}

int main(int argc, char **argv)
{
	lg_options(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, lg_on_signal);
	signal(SIGINT, lg_on_signal);
	srandom((unsigned int)getpid());
	unsigned long nofile = bench_raise_nofile();
	if (nofile < lg.concurrency + 64) {
		fprintf(stderr, "loadgen: %zu connections need more than the %lu "
			"file descriptors allowed\n", lg.concurrency, nofile);
		return 1;
	}
	lg.epfd = epoll_create1(EPOLL_CLOEXEC);
	list_init(&lg.held_list);
	if (lg.mode == LG_LMTP)
		lg_lmtp_make_body();
	if (lg_holding())
		lg_run_idle();
	else if (lg.rate > 0)
		lg_run_open();
	else
		lg_run_timed();
	return lg.errors == 0 ? 0 : 1;
}
