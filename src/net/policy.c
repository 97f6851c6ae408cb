/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The verdicts: which rule, or the mode, decides a flow to or from an
 * address (rules in order, the first that matches wins), and the
 * rebinding check's "could the guest reach it at all".  docs/network.md,
 * "Policy and DNS".
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "common/util.h"
#include "net/engine.h"

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

struct verdict policy_evaluate(const struct netd *n, bool ingress, const struct net_addr *a, uint8_t proto,
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
bool policy_egress_reaches(const struct netd *n, const struct net_addr *a)
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

void policy_why(const struct netd *n, struct verdict v, bool ingress, char *out, size_t outsz)
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
