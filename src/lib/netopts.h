/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the two halves of a sandbox's network share (src/lib): the options,
 * checked when given (netopts.c), and the network a VM starts with
 * (vmnet.c).  docs/network.md.
 */
#pragma once
#include <stdint.h>
#include <net/if.h>

#include "net/net.h"
#include "vm.h"

/* "ifname=..,mac=..,ip=A/N[,gw=..][,ip6=A/N][,gw6=..][,mtu=N]" */
struct net_tap {
        char ifname[IFNAMSIZ];
        char mac[18];
        struct msb_net_spec spec;
};

/* Parse a --net-tap spec; -EINVAL with the reason (naming the key) in err */
int net_tap_parse(const char *spec, struct net_tap *t, struct msb_error *err);
/* Is the host port of p free now?  -errno with err naming -p spec if not */
int net_port_free(const struct net_port *p, const char *spec, struct msb_error *err);
/* The mode o asks for (public when none is given) */
enum net_mode net_opts_mode(const struct msb_run_opts *o);
/* The passt binary a run would use (vmnet.c), or NULL when there is none */
char *msb_passt_binary(const struct msb_ctx *ctx);
