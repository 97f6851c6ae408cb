/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DNS messages (RFC 1035) as far as the policy engine needs them: the
 * header, one question, the resource records of an answer (names with
 * compression pointers), and the short replies the engine makes itself.
 * Private to src/net.  Messages come from the guest or upstream: untrusted.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/net.h"

#define DNS_HLEN 12
/* a name on the wire: at most 255 bytes (RFC 1035 2.3.4) */
#define DNS_WIRE_NAME_MAX 255
/* compression pointers followed in one name; each must also point before
 * the previous one, so this only bounds the work, loops are impossible */
#define DNS_PTR_MAX 64
/* records after a query's question: a stub resolver sends an EDNS0 OPT
 * record at most; a query with more is refused (FORMERR) unread */
#define DNS_QUERY_RR_MAX 8
/* RFC 1035 4.2.1: a UDP message is at most 512 bytes without EDNS0 */
#define DNS_UDP_MIN 512

#define DNS_QR 0x8000
#define DNS_TC 0x0200
#define DNS_RD 0x0100
#define DNS_RA 0x0080

enum dns_rcode { DNS_NOERROR = 0, DNS_FORMERR = 1, DNS_SERVFAIL = 2, DNS_NXDOMAIN = 3, DNS_REFUSED = 5 };
enum { DNS_T_A = 1, DNS_T_NS = 2, DNS_T_CNAME = 5, DNS_T_SOA = 6, DNS_T_AAAA = 28, DNS_T_DNAME = 39, DNS_T_OPT = 41 };

/* A name as text: lowercase, labels joined by ".", no trailing dot, "" for
 * the root.  A label holding ".", a space, a control or non-ASCII byte makes
 * the name "unusual" (those bytes show as "?"): such a name could read as a
 * different name in text, so no rule is ever matched against it. */
struct dns_name {
        char text[NET_NAME_MAX + 1];
        bool unusual;
};

struct dns_msg {
        const uint8_t *m; /* untrusted */
        size_t n;
        uint16_t id, flags, qdcount, ancount, nscount, arcount;
        /* the (first) question; qwire/qwire_len: its bytes in m (name, type, class) */
        struct dns_name qname;
        uint16_t qtype, qclass;
        size_t qwire, qwire_len;
        /* iteration over the records after the question */
        size_t off;
        unsigned rr_index;
};

struct dns_rr {
        unsigned section; /* 1 answer, 2 authority, 3 additional */
        struct dns_name owner;
        uint16_t type, class;
        uint32_t ttl; /* seconds, as the answer says */
        size_t rdoff, rdlen; /* rdata within the message */
};

/* Read a name at *off (advanced past it).  false: malformed (bad label
 * type, too long, a pointer out of bounds or not pointing backwards).
 * allow_ptr false: a pointer is malformed too (a query's question). */
bool dns_name_read(const uint8_t *m, size_t n, size_t *off, bool allow_ptr, struct dns_name *out);

/* Header and the first question.  -1: shorter than a header; 0: header
 * read but the rest is malformed (or qdcount is not 1); 1: both read. */
int dns_msg_parse(const uint8_t *m, size_t n, bool allow_ptr, struct dns_msg *d);
/* The next resource record after the question: 1 one read, 0 no more, -1 malformed. */
int dns_rr_next(struct dns_msg *d, struct dns_rr *rr);

/* The UDP payload size the asker can take: 512, or its EDNS0 OPT record's
 * (at least 512); -1 if the records after the question are malformed or
 * more than DNS_QUERY_RR_MAX. */
int dns_query_udp_max(struct dns_msg *d);

/* A reply with only a header and the question qwire (may be NULL, then no
 * question): id, QR, the RD bit of query_flags, RA, rcode, and TC when tc. */
size_t dns_build_reply(uint16_t id, uint16_t query_flags, enum dns_rcode rcode, bool tc, const uint8_t *qwire,
                       size_t qwire_len, uint8_t *out, size_t outsz);

/* "A", "AAAA", ..., or "TYPE65280" (buf is used for the last) */
const char *dns_type_name(uint16_t type, char *buf, size_t bufsz);
