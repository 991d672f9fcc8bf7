/* A small, fast IMAP and LMTP server for the benchmarks only, so that the
 * proxy and not the backend is what is measured at scale. Every proxy
 * under test (and "direct") uses it; the functional tests keep real
 * Dovecot.
 *
 *   backend [-s message_size] -l ip:port [-l ip:port ...] [-m ip:port ...]
 *
 * It speaks just enough IMAP for a login proxy and the load generator:
 * greeting with CAPABILITY (ID, LITERAL+, SASL-IR, AUTH=PLAIN), ID,
 * CAPABILITY, LOGIN and AUTHENTICATE PLAIN with any password (literals
 * included), NOOP, SELECT/EXAMINE (one message), FETCH (that message,
 * message_size bytes, default 1 MiB), LOGOUT; anything else is BAD.
 *
 * -m listeners speak LMTP instead (RFC 2033), just enough for an LMTP
 * proxy and the load generator: LHLO (PIPELINING, 8BITMIME,
 * ENHANCEDSTATUSCODES), MAIL, RCPT (any address is accepted), DATA (the
 * body is dot-unstuffed, counted and discarded; one 250 per recipient),
 * RSET, NOOP, QUIT. At exit (SIGTERM) it prints the messages and body
 * bytes it took on stderr.
 *
 * One thread, epoll; an idle connection holds only its struct. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "bench_net.h"
#include "common/macros.h"
#include "common/sbuf.h"
#include "common/xmalloc.h"

#define BACKEND_READ 16384
#define BACKEND_MAX_LINE 8192
#define BACKEND_CAPS "IMAP4rev1 ID LITERAL+ SASL-IR AUTH=PLAIN"

struct bconn {
	int fd;
	bool closing;		/* LOGOUT answered: close once flushed */
	bool auth_wait;		/* AUTHENTICATE PLAIN waits for its response */
	bool cmd_open;		/* a command continues after a literal */
	bool lmtp;		/* an LMTP connection (-m) */
	bool in_data;		/* LMTP: reading a message */
	bool at_bol;		/* LMTP, in_data: at the start of a line */
	unsigned int rcpts;	/* LMTP: recipients of the transaction */
	size_t lit_skip;	/* literal bytes still to skip */
	size_t body_left;	/* message bytes of a FETCH still to send */
	struct sbuf in;		/* an incomplete line, if any */
	struct sbuf out;
	struct sbuf tail;	/* what follows the message */
	char tag[64], cmd[32];
};

static int epfd;
static char *message;
static size_t message_size = 1048576;
static volatile sig_atomic_t backend_stop;
/* LMTP: what was delivered, for the exit line */
static unsigned long long lmtp_messages, lmtp_deliveries, lmtp_body_bytes;

/* The synthetic message: a header, then lines of 76 letters. */
static void backend_make_message(void)
{
	static const char head[] = "Subject: bench\r\nFrom: bench@loft.test\r\n\r\n";
	message = xmalloc(message_size);
	size_t n = strlen(head) < message_size ? strlen(head) : message_size;
	memcpy(message, head, n);
	for (size_t i = n; i < message_size; i++) {
		size_t col = (i - n) % 78;
		message[i] = col == 76 ? '\r' : col == 77 ? '\n' : (char)('a' + col % 26);
	}
}

static void reply(struct bconn *c, const char *text)
{
	sbuf_appendf(&c->out, "%s %s\r\n", c->tag, text);
}

static void cmd_ok(struct bconn *c, const char *args)
{
	(void)args;
	reply(c, "OK Completed");
}

static void cmd_id(struct bconn *c, const char *args)
{
	(void)args;
	sbuf_appends(&c->out, "* ID (\"name\" \"loft-bench\")\r\n");
	reply(c, "OK ID completed");
}

static void cmd_capability(struct bconn *c, const char *args)
{
	(void)args;
	sbuf_appends(&c->out, "* CAPABILITY " BACKEND_CAPS "\r\n");
	reply(c, "OK Capability completed");
}

static void cmd_login(struct bconn *c, const char *args)
{
	(void)args;
	reply(c, "OK [CAPABILITY IMAP4rev1 ID LITERAL+ IDLE] Logged in");
}

static void cmd_authenticate(struct bconn *c, const char *args)
{
	if (strchr(args, ' ') != NULL) {	/* SASL-IR */
		cmd_login(c, args);
		return;
	}
	sbuf_appends(&c->out, "+ \r\n");
	c->auth_wait = true;
}

static void cmd_select(struct bconn *c, const char *args)
{
	(void)args;
	sbuf_appends(&c->out, "* FLAGS (\\Seen)\r\n* 1 EXISTS\r\n* 0 RECENT\r\n"
		     "* OK [UIDVALIDITY 1] UIDs valid\r\n* OK [UIDNEXT 2] Predicted next UID\r\n");
	reply(c, "OK [READ-WRITE] Select completed");
}

static void cmd_fetch(struct bconn *c, const char *args)
{
	(void)args;
	sbuf_appendf(&c->out, "* 1 FETCH (BODY[] {%zu}\r\n", message_size);
	c->body_left = message_size;
	sbuf_appendf(&c->tail, ")\r\n%s OK Fetch completed\r\n", c->tag);
}

static void cmd_logout(struct bconn *c, const char *args)
{
	(void)args;
	sbuf_appends(&c->out, "* BYE Logging out\r\n");
	reply(c, "OK Logout completed");
	c->closing = true;
}

static const struct {
	const char *name;
	void (*fn)(struct bconn *c, const char *args);
} backend_cmds[] = {
	{ "ID", cmd_id }, { "CAPABILITY", cmd_capability }, { "LOGIN", cmd_login },
	{ "AUTHENTICATE", cmd_authenticate }, { "NOOP", cmd_ok }, { "SELECT", cmd_select },
	{ "EXAMINE", cmd_select }, { "FETCH", cmd_fetch }, { "UID", cmd_fetch },
	{ "LOGOUT", cmd_logout }, { "CHECK", cmd_ok },
};

static void backend_dispatch(struct bconn *c, const char *args)
{
	for (size_t i = 0; i < ARRAY_SIZE(backend_cmds); i++) {
		if (strcasecmp(c->cmd, backend_cmds[i].name) == 0) {
			backend_cmds[i].fn(c, args);
			return;
		}
	}
	reply(c, "BAD Unknown command");
}

/* "{123}" or "{123+}" at the end of a line: its size, else -1. */
static long literal_at_end(const char *line, size_t len, bool *sync_r)
{
	if (len < 3 || line[len - 1] != '}')
		return -1;
	size_t i = len - 1;
	*sync_r = line[i - 1] != '+';
	if (!*sync_r)
		i--;
	size_t end = i;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i == end || i == 0 || line[i - 1] != '{')
		return -1;
	return strtol(line + i, NULL, 10);
}

/* One line (without CRLF, NUL-terminated in place). */
static void backend_line(struct bconn *c, char *line, size_t len)
{
	if (c->auth_wait) {
		c->auth_wait = false;
		cmd_login(c, "");
		return;
	}
	bool sync = false;
	long lit = literal_at_end(line, len, &sync);
	if (!c->cmd_open) {
		char *sp = strchr(line, ' ');
		if (sp == NULL) {
			sbuf_appends(&c->out, "* BAD Missing command\r\n");
			return;
		}
		*sp = '\0';
		snprintf(c->tag, sizeof(c->tag), "%s", line);
		char *args = sp + 1, *end = strchr(args, ' ');
		size_t clen = end != NULL ? (size_t)(end - args) : strlen(args);
		snprintf(c->cmd, sizeof(c->cmd), "%.*s", (int)clen, args);
		line = end != NULL ? end + 1 : args + clen;
	}
	if (lit >= 0) {
		/* the command goes on after the literal */
		c->cmd_open = true;
		c->lit_skip = (size_t)lit;
		if (sync)
			sbuf_appends(&c->out, "+ OK\r\n");
		return;
	}
	c->cmd_open = false;
	backend_dispatch(c, line);
}

/* ---- LMTP ------------------------------------------------------------ */

static void lmtp_reply_line(struct bconn *c, const char *text)
{
	sbuf_appendf(&c->out, "%s\r\n", text);
}

static void lmtp_lhlo(struct bconn *c, const char *args)
{
	(void)args;
	c->rcpts = 0;
	sbuf_appends(&c->out, "250-bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
		     "250 ENHANCEDSTATUSCODES\r\n");
}

static void lmtp_mail(struct bconn *c, const char *args)
{
	(void)args;
	c->rcpts = 0;
	lmtp_reply_line(c, "250 2.1.0 OK");
}

static void lmtp_rcpt(struct bconn *c, const char *args)
{
	(void)args;
	c->rcpts++;
	lmtp_reply_line(c, "250 2.1.5 OK");
}

static void lmtp_data(struct bconn *c, const char *args)
{
	(void)args;
	if (c->rcpts == 0) {
		lmtp_reply_line(c, "503 5.5.1 No valid recipients");
		return;
	}
	c->in_data = true;
	c->at_bol = true;
	lmtp_reply_line(c, "354 OK");
}

static void lmtp_ok(struct bconn *c, const char *args)
{
	(void)args;
	lmtp_reply_line(c, "250 2.0.0 OK");
}

static void lmtp_rset(struct bconn *c, const char *args)
{
	c->rcpts = 0;
	lmtp_ok(c, args);
}

static void lmtp_quit(struct bconn *c, const char *args)
{
	(void)args;
	lmtp_reply_line(c, "221 2.0.0 Bye");
	c->closing = true;
}

static const struct {
	const char *name;
	void (*fn)(struct bconn *c, const char *args);
} lmtp_cmds[] = {
	{ "LHLO", lmtp_lhlo }, { "MAIL", lmtp_mail }, { "RCPT", lmtp_rcpt },
	{ "DATA", lmtp_data }, { "RSET", lmtp_rset }, { "NOOP", lmtp_ok },
	{ "QUIT", lmtp_quit },
};

static void lmtp_line(struct bconn *c, const char *line, size_t len)
{
	size_t clen = 0;
	while (clen < len && line[clen] != ' ')
		clen++;
	for (size_t i = 0; i < ARRAY_SIZE(lmtp_cmds); i++) {
		if (clen == strlen(lmtp_cmds[i].name) &&
		    strncasecmp(line, lmtp_cmds[i].name, clen) == 0) {
			lmtp_cmds[i].fn(c, line + clen);
			return;
		}
	}
	lmtp_reply_line(c, "500 5.5.2 Unknown command");
}

/* The end of a message: one verdict per recipient. */
static void lmtp_delivered(struct bconn *c)
{
	for (unsigned int i = 0; i < c->rcpts; i++)
		sbuf_appendf(&c->out, "250 2.0.0 <%u> Saved\r\n", i + 1);
	lmtp_messages++;
	lmtp_deliveries += c->rcpts;
	c->rcpts = 0;
	c->in_data = false;
}

/* Message bytes of buf (dot-stuffed, CRLF lines); returns the bytes
 * used: all but a line start too short to tell a dot's meaning. */
static size_t lmtp_body(struct bconn *c, const char *buf, size_t len)
{
	size_t off = 0;
	while (off < len && c->in_data) {
		if (c->at_bol && buf[off] == '.') {
			if (len - off < 3)
				break;	/* ".", ".\r": the end, or a stuffed dot? */
			if (buf[off + 1] == '\r' && buf[off + 2] == '\n') {
				lmtp_delivered(c);
				off += 3;
				break;
			}
			off++;	/* the stuffed dot */
		}
		const char *lf = memchr(buf + off, '\n', len - off);
		size_t n = lf != NULL ? (size_t)(lf - (buf + off)) + 1 : len - off;
		lmtp_body_bytes += n;
		c->at_bol = lf != NULL;
		off += n;
	}
	return off;
}

static void backend_close(struct bconn *c)
{
	close(c->fd);
	sbuf_free(&c->in);
	sbuf_free(&c->out);
	sbuf_free(&c->tail);
	free(c);
}

/* Handles whole lines of buf; returns the bytes used. Stops once a
 * FETCH's message is due, so replies stay in order. */
static size_t backend_input(struct bconn *c, char *buf, size_t len)
{
	size_t off = 0;
	while (off < len && c->body_left == 0 && !c->closing) {
		if (c->in_data) {
			size_t n = lmtp_body(c, buf + off, len - off);
			if (n == 0)
				break;
			off += n;
			continue;
		}
		if (c->lit_skip > 0) {
			size_t n = len - off < c->lit_skip ? len - off : c->lit_skip;
			c->lit_skip -= n;
			off += n;
			continue;
		}
		char *lf = memchr(buf + off, '\n', len - off);
		if (lf == NULL)
			break;
		size_t n = (size_t)(lf - (buf + off));
		if (n > 0 && buf[off + n - 1] == '\r')
			n--;
		buf[off + n] = '\0';
		if (c->lmtp)
			lmtp_line(c, buf + off, n);
		else
			backend_line(c, buf + off, n);
		off = (size_t)(lf - buf) + 1;
	}
	return off;
}

/* Sends what is queued; 1 when all of it went, 0 when the socket is
 * full, -1 on error. */
static int backend_flush(struct bconn *c)
{
	for (;;) {
		const char *data;
		size_t len;
		if (!sbuf_is_empty(&c->out)) {
			data = sbuf_data(&c->out);
			len = sbuf_len(&c->out);
		} else if (c->body_left > 0) {
			data = message + (message_size - c->body_left);
			len = c->body_left;
		} else if (!sbuf_is_empty(&c->tail)) {
			sbuf_append(&c->out, sbuf_data(&c->tail), sbuf_len(&c->tail));
			sbuf_reset(&c->tail);
			continue;
		} else {
			sbuf_release_if_empty(&c->out);
			return 1;
		}
		ssize_t n = write(c->fd, data, len);
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (!sbuf_is_empty(&c->out))
			sbuf_consume(&c->out, (size_t)n);
		else
			c->body_left -= (size_t)n;
	}
}

static void backend_interest(struct bconn *c, bool writing)
{
	struct epoll_event ev = { .events = writing ? EPOLLOUT : EPOLLIN, .data.ptr = c };
	(void)epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Reads, answers, writes; closes on EOF, error or after LOGOUT. */
static void backend_event(struct bconn *c)
{
	char buf[BACKEND_READ];
	for (;;) {
		int f = backend_flush(c);
		if (f < 0)
			break;
		if (f == 0) {
			backend_interest(c, true);
			return;
		}
		if (c->closing)
			break;
		/* the kept partial line first, then new bytes behind it */
		size_t have = sbuf_len(&c->in);
		memcpy(buf, sbuf_data(&c->in), have);
		ssize_t n = 0;
		if (have == 0 || memchr(buf, '\n', have) == NULL) {
			n = read(c->fd, buf + have, sizeof(buf) - have);
			if (n == 0 || (n < 0 && errno != EAGAIN))
				break;
			if (n < 0) {
				backend_interest(c, false);
				return;
			}
		}
		size_t total = have + (size_t)n, used = backend_input(c, buf, total);
		sbuf_reset(&c->in);
		if (total - used >= BACKEND_MAX_LINE)
			break;	/* no line that long in this protocol */
		sbuf_append(&c->in, buf + used, total - used);
		sbuf_release_if_empty(&c->in);
	}
	backend_close(c);
}

static void backend_accept(int lfd, bool lmtp)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != ECONNABORTED)
				perror("accept");
			return;
		}
		struct bconn *c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->lmtp = lmtp;
		snprintf(c->tag, sizeof(c->tag), "*");
		if (lmtp)
			sbuf_appends(&c->out, "220 bench LMTP ready\r\n");
		else
			sbuf_appends(&c->out, "* OK [CAPABILITY " BACKEND_CAPS "] "
				     "loft bench backend ready.\r\n");
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			backend_close(c);
			continue;
		}
		backend_event(c);
	}
}

static void backend_on_signal(int sig)
{
	(void)sig;
	backend_stop = 1;
}

int main(int argc, char **argv)
{
	static int listeners[64];
	static bool lmtp_listener[64];
	size_t nlisteners = 0;
	int opt;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, backend_on_signal);
	signal(SIGINT, backend_on_signal);
	bench_raise_nofile();
	epfd = epoll_create1(EPOLL_CLOEXEC);
	while ((opt = getopt(argc, argv, "l:m:s:")) != -1) {
		struct bench_addr addr;
		switch (opt) {
		case 'l':
		case 'm':
			if (bench_addr_parse(optarg, &addr) < 0 || nlisteners == ARRAY_SIZE(listeners)) {
				fprintf(stderr, "backend: bad listen address %s\n", optarg);
				return 2;
			}
			lmtp_listener[nlisteners] = opt == 'm';
			listeners[nlisteners] = bench_listen(&addr);
			struct epoll_event ev = { .events = EPOLLIN,
						  .data.ptr = &listeners[nlisteners] };
			epoll_ctl(epfd, EPOLL_CTL_ADD, listeners[nlisteners], &ev);
			nlisteners++;
			break;
		case 's':
			message_size = strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: backend [-s message_size] -l ip:port ... "
				"[-m ip:port ...]\n");
			return 2;
		}
	}
	if (nlisteners == 0 || message_size == 0) {
		fprintf(stderr, "usage: backend [-s message_size] -l ip:port ... "
			"[-m ip:port ...]\n");
		return 2;
	}
	backend_make_message();
	while (!backend_stop) {
		struct epoll_event evs[256];
		int n = epoll_wait(epfd, evs, (int)ARRAY_SIZE(evs), -1);
		for (int i = 0; i < n; i++) {
			int *p = evs[i].data.ptr;
			if (p >= listeners && p < listeners + nlisteners)
				backend_accept(*p, lmtp_listener[p - listeners]);
			else
				backend_event(evs[i].data.ptr);
		}
	}
	fprintf(stderr, "backend: lmtp messages=%llu deliveries=%llu body_bytes=%llu\n",
		lmtp_messages, lmtp_deliveries, lmtp_body_bytes);
	return 0;
}
