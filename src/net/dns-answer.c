/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Upstream's answers: matched to a question waiting (anti-spoofing),
 * checked (reverse names the guest may not walk, rebinding to addresses
 * it may not reach), learned from when a name rule allowed the question,
 * and forwarded to the guest (truncated when too big for it).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "net/engine.h"

/* names followed through CNAMEs in one answer when deciding which
 * addresses belong to the name asked (and are learned) */
#define CHAIN_MAX 8

static bool chain_has(char chain[][NET_NAME_MAX + 1], size_t nchain, const struct dns_name *nm)
{
        if (nm->unusual)
                return false;
        for (size_t i = 0; i < nchain; i++)
                if (strcmp(chain[i], nm->text) == 0)
                        return true;
        return false;
}

/* The names the answer is about: the question, and the CNAME targets
 * reached from it.  false: a record is malformed. */
static bool answer_chain(const struct dns_msg *hdr, char chain[][NET_NAME_MAX + 1], size_t *nchain)
{
        snprintf(chain[0], NET_NAME_MAX + 1, "%s", hdr->qname.text);
        *nchain = 1;
        for (size_t pass = 0; pass < CHAIN_MAX; pass++) {
                size_t before = *nchain;
                struct dns_msg d = *hdr;
                struct dns_rr rr;
                int r;
                while ((r = dns_rr_next(&d, &rr)) > 0) {
                        if (rr.section != 1 || rr.type != DNS_T_CNAME || !chain_has(chain, *nchain, &rr.owner))
                                continue;
                        struct dns_name target;
                        size_t off = rr.rdoff;
                        if (!dns_name_read(d.m, rr.rdoff + rr.rdlen, &off, true, &target))
                                return false;
                        if (!target.unusual && !chain_has(chain, *nchain, &target) && *nchain < CHAIN_MAX)
                                snprintf(chain[(*nchain)++], NET_NAME_MAX + 1, "%s", target.text);
                }
                if (r < 0)
                        return false;
                if (*nchain == before)
                        break;
        }
        return true;
}

/* name is q's parent zone or one above it (q "9.10.in-addr.arpa", name
 * "10.in-addr.arpa") */
static bool ancestor_of(const char *name, const char *q)
{
        size_t nl = strlen(name), ql = strlen(q);
        return ql > nl && q[ql - nl - 1] == '.' && strcmp(q + ql - nl, name) == 0;
}

/* RFC 2317's classless delegation of q's own address, q a full IPv4 reverse
 * name "D.C.B.A.in-addr.arpa": "D.X.C.B.A.in-addr.arpa" for one label X
 * that is not an octet (0-25, 0/25), or with apex its zone "X.C.B.A...". */
static bool classless_of(const char *name, const char *q, bool apex)
{
        struct net_addr a;
        unsigned bits;
        const char *rest = strchr(q, '.');
        if (!rest || !dnsq_reverse_addr(q, &a, &bits) || a.family != 4 || bits != 32)
                return false;
        size_t first = (size_t)(rest - q) + 1, rl = strlen(rest);
        if (!apex) {
                if (strncmp(name, q, first) != 0)
                        return false;
                name += first;
        }
        size_t nl = strlen(name);
        if (nl <= rl || strcmp(name + nl - rl, rest) != 0 || memchr(name, '.', nl - rl))
                return false;
        return !dnsq_reverse_addr(name, &a, &bits) || bits != 32;
}

/* A reverse name in an answer to the question q (as rr's owner, or the
 * target of its CNAME or DNAME): refused as asking for it is, except what
 * an honest answer about q itself holds: the SOA or NS of a zone above q
 * in the authority section (a NODATA answer for 9.10.in-addr.arpa carries
 * 10.in-addr.arpa's SOA), a DNAME owned by such a zone, and q's own RFC
 * 2317 delegation (5.2.0.203.in-addr.arpa CNAME 5.0-25.2.0.203...,
 * whose records are about q alone; another address's is refused). */
static bool answer_name_refused(const struct netd *n, const char *q, const char *name, const struct dns_rr *rr,
                                bool owner)
{
        if (!dnsq_reverse_refused(n, name))
                return false;
        if (owner && ancestor_of(name, q) &&
            ((rr->section == 2 && (rr->type == DNS_T_SOA || rr->type == DNS_T_NS)) ||
             (rr->section == 1 && rr->type == DNS_T_DNAME)))
                return false;
        if (classless_of(name, q, false))
                return false;
        bool apex_ok = owner ? rr->section == 2 && (rr->type == DNS_T_SOA || rr->type == DNS_T_NS)
                             : rr->type == DNS_T_DNAME;
        return !(apex_ok && classless_of(name, q, true));
}

/* false, with the name in rev: the answer holds a reverse name the guest may
 * not walk, as the owner of any record or the target of any CNAME or DNAME
 * (however long the chain: the question was allowed, the answer would carry
 * what asking directly is refused).  false with rev empty: malformed. */
static bool answer_reverse_ok(const struct netd *n, const struct dns_msg *hdr, const char *qname, char *rev,
                              size_t revsz)
{
        struct dns_msg d = *hdr;
        struct dns_rr rr;
        int r;
        while ((r = dns_rr_next(&d, &rr)) > 0) {
                const struct dns_name *nm[2] = { &rr.owner, NULL };
                struct dns_name target;
                if (rr.type == DNS_T_CNAME || rr.type == DNS_T_DNAME) {
                        size_t off = rr.rdoff;
                        if (!dns_name_read(d.m, rr.rdoff + rr.rdlen, &off, true, &target))
                                return false;
                        nm[1] = &target;
                }
                for (size_t i = 0; i < 2 && nm[i]; i++)
                        if (!nm[i]->unusual && answer_name_refused(n, qname, nm[i]->text, &rr, i == 0)) {
                                snprintf(rev, revsz, "%s", nm[i]->text);
                                return false;
                        }
        }
        return r == 0;
}

static bool rr_addr(const struct dns_msg *d, const struct dns_rr *rr, struct net_addr *a)
{
        if (rr->section != 1 || rr->class != 1)
                return false;
        if (rr->type == DNS_T_A && rr->rdlen == 4)
                a->family = 4;
        else if (rr->type == DNS_T_AAAA && rr->rdlen == 16)
                a->family = 6;
        else
                return false;
        memset(a->a, 0, sizeof(a->a));
        memcpy(a->a, d->m + rr->rdoff, rr->rdlen);
        return true;
}

static const char *addr_group_word(const struct netd *n, const struct net_addr *a)
{
        static const enum net_group order[] = { NET_G_HOST, NET_G_LOOPBACK, NET_G_META, NET_G_LINKLOCAL,
                                                NET_G_PRIVATE, NET_G_MULTICAST };
        for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
                if (net_group_has(&n->c, order[i], a))
                        return net_group_name(order[i]);
        return "non-public";
}

/* The question waiting that an answer is to, or NULL (anti-spoofing: the
 * id we chose and the question we asked) */
static struct pending *pending_of(struct netd *n, const struct dns_msg *hdr)
{
        for (size_t i = 0; i < NETD_DNS_PENDING_MAX; i++) {
                struct pending *c = &n->pend[i];
                if (c->used && c->up_id == hdr->id && c->qtype == hdr->qtype && c->qclass == hdr->qclass &&
                    strcmp(c->name.text, hdr->qname.text) == 0)
                        return c;
        }
        return NULL;
}

/* Every address first: one a rule would not let the guest reach refuses
 * the whole answer (false, REFUSED sent), before anything is learned from
 * it.  The first four addresses go into addrs for the log, their count
 * into naddr. */
static bool answer_addrs_ok(struct netd *n, const struct pending *pe, const struct dns_msg *hdr,
                            char chain[][NET_NAME_MAX + 1], size_t nchain, const char *tname, char *addrs,
                            size_t addrsz, size_t *naddr)
{
        struct dns_msg d = *hdr;
        struct dns_rr rr;
        struct net_addr a;
        char as[64];
        while (dns_rr_next(&d, &rr) > 0) {
                if (!rr_addr(&d, &rr, &a))
                        continue;
                bool learned = pe->rule >= 0 && chain_has(chain, nchain, &rr.owner);
                /* A name a rule allows may point at private addresses (what
                 * such rules are for), never at the host, loopback,
                 * link-local or metadata addresses the policy denies: whoever
                 * writes any record of its CNAME chain would get them. */
                bool checked = learned ? net_addr_special(&n->c, &a) : !net_group_has(&n->c, NET_G_PUBLIC, &a);
                if (checked && !policy_egress_reaches(n, &a)) {
                        net_addr_format(&a, as, sizeof(as));
                        n->st.dns_rebind_refused++;
                        netd_log(n, "dns refuse %s %s %s: %s answer for a public name (rebinding)", pe->name.text,
                                 tname, as, addr_group_word(n, &a));
                        dnsq_reply(n, &pe->peer, pe->guest_id, pe->guest_flags, DNS_REFUSED, false, pe->qwire,
                                   pe->qwire_len);
                        return false;
                }
                if ((*naddr)++ < 4) {
                        net_addr_format(&a, as, sizeof(as));
                        size_t l = strlen(addrs);
                        snprintf(addrs + l, addrsz - l, "%s%s", l ? ", " : "", as);
                }
        }
        return true;
}

/* Learn, for the name rule that allowed the question, the addresses of
 * the names the answer is about (the question and its CNAME chain) */
static void answer_learn(struct netd *n, const struct pending *pe, const struct dns_msg *hdr,
                         char chain[][NET_NAME_MAX + 1], size_t nchain)
{
        struct dns_msg d = *hdr;
        struct dns_rr rr;
        struct net_addr a;
        while (dns_rr_next(&d, &rr) > 0)
                if (rr_addr(&d, &rr, &a) && chain_has(chain, nchain, &rr.owner))
                        learn_add(n, (uint32_t)pe->rule, &a, rr.ttl);
}

void netd_from_upstream(struct netd *n, const uint8_t *msg, size_t len, int64_t now_ms)
{
        n->now = now_ms;
        struct dns_msg hdr;
        if (len > sizeof(n->msgbuf) || dns_msg_parse(msg, len, true, &hdr) != 1 || !(hdr.flags & DNS_QR) ||
            hdr.qname.unusual)
                return;
        struct pending *pe = pending_of(n, &hdr);
        if (!pe)
                return;
        pe->used = false;
        char tb[16], chain[CHAIN_MAX][NET_NAME_MAX + 1];
        const char *tname = dns_type_name(pe->qtype, tb, sizeof(tb));
        size_t nchain;
        char rev[NET_NAME_MAX + 1] = "";
        if (!answer_chain(&hdr, chain, &nchain) ||
            (!answer_reverse_ok(n, &hdr, pe->name.text, rev, sizeof(rev)) && !rev[0])) {
                netd_log(n, "dns servfail %s %s: malformed answer from upstream", pe->name.text, tname);
                dnsq_reply(n, &pe->peer, pe->guest_id, pe->guest_flags, DNS_SERVFAIL, false, pe->qwire,
                           pe->qwire_len);
                return;
        }
        if (rev[0]) {
                n->st.dns_denied++;
                netd_log(n,
                         "dns refuse %s %s: the answer holds %s, a reverse name of an address this sandbox may not "
                         "reach",
                         pe->name.text, tname, rev);
                dnsq_reply(n, &pe->peer, pe->guest_id, pe->guest_flags, DNS_REFUSED, false, pe->qwire, pe->qwire_len);
                return;
        }
        char addrs[256] = "";
        size_t naddr = 0;
        if (!answer_addrs_ok(n, pe, &hdr, chain, nchain, tname, addrs, sizeof(addrs), &naddr))
                return;
        if (pe->rule >= 0)
                answer_learn(n, pe, &hdr, chain, nchain);
        unsigned rcode = hdr.flags & 15;
        if (naddr)
                netd_log(n, "dns allow %s %s -> %s%s", pe->name.text, tname, addrs, naddr > 4 ? ", ..." : "");
        else if (rcode == DNS_NXDOMAIN)
                netd_log(n, "dns allow %s %s (NXDOMAIN)", pe->name.text, tname);
        else
                netd_log(n, "dns allow %s %s (no address, rcode %u)", pe->name.text, tname, rcode);
        if (len > pe->udp_max) {
                /* too big for the guest: it may ask again over TCP (which
                 * msb does not serve) or make do without */
                dnsq_reply(n, &pe->peer, pe->guest_id, pe->guest_flags, (enum dns_rcode)rcode, true, pe->qwire,
                           pe->qwire_len);
                return;
        }
        memcpy(n->msgbuf, msg, len);
        put16(n->msgbuf, pe->guest_id);
        dnsq_send(n, &pe->peer, n->msgbuf, len);
        (void)now_ms;
}
