// SPDX-License-Identifier: MIT
/*
 * The guest's serial console, kept bounded.
 *
 * QEMU writes the console to one end of a socket pair (-chardev socket,fd=4);
 * a thread of the VM's owner (the run, the supervisor or a pool's keeper)
 * copies it to <runtime dir>/console.log.  Past CONSOLE_LOG_MAX bytes the
 * file becomes console.log.1 (the one before is dropped) and a new one is
 * started, so a guest flooding its console costs the host at most twice
 * that, on /run, whatever it writes and for however long.  A thread that
 * falls behind does not lose bytes: the socket fills and QEMU's serial port
 * waits, which slows the guest's console and nothing else.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "proc.h"
#include "lib/vm.h"

struct console {
        int fd;     /* our end */
        int log;    /* console.log, appended */
        uint64_t size;
        char *path; /* console.log */
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool eof;   /* QEMU's end is closed: everything it wrote is in the file */
        bool running; /* the thread was started */
};

/* console.log -> console.log.1, and a new console.log */
static void console_rotate(struct console *c)
{
        _cleanup_free_ char *old = xasprintf("%s.1", c->path);
        if (rename(c->path, old) < 0)
                return; /* keep appending: a bound lost beats a console lost */
        int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return;
        close(c->log);
        c->log = fd;
        c->size = 0;
}

static void *console_main(void *arg)
{
        struct console *c = arg;
        char buf[16384];
        for (;;) {
                ssize_t n = read(c->fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                if (c->size + (uint64_t)n > CONSOLE_LOG_MAX)
                        console_rotate(c);
                /* a full /run loses console lines, never stalls the guest */
                if (write_all(c->log, buf, (size_t)n) == 0)
                        c->size += (uint64_t)n;
        }
        pthread_mutex_lock(&c->lock);
        c->eof = true;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

int console_start(struct sandbox *sb, int *ret_qemu_end, struct msb_error *err)
{
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                return msb_err_errno(err, errno, "socketpair");
        int log = open(sb->console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (log < 0) {
                int e = errno;
                close(sp[0]);
                close(sp[1]);
                return msb_err_errno(err, e, "cannot keep the console log %s", sb->console);
        }
        struct console *c = xcalloc(1, sizeof(*c));
        *c = (struct console){.fd = sp[0], .log = log, .path = xstrdup(sb->console)};
        struct stat st;
        c->size = fstat(c->log, &st) == 0 ? (uint64_t)st.st_size : 0;
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->cond, NULL);
        sb->con = c;
        *ret_qemu_end = sp[1];
        return 0;
}

int console_run(struct sandbox *sb, struct msb_error *err)
{
        struct console *c = sb->con;
        int r = -thread_start(&c->thread, console_main, c);
        if (r != 0)
                return msb_err_errno(err, r, "cannot keep the console log %s", sb->console);
        c->running = true;
        return 0;
}

/* Wait, up to timeout_ms, until all QEMU wrote is in the file; true when it
 * is.  Only once QEMU has exited (its end is then closed). */
bool console_settle(struct sandbox *sb, int timeout_ms)
{
        struct console *c = sb->con;
        if (!c || !c->running)
                return false;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&c->lock);
        while (!c->eof && pthread_cond_timedwait(&c->cond, &c->lock, &until) == 0) {
        }
        bool eof = c->eof;
        pthread_mutex_unlock(&c->lock);
        return eof;
}

/* After QEMU is gone: the rest is copied, the thread ends. */
void console_stop(struct sandbox *sb)
{
        struct console *c = sb->con;
        if (!c)
                return;
        /* QEMU is dead, its end closed: what is left is in the socket */
        if (c->running && !console_settle(sb, 1000))
                shutdown(c->fd, SHUT_RDWR);
        if (c->running)
                pthread_join(c->thread, NULL);
        close(c->fd);
        close(c->log);
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->cond);
        free(c->path);
        free(c);
        sb->con = NULL;
}
