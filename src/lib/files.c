/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Files in a running sandbox by their guest path (msb_sandbox_file_*):
 * each call runs one of agentd's fs-* routines (src/agent/fsops.c) like an
 * exec, as the user asked for, so the guest resolves every path and checks
 * every permission as that user.  A thread relays the routine's streams
 * (the protocol's flow control, as msb cp's); the caller's thread takes
 * its records (proto/filerec.h, decoded with every bound checked: they are
 * the guest's bytes) or feeds its stdin.  Stopping early (a callback, the
 * cancel fd, a bad record) shuts the connection down, and the supervisor
 * ends the routine.  Its error comes back as "ERRNO text" on its stderr:
 * the guest's errno, exactly.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "proc.h"
#include "proto/filerec.h"

/* What is kept of a routine's stderr: its one-line error. */
#define ROUTINE_ERR_MAX 4096
#define INBUF (64u * 1024u)
#define USER_MAX 256

_Static_assert(MSB_FILE_PATH_MAX == FILEREC_MAX_PATH, "msb.h and filerec.h agree");
_Static_assert(MSB_FILE_LIST_MAX == FSOPS_MAX_ENTRIES, "msb.h and filerec.h agree");
_Static_assert(MSB_FILE_LIST_MAX_DEPTH == FSOPS_MAX_DEPTH, "msb.h and filerec.h agree");
_Static_assert(MSB_FILE_WATCH_MAX_DIRS == FSOPS_MAX_WATCHES, "msb.h and filerec.h agree");
_Static_assert(FILEREC_MAX + 4 < INBUF, "a whole record fits the buffer");

/* ---- the routine and its relay ---- */

struct fcall {
        struct msb_proc *p;
        int in_fd;  /* the relay reads the routine's stdin here, or -1 */
        int out_fd; /* the relay writes its stdout here, or -1 */
        char errbuf[ROUTINE_ERR_MAX];
        int status, r;
        struct msb_error err;
};

static void *relay_thread(void *arg)
{
        struct fcall *c = arg;
        c->r = sb_proc_relay_copy(c->p, c->in_fd, c->out_fd, c->errbuf, sizeof(c->errbuf), &c->status, &c->err);
        /* the caller's side sees the end */
        if (c->out_fd >= 0)
                close(c->out_fd);
        if (c->in_fd >= 0)
                close(c->in_fd);
        return NULL;
}

/* The routine's stdout as the caller's thread reads it. */
struct rd {
        int fd, cancel_fd;
        const char *name;
        uint8_t buf[INBUF];
        size_t off, len; /* bytes from off not taken yet */
};

/* More bytes: 1, 0 at the end, -ECANCELED, or -errno. */
static int rd_fill(struct rd *rd)
{
        if (rd->off) {
                memmove(rd->buf, rd->buf + rd->off, rd->len - rd->off);
                rd->len -= rd->off;
                rd->off = 0;
        }
        for (;;) {
                struct pollfd pf[2] = {{.fd = rd->fd, .events = POLLIN},
                                       {.fd = rd->cancel_fd > 0 ? rd->cancel_fd : -1, .events = POLLIN}};
                if (poll(pf, 2, -1) < 0 && errno != EINTR)
                        return -errno;
                if (pf[1].revents)
                        return -ECANCELED;
                if (!pf[0].revents)
                        continue;
                ssize_t n = read(rd->fd, rd->buf + rd->len, sizeof(rd->buf) - rd->len);
                if (n < 0 && errno == EINTR)
                        continue;
                return n < 0 ? -errno : n > 0 ? (rd->len += (size_t)n, 1) : 0;
        }
}

static int bad_record(struct rd *rd, struct msb_error *err)
{
        return msb_err(err, EIO, "sandbox '%s': the guest sent a malformed file record", rd->name);
}

/* The next record: 1 (valid until the next call), 0 at the end, < 0 with
 * err filled. */
static int rd_next(struct rd *rd, struct filerec *rec, struct msb_error *err)
{
        for (;;) {
                long k = filerec_decode(rd->buf + rd->off, rd->len - rd->off, rec);
                if (k > 0) {
                        rd->off += (size_t)k;
                        return 1;
                }
                if (k < 0)
                        return bad_record(rd, err);
                int r = rd_fill(rd);
                if (r == 0 && rd->off < rd->len)
                        return bad_record(rd, err); /* a record cut short */
                if (r == -ECANCELED)
                        return msb_err(err, ECANCELED, "sandbox '%s': cancelled", rd->name);
                if (r <= 0)
                        return r;
        }
}

/* What the caller's thread does with the routine's stdout: 0, > 0 to stop
 * (a callback's value), < 0 with err filled. */
typedef int consume_fn(struct rd *rd, void *arg, struct msb_error *err);

/* The guest's error line, "ERRNO text": its errno (1 to 4095) and text. */
static int routine_error(const char *name, const struct fcall *c, struct msb_error *err)
{
        char line[1024];
        snprintf(line, sizeof(line), "%.*s", (int)strcspn(c->errbuf, "\n"), c->errbuf);
        char *text;
        long e = strtol(line, &text, 10);
        if (c->status != 1 || text == line || *text != ' ' || e < 1 || e > 4095)
                return msb_err(err, EIO, "sandbox '%s': the file routine ended with status %d%s%s", name, c->status,
                               line[0] ? ": " : "", line);
        for (char *s = text + 1; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        *s = '?'; /* one line of text, whatever the guest sent */
        return msb_err(err, (int)e, "sandbox '%s': %s", name, text + 1);
}

static int check_user(const struct msb_file_opts *fo, struct msb_error *err)
{
        const char *u = fo ? fo->user : NULL;
        if (u && (strlen(u) > USER_MAX || strchr(u, '\n')))
                return msb_err(err, EINVAL, "user '%.64s': at most %d bytes, no newline", u, USER_MAX);
        return 0;
}

/* stdin of the routine from fd (its end: the routine's STDIN_EOF): 0, or
 * < 0 with err filled (the routine is then stopped, not ended). */
static int feed(int sock, int fd, int cancel_fd, const char *name, struct msb_error *err)
{
        _cleanup_free_ uint8_t *buf = xmalloc(INBUF);
        size_t off = 0, len = 0;
        fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
        for (;;) {
                /* the relay closes the other end when the routine has ended */
                struct pollfd pf[3] = {{.fd = len ? -1 : fd, .events = POLLIN},
                                       {.fd = sock, .events = len ? POLLOUT : 0},
                                       {.fd = cancel_fd > 0 ? cancel_fd : -1, .events = POLLIN}};
                if (poll(pf, 3, -1) < 0 && errno != EINTR)
                        return msb_err_errno(err, errno, "poll");
                if (pf[2].revents)
                        return msb_err(err, ECANCELED, "sandbox '%s': cancelled; the file is as it was", name);
                if (pf[1].revents & (POLLHUP | POLLERR))
                        return 0; /* its error says why */
                if (pf[0].revents) {
                        ssize_t n = read(fd, buf, INBUF);
                        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                                continue;
                        if (n < 0)
                                return msb_err_errno(err, errno, "sandbox '%s': reading what to write", name);
                        /* an end that comes with a cancel (a client gone mid-body) is no end */
                        struct pollfd cf = {.fd = cancel_fd > 0 ? cancel_fd : -1, .events = POLLIN};
                        if (n == 0 && poll(&cf, 1, 0) > 0)
                                return msb_err(err, ECANCELED, "sandbox '%s': cancelled; the file is as it was",
                                               name);
                        if (n == 0)
                                return 0;
                        off = 0;
                        len = (size_t)n;
                }
                if (pf[1].revents & POLLOUT) {
                        ssize_t w = send(sock, buf + off, len, MSG_NOSIGNAL);
                        if (w < 0 && errno == EPIPE)
                                return 0; /* the routine stopped reading: its error says why */
                        if (w < 0 && errno != EINTR && errno != EAGAIN)
                                return msb_err_errno(err, errno, "sandbox '%s'", name);
                        if (w > 0)
                                off += (size_t)w, len -= (size_t)w;
                }
        }
}

/* Run routine argv: feed_fd (>= 0) to its stdin, or its stdout to
 * consume.  0 when it ended well; else its error, or the caller's side's. */
static int fs_run(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, char **argv, int feed_fd,
                  consume_fn *consume, void *arg, struct msb_error *err)
{
        struct fcall *c = xcalloc(1, sizeof(*c));
        c->in_fd = c->out_fd = -1;
        c->status = -1;
        int cancel_fd = fo ? fo->cancel_fd : 0;
        int r = sb_exec_routine(ctx, name, argv, feed_fd >= 0, fo && fo->user ? fo->user : "", &c->p, err);
        int pair[2] = {-1, -1};
        if (r >= 0 && (feed_fd >= 0 ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair)
                                    : pipe2(pair, O_CLOEXEC)) < 0)
                r = msb_err_errno(err, errno, "sandbox '%s': cannot make a pipe", name);
        pthread_t th;
        if (r >= 0) {
                c->p->no_signals = true; /* a thread of ours: it takes no signal of the caller's */
                if (feed_fd >= 0)
                        c->in_fd = pair[0];
                else
                        c->out_fd = pair[1];
                if ((r = thread_start(&th, relay_thread, c)) < 0) {
                        close(pair[0]);
                        close(pair[1]);
                        r = msb_err(err, -r, "cannot start a thread");
                }
        }
        if (r < 0) {
                msb_proc_free(c->p);
                free(c);
                return r;
        }
        int mine = feed_fd >= 0 ? pair[1] : pair[0];
        struct rd *rd = feed_fd >= 0 ? NULL : xcalloc(1, sizeof(*rd));
        if (rd)
                *rd = (struct rd){.fd = mine, .cancel_fd = cancel_fd, .name = name};
        r = rd ? consume(rd, arg, err) : feed(mine, feed_fd, cancel_fd, name, err);
        close(mine); /* a routine fed: its stdin's end */
        if (r != 0)
                shutdown(c->p->fd, SHUT_RDWR); /* the relay ends; the supervisor stops the routine */
        pthread_join(th, NULL);
        if (r == 0 && c->r < 0) {
                if (err)
                        *err = c->err;
                r = c->r;
        } else if (r == 0 && c->status != 0)
                r = routine_error(name, c, err);
        msb_proc_free(c->p);
        free(rd);
        free(c);
        return r;
}

/* The checks every call makes: the user, and each path absolute. */
static int check_path(const char *path, struct msb_error *err)
{
        if (!path || !*path)
                return msb_err(err, EINVAL, "the path in the sandbox is empty");
        if (path[0] != '/')
                return msb_err(err, EINVAL, "'%.256s': a path in the sandbox must be absolute (start with /)", path);
        if (strlen(path) > MSB_FILE_PATH_MAX)
                return msb_err(err, ENAMETOOLONG, "'%.64s...': longer than %u bytes", path, MSB_FILE_PATH_MAX);
        return 0;
}

static int check_mode(unsigned mode, struct msb_error *err)
{
        return mode > 07777 ? msb_err(err, EINVAL, "mode %o: at most 07777", mode) : 0;
}

/* ---- stat and list ---- */

void msb_file_info_free(struct msb_file_info *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].path);
                free(v[i].name);
                free(v[i].link_target);
        }
        free(v);
}

/* A path's last component, trailing slashes aside ("/" for the root). */
static char *last_name(const char *p)
{
        size_t n = strlen(p);
        while (n > 1 && p[n - 1] == '/')
                n--;
        size_t s = n;
        while (s > 0 && p[s - 1] != '/')
                s--;
        return s == n ? xstrdup("/") : xasprintf("%.*s", (int)(n - s), p + s);
}

static void info_fill(struct msb_file_info *fi, const struct filerec *rec)
{
        *fi = (struct msb_file_info){
                .path = xstrdup(rec->path),
                .name = last_name(rec->path),
                .type = rec->type,
                .size = rec->size,
                .mode = rec->mode,
                .uid = rec->uid,
                .gid = rec->gid,
                .mtime_ns = rec->mtime_ns,
                .link_target = rec->link[0] ? xstrdup(rec->link) : NULL,
        };
}

struct infos {
        struct msb_file_info *v;
        size_t n, cap, max;
        bool cut;
};

/* INFO records (at most max), then perhaps a CUT, and nothing after. */
static int take_infos(struct rd *rd, void *arg, struct msb_error *err)
{
        struct infos *in = arg;
        struct filerec rec;
        int r;
        while ((r = rd_next(rd, &rec, err)) == 1) {
                if (in->cut || (rec.kind != FILEREC_INFO && rec.kind != FILEREC_CUT) ||
                    (rec.kind == FILEREC_INFO && in->n == in->max))
                        return bad_record(rd, err);
                if (rec.kind == FILEREC_CUT) {
                        in->cut = true;
                        continue;
                }
                if (in->n == in->cap)
                        in->v = xrealloc(in->v, (in->cap = in->cap ? 2 * in->cap : 16) * sizeof(*in->v));
                info_fill(&in->v[in->n++], &rec);
        }
        return r;
}

int msb_sandbox_file_stat(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *path,
                          struct msb_file_info **ret, struct msb_error *err)
{
        int r = check_user(fo, err);
        if (r < 0 || (r = check_path(path, err)) < 0)
                return r;
        char *argv[] = {"fs-stat", (char *)path, NULL};
        struct infos in = {.max = 1};
        r = fs_run(ctx, name, fo, argv, -1, take_infos, &in, err);
        if (r == 0 && (in.n != 1 || in.cut))
                r = msb_err(err, EIO, "sandbox '%s': the guest said nothing of '%s'", name, path);
        if (r < 0) {
                msb_file_info_free(in.v, in.n);
                return r;
        }
        *ret = in.v;
        return 0;
}

int msb_sandbox_file_list(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *path,
                          unsigned depth, size_t max_entries, struct msb_file_info **ret, size_t *ret_n,
                          bool *ret_truncated, struct msb_error *err)
{
        int r = check_user(fo, err);
        if (r < 0 || (r = check_path(path, err)) < 0)
                return r;
        if (depth < 1 || depth > MSB_FILE_LIST_MAX_DEPTH)
                return msb_err(err, EINVAL, "depth %u: 1 to %u", depth, MSB_FILE_LIST_MAX_DEPTH);
        if (max_entries > MSB_FILE_LIST_MAX)
                return msb_err(err, EINVAL, "at most %zu entries: 1 to %u", max_entries, MSB_FILE_LIST_MAX);
        struct infos in = {.max = max_entries ? max_entries : MSB_FILE_LIST_MAX};
        char d[16], m[24];
        snprintf(d, sizeof(d), "%u", depth);
        snprintf(m, sizeof(m), "%zu", in.max);
        char *argv[] = {"fs-list", (char *)path, d, m, NULL};
        r = fs_run(ctx, name, fo, argv, -1, take_infos, &in, err);
        if (r < 0) {
                msb_file_info_free(in.v, in.n);
                return r;
        }
        *ret = in.v;
        *ret_n = in.n;
        if (ret_truncated)
                *ret_truncated = in.cut;
        return 0;
}

/* ---- mkdir, remove, rename ---- */

/* A routine that says nothing on stdout. */
static int take_nothing(struct rd *rd, void *arg, struct msb_error *err)
{
        struct filerec rec;
        int r = rd_next(rd, &rec, err);
        return r == 1 ? bad_record(rd, err) : r;
}

int msb_sandbox_file_mkdir(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *path,
                           unsigned mode, bool parents, struct msb_error *err)
{
        int r = check_user(fo, err);
        if (r < 0 || (r = check_path(path, err)) < 0 || (r = check_mode(mode, err)) < 0)
                return r;
        char m[16];
        snprintf(m, sizeof(m), "%o", mode);
        char *argv[] = {"fs-mkdir", (char *)path, m, parents ? "p" : NULL, NULL};
        return fs_run(ctx, name, fo, argv, -1, take_nothing, NULL, err);
}

int msb_sandbox_file_remove(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *path,
                            bool recursive, struct msb_error *err)
{
        int r = check_user(fo, err);
        if (r < 0 || (r = check_path(path, err)) < 0)
                return r;
        char *argv[] = {"fs-remove", (char *)path, recursive ? "r" : NULL, NULL};
        return fs_run(ctx, name, fo, argv, -1, take_nothing, NULL, err);
}

int msb_sandbox_file_rename(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *from,
                            const char *to, struct msb_error *err)
{
        int r = check_user(fo, err);
        if (r < 0 || (r = check_path(from, err)) < 0 || (r = check_path(to, err)) < 0)
                return r;
        char *argv[] = {"fs-rename", (char *)from, (char *)to, NULL};
        return fs_run(ctx, name, fo, argv, -1, take_nothing, NULL, err);
}

/* ---- read and write ---- */

struct reading {
        int fd;
        uint64_t offset, length, size, sent;
};

/* n bytes to the caller's fd: 0, or < 0 with err filled (-EPIPE: its reader went away). */
static int give(struct rd *rd, struct reading *g, const uint8_t *p, size_t n, struct msb_error *err)
{
        uint64_t want = g->offset >= g->size ? 0 : g->size - g->offset < g->length ? g->size - g->offset : g->length;
        if (n > want - g->sent)
                return msb_err(err, EIO, "sandbox '%s': the guest sent more of the file than asked for", rd->name);
        sigset_t pipe_set, old;
        proc_block_signals(&pipe_set, &old, SIGPIPE, 0);
        int r = write_all(g->fd, p, n) < 0 ? -errno : 0;
        struct timespec zero = {0, 0};
        if (!sigismember(&old, SIGPIPE))
                while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {
                }
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                return msb_err_errno(err, -r, "sandbox '%s': writing the file out", rd->name);
        g->sent += n;
        return 0;
}

/* A SIZE record, then the bytes as they come. */
static int take_bytes(struct rd *rd, void *arg, struct msb_error *err)
{
        struct reading *g = arg;
        struct filerec rec;
        int r = rd_next(rd, &rec, err);
        if (r <= 0)
                return r;
        if (rec.kind != FILEREC_SIZE)
                return bad_record(rd, err);
        g->size = rec.size;
        for (;;) {
                if (rd->off < rd->len && (r = give(rd, g, rd->buf + rd->off, rd->len - rd->off, err)) < 0)
                        return r;
                rd->off = rd->len = 0;
                if ((r = rd_fill(rd)) == -ECANCELED)
                        return msb_err(err, ECANCELED, "sandbox '%s': cancelled", rd->name);
                if (r <= 0)
                        return r < 0 ? msb_err_errno(err, -r, "sandbox '%s'", rd->name) : 0;
        }
}

int msb_sandbox_file_read(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *path,
                          uint64_t offset, uint64_t length, int fd, uint64_t *ret_size, struct msb_error *err)
{
        int r = check_user(fo, err);
        if (r < 0 || (r = check_path(path, err)) < 0)
                return r;
        char o[24], l[24];
        snprintf(o, sizeof(o), "%llu", (unsigned long long)offset);
        snprintf(l, sizeof(l), "%llu", (unsigned long long)length);
        char *argv[] = {"fs-read", (char *)path, o, l, NULL};
        struct reading g = {.fd = fd, .offset = offset, .length = length, .size = UINT64_MAX};
        r = fs_run(ctx, name, fo, argv, -1, take_bytes, &g, err);
        if (r == 0 && g.size == UINT64_MAX)
                r = msb_err(err, EIO, "sandbox '%s': the guest did not say the size of '%s'", name, path);
        if (r == 0 && ret_size)
                *ret_size = g.size;
        return r;
}

int msb_sandbox_file_write(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *path,
                           int fd, unsigned mode, bool parents, struct msb_error *err)
{
        int r = check_user(fo, err);
        if (r < 0 || (r = check_path(path, err)) < 0 || (r = check_mode(mode, err)) < 0)
                return r;
        if (fd < 0)
                return msb_err(err, EBADF, "no fd to write from");
        char m[16];
        snprintf(m, sizeof(m), "%o", mode);
        char *argv[] = {"fs-write", (char *)path, m, parents ? "p" : NULL, NULL};
        return fs_run(ctx, name, fo, argv, fd, NULL, NULL, err);
}

/* ---- watch ---- */

struct watching {
        msb_file_event_fn *cb;
        void *ud;
        bool ready;
};

/* A "ready" EVENT first, then EVENTs. */
static int take_events(struct rd *rd, void *arg, struct msb_error *err)
{
        struct watching *w = arg;
        struct filerec rec;
        int r;
        while ((r = rd_next(rd, &rec, err)) == 1) {
                if (rec.kind != FILEREC_EVENT || w->ready == !strcmp(rec.op, "ready"))
                        return bad_record(rd, err);
                w->ready = true;
                struct msb_file_event ev = {.op = rec.op, .path = rec.path, .type = rec.type};
                int k = w->cb(&ev, w->ud);
                if (k != 0)
                        return k < 0 ? msb_err(err, -k, "stopped by the callback") : k;
        }
        return r;
}

int msb_sandbox_file_watch(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *path,
                           bool recursive, msb_file_event_fn *cb, void *userdata, struct msb_error *err)
{
        int r = check_user(fo, err);
        if (r < 0 || (r = check_path(path, err)) < 0)
                return r;
        char *argv[] = {"fs-watch", (char *)path, recursive ? "r" : NULL, NULL};
        struct watching w = {.cb = cb, .ud = userdata};
        r = fs_run(ctx, name, fo, argv, -1, take_events, &w, err);
        return r == -ECANCELED ? 0 : r;
}
