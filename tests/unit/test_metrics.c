/* Unit tests for src/metrics: the text exposition format (escaping,
 * numbers, histograms with cumulative buckets, +Inf, _sum and _count),
 * the families written from what the modules counted, and that every
 * family is documented in loftd(8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "director_fixture.h"

#include "common/file.h"
#include "common/histogram.h"
#include "common/sbuf.h"
#include "core/relay.h"
#include "metrics/expo.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "registry/registry.h"

static void test_expo_escaping(void **state)
{
	(void)state;
	struct sbuf out = SBUF_INIT;
	metrics_expo_family(&out, "x_total", METRICS_COUNTER, "a \\ b\nc \"d\"");
	const struct metrics_label l[] = { { "a", "back\\slash \"quoted\"\nline" },
					   { "b", "" } };
	metrics_expo_sample(&out, "x_total", l, 2, 7, 0);
	assert_string_equal(sbuf_cstr(&out),
			    "# HELP x_total a \\\\ b\\nc \"d\"\n"
			    "# TYPE x_total counter\n"
			    "x_total{a=\"back\\\\slash \\\"quoted\\\"\\nline\",b=\"\"} 7\n");
	sbuf_free(&out);
}

static void test_expo_numbers(void **state)
{
	(void)state;
	static const struct {
		uint64_t value;
		unsigned int decimals;
		const char *text;
	} cases[] = {
		{ 0, 0, "0" }, { 0, 6, "0" }, { 42, 0, "42" }, { 2500, 6, "0.0025" },
		{ 1000000, 6, "1" }, { 1500000, 6, "1.5" }, { 123456, 3, "123.456" },
		{ 120, 3, "0.12" }, { 1, 9, "0.000000001" },
		{ UINT64_MAX, 0, "18446744073709551615" },
		{ UINT64_MAX, 6, "18446744073709.551615" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sbuf out = SBUF_INIT;
		char want[64];
		metrics_expo_sample(&out, "v", NULL, 0, cases[i].value, cases[i].decimals);
		snprintf(want, sizeof(want), "v %s\n", cases[i].text);
		assert_string_equal(sbuf_cstr(&out), want);
		sbuf_free(&out);
	}
}

static void test_histogram_observe(void **state)
{
	(void)state;
	struct histogram h = { 0 };
	/* a bound is "less than or equal" */
	histogram_observe(&h, 0);
	histogram_observe(&h, 1000);
	histogram_observe(&h, 1001);
	histogram_observe(&h, 2500);
	histogram_observe(&h, 30000000);
	histogram_observe(&h, 30000001);
	assert_int_equal(h.counts[0], 2);
	assert_int_equal(h.counts[1], 2);
	assert_int_equal(h.counts[HISTOGRAM_BOUNDS - 1], 1);
	assert_int_equal(h.counts[HISTOGRAM_BOUNDS], 1);
	assert_int_equal(h.sum_us, 60004502);
}

static void test_expo_histogram(void **state)
{
	(void)state;
	struct histogram h = { 0 };
	histogram_observe(&h, 800);		/* le 0.001 */
	histogram_observe(&h, 4000);		/* le 0.005 */
	histogram_observe(&h, 4000);
	histogram_observe(&h, 60000000);	/* +Inf only */
	struct sbuf out = SBUF_INIT;
	const struct metrics_label l[] = { { "protocol", "imap" } };
	metrics_expo_histogram(&out, "t_seconds", l, 1, &h);
	assert_string_equal(sbuf_cstr(&out),
		"t_seconds_bucket{protocol=\"imap\",le=\"0.001\"} 1\n"
		"t_seconds_bucket{protocol=\"imap\",le=\"0.0025\"} 1\n"
		"t_seconds_bucket{protocol=\"imap\",le=\"0.005\"} 3\n"
		"t_seconds_bucket{protocol=\"imap\",le=\"0.01\"} 3\n"
		"t_seconds_bucket{protocol=\"imap\",le=\"0.025\"} 3\n"
		"t_seconds_bucket{protocol=\"imap\",le=\"0.05\"} 3\n"
		"t_seconds_bucket{protocol=\"imap\",le=\"0.1\"} 3\n"
		"t_seconds_bucket{protocol=\"imap\",le=\"0.25\"} 3\n"
		"t_seconds_bucket{protocol=\"imap\",le=\"0.5\"} 3\n"
		"t_seconds_bucket{protocol=\"imap\",le=\"1\"} 3\n"
		"t_seconds_bucket{protocol=\"imap\",le=\"2.5\"} 3\n"
		"t_seconds_bucket{protocol=\"imap\",le=\"5\"} 3\n"
		"t_seconds_bucket{protocol=\"imap\",le=\"10\"} 3\n"
		"t_seconds_bucket{protocol=\"imap\",le=\"30\"} 3\n"
		"t_seconds_bucket{protocol=\"imap\",le=\"+Inf\"} 4\n"
		"t_seconds_sum{protocol=\"imap\"} 60.0088\n"
		"t_seconds_count{protocol=\"imap\"} 4\n");
	/* without labels, le is the only one */
	sbuf_reset(&out);
	struct histogram empty = { 0 };
	metrics_expo_histogram(&out, "e", NULL, 0, &empty);
	assert_non_null(strstr(sbuf_cstr(&out), "e_bucket{le=\"0.001\"} 0\n"));
	assert_non_null(strstr(sbuf_cstr(&out), "e_bucket{le=\"+Inf\"} 0\ne_sum 0\ne_count 0\n"));
	sbuf_free(&out);
}

static void noop_kick(struct registry_entry *e, const char *text)
{
	(void)e;
	(void)text;
}

static void assert_line(const char *text, const char *line)
{
	char want[256];
	snprintf(want, sizeof(want), "\n%s\n", line);
	if (strstr(text, want) == NULL)
		fail_msg("no line \"%s\" in:\n%s", line, text);
}

/* The families, from a proxy and a director with counts set by hand. */
static void test_render(void **state)
{
	(void)state;
	static const char *const servers[] = { "10.0.0.1", "10.0.0.2@blue" };
	struct config *cfg = make_config(servers, 2);
	char *error = NULL;
	struct director *d = director_new(cfg, NULL, &error);
	assert_non_null(d);
	struct proxy p;
	memset(&p, 0, sizeof(p));
	registry_init(&p.registry);
	p.relay_pools = relay_pools_new();
	p.director = d;

	p.stats.connections[CONF_PROTOCOL_POP3][PROXY_CONN_LIMIT] = 5;
	p.stats.logins[CONF_PROTOCOL_IMAP][PROXY_LOGIN_OK] = 3;
	p.stats.logins[CONF_PROTOCOL_SUBMISSION][PROXY_LOGIN_TIMEOUT] = 2;
	p.stats.sessions[CONF_PROTOCOL_IMAP][PROXY_SESSION_STATES - 2] = 4;
	p.stats.lmtp_sessions[1] = 1;
	p.stats.kicks = 9;
	p.stats.other_backend_connections = 6;
	histogram_observe(&p.stats.login_latency, 3000);
	const struct director_host_list *hosts = director_hosts(d);
	hosts->hosts[0]->stats->connections = 11;
	hosts->hosts[1]->stats->failures = 2;
	hosts->hosts[1]->down = true;
	/* three sessions routed: two to a director host, one elsewhere */
	struct registry_entry e[3];
	memset(e, 0, sizeof(e));
	const char *backends[] = { "10.0.0.2", "10.0.0.2", "192.0.2.7" };
	for (size_t i = 0; i < 3; i++) {
		e[i].id = i + 1;
		e[i].service = "imap";
		e[i].kick = noop_kick;
		registry_add(&p.registry, &e[i]);
		struct ipaddr ip = ip_of(backends[i]);
		registry_set_backend(&p.registry, &e[i], &ip, 143, NULL);
	}
	struct director_ticket t;
	const char *err;
	assert_non_null(route(d, "someone", "blue", 1000, &t, &err));
	assert_int_equal(director_user_move(d, t.hash, &hosts->hosts[1]->ip, 1000), DIRECTOR_OK);

	const struct metrics_sources src = {
		.proxy = &p, .director = d, .start_time = 1700000000,
	};
	struct sbuf out = SBUF_INIT;
	metrics_render(&src, &out);
	const char *text = sbuf_cstr(&out);
	assert_line(text, "# TYPE loft_logins_total counter");
	assert_line(text, "loft_connections_total{protocol=\"pop3\",result=\"limit\"} 5");
	assert_line(text, "loft_connections_total{protocol=\"lmtp\",result=\"accepted\"} 0");
	assert_line(text, "loft_logins_total{protocol=\"imap\",result=\"ok\"} 3");
	assert_line(text, "loft_logins_total{protocol=\"submission\",result=\"timeout\"} 2");
	assert_null(strstr(text, "loft_logins_total{protocol=\"lmtp\""));
	assert_line(text, "loft_sessions{protocol=\"imap\",state=\"proxying\"} 4");
	assert_line(text, "loft_sessions{protocol=\"lmtp\",state=\"rcpt\"} 1");
	assert_line(text, "loft_kicks_total 9");
	assert_line(text, "loft_moves_total 1");
	assert_line(text, "loft_flushes_total 0");
	assert_line(text, "loft_login_duration_seconds_bucket{le=\"0.005\"} 1");
	assert_line(text, "loft_login_duration_seconds_sum 0.003");
	assert_line(text, "loft_backend_connections_total{backend=\"10.0.0.1\"} 11");
	assert_line(text, "loft_backend_connections_total{backend=\"other\"} 6");
	assert_line(text, "loft_backend_failures_total{backend=\"10.0.0.2\"} 2");
	assert_line(text, "loft_backend_sessions{backend=\"10.0.0.1\"} 0");
	assert_line(text, "loft_backend_sessions{backend=\"10.0.0.2\"} 2");
	assert_line(text, "loft_backend_sessions{backend=\"other\"} 1");
	assert_line(text, "loft_backend_users{backend=\"10.0.0.2\",tag=\"blue\"} 1");
	assert_line(text, "loft_backend_up{backend=\"10.0.0.1\"} 1");
	assert_line(text, "loft_backend_up{backend=\"10.0.0.2\"} 0");
	assert_line(text, "loft_backend_health{backend=\"10.0.0.1\",state=\"unknown\"} 1");
	assert_line(text, "loft_backend_health{backend=\"10.0.0.1\",state=\"ok\"} 0");
	assert_line(text, "process_start_time_seconds 1700000000");
	/* no health checks: the family has no samples; no ring: none at all */
	assert_null(strstr(text, "loft_health_checks_total{"));
	assert_null(strstr(text, "loft_ring_"));
	/* every line a comment or a sample */
	for (const char *line = text; *line != '\0'; line = strchr(line, '\n') + 1) {
		assert_true(line[0] == '#' || strncmp(line, "loft_", 5) == 0 ||
			    strncmp(line, "process_", 8) == 0);
	}
	sbuf_free(&out);
	for (size_t i = 0; i < 3; i++)
		registry_remove(&p.registry, &e[i]);
	director_release(d, &t, 1000);
	registry_deinit(&p.registry);
	relay_pools_free(&p.relay_pools);
	director_free(&d);
	config_free(&cfg);
}

static void check_documented(const char *name, void *ctx)
{
	const char *doc = ctx;
	char want[128];
	snprintf(want, sizeof(want), "*%s*", name);
	if (strstr(doc, want) == NULL)
		fail_msg("metric %s is not documented in doc/loftd.8.scd", name);
}

static void test_families_documented(void **state)
{
	(void)state;
	char *doc = NULL, *error = NULL;
	size_t len;
	if (file_read_all("../../doc/loftd.8.scd", 1 << 20, &doc, &len, NULL, &error) != 1)
		fail_msg("doc/loftd.8.scd: %s", error != NULL ? error : "missing");
	metrics_foreach_family(check_documented, doc);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expo_escaping),
		cmocka_unit_test(test_expo_numbers),
		cmocka_unit_test(test_histogram_observe),
		cmocka_unit_test(test_expo_histogram),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_families_documented),
	};
	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
