/* SPDX-License-Identifier: Apache-2.0 */
/* Child process supervision for the VMM and the virtio-fs servers. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "common/util.h"
#include "proc.h"

int proc_spawn(char *const argv[], int in_fd, int out_fd, int err_fd, int keep_fd, pid_t *ret_pid, int *ret_pidfd)
{
        return proc_spawn_fds(argv, in_fd, out_fd, err_fd, &keep_fd, keep_fd >= 0 ? 1 : 0, ret_pid, ret_pidfd);
}

int proc_spawn_fds(char *const argv[], int in_fd, int out_fd, int err_fd, const int *keep, int nkeep, pid_t *ret_pid,
                   int *ret_pidfd)
{
        /* what our children fork and leave behind becomes ours to reap */
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                /* Die with msb whatever kills it; check the parent did not
                 * already go before the prctl took effect. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127);
                /* Own session: a terminal's Ctrl-C goes to msb alone, which
                 * forwards it to the guest command instead. */
                setsid();
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGPIPE, SIG_DFL);
                int fds[3] = {in_fd, out_fd, err_fd}, kept[PROC_KEEP_MAX];
                int top = 3 + nkeep;
                /* move fds out of the way of 0..2 and the kept fds first */
                for (int i = 0; i < 3; i++)
                        if (fds[i] >= 0 && fds[i] < top)
                                fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10 + PROC_KEEP_MAX);
                for (int i = 0; i < nkeep && i < PROC_KEEP_MAX; i++)
                        if ((kept[i] = fcntl(keep[i], F_DUPFD_CLOEXEC, 10 + PROC_KEEP_MAX)) < 0)
                                _exit(127);
                /* kept fds become 3, 4, ..., without close-on-exec */
                for (int i = 0; i < nkeep && i < PROC_KEEP_MAX; i++)
                        if (dup2(kept[i], 3 + i) < 0)
                                _exit(127);
                for (int i = 0; i < 3; i++) {
                        int src = fds[i] >= 0 ? fds[i] : open("/dev/null", O_RDWR | O_CLOEXEC);
                        if (src < 0 || dup2(src, i) < 0)
                                _exit(127);
                }
                execvp(argv[0], argv);
                _exit(127);
        }
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) {
                int e = errno;
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return -e;
        }
        fcntl(pidfd, F_SETFD, FD_CLOEXEC);
        *ret_pid = pid;
        *ret_pidfd = pidfd;
        return 0;
}

/*
 * Every child leads its own session and process group (proc_spawn), and
 * whatever it forks stays in that group unless it leaves on purpose:
 * virtiofsd forks its sandboxed half, which outlived a kill of the parent
 * alone.  The group's number cannot be reused while any member lives (the
 * kernel keeps its struct pid), so signalling -pid reaches only ours.
 */
static void kill_group(pid_t pid)
{
        if (pid > 0)
                kill(-pid, SIGKILL);
}

/* SIGKILL without waiting, to the child (through its pidfd, which cannot
 * reach a recycled pid) and to its process group. */
void proc_kill(pid_t pid, int pidfd)
{
        if (pid > 0 && pidfd >= 0) {
                kill_group(pid);
                syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        }
}

/* Once the leader is reaped, wait (at most ~2 s) for the rest of its group
 * to be gone too.  msb is their subreaper (proc_spawn), so the orphans are
 * its children: reap them here, not leave zombies to an init that may be
 * slow at it. */
static void wait_group_gone(pid_t pid)
{
        /* no signal here: with the leader reaped, the group's number may
         * be free once its last member is; kill_group() already reached
         * every member while the leader pinned it */
        for (int i = 0; i < 2000 && kill(-pid, 0) == 0; i++) {
                while (waitpid(-pid, NULL, WNOHANG) > 0) {
                }
                if (kill(-pid, 0) < 0)
                        break;
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
        }
}

void proc_kill_wait(pid_t pid, int *pidfd)
{
        if (pid <= 0)
                return;
        /* pidfd_send_signal cannot hit a recycled pid; until the leader
         * is reaped its group number cannot be recycled either */
        kill_group(pid);
        if (pidfd && *pidfd >= 0)
                syscall(SYS_pidfd_send_signal, *pidfd, SIGKILL, NULL, 0);
        else
                kill(pid, SIGKILL);
        int w;
        while ((w = (int)waitpid(pid, NULL, 0)) < 0 && errno == EINTR) {
        }
        if (w < 0 && errno == ECHILD && pidfd && *pidfd >= 0) {
                /* not ours to reap (a pool's VM): its pidfd says when it
                 * has exited; its keeper reaps it and its group once our
                 * connection to it closes */
                struct pollfd p = {.fd = *pidfd, .events = POLLIN};
                (void)poll(&p, 1, 2000);
        } else
                wait_group_gone(pid);
        if (pidfd && *pidfd >= 0) {
                close(*pidfd);
                *pidfd = -1;
        }
}

int thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int r = pthread_create(t, NULL, fn, arg);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return -r;
}

void proc_block_signals(sigset_t *ret_mask, sigset_t *ret_old, ...)
{
        sigemptyset(ret_mask);
        va_list ap;
        va_start(ap, ret_old);
        for (int sig; (sig = va_arg(ap, int)) != 0;)
                sigaddset(ret_mask, sig);
        va_end(ap);
        sigprocmask(SIG_BLOCK, ret_mask, ret_old);
}
