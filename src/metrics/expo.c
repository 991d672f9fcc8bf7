/* Writing the Prometheus text format (expo.h). */
#include "metrics/expo.h"

#include <stdbool.h>
#include <stdio.h>

#define METRICS_MAX_DECIMALS 9
#define METRICS_LABELS_MAX 8

static const char *const metrics_type_names[] = {
	[METRICS_COUNTER] = "counter",
	[METRICS_GAUGE] = "gauge",
	[METRICS_HISTOGRAM] = "histogram",
};

/* A HELP text escapes backslash and newline; a label value also the
 * double quote. */
static void metrics_expo_escaped(struct sbuf *out, const char *s, bool quote)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			sbuf_appends(out, "\\\\");
		else if (*s == '\n')
			sbuf_appends(out, "\\n");
		else if (*s == '"' && quote)
			sbuf_appends(out, "\\\"");
		else
			sbuf_appendc(out, *s);
	}
}

void metrics_expo_family(struct sbuf *out, const char *name, enum metrics_type type,
			 const char *help)
{
	sbuf_appendf(out, "# HELP %s ", name);
	metrics_expo_escaped(out, help, false);
	sbuf_appendf(out, "\n# TYPE %s %s\n", name, metrics_type_names[type]);
}

/* value / 10^decimals, trailing zeros of the fraction dropped. */
static void metrics_expo_number(struct sbuf *out, uint64_t value, unsigned int decimals)
{
	uint64_t scale = 1;
	if (decimals > METRICS_MAX_DECIMALS)
		decimals = METRICS_MAX_DECIMALS;
	for (unsigned int i = 0; i < decimals; i++)
		scale *= 10;
	uint64_t frac = value % scale;
	sbuf_appendf(out, "%llu", (unsigned long long)(value / scale));
	if (frac == 0)
		return;
	char digits[24];
	snprintf(digits, sizeof(digits), "%0*llu", (int)decimals, (unsigned long long)frac);
	size_t n = decimals;
	while (n > 0 && digits[n - 1] == '0')
		n--;
	sbuf_appendc(out, '.');
	sbuf_append(out, digits, n);
}

static void metrics_expo_labels(struct sbuf *out, const struct metrics_label *labels,
				size_t count)
{
	if (count == 0)
		return;
	sbuf_appendc(out, '{');
	for (size_t i = 0; i < count; i++) {
		sbuf_appendf(out, "%s%s=\"", i > 0 ? "," : "", labels[i].name);
		metrics_expo_escaped(out, labels[i].value, true);
		sbuf_appendc(out, '"');
	}
	sbuf_appendc(out, '}');
}

void metrics_expo_sample(struct sbuf *out, const char *name,
			 const struct metrics_label *labels, size_t labels_count,
			 uint64_t value, unsigned int decimals)
{
	sbuf_appends(out, name);
	metrics_expo_labels(out, labels, labels_count);
	sbuf_appendc(out, ' ');
	metrics_expo_number(out, value, decimals);
	sbuf_appendc(out, '\n');
}

void metrics_expo_histogram(struct sbuf *out, const char *name,
			    const struct metrics_label *labels, size_t labels_count,
			    const struct histogram *h)
{
	struct metrics_label all[METRICS_LABELS_MAX + 1];
	char bucket[128], le[32];
	struct sbuf bound = SBUF_INIT;
	uint64_t cumulative = 0;

	if (labels_count > METRICS_LABELS_MAX)
		labels_count = METRICS_LABELS_MAX;
	for (size_t i = 0; i < labels_count; i++)
		all[i] = labels[i];
	all[labels_count] = (struct metrics_label){ "le", le };
	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	for (size_t i = 0; i <= HISTOGRAM_BOUNDS; i++) {
		cumulative += h->counts[i];
		if (i < HISTOGRAM_BOUNDS) {
			sbuf_reset(&bound);
			metrics_expo_number(&bound, histogram_bounds_us[i], 6);
			snprintf(le, sizeof(le), "%s", sbuf_cstr(&bound));
		} else {
			snprintf(le, sizeof(le), "+Inf");
		}
		metrics_expo_sample(out, bucket, all, labels_count + 1, cumulative, 0);
	}
	sbuf_free(&bound);
	char sum[128], count[128];
	snprintf(sum, sizeof(sum), "%s_sum", name);
	snprintf(count, sizeof(count), "%s_count", name);
	metrics_expo_sample(out, sum, labels, labels_count, h->sum_us, 6);
	metrics_expo_sample(out, count, labels, labels_count, cumulative, 0);
}
