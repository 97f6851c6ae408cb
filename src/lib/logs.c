/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A named sandbox's main-process log, read: the CRI-format files its
 * supervisor writes ("2026-12-01T05:15:03.123456789Z stdout F text\n"),
 * oldest first, as records to a callback, with tail, since and follow (the
 * open file is read to its end before a rotated-in one is taken).  msb logs
 * and the API's logs route both read it here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/util.h"
#include "msb.h"

#define FOLLOW_POLL_MS 100

struct reader {
        const struct msb_logs_opts *lo;
        msb_log_fn *cb;
        void *ud;
        bool stop; /* the callback said so */
};

/* A line as a record, if it is one (malformed ones, of a file cut short,
 * are not) that the options let through; stamp holds its time. */
static bool parse_record(const struct msb_logs_opts *lo, const char *line, size_t len, struct msb_log_record *r,
                         char stamp[64])
{
        const char *sp1 = memchr(line, ' ', len);
        if (!sp1 || len - (size_t)(sp1 - line) < 10)
                return false;
        size_t stamp_len = (size_t)(sp1 - line);
        const char *since = lo->since;
        if (since && *since && strncmp(line, since, stamp_len < strlen(since) ? stamp_len : strlen(since)) < 0)
                return false;
        bool err = !strncmp(sp1 + 1, "stderr ", 7);
        if (!err && strncmp(sp1 + 1, "stdout ", 7))
                return false;
        const char *tag = sp1 + 8;
        if ((*tag != 'F' && *tag != 'P') || tag[1] != ' ')
                return false;
        if ((err && lo->no_stderr) || (!err && lo->no_stdout))
                return false;
        const char *text = tag + 2;
        size_t tlen = len - (size_t)(text - line);
        if (tlen && text[tlen - 1] == '\n')
                tlen--;
        snprintf(stamp, 64, "%.*s", (int)(stamp_len < 63 ? stamp_len : 63), line);
        *r = (struct msb_log_record){.time = stamp, .err = err, .partial = *tag == 'P', .data = text, .len = tlen};
        return true;
}

/* The records of paths the options let through: tail counts only those. */
static long count_records(const struct msb_logs_opts *lo, char **paths)
{
        long n = 0;
        char *line = NULL, stamp[64];
        size_t cap = 0;
        for (char **p = paths; *p; p++) {
                _cleanup_fclose_ FILE *f = fopen(*p, "re");
                ssize_t k;
                struct msb_log_record r;
                while (f && (k = getline(&line, &cap, f)) > 0)
                        n += line[k - 1] == '\n' && parse_record(lo, line, (size_t)k, &r, stamp);
        }
        free(line);
        return n;
}

/* Every whole record f has from off on (skipping skip of those the options
 * let through); the new offset. */
static long drain(struct reader *rd, FILE *f, long off, long *skip, char **line, size_t *cap)
{
        fseek(f, off, SEEK_SET);
        ssize_t n;
        char stamp[64];
        struct msb_log_record r;
        /* a last line without its newline is still being written */
        while (!rd->stop && (n = getline(line, cap, f)) > 0 && (*line)[n - 1] == '\n') {
                off += n;
                if (!parse_record(rd->lo, *line, (size_t)n, &r, stamp))
                        continue;
                if (*skip > 0)
                        (*skip)--;
                else if (rd->cb(&r, rd->ud) != 0)
                        rd->stop = true;
        }
        return off;
}

static bool cancelled(int fd, int wait_ms)
{
        if (fd <= 0) {
                if (wait_ms) {
                        struct timespec ts = {0, (long)wait_ms * 1000 * 1000};
                        nanosleep(&ts, NULL);
                }
                return false;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        return poll(&p, 1, wait_ms) > 0;
}

static void follow(struct reader *rd, struct msb_ctx *ctx, const char *name, const char *path, long off)
{
        char *line = NULL;
        size_t cap = 0;
        long skip = 0;
        FILE *f = fopen(path, "re");
        while (!rd->stop) {
                bool running = msb_sandbox_running(ctx, name);
                if (f)
                        off = drain(rd, f, off, &skip, &line, &cap);
                struct stat now, cur;
                if (stat(path, &now) == 0 && (!f || (fstat(fileno(f), &cur) == 0 && cur.st_ino != now.st_ino))) {
                        if (f)
                                fclose(f);
                        f = fopen(path, "re");
                        off = 0;
                        continue;
                }
                if (!running || cancelled(rd->lo->cancel_fd, FOLLOW_POLL_MS))
                        break;
        }
        if (f)
                fclose(f);
        free(line);
}

int msb_sandbox_logs(struct msb_ctx *ctx, const char *name, const struct msb_logs_opts *lo, msb_log_fn *cb, void *ud,
                     struct msb_error *err)
{
        char **paths;
        int r = msb_sandbox_log_paths(ctx, name, &paths, err);
        if (r < 0)
                return r;
        struct reader rd = {.lo = lo, .cb = cb, .ud = ud};
        long skip = 0;
        if (lo->tail >= 0) {
                long total = count_records(lo, paths);
                skip = total > lo->tail ? total - lo->tail : 0;
        }
        char *line = NULL;
        size_t cap = 0, np = 0;
        long off = 0;
        for (char **p = paths; *p && !rd.stop; p++, np++) {
                _cleanup_fclose_ FILE *f = fopen(*p, "re");
                off = f ? drain(&rd, f, 0, &skip, &line, &cap) : 0;
        }
        free(line);
        while (paths[np])
                np++;
        if (lo->follow && !rd.stop && np)
                follow(&rd, ctx, name, paths[np - 1], off);
        strv_free(paths);
        return 0;
}

int msb_logs_since_parse(const char *s, char *out, size_t n)
{
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        time_t t;
        if (!errno && end != s && (!*end || !end[1])) {
                double mult = !*end ? 0 : *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : *end == 'd' ? 86400 : -1;
                if (mult < 0 || v < 0)
                        return -EINVAL;
                t = mult == 0 ? (time_t)v : time(NULL) - (time_t)(v * mult);
        } else if (strlen(s) >= 19 && strlen(s) < n && s[4] == '-' && s[10] == 'T') {
                snprintf(out, n, "%s", s);
                return 0;
        } else
                return -EINVAL;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
        return 0;
}
