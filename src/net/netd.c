/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy engine of msb-netd: every frame between the guest and passt
 * goes through here.  It keeps three bounded tables, all allocated once in
 * netd_new: flows (a cache of verdicts, so a connection is judged and logged
 * once), DNS queries waiting for upstream, and the addresses learned from
 * answers to names a rule allows.  Nothing here does I/O: replies go into
 * the two queues, queries to c->send_upstream, log lines to c->log.
 * Semantics: docs/network.md, "Policy and DNS".
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "common/util.h"
#include "net/dns.h"
#include "net/packet.h"

/* idle times after which a flow is forgotten (and judged again if seen) */
#define FLOW_TCP_MS (2 * 3600 * 1000LL)
#define FLOW_TCP_CLOSED_MS (60 * 1000LL)
#define FLOW_OTHER_MS (180 * 1000LL)
/* passt keeps an echo flow's ping socket 60 s past its last request */
#define FLOW_ICMP_MS (70 * 1000LL)
/* how often netd_tick sweeps the flow table for idle flows */
#define SWEEP_MS (10 * 1000LL)
/* names followed through CNAMEs in one answer when deciding which
 * addresses belong to the name asked (and are learned) */
#define CHAIN_MAX 8
#define LEARN_BUCKETS 16384
#define LOG_MAX 640

struct link {
        int32_t prev, next;
};
struct list {
        int32_t head, tail; /* head: oldest */
};

struct flow_key {
        uint8_t family, proto; /* proto: 6, 17, or 1 for ICMP and ICMPv6 echo */
        uint16_t gport, rport; /* guest and remote port; ICMP echo: id and 0 */
        uint8_t raddr[16];
};
struct flow {
        struct flow_key k;
        bool used, allow, ingress, closed;
        bool fin_guest, fin_stack; /* TCP: each side's FIN seen; closed once both are, or on a reset */
        uint32_t learn_gen; /* a denied flow is judged again once more is learned */
        int64_t last;
        int32_t hnext;
};

struct learned {
        struct net_addr a;
        int64_t expires; /* ms: the record's TTL within the floor and cap */
        uint32_t rule;
        bool used;
        int32_t hnext;
};

/* who asked: where the answer goes */
struct dns_peer {
        struct net_addr guest, gw;
        uint16_t port;
        uint8_t guest_mac[6], gw_mac[6];
};
struct pending {
        bool used;
        uint16_t up_id, guest_id, guest_flags;
        struct dns_peer peer;
        struct dns_name name;
        uint16_t qtype, qclass;
        uint8_t qwire[DNS_WIRE_NAME_MAX + 4];
        size_t qwire_len;
        int rule;         /* the name rule that allowed it, or -1 */
        unsigned udp_max; /* what the guest can take */
        int64_t deadline;
};

struct netd {
        struct net_config c; /* rules, ports, host_addrs point at our copies */
        uint64_t rng, hkey;
        struct netd_queue to_guest, to_stack;
        struct netd_stats st;

        struct flow *flows;
        struct link *flru; /* LRU order while used, free list (next) while not */
        struct list lru;
        int32_t ffree, *fbuckets;
        uint32_t fmask, flow_max, nflows, ntcp, nicmp;
        int64_t next_sweep;
        /* per guest UDP source port: when passt last carried it (s + 1), 0
         * when not in use; allocated at the first one */
        uint32_t *uport_seen, nuports;

        struct learned *learn;
        int64_t now; /* ms, of the call being handled: learned addresses expire */
        struct link *lglob, *lrule; /* FIFO over all, FIFO within a rule */
        struct list lall, *lrules;
        unsigned *lcount;
        int32_t lfree, *lbuckets; /* all of these allocated at the first address learned */
        uint32_t nlearn, learn_gen;

        struct pending pend[NETD_DNS_PENDING_MAX];

        uint8_t scratch[PKT_FRAME_MAX];
        uint8_t msgbuf[65536]; /* an upstream answer, its id rewritten */
};

/* ---- small pieces ---- */

static uint64_t rng_next(struct netd *n)
{
        /* xorshift64*: ids and hash keys only need to be unguessable from
         * the guest (seeded from getrandom), not cryptographic */
        n->rng ^= n->rng >> 12;
        n->rng ^= n->rng << 25;
        n->rng ^= n->rng >> 27;
        return n->rng * 0x2545f4914f6cdd1dull;
}

static uint32_t hash_bytes(uint64_t key, const void *p, size_t len)
{
        const uint8_t *b = p;
        uint64_t h = key ^ 0xcbf29ce484222325ull;
        for (size_t i = 0; i < len; i++)
                h = (h ^ b[i]) * 0x100000001b3ull;
        h ^= h >> 29;
        h *= 0xbf58476d1ce4e5b9ull;
        return (uint32_t)(h ^ (h >> 32));
}

static void list_unlink(struct list *l, struct link *k, int32_t i)
{
        if (k[i].prev >= 0)
                k[k[i].prev].next = k[i].next;
        else
                l->head = k[i].next;
        if (k[i].next >= 0)
                k[k[i].next].prev = k[i].prev;
        else
                l->tail = k[i].prev;
        k[i].prev = k[i].next = -1;
}

static void list_push(struct list *l, struct link *k, int32_t i)
{
        k[i].next = -1;
        k[i].prev = l->tail;
        if (l->tail >= 0)
                k[l->tail].next = i;
        else
                l->head = i;
        l->tail = i;
}

static void nlog(struct netd *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void nlog(struct netd *n, const char *fmt, ...)
{
        if (!n->c.log)
                return;
        char line[LOG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        n->c.log(n->c.opaque, line);
}

static void q_push(struct netd_queue *q, const uint8_t *frame, size_t len)
{
        if (len == 0)
                return;
        if (q->off == q->len)
                q->off = q->len = 0;
        size_t pending = q->len - q->off;
        if (len > NETD_QUEUE_MAX || pending + 4 + len > NETD_QUEUE_MAX) {
                q->dropped++;
                return;
        }
        if (q->len + 4 + len > q->cap) {
                /* move what is left to the front before growing */
                if (q->off) {
                        memmove(q->buf, q->buf + q->off, pending);
                        q->off = 0;
                        q->len = pending;
                }
                if (q->len + 4 + len > q->cap) {
                        size_t cap = q->cap ? q->cap : 16384;
                        while (cap < q->len + 4 + len)
                                cap *= 2;
                        q->buf = xrealloc(q->buf, cap);
                        q->cap = cap;
                }
        }
        put32(q->buf + q->len, (uint32_t)len);
        memcpy(q->buf + q->len + 4, frame, len);
        q->len += 4 + len;
}

static const struct net_addr *gw_of(const struct netd *n, uint8_t family)
{
        return family == 4 ? &n->c.gw4 : &n->c.gw6;
}

static const char *proto_name(uint8_t proto)
{
        return proto == 6 ? "tcp" : proto == 17 ? "udp" : "icmp";
}

/* "10.0.0.1:80", "[fd00::1]:80", or just the address (port 0) */
static void addr_port(const struct net_addr *a, uint16_t port, char *out, size_t outsz)
{
        char s[64];
        net_addr_format(a, s, sizeof(s));
        if (!port)
                snprintf(out, outsz, "%s", s);
        else if (a->family == 6)
                snprintf(out, outsz, "[%s]:%u", s, port);
        else
                snprintf(out, outsz, "%s:%u", s, port);
}

/* ---- learned addresses ---- */

static uint32_t learn_hash(const struct netd *n, uint32_t rule, const struct net_addr *a)
{
        uint8_t k[21];
        memcpy(k, &rule, 4);
        k[4] = a->family;
        memcpy(k + 5, a->a, 16);
        return hash_bytes(n->hkey, k, sizeof(k)) & (LEARN_BUCKETS - 1);
}

static int32_t learn_find(const struct netd *n, uint32_t rule, const struct net_addr *a)
{
        if (!n->learn)
                return -1;
        for (int32_t i = n->lbuckets[learn_hash(n, rule, a)]; i >= 0; i = n->learn[i].hnext)
                if (n->learn[i].rule == rule && net_addr_eq(&n->learn[i].a, a))
                        return i;
        return -1;
}

static void learn_del(struct netd *n, int32_t i)
{
        struct learned *l = &n->learn[i];
        int32_t *pp = &n->lbuckets[learn_hash(n, l->rule, &l->a)];
        while (*pp != i)
                pp = &n->learn[*pp].hnext;
        *pp = l->hnext;
        list_unlink(&n->lall, n->lglob, i);
        list_unlink(&n->lrules[l->rule], n->lrule, i);
        n->lcount[l->rule]--;
        n->nlearn--;
        l->used = false;
        l->hnext = n->lfree;
        n->lfree = i;
}

/* Most sandboxes have no name rule, so the tables (about 400 KiB) are
 * made when the first address is learned. */
static void learn_init(struct netd *n)
{
        n->learn = xcalloc(NETD_LEARN_MAX, sizeof(*n->learn));
        n->lglob = xcalloc(NETD_LEARN_MAX, sizeof(*n->lglob));
        n->lrule = xcalloc(NETD_LEARN_MAX, sizeof(*n->lrule));
        for (int32_t i = 0; i < NETD_LEARN_MAX; i++) {
                n->learn[i].hnext = i + 1 < NETD_LEARN_MAX ? i + 1 : -1;
                n->lglob[i] = n->lrule[i] = (struct link){ -1, -1 };
        }
        n->lfree = 0;
        n->lbuckets = xmalloc(LEARN_BUCKETS * sizeof(*n->lbuckets));
        memset(n->lbuckets, 0xff, LEARN_BUCKETS * sizeof(*n->lbuckets));
}

/* learned and not expired */
static bool learn_live(const struct netd *n, uint32_t rule, const struct net_addr *a)
{
        int32_t i = learn_find(n, rule, a);
        return i >= 0 && n->learn[i].expires > n->now;
}

static int64_t learn_expiry(int64_t now, uint32_t ttl)
{
        if (ttl < NETD_LEARN_TTL_FLOOR_S)
                ttl = NETD_LEARN_TTL_FLOOR_S;
        if (ttl > NETD_LEARN_TTL_CAP_S)
                ttl = NETD_LEARN_TTL_CAP_S;
        return now + (int64_t)ttl * 1000;
}

static void learn_add(struct netd *n, uint32_t rule, const struct net_addr *a, uint32_t ttl)
{
        if (!n->learn)
                learn_init(n);
        int64_t expires = learn_expiry(n->now, ttl);
        int32_t i = learn_find(n, rule, a);
        if (i >= 0) { /* seen again: the newest now */
                if (n->learn[i].expires <= n->now)
                        n->learn_gen++; /* expired, so counts as new */
                if (expires > n->learn[i].expires)
                        n->learn[i].expires = expires;
                list_unlink(&n->lall, n->lglob, i);
                list_push(&n->lall, n->lglob, i);
                list_unlink(&n->lrules[rule], n->lrule, i);
                list_push(&n->lrules[rule], n->lrule, i);
                return;
        }
        if (n->lcount[rule] >= NETD_LEARN_PER_RULE)
                learn_del(n, n->lrules[rule].head);
        if (n->nlearn >= NETD_LEARN_MAX)
                learn_del(n, n->lall.head);
        i = n->lfree;
        struct learned *l = &n->learn[i];
        n->lfree = l->hnext;
        l->a = *a;
        l->rule = rule;
        l->expires = expires;
        l->used = true;
        uint32_t h = learn_hash(n, rule, a);
        l->hnext = n->lbuckets[h];
        n->lbuckets[h] = i;
        list_push(&n->lall, n->lglob, i);
        list_push(&n->lrules[rule], n->lrule, i);
        n->lcount[rule]++;
        n->nlearn++;
        n->learn_gen++;
}

/* ---- evaluation ---- */

struct verdict {
        bool allow;
        int rule; /* index into rules, or -1: the mode's (or ingress) default,
                   * or NETD_RULE_BOGUS */
};
#define NETD_RULE_BOGUS (-2)

static bool proto_match(const struct net_rule *r, uint8_t proto, uint16_t port)
{
        if (r->proto && r->proto != proto)
                return false;
        if (r->port_lo && (proto == 1 || port < r->port_lo || port > r->port_hi))
                return false;
        return true;
}

/* does rule i's target hold the address?  A flow to the gateway's port 53
 * (is_dns) is only in the groups dns and any. */
static bool target_match(const struct netd *n, size_t i, const struct net_addr *a, bool is_dns)
{
        const struct net_rule *r = &n->c.rules[i];
        if (is_dns)
                return r->kind == NET_T_GROUP && (r->group == NET_G_DNS || r->group == NET_G_ANY);
        switch (r->kind) {
        case NET_T_CIDR:
                return net_prefix_has(&r->addr, r->prefix, a);
        case NET_T_GROUP:
                return net_group_has(&n->c, r->group, a);
        case NET_T_DOMAIN:
        case NET_T_WILDCARD:
                return learn_live(n, (uint32_t)i, a);
        }
        return false;
}

static bool mode_allows(const struct netd *n, const struct net_addr *a, bool is_dns)
{
        const struct net_config *c = &n->c;
        switch (c->mode) {
        case NET_MODE_NONE:
                return false;
        case NET_MODE_ALL:
                return true;
        case NET_MODE_HOST:
                if (net_group_has(c, NET_G_HOST, a) || net_group_has(c, NET_G_LOOPBACK, a))
                        return true;
                /* fall through */
        case NET_MODE_PRIVATE:
                if (net_group_has(c, NET_G_PRIVATE, a))
                        return true;
                /* fall through */
        case NET_MODE_PUBLIC:
                return is_dns || net_group_has(c, NET_G_PUBLIC, a);
        }
        return false;
}

static struct verdict evaluate(const struct netd *n, bool ingress, const struct net_addr *a, uint8_t proto,
                               uint16_t port, bool is_dns)
{
        /* never a destination on the wire (0.0.0.0, ::, v4-mapped,
         * v4-compatible, NAT64): passt's sockets would turn them into the
         * host itself or an IPv4 address no rule was checked against */
        if (!ingress && !is_dns && net_addr_bogus(a))
                return (struct verdict){ false, NETD_RULE_BOGUS };
        for (size_t i = 0; i < n->c.nrules; i++) {
                const struct net_rule *r = &n->c.rules[i];
                if (r->dir == (ingress ? NET_DIR_EGRESS : NET_DIR_INGRESS))
                        continue;
                if (proto_match(r, proto, port) && target_match(n, i, a, is_dns))
                        return (struct verdict){ r->allow, (int)i };
        }
        return (struct verdict){ ingress ? true : mode_allows(n, a, is_dns), -1 };
}

/* Would any egress rule (by address or group) or the mode let some traffic
 * reach a?  The rebinding check for answers to names no rule allows. */
static bool some_egress_allowed(const struct netd *n, const struct net_addr *a)
{
        for (size_t i = 0; i < n->c.nrules; i++) {
                const struct net_rule *r = &n->c.rules[i];
                if (r->dir == NET_DIR_INGRESS || r->kind == NET_T_DOMAIN || r->kind == NET_T_WILDCARD ||
                    !target_match(n, i, a, false))
                        continue;
                if (r->allow)
                        return true;
                if (!r->proto && !r->port_lo)
                        return false; /* denies everything to it, and matches first */
        }
        return mode_allows(n, a, false);
}

static void why(const struct netd *n, struct verdict v, bool ingress, char *out, size_t outsz)
{
        if (v.rule >= 0)
                snprintf(out, outsz, "rule %d \"%s\"", v.rule + 1, n->c.rules[v.rule].text);
        else if (v.rule == NETD_RULE_BOGUS)
                snprintf(out, outsz, "not a valid destination");
        else if (ingress)
                snprintf(out, outsz, "default");
        else
                snprintf(out, outsz, "mode %s", net_mode_name(n->c.mode));
}

/* ---- flows ---- */

static uint32_t flow_hash(const struct netd *n, const struct flow_key *k)
{
        return hash_bytes(n->hkey, k, sizeof(*k)) & n->fmask;
}

/* The count an allowed flow of proto adds to, or NULL (UDP: by port) */
static uint32_t *held(struct netd *n, uint8_t proto)
{
        return proto == 6 ? &n->ntcp : proto == 1 ? &n->nicmp : NULL;
}

static void flow_del(struct netd *n, int32_t i)
{
        struct flow *f = &n->flows[i];
        int32_t *pp = &n->fbuckets[flow_hash(n, &f->k)];
        while (*pp != i)
                pp = &n->flows[*pp].hnext;
        *pp = f->hnext;
        list_unlink(&n->lru, n->flru, i);
        f->used = false;
        n->flru[i].next = n->ffree;
        n->ffree = i;
        n->nflows--;
        if (f->allow && held(n, f->k.proto))
                (*held(n, f->k.proto))--;
}

/* The verdict on a flow.  An allowed TCP flow holds a socket of passt's, an
 * allowed echo flow a ping socket; only those count towards
 * NETD_TCP_FLOWS_MAX and NETD_ICMP_FLOWS_MAX (a flood of denied SYNs, from
 * the guest or from outside, takes nothing from them). */
static void flow_set_allow(struct netd *n, struct flow *f, bool allow)
{
        uint32_t *c = held(n, f->k.proto);
        if (c)
                *c = *c + (allow ? 1u : 0u) - (f->allow ? 1u : 0u);
        f->allow = allow;
}

/* What one more allowed flow of proto would take past its cap */
static bool held_full(const struct netd *n, uint8_t proto)
{
        return proto == 6 ? n->ntcp >= NETD_TCP_FLOWS_MAX : proto == 1 ? n->nicmp >= NETD_ICMP_FLOWS_MAX : false;
}

/* What a full table gives up: the least recently used flow that holds
 * nothing of the host's (denied, closed, neither TCP nor an echo), so that
 * the caps keep counting every socket passt has.  An open connection met on
 * the way goes to the back of the order: it cannot be given up, and the next
 * search does not pass it again (4096 idle connections at the front cost
 * one walk, not one per new flow). */
static bool holds_nothing(const struct flow *f)
{
        return !f->allow || f->closed || (f->k.proto != 6 && f->k.proto != 1);
}

static int32_t flow_victim(struct netd *n)
{
        for (uint32_t k = 0; k < n->nflows; k++) {
                int32_t i = n->lru.head;
                if (holds_nothing(&n->flows[i]))
                        return i;
                list_unlink(&n->lru, n->flru, i);
                list_push(&n->lru, n->flru, i);
        }
        /* the table holds more than NETD_TCP_FLOWS_MAX + NETD_ICMP_FLOWS_MAX */
        return n->lru.head;
}

static bool flow_expired(const struct flow *f, int64_t now)
{
        /* a denial is remembered as long as a UDP flow, not a connection's 2 h */
        int64_t idle = !f->allow || (f->k.proto != 6 && f->k.proto != 1) ? FLOW_OTHER_MS
                       : f->k.proto == 1                                ? FLOW_ICMP_MS
                       : f->closed                                      ? FLOW_TCP_CLOSED_MS
                                                                        : FLOW_TCP_MS;
        return now - f->last >= idle;
}

static struct flow *flow_find(struct netd *n, const struct flow_key *k, int64_t now)
{
        for (int32_t i = n->fbuckets[flow_hash(n, k)]; i >= 0; i = n->flows[i].hnext) {
                struct flow *f = &n->flows[i];
                if (memcmp(&f->k, k, sizeof(*k)) != 0)
                        continue;
                if (flow_expired(f, now)) {
                        flow_del(n, i);
                        return NULL;
                }
                f->last = now;
                list_unlink(&n->lru, n->flru, i);
                list_push(&n->lru, n->flru, i);
                return f;
        }
        return NULL;
}

static struct flow *flow_add(struct netd *n, const struct flow_key *k, int64_t now)
{
        if (n->ffree < 0) {
                flow_del(n, flow_victim(n));
                n->st.flows_evicted++;
        }
        int32_t i = n->ffree;
        n->ffree = n->flru[i].next;
        struct flow *f = &n->flows[i];
        memset(f, 0, sizeof(*f));
        f->k = *k;
        f->used = true;
        f->last = now;
        uint32_t h = flow_hash(n, k);
        f->hnext = n->fbuckets[h];
        n->fbuckets[h] = i;
        list_push(&n->lru, n->flru, i);
        n->nflows++;
        return f;
}

/* ---- what a sandbox holds of the host (NETD_UDP_PORTS_MAX, NETD_TCP_FLOWS_MAX) ---- */

static bool uport_live(const struct netd *n, uint16_t port, int64_t now)
{
        uint32_t t = n->uport_seen ? n->uport_seen[port] : 0;
        return t && (now / 1000 + 1) - t < NETD_UDP_PORT_MS / 1000;
}

/* The guest sends from UDP port: false when it is a new port and the
 * sandbox has NETD_UDP_PORTS_MAX in use.  A port counts until
 * NETD_UDP_PORT_MS after passt last carried it (passt keeps its socket 180 s
 * past the last datagram), whatever the flow table forgot. */
static bool uport_take(struct netd *n, uint16_t port, int64_t now)
{
        if (!n->uport_seen)
                n->uport_seen = xcalloc(65536, sizeof(*n->uport_seen));
        /* a port counts until the sweep after it expired */
        if (!n->uport_seen[port]) {
                if (n->nuports >= NETD_UDP_PORTS_MAX)
                        return false;
                n->nuports++;
        }
        n->uport_seen[port] = (uint32_t)(now / 1000 + 1);
        return true;
}

/* A datagram for the guest's port: passt's socket stays as long */
static void uport_touch(struct netd *n, uint16_t port, int64_t now)
{
        if (n->uport_seen && n->uport_seen[port])
                n->uport_seen[port] = (uint32_t)(now / 1000 + 1);
}

static void uport_sweep(struct netd *n, int64_t now)
{
        for (uint32_t p = 0; n->nuports && p < 65536; p++)
                if (n->uport_seen[p] && !uport_live(n, (uint16_t)p, now)) {
                        n->uport_seen[p] = 0;
                        n->nuports--;
                }
}

static void log_capped(struct netd *n, bool ingress, uint8_t proto, const struct net_addr *remote, uint16_t rport)
{
        n->st.flows_capped++;
        if (!n->c.log)
                return;
        char ap[80];
        addr_port(remote, rport, ap, sizeof(ap));
        if (proto == 6)
                nlog(n, "deny %s tcp %s (%u TCP flows, the most a sandbox may hold)", ingress ? "ingress" : "egress",
                     ap, NETD_TCP_FLOWS_MAX);
        else if (proto == 1)
                nlog(n, "deny egress icmp %s (%u echo flows, the most a sandbox may hold)", ap, NETD_ICMP_FLOWS_MAX);
        else
                nlog(n, "deny egress udp %s (%u UDP ports in use, the most a sandbox may hold)", ap,
                     NETD_UDP_PORTS_MAX);
}

static struct flow_key flow_key_of(uint8_t family, uint8_t proto, uint16_t gport, const struct net_addr *remote,
                                   uint16_t rport)
{
        struct flow_key k;
        memset(&k, 0, sizeof(k)); /* padding too: keys are hashed and compared as bytes */
        k.family = family;
        k.proto = proto;
        k.gport = gport;
        k.rport = rport;
        memcpy(k.raddr, remote->a, family == 4 ? 4 : 16);
        return k;
}

/* ---- construction ---- */

struct netd *netd_new(const struct net_config *c)
{
        struct netd *n = xcalloc(1, sizeof(*n));
        n->c = *c;
        struct net_rule *rules = xcalloc(c->nrules, sizeof(*rules));
        if (c->nrules)
                memcpy(rules, c->rules, c->nrules * sizeof(*rules));
        n->c.rules = rules;
        struct net_port *ports = xcalloc(c->nports, sizeof(*ports));
        if (c->nports)
                memcpy(ports, c->ports, c->nports * sizeof(*ports));
        n->c.ports = ports;
        struct net_addr *host = xcalloc(NET_HOST_ADDRS_MAX, sizeof(*host));
        n->c.nhost_addrs = c->nhost_addrs < NET_HOST_ADDRS_MAX ? c->nhost_addrs : NET_HOST_ADDRS_MAX;
        if (n->c.nhost_addrs)
                memcpy(host, c->host_addrs, n->c.nhost_addrs * sizeof(*host));
        n->c.host_addrs = host;
        if (!n->c.mtu)
                n->c.mtu = 1500;

        n->rng = c->rng_seed;
        while (!n->rng)
                if (getrandom(&n->rng, sizeof(n->rng), 0) != sizeof(n->rng))
                        n->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)n; /* never fails for 8 bytes */
        n->hkey = rng_next(n);

        n->flow_max = c->flow_max ? c->flow_max : NETD_FLOW_MAX;
        uint32_t nb = 1;
        while (nb < 2 * n->flow_max)
                nb <<= 1;
        n->fmask = nb - 1;
        n->flows = xcalloc(n->flow_max, sizeof(*n->flows));
        n->flru = xcalloc(n->flow_max, sizeof(*n->flru));
        n->fbuckets = xmalloc(nb * sizeof(*n->fbuckets));
        memset(n->fbuckets, 0xff, nb * sizeof(*n->fbuckets));
        for (uint32_t i = 0; i < n->flow_max; i++)
                n->flru[i] = (struct link){ -1, i + 1 < n->flow_max ? (int32_t)(i + 1) : -1 };
        n->ffree = 0;
        n->lru = (struct list){ -1, -1 };

        n->lall = (struct list){ -1, -1 };
        n->lrules = xcalloc(c->nrules, sizeof(*n->lrules));
        for (size_t i = 0; i < c->nrules; i++)
                n->lrules[i] = (struct list){ -1, -1 };
        n->lcount = xcalloc(c->nrules, sizeof(*n->lcount));
        return n;
}

void netd_free(struct netd *n)
{
        if (!n)
                return;
        free((void *)n->c.rules);
        free((void *)n->c.ports);
        free((void *)n->c.host_addrs);
        free(n->flows);
        free(n->flru);
        free(n->fbuckets);
        free(n->uport_seen);
        free(n->learn);
        free(n->lglob);
        free(n->lrule);
        free(n->lbuckets);
        free(n->lrules);
        free(n->lcount);
        free(n->to_guest.buf);
        free(n->to_stack.buf);
        free(n);
}

struct netd_queue *netd_to_guest(struct netd *n)
{
        return &n->to_guest;
}

struct netd_queue *netd_to_stack(struct netd *n)
{
        return &n->to_stack;
}

bool netd_host_addr(struct netd *n, const struct net_addr *a, bool add)
{
        struct net_addr *h = (struct net_addr *)n->c.host_addrs;
        size_t i = 0;
        while (i < n->c.nhost_addrs && !net_addr_eq(&h[i], a))
                i++;
        if (add) {
                if (i < n->c.nhost_addrs)
                        return true;
                if (n->c.nhost_addrs >= NET_HOST_ADDRS_MAX)
                        return false;
                h[n->c.nhost_addrs++] = *a;
        } else if (i < n->c.nhost_addrs) {
                h[i] = h[--n->c.nhost_addrs];
        }
        char as[64];
        net_addr_format(a, as, sizeof(as));
        nlog(n, "host address %s %s", add ? "added" : "removed", as);
        return true;
}

void netd_stats(const struct netd *n, struct netd_stats *s)
{
        *s = n->st;
}

/* ---- replies ---- */

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
                const struct net_addr *gw = gw_of(n, p->family);
                len = pkt_build_unreach(p, gw->family ? gw : &p->dst, n->scratch, sizeof(n->scratch));
        }
        q_push(q, n->scratch, len);
}

static void dns_peer_of(const struct pkt *p, struct dns_peer *peer)
{
        peer->guest = p->src;
        peer->gw = p->dst;
        peer->port = p->sport;
        memcpy(peer->guest_mac, p->frame + 6, 6);
        memcpy(peer->gw_mac, p->frame, 6);
}

static void dns_send(struct netd *n, const struct dns_peer *peer, const uint8_t *msg, size_t len)
{
        size_t fl = pkt_build_udp(peer->guest_mac, peer->gw_mac, &peer->gw, &peer->guest, 53, peer->port, msg, len,
                                  n->scratch, sizeof(n->scratch));
        q_push(&n->to_guest, n->scratch, fl);
}

static void dns_reply(struct netd *n, const struct dns_peer *peer, uint16_t id, uint16_t flags, enum dns_rcode rc,
                      bool tc, const uint8_t *qwire, size_t qwire_len)
{
        uint8_t msg[DNS_HLEN + DNS_WIRE_NAME_MAX + 4];
        size_t len = dns_build_reply(id, flags, rc, tc, qwire, qwire_len, msg, sizeof(msg));
        dns_send(n, peer, msg, len);
}

/* ---- DNS ---- */

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
static bool reverse_addr(const char *name, struct net_addr *a, unsigned *ret_bits)
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
static bool reverse_refused(const struct netd *n, const char *name)
{
        struct net_addr ra;
        unsigned bits;
        if (!reverse_addr(name, &ra, &bits))
                return false;
        bool reach = some_egress_allowed(n, &ra);
        if (bits == (ra.family == 4 ? 32u : 128u) || net_prefix_all_public(&n->c, &ra, bits))
                return !reach;
        return !reach || net_group_has(&n->c, NET_G_PUBLIC, &ra);
}

static void dns_query(struct netd *n, const struct pkt *p, int64_t now)
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
                dns_reply(n, &peer, d.id, d.flags, DNS_FORMERR, false, NULL, 0);
                return;
        }
        const uint8_t *qwire = d.m + d.qwire;
        const char *tname = dns_type_name(d.qtype, tb, sizeof(tb));
        if (d.qname.unusual) {
                nlog(n, "dns refuse %s %s: a label holds dots, spaces or control bytes", d.qname.text, tname);
                dns_reply(n, &peer, d.id, d.flags, DNS_REFUSED, false, qwire, d.qwire_len);
                return;
        }
        /* no walking of the reverse zones of what the guest may not reach
         * (a split-horizon resolver's 10/8): refused whatever the type */
        if (reverse_refused(n, d.qname.text)) {
                n->st.dns_denied++;
                nlog(n, "dns refuse %s %s: a reverse lookup of an address this sandbox may not reach", d.qname.text,
                     tname);
                dns_reply(n, &peer, d.id, d.flags, DNS_REFUSED, false, qwire, d.qwire_len);
                return;
        }
        int rule = -1;
        for (size_t i = 0; i < n->c.nrules; i++) {
                const struct net_rule *nr = &n->c.rules[i];
                if (nr->dir == NET_DIR_INGRESS || (nr->kind != NET_T_DOMAIN && nr->kind != NET_T_WILDCARD) ||
                    !name_rule_matches(nr, d.qname.text))
                        continue;
                if (!nr->allow) {
                        n->st.dns_denied++;
                        nlog(n, "dns deny %s %s (rule %zu \"%s\")", d.qname.text, tname, i + 1, nr->text);
                        dns_reply(n, &peer, d.id, d.flags, DNS_NXDOMAIN, false, qwire, d.qwire_len);
                        return;
                }
                rule = (int)i;
                break;
        }
        struct pending *pe = NULL;
        for (size_t i = 0; i < NETD_DNS_PENDING_MAX && !pe; i++)
                if (!n->pend[i].used)
                        pe = &n->pend[i];
        if (!pe || !n->c.send_upstream) {
                nlog(n, "dns servfail %s %s: %s", d.qname.text, tname,
                     pe ? "no upstream resolver" : "too many queries waiting for upstream");
                dns_reply(n, &peer, d.id, d.flags, DNS_SERVFAIL, false, qwire, d.qwire_len);
                return;
        }
        /* a fresh id, unique among those waiting: answers are matched by it */
        uint16_t id = 0;
        for (bool clash = true; clash;) {
                id = (uint16_t)rng_next(n);
                clash = false;
                for (size_t i = 0; i < NETD_DNS_PENDING_MAX && !clash; i++)
                        clash = n->pend[i].used && n->pend[i].up_id == id;
        }
        *pe = (struct pending){
                .used = true, .up_id = id, .guest_id = d.id, .guest_flags = d.flags, .peer = peer,
                .name = d.qname, .qtype = d.qtype, .qclass = d.qclass, .qwire_len = d.qwire_len,
                .rule = rule, .deadline = now + NETD_DNS_TIMEOUT_MS,
        };
        memcpy(pe->qwire, qwire, d.qwire_len);
        /* what the guest can take: its EDNS0 size, at most a frame of the MTU */
        unsigned link = n->c.mtu > (p->family == 4 ? 28u : 48u) ? n->c.mtu - (p->family == 4 ? 28u : 48u) : 0;
        pe->udp_max = (unsigned)udp_max < link ? (unsigned)udp_max : link;
        if (pe->udp_max < DNS_UDP_MIN)
                pe->udp_max = DNS_UDP_MIN;
        memcpy(n->scratch, p->payload, p->payload_len);
        put16(n->scratch, id);
        n->c.send_upstream(n->c.opaque, n->scratch, p->payload_len);
}

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
        if (!rest || !reverse_addr(q, &a, &bits) || a.family != 4 || bits != 32)
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
        return !reverse_addr(name, &a, &bits) || bits != 32;
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
        if (!reverse_refused(n, name))
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

void netd_from_upstream(struct netd *n, const uint8_t *msg, size_t len, int64_t now_ms)
{
        n->now = now_ms;
        struct dns_msg hdr;
        if (len > sizeof(n->msgbuf) || dns_msg_parse(msg, len, true, &hdr) != 1 || !(hdr.flags & DNS_QR) ||
            hdr.qname.unusual)
                return;
        /* anti-spoofing: the id we chose and the question we asked */
        struct pending *pe = NULL;
        for (size_t i = 0; i < NETD_DNS_PENDING_MAX && !pe; i++) {
                struct pending *c = &n->pend[i];
                if (c->used && c->up_id == hdr.id && c->qtype == hdr.qtype && c->qclass == hdr.qclass &&
                    strcmp(c->name.text, hdr.qname.text) == 0)
                        pe = c;
        }
        if (!pe)
                return;
        pe->used = false;
        char tb[16], chain[CHAIN_MAX][NET_NAME_MAX + 1];
        const char *tname = dns_type_name(pe->qtype, tb, sizeof(tb));
        size_t nchain;
        char rev[NET_NAME_MAX + 1] = "";
        if (!answer_chain(&hdr, chain, &nchain) ||
            (!answer_reverse_ok(n, &hdr, pe->name.text, rev, sizeof(rev)) && !rev[0])) {
                nlog(n, "dns servfail %s %s: malformed answer from upstream", pe->name.text, tname);
                dns_reply(n, &pe->peer, pe->guest_id, pe->guest_flags, DNS_SERVFAIL, false, pe->qwire,
                          pe->qwire_len);
                return;
        }
        if (rev[0]) {
                n->st.dns_denied++;
                nlog(n, "dns refuse %s %s: the answer holds %s, a reverse name of an address this sandbox may not "
                        "reach",
                     pe->name.text, tname, rev);
                dns_reply(n, &pe->peer, pe->guest_id, pe->guest_flags, DNS_REFUSED, false, pe->qwire, pe->qwire_len);
                return;
        }
        /* Every address first: one a rule would not let the guest reach
         * refuses the whole answer, before anything is learned from it. */
        struct dns_msg d = hdr;
        struct dns_rr rr;
        struct net_addr a;
        char addrs[256] = "", as[64];
        size_t naddr = 0;
        while (dns_rr_next(&d, &rr) > 0) {
                if (!rr_addr(&d, &rr, &a))
                        continue;
                bool learned = pe->rule >= 0 && chain_has(chain, nchain, &rr.owner);
                /* A name a rule allows may point at private addresses (what
                 * such rules are for), never at the host, loopback,
                 * link-local or metadata addresses the policy denies: whoever
                 * writes any record of its CNAME chain would get them. */
                bool checked = learned ? net_addr_special(&n->c, &a) : !net_group_has(&n->c, NET_G_PUBLIC, &a);
                if (checked && !some_egress_allowed(n, &a)) {
                        net_addr_format(&a, as, sizeof(as));
                        n->st.dns_rebind_refused++;
                        nlog(n, "dns refuse %s %s %s: %s answer for a public name (rebinding)", pe->name.text, tname,
                             as, addr_group_word(n, &a));
                        dns_reply(n, &pe->peer, pe->guest_id, pe->guest_flags, DNS_REFUSED, false, pe->qwire,
                                  pe->qwire_len);
                        return;
                }
                if (naddr++ < 4) {
                        net_addr_format(&a, as, sizeof(as));
                        size_t l = strlen(addrs);
                        snprintf(addrs + l, sizeof(addrs) - l, "%s%s", l ? ", " : "", as);
                }
        }
        if (pe->rule >= 0) {
                d = hdr;
                while (dns_rr_next(&d, &rr) > 0)
                        if (rr_addr(&d, &rr, &a) && chain_has(chain, nchain, &rr.owner))
                                learn_add(n, (uint32_t)pe->rule, &a, rr.ttl);
        }
        unsigned rcode = hdr.flags & 15;
        if (naddr)
                nlog(n, "dns allow %s %s -> %s%s", pe->name.text, tname, addrs, naddr > 4 ? ", ..." : "");
        else if (rcode == DNS_NXDOMAIN)
                nlog(n, "dns allow %s %s (NXDOMAIN)", pe->name.text, tname);
        else
                nlog(n, "dns allow %s %s (no address, rcode %u)", pe->name.text, tname, rcode);
        if (len > pe->udp_max) {
                /* too big for the guest: it may ask again over TCP (which
                 * msb does not serve) or make do without */
                dns_reply(n, &pe->peer, pe->guest_id, pe->guest_flags, (enum dns_rcode)rcode, true, pe->qwire,
                          pe->qwire_len);
                return;
        }
        memcpy(n->msgbuf, msg, len);
        put16(n->msgbuf, pe->guest_id);
        dns_send(n, &pe->peer, n->msgbuf, len);
        (void)now_ms;
}

/* ---- frames ---- */

static void log_flow(struct netd *n, struct verdict v, bool ingress, uint8_t proto,
                     const struct net_addr *remote, uint16_t rport, uint16_t gport)
{
        if (!n->c.log)
                return;
        char ap[80], w[400];
        addr_port(remote, proto == 1 ? 0 : rport, ap, sizeof(ap));
        why(n, v, ingress, w, sizeof(w));
        if (ingress)
                nlog(n, "%s ingress %s %s -> guest port %u (%s)", v.allow ? "allow" : "deny", proto_name(proto), ap,
                     gport, w);
        else
                nlog(n, "%s egress %s %s (%s)", v.allow ? "allow" : "deny", proto_name(proto), ap, w);
}

/* A TCP flow is closed (forgotten after a minute idle, first to go when
 * the table is full) on a reset or once both sides sent FIN: a guest's FIN
 * alone is a half-close that leaves passt's socket open, and must keep
 * counting against NETD_TCP_FLOWS_MAX.  A new SYN on the same four-tuple
 * opens it again. */
static void track_close(struct flow *f, const struct pkt *p, bool from_guest)
{
        if (p->proto != IPPROTO_TCP_)
                return;
        if ((p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
                f->closed = f->fin_guest = f->fin_stack = false;
        if (p->tcp_flags & TCP_FIN)
                *(from_guest ? &f->fin_guest : &f->fin_stack) = true;
        if ((p->tcp_flags & TCP_RST) || (f->fin_guest && f->fin_stack))
                f->closed = true;
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
        bool is_dns = (proto == 6 || proto == 17) && rport == 53 && net_addr_eq(&p.dst, gw_of(n, p.family));
        struct flow_key k = flow_key_of(p.family, proto, gport, &p.dst, rport);
        struct flow *fl = flow_find(n, &k, now_ms);
        if (fl && !fl->allow && fl->learn_gen != n->learn_gen && !fl->ingress && !is_dns) {
                /* denied before something was learned: judge it again */
                struct verdict v = evaluate(n, false, &p.dst, proto, rport, false);
                if (v.allow && held_full(n, proto)) {
                        /* judged again once a connection closes */
                        log_capped(n, false, proto, &p.dst, rport);
                } else {
                        fl->learn_gen = n->learn_gen;
                        if (v.allow) {
                                flow_set_allow(n, fl, true);
                                log_flow(n, v, false, proto, &p.dst, rport, gport);
                        }
                }
        }
        if (!fl) {
                struct verdict v;
                if (is_dns && proto == 6) {
                        v = (struct verdict){ false, -1 };
                        if (n->c.log) {
                                char ap[80];
                                addr_port(&p.dst, rport, ap, sizeof(ap));
                                nlog(n, "deny egress tcp %s (DNS over TCP is not served)", ap);
                        }
                } else {
                        v = evaluate(n, false, &p.dst, proto, rport, is_dns);
                        if (v.allow && held_full(n, proto)) {
                                log_capped(n, false, proto, &p.dst, rport);
                                deny_reply(n, &p, &n->to_guest);
                                return NETD_DROP;
                        }
                        log_flow(n, v, false, proto, &p.dst, rport, gport);
                }
                fl = flow_add(n, &k, now_ms);
                flow_set_allow(n, fl, v.allow);
                fl->learn_gen = n->learn_gen;
        }
        track_close(fl, &p, true);
        if (!fl->allow) {
                n->st.denied++;
                deny_reply(n, &p, &n->to_guest);
                return NETD_DROP;
        }
        if (is_dns && proto == 17) {
                dns_query(n, &p, now_ms);
                return NETD_DROP;
        }
        if (proto == 17 && !uport_take(n, gport, now_ms)) {
                log_capped(n, false, proto, &p.dst, rport);
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
        if (!fl) {
                bool syn = proto == 6 && (p.tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;
                if (proto == 17 && !udp_published(n, gport)) {
                        /* passt hands the guest a datagram from anyone to a
                         * port the guest sent from: only an answer from
                         * whom it sent to is one */
                        n->st.denied++;
                        if (n->c.log) {
                                char ap[80];
                                addr_port(&p.src, rport, ap, sizeof(ap));
                                nlog(n, "deny ingress udp %s -> guest port %u (not a published port, nor an answer)",
                                     ap, gport);
                        }
                        return NETD_DROP;
                }
                if (proto == 1) {
                        /* an echo reply to no echo request of the guest's */
                        n->st.denied++;
                        if (n->c.log) {
                                char as[64];
                                net_addr_format(&p.src, as, sizeof(as));
                                nlog(n, "deny ingress icmp echo reply from %s, id %u (not an answer)", as, gport);
                        }
                        return NETD_DROP;
                }
                if (!syn && proto != 17) {
                        /* TCP of a flow this table forgot (passt still has it) */
                        n->st.passed++;
                        return NETD_PASS;
                }
                struct verdict v = evaluate(n, true, &p.src, proto, gport, false);
                if (v.allow && held_full(n, proto)) {
                        log_capped(n, true, proto, &p.src, rport);
                        deny_reply(n, &p, &n->to_stack);
                        return NETD_DROP;
                }
                log_flow(n, v, true, proto, &p.src, rport, gport);
                fl = flow_add(n, &k, now_ms);
                flow_set_allow(n, fl, v.allow);
                fl->ingress = true;
                fl->learn_gen = n->learn_gen;
        }
        track_close(fl, &p, false);
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

int64_t netd_tick(struct netd *n, int64_t now_ms)
{
        n->now = now_ms;
        int64_t next = -1;
        for (size_t i = 0; i < NETD_DNS_PENDING_MAX; i++) {
                struct pending *pe = &n->pend[i];
                if (!pe->used)
                        continue;
                if (now_ms >= pe->deadline) {
                        char tb[16];
                        pe->used = false;
                        nlog(n, "dns servfail %s %s: no answer from upstream", pe->name.text,
                             dns_type_name(pe->qtype, tb, sizeof(tb)));
                        dns_reply(n, &pe->peer, pe->guest_id, pe->guest_flags, DNS_SERVFAIL, false, pe->qwire,
                                  pe->qwire_len);
                } else if (next < 0 || pe->deadline < next) {
                        next = pe->deadline;
                }
        }
        if (now_ms >= n->next_sweep) {
                for (uint32_t i = 0; i < n->flow_max; i++)
                        if (n->flows[i].used && flow_expired(&n->flows[i], now_ms))
                                flow_del(n, (int32_t)i);
                uport_sweep(n, now_ms);
                n->next_sweep = now_ms + SWEEP_MS;
        }
        if ((n->nflows || n->nuports) && (next < 0 || n->next_sweep < next))
                next = n->next_sweep;
        return next;
}
