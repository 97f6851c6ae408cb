/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor's log of the main process's output, in the CRI format
 * (what msb logs reads), rotated at LOG_MAX_BYTES with one older file kept.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

void sup_log_open(struct sup *s)
{
        _cleanup_free_ char *p = xasprintf("%s/main.log", s->dir);
        s->log_fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        struct stat st;
        s->log_size = s->log_fd >= 0 && fstat(s->log_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void log_rotate(struct sup *s)
{
        _cleanup_free_ char *p = xasprintf("%s/main.log", s->dir), *old = xasprintf("%s/main.log.1", s->dir);
        if (s->log_fd >= 0)
                close(s->log_fd);
        (void)rename(p, old);
        sup_log_open(s);
}

/* One record per line; a chunk's unfinished last line is its own record
 * marked P (partial), as the CRI format does. */
void sup_log_write(struct sup *s, bool err, const uint8_t *p, size_t n)
{
        if (s->log_fd < 0)
                return;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char stamp[64];
        size_t k = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(stamp + k, sizeof(stamp) - k, ".%09ldZ %s ", ts.tv_nsec, err ? "stderr" : "stdout");
        struct msb_buf b = {0};
        while (n > 0) {
                const uint8_t *nl = memchr(p, '\n', n);
                size_t len = nl ? (size_t)(nl - p) : n;
                msb_buf_append(&b, stamp, strlen(stamp));
                msb_buf_append(&b, nl ? "F " : "P ", 2);
                msb_buf_append(&b, p, len);
                msb_buf_append(&b, "\n", 1);
                p += len + (nl ? 1 : 0);
                n -= len + (nl ? 1 : 0);
        }
        (void)write_all(s->log_fd, msb_buf_head(&b), msb_buf_pending(&b));
        s->log_size += msb_buf_pending(&b);
        msb_buf_free(&b);
        if (s->log_size > LOG_MAX_BYTES)
                log_rotate(s);
}
