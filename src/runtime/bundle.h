/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the parts of config.json's mapping share (bundle.c and its
 * sections in bundle-process.c, bundle-mounts.c, bundle-linux.c and
 * bundle-resources.c).  Each returns 0, or a negative errno after
 * rt_error() named the field (-EOPNOTSUPP for a refusal).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "runtime.h"

/* ---- bundle.c: shared helpers ---- */

/* "config.json: FIELD: WHY" to stderr; -EOPNOTSUPP */
int refuse(const char *field, const char *why);
/* A refusal whose text names its field itself */
int refuse_why(const char *why);
/* o[k] when a string, else NULL */
const char *jstr(json_t *o, const char *k);
/* A JSON object from a file of at most CONFIG_MAX bytes (what: a label
 * for the path in the error, or "") */
int load_json(const char *path, const char *what, json_t **ret);
/* msb_run_opts setters of the library's OCI pieces, a refusal naming the
 * field when the library refuses */
int opts_root(struct msb_run_opts *o, const char *root, bool readonly);
int opts_ids(struct msb_run_opts *o, unsigned uid, unsigned gid, const unsigned *groups, size_t n);
int opts_rlimit(struct msb_run_opts *o, int res, uint64_t soft, uint64_t hard);
int opts_kernel_mount(struct msb_run_opts *o, const char *field, const char *type, const char *dest,
                      const char *options);

/* ---- bundle-process.c ---- */

/* An array of strings (field names it in errors); NULL for none */
int parse_strv(json_t *a, const char *field, char ***ret);
/* process.user: the uid, gid, additional gids and the name to log */
int parse_user(json_t *u, char **ret_user, unsigned *ret_uid, unsigned *ret_gid, unsigned **ret_groups,
               size_t *ret_n);
/* process.consoleSize, or the defaults */
void console_size(json_t *p, unsigned *rows, unsigned *cols);
/* config.json's process */
int map_process(struct rt_bundle *b, json_t *p);

/* ---- bundle-mounts.c ---- */

/* config.json's mounts */
int map_mounts(struct rt_bundle *b, json_t *a);
/* With root.readonly, the mount points of the bundle's mounts outside the
 * guest kernel's own trees (/proc, /sys, /dev), made in the rootfs root */
int make_mountpoints(const struct rt_bundle *b, const char *root);

/* ---- bundle-linux.c ---- */

/* config.json's linux section, its resources by map_resources */
int map_linux(struct rt_bundle *b, json_t *l, json_t *annotations);
/* linux.resources.devices[idx]: refused when it allows something beyond
 * the standard character devices (a host device) */
int check_device_rule(json_t *d, size_t idx);

/* ---- bundle-resources.c ---- */

/* linux.resources and the size annotations: the VM's size, the cgroup */
int map_resources(struct rt_bundle *b, json_t *res, json_t *annotations);
