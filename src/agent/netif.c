/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest's network, from SETUP: lo always up; with MSB_SETUP_NET, eth0
 * gets the static addresses, MTU and default routes msb chose (the guest
 * needs no DHCP client), and the new root gets /etc/resolv.conf naming the
 * gateway (msb-netd answers DNS there) and /etc/hosts with the hostname.
 * Classic ioctls: a handful of calls, no netlink parser in PID 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/util.h"

/* linux/ipv6.h's, which clashes with netinet/in.h */
struct in6_ifreq_ {
        struct in6_addr ifr6_addr;
        uint32_t ifr6_prefixlen;
        int ifr6_ifindex;
};

/* The interfaces are configured in a child of agentd's (net_start), while
 * agentd reads ahead and mounts the volumes: a failure there goes up a
 * pipe, for net_finish to report. */
static int err_pipe = -1;

static void nfail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void nfail(int err, const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (err_pipe < 0)
                fail("network", err, "%s", msg);
        char line[600];
        int n = snprintf(line, sizeof(line), "%d %s", err, msg);
        (void)!write(err_pipe, line, (size_t)n);
        _exit(1);
}

static void link_up(int s, const char *name, unsigned mtu)
{
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        if (mtu) {
                ifr.ifr_mtu = (int)mtu;
                if (ioctl(s, SIOCSIFMTU, &ifr) < 0)
                        nfail(errno, "cannot set %s's MTU to %u", name, mtu);
        }
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                nfail(errno, "no network interface %s in the guest", name);
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
                nfail(errno, "cannot bring %s up", name);
}

static void set_sysctl(const char *path, const char *v)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0)
                (void)!write(fd, v, strlen(v));
}

static bool all_zero(const uint8_t *a, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (a[i])
                        return false;
        return true;
}

static void ipv4_route(int s, const uint8_t dst[4], uint32_t prefix, const uint8_t gw[4], const char *what)
{
        struct rtentry rt = {0};
        char dev[] = "eth0";
        struct sockaddr_in *d = (struct sockaddr_in *)&rt.rt_dst, *m = (struct sockaddr_in *)&rt.rt_genmask,
                           *g = (struct sockaddr_in *)&rt.rt_gateway;
        d->sin_family = m->sin_family = g->sin_family = AF_INET;
        if (dst)
                memcpy(&d->sin_addr, dst, 4);
        m->sin_addr.s_addr = prefix ? htonl(~0u << (32 - prefix)) : 0;
        rt.rt_flags = RTF_UP | (prefix == 32 ? RTF_HOST : 0);
        if (gw) {
                memcpy(&g->sin_addr, gw, 4);
                rt.rt_flags |= RTF_GATEWAY;
        }
        rt.rt_dev = dev;
        if (ioctl(s, SIOCADDRT, &rt) < 0)
                nfail(errno, "cannot add the IPv4 %s", what);
}

static void ipv4_setup(int s, const struct msb_net_spec *n)
{
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "eth0");
        struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, n->addr4, 4);
        if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
                nfail(errno, "cannot set eth0's IPv4 address");
        uint32_t mask = n->prefix4 == 32 ? ~0u : htonl(~0u << (32 - n->prefix4));
        sin = (struct sockaddr_in *)&ifr.ifr_netmask;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = mask;
        if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0)
                nfail(errno, "cannot set eth0's IPv4 netmask");
        if (all_zero(n->gw4, 4))
                return;
        uint32_t a, g;
        memcpy(&a, n->addr4, 4);
        memcpy(&g, n->gw4, 4);
        /* a gateway off the prefix (Calico's /32 and 169.254.1.1) is
         * reached on the link */
        if ((a & mask) != (g & mask))
                ipv4_route(s, n->gw4, 32, NULL, "route to the gateway");
        ipv4_route(s, NULL, 0, n->gw4, "default route");
}

static void ipv6_setup(const struct msb_net_spec *n)
{
        _cleanup_close_ int s6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s6 < 0)
                nfail(errno, "the guest kernel has no IPv6");
        int idx = (int)if_nametoindex("eth0");
        struct in6_ifreq_ r = {.ifr6_prefixlen = n->prefix6, .ifr6_ifindex = idx};
        memcpy(&r.ifr6_addr, n->addr6, 16);
        if (ioctl(s6, SIOCSIFADDR, &r) < 0)
                nfail(errno, "cannot set eth0's IPv6 address");
        if (all_zero(n->gw6, 16))
                return;
        /* on the link whatever its address (often fe80::1) */
        struct in6_rtmsg rt = {.rtmsg_flags = RTF_UP | RTF_GATEWAY, .rtmsg_metric = 1, .rtmsg_ifindex = idx};
        memcpy(&rt.rtmsg_gateway, n->gw6, 16);
        if (ioctl(s6, SIOCADDRT, &rt) < 0)
                nfail(errno, "cannot add the IPv6 default route");
}

/* Replace PATH under the new root with a regular file (whatever was there:
 * the image's file, a symlink to a resolver's stub, nothing).  It lands in
 * the sandbox's writable layer; the image itself is never written. */
static void put_etc_file(const char *name, const char *text)
{
        mkdir(NEWROOT "/etc", 0755);
        _cleanup_free_ char *p = xasprintf(NEWROOT "/etc/%s", name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                fail("network", EISDIR, "the image has a directory at /etc/%s", name);
        (void)unlink(p);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
                fail("network", errno, "cannot write /etc/%s in the guest", name);
}

static void etc_files(const struct msb_setup_msg *su)
{
        const struct msb_net_spec *n = &su->net;
        bool net = su->flags & MSB_SETUP_NET;
        const char *host = su->hostname[0] ? su->hostname : "localhost";
        char a4[INET_ADDRSTRLEN] = "127.0.1.1", a6[INET6_ADDRSTRLEN] = "", g4[INET_ADDRSTRLEN], g6[INET6_ADDRSTRLEN];
        if (net) {
                inet_ntop(AF_INET, n->addr4, a4, sizeof(a4));
                inet_ntop(AF_INET, n->gw4, g4, sizeof(g4));
                if (n->prefix6) {
                        inet_ntop(AF_INET6, n->addr6, a6, sizeof(a6));
                        inet_ntop(AF_INET6, n->gw6, g6, sizeof(g6));
                }
        }
        _cleanup_free_ char *hosts =
                xasprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n%s%s%s%s",
                          a4, host, a6[0] ? a6 : "", a6[0] ? "\t" : "", a6[0] ? host : "", a6[0] ? "\n" : "");
        put_etc_file("hosts", hosts);
        if (net) {
                _cleanup_free_ char *rc = xasprintf("# msb: the sandbox's resolver, which applies its network policy\n"
                                                    "nameserver %s\n%s%s%s",
                                                    g4, a6[0] ? "nameserver " : "", a6[0] ? g6 : "", a6[0] ? "\n" : "");
                put_etc_file("resolv.conf", rc);
        }
}

static void configure(const struct msb_setup_msg *su)
{
        _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                nfail(errno, "the guest kernel has no IPv4");
        link_up(s, "lo", 0);
        if (su->flags & MSB_SETUP_NET) {
                const struct msb_net_spec *n = &su->net;
                /* static addresses: no duplicate detection to wait for, no
                 * router advertisements to add a second address or route */
                set_sysctl("/proc/sys/net/ipv6/conf/eth0/accept_dad", "0");
                set_sysctl("/proc/sys/net/ipv6/conf/eth0/accept_ra", "0");
                set_sysctl("/proc/sys/net/ipv6/conf/eth0/autoconf", "0");
                if (!n->prefix6)
                        set_sysctl("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "1");
                link_up(s, "eth0", n->mtu);
                ipv4_setup(s, n);
                if (n->prefix6)
                        ipv6_setup(n);
        }
}

static pid_t child = -1;
static int result = -1;

void net_start(const struct msb_setup_msg *su)
{
        /* /etc/hosts and resolv.conf first, before the volumes are mounted
         * (a volume at /etc, read-only even, then hides them); an OCI
         * bundle's root is the container's own (its runtime's
         * caller bind-mounts these files, as for runc): not ours to write */
        if (!(su->flags & MSB_SETUP_ROOT_RW))
                etc_files(su);
        int p[2];
        if (!(su->flags & MSB_SETUP_NET) || pipe2(p, O_CLOEXEC) < 0 || (child = fork()) < 0) {
                /* nothing to overlap (lo alone), or no child: here and now */
                child = -1;
                configure(su);
                return;
        }
        if (child == 0) {
                close(p[0]);
                err_pipe = p[1];
                configure(su);
                _exit(0);
        }
        close(p[1]);
        result = p[0];
}

void net_finish(void)
{
        if (child > 0) {
                char line[600];
                ssize_t n = read_all(result, line, sizeof(line) - 1);
                close(result);
                int ws = 0;
                while (waitpid(child, &ws, 0) < 0 && errno == EINTR) {
                }
                child = -1;
                if (n > 0) {
                        line[n] = '\0';
                        char *msg = strchr(line, ' ');
                        fail("network", atoi(line), "%s", msg ? msg + 1 : line);
                }
                if (!WIFEXITED(ws) || WEXITSTATUS(ws))
                        fail("network", 0, "the interfaces' set-up ended with status %d", ws);
        }
        if (debug)
                logmsg("network ready");
}
