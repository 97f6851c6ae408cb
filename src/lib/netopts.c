/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A sandbox's network options, checked when given: --net, --net-rule, -p
 * (the host port free, not privileged, not published twice) and a
 * container's --net-tap.  The network they describe is started by
 * vmnet.c; the policy itself is enforced by msb-netd (src/netd/main.c,
 * src/net/); docs/network.md.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "netopts.h"

#define MAX_NET_RULES 256
#define MAX_NET_PORTS 64

int msb_run_opts_set_net(struct msb_run_opts *o, const char *mode, struct msb_error *err)
{
        enum net_mode m;
        if (!mode || net_mode_parse(mode, &m) < 0)
                return msb_err(err, EINVAL, "--net '%s': unknown mode; use public, private, host, all or none",
                               mode ? mode : "");
        free(o->net_mode);
        o->net_mode = xstrdup(net_mode_name(m));
        return 0;
}

int msb_run_opts_add_net_rule(struct msb_run_opts *o, const char *rule, struct msb_error *err)
{
        struct net_rule r;
        if (strv_len(o->net_rules) >= MAX_NET_RULES)
                return msb_err(err, E2BIG, "--net-rule '%s': at most %d rules", rule, MAX_NET_RULES);
        if (net_rule_parse(rule, &r, err) < 0)
                return msb_err_wrap(err, -EINVAL, "--net-rule '%s'", rule);
        strv_push(&o->net_rules, rule);
        return 0;
}

static unsigned unprivileged_port_start(void)
{
        _cleanup_free_ char *s = NULL;
        if (read_file_at(AT_FDCWD, "/proc/sys/net/ipv4/ip_unprivileged_port_start", 64, &s, NULL) < 0)
                return 1024;
        return (unsigned)strtoul(s, NULL, 10);
}

/* Is the host port free now?  Bound and closed at once: passt binds it
 * for real when the sandbox starts (and the check is repeated there). */
int net_port_free(const struct net_port *p, const char *spec, struct msb_error *err)
{
        struct sockaddr_storage ss = {0};
        socklen_t len;
        if (p->host.family == 4) {
                struct sockaddr_in *s = (struct sockaddr_in *)&ss;
                s->sin_family = AF_INET;
                s->sin_port = htons(p->host_port);
                memcpy(&s->sin_addr, p->host.a, 4);
                len = sizeof(*s);
        } else {
                struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
                s->sin6_family = AF_INET6;
                s->sin6_port = htons(p->host_port);
                memcpy(&s->sin6_addr, p->host.a, 16);
                len = sizeof(*s);
        }
        _cleanup_close_ int fd =
                socket(ss.ss_family, (p->proto == 17 ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd >= 0 && p->proto == 6)
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0) {
                int e = errno;
                char a[64];
                net_addr_format(&p->host, a, sizeof(a));
                if (e == EADDRINUSE)
                        return msb_err(err, e, "-p %s: host port %s:%u/%s is already in use", spec, a, p->host_port,
                                       p->proto == 17 ? "udp" : "tcp");
                if (e == EADDRNOTAVAIL)
                        return msb_err(err, e, "-p %s: %s is not an address of this host", spec, a);
                return msb_err_errno(err, e, "-p %s: cannot bind %s:%u", spec, a, p->host_port);
        }
        return 0;
}

static bool unspecified(const struct net_addr *a)
{
        static const uint8_t zero[16];
        return !memcmp(a->a, zero, a->family == 4 ? 4 : 16);
}

/* Would two binds of one port clash?  The same address, or either one all
 * addresses (0.0.0.0 and :: also overlap each other on Linux). */
static bool binds_overlap(const struct net_addr *x, const struct net_addr *y)
{
        return net_addr_eq(x, y) || unspecified(x) || unspecified(y);
}

int msb_run_opts_add_port(struct msb_run_opts *o, const char *spec, struct msb_error *err)
{
        struct net_port p;
        if (strv_len(o->net_ports) >= MAX_NET_PORTS)
                return msb_err(err, E2BIG, "-p '%s': at most %d published ports", spec, MAX_NET_PORTS);
        if (net_port_parse(spec, &p, err) < 0)
                return msb_err_wrap(err, -EINVAL, "-p '%s'", spec);
        /* passt drops root: it binds as an unprivileged user */
        unsigned lo = unprivileged_port_start();
        if (p.host_port < lo)
                return msb_err(err, EACCES,
                               "-p '%s': host port %u is privileged (below net.ipv4.ip_unprivileged_port_start, "
                               "%u); publish on a port from %u up",
                               spec, p.host_port, lo, lo);
        for (char **s = o->net_ports; s && *s; s++) {
                struct net_port q;
                if (net_port_parse(*s, &q, NULL) == 0 && q.proto == p.proto &&
                    q.host_port == p.host_port && binds_overlap(&q.host, &p.host))
                        return msb_err(err, EINVAL, "-p '%s': host port %u/%s is already published by -p '%s'",
                                       spec, p.host_port, p.proto == 17 ? "udp" : "tcp", *s);
        }
        int r = net_port_free(&p, spec, err);
        if (r < 0)
                return r;
        strv_push(&o->net_ports, spec);
        return 0;
}

static int cidr_parse(const char *s, int family, uint8_t *addr, uint32_t *prefix)
{
        char a[INET6_ADDRSTRLEN];
        const char *slash = strchr(s, '/');
        unsigned max = family == AF_INET ? 32 : 128;
        if (!slash || (size_t)(slash - s) >= sizeof(a))
                return -1;
        memcpy(a, s, (size_t)(slash - s));
        a[slash - s] = 0;
        char *end;
        unsigned long p = strtoul(slash + 1, &end, 10);
        if (end == slash + 1 || *end || p < 1 || p > max || inet_pton(family, a, addr) != 1)
                return -1;
        *prefix = (uint32_t)p;
        return 0;
}

int net_tap_parse(const char *spec, struct net_tap *t, struct msb_error *err)
{
        memset(t, 0, sizeof(*t));
        t->spec.mtu = 1500;
        _cleanup_free_ char *dup = xstrdup(spec);
        char *save = NULL;
        for (char *kv = strtok_r(dup, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
                char *v = strchr(kv, '=');
                if (!v)
                        return msb_err(err, EINVAL, "'%s': expected key=value", kv);
                *v++ = 0;
                unsigned b[6];
                char *end;
                int bad = 0;
                if (!strcmp(kv, "ifname"))
                        bad = !*v || strlen(v) >= IFNAMSIZ || strchr(v, '/') ||
                              (snprintf(t->ifname, sizeof(t->ifname), "%s", v), 0);
                else if (!strcmp(kv, "mac"))
                        bad = strlen(v) != 17 ||
                              sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6 ||
                              (b[0] & 1) || (snprintf(t->mac, sizeof(t->mac), "%s", v), 0);
                else if (!strcmp(kv, "ip"))
                        bad = cidr_parse(v, AF_INET, t->spec.addr4, &t->spec.prefix4) < 0;
                else if (!strcmp(kv, "gw"))
                        bad = inet_pton(AF_INET, v, t->spec.gw4) != 1;
                else if (!strcmp(kv, "ip6"))
                        bad = cidr_parse(v, AF_INET6, t->spec.addr6, &t->spec.prefix6) < 0;
                else if (!strcmp(kv, "gw6"))
                        bad = inet_pton(AF_INET6, v, t->spec.gw6) != 1;
                else if (!strcmp(kv, "mtu")) {
                        unsigned long m = strtoul(v, &end, 10);
                        bad = end == v || *end || m < 68 || m > 65520;
                        t->spec.mtu = (uint32_t)m;
                } else
                        return msb_err(err, EINVAL, "unknown key '%s'", kv);
                if (bad)
                        return msb_err(err, EINVAL, "bad %s '%s'", kv, v);
        }
        if (!t->ifname[0] || !t->mac[0] || !t->spec.prefix4)
                return msb_err(err, EINVAL, "ifname, mac and ip are required");
        if (!msb_net_spec_ok(&t->spec))
                return msb_err(err, EINVAL, "IPv6 needs an MTU of at least 1280");
        return 0;
}

int msb_run_opts_set_net_tap(struct msb_run_opts *o, const char *spec, struct msb_error *err)
{
        struct net_tap t;
        if (net_tap_parse(spec, &t, err) < 0)
                return msb_err_wrap(err, -EINVAL, "network tap '%s'", spec);
        free(o->net_tap);
        o->net_tap = xstrdup(spec);
        return 0;
}

enum net_mode net_opts_mode(const struct msb_run_opts *o)
{
        enum net_mode m = NET_MODE_PUBLIC;
        if (o->net_mode)
                net_mode_parse(o->net_mode, &m);
        return m;
}

int net_opts_check(const struct msb_run_opts *o, struct msb_error *err)
{
        if (o->net_tap && (o->net_ports || o->net_rules))
                return msb_err(err, EINVAL, "%s: a container's network namespace has its owner's ports and policy",
                               o->net_ports ? "-p" : "--net-rule");
        if (net_opts_mode(o) != NET_MODE_NONE || o->net_tap)
                return 0;
        if (o->net_ports)
                return msb_err(err, EINVAL, "-p '%s': --net none has no network to publish a port from",
                               o->net_ports[0]);
        if (o->net_rules)
                return msb_err(err, EINVAL, "--net-rule '%s': --net none has no network for rules to apply to",
                               o->net_rules[0]);
        return 0;
}

int msb_run_opts_check(const struct msb_run_opts *o, struct msb_error *err)
{
        return net_opts_check(o, err);
}
