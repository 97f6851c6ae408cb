/* SPDX-License-Identifier: Apache-2.0 */
/* msb pool start|status|stop: pre-booted VMs (docs/pool.md). */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *f)
{
        fputs("Usage: msb pool start [--size N] [--cpus N] [--memory SIZE] [--kernel FILE] [--accel MODE]\n"
              "       msb pool status\n"
              "       msb pool stop [KEY]\n"
              "\n"
              "Keep VMs booted ahead of runs: msb run and msb create take one when their cpus, memory,\n"
              "kernel and accelerator match a pool's, and boot one otherwise (or with --no-pool).\n"
              "A VM is used once. A pool is a process of the calling user's; stop ends it and its idle VMs.\n"
              "\n"
              "Options (start):\n"
              "  -n, --size N          VMs kept ready (default 2, at most 64)\n"
              "  -c, --cpus N          virtual CPUs of each (default 1)\n"
              "  -m, --memory SIZE     guest memory of each, e.g. 512M (default 512M)\n"
              "      --kernel FILE     the kernel (default: msb's, or $MSB_KERNEL), as runs would use\n"
              "      --accel MODE      auto|kvm|tcg (default auto, or $MSB_ACCEL)\n"
              "  -h, --help            show this help\n",
              f);
}

static int pool_start(int argc, char **argv)
{
        enum { OPT_KERNEL = 256, OPT_ACCEL };
        static const struct option lo[] = {
                {"size", required_argument, NULL, 'n'},   {"cpus", required_argument, NULL, 'c'},
                {"memory", required_argument, NULL, 'm'}, {"kernel", required_argument, NULL, OPT_KERNEL},
                {"accel", required_argument, NULL, OPT_ACCEL}, {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct msb_pool_opts po = {.size = 2, .accel = MSB_ACCEL_AUTO};
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "n:c:m:h", lo, NULL)) != -1) {
                char *end;
                unsigned long v;
                uint64_t bytes;
                switch (c) {
                case 'n':
                case 'c':
                        v = strtoul(optarg, &end, 10);
                        if (end == optarg || *end || v < 1 || v > 64) {
                                cli_error("--%s '%s': expected a number from 1 to 64", c == 'n' ? "size" : "cpus",
                                          optarg);
                                return 125;
                        }
                        *(c == 'n' ? &po.size : &po.cpus) = (unsigned)v;
                        break;
                case 'm':
                        if (msb_parse_size(optarg, &bytes) < 0 || (bytes >> 20) < 128 || (bytes >> 20) > 65536) {
                                cli_error("--memory '%s': expected a size from 128M to 64G, e.g. 512M or 1G", optarg);
                                return 125;
                        }
                        po.memory_mib = (unsigned)(bytes >> 20);
                        break;
                case OPT_KERNEL:
                {
                        /* absolute: the pool runs from / */
                        char *abs = realpath(optarg, NULL);
                        if (!abs || access(abs, R_OK) < 0) {
                                cli_error("--kernel '%s': not a readable file", optarg);
                                free(abs);
                                return 125;
                        }
                        setenv("MSB_KERNEL", abs, 1);
                        free(abs);
                }
                        break;
                case OPT_ACCEL:
                        if (!strcmp(optarg, "kvm"))
                                po.accel = MSB_ACCEL_KVM;
                        else if (!strcmp(optarg, "tcg"))
                                po.accel = MSB_ACCEL_TCG;
                        else if (strcmp(optarg, "auto")) {
                                cli_error("--accel '%s': use auto, kvm or tcg", optarg);
                                return 125;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        cli_error("pool start: unknown option '%s'; see 'msb pool --help'", argv[optind - 1]);
                        return 125;
                }
        }
        if (optind != argc) {
                cli_error("pool start: unexpected argument '%s'", argv[optind]);
                return 125;
        }
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        struct msb_error err = {0};
        int r = msb_pool_start(ctx, &po, &err);
        msb_ctx_free(ctx);
        if (r < 0) {
                cli_error("pool start: %s", err.message);
                return 125;
        }
        return 0;
}

int cmd_pool(int argc, char **argv)
{
        const char *verb = argc > 1 ? argv[1] : "";
        if (!strcmp(verb, "-h") || !strcmp(verb, "--help")) {
                usage(stdout);
                return 0;
        }
        if (!strcmp(verb, "start"))
                return pool_start(argc - 1, argv + 1);
        if (strcmp(verb, "status") && strcmp(verb, "stop")) {
                cli_error("pool: expected start, status or stop; see 'msb pool --help'");
                return 125;
        }
        if (argc > (strcmp(verb, "stop") ? 2 : 3)) {
                cli_error("pool %s: unexpected argument '%s'", verb, argv[argc - 1]);
                return 125;
        }
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        struct msb_error err = {0};
        int r;
        if (!strcmp(verb, "status")) {
                char *json = NULL;
                r = msb_pool_status(ctx, &json, &err);
                if (r >= 0)
                        printf("%s\n", json);
                free(json);
        } else {
                r = msb_pool_stop(ctx, argc > 2 ? argv[2] : NULL, &err);
                if (r >= 0)
                        printf("%d pool%s stopped\n", r, r == 1 ? "" : "s");
        }
        msb_ctx_free(ctx);
        if (r < 0) {
                cli_error("pool %s: %s", verb, err.message);
                return 125;
        }
        return 0;
}
