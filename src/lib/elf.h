/* SPDX-License-Identifier: Apache-2.0 */
/* What the host reads of an image's ELF executables to read ahead (elf.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct elf_src {
        void *ctx;
        uint64_t size; /* of the file */
        ssize_t (*pread)(void *ctx, void *buf, size_t n, uint64_t off);
};
/* Of an x86-64 ELF file (untrusted): its program interpreter and up to
 * max_needed DT_NEEDED names (no '/'); NULL/NULL for anything else or
 * anything out of bounds.  Caller frees both. */
void elf_deps(const struct elf_src *src, size_t max_needed, char **ret_interp, char ***ret_needed);
/* The same over n bytes in memory, for a file said to be size bytes long
 * (tests and the fuzzer). */
void elf_deps_mem(const uint8_t *p, size_t n, uint64_t size, size_t max_needed, char **ret_interp,
                  char ***ret_needed);
