/* SPDX-License-Identifier: Apache-2.0 */
/* Sandboxes that live: start, stop, restart, kill, wait, ls, inspect, logs,
 * rm, exec, attach (run and create are in run.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common/util.h"

#define DETACH_KEYS "\x10\x11" /* Ctrl-P Ctrl-Q, as docker */

/* ---- the terminal ---- */

static struct termios saved_tio;
static bool tio_saved;

static void tty_restore(void)
{
        if (tio_saved) {
                tcsetattr(0, TCSADRAIN, &saved_tio);
                tio_saved = false;
        }
}

/* Raw mode, as a local program would have it: every key goes to the guest's
 * terminal, whose line discipline makes Ctrl-C, Ctrl-Z and Ctrl-\ signals
 * for the foreground job there. */
static void tty_raw(void)
{
        if (!isatty(0) || tcgetattr(0, &saved_tio) < 0)
                return;
        struct termios t = saved_tio;
        cfmakeraw(&t);
        if (tcsetattr(0, TCSADRAIN, &t) == 0) {
                tio_saved = true;
                atexit(tty_restore);
        }
}

/* The process's streams here until it ends: its status, 125 on an msb
 * failure (*lost: the connection ended without one). */
static int relay(struct msb_proc *p, const char *name, bool forward_stdin, bool tty, unsigned timeout, bool detachable,
                 bool *lost)
{
        /* raw mode only where keys go to the guest: otherwise Ctrl-C must
         * stay a signal here, which the relay forwards */
        bool raw = tty && forward_stdin && isatty(0);
        struct msb_relay_opts ro = {
                .in_fd = forward_stdin ? 0 : -1,
                .out_fd = 1,
                .err_fd = 2,
                .tty_fd = tty && isatty(0) ? 0 : -1,
                .detach_keys = raw && detachable ? DETACH_KEYS : NULL,
                .timeout_ms = timeout * 1000u,
        };
        if (raw)
                tty_raw();
        struct msb_error err = {0};
        int st = 0;
        int r = msb_proc_relay(p, &ro, &st, &err);
        tty_restore();
        if (r == MSB_DETACHED) {
                fprintf(stderr, "msb: detached from %s (msb attach %s to come back)\n", name, name);
                return 0;
        }
        if (r < 0) {
                cli_error("%s", err.message);
                if (lost)
                        *lost = err.code == ECONNRESET;
                return 125;
        }
        if (r == 1)
                cli_error("%s", err.message);
        if (st == 124 && timeout)
                cli_error("%s: timed out after %u s; the command was killed", name, timeout);
        return st;
}

int cli_attach(struct msb_ctx *ctx, const char *name, bool forward_stdin, bool tty, unsigned timeout)
{
        struct msb_proc *p;
        struct msb_error err = {0};
        if (msb_sandbox_attach(ctx, name, forward_stdin, &p, &err) < 0) {
                cli_error("%s", err.message);
                return 125;
        }
        bool lost = false;
        int st = relay(p, name, forward_stdin, tty, timeout, true, &lost);
        msb_proc_free(p);
        if (lost) {
                /* the connection ended without an exit status: the state has it */
                int ws;
                struct msb_error e2 = {0};
                if (msb_sandbox_wait(ctx, name, &ws, &e2) == 0)
                        return ws;
        }
        return st;
}

/* ---- small helpers ---- */

/* One-name-or-more commands share this shape: options, then names. */
struct verb {
        const char *name, *usage, *opts;
        const struct option *longopts;
};

static int usage_error(const struct verb *v, const char *what)
{
        cli_error("%s: %s; usage: %s", v->name, what, v->usage);
        return 125;
}

static int unknown_option(const struct verb *v, char **argv)
{
        if (optopt)
                cli_error("%s: unknown option '-%c'; see 'msb %s --help'", v->name, optopt, v->name);
        else
                cli_error("%s: unknown option '%s'; see 'msb %s --help'", v->name, argv[optind - 1], v->name);
        return 125;
}

static void fmt_age(int64_t t, char *out, size_t n)
{
        int64_t d = time(NULL) - t;
        if (t <= 0)
                snprintf(out, n, "-");
        else if (d < 60)
                snprintf(out, n, "%llds ago", (long long)(d < 0 ? 0 : d));
        else if (d < 3600)
                snprintf(out, n, "%lldm ago", (long long)d / 60);
        else if (d < 86400)
                snprintf(out, n, "%lldh ago", (long long)d / 3600);
        else
                snprintf(out, n, "%lldd ago", (long long)d / 86400);
}

/* ---- start, stop, restart, kill, wait, rm ---- */

/* The names after the options, each through fn (which prints what it
 * has to say on success); a failure is reported and makes the status 125,
 * and the next name is still tried, as docker does. */
static int each_name(const struct verb *v, int argc, char **argv, void *arg,
                     int (*fn)(struct msb_ctx *ctx, const char *name, void *arg, struct msb_error *err))
{
        if (optind >= argc)
                return usage_error(v, "no sandbox named");
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        int status = 0;
        for (int i = optind; i < argc; i++) {
                struct msb_error err = {0};
                if (fn(ctx, argv[i], arg, &err) < 0) {
                        cli_error("%s", err.message);
                        status = 125;
                }
                fflush(stdout);
        }
        msb_ctx_free(ctx);
        return status;
}


int cmd_start(int argc, char **argv)
{
        static const struct option lo[] = {{"attach", no_argument, NULL, 'a'},
                                           {"interactive", no_argument, NULL, 'i'},
                                           {"help", no_argument, NULL, 'h'},
                                           {0}};
        const struct verb v = {"start", "msb start [-a] [-i] NAME...", "+aih", lo};
        bool attach = false, inter = false;
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, v.opts, lo, NULL)) != -1) {
                if (c == 'a')
                        attach = true;
                else if (c == 'i')
                        inter = true;
                else if (c == 'h') {
                        printf("Usage: %s\n\nBoot stopped sandboxes.\n\n"
                               "  -a, --attach       attach to the main process (Ctrl-P Ctrl-Q detaches)\n"
                               "  -i, --interactive  with -a, forward stdin\n",
                               v.usage);
                        return 0;
                } else
                        return unknown_option(&v, argv);
        }
        if (optind >= argc)
                return usage_error(&v, "no sandbox named");
        if (attach && argc - optind > 1)
                return usage_error(&v, "-a takes one sandbox");
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        int status = 0;
        for (int i = optind; i < argc; i++) {
                struct msb_error err = {0};
                if (msb_sandbox_start(ctx, argv[i], attach ? MSB_START_HOLD : 0, &err) < 0) {
                        cli_error("%s", err.message);
                        status = 125;
                        continue;
                }
                if (attach) {
                        struct msb_sandbox_info *in = NULL;
                        bool tty = msb_sandbox_get(ctx, argv[i], &in, &err) == 0 && in->tty;
                        msb_sandbox_info_free(in, in ? 1 : 0);
                        status = cli_attach(ctx, argv[i], inter, tty, 0);
                } else
                        printf("%s\n", argv[i]);
        }
        msb_ctx_free(ctx);
        return status;
}

struct stop_args {
        unsigned grace_ms;
        bool restart;
};

static int stop_one(struct msb_ctx *ctx, const char *name, void *arg, struct msb_error *err)
{
        const struct stop_args *a = arg;
        int r = msb_sandbox_stop(ctx, name, a->grace_ms, err);
        if (r >= 0 && a->restart)
                r = msb_sandbox_start(ctx, name, 0, err);
        if (r >= 0)
                printf("%s\n", name);
        return r;
}

static int stop_like(int argc, char **argv, bool restart)
{
        static const struct option lo[] = {{"time", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'}, {0}};
        const struct verb v = {restart ? "restart" : "stop",
                               restart ? "msb restart [-t SECONDS] NAME..." : "msb stop [-t SECONDS] NAME...", "+t:h",
                               lo};
        unsigned grace = 10;
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, v.opts, lo, NULL)) != -1) {
                if (c == 't') {
                        if (cli_parse_uint(optarg, 86400, &grace) < 0) {
                                cli_error("%s: -t '%s': expected seconds from 0 to 86400", v.name, optarg);
                                return 125;
                        }
                } else if (c == 'h') {
                        printf("Usage: %s\n\n%s\n\n  -t, --time SECONDS  grace period after SIGTERM (default 10); "
                               "then everything is stopped\n",
                               v.usage,
                               restart ? "Stop sandboxes, then start them again (their disks are kept)."
                                       : "Send SIGTERM to each sandbox's main process, then stop its VM after the "
                                         "grace period; the guest's disks are synced first.");
                        return 0;
                } else
                        return unknown_option(&v, argv);
        }
        struct stop_args a = {.grace_ms = grace * 1000, .restart = restart};
        return each_name(&v, argc, argv, &a, stop_one);
}

int cmd_stop(int argc, char **argv)
{
        return stop_like(argc, argv, false);
}

int cmd_restart(int argc, char **argv)
{
        return stop_like(argc, argv, true);
}

static int kill_one(struct msb_ctx *ctx, const char *name, void *arg, struct msb_error *err)
{
        int r = msb_sandbox_kill(ctx, name, *(int *)arg, err);
        if (r >= 0)
                printf("%s\n", name);
        return r;
}

int cmd_kill(int argc, char **argv)
{
        static const struct option lo[] = {{"signal", required_argument, NULL, 's'},
                                           {"help", no_argument, NULL, 'h'},
                                           {0}};
        const struct verb v = {"kill", "msb kill [-s SIGNAL] NAME...", "+s:h", lo};
        int sig = SIGKILL, c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, v.opts, lo, NULL)) != -1) {
                if (c == 's') {
                        if ((sig = msb_signal_parse(optarg)) < 0) {
                                cli_error("kill: signal '%s': expected a name (TERM, SIGHUP, ...) or a number 1-64",
                                          optarg);
                                return 125;
                        }
                } else if (c == 'h') {
                        printf("Usage: %s\n\nSend a signal (default KILL) to each sandbox's main process.\n", v.usage);
                        return 0;
                } else
                        return unknown_option(&v, argv);
        }
        return each_name(&v, argc, argv, &sig, kill_one);
}

static int wait_one(struct msb_ctx *ctx, const char *name, void *arg, struct msb_error *err)
{
        int st;
        int r = msb_sandbox_wait(ctx, name, &st, err);
        if (r >= 0)
                printf("%d\n", st);
        return r;
}

int cmd_wait(int argc, char **argv)
{
        static const struct option lo[] = {{"help", no_argument, NULL, 'h'}, {0}};
        const struct verb v = {"wait", "msb wait NAME...", "+h", lo};
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, v.opts, lo, NULL)) != -1) {
                if (c == 'h') {
                        printf("Usage: %s\n\nWait until each sandbox stops, then print its main process's exit "
                               "status.\n",
                               v.usage);
                        return 0;
                }
                return unknown_option(&v, argv);
        }
        return each_name(&v, argc, argv, NULL, wait_one);
}

static int rm_one(struct msb_ctx *ctx, const char *name, void *arg, struct msb_error *err)
{
        int r = msb_sandbox_remove(ctx, name, *(bool *)arg, err);
        if (r >= 0)
                printf("%s\n", name);
        return r;
}

int cmd_rm(int argc, char **argv)
{
        static const struct option lo[] = {{"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
        const struct verb v = {"rm", "msb rm [-f] NAME...", "+fh", lo};
        bool force = false;
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, v.opts, lo, NULL)) != -1) {
                if (c == 'f')
                        force = true;
                else if (c == 'h') {
                        printf("Usage: %s\n\nRemove sandboxes with their disks and logs.\n\n"
                               "  -f, --force  stop a running one first (at once, no grace period)\n",
                               v.usage);
                        return 0;
                } else
                        return unknown_option(&v, argv);
        }
        return each_name(&v, argc, argv, &force, rm_one);
}

/* ---- ls, inspect ---- */

static void json_str(FILE *f, const char *s)
{
        fputc('"', f);
        for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;
                if (ch == '"' || ch == '\\')
                        fprintf(f, "\\%c", ch);
                else if (ch < 0x20)
                        fprintf(f, "\\u%04x", ch);
                else
                        fputc(ch, f);
        }
        fputc('"', f);
}

int cmd_ls(int argc, char **argv)
{
        enum { OPT_FORMAT = 256 };
        static const struct option lo[] = {{"all", no_argument, NULL, 'a'},
                                           {"quiet", no_argument, NULL, 'q'},
                                           {"format", required_argument, NULL, OPT_FORMAT},
                                           {"help", no_argument, NULL, 'h'},
                                           {0}};
        const struct verb v = {"ls", "msb ls [-a] [-q] [--format table|json]", "+aqh", lo};
        bool all = false, quiet = false, json = false;
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, v.opts, lo, NULL)) != -1) {
                if (c == 'a')
                        all = true;
                else if (c == 'q')
                        quiet = true;
                else if (c == OPT_FORMAT) {
                        if (!strcmp(optarg, "json"))
                                json = true;
                        else if (strcmp(optarg, "table")) {
                                cli_error("ls: --format '%s': expected table or json", optarg);
                                return 125;
                        }
                } else if (c == 'h') {
                        printf("Usage: %s\n\nList running sandboxes (-a: all of them).\n\n"
                               "  -a, --all       also created, stopped and crashed ones\n"
                               "  -q, --quiet     names only\n"
                               "      --format F  table (default) or json\n",
                               v.usage);
                        return 0;
                } else
                        return unknown_option(&v, argv);
        }
        if (optind < argc)
                return usage_error(&v, "unexpected argument");
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        struct msb_sandbox_info *in;
        size_t n;
        struct msb_error err = {0};
        if (msb_sandbox_list(ctx, &in, &n, &err) < 0) {
                cli_error("%s", err.message);
                msb_ctx_free(ctx);
                return 125;
        }
        if (json)
                printf("[");
        else if (!quiet)
                printf("%-20s %-24s %-9s %-5s %-12s %-5s %-7s %s\n", "NAME", "IMAGE", "STATUS", "EXIT", "CREATED", "CPUS",
                       "MEMORY", "COMMAND");
        bool first = true;
        for (size_t i = 0; i < n; i++) {
                if (!all && strcmp(in[i].status, "running"))
                        continue;
                if (quiet && !json) {
                        printf("%s\n", in[i].name);
                        continue;
                }
                if (json) {
                        printf("%s\n  {\"name\": ", first ? "" : ",");
                        json_str(stdout, in[i].name);
                        printf(", \"image\": ");
                        json_str(stdout, in[i].image);
                        printf(", \"command\": ");
                        json_str(stdout, in[i].command);
                        printf(", \"status\": \"%s\", \"exit_code\": ", in[i].status);
                        if (in[i].exit_code >= 0 && strcmp(in[i].status, "running"))
                                printf("%d", in[i].exit_code);
                        else
                                printf("null");
                        printf(", \"created\": %lld, \"started\": %lld, \"finished\": %lld, \"cpus\": %u, "
                               "\"memory_mib\": %u, \"pid\": %d}",
                               (long long)in[i].created, (long long)in[i].started, (long long)in[i].finished,
                               in[i].cpus, in[i].memory_mib, in[i].pid);
                        first = false;
                        continue;
                }
                char age[32], ex[8] = "-", mem[16];
                fmt_age(in[i].created, age, sizeof(age));
                if (in[i].exit_code >= 0 && strcmp(in[i].status, "running") && strcmp(in[i].status, "created"))
                        snprintf(ex, sizeof(ex), "%d", in[i].exit_code);
                snprintf(mem, sizeof(mem), "%uM", in[i].memory_mib);
                printf("%-20s %-24.24s %-9s %-5s %-12s %-5u %-7s %.40s\n", in[i].name, in[i].image, in[i].status, ex,
                       age, in[i].cpus, mem, in[i].command);
        }
        if (json)
                printf("%s]\n", first ? "" : "\n");
        msb_sandbox_info_free(in, n);
        msb_ctx_free(ctx);
        return 0;
}

int cmd_inspect(int argc, char **argv)
{
        static const struct option lo[] = {{"help", no_argument, NULL, 'h'}, {0}};
        const struct verb v = {"inspect", "msb inspect NAME...", "+h", lo};
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, v.opts, lo, NULL)) != -1) {
                if (c == 'h') {
                        printf("Usage: %s\n\nPrint sandboxes' configuration and state as a JSON array.\n", v.usage);
                        return 0;
                }
                return unknown_option(&v, argv);
        }
        if (optind >= argc)
                return usage_error(&v, "no sandbox named");
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        int status = 0;
        bool first = true;
        printf("[");
        for (int i = optind; i < argc; i++) {
                struct msb_error err = {0};
                char *js;
                if (msb_sandbox_inspect(ctx, argv[i], &js, &err) < 0) {
                        cli_error("%s", err.message);
                        status = 125;
                        continue;
                }
                printf("%s\n%s", first ? "" : ",", js);
                first = false;
                free(js);
        }
        printf("%s]\n", first ? "" : "\n");
        msb_ctx_free(ctx);
        return status;
}

/* ---- exec, attach ---- */

/* What exec parsed. */
struct exec_cli {
        bool inter, tty, detach;
        const char *wd, *user;
        unsigned timeout;
        char **env; /* NULL-terminated, owned */
};

/* -e K=V, or -e K with the host's value (nothing if unset). */
static int exec_add_env(struct exec_cli *x, const char *arg)
{
        char *kv = NULL;
        if (strchr(arg, '=') && arg[0] != '=')
                kv = xstrdup(arg);
        else if (*arg && !strchr(arg, '=') && getenv(arg) && asprintf(&kv, "%s=%s", arg, getenv(arg)) < 0)
                kv = NULL;
        else if (!*arg || arg[0] == '=') {
                cli_error("exec: --env '%s': expected KEY=VALUE", arg);
                return -1;
        }
        if (kv)
                strv_push_take(&x->env, kv);
        return 0;
}

static void exec_help(const char *usage)
{
        printf("Usage: %s\n\nRun a command in a running sandbox.\n\n"
               "  -i, --interactive  forward stdin\n"
               "  -t, --tty          give it a terminal\n"
               "  -d, --detach       start it and return\n"
               "  -e, --env K=V      set a variable (on top of the sandbox's)\n"
               "  -w, --workdir DIR  working directory\n"
               "  -u, --user USER    user[:group] or uid[:gid]\n"
               "      --timeout S    kill it after S seconds (exit status 124)\n",
               usage);
}

/* 0, or the exit status to return (0 after --help). */
static int parse_exec_args(int argc, char **argv, struct exec_cli *x)
{
        enum { OPT_TIMEOUT = 256 };
        static const struct option lo[] = {{"interactive", no_argument, NULL, 'i'},
                                           {"tty", no_argument, NULL, 't'},
                                           {"detach", no_argument, NULL, 'd'},
                                           {"env", required_argument, NULL, 'e'},
                                           {"workdir", required_argument, NULL, 'w'},
                                           {"user", required_argument, NULL, 'u'},
                                           {"timeout", required_argument, NULL, OPT_TIMEOUT},
                                           {"help", no_argument, NULL, 'h'},
                                           {0}};
        const struct verb v = {"exec", "msb exec [OPTIONS] NAME COMMAND [ARG...]", "+itde:w:u:h", lo};
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, v.opts, lo, NULL)) != -1) {
                switch (c) {
                case 'i':
                        x->inter = true;
                        break;
                case 't':
                        x->tty = true;
                        break;
                case 'd':
                        x->detach = true;
                        break;
                case 'e':
                        if (exec_add_env(x, optarg) < 0)
                                return 125;
                        break;
                case 'w':
                        if (optarg[0] != '/') {
                                cli_error("exec: --workdir '%s': must be an absolute path", optarg);
                                return 125;
                        }
                        x->wd = optarg;
                        break;
                case 'u':
                        x->user = optarg;
                        break;
                case OPT_TIMEOUT:
                        if (cli_parse_uint(optarg, 365u * 86400u, &x->timeout) < 0 || !x->timeout) {
                                cli_error("exec: --timeout '%s': expected a number of seconds from 1 to 31536000",
                                          optarg);
                                return 125;
                        }
                        break;
                case 'h':
                        exec_help(v.usage);
                        return -1;
                default:
                        return unknown_option(&v, argv);
                }
        }
        if (argc - optind < 2)
                return usage_error(&v, optind >= argc ? "no sandbox named" : "no command given");
        if (x->detach && (x->inter || x->tty)) {
                cli_error("exec: -d cannot be combined with -i or -t");
                return 125;
        }
        return 0;
}

/* With -t: TERM from this terminal, first, so that an explicit -e TERM=
 * wins; the terminal's size. */
static void exec_tty(struct exec_cli *x, struct winsize *ws)
{
        const char *term = getenv("TERM");
        char *kv;
        if (asprintf(&kv, "TERM=%s", term && *term ? term : "xterm") >= 0) {
                size_t n = strv_len(x->env);
                x->env = xrealloc(x->env, (n + 2) * sizeof(*x->env));
                memmove(x->env + 1, x->env, n * sizeof(*x->env));
                x->env[0] = kv;
                x->env[n + 1] = NULL;
        }
        if (ioctl(0, TIOCGWINSZ, ws) < 0 || !ws->ws_row || !ws->ws_col)
                *ws = (struct winsize){.ws_row = 24, .ws_col = 80};
}

int cmd_exec(int argc, char **argv)
{
        struct exec_cli x = {0};
        int status = parse_exec_args(argc, argv, &x);
        if (status) {
                strv_free(x.env);
                return status < 0 ? 0 : status;
        }
        status = 125;
        const char *name = argv[optind];
        struct winsize ws = {0};
        if (x.tty)
                exec_tty(&x, &ws);
        struct msb_exec_opts eo = {.argv = argv + optind + 1, .env = x.env, .workdir = x.wd, .user = x.user,
                                   .stdin = x.inter, .tty = x.tty, .rows = ws.ws_row, .cols = ws.ws_col};
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                goto out;
        struct msb_error err = {0};
        struct msb_proc *p = NULL;
        int st = 0;
        int r = msb_sandbox_exec(ctx, name, &eo, &p, &st, &err);
        if (r < 0)
                cli_error("%s", err.message);
        else if (r == 1) {
                cli_error("%s", err.message);
                status = st;
        } else if (x.detach)
                status = 0;
        else
                status = relay(p, name, x.inter, x.tty, x.timeout, false, NULL);
        msb_proc_free(p);
        msb_ctx_free(ctx);
out:
        strv_free(x.env);
        return status;
}

int cmd_attach(int argc, char **argv)
{
        enum { OPT_NO_STDIN = 256 };
        static const struct option lo[] = {{"no-stdin", no_argument, NULL, OPT_NO_STDIN},
                                           {"help", no_argument, NULL, 'h'},
                                           {0}};
        const struct verb v = {"attach", "msb attach [--no-stdin] NAME", "+h", lo};
        bool in = true;
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, v.opts, lo, NULL)) != -1) {
                if (c == OPT_NO_STDIN)
                        in = false;
                else if (c == 'h') {
                        printf("Usage: %s\n\nAttach this terminal to a sandbox's main process; Ctrl-P Ctrl-Q "
                               "detaches (with a terminal).\n",
                               v.usage);
                        return 0;
                } else
                        return unknown_option(&v, argv);
        }
        if (argc - optind != 1)
                return usage_error(&v, "name one sandbox");
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        const char *name = argv[optind];
        struct msb_sandbox_info *info = NULL;
        struct msb_error err = {0};
        if (msb_sandbox_get(ctx, name, &info, &err) < 0) {
                cli_error("%s", err.message);
                msb_ctx_free(ctx);
                return 125;
        }
        bool tty = info->tty, interactive = info->interactive;
        msb_sandbox_info_free(info, 1);
        int st = cli_attach(ctx, name, in && interactive, tty, 0);
        msb_ctx_free(ctx);
        return st;
}
