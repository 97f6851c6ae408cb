/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agentd: PID 1 of every msb guest.  Statically linked, lives in the
 * initramfs that libmsb builds.
 *
 *   load modules -> open the control port -> HELLO -> SETUP ->
 *   mount the rootfs share (ro) + overlay (tmpfs or disk upper) + volumes ->
 *   move the new root over / -> run the host's processes (EXEC), relay
 *   their stdio -> SHUTDOWN -> reboot (QEMU runs with -no-reboot, so the
 *   VM ends).
 *
 * Everything from the host arrives through src/proto, whose decoder checks
 * bounds.  Any failure of the sandbox itself is sent to the host as ERROR{0,
 * step, errno} and the VM is powered off: agentd never hangs waiting for a
 * human.  A process that cannot start is that process's ERROR only.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/error.h"
#include "common/util.h"

#define CTL_PORT_NAME "msb.ctl"
#define MODULES_DIR "/lib/msb"

int ctl_fd = -1;
struct msb_buf outq;
struct msb_reader rd;
bool debug;

void logmsg(const char *fmt, ...)
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

int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ctl_io(short revents)
{
        if (revents & POLLOUT) {
                ssize_t n = write(ctl_fd, msb_buf_head(&outq), msb_buf_pending(&outq));
                if (n > 0)
                        msb_buf_consume(&outq, (size_t)n);
        }
        ssize_t n = -1;
        if (revents & POLLIN) {
                uint8_t buf[65536];
                n = read(ctl_fd, buf, sizeof(buf));
                if (n > 0)
                        msb_reader_feed(&rd, buf, (size_t)n);
        }
        if (n <= 0 && (revents & (POLLIN | POLLHUP | POLLERR))) {
                /* Host end not connected (yet): virtio-serial reports hangup
                 * until it opens.  Do not spin. */
                struct timespec ts = {0, 2 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
}

/* One round of control-channel I/O outside the process loop: send what is
 * queued, take in what arrived.  Returns 0 if nothing happened within
 * timeout_ms. */
static int ctl_pump(int timeout_ms)
{
        struct pollfd p = {.fd = ctl_fd, .events = POLLIN};
        if (msb_buf_pending(&outq))
                p.events |= POLLOUT;
        if (poll(&p, 1, timeout_ms) <= 0)
                return 0;
        ctl_io(p.revents);
        return 1;
}

/*
 * After an ERROR for the sandbox: wait until the host says SHUTDOWN, which
 * confirms it has everything we sent.  A write to the port only queues data
 * in QEMU; if QEMU's socket to msb is full, the ERROR would die with the VM.
 * The host kills the VM itself if it goes away, so the timeout is only a
 * backstop.  Everything else the host says now is dropped.
 */
static void wait_shutdown(void)
{
        int64_t deadline = now_ms() + SHUTDOWN_WAIT_MS;
        while (ctl_fd >= 0 && now_ms() < deadline) {
                struct msb_msg m;
                int r;
                while ((r = msb_reader_next(&rd, &m)) == 1) {
                        bool stop = m.type == MSB_MSG_SHUTDOWN;
                        msb_msg_free(&m);
                        if (stop)
                                return;
                }
                if (r < 0)
                        return;
                ctl_pump(100);
        }
}

/* Stop everything that runs and write out what the file systems hold:
 * sync() for all of them, and the disk upper by name (the overlay's sync
 * reaches it too, but it is the one thing that must last). */
static void stop_and_sync(void)
{
        kill(-1, SIGKILL);
        sync();
        root_sync_disk();
}

static __attribute__((noreturn)) void reboot_now(void)
{
        if (debug)
                logmsg("powering off");
        /* QEMU runs with -no-reboot: a reset ends the VM for both the Debian
         * kernel and a tinyconfig one (where power-off only halts). */
        reboot(RB_AUTOBOOT);
        for (;;)
                pause();
}

void halt(void)
{
        stop_and_sync();
        reboot_now();
}

void fail(const char *step, int err, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (err)
                logmsg("%s: %s", step, errno_msg(err, "%s", msg).s);
        else
                logmsg("%s: %s", step, msg);
        stop_and_sync();
        if (ctl_fd >= 0) {
                msb_enc_error(&outq, 0, step, err, msg);
                flush_outq(5000);
                wait_shutdown();
        }
        reboot_now();
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
        while (ret < 0 && (de = readdir_no_dot(d))) {
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
bool try_ctl_port(void)
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

/* A warm pool's VM (msb.warm=1): booted ahead of its sandbox, it waits
 * for its HELLO for as long as the pool keeps it. */
static bool warm;

/* Block until one whole message arrives (setup phase only); forever:
 * no deadline. */
static void recv_msg(struct msb_msg *m, bool forever)
{
        int64_t deadline = forever ? INT64_MAX : now_ms() + 60000;
        for (;;) {
                int r = msb_reader_next(&rd, m);
                if (r < 0)
                        fail("protocol", -r, "malformed frame from host");
                if (r == 1)
                        return;
                if (now_ms() >= deadline)
                        fail("protocol", ETIMEDOUT, "no message from host");
                ctl_pump(forever ? -1 : 1000);
        }
}

/* The kernel opens /dev/console as init's 0, 1 and 2; should it not have,
 * the first pipes would take those numbers and a command's dup2() onto
 * 0..2 would clobber its own other ends. */
static void hold_std_fds(void)
{
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
                        break;
}

/* msb.debug=1 and msb.root=TAG from the kernel command line */
static void read_cmdline(char *root_tag, size_t size)
{
        _cleanup_free_ char *cmdline = NULL;
        if (read_file_at(AT_FDCWD, "/proc/cmdline", 65536, &cmdline, NULL) < 0)
                return;
        char *save = NULL;
        for (char *w = strtok_r(cmdline, " \n", &save); w; w = strtok_r(NULL, " \n", &save)) {
                if (!strcmp(w, "msb.debug=1"))
                        debug = true;
                else if (!strcmp(w, "msb.warm=1"))
                        warm = true;
                else if (!strncmp(w, "msb.root=", 9))
                        snprintf(root_tag, size, "%s", w + 9);
        }
}

/* HELLO, then SETUP; returns SETUP. */
static void recv_setup(struct msb_msg *setup)
{
        struct msb_msg m;
        recv_msg(&m, warm);
        if (m.type != MSB_MSG_HELLO || m.u.hello.version != MSB_PROTO_VERSION)
                fail("protocol", EPROTO, "expected HELLO version %u, got %s", MSB_PROTO_VERSION,
                     msb_msg_type_name(m.type));
        msb_msg_free(&m);
        recv_msg(setup, false);
        if (setup->type != MSB_MSG_SETUP)
                fail("protocol", EPROTO, "expected SETUP, got %s", msb_msg_type_name(setup->type));
        if (debug)
                logmsg("SETUP received");
}

/* The message after SETUP, if it came with it (msb sends HELLO, SETUP and
 * the main EXEC at once): an EXEC's executable is read ahead while the root
 * is set up.  Returns whether *m holds one. */
static bool take_early(struct msb_msg *m)
{
        int r = msb_reader_next(&rd, m);
        if (r == 0 && ctl_pump(0))
                r = msb_reader_next(&rd, m);
        if (r < 0)
                fail("protocol", -r, "malformed frame from host");
        if (r == 1 && debug && m->type == MSB_MSG_EXEC)
                logmsg("EXEC received: %s", m->u.exec.argv[0]);
        return r == 1;
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
        hold_std_fds();
        char root_tag[64] = "";
        read_cmdline(root_tag, sizeof(root_tag));

        if (debug)
                logmsg("started");
        load_modules();
        if (root_tag[0]) {
                mount_base(root_tag);
                if (debug)
                        logmsg("base root mounted early");
        }
        wait_ctl_port();

        struct msb_msg setup, first;
        recv_setup(&setup);
        bool have_first = take_early(&first);
        setup_root(&setup.u.setup, root_tag[0] ? root_tag : NULL,
                   have_first && first.type == MSB_MSG_EXEC ? &first.u.exec : NULL);
        if (debug)
                logmsg("root ready");
        procs_run(&setup.u.setup, have_first ? &first : NULL);
}
