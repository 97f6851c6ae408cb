/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The network policy engine: rules, published ports, and the per-frame
 * decisions of msb-netd (the relay between QEMU's virtio-net stream and
 * passt).  Pure code, no I/O of its own: msb-netd feeds it frames and DNS
 * datagrams and drains what it queues.  Everything handed to it from the
 * guest (frames, DNS queries) and from upstream (DNS answers) is untrusted.
 * See docs/network.md.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msb-error.h"

enum net_mode { NET_MODE_NONE, NET_MODE_PUBLIC, NET_MODE_PRIVATE, NET_MODE_HOST, NET_MODE_ALL };
enum net_dir { NET_DIR_BOTH, NET_DIR_EGRESS, NET_DIR_INGRESS };
enum net_group {
        NET_G_PUBLIC = 1, NET_G_PRIVATE, NET_G_LOOPBACK, NET_G_LINKLOCAL, NET_G_META,
        NET_G_MULTICAST, NET_G_HOST, NET_G_DNS, NET_G_ANY,
};
enum net_target { NET_T_CIDR, NET_T_DOMAIN, NET_T_WILDCARD, NET_T_GROUP };

/* family 4: a[0..3]; family 6: a[0..15] */
struct net_addr {
        uint8_t family;
        uint8_t a[16];
};

#define NET_NAME_MAX 253
struct net_rule {
        bool allow;
        enum net_dir dir;
        enum net_target kind;
        struct net_addr addr; /* NET_T_CIDR */
        unsigned prefix;      /* NET_T_CIDR: 0..32 or 0..128 */
        char name[NET_NAME_MAX + 1]; /* DOMAIN: lowercase, no trailing dot; WILDCARD: the suffix after "*." */
        enum net_group group; /* NET_T_GROUP */
        uint8_t proto;        /* 0 any, 6 tcp, 17 udp, 1 icmp (ICMP and ICMPv6) */
        uint16_t port_lo, port_hi; /* 0,0: any port (tcp/udp only) */
        char text[320];       /* the rule as written, for logs */
};

/* "public", "none", ... */
int net_mode_parse(const char *s, enum net_mode *m);
const char *net_mode_name(enum net_mode m);
/* allow|deny[:egress|:ingress]@TARGET[:tcp|udp|icmp[:PORTS]], PORTS N or N-M.
 * 0 or -1 with a one-line reason in err (EINVAL; naming the part that is
 * wrong; err may be NULL). */
int net_rule_parse(const char *s, struct net_rule *r, struct msb_error *err);

/* -p [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp]; HOSTIP defaults to 127.0.0.1,
 * an IPv6 HOSTIP is written in brackets: [::1]:8080:80 */
struct net_port {
        struct net_addr host;
        uint16_t host_port, guest_port;
        uint8_t proto; /* 6 or 17 */
};
/* 0 or -1 with the reason in err, as net_rule_parse */
int net_port_parse(const char *s, struct net_port *p, struct msb_error *err);

/* 1 if the text is an address (v4 dotted or v6), filling a */
int net_addr_parse(const char *s, struct net_addr *a);
void net_addr_format(const struct net_addr *a, char *out, size_t outsz);
/* same family and same bytes (family 0 never equals anything) */
bool net_addr_eq(const struct net_addr *x, const struct net_addr *y);
/* a within net/prefix (same family) */
bool net_prefix_has(const struct net_addr *net, unsigned prefix, const struct net_addr *a);
/* "public", "link-local", ... ("?" for none) */
const char *net_group_name(enum net_group g);
/* is a in group g, given the sandbox's gateway and host addresses (cfg) */
struct net_config;
bool net_group_has(const struct net_config *c, enum net_group g, const struct net_addr *a);
/* never a destination on the wire: 0/8, ::, v4-mapped, v4-compatible, NAT64
 * (every flow to one is denied, whatever the mode and rules) */
bool net_addr_bogus(const struct net_addr *a);
/* the host's, loopback, link-local (metadata included), multicast or bogus:
 * what an answer to a name a rule allows may still not point at */
bool net_addr_special(const struct net_config *c, const struct net_addr *a);
/* Is every address of a/bits public (no private, loopback, link-local,
 * metadata, multicast, reserved or host address in it)? */
bool net_prefix_all_public(const struct net_config *c, const struct net_addr *a, unsigned bits);

struct net_config {
        enum net_mode mode;
        const struct net_rule *rules;
        size_t nrules;
        const struct net_port *ports;
        size_t nports;
        /* the guest's side of the link; gw*.family 0 when that family is off */
        struct net_addr guest4, gw4, guest6, gw6;
        /* the host's own addresses (group "host", with the gateways) */
        const struct net_addr *host_addrs;
        size_t nhost_addrs;
        unsigned mtu;
        /* one line per decision when set (DNS answers, new flows, denials) */
        void (*log)(void *opaque, const char *line);
        /* a DNS query for the upstream resolver; msb-netd sends it as one datagram */
        void (*send_upstream)(void *opaque, const uint8_t *msg, size_t n);
        void *opaque;
        /* 0: the engine seeds its generator (DNS ids, hash keys) from
         * getrandom; anything else makes it deterministic (tests, fuzzing) */
        uint64_t rng_seed;
        /* flow table size; 0: NETD_FLOW_MAX */
        unsigned flow_max;
};

/* Queue of frames for one side, each as 4-byte big-endian length + frame
 * (passt's and QEMU's stream framing).  Bounded: netd_* never grows one past
 * NETD_QUEUE_MAX; what would is dropped (and counted). */
#define NETD_QUEUE_MAX (1u << 20)
/* flows remembered at once (16384 * ~64 bytes); when full, the least
 * recently used one that holds nothing of the host's goes (flow_victim), and
 * is simply evaluated again when seen next */
#define NETD_FLOW_MAX 16384
/* What one sandbox may hold of the host through passt (docs/security.md).
 * UDP: guest source ports in use, each a socket passt binds on the host's
 * every address for as long as the port is used and NETD_UDP_PORT_MS more;
 * TCP: flows, each a host socket of passt's.  Past either, new ones are
 * answered as denied (ICMP administratively prohibited, a reset). */
#define NETD_UDP_PORTS_MAX 256
#define NETD_UDP_PORT_MS (190 * 1000LL)
#define NETD_TCP_FLOWS_MAX 4096
/* ICMP echo flows (the guest's echo id and the remote address), each a ping
 * socket of passt's until 60 s after its last request */
#define NETD_ICMP_FLOWS_MAX 64
/* DNS queries waiting for upstream (a full table answers SERVFAIL) */
#define NETD_DNS_PENDING_MAX 256
#define NETD_DNS_TIMEOUT_MS 5000
/* addresses learned from answers to names a rule allows, per rule and in all */
#define NETD_LEARN_PER_RULE 1024
#define NETD_LEARN_MAX 8192
/* A learned address counts for its record's TTL, but never less than the
 * floor (a TTL of 0 would make the name unusable: the guest connects after
 * the answer) nor more than the cap; seen again, it lasts the longer. */
#define NETD_LEARN_TTL_FLOOR_S 60
#define NETD_LEARN_TTL_CAP_S 86400
struct netd_queue {
        uint8_t *buf;
        size_t len, cap, off; /* off: the part already written out */
        uint64_t dropped;
};
/* Draining: write buf[off..len) and add what was written to off (frames may
 * be cut anywhere, the stream is one byte sequence).  netd empties a queue
 * whose off reached len, and moves the unwritten tail to the front when it
 * needs room; buf may move, so keep no pointer into it across netd_* calls. */

struct netd;
struct netd *netd_new(const struct net_config *c);
void netd_free(struct netd *n);

enum netd_verdict { NETD_PASS, NETD_DROP };
/* A frame from the guest (no length prefix).  PASS: the caller forwards these
 * exact bytes to passt.  DROP: it does not; netd may have queued a reply for
 * the guest (TCP reset, ICMP unreachable, a DNS answer) or sent a query
 * upstream. */
enum netd_verdict netd_from_guest(struct netd *n, const uint8_t *f, size_t len, int64_t now_ms);
/* A frame from passt.  PASS: forward to the guest.  DROP: not (an ingress
 * connection a rule denies; netd may have queued a reset for passt). */
enum netd_verdict netd_from_stack(struct netd *n, const uint8_t *f, size_t len, int64_t now_ms);
/* A datagram from the upstream resolver. */
void netd_from_upstream(struct netd *n, const uint8_t *msg, size_t len, int64_t now_ms);
/* Expire what is due (unanswered DNS queries get SERVFAIL, idle flows are
 * forgotten); returns the next time it wants to be called, or -1. */
int64_t netd_tick(struct netd *n, int64_t now_ms);

/* The host gained (add) or lost an address: group "host" follows at once,
 * for flows judged from now on (msb-netd reads the host's netlink address
 * events).  At most NET_HOST_ADDRS_MAX; false when an add finds the list
 * full. */
#define NET_HOST_ADDRS_MAX 1024
bool netd_host_addr(struct netd *n, const struct net_addr *a, bool add);
/* what netd generated itself, for the guest and for passt */
struct netd_queue *netd_to_guest(struct netd *n);
struct netd_queue *netd_to_stack(struct netd *n);

struct netd_stats {
        uint64_t passed, denied, dropped_malformed, dns_queries, dns_denied, dns_rebind_refused;
        /* fragments, protocols other than TCP/UDP/ICMP, ICMP other than echo */
        uint64_t dropped_unsupported;
        /* flows evicted (least recently used) because the table was full */
        uint64_t flows_evicted;
        /* new flows refused: NETD_UDP_PORTS_MAX or NETD_TCP_FLOWS_MAX reached */
        uint64_t flows_capped;
};
void netd_stats(const struct netd *n, struct netd_stats *s);
