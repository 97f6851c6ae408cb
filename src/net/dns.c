/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DNS message parsing and the engine's own replies.  Names are read
 * iteratively (never recursively); a compression pointer must point before
 * every byte of the name read so far, so a name ends after at most
 * DNS_PTR_MAX jumps and can never loop.
 */
#include <stdio.h>
#include <string.h>

#include "net/dns.h"
#include "net/packet.h"

bool dns_name_read(const uint8_t *m, size_t n, size_t *off, bool allow_ptr, struct dns_name *out)
{
        size_t pos = *off, end = 0, low = *off, text = 0, wire = 0;
        unsigned jumps = 0;
        bool jumped = false;
        out->unusual = false;
        out->text[0] = '\0';
        for (;;) {
                if (pos >= n)
                        return false;
                uint8_t len = m[pos];
                if ((len & 0xc0) == 0xc0) {
                        if (!allow_ptr || pos + 1 >= n || ++jumps > DNS_PTR_MAX)
                                return false;
                        size_t target = (size_t)(len & 0x3f) << 8 | m[pos + 1];
                        if (!jumped)
                                end = pos + 2;
                        jumped = true;
                        /* strictly backwards from everything read: no loops */
                        if (target >= low)
                                return false;
                        low = pos = target;
                        continue;
                }
                if (len & 0xc0) /* 0x40, 0x80: obsolete/unknown label types */
                        return false;
                wire += 1u + len;
                if (wire > DNS_WIRE_NAME_MAX)
                        return false;
                if (len == 0) {
                        if (!jumped)
                                end = pos + 1;
                        break;
                }
                if (len > n - pos - 1)
                        return false;
                if (text)
                        out->text[text++] = '.';
                for (size_t i = 0; i < len; i++) {
                        uint8_t ch = m[pos + 1 + i];
                        if (ch >= 'A' && ch <= 'Z')
                                ch = (uint8_t)(ch - 'A' + 'a');
                        if (ch == '.' || ch <= ' ' || ch >= 0x7f) {
                                out->unusual = true;
                                ch = '?';
                        }
                        out->text[text++] = (char)ch;
                }
                pos += 1u + len;
        }
        /* wire <= 255 keeps text <= 253 (NET_NAME_MAX) */
        out->text[text] = '\0';
        *off = end;
        return true;
}

int dns_msg_parse(const uint8_t *m, size_t n, bool allow_ptr, struct dns_msg *d)
{
        memset(d, 0, sizeof(*d));
        d->m = m;
        d->n = n;
        struct cur c = { m, n, 0 };
        if (!cur_u16(&c, &d->id) || !cur_u16(&c, &d->flags) || !cur_u16(&c, &d->qdcount) ||
            !cur_u16(&c, &d->ancount) || !cur_u16(&c, &d->nscount) || !cur_u16(&c, &d->arcount))
                return -1;
        if (d->qdcount != 1)
                return 0;
        size_t off = c.off;
        d->qwire = off;
        if (!dns_name_read(m, n, &off, allow_ptr, &d->qname))
                return 0;
        c.off = off;
        if (!cur_u16(&c, &d->qtype) || !cur_u16(&c, &d->qclass))
                return 0;
        d->qwire_len = c.off - d->qwire;
        d->off = c.off;
        return 1;
}

int dns_rr_next(struct dns_msg *d, struct dns_rr *rr)
{
        unsigned total = (unsigned)d->ancount + d->nscount + d->arcount;
        if (d->rr_index >= total)
                return 0;
        unsigned i = d->rr_index++;
        rr->section = i < d->ancount ? 1 : i < (unsigned)d->ancount + d->nscount ? 2 : 3;
        size_t off = d->off;
        if (!dns_name_read(d->m, d->n, &off, true, &rr->owner))
                return -1;
        struct cur c = { d->m, d->n, off };
        uint16_t rdlen;
        if (!cur_u16(&c, &rr->type) || !cur_u16(&c, &rr->class) || !cur_u32(&c, &rr->ttl) || !cur_u16(&c, &rdlen))
                return -1;
        rr->rdoff = c.off;
        rr->rdlen = rdlen;
        if (!cur_skip(&c, rdlen))
                return -1;
        d->off = c.off;
        return 1;
}

int dns_query_udp_max(struct dns_msg *d)
{
        int max = DNS_UDP_MIN;
        if ((unsigned)d->ancount + d->nscount + d->arcount > DNS_QUERY_RR_MAX)
                return -1;
        struct dns_rr rr;
        int r;
        while ((r = dns_rr_next(d, &rr)) > 0)
                if (rr.section == 3 && rr.type == DNS_T_OPT && rr.owner.text[0] == '\0' && rr.class > max)
                        max = rr.class;
        return r < 0 ? -1 : max;
}

size_t dns_build_reply(uint16_t id, uint16_t query_flags, enum dns_rcode rcode, bool tc, const uint8_t *qwire,
                       size_t qwire_len, uint8_t *out, size_t outsz)
{
        if (!qwire)
                qwire_len = 0;
        if (outsz < DNS_HLEN + qwire_len)
                return 0;
        uint16_t flags = (uint16_t)(DNS_QR | (query_flags & DNS_RD) | DNS_RA | (rcode & 15) | (tc ? DNS_TC : 0));
        memset(out, 0, DNS_HLEN);
        put16(out, id);
        put16(out + 2, flags);
        put16(out + 4, qwire_len ? 1 : 0);
        if (qwire_len)
                memcpy(out + DNS_HLEN, qwire, qwire_len);
        return DNS_HLEN + qwire_len;
}

const char *dns_type_name(uint16_t type, char *buf, size_t bufsz)
{
        static const struct {
                uint16_t t;
                const char *name;
        } names[] = {
                { 1, "A" },     { 2, "NS" },     { 5, "CNAME" }, { 6, "SOA" },   { 12, "PTR" },   { 15, "MX" },
                { 16, "TXT" },  { 28, "AAAA" },  { 33, "SRV" },  { 35, "NAPTR" }, { 64, "SVCB" }, { 65, "HTTPS" },
                { 255, "ANY" },
        };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (names[i].t == type)
                        return names[i].name;
        snprintf(buf, bufsz, "TYPE%u", type);
        return buf;
}
