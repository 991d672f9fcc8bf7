/* The configuration loader: libconfig syntax, the key table, value types
 * and ranges, cross-key validation, and the director's host list. A
 * loaded configuration is printed again and must load the same. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <event2/event.h>

#include "common/log.h"
#include "director/director.h"
#include "fuzz_config_text.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_LEVEL_ERROR);
	base = event_base_new();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *error = NULL;
	struct config *cfg = fuzz_config_load(data, size, &error);
	if (cfg == NULL) {
		if (error == NULL)
			abort();	/* every refusal says why */
		free(error);
		return 0;
	}
	struct director *d = director_new(cfg, base, &error);
	if (d == NULL)
		free(error);
	director_free(&d);
	/* what -n prints loads again */
	char *printed = NULL;
	size_t printed_len = 0;
	FILE *f = open_memstream(&printed, &printed_len);
	config_print(cfg, f);
	fclose(f);
	struct config *again = fuzz_config_load(printed, printed_len, &error);
	if (again == NULL)
		abort();
	config_free(&again);
	free(printed);
	config_free(&cfg);
	return 0;
}
