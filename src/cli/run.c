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
#include <sys/ioctl.h>

#include "cli.h"
#include "common/util.h"

static void run_usage(FILE *f, const char *verb)
{
        if (!strcmp(verb, "create"))
                fputs("Usage: msb create --name NAME [OPTIONS] IMAGE [--] [COMMAND [ARG...]]\n\n"
                      "Record a sandbox without starting it (msb start NAME boots it); without a command and with an\n"
                      "image that has none, it stays up with no main process, for msb exec.\n\n",
                      f);
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
              "      --net MODE        public (default: the internet and DNS, nothing private), private\n"
              "                        (adds RFC 1918, ULA, CGNAT), host (adds the host and its loopback\n"
              "                        services, at the gateway 10.0.2.2), all, or none (no network device)\n"
              "      --net-rule RULE   allow|deny[:egress|:ingress]@TARGET[:tcp|udp|icmp[:PORTS]], repeatable,\n"
              "                        first match wins; TARGET: IP, CIDR, domain, *.domain or a group\n"
              "                        (public private loopback link-local meta multicast host dns any)\n"
              "  -p, --publish [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp]  publish a guest port on the host\n"
              "                        (on 127.0.0.1 unless HOSTIP is given)\n"
              "  -i, --interactive     forward stdin to the command\n"
              "  -t, --tty             give the command a terminal (raw mode here; Ctrl-P Ctrl-Q detaches)\n"
              "  -d, --detach          start it in the background and print its name\n"
              "      --name NAME       keep the sandbox (and its disk) after the command ends\n"
              "      --rm              remove a named sandbox when it stops\n"
              "      --disk-size SIZE  its persistent writable layer (default 8G)\n"
              "      --max-duration S  stop the sandbox after S seconds\n"
              "      --idle-timeout S  stop it after S seconds without exec or client\n"
              "      --timeout S       kill the command after S seconds (exit status 124)\n"
              "      --entrypoint CMD  override the image's entrypoint\n"
              "      --hostname NAME   guest hostname (default msb-<id>)\n"
              "      --rootfs DIR      run a host directory as the root (read-only, overlay on top)\n"
              "      --accel MODE      auto|kvm|tcg (default auto, or $MSB_ACCEL)\n"
              "      --no-pool         boot a VM even when a pool (msb pool) has one ready\n"
              "      --pull WHEN       always, missing (default: pull the image if it is not stored) or never\n"
              "      --fs-backend NAME msb (default) or virtiofsd (root only, no host-side ro; or $MSB_FS_BACKEND)\n"
              "      --verbose         say what msb does (accelerator, kernel, runtime dir, each network\n"
              "                        policy decision)\n"
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

int cli_parse_uint(const char *s, unsigned long max, unsigned *ret)
{
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (!*s || *end || errno || v > max || s[0] == '-')
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

/* ---- the options of run and create: one function each, one table ---- */

enum {
        OPT_ENTRYPOINT = 256, OPT_HOSTNAME, OPT_ROOTFS, OPT_ACCEL, OPT_VERBOSE, OPT_FS_BACKEND, OPT_PULL,
        OPT_NAME, OPT_RM, OPT_DISK, OPT_MAXDUR, OPT_IDLE, OPT_TIMEOUT, OPT_NET, OPT_NET_RULE, OPT_NO_POOL,
};

/* Each applies one option (c is its getopt value, for options that share a
 * function); 0, or -1 after printing an error. */
typedef int run_flag_fn(struct run_cli *rc, int c, const char *arg);

static int f_env(struct run_cli *rc, int c, const char *arg)
{
        if (strchr(arg, '=')) {
                if (msb_run_opts_add_env(rc->o, arg) < 0) {
                        cli_error("--env '%s': expected KEY=VALUE", arg);
                        return -1;
                }
        } else if (!*arg) {
                cli_error("--env: empty variable name");
                return -1;
        } else if (getenv(arg)) {
                char *kv;
                if (asprintf(&kv, "%s=%s", arg, getenv(arg)) < 0)
                        return -1;
                msb_run_opts_add_env(rc->o, kv);
                free(kv);
        }
        return 0;
}

static int f_workdir(struct run_cli *rc, int c, const char *arg)
{
        if (msb_run_opts_set_workdir(rc->o, arg) < 0) {
                cli_error("--workdir '%s': must be an absolute path", arg);
                return -1;
        }
        return 0;
}

static int f_user(struct run_cli *rc, int c, const char *arg)
{
        if (msb_run_opts_set_user(rc->o, arg) < 0) {
                cli_error("--user '%s': expected NAME, UID, NAME:GROUP or UID:GID", arg);
                return -1;
        }
        return 0;
}

static int f_cpus(struct run_cli *rc, int c, const char *arg)
{
        unsigned n;
        if (cli_parse_uint(arg, 64, &n) < 0 || msb_run_opts_set_cpus(rc->o, n) < 0) {
                cli_error("--cpus '%s': expected a number from 1 to 64", arg);
                return -1;
        }
        return 0;
}

static int f_memory(struct run_cli *rc, int c, const char *arg)
{
        uint64_t bytes;
        if (msb_parse_size(arg, &bytes) < 0 ||
            msb_run_opts_set_memory_mib(rc->o, (unsigned)(bytes >> 20 > UINT_MAX ? UINT_MAX : bytes >> 20)) < 0) {
                cli_error("--memory '%s': expected a size from 128M to 64G, e.g. 512M or 1G", arg);
                return -1;
        }
        return 0;
}

static int f_volume(struct run_cli *rc, int c, const char *arg)
{
        struct msb_error err = {0};
        if (parse_volume(rc->o, arg, &err) < 0) {
                cli_error("%s", err.message);
                return -1;
        }
        return 0;
}

static int f_switch(struct run_cli *rc, int c, const char *arg)
{
        switch (c) {
        case 'i':
                msb_run_opts_set_stdin(rc->o, true);
                rc->interactive = true;
                break;
        case 't':
                rc->tty = true;
                break;
        case 'd':
                rc->detach = true;
                break;
        case OPT_RM:
                rc->rm = true;
                break;
        case OPT_NO_POOL:
                msb_run_opts_set_no_pool(rc->o, true);
                break;
        case OPT_VERBOSE:
                rc->verbose = true;
                break;
        }
        return 0;
}

static int f_name(struct run_cli *rc, int c, const char *arg)
{
        struct msb_error err = {0};
        if (msb_sandbox_name_check(arg, &err) < 0) {
                cli_error("--name: %s", err.message);
                return -1;
        }
        rc->name = arg;
        return 0;
}

static int f_disk(struct run_cli *rc, int c, const char *arg)
{
        uint64_t bytes;
        if (msb_parse_size(arg, &bytes) < 0 || bytes == 0 || msb_run_opts_set_disk_size(rc->o, bytes) < 0) {
                cli_error("--disk-size '%s': expected a size from 64M to 16T, e.g. 8G", arg);
                return -1;
        }
        rc->disk_set = true;
        return 0;
}

static int f_seconds(struct run_cli *rc, int c, const char *arg)
{
        unsigned n;
        if (cli_parse_uint(arg, 365u * 86400u, &n) < 0 || n == 0) {
                cli_error("--%s '%s': expected a number of seconds from 1 to 31536000",
                          c == OPT_MAXDUR ? "max-duration" : c == OPT_IDLE ? "idle-timeout" : "timeout", arg);
                return -1;
        }
        if (c == OPT_MAXDUR)
                msb_run_opts_set_max_duration(rc->o, n);
        else if (c == OPT_IDLE)
                msb_run_opts_set_idle_timeout(rc->o, n);
        else {
                rc->timeout = n;
                msb_run_opts_set_timeout(rc->o, n);
        }
        rc->lifetime_set |= c != OPT_TIMEOUT;
        return 0;
}

static int f_entrypoint(struct run_cli *rc, int c, const char *arg)
{
        msb_run_opts_set_entrypoint(rc->o, arg);
        return 0;
}

static int f_hostname(struct run_cli *rc, int c, const char *arg)
{
        if (msb_run_opts_set_hostname(rc->o, arg) < 0) {
                cli_error("--hostname '%s': use up to 63 letters, digits, '-' and '.'", arg);
                return -1;
        }
        return 0;
}

static int f_rootfs(struct run_cli *rc, int c, const char *arg)
{
        msb_run_opts_set_rootfs(rc->o, arg);
        rc->rootfs = true;
        return 0;
}

static int f_pull(struct run_cli *rc, int c, const char *arg)
{
        enum msb_pull_policy pp;
        if (!strcmp(arg, "missing"))
                pp = MSB_PULL_MISSING;
        else if (!strcmp(arg, "always"))
                pp = MSB_PULL_ALWAYS;
        else if (!strcmp(arg, "never"))
                pp = MSB_PULL_NEVER;
        else {
                cli_error("--pull '%s': expected always, missing or never", arg);
                return -1;
        }
        msb_run_opts_set_pull(rc->o, pp);
        return 0;
}

static int f_fs_backend(struct run_cli *rc, int c, const char *arg)
{
        if (msb_run_opts_set_fs_backend(rc->o, arg) < 0) {
                cli_error("--fs-backend '%s': expected msb or virtiofsd", arg);
                return -1;
        }
        return 0;
}

static int f_accel(struct run_cli *rc, int c, const char *arg)
{
        enum msb_accel a;
        if (msb_accel_parse(arg, &a) < 0) {
                cli_error("--accel '%s': expected auto, kvm or tcg", arg);
                return -1;
        }
        msb_run_opts_set_accel(rc->o, a);
        return 0;
}

static int f_net(struct run_cli *rc, int c, const char *arg)
{
        struct msb_error err = {0};
        if ((c == OPT_NET  ? msb_run_opts_set_net(rc->o, arg, &err)
             : c == 'p'    ? msb_run_opts_add_port(rc->o, arg, &err)
                           : msb_run_opts_add_net_rule(rc->o, arg, &err)) < 0) {
                cli_error("%s", err.message);
                return -1;
        }
        return 0;
}

static const struct run_flag {
        struct option opt; /* .val: the short option, or an OPT_* past 255 */
        run_flag_fn *apply;
} run_flags[] = {
        {{"env", required_argument, NULL, 'e'}, f_env},
        {{"workdir", required_argument, NULL, 'w'}, f_workdir},
        {{"user", required_argument, NULL, 'u'}, f_user},
        {{"cpus", required_argument, NULL, 'c'}, f_cpus},
        {{"memory", required_argument, NULL, 'm'}, f_memory},
        {{"volume", required_argument, NULL, 'v'}, f_volume},
        {{"interactive", no_argument, NULL, 'i'}, f_switch},
        {{"tty", no_argument, NULL, 't'}, f_switch},
        {{"detach", no_argument, NULL, 'd'}, f_switch},
        {{"name", required_argument, NULL, OPT_NAME}, f_name},
        {{"rm", no_argument, NULL, OPT_RM}, f_switch},
        {{"disk-size", required_argument, NULL, OPT_DISK}, f_disk},
        {{"max-duration", required_argument, NULL, OPT_MAXDUR}, f_seconds},
        {{"idle-timeout", required_argument, NULL, OPT_IDLE}, f_seconds},
        {{"timeout", required_argument, NULL, OPT_TIMEOUT}, f_seconds},
        {{"entrypoint", required_argument, NULL, OPT_ENTRYPOINT}, f_entrypoint},
        {{"hostname", required_argument, NULL, OPT_HOSTNAME}, f_hostname},
        {{"rootfs", required_argument, NULL, OPT_ROOTFS}, f_rootfs},
        {{"accel", required_argument, NULL, OPT_ACCEL}, f_accel},
        {{"fs-backend", required_argument, NULL, OPT_FS_BACKEND}, f_fs_backend},
        {{"pull", required_argument, NULL, OPT_PULL}, f_pull},
        {{"verbose", no_argument, NULL, OPT_VERBOSE}, f_switch},
        {{"net", required_argument, NULL, OPT_NET}, f_net},
        {{"net-rule", required_argument, NULL, OPT_NET_RULE}, f_net},
        {{"publish", required_argument, NULL, 'p'}, f_net},
        {{"no-pool", no_argument, NULL, OPT_NO_POOL}, f_switch},
};

static const struct run_flag *run_flag_find(int c)
{
        for (size_t i = 0; i < ARRAY_SIZE(run_flags); i++)
                if (run_flags[i].opt.val == c)
                        return &run_flags[i];
        return NULL;
}

/* After the options: IMAGE unless --rootfs, then the command; a terminal's
 * TERM and size for -t. */
static int parse_run_operands(const char *verb, int argc, char **argv, int i, struct run_cli *rc)
{
        struct msb_run_opts *o = rc->o;
        if (!rc->rootfs) {
                if (i >= argc || !strcmp(argv[i], "--")) {
                        cli_error("%s: no image given; usage: msb %s [OPTIONS] IMAGE [--] [COMMAND...]", verb, verb);
                        return -1;
                }
                msb_run_opts_set_image(o, argv[i++]);
        }
        if (i < argc && !strcmp(argv[i], "--"))
                i++;
        msb_run_opts_set_command(o, argv + i);
        rc->has_command = i < argc;
        if (rc->tty) {
                /* the guest's programs draw for the terminal we have */
                const char *term = getenv("TERM");
                char *kv;
                if (asprintf(&kv, "TERM=%s", term && *term ? term : "xterm") >= 0) {
                        msb_run_opts_add_env(o, kv);
                        free(kv);
                }
                struct winsize ws = {0};
                if (ioctl(0, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col)
                        ws = (struct winsize){.ws_row = 24, .ws_col = 80};
                msb_run_opts_set_tty(o, true, ws.ws_row, ws.ws_col);
        }
        return 0;
}

/* Options shared by run and create.  Returns 0, 1 after --help, -1 after
 * printing an error. */
static int parse_run_args(const char *verb, int argc, char **argv, struct run_cli *rc)
{
        struct option longopts[ARRAY_SIZE(run_flags) + 2];
        for (size_t i = 0; i < ARRAY_SIZE(run_flags); i++)
                longopts[i] = run_flags[i].opt;
        longopts[ARRAY_SIZE(run_flags)] = (struct option){"help", no_argument, NULL, 'h'};
        longopts[ARRAY_SIZE(run_flags) + 1] = (struct option){0};
        struct msb_error err = {0};
        int c;
        opterr = 0;
        /* '+': stop at the image name; what follows belongs to the command */
        while ((c = getopt_long(argc, argv, "+e:w:u:c:m:v:p:itdh", longopts, NULL)) != -1) {
                const struct run_flag *f = run_flag_find(c);
                if (f) {
                        if (f->apply(rc, c, optarg) < 0)
                                return -1;
                } else if (c == 'h') {
                        run_usage(stdout, verb);
                        return 1;
                } else {
                        if (optopt)
                                cli_error("%s: unknown option '-%c'; see 'msb %s --help'", verb, optopt, verb);
                        else
                                cli_error("%s: unknown option '%s'; see 'msb %s --help'", verb, argv[optind - 1], verb);
                        return -1;
                }
        }
        if (msb_run_opts_check(rc->o, &err) < 0) {
                cli_error("%s", err.message);
                return -1;
        }
        return parse_run_operands(verb, argc, argv, optind, rc);
}

static struct msb_ctx *run_ctx(bool verbose)
{
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return NULL;
        /* warnings always, the rest with --verbose */
        msb_ctx_set_log(ctx, verbose ? 1 : MSB_LOG_WARN, cli_log, NULL);
        /* an image pulled on first use shows its layers on a terminal */
        if (isatty(2)) {
                msb_ctx_set_progress(ctx, true);
                msb_ctx_set_progress_fn(ctx, cli_pull_progress, NULL);
        }
        return ctx;
}

/* The one-shot run, in this process: as fast as msb can start a command. */
static int run_ephemeral(struct run_cli *rc)
{
        struct msb_ctx *ctx = run_ctx(rc->verbose);
        if (!ctx)
                return 125;
        struct msb_error err = {0};
        int st = 0, status;
        int r = msb_run(ctx, rc->o, &st, &err);
        if (r < 0) {
                cli_error("%s", err.message);
                status = 125;
        } else {
                if (r == 1)
                        cli_error("%s", err.message);
                status = st;
        }
        msb_ctx_free(ctx);
        return status;
}

/* run -d, -t, --name: a sandbox with a supervisor, attached to unless -d. */
static int run_supervised(struct run_cli *rc)
{
        struct msb_ctx *ctx = run_ctx(rc->verbose);
        if (!ctx)
                return 125;
        struct msb_error err = {0};
        char gen[32];
        const char *name = rc->name;
        if (!name) {
                /* an unnamed sandbox is ephemeral: memory-backed, removed when it stops */
                msb_sandbox_name_random(gen);
                name = gen;
                msb_run_opts_set_disk_size(rc->o, 0);
                rc->rm = true;
        }
        msb_run_opts_set_auto_remove(rc->o, rc->rm);
        int status = 125;
        if (msb_sandbox_create(ctx, name, rc->o, &err) < 0 ||
            msb_sandbox_start(ctx, name, rc->detach ? 0 : MSB_START_HOLD, &err) < 0) {
                cli_error("%s", err.message);
                /* a sandbox that never ran is not kept */
                struct msb_error e2 = {0};
                if (err.code != EEXIST)
                        msb_sandbox_remove(ctx, name, true, &e2);
                goto out;
        }
        if (rc->detach) {
                printf("%s\n", name);
                status = 0;
                goto out;
        }
        status = cli_attach(ctx, name, rc->interactive, rc->tty, rc->timeout);
out:
        msb_ctx_free(ctx);
        return status;
}

int cmd_run(int argc, char **argv)
{
        struct run_cli rc = {0};
        msb_run_opts_new(&rc.o);
        int r = parse_run_args("run", argc, argv, &rc), status = r == 1 ? 0 : 125;
        if (r == 0) {
                if (rc.rm && !rc.name)
                        rc.rm = false; /* an unnamed run is removed anyway */
                if ((rc.disk_set || rc.lifetime_set) && !rc.name && !rc.detach)
                        cli_error("run: --disk-size, --max-duration and --idle-timeout are for sandboxes that live: "
                                  "add --name NAME or -d");
                else if (rc.name || rc.detach || rc.tty)
                        status = run_supervised(&rc);
                else
                        status = run_ephemeral(&rc);
        }
        msb_run_opts_free(rc.o);
        return status;
}

int cmd_create(int argc, char **argv)
{
        struct run_cli rc = {0};
        msb_run_opts_new(&rc.o);
        int r = parse_run_args("create", argc, argv, &rc), status = r == 1 ? 0 : 125;
        if (r == 0 && !rc.name)
                cli_error("create: --name NAME is required");
        else if (r == 0 && (rc.detach || rc.timeout))
                cli_error("create: -d and --timeout are for run and exec");
        else if (r == 0) {
                struct msb_ctx *ctx = run_ctx(rc.verbose);
                struct msb_error err = {0};
                msb_run_opts_set_auto_remove(rc.o, rc.rm);
                if (ctx && msb_sandbox_create(ctx, rc.name, rc.o, &err) < 0)
                        cli_error("%s", err.message);
                else if (ctx) {
                        printf("%s\n", rc.name);
                        status = 0;
                }
                msb_ctx_free(ctx);
        }
        msb_run_opts_free(rc.o);
        return status;
}
