/* Backend hosts ("mail servers") and parsing of their configuration form
 * (reference §1.2, §1.4, §11.1): "ip", "ip@tag", "ip1-ip2[@tag]" where
 * only the last 8 (IPv4) or 16 (IPv6) bits differ, or a host name, which
 * stands for every address it resolves to. */
#ifndef LOFT_DIRECTOR_HOSTS_H
#define LOFT_DIRECTOR_HOSTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/net.h"

#define DIRECTOR_VHOST_DEFAULT 100
#define DIRECTOR_VHOST_MAX 1000

enum director_health {
	DIRECTOR_HEALTH_UNKNOWN,	/* not checked yet: routed to */
	DIRECTOR_HEALTH_OK,
	DIRECTOR_HEALTH_FAILING,	/* off the rings until it passes again */
};

/* What is counted of a host as it is used, for metrics: the proxy counts
 * through the const host the director routed it to (the host's routing
 * state is the director's to change, these counters are not), and
 * src/metrics reads them at scrape time. */
struct director_host_stats {
	uint64_t connections;	/* backend connections begun (logins, LMTP) */
	uint64_t failures;	/* of those: unreachable, TLS, protocol,
				 * timeout, or a refusal of the backend's own */
};

struct director_host {
	struct ipaddr ip;
	char ip_str[IPADDR_STRLEN];	/* what the ring hashes (§1.2) */
	char *hostname;			/* NULL when given as an address */
	char *tag;			/* "" for no tag */
	unsigned int vhost_count;
	bool down;			/* set down by an admin */
	bool unhealthy;			/* failing health checks */
	enum director_health health;	/* what the checks say (if any) */
	time_t health_changed;		/* when health last changed; 0: never */
	char *health_error;		/* the last failed check's reason */
	time_t last_updown;
	unsigned int user_count;	/* assignments in the user directory */
	struct director_host_stats *stats;	/* owned; never NULL */
};

struct director_host_list {
	struct director_host **hosts;	/* sorted by address */
	size_t count;
	size_t cap;
};

/* Expands one configuration entry into hosts appended to list (duplicates
 * of existing addresses are skipped). Host names are resolved with
 * getaddrinfo(), so call this at start-up, never on the event loop. */
int director_hosts_parse(struct director_host_list *list, const char *spec,
			 char **error_r);
void director_host_list_free(struct director_host_list *list);
/* Adds a host with the default vhost count; NULL if the address is
 * already listed. */
struct director_host *director_host_list_add(struct director_host_list *list,
					     const struct ipaddr *ip,
					     const char *hostname, const char *tag);
/* Takes a host out of the list without freeing it, and puts one (taken
 * out of another list) in. */
void director_host_list_unlink(struct director_host_list *list,
			       struct director_host *host);
void director_host_list_append(struct director_host_list *list,
			       struct director_host *host);
/* Removes and frees a host. */
void director_host_list_remove(struct director_host_list *list,
			       struct director_host *host);

struct director_host *director_host_list_find(const struct director_host_list *list,
					      const struct ipaddr *ip);

#endif
