/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The flow table (a cache of verdicts, so a connection is judged and
 * logged once; bounded, least recently used out) and what a sandbox holds
 * of the host through passt: TCP and echo flows allowed, UDP source ports
 * in use, each under its cap (net.h, docs/security.md).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "net/engine.h"

/* idle times after which a flow is forgotten (and judged again if seen) */
#define FLOW_TCP_MS (2 * 3600 * 1000LL)
#define FLOW_TCP_CLOSED_MS (60 * 1000LL)
#define FLOW_OTHER_MS (180 * 1000LL)
/* passt keeps an echo flow's ping socket 60 s past its last request */
#define FLOW_ICMP_MS (70 * 1000LL)
/* how often netd_tick sweeps the flow table for idle flows */
#define SWEEP_MS (10 * 1000LL)

static uint32_t flow_hash(const struct netd *n, const struct flow_key *k)
{
        return netd_hash(n->hkey, k, sizeof(*k)) & n->fmask;
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
        netd_list_unlink(&n->lru, n->flru, i);
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
void flow_set_allow(struct netd *n, struct flow *f, bool allow)
{
        uint32_t *c = held(n, f->k.proto);
        if (c)
                *c = *c + (allow ? 1u : 0u) - (f->allow ? 1u : 0u);
        f->allow = allow;
}

/* What one more allowed flow of proto would take past its cap */
bool flow_held_full(const struct netd *n, uint8_t proto)
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
                netd_list_unlink(&n->lru, n->flru, i);
                netd_list_push(&n->lru, n->flru, i);
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

struct flow *flow_find(struct netd *n, const struct flow_key *k, int64_t now)
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
                netd_list_unlink(&n->lru, n->flru, i);
                netd_list_push(&n->lru, n->flru, i);
                return f;
        }
        return NULL;
}

struct flow *flow_add(struct netd *n, const struct flow_key *k, int64_t now)
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
        netd_list_push(&n->lru, n->flru, i);
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
bool uport_take(struct netd *n, uint16_t port, int64_t now)
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
void uport_touch(struct netd *n, uint16_t port, int64_t now)
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

void flow_log_capped(struct netd *n, bool ingress, uint8_t proto, const struct net_addr *remote, uint16_t rport)
{
        n->st.flows_capped++;
        if (!n->c.log)
                return;
        char ap[80];
        netd_addr_port(remote, rport, ap, sizeof(ap));
        if (proto == 6)
                netd_log(n, "deny %s tcp %s (%u TCP flows, the most a sandbox may hold)",
                         ingress ? "ingress" : "egress", ap, NETD_TCP_FLOWS_MAX);
        else if (proto == 1)
                netd_log(n, "deny egress icmp %s (%u echo flows, the most a sandbox may hold)", ap,
                         NETD_ICMP_FLOWS_MAX);
        else
                netd_log(n, "deny egress udp %s (%u UDP ports in use, the most a sandbox may hold)", ap,
                         NETD_UDP_PORTS_MAX);
}

struct flow_key flow_key_of(uint8_t family, uint8_t proto, uint16_t gport, const struct net_addr *remote,
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

/* A TCP flow is closed (forgotten after a minute idle, first to go when
 * the table is full) on a reset or once both sides sent FIN: a guest's FIN
 * alone is a half-close that leaves passt's socket open, and must keep
 * counting against NETD_TCP_FLOWS_MAX.  A new SYN on the same four-tuple
 * opens it again. */
void flow_track_close(struct flow *f, const struct pkt *p, bool from_guest)
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

void flows_setup(struct netd *n)
{
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
}

void flows_free(struct netd *n)
{
        free(n->flows);
        free(n->flru);
        free(n->fbuckets);
        free(n->uport_seen);
}

int64_t flows_sweep(struct netd *n, int64_t now)
{
        if (now >= n->next_sweep) {
                for (uint32_t i = 0; i < n->flow_max; i++)
                        if (n->flows[i].used && flow_expired(&n->flows[i], now))
                                flow_del(n, (int32_t)i);
                uport_sweep(n, now);
                n->next_sweep = now + SWEEP_MS;
        }
        return n->nflows || n->nuports ? n->next_sweep : -1;
}
