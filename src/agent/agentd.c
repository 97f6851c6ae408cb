/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agentd: PID 1 of every msb guest.  Statically linked, lives in the
 * initramfs that libmsb builds.
 *
 *   load modules -> open the control port -> HELLO -> RUN ->
 *   mount the rootfs share (ro) + overlay (tmpfs upper) + volumes ->
 *   move the new root over / -> run the command -> relay stdio ->
 *   EXIT -> reboot (QEMU runs with -no-reboot, so the VM ends).
 *
 * Everything from the host arrives through src/proto, whose decoder checks
 * bounds.  Any setup failure is sent to the host as ERROR{step, errno} and the
 * VM is powered off: agentd never hangs waiting for a human.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/users.h"
#include "common/util.h"
#include "proto/proto.h"

#define CTL_PORT_NAME "msb.ctl"
#define MODULES_DIR "/lib/msb"
#define NEWROOT "/mnt/root"
/* where a volumes device is mounted while its entries are bind-mounted into
 * place: outside NEWROOT, and unmounted before the command starts */
#define VOLSTAGE "/mnt/volumes"
/* Stop reading the command's output while this much is queued for the host:
 * the host's consumer sets the pace. */
#define OUTQ_HIGH (1u << 20)
/* Stop reading host stdin frames into memory beyond this. */
#define INQ_HIGH (4u << 20)

static int ctl_fd = -1;
static struct msb_buf outq;
static struct msb_reader rd;
static bool debug;
/* read-write volumes (paths in the new root), synced before power-off */
static const struct msb_run_msg *run_cfg;

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if ((size_t)n > sizeof(buf) - 2)
                n = sizeof(buf) - 2;
        buf[n++] = '\n';
        /* seconds since boot: the kernel's own log has no timestamps */
        struct timespec ts;
        clock_gettime(CLOCK_BOOTTIME, &ts);
        char pre[48];
        int pn = snprintf(pre, sizeof(pre), "[%5ld.%06ld] agentd: ", (long)ts.tv_sec, ts.tv_nsec / 1000);
        (void)!write(2, pre, (size_t)pn);
        (void)!write(2, buf, (size_t)n);
}

static void flush_outq(int timeout_ms)
{
        while (ctl_fd >= 0 && msb_buf_pending(&outq) > 0) {
                struct pollfd p = {.fd = ctl_fd, .events = POLLOUT};
                int r = poll(&p, 1, timeout_ms);
                if (r <= 0)
                        return;
                ssize_t n = write(ctl_fd, msb_buf_head(&outq), msb_buf_pending(&outq));
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return;
                }
                msb_buf_consume(&outq, (size_t)n);
        }
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One round of control-channel I/O outside the relay loop: send what is
 * queued, take in what arrived.  Returns 0 if nothing happened within
 * timeout_ms. */
static int ctl_pump(int timeout_ms)
{
        struct pollfd p = {.fd = ctl_fd, .events = POLLIN};
        if (msb_buf_pending(&outq))
                p.events |= POLLOUT;
        if (poll(&p, 1, timeout_ms) <= 0)
                return 0;
        if (p.revents & POLLOUT) {
                ssize_t n = write(ctl_fd, msb_buf_head(&outq), msb_buf_pending(&outq));
                if (n > 0)
                        msb_buf_consume(&outq, (size_t)n);
        }
        ssize_t n = -1;
        if (p.revents & POLLIN) {
                uint8_t buf[65536];
                n = read(ctl_fd, buf, sizeof(buf));
                if (n > 0)
                        msb_reader_feed(&rd, buf, (size_t)n);
        }
        if (n <= 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
                /* Host end not connected (yet): virtio-serial reports hangup
                 * until it opens.  Do not spin. */
                struct timespec ts = {0, 2 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        return 1;
}

/*
 * Wait until the host confirms it has everything we sent.  A write to the
 * port only queues data in QEMU; if QEMU's socket to msb is full, the tail
 * of the output (and EXIT itself) would die with the VM.  The host kills the
 * VM itself if it goes away, so the timeout is only a backstop.
 */
static void wait_exit_ack(void)
{
        int64_t deadline = now_ms() + 30000;
        while (ctl_fd >= 0 && now_ms() < deadline) {
                struct msb_msg m;
                int r;
                while ((r = msb_reader_next(&rd, &m)) == 1) {
                        bool ack = m.type == MSB_MSG_EXIT_ACK;
                        msb_msg_free(&m);
                        if (ack)
                                return;
                }
                if (r < 0)
                        return;
                ctl_pump(100);
        }
}

/* Push dirty pages (mmap writes) of read-write volumes to the host, before
 * EXIT: once the host has EXIT it stops the VM.  Not sync(2): that would also
 * send FUSE_SYNCFS for the read-only root share, and virtiofsd answers it
 * with syncfs() of the host file system holding the image store. */
static void sync_volumes(void)
{
        for (uint32_t i = 0; run_cfg && i < run_cfg->nmounts; i++) {
                const struct msb_mount_spec *m = &run_cfg->mounts[i];
                if (m->flags & MSB_MOUNT_RO)
                        continue;
                /* once per device: every volume behind one shares it */
                bool seen = false;
                for (uint32_t j = 0; j < i && !seen; j++)
                        seen = !(run_cfg->mounts[j].flags & MSB_MOUNT_RO) && !strcmp(run_cfg->mounts[j].tag, m->tag);
                if (seen)
                        continue;
                int fd = open(m->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (fd >= 0) {
                        syncfs(fd);
                        close(fd);
                }
        }
}

/* The host normally kills the VM as soon as it has EXIT or ERROR; powering
 * off ourselves is the backstop. */
static __attribute__((noreturn)) void power_off(void)
{
        flush_outq(5000);
        wait_exit_ack();
        if (debug)
                logmsg("powering off");
        /* QEMU runs with -no-reboot: a reset ends the VM for both the Debian
         * kernel and a tinyconfig one (where power-off only halts). */
        reboot(RB_AUTOBOOT);
        for (;;)
                pause();
}

/* Report a setup failure to the host (if the channel is up) and end the VM. */
static __attribute__((noreturn)) void fail(const char *step, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static __attribute__((noreturn)) void fail(const char *step, int err, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        logmsg("%s: %s%s%s", step, msg, err ? ": " : "", err ? strerror(err) : "");
        if (ctl_fd >= 0)
                msb_enc_error(&outq, step, err, msg);
        power_off();
}

static void mkdir_or_fail(const char *path, mode_t mode)
{
        int r = mkdir_p(path, mode);
        if (r < 0)
                fail("mkdir", -r, "cannot create %s", path);
}

static void mount_or_fail(const char *src, const char *dst, const char *type, unsigned long flags,
                          const char *data)
{
        mkdir_or_fail(dst, 0755);
        if (mount(src, dst, type, flags, data) < 0)
                fail("mount", errno, "mount %s (%s) on %s", src, type, dst);
}

static void load_modules(void)
{
        _cleanup_free_ char *list = NULL;
        int r = read_file_at(AT_FDCWD, MODULES_DIR "/modules.order", 1 << 20, &list, NULL);
        if (r == -ENOENT)
                return; /* a kernel with everything built in */
        if (r < 0)
                fail("modules", -r, "cannot read " MODULES_DIR "/modules.order");
        char *save = NULL;
        for (char *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (!*line || strchr(line, '/'))
                        continue;
                _cleanup_free_ char *path = xasprintf(MODULES_DIR "/%s", line);
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        fail("modules", errno, "cannot open %s", path);
                if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
                        fail("modules", errno, "cannot load %s", line);
                if (debug)
                        logmsg("loaded %s", line);
        }
}

/* The control port shows up as /dev/vportNpM; its name is in sysfs. */
static int find_ctl_port(void)
{
        DIR *d = opendir("/sys/class/virtio-ports");
        if (!d)
                return -ENODEV;
        struct dirent *de;
        int ret = -ENODEV;
        while (ret < 0 && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char path[PATH_MAX], name[64] = {0};
                snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                ssize_t n = read(fd, name, sizeof(name) - 1);
                close(fd);
                if (n <= 0)
                        continue;
                name[strcspn(name, "\n")] = '\0';
                if (strcmp(name, CTL_PORT_NAME) != 0)
                        continue;
                snprintf(path, sizeof(path), "/dev/%s", de->d_name);
                fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
                if (fd >= 0)
                        ret = fd;
        }
        closedir(d);
        return ret;
}

/*
 * Open the port if it is there yet, and say HELLO at once: msb's HELLO and
 * RUN are already waiting on its side, and start flowing into the port's
 * buffers while we carry on mounting.  Called between the early mounts.
 */
static bool try_ctl_port(void)
{
        if (ctl_fd >= 0)
                return true;
        int fd = find_ctl_port();
        if (fd < 0)
                return false;
        ctl_fd = fd;
        msb_enc_hello(&outq, MSB_PROTO_VERSION, "agentd");
        ssize_t n = write(ctl_fd, msb_buf_head(&outq), msb_buf_pending(&outq));
        if (n > 0)
                msb_buf_consume(&outq, (size_t)n);
        if (debug)
                logmsg("control port open");
        return true;
}

/* The control port shows up as /dev/vportNpM, a little after boot; its name
 * is in sysfs. */
static void wait_ctl_port(void)
{
        for (int tries = 0; tries < 10000; tries++) {
                if (try_ctl_port())
                        return;
                struct timespec ts = {0, 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        fail("control-port", ENODEV, "virtio-serial port '" CTL_PORT_NAME "' not found");
}

/* Block until one whole message arrives (setup phase only). */
static void recv_msg(struct msb_msg *m)
{
        int64_t deadline = now_ms() + 60000;
        for (;;) {
                int r = msb_reader_next(&rd, m);
                if (r < 0)
                        fail("protocol", -r, "malformed frame from host");
                if (r == 1)
                        return;
                if (now_ms() >= deadline)
                        fail("protocol", ETIMEDOUT, "no message from host");
                ctl_pump(1000);
        }
}

static bool path_ok(const char *p)
{
        if (p[0] != '/' || strlen(p) >= PATH_MAX - sizeof(NEWROOT))
                return false;
        for (const char *s = p; *s;) {
                const char *e = strchrnul(s + 1, '/');
                size_t n = (size_t)(e - s - 1);
                if ((n == 2 && !strncmp(s + 1, "..", 2)))
                        return false;
                s = e;
        }
        return true;
}

/* Open (creating what is missing) guest path p inside NEWROOT, resolving
 * the image's symlinks as if NEWROOT were "/" (RESOLVE_IN_ROOT): a symlink
 * in the image can never place a volume outside the guest's root.  The last
 * component is made a directory, or with file an empty file.  Returns an
 * O_PATH fd of it. */
static int mount_point(int rootfd, const char *p, bool file)
{
        char buf[PATH_MAX];
        snprintf(buf, sizeof(buf), "%s", p);
        for (char *s = buf + 1;; s++) {
                bool last = !strchr(s, '/');
                char *e = last ? s + strlen(s) : strchr(s, '/');
                char saved = *e;
                *e = 0;
                struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
                int fd = (int)syscall(SYS_openat2, rootfd, buf + 1, &how, sizeof(how));
                if (fd < 0 && errno == ENOENT) {
                        /* the parent exists (made in the step before): make
                         * this one inside it, then look again */
                        char *slash = strrchr(buf, '/');
                        const char *name = slash + 1;
                        *slash = 0;
                        struct open_how ph = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
                        int pfd = buf[0] ? (int)syscall(SYS_openat2, rootfd, buf + 1, &ph, sizeof(ph))
                                         : fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
                        *slash = '/';
                        if (pfd < 0)
                                fail("volume", errno, "%s: cannot open the parent of %s in the image", p, buf);
                        int r;
                        if (last && file) {
                                r = openat(pfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
                                if (r >= 0)
                                        close(r);
                        } else
                                r = mkdirat(pfd, name, 0755);
                        int err = errno;
                        close(pfd);
                        if (r < 0 && err != EEXIST)
                                fail("volume", err, "%s: cannot create %s in the guest", p, buf);
                        fd = (int)syscall(SYS_openat2, rootfd, buf + 1, &how, sizeof(how));
                }
                if (fd < 0)
                        fail("volume", errno, "%s: cannot open %s in the guest", p, buf);
                struct stat st;
                if (fstat(fd, &st) < 0)
                        fail("volume", errno, "%s: cannot stat %s", p, buf);
                if (!last && !S_ISDIR(st.st_mode))
                        fail("volume", ENOTDIR, "%s: %s is not a directory in the image", p, buf);
                if (last) {
                        if (file && S_ISDIR(st.st_mode))
                                fail("volume", EISDIR,
                                     "%s: the image has a directory there, and a file cannot be mounted on it", p);
                        if (!file && !S_ISDIR(st.st_mode))
                                fail("volume", ENOTDIR,
                                     "%s: the image has a file there, and a directory cannot be mounted on it", p);
                        return fd;
                }
                close(fd);
                *e = saved;
                s = e;
        }
}

/* Volumes arrive sorted parent-first.  A device holding many volumes (sub
 * set) is mounted once at VOLSTAGE, outside the guest's root; each entry is
 * bind-mounted into place and the staging mount goes away before the
 * command starts, so the guest has exactly one path to each volume.  A
 * device of its own (sub "") is mounted directly. */
static void mount_volumes(const struct msb_run_msg *run)
{
        _cleanup_close_ int rootfd = open(NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                fail("volume", errno, "cannot open " NEWROOT);
        const char *staged = NULL;
        for (uint32_t i = 0; i < run->nmounts; i++) {
                const struct msb_mount_spec *m = &run->mounts[i];
                if (!path_ok(m->path))
                        fail("volume", EINVAL, "bad guest path '%s'", m->path);
                bool file = m->flags & MSB_MOUNT_FILE;
                unsigned long fl = MS_NODEV | ((m->flags & MSB_MOUNT_RO) ? MS_RDONLY : 0);
                _cleanup_close_ int fd = mount_point(rootfd, m->path, file);
                char target[64];
                snprintf(target, sizeof(target), "/proc/self/fd/%d", fd);
                if (!m->sub[0]) {
                        if (file)
                                fail("volume", EINVAL, "%s: a file volume needs a volumes device", m->path);
                        if (mount(m->tag, target, "virtiofs", fl, NULL) < 0)
                                fail("volume", errno, "%s: cannot mount %s", m->path, m->tag);
                        continue;
                }
                if (!staged) {
                        mount_or_fail(m->tag, VOLSTAGE, "virtiofs", MS_NODEV, NULL);
                        staged = m->tag;
                } else if (strcmp(staged, m->tag) != 0) {
                        fail("volume", EINVAL, "%s: volumes on more than one device", m->path);
                }
                _cleanup_free_ char *src = xasprintf(VOLSTAGE "/%s", m->sub);
                if (mount(src, target, NULL, MS_BIND, NULL) < 0)
                        fail("volume", errno, "%s: cannot bind-mount the volume", m->path);
                /* bind mounts take their flags from a remount, which must
                 * reach the new mount: fd names what lies under it, so look
                 * the path up again (in the root, as before) */
                struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
                _cleanup_close_ int top = (int)syscall(SYS_openat2, rootfd, m->path + 1, &how, sizeof(how));
                if (top < 0)
                        fail("volume", errno, "%s: cannot open the mounted volume", m->path);
                snprintf(target, sizeof(target), "/proc/self/fd/%d", top);
                if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | fl, NULL) < 0)
                        fail("volume", errno, "%s: cannot set the volume's mount flags", m->path);
        }
        if (staged && umount2(VOLSTAGE, MNT_DETACH) < 0)
                fail("volume", errno, "cannot unmount the volume staging point");
}

/* FUSE caps read-ahead at the kernel's default 128 KiB; msb-fsd takes 1 MiB
 * requests.  A program's first page faults then read its binary in a few
 * round trips instead of one per 128 KiB, which is most of the cost of
 * starting a command on a fresh VM.  Best effort: a kernel without sysfs
 * bdi entries just keeps the default. */
static void raise_readahead(const char *mnt)
{
        struct stat st;
        if (stat(mnt, &st) < 0)
                return;
        char path[96];
        snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev), minor(st.st_dev));
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        (void)!write(fd, "1024", 4);
        close(fd);
}

/* The command's PATH, as execvp in the child will search it. */
static const char *run_path(const struct msb_run_msg *run)
{
        for (uint32_t i = 0; i < run->envc; i++)
                if (!strncmp(run->env[i], "PATH=", 5))
                        return run->env[i] + 5;
        return MSB_DEFAULT_PATH;
}

/*
 * Start reading the command's executable into the page cache now, while the
 * rest of the root is mounted.  Left to exec, a cold binary is paged in by
 * faults that each wait for their own round trip to the host: measured for
 * busybox under TCG, 4 READs with ~4-6 ms of stalled guest between them,
 * where one readahead() issues them all at once and returns.  Best effort,
 * and only a hint: execvp still decides what runs.
 */
/* Read ahead one file of the new root; false if it is not a regular file
 * (with exec, one with an execute bit). */
static bool prefetch_file(int rootfd, const char *path, bool exec)
{
        struct open_how how = {.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                               .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
        _cleanup_close_ int fd = path[0] == '/' ? (int)syscall(SYS_openat2, rootfd, path + 1, &how, sizeof(how)) : -1;
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (exec && !(st.st_mode & 0111)))
                return false;
        /* the kernel cuts one call to the read-ahead window (1 MiB): ask per
         * window; each returns once its READ is queued */
        off_t end = st.st_size < (64 << 20) ? st.st_size : (64 << 20);
        for (off_t off = 0; off < end; off += 1 << 20)
                readahead(fd, off, 1 << 20);
        return true;
}

/* The executable, in the order exec needs them: the file itself, then what
 * the host found it loads (its interpreter, its libraries). */
static void prefetch_command(const struct msb_run_msg *run)
{
        _cleanup_close_ int rootfd = open(NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return;
        const char *cmd = run->exec_path[0] ? run->exec_path : run->argv[0];
        if (cmd[0] == '/') {
                prefetch_file(rootfd, cmd, true);
        } else if (*cmd && !strchr(cmd, '/')) {
                /* (a path relative to the working directory is not worth it) */
                for (const char *s = run_path(run);;) {
                        const char *e = strchrnul(s, ':');
                        char full[PATH_MAX];
                        int n = snprintf(full, sizeof(full), "%.*s/%s", (int)(e - s), s, cmd);
                        if ((n > 0 && (size_t)n < sizeof(full) && prefetch_file(rootfd, full, true)) || !*e)
                                break;
                        s = e + 1;
                }
        }
        for (uint32_t i = 0; i < run->nprefetch; i++)
                prefetch_file(rootfd, run->prefetch[i], false);
}

/*
 * The image root, up to everything that does not depend on RUN: the share
 * read-only at /mnt/lower, a tmpfs for the overlay's upper layer, the
 * overlay at NEWROOT, and the kernel file systems inside it.  msb names the
 * root share on the kernel command line (msb.root=TAG), so this runs while
 * the control port is still coming up; without that it runs after RUN.
 * Failures are kept, not acted on: before the port is open nobody would
 * hear them.  setup_root() reports them once RUN has arrived.
 */
static struct {
        bool failed;
        const char *step;
        int err;
        char msg[320];
} base;

static bool base_step(const char *step, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool base_step(const char *step, int err, const char *fmt, ...)
{
        base.failed = true;
        base.step = step;
        base.err = err;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(base.msg, sizeof(base.msg), fmt, ap);
        va_end(ap);
        return false;
}

static bool try_ctl_port(void);

static bool base_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data)
{
        /* images have /proc, /sys, /dev...: create a mount point only when
         * the mount says it is missing (each mkdir is a syscall through
         * overlayfs, under TCG) */
        if (mount(src, dst, type, flags, data) < 0) {
                if (errno != ENOENT)
                        return base_step("mount", errno, "mount %s (%s) on %s", src, type, dst);
                int r = mkdir_p(dst, 0755);
                if (r < 0)
                        return base_step("mkdir", -r, "cannot create %s", dst);
                if (mount(src, dst, type, flags, data) < 0)
                        return base_step("mount", errno, "mount %s (%s) on %s", src, type, dst);
        }
        try_ctl_port();
        return true;
}

static bool tag_ok(const char *t)
{
        size_t n = strlen(t);
        if (n == 0 || n > 36) /* virtio-fs tags are at most 36 bytes */
                return false;
        for (; *t; t++)
                if (!isalnum((unsigned char)*t) && *t != '-' && *t != '_')
                        return false;
        return true;
}

static void mount_base(const char *tag)
{
        if (!tag_ok(tag)) {
                base_step("rootfs", EINVAL, "bad rootfs tag");
                return;
        }
        if (!base_mount(tag, "/mnt/lower", "virtiofs", MS_RDONLY | MS_NODEV, NULL))
                return;
        raise_readahead("/mnt/lower");
        if (!base_mount("tmpfs", "/mnt/rw", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"))
                return;
        if (mkdir("/mnt/rw/upper", 0755) < 0 || mkdir("/mnt/rw/work", 0755) < 0) {
                base_step("mkdir", errno, "cannot create the overlay's upper layer");
                return;
        }
        if (!base_mount("overlay", NEWROOT, "overlay", 0,
                        "lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work") ||
            !base_mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) ||
            !base_mount("sysfs", NEWROOT "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) ||
            !base_mount("devtmpfs", NEWROOT "/dev", "devtmpfs", MS_NOSUID, "mode=0755") ||
            !base_mount("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                        "newinstance,ptmxmode=0666,mode=0620,gid=5") ||
            !base_mount("shm", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") ||
            !base_mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") ||
            !base_mount("tmpfs", NEWROOT "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"))
                return;
        static const char *const links[][2] = {
                {"/proc/self/fd", NEWROOT "/dev/fd"},       {"/proc/self/fd/0", NEWROOT "/dev/stdin"},
                {"/proc/self/fd/1", NEWROOT "/dev/stdout"}, {"/proc/self/fd/2", NEWROOT "/dev/stderr"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(links); i++)
                (void)!symlink(links[i][0], links[i][1]);
        unlink(NEWROOT "/dev/ptmx");
        (void)!symlink("pts/ptmx", NEWROOT "/dev/ptmx");
}

static void setup_root(const struct msb_run_msg *run, const char *premounted)
{
        if (!premounted)
                mount_base(run->rootfs_tag);
        else if (strcmp(premounted, run->rootfs_tag) != 0)
                fail("rootfs", EINVAL, "the root share on the kernel command line (%s) is not RUN's (%s)", premounted,
                     run->rootfs_tag);
        if (base.failed)
                fail(base.step, base.err, "%s", base.msg);
        if (debug)
                logmsg("base root mounted");
        prefetch_command(run);
        mount_volumes(run);

        if (run->hostname[0] && sethostname(run->hostname, strlen(run->hostname)) < 0)
                fail("hostname", errno, "cannot set hostname '%s'", run->hostname);

        /* switch_root: an initramfs cannot be pivot_root'ed away. */
        if (chdir(NEWROOT) < 0)
                fail("switch-root", errno, "chdir " NEWROOT);
        if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
                fail("switch-root", errno, "move " NEWROOT " to /");
        if (chroot(".") < 0 || chdir("/") < 0)
                fail("switch-root", errno, "chroot");
}

/* ---- the user, when the host could not resolve it ---- */

/* The host resolves the user from the image's files before the VM starts
 * (MSB_RUN_IDS); when a volume may cover /etc/passwd or /etc/group it leaves
 * that to us, reading the files the command will see. */
static void resolve_user(const struct msb_run_msg *run, struct ids *u)
{
        if (run->flags & MSB_RUN_IDS) {
                memset(u, 0, sizeof(*u));
                u->uid = run->uid;
                u->gid = run->gid;
                u->ngroups = run->ngroups;
                memcpy(u->groups, run->groups, run->ngroups * sizeof(u->groups[0]));
                snprintf(u->home, sizeof(u->home), "%s", run->home);
                return;
        }
        _cleanup_free_ char *passwd = NULL, *group = NULL;
        int r = read_file_at(AT_FDCWD, "/etc/passwd", 4u << 20, &passwd, NULL);
        if (r < 0 && r != -ENOENT)
                fail("user", -r, "cannot read the image's /etc/passwd");
        r = read_file_at(AT_FDCWD, "/etc/group", 4u << 20, &group, NULL);
        if (r < 0 && r != -ENOENT)
                fail("user", -r, "cannot read the image's /etc/group");
        char why[1200];
        if (ids_resolve(run->user, passwd, group, u, why, sizeof(why)) < 0)
                fail("user", 0, "%s", why);
}

/* ---- run and relay ---- */

static void set_nonblock(int fd)
{
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
                fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static bool env_has(char **env, const char *key)
{
        size_t k = strlen(key);
        for (; env && *env; env++)
                if (!strncmp(*env, key, k) && (*env)[k] == '=')
                        return true;
        return false;
}

struct child_args {
        const struct msb_run_msg *run;
        char **env;
        const char *wd;
        const struct ids *u;
        int infd, out, err, ex;
};

/* Runs on its own stack in our memory until execve: only system calls and
 * exec, no allocation. */
static int child_main(void *p)
{
        const struct child_args *c = p;
        for (int s = 1; s < NSIG; s++)
                signal(s, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setsid();
        if (dup2(c->infd, 0) < 0 || dup2(c->out, 1) < 0 || dup2(c->err, 2) < 0)
                goto fail;
        if (chdir(c->wd) < 0)
                goto fail;
        /* raw calls: glibc's wrappers would try to tell other threads */
        if (syscall(SYS_setgroups, (size_t)c->u->ngroups, c->u->groups) < 0 || syscall(SYS_setgid, c->u->gid) < 0 ||
            syscall(SYS_setuid, c->u->uid) < 0)
                goto fail;
        /* execvp searches the PATH of environ, which is now the command's
         * own environment, as docker does */
        environ = c->env;
        if (c->run->exec_path[0])
                execv(c->run->exec_path, c->run->argv);
        /* and if the host's find does not run (a script without #!, a
         * volume changed things), execvp's own search and errors decide,
         * as without it */
        execvp(c->run->argv[0], c->run->argv);
fail:;
        int e = errno;
        (void)!write(c->ex, &e, sizeof(e));
        _exit(127);
}

static pid_t spawn(const struct msb_run_msg *run, int *ret_in, int *ret_out, int *ret_err)
{
        struct ids u;
        resolve_user(run, &u);
        if (debug)
                logmsg("user resolved");

        char **env = NULL;
        for (uint32_t i = 0; i < run->envc; i++)
                strv_push(&env, run->env[i]);
        if (!env_has(env, "PATH"))
                strv_push(&env, "PATH=" MSB_DEFAULT_PATH);
        if (!env_has(env, "HOME"))
                strv_push_take(&env, xasprintf("HOME=%s", u.home));
        if (!env_has(env, "HOSTNAME") && run->hostname[0])
                strv_push_take(&env, xasprintf("HOSTNAME=%s", run->hostname));

        const char *wd = run->workdir[0] ? run->workdir : "/";
        if (!path_ok(wd))
                fail("workdir", EINVAL, "working directory '%s' must be absolute", wd);
        /* docker creates a missing working directory */
        int r = mkdir_p(wd, 0755);
        if (r < 0)
                fail("workdir", -r, "cannot create working directory '%s'", wd);

        int in[2] = {-1, -1}, out[2], err[2], ex[2];
        if ((run->flags & MSB_RUN_STDIN) && pipe2(in, O_CLOEXEC) < 0)
                fail("spawn", errno, "pipe");
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(ex, O_CLOEXEC) < 0)
                fail("spawn", errno, "pipe");

        int infd = in[0] >= 0 ? in[0] : open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (infd < 0)
                fail("spawn", errno, "/dev/null");
        struct child_args ca = {.run = run, .env = env, .wd = wd, .u = &u,
                                .infd = infd, .out = out[1], .err = err[1], .ex = ex[1]};
        /* vfork-style: the child borrows our memory until it execs, so no
         * page tables are copied and nothing is copied on write (measured
         * ~4 ms for fork() under TCG); we wait meanwhile */
        size_t stack_sz = 256 * 1024;
        void *stack = mmap(NULL, stack_sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED)
                fail("spawn", errno, "stack for the command");
        char **saved_environ = environ;
        pid_t pid = clone(child_main, (uint8_t *)stack + stack_sz, CLONE_VM | CLONE_VFORK | SIGCHLD, &ca);
        int clone_err = errno;
        environ = saved_environ; /* the child set it for execvp, in our memory */
        munmap(stack, stack_sz);
        if (pid < 0)
                fail("spawn", clone_err, "clone");
        if (in[0] < 0)
                close(infd);
        strv_free(env);
        close(out[1]);
        close(err[1]);
        close(ex[1]);
        if (in[0] >= 0)
                close(in[0]);
        int e = 0;
        ssize_t n = read_all(ex[0], &e, sizeof(e));
        close(ex[0]);
        if (n == (ssize_t)sizeof(e)) {
                waitpid(pid, NULL, 0);
                fail("exec", e, "cannot run '%s'", run->argv[0]);
        }
        *ret_in = in[1];
        *ret_out = out[0];
        *ret_err = err[0];
        return pid;
}

/* Read what is available from a command pipe into outq. Returns false at EOF. */
static bool pump_pipe(int fd, uint16_t type)
{
        uint8_t buf[MSB_PROTO_DATA_CHUNK];
        for (int i = 0; i < 32; i++) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n > 0) {
                        msb_enc_data(&outq, type, buf, (size_t)n);
                        continue;
                }
                if (n < 0 && (errno == EINTR))
                        continue;
                return n < 0 && errno == EAGAIN;
        }
        return true;
}

static __attribute__((noreturn)) void relay(const struct msb_run_msg *run)
{
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0)
                fail("spawn", errno, "signalfd");

        int in_fd, out_fd, err_fd;
        pid_t child = spawn(run, &in_fd, &out_fd, &err_fd);
        if (debug)
                logmsg("command started");
        set_nonblock(out_fd);
        set_nonblock(err_fd);
        if (in_fd >= 0)
                set_nonblock(in_fd);
        struct msb_buf inq = {0};
        bool in_eof = false, child_done = false;
        int status = 0;

        for (;;) {
                /* Frames can already be buffered (they may have arrived
                 * together with RUN): handle them before sleeping in poll. */
                if (msb_buf_pending(&inq) < INQ_HIGH) {
                        struct msb_msg m;
                        int q;
                        while ((q = msb_reader_next(&rd, &m)) == 1) {
                                if (m.type == MSB_MSG_STDIN && in_fd >= 0 && !in_eof)
                                        msb_buf_append(&inq, m.u.data.data, m.u.data.len);
                                else if (m.type == MSB_MSG_STDIN_EOF)
                                        in_eof = true;
                                else if (m.type == MSB_MSG_SIGNAL) {
                                        /* to the whole process group, as a
                                         * terminal's Ctrl-C would */
                                        if (kill(-child, (int)m.u.signo) < 0)
                                                kill(child, (int)m.u.signo);
                                }
                                msb_msg_free(&m);
                                if (msb_buf_pending(&inq) >= INQ_HIGH)
                                        break;
                        }
                        if (q < 0)
                                fail("protocol", -q, "malformed frame from host");
                }
                if (in_eof && in_fd >= 0 && msb_buf_pending(&inq) == 0) {
                        close(in_fd);
                        in_fd = -1;
                }
                struct pollfd p[5];
                int n = 0;
                p[n++] = (struct pollfd){.fd = ctl_fd,
                                         .events = (short)((msb_buf_pending(&inq) < INQ_HIGH ? POLLIN : 0) |
                                                           (msb_buf_pending(&outq) ? POLLOUT : 0))};
                p[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
                bool room = msb_buf_pending(&outq) < OUTQ_HIGH;
                p[n++] = (struct pollfd){.fd = room ? out_fd : -1, .events = POLLIN};
                p[n++] = (struct pollfd){.fd = room ? err_fd : -1, .events = POLLIN};
                p[n++] = (struct pollfd){.fd = msb_buf_pending(&inq) ? in_fd : -1, .events = POLLOUT};
                if (child_done) {
                        /* The command is gone: take what its pipes hold now
                         * (at most a pipe buffer each) and stop; background
                         * children holding the pipes open must not keep the
                         * VM alive. */
                        if (out_fd >= 0)
                                pump_pipe(out_fd, MSB_MSG_STDOUT);
                        if (err_fd >= 0)
                                pump_pipe(err_fd, MSB_MSG_STDERR);
                        break;
                }
                if (poll(p, (nfds_t)n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        fail("relay", errno, "poll");
                }
                if (p[0].revents & POLLOUT) {
                        ssize_t w = write(ctl_fd, msb_buf_head(&outq), msb_buf_pending(&outq));
                        if (w > 0)
                                msb_buf_consume(&outq, (size_t)w);
                }
                if (p[0].revents & POLLIN) {
                        uint8_t buf[65536];
                        ssize_t r = read(ctl_fd, buf, sizeof(buf));
                        if (r > 0)
                                msb_reader_feed(&rd, buf, (size_t)r);
                }
                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        while (read(sfd, &si, sizeof(si)) > 0) {
                        }
                        int st;
                        pid_t w;
                        while ((w = waitpid(-1, &st, WNOHANG)) > 0)
                                if (w == child) {
                                        if (debug)
                                                logmsg("child exited");
                                        status = st;
                                        child_done = true;
                                }
                }
                if (p[2].revents & (POLLIN | POLLHUP) && !pump_pipe(out_fd, MSB_MSG_STDOUT)) {
                        close(out_fd);
                        out_fd = -1;
                }
                if (p[3].revents & (POLLIN | POLLHUP) && !pump_pipe(err_fd, MSB_MSG_STDERR)) {
                        close(err_fd);
                        err_fd = -1;
                }
                if (p[4].revents & (POLLOUT | POLLERR)) {
                        ssize_t w = write(in_fd, msb_buf_head(&inq), msb_buf_pending(&inq));
                        if (w > 0)
                                msb_buf_consume(&inq, (size_t)w);
                        else if (w < 0 && errno == EPIPE) {
                                close(in_fd);
                                in_fd = -1;
                                msb_buf_free(&inq);
                        }
                }
        }
        sync_volumes();
        if (debug)
                logmsg("volumes synced");
        if (WIFSIGNALED(status))
                msb_enc_exit(&outq, MSB_EXIT_SIGNAL, (uint32_t)WTERMSIG(status));
        else
                msb_enc_exit(&outq, MSB_EXIT_CODE, (uint32_t)WEXITSTATUS(status));
        power_off();
}

int main(void)
{
        /* SIGPIPE would kill PID 1 and panic the kernel. */
        signal(SIGPIPE, SIG_IGN);
        mkdir("/proc", 0755);
        mkdir("/sys", 0755);
        mkdir("/dev", 0755);
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ||
            mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ||
            mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") < 0)
                fail("early-mount", errno, "cannot mount /proc, /sys or /dev");
        _cleanup_free_ char *cmdline = NULL;
        char root_tag[64] = "";
        if (read_file_at(AT_FDCWD, "/proc/cmdline", 65536, &cmdline, NULL) == 0) {
                char *save = NULL;
                for (char *w = strtok_r(cmdline, " \n", &save); w; w = strtok_r(NULL, " \n", &save)) {
                        if (!strcmp(w, "msb.debug=1"))
                                debug = true;
                        else if (!strncmp(w, "msb.root=", 9))
                                snprintf(root_tag, sizeof(root_tag), "%s", w + 9);
                }
        }

        if (debug)
                logmsg("started");
        load_modules();
        if (root_tag[0]) {
                mount_base(root_tag);
                if (debug)
                        logmsg("base root mounted early");
        }
        wait_ctl_port();

        struct msb_msg m;
        recv_msg(&m);
        if (m.type != MSB_MSG_HELLO || m.u.hello.version != MSB_PROTO_VERSION)
                fail("protocol", EPROTO, "expected HELLO version %u, got %s", MSB_PROTO_VERSION,
                     msb_msg_type_name(m.type));
        msb_msg_free(&m);
        struct msb_msg run;
        recv_msg(&run);
        if (run.type != MSB_MSG_RUN)
                fail("protocol", EPROTO, "expected RUN, got %s", msb_msg_type_name(run.type));
        if (debug)
                logmsg("RUN received: %s", run.u.run.argv[0]);
        setup_root(&run.u.run, root_tag[0] ? root_tag : NULL);
        run_cfg = &run.u.run;
        if (debug)
                logmsg("root ready");
        relay(&run.u.run);
}
