/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network modes, policy rules, published ports, addresses and address
 * groups: the parts of the policy a user writes, and the group table every
 * decision of the engine goes through.  Pure code: the CLI parses with it,
 * msb-netd evaluates with it.  See docs/network.md, "Policy and DNS".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "net/net.h"

static const char *const mode_names[] = {
        [NET_MODE_NONE] = "none", [NET_MODE_PUBLIC] = "public", [NET_MODE_PRIVATE] = "private",
        [NET_MODE_HOST] = "host", [NET_MODE_ALL] = "all",
};

int net_mode_parse(const char *s, enum net_mode *m)
{
        for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
                if (strcmp(s, mode_names[i]) == 0) {
                        *m = (enum net_mode)i;
                        return 0;
                }
        return -EINVAL;
}

const char *net_mode_name(enum net_mode m)
{
        if ((unsigned)m < sizeof(mode_names) / sizeof(mode_names[0]))
                return mode_names[m];
        return "?";
}

static const char *const group_names[] = {
        [NET_G_PUBLIC] = "public",       [NET_G_PRIVATE] = "private",     [NET_G_LOOPBACK] = "loopback",
        [NET_G_LINKLOCAL] = "link-local", [NET_G_META] = "meta",          [NET_G_MULTICAST] = "multicast",
        [NET_G_HOST] = "host",           [NET_G_DNS] = "dns",             [NET_G_ANY] = "any",
};

const char *net_group_name(enum net_group g)
{
        if ((unsigned)g < sizeof(group_names) / sizeof(group_names[0]) && group_names[g])
                return group_names[g];
        return "?";
}

/* ---- addresses ---- */

int net_addr_parse(const char *s, struct net_addr *a)
{
        struct net_addr t = {0};
        if (inet_pton(AF_INET, s, t.a) == 1) {
                t.family = 4;
        } else if (inet_pton(AF_INET6, s, t.a) == 1) {
                t.family = 6;
        } else {
                return 0;
        }
        *a = t;
        return 1;
}

void net_addr_format(const struct net_addr *a, char *out, size_t outsz)
{
        char buf[INET6_ADDRSTRLEN];
        if (a->family == 4)
                inet_ntop(AF_INET, a->a, buf, sizeof(buf));
        else if (a->family == 6)
                inet_ntop(AF_INET6, a->a, buf, sizeof(buf));
        else
                snprintf(buf, sizeof(buf), "(none)");
        snprintf(out, outsz, "%s", buf);
}

bool net_addr_eq(const struct net_addr *x, const struct net_addr *y)
{
        if (x->family != y->family || x->family == 0)
                return false;
        return memcmp(x->a, y->a, x->family == 4 ? 4 : 16) == 0;
}

bool net_prefix_has(const struct net_addr *net, unsigned prefix, const struct net_addr *a)
{
        if (net->family != a->family || (a->family != 4 && a->family != 6))
                return false;
        unsigned bits = a->family == 4 ? 32 : 128;
        if (prefix > bits)
                return false;
        unsigned full = prefix / 8, rest = prefix % 8;
        if (memcmp(net->a, a->a, full) != 0)
                return false;
        if (rest) {
                uint8_t mask = (uint8_t)(0xff << (8 - rest));
                if ((net->a[full] & mask) != (a->a[full] & mask))
                        return false;
        }
        return true;
}

/* ---- groups ---- */

struct pfx {
        uint8_t family;
        uint8_t a[16];
        unsigned len;
};
#define V4(a, b, c, d, l) { 4, { a, b, c, d }, l }
#define V6(l, ...) { 6, { __VA_ARGS__ }, l }

static const struct pfx loopback_pfx[] = { V4(127, 0, 0, 0, 8), V6(128, [15] = 1) };
/* RFC 1918, RFC 6598 (carrier-grade NAT) and RFC 4193 (unique local) */
static const struct pfx private_pfx[] = {
        V4(10, 0, 0, 0, 8), V4(172, 16, 0, 0, 12), V4(192, 168, 0, 0, 16), V4(100, 64, 0, 0, 10),
        V6(7, 0xfc),
};
static const struct pfx linklocal_pfx[] = { V4(169, 254, 0, 0, 16), V6(10, 0xfe, 0x80) };
/* cloud instance metadata: AWS/GCP/Azure/OpenStack, Alibaba, Azure's
 * WireServer (a public address, never public here), AWS over IPv6 */
static const struct pfx meta_pfx[] = {
        V4(169, 254, 169, 254, 32), V4(100, 100, 100, 200, 32), V4(168, 63, 129, 16, 32),
        V6(128, 0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54),
};
static const struct pfx multicast_pfx[] = { V4(224, 0, 0, 0, 4), V4(255, 255, 255, 255, 32), V6(8, 0xff) };
/* IPv4 that is never public: "this network" and the reserved 240/4 */
static const struct pfx reserved4_pfx[] = { V4(0, 0, 0, 0, 8), V4(240, 0, 0, 0, 4) };
/* IPv6 global unicast is 2000::/3; everything else (unspecified, v4-mapped,
 * v4-compatible, reserved) is not public.  6to4 and Teredo are left out too:
 * they embed an IPv4 address the host would route to, private or not. */
static const struct pfx global6_pfx[] = { V6(3, 0x20) };
static const struct pfx tunnel6_pfx[] = { V6(16, 0x20, 0x02), V6(32, 0x20, 0x01, 0x00, 0x00) };

static bool in_pfx(const struct pfx *p, size_t n, const struct net_addr *a)
{
        for (size_t i = 0; i < n; i++) {
                struct net_addr net = { .family = p[i].family };
                memcpy(net.a, p[i].a, sizeof(net.a));
                if (net_prefix_has(&net, p[i].len, a))
                        return true;
        }
        return false;
}
#define IN(tab, a) in_pfx(tab, sizeof(tab) / sizeof(tab[0]), a)

static bool is_host(const struct net_config *c, const struct net_addr *a)
{
        if (!c)
                return false;
        if (net_addr_eq(a, &c->gw4) || net_addr_eq(a, &c->gw6))
                return true;
        for (size_t i = 0; i < c->nhost_addrs; i++)
                if (net_addr_eq(a, &c->host_addrs[i]))
                        return true;
        return false;
}

/* Does some prefix of tab, as long as bits or longer, lie inside a/bits? */
static bool pfx_inside(const struct pfx *p, size_t n, const struct net_addr *a, unsigned bits)
{
        for (size_t i = 0; i < n; i++) {
                struct net_addr net = { .family = p[i].family };
                memcpy(net.a, p[i].a, sizeof(net.a));
                if (p[i].len >= bits && net_prefix_has(a, bits, &net))
                        return true;
        }
        return false;
}
#define INSIDE(tab, a, bits) pfx_inside(tab, sizeof(tab) / sizeof(tab[0]), a, bits)

bool net_prefix_all_public(const struct net_config *c, const struct net_addr *a, unsigned bits)
{
        /* a range holding the whole prefix holds its first address; one
         * inside the prefix is found by INSIDE (CIDR ranges nest or miss) */
        if (!net_group_has(c, NET_G_PUBLIC, a) || (a->family == 6 && bits < 3))
                return false;
        if (INSIDE(loopback_pfx, a, bits) || INSIDE(private_pfx, a, bits) || INSIDE(linklocal_pfx, a, bits) ||
            INSIDE(meta_pfx, a, bits) || INSIDE(multicast_pfx, a, bits) || INSIDE(reserved4_pfx, a, bits) ||
            INSIDE(tunnel6_pfx, a, bits))
                return false;
        if (net_prefix_has(a, bits, &c->gw4) || net_prefix_has(a, bits, &c->gw6))
                return false;
        for (size_t i = 0; i < c->nhost_addrs; i++)
                if (net_prefix_has(a, bits, &c->host_addrs[i]))
                        return false;
        return true;
}

/* "this network" (0/8), unspecified, v4-mapped (::ffff:0:0/96),
 * v4-compatible (::/96 but ::1) and NAT64 (64:ff9b::/96, 64:ff9b:1::/48) */
static const struct pfx bogus_pfx[] = {
        V4(0, 0, 0, 0, 8), V6(96, [10] = 0xff, [11] = 0xff), V6(96), V6(96, 0x00, 0x64, 0xff, 0x9b),
        V6(48, 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01),
};

bool net_addr_bogus(const struct net_addr *a)
{
        if (a->family == 6 && IN(loopback_pfx, a))
                return false;
        return IN(bogus_pfx, a);
}

bool net_addr_special(const struct net_config *c, const struct net_addr *a)
{
        return is_host(c, a) || IN(loopback_pfx, a) || IN(linklocal_pfx, a) || IN(multicast_pfx, a) ||
               net_addr_bogus(a);
}

bool net_group_has(const struct net_config *c, enum net_group g, const struct net_addr *a)
{
        if (a->family != 4 && a->family != 6)
                return false;
        switch (g) {
        case NET_G_ANY:
                return true;
        case NET_G_DNS:
                /* a property of a flow (the gateway's port 53), not of an address */
                return false;
        case NET_G_LOOPBACK:
                return IN(loopback_pfx, a);
        case NET_G_PRIVATE:
                /* the gateway (10.0.2.2) and the host's own LAN addresses
                 * reach the host, which only mode host and group host grant */
                return !is_host(c, a) && IN(private_pfx, a);
        case NET_G_LINKLOCAL:
                return IN(linklocal_pfx, a);
        case NET_G_META:
                return IN(meta_pfx, a);
        case NET_G_MULTICAST:
                return IN(multicast_pfx, a);
        case NET_G_HOST:
                return is_host(c, a);
        case NET_G_PUBLIC:
                /* host first: the host's own addresses may look public */
                if (is_host(c, a) || IN(loopback_pfx, a) || IN(private_pfx, a) || IN(linklocal_pfx, a) ||
                    IN(multicast_pfx, a) || IN(meta_pfx, a))
                        return false;
                if (a->family == 4)
                        return !IN(reserved4_pfx, a);
                return IN(global6_pfx, a) && !IN(tunnel6_pfx, a);
        }
        return false;
}

/* ---- rules ---- */

/* A hostname: labels of 1-63 [a-z0-9-_], total <= 253 (after the optional
 * trailing dot is dropped).  Writes the lowercase form to out. */
static bool hostname_norm(const char *s, char *out, size_t outsz)
{
        size_t n = strlen(s);
        if (n && s[n - 1] == '.')
                n--;
        if (n == 0 || n > NET_NAME_MAX || n >= outsz)
                return false;
        size_t label = 0;
        for (size_t i = 0; i < n; i++) {
                char ch = s[i];
                if (ch >= 'A' && ch <= 'Z')
                        ch = (char)(ch - 'A' + 'a');
                if (ch == '.') {
                        if (label == 0)
                                return false;
                        label = 0;
                } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
                        if (++label > 63)
                                return false;
                } else {
                        return false;
                }
                out[i] = ch;
        }
        out[n] = '\0';
        return label > 0;
}

/* A rule or port mapping that does not parse: the reason in err (EINVAL),
 * and -1, what net_rule_parse and net_port_parse return for it */
#define fail(err, ...) (msb_err(err, EINVAL, __VA_ARGS__), -1)

/* "N" in 1..65535, nothing else (no sign, no spaces, no leading "+") */
static bool port_num(const char *s, size_t n, uint16_t *out)
{
        if (n == 0 || n > 5)
                return false;
        unsigned v = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (unsigned)(s[i] - '0');
        }
        if (v < 1 || v > 65535)
                return false;
        *out = (uint16_t)v;
        return true;
}

static int parse_ports(const char *s, struct net_rule *r, struct msb_error *err)
{
        const char *dash = strchr(s, '-');
        if (!dash) {
                if (!port_num(s, strlen(s), &r->port_lo))
                        return fail(err, "invalid port \"%s\" (want 1-65535)", s);
                r->port_hi = r->port_lo;
                return 0;
        }
        if (!port_num(s, (size_t)(dash - s), &r->port_lo) || !port_num(dash + 1, strlen(dash + 1), &r->port_hi))
                return fail(err, "invalid port range \"%s\" (want N-M, each 1-65535)", s);
        if (r->port_lo > r->port_hi)
                return fail(err, "port range \"%s\" is reversed", s);
        return 0;
}

/* "tcp", "udp:443", "icmp" */
static int parse_proto(const char *s, struct net_rule *r, struct msb_error *err)
{
        const char *colon = strchr(s, ':');
        size_t n = colon ? (size_t)(colon - s) : strlen(s);
        if (n == 3 && strncmp(s, "tcp", 3) == 0)
                r->proto = 6;
        else if (n == 3 && strncmp(s, "udp", 3) == 0)
                r->proto = 17;
        else if (n == 4 && strncmp(s, "icmp", 4) == 0)
                r->proto = 1;
        else
                return fail(err, "unknown protocol \"%.*s\" (want tcp, udp or icmp)", (int)n, s);
        if (!colon)
                return 0;
        if (r->proto == 1)
                return fail(err, "\"icmp\" takes no ports");
        return parse_ports(colon + 1, r, err);
}

/* ADDR or ADDR/PREFIX of the given family (0: either) */
static int parse_cidr(const char *s, int want_family, struct net_rule *r, struct msb_error *err)
{
        char buf[64];
        if (strlen(s) >= sizeof(buf))
                return 0;
        snprintf(buf, sizeof(buf), "%s", s);
        char *slash = strchr(buf, '/');
        if (slash)
                *slash = '\0';
        struct net_addr a;
        if (!net_addr_parse(buf, &a) || (want_family && a.family != want_family))
                return 0;
        unsigned bits = a.family == 4 ? 32 : 128, prefix = bits;
        if (slash) {
                const char *p = slash + 1;
                if (!*p || strlen(p) > 3)
                        return fail(err, "invalid prefix length in \"%s\" (want 0-%u)", s, bits);
                prefix = 0;
                for (; *p; p++) {
                        if (*p < '0' || *p > '9')
                                return fail(err, "invalid prefix length in \"%s\" (want 0-%u)", s, bits);
                        prefix = prefix * 10 + (unsigned)(*p - '0');
                }
                if (prefix > bits)
                        return fail(err, "invalid prefix length in \"%s\" (want 0-%u)", s, bits);
        }
        /* bits after the prefix are most likely a typo: say so, do not guess */
        struct net_addr masked = { .family = a.family };
        for (unsigned i = 0; i < prefix; i++)
                masked.a[i / 8] |= (uint8_t)(a.a[i / 8] & (0x80 >> (i % 8)));
        if (memcmp(masked.a, a.a, sizeof(a.a)) != 0) {
                char m[INET6_ADDRSTRLEN];
                net_addr_format(&masked, m, sizeof(m));
                return fail(err, "\"%s\" has bits set after the prefix (did you mean %s/%u?)", s, m, prefix);
        }
        r->kind = NET_T_CIDR;
        r->addr = a;
        r->prefix = prefix;
        return 1;
}

static int parse_target(const char *t, struct net_rule *r, struct msb_error *err)
{
        if (!*t)
                return fail(err, "missing target after \"@\"");
        int c = parse_cidr(t, 0, r, err);
        if (c != 0)
                return c < 0 ? -1 : 0;
        for (size_t g = 1; g < sizeof(group_names) / sizeof(group_names[0]); g++)
                if (strcmp(t, group_names[g]) == 0) {
                        r->kind = NET_T_GROUP;
                        r->group = (enum net_group)g;
                        return 0;
                }
        if (t[0] == '*') {
                if (t[1] != '.' || !hostname_norm(t + 2, r->name, sizeof(r->name)))
                        return fail(err, "invalid wildcard \"%s\" (want *.example.com)", t);
                r->kind = NET_T_WILDCARD;
                return 0;
        }
        /* A one-label name must end in a dot ("intranet."): a bare word is
         * far more often a misspelt group ("pubic") than a name. */
        size_t n = strlen(t);
        bool dotted = memchr(t, '.', n ? n - 1 : 0) != NULL || (n && t[n - 1] == '.');
        if (!dotted || !hostname_norm(t, r->name, sizeof(r->name)))
                return fail(err, "unknown group or invalid domain \"%s\"", t);
        /* no top-level domain is all digits: "10.0.0" is a mistyped address */
        const char *last = strrchr(r->name, '.');
        last = last ? last + 1 : r->name;
        if (strspn(last, "0123456789") == strlen(last))
                return fail(err, "invalid address \"%s\" (and not a domain: its last label is a number)", t);
        r->kind = NET_T_DOMAIN;
        return 0;
}

int net_rule_parse(const char *s, struct net_rule *ret, struct msb_error *err)
{
        struct net_rule r = {0};
        snprintf(r.text, sizeof(r.text), "%s", s);
        if (strlen(s) >= sizeof(r.text))
                return fail(err, "rule is too long (at most %zu characters)", sizeof(r.text) - 1);
        const char *at = strchr(s, '@');
        if (!at)
                return fail(err, "rule \"%s\" has no \"@\" (want allow|deny[:egress|:ingress]@TARGET)", s);
        size_t head = (size_t)(at - s);
        if (head >= 5 && strncmp(s, "allow", 5) == 0) {
                r.allow = true;
                s += 5, head -= 5;
        } else if (head >= 4 && strncmp(s, "deny", 4) == 0) {
                s += 4, head -= 4;
        } else {
                return fail(err, "rule must start with \"allow\" or \"deny\", not \"%.*s\"", (int)head, s);
        }
        if (head == 0)
                r.dir = NET_DIR_BOTH;
        else if (head == 7 && strncmp(s, ":egress", 7) == 0)
                r.dir = NET_DIR_EGRESS;
        else if (head == 8 && strncmp(s, ":ingress", 8) == 0)
                r.dir = NET_DIR_INGRESS;
        else
                return fail(err, "unknown direction \"%.*s\" (want :egress or :ingress)", (int)head, s);

        const char *t = at + 1;
        char target[NET_NAME_MAX + 8];
        const char *proto = NULL;
        if (t[0] == '[') {
                /* [v6] or [v6/prefix], so the ":" after it is unambiguous */
                const char *close = strchr(t, ']');
                if (!close || (size_t)(close - t - 1) >= sizeof(target))
                        return fail(err, "unterminated \"[\" in target \"%s\"", t);
                snprintf(target, sizeof(target), "%.*s", (int)(close - t - 1), t + 1);
                if (close[1] == ':')
                        proto = close + 2;
                else if (close[1])
                        return fail(err, "unexpected \"%s\" after \"]\"", close + 1);
                int c = parse_cidr(target, 6, &r, err);
                if (c < 0)
                        return -1;
                if (c == 0)
                        return fail(err, "invalid IPv6 address or prefix \"%s\"", target);
        } else {
                const char *colon = strchr(t, ':');
                /* a bare IPv6 address or prefix, when nothing follows it */
                if (colon && strchr(colon + 1, ':')) {
                        int c = parse_cidr(t, 6, &r, err);
                        if (c < 0)
                                return -1;
                        if (c > 0)
                                goto done;
                        if (strspn(t, "0123456789abcdefABCDEF") == (size_t)(colon - t) && colon - t <= 4)
                                return fail(err,
                                            "invalid target \"%s\" (an IPv6 address followed by a protocol goes in brackets: [fd00::1]:tcp)",
                                            t);
                }
                size_t n = colon ? (size_t)(colon - t) : strlen(t);
                if (n >= sizeof(target))
                        return fail(err, "target \"%.*s\" is too long", (int)n, t);
                snprintf(target, sizeof(target), "%.*s", (int)n, t);
                if (parse_target(target, &r, err) < 0)
                        return -1;
                if (colon)
                        proto = colon + 1;
        }
        if (proto && parse_proto(proto, &r, err) < 0)
                return -1;
done:
        *ret = r;
        return 0;
}

int net_port_parse(const char *s, struct net_port *ret, struct msb_error *err)
{
        struct net_port p = { .proto = 6 };
        char buf[128];
        if (strlen(s) >= sizeof(buf))
                return fail(err, "port mapping \"%.40s...\" is too long", s);
        snprintf(buf, sizeof(buf), "%s", s);
        char *slash = strrchr(buf, '/');
        if (slash) {
                if (strcmp(slash + 1, "tcp") == 0)
                        p.proto = 6;
                else if (strcmp(slash + 1, "udp") == 0)
                        p.proto = 17;
                else
                        return fail(err, "unknown protocol \"%s\" in \"%s\" (want /tcp or /udp)", slash + 1, s);
                *slash = '\0';
        }
        char *rest = buf;
        net_addr_parse("127.0.0.1", &p.host);
        if (buf[0] == '[') {
                char *close = strchr(buf, ']');
                if (!close || close[1] != ':')
                        return fail(err, "invalid host address in \"%s\" (want [IPv6]:HOSTPORT:GUESTPORT)", s);
                *close = '\0';
                if (!net_addr_parse(buf + 1, &p.host) || p.host.family != 6)
                        return fail(err, "invalid IPv6 host address \"%s\"", buf + 1);
                rest = close + 2;
        } else {
                char *c1 = strchr(buf, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (c2 && strchr(c2 + 1, ':'))
                        return fail(err, "too many \":\" in \"%s\" (an IPv6 host address goes in brackets: [::1]:8080:80)", s);
                if (c2) {
                        *c1 = '\0';
                        if (!net_addr_parse(buf, &p.host) || p.host.family != 4)
                                return fail(err, "invalid host address \"%s\" (an IPv6 one goes in brackets)", buf);
                        rest = c1 + 1;
                }
        }
        char *colon = strchr(rest, ':');
        if (!colon)
                return fail(err, "port mapping \"%s\" needs HOSTPORT:GUESTPORT", s);
        *colon = '\0';
        if (!port_num(rest, strlen(rest), &p.host_port))
                return fail(err, "invalid host port \"%s\" (want 1-65535)", rest);
        if (!port_num(colon + 1, strlen(colon + 1), &p.guest_port))
                return fail(err, "invalid guest port \"%s\" (want 1-65535)", colon + 1);
        *ret = p;
        return 0;
}
