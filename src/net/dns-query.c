/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest's DNS questions to the gateway: refused (unusual names, the
 * reverse zones of what the guest may not reach), denied by a name rule,
 * or sent upstream under a fresh id and remembered until answered or
 * NETD_DNS_TIMEOUT_MS; and the answers of our own sent back to the guest.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "net/engine.h"

static void dns_peer_of(const struct pkt *p, struct dns_peer *peer)
{
        peer->guest = p->src;
        peer->gw = p->dst;
        peer->port = p->sport;
        memcpy(peer->guest_mac, p->frame + 6, 6);
        memcpy(peer->gw_mac, p->frame, 6);
}

void dnsq_send(struct netd *n, const struct dns_peer *peer, const uint8_t *msg, size_t len)
{
        size_t fl = pkt_build_udp(peer->guest_mac, peer->gw_mac, &peer->gw, &peer->guest, 53, peer->port, msg, len,
                                  n->scratch, sizeof(n->scratch));
        netd_queue_push(&n->to_guest, n->scratch, fl);
}

void dnsq_reply(struct netd *n, const struct dns_peer *peer, uint16_t id, uint16_t flags, enum dns_rcode rc,
                bool tc, const uint8_t *qwire, size_t qwire_len)
{
        uint8_t msg[DNS_HLEN + DNS_WIRE_NAME_MAX + 4];
        size_t len = dns_build_reply(id, flags, rc, tc, qwire, qwire_len, msg, sizeof(msg));
        dnsq_send(n, peer, msg, len);
}

static bool name_rule_matches(const struct net_rule *r, const char *name)
{
        if (r->kind == NET_T_DOMAIN)
                return strcmp(r->name, name) == 0;
        /* *.suffix: proper subdomains only */
        size_t nl = strlen(name), sl = strlen(r->name);
        return nl > sl + 1 && name[nl - sl - 1] == '.' && strcmp(name + nl - sl, r->name) == 0;
}

/*
 * The address a reverse name names (d.c.b.a.in-addr.arpa, nibbles of
 * .ip6.arpa) and how many of its bits the name gives: "10.in-addr.arpa" is
 * 10.0.0.0/8, a zone.  A label that is not an octet or a nibble ends the
 * address there (RFC 2317's "0/25" labels among them).  False for a name
 * outside both zones.
 */
bool dnsq_reverse_addr(const char *name, struct net_addr *a, unsigned *ret_bits)
{
        static const char z4[] = "in-addr.arpa", z6[] = "ip6.arpa";
        size_t len = strlen(name);
        memset(a, 0, sizeof(*a));
        const char *zone = NULL;
        if (len >= sizeof(z4) - 1 && !strcasecmp(name + len - (sizeof(z4) - 1), z4))
                zone = z4, a->family = 4;
        else if (len >= sizeof(z6) - 1 && !strcasecmp(name + len - (sizeof(z6) - 1), z6))
                zone = z6, a->family = 6;
        size_t end = zone ? len - strlen(zone) : 0; /* the labels before the zone, right to left */
        if (!zone || (end > 0 && name[end - 1] != '.'))
                return false;
        unsigned k = 0, max = a->family == 4 ? 4 : 32;
        while (end > 1 && k < max) {
                size_t start = end - 1;
                while (start > 0 && name[start - 1] != '.')
                        start--;
                const char *l = name + start;
                size_t ll = end - 1 - start;
                char *e;
                unsigned long v = a->family == 4 ? strtoul(l, &e, 10) : strtoul(l, &e, 16);
                if (ll == 0 || (size_t)(e - l) != ll || (a->family == 4 ? ll > 3 || v > 255 : ll != 1))
                        break;
                if (a->family == 4)
                        a->a[k] = (uint8_t)v;
                else
                        a->a[k / 2] |= (uint8_t)(k % 2 ? v : v << 4);
                k++;
                end = start;
        }
        *ret_bits = a->family == 4 ? k * 8 : k * 4;
        return true;
}

/* A reverse name the guest may not look up, nor get in an answer: a full
 * one of an address it may not reach; a partial one (a zone, RFC 2317's
 * classless names) likewise when its range is all public, and otherwise
 * unless its first address is a non-public one the guest may reach (a rule
 * or mode for that range: 9.10.in-addr.arpa with allow@10.9.0.0/16).
 * 172.in-addr.arpa, which holds 172.16/12, is refused even where private
 * addresses are allowed. */
bool dnsq_reverse_refused(const struct netd *n, const char *name)
{
        struct net_addr ra;
        unsigned bits;
        if (!dnsq_reverse_addr(name, &ra, &bits))
                return false;
        bool reach = policy_egress_reaches(n, &ra);
        if (bits == (ra.family == 4 ? 32u : 128u) || net_prefix_all_public(&n->c, &ra, bits))
                return !reach;
        return !reach || net_group_has(&n->c, NET_G_PUBLIC, &ra);
}

/* query_rule's answer for a name a deny rule names */
#define RULE_DENIED (-2)

/* The name rule that allows the question (or -1: none names it), or
 * RULE_DENIED when the first that names it denies it (counted and logged) */
static int query_rule(struct netd *n, const struct dns_msg *d)
{
        char tb[16];
        const char *tname = dns_type_name(d->qtype, tb, sizeof(tb));
        for (size_t i = 0; i < n->c.nrules; i++) {
                const struct net_rule *nr = &n->c.rules[i];
                if (nr->dir == NET_DIR_INGRESS || (nr->kind != NET_T_DOMAIN && nr->kind != NET_T_WILDCARD) ||
                    !name_rule_matches(nr, d->qname.text))
                        continue;
                if (!nr->allow) {
                        n->st.dns_denied++;
                        netd_log(n, "dns deny %s %s (rule %zu \"%s\")", d->qname.text, tname, i + 1, nr->text);
                        return RULE_DENIED;
                }
                return (int)i;
        }
        return -1;
}

/* Send the question d upstream under a fresh id, remembered until its
 * answer or NETD_DNS_TIMEOUT_MS; SERVFAIL when there is no upstream or no
 * room to remember it */
static void query_upstream(struct netd *n, const struct pkt *p, const struct dns_msg *d, const struct dns_peer *peer,
                           int rule, int udp_max, int64_t now)
{
        char tb[16];
        const char *tname = dns_type_name(d->qtype, tb, sizeof(tb));
        const uint8_t *qwire = d->m + d->qwire;
        struct pending *pe = NULL;
        for (size_t i = 0; i < NETD_DNS_PENDING_MAX && !pe; i++)
                if (!n->pend[i].used)
                        pe = &n->pend[i];
        if (!pe || !n->c.send_upstream) {
                netd_log(n, "dns servfail %s %s: %s", d->qname.text, tname,
                         pe ? "no upstream resolver" : "too many queries waiting for upstream");
                dnsq_reply(n, peer, d->id, d->flags, DNS_SERVFAIL, false, qwire, d->qwire_len);
                return;
        }
        /* a fresh id, unique among those waiting: answers are matched by it */
        uint16_t id = 0;
        for (bool clash = true; clash;) {
                id = (uint16_t)netd_rng(n);
                clash = false;
                for (size_t i = 0; i < NETD_DNS_PENDING_MAX && !clash; i++)
                        clash = n->pend[i].used && n->pend[i].up_id == id;
        }
        *pe = (struct pending){
                .used = true, .up_id = id, .guest_id = d->id, .guest_flags = d->flags, .peer = *peer,
                .name = d->qname, .qtype = d->qtype, .qclass = d->qclass, .qwire_len = d->qwire_len,
                .rule = rule, .deadline = now + NETD_DNS_TIMEOUT_MS,
        };
        memcpy(pe->qwire, qwire, d->qwire_len);
        /* what the guest can take: its EDNS0 size, at most a frame of the MTU */
        unsigned link = n->c.mtu > (p->family == 4 ? 28u : 48u) ? n->c.mtu - (p->family == 4 ? 28u : 48u) : 0;
        pe->udp_max = (unsigned)udp_max < link ? (unsigned)udp_max : link;
        if (pe->udp_max < DNS_UDP_MIN)
                pe->udp_max = DNS_UDP_MIN;
        memcpy(n->scratch, p->payload, p->payload_len);
        put16(n->scratch, id);
        n->c.send_upstream(n->c.opaque, n->scratch, p->payload_len);
}

void dnsq_query(struct netd *n, const struct pkt *p, int64_t now)
{
        struct dns_peer peer;
        struct dns_msg d;
        char tb[16];
        dns_peer_of(p, &peer);
        n->st.dns_queries++;
        int r = dns_msg_parse(p->payload, p->payload_len, false, &d);
        if (r < 0) {
                n->st.dropped_malformed++;
                return;
        }
        int udp_max = r > 0 ? dns_query_udp_max(&d) : -1;
        if (r == 0 || udp_max < 0 || (d.flags & DNS_QR) || ((d.flags >> 11) & 15) != 0) {
                dnsq_reply(n, &peer, d.id, d.flags, DNS_FORMERR, false, NULL, 0);
                return;
        }
        const uint8_t *qwire = d.m + d.qwire;
        const char *tname = dns_type_name(d.qtype, tb, sizeof(tb));
        if (d.qname.unusual) {
                netd_log(n, "dns refuse %s %s: a label holds dots, spaces or control bytes", d.qname.text, tname);
                dnsq_reply(n, &peer, d.id, d.flags, DNS_REFUSED, false, qwire, d.qwire_len);
                return;
        }
        /* no walking of the reverse zones of what the guest may not reach
         * (a split-horizon resolver's 10/8): refused whatever the type */
        if (dnsq_reverse_refused(n, d.qname.text)) {
                n->st.dns_denied++;
                netd_log(n, "dns refuse %s %s: a reverse lookup of an address this sandbox may not reach", d.qname.text,
                         tname);
                dnsq_reply(n, &peer, d.id, d.flags, DNS_REFUSED, false, qwire, d.qwire_len);
                return;
        }
        int rule = query_rule(n, &d);
        if (rule == RULE_DENIED) {
                dnsq_reply(n, &peer, d.id, d.flags, DNS_NXDOMAIN, false, qwire, d.qwire_len);
                return;
        }
        query_upstream(n, p, &d, &peer, rule, udp_max, now);
}

int64_t dnsq_expire(struct netd *n, int64_t now)
{
        int64_t next = -1;
        for (size_t i = 0; i < NETD_DNS_PENDING_MAX; i++) {
                struct pending *pe = &n->pend[i];
                if (!pe->used)
                        continue;
                if (now >= pe->deadline) {
                        char tb[16];
                        pe->used = false;
                        netd_log(n, "dns servfail %s %s: no answer from upstream", pe->name.text,
                                 dns_type_name(pe->qtype, tb, sizeof(tb)));
                        dnsq_reply(n, &pe->peer, pe->guest_id, pe->guest_flags, DNS_SERVFAIL, false, pe->qwire,
                                   pe->qwire_len);
                } else if (next < 0 || pe->deadline < next) {
                        next = pe->deadline;
                }
        }
        return next;
}
