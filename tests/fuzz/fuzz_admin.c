/* The admin socket end to end: a real admin server (line server, command
 * tables, filters, tab-escaping, director commands) on a UNIX socket,
 * fed the input after the handshake as a client would send it. Each input
 * gets a fresh director and registry, so runs do not depend on each
 * other. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "admin/admin.h"
#include "admin/admin_wire.h"
#include "common/log.h"
#include "director/director.h"
#include "fuzz_config_text.h"
#include "registry/filter.h"
#include "registry/registry.h"

#define FUZZ_ADMIN_TURNS 2000

static const char fuzz_admin_conf[] =
	"base_dir = \"/tmp\";\nstate_dir = \"\";\nallow_root = true;\n"
	"listeners = ( { protocol = \"imap\"; address = \"127.0.0.1\"; port = 1143; } );\n"
	"passdb = ( { driver = \"backend\"; } );\n"
	"director = { mail_servers = [ \"127.0.0.11\", \"127.0.0.12@tag1\", \"10.0.0.1-10.0.0.3\" ]; };\n";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;
static struct config *cfg;
static char path[64];

static void fuzz_kick(struct registry_entry *e, const char *text)
{
	(void)text;
	e->kicked = true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char *error = NULL;
	log_set_level(LOG_LEVEL_ERROR);
	base = event_base_new();
	cfg = fuzz_config_load(fuzz_admin_conf, sizeof(fuzz_admin_conf) - 1, &error);
	if (cfg == NULL) {
		fprintf(stderr, "fuzz_admin: %s\n", error);
		abort();
	}
	snprintf(path, sizeof(path), "/tmp/loft-fuzz-admin-%d", (int)getpid());
	return 0;
}

static void fuzz_kick_one(struct registry_entry *e, void *ctx)
{
	if (registry_kick(e, "Kicked by admin."))
		(*(size_t *)ctx)++;
}

/* director kick reaches the sessions as loftd's proxy does it */
static size_t fuzz_director_kick(void *ctx, const char *field, const char *value)
{
	const char *names[1] = { value };
	struct registry_filter f = {
		.user_masks = names, .user_masks_count = 1, .alt_field = field,
		.exact = true,
	};
	size_t n = 0;
	registry_match(ctx, &f, fuzz_kick_one, &n);
	return n;
}

static void fuzz_turn(void)
{
	event_base_loop(base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *error = NULL;
	struct director *d = director_new(cfg, base, &error);
	struct registry reg;
	registry_init(&reg);
	struct registry_entry sessions[3];
	static const char *const users[] = { "jane", "bob", "Jane" };
	memset(sessions, 0, sizeof(sessions));
	for (size_t i = 0; i < 3; i++) {
		struct registry_entry *e = &sessions[i];
		e->id = i + 1;
		e->service = "imap";
		e->state = REGISTRY_STATE_PROXYING;
		e->kick = e->shutdown = fuzz_kick;
		(void)ipaddr_parse(i == 2 ? "2001:db8::5" : "192.0.2.5", &e->client_ip);
		registry_add(&reg, e);
		registry_set_user(&reg, e, users[i], (uint32_t)(i + 1));
		registry_add_alt(e, "user_dept", "sales\tdept");
	}
	struct director_callbacks cb = { .kick = fuzz_director_kick };
	director_set_callbacks(d, &cb, &reg);
	struct line_server_access access = { .max_clients = 4 };
	struct admin *a = admin_new(base, path, &reg, d, "127.0.0.1", &access, &error);
	if (a == NULL) {
		fprintf(stderr, "fuzz_admin: %s\n", error);
		abort();
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		abort();
	/* the handshake, the input, the end of input; replies are read and
	 * dropped while the server works */
	struct sbuf out = SBUF_INIT;
	sbuf_appends(&out, ADMIN_VERSION_LINE);
	sbuf_append(&out, data, size);
	bool eof = false, shut = false;
	for (int turn = 0; turn < FUZZ_ADMIN_TURNS && !eof; turn++) {
		if (sbuf_len(&out) > 0) {
			ssize_t n = write(fd, sbuf_data(&out), sbuf_len(&out));
			if (n > 0)
				sbuf_consume(&out, (size_t)n);
			else if (n < 0 && errno != EAGAIN)
				break;
		} else if (!shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		fuzz_turn();
		char buf[65536];
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			;
		eof = n == 0;
	}
	close(fd);
	sbuf_free(&out);
	fuzz_turn();
	admin_free(&a);
	for (size_t i = 0; i < 3; i++)
		registry_remove(&reg, &sessions[i]);
	registry_deinit(&reg);
	director_free(&d);
	return 0;
}
