/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the ELF reader, on an image's executable (untrusted). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/util.h"
#include "lib/elf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* the size the file claims may differ from what reads give */
        uint64_t claimed = size && data[0] == 0x7f ? size : size + (size ? data[size - 1] : 0);
        char *interp, **needed;
        elf_deps_mem(data, size, claimed, 15, &interp, &needed);
        if (interp && interp[0] != '/')
                __builtin_trap();
        for (char **n = needed; n && *n; n++)
                if (!**n || strchr(*n, '/'))
                        __builtin_trap();
        free(interp);
        strv_free(needed);
        return 0;
}
