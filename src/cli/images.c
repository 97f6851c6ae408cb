/* SPDX-License-Identifier: Apache-2.0 */
/* msb images; msb rmi REF... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

void cli_human_size(uint64_t b, char *out, size_t n)
{
        const char *u[] = {"B", "kB", "MB", "GB", "TB"};
        double v = (double)b;
        int i = 0;
        while (v >= 1000 && i < 4) {
                v /= 1000;
                i++;
        }
        snprintf(out, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void human_age(int64_t created, char *out, size_t n)
{
        if (created <= 0) {
                snprintf(out, n, "unknown");
                return;
        }
        int64_t d = (int64_t)time(NULL) - created;
        if (d < 0)
                d = 0;
        if (d < 120)
                snprintf(out, n, "%lld seconds ago", (long long)d);
        else if (d < 7200)
                snprintf(out, n, "%lld minutes ago", (long long)(d / 60));
        else if (d < 172800)
                snprintf(out, n, "%lld hours ago", (long long)(d / 3600));
        else if (d < 86400LL * 365 * 2)
                snprintf(out, n, "%lld days ago", (long long)(d / 86400));
        else
                snprintf(out, n, "%lld years ago", (long long)(d / (86400LL * 365)));
}

static int by_name(const void *a, const void *b)
{
        return strcmp(((const struct msb_image_info *)a)->name, ((const struct msb_image_info *)b)->name);
}

int cmd_images(int argc, char **argv)
{
        if (argc > 1) {
                if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                        puts("Usage: msb images\n\nList the stored images: name, tag, id, size on disk, age.");
                        return 0;
                }
                cli_error("images: unexpected argument '%s'", argv[1]);
                return 125;
        }
        struct msb_error err = {0};
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        struct msb_image_info *v;
        size_t n;
        int status = 0;
        if (msb_image_list(ctx, &v, &n, &err) < 0) {
                cli_error("images: %s", err.message);
                status = 125;
        } else {
                qsort(v, n, sizeof(*v), by_name);
                printf("%-44s %-16s %-12s %10s  %-16s %s\n", "NAME", "TAG", "ID", "SIZE", "CREATED", "STORE");
                for (size_t i = 0; i < n; i++) {
                        char *name = v[i].name, *tag = "";
                        char *at = strchr(name, '@');
                        char *slash = strrchr(name, '/');
                        char *colon = strrchr(slash ? slash : name, ':');
                        if (at)
                                *at = 0, tag = at + 1;
                        else if (colon)
                                *colon = 0, tag = colon + 1;
                        char sz[32], age[48];
                        cli_human_size(v[i].size, sz, sizeof(sz));
                        human_age(v[i].created, age, sizeof(age));
                        printf("%-44s %-16.16s %-12s %10s  %-16s %s\n", name, tag, v[i].id, sz, age,
                               v[i].system ? "system (read-only)" : "yours");
                }
                msb_image_list_free(v, n);
        }
        msb_ctx_free(ctx);
        return status;
}

int cmd_rmi(int argc, char **argv)
{
        if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                puts("Usage: msb rmi REF...\n\nRemove stored images by name; refused while a running sandbox uses one.");
                return argc < 2 ? 125 : 0;
        }
        struct msb_error err = {0};
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        int status = 0;
        for (int i = 1; i < argc; i++) {
                if (msb_image_remove(ctx, argv[i], &err) < 0) {
                        cli_error("rmi %s: %s", argv[i], err.message);
                        status = 125;
                } else
                        printf("removed %s\n", argv[i]);
        }
        msb_ctx_free(ctx);
        return status;
}
