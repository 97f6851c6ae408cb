/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bytes from a sandbox (a process's output, a file's name) into JSON, which
 * holds only UTF-8: each invalid sequence becomes U+FFFD, as a terminal
 * shows it; base64 for callers that want the bytes exactly.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/text.h"
#include "common/util.h"

void text_put(struct text *t, const void *p, size_t n)
{
        if (!n)
                return;
        if (t->len + n + 1 > t->cap) {
                t->cap = (t->len + n + 1) * 2;
                t->data = xrealloc(t->data, t->cap);
        }
        memcpy(t->data + t->len, p, n);
        t->len += n;
        t->data[t->len] = 0;
}

void text_free(struct text *t)
{
        free(t->data);
        *t = (struct text){0};
}

/* The length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
        unsigned char c = p[0];
        size_t len;
        uint32_t cp;
        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                len = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
                len = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
                len = 4, cp = c & 0x07;
        else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        /* overlong forms, surrogates, past U+10FFFF */
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

json_t *text_utf8_json(const char *p, size_t n)
{
        struct text t = {0};
        const unsigned char *u = (const unsigned char *)p;
        size_t i = 0;
        while (i < n) {
                size_t k = utf8_seq(u + i, n - i);
                if (k) {
                        text_put(&t, u + i, k);
                        i += k;
                } else {
                        text_put(&t, "\xef\xbf\xbd", 3);
                        i++;
                }
        }
        json_t *j = json_stringn(t.data ? t.data : "", t.len);
        text_free(&t);
        if (!j)
                abort(); /* valid UTF-8 by construction: only out of memory */
        return j;
}

json_t *text_base64_json(const char *p, size_t n)
{
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *u = (const unsigned char *)p;
        size_t olen = (n + 2) / 3 * 4;
        char *o = xmalloc(olen + 1), *w = o;
        size_t i = 0;
        for (; i + 2 < n; i += 3) {
                uint32_t v = (uint32_t)u[i] << 16 | (uint32_t)u[i + 1] << 8 | u[i + 2];
                *w++ = tab[v >> 18], *w++ = tab[(v >> 12) & 63], *w++ = tab[(v >> 6) & 63], *w++ = tab[v & 63];
        }
        if (i < n) {
                uint32_t v = (uint32_t)u[i] << 16 | (i + 1 < n ? (uint32_t)u[i + 1] << 8 : 0);
                *w++ = tab[v >> 18], *w++ = tab[(v >> 12) & 63];
                *w++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
                *w++ = '=';
        }
        *w = 0;
        json_t *j = json_stringn(o, olen);
        free(o);
        return j;
}

size_t text_utf8_whole(const char *p, size_t n)
{
        const unsigned char *u = (const unsigned char *)p;
        /* look back at most 3 bytes for the start of a sequence */
        for (size_t back = 1; back <= 3 && back <= n; back++) {
                unsigned char c = u[n - back];
                if ((c & 0xc0) == 0x80)
                        continue; /* a continuation byte: keep looking */
                size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
                return want > back ? n - back : n;
        }
        return n;
}
