/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec: another process in a running container.  As with create, the
 * pid in --pid-file is a host process that relays the guest process's
 * streams (or a pty sent over --console-socket) and exits with its
 * status; with --detach the command returns once the process runs, and
 * the relay stays (conmon and containerd's shim wait on it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "runtime.h"

struct exec_args {
        struct rt_process p;
        bool no_new_privs;
        const char *console_socket;
        char **extra_env;
        const char *cwd, *user;
        bool tty, detach;
};

/* The relay child: start the process, say so on ready ("ok" or the
 * error, "!" first for a command that cannot run), relay, exit with its
 * status. */
static _Noreturn void exec_child(struct msb_ctx *ctx, const char *name, struct exec_args *a, int ready)
{
        /* detached or with a console socket it is on its own; in the
         * foreground it stays in the caller's session, so a Ctrl-C there
         * reaches it (and the relay forwards it) */
        bool own = a->detach || a->console_socket;
        if (own)
                setsid();
        prctl(PR_SET_NAME, "msb-exec");
        int tty = -1;
        char msg[2048];
        if (a->p.terminal && !own) {
                if (!isatty(0)) {
                        snprintf(msg, sizeof(msg), "--tty without --console-socket needs a terminal on stdin");
                        (void)write_all(ready, msg, strlen(msg));
                        _exit(RT_EXIT_FAILED);
                }
                tty = 0;
        } else if (a->p.terminal) {
                int m;
                int r = rt_pty_open(&m, &tty, a->p.rows, a->p.cols);
                if (r == 0 && ioctl(tty, TIOCSCTTY, 0) < 0)
                        r = -errno;
                if (r == 0)
                        r = a->console_socket ? rt_console_send(a->console_socket, m) : -EINVAL;
                if (r < 0) {
                        snprintf(msg, sizeof(msg), "%s",
                                 errno_msg(-r, "the terminal for --console-socket %s",
                                           a->console_socket ? a->console_socket : "(none given)").s);
                        (void)write_all(ready, msg, strlen(msg));
                        _exit(RT_EXIT_FAILED);
                }
                close(m);
        }
        signal(SIGPIPE, SIG_IGN);
        struct msb_exec_opts eo = {
                .argv = a->p.argv,
                .env = a->p.env,
                .workdir = a->p.cwd,
                .user = a->p.user,
                .stdin = true,
                .tty = a->p.terminal,
                .rows = a->p.rows,
                .cols = a->p.cols,
                .confine = a->p.confined ? &a->p.confine : NULL,
        };
        struct msb_proc *p;
        struct msb_error err = {0};
        int st = 0;
        int r = msb_sandbox_exec(ctx, name, &eo, &p, &st, &err);
        if (r != 0) {
                /* podman maps "executable file not found" to 127 and
                 * "permission denied" to 126, from the message as runc's */
                snprintf(msg, sizeof(msg), "%s", err.message);
                (void)write_all(ready, msg, strlen(msg));
                _exit(r == 1 ? st : RT_EXIT_FAILED);
        }
        (void)write_all(ready, "ok", 2);
        close(ready);
        struct msb_relay_opts ro = {
                .in_fd = tty >= 0 ? tty : 0,
                .out_fd = tty >= 0 ? tty : 1,
                .err_fd = tty >= 0 ? tty : 2,
                .tty_fd = tty,
        };
        if (tty == 0)
                ro.out_fd = 1, ro.err_fd = 2;
        r = msb_proc_relay(p, &ro, &st, &err);
        msb_proc_free(p);
        if (r < 0) {
                rt_error("exec in %s: %s", name, err.message);
                _exit(RT_EXIT_FAILED);
        }
        _exit(st);
}

static int parse_exec(int argc, char **argv, struct exec_args *a, const char **ret_pid_file, const char **ret_id)
{
        static const struct option lo[] = {{"process", required_argument, NULL, 'p'},
                                           {"pid-file", required_argument, NULL, 'P'},
                                           {"console-socket", required_argument, NULL, 'c'},
                                           {"detach", no_argument, NULL, 'd'},
                                           {"tty", no_argument, NULL, 't'},
                                           {"cwd", required_argument, NULL, 'w'},
                                           {"env", required_argument, NULL, 'e'},
                                           {"user", required_argument, NULL, 'u'},
                                           {"preserve-fds", required_argument, NULL, 'f'},
                                           {"no-new-privs", no_argument, NULL, 'N'},
                                           {"cap", required_argument, NULL, 'C'},
                                           {"apparmor", required_argument, NULL, 'A'},
                                           {"process-label", required_argument, NULL, 'L'},
                                           {"cgroup", required_argument, NULL, 'G'},
                                           {0}};
        const char *process = NULL;
        int o;
        optind = 1;
        while ((o = getopt_long_only(argc, argv, "+p:dte:u:", lo, NULL)) != -1) {
                switch (o) {
                case 'p':
                        process = optarg;
                        break;
                case 'P':
                        *ret_pid_file = optarg;
                        break;
                case 'c':
                        a->console_socket = optarg;
                        break;
                case 'd':
                        a->detach = true;
                        break;
                case 't':
                        a->tty = true;
                        break;
                case 'w':
                        a->cwd = optarg;
                        break;
                case 'e':
                        if (!strchr(optarg, '=') || optarg[0] == '=')
                                return rt_error("exec: --env '%s': expected K=V", optarg);
                        strv_push(&a->extra_env, optarg);
                        break;
                case 'u':
                        a->user = optarg;
                        break;
                case 'f':
                        if (strcmp(optarg, "0"))
                                return rt_error("exec: --preserve-fds %s: file descriptors cannot be passed into a VM",
                                                optarg);
                        break;
                case 'N':
                        a->no_new_privs = true;
                        break;
                case 'C':
                case 'A':
                case 'L':
                case 'G':
                        break; /* the guest's business (docs/oci-runtime.md) */
                default:
                        return rt_error("exec: unknown option '%s'", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return rt_error("exec: no container ID given");
        *ret_id = argv[optind++];
        if (process) {
                if (rt_process_parse_file(process, &a->p) < 0)
                        return RT_EXIT_FAILED;
        } else {
                if (optind >= argc)
                        return rt_error("exec: no command given (after the ID, or --process FILE)");
                for (int i = optind; i < argc; i++)
                        strv_push(&a->p.argv, argv[i]);
                a->p.terminal = a->tty;
                a->p.rows = 24;
                a->p.cols = 80;
        }
        for (char **e = a->extra_env; e && *e; e++)
                strv_push(&a->p.env, *e);
        if (a->cwd) {
                free(a->p.cwd);
                a->p.cwd = xstrdup(a->cwd);
        }
        if (a->user) {
                free(a->p.user);
                a->p.user = xstrdup(a->user);
        }
        return 0;
}

int rt_cmd_exec(int argc, char **argv)
{
        struct exec_args a = {0};
        const char *pid_file = NULL, *id = NULL;
        int status = parse_exec(argc, argv, &a, &pid_file, &id);
        struct msb_ctx *ctx = NULL;
        struct rt_container c = {0};
        if (status || rt_container_load(id, &c) < 0 || !(ctx = rt_ctx())) {
                status = RT_EXIT_FAILED;
                goto out;
        }
        if (rt_exec_confine(c.bundle, &a.p, a.no_new_privs) < 0) {
                status = RT_EXIT_FAILED;
                goto out;
        }
        if (rt_container_status(ctx, &c) != RT_RUNNING) {
                status = rt_error("cannot exec in a container that is not running: %s is %s", c.id,
                                  rt_status_name(rt_container_status(ctx, &c)));
                goto out;
        }
        int rp[2];
        if (pipe2(rp, O_CLOEXEC) < 0) {
                status = rt_error("%s", errno_msg(errno, "pipe").s);
                goto out;
        }
        pid_t pid = fork();
        if (pid == 0) {
                close(rp[0]);
                exec_child(ctx, c.name, &a, rp[1]);
        }
        close(rp[1]);
        if (pid < 0) {
                close(rp[0]);
                status = rt_error("%s", errno_msg(errno, "fork").s);
                goto out;
        }
        struct msb_error err = {0};
        if (!rt_child_ready(rp[0], pid, &err)) {
                status = rt_error("exec in %s: %s", c.id, err.message[0] ? err.message : "the relay process died");
                goto out;
        }
        if (pid_file && rt_write_pid_file(pid_file, pid) < 0) {
                status = rt_error("%s", errno_msg(errno, "exec: cannot write %s", pid_file).s);
                goto out;
        }
        if (a.detach)
                goto out;
        /* in the foreground: its status is ours, signals go to it */
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        int ws;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
        }
        status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
out:
        rt_process_free(&a.p);
        strv_free(a.extra_env);
        rt_container_free(&c);
        msb_ctx_free(ctx);
        return status;
}
