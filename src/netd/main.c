/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb-netd: a sandbox's network process (docs/network.md).
 *
 *   QEMU virtio-net --stream--> msb-netd --socketpair--> passt --> host sockets
 *
 * msb binds the socket QEMU connects to and hands it over as fd 3.  msb-netd
 * starts passt on one end of a socketpair (passt -F), accepts QEMU, connects
 * a UDP socket to the upstream resolver and a netlink socket for the host's
 * address changes (group "host"), then confines itself like msb-fsd
 * (empty root, own namespaces, seccomp) and relays frames both ways.  Every
 * frame from the guest goes through the policy engine (src/net/frames.c)
 * before passt sees it; DNS queries to the gateway are answered here.
 * Both sides speak QEMU's stream framing: 4-byte big-endian length + frame.
 *
 * With --direct (a benchmark's baseline: no policy at all) it only accepts
 * QEMU's connection and becomes passt on it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/util.h"
#include "common/jail.h"
#include "net/net.h"

#define LISTEN_FD 3
#define MAX_FRAME (65535u + 14u)
#define RBUF (256u << 10)
/* stop reading a side while this much waits for the other */
#define OUT_HIGH (2u << 20)
#define MAX_RULES 256
#define MAX_PORTS 64
#define MAX_HOST_ADDRS 64

struct opts {
        const char *passt, *passt_log;
        bool direct, verbose, have_mac, warm;
        uint8_t guest_mac[6];
        struct net_config cfg;
        struct net_rule rules[MAX_RULES];
        struct net_port ports[MAX_PORTS];
        struct net_addr host[MAX_HOST_ADDRS];
        unsigned prefix4, prefix6;
        struct net_addr dns;
        char **port_specs;
};

static _Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void die(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("msb-netd: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(1);
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * One line per flow and per DNS query (--verbose): a guest decides how many.
 * When stderr is msb's log for us (<runtime dir>/net.log, which msb also
 * gives as stdout; never a file of the user's), it is restarted past
 * NET_LOG_MAX bytes, so the log costs /run at most that.  The user's own
 * stderr is the user's to bound.
 */
#define NET_LOG_MAX (1u << 20)
static void log_line(void *opaque, const char *line)
{
        static int is_file = -1;
        static uint64_t size;
        struct stat st, out;
        if (is_file < 0) {
                is_file = fstat(STDERR_FILENO, &st) == 0 && S_ISREG(st.st_mode) && fstat(STDOUT_FILENO, &out) == 0 &&
                          out.st_dev == st.st_dev && out.st_ino == st.st_ino;
                size = is_file ? (uint64_t)st.st_size : 0;
        }
        size_t n = strlen(line) + sizeof("msb-netd: \n") - 1;
        if (is_file && size + n > NET_LOG_MAX && ftruncate(STDERR_FILENO, 0) == 0) {
                /* the file is O_APPEND: writing goes on at its start */
                int m = fprintf(stderr, "msb-netd: the log reached %u bytes; earlier lines were dropped\n",
                                NET_LOG_MAX);
                size = m > 0 ? (uint64_t)m : 0;
        }
        int m = fprintf(stderr, "msb-netd: %s\n", line);
        size += m > 0 ? (uint64_t)m : 0;
}

static int upstream_fd = -1;
static void send_upstream(void *opaque, const uint8_t *msg, size_t n)
{
        if (upstream_fd >= 0)
                (void)send(upstream_fd, msg, n, MSG_DONTWAIT);
}

static void parse_addr(const char *what, const char *s, struct net_addr *a)
{
        if (net_addr_parse(s, a) != 1)
                die("%s: not an address: %s", what, s);
}

static unsigned parse_uint(const char *what, const char *s, unsigned max)
{
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || !*s || *end || v > max)
                die("%s: not a number up to %u: %s", what, max, s);
        return (unsigned)v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
        enum { A_PASST = 256, A_PASST_LOG, A_MODE, A_RULE, A_PORT, A_GUEST4, A_GW4, A_PREFIX4, A_GUEST6, A_GW6, A_PREFIX6,
               A_MTU, A_DNS, A_DIRECT, A_VERBOSE, A_GUEST_MAC, A_WARM };
        static const struct option lo[] = {
                {"passt", 1, 0, A_PASST},     {"passt-log", 1, 0, A_PASST_LOG},
                {"mode", 1, 0, A_MODE},       {"rule", 1, 0, A_RULE},
                {"port", 1, 0, A_PORT},       {"guest4", 1, 0, A_GUEST4},   {"gw4", 1, 0, A_GW4},
                {"prefix4", 1, 0, A_PREFIX4}, {"guest6", 1, 0, A_GUEST6},   {"gw6", 1, 0, A_GW6},
                {"prefix6", 1, 0, A_PREFIX6}, {"mtu", 1, 0, A_MTU},         {"dns", 1, 0, A_DNS},
                {"direct", 0, 0, A_DIRECT},   {"verbose", 0, 0, A_VERBOSE},
                {"guest-mac", 1, 0, A_GUEST_MAC}, {"warm", 0, 0, A_WARM}, {0},
        };
        struct net_config *c = &o->cfg;
        struct msb_error err;
        optind = 0; /* glibc: start over, for a warm relay's second argv */
        for (int ch; (ch = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
                switch (ch) {
                case A_PASST: o->passt = optarg; break;
                case A_PASST_LOG: o->passt_log = optarg; break;
                case A_MODE:
                        if (net_mode_parse(optarg, &c->mode) < 0 || c->mode == NET_MODE_NONE)
                                die("--mode: %s", optarg);
                        break;
                case A_RULE:
                        if (c->nrules == MAX_RULES)
                                die("more than %d rules", MAX_RULES);
                        if (net_rule_parse(optarg, &o->rules[c->nrules], &err) < 0)
                                die("--rule %s: %s", optarg, err.message);
                        c->nrules++;
                        break;
                case A_PORT:
                        if (c->nports == MAX_PORTS)
                                die("more than %d ports", MAX_PORTS);
                        if (net_port_parse(optarg, &o->ports[c->nports], &err) < 0)
                                die("--port %s: %s", optarg, err.message);
                        c->nports++;
                        break;
                case A_GUEST4: parse_addr("--guest4", optarg, &c->guest4); break;
                case A_GW4: parse_addr("--gw4", optarg, &c->gw4); break;
                case A_PREFIX4: o->prefix4 = parse_uint("--prefix4", optarg, 30); break;
                case A_GUEST6: parse_addr("--guest6", optarg, &c->guest6); break;
                case A_GW6: parse_addr("--gw6", optarg, &c->gw6); break;
                case A_PREFIX6: o->prefix6 = parse_uint("--prefix6", optarg, 127); break;
                case A_MTU: c->mtu = parse_uint("--mtu", optarg, 65520); break;
                case A_DNS: parse_addr("--dns", optarg, &o->dns); break;
                case A_DIRECT: o->direct = true; break;
                case A_VERBOSE: o->verbose = true; break;
                case A_WARM: o->warm = true; break;
                case A_GUEST_MAC: {
                        unsigned m[6];
                        char end;
                        if (sscanf(optarg, "%x:%x:%x:%x:%x:%x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &end) != 6)
                                die("--guest-mac: not a MAC address: %s", optarg);
                        for (int i = 0; i < 6; i++)
                                o->guest_mac[i] = (uint8_t)m[i];
                        o->have_mac = true;
                        break;
                }
                default: die("usage: see src/netd/main.c");
                }
        }
        if (!o->passt || c->guest4.family != 4 || c->gw4.family != 4 || !o->prefix4)
                die("--passt, --guest4, --gw4 and --prefix4 are required");
        if ((c->guest6.family == 6) != (c->gw6.family == 6))
                die("--guest6 and --gw6 go together");
        c->rules = o->rules;
        c->ports = o->ports;
        if (o->verbose)
                c->log = log_line;
        c->send_upstream = send_upstream;
}

/* the host's own addresses: group "host" */
static void host_addrs(struct opts *o)
{
        struct ifaddrs *ifa;
        if (getifaddrs(&ifa) < 0)
                return;
        for (struct ifaddrs *i = ifa; i && o->cfg.nhost_addrs < MAX_HOST_ADDRS; i = i->ifa_next) {
                if (!i->ifa_addr)
                        continue;
                struct net_addr *a = &o->host[o->cfg.nhost_addrs];
                if (i->ifa_addr->sa_family == AF_INET) {
                        a->family = 4;
                        memcpy(a->a, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
                } else if (i->ifa_addr->sa_family == AF_INET6) {
                        a->family = 6;
                        memcpy(a->a, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
                } else {
                        continue;
                }
                o->cfg.nhost_addrs++;
        }
        freeifaddrs(ifa);
        o->cfg.host_addrs = o->host;
}

/* The host's address changes, from a netlink socket opened before the
 * initial listing (so nothing falls between) and kept through confinement:
 * group "host" is what the host has now, not what it had at start (an IPv6
 * privacy address, a DHCP lease, a VPN). */
static int addr_events_open(void)
{
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
        if (fd < 0)
                die("%s", errno_msg(errno, "cannot follow the host's addresses (netlink)").s);
        struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR};
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                die("%s", errno_msg(errno, "cannot follow the host's addresses (netlink bind)").s);
        return fd;
}

/* After the kernel dropped events (ENOBUFS): ask for every address again.
 * What was removed meanwhile stays "host", the safe side. */
static void addr_events_resync(int fd)
{
        struct {
                struct nlmsghdr h;
                struct ifaddrmsg m;
        } req = {.h = {.nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETADDR, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
                       .nlmsg_seq = 1},
                 .m = {.ifa_family = AF_UNSPEC}};
        if (write(fd, &req, sizeof(req)) != (ssize_t)sizeof(req))
                die("%s", errno_msg(errno, "cannot list the host's addresses again (netlink)").s);
}

/* One RTM_NEWADDR/RTM_DELADDR: its address (IFA_LOCAL, else IFA_ADDRESS,
 * as getifaddrs takes them).  Every length is checked against the bytes
 * there are. */
static void addr_event(struct netd *n, const struct nlmsghdr *h)
{
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg)))
                return;
        const struct ifaddrmsg *m = NLMSG_DATA(h);
        size_t alen = m->ifa_family == AF_INET ? 4 : m->ifa_family == AF_INET6 ? 16 : 0;
        if (!alen)
                return;
        struct net_addr local = {0}, addr = {0};
        /* int, as the macros expect: RTA_NEXT's aligned step may pass the
         * end, and a negative left then ends the loop */
        int left = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
        for (const struct rtattr *a = IFA_RTA(m); RTA_OK(a, left); a = RTA_NEXT(a, left)) {
                struct net_addr *to = a->rta_type == IFA_LOCAL ? &local : a->rta_type == IFA_ADDRESS ? &addr : NULL;
                if (!to || RTA_PAYLOAD(a) != alen)
                        continue;
                to->family = alen == 4 ? 4 : 6;
                memcpy(to->a, RTA_DATA(a), alen);
        }
        const struct net_addr *got = local.family ? &local : addr.family ? &addr : NULL;
        if (got && !netd_host_addr(n, got, h->nlmsg_type == RTM_NEWADDR)) {
                char as[64];
                net_addr_format(got, as, sizeof(as));
                fprintf(stderr, "msb-netd: the host has more than %d addresses: %s is not in group host\n",
                        NET_HOST_ADDRS_MAX, as);
        }
}

static void addr_events_in(struct netd *n, int fd)
{
        static uint8_t buf[32 << 10] __attribute__((aligned(NLMSG_ALIGNTO)));
        for (;;) {
                ssize_t got = read(fd, buf, sizeof(buf));
                if (got < 0 && errno == ENOBUFS) {
                        addr_events_resync(fd);
                        continue;
                }
                if (got <= 0)
                        return;
                long left = got; /* NLMSG_OK compares it with a __u32: wider than int, no sign mix-up */
                for (const struct nlmsghdr *h = (const void *)buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left))
                        if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR)
                                addr_event(n, h);
        }
}

static void fmt(char *buf, size_t n, const struct net_addr *a)
{
        net_addr_format(a, buf, n);
}

/* passt's command line: the guest's addresses, MTU, published ports */
/* passt's build for AVX2 beside it, where this CPU has AVX2: what passt
 * itself would re-exec first thing (arch_avx2_exec, with argv[0] kept),
 * without the extra exec and dynamic load it costs every start. */
static char *passt_exe(const char *passt)
{
#ifdef __x86_64__
        size_t n = strlen(passt);
        if (__builtin_cpu_supports("avx2") && (n < 5 || strcmp(passt + n - 5, ".avx2") != 0)) {
                char *avx2 = xasprintf("%s.avx2", passt);
                if (access(avx2, X_OK) == 0)
                        return avx2;
                free(avx2);
        }
#endif
        return xstrdup(passt);
}

static char **passt_argv(const struct opts *o, int fd)
{
        const struct net_config *c = &o->cfg;
        char **v = NULL;
        char a[64];
        strv_push(&v, o->passt);
        strv_push(&v, "-f");
        strv_push(&v, "-q");
        /* its own file: without one passt logs to syslog */
        if (o->passt_log)
                strv_push_take(&v, xasprintf("--log-file=%s", o->passt_log));
        /* as root passt becomes nobody anyway; saying so keeps it quiet */
        if (geteuid() == 0)
                strv_push(&v, "--runas=65534:65534");
        strv_push_take(&v, xasprintf("--fd=%d", fd));
        fmt(a, sizeof(a), &c->guest4);
        strv_push_take(&v, xasprintf("--address=%s", a));
        strv_push_take(&v, xasprintf("--netmask=%u", o->prefix4));
        fmt(a, sizeof(a), &c->gw4);
        strv_push_take(&v, xasprintf("--gateway=%s", a));
        if (c->guest6.family == 6) {
                fmt(a, sizeof(a), &c->guest6);
                strv_push_take(&v, xasprintf("--address=%s", a));
                fmt(a, sizeof(a), &c->gw6);
                strv_push_take(&v, xasprintf("--gateway=%s", a));
        } else {
                strv_push(&v, "--ipv4-only");
        }
        strv_push_take(&v, xasprintf("--mtu=%u", c->mtu));
        strv_push(&v, "--no-dhcp-dns");
        strv_push(&v, "--no-dhcp-search");
        for (size_t i = 0; i < c->nports; i++) {
                const struct net_port *p = &c->ports[i];
                fmt(a, sizeof(a), &p->host);
                strv_push(&v, p->proto == 17 ? "-u" : "-t");
                strv_push_take(&v, xasprintf("%s/%u:%u", a, p->host_port, p->guest_port));
        }
        return v;
}

static pid_t start_passt(const struct opts *o, int fd)
{
        char **argv = passt_argv(o, 3);
        pid_t pid = fork();
        if (pid < 0)
                die("%s", errno_msg(errno, "fork").s);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
                if (dup2(fd, 3) < 0)
                        _exit(127);
                syscall(SYS_close_range, 4, ~0U, 0);
                char *exe = passt_exe(argv[0]);
                execv(exe, argv);
                fprintf(stderr, "%s\n", errno_msg(errno, "msb-netd: cannot run %s", exe).s);
                _exit(127);
        }
        strv_free(argv);
        return pid;
}

static void big_sndbuf(int fd, int bytes)
{
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) < 0)
                (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

static int accept_qemu(void)
{
        int fd;
        while ((fd = accept4(LISTEN_FD, NULL, NULL, SOCK_CLOEXEC)) < 0)
                if (errno != EINTR)
                        die("%s", errno_msg(errno, "accept").s);
        return fd;
}

#define WARM_CONFIG_MAX (256 * 1024) /* 32 volumes of PATH_MAX paths fit */
#define WARM_MAGIC "msb-netd-config 1\n"

/*
 * A warm relay (msb pool) is started before its sandbox is known: QEMU
 * connects to it at once; the policy comes later, on a second connection
 * to the same socket: WARM_MAGIC, a u32 length, then the arguments it
 * would have been started with (NUL-separated: --mode, --rule, --port...),
 * taken in on top of the first ones.  "ok\n" goes back.
 */
static void warm_config(struct opts *o)
{
        int fd;
        while ((fd = accept4(LISTEN_FD, NULL, NULL, SOCK_CLOEXEC)) < 0)
                if (errno != EINTR)
                        die("%s", errno_msg(errno, "accept").s);
        close(LISTEN_FD);
        static char buf[WARM_CONFIG_MAX + 1];
        char hdr[sizeof(WARM_MAGIC) - 1 + 4];
        uint32_t len;
        struct timeval tv = {5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (read_all(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr) || memcmp(hdr, WARM_MAGIC, sizeof(WARM_MAGIC) - 1))
                die("warm: no configuration");
        memcpy(&len, hdr + sizeof(WARM_MAGIC) - 1, 4);
        if (len > WARM_CONFIG_MAX || read_all(fd, buf, len) != (ssize_t)len)
                die("warm: a configuration of %u bytes", len);
        buf[len] = 0;
        static char *args[2 * (MAX_RULES + MAX_PORTS) + 16];
        int n = 0;
        args[n++] = "msb-netd";
        for (size_t off = 0; off < len; off += strlen(buf + off) + 1) {
                /* the sandbox's own only: its policy, ports, resolver */
                static const char *const allowed[] = {"--mode=", "--rule=", "--port=", "--dns=", "--verbose"};
                bool ok = false;
                for (size_t k = 0; !ok && k < ARRAY_SIZE(allowed); k++)
                        ok = !strncmp(buf + off, allowed[k], strlen(allowed[k])) &&
                             (allowed[k][strlen(allowed[k]) - 1] == '=' || buf[off + strlen(allowed[k])] == 0);
                if (!ok || n == (int)ARRAY_SIZE(args) - 1)
                        die("warm: '%.64s' is not a sandbox's own argument, or too many", buf + off);
                args[n++] = buf + off;
        }
        args[n] = NULL;
        o->warm = false;
        parse_args(n, args, o);
        if (o->warm || o->direct)
                die("warm: --warm and --direct are not for a configuration");
        (void)!write(fd, "ok\n", 3);
        close(fd);
}

static int connect_upstream(const struct net_addr *a)
{
        struct sockaddr_storage ss = {0};
        socklen_t len;
        if (a->family == 4) {
                struct sockaddr_in *s = (struct sockaddr_in *)&ss;
                s->sin_family = AF_INET;
                s->sin_port = htons(53);
                memcpy(&s->sin_addr, a->a, 4);
                len = sizeof(*s);
        } else if (a->family == 6) {
                struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
                s->sin6_family = AF_INET6;
                s->sin6_port = htons(53);
                memcpy(&s->sin6_addr, a->a, 16);
                len = sizeof(*s);
        } else {
                return -1;
        }
        int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0)
                die("%s", errno_msg(errno, "cannot reach the resolver").s);
        return fd;
}

/* one direction's bytes waiting to be written */
struct outq {
        uint8_t *buf;
        size_t len, off, cap;
};

static void out_append(struct outq *q, const uint8_t *p, size_t n)
{
        if (q->off && q->off == q->len)
                q->off = q->len = 0;
        if (q->len + n > q->cap) {
                if (q->off) {
                        memmove(q->buf, q->buf + q->off, q->len - q->off);
                        q->len -= q->off;
                        q->off = 0;
                }
                if (q->len + n > q->cap) {
                        q->cap = (q->len + n) * 2;
                        q->buf = realloc(q->buf, q->cap);
                        if (!q->buf)
                                abort();
                }
        }
        memcpy(q->buf + q->len, p, n);
        q->len += n;
}

static size_t out_pending(const struct outq *q)
{
        return q->len - q->off;
}

/* the engine's own frames (resets, unreachables, DNS answers) join the queue */
static void take_engine(struct outq *q, struct netd_queue *e)
{
        if (e->len > e->off)
                out_append(q, e->buf + e->off, e->len - e->off);
        e->len = e->off = 0;
}

/*
 * To passt: whole frames, one send() each, and only as many as fit in the
 * socket's free space, so none is ever left half-written.  passt (bookworm's
 * and later) reads the rest of a split frame with one recv() and loses its
 * place in the stream when that comes up short, after which it would take
 * the guest's payload bytes for frames: a policy bypass.  A frame sent in
 * one call arrives as at most two kernel buffers back to back, which its
 * one recv() takes whole.  A unix stream socket polls writable when at most
 * a quarter of its send buffer is used, so `budget` (three quarters, less
 * the buffers' own overhead) is what one round may send.  False when passt
 * is gone.
 */
static bool flush_frames(int fd, struct outq *q, bool *writable, size_t budget)
{
        size_t sent = 0;
        while (*writable && out_pending(q) >= 4) {
                const uint8_t *p = q->buf + q->off;
                size_t len = 4 + ((size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]);
                /* each kernel buffer costs its own overhead too */
                if (sent && sent + len + 2048 > budget)
                        break;
                ssize_t w = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return false;
                        /* full after all (small frames cost more than
                         * their bytes): wait for POLLOUT */
                        *writable = false;
                        return true;
                }
                q->off += (size_t)w;
                sent += len + 2048;
                if ((size_t)w < len) {
                        /* cannot happen within the budget; if it ever does,
                         * finish the frame now rather than later */
                        size_t left = len - (size_t)w;
                        while (left) {
                                struct pollfd pf = {.fd = fd, .events = POLLOUT};
                                if (poll(&pf, 1, -1) < 0 && errno != EINTR)
                                        return false;
                                w = send(fd, q->buf + q->off, left, MSG_DONTWAIT | MSG_NOSIGNAL);
                                if (w < 0 && errno != EAGAIN && errno != EINTR)
                                        return false;
                                if (w > 0) {
                                        q->off += (size_t)w;
                                        left -= (size_t)w;
                                }
                        }
                }
        }
        /* the next round waits for POLLOUT: a fresh budget */
        if (sent)
                *writable = false;
        return true;
}

/* To QEMU, whose stream reader reassembles frames itself: as much as the
 * socket takes.  False when the peer is gone. */
static bool flush(int fd, struct outq *q)
{
        while (out_pending(q)) {
                ssize_t w = send(fd, q->buf + q->off, out_pending(q), MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w < 0)
                        return errno == EAGAIN || errno == EINTR;
                q->off += (size_t)w;
        }
        return true;
}

struct side {
        int fd;
        uint8_t *rbuf;
        size_t rlen;
        const char *name;
};

/* Read what is there and hand each whole frame to the engine; passed ones
 * join out.  False at EOF. */
static bool pump(struct side *s, struct netd *n, bool from_guest, struct outq *out)
{
        ssize_t r = recv(s->fd, s->rbuf + s->rlen, RBUF + 4 + MAX_FRAME - s->rlen, MSG_DONTWAIT);
        if (r == 0)
                return false;
        if (r < 0)
                return errno == EAGAIN || errno == EINTR;
        s->rlen += (size_t)r;
        size_t off = 0;
        int64_t now = now_ms();
        while (s->rlen - off >= 4) {
                const uint8_t *p = s->rbuf + off;
                uint32_t flen = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
                if (flen > MAX_FRAME)
                        die("%s sent a frame of %u bytes: the stream is broken", s->name, flen);
                if (s->rlen - off - 4 < flen)
                        break;
                enum netd_verdict v = from_guest ? netd_from_guest(n, p + 4, flen, now)
                                                 : netd_from_stack(n, p + 4, flen, now);
                if (v == NETD_PASS)
                        out_append(out, p, 4 + flen);
                off += 4 + flen;
        }
        memmove(s->rbuf, s->rbuf + off, s->rlen - off);
        s->rlen -= off;
        return true;
}

/* Answers from the resolver.  An ICMP error (no resolver there) is read
 * away too: left pending, it would keep poll() returning at once. */
static void upstream_in(struct netd *n)
{
        uint8_t buf[65536];
        for (int i = 0; i < 256; i++) {
                ssize_t r = recv(upstream_fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (r < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return;
                        continue; /* ECONNREFUSED and the like: consumed, go on */
                }
                netd_from_upstream(n, buf, (size_t)r, now_ms());
        }
}

/* An ARP request from the guest's address for the gateway: passt learns
 * the guest's MAC from the frames it gets, and until the guest sends one
 * (an IPv4-only guest with nothing to say sends none) it could not deliver
 * a connection to a published port.  Made here, not by the guest. */
static void announce_guest(struct outq *to_stack, const struct opts *o)
{
        uint8_t f[4 + 42] = {0, 0, 0, 42};
        uint8_t *e = f + 4, *a = e + 14;
        memset(e, 0xff, 6);
        memcpy(e + 6, o->guest_mac, 6);
        e[12] = 0x08, e[13] = 0x06;
        a[1] = 1;               /* Ethernet */
        a[2] = 0x08, a[3] = 0;  /* IPv4 */
        a[4] = 6, a[5] = 4;
        a[7] = 1;               /* request */
        memcpy(a + 8, o->guest_mac, 6);
        memcpy(a + 14, o->cfg.guest4.a, 4);
        memcpy(a + 24, o->cfg.gw4.a, 4);
        out_append(to_stack, f, sizeof(f));
}

static int relay(struct netd *n, int qemu, int stack, int addr_events, size_t budget, const struct opts *o)
{
        bool stack_writable = true;
        struct side g = {.fd = qemu, .rbuf = xcalloc(1, RBUF + 4 + MAX_FRAME), .name = "QEMU"};
        struct side h = {.fd = stack, .rbuf = xcalloc(1, RBUF + 4 + MAX_FRAME), .name = "passt"};
        struct outq to_guest = {0}, to_stack = {0};
        if (o->have_mac)
                announce_guest(&to_stack, o);
        int64_t next_tick = netd_tick(n, now_ms());
        for (;;) {
                struct pollfd p[4] = {
                        {.fd = qemu, .events = (out_pending(&to_stack) < OUT_HIGH ? POLLIN : 0) |
                                               (out_pending(&to_guest) ? POLLOUT : 0)},
                        {.fd = stack, .events = (out_pending(&to_guest) < OUT_HIGH ? POLLIN : 0) |
                                                (out_pending(&to_stack) && !stack_writable ? POLLOUT : 0)},
                        {.fd = upstream_fd, .events = POLLIN},
                        {.fd = addr_events, .events = POLLIN},
                };
                int timeout = -1;
                if (next_tick >= 0) {
                        int64_t d = next_tick - now_ms();
                        timeout = d < 0 ? 0 : d > 60000 ? 60000 : (int)d;
                }
                /* poll skips a negative fd: no resolver */
                if (poll(p, ARRAY_SIZE(p), timeout) < 0 && errno != EINTR)
                        die("%s", errno_msg(errno, "poll").s);
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        if (!pump(&g, n, true, &to_stack))
                                return 0; /* QEMU is gone: the VM stopped */
                }
                if (p[1].revents & POLLOUT)
                        stack_writable = true;
                if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        if (!pump(&h, n, false, &to_guest))
                                die("the network stack (passt) exited");
                }
                if (upstream_fd >= 0 && (p[2].revents & (POLLIN | POLLERR)))
                        upstream_in(n);
                if (p[3].revents & (POLLIN | POLLERR))
                        addr_events_in(n, addr_events);
                next_tick = netd_tick(n, now_ms());
                /* the engine's replies wait in its own bounded queue (and
                 * are dropped there) while a side does not read */
                if (out_pending(&to_guest) < OUT_HIGH)
                        take_engine(&to_guest, netd_to_guest(n));
                if (out_pending(&to_stack) < OUT_HIGH)
                        take_engine(&to_stack, netd_to_stack(n));
                if (!flush(qemu, &to_guest))
                        return 0;
                if (!flush_frames(stack, &to_stack, &stack_writable, budget))
                        die("the network stack (passt) exited");
        }
}

int main(int argc, char **argv)
{
        signal(SIGPIPE, SIG_IGN);
        struct opts *o = xcalloc(1, sizeof(*o));
        o->cfg.mode = NET_MODE_PUBLIC;
        o->cfg.mtu = 65520;
        parse_args(argc, argv, o);
        int warm_qemu = -1;
        if (o->warm) {
                /* QEMU first, the sandbox's policy when it has one */
                warm_qemu = accept_qemu();
                warm_config(o);
        } else if (o->direct) {
                /* the benchmark's baseline: QEMU talks to passt itself */
                int q = accept_qemu();
                close(LISTEN_FD);
                char **pv = passt_argv(o, q);
                fcntl(q, F_SETFD, 0);
                char *exe = passt_exe(pv[0]);
                execv(exe, pv);
                die("%s", errno_msg(errno, "cannot run %s", exe).s);
        }
        int addr_events = addr_events_open();
        host_addrs(o);
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                die("%s", errno_msg(errno, "socketpair").s);
        /* Large send buffers both ways: a round carries many frames to
         * passt, and passt (which drops frames for the guest when its
         * socket is full, leaving TCP to retransmit) can write ahead while
         * the guest catches up.  Root may go past net.core.wmem_max. */
        int want = 4 << 20, sndbuf = 0;
        socklen_t sl = sizeof(sndbuf);
        big_sndbuf(sp[0], want);
        big_sndbuf(sp[1], want);
        if (getsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) < 0 || sndbuf < (1 << 16))
                sndbuf = 1 << 16;
        size_t budget = (size_t)sndbuf / 4 * 3 - (size_t)sndbuf / 8;
        start_passt(o, sp[1]);
        close(sp[1]);
        if (o->dns.family)
                upstream_fd = connect_upstream(&o->dns);
        int qemu = warm_qemu;
        if (qemu < 0) {
                qemu = accept_qemu();
                close(LISTEN_FD);
        }
        big_sndbuf(qemu, want);
        struct msb_error err = {0};
        const char *seccomp_log = getenv("MSB_FSD_SECCOMP_LOG");
        jail_seccomp_log(seccomp_log && *seccomp_log == '1');
        if (jail_enter_netd(&err) < 0)
                die("cannot confine itself: %s", err.message);
        struct netd *n = netd_new(&o->cfg);
        if (!n)
                die("out of memory");
        if (o->verbose) {
                char a[64];
                net_addr_format(&o->dns, a, sizeof(a));
                fprintf(stderr, "msb-netd: mode %s, %zu rules, %zu published ports, resolver %s\n",
                        net_mode_name(o->cfg.mode), o->cfg.nrules, o->cfg.nports, o->dns.family ? a : "none");
        }
        return relay(n, qemu, sp[0], addr_events, budget, o);
}
