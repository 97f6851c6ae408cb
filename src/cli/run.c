/* SPDX-License-Identifier: Apache-2.0 */
/* msb run [OPTIONS] IMAGE [--] [CMD [ARG...]] */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void run_usage(FILE *f)
{
        fputs("Usage: msb run [OPTIONS] IMAGE [--] [COMMAND [ARG...]]\n"
              "       msb run [OPTIONS] --rootfs DIR [--] COMMAND [ARG...]\n"
              "\n"
              "Boot a microVM from IMAGE, run COMMAND in it, relay its output and exit with its status.\n"
              "\n"
              "Options:\n"
              "  -e, --env K=V         set an environment variable (-e K passes the host's value)\n"
              "  -w, --workdir DIR     working directory inside the guest\n"
              "  -u, --user USER       user[:group] or uid[:gid] to run as\n"
              "  -c, --cpus N          virtual CPUs (default 1)\n"
              "  -m, --memory SIZE     guest memory, e.g. 512M, 1G (default 512M)\n"
              "  -v, --volume HOST:GUEST[:OPTS]  share a host directory at GUEST; OPTS, comma-separated:\n"
              "                        rw (default) or ro (enforced on the host), passthrough\n"
              "                        (guest chmod/chown change the host file; default: kept in the guest)\n"
              "  -i, --interactive     forward stdin to the command\n"
              "      --entrypoint CMD  override the image's entrypoint\n"
              "      --hostname NAME   guest hostname (default msb-<id>)\n"
              "      --rootfs DIR      run a host directory as the root (read-only, overlay on top)\n"
              "      --accel MODE      auto|kvm|tcg (default auto, or $MSB_ACCEL)\n"
              "      --pull WHEN       always, missing (default: pull the image if it is not stored) or never\n"
              "      --fs-backend NAME msb (default) or virtiofsd (root only, no host-side ro; or $MSB_FS_BACKEND)\n"
              "      --verbose         say what msb does (accelerator, kernel, runtime dir)\n"
              "  -h, --help            show this help\n"
              "\n"
              "Exit status: the command's; 128+N if killed by signal N; 125 if msb failed;\n"
              "126 if the command cannot be executed; 127 if it is not found.\n",
              f);
}

static int parse_volume(struct msb_run_opts *o, const char *spec, struct msb_error *err)
{
        /* HOST:GUEST[:OPTS]; split on the last ':' only when it names an option */
        char *s = strdup(spec);
        if (!s)
                return -ENOMEM;
        unsigned flags = 0;
        char *opt = strrchr(s, ':');
        char *first = strchr(s, ':');
        if (!first) {
                free(s);
                err->code = EINVAL;
                snprintf(err->message, sizeof(err->message),
                         "volume '%s': expected HOST:GUEST[:ro|rw], e.g. -v ./src:/app", spec);
                return -EINVAL;
        }
        if (opt != first) {
                *opt++ = '\0';
                int modes = 0;
                for (char *save = NULL, *o1 = strtok_r(opt, ",", &save); o1; o1 = strtok_r(NULL, ",", &save)) {
                        if (!strcmp(o1, "ro")) {
                                flags |= MSB_VOLUME_RO;
                                modes++;
                        } else if (!strcmp(o1, "rw")) {
                                modes++;
                        } else if (!strcmp(o1, "passthrough")) {
                                flags |= MSB_VOLUME_OWNER_PASSTHROUGH;
                        } else {
                                err->code = EINVAL;
                                snprintf(err->message, sizeof(err->message),
                                         "volume '%s': unknown option '%s' (expected ro, rw or passthrough)", spec,
                                         o1);
                                free(s);
                                return -EINVAL;
                        }
                }
                if (modes > 1) {
                        err->code = EINVAL;
                        snprintf(err->message, sizeof(err->message), "volume '%s': give one of ro or rw, not both",
                                 spec);
                        free(s);
                        return -EINVAL;
                }
        }
        *first = '\0';
        int r = msb_run_opts_add_volume(o, s, first + 1, flags, err);
        free(s);
        return r;
}

static int parse_uint(const char *s, unsigned long max, unsigned *ret)
{
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (!*s || *end || errno || v > max || s[0] == '-')
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

int cmd_run(int argc, char **argv)
{
        enum { OPT_ENTRYPOINT = 256, OPT_HOSTNAME, OPT_ROOTFS, OPT_ACCEL, OPT_VERBOSE, OPT_FS_BACKEND, OPT_PULL };
        static const struct option longopts[] = {
                {"env", required_argument, NULL, 'e'},
                {"workdir", required_argument, NULL, 'w'},
                {"user", required_argument, NULL, 'u'},
                {"cpus", required_argument, NULL, 'c'},
                {"memory", required_argument, NULL, 'm'},
                {"volume", required_argument, NULL, 'v'},
                {"interactive", no_argument, NULL, 'i'},
                {"entrypoint", required_argument, NULL, OPT_ENTRYPOINT},
                {"hostname", required_argument, NULL, OPT_HOSTNAME},
                {"rootfs", required_argument, NULL, OPT_ROOTFS},
                {"accel", required_argument, NULL, OPT_ACCEL},
                {"fs-backend", required_argument, NULL, OPT_FS_BACKEND},
                {"pull", required_argument, NULL, OPT_PULL},
                {"verbose", no_argument, NULL, OPT_VERBOSE},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct msb_run_opts *o;
        msb_run_opts_new(&o);
        struct msb_error err = {0};
        bool verbose = false, have_rootfs = false;
        int c, status = 125;
        opterr = 0;
        /* '+': stop at the image name; what follows belongs to the command */
        while ((c = getopt_long(argc, argv, "+e:w:u:c:m:v:ih", longopts, NULL)) != -1) {
                switch (c) {
                case 'e':
                        if (strchr(optarg, '=')) {
                                if (msb_run_opts_add_env(o, optarg) < 0) {
                                        cli_error("--env '%s': expected KEY=VALUE", optarg);
                                        goto out;
                                }
                        } else if (!*optarg) {
                                cli_error("--env: empty variable name");
                                goto out;
                        } else if (getenv(optarg)) {
                                char *kv;
                                if (asprintf(&kv, "%s=%s", optarg, getenv(optarg)) < 0)
                                        goto out;
                                msb_run_opts_add_env(o, kv);
                                free(kv);
                        }
                        break;
                case 'w':
                        if (msb_run_opts_set_workdir(o, optarg) < 0) {
                                cli_error("--workdir '%s': must be an absolute path", optarg);
                                goto out;
                        }
                        break;
                case 'u':
                        if (msb_run_opts_set_user(o, optarg) < 0) {
                                cli_error("--user '%s': expected NAME, UID, NAME:GROUP or UID:GID", optarg);
                                goto out;
                        }
                        break;
                case 'c': {
                        unsigned n;
                        if (parse_uint(optarg, 64, &n) < 0 || msb_run_opts_set_cpus(o, n) < 0) {
                                cli_error("--cpus '%s': expected a number from 1 to 64", optarg);
                                goto out;
                        }
                        break;
                }
                case 'm': {
                        uint64_t bytes;
                        if (msb_parse_size(optarg, &bytes) < 0 ||
                            msb_run_opts_set_memory_mib(o, (unsigned)(bytes >> 20 > UINT_MAX ? UINT_MAX : bytes >> 20)) <
                                    0) {
                                cli_error("--memory '%s': expected a size from 128M to 64G, e.g. 512M or 1G", optarg);
                                goto out;
                        }
                        break;
                }
                case 'v':
                        if (parse_volume(o, optarg, &err) < 0) {
                                cli_error("%s", err.message);
                                goto out;
                        }
                        break;
                case 'i':
                        msb_run_opts_set_stdin(o, true);
                        break;
                case OPT_ENTRYPOINT:
                        msb_run_opts_set_entrypoint(o, optarg);
                        break;
                case OPT_HOSTNAME:
                        if (msb_run_opts_set_hostname(o, optarg) < 0) {
                                cli_error("--hostname '%s': use up to 63 letters, digits, '-' and '.'", optarg);
                                goto out;
                        }
                        break;
                case OPT_ROOTFS:
                        msb_run_opts_set_rootfs(o, optarg);
                        have_rootfs = true;
                        break;
                case OPT_PULL: {
                        enum msb_pull_policy pp;
                        if (!strcmp(optarg, "missing"))
                                pp = MSB_PULL_MISSING;
                        else if (!strcmp(optarg, "always"))
                                pp = MSB_PULL_ALWAYS;
                        else if (!strcmp(optarg, "never"))
                                pp = MSB_PULL_NEVER;
                        else {
                                cli_error("--pull '%s': expected always, missing or never", optarg);
                                goto out;
                        }
                        msb_run_opts_set_pull(o, pp);
                        break;
                }
                case OPT_FS_BACKEND:
                        if (msb_run_opts_set_fs_backend(o, optarg) < 0) {
                                cli_error("--fs-backend '%s': expected msb or virtiofsd", optarg);
                                goto out;
                        }
                        break;
                case OPT_ACCEL: {
                        enum msb_accel a;
                        if (msb_accel_parse(optarg, &a) < 0) {
                                cli_error("--accel '%s': expected auto, kvm or tcg", optarg);
                                goto out;
                        }
                        msb_run_opts_set_accel(o, a);
                        break;
                }
                case OPT_VERBOSE:
                        verbose = true;
                        break;
                case 'h':
                        run_usage(stdout);
                        status = 0;
                        goto out;
                case '?':
                default:
                        if (optopt)
                                cli_error("run: unknown option '-%c'; see 'msb run --help'", optopt);
                        else
                                cli_error("run: unknown option '%s'; see 'msb run --help'", argv[optind - 1]);
                        goto out;
                }
        }
        int i = optind;
        if (!have_rootfs) {
                if (i >= argc || !strcmp(argv[i], "--")) {
                        cli_error("run: no image given; usage: msb run [OPTIONS] IMAGE [--] [COMMAND...]");
                        goto out;
                }
                msb_run_opts_set_image(o, argv[i++]);
        }
        if (i < argc && !strcmp(argv[i], "--"))
                i++;
        char **cmd = calloc((size_t)(argc - i) + 1, sizeof(char *));
        if (!cmd)
                goto out;
        for (int k = i; k < argc; k++)
                cmd[k - i] = argv[k];
        msb_run_opts_set_command(o, cmd);
        free(cmd);

        struct msb_ctx *ctx;
        if (msb_ctx_new(&ctx, &err) < 0) {
                cli_error("%s", err.message);
                goto out;
        }
        if (verbose)
                msb_ctx_set_log(ctx, 1, cli_log, NULL);
        /* an image pulled on first use shows its layers on a terminal */
        if (isatty(2)) {
                msb_ctx_set_progress(ctx, true);
                msb_ctx_set_progress_fn(ctx, cli_pull_progress, NULL);
        }
        int st = 0;
        int r = msb_run(ctx, o, &st, &err);
        if (r < 0) {
                cli_error("%s", err.message);
                status = 125;
        } else {
                if (r == 1)
                        cli_error("%s", err.message);
                status = st;
        }
        msb_ctx_free(ctx);
out:
        msb_run_opts_free(o);
        return status;
}
