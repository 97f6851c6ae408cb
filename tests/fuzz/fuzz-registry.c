/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: what a registry (or whoever it redirects to) controls
 * and msb parses before deciding where credentials may go: authorities,
 * token realm and redirect URLs, WWW-Authenticate challenges. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static int init;
        if (!init) {
                /* no config file: the "insecure" lookup stays in memory */
                setenv("MSB_CONFIG", "/nonexistent/msb-fuzz-config", 1);
                init = 1;
        }
        char *s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        (void)reg_host_is_loopback(s);
        (void)reg_url_may_get_credentials(s);
        static const char *const keys[] = {"realm", "service", "scope", "error"};
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
                free(reg_auth_param(s, keys[k]));
        free(s);
        return 0;
}
