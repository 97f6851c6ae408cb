/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shim: the host process whose pid `create` writes to --pid-file.
 * conmon (and containerd's runc shim) are child subreapers that wait on
 * that pid as if it were the container's process, so the shim lives
 * exactly as long as the guest's main process and exits with its status
 * (128+N for signal N, as msb run).  Its life:
 *
 *   create ──fork──> shim: setsid; [pty: master over --console-socket,
 *                    slave its controlling terminal]; [setns into the
 *                    bundle's network namespace]; sandbox create + start
 *                    with MSB_START_HOLD ──"ok" on the ready pipe──> create
 *                    exits 0, the VM is up
 *   start ──opens exec.fifo──> shim: attach (the main process starts
 *                    now), relay its streams, forward signals, exit with
 *                    its status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "common/util.h"
#include "runtime.h"

/* The VM went away while the container was created, not started. */
#define SHIM_EXIT_VM_GONE 255
#define FIFO_POLL_MS 1000

bool rt_child_ready(int fd, pid_t pid, struct msb_error *err)
{
        char msg[sizeof(err->message)];
        ssize_t n = read_all(fd, msg, sizeof(msg) - 1);
        close(fd);
        msg[n > 0 ? n : 0] = '\0';
        if (!strcmp(msg, "ok"))
                return true;
        int ws;
        waitpid(pid, &ws, 0);
        msb_err(err, EIO, "%s", msg);
        return false;
}

int rt_write_pid_file(const char *path, pid_t pid)
{
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%d", (int)pid);
        /* runc writes it whole: conmon reads it as soon as create exits */
        return write_file_replace_at(AT_FDCWD, path, buf, (size_t)n, 0644);
}

/* Signals the relay does not take itself go to the main process through
 * the supervisor (a connection of their own). */
struct forwarder {
        struct msb_ctx *ctx;
        const char *name;
        sigset_t set;
};

static void *forward_signals(void *arg)
{
        struct forwarder *f = arg;
        for (;;) {
                siginfo_t si;
                int sig = sigwaitinfo(&f->set, &si);
                if (sig < 0)
                        continue;
                struct msb_error err = {0};
                if (msb_sandbox_kill(f->ctx, f->name, sig, &err) < 0)
                        rt_debug("forwarding signal %d: %s", sig, err.message);
        }
        return NULL;
}

/* Every catchable signal but the ones the relay handles (INT, TERM, HUP,
 * WINCH), those the kernel sends about us (CHLD, PIPE) and the
 * synchronous faults. */
static void forwarded_set(sigset_t *s)
{
        sigemptyset(s);
        static const int sigs[] = {SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG,
                                   SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGIO,  SIGPWR,  SIGSYS,  SIGABRT};
        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
                sigaddset(s, sigs[i]);
        for (int i = SIGRTMIN; i <= SIGRTMAX; i++)
                sigaddset(s, i);
}

static bool default_terminates(int sig)
{
        return sig != SIGCHLD && sig != SIGWINCH && sig != SIGURG && sig != SIGCONT && sig != SIGTSTP &&
               sig != SIGTTIN && sig != SIGTTOU;
}

/* The VM stopped before the main process could start (a guest setup
 * step failed): its reason on the shim's stderr, the container's (conmon
 * shows it to the user), and in --log. */
static int vm_gone(struct msb_ctx *ctx, const struct rt_container *c)
{
        struct msb_error err = {0};
        _cleanup_free_ char *text = NULL;
        const char *why = NULL;
        json_t *j = NULL;
        if (msb_sandbox_inspect(ctx, c->name, &text, &err) == 0 && (j = json_loads(text, 0, NULL)))
                why = json_string_value(json_object_get(json_object_get(j, "state"), "error"));
        rt_error("container %s: the VM stopped before the process started: %s", c->id,
                 why && *why ? why : "no reason recorded");
        json_decref(j);
        return SHIM_EXIT_VM_GONE;
}

/* Created, not started: wait for `start` at the fifo.  A signal that would
 * end a process ends the container here (the VM is stopped), as it ends
 * runc's init waiting at its fifo.  0 to go on, else the exit status. */
static int wait_for_start(struct msb_ctx *ctx, const struct rt_container *c)
{
        _cleanup_free_ char *fifo = rt_fifo_path(c);
        _cleanup_close_ int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
                rt_error("%s", errno_msg(errno, "container %s: cannot open %s", c->id, fifo).s);
                return SHIM_EXIT_VM_GONE;
        }
        sigset_t all;
        sigfillset(&all);
        sigdelset(&all, SIGKILL);
        sigdelset(&all, SIGSTOP);
        _cleanup_close_ int sfd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
        for (;;) {
                struct pollfd pf[2] = {{.fd = fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
                int k = poll(pf, 2, FIFO_POLL_MS);
                if (k < 0 && errno != EINTR)
                        return SHIM_EXIT_VM_GONE;
                if (pf[0].revents & POLLIN) {
                        char b;
                        if (read(fd, &b, 1) == 1)
                                return 0;
                }
                struct signalfd_siginfo si;
                while (sfd >= 0 && read(sfd, &si, sizeof(si)) == sizeof(si)) {
                        int sig = (int)si.ssi_signo;
                        if (!default_terminates(sig))
                                continue;
                        struct msb_error err = {0};
                        msb_sandbox_stop(ctx, c->name, 0, &err);
                        unlink(fifo);
                        return 128 + sig;
                }
                if (!msb_sandbox_running(ctx, c->name)) {
                        unlink(fifo);
                        return vm_gone(ctx, c);
                }
        }
}

/* Attach, relay, forward: the main process's status. */
static int run_main(struct msb_ctx *ctx, const struct rt_container *c, int tty)
{
        struct msb_proc *p;
        struct msb_error err = {0};
        if (msb_sandbox_attach(ctx, c->name, true, &p, &err) < 0) {
                rt_error("container %s: %s", c->id, err.message);
                return SHIM_EXIT_VM_GONE;
        }
        static struct forwarder f;
        f.ctx = ctx;
        f.name = c->name;
        forwarded_set(&f.set);
        pthread_t th;
        if (pthread_create(&th, NULL, forward_signals, &f) != 0)
                rt_warn("container %s: signals other than INT, TERM and HUP will not be forwarded", c->id);
        struct msb_relay_opts ro = {
                .in_fd = tty >= 0 ? tty : 0,
                .out_fd = tty >= 0 ? tty : 1,
                .err_fd = tty >= 0 ? tty : 2,
                .tty_fd = tty,
                /* the container has ended with its process: conmon and
                 * containerd learn it now, and delete takes the VM down
                 * if it has not stopped by then */
                .no_wait_stop = true,
        };
        int st = 0;
        rt_debug("container %s: attached to its main process", c->id);
        int r = msb_proc_relay(p, &ro, &st, &err);
        rt_debug("container %s: main process ended (%d)", c->id, st);
        msb_proc_free(p);
        if (r < 0) {
                /* the connection ended without a status: the sandbox's
                 * state has the last one */
                struct msb_error e2 = {0};
                if (msb_sandbox_wait(ctx, c->name, &st, &e2) < 0) {
                        rt_error("container %s: %s", c->id, err.message);
                        return SHIM_EXIT_VM_GONE;
                }
        } else if (r == 1)
                rt_error("container %s: %s", c->id, err.message);
        return st;
}

/* The VM's network: a namespace named in the bundle (podman's, CNI's, a
 * pod's) is joined and its interface handed to the guest (netns.c); its
 * owner routes, publishes ports and filters.  A new namespace (no path)
 * would be empty: the guest has lo alone.  No namespace at all is the
 * host's network: msb's own, --net all.  0 or -errno with err filled. */
static int net(struct rt_bundle *b, int *ret_lock, struct msb_error *err)
{
        const char *mode = b->netns_new || b->netns ? "none" : "all";
        if (b->netns) {
                _cleanup_close_ int ns = open(b->netns, O_RDONLY | O_CLOEXEC);
                if (ns < 0 || setns(ns, CLONE_NEWNET) < 0)
                        return msb_err_errno(err, errno, "linux.namespaces: cannot join network namespace %s",
                                             b->netns);
                /* one claim at a time per namespace, held until QEMU has
                 * the tap (a pod's containers start together) */
                while (flock(ns, LOCK_EX) < 0 && errno == EINTR) {
                }
                *ret_lock = TAKE_FD(ns);
        }
        if (b->netns && b->pod_sandbox)
                rt_debug("a pod's sandbox container: its VM leaves the pod's network to the others");
        else if (b->netns) {
                _cleanup_free_ char *spec = NULL;
                bool taken;
                int r = rt_netns_claim(b->netns, &spec, &taken, err);
                if (r < 0)
                        return r;
                if (taken)
                        rt_warn("linux.namespaces: the interface of network namespace %s is another container's VM "
                                "(one pod, several VMs): this container has no network but lo",
                                b->netns);
                if (spec && msb_run_opts_set_net_tap(b->o, spec, err) < 0)
                        return -EINVAL;
                if (spec)
                        return 0;
        }
        if (msb_run_opts_set_net(b->o, mode, err) < 0)
                return -EINVAL;
        return 0;
}

/* Boot the VM in the shim (so its processes are the shim's, in the
 * bundle's network namespace): 0, or -errno with err (zeroed by the
 * caller) filled. */
static int boot(struct msb_ctx *ctx, struct rt_shim_args *a, struct msb_error *err)
{
        if (a->b->has_oom_score_adj) {
                char v[16];
                int len = snprintf(v, sizeof(v), "%d", a->b->oom_score_adj);
                _cleanup_close_ int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write(fd, v, (size_t)len) != len)
                        return msb_err_errno(err, errno, "process.oomScoreAdj: cannot set %d for the VM",
                                             a->b->oom_score_adj);
        }
        _cleanup_close_ int nslock = -1;
        int r = net(a->b, &nslock, err);
        if (r < 0)
                return r;
        if (msb_run_opts_set_disk_size(a->b->o, 0) < 0 ||
            msb_sandbox_create(ctx, a->c->name, a->b->o, err) < 0 ||
            msb_sandbox_start(ctx, a->c->name, MSB_START_HOLD, err) < 0) {
                if (!err->message[0])
                        snprintf(err->message, sizeof(err->message), "cannot set up the sandbox");
                return -(err->code ? err->code : EIO);
        }
        return 0;
}

static void shim_close_fds(int keep1, int keep2)
{
        for (int fd = 3; fd < 1024; fd++)
                if (fd != keep1 && fd != keep2)
                        close(fd);
}

static _Noreturn void shim_main(struct msb_ctx *ctx, struct rt_shim_args *a, int ready)
{
        setsid();
        prctl(PR_SET_NAME, "msb-shim");
        struct msb_error cgerr = {0};
        /* first: everything the shim starts (the VM) is in the cgroup */
        if (rt_cgroup_join(a->c->cgroups, getpid(), &cgerr) < 0) {
                (void)write_all(ready, cgerr.message, strlen(cgerr.message));
                _exit(RT_EXIT_FAILED);
        }
        if (chdir("/") < 0)
                _exit(SHIM_EXIT_VM_GONE);
        int tty = -1;
        if (a->b->terminal) {
                int m;
                int r = rt_pty_open(&m, &tty, a->b->rows, a->b->cols);
                if (r == 0 && ioctl(tty, TIOCSCTTY, 0) < 0)
                        r = -errno;
                if (r == 0)
                        r = rt_console_send(a->console_socket, m);
                if (r < 0) {
                        struct errno_msg em = errno_msg(r, "the terminal for --console-socket %s", a->console_socket);
                        (void)write_all(ready, em.s, strlen(em.s));
                        _exit(RT_EXIT_FAILED);
                }
                close(m);
        }
        shim_close_fds(ready, tty);
        /* INT, TERM, HUP and WINCH stay blocked from here on: the fifo
         * wait and then the relay take them from a signalfd */
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        signal(SIGPIPE, SIG_IGN);
        struct msb_error err = {0};
        if (boot(ctx, a, &err) < 0) {
                /* nothing half made stays: the sandbox record goes */
                struct msb_error e2 = {0};
                msb_sandbox_remove(ctx, a->c->name, true, &e2);
                (void)write_all(ready, err.message, strlen(err.message));
                _exit(RT_EXIT_FAILED);
        }
        (void)write_all(ready, "ok", 2);
        close(ready);
        int st = wait_for_start(ctx, a->c);
        if (st)
                _exit(st);
        /* the relay and the forwarder take their signals; the rest keep
         * their default actions */
        sigset_t keep;
        forwarded_set(&keep);
        sigaddset(&keep, SIGINT);
        sigaddset(&keep, SIGTERM);
        sigaddset(&keep, SIGHUP);
        sigaddset(&keep, SIGWINCH);
        sigaddset(&keep, SIGPIPE);
        sigprocmask(SIG_SETMASK, &keep, NULL);
        _exit(run_main(ctx, a->c, tty));
}

int rt_shim_spawn(struct msb_ctx *ctx, struct rt_shim_args *a)
{
        int rp[2];
        if (pipe2(rp, O_CLOEXEC) < 0)
                return rt_error("%s", errno_msg(errno, "pipe").s), -errno;
        pid_t pid = fork();
        if (pid < 0) {
                close(rp[0]);
                close(rp[1]);
                return rt_error("%s", errno_msg(errno, "fork").s), -EAGAIN;
        }
        if (pid == 0) {
                close(rp[0]);
                shim_main(ctx, a, rp[1]);
        }
        close(rp[1]);
        struct msb_error err = {0};
        if (!rt_child_ready(rp[0], pid, &err)) {
                rt_error("container %s: %s", a->c->id,
                         err.message[0] ? err.message : "the shim died while the VM started");
                return -EIO;
        }
        a->c->pid = pid;
        a->c->pid_start = rt_pid_start_time(pid);
        return 0;
}
