/* State shared by every protocol front. */
#include "proto/front.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void front_init(struct front *f, const struct front_ops *ops,
		const struct front_params *params)
{
	memset(f, 0, sizeof(*f));
	f->ops = ops;
	f->params = *params;
	f->forward.ttl = FRONT_PROXY_TTL_DEFAULT;
}

void front_login_clear(struct front *f)
{
	sasl_credentials_clear(&f->login.creds);
	f->login.mech = NULL;
}

void front_deinit(struct front *f)
{
	front_login_clear(f);
}

void front_forward_apply(struct front *f, const char *name, const char *value)
{
	struct front_forward *fw = &f->forward;

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
