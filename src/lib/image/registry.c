/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client for the OCI distribution API (v2) over libcurl: manifests and
 * blobs, anonymous bearer tokens (WWW-Authenticate: Bearer realm=...),
 * basic credentials from ~/.docker/config.json, and registry mirrors from
 * msb's config file.  Everything a registry answers is untrusted: sizes are
 * capped, JSON is parsed by jansson, digests are checked by the caller while
 * bytes arrive.
 *
 * Credentials stay with the endpoint they were stored for: a mirror gets
 * its own host's, a token realm gets them only over https (or plain HTTP to
 * loopback or a host marked insecure), and no Authorization header follows
 * a redirect to another scheme, host or port.  Those decisions, and the
 * config file's mirrors, are trust.c's; msb login/logout are at the end.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "curl-dl.h"
#include "common/util.h"
#include "msb.h"
#include "lib/image/image.h"

#define MAX_MANIFEST (4u << 20)
#define MAX_TOKEN_RESPONSE (256u << 10)
#define MAX_HEADER 8192
/* blob GETs are commonly redirected once, to storage; more is a loop */
#define MAX_REDIRECTS 5

struct reg {
        struct msb_ctx *ctx;
        CURL *curl;   /* NULL when libcurl could not be used: open_err says why */
        int open_err;
        const char *open_why;
        char *base;   /* "https://host" or a mirror's URL, no trailing '/' */
        char *domain; /* the image's registry, for messages */
        char *cred_host; /* auths key for base: domain, or a mirror's host[:port] */
        char *repo;
        char *auth;   /* "Authorization: ..." once known */
        char *basic;  /* base64 user:pass from the docker config, if any */
};

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
        bool foreign;       /* a redirect led away from the URL's origin */
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
        long st = 0;
        curl_easy_getinfo(r->c, CURLINFO_RESPONSE_CODE, &st);
        /* a redirect's page is not the answer; perform() goes on to the next */
        if (st >= 300 && st < 400)
                return len;
        if (r->sink) {
                /* only a 200's or 206's body is the blob; an error page is not */
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

/* One request, redirects not followed. */
static int perform_once(struct reg *g, const char *url, const char *accept, const char *auth, struct resp *r,
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
        /* perform() follows redirects itself; libcurl must not, nor carry
         * credentials anywhere (these are its defaults, said out loud) */
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        /* a proxy from the environment must not see loopback traffic, which
         * is plain HTTP with its credentials */
        curl_easy_setopt(c, CURLOPT_NOPROXY, "localhost,127.0.0.0/8,::1");
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

static bool is_redirect(long status)
{
        return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* GET url with auth (an "Authorization: ..." header or NULL), following up
 * to MAX_REDIRECTS redirects by hand.  libcurl would decide by itself
 * whether a custom Authorization header goes along to another host, and
 * how it decides has changed between versions (CVE-2018-1000007,
 * CVE-2022-27776); the library is loaded at run time, so its version is
 * not ours to choose.  Here auth goes only to url's own scheme, host and
 * port: registries redirect blob GETs to storage hosts, which must not see
 * the registry's token or password.  Once a redirect has left that origin
 * no credential is sent again, not even on the way back, and r->foreign
 * says so. */
static int perform(struct reg *g, const char *url, const char *accept, const char *auth, struct resp *r,
                   struct msb_error *err)
{
        if (!g->curl)
                return msb_err(err, g->open_err, "cannot talk to %s: %s", g->base, g->open_why);
        _cleanup_free_ char *cur = xstrdup(url);
        r->foreign = false;
        for (int hops = 0;; hops++) {
                int rc = perform_once(g, cur, accept, r->foreign ? NULL : auth, r, err);
                if (rc < 0 || !is_redirect(r->status))
                        return rc;
                if (hops == MAX_REDIRECTS)
                        return msb_err(err, ELOOP, "%s: more than %d redirects; the registry or its storage is misconfigured",
                                       url, MAX_REDIRECTS);
                char *loc = NULL;
                if (curl_easy_getinfo(g->curl, CURLINFO_REDIRECT_URL, &loc) != CURLE_OK || !loc || !*loc)
                        return msb_err(err, EPROTO, "%s: HTTP %ld without a Location", cur, r->status);
                if (strncasecmp(loc, "http://", 7) && strncasecmp(loc, "https://", 8))
                        return msb_err(err, EPROTO, "%s: redirect to '%.200s', which is not an http(s) URL", cur, loc);
                /* plain HTTP only where it is meant: a redirect must not
                 * downgrade a pull to it (a manifest by tag has nothing
                 * else to check it against) */
                if (!strncasecmp(loc, "http://", 7) && !reg_url_may_get_credentials(loc))
                        return msb_err(err, EPROTO,
                                       "%s: redirect to plain-HTTP '%.200s' refused; if that host is meant to serve "
                                       "plain HTTP, add 'insecure HOST[:PORT]' to msb's config file",
                                       cur, loc);
                if (!reg_same_origin(url, loc))
                        r->foreign = true;
                free(cur);
                cur = xstrdup(loc);
        }
}

/* value of key="..." (or key=token) in a WWW-Authenticate header */
char *reg_auth_param(const char *h, const char *key)
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
                                       "%s: the registry wants a user name and password; run 'msb login %s' "
                                       "(they go to ~/.docker/config.json, auths.\"%s\".auth)",
                                       g->base, g->cred_host ? g->cred_host : g->domain,
                                       g->cred_host ? g->cred_host : g->domain);
                free(g->auth);
                g->auth = xasprintf("Authorization: Basic %s", g->basic);
                return 0;
        }
        if (strncasecmp(www, "Bearer", 6) != 0)
                return msb_err(err, EACCES, "%s: unsupported authentication scheme in '%.60s'", g->domain, www);
        _cleanup_free_ char *realm = reg_auth_param(www, "realm");
        _cleanup_free_ char *service = reg_auth_param(www, "service");
        _cleanup_free_ char *scope = reg_auth_param(www, "scope");
        if (!realm || (!str_has_prefix(realm, "https://") && !str_has_prefix(realm, "http://")))
                return msb_err(err, EACCES, "%s: bearer challenge without a usable realm", g->domain);
        _cleanup_free_ char *svc = service ? url_escape(g->curl, service) : NULL;
        /* login asks about the registry, not a repository: no scope then */
        _cleanup_free_ char *def_scope = g->repo[0] ? xasprintf("repository:%s:pull", g->repo) : NULL;
        _cleanup_free_ char *sc = scope || def_scope ? url_escape(g->curl, scope ? scope : def_scope) : NULL;
        _cleanup_free_ char *url = xasprintf("%s%c%s%s%s%s", realm, strchr(realm, '?') ? '&' : '?',
                                             sc ? "scope=" : "", sc ? sc : "", svc ? "&service=" : "", svc ? svc : "");
        /* The realm is whatever URL the registry names.  Plain HTTP to a
         * host on the network is refused, as for registries: the password
         * (or the token's answer) would travel in clear text to wherever
         * the challenge pointed. */
        if (!reg_url_may_get_credentials(realm)) {
                struct origin o;
                return reg_url_origin(realm, &o)
                               ? msb_err(err, EACCES,
                                         "%s: the token service %.200s is plain HTTP to a host that is not loopback; "
                                         "if %s is trusted, add 'insecure %s' to msb's config file",
                                         g->domain, realm, o.authority, o.authority)
                               : msb_err(err, EACCES, "%s: the token service URL '%.200s' is not http(s)://host[:port]/...",
                                         g->domain, realm);
        }
        _cleanup_free_ char *basic = g->basic ? xasprintf("Authorization: Basic %s", g->basic) : NULL;
        struct resp r = {.max = MAX_TOKEN_RESPONSE};
        int rc = perform(g, url, NULL, basic, &r, err);
        if (rc == 0 && r.status != 200)
                rc = msb_err(err, EACCES, "%s: the token service %s answered %ld%s", g->domain, realm, r.status,
                             r.status == 401 ? " (credentials needed: msb login, or ~/.docker/config.json)" : "");
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
                /* a 401 from where a redirect led is not the registry
                 * asking: the realm it names gets nothing */
                if (r->status != 401 || attempt == 1 || r->foreign)
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
        struct reg *g = xcalloc(1, sizeof(*g));
        g->ctx = ctx;
        g->base = xstrdup(base);
        g->domain = xstrdup(domain);
        g->repo = xstrdup(repo);
        g->cred_host = reg_credential_host(base, domain);
        g->basic = reg_docker_credentials(g->cred_host);
        /* callers ran msb_reg_init(); should libcurl still fail, the first
         * request says so (perform()) instead of this returning nothing */
        const char *why = NULL;
        int r = curl_dl_load(&why);
        if (r < 0) {
                g->open_err = -r;
                g->open_why = why ? why : "libcurl cannot be loaded";
        } else if (!(g->curl = curl_easy_init())) {
                g->open_err = ENOMEM;
                g->open_why = "libcurl could not make a connection handle (out of memory?)";
        }
        return g;
}

void msb_reg_close(struct reg *g)
{
        if (!g)
                return;
        if (g->curl)
                curl_easy_cleanup(g->curl);
        free(g->base);
        free(g->domain);
        free(g->cred_host);
        free(g->repo);
        free(g->auth);
        free(g->basic);
        free(g);
}

char *msb_reg_upstream(const char *domain, bool insecure)
{
        if (!strcmp(domain, "docker.io"))
                return xstrdup("https://registry-1.docker.io");
        return xasprintf("%s://%s", insecure || reg_host_is_loopback(domain) ? "http" : "https", domain);
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
        long st = r.status;
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

static int docker_config_update(const char *domain, const char *auth, struct msb_error *err)
{
        _cleanup_free_ char *p = reg_docker_config_path();
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
        return r < 0 ? msb_err_errno(err, r, "cannot write %s", p) : 0;
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
        if (r == 0 && rs.status == 401 && !rs.foreign) {
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
