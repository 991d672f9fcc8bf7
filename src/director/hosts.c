/* Host list parsing and lookup. */
#include "director/hosts.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

static int director_host_cmp(const void *a, const void *b)
{
	const struct director_host *const *ha = a, *const *hb = b;
	return ipaddr_cmp(&(*ha)->ip, &(*hb)->ip);
}

/* Takes h into the list, in address order. */
static void director_host_list_take(struct director_host_list *list,
				    struct director_host *h)
{
	list->hosts = xgrow(list->hosts, &list->cap, list->count + 1,
			    sizeof(*list->hosts));
	list->hosts[list->count++] = h;
	qsort(list->hosts, list->count, sizeof(*list->hosts), director_host_cmp);
}

struct director_host *director_host_list_add(struct director_host_list *list,
					     const struct ipaddr *ip,
					     const char *hostname, const char *tag)
{
	if (director_host_list_find(list, ip) != NULL)
		return NULL;
	struct director_host *h = xcalloc(1, sizeof(*h));
	h->ip = *ip;
	ipaddr_to_str(ip, h->ip_str);
	h->hostname = hostname == NULL ? NULL : xstrdup(hostname);
	h->tag = xstrdup(tag);
	h->vhost_count = DIRECTOR_VHOST_DEFAULT;
	h->stats = xcalloc(1, sizeof(*h->stats));
	director_host_list_take(list, h);
	return h;
}

static void director_host_free(struct director_host *h)
{
	free(h->health_error);
	free(h->hostname);
	free(h->tag);
	free(h->stats);
	free(h);
}

void director_host_list_unlink(struct director_host_list *list,
			       struct director_host *host)
{
	for (size_t i = 0; i < list->count; i++) {
		if (list->hosts[i] == host) {
			memmove(&list->hosts[i], &list->hosts[i + 1],
				(list->count - i - 1) * sizeof(*list->hosts));
			list->count--;
			return;
		}
	}
}

void director_host_list_append(struct director_host_list *list,
			       struct director_host *host)
{
	director_host_list_take(list, host);
}

void director_host_list_remove(struct director_host_list *list,
			       struct director_host *host)
{
	director_host_list_unlink(list, host);
	director_host_free(host);
}

/* "ip1-ip2": both ends must differ only in the last byte (IPv4) or the
 * last two bytes (IPv6). */
static int director_hosts_parse_range(struct director_host_list *list,
				      const char *a, const char *b,
				      const char *tag, char **error_r)
{
	struct ipaddr ip1, ip2;
	if (ipaddr_parse(a, &ip1) < 0 || ipaddr_parse(b, &ip2) < 0 ||
	    ip1.family != ip2.family) {
		*error_r = xasprintf("invalid address range %s-%s", a, b);
		return -1;
	}
	size_t len = ip1.family == AF_INET ? 4 : 16;
	size_t fixed = ip1.family == AF_INET ? 3 : 14;
	uint8_t *p1 = (uint8_t *)&ip1.u, *p2 = (uint8_t *)&ip2.u;
	if (memcmp(p1, p2, fixed) != 0 || memcmp(p1, p2, len) > 0) {
		*error_r = xasprintf("invalid address range %s-%s (only the last %s may differ, low to high)",
				     a, b, ip1.family == AF_INET ? "byte" : "16 bits");
		return -1;
	}
	unsigned int lo = len == 4 ? p1[3] : (unsigned int)(p1[14] << 8 | p1[15]);
	unsigned int hi = len == 4 ? p2[3] : (unsigned int)(p2[14] << 8 | p2[15]);
	for (unsigned int v = lo; v <= hi; v++) {
		struct ipaddr ip = ip1;
		uint8_t *p = (uint8_t *)&ip.u;
		if (len == 4) {
			p[3] = (uint8_t)v;
		} else {
			p[14] = (uint8_t)(v >> 8);
			p[15] = (uint8_t)v;
		}
		(void)director_host_list_add(list, &ip, NULL, tag);
	}
	return 0;
}

static int director_hosts_resolve(struct director_host_list *list,
				  const char *name, const char *tag,
				  char **error_r)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int ret = getaddrinfo(name, NULL, &hints, &res);
	if (ret != 0) {
		*error_r = xasprintf("cannot resolve host '%s': %s", name,
				     gai_strerror(ret));
		return -1;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		struct ipaddr ip;
		uint16_t port;
		ipaddr_from_sockaddr(ai->ai_addr, &ip, &port);
		if (ipaddr_is_set(&ip))
			(void)director_host_list_add(list, &ip, name, tag);
	}
	freeaddrinfo(res);
	return 0;
}

int director_hosts_parse(struct director_host_list *list, const char *spec,
			 char **error_r)
{
	char *copy = xstrdup(spec);
	const char *tag = "";
	char *at = strrchr(copy, '@');
	int ret;

	if (at != NULL) {
		*at = '\0';
		tag = at + 1;
	}
	struct ipaddr ip;
	/* a '-' inside an IPv4 or IPv6 literal cannot occur; in a host
	 * name it can, so only split when both sides are addresses */
	char *dash = strchr(copy, '-');
	if (copy[0] == '\0') {
		*error_r = xasprintf("empty host in '%s'", spec);
		ret = -1;
	} else if (ipaddr_parse(copy, &ip) == 0) {
		(void)director_host_list_add(list, &ip, NULL, tag);
		ret = 0;
	} else if (dash != NULL) {
		*dash = '\0';
		struct ipaddr tmp;
		if (ipaddr_parse(copy, &tmp) == 0) {
			ret = director_hosts_parse_range(list, copy, dash + 1, tag,
							 error_r);
		} else {
			*dash = '-';
			ret = director_hosts_resolve(list, copy, tag, error_r);
		}
	} else {
		ret = director_hosts_resolve(list, copy, tag, error_r);
	}
	free(copy);
	return ret;
}

void director_host_list_free(struct director_host_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		director_host_free(list->hosts[i]);
	free(list->hosts);
	list->hosts = NULL;
	list->count = list->cap = 0;
}

struct director_host *director_host_list_find(const struct director_host_list *list,
					      const struct ipaddr *ip)
{
	size_t lo = 0, hi = list->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = ipaddr_cmp(&list->hosts[mid]->ip, ip);
		if (c == 0)
			return list->hosts[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
