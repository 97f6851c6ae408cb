/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Frames as the policy engine sees them: a bounds-checked reader, the parse
 * of one Ethernet frame down to its transport header, and builders for the
 * frames the engine sends itself (TCP resets, ICMP unreachables, DNS answers
 * over UDP).  Private to src/net; the unit tests use it to check checksums.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/net.h"

/* Bounds-checked reader over untrusted bytes: every read says whether it fit. */
struct cur {
        const uint8_t *p;
        size_t len, off;
};
static inline bool cur_u8(struct cur *c, uint8_t *v)
{
        if (c->len - c->off < 1)
                return false;
        *v = c->p[c->off++];
        return true;
}
static inline bool cur_u16(struct cur *c, uint16_t *v)
{
        if (c->len - c->off < 2)
                return false;
        *v = (uint16_t)(c->p[c->off] << 8 | c->p[c->off + 1]);
        c->off += 2;
        return true;
}
static inline bool cur_u32(struct cur *c, uint32_t *v)
{
        if (c->len - c->off < 4)
                return false;
        const uint8_t *b = c->p + c->off;
        *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        c->off += 4;
        return true;
}
static inline bool cur_skip(struct cur *c, size_t n)
{
        if (c->len - c->off < n)
                return false;
        c->off += n;
        return true;
}
static inline uint16_t get16(const uint8_t *p)
{
        return (uint16_t)(p[0] << 8 | p[1]);
}
static inline void put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
}
static inline void put32(uint8_t *p, uint32_t v)
{
        put16(p, (uint16_t)(v >> 16));
        put16(p + 2, (uint16_t)v);
}

#define ETH_HLEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP 0x0806
#define ETHERTYPE_IPV6 0x86dd
#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ICMPV6_ 58
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10
/* IPv6 extension headers walked before giving up: real stacks send one or
 * two; a chain longer than this is an attempt to hide the transport header */
/* the largest frame accepted: an IP datagram of 64 KiB plus Ethernet */
#define PKT_FRAME_MAX (65535 + ETH_HLEN)

enum pkt_kind {
        PKT_BAD,         /* truncated or inconsistent: counted as malformed */
        PKT_ARP,         /* well-formed ARP for IPv4 over Ethernet */
        PKT_IP,          /* IPv4/IPv6 with a TCP, UDP, ICMP or ICMPv6 header */
        PKT_UNSUPPORTED, /* VLAN, other ethertypes, fragments, other protocols */
};

struct pkt {
        const uint8_t *frame; /* untrusted */
        size_t frame_len;
        uint8_t family; /* 4 or 6 */
        const uint8_t *ip; /* the IP header; ip_len is as the header says (padding cut) */
        size_t ip_len;
        struct net_addr src, dst;
        uint8_t proto; /* IPPROTO_* above */
        const uint8_t *l4;
        size_t l4_len;
        uint16_t sport, dport;         /* TCP/UDP */
        uint8_t tcp_flags;             /* TCP */
        uint32_t seq, ack;             /* TCP */
        uint8_t icmp_type, icmp_code;  /* ICMP/ICMPv6 */
        uint16_t icmp_id;              /* echo request/reply */
        const uint8_t *payload;        /* TCP/UDP payload */
        size_t payload_len;
};

enum pkt_kind pkt_parse(const uint8_t *f, size_t len, struct pkt *p);

/* Internet checksum pieces (RFC 1071) */
uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n);
uint16_t csum_fold(uint32_t sum);
/* the sum of the TCP/UDP/ICMPv6 pseudo-header */
uint32_t csum_pseudo(uint8_t family, const struct net_addr *src, const struct net_addr *dst, uint8_t proto,
                     size_t len);

/* Builders: write a whole Ethernet frame to out and return its length, or
 * 0 if it does not fit in outsz (or the input cannot be answered). */

/* the reset for a TCP segment (RFC 9293 3.10.7.1), back to its sender */
size_t pkt_build_rst(const struct pkt *in, uint8_t *out, size_t outsz);
/* ICMP destination unreachable, administratively prohibited (v4 3/13, v6
 * 1/1), from `from`, quoting as much of `in` as the minimum MTU allows */
size_t pkt_build_unreach(const struct pkt *in, const struct net_addr *from, uint8_t *out, size_t outsz);
/* a UDP datagram */
size_t pkt_build_udp(const uint8_t dst_mac[6], const uint8_t src_mac[6], const struct net_addr *src,
                     const struct net_addr *dst, uint16_t sport, uint16_t dport, const uint8_t *payload,
                     size_t n, uint8_t *out, size_t outsz);
