/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy engine's lifetime and plumbing: netd_new/netd_free, the two
 * queues of frames it generates, the host's addresses, its statistics,
 * netd_tick, and the small pieces every part of it uses (its generator and
 * hash, the index-linked lists of its tables, its log).  What the engine
 * is and how its files divide the work: engine.h; semantics:
 * docs/network.md, "Policy and DNS".
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/util.h"
#include "net/engine.h"

#define LOG_MAX 640

uint64_t netd_rng(struct netd *n)
{
        /* xorshift64*: ids and hash keys only need to be unguessable from
         * the guest (seeded from getrandom), not cryptographic */
        n->rng ^= n->rng >> 12;
        n->rng ^= n->rng << 25;
        n->rng ^= n->rng >> 27;
        return n->rng * 0x2545f4914f6cdd1dull;
}

uint32_t netd_hash(uint64_t key, const void *p, size_t len)
{
        const uint8_t *b = p;
        uint64_t h = key ^ 0xcbf29ce484222325ull;
        for (size_t i = 0; i < len; i++)
                h = (h ^ b[i]) * 0x100000001b3ull;
        h ^= h >> 29;
        h *= 0xbf58476d1ce4e5b9ull;
        return (uint32_t)(h ^ (h >> 32));
}

void netd_list_unlink(struct list *l, struct link *k, int32_t i)
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

void netd_list_push(struct list *l, struct link *k, int32_t i)
{
        k[i].next = -1;
        k[i].prev = l->tail;
        if (l->tail >= 0)
                k[l->tail].next = i;
        else
                l->head = i;
        l->tail = i;
}

void netd_log(struct netd *n, const char *fmt, ...)
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

void netd_queue_push(struct netd_queue *q, const uint8_t *frame, size_t len)
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

const struct net_addr *netd_gw(const struct netd *n, uint8_t family)
{
        return family == 4 ? &n->c.gw4 : &n->c.gw6;
}

void netd_addr_port(const struct net_addr *a, uint16_t port, char *out, size_t outsz)
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
        n->hkey = netd_rng(n);

        n->flow_max = c->flow_max ? c->flow_max : NETD_FLOW_MAX;
        flows_setup(n);
        learn_setup(n);
        return n;
}

void netd_free(struct netd *n)
{
        if (!n)
                return;
        free((void *)n->c.rules);
        free((void *)n->c.ports);
        free((void *)n->c.host_addrs);
        flows_free(n);
        learn_free(n);
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
        netd_log(n, "host address %s %s", add ? "added" : "removed", as);
        return true;
}

void netd_stats(const struct netd *n, struct netd_stats *s)
{
        *s = n->st;
}

int64_t netd_tick(struct netd *n, int64_t now_ms)
{
        n->now = now_ms;
        int64_t next = dnsq_expire(n, now_ms);
        int64_t sweep = flows_sweep(n, now_ms);
        if (sweep >= 0 && (next < 0 || sweep < next))
                next = sweep;
        return next;
}
