/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256, portable or through libcrypto when it is there (sha256.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sha256 {
        uint32_t h[8];
        uint64_t len;
        uint8_t buf[64];
        size_t n;
        /* libcrypto's state when it hashes this one (sha256_fast()):
         * SHA256_CTX is 112 bytes; room to spare, checked at build time */
        bool ossl;
        _Alignas(16) uint8_t ossl_ctx[128];
};
/* Hash with libcrypto (loaded now, dlopen, if it can be: SHA-NI or AVX2,
 * ~6x the portable code on this CPU) in every sha256_init() from here on.
 * Bulk hashing (pulls, imports) asks for it; start-up paths that hash a
 * few bytes do not pay for loading it.  Returns whether it is in use. */
bool sha256_fast(void);
void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[32]);
/* hex digest, 65 bytes */
void sha256_hex(struct sha256 *s, char out[65]);
