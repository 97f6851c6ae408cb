/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client for the OCI distribution API (v2) over libcurl: manifests and
 * blobs, anonymous bearer tokens (WWW-Authenticate: Bearer realm=...),
 * basic credentials from ~/.docker/config.json, and registry mirrors from
 * msb's config file.  Everything a registry answers is untrusted: sizes are
 * capped, JSON is parsed by jansson, digests are checked by the caller while
 * bytes arrive.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "curl-dl.h"
#include "internal.h"

#define MAX_MANIFEST (4u << 20)
#define MAX_TOKEN_RESPONSE (256u << 10)
#define MAX_HEADER 8192

struct reg {
        struct msb_ctx *ctx;
        CURL *curl;
        char *base;   /* "https://host" or a mirror's URL, no trailing '/' */
        char *domain; /* for credentials and messages */
        char *repo;
        char *auth;   /* "Authorization: ..." once known */
        char *basic;  /* base64 user:pass from the docker config, if any */
};

/* ---- config: mirrors and insecure registries ---- */

static char *config_path(void)
{
        const char *e = getenv("MSB_CONFIG");
        if (e && *e)
                return xstrdup(e);
        e = getenv("XDG_CONFIG_HOME");
        if (e && *e)
                return xasprintf("%s/msb/config", e);
        e = getenv("HOME");
        return e && *e ? xasprintf("%s/.config/msb/config", e) : NULL;
}

/* Lines "mirror DOMAIN URL" and "insecure DOMAIN"; '#' starts a comment.
 * Returns the mirrors for domain (NULL-terminated) and whether it is
 * marked insecure. */
int msb_registry_config(const char *domain, char ***ret_mirrors, bool *ret_insecure, struct msb_error *err)
{
        *ret_mirrors = NULL;
        *ret_insecure = false;
        _cleanup_free_ char *p = config_path();
        if (!p)
                return 0;
        _cleanup_free_ char *data = NULL;
        int r = read_file_at(AT_FDCWD, p, 1 << 20, &data, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return msb_err(err, r, "config %s: %s", p, strerror(-r));
        int lineno = 0;
        for (char *line = data, *next; line && *line; line = next) {
                /* by hand, not strtok: empty lines count for line numbers */
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                lineno++;
                char *hash = strchr(line, '#');
                if (hash)
                        *hash = 0;
                char *w[4] = {0};
                int n = 0;
                for (char *s2 = NULL, *t = strtok_r(line, " \t\r", &s2); t && n < 4; t = strtok_r(NULL, " \t\r", &s2))
                        w[n++] = t;
                if (n == 0)
                        continue;
                if (!strcmp(w[0], "mirror") && n == 3) {
                        if (!str_has_prefix(w[2], "http://") && !str_has_prefix(w[2], "https://")) {
                                strv_free(*ret_mirrors);
                                *ret_mirrors = NULL;
                                return msb_err(err, EINVAL, "config %s line %d: mirror URL '%s' must start with http:// or https://",
                                               p, lineno, w[2]);
                        }
                        if (!strcmp(w[1], domain)) {
                                size_t l = strlen(w[2]);
                                while (l > 0 && w[2][l - 1] == '/')
                                        w[2][--l] = 0;
                                strv_push(ret_mirrors, w[2]);
                        }
                } else if (!strcmp(w[0], "insecure") && n == 2) {
                        if (!strcmp(w[1], domain))
                                *ret_insecure = true;
                } else {
                        strv_free(*ret_mirrors);
                        *ret_mirrors = NULL;
                        return msb_err(err, EINVAL,
                                       "config %s line %d: expected 'mirror DOMAIN URL' or 'insecure DOMAIN'", p, lineno);
                }
        }
        return 0;
}

static bool is_loopback(const char *domain)
{
        return str_has_prefix(domain, "localhost") || str_has_prefix(domain, "127.") || str_has_prefix(domain, "[::1]");
}

/* base64 "user:pass" for domain from $DOCKER_CONFIG/config.json or
 * ~/.docker/config.json ("auths" → domain → "auth"), or NULL. */
static char *docker_credentials(const char *domain)
{
        const char *dc = getenv("DOCKER_CONFIG");
        const char *home = getenv("HOME");
        _cleanup_free_ char *p = dc && *dc ? xasprintf("%s/config.json", dc)
                                           : home && *home ? xasprintf("%s/.docker/config.json", home) : NULL;
        if (!p)
                return NULL;
        json_error_t je;
        json_t *j = json_load_file(p, JSON_REJECT_DUPLICATES, &je);
        if (!j)
                return NULL;
        json_t *auths = json_object_get(j, "auths");
        const char *keys[] = {domain, !strcmp(domain, "docker.io") ? "https://index.docker.io/v1/" : NULL};
        char *out = NULL;
        for (size_t i = 0; i < ARRAY_SIZE(keys) && !out; i++) {
                if (!keys[i])
                        continue;
                const char *a = json_string_value(json_object_get(json_object_get(auths, keys[i]), "auth"));
                if (a && *a && strlen(a) < 4096)
                        out = xstrdup(a);
        }
        json_decref(j);
        return out;
}

/* ---- HTTP ---- */

struct resp {
        CURL *c;
        long status;
        char *content_type;
        char *www_auth;
        char *digest;       /* Docker-Content-Digest */
        /* body: into memory (mem, up to max) or through a sink */
        char *mem;
        size_t len, max;
        int (*sink)(void *arg, const void *p, size_t n);
        int (*on_status)(void *arg, long status);
        void *sink_arg;
        const char *range;  /* "Range: bytes=N-" */
        bool too_big;
        int sink_err;
};

static void resp_free(struct resp *r)
{
        free(r->content_type);
        free(r->www_auth);
        free(r->digest);
        free(r->mem);
        memset(r, 0, sizeof(*r));
}

static size_t on_header(char *b, size_t sz, size_t n, void *arg)
{
        struct resp *r = arg;
        size_t len = sz * n;
        if (len > MAX_HEADER)
                return len;
        char line[MAX_HEADER + 1];
        memcpy(line, b, len);
        line[len] = 0;
        line[strcspn(line, "\r\n")] = 0;
        if (str_has_prefix(line, "HTTP/")) {
                /* a new response (after a redirect or 100): forget the last */
                free(r->content_type);
                free(r->www_auth);
                free(r->digest);
                r->content_type = r->www_auth = r->digest = NULL;
                return len;
        }
        char *colon = strchr(line, ':');
        if (!colon)
                return len;
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
                v++;
        char **dst = !strcasecmp(line, "content-type")          ? &r->content_type
                     : !strcasecmp(line, "www-authenticate")      ? &r->www_auth
                     : !strcasecmp(line, "docker-content-digest") ? &r->digest
                                                                  : NULL;
        if (dst) {
                free(*dst);
                *dst = xstrdup(v);
        }
        return len;
}

static size_t on_body(char *b, size_t sz, size_t n, void *arg)
{
        struct resp *r = arg;
        size_t len = sz * n;
        if (r->sink) {
                /* only a 200's or 206's body is the blob; an error page is not */
                long st = 0;
                curl_easy_getinfo(r->c, CURLINFO_RESPONSE_CODE, &st);
                if (st != 200 && st != 206)
                        return len;
                if (r->status == 0) {
                        r->status = st; /* the sink learns whether its range was honoured */
                        if (r->on_status && r->on_status(r->sink_arg, st) < 0) {
                                r->sink_err = -ECANCELED;
                                return 0;
                        }
                }
                int e = r->sink(r->sink_arg, b, len);
                if (e < 0) {
                        r->sink_err = e;
                        return 0; /* abort the transfer */
                }
                return len;
        }
        if (r->len + len > r->max) {
                r->too_big = true;
                return 0;
        }
        r->mem = xrealloc(r->mem, r->len + len + 1);
        memcpy(r->mem + r->len, b, len);
        r->len += len;
        r->mem[r->len] = 0;
        return len;
}

static int perform(struct reg *g, const char *url, const char *accept, const char *auth, struct resp *r,
                   struct msb_error *err)
{
        CURL *c = g->curl;
        curl_easy_reset(c);
        r->c = c;
        struct curl_slist *h = NULL;
        if (accept)
                h = curl_slist_append(h, accept);
        if (auth)
                h = curl_slist_append(h, auth);
        if (r->range)
                h = curl_slist_append(h, r->range);
        h = curl_slist_append(h, "User-Agent: msb/" MSB_VERSION);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
        /* a stalled transfer fails instead of hanging: < 1 KiB/s for 60 s */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        r->status = 0;
        CURLcode cc = curl_easy_perform(c);
        curl_slist_free_all(h);
        if (r->sink_err)
                return r->sink_err;
        if (r->too_big)
                return msb_err(err, EFBIG, "%s: the answer is larger than %zu bytes", url, r->max);
        if (cc != CURLE_OK)
                return msb_err(err, EIO, "%s: %s", url, curl_easy_strerror(cc));
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        return 0;
}

/* value of key="..." (or key=token) in a WWW-Authenticate header */
static char *auth_param(const char *h, const char *key)
{
        size_t kl = strlen(key);
        for (const char *p = h; (p = strcasestr(p, key)); p += kl) {
                if (p != h && p[-1] != ' ' && p[-1] != ',')
                        continue;
                if (p[kl] != '=')
                        continue;
                const char *v = p + kl + 1;
                if (*v == '"') {
                        const char *e = strchr(v + 1, '"');
                        return e ? strndup(v + 1, (size_t)(e - v - 1)) : NULL;
                }
                return strndup(v, strcspn(v, ", "));
        }
        return NULL;
}

static char *url_escape(CURL *c, const char *s)
{
        char *e = curl_easy_escape(c, s, 0);
        char *o = xstrdup(e ? e : "");
        curl_free(e);
        return o;
}

/* Answer a 401: get a bearer token from the realm it names, or use basic
 * credentials.  Sets g->auth. */
static int authenticate(struct reg *g, const char *www, struct msb_error *err)
{
        if (!www)
                return msb_err(err, EACCES, "%s: 401 Unauthorized without a WWW-Authenticate header", g->domain);
        if (!strncasecmp(www, "Basic", 5)) {
                if (!g->basic)
                        return msb_err(err, EACCES,
                                       "%s: the registry wants a user name and password; add them to "
                                       "~/.docker/config.json (auths.\"%s\".auth)",
                                       g->domain, g->domain);
                free(g->auth);
                g->auth = xasprintf("Authorization: Basic %s", g->basic);
                return 0;
        }
        if (strncasecmp(www, "Bearer", 6) != 0)
                return msb_err(err, EACCES, "%s: unsupported authentication scheme in '%.60s'", g->domain, www);
        _cleanup_free_ char *realm = auth_param(www, "realm");
        _cleanup_free_ char *service = auth_param(www, "service");
        _cleanup_free_ char *scope = auth_param(www, "scope");
        if (!realm || (!str_has_prefix(realm, "https://") && !str_has_prefix(realm, "http://")))
                return msb_err(err, EACCES, "%s: bearer challenge without a usable realm", g->domain);
        _cleanup_free_ char *svc = service ? url_escape(g->curl, service) : NULL;
        /* login asks about the registry, not a repository: no scope then */
        _cleanup_free_ char *def_scope = g->repo[0] ? xasprintf("repository:%s:pull", g->repo) : NULL;
        _cleanup_free_ char *sc = scope || def_scope ? url_escape(g->curl, scope ? scope : def_scope) : NULL;
        _cleanup_free_ char *url = xasprintf("%s%c%s%s%s%s", realm, strchr(realm, '?') ? '&' : '?',
                                             sc ? "scope=" : "", sc ? sc : "", svc ? "&service=" : "", svc ? svc : "");
        _cleanup_free_ char *basic = g->basic ? xasprintf("Authorization: Basic %s", g->basic) : NULL;
        struct resp r = {.max = MAX_TOKEN_RESPONSE};
        int rc = perform(g, url, NULL, basic, &r, err);
        if (rc == 0 && r.status != 200)
                rc = msb_err(err, EACCES, "%s: the token service %s answered %ld%s", g->domain, realm, r.status,
                             r.status == 401 ? " (credentials needed: ~/.docker/config.json)" : "");
        json_t *j = NULL;
        if (rc == 0) {
                json_error_t je;
                j = json_loadb(r.mem ? r.mem : "", r.len, 0, &je);
                const char *tok = json_string_value(json_object_get(j, "token"));
                if (!tok)
                        tok = json_string_value(json_object_get(j, "access_token"));
                if (!tok || !*tok || strlen(tok) > 16384 || strpbrk(tok, "\r\n"))
                        rc = msb_err(err, EACCES, "%s: the token service gave no usable token", g->domain);
                else {
                        free(g->auth);
                        g->auth = xasprintf("Authorization: Bearer %s", tok);
                }
        }
        json_decref(j);
        resp_free(&r);
        return rc;
}

/* GET with authentication: on a 401, authenticate once and retry. */
static int reg_get(struct reg *g, const char *path, const char *accept, struct resp *r, struct msb_error *err)
{
        _cleanup_free_ char *url = xasprintf("%s/v2/%s", g->base, path);
        struct resp keep = *r;
        for (int attempt = 0; attempt < 2; attempt++) {
                int rc = perform(g, url, accept, g->auth, r, err);
                if (rc < 0)
                        return rc;
                if (r->status != 401 || attempt == 1)
                        return 0;
                _cleanup_free_ char *www = r->www_auth ? xstrdup(r->www_auth) : NULL;
                resp_free(r);
                *r = keep;
                rc = authenticate(g, www, err);
                if (rc < 0)
                        return rc;
        }
        return 0;
}

int msb_reg_init(struct msb_error *err)
{
        const char *why = NULL;
        int r = curl_dl_load(&why);
        return r < 0 ? msb_err(err, -r, "cannot talk to registries: %s", why) : 0;
}

struct reg *msb_reg_open(struct msb_ctx *ctx, const char *base, const char *domain, const char *repo)
{
        /* callers ran msb_reg_init() */
        if (curl_dl_load(NULL) < 0)
                abort();
        struct reg *g = xcalloc(1, sizeof(*g));
        g->ctx = ctx;
        g->curl = curl_easy_init();
        if (!g->curl)
                abort();
        g->base = xstrdup(base);
        g->domain = xstrdup(domain);
        g->repo = xstrdup(repo);
        g->basic = docker_credentials(domain);
        return g;
}

void msb_reg_close(struct reg *g)
{
        if (!g)
                return;
        curl_easy_cleanup(g->curl);
        free(g->base);
        free(g->domain);
        free(g->repo);
        free(g->auth);
        free(g->basic);
        free(g);
}

char *msb_reg_upstream(const char *domain, bool insecure)
{
        if (!strcmp(domain, "docker.io"))
                return xstrdup("https://registry-1.docker.io");
        return xasprintf("%s://%s", insecure || is_loopback(domain) ? "http" : "https", domain);
}

#define ACCEPT_MANIFESTS                                                                                   \
        "Accept: application/vnd.oci.image.index.v1+json, "                                                \
        "application/vnd.docker.distribution.manifest.list.v2+json, "                                      \
        "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, " \
        "application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1"

int msb_reg_manifest(struct reg *g, const char *reference, char **ret_body, size_t *ret_len, char **ret_media,
                     struct msb_error *err)
{
        _cleanup_free_ char *path = xasprintf("%s/manifests/%s", g->repo, reference);
        struct resp r = {.max = MAX_MANIFEST};
        int rc = reg_get(g, path, ACCEPT_MANIFESTS, &r, err);
        if (rc < 0) {
                resp_free(&r);
                return rc;
        }
        if (r.status == 404) {
                resp_free(&r);
                return msb_err(err, ENOENT, "%s/%s:%s: no such manifest on %s (404)", g->domain, g->repo, reference,
                               g->base);
        }
        if (r.status == 401 || r.status == 403) {
                resp_free(&r);
                return msb_err(err, EACCES, "%s/%s: access denied by %s (%ld); check credentials", g->domain, g->repo,
                               g->base, r.status);
        }
        if (r.status != 200) {
                long st = r.status;
                resp_free(&r);
                return msb_err(err, EIO, "%s/%s:%s: %s answered HTTP %ld", g->domain, g->repo, reference, g->base, st);
        }
        *ret_media = xstrdup(r.content_type ? r.content_type : "");
        (*ret_media)[strcspn(*ret_media, "; ")] = 0;
        *ret_body = r.mem ? r.mem : xstrdup("");
        *ret_len = r.len;
        r.mem = NULL;
        resp_free(&r);
        return 0;
}

int msb_reg_blob(struct reg *g, const char *digest, uint64_t offset, int (*on_status)(void *arg, long status),
                 int (*sink)(void *arg, const void *p, size_t n), void *arg, struct msb_error *err)
{
        _cleanup_free_ char *path = xasprintf("%s/blobs/%s", g->repo, digest);
        _cleanup_free_ char *range = offset ? xasprintf("Range: bytes=%llu-", (unsigned long long)offset) : NULL;
        struct resp r = {.sink = sink, .on_status = on_status, .sink_arg = arg, .range = range};
        int rc = reg_get(g, path, NULL, &r, err);
        long st = 0;
        curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &st);
        resp_free(&r);
        if (rc < 0)
                return rc;
        if (st == 404)
                return msb_err(err, ENOENT, "blob %s: not on %s (404)", digest, g->base);
        if (st != 200 && st != 206)
                return msb_err(err, EIO, "blob %s: %s answered HTTP %ld", digest, g->base, st);
        return 0;
}

struct reg *msb_reg_clone(const struct reg *g)
{
        struct reg *c = msb_reg_open(g->ctx, g->base, g->domain, g->repo);
        if (g->auth)
                c->auth = xstrdup(g->auth);
        return c;
}

/* ---- login / logout ---- */

static char *base64(const char *in, size_t n)
{
        static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = xmalloc(4 * ((n + 2) / 3) + 1), *o = out;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)(uint8_t)in[i] << 16;
                if (i + 1 < n)
                        v |= (uint32_t)(uint8_t)in[i + 1] << 8;
                if (i + 2 < n)
                        v |= (uint8_t)in[i + 2];
                *o++ = t[(v >> 18) & 63];
                *o++ = t[(v >> 12) & 63];
                *o++ = i + 1 < n ? t[(v >> 6) & 63] : '=';
                *o++ = i + 2 < n ? t[v & 63] : '=';
        }
        *o = 0;
        return out;
}

static char *docker_config_path(void)
{
        const char *dc = getenv("DOCKER_CONFIG");
        const char *home = getenv("HOME");
        return dc && *dc ? xasprintf("%s/config.json", dc) : home && *home ? xasprintf("%s/.docker/config.json", home) : NULL;
}

static int docker_config_update(const char *domain, const char *auth, struct msb_error *err)
{
        _cleanup_free_ char *p = docker_config_path();
        if (!p)
                return msb_err(err, EINVAL, "cannot find ~/.docker/config.json: set HOME or DOCKER_CONFIG");
        json_error_t je;
        json_t *j = json_load_file(p, 0, &je);
        if (!j && access(p, F_OK) == 0)
                return msb_err(err, EINVAL, "%s: %s (line %d); fix or remove it", p, je.text, je.line);
        if (!j)
                j = json_object();
        if (!json_is_object(j)) {
                json_decref(j);
                return msb_err(err, EINVAL, "%s is not a JSON object", p);
        }
        json_t *auths = json_object_get(j, "auths");
        if (!json_is_object(auths)) {
                auths = json_object();
                json_object_set_new(j, "auths", auths);
        }
        if (auth)
                json_object_set_new(auths, domain, json_pack("{s:s}", "auth", auth));
        else if (json_object_del(auths, domain) < 0) {
                json_decref(j);
                return msb_err(err, ENOENT, "not logged in to %s (no entry in %s)", domain, p);
        }
        char *text = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
        json_decref(j);
        _cleanup_free_ char *dir = xstrdup(p);
        *strrchr(dir, '/') = 0;
        int r = mkdir_p(dir, 0700);
        if (r == 0)
                r = write_file_atomic_at(AT_FDCWD, p, text, strlen(text), 0600);
        free(text);
        return r < 0 ? msb_err(err, r, "cannot write %s: %s", p, strerror(-r)) : 0;
}

int msb_registry_login(struct msb_ctx *ctx, const char *registry, const char *user, const char *password,
                       struct msb_error *err)
{
        if (!user || !*user || strchr(user, ':'))
                return msb_err(err, EINVAL, "user name '%s' is empty or has a ':'", user ? user : "");
        if (!password || !*password)
                return msb_err(err, EINVAL, "the password is empty");
        _cleanup_strv_ char **mirrors = NULL;
        bool insecure;
        int r = msb_registry_config(registry, &mirrors, &insecure, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *base = msb_reg_upstream(registry, insecure);
        _cleanup_free_ char *up = xasprintf("%s:%s", user, password);
        _cleanup_free_ char *b64 = base64(up, strlen(up));
        explicit_bzero(up, strlen(up));
        /* check the credentials against the registry before keeping them */
        if ((r = msb_reg_init(err)) < 0) {
                explicit_bzero(b64, strlen(b64));
                return r;
        }
        struct reg *g = msb_reg_open(ctx, base, registry, "");
        free(g->basic);
        g->basic = xstrdup(b64);
        _cleanup_free_ char *url = xasprintf("%s/v2/", base);
        struct resp rs = {.max = 1 << 16};
        r = perform(g, url, NULL, NULL, &rs, err);
        if (r == 0 && rs.status == 401) {
                _cleanup_free_ char *www = rs.www_auth ? xstrdup(rs.www_auth) : NULL;
                resp_free(&rs);
                rs = (struct resp){.max = 1 << 16};
                r = authenticate(g, www, err);
                if (r == 0)
                        r = perform(g, url, NULL, g->auth, &rs, err);
        }
        if (r == 0 && rs.status != 200)
                r = msb_err(err, EACCES, "%s refused the credentials for '%s' (HTTP %ld)", base, user, rs.status);
        resp_free(&rs);
        msb_reg_close(g);
        if (r < 0)
                return r;
        return docker_config_update(registry, b64, err);
}

int msb_registry_logout(const char *registry, struct msb_error *err)
{
        return docker_config_update(registry, NULL, err);
}
