/* SPDX-License-Identifier: Apache-2.0 */
/* msb: command-line front end of libmsb.  main() dispatches to one verb. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/util.h"

/* Messages carry names a guest or an image chose (paths in a copy, a
 * console's last lines): control bytes other than newline and tab are
 * shown as \xNN, never sent to the terminal as they are. */
void cli_error(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char *msg = NULL;
        int n = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        fputs("msb: ", stderr);
        for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
                if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
                        fprintf(stderr, "\\x%02x", *p);
                else
                        fputc(*p, stderr);
        }
        fputc('\n', stderr);
        free(msg);
}

struct msb_ctx *cli_ctx(void)
{
        struct msb_error err = {0};
        struct msb_ctx *ctx;
        if (msb_ctx_new(&ctx, &err) < 0) {
                cli_error("%s", err.message);
                return NULL;
        }
        return ctx;
}

void cli_log(const char *line, void *userdata)
{
        (void)userdata;
        fprintf(stderr, "msb: %s\n", line);
}

/* Every verb: its name, what it does (the line "msb --help" prints) and
 * the function running it.  An alias has no summary line of its own; "ps"
 * is mentioned in ls's. */
static const struct command {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *summary;
} verbs[] = {
        {"run", cmd_run, "Boot a microVM from an image and run a command in it"},
        {"create", cmd_create, "Record a named sandbox without starting it"},
        {"start", cmd_start, "Boot stopped sandboxes"},
        {"stop", cmd_stop, "Stop sandboxes (SIGTERM, then the VM after a grace period)"},
        {"restart", cmd_restart, "Stop and start sandboxes"},
        {"kill", cmd_kill, "Send a signal to sandboxes' main processes"},
        {"wait", cmd_wait, "Wait for sandboxes to stop; print their exit status"},
        {"exec", cmd_exec, "Run a command in a running sandbox"},
        {"attach", cmd_attach, "Attach to a sandbox's main process"},
        {"cp", cmd_cp, "Copy files and directories between a sandbox and the host"},
        {"logs", cmd_logs, "Print a sandbox's main process output"},
        {"events", cmd_events, "Print sandboxes' lifecycle events as they happen"},
        {"ls", cmd_ls, "List sandboxes (ps is the same)"},
        {"ps", cmd_ls, NULL},
        {"inspect", cmd_inspect, "Print sandboxes' configuration and state (JSON)"},
        {"rm", cmd_rm, "Remove sandboxes"},
        {"pull", cmd_pull, "Pull an image from a registry"},
        {"images", cmd_images, "List stored images"},
        {"rmi", cmd_rmi, "Remove stored images"},
        {"load", cmd_load, "Load images from a docker save or OCI archive"},
        {"serve", cmd_serve, "Serve the HTTP API for programs and SDKs (docs/api.md)"},
        {"mcp", cmd_mcp, "Serve MCP tools on stdio, for agents (docs/api.md)"},
        {"login", cmd_login, "Keep credentials for a registry"},
        {"logout", cmd_logout, "Forget them"},
        {"image", cmd_image, "Manage local images (import)"},
        {"info", cmd_info, "Show the kernel, accelerator and tools a run would use"},
        {"pool", cmd_pool, "Keep VMs booted ahead of runs (start, status, stop)"},
        {"version", cmd_version, "Print the version"},
        {"--version", cmd_version, NULL},
};

static void usage(FILE *f)
{
        fputs("Usage: msb COMMAND [OPTIONS]\n"
              "\n"
              "Run commands in microVMs: throw-away ones, or sandboxes that live.\n"
              "\n"
              "Commands:\n",
              f);
        for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
                if (verbs[i].summary)
                        fprintf(f, "  %-9s %s\n", verbs[i].name, verbs[i].summary);
        fputs("\n"
              "Run 'msb COMMAND --help' for a command's options.\n",
              f);
}

int main(int argc, char **argv)
{
        /* Started with a standard fd closed (as CI jobs and daemons may be),
         * the next socket or file msb opens would land on it. */
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
                        return 125;
        if (argc < 2) {
                usage(stderr);
                return 125;
        }
        const char *verb = argv[1];
        if (!strcmp(verb, "-h") || !strcmp(verb, "--help") || !strcmp(verb, "help")) {
                usage(stdout);
                return 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
                if (!strcmp(verb, verbs[i].name))
                        return verbs[i].fn(argc - 1, argv + 1);
        cli_error("unknown command '%s'; see 'msb --help'", verb);
        return 125;
}
