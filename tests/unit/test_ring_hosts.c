/* Unit tests for the ring's host list (src/ring/ring_hosts.c): its JSON
 * (the same list is the same bytes on every node), what a bad value is
 * refused with, and an admin's change applied with the director's
 * semantics (reference §2.5, §4.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "director/hosts.h"
#include "ring/ring_private.h"

static struct director_change change(enum director_change_type type, const char *ip,
				     int vhosts, const char *tag, time_t now)
{
	struct director_change c = { .type = type, .vhosts = vhosts, .tag = tag, .now = now };
	assert_int_equal(ipaddr_parse(ip, &c.ip), 0);
	return c;
}

static enum director_result apply(struct ring_hosts *h, struct director_change c,
				  const char **error_r)
{
	const char *error = NULL;
	enum director_result res = ring_hosts_change(h, &c, &error);
	if (error_r != NULL)
		*error_r = error;
	return res;
}

static void expect_json(const struct ring_hosts *h, const char *want)
{
	char *got = ring_hosts_to_json(h);
	if (strcmp(got, want) != 0)
		fail_msg("got:  %s\nwant: %s", got, want);
	free(got);
}

#define HOST(ip, tag, vhosts, down, updown) \
	"{\"down\":" down ",\"ip\":\"" ip "\",\"tag\":\"" tag "\",\"updown\":" \
	#updown ",\"vhosts\":" #vhosts "}"

static void test_json_sorted_and_read_back(void **state)
{
	(void)state;
	struct ring_hosts h = { 0 };
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_SET, "10.0.0.2", -1, "t/x", 0),
			       NULL), DIRECTOR_OK);
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_SET, "10.0.0.10", 7, NULL, 0),
			       NULL), DIRECTOR_OK);
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_SET, "10.0.0.1", 0, NULL, 0),
			       NULL), DIRECTOR_OK);
	/* address order, not insertion or text order */
	const char *want = "{\"hosts\":[" HOST("10.0.0.1", "", 0, "false", 0) ","
		HOST("10.0.0.2", "t/x", 100, "false", 0) ","
		HOST("10.0.0.10", "", 7, "false", 0) "]}";
	expect_json(&h, want);

	/* read back (a commit's value carries its change's id too) */
	char *text = ring_hosts_to_json(&h);
	size_t len = strlen(text);
	char *with_id = malloc(len + 16);
	memcpy(with_id, text, len - 1);
	strcpy(with_id + len - 1, ",\"id\":\"n-1-1\"}");
	struct ring_hosts back;
	char *error = NULL;
	assert_int_equal(ring_hosts_from_json(&back, with_id, strlen(with_id), &error), 0);
	expect_json(&back, want);
	assert_string_equal(back.hosts[1].tag, "t/x");

	/* a copy is its own: changing it leaves the original whole */
	struct ring_hosts copy;
	ring_hosts_copy(&copy, &back);
	assert_int_equal(apply(&copy, change(DIRECTOR_CHANGE_HOST_REMOVE, "10.0.0.1", -1,
					     NULL, 0), NULL), DIRECTOR_OK);
	assert_int_equal(copy.count, 2);
	expect_json(&back, want);
	ring_hosts_free(&copy);
	ring_hosts_free(&back);
	ring_hosts_free(&h);
	free(text);
	free(with_id);
}

/* The agreed health verdict (doc/ring.md §7) is part of the list: written
 * only once there is one, read back, kept by copies and admin changes; a
 * verdict this version does not know counts as none. */
static void test_json_health(void **state)
{
	(void)state;
	struct ring_hosts h = { 0 };
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_SET, "10.0.0.1", -1, NULL, 0),
			       NULL), DIRECTOR_OK);
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_SET, "10.0.0.2", -1, NULL, 0),
			       NULL), DIRECTOR_OK);
	h.hosts[1].health = DIRECTOR_HEALTH_FAILING;
	h.hosts[1].health_changed = 1700000000;
	const char *want = "{\"hosts\":[" HOST("10.0.0.1", "", 100, "false", 0) ","
		"{\"down\":false,\"health\":\"failing\",\"health_changed\":1700000000,"
		"\"ip\":\"10.0.0.2\",\"tag\":\"\",\"updown\":0,\"vhosts\":100}]}";
	expect_json(&h, want);
	struct ring_hosts back;
	char *error = NULL;
	assert_int_equal(ring_hosts_from_json(&back, want, strlen(want), &error), 0);
	assert_int_equal(back.hosts[1].health, DIRECTOR_HEALTH_FAILING);
	assert_int_equal(back.hosts[0].health, DIRECTOR_HEALTH_UNKNOWN);
	assert_int_equal(apply(&back, change(DIRECTOR_CHANGE_HOST_DOWN, "10.0.0.1", -1, NULL, 5),
			       NULL), DIRECTOR_OK);
	struct ring_hosts copy;
	ring_hosts_copy(&copy, &back);
	assert_int_equal(copy.hosts[1].health, DIRECTOR_HEALTH_FAILING);
	assert_int_equal(copy.hosts[1].health_changed, 1700000000);
	ring_hosts_free(&copy);
	ring_hosts_free(&back);

	const char *odd = "{\"hosts\":[{\"health\":\"sulking\",\"health_changed\":9,"
		"\"ip\":\"10.0.0.1\",\"tag\":\"\",\"vhosts\":1}]}";
	assert_int_equal(ring_hosts_from_json(&back, odd, strlen(odd), &error), 0);
	assert_int_equal(back.hosts[0].health, DIRECTOR_HEALTH_UNKNOWN);
	assert_int_equal(back.hosts[0].health_changed, 0);
	ring_hosts_free(&back);
	ring_hosts_free(&h);
}

static void test_json_refused(void **state)
{
	(void)state;
	static const struct {
		const char *value, *error;
	} cases[] = {
		{ "not json", "not a host list: " },
		{ "{\"hostz\":[]}", "not a host list: no hosts" },
		{ "{\"hosts\":{}}", "not a host list: no hosts" },
		{ "{\"hosts\":[{\"ip\":\"10.0.0.1\",\"tag\":\"\",\"vhosts\":1},"
		  "{\"ip\":\"nowhere\",\"tag\":\"\",\"vhosts\":1}]}", "host 2 of the list is invalid" },
		{ "{\"hosts\":[{\"ip\":\"10.0.0.1\",\"vhosts\":1}]}", "host 1 of the list is invalid" },
		{ "{\"hosts\":[{\"ip\":\"10.0.0.1\",\"tag\":\"\",\"vhosts\":1001}]}",
		  "host 1 of the list is invalid" },
		{ "{\"hosts\":[{\"ip\":\"10.0.0.1\",\"tag\":\"\",\"vhosts\":-1}]}",
		  "host 1 of the list is invalid" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ring_hosts h;
		char *error = NULL;
		assert_int_equal(ring_hosts_from_json(&h, cases[i].value, strlen(cases[i].value),
						      &error), -1);
		if (strncmp(error, cases[i].error, strlen(cases[i].error)) != 0)
			fail_msg("%s: got \"%s\", want \"%s...\"", cases[i].value, error,
				 cases[i].error);
		assert_int_equal(h.count, 0);
		free(error);
	}
	struct ring_hosts empty;
	char *error = NULL;
	assert_int_equal(ring_hosts_from_json(&empty, "{\"hosts\":[]}", 12, &error), 0);
	assert_int_equal(empty.count, 0);
	ring_hosts_free(&empty);
}

static void test_changes(void **state)
{
	(void)state;
	struct ring_hosts h = { 0 };
	const char *error;
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_SET, "10.0.0.1", -1, "a", 0),
			       NULL), DIRECTOR_OK);
	assert_int_equal(h.hosts[0].vhosts, DIRECTOR_VHOST_DEFAULT);
	/* set again: the vhost count changes, the tag may not */
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_SET, "10.0.0.1", 5, "a", 0),
			       NULL), DIRECTOR_OK);
	assert_int_equal(h.hosts[0].vhosts, 5);
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_SET, "10.0.0.1", 5, "b", 0),
			       &error), DIRECTOR_INVALID);
	assert_string_equal(error, "host tag can't be changed");
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_SET, "10.0.0.2",
					  DIRECTOR_VHOST_MAX + 1, NULL, 0), &error),
			 DIRECTOR_INVALID);
	assert_string_equal(error, "vhost count too large");
	assert_int_equal(h.count, 1);

	/* update needs the host and a count */
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_UPDATE, "10.0.0.2", 3, NULL, 0),
			       NULL), DIRECTOR_NOTFOUND);
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_UPDATE, "10.0.0.1", -1, NULL,
					  0), &error), DIRECTOR_INVALID);
	assert_string_equal(error, "invalid vhost count");
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_UPDATE, "10.0.0.1", 9, NULL, 0),
			       NULL), DIRECTOR_OK);
	assert_int_equal(h.hosts[0].vhosts, 9);

	/* down records when; down again changes nothing */
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_DOWN, "10.0.0.1", -1, NULL,
					  1000), NULL), DIRECTOR_OK);
	assert_true(h.hosts[0].down);
	assert_int_equal(h.hosts[0].last_updown, 1000);
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_DOWN, "10.0.0.1", -1, NULL,
					  2000), NULL), DIRECTOR_OK);
	assert_int_equal(h.hosts[0].last_updown, 1000);
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_UP, "10.0.0.1", -1, NULL,
					  3000), NULL), DIRECTOR_OK);
	assert_false(h.hosts[0].down);
	assert_int_equal(h.hosts[0].last_updown, 3000);
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_UP, "10.0.0.9", -1, NULL, 0),
			       NULL), DIRECTOR_NOTFOUND);

	/* remove: the host goes, the others stay */
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_SET, "10.0.0.3", 1, "c", 0),
			       NULL), DIRECTOR_OK);
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_REMOVE, "10.0.0.1", -1, NULL,
					  0), NULL), DIRECTOR_OK);
	assert_int_equal(h.count, 1);
	assert_string_equal(h.hosts[0].tag, "c");
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_HOST_REMOVE, "10.0.0.1", -1, NULL,
					  0), NULL), DIRECTOR_NOTFOUND);
	/* not a host change */
	assert_int_equal(apply(&h, change(DIRECTOR_CHANGE_USER_MOVE, "10.0.0.3", -1, NULL, 0),
			       &error), DIRECTOR_INVALID);
	ring_hosts_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_sorted_and_read_back),
		cmocka_unit_test(test_json_refused),
		cmocka_unit_test(test_json_health),
		cmocka_unit_test(test_changes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
