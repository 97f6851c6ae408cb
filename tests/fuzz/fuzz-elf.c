/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the ELF reader, on an image's executable (untrusted). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/internal.h"

struct membuf {
        const uint8_t *p;
        size_t n;
};

static ssize_t mem_pread(void *ctx, void *buf, size_t n, uint64_t off)
{
        const struct membuf *m = ctx;
        if (off > m->n)
                return 0;
        size_t k = m->n - off < n ? m->n - off : n;
        memcpy(buf, m->p + off, k);
        return (ssize_t)k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct membuf m = {data, size};
        /* the size the file claims may differ from what reads give */
        uint64_t claimed = size && data[0] == 0x7f ? size : size + (size ? data[size - 1] : 0);
        struct elf_src src = {.ctx = &m, .size = claimed, .pread = mem_pread};
        char *interp, **needed;
        elf_deps(&src, 15, &interp, &needed);
        if (interp && interp[0] != '/')
                __builtin_trap();
        for (char **n = needed; n && *n; n++)
                if (!**n || strchr(*n, '/'))
                        __builtin_trap();
        free(interp);
        strv_free(needed);
        return 0;
}
