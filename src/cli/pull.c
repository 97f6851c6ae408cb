/* SPDX-License-Identifier: Apache-2.0 */
/* msb pull [-q] REF */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void pull_usage(FILE *f)
{
        fputs("Usage: msb pull [-q] [--insecure] REF\n"
              "\n"
              "Pull an image from its registry into the local store: REF as docker takes it,\n"
              "e.g. alpine, library/alpine:3.20, host:5000/ns/app:1, name@sha256:<hex>.\n"
              "Registry mirrors (tried first) and insecure registries come from the config file\n"
              "($MSB_CONFIG, $XDG_CONFIG_HOME/msb/config or ~/.config/msb/config):\n"
              "    mirror docker.io http://127.0.0.1:5000\n"
              "    insecure registry.lan:5000\n"
              "Credentials come from ~/.docker/config.json.\n"
              "\n"
              "  -q, --quiet     print only the stored name\n"
              "      --insecure  plain HTTP to the registry (loopback registries always are)\n",
              f);
}

int cmd_pull(int argc, char **argv)
{
        bool quiet = false, insecure = false;
        const char *ref = NULL;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
                        pull_usage(stdout);
                        return 0;
                }
                if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))
                        quiet = true;
                else if (!strcmp(argv[i], "--insecure"))
                        insecure = true;
                else if (argv[i][0] == '-' || ref) {
                        pull_usage(stderr);
                        return 125;
                } else
                        ref = argv[i];
        }
        if (!ref) {
                pull_usage(stderr);
                return 125;
        }
        struct msb_error err = {0};
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        /* a live line per layer on a terminal; nothing but errors otherwise */
        if (!quiet && isatty(2))
                msb_ctx_set_progress(ctx, true);
        if (!quiet)
                msb_ctx_set_log(ctx, 0, cli_log, NULL);
        msb_ctx_set_insecure(ctx, insecure);
        char *name = NULL;
        int status = 0;
        if (msb_image_pull(ctx, ref, &name, &err) < 0) {
                cli_error("pull %s: %s", ref, err.message);
                status = 125;
        } else if (quiet) {
                printf("%s\n", name);
        }
        free(name);
        msb_ctx_free(ctx);
        return status;
}
