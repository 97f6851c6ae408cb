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

void cli_pull_progress(const struct msb_layer_progress *layers, size_t n, double secs, bool first, void *userdata)
{
        static const char *const what[] = {[MSB_LAYER_WAITING] = "waiting", [MSB_LAYER_ACTIVE] = "downloading",
                                           [MSB_LAYER_DONE] = "done", [MSB_LAYER_FAILED] = "FAILED",
                                           [MSB_LAYER_HAD] = "already stored"};
        if (!first)
                fprintf(stderr, "\033[%zuA", n);
        for (size_t i = 0; i < n; i++) {
                char a[32], t[32];
                cli_human_size(layers[i].done, a, sizeof(a));
                cli_human_size(layers[i].size, t, sizeof(t));
                fprintf(stderr, "\r\033[K  %.19s  %-14s %10s / %-10s", layers[i].digest, what[layers[i].state], a, t);
                if (layers[i].state == MSB_LAYER_ACTIVE && secs > 0.2)
                        fprintf(stderr, "  %.1f MB/s", (double)layers[i].done / 1e6 / secs);
                fputc('\n', stderr);
        }
        fflush(stderr);
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
        if (!quiet && isatty(2)) {
                msb_ctx_set_progress(ctx, true);
                msb_ctx_set_progress_fn(ctx, cli_pull_progress, NULL);
        }
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
