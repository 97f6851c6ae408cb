/* SPDX-License-Identifier: Apache-2.0 */
/* msb load -i FILE [NAME] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void load_usage(FILE *f)
{
        fputs("Usage: msb load -i FILE [NAME]\n"
              "\n"
              "Load images from a `docker save` archive or an OCI archive (a tar of an OCI image\n"
              "layout, as written by `skopeo copy ... oci-archive:FILE`), plain or gzip.  The names\n"
              "come from the archive, or NAME for its one image.\n",
              f);
}

int cmd_load(int argc, char **argv)
{
        const char *file = NULL, *name = NULL;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
                        load_usage(stdout);
                        return 0;
                }
                if ((!strcmp(argv[i], "-i") || !strcmp(argv[i], "--input")) && i + 1 < argc)
                        file = argv[++i];
                else if (argv[i][0] != '-' && !name)
                        name = argv[i];
                else {
                        load_usage(stderr);
                        return 125;
                }
        }
        if (!file) {
                load_usage(stderr);
                return 125;
        }
        struct msb_error err = {0};
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        char **names = NULL;
        int status = 0;
        if (msb_image_load(ctx, file, name, &names, &err) < 0) {
                cli_error("load %s: %s", file, err.message);
                status = 125;
        } else {
                for (char **n = names; n && *n; n++) {
                        printf("loaded %s\n", *n);
                        free(*n);
                }
                free(names);
        }
        msb_ctx_free(ctx);
        return status;
}
