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

static void usage(FILE *f)
{
        fputs("Usage: msb COMMAND [OPTIONS]\n"
              "\n"
              "Run commands in microVMs: throw-away ones, or sandboxes that live.\n"
              "\n"
              "Commands:\n"
              "  run       Boot a microVM from an image and run a command in it\n"
              "  create    Record a named sandbox without starting it\n"
              "  start     Boot stopped sandboxes\n"
              "  stop      Stop sandboxes (SIGTERM, then the VM after a grace period)\n"
              "  restart   Stop and start sandboxes\n"
              "  kill      Send a signal to sandboxes' main processes\n"
              "  wait      Wait for sandboxes to stop; print their exit status\n"
              "  exec      Run a command in a running sandbox\n"
              "  attach    Attach to a sandbox's main process\n"
              "  cp        Copy files and directories between a sandbox and the host\n"
              "  logs      Print a sandbox's main process output\n"
              "  ls        List sandboxes (ps is the same)\n"
              "  inspect   Print sandboxes' configuration and state (JSON)\n"
              "  rm        Remove sandboxes\n"
              "  pull      Pull an image from a registry\n"
              "  images    List stored images\n"
              "  rmi       Remove stored images\n"
              "  load      Load images from a docker save or OCI archive\n"
              "  login     Keep credentials for a registry\n"
              "  logout    Forget them\n"
              "  image     Manage local images (import)\n"
              "  info      Show the kernel, accelerator and tools a run would use\n"
              "  pool      Keep VMs booted ahead of runs (start, status, stop)\n"
              "  version   Print the version\n"
              "\n"
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
        static const struct {
                const char *name;
                int (*fn)(int, char **);
        } verbs[] = {
                {"run", cmd_run},         {"create", cmd_create}, {"start", cmd_start}, {"stop", cmd_stop},
                {"restart", cmd_restart}, {"kill", cmd_kill},     {"wait", cmd_wait},   {"exec", cmd_exec},
                {"attach", cmd_attach},   {"logs", cmd_logs},     {"ls", cmd_ls},       {"ps", cmd_ls},
                {"inspect", cmd_inspect}, {"rm", cmd_rm},         {"cp", cmd_cp},
        };
        for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
                if (!strcmp(verb, verbs[i].name))
                        return verbs[i].fn(argc - 1, argv + 1);
        if (!strcmp(verb, "images"))
                return cmd_images(argc - 1, argv + 1);
        if (!strcmp(verb, "login"))
                return cmd_login(argc - 1, argv + 1);
        if (!strcmp(verb, "logout"))
                return cmd_logout(argc - 1, argv + 1);
        if (!strcmp(verb, "load"))
                return cmd_load(argc - 1, argv + 1);
        if (!strcmp(verb, "rmi"))
                return cmd_rmi(argc - 1, argv + 1);
        if (!strcmp(verb, "pull"))
                return cmd_pull(argc - 1, argv + 1);
        if (!strcmp(verb, "image"))
                return cmd_image(argc - 1, argv + 1);
        if (!strcmp(verb, "info"))
                return cmd_info(argc - 1, argv + 1);
        if (!strcmp(verb, "pool"))
                return cmd_pool(argc - 1, argv + 1);
        if (!strcmp(verb, "version") || !strcmp(verb, "--version"))
                return cmd_version(argc - 1, argv + 1);
        cli_error("unknown command '%s'; see 'msb --help'", verb);
        return 125;
}
