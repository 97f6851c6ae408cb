/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fsd/sandbox.h"

static const int allowed[] = {
        SYS_read, SYS_write, SYS_close, SYS_fstat, SYS_newfstatat, SYS_statx, SYS_lseek, SYS_mmap, SYS_munmap,
        SYS_mremap, SYS_mprotect, SYS_madvise, SYS_brk, SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn,
        SYS_pread64, SYS_pwrite64, SYS_readv, SYS_writev, SYS_preadv, SYS_pwritev, SYS_open, SYS_openat,
        SYS_openat2, SYS_mkdirat, SYS_mknodat, SYS_unlinkat, SYS_renameat, SYS_renameat2, SYS_linkat, SYS_symlinkat,
        SYS_readlinkat, SYS_fchownat, SYS_fchmodat, SYS_chmod, SYS_utimensat, SYS_getxattr, SYS_setxattr,
        SYS_listxattr, SYS_removexattr, SYS_fstatfs, SYS_ftruncate, SYS_fsync, SYS_fdatasync, SYS_syncfs,
        SYS_fallocate, SYS_getdents64, SYS_fcntl, SYS_dup, SYS_dup3, SYS_epoll_wait, SYS_epoll_pwait,
        SYS_epoll_ctl, SYS_accept4, SYS_recvmsg, SYS_recvfrom, SYS_sendto, SYS_sendmsg, SYS_exit,
        SYS_exit_group, SYS_getpid, SYS_gettid, SYS_geteuid, SYS_getuid, SYS_getegid, SYS_getgid, SYS_futex,
        SYS_clock_gettime, SYS_restart_syscall, SYS_tgkill, SYS_getrandom, SYS_copy_file_range,
};

#define NALLOWED (sizeof(allowed) / sizeof(allowed[0]))

static int install_seccomp(void)
{
        /* arch check, load nr, one compare per allowed call, kill */
        struct sock_filter f[4 + NALLOWED + 2];
        size_t n = 0;
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
        for (size_t i = 0; i < NALLOWED; i++) {
                /* on a match jump to the ALLOW at the end */
                unsigned to_allow = (unsigned)(NALLOWED - i);
                f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)allowed[i], (uint8_t)to_allow, 0);
        }
        const char *dbg = getenv("MSB_FSD_SECCOMP_LOG");
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
                                              dbg && *dbg == '1' ? SECCOMP_RET_LOG : SECCOMP_RET_KILL_PROCESS);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
                return -errno;
        return 0;
}

/* Root only: keep the file capabilities serving needs, drop the rest. */
static int drop_caps(bool passthrough)
{
        uint64_t keep = (1ULL << CAP_CHOWN) | (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_DAC_READ_SEARCH) |
                        (1ULL << CAP_FOWNER) | (1ULL << CAP_FSETID);
        if (passthrough)
                keep |= 1ULL << CAP_MKNOD;
        for (int c = 0; c <= CAP_LAST_CAP; c++)
                if (!(keep & (1ULL << c)))
                        prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[2] = {
                {.effective = (uint32_t)keep, .permitted = (uint32_t)keep},
                {.effective = (uint32_t)(keep >> 32), .permitted = (uint32_t)(keep >> 32)},
        };
        return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

static int write_proc(const char *path, const char *s)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, s, strlen(s));
        int e = errno;
        close(fd);
        return n == (ssize_t)strlen(s) ? 0 : -e;
}

/* Unprivileged: a user namespace mapping only our own uid and gid, so the
 * rest can be done without root.  Files keep being created as our uid. */
static int enter_userns(void)
{
        uid_t uid = geteuid();
        gid_t gid = getegid();
        if (unshare(CLONE_NEWUSER) < 0)
                return -errno;
        char map[64];
        int r = write_proc("/proc/self/setgroups", "deny");
        snprintf(map, sizeof(map), "%u %u 1", (unsigned)uid, (unsigned)uid);
        if (r == 0)
                r = write_proc("/proc/self/uid_map", map);
        snprintf(map, sizeof(map), "%u %u 1", (unsigned)gid, (unsigned)gid);
        if (r == 0)
                r = write_proc("/proc/self/gid_map", map);
        return r;
}

/* Nothing of the host's tree stays reachable by path. */
static int empty_root(void)
{
        if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC) < 0)
                return -errno;
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -errno;
        /* any directory will do as the mount point: the tmpfs is ours alone */
        if (mount("msb-fsd", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "size=4k,mode=0555") < 0)
                return -errno;
        if (chroot("/tmp") < 0)
                return -errno;
        return 0;
}

int fsd_sandbox_enter(bool passthrough, char *err, size_t errsz)
{
        /* the working directory stays here, outside the new root */
        if (chdir("/proc/self/fd") < 0) {
                snprintf(err, errsz, "cannot enter /proc/self/fd: %s (is /proc mounted?)", strerror(errno));
                return -errno;
        }
        int r;
        if (geteuid() == 0) {
                if ((r = empty_root()) < 0) {
                        snprintf(err, errsz, "cannot set up an empty mount namespace: %s", strerror(-r));
                        return r;
                }
                if ((r = drop_caps(passthrough)) < 0) {
                        snprintf(err, errsz, "cannot drop capabilities: %s", strerror(-r));
                        return r;
                }
        } else if (enter_userns() == 0) {
                /* where unprivileged user namespaces are allowed; elsewhere
                 * the seccomp filter below is what confines us */
                if ((r = empty_root()) < 0) {
                        snprintf(err, errsz, "cannot set up an empty mount namespace: %s", strerror(-r));
                        return r;
                }
                drop_caps(false);
        }
        if ((r = install_seccomp()) < 0) {
                snprintf(err, errsz, "cannot install the seccomp filter: %s", strerror(-r));
                return r;
        }
        return 0;
}
