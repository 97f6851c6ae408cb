/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A container's network namespace handed to its VM, as Kata's "tcfilter"
 * does: a tap device is made next to the namespace's interface (podman's,
 * CNI's eth0) and tc moves every frame between the two unchanged, both
 * ways, before the namespace's own stack sees it.  The guest's eth0 takes
 * the interface's MAC, addresses, default routes and MTU, so the
 * namespace's owner (its bridge, port mappings, DNS, policy) reaches the
 * guest as it would reach a runc container.  Plain rtnetlink: a few
 * requests, no library.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime.h"
#include "common/util.h"

#define TAP_NAME "msb0"
#define NS_MAX_LINKS 16

struct nl {
        int fd;
        uint32_t seq;
        union {
                struct nlmsghdr h;
                char buf[2048];
        } m;
};

static void nl_begin(struct nl *nl, uint16_t type, uint16_t flags, const void *body, size_t len)
{
        memset(&nl->m, 0, sizeof(nl->m));
        nl->m.h.nlmsg_type = type;
        nl->m.h.nlmsg_flags = NLM_F_REQUEST | flags;
        nl->m.h.nlmsg_seq = ++nl->seq;
        nl->m.h.nlmsg_len = (uint32_t)NLMSG_LENGTH(len);
        memcpy(NLMSG_DATA(&nl->m.h), body, len);
}

/* Our own requests only: the buffer is far larger than any of them. */
static struct rtattr *nl_put(struct nl *nl, uint16_t type, const void *data, size_t len)
{
        struct rtattr *a = (struct rtattr *)(nl->m.buf + NLMSG_ALIGN(nl->m.h.nlmsg_len));
        a->rta_type = type;
        a->rta_len = (uint16_t)RTA_LENGTH(len);
        if (len)
                memcpy(RTA_DATA(a), data, len);
        nl->m.h.nlmsg_len = (uint32_t)(NLMSG_ALIGN(nl->m.h.nlmsg_len) + RTA_ALIGN(a->rta_len));
        return a;
}

static void nl_end(struct nl *nl, struct rtattr *nest)
{
        nest->rta_len = (uint16_t)(nl->m.buf + nl->m.h.nlmsg_len - (char *)nest);
}

/* Send the request; for a dump call cb on every answer.  0 or -errno. */
static int nl_talk(struct nl *nl, void (*cb)(struct nlmsghdr *h, void *ud), void *ud)
{
        if (send(nl->fd, &nl->m, nl->m.h.nlmsg_len, 0) < 0)
                return -errno;
        uint32_t seq = nl->seq;
        char buf[32768];
        for (;;) {
                struct sockaddr_nl from;
                socklen_t fl = sizeof(from);
                ssize_t n = recvfrom(nl->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                /* the kernel's answers only */
                if (fl != sizeof(from) || from.nl_family != AF_NETLINK || from.nl_pid != 0)
                        continue;
                for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
                        if (h->nlmsg_seq != seq)
                                continue;
                        /* the namespace changed while it was dumped */
                        if (h->nlmsg_flags & NLM_F_DUMP_INTR)
                                return -EAGAIN;
                        if (h->nlmsg_type == NLMSG_DONE)
                                return 0;
                        if (h->nlmsg_type == NLMSG_ERROR) {
                                const struct nlmsgerr *e = NLMSG_DATA(h);
                                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
                                        return -EIO;
                                return e->error;
                        }
                        if (cb)
                                cb(h, ud);
                }
        }
}

struct link {
        int index;
        char name[IFNAMSIZ];
        uint8_t mac[6];
        bool has_mac, loopback;
        unsigned mtu;
};
struct links {
        struct link l[NS_MAX_LINKS];
        size_t n, total;
};

static void on_link(struct nlmsghdr *h, void *ud)
{
        struct links *ls = ud;
        if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
                return;
        const struct ifinfomsg *ifi = NLMSG_DATA(h);
        ls->total++;
        if (ls->n == NS_MAX_LINKS)
                return;
        struct link *l = &ls->l[ls->n++];
        memset(l, 0, sizeof(*l));
        l->index = ifi->ifi_index;
        l->loopback = ifi->ifi_flags & IFF_LOOPBACK;
        int len = (int)IFLA_PAYLOAD(h);
        for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
                if (a->rta_type == IFLA_IFNAME && RTA_PAYLOAD(a) >= 1)
                        snprintf(l->name, sizeof(l->name), "%.*s", (int)RTA_PAYLOAD(a), (char *)RTA_DATA(a));
                else if (a->rta_type == IFLA_ADDRESS && RTA_PAYLOAD(a) == 6) {
                        memcpy(l->mac, RTA_DATA(a), 6);
                        l->has_mac = true;
                } else if (a->rta_type == IFLA_MTU && RTA_PAYLOAD(a) == 4)
                        memcpy(&l->mtu, RTA_DATA(a), 4);
        }
}

struct addrs {
        int index;
        uint8_t a4[4], a6[16], gw4[4], gw6[16];
        unsigned p4, p6;
        bool gw4_set, gw6_set;
};

static void on_addr(struct nlmsghdr *h, void *ud)
{
        struct addrs *ad = ud;
        if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg)))
                return;
        const struct ifaddrmsg *ifa = NLMSG_DATA(h);
        if ((int)ifa->ifa_index != ad->index || ifa->ifa_scope != RT_SCOPE_UNIVERSE)
                return;
        int len = (int)IFA_PAYLOAD(h);
        for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
                if (a->rta_type != IFA_ADDRESS)
                        continue;
                if (ifa->ifa_family == AF_INET && RTA_PAYLOAD(a) == 4 && !ad->p4) {
                        memcpy(ad->a4, RTA_DATA(a), 4);
                        ad->p4 = ifa->ifa_prefixlen;
                } else if (ifa->ifa_family == AF_INET6 && RTA_PAYLOAD(a) == 16 && !ad->p6) {
                        memcpy(ad->a6, RTA_DATA(a), 16);
                        ad->p6 = ifa->ifa_prefixlen;
                }
        }
}

static void on_route(struct nlmsghdr *h, void *ud)
{
        struct addrs *ad = ud;
        if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg)))
                return;
        const struct rtmsg *rt = NLMSG_DATA(h);
        if (rt->rtm_dst_len != 0 || rt->rtm_table != RT_TABLE_MAIN)
                return;
        int len = (int)RTM_PAYLOAD(h), oif = 0;
        const void *gw = NULL;
        size_t gwlen = 0;
        for (struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
                if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) == 4)
                        memcpy(&oif, RTA_DATA(a), 4);
                else if (a->rta_type == RTA_GATEWAY) {
                        gw = RTA_DATA(a);
                        gwlen = RTA_PAYLOAD(a);
                }
        }
        if (oif != ad->index || !gw)
                return;
        if (rt->rtm_family == AF_INET && gwlen == 4 && !ad->gw4_set) {
                memcpy(ad->gw4, gw, 4);
                ad->gw4_set = true;
        } else if (rt->rtm_family == AF_INET6 && gwlen == 16 && !ad->gw6_set) {
                memcpy(ad->gw6, gw, 16);
                ad->gw6_set = true;
        }
}

static int dump(struct nl *nl, uint16_t type, int family, void (*cb)(struct nlmsghdr *, void *), void *ud)
{
        struct rtgenmsg g = {.rtgen_family = (unsigned char)family};
        nl_begin(nl, type, NLM_F_DUMP, &g, sizeof(g));
        return nl_talk(nl, cb, ud);
}

/* An ingress qdisc on IFINDEX and one filter that sends every frame out
 * of TO: u32 matching all (the kernels here have no matchall) with a
 * mirred redirect. */
static int redirect(struct nl *nl, int ifindex, int to, bool *made_qdisc)
{
        *made_qdisc = false;
        struct tcmsg q = {.tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_handle = TC_H_MAKE(TC_H_INGRESS, 0),
                          .tcm_parent = TC_H_INGRESS};
        nl_begin(nl, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, &q, sizeof(q));
        nl_put(nl, TCA_KIND, "ingress", sizeof("ingress"));
        int r = nl_talk(nl, NULL, NULL);
        if (r < 0)
                return r;
        *made_qdisc = true;
        struct tcmsg f = {.tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_parent = TC_H_MAKE(TC_H_INGRESS, 0),
                          .tcm_info = TC_H_MAKE(1u << 16, htons(ETH_P_ALL))};
        nl_begin(nl, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, &f, sizeof(f));
        nl_put(nl, TCA_KIND, "u32", sizeof("u32"));
        struct rtattr *opts = nl_put(nl, TCA_OPTIONS, NULL, 0);
        struct {
                struct tc_u32_sel sel;
                struct tc_u32_key key;
        } sel = {.sel = {.flags = TC_U32_TERMINAL, .nkeys = 1}};
        nl_put(nl, TCA_U32_SEL, &sel, sizeof(sel));
        struct rtattr *acts = nl_put(nl, TCA_U32_ACT, NULL, 0);
        struct rtattr *act = nl_put(nl, 1, NULL, 0);
        nl_put(nl, TCA_ACT_KIND, "mirred", sizeof("mirred"));
        struct rtattr *aopts = nl_put(nl, TCA_ACT_OPTIONS, NULL, 0);
        struct tc_mirred m = {.action = TC_ACT_STOLEN, .eaction = TCA_EGRESS_REDIR, .ifindex = (uint32_t)to};
        nl_put(nl, TCA_MIRRED_PARMS, &m, sizeof(m));
        nl_end(nl, aopts);
        nl_end(nl, act);
        nl_end(nl, acts);
        nl_end(nl, opts);
        return nl_talk(nl, NULL, NULL);
}

static int del_link(struct nl *nl, int index)
{
        struct ifinfomsg i = {.ifi_family = AF_UNSPEC, .ifi_index = index};
        nl_begin(nl, RTM_DELLINK, NLM_F_ACK, &i, sizeof(i));
        return nl_talk(nl, NULL, NULL);
}

static int del_ingress(struct nl *nl, int index)
{
        struct tcmsg q = {.tcm_family = AF_UNSPEC, .tcm_ifindex = index, .tcm_handle = TC_H_MAKE(TC_H_INGRESS, 0),
                          .tcm_parent = TC_H_INGRESS};
        nl_begin(nl, RTM_DELQDISC, NLM_F_ACK, &q, sizeof(q));
        return nl_talk(nl, NULL, NULL);
}

/* Attaching to a tap that a running VM holds fails with EBUSY. */
static int tap_open(bool create)
{
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), TAP_NAME);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0 || (create && ioctl(fd, TUNSETPERSIST, 1) < 0)) {
                int e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

static int link_up(const char *name, unsigned mtu)
{
        _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = {.ifr_mtu = (int)mtu};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        if (s < 0 || ioctl(s, SIOCSIFMTU, &ifr) < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return -errno;
        ifr.ifr_flags |= IFF_UP;
        return ioctl(s, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

static char *tap_spec(const struct link *l, const struct addrs *ad)
{
        char a4[INET_ADDRSTRLEN], g4[INET_ADDRSTRLEN] = "", a6[INET6_ADDRSTRLEN] = "", g6[INET6_ADDRSTRLEN] = "";
        inet_ntop(AF_INET, ad->a4, a4, sizeof(a4));
        if (ad->gw4_set)
                inet_ntop(AF_INET, ad->gw4, g4, sizeof(g4));
        if (ad->p6) {
                inet_ntop(AF_INET6, ad->a6, a6, sizeof(a6));
                if (ad->gw6_set)
                        inet_ntop(AF_INET6, ad->gw6, g6, sizeof(g6));
        }
        char gw[INET_ADDRSTRLEN + 4] = "", v6[2 * INET6_ADDRSTRLEN + 16] = "";
        if (g4[0])
                snprintf(gw, sizeof(gw), ",gw=%s", g4);
        if (a6[0] && (!l->mtu || l->mtu >= 1280))
                snprintf(v6, sizeof(v6), ",ip6=%s/%u%s%s", a6, ad->p6, g6[0] ? ",gw6=" : "", g6);
        char *s = xasprintf("ifname=" TAP_NAME ",mac=%02x:%02x:%02x:%02x:%02x:%02x,ip=%s/%u,mtu=%u%s%s", l->mac[0],
                            l->mac[1], l->mac[2], l->mac[3], l->mac[4], l->mac[5], a4, ad->p4,
                            l->mtu ? l->mtu : 1500, gw, v6);
        return s;
}

/* A failure: r < 0 appends its errno text, r >= 0 makes it -EINVAL */
#define fail(err, r, ...) ((r) < 0 ? msb_err_errno(err, r, __VA_ARGS__) : msb_err(err, EINVAL, __VA_ARGS__))

static void nl_close(struct nl *nl)
{
        if (nl->fd >= 0)
                close(nl->fd);
}

/* The namespace's own interfaces (with a MAC: tunnels' fallback devices,
 * tunl0 or sit0 with Calico's modules loaded, are no container's
 * interface), their names for a message, and our tap if one is left.
 * Returns how many there are; *ret_eth is the last. */
static size_t pick_links(const struct links *ls, const struct link **ret_eth, const struct link **ret_tap, char *names,
                         size_t namesz)
{
        size_t others = 0;
        for (size_t i = 0; i < ls->n; i++) {
                if (ls->l[i].loopback)
                        continue;
                if (!strcmp(ls->l[i].name, TAP_NAME)) {
                        *ret_tap = &ls->l[i];
                        continue;
                }
                if (!ls->l[i].has_mac)
                        continue;
                *ret_eth = &ls->l[i];
                others++;
                snprintf(names + strlen(names), namesz - strlen(names), "%s%s", others > 1 ? ", " : "",
                         ls->l[i].name);
        }
        return others;
}

/* A tap of ours already in the namespace: 1 when a VM holds it (another
 * container of the pod came first); 0 when it was left by a VM that has
 * ended (a restart in the same namespace), now removed with its redirect
 * to start again; -errno when it is not a tap we can take. */
static int tap_reclaim(struct nl *nl, const char *ns, const struct link *tap, const struct link *eth,
                       struct msb_error *err)
{
        int fd = tap_open(false);
        if (fd == -EBUSY)
                return 1;
        if (fd < 0)
                return fail(err, fd,
                            "network namespace %s: its interface " TAP_NAME " is not a tap device msb-runtime "
                            "can take",
                            ns);
        close(fd);
        (void)del_link(nl, tap->index);
        if (eth)
                (void)del_ingress(nl, eth->index);
        return 0;
}

/* Make the tap and redirect eth to it and back (tc mirred both ways).
 * The tap stays (persistent) until the namespace goes, so that a
 * container restarted in it finds it; no IPv6 of the namespace's own on
 * it.  On failure what was made is undone. */
static int tap_connect(struct nl *nl, const char *ns, const struct link *eth, struct msb_error *err)
{
        int fd = tap_open(true);
        if (fd < 0)
                return fail(err, fd, "network namespace %s: cannot make tap device " TAP_NAME, ns);
        close(fd);
        _cleanup_close_ int sc = open("/proc/sys/net/ipv6/conf/" TAP_NAME "/disable_ipv6", O_WRONLY | O_CLOEXEC);
        if (sc >= 0)
                (void)!write(sc, "1", 1);
        unsigned idx = if_nametoindex(TAP_NAME);
        int r = idx ? link_up(TAP_NAME, eth->mtu ? eth->mtu : 1500) : -ENODEV;
        bool eth_qdisc = false;
        if (r >= 0) {
                r = redirect(nl, eth->index, (int)idx, &eth_qdisc);
                /* an ingress or clsact qdisc there is the owner's (a CNI's
                 * filters): never ours to take over or remove */
                if (r == -EEXIST) {
                        if (idx)
                                (void)del_link(nl, (int)idx);
                        return fail(err, 0,
                                    "network namespace %s: interface %s already has an ingress qdisc (its owner's "
                                    "filters); msb-runtime cannot redirect it to a VM",
                                    ns, eth->name);
                }
        }
        bool tap_qdisc;
        if (r >= 0)
                r = redirect(nl, (int)idx, eth->index, &tap_qdisc);
        if (r < 0) {
                if (eth_qdisc)
                        (void)del_ingress(nl, eth->index);
                if (idx)
                        (void)del_link(nl, (int)idx);
                return fail(err, r, "network namespace %s: cannot redirect %s to a tap device", ns, eth->name);
        }
        return 0;
}

int rt_netns_claim(const char *ns, char **ret_spec, bool *ret_taken, struct msb_error *err)
{
        *ret_spec = NULL;
        *ret_taken = false;
        __attribute__((cleanup(nl_close))) struct nl nl = {
                .fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)};
        if (nl.fd < 0)
                return fail(err, -errno, "network namespace %s: netlink", ns);
        struct links ls = {0};
        int r = dump(&nl, RTM_GETLINK, AF_UNSPEC, on_link, &ls);
        if (r < 0)
                return fail(err, r, "network namespace %s: its interfaces", ns);
        const struct link *eth = NULL, *tap = NULL;
        char names[128] = "";
        size_t others = pick_links(&ls, &eth, &tap, names, sizeof(names));
        if (tap) {
                r = tap_reclaim(&nl, ns, tap, eth, err);
                if (r != 0) {
                        *ret_taken = r > 0;
                        return r > 0 ? 0 : r;
                }
        }
        if (ls.total > NS_MAX_LINKS)
                return fail(err, 0, "network namespace %s: more than %d interfaces", ns, NS_MAX_LINKS);
        if (others == 0)
                return 0;
        if (others > 1)
                return fail(err, 0,
                            "linux.namespaces: network namespace %s has %zu interfaces (%s); msb-runtime gives a VM "
                            "one (a single network per container)",
                            ns, others, names);
        struct addrs ad = {.index = eth->index};
        r = dump(&nl, RTM_GETADDR, AF_UNSPEC, on_addr, &ad);
        if (r >= 0)
                r = dump(&nl, RTM_GETROUTE, AF_INET, on_route, &ad);
        if (r >= 0)
                r = dump(&nl, RTM_GETROUTE, AF_INET6, on_route, &ad);
        if (r < 0 || !eth->has_mac || !ad.p4)
                return fail(err, r, "network namespace %s: interface %s %s", ns, eth->name,
                            r < 0 ? "cannot be read" : !eth->has_mac ? "is not Ethernet" : "has no IPv4 address");
        r = tap_connect(&nl, ns, eth, err);
        if (r < 0)
                return r;
        *ret_spec = tap_spec(eth, &ad);
        return 0;
}
