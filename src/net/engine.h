/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy engine's private header: struct netd and what the files of
 * the engine share.  The engine (net.h's netd_* API) is split by job:
 * engine.c (its lifetime, queues and small pieces), frames.c (each frame
 * from the guest or from passt), policy.c (the verdicts), flows.c (the flow
 * table and what a sandbox holds of the host), learned.c (addresses learned
 * from DNS answers), dns-query.c (the guest's DNS questions) and
 * dns-answer.c (upstream's answers).
 *
 * It keeps three bounded tables, all allocated once in netd_new (or at
 * their first use): flows (a cache of verdicts, so a connection is judged
 * and logged once), DNS queries waiting for upstream, and the addresses
 * learned from answers to names a rule allows.  Nothing here does I/O:
 * replies go into the two queues, queries to c->send_upstream, log lines
 * to c->log.  Semantics: docs/network.md, "Policy and DNS".
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/dns.h"
#include "net/net.h"
#include "net/packet.h"

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

/* A verdict on a flow: allowed or not, and by what */
struct verdict {
        bool allow;
        int rule; /* index into rules, or -1: the mode's (or ingress) default,
                   * or NETD_RULE_BOGUS */
};
#define NETD_RULE_BOGUS (-2)

/* ---- engine.c: small pieces ---- */

/* The engine's generator (xorshift64*), for DNS ids and hash keys */
uint64_t netd_rng(struct netd *n);
/* A keyed hash of len bytes at p (FNV-1a, then mixed) */
uint32_t netd_hash(uint64_t key, const void *p, size_t len);
/* Take i out of list l, whose links are k */
void netd_list_unlink(struct list *l, struct link *k, int32_t i);
/* Append i to list l (its newest), whose links are k */
void netd_list_push(struct list *l, struct link *k, int32_t i);
/* One line to c->log (when set), at most LOG_MAX bytes */
void netd_log(struct netd *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Queue frame for one side with its 4-byte length; dropped (and counted)
 * past NETD_QUEUE_MAX */
void netd_queue_push(struct netd_queue *q, const uint8_t *frame, size_t len);
/* The gateway's address of family 4 or 6 (family 0 when that one is off) */
const struct net_addr *netd_gw(const struct netd *n, uint8_t family);
/* "10.0.0.1:80", "[fd00::1]:80", or just the address (port 0) */
void netd_addr_port(const struct net_addr *a, uint16_t port, char *out, size_t outsz);

/* ---- policy.c: the verdicts ---- */

/* The verdict on a flow to (egress) or from (ingress) a, proto and port;
 * is_dns: a flow to the gateway's port 53 */
struct verdict policy_evaluate(const struct netd *n, bool ingress, const struct net_addr *a, uint8_t proto,
                               uint16_t port, bool is_dns);
/* Would any egress rule (by address or group) or the mode let some traffic
 * reach a?  The rebinding check for answers to names no rule allows. */
bool policy_egress_reaches(const struct netd *n, const struct net_addr *a);
/* What decided v, for a log line: rule N "...", the mode, the default */
void policy_why(const struct netd *n, struct verdict v, bool ingress, char *out, size_t outsz);

/* ---- flows.c: the flow table and what a sandbox holds of the host ---- */

/* Allocate the flow table of n->flow_max flows (netd_new) */
void flows_setup(struct netd *n);
/* Free what flows_setup and uport_take allocated */
void flows_free(struct netd *n);
/* The key of a flow: family, proto (1 for ICMP echo), the guest's port (echo
 * id) and the remote address and port */
struct flow_key flow_key_of(uint8_t family, uint8_t proto, uint16_t gport, const struct net_addr *remote,
                            uint16_t rport);
/* The flow of k, NULL when none (or it expired: then forgotten); a flow
 * found becomes the most recently used */
struct flow *flow_find(struct netd *n, const struct flow_key *k, int64_t now);
/* A new flow of k, denied; when the table is full, flow_victim's goes */
struct flow *flow_add(struct netd *n, const struct flow_key *k, int64_t now);
/* Set a flow's verdict, keeping the count of what it holds of the host */
void flow_set_allow(struct netd *n, struct flow *f, bool allow);
/* Would one more allowed flow of proto go past its cap? */
bool flow_held_full(const struct netd *n, uint8_t proto);
/* Count and log a new flow refused at a cap */
void flow_log_capped(struct netd *n, bool ingress, uint8_t proto, const struct net_addr *remote, uint16_t rport);
/* Follow a TCP flow's FINs and resets (closed flows hold nothing) */
void flow_track_close(struct flow *f, const struct pkt *p, bool from_guest);
/* The guest sends from UDP port: false when the sandbox has
 * NETD_UDP_PORTS_MAX others in use */
bool uport_take(struct netd *n, uint16_t port, int64_t now);
/* A datagram for the guest's UDP port: passt's socket stays as long */
void uport_touch(struct netd *n, uint16_t port, int64_t now);
/* Forget idle flows and UDP ports when a sweep is due; the time of the
 * next one when something is left to sweep, else -1 */
int64_t flows_sweep(struct netd *n, int64_t now);

/* ---- learned.c: addresses learned from DNS answers ---- */

/* The per-rule lists of the learned table (netd_new) */
void learn_setup(struct netd *n);
/* Free what learn_setup and learn_add allocated */
void learn_free(struct netd *n);
/* a learned for name rule rule, and not expired */
bool learn_live(const struct netd *n, uint32_t rule, const struct net_addr *a);
/* Learn a for rule for ttl seconds (within the floor and cap) */
void learn_add(struct netd *n, uint32_t rule, const struct net_addr *a, uint32_t ttl);

/* ---- dns-query.c: the guest's DNS questions ---- */

/* A UDP datagram to the gateway's port 53: answered at once (refused,
 * denied, malformed, no room) or sent upstream and remembered */
void dnsq_query(struct netd *n, const struct pkt *p, int64_t now);
/* A DNS message to the guest who asked, as a UDP frame from the gateway */
void dnsq_send(struct netd *n, const struct dns_peer *peer, const uint8_t *msg, size_t len);
/* An answer of our own (rcode rc, the question qwire) to the guest */
void dnsq_reply(struct netd *n, const struct dns_peer *peer, uint16_t id, uint16_t flags, enum dns_rcode rc,
                bool tc, const uint8_t *qwire, size_t qwire_len);
/* The address a reverse name names and how many bits of it; false for a
 * name outside in-addr.arpa and ip6.arpa */
bool dnsq_reverse_addr(const char *name, struct net_addr *a, unsigned *ret_bits);
/* A reverse name the guest may neither look up nor get in an answer */
bool dnsq_reverse_refused(const struct netd *n, const char *name);
/* SERVFAIL the queries upstream did not answer in time; the next deadline,
 * or -1 */
int64_t dnsq_expire(struct netd *n, int64_t now);
