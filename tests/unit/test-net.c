/* SPDX-License-Identifier: Apache-2.0 */
/* The network policy engine: rule, port and address parsing, groups, flow
 * verdicts in rule order, the engine's own replies (checksums checked),
 * DNS rules, rebinding and learned addresses, and every bound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "net/dns.h"
#include "net/net.h"
#include "net/packet.h"

/* ---- helpers ---- */

static struct net_addr A(const char *s)
{
        struct net_addr a = {0};
        if (!net_addr_parse(s, &a)) {
                fprintf(stderr, "bad test address %s\n", s);
                abort();
        }
        return a;
}

static const uint8_t GMAC[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t WMAC[6] = { 0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55 };

static char logs[64][640];
static int nlogs;
static void on_log(void *opaque, const char *line)
{
        (void)opaque;
        snprintf(logs[nlogs % 64], sizeof(logs[0]), "%s", line);
        nlogs++;
}
static const char *last_log(void)
{
        return nlogs ? logs[(nlogs - 1) % 64] : "";
}

static uint8_t upstream[65536];
static size_t upstream_len;
static int nupstream;
static void on_upstream(void *opaque, const uint8_t *m, size_t n)
{
        (void)opaque;
        memcpy(upstream, m, n);
        upstream_len = n;
        nupstream++;
}

static struct net_rule rules_buf[32];
static struct net_addr host_addrs[1];
static struct net_port ports_buf[2];

/* an engine for mode and rules (NULL-terminated) */
static struct netd *engine(enum net_mode mode, const char *const *rules)
{
        static struct net_config c;
        memset(&c, 0, sizeof(c));
        size_t nr = 0;
        for (; rules && rules[nr]; nr++) {
                struct msb_error err;
                if (net_rule_parse(rules[nr], &rules_buf[nr], &err) < 0) {
                        fprintf(stderr, "rule %s: %s\n", rules[nr], err.message);
                        abort();
                }
        }
        host_addrs[0] = A("198.51.100.7");
        struct msb_error perr;
        net_port_parse("5353:53/udp", &ports_buf[0], &perr);
        c.mode = mode;
        c.rules = rules_buf;
        c.nrules = nr;
        c.ports = ports_buf;
        c.nports = 1;
        c.guest4 = A("10.0.2.15");
        c.gw4 = A("10.0.2.2");
        c.guest6 = A("fd00:6d73:6200::15");
        c.gw6 = A("fd00:6d73:6200::2");
        c.host_addrs = host_addrs;
        c.nhost_addrs = 1;
        c.mtu = 1500;
        c.log = on_log;
        c.send_upstream = on_upstream;
        c.rng_seed = 42;
        nlogs = 0;
        nupstream = 0;
        return netd_new(&c);
}

/* Ethernet + IP + transport (checksummed); direction: guest -> remote
 * when from_guest, else remote -> guest */
static size_t mk_ip(uint8_t *f, bool from_guest, const char *src, const char *dst, uint8_t proto, uint8_t *l4,
                    size_t l4len)
{
        struct net_addr s = A(src), d = A(dst);
        memcpy(f, from_guest ? WMAC : GMAC, 6);
        memcpy(f + 6, from_guest ? GMAC : WMAC, 6);
        size_t hl = s.family == 4 ? 20 : 40;
        uint8_t *ip = f + 14;
        memset(ip, 0, hl);
        uint16_t ck = 0;
        if (s.family == 4) {
                put16(f + 12, 0x0800);
                ip[0] = 0x45;
                put16(ip + 2, (uint16_t)(20 + l4len));
                ip[8] = 64;
                ip[9] = proto;
                memcpy(ip + 12, s.a, 4);
                memcpy(ip + 16, d.a, 4);
                put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
        } else {
                put16(f + 12, 0x86dd);
                ip[0] = 0x60;
                put16(ip + 4, (uint16_t)l4len);
                ip[6] = proto;
                ip[7] = 64;
                memcpy(ip + 8, s.a, 16);
                memcpy(ip + 24, d.a, 16);
        }
        size_t ckoff = proto == 6 ? 16 : proto == 17 ? 6 : 2;
        put16(l4 + ckoff, 0);
        uint32_t sum = proto == 1 ? 0 : csum_pseudo(s.family, &s, &d, proto, l4len);
        ck = csum_fold(csum_add(sum, l4, l4len));
        put16(l4 + ckoff, ck);
        memcpy(ip + hl, l4, l4len);
        return 14 + hl + l4len;
}

static size_t mk_tcp(uint8_t *f, bool from_guest, const char *src, const char *dst, uint16_t sport, uint16_t dport,
                     uint8_t flags, uint32_t seq, uint32_t ack)
{
        uint8_t t[20] = {0};
        put16(t, sport);
        put16(t + 2, dport);
        put32(t + 4, seq);
        put32(t + 8, ack);
        t[12] = 5 << 4;
        t[13] = flags;
        put16(t + 14, 65535);
        return mk_ip(f, from_guest, src, dst, 6, t, 20);
}

static size_t mk_udp(uint8_t *f, bool from_guest, const char *src, const char *dst, uint16_t sport, uint16_t dport,
                     const uint8_t *pl, size_t n)
{
        static uint8_t u[65536];
        put16(u, sport);
        put16(u + 2, dport);
        put16(u + 4, (uint16_t)(8 + n));
        memcpy(u + 8, pl, n);
        return mk_ip(f, from_guest, src, dst, 17, u, 8 + n);
}

static size_t mk_ping(uint8_t *f, const char *src, const char *dst, uint16_t id)
{
        bool v6 = strchr(src, ':') != NULL;
        uint8_t m[16] = { v6 ? 128 : 8, 0 };
        put16(m + 4, id);
        put16(m + 6, 1);
        return mk_ip(f, true, src, dst, v6 ? 58 : 1, m, sizeof(m));
}

/* the next frame of a queue, or 0 */
static size_t q_next(struct netd_queue *q, const uint8_t **frame)
{
        if (q->len - q->off < 4)
                return 0;
        const uint8_t *b = q->buf + q->off;
        size_t n = (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | b[3];
        *frame = b + 4;
        q->off += 4 + n;
        return n;
}
static size_t q_count(struct netd_queue *q)
{
        size_t n = 0, off = q->off;
        const uint8_t *f;
        while (q_next(q, &f))
                n++;
        q->off = off;
        return n;
}
static void q_clear(struct netd_queue *q)
{
        q->off = q->len = 0;
}

/* every checksum of a frame the engine built is right */
static bool sums_ok(const uint8_t *f, size_t len, struct pkt *p)
{
        if (pkt_parse(f, len, p) != PKT_IP)
                return false;
        if (p->family == 4 && csum_fold(csum_add(0, p->ip, 20)) != 0)
                return false;
        uint32_t sum = p->proto == 1 ? 0 : csum_pseudo(p->family, &p->src, &p->dst, p->proto, p->l4_len);
        return csum_fold(csum_add(sum, p->l4, p->l4_len)) == 0;
}

/* ---- parsing ---- */

static void test_modes(void)
{
        enum net_mode m;
        CHECK_INT(net_mode_parse("public", &m), 0);
        CHECK_INT(m, NET_MODE_PUBLIC);
        CHECK_INT(net_mode_parse("all", &m), 0);
        CHECK_INT(m, NET_MODE_ALL);
        CHECK_INT(net_mode_parse("none", &m), 0);
        CHECK_INT(m, NET_MODE_NONE);
        CHECK(net_mode_parse("Public", &m) < 0);
        CHECK(net_mode_parse("", &m) < 0);
        CHECK_STR(net_mode_name(NET_MODE_PRIVATE), "private");
        CHECK_STR(net_mode_name(NET_MODE_HOST), "host");
}

static void rule_ok(const char *s, struct net_rule *r)
{
        struct msb_error err = {0};
        int rc = net_rule_parse(s, r, &err);
        if (rc != 0)
                fprintf(stderr, "rule %s: %s\n", s, err.message);
        CHECK_INT(rc, 0);
}

static void rule_bad(const char *s, const char *want)
{
        struct msb_error err = {0};
        struct net_rule r;
        CHECK_INT(net_rule_parse(s, &r, &err), -1);
        if (!strstr(err.message, want)) {
                fprintf(stderr, "rule %s: error \"%s\" does not name \"%s\"\n", s, err.message, want);
                check_failures++;
        }
}

static void test_rules(void)
{
        struct net_rule r;
        rule_ok("allow@10.0.0.0/8", &r);
        CHECK(r.allow);
        CHECK_INT(r.dir, NET_DIR_BOTH);
        CHECK_INT(r.kind, NET_T_CIDR);
        CHECK_INT(r.prefix, 8);
        CHECK_INT(r.proto, 0);
        CHECK_STR(r.text, "allow@10.0.0.0/8");
        rule_ok("deny:egress@192.168.1.7:tcp:22", &r);
        CHECK(!r.allow);
        CHECK_INT(r.dir, NET_DIR_EGRESS);
        CHECK_INT(r.prefix, 32);
        CHECK_INT(r.proto, 6);
        CHECK_INT(r.port_lo, 22);
        CHECK_INT(r.port_hi, 22);
        rule_ok("allow:ingress@[fd00::/8]:udp:1000-2000", &r);
        CHECK_INT(r.dir, NET_DIR_INGRESS);
        CHECK_INT(r.addr.family, 6);
        CHECK_INT(r.prefix, 8);
        CHECK_INT(r.proto, 17);
        CHECK_INT(r.port_lo, 1000);
        CHECK_INT(r.port_hi, 2000);
        rule_ok("allow@[fd00::1]", &r);
        CHECK_INT(r.prefix, 128);
        rule_ok("deny@fd00::/8", &r);
        CHECK_INT(r.kind, NET_T_CIDR);
        CHECK_INT(r.prefix, 8);
        rule_ok("deny@::1", &r);
        CHECK_INT(r.addr.a[15], 1);
        rule_ok("allow@Example.COM.", &r);
        CHECK_INT(r.kind, NET_T_DOMAIN);
        CHECK_STR(r.name, "example.com");
        rule_ok("allow@*.example.com:tcp:443", &r);
        CHECK_INT(r.kind, NET_T_WILDCARD);
        CHECK_STR(r.name, "example.com");
        CHECK_INT(r.port_lo, 443);
        rule_ok("allow@intranet.", &r);
        CHECK_STR(r.name, "intranet");
        rule_ok("allow@_srv.x-y.example", &r);
        rule_ok("deny@meta", &r);
        CHECK_INT(r.kind, NET_T_GROUP);
        CHECK_INT(r.group, NET_G_META);
        rule_ok("allow@link-local:icmp", &r);
        CHECK_INT(r.group, NET_G_LINKLOCAL);
        CHECK_INT(r.proto, 1);
        rule_ok("deny@any:udp", &r);
        CHECK_INT(r.group, NET_G_ANY);
        rule_ok("allow@dns", &r);
        CHECK_INT(r.group, NET_G_DNS);
        rule_ok("allow@0.0.0.0/0:tcp:1-65535", &r);

        rule_bad("permit@any", "\"permit\"");
        rule_bad("allow any", "has no \"@\"");
        rule_bad("allow:out@any", "\":out\"");
        rule_bad("allow@", "missing target");
        rule_bad("allow@foo..bar", "unknown group or invalid domain \"foo..bar\"");
        rule_bad("allow@pubic", "unknown group or invalid domain \"pubic\"");
        rule_bad("allow@exa mple.com", "\"exa mple.com\"");
        rule_bad("allow@10.0.0", "invalid address \"10.0.0\"");
        rule_bad("allow@10.0.0.256:tcp", "invalid address \"10.0.0.256\"");
        rule_bad("allow@*.", "invalid wildcard \"*.\"");
        rule_bad("allow@*example.com", "invalid wildcard \"*example.com\"");
        rule_bad("allow@any:sctp", "unknown protocol \"sctp\"");
        rule_bad("allow@any:tcp:90-80", "port range \"90-80\" is reversed");
        rule_bad("allow@any:tcp:0", "invalid port \"0\"");
        rule_bad("allow@any:udp:65536", "invalid port \"65536\"");
        rule_bad("allow@any:tcp:1-x", "invalid port range \"1-x\"");
        rule_bad("allow@any:tcp:", "invalid port \"\"");
        rule_bad("allow@any:icmp:8", "\"icmp\" takes no ports");
        rule_bad("allow@10.0.0.0/33", "prefix length in \"10.0.0.0/33\"");
        rule_bad("allow@10.0.0.1/8", "did you mean 10.0.0.0/8");
        rule_bad("allow@[fd00::1", "unterminated \"[\"");
        rule_bad("allow@[10.0.0.1]", "invalid IPv6 address or prefix \"10.0.0.1\"");
        rule_bad("allow@[fd00::1]x", "unexpected \"x\"");
        rule_bad("allow@fd00::1:tcp", "in brackets");
        char longname[400];
        memset(longname, 'a', sizeof(longname));
        memcpy(longname, "allow@", 6);
        longname[399] = '\0';
        rule_bad(longname, "too long");
        char label[100] = "allow@";
        memset(label + 6, 'a', 64);
        strcpy(label + 70, ".com");
        rule_bad(label, "unknown group or invalid domain");
}

static void test_ports(void)
{
        struct net_port p;
        struct msb_error err;
        CHECK_INT(net_port_parse("8080:80", &p, &err), 0);
        CHECK_INT(p.host_port, 8080);
        CHECK_INT(p.guest_port, 80);
        CHECK_INT(p.proto, 6);
        CHECK(net_addr_eq(&p.host, &(struct net_addr){ 4, { 127, 0, 0, 1 } }));
        CHECK_INT(net_port_parse("0.0.0.0:53:5353/udp", &p, &err), 0);
        CHECK_INT(p.proto, 17);
        CHECK_INT(p.host.family, 4);
        CHECK_INT(p.guest_port, 5353);
        CHECK_INT(net_port_parse("[::1]:8080:80", &p, &err), 0);
        CHECK_INT(p.host.family, 6);
        CHECK_INT(net_port_parse("8080", &p, &err), -1);
        CHECK(strstr(err.message, "HOSTPORT:GUESTPORT") != NULL);
        CHECK_INT(net_port_parse("8080:0", &p, &err), -1);
        CHECK(strstr(err.message, "guest port \"0\"") != NULL);
        CHECK_INT(net_port_parse("x:80", &p, &err), -1);
        CHECK(strstr(err.message, "host port \"x\"") != NULL);
        CHECK_INT(net_port_parse("80:80/sctp", &p, &err), -1);
        CHECK(strstr(err.message, "\"sctp\"") != NULL);
        CHECK_INT(net_port_parse("1.2.3:80:80", &p, &err), -1);
        CHECK(strstr(err.message, "\"1.2.3\"") != NULL);
        CHECK_INT(net_port_parse("[::1:80:80", &p, &err), -1);
        CHECK_INT(net_port_parse("::1:8080:80", &p, &err), -1);
        CHECK(strstr(err.message, "in brackets") != NULL);
}

static void test_addrs(void)
{
        struct net_addr a;
        char s[64];
        CHECK_INT(net_addr_parse("10.1.2.3", &a), 1);
        CHECK_INT(a.family, 4);
        net_addr_format(&a, s, sizeof(s));
        CHECK_STR(s, "10.1.2.3");
        CHECK_INT(net_addr_parse("FD00::0001", &a), 1);
        net_addr_format(&a, s, sizeof(s));
        CHECK_STR(s, "fd00::1");
        CHECK_INT(net_addr_parse("10.1.2", &a), 0);
        CHECK_INT(net_addr_parse("example.com", &a), 0);
        CHECK_INT(net_addr_parse("", &a), 0);
}

static void test_groups(void)
{
        struct netd *n = engine(NET_MODE_PUBLIC, NULL);
        struct net_config c = {0};
        c.gw4 = A("10.0.2.2");
        c.gw6 = A("fd00:6d73:6200::2");
        c.host_addrs = host_addrs;
        c.nhost_addrs = 1;
        static const struct {
                const char *a;
                enum net_group g;
                bool in;
        } t[] = {
                { "8.8.8.8", NET_G_PUBLIC, true },          { "203.0.113.10", NET_G_PUBLIC, true },
                { "10.1.2.3", NET_G_PUBLIC, false },        { "10.1.2.3", NET_G_PRIVATE, true },
                { "172.31.255.255", NET_G_PRIVATE, true },  { "172.32.0.1", NET_G_PRIVATE, false },
                { "172.32.0.1", NET_G_PUBLIC, true },       { "192.168.0.1", NET_G_PRIVATE, true },
                { "100.64.0.1", NET_G_PRIVATE, true },      { "100.128.0.1", NET_G_PUBLIC, true },
                { "fd12::1", NET_G_PRIVATE, true },         { "fc00::1", NET_G_PRIVATE, true },
                { "127.0.0.1", NET_G_LOOPBACK, true },      { "127.0.0.1", NET_G_PUBLIC, false },
                { "::1", NET_G_LOOPBACK, true },            { "::1", NET_G_PUBLIC, false },
                { "169.254.1.1", NET_G_LINKLOCAL, true },   { "fe80::1", NET_G_LINKLOCAL, true },
                { "169.254.169.254", NET_G_META, true },    { "169.254.169.254", NET_G_LINKLOCAL, true },
                { "169.254.1.1", NET_G_META, false },       { "100.100.100.200", NET_G_META, true },
                { "fd00:ec2::254", NET_G_META, true },      { "224.0.0.251", NET_G_MULTICAST, true },
                { "168.63.129.16", NET_G_META, true },      { "168.63.129.16", NET_G_PUBLIC, false },
                { "168.63.129.17", NET_G_PUBLIC, true },
                { "255.255.255.255", NET_G_MULTICAST, true }, { "255.255.255.255", NET_G_PUBLIC, false },
                { "ff02::1", NET_G_MULTICAST, true },       { "10.0.2.2", NET_G_HOST, true },
                { "10.0.2.2", NET_G_PUBLIC, false },       { "10.0.2.2", NET_G_PRIVATE, false },        { "fd00:6d73:6200::2", NET_G_HOST, true },
                { "198.51.100.7", NET_G_HOST, true },       { "198.51.100.7", NET_G_PUBLIC, false },
                { "198.51.100.8", NET_G_PUBLIC, true },     { "0.1.2.3", NET_G_PUBLIC, false },
                { "240.0.0.1", NET_G_PUBLIC, false },       { "::", NET_G_PUBLIC, false },
                { "::ffff:8.8.8.8", NET_G_PUBLIC, false },  { "::8.8.8.8", NET_G_PUBLIC, false },
                { "2001:4860:4860::8888", NET_G_PUBLIC, true }, { "2002:a00:1::1", NET_G_PUBLIC, false },
                { "2001:0:a00::1", NET_G_PUBLIC, false },   { "64:ff9b::a00:1", NET_G_PUBLIC, false },
                { "1.1.1.1", NET_G_ANY, true },             { "::", NET_G_ANY, true },
                { "10.0.2.2", NET_G_DNS, false },
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                struct net_addr a = A(t[i].a);
                if (net_group_has(&c, t[i].g, &a) != t[i].in) {
                        fprintf(stderr, "%s in %s: want %d\n", t[i].a, net_group_name(t[i].g), t[i].in);
                        check_failures++;
                }
        }
        netd_free(n);
}

/* ---- flows ---- */

static uint8_t fr[70000];

static enum netd_verdict syn(struct netd *n, const char *dst, uint16_t dport, int64_t now)
{
        bool v6 = strchr(dst, ':') != NULL;
        size_t len = mk_tcp(fr, true, v6 ? "fd00:6d73:6200::15" : "10.0.2.15", dst, 40000, dport, TCP_SYN, 1000, 0);
        return netd_from_guest(n, fr, len, now);
}

static void test_modes_default(void)
{
        struct netd *n = engine(NET_MODE_PUBLIC, NULL);
        CHECK_INT(syn(n, "203.0.113.10", 443, 0), NETD_PASS);
        CHECK_STR(last_log(), "allow egress tcp 203.0.113.10:443 (mode public)");
        CHECK_INT(syn(n, "10.77.0.10", 80, 0), NETD_DROP);
        CHECK_STR(last_log(), "deny egress tcp 10.77.0.10:80 (mode public)");
        CHECK_INT(syn(n, "10.0.2.2", 22, 0), NETD_DROP); /* host */
        CHECK_INT(syn(n, "198.51.100.7", 22, 0), NETD_DROP); /* host, though it looks public */
        CHECK_INT(syn(n, "2001:db8::1", 443, 0), NETD_PASS);
        CHECK_STR(last_log(), "allow egress tcp [2001:db8::1]:443 (mode public)");
        CHECK_INT(syn(n, "10.0.2.2", 53, 0), NETD_DROP); /* DNS over TCP: never */
        CHECK_STR(last_log(), "deny egress tcp 10.0.2.2:53 (DNS over TCP is not served)");
        netd_free(n);

        n = engine(NET_MODE_PRIVATE, NULL);
        CHECK_INT(syn(n, "10.77.0.10", 80, 0), NETD_PASS);
        CHECK_INT(syn(n, "169.254.169.254", 80, 0), NETD_DROP);
        CHECK_INT(syn(n, "10.0.2.2", 22, 0), NETD_DROP);
        netd_free(n);

        n = engine(NET_MODE_HOST, NULL);
        CHECK_INT(syn(n, "10.0.2.2", 22, 0), NETD_PASS);
        CHECK_INT(syn(n, "127.0.0.1", 22, 0), NETD_PASS);
        CHECK_INT(syn(n, "169.254.169.254", 80, 0), NETD_DROP);
        CHECK_INT(syn(n, "224.0.0.1", 80, 0), NETD_DROP);
        netd_free(n);

        n = engine(NET_MODE_ALL, NULL);
        CHECK_INT(syn(n, "169.254.169.254", 80, 0), NETD_PASS);
        netd_free(n);

        /* other spellings of the host and of IPv4 addresses are no
         * destination in any mode (the reviewer's bypass of deny rules
         * under --net all): passt's sockets would reach the host */
        const char *deny_host[] = {"deny@loopback", "deny@host", "deny@meta", "deny@private", NULL};
        n = engine(NET_MODE_ALL, deny_host);
        const char *bogus[] = {"0.0.0.0", "0.1.2.3", "::", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
                               "::ffff:10.0.0.1", "::127.0.0.1", "64:ff9b::a00:1", "64:ff9b:1::1", NULL};
        for (const char **b = bogus; *b; b++) {
                if (syn(n, *b, 80, 0) != NETD_DROP)
                        fprintf(stderr, "a SYN to %s passed\n", *b), check_failures++;
        }
        CHECK(strstr(last_log(), "(not a valid destination)") != NULL);
        CHECK_INT(syn(n, "::1", 80, 0), NETD_DROP); /* loopback, by the rule */
        CHECK_INT(syn(n, "203.0.113.10", 80, 0), NETD_PASS);
        netd_free(n);
}

static void test_rule_order(void)
{
        const char *rules[] = { "allow@10.1.0.0/16:tcp:80", "deny@private", "allow:ingress@any",
                                "deny@203.0.113.0/24:udp", "deny@[2001:db8::/32]:icmp", "allow@meta:tcp:80-81",
                                NULL };
        struct netd *n = engine(NET_MODE_PRIVATE, rules);
        CHECK_INT(syn(n, "10.1.2.3", 80, 0), NETD_PASS);
        CHECK_STR(last_log(), "allow egress tcp 10.1.2.3:80 (rule 1 \"allow@10.1.0.0/16:tcp:80\")");
        CHECK_INT(syn(n, "10.1.2.3", 81, 0), NETD_DROP);
        CHECK_STR(last_log(), "deny egress tcp 10.1.2.3:81 (rule 2 \"deny@private\")");
        CHECK_INT(syn(n, "203.0.113.5", 80, 0), NETD_PASS); /* udp rule: not tcp */
        CHECK_INT(syn(n, "169.254.169.254", 81, 0), NETD_PASS);
        CHECK_INT(syn(n, "169.254.169.254", 82, 0), NETD_DROP);

        /* udp to a denied address: ICMP admin-prohibited, quoting the datagram */
        q_clear(netd_to_guest(n));
        size_t len = mk_udp(fr, true, "10.0.2.15", "203.0.113.9", 5000, 1234, (const uint8_t *)"hello", 5);
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        CHECK_STR(last_log(), "deny egress udp 203.0.113.9:1234 (rule 4 \"deny@203.0.113.0/24:udp\")");
        const uint8_t *r;
        size_t rl = q_next(netd_to_guest(n), &r);
        struct pkt p;
        CHECK(rl > 0 && sums_ok(r, rl, &p));
        CHECK_INT(p.proto, 1);
        CHECK_INT(p.icmp_type, 3);
        CHECK_INT(p.icmp_code, 13);
        CHECK(net_addr_eq(&p.src, &(struct net_addr){ 4, { 10, 0, 2, 2 } }));
        CHECK(net_addr_eq(&p.dst, &(struct net_addr){ 4, { 10, 0, 2, 15 } }));
        CHECK(memcmp(r, GMAC, 6) == 0 && memcmp(r + 6, WMAC, 6) == 0);
        CHECK_INT(p.l4_len, 8 + 20 + 8 + 5);
        CHECK(memcmp(p.l4 + 8, fr + 14, 20 + 8 + 5) == 0);

        /* ping over IPv6 to a denied prefix: ICMPv6 1/1 */
        len = mk_ping(fr, "fd00:6d73:6200::15", "2001:db8::9", 7);
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        CHECK_STR(last_log(), "deny egress icmp 2001:db8::9 (rule 5 \"deny@[2001:db8::/32]:icmp\")");
        rl = q_next(netd_to_guest(n), &r);
        CHECK(rl > 0 && sums_ok(r, rl, &p));
        CHECK_INT(p.proto, 58);
        CHECK_INT(p.icmp_type, 1);
        CHECK_INT(p.icmp_code, 1);
        netd_free(n);
}

static void test_flow_cache(void)
{
        const char *rules[] = { "deny@203.0.113.0/24", NULL };
        struct netd *n = engine(NET_MODE_PUBLIC, rules);
        struct netd_queue *q = netd_to_guest(n);
        size_t len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.1", 40000, 80, TCP_SYN, 1000, 0);
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        CHECK_INT(nlogs, 1);
        CHECK_INT(netd_from_guest(n, fr, len, 100), NETD_DROP);
        CHECK_INT(netd_from_guest(n, fr, len, 200), NETD_DROP);
        CHECK_INT(nlogs, 1); /* the stored verdict: logged once */
        CHECK_INT(q_count(q), 3); /* one reset per denied segment */
        const uint8_t *r;
        size_t rl = q_next(q, &r);
        struct pkt p;
        CHECK(rl > 0 && sums_ok(r, rl, &p));
        CHECK_INT(p.proto, 6);
        CHECK_INT(p.tcp_flags, TCP_RST | TCP_ACK);
        CHECK_INT(p.seq, 0);
        CHECK_INT(p.ack, 1001);
        CHECK_INT(p.sport, 80);
        CHECK_INT(p.dport, 40000);
        CHECK(net_addr_eq(&p.src, &(struct net_addr){ 4, { 203, 0, 113, 1 } }));
        q_clear(q);

        /* a segment with ACK: RST with its ack number as seq */
        len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.1", 40001, 80, TCP_ACK, 5000, 777);
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        rl = q_next(q, &r);
        CHECK(rl > 0 && sums_ok(r, rl, &p));
        CHECK_INT(p.tcp_flags, TCP_RST);
        CHECK_INT(p.seq, 777);
        q_clear(q);
        /* never a reset for a reset */
        len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.1", 40002, 80, TCP_RST, 5000, 0);
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        CHECK_INT(q_count(q), 0);
        /* nor for what goes to a multicast address */
        len = mk_udp(fr, true, "10.0.2.15", "224.0.0.251", 5353, 5353, (const uint8_t *)"x", 1);
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        CHECK_INT(q_count(q), 0);

        /* an allowed flow stays allowed; idle UDP goes after 180 s and is judged (and logged) again */
        len = mk_udp(fr, true, "10.0.2.15", "8.8.8.8", 5000, 123, (const uint8_t *)"x", 1);
        nlogs = 0;
        CHECK_INT(netd_from_guest(n, fr, len, 1000), NETD_PASS);
        CHECK_INT(netd_from_guest(n, fr, len, 2000), NETD_PASS);
        CHECK_INT(nlogs, 1);
        CHECK_INT(netd_from_guest(n, fr, len, 2000 + 180 * 1000), NETD_PASS);
        CHECK_INT(nlogs, 2);
        struct netd_stats st;
        netd_stats(n, &st);
        CHECK_INT(st.passed, 3);
        CHECK(st.denied >= 6);
        netd_free(n);
}

static void test_ingress(void)
{
        const char *rules[] = { "deny:ingress@198.51.100.0/24", "deny:egress@any", NULL };
        struct netd *n = engine(NET_MODE_PUBLIC, rules);
        /* passt opens a published port from 203.0.113.7: a new ingress flow, allowed by default */
        size_t len = mk_tcp(fr, false, "203.0.113.7", "10.0.2.15", 50000, 8080, TCP_SYN, 1, 0);
        CHECK_INT(netd_from_stack(n, fr, len, 0), NETD_PASS);
        CHECK_STR(last_log(), "allow ingress tcp 203.0.113.7:50000 -> guest port 8080 (default)");
        /* the guest's answer passes although all egress is denied */
        len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.7", 8080, 50000, TCP_SYN | TCP_ACK, 9, 2);
        CHECK_INT(netd_from_guest(n, fr, len, 1), NETD_PASS);
        /* from a denied source: dropped, with a reset for passt */
        len = mk_tcp(fr, false, "198.51.100.9", "10.0.2.15", 50001, 8080, TCP_SYN, 1, 0);
        CHECK_INT(netd_from_stack(n, fr, len, 2), NETD_DROP);
        CHECK_STR(last_log(), "deny ingress tcp 198.51.100.9:50001 -> guest port 8080 (rule 1 \"deny:ingress@198.51.100.0/24\")");
        const uint8_t *r;
        size_t rl = q_next(netd_to_stack(n), &r);
        struct pkt p;
        CHECK(rl > 0 && sums_ok(r, rl, &p));
        CHECK_INT(p.tcp_flags, TCP_RST | TCP_ACK);
        CHECK(net_addr_eq(&p.dst, &(struct net_addr){ 4, { 198, 51, 100, 9 } }));
        CHECK(memcmp(r, WMAC, 6) == 0);
        CHECK_INT(q_count(netd_to_guest(n)), 0);
        /* a UDP datagram to a published UDP port is an ingress flow too */
        len = mk_udp(fr, false, "198.51.100.9", "10.0.2.15", 999, 53, (const uint8_t *)"q", 1);
        CHECK_INT(netd_from_stack(n, fr, len, 3), NETD_DROP);
        /* a datagram to a port that is not published, and no answer to
         * the guest: passt delivers it from anyone, netd does not */
        len = mk_udp(fr, false, "198.51.100.9", "10.0.2.15", 999, 4000, (const uint8_t *)"q", 1);
        CHECK_INT(netd_from_stack(n, fr, len, 3), NETD_DROP);
        CHECK_STR(last_log(), "deny ingress udp 198.51.100.9:999 -> guest port 4000 (not a published port, nor an answer)");
        /* and egress stays denied */
        CHECK_INT(syn(n, "203.0.113.8", 80, 4), NETD_DROP);
        netd_free(n);
}

/* Finding 2 of "under attack": after one datagram out, only its answer comes in */
static void test_udp_answers_only(void)
{
        const char *rules[] = { "deny@203.0.113.66", NULL };
        struct netd *n = engine(NET_MODE_PUBLIC, rules);
        size_t len = mk_udp(fr, true, "10.0.2.15", "203.0.113.1", 40000, 7, (const uint8_t *)"x", 1);
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_PASS);
        /* the answer */
        len = mk_udp(fr, false, "203.0.113.1", "10.0.2.15", 7, 40000, (const uint8_t *)"y", 1);
        CHECK_INT(netd_from_stack(n, fr, len, 1), NETD_PASS);
        /* the same port from another port of that host, and from another host */
        len = mk_udp(fr, false, "203.0.113.1", "10.0.2.15", 8, 40000, (const uint8_t *)"y", 1);
        CHECK_INT(netd_from_stack(n, fr, len, 2), NETD_DROP);
        len = mk_udp(fr, false, "127.0.0.1", "10.0.2.15", 5555, 40000, (const uint8_t *)"y", 1);
        CHECK_INT(netd_from_stack(n, fr, len, 2), NETD_DROP);
        /* the guest tried a denied host from that port: its "answer" stays out */
        len = mk_udp(fr, true, "10.0.2.15", "203.0.113.66", 40000, 7, (const uint8_t *)"x", 1);
        CHECK_INT(netd_from_guest(n, fr, len, 3), NETD_DROP);
        len = mk_udp(fr, false, "203.0.113.66", "10.0.2.15", 7, 40000, (const uint8_t *)"y", 1);
        CHECK_INT(netd_from_stack(n, fr, len, 4), NETD_DROP);
        /* the published UDP port (5353 -> 53) is for the ingress rules */
        len = mk_udp(fr, false, "203.0.113.5", "10.0.2.15", 999, 53, (const uint8_t *)"q", 1);
        CHECK_INT(netd_from_stack(n, fr, len, 5), NETD_PASS);
        /* ICMP echo replies: only to the guest's own echo requests */
        uint8_t m[16] = { 0, 0 };
        put16(m + 4, 77);
        put16(m + 6, 1);
        len = mk_ip(fr, false, "203.0.113.1", "10.0.2.15", 1, m, sizeof(m));
        CHECK_INT(netd_from_stack(n, fr, len, 6), NETD_DROP);
        CHECK_STR(last_log(), "deny ingress icmp echo reply from 203.0.113.1, id 77 (not an answer)");
        size_t pl = mk_ping(fr, "10.0.2.15", "203.0.113.1", 77);
        CHECK_INT(netd_from_guest(n, fr, pl, 7), NETD_PASS);
        len = mk_ip(fr, false, "203.0.113.1", "10.0.2.15", 1, m, sizeof(m));
        CHECK_INT(netd_from_stack(n, fr, len, 8), NETD_PASS);
        netd_free(n);
}

/* Finding 3: the UDP ports and TCP flows one sandbox may hold */
static void test_caps(void)
{
        struct netd *n = engine(NET_MODE_PUBLIC, NULL);
        struct netd_queue *q = netd_to_guest(n);
        size_t len;
        for (unsigned i = 0; i < NETD_UDP_PORTS_MAX; i++) {
                len = mk_udp(fr, true, "10.0.2.15", "203.0.113.1", (uint16_t)(10000 + i), 7, (const uint8_t *)"x", 1);
                CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_PASS);
        }
        /* one more port: refused, with an ICMP error for the guest */
        q_clear(q);
        len = mk_udp(fr, true, "10.0.2.15", "203.0.113.1", 20000, 7, (const uint8_t *)"x", 1);
        CHECK_INT(netd_from_guest(n, fr, len, 1000), NETD_DROP);
        CHECK_STR(last_log(), "deny egress udp 203.0.113.1:7 (256 UDP ports in use, the most a sandbox may hold)");
        const uint8_t *r;
        size_t rl = q_next(q, &r);
        struct pkt p;
        CHECK(rl > 0 && sums_ok(r, rl, &p));
        CHECK_INT(p.proto, 1);
        /* a port in use still sends, to anyone; DNS to the gateway needs no port */
        len = mk_udp(fr, true, "10.0.2.15", "203.0.113.9", 10000, 7, (const uint8_t *)"x", 1);
        CHECK_INT(netd_from_guest(n, fr, len, 2000), NETD_PASS);
        /* ports count until NETD_UDP_PORT_MS after their last datagram,
         * even once their flows are forgotten (180 s) */
        netd_tick(n, 185 * 1000);
        len = mk_udp(fr, true, "10.0.2.15", "203.0.113.1", 20000, 7, (const uint8_t *)"x", 1);
        CHECK_INT(netd_from_guest(n, fr, len, 185 * 1000), NETD_DROP);
        netd_tick(n, 200 * 1000);
        CHECK_INT(netd_from_guest(n, fr, len, 200 * 1000), NETD_PASS);
        netd_free(n);

        n = engine(NET_MODE_PUBLIC, NULL);
        for (unsigned i = 0; i < NETD_TCP_FLOWS_MAX; i++)
                CHECK_INT(syn(n, i & 1 ? "203.0.113.1" : "203.0.113.2", (uint16_t)(1000 + i / 2), 0), NETD_PASS);
        CHECK_INT(syn(n, "203.0.113.3", 80, 1), NETD_DROP);
        CHECK_STR(last_log(), "deny egress tcp 203.0.113.3:80 (4096 TCP flows, the most a sandbox may hold)");
        /* nor can a published port open one more */
        len = mk_tcp(fr, false, "203.0.113.7", "10.0.2.15", 50000, 8080, TCP_SYN, 1, 0);
        CHECK_INT(netd_from_stack(n, fr, len, 2), NETD_DROP);
        struct netd_stats st;
        netd_stats(n, &st);
        CHECK_INT(st.flows_capped, 2);
        /* the guest's FIN alone is a half-close: passt's socket stays, and
         * so does the count, however long the flows sit idle */
        for (unsigned i = 0; i < NETD_TCP_FLOWS_MAX; i++) {
                len = mk_tcp(fr, true, "10.0.2.15", i & 1 ? "203.0.113.1" : "203.0.113.2", 40000,
                             (uint16_t)(1000 + i / 2), TCP_FIN | TCP_ACK, 1001, 1);
                CHECK_INT(netd_from_guest(n, fr, len, 10), NETD_PASS);
        }
        netd_tick(n, 10 + 61 * 1000);
        CHECK_INT(syn(n, "203.0.113.3", 81, 10 + 61 * 1000), NETD_DROP);
        /* once the far side closed too, they go after a minute idle */
        for (unsigned i = 0; i < NETD_TCP_FLOWS_MAX; i++) {
                len = mk_tcp(fr, false, i & 1 ? "203.0.113.1" : "203.0.113.2", "10.0.2.15",
                             (uint16_t)(1000 + i / 2), 40000, TCP_FIN | TCP_ACK, 1, 1002);
                CHECK_INT(netd_from_stack(n, fr, len, 70 * 1000), NETD_PASS);
        }
        netd_tick(n, 131 * 1000);
        CHECK_INT(syn(n, "203.0.113.3", 82, 131 * 1000), NETD_PASS);
        netd_free(n);
}

/* Each echo id (to each address) is a ping socket of passt's: at most
 * NETD_ICMP_FLOWS_MAX at once, freed 70 s after its last request */
static void test_icmp_capped(void)
{
        struct netd *n = engine(NET_MODE_PUBLIC, NULL);
        size_t len;
        for (unsigned i = 0; i < NETD_ICMP_FLOWS_MAX; i++) {
                len = mk_ping(fr, "10.0.2.15", "203.0.113.1", (uint16_t)(100 + i));
                CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_PASS);
        }
        /* an id in use goes on */
        len = mk_ping(fr, "10.0.2.15", "203.0.113.1", 100);
        CHECK_INT(netd_from_guest(n, fr, len, 1000), NETD_PASS);
        q_clear(netd_to_guest(n));
        len = mk_ping(fr, "10.0.2.15", "203.0.113.1", 5000);
        CHECK_INT(netd_from_guest(n, fr, len, 1000), NETD_DROP);
        CHECK_STR(last_log(), "deny egress icmp 203.0.113.1 (64 echo flows, the most a sandbox may hold)");
        const uint8_t *r;
        struct pkt p;
        size_t rl = q_next(netd_to_guest(n), &r);
        CHECK(rl > 0 && sums_ok(r, rl, &p) && p.proto == 1 && p.icmp_type == 3);
        /* 70 s after their last request they are passt's no more */
        netd_tick(n, 72 * 1000);
        CHECK_INT(netd_from_guest(n, fr, len, 72 * 1000), NETD_PASS);
        netd_free(n);
}

/* Denied SYNs hold no socket of passt's: a flood of them, from outside
 * through a published port or from the guest, leaves the TCP cap whole,
 * and their flows are forgotten after 3 minutes, not 2 hours */
static void test_denied_flows_take_no_tcp(void)
{
        const char *rules[] = { "deny:ingress@198.51.100.0/24", "deny@203.0.113.66", NULL };
        struct netd *n = engine(NET_MODE_PUBLIC, rules);
        for (unsigned i = 0; i < NETD_TCP_FLOWS_MAX + 100; i++) {
                char src[32];
                snprintf(src, sizeof(src), "198.51.100.%u", 1 + i % 250);
                size_t len = mk_tcp(fr, false, src, "10.0.2.15", (uint16_t)(1024 + i / 250), 8080, TCP_SYN, 1, 0);
                CHECK_INT(netd_from_stack(n, fr, len, 0), NETD_DROP);
                CHECK_INT(syn(n, "203.0.113.66", (uint16_t)(1 + i), 0), NETD_DROP);
        }
        struct netd_stats st;
        netd_stats(n, &st);
        CHECK_INT(st.flows_capped, 0);
        /* every one of the guest's own connections still opens */
        for (unsigned i = 0; i < NETD_TCP_FLOWS_MAX; i++)
                CHECK_INT(syn(n, i & 1 ? "203.0.113.1" : "203.0.113.2", (uint16_t)(1000 + i / 2), 1), NETD_PASS);
        CHECK_INT(syn(n, "203.0.113.3", 80, 2), NETD_DROP);
        CHECK_STR(last_log(), "deny egress tcp 203.0.113.3:80 (4096 TCP flows, the most a sandbox may hold)");
        netd_free(n);
}

/* A full table gives up what holds nothing of the host's, not an open
 * connection (which NETD_TCP_FLOWS_MAX must keep counting) */
static void test_eviction_spares_connections(void)
{
        const char *rules[] = { "deny@203.0.113.66", NULL };
        struct netd *n = engine(NET_MODE_PUBLIC, rules);
        /* one open connection, then denied flows past the table's size */
        CHECK_INT(syn(n, "203.0.113.1", 443, 0), NETD_PASS);
        for (unsigned i = 0; i < NETD_FLOW_MAX + 10; i++)
                CHECK_INT(syn(n, "203.0.113.66", (uint16_t)(1 + i % 60000), (int64_t)i), NETD_DROP);
        struct netd_stats st;
        netd_stats(n, &st);
        CHECK(st.flows_evicted > 0);
        /* the connection is still known: its segments pass without a new verdict */
        nlogs = 0;
        size_t len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.1", 40000, 443, TCP_ACK, 2, 1);
        CHECK_INT(netd_from_guest(n, fr, len, NETD_FLOW_MAX + 20), NETD_PASS);
        CHECK_INT(nlogs, 0);
        netd_free(n);
        /* the oldest 64 flows all open connections: the victim is found
         * further down, and the connections keep their count */
        n = engine(NET_MODE_PUBLIC, rules);
        for (unsigned i = 0; i < 100; i++)
                CHECK_INT(syn(n, "203.0.113.1", (uint16_t)(1000 + i), 0), NETD_PASS);
        for (unsigned i = 0; i < NETD_FLOW_MAX + 10; i++)
                CHECK_INT(syn(n, "203.0.113.66", (uint16_t)(1 + i % 60000), 1), NETD_DROP);
        nlogs = 0;
        for (unsigned i = 0; i < 100; i++) {
                len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.1", 40000, (uint16_t)(1000 + i), TCP_ACK, 2, 1);
                CHECK_INT(netd_from_guest(n, fr, len, 2), NETD_PASS);
        }
        CHECK_INT(nlogs, 0);
        netd_free(n);
}

static void test_malformed(void)
{
        struct netd *n = engine(NET_MODE_ALL, NULL);
        struct netd_stats st;
        size_t len = mk_tcp(fr, true, "10.0.2.15", "8.8.8.8", 1, 2, TCP_SYN, 0, 0);
        CHECK_INT(netd_from_guest(n, fr, 13, 0), NETD_DROP);
        CHECK_INT(netd_from_guest(n, fr, len - 1, 0), NETD_DROP); /* IP length past the frame */
        fr[14] = 0x44; /* ihl 16 bytes */
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        fr[14] = 0x4f; /* ihl 60 > total 40 */
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        fr[14] = 0x45;
        fr[14 + 20 + 12] = 0x40; /* data offset 16 */
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        fr[14 + 20 + 12] = 0xf0; /* data offset 60 > 20 */
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        netd_stats(n, &st);
        CHECK_INT(st.dropped_malformed, 6);

        len = mk_tcp(fr, true, "10.0.2.15", "8.8.8.8", 1, 2, TCP_SYN, 0, 0);
        put16(fr + 14 + 6, 0x2000); /* more fragments */
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        put16(fr + 14 + 6, 0x0001); /* offset */
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        put16(fr + 14 + 6, 0x4000); /* DF alone is fine */
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_PASS);
        put16(fr + 12, 0x8100); /* VLAN */
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        uint8_t gre[4] = {0};
        len = mk_ip(fr, true, "10.0.2.15", "8.8.8.8", 47, gre, 4);
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        uint8_t unreach[8] = { 3, 1 };
        len = mk_ip(fr, true, "10.0.2.15", "8.8.8.8", 1, unreach, 8);
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        netd_stats(n, &st);
        CHECK_INT(st.dropped_unsupported, 5);
        CHECK_INT(netd_from_guest(n, fr, PKT_FRAME_MAX + 1, 0), NETD_DROP);

        /* ARP: passes when whole */
        uint8_t arp[42] = {0};
        memset(arp, 0xff, 6);
        put16(arp + 12, 0x0806);
        put16(arp + 14, 1);
        put16(arp + 16, 0x0800);
        arp[18] = 6;
        arp[19] = 4;
        CHECK_INT(netd_from_guest(n, arp, 42, 0), NETD_PASS);
        CHECK_INT(netd_from_guest(n, arp, 41, 0), NETD_DROP);

        /* IPv6: neighbour solicitation passes in any mode; a packet with
         * extension headers never does (passt would read its ports from
         * the last extension header, not from the transport header) */
        uint8_t ns[24] = { 135, 0 };
        len = mk_ip(fr, true, "fe80::15", "ff02::1:ff00:2", 58, ns, sizeof(ns));
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_PASS);
        uint8_t l4[8 + 8 + 20] = {0};
        l4[0] = 60; /* hop-by-hop, then destination options, then TCP */
        l4[8] = 6;
        put16(l4 + 16, 1);
        put16(l4 + 18, 80);
        l4[16 + 12] = 5 << 4;
        l4[16 + 13] = TCP_SYN;
        len = mk_ip(fr, true, "fd00:6d73:6200::15", "2001:db8::1", 0, l4, sizeof(l4));
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        len = mk_ip(fr, true, "fd00:6d73:6200::15", "2001:db8::1", 6, l4 + 16, 20);
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_PASS);
        /* the reviewer's case: destination options carrying another port */
        l4[0] = 6;
        put16(l4 + 2, 2222);
        len = mk_ip(fr, true, "fd00:6d73:6200::15", "2001:db8::1", 60, l4 + 8, 8 + 20);
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        len = mk_ip(fr, true, "fd00:6d73:6200::15", "2001:db8::1", 0, l4, sizeof(l4));
        fr[14 + 40 + 8] = 44; /* then a fragment header */
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        fr[14 + 40 + 9] = 200; /* a header longer than the packet */
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        /* a chain of 9 destination options headers */
        uint8_t chain[9 * 8 + 20] = {0};
        for (int i = 0; i < 9; i++)
                chain[i * 8] = i < 8 ? 60 : 6;
        chain[72 + 12] = 5 << 4;
        len = mk_ip(fr, true, "fd00:6d73:6200::15", "2001:db8::1", 60, chain, sizeof(chain));
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        netd_free(n);
}

/* ---- DNS ---- */

static size_t put_name(uint8_t *p, const char *name)
{
        size_t o = 0;
        while (*name) {
                const char *dot = strchr(name, '.');
                size_t l = dot ? (size_t)(dot - name) : strlen(name);
                p[o++] = (uint8_t)l;
                memcpy(p + o, name, l);
                o += l;
                name += l + (dot ? 1 : 0);
        }
        p[o++] = 0;
        return o;
}

static size_t mk_query(uint8_t *m, uint16_t id, const char *name, uint16_t type, uint16_t edns)
{
        memset(m, 0, 12);
        put16(m, id);
        put16(m + 2, DNS_RD);
        put16(m + 4, 1);
        size_t o = 12 + put_name(m + 12, name);
        put16(m + o, type);
        put16(m + o + 2, 1);
        o += 4;
        if (edns) {
                put16(m + 10, 1);
                m[o++] = 0;
                put16(m + o, DNS_T_OPT);
                put16(m + o + 2, edns);
                memset(m + o + 4, 0, 6);
                o += 10;
        }
        return o;
}

/* an answer to the query last sent upstream: its id and question, then
 * records; each addr is "cname:NAME" (a CNAME, owner the previous name; or
 * "dname:NAME"), "soa:NAME" (a SOA in the authority section, after the
 * rest) or an
 * address owned by the current name */
static uint32_t answer_ttl = 60; /* of every record mk_answer writes */

static size_t mk_answer(uint8_t *m, const char *const *rrs, unsigned rcode)
{
        size_t qend = 12;
        while (upstream[qend])
                qend += 1u + upstream[qend];
        qend += 5;
        memcpy(m, upstream, qend);
        put16(m + 2, (uint16_t)(DNS_QR | DNS_RD | DNS_RA | rcode));
        put16(m + 10, 0);
        size_t o = qend, owner = 12;
        uint16_t an = 0;
        uint16_t ns = 0;
        for (; rrs && rrs[an + ns]; ) {
                if (strncmp(rrs[an + ns], "soa:", 4) == 0) {
                        /* in the authority section, owned by NAME: the last entries */
                        o += put_name(m + o, rrs[an + ns] + 4);
                        put16(m + o, DNS_T_SOA);
                        put16(m + o + 2, 1);
                        put32(m + o + 4, answer_ttl);
                        put16(m + o + 8, 22);
                        memset(m + o + 10, 0, 22); /* root MNAME, RNAME, five numbers */
                        o += 32;
                        ns++;
                        continue;
                }
                put16(m + o, (uint16_t)(0xc000 | owner)); /* compressed owner */
                o += 2;
                struct net_addr a;
                if (strncmp(rrs[an], "cname:", 6) == 0 || strncmp(rrs[an], "dname:", 6) == 0) {
                        put16(m + o, rrs[an][0] == 'c' ? DNS_T_CNAME : DNS_T_DNAME);
                        put16(m + o + 2, 1);
                        put32(m + o + 4, answer_ttl);
                        size_t nl = put_name(m + o + 10, rrs[an] + 6);
                        put16(m + o + 8, (uint16_t)nl);
                        owner = o + 10;
                        o += 10 + nl;
                        an++;
                        continue;
                }
                a = A(rrs[an]);
                put16(m + o, a.family == 4 ? DNS_T_A : DNS_T_AAAA);
                put16(m + o + 2, 1);
                put32(m + o + 4, answer_ttl);
                put16(m + o + 8, a.family == 4 ? 4 : 16);
                memcpy(m + o + 10, a.a, a.family == 4 ? 4 : 16);
                o += 10 + (a.family == 4 ? 4u : 16u);
                an++;
        }
        put16(m + 6, an);
        put16(m + 8, ns);
        return o;
}

static uint8_t qbuf[4096], abuf[70000];

/* a query from the guest; returns the frame verdict */
static enum netd_verdict ask(struct netd *n, uint16_t id, const char *name, uint16_t type, int64_t now)
{
        size_t ql = mk_query(qbuf, id, name, type, 0);
        size_t len = mk_udp(fr, true, "10.0.2.15", "10.0.2.2", 33333, 53, qbuf, ql);
        return netd_from_guest(n, fr, len, now);
}

/* the DNS reply at the head of the guest queue: its rcode, or -1 */
static int reply_rcode(struct netd *n, uint16_t want_id, struct dns_msg *d)
{
        const uint8_t *r;
        size_t rl = q_next(netd_to_guest(n), &r);
        struct pkt p;
        if (!rl || !sums_ok(r, rl, &p) || p.proto != 17 || p.sport != 53 || p.dport != 33333)
                return -1;
        if (memcmp(r, GMAC, 6) != 0 || memcmp(r + 6, WMAC, 6) != 0)
                return -1;
        static uint8_t copy[65536];
        memcpy(copy, p.payload, p.payload_len);
        if (dns_msg_parse(copy, p.payload_len, true, d) < 0 || d->id != want_id || !(d->flags & DNS_QR))
                return -1;
        return d->flags & 15;
}

/* Finding 5: no reverse lookups of what the sandbox may not reach */
static void test_dns_reverse(void)
{
        const char *rules[] = { "allow@10.9.0.0/16", NULL };
        struct netd *n = engine(NET_MODE_PUBLIC, rules);
        struct dns_msg d;
        static const char *refused[] = {
                "5.0.0.10.in-addr.arpa", "10.IN-ADDR.ARPA", "in-addr.arpa", "1.1.168.192.in-addr.arpa",
                "x.10.in-addr.arpa", "0/25.2.0.10.in-addr.arpa", "2.0.0.10.in-addr.arpa",
                "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa", "d.f.ip6.arpa",
                "254.169.254.169.in-addr.arpa", "16.129.63.168.in-addr.arpa",
                /* zones whose range holds private or host addresses, though
                 * their first address is public */
                "172.in-addr.arpa", "198.in-addr.arpa", "51.198.in-addr.arpa", "2.ip6.arpa",
                "0/25.100.51.198.in-addr.arpa",
        };
        uint16_t id = 0x7000;
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++, id++) {
                CHECK_INT(ask(n, id, refused[i], 12, 0), NETD_DROP);
                CHECK_INT(reply_rcode(n, id, &d), DNS_REFUSED);
        }
        CHECK_INT(nupstream, 0);
        /* public addresses, an allowed private range, forward names: asked upstream */
        static const char *asked[] = {
                "8.8.8.8.in-addr.arpa", "1.0.9.10.in-addr.arpa", "8.8.in-addr.arpa",
                "8.8.8.8.8.8.8.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.8.4.0.1.0.0.2.ip6.arpa", "in-addr.arpa.example",
                "203.in-addr.arpa", "9.10.in-addr.arpa",
        };
        for (size_t i = 0; i < sizeof(asked) / sizeof(asked[0]); i++, id++)
                CHECK_INT(ask(n, id, asked[i], 12, 0), NETD_DROP);
        CHECK_INT(nupstream, 7);
        /* an allowed name whose answer leads into a refused reverse zone
         * (a CNAME the upstream resolver followed): refused whole */
        CHECK_INT(ask(n, id, "x.attacker.test", 12, 0), NETD_DROP);
        const char *into_private[] = { "cname:5.1.168.192.in-addr.arpa", NULL };
        size_t al = mk_answer(abuf, into_private, 0);
        netd_from_upstream(n, abuf, al, 1);
        CHECK_INT(reply_rcode(n, id, &d), DNS_REFUSED);
        CHECK_STR(last_log(), "dns refuse x.attacker.test PTR: the answer holds 5.1.168.192.in-addr.arpa, a reverse "
                              "name of an address this sandbox may not reach");
        id++;
        /* into an allowed range: passed on */
        CHECK_INT(ask(n, id, "y.attacker.test", 12, 0), NETD_DROP);
        const char *into_allowed[] = { "cname:5.1.9.10.in-addr.arpa", NULL };
        al = mk_answer(abuf, into_allowed, 0);
        netd_from_upstream(n, abuf, al, 1);
        CHECK_INT(reply_rcode(n, id++, &d), 0);
        /* however long the chain, and through a DNAME */
        static const char *const long_chain[] = { "cname:a1.t", "cname:a2.t", "cname:a3.t", "cname:a4.t",
                                                  "cname:a5.t", "cname:a6.t", "cname:a7.t", "cname:a8.t",
                                                  "cname:a9.t", "cname:5.1.168.192.in-addr.arpa", NULL };
        static const char *const via_dname[] = { "dname:168.192.in-addr.arpa", NULL };
        const char *const *refused_answers[] = { long_chain, via_dname };
        for (size_t i = 0; i < 2; i++, id++) {
                CHECK_INT(ask(n, id, "z.attacker.test", 12, 0), NETD_DROP);
                al = mk_answer(abuf, refused_answers[i], 0);
                netd_from_upstream(n, abuf, al, 1);
                CHECK_INT(reply_rcode(n, id, &d), DNS_REFUSED);
        }
        netd_free(n);

        /* RFC 2317: the question's own classless delegation is followed,
         * though its /24 is not the guest's; another address's is not */
        const char *one[] = { "allow@203.0.2.5", "allow@dns", NULL };
        n = engine(NET_MODE_NONE, one);
        CHECK_INT(ask(n, id, "5.2.0.203.in-addr.arpa", 12, 0), NETD_DROP);
        const char *classless[] = { "cname:5.0-25.2.0.203.in-addr.arpa", NULL };
        al = mk_answer(abuf, classless, 0);
        netd_from_upstream(n, abuf, al, 1);
        CHECK_INT(reply_rcode(n, id++, &d), 0);
        CHECK_INT(ask(n, id, "5.2.0.203.in-addr.arpa", 12, 0), NETD_DROP);
        const char *elsewhere[] = { "cname:5.0-25.3.0.203.in-addr.arpa", NULL };
        al = mk_answer(abuf, elsewhere, 0);
        netd_from_upstream(n, abuf, al, 1);
        CHECK_INT(reply_rcode(n, id++, &d), DNS_REFUSED);
        CHECK_INT(ask(n, id, "0-25.2.0.203.in-addr.arpa", 12, 0), NETD_DROP);
        CHECK_INT(reply_rcode(n, id++, &d), DNS_REFUSED);
        /* another address's classless record, zones above as CNAME
         * targets, a name that only looks like a zone: refused */
        static const char *const not_ours[][2] = {
                { "cname:7.0-25.2.0.203.in-addr.arpa", NULL }, { "cname:2.0.203.in-addr.arpa", NULL },
                { "cname:7.x.203.in-addr.arpa", NULL },         { "cname:foo.in-addr.arpa", NULL },
                { "soa:7.0-25.2.0.203.in-addr.arpa", NULL },
        };
        for (size_t i = 0; i < sizeof(not_ours) / sizeof(not_ours[0]); i++, id++) {
                CHECK_INT(ask(n, id, "5.2.0.203.in-addr.arpa", 12, 0), NETD_DROP);
                al = mk_answer(abuf, not_ours[i], 0);
                netd_from_upstream(n, abuf, al, 1);
                CHECK_INT(reply_rcode(n, id, &d), DNS_REFUSED);
        }
        /* what an honest answer about the question holds: the SOA of a zone
         * above it (NODATA), its delegation's own zone */
        static const char *const ours[][3] = {
                { "soa:2.0.203.in-addr.arpa", NULL },
                { "cname:5.0-25.2.0.203.in-addr.arpa", "soa:0-25.2.0.203.in-addr.arpa", NULL },
        };
        for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++, id++) {
                CHECK_INT(ask(n, id, "5.2.0.203.in-addr.arpa", 12, 0), NETD_DROP);
                al = mk_answer(abuf, ours[i], 0);
                netd_from_upstream(n, abuf, al, 1);
                CHECK_INT(reply_rcode(n, id, &d), 0);
        }
        netd_free(n);

        /* an allowed zone's NODATA answer carries the SOA of the zone above */
        const char *range[] = { "allow@10.9.0.0/16", NULL };
        n = engine(NET_MODE_PUBLIC, range);
        CHECK_INT(ask(n, id, "9.10.in-addr.arpa", 12, 0), NETD_DROP);
        const char *nodata[] = { "soa:10.in-addr.arpa", NULL };
        al = mk_answer(abuf, nodata, 0);
        netd_from_upstream(n, abuf, al, 1);
        CHECK_INT(reply_rcode(n, id++, &d), 0);
        netd_free(n);
}

/* A denied flow judged again while the TCP cap is full stays to be judged
 * again: once a connection's flow is gone, it passes, without waiting for
 * something else to be learned */
static void test_rejudge_waits_for_the_cap(void)
{
        const char *rules[] = { "allow@*.good.example", NULL };
        struct netd *n = engine(NET_MODE_PUBLIC, rules);
        CHECK_INT(syn(n, "10.9.9.9", 443, 0), NETD_DROP);
        q_clear(netd_to_guest(n));
        for (unsigned i = 0; i < NETD_TCP_FLOWS_MAX; i++)
                CHECK_INT(syn(n, "203.0.113.1", (uint16_t)(1000 + i), 0), NETD_PASS);
        struct dns_msg d;
        CHECK_INT(ask(n, 0x3333, "www.good.example", DNS_T_A, 0), NETD_DROP);
        const char *rrs[] = { "10.9.9.9", NULL };
        answer_ttl = 600;
        size_t al = mk_answer(abuf, rrs, 0);
        answer_ttl = 60;
        netd_from_upstream(n, abuf, al, 0);
        CHECK_INT(reply_rcode(n, 0x3333, &d), DNS_NOERROR);
        q_clear(netd_to_guest(n));
        CHECK_INT(syn(n, "10.9.9.9", 443, 1), NETD_DROP);
        CHECK_STR(last_log(), "deny egress tcp 10.9.9.9:443 (4096 TCP flows, the most a sandbox may hold)");
        size_t len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.1", 40000, 1000, TCP_RST, 1001, 0);
        CHECK_INT(netd_from_guest(n, fr, len, 2), NETD_PASS);
        netd_tick(n, 70 * 1000);
        q_clear(netd_to_guest(n));
        CHECK_INT(syn(n, "10.9.9.9", 443, 70 * 1000), NETD_PASS);
        CHECK_STR(last_log(), "allow egress tcp 10.9.9.9:443 (rule 1 \"allow@*.good.example\")");
        netd_free(n);
}

static void test_dns_rules(void)
{
        const char *rules[] = { "deny@bad.example", "allow@*.good.example", "deny@*.example", "allow@dns", "deny@any", NULL };
        struct netd *n = engine(NET_MODE_PUBLIC, rules);
        struct dns_msg d;
        /* denied names: NXDOMAIN from the engine, echoing the question */
        CHECK_INT(ask(n, 0x1111, "BAD.example", DNS_T_A, 0), NETD_DROP);
        CHECK_STR(last_log(), "dns deny bad.example A (rule 1 \"deny@bad.example\")");
        CHECK_INT(reply_rcode(n, 0x1111, &d), DNS_NXDOMAIN);
        CHECK_INT(d.qdcount, 1);
        CHECK_STR(d.qname.text, "bad.example");
        CHECK_INT(d.flags & DNS_RD, DNS_RD);
        CHECK_INT(nupstream, 0);
        CHECK_INT(ask(n, 0x1112, "x.example", DNS_T_AAAA, 0), NETD_DROP);
        CHECK_INT(reply_rcode(n, 0x1112, &d), DNS_NXDOMAIN);
        CHECK_STR(last_log(), "dns deny x.example AAAA (rule 3 \"deny@*.example\")");
        /* *.example does not match example itself: no name rule, forwarded */
        CHECK_INT(ask(n, 0x1113, "example", DNS_T_A, 0), NETD_DROP);
        CHECK_INT(nupstream, 1);
        /* deny@any is not a name rule; the dns group allowed by the mode still applies */

        /* allowed by a name rule: forwarded with a fresh id, the answer
         * goes back with the guest's id and its addresses are learned */
        CHECK_INT(ask(n, 0x2222, "www.good.example", DNS_T_A, 0), NETD_DROP);
        CHECK_INT(nupstream, 2);
        uint16_t up_id = get16(upstream);
        CHECK(up_id != 0x2222);
        CHECK_INT(upstream_len, mk_query(qbuf, 0x2222, "www.good.example", DNS_T_A, 0));
        CHECK(memcmp(upstream + 2, qbuf + 2, upstream_len - 2) == 0);
        /* before the answer the address is denied (deny@any) */
        CHECK_INT(syn(n, "10.9.9.9", 443, 0), NETD_DROP);
        q_clear(netd_to_guest(n));
        const char *rrs[] = { "cname:edge.cdn.test", "10.9.9.9", "2001:db8::9", NULL };
        size_t al = mk_answer(abuf, rrs, 0);
        netd_from_upstream(n, abuf, al, 10);
        CHECK_INT(reply_rcode(n, 0x2222, &d), DNS_NOERROR);
        CHECK_INT(d.ancount, 3);
        CHECK_STR(last_log(), "dns allow www.good.example A -> 10.9.9.9, 2001:db8::9");
        /* a private address learned through a name rule skips the rebinding
         * check; the denied flow is judged again, and now passes */
        q_clear(netd_to_guest(n));
        CHECK_INT(syn(n, "10.9.9.9", 443, 1), NETD_PASS);
        CHECK_STR(last_log(), "allow egress tcp 10.9.9.9:443 (rule 2 \"allow@*.good.example\")");
        CHECK_INT(syn(n, "2001:db8::9", 443, 1), NETD_PASS);
        CHECK_INT(syn(n, "10.9.9.8", 443, 1), NETD_DROP);
        q_clear(netd_to_guest(n));
        /* a second answer for the same id is not taken */
        nlogs = 0;
        netd_from_upstream(n, abuf, al, 11);
        CHECK_INT(nlogs, 0);
        CHECK_INT(q_count(netd_to_guest(n)), 0);

        struct netd_stats st;
        netd_stats(n, &st);
        CHECK_INT(st.dns_denied, 2);
        CHECK_INT(st.dns_queries, 4);
        netd_free(n);
}

/* A learned address counts for its record's TTL, at least the floor and
 * at most the cap; seen again, it lasts the longer. */
static void test_dns_learned_expire(void)
{
        const char *rules[] = { "allow@ttl.test", "allow@dns", "deny@any", NULL };
        struct netd *n = engine(NET_MODE_PUBLIC, rules);
        const int64_t s = 1000;
        ask(n, 1, "ttl.test", DNS_T_A, 0);
        answer_ttl = 300;
        const char *a1[] = { "203.0.113.7", NULL };
        netd_from_upstream(n, abuf, mk_answer(abuf, a1, 0), 0);
        ask(n, 2, "ttl.test", DNS_T_A, 0);
        answer_ttl = 0; /* the floor: 60 s */
        const char *a2[] = { "203.0.113.8", NULL };
        netd_from_upstream(n, abuf, mk_answer(abuf, a2, 0), 0);
        ask(n, 3, "ttl.test", DNS_T_A, 0);
        answer_ttl = 0xffffffffu; /* the cap: a day */
        const char *a3[] = { "203.0.113.9", NULL };
        netd_from_upstream(n, abuf, mk_answer(abuf, a3, 0), 0);
        answer_ttl = 60;
        q_clear(netd_to_guest(n));
        CHECK_INT(syn(n, "203.0.113.7", 1001, 1), NETD_PASS);
        CHECK_INT(syn(n, "203.0.113.8", 1001, 59 * s), NETD_PASS);
        CHECK_INT(syn(n, "203.0.113.8", 1002, 61 * s), NETD_DROP);
        CHECK_INT(syn(n, "203.0.113.7", 1002, 299 * s), NETD_PASS);
        CHECK_INT(syn(n, "203.0.113.7", 1003, 301 * s), NETD_DROP);
        CHECK_INT(syn(n, "203.0.113.9", 1001, 86399 * s), NETD_PASS);
        CHECK_INT(syn(n, "203.0.113.9", 1002, 86401 * s), NETD_DROP);
        /* answered again (a shorter TTL than left does not shorten it) */
        ask(n, 4, "ttl.test", DNS_T_A, 90000 * s);
        answer_ttl = 120;
        netd_from_upstream(n, abuf, mk_answer(abuf, a1, 0), 90000 * s);
        answer_ttl = 60;
        q_clear(netd_to_guest(n));
        CHECK_INT(syn(n, "203.0.113.7", 1004, 90100 * s), NETD_PASS);
        CHECK_INT(syn(n, "203.0.113.7", 1005, 90121 * s), NETD_DROP);
        netd_free(n);
}

/* Group "host" follows the host's addresses as they come and go. */
static void test_host_addrs_follow(void)
{
        struct netd *n = engine(NET_MODE_PUBLIC, NULL);
        struct net_addr a = A("203.0.113.50");
        CHECK_INT(syn(n, "203.0.113.50", 1, 0), NETD_PASS);
        CHECK(netd_host_addr(n, &a, true));
        CHECK_STR(last_log(), "host address added 203.0.113.50");
        CHECK(netd_host_addr(n, &a, true)); /* again: no second entry */
        CHECK_INT(syn(n, "203.0.113.50", 2, 1), NETD_DROP);
        CHECK(netd_host_addr(n, &a, false));
        CHECK_INT(syn(n, "203.0.113.50", 3, 2), NETD_PASS);
        /* the list is bounded (engine() gave it one): an add beyond says so */
        for (unsigned i = 0; i < NET_HOST_ADDRS_MAX - 1; i++) {
                struct net_addr b = { .family = 6 };
                b.a[0] = 0x20, b.a[1] = 0x01, b.a[14] = (uint8_t)(i >> 8), b.a[15] = (uint8_t)i;
                CHECK(netd_host_addr(n, &b, true));
        }
        CHECK(!netd_host_addr(n, &a, true));
        netd_free(n);
}

static void test_dns_rebind(void)
{
        struct netd *n = engine(NET_MODE_PUBLIC, NULL);
        struct dns_msg d;
        CHECK_INT(ask(n, 7, "evil.test", DNS_T_A, 0), NETD_DROP);
        const char *rrs[] = { "203.0.113.10", "10.1.2.3", NULL };
        size_t al = mk_answer(abuf, rrs, 0);
        netd_from_upstream(n, abuf, al, 1);
        CHECK_INT(reply_rcode(n, 7, &d), DNS_REFUSED);
        CHECK_INT(d.ancount, 0);
        CHECK_STR(last_log(), "dns refuse evil.test A 10.1.2.3: private answer for a public name (rebinding)");
        /* in mode private the same answer is fine */
        netd_free(n);
        n = engine(NET_MODE_PRIVATE, NULL);
        CHECK_INT(ask(n, 8, "evil.test", DNS_T_A, 0), NETD_DROP);
        al = mk_answer(abuf, rrs, 0);
        netd_from_upstream(n, abuf, al, 1);
        CHECK_INT(reply_rcode(n, 8, &d), DNS_NOERROR);
        CHECK_STR(last_log(), "dns allow evil.test A -> 203.0.113.10, 10.1.2.3");
        /* an allow rule for the address makes it acceptable; a port-limited deny does not refuse it */
        netd_free(n);
        const char *r2[] = { "deny@10.1.2.3:tcp:22", "allow@10.1.0.0/16:tcp:443", "deny@127.0.0.1", NULL };
        n = engine(NET_MODE_PUBLIC, r2);
        CHECK_INT(ask(n, 9, "ok.test", DNS_T_A, 0), NETD_DROP);
        const char *rrs2[] = { "10.1.2.3", NULL };
        al = mk_answer(abuf, rrs2, 0);
        netd_from_upstream(n, abuf, al, 1);
        CHECK_INT(reply_rcode(n, 9, &d), DNS_NOERROR);
        CHECK_INT(ask(n, 10, "lo.test", DNS_T_A, 0), NETD_DROP);
        const char *rrs3[] = { "127.0.0.1", NULL };
        al = mk_answer(abuf, rrs3, 0);
        netd_from_upstream(n, abuf, al, 1);
        CHECK_INT(reply_rcode(n, 10, &d), DNS_REFUSED);
        CHECK_STR(last_log(), "dns refuse lo.test A 127.0.0.1: loopback answer for a public name (rebinding)");
        struct netd_stats st;
        netd_stats(n, &st);
        CHECK_INT(st.dns_rebind_refused, 1);
        netd_free(n);

        /* a name a rule allows may point at a private address, not at the
         * host (the gateway is the host's loopback), loopback, link-local
         * or metadata addresses: whoever writes a record of its CNAME
         * chain would get them */
        const char *r4[] = {"allow@api.example.com:tcp:443", NULL};
        n = engine(NET_MODE_PUBLIC, r4);
        const char *to_host[] = {"cname:x.attacker.test", "10.0.2.2", NULL};
        CHECK_INT(ask(n, 11, "api.example.com", DNS_T_A, 0), NETD_DROP);
        al = mk_answer(abuf, to_host, 0);
        netd_from_upstream(n, abuf, al, 1);
        CHECK_INT(reply_rcode(n, 11, &d), DNS_REFUSED);
        CHECK_INT(syn(n, "10.0.2.2", 443, 2), NETD_DROP);
        q_clear(netd_to_guest(n));
        const char *to_meta[] = {"169.254.169.254", NULL}, *to_priv[] = {"10.9.9.9", NULL};
        CHECK_INT(ask(n, 12, "api.example.com", DNS_T_A, 3), NETD_DROP);
        al = mk_answer(abuf, to_meta, 0);
        netd_from_upstream(n, abuf, al, 4);
        CHECK_INT(reply_rcode(n, 12, &d), DNS_REFUSED);
        CHECK_INT(ask(n, 13, "api.example.com", DNS_T_A, 5), NETD_DROP);
        al = mk_answer(abuf, to_priv, 0);
        netd_from_upstream(n, abuf, al, 6);
        CHECK_INT(reply_rcode(n, 13, &d), DNS_NOERROR);
        CHECK_INT(syn(n, "10.9.9.9", 443, 7), NETD_PASS);
        netd_free(n);
}

static void test_dns_spoof_timeout_and_caps(void)
{
        struct netd *n = engine(NET_MODE_PUBLIC, NULL);
        struct dns_msg d;
        CHECK_INT(ask(n, 0x3333, "a.test", DNS_T_A, 0), NETD_DROP);
        const char *rrs[] = { "203.0.113.1", NULL };
        size_t al = mk_answer(abuf, rrs, 0);
        /* a wrong id, a wrong name, a wrong type, no QR: all ignored */
        put16(abuf, (uint16_t)(get16(abuf) + 1));
        netd_from_upstream(n, abuf, al, 1);
        put16(abuf, (uint16_t)(get16(abuf) - 1));
        abuf[13] = 'b';
        netd_from_upstream(n, abuf, al, 1);
        abuf[13] = 'a';
        abuf[12 + 8 + 1] = 99;
        netd_from_upstream(n, abuf, al, 1);
        abuf[12 + 8 + 1] = DNS_T_A;
        abuf[2] &= 0x7f;
        netd_from_upstream(n, abuf, al, 1);
        abuf[2] |= 0x80;
        netd_from_upstream(n, abuf, 11, 1);
        CHECK_INT(q_count(netd_to_guest(n)), 0);
        /* the case of the question does not matter */
        abuf[13] = 'A';
        netd_from_upstream(n, abuf, al, 1);
        CHECK_INT(reply_rcode(n, 0x3333, &d), DNS_NOERROR);

        /* no answer: SERVFAIL after 5 s, from netd_tick */
        CHECK_INT(ask(n, 0x4444, "slow.test", DNS_T_A, 100), NETD_DROP);
        CHECK_INT(netd_tick(n, 200), 100 + NETD_DNS_TIMEOUT_MS);
        CHECK_INT(q_count(netd_to_guest(n)), 0);
        netd_tick(n, 100 + NETD_DNS_TIMEOUT_MS);
        CHECK_INT(reply_rcode(n, 0x4444, &d), DNS_SERVFAIL);
        CHECK_STR(last_log(), "dns servfail slow.test A: no answer from upstream");

        /* the pending table is bounded: the 257th waiting query gets SERVFAIL */
        for (int i = 0; i < NETD_DNS_PENDING_MAX; i++)
                ask(n, (uint16_t)i, "many.test", DNS_T_A, 1000);
        CHECK_INT(nupstream, 2 + NETD_DNS_PENDING_MAX);
        q_clear(netd_to_guest(n));
        ask(n, 999, "many.test", DNS_T_A, 1000);
        CHECK_INT(nupstream, 2 + NETD_DNS_PENDING_MAX);
        CHECK_INT(reply_rcode(n, 999, &d), DNS_SERVFAIL);

        /* malformed queries: FORMERR when a header is there, else nothing */
        q_clear(netd_to_guest(n));
        uint8_t bad[12] = { 0x55, 0x66, 0x01, 0, 0, 2 };
        size_t len = mk_udp(fr, true, "10.0.2.15", "10.0.2.2", 33333, 53, bad, sizeof(bad));
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        CHECK_INT(reply_rcode(n, 0x5566, &d), DNS_FORMERR);
        len = mk_udp(fr, true, "10.0.2.15", "10.0.2.2", 33333, 53, bad, 5);
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        CHECK_INT(q_count(netd_to_guest(n)), 0);
        /* more records after the question than a stub resolver sends */
        size_t ql = mk_query(qbuf, 0x7779, "p.test", DNS_T_A, 0);
        put16(qbuf + 10, 9);
        len = mk_udp(fr, true, "10.0.2.15", "10.0.2.2", 33333, 53, qbuf, ql);
        netd_from_guest(n, fr, len, 0);
        CHECK_INT(reply_rcode(n, 0x7779, &d), DNS_FORMERR);
        /* a compression pointer in a query's question */
        ql = mk_query(qbuf, 0x7777, "p.test", DNS_T_A, 0);
        qbuf[12] = 0xc0;
        qbuf[13] = 12;
        len = mk_udp(fr, true, "10.0.2.15", "10.0.2.2", 33333, 53, qbuf, ql);
        netd_from_guest(n, fr, len, 0);
        CHECK_INT(reply_rcode(n, 0x7777, &d), DNS_FORMERR);
        /* a label with a dot inside: refused, never matched against rules */
        ql = mk_query(qbuf, 0x7778, "p.test", DNS_T_A, 0);
        qbuf[13] = '.';
        len = mk_udp(fr, true, "10.0.2.15", "10.0.2.2", 33333, 53, qbuf, ql);
        netd_from_guest(n, fr, len, 0);
        CHECK_INT(reply_rcode(n, 0x7778, &d), DNS_REFUSED);
        netd_free(n);
}

static void test_dns_truncation(void)
{
        struct netd *n = engine(NET_MODE_PUBLIC, NULL);
        struct dns_msg d;
        /* 40 A records (> 512 bytes) to a plain query: header and question, TC */
        const char *many[41];
        char addrs[40][20];
        for (int i = 0; i < 40; i++) {
                snprintf(addrs[i], sizeof(addrs[i]), "203.0.113.%d", i + 1);
                many[i] = addrs[i];
        }
        many[40] = NULL;
        CHECK_INT(ask(n, 0x0a0a, "big.test", DNS_T_A, 0), NETD_DROP);
        size_t al = mk_answer(abuf, many, 0);
        CHECK(al > 512);
        netd_from_upstream(n, abuf, al, 1);
        CHECK_INT(reply_rcode(n, 0x0a0a, &d), DNS_NOERROR);
        CHECK(d.flags & DNS_TC);
        CHECK_INT(d.ancount, 0);
        CHECK_STR(d.qname.text, "big.test");
        /* with EDNS0 (1232) it fits */
        size_t ql = mk_query(qbuf, 0x0b0b, "big.test", DNS_T_A, 1232);
        size_t len = mk_udp(fr, true, "10.0.2.15", "10.0.2.2", 33333, 53, qbuf, ql);
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        al = mk_answer(abuf, many, 0);
        netd_from_upstream(n, abuf, al, 1);
        CHECK_INT(reply_rcode(n, 0x0b0b, &d), DNS_NOERROR);
        CHECK(!(d.flags & DNS_TC));
        CHECK_INT(d.ancount, 40);
        /* over IPv6 too, from gw6 */
        ql = mk_query(qbuf, 0x0c0c, "v6.test", DNS_T_AAAA, 0);
        len = mk_udp(fr, true, "fd00:6d73:6200::15", "fd00:6d73:6200::2", 33333, 53, qbuf, ql);
        CHECK_INT(netd_from_guest(n, fr, len, 0), NETD_DROP);
        const char *one[] = { "2001:db8::1", NULL };
        al = mk_answer(abuf, one, 0);
        netd_from_upstream(n, abuf, al, 1);
        const uint8_t *r;
        size_t rl = q_next(netd_to_guest(n), &r);
        struct pkt p;
        CHECK(rl > 0 && sums_ok(r, rl, &p));
        CHECK_INT(p.family, 6);
        CHECK(net_addr_eq(&p.src, &(struct net_addr){ 6, { 0xfd, 0, 0x6d, 0x73, 0x62, 0, [15] = 2 } }));
        netd_free(n);

        /* a rule against the dns group: the query is a denied UDP flow */
        const char *rules[] = { "deny@dns", NULL };
        n = engine(NET_MODE_PUBLIC, rules);
        CHECK_INT(ask(n, 1, "x.test", DNS_T_A, 0), NETD_DROP);
        CHECK_INT(nupstream, 0);
        CHECK_STR(last_log(), "deny egress udp 10.0.2.2:53 (rule 1 \"deny@dns\")");
        rl = q_next(netd_to_guest(n), &r);
        CHECK(rl > 0 && sums_ok(r, rl, &p));
        CHECK_INT(p.icmp_type, 3);
        /* ...and the gateway's port 53 is not in group host */
        netd_free(n);
        const char *r2[] = { "deny@host", NULL };
        n = engine(NET_MODE_HOST, r2);
        CHECK_INT(ask(n, 1, "x.test", DNS_T_A, 0), NETD_DROP);
        CHECK_INT(nupstream, 1);
        netd_free(n);
}

static void test_dns_parse(void)
{
        /* pointers: backwards only, so loops and forward jumps fail */
        uint8_t m[64] = {0};
        struct dns_name nm;
        size_t off;
        size_t l = put_name(m + 12, "a.example");
        m[12 + l] = 3;
        memcpy(m + 13 + l, "www", 3);
        m[16 + l] = 0xc0;
        m[17 + l] = 12;
        off = 12 + l;
        CHECK(dns_name_read(m, sizeof(m), &off, true, &nm));
        CHECK_STR(nm.text, "www.a.example");
        CHECK_INT(off, 18 + l);
        off = 12 + l;
        CHECK(!dns_name_read(m, sizeof(m), &off, false, &nm));
        m[40] = 0xc0; /* points at itself */
        m[41] = 40;
        off = 40;
        CHECK(!dns_name_read(m, sizeof(m), &off, true, &nm));
        m[41] = 50; /* forwards */
        off = 40;
        CHECK(!dns_name_read(m, sizeof(m), &off, true, &nm));
        m[40] = 0x40; /* extended label type */
        off = 40;
        CHECK(!dns_name_read(m, sizeof(m), &off, true, &nm));
        m[40] = 30; /* past the end */
        off = 40;
        CHECK(!dns_name_read(m, 50, &off, true, &nm));
        /* 256 bytes of name on the wire: too long */
        uint8_t big[400] = {0};
        for (int i = 0; i < 4; i++) {
                big[i * 64] = 63;
                memset(big + i * 64 + 1, 'a', 63);
        }
        off = 0;
        CHECK(!dns_name_read(big, sizeof(big), &off, true, &nm));
        big[192] = 61; /* 3*64 + 62 + 1 = 255: just fits */
        big[192 + 62] = 0;
        off = 0;
        CHECK(dns_name_read(big, sizeof(big), &off, true, &nm));
        CHECK_INT(strlen(nm.text), 253);
        char tb[16];
        CHECK_STR(dns_type_name(28, tb, sizeof(tb)), "AAAA");
        CHECK_STR(dns_type_name(999, tb, sizeof(tb)), "TYPE999");
}

/* ---- bounds ---- */

static void test_bounds(void)
{
        /* the reply queue never holds more than NETD_QUEUE_MAX */
        const char *rules[] = { "deny@any", NULL };
        struct netd *n = engine(NET_MODE_PUBLIC, rules);
        size_t len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.1", 40000, 80, TCP_SYN, 1, 0);
        for (int i = 0; i < 30000; i++)
                netd_from_guest(n, fr, len, 0);
        struct netd_queue *q = netd_to_guest(n);
        CHECK(q->len - q->off <= NETD_QUEUE_MAX);
        CHECK(q->dropped > 0);
        /* draining makes room again */
        uint64_t dropped = q->dropped;
        q->off = q->len;
        netd_from_guest(n, fr, len, 0);
        CHECK_INT(q->dropped, dropped);
        CHECK_INT(q_count(q), 1);
        /* half written out, then more: what is left moves to the front, in order */
        q->off = q->len = 0;
        for (int i = 0; i < 200; i++) {
                len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.1", 40000, 80, TCP_ACK, 1, (uint32_t)i);
                netd_from_guest(n, fr, len, 0);
        }
        const uint8_t *rf;
        for (int i = 0; i < 100; i++)
                q_next(q, &rf);
        for (int i = 200; i < 600; i++) {
                len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.1", 40000, 80, TCP_ACK, 1, (uint32_t)i);
                netd_from_guest(n, fr, len, 0);
        }
        CHECK_INT(q_count(q), 500);
        struct pkt rp;
        bool in_order = true;
        for (uint32_t i = 100; i < 600; i++) {
                size_t rl = q_next(q, &rf);
                in_order &= rl > 0 && sums_ok(rf, rl, &rp) && rp.seq == i;
        }
        CHECK(in_order);
        netd_free(n);

        /* a small flow table: the least recently used flow goes */
        static struct net_config c;
        memset(&c, 0, sizeof(c));
        c.mode = NET_MODE_PUBLIC;
        c.gw4 = A("10.0.2.2");
        c.flow_max = 4;
        c.rng_seed = 1;
        c.log = on_log;
        n = netd_new(&c);
        nlogs = 0;
        for (int i = 0; i < 6; i++) {
                len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.1", (uint16_t)(1000 + i), 80, TCP_SYN, 1, 0);
                netd_from_guest(n, fr, len, i);
        }
        struct netd_stats st;
        netd_stats(n, &st);
        CHECK_INT(st.flows_evicted, 2);
        len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.1", 1005, 80, TCP_ACK, 1, 0);
        netd_from_guest(n, fr, len, 10);
        CHECK_INT(nlogs, 6); /* still known */
        len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.1", 1000, 80, TCP_ACK, 1, 0);
        netd_from_guest(n, fr, len, 10);
        CHECK_INT(nlogs, 7); /* evicted: judged again, same verdict */
        /* closed TCP flows (a FIN each way) go after 60 s idle, from netd_tick */
        len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.1", 1000, 80, TCP_FIN | TCP_ACK, 1, 0);
        netd_from_guest(n, fr, len, 20);
        len = mk_tcp(fr, false, "203.0.113.1", "10.0.2.15", 80, 1000, TCP_FIN | TCP_ACK, 1, 2);
        netd_from_stack(n, fr, len, 20);
        netd_tick(n, 20 + 60 * 1000);
        len = mk_tcp(fr, true, "10.0.2.15", "203.0.113.1", 1000, 80, TCP_ACK, 1, 0);
        netd_from_guest(n, fr, len, 20 + 60 * 1000 + 1);
        CHECK_INT(nlogs, 8);
        netd_free(n);

        /* learned addresses: 1024 per rule, 8192 in all, oldest out first */
        static const char *lr[] = { "allow@r0.test", "allow@r1.test", "allow@r2.test", "allow@r3.test",
                                    "allow@r4.test", "allow@r5.test", "allow@r6.test", "allow@r7.test",
                                    "allow@r8.test", "allow@dns", "deny@any", NULL };
        n = engine(NET_MODE_PUBLIC, lr);
        static char names[2048][20];
        static const char *rrs[2049];
        int serial = 0;
        for (int r = 0; r < 9; r++) {
                char qn[32];
                snprintf(qn, sizeof(qn), "r%d.test", r);
                /* 2 answers of 600 addresses each (10.r.x.y): 1200 > 1024 */
                for (int k = 0; k < 2; k++) {
                        for (int i = 0; i < 600; i++, serial++) {
                                snprintf(names[i], sizeof(names[i]), "10.%d.%d.%d", r, serial / 250, serial % 250 + 1);
                                rrs[i] = names[i];
                        }
                        rrs[600] = NULL;
                        ask(n, 1, qn, DNS_T_A, 0);
                        size_t al = mk_answer(abuf, rrs, 0);
                        netd_from_upstream(n, abuf, al, 0);
                }
        }
        q_clear(netd_to_guest(n));
        /* rule 1's first addresses went when it passed 1024 and then when the total passed 8192 */
        CHECK_INT(syn(n, "10.0.0.1", 443, 1), NETD_DROP);
        /* the last rule's newest addresses are there */
        snprintf(names[0], sizeof(names[0]), "10.8.%d.%d", (serial - 1) / 250, (serial - 1) % 250 + 1);
        CHECK_INT(syn(n, names[0], 443, 1), NETD_PASS);
        /* its 176 oldest are not (1200 - 1024) */
        snprintf(names[0], sizeof(names[0]), "10.8.%d.%d", (serial - 1200) / 250, (serial - 1200) % 250 + 1);
        CHECK_INT(syn(n, names[0], 443, 1), NETD_DROP);
        snprintf(names[0], sizeof(names[0]), "10.8.%d.%d", (serial - 1024) / 250, (serial - 1024) % 250 + 1);
        CHECK_INT(syn(n, names[0], 443, 1), NETD_PASS);
        netd_free(n);
}

int main(void)
{
        test_modes();
        test_rules();
        test_ports();
        test_addrs();
        test_groups();
        test_modes_default();
        test_rule_order();
        test_flow_cache();
        test_ingress();
        test_dns_reverse();
        test_rejudge_waits_for_the_cap();
        test_udp_answers_only();
        test_caps();
        test_denied_flows_take_no_tcp();
        test_icmp_capped();
        test_eviction_spares_connections();
        test_malformed();
        test_dns_parse();
        test_dns_rules();
        test_dns_learned_expire();
        test_host_addrs_follow();
        test_dns_rebind();
        test_dns_spoof_timeout_and_caps();
        test_dns_truncation();
        test_bounds();
        CHECK_DONE();
}
