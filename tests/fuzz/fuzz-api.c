/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: msb serve's request decoder, a create request's JSON
 * to run options (src/api/create.c over src/api/decode.c), and the exec
 * and stop bodies' strict field readers.  The body comes from any client
 * of the API: untrusted.  Host paths a volume names are only resolved
 * (realpath), never written.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
        if (!j)
                return 0;
        struct msb_run_opts *o;
        msb_run_opts_new(&o);
        struct api_create c = {0};
        struct api_decode_err de = {0};
        if (api_create_decode(j, o, &c, &de) < 0 && (!de.message[0] || de.message[sizeof(de.message) - 1]))
                __builtin_trap(); /* every refusal says why */
        msb_run_opts_free(o);
        json_decref(j);
        return 0;
}
