/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where a registry's traffic and credentials may go: mirrors and insecure
 * registries from msb's config file, loopback hosts, the origin of a URL
 * (for redirects and token realms), and the docker credentials stored for
 * a host.  The HTTP client that obeys these is registry.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "lib/config.h"
#include "lib/image/image.h"
#include "lib/settings.h"

/* ---- config: mirrors and insecure registries ---- */

struct reg_config {
        const char *domain;
        char **mirrors;
        bool insecure;
};

static int reg_config_line(char **w, int n, void *ud, const char *where, struct msb_error *err)
{
        struct reg_config *c = ud;
        if (!strcmp(w[0], "mirror")) {
                if (!str_has_prefix(w[2], "http://") && !str_has_prefix(w[2], "https://"))
                        return msb_err(err, EINVAL, "%s: mirror URL '%s' must start with http:// or https://", where,
                                       w[2]);
                if (!strcmp(w[1], c->domain)) {
                        size_t l = strlen(w[2]);
                        while (l > 0 && w[2][l - 1] == '/')
                                w[2][--l] = 0;
                        strv_push(&c->mirrors, w[2]);
                }
        } else if (!strcmp(w[0], "insecure") && !strcmp(w[1], c->domain))
                c->insecure = true;
        return 0;
}

/* "mirror DOMAIN URL" and "insecure DOMAIN" lines of msb's config file
 * (config.c): the mirrors for domain (NULL-terminated) and whether it is
 * marked insecure. */
int msb_registry_config(const char *domain, char ***ret_mirrors, bool *ret_insecure, struct msb_error *err)
{
        struct reg_config c = {.domain = domain};
        int r = msb_config_each(reg_config_line, &c, err);
        if (r < 0) {
                strv_free(c.mirrors);
                return r;
        }
        *ret_mirrors = c.mirrors;
        *ret_insecure = c.insecure;
        return 0;
}

/* ---- hosts and URLs ---- */

/* Split an authority, "host[:port]" or "[v6addr][:port]" (n bytes), into
 * host (brackets removed) and port (0 when none).  false for anything else:
 * empty parts, a port that is not 1-65535, text after the port. */
static bool split_host_port(const char *s, size_t n, char *host, size_t hostsz, bool *ret_v6, unsigned *ret_port)
{
        size_t hs = 0, hl;
        const char *rest;
        bool v6 = n > 0 && s[0] == '[';
        if (v6) {
                const char *e = memchr(s, ']', n);
                if (!e)
                        return false;
                hs = 1;
                hl = (size_t)(e - s) - 1;
                rest = e + 1;
        } else {
                const char *c = memchr(s, ':', n);
                hl = c ? (size_t)(c - s) : n;
                rest = s + hl;
        }
        size_t rl = n - (size_t)(rest - s);
        if (hl == 0 || hl >= hostsz)
                return false;
        unsigned port = 0;
        if (rl > 0) {
                if (rest[0] != ':' || rl < 2 || rl > 6)
                        return false;
                for (size_t i = 1; i < rl; i++) {
                        if (!isdigit((unsigned char)rest[i]))
                                return false;
                        port = port * 10 + (unsigned)(rest[i] - '0');
                }
                if (port == 0 || port > 65535)
                        return false;
        }
        memcpy(host, s + hs, hl);
        host[hl] = 0;
        *ret_v6 = v6;
        *ret_port = port;
        return true;
}

bool reg_host_is_loopback(const char *hostport)
{
        char host[256];
        bool v6;
        unsigned port;
        if (!hostport || !split_host_port(hostport, strlen(hostport), host, sizeof(host), &v6, &port))
                return false;
        if (v6) {
                struct in6_addr a6;
                return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
        }
        /* the name itself, not names that start with it (localhost.attacker.example) */
        if (!strcasecmp(host, "localhost"))
                return true;
        /* inet_pton takes only a whole dotted quad: not 127.0.0.1.nip.io, a
         * name anyone can point anywhere, nor 1270.0.0.1 */
        struct in_addr a4;
        return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

bool reg_url_origin(const char *url, struct origin *o)
{
        const char *a;
        if (!strncasecmp(url, "https://", 8)) {
                o->https = true;
                a = url + 8;
        } else if (!strncasecmp(url, "http://", 7)) {
                o->https = false;
                a = url + 7;
        } else
                return false;
        size_t n = strcspn(a, "/?#");
        if (n >= sizeof(o->authority) || memchr(a, '@', n) || memchr(a, '\\', n))
                return false;
        if (!split_host_port(a, n, o->host, sizeof(o->host), &o->v6, &o->port))
                return false;
        if (o->port == 0)
                o->port = o->https ? 443 : 80;
        memcpy(o->authority, a, n);
        o->authority[n] = 0;
        return true;
}

bool reg_same_origin(const char *u1, const char *u2)
{
        struct origin a, b;
        return reg_url_origin(u1, &a) && reg_url_origin(u2, &b) && a.https == b.https && a.port == b.port &&
               a.v6 == b.v6 && !strcasecmp(a.host, b.host);
}

bool reg_url_may_get_credentials(const char *url)
{
        struct origin o;
        if (!url || !reg_url_origin(url, &o))
                return false;
        if (o.https || reg_host_is_loopback(o.authority))
                return true;
        /* plain HTTP elsewhere: only where the user said so, "insecure HOST[:PORT]" */
        _cleanup_strv_ char **mirrors = NULL;
        bool insecure = false;
        return msb_registry_config(o.authority, &mirrors, &insecure, NULL) == 0 && insecure;
}

/* The auths key for the credentials sent to base: the registry's own name
 * when base is the registry (registry-1.docker.io is docker.io), else the
 * host[:port] of base.  A mirror is someone else: it never gets the
 * registry's credentials, only those stored for itself. */
char *reg_credential_host(const char *base, const char *domain)
{
        struct origin o;
        /* plain HTTP to a host on the network (an http:// mirror not
         * marked insecure) gets nobody's credentials */
        if (!reg_url_origin(base, &o) || !reg_url_may_get_credentials(base))
                return NULL;
        if (!strcasecmp(o.authority, domain) ||
            (!strcmp(domain, "docker.io") && !strcasecmp(o.authority, "registry-1.docker.io")))
                return xstrdup(domain);
        return xstrdup(o.authority);
}

/* An auths key as docker reduces it to a host: "https://h:5000/v1/" → "h:5000" */
static bool auths_key_is(const char *key, const char *host)
{
        if (!strncasecmp(key, "https://", 8))
                key += 8;
        else if (!strncasecmp(key, "http://", 7))
                key += 7;
        size_t n = strcspn(key, "/");
        return n == strlen(host) && !strncasecmp(key, host, n);
}

/* base64 "user:pass" for host from $DOCKER_CONFIG/config.json or
 * ~/.docker/config.json ("auths" → host → "auth"), or NULL.  The exact key
 * first, then one that names the same host with a scheme or path, as
 * docker writes some. */
char *reg_docker_config_path(void)
{
        const char *dc = msb_setting(SET_DOCKER_CONFIG);
        const char *home = msb_setting(SET_HOME);
        return dc && *dc ? xasprintf("%s/config.json", dc) : home && *home ? xasprintf("%s/.docker/config.json", home)
                                                                          : NULL;
}

char *reg_docker_credentials(const char *host)
{
        _cleanup_free_ char *p = reg_docker_config_path();
        if (!p || !host)
                return NULL;
        json_error_t je;
        json_t *j = json_load_file(p, JSON_REJECT_DUPLICATES, &je);
        if (!j)
                return NULL;
        json_t *auths = json_object_get(j, "auths");
        json_t *entry = json_object_get(auths, host);
        if (!entry && !strcmp(host, "docker.io"))
                entry = json_object_get(auths, "https://index.docker.io/v1/");
        const char *key;
        json_t *v;
        if (!entry)
                json_object_foreach(auths, key, v) {
                        if (auths_key_is(key, host)) {
                                entry = v;
                                break;
                        }
                }
        const char *a = json_string_value(json_object_get(entry, "auth"));
        char *out = a && *a && strlen(a) < 4096 ? xstrdup(a) : NULL;
        json_decref(j);
        return out;
}
