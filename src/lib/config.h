/* SPDX-License-Identifier: Apache-2.0 */
/* msb's config file: where it is, its settings line by line (config.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "msb-error.h"

/* Its path ($MSB_CONFIG, $XDG_CONFIG_HOME/msb/config, ~/.config/msb/config),
 * or NULL without HOME; the caller frees it. */
char *msb_config_path(void);
/* Call fn for every setting line (words[0] is the key, n counts the words,
 * checked against the key's arity; where names file and line).  A missing
 * file is empty; an unknown key fails. */
int msb_config_each(int (*fn)(char **words, int n, void *ud, const char *where, struct msb_error *err), void *ud,
                    struct msb_error *err);
/* Overwrite *bytes / *entries with unpack-max-bytes / unpack-max-entries
 * where the file sets them. */
int msb_config_unpack_limits(uint64_t *bytes, uint64_t *entries, struct msb_error *err);
