/* SPDX-License-Identifier: Apache-2.0 */
/* msb image import DIR[:TAG] NAME */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void image_usage(FILE *f)
{
        fputs("Usage: msb image import [--verbose] DIR[:TAG] NAME\n"
              "\n"
              "Import an image from an OCI image layout directory (as written by umoci or skopeo).\n"
              "TAG picks the manifest with that org.opencontainers.image.ref.name; without it the\n"
              "layout must hold exactly one.  NAME gets ':latest' when it has no tag.\n",
              f);
}

int cmd_image(int argc, char **argv)
{
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                image_usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? 125 : 0;
        }
        if (strcmp(argv[1], "import") != 0) {
                cli_error("image: unknown subcommand '%s'; see 'msb image --help'", argv[1]);
                return 125;
        }
        bool verbose = false;
        int i = 2;
        if (i < argc && !strcmp(argv[i], "--verbose")) {
                verbose = true;
                i++;
        }
        if (argc - i != 2) {
                image_usage(stderr);
                return 125;
        }
        char *src = strdup(argv[i]);
        if (!src)
                return 125;
        char *tag = NULL;
        /* DIR:TAG; a ':' inside the directory path itself is not a tag */
        char *colon = strrchr(src, ':');
        if (colon && !strchr(colon, '/')) {
                *colon = '\0';
                tag = colon + 1;
        }
        struct msb_error err = {0};
        struct msb_ctx *ctx;
        int status = 0;
        if (msb_ctx_new(&ctx, &err) < 0) {
                cli_error("%s", err.message);
                free(src);
                return 125;
        }
        if (verbose)
                msb_ctx_set_log(ctx, 1, cli_log, NULL);
        if (msb_image_import(ctx, src, tag && *tag ? tag : NULL, argv[i + 1], &err) < 0) {
                cli_error("image import '%s': %s", argv[i], err.message);
                status = 125;
        }
        msb_ctx_free(ctx);
        free(src);
        return status;
}
