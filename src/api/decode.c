/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request JSON read strictly: every key of an object must be known, every
 * value of the type and range its field says, and the first that is not is
 * named in the 400 ("volumes[1].guest: expected a string").  Strings are
 * borrowed from the parsed body, which outlives the handler's use of them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

int api_bad(struct api_decode_err *de, const char *field, const char *fmt, ...)
{
        snprintf(de->field, sizeof(de->field), "%s", field);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(de->message, sizeof(de->message), fmt, ap);
        va_end(ap);
        return -1;
}

static void join(char *out, size_t n, const char *where, const char *key)
{
        snprintf(out, n, "%s%s%s", where, *where ? "." : "", key);
}

int api_decode_object(struct api_decode_err *de, const char *where, json_t *obj, const struct api_field *fields,
                      size_t n, void *out)
{
        if (!json_is_object(obj))
                return api_bad(de, where, "expected an object");
        const char *key;
        json_t *v;
        json_object_foreach(obj, key, v)
        {
                char field[128];
                join(field, sizeof(field), where, key);
                size_t i = 0;
                while (i < n && strcmp(fields[i].name, key))
                        i++;
                if (i == n)
                        return api_bad(de, field, "unknown field (docs/api/openapi.yaml lists the fields)");
                if (json_is_null(v))
                        continue; /* null: as if absent */
                if (fields[i].read(de, &fields[i], field, v, (char *)out + fields[i].offset) < 0)
                        return -1;
        }
        return 0;
}

int api_read_string(struct api_decode_err *de, const struct api_field *f, const char *field, json_t *v, void *out)
{
        if (!json_is_string(v))
                return api_bad(de, field, "expected a string");
        size_t len = json_string_length(v);
        if (strlen(json_string_value(v)) != len)
                return api_bad(de, field, "must not hold a NUL character");
        if (len < f->min || (f->max && len > f->max))
                return api_bad(de, field, "expected %llu to %llu bytes, got %zu", (unsigned long long)f->min,
                               (unsigned long long)f->max, len);
        *(const char **)out = json_string_value(v);
        return 0;
}

int api_read_bool(struct api_decode_err *de, const struct api_field *f, const char *field, json_t *v, void *out)
{
        if (!json_is_boolean(v))
                return api_bad(de, field, "expected true or false");
        *(struct api_opt_bool *)out = (struct api_opt_bool){json_is_true(v), true};
        return 0;
}

int api_read_uint(struct api_decode_err *de, const struct api_field *f, const char *field, json_t *v, void *out)
{
        if (!json_is_integer(v))
                return api_bad(de, field, "expected an integer");
        json_int_t x = json_integer_value(v);
        if (x < 0 || (uint64_t)x < f->min || (uint64_t)x > f->max)
                return api_bad(de, field, "expected an integer from %llu to %llu", (unsigned long long)f->min,
                               (unsigned long long)f->max);
        *(uint64_t *)out = (uint64_t)x;
        return 0;
}

int api_read_strv(struct api_decode_err *de, const struct api_field *f, const char *field, json_t *v, void *out)
{
        if (!json_is_array(v))
                return api_bad(de, field, "expected an array of strings");
        if (f->max && json_array_size(v) > f->max)
                return api_bad(de, field, "at most %llu items", (unsigned long long)f->max);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
                if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e)) {
                        char item[160];
                        snprintf(item, sizeof(item), "%s[%zu]", field, i);
                        return api_bad(de, item, "expected a string (with no NUL)");
                }
        }
        *(json_t **)out = v;
        return 0;
}

int api_read_array(struct api_decode_err *de, const struct api_field *f, const char *field, json_t *v, void *out)
{
        if (!json_is_array(v))
                return api_bad(de, field, "expected an array");
        if (f->max && json_array_size(v) > f->max)
                return api_bad(de, field, "at most %llu items", (unsigned long long)f->max);
        *(json_t **)out = v;
        return 0;
}

int api_read_size(struct api_decode_err *de, const struct api_field *f, const char *field, json_t *v, void *out)
{
        uint64_t bytes;
        if (json_is_integer(v) && json_integer_value(v) >= 0)
                bytes = (uint64_t)json_integer_value(v);
        else if (!json_is_string(v) || msb_parse_size(json_string_value(v), &bytes) < 0)
                return api_bad(de, field, "expected a size: a number of bytes, or a string such as \"512M\" or \"8G\"");
        if (bytes < f->min || bytes > f->max)
                return api_bad(de, field, "expected a size from %llu to %llu bytes", (unsigned long long)f->min,
                               (unsigned long long)f->max);
        *(uint64_t *)out = bytes;
        return 0;
}

int api_read_strmap(struct api_decode_err *de, const struct api_field *f, const char *field, json_t *v, void *out)
{
        if (!json_is_object(v))
                return api_bad(de, field, "expected an object of strings");
        if (f->max && json_object_size(v) > f->max)
                return api_bad(de, field, "at most %llu keys", (unsigned long long)f->max);
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e)
        {
                if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e)) {
                        char item[160];
                        join(item, sizeof(item), field, k);
                        return api_bad(de, item, "expected a string (with no NUL)");
                }
        }
        *(json_t **)out = v;
        return 0;
}
