/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ethernet/IPv4/IPv6/TCP/UDP/ICMP parsing for the policy engine, and the
 * frames it answers with.  Every byte parsed here comes from a guest (or
 * passt, which relays the outside world) and is read through struct cur or
 * after an explicit length check; no frame is ever cast to a struct.
 */
#include <string.h>

#include "net/packet.h"

static enum pkt_kind parse_l4(struct pkt *p, const uint8_t *l4, size_t n)
{
        struct cur c = { l4, n, 0 };
        p->l4 = l4;
        p->l4_len = n;
        switch (p->proto) {
        case IPPROTO_TCP_: {
                uint8_t off, flags;
                if (!cur_u16(&c, &p->sport) || !cur_u16(&c, &p->dport) || !cur_u32(&c, &p->seq) ||
                    !cur_u32(&c, &p->ack) || !cur_u8(&c, &off) || !cur_u8(&c, &flags))
                        return PKT_BAD;
                size_t hl = (size_t)(off >> 4) * 4;
                if (hl < 20 || hl > n)
                        return PKT_BAD;
                p->tcp_flags = flags;
                p->payload = l4 + hl;
                p->payload_len = n - hl;
                return PKT_IP;
        }
        case IPPROTO_UDP_: {
                uint16_t ulen;
                if (!cur_u16(&c, &p->sport) || !cur_u16(&c, &p->dport) || !cur_u16(&c, &ulen))
                        return PKT_BAD;
                /* the UDP length may be shorter than the IP payload, never longer */
                if (ulen < 8 || ulen > n)
                        return PKT_BAD;
                p->l4_len = ulen;
                p->payload = l4 + 8;
                p->payload_len = ulen - 8u;
                return PKT_IP;
        }
        case IPPROTO_ICMP_:
        case IPPROTO_ICMPV6_: {
                uint16_t sum;
                if (!cur_u8(&c, &p->icmp_type) || !cur_u8(&c, &p->icmp_code) || !cur_u16(&c, &sum))
                        return PKT_BAD;
                bool echo = p->proto == IPPROTO_ICMP_ ? (p->icmp_type == 8 || p->icmp_type == 0)
                                                       : (p->icmp_type == 128 || p->icmp_type == 129);
                if (echo && !cur_u16(&c, &p->icmp_id))
                        return PKT_BAD;
                return PKT_IP;
        }
        }
        return PKT_UNSUPPORTED;
}

static enum pkt_kind parse_v4(struct pkt *p, const uint8_t *ip, size_t n)
{
        if (n < 20)
                return PKT_BAD;
        size_t ihl = (size_t)(ip[0] & 15) * 4;
        size_t total = get16(ip + 2);
        if ((ip[0] >> 4) != 4 || ihl < 20 || ihl > total || total > n)
                return PKT_BAD;
        p->family = 4;
        p->ip = ip;
        p->ip_len = total;
        p->src.family = p->dst.family = 4;
        memcpy(p->src.a, ip + 12, 4);
        memcpy(p->dst.a, ip + 16, 4);
        p->proto = ip[9];
        /* fragments (MF set or an offset): the transport header may be
         * missing or split, so no policy could be applied to them */
        if (get16(ip + 6) & 0x3fff)
                return PKT_UNSUPPORTED;
        return parse_l4(p, ip + ihl, total - ihl);
}

static enum pkt_kind parse_v6(struct pkt *p, const uint8_t *ip, size_t n)
{
        if (n < 40 || (ip[0] >> 4) != 6)
                return PKT_BAD;
        size_t plen = get16(ip + 4);
        if (plen > n - 40)
                return PKT_BAD;
        p->family = 6;
        p->ip = ip;
        p->ip_len = 40 + plen;
        p->src.family = p->dst.family = 6;
        memcpy(p->src.a, ip + 8, 16);
        memcpy(p->dst.a, ip + 24, 16);
        /* No extension headers at all.  passt (bookworm's and later) takes
         * the transport header to be the last extension header, so a guest
         * could show us one port and passt another; the guest's own TCP,
         * UDP and ICMPv6 never need them (MLD's hop-by-hop header included:
         * passt ignores MLD). */
        uint8_t next = ip[6];
        if (next == 0 || next == 43 || next == 44 || next == 60 || next == 51 || next == 50 || next == 135 ||
            next == 139 || next == 140)
                return PKT_UNSUPPORTED;
        p->proto = next;
        return parse_l4(p, ip + 40, plen);
}

enum pkt_kind pkt_parse(const uint8_t *f, size_t len, struct pkt *p)
{
        memset(p, 0, sizeof(*p));
        p->frame = f;
        p->frame_len = len;
        if (len < ETH_HLEN || len > PKT_FRAME_MAX)
                return PKT_BAD;
        uint16_t type = get16(f + 12);
        const uint8_t *l3 = f + ETH_HLEN;
        size_t n = len - ETH_HLEN;
        switch (type) {
        case ETHERTYPE_ARP:
                /* Ethernet (1), IPv4 (0x0800), hlen 6, plen 4: 28 bytes */
                if (n < 28 || get16(l3) != 1 || get16(l3 + 2) != ETHERTYPE_IPV4 || l3[4] != 6 || l3[5] != 4)
                        return PKT_BAD;
                return PKT_ARP;
        case ETHERTYPE_IPV4:
                return parse_v4(p, l3, n);
        case ETHERTYPE_IPV6:
                return parse_v6(p, l3, n);
        }
        return PKT_UNSUPPORTED;
}

/* ---- checksums ---- */

uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
        /* 32-bit accumulator; folded every step so no input length overflows it */
        for (size_t i = 0; i + 1 < n; i += 2) {
                sum += (uint32_t)(p[i] << 8 | p[i + 1]);
                sum = (sum & 0xffff) + (sum >> 16);
        }
        if (n & 1) {
                sum += (uint32_t)p[n - 1] << 8;
                sum = (sum & 0xffff) + (sum >> 16);
        }
        return sum;
}

uint16_t csum_fold(uint32_t sum)
{
        while (sum >> 16)
                sum = (sum & 0xffff) + (sum >> 16);
        return (uint16_t)~sum;
}

uint32_t csum_pseudo(uint8_t family, const struct net_addr *src, const struct net_addr *dst, uint8_t proto,
                     size_t len)
{
        size_t alen = family == 4 ? 4 : 16;
        uint8_t tail[8] = {0};
        uint32_t sum = csum_add(0, src->a, alen);
        sum = csum_add(sum, dst->a, alen);
        if (family == 4) {
                tail[1] = proto;
                put16(tail + 2, (uint16_t)len);
                return csum_add(sum, tail, 4);
        }
        put32(tail, (uint32_t)len);
        tail[7] = proto;
        return csum_add(sum, tail, 8);
}

/* ---- builders ---- */

/* Ethernet + IP header for a datagram of l4len transport bytes; returns the
 * offset of the transport header, 0 if it does not fit. */
static size_t put_headers(uint8_t *out, size_t outsz, const uint8_t dst_mac[6], const uint8_t src_mac[6],
                          const struct net_addr *src, const struct net_addr *dst, uint8_t proto, size_t l4len)
{
        size_t hl = src->family == 4 ? 20 : 40;
        if (src->family != dst->family || (src->family != 4 && src->family != 6) || l4len > 65535 - 40 ||
            outsz < ETH_HLEN + hl + l4len)
                return 0;
        memcpy(out, dst_mac, 6);
        memcpy(out + 6, src_mac, 6);
        put16(out + 12, src->family == 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6);
        uint8_t *ip = out + ETH_HLEN;
        memset(ip, 0, hl);
        if (src->family == 4) {
                ip[0] = 0x45;
                put16(ip + 2, (uint16_t)(hl + l4len));
                put16(ip + 6, 0x4000); /* DF */
                ip[8] = 64;
                ip[9] = proto;
                memcpy(ip + 12, src->a, 4);
                memcpy(ip + 16, dst->a, 4);
                put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
        } else {
                ip[0] = 0x60;
                put16(ip + 4, (uint16_t)l4len);
                ip[6] = proto;
                ip[7] = 64;
                memcpy(ip + 8, src->a, 16);
                memcpy(ip + 24, dst->a, 16);
        }
        return ETH_HLEN + hl;
}

size_t pkt_build_rst(const struct pkt *in, uint8_t *out, size_t outsz)
{
        if (in->proto != IPPROTO_TCP_ || (in->tcp_flags & TCP_RST))
                return 0;
        size_t o = put_headers(out, outsz, in->frame + 6, in->frame, &in->dst, &in->src, IPPROTO_TCP_, 20);
        if (!o)
                return 0;
        uint8_t *t = out + o;
        memset(t, 0, 20);
        put16(t, in->dport);
        put16(t + 2, in->sport);
        if (in->tcp_flags & TCP_ACK) {
                put32(t + 4, in->ack);
                t[13] = TCP_RST;
        } else {
                uint32_t len = (uint32_t)in->payload_len + !!(in->tcp_flags & TCP_SYN) + !!(in->tcp_flags & TCP_FIN);
                put32(t + 8, in->seq + len);
                t[13] = TCP_RST | TCP_ACK;
        }
        t[12] = 5 << 4;
        put16(t + 16, csum_fold(csum_add(csum_pseudo(in->family, &in->dst, &in->src, IPPROTO_TCP_, 20), t, 20)));
        return o + 20;
}

/* RFC 1812 4.3.2.3: quote as much as fits in 576 bytes; RFC 4443 2.4(c):
 * as much as fits in the IPv6 minimum MTU of 1280 */
#define QUOTE4_MAX (576 - 20 - 8)
#define QUOTE6_MAX (1280 - 40 - 8)

size_t pkt_build_unreach(const struct pkt *in, const struct net_addr *from, uint8_t *out, size_t outsz)
{
        if (from->family != in->family)
                return 0;
        size_t q = in->ip_len;
        if (q > (in->family == 4 ? QUOTE4_MAX : QUOTE6_MAX))
                q = in->family == 4 ? QUOTE4_MAX : QUOTE6_MAX;
        uint8_t proto = in->family == 4 ? IPPROTO_ICMP_ : IPPROTO_ICMPV6_;
        size_t o = put_headers(out, outsz, in->frame + 6, in->frame, from, &in->src, proto, 8 + q);
        if (!o)
                return 0;
        uint8_t *icmp = out + o;
        memset(icmp, 0, 8);
        icmp[0] = in->family == 4 ? 3 : 1;
        icmp[1] = in->family == 4 ? 13 : 1;
        memcpy(icmp + 8, in->ip, q);
        uint32_t sum = in->family == 4 ? 0 : csum_pseudo(6, from, &in->src, proto, 8 + q);
        put16(icmp + 2, csum_fold(csum_add(sum, icmp, 8 + q)));
        return o + 8 + q;
}

size_t pkt_build_udp(const uint8_t dst_mac[6], const uint8_t src_mac[6], const struct net_addr *src,
                     const struct net_addr *dst, uint16_t sport, uint16_t dport, const uint8_t *payload,
                     size_t n, uint8_t *out, size_t outsz)
{
        size_t o = put_headers(out, outsz, dst_mac, src_mac, src, dst, IPPROTO_UDP_, 8 + n);
        if (!o)
                return 0;
        uint8_t *u = out + o;
        put16(u, sport);
        put16(u + 2, dport);
        put16(u + 4, (uint16_t)(8 + n));
        put16(u + 6, 0);
        memcpy(u + 8, payload, n);
        uint16_t sum = csum_fold(csum_add(csum_pseudo(src->family, src, dst, IPPROTO_UDP_, 8 + n), u, 8 + n));
        put16(u + 6, sum ? sum : 0xffff); /* 0 means "no checksum" in UDP */
        return o + 8 + n;
}
