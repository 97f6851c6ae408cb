/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image references, by the grammar of the distribution project
 * (reference/reference.go):
 *
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [domain "/"] path-component ["/" path-component]*
 *   domain     := host [":" port]   (a first component with "." or ":", or "localhost")
 *   path-comp  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
 *   digest     := "sha256:" 64 lowercase hex digits
 *
 * Short names are docker.io's: "alpine" is docker.io/library/alpine:latest.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <string.h>

#include "common/util.h"
#include "lib/image/image.h"

void msb_ref_free(struct msb_ref *r)
{
        free(r->domain);
        free(r->repo);
        free(r->tag);
        free(r->digest);
        memset(r, 0, sizeof(*r));
}

static bool alnum_lower(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component; returns NULL if fine, else what is wrong. */
static const char *check_component(const char *s, size_t n)
{
        if (n == 0)
                return "an empty path component";
        if (!alnum_lower(s[0]) || !alnum_lower(s[n - 1]))
                return "a path component that does not start and end with a lowercase letter or digit";
        for (size_t i = 0; i < n;) {
                if (alnum_lower(s[i])) {
                        i++;
                        continue;
                }
                /* a separator: ".", "_", "__" or one or more "-" */
                size_t j = i;
                if (s[i] == '-') {
                        while (j < n && s[j] == '-')
                                j++;
                } else if (s[i] == '.') {
                        j++;
                } else if (s[i] == '_') {
                        j++;
                        if (j < n && s[j] == '_')
                                j++;
                } else {
                        return "a character other than lowercase letters, digits and . _ -";
                }
                if (j >= n || !alnum_lower(s[j]))
                        return "separators (. _ -) that are doubled or not between letters or digits";
                i = j;
        }
        return NULL;
}

static bool domain_ok(const char *s, size_t n)
{
        /* host: letters, digits, '-', '.'; optional :port; or [ipv6]:port */
        if (n == 0 || n > 255)
                return false;
        size_t i = 0;
        if (s[0] == '[') {
                const char *e = memchr(s, ']', n);
                if (!e)
                        return false;
                i = (size_t)(e - s) + 1;
        } else {
                for (; i < n && s[i] != ':'; i++)
                        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
                                return false;
                if (i == 0)
                        return false;
        }
        if (i < n) {
                if (s[i] != ':' || i + 1 == n || n - i - 1 > 5)
                        return false;
                for (size_t k = i + 1; k < n; k++)
                        if (!isdigit((unsigned char)s[k]))
                                return false;
        }
        return true;
}

/* "@sha256:<hex>" cut off s (the copy of in) into ret->digest. */
static int parse_digest(const char *in, char *s, struct msb_ref *ret, struct msb_error *err)
{
        char *at = strchr(s, '@');
        if (!at)
                return 0;
        *at++ = '\0';
        bool ok = strncmp(at, "sha256:", 7) == 0 && strlen(at + 7) == 64;
        for (size_t i = 7; ok && i < 7 + 64; i++)
                ok = (at[i] >= '0' && at[i] <= '9') || (at[i] >= 'a' && at[i] <= 'f');
        if (!ok)
                return msb_err(err, EINVAL, "image reference '%s': digest '%s' must be sha256:<64 hex digits>", in,
                               at);
        ret->digest = xstrdup(at);
        return 0;
}

/* ":tag" cut off s into ret->tag: it is after the last '/' (a ':' before
 * it belongs to a port). */
static int parse_tag(const char *in, char *s, struct msb_ref *ret, struct msb_error *err)
{
        char *slash = strrchr(s, '/');
        char *colon = strrchr(slash ? slash : s, ':');
        if (!colon)
                return 0;
        *colon++ = '\0';
        size_t tn = strlen(colon);
        bool ok = tn >= 1 && tn <= 128 && (isalnum((unsigned char)colon[0]) || colon[0] == '_');
        for (size_t i = 1; ok && i < tn; i++)
                ok = isalnum((unsigned char)colon[i]) || strchr("_.-", colon[i]);
        if (!ok)
                return msb_err(err, EINVAL,
                               "image reference '%s': tag '%s' must be 1-128 letters, digits, '_', '.' or '-', "
                               "not starting with '.' or '-'",
                               in, colon);
        ret->tag = xstrdup(colon);
        return 0;
}

/* The domain, the first component of s if it looks like one, into
 * ret->domain; *ret_name: the repository after it. */
static int parse_domain(const char *in, char *s, struct msb_ref *ret, char **ret_name, struct msb_error *err)
{
        *ret_name = s;
        char *first_slash = strchr(s, '/');
        if (!first_slash)
                return 0;
        size_t dn = (size_t)(first_slash - s);
        bool is_domain = memchr(s, '.', dn) || memchr(s, ':', dn) || (dn == 9 && !strncmp(s, "localhost", 9)) ||
                         memchr(s, '[', dn);
        for (size_t i = 0; !is_domain && i < dn; i++)
                is_domain = isupper((unsigned char)s[i]);
        if (!is_domain)
                return 0;
        if (!domain_ok(s, dn))
                return msb_err(err, EINVAL, "image reference '%s': registry '%.*s' is not a valid host[:port]", in,
                               (int)dn, s);
        ret->domain = strndup(s, dn);
        *ret_name = first_slash + 1;
        return 0;
}

/* The repository name, component by component. */
static int check_repo(const char *in, const char *name, struct msb_error *err)
{
        if (!*name)
                return msb_err(err, EINVAL, "image reference '%s' has no repository name", in);
        if (strlen(name) > 255)
                return msb_err(err, EINVAL, "image reference '%s': repository name is longer than 255 characters", in);
        for (const char *c = name;;) {
                const char *e = strchr(c, '/');
                size_t n = e ? (size_t)(e - c) : strlen(c);
                const char *why = check_component(c, n);
                if (why)
                        return msb_err(err, EINVAL, "image reference '%s': repository '%s' has %s", in, name, why);
                if (!e)
                        return 0;
                c = e + 1;
        }
}

int msb_ref_parse(const char *in, struct msb_ref *ret, struct msb_error *err)
{
        memset(ret, 0, sizeof(*ret));
        if (!in || !*in)
                return msb_err(err, EINVAL, "image reference is empty");
        size_t len = strlen(in);
        if (len > 512)
                return msb_err(err, EINVAL, "image reference '%.40s...' is longer than 512 characters", in);
        _cleanup_free_ char *s = xstrdup(in);
        char *name = NULL;
        int r = parse_digest(in, s, ret, err);
        if (r == 0)
                r = parse_tag(in, s, ret, err);
        if (r == 0)
                r = parse_domain(in, s, ret, &name, err);
        if (r == 0)
                r = check_repo(in, name, err);
        if (r < 0) {
                msb_ref_free(ret);
                return r;
        }
        if (!ret->domain)
                ret->domain = xstrdup("docker.io");
        if (!strcmp(ret->domain, "index.docker.io") || !strcmp(ret->domain, "registry-1.docker.io")) {
                free(ret->domain);
                ret->domain = xstrdup("docker.io");
        }
        ret->repo = !strcmp(ret->domain, "docker.io") && !strchr(name, '/') ? xasprintf("library/%s", name)
                                                                              : xstrdup(name);
        if (!ret->tag && !ret->digest)
                ret->tag = xstrdup("latest");
        return 0;
}

char *msb_ref_string(const struct msb_ref *r)
{
        if (r->digest && r->tag)
                return xasprintf("%s/%s:%s@%s", r->domain, r->repo, r->tag, r->digest);
        if (r->digest)
                return xasprintf("%s/%s@%s", r->domain, r->repo, r->digest);
        return xasprintf("%s/%s:%s", r->domain, r->repo, r->tag);
}
