/* State shared by every protocol front. */
#include "proto/front.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/base64.h"
#include "common/xmalloc.h"

void front_init(struct front *f, const struct front_ops *ops,
		const struct front_params *params)
{
	memset(f, 0, sizeof(*f));
	f->ops = ops;
	f->params = *params;
	front_forward_init(&f->forward);
}

void front_append_sanitized(struct sbuf *out, const char *text)
{
	for (; *text != '\0'; text++)
		sbuf_appendc(out, *text == '\r' || *text == '\n' ? ' ' : *text);
}

void front_append_auth_failure(struct sbuf *out, const char *const prefixes[],
			       enum front_auth_status status, const char *text)
{
	sbuf_appends(out, prefixes[status]);
	if (status == FRONT_AUTH_TEMPFAIL && text == NULL)
		text = "Temporary authentication failure.";
	if (status != FRONT_AUTH_FAILED)
		front_append_sanitized(out, text);
}

void front_forward_init(struct front_forward *fw)
{
	memset(fw, 0, sizeof(*fw));
	fw->ttl = FRONT_PROXY_TTL_DEFAULT;
}

void front_login_clear(struct front *f)
{
	sasl_credentials_clear(&f->login.creds);
	f->login.mech = NULL;
}

void front_deinit(struct front *f)
{
	front_login_clear(f);
	free(f->helo);
	f->helo = NULL;
}

void front_forward_apply(struct front_forward *fw, const char *name, const char *value)
{
	if (strncasecmp(name, "x-", 2) == 0)
		name += 2;
	if (strcasecmp(name, "originating-ip") == 0) {
		if (ipaddr_parse(value, &fw->ip) == 0)
			fw->have_ip = true;
	} else if (strcasecmp(name, "originating-port") == 0) {
		(void)port_parse(value, &fw->port);
	} else if (strcasecmp(name, "connected-ip") == 0) {
		if (ipaddr_parse(value, &fw->local_ip) == 0)
			fw->have_local = true;
	} else if (strcasecmp(name, "connected-port") == 0) {
		(void)port_parse(value, &fw->local_port);
	} else if (strcasecmp(name, "proxy-ttl") == 0) {
		char *end;
		unsigned long ttl = strtoul(value, &end, 10);
		/* a trusted upstream may only lower the TTL (§10.5) */
		if (*value != '\0' && *end == '\0' && ttl < fw->ttl)
			fw->ttl = (unsigned int)ttl;
	} else if (strcasecmp(name, "session-id") == 0 ||
		   strcasecmp(name, "session-ext-id") == 0) {
		size_t len = strlen(value);
		if (len < sizeof(fw->session_id))
			memcpy(fw->session_id, value, len + 1);
	}
}

void front_sasl_start(struct sasl_server *s, const struct sasl_mech *mech,
		      struct sbuf *challenge_b64)
{
	struct sbuf challenge = SBUF_INIT;
	sasl_server_init(s, mech);
	sasl_server_initial_challenge(s, &challenge);
	base64_encode(challenge_b64, sbuf_data(&challenge), sbuf_len(&challenge));
	sbuf_free(&challenge);
}

static enum front_sasl_result front_sasl_step(struct front *f, struct sasl_server *s,
					      const unsigned char *resp, size_t len,
					      struct sbuf *challenge_b64)
{
	struct sbuf challenge = SBUF_INIT;
	const char *error;
	enum front_sasl_result r = FRONT_SASL_FAIL;

	switch (sasl_server_step(s, resp, len, &challenge, &error)) {
	case SASL_CONTINUE:
		base64_encode(challenge_b64, sbuf_data(&challenge), sbuf_len(&challenge));
		sbuf_free(&challenge);
		return FRONT_SASL_CONTINUE;
	case SASL_DONE:
		f->login.mech = s->mech;
		sasl_server_take_credentials(s, &f->login.creds);
		r = FRONT_SASL_DONE;
		break;
	case SASL_FAIL:
		break;
	}
	sbuf_free(&challenge);
	sasl_server_deinit(s);
	return r;
}

enum front_sasl_result front_sasl_input(struct front *f, struct sasl_server *s,
					const unsigned char *data, size_t len,
					struct sbuf *challenge_b64)
{
	if (len == 1 && data[0] == '=')
		return front_sasl_step(f, s, data, 0, challenge_b64);
	unsigned char *decoded = xmalloc(BASE64_DECODED_MAX(len));
	long n = base64_decode((const char *)data, len, decoded);
	enum front_sasl_result r;
	if (n < 0) {
		sasl_server_deinit(s);
		r = FRONT_SASL_BAD_BASE64;
	} else {
		r = front_sasl_step(f, s, decoded, (size_t)n, challenge_b64);
	}
	explicit_bzero(decoded, BASE64_DECODED_MAX(len));
	free(decoded);
	return r;
}

void front_xclient_attr(struct front_forward *fw, char *token)
{
	static const struct {
		const char *attr, *forward;
	} attrs[] = {
		{ "ADDR", "originating-ip" }, { "PORT", "originating-port" },
		{ "SESSION", "session-id" }, { "TTL", "proxy-ttl" },
	};
	char *eq = strchr(token, '=');
	if (eq == NULL)
		return;
	*eq = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(attrs); i++) {
		if (strcasecmp(token, attrs[i].attr) == 0)
			front_forward_apply(fw, attrs[i].forward, eq + 1);
	}
}

void front_xclient_line(struct front_forward *fw, char *args)
{
	char *save;
	for (char *tok = strtok_r(args, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save))
		front_xclient_attr(fw, tok);
}
