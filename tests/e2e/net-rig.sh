# shellcheck shell=bash
# A closed network world for the network tests and bench/net: two network
# namespaces made for this run, and nothing else is ever talked to.
#
#   host ns  ($RIG_HOST)   where msb runs (`rig_ns_host CMD` = ip netns exec):
#                          veth 198.51.100.2/24, 2001:db8:ff::2/64, default
#                          routes (v4, v6) to the world; /etc/resolv.conf (a
#                          bind mount from /etc/netns/$RIG_HOST) names the
#                          world's dnsmasq; servers on its loopback and on its
#                          own veth address
#   world ns ($RIG_WORLD)  the other end of the veth; holds the "internet":
#                          servers on the addresses below, dnsmasq answering
#                          only its own names (no upstream), and an
#                          unreachable default route, so a packet for any
#                          other address is answered with ICMP unreachable
#                          and goes nowhere
#
# Servers (tests/e2e/net-world.py; HTTP GET / answers the server's name, UDP
# port 7 echoes "NAME:DATAGRAM"; every request is logged to $RIG_LOG):
#   203.0.113.10   :80 pub, :8080 pub-8080, udp :7 pub,
#                  :9001 sink, :9002 source (bench)     pub.test, alias.test (CNAME)
#   2001:db8:1::10 :80 pub6, udp :7 pub6                pub.test (AAAA)
#   10.77.0.10     :80 priv, udp :7 priv                priv.test, rebind.test
#   10.77.0.21/22  :80 wild-a / wild-b                  a.wild.test, b.wild.test
#   fd77::10       :80 priv6 (ULA)                      priv6.test
#   169.254.169.254 :80 meta                            meta.test
#   host ns 127.0.0.1 :80 host-lo, udp :7 host-lo; [::1]:80 host-lo6;
#           198.51.100.2 :80 host-own; :9001 sink (bench)
#   rebind-lo.test -> 127.0.0.1; every other name is NXDOMAIN;
#   dnsmasq logs each query to $RIG_DNS_LOG.
#
# Usage: . net-rig.sh; rig_up (installs an EXIT/INT/TERM trap that calls
# rig_down and then "$RIG_ON_EXIT", if set).  Names carry $$ so suites run in
# parallel.  Every process the rig starts is under `timeout`, every wait is
# bounded.  Needs root, iproute2, dnsmasq, python3, gcc (for netprobe).
RIG_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RIG_HOST=msbh-$$
RIG_WORLD=msbw-$$
RIG_LIFETIME=${RIG_LIFETIME:-3600} # seconds any rig process may live
RIG_DIR=
RIG_PIDS=()
RIG_UP=0

RIG_HOSTADDR=198.51.100.2 RIG_HOSTADDR6=2001:db8:ff::2
RIG_GW=198.51.100.1 RIG_GW6=2001:db8:ff::1
RIG_PUB=203.0.113.10 RIG_PUB6=2001:db8:1::10
RIG_PRIV=10.77.0.10 RIG_PRIV6=fd77::10
RIG_WILD_A=10.77.0.21 RIG_WILD_B=10.77.0.22
RIG_META=169.254.169.254

rig_ns_host() { ip netns exec "$RIG_HOST" "$@"; }
rig_ns_world() { ip netns exec "$RIG_WORLD" "$@"; }

rig_log() { echo "net-rig: $*" >&2; }

# rig_wait SECONDS CMD...: retry CMD every 0.1 s until it succeeds, for at
# most SECONDS of wall time (CMD's own time included)
rig_wait() {
        local end=$((SECONDS + $1))
        shift
        while :; do
                "$@" >/dev/null 2>&1 && return 0
                [ "$SECONDS" -lt "$end" ] || return 1
                sleep 0.1
        done
}

# rig_spawn NS CMD...: start a rig process in a namespace, bounded in time
rig_spawn() {
        local ns=$1
        shift
        ip netns exec "$ns" timeout -k 5 "$RIG_LIFETIME" "$@" </dev/null 2>>"$RIG_DIR/stderr.log" &
        RIG_PIDS+=($!)
}

rig_up() {
        [ "$(id -u)" = 0 ] || { rig_log "needs root (network namespaces)"; return 1; }
        local t
        for t in ip dnsmasq python3 gcc timeout; do
                command -v "$t" >/dev/null || { rig_log "needs $t"; return 1; }
        done
        RIG_DIR=$(mktemp -d /tmp/msb-net-rig.XXXXXX)
        RIG_LOG=$RIG_DIR/servers.log
        RIG_DNS_LOG=$RIG_DIR/dnsmasq.log
        RIG_TOOLS=$RIG_DIR/tools
        : >"$RIG_LOG"
        : >"$RIG_DNS_LOG"
        trap 'eval "${RIG_ON_EXIT:-}"; rig_down' EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        RIG_UP=1
        rig_build_netprobe || return 1
        rig_links || { rig_log "could not set up the namespaces"; return 1; }
        rig_servers || { rig_log "servers did not start; see $RIG_DIR"; return 1; }
        rig_check || return 1
}

rig_links() {
        local w=(ip -n "$RIG_WORLD") h=(ip -n "$RIG_HOST") a
        ip netns add "$RIG_WORLD" && ip netns add "$RIG_HOST" || return 1
        mkdir -p "/etc/netns/$RIG_HOST"
        # the first nameserver is the one msb uses; the second must not be
        printf 'nameserver %s\nnameserver 203.0.113.99\n' "$RIG_GW" >"/etc/netns/$RIG_HOST/resolv.conf"
        "${h[@]}" link add up0 type veth peer name down0 netns "$RIG_WORLD" || return 1
        "${h[@]}" link set lo up && "${w[@]}" link set lo up || return 1
        "${h[@]}" addr add "$RIG_HOSTADDR/24" dev up0 &&
                "${h[@]}" addr add "$RIG_HOSTADDR6/64" dev up0 nodad &&
                "${h[@]}" link set up0 up &&
                "${h[@]}" route add default via "$RIG_GW" &&
                "${h[@]}" -6 route add default via "$RIG_GW6" || return 1
        "${w[@]}" addr add "$RIG_GW/24" dev down0 &&
                "${w[@]}" addr add "$RIG_GW6/64" dev down0 nodad &&
                "${w[@]}" link set down0 up || return 1
        for a in "$RIG_PUB/32" "$RIG_PRIV/32" "$RIG_WILD_A/32" "$RIG_WILD_B/32" "$RIG_META/32"; do
                "${w[@]}" addr add "$a" dev lo || return 1
        done
        "${w[@]}" addr add "$RIG_PUB6/128" dev lo nodad && "${w[@]}" addr add "$RIG_PRIV6/128" dev lo nodad || return 1
        # the world has no way out: forwarding only to answer "unreachable"
        # at once for any address it does not hold
        "${w[@]}" route add unreachable default && "${w[@]}" -6 route add unreachable default || return 1
        # (unlimited, or after a few the rest would time out instead)
        ip netns exec "$RIG_WORLD" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
                net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0 || return 1
        # passt answers the guest's pings through ping sockets: allow them
        # for every group (a new namespace allows none)
        ip netns exec "$RIG_HOST" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
}

rig_servers() {
        local py=$RIG_SRC/net-world.py
        rig_spawn "$RIG_WORLD" python3 "$py" --log "$RIG_LOG" --ready "$RIG_DIR/world.ready" \
                "http:$RIG_PUB:80:pub" "http:$RIG_PUB:8080:pub-8080" "udp:$RIG_PUB:7:pub" \
                "sink:$RIG_PUB:9001:pub" "source:$RIG_PUB:9002:pub" \
                "http:[$RIG_PUB6]:80:pub6" "udp:[$RIG_PUB6]:7:pub6" \
                "http:$RIG_PRIV:80:priv" "udp:$RIG_PRIV:7:priv" "http:[$RIG_PRIV6]:80:priv6" \
                "http:$RIG_WILD_A:80:wild-a" "http:$RIG_WILD_B:80:wild-b" "http:$RIG_META:80:meta"
        rig_spawn "$RIG_HOST" python3 "$py" --log "$RIG_LOG" --ready "$RIG_DIR/host.ready" \
                "http:127.0.0.1:80:host-lo" "udp:127.0.0.1:7:host-lo" "http:[::1]:80:host-lo6" \
                "http:$RIG_HOSTADDR:80:host-own" "sink:127.0.0.1:9001:host-lo"
        rig_spawn "$RIG_WORLD" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
                --no-poll --bind-interfaces --listen-address="$RIG_GW" --user=root --group=root \
                --pid-file="$RIG_DIR/dnsmasq.pid" --log-queries --log-facility="$RIG_DNS_LOG" \
                --local=/#/ \
                --host-record="pub.test,$RIG_PUB,$RIG_PUB6" --cname=alias.test,pub.test \
                --host-record="priv.test,$RIG_PRIV" --host-record="priv6.test,$RIG_PRIV6" \
                --host-record="rebind.test,$RIG_PRIV" --host-record=rebind-lo.test,127.0.0.1 \
                --host-record="a.wild.test,$RIG_WILD_A" --host-record="b.wild.test,$RIG_WILD_B" \
                --host-record="meta.test,$RIG_META"
        rig_wait 10 test -e "$RIG_DIR/world.ready" && rig_wait 10 test -e "$RIG_DIR/host.ready" &&
                rig_wait 10 rig_ns_host getent ahostsv4 pub.test
}

# rig_check: the world is closed and answers as documented (run by rig_up)
rig_check() {
        local r
        for r in 192.0.2.1 10.255.255.53 8.8.8.8 2001:4860:4860::8888; do
                if rig_ns_world ip route get "$r" >/dev/null 2>&1; then
                        rig_log "the world ns routes $r somewhere"
                        return 1
                fi
        done
        case $(rig_ns_host ip route get 192.0.2.1) in
        *"dev up0"*) ;;
        *) rig_log "the host ns does not route to the world"; return 1 ;;
        esac
        [ "$(rig_ns_host ip -o link | grep -vc ' lo:\| up0@')" = 0 ] || { rig_log "the host ns has other links"; return 1; }
}

rig_build_netprobe() {
        mkdir -p "$RIG_TOOLS"
        gcc -O2 -static -Wall -Wextra -o "$RIG_TOOLS/netprobe" "$RIG_SRC/netprobe.c" 2>"$RIG_DIR/gcc.log" ||
                { rig_log "netprobe did not build:"; cat "$RIG_DIR/gcc.log" >&2; return 1; }
}

# rig_hits KIND NAME: how many requests server NAME has logged
rig_hits() { grep -c "^$1 $2 " "$RIG_LOG" || true; }

# rig_ns_pids NS: pids of every process in a namespace
rig_ns_pids() { ip netns pids "$1" 2>/dev/null || true; }

rig_down() {
        [ "$RIG_UP" = 1 ] || return 0
        RIG_UP=0
        local p ns left n
        for p in "${RIG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
        for ns in "$RIG_HOST" "$RIG_WORLD"; do
                # whatever is still in our namespaces was started by this run
                # (a test's msb that leaked): say so, then end it by pid
                n=50
                while left=$(rig_ns_pids "$ns") && [ -n "$left" ] && [ $n -gt 0 ]; do
                        [ $n = 30 ] && rig_log "still in $ns: $(echo "$left" | xargs -r ps -o pid=,args= -p | head -5)" &&
                                kill $left 2>/dev/null
                        [ $n = 10 ] && kill -9 $left 2>/dev/null
                        sleep 0.1
                        n=$((n - 1))
                done
                ip netns del "$ns" 2>/dev/null
        done
        wait "${RIG_PIDS[@]}" 2>/dev/null
        rm -rf "/etc/netns/$RIG_HOST"
        rmdir /etc/netns 2>/dev/null
        [ -n "$RIG_DIR" ] && [ -z "${RIG_KEEP:-}" ] && rm -rf "$RIG_DIR"
        return 0
}
