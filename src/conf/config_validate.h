/* Checks that involve several keys. Internal to src/conf. */
#ifndef LOFT_CONF_CONFIG_VALIDATE_H
#define LOFT_CONF_CONFIG_VALIDATE_H

#include "conf/config.h"

/* Returns NULL, or an allocated "file:line: key: reason". */
char *config_validate(const struct config *cfg);

#endif
