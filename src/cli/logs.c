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

struct logs_cli {
        bool stamps;
        bool open_line[2]; /* a partial record was printed on stdout, stderr */
};

/* One record to stdout or stderr, as the process wrote it. */
static int emit(const struct msb_log_record *r, void *ud)
{
        struct logs_cli *lc = ud;
        FILE *f = r->err ? stderr : stdout;
        if (lc->stamps && !lc->open_line[r->err])
                fprintf(f, "%s ", r->time);
        fwrite(r->data, 1, r->len, f);
        if (!r->partial)
                fputc('\n', f);
        lc->open_line[r->err] = r->partial;
        fflush(f);
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
        struct msb_logs_opts lo = {.tail = -1};
        struct logs_cli lc = {0};
        char since[64] = "";
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+fth", lo_, NULL)) != -1) {
                switch (c) {
                case 'f':
                        lo.follow = true;
                        break;
                case 't':
                        lc.stamps = true;
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
                        if (msb_logs_since_parse(optarg, since, sizeof(since)) < 0) {
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
        lo.since = since[0] ? since : NULL;
        struct msb_error err = {0};
        if (msb_sandbox_logs(ctx, name, &lo, emit, &lc, &err) < 0) {
                cli_error("%s", err.message);
                msb_ctx_free(ctx);
                return 125;
        }
        msb_ctx_free(ctx);
        return 0;
}
