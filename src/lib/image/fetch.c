/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Downloading a pull's blobs from a registry into the store: verified
 * while they arrive, resumable (tmp/partial-<hex>), the layers up to
 * FETCH_THREADS at a time with progress for the caller's display.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "common/util.h"
#include "lib/ctx.h"
#include "lib/sha256.h"
#include "lib/image/image.h"

/* One blob to fetch, shared with the progress display. */
struct fetch_job {
        const char *digest;
        uint64_t size;
        uint64_t done;        /* bytes so far (atomic) */
        int state;            /* FETCH_* (atomic) */
        int r;
        struct msb_error err;
};
enum { FETCH_WAITING, FETCH_ACTIVE, FETCH_DONE, FETCH_FAILED, FETCH_HAD };

struct blob_sink {
        int fd;
        struct sha256 h;
        uint64_t got, max;
        const char *digest;
        struct fetch_job *job;
        struct msb_error *err;
};

static int blob_sink_status(void *arg, long status)
{
        struct blob_sink *b = arg;
        if (status == 200 && b->got > 0) {
                /* the registry ignored our range: start over */
                if (ftruncate(b->fd, 0) < 0)
                        return -errno;
                sha256_init(&b->h);
                b->got = 0;
                if (b->job)
                        __atomic_store_n(&b->job->done, 0, __ATOMIC_RELAXED);
        }
        return 0;
}

static int blob_sink_write(void *arg, const void *p, size_t n)
{
        struct blob_sink *b = arg;
        if (b->got + n > b->max)
                return msb_err(b->err, EBADMSG, "blob %s: the registry sent more than the %llu bytes its descriptor says",
                               b->digest, (unsigned long long)b->max);
        sha256_update(&b->h, p, n);
        const uint8_t *q = p;
        size_t left = n;
        off_t at = (off_t)b->got;
        while (left > 0) {
                ssize_t w = pwrite(b->fd, q, left, at);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return msb_err_errno(b->err, errno, "blob %s: write", b->digest);
                q += w;
                left -= (size_t)w;
                at += w;
        }
        b->got += n;
        if (b->job)
                __atomic_store_n(&b->job->done, b->got, __ATOMIC_RELAXED);
        return 0;
}

/* Download a blob into the store unless it is there; verified while it
 * arrives, kept only when digest and size match.  The bytes go to
 * tmp/partial-<hex>, locked while written: a pull that was killed leaves
 * it, and the next one resumes it with a range request (re-hashing what is
 * there); two pulls of one blob take turns. */
int img_store_fetch_blob(struct img_store *s, struct reg *g, const char *digest, json_int_t size,
                            struct fetch_job *job, struct msb_error *err)
{
        const char *hex;
        if (!img_digest_hex(digest, &hex))
                return msb_err(err, EINVAL, "digest '%s' is not sha256:<64 hex digits>", digest ? digest : "");
        if (size < 0 || (uint64_t)size > IMAGE_MAX_BLOB)
                return msb_err(err, EINVAL, "blob %s: size %lld is out of range (limit %llu)", digest, (long long)size,
                               (unsigned long long)IMAGE_MAX_BLOB);
        _cleanup_free_ char *dst = xasprintf("blobs/sha256/%s", hex);
        if (faccessat(s->fd, dst, R_OK, 0) == 0)
                return 1; /* shared with an image we already have */
        _cleanup_free_ char *part = xasprintf("tmp/partial-%s", hex);
        _cleanup_close_ int fd = openat(s->fd, part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return msb_err_errno(err, errno, "cannot create %s/%s", s->root, part);
        if (flock(fd, LOCK_EX) < 0)
                return msb_err_errno(err, errno, "cannot lock %s/%s", s->root, part);
        if (faccessat(s->fd, dst, R_OK, 0) == 0)
                return 1; /* the other pull finished it */
        struct blob_sink b = {.fd = fd, .max = (uint64_t)size, .digest = digest, .job = job, .err = err};
        sha256_init(&b.h);
        /* what an interrupted pull left: hash it and go on from there */
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_size > 0 && (uint64_t)st.st_size <= (uint64_t)size) {
                uint8_t buf[65536];
                ssize_t n;
                while ((n = pread(fd, buf, sizeof(buf), (off_t)b.got)) > 0) {
                        sha256_update(&b.h, buf, (size_t)n);
                        b.got += (uint64_t)n;
                }
        } else if (ftruncate(fd, 0) < 0) {
                return msb_err_errno(err, errno, "blob %s: truncate", digest);
        }
        int r = 0;
        if (b.got < (uint64_t)size)
                r = msb_reg_blob(g, digest, b.got, blob_sink_status, blob_sink_write, &b, err);
        char got[65];
        sha256_hex(&b.h, got);
        bool bad = false;
        if (r == 0 && b.got != (uint64_t)size) {
                r = msb_err(err, EBADMSG, "blob %s: got %llu bytes, its descriptor says %lld (truncated download?)",
                            digest, (unsigned long long)b.got, (long long)size);
                bad = true;
        }
        if (r == 0 && strcmp(got, hex) != 0) {
                r = msb_err(err, EBADMSG, "blob %s: content does not match its digest: expected %s, got sha256:%s",
                            digest, digest, got);
                bad = true;
        }
        if (r == -EBADMSG)
                bad = true;
        if (r == 0 && renameat(s->fd, part, s->fd, dst) < 0)
                r = msb_err_errno(err, errno, "blob %s: rename", digest);
        /* a wrong answer is not worth resuming; a broken connection is */
        if (bad)
                unlinkat(s->fd, part, 0);
        return r;
}

#define FETCH_THREADS 4

struct fetcher {
        struct img_store *s;
        struct reg *g;
        struct fetch_job *jobs;
        size_t n;
        size_t next;    /* atomic */
        bool stop;      /* atomic: a job failed */
        size_t running; /* atomic: workers not yet finished */
};

static void *fetch_worker(void *arg)
{
        struct fetcher *f = arg;
        struct reg *g = msb_reg_clone(f->g);
        for (;;) {
                size_t i = __atomic_fetch_add(&f->next, 1, __ATOMIC_RELAXED);
                if (i >= f->n || __atomic_load_n(&f->stop, __ATOMIC_RELAXED))
                        break;
                struct fetch_job *j = &f->jobs[i];
                __atomic_store_n(&j->state, FETCH_ACTIVE, __ATOMIC_RELAXED);
                int r = img_store_fetch_blob(f->s, g, j->digest, (json_int_t)j->size, j, &j->err);
                j->r = r < 0 ? r : 0;
                if (r == 1)
                        __atomic_store_n(&j->done, j->size, __ATOMIC_RELAXED);
                __atomic_store_n(&j->state, r < 0 ? FETCH_FAILED : r == 1 ? FETCH_HAD : FETCH_DONE,
                                 __ATOMIC_RELEASE);
                if (r < 0)
                        __atomic_store_n(&f->stop, true, __ATOMIC_RELAXED);
        }
        msb_reg_close(g);
        __atomic_fetch_sub(&f->running, 1, __ATOMIC_RELEASE);
        return NULL;
}

static void fmt_bytes(uint64_t b, char *out, size_t n)
{
        if (b >= 1000000)
                snprintf(out, n, "%.1f MB", (double)b / 1e6);
        else
                snprintf(out, n, "%.1f kB", (double)b / 1e3);
}

/* Hand the layers' state to the caller's progress function, if any. */
static void progress_report(struct msb_ctx *ctx, struct fetch_job *jobs, size_t n, double secs, bool first)
{
        if (!ctx->progress_fn)
                return;
        struct msb_layer_progress *p = xcalloc(n, sizeof(*p));
        for (size_t i = 0; i < n; i++) {
                int st = __atomic_load_n(&jobs[i].state, __ATOMIC_ACQUIRE);
                p[i] = (struct msb_layer_progress){
                        .digest = jobs[i].digest,
                        .size = jobs[i].size,
                        .done = __atomic_load_n(&jobs[i].done, __ATOMIC_RELAXED),
                        .state = st == FETCH_WAITING  ? MSB_LAYER_WAITING
                                 : st == FETCH_ACTIVE ? MSB_LAYER_ACTIVE
                                 : st == FETCH_DONE   ? MSB_LAYER_DONE
                                 : st == FETCH_HAD    ? MSB_LAYER_HAD
                                                      : MSB_LAYER_FAILED,
                };
        }
        ctx->progress_fn(p, n, secs, first, ctx->progress_ud);
        free(p);
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fetch the layers, up to FETCH_THREADS at a time; the first failure stops
 * the others from starting and is returned. */
int img_fetch_layers(struct msb_ctx *ctx, struct img_store *s, struct reg *g, json_t *layers, const char *name,
                        struct msb_error *err)
{
        size_t n = json_array_size(layers);
        if (n == 0)
                return 0;
        struct fetch_job *jobs = xcalloc(n, sizeof(*jobs));
        size_t i;
        json_t *d;
        json_array_foreach(layers, i, d)
        {
                jobs[i].digest = img_desc_digest(d) ? img_desc_digest(d) : "";
                json_int_t sz = json_integer_value(json_object_get(d, "size"));
                jobs[i].size = sz > 0 ? (uint64_t)sz : 0;
                if (sz < 0 || !json_is_integer(json_object_get(d, "size"))) {
                        free(jobs);
                        return msb_err(err, EBADMSG, "%s: layer %zu has no valid size", name, i);
                }
        }
        struct fetcher f = {.s = s, .g = g, .jobs = jobs, .n = n};
        size_t nt = n < FETCH_THREADS ? n : FETCH_THREADS;
        pthread_t th[FETCH_THREADS];
        size_t started = 0;
        f.running = nt;
        for (; started < nt; started++)
                if (pthread_create(&th[started], NULL, fetch_worker, &f) != 0)
                        break;
        __atomic_fetch_sub(&f.running, nt - started, __ATOMIC_RELEASE);
        if (started == 0) {
                f.running = 1;
                fetch_worker(&f); /* no threads: do it here */
        }
        double t0 = now_s();
        progress_report(ctx, jobs, n, 0, true);
        for (;;) {
                bool all = __atomic_load_n(&f.running, __ATOMIC_ACQUIRE) == 0;
                progress_report(ctx, jobs, n, now_s() - t0, false);
                if (all)
                        break;
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        for (size_t k = 0; k < started; k++)
                pthread_join(th[k], NULL);
        progress_report(ctx, jobs, n, now_s() - t0, false);
        int r = 0;
        uint64_t total = 0;
        for (size_t k = 0; k < n; k++) {
                total += jobs[k].state == FETCH_DONE ? jobs[k].size : 0;
                if (jobs[k].r < 0 && r == 0) {
                        r = jobs[k].r;
                        if (err)
                                *err = jobs[k].err;
                }
        }
        if (r == 0) {
                char tb[32];
                fmt_bytes(total, tb, sizeof(tb));
                msb_log(ctx, ctx->progress ? 0 : 1, "%s: %zu layers, %s downloaded in %.1f s", name, n, tb,
                        now_s() - t0);
        }
        free(jobs);
        return r;
}
