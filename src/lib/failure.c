/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Why a VM stopped that should have run on, in words a user can act on: the
 * helper that failed, by its own stderr's last line, or the guest console's
 * last lines, made printable.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/util.h"
#include "run.h"

/* Appends n bytes of text at out + o, control bytes but newline and tab as
 * \xNN (as cli_error shows guest text), NUL-terminated and cut to fit;
 * returns the new length. */
static size_t escape_into(char *out, size_t outsz, size_t o, const char *s, size_t n)
{
        for (size_t k = 0; k < n && o + 5 < outsz; k++) {
                unsigned char c = (unsigned char)s[k];
                if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
                        o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
                else
                        out[o++] = (char)c;
        }
        out[o] = '\0';
        return o;
}

/* Last lines of a log (the console's, a helper's stderr), made printable:
 * the guest controls the console's bytes.  Only the file's last 64 KiB
 * are read, however large it grew. */
static void log_tail(const char *path, char *out, size_t outsz, int lines)
{
        out[0] = '\0';
        _cleanup_close_ int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0)
                return;
        enum { WINDOW = 64 << 10 };
        off_t from = st.st_size > WINDOW ? st.st_size - WINDOW : 0;
        _cleanup_free_ char *data = xmalloc(WINDOW);
        ssize_t got = pread(fd, data, WINDOW, from);
        if (got <= 0)
                return;
        size_t len = (size_t)got, i = len;
        while (i > 0 && (data[i - 1] == '\n' || data[i - 1] == '\r'))
                i--;
        size_t end = i;
        int n = 0;
        while (i > 0) {
                if (data[i - 1] == '\n' && ++n == lines)
                        break;
                i--;
        }
        /* a panic's reason is far above the end of its backtrace */
        const char *panic = memmem(data, len, "Kernel panic - not syncing", 26);
        size_t o = 0;
        if (panic) {
                size_t pl = 0;
                while (panic + pl < data + len && panic[pl] != '\n' && panic[pl] != '\r')
                        pl++;
                o = escape_into(out, outsz, o, panic, pl);
                o = escape_into(out, outsz, o, "\n...\n", 5);
        }
        escape_into(out, outsz, o, data + i, end - i);
}

/* Whether a helper has exited by itself with an error (a status other
 * than 0, or a signal), and how, as "status 2" or "signal 9" in how.  Its
 * status stays for the reaper (WNOWAIT). */
bool child_failed(const struct child *c, char *how, size_t howsz, bool *ret_signaled)
{
        siginfo_t si = {0};
        if (c->pid <= 0 || c->pidfd < 0 || waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
            si.si_pid == 0)
                return false;
        *ret_signaled = si.si_code != CLD_EXITED;
        snprintf(how, howsz, "%s %d", *ret_signaled ? "killed by signal" : "exit status", si.si_status);
        return *ret_signaled || si.si_status != 0;
}

/* "the <what> failed: <its stderr's last line>", or how it ended */
static char *child_failure(const struct child *c, const char *what, const char *log, const char *how)
{
        char tail[1024];
        log_tail(log, tail, sizeof(tail), 1);
        const char *the = strcmp(c->what, "QEMU") ? "the " : "";
        return tail[0] ? xasprintf("%s: %s%s failed: %s", what, the, c->what, tail)
                       : xasprintf("%s: %s%s ended (%s)", what, the, c->what, how);
}

/*
 * Why a VM stopped that should have run on, starting with what: the first
 * helper that failed, in its own words (its stderr's last line), so a
 * server that could not start is named, not "the VM stopped"; else QEMU's;
 * else the guest console's last lines.  A QEMU that was killed is the cause
 * whatever its servers then said.
 */
char *vm_failure(struct vm *vm, const char *what)
{
        struct sandbox *sb = &vm->sb;
        char how[48], qhow[48];
        bool sig = false, qsig = false, qfailed = child_failed(&sb->qemu, qhow, sizeof(qhow), &qsig);
        struct pollfd q = {.fd = sb->qemu.pidfd, .events = POLLIN};
        if (sb->qemu.pidfd >= 0 && poll(&q, 1, 0) == 1)
                console_settle(sb, 1000); /* its last lines, a panic's among them */
        for (size_t i = 0; i < sb->nfsd && !qsig; i++)
                if (child_failed(&sb->fsd[i], how, sizeof(how), &sig))
                        return child_failure(&sb->fsd[i], what, sb->fsd[i].log, how);
        if (qfailed) {
                _cleanup_free_ char *qlog = xasprintf("%s/qemu.log", sb->dir);
                return child_failure(&sb->qemu, what, qlog, qhow);
        }
        char tail[4096];
        log_tail(sb->console, tail, sizeof(tail), 15);
        if (tail[0])
                return xasprintf("%s; last lines of the guest console:\n%s", what, tail);
        return xstrdup(what);
}
