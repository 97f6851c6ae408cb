/* SPDX-License-Identifier: Apache-2.0 */
/* Bytes into JSON strings (text.c): a growable buffer, UTF-8 with replacement, base64. */
#pragma once

#include <jansson.h>
#include <stddef.h>

struct text {
        char *data;
        size_t len, cap;
};
void text_put(struct text *t, const void *p, size_t n);
void text_free(struct text *t);
/* n bytes as a JSON string: invalid UTF-8 becomes U+FFFD, NUL stays (\u0000) */
json_t *text_utf8_json(const char *p, size_t n);
/* n bytes as a base64 JSON string */
json_t *text_base64_json(const char *p, size_t n);
/* How much of p[0..n) ends on a whole UTF-8 character: a stream's chunk
 * keeps the rest (at most 3 bytes) for the next one. */
size_t text_utf8_whole(const char *p, size_t n);
