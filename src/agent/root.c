/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest's root: the image share read-only under an overlay whose
 * writable layer is a tmpfs, or with MSB_SETUP_DISK the ext4 file system on
 * the sandbox's disk (kept across boots); the kernel file systems inside it;
 * the volumes; then the switch into it.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <linux/magic.h>
#include <sys/statvfs.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/util.h"

/* where a volumes device is mounted while its entries are bind-mounted into
 * place: outside NEWROOT, and unmounted before the command starts */
#define VOLSTAGE "/mnt/volumes"
/* The sandbox's disk (MSB_SETUP_DISK) and where it is mounted: in the
 * initramfs, hidden under the new root once that is moved over "/" */
#define DISK_DEV "/dev/vda"
#define DISK_MNT "/mnt/disk"
/* the tmpfs upper of a sandbox without a disk */
#define TMPFS_MNT "/mnt/rw"

/* SETUP, kept for sync_volumes (paths in the new root) */
static const struct msb_setup_msg *setup_cfg;
/* the disk's root, for syncfs() after the switch: its path is hidden then */
static int disk_fd = -1;

/* Push dirty pages (mmap writes) of read-write volumes to the host, before
 * EXIT: once the host has EXIT it stops the VM.  Not sync(2): that would also
 * send FUSE_SYNCFS for the read-only root share, and virtiofsd answers it
 * with syncfs() of the host file system holding the image store. */
static void sync_volumes(void)
{
        const struct msb_setup_msg *su = setup_cfg;
        /* an OCI bundle's root is the share itself: its mmap'd writes too */
        if (su && (su->flags & MSB_SETUP_ROOT_RW)) {
                int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd >= 0) {
                        syncfs(fd);
                        close(fd);
                }
        }
        for (uint32_t i = 0; su && i < su->nmounts; i++) {
                const struct msb_mount_spec *m = &su->mounts[i];
                if (m->flags & MSB_MOUNT_RO)
                        continue;
                /* once per device: every volume behind one shares it */
                bool seen = false;
                for (uint32_t j = 0; j < i && !seen; j++)
                        seen = !(su->mounts[j].flags & MSB_MOUNT_RO) && !strcmp(su->mounts[j].tag, m->tag);
                if (seen)
                        continue;
                int fd = open(m->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (fd >= 0) {
                        syncfs(fd);
                        close(fd);
                }
        }
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

bool path_ok(const char *p)
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

/* What a tmpfs may be given: sizes, a mode and owners, nothing that names
 * a path or changes how the kernel treats other mounts. */
static bool tmpfs_options_ok(const char *o)
{
        static const char *const keys[] = {"size=", "mode=", "nr_inodes=", "nr_blocks=", "uid=", "gid="};
        if (strlen(o) > 256)
                return false;
        for (const char *p = o; *p;) {
                const char *e = strchrnul(p, ',');
                bool ok = false;
                for (size_t k = 0; k < ARRAY_SIZE(keys) && !ok; k++) {
                        size_t n = strlen(keys[k]);
                        ok = (size_t)(e - p) > n && !strncmp(p, keys[k], n) &&
                             strspn(p + n, "0123456789kmgKMG%") == (size_t)(e - p) - n;
                }
                if (!ok)
                        return false;
                p = *e ? e + 1 : e;
        }
        return true;
}

/* Volumes arrive sorted parent-first.  A device holding many volumes (sub
 * set) is mounted once at VOLSTAGE, outside the guest's root; each entry is
 * bind-mounted into place and the staging mount goes away before the
 * command starts, so the guest has exactly one path to each volume.  A
 * device of its own (sub "") is mounted directly. */
/* agentd's own /dev/null (the initramfs's devtmpfs, never the new
 * root's, where a volume could have put anything), checked, as a path
 * bind mounts take: "/proc/self/fd/N". */
static const char *null_source(void)
{
        static char path[32];
        static int fd = -1;
        if (fd < 0) {
                struct stat st;
                fd = open("/dev/null", O_PATH | O_CLOEXEC);
                if (fd < 0 || fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
                        fail("root", EINVAL, "agentd's /dev/null is not the null device");
                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        }
        return path;
}

/* An OCI root step (proto.h, MSB_MOUNT_STEP) once everything is mounted:
 * the path is looked up in the new root, never followed out of it; a
 * missing one is skipped, as runc does. */
static void root_step(int rootfd, const struct msb_mount_spec *m)
{
        struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
        _cleanup_close_ int fd = (int)syscall(SYS_openat2, rootfd, m->path + 1, &how, sizeof(how));
        if (fd < 0 && errno == ENOENT)
                return;
        if (fd < 0)
                fail("root", errno, "%s: cannot open it in the root", m->path);
        char target[64];
        snprintf(target, sizeof(target), "/proc/self/fd/%d", fd);
        struct stat st;
        if (fstat(fd, &st) < 0)
                fail("root", errno, "%s: cannot stat it", m->path);
        if (m->flags & MSB_MOUNT_SYSCTL) {
                /* procfs files only: never a fifo a volume put there */
                struct statfs sf;
                if (!S_ISREG(st.st_mode) || fstatfs(fd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
                        fail("sysctl", EINVAL, "%s is not a sysctl of the guest's /proc/sys", m->path);
                _cleanup_close_ int w = open(target, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
                size_t n = strlen(m->tag);
                if (w < 0 || write(w, m->tag, n) != (ssize_t)n)
                        fail("sysctl", errno, "cannot write '%s' to %s", m->tag, m->path);
        } else if (m->flags & MSB_MOUNT_MASK) {
                int r = S_ISDIR(st.st_mode) ? mount("tmpfs", target, "tmpfs", MS_RDONLY, "size=0,mode=0555")
                                            : mount(null_source(), target, NULL, MS_BIND, NULL);
                if (r < 0)
                        fail("root", errno, "%s: cannot mask it", m->path);
        } else {
                if (mount(target, target, NULL, MS_BIND | MS_REC, NULL) < 0)
                        fail("root", errno, "%s: cannot bind-mount it onto itself", m->path);
                /* the remount must reach the new mount: look it up again;
                 * the mount's other flags stay as they were, as with runc */
                _cleanup_close_ int top = (int)syscall(SYS_openat2, rootfd, m->path + 1, &how, sizeof(how));
                struct statvfs sv;
                if (top < 0 || fstatvfs(top, &sv) < 0)
                        fail("root", errno, "%s: cannot open the bind mount", m->path);
                unsigned long fl = MS_REMOUNT | MS_BIND | MS_RDONLY | ((sv.f_flag & ST_NOSUID) ? MS_NOSUID : 0) |
                                   ((sv.f_flag & ST_NODEV) ? MS_NODEV : 0) | ((sv.f_flag & ST_NOEXEC) ? MS_NOEXEC : 0);
                snprintf(target, sizeof(target), "/proc/self/fd/%d", top);
                if (mount(NULL, target, NULL, fl, NULL) < 0)
                        fail("root", errno, "%s: cannot make it read-only", m->path);
        }
}

static void mount_volumes(const struct msb_setup_msg *run)
{
        _cleanup_close_ int rootfd = open(NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                fail("volume", errno, "cannot open " NEWROOT);
        const char *staged = NULL;
        for (uint32_t i = 0; i < run->nmounts; i++) {
                const struct msb_mount_spec *m = &run->mounts[i];
                if (!path_ok(m->path))
                        fail("volume", EINVAL, "bad guest path '%s'", m->path);
                if (m->flags & MSB_MOUNT_STEP) {
                        root_step(rootfd, m);
                        continue;
                }
                bool file = m->flags & MSB_MOUNT_FILE;
                unsigned long fl = MS_NODEV | ((m->flags & MSB_MOUNT_RO) ? MS_RDONLY : 0) |
                                   ((m->flags & MSB_MOUNT_NOSUID) ? MS_NOSUID : 0) |
                                   ((m->flags & MSB_MOUNT_NOEXEC) ? MS_NOEXEC : 0);
                _cleanup_close_ int fd = mount_point(rootfd, m->path, file);
                char target[64];
                snprintf(target, sizeof(target), "/proc/self/fd/%d", fd);
                if (m->flags & MSB_MOUNT_KERNFS) {
                        /* the decoder allowed tmpfs, mqueue and cgroup2 */
                        bool tmpfs = !strcmp(m->sub, "tmpfs");
                        if (tmpfs ? !tmpfs_options_ok(m->tag) : m->tag[0] != 0)
                                fail("volume", EINVAL, "%s: %s options '%s' are not size=, mode=, nr_inodes=, "
                                     "uid= or gid=", m->path, m->sub, m->tag);
                        if (mount(m->sub, target, m->sub, fl, tmpfs ? m->tag : NULL) < 0)
                                fail("volume", errno, "%s: cannot mount a %s", m->path, m->sub);
                        continue;
                }
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
static const char *run_path(const struct msb_exec_msg *run)
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
static void prefetch_command(const struct msb_exec_msg *run)
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
 * The image root, up to everything that does not depend on SETUP: the share
 * read-only at /mnt/lower, a tmpfs for the overlay's upper layer, the
 * overlay at NEWROOT, and the kernel file systems inside it.  msb names the
 * root share on the kernel command line (msb.root=TAG), so this runs while
 * the control port is still coming up; without that it runs after SETUP.
 * Failures are kept, not acted on: before the port is open nobody would
 * hear them.  setup_root() reports them once SETUP has arrived.
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

/* mkdir that accepts what is there: the disk keeps its layers across boots */
static bool mkdir_keep(const char *path)
{
        return mkdir(path, 0755) == 0 || errno == EEXIST;
}

/* The writable layer on the sandbox's disk: ext4 on DISK_DEV (made by the
 * host, empty on the first boot), with upper/ and work/ in its root. */
static bool mount_disk(void)
{
        int r = mkdir_p(DISK_MNT, 0755);
        if (r < 0)
                return base_step("disk", -r, "cannot create " DISK_MNT);
        if (mount(DISK_DEV, DISK_MNT, "ext4", MS_NOSUID | MS_NODEV, NULL) < 0)
                return base_step("disk", errno, "cannot mount the sandbox's disk " DISK_DEV " (ext4) on " DISK_MNT);
        if (!mkdir_keep(DISK_MNT "/upper") || !mkdir_keep(DISK_MNT "/work"))
                return base_step("disk", errno, "cannot create upper/ and work/ on the sandbox's disk");
        disk_fd = open(DISK_MNT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (disk_fd < 0)
                return base_step("disk", errno, "cannot open " DISK_MNT);
        return true;
}

/* A fresh tmpfs: what the command writes to the root dies with the VM. */
static bool mount_tmpfs_upper(void)
{
        if (!base_mount("tmpfs", TMPFS_MNT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"))
                return false;
        if (mkdir(TMPFS_MNT "/upper", 0755) < 0 || mkdir(TMPFS_MNT "/work", 0755) < 0)
                return base_step("mkdir", errno, "cannot create the overlay's upper layer");
        return true;
}

/* The overlay of the image and the writable layer under dir (upper/ and
 * work/), and the kernel file systems inside it.  /dev/pts is a devpts
 * instance of the guest's own, with /dev/ptmx pointing at it: agentd's
 * terminals come from there, as do those of programs in the guest. */
static void mount_kernel_fs(bool scratch);

static void mount_overlay(const char *dir)
{
        char opts[128];
        snprintf(opts, sizeof(opts), "lowerdir=/mnt/lower,upperdir=%s/upper,workdir=%s/work", dir, dir);
        if (base_mount("overlay", NEWROOT, "overlay", 0, opts))
                mount_kernel_fs(true);
}

/* The kernel's file systems in the new root; with scratch also /tmp and
 * /run as tmpfs (an image root's writes are throw-away anyway; an OCI
 * bundle's root keeps its own /tmp, as under runc). */
static void mount_kernel_fs(bool scratch)
{
        if (!base_mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) ||
            !base_mount("sysfs", NEWROOT "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) ||
            !base_mount("devtmpfs", NEWROOT "/dev", "devtmpfs", MS_NOSUID, "mode=0755") ||
            !base_mount("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                        "newinstance,ptmxmode=0666,mode=0620,gid=5") ||
            !base_mount("shm", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"))
                return;
        if (scratch && (!base_mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") ||
                        !base_mount("tmpfs", NEWROOT "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")))
                return;
        static const char *const links[][2] = {
                {"/proc/self/fd", NEWROOT "/dev/fd"},       {"/proc/self/fd/0", NEWROOT "/dev/stdin"},
                {"/proc/self/fd/1", NEWROOT "/dev/stdout"}, {"/proc/self/fd/2", NEWROOT "/dev/stderr"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(links); i++)
                (void)!symlink(links[i][0], links[i][1]);
        /* devtmpfs's ptmx is the initial devpts instance's, which has no
         * mount in the guest */
        if ((unlink(NEWROOT "/dev/ptmx") < 0 && errno != ENOENT) || symlink("pts/ptmx", NEWROOT "/dev/ptmx") < 0)
                base_step("mount", errno, "cannot point " NEWROOT "/dev/ptmx at pts/ptmx");
}

static void mount_root(const char *tag, bool disk)
{
        if (!tag_ok(tag)) {
                base_step("rootfs", EINVAL, "bad rootfs tag");
                return;
        }
        if (!base_mount(tag, "/mnt/lower", "virtiofs", MS_RDONLY | MS_NODEV, NULL))
                return;
        raise_readahead("/mnt/lower");
        if (disk ? mount_disk() : mount_tmpfs_upper())
                mount_overlay(disk ? DISK_MNT : TMPFS_MNT);
}

void mount_base(const char *tag)
{
        /* SETUP, which says whether there is a disk, has not come yet: the
         * tmpfs is the common case, and a disk sandbox redoes the overlay */
        mount_root(tag, false);
}

/* The base root was made early with a tmpfs upper, before SETUP said the
 * sandbox has a disk: take the overlay and everything in it down (nothing
 * has used it yet) and make it again on the disk. */
static void move_upper_to_disk(void)
{
        if (umount2(NEWROOT, MNT_DETACH) < 0)
                fail("disk", errno, "cannot unmount the early overlay at " NEWROOT);
        (void)umount2(TMPFS_MNT, MNT_DETACH);
        if (mount_disk())
                mount_overlay(DISK_MNT);
}

/* An OCI bundle's root: the share itself, read-write, no overlay. */
static void mount_root_rw(const char *tag, bool ro)
{
        if (!tag_ok(tag)) {
                base_step("rootfs", EINVAL, "bad rootfs tag");
                return;
        }
        if (!base_mount(tag, NEWROOT, "virtiofs", ro ? MS_RDONLY : 0, NULL))
                return;
        raise_readahead(NEWROOT);
        mount_kernel_fs(false);
}

static void setup_base(const struct msb_setup_msg *su, const char *premounted)
{
        bool disk = su->flags & MSB_SETUP_DISK;
        if (su->flags & MSB_SETUP_ROOT_RW) {
                if (premounted || disk)
                        fail("rootfs", EINVAL, "a read-write root goes with no early root and no disk");
                mount_root_rw(su->rootfs_tag, su->flags & MSB_SETUP_ROOT_RO);
        } else if (!premounted)
                mount_root(su->rootfs_tag, disk);
        else if (strcmp(premounted, su->rootfs_tag) != 0)
                fail("rootfs", EINVAL, "the root share on the kernel command line (%s) is not SETUP's (%s)", premounted,
                     su->rootfs_tag);
        else if (disk && !base.failed)
                move_upper_to_disk();
        if (base.failed)
                fail(base.step, base.err, "%s", base.msg);
        if (debug)
                logmsg("base root mounted%s", disk ? " (upper on the disk)" : "");
}

void setup_root(const struct msb_setup_msg *su, const char *premounted, const struct msb_exec_msg *first)
{
        setup_base(su, premounted);
        net_start(su);
        if (first)
                prefetch_command(first);
        mount_volumes(su);
        net_finish();
        setup_cfg = su;

        if (su->hostname[0] && sethostname(su->hostname, strlen(su->hostname)) < 0)
                fail("hostname", errno, "cannot set hostname '%s'", su->hostname);

        /* switch_root: an initramfs cannot be pivot_root'ed away. */
        if (chdir(NEWROOT) < 0)
                fail("switch-root", errno, "chdir " NEWROOT);
        if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
                fail("switch-root", errno, "move " NEWROOT " to /");
        if (chroot(".") < 0 || chdir("/") < 0)
                fail("switch-root", errno, "chroot");
}

void root_sync_disk(void)
{
        if (disk_fd >= 0)
                syncfs(disk_fd);
}

void root_sync(void)
{
        sync_volumes();
        root_sync_disk();
}
