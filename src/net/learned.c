/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The addresses learned from answers to names a rule allows (allow@NAME,
 * allow@*.SUFFIX): a bounded table of (rule, address, expiry), FIFO per
 * rule and over all, that such a rule's target holds until the record's
 * TTL (within NETD_LEARN_TTL_FLOOR_S and NETD_LEARN_TTL_CAP_S) runs out.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "net/engine.h"

#define LEARN_BUCKETS 16384

static uint32_t learn_hash(const struct netd *n, uint32_t rule, const struct net_addr *a)
{
        uint8_t k[21];
        memcpy(k, &rule, 4);
        k[4] = a->family;
        memcpy(k + 5, a->a, 16);
        return netd_hash(n->hkey, k, sizeof(k)) & (LEARN_BUCKETS - 1);
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
        netd_list_unlink(&n->lall, n->lglob, i);
        netd_list_unlink(&n->lrules[l->rule], n->lrule, i);
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
bool learn_live(const struct netd *n, uint32_t rule, const struct net_addr *a)
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

void learn_add(struct netd *n, uint32_t rule, const struct net_addr *a, uint32_t ttl)
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
                netd_list_unlink(&n->lall, n->lglob, i);
                netd_list_push(&n->lall, n->lglob, i);
                netd_list_unlink(&n->lrules[rule], n->lrule, i);
                netd_list_push(&n->lrules[rule], n->lrule, i);
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
        netd_list_push(&n->lall, n->lglob, i);
        netd_list_push(&n->lrules[rule], n->lrule, i);
        n->lcount[rule]++;
        n->nlearn++;
        n->learn_gen++;
}

void learn_setup(struct netd *n)
{
        n->lall = (struct list){ -1, -1 };
        n->lrules = xcalloc(n->c.nrules, sizeof(*n->lrules));
        for (size_t i = 0; i < n->c.nrules; i++)
                n->lrules[i] = (struct list){ -1, -1 };
        n->lcount = xcalloc(n->c.nrules, sizeof(*n->lcount));
}

void learn_free(struct netd *n)
{
        free(n->learn);
        free(n->lglob);
        free(n->lrule);
        free(n->lbuckets);
        free(n->lrules);
        free(n->lcount);
}
