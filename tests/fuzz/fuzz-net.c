/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the network policy engine: one engine per input,
 * with rules of every kind, fed frames from the guest and from passt, DNS
 * answers from upstream and the passing of time, interleaved.
 *
 * Input: [config] then records [op][len:2 BE][len bytes]:
 *   config: bits 0-1 the mode (public, private, host, all), bit 2 no
 *           rules (the mode's defaults alone), bit 3 a flow table of 8
 *           entries (so eviction is reached), bit 4 an MTU of 65520;
 *   op % 6: 0 a raw frame from the guest, 1 a raw frame from passt,
 *           2 an upstream DNS message (op bit 4: its id becomes the one the
 *             engine sent last; bit 5: the last question sent is spliced in
 *             after its 12-byte header), so answers get past the matching,
 *           3 time passes (len * 10 ms, no bytes) and the queues are
 *             drained (bit 4: no netd_tick; bit 5: only one frame each),
 *           4 the bytes as a DNS query from the guest to the gateway
 *             (bit 4: over IPv6),
 *           5 a frame built from [addr][proto][sport:2][dport:2][flags] and
 *             the rest as payload (bit 4: from passt to the guest).
 * Every frame the engine queues must parse back with right checksums.
 * A config byte of 0xff instead feeds the rest, as text, to the rule and
 * port parsers (what the CLI hands them).
 * Seeds: tests/fuzz/seed-net.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/dns.h"
#include "net/net.h"
#include "net/packet.h"

static const char *const rule_text[] = {
        "deny@bad.test",          "allow@*.good.test:tcp:443",   "allow@ok.test",
        "deny:ingress@198.51.100.0/24", "allow:egress@10.1.0.0/16:tcp:80-90", "deny@[fd00::/8]:udp",
        "deny@meta",              "allow@link-local:icmp",       "allow@dns",
        "deny@203.0.113.0/24:icmp", "allow@host:tcp:22",          "deny@multicast",
        "allow@2001:db8::/32",    "deny@loopback",               "allow:ingress@any:udp:5353",
        "deny@*.test",            "allow@public:udp:53",         "deny@0.0.0.0/0:tcp:25",
};
static struct net_rule rules[sizeof(rule_text) / sizeof(rule_text[0])];
static struct net_port ports[2];
static struct net_addr host_addr;
static const char *const addrs[16] = {
        "10.0.2.2",      "10.0.2.15",     "203.0.113.10",    "10.1.2.3",  "169.254.169.254", "198.51.100.9",
        "224.0.0.251",   "127.0.0.1",     "8.8.8.8",         "fd00:6d73:6200::2", "fd00:6d73:6200::15",
        "2001:db8::1",   "fe80::1",       "ff02::1",         "fd12::3",   "2606:4700::1111",
};
static struct net_addr addr_tab[16];

static uint8_t lastq[65536];
static size_t lastq_len;
static char sink[700];

static void on_log(void *opaque, const char *line)
{
        (void)opaque;
        snprintf(sink, sizeof(sink), "%s", line);
}

static void on_upstream(void *opaque, const uint8_t *m, size_t n)
{
        (void)opaque;
        if (n > sizeof(lastq))
                abort();
        memcpy(lastq, m, n);
        lastq_len = n;
}

static void setup(void)
{
        static bool done;
        if (done)
                return;
        done = true;
        struct msb_error err;
        for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
                if (net_rule_parse(rule_text[i], &rules[i], &err) < 0) {
                        fprintf(stderr, "%s: %s\n", rule_text[i], err.message);
                        abort();
                }
        net_port_parse("8080:80", &ports[0], &err);
        net_port_parse("5353:5353/udp", &ports[1], &err);
        net_addr_parse("192.0.2.77", &host_addr);
        for (int i = 0; i < 16; i++)
                net_addr_parse(addrs[i], &addr_tab[i]);
}

/* drain a queue (or its first frame), checking every frame the engine made */
static void drain(struct netd_queue *q, bool one)
{
        if (q->len - q->off > NETD_QUEUE_MAX || q->len > q->cap)
                abort();
        while (q->len - q->off >= 4) {
                const uint8_t *b = q->buf + q->off;
                size_t n = (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | b[3];
                if (n > q->len - q->off - 4)
                        abort();
                struct pkt p;
                if (pkt_parse(b + 4, n, &p) != PKT_IP)
                        abort();
                if (p.family == 4 && csum_fold(csum_add(0, p.ip, 20)) != 0)
                        abort();
                uint32_t sum = p.proto == 1 ? 0 : csum_pseudo(p.family, &p.src, &p.dst, p.proto, p.l4_len);
                if (csum_fold(csum_add(sum, p.l4, p.l4_len)) != 0)
                        abort();
                q->off += 4 + n;
                if (one)
                        return;
        }
        if (q->off != q->len)
                abort();
}

static uint8_t frame[PKT_FRAME_MAX + 64], msg[65536 + 512];

static size_t build(uint8_t *f, const struct net_addr *src, const struct net_addr *dst, uint8_t proto,
                    const uint8_t *l4, size_t l4len)
{
        static const uint8_t mac1[6] = { 0x52, 0x54, 0, 1, 2, 3 }, mac2[6] = { 0x9a, 0x55, 0, 1, 2, 3 };
        size_t hl = src->family == 4 ? 20 : 40;
        if (src->family != dst->family || l4len > 65535 - hl)
                return 0;
        memcpy(f, mac2, 6);
        memcpy(f + 6, mac1, 6);
        uint8_t *ip = f + 14;
        memset(ip, 0, hl);
        if (src->family == 4) {
                put16(f + 12, ETHERTYPE_IPV4);
                ip[0] = 0x45;
                put16(ip + 2, (uint16_t)(20 + l4len));
                ip[8] = 64;
                ip[9] = proto;
                memcpy(ip + 12, src->a, 4);
                memcpy(ip + 16, dst->a, 4);
        } else {
                put16(f + 12, ETHERTYPE_IPV6);
                ip[0] = 0x60;
                put16(ip + 4, (uint16_t)l4len);
                ip[6] = proto;
                ip[7] = 64;
                memcpy(ip + 8, src->a, 16);
                memcpy(ip + 24, dst->a, 16);
        }
        memcpy(ip + hl, l4, l4len);
        return 14 + hl + l4len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        setup();
        if (size < 1)
                return 0;
        if (data[0] == 0xff) {
                char text[400];
                struct msb_error err;
                size_t n = size - 1 < sizeof(text) - 1 ? size - 1 : sizeof(text) - 1;
                memcpy(text, data + 1, n);
                text[n] = '\0';
                struct net_rule r;
                struct net_port p;
                if (net_rule_parse(text, &r, &err) < 0 && !memchr(err.message, '\0', sizeof(err.message)))
                        abort();
                net_port_parse(text, &p, &err);
                struct net_addr a;
                if (net_addr_parse(text, &a) == 1)
                        for (enum net_group g = NET_G_PUBLIC; g <= NET_G_ANY; g++)
                                net_group_has(NULL, g, &a);
                return 0;
        }
        static const enum net_mode modes[] = { NET_MODE_PUBLIC, NET_MODE_PRIVATE, NET_MODE_HOST, NET_MODE_ALL };
        struct net_config c = {
                .mode = modes[data[0] & 3],
                .rules = rules,
                .nrules = (data[0] & 4) ? 0 : sizeof(rules) / sizeof(rules[0]),
                .ports = ports,
                .nports = 2,
                .host_addrs = &host_addr,
                .nhost_addrs = 1,
                .mtu = (data[0] & 16) ? 65520 : 1500,
                .log = on_log,
                .send_upstream = on_upstream,
                .rng_seed = 1,
                /* small, so an engine per input stays cheap; 8 reaches eviction */
                .flow_max = (data[0] & 8) ? 8 : 512,
        };
        net_addr_parse("10.0.2.15", &c.guest4);
        net_addr_parse("10.0.2.2", &c.gw4);
        net_addr_parse("fd00:6d73:6200::15", &c.guest6);
        net_addr_parse("fd00:6d73:6200::2", &c.gw6);
        struct netd *n = netd_new(&c);
        lastq_len = 0;
        int64_t now = 0;
        size_t i = 1;
        while (i + 3 <= size) {
                uint8_t op = data[i];
                size_t len = (size_t)data[i + 1] << 8 | data[i + 2];
                i += 3;
                if (op % 6 == 3) {
                        now += (int64_t)len * 10;
                        if (!(op & 0x10))
                                netd_tick(n, now);
                        drain(netd_to_guest(n), op & 0x20);
                        drain(netd_to_stack(n), op & 0x20);
                        continue;
                }
                if (len > size - i)
                        len = size - i;
                const uint8_t *d = data + i;
                i += len;
                switch (op % 6) {
                case 0:
                        netd_from_guest(n, d, len, now);
                        break;
                case 1:
                        netd_from_stack(n, d, len, now);
                        break;
                case 2: {
                        size_t m = 0;
                        if ((op & 0x20) && len >= 12 && lastq_len >= 12) {
                                /* header, then the question sent last, then the rest */
                                struct dns_msg q;
                                memcpy(msg, d, 12);
                                m = 12;
                                if (dns_msg_parse(lastq, lastq_len, false, &q) == 1) {
                                        memcpy(msg + m, lastq + q.qwire, q.qwire_len);
                                        m += q.qwire_len;
                                }
                                memcpy(msg + m, d + 12, len - 12);
                                m += len - 12;
                        } else {
                                memcpy(msg, d, len);
                                m = len;
                        }
                        if ((op & 0x10) && m >= 2 && lastq_len >= 2)
                                memcpy(msg, lastq, 2);
                        netd_from_upstream(n, msg, m, now);
                        break;
                }
                case 4: {
                        uint8_t *u = msg;
                        if (len > 65535 - 48)
                                break;
                        put16(u, 33333);
                        put16(u + 2, 53);
                        put16(u + 4, (uint16_t)(8 + len));
                        put16(u + 6, 0);
                        memcpy(u + 8, d, len);
                        bool v6 = op & 0x10;
                        size_t fl = build(frame, v6 ? &c.guest6 : &c.guest4, v6 ? &c.gw6 : &c.gw4, 17, u, 8 + len);
                        netd_from_guest(n, frame, fl, now);
                        break;
                }
                case 5: {
                        if (len < 7)
                                break;
                        const struct net_addr *remote = &addr_tab[d[0] & 15];
                        const struct net_addr *guest = remote->family == 4 ? &c.guest4 : &c.guest6;
                        bool in = op & 0x10;
                        uint8_t proto = (d[1] & 3) == 0 ? 6 : (d[1] & 3) == 1 ? 17 : remote->family == 4 ? 1 : 58;
                        uint8_t *l4 = msg;
                        size_t pl = len - 7, l4len;
                        if (pl > 60000)
                                break;
                        memset(l4, 0, 20);
                        memcpy(l4, d + 2, 4); /* ports, or ICMP type/code/sum */
                        if (proto == 6) {
                                l4[12] = 5 << 4;
                                l4[13] = d[6];
                                memcpy(l4 + 20, d + 7, pl);
                                l4len = 20 + pl;
                        } else if (proto == 17) {
                                put16(l4 + 4, (uint16_t)(8 + pl));
                                memcpy(l4 + 8, d + 7, pl);
                                l4len = 8 + pl;
                        } else {
                                l4[0] = d[6];
                                memcpy(l4 + 4, d + 7, pl);
                                l4len = 4 + pl;
                        }
                        size_t fl = build(frame, in ? remote : guest, in ? guest : remote, proto, l4, l4len);
                        if (in)
                                netd_from_stack(n, frame, fl, now);
                        else
                                netd_from_guest(n, frame, fl, now);
                        break;
                }
                }
        }
        netd_tick(n, now + 3 * 3600 * 1000LL);
        drain(netd_to_guest(n), false);
        drain(netd_to_stack(n), false);
        struct netd_stats st;
        netd_stats(n, &st);
        netd_free(n);
        return 0;
}
