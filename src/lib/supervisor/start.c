/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A named sandbox's supervisor comes to life: forked away from the CLI
 * into its own session (daemonized), it takes run.lock, boots the VM on
 * the sandbox's disk, listens on its socket, records the running state
 * and runs the loop; afterwards it tears everything down (end.c).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/proc.h"
#include "supervisor.h"

/* run.lock, held for our whole life, with our pid in it (for msb rm -f
 * when nothing else answers). */
static int sup_lock(struct sup *s)
{
        _cleanup_free_ char *lock = xasprintf("%s/run.lock", s->dir);
        s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0)
                return -EBUSY;
        char pidbuf[24];
        int pl = snprintf(pidbuf, sizeof(pidbuf), "%d\n", getpid());
        if (ftruncate(s->lock_fd, 0) < 0 || pwrite(s->lock_fd, pidbuf, (size_t)pl, 0) != pl)
                msb_log(s->ctx, 1, "cannot record our pid in %s", lock);
        return 0;
}

static void sup_signals(struct sup *s)
{
        sigset_t mask;
        proc_block_signals(&mask, NULL, SIGTERM, SIGINT, SIGHUP, SIGPIPE, 0);
        s->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* The VM, on the sandbox's disk and pinned image root, and our socket. */
static int sup_boot(struct sup *s, unsigned flags, struct msb_error *err)
{
        int r = sb_config_load(s->ctx, s->name, &s->o, err);
        if (r < 0)
                return r;
        sb_state_read(s->dir, &s->st);
        s->no_main = flags & MSB_START_NO_MAIN;
        if (s->no_main)
                sb_state_read(s->dir, &s->before);
        sup_signals(s);
        _cleanup_free_ char *disk = xasprintf("%s/disk.img", s->dir);
        _cleanup_free_ char *pinned = NULL, *pinpath = xasprintf("%s/rootfs", s->dir);
        (void)read_file_at(AT_FDCWD, pinpath, PATH_MAX, &pinned, NULL);
        struct vm_opts vo = {
                .pinned_rootfs = pinned,
                .disk = s->o->no_disk ? NULL : disk,
                .hostname = s->name,
                .main_optional = true,
                .hold_main = flags & (MSB_START_HOLD | MSB_START_NO_MAIN),
                .tty = s->o->tty,
                .rows = s->o->rows ? s->o->rows : 24,
                .cols = s->o->cols ? s->o->cols : 80,
        };
        s->ctx->detached = true;
        r = vm_start(s->ctx, s->o, &vo, &s->vm, err);
        if (r < 0)
                return r;
        /* a pool's VM said HELLO to its keeper */
        s->have_hello = s->vm->sb.warm != NULL;
        r = sup_listen_on(s, err);
        if (r < 0)
                return r;
        if (s->no_main)
                ; /* booted for a copy: the main process is not started */
        else if (s->vm->main.argc && (flags & MSB_START_HOLD))
                s->main_pending = true;
        else if (s->vm->main.argc) {
                struct gproc *m = sup_proc_new(s, VM_MAIN_ID, true);
                m->stdin = s->vm->main.flags & MSB_EXEC_STDIN;
                m->tty = s->vm->main.flags & MSB_EXEC_TTY;
        }
        return 0;
}

static void sup_running(struct sup *s)
{
        sup_log_open(s);
        snprintf(s->st.status, sizeof(s->st.status), "running");
        s->st.pid = getpid();
        s->st.started = time(NULL);
        s->st.finished = 0;
        s->st.exit_code = -1;
        free(s->st.runtime);
        s->st.runtime = xstrdup(s->vm->sb.dir);
        free(s->st.kernel);
        s->st.kernel = xstrdup(s->vm->kit.kernel);
        s->st.qemu_pid = s->vm->sb.qemu.pid;
        free(s->st.server_pids);
        s->st.server_pids = xstrdup("");
        s->st.net_pid = 0;
        for (size_t i = 0; i < s->vm->sb.nfsd; i++) {
                if (s->vm->sb.fsd[i].net) {
                        s->st.net_pid = (int)s->vm->sb.fsd[i].pid;
                        continue;
                }
                char *n = xasprintf("%s%s%d", s->st.server_pids, *s->st.server_pids ? " " : "",
                                    (int)s->vm->sb.fsd[i].pid);
                free(s->st.server_pids);
                s->st.server_pids = n;
        }
        free(s->st.error);
        s->st.error = NULL;
        sb_state_write(s->dir, &s->st);
        if (s->o->max_duration)
                s->max_deadline = mono_ms() + (int64_t)s->o->max_duration * 1000;
}

/* Runs in the supervisor process; returns its exit status. */
static int supervise(struct msb_ctx *ctx, const char *name, unsigned flags, int ready_fd)
{
        struct sup s = {.ctx = ctx, .name = name, .lfd = -1, .sfd = -1, .lock_fd = -1, .ready_fd = ready_fd,
                        .log_fd = -1, .next_id = VM_MAIN_ID + 1, .status = -1};
        struct msb_error err = {0};
        s.dir = sb_dir(ctx, name);
        int r = sup_lock(&s);
        if (r < 0)
                sup_ready(&s, "it is already running (or still stopping: try again in a moment)");
        else if ((r = sup_boot(&s, flags, &err)) < 0) {
                if (s.o) {
                        free(s.st.error);
                        s.st.error = xstrdup(err.message);
                        sb_state_write(s.dir, &s.st);
                }
                sup_ready(&s, err.message);
        } else {
                sup_running(&s);
                sup_loop(&s);
                sup_end(&s);
        }
        sup_free(&s);
        return r < 0 ? 1 : 0;
}

/* The supervisor is the grandchild, in its own session, so that nothing
 * the CLI does (its exit, Ctrl-C on its terminal) reaches it. */
int sb_supervise(struct msb_ctx *ctx, const char *name, unsigned flags, struct msb_error *err)
{
        int rp[2];
        if (pipe2(rp, O_CLOEXEC) < 0)
                return msb_err_errno(err, errno, "pipe");
        _cleanup_free_ char *logp = xasprintf("%s/%s/supervisor.log", ctx->sandboxes_dir, name);
        /* a subreaper CLI would inherit the orphaned supervisor */
        int was_subreaper = 0;
        prctl(PR_GET_CHILD_SUBREAPER, &was_subreaper);
        prctl(PR_SET_CHILD_SUBREAPER, 0);
        pid_t pid = fork();
        if (pid == 0) {
                setsid();
                if (fork() != 0)
                        _exit(0);
                if (chdir("/") < 0)
                        _exit(1);
                /* out of the way of 0..3 first (the CLI may have run with
                 * a standard fd closed) */
                int w = fcntl(rp[1], F_DUPFD_CLOEXEC, 10);
                int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
                int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (w < 0 || nul < 0)
                        _exit(1);
                dup2(nul, 0);
                dup2(nul, 1);
                dup2(logfd >= 0 ? logfd : nul, 2);
                dup2(w, 3);
                /* the CLI's locks and files stay the CLI's: op.lock above all */
                if (close_range(4, ~0u, 0) < 0)
                        for (int fd = 4; fd < 65536; fd++)
                                close(fd);
                fcntl(3, F_SETFD, FD_CLOEXEC);
                signal(SIGINT, SIG_DFL);
                signal(SIGPIPE, SIG_IGN);
                prctl(PR_SET_NAME, "msb-supervisor");
                _exit(supervise(ctx, name, flags, 3));
        }
        close(rp[1]);
        if (pid < 0) {
                prctl(PR_SET_CHILD_SUBREAPER, was_subreaper);
                close(rp[0]);
                return msb_err_errno(err, errno, "fork");
        }
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        /* only once the middle child is gone: the supervisor is init's then,
         * never a zombie of a long-lived caller (msb serve) */
        prctl(PR_SET_CHILD_SUBREAPER, was_subreaper);
        char msg[4096];
        size_t n = 0;
        for (;;) {
                ssize_t k = read(rp[0], msg + n, sizeof(msg) - 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0 || (n += (size_t)k) >= sizeof(msg) - 1)
                        break;
        }
        close(rp[0]);
        msg[n] = '\0';
        if (!strcmp(msg, "ok"))
                return 0;
        return msb_err(err, EIO, "sandbox '%s' did not start: %s", name,
                       n ? msg : "its supervisor died; run with --verbose and see <data>/sandboxes/NAME/supervisor.log");
}
