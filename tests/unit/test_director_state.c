/* Unit tests for the director's state file (src/director/state.c): the
 * format round trip, every way a file can be broken, every truncation,
 * and what a director makes of a saved host list at start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/file.h"
#include "common/sbuf.h"
#include "director/director.h"
#include "director/state.h"
#include "director_fixture.h"

static const char good[] =
	"loft-director-state\t1\n"
	"host\t10.0.0.1\t100\tU\t0\t\n"
	"host\t10.0.0.2\t0\tD\t1700000000\tgold\x01" "ttag\n"
	"host\t::1\t5\tU\t12\t\n"
	"removed\t10.0.0.3\n"
	"end\t4\n";

static int parse(const char *text, size_t len, char **error_r)
{
	struct director_host_list hosts = { 0 }, removed = { 0 };
	int ret = director_state_parse(text, len, &hosts, &removed, error_r);
	director_host_list_free(&hosts);
	director_host_list_free(&removed);
	return ret;
}

static void test_state_round_trip(void **state)
{
	(void)state;
	struct director_host_list hosts = { 0 }, removed = { 0 };
	char *error = NULL;
	assert_int_equal(director_state_parse(good, strlen(good), &hosts, &removed, &error), 0);
	assert_int_equal(hosts.count, 3);
	assert_int_equal(removed.count, 1);
	struct ipaddr two = ip_of("10.0.0.2");
	const struct director_host *h = director_host_list_find(&hosts, &two);
	assert_non_null(h);
	assert_int_equal(h->vhost_count, 0);
	assert_true(h->down);
	assert_int_equal(h->last_updown, 1700000000);
	assert_string_equal(h->tag, "gold\ttag");	/* tab-escaped on disk */

	/* formatting what was parsed gives the same bytes: removed hosts are
	 * the initial ones missing from the list */
	struct director_host_list initial = { 0 };
	struct ipaddr one = ip_of("10.0.0.1"), three = ip_of("10.0.0.3");
	director_host_list_add(&initial, &one, NULL, "");
	director_host_list_add(&initial, &three, NULL, "");
	struct sbuf out = SBUF_INIT;
	director_state_format(&hosts, &initial, &out);
	assert_int_equal(sbuf_len(&out), strlen(good));
	assert_memory_equal(sbuf_data(&out), good, strlen(good));
	sbuf_free(&out);
	director_host_list_free(&initial);
	director_host_list_free(&hosts);
	director_host_list_free(&removed);
}

static void test_state_every_truncation_is_refused(void **state)
{
	(void)state;
	/* a file cut anywhere, even at a line end, is not a valid state */
	for (size_t len = 0; len < strlen(good); len++) {
		char *error = NULL;
		if (parse(good, len, &error) == 0)
			fail_msg("a file cut to %zu bytes was accepted", len);
		free(error);
	}
}

static void test_state_errors(void **state)
{
	(void)state;
	static const struct { const char *text, *error; } cases[] = {
		{ "", "line 0: empty file" },
		{ "loft-director-state\t2\nend\t0\n", "line 1: unsupported version" },
		{ "VERSION\tdirector\t1\nend\t0\n", "line 1: not a loft director state file" },
		{ "loft-director-state\t1\n", "line 1: no end line: the file is cut short" },
		{ "loft-director-state\t1\nend\t1\n", "line 2: the entry count does not match" },
		{ "loft-director-state\t1\nend\t0\nhost\t10.0.0.1\t1\tU\t0\t\n",
		  "line 3: text after the end line" },
		{ "loft-director-state\t1\nhost\t10.0.0.1\t1\tU\t0\nend\t1\n",
		  "line 2: a host line has 6 fields" },
		{ "loft-director-state\t1\nhost\t10.0.0.300\t1\tU\t0\t\nend\t1\n",
		  "line 2: invalid host address" },
		{ "loft-director-state\t1\nhost\t10.0.0.1\t1001\tU\t0\t\nend\t1\n",
		  "line 2: invalid vhost count" },
		{ "loft-director-state\t1\nhost\t10.0.0.1\t-1\tU\t0\t\nend\t1\n",
		  "line 2: invalid vhost count" },
		{ "loft-director-state\t1\nhost\t10.0.0.1\t1\tX\t0\t\nend\t1\n",
		  "line 2: the state is not U or D" },
		{ "loft-director-state\t1\nhost\t10.0.0.1\t1\tU\tnow\t\nend\t1\n",
		  "line 2: invalid time of the last up/down change" },
		{ "loft-director-state\t1\nhost\t10.0.0.1\t1\tU\t0\t\nhost\t10.0.0.1\t1\tU\t0\t\nend\t2\n",
		  "line 3: host listed twice" },
		{ "loft-director-state\t1\nremoved\t10.0.0.1\t5\nend\t1\n",
		  "line 2: a removed line has 2 fields" },
		{ "loft-director-state\t1\n\nend\t0\n", "line 2: empty line" },
		{ "loft-director-state\t1\nguest\t10.0.0.1\nend\t1\n", "line 2: unknown line" },
		{ "loft-director-state\t1\nend\tmany\n", "line 2: invalid end line" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *error = NULL;
		if (parse(cases[i].text, strlen(cases[i].text), &error) == 0)
			fail_msg("case %zu was accepted", i);
		assert_string_equal(error, cases[i].error);
		free(error);
	}
	char nul[] = "loft-director-state\t1\nend\t0\n";
	nul[5] = '\0';
	char *error = NULL;
	assert_int_equal(parse(nul, sizeof(nul) - 1, &error), -1);
	assert_string_equal(error, "line 0: NUL byte in the file");
	free(error);
}

static char *make_state_dir(void)
{
	char *dir = xstrdup("/tmp/loft-test-state-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return dir;
}

static void write_state(const char *dir, const char *text)
{
	char *path = xasprintf("%s/" DIRECTOR_STATE_FILE, dir), *error = NULL;
	assert_int_equal(file_write_atomic(path, text, strlen(text), 0600, &error), 0);
	free(path);
}

static char *read_state(const char *dir)
{
	char *path = xasprintf("%s/" DIRECTOR_STATE_FILE, dir), *data = NULL, *error = NULL;
	size_t len;
	assert_int_equal(file_read_all(path, 1 << 20, &data, &len, NULL, &error), 1);
	free(path);
	return data;
}

static void remove_state_dir(char *dir)
{
	char *path = xasprintf("%s/" DIRECTOR_STATE_FILE, dir);
	unlink(path);
	free(path);
	path = xasprintf("%s/" DIRECTOR_STATE_LOCK, dir);
	unlink(path);
	free(path);
	assert_int_equal(rmdir(dir), 0);
	free(dir);
}

/* What loftd does at start: lock the state_dir, then load and save. */
static int open_state(struct director *d, const char *dir, char **error_r)
{
	struct director_store *store = director_state_store_open(dir, -1, error_r);
	if (store == NULL)
		return -1;
	return director_set_store(d, store, error_r);
}

static void test_state_at_start(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3",
					       "10.0.0.4" };
	char *dir = make_state_dir(), *error = NULL;
	/* .2 was set down, .3 removed, .9 added with a tag; .4 is new in
	 * the config since the file was written */
	write_state(dir, "loft-director-state\t1\n"
		    "host\t10.0.0.1\t100\tU\t0\t\n"
		    "host\t10.0.0.2\t50\tD\t1700000000\t\n"
		    "host\t10.0.0.9\t7\tU\t0\tgold\n"
		    "removed\t10.0.0.3\n"
		    "end\t4\n");
	struct config *cfg = make_config(servers, 4);
	struct director *d = director_new(cfg, NULL, &error);
	assert_non_null(d);
	assert_int_equal(open_state(d, dir, &error), 0);
	const struct director_host_list *hl = director_hosts(d);
	assert_int_equal(hl->count, 4);
	assert_string_equal(hl->hosts[0]->ip_str, "10.0.0.1");
	assert_string_equal(hl->hosts[1]->ip_str, "10.0.0.2");
	assert_true(hl->hosts[1]->down);
	assert_int_equal(hl->hosts[1]->vhost_count, 50);
	assert_string_equal(hl->hosts[2]->ip_str, "10.0.0.4");
	assert_string_equal(hl->hosts[3]->ip_str, "10.0.0.9");
	assert_string_equal(hl->hosts[3]->tag, "gold");
	/* the tag's ring exists: its users are routed */
	struct ipaddr nine = ip_of("10.0.0.9");
	const struct director_host *h = director_hashed_host(d, 1, "gold");
	assert_non_null(h);
	assert_true(ipaddr_equal(&h->ip, &nine));

	/* a second loftd on the same state_dir is refused */
	struct director *d2 = director_new(cfg, NULL, &error);
	assert_int_equal(open_state(d2, dir, &error), -1);
	assert_non_null(strstr(error, "is in use by another loftd"));
	free(error);
	director_free(&d2);

	/* every change is saved at once */
	assert_int_equal(director_host_set_down(d, &nine, true, 1800000000), DIRECTOR_OK);
	char *text = read_state(dir);
	assert_non_null(strstr(text, "host\t10.0.0.9\t7\tD\t1800000000\tgold\n"));
	assert_non_null(strstr(text, "removed\t10.0.0.3\n"));
	free(text);
	struct ipaddr one = ip_of("10.0.0.1");
	assert_int_equal(director_host_remove(d, &one), DIRECTOR_OK);
	text = read_state(dir);
	assert_null(strstr(text, "host\t10.0.0.1\t"));
	assert_non_null(strstr(text, "removed\t10.0.0.1\nremoved\t10.0.0.3\nend\t5\n"));
	free(text);
	director_free(&d);

	/* a broken file stops the start, and says where and what to do */
	write_state(dir, "loft-director-state\t1\nhost\t10.0.0.1\n");
	d = director_new(cfg, NULL, &error);
	assert_int_equal(open_state(d, dir, &error), -1);
	assert_non_null(strstr(error, "is invalid (line 2: a host line has 6 fields)"));
	assert_non_null(strstr(error, "remove it to start from director.mail_servers"));
	free(error);
	director_free(&d);
	config_free(&cfg);
	remove_state_dir(dir);
}

static void test_state_missing_file_and_unwritable_dir(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1" };
	char *dir = make_state_dir(), *error = NULL;
	struct config *cfg = make_config(servers, 1);
	struct director *d = director_new(cfg, NULL, &error);
	/* no file yet: the configured hosts, written out at once */
	assert_int_equal(open_state(d, dir, &error), 0);
	char *text = read_state(dir);
	assert_string_equal(text, "loft-director-state\t1\nhost\t10.0.0.1\t100\tU\t0\t\nend\t1\n");
	free(text);
	director_free(&d);
	remove_state_dir(dir);

	if (geteuid() != 0) {
		/* root writes anywhere; everyone else is refused here */
		dir = make_state_dir();
		assert_int_equal(chmod(dir, 0500), 0);
		d = director_new(cfg, NULL, &error);
		assert_int_equal(open_state(d, dir, &error), -1);
		free(error);
		director_free(&d);
		assert_int_equal(chmod(dir, 0700), 0);
		remove_state_dir(dir);
	}
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_round_trip),
		cmocka_unit_test(test_state_every_truncation_is_refused),
		cmocka_unit_test(test_state_errors),
		cmocka_unit_test(test_state_at_start),
		cmocka_unit_test(test_state_missing_file_and_unwritable_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
