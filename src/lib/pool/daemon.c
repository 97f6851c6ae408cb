/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pool daemon of one size: keeps its keepers (one boots at a time,
 * refilling after each hand-over), passes a run's TAKE to a ready one,
 * and answers STATUS and STOP.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"

#include <jansson.h>

/* utime + stime of a process, in clock ticks */
static unsigned long long proc_ticks(pid_t pid)
{
        _cleanup_free_ char *p = xasprintf("/proc/%d/stat", pid), *s = NULL;
        if (read_file_at(AT_FDCWD, p, 4096, &s, NULL) < 0)
                return 0;
        char *e = strrchr(s, ')');
        unsigned long long ut = 0, st = 0;
        if (!e || sscanf(e + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
                return 0;
        return ut + st;
}

static unsigned long proc_rss_kib(pid_t pid)
{
        _cleanup_free_ char *p = xasprintf("/proc/%d/status", pid), *s = NULL;
        if (read_file_at(AT_FDCWD, p, 65536, &s, NULL) < 0)
                return 0;
        char *l = strstr(s, "\nVmRSS:");
        return l ? strtoul(l + 7, NULL, 10) : 0;
}

static unsigned long long keeper_ticks(const struct keeper *k)
{
        unsigned long long t = proc_ticks(k->pid);
        for (int i = 0; i < 4; i++)
                if (k->procs[i] > 0)
                        t += proc_ticks(k->procs[i]);
        return t;
}

static void pool_spawn(struct pool *p)
{
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                return;
        pid_t pid = fork();
        if (pid < 0) {
                close(sp[0]);
                close(sp[1]);
                return;
        }
        if (pid == 0) {
                close(sp[0]);
                close(p->lfd);
                close(p->sfd);
                /* a keeper must not hold the pool's lock: a pool killed
                 * with SIGKILL would look alive while its handed VMs run */
                close(p->lock);
                for (size_t i = 0; i < p->nk; i++)
                        close(p->k[i].fd);
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                pool_keeper_main(p->ctx, p->o, sp[1]);
        }
        close(sp[1]);
        p->k[p->nk++] = (struct keeper){.pid = pid, .fd = sp[0]};
}

static void keeper_drop(struct pool *p, size_t i)
{
        close(p->k[i].fd);
        p->k[i] = p->k[--p->nk];
}

/* "R qemu fsd0 fsd1 netd\n" from a keeper whose VM is ready, or EOF */
static void keeper_input(struct pool *p, size_t i)
{
        struct keeper *k = &p->k[i];
        char b[128];
        ssize_t n = read(k->fd, b, sizeof(b) - 1);
        if (n <= 0) {
                if (!k->ready) {
                        /* it did not boot: its log says why; try again later */
                        p->failures++;
                        unsigned d = p->failures > 5 ? 30 : 1u << p->failures;
                        p->next_spawn = mono_ms() + (int64_t)d * 1000;
                        fprintf(stderr, "msb pool: a VM failed to boot (%u in a row); next try in %u s\n", p->failures,
                                d);
                }
                keeper_drop(p, i);
                return;
        }
        b[n] = 0;
        if (b[0] == 'R' && !k->ready) {
                sscanf(b + 1, "%d %d %d %d %24s", &k->procs[0], &k->procs[1], &k->procs[2], &k->procs[3], k->id);
                k->ready = true;
                k->ready_at = mono_ms();
                k->ticks_at_ready = keeper_ticks(k);
                p->failures = 0;
        }
}

static char *pool_status_json(struct pool *p)
{
        json_t *vms = json_array();
        size_t ready = 0;
        long hz = sysconf(_SC_CLK_TCK);
        for (size_t i = 0; i < p->nk; i++) {
                const struct keeper *k = &p->k[i];
                if (!k->ready) {
                        json_array_append_new(vms, json_pack("{s:s,s:i}", "state", "booting", "pid", (int)k->pid));
                        continue;
                }
                ready++;
                unsigned long rss = proc_rss_kib(k->pid);
                for (int j = 0; j < 4; j++)
                        rss += k->procs[j] > 0 ? proc_rss_kib(k->procs[j]) : 0;
                int64_t ms = mono_ms() - k->ready_at;
                double cpu = ms > 0 && hz > 0 ? 100.0 * (double)(keeper_ticks(k) - k->ticks_at_ready) / (double)hz /
                                                        ((double)ms / 1000.0)
                                              : 0;
                json_array_append_new(vms, json_pack("{s:s,s:i,s:s,s:i,s:I,s:f,s:I}", "state", "ready", "pid",
                                                     (int)k->pid, "id", k->id, "qemu_pid", (int)k->procs[0],
                                                     "rss_kib", (json_int_t)rss,
                                                     "idle_cpu_percent", cpu, "idle_seconds",
                                                     (json_int_t)(ms / 1000)));
        }
        _cleanup_free_ char *log = xasprintf("%s/pool.log", p->dir);
        json_t *j = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:I,s:i,s:s,s:o}", "key", p->key, "pid", (int)getpid(), "size",
                              (int)p->size, "cpus", (int)p->o->cpus, "memory_mib", (int)p->o->memory_mib, "ready",
                              (int)ready, "handed_out", (json_int_t)p->handed, "failed_boots_in_a_row",
                              (int)p->failures, "log", log, "vms", vms);
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return s;
}

/* A client: TAKE (a run), STATUS or STOP; only our own user's.  Returns
 * true for STOP. */
static bool pool_client(struct pool *p)
{
        int c = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
                return false;
        struct ucred cr;
        socklen_t cl = sizeof(cr);
        if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.uid != geteuid()) {
                close(c);
                return false;
        }
        struct timeval tv = {1, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char req[16] = "";
        ssize_t n = read(c, req, sizeof(req) - 1);
        req[n > 0 ? n : 0] = 0;
        bool stop = false;
        if (!strcmp(req, "TAKE\n")) {
                for (size_t i = 0; i < p->nk; i++)
                        if (p->k[i].ready) {
                                /* the keeper answers the run itself */
                                if (pool_send_fds(p->k[i].fd, "C", 1, &c, 1) == 0)
                                        p->handed++;
                                keeper_drop(p, i);
                                break;
                        }
                /* none ready: closing says so, and the run boots */
        } else if (!strcmp(req, "STATUS\n")) {
                _cleanup_free_ char *s = pool_status_json(p);
                (void)write_all(c, s, strlen(s));
                (void)write_all(c, "\n", 1);
        } else if (!strcmp(req, "STOP\n")) {
                (void)write_all(c, "ok\n", 3);
                stop = true;
        }
        close(c);
        return stop;
}

_Noreturn void pool_daemon_main(struct pool *p)
{
        prctl(PR_SET_NAME, "msb-pool");
        for (;;) {
                size_t booting = 0;
                for (size_t i = 0; i < p->nk; i++)
                        booting += !p->k[i].ready;
                /* one VM boots at a time: refills take one core at most */
                if (p->nk < p->size && !booting && mono_ms() >= p->next_spawn)
                        pool_spawn(p);
                struct pollfd f[POOL_MAX_SIZE + 2];
                size_t nf = 0;
                f[nf++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
                f[nf++] = (struct pollfd){.fd = p->sfd, .events = POLLIN};
                for (size_t i = 0; i < p->nk; i++)
                        f[nf++] = (struct pollfd){.fd = p->k[i].fd, .events = POLLIN};
                int timeout = p->nk < p->size ? 1000 : -1;
                if (poll(f, nf, timeout) < 0 && errno != EINTR)
                        break;
                if (f[1].revents) {
                        struct signalfd_siginfo si;
                        bool quit = false;
                        while (read(p->sfd, &si, sizeof(si)) == sizeof(si))
                                quit |= si.ssi_signo != SIGCHLD;
                        while (waitpid(-1, NULL, WNOHANG) > 0) {
                        }
                        if (quit)
                                break;
                }
                /* keepers before clients: indexes move as they go */
                for (size_t i = nf; i-- > 2;)
                        if (f[i].revents)
                                keeper_input(p, i - 2);
                if (f[0].revents && pool_client(p))
                        break;
        }
        /* idle VMs go with the pool (handed ones are their runs'): a
         * keeper whose pool connection closes stops its VM, reaps it and
         * removes its dir; SIGKILL after 5 s */
        for (size_t i = 0; i < p->nk; i++)
                shutdown(p->k[i].fd, SHUT_RDWR);
        int64_t until = mono_ms() + 5000;
        for (size_t i = 0; i < p->nk; i++) {
                while (waitpid(p->k[i].pid, NULL, WNOHANG) == 0 && mono_ms() < until) {
                        struct timespec ts = {0, 5 * 1000 * 1000};
                        nanosleep(&ts, NULL);
                }
                if (kill(p->k[i].pid, 0) == 0) {
                        kill(p->k[i].pid, SIGKILL);
                        waitpid(p->k[i].pid, NULL, 0);
                }
        }
        _cleanup_free_ char *sock = xasprintf("%s/sock", p->dir);
        unlink(sock);
        rm_rf(p->dir);
        _exit(0);
}
