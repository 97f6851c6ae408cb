/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One sandbox run: runtime dir, virtio-fs servers, QEMU, the control channel
 * and the relay loop, then teardown.
 *
 * Runtime dir <runtime>/<id>/ holds a lock file (flock held for the whole
 * run), the console log, QEMU's and the servers' stderr, and the vhost-user
 * sockets.  It is removed on every exit path; a run that was SIGKILLed leaves
 * it unlocked, and the next run removes it (its children died with it through
 * PDEATHSIG).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "internal.h"
#include "common/users.h"
#include "proto/proto.h"
#include "vm.h"

_Static_assert(IDS_MAX_GROUPS <= MSB_PROTO_MAX_GROUPS, "groups must fit a RUN message");

#define VIRTIOFSD_MAX_VOLUMES 6u
/* Stop reading host stdin while this much is queued for the guest. */
#define CTL_OUTQ_HIGH (1u << 20)



int msb_run_opts_new(struct msb_run_opts **ret)
{
        struct msb_run_opts *o = xcalloc(1, sizeof(*o));
        o->cpus = MSB_DEFAULT_CPUS;
        o->memory_mib = DEFAULT_MEMORY_MIB;
        o->fds[0] = 0;
        o->fds[1] = 1;
        o->fds[2] = 2;
        *ret = o;
        return 0;
}

void msb_run_opts_free(struct msb_run_opts *o)
{
        if (!o)
                return;
        free(o->image);
        free(o->rootfs);
        strv_free(o->command);
        free(o->entrypoint);
        strv_free(o->env);
        free(o->workdir);
        free(o->user);
        free(o->hostname);
        free(o->fs_backend);
        for (size_t i = 0; i < o->ntmpfs; i++) {
                free(o->tmpfs[i].type);
                free(o->tmpfs[i].path);
                free(o->tmpfs[i].options);
        }
        free(o->net_mode);
        strv_free(o->net_rules);
        strv_free(o->net_ports);
        free(o->net_tap);
        for (size_t i = 0; i < o->nsteps; i++) {
                free(o->steps[i].path);
                free(o->steps[i].value);
        }
        free(o->seccomp_buf);
        for (size_t i = 0; i < o->nvols; i++) {
                free(o->vols[i].host);
                free(o->vols[i].guest);
        }
        free(o);
}

static void set_str(char **dst, const char *s)
{
        free(*dst);
        *dst = s ? xstrdup(s) : NULL;
}

int msb_run_opts_set_image(struct msb_run_opts *o, const char *ref)
{
        set_str(&o->image, ref);
        return 0;
}
int msb_run_opts_set_rootfs(struct msb_run_opts *o, const char *dir)
{
        set_str(&o->rootfs, dir);
        return 0;
}
int msb_run_opts_set_command(struct msb_run_opts *o, char *const argv[])
{
        strv_free(o->command);
        o->command = NULL;
        for (size_t i = 0; argv && argv[i]; i++)
                strv_push(&o->command, argv[i]);
        return 0;
}
int msb_run_opts_set_entrypoint(struct msb_run_opts *o, const char *ep)
{
        set_str(&o->entrypoint, ep);
        o->entrypoint_set = true;
        return 0;
}
int msb_run_opts_add_env(struct msb_run_opts *o, const char *kv)
{
        if (!kv || !strchr(kv, '=') || kv[0] == '=')
                return -EINVAL;
        strv_push(&o->env, kv);
        return 0;
}
int msb_run_opts_set_workdir(struct msb_run_opts *o, const char *d)
{
        if (!d || d[0] != '/')
                return -EINVAL;
        set_str(&o->workdir, d);
        return 0;
}
int msb_run_opts_set_user(struct msb_run_opts *o, const char *u)
{
        if (!u || !*u || strlen(u) > 256 || strchr(u, '\n'))
                return -EINVAL;
        set_str(&o->user, u);
        return 0;
}
int msb_run_opts_set_hostname(struct msb_run_opts *o, const char *h)
{
        if (!h || !*h || strlen(h) > 63)
                return -EINVAL;
        for (const char *s = h; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '-' || *s == '.'))
                        return -EINVAL;
        set_str(&o->hostname, h);
        return 0;
}
int msb_run_opts_set_cpus(struct msb_run_opts *o, unsigned cpus)
{
        if (cpus < 1 || cpus > MSB_MAX_CPUS)
                return -ERANGE;
        o->cpus = cpus;
        return 0;
}
int msb_run_opts_set_memory_mib(struct msb_run_opts *o, unsigned mib)
{
        /* the cloud kernel plus agentd need some room to boot */
        if (mib < MSB_MIN_MEMORY_MIB || mib > MSB_MAX_MEMORY_MIB)
                return -ERANGE;
        o->memory_mib = mib;
        return 0;
}
int msb_run_opts_set_no_pool(struct msb_run_opts *o, bool no_pool)
{
        o->no_pool = no_pool;
        return 0;
}

int msb_run_opts_set_accel(struct msb_run_opts *o, enum msb_accel a)
{
        o->accel = a;
        return 0;
}
int msb_run_opts_set_stdin(struct msb_run_opts *o, bool forward)
{
        o->stdin_forward = forward;
        return 0;
}
int msb_run_opts_set_pull(struct msb_run_opts *o, enum msb_pull_policy p)
{
        if (p != MSB_PULL_MISSING && p != MSB_PULL_ALWAYS && p != MSB_PULL_NEVER)
                return -EINVAL;
        o->pull = p;
        return 0;
}

int msb_run_opts_set_fs_backend(struct msb_run_opts *o, const char *name)
{
        if (name && !fsd_backend_find(name))
                return -EINVAL;
        set_str(&o->fs_backend, name);
        return 0;
}

int msb_run_opts_set_tty(struct msb_run_opts *o, bool tty, unsigned rows, unsigned cols)
{
        if (tty && (rows < 1 || rows > 65535 || cols < 1 || cols > 65535))
                return -EINVAL;
        o->tty = tty;
        o->rows = tty ? rows : 0;
        o->cols = tty ? cols : 0;
        return 0;
}

int msb_run_opts_set_disk_size(struct msb_run_opts *o, uint64_t bytes)
{
        if (bytes && (bytes < SB_DISK_MIN || bytes > SB_DISK_MAX))
                return -ERANGE;
        o->no_disk = bytes == 0;
        o->disk_size = bytes;
        return 0;
}

int msb_run_opts_set_max_duration(struct msb_run_opts *o, unsigned secs)
{
        o->max_duration = secs;
        return 0;
}

int msb_run_opts_set_idle_timeout(struct msb_run_opts *o, unsigned secs)
{
        o->idle_timeout = secs;
        return 0;
}

int msb_run_opts_set_timeout(struct msb_run_opts *o, unsigned secs)
{
        o->timeout = secs;
        return 0;
}

int msb_run_opts_set_auto_remove(struct msb_run_opts *o, bool remove)
{
        o->auto_remove = remove;
        return 0;
}

int msb_run_opts_set_stdio(struct msb_run_opts *o, int in, int out, int err)
{
        o->fds[0] = in;
        o->fds[1] = out;
        o->fds[2] = err;
        return 0;
}

int msb_run_opts_add_volume(struct msb_run_opts *o, const char *host, const char *guest, unsigned flags,
                            struct msb_error *err)
{
        if (!host || !*host)
                return msb_err(err, EINVAL, "volume: host path is empty");
        if (!guest || !*guest)
                return msb_err(err, EINVAL, "volume '%s': guest path is empty", host);
        if (flags & ~(MSB_VOLUME_RO | MSB_VOLUME_OWNER_PASSTHROUGH | MSB_VOLUME_NOSUID | MSB_VOLUME_NOEXEC))
                return msb_err(err, EINVAL, "volume '%s:%s': unknown flags 0x%x", host, guest, flags);
        if (o->nvols >= MAX_VOLUMES)
                return msb_err(err, E2BIG, "volume '%s:%s': at most %u volumes per sandbox", host, guest, MAX_VOLUMES);
        _cleanup_free_ char *g = guest_path_normalize(guest);
        const char *why;
        if (guest_path_check(g, &why) < 0)
                return msb_err(err, EINVAL, "volume '%s:%s': guest path %s", host, guest, why);
        /* symlinks in HOST are resolved once, here */
        _cleanup_free_ char *real = realpath(host, NULL);
        if (!real)
                return msb_err(err, errno, "volume '%s:%s': host path '%s' %s", host, guest, host,
                               errno == ENOENT ? "does not exist" : strerror(errno));
        struct stat st;
        if (stat(real, &st) < 0)
                return msb_err(err, errno, "volume '%s:%s': %s", host, guest, strerror(errno));
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
                return msb_err(err, EINVAL,
                               "volume '%s:%s': host path %s is neither a regular file nor a directory (a socket, "
                               "device or fifo cannot be shared)",
                               host, guest, real);
        for (size_t i = 0; i < o->nvols; i++)
                if (!strcmp(o->vols[i].guest, g))
                        return msb_err(err, EINVAL, "volume '%s:%s': guest path %s is already used by another volume",
                                       host, guest, g);
        o->vols[o->nvols++] =
                (struct volume){.host = TAKE_PTR(real), .guest = TAKE_PTR(g), .flags = flags, .file = S_ISREG(st.st_mode)};
        return 0;
}

/* ---------------- runtime dir ---------------- */

static void cleanup_stale(struct msb_ctx *ctx)
{
        DIR *d = opendir(ctx->runtime_dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *lock = xasprintf("%s/%s/lock", ctx->runtime_dir, de->d_name);
                _cleanup_close_ int fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0) {
                        /* no lock file: only remove dirs old enough to not
                         * be a run that is still being set up */
                        struct stat st;
                        _cleanup_free_ char *dir = xasprintf("%s/%s", ctx->runtime_dir, de->d_name);
                        if (stat(dir, &st) == 0 && time(NULL) - st.st_mtime > 60) {
                                msb_log(ctx, 1, "removing stale sandbox dir %s", dir);
                                rm_rf_at(dirfd(d), de->d_name);
                        }
                        continue;
                }
                if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                        msb_log(ctx, 1, "removing leftovers of sandbox %s", de->d_name);
                        rm_rf_at(dirfd(d), de->d_name);
                }
        }
        closedir(d);
}



static void sandbox_teardown(struct sandbox *sb)
{
        /* signal everyone first: QEMU's and the servers' exits (address
         * space, namespaces) then overlap instead of queueing */
        proc_kill(sb->qemu.pid, sb->qemu.pidfd);
        for (size_t i = 0; i < sb->nfsd; i++)
                proc_kill(sb->fsd[i].pid, sb->fsd[i].pidfd);
        if (sb->qemu.pid > 0)
                proc_kill_wait(sb->qemu.pid, &sb->qemu.pidfd);
        console_stop(sb);
        for (size_t i = 0; i < sb->nfsd; i++) {
                proc_kill_wait(sb->fsd[i].pid, &sb->fsd[i].pidfd);
                free(sb->fsd[i].what);
                free(sb->fsd[i].log);
        }
        free(sb->qemu.what);
        for (size_t i = 0; i < sb->nshares; i++) {
                free(sb->shares[i].tag);
                free(sb->shares[i].socket_path);
        }
        if (sb->ctl >= 0)
                close(sb->ctl);
        warm_release(sb);
        if (sb->dir) {
                rm_rf(sb->dir);
                free(sb->dir);
        }
        if (sb->lock_fd >= 0)
                close(sb->lock_fd);
        free(sb->console);
        free(sb->net_socket);
        free(sb->net_tap);
}

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
static bool child_failed(const struct child *c, char *how, size_t howsz, bool *ret_signaled)
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

/* Start one virtio-fs server: msb binds and listens on its socket, the
 * server inherits the listening socket, so QEMU can connect the moment it
 * starts (no wait-for-socket race).  The device gets a random tag, never
 * derived from a path, so two shares can never collide. */
static int add_server(struct sandbox *sb, char **argv_for_fd3, const char *what, struct msb_error *err)
{
        if (sb->warm)
                return warm_add_server(sb, argv_for_fd3, what, err);
        size_t i = sb->nshares;
        char tag[33];
        random_hex(tag, 8);
        memmove(tag + 3, tag, 17);
        memcpy(tag, "msb", 3);
        _cleanup_free_ char *sock = xasprintf("%s/fs%zu.sock", sb->dir, i);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(sock) >= sizeof(sa.sun_path))
                return msb_err(err, ENAMETOOLONG, "runtime dir path %s is too long for a unix socket; set MSB_HOME",
                               sb->dir);
        strcpy(sa.sun_path, sock);
        _cleanup_close_ int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        /* two: QEMU, and a warm server's configuration (pool.c) */
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 2) < 0)
                return msb_err(err, errno, "cannot create socket %s: %s", sock, strerror(errno));
        _cleanup_free_ char *logp = xasprintf("%s/fsd%zu.log", sb->dir, i);
        _cleanup_close_ int logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        struct child *c = &sb->fsd[sb->nfsd];
        int r = proc_spawn(argv_for_fd3, -1, logfd, logfd, lfd, &c->pid, &c->pidfd);
        if (r < 0)
                return msb_err(err, r, "cannot start %s: %s", argv_for_fd3[0], strerror(-r));
        c->what = xstrdup(what);
        c->log = TAKE_PTR(logp);
        sb->nfsd++;
        sb->shares[i].tag = xstrdup(tag);
        sb->shares[i].socket_path = TAKE_PTR(sock);
        sb->nshares++;
        return 0;
}

static int add_share(struct sandbox *sb, const struct fsd_backend *be, const struct fsd_share *share,
                     struct msb_error *err)
{
        _cleanup_strv_ char **argv = be->argv(share, 3);
        _cleanup_free_ char *what = xasprintf("virtio-fs server for %s", share->path);
        return add_server(sb, argv, what, err);
}

/* All volumes behind one device (msb-fsd): any number of them costs one
 * process and one of microvm's eight virtio-mmio slots. */
static int add_volumes(struct sandbox *sb, const struct fsd_backend *be, const struct msb_run_opts *o,
                       struct msb_error *err)
{
        struct fsd_share sh[MAX_VOLUMES];
        for (size_t i = 0; i < o->nvols; i++)
                sh[i] = (struct fsd_share){.path = o->vols[i].host,
                                           .file = o->vols[i].file,
                                           .read_only = o->vols[i].flags & MSB_VOLUME_RO,
                                           .owner_passthrough = o->vols[i].flags & MSB_VOLUME_OWNER_PASSTHROUGH};
        _cleanup_strv_ char **argv = be->argv_multi(sh, o->nvols, 3);
        return add_server(sb, argv, "virtio-fs server for the volumes", err);
}

/* Final env: image Env, then -e values overriding by key. */
static char **merge_env(char **image_env, char **user_env)
{
        char **out = NULL;
        for (char **e = image_env; e && *e; e++)
                strv_push(&out, *e);
        for (char **e = user_env; e && *e; e++) {
                size_t k = (size_t)(strchr(*e, '=') - *e);
                bool replaced = false;
                for (char **x = out; x && *x; x++)
                        if (!strncmp(*x, *e, k) && (*x)[k] == '=') {
                                free(*x);
                                *x = xstrdup(*e);
                                replaced = true;
                        }
                if (!replaced)
                        strv_push(&out, *e);
        }
        return out;
}

static int cmp_depth(const void *a, const void *b)
{
        const struct msb_mount_spec *x = a, *y = b;
        size_t dx = 0, dy = 0;
        for (const char *s = x->path; *s; s++)
                dx += *s == '/';
        for (const char *s = y->path; *s; s++)
                dy += *s == '/';
        return dx < dy ? -1 : dx > dy ? 1 : strcmp(x->path, y->path);
}

/* the main process's id on the guest channel */
#define MAIN_ID 1u

struct relay {
        struct msb_buf out; /* to guest */
        struct msb_reader rd;
        bool have_hello, done;
        bool stdout_broken, stderr_broken;
        int status;
        char *error;
        int sigints;
        uint32_t stdin_unacked; /* STDIN bytes the guest has not handed on yet */
        uint32_t out_owed;      /* output written out, not acknowledged yet */
        const struct msb_run_opts *o;
        /* the loop's */
        struct vm *vm;
        int sfd;
        bool stdin_open, qemu_gone, vm_killed;
        int64_t kill_at; /* --timeout */
        char *failure;   /* msb's own failure: the VM died, a server died, ... */
};

/* The volume an agentd message "GUEST: ..." is about, if any. */
static const struct volume *volume_of(const struct msb_run_opts *o, const char *msg)
{
        for (size_t i = 0; i < o->nvols; i++) {
                size_t n = strlen(o->vols[i].guest);
                if (!strncmp(msg, o->vols[i].guest, n) && msg[n] == ':' && msg[n + 1] == ' ')
                        return &o->vols[i];
        }
        return NULL;
}

static int write_host(int fd, const uint8_t *p, size_t n, bool *broken)
{
        if (*broken)
                return 0;
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd pf = {.fd = fd, .events = POLLOUT};
                                poll(&pf, 1, -1);
                                continue;
                        }
                        /* reader went away (EPIPE): drop output, keep running */
                        *broken = true;
                        return 0;
                }
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

static int exec_status(int e)
{
        return e == ENOENT || e == ENOTDIR ? MSB_EXIT_NOT_FOUND : MSB_EXIT_NOT_EXECUTABLE;
}

static int handle_msg(struct sandbox *sb, struct relay *rl, struct msb_msg *m, const struct msb_exec_msg *run)
{
        switch (m->type) {
        case MSB_MSG_HELLO:
                if (rl->have_hello)
                        return -EPROTO;
                if (m->u.hello.version != MSB_PROTO_VERSION) {
                        rl->error = xasprintf("guest agent speaks protocol version %u, msb speaks %u: rebuild the "
                                              "guest kit",
                                              m->u.hello.version, MSB_PROTO_VERSION);
                        rl->done = true;
                        return 0;
                }
                rl->have_hello = true;
                msb_log(sb->ctx, 1, "guest agent ready; running %s", run->argv[0]);
                return 0;
        case MSB_MSG_STDOUT:
        case MSB_MSG_STDERR:
                if (m->id != MAIN_ID)
                        return -EPROTO;
                write_host(sb->o->fds[m->type == MSB_MSG_STDOUT ? 1 : 2], m->u.data.data, m->u.data.len,
                           m->type == MSB_MSG_STDOUT ? &rl->stdout_broken : &rl->stderr_broken);
                /* written out (or dropped for a reader that went away):
                 * the guest may send this much more.  Said once half a
                 * window is owed, not per chunk: every ACK wakes the guest,
                 * which under TCG cost a third of the output's throughput;
                 * the guest stops only at a whole window, so it never waits
                 * on an ACK held back here. */
                if (m->u.data.len > MSB_PROTO_WINDOW - rl->out_owed)
                        return -EPROTO; /* more than its window */
                rl->out_owed += (uint32_t)m->u.data.len;
                if (rl->out_owed >= MSB_PROTO_WINDOW / 2) {
                        msb_enc_u32(&rl->out, MSB_MSG_ACK, MAIN_ID, rl->out_owed);
                        rl->out_owed = 0;
                }
                return 0;
        case MSB_MSG_ACK:
                if (m->id != MAIN_ID || m->u.ack > rl->stdin_unacked)
                        return -EPROTO;
                rl->stdin_unacked -= m->u.ack;
                return 0;
        case MSB_MSG_STARTED:
                return m->id == MAIN_ID ? 0 : -EPROTO;
        case MSB_MSG_EXIT:
                if (m->id != MAIN_ID)
                        return -EPROTO;
                rl->status = m->u.exit.kind == MSB_EXIT_SIGNAL ? 128 + (int)m->u.exit.value : (int)m->u.exit.value;
                /* all output came before EXIT and has been written out;
                 * agentd synced the volumes before it sent EXIT, so the VM
                 * holds nothing more of ours and is stopped at once */
                rl->done = true;
                msb_enc_empty(&rl->out, MSB_MSG_SHUTDOWN);
                return 0;
        case MSB_MSG_ERROR: {
                if (m->id != MAIN_ID && m->id != 0)
                        return -EPROTO;
                const struct volume *v;
                const char *step = m->u.error.step;
                int e = m->u.error.err;
                if (!strcmp(step, "exec")) {
                        rl->status = exec_status(e);
                        rl->error = xasprintf("%s: %s", m->u.error.message,
                                              e == ENOENT ? "executable file not found in $PATH"
                                                          : (e > 0 && e < 4096 ? strerror(e) : "unknown error"));
                        rl->status = -rl->status; /* mark: exec error with a status */
                } else if (!strcmp(step, "volume") && (v = volume_of(rl->o, m->u.error.message))) {
                        /* agentd names the guest path; add the host side */
                        rl->error = xasprintf("volume '%s:%s': %s%s%s", v->host, v->guest,
                                              m->u.error.message + strlen(v->guest) + 2, e ? ": " : "",
                                              e > 0 && e < 4096 ? strerror(e) : "");
                } else {
                        rl->error = xasprintf("guest setup failed at step '%s': %s%s%s", step, m->u.error.message,
                                              e ? ": " : "", e > 0 && e < 4096 ? strerror(e) : "");
                }
                rl->done = true;
                msb_enc_empty(&rl->out, MSB_MSG_SHUTDOWN);
                return 0;
        }
        default:
                /* host-bound types only; anything else is a violation */
                return -EPROTO;
        }
}

/* Does a volume at guest path g cover path p (p itself, or a parent)? */
static bool volume_covers(const char *g, const char *p)
{
        size_t n = strlen(g);
        if (!strcmp(g, "/"))
                return true;
        return !strncmp(p, g, n) && (p[n] == '\0' || p[n] == '/');
}

/* Does a volume at guest path g cover path p, or lie inside it? */
static bool volume_touches(const char *g, const char *p)
{
        return volume_covers(g, p) || volume_covers(p, g);
}

/*
 * The image root as the host reads it before the VM starts, to do work the
 * guest would do slowly under TCG (who the user is, where argv[0] is).  That
 * is only right where no volume changes what the guest will see, and paths
 * in an image may go through its symlinks (/bin -> usr/bin, and volumes
 * are placed by agentd with the same resolution): so volumes and the paths
 * looked at are compared both as written and as resolved in the image.
 */
struct image_view {
        int rfd;            /* the image root, O_PATH */
        char *host_prefix;  /* its real host path */
        char **vol_real;    /* each volume's guest path, resolved in the image */
        const struct msb_run_opts *o;
};

/* Guest path p as it resolves in the image: its longest existing prefix
 * with symlinks followed inside the root, then the rest as written. */
static char *image_resolve(const struct image_view *v, const char *p)
{
        _cleanup_free_ char *norm = guest_path_normalize(p);
        size_t n = strlen(norm);
        for (;;) {
                _cleanup_free_ char *pre = xasprintf("%.*s", (int)n, norm);
                struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
                _cleanup_close_ int fd = n > 1 ? (int)syscall(SYS_openat2, v->rfd, pre + 1, &how, sizeof(how)) : -1;
                if (fd >= 0) {
                        char link[64], real[PATH_MAX];
                        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
                        ssize_t l = readlink(link, real, sizeof(real) - 1);
                        size_t pl = strlen(v->host_prefix);
                        if (l > 0) {
                                real[l] = 0;
                                if (!strncmp(real, v->host_prefix, pl) && (real[pl] == '/' || real[pl] == 0))
                                        return real[pl] || norm[n] ? xasprintf("%s%s", real + pl, norm + n)
                                                                   : xstrdup("/");
                        }
                        break;
                }
                if (n <= 1)
                        break;
                while (n > 1 && norm[n - 1] != '/')
                        n--;
                if (n > 1)
                        n--; /* drop the '/' too */
        }
        return xstrdup(norm);
}

static bool image_view_open(struct image_view *v, const char *rootfs, const struct msb_run_opts *o)
{
        *v = (struct image_view){.rfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC), .o = o};
        if (v->rfd < 0)
                return false;
        char link[64], real[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", v->rfd);
        ssize_t l = readlink(link, real, sizeof(real) - 1);
        if (l <= 0) {
                close(v->rfd);
                return false;
        }
        real[l] = 0;
        v->host_prefix = xstrdup(strcmp(real, "/") ? real : "");
        v->vol_real = xcalloc(o->nvols + 1, sizeof(char *));
        for (size_t i = 0; i < o->nvols; i++)
                v->vol_real[i] = image_resolve(v, o->vols[i].guest);
        return true;
}

static void image_view_close(struct image_view *v)
{
        if (v->rfd >= 0)
                close(v->rfd);
        free(v->host_prefix);
        for (size_t i = 0; v->vol_real && i < v->o->nvols; i++)
                free(v->vol_real[i]);
        free(v->vol_real);
}

/* Does some volume change what the guest sees at or under path p? */
static bool image_path_shadowed(const struct image_view *v, const char *p)
{
        _cleanup_free_ char *real = image_resolve(v, p);
        for (size_t i = 0; i < v->o->nvols; i++)
                if (volume_touches(v->o->vols[i].guest, p) || volume_touches(v->vol_real[i], real))
                        return true;
        return false;
}

/*
 * Resolve the user from the image's /etc/passwd and /etc/group here, in
 * microseconds, instead of in the guest, where reading two files through
 * overlayfs and virtio-fs under TCG cost ~10 ms of every start.  When a
 * volume covers either file the command would see other contents, so the
 * guest resolves it (*have stays false); likewise if the files cannot be
 * read here for any reason but absence.  An unknown name fails before any
 * VM starts.
 */
static int host_resolve_user(const struct image_view *v, const char *spec, struct ids *ids, bool *have,
                             struct msb_error *err)
{
        *have = false;
        if (v->rfd < 0 || image_path_shadowed(v, "/etc/passwd") || image_path_shadowed(v, "/etc/group"))
                return 0;
        _cleanup_free_ char *passwd = NULL, *group = NULL;
        int r = read_file_in_root(v->rfd, "etc/passwd", 4u << 20, &passwd, NULL);
        if (r < 0 && r != -ENOENT)
                return 0;
        r = read_file_in_root(v->rfd, "etc/group", 4u << 20, &group, NULL);
        if (r < 0 && r != -ENOENT)
                return 0;
        char why[1200];
        if (ids_resolve(spec, passwd, group, ids, why, sizeof(why)) < 0)
                return msb_err(err, ENOENT, "%s: name one the image has, or a numeric uid[:gid] (-u)", why);
        *have = true;
        return 0;
}

/*
 * Find argv[0] on the command's PATH in the image, as execvp in the guest
 * would: the first PATH entry holding a regular file with an execute bit.
 * In the guest each miss was a lookup through overlayfs and virtio-fs
 * (busybox's `true` is in the sixth and last default entry: ~14 round trips
 * under TCG).  Returns the path to exec, or NULL to leave the search to the
 * guest: a name with a slash, a relative PATH entry, a volume on or inside
 * a PATH entry, anything unexpected, or no match (the guest then reports
 * "not found" as before).  agentd falls back to its own search if exec of
 * this path fails.
 */
static char *host_find_exec(const struct image_view *v, const char *cmd, char **env)
{
        if (v->rfd < 0 || !*cmd || strchr(cmd, '/') || strlen(cmd) > 255)
                return NULL;
        const char *path = MSB_DEFAULT_PATH;
        for (char **e = env; e && *e; e++)
                if (!strncmp(*e, "PATH=", 5)) {
                        path = *e + 5;
                        break;
                }
        for (const char *s = path;;) {
                const char *e = strchrnul(s, ':');
                _cleanup_free_ char *dir = xasprintf("%.*s", (int)(e - s), s);
                if (dir[0] != '/')
                        return NULL;
                _cleanup_free_ char *norm = guest_path_normalize(dir);
                if (strstr(norm, "/..")) /* volumes are compared as plain paths */
                        return NULL;
                if (image_path_shadowed(v, norm))
                        return NULL;
                _cleanup_free_ char *full = xasprintf("%s/%s", strcmp(norm, "/") ? norm : "", cmd);
                struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
                _cleanup_close_ int fd = (int)syscall(SYS_openat2, v->rfd, full + 1, &how, sizeof(how));
                struct stat st;
                if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
                        return TAKE_PTR(full);
                if (fd < 0 && errno != ENOENT && errno != ENOTDIR)
                        return NULL;
                if (!*e)
                        return NULL;
                s = e + 1;
        }
}

static ssize_t fd_pread(void *ctx, void *buf, size_t n, uint64_t off)
{
        return pread(*(int *)ctx, buf, n, (off_t)off);
}

/* An image file, resolved in the image: opened read-only if regular. */
static int image_open_file(const struct image_view *v, const char *path, struct stat *st)
{
        struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                               .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
        int fd = path[0] == '/' ? (int)syscall(SYS_openat2, v->rfd, path + 1, &how, sizeof(how)) : -1;
        if (fd >= 0 && (fstat(fd, st) < 0 || !S_ISREG(st->st_mode))) {
                close(fd);
                fd = -1;
        }
        return fd;
}

/*
 * What a dynamic executable loads before its own code runs: the program
 * interpreter and the libraries it names, where the loader looks first for
 * a glibc or musl image.  agentd reads them ahead with the executable: left
 * to the loader, each is paged in fault by fault, one round trip at a time.
 * A hint only: a wrong guess costs a read-ahead, a missed library nothing.
 */
static char **host_prefetch_list(const struct image_view *v, const char *exec_path)
{
        static const char *const libdirs[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64",
                                              "/usr/lib64", "/lib", "/usr/lib"};
        if (!exec_path || v->rfd < 0)
                return NULL;
        struct stat st;
        _cleanup_close_ int fd = image_open_file(v, exec_path, &st);
        if (fd < 0)
                return NULL;
        struct elf_src src = {.ctx = &fd, .size = (uint64_t)st.st_size, .pread = fd_pread};
        _cleanup_free_ char *interp = NULL;
        _cleanup_strv_ char **needed = NULL;
        elf_deps(&src, MSB_PROTO_MAX_PREFETCH - 1, &interp, &needed);
        char **list = NULL;
        if (interp) {
                _cleanup_close_ int ifd = image_open_file(v, interp, &st);
                if (ifd >= 0)
                        strv_push(&list, interp);
        }
        for (char **n = needed; n && *n; n++)
                for (size_t d = 0; d < ARRAY_SIZE(libdirs); d++) {
                        _cleanup_free_ char *p = xasprintf("%s/%s", libdirs[d], *n);
                        _cleanup_close_ int lfd = image_open_file(v, p, &st);
                        if (lfd >= 0) {
                                strv_push(&list, p);
                                break;
                        }
                }
        return list;
}

int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int boot_timeout_ms(enum msb_accel a)
{
        /* seconds, 1 to a day; anything else (atoi's overflow included) is
         * ignored for the default */
        const char *e = getenv("MSB_BOOT_TIMEOUT");
        if (e && *e) {
                char *end;
                errno = 0;
                long v = strtol(e, &end, 10);
                if (!errno && !*end && v > 0 && v <= 86400)
                        return (int)v * 1000;
        }
        return a == MSB_ACCEL_KVM ? 30000 : 90000;
}

/* The fs backend, and what it can serve. */
static int vm_backend(struct vm *vm, const struct msb_run_opts *o, struct msb_error *err)
{
        vm->be = fsd_backend_find(o->fs_backend);
        const struct fsd_backend *be = vm->be;
        if (!be)
                return msb_err(err, EINVAL, "fs backend '%s': unknown; use msb or virtiofsd",
                               o->fs_backend ? o->fs_backend : getenv("MSB_FS_BACKEND"));
        /* QEMU 7.2's virtiofsd refuses to run unprivileged; say so up front
         * rather than as a server that died. */
        if (be->needs_root && geteuid() != 0 && !getenv("MSB_VIRTIOFSD"))
                return msb_err(err, EPERM, "the virtiofsd fs backend (/usr/lib/qemu/virtiofsd) only runs as root; "
                                           "run msb with sudo or use --fs-backend msb");
        if (be->argv_multi)
                return 0;
        /* one device per volume: microvm has 8 virtio-mmio slots, two of
         * them taken by the control port and the image */
        if (o->nvols > VIRTIOFSD_MAX_VOLUMES)
                return msb_err(err, E2BIG,
                               "the %s fs backend takes at most %u volumes (one device each); use --fs-backend msb "
                               "for up to %u",
                               be->name, VIRTIOFSD_MAX_VOLUMES, MAX_VOLUMES);
        for (size_t i = 0; i < o->nvols; i++)
                if (o->vols[i].file)
                        return msb_err(err, ENOTSUP,
                                       "volume '%s:%s': the %s fs backend cannot share a single file; use "
                                       "--fs-backend msb",
                                       o->vols[i].host, o->vols[i].guest, be->name);
        return 0;
}

/* The image root and config (pulled first if asked or missing), or the
 * --rootfs directory. */
static int vm_image(struct vm *vm, struct msb_ctx *ctx, const struct msb_run_opts *o, const struct vm_opts *vo,
                    struct msb_error *err)
{
        if (o->rootfs) {
                vm->rootfs = realpath(o->rootfs, NULL);
                struct stat st;
                if (!vm->rootfs || stat(vm->rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
                        return msb_err(err, ENOENT, "--rootfs '%s': not a directory", o->rootfs);
                return 0;
        }
        int r;
        if (o->pull == MSB_PULL_ALWAYS && (r = msb_image_pull(ctx, o->image, NULL, err)) < 0)
                return r;
        r = msb_image_open(ctx, o->image, &vm->rootfs, &vm->cfg, err);
        if (r == -ENOENT && o->pull == MSB_PULL_MISSING) {
                struct msb_error perr = {0};
                int pr = msb_image_pull(ctx, o->image, NULL, &perr);
                if (pr < 0)
                        return msb_err(err, pr, "image '%s' is not in the local store, and pulling it failed: %s",
                                       o->image, perr.message);
                r = msb_image_open(ctx, o->image, &vm->rootfs, &vm->cfg, err);
        }
        if (r < 0)
                return r;
        if (vo->pinned_rootfs && strcmp(vo->pinned_rootfs, vm->rootfs))
                return msb_err(err, ESTALE,
                               "image '%s' changed since this sandbox was created (pulled again?), and its disk was "
                               "made on the old one: msb rm the sandbox and create it again",
                               o->image);
        return 0;
}

/* The main command as docker composes it, its environment and user; what
 * the host can resolve from the image is resolved here. */
static int vm_main_command(struct vm *vm, struct msb_ctx *ctx, const struct msb_run_opts *o,
                           const struct vm_opts *vo, struct msb_error *err)
{
        if (o->entrypoint_set) {
                if (o->entrypoint && *o->entrypoint)
                        strv_push(&vm->argv, o->entrypoint);
        } else
                for (char **e = vm->cfg.entrypoint; e && *e; e++)
                        strv_push(&vm->argv, *e);
        char **cmd = o->command && o->command[0] ? o->command : (o->entrypoint_set ? NULL : vm->cfg.cmd);
        for (char **e = cmd; e && *e; e++)
                strv_push(&vm->argv, *e);
        if ((!vm->argv || !vm->argv[0]) && !vo->main_optional)
                return msb_err(err, EINVAL, "no command given and the image has no Cmd or Entrypoint: add one "
                                            "after the image name");
        vm->env = merge_env(vm->cfg.env, o->env);
        vm->user = o->user ? o->user : (vm->cfg.user ? vm->cfg.user : "");
        if (!vm->argv || !vm->argv[0])
                return 0;
        struct image_view view;
        if (!image_view_open(&view, vm->rootfs, o))
                view = (struct image_view){.rfd = -1};
        int r = 0;
        if (o->ids_set) {
                /* given (an OCI bundle's process.user): no lookup in the image */
                vm->ids = o->ids;
                vm->have_ids = true;
                const char *home = "/";
                for (char **e = vm->env; e && *e; e++)
                        if (!strncmp(*e, "HOME=", 5) && (*e)[5] == '/')
                                home = *e + 5;
                snprintf(vm->ids.home, sizeof(vm->ids.home), "%s", home);
        } else {
                r = host_resolve_user(&view, vm->user, &vm->ids, &vm->have_ids, err);
        }
        if (r == 0) {
                vm->exec_path = host_find_exec(&view, vm->argv[0], vm->env);
                vm->prefetch = host_prefetch_list(&view, vm->exec_path);
        }
        image_view_close(&view);
        if (r < 0)
                return r;
        char who[64] = "left to the guest";
        if (vm->have_ids)
                snprintf(who, sizeof(who), "uid %u gid %u", vm->ids.uid, vm->ids.gid);
        msb_log(ctx, 1, "from the image: user %s; %s %s%s; %zu more file(s) to read ahead", who, vm->argv[0],
                vm->exec_path ? "is " : "", vm->exec_path ? vm->exec_path : "left to the guest's PATH search",
                strv_len(vm->prefetch));
        return 0;
}

/* What to run, resolved before anything is started: the image, the main
 * command, its user, the kernel and the accelerator. */
static int vm_plan(struct vm *vm, struct msb_ctx *ctx, const struct msb_run_opts *o, const struct vm_opts *vo,
                   struct msb_error *err)
{
        if (!o->image && !o->rootfs)
                return msb_err(err, EINVAL, "no image given: name an image or use --rootfs DIR");
        int r = net_opts_check(o, err);
        if (r >= 0)
                r = vm_backend(vm, o, err);
        if (r >= 0)
                r = vm_image(vm, ctx, o, vo, err);
        if (r >= 0)
                r = vm_main_command(vm, ctx, o, vo, err);
        if (r >= 0)
                r = msb_kit_prepare(ctx, &vm->kit, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *accel_why = NULL;
        r = msb_accel_resolve(ctx, o->accel, &vm->accel, &accel_why, err);
        if (r < 0)
                return r;
        msb_log(ctx, 1, "accelerator: %s (%s)", vm->accel == MSB_ACCEL_KVM ? "kvm" : "tcg", accel_why);
        msb_log(ctx, 1, "kernel: %s (%s, %s kit)", vm->kit.kernel, vm->kit.release, vm->kit.flavor);
        return 0;
}

static int vm_rootfs_marker(struct vm *vm, struct msb_ctx *ctx);

/* The runtime dir <runtime>/<id>/, locked for as long as the VM runs. */
static int vm_runtime_dir(struct vm *vm, struct msb_ctx *ctx, struct msb_error *err)
{
        struct sandbox *sb = &vm->sb;
        if (sb->warm) {
                /* the pool's VM's, taken over (pool.c); a killed run's
                 * leftovers are collected as by a boot */
                cleanup_stale(ctx);
                return vm_rootfs_marker(vm, ctx);
        }
        int r = mkdir_p(ctx->runtime_dir, 0700);
        if (r < 0)
                return msb_err(err, r, "cannot create runtime dir %s: %s", ctx->runtime_dir, strerror(-r));
        cleanup_stale(ctx);
        random_hex(sb->id, 12);
        /* made and locked under a dot name, which cleanup_stale skips, and
         * only then put in place: another run's cleanup_stale can never
         * take the lock of a dir still being set up */
        _cleanup_free_ char *tmp = xasprintf("%s/.%s", ctx->runtime_dir, sb->id);
        if (mkdir(tmp, 0700) < 0)
                return msb_err(err, errno, "cannot create %s: %s", tmp, strerror(errno));
        _cleanup_free_ char *lock = xasprintf("%s/lock", tmp);
        sb->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (sb->lock_fd < 0 || flock(sb->lock_fd, LOCK_EX) < 0) {
                r = msb_err(err, errno, "cannot lock %s: %s", lock, strerror(errno));
                rm_rf(tmp);
                return r;
        }
        _cleanup_free_ char *dir = xasprintf("%s/%s", ctx->runtime_dir, sb->id);
        if (rename(tmp, dir) < 0) {
                r = msb_err(err, errno, "cannot create %s: %s", dir, strerror(errno));
                rm_rf(tmp);
                return r;
        }
        sb->dir = TAKE_PTR(dir);
        sb->console = xasprintf("%s/console.log", sb->dir);
        return vm_rootfs_marker(vm, ctx);
}

static int vm_rootfs_marker(struct vm *vm, struct msb_ctx *ctx)
{
        struct sandbox *sb = &vm->sb;
        msb_log(ctx, 1, "sandbox %s, runtime dir %s%s", sb->id, sb->dir, sb->warm ? " (a pool's VM)" : "");
        if (!vm->rootfs)
                return 0;
        /* which image root this run uses: msb rmi refuses to remove it */
        _cleanup_free_ char *ip = xasprintf("%s/rootfs", sb->dir);
        (void)write_file_replace_at(AT_FDCWD, ip, vm->rootfs, strlen(vm->rootfs), 0600);
        return 0;
}

/* The virtio-fs servers: the image root, then the volumes. */
static int vm_shares(struct vm *vm, const struct msb_run_opts *o, struct msb_error *err)
{
        struct sandbox *sb = &vm->sb;
        const struct fsd_backend *be = vm->be;
        /* an OCI bundle's root is written by its container, and its owners
         * are the container's (o->root_rw); an image root never changes */
        int r = add_share(sb, be,
                          &(struct fsd_share){.path = vm->rootfs,
                                              .read_only = !o->root_rw || o->root_ro,
                                              .rootfs = !o->root_rw,
                                              .owner_passthrough = o->root_rw},
                          err);
        if (r < 0)
                return r;
        if (o->nvols && be->argv_multi) {
                r = add_volumes(sb, be, o, err);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < o->nvols; i++) {
                if (be->argv_multi) {
                        snprintf(vm->subs[i], sizeof(vm->subs[i]), "%zu", i);
                } else {
                        vm->subs[i][0] = 0;
                        r = add_share(sb, be,
                                      &(struct fsd_share){.path = o->vols[i].host,
                                                          .read_only = o->vols[i].flags & MSB_VOLUME_RO,
                                                          .owner_passthrough =
                                                                  o->vols[i].flags & MSB_VOLUME_OWNER_PASSTHROUGH},
                                      err);
                        if (r < 0)
                                return r;
                }
                vm->mounts[i] = (struct msb_mount_spec){
                        .tag = sb->shares[be->argv_multi ? 1 : i + 1].tag,
                        .sub = vm->subs[i],
                        .path = o->vols[i].guest,
                        .flags = (o->vols[i].flags & MSB_VOLUME_RO ? MSB_MOUNT_RO : 0) |
                                 (o->vols[i].file ? MSB_MOUNT_FILE : 0) |
                                 (o->vols[i].flags & MSB_VOLUME_NOSUID ? MSB_MOUNT_NOSUID : 0) |
                                 (o->vols[i].flags & MSB_VOLUME_NOEXEC ? MSB_MOUNT_NOEXEC : 0)};
        }
        for (size_t i = 0; i < o->ntmpfs; i++)
                vm->mounts[o->nvols + i] = (struct msb_mount_spec){
                        .tag = o->tmpfs[i].options, .sub = o->tmpfs[i].type, .path = o->tmpfs[i].path,
                        .flags = MSB_MOUNT_KERNFS | o->tmpfs[i].flags};
        /* parents before children: /data before /data/sub */
        qsort(vm->mounts, o->nvols + o->ntmpfs, sizeof(vm->mounts[0]), cmp_depth);
        /* then the steps on what is mounted, in their order */
        for (size_t i = 0; i < o->nsteps; i++)
                vm->mounts[o->nvols + o->ntmpfs + i] = (struct msb_mount_spec){
                        .tag = o->steps[i].value, .sub = "", .path = o->steps[i].path, .flags = o->steps[i].kind};
        return 0;
}

static int vm_qemu(struct vm *vm, const struct msb_run_opts *o, const struct vm_opts *vo, struct msb_error *err)
{
        struct sandbox *sb = &vm->sb;
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                return msb_err(err, errno, "socketpair: %s", strerror(errno));
        sb->ctl = sp[0];
        struct vmm_config vc = {
                .qemu = vmm_qemu_binary(),
                .kernel = vm->kit.kernel,
                .initramfs = vm->kit.initramfs,
                .accel = vm->accel,
                .cpus = o->cpus,
                .memory_mib = o->memory_mib,
                .ctl_fd = 3,
                .console_fd = 4,
                .debug = getenv("MSB_DEBUG_AGENT") != NULL,
                .tsc_khz = vm->accel == MSB_ACCEL_TCG ? msb_host_tsc_khz(sb->ctx) : 0,
                .acpi = vm->kit.acpi,
                /* a read-write root is mounted after SETUP, not early; a
                 * pool's VM has no root yet */
                .root_tag = o->root_rw || vo->warm ? NULL : sb->shares[0].tag,
                .warm = vo->warm,
                .shares = sb->shares,
                .nshares = sb->nshares,
                .disk = vo->disk,
                .net_socket = sb->net_socket,
                .net_tap = sb->net_tap,
                .net_mac = sb->net_mac,
        };
        _cleanup_strv_ char **qargv = vmm_qemu_argv(&vc);
        _cleanup_free_ char *qlog = xasprintf("%s/qemu.log", sb->dir);
        _cleanup_close_ int qlogfd = open(qlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int con = -1;
        int r = console_start(sb, &con, err);
        if (r < 0) {
                close(sp[1]);
                return r;
        }
        r = proc_spawn_fds(qargv, -1, qlogfd, qlogfd, (int[]){sp[1], con}, 2, &sb->qemu.pid, &sb->qemu.pidfd);
        close(sp[1]);
        close(con);
        if (r < 0)
                return msb_err(err, r, "cannot start %s: %s", qargv[0], strerror(-r));
        sb->qemu.what = xstrdup("QEMU");
        fcntl(sb->ctl, F_SETFL, fcntl(sb->ctl, F_GETFL) | O_NONBLOCK);
        return console_run(sb, err);
}

/* An EXEC's confinement (msb_confine) */
void exec_confine(struct msb_exec_msg *m, const struct msb_confine *c)
{
        m->flags |= MSB_EXEC_CONFINE | (c->no_new_privs ? MSB_EXEC_NO_NEW_PRIVS : 0);
        memcpy(m->caps, c->caps, sizeof(m->caps));
        m->nseccomp = (uint32_t)c->seccomp_len;
        m->seccomp = (uint8_t *)c->seccomp;
}

/* A pool's VM (pool.c): the kernel, a runtime dir, two warm virtio-fs
 * servers (the image root's and the volumes'), a warm msb-netd and QEMU,
 * booting with no sandbox yet. */
int vm_boot_warm(struct vm *vm, const struct msb_run_opts *o, struct msb_error *err)
{
        struct msb_ctx *ctx = vm->sb.ctx;
        _cleanup_free_ char *why = NULL;
        int r = msb_kit_prepare(ctx, &vm->kit, err);
        if (r >= 0)
                r = msb_accel_resolve(ctx, o->accel, &vm->accel, &why, err);
        if (r >= 0)
                r = vm_runtime_dir(vm, ctx, err);
        char *bin = msb_find_helper("MSB_FSD", "msb-fsd");
        char *argv[] = {bin ? bin : "msb-fsd", "--fd=3", "--warm", NULL};
        for (int i = 0; i < 2 && r >= 0; i++)
                r = add_server(&vm->sb, argv, i ? "virtio-fs server for the volumes" : "virtio-fs server for the image root",
                               err);
        free(bin);
        if (r >= 0)
                r = vm_net_warm(vm, err);
        if (r >= 0)
                r = vm_qemu(vm, o, &(struct vm_opts){.warm = true}, err);
        return r;
}

/* HELLO, SETUP and the main EXEC go out at once: they wait in the socket
 * until agentd opens its port, which saves a round trip at every start. */
static int vm_greet(struct vm *vm, const struct msb_run_opts *o, const struct vm_opts *vo, struct msb_error *err)
{
        struct sandbox *sb = &vm->sb;
        vm->hostname = o->hostname ? xstrdup(o->hostname)
                                   : vo->hostname ? xstrdup(vo->hostname) : xasprintf("msb-%.8s", sb->id);
        vm->setup = (struct msb_setup_msg){
                .flags = (vo->disk ? MSB_SETUP_DISK : 0) | (vm->has_net ? MSB_SETUP_NET : 0) |
                         (o->root_rw ? MSB_SETUP_ROOT_RW : 0) | (o->root_rw && o->root_ro ? MSB_SETUP_ROOT_RO : 0),
                .net = vm->net,
                .rootfs_tag = sb->shares[0].tag,
                .hostname = vm->hostname,
                .nmounts = (uint32_t)(o->nvols + o->ntmpfs + o->nsteps),
                .mounts = vm->mounts,
        };
        struct msb_exec_msg *m = &vm->main;
        *m = (struct msb_exec_msg){
                .id = VM_MAIN_ID,
                .flags = MSB_EXEC_MAIN | (o->stdin_forward ? MSB_EXEC_STDIN : 0) | (vo->tty ? MSB_EXEC_TTY : 0),
                .workdir = o->workdir ? o->workdir : (vm->cfg.workdir ? vm->cfg.workdir : ""),
                .user = (char *)vm->user,
                .argc = (uint32_t)strv_len(vm->argv),
                .argv = vm->argv,
                .envc = (uint32_t)strv_len(vm->env),
                .env = vm->env,
                .exec_path = vm->exec_path,
                .prefetch = vm->prefetch,
                .nprefetch = (uint32_t)strv_len(vm->prefetch),
                .rows = vo->tty ? vo->rows : 0,
                .cols = vo->tty ? vo->cols : 0,
                .nrlimits = o->nrlimits,
        };
        memcpy(m->rlimits, o->rlimits, sizeof(m->rlimits));
        if (o->confine_set)
                exec_confine(m, &o->confine);
        if (vm->have_ids) {
                m->flags |= MSB_EXEC_IDS;
                m->uid = vm->ids.uid;
                m->gid = vm->ids.gid;
                m->ngroups = vm->ids.ngroups;
                memcpy(m->groups, vm->ids.groups, vm->ids.ngroups * sizeof(vm->ids.groups[0]));
                m->home = vm->ids.home;
        }
        msb_enc_hello(&vm->out, MSB_PROTO_VERSION, "msb");
        if (msb_enc_setup(&vm->out, &vm->setup) < 0 ||
            (m->argc && !vo->hold_main && msb_enc_exec(&vm->out, m) < 0))
                return msb_err(err, E2BIG, "the command line and environment are too large");
        vm->boot_started = mono_ms();
        vm->boot_deadline = vm->boot_started + boot_timeout_ms(vm->accel);
        return 0;
}

struct vm *vm_new(struct msb_ctx *ctx, const struct msb_run_opts *o)
{
        struct vm *vm = xcalloc(1, sizeof(*vm));
        vm->sb = (struct sandbox){.ctx = ctx, .o = o, .lock_fd = -1, .ctl = -1};
        vm->sb.qemu.pidfd = -1;
        return vm;
}

int vm_start(struct msb_ctx *ctx, const struct msb_run_opts *o, const struct vm_opts *vo, struct vm **ret,
             struct msb_error *err)
{
        struct vm *vm = vm_new(ctx, o);
        int r = vm_plan(vm, ctx, o, vo, err);
        if (r >= 0)
                pool_take(vm, o, vo);
        if (r >= 0)
                r = vm_runtime_dir(vm, ctx, err);
        if (r >= 0)
                r = vm_shares(vm, o, err);
        if (r >= 0 && vm->sb.warm)
                r = warm_finish_shares(&vm->sb, err);
        if (r >= 0)
                r = vm_net(vm, o, err);
        if (r >= 0 && !vm->sb.warm)
                r = vm_qemu(vm, o, vo, err);
        if (r >= 0)
                r = vm_greet(vm, o, vo, err);
        if (r >= 0 && vm->sb.warm) {
                /* the guest starts on its SETUP while the servers confine
                 * themselves; what does not fit the socket now goes in the
                 * relay's loop */
                ssize_t n = write(vm->sb.ctl, msb_buf_head(&vm->out), msb_buf_pending(&vm->out));
                if (n > 0)
                        msb_buf_consume(&vm->out, (size_t)n);
                r = warm_settle(&vm->sb, err);
        }
        if (r < 0) {
                vm_free(vm);
                return r;
        }
        *ret = vm;
        return 0;
}

void vm_free(struct vm *vm)
{
        if (!vm)
                return;
        sandbox_teardown(&vm->sb);
        msb_kit_free(&vm->kit);
        msb_image_config_free(&vm->cfg);
        free(vm->rootfs);
        free(vm->hostname);
        free(vm->exec_path);
        strv_free(vm->argv);
        strv_free(vm->env);
        strv_free(vm->prefetch);
        msb_buf_free(&vm->out);
        free(vm);
}

/* Frames from the guest, as many as are whole.  got == 0: QEMU closed the
 * channel (it is exiting). */
static void relay_guest_in(struct relay *rl)
{
        struct sandbox *sb = &rl->vm->sb;
        uint8_t buf[65536];
        ssize_t got = read(sb->ctl, buf, sizeof(buf));
        if (got <= 0) {
                if (got == 0)
                        rl->qemu_gone = true;
                return;
        }
        msb_reader_feed(&rl->rd, buf, (size_t)got);
        struct msb_msg m;
        int q;
        while (!rl->done && (q = msb_reader_next(&rl->rd, &m)) == 1) {
                int h = handle_msg(sb, rl, &m, &rl->vm->main);
                msb_msg_free(&m);
                if (h < 0) {
                        q = h;
                        break;
                }
        }
        if (!rl->done && q < 0)
                rl->failure = xstrdup("the guest sent a malformed control message; stopping it");
        if (rl->done)
                /* the guest is told, if the socket takes it now; it is
                 * stopped anyway */
                (void)!write(sb->ctl, msb_buf_head(&rl->out), msb_buf_pending(&rl->out));
}

/* The first SIGINT/SIGTERM/SIGHUP goes to the command; a second one (or
 * one before the guest answered) stops the VM. */
static void relay_signals(struct relay *rl)
{
        struct signalfd_siginfo si;
        while (!rl->vm_killed && read(rl->sfd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGPIPE)
                        continue;
                if (rl->have_hello && !rl->done && rl->sigints == 0) {
                        msb_log(rl->vm->sb.ctx, 1, "forwarding signal %u to the command", si.ssi_signo);
                        msb_enc_u32(&rl->out, MSB_MSG_SIGNAL, MAIN_ID, si.ssi_signo);
                        rl->sigints++;
                } else if (!rl->done) {
                        rl->vm_killed = true;
                        rl->status = 128 + (int)si.ssi_signo;
                }
        }
}

static void relay_stdin(struct relay *rl)
{
        uint8_t buf[MSB_PROTO_DATA_CHUNK];
        ssize_t got = read(rl->o->fds[0], buf, sizeof(buf));
        if (got > 0) {
                msb_enc_data(&rl->out, MSB_MSG_STDIN, MAIN_ID, buf, (size_t)got);
                rl->stdin_unacked += (uint32_t)got;
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                msb_enc_id(&rl->out, MSB_MSG_STDIN_EOF, MAIN_ID);
                rl->stdin_open = false;
        }
}

/* A server also exits when QEMU closes its socket on the way out (a guest
 * panic, a power-off): then QEMU's exit is the story, and it follows
 * within moments. */
static void relay_server_exited(struct relay *rl, size_t i)
{
        struct sandbox *sb = &rl->vm->sb;
        struct pollfd q = {.fd = sb->qemu.pidfd, .events = POLLIN};
        bool qemu_exiting = poll(&q, 1, 1000) == 1, sig;
        char how[48];
        /* a server that failed is the cause, whether QEMU follows it or not */
        if (child_failed(&sb->fsd[i], how, sizeof(how), &sig))
                rl->failure = vm_failure(rl->vm, "the VM was stopped");
        proc_kill_wait(sb->fsd[i].pid, &sb->fsd[i].pidfd);
        sb->fsd[i].pid = 0;
        if (rl->failure)
                return;
        if (qemu_exiting)
                rl->qemu_gone = true;
        else
                rl->failure = xasprintf("the %s exited unexpectedly; the VM was stopped", sb->fsd[i].what);
}

/* QEMU is gone; frames it delivered may still be queued in the socket. */
static void relay_drain(struct relay *rl)
{
        struct sandbox *sb = &rl->vm->sb;
        for (;;) {
                uint8_t buf[65536];
                ssize_t got = read(sb->ctl, buf, sizeof(buf));
                if (got <= 0)
                        break;
                msb_reader_feed(&rl->rd, buf, (size_t)got);
                struct msb_msg m;
                while (!rl->done && msb_reader_next(&rl->rd, &m) == 1) {
                        handle_msg(sb, rl, &m, &rl->vm->main);
                        msb_msg_free(&m);
                }
        }
}

/* Boot deadline, then --timeout: ms to wait (-1: none).  Sets the outcome
 * when one has passed. */
static int relay_deadlines(struct relay *rl)
{
        int64_t now = mono_ms();
        if (!rl->have_hello && !rl->done) {
                if (now >= rl->vm->boot_deadline)
                        rl->failure = xasprintf("the VM did not start the guest agent within %d s",
                                                boot_timeout_ms(rl->vm->accel) / 1000);
                return (int)(rl->vm->boot_deadline > now ? rl->vm->boot_deadline - now : 0);
        }
        if (rl->kill_at && !rl->done) {
                if (now >= rl->kill_at) {
                        /* --timeout: the VM is stopped, as a second Ctrl-C would */
                        msb_log(rl->vm->sb.ctx, 1, "--timeout reached: stopping the VM");
                        rl->vm_killed = true;
                        rl->status = 124;
                }
                return (int)(rl->kill_at > now ? rl->kill_at - now : 0);
        }
        return -1;
}

static bool relay_over(const struct relay *rl)
{
        return rl->done || rl->qemu_gone || rl->vm_killed || rl->failure;
}

/* One round: wait for the control channel, signals, QEMU, stdin and the
 * servers, then handle what is ready. */
static void relay_round(struct relay *rl)
{
        struct sandbox *sb = &rl->vm->sb;
        struct pollfd p[4 + MAX_VOLUMES + 1];
        int n = 0;
        p[n++] = (struct pollfd){.fd = sb->ctl, .events = (short)(POLLIN | (msb_buf_pending(&rl->out) ? POLLOUT : 0))};
        p[n++] = (struct pollfd){.fd = rl->sfd, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = sb->qemu.pidfd, .events = POLLIN};
        bool room = msb_buf_pending(&rl->out) < CTL_OUTQ_HIGH &&
                    rl->stdin_unacked + MSB_PROTO_DATA_CHUNK <= MSB_PROTO_WINDOW;
        p[n++] = (struct pollfd){.fd = rl->stdin_open && room ? rl->o->fds[0] : -1, .events = POLLIN};
        for (size_t i = 0; i < sb->nfsd; i++)
                p[n++] = (struct pollfd){.fd = sb->fsd[i].pidfd, .events = POLLIN};
        int timeout = relay_deadlines(rl);
        if (relay_over(rl))
                return;
        int k = poll(p, (nfds_t)n, timeout);
        if (k < 0 && errno != EINTR)
                rl->failure = xasprintf("poll: %s", strerror(errno));
        if (k <= 0)
                return;
        if (p[0].revents & POLLOUT) {
                ssize_t w = write(sb->ctl, msb_buf_head(&rl->out), msb_buf_pending(&rl->out));
                if (w > 0)
                        msb_buf_consume(&rl->out, (size_t)w);
        }
        if (p[0].revents & (POLLIN | POLLHUP))
                relay_guest_in(rl);
        if (!relay_over(rl) && (p[1].revents & POLLIN))
                relay_signals(rl);
        if (!relay_over(rl) && (p[3].revents & (POLLIN | POLLHUP | POLLERR)))
                relay_stdin(rl);
        for (size_t i = 0; i < sb->nfsd && !relay_over(rl); i++)
                if (p[4 + i].revents & POLLIN)
                        relay_server_exited(rl, i);
        if (p[2].revents & POLLIN)
                rl->qemu_gone = true;
}

/* What the run comes to: 0 and the status, 1 for a command that could not
 * be executed, < 0 for msb's own failure. */
static int relay_result(struct relay *rl, int *ret_status, struct msb_error *err)
{
        if (!rl->done && !rl->vm_killed && !rl->failure)
                rl->failure = vm_failure(rl->vm, "the VM stopped before the command finished");
        if (rl->failure || (rl->error && rl->status >= 0))
                return msb_err(err, EIO, "%s", rl->failure ? rl->failure : rl->error);
        if (rl->error) {
                /* exec failure: report, but with the docker status */
                msb_err(err, ENOEXEC, "%s", rl->error);
                *ret_status = -rl->status;
                return 1;
        }
        *ret_status = rl->status;
        return 0;
}

/* The ephemeral run's loop: the main process's streams to and from our
 * stdio, signals forwarded, until it exits or the VM dies. */
static int relay_main(struct vm *vm, const struct msb_run_opts *o, int sfd, int *ret_status, struct msb_error *err)
{
        struct relay rl = {
                .o = o,
                .vm = vm,
                .sfd = sfd,
                /* a pool's VM said HELLO to its keeper */
                .have_hello = vm->sb.warm != NULL,
                .out = vm->out,
                .stdin_open = o->stdin_forward,
                .kill_at = o->timeout ? mono_ms() + (int64_t)o->timeout * 1000 : 0,
        };
        vm->out = (struct msb_buf){0};
        while (!relay_over(&rl))
                relay_round(&rl);
        if (rl.qemu_gone && !rl.done)
                relay_drain(&rl);
        int r = relay_result(&rl, ret_status, err);
        free(rl.failure);
        free(rl.error);
        msb_buf_free(&rl.out);
        msb_reader_free(&rl.rd);
        return r;
}

int msb_run(struct msb_ctx *ctx, const struct msb_run_opts *o, int *ret_status, struct msb_error *err)
{
        _cleanup_close_ int sfd = -1;
        sigset_t mask, oldmask;
        int r;
        /* ---- signals: taken through a signalfd for the whole run ---- */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGPIPE);
        sigprocmask(SIG_BLOCK, &mask, &oldmask);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        struct vm *vm = NULL;
        if (sfd < 0) {
                r = msb_err(err, errno, "signalfd: %s", strerror(errno));
                goto out_sig;
        }
        r = vm_start(ctx, o, &(struct vm_opts){0}, &vm, err);
        if (r < 0)
                goto out_sig;
        r = relay_main(vm, o, sfd, ret_status, err);
out_sig:
        vm_free(vm);
        {
                /* drop signals that arrived during teardown, then restore */
                struct timespec zero = {0, 0};
                while (sigtimedwait(&mask, NULL, &zero) > 0) {
                }
        }
        sigprocmask(SIG_SETMASK, &oldmask, NULL);
        return r;
}
