/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Each frame between the guest and passt: parsed, its flow found or judged
 * (policy.c) and remembered (flows.c), DNS to the gateway taken aside
 * (dns-query.c), and what is denied answered with a reset or an ICMP
 * "administratively prohibited".
 */
#define _GNU_SOURCE
#include <string.h>

#include "common/util.h"
#include "net/engine.h"

static const char *proto_name(uint8_t proto)
{
        return proto == 6 ? "tcp" : proto == 17 ? "udp" : "icmp";
}

/* The answer to a denied packet: a reset for TCP, "administratively
 * prohibited" for the rest.  None for what is sent to a multicast or
 * broadcast address, nor from an unspecified one (RFC 1122 3.2.2). */
static void deny_reply(struct netd *n, const struct pkt *p, struct netd_queue *q)
{
        static const uint8_t zero[16];
        if (net_group_has(&n->c, NET_G_MULTICAST, &p->dst) || net_group_has(&n->c, NET_G_MULTICAST, &p->src) ||
            memcmp(p->src.a, zero, p->family == 4 ? 4 : 16) == 0)
                return;
        size_t len;
        if (p->proto == IPPROTO_TCP_) {
                len = pkt_build_rst(p, n->scratch, sizeof(n->scratch));
        } else {
                const struct net_addr *gw = netd_gw(n, p->family);
                len = pkt_build_unreach(p, gw->family ? gw : &p->dst, n->scratch, sizeof(n->scratch));
        }
        netd_queue_push(q, n->scratch, len);
}

static void log_flow(struct netd *n, struct verdict v, bool ingress, uint8_t proto,
                     const struct net_addr *remote, uint16_t rport, uint16_t gport)
{
        if (!n->c.log)
                return;
        char ap[80], w[400];
        netd_addr_port(remote, proto == 1 ? 0 : rport, ap, sizeof(ap));
        policy_why(n, v, ingress, w, sizeof(w));
        if (ingress)
                netd_log(n, "%s ingress %s %s -> guest port %u (%s)", v.allow ? "allow" : "deny", proto_name(proto), ap,
                         gport, w);
        else
                netd_log(n, "%s egress %s %s (%s)", v.allow ? "allow" : "deny", proto_name(proto), ap, w);
}

/* A flow denied before something was learned: judge it again */
static void guest_rejudge(struct netd *n, struct flow *fl, const struct pkt *p, uint8_t proto, uint16_t gport,
                          uint16_t rport)
{
        struct verdict v = policy_evaluate(n, false, &p->dst, proto, rport, false);
        if (v.allow && flow_held_full(n, proto)) {
                /* judged again once a connection closes */
                flow_log_capped(n, false, proto, &p->dst, rport);
                return;
        }
        fl->learn_gen = n->learn_gen;
        if (v.allow) {
                flow_set_allow(n, fl, true);
                log_flow(n, v, false, proto, &p->dst, rport, gport);
        }
}

/* A new flow from the guest, judged and remembered; NULL when an allowed
 * one is refused at its cap (the denial queued for the guest) */
static struct flow *guest_flow_new(struct netd *n, const struct pkt *p, const struct flow_key *k, uint8_t proto,
                                   uint16_t gport, uint16_t rport, bool is_dns, int64_t now)
{
        struct verdict v;
        if (is_dns && proto == 6) {
                v = (struct verdict){ false, -1 };
                if (n->c.log) {
                        char ap[80];
                        netd_addr_port(&p->dst, rport, ap, sizeof(ap));
                        netd_log(n, "deny egress tcp %s (DNS over TCP is not served)", ap);
                }
        } else {
                v = policy_evaluate(n, false, &p->dst, proto, rport, is_dns);
                if (v.allow && flow_held_full(n, proto)) {
                        flow_log_capped(n, false, proto, &p->dst, rport);
                        deny_reply(n, p, &n->to_guest);
                        return NULL;
                }
                log_flow(n, v, false, proto, &p->dst, rport, gport);
        }
        struct flow *fl = flow_add(n, k, now);
        flow_set_allow(n, fl, v.allow);
        fl->learn_gen = n->learn_gen;
        return fl;
}

enum netd_verdict netd_from_guest(struct netd *n, const uint8_t *f, size_t len, int64_t now_ms)
{
        n->now = now_ms;
        struct pkt p;
        switch (pkt_parse(f, len, &p)) {
        case PKT_BAD:
                n->st.dropped_malformed++;
                return NETD_DROP;
        case PKT_UNSUPPORTED:
                n->st.dropped_unsupported++;
                return NETD_DROP;
        case PKT_ARP:
                n->st.passed++;
                return NETD_PASS;
        case PKT_IP:
                break;
        }
        uint8_t proto = p.proto;
        uint16_t gport = p.sport, rport = p.dport;
        if (proto == IPPROTO_ICMPV6_ && ((p.icmp_type >= 130 && p.icmp_type <= 137) || p.icmp_type == 143)) {
                /* neighbour discovery and multicast listeners: the link itself */
                n->st.passed++;
                return NETD_PASS;
        }
        if (proto == IPPROTO_ICMP_ || proto == IPPROTO_ICMPV6_) {
                if (p.icmp_type != (proto == IPPROTO_ICMP_ ? 8 : 128)) {
                        n->st.dropped_unsupported++;
                        return NETD_DROP;
                }
                proto = 1;
                gport = p.icmp_id;
                rport = 0;
        }
        bool is_dns = (proto == 6 || proto == 17) && rport == 53 && net_addr_eq(&p.dst, netd_gw(n, p.family));
        struct flow_key k = flow_key_of(p.family, proto, gport, &p.dst, rport);
        struct flow *fl = flow_find(n, &k, now_ms);
        if (fl && !fl->allow && fl->learn_gen != n->learn_gen && !fl->ingress && !is_dns)
                guest_rejudge(n, fl, &p, proto, gport, rport);
        if (!fl && !(fl = guest_flow_new(n, &p, &k, proto, gport, rport, is_dns, now_ms)))
                return NETD_DROP;
        flow_track_close(fl, &p, true);
        if (!fl->allow) {
                n->st.denied++;
                deny_reply(n, &p, &n->to_guest);
                return NETD_DROP;
        }
        if (is_dns && proto == 17) {
                dnsq_query(n, &p, now_ms);
                return NETD_DROP;
        }
        if (proto == 17 && !uport_take(n, gport, now_ms)) {
                flow_log_capped(n, false, proto, &p.dst, rport);
                deny_reply(n, &p, &n->to_guest);
                return NETD_DROP;
        }
        n->st.passed++;
        return NETD_PASS;
}

static bool udp_published(const struct netd *n, uint16_t port)
{
        for (size_t i = 0; i < n->c.nports; i++)
                if (n->c.ports[i].proto == 17 && n->c.ports[i].guest_port == port)
                        return true;
        return false;
}

/* A frame from passt of no flow known: an ingress flow judged and
 * remembered, or NULL with what becomes of the frame in ret_verdict (a
 * datagram or echo reply that answers nothing, a segment of a forgotten
 * TCP flow, an allowed one refused at its cap) */
static struct flow *stack_flow_new(struct netd *n, const struct pkt *p, const struct flow_key *k, uint8_t proto,
                                   uint16_t gport, uint16_t rport, int64_t now, enum netd_verdict *ret_verdict)
{
        bool syn = proto == 6 && (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;
        if (proto == 17 && !udp_published(n, gport)) {
                /* passt hands the guest a datagram from anyone to a
                 * port the guest sent from: only an answer from
                 * whom it sent to is one */
                n->st.denied++;
                if (n->c.log) {
                        char ap[80];
                        netd_addr_port(&p->src, rport, ap, sizeof(ap));
                        netd_log(n, "deny ingress udp %s -> guest port %u (not a published port, nor an answer)", ap,
                                 gport);
                }
                *ret_verdict = NETD_DROP;
                return NULL;
        }
        if (proto == 1) {
                /* an echo reply to no echo request of the guest's */
                n->st.denied++;
                if (n->c.log) {
                        char as[64];
                        net_addr_format(&p->src, as, sizeof(as));
                        netd_log(n, "deny ingress icmp echo reply from %s, id %u (not an answer)", as, gport);
                }
                *ret_verdict = NETD_DROP;
                return NULL;
        }
        if (!syn && proto != 17) {
                /* TCP of a flow this table forgot (passt still has it) */
                n->st.passed++;
                *ret_verdict = NETD_PASS;
                return NULL;
        }
        struct verdict v = policy_evaluate(n, true, &p->src, proto, gport, false);
        if (v.allow && flow_held_full(n, proto)) {
                flow_log_capped(n, true, proto, &p->src, rport);
                deny_reply(n, p, &n->to_stack);
                *ret_verdict = NETD_DROP;
                return NULL;
        }
        log_flow(n, v, true, proto, &p->src, rport, gport);
        struct flow *fl = flow_add(n, k, now);
        flow_set_allow(n, fl, v.allow);
        fl->ingress = true;
        fl->learn_gen = n->learn_gen;
        return fl;
}

enum netd_verdict netd_from_stack(struct netd *n, const uint8_t *f, size_t len, int64_t now_ms)
{
        n->now = now_ms;
        struct pkt p;
        /* passt is ours: what does not parse here is the guest kernel's
         * business, and passes */
        if (pkt_parse(f, len, &p) != PKT_IP) {
                n->st.passed++;
                return NETD_PASS;
        }
        uint8_t proto = p.proto;
        uint16_t gport = p.dport, rport = p.sport;
        if (proto == IPPROTO_ICMP_ || proto == IPPROTO_ICMPV6_) {
                if (p.icmp_type != (proto == IPPROTO_ICMP_ ? 0 : 129)) {
                        n->st.passed++;
                        return NETD_PASS;
                }
                proto = 1;
                gport = p.icmp_id;
                rport = 0;
        }
        struct flow_key k = flow_key_of(p.family, proto, gport, &p.src, rport);
        struct flow *fl = flow_find(n, &k, now_ms);
        enum netd_verdict verdict;
        if (!fl && !(fl = stack_flow_new(n, &p, &k, proto, gport, rport, now_ms, &verdict)))
                return verdict;
        flow_track_close(fl, &p, false);
        /* an ingress flow denied, or an answer to what the guest was not
         * let send */
        if (!fl->allow) {
                n->st.denied++;
                if (proto == 6 && fl->ingress)
                        deny_reply(n, &p, &n->to_stack);
                return NETD_DROP;
        }
        if (proto == 17)
                uport_touch(n, gport, now_ms);
        n->st.passed++;
        return NETD_PASS;
}
