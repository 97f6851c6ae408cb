/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb-fsd: one virtio-fs device, one process.  msb starts it with a
 * listening unix socket at fd 3 (so QEMU can connect the moment it starts),
 * it accepts one vhost-user connection, serves FUSE requests until QEMU goes
 * away, and exits.  Two forms:
 *
 *   msb-fsd --fd 3 --path DIR|FILE [--file] [--ro [--immutable]]
 *           [--owner virtual|passthrough] [--timeout SECONDS]
 *       one share, the device's root (the image root; --immutable: nothing
 *       changes it while served, so files open without OPEN round trips)
 *   msb-fsd --fd 3 --volume OPTS:PATH... [--timeout SECONDS]
 *       many shares, entry K of the device's root is the K-th --volume; OPTS
 *       is a comma-separated list of dir|file, ro|rw, virtual|passthrough
 *       (PATH, everything after the first ':', may hold any character)
 *   msb-fsd --fd 3 --warm
 *       a warm pool's server: QEMU's connection first, the shares later on
 *       a second connection (warm_configure())
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/fuse.h>

#include "common/error.h"
#include "common/util.h"
#include "fsd/fs.h"
#include "common/jail.h"
#include "fsd/vhost.h"

#define SOCK_TAG 0xffffffffu
#define LISTEN_TAG 0xfffffffeu

static void usage(FILE *f)
{
        fprintf(f, "usage: msb-fsd --fd N --path DIR|FILE [--file] [--ro [--immutable]] [--owner virtual|passthrough]\n"
                   "               [--timeout SECONDS] [--no-sandbox]\n"
                   "       msb-fsd --fd N --volume {dir|file},{ro|rw},{virtual|passthrough}:PATH...\n"
                   "               [--timeout SECONDS] [--no-sandbox]\n");
}

#define MAX_VOLUMES 64

/*
 * RLIMIT_NOFILE, fixed: every handle's fd and its inode's O_PATH fd (kept
 * open while the file is), the inode fd cache, and FSD_NOFILE_SLACK for
 * what one request opens beyond the cache before it is trimmed (a 1 MiB
 * READDIRPLUS: ~6.5 Ki entries), the shares, the socket and eventfds.  Not
 * fs.nr_open (a million, as virtiofsd takes): the limits in fs.h are what
 * bound a guest, this only backs them.  Fd tables grow as they fill, so the
 * number costs nothing until used.
 */
#define FSD_NOFILE_SLACK 16384u
#define FSD_NOFILE (2 * FS_MAX_HANDLES + FS_MAX_INODE_FDS + FSD_NOFILE_SLACK)

/*
 * RLIMIT_DATA: private writable memory (heap, anonymous private mmaps),
 * which is where everything a guest can make the server allocate lives:
 * inodes (~200 bytes each plus the name, up to ~430 with 255-byte names; at
 * most FS_MAX_INODES: ~900 MiB) and their hash tables, handles, the
 * request buffers.  Not RLIMIT_AS: guest memory is
 * mapped in from QEMU's memfd (SET_MEM_TABLE, 512 MiB to 64 GiB), and
 * RLIMIT_DATA does not count shared mappings (checked: a 4 GiB MAP_SHARED
 * memfd maps and is written under a 64 MiB RLIMIT_DATA).  Reaching it costs
 * the guest ENOMEM for that request, or at worst this server: never the
 * host.
 */
#define FSD_MAX_DATA (1280ull << 20)

/* Sanitizers reserve terabytes of private shadow memory: no data limit. */
#if defined(__SANITIZE_ADDRESS__)
#define FSD_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define FSD_SANITIZED 1
#endif
#endif

/* Set the fd and memory limits; returns RLIMIT_NOFILE as set. */
static rlim_t set_rlimits(void)
{
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 1024;
        /* as root the hard limit goes to FSD_NOFILE, up or down; otherwise
         * as high as it lets us */
        rlim_t want = geteuid() == 0 || rl.rlim_max >= FSD_NOFILE ? FSD_NOFILE : rl.rlim_max;
        struct rlimit set = {want, want};
        if (setrlimit(RLIMIT_NOFILE, &set) < 0) {
                set = (struct rlimit){rl.rlim_max, rl.rlim_max};
                if (setrlimit(RLIMIT_NOFILE, &set) < 0)
                        set = rl;
        }
#ifndef FSD_SANITIZED
        struct rlimit d = {FSD_MAX_DATA, FSD_MAX_DATA};
        if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_max < FSD_MAX_DATA)
                d = rl;
        setrlimit(RLIMIT_DATA, &d);
#endif
        return set.rlim_cur;
}

/* The fs limits in the proportions of FSD_NOFILE, where the host allows
 * fewer fds. */
static void fit_fds(struct fs *fs, rlim_t nofile)
{
        if (nofile >= FSD_NOFILE)
                return;
        struct fs_limits l;
        fs_get_limits(fs, &l);
        l.handles = (size_t)(nofile * FS_MAX_HANDLES / FSD_NOFILE);
        l.inode_fds = (size_t)(nofile * FS_MAX_INODE_FDS / FSD_NOFILE);
        fs_set_limits(fs, &l);
}

/* As many inodes as the guest's RAM can cache (see FS_MAX_INODES), once
 * QEMU has told us its size. */
static void fit_inodes(struct fs *fs, const struct vu_mem *m)
{
        uint64_t bytes = 0;
        for (unsigned k = 0; k < m->n; k++)
                bytes += m->r[k].size;
        uint64_t n = bytes / FS_GUEST_BYTES_PER_INODE;
        n = n < FS_MIN_INODES ? FS_MIN_INODES : n > FS_MAX_INODES ? FS_MAX_INODES : n;
        struct fs_limits l;
        fs_get_limits(fs, &l);
        if (l.inodes != n) {
                l.inodes = (size_t)n;
                fs_set_limits(fs, &l);
        }
}

static int parse_volume(const char *spec, struct fs_config *c)
{
        const char *colon = strchr(spec, ':');
        if (!colon || !colon[1])
                return -1;
        char opts[64];
        size_t n = (size_t)(colon - spec);
        if (n >= sizeof(opts))
                return -1;
        memcpy(opts, spec, n);
        opts[n] = 0;
        *c = (struct fs_config){.path = colon + 1, .owner = FS_OWNER_VIRTUAL};
        int seen = 0;
        for (char *save = NULL, *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                if (!strcmp(o, "dir"))
                        seen |= 1;
                else if (!strcmp(o, "file"))
                        seen |= 1, c->single_file = true;
                else if (!strcmp(o, "rw"))
                        seen |= 2;
                else if (!strcmp(o, "ro"))
                        seen |= 2, c->read_only = true;
                else if (!strcmp(o, "virtual"))
                        seen |= 4;
                else if (!strcmp(o, "passthrough"))
                        seen |= 4, c->owner = FS_OWNER_PASSTHROUGH;
                else
                        return -1;
        }
        return seen == 7 ? 0 : -1;
}

static void serve_queues(struct vu_dev *d, struct fs *fs, uint8_t *inbuf, uint8_t *outbuf)
{
        bool indirect = d->features & (1ULL << 28);
        for (unsigned q = 0; q < VU_MAX_QUEUES; q++) {
                struct vu_vq *vq = &d->vq[q];
                if (!vq->enabled || !vq->desc || vq->broken)
                        continue;
                if (vq_process(vq, &d->mem, indirect, fs_handle, fs, inbuf, FS_BUF_SIZE, outbuf, FS_BUF_SIZE) < 0)
                        fprintf(stderr, "msb-fsd: queue %u: malformed descriptor chain from the guest; queue stopped\n",
                                q);
        }
}

struct fsd_args {
        struct fs_config c;
        struct fs_config vols[MAX_VOLUMES];
        size_t nvols;
        int lfd;
        bool sandbox, warm;
};

/* argv (from the command line, or a warm server's configuration) into a;
 * 0, 1 (--help/--version answered) or 2 (usage printed). */
static int parse_args(int argc, char **argv, struct fsd_args *a)
{
        static const struct option opts[] = {
                {"fd", required_argument, NULL, 'f'},     {"path", required_argument, NULL, 'p'},
                {"file", no_argument, NULL, 'F'},         {"ro", no_argument, NULL, 'r'},
                {"owner", required_argument, NULL, 'o'},  {"timeout", required_argument, NULL, 't'},
                {"no-sandbox", no_argument, NULL, 'N'},   {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},      {"volume", required_argument, NULL, 'v'},
                {"immutable", no_argument, NULL, 'I'},    {"warm", no_argument, NULL, 'W'},
                {0},
        };
        int ch;
        optind = 0; /* glibc: start over, for a second argv */
        while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                char *end;
                switch (ch) {
                case 'f':
                        a->lfd = (int)strtol(optarg, &end, 10);
                        if (*end || a->lfd < 3) { /* 0..2 are stdio */
                                fprintf(stderr, "msb-fsd: --fd '%s': not an fd number\n", optarg);
                                return 2;
                        }
                        break;
                case 'p':
                        a->c.path = optarg;
                        break;
                case 'F':
                        a->c.single_file = true;
                        break;
                case 'r':
                        a->c.read_only = true;
                        break;
                case 'I':
                        a->c.immutable = true;
                        break;
                case 'W':
                        a->warm = true;
                        break;
                case 'o':
                        if (!strcmp(optarg, "virtual"))
                                a->c.owner = FS_OWNER_VIRTUAL;
                        else if (!strcmp(optarg, "passthrough"))
                                a->c.owner = FS_OWNER_PASSTHROUGH;
                        else {
                                fprintf(stderr, "msb-fsd: --owner '%s': use virtual or passthrough\n", optarg);
                                return 2;
                        }
                        break;
                case 't':
                        a->c.timeout = strtod(optarg, &end);
                        if (*end || a->c.timeout < 0 || a->c.timeout > 1e6) {
                                fprintf(stderr, "msb-fsd: --timeout '%s': not a number of seconds\n", optarg);
                                return 2;
                        }
                        break;
                case 'N':
                        a->sandbox = false;
                        break;
                case 'v':
                        if (a->nvols >= MAX_VOLUMES || parse_volume(optarg, &a->vols[a->nvols]) < 0) {
                                fprintf(stderr, "msb-fsd: --volume '%s': expected {dir|file},{ro|rw},"
                                                "{virtual|passthrough}:PATH (at most %d)\n",
                                        optarg, MAX_VOLUMES);
                                return 2;
                        }
                        a->nvols++;
                        break;
                case 'h':
                        usage(stdout);
                        return 1;
                case 'V':
                        printf("msb-fsd %s (FUSE %d.%d, vhost-user)\n", MSB_VERSION, FUSE_KERNEL_VERSION,
                               FUSE_KERNEL_MINOR_VERSION);
                        return 1;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc)
                return usage(stderr), 2;
        if (a->c.immutable && !a->c.read_only) {
                fprintf(stderr, "msb-fsd: --immutable needs --ro\n");
                return 2;
        }
        return 0;
}

/* The shares, opened, and the server confined to them.  0 or -1 with the
 * error printed.  No shares at all (a warm server told it serves nothing):
 * confined to nothing, *ret NULL. */
static int open_shares(struct fsd_args *a, rlim_t nofile, struct fs **ret)
{
        struct msb_error err = {0};
        *ret = NULL;
        for (size_t k = 0; k < a->nvols; k++)
                a->vols[k].timeout = a->c.timeout;
        bool passthrough = a->c.owner == FS_OWNER_PASSTHROUGH;
        for (size_t k = 0; k < a->nvols; k++)
                passthrough |= a->vols[k].owner == FS_OWNER_PASSTHROUGH;
        struct fs *fs = NULL;
        if (a->c.path || a->nvols) {
                int r = a->nvols ? fs_new_multi(a->vols, a->nvols, true, &fs, &err)
                                 : fs_new(&a->c, &fs, &err);
                if (r < 0) {
                        fprintf(stderr, "msb-fsd: %s\n", err.message);
                        return -1;
                }
                fit_fds(fs, nofile);
        }
        int dirs[JAIL_MAX_DIRS];
        unsigned dirs_flags[JAIL_MAX_DIRS];
        size_t ndirs = fs ? fs_host_dirs(fs, dirs, dirs_flags, JAIL_MAX_DIRS) : 0;
        const char *seccomp_log = getenv("MSB_FSD_SECCOMP_LOG");
        jail_seccomp_log(seccomp_log && *seccomp_log == '1');
        if (a->sandbox && jail_enter_fsd(dirs, dirs_flags, ndirs, passthrough, &err) < 0) {
                fprintf(stderr, "msb-fsd: %s\n", err.message);
                fs_free(fs);
                return -1;
        }
        *ret = fs;
        return 0;
}

#define WARM_CONFIG_MAX (256 * 1024) /* 32 volumes of PATH_MAX paths fit */
#define WARM_MAGIC "msb-fsd-config 1\n"

/*
 * A warm server (msb pool): started before its shares are known, it has
 * QEMU's connection and handles the device's setup while the guest boots,
 * but serves nothing.  The shares come on a second connection to the same
 * listening socket: WARM_MAGIC, a u32 length, then the arguments a server
 * would have been started with (NUL-separated, no --fd).  They are opened,
 * the server is confined, "ok\n" (or the error) goes back.
 */
static int warm_configure(int lfd, struct fsd_args *a, rlim_t nofile, struct fs **ret)
{
        int cfd;
        do
                cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        while (cfd < 0 && errno == EINTR);
        if (cfd < 0)
                return -1;
        static char buf[WARM_CONFIG_MAX + 1];
        char hdr[sizeof(WARM_MAGIC) - 1 + 4];
        uint32_t len = 0;
        int r = -1;
        struct timeval tv = {5, 0};
        setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (read_all(cfd, hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr) &&
            !memcmp(hdr, WARM_MAGIC, sizeof(WARM_MAGIC) - 1)) {
                memcpy(&len, hdr + sizeof(WARM_MAGIC) - 1, 4);
                if (len <= WARM_CONFIG_MAX && read_all(cfd, buf, len) == (ssize_t)len) {
                        buf[len] = 0;
                        char *args[2 * MAX_VOLUMES + 32];
                        int n = 0;
                        bool fits = true;
                        args[n++] = "msb-fsd";
                        for (size_t off = 0; off < len; off += strlen(buf + off) + 1) {
                                /* a share's options only: never --no-sandbox,
                                 * --fd or --warm (nor anything left out) */
                                static const char *const allowed[] = {"--path", "--file", "--ro", "--immutable",
                                                                      "--owner", "--timeout", "--volume"};
                                bool ok = buf[off] != '-' && n > 1 && args[n - 1][0] == '-' &&
                                          (!strcmp(args[n - 1], "--path") || !strcmp(args[n - 1], "--owner") ||
                                           !strcmp(args[n - 1], "--timeout") || !strcmp(args[n - 1], "--volume"));
                                for (size_t k = 0; !ok && k < ARRAY_SIZE(allowed); k++)
                                        ok = !strncmp(buf + off, allowed[k], strlen(allowed[k])) &&
                                             (buf[off + strlen(allowed[k])] == 0 || buf[off + strlen(allowed[k])] == '=');
                                if (!ok || n == (int)ARRAY_SIZE(args) - 1) {
                                        fits = false;
                                        break;
                                }
                                args[n++] = buf + off;
                        }
                        args[n] = NULL;
                        if (!fits)
                                fprintf(stderr, "msb-fsd: warm: a configuration with other arguments than a share's\n");
                        struct fsd_args c = {.c = {.owner = FS_OWNER_VIRTUAL, .timeout = 1.0}, .lfd = a->lfd,
                                             .sandbox = a->sandbox};
                        if (fits && parse_args(n, args, &c) == 0 && c.lfd == a->lfd && !c.warm) {
                                *a = c;
                                r = open_shares(a, nofile, ret);
                        }
                }
        }
        const char *reply = r == 0 ? "ok\n" : "error: see the server's log\n";
        (void)!write(cfd, reply, strlen(reply));
        close(cfd);
        return r;
}

/* What the event loop works on. */
struct server {
        struct fsd_args *a;
        int epfd;
        int lfd;         /* a warm server's listening socket, until its shares come */
        rlim_t nofile;
        struct fs *fs;   /* NULL until a warm server's shares come, or with none */
        struct vu_dev dev;
        uint8_t *inbuf, *outbuf;
};

/* One epoll event; true when the server is to stop, *rc then its exit
 * status. */
static bool on_event(struct server *s, uint32_t tag, int *rc)
{
        if (tag == SOCK_TAG) {
                int r = vu_dispatch(&s->dev);
                if (s->fs)
                        fit_inodes(s->fs, &s->dev.mem);
                if (r == 1)
                        return true; /* QEMU is gone */
                if (r < 0) {
                        fprintf(stderr, "%s\n", errno_msg(-r, "msb-fsd: vhost-user").s);
                        *rc = 1;
                        return true;
                }
        } else if (tag == LISTEN_TAG) {
                /* a warm server's shares: once */
                epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
                int r = warm_configure(s->lfd, s->a, s->nofile, &s->fs);
                close(s->lfd);
                if (r < 0) {
                        *rc = 1;
                        return true;
                }
                if (s->fs)
                        fit_inodes(s->fs, &s->dev.mem);
        } else if (tag < VU_MAX_QUEUES) {
                eventfd_t v;
                int kfd = s->dev.vq[tag].kick_fd;
                if (kfd >= 0)
                        (void)eventfd_read(kfd, &v);
        }
        return false;
}

/* Until QEMU goes away or an error: the exit status. */
static int serve(struct server *s)
{
        int rc = 0;
        for (;;) {
                struct epoll_event evs[8];
                int n = epoll_wait(s->epfd, evs, 8, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "%s\n", errno_msg(errno, "msb-fsd: epoll_wait").s);
                        return 1;
                }
                /* every event of the batch is handled, even after one
                 * that stops the server */
                bool quit = false;
                for (int k = 0; k < n; k++)
                        quit |= on_event(s, evs[k].data.u32, &rc);
                if (quit)
                        return rc;
                /* nothing is served before the shares are known (a warm
                 * server), nor on a device told it has none */
                if (s->fs)
                        serve_queues(&s->dev, s->fs, s->inbuf, s->outbuf);
        }
}

int main(int argc, char **argv)
{
        static struct fsd_args a = {.c = {.owner = FS_OWNER_VIRTUAL, .timeout = 1.0}, .lfd = -1, .sandbox = true};
        int pr = parse_args(argc, argv, &a);
        if (pr)
                return pr == 1 ? 0 : 2;
        if (a.lfd < 0 || (a.warm ? (a.c.path || a.nvols) : (!a.c.path) == (a.nvols == 0))) {
                usage(stderr);
                return 2;
        }
        int lfd = a.lfd;
        /* Only stdio and the listening socket come in: whatever else an
         * embedding program leaked to us (an fd on /etc, on its home)
         * would stay reachable after confinement. */
        if (lfd > 3)
                syscall(SYS_close_range, 3u, (unsigned)lfd - 1, 0u);
        syscall(SYS_close_range, (unsigned)lfd + 1, ~0u, 0u);
        signal(SIGPIPE, SIG_IGN);
        rlim_t nofile = set_rlimits();
        /* the server reaches inodes through /proc/self/fd (see fs.h); the jail
         * moves us into its own */
        if (chdir("/proc/self/fd") < 0) {
                fprintf(stderr, "msb-fsd: cannot enter /proc/self/fd: %s (is /proc mounted?)\n", errno_text(errno));
                return 1;
        }
        /* before the confinement, whose filter has no epoll_create1 */
        int epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0) {
                fprintf(stderr, "%s\n", errno_msg(errno, "msb-fsd: epoll_create1").s);
                return 1;
        }
        struct fs *fs = NULL;
        if (!a.warm && open_shares(&a, nofile, &fs) < 0)
                return 1;
        int sock;
        do
                sock = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        while (sock < 0 && errno == EINTR);
        if (sock < 0) {
                fprintf(stderr, "%s\n", errno_msg(errno, "msb-fsd: accept").s);
                return 1;
        }
        bool configured = !a.warm;
        if (configured)
                close(lfd);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = SOCK_TAG};
        struct epoll_event lev = {.events = EPOLLIN, .data.u32 = LISTEN_TAG};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, sock, &ev) < 0 ||
            (!configured && epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0)) {
                fprintf(stderr, "%s\n", errno_msg(errno, "msb-fsd: epoll_ctl").s);
                return 1;
        }
        static struct server s;
        s = (struct server){.a = &a, .epfd = epfd, .lfd = lfd, .nofile = nofile, .fs = fs,
                            .inbuf = xmalloc(FS_BUF_SIZE), .outbuf = xmalloc(FS_BUF_SIZE)};
        vu_dev_init(&s.dev, sock, epfd);
        int rc = serve(&s);
        vu_dev_fini(&s.dev);
        fs_free(s.fs);
        free(s.inbuf);
        free(s.outbuf);
        return rc;
}
