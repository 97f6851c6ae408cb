/* SPDX-License-Identifier: Apache-2.0 */
/* msb events: sandboxes' lifecycle events as they happen (docker events' habit). */
#define _GNU_SOURCE
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static int print_event(const struct msb_sandbox_event *e, void *ud)
{
        bool json = *(bool *)ud;
        if (json) {
                json_t *j = json_pack("{s:s, s:s, s:I}", "type", e->type, "name", e->name, "time", (json_int_t)e->time);
                if (j && e->image)
                        json_object_set_new(j, "image", json_string(e->image));
                if (j && !strcmp(e->type, "exited"))
                        json_object_set_new(j, "exit_code", json_integer(e->exit_code));
                char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
                if (s)
                        printf("%s\n", s);
                free(s);
                json_decref(j);
        } else {
                char ts[32];
                time_t t = (time_t)e->time;
                struct tm tm;
                gmtime_r(&t, &tm);
                strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
                printf("%s %s %s", ts, e->type, e->name);
                if (!strcmp(e->type, "exited"))
                        printf(" (exit %d)", e->exit_code);
                printf("\n");
        }
        return fflush(stdout) == 0 ? 0 : 1; /* a reader that went away ends it */
}

int cmd_events(int argc, char **argv)
{
        static const struct option lo[] = {{"format", required_argument, NULL, 'F'}, {"help", no_argument, NULL, 'h'},
                                           {0}};
        bool json = false;
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
                if (c == 'F' && (!strcmp(optarg, "json") || !strcmp(optarg, "text"))) {
                        json = !strcmp(optarg, "json");
                } else if (c == 'h') {
                        printf("Usage: msb events [--format text|json]\n\n"
                               "Print sandboxes' lifecycle events as they happen, until interrupted: created,\n"
                               "started, exited (with the exit code), stopped, crashed, removed.\n");
                        return 0;
                } else {
                        if (c == 'F')
                                cli_error("events: --format '%s': expected text or json", optarg);
                        else
                                cli_error("events: unknown option '%s'; see 'msb events --help'", argv[optind - 1]);
                        return 125;
                }
        }
        if (optind < argc) {
                cli_error("events: takes no operands; see 'msb events --help'");
                return 125;
        }
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        struct msb_error err = {0};
        int r = msb_sandbox_events(ctx, 0, print_event, &json, &err);
        if (r < 0)
                cli_error("%s", err.message);
        msb_ctx_free(ctx);
        return r < 0 ? 125 : 0;
}
