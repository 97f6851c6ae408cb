/* SPDX-License-Identifier: Apache-2.0 */
/* Users and groups from an image's own /etc/passwd and /etc/group (users.h). */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "users.h"

static bool parse_id(const char *s, size_t n, unsigned long *ret)
{
        if (n == 0 || n > 10)
                return false;
        unsigned long v = 0;
        for (size_t i = 0; i < n; i++) {
                if (!isdigit((unsigned char)s[i]))
                        return false;
                v = v * 10 + (unsigned long)(s[i] - '0');
        }
        if (v > 0x7fffffffUL)
                return false;
        *ret = v;
        return true;
}

/* Split one line of text (up to '\n' or the end) into at most max fields
 * at ':'.  Returns the number of fields; the line is not modified. */
struct field {
        const char *p;
        size_t n;
};

static size_t split(const char *line, size_t len, struct field *f, size_t max)
{
        size_t k = 0;
        const char *s = line, *end = line + len;
        while (k < max) {
                const char *c = memchr(s, ':', (size_t)(end - s));
                f[k].p = s;
                f[k].n = (size_t)((c ? c : end) - s);
                k++;
                if (!c)
                        break;
                s = c + 1;
        }
        return k;
}

static bool field_is(const struct field *f, const char *s)
{
        return strlen(s) == f->n && memcmp(f->p, s, f->n) == 0;
}

/* Calls fn for each line of text; stops when fn returns true. */
static bool each_line(const char *text, bool (*fn)(const char *line, size_t len, void *ud), void *ud)
{
        for (const char *s = text; s && *s;) {
                const char *nl = strchr(s, '\n');
                size_t len = nl ? (size_t)(nl - s) : strlen(s);
                if (fn(s, len, ud))
                        return true;
                s = nl ? nl + 1 : NULL;
        }
        return false;
}

struct pw_query {
        const char *name; /* or NULL: by uid */
        unsigned long uid;
        struct ids *ids;
        char name_out[256];
};

static bool pw_line(const char *line, size_t len, void *ud)
{
        struct pw_query *q = ud;
        struct field f[7];
        if (split(line, len, f, 7) < 7)
                return false;
        unsigned long u, g;
        if (!parse_id(f[2].p, f[2].n, &u) || !parse_id(f[3].p, f[3].n, &g))
                return false;
        if (q->name ? !field_is(&f[0], q->name) : u != q->uid)
                return false;
        q->ids->uid = (uint32_t)u;
        q->ids->gid = (uint32_t)g;
        snprintf(q->ids->home, sizeof(q->ids->home), "%.*s", (int)f[5].n, f[5].p);
        snprintf(q->name_out, sizeof(q->name_out), "%.*s", (int)f[0].n, f[0].p);
        return true;
}

struct gr_query {
        const char *name;   /* group to find, or NULL */
        unsigned long gid;  /* found */
        const char *member; /* user whose groups to collect, or NULL */
        struct ids *ids;
};

static bool gr_line(const char *line, size_t len, void *ud)
{
        struct gr_query *q = ud;
        struct field f[4];
        if (split(line, len, f, 4) < 4)
                return false;
        unsigned long g;
        if (!parse_id(f[2].p, f[2].n, &g))
                return false;
        if (q->name) {
                if (!field_is(&f[0], q->name))
                        return false;
                q->gid = g;
                return true;
        }
        /* member list: comma separated */
        const char *s = f[3].p, *end = f[3].p + f[3].n;
        while (s < end) {
                const char *c = memchr(s, ',', (size_t)(end - s));
                struct field m = {s, (size_t)((c ? c : end) - s)};
                if (field_is(&m, q->member) && q->ids->ngroups < IDS_MAX_GROUPS)
                        q->ids->groups[q->ids->ngroups++] = (uint32_t)g;
                s = c ? c + 1 : end;
        }
        return false;
}

int ids_resolve(const char *spec, const char *passwd, const char *group, struct ids *ret, struct msb_error *err)
{
        memset(ret, 0, sizeof(*ret));
        snprintf(ret->home, sizeof(ret->home), "/root");
        if (!*spec)
                spec = "0";
        char user[512];
        snprintf(user, sizeof(user), "%s", spec);
        char *grp = strchr(user, ':');
        if (grp)
                *grp++ = '\0';
        struct pw_query pq = {.ids = ret};
        unsigned long id;
        bool named = true;
        if (parse_id(user, strlen(user), &id)) {
                pq.uid = id;
                if (!each_line(passwd, pw_line, &pq)) {
                        /* docker: an unknown numeric uid runs with gid 0 */
                        ret->uid = (uint32_t)id;
                        ret->gid = 0;
                        snprintf(ret->home, sizeof(ret->home), id == 0 ? "/root" : "/");
                        named = false;
                }
        } else {
                pq.name = user;
                if (!each_line(passwd, pw_line, &pq))
                        return msb_err(err, ENOENT, "user '%s' not found in the image's /etc/passwd", user);
        }
        if (grp) {
                struct gr_query gq = {.name = grp};
                if (parse_id(grp, strlen(grp), &id))
                        ret->gid = (uint32_t)id;
                else if (each_line(group, gr_line, &gq))
                        ret->gid = (uint32_t)gq.gid;
                else
                        return msb_err(err, ENOENT, "group '%s' not found in the image's /etc/group", grp);
        }
        ret->groups[ret->ngroups++] = ret->gid;
        if (named && !grp) {
                struct gr_query gq = {.member = pq.name_out, .ids = ret};
                each_line(group, gr_line, &gq);
        }
        return 0;
}
