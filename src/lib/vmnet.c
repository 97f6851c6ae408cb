/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A sandbox's network at boot: the tap a container's namespace gives it,
 * or msb-netd started on <dir>/net.sock with passt, the guest's addresses,
 * the host's resolver and the sandbox's policy (or a pool's relay told the
 * policy at hand-over).  The options were checked by netopts.c; the policy
 * is enforced by msb-netd (src/netd/main.c, src/net/); docs/network.md.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "netopts.h"
#include "settings.h"

#define GUEST4 NET_GUEST4
#define GW4 NET_GW4
#define PREFIX4 24
#define GUEST6 "fd00:6d73:6200::15"
#define GW6 "fd00:6d73:6200::2"
#define PREFIX6 64
#define NET_MTU 65520

/* Does the host route IPv6 anywhere?  passt gives the guest IPv6 only
 * then; a default route that is not a reject route (kernels keep one on lo). */
static bool host_has_ipv6(void)
{
        _cleanup_free_ char *s = NULL;
        if (read_file_at(AT_FDCWD, "/proc/net/ipv6_route", 1 << 20, &s, NULL) < 0)
                return false;
        for (char *line = s, *nl; line && *line; line = nl ? nl + 1 : NULL) {
                nl = strchr(line, '\n');
                char dst[33], plen[3];
                unsigned long flags;
                if (sscanf(line, "%32s %2s %*s %*s %*s %*s %*s %*s %lx", dst, plen, &flags) == 3 &&
                    !strcmp(dst, "00000000000000000000000000000000") && !strcmp(plen, "00") &&
                    !(flags & 0x0200 /* RTF_REJECT */))
                        return true;
        }
        return false;
}

/* The first nameserver of the host's resolv.conf: where msb-netd forwards
 * what the policy lets through. */
static bool host_resolver(char *out, size_t outsz)
{
        _cleanup_free_ char *s = NULL;
        if (read_file_at(AT_FDCWD, "/etc/resolv.conf", 1 << 20, &s, NULL) < 0)
                return false;
        for (char *line = s, *nl; line && *line; line = nl ? nl + 1 : NULL) {
                nl = strchr(line, '\n');
                if (nl)
                        *nl = 0;
                char a[64];
                struct net_addr na;
                if (sscanf(line, " nameserver %63s", a) == 1 && net_addr_parse(a, &na) == 1) {
                        snprintf(out, outsz, "%s", a);
                        return true;
                }
        }
        return false;
}

/* The passt a run uses: MSB_PASST; the one set-up built from Debian
 * trixie's source (scripts/passt-build.sh), the user's then every user's;
 * else the system's on PATH. */
char *msb_passt_binary(const struct msb_ctx *ctx)
{
        const char *e = msb_setting(SET_MSB_PASST);
        if (e && *e)
                return xstrdup(e);
        const char *roots[] = {ctx->data_dir, ctx->system_dir};
        for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
                if (!roots[i])
                        continue;
                _cleanup_free_ char *p = xasprintf("%s/passt/msb/passt", roots[i]);
                if (access(p, X_OK) == 0)
                        return TAKE_PTR(p);
        }
        const char *path = msb_setting(SET_PATH);
        _cleanup_free_ char *dirs = xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
        char *save = NULL;
        for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                _cleanup_free_ char *p = xasprintf("%s/passt", d);
                if (access(p, X_OK) == 0)
                        return TAKE_PTR(p);
        }
        if (access("/usr/bin/passt", X_OK) == 0)
                return xstrdup("/usr/bin/passt");
        return NULL;
}

static void addr_bytes(const char *s, uint8_t *out, int family)
{
        inet_pton(family == 4 ? AF_INET : AF_INET6, s, out);
}

/* msb-netd's arguments that do not depend on the sandbox: passt, the
 * guest's addresses, the MTU, the resolver. */
static char **netd_fixed_argv(const char *dir, const char *passt, bool v6, const char *dns)
{
        char **v = NULL;
        char *bin = msb_find_helper(SET_MSB_NETD, "msb-netd");
        strv_push_take(&v, bin ? bin : xstrdup("msb-netd"));
        strv_push_take(&v, xasprintf("--passt=%s", passt));
        strv_push_take(&v, xasprintf("--passt-log=%s/passt.log", dir));
        strv_push(&v, "--guest4=" GUEST4);
        strv_push(&v, "--gw4=" GW4);
        strv_push_take(&v, xasprintf("--prefix4=%d", PREFIX4));
        if (v6) {
                strv_push(&v, "--guest6=" GUEST6);
                strv_push(&v, "--gw6=" GW6);
                strv_push_take(&v, xasprintf("--prefix6=%d", PREFIX6));
        }
        strv_push_take(&v, xasprintf("--mtu=%d", NET_MTU));
        strv_push(&v, "--guest-mac=" NET_GUEST_MAC);
        if (dns)
                strv_push_take(&v, xasprintf("--dns=%s", dns));
        return v;
}

/* The sandbox's own: its policy and published ports. */
char **netd_policy_argv(const struct msb_run_opts *o, bool verbose, bool direct)
{
        char **v = NULL;
        strv_push_take(&v, xasprintf("--mode=%s", net_mode_name(net_opts_mode(o))));
        for (char **r = o->net_rules; r && *r; r++)
                strv_push_take(&v, xasprintf("--rule=%s", *r));
        for (char **p = o->net_ports; p && *p; p++)
                strv_push_take(&v, xasprintf("--port=%s", *p));
        if (verbose)
                strv_push(&v, "--verbose");
        if (direct)
                strv_push(&v, "--direct");
        return v;
}

/* The guest's eth0 behind msb-netd. */
static void netd_spec(struct vm *vm, bool v6)
{
        struct msb_net_spec *n = &vm->net;
        addr_bytes(GUEST4, n->addr4, 4);
        addr_bytes(GW4, n->gw4, 4);
        n->prefix4 = PREFIX4;
        if (v6) {
                addr_bytes(GUEST6, n->addr6, 6);
                addr_bytes(GW6, n->gw6, 6);
                n->prefix6 = PREFIX6;
        }
        n->mtu = NET_MTU;
        vm->has_net = true;
}

/* msb-netd on <dir>/net.sock, its arguments argv; it joins sb->fsd[]. */
static int netd_spawn(struct vm *vm, char **argv, bool verbose, struct msb_error *err)
{
        struct sandbox *sb = &vm->sb;
        sb->net_socket = xasprintf("%s/net.sock", sb->dir);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(sb->net_socket) >= sizeof(sa.sun_path))
                return msb_err(err, ENAMETOOLONG, "runtime dir path %s is too long for a unix socket; set MSB_HOME",
                               sb->dir);
        strcpy(sa.sun_path, sb->net_socket);
        _cleanup_close_ int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 2) < 0)
                return msb_err_errno(err, errno, "cannot create socket %s", sb->net_socket);
        _cleanup_free_ char *logp = xasprintf("%s/net.log", sb->dir);
        _cleanup_close_ int logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        struct child *c = &sb->fsd[sb->nfsd];
        /* --verbose: one line per flow, as the guest decides; to the
         * user's own stderr in the foreground, else to net.log, which
         * msb-netd keeps bounded */
        int errfd = verbose && !sb->ctx->detached ? STDERR_FILENO : logfd;
        int r = proc_spawn(argv, -1, logfd, errfd, lfd, &c->pid, &c->pidfd);
        if (r < 0)
                return msb_err_errno(err, r, "cannot start %s", argv[0]);
        c->what = xstrdup("network process (msb-netd)");
        c->net = true;
        c->log = TAKE_PTR(logp);
        sb->nfsd++;
        return 0;
}

/* A pool's VM (pool/): msb-netd --warm, its policy given at hand-over. */
int vm_net_warm(struct vm *vm, struct msb_error *err)
{
        _cleanup_free_ char *passt = msb_passt_binary(vm->sb.ctx);
        if (!passt)
                return msb_err(err, ENOENT, "passt is not installed (apt-get install passt)");
        char dns[64];
        bool have_dns = host_resolver(dns, sizeof(dns)), v6 = host_has_ipv6();
        _cleanup_strv_ char **argv = netd_fixed_argv(vm->sb.dir, passt, v6, have_dns ? dns : NULL);
        strv_push(&argv, "--warm");
        snprintf(vm->sb.net_mac, sizeof(vm->sb.net_mac), "%s", NET_GUEST_MAC);
        int r = netd_spawn(vm, argv, false, err);
        if (r >= 0)
                netd_spec(vm, v6); /* what the relay was told, for the hand-over */
        return r;
}

int vm_net(struct vm *vm, const struct msb_run_opts *o, struct msb_error *err)
{
        struct sandbox *sb = &vm->sb;
        if (o->net_tap) {
                struct net_tap t;
                if (net_tap_parse(o->net_tap, &t, err) < 0)
                        return msb_err_wrap(err, -EINVAL, "network tap '%s'", o->net_tap);
                sb->net_tap = xstrdup(t.ifname);
                snprintf(sb->net_mac, sizeof(sb->net_mac), "%s", t.mac);
                vm->net = t.spec;
                vm->has_net = true;
                return 0;
        }
        snprintf(sb->net_mac, sizeof(sb->net_mac), "%s", NET_GUEST_MAC);
        if (net_opts_mode(o) == NET_MODE_NONE)
                return 0;
        /* ports may have been taken since they were given (create, then start) */
        for (char **s = o->net_ports; s && *s; s++) {
                struct net_port p;
                if (net_port_parse(*s, &p, err) < 0)
                        return msb_err_wrap(err, -EINVAL, "-p '%s'", *s);
                int r = net_port_free(&p, *s, err);
                if (r < 0)
                        return r;
        }
        bool verbose = sb->ctx->log_level > 0;
        const char *direct = msb_setting(SET_MSB_NET_DIRECT);
        bool is_direct = direct && !strcmp(direct, "1");
        if (sb->warm) {
                /* the pool's relay has the guest's link already (pool/) */
                _cleanup_strv_ char **policy = netd_policy_argv(o, verbose, is_direct);
                /* the host's resolver now, not when the VM booted */
                char dns[64];
                if (host_resolver(dns, sizeof(dns)))
                        strv_push_take(&policy, xasprintf("--dns=%s", dns));
                int r = warm_net(vm, policy, err);
                if (r < 0)
                        return r;
                netd_spec(vm, warm_net_v6(sb));
                return 0;
        }
        _cleanup_free_ char *passt = msb_passt_binary(sb->ctx);
        if (!passt)
                return msb_err(err, ENOENT,
                               "--net %s: passt is not installed (apt-get install passt), or run with --net none",
                               net_mode_name(net_opts_mode(o)));
        bool v6 = host_has_ipv6();
        char dns[64];
        bool have_dns = host_resolver(dns, sizeof(dns));
        if (is_direct)
                msb_log(sb->ctx, MSB_LOG_WARN, "MSB_NET_DIRECT=1: no network policy for this sandbox (a benchmark's baseline)");
        _cleanup_strv_ char **argv = netd_fixed_argv(sb->dir, passt, v6, have_dns ? dns : NULL);
        _cleanup_strv_ char **policy = netd_policy_argv(o, verbose, is_direct);
        for (char **a = policy; a && *a; a++)
                strv_push(&argv, *a);
        int r = netd_spawn(vm, argv, verbose, err);
        if (r < 0)
                return r;
        netd_spec(vm, v6);
        return 0;
}

