/* SPDX-License-Identifier: Apache-2.0 */
/* msb logs [-f] [--tail N] [--since T] [-t] NAME: the main process's output,
 * from the CRI-format files its supervisor writes (stdout to stdout, stderr
 * to stderr). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common/util.h"

struct logs_opts {
        bool follow, stamps;
        long tail;       /* -1: all */
        char since[40];  /* "" or a stamp in the files' format: records >= it */
};

/* "2026-12-01T05:15:03.123456789Z stdout F text": print one record. */
static void emit(const struct logs_opts *lo, const char *line, size_t len)
{
        const char *sp1 = memchr(line, ' ', len);
        if (!sp1 || len - (size_t)(sp1 - line) < 10)
                return;
        size_t stamp_len = (size_t)(sp1 - line);
        if (lo->since[0] && strncmp(line, lo->since, stamp_len < strlen(lo->since) ? stamp_len : strlen(lo->since)) < 0)
                return;
        bool err = !strncmp(sp1 + 1, "stderr ", 7);
        const char *tag = sp1 + 8;
        if ((*tag != 'F' && *tag != 'P') || tag[1] != ' ')
                return;
        const char *text = tag + 2;
        size_t tlen = len - (size_t)(text - line);
        if (tlen && text[tlen - 1] == '\n')
                tlen--;
        FILE *f = err ? stderr : stdout;
        if (lo->stamps)
                fprintf(f, "%.*s ", (int)stamp_len, line);
        fwrite(text, 1, tlen, f);
        if (*tag == 'F')
                fputc('\n', f);
}

static long count_lines(char **paths)
{
        long n = 0;
        for (char **p = paths; *p; p++) {
                _cleanup_fclose_ FILE *f = fopen(*p, "re");
                if (!f)
                        continue;
                int ch;
                while ((ch = getc_unlocked(f)) != EOF)
                        n += ch == '\n';
        }
        return n;
}

/* Print every file; returns the offset after the last complete record of
 * the last one (where -f goes on). */
static long print_files(const struct logs_opts *lo, char **paths, long skip)
{
        char *line = NULL;
        size_t cap = 0;
        long pos = 0;
        for (char **p = paths; *p; p++) {
                _cleanup_fclose_ FILE *f = fopen(*p, "re");
                pos = 0;
                if (!f)
                        continue;
                ssize_t n;
                /* a last line without its newline is still being written */
                while ((n = getline(&line, &cap, f)) > 0 && line[n - 1] == '\n') {
                        pos += n;
                        if (skip > 0)
                                skip--;
                        else
                                emit(lo, line, (size_t)n);
                }
        }
        free(line);
        fflush(stdout);
        fflush(stderr);
        return pos;
}

/* Print every whole record f has from off on; returns the new offset. */
static long drain(const struct logs_opts *lo, FILE *f, long off, char **line, size_t *cap)
{
        fseek(f, off, SEEK_SET);
        ssize_t n;
        while ((n = getline(line, cap, f)) > 0 && (*line)[n - 1] == '\n') {
                emit(lo, *line, (size_t)n);
                off += n;
        }
        fflush(stdout);
        fflush(stderr);
        return off;
}

/* Keep printing what the supervisor appends until the sandbox stops.  The
 * open file is read to its end before a rotated-in new one is taken. */
static void follow(const struct logs_opts *lo, struct msb_ctx *ctx, const char *name, const char *path, long off)
{
        char *line = NULL;
        size_t cap = 0;
        FILE *f = fopen(path, "re");
        for (;;) {
                bool running = msb_sandbox_running(ctx, name);
                if (f)
                        off = drain(lo, f, off, &line, &cap);
                struct stat now, cur;
                if (stat(path, &now) == 0 && (!f || (fstat(fileno(f), &cur) == 0 && cur.st_ino != now.st_ino))) {
                        if (f)
                                fclose(f);
                        f = fopen(path, "re");
                        off = 0;
                        continue;
                }
                if (!running)
                        break;
                struct timespec ts = {0, 100 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        if (f)
                fclose(f);
        free(line);
}

/* RFC 3339 as written in the files, a unix time, or a duration ago
 * (30s, 5m, 2h, 1d). */
static int parse_since(const char *s, char *out, size_t n)
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
        } else if (strlen(s) >= 19 && s[4] == '-' && s[10] == 'T') {
                snprintf(out, n, "%s", s);
                return 0;
        } else
                return -EINVAL;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
        return 0;
}

int cmd_logs(int argc, char **argv)
{
        enum { OPT_TAIL = 256, OPT_SINCE };
        static const struct option lo_[] = {{"follow", no_argument, NULL, 'f'},
                                            {"timestamps", no_argument, NULL, 't'},
                                            {"tail", required_argument, NULL, OPT_TAIL},
                                            {"since", required_argument, NULL, OPT_SINCE},
                                            {"help", no_argument, NULL, 'h'},
                                            {0}};
        struct logs_opts lo = {.tail = -1};
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+fth", lo_, NULL)) != -1) {
                switch (c) {
                case 'f':
                        lo.follow = true;
                        break;
                case 't':
                        lo.stamps = true;
                        break;
                case OPT_TAIL: {
                        unsigned n;
                        if (!strcmp(optarg, "all"))
                                lo.tail = -1;
                        else if (cli_parse_uint(optarg, 100000000, &n) < 0) {
                                cli_error("logs: --tail '%s': expected a number of lines or 'all'", optarg);
                                return 125;
                        } else
                                lo.tail = n;
                        break;
                }
                case OPT_SINCE:
                        if (parse_since(optarg, lo.since, sizeof(lo.since)) < 0) {
                                cli_error("logs: --since '%s': expected 2026-01-31T10:00:00Z, a unix time, or a "
                                          "duration such as 30s, 10m, 2h",
                                          optarg);
                                return 125;
                        }
                        break;
                case 'h':
                        printf("Usage: msb logs [-f] [-t] [--tail N] [--since T] NAME\n\n"
                               "The main process's output (stdout here to stdout, stderr to stderr), kept across "
                               "restarts.\n\n"
                               "  -f, --follow      keep printing until the sandbox stops\n"
                               "  -t, --timestamps  prefix each line with its time (UTC)\n"
                               "      --tail N      only the last N lines\n"
                               "      --since T     only lines since T (RFC 3339, unix time, or 30s/10m/2h/1d ago)\n");
                        return 0;
                default:
                        if (optopt)
                                cli_error("logs: unknown option '-%c'; see 'msb logs --help'", optopt);
                        else
                                cli_error("logs: unknown option '%s'; see 'msb logs --help'", argv[optind - 1]);
                        return 125;
                }
        }
        if (argc - optind != 1) {
                cli_error("logs: name one sandbox; usage: msb logs [-f] [-t] [--tail N] [--since T] NAME");
                return 125;
        }
        const char *name = argv[optind];
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        char **paths;
        struct msb_error err = {0};
        if (msb_sandbox_log_paths(ctx, name, &paths, &err) < 0) {
                cli_error("%s", err.message);
                msb_ctx_free(ctx);
                return 125;
        }
        long skip = 0;
        if (lo.tail >= 0) {
                long total = count_lines(paths);
                skip = total > lo.tail ? total - lo.tail : 0;
        }
        long off = print_files(&lo, paths, skip);
        if (lo.follow) {
                size_t np = 0;
                while (paths[np])
                        np++;
                follow(&lo, ctx, name, paths[np - 1], off);
        }
        for (char **p = paths; *p; p++)
                free(*p);
        free(paths);
        msb_ctx_free(ctx);
        return 0;
}
