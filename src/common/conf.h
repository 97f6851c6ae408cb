/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A settings file of msb's kind: one setting per line, words separated by
 * blanks, '#' starts a comment.  msb's config file (src/lib/config.c) and
 * msb-runtime's (src/runtime/config.c) are read through it, so both give
 * the same errors: the file and line, the unknown key with the known ones,
 * or the usage of a key given the wrong number of words.
 */
#pragma once
#include <stddef.h>

#include "msb-error.h"

#define CONF_MAX_BYTES (1u << 20)
#define CONF_MAX_WORDS 8

struct conf_key {
        const char *key;
        int nargs; /* words after the key; -1: one or more (up to CONF_MAX_WORDS - 1) */
        const char *usage;
};

/* Call fn for every setting line of path (w[0] is the key, n counts the
 * words, checked against its arity; where is "<what> PATH line N").  A
 * missing file is empty.  -errno with err filled on an unreadable file, an
 * unknown key, a wrong arity, or whatever fn returns (fn fills err). */
int conf_each(const char *what, const char *path, const struct conf_key *keys, size_t nkeys,
              int (*fn)(char **w, int n, void *ud, const char *where, struct msb_error *err), void *ud,
              struct msb_error *err);
