/* Lifetime and lookups of a loaded configuration. */
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "conf/config_table.h"

struct config *config_ref(struct config *cfg)
{
	cfg->extra_refs++;
	return cfg;
}

void config_free(struct config **cfgp)
{
	config_unref(cfgp);
}

void config_unref(struct config **cfgp)
{
	struct config *cfg = *cfgp;
	if (cfg == NULL)
		return;
	*cfgp = NULL;
	if (cfg->extra_refs > 0) {
		cfg->extra_refs--;
		return;
	}
	for (const struct conf_key *k = config_root_keys; k->name != NULL; k++)
		conf_free_key(k, cfg);
	for (size_t i = 0; i < cfg->sources_count; i++) {
		free(cfg->sources[i].key);
		free(cfg->sources[i].where);
	}
	free(cfg->sources);
	free(cfg->path);
	free(cfg);
}

const char *config_source(const struct config *cfg, const char *key)
{
	for (size_t i = 0; i < cfg->sources_count; i++) {
		if (strcmp(cfg->sources[i].key, key) == 0)
			return cfg->sources[i].where;
	}
	return cfg->path;
}

unsigned int config_listener_port(const struct config_listener *l)
{
	/* standard ports per protocol: { plain, implicit TLS } */
	static const unsigned int ports[][2] = {
		[CONF_PROTOCOL_IMAP] = { 143, 993 },
		[CONF_PROTOCOL_POP3] = { 110, 995 },
		/* ManageSieve has no port of its own for implicit TLS */
		[CONF_PROTOCOL_MANAGESIEVE] = { 4190, 4190 },
		[CONF_PROTOCOL_SUBMISSION] = { 587, 465 },
		[CONF_PROTOCOL_LMTP] = { 24, 24 },
	};
	if (l->port != 0)
		return l->port;
	return ports[l->protocol][l->tls ? 1 : 0];
}
