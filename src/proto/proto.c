/* SPDX-License-Identifier: Apache-2.0 */
/* The guest protocol's encoders and its decoder (proto.h), untrusted input both ways. */
#define _GNU_SOURCE
#include "proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Local allocation helpers: this file is linked into agentd, the host and the
 * fuzzer, so it depends on nothing but libc. */
static void *p_realloc(void *p, size_t n)
{
        p = realloc(p, n ? n : 1);
        if (!p)
                abort();
        return p;
}

/* ---------- output ---------- */

void msb_buf_free(struct msb_buf *b)
{
        free(b->data);
        memset(b, 0, sizeof(*b));
}

void msb_buf_consume(struct msb_buf *b, size_t n)
{
        if (n > b->len)
                n = b->len;
        b->off += n;
        b->len -= n;
        if (b->len == 0)
                b->off = 0;
}

void msb_buf_append(struct msb_buf *b, const void *p, size_t n)
{
        if (n == 0)
                return;
        if (b->off > 0 && b->off + b->len + n > b->cap) {
                memmove(b->data, b->data + b->off, b->len);
                b->off = 0;
        }
        if (b->off + b->len + n > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                while (cap < b->off + b->len + n)
                        cap *= 2;
                b->data = p_realloc(b->data, cap);
                b->cap = cap;
        }
        memcpy(b->data + b->off + b->len, p, n);
        b->len += n;
}

static void put_u32(struct msb_buf *b, uint32_t v)
{
        uint8_t x[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff};
        msb_buf_append(b, x, 4);
}

static void put_u64(struct msb_buf *b, uint64_t v)
{
        put_u32(b, (uint32_t)v);
        put_u32(b, (uint32_t)(v >> 32));
}

static void put_u16(struct msb_buf *b, uint16_t v)
{
        uint8_t x[2] = {v & 0xff, (v >> 8) & 0xff};
        msb_buf_append(b, x, 2);
}

static void put_str(struct msb_buf *b, const char *s)
{
        size_t n = s ? strlen(s) : 0;
        put_u32(b, (uint32_t)n);
        msb_buf_append(b, s ? s : "", n);
}

/* Frames are built in place: reserve the header, append the payload, then
 * patch the length.  If the payload turns out too large the frame is rolled
 * back so the queue never holds a frame the peer would reject. */
static size_t frame_begin(struct msb_buf *b, uint16_t type)
{
        size_t start = b->len;
        put_u32(b, 0);
        put_u16(b, type);
        put_u16(b, 0);
        return start;
}

static int frame_end(struct msb_buf *b, size_t start)
{
        size_t plen = b->len - start - MSB_PROTO_HDR_SIZE;
        if (plen > MSB_PROTO_MAX_PAYLOAD) {
                b->len = start;
                return -E2BIG;
        }
        uint8_t *h = b->data + b->off + start;
        h[0] = plen & 0xff;
        h[1] = (plen >> 8) & 0xff;
        h[2] = (plen >> 16) & 0xff;
        h[3] = (plen >> 24) & 0xff;
        return 0;
}

static bool str_ok(const char *s)
{
        return !s || strlen(s) <= MSB_PROTO_MAX_STR;
}

int msb_enc_hello(struct msb_buf *out, uint32_t version, const char *peer)
{
        if (!str_ok(peer))
                return -E2BIG;
        size_t st = frame_begin(out, MSB_MSG_HELLO);
        put_u32(out, version);
        put_str(out, peer);
        return frame_end(out, st);
}

static bool strv_ok(char *const *v, uint32_t n)
{
        for (uint32_t i = 0; i < n; i++)
                if (!str_ok(v[i]))
                        return false;
        return true;
}

/* A root step (MSB_MOUNT_STEP) is one kind alone, with nothing of a
 * mount's; a sysctl's path is under /proc/sys and climbs nowhere. */
static bool mount_step_ok(const struct msb_mount_spec *m)
{
        uint32_t step = m->flags & MSB_MOUNT_STEP;
        if (!step)
                return true;
        if ((step & (step - 1)) || (m->flags & ~step) || !m->sub || m->sub[0] || !m->tag || !m->path)
                return false;
        if (step != MSB_MOUNT_SYSCTL)
                return m->tag[0] == 0;
        return !strncmp(m->path, "/proc/sys/", 10) && m->path[10] && !strstr(m->path, "/.") &&
               !strstr(m->path, "//") && !strchr(m->tag, '\n');
}

bool msb_net_spec_ok(const struct msb_net_spec *n)
{
        return n->prefix4 >= 1 && n->prefix4 <= 32 && n->prefix6 <= 128 && n->mtu >= 68 && n->mtu <= 65520 &&
               (n->prefix6 == 0 || n->mtu >= 1280);
}

int msb_enc_setup(struct msb_buf *out, const struct msb_setup_msg *su)
{
        if (su->nmounts > MSB_PROTO_MAX_MOUNTS || !str_ok(su->rootfs_tag) || !str_ok(su->hostname))
                return -E2BIG;
        if ((su->flags & MSB_SETUP_NET) && !msb_net_spec_ok(&su->net))
                return -EINVAL;
        for (uint32_t i = 0; i < su->nmounts; i++)
                if (!str_ok(su->mounts[i].tag) || !str_ok(su->mounts[i].sub) || !str_ok(su->mounts[i].path))
                        return -E2BIG;
                else if (!mount_step_ok(&su->mounts[i]))
                        return -EINVAL;
        size_t st = frame_begin(out, MSB_MSG_SETUP);
        put_u32(out, su->flags);
        put_str(out, su->rootfs_tag);
        put_str(out, su->hostname);
        put_u32(out, su->nmounts);
        for (uint32_t i = 0; i < su->nmounts; i++) {
                put_str(out, su->mounts[i].tag);
                put_str(out, su->mounts[i].sub);
                put_str(out, su->mounts[i].path);
                put_u32(out, su->mounts[i].flags);
        }
        if (su->flags & MSB_SETUP_NET) {
                const struct msb_net_spec *n = &su->net;
                msb_buf_append(out, n->addr4, 4);
                msb_buf_append(out, n->gw4, 4);
                put_u32(out, n->prefix4);
                msb_buf_append(out, n->addr6, 16);
                msb_buf_append(out, n->gw6, 16);
                put_u32(out, n->prefix6);
                put_u32(out, n->mtu);
        }
        return frame_end(out, st);
}

int msb_enc_exec(struct msb_buf *out, const struct msb_exec_msg *ex)
{
        /* what the decoder would refuse never goes out */
        bool tty = ex->flags & MSB_EXEC_TTY;
        if (ex->id == 0 || (ex->flags & ~MSB_EXEC_KNOWN_FLAGS) ||
            (tty ? (ex->rows < 1 || ex->rows > 65535 || ex->cols < 1 || ex->cols > 65535) : (ex->rows || ex->cols)))
                return -EINVAL;
        if (ex->argc < 1 || ex->argc > MSB_PROTO_MAX_ARGS || ex->envc > MSB_PROTO_MAX_ENV)
                return -E2BIG;
        if (!str_ok(ex->workdir) || !str_ok(ex->user) || !strv_ok(ex->argv, ex->argc) ||
            !strv_ok(ex->env, ex->envc))
                return -E2BIG;
        if (ex->nrlimits > MSB_PROTO_MAX_RLIMITS)
                return -E2BIG;
        for (uint32_t i = 0; i < ex->nrlimits; i++)
                if (ex->rlimits[i].resource >= MSB_PROTO_RLIMIT_NR || ex->rlimits[i].soft > ex->rlimits[i].hard)
                        return -EINVAL;
        if (ex->nseccomp > MSB_PROTO_MAX_SECCOMP || (ex->nseccomp && (!(ex->flags & MSB_EXEC_CONFINE) || !ex->seccomp)))
                return -E2BIG;
        if (ex->ngroups > MSB_PROTO_MAX_GROUPS || (ex->home && !str_ok(ex->home)) ||
            (ex->exec_path && !str_ok(ex->exec_path)) || ex->nprefetch > MSB_PROTO_MAX_PREFETCH ||
            !strv_ok(ex->prefetch, ex->nprefetch))
                return -E2BIG;

        size_t st = frame_begin(out, MSB_MSG_EXEC);
        put_u32(out, ex->id);
        put_u32(out, ex->flags);
        put_str(out, ex->workdir);
        put_str(out, ex->user);
        put_u32(out, ex->argc);
        for (uint32_t i = 0; i < ex->argc; i++)
                put_str(out, ex->argv[i]);
        put_u32(out, ex->envc);
        for (uint32_t i = 0; i < ex->envc; i++)
                put_str(out, ex->env[i]);
        put_u32(out, ex->uid);
        put_u32(out, ex->gid);
        put_u32(out, ex->ngroups);
        for (uint32_t i = 0; i < ex->ngroups; i++)
                put_u32(out, ex->groups[i]);
        put_str(out, ex->home ? ex->home : "");
        put_str(out, ex->exec_path ? ex->exec_path : "");
        put_u32(out, ex->nprefetch);
        for (uint32_t i = 0; i < ex->nprefetch; i++)
                put_str(out, ex->prefetch[i]);
        put_u32(out, ex->rows);
        put_u32(out, ex->cols);
        put_u32(out, ex->nrlimits);
        for (uint32_t i = 0; i < ex->nrlimits; i++) {
                put_u32(out, ex->rlimits[i].resource);
                put_u64(out, ex->rlimits[i].soft);
                put_u64(out, ex->rlimits[i].hard);
        }
        if (ex->flags & MSB_EXEC_CONFINE) {
                for (int i = 0; i < MSB_CAP_SETS; i++)
                        put_u64(out, ex->caps[i]);
                put_u32(out, ex->nseccomp);
                msb_buf_append(out, ex->seccomp, (size_t)ex->nseccomp * 8);
        }
        return frame_end(out, st);
}

int msb_enc_data(struct msb_buf *out, uint16_t type, uint32_t id, const void *data, size_t len)
{
        if (len > MSB_PROTO_MAX_PAYLOAD - 4)
                return -E2BIG;
        size_t st = frame_begin(out, type);
        put_u32(out, id);
        msb_buf_append(out, data, len);
        return frame_end(out, st);
}

int msb_enc_empty(struct msb_buf *out, uint16_t type)
{
        size_t st = frame_begin(out, type);
        return frame_end(out, st);
}

int msb_enc_id(struct msb_buf *out, uint16_t type, uint32_t id)
{
        size_t st = frame_begin(out, type);
        put_u32(out, id);
        return frame_end(out, st);
}

int msb_enc_u32(struct msb_buf *out, uint16_t type, uint32_t id, uint32_t v)
{
        size_t st = frame_begin(out, type);
        put_u32(out, id);
        put_u32(out, v);
        return frame_end(out, st);
}

int msb_enc_resize(struct msb_buf *out, uint32_t id, uint32_t rows, uint32_t cols)
{
        size_t st = frame_begin(out, MSB_MSG_RESIZE);
        put_u32(out, id);
        put_u32(out, rows);
        put_u32(out, cols);
        return frame_end(out, st);
}

int msb_enc_exit(struct msb_buf *out, uint32_t id, uint32_t kind, uint32_t value)
{
        size_t st = frame_begin(out, MSB_MSG_EXIT);
        put_u32(out, id);
        put_u32(out, kind);
        put_u32(out, value);
        return frame_end(out, st);
}

int msb_enc_error(struct msb_buf *out, uint32_t id, const char *step, int32_t err, const char *message)
{
        if (!str_ok(step) || !str_ok(message))
                return -E2BIG;
        size_t st = frame_begin(out, MSB_MSG_ERROR);
        put_u32(out, id);
        put_str(out, step);
        put_u32(out, (uint32_t)err);
        put_str(out, message);
        return frame_end(out, st);
}

static bool exit_ok(uint32_t kind, uint32_t value);

int msb_enc_proc_info(struct msb_buf *out, uint32_t id, const struct msb_proc_info_msg *pi)
{
        bool exited = pi->flags & MSB_PROC_EXITED;
        if (id == 0 || pi->pid > (1u << 22) || (pi->flags & ~MSB_PROC_KNOWN_FLAGS) ||
            (exited ? !exit_ok(pi->exit_kind, pi->exit_value) : (pi->exit_kind || pi->exit_value)))
                return -EINVAL;
        if (pi->argc > MSB_PROTO_MAX_ARGS || !strv_ok(pi->argv, pi->argc))
                return -E2BIG;
        size_t st = frame_begin(out, MSB_MSG_PROC_INFO);
        put_u32(out, id);
        put_u32(out, pi->pid);
        put_u32(out, pi->flags);
        put_u32(out, pi->exit_kind);
        put_u32(out, pi->exit_value);
        put_u64(out, pi->started_ms);
        put_u64(out, pi->dropped);
        put_u32(out, pi->argc);
        for (uint32_t i = 0; i < pi->argc; i++)
                put_str(out, pi->argv[i]);
        return frame_end(out, st);
}

/* ---------- input ---------- */

/* Bounds-checked cursor over an untrusted payload.  Any overrun sets bad and
 * every later read returns zero/NULL, so decoders check once at the end. */
struct cursor {
        const uint8_t *p; /* untrusted */
        size_t left;
        bool bad;
};

static uint32_t get_u32(struct cursor *c)
{
        if (c->bad || c->left < 4) {
                c->bad = true;
                return 0;
        }
        uint32_t v = (uint32_t)c->p[0] | (uint32_t)c->p[1] << 8 | (uint32_t)c->p[2] << 16 | (uint32_t)c->p[3] << 24;
        c->p += 4;
        c->left -= 4;
        return v;
}

static uint64_t get_u64(struct cursor *c)
{
        uint64_t lo = get_u32(c);
        return lo | (uint64_t)get_u32(c) << 32;
}

static void get_bytes(struct cursor *c, uint8_t *out, size_t n)
{
        if (c->bad || c->left < n) {
                c->bad = true;
                memset(out, 0, n);
                return;
        }
        memcpy(out, c->p, n);
        c->p += n;
        c->left -= n;
}

static char *get_str(struct cursor *c)
{
        uint32_t n = get_u32(c);
        if (c->bad || n > MSB_PROTO_MAX_STR || n > c->left || memchr(c->p, 0, n)) {
                c->bad = true;
                return NULL;
        }
        char *s = p_realloc(NULL, (size_t)n + 1);
        memcpy(s, c->p, n);
        s[n] = '\0';
        c->p += n;
        c->left -= n;
        return s;
}

static void strv_free_n(char **v, uint32_t n)
{
        if (!v)
                return;
        for (uint32_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* Reads count strings; count is checked against limit and against what the
 * remaining bytes could possibly hold (4 bytes per string minimum), so a
 * hostile count cannot make us allocate a huge array. */
static char **get_strv(struct cursor *c, uint32_t *ret_n, uint32_t limit)
{
        uint32_t n = get_u32(c);
        if (c->bad || n > limit || (size_t)n > c->left / 4) {
                c->bad = true;
                return NULL;
        }
        char **v = calloc((size_t)n + 1, sizeof(char *));
        if (!v)
                abort();
        for (uint32_t i = 0; i < n; i++) {
                v[i] = get_str(c);
                if (c->bad) {
                        strv_free_n(v, i);
                        return NULL;
                }
        }
        *ret_n = n;
        return v;
}

int msb_frame_header(const uint8_t hdr[MSB_PROTO_HDR_SIZE], uint16_t *ret_type, uint32_t *ret_len)
{
        uint32_t len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
        uint16_t type = (uint16_t)(hdr[4] | hdr[5] << 8);
        uint16_t rsv = (uint16_t)(hdr[6] | hdr[7] << 8);
        if (type < 1 || type > MSB_MSG_TYPE_MAX || rsv != 0 || len > MSB_PROTO_MAX_PAYLOAD)
                return -EPROTO;
        *ret_type = type;
        *ret_len = len;
        return 0;
}

static void mounts_free(struct msb_mount_spec *m, uint32_t n)
{
        for (uint32_t i = 0; m && i < n; i++) {
                free(m[i].tag);
                free(m[i].sub);
                free(m[i].path);
        }
        free(m);
}

void msb_msg_free(struct msb_msg *m)
{
        switch (m->type) {
        case MSB_MSG_HELLO:
                free(m->u.hello.peer);
                break;
        case MSB_MSG_SETUP:
                free(m->u.setup.rootfs_tag);
                free(m->u.setup.hostname);
                mounts_free(m->u.setup.mounts, m->u.setup.nmounts);
                break;
        case MSB_MSG_EXEC: {
                struct msb_exec_msg *r = &m->u.exec;
                free(r->workdir);
                free(r->user);
                free(r->home);
                free(r->exec_path);
                free(r->seccomp);
                strv_free_n(r->prefetch, r->nprefetch);
                strv_free_n(r->argv, r->argc);
                strv_free_n(r->env, r->envc);
                break;
        }
        case MSB_MSG_ERROR:
                free(m->u.error.step);
                free(m->u.error.message);
                break;
        case MSB_MSG_PROC_INFO:
                strv_free_n(m->u.proc_info.argv, m->u.proc_info.argc);
                break;
        default:
                break;
        }
        memset(m, 0, sizeof(*m));
}

static int decode_setup(struct cursor *c, struct msb_setup_msg *r)
{
        r->flags = get_u32(c);
        if (r->flags & ~MSB_SETUP_KNOWN_FLAGS)
                c->bad = true;
        r->rootfs_tag = get_str(c);
        r->hostname = get_str(c);
        uint32_t n = get_u32(c);
        /* each mount takes at least 16 bytes */
        if (c->bad || n > MSB_PROTO_MAX_MOUNTS || (size_t)n > c->left / 16) {
                c->bad = true;
                return -EBADMSG;
        }
        r->mounts = calloc(n ? n : 1, sizeof(*r->mounts));
        if (!r->mounts)
                abort();
        for (uint32_t i = 0; i < n && !c->bad; i++) {
                r->mounts[i].tag = get_str(c);
                r->mounts[i].sub = get_str(c);
                r->mounts[i].path = get_str(c);
                r->mounts[i].flags = get_u32(c);
                r->nmounts = i + 1;
                if (r->mounts[i].flags & ~MSB_MOUNT_KNOWN_FLAGS)
                        c->bad = true;
                /* the guest mounts <share>/<sub>: one component, never a way up */
                const char *sub = r->mounts[i].sub;
                if (sub && (strchr(sub, '/') || !strcmp(sub, ".") || !strcmp(sub, "..")))
                        c->bad = true;
                if ((r->mounts[i].flags & MSB_MOUNT_KERNFS) &&
                    ((r->mounts[i].flags & MSB_MOUNT_FILE) || !sub ||
                     (strcmp(sub, "tmpfs") && strcmp(sub, "mqueue") && strcmp(sub, "cgroup2"))))
                        c->bad = true;
                if (!mount_step_ok(&r->mounts[i]))
                        c->bad = true;
        }
        if (r->flags & MSB_SETUP_NET) {
                struct msb_net_spec *ns = &r->net;
                get_bytes(c, ns->addr4, 4);
                get_bytes(c, ns->gw4, 4);
                ns->prefix4 = get_u32(c);
                get_bytes(c, ns->addr6, 16);
                get_bytes(c, ns->gw6, 16);
                ns->prefix6 = get_u32(c);
                ns->mtu = get_u32(c);
                if (!msb_net_spec_ok(ns))
                        c->bad = true;
        }
        return c->bad ? -EBADMSG : 0;
}

static int decode_exec(struct cursor *c, struct msb_exec_msg *r)
{
        r->id = get_u32(c);
        r->flags = get_u32(c);
        if (r->id == 0 || (r->flags & ~MSB_EXEC_KNOWN_FLAGS))
                c->bad = true;
        if ((r->flags & MSB_EXEC_INTERNAL) ? (r->flags & (MSB_EXEC_MAIN | MSB_EXEC_TTY))
                                           : (r->flags & MSB_EXEC_AS_USER))
                c->bad = true;
        r->workdir = get_str(c);
        r->user = get_str(c);
        r->argv = get_strv(c, &r->argc, MSB_PROTO_MAX_ARGS);
        if (!c->bad && r->argc < 1)
                c->bad = true;
        r->env = get_strv(c, &r->envc, MSB_PROTO_MAX_ENV);
        for (uint32_t i = 0; i < r->envc && !c->bad; i++)
                if (!strchr(r->env[i], '=') || r->env[i][0] == '=')
                        c->bad = true;
        r->uid = get_u32(c);
        r->gid = get_u32(c);
        r->ngroups = get_u32(c);
        if (r->ngroups > MSB_PROTO_MAX_GROUPS) {
                r->ngroups = 0;
                c->bad = true;
        }
        for (uint32_t i = 0; i < r->ngroups; i++)
                r->groups[i] = get_u32(c);
        r->home = get_str(c);
        r->exec_path = get_str(c);
        if (!c->bad && (r->flags & MSB_EXEC_IDS) &&
            (r->ngroups < 1 || r->groups[0] != r->gid || r->home[0] != '/'))
                c->bad = true;
        if (!c->bad && r->exec_path[0] && r->exec_path[0] != '/')
                c->bad = true;
        r->prefetch = get_strv(c, &r->nprefetch, MSB_PROTO_MAX_PREFETCH);
        for (uint32_t i = 0; i < r->nprefetch && !c->bad; i++)
                if (r->prefetch[i][0] != '/')
                        c->bad = true;
        r->rows = get_u32(c);
        r->cols = get_u32(c);
        bool tty = r->flags & MSB_EXEC_TTY;
        if (tty ? (r->rows < 1 || r->rows > 65535 || r->cols < 1 || r->cols > 65535) : (r->rows || r->cols))
                c->bad = true;
        r->nrlimits = get_u32(c);
        if (r->nrlimits > MSB_PROTO_MAX_RLIMITS) {
                r->nrlimits = 0;
                c->bad = true;
        }
        for (uint32_t i = 0; i < r->nrlimits; i++) {
                r->rlimits[i].resource = get_u32(c);
                r->rlimits[i].soft = get_u64(c);
                r->rlimits[i].hard = get_u64(c);
                if (r->rlimits[i].resource >= MSB_PROTO_RLIMIT_NR || r->rlimits[i].soft > r->rlimits[i].hard)
                        c->bad = true;
        }
        if (r->flags & MSB_EXEC_CONFINE) {
                for (int i = 0; i < MSB_CAP_SETS; i++)
                        r->caps[i] = get_u64(c);
                r->nseccomp = get_u32(c);
                if (r->nseccomp > MSB_PROTO_MAX_SECCOMP || (size_t)r->nseccomp * 8 > c->left) {
                        r->nseccomp = 0;
                        c->bad = true;
                }
                if (r->nseccomp) {
                        r->seccomp = p_realloc(NULL, (size_t)r->nseccomp * 8);
                        get_bytes(c, r->seccomp, (size_t)r->nseccomp * 8);
                }
        }
        return c->bad ? -EBADMSG : 0;
}

static bool signo_ok(uint32_t s)
{
        return s >= 1 && s <= 64;
}

/* EXIT's kind and value */
static bool exit_ok(uint32_t kind, uint32_t value)
{
        return kind == MSB_EXIT_CODE ? value <= 255 : kind == MSB_EXIT_SIGNAL && signo_ok(value);
}

static void decode_proc_info(struct cursor *c, struct msb_proc_info_msg *r)
{
        r->pid = get_u32(c);
        r->flags = get_u32(c);
        r->exit_kind = get_u32(c);
        r->exit_value = get_u32(c);
        if (r->pid > (1u << 22) || (r->flags & ~MSB_PROC_KNOWN_FLAGS) ||
            ((r->flags & MSB_PROC_EXITED) ? !exit_ok(r->exit_kind, r->exit_value) : (r->exit_kind || r->exit_value)))
                c->bad = true;
        r->started_ms = get_u64(c);
        r->dropped = get_u64(c);
        r->argv = get_strv(c, &r->argc, MSB_PROTO_MAX_ARGS);
}

/* The types whose payload starts with a process id; it must be nonzero. */
static bool has_id(uint16_t type)
{
        return (type >= MSB_MSG_STDIN && type <= MSB_MSG_STOP && type != MSB_MSG_SHUTDOWN) ||
               type == MSB_MSG_PROC_INFO;
}

int msb_msg_decode(uint16_t type, const uint8_t *payload, size_t len, struct msb_msg *out)
{
        struct cursor c = {.p = payload, .left = len};
        memset(out, 0, sizeof(*out));
        out->type = type;
        if (has_id(type)) {
                out->id = get_u32(&c);
                /* ERROR may name the sandbox itself (0) */
                if (out->id == 0 && type != MSB_MSG_ERROR)
                        c.bad = true;
        }
        switch (type) {
        case MSB_MSG_HELLO:
                out->u.hello.version = get_u32(&c);
                out->u.hello.peer = get_str(&c);
                break;
        case MSB_MSG_SETUP:
                decode_setup(&c, &out->u.setup);
                break;
        case MSB_MSG_EXEC:
                decode_exec(&c, &out->u.exec);
                out->id = out->u.exec.id;
                break;
        case MSB_MSG_STDIN:
        case MSB_MSG_STDOUT:
        case MSB_MSG_STDERR:
                out->u.data.data = c.p;
                out->u.data.len = c.left;
                c.left = 0;
                break;
        case MSB_MSG_STDIN_EOF:
        case MSB_MSG_SHUTDOWN:
        case MSB_MSG_WAIT:
        case MSB_MSG_PROCS:
                break;
        case MSB_MSG_PROC_INFO:
                decode_proc_info(&c, &out->u.proc_info);
                break;
        case MSB_MSG_SIGNAL:
                out->u.signo = get_u32(&c);
                if (!signo_ok(out->u.signo))
                        c.bad = true;
                break;
        case MSB_MSG_RESIZE:
                out->u.resize.rows = get_u32(&c);
                out->u.resize.cols = get_u32(&c);
                if (out->u.resize.rows < 1 || out->u.resize.rows > 65535 || out->u.resize.cols < 1 ||
                    out->u.resize.cols > 65535)
                        c.bad = true;
                break;
        case MSB_MSG_ACK:
                out->u.ack = get_u32(&c);
                if (out->u.ack == 0 || out->u.ack > MSB_PROTO_WINDOW)
                        c.bad = true;
                break;
        case MSB_MSG_STARTED:
                out->u.pid = get_u32(&c);
                if (out->u.pid == 0 || out->u.pid > (1u << 22))
                        c.bad = true;
                break;
        case MSB_MSG_ATTACH:
                out->u.flags = get_u32(&c);
                if (out->u.flags & ~MSB_ATTACH_KNOWN_FLAGS)
                        c.bad = true;
                break;
        case MSB_MSG_STOP:
                out->u.grace_ms = get_u32(&c);
                break;
        case MSB_MSG_EXIT:
                out->u.exit.kind = get_u32(&c);
                out->u.exit.value = get_u32(&c);
                if (!exit_ok(out->u.exit.kind, out->u.exit.value))
                        c.bad = true;
                break;
        case MSB_MSG_ERROR:
                out->u.error.step = get_str(&c);
                out->u.error.err = (int32_t)get_u32(&c);
                out->u.error.message = get_str(&c);
                break;
        default:
                c.bad = true;
        }
        /* Trailing bytes are a violation too: they mean the peer and we
         * disagree about the layout. */
        if (c.bad || c.left != 0) {
                msb_msg_free(out);
                return -EBADMSG;
        }
        return 0;
}

void msb_reader_free(struct msb_reader *r)
{
        free(r->buf);
        memset(r, 0, sizeof(*r));
}

void msb_reader_feed(struct msb_reader *r, const void *data, size_t len)
{
        if (len == 0)
                return;
        if (r->consumed) {
                memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
                r->len -= r->consumed;
                r->consumed = 0;
        }
        if (r->len + len > r->cap) {
                size_t cap = r->cap ? r->cap : 65536;
                while (cap < r->len + len)
                        cap *= 2;
                r->buf = p_realloc(r->buf, cap);
                r->cap = cap;
        }
        memcpy(r->buf + r->len, data, len);
        r->len += len;
}

int msb_reader_next(struct msb_reader *r, struct msb_msg *out)
{
        /* frames are taken in place: no copying per frame (a peer sending
         * many tiny ones costs one compaction per feed, not one per frame) */
        size_t avail = r->len - r->consumed;
        if (avail < MSB_PROTO_HDR_SIZE)
                return 0;
        const uint8_t *f = r->buf + r->consumed;
        uint16_t type;
        uint32_t plen;
        int q = msb_frame_header(f, &type, &plen);
        if (q < 0)
                return q;
        if (avail - MSB_PROTO_HDR_SIZE < plen)
                return 0;
        q = msb_msg_decode(type, f + MSB_PROTO_HDR_SIZE, plen, out);
        if (q < 0)
                return q;
        r->consumed += MSB_PROTO_HDR_SIZE + plen;
        return 1;
}

const char *msb_msg_type_name(uint16_t type)
{
        static const char *const names[] = {
                [MSB_MSG_HELLO] = "HELLO",       [MSB_MSG_SETUP] = "SETUP",   [MSB_MSG_EXEC] = "EXEC",
                [MSB_MSG_STDIN] = "STDIN",       [MSB_MSG_STDIN_EOF] = "STDIN_EOF",
                [MSB_MSG_STDOUT] = "STDOUT",     [MSB_MSG_STDERR] = "STDERR", [MSB_MSG_SIGNAL] = "SIGNAL",
                [MSB_MSG_RESIZE] = "RESIZE",     [MSB_MSG_ACK] = "ACK",       [MSB_MSG_STARTED] = "STARTED",
                [MSB_MSG_EXIT] = "EXIT",         [MSB_MSG_ERROR] = "ERROR",   [MSB_MSG_SHUTDOWN] = "SHUTDOWN",
                [MSB_MSG_ATTACH] = "ATTACH",     [MSB_MSG_STOP] = "STOP",     [MSB_MSG_WAIT] = "WAIT",
                [MSB_MSG_PROCS] = "PROCS",       [MSB_MSG_PROC_INFO] = "PROC_INFO",
        };
        if (type < sizeof(names) / sizeof(names[0]) && names[type])
                return names[type];
        return "UNKNOWN";
}
