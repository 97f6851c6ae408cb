/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image subsystem (src/lib/image/): the local image store (store.c
 * describes its layout), imports, pulls, loads, listing and removal,
 * image references (ref.c) and the distribution API client (registry.c).
 *
 * Two blocks: what the rest of the library calls (its files include
 * this header), then what the files of src/lib/image/ share among
 * themselves (img_ prefix; nothing outside src/lib/image/ uses it).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct msb_ctx;

/* ================= for the rest of the library ================= */

/* ---- images (open.c, config.c, names.c) ---- */
struct msb_image_config {
        char **entrypoint;
        char **cmd;
        char **env;
        char *workdir;
        char *user;
};
void msb_image_config_free(struct msb_image_config *c);
/* Look up ref in the store: rootfs dir and parsed config. */
int msb_image_open(struct msb_ctx *ctx, const char *ref, char **ret_rootfs, struct msb_image_config *ret_cfg,
                   struct msb_error *err);
/* Normalize a local name: add ":latest" when no tag; validates characters. */
int msb_image_name_normalize(const char *name, char **ret, struct msb_error *err);
/* Parse an OCI image config JSON blob. */
int msb_image_config_parse(const char *json, size_t len, struct msb_image_config *ret, struct msb_error *err);

/* ---- ref.c: image references ---- */
struct msb_ref {
        char *domain; /* "docker.io", "host:5000" */
        char *repo;   /* "library/alpine" */
        char *tag;    /* NULL only with a digest */
        char *digest; /* "sha256:<hex>" or NULL */
};
/* Parse by the distribution grammar and normalize (docker.io/library/,
 * :latest); errors name the bad part. */
int msb_ref_parse(const char *s, struct msb_ref *ret, struct msb_error *err);
void msb_ref_free(struct msb_ref *r);
/* "domain/repo:tag", "domain/repo@digest" or both. */
char *msb_ref_string(const struct msb_ref *r);

/* ---- registry.c: distribution API client (msb_registry_config: trust.c) ---- */
struct reg;
/* Mirrors for domain from msb's config file ($MSB_CONFIG,
 * $XDG_CONFIG_HOME/msb/config or ~/.config/msb/config) and whether the
 * domain is marked insecure (plain HTTP). */
int msb_registry_config(const char *domain, char ***ret_mirrors, bool *ret_insecure, struct msb_error *err);
/* The registry's own URL: https, http for loopback or insecure ones;
 * docker.io is registry-1.docker.io. */
char *msb_reg_upstream(const char *domain, bool insecure);
int msb_reg_init(struct msb_error *err);
struct reg *msb_reg_open(struct msb_ctx *ctx, const char *base, const char *domain, const char *repo);
void msb_reg_close(struct reg *g);
/* GET a manifest by tag or digest (at most 4 MiB); media type from the
 * Content-Type.  -ENOENT for 404, -EACCES when access is denied. */
int msb_reg_manifest(struct reg *g, const char *reference, char **ret_body, size_t *ret_len, char **ret_media,
                     struct msb_error *err);
/* Stream a blob into sink (which may stop it by returning < 0), from byte
 * offset on; on_status hears 200 (whole blob: start over) or 206 (the
 * range) before the first byte. */
int msb_reg_blob(struct reg *g, const char *digest, uint64_t offset, int (*on_status)(void *arg, long status),
                 int (*sink)(void *arg, const void *p, size_t n), void *arg, struct msb_error *err);
/* Another connection to the same registry, sharing the token. */
struct reg *msb_reg_clone(const struct reg *g);

/* ---- trust.c: where credentials may go ---- */
/* Whether a registry's "host[:port]" (or "[v6]:port") is loopback: the
 * name localhost (any case), a whole dotted-quad IPv4 literal in
 * 127.0.0.0/8, or [::1].  Prefixes do not count: "localhost.example" and
 * "127.0.0.1.nip.io" are names anyone can point anywhere. */
bool reg_host_is_loopback(const char *hostport);
/* Whether basic credentials may be sent to url (a bearer token realm):
 * https, or http to a loopback host or one marked "insecure" in msb's
 * config file.  false for a URL that is not http(s)://host[:port]/...,
 * including one with user:password@ in it. */
bool reg_url_may_get_credentials(const char *url);
/* The value of key in a WWW-Authenticate challenge (untrusted, from the
 * registry), unquoted; NULL if absent.  The caller frees it. */
char *reg_auth_param(const char *h, const char *key);

/* ================= shared by the files of src/lib/image/ ================= */

/* Limits on what an image (untrusted) may make msb read or hold. */
#define IMAGE_MAX_JSON (4u << 20)       /* index, manifest, config */
#define IMAGE_MAX_LAYERS 128u
#define IMAGE_MAX_BLOB (16ULL << 30)    /* one layer */

/* ---- store.c: the store, open and locked ---- */
struct img_store {
        struct msb_ctx *ctx;
        char *root; /* <data>/images */
        int fd;
        int lock;   /* -1 until store_lock */
};
/* Open (creating it private to the user) and lock the store how: LOCK_SH
 * to add, LOCK_EX to remove.  Whoever is alone in it sweeps tmp/ and
 * migrates an older format first. */
int img_store_open(struct msb_ctx *ctx, struct img_store *s, int how, struct msb_error *err);
/* Unlock and close; s may be half open. */
void img_store_close(struct img_store *s);
/* Whether the store at sfd has the current format (older roots gone). */
bool img_store_current_at(int sfd);
/* Copy fd in (a regular file, at most max bytes) into a new tmp/blob-*,
 * hashing it: *ret_tmp (store-relative, caller frees), hex and size.  On
 * error the tmp file is gone. */
int img_store_copy_in(struct img_store *s, int in, const char *what, uint64_t max, char **ret_tmp, char hex[65],
                      uint64_t *ret_size, struct msb_error *err);
/* Copy blob digest from an OCI layout's blobs/ (layout_fd) into the store,
 * verifying digest and size (size < 0: not declared). */
int img_store_put_blob(struct img_store *s, int layout_fd, const char *digest, json_int_t size, struct msb_error *err);
/* Store bytes we already hold (a manifest) as blob hex. */
int img_store_put_bytes(struct img_store *s, const char *hex, const char *data, size_t len, struct msb_error *err);

/* ---- config.c ---- */
/* Read config blob chex of the store at sfd and check that it parses, so
 * that a bad one fails when it comes in, not at run; a read failure is
 * "<what>: <errno text>".  Its bytes into *ret_json (if not NULL; caller
 * frees) and *ret_len. */
int img_config_check(int sfd, const char *chex, const char *what, char **ret_json, size_t *ret_len,
                     struct msb_error *err);

/* ---- names.c: refs/ ---- */
/* The file name under refs/ for an image name ('/', ':', '%', '@' escaped
 * as %XX); caller frees. */
char *img_ref_file_name(const char *name);
/* Point name at manifest hex, atomically. */
int img_write_ref(int store_fd, const char *name, const char *hex, struct msb_error *err);

/* ---- manifest.c: OCI documents ---- */
/* Whether digest is "sha256:<64 lowercase hex>"; *ret_hex points into it. */
bool img_digest_hex(const char *digest, const char **ret_hex);
/* A JSON object read beneath dirfd (at most IMAGE_MAX_JSON); NULL with err
 * naming what and path.  Caller decrefs. */
json_t *img_load_json_at(int dirfd, const char *path, struct msb_error *err, const char *what);
/* A descriptor's digest (or NULL) and media type (or ""). */
const char *img_desc_digest(json_t *d);
const char *img_desc_media(json_t *d);
/* The same for blob hex of the store at sfd. */
json_t *img_load_blob_json(int sfd, const char *hex, struct msb_error *err, const char *what);
/* Whether media type m is an OCI index or a docker manifest list. */
bool img_is_index_media(const char *m);
/* From an index, the linux/amd64 manifest's descriptor (borrowed); NULL
 * with err listing the platforms there are. */
json_t *img_index_pick_platform(json_t *index, struct msb_error *err);

/* ---- rootfs.c: unpacked roots ---- */
/* Unpack layers into rootfs/<mhex> unless it is there (via tmp/, renamed
 * into place). */
int img_unpack_rootfs(struct msb_ctx *ctx, struct img_store *s, const char *mhex, json_t *layers,
                      struct msb_error *err);
/* Is a running sandbox, or a named one, using the root rootfs? */
bool img_rootfs_in_use(struct msb_ctx *ctx, const char *rootfs);
/* Does a named sandbox (running or not) sit on rootfs?  *who (if not
 * NULL) gets its name. */
bool img_sandbox_uses_rootfs(struct msb_ctx *ctx, const char *rootfs, char **who);

/* ---- trust.c: where registry traffic and credentials may go ---- */
/* Where a URL goes: its scheme, host and port (the default one when none is
 * written) and the authority as written.  false for anything but
 * http(s)://host[:port] — userinfo included, which msb never writes and
 * which would only hide the real host from a quick look. */
struct origin {
        bool https;
        bool v6;
        unsigned port;
        char host[256];
        char authority[300];
};
/* url's origin into *o; false for anything but http(s)://host[:port]/... */
bool reg_url_origin(const char *url, struct origin *o);
/* Whether two URLs have one scheme, host and port. */
bool reg_same_origin(const char *u1, const char *u2);
/* The auths key for the credentials sent to base: the registry's own name
 * (domain) for its upstream, a mirror's host[:port] for a mirror; caller
 * frees. */
char *reg_credential_host(const char *base, const char *domain);
/* The docker config file: $DOCKER_CONFIG/config.json or
 * ~/.docker/config.json; NULL without either.  Caller frees. */
char *reg_docker_config_path(void);
/* base64 "user:pass" stored for host in the docker config, or NULL;
 * caller frees. */
char *reg_docker_credentials(const char *host);

/* ---- fetch.c: downloads ---- */
struct reg;
/* Download blob digest of size bytes into the store, verified; job (or
 * NULL) hears progress.  1 if the store had it, 0 fetched, -errno. */
struct fetch_job;
int img_store_fetch_blob(struct img_store *s, struct reg *g, const char *digest, json_int_t size,
                         struct fetch_job *job, struct msb_error *err);
/* Fetch a manifest's layers in parallel, reporting progress to ctx's
 * progress function; the first failure is returned. */
int img_fetch_layers(struct msb_ctx *ctx, struct img_store *s, struct reg *g, json_t *layers, const char *name,
                     struct msb_error *err);
