/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Runs inside a guest (as root) and checks that the kernel offers what
 * commands in a sandbox expect.  Prints "ok NAME" or "missing NAME: why" per
 * feature and exits 1 if anything is missing.  Static, so any image works.
 * With the argument "ids" it prints its real and effective uid instead (a
 * setuid copy of it shows whether setuid works in the guest).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

static int missing;

static void report(const char *name, int ok, const char *what)
{
        if (ok)
                printf("ok %s\n", name);
        else {
                printf("missing %s: %s: %s\n", name, what, strerror(errno));
                missing++;
        }
}

/* run fn in a child so namespace and seccomp changes stay there */
static int in_child(int (*fn)(void))
{
        pid_t p = fork();
        if (p == 0)
                _exit(fn() == 0 ? 0 : 1);
        int st;
        if (p < 0 || waitpid(p, &st, 0) < 0)
                return -1;
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int do_netns(void) { return unshare(CLONE_NEWNET); }
static int do_userns(void) { return unshare(CLONE_NEWUSER); }
static int do_pidns(void) { return unshare(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC); }
static int do_seccomp(void)
{
        struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
        struct sock_fprog prog = {.len = 1, .filter = allow};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -1;
        return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

static int mounts_has(const char *type)
{
        FILE *f = fopen("/proc/mounts", "re");
        char line[1024];
        int found = 0;
        while (f && fgets(line, sizeof(line), f)) {
                char dev[256], dir[512], fstype[64];
                if (sscanf(line, "%255s %511s %63s", dev, dir, fstype) == 3 && !strcmp(fstype, type))
                        found = 1;
        }
        if (f)
                fclose(f);
        errno = ENOENT;
        return found;
}

/* A terminal as script(1) or sshd open one: a master from /dev/ptmx, its
 * slave by name, and a line written on the slave read on the master. */
static int pty_works(void)
{
        int m = posix_openpt(O_RDWR | O_NOCTTY);
        if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0)
                return 0;
        const char *name = ptsname(m);
        int s = name && !strncmp(name, "/dev/pts/", 9) ? open(name, O_RDWR | O_NOCTTY) : -1;
        char buf[16] = "";
        int ok = s >= 0 && write(s, "pty\n", 4) == 4 && read(m, buf, sizeof(buf) - 1) > 0 && !strncmp(buf, "pty", 3);
        if (s >= 0)
                close(s);
        close(m);
        return ok;
}

int main(int argc, char **argv)
{
        /* "featurecheck ids": what a setuid test needs from a binary */
        if (argc == 2 && !strcmp(argv[1], "ids")) {
                printf("uid=%u euid=%u\n", (unsigned)getuid(), (unsigned)geteuid());
                return 0;
        }
        report("virtiofs", mounts_has("virtiofs") || mounts_has("overlay"), "no virtiofs-backed root");
        report("overlay", mounts_has("overlay"), "root is not an overlay");
        mkdir("/tmp/fc", 0755);
        report("tmpfs", mount("tmpfs", "/tmp/fc", "tmpfs", 0, "size=1m") == 0, "mount tmpfs");
        mkdir("/tmp/fc/l", 0755);
        mkdir("/tmp/fc/u", 0755);
        mkdir("/tmp/fc/w", 0755);
        mkdir("/tmp/fc/m", 0755);
        report("overlay-mount",
               mount("overlay", "/tmp/fc/m", "overlay", 0, "lowerdir=/tmp/fc/l,upperdir=/tmp/fc/u,workdir=/tmp/fc/w") == 0,
               "mount overlay");
        report("pty", pty_works(), "posix_openpt, the slave, a byte through it");
        char ptmx[64] = "";
        ssize_t pl = readlink("/dev/ptmx", ptmx, sizeof(ptmx) - 1);
        ptmx[pl > 0 ? pl : 0] = '\0';
        errno = EINVAL;
        report("ptmx of the guest's devpts", !strcmp(ptmx, "pts/ptmx") && mounts_has("devpts"),
               "/dev/ptmx -> pts/ptmx, devpts mounted");
        report("netns", in_child(do_netns) == 0, "unshare(CLONE_NEWNET)");
        report("userns", in_child(do_userns) == 0, "unshare(CLONE_NEWUSER)");
        report("pid+mount+uts+ipc ns", in_child(do_pidns) == 0, "unshare");
        report("seccomp", in_child(do_seccomp) == 0, "seccomp(SECCOMP_SET_MODE_FILTER)");
        report("eventfd", eventfd(0, 0) >= 0, "eventfd");
        int sv[2];
        report("unix socket", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair(AF_UNIX)");
        report("inet socket", socket(AF_INET, SOCK_STREAM, 0) >= 0, "socket(AF_INET)");
        report("inet6 socket", socket(AF_INET6, SOCK_STREAM, 0) >= 0, "socket(AF_INET6)");
        /* the default network: virtio-net up as eth0, and nothing else but
         * lo (no sit0 tunnel from the kernel) */
        report("virtio-net eth0", access("/sys/class/net/eth0", F_OK) == 0, "/sys/class/net/eth0");
        report("no other interfaces", access("/sys/class/net/sit0", F_OK) != 0 && access("/sys/class/net/tunl0", F_OK) != 0,
               "sit0 or tunl0 present");
        report("epoll", epoll_create1(0) >= 0, "epoll_create1");
        sigset_t m;
        sigemptyset(&m);
        report("signalfd", signalfd(-1, &m, 0) >= 0, "signalfd");
        report("timerfd", timerfd_create(CLOCK_MONOTONIC, 0) >= 0, "timerfd_create");
        report("inotify", inotify_init1(0) >= 0, "inotify_init1");
        report("sysv shm", shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600) >= 0, "shmget");
        struct mq_attr a = {.mq_maxmsg = 1, .mq_msgsize = 8};
        report("posix mqueue", mq_open("/msbfc", O_CREAT | O_RDWR, 0600, &a) >= 0, "mq_open");
        mkdir("/tmp/fc/cg", 0755);
        report("cgroup2", mount("cgroup2", "/tmp/fc/cg", "cgroup2", 0, NULL) == 0, "mount cgroup2");
        printf("%d missing\n", missing);
        return missing ? 1 : 0;
}
