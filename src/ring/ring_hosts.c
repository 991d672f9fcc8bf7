/* The ring's host list, P/hosts (doc/ring.md §1): its JSON, and an
 * admin's host change applied to a copy of it, with the director's
 * semantics and messages (reference §2.5, §4.2): a host set creates the
 * host (100 vhosts unless given) or changes its vhost count, and its tag
 * never changes; update needs the host; up and down record when; remove
 * takes the host out.
 *
 *   {"hosts":[{"ip":"10.0.0.1","tag":"","vhosts":100,"down":false,
 *              "updown":0}, ...]}
 *
 * and, once the ring agreed on one (§7), the host's health verdict:
 * "health":"ok"|"failing","health_changed":<time>.
 *
 * Hosts are kept in address order, so the same list is the same bytes on
 * every node. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "director/director.h"
#include "ring/ring_private.h"

void ring_hosts_free(struct ring_hosts *h)
{
	for (size_t i = 0; i < h->count; i++)
		free(h->tags[i]);
	free(h->tags);
	free(h->hosts);
	memset(h, 0, sizeof(*h));
}

static int ring_host_cmp(const void *a, const void *b)
{
	const struct director_host_spec *x = a, *y = b;
	return ipaddr_cmp(&x->ip, &y->ip);
}

static struct director_host_spec *ring_hosts_add(struct ring_hosts *h,
						 const struct ipaddr *ip, const char *tag)
{
	h->hosts = xgrow(h->hosts, &h->cap, h->count + 1, sizeof(*h->hosts));
	h->tags = xgrow(h->tags, &h->tags_cap, h->count + 1, sizeof(*h->tags));
	h->tags[h->count] = xstrdup(tag);
	struct director_host_spec *s = &h->hosts[h->count++];
	memset(s, 0, sizeof(*s));
	s->ip = *ip;
	s->tag = h->tags[h->count - 1];
	s->vhosts = DIRECTOR_VHOST_DEFAULT;
	return s;
}

struct director_host_spec *ring_hosts_find(const struct ring_hosts *h,
					   const struct ipaddr *ip)
{
	for (size_t i = 0; i < h->count; i++) {
		if (ipaddr_equal(&h->hosts[i].ip, ip))
			return &h->hosts[i];
	}
	return NULL;
}

void ring_hosts_copy(struct ring_hosts *dst, const struct ring_hosts *src)
{
	memset(dst, 0, sizeof(*dst));
	for (size_t i = 0; i < src->count; i++) {
		struct director_host_spec *s = ring_hosts_add(dst, &src->hosts[i].ip,
							      src->hosts[i].tag);
		*s = src->hosts[i];
		s->tag = dst->tags[dst->count - 1];
	}
}

void ring_hosts_from_director(struct ring_hosts *h, const struct director_host_list *list)
{
	memset(h, 0, sizeof(*h));
	for (size_t i = 0; i < list->count; i++) {
		const struct director_host *d = list->hosts[i];
		struct director_host_spec *s = ring_hosts_add(h, &d->ip, d->tag);
		s->vhosts = d->vhost_count;
		s->down = d->down;
		s->last_updown = d->last_updown;
		/* no health verdict: the ring agrees on its own (§7) */
	}
}

static const char *const ring_health_names[] = {
	[DIRECTOR_HEALTH_UNKNOWN] = NULL,
	[DIRECTOR_HEALTH_OK] = "ok",
	[DIRECTOR_HEALTH_FAILING] = "failing",
};

const char *ring_health_name(enum director_health health)
{
	return ring_health_names[health];
}

int ring_health_parse(const char *name, enum director_health *health_r)
{
	for (size_t i = 0; i < ARRAY_SIZE(ring_health_names); i++) {
		if (ring_health_names[i] != NULL && name != NULL &&
		    strcmp(name, ring_health_names[i]) == 0) {
			*health_r = (enum director_health)i;
			return 0;
		}
	}
	return -1;
}

char *ring_hosts_to_json(const struct ring_hosts *h)
{
	struct ring_hosts sorted;
	ring_hosts_copy(&sorted, h);
	/* tags[] keeps its order: it is only freed, all at once */
	qsort(sorted.hosts, sorted.count, sizeof(*sorted.hosts), ring_host_cmp);
	json_t *arr = json_array();
	for (size_t i = 0; i < sorted.count; i++) {
		const struct director_host_spec *s = &sorted.hosts[i];
		char ip[IPADDR_STRLEN];
		json_t *e = json_pack("{s:s, s:s, s:i, s:b, s:I}",
			"ip", ipaddr_to_str(&s->ip, ip), "tag", s->tag, "vhosts", (int)s->vhosts,
			"down", s->down, "updown", (json_int_t)s->last_updown);
		if (s->health != DIRECTOR_HEALTH_UNKNOWN) {
			/* the agreed verdict (§7); absent: none yet */
			json_object_set_new(e, "health",
					    json_string(ring_health_name(s->health)));
			json_object_set_new(e, "health_changed",
					    json_integer((json_int_t)s->health_changed));
		}
		json_array_append_new(arr, e);
	}
	json_t *o = json_pack("{s:o}", "hosts", arr);
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	ring_hosts_free(&sorted);
	return text;
}

int ring_hosts_from_json(struct ring_hosts *h, const void *data, size_t len,
			 char **error_r)
{
	json_error_t jerr;
	json_t *o = json_loadb(data, len, 0, &jerr);
	json_t *arr = json_object_get(o, "hosts");
	memset(h, 0, sizeof(*h));
	if (!json_is_array(arr)) {
		*error_r = xasprintf("not a host list: %s", o == NULL ? jerr.text : "no hosts");
		json_decref(o);
		return -1;
	}
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e) {
		struct ipaddr ip;
		const char *ips = json_string_value(json_object_get(e, "ip"));
		const char *tag = json_string_value(json_object_get(e, "tag"));
		json_int_t vhosts = json_integer_value(json_object_get(e, "vhosts"));
		if (ips == NULL || ipaddr_parse(ips, &ip) < 0 || tag == NULL ||
		    vhosts < 0 || vhosts > DIRECTOR_VHOST_MAX) {
			*error_r = xasprintf("host %zu of the list is invalid", i + 1);
			ring_hosts_free(h);
			json_decref(o);
			return -1;
		}
		struct director_host_spec *s = ring_hosts_add(h, &ip, tag);
		s->vhosts = (unsigned int)vhosts;
		s->down = json_is_true(json_object_get(e, "down"));
		s->last_updown = (time_t)json_integer_value(json_object_get(e, "updown"));
		/* an unknown verdict (a newer node's) counts as none */
		if (ring_health_parse(json_string_value(json_object_get(e, "health")),
				      &s->health) == 0)
			s->health_changed = (time_t)json_integer_value(
				json_object_get(e, "health_changed"));
	}
	json_decref(o);
	return 0;
}

enum director_result ring_hosts_change(struct ring_hosts *h, const struct director_change *c,
				       const char **error_r)
{
	struct director_host_spec *s = ring_hosts_find(h, &c->ip);
	switch (c->type) {
	case DIRECTOR_CHANGE_HOST_SET:
		if (c->vhosts > DIRECTOR_VHOST_MAX) {
			*error_r = "vhost count too large";
			return DIRECTOR_INVALID;
		}
		if (s == NULL)
			s = ring_hosts_add(h, &c->ip, c->tag != NULL ? c->tag : "");
		else if (c->tag != NULL && strcmp(c->tag, s->tag) != 0) {
			*error_r = "host tag can't be changed";
			return DIRECTOR_INVALID;
		}
		if (c->vhosts >= 0)
			s->vhosts = (unsigned int)c->vhosts;
		return DIRECTOR_OK;
	case DIRECTOR_CHANGE_HOST_UPDATE:
		if (s == NULL)
			return DIRECTOR_NOTFOUND;
		if (c->vhosts < 0 || c->vhosts > DIRECTOR_VHOST_MAX) {
			*error_r = c->vhosts < 0 ? "invalid vhost count" : "vhost count too large";
			return DIRECTOR_INVALID;
		}
		s->vhosts = (unsigned int)c->vhosts;
		return DIRECTOR_OK;
	case DIRECTOR_CHANGE_HOST_UP:
	case DIRECTOR_CHANGE_HOST_DOWN:
		if (s == NULL)
			return DIRECTOR_NOTFOUND;
		if (s->down != (c->type == DIRECTOR_CHANGE_HOST_DOWN)) {
			s->down = !s->down;
			s->last_updown = c->now;
		}
		return DIRECTOR_OK;
	case DIRECTOR_CHANGE_HOST_REMOVE:
		if (s == NULL)
			return DIRECTOR_NOTFOUND;
		size_t i = (size_t)(s - h->hosts);
		free(h->tags[i]);
		h->count--;
		h->hosts[i] = h->hosts[h->count];
		h->tags[i] = h->tags[h->count];
		return DIRECTOR_OK;
	default:
		*error_r = "not a host change";
		return DIRECTOR_INVALID;
	}
}
